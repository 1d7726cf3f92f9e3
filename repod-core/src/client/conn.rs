//! The connection task shared by [`Client`](super::Client) and [`AsyncClient`](super::AsyncClient).
//!
//! One task owns the socket: a reader turning frames into events on a bounded channel, and a
//! writer draining the send queue. The task ends when either side closes, then raises
//! `disconnected` as the last event.

use std::io;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::addr::{parse_url, Scheme, Target};
use super::pending::{Pending, DEFAULT_REQUEST_TIMEOUT};
use crate::codec::{Codec, CodecKind, Envelope, RawMessage};
use crate::connection::transport::{self, FrameReader, FrameWriter};
use crate::connection::writer::{write_outbox, WriteEnd};
use crate::connection::{Outbox, OutboxReceiver, PushError};
use crate::error::{ConnectError, FrameError, SendError};
use crate::message::{
    Connected, Disconnected, ErrorMessage, Heartbeat, HeartbeatAck, Message, SocketConnect,
};

const CONNECTING: u8 = 0;
const CONNECTED: u8 = 1;
const CLOSED: u8 = 2;

/// The state shared by a client's handles and its connection task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) outbox: Outbox,
    pub(crate) codec: CodecKind,
    pub(crate) max_frame_len: usize,
    state: AtomicU8,
    /// Requests in flight, and the ids of new ones.
    pub(crate) requests: Pending,
    /// How long a request waits for its reply unless told otherwise.
    pub(crate) request_timeout: Duration,
    /// The round trip last measured by a heartbeat, in microseconds; 0 before the first.
    rtt_us: AtomicU64,
    /// The clock heartbeats carry: microseconds since this instant.
    epoch: std::time::Instant,
}

impl Shared {
    pub(crate) fn new(outbox: Outbox, codec: CodecKind, max_frame_len: usize) -> Self {
        Shared {
            outbox,
            codec,
            max_frame_len,
            state: AtomicU8::new(CONNECTING),
            requests: Pending::new(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            rtt_us: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
        }
    }

    /// The same, with another default request timeout.
    pub(crate) fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Whether frames may still be queued: the connection is not closed nor closing.
    pub(crate) fn accepts_frames(&self) -> bool {
        !self.outbox.is_closing() && self.state.load(Ordering::Acquire) != CLOSED
    }

    /// The round trip last measured by a heartbeat.
    pub(crate) fn rtt(&self) -> Option<Duration> {
        match self.rtt_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Queues a heartbeat carrying the clock and the last round trip.
    fn beat(&self) {
        let _ = self.send(&Heartbeat {
            t: self.now_us(),
            rtt_us: self.rtt_us.load(Ordering::Relaxed),
        });
    }

    /// Measures the round trip from a heartbeat's answer.
    fn acked(&self, ack: HeartbeatAck) {
        let rtt = self.now_us().saturating_sub(ack.t).max(1);
        self.rtt_us.store(rtt, Ordering::Relaxed);
    }

    /// Encodes and queues a message; never waits.
    ///
    /// `Ok` means the frame will be written unless the connection breaks: the outbox takes no
    /// frame once its writer has begun its final drain, so every send that succeeded is
    /// drained, and every later one fails with [`SendError::Closed`].
    pub(crate) fn send<M: Message + ?Sized>(&self, msg: &M) -> Result<(), SendError> {
        if !self.accepts_frames() {
            return Err(SendError::Closed);
        }
        let frame = self.codec.encode(msg, self.max_frame_len)?;
        self.outbox.push(frame).map_err(|e| match e {
            PushError::Full => SendError::QueueFull,
            PushError::Closed => SendError::Closed,
        })
    }

    /// Asks the task to flush what is queued and close.
    pub(crate) fn close(&self) {
        self.outbox.close();
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.state.load(Ordering::Acquire) == CONNECTED && !self.outbox.is_closing()
    }

    /// Marks the connection established (the TCP connect succeeded).
    pub(crate) fn mark_connected(&self) {
        self.set_state(CONNECTED);
    }

    /// Marks the connection gone: sends fail from now on.
    pub(crate) fn mark_closed(&self) {
        self.set_state(CLOSED);
    }

    fn set_state(&self, state: u8) {
        self.state.store(state, Ordering::Release);
    }
}

/// Settings the connection task needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskConfig {
    pub(crate) connect_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) tcp_keepalive: Option<Duration>,
}

/// An established connection, its handshake (if its transport has one) done.
pub(crate) enum Connection {
    /// Plain TCP.
    Tcp(TcpStream),
    /// WebSocket, upgraded.
    #[cfg(feature = "websocket")]
    Ws(
        crate::connection::ws::WsReader<TcpStream>,
        crate::connection::ws::WsWriter<TcpStream>,
    ),
}

