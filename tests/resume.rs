//! Reconnecting clients and resumable sessions over real sockets, both codecs: a client's TCP
//! connection is cut by a proxy in the test while messages flow both ways, and the session
//! resumes with every message delivered once and in order; grace periods end; tokens that are
//! stale, forged or used twice are refused; an overflowing replay buffer and a restarted server
//! start a new session; peers that do not ask for sessions see the same bytes as before.

mod server_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use repod::server::{Resume, Server, ServerHandle};
use repod::session::{SessionEnd, SessionHello, SessionReply};
use repod::{
    AsyncClient, Backoff, Client, ClientContext, CloseReason, CodecKind, Listener, RawMessage,
    SessionStarted,
};
use serde::{Deserialize, Serialize};
use server_support::{serve, within, TestClient};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const CODECS: [CodecKind; 2] = [CodecKind::Bincode, CodecKind::MsgPack];

/// A numbered message from the server: broadcast or direct, one sequence for both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("num")]
struct Num {
    seq: u64,
}

/// A numbered message from the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("up")]
struct Up {
    seq: u64,
}

/// A request answered with twice its number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("twice")]
#[reply(u64)]
struct Twice {
    n: u64,
}

/// What the server saw.
#[derive(Debug, Default, Clone)]
struct Log {
    /// Per channel: the `up` numbers received, in order.
    ups: HashMap<u64, Vec<u64>>,
    connects: Vec<u64>,
    closes: Vec<(u64, CloseReason)>,
}

#[derive(Default)]
struct Player;

#[repod::channel(state = Log)]
impl Player {
    #[action]
    fn up(&mut self, ctx: &mut repod::Context<'_, Self>, msg: Up) {
        let id = ctx.id().get();
        ctx.state_mut().ups.entry(id).or_default().push(msg.seq);
    }

    #[action]
    fn twice(&mut self, req: Twice) -> u64 {
        req.n * 2
    }
}

fn builder(codec: CodecKind, resume: Option<Resume>) -> repod::ServerBuilder<Player> {
    let mut builder = Server::<Player>::builder()
        .codec(codec)
        .on_connect(|log: &mut Log, peer| log.connects.push(peer.id.get()))
        .on_disconnect(|log: &mut Log, peer, reason| {
            log.closes.push((peer.id.get(), reason.clone()))
        });
    if let Some(resume) = resume {
        builder = builder.resume(resume);
    }
    builder
}

async fn log(server: &ServerHandle<Player>) -> Log {
    server.call(|ctx| ctx.state().clone()).await.expect("log")
}

