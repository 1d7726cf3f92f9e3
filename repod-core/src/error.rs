//! Error types, one enum per layer.

use std::io;

/// An error of the framing layer: the 4-byte length prefix and the bytes it announces.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer announced (or we tried to send) a frame longer than the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum frame length of {max} bytes")]
    TooLarge {
        /// The announced or attempted length in bytes.
        len: u64,
        /// The configured maximum in bytes.
        max: usize,
    },
    /// The connection ended in the middle of a frame.
    #[error("connection closed in the middle of a frame ({buffered} bytes of an unfinished frame were buffered)")]
    Truncated {
        /// How many bytes of the unfinished frame had arrived.
        buffered: usize,
    },
    /// Reading from or writing to the socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The peer broke the rules of the transport that carries the frames (for WebSocket: a
    /// text message, or a malformed WebSocket frame).
    #[error("transport protocol error: {0}")]
    Protocol(String),
}

/// An error while turning a message into bytes or bytes into a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The payload is not valid for the codec (bad MessagePack, truncated data, ...).
    #[error("malformed {codec} payload: {reason}")]
    Malformed {
        /// Name of the codec (`"bincode"` or `"msgpack"`).
        codec: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A MessagePack payload whose top-level value is not a map.
    #[error("a msgpack message must be a map with an \"action\" key, found {found}")]
    NotAMap {
        /// The kind of value that was found instead.
        found: &'static str,
    },
    /// The `"action"` entry of a MessagePack map is not a string.
    #[error("the \"action\" value of a msgpack message must be a string")]
    ActionNotAString,
    /// The payload nests arrays and maps deeper than the decoder accepts.
    #[error("msgpack payload nests deeper than {max} levels")]
    TooDeep {
        /// The maximum nesting depth.
        max: usize,
    },
    /// The body of a message does not match the type it was decoded into.
    #[error("invalid body for action {action:?}: {reason}")]
    Body {
        /// The action of the message.
        action: String,
        /// Why decoding failed (missing field, wrong type, ...).
        reason: String,
    },
    /// A message could not be encoded.
    #[error("cannot encode message {action:?}: {reason}")]
    Encode {
        /// The action of the message.
        action: String,
        /// Why encoding failed.
        reason: String,
    },
    /// An encoded message is longer than the maximum frame length.
    #[error("message {action:?} encodes to {len} bytes, more than the maximum frame length of {max} bytes")]
    TooLarge {
        /// The action of the message.
        action: String,
        /// The encoded length.
        len: usize,
        /// The maximum frame length.
        max: usize,
    },
    /// Dynamic values are only available for self-describing codecs.
    #[error(
        "the {codec} codec is not self-describing: decode the body into a concrete type instead"
    )]
    NotSelfDescribing {
        /// Name of the codec.
        codec: &'static str,
    },
}

/// Why a connection ended; passed to `on_close` and the server's `on_disconnect`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed the connection.
    #[error("closed by peer")]
    PeerClosed,
    /// Server code disconnected the peer (after flushing what was queued to it).
    #[error("disconnected by the server")]
    Disconnected,
    /// The peer read too slowly and its outbound queue overflowed. The connection is reset
    /// (see [`resets`](CloseReason::resets)).
    #[error("slow consumer")]
    SlowConsumer,
    /// The peer broke the protocol (oversized frame, undecodable payload, ...).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(String),
    /// A handler of this channel panicked.
    #[error("handler panicked: {0}")]
    HandlerPanicked(String),
    /// The server is shutting down.
    #[error("server shutdown")]
    Shutdown,
    /// The peer sent nothing (not one whole frame) for the server's
    /// [idle timeout](crate::server::ServerBuilder::idle_timeout). It is told
    /// `{"action": "error", "message": "idle timeout"}` before the connection closes.
    #[error("idle")]
    Idle,
    /// The peer sent faster than its [rate limit](crate::server::ServerBuilder::rate_limit)
    /// allows, under the disconnect policy. It is told
    /// `{"action": "error", "message": "rate limited"}` before the connection closes.
    #[error("rate limited")]
    RateLimited,
}

