//! The server: one channel per connection, one dispatch loop, broadcast, flow control.
//!
//! A [`Server`] accepts TCP connections (and WebSocket ones on the listeners added with
//! `ServerBuilder::listen_ws`, feature `websocket`) and gives each one a channel value
//! (`Ch`). Every connection has a reader task, which splits frames and reads their action
//! names, and a writer task, which drains the connection's bounded outbound queue into the
//! socket. All handlers run
//! on one dispatch loop, in arrival order per connection, with access to every channel and the
//! shared state through their [`Context`]; no locks are needed.
//!
//! Channels can join named groups (rooms): a group send encodes once and costs one queue push
//! per member. See [`Context::join`] and [`Context::send_to_group`].
//!
//! A send to one channel returns `Result<(), SendError>`, saying why that message did not go; a
//! send to many channels returns how many it was queued to. Slow work (a database, a web
//! service) runs off the loop with [`Context::spawn`], its result coming back to the channel on
//! the loop.
//!
//! Start one with [`ServerBuilder::launch`] (blocking, stops on SIGINT or SIGTERM),
//! [`ServerBuilder::bind`] then [`Server::run`] or [`Server::run_until`] (async), or
//! [`ServerBuilder::start_background`] (own thread, for "host and play"). A [`ServerHandle`]
//! reaches the loop from any thread.
//!
//! Logs go through `tracing` with the target `repod::server`: a `conn` span per connection
//! (`conn_id`, `peer`), lifecycle events at DEBUG, misbehaving peers at WARN, our own faults at
//! ERROR. Nothing is printed unless the application installs a subscriber.

mod auth;
mod builder;
mod channel;
#[cfg_attr(not(feature = "cluster"), path = "cluster_off.rs")]
mod cluster;
mod conn;
mod groups;
mod hub;
mod limits;
mod listen;
mod reply;
mod session;
mod shutdown;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

#[doc(hidden)]
pub use self::auth::{login_step, LoginStep};
pub use self::builder::{
    ServerBuilder, DEFAULT_CLOSE_TIMEOUT, DEFAULT_COMMAND_QUEUE, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_INBOUND_QUEUE_BYTES, DEFAULT_MAX_CONNECTIONS, DEFAULT_OUTBOUND_QUEUE_BYTES,
    DEFAULT_OUTBOUND_QUEUE_FRAMES, DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_TCP_KEEPALIVE,
};
pub use self::channel::Channel;
#[cfg(feature = "cluster")]
pub use self::cluster::{
    ClusterConfig, ClusterStats, DEFAULT_CLUSTER_QUEUE, DEFAULT_HEARTBEAT, DEFAULT_NODE_TIMEOUT,
};
pub use self::hub::{ChannelId, Context, Hub, HubConfig, Peer, PeerInfo, ServerContext};
pub use self::limits::{RateLimit, RatePolicy};
pub use self::listen::Transport;
pub use self::reply::{ReplyTo, DROPPED_REPLY};
pub use self::session::{
    Resume, DEFAULT_HELLO_WINDOW, DEFAULT_REPLAY_BYTES, DEFAULT_REPLAY_FRAMES,
};
pub use self::shutdown::ShutdownSignal;
pub use crate::connection::{Outbox, OutboxReceiver, PushError};

use self::auth::Auth;
use self::builder::{ServerConfig, Tick};
use self::conn::{ConnConfig, ConnEvent, OpenGuard, Pending};
use self::hub::panic_message;
use self::limits::IpSlots;
use self::listen::{accept_loop, Accepted, ListenKind};
use crate::codec::Codec;
use crate::connection::transport;
use crate::error::{CloseReason, CodecError, SendError};
use crate::frame::{Frame, HEADER_LEN};
use crate::message::{ErrorMessage, Message};