/// Waits (within the test's deadline) until the server's log satisfies `cond`.
async fn until_log(server: &ServerHandle<Player>, cond: impl Fn(&Log) -> bool) -> Log {
    loop {
        let log = log(server).await;
        if cond(&log) {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn fast() -> Backoff {
    Backoff::new()
        .initial(Duration::from_millis(5))
        .max(Duration::from_millis(40))
}

/// A TCP proxy between client and server that the test cuts, blocks and points elsewhere.
struct Proxy {
    addr: SocketAddr,
    inner: Arc<ProxyInner>,
}

struct ProxyInner {
    target: Mutex<SocketAddr>,
    /// New connections are reset at once.
    blocked: AtomicBool,
    /// Cancelled to cut every connection open now.
    cut: Mutex<CancellationToken>,
    /// Server sides kept open by `cut_client_side`: the server does not see those cuts.
    kept: Mutex<Vec<TcpStream>>,
    client_only: AtomicBool,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(ProxyInner {
            target: Mutex::new(target),
            blocked: AtomicBool::new(false),
            cut: Mutex::new(CancellationToken::new()),
            kept: Mutex::new(Vec::new()),
            client_only: AtomicBool::new(false),
        });
        let task_inner = inner.clone();
        tokio::spawn(async move {
            let inner = task_inner;
            while let Ok((client, _)) = listener.accept().await {
                if inner.blocked.load(Ordering::SeqCst) {
                    let _ = client.set_zero_linger();
                    continue;
                }
                let token = inner.cut.lock().unwrap().clone();
                let target = *inner.target.lock().unwrap();
                let inner = inner.clone();
                tokio::spawn(async move {
                    let mut client = client;
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        let _ = client.set_zero_linger();
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = token.cancelled() => {
                            let _ = client.set_zero_linger();
                            if inner.client_only.load(Ordering::SeqCst) {
                                inner.kept.lock().unwrap().push(server);
                            } else {
                                let _ = server.set_zero_linger();
                            }
                        }
                    }
                });
            }
        });
        Proxy { addr, inner }
    }

    /// Resets every connection open now, on both sides.
    fn cut(&self) {
        self.inner.client_only.store(false, Ordering::SeqCst);
        let mut token = self.inner.cut.lock().unwrap();
        token.cancel();
        *token = CancellationToken::new();
    }

    /// Resets the client's side only: the server's connection stays open, as when a phone
    /// changes networks and the server hears nothing.
    fn cut_client_side(&self) {
        self.inner.client_only.store(true, Ordering::SeqCst);
        let mut token = self.inner.cut.lock().unwrap();
        token.cancel();
        *token = CancellationToken::new();
    }

    fn block(&self, blocked: bool) {
        self.inner.blocked.store(blocked, Ordering::SeqCst);
    }

    fn point_to(&self, target: SocketAddr) {
        *self.inner.target.lock().unwrap() = target;
    }
}

/// Receives events until `stop` says so; returns every event's action and the `num`s.
async fn recv_until(
    client: &mut AsyncClient,
    seen: &mut Vec<String>,
    nums: &mut Vec<u64>,
    mut stop: impl FnMut(&RawMessage, &[u64]) -> bool,
) -> RawMessage {
    loop {
        let msg = client
            .recv()
            .await
            .unwrap_or_else(|| panic!("the client ended; saw {seen:?}"));
        seen.push(msg.action().to_owned());
        if msg.action() == "num" {
            nums.push(msg.decode::<Num>().unwrap().seq);
        }
        if stop(&msg, nums) {
            return msg;
        }
    }
}

/// Sends `range` from the server, odd numbers to everyone, even ones to `id` alone.
fn server_sends(
    server: &ServerHandle<Player>,
    id: repod::ChannelId,
    range: std::ops::RangeInclusive<u64>,
) {
    for seq in range {
        let sent = if seq % 2 == 1 {
            server.send_to_all(&Num { seq })
        } else {
            server.send_to(id, &Num { seq })
        };
        sent.expect("queued");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_resumes_with_every_message_once_and_in_order() {
    for codec in CODECS {
        within(async {
            let resume = Resume::new(Duration::from_secs(30));
            let (addr, server, _task) = serve(builder(codec, Some(resume))).await;
            let proxy = Proxy::start(addr).await;
            let mut client = AsyncClient::builder()
                .codec(codec)
                .resume(true)
                .reconnect(fast())
                .connect_async(proxy.addr)
                .await
                .expect("connect");
            let (mut seen, mut nums) = (Vec::new(), Vec::new());
            recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "connected"
            })
            .await;
            assert_eq!(seen, ["socketConnect", "session", "connected"], "{codec}");
            let id = repod::ChannelId::new(
                until_log(&server, |l| l.connects.len() == 1).await.connects[0],
            );

            // Both ways at once; cut once some of it has arrived, with more in flight.
            server_sends(&server, id, 1..=300);
            for seq in 1..=100 {
                client.send(&Up { seq }).expect("send");
            }
            recv_until(&mut client, &mut seen, &mut nums, |_, n| n.len() >= 40).await;
            proxy.block(true);
            proxy.cut();
            recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "disconnected"
            })
            .await;
            // (No check of `is_connected` here: the client is already trying again, and the
            // blocked proxy accepts each attempt at the TCP level before resetting it.)
            while !server.call(move |ctx| ctx.is_away(id)).await.unwrap() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }

            // While the client is away: both sides go on sending.
            server_sends(&server, id, 301..=400);
            for seq in 101..=150 {
                client
                    .send(&Up { seq })
                    .expect("kept for the next connection");
            }
            let reply = client.request(&Twice { n: 21 });
            proxy.block(false);
            let started = recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "session"
            })
            .await;
            let started: SessionStarted = started.decode().unwrap();
            assert!(started.resumed, "{started:?}");
            assert_eq!(reply.await.expect("answered across the resume"), 42);
            assert!(!server.call(move |ctx| ctx.is_away(id)).await.unwrap());

            server_sends(&server, id, 401..=500);
            for seq in 151..=200 {
                client.send(&Up { seq }).expect("send");
            }
            recv_until(&mut client, &mut seen, &mut nums, |_, n| {
                n.last() == Some(&500)
            })
            .await;
            assert_eq!(
                nums,
                (1..=500).collect::<Vec<_>>(),
                "{codec}: every number once, in order"
            );

            let log = until_log(&server, |l| {
                l.ups.get(&id.get()).is_some_and(|u| u.len() >= 200)
            })
            .await;
            assert_eq!(log.ups[&id.get()], (1..=200).collect::<Vec<_>>(), "{codec}");
            assert_eq!(log.connects, [id.get()], "one channel, kept across the cut");
            assert!(log.closes.is_empty(), "{:?}", log.closes);
            let end = client.close().await;
            assert_eq!(end.reason, "closed by client");
            let log = until_log(&server, |l| !l.closes.is_empty()).await;
            assert_eq!(
                log.closes,
                [(id.get(), CloseReason::PeerClosed)],
                "ended, not kept"
            );
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_returns_before_the_server_noticed_takes_its_session_over() {
    for codec in CODECS {
        within(async {
            let (addr, server, _task) =
                serve(builder(codec, Some(Resume::new(Duration::from_secs(30))))).await;
            let proxy = Proxy::start(addr).await;
            let mut client = AsyncClient::builder()
                .codec(codec)
                .resume(true)
                .reconnect(fast())
                .connect_async(proxy.addr)
                .await
                .expect("connect");
            let (mut seen, mut nums) = (Vec::new(), Vec::new());
            recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "connected"
            })
            .await;
            let id = repod::ChannelId::new(
                until_log(&server, |l| l.connects.len() == 1).await.connects[0],
            );
            server_sends(&server, id, 1..=50);
            recv_until(&mut client, &mut seen, &mut nums, |_, n| n.len() >= 10).await;
            proxy.cut_client_side();
            server_sends(&server, id, 51..=100);
            recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "session" && m.decode::<SessionStarted>().is_ok_and(|s| s.resumed)
            })
            .await;
            recv_until(&mut client, &mut seen, &mut nums, |_, n| {
                n.last() == Some(&100)
            })
            .await;
            assert_eq!(nums, (1..=100).collect::<Vec<_>>(), "{codec}");
            assert_eq!(log(&server).await.connects, [id.get()]);
            client.close().await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_ending_closes_the_channel() {
    for codec in CODECS {
        within(async {
            let resume = Resume::new(Duration::from_millis(200));
            let (addr, server, _task) = serve(builder(codec, Some(resume))).await;
            let proxy = Proxy::start(addr).await;
            let mut client = AsyncClient::builder()
                .codec(codec)
                .resume(true)
                .reconnect(fast())
                .connect_async(proxy.addr)
                .await
                .expect("connect");
            let (mut seen, mut nums) = (Vec::new(), Vec::new());
            recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "connected"
            })
            .await;
            let id = until_log(&server, |l| l.connects.len() == 1).await.connects[0];
            proxy.block(true);
            proxy.cut();
            let log = until_log(&server, |l| !l.closes.is_empty()).await;
            assert_eq!(log.closes, [(id, CloseReason::SessionExpired)], "{codec}");
            assert!(CloseReason::SessionExpired
                .to_string()
                .contains("grace period"));
            // Back after the grace period: a new session, and the reason why.
            proxy.block(false);
            let started = recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "session"
            })
            .await;
            let started: SessionStarted = started.decode().unwrap();
            assert!(!started.resumed);
            assert_eq!(started.reason, "unknown or expired session");
            let log = until_log(&server, |l| l.connects.len() == 2).await;
            assert_ne!(log.connects[1], id);
            client.close().await;
        })
        .await;
    }
}

