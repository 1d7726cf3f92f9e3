//! Measures round trips through the game-loop client: send a `ping`, `pump` until its `pong`.
//!
//! ```text
//! cargo run --release -p repod-examples --bin lag-client -- --count 10000
//! ```
//!
//! Prints min, p50, p99 and max in microseconds.

use std::time::{Duration, Instant};

use clap::Parser;
use repod::client::Client;
use repod::{Disconnected, ErrorMessage};
use repod_examples::lag::{summarize, Ping, Pong};
use repod_examples::NetArgs;

/// The ping/pong client of the repod examples.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    net: NetArgs,
    /// Number of round trips to measure.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Round trips run first and not measured.
    #[arg(long, default_value_t = 100)]
    warmup: u64,
}

#[derive(Default)]
struct Pinger {
    connected: bool,
    last_pong: Option<u64>,
    failed: Option<String>,
}

#[repod::listener]
impl Pinger {
    #[action("connected")]
    fn connected(&mut self) {
        self.connected = true;
    }

    #[action]
    fn pong(&mut self, pong: Pong) {
        self.last_pong = Some(pong.seq);
    }

    #[action]
    fn error(&mut self, e: ErrorMessage) {
        self.failed = Some(e.message);
    }

    #[action]
    fn disconnected(&mut self, d: Disconnected) {
        self.failed.get_or_insert(d.reason);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    repod_examples::init_tracing();
    let args = Args::parse();
    let mut client = Client::builder()
        .codec(args.net.codec)
        .connect(args.net.addr.clone())?;
    let mut pinger = Pinger::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pinger.connected {
        client.pump(&mut pinger);
        if let Some(why) = &pinger.failed {
            return Err(format!("cannot connect to {}: {why}", args.net.addr).into());
        }
        if Instant::now() > deadline {
            return Err("timed out connecting".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }

    let mut samples = Vec::with_capacity(args.count as usize);
    for seq in 0..args.warmup + args.count {
        let start = Instant::now();
        client.send(&Ping { seq })?;
        // A game would do other work between pumps; this loop only waits for the answer.
        while pinger.last_pong != Some(seq) {
            client.pump(&mut pinger);
            if let Some(why) = &pinger.failed {
                return Err(format!("connection lost: {why}").into());
            }
            std::hint::spin_loop();
        }
        if seq >= args.warmup {
            samples.push(start.elapsed().as_micros() as u64);
        }
    }
    client.close();
    let s = summarize(&mut samples).ok_or("no samples (--count 0)")?;
    println!(
        "{} round trips ({}): min {} µs, p50 {} µs, p99 {} µs, max {} µs",
        args.count, args.net.codec, s.min, s.p50, s.p99, s.max
    );
    Ok(())
}
