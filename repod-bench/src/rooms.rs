//! The rooms workload: C clients spread over R rooms; the server ticks at H Hz and sends each
//! room a state of S bytes carrying its send instant.
//!
//! The clients run in several child processes (this binary re-executed with the hidden
//! `rooms-client` subcommand), each a single-threaded tokio runtime holding its share of the
//! connections. Server and clients read the same clock, `CLOCK_MONOTONIC`, so a client turns
//! the `sent_ns` of every state it receives into a tick-to-delivery latency. Clients read only
//! `sent_ns` and the room number (see [`read_head`]).
//!
//! The run: start the server; start the client processes, which connect, join their rooms and
//! report `READY` once every connection has received a state; pick a measurement window
//! `[t0, t1)` a little later and send it to every client. A delivery counts when its `sent_ns`
//! lies in the window and it arrives before `t1` + grace. The server logs, per room and tick,
//! the send instant and the room's size: the deliveries it offered in the window. CPU time of
//! every process over the window comes from `/proc/<pid>/stat`.

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::Stdio;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use repod_core::{Codec, CodecKind, Message};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::child::{cpu_seconds, machine_cpu_seconds, ServerProcess};
use crate::load::Conn;
use crate::proto::{JoinRoom, RoomHead, RoomState};
use crate::{Impl, ServeConfig};

/// The server side of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomsConfig {
    /// R: how many rooms.
    pub rooms: u32,
    /// H: ticks per second.
    pub hz: u32,
    /// S: payload bytes of each state.
    pub size: usize,
    /// Spread the rooms' sends over the tick period (room `r` at `r / R` of it) instead of
    /// sending every room at once.
    pub stagger: bool,
}

impl RoomsConfig {
    /// The tick period.
    pub fn period(&self) -> Duration {
        Duration::from_secs(1) / self.hz.max(1)
    }

    /// How often the server's timer fires: once per period, or every millisecond (tokio's
    /// timer resolution) when the rooms are staggered.
    pub fn timer(&self) -> Duration {
        if self.stagger {
            self.period().min(Duration::from_millis(1))
        } else {
            self.period()
        }
    }

    /// The send schedule of every room.
    pub fn schedule(&self) -> Schedule {
        let period = self.period().as_nanos() as u64;
        let rooms = u64::from(self.rooms.max(1));
        // The first sends one period from now, as the first tick of a timer.
        let start = mono_ns() + period;
        let due = (0..rooms)
            .map(|r| {
                if self.stagger {
                    start + r * period / rooms
                } else {
                    start
                }
            })
            .collect();
        Schedule { period, due }
    }
}

/// When each room is due to be sent its next state.
pub struct Schedule {
    period: u64,
    due: Vec<u64>,
}

impl Schedule {
    /// Calls `send(room)` for every room due at `now` (each at most once; a room more than a
    /// period late skips the missed sends) and schedules its next send.
    pub fn run(&mut self, now: u64, mut send: impl FnMut(u32)) {
        for (room, due) in (0u32..).zip(self.due.iter_mut()) {
            if *due <= now {
                send(room);
                while *due <= now {
                    *due += self.period;
                }
            }
        }
    }
}