/// Opens a session by hand; returns the connection and its token.
async fn open_session(addr: SocketAddr, codec: CodecKind) -> (TestClient, String) {
    let mut raw = TestClient::connect_raw(addr, codec).await;
    raw.send(&SessionHello::default()).await;
    let reply: SessionReply = raw.expect().await;
    assert!(!reply.resumed);
    assert_eq!(reply.token.len(), 64);
    let _greeting: repod::Connected = raw.expect().await;
    (raw, reply.token)
}

async fn try_resume(
    addr: SocketAddr,
    codec: CodecKind,
    token: &str,
    recv: u64,
) -> (TestClient, SessionReply) {
    let mut raw = TestClient::connect_raw(addr, codec).await;
    raw.send(&SessionHello {
        token: token.to_owned(),
        recv,
    })
    .await;
    let reply: SessionReply = raw.expect().await;
    (raw, reply)
}

#[tokio::test]
async fn stale_forged_reused_and_mismatched_tokens_are_refused() {
    for codec in CODECS {
        within(async {
            let (addr, server, _task) =
                serve(builder(codec, Some(Resume::new(Duration::from_secs(30))))).await;
            let (_first, token) = open_session(addr, codec).await;

            let forged = "0".repeat(64);
            let (mut raw, reply) = try_resume(addr, codec, &forged, 0).await;
            assert!(!reply.resumed && reply.token.is_empty());
            assert_eq!(reply.reason, "unknown or expired session");
            raw.expect_closed(0).await;

            let (mut raw, reply) = try_resume(addr, codec, &token, 1000).await;
            assert!(!reply.resumed, "claims frames never sent");
            assert_eq!(reply.reason, "the session does not match");
            raw.expect_closed(0).await;

            let (mut second, reply) = try_resume(addr, codec, &token, 1).await;
            assert!(reply.resumed, "{reply:?}");
            assert_ne!(reply.token, token, "a new token for every resume");
            let next = reply.token;

            let (mut raw, reply) = try_resume(addr, codec, &token, 1).await;
            assert!(!reply.resumed, "a token works once");
            raw.expect_closed(0).await;

            // Ended on purpose: the token dies with the channel.
            second.send(&SessionEnd).await;
            drop(second);
            let log = until_log(&server, |l| !l.closes.is_empty()).await;
            assert_eq!(log.closes.len(), 1);
            let (mut raw, reply) = try_resume(addr, codec, &next, 1).await;
            assert!(!reply.resumed, "the channel is closed");
            raw.expect_closed(0).await;
            assert_eq!(log.connects.len(), 1, "no refused attempt got a channel");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_replay_buffer_starts_a_new_session() {
    for codec in CODECS {
        within(async {
            let resume = Resume::new(Duration::from_secs(30)).replay_buffer(8, 1 << 20);
            let (addr, server, _task) = serve(builder(codec, Some(resume))).await;
            let proxy = Proxy::start(addr).await;
            let mut client = AsyncClient::builder()
                .codec(codec)
                .resume(true)
                .reconnect(fast())
                .connect_async(proxy.addr)
                .await
                .expect("connect");
            let (mut seen, mut nums) = (Vec::new(), Vec::new());
            recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "connected"
            })
            .await;
            let id = until_log(&server, |l| l.connects.len() == 1).await.connects[0];
            proxy.block(true);
            proxy.cut();
            recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "disconnected"
            })
            .await;
            // The server notices too, then sends more than the buffer keeps.
            server.call(|_| ()).await.unwrap();
            server_sends(&server, repod::ChannelId::new(id), 1..=20);
            client.send(&Up { seq: 1 }).expect("kept");
            proxy.block(false);
            let started = recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "session"
            })
            .await;
            let started: SessionStarted = started.decode().unwrap();
            assert!(!started.resumed, "{codec}");
            assert_eq!(started.reason, "the replay buffer overflowed");
            assert_eq!(started.lost, 1, "the send made while away never arrived");
            recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "connected"
            })
            .await;
            let log = until_log(&server, |l| l.connects.len() == 2).await;
            assert_eq!(log.closes, [(id, CloseReason::ReplayOverflow)]);
            client.close().await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_gives_a_new_session() {
    for codec in CODECS {
        within(async {
            let resume = Resume::new(Duration::from_secs(30));
            let (addr, first, _task) = serve(builder(codec, Some(resume))).await;
            let proxy = Proxy::start(addr).await;
            let mut client = AsyncClient::builder()
                .codec(codec)
                .resume(true)
                .reconnect(fast())
                .connect_async(proxy.addr)
                .await
                .expect("connect");
            let (mut seen, mut nums) = (Vec::new(), Vec::new());
            recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "connected"
            })
            .await;
            let (addr2, second, _task2) = serve(builder(codec, Some(resume))).await;
            proxy.point_to(addr2);
            first.shutdown();
            recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "disconnected"
            })
            .await;
            let started = recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "session"
            })
            .await;
            let started: SessionStarted = started.decode().unwrap();
            assert!(!started.resumed);
            assert_eq!(started.reason, "unknown or expired session");
            recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "connected"
            })
            .await;
            client.send(&Up { seq: 7 }).unwrap();
            let log = until_log(&second, |l| l.ups.values().any(|u| u == &[7])).await;
            assert_eq!(log.connects.len(), 1);
            client.close().await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_sends_between_connections_fail_fast() {
    within(async {
        let (addr, server, _task) = serve(builder(CodecKind::MsgPack, None)).await;
        let proxy = Proxy::start(addr).await;
        let mut client = AsyncClient::builder()
            .codec(CodecKind::MsgPack)
            .reconnect(fast())
            .connect_async(proxy.addr)
            .await
            .expect("connect");
        let (mut seen, mut nums) = (Vec::new(), Vec::new());
        recv_until(&mut client, &mut seen, &mut nums, |m, _| {
            m.action() == "connected"
        })
        .await;
        proxy.block(true);
        proxy.cut();
        recv_until(&mut client, &mut seen, &mut nums, |m, _| {
            m.action() == "disconnected"
        })
        .await;
        assert_eq!(
            client.send(&Up { seq: 1 }),
            Err(repod::SendError::Disconnected)
        );
        assert!(matches!(
            client.request(&Twice { n: 1 }).await,
            Err(repod::RequestError::Disconnected)
        ));
        proxy.block(false);
        recv_until(&mut client, &mut seen, &mut nums, |m, _| {
            m.action() == "connected"
        })
        .await;
        client.send(&Up { seq: 2 }).unwrap();
        let log = until_log(&server, |l| l.ups.values().any(|u| u == &[2])).await;
        assert_eq!(log.connects.len(), 2, "a new channel per connection");
        assert!(!seen.contains(&"session".to_owned()));
        client.close().await;
    })
    .await;
}

