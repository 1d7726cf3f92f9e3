struct Player;

#[repod::channel]
impl Player {
    #[action]
    fn ping(&mut self) {}

    #[action]
    fn pong(&mut self, _ctx: &mut repod::Context<'_, Self>) {}
}

fn main() {}
