use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("move")]
pub struct Move {
    pub x: i32,
}

struct Player;

#[repod::channel]
impl Player {
    #[action("chat")]
    fn chat(&mut self, _msg: Move) {}
}

fn main() {}
