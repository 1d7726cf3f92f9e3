//! The TLS transport: frames over a rustls session on a TCP socket, for either side, framed
//! exactly as plain TCP is (see [`stream`](super::stream)).
//!
//! A TLS session cannot be written from two places at once (each write encrypts with the
//! session's state), so TLS has no direct-write path: every frame leaves through the writer,
//! and frames fed together are gathered, so a burst becomes a few large TLS records instead of
//! one small record per frame.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::stream::{stream, OverTcp, StreamReader, StreamWriter};

/// A TLS session over TCP, either side's.
pub(crate) struct Tls(tokio_rustls::TlsStream<TcpStream>);

/// The reading half of a TLS connection.
pub(crate) type TlsReader = StreamReader<Tls>;
/// The writing half of a TLS connection.
pub(crate) type TlsWriter = StreamWriter<Tls>;

/// Splits an established TLS connection (either side's) into its frame reader and writer,
/// with `TCP_NODELAY` set.
pub(crate) fn tls(
    session: impl Into<tokio_rustls::TlsStream<TcpStream>>,
    max_frame_len: usize,
) -> (TlsReader, TlsWriter) {
    let session = Tls(session.into());
    if let Err(error) = session.tcp().set_nodelay(true) {
        tracing::debug!(target: "repod::connection", %error, "cannot set TCP_NODELAY");
    }
    stream(session, max_frame_len)
}

impl<S: Into<tokio_rustls::TlsStream<TcpStream>>> From<S> for Tls {
    fn from(session: S) -> Self {
        Tls(session.into())
    }
}

impl OverTcp for Tls {
    fn tcp(&self) -> &TcpStream {
        self.0.get_ref().0
    }
}

impl AsyncRead for Tls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
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

impl AsyncWrite for Tls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // close_notify, then the TCP FIN.
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::transport::{FrameReader, FrameWriter, WRITE_BATCH};
    use crate::error::FrameError;
    use crate::tls::{TlsClientConfig, TlsServerConfig};
    use bytes::{Bytes, BytesMut};
    use std::time::Duration;
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
