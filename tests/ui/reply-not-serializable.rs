use serde::{Deserialize, Serialize};

pub struct Secret {
    pub key: u64,
}

#[derive(Serialize, Deserialize, repod::Message)]
#[action("get_secret")]
#[reply(Secret)]
pub struct GetSecret;

fn main() {}
