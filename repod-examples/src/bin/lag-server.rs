//! Answers every `ping` with a `pong`.
//!
//! ```text
//! cargo run --release -p repod-examples --bin lag-server
//! ```

use clap::Parser;
use repod::server::Server;
use repod::Context;
use repod_examples::lag::{Ping, Pong};
use repod_examples::NetArgs;

#[derive(Default)]
struct LagChannel;

#[repod::channel]
impl LagChannel {
    #[action]
    fn ping(&mut self, ctx: &mut Context<'_, Self>, ping: Ping) {
        ctx.send(&Pong { seq: ping.seq });
    }
}

/// The ping/pong server of the repod examples.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    net: NetArgs,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    repod_examples::init_tracing();
    let args = Args::parse();
    let builder = Server::<LagChannel>::builder().codec(args.net.codec);
    repod_examples::serve(builder, &args.net.addr).await?;
    Ok(())
}
