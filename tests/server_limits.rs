//! The server against misbehaving peers and over its limits: broken frames, slow consumers,
//! too many connections, panicking handlers. Well-behaved clients never notice.

mod server_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use repod::{CloseReason, CodecKind, ErrorMessage};
use server_support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A well-behaved client that keeps echoing until told to stop, counting its round trips in
/// `done`; returns how many it made.
fn spawn_echoer(
    addr: SocketAddr,
    codec: CodecKind,
    stop: tokio::sync::watch::Receiver<bool>,
    done: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut client = TestClient::connect(addr, codec).await;
        let mut n = 0;
        while !*stop.borrow() {
            client.send(&Echo { n }).await;
            assert_eq!(client.expect::<Echo>().await, Echo { n });
            n += 1;
            done.store(n, Ordering::Relaxed);
            tokio::task::yield_now().await;
        }
        n
    })
}

/// Connects, writes `bytes` (then half-closes if asked) and expects an error reply and the end.
async fn bad_peer(addr: SocketAddr, codec: CodecKind, bytes: &[u8], half_close: bool) -> String {
    let mut client = TestClient::connect(addr, codec).await;
    let stream: &mut TcpStream = client.framed.get_mut();
    stream.write_all(bytes).await.unwrap();
    if half_close {
        stream.shutdown().await.unwrap();
    }
    let error: ErrorMessage = client.expect().await;
    client.expect_closed(0).await;
    error.message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_peers_are_dropped_while_others_keep_playing() {
    for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
        within(async {
            let log = Log::default();
            let (addr, handle, server) = serve(game_builder(&log).codec(codec)).await;
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let done = Arc::new(AtomicU64::new(0));
            let echoer = spawn_echoer(addr, codec, stop_rx, done.clone());
            eventually(|| done.load(Ordering::Relaxed) > 0).await;

            // A payload the codec rejects.
            let garbage = b"\x00\x00\x00\x03\xff\xff\xff";
            let message = bad_peer(addr, codec, garbage, false).await;
            assert!(
                message.contains("malformed") || message.contains("must be a map"),
                "{message}"
            );
            // Not repod at all: "GET " reads as a 1.2 GB length.
            let message = bad_peer(addr, codec, b"GET / HTTP/1.1\r\n\r\n", false).await;
            assert!(message.contains("exceeds"), "{message}");
            // A frame announcing 4 GiB: refused before anything is allocated.
            let message = bad_peer(addr, codec, b"\xff\xff\xff\xff\x00\x01\x02", false).await;
            assert!(message.contains("4294967295"), "{message}");
            // A truncated frame, then the peer stops sending.
            let message = bad_peer(addr, codec, b"\x00\x00\x00\x64\x01\x02\x03", true).await;
            assert!(message.contains("middle of a frame"), "{message}");

            // The well-behaved client still plays after all that.
            let before = done.load(Ordering::Relaxed);
            eventually(|| done.load(Ordering::Relaxed) > before).await;
            stop_tx.send(true).unwrap();
            let round_trips = echoer.await.unwrap();
            assert!(round_trips > before);
            let records = records(&log);
            let protocol_closes = records
                .iter()
                .filter(|r| matches!(r, Record::Disconnect(_, CloseReason::Protocol(_))))
                .count();
            assert_eq!(protocol_closes, 4, "{records:?}");
            let errors = records
                .iter()
                .filter(|r| matches!(r, Record::OnError(..)))
                .count();
            assert_eq!(errors, 4, "{records:?}");
            handle.shutdown();
            server.await.unwrap().unwrap();
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_dropped_as_a_slow_consumer() {
    within(async {
        let log = Log::default();
        const QUEUE_BYTES: u64 = 1024 * 1024;
        // Only the byte limit can bound the queue: the frame limit is out of reach.
        let builder = game_builder(&log)
            .outbound_queue_bytes(QUEUE_BYTES as usize)
            .outbound_queue_frames(1_000_000);
        let (addr, handle, server) = serve(builder).await;
        let mut fast = TestClient::connect(addr, CodecKind::Bincode).await;
        // The slow peer never reads, with a small receive buffer, so what the server can hand
        // to the kernel for it is its send buffer and little more.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let slow = socket.connect(addr).await.unwrap();
        eventually(|| handle.connection_count() == 2).await;
        let peers = handle.peers().await.unwrap();
        let slow_id = peers[1].id.get();

        const BATCHES: u64 = 2000;
        const PER_BATCH: u64 = 10;
        const DATA: u64 = 32 * 1024;
        let data = "x".repeat(DATA as usize);
        let slow_dropped =
            || records(&log).contains(&Record::Disconnect(slow_id, CloseReason::SlowConsumer));
        let mut offered = 0u64;
        for batch in 0..BATCHES {
            if slow_dropped() {
                break;
            }
            offered += PER_BATCH * DATA;
            for i in 0..PER_BATCH {
                let seq = batch * PER_BATCH + i;
                handle
                    .send_to_all(&Big {
                        seq,
                        data: data.clone(),
                    })
                    .unwrap();
            }
            // The fast client keeps up: it reads each batch before the next is sent.
            for i in 0..PER_BATCH {
                let big: Big = fast.expect().await;
                assert_eq!(big.seq, batch * PER_BATCH + i);
                assert_eq!(big.data.len(), data.len());
            }
        }
        eventually(slow_dropped).await;
        // Memory stays bounded by the byte limit: the slow peer was dropped once about
        // QUEUE_BYTES were queued for it beyond what the kernel holds (its send buffer, at most
        // tcp_wmem's maximum, and the slow peer's small receive buffer), out of 640 MiB the
        // broadcast would have queued for it otherwise.
        let kernel = max_send_buffer() + 64 * 1024;
        let bound = QUEUE_BYTES + kernel + 2 * PER_BATCH * DATA;
        assert!(
            offered <= bound,
            "{offered} bytes were offered to the slow peer before it was dropped (bound {bound})"
        );
        assert!(records(&log).contains(&Record::OnClose(slow_id, CloseReason::SlowConsumer)));
        eventually(|| handle.connection_count() == 1).await; // the cut socket closes after on_close
                                                             // The fast client is still served.
        fast.send(&Echo { n: 5 }).await;
        assert_eq!(fast.expect::<Echo>().await, Echo { n: 5 });
        drop(slow);
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

/// The most a TCP socket's send buffer may grow to on this machine (Linux's `tcp_wmem`
/// maximum), or 4 MiB where that is not known.
fn max_send_buffer() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|text| text.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 * 1024 * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extra_peer_hears_server_full() {
    within(async {
        let log = Log::default();
        let (addr, handle, server) = serve(game_builder(&log).max_connections(2)).await;
        let mut a = TestClient::connect(addr, CodecKind::Bincode).await;
        let b = TestClient::connect(addr, CodecKind::Bincode).await;
        eventually(|| handle.connection_count() == 2).await;

        let mut extra = TestClient::connect_raw(addr, CodecKind::Bincode).await;
        let error: ErrorMessage = extra.expect().await;
        assert_eq!(error.message, "server full");
        extra.expect_closed(0).await;
        assert_eq!(
            records(&log)
                .iter()
                .filter(|r| matches!(r, Record::Connect(_)))
                .count(),
            2
        );

        // Once a seat is free, a new peer gets in. The seat is free when b's socket is closed
        // on the server's side too, which no handle reports (b's channel goes first): until
        // then a newcomer may still hear "server full".
        drop(b);
        eventually(|| handle.connection_count() == 1).await;
        let mut c = loop {
            let mut c = TestClient::connect_raw(addr, CodecKind::Bincode).await;
            let first = c.recv().await.expect("a greeting or a refusal");
            match first.action() {
                "connected" => break c,
                "error" => {
                    c.expect_closed(0).await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                other => panic!("unexpected first message {other:?}"),
            }
        };
        c.send(&Echo { n: 3 }).await;
        assert_eq!(c.expect::<Echo>().await, Echo { n: 3 });
        a.send(&Echo { n: 4 }).await;
        assert_eq!(a.expect::<Echo>().await, Echo { n: 4 });
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_closes_only_its_channel() {
    within(async {
        let log = Log::default();
        let (addr, handle, server) = serve(game_builder(&log)).await;
        let mut a = TestClient::connect(addr, CodecKind::Bincode).await;
        let mut b = TestClient::connect(addr, CodecKind::Bincode).await;
        let peers = handle.peers().await.unwrap();
        let id_a = peers[0].id.get();

        a.send(&Panic {}).await;
        a.expect_closed(0).await;
        let reason = CloseReason::HandlerPanicked("handler bug".into());
        eventually(|| records(&log).contains(&Record::Disconnect(id_a, reason.clone()))).await;
        assert!(records(&log).contains(&Record::OnClose(id_a, reason.clone())));

        for n in 0..10 {
            b.send(&Echo { n }).await;
            assert_eq!(b.expect::<Echo>().await, Echo { n });
        }
        b.send(&Chat {
            text: "still here".into(),
        })
        .await;
        let said: Said = b.expect().await;
        assert_eq!(said.text, "still here");
        eventually(|| handle.connection_count() == 1).await;
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

/// A channel whose `slow` handler takes 1 ms per message, so the dispatch loop cannot keep up
/// with a peer that writes as fast as it can; `echo` answers at once.
#[derive(Default)]
struct Sleepy;

impl repod::Channel for Sleepy {
    type State = ();
    type Inbound = repod::RawMessage;
    const ACTIONS: &'static [&'static str] = &["slow", "echo"];

    fn decode(msg: repod::RawMessage) -> repod::RawMessage {
        msg
    }

    fn dispatch(&mut self, ctx: &mut repod::Context<'_, Self>, msg: repod::RawMessage) {
        use repod::DispatchContext;
        match msg.action() {
            "slow" => std::thread::sleep(Duration::from_millis(1)),
            "echo" => match msg.decode::<Echo>() {
                Ok(m) => {
                    let _ = ctx.send(&m);
                }
                Err(e) => ctx.invalid_body(&msg, e),
            },
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_is_throttled_not_buffered() {
    within(async {
        const INBOUND: usize = 4 * 1024;
        const FRAME_DATA: usize = 1024;
        // Far more than the inbound budget plus any socket buffers: the flood can only be
        // written as fast as the 1 ms handler consumes it (about 1 MiB/s).
        const FLOOD_FRAMES: u64 = 128 * 1024;
        // Small frames, so the inbound budget (at least one largest frame) stays at INBOUND.
        let builder = repod::server::Server::<Sleepy>::builder()
            .max_frame_len(FRAME_DATA * 2)
            .inbound_queue_bytes(INBOUND);
        let (addr, handle, server) = serve(builder).await;
        let flooder = TestClient::connect(addr, CodecKind::Bincode).await;
        let mut other = TestClient::connect(addr, CodecKind::Bincode).await;

        let payload = repod::Codec::encode_frame(
            &CodecKind::Bincode,
            "slow",
            &Big {
                seq: 0,
                data: "x".repeat(FRAME_DATA),
            },
            usize::MAX,
        )
        .unwrap();
        let frame_len = payload.len() as u64;
        let written = Arc::new(AtomicU64::new(0));
        let flood = {
            let written = written.clone();
            let mut stream = flooder.framed.into_inner();
            tokio::spawn(async move {
                // Writes megabytes without ever reading.
                for _ in 0..FLOOD_FRAMES {
                    if stream.write_all(&payload).await.is_err() {
                        break;
                    }
                    written.fetch_add(payload.len() as u64, Ordering::Relaxed);
                }
            })
        };

        // Meanwhile a well-behaved client is served promptly.
        for n in 0..50 {
            let started = Instant::now();
            other.send(&Echo { n }).await;
            assert_eq!(other.expect::<Echo>().await, Echo { n });
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "round trip {n} took {:?} behind the flood",
                started.elapsed()
            );
        }

        // The flooder's writes stall: once the budget and the socket buffers are full, it can
        // only write as fast as the handler consumes. An unthrottled server would read the
        // whole flood (128 MiB over loopback) in well under a second.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let before = written.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let after = written.load(Ordering::Relaxed);
        let total = FLOOD_FRAMES * frame_len;
        assert!(
            after < total / 2,
            "the flood was not throttled: {after} of {total} bytes written"
        );
        assert!(
            after - before < 8 * 1024 * 1024,
            "the flooder wrote {} bytes in one second",
            after - before
        );

        flood.abort();
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}