/// Records a game-loop client's events.
#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    nums: Vec<u64>,
    resumed: Vec<bool>,
}

impl Listener for Recorder {
    const ACTIONS: &'static [&'static str] = &[];
    fn dispatch(&mut self, _ctx: &mut ClientContext<'_>, msg: RawMessage) {
        match msg.action() {
            "num" => self.nums.push(msg.decode::<Num>().unwrap().seq),
            "session" => self
                .resumed
                .push(msg.decode::<SessionStarted>().unwrap().resumed),
            _ => {}
        }
        self.events.push(msg.action().to_owned());
    }
}

fn pump_until(client: &mut Client, rec: &mut Recorder, cond: impl Fn(&Recorder) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !cond(rec) {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out; saw {:?}",
            rec.events
        );
        client.pump(rec);
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn the_game_loop_client_resumes_too() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for codec in CODECS {
        let (addr, server, proxy) = runtime.block_on(async {
            let resume = Resume::new(Duration::from_secs(30));
            let (addr, server, _task) = serve(builder(codec, Some(resume))).await;
            let proxy = Proxy::start(addr).await;
            (addr, server, proxy)
        });
        let _ = addr;
        let mut client = Client::builder()
            .codec(codec)
            .resume(true)
            .reconnect(fast())
            .connect(proxy.addr)
            .expect("connect");
        let mut rec = Recorder::default();
        pump_until(&mut client, &mut rec, |r| {
            r.events.iter().any(|e| e == "connected")
        });
        assert_eq!(rec.events, ["socketConnect", "session", "connected"]);
        let id = runtime
            .block_on(until_log(&server, |l| l.connects.len() == 1))
            .connects[0];
        let id = repod::ChannelId::new(id);
        server_sends(&server, id, 1..=100);
        pump_until(&mut client, &mut rec, |r| r.nums.len() >= 20);
        proxy.block(true);
        proxy.cut();
        pump_until(&mut client, &mut rec, |r| {
            r.events.iter().any(|e| e == "disconnected")
        });
        server_sends(&server, id, 101..=150);
        proxy.block(false);
        pump_until(&mut client, &mut rec, |r| r.nums.last() == Some(&150));
        assert_eq!(rec.nums, (1..=150).collect::<Vec<_>>(), "{codec}");
        assert_eq!(rec.resumed, [false, true]);
        drop(client);
        drop(proxy);
    }
}

