//! The server with well-behaved clients: broadcast, the team example, fallback, error replies,
//! the handle and the tick, over both codecs.

mod server_support;

use std::time::Duration;

use repod::server::ServerHandle;
use repod::{Codec, CodecKind, ErrorMessage};
use server_support::*;

const BOTH: [CodecKind; 2] = [CodecKind::Bincode, CodecKind::MsgPack];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_every_client_in_order() {
    for codec in BOTH {
        within(async {
            let log = Log::default();
            let (addr, handle, server) = serve(game_builder(&log).codec(codec)).await;
            const CLIENTS: usize = 5;
            const PER_CLIENT: usize = 200;
            let mut clients = Vec::new();
            for _ in 0..CLIENTS {
                clients.push(TestClient::connect(addr, codec).await);
            }
            eventually(|| handle.connection_count() == CLIENTS).await;
            let mut senders = Vec::new();
            let mut readers = Vec::new();
            for client in clients {
                let (sink, stream) = futures::StreamExt::split(client.framed);
                senders.push(sink);
                readers.push(TestClient::from_stream(stream, codec));
            }
            // Every client sends its numbered chats concurrently.
            let send_tasks: Vec<_> = senders
                .into_iter()
                .enumerate()
                .map(|(i, mut sink)| {
                    tokio::spawn(async move {
                        for n in 0..PER_CLIENT {
                            let text = format!("{i}:{n}");
                            let frame = codec.encode(&Chat { text }, usize::MAX).unwrap();
                            futures::SinkExt::send(&mut sink, frame.slice(4..))
                                .await
                                .unwrap();
                        }
                        sink
                    })
                })
                .collect();
            let read_tasks: Vec<_> = readers
                .into_iter()
                .map(|mut reader| {
                    tokio::spawn(async move {
                        let mut seen = Vec::new();
                        for _ in 0..CLIENTS * PER_CLIENT {
                            let said: Said = reader.expect().await;
                            seen.push(said.text);
                        }
                        seen
                    })
                })
                .collect();
            let mut _sinks = Vec::new();
            for t in send_tasks {
                _sinks.push(t.await.unwrap());
            }
            let mut orders = Vec::new();
            for t in read_tasks {
                orders.push(t.await.unwrap());
            }
            // Everyone saw everything, each sender's chats in order, and all in the same order.
            for seen in &orders {
                assert_eq!(seen.len(), CLIENTS * PER_CLIENT);
                assert_eq!(seen, &orders[0]);
                for i in 0..CLIENTS {
                    let mine: Vec<_> = seen
                        .iter()
                        .filter(|t| t.starts_with(&format!("{i}:")))
                        .cloned()
                        .collect();
                    let expected: Vec<_> = (0..PER_CLIENT).map(|n| format!("{i}:{n}")).collect();
                    assert_eq!(mine, expected);
                }
            }
            handle.shutdown();
            server.await.unwrap().unwrap();
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_team_notifies_the_joiner_and_its_team_only() {
    within(async {
        let log = Log::default();
        let (addr, handle, server) = serve(game_builder(&log).codec(CodecKind::MsgPack)).await;
        let mut a = TestClient::connect(addr, CodecKind::MsgPack).await;
        let mut b = TestClient::connect(addr, CodecKind::MsgPack).await;
        let mut c = TestClient::connect(addr, CodecKind::MsgPack).await;
        let peers = handle.peers().await.unwrap();
        assert_eq!(peers.len(), 3);
        let (id_a, id_b) = (peers[0].id.get(), peers[1].id.get());

        a.send(&JoinTeam { team: 1 }).await;
        assert_eq!(a.expect::<TeamJoined>().await, TeamJoined { team: 1 });
        c.send(&JoinTeam { team: 2 }).await;
        assert_eq!(c.expect::<TeamJoined>().await, TeamJoined { team: 2 });
        b.send(&JoinTeam { team: 1 }).await;
        assert_eq!(b.expect::<TeamJoined>().await, TeamJoined { team: 1 });
        assert_eq!(
            a.expect::<PlayerJoinedTeam>().await,
            PlayerJoinedTeam {
                team: 1,
                player: id_b
            }
        );
        // c (team 2) heard nothing of team 1; a and b nothing more.
        for client in [&mut a, &mut b, &mut c] {
            client.send(&Echo { n: 7 }).await;
            assert_eq!(client.expect::<Echo>().await, Echo { n: 7 });
        }
        assert_ne!(id_a, id_b);
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_actions_and_actionless_maps_reach_the_fallback() {
    within(async {
        for codec in BOTH {
            let log = Log::default();
            let (addr, handle, server) = serve(game_builder(&log).codec(codec)).await;
            let mut client = TestClient::connect(addr, codec).await;
            client.send(&Hello { text: "hi".into() }).await;
            assert_eq!(
                client.expect::<Unknown>().await,
                Unknown {
                    name: "hello".into()
                }
            );
            if codec == CodecKind::MsgPack {
                // {"x": 1}: a map without "action", as Python can send.
                client
                    .send_payload(bytes::Bytes::from_static(b"\x81\xa1x\x01"))
                    .await;
                assert_eq!(
                    client.expect::<Unknown>().await,
                    Unknown { name: "".into() }
                );
            }
            handle.shutdown();
            server.await.unwrap().unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bodies_and_failing_handlers_get_an_error_reply() {
    within(async {
        for codec in BOTH {
            let log = Log::default();
            let (addr, handle, server) = serve(game_builder(&log).codec(codec)).await;
            let mut client = TestClient::connect(addr, codec).await;
            // "join_team" with a text body where a number is expected.
            client
                .send_payload(
                    codec
                        .encode_frame("join_team", &Chat { text: "x".into() }, usize::MAX)
                        .unwrap()
                        .slice(4..),
                )
                .await;
            let error: ErrorMessage = client.expect().await;
            assert!(error.message.contains("join_team"), "{error:?}");
            client.send(&Fail {}).await;
            let error: ErrorMessage = client.expect().await;
            assert_eq!(error.message, "this handler always fails");
            // The connection stays usable.
            client.send(&Echo { n: 1 }).await;
            assert_eq!(client.expect::<Echo>().await, Echo { n: 1 });
            handle.shutdown();
            server.await.unwrap().unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_sends_from_another_thread() {
    within(async {
        let log = Log::default();
        let (addr, handle, server) = serve(game_builder(&log)).await;
        let mut a = TestClient::connect(addr, CodecKind::Bincode).await;
        let mut b = TestClient::connect(addr, CodecKind::Bincode).await;
        let peers = handle.peers().await.unwrap();
        let id_b = peers[1].id;
        fn assert_send_sync<T: Send + Sync + Clone>(_: &T) {}
        assert_send_sync(&handle);

        let h: ServerHandle<Game> = handle.clone();
        std::thread::spawn(move || {
            for n in 0..100 {
                h.send_to_all(&Echo { n }).unwrap();
            }
            h.send_to(id_b, &Echo { n: 1000 }).unwrap();
            let count = h.call_blocking(|ctx| ctx.channel_count()).unwrap();
            assert_eq!(count, 2);
        })
        .join()
        .unwrap();

        for n in 0..100 {
            assert_eq!(a.expect::<Echo>().await, Echo { n });
            assert_eq!(b.expect::<Echo>().await, Echo { n });
        }
        assert_eq!(b.expect::<Echo>().await, Echo { n: 1000 });
        let ticks = handle.call(|ctx| ctx.state().ticks).await.unwrap();
        assert_eq!(ticks, 0);

        handle.shutdown();
        server.await.unwrap().unwrap();
        // After shutdown the handle reports errors; it never panics.
        assert!(handle.send_to_all(&Echo { n: 0 }).is_err());
        assert!(handle.send_to(id_b, &Echo { n: 0 }).is_err());
        assert!(handle.call(|_| ()).await.is_err());
        assert!(handle.peers().await.is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tick_runs_on_the_loop_at_its_period() {
    within(async {
        let log = Log::default();
        let builder = game_builder(&log).tick(Duration::from_millis(10), |ctx| {
            ctx.state_mut().ticks += 1;
            let n = ctx.state().ticks;
            ctx.send_to_all(&Ticked { n });
        });
        let (addr, handle, server) = serve(builder).await;
        let mut client = TestClient::connect(addr, CodecKind::Bincode).await;
        let first = client.expect::<Ticked>().await.n;
        for i in 1..=5 {
            assert_eq!(client.expect::<Ticked>().await.n, first + i);
        }
        let ticks = handle.call(|ctx| ctx.state().ticks).await.unwrap();
        assert!(ticks >= first + 5);
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}
