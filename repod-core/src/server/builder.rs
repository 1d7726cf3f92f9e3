//! [`ServerBuilder`]: a server's settings, hooks and tick, each with a documented default.

use std::fmt;
use std::time::Duration;

use super::auth::Auth;
use super::channel::Channel;
use super::hub::{Hub, HubConfig, PeerInfo, ServerContext};
use super::limits::RateLimit;
use super::listen::{self, ListenKind, ListenSpec};
use super::session::Resume;
use super::shutdown::ShutdownSignal;
use super::{BackgroundServer, Server, ServerError, ServerHandle};
use crate::codec::CodecKind;
use crate::error::CloseReason;
use crate::frame::DEFAULT_MAX_FRAME_LEN;
use crate::message::Message;

/// The default [`max_connections`](ServerBuilder::max_connections): 10,000.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// The default [`outbound_queue_frames`](ServerBuilder::outbound_queue_frames): 4,096 frames.
pub const DEFAULT_OUTBOUND_QUEUE_FRAMES: usize = 4096;
/// The default [`outbound_queue_bytes`](ServerBuilder::outbound_queue_bytes): 4 MiB.
pub const DEFAULT_OUTBOUND_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// The default [`inbound_queue_bytes`](ServerBuilder::inbound_queue_bytes): 256 KiB.
pub const DEFAULT_INBOUND_QUEUE_BYTES: usize = 256 * 1024;
/// The default [`shutdown_timeout`](ServerBuilder::shutdown_timeout): 5 seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// The default [`close_timeout`](ServerBuilder::close_timeout): 5 seconds.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The default [`command_queue`](ServerBuilder::command_queue): 65,536 commands.
pub const DEFAULT_COMMAND_QUEUE: usize = 65_536;
/// The default [`tcp_keepalive`](ServerBuilder::tcp_keepalive): probes after 30 seconds of
/// silence.
pub const DEFAULT_TCP_KEEPALIVE: Duration = Duration::from_secs(30);
/// The default [`handshake_timeout`](ServerBuilder::handshake_timeout): 10 seconds.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) type Factory<Ch> = Box<dyn FnMut(&PeerInfo) -> Ch + Send>;
pub(crate) type ConnectHook<S> = Box<dyn FnMut(&mut S, &PeerInfo) + Send>;
pub(crate) type DisconnectHook<S> = Box<dyn FnMut(&mut S, &PeerInfo, &CloseReason) + Send>;
pub(crate) type TickFn<Ch> = Box<dyn FnMut(&mut ServerContext<'_, Ch>) + Send>;
pub(crate) type Tick<Ch> = Option<(Duration, TickFn<Ch>)>;

/// The numeric settings of a server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerConfig {
    pub(crate) codec: CodecKind,
    pub(crate) max_frame_len: usize,
    pub(crate) max_connections: usize,
    pub(crate) outbound_queue_frames: usize,
    pub(crate) outbound_queue_bytes: usize,
    pub(crate) inbound_queue_bytes: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) command_queue: usize,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) max_connections_per_ip: Option<usize>,
    pub(crate) auth_attempts_per_minute: Option<u32>,
    pub(crate) tcp_keepalive: Option<Duration>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) resume: Option<Resume>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            codec: CodecKind::default(),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            outbound_queue_frames: DEFAULT_OUTBOUND_QUEUE_FRAMES,
            outbound_queue_bytes: DEFAULT_OUTBOUND_QUEUE_BYTES,
            inbound_queue_bytes: DEFAULT_INBOUND_QUEUE_BYTES,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            command_queue: DEFAULT_COMMAND_QUEUE,
            idle_timeout: None,
            rate_limit: None,
            max_connections_per_ip: None,
            auth_attempts_per_minute: None,
            resume: None,
            tcp_keepalive: Some(DEFAULT_TCP_KEEPALIVE),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// Configures and starts a [`Server`].
