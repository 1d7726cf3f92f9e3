//! `repod-bench`: end-to-end figures for repod and for a plain tokio baseline, same run.
//!
//! ```text
//! cargo run --release -p repod-bench -- --quick
//! cargo run --release -p repod-bench -- --only rtt,throughput --codec bincode --duration 3
//! ```
//!
//! Every server runs in its own child process (this binary re-executed with the hidden `serve`
//! subcommand), the load generator in this one; each process has a 2-worker multi-thread tokio
//! runtime. The load generator ([`load`]) is the same hand-written client for every
//! implementation, so the ratio repod/baseline compares servers. The `rooms` workload
//! ([`rooms`]) runs its clients in several child processes of their own (the hidden
//! `rooms-client` subcommand). With `--transport ws` (feature `websocket`), the rtt and fanout
//! workloads also measure repod over WebSocket (`ws.rs`). See docs/performance.md.

mod baseline;
mod child;
mod game;
mod load;
mod proto;
mod repod_impl;
mod report;
mod rooms;
mod rpc;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "websocket")]
mod ws;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use clap::{Parser, Subcommand};
use repod_core::{Codec, CodecKind};

use crate::child::ServerProcess;
use crate::report::Table;

/// What a server child needs to know.
#[derive(Debug, Clone, Copy)]
pub struct ServeConfig {
    pub codec: CodecKind,
    /// Echo every `move` back to its sender.
    pub echo: bool,
    /// Run repod's dispatch loop in the child's `block_on` instead of as a spawned task.
    pub block_on: bool,
    /// Serve the rooms workload: tick and send every room its state.
    pub rooms: Option<rooms::RoomsConfig>,
    /// Join the repod cluster of the `redis-server` on this loopback port.
    pub cluster: Option<u16>,
}

/// Where a server reports the address it listens on.
pub type Ready = tokio::sync::oneshot::Sender<std::net::SocketAddr>;

/// A running server, as a future.
pub type Serving = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// A server implementation under test: serves the bench protocol ([`proto`]) on a listener.
pub trait Implementation: Sync {
    /// The name used on the command line and in tables.
    fn name(&self) -> &'static str;

    /// Whether this implementation can run in this build.
    fn available(&self) -> bool {
        true
    }

    /// Binds 127.0.0.1:0, sends the bound address through `ready`, then serves until the
    /// process (or the runtime) ends. Runs inside a tokio runtime.
    fn serve(&self, cfg: ServeConfig, ready: Ready) -> Serving;
}

struct Baseline;

impl Implementation for Baseline {
    fn name(&self) -> &'static str {
        "baseline"
    }

    fn serve(&self, cfg: ServeConfig, ready: Ready) -> Serving {
        Box::pin(baseline::serve(cfg, ready))
    }
}

/// A reference to one of the implementations.
pub type Impl = &'static dyn Implementation;

/// Every implementation, baseline first.
pub const IMPLEMENTATIONS: [Impl; 2] = [&Baseline, &repod_impl::Repod];

/// repod over WebSocket, for `--transport ws`; the rtt and fanout workloads only.
#[cfg(feature = "websocket")]
pub const WS: Option<Impl> = Some(&ws::RepodWs);
#[cfg(not(feature = "websocket"))]
pub const WS: Option<Impl> = None;

/// Every implementation's name, in the columns' order.
pub fn column_names() -> Vec<&'static str> {
    IMPLEMENTATIONS
        .iter()
        .chain(WS.iter())
        .map(|i| i.name())
        .collect()
}

fn implementation(name: &str) -> Option<Impl> {
    IMPLEMENTATIONS
        .iter()
        .chain(WS.iter())
        .copied()
        .find(|i| i.name() == name)
}

