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
    async fn chat(&mut self, _msg: Chat) {}

    #[action("generic")]
    fn generic<M: repod::Message>(&mut self, _msg: M) {}

    #[action("impl_trait")]
    fn impl_trait(&mut self, _msg: impl repod::Message) {}
}

fn main() {}