///
/// Made by [`Server::builder`], [`Server::builder_with_state`] or [`Server::builder_with`].
/// Every limit is on by default:
///
/// | setting | default |
/// |---|---|
/// | [`codec`](Self::codec) | [`CodecKind::Bincode`] |
/// | [`max_frame_len`](Self::max_frame_len) | 1 MiB |
/// | [`max_connections`](Self::max_connections) | 10,000 |
/// | [`outbound_queue_frames`](Self::outbound_queue_frames) | 4,096 frames per connection |
/// | [`outbound_queue_bytes`](Self::outbound_queue_bytes) | 4 MiB per connection |
/// | [`inbound_queue_bytes`](Self::inbound_queue_bytes) | 256 KiB per connection |
/// | [`shutdown_timeout`](Self::shutdown_timeout) | 5 s |
/// | [`close_timeout`](Self::close_timeout) | 5 s per closing connection |
/// | [`command_queue`](Self::command_queue) | 65,536 commands |
/// | [`tick`](Self::tick) | none |
/// | [`auth`](Self::auth) | none: every peer gets a channel at once |
/// | [`auth_attempts_per_minute`](Self::auth_attempts_per_minute) | unlimited |
/// | [`max_connections_per_ip`](Self::max_connections_per_ip) | unlimited |
/// | [`idle_timeout`](Self::idle_timeout) | none |
/// | [`rate_limit`](Self::rate_limit) | none |
/// | [`tcp_keepalive`](Self::tcp_keepalive) | probes after 30 s of silence |
/// | [`handshake_timeout`](Self::handshake_timeout) | 10 s (listeners with a handshake: TLS, WebSocket) |
/// | [`resume`](Self::resume) | none: a peer that drops is closed at once |
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
/// Server::<Lobby>::builder()
///     .max_connections(64)
///     .launch("0.0.0.0:31425")
///     .expect("server failed");
/// ```
#[must_use = "a builder does nothing until `bind`, `launch` or `start_background` is called"]
pub struct ServerBuilder<Ch: Channel> {
    pub(crate) config: ServerConfig,
    pub(crate) state: Ch::State,
    pub(crate) factory: Factory<Ch>,
    pub(crate) on_connect: Option<ConnectHook<Ch::State>>,
    pub(crate) on_disconnect: Option<DisconnectHook<Ch::State>>,
    pub(crate) tick: Tick<Ch>,
    pub(crate) auth: Option<Auth>,
    /// Listeners beside the one given to `bind`, `launch` or `start_background`.
    pub(crate) listeners: Vec<ListenSpec>,
    /// TLS on the main listener instead of plain TCP.
    #[cfg(feature = "tls")]
    pub(crate) main_tls: Option<crate::tls::TlsServerConfig>,
    #[cfg(feature = "websocket")]
    pub(crate) ws_options: crate::connection::ws::WsOptions,
    pub(crate) cluster: super::cluster::Setup,
}

impl<Ch: Channel> fmt::Debug for ServerBuilder<Ch> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .field("tick", &self.tick.as_ref().map(|(period, _)| period))
            .field("auth", &self.auth)
            .field("listeners", &self.listeners)
            .finish_non_exhaustive()
    }
}

impl<Ch: Channel> ServerBuilder<Ch> {
    pub(crate) fn new(state: Ch::State, factory: Factory<Ch>) -> Self {
        ServerBuilder {
            config: ServerConfig::default(),
            state,
            factory,
            on_connect: None,
            on_disconnect: None,
            tick: None,
            auth: None,
            listeners: Vec::new(),
            #[cfg(feature = "tls")]
            main_tls: None,
            #[cfg(feature = "websocket")]
            ws_options: Default::default(),
            cluster: Default::default(),
        }
    }

    /// Creates each connection's channel value with `factory` (called on the dispatch loop).
    ///
    /// The default is `Ch::default()` for builders made by [`Server::builder`] and
    /// [`Server::builder_with_state`].
    pub fn channel_factory(
        mut self,
        factory: impl FnMut(&PeerInfo) -> Ch + Send + 'static,
    ) -> Self {
        self.factory = Box::new(factory);
        self
    }

