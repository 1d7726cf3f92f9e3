//! The client: a game-loop `pump()` listener and an async client.

use std::collections::VecDeque;
use std::fmt;

use crate::codec::{Codec, CodecKind};
use crate::dispatch::DispatchContext;
use crate::error::{CodecError, SendError};
use crate::message::{ErrorMessage, Message, RawMessage};
use crate::server::{Outbox, PushError};

/// What a listener's handler can reach: the connection, to reply.
pub struct ClientContext<'a> {
    codec: CodecKind,
    max_frame_len: usize,
    outbox: &'a Outbox,
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
            events,
            close_requested: false,
        }
    }

    /// Queues a message to the server without waiting.
    pub fn send<M: Message + ?Sized>(&mut self, msg: &M) -> Result<(), SendError> {
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
        tracing::warn!(target: "repod::client", action = msg.action(), %error, "invalid message body from server");
        self.raise(&ErrorMessage::new(error.to_string()));
    }

    fn handler_failed(&mut self, action: &str, error: &dyn fmt::Display) {
        tracing::warn!(target: "repod::client", action, %error, "listener handler returned an error");
    }
}
