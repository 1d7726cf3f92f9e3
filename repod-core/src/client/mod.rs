//! The client: a game-loop [`Client`] you [`pump`](Client::pump) and an [`AsyncClient`] for
//! tokio applications, both driven by the same connection task.
//!
//! # Events
//!
//! Besides the server's messages, a listener receives these built-in events, in this order:
//!
//! * `socketConnect` ([`SocketConnect`](crate::SocketConnect)): once, when the TCP
//!   connection is established. The server has not necessarily accepted the client yet.
//! * `connected` ([`Connected`](crate::Connected)): the server accepted the connection. It is
//!   the server's own greeting: servers (repod's and Python repod's alike) send `{"action":
//!   "connected"}` to each peer they accept, before anything else, so a listener sees it once,
//!   after `socketConnect`, and can send its hello there. A repod server that is full does
//!   not greet: it sends `error` ("server full") and closes, so a refused client sees
//!   `socketConnect`, `error`, `disconnected` and never `connected`. (Python repod's client
//!   also raises a `connected` of its own on TCP connect, so it sees two.)
//! * `error` ([`ErrorMessage`]): something went wrong, in words: the connect failed, a frame
//!   did not decode (the connection stays up), a frame was larger than the maximum frame
//!   length or cut short (the connection closes), or a message body did not fit its handler.
//! * `disconnected` ([`Disconnected`](crate::Disconnected)): once, last, whichever side
//!   closed; its `reason` says why: `"closed by peer"`, `"closed by client"`, `"reset by
//!   peer"` (the server dropped the connection without flushing it, as a repod server does to
//!   a client too slow to read, or still behind when a close or a shutdown ran out of time),
//!   `"i/o error: …"`, `"protocol error: …"`, or the connect error.
//!
//! A failed connect yields `error` then `disconnected`, and never `socketConnect` or
//! `connected`.
//!
//! A client that [reconnects](ClientBuilder::reconnect) raises `socketConnect`, `connected`
//! and `disconnected` once per connection instead, and with
//! [`resume`](ClientBuilder::resume) a `session` event
//! ([`SessionStarted`](crate::SessionStarted)) before each `connected`, telling a resumed
//! session from a new one; the guide's "Reconnecting and resuming" chapter has the details.
//!
//! # Threads and queues
//!
//! [`Client::connect`] returns at once: a background thread named `repod-client`, running
//! its own single-threaded tokio runtime, makes the connection and does all i/o. A thread per
//! client keeps games that do not use tokio free of a global runtime, and lets drop wait for
//! exactly its own connection to flush. [`AsyncClient`] runs the same task on the caller's
//! runtime instead.
//!
//! `send` encodes the message and never waits. When nothing is queued ahead of it and the
//! writer is idle, it writes the frame to the socket itself, on the calling thread (one
//! non-blocking write), so a lone message leaves without waking the connection's task; what the
//! socket does not take at once, and every send made while frames are queued or being written,
//! goes to the send queue, in order. The writer wakes on the queue, writes every queued frame,
//! then flushes once, so a message leaves as soon as it is queued, whether or not the game is
//! pumping. After a few direct writes in a row with no reply in between, sends queue again, so a
//! burst is written in batches. Sockets use `TCP_NODELAY`. Both queues are
//! bounded: a full send queue makes `send` fail with [`SendError::QueueFull`], and a full
//! event queue (a game that stopped pumping) stops the reader, so the server sees the
//! backpressure and memory stays bounded. The stopped reader still watches the socket, without
//! reading, for the server's end of the connection: `is_connected()` turns false when it
//! arrives, pumping or not.
//!
//! # Defaults
//!
//! | setting | default |
//! |---|---|
//! | [`codec`](ClientBuilder::codec) | [`CodecKind::Bincode`] |
//! | [`max_frame_len`](ClientBuilder::max_frame_len) | 1 MiB |
//! | [`send_queue`](ClientBuilder::send_queue) | 4,096 frames, 4 MiB |
//! | [`event_queue`](ClientBuilder::event_queue) | 1,024 events |
//! | [`connect_timeout`](ClientBuilder::connect_timeout) | 10 s |
//! | [`close_timeout`](ClientBuilder::close_timeout) | 2 s |
//! | [`request_timeout`](ClientBuilder::request_timeout) | 10 s |