    /// The codec every connection speaks. The default is [`CodecKind::Bincode`]; use
    /// [`CodecKind::MsgPack`] to talk to Python repod clients.
    pub fn codec(mut self, codec: CodecKind) -> Self {
        self.config.codec = codec;
        self
    }

    /// The largest frame payload accepted from a peer or sent to one, in bytes. A peer
    /// announcing more is dropped before anything is allocated for it. The default is 1 MiB.
    pub fn max_frame_len(mut self, max_frame_len: usize) -> Self {
        self.config.max_frame_len = max_frame_len.min(u32::MAX as usize);
        self
    }

    /// The most connections served at once; one more receives
    /// `{"action": "error", "message": "server full"}` and is closed without a channel.
    /// The default is 10,000.
    pub fn max_connections(mut self, max_connections: usize) -> Self {
        self.config.max_connections = max_connections;
        self
    }

    /// How many frames may wait in one connection's outbound queue. A peer whose queue is full
    /// is disconnected with [`CloseReason::SlowConsumer`]: its connection is reset, dropping
    /// what was queued for it; nobody waits for it. The default is 4,096 frames.
    pub fn outbound_queue_frames(mut self, frames: usize) -> Self {
        self.config.outbound_queue_frames = frames.max(1);
        self
    }

    /// How many bytes may wait in one connection's outbound queue (a single larger frame is
    /// still accepted into an empty queue). Overflowing it disconnects the peer as a slow
    /// consumer. The default is 4 MiB.
    pub fn outbound_queue_bytes(mut self, bytes: usize) -> Self {
        self.config.outbound_queue_bytes = bytes;
        self
    }

    /// How many bytes of one connection's received messages may wait for the dispatch loop.
    /// Each message counts its payload plus 64 bytes (at most the whole budget); when the budget
    /// is spent, that connection's reader stops reading until the loop catches up, so a flooding
    /// peer cannot grow memory. The default is 256 KiB.
    pub fn inbound_queue_bytes(mut self, bytes: usize) -> Self {
        self.config.inbound_queue_bytes = bytes.max(1);
        self
    }

