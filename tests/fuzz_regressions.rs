//! Fuzz inputs replayed on the stable test suite.
//!
//! The seed corpora in `fuzz/seeds/` go through the same checks as the cargo-fuzz targets
//! (`fuzz/fuzz_targets/`), so the seeds stay meaningful and the invariants run in CI without
//! cargo-fuzz. A crash found by a fuzzer gets minimised (`cargo fuzz tmin`) and added here as a
//! named test with its bytes inline. None has been found so far (see docs/robustness.md).

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use repod::frame::HEADER_LEN;
use repod::{Bincode, Codec, CodecError, FrameCodec, FrameConfig, FrameError, MsgPack};
use tokio_util::codec::Decoder;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("seed entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("read seed"))
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// The `frame_decoder` target's checks, for one input and one chunk size.
fn check_frames(data: &[u8], chunk: usize) {
    let [max_byte, _, stream @ ..] = data else {
        return;
    };
    let max = usize::from(max_byte % 64);
    let mut codec = FrameCodec::new(FrameConfig::with_max_frame_len(max));
    let mut buf = BytesMut::new();
    let mut consumed = 0;
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max);
                    assert_eq!(&stream[consumed + HEADER_LEN..][..frame.len()], &frame[..]);
                    consumed += HEADER_LEN + frame.len();
                }
                Ok(None) => break,
                Err(FrameError::TooLarge { len, .. }) => {
                    let header = &stream[consumed..consumed + HEADER_LEN];
                    let announced = u32::from_be_bytes(header.try_into().expect("4 bytes"));
                    assert_eq!(len, u64::from(announced));
                    assert!(len > max as u64);
                    return;
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(buf.len() < HEADER_LEN + max);
    }
    match codec.decode_eof(&mut buf) {
        Ok(None) => assert_eq!(consumed, stream.len()),
        Err(FrameError::Truncated { buffered }) => assert_eq!(consumed + buffered, stream.len()),
        other => panic!("decode_eof: {other:?}"),
    }
}

#[test]
fn frame_decoder_seeds() {
    for (_, data) in seeds("frame_decoder") {
        for chunk in [1, 3, 7, 4096] {
            check_frames(&data, chunk);
        }
    }
}

#[test]
fn msgpack_decode_seeds() {
    for (name, data) in seeds("msgpack_decode") {
        let Ok(raw) = MsgPack.decode_raw(Bytes::from(data)) else {
            assert!(name.starts_with("action_not"), "{name} should decode");
            continue;
        };
        let value = raw.to_value().expect("validated payloads have a value");
        let rmpv::Value::Map(entries) = value else {
            panic!("{name}: not a map");
        };
        let action = entries
            .iter()
            .find(|(k, _)| k.as_str() == Some("action"))
            .map(|(_, v)| v.as_str().expect("string action"));
        assert_eq!(action.unwrap_or(""), raw.action(), "{name}");
    }
}

#[test]
fn bincode_decode_seeds() {
    for (name, data) in seeds("bincode_decode") {
        let Ok(raw) = Bincode.decode_raw(Bytes::from(data.clone())) else {
            assert_eq!(name, "long_len", "{name} should decode");
            continue;
        };
        let end = data.len() - raw.body().len();
        if raw.reply_id().is_some() {
            assert_eq!(raw.action(), "reply");
        } else {
            assert_eq!(
                &data[end - raw.action().len()..end],
                raw.action().as_bytes()
            );
        }
        assert!(matches!(
            raw.to_value(),
            Err(CodecError::NotSelfDescribing { .. })
        ));
    }
}

/// Found by `msgpack_decode`'s differential check (minimised): a map holding the reserved
/// marker 0xc1 as a key. rmpv reads 0xc1 as nil; the MessagePack spec and Python's msgpack
/// reject it, and so does repod. The fuzz target's reference now leaves 0xc1 out.
#[test]
fn msgpack_reserved_marker_is_rejected_where_rmpv_reads_nil() {
    let payload: &[u8] = &[
        0xde, 0x00, 0x11, 0x77, 0x65, 0x69, 0x67, 0x68, 0x74, 0x63, 0x69, 0x6f, 0x03, 0x00, 0x6c,
        0x69, 0xff, 0xc1, 0x5d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x07,
        0x00, 0x07, 0x00, 0x00, 0x07, 0x00, 0x07,
    ];
    let mut rest = payload;
    let value = rmpv::decode::read_value(&mut rest).expect("rmpv reads it");
    assert!(rest.is_empty() && value.is_map());
    let error = MsgPack
        .decode_raw(Bytes::from_static(payload))
        .expect_err("0xc1 is never valid MessagePack");
    assert!(
        error.to_string().contains("reserved marker 0xc1"),
        "{error}"
    );
}

/// The `request_envelope` target's raw-bytes checks on its seeds (structured seeds, mode bit
/// 1, are round trips of arbitrary values: their bytes are checked as raw bytes here too).
#[test]
fn request_envelope_seeds() {
    use repod::{CodecKind, RequestError};
    let mut requests = 0;
    let mut replies = 0;
    for (name, data) in seeds("request_envelope") {
        let Some((&mode, rest)) = data.split_first() else {
            continue;
        };
        let codec = if mode & 1 == 0 {
            CodecKind::Bincode
        } else {
            CodecKind::MsgPack
        };
        let Ok(raw) = codec.decode_raw(Bytes::copy_from_slice(rest)) else {
            assert!(mode & 2 != 0, "{name} should decode");
            continue;
        };
        assert!(raw.request_id().is_none() || raw.reply_id().is_none());
        if codec == CodecKind::MsgPack && !rest.contains(&0xc1) {
            let mut slice = rest;
            if let Ok(rmpv::Value::Map(entries)) = rmpv::decode::read_value(&mut slice) {
                let reference = entries
                    .iter()
                    .find(|(k, _)| k.as_str() == Some("rid"))
                    .and_then(|(_, v)| v.as_u64());
                assert_eq!(raw.request_id().or(raw.reply_id()), reference, "{name}");
            }
        }
        if let Some(rid) = raw.reply_id() {
            replies += 1;
            assert_eq!(raw.action(), "reply");
            match raw.decode_reply::<Vec<String>>() {
                Ok(rooms) => {
                    let frame = codec.encode_reply(rid, Ok(&rooms), usize::MAX).unwrap();
                    let again = codec.decode_raw(frame.slice(HEADER_LEN..)).unwrap();
                    assert_eq!(again.decode_reply::<Vec<String>>(), Ok(rooms));
                }
                Err(RequestError::Remote(text)) => assert!(!text.is_empty(), "{name}"),
                Err(RequestError::Decode(_)) => {}
                Err(other) => panic!("{name}: {other:?}"),
            }
        }
        if raw.request_id().is_some() {
            requests += 1;
        }
    }
    assert!(
        requests >= 2 && replies >= 4,
        "{requests} requests, {replies} replies"
    );
}

/// Found by `bincode_decode` (minimised): a request whose own action is the reserved name
/// `"\0"`. Decoding it as a plain message named `"\0"` could not be re-encoded, since that
/// name starts every request and reply; such a request is now malformed, and encoding a
/// message under the name fails.
#[test]
fn bincode_request_for_the_reserved_name_is_malformed() {
    let payload: &[u8] = &[0x01, 0x00, 0x00, 0x0b, 0x01, 0x00];
    let error = Bincode
        .decode_raw(Bytes::from_static(payload))
        .expect_err("a request for the reserved name");
    assert!(matches!(error, CodecError::Malformed { .. }), "{error}");
    assert!(Bincode.encode_frame("\0", &(), usize::MAX).is_err());
}
