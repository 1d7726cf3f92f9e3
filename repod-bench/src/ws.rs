//! repod over WebSocket (`--transport ws`): the same channel and server as
//! [`repod_impl`](crate::repod_impl), reached through a WebSocket listener, and the load generator's
//! WebSocket client: one binary message per payload, as a browser sends them.
//!
//! Only the `rtt` and `fanout` workloads run it, next to repod over TCP in the same run, so
//! the tables show what the WebSocket layer costs on the same machine and load.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use repod_core::{Codec, CodecKind, Message, RawMessage};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

use crate::baseline::payload;
use crate::load::{summarize, Rtt};
use crate::proto::{Ping, Pong, State, Tick};
use crate::{Implementation, Ready, ServeConfig, Serving};

/// Longest any single wait may take before a workload gives up.
const STALL: Duration = Duration::from_secs(30);

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

async fn stall<T>(f: impl std::future::Future<Output = T>) -> io::Result<T> {
    tokio::time::timeout(STALL, f)
        .await
        .map_err(|_| err("workload stalled for 30 s"))
}

/// repod's server, announcing (and measured through) its WebSocket listener.
pub struct RepodWs;

impl Implementation for RepodWs {
    fn name(&self) -> &'static str {
        "repod-ws"
    }

    fn serve(&self, cfg: ServeConfig, ready: Ready) -> Serving {
        Box::pin(crate::repod_impl::serve_on(cfg, ready, true))
    }
}

type Stream = SplitStream<WebSocketStream<TcpStream>>;
type Sink = SplitSink<WebSocketStream<TcpStream>, WsMessage>;

/// A WebSocket client whose `connected` greeting has been read.
pub struct WsConn {
    rd: Stream,
    wr: Sink,
}

fn ws_error(e: tokio_tungstenite::tungstenite::Error) -> io::Error {
    io::Error::other(e.to_string())
}

impl WsConn {
    /// Connects, upgrades and waits for the server's greeting.
    pub async fn open(addr: SocketAddr, codec: CodecKind) -> io::Result<WsConn> {
        let sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), sock)
            .await
            .map_err(ws_error)?;
        let (wr, rd) = ws.split();
        let mut conn = WsConn { rd, wr };
        let first = recv(&mut conn.rd, codec).await?;
        if first.action() != "connected" {
            return Err(err(format!(
                "expected `connected`, got `{}`",
                first.action()
            )));
        }
        Ok(conn)
    }

    async fn send<M: Message + ?Sized>(&mut self, codec: CodecKind, msg: &M) -> io::Result<()> {
        self.wr
            .send(WsMessage::Binary(payload(codec, msg)))
            .await
            .map_err(ws_error)
    }
}

/// The next message the server sent.
async fn recv(rd: &mut Stream, codec: CodecKind) -> io::Result<RawMessage> {
    loop {
        let msg = stall(rd.next())
            .await?
            .ok_or_else(|| err("server closed the connection"))?
            .map_err(ws_error)?;
        match msg {
            WsMessage::Binary(payload) => {
                return codec
                    .decode_raw(payload)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            }
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
            other => return Err(err(format!("unexpected WebSocket message {other:?}"))),
        }
    }
}

/// Reads messages until one with action `M`, decoding it.
async fn recv_msg<M: Message + serde::de::DeserializeOwned>(
    rd: &mut Stream,
    codec: CodecKind,
) -> io::Result<M> {
    loop {
        let raw = recv(rd, codec).await?;
        if raw.action() == M::ACTION {
            return raw
                .decode()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
}

/// Sequential ping/pong on one WebSocket connection, as [`load::rtt`](crate::load::rtt).
pub async fn rtt(addr: SocketAddr, codec: CodecKind, dur: Duration, max: usize) -> io::Result<Rtt> {
    let mut conn = WsConn::open(addr, codec).await?;
    for seq in 0..200 {
        conn.send(codec, &Ping { seq }).await?;
        recv_msg::<Pong>(&mut conn.rd, codec).await?;
    }
    let mut samples = Vec::with_capacity(max.min(1 << 20));
    let start = Instant::now();
    let mut seq = 1000;
    while samples.len() < max && start.elapsed() < dur {
        let t = Instant::now();
        conn.send(codec, &Ping { seq }).await?;
        let pong: Pong = recv_msg(&mut conn.rd, codec).await?;
        samples.push(t.elapsed().as_nanos() as u64);
        if pong.seq != seq {
            return Err(err("pong out of order"));
        }
        seq += 1;
    }
    Ok(summarize(samples))
}

/// Broadcast fan-out to `k` WebSocket clients, as [`load::fanout`](crate::load::fanout):
/// a control connection (WebSocket too) asks for `ticks` broadcasts, keeping at most `window`
/// ticks beyond what every client has received. Returns deliveries/s.
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
    let mut conns = Vec::with_capacity(k);
    while conns.len() < k {
        let batch = (k - conns.len()).min(256);
        let opened = futures::future::join_all((0..batch).map(|_| WsConn::open(addr, codec))).await;
        for c in opened {
            conns.push(c?);
        }
    }
    let mut clients = Vec::with_capacity(k);
    for conn in conns {
        let (total, target, wake) = (total.clone(), target.clone(), wake.clone());
        let WsConn { mut rd, wr } = conn;
        clients.push(tokio::spawn(async move {
            let _keep = wr;
            let mut got = 0u64;
            while got < ticks {
                let raw = recv(&mut rd, codec).await?;
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
    let mut control = WsConn::open(addr, codec).await?;
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
