//! The clients' ends: an async client's graceful close delivers everything queued on either
//! runtime flavour; a client that does not pump still learns when the server ends the
//! connection; and a client the server gave up on at shutdown is told it was reset, not that
//! the server broke the protocol.

use std::time::{Duration, Instant};

use repod::client::{AsyncClient, Client};
use repod::server::{BackgroundServer, Server};
use repod::{Context, Disconnected};
use serde::{Deserialize, Serialize};

const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("note")]
struct Note {
    n: u32,
}

/// Asks the server to send `count` notes of `size` bytes, then to disconnect (or not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("flood")]
struct Flood {
    count: u32,
    size: usize,
    disconnect: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("blob")]
struct Blob {
    n: u32,
    data: String,
}

#[derive(Default)]
struct Notes {
    received: Vec<u32>,
    floods: u32,
}

#[derive(Default)]
struct Player;

#[repod::channel(state = Notes)]
impl Player {
    #[action]
    fn note(&mut self, ctx: &mut Context<'_, Self>, msg: Note) {
        ctx.state_mut().received.push(msg.n);
    }

    #[action]
    fn flood(&mut self, ctx: &mut Context<'_, Self>, msg: Flood) {
        ctx.state_mut().floods += 1;
        let data = "x".repeat(msg.size);
        for n in 0..msg.count {
            let _ = ctx.send(&Blob {
                n,
                data: data.clone(),
            });
        }
        if msg.disconnect {
            ctx.disconnect();
        }
    }
}

#[derive(Default)]
struct Recorder {
    blobs: Vec<u32>,
    ended: Option<String>,
}

#[repod::listener]
impl Recorder {
    #[action]
    fn blob(&mut self, msg: Blob) {
        self.blobs.push(msg.n);
    }

    #[action]
    fn disconnected(&mut self, msg: Disconnected) {
        self.ended = Some(msg.reason);
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

#[test]
fn a_client_that_does_not_pump_learns_the_server_closed() {
    let server = Server::<Player>::builder()
        .start_background("127.0.0.1:0")
        .unwrap();
    let mut client = Client::builder()
        .event_queue(4)
        .connect(server.local_addr())
        .unwrap();
    wait_until("connected", || client.is_connected());
    // Far more events than the queue holds, then the server closes the connection: the
    // client's reader stops at the full queue, before the end of the stream.
    client
        .send(&Flood {
            count: 200,
            size: 16,
            disconnect: true,
        })
        .unwrap();
    wait_until("the client sees the close without pumping", || {
        !client.is_connected()
    });

    // Nothing was lost: pumping now delivers every message, then `disconnected`.
    let mut rec = Recorder::default();
    wait_until("disconnected is pumped", || {
        client.pump(&mut rec);
        rec.ended.is_some()
    });
    assert_eq!(rec.blobs, (0..200).collect::<Vec<u32>>());
    assert_eq!(rec.ended.as_deref(), Some("closed by peer"));
}

#[test]
fn a_client_left_behind_at_shutdown_learns_it_was_reset() {
    let server = Server::<Player>::builder()
        .outbound_queue_bytes(64 << 20)
        .outbound_queue_frames(1 << 20)
        .shutdown_timeout(Duration::from_millis(300))
        .start_background("127.0.0.1:0")
        .unwrap();
    let mut client = Client::builder()
        .event_queue(4)
        .connect(server.local_addr())
        .unwrap();
    wait_until("connected", || client.is_connected());
    // 32 MiB queued to a client that does not pump: far more than the kernel holds for it.
    const COUNT: u32 = 1024;
    client
        .send(&Flood {
            count: COUNT,
            size: 32 * 1024,
            disconnect: false,
        })
        .unwrap();
    let handle = server.handle();
    wait_until("the server queued the flood", || {
        handle.call_blocking(|ctx| ctx.state().floods).unwrap() == 1
    });
    // The server shuts down; the client is still far behind when the shutdown timeout ends.
    server.shutdown().unwrap();

    wait_until("the client sees the reset without pumping", || {
        !client.is_connected()
    });
    let mut rec = Recorder::default();
    wait_until("disconnected is pumped", || {
        client.pump(&mut rec);
        rec.ended.is_some()
    });
    assert!(
        (rec.blobs.len() as u32) < COUNT,
        "the client was meant to be left behind, yet received all {COUNT} messages"
    );
    assert!(
        rec.blobs.iter().copied().eq(0..rec.blobs.len() as u32),
        "what arrived before the reset arrived whole and in order"
    );
    assert_eq!(rec.ended.as_deref(), Some("reset by peer"));
}
