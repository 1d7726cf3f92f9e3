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
    fn chat(&mut self, msg: &Chat) {
        let _ = &msg.text;
    }
}

fn main() {}
