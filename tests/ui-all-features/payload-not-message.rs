// A payload type with no derive at all: one error, the `Message` one (not also one for each
// serde trait the decoding needs).
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
