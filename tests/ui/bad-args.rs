#[derive(Default)]
struct Lobby;

struct Player;

#[repod::channel(state = Lobby, state = Lobby, mode = fast)]
impl Player {}

struct Client;

#[repod::listener(state = Lobby)]
impl Client {}

fn main() {}
