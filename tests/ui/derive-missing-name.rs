use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
pub struct JoinTeam {
    pub team: u8,
}

#[derive(Serialize, Deserialize, repod::Message)]
#[action]
pub struct Leave;

#[derive(Serialize, Deserialize, repod::Message)]
#[action("two words")]
pub struct Spaced;

fn main() {
    // No cascade: the impl is still emitted.
    let _ = <JoinTeam as repod::Message>::ACTION;
}