impl CloseReason {
    /// Whether queued outbound frames are still delivered before the socket closes.
    ///
    /// True for [`Disconnected`](CloseReason::Disconnected), [`Shutdown`](CloseReason::Shutdown),
    /// [`Protocol`](CloseReason::Protocol), [`Idle`](CloseReason::Idle) and
    /// [`RateLimited`](CloseReason::RateLimited) (so the peer reads the error reply that explains
    /// why it is dropped); false when the peer is gone or must be dropped at once.
    pub fn flushes(&self) -> bool {
        matches!(
            self,
            CloseReason::Disconnected
                | CloseReason::Shutdown
                | CloseReason::Protocol(_)
                | CloseReason::Idle
                | CloseReason::RateLimited
        )
    }

    /// Whether the connection is reset (for TCP, closed with an RST) rather than closed.
    ///
    /// True for [`SlowConsumer`](CloseReason::SlowConsumer): what was queued for a peer that
    /// does not read is dropped, not only in the server but in the kernel too, and the peer
    /// learns at once that it was cut off (its next read fails with "connection reset").
    pub fn resets(&self) -> bool {
        matches!(self, CloseReason::SlowConsumer)
    }
}

/// Something a peer sent that could not be handled, reported to `on_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// A frame was too large or truncated, or the socket failed; the connection closes.
    #[error("{0}")]
    Transport(String),
    /// A payload could not be decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl From<&FrameError> for ChannelError {
    fn from(e: &FrameError) -> Self {
        ChannelError::Transport(e.to_string())
    }
}

/// A message could not be queued for sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The message could not be encoded (or is larger than the maximum frame length).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The connection is closed.
    #[error("the connection is closed")]
    Closed,
    /// The outbound queue is full.
    #[error("the outbound queue is full")]
    QueueFull,
    /// No channel has this id.
    #[error("no connected channel with id {0}")]
    NoSuchChannel(u64),
}

/// A client could not connect, or could not start its connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The address did not resolve, or the TCP connection was refused or failed.
    #[error("cannot connect to {addr}: {source}")]
    Io {
        /// The address, as it was given.
        addr: String,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The TCP connection was not established within the connect timeout.
    #[error("connecting to {addr} timed out after {after:?}")]
    Timeout {
        /// The address, as it was given.
        addr: String,
        /// The connect timeout.
        after: std::time::Duration,
    },
    /// The client's i/o thread or its runtime could not be started.
    #[error("cannot start the client's i/o thread: {0}")]
    Runtime(#[source] io::Error),
}

/// A request got no usable reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No reply arrived within the deadline. A reply arriving later is dropped.
    #[error("no reply within {0:?}")]
    Timeout(std::time::Duration),
    /// The server answered with an error: a handler's `Err`, a reply token dropped
    /// unanswered, or a request it cannot serve. The text is the server's.
    #[error("the server answered with an error: {0}")]
    Remote(String),
    /// The connection closed (or was never up) before the reply arrived.
    #[error("the connection closed before the reply arrived")]
    Disconnected,
    /// The reply arrived but does not decode into the request's reply type.
    #[error("the reply does not decode: {0}")]
    Decode(CodecError),
    /// The request could not be sent: it does not encode, exceeds the maximum frame length, or
    /// the send queue is full.
    #[error("the request could not be sent: {0}")]
    Send(SendError),
}

impl From<SendError> for RequestError {
    /// A closed connection is [`Disconnected`](RequestError::Disconnected); any other failure
    /// to queue is [`Send`](RequestError::Send).
    fn from(error: SendError) -> Self {
        match error {
            SendError::Closed => RequestError::Disconnected,
            other => RequestError::Send(other),
        }
    }
}
