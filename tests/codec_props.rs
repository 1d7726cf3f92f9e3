//! Property tests: no input from a peer makes the frame decoder or a codec panic.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use repod::{Bincode, Codec, CodecKind, FrameCodec, FrameConfig, Message, MsgPack};
use serde::{Deserialize, Serialize};
use tokio_util::codec::Decoder;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Move {
    x: f32,
    y: f32,
    seq: u64,
    tags: Vec<String>,
}
impl Message for Move {
    const ACTION: &'static str = "move";
}

/// Decodes a raw message every way a handler could, discarding the results.
fn exercise(codec: impl Codec, payload: Bytes) {
    if let Ok(raw) = codec.decode_raw(payload) {
        let _ = raw.action();
        let _ = raw.decode::<Move>();
        let _ = raw.decode::<Vec<String>>();
        let _ = raw.decode::<std::collections::HashMap<String, u8>>();
        let _ = raw.to_value();
        let _ = raw.get("x");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn frame_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                                  max in 0usize..4096) {
        let mut codec = FrameConfig::with_max_frame_len(max).new_codec();
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            prop_assert!(frame.len() <= max);
        }
        // Nothing beyond what arrived plus the configured maximum was reserved.
        prop_assert!(buf.capacity() <= bytes.len().max(64) + max + 4);
    }

    #[test]
    fn msgpack_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(MsgPack, Bytes::from(bytes));
    }

    #[test]
    fn msgpack_never_panics_on_map_like_input(tail in proptest::collection::vec(any::<u8>(), 0..256),
                                              head in 0x80u8..=0x8f) {
        // Start with a map header and an "action" key, so the scanner gets past the first byte.
        let mut bytes = vec![head, 0xa6];
        bytes.extend_from_slice(b"action");
        bytes.extend(tail);
        exercise(MsgPack, Bytes::from(bytes));
    }

    #[test]
    fn bincode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(Bincode, Bytes::from(bytes));
    }

    #[test]
    fn valid_messages_round_trip(x in any::<f32>().prop_filter("not NaN", |v| !v.is_nan()),
                                 y in -1e6f32..1e6, seq in any::<u64>(),
                                 tags in proptest::collection::vec(".{0,12}", 0..4)) {
        for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
            let msg = Move { x, y, seq, tags: tags.clone() };
            let frame = codec.encode(&msg, 1 << 20).unwrap();
            let mut buf = BytesMut::from(&frame[..]);
            let payload = FrameCodec::default().decode(&mut buf).unwrap().unwrap();
            let raw = codec.decode_raw(payload).unwrap();
            prop_assert_eq!(raw.action(), "move");
            prop_assert_eq!(raw.decode::<Move>().unwrap(), msg);
        }
    }
}

#[test]
fn announced_length_of_u32_max_is_rejected_without_allocation() {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::with_capacity(8);
    buf.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    assert!(codec.decode(&mut buf).is_err());
    assert!(buf.capacity() < 64);
}
