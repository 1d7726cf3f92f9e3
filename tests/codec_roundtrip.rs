//! Messages of several shapes survive a round trip through both codecs.

use std::collections::BTreeMap;

use repod::{Bincode, Codec, CodecError, CodecKind, Message, MsgPack, RawMessage};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ping;
impl Message for Ping {
    const ACTION: &'static str = "ping";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Chat {
    text: String,
    from: String,
}
impl Message for Chat {
    const ACTION: &'static str = "chat";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Vec2 {
    x: f32,
    y: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Team {
    Red,
    Blue { captain: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Everything {
    unit_like: (),
    flag: bool,
    small: u8,
    negative: i64,
    big: u64,
    ratio: f32,
    precise: f64,
    text: String,
    unicode: String,
    position: Vec2,
    path: Vec<Vec2>,
    scores: BTreeMap<String, i32>,
    nested: Vec<Vec<u16>>,
    nickname: Option<String>,
    missing: Option<u32>,
    team: Team,
    other_team: Team,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
}
impl Message for Everything {
    const ACTION: &'static str = "game_state";
}

fn everything() -> Everything {
    Everything {
        unit_like: (),
        flag: true,
        small: 7,
        negative: -1_234_567_890_123,
        big: u64::MAX,
        ratio: 0.25,
        precise: std::f64::consts::PI,
        text: "Hello".into(),
        unicode: "héllo wörld ✓ 🎮".into(),
        position: Vec2 { x: 1.5, y: -2.0 },
        path: vec![Vec2 { x: 0.0, y: 0.0 }, Vec2 { x: 10.0, y: 1e300 }],
        scores: [("alice".to_owned(), 10), ("bob".to_owned(), -3)].into(),
        nested: vec![vec![], vec![1, 2, 3], vec![65535]],
        nickname: Some("ace".into()),
        missing: None,
        team: Team::Red,
        other_team: Team::Blue {
            captain: "carol".into(),
        },
        blob: vec![0, 1, 2, 255],
    }
}

fn round_trip<C: Codec, M: Message + DeserializeOwned + PartialEq + std::fmt::Debug>(
    codec: &C,
    msg: &M,
) -> RawMessage {
    let frame = codec.encode(msg, usize::MAX).unwrap();
    assert_eq!(
        u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
        frame.len() - 4
    );
    let raw = codec.decode_raw(frame.slice(4..)).unwrap();
    assert_eq!(raw.action(), M::ACTION);
    assert!(raw.is::<M>());
    assert_eq!(raw.codec(), codec.kind());
    let back: M = raw.decode().unwrap();
    assert_eq!(&back, msg);
    raw
}

fn all_shapes<C: Codec>(codec: C) {
    round_trip(&codec, &Ping);
    round_trip(
        &codec,
        &Chat {
            text: "Hello".into(),
            from: "Alice".into(),
        },
    );
    round_trip(&codec, &everything());
    round_trip(
        &codec,
        &Chat {
            text: String::new(),
            from: "x".repeat(70_000),
        },
    );
}

#[test]
fn bincode_round_trips_every_shape() {
    all_shapes(Bincode);
    all_shapes(CodecKind::Bincode);
}

#[test]
fn msgpack_round_trips_every_shape() {
    all_shapes(MsgPack);
    all_shapes(CodecKind::MsgPack);
}

#[test]
fn unit_struct_is_a_bare_action() {
    let frame = MsgPack.encode(&Ping, 64).unwrap();
    // {"action": "ping"}
    assert_eq!(&frame[4..], b"\x81\xa6action\xa4ping");
    let frame = Bincode.encode(&Ping, 64).unwrap();
    // varint length 4, "ping", empty body
    assert_eq!(&frame[..], b"\x00\x00\x00\x05\x04ping");
}

#[test]
fn msgpack_unit_struct_ignores_extra_keys() {
    // {"action": "ping", "seq": 1}, as a Python peer may send it
    let raw = MsgPack
        .decode_raw(bytes::Bytes::from_static(
            b"\x82\xa6action\xa4ping\xa3seq\x01",
        ))
        .unwrap();
    assert_eq!(raw.action(), "ping");
    assert_eq!(raw.decode::<Ping>().unwrap(), Ping);

    // A struct whose fields all have defaults does not swallow a mistyped field.
    #[derive(Debug, Deserialize)]
    struct Defaults {
        #[serde(default)]
        #[allow(dead_code)]
        reason: String,
    }
    // {"action": "ping", "reason": 5}
    let raw = MsgPack
        .decode_raw(bytes::Bytes::from_static(
            b"\x82\xa6action\xa4ping\xa6reason\x05",
        ))
        .unwrap();
    let err = raw.decode::<Defaults>().unwrap_err();
    assert!(matches!(err, CodecError::Body { .. }), "{err}");

    // When neither shape fits, the error is the one of the map.
    let err = raw.decode::<Chat>().unwrap_err();
    assert!(err.to_string().contains("ping"), "{err}");
    assert!(!err.to_string().contains("array"), "{err}");
}

#[test]
fn msgpack_get_finds_one_top_level_value() {
    // {1: "x", "a": [1, {"b": 2}], "action": "t", "b": "y", "b": "z"}
    let raw = MsgPack
        .decode_raw(bytes::Bytes::from_static(
            b"\x85\x01\xa1x\xa1a\x92\x01\x81\xa1b\x02\xa6action\xa1t\xa1b\xa1y\xa1b\xa1z",
        ))
        .unwrap();
    assert_eq!(raw.action(), "t");
    // The first top-level "b", not the nested one nor the later duplicate.
    assert_eq!(raw.get("b").unwrap().as_str(), Some("y"));
    let a = raw.get("a").unwrap();
    assert_eq!(a.as_array().map(Vec::len), Some(2));
    assert_eq!(raw.get("action").unwrap().as_str(), Some("t"));
    assert!(raw.get("x").is_none());
    assert!(raw.get("1").is_none());
}

#[test]
fn action_is_read_without_decoding_the_body() {
    // The body does not fit `Chat`, yet the action is available: routing happens first.
    let frame = MsgPack
        .encode_frame("chat", &BTreeMap::from([("text", 5)]), 1024)
        .unwrap();
    let raw = MsgPack.decode_raw(frame.slice(4..)).unwrap();
    assert_eq!(raw.action(), "chat");
    let err = raw.decode::<Chat>().unwrap_err();
    assert!(matches!(err, CodecError::Body { ref action, .. } if action == "chat"));
    assert!(err.to_string().contains("chat"), "{err}");

    let frame = Bincode.encode(&Ping, 1024).unwrap();
    let raw = Bincode.decode_raw(frame.slice(4..)).unwrap();
    assert_eq!(raw.action(), "ping");
    let err = raw.decode::<Chat>().unwrap_err();
    assert!(
        err.to_string().contains("invalid body for action \"ping\""),
        "{err}"
    );
}

#[test]
fn msgpack_map_without_action_has_the_empty_action() {
    // {"text": "Hello"}
    let raw = MsgPack
        .decode_raw(bytes::Bytes::from_static(b"\x81\xa4text\xa5Hello"))
        .unwrap();
    assert_eq!(raw.action(), "");
    assert_eq!(raw.get("text").unwrap().as_str(), Some("Hello"));
}

#[test]
fn msgpack_rejects_what_is_not_a_message_map() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "empty payload"),
        (b"\x93\x01\x02\x03", "an array"),
        (b"\xa4chat", "a string"),
        (b"\x81\xa6action\x05", "must be a string"),
        (b"\x82\xa6action\xa4chat", "truncated"),
        (b"\x81\xa6action\xa4chat\x00", "unexpected bytes after"),
        (b"\xdf\xff\xff\xff\xff", "declares"),
        (b"\x81\xa6action\xc1", "reserved marker"),
    ];
    for (payload, needle) in cases {
        let err = MsgPack
            .decode_raw(bytes::Bytes::copy_from_slice(payload))
            .unwrap_err();
        assert!(
            err.to_string().contains(needle),
            "{payload:x?}: {err} should mention {needle:?}"
        );
    }
}

