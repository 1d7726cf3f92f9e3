//! Every example runs: servers start, clients talk to them, both codecs.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{run_with_input, start_server};

fn server(bin: &str, codec: &str) -> support::Running {
    let mut cmd = Command::new(bin);
    cmd.args(["--addr", "127.0.0.1:0", "--codec", codec]);
    start_server(cmd)
}

fn client(bin: &str, port: u16, codec: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["--addr", &format!("127.0.0.1:{port}"), "--codec", codec]);
    cmd.args(extra);
    cmd
}

fn stdout_of(cmd: Command, input: &str) -> String {
    let out = run_with_input(cmd, input, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn chat_clients_see_each_other() {
    for codec in ["bincode", "msgpack"] {
        let srv = server(env!("CARGO_BIN_EXE_chat-server"), codec);
        let bin = env!("CARGO_BIN_EXE_chat-client");
        let out = stdout_of(
            client(bin, srv.port, codec, &["--name", "alice"]),
            "hi\n/nick bob\nthis name is far too long to be accepted\n/nick this name is far too long\n",
        );
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "connected",
                "* Anonymous is now alice",
                "alice: hi",
                "* alice is now bob",
                "bob: this name is far too long to be accepted",
                "error: Invalid nickname",
                "disconnected",
            ],
            "{codec}"
        );
        let long = "x".repeat(501);
        let out = stdout_of(client(bin, srv.port, codec, &[]), &format!("{long}\nok\n"));
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "connected",
                "error: Invalid message",
                "Anonymous: ok",
                "disconnected"
            ],
            "{codec}"
        );
    }
}

#[test]
fn lag_client_reports_percentiles() {
    let srv = server(env!("CARGO_BIN_EXE_lag-server"), "bincode");
    let out = stdout_of(
        client(
            env!("CARGO_BIN_EXE_lag-client"),
            srv.port,
            "bincode",
            &["--count", "200", "--warmup", "10"],
        ),
        "",
    );
    assert!(out.starts_with("200 round trips (bincode): min "), "{out}");
    assert!(
        out.contains("p50") && out.contains("p99") && out.contains("max"),
        "{out}"
    );
}

#[test]
fn lag_client_resumes_its_session_after_each_blip() {
    let srv = server(env!("CARGO_BIN_EXE_lag-server"), "msgpack");
    let out = stdout_of(
        client(
            env!("CARGO_BIN_EXE_lag-client"),
            srv.port,
            "msgpack",
            &[
                "--count",
                "200",
                "--warmup",
                "10",
                "--resume",
                "--blip-every",
                "50",
            ],
        ),
        "",
    );
    assert!(out.starts_with("200 round trips (msgpack): min "), "{out}");
    assert!(
        out.contains("4 connections lost, 4 sessions resumed, no pong lost"),
        "{out}"
    );
}

#[test]
fn teams_bots_join_and_are_notified() {
    let srv = server(env!("CARGO_BIN_EXE_teams-server"), "msgpack");
    let out = stdout_of(
        client(
            env!("CARGO_BIN_EXE_teams-client"),
            srv.port,
            "msgpack",
            &["--bots", "3", "--teams", "2", "--seconds", "1.5"],
        ),
        "",
    );
    for bot in ["bot-0", "bot-1", "bot-2"] {
        assert!(out.contains(&format!("{bot}: connected")), "{out}");
        assert!(out.contains(&format!("{bot}: 3 players: {bot}")), "{out}");
    }
    assert!(out.contains("bot-0: joined team 0"), "{out}");
    assert!(out.contains("bot-1: joined team 1"), "{out}");
    // bot-0 and bot-2 share team 0: whichever joined second is announced to the other, once.
    // bot-1 is alone in team 1 and hears of nobody.
    let told_0 = out.contains("bot-0: bot-2 joined my team 0");
    let told_2 = out.contains("bot-2: bot-0 joined my team 0");
    assert!(told_0 ^ told_2, "{out}");
    assert_eq!(out.matches("joined my team").count(), 1, "{out}");
    // Team chat reaches the sender's team only: everyone hears itself, bot-1 (alone in team 1)
    // hears nobody else, and nobody in team 0 hears bot-1.
    for (bot, team) in [("bot-0", 0), ("bot-1", 1), ("bot-2", 0)] {
        let own = format!("{bot}: [team {team}] <{bot}> {bot} here");
        assert!(out.contains(&own), "{out}");
    }
    let team_lines: Vec<&str> = out.lines().filter(|l| l.contains("] <")).collect();
    for line in &team_lines {
        let hearer_in_1 = line.starts_with("bot-1:");
        let speaker_in_1 = line.contains("<bot-1>");
        assert_eq!(hearer_in_1, speaker_in_1, "{line}\n{out}");
    }
    // bot-0 and bot-2 hear each other only if both had joined when the other spoke.
    assert!((3..=5).contains(&team_lines.len()), "{out}");
}

#[test]
fn tag_bots_play() {
    let srv = server(env!("CARGO_BIN_EXE_tag-server"), "bincode");
    let out = stdout_of(
        client(
            env!("CARGO_BIN_EXE_tag-bots"),
            srv.port,
            "bincode",
            &["--bots", "8", "--seconds", "1.5"],
        ),
        "",
    );
    assert!(out.starts_with("8 bots played 1.5 s: "), "{out}");
    assert!(out.contains(", 0 bots dropped by the server"), "{out}");
    let states: u64 = out
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no state count in {out:?}"));
    // At 20 ticks per second for 1.5 s the 8 bots could get 240 states; how many arrive
    // depends on the machine's load (speed is the benchmarks' business), but every tick
    // goes to all of them: one tick's worth shows the game ran.
    assert!(states >= 8, "{out}");
}

