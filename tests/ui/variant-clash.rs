struct Player;

#[repod::channel]
impl Player {
    #[action("setName")]
    fn set_name(&mut self) {}

    #[action("set_name")]
    fn set_name_snake(&mut self) {}
}

fn main() {}
