//! The Rust chat example and Python peers speaking Python repod's wire format talk to each
//! other: a Python client against `chat-server --codec msgpack`, and `chat-client --codec
//! msgpack` against a Python server.
//!
//! Needs `python3` with the `msgpack` package (`pip install msgpack`; CI installs it). Set
//! `REPOD_SKIP_PYTHON=1` to skip these tests on a machine without them.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{python_with_msgpack, run_with_input, start_server, workspace_file};

fn python_available() -> bool {
    if std::env::var_os("REPOD_SKIP_PYTHON").is_some() {
        return false;
    }
    assert!(
        python_with_msgpack(),
        "python3 with msgpack is required (pip install msgpack), or set REPOD_SKIP_PYTHON=1"
    );
    true
}

#[test]
fn python_client_against_rust_chat_server() {
    if !python_available() {
        return;
    }
    let mut server = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    server.args(["--addr", "127.0.0.1:0", "--codec", "msgpack"]);
    let server = start_server(server);

    let mut client = Command::new("python3");
    client
        .arg(workspace_file("tests/python/chat_client.py"))
        .args(["--port", &server.port.to_string(), "--timeout", "10"]);
    let out = run_with_input(client, "", Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("interop chat client: OK"), "{stdout}");
}

#[test]
fn rust_chat_client_against_python_server() {
    if !python_available() {
        return;
    }
    let mut server = Command::new("python3");
    server
        .arg(workspace_file("tests/python/chat_server.py"))
        .args(["--port", "0"]);
    let server = start_server(server);

    let mut client = Command::new(env!("CARGO_BIN_EXE_chat-client"));
    client.args([
        "--addr",
        &format!("127.0.0.1:{}", server.port),
        "--codec",
        "msgpack",
        "--name",
        "rusty",
    ]);
    let input = "hello from rust\n/nick \n/nick ferris\n   \nbye\n";
    let out = run_with_input(client, input, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chat-client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "connected",
            "* Anonymous is now rusty",
            "rusty: hello from rust",
            "error: Invalid nickname",
            "* rusty is now ferris",
            "ferris: bye",
            "disconnected",
        ]
    );
}
