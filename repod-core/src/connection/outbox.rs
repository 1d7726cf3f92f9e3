//! A connection's bounded outbound queue of encoded frames, and its optional direct path.
//!
//! # Direct writes
//!
//! An outbox made with [`Outbox::with_direct_writes`] lets a send skip the queue: when nothing
//! is queued and the writer is idle, [`Outbox::push`] writes the frame to the transport itself,
//! on the sending thread, without waiting (a non-blocking write). A frame the transport does not
//! take whole is queued (what is left of it), and the writer finishes it. So a lone message
//! leaves at once, without waking the writer's task, which on a multi-thread runtime is often
//! on another thread.
//!
//! Order holds because one lock covers both ways out: a direct write happens only under it,
//! and only while the writer is idle; every frame queued under it marks the writer busy, and
//! only the writer marks itself idle again, under the lock, once it found the queue empty
//! after writing everything it took. A graceful close turns the direct path off under the same
//! lock before the final drain, so no frame can pass the final flush or the end of the stream.
//!
//! After [`DIRECT_STREAK`] direct writes in a row (without the writer running or a frame
//! arriving from the peer), sends queue again, so a burst of sends is written in batches by the
//! writer rather than by one system call each on the sending thread.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, Bytes};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::transport::DirectSink;

/// Direct writes in a row after which sends queue again (see the module docs).
pub(crate) const DIRECT_STREAK: u32 = 16;

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
    direct: Option<Arc<Direct>>,
}

/// The receiving side of an [`Outbox`], owned by the connection's writer (or by a test).
#[derive(Debug)]
pub struct OutboxReceiver {
    rx: mpsc::Receiver<Bytes>,
    queued: Arc<AtomicUsize>,
    cancel: CancellationToken,
    stop_mode: Arc<AtomicU8>,
    closing: CancellationToken,
    direct: Option<Arc<Direct>>,
}

/// The direct path of an outbox (see the module docs).
#[derive(Default)]
struct Direct {
    state: Mutex<DirectState>,
    /// Direct writes since the writer last went idle or a frame arrived from the peer.
    streak: AtomicU32,
}

#[derive(Default)]
struct DirectState {
    /// Where direct writes go, while the writer runs and the connection is open.
    sink: Option<Arc<dyn DirectSink>>,
    /// Frames are queued, or the writer still holds frames it took: sends queue behind them.
    busy: bool,
}

impl Direct {
    fn lock(&self) -> MutexGuard<'_, DirectState> {
        // Nothing panics while holding the lock; recover the state if something did.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for Direct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Direct")
            .field("attached", &state.sink.is_some())
            .field("busy", &state.busy)
            .field("streak", &self.streak.load(Ordering::Relaxed))
            .finish()
    }
}

/// Detaches a writer's direct sink when dropped: no direct write happens after it.
pub(crate) struct DirectAttachment(Option<Arc<Direct>>);

