//! The baseline: a plain tokio server written by hand for the bench's workloads.
//!
//! Framing is tokio-util's [`LengthDelimitedCodec`] (4-byte big-endian length, 1 MiB maximum,
//! as repod's default). Payloads are produced and read with `repod_core`'s codecs
//! ([`Codec::encode_payload`], [`Codec::decode_raw`], [`RawMessage::decode`]), so both
//! implementations put identical bytes on the wire and pay the same serialization cost; what
//! differs is everything around it: accept loop, per-connection tasks, queues, dispatch.
//!
//! One task per connection reads frames, answers on the same socket, and drains its own
//! bounded `mpsc` queue of payloads, which is how broadcasts reach it. For the rooms workload,
//! a ticker task holds per-room recipient lists (each member's queue sender), encodes every
//! room's state once and `try_send`s it to each member.

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

use crate::proto::{JoinRoom, Move, Ping, Pong, RoomState, State, Tick};
use crate::rooms::{self, RoomsConfig};
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

/// Per room, the members' ids and queue senders.
type Rooms = Arc<Mutex<Vec<Vec<(u64, mpsc::Sender<Bytes>)>>>>;

/// What every connection task shares.
#[derive(Clone, Default)]
struct Shared {
    peers: Peers,
    rooms: Rooms,
}

/// Accepts connections forever.
pub async fn serve(cfg: ServeConfig, ready: crate::Ready) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let _ = ready.send(listener.local_addr()?);
    let shared = Shared::default();
    if let Some(r) = cfg.rooms {
        shared
            .rooms
            .lock()
            .expect("rooms lock")
            .resize_with(r.rooms as usize, Vec::new);
        tokio::spawn(room_ticker(r, cfg.codec, shared.rooms.clone()));
    }
    let mut next_id = 0u64;
    loop {
        let (sock, _) = listener.accept().await?;
        sock.set_nodelay(true)?;
        next_id += 1;
        let id = next_id;
        let (tx, rx) = mpsc::channel(QUEUE);
        shared.peers.lock().expect("peer map lock").insert(id, tx);
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut joined = None;
            let _ = connection(sock, id, rx, &shared, &mut joined, cfg).await;
            shared.peers.lock().expect("peer map lock").remove(&id);
            if let Some(room) = joined {
                let mut rooms = shared.rooms.lock().expect("rooms lock");
                if let Some(members) = rooms.get_mut(room as usize) {
                    members.retain(|(member, _)| *member != id);
                }
            }
        });
    }
}

/// Sends every room its state at the configured rate: encoded once per room, then one
/// `try_send` per member (a full queue drops the state for that member).
async fn room_ticker(cfg: RoomsConfig, codec: CodecKind, rooms: Rooms) {
    let pad = rooms::pad(codec, cfg.size);
    let mut schedule = cfg.schedule();
    let period = cfg.timer();
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = 0u64;
    loop {
        interval.tick().await;
        tick += 1;
        let rooms = rooms.lock().expect("rooms lock");
        schedule.run(rooms::mono_ns(), |room| {
            let Some(members) = rooms.get(room as usize) else {
                return;
            };
            let sent_ns = rooms::mono_ns();
            let state = RoomState {
                sent_ns,
                room,
                tick,
                pad: &pad,
            };
            let frame = payload(codec, &state);
            for (_, tx) in members {
                let _ = tx.try_send(frame.clone());
            }
            rooms::record_send(sent_ns, members.len());
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
    shared: &Shared,
    joined: &mut Option<u32>,
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
                if raw.action() == JoinRoom::ACTION {
                    let j: JoinRoom = raw
                        .decode()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    join_room(shared, id, j.room, joined);
                } else {
                    handle(&raw, codec, cfg.echo, &mut moves, &mut wr, id, &shared.peers).await?;
                }
                if !has_frame(rd.read_buffer()) {
                    SinkExt::<Bytes>::flush(&mut wr).await?;
                }
            }
        }
    }
}

/// Puts connection `id` in `room` (one room at a time).
fn join_room(shared: &Shared, id: u64, room: u32, joined: &mut Option<u32>) {
    let Some(tx) = shared
        .peers
        .lock()
        .expect("peer map lock")
        .get(&id)
        .cloned()
    else {
        return;
    };
    let mut rooms = shared.rooms.lock().expect("rooms lock");
    if let Some(old) = joined.take() {
        if let Some(members) = rooms.get_mut(old as usize) {
            members.retain(|(member, _)| *member != id);
        }
    }
    if let Some(members) = rooms.get_mut(room as usize) {
        members.push((id, tx));
        *joined = Some(room);
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