/// The bytes a peer that does not ask for a session reads, up to the reply to its message.
async fn plain_exchange(addr: SocketAddr, codec: CodecKind, speak_first: bool) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = codec.encode_request(9, &Twice { n: 4 }, 1 << 20).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    if !speak_first {
        // Waits for the greeting before saying anything, as some Python clients do.
        while got.len() < 4
            || got.len() < 4 + u32::from_be_bytes(got[..4].try_into().unwrap()) as usize
        {
            let n = stream.read(&mut buf).await.unwrap();
            assert_ne!(n, 0);
            got.extend_from_slice(&buf[..n]);
        }
    }
    stream.write_all(&request).await.unwrap();
    let mut frames = 0;
    while frames < 2 {
        let n = stream.read(&mut buf).await.unwrap();
        assert_ne!(n, 0, "closed early");
        got.extend_from_slice(&buf[..n]);
        let (mut at, mut count) = (0, 0);
        while got.len() >= at + 4 {
            let len = u32::from_be_bytes(got[at..at + 4].try_into().unwrap()) as usize;
            if got.len() < at + 4 + len {
                break;
            }
            at += 4 + len;
            count += 1;
        }
        frames = count;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_do_not_ask_see_the_same_bytes() {
    for codec in CODECS {
        within(async {
            let (plain, _p, _t1) = serve(builder(codec, None)).await;
            let resume =
                Resume::new(Duration::from_secs(30)).hello_window(Duration::from_millis(50));
            let (resuming, _r, _t2) = serve(builder(codec, Some(resume))).await;
            for speak_first in [true, false] {
                let before = plain_exchange(plain, codec, speak_first).await;
                let after = plain_exchange(resuming, codec, speak_first).await;
                assert_eq!(before, after, "{codec}, speak first: {speak_first}");
            }
            // And the ordinary client, which does not ask either.
            let mut client = AsyncClient::builder()
                .codec(codec)
                .connect_async(resuming)
                .await
                .unwrap();
            assert_eq!(client.request(&Twice { n: 5 }).await.unwrap(), 10);
            let (mut seen, mut nums) = (Vec::new(), Vec::new());
            recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "connected"
            })
            .await;
            assert_eq!(seen, ["socketConnect", "connected"]);
            client.close().await;
        })
        .await;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("login")]
