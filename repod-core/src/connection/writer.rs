//! A connection's writer: drains its [`OutboxReceiver`] into a [`FrameWriter`], and applies the
//! close rules both sides share.
//!
//! * While open, every frame leaves as soon as it is queued: the writer wakes on the queue,
//!   feeds every frame queued behind the first, then flushes once. Nothing waits on a timer.
//!   With an outbox's direct path, the writer lends the transport to pushes while it is idle
//!   (see [`outbox`](super::outbox)), and takes it back for good when the connection closes.
//! * A graceful close ([`Outbox::close`](super::Outbox::close), or the `Outbox` dropped) stops
//!   the queue, writes what it holds, flushes and shuts the outgoing stream (a FIN). It must
//!   finish within the close timeout, counted from the close; past it, the connection is reset.
//! * [`Outbox::cancel`](super::Outbox::cancel) stops at once and closes the ordinary way.
//! * [`Outbox::abort`](super::Outbox::abort), or the cancel token cancelled from outside, stops
//!   at once and resets the connection.

use std::io;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::outbox::{OutboxReceiver, StopMode};
use super::transport::FrameWriter;

/// How a connection's writer ended.
#[derive(Debug)]
pub(crate) enum WriteEnd {
    /// The queue was closed, everything in it written, and the outgoing stream shut down.
    Closed,
    /// Cancelled: nothing more was written, and the connection closes the ordinary way.
    Dropped,
    /// The connection was reset: aborted, or its close did not finish within the close timeout
    /// (`timed_out`).
    Reset {
        /// Whether the close timeout expired (rather than an explicit abort).
        timed_out: bool,
    },
    /// Writing failed.
    Failed(io::Error),
}

/// Writes what `outbox` receives to `writer` until the connection closes, following the rules
/// of this module. Returns how it ended; the writer is gone by then (shut down, dropped or reset).
pub(crate) async fn write_outbox<W: FrameWriter>(
    mut writer: W,
    outbox: &mut OutboxReceiver,
    close_timeout: Duration,
) -> WriteEnd {
    let stop = outbox.cancel_token().clone();
    let closing = outbox.closing_token().clone();
    let deadline = {
        let closing = closing.clone();
        async move {
            closing.cancelled().await;
            tokio::time::sleep(close_timeout).await;
        }
    };
    enum Outcome {
        Stopped,
        TimedOut,
        Done(io::Result<()>),
    }
    let direct = outbox.attach_direct(writer.direct());
    let outcome = tokio::select! {
        biased;
        () = stop.cancelled() => Outcome::Stopped,
        () = deadline => Outcome::TimedOut,
        drained = drain(&mut writer, outbox, &closing, &stop) => match drained {
            Ok(Drained::ShutDown) => Outcome::Done(Ok(())),
            Ok(Drained::Stopped) => Outcome::Stopped,
            Err(error) => Outcome::Done(Err(error)),
        },
    };
    // No direct write from here on, and the transport is the writer's alone again.
    drop(direct);
    match outcome {
        Outcome::Done(Ok(())) => WriteEnd::Closed,
        Outcome::Done(Err(error)) => WriteEnd::Failed(error),
        Outcome::Stopped => match outbox.stop_mode() {
            StopMode::Drop => WriteEnd::Dropped,
            StopMode::Reset => {
                writer.reset();
                WriteEnd::Reset { timed_out: false }
            }
        },
        Outcome::TimedOut => {
            writer.reset();
            WriteEnd::Reset { timed_out: true }
        }
    }
}

/// How [`drain`] ended, when writing did not fail.
enum Drained {
    /// Everything queued was written and the outgoing stream shut down.
    ShutDown,
    /// `stop` was cancelled: nothing more was written, and the stream was not shut down.
    Stopped,
}

