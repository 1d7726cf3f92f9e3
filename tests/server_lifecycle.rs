//! Starting and stopping: graceful shutdown, the background server, bind errors.

mod server_support;

use std::collections::BTreeSet;
use std::time::Duration;

use repod::server::{Server, ServerError};
use repod::{CloseReason, CodecKind};
use server_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_flushes_and_closes_every_channel() {
    within(async {
        let log = Log::default();
        let (addr, handle, server) = serve(game_builder(&log)).await;
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(TestClient::connect(addr, CodecKind::Bincode).await);
        }
        let ids: BTreeSet<u64> = handle
            .peers()
            .await
            .unwrap()
            .iter()
            .map(|p| p.id.get())
            .collect();
        assert_eq!(ids.len(), 3);

        const QUEUED: u64 = 500;
        for n in 0..QUEUED {
            handle.send_to_all(&Echo { n }).unwrap();
        }
        handle.shutdown();
        // Everything queued before the shutdown arrives, then the connection ends.
        for client in &mut clients {
            for n in 0..QUEUED {
                assert_eq!(client.expect::<Echo>().await, Echo { n });
            }
            client.expect_closed(0).await;
        }
        server.await.unwrap().unwrap();

        let records = records(&log);
        for id in &ids {
            assert!(
                records.contains(&Record::OnClose(*id, CloseReason::Shutdown)),
                "{records:?}"
            );
            assert!(
                records.contains(&Record::Disconnect(*id, CloseReason::Shutdown)),
                "{records:?}"
            );
        }
        // The listener is gone.
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_past_its_timeout_for_a_stuck_reader() {
    within(async {
        let log = Log::default();
        let builder = game_builder(&log)
            .shutdown_timeout(Duration::from_millis(300))
            .outbound_queue_bytes(64 * 1024 * 1024);
        let (addr, handle, server) = serve(builder).await;
        // Never reads: its queue cannot be flushed.
        let _stuck = TestClient::connect(addr, CodecKind::Bincode).await;
        eventually(|| handle.connection_count() == 1).await;
        let data = "x".repeat(64 * 1024);
        for seq in 0..400 {
            handle
                .send_to_all(&Big {
                    seq,
                    data: data.clone(),
                })
                .unwrap();
        }
        let started = tokio::time::Instant::now();
        handle.shutdown();
        server.await.unwrap().unwrap();
        // More is queued than the socket buffers hold, so the timeout is what ends the wait.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    })
    .await;
}

#[test]
fn background_server_hosts_and_plays() {
    let log = Log::default();
    let server = game_builder(&log)
        .codec(CodecKind::MsgPack)
        .start_background("127.0.0.1:0")
        .expect("start");
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    let handle = server.handle();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let me = runtime.block_on(within(async {
        let mut me = TestClient::connect(addr, CodecKind::MsgPack).await;
        me.send(&JoinTeam { team: 4 }).await;
        assert_eq!(me.expect::<TeamJoined>().await, TeamJoined { team: 4 });
        // The game's own thread talks to the server through the handle.
        handle.send_to_all(&Chat { text: "hi".into() }).unwrap();
        assert_eq!(me.expect::<Chat>().await.text, "hi");
        assert_eq!(handle.connection_count(), 1);
        me
    }));
    server.shutdown().expect("clean shutdown");
    assert!(!handle.is_running());
    assert!(handle.send_to_all(&Echo { n: 1 }).is_err());
    assert!(records(&log)
        .iter()
        .any(|r| matches!(r, Record::Disconnect(_, CloseReason::Shutdown))));
    drop(me);
}

#[test]
fn dropping_a_background_server_stops_it() {
    let log = Log::default();
    let server = game_builder(&log).start_background("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    drop(server);
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[tokio::test]
async fn bind_errors_name_the_address() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let log = Log::default();
    let error = game_builder(&log).bind(addr.as_str()).await.unwrap_err();
    assert!(matches!(error, ServerError::Bind { .. }));
    assert!(error.to_string().contains(&addr), "{error}");
    let error = Server::<Game>::builder_with_state(GameState::default())
        .start_background(addr.as_str())
        .unwrap_err();
    assert!(error.to_string().contains(&addr), "{error}");
}