/// The whole workload.
#[derive(Debug, Clone, Copy)]
pub struct RoomsPlan {
    pub server: RoomsConfig,
    /// C: clients in all.
    pub clients: usize,
    /// Client processes the clients are spread over.
    pub procs: usize,
    /// The measurement window.
    pub window: Duration,
    /// Time after `READY` before the window opens.
    pub warmup: Duration,
    /// How long after the window a state may still arrive and count.
    pub grace: Duration,
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock every process of the workload shares.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the struct we pass and has no other effect.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_MONOTONIC is always available on Linux");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

async fn sleep_until_ns(t: u64) {
    let now = mono_ns();
    if t > now {
        tokio::time::sleep(Duration::from_nanos(t - now)).await;
    }
}

/// The padding that brings a [`RoomState`]'s payload to about `size` bytes: exactly for a
/// state of room 0 at tick 1, a few bytes more for later ticks and higher room numbers,
/// whose integers take more bytes.
pub fn pad(codec: CodecKind, size: usize) -> String {
    let sent_ns = mono_ns();
    let len = |pad: &str| {
        let state = RoomState {
            sent_ns,
            room: 0,
            tick: 1,
            pad,
        };
        crate::baseline::payload(codec, &state).len()
    };
    let mut n = size.saturating_sub(len(""));
    // The string's own length prefix grows with it: step down until it fits.
    while n > 0 && len(&"x".repeat(n)) > size {
        n -= 1;
    }
    "x".repeat(n)
}

/// The room each client index joins.
pub fn room_of(index: usize, rooms: u32) -> u32 {
    (index % rooms.max(1) as usize) as u32
}

/// Every (send instant, recipients) of the server's room sends, for the `OFFERED` query.
static SENDS: Mutex<Vec<(u64, u32)>> = Mutex::new(Vec::new());

/// Logs one room send: its instant and how many members the room had.
pub fn record_send(sent_ns: u64, recipients: usize) {
    SENDS
        .lock()
        .expect("send log lock")
        .push((sent_ns, recipients as u32));
}

/// Deliveries offered and room sends made with a send instant in `[t0, t1)`.
pub fn offered(t0: u64, t1: u64) -> (u64, u64) {
    let sends = SENDS.lock().expect("send log lock");
    let mut deliveries = 0;
    let mut count = 0;
    for &(_, n) in sends.iter().filter(|(t, _)| (t0..t1).contains(t)) {
        deliveries += u64::from(n);
        count += 1;
    }
    (deliveries, count)
}

/// Reads a bincode varint (standard configuration): one byte below 251, else a marker byte
/// and 2, 4 or 8 little-endian bytes. Returns the value and the bytes used.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let le = |n: usize| -> Option<u64> {
        let bytes = b.get(1..1 + n)?;
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(bytes);
        Some(u64::from_le_bytes(v))
    };
    match *b.first()? {
        x @ 0..=250 => Some((u64::from(x), 1)),
        251 => Some((le(2)?, 3)),
        252 => Some((le(4)?, 5)),
        253 => Some((le(8)?, 9)),
        _ => None,
    }
}

/// Reads `sent_ns` and the room of a `room_state` payload, and nothing else: with bincode
/// the two leading varints of the body; with MessagePack, the two keys (the others skipped).
pub fn read_head(codec: CodecKind, payload: bytes::Bytes) -> Option<RoomHead> {
    let raw = codec.decode_raw(payload).ok()?;
    if raw.action() != RoomState::ACTION {
        return None;
    }
    match codec {
        CodecKind::Bincode => {
            let body = raw.body();
            let (sent_ns, used) = varint(body)?;
            let (room, _) = varint(&body[used..])?;
            Some(RoomHead {
                sent_ns,
                room: u32::try_from(room).ok()?,
            })
        }
        CodecKind::MsgPack => raw.decode().ok(),
    }
}

/// Latencies in whole microseconds, one bucket per microsecond up to [`Histogram::SPAN`].
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    /// Samples at or above `SPAN` µs.
    over: u64,
    max_ns: u64,
    count: u64,
}

impl Histogram {
    /// Latencies of one second and more land in one overflow bucket (their maximum is kept).
    pub const SPAN: usize = 1_000_000;

    pub fn new() -> Histogram {
        Histogram {
            buckets: vec![0; Self::SPAN],
            over: 0,
            max_ns: 0,
            count: 0,
        }
    }

    pub fn add(&mut self, ns: u64) {
        let us = (ns / 1000) as usize;
        match self.buckets.get_mut(us) {
            Some(b) => *b += 1,
            None => self.over += 1,
        }
        self.max_ns = self.max_ns.max(ns);
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max_us(&self) -> f64 {
        self.max_ns as f64 / 1e3
    }

    /// The `p`-th percentile in µs (the upper edge of its bucket).
    pub fn percentile_us(&self, p: f64) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        let rank = ((self.count as f64 * p / 100.0).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (us, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return (us + 1) as f64;
            }
        }
        self.max_us()
    }

    /// `count over max_ns us:n,us:n,…` (non-empty buckets only).
    fn to_line(&self) -> String {
        let mut line = format!("{} {} {}", self.count, self.over, self.max_ns);
        let mut sep = ' ';
        for (us, &n) in self.buckets.iter().enumerate().filter(|(_, &n)| n > 0) {
            line.push(sep);
            line.push_str(&format!("{us}:{n}"));
            sep = ',';
        }
        line
    }

