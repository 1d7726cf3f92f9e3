//! Codecs: how a message's action name and body become a frame's payload, and back.
//!
//! Two codecs ship with repod:
//!
//! * [`Bincode`] (the default): the action name as a bincode string (a varint length, then
//!   UTF-8), followed by the body encoded with bincode 2 (standard configuration). Compact and
//!   fast, for Rust talking to Rust.
//! * [`MsgPack`]: one MessagePack map whose `"action"` key holds the action name and whose other
//!   keys are the message's fields, exactly what Python repod sends and accepts.
//!
//! Both read a frame's action name without decoding its body ([`Codec::decode_raw`] yields a
//! [`RawMessage`]), so a dispatcher can route on the name first and decode only into the
//! handler's payload type.
//! Requests and replies wrap a message in a small envelope, a request id and, for a reply, its
//! outcome ([`CodecKind::encode_request`], [`CodecKind::encode_reply`]); plain messages are
//! left as they are.
//!
//! [`CodecKind`] picks one of them at run time (from a command-line flag, say); servers and
//! clients are configured with it.

mod bincode;
mod envelope;
mod msgpack;
mod raw;

use std::fmt;
use std::str::FromStr;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use self::bincode::Bincode;
pub(crate) use self::envelope::Envelope;
pub use self::envelope::{REPLY_ACTION, REQUEST_ID_KEY};
use self::msgpack::{
    to_value as msgpack_value, value_at as msgpack_value_at, value_range as msgpack_value_range,
};
pub use self::msgpack::{MsgPack, MAX_DEPTH};
pub use self::raw::RawMessage;

use crate::error::CodecError;
use crate::frame::HEADER_LEN;
use crate::message::Message;

/// Turns messages into payloads and payloads into [`RawMessage`]s.
///
/// Implemented by [`Bincode`], [`MsgPack`] and the run-time choice [`CodecKind`].
pub trait Codec: fmt::Debug + Send + Sync + 'static {
    /// The codec's short name, as used in logs and on command lines.
    fn name(&self) -> &'static str;

    /// Which built-in codec this is.
    fn kind(&self) -> CodecKind;

    /// Appends the payload for a message with this action and body to `dst`.
    fn encode_payload<T: Serialize + ?Sized>(
        &self,
        action: &str,
        body: &T,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError>;

    /// Reads the action name of a payload, without decoding the body.
    ///
    /// Fails on a payload that is not a valid message for this codec; never panics.
    fn decode_raw(&self, payload: Bytes) -> Result<RawMessage, CodecError>;

    /// Encodes a complete frame (length header included) for a message.
    ///
    /// The result can be written to any number of sockets as it is: this is how a broadcast
    /// is encoded once.
    fn encode<M: Message + ?Sized>(
        &self,
        msg: &M,
        max_frame_len: usize,
    ) -> Result<Bytes, CodecError> {
        self.encode_frame(M::ACTION, msg, max_frame_len)
    }

    /// Encodes a complete frame for an action name and any serializable body.
    ///
    /// Use this for messages without a [`Message`] type, e.g. relaying a dynamic value.
    fn encode_frame<T: Serialize + ?Sized>(
        &self,
        action: &str,
        body: &T,
        max_frame_len: usize,
    ) -> Result<Bytes, CodecError> {
        let mut buf = BytesMut::with_capacity(64);
        buf.put_u32(0);
        self.encode_payload(action, body, &mut buf)?;
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
}

/// The run-time choice of a built-in codec.
///
/// Parses from `"bincode"` and `"msgpack"`, so it fits a command-line flag; `"messagepack"` and
/// `"mpk"` are accepted for MessagePack too, and case is ignored (`"MsgPack"`). The default is
/// [`CodecKind::Bincode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CodecKind {
    /// The [`Bincode`] codec.
    #[default]
    Bincode,
    /// The [`MsgPack`] codec, compatible with Python repod.
    MsgPack,
}

impl CodecKind {
    /// Decodes a message body with this codec. Used by [`RawMessage::decode`].
    pub(crate) fn decode_body<T: DeserializeOwned>(
        &self,
        raw: &RawMessage,
    ) -> Result<T, CodecError> {
        match self {
            CodecKind::Bincode => bincode::decode_body(raw),
            CodecKind::MsgPack => msgpack::decode_body(raw),
        }
    }
}

impl Codec for CodecKind {
    fn name(&self) -> &'static str {
        match self {
            CodecKind::Bincode => Bincode.name(),
            CodecKind::MsgPack => MsgPack.name(),
        }
    }

    fn kind(&self) -> CodecKind {
        *self
    }

    fn encode_payload<T: Serialize + ?Sized>(
        &self,
        action: &str,
        body: &T,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        match self {
            CodecKind::Bincode => Bincode.encode_payload(action, body, dst),
            CodecKind::MsgPack => MsgPack.encode_payload(action, body, dst),
        }
    }

    fn decode_raw(&self, payload: Bytes) -> Result<RawMessage, CodecError> {
        match self {
            CodecKind::Bincode => Bincode.decode_raw(payload),
            CodecKind::MsgPack => MsgPack.decode_raw(payload),
        }
    }
}

impl fmt::Display for CodecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing a [`CodecKind`] from a string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown codec {0:?}: expected \"bincode\" or \"msgpack\"")]
pub struct UnknownCodec(pub String);

impl FromStr for CodecKind {
    type Err = UnknownCodec;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "bincode" => Ok(CodecKind::Bincode),
            "msgpack" | "messagepack" | "mpk" => Ok(CodecKind::MsgPack),
            _ => Err(UnknownCodec(s.to_owned())),
        }
    }
}
