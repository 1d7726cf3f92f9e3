use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub struct Chat {
    pub text: String,
}

struct Game;

#[repod::listener]
impl Game {
    #[action]
    fn chat(&mut self, ctx: &mut repod::Context<'_, Self>, msg: Chat) {
        ctx.send(&msg);
    }
}

fn main() {}
