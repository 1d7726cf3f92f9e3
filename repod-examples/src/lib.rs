//! Runnable examples of repod, and the protocol module each one shares between its server and
//! its clients.
//!
//! | binaries | what it shows |
//! |---|---|
//! | `chat-server`, `chat-client` | the complete chat example of Python repod's documentation: nicknames, validation, broadcast |
//! | `lag-server`, `lag-client` | ping/pong round trips through the game-loop client |
//! | `teams-server`, `teams-client` | each team a group of channels: join a team, tell the team, team chat |
//! | `tag-server`, `tag-bots` | an authoritative game: fixed-tick physics on the server, many bots in one process |
//! | `lobby-server`, `lobby-bots` | matchmaking: players wait in a lobby group, are moved into rooms of four for a short tick-driven round, and each room gets only its own state |
//! | `whiteboard-server`, `whiteboard-bots` | browser players: the server serves a drawing page (HTTP), takes it over WebSocket and bots or Python programs over TCP, all in one room; the page's TypeScript types are generated from [`whiteboard`]'s Rust types |
//! | `echo-server` | a server for testing clients in other languages: echoes, broadcasts, requests answered, failed or held |
//!
//! Every binary takes `--addr` (default `127.0.0.1:5071`) and `--codec bincode|msgpack`
//! (default bincode), and `--help`; `whiteboard-server` and `echo-server` always speak
//! MessagePack (as browsers do) and take `--ws` for their WebSocket address instead of
//! `--codec`. Servers print `listening on <addr>` as their first line of output once they
//! accept connections (a stop signal sent from then on is never lost), stop gracefully on
//! SIGINT (Ctrl+C) or SIGTERM, and print `stopped` as their last line. Set `RUST_LOG=debug`
//! to see repod's logs on stderr.

pub mod chat;
pub mod lag;
pub mod lobby;
pub mod tag;
pub mod teams;
pub mod whiteboard;

use std::io::Write;

use repod::server::{Server, ServerBuilder};
use repod::{Channel, CodecKind};

/// Flags every example shares.
#[derive(Debug, Clone, clap::Args)]
pub struct NetArgs {
    /// Address to listen on (servers) or connect to (clients).
    #[arg(long, default_value = "127.0.0.1:5071")]
    pub addr: String,
    /// Wire codec: `bincode` (Rust peers) or `msgpack` (compatible with Python repod).
    #[arg(long, default_value = "bincode")]
    pub codec: CodecKind,
}

/// The command line of every example server: just [`NetArgs`].
#[derive(Debug, Clone, clap::Parser)]
#[command(version)]
pub struct ServerArgs {
    /// Address and codec.
    #[command(flatten)]
    pub net: NetArgs,
}

/// The whole `main` of an example server: parses [`ServerArgs`] (with `about` as the `--help`
/// text), installs logging, builds the server with `configure` from a builder already set to
/// the chosen codec, and runs it with [`ServerBuilder::launch_with`]: prints `listening on
/// <addr>` once the server is bound and its signal handlers are installed, serves until SIGINT
/// (Ctrl+C) or SIGTERM, shuts down gracefully and prints `stopped`.
pub fn server_main<Ch: Channel + Default>(
    about: &'static str,
    configure: impl FnOnce(ServerBuilder<Ch>) -> ServerBuilder<Ch>,
) -> Result<(), Box<dyn std::error::Error>>
where
    Ch::State: Default,
{
    use clap::{CommandFactory, FromArgMatches};
    let matches = ServerArgs::command().about(about).get_matches();
    let args = ServerArgs::from_arg_matches(&matches)?;
    init_tracing();
    launch(
        configure(Server::<Ch>::builder().codec(args.net.codec)),
        &args.net.addr,
    )
}

/// Runs a configured example server on `addr` with [`ServerBuilder::launch_with`]: prints
/// `listening on <addr>` once it is bound and its signal handlers are installed, serves until
/// SIGINT (Ctrl+C) or SIGTERM, shuts down gracefully and prints `stopped`.
pub fn launch<Ch: Channel>(
    builder: ServerBuilder<Ch>,
    addr: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    builder.launch_with(addr, |handle| {
        println!("listening on {}", handle.local_addr());
        let _ = std::io::stdout().flush();
    })?;
    println!("stopped");
    Ok(())
}

/// Sends repod's logs to stderr, filtered by `RUST_LOG` (silent by default).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
}