impl Drop for DirectAttachment {
    fn drop(&mut self) {
        if let Some(direct) = &self.0 {
            let mut state = direct.lock();
            state.sink = None;
            state.busy = true;
        }
    }
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
        Self::build(max_frames, max_bytes, cancel, None)
    }

    /// Like [`new`](Outbox::new), with the direct path: a push made while nothing is queued and
    /// the writer is idle writes to the transport at once, on the pushing thread (see the
    /// module docs).
    pub(crate) fn with_direct_writes(
        max_frames: usize,
        max_bytes: usize,
    ) -> (Outbox, OutboxReceiver) {
        let direct = Some(Arc::new(Direct::default()));
        Self::build(max_frames, max_bytes, CancellationToken::new(), direct)
    }

    fn build(
        max_frames: usize,
        max_bytes: usize,
        cancel: CancellationToken,
        direct: Option<Arc<Direct>>,
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
                direct: direct.clone(),
            },
            OutboxReceiver {
                rx,
                queued,
                cancel,
                stop_mode,
                closing,
                direct,
            },
        )
    }

    /// Queues one encoded frame without waiting.
    ///
    /// A frame that was queued is written unless the connection is cancelled, aborted or
    /// breaks first; after [`close`](Outbox::close), pushing fails with [`PushError::Closed`].
    ///
    /// With the direct path, the frame may have been written to the transport already when
    /// this returns.
    pub fn push(&self, frame: Bytes) -> Result<(), PushError> {
        if self.closing.is_cancelled() {
            return Err(PushError::Closed);
        }
        match &self.direct {
            None => self.enqueue(frame),
            Some(direct) => self.push_direct(direct, frame),
        }
    }

    fn push_direct(&self, direct: &Direct, mut frame: Bytes) -> Result<(), PushError> {
        let mut state = direct.lock();
        if !state.busy && direct.streak.load(Ordering::Relaxed) < DIRECT_STREAK {
            if let Some(sink) = &state.sink {
                match sink.try_write(&frame) {
                    Ok(n) if n == frame.len() => {
                        direct.streak.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    // The rest is queued below; the queue is empty (the writer is idle), so it
                    // is taken, and written before anything sent later.
                    Ok(n) => frame.advance(n),
                    // Not writable now, or broken: the writer takes over, and meets any error
                    // itself.
                    Err(_) => {}
                }
            }
        }
        self.enqueue(frame)?;
        state.busy = true;
        Ok(())
    }

    /// Tells the direct path that a frame arrived from the peer: the sends before it were
    /// answered, so they do not count as a burst.
    pub(crate) fn note_received(&self) {
        if let Some(direct) = &self.direct {
            direct.streak.store(0, Ordering::Relaxed);
        }
    }

    fn enqueue(&self, frame: Bytes) -> Result<(), PushError> {
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

    /// Lets pushes write to `sink` directly while the writer is idle, if this outbox has the
    /// direct path, until the returned attachment is dropped.
    pub(crate) fn attach_direct(&self, sink: Option<Arc<dyn DirectSink>>) -> DirectAttachment {
        match (&self.direct, sink) {
            (Some(direct), Some(sink)) => {
                direct.lock().sink = Some(sink);
                DirectAttachment(Some(direct.clone()))
            }
            _ => DirectAttachment(None),
        }
    }

    /// Takes the next frame if one is queued; otherwise marks the writer idle, so that pushes
    /// may write directly until the next frame is queued. Call it only when everything taken
    /// so far has been written.
    pub(crate) fn try_recv_or_idle(&mut self) -> Option<Bytes> {
        let Some(direct) = &self.direct else {
            return self.try_recv();
        };
        let mut state = direct.lock();
        match self.rx.try_recv() {
            Ok(frame) => {
                self.queued.fetch_sub(frame.len(), Ordering::AcqRel);
                Some(frame)
            }
            Err(_) => {
                state.busy = false;
                direct.streak.store(0, Ordering::Relaxed);
                None
            }
        }
    }

    /// Turns the direct path off for good: every later push is queued (and fails once the
    /// queue is closed). A push writing directly at this moment finishes first.
    pub(crate) fn stop_direct(&self) {
        if let Some(direct) = &self.direct {
            let mut state = direct.lock();
            state.sink = None;
            state.busy = true;
        }
    }

    /// How the connection was told to stop, once its cancel token is cancelled.
    pub(crate) fn stop_mode(&self) -> StopMode {
        match self.stop_mode.load(Ordering::Acquire) {
            STOP_DROP => StopMode::Drop,
            _ => StopMode::Reset,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Mutex;

    use super::*;

    /// A sink that takes at most `room` bytes in all, recording what it took.
    struct Sink {
        room: Mutex<usize>,
        taken: Mutex<Vec<u8>>,
    }

    impl Sink {
        fn with_room(room: usize) -> Arc<Sink> {
            Arc::new(Sink {
                room: Mutex::new(room),
                taken: Mutex::new(Vec::new()),
            })
        }

        fn taken(&self) -> Vec<u8> {
            self.taken.lock().unwrap().clone()
        }
    }

    impl DirectSink for Sink {
        fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
            let mut room = self.room.lock().unwrap();
            let n = buf.len().min(*room);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            *room -= n;
            self.taken.lock().unwrap().extend_from_slice(&buf[..n]);
            Ok(n)
        }
    }

    fn attach(rx: &OutboxReceiver, sink: &Arc<Sink>) -> DirectAttachment {
        rx.attach_direct(Some(sink.clone() as Arc<dyn DirectSink>))
    }

    #[test]
    fn without_the_direct_path_every_push_is_queued() {
        let (tx, mut rx) = Outbox::new(8, 1024);
        let sink = Sink::with_room(1024);
        let _attached = attach(&rx, &sink);
        tx.push(Bytes::from_static(b"one")).unwrap();
        assert!(sink.taken().is_empty());
        assert_eq!(rx.try_recv().as_deref(), Some(&b"one"[..]));
    }

    #[test]
    fn an_idle_writer_lends_the_transport_and_a_partial_write_queues_the_rest() {
        let (tx, mut rx) = Outbox::with_direct_writes(8, 1024);
        // Before a writer is attached, pushes queue.
        tx.push(Bytes::from_static(b"early")).unwrap();
        let sink = Sink::with_room(6);
        let attached = attach(&rx, &sink);
        // Frames are queued: the next push queues behind them.
        tx.push(Bytes::from_static(b"second")).unwrap();
        assert!(sink.taken().is_empty());
        assert_eq!(rx.try_recv().as_deref(), Some(&b"early"[..]));
        assert_eq!(rx.try_recv_or_idle().as_deref(), Some(&b"second"[..]));
        // The queue is empty now: the writer goes idle.
        assert_eq!(rx.try_recv_or_idle(), None);
        // A push writes directly; the sink takes four bytes of the next one, the rest queues.
        tx.push(Bytes::from_static(b"ab")).unwrap();
        tx.push(Bytes::from_static(b"cdefgh")).unwrap();
        assert_eq!(sink.taken(), b"abcdef");
        assert_eq!(tx.queued_bytes(), 2);
        // Busy again: later pushes queue behind the rest, in order, even with room again.
        *sink.room.lock().unwrap() = 100;
        tx.push(Bytes::from_static(b"ij")).unwrap();
        assert_eq!(sink.taken(), b"abcdef");
        assert_eq!(rx.try_recv().as_deref(), Some(&b"gh"[..]));
        assert_eq!(rx.try_recv_or_idle().as_deref(), Some(&b"ij"[..]));
        assert_eq!(rx.try_recv_or_idle(), None);
        tx.push(Bytes::from_static(b"kl")).unwrap();
        assert_eq!(sink.taken(), b"abcdefkl");
        // Once detached, pushes queue again.
        drop(attached);
        tx.push(Bytes::from_static(b"mn")).unwrap();
        assert_eq!(sink.taken(), b"abcdefkl");
        assert_eq!(rx.try_recv().as_deref(), Some(&b"mn"[..]));
    }

    #[test]
    fn a_burst_of_direct_writes_falls_back_to_the_queue() {
        let (tx, mut rx) = Outbox::with_direct_writes(64, 1 << 20);
        let sink = Sink::with_room(1 << 20);
        let _attached = attach(&rx, &sink);
        for _ in 0..DIRECT_STREAK + 3 {
            tx.push(Bytes::from_static(b"x")).unwrap();
        }
        assert_eq!(sink.taken().len(), DIRECT_STREAK as usize);
        assert_eq!(tx.queued_bytes(), 3);
        while rx.try_recv_or_idle().is_some() {}
        // The writer went idle: direct again.
        tx.push(Bytes::from_static(b"y")).unwrap();
        assert_eq!(sink.taken().len(), DIRECT_STREAK as usize + 1);
        // A frame from the peer ends a streak too.
        for _ in 0..DIRECT_STREAK {
            tx.push(Bytes::from_static(b"z")).unwrap();
            tx.note_received();
        }
        assert_eq!(sink.taken().len(), 2 * DIRECT_STREAK as usize + 1);
        assert_eq!(tx.queued_bytes(), 0);
    }

    #[test]
    fn stopping_the_direct_path_queues_until_the_queue_closes() {
        let (tx, mut rx) = Outbox::with_direct_writes(8, 1024);
        let sink = Sink::with_room(1024);
        let _attached = attach(&rx, &sink);
        rx.stop_direct();
        tx.push(Bytes::from_static(b"last")).unwrap();
        assert!(sink.taken().is_empty());
        rx.close();
        assert_eq!(tx.push(Bytes::from_static(b"late")), Err(PushError::Closed));
        assert_eq!(rx.try_recv().as_deref(), Some(&b"last"[..]));
    }
}
