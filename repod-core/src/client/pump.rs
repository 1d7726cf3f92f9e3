//! The game-loop [`Client`], its [`ClientSender`], and the dispatch step shared with
//! [`AsyncClient`](super::AsyncClient).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::addr::ServerAddr;
use super::conn::Shared;
use super::pending::{self, Calls, Ticket};
use super::{ClientBuilder, ClientContext, Listener};
use crate::codec::RawMessage;
use crate::error::{ConnectError, RequestError, SendError};
use crate::message::{Message, Request};

/// Extra time drop waits for the i/o thread beyond the close timeout.
const JOIN_MARGIN: Duration = Duration::from_millis(250);

/// A game-loop client: connect, then call [`pump`](Client::pump) once per frame.
///
/// All i/o happens on a background thread; no method blocks (except drop, which gives queued
/// messages up to the close timeout to leave). `Client` is `Send + Sync`; share it behind an
/// `Arc`, or hand other threads a [`ClientSender`].
///
/// ```no_run
/// use repod_core::{Client, ClientContext, Listener, RawMessage};
///
/// struct Game;
/// impl Listener for Game {
///     const ACTIONS: &'static [&'static str] = &["connected"];
///     fn dispatch(&mut self, _ctx: &mut ClientContext<'_>, msg: RawMessage) {
///         if msg.action() == "connected" { /* say hello */ }
///     }
/// }
///
/// let mut client = Client::connect("127.0.0.1:31425")?;
/// let mut game = Game;
/// loop {
///     client.pump(&mut game);
///     // ... draw a frame ...
/// #   break;
/// }
/// # Ok::<(), repod_core::ConnectError>(())
/// ```
#[derive(Debug)]
pub struct Client {
    shared: Arc<Shared>,
    events: mpsc::Receiver<RawMessage>,
    pending: VecDeque<RawMessage>,
    done: Mutex<std::sync::mpsc::Receiver<()>>,
    close_timeout: Duration,
    /// The callbacks of requests waiting for their replies.
    calls: Mutex<Calls>,
}

impl Client {
    /// Starts connecting to `addr` with the default settings; returns at once.
    ///
    /// See [`ClientBuilder::connect`].
    pub fn connect<A: ServerAddr>(addr: A) -> Result<Client, ConnectError> {
        ClientBuilder::new().connect(addr)
    }

