//! Arbitrary bytes as a MessagePack payload: `decode_raw`, the dynamic view, typed decoding.
//!
//! Checks: nothing panics; a payload `decode_raw` accepts always has a dynamic value (it was
//! validated), which is a map whose first `"action"` entry is the action name; typed decoding
//! of a value that decodes re-encodes to a payload that decodes to the same value.
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

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = MsgPack.decode_raw(Bytes::copy_from_slice(data)) else {
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
