// `#[repod::channel]` forgotten, with `#[action]` written without an import (as inside a
// channel). The macro never runs: rustc reports the unknown attribute itself, then that
// `Player` is not a channel, whose note names the fix. Two errors, the most repod can do here.
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub struct Chat {
    pub text: String,
}

struct Player;

impl Player {
    #[action]
    fn chat(&mut self, _ctx: &mut repod::Context<'_, Self>, _msg: Chat) {}
}

fn main() {}
