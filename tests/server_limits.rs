//! The server against misbehaving peers and over its limits: broken frames, slow consumers,
//! too many connections, panicking handlers. Well-behaved clients never notice.

mod server_support;

use std::net::SocketAddr;

use repod::{CloseReason, CodecKind, ErrorMessage};
use server_support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A well-behaved client that keeps echoing until told to stop; returns how many round trips
/// it made.
fn spawn_echoer(
    addr: SocketAddr,
    codec: CodecKind,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut client = TestClient::connect(addr, codec).await;
        let mut n = 0;
        while !*stop.borrow() {
            client.send(&Echo { n }).await;
            assert_eq!(client.expect::<Echo>().await, Echo { n });
            n += 1;
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
            let echoer = spawn_echoer(addr, codec, stop_rx);

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

            stop_tx.send(true).unwrap();
            let round_trips = echoer.await.unwrap();
            assert!(round_trips > 0);
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
        let builder = game_builder(&log)
            .outbound_queue_bytes(1024 * 1024)
            .outbound_queue_frames(256);
        let (addr, handle, server) = serve(builder).await;
        let mut fast = TestClient::connect(addr, CodecKind::Bincode).await;
        let slow = TestClient::connect(addr, CodecKind::Bincode).await;
        let peers = handle.peers().await.unwrap();
        let slow_id = peers[1].id.get();

        const BATCHES: u64 = 100;
        const PER_BATCH: u64 = 10;
        let data = "x".repeat(32 * 1024);
        for batch in 0..BATCHES {
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
        eventually(|| {
            records(&log).contains(&Record::Disconnect(slow_id, CloseReason::SlowConsumer))
        })
        .await;
        assert!(records(&log).contains(&Record::OnClose(slow_id, CloseReason::SlowConsumer)));
        assert_eq!(handle.connection_count(), 1);
        // The fast client is still served.
        fast.send(&Echo { n: 5 }).await;
        assert_eq!(fast.expect::<Echo>().await, Echo { n: 5 });
        drop(slow);
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
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

        // Once a seat is free, a new peer gets in.
        drop(b);
        eventually(|| handle.connection_count() == 1).await;
        let mut c = TestClient::connect(addr, CodecKind::Bincode).await;
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
        assert_eq!(handle.connection_count(), 1);
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_is_throttled_not_buffered() {
    within(async {
        let log = Log::default();
        let builder = game_builder(&log).inbound_queue_bytes(4 * 1024);
        let (addr, handle, server) = serve(builder).await;
        let mut flooder = TestClient::connect(addr, CodecKind::Bincode).await;
        let mut other = TestClient::connect(addr, CodecKind::Bincode).await;
        // The flooder sends many echoes without reading; the server must stay responsive.
        let payload = repod::Codec::encode(&CodecKind::Bincode, &Echo { n: 9 }, usize::MAX)
            .unwrap()
            .slice(4..);
        let flood = tokio::spawn(async move {
            for _ in 0..20_000 {
                if futures::SinkExt::send(&mut flooder.framed, payload.clone())
                    .await
                    .is_err()
                {
                    break;
                }
            }
            flooder
        });
        for n in 0..50 {
            other.send(&Echo { n }).await;
            assert_eq!(other.expect::<Echo>().await, Echo { n });
        }
        let _flooder = flood.await.unwrap();
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}