    fn merge_line(&mut self, line: &str) -> Option<()> {
        let mut parts = line.split(' ');
        self.count += parts.next()?.parse::<u64>().ok()?;
        self.over += parts.next()?.parse::<u64>().ok()?;
        self.max_ns = self.max_ns.max(parts.next()?.parse().ok()?);
        if let Some(buckets) = parts.next() {
            for pair in buckets.split(',') {
                let (us, n) = pair.split_once(':')?;
                let us: usize = us.parse().ok()?;
                *self.buckets.get_mut(us)? += n.parse::<u64>().ok()?;
            }
        }
        Some(())
    }
}

/// What one client process measured.
#[derive(Default)]
struct ClientStats {
    hist: Option<Histogram>,
    /// States received for a room the connection is not in.
    misrouted: u64,
    /// Connections that have received their first state.
    ready: usize,
    /// The measurement window and the deadline, once known.
    window: Option<(u64, u64, u64)>,
    /// States received after the window opened (any send instant).
    after_open: u64,
}

/// `repod-bench rooms-client`: opens `count` connections (client indexes `first..`), each in
/// room `index % rooms`, and measures what they receive. Talks to the parent on stdin/stdout.
pub fn client_main(
    addr: SocketAddr,
    codec: CodecKind,
    first: usize,
    count: usize,
    rooms: u32,
) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, client(addr, codec, first, count, rooms))
}

async fn client(
    addr: SocketAddr,
    codec: CodecKind,
    first: usize,
    count: usize,
    rooms: u32,
) -> io::Result<()> {
    let stats = Rc::new(RefCell::new(ClientStats {
        hist: Some(Histogram::new()),
        ..ClientStats::default()
    }));
    let ready = Rc::new(tokio::sync::Notify::new());
    let mut opened = 0;
    while opened < count {
        // Few handshakes at a time: a burst beyond the server's listen backlog makes the
        // kernel send SYN cookies, and a connection whose final ACK was dropped hangs.
        let batch = (count - opened).min(CONNECT_BATCH);
        let conns = futures::future::join_all((0..batch).map(|_| open(addr, codec))).await;
        for conn in conns {
            let mut conn = conn?;
            let room = room_of(first + opened, rooms);
            conn.wr
                .send(crate::baseline::payload(codec, &JoinRoom { room }))
                .await?;
            opened += 1;
            let (stats, ready) = (stats.clone(), ready.clone());
            tokio::task::spawn_local(async move {
                let Conn { mut rd, wr } = conn;
                let _keep_open = wr;
                let mut first_state = true;
                while let Some(Ok(frame)) = rd.next().await {
                    let now = mono_ns();
                    let Some(head) = read_head(codec, frame.freeze()) else {
                        continue;
                    };
                    let mut s = stats.borrow_mut();
                    if head.room != room {
                        s.misrouted += 1;
                    }
                    if first_state {
                        first_state = false;
                        s.ready += 1;
                        ready.notify_one();
                    }
                    if let Some((t0, t1, deadline)) = s.window {
                        if now >= t0 {
                            s.after_open += 1;
                        }
                        if (t0..t1).contains(&head.sent_ns) && now < deadline {
                            if let Some(h) = s.hist.as_mut() {
                                h.add(now.saturating_sub(head.sent_ns));
                            }
                        }
                    }
                }
            });
        }
    }
    while stats.borrow().ready < count {
        tokio::time::timeout(Duration::from_secs(60), ready.notified())
            .await
            .map_err(|_| io::Error::other("connections got no state within 60 s"))?;
    }
    say("READY")?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let line = stdin
        .next_line()
        .await?
        .ok_or_else(|| io::Error::other("no START from the parent"))?;
    let nums: Vec<u64> = line
        .strip_prefix("START ")
        .ok_or_else(|| io::Error::other(format!("expected START, got {line:?}")))?
        .split(' ')
        .filter_map(|n| n.parse().ok())
        .collect();
    let [t0, t1, deadline] = nums[..] else {
        return Err(io::Error::other(format!("bad START line {line:?}")));
    };
    stats.borrow_mut().window = Some((t0, t1, deadline));
    sleep_until_ns(deadline).await;
    let mut s = stats.borrow_mut();
    let hist = s.hist.take().expect("histogram");
    say(&format!(
        "RESULT {} {} {}",
        s.misrouted,
        s.after_open,
        hist.to_line()
    ))?;
    // Exit without closing thousands of sockets one by one.
    std::process::exit(0);
}

