//! Code the macros accept although it resembles a mistake they reject: helpers beside
//! handlers, messages declared for one codec, and an imported `repod::action`.

use repod::{Channel, Codec, CodecKind, Context, Listener, Message};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub struct Chat {
    pub text: String,
}

#[derive(Default)]
struct Player {
    points: u32,
    lines: Vec<String>,
}

#[repod::channel]
impl Player {
    #[action]
    fn chat(&mut self, ctx: &mut Context<'_, Self>, msg: Chat) {
        self.relay(ctx, &msg);
        self.score(ctx, 1);
        let _ = self.remember(msg);
        self.on_tick(ctx);
    }

    // Helpers: a borrowed message, an owned value that is not a message, a return value,
    // and a name that is no hook's.
    fn relay(&mut self, ctx: &mut Context<'_, Self>, msg: &Chat) {
        ctx.send_to_all(msg);
    }

    fn score(&mut self, _ctx: &mut Context<'_, Self>, points: u32) {
        self.points += points;
    }

    fn remember(&mut self, msg: Chat) -> bool {
        self.lines.push(msg.text);
        true
    }

    fn on_tick(&mut self, _ctx: &mut Context<'_, Self>) {}

    // Not `&mut self`: never a handler or a hook, whatever its name.
    #[allow(dead_code)]
    fn on_disconnect(&self) -> bool {
        self.lines.is_empty()
    }
}

// A helper taking a message by value, in its own impl block.
impl Player {
    #[allow(dead_code)]
    fn forward(&mut self, ctx: &mut Context<'_, Self>, msg: Chat) {
        ctx.send_to_all(&msg);
    }
}

#[derive(Default)]
struct Game {
    lines: Vec<String>,
}

#[repod::listener]
impl Game {
    #[action]
    fn chat(&mut self, msg: Chat) {
        self.push(msg.text);
    }

    fn push(&mut self, line: String) {
        self.lines.push(line);
    }

    #[allow(dead_code)]
    fn connected(&self) -> bool {
        !self.lines.is_empty()
    }
}

#[test]
fn helpers_are_not_handlers() {
    assert_eq!(<Player as Channel>::ACTIONS, ["chat"]);
    assert_eq!(<Game as Listener>::ACTIONS, ["chat"]);
    let mut game = Game::default();
    game.push("x".into());
    assert!(game.connected());
}

/// Left out when `None`: fine with MessagePack, which names fields, and declared so.
#[derive(Debug, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("status")]
#[repod(codec = "msgpack")]
pub struct Status {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub hp: u32,
}

/// Strict about fields: fine with bincode, which sends no "action" key in the body.
#[derive(Debug, PartialEq, Serialize, Deserialize, repod::Message)]
#[repod(action = "strict", codec = "bincode")]
#[serde(deny_unknown_fields)]
pub struct Strict {
    pub name: String,
}

fn round_trip<M>(codec: CodecKind, msg: &M) -> M
where
    M: Message + serde::de::DeserializeOwned,
{
    let frame = codec.encode(msg, 1 << 16).unwrap();
    codec
        .decode_raw(frame.slice(4..))
        .unwrap()
        .decode()
        .unwrap()
}

#[test]
fn messages_declared_for_one_codec_work_with_it() {
    let status = Status { note: None, hp: 3 };
    assert_eq!(round_trip(CodecKind::MsgPack, &status), status);
    let strict = Strict { name: "a".into() };
    assert_eq!(round_trip(CodecKind::Bincode, &strict), strict);
    assert_eq!(Strict::ACTION, "strict");
}

/// `repod::action` imported in a module holding a derive: the derive's `#[action("…")]` still
/// names the derive's attribute, and the channel still consumes its own. The import is unused.
mod imported {
    #[allow(unused_imports)]
    use repod::action;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, repod::Message)]
    #[action("hello")]
    pub struct Hello;

    #[derive(Default)]
    pub struct Player;

    #[repod::channel]
    impl Player {
        #[action]
        fn hello(&mut self, _msg: Hello) {}
    }
}

#[test]
fn importing_action_does_not_clash_with_the_derive() {
    assert_eq!(<imported::Hello as Message>::ACTION, "hello");
    assert_eq!(<imported::Player as Channel>::ACTIONS, ["hello"]);
}
