//! The load generator: one hand-written tokio client, the same for every implementation.
//!
//! It speaks the wire format directly (4-byte big-endian length + payload from
//! `repod_core`'s codecs), so the figures measure the server and differ only by the
//! implementation serving them.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use repod_core::{Codec, CodecKind, Message};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use crate::baseline::{frame_codec, payload};
use crate::proto::{Move, Ping, Pong, State, Tick};

/// Longest any single wait may take before a workload gives up.
const STALL: Duration = Duration::from_secs(30);

type Reader = FramedRead<OwnedReadHalf, LengthDelimitedCodec>;
type Writer = FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>;

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

async fn stall<T>(f: impl std::future::Future<Output = T>) -> io::Result<T> {
    tokio::time::timeout(STALL, f)
        .await
        .map_err(|_| err("workload stalled for 30 s"))
}

/// A connected client whose `connected` greeting has been read.
pub struct Conn {
    pub rd: Reader,
    pub wr: Writer,
}

impl Conn {
    /// Connects and waits for the server's greeting.
    pub async fn open(addr: SocketAddr, codec: CodecKind) -> io::Result<Conn> {
        let sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        let (r, w) = sock.into_split();
        let mut conn = Conn {
            rd: FramedRead::new(r, frame_codec()),
            wr: FramedWrite::new(w, frame_codec()),
        };
        let first = conn.recv(codec).await?;
        if first.action() != "connected" {
            return Err(err(format!(
                "expected `connected`, got `{}`",
                first.action()
            )));
        }
        Ok(conn)
    }

    async fn recv(&mut self, codec: CodecKind) -> io::Result<repod_core::RawMessage> {
        let frame = stall(self.rd.next())
            .await?
            .ok_or_else(|| err("server closed the connection"))??;
        codec
            .decode_raw(frame.freeze())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Reads frames until one with action `M`, decoding it.
    async fn recv_msg<M: Message + serde::de::DeserializeOwned>(
        &mut self,
        codec: CodecKind,
    ) -> io::Result<M> {
        loop {
            let raw = self.recv(codec).await?;
            if raw.action() == M::ACTION {
                return raw
                    .decode()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }

    async fn send<M: Message + ?Sized>(&mut self, codec: CodecKind, msg: &M) -> io::Result<()> {
        self.wr.send(payload(codec, msg)).await
    }
}

/// Round-trip latencies in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Rtt {
    pub p50_us: f64,
    pub p99_us: f64,
    pub samples: usize,
}

/// Sequential ping/pong on one connection.
pub async fn rtt(addr: SocketAddr, codec: CodecKind, dur: Duration, max: usize) -> io::Result<Rtt> {
    let mut conn = Conn::open(addr, codec).await?;
    for seq in 0..200 {
        conn.send(codec, &Ping { seq }).await?;
        conn.recv_msg::<Pong>(codec).await?;
    }
    let mut samples = Vec::with_capacity(max.min(1 << 20));
    let start = Instant::now();
    let mut seq = 1000;
    while samples.len() < max && start.elapsed() < dur {
        let t = Instant::now();
        conn.send(codec, &Ping { seq }).await?;
        let pong: Pong = conn.recv_msg(codec).await?;
        samples.push(t.elapsed().as_nanos() as u64);
        if pong.seq != seq {
            return Err(err("pong out of order"));
        }
        seq += 1;
    }
    Ok(summarize(samples))
}

/// Percentiles of samples (nanoseconds).
pub fn summarize(mut samples: Vec<u64>) -> Rtt {
    samples.sort_unstable();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)] as f64 / 1e3;
    Rtt {
        p50_us: pct(50),
        p99_us: pct(99),
        samples: samples.len(),
    }
}

/// Sequential ping/pong through repod's own [`AsyncClient`](repod::client::AsyncClient): the
/// client side of "repod's server and client".
pub async fn rtt_repod_client(
    addr: SocketAddr,
    codec: CodecKind,
    dur: Duration,
    max: usize,
) -> io::Result<Rtt> {
    let mut client = repod::client::AsyncClient::builder()
        .codec(codec)
        .connect_async(addr)
        .await
        .map_err(io::Error::other)?;
    async fn pong(client: &mut repod::client::AsyncClient) -> io::Result<Pong> {
        loop {
            let event = stall(client.recv()).await?.ok_or_else(|| err("closed"))?;
            if event.is::<Pong>() {
                return event.decode().map_err(io::Error::other);
            }
        }
    }
    for seq in 0..200 {
        client.send(&Ping { seq }).map_err(io::Error::other)?;
        pong(&mut client).await?;
    }
    let mut samples = Vec::with_capacity(max.min(1 << 20));
    let start = Instant::now();
    let mut seq = 1000;
    while samples.len() < max && start.elapsed() < dur {
        let t = Instant::now();
        client.send(&Ping { seq }).map_err(io::Error::other)?;
        let answer = pong(&mut client).await?;
        samples.push(t.elapsed().as_nanos() as u64);
        if answer.seq != seq {
            return Err(err("pong out of order"));
        }
        seq += 1;
    }
    client.close().await;
    Ok(summarize(samples))
}

