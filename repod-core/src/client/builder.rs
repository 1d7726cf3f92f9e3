//! [`ClientBuilder`]: the settings of a connection, with written-down defaults.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::addr::ServerAddr;
use super::conn::{self, Shared, TaskConfig};
use super::pending::DEFAULT_REQUEST_TIMEOUT;
use super::{AsyncClient, Client};
use crate::codec::{CodecKind, RawMessage};
use crate::connection::{Outbox, OutboxReceiver};
use crate::error::ConnectError;
use crate::frame::{FrameConfig, DEFAULT_MAX_FRAME_LEN};

/// The default send queue limit in frames: 4,096.
pub const DEFAULT_SEND_QUEUE_FRAMES: usize = 4096;
/// The default send queue limit in bytes: 4 MiB.
pub const DEFAULT_SEND_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// The default capacity of the received-event queue: 1,024 events.
pub const DEFAULT_EVENT_QUEUE: usize = 1024;
/// The default connect timeout: 10 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default time `close` and drop give queued messages to leave: 2 seconds.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Settings of a client connection; terminals [`connect`](ClientBuilder::connect) (game loop)
/// and [`connect_async`](ClientBuilder::connect_async) (tokio).
///
/// Setters take and return the builder by value, like the server's; it is `Copy`, so one
/// builder can be kept and connect any number of times.
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
#[derive(Debug, Clone, Copy)]
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
        std::thread::Builder::new()
            .name("repod-client".to_owned())
            .spawn(move || {
                runtime.block_on(conn::connect_and_run(
                    target,
                    label,
                    task_shared,
                    outbox,
                    events_tx,
                    config,
                ));
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
        )
        .await?;
        let (shared, outbox, events_tx, events_rx) = self.parts();
        shared.mark_connected();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let task = conn::run(
            connection,
            label,
            shared.clone(),
            outbox,
            events_tx,
            self.task_config(),
        );
        tokio::spawn(async move {
            let reason = task.await;
            let _ = done_tx.send(reason);
        });
        Ok(AsyncClient::new(shared, events_rx, done_rx))
    }

    fn task_config(&self) -> TaskConfig {
        TaskConfig {
            connect_timeout: self.connect_timeout,
            close_timeout: self.close_timeout,
            heartbeat: self.heartbeat,
            tcp_keepalive: self.tcp_keepalive,
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
        let (outbox, outbox_rx) = Outbox::with_direct_writes(self.send_frames, self.send_bytes);
        let shared = Arc::new(
            Shared::new(outbox, self.codec, self.max_frame_len)
                .with_request_timeout(self.request_timeout),
        );
        let (events_tx, events_rx) = mpsc::channel(self.event_queue.max(4));
        (shared, outbox_rx, events_tx, events_rx)
    }
}
