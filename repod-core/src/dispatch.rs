//! What the dispatchers of both sides share: how a failed handler or an undecodable body is
//! reported ([`DispatchContext`]) and what a handler may return ([`HandlerResult`]).
//!
//! The dispatch traits themselves live with their side: [`Channel`](crate::Channel) in
//! [`server`](crate::server), [`Listener`](crate::Listener) in [`client`](crate::client).
//! `#[repod::channel]` and `#[repod::listener]` implement them; they are public so hand-written
//! dispatchers (and tests) can do the same.

use std::fmt;

use crate::codec::RawMessage;
use crate::error::CodecError;

/// What a dispatcher does when a message cannot reach its handler or its handler fails.
///
/// Implemented by the server's [`Context`](crate::Context) (which replies to the peer with an
/// `error` message) and the client's [`ClientContext`](crate::ClientContext) (which raises a
/// local `error` event).
pub trait DispatchContext {
    /// The body of `msg` did not decode into the handler's payload type.
    fn invalid_body(&mut self, msg: &RawMessage, error: CodecError);

    /// A handler returned `Err(error)`.
    fn handler_failed(&mut self, action: &str, error: &dyn fmt::Display);

    /// No handler matched and the type has no `network_received` fallback.
    fn unhandled(&mut self, msg: &RawMessage) {
        tracing::debug!(target: "repod::dispatch", action = msg.action(), "no handler for action");
    }
}

/// The return type of a handler: `()` or `Result<(), E>` with `E: Display`.
#[diagnostic::on_unimplemented(
    message = "a repod handler must return `()` or `Result<(), E>` where `E: Display`, not `{Self}`",
    label = "unsupported return type",
    note = "a handler answers with a value only when its payload is a request: declare the reply type on the message with `#[reply(…)]`"
)]
pub trait HandlerResult {
    /// Reports a failure to the context; does nothing for `()` and `Ok(())`.
    fn report<C: DispatchContext + ?Sized>(self, ctx: &mut C, action: &str);
}

impl HandlerResult for () {
    #[inline]
    fn report<C: DispatchContext + ?Sized>(self, _ctx: &mut C, _action: &str) {}
}

impl<E: fmt::Display> HandlerResult for Result<(), E> {
    #[inline]
    fn report<C: DispatchContext + ?Sized>(self, ctx: &mut C, action: &str) {
        if let Err(error) = self {
            ctx.handler_failed(action, &error);
        }
    }
}
