//! The real client against the real server, both codecs, in one process ("host and play").

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use repod::client::Client;
use repod::server::Server;
use repod::{CloseReason, CodecKind, Context, Disconnected, ErrorMessage};
use serde::{Deserialize, Serialize};

const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("echo")]
struct Echo {
    seq: u64,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("kick")]
struct Kick;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("stamp")]
struct Stamp;

/// What the server saw, shared with the test through the state.
#[derive(Default)]
struct Seen {
    stamped_at: Option<Instant>,
    closed: Vec<CloseReason>,
}

#[derive(Default)]
struct Log(Arc<Mutex<Seen>>);

#[derive(Default)]
struct EchoChannel;

#[repod::channel(state = Log)]
impl EchoChannel {
    #[action]
    fn echo(&mut self, ctx: &mut Context<'_, Self>, msg: Echo) {
        let _ = ctx.send(&msg);
    }

    #[action("kick")]
    fn kick(&mut self, ctx: &mut Context<'_, Self>) {
        let _ = ctx.send(&ErrorMessage::new("bye"));
        ctx.disconnect();
    }

    #[action("stamp")]
    fn stamp(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.state().0.lock().unwrap().stamped_at = Some(Instant::now());
    }

    fn on_close(&mut self, ctx: &mut Context<'_, Self>, reason: &CloseReason) {
        ctx.state().0.lock().unwrap().closed.push(reason.clone());
    }
}

#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    echoes: Vec<Echo>,
}

#[repod::listener]
impl Recorder {
    #[action("socketConnect")]
    fn socket_connect(&mut self) {
        self.events.push("socketConnect".into());
    }

    #[action("connected")]
    fn connected(&mut self) {
        self.events.push("connected".into());
    }

    #[action]
    fn echo(&mut self, msg: Echo) {
        self.echoes.push(msg);
    }

    #[action]
    fn error(&mut self, e: ErrorMessage) {
        self.events.push(format!("error: {}", e.message));
    }

    #[action]
    fn disconnected(&mut self, _: Disconnected) {
        self.events.push("disconnected".into());
    }
}

fn pump_until(client: &mut Client, rec: &mut Recorder, done: impl Fn(&Recorder) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done(rec) {
        assert!(
            Instant::now() < deadline,
            "timed out; events so far: {:?}",
            rec.events
        );
        client.pump(rec);
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn start(
    codec: CodecKind,
) -> (
    repod::server::BackgroundServer<EchoChannel>,
    Arc<Mutex<Seen>>,
) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server = Server::<EchoChannel>::builder_with_state(Log(seen.clone()))
        .codec(codec)
        .start_background("127.0.0.1:0")
        .unwrap();
    (server, seen)
}

#[test]
fn round_trips_and_closes_with_both_codecs() {
    for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
        let (server, seen) = start(codec);
        let mut client = Client::builder()
            .codec(codec)
            .connect(server.local_addr())
            .unwrap();
        let mut rec = Recorder::default();
        for seq in 0..100 {
            client
                .send(&Echo {
                    seq,
                    text: format!("m{seq}"),
                })
                .unwrap();
        }
        pump_until(&mut client, &mut rec, |r| r.echoes.len() == 100);
        assert!(rec
            .echoes
            .iter()
            .enumerate()
            .all(|(i, e)| e.seq == i as u64));
        // The server's greeting is not delivered a second time.
        assert_eq!(rec.events, ["socketConnect", "connected"], "{codec}");

        // The client closes: `disconnected` once, and the server sees the peer leave.
        client.close();
        pump_until(&mut client, &mut rec, |r| {
            r.events.last().map(String::as_str) == Some("disconnected")
        });
        let deadline = Instant::now() + DEADLINE;
        while seen.lock().unwrap().closed.is_empty() {
            assert!(Instant::now() < deadline, "the server never saw the close");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(seen.lock().unwrap().closed, [CloseReason::PeerClosed]);
        std::thread::sleep(Duration::from_millis(50));
        client.pump(&mut rec);
        assert_eq!(
            rec.events,
            ["socketConnect", "connected", "disconnected"],
            "{codec}"
        );
        assert!(client.send(&Kick).is_err(), "send after close is an error");
        server.shutdown().unwrap();
    }
}

#[test]
fn server_side_close_delivers_queued_reply_then_disconnected() {
    for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
        let (server, seen) = start(codec);
        let mut client = Client::builder()
            .codec(codec)
            .connect(server.local_addr())
            .unwrap();
        let mut rec = Recorder::default();
        client.send(&Kick).unwrap();
        pump_until(&mut client, &mut rec, |r| {
            r.events.last().map(String::as_str) == Some("disconnected")
        });
        assert_eq!(
            rec.events,
            ["socketConnect", "connected", "error: bye", "disconnected"],
            "{codec}"
        );
        assert_eq!(seen.lock().unwrap().closed, [CloseReason::Disconnected]);
        assert!(!client.is_connected());
    }
}

