//! The TLS transport: frames over a rustls stream on TCP, for either side.
//!
//! A TLS stream cannot be written from two places at once (each write encrypts into the
//! session's state), so it has no direct-write path: every frame leaves through the writer.
//! Frames fed together are gathered into one buffer, so a burst becomes a few large TLS
//! records instead of one small record per frame.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;
use tokio_util::codec::FramedRead;

use super::transport::{FrameReader, FrameWriter};
use crate::error::FrameError;
use crate::frame::{FrameCodec, FrameConfig};

/// Frames fed together are gathered into one buffer of up to this many bytes per write.
const WRITE_BATCH: usize = 64 * 1024;

/// The gathering buffer is kept between bursts only up to this capacity.
const KEEP_WRITE_BUF: usize = 4096;

/// The stream both halves use, one poll at a time.
type Shared = Arc<Mutex<TlsStream<TcpStream>>>;

fn lock(stream: &Shared) -> MutexGuard<'_, TlsStream<TcpStream>> {
    // A poll that panicked leaves the session as rustls left it; the next i/o reports it.
    stream.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The reading half of a TLS connection.
pub(crate) struct TlsReader {
    frames: FramedRead<ReadHalf, FrameCodec>,
}

/// The writing half of a TLS connection.
pub(crate) struct TlsWriter {
    write: WriteHalf,
    /// The first frame fed since the last write, not copied yet.
    single: Option<Bytes>,
    buf: BytesMut,
}

/// Splits an established TLS connection (either side's) into its frame reader and writer,
/// with `TCP_NODELAY` set.
pub(crate) fn tls(
    stream: impl Into<TlsStream<TcpStream>>,
    max_frame_len: usize,
) -> (TlsReader, TlsWriter) {
    let stream: TlsStream<TcpStream> = stream.into();
    if let Err(error) = stream.get_ref().0.set_nodelay(true) {
        tracing::debug!(target: "repod::connection", %error, "cannot set TCP_NODELAY");
    }
    let shared: Shared = Arc::new(Mutex::new(stream));
    let codec = FrameCodec::new(FrameConfig::with_max_frame_len(max_frame_len));
    (
        TlsReader {
            frames: FramedRead::new(ReadHalf(shared.clone()), codec),
        },
        TlsWriter {
            write: WriteHalf(shared),
            single: None,
            buf: BytesMut::new(),
        },
    )
}

struct ReadHalf(Shared);

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut stream = lock(&self.0);
        match Pin::new(&mut *stream).poll_read(cx, buf) {
            // The peer closed its TCP stream without TLS's close_notify (a process that died,
            // a client that dropped its socket). Frames carry their own lengths, so a stream
            // cut inside a frame is still caught by the frame decoder; a cut between frames is
            // an ordinary end.
            Poll::Ready(Err(error)) if error.kind() == io::ErrorKind::UnexpectedEof => {
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

struct WriteHalf(Shared);

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *lock(&self.0)).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *lock(&self.0)).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *lock(&self.0)).poll_shutdown(cx)
    }
}

impl FrameReader for TlsReader {
    async fn next_frame(&mut self) -> Option<Result<Bytes, FrameError>> {
        self.frames.next().await
    }

    async fn peer_gone(&self) {
        // Watched on the TCP socket under the TLS session: its end is the peer's end.
        let watch = {
            let stream = lock(&self.frames.get_ref().0);
            watch_handle(stream.get_ref().0)
        };
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
}

/// A second handle on the socket of `stream`, registered with the runtime on its own, to wait
/// for the socket's end without reading (and without disturbing the reader's readiness).
/// Dropping it leaves the connection open.
fn watch_handle(stream: &TcpStream) -> io::Result<TcpStream> {
    let socket = socket2::SockRef::from(stream).try_clone()?;
    let std_stream: std::net::TcpStream = socket.into();
    std_stream.set_nonblocking(true)?;
    TcpStream::from_std(std_stream)
}

impl TlsWriter {
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write.write_all(buf).await
    }
}

impl FrameWriter for TlsWriter {
    async fn feed(&mut self, frame: Bytes) -> io::Result<()> {
        if self.buf.is_empty() && self.single.is_none() {
            self.single = Some(frame);
            return Ok(());
        }
        if let Some(single) = self.single.take() {
            self.buf.extend_from_slice(&single);
        }
        if self.buf.len() + frame.len() > WRITE_BATCH {
            let buf = std::mem::take(&mut self.buf);
            self.write_all(&buf).await?;
            self.buf = buf;
            self.buf.clear();
        }
        if frame.len() >= WRITE_BATCH {
            self.write_all(&frame).await
        } else {
            self.buf.extend_from_slice(&frame);
            Ok(())
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        if let Some(single) = self.single.take() {
            self.write_all(&single).await?;
        } else if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.write_all(&buf).await?;
            if buf.capacity() <= KEEP_WRITE_BUF {
                self.buf = buf;
                self.buf.clear();
            }
        }
        // Pushes the encrypted records rustls still holds into the socket.
        self.write.flush().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await?;
        // close_notify, then the TCP FIN.
        self.write.shutdown().await
    }

