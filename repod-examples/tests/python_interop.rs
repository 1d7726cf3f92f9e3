//! The Rust chat example and Python peers speaking Python repod's wire format talk to each
//! other: a Python client against `chat-server --codec msgpack`, and `chat-client --codec
//! msgpack` against a Python server.
//!
//! Needs Python 3; its `msgpack` package is installed under `target/` when missing (see
//! `tests/python_support` at the workspace root).

mod support;

use std::process::Command;
use std::time::Duration;

use support::python::python;
use support::{run_with_input, start_server, workspace_file};

#[test]
fn python_client_against_rust_chat_server() {
    let Some(python) = python("python_client_against_rust_chat_server") else {
        return;
    };
    let mut server = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    server.args(["--addr", "127.0.0.1:0", "--codec", "msgpack"]);
    let server = start_server(server);

    let mut client = python.command();
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
    let Some(python) = python("rust_chat_client_against_python_server") else {
        return;
    };
    let mut server = python.command();
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
