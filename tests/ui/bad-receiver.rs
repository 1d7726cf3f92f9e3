use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub struct Chat {
    pub text: String,
}

struct Player;

#[repod::channel]
impl Player {
    #[action("chat")]
    fn shared(&self, _msg: Chat) {}

    #[action("leave")]
    fn by_value(self) {}

    #[action("hello")]
    fn no_receiver(_msg: Chat) {}
}

fn main() {}
