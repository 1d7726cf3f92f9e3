//! Slow work from handlers: `ctx.spawn` runs a future off the dispatch loop and brings its
//! result back to the channel; `ctx.handle()` reaches the server from the future. The "database"
//! answers when the test says so, never after a delay.

mod server_support;

use std::sync::{Arc, Mutex};

use repod::server::{Server, ServerContext};
use repod::{ChannelId, Codec, CodecKind, Context, Hub, HubConfig, RawMessage};
use serde::{Deserialize, Serialize};
use server_support::{eventually, serve, within, TestClient};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("login")]
pub struct Login {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("checking")]
pub struct Checking {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("welcome")]
pub struct Welcome {
    pub name: String,
    /// How many chat lines this channel handled while its login was checked.
    pub chatted_meanwhile: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub struct Chat {
    pub n: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("heard")]
pub struct Heard {
    pub from: ChannelId,
    pub n: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("saved")]
pub struct Saved {
    pub rows: u64,
}

/// A question to the test's "database": the name to check, where to answer, and a signal that
/// fires when the handler's continuation is dropped, whether it ran or not.
pub struct Query {
    pub name: String,
    pub answer: oneshot::Sender<bool>,
    pub continuation_dropped: oneshot::Receiver<()>,
}

/// Fires its signal when dropped.
struct DropSignal(#[allow(dead_code)] oneshot::Sender<()>);

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Resumed(ChannelId, bool),
    Closed(ChannelId),
}

#[derive(Default)]
pub struct Lobby {
    /// Where handlers send their questions; the test answers them.
    pub db: Option<mpsc::UnboundedSender<Query>>,
    pub events: Arc<Mutex<Vec<Event>>>,
}

#[derive(Default)]
struct Player {
    name: Option<String>,
    checking: bool,
    chatted: u64,
}

#[repod::channel(state = Lobby)]
impl Player {
    #[action]
    fn login(&mut self, ctx: &mut Context<'_, Self>, msg: Login) -> Result<(), &'static str> {
        if self.checking || self.name.is_some() {
            return Err("already logging in");
        }
        self.checking = true;
        self.chatted = 0;
        let db = ctx.state().db.clone().ok_or("no database")?;
        let (answer, answered) = oneshot::channel();
        let (dropped_tx, continuation_dropped) = oneshot::channel();
        db.send(Query {
            name: msg.name.clone(),
            answer,
            continuation_dropped,
        })
        .map_err(|_| "database gone")?;
        let signal = DropSignal(dropped_tx);
        let handle = ctx.handle();
        let id = ctx.id();
        ctx.spawn(
            async move {
                // The future reaches the server on its own through the handle.
                let _ = handle.send_to(
                    id,
                    &Checking {
                        name: msg.name.clone(),
                    },
                );
                let ok = answered.await.unwrap_or(false);
                (msg.name, ok)
            },
            move |player, ctx, (name, ok)| {
                let _signal = signal;
                let me = ctx.id();
                ctx.state()
                    .events
                    .lock()
                    .unwrap()
                    .push(Event::Resumed(me, ok));
                player.checking = false;
                if ok {
                    let chatted_meanwhile = player.chatted;
                    player.name = Some(name.clone());
                    let _ = ctx.send(&Welcome {
                        name,
                        chatted_meanwhile,
                    });
                } else {
                    let _ = ctx.send(&repod::ErrorMessage::new("wrong name"));
                }
            },
        );
        Ok(())
    }

    #[action]
    fn chat(&mut self, ctx: &mut Context<'_, Self>, msg: Chat) {
        self.chatted += 1;
        let from = ctx.id();
        ctx.send_to_others(&Heard { from, n: msg.n });
    }

    fn on_close(&mut self, ctx: &mut Context<'_, Self>) {
        let me = ctx.id();
        ctx.state().events.lock().unwrap().push(Event::Closed(me));
    }
}

struct Setup {
    addr: std::net::SocketAddr,
    handle: repod::server::ServerHandle<Player>,
    server: tokio::task::JoinHandle<Result<(), repod::server::ServerError>>,
    queries: mpsc::UnboundedReceiver<Query>,
    events: Arc<Mutex<Vec<Event>>>,
}

async fn setup() -> Setup {
    let (db, queries) = mpsc::unbounded_channel();
    let events = Arc::new(Mutex::new(Vec::new()));
    let state = Lobby {
        db: Some(db),
        events: events.clone(),
    };
    let (addr, handle, server) = serve(Server::<Player>::builder_with_state(state)).await;
    Setup {
        addr,
        handle,
        server,
        queries,
        events,
    }
}

async fn player(addr: std::net::SocketAddr) -> TestClient {
    TestClient::connect(addr, CodecKind::Bincode).await
}

#[tokio::test]
async fn others_keep_playing_while_a_login_waits_for_the_database() {
    within(async {
        let mut s = setup().await;
        let mut alice = player(s.addr).await;
        alice
            .send(&Login {
                name: "alice".into(),
            })
            .await;
        // The handler asked the database, and returned: its future now waits for the answer.
        let query = s.queries.recv().await.expect("a query");
        assert_eq!(query.name, "alice");
        assert_eq!(alice.expect::<Checking>().await.name, "alice");

        // Meanwhile two other players exchange messages, and so does alice herself.
        let mut bob = player(s.addr).await;
        let mut carol = player(s.addr).await;
        for n in 0..50 {
            bob.send(&Chat { n }).await;
            let heard = carol.expect::<Heard>().await;
            assert_eq!(heard.n, n);
            assert_eq!(alice.expect::<Heard>().await.n, n);
            carol.send(&Chat { n: 1000 + n }).await;
            assert_eq!(bob.expect::<Heard>().await.n, 1000 + n);
            assert_eq!(alice.expect::<Heard>().await.n, 1000 + n);
        }
        alice.send(&Chat { n: 7 }).await;
        assert_eq!(bob.expect::<Heard>().await.n, 7);
        assert_eq!(carol.expect::<Heard>().await.n, 7);
        assert!(s.events.lock().unwrap().is_empty(), "nothing resumed yet");

        // The database answers: the continuation runs on the loop, with alice's channel.
        query.answer.send(true).unwrap();
        let welcome = alice.expect::<Welcome>().await;
        assert_eq!(welcome.name, "alice");
        assert_eq!(
            welcome.chatted_meanwhile, 1,
            "the channel's own state, updated meanwhile"
        );
        query.continuation_dropped.await.unwrap_err();
        let alice_id = match s.events.lock().unwrap().as_slice() {
            [Event::Resumed(id, true)] => *id,
            other => panic!("unexpected events {other:?}"),
        };
        let name = s
            .handle
            .call(move |ctx| ctx.channel(alice_id).and_then(|p| p.name.clone()))
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("alice"));

        // A wrong name is reported the same way.
        let mut dave = player(s.addr).await;
        dave.send(&Login {
            name: "dave".into(),
        })
        .await;
        let query = s.queries.recv().await.expect("a query");
        assert_eq!(dave.expect::<Checking>().await.name, "dave");
        query.answer.send(false).unwrap();
        assert_eq!(
            dave.expect::<repod::ErrorMessage>().await.message,
            "wrong name"
        );

        s.handle.shutdown();
        s.server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_player_gone_before_the_answer_is_never_resumed() {
    within(async {
        let mut s = setup().await;
        let mut alice = player(s.addr).await;
        alice
            .send(&Login {
                name: "alice".into(),
            })
            .await;
        let query = s.queries.recv().await.expect("a query");
        assert_eq!(alice.expect::<Checking>().await.name, "alice");
        drop(alice);
        let events = s.events.clone();
        eventually(|| {
            events
                .lock()
                .unwrap()
                .iter()
                .any(|e| matches!(e, Event::Closed(_)))
        })
        .await;

        // The answer arrives for a channel that is gone: the continuation is dropped, unrun.
        query.answer.send(true).unwrap();
        query.continuation_dropped.await.unwrap_err();
        assert!(
            !s.events
                .lock()
                .unwrap()
                .iter()
                .any(|e| matches!(e, Event::Resumed(..))),
            "resumed a closed channel: {:?}",
            s.events.lock().unwrap()
        );

        // The server is unharmed: a new player logs in as usual.
        assert!(s.handle.is_running());
        let mut bob = player(s.addr).await;
        bob.send(&Login { name: "bob".into() }).await;
        let query = s.queries.recv().await.expect("a query");
        assert_eq!(bob.expect::<Checking>().await.name, "bob");
        query.answer.send(true).unwrap();
        assert_eq!(bob.expect::<Welcome>().await.name, "bob");

        s.handle.shutdown();
        s.server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn the_server_stopping_first_drops_the_continuation() {
    within(async {
        let mut s = setup().await;
        let mut alice = player(s.addr).await;
        alice
            .send(&Login {
                name: "alice".into(),
            })
            .await;
        let query = s.queries.recv().await.expect("a query");
        assert_eq!(alice.expect::<Checking>().await.name, "alice");
        s.handle.shutdown();
        s.server.await.unwrap().unwrap();
        // The future is still pending on this runtime; answering it finds no server.
        let _ = query.answer.send(true);
        query.continuation_dropped.await.unwrap_err();
        assert!(!s
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::Resumed(..))));
    })
    .await;
}

#[tokio::test]
async fn a_tick_spawns_work_and_gets_its_result_on_the_loop() {
    within(async {
        let s = setup().await;
        let mut alice = TestClient::connect(s.addr, CodecKind::Bincode).await;
        let mut bob = TestClient::connect(s.addr, CodecKind::Bincode).await;
        let (save_tx, save_rx) = oneshot::channel::<u64>();
        // Run through the handle, as a tick would: a `ServerContext` spawns a slow save.
        s.handle
            .call(move |ctx: &mut ServerContext<'_, Player>| {
                ctx.spawn(async move { save_rx.await.unwrap_or(0) }, |ctx, rows| {
                    assert_eq!(ctx.send_to_all(&Saved { rows }), 2);
                });
            })
            .await
            .unwrap();
        // The loop is free meanwhile.
        bob.send(&Chat { n: 1 }).await;
        assert_eq!(alice.expect::<Heard>().await.n, 1);
        save_tx.send(42).unwrap();
        assert_eq!(alice.expect::<Saved>().await.rows, 42);
        assert_eq!(bob.expect::<Saved>().await.rows, 42);
        s.handle.shutdown();
        s.server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_hub_runs_spawned_work_when_told() {
    #[derive(Default)]
    struct Echoer;

    #[repod::channel(state = Option<oneshot::Receiver<u64>>)]
    impl Echoer {
        #[action]
        fn chat(&mut self, ctx: &mut Context<'_, Self>, _msg: Chat) {
            let rx = ctx.state_mut().take().expect("one question");
            ctx.spawn(async move { rx.await.unwrap_or(0) }, |_, ctx, n| {
                let _ = ctx.send(&Chat { n });
            });
        }
    }

    let (tx, rx) = oneshot::channel();
    let mut hub = Hub::new(HubConfig::default(), Some(rx), |_| Echoer);
    let (outbox, mut frames) = repod::server::Outbox::new(100, usize::MAX);
    let id = hub.connect("127.0.0.1:9".parse().unwrap(), outbox);
    frames.try_recv().expect("the greeting");
    hub.dispatch(
        id,
        RawMessage::from_message(CodecKind::Bincode, &Chat { n: 0 }).unwrap(),
    );
    assert_eq!(hub.run_commands(), 0, "the future has not finished");
    tx.send(9).unwrap();
    within(hub.run_next_command()).await;
    let frame = frames.try_recv().expect("the continuation's reply");
    let raw = CodecKind::Bincode.decode_raw(frame.slice(4..)).unwrap();
    assert_eq!(raw.decode::<Chat>().unwrap(), Chat { n: 9 });
}
