//! [`ClientBuilder`]: the settings of a connection, with written-down defaults.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::addr::ServerAddr;
use super::conn::{self, Shared, TaskConfig};
use super::pending::DEFAULT_REQUEST_TIMEOUT;
use super::{reconnect, AsyncClient, Client};
use crate::codec::{CodecKind, RawMessage};
use crate::connection::{Outbox, OutboxReceiver};
use crate::error::ConnectError;
use crate::frame::{FrameConfig, DEFAULT_MAX_FRAME_LEN};
use crate::session::Backoff;

/// The default send queue limit in frames: 4,096.
pub const DEFAULT_SEND_QUEUE_FRAMES: usize = 4096;
/// The default send queue limit in bytes: 4 MiB.
pub const DEFAULT_SEND_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// Room in the send queue for a session's own frames, beyond its limits.
const SESSION_SLACK_FRAMES: usize = 64;
const SESSION_SLACK_BYTES: usize = 16 * 1024;

/// The default capacity of the received-event queue: 1,024 events.
pub const DEFAULT_EVENT_QUEUE: usize = 1024;
/// The default connect timeout: 10 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default time `close` and drop give queued messages to leave: 2 seconds.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Settings of a client connection; terminals [`connect`](ClientBuilder::connect) (game loop)
/// and [`connect_async`](ClientBuilder::connect_async) (tokio).
///
/// Setters take and return the builder by value, like the server's; the terminals borrow it,
/// so one builder can be kept (or cloned) and connect any number of times.
///
/// ```no_run
/// use repod_core::{Client, CodecKind};
///
/// let builder = Client::builder().codec(CodecKind::MsgPack);
/// let builder = builder.max_frame_len(64 * 1024);
/// let addr = format!("{}:{}", "127.0.0.1", 31425);
/// let client = builder.connect(addr.as_str())?; // a borrowed address is fine
/// let other = builder.connect("127.0.0.1:31426")?;
/// # Ok::<(), repod_core::ConnectError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` or `connect_async` is called"]
pub struct ClientBuilder {
    codec: CodecKind,
    max_frame_len: usize,
    send_frames: usize,
    send_bytes: usize,
    event_queue: usize,
    connect_timeout: Duration,
    close_timeout: Duration,
    request_timeout: Duration,
    heartbeat: Option<Duration>,
    tcp_keepalive: Option<Duration>,
    reconnect: Option<Backoff>,
    resume: bool,
    tls: Option<conn::ClientTls>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder::new()
    }
}

impl ClientBuilder {
    /// A builder with the default settings.
    pub fn new() -> Self {
        ClientBuilder {
            codec: CodecKind::Bincode,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            send_frames: DEFAULT_SEND_QUEUE_FRAMES,
            send_bytes: DEFAULT_SEND_QUEUE_BYTES,
            event_queue: DEFAULT_EVENT_QUEUE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            heartbeat: None,
            tcp_keepalive: Some(crate::server::DEFAULT_TCP_KEEPALIVE),
            reconnect: None,
            resume: false,
            tls: None,
        }
    }

    /// The codec of the connection; it must match the server's.
    /// The default is [`CodecKind::Bincode`]; use [`CodecKind::MsgPack`] with Python servers.
    pub fn codec(mut self, codec: CodecKind) -> Self {
        self.codec = codec;
        self
    }

    /// The largest frame payload received or sent, in bytes. A larger frame from the server
    /// raises `error` and closes the connection; a larger message makes `send` fail.
    /// The default is 1 MiB ([`DEFAULT_MAX_FRAME_LEN`]); values above `u32::MAX` are clipped.
    pub fn max_frame_len(mut self, max_frame_len: usize) -> Self {
        self.max_frame_len = FrameConfig::with_max_frame_len(max_frame_len).max_frame_len;
        self
    }

    /// Limits of the send queue, in frames and in bytes (at least one frame is always
    /// accepted). `send` fails with `SendError::QueueFull` beyond them. The defaults are
    /// 4,096 frames and 4 MiB.
    pub fn send_queue(mut self, frames: usize, bytes: usize) -> Self {
        self.send_frames = frames.max(1);
        self.send_bytes = bytes;
        self
    }

