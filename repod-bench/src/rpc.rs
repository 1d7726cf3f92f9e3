//! The `rpc` workload: typed calls answered by the server, repod's requests against tarpc.
//!
//! Both sides serve the same call, `Call { seq, body }` answered with `CallReply { seq, body }`
//! (the body echoed, 64 bytes), from a server in its own process:
//!
//! * repod: a `#[repod::channel]` handler returning the reply, called with
//!   [`AsyncClient::request`](repod::client::AsyncClient::request);
//! * tarpc 0.38: a `#[tarpc::service]` over TCP with tarpc's serde transport (tokio-serde's
//!   bincode, length-delimited frames), each response spawned as tarpc's examples do, called
//!   through its generated client. Sockets use `TCP_NODELAY` on both sides, as repod's do.
//!
//! Two figures each: sequential calls on one connection (latency p50, p99), and calls per
//! second with 64 calls in flight on one connection.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use repod::client::AsyncClient;
use repod::server::Server;
use repod_core::{Codec, CodecKind};
use serde::{Deserialize, Serialize};
use tarpc::server::Channel as _;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::child::ServerProcess;
use crate::report;

/// The body each call carries and each reply echoes.
const BODY_LEN: usize = 64;

/// Calls in flight in the pipelined figure.
pub const IN_FLIGHT: usize = 64;

/// The request of both implementations.
#[derive(Debug, Clone, Serialize, Deserialize, repod::Message)]
#[action("call")]
#[reply(CallReply)]
pub struct Call {
    pub seq: u64,
    pub body: String,
}

/// The reply of both implementations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallReply {
    pub seq: u64,
    pub body: String,
}

fn call(seq: u64) -> Call {
    Call {
        seq,
        body: "x".repeat(BODY_LEN),
    }
}

fn check(seq: u64, reply: &CallReply) -> io::Result<()> {
    if reply.seq != seq || reply.body.len() != BODY_LEN {
        return Err(io::Error::other("a reply to another call"));
    }
    Ok(())
}

// ---- repod --------------------------------------------------------------------------------

#[derive(Default)]
struct RpcChannel;

#[repod::channel]
impl RpcChannel {
    #[action]
    fn call(&mut self, req: Call) -> CallReply {
        CallReply {
            seq: req.seq,
            body: req.body,
        }
    }
}

/// Serves repod's side (in the child process).
pub async fn serve_repod(codec: CodecKind) -> io::Result<()> {
    let server = Server::<RpcChannel>::builder()
        .codec(codec)
        .bind("127.0.0.1:0")
        .await
        .map_err(io::Error::other)?;
    crate::announce(server.local_addr());
    server.run().await.map_err(io::Error::other)
}

// ---- tarpc --------------------------------------------------------------------------------

#[tarpc::service]
trait RpcBench {
    /// Echoes the call.
    async fn call(req: Call) -> CallReply;
}

#[derive(Clone)]
struct TarpcServer;

impl RpcBench for TarpcServer {
    async fn call(self, _: tarpc::context::Context, req: Call) -> CallReply {
        CallReply {
            seq: req.seq,
            body: req.body,
        }
    }
}

/// Serves tarpc's side (in the child process).
pub async fn serve_tarpc() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    crate::announce(listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let transport = tarpc::serde_transport::new(
            Framed::new(stream, LengthDelimitedCodec::new()),
            tarpc::tokio_serde::formats::Bincode::default(),
        );
        let channel = tarpc::server::BaseChannel::with_defaults(transport);
        tokio::spawn(
            channel
                .execute(TarpcServer.serve())
                .for_each(|response| async move {
                    tokio::spawn(response);
                }),
        );
    }
}

async fn tarpc_client(addr: SocketAddr) -> io::Result<RpcBenchClient> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let transport = tarpc::serde_transport::new(
        Framed::new(stream, LengthDelimitedCodec::new()),
        tarpc::tokio_serde::formats::Bincode::default(),
    );
    Ok(RpcBenchClient::new(tarpc::client::Config::default(), transport).spawn())
}

// ---- the load -----------------------------------------------------------------------------

/// One implementation's figures.
#[derive(Debug, Clone, Copy)]
pub struct RpcFigures {
    pub p50_us: f64,
    pub p99_us: f64,
    pub calls_per_s: f64,
}

/// Which side is measured.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    Repod(CodecKind),
    Tarpc,
}

impl Side {
    pub fn label(self) -> String {
        match self {
            Side::Repod(codec) => format!("repod ({})", codec.name()),
            Side::Tarpc => "tarpc (bincode)".to_owned(),
        }
    }

    fn args(self) -> Vec<&'static str> {
        match self {
            Side::Repod(CodecKind::MsgPack) => {
                vec!["serve-rpc", "--impl", "repod", "--codec", "msgpack"]
            }
            Side::Repod(_) => vec!["serve-rpc", "--impl", "repod", "--codec", "bincode"],
            Side::Tarpc => vec!["serve-rpc", "--impl", "tarpc", "--codec", "bincode"],
        }
    }
}

