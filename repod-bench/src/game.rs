//! The game-loop workload (`client-pump`): round trips as a game sees them, through a client
//! that is pumped from a loop on the game's own thread.
//!
//! Two clients play the same loop: repod's game-loop [`Client`] with a
//! `#[repod::listener]`, and a hand-written baseline, the polling client a game would write
//! without repod (a non-blocking `std` socket: `send` writes the frame, `pump` reads until the
//! socket has nothing more and handles every complete frame). Each talks to its own side's
//! server, as in `client-rtt`.
//!
//! Two paces:
//!
//! * **spin**: send a `ping`, then pump as fast as the loop can until its `pong` has been
//!   handled; the sample is the time from the send to the end of that pump.
//! * **60 Hz**: a frame every 1/60 s. At the start of a frame the loop pumps, then sends a
//!   `ping` if none is outstanding; the sample is the time from the send to the start of the
//!   frame whose pump handled the `pong`: one frame (16.7 ms) when the reply is in time for the
//!   next frame, two when it missed it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use repod::client::Client;
use repod::{Disconnected, ErrorMessage};
use repod_core::{Codec, CodecKind, Message, RawMessage, DEFAULT_MAX_FRAME_LEN};

use crate::load::{summarize, Rtt};
use crate::proto::{Ping, Pong};

/// Longest the loop waits for any one reply (or for the connection) before giving up.
const STALL: Duration = Duration::from_secs(30);

/// Round trips run before measuring.
const WARM_UP: u64 = 200;

/// How the game loop is paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Pump as fast as the loop can.
    Spin,
    /// One frame every 1/60 s.
    Hz60,
}

impl Pace {
    pub fn label(self) -> &'static str {
        match self {
            Pace::Spin => "spin",
            Pace::Hz60 => "60 Hz",
        }
    }
}

/// One side's game-loop client, reduced to what the loop needs.
trait GameClient {
    /// Sends `ping {seq}` without waiting.
    fn send_ping(&mut self, seq: u64) -> io::Result<()>;
    /// Handles everything received so far; returns the highest `pong` seq seen yet, if any.
    fn pump(&mut self) -> io::Result<Option<u64>>;
}

/// Runs the loop on the calling thread (a game's thread: it blocks).
fn play(client: &mut dyn GameClient, pace: Pace, dur: Duration, max: usize) -> io::Result<Rtt> {
    let mut seq = 0;
    for _ in 0..WARM_UP {
        seq += 1;
        client.send_ping(seq)?;
        spin_until(client, seq)?;
    }
    let mut samples = Vec::with_capacity(max.min(1 << 20));
    let start = Instant::now();
    // Every run measures at least one round trip, however short its duration.
    match pace {
        Pace::Spin => {
            while samples.len() < max && (start.elapsed() < dur || samples.is_empty()) {
                seq += 1;
                let t = Instant::now();
                client.send_ping(seq)?;
                spin_until(client, seq)?;
                samples.push(t.elapsed().as_nanos() as u64);
            }
        }
        Pace::Hz60 => {
            let period = Duration::from_nanos(1_000_000_000 / 60);
            let mut frame = Instant::now();
            let mut outstanding: Option<(u64, Instant)> = None;
            while samples.len() < max && (start.elapsed() < dur || samples.is_empty()) {
                let now = Instant::now();
                let seen = client.pump()?;
                if let Some((want, sent)) = outstanding {
                    if seen.is_some_and(|s| s >= want) {
                        samples.push(now.duration_since(sent).as_nanos() as u64);
                        outstanding = None;
                    } else if sent.elapsed() > STALL {
                        return Err(io::Error::other("no pong for 30 s"));
                    }
                }
                if outstanding.is_none() {
                    seq += 1;
                    client.send_ping(seq)?;
                    outstanding = Some((seq, Instant::now()));
                }
                frame += period;
                let now = Instant::now();
                if frame > now {
                    std::thread::sleep(frame - now);
                } else {
                    // Behind (a slow frame): start the next one now, as a game would.
                    frame = now;
                }
            }
        }
    }
    Ok(summarize(samples))
}

/// Pumps until the `pong` for `seq` was handled.
fn spin_until(client: &mut dyn GameClient, seq: u64) -> io::Result<()> {
    let since = Instant::now();
    loop {
        if client.pump()?.is_some_and(|s| s >= seq) {
            return Ok(());
        }
        if since.elapsed() > STALL {
            return Err(io::Error::other("no pong for 30 s"));
        }
    }
}

