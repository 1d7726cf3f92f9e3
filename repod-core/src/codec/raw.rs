//! [`RawMessage`]: a message whose action name was read by a codec and whose body was not
//! decoded yet.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::envelope::Envelope;
use super::{Codec, CodecKind};
use crate::error::{CodecError, RequestError};
use crate::frame::HEADER_LEN;
use crate::message::Message;

/// A received message whose body has not been decoded yet.
///
/// The dispatcher routes on [`action`](RawMessage::action) and decodes the body into the
/// handler's payload type. Fallback handlers receive the `RawMessage` itself and can decode it
/// into any type later, or, with the MessagePack codec, inspect it as a dynamic map the way
/// Python handlers read a `dict`:
///
/// ```
/// use repod_core::{Codec, CodecKind};
///
/// // {"action": "emote", "type": "wave"}, as a Python client sends it
/// let payload = bytes::Bytes::from_static(b"\x82\xa6action\xa5emote\xa4type\xa4wave");
/// let raw = CodecKind::MsgPack.decode_raw(payload).unwrap();
/// assert_eq!(raw.action(), "emote");
/// let value = raw.to_value().unwrap();
/// assert_eq!(raw.get("type").and_then(|v| v.as_str().map(str::to_owned)), Some("wave".into()));
/// # let _ = value;
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RawMessage {
    codec: CodecKind,
    payload: Bytes,
    action: Range<usize>,
    body_start: usize,
    envelope: Envelope,
}

impl RawMessage {
    /// Assembles a raw message; `action` must be a UTF-8 range of `payload`.
    pub(crate) fn from_parts(
        codec: CodecKind,
        payload: Bytes,
        action: Range<usize>,
        body_start: usize,
    ) -> Self {
        debug_assert!(std::str::from_utf8(&payload[action.clone()]).is_ok());
        RawMessage {
            codec,
            payload,
            action,
            body_start,
            envelope: Envelope::Plain,
        }
    }

    /// The same message, marked as a request, a reply or a local event.
    pub(crate) fn with_envelope(mut self, envelope: Envelope) -> Self {
        self.envelope = envelope;
        self
    }

    pub(crate) fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Whether the requests waiting must fail when this event is dispatched: it is the last
    /// event, or the requests were lost with their connection or session.
    pub(crate) fn fails_requests(&self) -> bool {
        matches!(self.envelope, Envelope::Final | Envelope::Lost)
    }

    /// Builds a raw message by encoding a typed one; used for locally raised events.
    pub fn from_message<M: Message + ?Sized>(
        codec: CodecKind,
        msg: &M,
    ) -> Result<Self, CodecError> {
        let frame = codec.encode(msg, usize::MAX)?;
        codec.decode_raw(frame.slice(HEADER_LEN..))
    }

    /// The action name; `""` for a MessagePack map without an `"action"` key, `"reply"` for a
    /// reply.
    pub fn action(&self) -> &str {
        if self.envelope.reply_id().is_some() {
            return "reply";
        }
        // The range was checked to be UTF-8 when the message was decoded.
        std::str::from_utf8(&self.payload[self.action.clone()]).unwrap_or("")
    }

    /// The codec the message arrived with.
    pub fn codec(&self) -> CodecKind {
        self.codec
    }

    /// The whole payload, as it arrived (without the 4-byte frame header).
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The bytes of the body: for bincode, what follows the action name; for MessagePack, the
    /// whole map (its `"action"` entry included).
    pub fn body(&self) -> &[u8] {
        &self.payload[self.body_start..]
    }

    /// The request id, if the peer sent this message as a request and waits for a reply.
    ///
    /// A handler that answers requests replies by itself; this is for hand-written dispatchers
    /// and fallback handlers, which may answer with
    /// [`Context::reply_raw`](crate::Context::reply_raw).
    pub fn request_id(&self) -> Option<u64> {
        match self.envelope {
            Envelope::Request(rid) => Some(rid),
            _ => None,
        }
    }

    /// The id of the request this message answers, if it is a reply.
    pub fn reply_id(&self) -> Option<u64> {
        self.envelope.reply_id()
    }

    /// The outcome of a reply: its value decoded into `T`, or the server's error.
    ///
    /// Fails with [`RequestError::Remote`] for an error reply, with [`RequestError::Decode`]
    /// when the value does not fit `T` or the message is not a reply.
    pub fn decode_reply<T: DeserializeOwned>(&self) -> Result<T, RequestError> {
        super::envelope::decode_reply(self)
    }

    /// Whether this message carries `M`'s action.
    pub fn is<M: Message>(&self) -> bool {
        self.action() == M::ACTION
    }

    /// Decodes the body into `T`.
    ///
    /// Fails with [`CodecError::Body`] when the body does not fit `T` (a missing field, a
    /// wrong type); the error names the action and the problem.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        self.codec.decode_body(self)
    }

    /// Decodes a MessagePack message into a dynamic value: the whole map, `"action"` included.
    ///
    /// Bincode is not self-describing, so for bincode messages this returns
    /// [`CodecError::NotSelfDescribing`]; decode into a concrete type with
    /// [`decode`](RawMessage::decode) instead.
    pub fn to_value(&self) -> Result<rmpv::Value, CodecError> {
        match self.codec {
            CodecKind::MsgPack => super::msgpack_value(&self.payload),
            CodecKind::Bincode => Err(CodecError::NotSelfDescribing { codec: "bincode" }),
        }
    }

    /// One field of a MessagePack message, as a dynamic value (`None` if absent or if the
    /// message is not MessagePack). Like Python's `data.get(key)`.
    pub fn get(&self, key: &str) -> Option<rmpv::Value> {
        match self.codec {
            // Only the entry's value is decoded: the map is scanned, not built.
            CodecKind::MsgPack => {
                let range = super::msgpack_value_range(&self.payload, key).ok()??;
                super::msgpack_value_at(&self.payload, range).ok()
            }
            CodecKind::Bincode => None,
        }
    }
}

impl fmt::Debug for RawMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawMessage")
            .field("codec", &self.codec)
            .field("action", &self.action())
            .field("envelope", &self.envelope)
            .field("body_len", &self.body().len())
            .finish()
    }
}