/// Opens the connection and makes its transport's handshake, bounded by `timeout` as a
/// whole.
pub(crate) async fn connect(
    target: &Target,
    label: &str,
    timeout: Duration,
    tcp_keepalive: Option<Duration>,
    max_frame_len: usize,
) -> Result<Connection, ConnectError> {
    let connecting = async {
        let stream = target.connect().await?;
        transport::set_keepalive(&stream, tcp_keepalive);
        let Target::Url(url) = target else {
            return Ok(Connection::Tcp(stream));
        };
        let (scheme, _) = parse_url(url)?;
        match scheme {
            #[cfg(feature = "websocket")]
            Scheme::Ws => {
                let _ = stream.set_nodelay(true);
                let (reader, writer) =
                    crate::connection::ws::connect(url, stream, max_frame_len).await?;
                Ok(Connection::Ws(reader, writer))
            }
            #[cfg(not(feature = "websocket"))]
            Scheme::Ws => {
                let _ = (stream, max_frame_len);
                Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "ws:// addresses need repod's `websocket` feature",
                ))
            }
        }
    };
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(source)) => Err(ConnectError::Io {
            addr: label.to_owned(),
            source,
        }),
        Err(_) => Err(ConnectError::Timeout {
            addr: label.to_owned(),
            after: timeout,
        }),
    }
}

/// The whole life of a game-loop client's connection: connect, then [`run`].
///
/// A failed connect raises `error` then `disconnected`, never `connected`.
pub(crate) async fn connect_and_run(
    target: Target,
    label: String,
    shared: Arc<Shared>,
    outbox: OutboxReceiver,
    events: mpsc::Sender<RawMessage>,
    config: TaskConfig,
) -> String {
    let closing = outbox.closing_token().clone();
    let result = {
        let connecting = connect(
            &target,
            &label,
            config.connect_timeout,
            config.tcp_keepalive,
            shared.max_frame_len,
        );
        tokio::pin!(connecting);
        tokio::select! {
        result = &mut connecting => Some(result),
        () = closing.cancelled() => {
            // Closed while connecting: still deliver what was queued, within the close
            // timeout; with nothing queued, give up at once.
            if shared.outbox.queued_bytes() > 0 {
                tokio::time::timeout(config.close_timeout, &mut connecting).await.ok()
            } else {
                None
            }
        }
        }
    };
    let connection = match result {
        Some(Ok(connection)) => connection,
        Some(Err(error)) => {
            tracing::debug!(target: "repod::client", addr = %label, %error, "connect failed");
            shared.mark_closed();
            shared.requests.close();
            drop(outbox);
            let reason = error.to_string();
            emit(&events, shared.codec, &ErrorMessage::new(reason.clone())).await;
            emit_final(&events, shared.codec, &reason).await;
            return reason;
        }
        None => {
            tracing::debug!(target: "repod::client", addr = %label, "closed while connecting");
            shared.mark_closed();
            shared.requests.close();
            drop(outbox);
            let reason = "closed by client".to_owned();
            emit_final(&events, shared.codec, &reason).await;
            return reason;
        }
    };
    run(connection, label, shared, outbox, events, config).await
}

/// Drives an established connection until either side closes it; returns the reason, which
/// is also the `disconnected` event's.
pub(crate) async fn run(
    connection: Connection,
    label: String,
    shared: Arc<Shared>,
    outbox: OutboxReceiver,
    events: mpsc::Sender<RawMessage>,
    config: TaskConfig,
) -> String {
    match connection {
        Connection::Tcp(stream) => {
            let halves = transport::tcp(stream, shared.max_frame_len);
            run_on(halves, label, shared, outbox, events, config).await
        }
        #[cfg(feature = "websocket")]
        Connection::Ws(reader, writer) => {
            run_on((reader, writer), label, shared, outbox, events, config).await
        }
    }
}

/// [`run`] over a transport's halves.
async fn run_on<R: FrameReader, W: FrameWriter>(
    (reader, writer): (R, W),
    label: String,
    shared: Arc<Shared>,
    mut outbox: OutboxReceiver,
    events: mpsc::Sender<RawMessage>,
    config: TaskConfig,
) -> String {
    tracing::debug!(target: "repod::client", addr = %label, "connected");
    shared.mark_connected();
    // `connected` is the server's own greeting, delivered when it arrives: it means the server
    // accepted this connection. A server that refuses (full) sends `error` instead.
    emit(&events, shared.codec, &SocketConnect).await;

    let heartbeat = async {
        match config.heartbeat {
            Some(period) => {
                let mut ticks =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    shared.beat();
                }
            }
            None => std::future::pending().await,
        }
    };
    let closing = outbox.closing_token().clone();
    let close_deadline = async {
        closing.cancelled().await;
        tokio::time::sleep(config.close_timeout).await;
    };
    let reason = {
        let read = read_loop(reader, &events, &shared);
        let write = write_outbox(writer, &mut outbox, config.close_timeout);
        tokio::pin!(close_deadline, read, write, heartbeat);
        tokio::select! {
            () = &mut heartbeat => unreachable!("the heartbeat never ends"),
            reason = &mut read => reason,
            end = &mut write => match end {
                WriteEnd::Closed => {
                    // Our side is shut; keep reading until the server closes too, so that data
                    // still arriving cannot make our socket reset the connection before the
                    // server has read everything we sent.
                    tokio::select! {
                        _ = &mut read => {}
                        () = &mut close_deadline => {}
                    }
                    "closed by client".to_owned()
                }
                WriteEnd::Reset { timed_out: true } => format!(
                    "closed by client (flush timed out after {:?})",
                    config.close_timeout
                ),
                WriteEnd::Reset { timed_out: false } | WriteEnd::Dropped => {
                    "closed by client".to_owned()
                }
                WriteEnd::Failed(error) => io_reason(&error),
            },
        }
    };
    shared.mark_closed();
    // Every request still waiting for its reply fails now.
    shared.requests.close();
    drop(outbox);
    tracing::debug!(target: "repod::client", addr = %label, %reason, "disconnected");
    emit_final(&events, shared.codec, &reason).await;
    reason
}

