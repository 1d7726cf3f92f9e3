//! One connection's reader and writer tasks.
//!
//! The reader decodes frames and payloads off the dispatch loop and forwards them; the writer
//! drains the connection's outbox into the socket. Neither waits on a timer.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::{FutureExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::hub::ChannelId;
use super::outbox::OutboxReceiver;
use crate::codec::{Codec, CodecKind};
use crate::dispatch::Channel;
use crate::error::{ChannelError, CloseReason, FrameError};
use crate::frame::{FrameCodec, FrameConfig};

/// What a connection's tasks tell the dispatch loop; `I` is the channel's decoded message.
pub(crate) enum ConnEvent<I> {
    /// A decoded message; the permit returns its share of the inbound budget when dropped.
    Message(ChannelId, I, OwnedSemaphorePermit),
    /// Several messages of one connection, in order, under one permit.
    Messages(ChannelId, Vec<I>, OwnedSemaphorePermit),
    /// The peer broke the protocol: the loop reports it, replies with an error and closes.
    Protocol(ChannelId, ChannelError),
    /// The connection ended (end of stream or i/o error).
    Closed(ChannelId, CloseReason),
}

/// The fixed cost charged to the inbound budget for each message, on top of its payload.
pub(crate) const MESSAGE_OVERHEAD: usize = 64;

/// The most messages handed to the dispatch loop in one event.
const READ_BATCH: usize = 64;

/// Frames queued together are copied into one buffer of up to this many bytes per write.
const WRITE_BATCH: usize = 64 * 1024;

/// A writer keeps its coalescing buffer between bursts only up to this capacity. Under a
/// backlog every connection's writer fills one; kept at full size, 10,000 of them held
/// hundreds of MiB long after the backlog was gone.
const KEEP_WRITE_BUF: usize = 4096;

/// Settings a connection's tasks need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnConfig {
    pub(crate) codec: CodecKind,
    pub(crate) max_frame_len: usize,
    pub(crate) inbound_bytes: usize,
    pub(crate) close_timeout: Duration,
}

/// Counts a connection from its acceptance until its socket is closed (the writer's end).
pub(crate) struct OpenGuard(Arc<AtomicUsize>);

impl OpenGuard {
    pub(crate) fn new(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::AcqRel);
        OpenGuard(open.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Spawns the reader and writer tasks of an accepted connection.
pub(crate) fn spawn<Ch: Channel>(
    id: ChannelId,
    stream: tokio::net::TcpStream,
    outbox: OutboxReceiver,
    config: ConnConfig,
    events: mpsc::UnboundedSender<ConnEvent<Ch::Inbound>>,
    writer_guard: mpsc::Sender<()>,
    open: OpenGuard,
) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let span = tracing::debug_span!(target: "repod::server", "conn", conn_id = id.get(), %peer);
    let (read, write) = stream.into_split();
    // The reader stops forwarding as soon as the channel is closed (its outbox dropped), and
    // stops reading when the writer is done.
    let reader_stop = CancellationToken::new();
    let closing = outbox.closing_token().clone();
    tokio::spawn(
        read_loop::<Ch>(
            id,
            read,
            config,
            events.clone(),
            closing,
            reader_stop.clone(),
        )
        .instrument(span.clone()),
    );
    let writer = Writer {
        id,
        events,
        reader_stop,
        close_timeout: config.close_timeout,
        _guards: (writer_guard, open),
    };
    tokio::spawn(writer.run(write, outbox).instrument(span));
}

async fn read_loop<Ch: Channel>(
    id: ChannelId,
    read: OwnedReadHalf,
    config: ConnConfig,
    events: mpsc::UnboundedSender<ConnEvent<Ch::Inbound>>,
    closing: CancellationToken,
    stop: CancellationToken,
) {
    // Every message is charged its full size, so the budget must fit the largest frame.
    let budget = inbound_budget(config.inbound_bytes, config.max_frame_len);
    let semaphore = Arc::new(Semaphore::new(budget));
    let mut frames = FramedRead::new(
        read,
        FrameCodec::new(FrameConfig::with_max_frame_len(config.max_frame_len)),
    );
    // One cancellation future for the whole loop, not one per message.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    let closed = closing.cancelled();
    tokio::pin!(closed);
    // Messages decoded from one read are handed to the loop together: one event, one permit.
    let mut batch = Batch::<Ch::Inbound>::default();
    loop {
        let next = if batch.msgs.is_empty() {
            tokio::select! {
                biased;
                () = &mut stopped => return,
                () = &mut closed => {
                    discard_until(frames.get_mut(), &stop).await;
                    return;
                }
                next = frames.next() => next,
            }
        } else {
            // Take more only if it is ready now; otherwise hand over what we have.
            match frames.next().now_or_never() {
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

/// After the channel is closed, reads and drops what the peer still sends until the writer is
/// done, so the socket closes with a FIN rather than a reset that could destroy the replies
/// the peer has not read yet.
async fn discard_until(read: &mut OwnedReadHalf, stop: &CancellationToken) {
    let mut sink = [0u8; 4096];
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            n = read.read(&mut sink) => match n {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
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
    async fn run(self, mut write: OwnedWriteHalf, mut outbox: OutboxReceiver) {
        let cancel = outbox.cancel_token().clone();
        let closing = outbox.closing_token().clone();
        let close_timeout = self.close_timeout;
        // Once the channel is closed, what is left must be written within the close timeout.
        let deadline = async move {
            closing.cancelled().await;
            tokio::time::sleep(close_timeout).await;
        };
        let flush_and_close = async {
            write_frames(&mut write, &mut outbox).await?;
            // The outbox was dropped and everything queued is written: close our side.
            write.shutdown().await
        };
        let result = tokio::select! {
            biased;
            () = cancel.cancelled() => None,
            () = deadline => {
                tracing::debug!(target: "repod::server", timeout = ?close_timeout, "close timeout: dropping what the peer did not read");
                None
            }
            result = flush_and_close => Some(result),
        };
        match result {
            Some(Ok(())) => tracing::trace!(target: "repod::server", "writer flushed and closed"),
            Some(Err(error)) => {
                tracing::debug!(target: "repod::server", %error, "write failed");
                let _ = self
                    .events
                    .send(ConnEvent::Closed(self.id, io_reason(&error)));
            }
            None => tracing::trace!(target: "repod::server", "writer stopped"),
        }
        self.reader_stop.cancel();
    }
}

/// Writes frames until the outbox is dropped and empty. Every frame already queued is put in
/// the same write; nothing waits for more to arrive.
async fn write_frames(write: &mut OwnedWriteHalf, outbox: &mut OutboxReceiver) -> io::Result<()> {
    let mut buf = BytesMut::new();
    while let Some(first) = outbox.recv().await {
        let Some(second) = outbox.try_recv() else {
            write.write_all(&first).await?;
            continue;
        };
        buf.extend_from_slice(&first);
        buf.extend_from_slice(&second);
        loop {
            while buf.len() < WRITE_BATCH {
                match outbox.try_recv() {
                    Some(frame) => buf.extend_from_slice(&frame),
                    None => break,
                }
            }
            write.write_all(&buf).await?;
            let more = buf.len() >= WRITE_BATCH;
            buf.clear();
            if !more {
                break;
            }
        }
        if buf.capacity() > KEEP_WRITE_BUF {
            buf = BytesMut::new();
        }
    }
    write.flush().await
}
