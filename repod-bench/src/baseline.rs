//! The baseline: a plain tokio server written by hand for the bench's workloads.
//!
//! Framing is tokio-util's [`LengthDelimitedCodec`] (4-byte big-endian length, 1 MiB maximum,
//! as repod's default). Payloads are produced and read with `repod_core`'s codecs
//! ([`Codec::encode_payload`], [`Codec::decode_raw`], [`RawMessage::decode`]), so both
//! implementations put identical bytes on the wire and pay the same serialization cost; what
//! differs is everything around it: accept loop, per-connection tasks, queues, dispatch.
//!
//! One task per connection reads frames, answers on the same socket, and drains its own
//! bounded `mpsc` queue of payloads, which is how broadcasts reach it.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use repod_core::message::Connected;
use repod_core::{Codec, CodecKind, Message, RawMessage};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use crate::proto::{Move, Ping, Pong, State, Tick};
use crate::ServeConfig;

/// Frames queued per connection for broadcasts before new ones are dropped.
const QUEUE: usize = 1024;

/// The length-delimited codec both sides of the baseline use: 4-byte BE, 1 MiB max.
pub fn frame_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .max_frame_length(repod_core::DEFAULT_MAX_FRAME_LEN)
        .new_codec()
}

/// Encodes a message's payload (no header) with `codec`.
pub fn payload<M: Message + ?Sized>(codec: CodecKind, msg: &M) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    codec
        .encode_payload(M::ACTION, msg, &mut buf)
        .expect("bench messages always encode");
    buf.freeze()
}

type Peers = Arc<Mutex<HashMap<u64, mpsc::Sender<Bytes>>>>;

/// Accepts connections forever.
pub async fn serve(cfg: ServeConfig, ready: crate::Ready) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let _ = ready.send(listener.local_addr()?);
    let peers: Peers = Arc::default();
    let mut next_id = 0u64;
    loop {
        let (sock, _) = listener.accept().await?;
        sock.set_nodelay(true)?;
        next_id += 1;
        let id = next_id;
        let (tx, rx) = mpsc::channel(QUEUE);
        peers.lock().expect("peer map lock").insert(id, tx);
        let peers = peers.clone();
        tokio::spawn(async move {
            let _ = connection(sock, id, rx, &peers, cfg).await;
            peers.lock().expect("peer map lock").remove(&id);
        });
    }
}

/// Whether `buf` holds at least one complete frame.
fn has_frame(buf: &BytesMut) -> bool {
    match buf.get(..4) {
        Some(h) => buf.len() >= 4 + u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize,
        None => false,
    }
}

async fn connection(
    sock: TcpStream,
    id: u64,
    mut rx: mpsc::Receiver<Bytes>,
    peers: &Peers,
    cfg: ServeConfig,
) -> io::Result<()> {
    let codec = cfg.codec;
    let (r, w) = sock.into_split();
    let mut rd = FramedRead::new(r, frame_codec());
    let mut wr = FramedWrite::new(w, frame_codec());
    wr.send(payload(codec, &Connected)).await?;
    let mut moves = 0u64;
    loop {
        tokio::select! {
            queued = rx.recv() => {
                let Some(frame) = queued else { return Ok(()) };
                wr.feed(frame).await?;
                while let Ok(frame) = rx.try_recv() {
                    wr.feed(frame).await?;
                }
                SinkExt::<Bytes>::flush(&mut wr).await?;
            }
            item = rd.next() => {
                let Some(frame) = item else { return Ok(()) };
                let raw = codec
                    .decode_raw(frame?.freeze())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                handle(&raw, codec, cfg.echo, &mut moves, &mut wr, id, peers).await?;
                if !has_frame(rd.read_buffer()) {
                    SinkExt::<Bytes>::flush(&mut wr).await?;
                }
            }
        }
    }
}

type Writer = FramedWrite<tokio::net::tcp::OwnedWriteHalf, LengthDelimitedCodec>;

async fn handle(
    raw: &RawMessage,
    codec: CodecKind,
    echo: bool,
    moves: &mut u64,
    wr: &mut Writer,
    id: u64,
    peers: &Peers,
) -> io::Result<()> {
    let bad = |e| io::Error::new(io::ErrorKind::InvalidData, e);
    match raw.action() {
        Move::ACTION => {
            let m: Move = raw.decode().map_err(bad)?;
            *moves += 1;
            if echo {
                wr.feed(payload(codec, &m)).await?;
            }
        }
        Ping::ACTION => {
            let p: Ping = raw.decode().map_err(bad)?;
            let pong = Pong {
                seq: p.seq,
                moves: *moves,
            };
            wr.feed(payload(codec, &pong)).await?;
        }
        Tick::ACTION => {
            let t: Tick = raw.decode().map_err(bad)?;
            let frame = payload(codec, &State::for_tick(t.seq));
            let peers = peers.lock().expect("peer map lock");
            for (&other, tx) in peers.iter() {
                if other != id {
                    let _ = tx.try_send(frame.clone());
                }
            }
        }
        _ => {}
    }
    Ok(())
}
