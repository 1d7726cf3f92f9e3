//! The tag protocol and rules, shared by `tag-server` and `tag-bots`.
//!
//! The server is authoritative: clients only send their wanted direction ([`Input`]); the
//! server moves everyone at a fixed tick, decides who is tagged, and broadcasts the whole
//! (small) [`State`] every tick.

use serde::{Deserialize, Serialize};

/// The arena is a square from 0 to `ARENA` on both axes.
pub const ARENA: f32 = 100.0;
/// Speed of a runner, in units per second.
pub const SPEED: f32 = 20.0;
/// Speed of the player who is "it", a little faster so the game moves.
pub const IT_SPEED: f32 = 24.0;
/// Players closer than this are touching.
pub const TAG_RADIUS: f32 = 2.0;
/// Ticks per second of the server's simulation.
pub const TICK_RATE: u32 = 20;
/// After a tag, the new "it" cannot tag back for this many ticks.
pub const TAG_COOLDOWN_TICKS: u64 = 20;

/// Server → new client: your player id.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("welcome")]
pub struct Welcome {
    /// The id of the receiving player in every [`State`].
    pub id: u64,
}

/// Client → server: the direction I want to run in (normalized by the server).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("input")]
pub struct Input {
    /// Horizontal component.
    pub dx: f32,
    /// Vertical component.
    pub dy: f32,
}

/// One player, as broadcast every tick.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlayerState {
    /// Player id (see [`Welcome`]).
    pub id: u64,
    /// Position.
    pub x: f32,
    /// Position.
    pub y: f32,
    /// How many times this player tagged someone.
    pub tags: u32,
}

/// Server → everyone, every tick: the whole game.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("state")]
pub struct State {
    /// Simulation tick number.
    pub tick: u64,
    /// Who is "it" (0 when nobody plays).
    pub it: u64,
    /// Every player.
    pub players: Vec<PlayerState>,
}

/// Scales `(dx, dy)` to length at most 1; non-finite input becomes standing still.
pub fn normalize(dx: f32, dy: f32) -> (f32, f32) {
    if !dx.is_finite() || !dy.is_finite() {
        return (0.0, 0.0);
    }
    let len = (dx * dx + dy * dy).sqrt();
    if len > 1.0 {
        (dx / len, dy / len)
    } else {
        (dx, dy)
    }
}

/// Moves a position by a direction for one tick, staying inside the arena.
pub fn step(x: f32, y: f32, dir: (f32, f32), speed: f32) -> (f32, f32) {
    let dt = 1.0 / TICK_RATE as f32;
    (
        (x + dir.0 * speed * dt).clamp(0.0, ARENA),
        (y + dir.1 * speed * dt).clamp(0.0, ARENA),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_bounds_the_direction() {
        assert_eq!(normalize(3.0, 4.0), (0.6, 0.8));
        assert_eq!(normalize(0.5, 0.0), (0.5, 0.0));
        assert_eq!(normalize(f32::NAN, 1.0), (0.0, 0.0));
    }

    #[test]
    fn step_stays_in_the_arena() {
        assert_eq!(step(0.0, 0.0, (-1.0, -1.0), SPEED), (0.0, 0.0));
        assert_eq!(step(ARENA, 50.0, (1.0, 0.0), SPEED), (ARENA, 50.0));
        assert_eq!(step(10.0, 10.0, (1.0, 0.0), SPEED), (11.0, 10.0));
    }
}