    /// A builder, to choose the codec, the maximum frame length and the queue limits.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    pub(crate) fn new(
        shared: Arc<Shared>,
        events: mpsc::Receiver<RawMessage>,
        done: std::sync::mpsc::Receiver<()>,
        close_timeout: Duration,
    ) -> Self {
        Client {
            shared,
            events,
            pending: VecDeque::new(),
            done: Mutex::new(done),
            close_timeout,
            calls: Mutex::new(Calls::default()),
        }
    }

    /// Dispatches the events received since the last call to `listener`; never waits.
    ///
    /// Handles at most as many events as were queued when it was called (events raised or
    /// received meanwhile wait for the next call), and returns how many it handled.
    ///
    /// Requests whose deadline has passed get their callbacks run first, with
    /// [`RequestError::Timeout`]; replies run their callbacks in order with the other events.
    pub fn pump<L: Listener>(&mut self, listener: &mut L) -> usize {
        {
            let mut ctx = ClientContext::for_client(&self.shared, &mut self.pending);
            Calls::expire(&self.calls, listener.as_any_mut(), &mut ctx);
            if ctx.close_requested() {
                self.shared.close();
            }
        }
        let budget = self.pending.len() + self.events.len();
        pump_some(
            &self.shared,
            &mut self.pending,
            &mut self.events,
            listener,
            budget,
            Some(&self.calls),
        )
    }

    /// Sends a request and returns at once with its ticket; `on_reply` runs during a later
    /// [`pump`](Client::pump), with the listener, a context and the reply (or why there is
    /// none), after the [default timeout](ClientBuilder::request_timeout) at the latest.
    ///
    /// The callback is written for one listener type, `L`, and runs only when `pump` is given a
    /// listener of that type (one made by `#[repod::listener]` without lifetime parameters, or
    /// whose [`as_any_mut`](Listener::as_any_mut) returns itself); otherwise it is dropped
    /// with an error log. It runs exactly once: with the reply, with
    /// [`RequestError::Timeout`] on the first `pump` after the deadline, or with
    /// [`RequestError::Disconnected`] right before the `disconnected` event.
    ///
    /// Fails at once, without calling `on_reply`, if the request cannot be sent:
    /// [`RequestError::Disconnected`] once the connection is closed or closing,
    /// [`RequestError::Send`] for a full queue or a message that does not encode.
    ///
    /// ```no_run
    /// # use repod_core::{Client, ClientContext, Listener, Message, RawMessage, Request};
    /// # use serde::Serialize;
    /// # #[derive(Serialize)] struct ListRooms;
    /// # impl Message for ListRooms { const ACTION: &'static str = "list_rooms"; }
    /// # impl Request for ListRooms { type Reply = Vec<String>; }
    /// # #[derive(Default)] struct Lobby { rooms: Vec<String>, status: String }
    /// # impl Listener for Lobby {
    /// #     const ACTIONS: &'static [&'static str] = &[];
    /// #     fn dispatch(&mut self, _: &mut ClientContext<'_>, _: RawMessage) {}
    /// #     fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> { Some(self) }
    /// # }
    /// let mut client = Client::connect("127.0.0.1:31425")?;
    /// client.request(&ListRooms, |lobby: &mut Lobby, _ctx, result| match result {
    ///     Ok(rooms) => lobby.rooms = rooms,
    ///     Err(error) => lobby.status = error.to_string(),
    /// })?;
    /// let mut lobby = Lobby::default();
    /// loop {
    ///     client.pump(&mut lobby); // the callback runs in one of these
    /// #   break;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn request<R, L, F>(&self, msg: &R, on_reply: F) -> Result<Ticket, RequestError>
    where
        R: Request + ?Sized,
        L: Listener + 'static,
        F: FnOnce(&mut L, &mut ClientContext<'_>, Result<R::Reply, RequestError>) + Send + 'static,
    {
        self.request_with_timeout(msg, self.shared.request_timeout, on_reply)
    }

    /// Like [`request`](Client::request), with its own deadline.
    pub fn request_with_timeout<R, L, F>(
        &self,
        msg: &R,
        timeout: Duration,
        on_reply: F,
    ) -> Result<Ticket, RequestError>
    where
        R: Request + ?Sized,
        L: Listener + 'static,
        F: FnOnce(&mut L, &mut ClientContext<'_>, Result<R::Reply, RequestError>) + Send + 'static,
    {
        let rid = self.shared.requests.next_id();
        // Registered first: the reply cannot overtake it.
        pending::lock(&self.calls).add::<R, L, F>(rid, timeout, on_reply);
        match self.shared.send_request(rid, msg) {
            Ok(()) => Ok(Ticket(rid)),
            Err(error) => {
                pending::lock(&self.calls).remove(rid);
                Err(error.into())
            }
        }
    }

    /// Gives up on a request: its callback will not run, and a reply arriving later is dropped.
    /// Returns `false` if the callback already ran (or was cancelled before).
    pub fn cancel(&self, ticket: Ticket) -> bool {
        pending::lock(&self.calls).remove(ticket.0)
    }

    /// How many requests wait for their replies (their callbacks have not run yet).
    pub fn requests_in_flight(&self) -> usize {
        pending::lock(&self.calls).len()
    }

    /// Queues a message for the server without waiting; it leaves for the socket at once.
    ///
    /// Messages sent before the connection is up are sent once it is. Fails with
    /// [`SendError::Closed`] once the connection is closed or closing, with
    /// [`SendError::QueueFull`] when the send queue is at its limit, and with
    /// [`SendError::Codec`] when the message cannot be encoded or exceeds the maximum
    /// frame length.
    pub fn send<M: Message + ?Sized>(&self, msg: &M) -> Result<(), SendError> {
        self.shared.send(msg)
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

    /// A cloneable handle that sends on this connection from any thread.
    pub fn sender(&self) -> ClientSender {
        ClientSender {
            shared: self.shared.clone(),
        }
    }

    /// Closes the connection after the queued messages are written (within the close
    /// timeout); returns at once. `disconnected` ("closed by client") follows through `pump`.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Whether the TCP connection is up (from `socketConnect` on, whether or not the server
    /// has accepted it yet) and not closing. It turns false as soon as the
    /// client closes, or sees the server's end of the connection (closed or reset), whether or
    /// not the game pumps; events received before the end still wait for `pump`.
    pub fn is_connected(&self) -> bool {
        self.shared.is_connected()
    }

    /// The round-trip time to the server, as the last [heartbeat](ClientBuilder::heartbeat)
    /// measured it; `None` before the first answer (or without heartbeats).
    pub fn rtt(&self) -> Option<std::time::Duration> {
        self.shared.rtt()
    }
}

impl Drop for Client {
    /// Closes the connection, waiting up to the close timeout for queued messages to leave.
    fn drop(&mut self) {
        self.events.close();
        self.shared.close();
        let done = self.done.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = done.recv_timeout(self.close_timeout + JOIN_MARGIN);
    }
}

/// A cloneable, thread-safe handle that sends on a client's connection.
#[derive(Debug, Clone)]
pub struct ClientSender {
    shared: Arc<Shared>,
}

impl ClientSender {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        ClientSender { shared }
    }

    /// Queues a message without waiting; see [`Client::send`].
    pub fn send<M: Message + ?Sized>(&self, msg: &M) -> Result<(), SendError> {
        self.shared.send(msg)
    }

    /// Sends a request at once and returns the future of its reply; see
    /// [`AsyncClient::request`](super::AsyncClient::request). Works for the connection of a
    /// game-loop [`Client`] too (the reply then does not go through `pump`); the future must be
    /// awaited within a tokio runtime, for its deadline.
    pub fn request<R: Request + ?Sized>(
        &self,
        msg: &R,
    ) -> impl std::future::Future<Output = Result<R::Reply, RequestError>> + Send + 'static {
        self.shared.request(msg, self.shared.request_timeout)
    }

    /// Like [`request`](ClientSender::request), with its own deadline.
    pub fn request_with_timeout<R: Request + ?Sized>(
        &self,
        msg: &R,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<R::Reply, RequestError>> + Send + 'static {
        self.shared.request(msg, timeout)
    }

    /// Closes the connection after the queued messages are written; see [`Client::close`].
    pub fn close(&self) {
        self.shared.close();
    }

    /// Whether the TCP connection is up (from `socketConnect` on, whether or not the server
    /// has accepted it yet) and not closing. It turns false as soon as the
    /// client closes, or sees the server's end of the connection (closed or reset), whether or
    /// not the game pumps; events received before the end still wait for `pump`.
    pub fn is_connected(&self) -> bool {
        self.shared.is_connected()
    }
}