/// Writes frames as they are queued until the queue is closed and empty, then shuts the
/// outgoing stream down, unless `stop` is cancelled first.
///
/// `stop` is checked here too, before each batch and before the shutdown, not only by the
/// `select!` around this future: while the transport takes every write at once, one poll can
/// run from the close to the shutdown without yielding, and the `select!` looks at `stop` only
/// when it is polled. A connection aborted during that poll (a slow consumer is aborted, then
/// its outbox is dropped, which closes it) must still be reset, not ended with a FIN behind
/// everything it was sent.
async fn drain<W: FrameWriter>(
    writer: &mut W,
    outbox: &mut OutboxReceiver,
    closing: &CancellationToken,
    stop: &CancellationToken,
) -> io::Result<Drained> {
    let closed = closing.cancelled();
    tokio::pin!(closed);
    let mut open = true;
    loop {
        let first = if open {
            tokio::select! {
                biased;
                frame = outbox.recv() => frame,
                () = &mut closed => {
                    // Later pushes fail; every push that succeeded is still received below.
                    outbox.stop_direct();
                    outbox.close();
                    open = false;
                    continue;
                }
            }
        } else {
            outbox.recv().await
        };
        let Some(first) = first else { break };
        if stop.is_cancelled() {
            return Ok(Drained::Stopped);
        }
        writer.feed(first).await?;
        loop {
            while let Some(frame) = outbox.try_recv() {
                writer.feed(frame).await?;
            }
            writer.flush().await?;
            // Everything taken is written: go idle unless more was queued meanwhile.
            match outbox.try_recv_or_idle() {
                Some(frame) => writer.feed(frame).await?,
                None => break,
            }
        }
    }
    // An abort before the close is always seen here: the queue ends (or the close is seen)
    // only after the cancellation that came before it.
    if stop.is_cancelled() {
        return Ok(Drained::Stopped);
    }
    writer.shutdown().await?;
    Ok(Drained::ShutDown)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;

    use super::*;
    use crate::connection::Outbox;

    /// A transport that takes every write at once and records what was done to it. On its
    /// first frame it runs `on_first_feed` with the connection's outbox, as the dispatch loop
    /// on another thread may do while the writer is in the middle of a poll.
    struct Recording {
        log: Arc<Mutex<Vec<&'static str>>>,
        outbox: Option<Outbox>,
        on_first_feed: fn(Outbox),
    }

    impl FrameWriter for Recording {
        async fn feed(&mut self, _frame: Bytes) -> io::Result<()> {
            self.log.lock().unwrap().push("feed");
            if let Some(outbox) = self.outbox.take() {
                (self.on_first_feed)(outbox);
            }
            Ok(())
        }

        async fn flush(&mut self) -> io::Result<()> {
            self.log.lock().unwrap().push("flush");
            Ok(())
        }

        async fn shutdown(&mut self) -> io::Result<()> {
            self.log.lock().unwrap().push("shutdown");
            Ok(())
        }

        fn reset(self) {
            self.log.lock().unwrap().push("reset");
        }
    }

    /// Queues three frames, then runs the writer over a transport that applies `stop` to the
    /// outbox, and drops it, while the first frame is written.
    async fn stopped_while_writing(stop: fn(Outbox)) -> (WriteEnd, Vec<&'static str>) {
        let (outbox, mut receiver) = Outbox::new(16, 1 << 20);
        for _ in 0..3 {
            outbox.push(Bytes::from_static(b"\0\0\0\x01x")).unwrap();
        }
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = Recording {
            log: log.clone(),
            outbox: Some(outbox),
            on_first_feed: stop,
        };
        let end = write_outbox(writer, &mut receiver, Duration::from_secs(60)).await;
        let log = log.lock().unwrap().clone();
        (end, log)
    }

    #[tokio::test]
    async fn an_abort_during_a_write_that_never_waits_still_resets() {
        let (end, log) = stopped_while_writing(|outbox| {
            outbox.abort();
            drop(outbox);
        })
        .await;
        assert!(
            matches!(end, WriteEnd::Reset { timed_out: false }),
            "expected a reset, got {end:?} after {log:?}"
        );
        assert_eq!(log.last(), Some(&"reset"), "{log:?}");
        assert!(!log.contains(&"shutdown"), "{log:?}");
    }

    #[tokio::test]
    async fn a_cancel_during_a_write_that_never_waits_sends_no_fin() {
        let (end, log) = stopped_while_writing(|outbox| {
            outbox.cancel();
            drop(outbox);
        })
        .await;
        assert!(
            matches!(end, WriteEnd::Dropped),
            "expected the connection dropped, got {end:?} after {log:?}"
        );
        assert!(!log.contains(&"shutdown"), "{log:?}");
    }

    #[tokio::test]
    async fn a_close_without_a_stop_still_flushes_and_shuts_down() {
        let (end, log) = stopped_while_writing(drop).await;
        assert!(matches!(end, WriteEnd::Closed), "{end:?} after {log:?}");
        assert_eq!(
            log,
            ["feed", "feed", "feed", "flush", "shutdown"],
            "every queued frame is written before the FIN"
        );
    }
}
