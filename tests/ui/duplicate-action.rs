use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub struct Chat {
    pub text: String,
}

#[derive(Serialize, Deserialize, repod::Message)]
#[action("move")]
pub struct Move {
    pub x: i32,
}

struct Player;

#[repod::channel]
impl Player {
    #[action("chat")]
    fn chat(&mut self, _msg: Chat) {}

    #[action("chat")]
    fn chat_again(&mut self, _msg: Chat) {}

    #[action]
    fn moved(&mut self, _msg: Move) {}

    // The same action, taken from the type twice.
    #[action]
    fn moved_again(&mut self, _msg: Move) {}
}

fn main() {}
