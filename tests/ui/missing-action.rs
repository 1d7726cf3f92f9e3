// A method shaped like a handler, taking a message, but without `#[action]`: it would never
// be called.
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub struct Chat {
    pub text: String,
}

struct Player;

#[repod::channel]
impl Player {
    fn chat(&mut self, ctx: &mut repod::Context<'_, Self>, msg: Chat) {
        ctx.send_to_all(&msg);
    }
}

fn main() {}
