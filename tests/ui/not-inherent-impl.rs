trait Game {
    fn chat(&mut self);
}

struct Player;

#[repod::channel]
impl Game for Player {
    #[action("chat")]
    fn chat(&mut self) {}
}

#[repod::channel]
fn chat(_player: &mut Player) {}

#[repod::listener]
struct Client;

fn main() {}
