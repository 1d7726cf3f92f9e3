// The same in a listener, without a context.
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub struct Chat {
    pub text: String,
}

#[derive(Default)]
struct Game {
    lines: Vec<String>,
}

#[repod::listener]
impl Game {
    fn chat(&mut self, msg: Chat) {
        self.lines.push(msg.text);
    }
}

fn main() {}
