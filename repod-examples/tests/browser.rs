//! The JavaScript client and the whiteboard in a real browser, run from `cargo test`:
//!
//! * `tsc` type-checks the client's declarations, the whiteboard page against the declarations
//!   generated from the Rust protocol, and a file of deliberate type errors that must fail;
//! * Node's test runner runs the client's tests against `echo-server` over WebSocket;
//! * Node drives headless Chromium: two pages draw on `whiteboard-server` and see each
//!   other's strokes, and so do Rust bots over TCP and over WebSocket (screenshot:
//!   `target/whiteboard.png`);
//! * a browser player, a Rust TCP client and a Python program are on one board and each
//!   receives the others' strokes.
//!
//! Needs Node 20 or later, the npm packages of `clients/js` (`npm ci` there) and Chromium
//! (`/usr/bin/chromium`, or `REPOD_CHROMIUM`). Without them these tests are skipped with a
//! warning on the terminal; with `REPOD_REQUIRE_BROWSER=1` (as CI sets) they fail instead.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use repod::client::AsyncClient;
use repod::CodecKind;
use repod_examples::whiteboard::{Drawn, Join, Joined, Left, Stroke};
use support::{run_with_input, start_whiteboard, workspace_file};

/// One browser at a time: the machine may have few cores.
static BROWSER: Mutex<()> = Mutex::new(());

fn required() -> bool {
    std::env::var("REPOD_REQUIRE_BROWSER").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

fn js_dir() -> PathBuf {
    workspace_file("clients/js")
}

fn chromium() -> PathBuf {
    std::env::var_os("REPOD_CHROMIUM")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// `node`, when Node 20+ and the npm packages are there (and Chromium, if `browser`); else
/// `None` after a warning, or a panic under `REPOD_REQUIRE_BROWSER=1`.
fn prerequisites(test: &str, browser: bool) -> Option<&'static str> {
    let mut missing = Vec::new();
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout);
            let major: u32 = version
                .trim()
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            if major < 20 {
                missing.push(format!("Node 20 or later (found {})", version.trim()));
            }
        }
        _ => missing.push("node (Node.js 20 or later)".to_owned()),
    }
    for package in ["@msgpack/msgpack", "typescript", "ws", "playwright-core"] {
        if !js_dir().join("node_modules").join(package).is_dir() {
            missing.push(format!(
                "the npm package {package} (run `npm ci` in clients/js)"
            ));
            break;
        }
    }
    if browser && !chromium().exists() {
        missing.push(format!(
            "Chromium at {} (apt-get install chromium, or set REPOD_CHROMIUM)",
            chromium().display()
        ));
    }
    if missing.is_empty() {
        return Some("node");
    }
    let why = missing.join("; ");
    assert!(
        !required(),
        "{test}: missing {why} (REPOD_REQUIRE_BROWSER=1 requires this test)"
    );
    let _ = writeln!(
        std::io::stderr(),
        "warning: skipping `{test}`: missing {why}"
    );
    None
}

/// Runs node in clients/js with the binaries of the examples named in the environment.
fn node(args: &[&str], limit: Duration) -> Output {
    let mut cmd = Command::new("node");
    cmd.current_dir(js_dir())
        .args(args)
        .env("REPOD_ECHO_SERVER", env!("CARGO_BIN_EXE_echo-server"))
        .env(
            "REPOD_WHITEBOARD_SERVER",
            env!("CARGO_BIN_EXE_whiteboard-server"),
        )
        .env(
            "REPOD_WHITEBOARD_BOTS",
            env!("CARGO_BIN_EXE_whiteboard-bots"),
        )
        .env("REPOD_CHROMIUM", chromium())
        // The binaries are given: node's tests must not skip for want of them.
        .env("REPOD_REQUIRE_JS", "1");
    run_with_input(cmd, "", limit)
}

