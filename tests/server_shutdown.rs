//! Stopping a server from outside: `Server::run_until` with any future, `launch_with` and its
//! handle, and the operating system's stop signals under `launch`.
//!
//! Only one test here sends signals (to this test process, after its handlers are installed), so
//! no other test can be stopped by them.

mod server_support;

use std::io::Read;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use repod::server::{ServerError, ServerHandle};
use repod::{CloseReason, CodecKind};
use server_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_until_shuts_down_gracefully_when_the_future_completes() {
    within(async {
        let log = Log::default();
        let server = game_builder(&log).bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr();
        let handle = server.handle();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(server.run_until(async {
            let _ = stopped.await;
        }));

        let mut client = TestClient::connect(addr, CodecKind::Bincode).await;
        let id = handle.peers().await.unwrap()[0].id.get();
        const QUEUED: u64 = 100;
        for n in 0..QUEUED {
            handle.send_to_all(&Echo { n }).unwrap();
        }
        assert!(handle.is_running());
        stop.send(()).unwrap();

        // What was queued before the signal is delivered, then the connection ends.
        for n in 0..QUEUED {
            assert_eq!(client.expect::<Echo>().await, Echo { n });
        }
        client.expect_closed(0).await;
        running.await.unwrap().unwrap();
        assert!(!handle.is_running());
        let records = records(&log);
        assert!(
            records.contains(&Record::OnClose(id, CloseReason::Shutdown)),
            "{records:?}"
        );
        assert!(
            records.contains(&Record::Disconnect(id, CloseReason::Shutdown)),
            "{records:?}"
        );
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_until_also_stops_on_a_handle_shutdown() {
    within(async {
        let log = Log::default();
        let server = game_builder(&log).bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr();
        let handle = server.handle();
        let running = tokio::spawn(server.run_until(std::future::pending()));
        let mut client = TestClient::connect(addr, CodecKind::Bincode).await;
        handle.shutdown();
        client.expect_closed(0).await;
        running.await.unwrap().unwrap();
        assert!(records(&log)
            .iter()
            .any(|r| matches!(r, Record::OnClose(_, CloseReason::Shutdown))));
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn run_until_with_a_future_that_is_already_complete_returns() {
    within(async {
        let log = Log::default();
        let server = game_builder(&log).bind("127.0.0.1:0").await.unwrap();
        let handle = server.handle();
        server.run_until(async {}).await.unwrap();
        assert!(!handle.is_running());
    })
    .await;
}

/// Starts `launch_with` on its own thread; returns its handle (sent by the start callback) and
/// the thread.
fn launch(
    log: &Log,
) -> (
    ServerHandle<Game>,
    std::thread::JoinHandle<Result<(), ServerError>>,
) {
    let builder = game_builder(log);
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        builder.launch_with("127.0.0.1:0", move |handle| {
            tx.send(handle).unwrap();
        })
    });
    let handle = rx
        .recv_timeout(SCENARIO_TIMEOUT)
        .expect("the start callback was not called");
    (handle, thread)
}

/// Connects a raw client and waits until the server counts it; returns its socket.
fn connect(handle: &ServerHandle<Game>) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(handle.local_addr()).unwrap();
    let deadline = Instant::now() + SCENARIO_TIMEOUT;
    while handle.connection_count() == 0 {
        assert!(Instant::now() < deadline, "the server never saw the client");
        std::thread::sleep(Duration::from_millis(5));
    }
    stream
}

/// Reads until the server closes the connection (bounded).
fn read_to_end(mut stream: std::net::TcpStream) {
    stream.set_read_timeout(Some(SCENARIO_TIMEOUT)).unwrap();
    let mut sink = Vec::new();
    stream
        .read_to_end(&mut sink)
        .expect("the server did not close the connection");
}

/// Waits (bounded) for the launched server's thread to return.
fn join(thread: std::thread::JoinHandle<Result<(), ServerError>>) -> Result<(), ServerError> {
    let deadline = Instant::now() + SCENARIO_TIMEOUT;
    while !thread.is_finished() {
        assert!(Instant::now() < deadline, "launch did not return");
        std::thread::sleep(Duration::from_millis(5));
    }
    thread.join().expect("the server thread panicked")
}

/// `launch_with` hands out a working handle; SIGTERM and SIGINT sent once the start callback
/// ran stop `launch` gracefully: every channel is closed with `on_close`, and it returns `Ok`.
#[test]
fn launch_with_gives_a_handle_and_stops_on_stop_signals() {
    let log = Log::default();
    let (handle, thread) = launch(&log);
    let stream = connect(&handle);
    let peers = handle.call_blocking(|ctx| ctx.channels().count()).unwrap();
    assert_eq!(peers, 1);
    handle.shutdown();
    read_to_end(stream);
    join(thread).unwrap();
    let closed = records(&log)
        .iter()
        .filter(|r| matches!(r, Record::OnClose(_, CloseReason::Shutdown)))
        .count();
    assert_eq!(closed, 1);

    #[cfg(unix)]
    for signal in ["TERM", "INT"] {
        let log = Log::default();
        let (handle, thread) = launch(&log);
        let stream = connect(&handle);
        let sent = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(std::process::id().to_string())
            .status()
            .expect("cannot run `kill`");
        assert!(sent.success());
        read_to_end(stream);
        join(thread).unwrap();
        assert!(!handle.is_running());
        let records = records(&log);
        assert_eq!(
            records
                .iter()
                .filter(|r| matches!(r, Record::OnClose(_, CloseReason::Shutdown)))
                .count(),
            1,
            "SIG{signal}: {records:?}"
        );
    }
}
