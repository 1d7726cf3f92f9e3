//! Answering requests: the reply a handler returns, and [`ReplyTo`], the token of a reply
//! given later.
//!
//! A handler of a [`Request`] answers by returning its reply (or `Result<Reply, E>`); the
//! dispatcher encodes it and queues it to the peer right after the handler returns, in order
//! with what the handler sent itself. A handler may instead take a [`ReplyTo`] token, keep it
//! anywhere (its channel, the server state, another thread) and answer later. Every request is
//! answered once: a token dropped unanswered sends an error reply.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;

use super::channel::Channel;
use super::hub::{ChannelId, Context, ServerContext};
use crate::codec::CodecKind;
use crate::error::{CodecError, SendError};
use crate::message::Request;

/// The text of the error reply sent for a [`ReplyTo`] dropped unanswered.
pub const DROPPED_REPLY: &str = "the server dropped the request without answering it";

/// A reply frame on its way to the dispatch loop: the channel it answers, the frame.
pub(crate) type QueuedReply = (ChannelId, Bytes);

/// How tokens reach the dispatch loop, and how they encode: shared by every token of a server.
#[derive(Debug)]
pub(crate) struct ReplyRoute {
    tx: mpsc::UnboundedSender<QueuedReply>,
    codec: CodecKind,
    max_frame_len: usize,
}

impl ReplyRoute {
    pub(crate) fn new(
        codec: CodecKind,
        max_frame_len: usize,
    ) -> (Arc<ReplyRoute>, mpsc::UnboundedReceiver<QueuedReply>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(ReplyRoute {
                tx,
                codec,
                max_frame_len,
            }),
            rx,
        )
    }

    /// Encodes a reply to `rid`; a value that cannot be encoded becomes an error reply, so the
    /// caller still gets an answer.
    pub(crate) fn encode<T: Serialize + ?Sized>(
        codec: CodecKind,
        max_frame_len: usize,
        rid: u64,
        outcome: Result<&T, &str>,
    ) -> Result<Bytes, CodecError> {
        codec
            .encode_reply(rid, outcome, max_frame_len)
            .or_else(|error| {
                tracing::error!(target: "repod::server", rid, %error, "cannot encode a reply: answering with an error");
                let text = format!("the server cannot encode its reply: {error}");
                codec.encode_reply::<()>(rid, Err(&text), max_frame_len)
            })
    }
}

/// The channel and request a [`ReplyTo`] answers.
#[derive(Debug)]
struct Target {
    channel: ChannelId,
    rid: u64,
    /// The request's action, for logs.
    action: &'static str,
    route: Arc<ReplyRoute>,
}

impl Target {
    /// Encodes on the calling thread and hands the frame to the dispatch loop.
    fn send<T: Serialize + ?Sized>(self, outcome: Result<&T, &str>) -> Result<(), SendError> {
        let route = &self.route;
        let frame = ReplyRoute::encode(route.codec, route.max_frame_len, self.rid, outcome)?;
        route
            .tx
            .send((self.channel, frame))
            .map_err(|_| SendError::Closed)
    }
}

/// The right to answer one request, later: take it as a handler's last parameter, keep it,
/// and answer with [`send`](ReplyTo::send) or [`fail`](ReplyTo::fail).
///
/// The reply type is checked: a `ReplyTo<JoinMatch>` only sends `JoinMatch`'s reply type. The
/// token is `Send`, so it may be kept in a channel, in the server state, or moved to another
/// thread. Answering from any thread encodes there and queues the reply to the dispatch loop;
/// from a handler or a tick, [`Context::reply`] queues it at once, in order with the
/// context's other sends.
///
/// A token dropped without an answer (a channel or state dropping it, an early return) sends
/// the error reply [`DROPPED_REPLY`], so the caller never waits for its deadline in vain. A
/// token for a message that was sent as a plain message, not as a request, answers nothing:
/// [`expects_reply`](ReplyTo::expects_reply) is `false` and sending does nothing.
///
/// ```
/// use repod_core::server::ReplyTo;
/// use repod_core::{Message, Request};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize)] struct FindMatch;
/// # impl Message for FindMatch { const ACTION: &'static str = "find_match"; }
/// # impl Request for FindMatch { type Reply = String; }
///
/// // Waiting players, answered when the match is full.
/// struct Queue { waiting: Vec<ReplyTo<FindMatch>> }
///
/// impl Queue {
///     fn start(&mut self, name: &str) {
///         for reply in self.waiting.drain(..) {
///             let _ = reply.send(&name.to_owned());
///         }
///     }
/// }
/// ```
#[must_use = "a ReplyTo dropped unanswered sends an error reply"]
pub struct ReplyTo<R> {
    target: Option<Target>,
    _request: PhantomData<fn(R)>,
}

impl<R: Request> ReplyTo<R> {
    pub(crate) fn new(channel: ChannelId, rid: Option<u64>, route: &Arc<ReplyRoute>) -> Self {
        ReplyTo {
            target: rid.map(|rid| Target {
                channel,
                rid,
                action: R::ACTION,
                route: route.clone(),
            }),
            _request: PhantomData,
        }
    }

