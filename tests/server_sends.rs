//! What sends return: a send to one channel says why it failed, a send to many counts, a
//! handle's send says whether the loop got it; channel ids travel in messages.

mod server_support;

use std::net::SocketAddr;

use repod::server::{Outbox, OutboxReceiver};
use repod::{ChannelId, Codec, CodecError, CodecKind, Context, Hub, HubConfig, SendError};
use serde::{Deserialize, Serialize};
use server_support::{serve, within, TestClient};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("note")]
pub struct Note {
    pub text: String,
}

#[derive(Default)]
struct Quiet;

#[repod::channel]
impl Quiet {}

const MAX_FRAME: usize = 1024;

fn hub() -> Hub<Quiet> {
    Hub::new(
        HubConfig {
            codec: CodecKind::Bincode,
            max_frame_len: MAX_FRAME,
        },
        (),
        |_| Quiet,
    )
}

fn addr() -> SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

/// Connects a channel whose queue holds `frames` frames (the greeting takes one).
fn connect(hub: &mut Hub<Quiet>, frames: usize) -> (ChannelId, OutboxReceiver) {
    let (outbox, receiver) = Outbox::new(frames, usize::MAX);
    (hub.connect(addr(), outbox), receiver)
}

fn note(text: &str) -> Note {
    Note {
        text: text.to_owned(),
    }
}

fn too_big() -> Note {
    note(&"x".repeat(MAX_FRAME + 1))
}

#[test]
fn a_send_to_one_channel_says_why_it_failed() {
    let mut hub = hub();
    let (a, _a_rx) = connect(&mut hub, 100);
    let (b, _b_rx) = connect(&mut hub, 2);
    hub.with_context(|ctx| {
        assert_eq!(ctx.send_to(a, &note("hi")), Ok(()));
        assert_eq!(
            ctx.send_to(ChannelId::new(999), &note("hi")),
            Err(SendError::NoSuchChannel(999))
        );
        assert!(matches!(
            ctx.send_to(a, &too_big()),
            Err(SendError::Codec(CodecError::TooLarge { .. }))
        ));
        // `b` holds its greeting and one more frame; the next one overflows its queue.
        assert_eq!(ctx.send_to(b, &note("one")), Ok(()));
        assert_eq!(ctx.send_to(b, &note("two")), Err(SendError::QueueFull));
        // It is being dropped as a slow consumer: nothing more is queued to it.
        assert_eq!(ctx.send_to(b, &note("three")), Err(SendError::Closed));
    });
    assert_eq!(hub.peers().len(), 1, "the slow consumer is gone");
    let frame = hub.with_context(|ctx| ctx.encode(&note("framed"))).unwrap();
    hub.with_context(|ctx| {
        assert_eq!(ctx.send_frame_to(a, &frame), Ok(()));
        assert_eq!(
            ctx.send_frame_to(b, &frame),
            Err(SendError::NoSuchChannel(b.get()))
        );
    });
}

#[test]
fn a_reply_says_why_it_failed() {
    #[derive(Default)]
    struct Replier;

    #[repod::channel(state = Vec<Result<(), SendError>>)]
    impl Replier {
        #[action]
        fn note(&mut self, ctx: &mut Context<'_, Self>, msg: Note) {
            let small = ctx.send(&msg);
            let big = ctx.send(&too_big());
            let frame = ctx.encode(&msg).unwrap();
            let framed = ctx.send_frame(&frame);
            ctx.state_mut().extend([small, big, framed]);
        }
    }

    let mut hub = Hub::new(
        HubConfig {
            codec: CodecKind::Bincode,
            max_frame_len: MAX_FRAME,
        },
        Vec::new(),
        |_| Replier,
    );
    // Room for the greeting and one reply.
    let (outbox, mut receiver) = Outbox::new(2, usize::MAX);
    let id = hub.connect(addr(), outbox);
    let msg = repod::RawMessage::from_message(CodecKind::Bincode, &note("hi")).unwrap();
    hub.dispatch(id, msg);
    let results = hub.state().clone();
    assert_eq!(results[0], Ok(()));
    assert!(matches!(
        results[1],
        Err(SendError::Codec(CodecError::TooLarge { .. }))
    ));
    assert_eq!(results[2], Err(SendError::QueueFull));
    assert!(hub.is_empty(), "the overflow dropped the channel");
    let mut actions = Vec::new();
    while let Some(frame) = receiver.try_recv() {
        let raw = CodecKind::Bincode.decode_raw(frame.slice(4..)).unwrap();
        actions.push(raw.action().to_owned());
    }
    assert_eq!(actions, ["connected", "note"]);
}

#[test]
fn a_send_to_many_counts_the_channels_it_reached() {
    let mut hub = hub();
    let (a, _a_rx) = connect(&mut hub, 100);
    let (b, _b_rx) = connect(&mut hub, 100);
    let (_c, _c_rx) = connect(&mut hub, 2);
    hub.with_context(|ctx| {
        assert!(ctx.add_to_group(a, "room"));
        assert!(ctx.add_to_group(b, "room"));
        assert_eq!(ctx.send_to_all(&note("1")), 3);
        // The third channel's queue overflows: it is skipped, and dropped.
        assert_eq!(ctx.send_to_all(&note("2")), 2);
        assert_eq!(ctx.send_to_group("room", &note("3")), 2);
        assert_eq!(ctx.send_to_group("nobody", &note("4")), 0);
        assert_eq!(ctx.send_to_group_except("room", a, &note("5")), 1);
        // A message that cannot be encoded reaches nobody.
        assert_eq!(ctx.send_to_all(&too_big()), 0);
        assert_eq!(ctx.send_to_group("room", &too_big()), 0);
        let frame = ctx.encode(&note("6")).unwrap();
        assert_eq!(ctx.send_frame_to_many([a, ChannelId::new(999)], &frame), 1);
        assert_eq!(ctx.send_frame_to_all(&frame), 2);
        // Encoding first gives the error the count cannot.
        assert!(matches!(
            ctx.encode(&too_big()),
            Err(CodecError::TooLarge { .. })
        ));
    });
}

