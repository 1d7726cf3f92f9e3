//! The WebSocket transport: one binary WebSocket message carries one frame's payload.
//!
//! The 4-byte length prefix of TCP is not sent: WebSocket messages have their own length. A
//! frame handed to the writer is sent as its payload alone, sliced from the frame without a
//! copy (a broadcast's payload is shared by every peer it goes to, as over TCP); the WebSocket
//! layer then frames it. Pings are answered and a close is answered by the WebSocket layer;
//! a text message or a malformed WebSocket frame is a protocol error, and a message longer
//! than the maximum frame length is refused as [`FrameError::TooLarge`] before its body is
//! read.

use std::future::poll_fn;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::stream::{set_reset_on_close, OverTcp, SharedIo};
use super::transport::{watch_end, watch_handle, FrameReader, FrameWriter};
use crate::error::FrameError;
use crate::frame::HEADER_LEN;

/// How many bytes the WebSocket layer reads at once, per connection; allocated up front.
const READ_BUFFER: usize = 8 * 1024;

/// Messages are gathered up to this many bytes before they are written, unless flushed first
/// (the writer flushes whenever its queue is empty).
const WRITE_BUFFER: usize = 64 * 1024;

/// Settings of a server's WebSocket listeners.
#[derive(Debug, Clone, Default)]
pub(crate) struct WsOptions {
    /// When set, a browser's upgrade request whose `Origin` is not one of these is refused
    /// with 403. Requests without an `Origin` (programs, not pages) are always let through.
    pub(crate) origins: Option<Arc<[String]>>,
}

impl WsOptions {
    fn allows(&self, request: &Request) -> bool {
        let Some(origins) = &self.origins else {
            return true;
        };
        match request.headers().get(header::ORIGIN) {
            None => true,
            Some(origin) => origin
                .to_str()
                .is_ok_and(|origin| origins.iter().any(|allowed| allowed == origin)),
        }
    }
}

fn config(max_frame_len: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(max_frame_len))
        .max_frame_size(Some(max_frame_len))
}

/// The reading half of a WebSocket connection.
pub(crate) struct WsReader<S> {
    ws: SharedIo<WebSocketStream<S>>,
    max_frame_len: usize,
}

/// The writing half of a WebSocket connection.
pub(crate) struct WsWriter<S> {
    ws: SharedIo<WebSocketStream<S>>,
}

/// Splits an established WebSocket connection into its frame reader and writer.
fn split<S>(ws: WebSocketStream<S>, max_frame_len: usize) -> (WsReader<S>, WsWriter<S>) {
    let ws = SharedIo::new(ws);
    (
        WsReader {
            ws: ws.clone(),
            max_frame_len,
        },
        WsWriter { ws },
    )
}

/// Makes the server's side of the upgrade on an accepted connection (any request path is
/// accepted), then splits it. Bounded by the caller.
// The refusal's type is the WebSocket library's.
#[allow(clippy::result_large_err)]
pub(crate) async fn accept<S>(
    stream: S,
    options: &WsOptions,
    max_frame_len: usize,
) -> io::Result<(WsReader<S>, WsWriter<S>)>
where
    S: AsyncRead + AsyncWrite + OverTcp + Send + Unpin + 'static,
{
    let options = options.clone();
    let check = move |request: &Request, response: Response| {
        if options.allows(request) {
            Ok(response)
        } else {
            let mut refusal = ErrorResponse::new(Some("origin not allowed".to_owned()));
            *refusal.status_mut() = StatusCode::FORBIDDEN;
            Err(refusal)
        }
    };
    let ws =
        tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config(max_frame_len)))
            .await
            .map_err(io_error)?;
    Ok(split(ws, max_frame_len))
}

/// Makes the client's side of the upgrade to `url` (`ws://host:port/path`) over a connected
/// stream, then splits it. Bounded by the caller.
pub(crate) async fn connect<S>(
    url: &str,
    stream: S,
    max_frame_len: usize,
) -> io::Result<(WsReader<S>, WsWriter<S>)>
where
    S: AsyncRead + AsyncWrite + OverTcp + Send + Unpin + 'static,
{
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(config(max_frame_len)))
            .await
            .map_err(io_error)?;
    Ok(split(ws, max_frame_len))
}

/// A WebSocket error as an i/o error, keeping the i/o errors as they are.
fn io_error(error: WsError) -> io::Error {
    match error {
        WsError::Io(error) => error,
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::ErrorKind::NotConnected.into(),
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

impl<S> FrameReader for WsReader<S>
where
    S: AsyncRead + AsyncWrite + OverTcp + Send + Unpin + 'static,
{
    async fn next_frame(&mut self) -> Option<Result<Bytes, FrameError>> {
        loop {
            let next = poll_fn(|cx| {
                self.ws
                    .with(|ws| Stream::poll_next(std::pin::Pin::new(ws), cx))
            })
            .await;
            return match next? {
                Ok(Message::Binary(payload)) => Some(Ok(payload)),
                Ok(Message::Text(_)) => Some(Err(FrameError::Protocol(
                    "a WebSocket text message; messages must be binary".to_owned(),
                ))),
                // Answered by the WebSocket layer; the end follows a close.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_)) => {
                    continue
                }
                Err(WsError::Capacity(CapacityError::MessageTooLong { size, .. })) => {
                    Some(Err(FrameError::TooLarge {
                        len: size as u64,
                        max: self.max_frame_len,
                    }))
                }
                // The peer closed its connection without a close message first: its end, as
                // a TCP peer's end of stream is.
                Err(
                    WsError::ConnectionClosed
                    | WsError::AlreadyClosed
                    | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
                ) => None,
                Err(WsError::Io(error)) => Some(Err(FrameError::Io(error))),
                Err(error) => Some(Err(FrameError::Protocol(error.to_string()))),
            };
        }
    }

    async fn peer_gone(&self) {
        watch_end(self.ws.with(|ws| watch_handle(ws.get_ref().tcp()))).await
    }
}

impl<S> FrameWriter for WsWriter<S>
where
    S: AsyncRead + AsyncWrite + OverTcp + Send + Unpin + 'static,
{
    async fn feed(&mut self, frame: Bytes) -> io::Result<()> {
        // The payload is shared with the frame (and with every other peer it goes to).
        let mut message = Some(Message::Binary(frame.slice(HEADER_LEN.min(frame.len())..)));
        poll_fn(|cx| {
            self.ws.with(|ws| {
                let mut ws = std::pin::Pin::new(ws);
                match ws.as_mut().poll_ready(cx) {
                    std::task::Poll::Ready(Ok(())) => {}
                    std::task::Poll::Ready(Err(error)) => {
                        return std::task::Poll::Ready(Err(error));
                    }
                    std::task::Poll::Pending => return std::task::Poll::Pending,
                }
                match message.take() {
                    Some(message) => std::task::Poll::Ready(ws.start_send(message)),
                    None => std::task::Poll::Ready(Ok(())),
                }
            })
        })
        .await
        .map_err(io_error)
    }

    async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| {
            self.ws
                .with(|ws| Sink::poll_flush(std::pin::Pin::new(ws), cx))
        })
        .await
        .map_err(io_error)
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        // Sends a close message after what was written; the peer answers it, and the reader
        // sees the end.
        poll_fn(|cx| {
            self.ws
                .with(|ws| Sink::poll_close(std::pin::Pin::new(ws), cx))
        })
        .await
        .map_err(io_error)
    }

    fn reset(self) {
        // The socket closes, with the reset, when the reader drops its share of the stream.
        self.ws.with(|ws| set_reset_on_close(ws.get_ref().tcp()));
    }
}
