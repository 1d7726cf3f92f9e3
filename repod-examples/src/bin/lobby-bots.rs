//! Headless bots for the lobby example: they wait to be matched, chase the coin, and go back
//! to the lobby after each round.
//!
//! ```text
//! cargo run --release -p repod-examples --bin lobby-bots -- --bots 40 --seconds 10
//! ```
//!
//! Every bot is an async client on one tokio runtime. When its time is up, each bot asks the
//! server which matches are under way, with the `list_matches` request. At the end the tool
//! prints how many matches the bots finished, how many states they received, how many messages
//! reached a bot from a match it was not in (always 0: rooms are isolated), and how many bots
//! got the match list.

use std::collections::BTreeSet;
use std::time::Duration;

use clap::Parser;
use repod::client::AsyncClient;
use repod::{ClientContext, Disconnected};
use repod_examples::lobby::{Input, ListMatches, MatchOver, MatchStart, MatchState, Welcome};
use repod_examples::NetArgs;

/// Bots for the lobby example of repod.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    net: NetArgs,
    /// How many bots to run.
    #[arg(long, default_value_t = 8)]
    bots: u32,
    /// How long to play, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

#[derive(Default)]
struct Bot {
    id: u64,
    current: Option<u64>,
    states: u64,
    /// Messages about a match this bot was not in.
    foreign: u64,
    finished: Vec<u64>,
    wins: u64,
    disconnected: Option<String>,
    /// How many matches the server listed as under way, when asked.
    listed: Option<usize>,
}

#[repod::listener]
impl Bot {
    #[action]
    fn welcome(&mut self, welcome: Welcome) {
        self.id = welcome.id;
    }

    #[action]
    fn match_start(&mut self, start: MatchStart) {
        if start.players.contains(&self.id) {
            self.current = Some(start.match_id);
        } else {
            self.foreign += 1;
        }
    }

    #[action]
    fn match_state(&mut self, ctx: &mut ClientContext<'_>, state: MatchState) {
        if self.current != Some(state.match_id) {
            self.foreign += 1;
            return;
        }
        self.states += 1;
        if let Some(me) = state.players.iter().find(|p| p.id == self.id) {
            let _ = ctx.send(&Input {
                dx: state.coin.0 - me.x,
                dy: state.coin.1 - me.y,
            });
        }
    }

    #[action]
    fn match_over(&mut self, over: MatchOver) {
        if self.current != Some(over.match_id) {
            self.foreign += 1;
            return;
        }
        self.current = None;
        self.finished.push(over.match_id);
        if over
            .scores
            .first()
            .is_some_and(|&(id, coins)| id == self.id && coins > 0)
        {
            self.wins += 1;
        }
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
            // A typed request: the reply is a `MatchList`, or an error (with a deadline).
            let listing = client.request_with_timeout(&ListMatches, Duration::from_secs(5));
            if let Ok(list) = listing.await {
                bot.listed = Some(list.matches.len());
            }
            client.sender().close();
            let _ = tokio::time::timeout(Duration::from_secs(2), client.run(&mut bot)).await;
            bot
        }));
    }
    let mut matches = BTreeSet::new();
    let (mut states, mut foreign, mut wins, mut dropped, mut idle) = (0, 0, 0, 0, 0);
    let (mut listed, mut most_listed) = (0, 0);
    for task in tasks {
        let bot = task.await?;
        states += bot.states;
        foreign += bot.foreign;
        wins += bot.wins;
        if bot.finished.is_empty() {
            idle += 1;
        }
        matches.extend(bot.finished);
        if let Some(n) = bot.listed {
            listed += 1;
            most_listed = most_listed.max(n);
        }
        if bot
            .disconnected
            .as_deref()
            .is_some_and(|r| r != "closed by client")
        {
            dropped += 1;
        }
    }
    println!(
        "{} bots played {:.1} s: {} matches finished ({} won with coins), {} states received, {} messages from other matches, {} bots finished no match, {} bots dropped by the server, {}/{} bots got the match list (at most {} matches under way)",
        args.bots,
        args.seconds,
        matches.len(),
        wins,
        states,
        foreign,
        idle,
        dropped,
        listed,
        args.bots,
        most_listed
    );
    Ok(())
}