/// Handshakes in flight per client process.
const CONNECT_BATCH: usize = 32;

/// Opens a connection and reads its greeting, retrying a connection that stays silent.
async fn open(addr: SocketAddr, codec: CodecKind) -> io::Result<Conn> {
    let mut last = None;
    for _ in 0..5 {
        match tokio::time::timeout(Duration::from_secs(5), Conn::open(addr, codec)).await {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(e)) => last = Some(e),
            Err(_) => last = Some(io::Error::other("no greeting within 5 s")),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("cannot connect")))
}

fn say(line: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// A running client process.
struct ClientProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl ClientProcess {
    fn start(
        addr: SocketAddr,
        codec: CodecKind,
        first: usize,
        count: usize,
        rooms: u32,
    ) -> io::Result<ClientProcess> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("rooms-client")
            .args(["--addr", &addr.to_string(), "--codec", codec.name()])
            .args(["--first", &first.to_string(), "--count", &count.to_string()])
            .args(["--rooms", &rooms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        Ok(ClientProcess {
            child,
            stdin,
            stdout,
        })
    }

    async fn expect(&mut self, prefix: &str, limit: Duration) -> io::Result<String> {
        let line = tokio::time::timeout(limit, self.stdout.next_line())
            .await
            .map_err(|_| {
                io::Error::other(format!("a client process sent no {prefix} in {limit:?}"))
            })??
            .ok_or_else(|| io::Error::other(format!("a client process exited before {prefix}")))?;
        line.strip_prefix(prefix)
            .map(|rest| rest.trim_start().to_owned())
            .ok_or_else(|| io::Error::other(format!("expected {prefix}, got {line:?}")))
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }
}

/// The figures of one run.
#[derive(Debug, Clone)]
pub struct RoomsResult {
    /// C × H.
    pub nominal_per_s: f64,
    pub offered_per_s: f64,
    pub delivered_per_s: f64,
    pub ticks_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub rss: u64,
    /// Server RSS once every client had joined and received a first state.
    pub rss_ready: u64,
    /// CPU of the server process over the window, in cores.
    pub server_cpu: f64,
    /// CPU of the busiest client process over the window, in cores.
    pub client_cpu_max: f64,
    /// CPU of all client processes together, in cores.
    pub client_cpu_total: f64,
    /// CPU busy on the whole machine (every process, the kernel's softirq work included),
    /// in cores.
    pub machine_cpu: f64,
    /// Cores of the machine, as `/proc/stat` counts them over the window.
    pub machine_cores: f64,
    pub misrouted: u64,
    /// Deliveries counted, and offered, in the window.
    pub delivered: u64,
    pub offered: u64,
}

impl RoomsResult {
    pub fn fraction(&self) -> f64 {
        if self.offered == 0 {
            0.0
        } else {
            self.delivered as f64 / self.offered as f64
        }
    }
}

/// One run of the workload against one implementation.
pub async fn run(imp: Impl, serve: ServeConfig, plan: RoomsPlan) -> io::Result<RoomsResult> {
    let codec = serve.codec;
    let mut server = ServerProcess::start(imp, serve).await?;
    let procs = plan.procs.clamp(1, plan.clients.max(1));
    let mut clients = Vec::with_capacity(procs);
    for p in 0..procs {
        let first = p * plan.clients / procs;
        let last = (p + 1) * plan.clients / procs;
        clients.push(ClientProcess::start(
            server.addr,
            codec,
            first,
            last - first,
            plan.server.rooms,
        )?);
    }
    for c in &mut clients {
        c.expect("READY", Duration::from_secs(180)).await?;
    }
    let rss_ready = server.rss()?;
    let t0 = mono_ns() + plan.warmup.as_nanos() as u64;
    let t1 = t0 + plan.window.as_nanos() as u64;
    let deadline = t1 + plan.grace.as_nanos() as u64;
    for c in &mut clients {
        c.stdin
            .write_all(format!("START {t0} {t1} {deadline}\n").as_bytes())
            .await?;
        c.stdin.flush().await?;
    }
    let pids: Vec<u32> = clients.iter().map(ClientProcess::pid).collect();
    let spid = server.pid()?;
    sleep_until_ns(t0).await;
    let machine_before = machine_cpu_seconds()?;
    let server_before = cpu_seconds(spid)?;
    let clients_before: Vec<f64> = pids
        .iter()
        .map(|&p| cpu_seconds(p))
        .collect::<io::Result<_>>()?;
    sleep_until_ns(t1).await;
    let machine_after = machine_cpu_seconds()?;
    let server_after = cpu_seconds(spid)?;
    let clients_after: Vec<f64> = pids
        .iter()
        .map(|&p| cpu_seconds(p))
        .collect::<io::Result<_>>()?;
    let rss = server.rss()?;
    let secs = plan.window.as_secs_f64();
    let client_cpu: Vec<f64> = clients_before
        .iter()
        .zip(&clients_after)
        .map(|(b, a)| (a - b) / secs)
        .collect();

    let mut hist = Histogram::new();
    let mut misrouted = 0;
    for c in &mut clients {
        let rest = c
            .expect("RESULT", plan.grace + Duration::from_secs(60))
            .await?;
        let (m, rest) = rest
            .split_once(' ')
            .ok_or_else(|| io::Error::other("bad RESULT"))?;
        let (_after_open, rest) = rest
            .split_once(' ')
            .ok_or_else(|| io::Error::other("bad RESULT"))?;
        misrouted += m.parse::<u64>().map_err(io::Error::other)?;
        hist.merge_line(rest)
            .ok_or_else(|| io::Error::other("bad histogram in RESULT"))?;
    }
    let answer = server.query(&format!("OFFERED {t0} {t1}")).await?;
    let (offered, sends) = answer
        .strip_prefix("OFFERED ")
        .and_then(|r| r.split_once(' '))
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        .ok_or_else(|| io::Error::other(format!("server said {answer:?}")))?;
    server.stop().await?;
    for mut c in clients {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.child.wait()).await;
    }
    Ok(RoomsResult {
        nominal_per_s: plan.clients as f64 * f64::from(plan.server.hz),
        offered_per_s: offered as f64 / secs,
        delivered_per_s: hist.count() as f64 / secs,
        ticks_per_s: sends as f64 / f64::from(plan.server.rooms.max(1)) / secs,
        p50_us: hist.percentile_us(50.0),
        p99_us: hist.percentile_us(99.0),
        max_us: hist.max_us(),
        rss,
        rss_ready,
        server_cpu: (server_after - server_before) / secs,
        client_cpu_max: client_cpu.iter().copied().fold(0.0, f64::max),
        client_cpu_total: client_cpu.iter().sum(),
        machine_cpu: (machine_after.0 - machine_before.0) / secs,
        machine_cores: (machine_after.1 - machine_before.1) / secs,
        misrouted,
        delivered: hist.count(),
        offered,
    })
}

/// A `redis-server` of the bench's own on a free loopback port, killed on drop.
struct RedisProcess {
    child: Child,
    port: u16,
}

impl RedisProcess {
    async fn start() -> io::Result<RedisProcess> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| io::Error::other(format!("cannot run redis-server: {e}")))?;
        for _ in 0..500 {
            if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                use tokio::io::AsyncReadExt;
                let mut answer = [0u8; 7];
                if s.write_all(b"PING\r\n").await.is_ok()
                    && s.read_exact(&mut answer).await.is_ok()
                    && &answer == b"+PONG\r\n"
                {
                    return Ok(RedisProcess { child, port });
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(io::Error::other("redis-server did not answer within 10 s"))
    }
}

/// The figures of one run over two nodes: node A ticks every room; the clients are split
/// between A (local deliveries) and B (every state crosses Redis).
#[derive(Debug, Clone)]
pub struct ClusterRoomsResult {
    pub offered_per_s: f64,
    /// Ticks/s node A achieved (room sends / rooms / window).
    pub ticks_per_s: f64,
    /// Deliveries/s to the clients of node A, which ticks.
    pub local_per_s: f64,
    /// Deliveries/s to the clients of node B: frames that crossed Redis.
    pub cross_per_s: f64,
    pub local: (f64, f64, f64),
    pub cross: (f64, f64, f64),
    pub fraction: f64,
    pub cpu_a: f64,
    pub cpu_b: f64,
    pub cpu_redis: f64,
    pub misrouted: u64,
}

/// One run of the workload over two repod nodes sharing a local `redis-server`.
pub async fn run_cluster(serve: ServeConfig, plan: RoomsPlan) -> io::Result<ClusterRoomsResult> {
    let codec = serve.codec;
    let redis = RedisProcess::start().await?;
    let repod: Impl = &crate::repod_impl::Repod;
    let mut a = ServerProcess::start(
        repod,
        ServeConfig {
            cluster: Some(redis.port),
            ..serve
        },
    )
    .await?;
    let b = ServerProcess::start(
        repod,
        ServeConfig {
            cluster: Some(redis.port),
            rooms: None,
            ..serve
        },
    )
    .await?;
    let procs = plan.procs.max(2).min(plan.clients.max(2));
    let mut clients = Vec::with_capacity(procs);
    for p in 0..procs {
        let first = p * plan.clients / procs;
        let last = (p + 1) * plan.clients / procs;
        let addr = if p % 2 == 0 { a.addr } else { b.addr };
        clients.push(ClientProcess::start(
            addr,
            codec,
            first,
            last - first,
            plan.server.rooms,
        )?);
    }
    for c in &mut clients {
        c.expect("READY", Duration::from_secs(180)).await?;
    }
    let t0 = mono_ns() + plan.warmup.as_nanos() as u64;
    let t1 = t0 + plan.window.as_nanos() as u64;
    let deadline = t1 + plan.grace.as_nanos() as u64;
    for c in &mut clients {
        c.stdin
            .write_all(format!("START {t0} {t1} {deadline}\n").as_bytes())
            .await?;
        c.stdin.flush().await?;
    }
    let pids = [a.pid()?, b.pid()?, redis.child.id().unwrap_or(0)];
    sleep_until_ns(t0).await;
    let before: Vec<f64> = pids
        .iter()
        .map(|&p| cpu_seconds(p))
        .collect::<io::Result<_>>()?;
    sleep_until_ns(t1).await;
    let after: Vec<f64> = pids
        .iter()
        .map(|&p| cpu_seconds(p))
        .collect::<io::Result<_>>()?;
    let secs = plan.window.as_secs_f64();
    let mut hists = [Histogram::new(), Histogram::new()];
    let mut misrouted = 0;
    for (p, c) in clients.iter_mut().enumerate() {
        let rest = c
            .expect("RESULT", plan.grace + Duration::from_secs(60))
            .await?;
        let mut parts = rest.splitn(3, ' ');
        let m = parts.next().ok_or_else(|| io::Error::other("bad RESULT"))?;
        let _after_open = parts.next();
        let rest = parts.next().ok_or_else(|| io::Error::other("bad RESULT"))?;
        misrouted += m.parse::<u64>().map_err(io::Error::other)?;
        hists[p % 2]
            .merge_line(rest)
            .ok_or_else(|| io::Error::other("bad histogram in RESULT"))?;
    }
    let answer = a.query(&format!("OFFERED {t0} {t1}")).await?;
    let (offered, sends) = answer
        .strip_prefix("OFFERED ")
        .and_then(|r| r.split_once(' '))
        .and_then(|(d, s)| Some((d.parse::<u64>().ok()?, s.parse::<u64>().ok()?)))
        .ok_or_else(|| io::Error::other(format!("node A said {answer:?}")))?;
    a.stop().await?;
    b.stop().await?;
    for mut c in clients {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.child.wait()).await;
    }
    drop(redis);
    let figures = |h: &Histogram| (h.percentile_us(50.0), h.percentile_us(99.0), h.max_us());
    let delivered = hists[0].count() + hists[1].count();
    Ok(ClusterRoomsResult {
        offered_per_s: offered as f64 / secs,
        ticks_per_s: sends as f64 / f64::from(plan.server.rooms.max(1)) / secs,
        local_per_s: hists[0].count() as f64 / secs,
        cross_per_s: hists[1].count() as f64 / secs,
        local: figures(&hists[0]),
        cross: figures(&hists[1]),
        fraction: if offered == 0 {
            0.0
        } else {
            delivered as f64 / offered as f64
        },
        cpu_a: (after[0] - before[0]) / secs,
        cpu_b: (after[1] - before[1]) / secs,
        cpu_redis: (after[2] - before[2]) / secs,
        misrouted,
    })
}

