//! repod: typed action-dispatch networking for multiplayer games.
#![deny(missing_docs)]

#[doc(inline)]
pub use repod_core::*;

pub use repod_macros::*;

#[doc(hidden)]
pub mod __private {
    pub use ::bincode;
    pub use ::bytes;
    pub use ::repod_core;
    pub use ::repod_core::dispatch::{Channel, DispatchContext, HandlerResult, Listener};
    pub use ::repod_core::{
        ChannelError, ClientContext, CloseReason, CodecError, Context, Message, RawMessage,
    };
    pub use ::rmpv;
    pub use ::serde;
    pub use ::tracing;

    /// A zero-cost check emitted at a handler's payload type: an unmet bound lands there.
    pub const fn assert_message<T: Message + ?Sized>() {}

    /// String equality usable in constants (action-name checks of the macros).
    pub const fn str_eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
}
