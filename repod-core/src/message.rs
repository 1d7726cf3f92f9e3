//! Messages: typed ([`Message`]) and raw ([`RawMessage`]).

use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::CodecKind;
use crate::error::CodecError;

/// A Rust type bound to an action name.
///
/// Derive it with `#[derive(repod::Message)]` and `#[action("chat")]`; the derive also checks
/// the name. Sending a `Message` writes its action name for you, so it cannot be misspelt:
///
/// ```
/// use repod_core::{Codec, CodecKind, Message};
/// use serde::Serialize;
///
/// #[derive(Serialize)]
/// struct Chat { text: String }
/// impl Message for Chat { const ACTION: &'static str = "chat"; }
///
/// let frame = CodecKind::MsgPack.encode(&Chat { text: "Hello".into() }, 1024).unwrap();
/// assert_eq!(&frame[..4], &[0, 0, 0, 24]);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a repod message",
    label = "not a repod message",
    note = "derive it on the shared protocol type: `#[derive(Serialize, Deserialize, repod::Message)]` with `#[action(\"name\")]`"
)]
pub trait Message: Serialize {
    /// The action name this type is sent under and received as.
    const ACTION: &'static str;
}

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
        }
    }

    /// Builds a raw message by encoding a typed one; used for locally raised events.
    pub fn from_message<M: crate::Message + ?Sized>(
        codec: CodecKind,
        msg: &M,
    ) -> Result<Self, CodecError> {
        use crate::codec::Codec;
        let frame = codec.encode(msg, usize::MAX)?;
        codec.decode_raw(frame.slice(crate::frame::HEADER_LEN..))
    }

    /// The action name; `""` for a MessagePack map without an `"action"` key.
    pub fn action(&self) -> &str {
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
            CodecKind::MsgPack => crate::codec::msgpack_value(&self.payload),
            CodecKind::Bincode => Err(CodecError::NotSelfDescribing { codec: "bincode" }),
        }
    }

    /// One field of a MessagePack message, as a dynamic value (`None` if absent or if the
    /// message is not MessagePack). Like Python's `data.get(key)`.
    pub fn get(&self, key: &str) -> Option<rmpv::Value> {
        match self.codec {
            // Only the entry's value is decoded: the map is scanned, not built.
            CodecKind::MsgPack => {
                let range = crate::codec::msgpack_value_range(&self.payload, key).ok()??;
                crate::codec::msgpack_value_at(&self.payload, range).ok()
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
            .field("body_len", &self.body().len())
            .finish()
    }
}

macro_rules! builtin_unit {
    ($(#[$doc:meta])* $name:ident = $action:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
        pub struct $name;

        impl Message for $name {
            const ACTION: &'static str = $action;
        }
    };
}

builtin_unit!(
    /// `{"action": "connected"}`: the connection is established.
    ///
    /// The server greets every new peer with it; a client listener receives it exactly once.
    Connected = "connected"
);

builtin_unit!(
    /// `{"action": "socketConnect"}`: raised by the client when its TCP connection is up,
    /// before `connected`.
    SocketConnect = "socketConnect"
);

/// `{"action": "disconnected"}`: raised by the client, once, when the connection ends,
/// whichever side closed it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Disconnected {
    /// Why the connection ended, for people (e.g. "closed by peer").
    #[serde(default)]
    pub reason: String,
}

impl Message for Disconnected {
    const ACTION: &'static str = "disconnected";
}

/// `{"action": "error", "message": "…"}`: something went wrong.
///
/// A server sends it to a peer whose message was invalid or whose handler returned `Err`;
/// a client raises it locally for a failed connection or an undecodable frame.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ErrorMessage {
    /// A human-readable description.
    pub message: String,
}

impl ErrorMessage {
    /// An error message with this text.
    pub fn new(message: impl Into<String>) -> Self {
        ErrorMessage {
            message: message.into(),
        }
    }
}

impl Message for ErrorMessage {
    const ACTION: &'static str = "error";
}
