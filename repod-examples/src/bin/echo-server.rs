//! A server for testing clients in other languages (the JavaScript client's tests use it):
//! it echoes, broadcasts, answers requests with values and errors, keeps some requests
//! waiting until told to answer them, and disconnects on demand. It speaks MessagePack, on TCP
//! and on WebSocket.
//!
//! ```text
//! cargo run -p repod-examples --bin echo-server -- --ws 127.0.0.1:5072
//! ```
//!
//! | action | kind | what the server does |
//! |---|---|---|
//! | `echo {text}` | message | sends `echo {text}` back |
//! | `shout {text}` | message | sends `shouted {text, from}` to everyone |
//! | `add {a, b}` | request | answers `{sum}` |
//! | `fail {text}` | request | answers the error `text` |
//! | `values {…}` | request | answers with the values it decoded (see [`Values`]) |
//! | `hold` | request | answers only when someone sends `release` |
//! | `release` | message | answers every held request with how many were held |
//! | `kick` | message | closes the connection (after what is queued) |
//! | anything else | message | sends `unknown {name}` back, `name` being its action |

use std::io::Write;

use clap::Parser;
use repod::server::Server;
use repod::{CodecKind, Context, RawMessage, ReplyTo};
use serde::{Deserialize, Serialize};

/// A test server for repod clients in other languages.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the TCP listener.
    #[arg(long, default_value = "127.0.0.1:5071")]
    addr: String,
    /// Address of the WebSocket listener.
    #[arg(long, default_value = "127.0.0.1:5072")]
    ws: String,
}

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("echo")]
struct Echo {
    text: String,
}

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("shout")]
struct Shout {
    text: String,
}

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("shouted")]
struct Shouted {
    text: String,
    from: u64,
}

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("add")]
#[reply(Sum)]
struct Add {
    a: i64,
    b: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Sum {
    sum: i64,
}

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("fail")]
#[reply(())]
struct Fail {
    text: String,
}

/// Values of many types, answered as decoded: the client checks what it sent comes back.
#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("values")]
#[reply(Values)]
struct Values {
    small: u8,
    big: u64,
    negative: i32,
    float: f64,
    single: f32,
    text: String,
    list: Vec<u16>,
    maybe: Option<String>,
    nested: Nested,
}

#[derive(Debug, Serialize, Deserialize)]
struct Nested {
    flag: bool,
    pair: (i8, String),
}

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("hold")]
#[reply(u32)]
struct Hold;

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("release")]
struct Release;

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("kick")]
struct Kick;

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("unknown")]
struct Unknown {
    name: String,
}

/// Requests kept waiting for a `release`.
#[derive(Default)]
struct Held {
    replies: Vec<ReplyTo<Hold>>,
}

#[derive(Default)]
struct Tester;

#[repod::channel(state = Held)]
impl Tester {
    #[action]
    fn echo(&mut self, ctx: &mut Context<'_, Self>, echo: Echo) {
        let _ = ctx.send(&echo);
    }

    #[action]
    fn shout(&mut self, ctx: &mut Context<'_, Self>, shout: Shout) {
        let from = ctx.id().get();
        ctx.send_to_all(&Shouted {
            text: shout.text,
            from,
        });
    }

    #[action]
    fn add(&mut self, add: Add) -> Result<Sum, &'static str> {
        let sum = add.a.checked_add(add.b).ok_or("overflow")?;
        Ok(Sum { sum })
    }

    #[action]
    fn fail(&mut self, fail: Fail) -> Result<(), String> {
        Err(fail.text)
    }

    #[action]
    fn values(&mut self, values: Values) -> Values {
        values
    }

    #[action]
    fn hold(&mut self, ctx: &mut Context<'_, Self>, _: Hold, reply: ReplyTo<Hold>) {
        ctx.state_mut().replies.push(reply);
    }

    #[action]
    fn release(&mut self, ctx: &mut Context<'_, Self>, _: Release) {
        let held: Vec<_> = ctx.state_mut().replies.drain(..).collect();
        let count = held.len() as u32;
        for reply in held {
            let _ = ctx.reply(reply, &count);
        }
    }

    #[action]
    fn kick(&mut self, ctx: &mut Context<'_, Self>, _: Kick) {
        ctx.disconnect();
    }

    fn network_received(&mut self, ctx: &mut Context<'_, Self>, msg: RawMessage) {
        let name = msg.action().to_owned();
        let _ = ctx.send(&Unknown { name });
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    repod_examples::init_tracing();
    Server::<Tester>::builder()
        .codec(CodecKind::MsgPack)
        .listen_ws(&args.ws)
        .launch_with(args.addr.as_str(), |handle| {
            println!("listening on {}", handle.local_addr());
            if let Some(ws) = handle.ws_addr() {
                println!("websocket on ws://{ws}");
            }
            let _ = std::io::stdout().flush();
        })?;
    println!("stopped");
    Ok(())
}