/// Reads frames into events until the peer closes or breaks the protocol; returns the reason.
async fn read_loop<R: FrameReader>(
    mut reader: R,
    events: &mpsc::Sender<RawMessage>,
    shared: &Shared,
) -> String {
    let codec = shared.codec;
    loop {
        let payload = match reader.next_frame().await {
            None => return "closed by peer".to_owned(),
            Some(Ok(payload)) => payload,
            Some(Err(FrameError::Io(error))) => return io_reason(&error),
            Some(Err(error)) => {
                tracing::warn!(target: "repod::client", %error, "broken frame from server");
                emit(events, codec, &ErrorMessage::new(error.to_string())).await;
                return format!("protocol error: {error}");
            }
        };
        shared.outbox.note_received();
        match codec.decode_raw(payload) {
            Ok(raw) => {
                if raw.action() == HeartbeatAck::ACTION {
                    // The answer to our heartbeat: measured, never delivered.
                    if let Ok(ack) = raw.decode::<HeartbeatAck>() {
                        shared.acked(ack);
                    }
                    continue;
                }
                if raw.action() == Connected::ACTION {
                    tracing::debug!(target: "repod::client", "accepted by the server");
                }
                tracing::trace!(target: "repod::client", action = raw.action(), len = raw.payload().len(), "received");
                // A reply goes straight to the request awaiting it; one no task awaits (a
                // game-loop request's) travels with the events to `pump`.
                let raw = match raw.reply_id() {
                    Some(_) => match shared.requests.complete(raw) {
                        Some(raw) => raw,
                        None => continue,
                    },
                    None => raw,
                };
                deliver(events, raw, &reader, shared).await;
            }
            Err(error) => {
                tracing::warn!(target: "repod::client", %error, "undecodable message from server");
                let text = format!("undecodable message from server: {error}");
                emit(events, codec, &ErrorMessage::new(text)).await;
            }
        }
    }
}

/// Hands a received message to the application's event queue.
///
/// A full queue (an application that does not pump) stops the reader here, which is the
/// backpressure the server feels. Meanwhile the transport is watched, without reading, for the
/// server's end of the connection: once it has closed or reset the connection, the client is
/// marked disconnected at once, though the messages before the end still wait to be pumped.
async fn deliver<R: FrameReader>(
    events: &mpsc::Sender<RawMessage>,
    raw: RawMessage,
    reader: &R,
    shared: &Shared,
) {
    let permit = match events.try_reserve() {
        Ok(permit) => Ok(permit),
        // The client is gone: keep reading so the writer can finish flushing, and drop what
        // arrives.
        Err(mpsc::error::TrySendError::Closed(())) => return,
        Err(mpsc::error::TrySendError::Full(())) => {
            tokio::select! {
                biased;
                permit = events.reserve() => permit,
                () = reader.peer_gone() => {
                    tracing::debug!(target: "repod::client", "the server ended the connection while events wait to be pumped");
                    shared.mark_closed();
                    events.reserve().await
                }
            }
        }
    };
    if let Ok(permit) = permit {
        permit.send(raw);
    }
}

/// The reason given for a connection that failed with `error`.
fn io_reason(error: &io::Error) -> String {
    match error.kind() {
        // The server gave up on this connection without flushing it (a repod server does so to
        // a client that does not read: a slow consumer, or a close or shutdown that ran out of
        // time), or its host dropped it.
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => "reset by peer".to_owned(),
        _ => format!("i/o error: {error}"),
    }
}

/// Raises the last event, `disconnected`, marked so that `pump` fails the requests still
/// waiting before it dispatches it.
async fn emit_final(events: &mpsc::Sender<RawMessage>, codec: CodecKind, reason: &str) {
    let disconnected = Disconnected {
        reason: reason.to_owned(),
    };
    match RawMessage::from_message(codec, &disconnected) {
        Ok(raw) => {
            let _ = events.send(raw.with_envelope(Envelope::Final)).await;
        }
        Err(error) => {
            tracing::error!(target: "repod::client", %error, "cannot encode the disconnected event")
        }
    }
}

/// Raises a local event; dropped silently when the client is gone.
async fn emit<M: Message + ?Sized>(events: &mpsc::Sender<RawMessage>, codec: CodecKind, msg: &M) {
    match RawMessage::from_message(codec, msg) {
        Ok(raw) => {
            let _ = events.send(raw).await;
        }
        Err(error) => {
            tracing::error!(target: "repod::client", action = M::ACTION, %error, "cannot encode local event")
        }
    }
}
