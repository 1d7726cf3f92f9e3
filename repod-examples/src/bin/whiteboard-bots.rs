//! Bots that join the whiteboard and draw curves, many in one process.
//!
//! ```text
//! cargo run -p repod-examples --bin whiteboard-server
//! cargo run -p repod-examples --bin whiteboard-bots -- --bots 3 --seconds 20
//! cargo run -p repod-examples --bin whiteboard-bots -- --addr ws://127.0.0.1:5072
//! ```
//!
//! Every bot is an async client on one tokio runtime, over TCP (`--addr host:port`) or
//! WebSocket (`--addr ws://host:port`). It joins (a request answered with its id and colour),
//! then draws a curve of its own, a short stroke at a time, and counts the strokes the others
//! draw. At the end the tool prints what the bots drew and saw.

use std::f64::consts::TAU;
use std::time::Duration;

use clap::Parser;
use repod::client::AsyncClient;
use repod::{CodecKind, Disconnected};
use repod_examples::whiteboard::{Drawn, Join, Stroke, HEIGHT, WIDTH};

/// Drawing bots for the repod whiteboard.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The server's TCP address (`host:port`) or WebSocket URL (`ws://host:port`).
    #[arg(long, default_value = "127.0.0.1:5071")]
    addr: String,
    /// How many bots to run.
    #[arg(long, default_value_t = 3)]
    bots: u32,
    /// How long to draw, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Strokes each bot sends per second.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Bots are named `<name>-1`, `<name>-2`, …
    #[arg(long, default_value = "bot")]
    name: String,
}

/// What one bot saw.
#[derive(Default)]
struct Eyes {
    id: u64,
    seen: u64,
    disconnected: Option<String>,
}

#[repod::listener]
impl Eyes {
    #[action]
    fn drawn(&mut self, drawn: Drawn) {
        if drawn.id != self.id {
            self.seen += 1;
        }
    }

    #[action]
    fn disconnected(&mut self, d: Disconnected) {
        self.disconnected = Some(d.reason);
    }
}

/// The curve of player `id`: a Lissajous figure of its own size and place, `t` in turns.
fn curve(id: u64, t: f64) -> (u16, u16) {
    let (w, h) = (f64::from(WIDTH), f64::from(HEIGHT));
    let k = (id % 1000) as f64;
    let (cx, cy) = (
        w * (0.2 + 0.6 * ((k * 0.37) % 1.0)),
        h * (0.3 + 0.4 * ((k * 0.61) % 1.0)),
    );
    let r = 60.0 + 20.0 * (k % 4.0);
    let (a, b) = (3.0 + k % 3.0, 2.0 + k % 2.0);
    let x = cx + r * (a * TAU * t + k).sin();
    let y = cy + r * (b * TAU * t).sin();
    (x.clamp(0.0, w) as u16, y.clamp(0.0, h) as u16)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    repod_examples::init_tracing();
    let args = Args::parse();
    let play = Duration::from_secs_f64(args.seconds);
    let pause = Duration::from_secs_f64(1.0 / args.rate.max(0.1));
    let mut tasks = Vec::new();
    for n in 1..=args.bots {
        let mut client = AsyncClient::builder()
            .codec(CodecKind::MsgPack)
            .connect_async(args.addr.clone())
            .await?;
        let name = format!("{}-{n}", args.name);
        let welcome = client.request(&Join { name }).await?;
        let me = welcome.you;
        println!("{} joined as player {} in {}", me.name, me.id, me.color);
        let sender = client.sender();
        tasks.push(tokio::spawn(async move {
            let mut eyes = Eyes {
                id: me.id,
                ..Eyes::default()
            };
            let end = tokio::time::Instant::now() + play;
            let draw = async {
                let mut strokes = 0u64;
                let mut t = 0.0;
                let mut ticker = tokio::time::interval(pause);
                while ticker.tick().await < end {
                    // Four points per stroke, the first where the last stroke ended.
                    let points = (0..4)
                        .map(|i| curve(me.id, t + f64::from(i) * 0.002))
                        .collect();
                    t += 0.006;
                    if sender.send(&Stroke { points }).is_err() {
                        break;
                    }
                    strokes += 1;
                }
                strokes
            };
            let (strokes, _) =
                tokio::join!(draw, tokio::time::timeout_at(end, client.run(&mut eyes)));
            // Close, then keep dispatching until `disconnected`: what was sent is delivered.
            client.sender().close();
            let _ = tokio::time::timeout(Duration::from_secs(2), client.run(&mut eyes)).await;
            (strokes, eyes)
        }));
    }
    let (mut drawn, mut seen, mut dropped) = (0, 0, 0);
    for task in tasks {
        let (strokes, eyes) = task.await?;
        drawn += strokes;
        seen += eyes.seen;
        if eyes
            .disconnected
            .as_deref()
            .is_some_and(|r| r != "closed by client")
        {
            dropped += 1;
        }
    }
    println!(
        "{} bots drew {drawn} strokes in {:.1} s and saw {seen} strokes of others; {dropped} dropped by the server",
        args.bots, args.seconds
    );
    Ok(())
}
