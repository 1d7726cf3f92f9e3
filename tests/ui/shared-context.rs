use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub struct Chat {
    pub text: String,
}

struct Player;

#[repod::channel]
impl Player {
    #[action]
    fn chat(&mut self, ctx: &repod::Context<'_, Self>, _msg: Chat) {
        let _ = ctx.id();
    }
}

fn main() {}
