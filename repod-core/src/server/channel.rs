//! [`Channel`]: the server side's dispatch trait, one value per connection.

use super::hub::Context;
use crate::codec::RawMessage;
use crate::error::{ChannelError, CloseReason};

/// A server-side channel: one value per connection, its handlers bound to actions.
///
/// `#[repod::channel]` implements this trait for the type of the annotated `impl` block.
/// All channels of a server run on one dispatch loop, so a handler may read and change the
/// other channels and the shared [`State`](Channel::State) through its [`Context`] without locks.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a repod channel",
    note = "put `#[repod::channel]` on an `impl {Self}` block with `#[action(\"…\")]` handlers"
)]
pub trait Channel: Sized + Send + 'static {
    /// The server-wide state shared by all channels (the fields of a Python `Server` subclass).
    type State: Send + 'static;

    /// A message made ready for [`dispatch`](Channel::dispatch) by [`decode`](Channel::decode).
    ///
    /// `#[repod::channel]` uses a generated enum holding the decoded payload of each action (or
    /// the raw message when its body did not decode, or no handler claims it). A hand-written
    /// channel may simply use [`RawMessage`] and decode in `dispatch`.
    type Inbound: Send + 'static;

    /// The actions this channel handles, in declaration order.
    const ACTIONS: &'static [&'static str];

    /// Decodes a message's body into its handler's payload type.
    ///
    /// The server calls it on the connection's own task, off the dispatch loop, so decoding
    /// never holds up other channels. It sees only the message, never any state.
    fn decode(msg: RawMessage) -> Self::Inbound;

    /// Routes one decoded message to its handler, or to the fallback for an unknown action.
    /// Runs on the dispatch loop.
    fn dispatch(&mut self, ctx: &mut Context<'_, Self>, msg: Self::Inbound);

    /// Called once when the connection is accepted, after the `connected` greeting is queued.
    fn on_connect(&mut self, ctx: &mut Context<'_, Self>) {
        let _ = ctx;
    }

    /// Called once when the connection ends, whichever side ended it.
    fn on_close(&mut self, ctx: &mut Context<'_, Self>, reason: &CloseReason) {
        let _ = (ctx, reason);
    }

    /// Called for a protocol error on the connection: the peer sent a broken frame (too large,
    /// cut short) or a payload the codec cannot read as a message. It runs before the error
    /// reply is queued and the connection closed. It is not called when a well-formed message's
    /// body does not fit its handler's payload type: that peer only gets an error reply.
    fn on_error(&mut self, ctx: &mut Context<'_, Self>, error: &ChannelError) {
        let _ = (ctx, error);
    }
}