struct Login {
    name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("whoami")]
#[reply(String)]
struct WhoAmI;

#[derive(Default)]
struct Member;

#[repod::channel(state = Log)]
impl Member {
    #[action]
    fn whoami(&mut self, ctx: &mut repod::Context<'_, Self>, _: WhoAmI) -> String {
        ctx.identity::<String>().cloned().unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_authentication_a_resume_keeps_the_identity_and_a_new_session_logs_in_again() {
    for codec in CODECS {
        within(async {
            let builder = Server::<Member>::builder()
                .codec(codec)
                .on_connect(|log: &mut Log, peer| log.connects.push(peer.id.get()))
                .on_disconnect(|log: &mut Log, peer, reason| {
                    log.closes.push((peer.id.get(), reason.clone()))
                })
                .auth(Duration::from_secs(5), |login: Login, _| async move {
                    match login.name.as_str() {
                        "ann" => Ok(login.name),
                        _ => Err("who?".to_owned()),
                    }
                })
                .resume(Resume::new(Duration::from_secs(1)));
            let (addr, server, _task) = serve(builder).await;
            let server_log = |s: &ServerHandle<Member>| {
                let s = s.clone();
                async move { s.call(|ctx| ctx.state().clone()).await.unwrap() }
            };
            let proxy = Proxy::start(addr).await;
            let mut client = AsyncClient::builder()
                .codec(codec)
                .resume(true)
                .reconnect(fast())
                .connect_async(proxy.addr)
                .await
                .expect("connect");
            client.set_login(&Login { name: "ann".into() }).unwrap();
            let (mut seen, mut nums) = (Vec::new(), Vec::new());
            recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "connected"
            })
            .await;
            assert_eq!(client.request(&WhoAmI).await.unwrap(), "ann");

            // Resumed: no second login, same channel, same identity.
            proxy.cut();
            let started = recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "session"
            })
            .await;
            assert!(
                started.decode::<SessionStarted>().unwrap().resumed,
                "{codec}"
            );
            assert_eq!(client.request(&WhoAmI).await.unwrap(), "ann");
            assert_eq!(server_log(&server).await.connects.len(), 1);

            // Expired: a new session, which logs in again by itself.
            proxy.block(true);
            proxy.cut();
            loop {
                if !server_log(&server).await.closes.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            proxy.block(false);
            let started = recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "session"
            })
            .await;
            assert!(!started.decode::<SessionStarted>().unwrap().resumed);
            recv_until(&mut client, &mut seen, &mut nums, |m, _| {
                m.action() == "connected"
            })
            .await;
            assert_eq!(client.request(&WhoAmI).await.unwrap(), "ann");
            let log = server_log(&server).await;
            assert_eq!(log.connects.len(), 2);
            assert_eq!(log.closes[0].1, CloseReason::SessionExpired);
            client.close().await;
        })
        .await;
    }
}