    /// Answers with the reply. Encodes it here and queues it to the dispatch loop, which
    /// sends it to the channel.
    ///
    /// Fails with [`SendError::Closed`] once the server has stopped. A channel that has closed
    /// meanwhile is skipped on the loop. For a message that was not a request there is nothing
    /// to send, and this does nothing.
    pub fn send(mut self, reply: &R::Reply) -> Result<(), SendError> {
        match self.target.take() {
            Some(target) => target.send(Ok(reply)),
            None => Ok(()),
        }
    }

    /// Answers with an error: the caller's request fails with this text.
    ///
    /// Fails like [`send`](ReplyTo::send).
    pub fn fail(mut self, error: impl fmt::Display) -> Result<(), SendError> {
        match self.target.take() {
            Some(target) => target.send::<()>(Err(&error.to_string())),
            None => Ok(()),
        }
    }
}

impl<R> ReplyTo<R> {
    /// Whether the message was sent as a request, so a reply is awaited.
    pub fn expects_reply(&self) -> bool {
        self.target.is_some()
    }

    /// The channel waiting for the reply (`None` if no reply is awaited).
    pub fn channel(&self) -> Option<ChannelId> {
        self.target.as_ref().map(|t| t.channel)
    }

    /// The request's id on its connection (`None` if no reply is awaited).
    pub fn request_id(&self) -> Option<u64> {
        self.target.as_ref().map(|t| t.rid)
    }

    /// Takes the target, leaving the token answered; for replies queued by a context.
    fn take(mut self) -> Option<Target> {
        self.target.take()
    }
}

impl<R> Drop for ReplyTo<R> {
    fn drop(&mut self) {
        if let Some(target) = self.target.take() {
            tracing::debug!(target: "repod::server", id = target.channel.get(), rid = target.rid, action = target.action, "reply token dropped unanswered: sending an error reply");
            let _ = target.send::<()>(Err(DROPPED_REPLY));
        }
    }
}

impl<R> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyTo")
            .field("action", &self.target.as_ref().map(|t| t.action))
            .field("channel", &self.channel())
            .field("request_id", &self.request_id())
            .finish()
    }
}

impl<Ch: Channel> Context<'_, Ch> {
    /// A token answering the request `request_id` of this channel (see
    /// [`RawMessage::request_id`](crate::RawMessage::request_id)); with `None`, a token that
    /// answers nothing.
    ///
    /// Handlers generated by `#[repod::channel]` get theirs as a `ReplyTo` parameter; this is
    /// for hand-written channels.
    pub fn reply_to<R: Request>(&mut self, request_id: Option<u64>) -> ReplyTo<R> {
        let id = self.id();
        ReplyTo::new(id, request_id, self.reply_route(request_id))
    }

    /// Answers a token now, queuing the reply to its channel in order with this context's
    /// other sends. Fails like [`send_to`](Context::send_to) (the channel is gone, or its queue
    /// is full); does nothing for a message that was not a request.
    pub fn reply<R: Request>(&mut self, to: ReplyTo<R>, reply: &R::Reply) -> Result<(), SendError> {
        match to.take() {
            Some(target) => self.queue_reply(target.channel, target.rid, Ok(reply)),
            None => Ok(()),
        }
    }

    /// Answers the request `request_id` of this channel's peer with a value (`Ok`) or an error
    /// text (`Err`), for fallback handlers and hand-written channels, which see requests as
    /// [`RawMessage`](crate::RawMessage)s. Fails like [`send`](Context::send).
    pub fn reply_raw<T: Serialize + ?Sized>(
        &mut self,
        request_id: u64,
        outcome: Result<&T, &str>,
    ) -> Result<(), SendError> {
        self.queue_reply(self.id(), request_id, outcome)
    }
}

impl<Ch: Channel> Context<'_, Ch> {
    /// Answers a request that reached the fallback handler, if the fallback did not answer it
    /// (with [`reply_raw`](Context::reply_raw) or a token), so its caller does not wait in
    /// vain. Called by the code `#[repod::channel]` generates.
    #[doc(hidden)]
    pub fn __after_fallback(&mut self, request: Option<(u64, String)>) {
        if let Some((rid, action)) = request {
            if !self.was_answered(rid) {
                let text = format!("no handler answered action {action:?}");
                tracing::debug!(target: "repod::server", id = self.id().get(), action, rid, "the fallback did not answer a request");
                let _ = self.reply_raw::<()>(rid, Err(&text));
            }
        }
    }
}

impl<Ch: Channel> ServerContext<'_, Ch> {
    /// Answers a token now, from a tick or code run on the loop through a
    /// [`ServerHandle`](super::ServerHandle); see [`Context::reply`].
    pub fn reply<R: Request>(&mut self, to: ReplyTo<R>, reply: &R::Reply) -> Result<(), SendError> {
        match to.take() {
            Some(target) => self.queue_reply(target.channel, target.rid, Ok(reply)),
            None => Ok(()),
        }
    }
}
