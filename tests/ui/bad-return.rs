struct Player;

#[repod::channel]
impl Player {
    #[action("count")]
    fn count(&mut self) -> u32 {
        1
    }
}

fn main() {}