#[derive(Parser, Debug)]
#[command(
    name = "repod-bench",
    about = "End-to-end benchmarks: repod against a plain tokio baseline"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,

    /// Small counts: the whole run takes under a minute (1,000 connections for memory).
    #[arg(long)]
    quick: bool,

    /// Seconds per timed workload (rtt, throughput, echo) and implementation [default: 5, quick: 1].
    #[arg(long)]
    duration: Option<f64>,

    /// Codec(s) to run: bincode, msgpack or both.
    #[arg(long, default_value = "both")]
    codec: String,

    /// Workloads to run, comma-separated: rtt, client-rtt, client-pump, throughput, echo,
    /// fanout, memory, rooms, rpc; and rooms-cluster, which is not run unless named (it needs
    /// `--features cluster` and `redis-server`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rtt,client-rtt,client-pump,throughput,echo,fanout,memory,rooms,rpc"
    )]
    only: Vec<String>,

    /// Rooms workload: clients C in all [default: 10000, quick: 1000].
    #[arg(long)]
    room_clients: Option<usize>,

    /// Rooms workload: rooms R.
    #[arg(long, default_value_t = 100)]
    rooms: u32,

    /// Rooms workload: server ticks per second H.
    #[arg(long, default_value_t = 30)]
    room_hz: u32,

    /// Rooms workload: payload bytes S of each room's state.
    #[arg(long, default_value_t = 300)]
    room_state_bytes: usize,

    /// Rooms workload: client processes the clients are spread over.
    #[arg(long, default_value_t = 4)]
    room_procs: usize,

    /// Rooms workload: how the server schedules the rooms' sends, comma-separated: `burst`
    /// (every room in one tick) and/or `stagger` (room r at r/R of the period).
    #[arg(long, value_delimiter = ',', default_value = "burst,stagger")]
    room_modes: Vec<String>,

    /// Rooms workload: seconds of the measurement window [default: the larger of --duration
    /// and 5, quick: 2].
    #[arg(long)]
    room_seconds: Option<f64>,

    /// Idle connections for the memory workload [default: 1000,10000, quick: 1000].
    #[arg(long, value_delimiter = ',')]
    conns: Option<Vec<usize>>,

    /// Fan-out client counts K.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    fanout: Vec<usize>,

    /// Deliveries per fan-out run (broadcasts = deliveries / K) [default: 2000000, quick: 200000].
    #[arg(long)]
    deliveries: Option<u64>,

    /// Runs per figure; the tables show the median [default: 1].
    #[arg(long, default_value_t = 1)]
    runs: usize,

    /// Echo messages in flight.
    #[arg(long, default_value_t = 64)]
    window: usize,

    /// Broadcasts in flight beyond what every fan-out client has received.
    #[arg(long, default_value_t = 16)]
    fanout_window: u64,

    /// Run repod's dispatch loop on the server process's `block_on` thread (as
    /// `ServerBuilder::launch` does) instead of as a task on a runtime worker.
    #[arg(long)]
    repod_block_on: bool,

    /// Implementations to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "baseline,repod")]
    impls: Vec<String>,

    /// Also measure what TLS costs repod: round trips, throughput and connects over TLS
    /// against plain TCP to the same server (needs the `tls` feature:
    /// `cargo run --release -p repod-bench --features tls -- --tls`). `--only tls` runs
    /// this workload alone.
    #[arg(long)]
    tls: bool,

    /// `ws`: the rtt and fanout workloads also run repod over WebSocket (a `repod-ws` column
    /// next to repod over TCP, same run; needs the `websocket` feature). `tcp`: TCP only.
    #[arg(long, default_value = "tcp")]
    transport: String,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runs one server (used by the bench itself, in a child process).
    #[command(hide = true)]
    Serve {
        #[arg(long = "impl")]
        imp: String,
        #[arg(long)]
        codec: CodecKind,
        #[arg(long)]
        echo: bool,
        #[arg(long)]
        block_on: bool,
        /// Rooms workload: R (the server ticks only when set).
        #[arg(long)]
        rooms: Option<u32>,
        #[arg(long, default_value_t = 30)]
        hz: u32,
        #[arg(long, default_value_t = 300)]
        size: usize,
        #[arg(long)]
        stagger: bool,
        /// Join the cluster of the Redis on this loopback port (repod only).
        #[arg(long)]
        cluster_port: Option<u16>,
    },
    /// Runs the `rpc` workload's server, repod's or tarpc's (used by the bench itself).
    #[command(hide = true)]
    ServeRpc {
        #[arg(long = "impl")]
        imp: String,
        #[arg(long)]
        codec: CodecKind,
    },
    /// Runs repod's server with a TLS listener beside TCP (used by `--tls`).
    #[command(hide = true)]
    ServeTls {
        #[arg(long)]
        codec: CodecKind,
        #[arg(long)]
        echo: bool,
        /// The directory holding `cert.pem` and `key.pem`.
        #[arg(long)]
        dir: std::path::PathBuf,
    },
    /// Runs a share of the rooms workload's clients (used by the bench itself).
    #[command(hide = true)]
    RoomsClient {
        #[arg(long)]
        addr: std::net::SocketAddr,
        #[arg(long)]
        codec: CodecKind,
        #[arg(long)]
        first: usize,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        rooms: u32,
    },
}

fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

fn main() {
    let cli = Cli::parse();
    child::raise_nofile();
    let result = match cli.cmd {
        Some(Cmd::Serve {
            ref imp,
            codec,
            echo,
            block_on,
            rooms,
            hz,
            size,
            stagger,
            cluster_port,
        }) => serve(
            imp,
            ServeConfig {
                codec,
                echo,
                block_on,
                rooms: rooms.map(|rooms| rooms::RoomsConfig {
                    rooms,
                    hz,
                    size,
                    stagger,
                }),
                cluster: cluster_port,
            },
        ),
        Some(Cmd::RoomsClient {
            addr,
            codec,
            first,
            count,
            rooms,
        }) => rooms::client_main(addr, codec, first, count, rooms),
        Some(Cmd::ServeRpc { ref imp, codec }) => serve_rpc(imp, codec),
        Some(Cmd::ServeTls {
            codec,
            echo,
            ref dir,
        }) => serve_tls(codec, echo, dir),
        None => runtime().and_then(|rt| rt.block_on(bench(&cli))),
    };
    if let Err(e) = result {
        eprintln!("repod-bench: {e}");
        std::process::exit(1);
    }
}

fn serve(name: &str, cfg: ServeConfig) -> io::Result<()> {
    let imp = implementation(name)
        .ok_or_else(|| io::Error::other(format!("unknown implementation {name:?}")))?;
    // Built with `--features metrics`, the server records its metrics as a scraped one would.
    #[cfg(feature = "metrics")]
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(io::Error::other)?;
    // The parent closes our stdin to stop us; before that it may ask for the rooms
    // workload's send log with `OFFERED <t0> <t1>`.
    std::thread::spawn(|| {
        use std::io::BufRead;
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let window: Vec<u64> = line
                .strip_prefix("OFFERED ")
                .map(|r| r.split(' ').filter_map(|n| n.parse().ok()).collect())
                .unwrap_or_default();
            if let [t0, t1] = window[..] {
                let (deliveries, sends) = rooms::offered(t0, t1);
                use std::io::Write;
                let mut out = io::stdout().lock();
                let _ = writeln!(out, "OFFERED {deliveries} {sends}");
                let _ = out.flush();
            }
        }
        std::process::exit(0);
    });
    runtime()?.block_on(async {
        let (ready, addr) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            if let Ok(addr) = addr.await {
                announce(addr);
            }
        });
        imp.serve(cfg, ready).await
    })
}

