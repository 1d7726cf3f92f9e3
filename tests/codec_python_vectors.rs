//! The MessagePack codec produces and accepts exactly the bytes Python repod does.
//!
//! The vectors below were produced by `tests/python/gen_vectors.py`, which calls Python's
//! `msgpack.packb(message, use_bin_type=True)` (msgpack 1.x), the encoding Python repod uses.
//! `vectors_match_the_python_script` re-runs that script and checks that its output still
//! equals the embedded copies; it installs Python's `msgpack` under `target/` if needed (see
//! `python_support`).

mod python_support;

use repod::{Codec, CodecKind, Message};
use serde::{Deserialize, Serialize};

const CHAT: &str = "82a6616374696f6ea463686174a474657874a548656c6c6f";
const MOVE: &str = "83a6616374696f6ea46d6f7665a17864a179ccc8";
const PING: &str = "81a6616374696f6ea470696e67";
const NESTED: &str = "83a6616374696f6eaa67616d655f7374617465a7706c61796572739283a46e616d65a5416c696365a178cb3ff8000000000000a573636f72650a83a46e616d65a3426f62a178cbc002000000000000a573636f7265cd012ca974696d657374616d70ce0001e240";

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Chat {
    text: String,
}
impl Message for Chat {
    const ACTION: &'static str = "chat";
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Move {
    x: i32,
    y: i32,
}
impl Message for Move {
    const ACTION: &'static str = "move";
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Ping;
impl Message for Ping {
    const ACTION: &'static str = "ping";
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Player {
    name: String,
    x: f64,
    score: u32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct GameState {
    players: Vec<Player>,
    timestamp: u64,
}
impl Message for GameState {
    const ACTION: &'static str = "game_state";
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn payload<M: Message>(msg: &M) -> String {
    let frame = CodecKind::MsgPack.encode(msg, usize::MAX).unwrap();
    let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(len, frame.len() - 4, "header announces the payload length");
    hex(&frame[4..])
}

fn decode<T: serde::de::DeserializeOwned>(hex_payload: &str) -> (String, T) {
    let raw = CodecKind::MsgPack
        .decode_raw(unhex(hex_payload).into())
        .unwrap();
    (raw.action().to_owned(), raw.decode().unwrap())
}

fn game_state() -> GameState {
    GameState {
        players: vec![
            Player {
                name: "Alice".into(),
                x: 1.5,
                score: 10,
            },
            Player {
                name: "Bob".into(),
                x: -2.25,
                score: 300,
            },
        ],
        timestamp: 123456,
    }
}

#[test]
fn encoding_matches_python_bytes() {
    assert_eq!(
        payload(&Chat {
            text: "Hello".into()
        }),
        CHAT
    );
    assert_eq!(payload(&Move { x: 100, y: 200 }), MOVE);
    assert_eq!(payload(&Ping), PING);
    assert_eq!(payload(&game_state()), NESTED);
}

#[test]
fn python_bytes_decode() {
    assert_eq!(
        decode::<Chat>(CHAT),
        (
            "chat".into(),
            Chat {
                text: "Hello".into()
            }
        )
    );
    assert_eq!(
        decode::<Move>(MOVE),
        ("move".into(), Move { x: 100, y: 200 })
    );
    assert_eq!(decode::<Ping>(PING), ("ping".into(), Ping));
    assert_eq!(
        decode::<GameState>(NESTED),
        ("game_state".into(), game_state())
    );
}

#[test]
fn python_bytes_decode_into_dynamic_values() {
    let raw = CodecKind::MsgPack.decode_raw(unhex(NESTED).into()).unwrap();
    let players = raw.get("players").unwrap();
    let players = players.as_array().unwrap();
    assert_eq!(players.len(), 2);
    assert_eq!(players[1]["name"].as_str(), Some("Bob"));
    assert_eq!(players[1]["x"].as_f64(), Some(-2.25));
    assert_eq!(raw.get("timestamp").and_then(|v| v.as_u64()), Some(123456));
    assert!(raw.get("missing").is_none());
}

#[test]
fn vectors_match_the_python_script() {
    let Some(python) = python_support::python("vectors_match_the_python_script") else {
        return;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/gen_vectors.py");
    let out = python
        .command()
        .arg(script)
        .output()
        .expect("cannot run Python");
    assert!(
        out.status.success(),
        "gen_vectors.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let expected = [
        ("chat", CHAT),
        ("move", MOVE),
        ("ping", PING),
        ("nested", NESTED),
    ];
    let lines: Vec<(&str, &str)> = stdout.lines().filter_map(|l| l.split_once(' ')).collect();
    assert_eq!(lines, expected);
}
