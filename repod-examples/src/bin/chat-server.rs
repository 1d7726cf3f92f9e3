//! The chat server of the complete example in Python repod's documentation.
//!
//! ```text
//! cargo run -p repod-examples --bin chat-server -- --addr 127.0.0.1:5071
//! cargo run -p repod-examples --features tls --bin chat-server -- \
//!     --tls-cert cert.pem --tls-key key.pem --token s3cret --idle-timeout 60
//! ```
//!
//! Each connection starts as `Anonymous`. `nickname` renames it (1 to 20 characters after
//! trimming) and tells everyone; `message` posts to everyone (1 to 500 characters). Invalid
//! input is answered with `{"action": "error", "message": "Invalid nickname"}` (or
//! `"Invalid message"`) to the sender only. The server prints `<nickname> left (<reason>)` when
//! a participant's connection closes, at shutdown too.
//!
//! Going online: `--tls-cert`/`--tls-key` serve TLS on `--addr` instead of plain TCP (PEM
//! files; the `tls` feature); `--token` requires every client to send
//! `{"action": "login", "token": <token>}` first (a wrong token gets `error` "bad token" and
//! is closed); `--idle-timeout` closes a participant that sent nothing for that many seconds.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use repod::server::Server;
use repod::{CloseReason, Context};
use repod_examples::chat::{
    valid_message, valid_nickname, Login, MessagePosted, NameChanged, Nickname, PostMessage,
    DEFAULT_NICKNAME,
};
use repod_examples::NetArgs;

/// How long a client has to log in when the server requires a token.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The chat server of the repod examples.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    net: NetArgs,
    /// Serve TLS on --addr with this certificate chain (PEM), instead of plain TCP. Needs
    /// --tls-key, and a build with the `tls` feature.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require every client to log in with this token first.
    #[arg(long)]
    token: Option<String>,
    /// Close a participant that sent nothing for this many seconds.
    #[arg(long)]
    idle_timeout: Option<f64>,
}

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
    let args = Args::parse();
    repod_examples::init_tracing();
    let mut builder = Server::<ChatChannel>::builder().codec(args.net.codec);
    if let Some(token) = args.token {
        builder = builder.auth(LOGIN_TIMEOUT, move |login: Login, _peer| {
            let accepted = login.token == token;
            async move {
                if accepted {
                    Ok(())
                } else {
                    Err("bad token".to_owned())
                }
            }
        });
    }
    if let Some(seconds) = args.idle_timeout {
        let timeout = Duration::try_from_secs_f64(seconds)
            .ok()
            .filter(|timeout| !timeout.is_zero())
            .ok_or("--idle-timeout must be a positive number of seconds")?;
        builder = builder.idle_timeout(timeout);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        #[cfg(feature = "tls")]
        {
            builder = builder.tls(repod::tls::TlsServerConfig::from_pem_files(cert, key)?);
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = (cert, key);
            return Err(
                "this chat-server was built without TLS: build it with `--features tls`".into(),
            );
        }
    }
    repod_examples::launch(builder, &args.net.addr)
}
