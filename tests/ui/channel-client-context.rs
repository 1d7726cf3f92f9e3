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
    fn chat(&mut self, ctx: &mut repod::ClientContext<'_>, msg: Chat) {
        let _ = ctx.send(&msg);
    }
}

fn main() {}
