//! The server's listening sockets: one per address, each with the transport its connections
//! speak, each with its own accept loop feeding the dispatch loop.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ServerError;

/// The transport a server's listener speaks; see [`Server::local_addrs`](super::Server::local_addrs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// Frames over plain TCP: a 4-byte length, then the payload.
    Tcp,
    /// WebSocket: one binary message per payload (feature `websocket`).
    #[cfg(feature = "websocket")]
    WebSocket,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            #[cfg(feature = "websocket")]
            Transport::WebSocket => "ws",
        })
    }
}

/// What a listener's connections go through before they become channels, with what that
/// needs. A transport with a handshake runs it on the connection's own task, bounded by the
/// server's handshake timeout.
#[derive(Debug, Clone)]
pub(crate) enum ListenKind {
    /// Plain TCP: no handshake; the channel exists as soon as the connection is accepted
    /// (or, with authentication, once the peer is authenticated).
    Tcp,
    /// WebSocket: the HTTP upgrade first.
    #[cfg(feature = "websocket")]
    WebSocket,
}

impl ListenKind {
    pub(crate) fn transport(&self) -> Transport {
        match self {
            ListenKind::Tcp => Transport::Tcp,
            #[cfg(feature = "websocket")]
            ListenKind::WebSocket => Transport::WebSocket,
        }
    }
}

/// A connection accepted by one of the listeners.
pub(crate) type Accepted = (TcpStream, SocketAddr, ListenKind);

/// A listener still to be bound: its address as given, and its kind.
pub(crate) type ListenSpec = (String, ListenKind);

/// Binds every listener with the standard library (outside a runtime); made non-blocking, to
/// be handed to tokio inside one.
pub(crate) fn bind_std(
    specs: &[ListenSpec],
) -> Result<Vec<(std::net::TcpListener, ListenKind)>, ServerError> {
    specs
        .iter()
        .map(|(addr, kind)| {
            let bind_error = |source| ServerError::Bind {
                addr: addr.clone(),
                source,
            };
            let listener = std::net::TcpListener::bind(addr.as_str()).map_err(bind_error)?;
            listener.set_nonblocking(true).map_err(bind_error)?;
            Ok((listener, kind.clone()))
        })
        .collect()
}

/// Hands listeners bound by [`bind_std`] to the current runtime.
pub(crate) fn to_tokio(
    listeners: Vec<(std::net::TcpListener, ListenKind)>,
) -> Result<Vec<(TcpListener, ListenKind)>, ServerError> {
    listeners
        .into_iter()
        .map(|(listener, kind)| {
            TcpListener::from_std(listener)
                .map(|listener| (listener, kind))
                .map_err(ServerError::Runtime)
        })
        .collect()
}

/// Binds every listener on the current runtime.
pub(crate) async fn bind_async(
    specs: &[ListenSpec],
) -> Result<Vec<(TcpListener, ListenKind)>, ServerError> {
    let mut listeners = Vec::with_capacity(specs.len());
    for (addr, kind) in specs {
        let listener =
            TcpListener::bind(addr.as_str())
                .await
                .map_err(|source| ServerError::Bind {
                    addr: addr.clone(),
                    source,
                })?;
        listeners.push((listener, kind.clone()));
    }
    Ok(listeners)
}

/// Accepts connections on `listener` and hands them, with the listener's kind, to the
/// dispatch loop, which applies the connection limits.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    kind: ListenKind,
    accepted: mpsc::Sender<Accepted>,
    shutdown: CancellationToken,
) {
    loop {
        let result = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            result = listener.accept() => result,
        };
        match result {
            Ok((stream, addr)) => {
                if accepted.send((stream, addr, kind.clone())).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                // Out of file descriptors and the like: back off a little instead of spinning.
                tracing::error!(target: "repod::server", %error, "accept failed");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
}
