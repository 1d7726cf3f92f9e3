// A listener has no hooks: the client's events are actions.
use repod::ClientContext;

struct Game;

#[repod::listener]
impl Game {
    fn on_connect(&mut self, _ctx: &mut ClientContext<'_>) {}

    fn disconnected(&mut self) {}
}

fn main() {}
