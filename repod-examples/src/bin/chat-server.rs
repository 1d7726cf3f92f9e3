//! The chat server of the complete example in Python repod's documentation.
//!
//! ```text
//! cargo run -p repod-examples --bin chat-server -- --addr 127.0.0.1:5071
//! ```
//!
//! Each connection starts as `Anonymous`. `nickname` renames it (1 to 20 characters after
//! trimming) and tells everyone; `message` posts to everyone (1 to 500 characters). Invalid
//! input is answered with `{"action": "error", "message": "Invalid nickname"}` (or
//! `"Invalid message"`) to the sender only. The server prints `<nickname> left (<reason>)` when
//! a participant's connection closes, at shutdown too.

use repod::{CloseReason, Context};
use repod_examples::chat::{
    valid_message, valid_nickname, MessagePosted, NameChanged, Nickname, PostMessage,
    DEFAULT_NICKNAME,
};

/// One chat participant.
struct ChatChannel {
    nickname: String,
}

impl Default for ChatChannel {
    fn default() -> Self {
        ChatChannel {
            nickname: DEFAULT_NICKNAME.to_owned(),
        }
    }
}

#[repod::channel]
impl ChatChannel {
    fn on_close(&mut self, _ctx: &mut Context<'_, Self>, reason: &CloseReason) {
        println!("{} left ({reason})", self.nickname);
    }

    #[action]
    fn nickname(&mut self, ctx: &mut Context<'_, Self>, msg: Nickname) -> Result<(), &'static str> {
        let nickname = valid_nickname(&msg.nickname).ok_or("Invalid nickname")?;
        let old_name = std::mem::replace(&mut self.nickname, nickname.to_owned());
        ctx.send_to_all(&NameChanged {
            old_name,
            new_name: self.nickname.clone(),
        });
        Ok(())
    }

    #[action]
    fn message(
        &mut self,
        ctx: &mut Context<'_, Self>,
        msg: PostMessage,
    ) -> Result<(), &'static str> {
        let text = valid_message(&msg.text).ok_or("Invalid message")?;
        ctx.send_to_all(&MessagePosted {
            text: text.to_owned(),
            nickname: self.nickname.clone(),
        });
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    repod_examples::server_main::<ChatChannel>(
        "The chat server of the repod examples.",
        |builder| builder,
    )
}
