//! Dispatch through the sans-I/O `Hub` with a hand-written `Channel` (a `match` on the
//! action), per message, broadcast of one encoded frame to K channels, and a group of 300
//! among 1,000 channels reached three ways. Every outbox receiver is drained inside the timed
//! loop, as the server's writers would. Last, what a client's `pump` does per event on the
//! game's thread: decode the body and run the handler of a hand-written `Listener`.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use repod_core::frame::HEADER_LEN;
use repod_core::server::{Outbox, OutboxReceiver};
use repod_core::{
    Channel, ChannelId, ClientContext, Codec, CodecKind, Context, DispatchContext, Hub, HubConfig,
    Listener, Message, RawMessage,
};
use std::hint::black_box;

use common::{a_move, a_state, Move, State};

struct Player {
    moves: u64,
    last: (f32, f32),
}

impl Channel for Player {
    type State = ();
    type Inbound = RawMessage;
    const ACTIONS: &'static [&'static str] = &["move", "echo"];

    fn decode(msg: RawMessage) -> RawMessage {
        msg
    }

    fn dispatch(&mut self, ctx: &mut Context<'_, Self>, msg: RawMessage) {
        match msg.action() {
            "move" => match msg.decode::<Move>() {
                Ok(m) => {
                    self.moves += 1;
                    self.last = (m.x, m.y);
                }
                Err(e) => ctx.invalid_body(&msg, e),
            },
            "echo" => match msg.decode::<Move>() {
                Ok(m) => {
                    let _ = ctx.send(&m);
                }
                Err(e) => ctx.invalid_body(&msg, e),
            },
            _ => ctx.unhandled(&msg),
        }
    }
}

fn hub_with(codec: CodecKind, k: usize) -> (Hub<Player>, Vec<(ChannelId, OutboxReceiver)>) {
    let mut hub = Hub::new(
        HubConfig {
            codec,
            ..HubConfig::default()
        },
        (),
        |_| Player {
            moves: 0,
            last: (0.0, 0.0),
        },
    );
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut peers = Vec::new();
    for _ in 0..k {
        let (outbox, mut rx) = Outbox::new(1024, 1 << 20);
        let id = hub.connect(addr, outbox);
        while rx.try_recv().is_some() {}
        peers.push((id, rx));
    }
    (hub, peers)
}

fn raw(codec: CodecKind, action: &str, m: &Move) -> RawMessage {
    let frame = codec.encode_frame(action, m, usize::MAX).unwrap();
    codec.decode_raw(frame.slice(HEADER_LEN..)).unwrap()
}

fn dispatch(c: &mut Criterion) {
    let mut g = c.benchmark_group("dispatch");
    for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
        let (mut hub, mut peers) = hub_with(codec, 1);
        let (id, rx) = &mut peers[0];
        let id = *id;
        let mv = raw(codec, Move::ACTION, &a_move());
        g.bench_function(BenchmarkId::new("move", codec), |b| {
            b.iter(|| hub.dispatch(id, black_box(mv.clone())))
        });
        let echo = raw(codec, "echo", &a_move());
        g.bench_function(BenchmarkId::new("echo+drain", codec), |b| {
            b.iter(|| {
                hub.dispatch(id, black_box(echo.clone()));
                black_box(rx.try_recv().unwrap())
            })
        });
        // Decoding the payload, as the server's reader does, then dispatching.
        let payload: Bytes = codec
            .encode(&a_move(), usize::MAX)
            .unwrap()
            .slice(HEADER_LEN..);
        g.bench_function(BenchmarkId::new("decode_raw+move", codec), |b| {
            b.iter(|| {
                let msg = codec.decode_raw(black_box(payload.clone())).unwrap();
                hub.dispatch(id, msg)
            })
        });
        assert!(hub.channel(id).unwrap().moves > 0);
    }
    g.finish();
}

fn broadcast(c: &mut Criterion) {
    let mut g = c.benchmark_group("broadcast/state");
    for k in [100usize, 1000] {
        let codec = CodecKind::Bincode;
        let (mut hub, mut peers) = hub_with(codec, k);
        let frame = codec.encode(&a_state(), usize::MAX).unwrap();
        g.throughput(Throughput::Elements(k as u64));
        g.bench_function(BenchmarkId::from_parameter(k), |b| {
            b.iter(|| {
                let sent = hub.send_frame_to_all(black_box(&frame));
                for (_, rx) in peers.iter_mut() {
                    black_box(rx.try_recv());
                }
                sent
            })
        });
    }
    g.finish();
}