/// An error of the server layer: starting, running or reaching a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address as given.
        addr: String,
        /// Why binding failed.
        #[source]
        source: io::Error,
    },
    /// The tokio runtime or the server thread could not be started.
    #[error("cannot start the server runtime: {0}")]
    Runtime(#[source] io::Error),
    /// The local address of the listener could not be read.
    #[error("cannot read the listener's local address: {0}")]
    LocalAddr(#[source] io::Error),
    /// The server has shut down, or is shutting down.
    #[error("the server is not running")]
    Closed,
    /// The closure run through [`ServerHandle::call`] or [`ServerHandle::call_blocking`]
    /// panicked, with this message. The panic was caught on the dispatch loop: the server
    /// keeps running, and what the closure changed before it panicked stays changed.
    #[error("the code run on the server panicked: {0}")]
    CallPanicked(String),
    /// The server's dispatch loop (or its background thread) panicked outside any handler
    /// (handler panics are caught and close only their channel).
    #[error("the server's dispatch loop panicked")]
    ThreadPanicked,
    /// The server could not join its cluster: Redis unreachable, or the cluster uses another
    /// codec (see [`ServerBuilder::cluster`]).
    #[cfg(feature = "cluster")]
    #[error("cannot join the cluster: {0}")]
    Cluster(String),
}

pub(crate) type CallFn<Ch> = Box<dyn FnOnce(&mut ServerContext<'_, Ch>) + Send>;
/// The rest of a handler, run when the work it spawned is done.
pub(crate) type ResumeFn<Ch> = Box<dyn FnOnce(&mut Ch, &mut Context<'_, Ch>) + Send>;

pub(crate) enum Command<Ch: Channel> {
    SendTo(ChannelId, Bytes),
    SendToAll(Bytes),
    SendToMany(Box<[ChannelId]>, Bytes),
    /// A frame for the members of a group; `name` holds the group's name as UTF-8.
    SendToGroup {
        name: Bytes,
        frame: Bytes,
        except: Option<ChannelId>,
    },
    Call(CallFn<Ch>),
    /// The continuation of work spawned by a channel's handler.
    Resume(ChannelId, ResumeFn<Ch>),
}

struct Shared {
    shutdown: CancellationToken,
    connections: AtomicUsize,
    /// The address of every listener, the main (TCP) one first.
    local_addrs: Vec<(Transport, SocketAddr)>,
    codec: crate::codec::CodecKind,
    max_frame_len: usize,
    /// This node's number and counters, on a cluster node.
    #[cfg(feature = "cluster")]
    cluster: std::sync::OnceLock<(u32, Arc<cluster::Counters>)>,
}

/// A bound server, ready to [`run`](Server::run).
///
/// ```no_run
/// # use repod_core::{Channel, Context, RawMessage, server::Server};
/// # #[derive(Default)] struct Lobby;
/// # impl Channel for Lobby {
/// #     type State = ();
/// #     type Inbound = RawMessage;
/// #     const ACTIONS: &'static [&'static str] = &[];
/// #     fn decode(msg: RawMessage) -> RawMessage { msg }
/// #     fn dispatch(&mut self, _: &mut Context<'_, Self>, _: RawMessage) {}
/// # }
/// # async fn serve() -> Result<(), repod_core::server::ServerError> {
/// let server = Server::<Lobby>::builder().bind("127.0.0.1:0").await?;
/// println!("listening on {}", server.local_addr());
/// let handle = server.handle(); // to stop it later: handle.shutdown()
/// server.run().await
/// # }
/// ```
pub struct Server<Ch: Channel> {
    /// The main (TCP) listener first.
    listeners: Vec<(TcpListener, ListenKind)>,
    #[cfg(feature = "websocket")]
    ws_options: crate::connection::ws::WsOptions,
    hub: Hub<Ch>,
    config: ServerConfig,
    tick: Tick<Ch>,
    handle: ServerHandle<Ch>,
    commands: mpsc::Receiver<Command<Ch>>,
    auth: Option<Auth>,
    cluster: cluster::Io,
}

impl<Ch: Channel> fmt::Debug for Server<Ch> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addrs", &self.local_addrs())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<Ch> Server<Ch>
where
    Ch: Channel + Default,
    Ch::State: Default,
{
    /// A builder with the default state, creating each channel with `Ch::default()`.
    pub fn builder() -> ServerBuilder<Ch> {
        ServerBuilder::new(Ch::State::default(), Box::new(|_: &PeerInfo| Ch::default()))
    }
}

impl<Ch: Channel + Default> Server<Ch> {
    /// A builder with this server-wide state, creating each channel with `Ch::default()`.
    pub fn builder_with_state(state: Ch::State) -> ServerBuilder<Ch> {
        ServerBuilder::new(state, Box::new(|_: &PeerInfo| Ch::default()))
    }
}

impl<Ch: Channel> Server<Ch> {
    /// A builder with this state, creating each channel with `factory`.
    pub fn builder_with(
        state: Ch::State,
        factory: impl FnMut(&PeerInfo) -> Ch + Send + 'static,
    ) -> ServerBuilder<Ch> {
        ServerBuilder::new(state, Box::new(factory))
    }

    /// A server over bound listeners, the main (TCP) one first.
    fn from_listeners(
        mut builder: ServerBuilder<Ch>,
        listeners: Vec<(TcpListener, ListenKind)>,
    ) -> Result<Self, ServerError> {
        let mut auth = builder.auth.take();
        if let (Some(auth), Some(attempts)) =
            (auth.as_mut(), builder.config.auth_attempts_per_minute)
        {
            auth.limit_attempts(attempts);
        }
        let local_addrs = listeners
            .iter()
            .map(|(listener, kind)| Ok((kind.transport(), listener.local_addr()?)))
            .collect::<io::Result<Vec<_>>>()
            .map_err(ServerError::LocalAddr)?;
        let (handle, commands) = ServerHandle::new_pair(
            builder.config.codec,
            builder.config.max_frame_len,
            local_addrs,
            builder.config.command_queue,
        );
        #[cfg(feature = "websocket")]
        let ws_options = builder.ws_options.clone();
        let (hub, config, tick, cluster) = builder.into_hub(handle.clone());
        #[cfg(feature = "cluster")]
        if let Some(counters) = hub.cluster_counters() {
            let _ = handle.shared.cluster.set((hub.cluster_node(), counters));
        }
        Ok(Server {
            listeners,
            #[cfg(feature = "websocket")]
            ws_options,
            hub,
            config,
            tick,
            handle,
            commands,
            auth,
            cluster,
        })
    }

    /// The main address the server listens on (the one given to `bind`); with port 0, the
    /// port the system picked.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// The address of every listener with its transport, the main one first.
    pub fn local_addrs(&self) -> &[(Transport, SocketAddr)] {
        self.handle.local_addrs()
    }

    /// The address of the first WebSocket listener (see
    /// [`ServerBuilder::listen_ws`]), if there is one.
    #[cfg(feature = "websocket")]
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.handle.ws_addr()
    }

    /// The address of the first TLS listener (see [`ServerBuilder::listen_tls`] and
    /// [`ServerBuilder::tls`]), if there is one.
    #[cfg(feature = "tls")]
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.handle.tls_addr()
    }

    /// The address of the first WebSocket-over-TLS listener (see
    /// [`ServerBuilder::listen_wss`]), if there is one.
    #[cfg(all(feature = "websocket", feature = "tls"))]
    pub fn wss_addr(&self) -> Option<SocketAddr> {
        self.handle.wss_addr()
    }

    /// A handle to reach the server from other tasks and threads.
    pub fn handle(&self) -> ServerHandle<Ch> {
        self.handle.clone()
    }

    /// Serves until [`ServerHandle::shutdown`] is called, then shuts down gracefully: stops
    /// accepting, closes every channel with [`CloseReason::Shutdown`] (running `on_close` and
    /// `on_disconnect`), waits up to the shutdown timeout for queued frames to be written,
    /// resets the connections still writing (their peers read "connection reset") and returns.
    pub async fn run(self) -> Result<(), ServerError> {
        // The loop runs as a task of its own, on a runtime worker, even when `run` is awaited
        // in `block_on`: a loop on the `block_on` thread would make every message cross
        // threads, which doubles round-trip times.
        match tokio::spawn(self.serve()).await {
            Ok(result) => result,
            Err(_) => Err(ServerError::ThreadPanicked),
        }
    }

    async fn serve(self) -> Result<(), ServerError> {
        let Server {
            listeners,
            #[cfg(feature = "websocket")]
            ws_options,
            mut hub,
            config,
            tick,
            handle,
            mut commands,
            auth,
            mut cluster,
        } = self;
        let shared = handle.shared.clone();
        drop(handle);
        let abort_all = CancellationToken::new();
        let (accepted_tx, mut accepted) = mpsc::channel::<Accepted>(64);
        for (listener, kind) in listeners {
            tokio::spawn(accept_loop(
                listener,
                kind,
                accepted_tx.clone(),
                shared.shutdown.clone(),
            ));
        }
        drop(accepted_tx);
        let (events_tx, mut events) = mpsc::unbounded_channel::<ConnEvent<Ch::Inbound>>();
        let (writers_tx, mut writers) = mpsc::channel::<()>(1);
        let conn_config = ConnConfig {
            codec: config.codec,
            max_frame_len: config.max_frame_len,
            inbound_bytes: config.inbound_queue_bytes,
            close_timeout: config.close_timeout,
            idle_timeout: config.idle_timeout,
            rate_limit: config.rate_limit,
            login_action: auth.as_ref().map(|auth| auth.action),
            handshake_timeout: config.handshake_timeout,
            resume: config.resume.is_some(),
        };
        let ip_slots = IpSlots::default();
        let mut accepts: u64 = 0;
        let crowded_frame = config
            .codec
            .encode(
                &ErrorMessage::new("too many connections from this address"),
                config.max_frame_len,
            )
            .ok();
        // Sockets still open, closing ones included: what `max_connections` limits.
        let open = Arc::new(AtomicUsize::new(0));
        let (mut tick_fn, mut interval) = match tick {
            Some((period, f)) => {
                let mut interval =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
                (Some(f), Some(interval))
            }
            None => (None, None),
        };
        let refusal = Refusal {
            #[cfg(feature = "websocket")]
            ws_options: ws_options.clone(),
            #[cfg(any(feature = "websocket", feature = "tls"))]
            max_frame_len: config.max_frame_len,
        };
        let full_frame = config
            .codec
            .encode(&ErrorMessage::new("server full"), config.max_frame_len)
            .ok();
        cluster.start();
        tracing::debug!(target: "repod::server", addrs = ?shared.local_addrs, codec = %config.codec, "server running");
        crate::observe::describe();
        let mut sampler = crate::observe::Sampler::new();
        let timer = crate::observe::LoopTimer::new();

        loop {
            let expiry = hub.next_expiry();
            tokio::select! {
                () = shared.shutdown.cancelled() => break,
                () = sleep_until_some(expiry) => {
                    hub.expire_sessions(tokio::time::Instant::now());
                }
                Some(event) = events.recv() => {
                    let _busy = timer.busy();
                    handle_event(&mut hub, event, config);
                    // Handle what else is ready before selecting again: one wake-up serves a
                    // burst of messages.
                    for _ in 0..EVENT_BATCH {
                        match events.try_recv() {
                            Ok(event) => handle_event(&mut hub, event, config),
                            Err(_) => break,
                        }
                    }
                }
                Some(command) = commands.recv() => {
                    let _busy = timer.busy();
                    handle_command(&mut hub, command)
                }
                event = cluster.next(), if cluster.enabled() => {
                    let _busy = timer.busy();
                    hub.cluster_event(event)
                }
                (id, frame) = hub.next_reply() => {
                    let _busy = timer.busy();
                    let _ = hub.send_frame_to(id, frame);
                    hub.flush_replies();
                }
                Some((stream, addr, kind)) = accepted.recv() => {
                    let _busy = timer.busy();
                    if open.load(Ordering::Acquire) >= config.max_connections {
                        tracing::warn!(target: "repod::server", peer = %addr, max = config.max_connections, "server full: refusing connection");
                        crate::observe::refused(false);
                        if let Some(frame) = full_frame.clone() {
                            tokio::spawn(refuse(stream, kind, frame, refusal.clone()));
                        }
                        continue;
                    }
                    let ip_slot = match config.max_connections_per_ip {
                        Some(max) => match ip_slots.take(addr.ip(), max) {
                            Some(slot) => Some(slot),
                            None => {
                                tracing::warn!(target: "repod::server", peer = %addr, max, "too many connections from this address: refusing connection");
                                crate::observe::refused(true);
                                if let Some(frame) = crowded_frame.clone() {
                                    tokio::spawn(refuse(stream, kind, frame, refusal.clone()));
                                }
                                continue;
                            }
                        },
                        None => None,
                    };
                    let (outbox, receiver) = Outbox::with_cancel_token(
                        config.outbound_queue_frames,
                        config.outbound_queue_bytes,
                        abort_all.child_token(),
                    );
                    transport::set_keepalive(&stream, config.tcp_keepalive);
                    let guard = OpenGuard::new(&open, ip_slot);
                    if let Some(auth) = &auth {
                        accepts += 1;
                        if accepts.is_multiple_of(EVICT_EVERY) {
                            auth.evict_stale();
                        }
                    }
                    // With authentication or a handshake, the channel is created once the peer
                    // is through them (the `Admitted` event): an id is reserved meanwhile.
                    let hello_window = config.resume.map(|resume| resume.window());
                    let pending = |outbox| Pending {
                        auth: auth.clone(),
                        hello_window,
                        outbox,
                        shutdown: shared.shutdown.clone(),
                    };
                    match kind {
                        ListenKind::Tcp => {
                            let halves = transport::tcp(stream, config.max_frame_len);
                            let ready = std::future::ready(Ok(halves));
                            // With authentication or resumable sessions, the channel is created
                            // once the peer has logged in or said whether it resumes a session.
                            let (id, pending) = if auth.is_some() || hello_window.is_some() {
                                (hub.reserve_id(), Some(pending(outbox)))
                            } else {
                                (hub.connect(addr, outbox), None)
                            };
                            conn::spawn::<Ch, _, _, _>(id, addr, ready, receiver, conn_config, events_tx.clone(), writers_tx.clone(), guard, pending);
                        }
                        #[cfg(feature = "websocket")]
                        ListenKind::WebSocket => {
                            let options = ws_options.clone();
                            let max_frame_len = config.max_frame_len;
                            let handshake = async move {
                                let _ = stream.set_nodelay(true);
                                crate::connection::ws::accept(stream, &options, max_frame_len).await
                            };
                            let id = hub.reserve_id();
                            conn::spawn::<Ch, _, _, _>(id, addr, handshake, receiver, conn_config, events_tx.clone(), writers_tx.clone(), guard, Some(pending(outbox)));
                        }
                        #[cfg(all(feature = "websocket", feature = "tls"))]
                        ListenKind::WebSocketTls(tls) => {
                            let options = ws_options.clone();
                            let max_frame_len = config.max_frame_len;
                            let handshake = async move {
                                let session = tls.accept(stream).await?;
                                let session = crate::connection::tls::Tls::from(session);
                                crate::connection::ws::accept(session, &options, max_frame_len).await
                            };
                            let id = hub.reserve_id();
                            conn::spawn::<Ch, _, _, _>(id, addr, handshake, receiver, conn_config, events_tx.clone(), writers_tx.clone(), guard, Some(pending(outbox)));
                        }
                        #[cfg(feature = "tls")]
                        ListenKind::Tls(tls) => {
                            let max_frame_len = config.max_frame_len;
                            let handshake = async move {
                                let session = tls.accept(stream).await?;
                                Ok(crate::connection::tls::tls(session, max_frame_len))
                            };
                            let id = hub.reserve_id();
                            conn::spawn::<Ch, _, _, _>(id, addr, handshake, receiver, conn_config, events_tx.clone(), writers_tx.clone(), guard, Some(pending(outbox)));
                        }
                    }
                }
                () = sampler.tick(), if crate::observe::ENABLED => hub.sample_metrics(),
                _ = tick_once(&mut interval) => {
                    let _busy = timer.busy();
                    if let Some(f) = tick_fn.as_mut() {
                        let result = hub.with_context(|ctx| catch_unwind(AssertUnwindSafe(|| f(ctx))));
                        if result.is_err() {
                            tracing::error!(target: "repod::server", "tick panicked");
                        }
                    }
                }
            }
            shared.connections.store(hub.len(), Ordering::Relaxed);
        }

        tracing::debug!(target: "repod::server", channels = hub.len(), "shutting down");
        drop(accepted);
        // What handles queued before the shutdown still goes out; nothing more is accepted.
        commands.close();
        while let Ok(command) = commands.try_recv() {
            handle_command(&mut hub, command);
        }
        hub.flush_replies();
        hub.shutdown();
        hub.sample_metrics();
        cluster.finish().await;
        shared.connections.store(0, Ordering::Relaxed);
        drop(writers_tx);
        let flushed = tokio::time::timeout(config.shutdown_timeout, writers.recv())
            .await
            .is_ok();
        if !flushed {
            tracing::warn!(target: "repod::server", timeout = ?config.shutdown_timeout, "shutdown timeout: resetting connections that were still writing");
            // Reset what is left, and wait for the writers to do it: a task dropped with the
            // runtime would close its socket the ordinary way, cutting a frame in half.
            abort_all.cancel();
            let _ = tokio::time::timeout(ABORT_WAIT, writers.recv()).await;
        }
        abort_all.cancel();
        tracing::debug!(target: "repod::server", "server stopped");
        Ok(())
    }
}

/// Waits until `at`, or forever without it.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn tick_once(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Tells an extra peer the server is full and closes the connection.
///
/// A peer of a listener with a handshake is told after its handshake, so that it can read the
/// message (a browser cannot read bytes outside a WebSocket); that takes longer, so it is
/// given [`REFUSE_HANDSHAKE_TIME`].
async fn refuse(mut stream: TcpStream, kind: ListenKind, frame: Bytes, with: Refusal) {
    use tokio::io::AsyncWriteExt;
    match kind {
        ListenKind::Tcp => {
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                stream.write_all(&frame).await?;
                stream.shutdown().await
            })
            .await;
        }
        #[cfg(feature = "websocket")]
        ListenKind::WebSocket => {
            use crate::connection::transport::FrameWriter;
            let _ = tokio::time::timeout(REFUSE_HANDSHAKE_TIME, async {
                let (_reader, mut writer) =
                    crate::connection::ws::accept(stream, &with.ws_options, with.max_frame_len)
                        .await?;
                writer.feed(frame).await?;
                writer.flush().await?;
                writer.shutdown().await
            })
            .await;
        }
        #[cfg(all(feature = "websocket", feature = "tls"))]
        ListenKind::WebSocketTls(tls) => {
            use crate::connection::transport::FrameWriter;
            let _ = tokio::time::timeout(REFUSE_HANDSHAKE_TIME, async {
                let session = crate::connection::tls::Tls::from(tls.accept(stream).await?);
                let (_reader, mut writer) =
                    crate::connection::ws::accept(session, &with.ws_options, with.max_frame_len)
                        .await?;
                writer.feed(frame).await?;
                writer.flush().await?;
                writer.shutdown().await
            })
            .await;
        }
        #[cfg(feature = "tls")]
        ListenKind::Tls(tls) => {
            use crate::connection::transport::FrameWriter;
            let _ = tokio::time::timeout(REFUSE_HANDSHAKE_TIME, async {
                let session = tls.accept(stream).await?;
                let (_reader, mut writer) =
                    crate::connection::tls::tls(session, with.max_frame_len);
                writer.feed(frame).await?;
                writer.flush().await?;
                writer.shutdown().await
            })
            .await;
        }
    }
    let _ = with;
}

