use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub enum Chat {
    Text(String),
}

fn main() {}
