//! Requests and replies: arbitrary bytes as a request or reply payload of either codec, and
//! arbitrary requests and replies through an encode/decode round trip.
//!
//! The first byte picks the mode: bit 0 the codec (bincode, MessagePack), bit 1 raw bytes or a
//! structured round trip of the rest.
//!
//! Checks on raw bytes: nothing panics; a payload is never both a request and a reply; a reply's
//! outcome decodes (or fails) without panicking into several types, and what decodes
//! re-encodes into a reply with the same id and value; a reply's error text survives the same
//! trip; a request's id survives re-encoding its body as a request. With MessagePack, against
//! rmpv as a reference: a payload carries a request or reply id exactly when its first `"rid"`
//! entry is a non-negative integer, and that id is the one reported.
//!
//! Checks on structured input: every request and reply encodes and decodes back to the same
//! id, action, body and outcome, for both codecs.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use repod::{Codec, CodecKind, RawMessage, RequestError};
use repod_fuzz::{Chat, PlayerState};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn payload(frame: &Bytes) -> Bytes {
    frame.slice(4..)
}

/// A reply's value decoded as `T`: if it decodes, it re-encodes into the same reply.
fn reply_as<T: Serialize + DeserializeOwned + std::fmt::Debug>(codec: CodecKind, raw: &RawMessage) {
    let rid = raw.reply_id().expect("a reply");
    match raw.decode_reply::<T>() {
        Ok(value) => {
            let frame = codec
                .encode_reply(rid, Ok(&value), usize::MAX)
                .expect("a decoded reply re-encodes");
            let again = codec
                .decode_raw(payload(&frame))
                .expect("our reply is valid");
            assert_eq!(again.reply_id(), Some(rid));
            assert_eq!(again.request_id(), None);
            let back = again.decode_reply::<T>().expect("our reply decodes");
            // Compared as text: NaN floats are unequal to themselves.
            assert_eq!(format!("{back:?}"), format!("{value:?}"));
        }
        Err(RequestError::Remote(text)) => {
            let frame = codec
                .encode_reply::<()>(rid, Err(&text), usize::MAX)
                .expect("an error reply re-encodes");
            let again = codec
                .decode_raw(payload(&frame))
                .expect("our reply is valid");
            assert_eq!(again.reply_id(), Some(rid));
            let back = again.decode_reply::<T>();
            assert!(
                matches!(&back, Err(RequestError::Remote(t)) if *t == text),
                "{back:?}"
            );
        }
        Err(RequestError::Decode(_)) => {}
        Err(other) => panic!("decode_reply gave {other:?}"),
    }
}

/// The first `"rid"` entry of a MessagePack map, as rmpv reads it: `Some(id)` if it is a
/// non-negative integer.
fn reference_rid(data: &[u8]) -> Option<Option<u64>> {
    if data.contains(&0xc1) {
        return None;
    }
    let mut rest = data;
    let rmpv::Value::Map(entries) = rmpv::decode::read_value(&mut rest).ok()? else {
        return None;
    };
    Some(
        entries
            .iter()
            .find(|(k, _)| k.as_str() == Some("rid"))
            .and_then(|(_, v)| v.as_u64()),
    )
}

fn raw_bytes(codec: CodecKind, data: &[u8]) {
    let Ok(raw) = codec.decode_raw(Bytes::copy_from_slice(data)) else {
        return;
    };
    let _ = format!("{raw:?}");
    assert!(raw.request_id().is_none() || raw.reply_id().is_none());
    if codec == CodecKind::MsgPack {
        if let Some(rid) = reference_rid(data) {
            assert_eq!(raw.request_id().or(raw.reply_id()), rid);
        }
    }
    if raw.reply_id().is_some() {
        assert_eq!(raw.action(), "reply");
        reply_as::<Chat>(codec, &raw);
        reply_as::<PlayerState>(codec, &raw);
        reply_as::<String>(codec, &raw);
        reply_as::<u64>(codec, &raw);
        reply_as::<()>(codec, &raw);
        reply_as::<Vec<String>>(codec, &raw);
        if codec == CodecKind::MsgPack {
            let _ = raw.decode_reply::<rmpv::Value>();
        }
    }
    if let Some(rid) = raw.request_id() {
        if let Ok(chat) = raw.decode::<Chat>() {
            let frame = codec
                .encode_request(rid, &chat, usize::MAX)
                .expect("a decoded request re-encodes");
            let again = codec
                .decode_raw(payload(&frame))
                .expect("our request is valid");
            assert_eq!(again.request_id(), Some(rid));
            assert_eq!(again.decode::<Chat>().expect("our request decodes"), chat);
            assert_eq!(again.action(), "chat");
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Case {
    Request { rid: u64, state: PlayerState },
    Reply { rid: u64, rooms: Vec<String> },
    Failure { rid: u64, text: String },
}

fn round_trip(codec: CodecKind, case: Case) {
    match case {
        Case::Request { rid, state } => {
            let frame = codec
                .encode_request(rid, &state, usize::MAX)
                .expect("encodes");
            let raw = codec.decode_raw(payload(&frame)).expect("decodes");
            assert_eq!(raw.request_id(), Some(rid));
            assert_eq!(raw.reply_id(), None);
            assert_eq!(raw.action(), "player_state");
            let back: PlayerState = raw.decode().expect("body decodes");
            // NaN floats compare unequal; compare their encodings instead.
            assert_eq!(format!("{back:?}"), format!("{state:?}"));
        }
        Case::Reply { rid, rooms } => {
            let frame = codec
                .encode_reply(rid, Ok(&rooms), usize::MAX)
                .expect("encodes");
            let raw = codec.decode_raw(payload(&frame)).expect("decodes");
            assert_eq!(raw.reply_id(), Some(rid));
            assert_eq!(raw.decode_reply::<Vec<String>>(), Ok(rooms));
        }
        Case::Failure { rid, text } => {
            let frame = codec
                .encode_reply::<()>(rid, Err(&text), usize::MAX)
                .expect("encodes");
            let raw = codec.decode_raw(payload(&frame)).expect("decodes");
            assert_eq!(raw.reply_id(), Some(rid));
            assert_eq!(raw.decode_reply::<u8>(), Err(RequestError::Remote(text)));
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
        raw_bytes(codec, rest);
    } else if let Ok(case) = Case::arbitrary_take_rest(Unstructured::new(rest)) {
        round_trip(codec, case);
    }
});
