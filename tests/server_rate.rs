//! Per-peer rate limits, over real sockets: a flooding peer is slowed down or cut off, as
//! configured, while another is served.

mod server_support;

use std::time::{Duration, Instant};

use futures::SinkExt;
use repod::server::{RateLimit, RatePolicy};
use repod::{CloseReason, Codec, CodecKind, ErrorMessage};
use server_support::*;

/// Sends `count` echoes as fast as the socket takes them, without reading.
async fn flood(client: &mut TestClient, count: u64) {
    for n in 0..count {
        let frame = client.codec.encode(&Echo { n }, usize::MAX).unwrap();
        // Fed without flushing each: a burst.
        let _ = client.framed.feed(frame.slice(4..)).await;
    }
    let _ = client.framed.flush().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_is_cut_off_and_others_are_served() {
    within(async {
        let log = Log::default();
        let codec = CodecKind::Bincode;
        let (addr, handle, server) = serve(
            game_builder(&log)
                .codec(codec)
                .rate_limit(RateLimit::messages(20, 20).policy(RatePolicy::Disconnect)),
        )
        .await;
        let mut good = TestClient::connect(addr, codec).await;
        let mut flooder = TestClient::connect(addr, codec).await;
        // Ten times the burst, at once.
        flood(&mut flooder, 200).await;
        let mut echoed = 0;
        let error = loop {
            let raw = flooder.recv().await.expect("an error before the end");
            if raw.action() == "echo" {
                echoed += 1;
                continue;
            }
            break raw.decode::<ErrorMessage>().unwrap();
        };
        assert_eq!(error.message, "rate limited");
        assert!(echoed < 200, "all {echoed} echoes came back");
        flooder.expect_closed(0).await;
        eventually(|| {
            records(&log)
                .iter()
                .any(|r| matches!(r, Record::Disconnect(_, CloseReason::RateLimited)))
        })
        .await;

        // The other peer, within its rate, is served all along.
        for n in 0..10 {
            good.send(&Echo { n }).await;
            assert_eq!(good.expect::<Echo>().await, Echo { n });
        }
        assert_eq!(handle.connection_count(), 1);
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_is_slowed_down_without_losing_messages() {
    within(async {
        let log = Log::default();
        let codec = CodecKind::MsgPack;
        let (addr, handle, server) = serve(
            game_builder(&log)
                .codec(codec)
                .rate_limit(RateLimit::messages(50, 10).bytes(1 << 20, 1 << 20)),
        )
        .await;
        let mut good = TestClient::connect(addr, codec).await;
        let mut flooder = TestClient::connect(addr, codec).await;
        let started = Instant::now();
        flood(&mut flooder, 100).await;
        // While the flooder is held back, the other peer is served.
        for n in 0..5 {
            good.send(&Echo { n }).await;
            assert_eq!(good.expect::<Echo>().await, Echo { n });
        }
        for n in 0..100 {
            assert_eq!(flooder.expect::<Echo>().await, Echo { n });
        }
        // 10 at once, then 50 a second for the other 90: the bucket allows no faster.
        assert!(
            started.elapsed() >= Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(handle.connection_count(), 2);
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_limit_cuts_off_a_peer_sending_too_much() {
    within(async {
        let log = Log::default();
        let codec = CodecKind::Bincode;
        let (addr, handle, server) = serve(
            game_builder(&log)
                .codec(codec)
                .max_frame_len(4096)
                .rate_limit(RateLimit::bytes_only(8192, 8192).policy(RatePolicy::Disconnect)),
        )
        .await;
        let mut flooder = TestClient::connect(addr, codec).await;
        let data = "x".repeat(3000);
        for seq in 0..20 {
            let frame = codec
                .encode(
                    &Big {
                        seq,
                        data: data.clone(),
                    },
                    usize::MAX,
                )
                .unwrap();
            let _ = flooder.framed.feed(frame.slice(4..)).await;
        }
        let _ = flooder.framed.flush().await;
        let error = loop {
            let raw = flooder.recv().await.expect("an error before the end");
            if raw.action() == "error" {
                break raw.decode::<ErrorMessage>().unwrap();
            }
        };
        assert_eq!(error.message, "rate limited");
        flooder.expect_closed(0).await;
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}
