use repod::{ClientContext, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, repod::Message)]
#[action("find_match")]
#[reply(u32)]
pub struct FindMatch;

#[derive(Serialize, Deserialize, repod::Message)]
#[action("leave")]
#[reply(bool)]
pub struct Leave;

#[derive(Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub struct Chat {
    pub text: String,
}

#[derive(Default)]
struct Player {
    waiting: Vec<ReplyTo<FindMatch>>,
}

#[repod::channel]
impl Player {
    // The token of another request.
    #[action]
    fn find_match(&mut self, _req: FindMatch, reply: ReplyTo<Leave>) {
        drop(reply);
    }

    // A plain message has no reply to give.
    #[action]
    fn chat(&mut self, _msg: Chat, reply: ReplyTo<Chat>) {
        drop(reply);
    }
}

#[derive(Default)]
struct Misplaced;

#[repod::channel]
impl Misplaced {
    #[action("ready")]
    fn ready(&mut self, reply: ReplyTo<FindMatch>) {
        drop(reply);
    }

    #[action]
    fn leave(&mut self, reply: ReplyTo<Leave>, _req: Leave) {
        drop(reply);
    }
}

#[derive(Default)]
struct Game;

#[repod::listener]
impl Game {
    #[action]
    fn find_match(&mut self, _ctx: &mut ClientContext<'_>, _req: FindMatch, reply: ReplyTo<FindMatch>) {
        drop(reply);
    }
}

fn main() {}
