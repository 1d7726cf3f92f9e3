// Methods named like a channel hook they are not: never called, so each is an error.
use repod::{CloseReason, Context, RawMessage};

struct Player;

#[repod::channel]
impl Player {
    // The server builder's hook is `on_disconnect`; a channel's is `on_close`.
    fn on_disconnect(&mut self, _ctx: &mut Context<'_, Self>, _reason: &CloseReason) {}

    #[allow(non_snake_case)]
    fn onConnect(&mut self) {}

    fn network_recieved(&mut self, _msg: RawMessage) {}

    fn on_connected(&mut self, _ctx: &mut Context<'_, Self>) {}
}

fn main() {}