/// Prints the single node and the two-node split side by side.
pub fn print_cluster(title: &str, single: &RoomsResult, split: &ClusterRoomsResult) {
    println!("### {title}\n");
    println!("| figure | one node | two nodes |");
    println!("|---|---:|---:|");
    let rate = crate::report::rate;
    println!(
        "| offered deliveries/s | {} | {} |",
        rate(single.offered_per_s),
        rate(split.offered_per_s)
    );
    println!(
        "| ticks/s achieved | {:.1} | {:.1} |",
        single.ticks_per_s, split.ticks_per_s
    );
    println!(
        "| delivered/s, local (clients of the ticking node) | {} | {} |",
        rate(single.delivered_per_s),
        rate(split.local_per_s)
    );
    println!(
        "| delivered/s, cross-node (clients of the other node) | n/a | {} |",
        rate(split.cross_per_s)
    );
    println!(
        "| fraction delivered | {:.4} | {:.4} |",
        single.fraction(),
        split.fraction
    );
    for (label, one, local, cross) in [
        ("p50", single.p50_us, split.local.0, split.cross.0),
        ("p99", single.p99_us, split.local.1, split.cross.1),
        ("max", single.max_us, split.local.2, split.cross.2),
    ] {
        println!(
            "| tick-to-delivery {label}, local | {} | {} |",
            ms(one),
            ms(local)
        );
        println!(
            "| tick-to-delivery {label}, cross-node (added vs one node) | n/a | {} (+{}) |",
            ms(cross),
            ms(cross - one)
        );
    }
    println!(
        "| server CPU (cores) | {:.2} | A {:.2}, B {:.2}, redis {:.2} |",
        single.server_cpu, split.cpu_a, split.cpu_b, split.cpu_redis
    );
    println!(
        "\nStates received for another room: one node {}, two nodes {}.\n",
        single.misrouted, split.misrouted
    );
}

