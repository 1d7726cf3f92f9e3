//! Requests in flight on a client connection.
//!
//! Every request gets an id, unique on its connection. An async request registers a waiter
//! before its frame is queued; the connection's reader hands the reply straight to it, so a
//! reply never waits behind events. A game-loop request registers a callback on its
//! [`Client`](super::Client) instead: its reply travels with the events and reaches the
//! callback during `pump`, in order with the server's other messages. When the connection ends
//! every waiter fails at once with [`RequestError::Disconnected`], and every callback on the
//! `pump` that delivers `disconnected`.

use std::any::Any;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::conn::Shared;
use super::ClientContext;
use crate::codec::RawMessage;
use crate::error::{RequestError, SendError};
use crate::message::Request;

/// The default time a request waits for its reply: 10 seconds.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The async waiters of a connection, and its request ids.
#[derive(Debug)]
pub(crate) struct Pending {
    next_id: AtomicU64,
    waiters: Mutex<Waiters>,
}

#[derive(Debug, Default)]
struct Waiters {
    /// Set when the connection has ended: no new waiter is taken.
    closed: bool,
    map: HashMap<u64, oneshot::Sender<RawMessage>>,
}

impl Pending {
    pub(crate) fn new() -> Self {
        Pending {
            next_id: AtomicU64::new(1),
            waiters: Mutex::new(Waiters::default()),
        }
    }

    /// A fresh request id.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a waiter for `rid`; fails once the connection has ended.
    fn register(&self, rid: u64) -> Result<oneshot::Receiver<RawMessage>, RequestError> {
        let (tx, rx) = oneshot::channel();
        let mut waiters = self.lock();
        if waiters.closed {
            return Err(RequestError::Disconnected);
        }
        waiters.map.insert(rid, tx);
        Ok(rx)
    }

    fn forget(&self, rid: u64) {
        self.lock().map.remove(&rid);
    }

    /// Hands a reply to its waiter; gives it back if no one waits for it (a game-loop request,
    /// or a reply that came after its deadline).
    pub(crate) fn complete(&self, reply: RawMessage) -> Option<RawMessage> {
        let rid = reply.reply_id()?;
        let waiter = self.lock().map.remove(&rid);
        match waiter {
            // A waiter that gave up meanwhile drops it.
            Some(tx) => {
                let _ = tx.send(reply);
                None
            }
            None => Some(reply),
        }
    }

    /// The requests in flight can no longer be answered, though the client goes on (it
    /// reconnects): every waiter fails now; later requests are taken.
    pub(crate) fn fail_all(&self) {
        let drained = std::mem::take(&mut self.lock().map);
        drop(drained);
    }

    /// The connection has ended: every waiter fails now, and later requests at once.
    pub(crate) fn close(&self) {
        let drained = {
            let mut waiters = self.lock();
            waiters.closed = true;
            std::mem::take(&mut waiters.map)
        };
        // Dropping the senders wakes every waiter with `Disconnected`.
        drop(drained);
    }
}

/// Forgets a waiter whose request was dropped, timed out or failed to send.
struct WaiterGuard<'a> {
    pending: &'a Pending,
    rid: u64,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.pending.forget(self.rid);
    }
}

impl Shared {
    /// Encodes and queues `msg` as the request `rid`; never waits.
    pub(crate) fn send_request<R: Request + ?Sized>(
        &self,
        rid: u64,
        msg: &R,
    ) -> Result<(), SendError> {
        if !self.accepts_frames() {
            return Err(SendError::Closed);
        }
        let frame = self.codec.encode_request(rid, msg, self.max_frame_len)?;
        self.push_frame(frame)
    }

    /// Sends a request at once and returns the future of its reply, which needs no borrow of
    /// the client.
    pub(crate) fn request<R: Request + ?Sized>(
        self: &std::sync::Arc<Self>,
        msg: &R,
        timeout: Duration,
    ) -> impl Future<Output = Result<R::Reply, RequestError>> + Send + 'static {
        let deadline = tokio::time::Instant::now() + timeout;
        let rid = self.requests.next_id();
        let started =
            self.requests
                .register(rid)
                .and_then(|rx| match self.send_request(rid, msg) {
                    Ok(()) => Ok(rx),
                    Err(error) => {
                        self.requests.forget(rid);
                        Err(RequestError::from(error))
                    }
                });
        let shared = self.clone();
        async move {
            let rx = started?;
            let _guard = WaiterGuard {
                pending: &shared.requests,
                rid,
            };
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(reply)) => reply.decode_reply::<R::Reply>(),
                Ok(Err(_)) => Err(RequestError::Disconnected),
                Err(_) => Err(RequestError::Timeout(timeout)),
            }
        }
    }
}

/// Identifies a game-loop request made with [`Client::request`](super::Client::request), until
/// its callback runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub(crate) u64);

impl Ticket {
    /// The request's id on its connection.
    pub fn id(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request #{}", self.0)
    }
}