/// What refusing a connection needs besides its message.
#[derive(Clone)]
struct Refusal {
    #[cfg(feature = "websocket")]
    ws_options: crate::connection::ws::WsOptions,
    #[cfg(any(feature = "websocket", feature = "tls"))]
    max_frame_len: usize,
}

/// How long a refused peer of a listener with a handshake is given to make it and read why
/// it is refused.
#[cfg(any(feature = "websocket", feature = "tls"))]
const REFUSE_HANDSHAKE_TIME: Duration = Duration::from_secs(2);

fn handle_event<Ch: Channel>(
    hub: &mut Hub<Ch>,
    event: ConnEvent<Ch::Inbound>,
    config: ServerConfig,
) {
    let event = if hub.resumes() {
        match route(hub, event) {
            Some(event) => event,
            None => return,
        }
    } else {
        event
    };
    match event {
        ConnEvent::Message(id, msg, permit) => {
            hub.received(id, 1);
            hub.dispatch_decoded(id, msg);
            drop(permit);
        }
        ConnEvent::Messages(id, msgs, permit) => {
            hub.received(id, msgs.len() as u64);
            for msg in msgs {
                hub.dispatch_decoded(id, msg);
            }
            drop(permit);
        }
        ConnEvent::Resume(conn, addr, outbox, token, recv) => {
            hub.resume_session(conn, addr, outbox, token, recv);
        }
        ConnEvent::Ack(id, recv) => hub.session_ack(id, recv),
        ConnEvent::End(id) => hub.session_end(id),
        ConnEvent::Protocol(id, error) => {
            tracing::warn!(target: "repod::server", id = id.get(), %error, "protocol error: dropping peer");
            hub.peer_error(id, &error);
            if let Ok(frame) = config
                .codec
                .encode(&ErrorMessage::new(error.to_string()), config.max_frame_len)
            {
                let _ = hub.send_frame_to(id, frame);
            }
            hub.close(id, CloseReason::Protocol(error.to_string()));
        }
        ConnEvent::Closed(id, reason) => {
            let notice = match &reason {
                CloseReason::Idle => Some("idle timeout"),
                CloseReason::RateLimited => Some("rate limited"),
                _ => None,
            };
            // A peer that will resume its session is not told: it would read it after resuming.
            let kept = reason == CloseReason::Idle && hub.keeps_session(id);
            if let (Some(notice), false) = (notice, kept) {
                if let Ok(frame) = config
                    .codec
                    .encode(&ErrorMessage::new(notice), config.max_frame_len)
                {
                    let _ = hub.send_frame_to(id, frame);
                }
            }
            hub.connection_lost(id, reason)
        }
        ConnEvent::Admitted(id, addr, outbox, identity, session) => {
            hub.connect_as(id, addr, outbox, identity, session);
        }
        ConnEvent::Heartbeat(id, rtt, ack, permit) => {
            hub.received(id, 1);
            hub.heartbeat(id, rtt, ack);
            drop(permit);
        }
        ConnEvent::Notice(id, notice, permit) => {
            hub.received(id, 1);
            if let Ok(frame) = config
                .codec
                .encode(&ErrorMessage::new(notice), config.max_frame_len)
            {
                let _ = hub.send_frame_to(id, frame);
            }
            drop(permit);
        }
    }
}

