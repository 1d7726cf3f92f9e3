//! Feeds arbitrary bytes, in arbitrary chunks, to `FrameCodec` with a small maximum frame length.
//!
//! Input: byte 0 picks the maximum (0..=63), byte 1 seeds the chunk sizes (1..=16 bytes), the
//! rest is the stream. Checks, against a one-pass reference parser: the same frames come out,
//! each at most the maximum; an announced length over the maximum is the error, at the same
//! point; the buffer never holds more than one unfinished frame; `decode_eof` reports exactly
//! the unfinished bytes; and re-encoding the frames gives back the bytes they came from.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use repod::frame::HEADER_LEN;
use repod::{FrameCodec, FrameConfig, FrameError};
use tokio_util::codec::{Decoder, Encoder};

/// What the reference parser expects from a whole stream.
struct Expected {
    frames: Vec<Bytes>,
    /// The first announced length over the maximum, if any.
    too_large: Option<u64>,
    /// Bytes of an unfinished frame at the end (when no error).
    leftover: usize,
}

fn reference(stream: &[u8], max: usize) -> Expected {
    let mut frames = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &stream[pos..];
        if rest.len() < HEADER_LEN {
            return Expected {
                frames,
                too_large: None,
                leftover: rest.len(),
            };
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > max {
            return Expected {
                frames,
                too_large: Some(len as u64),
                leftover: 0,
            };
        }
        if rest.len() < HEADER_LEN + len {
            return Expected {
                frames,
                too_large: None,
                leftover: rest.len(),
            };
        }
        frames.push(Bytes::copy_from_slice(&rest[HEADER_LEN..HEADER_LEN + len]));
        pos += HEADER_LEN + len;
    }
}

fuzz_target!(|data: &[u8]| {
    let [max_byte, seed, stream @ ..] = data else {
        return;
    };
    let max = usize::from(max_byte % 64);
    let expected = reference(stream, max);

    let mut codec = FrameCodec::new(FrameConfig::with_max_frame_len(max));
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut error = None;
    let mut rng = u32::from(*seed);
    let mut pos = 0;
    'feed: while pos < stream.len() {
        rng = rng.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let end = (pos + 1 + (rng >> 16) as usize % 16).min(stream.len());
        buf.extend_from_slice(&stream[pos..end]);
        pos = end;
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max, "frame of {} > max {max}", frame.len());
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            }
        }
        // At most one unfinished frame is buffered, and memory does not grow with the stream.
        assert!(buf.len() < HEADER_LEN + max, "buffered {}", buf.len());
        assert!(buf.capacity() <= 1024, "capacity {}", buf.capacity());
    }

    assert_eq!(frames, expected.frames);
    match (error, expected.too_large) {
        (Some(FrameError::TooLarge { len, max: m }), Some(want)) => {
            assert_eq!(len, want);
            assert_eq!(m, max);
        }
        (None, None) => match codec.decode_eof(&mut buf) {
            Ok(None) => assert_eq!(expected.leftover, 0),
            Err(FrameError::Truncated { buffered }) => {
                assert_eq!(buffered, expected.leftover);
                assert_ne!(buffered, 0);
            }
            other => panic!("decode_eof: {other:?}"),
        },
        (got, want) => panic!("error {got:?}, expected too-large {want:?}"),
    }

    // Encoding the frames gives back the bytes they were decoded from.
    let mut encoded = BytesMut::new();
    for frame in &frames {
        codec
            .encode(frame.clone(), &mut encoded)
            .expect("a decoded frame re-encodes");
    }
    assert_eq!(&encoded[..], &stream[..encoded.len()]);
});
