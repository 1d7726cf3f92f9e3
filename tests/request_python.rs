//! Requests between repod and Python: a Python program calls a Rust server's request handlers
//! with plain dicts carrying "rid", and a Python server answers a Rust client's requests.
//!
//! Needs Python 3 with `msgpack`, provisioned on demand (see `python_support`).

mod python_support;
mod request_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use repod::client::{AsyncClient, Client};
use repod::server::Server;
use repod::{ClientContext, CodecKind, RequestError};

use request_support::*;

fn script(name: &str) -> String {
    format!("{}/tests/python/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd` to its end within `limit`, killing it past that.
fn run_within(mut cmd: Command, limit: Duration) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start Python");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn a_python_client_calls_rust_request_handlers() {
    let Some(python) = python_support::python("a_python_client_calls_rust_request_handlers") else {
        return;
    };
    let server = Server::<Player>::builder()
        .codec(CodecKind::MsgPack)
        .start_background("127.0.0.1:0")
        .expect("server");
    let mut cmd = python.command();
    cmd.arg(script("request_client.py"))
        .args(["--port", &server.local_addr().port().to_string()])
        .args(["--timeout", "10"]);
    let out = run_within(cmd, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("interop request client: OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Python server on its own port; killed when dropped.
struct PythonServer {
    child: Child,
    port: u16,
}

impl PythonServer {
    fn start(mut cmd: Command) -> PythonServer {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start Python");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let mut server = PythonServer { child, port: 0 };
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the Python server did not print its address");
        let addr = line.strip_prefix("listening on ").expect("address line");
        server.port = addr.rsplit(':').next().unwrap().parse().expect("port");
        server
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_python_server_answers_rust_requests() {
    let Some(python) = python_support::python("a_python_server_answers_rust_requests") else {
        return;
    };
    let mut cmd = python.command();
    cmd.arg(script("request_server.py")).args(["--port", "0"]);
    let server = PythonServer::start(cmd);
    let scenario = async {
        let mut client = AsyncClient::builder()
            .codec(CodecKind::MsgPack)
            .request_timeout(Duration::from_secs(20))
            .connect_async(("127.0.0.1", server.port))
            .await
            .expect("connect");
        let rooms = client.request(&ListRooms { mode: "ffa".into() }).await;
        assert_eq!(
            rooms,
            Ok(RoomList {
                rooms: vec!["ffa-py".into()]
            })
        );
        let full = client
            .request(&JoinRoom {
                room: "lobby".into(),
            })
            .await;
        assert_eq!(full, Err(RequestError::Remote("the room is full".into())));
        let unknown = client.request(&FindMatch { players: 2 }).await;
        assert_eq!(
            unknown,
            Err(RequestError::Remote("unknown action: find_match".into()))
        );
        // Many in flight, and held ones answered out of order.
        let doubles = join_all((0..200u64).map(|n| client.request(&Double { n }))).await;
        for (n, doubled) in doubles.into_iter().enumerate() {
            assert_eq!(doubled, Ok(2 * n as u64));
        }
        let held: Vec<_> = (0..5).map(|n| client.request(&Stall { n })).collect();
        client.send(&Release).expect("send");
        let answers = join_all(held).await;
        assert_eq!(answers, (0..5).map(Ok).collect::<Vec<_>>());
        // Plain messages go on as before.
        client.send(&Chat { text: "hi".into() }).expect("send");
        loop {
            let event = client.recv().await.expect("an event");
            if event.action() == "said" {
                assert_eq!(event.decode::<Said>().expect("said").text, "hi");
                break;
            }
        }
        client.close().await;
    };
    tokio::time::timeout(Duration::from_secs(60), scenario)
        .await
        .expect("scenario timed out");
}

#[derive(Default)]
struct Lobby {
    rooms: Option<Result<RoomList, RequestError>>,
}

#[repod::listener]
impl Lobby {}

#[test]
fn a_python_server_answers_a_game_loop_request() {
    let Some(python) = python_support::python("a_python_server_answers_a_game_loop_request") else {
        return;
    };
    let mut cmd = python.command();
    cmd.arg(script("request_server.py")).args(["--port", "0"]);
    let server = PythonServer::start(cmd);
    let mut client = Client::builder()
        .codec(CodecKind::MsgPack)
        .connect(("127.0.0.1", server.port))
        .expect("client");
    client
        .request(
            &ListRooms {
                mode: "duel".into(),
            },
            |lobby: &mut Lobby, _ctx: &mut ClientContext<'_>, rooms| lobby.rooms = Some(rooms),
        )
        .expect("request");
    let mut lobby = Lobby::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while lobby.rooms.is_none() {
        assert!(Instant::now() < deadline, "no reply");
        client.pump(&mut lobby);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        lobby.rooms,
        Some(Ok(RoomList {
            rooms: vec!["duel-py".into()]
        }))
    );
}
