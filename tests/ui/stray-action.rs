use repod::action;

struct Player;

impl Player {
    #[action("chat")]
    fn chat(&mut self) {}
}

fn main() {}
