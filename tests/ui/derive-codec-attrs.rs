// Serde options one codec cannot honour, found where the derive sees them.
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("status")]
pub struct Status {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub hp: u32,
}

#[derive(Serialize, Deserialize)]
pub struct Position {
    pub x: f32,
    pub y: f32,
}

#[derive(Serialize, Deserialize, repod::Message)]
#[action("move")]
pub struct Move {
    #[serde(flatten)]
    pub to: Position,
}

#[derive(Serialize, Deserialize, repod::Message)]
#[action("hello")]
#[serde(tag = "type")]
pub struct Hello {
    pub name: String,
}

#[derive(Serialize, Deserialize, repod::Message)]
#[action("strict")]
#[serde(deny_unknown_fields)]
pub struct Strict {
    pub name: String,
}

// Declared for one codec: only the other codec's problems are reported, here none.
#[derive(Serialize, Deserialize, repod::Message)]
#[action("note")]
#[repod(codec = "msgpack")]
pub struct Note {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Serialize, Deserialize, repod::Message)]
#[action("json")]
#[repod(codec = "json")]
pub struct Json;

fn main() {}
