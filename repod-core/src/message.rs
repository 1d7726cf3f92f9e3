//! Typed messages: the [`Message`] trait binding a type to its action name, and the built-in
//! events every connection knows (`connected`, `socketConnect`, `disconnected`, `error`).
//!
//! This module knows nothing of bytes: the [`codec`](crate::codec) layer above it turns messages
//! into payloads, and payloads into [`RawMessage`](crate::RawMessage)s.

use serde::{Deserialize, Serialize};

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
    /// `{"action": "connected"}`: the server accepted the connection.
    ///
    /// The server greets every peer it accepts with it, before anything else; a client
    /// listener receives that greeting once, after `socketConnect`. A server that refuses the
    /// connection (full) sends `error` instead, so the client never sees `connected`.
    Connected = "connected"
);

builtin_unit!(
    /// `{"action": "socketConnect"}`: raised by the client when its TCP connection is up,
    /// before the server has said whether it accepts it (`connected`) or not (`error`).
    SocketConnect = "socketConnect"
);

/// `{"action": "disconnected"}`: raised by the client, once, when the connection ends,
/// whichever side closed it. A client that
/// [reconnects](crate::client::ClientBuilder::reconnect) raises it for each connection it
/// loses; the last one is the one nothing follows.
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

/// `{"action": "_heartbeat", "t": …, "rtt_us": …}`: a Rust client's keep-alive, sent every
/// [`heartbeat`](crate::client::ClientBuilder::heartbeat) interval.
///
/// The server consumes it without dispatching it (no channel ever sees it), counts it as a
/// sign of life for its idle timeout, stores `rtt_us` as the connection's round-trip time
/// (read with [`Context::rtt`](crate::server::Context::rtt)) and answers with a
/// [`HeartbeatAck`] echoing `t`. `t` is the client's own clock reading, in microseconds;
/// `rtt_us` the round trip it last measured, 0 before the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The sender's clock, in microseconds, echoed back in the answer.
    pub t: u64,
    /// The round-trip time the sender last measured, in microseconds; 0 if none yet.
    pub rtt_us: u64,
}

impl Message for Heartbeat {
    const ACTION: &'static str = "_heartbeat";
}

/// `{"action": "_heartbeat_ack", "t": …}`: the server's answer to a [`Heartbeat`], echoing
/// its `t`. The Rust clients consume it (it is never delivered to the application) and measure
/// the round trip from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HeartbeatAck {
    /// The `t` of the heartbeat answered.
    pub t: u64,
}

impl Message for HeartbeatAck {
    const ACTION: &'static str = "_heartbeat_ack";
}

/// A message that asks for an answer: its reply type is part of the protocol.
///
/// Derive it with `#[derive(repod::Message)]`, `#[action("…")]` and `#[reply(ReplyType)]` on
/// the shared protocol type. The reply type is anything serde can serialize and deserialize: a
/// struct, a `Vec`, a `String`, `()`.
///
/// A request sent with a client's `request` carries a request id, and the server's handler
/// answers it by returning the reply (or `Result<Reply, E>`), or later through a
/// [`ReplyTo`](crate::server::ReplyTo) token. Sent with an ordinary `send`, a request type is a
/// plain message like any other. The guide's "Request and reply" chapter tells the whole story.
///
/// ```
/// use repod_core::{Message, Request};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize)]
/// struct ListRooms { mode: String }
/// impl Message for ListRooms { const ACTION: &'static str = "list_rooms"; }
/// impl Request for ListRooms { type Reply = Vec<String>; }
/// # let _ = ListRooms { mode: String::new() };
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a repod request: it has no reply type",
    label = "not a request",
    note = "declare its reply type on the shared protocol type: `#[reply(ReplyType)]` beside `#[action(\"name\")]`"
)]
pub trait Request: Message {
    /// The type of the answer.
    type Reply: Serialize + serde::de::DeserializeOwned + Send + 'static;
}