fn handle_command<Ch: Channel>(hub: &mut Hub<Ch>, command: Command<Ch>) {
    match command {
        Command::SendTo(id, frame) => {
            // The sender was told "queued to the loop"; an id gone since is not an error here.
            let _ = hub.send_frame_to(id, frame);
        }
        Command::SendToAll(frame) => {
            hub.send_frame_to_all(&frame);
        }
        Command::SendToMany(ids, frame) => {
            hub.send_frame_to_many(ids.iter().copied(), &frame);
        }
        Command::SendToGroup {
            name,
            frame,
            except,
        } => {
            // Built from a `&str` by the handle, so always UTF-8.
            if let Ok(name) = std::str::from_utf8(&name) {
                hub.send_frame_to_group(name, &frame, except);
            }
        }
        Command::Call(f) => {
            let result = hub.with_context(|ctx| catch_unwind(AssertUnwindSafe(|| f(ctx))));
            if result.is_err() {
                tracing::error!(target: "repod::server", "code run through a server handle panicked");
            }
        }
        Command::Resume(id, f) => hub.resume(id, f),
    }
}

/// The outcome of a [`ServerHandle::call`], as the caller sees it.
fn call_result<R>(
    received: Result<Result<R, String>, oneshot::error::RecvError>,
) -> Result<R, ServerError> {
    match received {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => Err(ServerError::CallPanicked(message)),
        // The loop dropped the closure unrun: the server stopped first.
        Err(_) => Err(ServerError::Closed),
    }
}

