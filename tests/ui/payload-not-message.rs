#[derive(serde::Deserialize)]
pub struct Plain {
    pub text: String,
}

struct Player;

#[repod::channel]
impl Player {
    #[action]
    fn plain(&mut self, _msg: Plain) {}
}

fn main() {}
