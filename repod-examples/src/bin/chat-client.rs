//! The chat client of the complete example in Python repod's documentation: a game-loop client
//! reading stdin.
//!
//! ```text
//! cargo run -p repod-examples --bin chat-client -- --name alice
//! cargo run -p repod-examples --features tls --bin chat-client -- --name alice \
//!     --tls-ca ca.pem --token s3cret --heartbeat 20
//! ```
//!
//! Each line of input `/nick NAME` changes the nickname; any other non-empty line is posted as a
//! message. Every event is printed as one line: `<nickname>: <text>`, `* <old> is now <new>`,
//! `error: <message>`, `connected`, `disconnected`. At the end of input the client waits for the
//! replies to what it sent, closes, and exits 0 (1 if it never connected).
//!
//! Waiting for replies is counted, not timed: the chat server answers every message this client
//! sends with exactly one message to it, the broadcast of its `name_changed` or `message`, or an
//! `error`. So the client counts what it sent (the `--name` nickname included) and, after the
//! end of input, pumps until it has received as many replies, or for at most 10 seconds. Then it
//! closes and waits for `disconnected`. In a room where others are talking their messages count
//! as replies too, so the client may stop before its own replies arrived; the count is exact
//! when it is alone, as in the tests.
//!
//! Going online: `--tls-ca` connects over TLS, trusting the certificates of that PEM file (a
//! CA's, or the server's own self-signed one), for the server name `--tls-name` (by default the
//! host of `--addr`); `--token` logs in first; `--heartbeat` keeps a quiet client alive on a
//! server with an idle timeout.

use std::io::BufRead;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use repod::client::Client;
use repod::{ClientContext, Disconnected, ErrorMessage};
use repod_examples::chat::{Login, MessagePosted, NameChanged, Nickname, PostMessage};
use repod_examples::NetArgs;

/// The chat client of the repod examples.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    net: NetArgs,
    /// A nickname to take as soon as the server accepts the connection.
    #[arg(long)]
    name: Option<String>,
    /// Connect over TLS, trusting the certificates in this PEM file. Needs a build with the
    /// `tls` feature.
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
    /// The name the server's certificate must carry [default: the host of --addr].
    #[arg(long, requires = "tls_ca")]
    tls_name: Option<String>,
    /// Log in with this token first (for a server started with --token).
    #[arg(long)]
    token: Option<String>,
    /// Send a heartbeat every this many seconds (for a server with an idle timeout).
    #[arg(long)]
    heartbeat: Option<f64>,
}

/// The client's builder, as the flags set it.
fn builder(args: &Args) -> Result<repod::ClientBuilder, Box<dyn std::error::Error>> {
    let mut builder = Client::builder().codec(args.net.codec);
    if let Some(seconds) = args.heartbeat {
        let interval = Duration::try_from_secs_f64(seconds)
            .ok()
            .filter(|interval| !interval.is_zero())
            .ok_or("--heartbeat must be a positive number of seconds")?;
        builder = builder.heartbeat(interval);
    }
    if let Some(ca) = &args.tls_ca {
        #[cfg(feature = "tls")]
        {
            let mut tls = repod::tls::TlsClientConfig::from_ca_pem_file(ca)?;
            if let Some(name) = &args.tls_name {
                tls = tls.server_name(name)?;
            }
            builder = builder.tls(tls);
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = ca;
            return Err(
                "this chat-client was built without TLS: build it with `--features tls`".into(),
            );
        }
    }
    Ok(builder)
}

/// Prints every event; remembers what the main loop needs to know.
struct ChatView {
    name: Option<String>,
    connected: bool,
    disconnected: bool,
    /// Messages sent to the server; each gets exactly one reply.
    sent: usize,
    /// Replies received: broadcasts and errors.
    replies: usize,
}

#[repod::listener]
impl ChatView {
    #[action("connected")]
    fn connected(&mut self, ctx: &mut ClientContext<'_>) {
        self.connected = true;
        println!("connected");
        if let Some(nickname) = self.name.take() {
            if ctx.send(&Nickname { nickname }).is_ok() {
                self.sent += 1;
            }
        }
    }

    #[action]
    fn message(&mut self, msg: MessagePosted) {
        self.replies += 1;
        println!("{}: {}", msg.nickname, msg.text);
    }

    #[action]
    fn name_changed(&mut self, msg: NameChanged) {
        self.replies += 1;
        println!("* {} is now {}", msg.old_name, msg.new_name);
    }

    #[action]
    fn error(&mut self, msg: ErrorMessage) {
        self.replies += 1;
        println!("error: {}", msg.message);
    }

    #[action]
    fn disconnected(&mut self, _msg: Disconnected) {
        self.disconnected = true;
        println!("disconnected");
    }
}

/// Sends one line of input: `/nick NAME` or a message; blank lines are skipped. Returns whether
/// a message was sent (and so a reply is due).
fn send_line(client: &Client, line: &str) -> bool {
    let sent = if let Some(name) = line.strip_prefix("/nick ") {
        client.send(&Nickname {
            nickname: name.to_owned(),
        })
    } else if !line.trim().is_empty() {
        client.send(&PostMessage {
            text: line.to_owned(),
        })
    } else {
        return false;
    };
    match sent {
        Ok(()) => true,
        Err(e) => {
            println!("error: {e}");
            false
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    repod_examples::init_tracing();
    let mut args = Args::parse();
    let mut client = builder(&args)?.connect(args.net.addr.as_str())?;
    if let Some(token) = args.token.take() {
        // Queued before anything else, so it is the first message the server reads.
        client.send(&Login { token })?;
    }
    let mut view = ChatView {
        name: args.name,
        connected: false,
        disconnected: false,
        sent: 0,
        replies: 0,
    };

    // Stdin is read on its own thread so the loop below keeps pumping.
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    // The game loop: handle input, pump events, wait a little for more input.
    let mut pending: Vec<String> = Vec::new();
    let mut input_done = false;
    while !input_done && !view.disconnected {
        client.pump(&mut view);
        match lines.recv_timeout(Duration::from_millis(5)) {
            Ok(line) => pending.push(line),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => input_done = true,
        }
        // Lines typed before the connection is up wait for it, so `--name` goes first.
        if view.connected {
            for line in pending.drain(..) {
                if send_line(&client, &line) {
                    view.sent += 1;
                }
            }
        }
    }

    // End of input: wait for the connection if it is still being made, then for one reply
    // per message sent.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !view.connected && !view.disconnected && Instant::now() < deadline {
        client.pump(&mut view);
        std::thread::sleep(Duration::from_millis(5));
    }
    if view.connected {
        for line in pending.drain(..) {
            if send_line(&client, &line) {
                view.sent += 1;
            }
        }
    }
    while !view.disconnected && view.replies < view.sent && Instant::now() < deadline {
        client.pump(&mut view);
        std::thread::sleep(Duration::from_millis(5));
    }
    client.close();
    // The close flushes within the client's close timeout; `disconnected` follows it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !view.disconnected && Instant::now() < deadline {
        client.pump(&mut view);
        std::thread::sleep(Duration::from_millis(5));
    }
    if view.connected {
        Ok(())
    } else {
        std::process::exit(1)
    }
}
