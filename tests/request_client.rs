//! Requests from both clients over real sockets, both codecs: typed replies, remote errors,
//! deferred and dropped replies, deadlines, many in flight answered out of order, the end of
//! the connection with requests waiting, and the game-loop ticket path.

mod request_support;
mod server_support;

use std::time::{Duration, Instant};

use futures::future::join_all;
use repod::client::{AsyncClient, Client};
use repod::server::{Server, ServerHandle, DROPPED_REPLY};
use repod::{ClientContext, CodecKind, Disconnected, RequestError};

use request_support::*;
use server_support::{serve, within};

const CODECS: [CodecKind; 2] = [CodecKind::Bincode, CodecKind::MsgPack];

/// A deadline no test reaches unless something hangs.
const LONG: Duration = Duration::from_secs(60);

async fn start(codec: CodecKind) -> (AsyncClient, ServerHandle<Player>) {
    let (addr, handle, _task) = serve(Server::<Player>::builder().codec(codec)).await;
    let client = AsyncClient::builder()
        .codec(codec)
        .request_timeout(LONG)
        .connect_async(addr)
        .await
        .expect("connect");
    (client, handle)
}

/// Waits until the server holds `n` stalled requests.
async fn stalled(server: &ServerHandle<Player>, n: usize) {
    loop {
        let held = server
            .call(|ctx| ctx.state().stalled.len())
            .await
            .expect("call");
        if held >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn typed_replies_and_remote_errors() {
    for codec in CODECS {
        within(async {
            let (client, _server) = start(codec).await;
            let rooms: RoomList = client
                .request(&ListRooms { mode: "ffa".into() })
                .await
                .expect("rooms");
            assert_eq!(rooms.rooms, ["ffa-1", "ffa-2"], "{codec}");
            let joined = client
                .request(&JoinRoom {
                    room: "lobby".into(),
                })
                .await;
            assert_eq!(
                joined,
                Ok(Joined {
                    room: "lobby".into(),
                    seat: 1
                })
            );
            let refused = client
                .request(&JoinRoom {
                    room: "attic".into(),
                })
                .await;
            assert_eq!(
                refused,
                Err(RequestError::Remote("no such room: attic".into()))
            );
            let nobody = client.request(&Nobody).await;
            assert_eq!(
                nobody,
                Err(RequestError::Remote(
                    "no handler answered action \"nobody\"".into()
                ))
            );
            let wrong = client
                .request(&ListRoomsAsNumber { mode: "x".into() })
                .await;
            assert!(matches!(wrong, Err(RequestError::Decode(_))), "{wrong:?}");
        })
        .await;
    }
}

#[tokio::test]
async fn deferred_and_dropped_replies() {
    for codec in CODECS {
        within(async {
            let (client, server) = start(codec).await;
            let forgotten = client.request(&Forget).await;
            assert_eq!(forgotten, Err(RequestError::Remote(DROPPED_REPLY.into())));
            // Answered from a thread of the server's, after another message.
            let a = client.request(&Stall { n: 1 });
            let b = client.request(&Stall { n: 2 });
            stalled(&server, 2).await;
            client.send(&Release).expect("send");
            assert_eq!(a.await, Ok(1), "{codec}");
            assert_eq!(b.await, Ok(2));
        })
        .await;
    }
}

#[tokio::test]
async fn many_requests_in_flight_answered_out_of_order() {
    for codec in CODECS {
        within(async {
            let (client, _server) = start(codec).await;
            // 64 requests, answered together once the last arrives, the latest first.
            let calls: Vec<_> = (0..64)
                .map(|_| client.request(&FindMatch { players: 64 }))
                .collect();
            let found = join_all(calls).await;
            let positions: Vec<u32> = found
                .into_iter()
                .map(|r| r.expect("found").position)
                .collect();
            assert_eq!(positions, (1..=64).collect::<Vec<u32>>(), "{codec}");
            // And many at once, each with its own answer.
            let doubles = join_all((0..500u64).map(|n| client.request(&Double { n }))).await;
            for (n, doubled) in doubles.into_iter().enumerate() {
                assert_eq!(doubled, Ok(n as u64 * 2));
            }
        })
        .await;
    }
}

#[tokio::test]
async fn deadlines_per_client_and_per_call() {
    for codec in CODECS {
        within(async {
            let (addr, server, _task) = serve(Server::<Player>::builder().codec(codec)).await;
            let client = AsyncClient::builder()
                .codec(codec)
                .request_timeout(Duration::from_millis(100))
                .connect_async(addr)
                .await
                .expect("connect");
            let started = Instant::now();
            let late = client.request(&Stall { n: 7 }).await;
            assert_eq!(
                late,
                Err(RequestError::Timeout(Duration::from_millis(100))),
                "{codec}"
            );
            assert!(started.elapsed() >= Duration::from_millis(100));
            let late = client
                .request_with_timeout(&Stall { n: 8 }, Duration::from_millis(30))
                .await;
            assert_eq!(late, Err(RequestError::Timeout(Duration::from_millis(30))));
            // The late replies arrive and are dropped; the connection carries on.
            stalled(&server, 2).await;
            client.send(&Release).expect("send");
            let on_time = client.request_with_timeout(&Double { n: 4 }, LONG).await;
            assert_eq!(on_time, Ok(8));
        })
        .await;
    }
}

#[tokio::test]
async fn late_replies_are_not_events() {
    within(async {
        let (mut client, server) = start(CodecKind::MsgPack).await;
        let late = client
            .request_with_timeout(&Stall { n: 1 }, Duration::from_millis(10))
            .await;
        assert!(matches!(late, Err(RequestError::Timeout(_))));
        stalled(&server, 1).await;
        client.send(&Release).expect("send");
        client
            .send(&Chat {
                text: "after".into(),
            })
            .expect("send");
        // Events: socketConnect, connected, then the chat; the late reply is not among them.
        let mut actions = Vec::new();
        while let Some(event) = client.recv().await {
            actions.push(event.action().to_owned());
            if event.action() == "said" {
                break;
            }
        }
        assert_eq!(actions, ["socketConnect", "connected", "said"]);
    })
    .await;
}

#[tokio::test]
async fn the_end_of_the_connection_fails_every_waiting_request_at_once() {
    for codec in CODECS {
        within(async {
            let (client, server) = start(codec).await;
            let waiting: Vec<_> = (0..10).map(|n| client.request(&Stall { n })).collect();
            stalled(&server, 10).await;
            let started = Instant::now();
            server.shutdown();
            let results = join_all(waiting).await;
            assert!(
                results
                    .iter()
                    .all(|r| *r == Err(RequestError::Disconnected)),
                "{codec}: {results:?}"
            );
            // Far from the 60 s deadline: they failed when the connection ended.
            assert!(started.elapsed() < Duration::from_secs(30));
            // Once closed, a request fails at once.
            let after = client.request(&Double { n: 1 }).await;
            assert_eq!(after, Err(RequestError::Disconnected));
        })
        .await;
    }
}

#[tokio::test]
async fn a_sender_requests_from_other_tasks() {
    within(async {
        let (client, _server) = start(CodecKind::Bincode).await;
        let sender = client.sender();
        let task = tokio::spawn(async move { sender.request(&Double { n: 21 }).await });
        assert_eq!(task.await.expect("task"), Ok(42));
        drop(client);
    })
    .await;
}

/// A game's listener: what the request callbacks saw, and the events.
#[derive(Default)]
struct Game {
    rooms: Vec<String>,
    results: Vec<(u32, Result<u64, RequestError>)>,
    events: Vec<String>,
    disconnected: bool,
}

#[repod::listener]
impl Game {
    #[action]
    fn said(&mut self, msg: Said) {
        self.events.push(format!("said {}", msg.text));
    }

    #[action]
    fn disconnected(&mut self, _: Disconnected) {
        self.events.push("disconnected".into());
        self.disconnected = true;
    }
}

fn pump_until(client: &mut Client, game: &mut Game, done: impl Fn(&Game) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(game) {
        assert!(Instant::now() < deadline, "timed out pumping");
        client.pump(game);
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn record(
    tag: u32,
) -> impl FnOnce(&mut Game, &mut ClientContext<'_>, Result<u64, RequestError>) + Send {
    move |game: &mut Game, _ctx: &mut ClientContext<'_>, result| game.results.push((tag, result))
}

#[test]
fn game_loop_requests_reply_through_pump() {
    for codec in CODECS {
        let server = Server::<Player>::builder()
            .codec(codec)
            .start_background("127.0.0.1:0")
            .expect("server");
        let mut client = Client::builder()
            .codec(codec)
            .request_timeout(LONG)
            .connect(server.local_addr())
            .expect("client");
        let mut game = Game::default();
        // The call returns at once; the callback runs in a later pump.
        let ticket = client
            .request(
                &ListRooms { mode: "ffa".into() },
                |game: &mut Game, ctx, rooms| {
                    game.rooms = rooms.expect("rooms").rooms;
                    // The callback can send, like a handler.
                    ctx.send(&Chat {
                        text: "got rooms".into(),
                    })
                    .expect("send");
                },
            )
            .expect("request");
        assert!(ticket.id() > 0);
        assert!(game.rooms.is_empty());
        pump_until(&mut client, &mut game, |g| !g.events.is_empty());
        assert_eq!(game.rooms, ["ffa-1", "ffa-2"], "{codec}");
        assert_eq!(game.events, ["said got rooms"]);

        // Errors, a deadline and a cancelled ticket.
        client
            .request(&Double { n: 5 }, record(1))
            .expect("request");
        client
            .request(&Forget, |game: &mut Game, _ctx, result| {
                game.results.push((2, result.map(u64::from)))
            })
            .expect("request");
        client
            .request_with_timeout(&Stall { n: 3 }, Duration::from_millis(50), record(3))
            .expect("request");
        let cancelled = client
            .request(&Double { n: 6 }, record(4))
            .expect("request");
        assert!(client.cancel(cancelled));
        pump_until(&mut client, &mut game, |g| g.results.len() == 3);
        game.results.sort_by_key(|r| r.0);
        assert_eq!(
            game.results,
            [
                (1, Ok(10)),
                (2, Err(RequestError::Remote(DROPPED_REPLY.into()))),
                (3, Err(RequestError::Timeout(Duration::from_millis(50)))),
            ],
            "{codec}"
        );
        assert_eq!(client.requests_in_flight(), 0);

        // The end of the connection fails what waits, before `disconnected`.
        game.results.clear();
        for n in 0..3 {
            client
                .request(&Stall { n }, record(n as u32))
                .expect("request");
        }
        client
            .send(&Chat {
                text: "last".into(),
            })
            .expect("send");
        pump_until(&mut client, &mut game, |g| g.events.len() == 2);
        server.shutdown().expect("shutdown");
        pump_until(&mut client, &mut game, |g| g.disconnected);
        assert_eq!(
            game.results,
            [0, 1, 2].map(|n| (n, Err(RequestError::Disconnected))),
            "{codec}"
        );
        assert_eq!(game.events.last().map(String::as_str), Some("disconnected"));
        // Once closed, a request fails at once and its callback never runs.
        let after = client.request(&Double { n: 1 }, record(9));
        assert!(
            matches!(after, Err(RequestError::Disconnected)),
            "{after:?}"
        );
        client.pump(&mut game);
        assert_eq!(game.results.len(), 3);
    }
}
