//! A connection's bounded outbound queue of encoded frames.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue is at its frame or byte limit: the peer is not reading fast enough.
    Full,
    /// The connection is closing or closed: nothing more is taken.
    Closed,
}

/// How a connection was told to stop at once, as seen by its writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopMode {
    /// [`Outbox::cancel`]: stop writing and close the socket the ordinary way.
    Drop,
    /// [`Outbox::abort`] or a cancelled parent token: reset the connection, discarding
    /// whatever is still unsent, in the queue and in the kernel.
    Reset,
}

const STOP_UNSET: u8 = 0;
const STOP_DROP: u8 = 1;
const STOP_RESET: u8 = 2;

/// The sending side of a connection's outbound queue, bounded by frames and by bytes.
///
/// Pushing never waits: a full queue is reported at once, so neither the dispatch loop nor
/// other peers ever wait on a slow reader. How the connection ends is chosen here:
///
/// * dropping the `Outbox`, or [`close`](Outbox::close), ends it gracefully: the writer sends
///   what is queued, then closes the connection;
/// * [`cancel`](Outbox::cancel) drops it at once, sending nothing more;
/// * [`abort`](Outbox::abort) resets it at once: nothing more is sent, and what the system still
///   holds for the peer is discarded (a TCP reset).
#[derive(Debug)]
pub struct Outbox {
    tx: mpsc::Sender<Bytes>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
    cancel: CancellationToken,
    stop_mode: Arc<AtomicU8>,
    closing: CancellationToken,
}

/// The receiving side of an [`Outbox`], owned by the connection's writer (or by a test).
#[derive(Debug)]
pub struct OutboxReceiver {
    rx: mpsc::Receiver<Bytes>,
    queued: Arc<AtomicUsize>,
    cancel: CancellationToken,
    stop_mode: Arc<AtomicU8>,
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
    /// token, so cancelling the parent stops every connection at once. A connection stopped
    /// through its token from outside is reset, as by [`abort`](Outbox::abort).
    pub fn with_cancel_token(
        max_frames: usize,
        max_bytes: usize,
        cancel: CancellationToken,
    ) -> (Outbox, OutboxReceiver) {
        let (tx, rx) = mpsc::channel(max_frames.max(1));
        let queued = Arc::new(AtomicUsize::new(0));
        let closing = CancellationToken::new();
        let stop_mode = Arc::new(AtomicU8::new(STOP_UNSET));
        (
            Outbox {
                tx,
                queued: queued.clone(),
                max_bytes,
                cancel: cancel.clone(),
                stop_mode: stop_mode.clone(),
                closing: closing.clone(),
            },
            OutboxReceiver {
                rx,
                queued,
                cancel,
                stop_mode,
                closing,
            },
        )
    }

    /// Queues one encoded frame without waiting.
    ///
    /// A frame that was queued is written unless the connection is cancelled, aborted or
    /// breaks first; after [`close`](Outbox::close), pushing fails with [`PushError::Closed`].
    pub fn push(&self, frame: Bytes) -> Result<(), PushError> {
        if self.closing.is_cancelled() {
            return Err(PushError::Closed);
        }
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

    /// Closes the connection gracefully, as dropping the `Outbox` does: nothing more is queued,
    /// and the writer sends what is queued (within its close deadline), then closes.
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Whether [`close`](Outbox::close) was called (or the connection was otherwise told to
    /// close gracefully).
    pub fn is_closing(&self) -> bool {
        self.closing.is_cancelled()
    }

    /// Drops the connection at once, without sending what is queued. What the system already
    /// took for the peer may still be delivered before the connection closes.
    pub fn cancel(&self) {
        let _ = self.stop_mode.compare_exchange(
            STOP_UNSET,
            STOP_DROP,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.cancel.cancel();
    }

    /// Resets the connection at once: nothing more is sent, and what the system still holds
    /// for the peer is discarded (for TCP, the socket closes with a reset), so the peer learns
    /// at once that it was cut off and no unsent data stays behind.
    pub fn abort(&self) {
        self.stop_mode.store(STOP_RESET, Ordering::Release);
        self.cancel.cancel();
    }

    /// The token cancelled when the connection must stop at once.
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
    /// The token cancelled when the connection is closing gracefully ([`Outbox::close`], or
    /// the `Outbox` dropped): the writer should finish what is queued (within a deadline) and
    /// stop.
    pub fn closing_token(&self) -> &CancellationToken {
        &self.closing
    }

    /// Waits for the next frame; `None` once the queue is closed (the `Outbox` dropped, or
    /// [`close`](OutboxReceiver::close) called) and empty.
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

    /// Closes the queue: every later push fails with [`PushError::Closed`], while the frames
    /// already queued (pushes that succeeded) can still be received.
    pub fn close(&mut self) {
        self.rx.close();
    }

    /// The token cancelled when the connection must stop at once.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// How the connection was told to stop, once its cancel token is cancelled.
    pub(crate) fn stop_mode(&self) -> StopMode {
        match self.stop_mode.load(Ordering::Acquire) {
            STOP_DROP => StopMode::Drop,
            _ => StopMode::Reset,
        }
    }
}
