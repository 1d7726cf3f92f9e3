//! Authentication before a channel exists: the first message of a peer must be the
//! application's login action, checked off the dispatch loop by an application function.
//!
//! Until the check passes, the peer has no channel: nothing it sends is dispatched and no
//! `on_connect` runs. The connection's own task reads the first frame, so checks of many peers
//! run at once and never hold up the loop.

use std::any::Any;
use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::de::DeserializeOwned;

use super::hub::PeerInfo;
use crate::codec::{Codec, CodecKind, RawMessage};
use crate::connection::transport::FrameReader;
use crate::message::{Heartbeat, Message};

/// What an authentication check proved about a peer, kept with its channel and read with
/// [`Context::identity`](super::Context::identity).
pub(crate) type Identity = Arc<dyn Any + Send + Sync>;

type CheckFuture = Pin<Box<dyn Future<Output = Result<Identity, String>> + Send>>;
type CheckFn = dyn Fn(RawMessage, PeerInfo) -> CheckFuture + Send + Sync;

/// The server's authentication settings.
#[derive(Clone)]
pub(crate) struct Auth {
    /// The login message's action name.
    pub(crate) action: &'static str,
    /// How long a peer has, from its acceptance, to be authenticated.
    pub(crate) timeout: Duration,
    check: Arc<CheckFn>,
    /// Login attempts per IP address, when limited.
    attempts: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("action", &self.action)
            .field("timeout", &self.timeout)
            .field("attempts_limited", &self.attempts.is_some())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Authentication with the login message `L`, checked by `check`.
    pub(crate) fn new<L, I, F, Fut>(timeout: Duration, check: F) -> Self
    where
        L: Message + DeserializeOwned + Send + 'static,
        I: Send + Sync + 'static,
        F: Fn(L, PeerInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<I, String>> + Send + 'static,
    {
        let check = Arc::new(check);
        Auth {
            action: L::ACTION,
            timeout,
            check: Arc::new(move |raw: RawMessage, peer: PeerInfo| {
                let check = check.clone();
                Box::pin(async move {
                    let login: L = raw.decode().map_err(|error| error.to_string())?;
                    let identity = check(login, peer).await?;
                    Ok(Arc::new(identity) as Identity)
                }) as CheckFuture
            }),
            attempts: None,
        }
    }

    /// Limits login attempts to `per_minute` per IP address (a burst of that many, refilled
    /// evenly over the minute).
    pub(crate) fn limit_attempts(&mut self, per_minute: u32) {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        self.attempts = Some(Arc::new(DefaultKeyedRateLimiter::keyed(Quota::per_minute(
            per_minute,
        ))));
    }

    /// Forgets the addresses whose attempts no longer count, so the table of addresses
    /// cannot grow without bound.
    pub(crate) fn evict_stale(&self) {
        if let Some(attempts) = &self.attempts {
            attempts.retain_recent();
            attempts.shrink_to_fit();
        }
    }

    /// Waits for the peer's first message and checks it. `Ok` with the identity, or `Err`
    /// with the reason to tell the peer. Bounded by [`timeout`](Auth::timeout) as a whole.
    ///
    /// `read` counts the frames read (heartbeats before the login, and the login).
    pub(crate) async fn authenticate<R: FrameReader>(
        &self,
        frames: &mut R,
        codec: CodecKind,
        peer: PeerInfo,
        read: &mut u64,
    ) -> Result<Identity, Refusal> {
        match tokio::time::timeout(self.timeout, self.first_message(frames, codec, peer, read))
            .await
        {
            Ok(result) => result,
            Err(_) => Err(Refusal::Tell("auth timeout".to_owned())),
        }
    }

    async fn first_message<R: FrameReader>(
        &self,
        frames: &mut R,
        codec: CodecKind,
        peer: PeerInfo,
        read: &mut u64,
    ) -> Result<Identity, Refusal> {
        let raw = loop {
            let payload = match frames.next_frame().await {
                Some(Ok(payload)) => payload,
                Some(Err(error)) => return Err(Refusal::Tell(error.to_string())),
                None => return Err(Refusal::Gone),
            };
            *read += 1;
            match login_step(codec, self.action, payload) {
                LoginStep::Heartbeat => continue,
                LoginStep::Login(raw) => break raw,
                LoginStep::Refuse(reason) => return Err(Refusal::Tell(reason)),
            }
        };
        if let Some(attempts) = &self.attempts {
            if attempts.check_key(&peer.addr.ip()).is_err() {
                return Err(Refusal::Tell("too many authentication attempts".to_owned()));
            }
        }
        (self.check)(raw, peer).await.map_err(Refusal::Tell)
    }
}

/// What the authentication gate makes of one frame a peer sent before it was authenticated.
///
/// Public only for the fuzz targets; not part of the API.
#[doc(hidden)]
#[derive(Debug)]
pub enum LoginStep {
    /// A heartbeat, which may come before the login: not an answer, the gate reads on.
    Heartbeat,
    /// The login message, to be decoded and checked by the application.
    Login(RawMessage),
    /// Not a login: the peer is told this reason and the connection closes.
    Refuse(String),
}

/// Judges one frame's payload that a peer sent before it was authenticated, when the login
/// message's action is `login_action`.
///
/// Public only for the fuzz targets; not part of the API.
#[doc(hidden)]
pub fn login_step(codec: CodecKind, login_action: &str, payload: Bytes) -> LoginStep {
    let raw = match codec.decode_raw(payload) {
        Ok(raw) => raw,
        Err(error) => return LoginStep::Refuse(error.to_string()),
    };
    if raw.action() == Heartbeat::ACTION {
        LoginStep::Heartbeat
    } else if raw.action() == login_action {
        LoginStep::Login(raw)
    } else {
        LoginStep::Refuse("authentication required".to_owned())
    }
}

/// Why a peer was not authenticated.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The peer is told this reason in an `error` message, then the connection closes.
    Tell(String),
    /// The peer closed the connection first.
    Gone,
}
