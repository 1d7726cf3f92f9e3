// `#[repod::channel]` forgotten on the impl: the one error is on the `#[action]`, and the
// handler naming `Context<'_, Self>` is not reported again for `Player` not being a channel.
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub struct Chat {
    pub text: String,
}

struct Player;

impl Player {
    #[repod::action]
    fn chat(&mut self, ctx: &mut repod::Context<'_, Self>, msg: Chat) {
        ctx.send_to_all(&msg);
    }
}

fn main() {}