#[test]
fn server_shutdown_makes_pump_deliver_disconnected() {
    let (server, _seen) = start(CodecKind::Bincode);
    let mut client = Client::connect(server.local_addr()).unwrap();
    let mut rec = Recorder::default();
    pump_until(&mut client, &mut rec, |r| r.events.len() == 2);
    server.shutdown().unwrap();
    pump_until(&mut client, &mut rec, |r| r.events.len() == 3);
    assert_eq!(rec.events, ["socketConnect", "connected", "disconnected"]);
}

#[test]
fn a_send_reaches_the_server_without_a_pump() {
    let (server, seen) = start(CodecKind::Bincode);
    let mut client = Client::connect(server.local_addr()).unwrap();
    let mut rec = Recorder::default();
    pump_until(&mut client, &mut rec, |r| r.events.len() == 2);

    let sent_at = Instant::now();
    client.send(&Stamp).unwrap();
    // The game thread is busy elsewhere and does not pump; the message must still arrive.
    let deadline = sent_at + DEADLINE;
    let arrived_at = loop {
        if let Some(at) = seen.lock().unwrap().stamped_at {
            break at;
        }
        assert!(
            Instant::now() < deadline,
            "the message never reached the server"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(arrived_at >= sent_at);
    // No pump happened in between: the event queue still holds nothing new.
    assert_eq!(client.pump(&mut rec), 0);
}

/// A server that is full refuses the client: the TCP connection opens (`socketConnect`), but
/// the server's answer is `error` ("server full") and a close, never the `connected` greeting.
#[test]
fn a_refused_client_never_sees_connected() {
    for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let server = Server::<EchoChannel>::builder_with_state(Log(seen))
            .codec(codec)
            .max_connections(1)
            .start_background("127.0.0.1:0")
            .unwrap();
        // The builder is kept by value and used twice; the address is borrowed.
        let builder = Client::builder().codec(codec);
        let addr = server.local_addr().to_string();
        let mut first = builder.connect(addr.as_str()).unwrap();
        let mut first_rec = Recorder::default();
        pump_until(&mut first, &mut first_rec, |r| {
            r.events.iter().any(|e| e == "connected")
        });
        let mut refused = builder.connect(addr.as_str()).unwrap();
        drop(addr);
        let mut rec = Recorder::default();
        pump_until(&mut refused, &mut rec, |r| {
            r.events.iter().any(|e| e == "disconnected")
        });
        assert_eq!(
            rec.events,
            ["socketConnect", "error: server full", "disconnected"],
            "{codec}"
        );
        // The accepted client was greeted once and still works.
        first
            .send(&Echo {
                seq: 1,
                text: "still here".into(),
            })
            .unwrap();
        pump_until(&mut first, &mut first_rec, |r| r.echoes.len() == 1);
        assert_eq!(first_rec.events, ["socketConnect", "connected"], "{codec}");
    }
}
