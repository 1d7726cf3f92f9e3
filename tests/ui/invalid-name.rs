struct Player;

#[repod::channel]
impl Player {
    #[action("")]
    fn empty(&mut self) {}

    #[action("two words")]
    fn spaced(&mut self) {}

    #[action("bell\x07")]
    fn control(&mut self) {}

    #[action("42")]
    fn digits(&mut self) {}

    #[action(chat)]
    fn not_a_string(&mut self) {}

    #[action = "chat"]
    fn name_value(&mut self) {}
}

fn main() {}