/// How long a shutdown waits for the writers it reset to stop (they stop at once; this only
/// bounds the wait).
const ABORT_WAIT: Duration = Duration::from_secs(1);

/// With authentication, the table of login attempts per address is swept of stale entries
/// once every this many accepted connections.
const EVICT_EVERY: u64 = 256;

/// How many connection events the dispatch loop handles per wake-up, at most, before it looks
/// at commands, new connections and the tick again.
const EVENT_BATCH: usize = 256;

/// Reaches a running server from any task or thread: send messages, run code on the dispatch
/// loop, shut it down.
///
/// Cheap to clone; `Send` and `Sync`. Handlers and ticks get one with `ctx.handle()`
/// ([`Context::handle`]). Messages are encoded on the caller's thread (once, for
/// [`send_to_all`](ServerHandle::send_to_all) and [`send_to_group`](ServerHandle::send_to_group))
/// and queued to the loop without waiting. Once the server has shut down every method returns an
/// error; none panics.
///
/// Every send returns `Result<(), SendError>`, whatever it targets: `Err` if the message cannot
/// be encoded ([`SendError::Codec`]), the loop's command queue is full
/// ([`SendError::QueueFull`]) or the server has stopped ([`SendError::Closed`]). `Ok` means the
/// loop has it; there it goes to the channels still connected, as a send from a handler would
/// (an id that has disconnected meanwhile receives nothing).
pub struct ServerHandle<Ch: Channel> {
    tx: mpsc::Sender<Command<Ch>>,
    shared: Arc<Shared>,
}

