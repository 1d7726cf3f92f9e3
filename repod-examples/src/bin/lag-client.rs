//! Measures round trips through the game-loop client: send a `ping`, `pump` until its `pong`.
//!
//! ```text
//! cargo run --release -p repod-examples --bin lag-client -- --count 10000
//! ```
//!
//! Prints min, p50, p99 and max in microseconds.
//!
//! With `--resume`, the client keeps a resumable session, and `--blip-every N` cuts its
//! connection every N round trips (through a relay in front of the server), to watch it resume
//! with no ping or pong lost:
//!
//! ```text
//! cargo run --release -p repod-examples --bin lag-client -- --resume --blip-every 250
//! ```

use std::time::{Duration, Instant};

use clap::Parser;
use repod::client::Client;
use repod::{Backoff, Disconnected, ErrorMessage, SessionStarted};
use repod_examples::lag::{summarize, BlipRelay, Ping, Pong};
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
    /// Keep a resumable session: reconnect and resume after a lost connection.
    #[arg(long)]
    resume: bool,
    /// Cut the connection every this many round trips (with `--resume`).
    #[arg(long, requires = "resume")]
    blip_every: Option<u64>,
}

#[derive(Default)]
struct Pinger {
    connected: bool,
    last_pong: Option<u64>,
    failed: Option<String>,
    /// With a session, lost connections are not the end.
    resumes: bool,
    sessions_resumed: u64,
    blips: u64,
}

#[repod::listener]
impl Pinger {
    #[action("connected")]
    fn connected(&mut self) {
        self.connected = true;
    }

    #[action]
    fn pong(&mut self, pong: Pong) {
        let expected = self.last_pong.map_or(0, |seq| seq + 1);
        if pong.seq != expected {
            self.failed = Some(format!("pong {} after {:?}", pong.seq, self.last_pong));
        }
        self.last_pong = Some(pong.seq);
    }

    #[action]
    fn session(&mut self, session: SessionStarted) {
        if session.resumed {
            self.sessions_resumed += 1;
        } else if self.connected {
            self.failed = Some(format!("session lost: {}", session.reason));
        }
    }

    #[action]
    fn error(&mut self, e: ErrorMessage) {
        self.failed = Some(e.message);
    }

    #[action]
    fn disconnected(&mut self, d: Disconnected) {
        if self.resumes && d.reason != "closed by client" {
            // A blip: the client reconnects and resumes by itself.
            self.blips += 1;
            return;
        }
        self.failed.get_or_insert(d.reason);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    repod_examples::init_tracing();
    let args = Args::parse();
    let relay = match args.blip_every {
        Some(_) => Some(BlipRelay::start(&args.net.addr)?),
        None => None,
    };
    let addr = match &relay {
        Some(relay) => relay.addr().to_string(),
        None => args.net.addr.clone(),
    };
    let mut builder = Client::builder().codec(args.net.codec);
    if args.resume {
        builder = builder
            .resume(true)
            .reconnect(Backoff::new().max(Duration::from_secs(1)));
    }
    let mut client = builder.connect(addr)?;
    let mut pinger = Pinger {
        resumes: args.resume,
        ..Pinger::default()
    };
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
        if let (Some(relay), Some(every)) = (&relay, args.blip_every) {
            if every > 0 && seq % every == every - 1 {
                relay.cut();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        // A game would do other work between pumps; this loop only waits for the answer.
        while pinger.last_pong != Some(seq) {
            client.pump(&mut pinger);
            if let Some(why) = &pinger.failed {
                return Err(format!("connection lost: {why}").into());
            }
            if Instant::now() > deadline {
                return Err(format!("no pong {seq} within 10 s").into());
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
    if args.resume {
        println!(
            "{} connections lost, {} sessions resumed, no pong lost",
            pinger.blips, pinger.sessions_resumed
        );
    }
    Ok(())
}
