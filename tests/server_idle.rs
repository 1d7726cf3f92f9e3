//! Dead and idle peers, over real sockets: with an idle timeout, peers that send no whole
//! frame are closed in time; heartbeats keep a peer alive and report its round trip.

mod server_support;

use std::time::Duration;

use repod::{CloseReason, CodecKind, ErrorMessage, Heartbeat, HeartbeatAck};
use server_support::*;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_trickling_peers_are_closed_while_others_play() {
    within(async {
        let log = Log::default();
        let codec = CodecKind::Bincode;
        let (addr, handle, server) = serve(
            game_builder(&log)
                .codec(codec)
                .idle_timeout(Duration::from_millis(200))
                .close_timeout(Duration::from_millis(200)),
        )
        .await;

        let mut silent = Vec::new();
        for _ in 0..50 {
            silent.push(TestClient::connect(addr, codec).await);
        }
        let mut trickling = Vec::new();
        for _ in 0..50 {
            let mut client = TestClient::connect(addr, codec).await;
            client.framed.get_mut().write_all(&[0]).await.unwrap();
            trickling.push(client);
        }
        // A peer that only sends heartbeats, and one that plays.
        let mut beating = TestClient::connect(addr, codec).await;
        let mut good = TestClient::connect(addr, codec).await;

        // Until every idle peer is closed, the trickling ones send a byte now and then, the
        // beating one a heartbeat, and the good one plays.
        let mut n = 0;
        let closed = || {
            records(&log)
                .iter()
                .filter(|r| matches!(r, Record::Disconnect(_, CloseReason::Idle)))
                .count()
        };
        // The trickled frame announces 60,000 bytes: its header is 0, 0, 0xea, 0x60.
        let mut sent = 1;
        while closed() < 100 {
            let byte = match sent {
                0..=1 => 0,
                2 => 0xea,
                3 => 0x60,
                _ => b'x',
            };
            sent += 1;
            assert!(sent < 60_000, "the frame would be complete");
            for client in trickling.iter_mut() {
                let _ = client.framed.get_mut().write_all(&[byte]).await;
            }
            beating.send(&Heartbeat { t: n, rtt_us: 1500 }).await;
            assert_eq!(
                beating.expect::<HeartbeatAck>().await,
                HeartbeatAck { t: n }
            );
            good.send(&Echo { n }).await;
            assert_eq!(good.expect::<Echo>().await, Echo { n });
            n += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for mut client in silent.into_iter().chain(trickling) {
            let error: ErrorMessage = client.expect().await;
            assert_eq!(error.message, "idle timeout");
            client.expect_closed(0).await;
        }
        // The heartbeat peer was never dispatched a heartbeat, and its round trip is known.
        beating.send(&Rtt {}).await;
        assert_eq!(beating.expect::<Echo>().await, Echo { n: 1500 });
        assert_eq!(handle.connection_count(), 2);

        // Once they stop sending, both go the same way.
        let error: ErrorMessage = good.expect().await;
        assert_eq!(error.message, "idle timeout");
        good.expect_closed(0).await;
        let error: ErrorMessage = beating.expect().await;
        assert_eq!(error.message, "idle timeout");
        beating.expect_closed(0).await;
        eventually(|| closed() == 102).await;

        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_idle_timeout_a_quiet_peer_stays() {
    within(async {
        let log = Log::default();
        let codec = CodecKind::MsgPack;
        let (addr, handle, server) = serve(game_builder(&log).codec(codec)).await;
        let mut quiet = TestClient::connect(addr, codec).await;
        // Quiet for longer than the idle timeouts of the other tests.
        tokio::time::sleep(Duration::from_millis(500)).await;
        quiet.send(&Echo { n: 3 }).await;
        assert_eq!(quiet.expect::<Echo>().await, Echo { n: 3 });
        // Not reported yet: no heartbeat.
        quiet.send(&Rtt {}).await;
        assert_eq!(quiet.expect::<Echo>().await, Echo { n: 0 });
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_client_with_a_heartbeat_outlives_the_idle_timeout() {
    within(async {
        let log = Log::default();
        let codec = CodecKind::MsgPack;
        let (addr, handle, server) = serve(
            game_builder(&log)
                .codec(codec)
                .idle_timeout(Duration::from_millis(300)),
        )
        .await;
        let mut client = repod::AsyncClient::builder()
            .codec(codec)
            .heartbeat(Duration::from_millis(50))
            .connect_async(addr)
            .await
            .expect("connect");
        // A peer without heartbeats, connected at the same time, is closed as idle...
        let mut silent = TestClient::connect(addr, codec).await;
        let error: ErrorMessage = silent.expect().await;
        assert_eq!(error.message, "idle timeout");
        // ...while the client, which sent nothing but heartbeats, is still served, and has
        // measured its round trip; heartbeat answers never reach the application.
        let rtt = loop {
            if let Some(rtt) = client.rtt() {
                break rtt;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert!(rtt > Duration::ZERO);
        // Until the server holds a round trip reported by a heartbeat.
        let server_rtt = loop {
            client.send(&Rtt {}).unwrap();
            let reply = loop {
                let msg = client.recv().await.expect("still connected");
                assert_ne!(msg.action(), "_heartbeat_ack");
                assert_ne!(msg.action(), "error", "{msg:?}");
                if msg.action() == "echo" {
                    break msg.decode::<Echo>().unwrap();
                }
            };
            if reply.n > 0 {
                break reply.n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(server_rtt > 0);
        assert!(client.is_connected());
        assert_eq!(handle.connection_count(), 1);
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}
