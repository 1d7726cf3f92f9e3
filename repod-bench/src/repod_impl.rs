//! repod's side of the bench: a channel serving the bench protocol on repod's server.
//!
//! repod's server is not in this build yet; until it is, this implementation reports itself
//! unavailable and its columns stay empty.

use std::future::Future;
use std::io;
use std::pin::Pin;

use crate::{Implementation, ServeConfig};

/// repod's server.
pub struct Repod;

impl Implementation for Repod {
    fn name(&self) -> &'static str {
        "repod"
    }

    fn available(&self) -> bool {
        false
    }

    fn serve(&self, _cfg: ServeConfig) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send>> {
        Box::pin(async { Err(io::Error::other("repod's server is not in this build yet")) })
    }
}