/// Percentiles of latencies in nanoseconds, in microseconds.
fn percentiles(mut samples: Vec<u64>) -> (f64, f64) {
    samples.sort_unstable();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)] as f64 / 1e3;
    (pct(50), pct(99))
}

/// Runs both figures against a fresh server of `side`.
pub async fn measure(side: Side, duration: Duration) -> io::Result<RpcFigures> {
    let server = ServerProcess::start_with(&side.args()).await?;
    let result = match side {
        Side::Repod(codec) => measure_repod(server.addr, codec, duration).await,
        Side::Tarpc => measure_tarpc(server.addr, duration).await,
    };
    server.stop().await?;
    result
}

async fn measure_repod(
    addr: SocketAddr,
    codec: CodecKind,
    duration: Duration,
) -> io::Result<RpcFigures> {
    let client = AsyncClient::builder()
        .codec(codec)
        .connect_async(addr)
        .await
        .map_err(io::Error::other)?;
    let mut seq = 0u64;
    // Warm-up.
    for _ in 0..200 {
        seq += 1;
        let reply = client.request(&call(seq)).await.map_err(io::Error::other)?;
        check(seq, &reply)?;
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < duration {
        seq += 1;
        let t = Instant::now();
        let reply = client.request(&call(seq)).await.map_err(io::Error::other)?;
        samples.push(t.elapsed().as_nanos() as u64);
        check(seq, &reply)?;
    }
    let (p50_us, p99_us) = percentiles(samples);

    let mut in_flight = FuturesUnordered::new();
    let mut done = 0u64;
    let start = Instant::now();
    loop {
        while in_flight.len() < IN_FLIGHT && start.elapsed() < duration {
            seq += 1;
            let n = seq;
            let reply = client.request(&call(n));
            in_flight.push(async move { (n, reply.await) });
        }
        let Some((n, reply)) = in_flight.next().await else {
            break;
        };
        check(n, &reply.map_err(io::Error::other)?)?;
        done += 1;
    }
    let calls_per_s = done as f64 / start.elapsed().as_secs_f64();
    drop(client.close().await);
    Ok(RpcFigures {
        p50_us,
        p99_us,
        calls_per_s,
    })
}

async fn measure_tarpc(addr: SocketAddr, duration: Duration) -> io::Result<RpcFigures> {
    let client = tarpc_client(addr).await?;
    let ctx = tarpc::context::current;
    let mut seq = 0u64;
    for _ in 0..200 {
        seq += 1;
        let reply = client
            .call(ctx(), call(seq))
            .await
            .map_err(io::Error::other)?;
        check(seq, &reply)?;
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < duration {
        seq += 1;
        let t = Instant::now();
        let reply = client
            .call(ctx(), call(seq))
            .await
            .map_err(io::Error::other)?;
        samples.push(t.elapsed().as_nanos() as u64);
        check(seq, &reply)?;
    }
    let (p50_us, p99_us) = percentiles(samples);

    let mut in_flight = FuturesUnordered::new();
    let mut done = 0u64;
    let start = Instant::now();
    loop {
        while in_flight.len() < IN_FLIGHT && start.elapsed() < duration {
            seq += 1;
            let n = seq;
            let reply = client.call(ctx(), call(n));
            in_flight.push(async move { (n, reply.await) });
        }
        let Some((n, reply)) = in_flight.next().await else {
            break;
        };
        check(n, &reply.map_err(io::Error::other)?)?;
        done += 1;
    }
    let calls_per_s = done as f64 / start.elapsed().as_secs_f64();
    Ok(RpcFigures {
        p50_us,
        p99_us,
        calls_per_s,
    })
}

/// Prints the workload's table, a column per side, with the ratio repod (bincode) / tarpc.
pub fn print(rows: &[(Side, RpcFigures)]) {
    println!("### Typed calls (`rpc`): {BODY_LEN}-byte call echoed in the reply, one connection\n");
    let labels: Vec<String> = rows.iter().map(|(s, _)| s.label()).collect();
    println!(
        "| figure | {} | repod (bincode)/tarpc |",
        labels.join(" | ")
    );
    println!("|---|{}---:|", "---:|".repeat(rows.len()));
    let find = |f: fn(&RpcFigures) -> f64, bincode: bool| {
        rows.iter()
            .find(|(s, _)| match s {
                Side::Repod(CodecKind::Bincode) => bincode,
                Side::Tarpc => !bincode,
                Side::Repod(_) => false,
            })
            .map(|(_, r)| f(r))
    };
    let line = |name: &str, f: fn(&RpcFigures) -> f64, format: report::Format| {
        let cells: Vec<String> = rows.iter().map(|(_, r)| format(f(r))).collect();
        let ratio = match (find(f, true), find(f, false)) {
            (Some(r), Some(t)) if t > 0.0 => format!("{:.2}", r / t),
            _ => "n/a".to_owned(),
        };
        println!("| {name} | {} | {ratio} |", cells.join(" | "));
    };
    line("sequential, p50", |r| r.p50_us, report::micros);
    line("sequential, p99", |r| r.p99_us, report::micros);
    line(
        &format!("{IN_FLIGHT} in flight, calls/s"),
        |r| r.calls_per_s,
        report::rate,
    );
    println!();
}
