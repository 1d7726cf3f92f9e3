// Python repod binds `Network_chat`; repod binds `#[action]`.
use repod::Context;

struct Player;

#[repod::channel]
impl Player {
    #[allow(non_snake_case)]
    fn Network_chat(&mut self, _ctx: &mut Context<'_, Self>) {}
}

fn main() {}