/// A state to the 300 members of one group on a server of 1,000 channels: a group send
/// (encoded once), the same frame queued to their ids, and `send_to` per member (encoded per
/// member), encoding included in each.
fn group(c: &mut Criterion) {
    const MEMBERS: usize = 300;
    let mut g = c.benchmark_group("group/state");
    g.throughput(Throughput::Elements(MEMBERS as u64));
    let codec = CodecKind::Bincode;
    let (mut hub, mut peers) = hub_with(codec, 1000);
    // Every third channel is a member; only the members' queues are drained.
    let mut peers: Vec<(ChannelId, OutboxReceiver)> =
        peers.drain(..).step_by(3).take(MEMBERS).collect();
    let members: Vec<ChannelId> = peers.iter().map(|(id, _)| *id).collect();
    let members = &members[..];
    hub.with_context(|ctx| {
        for &id in members {
            ctx.add_to_group(id, "match");
        }
    });
    let state = a_state();
    let drain = |peers: &mut Vec<(ChannelId, OutboxReceiver)>| {
        for (_, rx) in peers.iter_mut() {
            black_box(rx.try_recv().expect("a frame for every member"));
        }
    };
    g.bench_function("send_to_group", |b| {
        b.iter(|| {
            let sent = hub.with_context(|ctx| ctx.send_to_group("match", black_box(&state)));
            drain(&mut peers);
            sent
        })
    });
    g.bench_function("encode+send_frame_to_many", |b| {
        b.iter(|| {
            let sent = hub.with_context(|ctx| {
                let frame = ctx.encode(black_box(&state)).unwrap();
                ctx.send_frame_to_many(members.iter().copied(), &frame)
            });
            drain(&mut peers);
            sent
        })
    });
    g.bench_function("send_to_each_member", |b| {
        b.iter(|| {
            let sent = hub.with_context(|ctx| {
                members
                    .iter()
                    .filter(|&&id| ctx.send_to(id, black_box(&state)).is_ok())
                    .count()
            });
            drain(&mut peers);
            sent
        })
    });
    g.finish();
}

/// A game's listener, written as `#[repod::listener]` writes one: decode into the handler's
/// type, then run it.
#[derive(Default)]
struct Game {
    moves: u64,
    entities: usize,
}

impl Listener for Game {
    const ACTIONS: &'static [&'static str] = &["move", "state"];

    fn dispatch(&mut self, ctx: &mut ClientContext<'_>, msg: RawMessage) {
        match msg.action() {
            "move" => match msg.decode::<Move>() {
                Ok(m) => {
                    self.moves += 1;
                    black_box(m);
                }
                Err(e) => ctx.invalid_body(&msg, e),
            },
            "state" => match msg.decode::<State>() {
                Ok(s) => self.entities += s.entities.len(),
                Err(e) => ctx.invalid_body(&msg, e),
            },
            _ => ctx.unhandled(&msg),
        }
    }
}

/// The game thread's share of a received message in `pump` (the action name was read on the
/// client's i/o thread already).
fn listener(c: &mut Criterion) {
    let mut g = c.benchmark_group("listener");
    for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
        let (outbox, _rx) = Outbox::new(1024, 1 << 20);
        let mut events = VecDeque::new();
        let mut ctx = ClientContext::new(codec, usize::MAX, &outbox, &mut events);
        let mut game = Game::default();
        let mv = raw(codec, Move::ACTION, &a_move());
        g.bench_function(BenchmarkId::new("move", codec), |b| {
            b.iter(|| game.dispatch(&mut ctx, black_box(mv.clone())))
        });
        let frame = codec.encode(&a_state(), usize::MAX).unwrap();
        let state = codec.decode_raw(frame.slice(HEADER_LEN..)).unwrap();
        g.bench_function(BenchmarkId::new("state", codec), |b| {
            b.iter(|| game.dispatch(&mut ctx, black_box(state.clone())))
        });
        black_box((game.moves, game.entities));
    }
    g.finish();
}

criterion_group!(benches, dispatch, broadcast, group, listener);
criterion_main!(benches);
