//! Soak test: hundreds of clients connect, misbehave and vanish while a few well-behaved ones
//! play on; afterwards the server must be back where it started.
//!
//! The long run is ignored by default:
//!
//! ```text
//! SOAK_SECONDS=20 SOAK_CLIENTS=200 cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! `quick_soak` runs the same scenario for about a second per codec with small counts, as part
//! of the normal test suite.
//!
//! What happens during a run:
//!
//! * well-behaved clients send windows of sequenced `echo` messages and must get every reply, in
//!   order; the test broadcasts sequenced `tick`s, and each of them must get every tick, in order;
//! * churning clients connect again and again, each time doing one of: a clean close, a reset
//!   (`SO_LINGER` 0), a half-close that keeps reading, flooding without reading (until dropped
//!   as a slow consumer), garbage bytes, a 4 GiB length announcement, half a frame then a
//!   reset, or nothing at all.
//!
//! Afterwards: no channel is left, `on_connect` and `on_disconnect` ran equally often, the
//! server runtime has as many live tasks as before the first client, the process has as many
//! open file descriptors as before, the live heap (counted exactly by a wrapping global
//! allocator) is back near its post-warm-up size, and so is the resident memory once glibc is
//! asked to return what it keeps for reuse. The slack allowed for each is documented on its
//! constant; every figure is printed (`--nocapture`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use repod::server::{Server, ServerHandle};
use repod::{Codec, CodecKind, FrameCodec, RawMessage};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio_util::codec::Framed;

// ---- protocol and server ----------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, repod::Message)]
#[action("echo")]
struct Echo {
    seq: u64,
    data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, repod::Message)]
#[action("tick")]
struct Tick {
    seq: u64,
    pad: String,
}

#[derive(Default)]
struct SoakChannel;

#[repod::channel]
impl SoakChannel {
    #[action]
    fn echo(&mut self, ctx: &mut repod::Context<'_, Self>, msg: Echo) {
        let _ = ctx.send(&msg);
    }
}

/// Counts of the server's `on_connect` and `on_disconnect` hooks.
#[derive(Default)]
struct Hooks {
    connects: AtomicU64,
    disconnects: AtomicU64,
}

// ---- settings ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Settings {
    codec: CodecKind,
    duration: Duration,
    /// Churning client tasks, each reconnecting in a loop.
    churners: usize,
    /// Well-behaved clients, connected for the whole run.
    players: usize,
    /// Echo messages a player sends before reading the replies.
    window: u64,
    tick_every: Duration,
    /// How long any single step may take before the test fails.
    step_timeout: Duration,
}

const KINDS: usize = 8;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Clean,
    Reset,
    HalfOpen,
    NonReader,
    Garbage,
    Oversized,
    HalfFrameReset,
    Silent,
}

