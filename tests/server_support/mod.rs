//! Shared pieces of the server tests: a hand-written channel, its messages, a raw test client.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use repod::server::{Server, ServerBuilder, ServerHandle};
use repod::{
    Channel, CloseReason, Codec, CodecKind, Context, DispatchContext, FrameCodec, HandlerResult,
    Message, RawMessage,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// Every scenario must finish within this time.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs a scenario under [`SCENARIO_TIMEOUT`].
pub async fn within<T>(scenario: impl Future<Output = T>) -> T {
    tokio::time::timeout(SCENARIO_TIMEOUT, scenario)
        .await
        .expect("scenario timed out")
}

macro_rules! message {
    ($name:ident = $action:literal { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $name { $(pub $field: $ty),* }
        impl Message for $name { const ACTION: &'static str = $action; }
    };
}

message!(JoinTeam = "join_team" { team: u32 });
message!(TeamJoined = "team_joined" { team: u32 });
message!(PlayerJoinedTeam = "player_joined_team" { team: u32, player: u64 });
message!(Chat = "chat" { text: String });
message!(Said = "said" { from: u64, text: String });
message!(Echo = "echo" { n: u64 });
message!(Fail = "fail" {});
message!(Panic = "panic" {});
message!(Unknown = "unknown" { name: String });
message!(Big = "big" { seq: u64, data: String });
message!(Ticked = "ticked" { n: u64 });
message!(Hello = "hello" { text: String });
message!(Login = "login" { token: String });
message!(WhoAmI = "whoami" {});
message!(Rtt = "rtt" {});

/// One record of what happened on the server, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A channel's own `on_close`.
    OnClose(u64, CloseReason),
    /// The server's `on_disconnect` hook.
    Disconnect(u64, CloseReason),
    /// The server's `on_connect` hook.
    Connect(u64),
    /// A channel's `on_error`.
    OnError(u64, String),
}

/// A log shared by the server (through its state) and the test.
pub type Log = Arc<Mutex<Vec<Record>>>;

pub fn records(log: &Log) -> Vec<Record> {
    log.lock().expect("log poisoned").clone()
}

/// The server state of the test game.
#[derive(Default)]
pub struct GameState {
    pub log: Log,
    pub ticks: u64,
}

/// The test game's channel: a team, and handlers written by hand as the macro would.
#[derive(Default)]
pub struct Game {
    pub team: Option<u32>,
}

impl Channel for Game {
    type State = GameState;
    type Inbound = RawMessage;
    const ACTIONS: &'static [&'static str] = &["join_team", "chat", "echo", "fail", "panic"];

    fn decode(msg: RawMessage) -> RawMessage {
        msg
    }

    fn dispatch(&mut self, ctx: &mut Context<'_, Self>, msg: RawMessage) {
        match msg.action() {
            "join_team" => match msg.decode::<JoinTeam>() {
                Ok(m) => self.join_team(ctx, m),
                Err(e) => ctx.invalid_body(&msg, e),
            },
            "chat" => match msg.decode::<Chat>() {
                Ok(m) => {
                    let from = ctx.id().get();
                    ctx.send_to_all(&Said { from, text: m.text });
                }
                Err(e) => ctx.invalid_body(&msg, e),
            },
            "echo" => match msg.decode::<Echo>() {
                Ok(m) => {
                    let _ = ctx.send(&m);
                }
                Err(e) => ctx.invalid_body(&msg, e),
            },
            "fail" => {
                let result: Result<(), String> = Err("this handler always fails".to_owned());
                result.report(ctx, "fail");
            }
            "panic" => panic!("handler bug"),
            "rtt" => {
                // The round trip the peer's heartbeat reported, in microseconds (0: none).
                let n = ctx.rtt().map_or(0, |rtt| rtt.as_micros() as u64);
                let _ = ctx.send(&Echo { n });
            }
            "whoami" => {
                // What authentication proved, if the server authenticates.
                let from = ctx.id().get();
                let text = ctx.identity::<String>().cloned().unwrap_or_default();
                let _ = ctx.send(&Said { from, text });
            }
            other => {
                let action = other.to_owned();
                let _ = ctx.send(&Unknown { name: action });
            }
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_, Self>, reason: &CloseReason) {
        let id = ctx.id().get();
        ctx.state()
            .log
            .lock()
            .expect("log poisoned")
            .push(Record::OnClose(id, reason.clone()));
    }

    fn on_error(&mut self, ctx: &mut Context<'_, Self>, error: &repod::ChannelError) {
        let id = ctx.id().get();
        ctx.state()
            .log
            .lock()
            .expect("log poisoned")
            .push(Record::OnError(id, error.to_string()));
    }
}

impl Game {
    /// The team example of Python repod's documentation: the joiner hears `team_joined`, the
    /// team's other members hear `player_joined_team`, nobody else hears anything.
    fn join_team(&mut self, ctx: &mut Context<'_, Self>, m: JoinTeam) {
        self.team = Some(m.team);
        let _ = ctx.send(&TeamJoined { team: m.team });
        let player = ctx.id().get();
        let mates: Vec<_> = ctx
            .channels()
            .filter(|p| p.channel.team == Some(m.team))
            .map(|p| p.id)
            .collect();
        for id in mates {
            let _ = ctx.send_to(
                id,
                &PlayerJoinedTeam {
                    team: m.team,
                    player,
                },
            );
        }
    }
}

/// A builder for the test game whose hooks write to `log`.
pub fn game_builder(log: &Log) -> ServerBuilder<Game> {
    let connect_log = log.clone();
    let disconnect_log = log.clone();
    Server::<Game>::builder_with_state(GameState {
        log: log.clone(),
        ticks: 0,
    })
    .on_connect(move |_, peer| {
        connect_log
            .lock()
            .expect("log poisoned")
            .push(Record::Connect(peer.id.get()))
    })
    .on_disconnect(move |_, peer, reason| {
        disconnect_log
            .lock()
            .expect("log poisoned")
            .push(Record::Disconnect(peer.id.get(), reason.clone()))
    })
}

/// Binds on 127.0.0.1:0 and runs the server on a task.
pub async fn serve<Ch: Channel>(
    builder: ServerBuilder<Ch>,
) -> (
    SocketAddr,
    ServerHandle<Ch>,
    tokio::task::JoinHandle<Result<(), repod::server::ServerError>>,
) {
    let server = builder.bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    let handle = server.handle();
    (addr, handle, tokio::spawn(server.run()))
}

/// Waits until `cond` holds, checking every few milliseconds.
pub async fn eventually(mut cond: impl FnMut() -> bool) {
    while !cond() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A raw client: a socket with repod framing, no listener machinery.
pub struct TestClient {
    pub framed: Framed<TcpStream, FrameCodec>,
    pub codec: CodecKind,
}

impl TestClient {
    /// Connects and reads the server's `connected` greeting.
    pub async fn connect(addr: SocketAddr, codec: CodecKind) -> TestClient {
        let mut client = TestClient::connect_raw(addr, codec).await;
        let greeting = client.recv().await.expect("greeting");
        assert_eq!(greeting.action(), "connected");
        client
    }

    /// Connects without reading anything.
    pub async fn connect_raw(addr: SocketAddr, codec: CodecKind) -> TestClient {
        let stream = TcpStream::connect(addr).await.expect("connect");
        TestClient {
            framed: Framed::new(stream, FrameCodec::default()),
            codec,
        }
    }

    pub async fn send<M: Message>(&mut self, msg: &M) {
        let frame = self.codec.encode(msg, usize::MAX).expect("encode");
        self.send_payload(frame.slice(4..)).await;
    }

    pub async fn send_payload(&mut self, payload: Bytes) {
        self.framed.send(payload).await.expect("send");
    }

    /// The next message, or `None` once the server closed the connection.
    pub async fn recv(&mut self) -> Option<RawMessage> {
        match self.framed.next().await {
            Some(Ok(payload)) => Some(self.codec.decode_raw(payload).expect("decodable")),
            Some(Err(_)) | None => None,
        }
    }

    /// The next message, which must be an `M`.
    pub async fn expect<M: Message + DeserializeOwned>(&mut self) -> M {
        let raw = self.recv().await.expect("a message before the end");
        assert_eq!(raw.action(), M::ACTION, "unexpected message {raw:?}");
        raw.decode().expect("body")
    }

    /// Asserts the server closes the connection, skipping at most `max` messages first.
    pub async fn expect_closed(&mut self, max: usize) {
        for _ in 0..=max {
            if self.recv().await.is_none() {
                return;
            }
        }
        panic!("the connection stayed open");
    }
}

/// The reading half of a split [`TestClient`].
pub struct TestReader {
    pub stream: futures::stream::SplitStream<Framed<TcpStream, FrameCodec>>,
    pub codec: CodecKind,
}

impl TestClient {
    /// Wraps the reading half of a split client.
    pub fn from_stream(
        stream: futures::stream::SplitStream<Framed<TcpStream, FrameCodec>>,
        codec: CodecKind,
    ) -> TestReader {
        TestReader { stream, codec }
    }
}

impl TestReader {
    /// The next message, which must be an `M`.
    pub async fn expect<M: Message + DeserializeOwned>(&mut self) -> M {
        let payload = self
            .stream
            .next()
            .await
            .expect("a message before the end")
            .expect("a valid frame");
        let raw = self.codec.decode_raw(payload).expect("decodable");
        assert_eq!(raw.action(), M::ACTION, "unexpected message {raw:?}");
        raw.decode().expect("body")
    }
}
