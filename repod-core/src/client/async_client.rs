//! [`AsyncClient`]: the client for tokio applications.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::net::ToSocketAddrs;
use tokio::sync::mpsc;

use super::conn::Shared;
use super::pump::{deliver, pump_some};
use super::{ClientBuilder, ClientSender, Listener};
use crate::codec::RawMessage;
use crate::error::{ConnectError, SendError};
use crate::message::Message;

/// A client for tokio applications, driven by the same connection task as [`Client`](super::Client).
///
/// Receive events with [`recv`](AsyncClient::recv), or dispatch them to a listener with
/// [`run`](AsyncClient::run) or, from a game loop, [`pump`](AsyncClient::pump).
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
}

impl AsyncClient {
    /// Connects to `addr` with the default settings, waiting for the TCP connection.
    ///
    /// The first events are `socketConnect` and `connected`.
    pub async fn connect<A>(addr: A) -> Result<AsyncClient, ConnectError>
    where
        A: ToSocketAddrs + std::fmt::Debug,
    {
        ClientBuilder::new().connect_async(addr).await
    }

    /// A builder; finish it with [`ClientBuilder::connect_async`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    pub(crate) fn new(shared: Arc<Shared>, events: mpsc::Receiver<RawMessage>) -> Self {
        AsyncClient {
            shared,
            events,
            pending: VecDeque::new(),
        }
    }

    /// Queues a message without waiting; see [`Client::send`](super::Client::send).
    pub fn send<M: Message + ?Sized>(&self, msg: &M) -> Result<(), SendError> {
        self.shared.send(msg)
    }

    /// The next event, built-in ones included; `None` after `disconnected`.
    pub async fn recv(&mut self) -> Option<RawMessage> {
        match self.pending.pop_front() {
            Some(msg) => Some(msg),
            None => self.events.recv().await,
        }
    }

    /// Dispatches events to `listener` until the connection is gone (`disconnected` is the
    /// last event it dispatches).
    pub async fn run<L: Listener>(&mut self, listener: &mut L) {
        while let Some(msg) = self.recv().await {
            deliver(&self.shared, &mut self.pending, listener, msg);
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
        )
    }

    /// A cloneable handle that sends on this connection from any task or thread.
    pub fn sender(&self) -> ClientSender {
        ClientSender::new(self.shared.clone())
    }

    /// Closes the connection after the queued messages are written (within the close
    /// timeout); `disconnected` ("closed by client") follows.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Whether the connection is established and not closing.
    pub fn is_connected(&self) -> bool {
        self.shared.is_connected()
    }
}

impl Drop for AsyncClient {
    /// Closes the connection; the connection task flushes what is queued (within the close
    /// timeout) in the background.
    fn drop(&mut self) {
        self.events.close();
        self.shared.close();
    }
}
