//! Stopping a server from outside: the operating system's stop signals ([`ShutdownSignal`]) and
//! any future of the application ([`Server::run_until`]).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::channel::Channel;
use super::{Server, ServerError};

/// Completes when the process is asked to stop: SIGINT (Ctrl+C) or SIGTERM (what `kill`,
/// systemd, Docker and Kubernetes send) on Unix, Ctrl+C elsewhere.
///
/// The handlers are installed when the value is made, not when it is first awaited: a signal
/// that arrives after [`ShutdownSignal::new`] returns is never lost, so make it *before*
/// announcing that the server is ready. Once installed, the handlers stay for the life of the
/// process (the signals no longer end it by themselves), so a process that makes one should
/// await it. [`ServerBuilder::launch`](super::ServerBuilder::launch) uses one; an application
/// on its own runtime passes one to [`Server::run_until`]:
///
/// ```no_run
/// # use repod_core::{Channel, Context, RawMessage, server::{Server, ShutdownSignal}};
/// # #[derive(Default)] struct Lobby;
/// # impl Channel for Lobby {
/// #     type State = ();
/// #     type Inbound = RawMessage;
/// #     const ACTIONS: &'static [&'static str] = &[];
/// #     fn decode(msg: RawMessage) -> RawMessage { msg }
/// #     fn dispatch(&mut self, _: &mut Context<'_, Self>, _: RawMessage) {}
/// # }
/// # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
/// let stop = ShutdownSignal::new()?; // before "listening on": no signal is missed
/// let server = Server::<Lobby>::builder().bind("127.0.0.1:5071").await?;
/// println!("listening on {}", server.local_addr());
/// server.run_until(stop).await?;
/// # Ok(())
/// # }
/// ```
pub struct ShutdownSignal {
    received: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl ShutdownSignal {
    /// Installs the handlers. Must be called inside a tokio runtime with its I/O driver
    /// enabled (`enable_all`, or `#[tokio::main]`).
    ///
    /// # Errors
    ///
    /// The error of the operating system when a handler cannot be installed.
    pub fn new() -> io::Result<Self> {
        Ok(ShutdownSignal {
            received: Box::pin(os::install()?),
        })
    }
}

impl Future for ShutdownSignal {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.received.as_mut().poll(cx)
    }
}

impl fmt::Debug for ShutdownSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownSignal").finish_non_exhaustive()
    }
}

#[cfg(unix)]
mod os {
    use std::future::Future;
    use std::io;

    use tokio::signal::unix::{signal, SignalKind};

    pub(super) fn install() -> io::Result<impl Future<Output = ()> + Send> {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            tracing::info!(target: "repod::server", signal = name, "stop signal received");
        })
    }
}

#[cfg(not(unix))]
mod os {
    use std::future::Future;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures::task::noop_waker_ref;

    pub(super) fn install() -> io::Result<impl Future<Output = ()> + Send> {
        // `ctrl_c()` installs its handler when first polled: poll it once now.
        let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
        let first = Pin::new(&mut ctrl_c).poll(&mut Context::from_waker(noop_waker_ref()));
        let ready = match first {
            Poll::Ready(Err(error)) => return Err(error),
            Poll::Ready(Ok(())) => true,
            Poll::Pending => false,
        };
        Ok(async move {
            if !ready && ctrl_c.await.is_err() {
                std::future::pending::<()>().await;
            }
            tracing::info!(target: "repod::server", signal = "Ctrl+C", "stop signal received");
        })
    }
}

impl<Ch: Channel> Server<Ch> {
    /// Serves like [`run`](Server::run) until `signal` completes (or a
    /// [`ServerHandle::shutdown`](super::ServerHandle::shutdown)), then shuts down gracefully
    /// and returns when that is done: the counterpart of axum's `with_graceful_shutdown`.
    ///
    /// `signal` is any future: a [`ShutdownSignal`] for the operating system's stop signals, a
    /// channel's receiver, a timer, or several of them in a `select!`.
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
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let server = Server::<Lobby>::builder().bind("127.0.0.1:0").await?;
    /// // ... hand `stop` to whatever decides when the server ends, which calls `stop.send(())`
    /// # drop(stop);
    /// server
    ///     .run_until(async {
    ///         let _ = stopped.await;
    ///     })
    ///     .await
    /// # }
    /// ```
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<(), ServerError> {
        let handle = self.handle();
        let run = self.run();
        tokio::pin!(run, signal);
        tokio::select! {
            result = &mut run => return result,
            () = &mut signal => handle.shutdown(),
        }
        run.await
    }
}
