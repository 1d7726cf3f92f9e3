//! [`AsyncClient`]: the client for tokio applications.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::addr::ServerAddr;
use super::conn::Shared;
use super::pump::{deliver, pump_some};
use super::{ClientBuilder, ClientSender, Listener};
use crate::codec::RawMessage;
use crate::error::{ConnectError, RequestError, SendError};
use crate::message::{Disconnected, Message, Request};

/// A client for tokio applications, driven by the same connection task as [`Client`](super::Client).
///
/// Receive events with [`recv`](AsyncClient::recv), or dispatch them to a listener with
/// [`run`](AsyncClient::run), one at a time with [`next`](AsyncClient::next) (in a
/// `tokio::select!` loop) or, from a game loop, [`pump`](AsyncClient::pump).
///
/// The connection task runs on the runtime the client was connected from, so it lives only as
/// long as that runtime: end with [`close`](AsyncClient::close)`.await`, which returns once
/// everything queued was sent and the connection is closed, before the runtime stops (as
/// `#[tokio::main]` returning stops it).
///
/// ```no_run
/// # async fn demo() -> Result<(), repod_core::ConnectError> {
/// use repod_core::{AsyncClient, Connected};
///
/// let mut client = AsyncClient::connect("127.0.0.1:31425").await?;
/// while let Some(event) = client.recv().await {
///     if event.is::<Connected>() { /* ... */ }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AsyncClient {
    shared: Arc<Shared>,
    events: mpsc::Receiver<RawMessage>,
    pending: VecDeque<RawMessage>,
    /// The connection task's end, with the reason of its `disconnected` event.
    done: oneshot::Receiver<String>,
}

impl AsyncClient {
    /// Connects to `addr` with the default settings, waiting for the TCP connection.
    ///
    /// The first event is `socketConnect`; `connected` follows when the server accepts the
    /// connection (its greeting arrives).
    pub async fn connect<A: ServerAddr>(addr: A) -> Result<AsyncClient, ConnectError> {
        ClientBuilder::new().connect_async(addr).await
    }

