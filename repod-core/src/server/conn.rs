//! One accepted connection's reader and writer tasks.
//!
//! The reader decodes frames and payloads off the dispatch loop and forwards them; the writer
//! is the shared one of [`crate::connection`], draining the connection's outbox into the
//! transport. Neither waits on a timer.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::auth::{Auth, Identity, Refusal};
use super::channel::Channel;
use super::hub::{ChannelId, PeerInfo};
use super::limits::{IpSlot, PeerLimiter, RateLimit, RatePolicy, Verdict};
use crate::codec::{Codec, CodecKind};
use crate::connection::transport::{FrameReader, FrameWriter};
use crate::connection::writer::{write_outbox, WriteEnd};
use crate::connection::{discard, Outbox, OutboxReceiver};
use crate::error::{ChannelError, CloseReason, FrameError};
use crate::message::{ErrorMessage, Heartbeat, HeartbeatAck, Message};

/// What a connection's tasks tell the dispatch loop; `I` is the channel's decoded message.
pub(crate) enum ConnEvent<I> {
    /// A decoded message; the permit returns its share of the inbound budget when dropped.
    Message(ChannelId, I, OwnedSemaphorePermit),
    /// Several messages of one connection, in order, under one permit.
    Messages(ChannelId, Vec<I>, OwnedSemaphorePermit),
    /// The peer broke the protocol: the loop reports it, replies with an error and closes.
    Protocol(ChannelId, ChannelError),
    /// The connection ended (end of stream or i/o error), or its reader cut it (idle, rate
    /// limited).
    Closed(ChannelId, CloseReason),
    /// The peer is through its handshake and authentication (those it has): its channel can
    /// be created, with this outbox and the identity authentication proved.
    Admitted(ChannelId, SocketAddr, Outbox, Option<Identity>),
    /// A heartbeat: the round trip it reports, and the encoded answer to queue.
    Heartbeat(ChannelId, Option<Duration>, Bytes, OwnedSemaphorePermit),
    /// Tell the peer this in an `error` message; the connection stays open.
    Notice(ChannelId, &'static str, OwnedSemaphorePermit),
}

/// The fixed cost charged to the inbound budget for each message, on top of its payload.
pub(crate) const MESSAGE_OVERHEAD: usize = 64;

/// The most messages handed to the dispatch loop in one event.
const READ_BATCH: usize = 64;

/// Settings a connection's tasks need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnConfig {
    pub(crate) codec: CodecKind,
    pub(crate) max_frame_len: usize,
    pub(crate) inbound_bytes: usize,
    pub(crate) close_timeout: Duration,
    /// Close a peer that sent no whole frame for this long.
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) rate_limit: Option<RateLimit>,
    /// The login action, when the server authenticates: a second login is answered, not
    /// dispatched.
    pub(crate) login_action: Option<&'static str>,
    /// How long a transport's handshake may take.
    pub(crate) handshake_timeout: Duration,
}

/// A connection whose channel does not exist yet, until its handshake and authentication (if
/// the server wants one) are done: what its reader needs until then.
pub(crate) struct Pending {
    pub(crate) auth: Option<Auth>,
    /// Handed to the dispatch loop (with the identity) once the peer is admitted.
    pub(crate) outbox: Outbox,
    pub(crate) shutdown: CancellationToken,
}

/// Counts a connection from its acceptance until its socket is closed (the writer's end),
/// in the server's total and, when limited, against its address.
pub(crate) struct OpenGuard {
    open: Arc<AtomicUsize>,
    /// Released with the guard.
    _ip: Option<IpSlot>,
}

