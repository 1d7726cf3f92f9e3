//! The chat example going online: a token, an idle timeout, and (with the `tls` feature) TLS
//! with certificates made for the test.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{run_with_input, start_server};

/// Runs a chat client to its end with `input`; returns its exit success and stdout lines.
fn chat(port: u16, codec: &str, extra: &[&str], input: &str) -> (bool, Vec<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat-client"));
    cmd.args(["--addr", &format!("127.0.0.1:{port}"), "--codec", codec]);
    cmd.args(extra);
    let out = run_with_input(cmd, input, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.success(),
        stdout.lines().map(str::to_owned).collect(),
    )
}

fn chat_server(args: &[&str]) -> support::Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    cmd.args(["--addr", "127.0.0.1:0"]).args(args);
    start_server(cmd)
}

#[test]
fn a_token_is_required_when_the_server_has_one() {
    for codec in ["bincode", "msgpack"] {
        let srv = chat_server(&["--codec", codec, "--token", "s3cret"]);
        let (ok, lines) = chat(
            srv.port,
            codec,
            &["--token", "s3cret", "--name", "alice"],
            "hi\n",
        );
        assert!(ok, "{codec}: {lines:?}");
        assert_eq!(
            lines,
            [
                "connected",
                "* Anonymous is now alice",
                "alice: hi",
                "disconnected"
            ],
            "{codec}"
        );
        let (ok, lines) = chat(srv.port, codec, &["--token", "guess"], "hi\n");
        assert!(!ok, "{codec}: a wrong token connected: {lines:?}");
        assert_eq!(lines, ["error: bad token", "disconnected"], "{codec}");
    }
}

/// Records what the server tells a quiet participant.
#[derive(Default)]
struct Quiet {
    errors: Vec<String>,
    disconnected: Option<String>,
}

#[repod::listener]
impl Quiet {
    #[action]
    fn error(&mut self, msg: repod::ErrorMessage) {
        self.errors.push(msg.message);
    }

    #[action]
    fn disconnected(&mut self, msg: repod::Disconnected) {
        self.disconnected = Some(msg.reason);
    }
}

#[test]
fn a_quiet_participant_is_closed_by_the_idle_timeout() {
    let srv = chat_server(&["--idle-timeout", "0.3"]);
    let mut client = repod::Client::builder()
        .connect(format!("127.0.0.1:{}", srv.port))
        .expect("start the client");
    let mut quiet = Quiet::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while quiet.disconnected.is_none() {
        assert!(
            Instant::now() < deadline,
            "still connected: {:?}",
            quiet.errors
        );
        client.pump(&mut quiet);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(quiet.errors, ["idle timeout"]);
}

#[cfg(feature = "tls")]
#[path = "../../tests/tls_support/mod.rs"]
mod tls_support;

#[cfg(feature = "tls")]
#[test]
fn the_chat_runs_over_tls_with_a_token_and_an_idle_timeout() {
    let certs = tls_support::TestCerts::generate();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chat-tls-certs");
    let (ca, cert, key) = certs.write_to(&dir);
    let (ca, cert, key) = (
        ca.to_str().unwrap(),
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
    );
    for codec in ["bincode", "msgpack"] {
        let srv = chat_server(&[
            "--codec",
            codec,
            "--tls-cert",
            cert,
            "--tls-key",
            key,
            "--token",
            "s3cret",
            "--idle-timeout",
            "30",
        ]);
        let secure = ["--tls-ca", ca, "--token", "s3cret"];
        let (ok, lines) = chat(
            srv.port,
            codec,
            &[&secure[..], &["--name", "alice", "--heartbeat", "5"]].concat(),
            "hi\n/nick bob\n",
        );
        assert!(ok, "{codec}: {lines:?}");
        assert_eq!(
            lines,
            [
                "connected",
                "* Anonymous is now alice",
                "alice: hi",
                "* alice is now bob",
                "disconnected"
            ],
            "{codec}"
        );
        // The server name can be given; the certificate is valid for localhost.
        let (ok, lines) = chat(
            srv.port,
            codec,
            &[&secure[..], &["--tls-name", "localhost"]].concat(),
            "hello\n",
        );
        assert!(ok, "{codec}: {lines:?}");
        assert_eq!(lines, ["connected", "Anonymous: hello", "disconnected"]);
        // A wrong token is refused over TLS too.
        let (ok, lines) = chat(srv.port, codec, &["--tls-ca", ca, "--token", "no"], "hi\n");
        assert!(!ok, "{codec}: {lines:?}");
        assert_eq!(lines, ["error: bad token", "disconnected"], "{codec}");
        // A plaintext client never gets in.
        let (ok, lines) = chat(srv.port, codec, &["--token", "s3cret"], "hi\n");
        assert!(!ok, "{codec}: a plaintext client connected: {lines:?}");
        assert!(
            !lines.iter().any(|l| l == "connected"),
            "{codec}: {lines:?}"
        );
        assert_eq!(lines.last().map(String::as_str), Some("disconnected"));
    }
}