impl Kind {
    fn all() -> [Kind; KINDS] {
        [
            Kind::Clean,
            Kind::Reset,
            Kind::HalfOpen,
            Kind::NonReader,
            Kind::Garbage,
            Kind::Oversized,
            Kind::HalfFrameReset,
            Kind::Silent,
        ]
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What the churners did, per kind.
#[derive(Default)]
struct ChurnStats {
    done: [AtomicU64; KINDS],
    connect_failed: AtomicU64,
}

// ---- measurements -----------------------------------------------------------------------------

/// The system allocator, counting the bytes live on the heap: a leak shows up here exactly,
/// whatever memory the allocator keeps for reuse (which RSS includes).
struct CountingAlloc;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; the counter only observes sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() {
            LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

fn live_kib() -> u64 {
    (LIVE_BYTES.load(Ordering::Relaxed) / 1024) as u64
}

/// Asks glibc to hand free memory at the top of its heaps back to the kernel, so RSS shows what
/// is in use rather than what the allocator keeps for later.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only releases free memory; it has no preconditions.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// A small xorshift generator: the churners need variety, not quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---- clients ----------------------------------------------------------------------------------

fn frame<M: repod::Message>(codec: CodecKind, msg: &M) -> Bytes {
    codec.encode(msg, usize::MAX).expect("encode")
}

/// A well-behaved client: checks that echoes and ticks arrive complete and in order.
struct Player {
    framed: Framed<TcpStream, FrameCodec>,
    codec: CodecKind,
    next_tick: u64,
    window: u64,
    step_timeout: Duration,
}

impl Player {
    async fn connect(addr: SocketAddr, settings: Settings) -> Player {
        let stream = TcpStream::connect(addr).await.expect("player connect");
        let mut player = Player {
            framed: Framed::new(stream, FrameCodec::default()),
            codec: settings.codec,
            next_tick: 0,
            window: settings.window,
            step_timeout: settings.step_timeout,
        };
        let greeting = player.recv().await;
        assert_eq!(greeting.action(), "connected");
        player
    }

    async fn recv(&mut self) -> RawMessage {
        let payload = tokio::time::timeout(self.step_timeout, self.framed.next())
            .await
            .expect("a player waited too long for a message")
            .expect("the server closed a well-behaved player")
            .expect("a valid frame");
        self.codec.decode_raw(payload).expect("a valid payload")
    }

    /// The next echo reply; ticks met on the way are checked and counted.
    async fn recv_echo(&mut self) -> Echo {
        loop {
            let raw = self.recv().await;
            match raw.action() {
                "tick" => self.tick(&raw),
                "echo" => return raw.decode().expect("echo body"),
                other => panic!("a player got an unexpected {other:?}"),
            }
        }
    }

    fn tick(&mut self, raw: &RawMessage) {
        let tick: Tick = raw.decode().expect("tick body");
        assert_eq!(tick.seq, self.next_tick, "a tick was lost or reordered");
        self.next_tick += 1;
    }

    /// Exchanges echo windows until `stop`, then reads ticks until `ticks` have arrived.
    async fn play(mut self, stop: Instant, ticks_sent: Arc<AtomicU64>, ticking: Arc<AtomicBool>) {
        let mut seq = 0;
        let data = "p".repeat(48);
        while Instant::now() < stop {
            for k in 0..self.window {
                let echo = Echo {
                    seq: seq + k,
                    data: data.clone(),
                };
                self.framed
                    .send(frame(self.codec, &echo).slice(4..))
                    .await
                    .expect("player send");
            }
            for k in 0..self.window {
                let echo = self.recv_echo().await;
                assert_eq!(echo.seq, seq + k, "an echo was lost or reordered");
                assert_eq!(echo.data, data);
            }
            seq += self.window;
        }
        while ticking.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let total = ticks_sent.load(Ordering::Acquire);
        while self.next_tick < total {
            let raw = self.recv().await;
            assert_eq!(raw.action(), "tick", "unexpected {raw:?}");
            self.tick(&raw);
        }
        assert!(seq > 0, "a player made no round trip");
        self.framed
            .get_mut()
            .shutdown()
            .await
            .expect("player shutdown");
    }
}

/// Reads and discards until the server closes the connection.
async fn drain(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// One connection of a churning client.
async fn churn_once(addr: SocketAddr, codec: CodecKind, kind: Kind, rng: &mut Rng) -> bool {
    let echo = |seq, len| {
        frame(
            codec,
            &Echo {
                seq,
                data: "c".repeat(len),
            },
        )
    };
    let stream = match kind {
        Kind::NonReader => {
            // A small receive buffer, so the server's side fills sooner.
            let socket = TcpSocket::new_v4().expect("socket");
            socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
            socket.connect(addr).await
        }
        _ => TcpStream::connect(addr).await,
    };
    let Ok(mut stream) = stream else {
        return false;
    };
    match kind {
        Kind::Clean => {
            let mut framed = Framed::new(stream, FrameCodec::default());
            for seq in 0..3 {
                let _ = framed.send(echo(seq, 16).slice(4..)).await;
            }
            let mut echoes = 0;
            while echoes < 3 {
                match framed.next().await {
                    Some(Ok(payload)) => {
                        let raw = codec.decode_raw(payload).expect("valid payload");
                        if raw.action() == "echo" {
                            echoes += 1;
                        }
                    }
                    _ => break,
                }
            }
            let stream = framed.get_mut();
            let _ = stream.shutdown().await;
            drain(stream).await;
        }
        Kind::Reset => {
            for seq in 0..2 {
                let _ = stream.write_all(&echo(seq, 16)).await;
            }
            let _ = stream.set_zero_linger();
        }
        Kind::HalfOpen => {
            let _ = stream.write_all(&echo(0, 16)).await;
            let _ = stream.shutdown().await;
            drain(&mut stream).await;
        }
        Kind::NonReader => {
            let big = echo(0, 4096);
            let until = Instant::now() + Duration::from_millis(300 + rng.below(700));
            while Instant::now() < until {
                let write =
                    tokio::time::timeout(Duration::from_millis(100), stream.write_all(&big));
                match write.await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break,
                    Err(_) => {}
                }
            }
            if rng.below(2) == 0 {
                let _ = stream.set_zero_linger();
            }
        }
        Kind::Garbage => {
            let len = 1 + rng.below(64) as usize;
            let garbage: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = stream.write_all(&garbage).await;
            let _ = stream.shutdown().await;
            drain(&mut stream).await;
        }
        Kind::Oversized => {
            let _ = stream.write_all(&[0xff, 0xff, 0xff, 0xf0, 1, 2, 3]).await;
            drain(&mut stream).await;
        }
        Kind::HalfFrameReset => {
            let whole = echo(0, 64);
            let _ = stream.write_all(&whole[..whole.len() / 2]).await;
            tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
            let _ = stream.set_zero_linger();
        }
        Kind::Silent => {
            if rng.below(2) == 0 {
                let _ = stream.set_zero_linger();
            }
        }
    }
    true
}

async fn churn(
    addr: SocketAddr,
    settings: Settings,
    index: usize,
    stop: Instant,
    stats: Arc<ChurnStats>,
) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1).wrapping_mul(0x2545_f491));
    let kinds = Kind::all();
    let mut round = index;
    while Instant::now() < stop {
        let kind = kinds[round % KINDS];
        round += 1 + rng.below(3) as usize;
        let step = churn_once(addr, settings.codec, kind, &mut rng);
        match tokio::time::timeout(settings.step_timeout, step).await {
            Ok(true) => {
                stats.done[kind as usize].fetch_add(1, Ordering::Relaxed);
            }
            Ok(false) => {
                stats.connect_failed.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => panic!("a {kind} client hung: the server did not close or answer it"),
        }
    }
}

// ---- the run ----------------------------------------------------------------------------------

/// The figures of one run.
#[derive(Debug)]
struct Report {
    connections: u64,
    per_kind: Vec<(Kind, u64)>,
    connect_failed: u64,
    ticks: u64,
    tasks_before: usize,
    tasks_after: usize,
    fds_before: usize,
    fds_after: usize,
    rss_start_kib: u64,
    rss_warm_kib: u64,
    rss_peak_kib: u64,
    rss_end_kib: u64,
    rss_trimmed_kib: u64,
    heap_start_kib: u64,
    heap_warm_kib: u64,
    heap_end_kib: u64,
    heap_final_kib: u64,
    elapsed: Duration,
}

fn runtime(name: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Waits up to `limit` for `cond`; returns whether it held.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Runs are measured process-wide (memory, descriptors), so they must not overlap.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(settings: Settings) -> Report {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let started = Instant::now();
    let rss_start_kib = status_kib("VmRSS");
    let heap_start_kib = live_kib();
    let server_rt = runtime("soak-server");
    let client_rt = runtime("soak-clients");

    let hooks = Arc::new(Hooks::default());
    let (on_connect, on_disconnect) = (hooks.clone(), hooks.clone());
    let builder = Server::<SoakChannel>::builder()
        .codec(settings.codec)
        .max_frame_len(64 * 1024)
        .max_connections(4 * settings.churners + settings.players + 16)
        .outbound_queue_bytes(256 * 1024)
        .outbound_queue_frames(1024)
        .on_connect(move |_, _| {
            on_connect.connects.fetch_add(1, Ordering::Relaxed);
        })
        .on_disconnect(move |_, _, _| {
            on_disconnect.disconnects.fetch_add(1, Ordering::Relaxed);
        });
    let server = server_rt
        .block_on(builder.bind("127.0.0.1:0"))
        .expect("bind");
    let addr = server.local_addr();
    let handle: ServerHandle<SoakChannel> = server.handle();
    let server_task = server_rt.spawn(server.run());
    let tasks_before = wait_for_tasks(&server_rt);

    // A short warm-up of every behaviour, so thread stacks, allocator arenas and buffers that
    // stay for the life of the process exist before the reference measurement.
    let warm_stats = Arc::new(ChurnStats::default());
    client_rt.block_on(async {
        let stop = Instant::now() + Duration::from_millis(300);
        let tasks: Vec<_> = (0..KINDS)
            .map(|i| tokio::spawn(churn(addr, settings, i, stop, warm_stats.clone())))
            .collect();
        for task in tasks {
            task.await.expect("warm-up churner");
        }
    });
    assert!(
        wait_until(settings.step_timeout, || handle.connection_count() == 0),
        "warm-up connections stayed open"
    );
    let heap_warm_kib = live_kib();
    trim_heap();
    let rss_warm_kib = status_kib("VmRSS");
    // Both runtimes and the listener are open now; every client socket is closed.
    let fds_before = open_fds();

    let stats = Arc::new(ChurnStats::default());
    let ticks_sent = Arc::new(AtomicU64::new(0));
    let ticking = Arc::new(AtomicBool::new(true));
    client_rt.block_on(async {
        let mut players = Vec::new();
        for _ in 0..settings.players {
            players.push(Player::connect(addr, settings).await);
        }
        let stop = Instant::now() + settings.duration;
        let ticker = {
            let (handle, ticks_sent, ticking) =
                (handle.clone(), ticks_sent.clone(), ticking.clone());
            let every = settings.tick_every;
            tokio::spawn(async move {
                let pad = "t".repeat(200);
                let mut seq = 0;
                while Instant::now() < stop {
                    let tick = Tick {
                        seq,
                        pad: pad.clone(),
                    };
                    handle.send_to_all(&tick).expect("server running");
                    seq += 1;
                    ticks_sent.store(seq, Ordering::Release);
                    tokio::time::sleep(every).await;
                }
                ticking.store(false, Ordering::Release);
            })
        };
        let churners: Vec<_> = (0..settings.churners)
            .map(|i| tokio::spawn(churn(addr, settings, i, stop, stats.clone())))
            .collect();
        let players: Vec<_> = players
            .into_iter()
            .map(|p| tokio::spawn(p.play(stop, ticks_sent.clone(), ticking.clone())))
            .collect();
        for task in churners.into_iter().chain(players).chain([ticker]) {
            task.await.expect("a client task failed");
        }
    });
    let rss_peak_kib = status_kib("VmHWM");

    // Everything the clients opened is closed; the server must notice all of it.
    let settled = wait_until(Duration::from_secs(10), || {
        handle.connection_count() == 0
            && hooks.connects.load(Ordering::Relaxed) == hooks.disconnects.load(Ordering::Relaxed)
            && server_rt.metrics().num_alive_tasks() == tasks_before
    });
    let connects = hooks.connects.load(Ordering::Relaxed);
    let disconnects = hooks.disconnects.load(Ordering::Relaxed);
    let tasks_after = server_rt.metrics().num_alive_tasks();
    assert!(
        settled,
        "server did not settle: {} channels, {connects} connects vs {disconnects} disconnects, \
         {tasks_after} tasks (was {tasks_before})",
        handle.connection_count()
    );
    let peers = server_rt.block_on(handle.peers()).expect("peers");
    assert!(peers.is_empty(), "channels left: {peers:?}");
    let fds_after = open_fds();
    let heap_end_kib = live_kib();
    let rss_end_kib = status_kib("VmRSS");
    trim_heap();
    let rss_trimmed_kib = status_kib("VmRSS");
    drop(client_rt);

    handle.shutdown();
    server_rt
        .block_on(server_task)
        .expect("server task")
        .expect("server run");
    drop(server_rt);
    drop(handle);
    let heap_final_kib = live_kib();

    let per_kind: Vec<(Kind, u64)> = Kind::all()
        .into_iter()
        .map(|k| (k, stats.done[k as usize].load(Ordering::Relaxed)))
        .collect();
    Report {
        connections: connects,
        per_kind,
        connect_failed: stats.connect_failed.load(Ordering::Relaxed),
        ticks: ticks_sent.load(Ordering::Relaxed),
        tasks_before,
        tasks_after,
        fds_before,
        fds_after,
        rss_start_kib,
        rss_warm_kib,
        rss_peak_kib,
        rss_end_kib,
        rss_trimmed_kib,
        heap_start_kib,
        heap_warm_kib,
        heap_end_kib,
        heap_final_kib,
        elapsed: started.elapsed(),
    }
}

/// The server's own tasks (run loop, accept loop), once they are up.
fn wait_for_tasks(rt: &Runtime) -> usize {
    wait_until(Duration::from_secs(5), || {
        rt.metrics().num_alive_tasks() >= 2
    });
    rt.metrics().num_alive_tasks()
}

/// Heap the idle server (and both runtimes) may hold beyond the post-warm-up figure, measured
/// exactly by the counting allocator. Structures sized by the peak number of concurrent
/// sockets (tokio's I/O slab, the hub's slot table) keep their capacity, which is a few hundred
/// bytes per concurrent socket; a leak of 32 bytes per connection would exceed this after the
/// 17,000-odd connections of the 20-second run.
const HEAP_IDLE_SLACK_KIB: u64 = 512;

/// Heap that may stay allocated once the server and both runtimes are gone: process-wide
/// tokio state created on first use (the signal registry, for one).
const HEAP_FINAL_SLACK_KIB: u64 = 256;

/// Resident memory the process may keep after a run, after `malloc_trim`, beyond the
/// post-warm-up figure. Without the trim glibc keeps most of the peak in its per-thread arenas
/// for reuse (the end figure is reported too); with it, what stays is partly filled pages and
/// allocator bookkeeping, a few MiB whatever the connection count.
const RSS_SLACK_KIB: u64 = 8 * 1024;

fn check(report: &Report, settings: Settings) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let kinds: Vec<String> = report
        .per_kind
        .iter()
        .map(|(kind, done)| format!("{kind} {done}"))
        .collect();
    println!(
        "soak {codec}: {secs:.1} s of churn, {churners} churners, {players} players, {elapsed:.1} s \
         in all\n  connections {conns} ({kinds}), failed connects {failed}, ticks {ticks}\n  \
         server tasks {tb} -> {ta}, open fds {fb} -> {fa}\n  \
         RSS start {rs:.1} MiB, after warm-up {rw:.1} MiB, peak {rp:.1} MiB, end {re:.1} MiB, \
         end after malloc_trim {rt:.1} MiB (slack {slack:.1} MiB)\n  \
         live heap start {hs} KiB, after warm-up {hw} KiB, end {he} KiB, after teardown {hf} KiB",
        codec = settings.codec,
        secs = settings.duration.as_secs_f64(),
        churners = settings.churners,
        players = settings.players,
        elapsed = report.elapsed.as_secs_f64(),
        conns = report.connections,
        kinds = kinds.join(", "),
        failed = report.connect_failed,
        ticks = report.ticks,
        tb = report.tasks_before,
        ta = report.tasks_after,
        fb = report.fds_before,
        fa = report.fds_after,
        rs = mib(report.rss_start_kib),
        rw = mib(report.rss_warm_kib),
        rp = mib(report.rss_peak_kib),
        re = mib(report.rss_end_kib),
        rt = mib(report.rss_trimmed_kib),
        hs = report.heap_start_kib,
        hw = report.heap_warm_kib,
        he = report.heap_end_kib,
        hf = report.heap_final_kib,
        slack = mib(RSS_SLACK_KIB),
    );
    for (kind, done) in &report.per_kind {
        assert!(*done > 0, "no {kind} client ran");
    }
    assert!(report.ticks > 0);
    assert_eq!(report.tasks_after, report.tasks_before, "leaked tasks");
    assert_eq!(
        report.fds_after, report.fds_before,
        "leaked file descriptors"
    );
    assert!(
        report.heap_final_kib <= report.heap_start_kib + HEAP_FINAL_SLACK_KIB,
        "heap not freed after teardown: {} KiB at the start, {} KiB after",
        report.heap_start_kib,
        report.heap_final_kib
    );
    assert!(
        report.heap_end_kib <= report.heap_warm_kib + HEAP_IDLE_SLACK_KIB,
        "the idle server holds more heap than after warm-up: {} KiB then, {} KiB now",
        report.heap_warm_kib,
        report.heap_end_kib
    );
    assert!(
        report.rss_trimmed_kib <= report.rss_warm_kib + RSS_SLACK_KIB,
        "resident memory did not come back: {} KiB after warm-up, {} KiB at the end (peak {} KiB)",
        report.rss_warm_kib,
        report.rss_trimmed_kib,
        report.rss_peak_kib
    );
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a valid value")),
        Err(_) => default,
    }
}

#[test]
#[ignore = "long: run with --release -- --ignored --nocapture; SOAK_SECONDS sets the length"]
fn soak() {
    let codec: CodecKind = env_or("SOAK_CODEC", CodecKind::Bincode);
    let settings = Settings {
        codec,
        duration: Duration::from_secs(env_or("SOAK_SECONDS", 20)),
        churners: env_or("SOAK_CLIENTS", 200),
        players: env_or("SOAK_PLAYERS", 8),
        window: 8,
        tick_every: Duration::from_millis(20),
        step_timeout: Duration::from_secs(20),
    };
    let report = run(settings);
    check(&report, settings);
}

#[test]
fn quick_soak() {
    for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
        let settings = Settings {
            codec,
            duration: Duration::from_millis(1200),
            churners: 24,
            players: 3,
            window: 4,
            tick_every: Duration::from_millis(10),
            step_timeout: Duration::from_secs(15),
        };
        let report = run(settings);
        check(&report, settings);
    }
}