    /// Capacity of the queue of received events waiting for `pump` or `recv`. When it is
    /// full the client stops reading from the socket, so the server feels the backpressure.
    /// The default is 1,024 events (at least 4).
    pub fn event_queue(mut self, events: usize) -> Self {
        self.event_queue = events;
        self
    }

    /// How long the connect may take: the TCP connect and, for a `ws://` address, the
    /// WebSocket upgrade. The default is 10 seconds.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long `close` and drop let queued messages leave before the socket is dropped.
    /// The default is 2 seconds.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// How long a request waits for its reply before it fails with
    /// [`RequestError::Timeout`](crate::RequestError::Timeout), unless the call sets its own
    /// (`request_with_timeout`). The default is 10 seconds ([`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sends a [`Heartbeat`](crate::Heartbeat) every `interval` while connected, on the
    /// client's own i/o task (a game that stops pumping still beats). A repod server counts it
    /// as a sign of life for its [idle timeout](crate::server::ServerBuilder::idle_timeout),
    /// answers it without dispatching it, and the answer gives the round-trip time
    /// ([`Client::rtt`], [`AsyncClient::rtt`]; the server reads it with
    /// [`Context::rtt`](crate::server::Context::rtt)). Use an interval well below the
    /// server's idle timeout (a third of it, say). Not for Python repod servers, which would
    /// see an unknown `_heartbeat` action. The default is none.
    ///
    /// # Panics
    ///
    /// Panics if `interval` is zero.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        assert!(
            !interval.is_zero(),
            "the heartbeat interval must not be zero"
        );
        self.heartbeat = Some(interval);
        self
    }

    /// TCP keepalive on the socket: the system probes a connection silent for `idle` and
    /// ends it when the server's machine is gone. `None` turns it off. The default is 30
    /// seconds.
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.tcp_keepalive = idle;
        self
    }

    /// Reconnects when the connection is lost, waiting between attempts as `backoff` says,
    /// until [`close`](Client::close), a refusal from the server (an `error` before its
    /// greeting, as for a full server or a failed login) or the backoff's
    /// [attempt limit](Backoff::max_attempts). The default is none: a lost connection ends the
    /// client.
    ///
    /// Each connection raises its own `socketConnect`, `connected` and, when it is lost, a
    /// `disconnected` whose reason says why; the last `disconnected` is the one after which
    /// nothing follows. Between connections, without [`resume`](Self::resume), a send fails
    /// at once with [`SendError::Disconnected`](crate::SendError::Disconnected), what was
    /// queued and not written is lost with the connection, and requests in flight fail with
    /// [`RequestError::Disconnected`](crate::RequestError::Disconnected).
    pub fn reconnect(mut self, backoff: Backoff) -> Self {
        self.reconnect = Some(backoff);
        self
    }

    /// Asks the server for a resumable session (the server must resume them:
    /// [`ServerBuilder::resume`](crate::server::ServerBuilder::resume)); implies
    /// [`reconnect`](Self::reconnect) with the default [`Backoff`] unless set.
    ///
    /// A lost connection then resumes its session on the next one: the same channel on the
    /// server, and every message in both directions delivered once, in order. Sends between
    /// connections are kept, with those the server has not acknowledged, in the send queue's
    /// limits ([`send_queue`](Self::send_queue); beyond them `send` fails with
    /// [`SendError::QueueFull`](crate::SendError::QueueFull)), and go out on the next
    /// connection. Requests in flight wait for their replies across a resume. Each connection
    /// raises a [`SessionStarted`](crate::SessionStarted) event (`"session"`) that tells a
    /// resumed session from a new one. The default is off.
    ///
    /// Only for servers that resume sessions: the client's first frame is a session hello,
    /// which a server that authenticates without resuming sessions would refuse.
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        if resume && self.reconnect.is_none() {
            self.reconnect = Some(Backoff::new());
        }
        self
    }

    /// Connects over TLS, trusting what `config` trusts (feature `tls`). The handshake is part
    /// of connecting: it must finish within the [connect timeout](Self::connect_timeout), and
    /// a server whose certificate is not trusted, or not valid for the server name, fails the
    /// connect with [`ConnectError::Tls`]. The server serves TLS on a listener of its own
    /// (`ServerBuilder::listen_tls`). The default is plain TCP.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::tls::TlsClientConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Starts a game-loop [`Client`] connecting to `addr`; returns at once.
    ///
    /// The connection is made on the client's i/o thread; its outcome arrives through
    /// [`Client::pump`] as `socketConnect` then, once the server accepts it, `connected`; or
    /// as `error` then `disconnected`.
    /// Fails only if the i/o thread cannot be started.
    ///
    /// The address may be borrowed (`addr.as_str()`): it is copied before this returns, and a
    /// host name is resolved on the i/o thread.
    pub fn connect<A: ServerAddr>(&self, addr: A) -> Result<Client, ConnectError> {
        let target = addr.target();
        let label = target.to_string();
        let (shared, outbox, events_tx, events_rx) = self.parts();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ConnectError::Runtime)?;
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let task_shared = shared.clone();
        let config = self.task_config();
        let reconnect = self.reconnect;
        std::thread::Builder::new()
            .name("repod-client".to_owned())
            .spawn(move || {
                match reconnect {
                    Some(backoff) => {
                        runtime.block_on(reconnect::run(
                            target,
                            label,
                            task_shared,
                            outbox,
                            events_tx,
                            config,
                            backoff,
                            None,
                        ));
                    }
                    None => {
                        runtime.block_on(conn::connect_and_run(
                            target,
                            label,
                            task_shared,
                            outbox,
                            events_tx,
                            config,
                        ));
                    }
                }
                let _ = done_tx.send(());
            })
            .map_err(ConnectError::Runtime)?;
        Ok(Client::new(shared, events_rx, done_rx, self.close_timeout))
    }

    /// Connects an [`AsyncClient`] to `addr`, waiting for the TCP connection.
    ///
    /// The connection task is spawned on the current tokio runtime.
    pub async fn connect_async<A: ServerAddr>(&self, addr: A) -> Result<AsyncClient, ConnectError> {
        let target = addr.target();
        let label = target.to_string();
        let connection = conn::connect(
            &target,
            &label,
            self.connect_timeout,
            self.tcp_keepalive,
            self.max_frame_len,
            self.tls.as_ref(),
        )
        .await?;
        let (shared, outbox, events_tx, events_rx) = self.parts();
        shared.mark_connected();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let config = self.task_config();
        match self.reconnect {
            Some(backoff) => {
                let task = reconnect::run(
                    target,
                    label,
                    shared.clone(),
                    outbox,
                    events_tx,
                    config,
                    backoff,
                    Some(connection),
                );
                tokio::spawn(async move {
                    let reason = task.await;
                    let _ = done_tx.send(reason);
                });
            }
            None => {
                let task = conn::run(connection, label, shared.clone(), outbox, events_tx, config);
                tokio::spawn(async move {
                    let reason = task.await;
                    let _ = done_tx.send(reason);
                });
            }
        }
        Ok(AsyncClient::new(shared, events_rx, done_rx))
    }

    fn task_config(&self) -> TaskConfig {
        TaskConfig {
            connect_timeout: self.connect_timeout,
            close_timeout: self.close_timeout,
            heartbeat: self.heartbeat,
            tcp_keepalive: self.tcp_keepalive,
            resume: self.resume,
            tls: self.tls.clone(),
        }
    }

    #[allow(clippy::type_complexity)]
    fn parts(
        &self,
    ) -> (
        Arc<Shared>,
        OutboxReceiver,
        mpsc::Sender<RawMessage>,
        mpsc::Receiver<RawMessage>,
    ) {
        // A session's own frames (hello, acknowledgements) come on top of the queue's limits.
        let (frames, bytes) = if self.resume {
            (
                self.send_frames + SESSION_SLACK_FRAMES,
                self.send_bytes.saturating_add(SESSION_SLACK_BYTES),
            )
        } else {
            (self.send_frames, self.send_bytes)
        };
        let (outbox, outbox_rx) = Outbox::with_direct_writes(frames, bytes);
        let mut shared = Shared::new(outbox, self.codec, self.max_frame_len)
            .with_request_timeout(self.request_timeout);
        if self.reconnect.is_some() {
            shared = shared.with_link(self.resume.then_some((self.send_frames, self.send_bytes)));
        }
        let shared = Arc::new(shared);
        let (events_tx, events_rx) = mpsc::channel(self.event_queue.max(4));
        (shared, outbox_rx, events_tx, events_rx)
    }
}