/// Serves the `rpc` workload until the parent closes our stdin.
fn serve_rpc(name: &str, codec: CodecKind) -> io::Result<()> {
    std::thread::spawn(|| {
        use std::io::Read;
        let _ = io::stdin().lock().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    runtime()?.block_on(async {
        match name {
            "repod" => rpc::serve_repod(codec).await,
            "tarpc" => rpc::serve_tarpc().await,
            other => Err(io::Error::other(format!("unknown rpc server {other:?}"))),
        }
    })
}

/// Serves the `--tls` workload until the parent closes our stdin.
fn serve_tls(codec: CodecKind, echo: bool, dir: &std::path::Path) -> io::Result<()> {
    std::thread::spawn(|| {
        use std::io::Read;
        let _ = io::stdin().lock().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    #[cfg(feature = "tls")]
    return runtime()?.block_on(tls::serve(codec, echo, dir));
    #[cfg(not(feature = "tls"))]
    {
        let _ = (codec, echo, dir);
        Err(io::Error::other("built without the `tls` feature"))
    }
}

/// Tells the parent process where a server child listens (its first line of output).
pub fn announce(addr: std::net::SocketAddr) {
    use std::io::Write;
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "LISTENING {addr}");
    let _ = out.flush();
}

struct Plan {
    duration: Duration,
    rooms: rooms::RoomsPlan,
    codecs: Vec<CodecKind>,
    impls: Vec<Impl>,
    conns: Vec<usize>,
    deliveries: u64,
    runs: usize,
    block_on: bool,
    /// repod over WebSocket, when asked for and built in.
    ws: Option<Impl>,
}

impl Plan {
    fn serve(&self, codec: CodecKind, echo: bool) -> ServeConfig {
        ServeConfig {
            codec,
            echo,
            block_on: self.block_on,
            rooms: None,
            cluster: None,
        }
    }
}

async fn bench(cli: &Cli) -> io::Result<()> {
    let codecs = match cli.codec.as_str() {
        "both" => vec![CodecKind::Bincode, CodecKind::MsgPack],
        other => vec![other.parse().map_err(io::Error::other)?],
    };
    let mut impls = Vec::new();
    for name in &cli.impls {
        let imp = implementation(name)
            .ok_or_else(|| io::Error::other(format!("unknown implementation {name:?}")))?;
        if imp.available() {
            impls.push(imp);
        } else {
            eprintln!("note: {name} is not available in this build; its columns stay empty");
        }
    }
    let plan = &Plan {
        duration: Duration::from_secs_f64(cli.duration.unwrap_or(if cli.quick {
            1.0
        } else {
            5.0
        })),
        codecs,
        impls,
        conns: cli.conns.clone().unwrap_or(if cli.quick {
            vec![1000]
        } else {
            vec![1000, 10_000]
        }),
        deliveries: cli
            .deliveries
            .unwrap_or(if cli.quick { 200_000 } else { 2_000_000 }),
        runs: cli.runs.max(1),
        block_on: cli.repod_block_on,
        ws: match cli.transport.as_str() {
            "tcp" => None,
            "ws" if WS.is_none() => {
                eprintln!("note: --transport ws needs the `websocket` feature of repod-bench; running TCP only");
                None
            }
            "ws" => WS,
            other => {
                return Err(io::Error::other(format!(
                    "unknown transport {other:?} (tcp or ws)"
                )))
            }
        },
        rooms: rooms::RoomsPlan {
            server: rooms::RoomsConfig {
                rooms: cli.rooms.max(1),
                hz: cli.room_hz.max(1),
                size: cli.room_state_bytes,
                stagger: false,
            },
            clients: cli
                .room_clients
                .unwrap_or(if cli.quick { 1000 } else { 10_000 }),
            procs: cli.room_procs.max(1),
            window: Duration::from_secs_f64(cli.room_seconds.unwrap_or(if cli.quick {
                2.0
            } else {
                cli.duration.unwrap_or(5.0).max(5.0)
            })),
            warmup: Duration::from_secs(1),
            grace: Duration::from_secs(if cli.quick { 1 } else { 2 }),
        },
    };
    println!(
        "repod-bench: {} s per timed workload, {} core(s), codecs {:?}, implementations {:?}\n",
        plan.duration.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        plan.codecs.iter().map(|c| c.name()).collect::<Vec<_>>(),
        plan.impls
            .iter()
            .chain(plan.ws.iter())
            .map(|i| i.name())
            .collect::<Vec<_>>(),
    );
    let wants = |w: &str| cli.only.iter().any(|o| o == w);
    if wants("rtt") {
        latency(plan, Latency::Raw).await?;
    }
    if wants("client-rtt") {
        latency(plan, Latency::OwnClient).await?;
    }
    if wants("client-pump") {
        latency(plan, Latency::GameLoop).await?;
    }
    if wants("throughput") {
        let mut t = Table::new(
            "One-way throughput: `move` messages/s handled by the server",
            report::rate,
        );
        for &codec in &plan.codecs {
            t.row(codec.name(), &plan.impls, plan.runs, |imp| async move {
                let server = ServerProcess::start(imp, plan.serve(codec, false)).await?;
                let r = load::throughput(server.addr, codec, plan.duration).await;
                server.stop().await?;
                r
            })
            .await?;
        }
        t.print();
    }
    if wants("echo") {
        let title = format!(
            "Echo throughput: `move` round trips/s at the client, {} in flight",
            cli.window
        );
        let mut t = Table::new(&title, report::rate);
        for &codec in &plan.codecs {
            t.row(codec.name(), &plan.impls, plan.runs, |imp| async move {
                let server = ServerProcess::start(imp, plan.serve(codec, true)).await?;
                let r = load::echo(server.addr, codec, plan.duration, cli.window).await;
                server.stop().await?;
                r
            })
            .await?;
        }
        t.print();
    }
    if wants("fanout") {
        let title = format!(
            "Broadcast fan-out: `state` deliveries/s, {} deliveries per run",
            plan.deliveries
        );
        let mut t = Table::new(&title, report::rate);
        // With repod over WebSocket, the server's own CPU time per delivery too: the load
        // generator shares the machine, and its WebSocket client costs more than its TCP one.
        let mut cpu = Table::new(
            "Broadcast fan-out: server CPU time per delivery (µs; K connections' setup included)",
            |v| format!("{v:.2} µs"),
        );
        let impls: Vec<Impl> = plan.impls.iter().copied().chain(plan.ws).collect();
        for &codec in &plan.codecs {
            for &k in &cli.fanout {
                let ticks = (plan.deliveries / k as u64).max(1);
                let label = format!("{} K={k}", codec.name());
                let spent = std::cell::RefCell::new(Vec::<(&'static str, f64)>::new());
                t.row(&label, &impls, plan.runs, |imp| {
                    let spent = &spent;
                    async move {
                        let server = ServerProcess::start(imp, plan.serve(codec, false)).await?;
                        let pid = server.pid()?;
                        let before = child::cpu_seconds(pid)?;
                        let window = cli.fanout_window;
                        let r = match imp.name() {
                            #[cfg(feature = "websocket")]
                            "repod-ws" => ws::fanout(server.addr, codec, k, ticks, window).await,
                            _ => load::fanout(server.addr, codec, k, ticks, window).await,
                        };
                        let used = child::cpu_seconds(pid)? - before;
                        server.stop().await?;
                        let per_delivery = used * 1e6 / (ticks * k as u64) as f64;
                        spent.borrow_mut().push((imp.name(), per_delivery));
                        r
                    }
                })
                .await?;
                let spent = spent.into_inner();
                let medians: Vec<(&'static str, f64)> = impls
                    .iter()
                    .map(|imp| {
                        let mut v: Vec<f64> = spent
                            .iter()
                            .filter(|(n, _)| *n == imp.name())
                            .map(|(_, v)| *v)
                            .collect();
                        (imp.name(), report::median(&mut v))
                    })
                    .collect();
                cpu.push(&label, &medians);
            }
        }
        t.print();
        if plan.ws.is_some() {
            cpu.print();
        }
    }
    if wants("rooms") {
        rooms_workload(plan, &cli.room_modes).await?;
    }
    if wants("rpc") {
        rpc_workload(plan).await?;
    }
    if cli.tls || wants("tls") {
        #[cfg(feature = "tls")]
        tls::run(&plan.codecs, plan.duration, plan.runs, cli.window).await?;
        #[cfg(not(feature = "tls"))]
        return Err(io::Error::other(
            "--tls needs the `tls` feature: cargo run --release -p repod-bench --features tls -- --tls",
        ));
    }
    if wants("rooms-cluster") {
        rooms_cluster_workload(plan).await?;
    }
    if wants("memory") {
        let mut t = Table::new("Memory: server RSS per idle connection", report::bytes);
        for &codec in &plan.codecs {
            for &n in &plan.conns {
                let label = format!("{} {n} conns", codec.name());
                t.row(&label, &plan.impls, plan.runs, |imp| async move {
                    memory(plan, imp, codec, n).await
                })
                .await?;
            }
        }
        t.print();
    }
    Ok(())
}

/// The round-trip workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Latency {
    /// The raw load client against each server: compares servers.
    Raw,
    /// Each side's own async client: the raw tokio client for the baseline, repod's
    /// `AsyncClient` for repod.
    OwnClient,
    /// Each side's own game-loop client, pumped from a loop on its own thread (see [`game`]).
    GameLoop,
}

/// Round trips, sequential ping/pong on one connection: p50 and p99 tables.
///
/// The implementations take turns run by run (baseline, repod, baseline, repod, ...), so a
/// change in the machine's load between runs falls on both.
async fn latency(plan: &Plan, kind: Latency) -> io::Result<()> {
    let (t50, t99) = match kind {
        Latency::Raw => (
            "Round trip, p50 (µs): sequential ping/pong, one client",
            "Round trip, p99 (µs)",
        ),
        Latency::OwnClient => (
            "Round trip through each side's own client, p50 (µs): baseline client + server, repod `AsyncClient` + server",
            "Round trip through each side's own client, p99 (µs)",
        ),
        Latency::GameLoop => (
            "Game loop: round trip as the game sees it, p50: hand-written polling client + baseline server, repod `Client` + `pump` + server",
            "Game loop: round trip as the game sees it, p99",
        ),
    };
    let paces: &[Option<game::Pace>] = match kind {
        Latency::GameLoop => &[Some(game::Pace::Spin), Some(game::Pace::Hz60)],
        _ => &[None],
    };
    let mut p50 = Table::new(t50, report::micros);
    let mut p99 = Table::new(t99, report::micros);
    // repod over WebSocket, next to TCP, in the raw round-trip workload only.
    let impls: Vec<Impl> = match kind {
        Latency::Raw => plan.impls.iter().copied().chain(plan.ws).collect(),
        _ => plan.impls.clone(),
    };
    for &codec in &plan.codecs {
        for &pace in paces {
            let label = match pace {
                Some(pace) => format!("{} {}", codec.name(), pace.label()),
                None => codec.name().to_owned(),
            };
            let mut p50s = vec![Vec::new(); impls.len()];
            let mut p99s = vec![Vec::new(); impls.len()];
            for _ in 0..plan.runs {
                for (i, &imp) in impls.iter().enumerate() {
                    let server = ServerProcess::start(imp, plan.serve(codec, false)).await?;
                    let r = round_trips(kind, pace, imp, server.addr, codec, plan.duration).await;
                    server.stop().await?;
                    let r = r?;
                    eprintln!(
                        "  {label} {}: p50 {:.1} µs, p99 {:.1} µs over {} round trips",
                        imp.name(),
                        r.p50_us,
                        r.p99_us,
                        r.samples
                    );
                    p50s[i].push(r.p50_us);
                    p99s[i].push(r.p99_us);
                }
            }
            let names = impls.iter().map(|imp| imp.name());
            let r50: Vec<_> = names
                .clone()
                .zip(p50s.iter_mut().map(|v| report::median(v)))
                .collect();
            let r99: Vec<_> = names
                .zip(p99s.iter_mut().map(|v| report::median(v)))
                .collect();
            p50.push(&label, &r50);
            p99.push(&label, &r99);
        }
    }
    p50.print();
    p99.print();
    Ok(())
}

/// One run of a round-trip workload against `imp`'s server at `addr`.
async fn round_trips(
    kind: Latency,
    pace: Option<game::Pace>,
    imp: Impl,
    addr: std::net::SocketAddr,
    codec: CodecKind,
    dur: Duration,
) -> io::Result<load::Rtt> {
    let repod = imp.name() == "repod";
    #[cfg(feature = "websocket")]
    if imp.name() == "repod-ws" {
        return ws::rtt(addr, codec, dur, 1_000_000).await;
    }
    match kind {
        Latency::OwnClient if repod => load::rtt_repod_client(addr, codec, dur, 1_000_000).await,
        Latency::Raw | Latency::OwnClient => load::rtt(addr, codec, dur, 1_000_000).await,
        Latency::GameLoop => {
            let pace = pace.unwrap_or(game::Pace::Spin);
            // The game loop blocks its thread, as a game's does.
            let run = move || {
                if repod {
                    game::repod_client(addr, codec, pace, dur)
                } else {
                    game::baseline_client(addr, codec, pace, dur)
                }
            };
            tokio::task::spawn_blocking(run)
                .await
                .map_err(io::Error::other)?
        }
    }
}

/// The `rpc` workload: repod with each codec and tarpc, one after the other in every run (so
/// a busy moment of the machine hits them alike); medians over the runs.
async fn rpc_workload(plan: &Plan) -> io::Result<()> {
    let mut sides: Vec<rpc::Side> = plan.codecs.iter().map(|&c| rpc::Side::Repod(c)).collect();
    sides.push(rpc::Side::Tarpc);
    let mut figures: Vec<Vec<rpc::RpcFigures>> = vec![Vec::new(); sides.len()];
    for _ in 0..plan.runs {
        for (i, &side) in sides.iter().enumerate() {
            let r = rpc::measure(side, plan.duration)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("rpc ({}): {e}", side.label())))?;
            eprintln!(
                "  rpc {}: p50 {:.1} µs, p99 {:.1} µs, {} with {} in flight",
                side.label(),
                r.p50_us,
                r.p99_us,
                report::rate(r.calls_per_s),
                rpc::IN_FLIGHT
            );
            figures[i].push(r);
        }
    }
    let rows: Vec<(rpc::Side, rpc::RpcFigures)> = sides
        .iter()
        .zip(figures)
        .map(|(&side, runs)| {
            let pick = |f: fn(&rpc::RpcFigures) -> f64| {
                report::median(&mut runs.iter().map(f).collect::<Vec<_>>())
            };
            (
                side,
                rpc::RpcFigures {
                    p50_us: pick(|r| r.p50_us),
                    p99_us: pick(|r| r.p99_us),
                    calls_per_s: pick(|r| r.calls_per_s),
                },
            )
        })
        .collect();
    rpc::print(&rows);
    Ok(())
}

/// The rooms workload for every mode and codec, each implementation one after the other.
async fn rooms_workload(plan: &Plan, modes: &[String]) -> io::Result<()> {
    for mode in modes {
        let stagger = match mode.as_str() {
            "burst" => false,
            "stagger" => true,
            other => return Err(io::Error::other(format!("unknown room mode {other:?}"))),
        };
        let p = rooms::RoomsPlan {
            server: rooms::RoomsConfig {
                stagger,
                ..plan.rooms.server
            },
            ..plan.rooms
        };
        for &codec in &plan.codecs {
            let mut results = Vec::new();
            for &imp in &plan.impls {
                let serve = ServeConfig {
                    rooms: Some(p.server),
                    ..plan.serve(codec, false)
                };
                let r = rooms::run(imp, serve, p).await.map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("rooms ({} {} {mode}): {e}", imp.name(), codec.name()),
                    )
                })?;
                eprintln!(
                    "  rooms {mode} {} {}: offered {}, delivered {} ({:.4}), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, RSS {:.1} MiB (joined: {:.1} MiB), server CPU {:.2}, clients CPU {:.2} (busiest {:.2}), machine busy {:.2} of {:.1} cores",
                    codec.name(),
                    imp.name(),
                    report::rate(r.offered_per_s),
                    report::rate(r.delivered_per_s),
                    r.fraction(),
                    r.p50_us / 1e3,
                    r.p99_us / 1e3,
                    r.max_us / 1e3,
                    r.rss as f64 / 1048576.0,
                    r.rss_ready as f64 / 1048576.0,
                    r.server_cpu,
                    r.client_cpu_total,
                    r.client_cpu_max,
                    r.machine_cpu,
                    r.machine_cores,
                );
                results.push((imp.name(), r));
            }
            let title = format!(
                "Rooms ({}): {} clients in {} rooms, {} Hz, {}-byte states, {} client processes, {:.0} s window ({})",
                if stagger { "rooms staggered over the tick" } else { "every room in one tick" },
                p.clients,
                p.server.rooms,
                p.server.hz,
                p.server.size,
                p.procs,
                p.window.as_secs_f64(),
                codec.name()
            );
            rooms::print(&title, &results);
        }
    }
    Ok(())
}

