use repod::{ChannelError, ClientContext, CloseReason, Context};

struct Player;

#[repod::channel]
impl Player {
    fn on_connect(&self, _ctx: &mut Context<'_, Self>) {}

    fn on_close(&mut self, _reason: CloseReason) {}

    fn on_error(&mut self, _ctx: &mut ClientContext<'_>, _error: &ChannelError) {}
}

fn main() {}