    /// A builder; finish it with [`ClientBuilder::connect_async`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    pub(crate) fn new(
        shared: Arc<Shared>,
        events: mpsc::Receiver<RawMessage>,
        done: oneshot::Receiver<String>,
    ) -> Self {
        AsyncClient {
            shared,
            events,
            pending: VecDeque::new(),
            done,
        }
    }

    /// Queues a message without waiting; see [`Client::send`](super::Client::send).
    pub fn send<M: Message + ?Sized>(&self, msg: &M) -> Result<(), SendError> {
        self.shared.send(msg)
    }

    /// Sends a request at once and waits for its reply, for at most the client's
    /// [request timeout](ClientBuilder::request_timeout) (10 seconds unless set).
    ///
    /// ```no_run
    /// # use repod_core::{AsyncClient, Message, Request, RequestError};
    /// # use serde::Serialize;
    /// # #[derive(Serialize)] struct ListRooms { mode: String }
    /// # impl Message for ListRooms { const ACTION: &'static str = "list_rooms"; }
    /// # impl Request for ListRooms { type Reply = Vec<String>; }
    /// # async fn demo(client: &AsyncClient) -> Result<(), RequestError> {
    /// let rooms: Vec<String> = client.request(&ListRooms { mode: "ffa".into() }).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// The request is queued when `request` is called, before the future is first polled; the
    /// future borrows nothing, so many requests can be in flight at once (join them, or spawn
    /// them), and their replies may arrive in any order. Dropping the future gives up on the
    /// reply (the server still handles the request). Errors:
    ///
    /// * [`RequestError::Timeout`]: no reply within the deadline;
    /// * [`RequestError::Remote`]: the server's handler returned `Err`, its reply token was
    ///   dropped, or nothing on the server answers this action;
    /// * [`RequestError::Disconnected`]: the connection closed before the reply (all waiting
    ///   requests fail at once), or was already closed;
    /// * [`RequestError::Decode`]: the reply does not fit the request's reply type;
    /// * [`RequestError::Send`]: the request does not encode, or the send queue is full.
    ///
    /// The reply is taken off the connection by the connection task, not through
    /// [`recv`](AsyncClient::recv): it does not wait behind unreceived events. But the task
    /// stops reading when the event queue is full, so a client that never receives its events
    /// stops getting replies once the server has sent it a queue's worth of other messages.
    pub fn request<R: Request + ?Sized>(
        &self,
        msg: &R,
    ) -> impl std::future::Future<Output = Result<R::Reply, RequestError>> + Send + 'static {
        self.shared.request(msg, self.shared.request_timeout)
    }

    /// Like [`request`](AsyncClient::request), with its own deadline.
    pub fn request_with_timeout<R: Request + ?Sized>(
        &self,
        msg: &R,
        timeout: std::time::Duration,
    ) -> impl std::future::Future<Output = Result<R::Reply, RequestError>> + Send + 'static {
        self.shared.request(msg, timeout)
    }

    /// The next event, built-in ones included; `None` after `disconnected`.
    pub async fn recv(&mut self) -> Option<RawMessage> {
        loop {
            let msg = match self.pending.pop_front() {
                Some(msg) => msg,
                None => self.events.recv().await?,
            };
            // A reply whose request gave up (timed out, dropped) is not an event.
            if msg.reply_id().is_none() {
                return Some(msg);
            }
            tracing::debug!(target: "repod::client", rid = msg.reply_id(), "a reply to no waiting request (late, or cancelled): dropped");
        }
    }

    /// Dispatches events to `listener` until the connection is gone (`disconnected` is the
    /// last event it dispatches).
    pub async fn run<L: Listener>(&mut self, listener: &mut L) {
        while let Some(msg) = self.recv().await {
            deliver(&self.shared, &mut self.pending, listener, msg, None);
        }
    }

    /// Waits for the next event and dispatches it to `listener`: one step of
    /// [`run`](AsyncClient::run), for loops that wait on other things too (`tokio::select!`).
    ///
    /// Returns `true` when an event was handled, `false` once the connection is over and every
    /// event, `disconnected` included, has been handled. It is cancel-safe: dropped while
    /// waiting (another `select!` branch won), it loses no event.
    ///
    /// ```no_run
    /// # use repod_core::{AsyncClient, ClientContext, Listener, RawMessage};
    /// # struct Game;
    /// # impl Listener for Game {
    /// #     const ACTIONS: &'static [&'static str] = &[];
    /// #     fn dispatch(&mut self, _: &mut ClientContext<'_>, _: RawMessage) {}
    /// # }
    /// # async fn demo(mut client: AsyncClient, mut game: Game) {
    /// let mut frame = tokio::time::interval(std::time::Duration::from_millis(16));
    /// loop {
    ///     tokio::select! {
    ///         more = client.next(&mut game) => if !more { break },
    ///         _ = frame.tick() => { /* step the game, send inputs */ }
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn next<L: Listener>(&mut self, listener: &mut L) -> bool {
        match self.recv().await {
            Some(msg) => {
                deliver(&self.shared, &mut self.pending, listener, msg, None);
                true
            }
            None => false,
        }
    }

    /// Dispatches the events already received, without waiting; see
    /// [`Client::pump`](super::Client::pump).
    pub fn pump<L: Listener>(&mut self, listener: &mut L) -> usize {
        let budget = self.pending.len() + self.events.len();
        pump_some(
            &self.shared,
            &mut self.pending,
            &mut self.events,
            listener,
            budget,
            None,
        )
    }

    /// Sends `msg` as the client's login: now, like [`send`](Self::send), and, for a client
    /// that [reconnects](ClientBuilder::reconnect), again as the first message of every new
    /// session (with [`resume`](ClientBuilder::resume)) or every new connection (without).
    /// A resumed session does not send it again: the server already knows the peer. Use it,
    /// instead of `send`, for the login of a server that
    /// [authenticates](crate::server::ServerBuilder::auth).
    pub fn set_login<M: Message + ?Sized>(&self, msg: &M) -> Result<(), SendError> {
        self.shared.set_login(msg)
    }

    /// A cloneable handle that sends on this connection from any task or thread.
    pub fn sender(&self) -> ClientSender {
        ClientSender::new(self.shared.clone())
    }

    /// Closes the connection gracefully and waits until it is closed: every message queued
    /// before the call is written, the connection's sending side is shut, and the server's own
    /// close is awaited, so the server has read everything. All of it takes at most about the
    /// close timeout; past it, the connection is reset and what was left is dropped.
    ///
    /// Returns the `disconnected` event that ends the connection: its reason is
    /// `"closed by client"` after a clean close, `"closed by client (flush timed out after …)"`
    /// when the close timeout expired, or why the connection had ended before. Events not
    /// received yet are dropped; to keep receiving them until `disconnected`, close through
    /// [`sender`](AsyncClient::sender)`().close()` and go on calling [`recv`](AsyncClient::recv).
    pub async fn close(mut self) -> Disconnected {
        self.events.close();
        self.shared.close();
        let reason = match (&mut self.done).await {
            Ok(reason) => reason,
            // The task was dropped without finishing: its runtime is shutting down.
            Err(_) => "the client's connection task stopped".to_owned(),
        };
        Disconnected { reason }
    }

    /// Whether the TCP connection is up (from `socketConnect` on, whether or not the server
    /// has accepted it yet) and not closing. It turns false as soon as the
    /// client closes, or sees the server's end of the connection (closed or reset), even while
    /// earlier events still wait to be received.
    pub fn is_connected(&self) -> bool {
        self.shared.is_connected()
    }

    /// The round-trip time to the server, as the last [heartbeat](ClientBuilder::heartbeat)
    /// measured it; `None` before the first answer (or without heartbeats).
    pub fn rtt(&self) -> Option<std::time::Duration> {
        self.shared.rtt()
    }
}

impl Drop for AsyncClient {
    /// Asks the connection task to flush what is queued and close (within the close timeout),
    /// without waiting for it. That happens only while the runtime keeps running: a runtime
    /// that stops (as when `#[tokio::main]` returns) drops the task, and whatever it had not
    /// written yet is lost. Use [`close`](AsyncClient::close)`.await` to be sure.
    fn drop(&mut self) {
        self.events.close();
        self.shared.close();
    }
}
