//! `--tls`: what TLS costs repod, against plain TCP to the same server in the same run.
//!
//! One repod server child (the bench's own channel, as in the other workloads) serves plain
//! TCP on its main address and TLS on a second one (`listen_tls`), with a certificate made for
//! the run. Every figure is measured over both, plain first, then TLS, run after run:
//!
//! * round trips through repod's `AsyncClient`, p50 and p99;
//! * one-way throughput: the hand-written load client of [`load`](crate::load) writing
//!   batches of `move`s as fast as the server takes them;
//! * echo throughput: `move`s echoed back, `window` in flight (both directions encrypted);
//! * connect: from `connect_async` to the server's `connected` greeting, TCP and TLS
//!   handshakes included, p50.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use repod::tls::{TlsClientConfig, TlsServerConfig};
use repod::AsyncClient;
use repod_core::{Codec, CodecKind, Message};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::baseline::{frame_codec, payload};
use crate::child::ServerProcess;
use crate::load::{summarize, Rtt};
use crate::proto::{Move, Ping, Pong};
use crate::report;

/// Longest any single wait may take before the workload gives up.
const STALL: Duration = Duration::from_secs(30);

/// Connects measured per run and transport.
const CONNECTS: usize = 200;

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

async fn stall<T>(f: impl std::future::Future<Output = T>) -> io::Result<T> {
    tokio::time::timeout(STALL, f)
        .await
        .map_err(|_| err("workload stalled for 30 s"))
}

/// The run's certificates: a self-signed certificate for `localhost`, in PEM files of a
/// directory of its own.
struct Certs {
    dir: PathBuf,
    client: TlsClientConfig,
}

