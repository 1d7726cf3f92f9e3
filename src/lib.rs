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
    pub use ::rmpv;
    pub use ::serde;
    pub use ::tracing;
}