    fn reset(self) {
        let stream = lock(&self.write.0);
        // As for TCP: a zero linger makes the close a reset once the reader drops its half too.
        if let Err(error) =
            socket2::SockRef::from(stream.get_ref().0).set_linger(Some(Duration::ZERO))
        {
            tracing::debug!(target: "repod::connection", %error, "cannot set SO_LINGER");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{TlsClientConfig, TlsServerConfig};
    use tokio::net::TcpListener;

    fn configs() -> (TlsServerConfig, TlsClientConfig) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let server =
            TlsServerConfig::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
                .unwrap();
        let client = TlsClientConfig::from_ca_pem(cert.pem().as_bytes()).unwrap();
        (server, client)
    }

    /// A connected pair: the server's halves and the client's.
    async fn pair() -> ((TlsReader, TlsWriter), (TlsReader, TlsWriter)) {
        let (server, client) = configs();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = async {
            let (stream, _) = listener.accept().await.unwrap();
            server.accept(stream).await.unwrap()
        };
        let connect = async {
            let stream = TcpStream::connect(addr).await.unwrap();
            client.connect(Some("localhost"), stream).await.unwrap()
        };
        let (accepted, connected) = tokio::join!(accept, connect);
        (tls(accepted, 1 << 20), tls(connected, 1 << 20))
    }

    fn frame(payload: &[u8]) -> Bytes {
        let mut buf = BytesMut::with_capacity(4 + payload.len());
        buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        buf.extend_from_slice(payload);
        buf.freeze()
    }

    async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(20), f)
            .await
            .expect("timed out")
    }

    #[tokio::test]
    async fn frames_cross_in_order_alone_and_in_bursts_then_the_stream_ends() {
        within(async {
            let ((mut s_read, mut s_write), (mut c_read, mut c_write)) = pair().await;
            // One frame alone, then a burst larger than a write batch, with a frame larger
            // than a batch in the middle.
            c_write.feed(frame(b"alone")).await.unwrap();
            c_write.flush().await.unwrap();
            assert_eq!(&s_read.next_frame().await.unwrap().unwrap()[..], b"alone");
            let big = vec![7u8; WRITE_BATCH + 10];
            let mut sent = Vec::new();
            for i in 0..2000u32 {
                let payload = if i == 1000 {
                    big.clone()
                } else {
                    format!("frame {i}").into_bytes()
                };
                c_write.feed(frame(&payload)).await.unwrap();
                sent.push(payload);
            }
            c_write.flush().await.unwrap();
            for payload in &sent {
                assert_eq!(
                    &s_read.next_frame().await.unwrap().unwrap()[..],
                    &payload[..]
                );
            }
            // The other way, then a graceful end: the client reads the frame, then the end.
            s_write.feed(frame(b"reply")).await.unwrap();
            s_write.shutdown().await.unwrap();
            assert_eq!(&c_read.next_frame().await.unwrap().unwrap()[..], b"reply");
            assert!(c_read.next_frame().await.is_none());
            c_write.shutdown().await.unwrap();
            assert!(s_read.next_frame().await.is_none());
        })
        .await
    }

    #[tokio::test]
    async fn a_reset_reaches_the_peer_as_a_reset() {
        within(async {
            let ((s_read, s_write), (mut c_read, _c_write)) = pair().await;
            s_write.reset();
            drop(s_read);
            match c_read.next_frame().await {
                Some(Err(FrameError::Io(error))) => {
                    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset)
                }
                other => panic!("expected a reset, got {other:?}"),
            }
        })
        .await
    }

    #[tokio::test]
    async fn a_peer_that_drops_its_socket_ends_the_stream_and_is_seen_gone() {
        within(async {
            let ((s_read, s_write), (mut c_read, c_write)) = pair().await;
            // Seen gone without reading, while data the reader has not taken waits.
            let mut s_write = s_write;
            s_write.feed(frame(b"unread")).await.unwrap();
            s_write.flush().await.unwrap();
            drop((s_read, s_write));
            c_read.peer_gone().await;
            // A TCP end without close_notify is an ordinary end between frames.
            assert_eq!(&c_read.next_frame().await.unwrap().unwrap()[..], b"unread");
            assert!(c_read.next_frame().await.is_none());
            drop(c_write);
        })
        .await
    }

    #[tokio::test]
    async fn a_stream_cut_inside_a_frame_is_an_error() {
        within(async {
            let ((s_read, s_write), (mut c_read, _c_write)) = pair().await;
            let mut s_write = s_write;
            // A header announcing 100 bytes, and 3 of them.
            s_write
                .feed(Bytes::from_static(&[0, 0, 0, 100, 1, 2, 3]))
                .await
                .unwrap();
            s_write.flush().await.unwrap();
            drop((s_read, s_write));
            match c_read.next_frame().await {
                Some(Err(_)) => {}
                other => panic!("expected an error, got {other:?}"),
            }
        })
        .await
    }
}
