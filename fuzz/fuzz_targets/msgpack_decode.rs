//! Arbitrary bytes as a MessagePack payload: `decode_raw`, the dynamic view, typed decoding.
//!
//! Checks: nothing panics; a payload `decode_raw` accepts always has a dynamic value (it was
//! validated), which is a map whose first `"action"` entry is the action name; typed decoding
//! of a value that decodes re-encodes to a payload that decodes to the same value; and, against
//! rmpv as a reference parser, `decode_raw` rejects nothing valid: one map, nothing after it,
//! moderate nesting, and a string action (or none) is always accepted.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use repod::{Codec, Disconnected, ErrorMessage, Message, MsgPack, RawMessage};
use repod_fuzz::{Chat, Ping, PlayerState};
use serde::de::DeserializeOwned;

fn typed<M: Message + DeserializeOwned + std::fmt::Debug>(raw: &RawMessage) {
    let Ok(msg) = raw.decode::<M>() else {
        return;
    };
    // What decoded must survive a round trip of its own.
    let frame = MsgPack
        .encode(&msg, usize::MAX)
        .expect("a decoded message re-encodes");
    let again = MsgPack
        .decode_raw(frame.slice(4..))
        .expect("our own encoding is valid");
    assert_eq!(again.action(), M::ACTION);
    let back: M = again.decode().expect("our own encoding decodes");
    assert_eq!(format!("{back:?}"), format!("{msg:?}"));
}

fn loose<T: DeserializeOwned>(raw: &RawMessage) {
    let _ = raw.decode::<T>();
}

/// Nesting depth of non-empty arrays and maps, the way the validator counts it.
fn depth(value: &rmpv::Value) -> usize {
    match value {
        rmpv::Value::Array(items) if !items.is_empty() => {
            1 + items.iter().map(depth).max().unwrap_or(0)
        }
        rmpv::Value::Map(entries) if !entries.is_empty() => {
            1 + entries
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

/// Whether rmpv reads `data` as one map, nothing after it, that Python repod could have sent.
///
/// rmpv reads the reserved marker 0xc1 as nil, where the MessagePack spec (and Python's
/// msgpack) reject it, as repod does; inputs holding a 0xc1 byte anywhere are left out.
fn valid_message(data: &[u8]) -> bool {
    if data.contains(&0xc1) {
        return false;
    }
    let mut rest = data;
    let Ok(value) = rmpv::decode::read_value(&mut rest) else {
        return false;
    };
    let rmpv::Value::Map(entries) = &value else {
        return false;
    };
    let action_ok = match entries
        .iter()
        .find(|(k, _)| matches!(k, rmpv::Value::String(s) if s.as_bytes() == b"action"))
    {
        None => true,
        Some((_, rmpv::Value::String(s))) => s.is_str(),
        Some(_) => false,
    };
    rest.is_empty() && action_ok && depth(&value) <= 32
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = MsgPack.decode_raw(Bytes::copy_from_slice(data)) else {
        assert!(!valid_message(data), "decode_raw rejected a valid message");
        return;
    };
    let action = raw.action().to_owned();
    let _ = format!("{raw:?}");
    let value = raw
        .to_value()
        .expect("a payload accepted by decode_raw has a dynamic value");
    let rmpv::Value::Map(entries) = &value else {
        panic!("decode_raw accepted a non-map: {value:?}");
    };
    let first_action = entries
        .iter()
        .find(|(k, _)| k.as_str() == Some("action"))
        .map(|(_, v)| v);
    match first_action {
        Some(v) => assert_eq!(v.as_str(), Some(action.as_str())),
        None => assert_eq!(action, ""),
    }
    assert_eq!(raw.get("action").as_ref(), first_action);
    let _ = raw.get("text");

    typed::<Chat>(&raw);
    typed::<Ping>(&raw);
    typed::<PlayerState>(&raw);
    typed::<Disconnected>(&raw);
    typed::<ErrorMessage>(&raw);
    loose::<rmpv::Value>(&raw);
    loose::<std::collections::HashMap<String, rmpv::Value>>(&raw);
    loose::<Vec<u64>>(&raw);
});