#[test]
fn a_flushing_close_still_takes_messages() {
    let mut hub = hub();
    let (a, mut rx) = connect(&mut hub, 100);
    hub.with_context(|ctx| {
        ctx.disconnect_peer(a);
        // The close is processed after this closure; until then a goodbye can still go.
        assert_eq!(ctx.send_to(a, &note("bye")), Ok(()));
    });
    assert!(hub.is_empty());
    let mut actions = Vec::new();
    while let Some(frame) = rx.try_recv() {
        actions.push(
            CodecKind::Bincode
                .decode_raw(frame.slice(4..))
                .unwrap()
                .action()
                .to_owned(),
        );
    }
    assert_eq!(actions, ["connected", "note"]);
}

#[test]
fn a_hubs_handle_queues_to_the_hub_and_fails_after_shutdown() {
    let mut hub = hub();
    let (a, mut rx) = connect(&mut hub, 100);
    let handle = hub.handle();
    assert_eq!(handle.send_to(a, &note("via handle")), Ok(()));
    // An unknown id only reaches the loop's queue: the handle cannot know.
    assert_eq!(handle.send_to(ChannelId::new(999), &note("lost")), Ok(()));
    assert!(matches!(
        handle.send_to(a, &too_big()),
        Err(SendError::Codec(CodecError::TooLarge { .. }))
    ));
    // Nothing is delivered until the hub runs its commands.
    assert!(rx.try_recv().is_some(), "the greeting");
    assert!(rx.try_recv().is_none());
    assert_eq!(hub.run_commands(), 2);
    let frame = rx.try_recv().expect("the handle's message");
    let raw = CodecKind::Bincode.decode_raw(frame.slice(4..)).unwrap();
    assert_eq!(raw.decode::<Note>().unwrap(), note("via handle"));
    hub.shutdown();
    assert_eq!(handle.send_to(a, &note("late")), Err(SendError::Closed));
    assert_eq!(handle.send_to_all(&note("late")), Err(SendError::Closed));
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("target")]
pub struct Target {
    pub id: ChannelId,
    pub others: Vec<ChannelId>,
}

#[test]
fn channel_ids_travel_as_plain_numbers() {
    let msg = Target {
        id: ChannelId::new(7),
        others: vec![ChannelId::new(1), ChannelId::new(u64::MAX)],
    };
    for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
        let frame = codec.encode(&msg, usize::MAX).unwrap();
        let raw = codec.decode_raw(frame.slice(4..)).unwrap();
        assert_eq!(raw.decode::<Target>().unwrap(), msg, "{codec}");
    }
    // With MessagePack, what a Python peer reads: {"action": "target", "id": 7, ...}.
    let frame = CodecKind::MsgPack.encode(&msg, usize::MAX).unwrap();
    let raw = CodecKind::MsgPack.decode_raw(frame.slice(4..)).unwrap();
    assert_eq!(raw.get("id").and_then(|v| v.as_u64()), Some(7));
    let others = raw.get("others").unwrap();
    let others: Vec<u64> = others
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(others, [1, u64::MAX]);
    assert_eq!(u64::from(ChannelId::new(42)), 42);
}

// A player names another by the id the server told it, over real sockets.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("welcome")]
pub struct Welcome {
    pub you: ChannelId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("whisper")]
pub struct Whisper {
    pub to: ChannelId,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("whispered")]
pub struct Whispered {
    pub from: ChannelId,
    pub text: String,
}

#[derive(Default)]
struct Player;

#[repod::channel]
impl Player {
    fn on_connect(&mut self, ctx: &mut Context<'_, Self>) {
        let you = ctx.id();
        let _ = ctx.send(&Welcome { you });
    }

    #[action]
    fn whisper(&mut self, ctx: &mut Context<'_, Self>, msg: Whisper) -> Result<(), String> {
        let from = ctx.id();
        match ctx.send_to(
            msg.to,
            &Whispered {
                from,
                text: msg.text,
            },
        ) {
            Err(SendError::NoSuchChannel(n)) => Err(format!("no player {n}")),
            _ => Ok(()),
        }
    }
}

#[tokio::test]
async fn a_client_names_another_player_by_id() {
    within(async {
        let (addr, handle, server) = serve(repod::server::Server::<Player>::builder()).await;
        let mut alice = TestClient::connect(addr, CodecKind::Bincode).await;
        let alice_id = alice.expect::<Welcome>().await.you;
        let mut bob = TestClient::connect(addr, CodecKind::Bincode).await;
        let bob_id = bob.expect::<Welcome>().await.you;
        alice
            .send(&Whisper {
                to: bob_id,
                text: "psst".into(),
            })
            .await;
        assert_eq!(
            bob.expect::<Whispered>().await,
            Whispered {
                from: alice_id,
                text: "psst".into()
            }
        );
        // An id nobody has: the sender hears so, and nobody else hears anything.
        alice
            .send(&Whisper {
                to: ChannelId::new(bob_id.get() + 1000),
                text: "hello?".into(),
            })
            .await;
        let error = alice.expect::<repod::ErrorMessage>().await;
        assert_eq!(error.message, format!("no player {}", bob_id.get() + 1000));
        // Bob still hears the next whisper, and nothing came in between.
        alice
            .send(&Whisper {
                to: bob_id,
                text: "again".into(),
            })
            .await;
        assert_eq!(bob.expect::<Whispered>().await.text, "again");
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}
