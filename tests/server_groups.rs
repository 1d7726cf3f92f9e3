//! Groups (rooms): membership, leaving on disconnect, isolation, group sends from handlers,
//! handles and ticks, and members dropped while a group send is under way.

mod server_support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use repod::server::{Outbox, OutboxReceiver, Server, ServerBuilder, ServerContext, ServerHandle};
use repod::{ChannelId, CloseReason, CodecKind, Context, Hub, HubConfig, Message};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use server_support::{serve, within, TestClient};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("join")]
pub struct Join {
    pub room: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("joined")]
pub struct Joined {
    pub room: String,
    pub id: u64,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("leave")]
pub struct Leave {
    pub room: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("left")]
pub struct Left {
    pub room: String,
    pub id: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("say")]
pub struct Say {
    pub room: String,
    pub n: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("said")]
pub struct Said {
    pub room: String,
    pub from: u64,
    pub n: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("note")]
pub struct Note {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("ticked")]
pub struct Ticked {
    pub n: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("big")]
pub struct Big {
    pub seq: u64,
    pub data: String,
}

/// What `on_close` saw: the channel, its reason, and the groups it was still in.
type Closed = Arc<Mutex<Vec<(u64, CloseReason, Vec<String>)>>>;

#[derive(Default)]
pub struct Rooms {
    closed: Closed,
    /// The group the tick sends to, if any.
    tick_room: Option<String>,
    ticks: u64,
}

#[derive(Default)]
pub struct Member;

#[repod::channel(state = Rooms)]
impl Member {
    fn on_close(&mut self, ctx: &mut Context<'_, Self>, reason: &CloseReason) {
        let id = ctx.id();
        let groups: Vec<String> = ctx.my_groups().map(str::to_owned).collect();
        // Still a member here: the rooms hear who left.
        for room in &groups {
            let left = Left {
                room: room.clone(),
                id: id.get(),
            };
            ctx.send_to_others_in_group(room, &left);
        }
        ctx.state()
            .closed
            .lock()
            .unwrap()
            .push((id.get(), reason.clone(), groups));
    }

    #[action]
    fn join(&mut self, ctx: &mut Context<'_, Self>, msg: Join) {
        ctx.join(&msg.room);
        let size = ctx.group_len(&msg.room) as u64;
        let id = ctx.id().get();
        let _ = ctx.send(&Joined {
            room: msg.room,
            id,
            size,
        });
    }

    #[action]
    fn leave(&mut self, ctx: &mut Context<'_, Self>, msg: Leave) {
        ctx.leave(&msg.room);
    }

    #[action]
    fn say(&mut self, ctx: &mut Context<'_, Self>, msg: Say) {
        let said = Said {
            from: ctx.id().get(),
            room: msg.room,
            n: msg.n,
        };
        ctx.send_to_others_in_group(&said.room, &said);
    }
}

fn builder() -> (ServerBuilder<Member>, Closed) {
    let closed = Closed::default();
    let state = Rooms {
        closed: closed.clone(),
        ..Rooms::default()
    };
    (Server::<Member>::builder_with_state(state), closed)
}

/// Connects a client, finds its id and puts it in these rooms (waiting for each `joined`).
async fn member(
    addr: SocketAddr,
    handle: &ServerHandle<Member>,
    rooms: &[&str],
) -> (TestClient, ChannelId) {
    let mut client = TestClient::connect(addr, CodecKind::Bincode).await;
    let local = client.framed.get_ref().local_addr().unwrap();
    let id = handle
        .peers()
        .await
        .unwrap()
        .into_iter()
        .find(|peer| peer.addr == local)
        .expect("the server knows the client")
        .id;
    for room in rooms {
        client
            .send(&Join {
                room: (*room).to_owned(),
            })
            .await;
        let joined: Joined = client.expect().await;
        assert_eq!((joined.room.as_str(), joined.id), (*room, id.get()));
    }
    (client, id)
}

