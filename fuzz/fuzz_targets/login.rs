//! The authentication gate: what a peer that has not logged in yet can make the server read.
//!
//! Input: byte 0 picks the mode. Bit 0 is the codec (bincode, MessagePack). With bit 1 clear,
//! the rest is a byte stream, cut into frames by `FrameCodec` (at most 4 KiB each) as the
//! server's reader does, and each frame's payload goes through the gate until it yields
//! something other than a heartbeat; the login it lets through is then decoded as two login
//! types, as the application's check would. With bit 1 set, the rest builds a login value that
//! is encoded and must come through the gate as a login and decode back to itself.
//!
//! Checks: nothing panics; what the gate lets through carries the login action, and with
//! MessagePack is a map whose `"action"` entry (per rmpv) is that action; a refusal always has
//! a reason; a login that decodes re-encodes into a payload that the gate lets through and that
//! decodes to the same value.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use repod::server::{login_step, LoginStep};
use repod::{Codec, CodecKind, FrameConfig, Message, RawMessage};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::codec::Decoder;

const LOGIN: &str = "login";

/// The usual login: a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary)]
struct Login {
    token: String,
}

impl Message for Login {
    const ACTION: &'static str = LOGIN;
}

/// A richer login: a user name, a binary token, an optional client version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary)]
struct AccountLogin {
    user: String,
    #[serde(with = "serde_bytes")]
    token: Vec<u8>,
    version: Option<u32>,
}

impl Message for AccountLogin {
    const ACTION: &'static str = LOGIN;
}

/// The login `L` carried by `raw`, if it decodes: it re-encodes, passes the gate again and
/// decodes to the same value.
fn login_as<L>(codec: CodecKind, raw: &RawMessage)
where
    L: Message + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(login) = raw.decode::<L>() else {
        return;
    };
    round_trip(codec, &login);
}

fn round_trip<L>(codec: CodecKind, login: &L)
where
    L: Message + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let frame = codec.encode(login, usize::MAX).expect("a login encodes");
    match login_step(codec, LOGIN, frame.slice(4..)) {
        LoginStep::Login(raw) => {
            assert_eq!(raw.action(), LOGIN);
            let back: L = raw.decode().expect("our own login decodes");
            assert_eq!(&back, login);
        }
        other => panic!("an encoded login was not let through: {other:?}"),
    }
}

/// With MessagePack, what the gate let through is a map whose first `"action"` is the login's.
fn check_msgpack_action(payload: &[u8]) {
    let mut rest = payload;
    let value = rmpv::decode::read_value(&mut rest).expect("an accepted payload is MessagePack");
    let map = value.as_map().expect("an accepted payload is a map");
    let action = map
        .iter()
        .find(|(key, _)| key.as_str() == Some("action"))
        .and_then(|(_, value)| value.as_str());
    assert_eq!(action, Some(LOGIN));
}

fn stream(codec: CodecKind, bytes: &[u8]) {
    let mut frames = FrameConfig::with_max_frame_len(4096).new_codec();
    let mut buf = BytesMut::from(bytes);
    loop {
        let payload: Bytes = match frames.decode(&mut buf) {
            Ok(Some(payload)) => payload,
            // An unfinished frame waits for more; a frame over the limit closes the peer.
            Ok(None) | Err(_) => return,
        };
        match login_step(codec, LOGIN, payload.clone()) {
            LoginStep::Heartbeat => continue,
            LoginStep::Login(raw) => {
                assert_eq!(raw.action(), LOGIN);
                if codec == CodecKind::MsgPack {
                    check_msgpack_action(&payload);
                }
                login_as::<Login>(codec, &raw);
                login_as::<AccountLogin>(codec, &raw);
                return;
            }
            LoginStep::Refuse(reason) => {
                assert!(!reason.is_empty(), "a refusal says why");
                return;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let codec = if mode & 1 == 0 {
        CodecKind::Bincode
    } else {
        CodecKind::MsgPack
    };
    if mode & 2 == 0 {
        stream(codec, rest);
    } else {
        let mut input = Unstructured::new(rest);
        if let Ok(login) = Login::arbitrary(&mut input) {
            round_trip(codec, &login);
        }
        if let Ok(login) = AccountLogin::arbitrary(&mut input) {
            round_trip(codec, &login);
        }
    }
});