/// Asserts that a `node --test` run passed, ran `at_least` tests and skipped none.
fn assert_node_tests_passed(out: &Output, at_least: usize) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let count = |key: &str| -> Option<usize> {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(&format!("# {key} ")))
            .and_then(|n| n.trim().parse().ok())
    };
    assert!(
        out.status.success()
            && count("fail") == Some(0)
            && count("skipped") == Some(0)
            && count("pass").is_some_and(|n| n >= at_least),
        "node's tests failed:\n{stdout}\n{stderr}"
    );
}

#[test]
fn typescript_checks_the_client_the_page_and_rejects_wrong_messages() {
    if prerequisites(
        "typescript_checks_the_client_the_page_and_rejects_wrong_messages",
        false,
    )
    .is_none()
    {
        return;
    }
    let out = node(
        &["node_modules/typescript/bin/tsc", "--noEmit", "-p", "."],
        Duration::from_secs(180),
    );
    assert!(
        out.status.success(),
        "tsc failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The file of deliberate errors does hold errors: each `@ts-expect-error` line, made
    // plain, fails the check.
    let types = js_dir().join("test/types.ts");
    let text = std::fs::read_to_string(&types).unwrap();
    assert!(text.matches("// @ts-expect-error").count() >= 10);
    let protocol = workspace_file("repod-examples/web/whiteboard-protocol");
    let plain = text.replace("// @ts-expect-error", "//").replace(
        "../../../repod-examples/web/whiteboard-protocol",
        &protocol.display().to_string(),
    );
    // A configuration that checks this copy, with the client's settings.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tsc-wrong-messages");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("types.ts"), plain).unwrap();
    let config = format!(
        r#"{{ "extends": "{}", "files": ["{}", "types.ts"] }}"#,
        js_dir().join("tsconfig.json").display(),
        js_dir().join("src/repod.d.ts").display()
    );
    std::fs::write(dir.join("tsconfig.json"), config).unwrap();
    let config = dir.join("tsconfig.json").display().to_string();
    let out = node(
        &["node_modules/typescript/bin/tsc", "--noEmit", "-p", &config],
        Duration::from_secs(180),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "the wrong messages type-checked");
    // Errors are reported on exactly the lines that follow the markers (1-based numbers).
    let marked: BTreeSet<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim_start().starts_with("// @ts-expect-error"))
        .map(|(i, _)| i + 2)
        .collect();
    let failing: BTreeSet<usize> = stdout
        .lines()
        .filter(|line| line.contains("error TS"))
        .filter_map(|line| {
            line.split_once("types.ts(")?
                .1
                .split_once(',')?
                .0
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(
        failing, marked,
        "an error on each wrong message, nowhere else:\n{stdout}"
    );
}

#[test]
fn javascript_client_against_a_rust_server() {
    if prerequisites("javascript_client_against_a_rust_server", false).is_none() {
        return;
    }
    let out = node(
        &["--test", "test/client.test.js", "test/vendor.test.js"],
        Duration::from_secs(240),
    );
    assert_node_tests_passed(&out, 16);
}

#[test]
fn whiteboard_in_a_browser() {
    if prerequisites("whiteboard_in_a_browser", true).is_none() {
        return;
    }
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let screenshot = workspace_file("target/whiteboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let out = node(
        &["--test", "test/browser.test.js"],
        Duration::from_secs(300),
    );
    assert_node_tests_passed(&out, 1);
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );
}

/// A player of the Rust side of the mixed room.
#[derive(Default)]
struct RustPlayer {
    me: u64,
    players: BTreeSet<u64>,
    saw: BTreeSet<u64>,
}

#[repod::listener]
impl RustPlayer {
    #[action]
    fn joined(&mut self, joined: Joined) {
        self.players.insert(joined.player.id);
    }

    #[action]
    fn left(&mut self, left: Left) {
        self.players.remove(&left.id);
    }

    #[action]
    fn drawn(&mut self, drawn: Drawn) {
        if drawn.id != self.me {
            self.saw.insert(drawn.id);
        }
    }
}

/// Joins over TCP, draws once three players are on the board, and returns (own id, ids whose
/// strokes arrived) once strokes of two others arrived.
fn rust_player(port: u16) -> (u64, BTreeSet<u64>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let mut client = AsyncClient::builder()
            .codec(CodecKind::MsgPack)
            .connect_async(format!("127.0.0.1:{port}"))
            .await
            .expect("connect");
        let welcome = client
            .request(&Join {
                name: "rust".into(),
            })
            .await
            .expect("join");
        let mut player = RustPlayer {
            me: welcome.you.id,
            players: welcome.players.iter().map(|p| p.id).collect(),
            saw: BTreeSet::new(),
        };
        let mut drew = false;
        loop {
            if !drew && player.players.len() >= 3 {
                client
                    .send(&Stroke {
                        points: vec![(820, 560), (860, 540), (900, 560)],
                    })
                    .expect("send");
                drew = true;
            }
            if drew && player.saw.len() >= 2 {
                break;
            }
            let more = tokio::time::timeout_at(deadline, client.next(&mut player))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "the Rust player timed out: players {:?}, saw {:?}",
                        player.players, player.saw
                    )
                });
            assert!(more, "the Rust player was disconnected");
        }
        client.close().await;
        (player.me, player.saw)
    })
}

