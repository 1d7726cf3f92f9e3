//! Requests and replies on the wire, byte by byte, for both codecs; plain messages unchanged;
//! what a Python peer may send.

use bytes::Bytes;
use proptest::prelude::*;
use repod::{Codec, CodecError, CodecKind, Message, Request, RequestError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("list_rooms")]
#[reply(RoomList)]
struct ListRooms {
    mode: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RoomList {
    rooms: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("chat")]
struct Chat {
    text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ack;

fn payload(frame: &Bytes) -> Bytes {
    let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(len, frame.len() - 4, "the length prefix counts the payload");
    frame.slice(4..)
}

fn bytes(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn msgpack_request_is_the_message_map_plus_rid() {
    let frame = CodecKind::MsgPack
        .encode_request(7, &ListRooms { mode: "ffa".into() }, 1024)
        .unwrap();
    let expected = bytes(&[
        b"\x83",
        b"\xa6action",
        b"\xaalist_rooms",
        b"\xa3rid",
        b"\x07",
        b"\xa4mode",
        b"\xa3ffa",
    ]);
    assert_eq!(&payload(&frame)[..], &expected[..]);
    let raw = CodecKind::MsgPack.decode_raw(payload(&frame)).unwrap();
    assert_eq!(raw.action(), "list_rooms");
    assert_eq!(raw.request_id(), Some(7));
    assert_eq!(raw.reply_id(), None);
    assert_eq!(raw.decode::<ListRooms>().unwrap().mode, "ffa");
}

#[test]
fn msgpack_replies_are_maps_with_ok_or_error() {
    let rooms = RoomList {
        rooms: vec!["a".into()],
    };
    let frame = CodecKind::MsgPack
        .encode_reply(7, Ok(&rooms), 1024)
        .unwrap();
    let expected = bytes(&[
        b"\x83",
        b"\xa6action",
        b"\xa5reply",
        b"\xa3rid",
        b"\x07",
        b"\xa2ok",
        b"\x81\xa5rooms\x91\xa1a",
    ]);
    assert_eq!(&payload(&frame)[..], &expected[..]);
    let raw = CodecKind::MsgPack.decode_raw(payload(&frame)).unwrap();
    assert_eq!(raw.action(), "reply");
    assert_eq!(raw.reply_id(), Some(7));
    assert_eq!(raw.request_id(), None);
    assert_eq!(raw.decode_reply::<RoomList>().unwrap(), rooms);

    let frame = CodecKind::MsgPack
        .encode_reply::<()>(300, Err("no"), 1024)
        .unwrap();
    let expected = bytes(&[
        b"\x83",
        b"\xa6action",
        b"\xa5reply",
        b"\xa3rid",
        b"\xcd\x01\x2c",
        b"\xa5error",
        b"\xa2no",
    ]);
    assert_eq!(&payload(&frame)[..], &expected[..]);
    let raw = CodecKind::MsgPack.decode_raw(payload(&frame)).unwrap();
    assert_eq!(
        raw.decode_reply::<RoomList>(),
        Err(RequestError::Remote("no".into()))
    );
}

#[test]
fn bincode_request_and_replies_start_with_the_reserved_name() {
    let frame = CodecKind::Bincode
        .encode_request(7, &ListRooms { mode: "ffa".into() }, 1024)
        .unwrap();
    let expected = bytes(&[b"\x01\x00", b"\x00", b"\x07", b"\x0alist_rooms", b"\x03ffa"]);
    assert_eq!(&payload(&frame)[..], &expected[..]);
    let raw = CodecKind::Bincode.decode_raw(payload(&frame)).unwrap();
    assert_eq!(raw.action(), "list_rooms");
    assert_eq!(raw.request_id(), Some(7));
    assert_eq!(raw.decode::<ListRooms>().unwrap().mode, "ffa");

    let rooms = RoomList {
        rooms: vec!["a".into()],
    };
    let frame = CodecKind::Bincode
        .encode_reply(7, Ok(&rooms), 1024)
        .unwrap();
    let expected = bytes(&[b"\x01\x00", b"\x01", b"\x07", b"\x01\x01a"]);
    assert_eq!(&payload(&frame)[..], &expected[..]);
    let raw = CodecKind::Bincode.decode_raw(payload(&frame)).unwrap();
    assert_eq!(raw.action(), "reply");
    assert_eq!(raw.reply_id(), Some(7));
    assert_eq!(raw.decode_reply::<RoomList>().unwrap(), rooms);

    // A large id takes bincode's varint form: 251, then two bytes little-endian.
    let frame = CodecKind::Bincode
        .encode_reply::<()>(300, Err("no"), 1024)
        .unwrap();
    let expected = bytes(&[b"\x01\x00", b"\x02", b"\xfb\x2c\x01", b"\x02no"]);
    assert_eq!(&payload(&frame)[..], &expected[..]);
    let raw = CodecKind::Bincode.decode_raw(payload(&frame)).unwrap();
    assert_eq!(raw.reply_id(), Some(300));
    assert_eq!(
        raw.decode_reply::<RoomList>(),
        Err(RequestError::Remote("no".into()))
    );
}

#[test]
fn plain_messages_are_unchanged() {
    let chat = Chat {
        text: "Hello".into(),
    };
    // The round-1 bytes of the wire-format chapter.
    let msgpack = CodecKind::MsgPack.encode(&chat, 1024).unwrap();
    assert_eq!(
        &msgpack[..],
        b"\x00\x00\x00\x18\x82\xa6action\xa4chat\xa4text\xa5Hello"
    );
    let bincode = CodecKind::Bincode.encode(&chat, 1024).unwrap();
    assert_eq!(&bincode[..], b"\x00\x00\x00\x0b\x04chat\x05Hello");
    // A request type sent with a plain send is a plain message too.
    let plain = CodecKind::MsgPack
        .encode(&ListRooms { mode: "ffa".into() }, 1024)
        .unwrap();
    let raw = CodecKind::MsgPack.decode_raw(payload(&plain)).unwrap();
    assert_eq!((raw.request_id(), raw.reply_id()), (None, None));
    for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
        let raw = codec
            .decode_raw(payload(&codec.encode(&chat, 1024).unwrap()))
            .unwrap();
        assert_eq!((raw.request_id(), raw.reply_id()), (None, None));
        assert_eq!(raw.decode::<Chat>().unwrap(), chat);
    }
}

/// A MessagePack map from (key, value) pairs already encoded.
fn map(entries: &[(&str, &[u8])]) -> Bytes {
    let mut out = vec![0x80 | entries.len() as u8];
    for (key, value) in entries {
        out.push(0xa0 | key.len() as u8);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(value);
    }
    Bytes::from(out)
}

#[test]
fn what_python_may_send_under_rid() {
    let decode = |payload: Bytes| CodecKind::MsgPack.decode_raw(payload).unwrap();
    // Only an unsigned integer makes a request: a string or a negative number is a field.
    let raw = decode(map(&[("action", b"\xa4join"), ("rid", b"\xa6room-3")]));
    assert_eq!(raw.request_id(), None);
    let raw = decode(map(&[("action", b"\xa4join"), ("rid", b"\xff")]));
    assert_eq!(raw.request_id(), None);
    let raw = decode(map(&[("action", b"\xa4join"), ("rid", b"\xd0\x85")]));
    assert_eq!(raw.request_id(), None);
    // Any width of a non-negative integer is an id, signed encodings included.
    for (value, id) in [
        (&b"\x05"[..], 5),
        (b"\xcc\xc8", 200),
        (b"\xd1\x01\x00", 256),
        (b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", u64::MAX),
    ] {
        let raw = decode(map(&[("rid", value), ("action", b"\xa4join")]));
        assert_eq!(raw.request_id(), Some(id));
        assert_eq!(raw.action(), "join");
    }
    // "reply" with an id but neither "ok" nor "error" is a request for the action "reply".
    let raw = decode(map(&[("action", b"\xa5reply"), ("rid", b"\x01")]));
    assert_eq!((raw.request_id(), raw.reply_id()), (Some(1), None));
    // A reply without a value: Python's None, {} or [] all decode into a unit type.
    for nothing in [&b"\xc0"[..], b"\x80", b"\x90"] {
        let raw = decode(map(&[
            ("action", b"\xa5reply"),
            ("rid", b"\x02"),
            ("ok", nothing),
        ]));
        assert_eq!(raw.reply_id(), Some(2));
        assert_eq!(raw.decode_reply::<()>(), Ok(()));
        assert_eq!(raw.decode_reply::<Ack>(), Ok(Ack));
    }
    // "error" wins over "ok"; an error that is not a string is still shown.
    let raw = decode(map(&[
        ("action", b"\xa5reply"),
        ("ok", b"\x01"),
        ("rid", b"\x03"),
        ("error", b"\x2a"),
    ]));
    assert_eq!(
        raw.decode_reply::<u8>(),
        Err(RequestError::Remote("42".into()))
    );
}

#[test]
fn broken_bincode_envelopes_are_errors() {
    let decode = |bytes: &[u8]| CodecKind::Bincode.decode_raw(Bytes::copy_from_slice(bytes));
    for broken in [
        &b"\x01\x00"[..],            // the marker alone
        b"\x01\x00\x09\x01",         // an unknown kind
        b"\x01\x00\x00",             // no id
        b"\x01\x00\x00\xfb\x01",     // a cut varint
        b"\x01\x00\x00\x01",         // a request without its action
        b"\x01\x00\x00\x01\x05ab",   // an action cut short
        b"\x01\x00\x00\x0b\x01\x00", // a request for the reserved name itself
    ] {
        assert!(
            matches!(decode(broken), Err(CodecError::Malformed { .. })),
            "{broken:?}: {:?}",
            decode(broken)
        );
    }
    // The reserved name cannot be sent as an action.
    let reserved = CodecKind::Bincode.encode_frame("\0", &(), 1024);
    assert!(
        matches!(reserved, Err(CodecError::Encode { .. })),
        "{reserved:?}"
    );
    // A reply whose value is cut short is a decode error of the reply, not of the frame.
    let raw = decode(b"\x01\x00\x01\x01\x05ab").unwrap();
    assert!(matches!(
        raw.decode_reply::<String>(),
        Err(RequestError::Decode(_))
    ));
}

#[test]
fn a_reply_too_large_for_a_frame_becomes_an_error_reply() {
    for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
        let big = "x".repeat(300);
        let frame = codec.encode_reply(1, Ok(&big), 100).unwrap();
        let raw = codec.decode_raw(payload(&frame)).unwrap();
        let Err(RequestError::Remote(text)) = raw.decode_reply::<String>() else {
            panic!("not an error reply");
        };
        assert!(text.contains("maximum frame length of 100 bytes"), "{text}");
    }
}

fn request_of<R: Request>(codec: CodecKind, rid: u64, msg: &R) -> Bytes {
    payload(&codec.encode_request(rid, msg, usize::MAX).unwrap())
}

proptest! {
    #[test]
    fn requests_and_replies_round_trip(rid in any::<u64>(), mode in ".*", rooms in proptest::collection::vec(".*", 0..4), error in ".*") {
        for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
            let req = ListRooms { mode: mode.clone() };
            let raw = codec.decode_raw(request_of(codec, rid, &req)).unwrap();
            prop_assert_eq!(raw.request_id(), Some(rid));
            prop_assert_eq!(raw.action(), ListRooms::ACTION);
            prop_assert_eq!(raw.decode::<ListRooms>().unwrap(), req);

            let list = RoomList { rooms: rooms.clone() };
            let raw = codec.decode_raw(payload(&codec.encode_reply(rid, Ok(&list), usize::MAX).unwrap())).unwrap();
            prop_assert_eq!(raw.reply_id(), Some(rid));
            prop_assert_eq!(raw.decode_reply::<RoomList>().unwrap(), list);

            let raw = codec.decode_raw(payload(&codec.encode_reply::<()>(rid, Err(&error), usize::MAX).unwrap())).unwrap();
            prop_assert_eq!(raw.reply_id(), Some(rid));
            prop_assert_eq!(raw.decode_reply::<RoomList>(), Err(RequestError::Remote(error.clone())));
        }
    }
}
