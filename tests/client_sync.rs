//! The game-loop client against a scripted server on 127.0.0.1.

mod client_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use client_support::*;
use repod::{Client, CodecKind, SendError};

fn connect(server: &TestServer) -> Client {
    Client::builder()
        .codec(server.codec)
        .connect(server.addr)
        .unwrap()
}

#[test]
fn client_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Client>();
    check::<repod::ClientSender>();
}

#[test]
fn connect_returns_at_once_and_connected_arrives_once() {
    for codec in CODECS {
        let server = TestServer::start(codec, Greeting::Rust);
        let started = Instant::now();
        let mut client = connect(&server);
        assert!(started.elapsed() < Duration::from_millis(500));
        let mut rec = Recorder::default();
        pump_until(&mut client, &mut rec, |r| r.count("connected") == 1);
        assert!(client.is_connected());
        // A round trip after the greeting proves the greeting was already handled.
        client.send(&Chat { text: "hi".into() }).unwrap();
        pump_until(&mut client, &mut rec, |r| r.count("chat") == 1);
        pump_for(&mut client, &mut rec, Duration::from_millis(50));
        assert_eq!(
            rec.actions(),
            ["socketConnect", "connected", "chat"],
            "{codec}"
        );
    }
}

/// `connected` is the server's greeting, not the TCP connect: a peer that never greets leaves
/// the client at `socketConnect`, with messages flowing all the same.
#[test]
fn connected_waits_for_the_servers_greeting() {
    for codec in CODECS {
        let server = TestServer::start(codec, Greeting::None);
        let mut client = connect(&server);
        let mut rec = Recorder::default();
        pump_until(&mut client, &mut rec, |r| r.count("socketConnect") == 1);
        assert!(client.is_connected());
        client.send(&Chat { text: "hi".into() }).unwrap();
        pump_until(&mut client, &mut rec, |r| r.count("chat") == 1);
        pump_for(&mut client, &mut rec, Duration::from_millis(50));
        assert_eq!(rec.actions(), ["socketConnect", "chat"], "{codec}");
    }
}

#[test]
fn python_greeting_is_delivered_once() {
    let server = TestServer::start(CodecKind::MsgPack, Greeting::Python);
    let mut client = connect(&server);
    let mut rec = Recorder::default();
    pump_until(&mut client, &mut rec, |r| r.count("connected") == 1);
    client.send(&Chat { text: "hi".into() }).unwrap();
    pump_until(&mut client, &mut rec, |r| r.count("chat") == 1);
    assert_eq!(rec.actions(), ["socketConnect", "connected", "chat"]);
}

#[test]
fn messages_round_trip_both_ways() {
    for codec in CODECS {
        let server = TestServer::start(codec, Greeting::Rust);
        let mut client = connect(&server);
        let mut rec = Recorder::default();
        pump_until(&mut client, &mut rec, |r| r.count("connected") == 1);
        for i in 0..100 {
            client
                .send(&Chat {
                    text: format!("m{i}"),
                })
                .unwrap();
        }
        for i in 0..100 {
            let (_, msg) = server.next_frame();
            assert_eq!(msg.decode::<Chat>().unwrap().text, format!("m{i}"));
        }
        server.send(&Join {
            name: "from server".into(),
        });
        pump_until(&mut client, &mut rec, |r| {
            r.count("chat") == 100 && r.count("join") == 1
        });
        let texts: Vec<String> = rec
            .events
            .iter()
            .filter(|m| m.action() == "chat")
            .map(|m| m.decode::<Chat>().unwrap().text)
            .collect();
        assert_eq!(texts, (0..100).map(|i| format!("m{i}")).collect::<Vec<_>>());
        let join: Join = rec.first("join").unwrap().decode().unwrap();
        assert_eq!(join.name, "from server", "{codec}");
    }
}

#[test]
fn sent_message_leaves_without_pump() {
    for codec in CODECS {
        let server = TestServer::start(codec, Greeting::Rust);
        let mut client = connect(&server);
        let mut rec = Recorder::default();
        pump_until(&mut client, &mut rec, |r| r.count("connected") == 1);
        // Queue, then block this thread on the server's report: nobody pumps meanwhile.
        let sent = Instant::now();
        client.send(&Chat { text: "now".into() }).unwrap();
        let (arrived, msg) = server.next_frame();
        assert_eq!(msg.decode::<Chat>().unwrap().text, "now");
        let latency = arrived.duration_since(sent);
        assert!(latency < Duration::from_millis(500), "took {latency:?}");
        // Also from another thread, while this one sleeps.
        let sender = client.sender();
        std::thread::spawn(move || {
            sender
                .send(&Chat {
                    text: "other".into(),
                })
                .unwrap()
        })
        .join()
        .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let (_, msg) = server.next_frame();
        assert_eq!(msg.decode::<Chat>().unwrap().text, "other");
    }
}