/// The last line of a program's output, parsed as `{"me": id, "saw": [ids]}`.
fn result_of(who: &str, out: &Output) -> (u64, BTreeSet<u64>) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{who} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    let number = |text: &str| text.trim().parse::<u64>().ok();
    let me = line
        .split("\"me\":")
        .nth(1)
        .and_then(|rest| number(rest.split([',', '}']).next()?))
        .unwrap_or_else(|| panic!("{who}: no id in {line:?}"));
    let saw = line
        .split("\"saw\":")
        .nth(1)
        .and_then(|rest| rest.split_once('[')?.1.split_once(']').map(|(ids, _)| ids))
        .unwrap_or_else(|| panic!("{who}: no ids in {line:?}"))
        .split(',')
        .filter_map(number)
        .collect();
    (me, saw)
}

#[test]
fn a_browser_a_rust_client_and_a_python_client_share_a_room() {
    const TEST: &str = "a_browser_a_rust_client_and_a_python_client_share_a_room";
    if prerequisites(TEST, true).is_none() {
        return;
    }
    let Some(python) = support::python::python(TEST) else {
        return;
    };
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let server = start_whiteboard();
    let (port, url) = (server.tcp_port, server.http_url.clone());

    let browser = std::thread::spawn(move || {
        let mut cmd = Command::new("node");
        cmd.current_dir(js_dir())
            .args(["test/room-player.js", "--url", &url, "--players", "3"])
            .args(["--name", "web", "--timeout", "90"])
            .env("REPOD_CHROMIUM", chromium());
        run_with_input(cmd, "", Duration::from_secs(150))
    });
    let mut cmd = python.command();
    cmd.arg(workspace_file("tests/python/whiteboard_client.py"))
        .args(["--port", &port.to_string(), "--players", "3"])
        .args(["--name", "python", "--timeout", "90"]);
    let python = std::thread::spawn(move || run_with_input(cmd, "", Duration::from_secs(150)));
    let rust = rust_player(port);

    let python = result_of("the Python client", &python.join().unwrap());
    let browser = result_of("the browser player", &browser.join().unwrap());
    let ids: BTreeSet<u64> = [rust.0, python.0, browser.0].into();
    assert_eq!(ids.len(), 3, "three distinct players");
    for (who, (me, saw)) in [("rust", &rust), ("python", &python), ("browser", &browser)] {
        let others: BTreeSet<u64> = ids.iter().copied().filter(|id| id != me).collect();
        assert_eq!(saw, &others, "{who} received strokes from {saw:?}");
    }
}
