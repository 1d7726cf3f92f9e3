//! An authoritative game of tag: the server simulates at a fixed tick and broadcasts the state.
//!
//! ```text
//! cargo run --release -p repod-examples --bin tag-server
//! cargo run --release -p repod-examples --bin tag-bots -- --bots 50
//! ```

use std::time::Duration;

use repod::server::ServerContext;
use repod::{ChannelId, CloseReason, Context};
use repod_examples::tag::{
    normalize, step, Input, PlayerState, State, Welcome, ARENA, IT_SPEED, SPEED,
    TAG_COOLDOWN_TICKS, TAG_RADIUS, TICK_RATE,
};

/// The game, shared by every channel.
#[derive(Default)]
struct Game {
    tick: u64,
    it: Option<ChannelId>,
    /// The tick of the last tag, for the cooldown.
    last_tag: u64,
}

/// One player.
#[derive(Default)]
struct Player {
    x: f32,
    y: f32,
    dir: (f32, f32),
    tags: u32,
}

#[repod::channel(state = Game)]
impl Player {
    fn on_connect(&mut self, ctx: &mut Context<'_, Self>) {
        // Spread players over the arena, deterministically.
        let id = ctx.id().get();
        self.x = (id * 37 % 100) as f32 / 100.0 * ARENA;
        self.y = (id * 61 % 100) as f32 / 100.0 * ARENA;
        let me = ctx.id();
        ctx.state_mut().it.get_or_insert(me);
        let _ = ctx.send(&Welcome { id });
    }

    fn on_close(&mut self, ctx: &mut Context<'_, Self>, _reason: &CloseReason) {
        if ctx.state().it == Some(ctx.id()) {
            // Hand "it" to whoever has been here longest.
            let next = ctx.channels().map(|peer| peer.id).min();
            ctx.state_mut().it = next;
        }
    }

    #[action]
    fn input(&mut self, input: Input) {
        self.dir = normalize(input.dx, input.dy);
    }
}

/// One simulation step: move everyone, resolve a tag, broadcast the state.
fn tick(ctx: &mut ServerContext<'_, Player>) {
    let (it, tick, last_tag) = {
        let game = ctx.state_mut();
        game.tick += 1;
        (game.it, game.tick, game.last_tag)
    };
    let mut it_pos = None;
    for (peer, player) in ctx.channels_mut() {
        let speed = if Some(peer.id) == it { IT_SPEED } else { SPEED };
        (player.x, player.y) = step(player.x, player.y, player.dir, speed);
        if Some(peer.id) == it {
            it_pos = Some((player.x, player.y));
        }
    }
    let mut tagged = None;
    if let (Some(it), Some((ix, iy))) = (it, it_pos) {
        if tick >= last_tag + TAG_COOLDOWN_TICKS {
            tagged = ctx
                .channels_mut()
                .filter(|(peer, _)| peer.id != it)
                .find(|(_, p)| (p.x - ix).hypot(p.y - iy) < TAG_RADIUS)
                .map(|(peer, _)| peer.id);
            if tagged.is_some() {
                if let Some(tagger) = ctx.channel_mut(it) {
                    tagger.tags += 1;
                }
            }
        }
    }
    if let Some(new_it) = tagged {
        let game = ctx.state_mut();
        game.it = Some(new_it);
        game.last_tag = tick;
    }
    let players = ctx
        .channels_mut()
        .map(|(peer, p)| PlayerState {
            id: peer.id.get(),
            x: p.x,
            y: p.y,
            tags: p.tags,
        })
        .collect();
    let it = ctx.state().it.map_or(0, ChannelId::get);
    ctx.send_to_all(&State { tick, it, players });
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    repod_examples::server_main::<Player>("The tag server of the repod examples.", |builder| {
        builder.tick(Duration::from_secs(1) / TICK_RATE, tick)
    })
}
