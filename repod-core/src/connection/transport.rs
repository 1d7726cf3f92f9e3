//! What a transport gives the connection path: a stream of frames in, a sink of frames out.
//!
//! The reader and writer tasks of both sides are written against [`FrameReader`] and
//! [`FrameWriter`] only. A transport plugs in by implementing the two halves; the close, flush
//! and reset rules of [`writer`](super::writer) then apply to it unchanged. There are three:
//!
//! * plain TCP ([`tcp`]), with a direct-write fast path;
//! * any byte stream over a TCP socket ([`stream`](super::stream::stream): TLS, say), framed
//!   with the same [`FrameCodec`];
//! * WebSocket (`ws`, with the `websocket` feature), one binary message per frame payload.
//!
//! A transport that needs a handshake (TLS, a WebSocket upgrade) makes it before its halves
//! exist, on the connection's own task; the server bounds it with its handshake timeout.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::Interest;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

use crate::error::FrameError;
use crate::frame::{FrameCodec, FrameConfig};

/// The receiving half of a transport: the payloads of whole frames, in order.
pub(crate) trait FrameReader: Send + 'static {
    /// The next frame's payload (without its header); `None` once the peer ended the stream
    /// cleanly. Cancel safe: dropping the future loses nothing.
    fn next_frame(&mut self) -> impl Future<Output = Option<Result<Bytes, FrameError>>> + Send;

    /// Resolves once the peer has closed or reset the transport, without reading anything:
    /// a reader that stopped taking frames (its consumer is full) still learns at once that
    /// the peer is gone. A transport that cannot tell never resolves. Cancel safe.
    fn peer_gone(&self) -> impl Future<Output = ()> + Send;
}

/// The sending half of a transport: complete frames (header included) out.
pub(crate) trait FrameWriter: Send + 'static {
    /// Takes one complete frame; it may wait in a buffer until [`flush`](FrameWriter::flush).
    fn feed(&mut self, frame: Bytes) -> impl Future<Output = io::Result<()>> + Send;

    /// Writes everything fed so far.
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;

    /// Ends the outgoing stream gracefully after what was flushed (for TCP, a FIN).
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> + Send;

    /// Gives up on the connection: what is buffered, here and in the system, is discarded and
    /// the peer is told at once (for TCP, the socket closes with a reset, RST).
    ///
    /// Every [`DirectSink`] handed out by [`direct`](FrameWriter::direct) must be dropped first.
    fn reset(self);

    /// A handle that writes to the transport from any thread without waiting, for sends made
    /// while this writer is idle (see [`Outbox::with_direct_writes`](super::Outbox::with_direct_writes));
    /// `None` if the transport has none.
    fn direct(&self) -> Option<Arc<dyn DirectSink>> {
        None
    }
}

/// Writes bytes to a transport without waiting, from any thread.
pub(crate) trait DirectSink: Send + Sync + 'static {
    /// Writes as much of `buf` as the transport takes at once; `WouldBlock` if it takes
    /// nothing now. Never waits.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
}

/// Frames fed together are copied into one buffer of up to this many bytes per write.
pub(crate) const WRITE_BATCH: usize = 64 * 1024;

/// A writer keeps its gathering buffer between bursts only up to this capacity. Under a
/// backlog every connection's writer fills one; kept at full size, 10,000 of them held
/// hundreds of MiB long after the backlog was gone.
pub(crate) const KEEP_WRITE_BUF: usize = 4096;

/// The reading half of a TCP connection.
pub(crate) struct TcpReader {
    frames: FramedRead<OwnedReadHalf, FrameCodec>,
}

/// The writing half of a TCP connection.
///
/// A frame fed alone is written from where it lies, without a copy; frames fed together are
/// gathered into one buffer, so a burst costs one write per 64 KiB.
pub(crate) struct TcpWriter {
    /// Shared with the [`DirectSink`]s handed out, which release it when the writer ends.
    write: Arc<OwnedWriteHalf>,
    /// The first frame fed since the last write, not copied yet.
    single: Option<Bytes>,
    buf: BytesMut,
}

/// Turns on TCP keepalive: the system probes a connection silent for `idle`, then every
/// 10 seconds (where it can be set), and ends it when the peer's machine does not answer; the
/// next read then fails. `None` leaves the socket as it is.
pub(crate) fn set_keepalive(stream: &TcpStream, idle: Option<Duration>) {
    let Some(idle) = idle else { return };
    let keepalive = socket2::TcpKeepalive::new().with_time(idle);
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "windows"
    ))]
    let keepalive = keepalive.with_interval(KEEPALIVE_INTERVAL);
    if let Err(error) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(target: "repod::connection", %error, "cannot set TCP keepalive");
    }
}

