//! The chat server as one node of a cluster: run several, each on its own port, all pointing at
//! the same Redis, and every participant sees every message, whichever node it is connected to.
//!
//! ```text
//! redis-server --port 6379 --save '' --appendonly no
//! cargo run -p repod-examples --features cluster --bin cluster-chat-server -- --addr 127.0.0.1:5071
//! cargo run -p repod-examples --features cluster --bin cluster-chat-server -- --addr 127.0.0.1:5072
//! cargo run -p repod-examples --bin chat-client -- --addr 127.0.0.1:5071 --name alice
//! cargo run -p repod-examples --bin chat-client -- --addr 127.0.0.1:5072 --name bob
//! ```
//!
//! The protocol is the chat example's (see `repod_examples::chat`), so `chat-client` talks to
//! it unchanged. Besides, every participant is in the group `"chat"`, and the server prints,
//! for each new participant, how many the chat has across all nodes.

use std::io::Write;

use clap::Parser;
use repod::server::{ClusterConfig, Server};
use repod::{CloseReason, Context};
use repod_examples::chat::{
    valid_message, valid_nickname, MessagePosted, NameChanged, Nickname, PostMessage,
    DEFAULT_NICKNAME,
};
use repod_examples::NetArgs;

/// The chat server of the repod examples, as one node of a cluster sharing a Redis.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    net: NetArgs,
    /// The Redis every node of the cluster uses.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
}

/// The group every participant is in.
const CHAT: &str = "chat";

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
    fn on_connect(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.join(CHAT);
        // Counts the members of every node this node has heard from.
        println!("{} joined; {} in the chat", ctx.id(), ctx.group_len(CHAT));
    }

    fn on_close(&mut self, _ctx: &mut Context<'_, Self>, reason: &CloseReason) {
        println!("{} left ({reason})", self.nickname);
    }

    #[action]
    fn nickname(&mut self, ctx: &mut Context<'_, Self>, msg: Nickname) -> Result<(), &'static str> {
        let nickname = valid_nickname(&msg.nickname).ok_or("Invalid nickname")?;
        let old_name = std::mem::replace(&mut self.nickname, nickname.to_owned());
        ctx.send_to_group(
            CHAT,
            &NameChanged {
                old_name,
                new_name: self.nickname.clone(),
            },
        );
        Ok(())
    }

    #[action]
    fn message(
        &mut self,
        ctx: &mut Context<'_, Self>,
        msg: PostMessage,
    ) -> Result<(), &'static str> {
        let text = valid_message(&msg.text).ok_or("Invalid message")?;
        ctx.send_to_group(
            CHAT,
            &MessagePosted {
                text: text.to_owned(),
                nickname: self.nickname.clone(),
            },
        );
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    repod_examples::init_tracing();
    Server::<ChatChannel>::builder()
        .codec(args.net.codec)
        .cluster(ClusterConfig::new(args.redis).prefix("chat"))
        .launch_with(args.net.addr.as_str(), |handle| {
            let node = handle.cluster_node().unwrap_or(0);
            println!("listening on {} as node {node}", handle.local_addr());
            let _ = std::io::stdout().flush();
        })?;
    println!("stopped");
    Ok(())
}
