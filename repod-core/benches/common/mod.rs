//! The bench messages, shaped like the end-to-end bench's (repod-bench/src/proto.rs).

#![allow(dead_code)]

use repod_core::Message;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Move {
    pub x: f32,
    pub y: f32,
    pub seq: u64,
}

impl Message for Move {
    const ACTION: &'static str = "move";
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub id: u32,
    pub x: f32,
    pub y: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub tick: u64,
    pub entities: Vec<Entity>,
}

impl Message for State {
    const ACTION: &'static str = "state";
}

pub fn a_move() -> Move {
    Move {
        x: 12.5,
        y: -3.25,
        seq: 123_456,
    }
}

pub fn a_state() -> State {
    State {
        tick: 42,
        entities: (0..10)
            .map(|i| Entity {
                id: i,
                x: i as f32 * 1.5,
                y: i as f32 * -0.5,
            })
            .collect(),
    }
}