/// How often an unanswered keepalive probe is repeated, where the system lets it be set.
#[cfg_attr(
    not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "windows"
    )),
    allow(dead_code)
)]
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Splits a TCP connection into its frame reader and writer, with `TCP_NODELAY` set (a frame
/// leaves when it is flushed, not when the kernel decides).
pub(crate) fn tcp(stream: TcpStream, max_frame_len: usize) -> (TcpReader, TcpWriter) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(target: "repod::connection", %error, "cannot set TCP_NODELAY");
    }
    let (read, write) = stream.into_split();
    let codec = FrameCodec::new(FrameConfig::with_max_frame_len(max_frame_len));
    (
        TcpReader {
            frames: FramedRead::new(read, codec),
        },
        TcpWriter {
            write: Arc::new(write),
            single: None,
            buf: BytesMut::new(),
        },
    )
}

impl FrameReader for TcpReader {
    async fn next_frame(&mut self) -> Option<Result<Bytes, FrameError>> {
        self.frames.next().await
    }

    async fn peer_gone(&self) {
        watch_end(watch_handle(self.frames.get_ref().as_ref())).await
    }
}

/// Resolves once the socket watched by `watch` (see [`watch_handle`]) is closed or reset by
/// the peer; never, if it could not be watched.
pub(crate) async fn watch_end(watch: io::Result<TcpStream>) {
    let watch = match watch {
        Ok(watch) => watch,
        Err(error) => {
            tracing::debug!(target: "repod::connection", %error, "cannot watch the socket for its end");
            return std::future::pending().await;
        }
    };
    loop {
        match watch.ready(Interest::READABLE).await {
            Ok(ready) if ready.is_read_closed() || ready.is_error() => return,
            Ok(_) => {
                // Data arrived, not the end: forget this readiness (on the watching handle
                // only) and wait for the next event. Nothing is read.
                let _ = watch.try_io(Interest::READABLE, || {
                    Err::<(), _>(io::ErrorKind::WouldBlock.into())
                });
            }
            Err(_) => return,
        }
    }
}

/// A second handle on the socket of `stream`, registered with the runtime on its own, to wait
/// for the socket's end without reading. Waiting on `stream` itself would not do: readiness
/// cleared there to wait for the next event would stall its reader, since data already waiting
/// raises no new event. Dropping the handle leaves the connection open.
pub(crate) fn watch_handle(stream: &TcpStream) -> io::Result<TcpStream> {
    let socket = socket2::SockRef::from(stream).try_clone()?;
    let std_stream: std::net::TcpStream = socket.into();
    std_stream.set_nonblocking(true)?;
    TcpStream::from_std(std_stream)
}

impl FrameWriter for TcpWriter {
    async fn feed(&mut self, frame: Bytes) -> io::Result<()> {
        if self.buf.is_empty() && self.single.is_none() {
            self.single = Some(frame);
            return Ok(());
        }
        if let Some(single) = self.single.take() {
            self.buf.extend_from_slice(&single);
        }
        if self.buf.len() + frame.len() > WRITE_BATCH {
            write_all(&self.write, &self.buf).await?;
            self.buf.clear();
        }
        if frame.len() >= WRITE_BATCH {
            write_all(&self.write, &frame).await
        } else {
            self.buf.extend_from_slice(&frame);
            Ok(())
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        if let Some(single) = self.single.take() {
            write_all(&self.write, &single).await?;
        } else if !self.buf.is_empty() {
            write_all(&self.write, &self.buf).await?;
            self.buf.clear();
            if self.buf.capacity() > KEEP_WRITE_BUF {
                self.buf = BytesMut::new();
            }
        }
        Ok(())
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await?;
        socket2::SockRef::from(self.stream()).shutdown(std::net::Shutdown::Write)
    }

    fn reset(self) {
        // A zero linger makes the close a reset: the kernel drops what it still holds for the
        // peer instead of trying to deliver it (perhaps for minutes, to a peer that does not
        // read), and the peer's next read fails with "connection reset".
        if let Err(error) = socket2::SockRef::from(self.stream()).set_linger(Some(Duration::ZERO)) {
            tracing::debug!(target: "repod::connection", %error, "cannot set SO_LINGER");
        }
        match Arc::try_unwrap(self.write) {
            // No FIN first: the socket closes, with the reset, when the reader drops its half.
            Ok(write) => write.forget(),
            // A direct sink still holds the socket (it should not): when the last one goes,
            // the half sends a FIN, and the socket still closes with a reset.
            Err(_) => {
                tracing::debug!(target: "repod::connection", "reset while a direct sink is held")
            }
        }
    }

    fn direct(&self) -> Option<Arc<dyn DirectSink>> {
        Some(Arc::new(TcpSink(self.write.clone())))
    }
}

impl TcpWriter {
    fn stream(&self) -> &TcpStream {
        (*self.write).as_ref()
    }
}

/// Writes all of `buf`, waiting for the socket to take it.
async fn write_all(write: &OwnedWriteHalf, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match write.try_write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => write.writable().await?,
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The [`DirectSink`] of a TCP connection: its write half.
struct TcpSink(Arc<OwnedWriteHalf>);

impl DirectSink for TcpSink {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
}
