//! A flushing close has a deadline (the close timeout) against a peer that does not read.

use std::time::{Duration, Instant};

use repod::server::Server;
use repod::{Codec, CodecKind};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tokio::runtime::Runtime;

#[derive(Debug, Clone, Serialize, Deserialize, repod::Message)]
#[action("echo")]
struct Echo {
    seq: u64,
    data: String,
}

#[derive(Default)]
struct EchoChannel;

#[repod::channel]
impl EchoChannel {
    #[action]
    fn echo(&mut self, ctx: &mut repod::Context<'_, Self>, msg: Echo) {
        let _ = ctx.send(&msg);
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Waits up to `limit` for `cond`; returns whether it held.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// A peer that stops reading, lets replies pile up, then breaks the protocol and keeps its
/// socket open: the server closes the channel with a flushing close (so the peer could read the
/// error), and the writer then waits on the socket for as long as the peer holds it, with the
/// queued frames (up to `outbound_queue_bytes`) in memory, outside `max_connections`.
///
/// With a close timeout of 1 s, the writer gives up and the connection's tasks end.
#[test]
fn a_closed_channel_does_not_outlive_a_peer_that_stops_reading() {
    let server_rt = runtime();
    let client_rt = runtime();
    let server = server_rt
        .block_on(
            Server::<EchoChannel>::builder()
                .outbound_queue_bytes(64 << 20)
                .shutdown_timeout(Duration::from_secs(1))
                .close_timeout(Duration::from_secs(1))
                .bind("127.0.0.1:0"),
        )
        .expect("bind");
    let addr = server.local_addr();
    let handle = server.handle();
    let server_task = server_rt.spawn(server.run());
    // The server's own tasks: the run loop and the accept loop.
    assert!(wait_until(Duration::from_secs(5), || server_rt
        .metrics()
        .num_alive_tasks()
        >= 2));
    let tasks_before = server_rt.metrics().num_alive_tasks();
    let stream = client_rt.block_on(async {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let mut stream = socket.connect(addr).await.expect("connect");
        let big = CodecKind::Bincode
            .encode(
                &Echo {
                    seq: 0,
                    data: "x".repeat(4096),
                },
                usize::MAX,
            )
            .expect("encode");
        // About 6 MiB of replies: more than the socket buffers hold.
        for _ in 0..1500 {
            stream.write_all(&big).await.expect("write");
        }
        stream
            .write_all(&[0xff, 0xff, 0xff, 0xff])
            .await
            .expect("write");
        stream
    });
    assert!(wait_until(Duration::from_secs(2), || handle
        .connection_count()
        == 0));
    // The channel is gone; its tasks should follow within a bounded time.
    let settled = wait_until(Duration::from_secs(3), || {
        server_rt.metrics().num_alive_tasks() == tasks_before
    });
    let tasks = server_rt.metrics().num_alive_tasks();
    drop(stream);
    handle.shutdown();
    server_rt
        .block_on(server_task)
        .expect("server task")
        .expect("server run");
    assert!(
        settled,
        "{tasks} server tasks 3 s after the channel closed (was {tasks_before})"
    );
}