/// Dispatches up to `budget` ready events, locally raised ones first.
pub(crate) fn pump_some<L: Listener>(
    shared: &Shared,
    pending: &mut VecDeque<RawMessage>,
    events: &mut mpsc::Receiver<RawMessage>,
    listener: &mut L,
    budget: usize,
    calls: Option<&Mutex<Calls>>,
) -> usize {
    let mut handled = 0;
    while handled < budget {
        let Some(msg) = pending.pop_front().or_else(|| events.try_recv().ok()) else {
            break;
        };
        deliver(shared, pending, listener, msg, calls);
        handled += 1;
    }
    handled
}

/// Hands one event to the listener with a context that can reply and raise events.
///
/// A reply runs its request's callback (`calls`, a game-loop client's) and is not dispatched;
/// before the last event, `disconnected`, the callbacks still waiting fail.
pub(crate) fn deliver<L: Listener>(
    shared: &Shared,
    pending: &mut VecDeque<RawMessage>,
    listener: &mut L,
    msg: RawMessage,
    calls: Option<&Mutex<Calls>>,
) {
    tracing::trace!(target: "repod::client", action = msg.action(), "dispatch");
    let mut ctx = ClientContext::for_client(shared, pending);
    if msg.reply_id().is_some() {
        match calls {
            Some(calls) => Calls::reply(calls, listener.as_any_mut(), &mut ctx, msg),
            None => {
                tracing::debug!(target: "repod::client", rid = msg.reply_id(), "a reply to no waiting request (late, or cancelled): dropped")
            }
        }
    } else {
        if let (true, Some(calls)) = (msg.fails_requests(), calls) {
            Calls::fail_all(calls, listener.as_any_mut(), &mut ctx);
        }
        listener.dispatch(&mut ctx, msg);
    }
    if ctx.close_requested() {
        shared.close();
    }
}
