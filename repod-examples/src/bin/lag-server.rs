//! Answers every `ping` with a `pong`. Resumes the sessions of clients that drop for 30
//! seconds (see `lag-client --resume`).
//!
//! ```text
//! cargo run --release -p repod-examples --bin lag-server
//! ```

use std::time::Duration;

use repod::server::Resume;
use repod::{Context, SendError};
use repod_examples::lag::{Ping, Pong};

#[derive(Default)]
struct LagChannel;

#[repod::channel]
impl LagChannel {
    #[action]
    fn ping(&mut self, ctx: &mut Context<'_, Self>, ping: Ping) -> Result<(), SendError> {
        ctx.send(&Pong { seq: ping.seq })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    repod_examples::server_main::<LagChannel>(
        "The ping/pong server of the repod examples.",
        |builder| builder.resume(Resume::new(Duration::from_secs(30))),
    )
}