    /// How long a graceful shutdown waits for queued frames to be written before it resets the
    /// connections still writing (their peers read "connection reset"). The default is 5
    /// seconds.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// How long a connection closed with flushing (by [`Context::disconnect`](super::Context::disconnect),
    /// after a protocol error's reply, at shutdown) may take to write what is queued to it.
    /// A peer that does not read by then is cut off with a reset, so a closed connection never
    /// lingers, not even as unsent data in the kernel. The default is 5 seconds.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.config.close_timeout = timeout;
        self
    }

    /// How many commands from [`ServerHandle`](super::ServerHandle)s may wait for the dispatch
    /// loop; beyond it, sends through a handle fail with
    /// [`SendError::QueueFull`](crate::SendError::QueueFull). The default is 65,536.
    pub fn command_queue(mut self, commands: usize) -> Self {
        self.config.command_queue = commands.max(1);
        self
    }

    /// A hook run on the dispatch loop after each channel's own `on_connect`, like Python
    /// repod's `Server.on_connect`. The default is none.
    pub fn on_connect(
        mut self,
        hook: impl FnMut(&mut Ch::State, &PeerInfo) + Send + 'static,
    ) -> Self {
        self.on_connect = Some(Box::new(hook));
        self
    }

    /// A hook run on the dispatch loop after each channel's own `on_close`, with the reason,
    /// like Python repod's `Server.on_disconnect`. The default is none.
    pub fn on_disconnect(
        mut self,
        hook: impl FnMut(&mut Ch::State, &PeerInfo, &CloseReason) + Send + 'static,
    ) -> Self {
        self.on_disconnect = Some(Box::new(hook));
        self
    }

    /// Runs `tick` on the dispatch loop every `period`, the first time one period after the
    /// server starts. Ticks never run inside a handler; a late tick is run as soon as possible
    /// and the next ones are delayed, not bunched up. A panic in `tick` is logged and the tick
    /// keeps running. The default is no tick.
    ///
    /// # Panics
    ///
    /// Panics if `period` is zero.
    pub fn tick(
        mut self,
        period: Duration,
        tick: impl FnMut(&mut ServerContext<'_, Ch>) + Send + 'static,
    ) -> Self {
        assert!(!period.is_zero(), "the tick period must not be zero");
        self.tick = Some((period, Box::new(tick)));
        self
    }

    /// Requires every peer to authenticate before it gets a channel.
    ///
    /// The peer's first message must be the login message `L` (any [`Message`] of the
    /// application, e.g. `Login { token }`), and the whole authentication must be done within
    /// `timeout` of the connection's acceptance (on a listener with a handshake, such as
    /// WebSocket, of the end of the handshake). `check` gets the decoded login and the peer's
    /// id and address, and returns the peer's identity or the reason to refuse it. It is async
    /// (it may ask a database or a web service) and runs on the connection's own task, so the
    /// checks of many peers run at once and never hold up the dispatch loop.
    ///
    /// Until the check passes the peer has no channel: no `connected` greeting is sent, no
    /// `on_connect` runs, nothing it sends is dispatched. Then:
    ///
    /// | the peer | outcome |
    /// |---|---|
    /// | is accepted | its channel is created as usual (`connected`, `on_connect`); [`Context::identity`](super::Context::identity) returns what `check` returned |
    /// | is refused | `{"action": "error", "message": <the reason>}`, then the connection closes |
    /// | sends another action first | `error` "authentication required", then the connection closes |
    /// | sends a login its type cannot decode | `error` with the decoding error, then the connection closes |
    /// | is not done within `timeout` (sent nothing, or not a whole frame) | `error` "auth timeout", then the connection closes |
    /// | logs in again later | `error` "already authenticated"; the connection stays open and the message is not dispatched |
    ///
    /// A Python repod client authenticates by sending its login as a plain dict, first thing:
    /// `connection.send({"action": "login", "token": "…"})` (with the server on
    /// [`CodecKind::MsgPack`]).
    ///
    /// ```no_run
    /// # use repod_core::{Channel, Context, Message, RawMessage, server::Server};
    /// # use std::time::Duration;
    /// # #[derive(Default)] struct Lobby;
    /// # impl Channel for Lobby {
    /// #     type State = ();
    /// #     type Inbound = RawMessage;
    /// #     const ACTIONS: &'static [&'static str] = &[];
    /// #     fn decode(msg: RawMessage) -> RawMessage { msg }
    /// #     fn dispatch(&mut self, _: &mut Context<'_, Self>, _: RawMessage) {}
    /// # }
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Login { token: String }
    /// impl Message for Login { const ACTION: &'static str = "login"; }
    ///
    /// Server::<Lobby>::builder()
    ///     .auth(Duration::from_secs(5), |login: Login, _peer| async move {
    ///         match login.token.as_str() {
    ///             "s3cret" => Ok("alice".to_owned()), // read with ctx.identity::<String>()
    ///             _ => Err("bad token".to_owned()),
    ///         }
    ///     })
    ///     .launch("0.0.0.0:31425")
    ///     .expect("server failed");
    /// ```
    pub fn auth<L, I, F, Fut>(mut self, timeout: Duration, check: F) -> Self
    where
        L: Message + serde::de::DeserializeOwned + Send + 'static,
        I: Send + Sync + 'static,
        F: Fn(L, PeerInfo) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<I, String>> + Send + 'static,
    {
        self.auth = Some(Auth::new(timeout, check));
        self
    }

    /// The most login messages accepted from one IP address per minute (a burst of that many,
    /// refilled evenly over the minute); beyond it a login is refused with `error` "too many
    /// authentication attempts" without being checked. Applies with [`auth`](Self::auth).
    /// The default is unlimited.
    pub fn auth_attempts_per_minute(mut self, attempts: u32) -> Self {
        self.config.auth_attempts_per_minute = Some(attempts.max(1));
        self
    }

    /// The most connections open at once from one IP address; one more receives
    /// `{"action": "error", "message": "too many connections from this address"}` and is
    /// closed without a channel. Connections still authenticating count. The default is
    /// unlimited (players behind one NAT share an address).
    pub fn max_connections_per_ip(mut self, connections: usize) -> Self {
        self.config.max_connections_per_ip = Some(connections.max(1));
        self
    }

    /// Closes a channel whose peer sent no whole frame for `timeout`, with
    /// [`CloseReason::Idle`] after telling it `{"action": "error", "message": "idle timeout"}`.
    /// A peer trickling a frame byte by byte is idle too. Rust clients stay connected through
    /// their [`heartbeat`](crate::client::ClientBuilder::heartbeat); a Python repod client
    /// that has nothing to say for that long is closed. The default is none.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = Some(timeout);
        self
    }

    /// Limits how fast each peer may send (see [`RateLimit`]). The default is no limit
    /// (beyond [`inbound_queue_bytes`](Self::inbound_queue_bytes), which slows a peer down to
    /// the pace of the dispatch loop).
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.config.rate_limit = Some(limit);
        self
    }

    /// TCP keepalive on every accepted socket: the system probes a connection silent for
    /// `idle` (then every 10 seconds where the system allows setting it), and closes it when
    /// the peer's machine is gone, which reading alone never notices. `None` turns it off. The
    /// default is 30 seconds.
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.config.tcp_keepalive = idle;
        self
    }

    /// How long a connection on a listener with a handshake (TLS, a WebSocket upgrade) may take
    /// to complete it, from its acceptance. A peer that stalls, or sends something else, is
    /// closed without a channel: no `on_connect` or `on_close` runs for it. The handshake
    /// runs on the connection's own task, so a slow one holds up nobody else; while it runs,
    /// the connection counts against [`max_connections`](Self::max_connections) and
    /// [`max_connections_per_ip`](Self::max_connections_per_ip). The
    /// [authentication](Self::auth) timeout, when set, starts once the handshake is done.
    /// Plain TCP connections have no handshake. The default is 10 seconds.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.handshake_timeout = timeout;
        self
    }

    /// Also listens for WebSocket connections on `addr` (port 0 picks a free port; read it
    /// with [`Server::ws_addr`]). Bound with the main address by
    /// [`bind`](Self::bind), [`launch`](Self::launch) or
    /// [`start_background`](Self::start_background); may be called more than once.
    ///
    /// WebSocket peers are ordinary channels of the same server: the same ids, groups,
    /// broadcasts, codec, limits, authentication and timeouts as TCP peers. One binary
    /// WebSocket message carries one message payload of the server's codec (no length
    /// prefix). The upgrade is accepted on any request path, and from pages of any origin
    /// unless [`ws_allowed_origins`](Self::ws_allowed_origins) says otherwise. It must be
    /// done within the [`handshake_timeout`](Self::handshake_timeout).
    #[cfg(feature = "websocket")]
    pub fn listen_ws(mut self, addr: impl fmt::Display) -> Self {
        self.listeners
            .push((addr.to_string(), ListenKind::WebSocket));
        self
    }

    /// Also listens for TLS connections on `addr`, with this certificate (feature `tls`; port 0
    /// picks a free port, read it with [`Server::tls_addr`]). Bound with the main address by
    /// [`bind`](Self::bind), [`launch`](Self::launch) or
    /// [`start_background`](Self::start_background); may be called more than once.
    ///
    /// TLS peers are ordinary channels of the same server: the same ids, groups, broadcasts,
    /// codec, limits, authentication and timeouts as TCP peers; inside TLS, frames are exactly
    /// those of plain TCP. The TLS handshake runs on the connection's own task and must be
    /// done within the [`handshake_timeout`](Self::handshake_timeout); a peer that fails it (a
    /// plaintext client, a client that does not trust the certificate) or stalls is closed
    /// without ever having a channel. To serve TLS only, use [`tls`](Self::tls) instead.
    #[cfg(feature = "tls")]
    pub fn listen_tls(
        mut self,
        addr: impl fmt::Display,
        config: crate::tls::TlsServerConfig,
    ) -> Self {
        self.listeners
            .push((addr.to_string(), ListenKind::Tls(config)));
        self
    }

    /// Also listens for WebSocket connections inside TLS (`wss://`) on `addr`, with this
    /// certificate (features `websocket` and `tls`; port 0 picks a free port, read it with
    /// [`Server::wss_addr`]): what a browser page served over HTTPS must use. Its peers are
    /// WebSocket peers as described at [`listen_ws`](Self::listen_ws); the TLS handshake and
    /// the upgrade together must be done within the
    /// [`handshake_timeout`](Self::handshake_timeout).
    #[cfg(all(feature = "websocket", feature = "tls"))]
    pub fn listen_wss(
        mut self,
        addr: impl fmt::Display,
        config: crate::tls::TlsServerConfig,
    ) -> Self {
        self.listeners
            .push((addr.to_string(), ListenKind::WebSocketTls(config)));
        self
    }

    /// Serves TLS, with this certificate, on the main address (the one given to
    /// [`bind`](Self::bind), [`launch`](Self::launch) or
    /// [`start_background`](Self::start_background)) instead of plain TCP (feature `tls`).
    /// Its connections are TLS connections as described at [`listen_tls`](Self::listen_tls).
    /// The default is plain TCP.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::tls::TlsServerConfig) -> Self {
        self.main_tls = Some(config);
        self
    }

    /// Accepts a WebSocket upgrade from a web page only if its `Origin` header is one of
    /// `origins` (such as `"https://game.example.com"`, or `"http://localhost:8080"`); a page
    /// of another origin is refused with HTTP 403. Requests without an `Origin` header (not
    /// from a browser page) are always accepted. The default is to accept every origin: a
    /// browser game is often served from another port or host than its game server.
    #[cfg(feature = "websocket")]
    pub fn ws_allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ws_options.origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// The transport of the main listener: plain TCP unless [`tls`](Self::tls) was set.
    fn main_kind(&self) -> ListenKind {
        #[cfg(feature = "tls")]
        if let Some(config) = &self.main_tls {
            return ListenKind::Tls(config.clone());
        }
        ListenKind::Tcp
    }

    /// The listeners to bind: the main one on `addr`, then the others.
    fn listen_specs(&self, addr: &impl fmt::Display) -> Vec<ListenSpec> {
        let mut specs = Vec::with_capacity(1 + self.listeners.len());
        specs.push((addr.to_string(), self.main_kind()));
        specs.extend(self.listeners.iter().cloned());
        specs
    }

    /// Keeps the channel of a peer that drops for a grace period, so that the peer can come back
    /// and resume its session: same channel, same state and groups, and every message sent to
    /// it meanwhile delivered in order, none lost or twice. Only clients that ask for it
    /// ([`ClientBuilder::resume`](crate::client::ClientBuilder::resume)) get a session; other
    /// peers see no difference on the wire. A peer that does not come back within the grace
    /// period is closed with [`CloseReason::SessionExpired`].
    ///
    /// The guide's "Reconnecting and resuming" chapter tells the whole story, including how it
    /// goes with [`auth`](Self::auth). The default is none.
    ///
    /// ```no_run
    /// # use repod_core::{Channel, Context, RawMessage, server::{Resume, Server}};
    /// # use std::time::Duration;
    /// # #[derive(Default)] struct Lobby;
    /// # impl Channel for Lobby {
    /// #     type State = ();
    /// #     type Inbound = RawMessage;
    /// #     const ACTIONS: &'static [&'static str] = &[];
    /// #     fn decode(msg: RawMessage) -> RawMessage { msg }
    /// #     fn dispatch(&mut self, _: &mut Context<'_, Self>, _: RawMessage) {}
    /// # }
    /// Server::<Lobby>::builder()
    ///     .resume(Resume::new(Duration::from_secs(30)))
    ///     .launch("0.0.0.0:31425")
    ///     .expect("server failed");
    /// ```
    pub fn resume(mut self, resume: Resume) -> Self {
        self.config.resume = Some(resume);
        self
    }

    /// Makes this server one node of a cluster sharing a Redis (a URL such as
    /// `"redis://127.0.0.1:6379"`, or a [`ClusterConfig`](super::ClusterConfig)); needs the
    /// cargo feature `cluster`. The default is a lone server, which needs no broker.
    ///
    /// Then `send_to_all`, group sends and sends to a [`ChannelId`](super::ChannelId) reach
    /// the channels of every node; group membership queries (`group_members`, `group_len`,
    /// `is_in_group`, ...) see every node's channels; channel ids carry the node's number, so
    /// they are unique across nodes. A frame crosses to the other nodes as the bytes already
    /// encoded, once per send. Every node must use the same codec: a server whose codec
    /// differs from the cluster's fails to start with [`ServerError::Cluster`].
    ///
    /// Delivery to other nodes is at most once, and never makes a handler wait: sends go
    /// through a bounded queue to a publisher task, and are dropped (and counted) when it is
    /// full or Redis is unreachable. Messages from one node reach every other node in the
    /// order that node sent them. Binding (or `launch`, or `start_background`) joins the
    /// cluster first and fails if Redis cannot be reached then; later outages are survived by
    /// reconnecting. The "Scaling out" chapter of the guide has the full semantics.
    #[cfg(feature = "cluster")]
    pub fn cluster(mut self, config: impl Into<super::ClusterConfig>) -> Self {
        self.cluster.configure(config.into());
        self
    }

    /// Binds a listener to `addr` (port 0 picks a free port), and those added with
    /// `listen_*` methods, and builds the server; call [`Server::run`] to serve. Must be
    /// called inside a tokio runtime.
    pub async fn bind(
        mut self,
        addr: impl tokio::net::ToSocketAddrs + fmt::Display,
    ) -> Result<Server<Ch>, ServerError> {
        self.cluster.prepare(self.config.codec).await?;
        let main = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let mut listeners = vec![(main, self.main_kind())];
        listeners.extend(listen::bind_async(&self.listeners).await?);
        Server::from_listeners(self, listeners)
    }

    /// Binds to `addr` and serves on a new multi-thread tokio runtime until the process is asked
    /// to stop (SIGINT, i.e. Ctrl+C, or SIGTERM on Unix; Ctrl+C elsewhere) or a
    /// [`ServerHandle::shutdown`](super::ServerHandle::shutdown), then shuts down gracefully
    /// (every `on_close` runs, queued messages are flushed) and returns `Ok`. Blocks the calling
    /// thread; like Python repod's `launch()`.
    ///
    /// Use [`launch_with`](Self::launch_with) to reach the running server (to announce it, or
    /// to keep a [`ServerHandle`](super::ServerHandle)).
    pub fn launch(
        self,
        addr: impl std::net::ToSocketAddrs + fmt::Display,
    ) -> Result<(), ServerError> {
        self.launch_with(addr, |_| {})
    }

    /// Like [`launch`](Self::launch), calling `on_start` with a handle to the server once it is
    /// ready: bound (connections are queued from then on) and with its signal handlers
    /// installed, so a stop signal sent from that moment is never lost.
    ///
    /// `on_start` runs on the calling thread inside the server's runtime, before the server
    /// accepts anything: announce readiness there, store the handle, spawn a thread or a task
    /// (`tokio::spawn` works) that will use it. It must return promptly and must not block on
    /// the server (no [`call_blocking`](super::ServerHandle::call_blocking) in it).
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
    /// Server::<Lobby>::builder()
    ///     .launch_with("127.0.0.1:5071", |handle| {
    ///         println!("listening on {}", handle.local_addr());
    ///         // An admin console on its own thread; `shutdown` stops the server.
    ///         std::thread::spawn(move || {
    ///             for line in std::io::stdin().lines().map_while(Result::ok) {
    ///                 if line.trim() == "shutdown" {
    ///                     handle.shutdown();
    ///                 }
    ///             }
    ///         });
    ///     })
    ///     .expect("server failed");
    /// ```
    pub fn launch_with(
        mut self,
        addr: impl std::net::ToSocketAddrs + fmt::Display,
        on_start: impl FnOnce(ServerHandle<Ch>),
    ) -> Result<(), ServerError> {
        let listeners = listen::bind_std(&self.listen_specs(&addr))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("repod-server")
            .build()
            .map_err(ServerError::Runtime)?;
        runtime.block_on(async move {
            // Before anything is announced: a signal sent once `on_start` ran is never lost.
            let stop = ShutdownSignal::new().map_err(ServerError::Runtime)?;
            self.cluster.prepare(self.config.codec).await?;
            let listeners = listen::to_tokio(listeners)?;
            let server = Server::from_listeners(self, listeners)?;
            tracing::info!(target: "repod::server", addr = %server.local_addr(), "serving; SIGINT (Ctrl+C) or SIGTERM stops");
            on_start(server.handle());
            server.run_until(stop).await
        })
    }

    /// Binds to `addr` and serves on a new thread with its own tokio runtime, for "host and
    /// play": the game keeps its main thread and connects to
    /// [`local_addr`](BackgroundServer::local_addr) like any client. Dropping the returned
    /// [`BackgroundServer`] shuts the server down and waits for it.
    pub fn start_background(
        mut self,
        addr: impl std::net::ToSocketAddrs + fmt::Display,
    ) -> Result<BackgroundServer<Ch>, ServerError> {
        let listeners = listen::bind_std(&self.listen_specs(&addr))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("repod-server")
            .build()
            .map_err(ServerError::Runtime)?;
        runtime.block_on(self.cluster.prepare(self.config.codec))?;
        let server = {
            let _guard = runtime.enter();
            let listeners = listen::to_tokio(listeners)?;
            Server::from_listeners(self, listeners)?
        };
        let local_addr = server.local_addr();
        let handle = server.handle();
        let thread = std::thread::Builder::new()
            .name("repod-server".into())
            .spawn(move || runtime.block_on(server.run()))
            .map_err(ServerError::Runtime)?;
        Ok(BackgroundServer::new(local_addr, handle, thread))
    }

    pub(crate) fn into_hub(
        self,
        handle: ServerHandle<Ch>,
    ) -> (Hub<Ch>, ServerConfig, Tick<Ch>, super::cluster::Io) {
        let ServerBuilder {
            config,
            state,
            factory,
            on_connect,
            on_disconnect,
            tick,
            auth: _,
            listeners: _,
            #[cfg(feature = "tls")]
                main_tls: _,
            #[cfg(feature = "websocket")]
                ws_options: _,
            cluster,
        } = self;
        let mut hub = Hub::with_handle(
            HubConfig {
                codec: config.codec,
                max_frame_len: config.max_frame_len,
            },
            state,
            factory,
            handle,
        );
        if let Some(hook) = on_connect {
            hub.set_on_connect(hook);
        }
        if let Some(hook) = on_disconnect {
            hub.set_on_disconnect(hook);
        }
        if let Some(resume) = config.resume {
            hub.enable_sessions(resume);
        }
        let (link, io) = cluster.start(config.codec);
        hub.set_cluster(link);
        (hub, config, tick, io)
    }
}
