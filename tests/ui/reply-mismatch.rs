use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("list_rooms")]
#[reply(RoomList)]
pub struct ListRooms {
    pub mode: String,
}

#[derive(Serialize, Deserialize)]
pub struct RoomList {
    pub rooms: Vec<String>,
}

#[derive(Default)]
struct Player;

#[repod::channel]
impl Player {
    #[action]
    fn list_rooms(&mut self, _req: ListRooms) -> Vec<String> {
        Vec::new()
    }
}

#[derive(Default)]
struct Other;

#[repod::channel]
impl Other {
    // A request's handler must answer it.
    #[action]
    fn list_rooms(&mut self, _req: ListRooms) {}
}

fn main() {}