/// A buffer of `n` complete `move` frames (seq 0..n), written in one go.
fn move_batch(codec: CodecKind, n: u64) -> Bytes {
    let mut buf = BytesMut::new();
    for seq in 0..n {
        let body = payload(
            codec,
            &Move {
                x: seq as f32,
                y: -(seq as f32),
                seq,
            },
        );
        buf.put_u32(body.len() as u32);
        buf.extend_from_slice(&body);
    }
    buf.freeze()
}

/// One client sends `move`s as fast as it can for `dur`, then a `ping`; the server's `pong`
/// reports how many moves it handled. Returns moves/s handled by the server.
pub async fn throughput(addr: SocketAddr, codec: CodecKind, dur: Duration) -> io::Result<f64> {
    const BATCH: u64 = 512;
    let mut conn = Conn::open(addr, codec).await?;
    let batch = move_batch(codec, BATCH);
    let start = Instant::now();
    let mut sent = 0u64;
    {
        let sock = conn.wr.get_mut();
        while start.elapsed() < dur {
            sock.write_all(&batch).await?;
            sent += BATCH;
        }
    }
    conn.send(codec, &Ping { seq: u64::MAX }).await?;
    let pong: Pong = conn.recv_msg(codec).await?;
    let elapsed = start.elapsed();
    if pong.moves != sent {
        return Err(err(format!(
            "server handled {} moves of {sent}",
            pong.moves
        )));
    }
    Ok(pong.moves as f64 / elapsed.as_secs_f64())
}

/// `move`s echoed back, pipelined with at most `window` in flight. Returns round trips/s
/// counted at the client.
pub async fn echo(
    addr: SocketAddr,
    codec: CodecKind,
    dur: Duration,
    window: usize,
) -> io::Result<f64> {
    let Conn { mut rd, mut wr } = Conn::open(addr, codec).await?;
    let credit = Arc::new(Semaphore::new(window));
    let credit_r = credit.clone();
    let reader = tokio::spawn(async move {
        let mut got = 0u64;
        while let Some(frame) = stall(rd.next()).await? {
            let raw = codec
                .decode_raw(frame?.freeze())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if raw.action() == Move::ACTION {
                got += 1;
                credit_r.add_permits(1);
            }
        }
        Ok::<u64, io::Error>(got)
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
    // Wait for the last echoes: all the credit back.
    stall(credit.acquire_many(window as u32))
        .await?
        .map_err(|_| err("closed"))?
        .forget();
    let elapsed = start.elapsed();
    drop(wr);
    reader.abort();
    Ok(sent as f64 / elapsed.as_secs_f64())
}

/// `k` clients connect; a control connection asks for `ticks` broadcasts, keeping at most
/// `window` ticks beyond what every client has received. Returns deliveries/s.
pub async fn fanout(
    addr: SocketAddr,
    codec: CodecKind,
    k: usize,
    ticks: u64,
    window: u64,
) -> io::Result<f64> {
    let total = Arc::new(AtomicU64::new(0));
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let wake = Arc::new(Notify::new());
    let mut clients = Vec::with_capacity(k);
    let conns = connect_many(addr, codec, k).await?;
    for conn in conns {
        let (total, target, wake) = (total.clone(), target.clone(), wake.clone());
        let Conn { mut rd, wr } = conn;
        clients.push(tokio::spawn(async move {
            let _keep = wr;
            let mut got = 0u64;
            while got < ticks {
                let Some(frame) = stall(rd.next()).await? else {
                    return Err(err("server closed a fan-out client"));
                };
                let raw = codec
                    .decode_raw(frame?.freeze())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                if raw.action() == State::ACTION {
                    got += 1;
                    let now = total.fetch_add(1, Ordering::AcqRel) + 1;
                    if now >= target.load(Ordering::Acquire) {
                        wake.notify_one();
                    }
                }
            }
            Ok::<(), io::Error>(())
        }));
    }
    let mut control = Conn::open(addr, codec).await?;
    let k64 = k as u64;
    let start = Instant::now();
    for seq in 0..ticks {
        let need = seq.saturating_sub(window) * k64;
        while total.load(Ordering::Acquire) < need {
            target.store(need, Ordering::Release);
            if total.load(Ordering::Acquire) >= need {
                break;
            }
            stall(wake.notified()).await?;
        }
        control.send(codec, &Tick { seq }).await?;
    }
    for c in clients {
        c.await.map_err(|e| err(e.to_string()))??;
    }
    let elapsed = start.elapsed();
    Ok((ticks * k64) as f64 / elapsed.as_secs_f64())
}

/// Opens `n` connections, at most 256 handshakes at a time, each with its greeting read.
pub async fn connect_many(addr: SocketAddr, codec: CodecKind, n: usize) -> io::Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(n);
    while conns.len() < n {
        let batch = (n - conns.len()).min(256);
        let opened = futures::future::join_all((0..batch).map(|_| Conn::open(addr, codec))).await;
        for c in opened {
            conns.push(c?);
        }
    }
    Ok(conns)
}
