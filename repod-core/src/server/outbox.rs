//! A connection's bounded outbound queue of encoded frames.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue is at its frame or byte limit: the peer is not reading fast enough.
    Full,
    /// The writer is gone.
    Closed,
}

/// The sending side of a connection's outbound queue, bounded by frames and by bytes.
///
/// Pushing never waits: a full queue is reported at once, so neither the dispatch loop nor
/// other peers ever wait on a slow reader. Dropping the `Outbox` lets the writer send what is
/// queued and then close; [`cancel`](Outbox::cancel) drops the connection at once.
#[derive(Debug)]
pub struct Outbox {
    tx: mpsc::Sender<Bytes>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
    cancel: CancellationToken,
    closing: CancellationToken,
}

/// The receiving side of an [`Outbox`], owned by the connection's writer (or by a test).
#[derive(Debug)]
pub struct OutboxReceiver {
    rx: mpsc::Receiver<Bytes>,
    queued: Arc<AtomicUsize>,
    cancel: CancellationToken,
    closing: CancellationToken,
}

impl Outbox {
    /// A queue holding at most `max_frames` frames and `max_bytes` bytes.
    ///
    /// A single frame larger than `max_bytes` is accepted when the queue is empty.
    pub fn new(max_frames: usize, max_bytes: usize) -> (Outbox, OutboxReceiver) {
        Self::with_cancel_token(max_frames, max_bytes, CancellationToken::new())
    }

    /// Like [`new`](Outbox::new), with a given cancel token, e.g. a child of a server-wide
    /// token, so cancelling the parent drops every connection at once.
    pub fn with_cancel_token(
        max_frames: usize,
        max_bytes: usize,
        cancel: CancellationToken,
    ) -> (Outbox, OutboxReceiver) {
        let (tx, rx) = mpsc::channel(max_frames.max(1));
        let queued = Arc::new(AtomicUsize::new(0));
        let closing = CancellationToken::new();
        (
            Outbox {
                tx,
                queued: queued.clone(),
                max_bytes,
                cancel: cancel.clone(),
                closing: closing.clone(),
            },
            OutboxReceiver {
                rx,
                queued,
                cancel,
                closing,
            },
        )
    }

    /// Queues one encoded frame without waiting.
    pub fn push(&self, frame: Bytes) -> Result<(), PushError> {
        let len = frame.len();
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.max_bytes {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return Err(PushError::Full);
        }
        match self.tx.try_send(frame) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.queued.fetch_sub(len, Ordering::AcqRel);
                Err(match e {
                    mpsc::error::TrySendError::Full(_) => PushError::Full,
                    mpsc::error::TrySendError::Closed(_) => PushError::Closed,
                })
            }
        }
    }

    /// Bytes queued and not yet taken by the writer.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Drops the connection at once, without flushing.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// The token cancelled when the connection must stop.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }
}

impl Drop for Outbox {
    /// Tells the receiving side that nothing more will be queued: the connection is closing.
    fn drop(&mut self) {
        self.closing.cancel();
    }
}

impl OutboxReceiver {
    /// The token cancelled when the [`Outbox`] is dropped: the connection is closing, and the
    /// writer should finish what is queued (within a deadline) and stop.
    pub fn closing_token(&self) -> &CancellationToken {
        &self.closing
    }

    /// Waits for the next frame; `None` once the `Outbox` is dropped and the queue is empty.
    pub async fn recv(&mut self) -> Option<Bytes> {
        let frame = self.rx.recv().await?;
        self.queued.fetch_sub(frame.len(), Ordering::AcqRel);
        Some(frame)
    }

    /// Takes the next frame if one is queued.
    pub fn try_recv(&mut self) -> Option<Bytes> {
        let frame = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(frame.len(), Ordering::AcqRel);
        Some(frame)
    }

    /// The token cancelled when the connection must stop at once.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }
}