#[test]
fn msgpack_rejects_hostile_nesting() {
    // {"action": "x", "deep": [[[[...]]]]} nested far beyond the limit.
    let mut payload = b"\x82\xa6action\xa1x\xa4deep".to_vec();
    payload.extend(std::iter::repeat_n(0x91u8, 100_000));
    payload.push(0xc0);
    let err = MsgPack.decode_raw(payload.into()).unwrap_err();
    assert!(matches!(err, CodecError::TooDeep { .. }), "{err}");
}

#[test]
fn bincode_dynamic_values_are_refused_clearly() {
    let frame = Bincode.encode(&Ping, 64).unwrap();
    let raw = Bincode.decode_raw(frame.slice(4..)).unwrap();
    let err = raw.to_value().unwrap_err();
    assert!(err.to_string().contains("not self-describing"), "{err}");
}

#[test]
fn bincode_rejects_trailing_bytes_and_lying_lengths() {
    let frame = Bincode
        .encode(
            &Chat {
                text: "a".into(),
                from: "b".into(),
            },
            64,
        )
        .unwrap();
    let raw = Bincode.decode_raw(frame.slice(4..)).unwrap();
    let err = raw.decode::<Ping>().unwrap_err();
    assert!(err.to_string().contains("unexpected bytes"), "{err}");

    // A string announcing u64::MAX bytes must fail without allocating them.
    let mut payload = b"\x04chat".to_vec();
    payload.push(253);
    payload.extend_from_slice(&u64::MAX.to_le_bytes());
    let raw = Bincode.decode_raw(payload.into()).unwrap();
    assert!(raw.decode::<Chat>().is_err());

    // An action name announcing 2^32 bytes.
    let mut payload = vec![252];
    payload.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(Bincode.decode_raw(payload.into()).is_err());
}