/// The rooms workload on one repod node, then split over two nodes of a cluster, same run.
async fn rooms_cluster_workload(plan: &Plan) -> io::Result<()> {
    let p = plan.rooms;
    for &codec in &plan.codecs {
        let serve = ServeConfig {
            rooms: Some(p.server),
            ..plan.serve(codec, false)
        };
        let single = rooms::run(&repod_impl::Repod, serve, p).await?;
        let split = rooms::run_cluster(serve, p).await?;
        let title = format!(
            "Rooms over two nodes ({}): {} clients in {} rooms, {} Hz, {}-byte states, {} client processes, {:.0} s window",
            codec.name(),
            p.clients,
            p.server.rooms,
            p.server.hz,
            p.server.size,
            p.procs.max(2),
            p.window.as_secs_f64(),
        );
        rooms::print_cluster(&title, &single, &split);
    }
    Ok(())
}

/// Server RSS growth per connection after `n` idle connections were accepted and greeted.
async fn memory(plan: &Plan, imp: Impl, codec: CodecKind, n: usize) -> io::Result<f64> {
    let server = ServerProcess::start(imp, plan.serve(codec, false)).await?;
    // One connection first, so lazily built state (runtime threads, buffers) is in "before".
    let warm = load::Conn::open(server.addr, codec).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.rss()?;
    let conns = load::connect_many(server.addr, codec, n).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss()?;
    drop(conns);
    drop(warm);
    server.stop().await?;
    Ok(after.saturating_sub(before) as f64 / n as f64)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use repod_core::CodecKind;

    use super::*;

    /// Starts `imp` in this process's runtime and returns its address.
    async fn start(imp: Impl, codec: CodecKind, echo: bool) -> SocketAddr {
        let (ready, addr) = tokio::sync::oneshot::channel();
        let cfg = ServeConfig {
            codec,
            echo,
            block_on: false,
            rooms: None,
            cluster: None,
        };
        tokio::spawn(imp.serve(cfg, ready));
        addr.await.expect("server reports its address")
    }

    /// Every workload completes against every implementation, with tiny counts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workloads_run_against_every_implementation() {
        let short = Duration::from_millis(50);
        tokio::time::timeout(Duration::from_secs(60), async {
            for imp in IMPLEMENTATIONS {
                for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
                    let addr = start(imp, codec, false).await;
                    let rtt = load::rtt(addr, codec, short, 100).await.unwrap();
                    assert!(rtt.samples > 0 && rtt.p99_us >= rtt.p50_us);
                    assert!(load::throughput(addr, codec, short).await.unwrap() > 0.0);
                    assert!(load::fanout(addr, codec, 5, 20, 4).await.unwrap() > 0.0);
                    let echo = start(imp, codec, true).await;
                    assert!(load::echo(echo, codec, short, 8).await.unwrap() > 0.0);
                    let own = round_trips(Latency::OwnClient, None, imp, addr, codec, short);
                    assert!(own.await.unwrap().samples > 0);
                    for pace in [game::Pace::Spin, game::Pace::Hz60] {
                        let r = round_trips(Latency::GameLoop, Some(pace), imp, addr, codec, short)
                            .await
                            .unwrap();
                        assert!(r.samples > 0 && r.p99_us >= r.p50_us);
                    }
                }
            }
        })
        .await
        .expect("workloads finish in time");
    }

    /// repod over WebSocket runs the rtt and fanout workloads, with the `websocket` feature.
    #[cfg(feature = "websocket")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn websocket_workloads_run() {
        let short = Duration::from_millis(50);
        let imp = WS.expect("built with the websocket feature");
        tokio::time::timeout(Duration::from_secs(60), async {
            for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
                let addr = start(imp, codec, false).await;
                let r = round_trips(Latency::Raw, None, imp, addr, codec, short)
                    .await
                    .unwrap();
                assert!(r.samples > 0 && r.p99_us >= r.p50_us);
                assert!(ws::fanout(addr, codec, 5, 20, 4).await.unwrap() > 0.0);
            }
        })
        .await
        .expect("workloads finish in time");
    }

    /// Both implementations send each room only its own states, stamped and in tick order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rooms_servers_send_each_room_its_state() {
        use futures::{SinkExt, StreamExt};
        tokio::time::timeout(Duration::from_secs(60), async {
            for imp in IMPLEMENTATIONS {
                for (codec, stagger) in [
                    (CodecKind::Bincode, false),
                    (CodecKind::MsgPack, false),
                    (CodecKind::Bincode, true),
                ] {
                    let (ready, addr) = tokio::sync::oneshot::channel();
                    let cfg = ServeConfig {
                        codec,
                        echo: false,
                        block_on: false,
                        rooms: Some(rooms::RoomsConfig {
                            rooms: 3,
                            hz: 100,
                            size: 300,
                            stagger,
                        }),
                        cluster: None,
                    };
                    let server = tokio::spawn(imp.serve(cfg, ready));
                    let addr = addr.await.unwrap();
                    let mut conns = Vec::new();
                    for i in 0..6 {
                        let mut c = load::Conn::open(addr, codec).await.unwrap();
                        let room = rooms::room_of(i, 3);
                        c.wr.send(baseline::payload(codec, &proto::JoinRoom { room }))
                            .await
                            .unwrap();
                        conns.push((c, room));
                    }
                    for (c, room) in &mut conns {
                        let mut last = 0;
                        for _ in 0..5 {
                            let frame = c.rd.next().await.unwrap().unwrap().freeze();
                            // About S bytes: small integers take fewer bytes than large ones.
                            assert!(
                                frame.len().abs_diff(300) <= 8,
                                "{} {codec:?}: {}",
                                imp.name(),
                                frame.len()
                            );
                            let head = rooms::read_head(codec, frame).expect("a room_state");
                            assert_eq!(head.room, *room, "{}", imp.name());
                            assert!(head.sent_ns > last && head.sent_ns <= rooms::mono_ns());
                            last = head.sent_ns;
                        }
                    }
                    server.abort();
                }
            }
        })
        .await
        .expect("rooms servers answer in time");
    }

    #[test]
    fn median_takes_the_middle() {
        assert_eq!(report::median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(report::median(&mut [4.0, 1.0, 3.0, 2.0]), 2.0);
        assert_eq!(report::median(&mut [7.0]), 7.0);
    }

    #[test]
    fn reads_own_rss() {
        assert!(child::rss_of(std::process::id()).unwrap() > 0);
    }
}
