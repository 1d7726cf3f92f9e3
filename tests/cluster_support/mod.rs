//! A `redis-server` of a test's own, on a free loopback port, killed (by PID) on drop.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh `redis-server` may take to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Redis {
    child: Option<Child>,
    port: u16,
}

/// Whether `redis-server` can be run. When it cannot, the cluster tests print a warning and
/// pass without running, unless `REPOD_REQUIRE_REDIS=1`, which makes them fail instead.
fn available() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("REPOD_REQUIRE_REDIS").as_deref() == Ok("1") {
            panic!("redis-server is not installed, and REPOD_REQUIRE_REDIS=1");
        }
        eprintln!(
            "WARNING: redis-server is not installed: cluster test SKIPPED \
             (install the redis-server package; set REPOD_REQUIRE_REDIS=1 to fail instead)"
        );
    }
    found
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn spawn(port: u16) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .args(["--dir", &std::env::temp_dir().to_string_lossy()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server")
}

/// Waits until the server on `port` answers PING; `false` if the process ended first (the
/// port was taken meanwhile) or it never answered.
fn ready(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut answer = [0u8; 7];
            if stream.write_all(b"PING\r\n").is_ok()
                && stream.read_exact(&mut answer).is_ok()
                && &answer == b"+PONG\r\n"
            {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

impl Redis {
    /// A fresh server, or `None` (after a visible warning) when `redis-server` is missing.
    pub fn start() -> Option<Redis> {
        if !available() {
            return None;
        }
        for _ in 0..10 {
            let port = free_port();
            let mut child = spawn(port);
            if ready(&mut child, port) {
                return Some(Redis {
                    child: Some(child),
                    port,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start redis-server on a free port");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL, by PID) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a fresh, empty server on the same port (retrying while the port is not free
    /// yet).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            let mut child = spawn(self.port);
            if ready(&mut child, self.port) {
                self.child = Some(child);
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("could not restart redis-server on port {}", self.port);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
