//! Matchmaking on groups: players wait in the `lobby` group, the tick moves every
//! [`MATCH_SIZE`] of them into a room (a group) of their own, plays a short round in each room
//! and sends each room only its own state, then returns the players to the lobby. A client may
//! ask which matches are under way with the `list_matches` request, answered by its handler's
//! return value.
//!
//! ```text
//! cargo run --release -p repod-examples --bin lobby-server
//! cargo run --release -p repod-examples --bin lobby-bots -- --bots 40
//! ```
//!
//! Built with the `metrics` feature, it serves the server's metrics to Prometheus:
//!
//! ```text
//! cargo run --release -p repod-examples --features metrics --bin lobby-server -- \
//!     --metrics-addr 127.0.0.1:9000
//! curl http://127.0.0.1:9000/metrics
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use clap::Parser;
use repod::server::{Server, ServerContext};
use repod::{ChannelId, Context};
use repod_examples::lobby::{
    coin_position, normalize, step, Input, ListMatches, MatchList, MatchOver, MatchStart,
    MatchState, PlayerState, Welcome, ARENA, GRAB_RADIUS, MATCH_SIZE, ROUND_TICKS, SPEED,
    TICK_RATE,
};
use repod_examples::NetArgs;

/// The group of the players waiting for a match.
const LOBBY: &str = "lobby";

/// Every match under way, by id.
#[derive(Default)]
struct Matches {
    next_id: u64,
    running: BTreeMap<u64, Match>,
}

/// One match: its group and its round.
struct Match {
    room: String,
    tick: u64,
    coins: u64,
    coin: (f32, f32),
}

/// One player, in the lobby or in a match.
#[derive(Default)]
struct Player {
    x: f32,
    y: f32,
    dir: (f32, f32),
    score: u32,
}

#[repod::channel(state = Matches)]
impl Player {
    fn on_connect(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.join(LOBBY);
        let id = ctx.id().get();
        let _ = ctx.send(&Welcome { id });
    }

    // No `on_close`: a player who leaves drops out of its group by itself, and a match whose
    // group empties ends at the next tick.

    #[action]
    fn input(&mut self, input: Input) {
        self.dir = normalize(input.dx, input.dy);
    }

    /// A request: the reply is what the handler returns.
    #[action]
    fn list_matches(&mut self, ctx: &mut Context<'_, Self>, _: ListMatches) -> MatchList {
        let matches = ctx
            .state()
            .running
            .iter()
            .map(|(&id, game)| (id, game.tick, ctx.group_len(&game.room) as u32))
            .collect();
        MatchList {
            matches,
            waiting: ctx.group_len(LOBBY) as u32,
        }
    }
}

fn tick(ctx: &mut ServerContext<'_, Player>) {
    start_matches(ctx);
    play(ctx);
}

/// Moves waiting players, `MATCH_SIZE` at a time, from the lobby into a new room.
fn start_matches(ctx: &mut ServerContext<'_, Player>) {
    while ctx.group_len(LOBBY) >= MATCH_SIZE {
        let players: Vec<ChannelId> = ctx.group_members(LOBBY).take(MATCH_SIZE).collect();
        let matches = ctx.state_mut();
        matches.next_id += 1;
        let match_id = matches.next_id;
        let room = format!("match-{match_id}");
        for (i, &id) in players.iter().enumerate() {
            ctx.remove_from_group(id, LOBBY);
            ctx.add_to_group(id, &room);
            if let Some(player) = ctx.channel_mut(id) {
                // One corner each.
                let corner = |bit: usize| {
                    if i & bit == 0 {
                        0.1 * ARENA
                    } else {
                        0.9 * ARENA
                    }
                };
                *player = Player {
                    x: corner(1),
                    y: corner(2),
                    ..Player::default()
                };
            }
        }
        let start = MatchStart {
            match_id,
            players: players.iter().map(|id| id.get()).collect(),
        };
        ctx.send_to_group(&room, &start);
        let game = Match {
            room,
            tick: 0,
            coins: 0,
            coin: coin_position(match_id, 0),
        };
        ctx.state_mut().running.insert(match_id, game);
    }
}

/// One tick of every match: each room gets its own state, encoded once for its members.
fn play(ctx: &mut ServerContext<'_, Player>) {
    let ids: Vec<u64> = ctx.state().running.keys().copied().collect();
    let mut members = Vec::with_capacity(MATCH_SIZE);
    for match_id in ids {
        let Some(mut game) = ctx.state_mut().running.remove(&match_id) else {
            continue;
        };
        members.clear();
        members.extend(ctx.group_members(&game.room));
        if members.is_empty() {
            continue; // everyone left: the match is over
        }
        game.tick += 1;
        let mut grabbed = false;
        for &id in &members {
            let Some(player) = ctx.channel_mut(id) else {
                continue;
            };
            (player.x, player.y) = step(player.x, player.y, player.dir, SPEED);
            let near = (player.x - game.coin.0).hypot(player.y - game.coin.1) < GRAB_RADIUS;
            if near && !grabbed {
                grabbed = true;
                player.score += 1;
            }
        }
        if grabbed {
            game.coins += 1;
            game.coin = coin_position(match_id, game.coins);
        }
        let players: Vec<PlayerState> = members
            .iter()
            .filter_map(|&id| {
                let p = ctx.channel(id)?;
                Some(PlayerState {
                    id: id.get(),
                    x: p.x,
                    y: p.y,
                    score: p.score,
                })
            })
            .collect();
        if game.tick < ROUND_TICKS {
            let state = MatchState {
                match_id,
                tick: game.tick,
                coin: game.coin,
                players,
            };
            ctx.send_to_group(&game.room, &state);
            ctx.state_mut().running.insert(match_id, game);
        } else {
            let mut scores: Vec<(u64, u32)> = players.iter().map(|p| (p.id, p.score)).collect();
            scores.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            ctx.send_to_group(&game.room, &MatchOver { match_id, scores });
            // Back to the lobby; the room's group disappears with its last member.
            for &id in &members {
                ctx.remove_from_group(id, &game.room);
                ctx.add_to_group(id, LOBBY);
            }
        }
    }
}

/// The lobby server of the repod examples: matchmaking into rooms.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address and codec.
    #[command(flatten)]
    net: NetArgs,
    /// Serve the server's metrics in Prometheus' text format at `http://ADDR/metrics`. Bind it
    /// to an address only your monitoring reaches.
    #[cfg(feature = "metrics")]
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    repod_examples::init_tracing();
    // The recorder goes in before the server starts: what is counted before it is lost.
    #[cfg(feature = "metrics")]
    if let Some(addr) = args.metrics_addr {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()?;
    }
    Server::<Player>::builder()
        .codec(args.net.codec)
        .tick(Duration::from_secs(1) / TICK_RATE, tick)
        .launch_with(args.net.addr.as_str(), |handle| {
            println!("listening on {}", handle.local_addr());
            #[cfg(feature = "metrics")]
            if let Some(addr) = args.metrics_addr {
                println!("metrics on http://{addr}/metrics");
            }
            let _ = std::io::stdout().flush();
        })?;
    println!("stopped");
    Ok(())
}
