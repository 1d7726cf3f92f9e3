// A message that cannot be received: the one error names `Deserialize`.
use serde::Serialize;

#[derive(Serialize, repod::Message)]
#[action("chat")]
pub struct Chat {
    pub text: String,
}

struct Game;

#[repod::listener]
impl Game {
    #[action]
    fn chat(&mut self, _msg: Chat) {}
}

fn main() {}