/// Reads messages until one of type `M`, skipping those of type `Skip`.
async fn next_skipping<M: Message + DeserializeOwned, Skip: Message>(client: &mut TestClient) -> M {
    loop {
        let raw = client.recv().await.expect("a message before the end");
        if raw.action() == Skip::ACTION {
            continue;
        }
        assert_eq!(raw.action(), M::ACTION, "unexpected message {raw:?}");
        return raw.decode().expect("body");
    }
}

/// Runs `query` on the dispatch loop until it returns true.
async fn until_loop<F>(handle: &ServerHandle<Member>, query: F)
where
    F: Fn(&mut ServerContext<'_, Member>) -> bool + Clone + Send + 'static,
{
    while !handle.call(query.clone()).await.unwrap() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn note(text: &str) -> Note {
    Note {
        text: text.to_owned(),
    }
}

fn sorted<T: Ord>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = items.into_iter().collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_queries_and_leaving_on_disconnect() {
    within(async {
        let (builder, closed) = builder();
        let (addr, handle, server) = serve(builder).await;
        let (c1, id1) = member(addr, &handle, &["red", "blue"]).await;
        let (mut c2, id2) = member(addr, &handle, &["red"]).await;
        let (mut c3, id3) = member(addr, &handle, &["blue"]).await;

        let (groups, red, blue, of1, count) = handle
            .call(move |ctx| {
                (
                    sorted(ctx.groups().map(|(n, len)| (n.to_owned(), len))),
                    sorted(ctx.group_members("red")),
                    sorted(ctx.group_channels("blue").map(|p| p.id)),
                    ctx.groups_of(id1).map(str::to_owned).collect::<Vec<_>>(),
                    ctx.group_count(),
                )
            })
            .await
            .unwrap();
        assert_eq!(groups, [("blue".to_owned(), 2), ("red".to_owned(), 2)]);
        assert_eq!(red, sorted([id1, id2]));
        assert_eq!(blue, sorted([id1, id3]));
        assert_eq!(of1, ["red", "blue"]);
        assert_eq!(count, 2);
        let checks = handle
            .call(move |ctx| {
                [
                    ctx.is_in_group(id2, "red"),
                    !ctx.is_in_group(id2, "blue"),
                    ctx.group_len("green") == 0,
                    ctx.group_members("green").count() == 0,
                    // Joining twice changes nothing; joins and leaves report what they did.
                    !ctx.add_to_group(id2, "red"),
                    ctx.add_to_group(id2, "green"),
                    ctx.remove_from_group(id2, "green"),
                    !ctx.remove_from_group(id2, "green"),
                    ctx.group_count() == 2,
                ]
            })
            .await
            .unwrap();
        assert_eq!(checks, [true; 9]);

        // c1 leaves blue by itself, then disconnects while still in red.
        let mut c1 = c1;
        c1.send(&Leave {
            room: "blue".to_owned(),
        })
        .await;
        until_loop(&handle, move |ctx| ctx.group_len("blue") == 1).await;
        drop(c1);
        // on_close ran while c1 was still in red: red's other member hears it.
        let left: Left = c2.expect().await;
        assert_eq!(
            left,
            Left {
                room: "red".to_owned(),
                id: id1.get()
            }
        );
        until_loop(&handle, move |ctx| ctx.group_len("red") == 1).await;
        let after = handle
            .call(move |ctx| {
                (
                    ctx.groups_of(id1).count(),
                    sorted(ctx.group_members("red")),
                    ctx.group_count(),
                )
            })
            .await
            .unwrap();
        assert_eq!(after, (0, vec![id2], 2));
        assert_eq!(
            closed.lock().unwrap().clone(),
            [(id1.get(), CloseReason::PeerClosed, vec!["red".to_owned()])]
        );
        // c3 (blue) heard nothing of c1, who had left blue before closing.
        handle.send_to_group("blue", &note("blue marker")).unwrap();
        assert_eq!(c3.expect::<Note>().await, note("blue marker"));

        // The last member of red leaves: red no longer exists.
        drop(c2);
        until_loop(&handle, |ctx| ctx.group_count() == 1).await;
        let groups = handle
            .call(|ctx| sorted(ctx.groups().map(|(n, len)| (n.to_owned(), len))))
            .await
            .unwrap();
        assert_eq!(groups, [("blue".to_owned(), 1)]);
        // Sending to a group that does not exist is accepted and reaches nobody.
        assert_eq!(
            handle
                .call(|ctx| ctx.send_to_group("red", &note("x")))
                .await
                .unwrap(),
            0
        );

        handle.shutdown();
        server.await.unwrap().unwrap();
        // Shutdown empties every group too.
        let last = closed.lock().unwrap().last().cloned().unwrap();
        assert_eq!(
            last,
            (id3.get(), CloseReason::Shutdown, vec!["blue".to_owned()])
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_one_room_never_hear_another() {
    within(async {
        let (builder, _closed) = builder();
        let (addr, handle, server) = serve(builder).await;
        // Rooms a and b, three members each, and one member in both.
        let mut clients = Vec::new();
        for rooms in [
            &["a"][..],
            &["a"],
            &["a"],
            &["b"],
            &["b"],
            &["b"],
            &["a", "b"],
        ] {
            let (client, id) = member(addr, &handle, rooms).await;
            clients.push((client, id, rooms));
        }
        const N: u64 = 50;
        for (client, _, rooms) in &mut clients {
            for n in 0..N {
                for room in rooms.iter() {
                    client
                        .send(&Say {
                            room: (*room).to_owned(),
                            n,
                        })
                        .await;
                }
            }
        }
        // Everyone hears exactly the other members of its own rooms, each sender in order.
        for i in 0..clients.len() {
            let (mine, expected) = {
                let (_, id, rooms) = &clients[i];
                let mut expected = 0;
                for (_, other, their) in &clients {
                    if other != id {
                        expected += rooms.iter().filter(|r| their.contains(r)).count() as u64 * N;
                    }
                }
                (*id, expected)
            };
            let (client, _, rooms) = &mut clients[i];
            let mut next = std::collections::HashMap::new();
            for _ in 0..expected {
                let said: Said = client.expect().await;
                assert!(
                    rooms.contains(&said.room.as_str()),
                    "{said:?} reached {mine}"
                );
                assert_ne!(said.from, mine.get());
                let n = next.entry((said.room.clone(), said.from)).or_insert(0);
                assert_eq!(said.n, *n, "out of order");
                *n += 1;
            }
        }
        // Every `say` has been handled; a marker per room now comes right after, with nothing
        // from the other room in between.
        handle.send_to_group("a", &note("a")).unwrap();
        handle.send_to_group("b", &note("b")).unwrap();
        for (client, _, rooms) in &mut clients {
            let mut got = BTreeSet::new();
            for _ in 0..rooms.len() {
                got.insert(client.expect::<Note>().await.text);
            }
            let want: BTreeSet<String> = rooms.iter().map(|r| (*r).to_owned()).collect();
            assert_eq!(got, want);
        }
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_sends_from_a_handle_and_a_tick() {
    within(async {
        let closed = Closed::default();
        let state = Rooms {
            closed,
            tick_room: Some("tickers".to_owned()),
            ticks: 0,
        };
        let builder =
            Server::<Member>::builder_with_state(state).tick(Duration::from_millis(5), |ctx| {
                let Some(room) = ctx.state().tick_room.clone() else {
                    return;
                };
                ctx.state_mut().ticks += 1;
                let n = ctx.state().ticks;
                ctx.send_to_group(&room, &Ticked { n });
            });
        let (addr, handle, server) = serve(builder).await;
        let (mut t1, id1) = member(addr, &handle, &["tickers"]).await;
        let (mut t2, id2) = member(addr, &handle, &["tickers"]).await;
        let (mut other, other_id) = member(addr, &handle, &["other"]).await;

        // The tick reaches the tickers, in order.
        for client in [&mut t1, &mut t2] {
            let first: Ticked = client.expect().await;
            for k in 1..=5 {
                assert_eq!(client.expect::<Ticked>().await.n, first.n + k);
            }
        }
        // ... and nobody else: the next thing `other` hears is this marker.
        handle.send_to_group("other", &note("m1")).unwrap();
        assert_eq!(other.expect::<Note>().await, note("m1"));

        // From the handle, to the group and to all of it but one.
        handle.send_to_group("tickers", &note("all")).unwrap();
        handle
            .send_to_group_except("tickers", id1, &note("not t1"))
            .unwrap();
        handle.send_to_group("tickers", &note("end")).unwrap();
        assert_eq!(next_skipping::<Note, Ticked>(&mut t1).await, note("all"));
        assert_eq!(next_skipping::<Note, Ticked>(&mut t1).await, note("end"));
        assert_eq!(next_skipping::<Note, Ticked>(&mut t2).await, note("all"));
        assert_eq!(next_skipping::<Note, Ticked>(&mut t2).await, note("not t1"));
        assert_eq!(next_skipping::<Note, Ticked>(&mut t2).await, note("end"));

        // Encoded once, queued to any set, from the handle and from the loop.
        let frame = handle.encode(&note("frame")).unwrap();
        handle.send_frame_to_many([id2, other_id], &frame).unwrap();
        handle.send_frame_to_group("tickers", &frame).unwrap();
        assert_eq!(next_skipping::<Note, Ticked>(&mut t1).await, note("frame"));
        assert_eq!(next_skipping::<Note, Ticked>(&mut t2).await, note("frame"));
        assert_eq!(next_skipping::<Note, Ticked>(&mut t2).await, note("frame"));
        assert_eq!(other.expect::<Note>().await, note("frame"));
        let counts = handle
            .call(move |ctx| {
                let frame = ctx.encode(&note("ctx")).unwrap();
                [
                    ctx.send_frame_to_group("tickers", &frame),
                    ctx.send_frame_to_many([id1, other_id], &frame),
                    ctx.send_to_group_except("tickers", id2, &note("ctx except")),
                ]
            })
            .await
            .unwrap();
        assert_eq!(counts, [2, 2, 1]);
        assert_eq!(next_skipping::<Note, Ticked>(&mut t1).await, note("ctx"));
        assert_eq!(next_skipping::<Note, Ticked>(&mut t1).await, note("ctx"));
        assert_eq!(
            next_skipping::<Note, Ticked>(&mut t1).await,
            note("ctx except")
        );
        assert_eq!(next_skipping::<Note, Ticked>(&mut t2).await, note("ctx"));
        assert_eq!(other.expect::<Note>().await, note("ctx"));

        // `other` joins the tickers from a handle call and starts hearing the tick.
        assert!(handle
            .call(move |ctx| ctx.add_to_group(other_id, "tickers"))
            .await
            .unwrap());
        other.expect::<Ticked>().await;

        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_closing_during_group_sends_does_not_stop_them() {
    within(async {
        let (builder, closed) = builder();
        let (addr, handle, server) = serve(builder).await;
        let mut readers = Vec::new();
        for _ in 0..3 {
            readers.push(member(addr, &handle, &["room"]).await.0);
        }
        let (mut quitter, quitter_id) = member(addr, &handle, &["room"]).await;
        const COUNT: u64 = 2000;
        let sender = {
            let handle = handle.clone();
            tokio::spawn(async move {
                for n in 0..COUNT {
                    // The loop's command queue may fill: wait a little and retry.
                    while let Err(repod::SendError::QueueFull) =
                        handle.send_to_group("room", &Ticked { n })
                    {
                        tokio::task::yield_now().await;
                    }
                }
            })
        };
        // The quitter reads a few, then closes its socket while the sends go on.
        for n in 0..10 {
            assert_eq!(quitter.expect::<Ticked>().await.n, n);
        }
        drop(quitter);
        for reader in &mut readers {
            for n in 0..COUNT {
                // The quitter's goodbye from on_close arrives somewhere in between.
                assert_eq!(next_skipping::<Ticked, Left>(reader).await.n, n);
            }
        }
        sender.await.unwrap();
        until_loop(&handle, |ctx| ctx.group_len("room") == 3).await;
        let seen = closed.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, quitter_id.get());
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_member_dropped_during_group_sends_does_not_stop_them() {
    within(async {
        let (builder, closed) = builder();
        let builder = builder
            .outbound_queue_bytes(256 * 1024)
            .outbound_queue_frames(1_000_000);
        let (addr, handle, server) = serve(builder).await;
        let mut fast = Vec::new();
        for _ in 0..3 {
            fast.push(member(addr, &handle, &["room"]).await.0);
        }
        // The slow member joins, then never reads, with a small receive buffer.
        let (slow, slow_id) = {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            let stream = socket.connect(addr).await.unwrap();
            let mut client = TestClient {
                framed: tokio_util::codec::Framed::new(stream, repod::FrameCodec::default()),
                codec: CodecKind::Bincode,
            };
            assert_eq!(client.recv().await.unwrap().action(), "connected");
            client
                .send(&Join {
                    room: "room".to_owned(),
                })
                .await;
            let joined: Joined = client.expect().await;
            (client, joined.id)
        };
        let data = "x".repeat(32 * 1024);
        let dropped = || closed.lock().unwrap().iter().any(|c| c.0 == slow_id);
        let mut seq = 0;
        // Each group send goes to the slow member too, until its queue overflows mid-send.
        while !dropped() {
            assert!(seq < 100_000, "the slow member was never dropped");
            handle
                .send_to_group(
                    "room",
                    &Big {
                        seq,
                        data: data.clone(),
                    },
                )
                .unwrap();
            for client in &mut fast {
                let big: Big = next_skipping::<Big, Left>(client).await;
                assert_eq!(big.seq, seq);
            }
            seq += 1;
        }
        let seen = closed.lock().unwrap().clone();
        assert_eq!(
            seen,
            [(slow_id, CloseReason::SlowConsumer, vec!["room".to_owned()])]
        );
        until_loop(&handle, |ctx| ctx.group_len("room") == 3).await;
        // The others are still served.
        handle.send_to_group("room", &note("still here")).unwrap();
        for client in &mut fast {
            assert_eq!(
                next_skipping::<Note, Left>(client).await,
                note("still here")
            );
        }
        drop(slow);
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

/// The same on a [`Hub`] without sockets: the member in the middle of the group overflows
/// during a group send, and the member after it still gets the frame.
#[test]
fn a_member_overflowing_in_the_middle_of_a_group_send() {
    let closed = Closed::default();
    let state = Rooms {
        closed: closed.clone(),
        ..Rooms::default()
    };
    let mut hub = Hub::new(HubConfig::default(), state, |_| Member);
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    // Room for the greeting and one more frame in the middle member's queue.
    let queues = [1000, 2, 1000];
    let mut receivers = Vec::new();
    let mut ids = Vec::new();
    for frames in queues {
        let (outbox, receiver) = Outbox::new(frames, usize::MAX);
        ids.push(hub.connect(addr, outbox));
        receivers.push(receiver);
    }
    let members = ids.clone();
    hub.with_context(|ctx| {
        for id in members {
            assert!(ctx.add_to_group(id, "room"));
        }
    });
    let sent: Vec<usize> = (0..3)
        .map(|n| hub.with_context(|ctx| ctx.send_to_group("room", &Ticked { n })))
        .collect();
    // The second send overflowed the middle member's queue: it was not counted, and the
    // member after it still got the frame.
    assert_eq!(sent, [3, 2, 2]);
    assert_eq!(hub.len(), 2);
    assert_eq!(
        closed.lock().unwrap().clone(),
        [(
            ids[1].get(),
            CloseReason::SlowConsumer,
            vec!["room".to_owned()]
        )]
    );
    assert_eq!(
        hub.with_context(|ctx| sorted(ctx.group_members("room"))),
        [ids[0], ids[2]]
    );
    let frames = |r: &mut OutboxReceiver| {
        let mut n = 0;
        while r.try_recv().is_some() {
            n += 1;
        }
        n
    };
    // The others: greeting, 3 ticks and the dropped member's goodbye from its `on_close`.
    // The dropped one: greeting and the first tick.
    assert_eq!(
        receivers.iter_mut().map(frames).collect::<Vec<_>>(),
        [5, 2, 5]
    );
}
