use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub struct Chat {
    pub text: String,
}

struct Player;

#[repod::channel]
impl Player {
    #[action("a")]
    fn two_payloads(&mut self, _msg: Chat, _other: Chat) {}

    #[action("b")]
    fn context_after_payload(&mut self, _msg: Chat, _ctx: &mut repod::Context<'_, Self>) {}

    #[action("c")]
    fn too_many(&mut self, _ctx: &mut repod::Context<'_, Self>, _msg: Chat, _extra: u32) {}

    #[action("d")]
    fn borrowed_payload(&mut self, _msg: &Chat) {}

    #[action("e")]
    fn two_contexts(&mut self, _a: &mut repod::Context<'_, Self>, _b: &mut repod::Context<'_, Self>) {}
}

fn main() {}
