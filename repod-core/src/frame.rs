//! Length-prefixed frames: a 4-byte big-endian length `N`, then `N` bytes of payload.
//!
//! This is the framing of Python repod (and PodSixNet's successors). The decoder checks the
//! announced length against [`FrameConfig::max_frame_len`] *before* it reserves any memory, so a
//! peer announcing a 4 GiB frame costs nothing but a closed connection.
//!
//! ```text
//!  0        4                      4+N
//!  +--------+----------------------+
//!  | N (BE) |  payload (N bytes)   |
//!  +--------+----------------------+
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::FrameError;

/// Size of the length prefix in bytes.
pub const HEADER_LEN: usize = 4;

/// The default maximum frame length: 1 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1024 * 1024;

/// Framing settings shared by the encoder and the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrameConfig {
    /// The largest payload accepted or sent, in bytes (the 4-byte header excluded).
    /// Applies to decoding and encoding. The default value is 1 MiB (1,048,576 bytes);
    /// values above `u32::MAX` are clipped to it, since the header cannot say more.
    pub max_frame_len: usize,
}

impl Default for FrameConfig {
    fn default() -> Self {
        FrameConfig {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }
}

impl FrameConfig {
    /// A configuration with the given maximum payload length (clipped to `u32::MAX`).
    pub fn with_max_frame_len(max_frame_len: usize) -> Self {
        FrameConfig {
            max_frame_len: max_frame_len.min(u32::MAX as usize),
        }
    }

    /// Builds a [`FrameCodec`] with these settings.
    pub fn new_codec(&self) -> FrameCodec {
        FrameCodec::new(*self)
    }
}

/// A tokio-util [`Decoder`]/[`Encoder`] for repod frames.
///
/// Decoding yields each frame's payload without its header. Encoding takes a payload and
/// prepends its header. Most code never encodes through this type: the codecs of
/// [`crate::codec`] produce complete frames, header included, so a broadcast is encoded once.
///
/// The decoder keeps no state between calls: it reads the header in place and consumes
/// nothing until the whole frame has arrived, reserving room for the rest of the frame only
/// after the announced length passed the limit. The per-connection read buffer is therefore
/// bounded by the maximum frame length plus one read.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameCodec {
    config: FrameConfig,
}

impl FrameCodec {
    /// A codec with the given settings.
    pub fn new(config: FrameConfig) -> Self {
        FrameCodec {
            config: FrameConfig::with_max_frame_len(config.max_frame_len),
        }
    }

    /// The settings of this codec.
    pub fn config(&self) -> FrameConfig {
        self.config
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(header) = src.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        if len as u64 > self.config.max_frame_len as u64 {
            return Err(FrameError::TooLarge {
                len: len.into(),
                max: self.config.max_frame_len,
            });
        }
        let total = HEADER_LEN + len as usize;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        Ok(Some(src.split_to(len as usize).freeze()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated {
                buffered: src.len(),
            }),
        }
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        check_len(payload.len(), self.config.max_frame_len)?;
        dst.reserve(HEADER_LEN + payload.len());
        dst.put_u32(payload.len() as u32);
        dst.extend_from_slice(&payload);
        Ok(())
    }
}

fn check_len(len: usize, max: usize) -> Result<(), FrameError> {
    if len > max || len > u32::MAX as usize {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max,
        });
    }
    Ok(())
}

/// Splits a complete frame (header included) into its payload.
///
/// Returns `None` when `frame` is shorter than its header says.
pub fn payload_of(frame: &Bytes) -> Option<Bytes> {
    let mut header = frame.get(..HEADER_LEN)?;
    let len = header.get_u32() as usize;
    let end = HEADER_LEN.checked_add(len)?;
    if frame.len() < end {
        return None;
    }
    Some(frame.slice(HEADER_LEN..end))
}

/// A complete encoded frame, header included, ready to be queued to any number of
/// connections.
///
/// Cloning one is cheap (a reference count): every recipient of a broadcast shares the same
/// bytes. Get one from `encode` on a server context or handle, which encodes with the server's
/// codec, or from [`Frame::from_encoded`] for bytes encoded elsewhere. A frame carries no
/// codec: queue it only to connections that speak the codec it was encoded with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(Bytes);

impl Frame {
    /// Wraps bytes that are already exactly one frame: a 4-byte big-endian length `N`, then
    /// `N` bytes of payload. Returns `None` for anything else (too short, or a header that
    /// does not match the length), so a `Frame` can never desynchronize a connection.
    pub fn from_encoded(bytes: Bytes) -> Option<Frame> {
        let header = bytes.get(..HEADER_LEN)?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        (bytes.len() - HEADER_LEN == len).then_some(Frame(bytes))
    }

    /// Wraps the output of a codec's `encode`, which is one frame by construction.
    pub(crate) fn new_unchecked(bytes: Bytes) -> Frame {
        debug_assert!(Frame::from_encoded(bytes.clone()).is_some());
        Frame(bytes)
    }

    /// The frame's bytes, header included.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The frame's bytes, header included.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The payload, without the header (shares the frame's bytes).
    pub fn payload(&self) -> Bytes {
        self.0.slice(HEADER_LEN..)
    }

    /// The length in bytes, header included.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: a frame holds at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl From<Frame> for Bytes {
    fn from(frame: Frame) -> Bytes {
        frame.0
    }
}

#[cfg(test)]
mod frame_value_tests {
    use super::*;

    #[test]
    fn from_encoded_accepts_exactly_one_frame() {
        let good = Bytes::from_static(&[0, 0, 0, 2, 7, 8]);
        let frame = Frame::from_encoded(good.clone()).expect("one frame");
        assert_eq!(frame.payload(), Bytes::from_static(&[7, 8]));
        assert_eq!(frame.len(), 6);
        assert_eq!(Bytes::from(frame), good);
        assert!(Frame::from_encoded(Bytes::from_static(&[0, 0, 0, 0])).is_some());
        for bad in [
            &[][..],
            &[0, 0, 0],
            &[0, 0, 0, 3, 7, 8],
            &[0, 0, 0, 1, 7, 8],
            &[255, 255, 255, 255],
        ] {
            assert!(
                Frame::from_encoded(Bytes::copy_from_slice(bad)).is_none(),
                "{bad:?}"
            );
        }
    }
}
