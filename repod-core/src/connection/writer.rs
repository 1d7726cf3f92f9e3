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
        result = drain(&mut writer, outbox, &closing) => Outcome::Done(result),
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

/// Writes frames as they are queued until the queue is closed and empty, then shuts the
/// outgoing stream down.
async fn drain<W: FrameWriter>(
    writer: &mut W,
    outbox: &mut OutboxReceiver,
    closing: &CancellationToken,
) -> io::Result<()> {
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
    writer.shutdown().await
}