/// Every example server.
#[cfg(unix)]
const SERVERS: [&str; 5] = [
    env!("CARGO_BIN_EXE_chat-server"),
    env!("CARGO_BIN_EXE_lobby-server"),
    env!("CARGO_BIN_EXE_lag-server"),
    env!("CARGO_BIN_EXE_teams-server"),
    env!("CARGO_BIN_EXE_tag-server"),
];

/// Sends `signal` (`INT`, `TERM`) to the process, by its own PID.
#[cfg(unix)]
fn send_signal(child: &std::process::Child, signal: &str) {
    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("cannot run `kill`");
    assert!(sent.success(), "kill -{signal} failed");
}

/// A stop signal sent the moment a server has printed `listening on` is handled: the server
/// shuts down gracefully and exits 0 instead of being killed by the signal.
#[cfg(unix)]
fn stops_right_after_listening_on(signal: &str) {
    for bin in SERVERS {
        let mut srv = server(bin, "bincode");
        send_signal(&srv.child, signal);
        let (status, stdout) = srv.wait_for_exit(Duration::from_secs(30));
        assert!(
            status.success(),
            "{bin}: SIG{signal} gave {status}; stdout {stdout:?}"
        );
        assert_eq!(stdout.last().map(String::as_str), Some("stopped"), "{bin}");
    }
}

#[cfg(unix)]
#[test]
fn servers_stop_cleanly_on_sigint_right_after_listening_on() {
    stops_right_after_listening_on("INT");
}

#[cfg(unix)]
#[test]
fn servers_stop_cleanly_on_sigterm_right_after_listening_on() {
    stops_right_after_listening_on("TERM");
}

/// A chat participant that records what the server tells it.
#[cfg(unix)]
#[derive(Default)]
struct Participant {
    renamed: Vec<String>,
    disconnected: bool,
}

#[cfg(unix)]
#[repod::listener]
impl Participant {
    #[action]
    fn name_changed(&mut self, msg: repod_examples::chat::NameChanged) {
        self.renamed.push(msg.new_name);
    }

    #[action]
    fn disconnected(&mut self, _msg: repod::Disconnected) {
        self.disconnected = true;
    }
}

/// Pumps `client` until `done(participant)`, for at most 30 seconds.
#[cfg(unix)]
fn pump_until(
    client: &mut repod::client::Client,
    participant: &mut Participant,
    done: impl Fn(&Participant) -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done(participant) && std::time::Instant::now() < deadline {
        client.pump(participant);
        std::thread::sleep(Duration::from_millis(5));
    }
    done(participant)
}

/// With connected clients, a stop signal closes every channel (`on_close` runs, the clients are
/// told) and the server exits 0.
#[cfg(unix)]
fn stops_with_clients_connected(signal: &str) {
    // The chat server prints `<nickname> left (<reason>)` from its `on_close`.
    let mut srv = server(env!("CARGO_BIN_EXE_chat-server"), "bincode");
    let mut client = repod::client::Client::connect(("127.0.0.1", srv.port)).unwrap();
    let mut carol = Participant::default();
    client
        .send(&repod_examples::chat::Nickname {
            nickname: "carol".into(),
        })
        .unwrap();
    // The broadcast proves the server has carol's channel before the signal is sent.
    assert!(
        pump_until(&mut client, &mut carol, |p| !p.renamed.is_empty()),
        "no reply from the chat server"
    );
    send_signal(&srv.child, signal);
    let (status, stdout) = srv.wait_for_exit(Duration::from_secs(30));
    assert!(
        status.success(),
        "chat-server: SIG{signal} gave {status}; stdout {stdout:?}"
    );
    assert_eq!(
        stdout[1..],
        ["carol left (server shutdown)", "stopped"],
        "chat-server: {stdout:?}"
    );
    assert!(
        pump_until(&mut client, &mut carol, |p| p.disconnected),
        "the client was not disconnected"
    );

    // A peer that never speaks does not keep the server from stopping either.
    let mut srv = server(env!("CARGO_BIN_EXE_tag-server"), "bincode");
    let _peer = std::net::TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    send_signal(&srv.child, signal);
    let (status, stdout) = srv.wait_for_exit(Duration::from_secs(30));
    assert!(
        status.success(),
        "tag-server: SIG{signal} gave {status}; stdout {stdout:?}"
    );
    assert_eq!(stdout.last().map(String::as_str), Some("stopped"));
}

#[test]
fn lobby_bots_are_matched_into_rooms() {
    let srv = server(env!("CARGO_BIN_EXE_lobby-server"), "msgpack");
    let out = stdout_of(
        client(
            env!("CARGO_BIN_EXE_lobby-bots"),
            srv.port,
            "msgpack",
            &["--bots", "8", "--seconds", "3.5"],
        ),
        "",
    );
    assert!(out.starts_with("8 bots played 3.5 s: "), "{out}");
    let matches: u64 = out
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no match count in {out:?}"));
    // Eight bots make two matches of four at once; a round lasts 2 s.
    assert!(matches >= 2, "{out}");
    assert!(out.contains(", 0 messages from other matches"), "{out}");
    assert!(out.contains(", 0 bots finished no match"), "{out}");
    assert!(out.contains(", 0 bots dropped by the server"), "{out}");
    // Every bot asked for the match list with a request, and got it.
    assert!(out.contains(", 8/8 bots got the match list"), "{out}");
}

#[cfg(unix)]
#[test]
fn servers_stop_cleanly_on_ctrl_c() {
    stops_with_clients_connected("INT");
}

#[cfg(unix)]
#[test]
fn servers_stop_cleanly_on_sigterm() {
    stops_with_clients_connected("TERM");
}