impl OpenGuard {
    pub(crate) fn new(open: &Arc<AtomicUsize>, ip: Option<IpSlot>) -> Self {
        open.fetch_add(1, Ordering::AcqRel);
        OpenGuard {
            open: open.clone(),
            _ip: ip,
        }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Spawns the tasks of an accepted connection: `handshake` gives its transport halves (at once
/// for plain TCP), bounded by the handshake timeout; then a writer task drains the outbox and
/// this task reads.
///
/// With `pending`, the connection has no channel yet: once the handshake and the
/// authentication (if any) are done, the loop is told to create it (`Admitted`). A failed
/// handshake ends the connection without a word to the loop, so no channel hook runs for it.
/// Without `pending`, the channel exists already, and a failed handshake closes it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn<Ch, R, W, H>(
    id: ChannelId,
    peer: std::net::SocketAddr,
    handshake: H,
    outbox: OutboxReceiver,
    config: ConnConfig,
    events: mpsc::UnboundedSender<ConnEvent<Ch::Inbound>>,
    writer_guard: mpsc::Sender<()>,
    open: OpenGuard,
    pending: Option<Pending>,
) where
    Ch: Channel,
    R: FrameReader,
    W: FrameWriter,
    H: std::future::Future<Output = io::Result<(R, W)>> + Send + 'static,
{
    let span = tracing::debug_span!(target: "repod::server", "conn", conn_id = id.get(), %peer);
    let task = async move {
        let shutdown = pending.as_ref().map(|p| p.shutdown.clone());
        let gone = async {
            match &shutdown {
                Some(shutdown) => shutdown.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let handshake = tokio::time::timeout(config.handshake_timeout, handshake);
        tokio::pin!(handshake);
        // Declared after the handshake, which holds the socket: on a failure the connection's
        // slot is released before its socket closes, so a peer that sees the close finds the
        // slot free.
        let open = open;
        let halves = tokio::select! {
            biased;
            () = gone => return,
            halves = &mut handshake => halves,
        };
        let (mut read, write) = match halves {
            Ok(Ok(halves)) => halves,
            Ok(Err(error)) => {
                tracing::warn!(target: "repod::server", %error, "handshake failed: closing");
                if pending.is_none() {
                    let _ = events.send(ConnEvent::Closed(id, io_reason(&error)));
                }
                return;
            }
            Err(_) => {
                tracing::warn!(target: "repod::server", timeout = ?config.handshake_timeout, "handshake timeout: closing");
                if pending.is_none() {
                    let reason = CloseReason::Io("handshake timeout".to_owned());
                    let _ = events.send(ConnEvent::Closed(id, reason));
                }
                return;
            }
        };
        // The reader stops forwarding as soon as the channel is closed (its outbox dropped),
        // and stops reading when the writer is done.
        let reader_stop = CancellationToken::new();
        let closing = outbox.closing_token().clone();
        let writer = Writer {
            id,
            events: events.clone(),
            reader_stop: reader_stop.clone(),
            close_timeout: config.close_timeout,
            _guards: (writer_guard, open),
        };
        tokio::spawn(writer.run(write, outbox).in_current_span());
        if let Some(pending) = pending {
            let info = PeerInfo { id, addr: peer };
            if !admit::<Ch, R>(info, &mut read, pending, config, &events, &reader_stop).await {
                return;
            }
        }
        read_loop::<Ch, R>(id, read, config, events, closing, reader_stop).await
    };
    tokio::spawn(task.instrument(span));
}

/// Admits a peer whose channel does not exist yet: authenticates it if the server wants it,
/// then tells the loop to create the channel and returns `true`. On a refusal the peer is told
/// why, the connection closed, and `false` returned once the writer is done.
async fn admit<Ch: Channel, R: FrameReader>(
    info: PeerInfo,
    frames: &mut R,
    pending: Pending,
    config: ConnConfig,
    events: &mpsc::UnboundedSender<ConnEvent<Ch::Inbound>>,
    stop: &CancellationToken,
) -> bool {
    let Pending {
        auth,
        outbox,
        shutdown,
    } = pending;
    let Some(auth) = auth else {
        return events
            .send(ConnEvent::Admitted(info.id, info.addr, outbox, None))
            .is_ok();
    };
    let result = tokio::select! {
        biased;
        () = shutdown.cancelled() => Err(Refusal::Gone),
        () = stop.cancelled() => Err(Refusal::Gone),
        result = auth.authenticate(frames, config.codec, info) => result,
    };
    match result {
        Ok(identity) => {
            tracing::debug!(target: "repod::server", "authenticated");
            events
                .send(ConnEvent::Admitted(
                    info.id,
                    info.addr,
                    outbox,
                    Some(identity),
                ))
                .is_ok()
        }
        Err(refusal) => {
            if let Refusal::Tell(reason) = refusal {
                tracing::warn!(target: "repod::server", %reason, "authentication refused");
                if let Ok(frame) = config
                    .codec
                    .encode(&ErrorMessage::new(reason), config.max_frame_len)
                {
                    let _ = outbox.push(frame);
                }
            }
            // Dropping the outbox closes the connection after the reply; until the writer is
            // done, read and drop what the peer still sends (see `read_loop`).
            drop(outbox);
            tokio::select! {
                biased;
                () = stop.cancelled() => {}
                () = discard(frames) => {}
            }
            false
        }
    }
}

async fn read_loop<Ch: Channel, R: FrameReader>(
    id: ChannelId,
    mut frames: R,
    config: ConnConfig,
    events: mpsc::UnboundedSender<ConnEvent<Ch::Inbound>>,
    closing: CancellationToken,
    stop: CancellationToken,
) {
    // Every message is charged its full size, so the budget must fit the largest frame.
    let budget = inbound_budget(config.inbound_bytes, config.max_frame_len);
    let semaphore = Arc::new(Semaphore::new(budget));
    // One cancellation future for the whole loop, not one per message.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    let closed = closing.cancelled();
    tokio::pin!(closed);
    // Messages decoded from one read are handed to the loop together: one event, one permit.
    let mut batch = Batch::<Ch::Inbound>::default();
    let limiter = config
        .rate_limit
        .map(|limit| PeerLimiter::new(&limit, config.max_frame_len));
    // The idle timer is re-armed lazily: a frame only records its time, and the timer, when
    // it fires early, sleeps again until the last frame's time plus the timeout.
    let idle = config.idle_timeout;
    let mut last_frame = tokio::time::Instant::now();
    let idle_timer = tokio::time::sleep(idle.unwrap_or(Duration::from_secs(86_400)));
    tokio::pin!(idle_timer);
    loop {
        let next = if batch.msgs.is_empty() {
            tokio::select! {
                biased;
                () = &mut stopped => return,
                () = &mut closed => {
                    // Until the writer is done, read and drop what the peer still sends, so the
                    // socket closes with a FIN rather than a reset that could destroy the
                    // replies the peer has not read yet.
                    tokio::select! {
                        biased;
                        () = &mut stopped => {}
                        () = discard(&mut frames) => {}
                    }
                    return;
                }
                () = &mut idle_timer, if idle.is_some() => {
                    let due = last_frame + idle.unwrap_or_default();
                    if tokio::time::Instant::now() < due {
                        idle_timer.as_mut().reset(due);
                        continue;
                    }
                    tracing::debug!(target: "repod::server", "idle: closing");
                    if events.send(ConnEvent::Closed(id, CloseReason::Idle)).is_ok() {
                        linger(&mut frames, &mut stopped).await;
                    }
                    return;
                }
                next = frames.next_frame() => next,
            }
        } else {
            // Take more only if it is ready now; otherwise hand over what we have.
            match frames.next_frame().now_or_never() {
                Some(next) => next,
                None => {
                    if batch.send(id, &events).is_err() {
                        return;
                    }
                    continue;
                }
            }
        };
        let event = match next {
            None => ConnEvent::Closed(id, CloseReason::PeerClosed),
            Some(Ok(payload)) => {
                if idle.is_some() {
                    last_frame = tokio::time::Instant::now();
                }
                if let Some(limiter) = &limiter {
                    let verdict = limiter.check(payload.len());
                    if verdict != Verdict::Pass {
                        // Hand over what came before, in order, then slow down or cut.
                        if !batch.msgs.is_empty() && batch.send(id, &events).is_err() {
                            return;
                        }
                        match limiter.policy {
                            RatePolicy::Disconnect => {
                                tracing::warn!(target: "repod::server", "rate limited: disconnecting");
                                if events
                                    .send(ConnEvent::Closed(id, CloseReason::RateLimited))
                                    .is_ok()
                                {
                                    linger(&mut frames, &mut stopped).await;
                                }
                                return;
                            }
                            _ => {
                                tracing::trace!(target: "repod::server", "rate limited: throttling");
                                tokio::select! {
                                    biased;
                                    () = &mut stopped => return,
                                    () = limiter.wait(verdict, payload.len()) => {}
                                }
                            }
                        }
                    }
                }
                let cost = (payload.len() + MESSAGE_OVERHEAD).min(budget) as u32;
                let permit = match semaphore.clone().try_acquire_many_owned(cost) {
                    Ok(permit) => permit,
                    Err(_) => {
                        // The budget is spent: hand over what is decoded, then wait until the
                        // loop has handled enough. A flooding peer is throttled here, and the
                        // kernel's buffers push back on it, instead of memory growing.
                        if !batch.msgs.is_empty() && batch.send(id, &events).is_err() {
                            return;
                        }
                        let permit = tokio::select! {
                            biased;
                            () = &mut stopped => return,
                            permit = semaphore.clone().acquire_many_owned(cost) => permit,
                        };
                        let Ok(permit) = permit else { return };
                        permit
                    }
                };
                match config.codec.decode_raw(payload) {
                    Ok(msg) => {
                        tracing::trace!(target: "repod::server", action = msg.action(), len = msg.payload().len(), "received");
                        if msg.action() == Heartbeat::ACTION
                            || config.login_action == Some(msg.action())
                        {
                            // Answered through the loop, never dispatched.
                            let event = if msg.action() == Heartbeat::ACTION {
                                heartbeat(id, &msg, config, permit)
                            } else {
                                Some(ConnEvent::Notice(id, "already authenticated", permit))
                            };
                            if !batch.msgs.is_empty() && batch.send(id, &events).is_err() {
                                return;
                            }
                            if let Some(event) = event {
                                if events.send(event).is_err() {
                                    return;
                                }
                            }
                            continue;
                        }
                        // The body is decoded here, on the connection's task, not on the loop.
                        batch.push(Ch::decode(msg), permit);
                        if batch.msgs.len() >= READ_BATCH && batch.send(id, &events).is_err() {
                            return;
                        }
                        continue;
                    }
                    Err(error) => ConnEvent::Protocol(id, ChannelError::Codec(error)),
                }
            }
            Some(Err(FrameError::Io(error))) => ConnEvent::Closed(id, io_reason(&error)),
            Some(Err(error)) => ConnEvent::Protocol(id, ChannelError::from(&error)),
        };
        // The connection ends: deliver what arrived before the end, then the end.
        if batch.msgs.is_empty() || batch.send(id, &events).is_ok() {
            let _ = events.send(event);
        }
        return;
    }
}

/// The loop's event for a heartbeat: the round trip it reports and the answer. A heartbeat
/// whose body does not decode is dropped (it still counted as a sign of life).
fn heartbeat<I>(
    id: ChannelId,
    msg: &crate::codec::RawMessage,
    config: ConnConfig,
    permit: OwnedSemaphorePermit,
) -> Option<ConnEvent<I>> {
    let beat = msg.decode::<Heartbeat>().ok()?;
    let rtt = (beat.rtt_us > 0).then(|| Duration::from_micros(beat.rtt_us));
    let ack = config
        .codec
        .encode(&HeartbeatAck { t: beat.t }, config.max_frame_len)
        .ok()?;
    Some(ConnEvent::Heartbeat(id, rtt, ack, permit))
}

/// Until the writer is done, reads and drops what the peer still sends, so the socket closes
/// with a FIN rather than a reset that could destroy the last replies.
async fn linger<R: FrameReader>(
    frames: &mut R,
    stopped: &mut std::pin::Pin<&mut tokio_util::sync::WaitForCancellationFuture<'_>>,
) {
    tokio::select! {
        biased;
        () = stopped.as_mut() => {}
        () = discard(frames) => {}
    }
}

/// The inbound budget of one connection, in bytes: the configured one, but never less than
/// one message of the largest size (a frame must always fit).
pub(crate) fn inbound_budget(inbound_bytes: usize, max_frame_len: usize) -> usize {
    inbound_bytes
        .max(max_frame_len + MESSAGE_OVERHEAD)
        .min(u32::MAX as usize)
}

/// Messages decoded but not yet handed to the dispatch loop, with their merged permit.
struct Batch<I> {
    msgs: Vec<I>,
    permit: Option<OwnedSemaphorePermit>,
}

impl<I> Default for Batch<I> {
    fn default() -> Self {
        Batch {
            msgs: Vec::new(),
            permit: None,
        }
    }
}

impl<I> Batch<I> {
    fn push(&mut self, msg: I, permit: OwnedSemaphorePermit) {
        self.msgs.push(msg);
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
    }

    /// Sends the batch as one event; a single message avoids the vector.
    fn send(
        &mut self,
        id: ChannelId,
        events: &mpsc::UnboundedSender<ConnEvent<I>>,
    ) -> Result<(), ()> {
        let Some(permit) = self.permit.take() else {
            return Ok(());
        };
        let event = if self.msgs.len() == 1 {
            let msg = self.msgs.pop().expect("a batch of one holds one message");
            ConnEvent::Message(id, msg, permit)
        } else {
            ConnEvent::Messages(id, std::mem::take(&mut self.msgs), permit)
        };
        events.send(event).map_err(|_| ())
    }
}

fn io_reason(error: &io::Error) -> CloseReason {
    match error.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => CloseReason::PeerClosed,
        _ => CloseReason::Io(error.to_string()),
    }
}

/// A connection's writer and what it must release when it ends.
struct Writer<I> {
    id: ChannelId,
    events: mpsc::UnboundedSender<ConnEvent<I>>,
    reader_stop: CancellationToken,
    close_timeout: Duration,
    /// Dropped when the writer ends: the shutdown wait and the open-connection count.
    _guards: (mpsc::Sender<()>, OpenGuard),
}

impl<I> Writer<I> {
    async fn run<W: FrameWriter>(self, write: W, mut outbox: OutboxReceiver) {
        match write_outbox(write, &mut outbox, self.close_timeout).await {
            WriteEnd::Closed => {
                tracing::trace!(target: "repod::server", "writer flushed and closed")
            }
            WriteEnd::Failed(error) => {
                tracing::debug!(target: "repod::server", %error, "write failed");
                let _ = self
                    .events
                    .send(ConnEvent::Closed(self.id, io_reason(&error)));
            }
            WriteEnd::Reset { timed_out: true } => {
                tracing::debug!(target: "repod::server", timeout = ?self.close_timeout, "close timeout: dropping what the peer did not read");
            }
            WriteEnd::Reset { timed_out: false } | WriteEnd::Dropped => {
                tracing::trace!(target: "repod::server", "writer stopped")
            }
        }
        self.reader_stop.cancel();
    }
}
