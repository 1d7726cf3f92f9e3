//! The messages every implementation exchanges, identical in shape for all of them.
//!
//! | action      | direction          | body                                         |
//! |-------------|--------------------|----------------------------------------------|
//! | `connected` | server → client    | none: the greeting sent on accept            |
//! | `ping`      | client → server    | `{seq: u64}`                                 |
//! | `pong`      | server → client    | `{seq: u64, moves: u64}` (moves seen so far) |
//! | `move`      | client → server    | `{x: f32, y: f32, seq: u64}`                 |
//! | `move`      | server → client    | the same, echoed (echo mode only)            |
//! | `tick`      | client → server    | `{seq: u64}`: broadcast one `state`          |
//! | `state`     | server → others    | `{tick: u64, entities: [10 × Entity]}`       |
//! | `join_room` | client → server    | `{room: u32}` (rooms workload)               |
//! | `room_state`| server → a room    | `{sent_ns: u64, room: u32, tick: u64, pad: str}`, S bytes in all |

use repod_core::Message;
use serde::{Deserialize, Serialize};

/// A round-trip probe; also asks the server how many `move`s it has handled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ping {
    pub seq: u64,
}

impl Message for Ping {
    const ACTION: &'static str = "ping";
}

/// The answer to [`Ping`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    pub seq: u64,
    /// `move` messages the server handled on this connection before the ping.
    pub moves: u64,
}

impl Message for Pong {
    const ACTION: &'static str = "pong";
}

/// A player's move: the one-way and echo workloads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Move {
    pub x: f32,
    pub y: f32,
    pub seq: u64,
}

impl Message for Move {
    const ACTION: &'static str = "move";
}

/// Asks the server to broadcast one [`State`] to every other connection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    pub seq: u64,
}

impl Message for Tick {
    const ACTION: &'static str = "tick";
}

/// One entity of a [`State`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub id: u32,
    pub x: f32,
    pub y: f32,
}

/// The broadcast of the fan-out workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub tick: u64,
    pub entities: Vec<Entity>,
}

impl Message for State {
    const ACTION: &'static str = "state";
}

impl State {
    /// The state broadcast for `tick`: ten entities.
    pub fn for_tick(tick: u64) -> State {
        State {
            tick,
            entities: (0..10)
                .map(|i| Entity {
                    id: i,
                    x: i as f32 * 1.5 + tick as f32,
                    y: i as f32 * -0.5,
                })
                .collect(),
        }
    }
}

/// Rooms workload: puts the sender in one room.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JoinRoom {
    pub room: u32,
}

impl Message for JoinRoom {
    const ACTION: &'static str = "join_room";
}

/// Rooms workload: what the server sends each room every tick. `sent_ns` comes first, so a
/// client reads it without decoding the rest; `pad` brings the payload to the configured size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomState<'a> {
    /// `CLOCK_MONOTONIC` when the server sent it, in nanoseconds.
    pub sent_ns: u64,
    pub room: u32,
    pub tick: u64,
    pub pad: &'a str,
}

impl Message for RoomState<'_> {
    const ACTION: &'static str = "room_state";
}

/// The part of a [`RoomState`] a client reads (MessagePack skips the other keys).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct RoomHead {
    pub sent_ns: u64,
    pub room: u32,
}