impl Certs {
    fn make() -> io::Result<Certs> {
        let key = rcgen::KeyPair::generate().map_err(io::Error::other)?;
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .and_then(|params| params.self_signed(&key))
            .map_err(io::Error::other)?;
        let dir = std::env::temp_dir().join(format!("repod-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("cert.pem"), cert.pem())?;
        std::fs::write(dir.join("key.pem"), key.serialize_pem())?;
        let client = TlsClientConfig::from_ca_pem(cert.pem().as_bytes())
            .and_then(|tls| tls.server_name("localhost"))
            .map_err(io::Error::other)?;
        Ok(Certs { dir, client })
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The hidden `serve-tls` subcommand: repod's bench server on 127.0.0.1, plain TCP on its
/// main address and TLS (the certificate in `dir`) on another. Prints `TLS <addr>`, then
/// `LISTENING <addr>`, and serves until the process ends.
pub async fn serve(codec: CodecKind, echo: bool, dir: &Path) -> io::Result<()> {
    let tls = TlsServerConfig::from_pem_files(dir.join("cert.pem"), dir.join("key.pem"))
        .map_err(io::Error::other)?;
    let server = crate::repod_impl::builder(codec, echo)
        .listen_tls("127.0.0.1:0", tls)
        .bind("127.0.0.1:0")
        .await
        .map_err(io::Error::other)?;
    let tls_addr = server.tls_addr().ok_or_else(|| err("no TLS listener"))?;
    {
        use std::io::Write;
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "TLS {tls_addr}");
        let _ = out.flush();
    }
    crate::announce(server.local_addr());
    match tokio::spawn(server.run()).await {
        Ok(r) => r.map_err(io::Error::other),
        Err(e) => Err(io::Error::other(e)),
    }
}

/// Starts a `serve-tls` child.
async fn start(codec: CodecKind, echo: bool, certs: &Certs) -> io::Result<ServerProcess> {
    let dir = certs.dir.to_string_lossy().into_owned();
    let mut args = vec!["serve-tls", "--codec", codec.name(), "--dir", dir.as_str()];
    if echo {
        args.push("--echo");
    }
    let server = ServerProcess::start_with(&args).await?;
    if server.tls_addr.is_none() {
        return Err(err("the TLS server child announced no TLS address"));
    }
    Ok(server)
}

/// Plain TCP or TLS, as the load clients see it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Plain,
    Tls,
}

/// A byte stream to the server: a socket, or TLS over one.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Opens a raw connection (the load client's own, no repod client) over `transport`.
async fn open(
    transport: Transport,
    server: &ServerProcess,
    certs: &Certs,
) -> io::Result<Box<dyn Io>> {
    match transport {
        Transport::Plain => {
            let sock = TcpStream::connect(server.addr).await?;
            sock.set_nodelay(true)?;
            Ok(Box::new(sock))
        }
        Transport::Tls => {
            let addr = server.tls_addr.ok_or_else(|| err("no TLS address"))?;
            let sock = TcpStream::connect(addr).await?;
            sock.set_nodelay(true)?;
            let connector = tokio_rustls::TlsConnector::from(certs.client.rustls().clone());
            let name = repod::tls::rustls::pki_types::ServerName::try_from("localhost")
                .map_err(io::Error::other)?;
            Ok(Box::new(connector.connect(name, sock).await?))
        }
    }
}

/// The address and client builder of `transport`.
fn client(
    transport: Transport,
    server: &ServerProcess,
    certs: &Certs,
    codec: CodecKind,
) -> io::Result<(SocketAddr, repod::ClientBuilder)> {
    let builder = AsyncClient::builder().codec(codec);
    Ok(match transport {
        Transport::Plain => (server.addr, builder),
        Transport::Tls => (
            server.tls_addr.ok_or_else(|| err("no TLS address"))?,
            builder.tls(certs.client.clone()),
        ),
    })
}

/// Waits for an event of type `M` on a repod client.
async fn next<M: Message + serde::de::DeserializeOwned>(client: &mut AsyncClient) -> io::Result<M> {
    loop {
        let event = stall(client.recv()).await?.ok_or_else(|| err("closed"))?;
        if event.is::<M>() {
            return event.decode().map_err(io::Error::other);
        }
    }
}

/// Sequential ping/pong through repod's `AsyncClient` for `dur`.
async fn rtt(addr: SocketAddr, builder: &repod::ClientBuilder, dur: Duration) -> io::Result<Rtt> {
    let mut client = builder
        .connect_async(addr)
        .await
        .map_err(io::Error::other)?;
    for seq in 0..200 {
        client.send(&Ping { seq }).map_err(io::Error::other)?;
        next::<Pong>(&mut client).await?;
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    let mut seq = 1000;
    while start.elapsed() < dur {
        let t = Instant::now();
        client.send(&Ping { seq }).map_err(io::Error::other)?;
        let pong: Pong = next(&mut client).await?;
        samples.push(t.elapsed().as_nanos() as u64);
        if pong.seq != seq {
            return Err(err("pong out of order"));
        }
        seq += 1;
    }
    client.close().await;
    Ok(summarize(samples))
}

/// `CONNECTS` connects, one after the other, each until the server's greeting; p50 in µs.
async fn connects(addr: SocketAddr, builder: &repod::ClientBuilder) -> io::Result<f64> {
    let mut samples = Vec::with_capacity(CONNECTS);
    for _ in 0..CONNECTS {
        let t = Instant::now();
        let mut client = stall(builder.connect_async(addr))
            .await?
            .map_err(io::Error::other)?;
        next::<repod::Connected>(&mut client).await?;
        samples.push(t.elapsed().as_nanos() as u64);
        client.close().await;
    }
    Ok(summarize(samples).p50_us)
}

/// Splits a raw connection into framed halves and reads the server's greeting.
async fn framed(
    io: Box<dyn Io>,
    codec: CodecKind,
) -> io::Result<(
    FramedRead<tokio::io::ReadHalf<Box<dyn Io>>, tokio_util::codec::LengthDelimitedCodec>,
    tokio::io::WriteHalf<Box<dyn Io>>,
)> {
    let (rd, wr) = tokio::io::split(io);
    let mut rd = FramedRead::new(rd, frame_codec());
    let first = stall(rd.next()).await?.ok_or_else(|| err("closed"))??;
    let raw = codec
        .decode_raw(first.freeze())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if raw.action() != "connected" {
        return Err(err(format!("expected `connected`, got `{}`", raw.action())));
    }
    Ok((rd, wr))
}

/// One client writes batches of `move`s as fast as the server takes them for `dur`, then a
/// `ping`; the `pong` says how many the server handled. Moves/s.
async fn throughput(io: Box<dyn Io>, codec: CodecKind, dur: Duration) -> io::Result<f64> {
    const BATCH: u64 = 512;
    let (mut rd, mut wr) = framed(io, codec).await?;
    let mut batch = BytesMut::new();
    for seq in 0..BATCH {
        let body = payload(
            codec,
            &Move {
                x: seq as f32,
                y: -(seq as f32),
                seq,
            },
        );
        batch.put_u32(body.len() as u32);
        batch.extend_from_slice(&body);
    }
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < dur {
        wr.write_all(&batch).await?;
        sent += BATCH;
    }
    let ping = payload(codec, &Ping { seq: u64::MAX });
    wr.write_all(&(ping.len() as u32).to_be_bytes()).await?;
    wr.write_all(&ping).await?;
    wr.flush().await?;
    let pong: Pong = loop {
        let frame = stall(rd.next()).await?.ok_or_else(|| err("closed"))??;
        let raw = codec
            .decode_raw(frame.freeze())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if raw.action() == Pong::ACTION {
            break raw.decode().map_err(io::Error::other)?;
        }
    };
    let elapsed = start.elapsed();
    if pong.moves != sent {
        return Err(err(format!(
            "server handled {} moves of {sent}",
            pong.moves
        )));
    }
    Ok(sent as f64 / elapsed.as_secs_f64())
}

/// `move`s echoed back, at most `window` in flight, for `dur`. Round trips/s.
async fn echo(io: Box<dyn Io>, codec: CodecKind, dur: Duration, window: usize) -> io::Result<f64> {
    let (mut rd, wr) = framed(io, codec).await?;
    let mut wr = FramedWrite::new(wr, frame_codec());
    let credit = Arc::new(Semaphore::new(window));
    let credit_r = credit.clone();
    let reader = tokio::spawn(async move {
        while let Some(frame) = stall(rd.next()).await? {
            let raw = codec
                .decode_raw(frame?.freeze())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if raw.action() == Move::ACTION {
                credit_r.add_permits(1);
            }
        }
        Ok::<(), io::Error>(())
    });
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < dur {
        for _ in 0..256 {
            if credit.available_permits() == 0 {
                SinkExt::<Bytes>::flush(&mut wr).await?;
            }
            stall(credit.acquire())
                .await?
                .map_err(|_| err("closed"))?
                .forget();
            let m = Move {
                x: sent as f32,
                y: 0.5,
                seq: sent,
            };
            wr.feed(payload(codec, &m)).await?;
            sent += 1;
        }
    }
    SinkExt::<Bytes>::flush(&mut wr).await?;
    stall(credit.acquire_many(window as u32))
        .await?
        .map_err(|_| err("closed"))?
        .forget();
    let elapsed = start.elapsed();
    reader.abort();
    Ok(sent as f64 / elapsed.as_secs_f64())
}

/// Figures of one measure, plain and TLS, over the runs.
#[derive(Default)]
struct Pair {
    plain: Vec<f64>,
    tls: Vec<f64>,
}

impl Pair {
    fn push(&mut self, transport: Transport, v: f64) {
        match transport {
            Transport::Plain => self.plain.push(v),
            Transport::Tls => self.tls.push(v),
        }
    }

    fn row(&mut self, label: &str, format: report::Format) -> String {
        let plain = report::median(&mut self.plain);
        let tls = report::median(&mut self.tls);
        let ratio = if plain > 0.0 {
            format!("{:.2}", tls / plain)
        } else {
            "n/a".to_owned()
        };
        format!(
            "| {label} | {} | {} | {ratio} |",
            format(plain),
            format(tls)
        )
    }
}

const BOTH: [Transport; 2] = [Transport::Plain, Transport::Tls];

/// The `--tls` workload; prints its table.
pub async fn run(
    codecs: &[CodecKind],
    dur: Duration,
    runs: usize,
    window: usize,
) -> io::Result<()> {
    let certs = Certs::make()?;
    let mut rows = Vec::new();
    for &codec in codecs {
        let name = codec.name();
        let (mut p50, mut p99, mut one_way, mut echoed, mut connect) = (
            Pair::default(),
            Pair::default(),
            Pair::default(),
            Pair::default(),
            Pair::default(),
        );
        for _ in 0..runs.max(1) {
            let server = start(codec, false, &certs).await?;
            for transport in BOTH {
                let (addr, builder) = client(transport, &server, &certs, codec)?;
                let r = rtt(addr, &builder, dur).await?;
                p50.push(transport, r.p50_us);
                p99.push(transport, r.p99_us);
                connect.push(transport, connects(addr, &builder).await?);
                let io = open(transport, &server, &certs).await?;
                one_way.push(transport, throughput(io, codec, dur).await?);
            }
            server.stop().await?;
            let server = start(codec, true, &certs).await?;
            for transport in BOTH {
                let io = open(transport, &server, &certs).await?;
                echoed.push(transport, echo(io, codec, dur, window).await?);
            }
            server.stop().await?;
        }
        rows.push(p50.row(
            &format!("{name}: round trip p50, `AsyncClient`"),
            report::micros,
        ));
        rows.push(p99.row(
            &format!("{name}: round trip p99, `AsyncClient`"),
            report::micros,
        ));
        rows.push(one_way.row(&format!("{name}: one-way `move`s/s"), report::rate));
        rows.push(echoed.row(
            &format!("{name}: echoed `move`s/s, {window} in flight"),
            report::rate,
        ));
        rows.push(connect.row(
            &format!("{name}: connect to `connected`, p50"),
            report::micros,
        ));
        eprintln!("  tls {name}: done");
    }
    println!("### TLS against plain TCP: one repod server, both listeners, same run\n");
    println!("| measure | plain TCP | TLS | TLS/plain |");
    println!("|---|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
    println!();
    Ok(())
}
