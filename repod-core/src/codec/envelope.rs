//! Requests and replies on the wire: the envelope around a message that asks for an answer,
//! and the answer.
//!
//! A plain message is left exactly as it is. With MessagePack a request is the message's map
//! plus a `"rid"` key holding an unsigned integer, and a reply is the map
//! `{"action": "reply", "rid": N, "ok": value}` or `{"action": "reply", "rid": N, "error":
//! "text"}`. With bincode, both start with the reserved action name `"\0"` (a string no
//! message type can be named), then a kind byte:
//!
//! ```text
//! request:      01 00 | 00 | rid (varint) | action (string) | body
//! ok reply:     01 00 | 01 | rid (varint) | value (bincode)
//! error reply:  01 00 | 02 | rid (varint) | text (string)
//! ```

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Codec, CodecKind, RawMessage};
use crate::error::{CodecError, RequestError};
use crate::frame::HEADER_LEN;
use crate::message::Message;

/// The key of a request's id in a MessagePack map.
pub const REQUEST_ID_KEY: &str = "rid";

/// The action name of a MessagePack reply.
pub const REPLY_ACTION: &str = "reply";

/// The action name that starts a bincode request or reply: one zero byte.
pub(crate) const BINCODE_MARKER: &str = "\0";

/// The kind byte of a bincode envelope.
pub(crate) const KIND_REQUEST: u8 = 0;
pub(crate) const KIND_OK: u8 = 1;
pub(crate) const KIND_ERROR: u8 = 2;

/// What a received payload is, besides its action and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Envelope {
    /// An ordinary message.
    Plain,
    /// A request with this id.
    Request(u64),
    /// A reply to the request with this id.
    Reply {
        /// The request's id.
        rid: u64,
        /// The payload's bytes of the value (`Ok`) or the error text (`Err`).
        outcome: Result<Range<usize>, Range<usize>>,
    },
    /// The client's last event (`disconnected`), raised locally: the requests still waiting
    /// fail when it is dispatched.
    Final,
    /// A local event raised when the requests in flight can no longer be answered (their
    /// connection dropped without a session to resume, or the session was lost), though the
    /// client goes on: they fail when it is dispatched.
    Lost,
}

impl Envelope {
    pub(crate) fn reply_id(&self) -> Option<u64> {
        match self {
            Envelope::Reply { rid, .. } => Some(*rid),
            _ => None,
        }
    }
}

impl CodecKind {
    /// Encodes a complete frame for `msg` sent as the request `rid`.
    ///
    /// Clients number their requests themselves; this is for hand-written peers and tests.
    pub fn encode_request<M: Message + ?Sized>(
        &self,
        rid: u64,
        msg: &M,
        max_frame_len: usize,
    ) -> Result<Bytes, CodecError> {
        frame(M::ACTION, max_frame_len, |dst| match self {
            CodecKind::Bincode => {
                put_marker(dst, KIND_REQUEST, rid);
                super::Bincode.encode_payload(M::ACTION, msg, dst)
            }
            CodecKind::MsgPack => super::msgpack::encode_map(M::ACTION, Some(rid), msg, dst),
        })
    }

    /// Encodes a complete frame answering the request `rid` with a value (`Ok`) or an error
    /// text (`Err`).
    pub fn encode_reply<T: Serialize + ?Sized>(
        &self,
        rid: u64,
        outcome: Result<&T, &str>,
        max_frame_len: usize,
    ) -> Result<Bytes, CodecError> {
        let result = frame(REPLY_ACTION, max_frame_len, |dst| match self {
            CodecKind::Bincode => match outcome {
                Ok(value) => {
                    put_marker(dst, KIND_OK, rid);
                    super::bincode::encode_value(REPLY_ACTION, value, dst)
                }
                Err(text) => {
                    put_marker(dst, KIND_ERROR, rid);
                    super::bincode::encode_value(REPLY_ACTION, text, dst)
                }
            },
            CodecKind::MsgPack => super::msgpack::encode_reply(rid, outcome, dst),
        });
        match result {
            // A value too large for a frame still gets an answer, so the caller is not left
            // waiting for one.
            Err(CodecError::TooLarge { len, max, .. }) if outcome.is_ok() => {
                let text = format!(
                    "a reply of {len} bytes exceeds the maximum frame length of {max} bytes"
                );
                self.encode_reply::<()>(rid, Err(&text), max_frame_len)
            }
            other => other,
        }
    }
}

/// Writes a frame header, the payload from `fill`, then the length; checks the limit.
fn frame(
    action: &str,
    max_frame_len: usize,
    fill: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
) -> Result<Bytes, CodecError> {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_u32(0);
    fill(&mut buf)?;
    let len = buf.len() - HEADER_LEN;
    if len > max_frame_len || len > u32::MAX as usize {
        return Err(CodecError::TooLarge {
            action: action.to_owned(),
            len,
            max: max_frame_len,
        });
    }
    buf[..HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf.freeze())
}

/// The bincode envelope's start: the marker string, the kind, the id.
fn put_marker(dst: &mut BytesMut, kind: u8, rid: u64) {
    dst.put_u8(1);
    dst.put_u8(0);
    dst.put_u8(kind);
    put_varint(dst, rid);
}

/// bincode 2's standard variable-length encoding of a `u64`.
fn put_varint(dst: &mut BytesMut, n: u64) {
    match n {
        0..=250 => dst.put_u8(n as u8),
        251..=0xffff => {
            dst.put_u8(251);
            dst.put_u16_le(n as u16);
        }
        0x1_0000..=0xffff_ffff => {
            dst.put_u8(252);
            dst.put_u32_le(n as u32);
        }
        _ => {
            dst.put_u8(253);
            dst.put_u64_le(n);
        }
    }
}

pub(crate) fn decode_reply<T: DeserializeOwned>(raw: &RawMessage) -> Result<T, RequestError> {
    let Envelope::Reply { outcome, .. } = raw.envelope() else {
        return Err(RequestError::Decode(CodecError::Body {
            action: raw.action().to_owned(),
            reason: "this message is not a reply".to_owned(),
        }));
    };
    let payload = raw.payload();
    match (outcome, raw.codec()) {
        (Ok(range), CodecKind::Bincode) => {
            super::bincode::decode_slice(&payload[range.clone()], REPLY_ACTION)
                .map_err(RequestError::Decode)
        }
        (Ok(range), CodecKind::MsgPack) => {
            super::msgpack::decode_slice(&payload[range.clone()], REPLY_ACTION)
                .map_err(RequestError::Decode)
        }
        (Err(range), CodecKind::Bincode) => {
            let text: String = super::bincode::decode_slice(&payload[range.clone()], REPLY_ACTION)
                .map_err(RequestError::Decode)?;
            Err(RequestError::Remote(text))
        }
        (Err(range), CodecKind::MsgPack) => {
            let bytes = &payload[range.clone()];
            let text = match super::msgpack::decode_slice::<String>(bytes, REPLY_ACTION) {
                Ok(text) => text,
                // Whatever a peer put there, show it rather than lose the error.
                Err(_) => match super::msgpack::to_value(bytes) {
                    Ok(value) => value.to_string(),
                    Err(e) => return Err(RequestError::Decode(e)),
                },
            };
            Err(RequestError::Remote(text))
        }
    }
}
