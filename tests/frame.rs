//! The frame decoder: reassembly, splitting, limits.

use bytes::{BufMut, Bytes, BytesMut};
use repod::{FrameCodec, FrameConfig, FrameError};
use tokio_util::codec::{Decoder, Encoder};

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn stream(payloads: &[&[u8]]) -> Vec<u8> {
    payloads.iter().flat_map(|p| frame(p)).collect()
}

/// Feeds `bytes` in chunks cut at `cuts`, collecting every frame.
fn feed(bytes: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&bytes.len())) {
        buf.extend_from_slice(&bytes[start..end]);
        start = end;
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            frames.push(f);
        }
    }
    assert!(codec.decode_eof(&mut buf).unwrap().is_none());
    frames
}

#[test]
fn frames_split_at_every_byte_boundary_reassemble() {
    let payloads: [&[u8]; 3] = [b"hello", b"", b"\x81\xa6action\xa4ping"];
    let bytes = stream(&payloads);
    for cut in 0..=bytes.len() {
        assert_eq!(feed(&bytes, &[cut]), payloads, "cut at {cut}");
    }
    // And one byte at a time.
    let every: Vec<usize> = (1..bytes.len()).collect();
    assert_eq!(feed(&bytes, &every), payloads);
}

#[test]
fn several_frames_in_one_read_split_correctly() {
    let payloads: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; i as usize * 3]).collect();
    let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let bytes = stream(&refs);
    assert_eq!(feed(&bytes, &[]), refs);
}

#[test]
fn oversized_announcement_is_rejected_before_allocating() {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 1, 2][..]);
    let capacity_before = buf.capacity();
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(
        matches!(
            err,
            FrameError::TooLarge {
                len: 0xFFFF_FFFF,
                max: 1_048_576
            }
        ),
        "{err}"
    );
    assert_eq!(buf.capacity(), capacity_before, "nothing was reserved");
    assert_eq!(
        err.to_string(),
        "frame of 4294967295 bytes exceeds the maximum frame length of 1048576 bytes"
    );
}

#[test]
fn maximum_is_configurable_and_inclusive() {
    let mut codec = FrameConfig::with_max_frame_len(8).new_codec();
    let mut buf = BytesMut::from(&frame(b"12345678")[..]);
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"12345678"[..]);
    let mut buf = BytesMut::from(&frame(b"123456789")[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(FrameError::TooLarge { len: 9, max: 8 })
    ));
    // The encoder enforces the same limit.
    let mut out = BytesMut::new();
    assert!(codec
        .encode(Bytes::from_static(b"123456789"), &mut out)
        .is_err());
    codec.encode(Bytes::from_static(b"1234"), &mut out).unwrap();
    assert_eq!(&out[..], &frame(b"1234")[..]);
}

#[test]
fn truncated_frame_at_eof_is_an_error() {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    buf.put_u32(10);
    buf.extend_from_slice(b"abc");
    assert!(codec.decode(&mut buf).unwrap().is_none());
    let err = codec.decode_eof(&mut buf).unwrap_err();
    assert!(
        matches!(err, FrameError::Truncated { buffered: 7 }),
        "{err}"
    );
}
