use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("hello")]
pub struct Hello;

// Another type bound to the same action name.
#[derive(Serialize, Deserialize, repod::Message)]
#[action("hello")]
pub struct Greeting;

struct Player;

#[repod::channel]
impl Player {
    #[action]
    fn hello(&mut self, _msg: Hello) {}

    #[action]
    fn greeting(&mut self, _msg: Greeting) {}
}

fn main() {}
