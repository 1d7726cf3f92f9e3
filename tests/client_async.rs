//! The tokio client against a scripted server on 127.0.0.1.

mod client_support;

use std::time::Duration;

use client_support::*;
use repod::{AsyncClient, CodecKind, ConnectError, SendError};
use tokio::time::timeout;

async fn connect(server: &TestServer) -> AsyncClient {
    AsyncClient::builder()
        .codec(server.codec)
        .connect_async(server.addr)
        .await
        .unwrap()
}

/// Receives events until `action` arrives, returning every action seen.
async fn recv_until(client: &mut AsyncClient, action: &str) -> Vec<String> {
    let mut seen = Vec::new();
    timeout(DEADLINE, async {
        while let Some(msg) = client.recv().await {
            seen.push(msg.action().to_owned());
            if msg.action() == action {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {action}; saw {seen:?}"));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_yields_builtins_messages_and_none_after_disconnected() {
    for codec in CODECS {
        let server = TestServer::start(codec, Greeting::Rust);
        let mut client = connect(&server).await;
        assert!(client.is_connected());
        client.send(&Chat { text: "hi".into() }).unwrap();
        assert_eq!(
            recv_until(&mut client, "chat").await,
            ["socketConnect", "connected", "chat"]
        );
        server.close();
        let msg = timeout(DEADLINE, client.recv()).await.unwrap().unwrap();
        assert_eq!(msg.action(), "disconnected");
        let reason = msg.decode::<repod::Disconnected>().unwrap().reason;
        assert_eq!(reason, "closed by peer");
        assert!(timeout(DEADLINE, client.recv()).await.unwrap().is_none());
        assert_eq!(
            client.send(&Chat {
                text: "late".into()
            }),
            Err(SendError::Closed)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_greeting_gives_one_connected() {
    let server = TestServer::start(CodecKind::MsgPack, Greeting::Python);
    let mut client = connect(&server).await;
    client.send(&Chat { text: "hi".into() }).unwrap();
    assert_eq!(
        recv_until(&mut client, "chat").await,
        ["socketConnect", "connected", "chat"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_dispatches_until_disconnected_and_handlers_reply() {
    let server = TestServer::start(CodecKind::MsgPack, Greeting::Rust);
    let mut client = connect(&server).await;
    let mut rec = Recorder {
        join_as: Some("bob".into()),
        ..Recorder::default()
    };
    let watcher = std::thread::spawn(move || {
        // The `join` sent by the `connected` handler arrives; then close.
        let (_, msg) = server.next_frame();
        let name = msg.decode::<Join>().unwrap().name;
        server.close();
        name
    });
    timeout(DEADLINE, client.run(&mut rec)).await.unwrap();
    assert_eq!(watcher.join().unwrap(), "bob");
    assert_eq!(rec.count("connected"), 1);
    assert_eq!(rec.count("disconnected"), 1);
    assert_eq!(rec.actions().last(), Some(&"disconnected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pump_does_not_wait() {
    let server = TestServer::start(CodecKind::Bincode, Greeting::Rust);
    let mut client = connect(&server).await;
    let mut rec = Recorder::default();
    let started = std::time::Instant::now();
    while rec.count("connected") == 0 {
        client.pump(&mut rec);
        assert!(started.elapsed() < DEADLINE);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(client.pump(&mut rec), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_then_disconnected() {
    let server = TestServer::start(CodecKind::Bincode, Greeting::Rust);
    let mut client = connect(&server).await;
    for i in 0..10 {
        client
            .send(&Chat {
                text: format!("m{i}"),
            })
            .unwrap();
    }
    client.sender().close();
    assert_eq!(
        client.send(&Chat {
            text: "late".into()
        }),
        Err(SendError::Closed)
    );
    let seen = recv_until(&mut client, "disconnected").await;
    assert_eq!(seen.iter().filter(|a| *a == "disconnected").count(), 1);
    let frames = tokio::task::spawn_blocking(move || server.frames_until_eof())
        .await
        .unwrap();
    assert_eq!(frames.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_dead_port_fails() {
    let addr = dead_port();
    let result = timeout(DEADLINE, AsyncClient::connect(addr)).await.unwrap();
    match result {
        Err(ConnectError::Io { addr: text, .. }) => assert_eq!(text, addr.to_string()),
        other => panic!("expected a connect error, got {other:?}"),
    }
}

/// `next` hands one event at a time to a listener, so a `select!` loop can wait on the
/// connection and on other things; it says `false` once `disconnected` has been handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_hands_one_event_to_the_listener_inside_select() {
    let server = TestServer::start(CodecKind::Bincode, Greeting::Rust);
    let mut client = connect(&server).await;
    let mut rec = Recorder::default();
    let (other_tx, mut other_rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
    let mut others = Vec::new();
    other_tx.send(1).unwrap();
    let mut closed_server = false;
    timeout(DEADLINE, async {
        loop {
            tokio::select! {
                more = client.next(&mut rec) => {
                    if !more {
                        break;
                    }
                    // Exactly one event per call.
                    let n = rec.actions().len();
                    if n == 2 && !closed_server {
                        assert_eq!(rec.actions(), ["socketConnect", "connected"]);
                        server.send(&Chat { text: "one".into() });
                        other_tx.send(2).unwrap();
                    }
                    if rec.count("chat") == 1 && !closed_server {
                        closed_server = true;
                        server.close();
                    }
                }
                Some(n) = other_rx.recv() => others.push(n),
            }
        }
    })
    .await
    .expect("the loop ends with the connection");
    assert_eq!(
        rec.actions(),
        ["socketConnect", "connected", "chat", "disconnected"]
    );
    assert_eq!(others, [1, 2]);
    // Over is over: no event, at once.
    assert!(!timeout(DEADLINE, client.next(&mut rec)).await.unwrap());
}
