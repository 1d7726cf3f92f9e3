//! The connection task shared by [`Client`](super::Client) and [`AsyncClient`](super::AsyncClient).
//!
//! One task owns the socket: a reader turning frames into events on a bounded channel, and a
//! writer draining the send queue. The task ends when either side closes, then raises
//! `disconnected` as the last event.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::codec::{Codec, CodecKind};
use crate::error::{ConnectError, FrameError, SendError};
use crate::frame::{FrameCodec, FrameConfig};
use crate::message::{Connected, Disconnected, ErrorMessage, Message, RawMessage, SocketConnect};
use crate::server::{Outbox, OutboxReceiver, PushError};

const CONNECTING: u8 = 0;
const CONNECTED: u8 = 1;
const CLOSED: u8 = 2;

/// Capacity of the writer's buffer: frames are copied into it and written in one go.
const WRITE_BUFFER: usize = 64 * 1024;

/// The state shared by a client's handles and its connection task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) outbox: Outbox,
    pub(crate) codec: CodecKind,
    pub(crate) max_frame_len: usize,
    state: AtomicU8,
    /// Held for reading while a send checks the state and pushes, for writing while the state
    /// becomes `CLOSED`: a push that succeeded is in the queue before the writer's final drain.
    send_gate: RwLock<()>,
    close: CancellationToken,
}

impl Shared {
    pub(crate) fn new(outbox: Outbox, codec: CodecKind, max_frame_len: usize) -> Self {
        Shared {
            outbox,
            codec,
            max_frame_len,
            state: AtomicU8::new(CONNECTING),
            send_gate: RwLock::new(()),
            close: CancellationToken::new(),
        }
    }

    /// Encodes and queues a message; never waits.
    ///
    /// `Ok` means the frame will be written unless the connection breaks: once the writer has
    /// taken its last frames, [`stop_sending`](Shared::stop_sending) has run and every later
    /// send fails with [`SendError::Closed`].
    pub(crate) fn send<M: Message + ?Sized>(&self, msg: &M) -> Result<(), SendError> {
        if self.close.is_cancelled() {
            return Err(SendError::Closed);
        }
        let frame = self.codec.encode(msg, self.max_frame_len)?;
        // The check and the push happen under the gate, so `stop_sending` cannot slip between.
        let _gate = self.send_gate.read().unwrap_or_else(|e| e.into_inner());
        if self.state.load(Ordering::Acquire) == CLOSED || self.close.is_cancelled() {
            return Err(SendError::Closed);
        }
        self.outbox.push(frame).map_err(|e| match e {
            PushError::Full => SendError::QueueFull,
            PushError::Closed => SendError::Closed,
        })
    }

    /// Asks the task to flush what is queued and close.
    pub(crate) fn close(&self) {
        self.close.cancel();
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.state.load(Ordering::Acquire) == CONNECTED && !self.close.is_cancelled()
    }

    /// Marks the connection established (the TCP connect succeeded).
    pub(crate) fn mark_connected(&self) {
        self.set_state(CONNECTED);
    }

    /// Refuses every later send; waits for sends already checking the state to finish
    /// pushing. Called before the last frames are taken from the queue.
    fn stop_sending(&self) {
        let _gate = self.send_gate.write().unwrap_or_else(|e| e.into_inner());
        self.set_state(CLOSED);
    }

    fn set_state(&self, state: u8) {
        self.state.store(state, Ordering::Release);
    }
}

/// Settings the connection task needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskConfig {
    pub(crate) connect_timeout: Duration,
    pub(crate) close_timeout: Duration,
}

/// Opens the TCP connection, bounded by `timeout`.
pub(crate) async fn connect<A: ToSocketAddrs>(
    addr: A,
    label: &str,
    timeout: Duration,
) -> Result<TcpStream, ConnectError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(source)) => Err(ConnectError::Io {
            addr: label.to_owned(),
            source,
        }),
        Err(_) => Err(ConnectError::Timeout {
            addr: label.to_owned(),
            after: timeout,
        }),
    }
}

/// The whole life of a game-loop client's connection: connect, then [`run`].
///
/// A failed connect raises `error` then `disconnected`, never `connected`.
pub(crate) async fn connect_and_run<A: ToSocketAddrs>(
    addr: A,
    label: String,
    shared: Arc<Shared>,
    outbox: OutboxReceiver,
    events: mpsc::Sender<RawMessage>,
    config: TaskConfig,
) {
    let result = {
        let connecting = connect(addr, &label, config.connect_timeout);
        tokio::pin!(connecting);
        tokio::select! {
        result = &mut connecting => Some(result),
        () = shared.close.cancelled() => {
            // Closed while connecting: still deliver what was queued, within the close
            // timeout; with nothing queued, give up at once.
            if shared.outbox.queued_bytes() > 0 {
                tokio::time::timeout(config.close_timeout, &mut connecting).await.ok()
            } else {
                None
            }
        }
        }
    };
    let stream = match result {
        Some(Ok(stream)) => stream,
        Some(Err(error)) => {
            tracing::debug!(target: "repod::client", addr = %label, %error, "connect failed");
            shared.stop_sending();
            drop(outbox);
            let reason = error.to_string();
            emit(&events, shared.codec, &ErrorMessage::new(reason.clone())).await;
            emit(&events, shared.codec, &Disconnected { reason }).await;
            return;
        }
        None => {
            tracing::debug!(target: "repod::client", addr = %label, "closed while connecting");
            shared.stop_sending();
            drop(outbox);
            let reason = "closed by client".to_owned();
            emit(&events, shared.codec, &Disconnected { reason }).await;
            return;
        }
    };
    run(stream, label, shared, outbox, events, config).await;
}

