//! The clients' ends: an async client's graceful close delivers everything queued on either
//! runtime flavour.

use std::time::{Duration, Instant};

use repod::client::AsyncClient;
use repod::server::{BackgroundServer, Server};
use repod::Context;
use serde::{Deserialize, Serialize};

const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("note")]
struct Note {
    n: u32,
}

#[derive(Default)]
struct Notes {
    received: Vec<u32>,
}

#[derive(Default)]
struct Player;

#[repod::channel(state = Notes)]
impl Player {
    #[action]
    fn note(&mut self, ctx: &mut Context<'_, Self>, msg: Note) {
        ctx.state_mut().received.push(msg.n);
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn received(server: &BackgroundServer<Player>) -> Vec<u32> {
    server
        .handle()
        .call_blocking(|ctx| ctx.state().received.clone())
        .unwrap()
}

/// Connects, queues 100 notes, closes gracefully, then stops the runtime at once (as
/// `#[tokio::main]` returning does): every note must reach the server.
fn close_delivers_everything(runtime: tokio::runtime::Runtime) {
    let server = Server::<Player>::builder()
        .start_background("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    let ended = runtime.block_on(async move {
        let client = AsyncClient::connect(addr).await.unwrap();
        for n in 0..100 {
            client.send(&Note { n }).unwrap();
        }
        client.close().await
    });
    drop(runtime);
    assert_eq!(ended.reason, "closed by client");
    let all: Vec<u32> = (0..100).collect();
    wait_until("the server handled every note", || {
        received(&server).len() >= 100
    });
    assert_eq!(received(&server), all);
}

#[test]
fn async_close_delivers_every_queued_send_on_a_current_thread_runtime() {
    close_delivers_everything(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    );
}

#[test]
fn async_close_delivers_every_queued_send_on_a_multi_thread_runtime() {
    close_delivers_everything(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
}

#[test]
fn a_dropped_async_client_flushes_while_its_runtime_runs() {
    let server = Server::<Player>::builder()
        .start_background("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let client = AsyncClient::connect(addr).await.unwrap();
        for n in 0..100 {
            client.send(&Note { n }).unwrap();
        }
        drop(client);
    });
    // The runtime keeps running, so the background flush happens.
    wait_until("the server handled every note", || {
        received(&server).len() >= 100
    });
    assert_eq!(received(&server), (0..100).collect::<Vec<u32>>());
    drop(runtime);
}