impl<Ch: Channel> Clone for ServerHandle<Ch> {
    fn clone(&self) -> Self {
        ServerHandle {
            tx: self.tx.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<Ch: Channel> fmt::Debug for ServerHandle<Ch> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addrs", &self.shared.local_addrs)
            .field("running", &self.is_running())
            .finish()
    }
}

impl<Ch: Channel> ServerHandle<Ch> {
    /// A handle and the receiving end of its command queue.
    pub(crate) fn new_pair(
        codec: crate::codec::CodecKind,
        max_frame_len: usize,
        local_addrs: Vec<(Transport, SocketAddr)>,
        capacity: usize,
    ) -> (Self, mpsc::Receiver<Command<Ch>>) {
        let (tx, commands) = mpsc::channel(capacity.max(1));
        let handle = ServerHandle {
            tx,
            shared: Arc::new(Shared {
                shutdown: CancellationToken::new(),
                connections: AtomicUsize::new(0),
                local_addrs,
                codec,
                max_frame_len,
                #[cfg(feature = "cluster")]
                cluster: std::sync::OnceLock::new(),
            }),
        };
        (handle, commands)
    }

    /// Spawns `future` on the current runtime and queues the command made of its result to
    /// the loop, waiting for room in the queue rather than dropping a finished result.
    pub(crate) fn spawn_then<T, F>(
        &self,
        future: F,
        command: impl FnOnce(T) -> Command<Ch> + Send + 'static,
    ) where
        F: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(target: "repod::server", "spawn outside a tokio runtime: the work is not started");
            return;
        };
        let tx = self.tx.clone();
        runtime.spawn(async move {
            let result = future.await;
            if tx.send(command(result)).await.is_err() {
                tracing::debug!(target: "repod::server", "server stopped before spawned work finished: result dropped");
            }
        });
    }

    fn command(&self, command: Command<Ch>) -> Result<(), SendError> {
        if self.shared.shutdown.is_cancelled() {
            return Err(SendError::Closed);
        }
        self.tx.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }

    /// Queues a message to one channel. Succeeds when the message reached the loop's queue; an
    /// id that is no longer connected is ignored there.
    pub fn send_to<M: Message + ?Sized>(&self, id: ChannelId, msg: &M) -> Result<(), SendError> {
        let frame = self.shared.codec.encode(msg, self.shared.max_frame_len)?;
        self.command(Command::SendTo(id, frame))
    }

    /// Queues a message to every connected channel, encoded once on the calling thread.
    pub fn send_to_all<M: Message + ?Sized>(&self, msg: &M) -> Result<(), SendError> {
        let frame = self.shared.codec.encode(msg, self.shared.max_frame_len)?;
        self.command(Command::SendToAll(frame))
    }

    /// Queues a message to every member of a group, encoded once on the calling thread.
    /// Succeeds when the message reached the loop's queue; a group that does not exist there
    /// (has no members) receives nothing.
    ///
    /// The group's name and the encoded message share one allocation.
    pub fn send_to_group<M: Message + ?Sized>(&self, name: &str, msg: &M) -> Result<(), SendError> {
        let (name, frame) = self.encode_for_group(name, msg)?;
        self.command(Command::SendToGroup {
            name,
            frame,
            except: None,
        })
    }

    /// Like [`send_to_group`](ServerHandle::send_to_group), skipping one channel (say, the
    /// player whose move the message reports).
    pub fn send_to_group_except<M: Message + ?Sized>(
        &self,
        name: &str,
        except: ChannelId,
        msg: &M,
    ) -> Result<(), SendError> {
        let (name, frame) = self.encode_for_group(name, msg)?;
        self.command(Command::SendToGroup {
            name,
            frame,
            except: Some(except),
        })
    }

    /// Encodes a message once into a [`Frame`] with the server's codec, on the calling
    /// thread, to queue it to any number of channels with the `send_frame_*` methods (of this
    /// handle or of a context).
    pub fn encode<M: Message + ?Sized>(&self, msg: &M) -> Result<Frame, CodecError> {
        self.shared
            .codec
            .encode(msg, self.shared.max_frame_len)
            .map(Frame::new_unchecked)
    }

    /// Queues an encoded frame to one channel.
    pub fn send_frame_to(&self, id: ChannelId, frame: &Frame) -> Result<(), SendError> {
        self.command(Command::SendTo(id, frame.as_bytes().clone()))
    }

    /// Queues an encoded frame to every connected channel.
    pub fn send_frame_to_all(&self, frame: &Frame) -> Result<(), SendError> {
        self.command(Command::SendToAll(frame.as_bytes().clone()))
    }

    /// Queues an encoded frame to each of these channels; ids no longer connected are skipped
    /// on the loop. The ids are copied into one allocation; the frame is shared.
    pub fn send_frame_to_many(
        &self,
        ids: impl IntoIterator<Item = ChannelId>,
        frame: &Frame,
    ) -> Result<(), SendError> {
        let ids: Box<[ChannelId]> = ids.into_iter().collect();
        self.command(Command::SendToMany(ids, frame.as_bytes().clone()))
    }

    /// Queues an encoded frame to every member of a group. The name is copied into one
    /// allocation; the frame is shared.
    pub fn send_frame_to_group(&self, name: &str, frame: &Frame) -> Result<(), SendError> {
        self.command(Command::SendToGroup {
            name: Bytes::copy_from_slice(name.as_bytes()),
            frame: frame.as_bytes().clone(),
            except: None,
        })
    }

    /// Encodes `msg` into one buffer after the group's name, and splits it: the name and the
    /// frame share that buffer, so a group send from a handle allocates once.
    fn encode_for_group<M: Message + ?Sized>(
        &self,
        name: &str,
        msg: &M,
    ) -> Result<(Bytes, Bytes), CodecError> {
        let max = self.shared.max_frame_len;
        let mut buf = BytesMut::with_capacity(name.len() + 64);
        buf.extend_from_slice(name.as_bytes());
        buf.put_u32(0);
        self.shared.codec.encode_payload(M::ACTION, msg, &mut buf)?;
        let len = buf.len() - name.len() - HEADER_LEN;
        if len > max || len > u32::MAX as usize {
            return Err(CodecError::TooLarge {
                action: M::ACTION.to_owned(),
                len,
                max,
            });
        }
        buf[name.len()..name.len() + HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
        let mut frame = buf.freeze();
        let name = frame.split_to(name.len());
        Ok((name, frame))
    }

    /// Runs `f` on the dispatch loop, with access to the state and every channel, and returns
    /// its result.
    ///
    /// Fails with [`ServerError::Closed`] when the server is not running, and with
    /// [`ServerError::CallPanicked`] when `f` panics (the server keeps running).
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ServerContext<'_, Ch>) -> R + Send + 'static,
    ) -> Result<R, ServerError> {
        call_result(self.call_inner(f)?.await)
    }

    /// Like [`call`](ServerHandle::call), blocking the calling thread; for code outside any
    /// async runtime.
    ///
    /// # Panics
    ///
    /// Panics if called from within an async runtime (use `call` there).
    pub fn call_blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ServerContext<'_, Ch>) -> R + Send + 'static,
    ) -> Result<R, ServerError> {
        call_result(self.call_inner(f)?.blocking_recv())
    }

    fn call_inner<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ServerContext<'_, Ch>) -> R + Send + 'static,
    ) -> Result<oneshot::Receiver<Result<R, String>>, ServerError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Call(Box::new(move |ctx| {
            let result = catch_unwind(AssertUnwindSafe(|| f(ctx))).map_err(|payload| {
                let message = panic_message(&*payload);
                tracing::error!(target: "repod::server", panic = %message, "code run through a server handle panicked");
                message
            });
            let _ = tx.send(result);
        })))
        .map_err(|_| ServerError::Closed)?;
        Ok(rx)
    }

    /// Id and address of every connected channel, in connection order.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, ServerError> {
        self.call(|ctx| {
            let mut peers: Vec<PeerInfo> = ctx
                .channels()
                .map(|p| PeerInfo {
                    id: p.id,
                    addr: p.addr,
                })
                .collect();
            peers.sort_by_key(|p| p.id);
            peers
        })
        .await
    }

    /// This server's node number in its cluster (the high bits of its channel ids), `None`
    /// on a server that is not a cluster node.
    #[cfg(feature = "cluster")]
    pub fn cluster_node(&self) -> Option<u32> {
        self.shared.cluster.get().map(|(node, _)| *node)
    }

    /// What this cluster node has counted: messages published, received and dropped,
    /// reconnections. `None` on a server that is not a cluster node.
    #[cfg(feature = "cluster")]
    pub fn cluster_stats(&self) -> Option<ClusterStats> {
        self.shared
            .cluster
            .get()
            .map(|(_, counters)| counters.snapshot())
    }

    /// The other nodes of the cluster this node has heard from within the node timeout, by
    /// number, in order; empty on a server that is not a cluster node.
    #[cfg(feature = "cluster")]
    pub async fn cluster_nodes(&self) -> Result<Vec<u32>, ServerError> {
        self.call(|ctx| ctx.cluster_nodes()).await
    }

    /// The number of connected channels, as of the loop's last event.
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// The main address the server listens on (the one given to `bind`).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addrs[0].1
    }

    /// The address of every listener with its transport, the main one first.
    pub fn local_addrs(&self) -> &[(Transport, SocketAddr)] {
        &self.shared.local_addrs
    }

    /// The address of the first WebSocket listener, if there is one.
    #[cfg(feature = "websocket")]
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.shared
            .local_addrs
            .iter()
            .find(|(transport, _)| *transport == Transport::WebSocket)
            .map(|(_, addr)| *addr)
    }

    /// The address of the first TLS listener, if there is one.
    #[cfg(feature = "tls")]
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.shared
            .local_addrs
            .iter()
            .find(|(transport, _)| *transport == Transport::Tls)
            .map(|(_, addr)| *addr)
    }

    /// The address of the first WebSocket-over-TLS listener, if there is one.
    #[cfg(all(feature = "websocket", feature = "tls"))]
    pub fn wss_addr(&self) -> Option<SocketAddr> {
        self.shared
            .local_addrs
            .iter()
            .find(|(transport, _)| *transport == Transport::WebSocketTls)
            .map(|(_, addr)| *addr)
    }

    /// Whether the server has not been told to shut down yet.
    pub fn is_running(&self) -> bool {
        !self.shared.shutdown.is_cancelled()
    }

    /// Starts a graceful shutdown and returns at once; [`Server::run`] returns when it is done.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }
}

