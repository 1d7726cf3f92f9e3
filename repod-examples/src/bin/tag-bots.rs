//! Headless bots for the tag game, many in one process.
//!
//! ```text
//! cargo run --release -p repod-examples --bin tag-bots -- --bots 100 --seconds 10
//! ```
//!
//! Every bot is an async client on one tokio runtime. "It" chases the nearest player; the others
//! run from "it". At the end the tool prints how many states the bots received and how many
//! tags happened.

use std::time::Duration;

use clap::Parser;
use repod::client::AsyncClient;
use repod::{ClientContext, Disconnected};
use repod_examples::tag::{Input, State, Welcome};
use repod_examples::NetArgs;

/// Bots for the tag game of repod.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    net: NetArgs,
    /// How many bots to run.
    #[arg(long, default_value_t = 10)]
    bots: u32,
    /// How long to play, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

#[derive(Default)]
struct Bot {
    id: u64,
    states: u64,
    last_it: u64,
    it_changes: u64,
    disconnected: Option<String>,
}

#[repod::listener]
impl Bot {
    #[action]
    fn welcome(&mut self, welcome: Welcome) {
        self.id = welcome.id;
    }

    #[action]
    fn state(&mut self, ctx: &mut ClientContext<'_>, state: State) {
        self.states += 1;
        if state.it != self.last_it {
            self.it_changes += 1;
            self.last_it = state.it;
        }
        let Some(me) = state.players.iter().find(|p| p.id == self.id) else {
            return;
        };
        let target = if state.it == self.id {
            // Chase the nearest player.
            state
                .players
                .iter()
                .filter(|p| p.id != self.id)
                .min_by(|a, b| {
                    let da = (a.x - me.x).hypot(a.y - me.y);
                    let db = (b.x - me.x).hypot(b.y - me.y);
                    da.total_cmp(&db)
                })
                .map(|p| (p.x - me.x, p.y - me.y))
        } else {
            // Run from "it", drifting sideways so runners do not all pile into a corner.
            state.players.iter().find(|p| p.id == state.it).map(|it| {
                (
                    me.x - it.x - (it.y - me.y) * 0.3,
                    me.y - it.y + (it.x - me.x) * 0.3,
                )
            })
        };
        let (dx, dy) = target.unwrap_or((0.0, 0.0));
        let _ = ctx.send(&Input { dx, dy });
    }

    #[action]
    fn disconnected(&mut self, d: Disconnected) {
        self.disconnected = Some(d.reason);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    repod_examples::init_tracing();
    let args = Args::parse();
    let play = Duration::from_secs_f64(args.seconds);
    let mut tasks = Vec::new();
    for _ in 0..args.bots {
        let client = AsyncClient::builder()
            .codec(args.net.codec)
            .connect_async(args.net.addr.clone())
            .await?;
        tasks.push(tokio::spawn(async move {
            let mut client = client;
            let mut bot = Bot::default();
            let _ = tokio::time::timeout(play, client.run(&mut bot)).await;
            // Close through a sender, so `run` still delivers what is left, `disconnected` last.
            client.sender().close();
            let _ = tokio::time::timeout(Duration::from_secs(2), client.run(&mut bot)).await;
            bot
        }));
    }
    let mut states = 0;
    let mut it_changes = 0;
    let mut dropped = 0;
    for task in tasks {
        let bot = task.await?;
        states += bot.states;
        it_changes = it_changes.max(bot.it_changes);
        if bot
            .disconnected
            .as_deref()
            .is_some_and(|r| r != "closed by client")
        {
            dropped += 1;
        }
    }
    println!(
        "{} bots played {:.1} s: {} states received ({:.1} per bot per second), \"it\" changed {} times, {} bots dropped by the server",
        args.bots,
        args.seconds,
        states,
        states as f64 / f64::from(args.bots.max(1)) / args.seconds,
        it_changes,
        dropped
    );
    Ok(())
}