#[test]
fn sends_from_many_threads_all_arrive() {
    let server = TestServer::start(CodecKind::Bincode, Greeting::Rust);
    let client = Arc::new(connect(&server));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    client
                        .send(&Chat {
                            text: format!("{t}-{i}"),
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let mut texts: Vec<String> = (0..200)
        .map(|_| server.next_frame().1.decode::<Chat>().unwrap().text)
        .collect();
    texts.sort();
    let mut expected: Vec<String> = (0..4)
        .flat_map(|t| (0..50).map(move |i| format!("{t}-{i}")))
        .collect();
    expected.sort();
    assert_eq!(texts, expected);
}

#[test]
fn handler_replies_through_context() {
    for codec in CODECS {
        let server = TestServer::start(codec, Greeting::Rust);
        let mut client = connect(&server);
        let mut rec = Recorder {
            join_as: Some("alice".into()),
            ..Recorder::default()
        };
        pump_until(&mut client, &mut rec, |r| r.count("connected") == 1);
        let (_, msg) = server.next_frame();
        assert_eq!(msg.decode::<Join>().unwrap().name, "alice", "{codec}");
        // The echo comes back as a `join` event.
        pump_until(&mut client, &mut rec, |r| r.count("join") == 1);
    }
}

#[test]
fn server_close_delivers_disconnected_once() {
    for codec in CODECS {
        let server = TestServer::start(codec, Greeting::Rust);
        let mut client = connect(&server);
        let mut rec = Recorder::default();
        pump_until(&mut client, &mut rec, |r| r.count("connected") == 1);
        server.close();
        pump_until(&mut client, &mut rec, |r| r.count("disconnected") == 1);
        pump_for(&mut client, &mut rec, Duration::from_millis(50));
        assert_eq!(rec.count("disconnected"), 1);
        assert_eq!(rec.actions().last(), Some(&"disconnected"));
        assert_eq!(rec.disconnect_reason().unwrap(), "closed by peer");
        assert!(!client.is_connected());
        assert_eq!(
            client.send(&Chat {
                text: "late".into()
            }),
            Err(SendError::Closed)
        );
    }
}

#[test]
fn client_close_flushes_and_delivers_disconnected_once() {
    for codec in CODECS {
        let server = TestServer::start(codec, Greeting::Rust);
        let mut client = connect(&server);
        let mut rec = Recorder::default();
        pump_until(&mut client, &mut rec, |r| r.count("connected") == 1);
        for i in 0..20 {
            client
                .send(&Chat {
                    text: format!("m{i}"),
                })
                .unwrap();
        }
        client.close();
        assert!(!client.is_connected());
        assert_eq!(
            client.send(&Chat {
                text: "late".into()
            }),
            Err(SendError::Closed)
        );
        let frames = server.frames_until_eof();
        assert_eq!(
            frames.len(),
            20,
            "{codec}: every queued message was flushed"
        );
        pump_until(&mut client, &mut rec, |r| r.count("disconnected") == 1);
        pump_for(&mut client, &mut rec, Duration::from_millis(50));
        assert_eq!(rec.count("disconnected"), 1);
        assert_eq!(rec.disconnect_reason().unwrap(), "closed by client");
        assert_eq!(
            client.send(&Chat {
                text: "later".into()
            }),
            Err(SendError::Closed)
        );
    }
}

#[test]
fn drop_flushes_queued_messages() {
    let server = TestServer::start(CodecKind::MsgPack, Greeting::Rust);
    let client = connect(&server);
    for i in 0..10 {
        client
            .send(&Chat {
                text: format!("m{i}"),
            })
            .unwrap();
    }
    let started = Instant::now();
    drop(client);
    assert!(started.elapsed() < Duration::from_secs(3));
    let frames = server.frames_until_eof();
    assert_eq!(frames.len(), 10);
}

#[test]
fn refused_connection_yields_error_then_disconnected() {
    for codec in CODECS {
        let addr = dead_port();
        let started = Instant::now();
        let mut client = Client::builder().codec(codec).connect(addr).unwrap();
        assert!(started.elapsed() < Duration::from_millis(500));
        let mut rec = Recorder::default();
        pump_until(&mut client, &mut rec, |r| r.count("disconnected") == 1);
        pump_for(&mut client, &mut rec, Duration::from_millis(50));
        assert_eq!(rec.actions(), ["error", "disconnected"]);
        let errors = rec.errors();
        assert!(
            errors[0].contains("cannot connect to") && errors[0].contains(&addr.to_string()),
            "{errors:?}"
        );
        assert!(!client.is_connected());
        assert_eq!(
            client.send(&Chat { text: "x".into() }),
            Err(SendError::Closed)
        );
    }
}

#[test]
fn oversized_frame_yields_error_and_disconnected() {
    let server = TestServer::start(CodecKind::MsgPack, Greeting::Rust);
    let mut client = Client::builder()
        .codec(CodecKind::MsgPack)
        .max_frame_len(1024)
        .connect(server.addr)
        .unwrap();
    let mut rec = Recorder::default();
    pump_until(&mut client, &mut rec, |r| r.count("connected") == 1);
    server.send_raw(&4096u32.to_be_bytes());
    pump_until(&mut client, &mut rec, |r| r.count("disconnected") == 1);
    let errors = rec.errors();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("4096") && errors[0].contains("1024"),
        "{errors:?}"
    );
    assert!(rec
        .disconnect_reason()
        .unwrap()
        .starts_with("protocol error"));
    // The limit applies to sending too.
    let big = Chat {
        text: "x".repeat(2048),
    };
    assert!(matches!(
        client.send(&big),
        Err(SendError::Codec(_) | SendError::Closed)
    ));
}

#[test]
fn oversized_send_is_refused() {
    let server = TestServer::start(CodecKind::Bincode, Greeting::Rust);
    let client = Client::builder()
        .max_frame_len(64)
        .connect(server.addr)
        .unwrap();
    let big = Chat {
        text: "x".repeat(100),
    };
    assert!(matches!(client.send(&big), Err(SendError::Codec(_))));
    client.send(&Chat { text: "ok".into() }).unwrap();
    assert_eq!(server.next_frame().1.decode::<Chat>().unwrap().text, "ok");
}

#[test]
fn undecodable_frame_yields_error_and_connection_stays() {
    for (codec, garbage) in [
        (CodecKind::MsgPack, &b"\x00\x00\x00\x01\x07"[..]),
        (CodecKind::Bincode, &b"\x00\x00\x00\x02\xfc\xff"[..]),
    ] {
        let server = TestServer::start(codec, Greeting::Rust);
        let mut client = connect(&server);
        let mut rec = Recorder::default();
        pump_until(&mut client, &mut rec, |r| r.count("connected") == 1);
        server.send_raw(garbage);
        pump_until(&mut client, &mut rec, |r| r.count("error") == 1);
        assert!(
            rec.errors()[0].contains("undecodable"),
            "{:?}",
            rec.errors()
        );
        client
            .send(&Chat {
                text: "still".into(),
            })
            .unwrap();
        pump_until(&mut client, &mut rec, |r| r.count("chat") == 1);
        assert_eq!(rec.count("disconnected"), 0, "{codec}");
    }
}

#[test]
fn pump_is_bounded_by_what_was_queued() {
    // A listener that answers every chat with a chat, against an echo server: an endless
    // ping-pong, yet every pump returns.
    struct PingPong(usize);
    impl repod::Listener for PingPong {
        const ACTIONS: &'static [&'static str] = &["chat"];
        fn dispatch(&mut self, ctx: &mut repod::ClientContext<'_>, msg: repod::RawMessage) {
            if msg.action() == "chat" {
                self.0 += 1;
                let _ = ctx.send(&Chat {
                    text: "again".into(),
                });
            }
        }
    }
    let server = TestServer::start(CodecKind::Bincode, Greeting::Rust);
    let mut client = connect(&server);
    client.send(&Chat { text: "go".into() }).unwrap();
    let mut listener = PingPong(0);
    let started = Instant::now();
    while listener.0 < 50 {
        client.pump(&mut listener);
        assert!(started.elapsed() < DEADLINE);
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn pump_returns_although_handlers_raise_events() {
    // Every chat raises another chat locally: pump must still return, one step at a time.
    struct Raiser(usize);
    impl repod::Listener for Raiser {
        const ACTIONS: &'static [&'static str] = &["chat"];
        fn dispatch(&mut self, ctx: &mut repod::ClientContext<'_>, msg: repod::RawMessage) {
            if msg.action() == "chat" {
                self.0 += 1;
                ctx.raise(&Chat {
                    text: "more".into(),
                });
            }
        }
    }
    let server = TestServer::start(CodecKind::MsgPack, Greeting::Rust);
    let mut client = connect(&server);
    client.send(&Chat { text: "go".into() }).unwrap();
    let mut listener = Raiser(0);
    let started = Instant::now();
    while listener.0 == 0 {
        client.pump(&mut listener);
        assert!(started.elapsed() < DEADLINE);
        std::thread::sleep(Duration::from_millis(1));
    }
    for _ in 0..10 {
        assert_eq!(client.pump(&mut listener), 1);
    }
}

#[test]
fn close_while_connecting_is_clean() {
    // A listener that never accepts, its backlog filled: the kernel stops answering new
    // connection attempts, so the client stays in its TCP connect.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    let full = (0..2000).any(|_| {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(stream) => {
                held.push(stream);
                false
            }
            Err(_) => true,
        }
    });
    assert!(full, "the listener's backlog never filled");

    let mut client = Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .connect(addr)
        .unwrap();
    let mut rec = Recorder::default();
    pump_for(&mut client, &mut rec, Duration::from_millis(200));
    assert!(
        rec.events.is_empty(),
        "still connecting: {:?}",
        rec.actions()
    );
    assert!(!client.is_connected());

    let started = Instant::now();
    client.close();
    pump_until(&mut client, &mut rec, |r| r.count("disconnected") == 1);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "closing took {:?}",
        started.elapsed()
    );
    pump_for(&mut client, &mut rec, Duration::from_millis(50));
    assert_eq!(rec.actions(), ["disconnected"]);
    assert_eq!(rec.disconnect_reason().unwrap(), "closed by client");
    drop(held);
    drop(listener);
}