/// A server running on its own thread, from [`ServerBuilder::start_background`].
///
/// Dropping it shuts the server down gracefully and waits for the thread.
#[must_use = "dropping a BackgroundServer shuts the server down"]
pub struct BackgroundServer<Ch: Channel> {
    local_addr: SocketAddr,
    handle: ServerHandle<Ch>,
    thread: Option<std::thread::JoinHandle<Result<(), ServerError>>>,
}

impl<Ch: Channel> fmt::Debug for BackgroundServer<Ch> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackgroundServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl<Ch: Channel> BackgroundServer<Ch> {
    pub(crate) fn new(
        local_addr: SocketAddr,
        handle: ServerHandle<Ch>,
        thread: std::thread::JoinHandle<Result<(), ServerError>>,
    ) -> Self {
        BackgroundServer {
            local_addr,
            handle,
            thread: Some(thread),
        }
    }

    /// The main address the server listens on; with port 0, the port the system picked.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of every listener with its transport, the main one first.
    pub fn local_addrs(&self) -> &[(Transport, SocketAddr)] {
        self.handle.local_addrs()
    }

    /// The address of the first WebSocket listener, if there is one.
    #[cfg(feature = "websocket")]
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.handle.ws_addr()
    }

    /// The address of the first TLS listener, if there is one.
    #[cfg(feature = "tls")]
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.handle.tls_addr()
    }

    /// The address of the first WebSocket-over-TLS listener, if there is one.
    #[cfg(all(feature = "websocket", feature = "tls"))]
    pub fn wss_addr(&self) -> Option<SocketAddr> {
        self.handle.wss_addr()
    }

    /// A handle to the server.
    pub fn handle(&self) -> ServerHandle<Ch> {
        self.handle.clone()
    }

    /// Shuts the server down gracefully and waits for its thread to finish.
    pub fn shutdown(mut self) -> Result<(), ServerError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), ServerError> {
        self.handle.shutdown();
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| ServerError::ThreadPanicked)?,
            None => Ok(()),
        }
    }
}

