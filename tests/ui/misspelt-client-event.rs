// Names written for the client's built-in events are compared with them.
struct Game;

#[repod::listener]
impl Game {
    #[action("socket_connect")]
    fn socket_connect(&mut self) {}

    #[action("conected")]
    fn connected(&mut self) {}
}

fn main() {}
