//! A Python repod peer against a server that resumes sessions: it never asks for one, and is
//! served exactly as by a server that does not resume them.
//!
//! Needs Python 3 with `msgpack`, provisioned on demand (see `python_support`).

mod python_support;
mod request_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use repod::server::{Resume, Server};
use repod::CodecKind;

use request_support::Player;

#[test]
fn a_python_client_is_served_unchanged_by_a_resuming_server() {
    let Some(python) =
        python_support::python("a_python_client_is_served_unchanged_by_a_resuming_server")
    else {
        return;
    };
    let server = Server::<Player>::builder()
        .codec(CodecKind::MsgPack)
        .resume(Resume::new(Duration::from_secs(30)).hello_window(Duration::from_millis(100)))
        .start_background("127.0.0.1:0")
        .expect("server");
    let mut cmd = python.command();
    cmd.arg(format!(
        "{}/tests/python/request_client.py",
        env!("CARGO_MANIFEST_DIR")
    ))
    .args(["--port", &server.local_addr().port().to_string()])
    .args(["--timeout", "10"])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cannot start Python");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("interop request client: OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