/// Round trips through repod's game-loop [`Client`].
pub fn repod_client(
    addr: SocketAddr,
    codec: CodecKind,
    pace: Pace,
    dur: Duration,
) -> io::Result<Rtt> {
    let client = Client::builder()
        .codec(codec)
        .connect(addr)
        .map_err(io::Error::other)?;
    let mut game = RepodGame {
        client,
        watch: PongWatch::default(),
    };
    let since = Instant::now();
    while !game.watch.connected {
        game.pump()?;
        if since.elapsed() > STALL {
            return Err(io::Error::other("not connected after 30 s"));
        }
        std::thread::yield_now();
    }
    play(&mut game, pace, dur, 1_000_000)
}

/// What the repod game's listener saw.
#[derive(Default)]
struct PongWatch {
    connected: bool,
    last_pong: Option<u64>,
    failed: Option<String>,
}

#[repod::listener]
impl PongWatch {
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
        self.failed.get_or_insert(e.message);
    }

    #[action]
    fn disconnected(&mut self, d: Disconnected) {
        self.failed.get_or_insert(d.reason);
    }
}

struct RepodGame {
    client: Client,
    watch: PongWatch,
}

impl GameClient for RepodGame {
    fn send_ping(&mut self, seq: u64) -> io::Result<()> {
        self.client.send(&Ping { seq }).map_err(io::Error::other)
    }

    fn pump(&mut self) -> io::Result<Option<u64>> {
        self.client.pump(&mut self.watch);
        match &self.watch.failed {
            Some(reason) => Err(io::Error::other(reason.clone())),
            None => Ok(self.watch.last_pong),
        }
    }
}

/// Round trips through the hand-written polling client.
pub fn baseline_client(
    addr: SocketAddr,
    codec: CodecKind,
    pace: Pace,
    dur: Duration,
) -> io::Result<Rtt> {
    let sock = TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    sock.set_nonblocking(true)?;
    let mut game = PollingClient {
        sock,
        codec,
        inbox: BytesMut::with_capacity(8192),
        connected: false,
        last_pong: None,
    };
    let since = Instant::now();
    while !game.connected {
        game.pump()?;
        if since.elapsed() > STALL {
            return Err(io::Error::other("no greeting after 30 s"));
        }
        std::thread::yield_now();
    }
    play(&mut game, pace, dur, 1_000_000)
}

/// A game's hand-written client: one non-blocking socket, polled by `pump`.
struct PollingClient {
    sock: TcpStream,
    codec: CodecKind,
    inbox: BytesMut,
    connected: bool,
    last_pong: Option<u64>,
}

impl PollingClient {
    fn handle(&mut self, msg: RawMessage) -> io::Result<()> {
        match msg.action() {
            Pong::ACTION => {
                let pong: Pong = msg.decode().map_err(io::Error::other)?;
                self.last_pong = Some(pong.seq);
            }
            "connected" => self.connected = true,
            _ => {}
        }
        Ok(())
    }
}

impl GameClient for PollingClient {
    fn send_ping(&mut self, seq: u64) -> io::Result<()> {
        let frame = self
            .codec
            .encode(&Ping { seq }, DEFAULT_MAX_FRAME_LEN)
            .map_err(io::Error::other)?;
        let mut rest = &frame[..];
        while !rest.is_empty() {
            match self.sock.write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn pump(&mut self) -> io::Result<Option<u64>> {
        let mut chunk = [0u8; 8192];
        loop {
            match self.sock.read(&mut chunk) {
                Ok(0) => return Err(io::Error::other("server closed the connection")),
                Ok(n) => self.inbox.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        while self.inbox.len() >= 4 {
            let len =
                u32::from_be_bytes([self.inbox[0], self.inbox[1], self.inbox[2], self.inbox[3]]);
            let len = len as usize;
            if len > DEFAULT_MAX_FRAME_LEN {
                return Err(io::Error::other("frame too large"));
            }
            if self.inbox.len() < 4 + len {
                break;
            }
            self.inbox.advance(4);
            let payload = self.inbox.split_to(len).freeze();
            let msg = self.codec.decode_raw(payload).map_err(io::Error::other)?;
            self.handle(msg)?;
        }
        Ok(self.last_pong)
    }
}