#[test]
fn bincode_errors_are_plain_words_and_small_bodies_claim_little() {
    // A 9-byte body whose string announces 60 MiB: fails at once, on the limit chosen for a
    // body this small, with a message a person can read.
    let mut payload = b"\x04chat".to_vec();
    payload.push(252);
    payload.extend_from_slice(&(60u32 * 1024 * 1024).to_le_bytes());
    payload.extend_from_slice(b"abcd");
    let raw = Bincode.decode_raw(payload.into()).unwrap();
    assert_eq!(raw.body().len(), 9);
    let started = std::time::Instant::now();
    let err = raw.decode::<Chat>().unwrap_err().to_string();
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(err.contains("exceeds the limit"), "{err}");
    assert!(err.contains("64 KiB"), "{err}");
    assert!(!err.contains("LimitExceeded"), "{err}");

    // A truncated body says how many bytes are missing.
    let frame = Bincode
        .encode(
            &Chat {
                text: "hello".into(),
                from: "bob".into(),
            },
            64,
        )
        .unwrap();
    let cut = frame.slice(4..frame.len() - 2);
    let err = Bincode
        .decode_raw(cut)
        .unwrap()
        .decode::<Chat>()
        .unwrap_err();
    let err = err.to_string();
    assert!(err.contains("the body ended 2 bytes early"), "{err}");
    assert!(!err.contains("UnexpectedEnd"), "{err}");

    // Invalid UTF-8 in a string.
    let payload = b"\x04chat\x02\xff\xfe\x00".to_vec();
    let err = Bincode
        .decode_raw(payload.into())
        .unwrap()
        .decode::<Chat>()
        .unwrap_err();
    assert!(err.to_string().contains("invalid UTF-8"), "{err}");

    // A body of legitimate size still decodes under the limit chosen for it.
    let big = Chat {
        text: "x".repeat(200_000),
        from: String::new(),
    };
    let frame = Bincode.encode(&big, usize::MAX).unwrap();
    let raw = Bincode.decode_raw(frame.slice(4..)).unwrap();
    assert_eq!(raw.decode::<Chat>().unwrap(), big);
    let numbers: Vec<u64> = (0..10_000).map(|i| i % 100).collect();
    let frame = Bincode
        .encode_frame("numbers", &numbers, usize::MAX)
        .unwrap();
    let raw = Bincode.decode_raw(frame.slice(4..)).unwrap();
    assert_eq!(raw.decode::<Vec<u64>>().unwrap(), numbers);
    // Empty strings: one byte each on the wire, 24 bytes each in memory.
    let names = vec![String::new(); 4000];
    let frame = Bincode.encode_frame("names", &names, usize::MAX).unwrap();
    let raw = Bincode.decode_raw(frame.slice(4..)).unwrap();
    assert_eq!(raw.decode::<Vec<String>>().unwrap(), names);
}

#[test]
fn encoding_respects_the_maximum_frame_length() {
    let msg = Chat {
        text: "x".repeat(100),
        from: String::new(),
    };
    for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
        let err = codec.encode(&msg, 50).unwrap_err();
        assert!(
            matches!(err, CodecError::TooLarge { max: 50, .. }),
            "{codec}: {err}"
        );
    }
}

#[test]
fn msgpack_refuses_bodies_that_are_not_maps() {
    #[derive(Serialize)]
    struct Pair(u8, u8);
    impl Message for Pair {
        const ACTION: &'static str = "pair";
    }
    let err = MsgPack.encode(&Pair(1, 2), 64).unwrap_err();
    assert!(err.to_string().contains("must serialize as a map"), "{err}");
    // Bincode carries tuple structs fine.
    let frame = Bincode.encode(&Pair(1, 2), 64).unwrap();
    let raw = Bincode.decode_raw(frame.slice(4..)).unwrap();
    assert_eq!(raw.decode::<(u8, u8)>().unwrap(), (1, 2));
}

#[test]
fn codec_kind_parses_from_flags() {
    assert_eq!("bincode".parse::<CodecKind>().unwrap(), CodecKind::Bincode);
    assert_eq!("MsgPack".parse::<CodecKind>().unwrap(), CodecKind::MsgPack);
    let err = "json".parse::<CodecKind>().unwrap_err();
    assert!(err
        .to_string()
        .contains("expected \"bincode\" or \"msgpack\""));
    assert_eq!(CodecKind::default(), CodecKind::Bincode);
}
