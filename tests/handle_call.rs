//! Code run on the dispatch loop through a `ServerHandle` that panics is reported as a panic,
//! and the server keeps serving.

use std::time::{Duration, Instant};

use repod::client::Client;
use repod::server::{Server, ServerError};
use repod::Context;
use serde::{Deserialize, Serialize};

const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("echo")]
struct Echo {
    n: u32,
}

#[derive(Default)]
struct Counter {
    calls: u32,
}

#[derive(Default)]
struct EchoChannel;

#[repod::channel(state = Counter)]
impl EchoChannel {
    #[action]
    fn echo(&mut self, ctx: &mut Context<'_, Self>, msg: Echo) {
        let _ = ctx.send(&msg);
    }
}

#[derive(Default)]
struct Heard {
    echoes: Vec<u32>,
}

#[repod::listener]
impl Heard {
    #[action]
    fn echo(&mut self, msg: Echo) {
        self.echoes.push(msg.n);
    }
}

/// A round trip through a fresh client: the server still serves.
fn still_serves(addr: std::net::SocketAddr) {
    let mut client = Client::connect(addr).unwrap();
    client.send(&Echo { n: 7 }).unwrap();
    let mut heard = Heard::default();
    let deadline = Instant::now() + DEADLINE;
    while heard.echoes.is_empty() {
        assert!(Instant::now() < deadline, "no echo from the server");
        client.pump(&mut heard);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(heard.echoes, [7]);
}

#[test]
fn a_panicking_call_reports_the_panic_and_the_server_keeps_running() {
    let server = Server::<EchoChannel>::builder()
        .start_background("127.0.0.1:0")
        .unwrap();
    let handle = server.handle();

    // Blocking, from a plain thread.
    let result = handle.call_blocking(|ctx| -> u32 {
        ctx.state_mut().calls += 1;
        panic!("no such room: {}", 42)
    });
    match result {
        Err(ServerError::CallPanicked(message)) => assert_eq!(message, "no such room: 42"),
        other => panic!("expected CallPanicked, got {other:?}"),
    }
    assert!(handle.is_running());
    // What the closure did before it panicked stays done; the next call runs normally.
    assert_eq!(handle.call_blocking(|ctx| ctx.state().calls).unwrap(), 1);
    still_serves(server.local_addr());

    // Async, from a runtime of the caller's.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result =
        runtime.block_on(handle.call(|_| -> () { panic!("{}", String::from("owned message")) }));
    match result {
        Err(ServerError::CallPanicked(message)) => assert_eq!(message, "owned message"),
        other => panic!("expected CallPanicked, got {other:?}"),
    }
    assert!(handle.is_running());
    still_serves(server.local_addr());

    // Once the server is gone, calls fail as closed, not as panics.
    server.shutdown().unwrap();
    assert!(matches!(
        handle.call_blocking(|ctx| ctx.channel_count()),
        Err(ServerError::Closed)
    ));
}
