//! Starting example binaries and Python scripts as child processes, bounded in time.

#![allow(dead_code)]

#[path = "../../../tests/python_support/mod.rs"]
pub mod python;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// A child process killed (by its own PID, through `Child::kill`) when dropped.
pub struct Running {
    pub child: Child,
    pub port: u16,
    /// Every line the process printed on stdout so far.
    stdout: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Waits (bounded) for the process to exit and for its stdout to close; returns the exit
    /// status and every line it printed.
    pub fn wait_for_exit(&mut self, limit: Duration) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit within {limit:?}; stdout so far: {:?}",
                self.stdout.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (status, self.stdout.lock().unwrap().clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of a file in the workspace root.
pub fn workspace_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// Starts a server command and waits (bounded) for its `listening on <addr>` line.
pub fn start_server(mut cmd: Command) -> Running {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start the server");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let collected = lines.clone();
    // Keeps draining so the server never blocks on a full pipe.
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let first = {
                let mut lines = collected.lock().unwrap();
                lines.push(line.clone());
                lines.len() == 1
            };
            if first {
                let _ = tx.send(line);
            }
        }
    });
    let mut running = Running {
        child,
        port: 0,
        stdout: lines,
        reader: Some(reader),
    };
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the server did not print `listening on <addr>` in time");
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    running.port = addr.rsplit(':').next().unwrap().parse().unwrap();
    running
}

/// Runs a command to completion with `input` on stdin, killing it after `limit`.
pub fn run_with_input(mut cmd: Command, input: &str, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the command");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}

/// A running `whiteboard-server` on free ports, killed (by its PID) when dropped.
pub struct Whiteboard {
    child: Child,
    /// Its TCP port.
    pub tcp_port: u16,
    /// Its WebSocket URL, `ws://127.0.0.1:<port>`.
    pub ws_url: String,
    /// The page's URL, `http://127.0.0.1:<port>/`.
    pub http_url: String,
}

impl Drop for Whiteboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `whiteboard-server` on free ports and waits (bounded) until it printed its three
/// addresses.
pub fn start_whiteboard() -> Whiteboard {
    let mut child = Command::new(env!("CARGO_BIN_EXE_whiteboard-server"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--ws",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start whiteboard-server");
    let stdout = child.stdout.take().unwrap();
    let mut server = Whiteboard {
        child,
        tcp_port: 0,
        ws_url: String::new(),
        http_url: String::new(),
    };
    let (tx, rx) = mpsc::channel();
    // Keeps draining so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.tcp_port == 0 || server.ws_url.is_empty() || server.http_url.is_empty() {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("whiteboard-server did not print its addresses in time");
        if let Some(addr) = line.strip_prefix("listening on ") {
            server.tcp_port = addr.rsplit(':').next().unwrap().parse().unwrap();
        } else if let Some(url) = line.strip_prefix("websocket on ") {
            server.ws_url = url.to_owned();
        } else if let Some(rest) = line.strip_prefix("open ") {
            server.http_url = rest.split_whitespace().next().unwrap().to_owned();
        }
    }
    server
}