/// Drives an established connection until either side closes it.
pub(crate) async fn run(
    stream: TcpStream,
    label: String,
    shared: Arc<Shared>,
    mut outbox: OutboxReceiver,
    events: mpsc::Sender<RawMessage>,
    config: TaskConfig,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::warn!(target: "repod::client", addr = %label, %error, "cannot set TCP_NODELAY");
    }
    tracing::debug!(target: "repod::client", addr = %label, "connected");
    shared.mark_connected();
    emit(&events, shared.codec, &SocketConnect).await;
    emit(&events, shared.codec, &Connected).await;

    let (read_half, write_half) = stream.into_split();
    let frames = FrameCodec::new(FrameConfig::with_max_frame_len(shared.max_frame_len));
    let reader = FramedRead::new(read_half, frames);
    let close_deadline = async {
        shared.close.cancelled().await;
        tokio::time::sleep(config.close_timeout).await;
    };
    let reason = {
        let read = read_loop(reader, &events, shared.codec);
        let write = write_loop(write_half, &mut outbox, &shared);
        tokio::pin!(close_deadline, read, write);
        let timed_out = || {
            format!(
                "closed by client (flush timed out after {:?})",
                config.close_timeout
            )
        };
        tokio::select! {
            reason = &mut read => reason,
            (reason, clean) = &mut write => {
                if clean {
                    // Our side is shut; keep reading until the server closes too, so that data
                    // still arriving cannot make our socket reset the connection before the
                    // server has read everything we sent.
                    tokio::select! {
                        _ = &mut read => {}
                        () = &mut close_deadline => {}
                    }
                }
                reason
            }
            () = &mut close_deadline => timed_out(),
        }
    };
    shared.stop_sending();
    drop(outbox);
    tracing::debug!(target: "repod::client", addr = %label, %reason, "disconnected");
    emit(&events, shared.codec, &Disconnected { reason }).await;
}

/// Reads frames into events until the peer closes or breaks the protocol; returns the reason.
async fn read_loop(
    mut reader: FramedRead<OwnedReadHalf, FrameCodec>,
    events: &mpsc::Sender<RawMessage>,
    codec: CodecKind,
) -> String {
    let mut first = true;
    loop {
        let payload = match reader.next().await {
            None => return "closed by peer".to_owned(),
            Some(Ok(payload)) => payload,
            Some(Err(FrameError::Io(error))) => return format!("i/o error: {error}"),
            Some(Err(error)) => {
                tracing::warn!(target: "repod::client", %error, "broken frame from server");
                emit(events, codec, &ErrorMessage::new(error.to_string())).await;
                return format!("protocol error: {error}");
            }
        };
        let is_first = std::mem::replace(&mut first, false);
        match codec.decode_raw(payload) {
            Ok(raw) if is_first && raw.action() == Connected::ACTION => {
                tracing::trace!(target: "repod::client", "server greeting received");
            }
            Ok(raw) => {
                tracing::trace!(target: "repod::client", action = raw.action(), len = raw.payload().len(), "received");
                // A closed receiver means the client is gone: keep reading so the writer can
                // finish flushing, and drop what arrives.
                let _ = events.send(raw).await;
            }
            Err(error) => {
                tracing::warn!(target: "repod::client", %error, "undecodable message from server");
                let text = format!("undecodable message from server: {error}");
                emit(events, codec, &ErrorMessage::new(text)).await;
            }
        }
    }
}

/// Writes queued frames as soon as they are queued; on close, flushes the rest and shuts the
/// socket's write side. Returns the reason the connection ended, and whether the close was
/// clean (everything flushed and the write side shut).
async fn write_loop(
    write_half: OwnedWriteHalf,
    outbox: &mut OutboxReceiver,
    shared: &Shared,
) -> (String, bool) {
    let close = &shared.close;
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, write_half);
    loop {
        tokio::select! {
            biased;
            frame = outbox.recv() => match frame {
                Some(frame) => {
                    if let Err(error) = write_batch(&mut out, frame, outbox).await {
                        return (format!("i/o error: {error}"), false);
                    }
                }
                None => break,
            },
            () = close.cancelled() => break,
        }
    }
    // From here on sends fail; every send that succeeded has pushed its frame, and the drain
    // below takes it.
    shared.stop_sending();
    let flushed = async {
        while let Some(frame) = outbox.try_recv() {
            out.write_all(&frame).await?;
        }
        out.flush().await?;
        out.shutdown().await
    };
    match flushed.await {
        Ok(()) => ("closed by client".to_owned(), true),
        Err(error) => (format!("i/o error while closing: {error}"), false),
    }
}

/// Writes `first` and every frame queued behind it, then flushes once.
async fn write_batch(
    out: &mut BufWriter<OwnedWriteHalf>,
    first: bytes::Bytes,
    outbox: &mut OutboxReceiver,
) -> std::io::Result<()> {
    out.write_all(&first).await?;
    let mut count = 1usize;
    while let Some(frame) = outbox.try_recv() {
        out.write_all(&frame).await?;
        count += 1;
    }
    out.flush().await?;
    tracing::trace!(target: "repod::client", frames = count, "flushed");
    Ok(())
}

/// Raises a local event; dropped silently when the client is gone.
async fn emit<M: Message + ?Sized>(events: &mpsc::Sender<RawMessage>, codec: CodecKind, msg: &M) {
    match RawMessage::from_message(codec, msg) {
        Ok(raw) => {
            let _ = events.send(raw).await;
        }
        Err(error) => {
            tracing::error!(target: "repod::client", action = M::ACTION, %error, "cannot encode local event")
        }
    }
}

/// A printable form of a connect target, for errors and logs.
pub(crate) fn label<A: fmt::Debug>(addr: &A) -> String {
    let text = format!("{addr:?}");
    text.trim_matches('"').to_owned()
}
