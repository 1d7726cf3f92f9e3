use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("command")]
pub struct Command {
    pub action: String,
}

fn main() {}