#[test]
fn small_event_queue_loses_nothing_while_the_game_does_not_pump() {
    let server = TestServer::start(CodecKind::Bincode, Greeting::Rust);
    let mut client = Client::builder()
        .event_queue(4)
        .connect(server.addr)
        .unwrap();
    for i in 0..500 {
        server.send(&Chat {
            text: format!("m{i}"),
        });
    }
    // Nobody pumps: the reader stops at the queue's capacity and the rest waits in the socket.
    std::thread::sleep(Duration::from_millis(100));
    let mut rec = Recorder::default();
    pump_until(&mut client, &mut rec, |r| r.count("chat") == 500);
    let texts: Vec<String> = rec
        .events
        .iter()
        .filter(|m| m.action() == "chat")
        .map(|m| m.decode::<Chat>().unwrap().text)
        .collect();
    assert_eq!(texts, (0..500).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert_eq!(rec.count("connected"), 1);
}

#[test]
fn a_send_reported_ok_is_never_lost_to_a_racing_close() {
    // Threads send as fast as they can while the client closes: every send that returned Ok
    // must reach the server; the ones after the last drain must fail with `Closed`.
    for round in 0..20 {
        let server = TestServer::start(CodecKind::Bincode, Greeting::Rust);
        let mut client = connect(&server);
        let mut rec = Recorder::default();
        pump_until(&mut client, &mut rec, |r| r.count("connected") == 1);
        let client = Arc::new(client);
        let senders: Vec<_> = (0..3)
            .map(|t| {
                let client = client.clone();
                std::thread::spawn(move || {
                    let mut ok = 0usize;
                    for i in 0.. {
                        match client.send(&Chat {
                            text: format!("{t}-{i}"),
                        }) {
                            Ok(()) => ok += 1,
                            Err(SendError::QueueFull) => std::thread::yield_now(),
                            Err(SendError::Closed) => return ok,
                            Err(other) => panic!("unexpected send error: {other}"),
                        }
                    }
                    ok
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1 + round % 5));
        client.close();
        let sent: usize = senders.into_iter().map(|s| s.join().unwrap()).sum();
        let received = server.frames_until_eof().len();
        assert_eq!(received, sent, "round {round}: Ok sends lost");
    }
}

#[test]
fn an_error_handler_that_cannot_decode_errors_does_not_loop() {
    #[derive(serde::Serialize, serde::Deserialize, repod::Message)]
    #[action("error")]
    struct Strict {
        #[allow(dead_code)]
        code: u32,
    }

    #[derive(Default)]
    struct Listener {
        errors: usize,
        chats: usize,
    }

    #[repod::listener]
    impl Listener {
        #[action]
        fn error(&mut self, _msg: Strict) {
            self.errors += 1;
        }

        #[action]
        fn chat(&mut self, _msg: Chat) {
            self.chats += 1;
        }
    }

    for codec in CODECS {
        let server = TestServer::start(codec, Greeting::Rust);
        let mut client = connect(&server);
        let mut listener = Listener::default();
        server.send(&repod::ErrorMessage::new("boom"));
        server.send(&Chat {
            text: "after".into(),
        });
        let started = Instant::now();
        while listener.chats == 0 {
            client.pump(&mut listener);
            assert!(started.elapsed() < DEADLINE, "{codec}: no chat");
            std::thread::sleep(Duration::from_millis(1));
        }
        // The undecodable `error` was logged, not raised again: nothing is left to pump.
        for _ in 0..5 {
            assert_eq!(client.pump(&mut listener), 0, "{codec}: events keep coming");
        }
        assert_eq!(listener.errors, 0);
    }
}
