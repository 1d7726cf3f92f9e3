use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("join")]
#[reply(bool)]
pub struct Join {
    pub rid: u32,
}

// Allowed: a plain message, or a request that only travels with bincode.
#[derive(Serialize, Deserialize, repod::Message)]
#[action("room")]
pub struct Room {
    pub rid: u32,
}

#[derive(Serialize, Deserialize, repod::Message)]
#[action("join_fast")]
#[reply(bool)]
#[repod(codec = "bincode")]
pub struct JoinFast {
    pub rid: u32,
}

#[derive(Serialize, Deserialize, repod::Message)]
#[action("twice")]
#[reply(bool)]
#[reply(u8)]
pub struct Twice;

#[derive(Serialize, Deserialize, repod::Message)]
#[action("bare")]
#[reply]
pub struct Bare;

fn main() {}
