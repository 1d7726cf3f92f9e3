//! Byte streams carried by a TCP socket (TLS over TCP, say), framed like plain TCP, and the
//! pieces every transport over a TCP socket shares: a stream shared by a reader and a writer
//! task, reaching the socket underneath to reset it or to watch for the peer's end.
// Without the `websocket` feature, these wait for a stream transport to use them.
#![cfg_attr(not(feature = "websocket"), allow(dead_code))]

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

use super::transport::{
    watch_end, watch_handle, FrameReader, FrameWriter, KEEP_WRITE_BUF, WRITE_BATCH,
};
use crate::error::FrameError;
use crate::frame::{FrameCodec, FrameConfig};

/// Makes the socket's close a reset: the kernel drops what it still holds for the peer, and
/// the peer's next read fails with "connection reset". Takes effect when the socket closes.
pub(crate) fn set_reset_on_close(stream: &TcpStream) {
    if let Err(error) = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO)) {
        tracing::debug!(target: "repod::connection", %error, "cannot set SO_LINGER");
    }
}

/// A byte stream carried by a TCP socket (the socket itself, or TLS over it): the socket is
/// reached to watch for the peer's end and to reset the connection.
pub(crate) trait OverTcp {
    /// The TCP socket underneath.
    fn tcp(&self) -> &TcpStream;
}

impl OverTcp for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

/// One stream shared by a reader and a writer on different tasks. Each poll locks it for the
/// poll only, never across a wait; the stream keeps the read and write wakers apart.
pub(crate) struct SharedIo<S>(Arc<Mutex<S>>);

impl<S> Clone for SharedIo<S> {
    fn clone(&self) -> Self {
        SharedIo(self.0.clone())
    }
}

impl<S> SharedIo<S> {
    pub(crate) fn new(stream: S) -> Self {
        SharedIo(Arc::new(Mutex::new(stream)))
    }

    /// Runs `f` with the stream locked.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut S) -> T) -> T {
        let mut stream = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut stream)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SharedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.with(|s| Pin::new(s).poll_read(cx, buf))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SharedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|s| Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| Pin::new(s).poll_shutdown(cx))
    }
}

/// The reading half of a byte stream over TCP, framed like TCP.
pub(crate) struct StreamReader<S> {
    frames: FramedRead<SharedIo<S>, FrameCodec>,
}

/// The writing half of a byte stream over TCP: frames fed together are gathered into one
/// buffer, written at a flush or every 64 KiB.
pub(crate) struct StreamWriter<S> {
    io: SharedIo<S>,
    buf: BytesMut,
}

/// Splits a byte stream carried by a TCP socket (TLS, say, once its handshake is done) into
/// a frame reader and writer, framed with the [`FrameCodec`] exactly as plain TCP is. The
/// socket should have `TCP_NODELAY` set already.
#[allow(dead_code)]
pub(crate) fn stream<S>(stream: S, max_frame_len: usize) -> (StreamReader<S>, StreamWriter<S>)
where
    S: AsyncRead + AsyncWrite + OverTcp + Send + Unpin + 'static,
{
    let io = SharedIo::new(stream);
    let codec = FrameCodec::new(FrameConfig::with_max_frame_len(max_frame_len));
    (
        StreamReader {
            frames: FramedRead::new(io.clone(), codec),
        },
        StreamWriter {
            io,
            buf: BytesMut::new(),
        },
    )
}

impl<S> FrameReader for StreamReader<S>
where
    S: AsyncRead + AsyncWrite + OverTcp + Send + Unpin + 'static,
{
    async fn next_frame(&mut self) -> Option<Result<Bytes, FrameError>> {
        self.frames.next().await
    }

    async fn peer_gone(&self) {
        watch_end(self.frames.get_ref().with(|s| watch_handle(s.tcp()))).await
    }
}

impl<S> FrameWriter for StreamWriter<S>
where
    S: AsyncRead + AsyncWrite + OverTcp + Send + Unpin + 'static,
{
    async fn feed(&mut self, frame: Bytes) -> io::Result<()> {
        if !self.buf.is_empty() && self.buf.len() + frame.len() > WRITE_BATCH {
            self.io.write_all(&self.buf).await?;
            self.buf.clear();
        }
        if frame.len() >= WRITE_BATCH {
            self.io.write_all(&frame).await
        } else {
            self.buf.extend_from_slice(&frame);
            Ok(())
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.io.write_all(&self.buf).await?;
            self.buf.clear();
            if self.buf.capacity() > KEEP_WRITE_BUF {
                self.buf = BytesMut::new();
            }
        }
        self.io.flush().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.io.shutdown().await
    }

    fn reset(self) {
        // The socket closes, with the reset, when the reader drops its share of the stream.
        self.io.with(|s| set_reset_on_close(s.tcp()));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::{BufMut, Bytes, BytesMut};
    use futures::{SinkExt, StreamExt};
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_util::codec::Framed;

    use super::*;

    /// A connected pair: the stream transport's halves on one end, a framed socket on the other.
    async fn pair() -> (StreamReader<TcpStream>, StreamWriter<TcpStream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (ours, _) = listener.accept().await.unwrap();
        let (reader, writer) = stream(ours, 1024);
        (reader, writer, peer)
    }

    fn frame(payload: &[u8]) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_u32(payload.len() as u32);
        buf.extend_from_slice(payload);
        buf.freeze()
    }

    #[tokio::test]
    async fn frames_go_both_ways_with_the_frame_codec() {
        let (mut reader, mut writer, peer) = pair().await;
        let mut peer = Framed::new(peer, FrameCodec::default());
        writer.feed(frame(b"one")).await.unwrap();
        writer.feed(frame(b"two")).await.unwrap();
        writer.flush().await.unwrap();
        assert_eq!(peer.next().await.unwrap().unwrap(), &b"one"[..]);
        assert_eq!(peer.next().await.unwrap().unwrap(), &b"two"[..]);
        peer.send(Bytes::from_static(b"back")).await.unwrap();
        assert_eq!(reader.next_frame().await.unwrap().unwrap(), &b"back"[..]);
        // A frame over the limit is refused, as over plain TCP.
        peer.send(Bytes::from(vec![0u8; 2048])).await.unwrap();
        assert!(matches!(
            reader.next_frame().await,
            Some(Err(FrameError::TooLarge { .. }))
        ));
        writer.shutdown().await.unwrap();
        assert!(
            peer.next().await.is_none(),
            "the shutdown ends the peer's stream"
        );
    }

    #[tokio::test]
    async fn a_reset_reaches_the_peer_and_the_peers_end_is_seen_without_reading() {
        let (reader, writer, mut peer) = pair().await;
        writer.reset();
        drop(reader);
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(10), peer.read(&mut buf))
            .await
            .expect("the peer learns at once");
        assert_eq!(
            read.expect_err("a reset, not an orderly end").kind(),
            io::ErrorKind::ConnectionReset
        );

        let (reader, _writer, peer) = pair().await;
        drop(peer);
        tokio::time::timeout(Duration::from_secs(10), reader.peer_gone())
            .await
            .expect("the peer's end is seen");
    }
}
