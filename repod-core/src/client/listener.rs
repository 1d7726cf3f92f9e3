//! [`Listener`]: the client side's dispatch trait.

use std::any::Any;

use super::ClientContext;
use crate::codec::RawMessage;

/// A client-side listener: its handlers bound to the actions the server sends and to the
/// built-in events `connected`, `socketConnect`, `disconnected` and `error`.
///
/// `#[repod::listener]` implements this trait.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a repod listener",
    note = "put `#[repod::listener]` on an `impl {Self}` block with `#[action(\"…\")]` handlers"
)]
pub trait Listener {
    /// The actions this listener handles, in declaration order.
    const ACTIONS: &'static [&'static str];

    /// Routes one event to its handler, or to the fallback for an unknown action.
    fn dispatch(&mut self, ctx: &mut ClientContext<'_>, msg: RawMessage);

    /// The listener as [`Any`], so that the callbacks of
    /// [`Client::request`](super::Client::request), written for this listener type, can be
    /// given it during `pump`.
    ///
    /// `#[repod::listener]` returns `Some(self)` for listener types without lifetime
    /// parameters; a hand-written listener does the same. The default, `None`, suits listeners
    /// that borrow (they cannot be `Any`): such a listener cannot take request callbacks.
    fn as_any_mut(&mut self) -> Option<&mut dyn Any> {
        None
    }
}
