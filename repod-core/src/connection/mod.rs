//! The connection path shared by the server and the client: the bounded outbound queue, the
//! transport halves, and the writer with its close, flush and reset rules.
//!
//! Every connection, on either side, is the same three pieces:
//!
//! * an [`Outbox`], the bounded queue of encoded frames that sends push into without waiting,
//!   and its [`OutboxReceiver`];
//! * a transport split into a frame reader (a stream of frames in) and a frame writer (a sink of
//!   frames out): plain TCP, any byte stream over a TCP socket framed the same way, or
//!   WebSocket (feature `websocket`), for both sides alike;
//! * a writer task draining the queue into the transport, which decides how the connection
//!   ends: gracefully after flushing, within a close timeout; dropped at once; or reset, so
//!   the peer learns at once and nothing unsent stays behind.
//!
//! The [`server`](crate::server) and the [`client`](crate::client) build on this module; it
//! knows neither of them.

mod outbox;
pub(crate) mod stream;
pub(crate) mod transport;
pub(crate) mod writer;
#[cfg(feature = "websocket")]
pub(crate) mod ws;

pub use self::outbox::{Outbox, OutboxReceiver, PushError};

use self::transport::FrameReader;

/// Reads and drops frames until the peer ends the stream (or breaks it).
///
/// A side that has closed its half keeps reading this way until the peer closes too, so that
/// data the peer still sends does not make the closing socket reset the connection before the
/// peer has read the last replies.
pub(crate) async fn discard<R: FrameReader>(reader: &mut R) {
    while let Some(Ok(_)) = reader.next_frame().await {}
}
