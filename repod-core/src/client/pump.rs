//! The game-loop [`Client`], its [`ClientSender`], and the dispatch step shared with
//! [`AsyncClient`](super::AsyncClient).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::addr::ServerAddr;
use super::conn::Shared;
use super::{ClientBuilder, ClientContext, Listener};
use crate::codec::RawMessage;
use crate::error::{ConnectError, SendError};
use crate::message::Message;

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
        }
    }

    /// Dispatches the events received since the last call to `listener`; never waits.
    ///
    /// Handles at most as many events as were queued when it was called (events raised or
    /// received meanwhile wait for the next call), and returns how many it handled.
    pub fn pump<L: Listener>(&mut self, listener: &mut L) -> usize {
        let budget = self.pending.len() + self.events.len();
        pump_some(
            &self.shared,
            &mut self.pending,
            &mut self.events,
            listener,
            budget,
        )
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
) -> usize {
    let mut handled = 0;
    while handled < budget {
        let Some(msg) = pending.pop_front().or_else(|| events.try_recv().ok()) else {
            break;
        };
        deliver(shared, pending, listener, msg);
        handled += 1;
    }
    handled
}

/// Hands one event to the listener with a context that can reply and raise events.
pub(crate) fn deliver<L: Listener>(
    shared: &Shared,
    pending: &mut VecDeque<RawMessage>,
    listener: &mut L,
    msg: RawMessage,
) {
    tracing::trace!(target: "repod::client", action = msg.action(), "dispatch");
    let mut ctx = ClientContext::for_client(shared, pending);
    listener.dispatch(&mut ctx, msg);
    if ctx.close_requested() {
        shared.close();
    }
}