impl<Ch: Channel> Drop for BackgroundServer<Ch> {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::error!(target: "repod::server", %error, "background server failed");
        }
    }
}

/// Gives an event of a connection the id of the channel it speaks for, or drops it when that
/// connection no longer speaks for a channel (replaced by a resume, or its peer away).
fn route<Ch: Channel>(
    hub: &Hub<Ch>,
    event: ConnEvent<Ch::Inbound>,
) -> Option<ConnEvent<Ch::Inbound>> {
    Some(match event {
        ConnEvent::Message(c, msg, p) => ConnEvent::Message(hub.route(c)?, msg, p),
        ConnEvent::Messages(c, msgs, p) => ConnEvent::Messages(hub.route(c)?, msgs, p),
        ConnEvent::Protocol(c, e) => ConnEvent::Protocol(hub.route(c)?, e),
        ConnEvent::Closed(c, r) => ConnEvent::Closed(hub.route(c)?, r),
        ConnEvent::Heartbeat(c, rtt, ack, p) => ConnEvent::Heartbeat(hub.route(c)?, rtt, ack, p),
        ConnEvent::Notice(c, n, p) => ConnEvent::Notice(hub.route(c)?, n, p),
        ConnEvent::Ack(c, n) => ConnEvent::Ack(hub.route(c)?, n),
        ConnEvent::End(c) => ConnEvent::End(hub.route(c)?),
        // New connections: not a channel's yet.
        event @ (ConnEvent::Admitted(..) | ConnEvent::Resume(..)) => event,
    })
}