/// A callback waiting for its reply: given the listener (as `Any`, checked against the type
/// the callback was written for), a context, and the reply or the failure.
/// Returns `false`, without running, if the listener is not of its type.
type Callback = Box<
    dyn FnOnce(&mut dyn Any, &mut ClientContext<'_>, Result<RawMessage, RequestError>) -> bool
        + Send,
>;

struct Call {
    callback: Callback,
    /// The listener type the callback takes, for the error when `pump` is given another.
    listener: &'static str,
    timeout: Duration,
}

/// The callbacks of a game-loop client's requests, with their deadlines.
#[derive(Default)]
pub(crate) struct Calls {
    calls: BTreeMap<u64, Call>,
    /// Deadlines, earliest first; entries whose call is gone are skipped.
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl fmt::Debug for Calls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calls")
            .field("waiting", &self.calls.len())
            .finish()
    }
}

impl Calls {
    /// Registers the callback of request `rid`, typed on the listener `L`.
    pub(crate) fn add<R, L, F>(&mut self, rid: u64, timeout: Duration, on_reply: F)
    where
        R: Request + ?Sized,
        L: 'static,
        F: FnOnce(&mut L, &mut ClientContext<'_>, Result<R::Reply, RequestError>) + Send + 'static,
    {
        let callback: Callback = Box::new(move |listener, ctx, outcome| {
            let Some(listener) = listener.downcast_mut::<L>() else {
                return false;
            };
            let result = outcome.and_then(|reply| reply.decode_reply::<R::Reply>());
            on_reply(listener, ctx, result);
            true
        });
        self.calls.insert(
            rid,
            Call {
                callback,
                listener: std::any::type_name::<L>(),
                timeout,
            },
        );
        self.deadlines
            .push(Reverse((Instant::now() + timeout, rid)));
    }

    pub(crate) fn remove(&mut self, rid: u64) -> bool {
        self.calls.remove(&rid).is_some()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.calls.len()
    }

    /// Takes the call of a reply.
    fn take(&mut self, rid: u64) -> Option<Call> {
        self.calls.remove(&rid)
    }

    /// Takes the calls whose deadline has passed, earliest first.
    fn take_expired(&mut self, now: Instant) -> Vec<(u64, Call)> {
        let mut expired = Vec::new();
        while let Some(Reverse((deadline, rid))) = self.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            if let Some(call) = self.calls.remove(&rid) {
                expired.push((rid, call));
            }
        }
        if self.calls.is_empty() {
            self.deadlines.clear();
        }
        expired
    }

    /// Takes every call, in request order.
    fn take_all(&mut self) -> Vec<(u64, Call)> {
        self.deadlines.clear();
        std::mem::take(&mut self.calls).into_iter().collect()
    }
}

/// Runs one callback with the listener, if it is of the callback's type.
fn run_call(
    call: Call,
    rid: u64,
    listener: Option<&mut dyn Any>,
    ctx: &mut ClientContext<'_>,
    outcome: Result<RawMessage, RequestError>,
) {
    let ran = match listener {
        Some(listener) => (call.callback)(listener, ctx, outcome),
        None => false,
    };
    if !ran {
        tracing::error!(target: "repod::client", rid, expected = call.listener, "the listener given to pump is not the one this request's callback takes: callback dropped");
    }
}

impl Calls {
    /// Runs the callback of a reply, if its request is still waiting.
    pub(crate) fn reply(
        calls: &Mutex<Calls>,
        listener: Option<&mut dyn Any>,
        ctx: &mut ClientContext<'_>,
        reply: RawMessage,
    ) {
        let Some(rid) = reply.reply_id() else {
            return;
        };
        let call = lock(calls).take(rid);
        match call {
            Some(call) => run_call(call, rid, listener, ctx, Ok(reply)),
            None => {
                tracing::debug!(target: "repod::client", rid, "a reply to no waiting request (late, or cancelled): dropped")
            }
        }
    }

    /// Runs the callbacks whose deadline has passed with [`RequestError::Timeout`].
    pub(crate) fn expire(
        calls: &Mutex<Calls>,
        mut listener: Option<&mut dyn Any>,
        ctx: &mut ClientContext<'_>,
    ) {
        let expired = {
            let mut calls = lock(calls);
            if calls.is_empty() {
                return;
            }
            calls.take_expired(Instant::now())
        };
        for (rid, call) in expired {
            let timeout = call.timeout;
            run_call(
                call,
                rid,
                listener.as_deref_mut(),
                ctx,
                Err(RequestError::Timeout(timeout)),
            );
        }
    }

    /// Runs every callback still waiting with [`RequestError::Disconnected`].
    pub(crate) fn fail_all(
        calls: &Mutex<Calls>,
        mut listener: Option<&mut dyn Any>,
        ctx: &mut ClientContext<'_>,
    ) {
        let all = lock(calls).take_all();
        for (rid, call) in all {
            run_call(
                call,
                rid,
                listener.as_deref_mut(),
                ctx,
                Err(RequestError::Disconnected),
            );
        }
    }
}

pub(crate) fn lock(calls: &Mutex<Calls>) -> std::sync::MutexGuard<'_, Calls> {
    calls.lock().unwrap_or_else(|e| e.into_inner())
}
