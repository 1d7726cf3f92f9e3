//! Arbitrary bytes as a bincode payload: `decode_raw`, then typed decoding.
//!
//! Checks: nothing panics or allocates past the limit; the action name `decode_raw` reports is
//! the bytes right before the body (for a reply, which has no action on the wire, it is
//! `"reply"`); bincode has no dynamic view; a
//! typed value that decodes re-encodes to the very bytes it came from (bincode's standard
//! configuration has one encoding per value, apart from the varint widths and `char`/`bool`
//! checks, which we verify by decoding again).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use repod::{Bincode, Codec, CodecError, Disconnected, ErrorMessage, Message, RawMessage};
use repod_fuzz::{Chat, Ping, PlayerState};
use serde::de::DeserializeOwned;

fn typed<M: Message + DeserializeOwned + std::fmt::Debug>(raw: &RawMessage) {
    let Ok(msg) = raw.decode::<M>() else {
        return;
    };
    let frame = Bincode
        .encode_frame(raw.action(), &msg, usize::MAX)
        .expect("a decoded message re-encodes");
    let again = Bincode
        .decode_raw(frame.slice(4..))
        .expect("our own encoding is valid");
    assert_eq!(again.action(), raw.action());
    let back: M = again.decode().expect("our own encoding decodes");
    assert_eq!(format!("{back:?}"), format!("{msg:?}"));
}

fuzz_target!(|data: &[u8]| {
    let payload = Bytes::copy_from_slice(data);
    let Ok(raw) = Bincode.decode_raw(payload.clone()) else {
        return;
    };
    let action = raw.action();
    let body = raw.body();
    assert!(data.ends_with(body));
    if raw.reply_id().is_some() {
        assert_eq!(action, "reply");
    } else {
        assert!(action.len() + body.len() <= data.len());
        let name_end = data.len() - body.len();
        assert_eq!(&data[name_end - action.len()..name_end], action.as_bytes());
    }
    assert!(matches!(
        raw.to_value(),
        Err(CodecError::NotSelfDescribing { .. })
    ));
    assert_eq!(raw.get("action"), None);
    let _ = format!("{raw:?}");

    typed::<Chat>(&raw);
    typed::<Ping>(&raw);
    typed::<PlayerState>(&raw);
    typed::<Disconnected>(&raw);
    typed::<ErrorMessage>(&raw);
    let _ = raw.decode::<String>();
    let _ = raw.decode::<Vec<u64>>();
    let _ = raw.decode::<Vec<String>>();
    let _ = raw.decode::<std::collections::HashMap<String, Vec<u8>>>();
});