/// Prints one codec's figures as a Markdown table: a row per figure, a column per
/// implementation.
pub fn print(title: &str, results: &[(&'static str, RoomsResult)]) {
    let get = |name: &str| results.iter().find(|(n, _)| *n == name).map(|(_, r)| r);
    let names: Vec<&str> = crate::IMPLEMENTATIONS.iter().map(|i| i.name()).collect();
    println!("### {title}\n");
    println!("| figure | {} | repod/baseline |", names.join(" | "));
    println!("|---|{}---:|", "---:|".repeat(names.len()));
    type Row = (&'static str, fn(&RoomsResult) -> f64, fn(f64) -> String);
    let rows: [Row; 15] = [
        (
            "nominal deliveries/s (C × H)",
            |r| r.nominal_per_s,
            crate::report::rate,
        ),
        (
            "offered deliveries/s",
            |r| r.offered_per_s,
            crate::report::rate,
        ),
        (
            "delivered deliveries/s",
            |r| r.delivered_per_s,
            crate::report::rate,
        ),
        ("fraction delivered", RoomsResult::fraction, |v| {
            format!("{:.4}", v)
        }),
        ("ticks/s achieved", |r| r.ticks_per_s, |v| format!("{v:.1}")),
        ("tick-to-delivery p50", |r| r.p50_us, ms),
        ("tick-to-delivery p99", |r| r.p99_us, ms),
        ("tick-to-delivery max", |r| r.max_us, ms),
        (
            "server RSS, all clients joined",
            |r| r.rss_ready as f64,
            mib,
        ),
        ("server RSS, end of the window", |r| r.rss as f64, mib),
        (
            "server CPU (cores)",
            |r| r.server_cpu,
            |v| format!("{v:.2}"),
        ),
        (
            "client processes CPU, total (cores)",
            |r| r.client_cpu_total,
            |v| format!("{v:.2}"),
        ),
        (
            "whole machine CPU busy (cores)",
            |r| r.machine_cpu,
            |v| format!("{v:.2}"),
        ),
        (
            "rest: other processes, softirq (cores)",
            |r| (r.machine_cpu - r.server_cpu - r.client_cpu_total).max(0.0),
            |v| format!("{v:.2}"),
        ),
        (
            "busiest client process CPU (cores)",
            |r| r.client_cpu_max,
            |v| format!("{v:.2}"),
        ),
    ];
    for (label, f, fmt) in rows {
        let cells: Vec<String> = names
            .iter()
            .map(|n| get(n).map_or("n/a".to_owned(), |r| fmt(f(r))))
            .collect();
        let ratio = match (get("repod"), get("baseline")) {
            (Some(r), Some(b)) if f(b) != 0.0 => format!("{:.2}", f(r) / f(b)),
            _ => "n/a".to_owned(),
        };
        println!("| {label} | {} | {ratio} |", cells.join(" | "));
    }
    let misrouted: Vec<String> = results
        .iter()
        .map(|(n, r)| format!("{n} {}", r.misrouted))
        .collect();
    println!(
        "\nStates received for another room: {}.\n",
        misrouted.join(", ")
    );
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / 1048576.0)
}

fn ms(us: f64) -> String {
    format!("{:.2} ms", us / 1e3)
}

/// Merges per-process histograms (used by the tests).
#[cfg(test)]
fn roundtrip(h: &Histogram) -> Histogram {
    let mut out = Histogram::new();
    out.merge_line(&h.to_line()).expect("valid line");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_head_of_a_room_state_with_both_codecs() {
        for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
            for size in [0, 64, 300, 1000] {
                let pad = pad(codec, size);
                for (sent_ns, room) in [(0, 0), (250, 7), (1 << 20, 300), (u64::MAX, u32::MAX)] {
                    let state = RoomState {
                        sent_ns,
                        room,
                        tick: 12,
                        pad: &pad,
                    };
                    let payload = crate::baseline::payload(codec, &state);
                    if size >= 64 && sent_ns > u64::from(u32::MAX) {
                        assert!(
                            payload.len().abs_diff(size) <= 16,
                            "{codec:?} {size}: {}",
                            payload.len()
                        );
                    }
                    let head = read_head(codec, payload).expect("a room_state");
                    assert_eq!((head.sent_ns, head.room), (sent_ns, room), "{codec:?}");
                }
            }
        }
    }

    #[test]
    fn histogram_percentiles_and_merge() {
        let mut h = Histogram::new();
        for us in 1..=100u64 {
            h.add(us * 1000 + 500);
        }
        h.add(5_000_000_000);
        let h = roundtrip(&h);
        assert_eq!(h.count(), 101);
        assert_eq!(h.percentile_us(50.0), 52.0);
        assert_eq!(h.percentile_us(99.0), 101.0);
        assert_eq!(h.max_us(), 5_000_000.0);
    }

    #[test]
    fn offered_counts_the_window() {
        record_send(10, 5);
        record_send(20, 7);
        record_send(30, 9);
        assert_eq!(offered(10, 30), (12, 2));
    }

    #[test]
    fn schedules_rooms_at_once_or_spread_over_the_period() {
        let cfg = |stagger| RoomsConfig {
            rooms: 4,
            hz: 10,
            size: 0,
            stagger,
        };
        let due = |s: &mut Schedule, now| {
            let mut sent = Vec::new();
            s.run(now, |r| sent.push(r));
            sent
        };
        let mut burst = cfg(false).schedule();
        let start = burst.due[0];
        assert!(due(&mut burst, start - 1).is_empty());
        assert_eq!(due(&mut burst, start), [0, 1, 2, 3]);
        assert!(due(&mut burst, start + 1).is_empty());
        // Three periods late: one send each, then back on the grid.
        assert_eq!(due(&mut burst, start + 300_000_000), [0, 1, 2, 3]);
        assert_eq!(burst.due[0], start + 400_000_000);

        let mut spread = cfg(true).schedule();
        let start = spread.due[0];
        assert_eq!(due(&mut spread, start), [0]);
        assert_eq!(due(&mut spread, start + 25_000_000), [1]);
        assert_eq!(due(&mut spread, start + 75_000_000), [2, 3]);
        assert_eq!(due(&mut spread, start + 100_000_000), [0]);
        assert_eq!(cfg(true).timer(), Duration::from_millis(1));
        assert_eq!(cfg(false).timer(), Duration::from_millis(100));
    }

    #[test]
    fn mono_clock_moves_forward() {
        let a = mono_ns();
        let b = mono_ns();
        assert!(b >= a && a > 0);
    }
}
