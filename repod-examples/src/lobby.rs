//! The lobby protocol and rules, shared by `lobby-server` and `lobby-bots`.
//!
//! Players wait in a lobby until [`MATCH_SIZE`] of them are there; the server then moves them
//! into a room of their own for a short round of coin grabbing: every tick it moves the
//! players of each room, awards the coin to whoever touches it, and sends that room (and only
//! that room) its [`MatchState`]. After [`ROUND_TICKS`] the round is over and its players go
//! back to the lobby, to be matched again.
//!
//! | direction | action | fields |
//! |---|---|---|
//! | server → new client | `welcome` | `id` |
//! | server → a new match's players | `match_start` | `match_id`, `players` |
//! | client → server | `input` | `dx`, `dy` (see [`crate::tag::Input`]) |
//! | server → a match's players, every tick | `match_state` | `match_id`, `tick`, `coin`, `players` |
//! | server → a match's players, at the end | `match_over` | `match_id`, `scores` |
//! | client → server, a request | `list_matches` | none; answered with a [`MatchList`] |

use serde::{Deserialize, Serialize};

pub use crate::tag::{normalize, step, Input, Welcome, ARENA, SPEED, TICK_RATE};

/// Players per match.
pub const MATCH_SIZE: usize = 4;
/// Ticks per round: 2 seconds at [`TICK_RATE`].
pub const ROUND_TICKS: u64 = 2 * TICK_RATE as u64;
/// A player closer than this to the coin grabs it.
pub const GRAB_RADIUS: f32 = 4.0;

/// Server → the players of a new match: the round starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("match_start")]
pub struct MatchStart {
    /// The match, as in every [`MatchState`].
    pub match_id: u64,
    /// The players' ids.
    pub players: Vec<u64>,
}

/// One player in a [`MatchState`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlayerState {
    /// Player id (see [`Welcome`]).
    pub id: u64,
    /// Position.
    pub x: f32,
    /// Position.
    pub y: f32,
    /// Coins grabbed this round.
    pub score: u32,
}

/// Server → the players of one match, every tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("match_state")]
pub struct MatchState {
    /// The match.
    pub match_id: u64,
    /// Ticks since the round started.
    pub tick: u64,
    /// Where the coin is.
    pub coin: (f32, f32),
    /// The players still in the match.
    pub players: Vec<PlayerState>,
}

/// Server → the players of a match: the round is over; they are back in the lobby.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("match_over")]
pub struct MatchOver {
    /// The match.
    pub match_id: u64,
    /// `(player id, coins)` of every player still there, best first.
    pub scores: Vec<(u64, u32)>,
}

/// Client → server, a request: which matches are under way? Answered with a [`MatchList`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("list_matches")]
#[reply(MatchList)]
pub struct ListMatches;

/// The answer to [`ListMatches`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchList {
    /// Every match under way: `(match id, ticks played, players)`.
    pub matches: Vec<(u64, u64, u32)>,
    /// Players waiting in the lobby for a match.
    pub waiting: u32,
}

/// Where the `n`-th coin of a match appears: spread over the arena, deterministically.
pub fn coin_position(match_id: u64, n: u64) -> (f32, f32) {
    let h = (match_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .rotate_left(29);
    let x = (h % 1000) as f32 / 1000.0 * ARENA;
    let y = ((h / 1000) % 1000) as f32 / 1000.0 * ARENA;
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coins_stay_in_the_arena_and_move() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..50 {
            let (x, y) = coin_position(7, n);
            assert!((0.0..=ARENA).contains(&x) && (0.0..=ARENA).contains(&y));
            seen.insert(((x * 10.0) as i32, (y * 10.0) as i32));
        }
        assert!(seen.len() > 40);
    }
}