mod addr;
mod async_client;
mod builder;
mod conn;
mod link;
mod listener;
mod pending;
mod pump;
mod reconnect;

pub use self::addr::ServerAddr;
pub use self::async_client::AsyncClient;
pub use self::builder::{
    ClientBuilder, DEFAULT_CLOSE_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_EVENT_QUEUE,
    DEFAULT_SEND_QUEUE_BYTES, DEFAULT_SEND_QUEUE_FRAMES,
};
pub use self::listener::Listener;
pub use self::pending::{Ticket, DEFAULT_REQUEST_TIMEOUT};
pub use self::pump::{Client, ClientSender};
pub use crate::error::ConnectError;

use std::collections::VecDeque;
use std::fmt;

use crate::codec::{Codec, CodecKind, RawMessage};
use crate::connection::{Outbox, PushError};
use crate::dispatch::DispatchContext;
use crate::error::{CodecError, SendError};
use crate::message::{ErrorMessage, Message};

/// What a listener's handler can reach: the connection, to reply.
pub struct ClientContext<'a> {
    codec: CodecKind,
    max_frame_len: usize,
    outbox: &'a Outbox,
    /// The client's connection state, when the context belongs to a client: sends then go
    /// through it, so they fail once the connection has stopped taking frames.
    shared: Option<&'a conn::Shared>,
    events: &'a mut VecDeque<RawMessage>,
    close_requested: bool,
}

impl<'a> ClientContext<'a> {
    /// A context sending into `outbox` and raising local events into `events`.
    ///
    /// The client builds one per `pump`; tests of hand-written listeners can build their own.
    pub fn new(
        codec: CodecKind,
        max_frame_len: usize,
        outbox: &'a Outbox,
        events: &'a mut VecDeque<RawMessage>,
    ) -> Self {
        ClientContext {
            codec,
            max_frame_len,
            outbox,
            shared: None,
            events,
            close_requested: false,
        }
    }

    /// The context of a client's `pump`.
    pub(crate) fn for_client(
        shared: &'a conn::Shared,
        events: &'a mut VecDeque<RawMessage>,
    ) -> Self {
        let mut ctx = Self::new(shared.codec, shared.max_frame_len, &shared.outbox, events);
        ctx.shared = Some(shared);
        ctx
    }

    /// Queues a message to the server without waiting.
    pub fn send<M: Message + ?Sized>(&mut self, msg: &M) -> Result<(), SendError> {
        if let Some(shared) = self.shared {
            return shared.send(msg);
        }
        let frame = self.codec.encode(msg, self.max_frame_len)?;
        self.outbox.push(frame).map_err(|e| match e {
            PushError::Full => SendError::QueueFull,
            PushError::Closed => SendError::Closed,
        })
    }

    /// Asks the client to close the connection once the current `pump` returns.
    pub fn close(&mut self) {
        self.close_requested = true;
    }

    /// Whether [`close`](ClientContext::close) was called.
    pub fn close_requested(&self) -> bool {
        self.close_requested
    }

    /// The codec of this connection.
    pub fn codec(&self) -> CodecKind {
        self.codec
    }

    /// Raises a local event, delivered to the listener after the current one.
    pub fn raise<M: Message + ?Sized>(&mut self, msg: &M) {
        match RawMessage::from_message(self.codec, msg) {
            Ok(raw) => self.events.push_back(raw),
            Err(error) => {
                tracing::error!(target: "repod::client", action = M::ACTION, %error, "cannot encode local event")
            }
        }
    }
}

impl DispatchContext for ClientContext<'_> {
    fn invalid_body(&mut self, msg: &RawMessage, error: CodecError) {
        if msg.action() == ErrorMessage::ACTION {
            // Raising another `error` would fail the same way, forever: log it only.
            tracing::warn!(target: "repod::client", action = msg.action(), %error, "the listener's `error` handler cannot decode this error event; dropped");
            return;
        }
        tracing::warn!(target: "repod::client", action = msg.action(), %error, "invalid message body from server");
        self.raise(&ErrorMessage::new(error.to_string()));
    }

    fn handler_failed(&mut self, action: &str, error: &dyn fmt::Display) {
        tracing::warn!(target: "repod::client", action, %error, "listener handler returned an error");
    }
}
