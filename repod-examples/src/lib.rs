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
//!
//! Every binary takes `--addr` (default `127.0.0.1:5071`) and `--codec bincode|msgpack`
//! (default bincode), and `--help`. Servers print `listening on <addr>` as their first line of
//! output once they accept connections and stop cleanly on Ctrl+C. Set `RUST_LOG=debug` to
//! see repod's logs on stderr.

pub mod chat;
pub mod lag;
pub mod lobby;
pub mod tag;
pub mod teams;

use std::io::Write;

use repod::server::{Server, ServerBuilder, ServerError};
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
/// the chosen codec, and [`serve`]s it on a tokio runtime.
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
    let builder = configure(Server::<Ch>::builder().codec(args.net.codec));
    tokio::runtime::Runtime::new()?.block_on(serve(builder, &args.net.addr))?;
    Ok(())
}

/// Sends repod's logs to stderr, filtered by `RUST_LOG` (silent by default).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
}

/// Binds, prints `listening on <addr>`, and serves until Ctrl+C or SIGTERM, then shuts down
/// gracefully.
pub async fn serve<Ch: Channel>(builder: ServerBuilder<Ch>, addr: &str) -> Result<(), ServerError> {
    let server = builder.bind(addr.to_owned()).await?;
    // Listen for the signals before announcing the address: a signal sent as soon as the line
    // is read must already find its handler.
    let stop = shutdown_signal();
    println!("listening on {}", server.local_addr());
    let _ = std::io::stdout().flush();
    let handle = server.handle();
    tokio::spawn(async move {
        stop.await;
        handle.shutdown();
    });
    server.run().await
}

/// Registers the handlers of SIGINT and SIGTERM now, and returns a future that completes when
/// either arrives.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
