//! repod's side of the bench: a [`#[repod::channel]`](repod::channel) serving the bench
//! protocol on repod's [`Server`], configured like an application would (defaults, except the
//! connection limit, raised so the memory workload can open 10,000 connections plus its
//! warm-up one). Bodies are decoded on each connection's task, handlers run on the dispatch
//! loop, exactly as in an application. In the rooms workload a `join_room` handler puts the
//! channel in a group and a server tick sends each room its state with `send_to_group`.

use std::io;

use repod::server::{Server, ServerBuilder, ServerContext};
use repod::Context;

use crate::proto::{JoinRoom, Move, Ping, Pong, RoomState, State, Tick};
use crate::rooms;
use crate::{Implementation, Ready, ServeConfig, Serving};

/// repod's server.
pub struct Repod;

/// Server-wide state: whether `move`s are echoed.
pub struct BenchState {
    echo: bool,
}

/// One connection: the `move`s it sent so far.
pub struct BenchChannel {
    moves: u64,
}

#[repod::channel(state = BenchState)]
impl BenchChannel {
    #[action]
    fn moved(&mut self, ctx: &mut Context<'_, Self>, m: Move) {
        self.moves += 1;
        if ctx.state().echo {
            let _ = ctx.send(&m);
        }
    }

    #[action]
    fn ping(&mut self, ctx: &mut Context<'_, Self>, p: Ping) {
        let _ = ctx.send(&Pong {
            seq: p.seq,
            moves: self.moves,
        });
    }

    #[action]
    fn tick(&mut self, ctx: &mut Context<'_, Self>, t: Tick) {
        ctx.send_to_others(&State::for_tick(t.seq));
    }

    #[action]
    fn join_room(&mut self, ctx: &mut Context<'_, Self>, j: JoinRoom) {
        ctx.join(&room_name(j.room));
    }
}

/// The group of room `r`.
fn room_name(r: u32) -> String {
    format!("room-{r}")
}

/// The rooms workload's tick: every room due gets its state, stamped just before it is
/// encoded, through one group send.
fn room_tick(
    cfg: rooms::RoomsConfig,
    codec: repod::CodecKind,
) -> impl FnMut(&mut ServerContext<'_, BenchChannel>) + Send + 'static {
    let names: Vec<String> = (0..cfg.rooms).map(room_name).collect();
    let pad = rooms::pad(codec, cfg.size);
    let mut schedule = cfg.schedule();
    let mut tick = 0u64;
    move |ctx| {
        tick += 1;
        schedule.run(rooms::mono_ns(), |room| {
            let name = &names[room as usize];
            let sent_ns = rooms::mono_ns();
            let recipients = ctx.group_len(name);
            let state = RoomState {
                sent_ns,
                room,
                tick,
                pad: &pad,
            };
            ctx.send_to_group(name, &state);
            rooms::record_send(sent_ns, recipients);
        });
    }
}

/// repod's bench server, configured as every workload runs it.
pub fn builder(codec: repod::CodecKind, echo: bool) -> ServerBuilder<BenchChannel> {
    Server::builder_with(BenchState { echo }, |_| BenchChannel { moves: 0 })
        .codec(codec)
        .max_connections(65_536)
}

async fn serve(cfg: ServeConfig, ready: Ready) -> io::Result<()> {
    serve_on(cfg, ready, false).await
}

/// Serves; with `ws`, also on a WebSocket listener, whose address is the one announced.
pub async fn serve_on(cfg: ServeConfig, ready: Ready, ws: bool) -> io::Result<()> {
    let mut builder = builder(cfg.codec, cfg.echo);
    if let Some(r) = cfg.rooms {
        builder = builder.tick(r.timer(), room_tick(r, cfg.codec));
    }
    #[cfg(feature = "websocket")]
    if ws {
        builder = builder.listen_ws("127.0.0.1:0");
    }
    if let Some(port) = cfg.cluster {
        #[cfg(feature = "cluster")]
        {
            builder = builder.cluster(format!("redis://127.0.0.1:{port}"));
        }
        #[cfg(not(feature = "cluster"))]
        return Err(io::Error::other(format!(
            "cluster on port {port}: repod-bench was built without the `cluster` feature"
        )));
    }
    let server = builder
        .bind("127.0.0.1:0")
        .await
        .map_err(io::Error::other)?;
    #[cfg(feature = "websocket")]
    let addr = match ws {
        true => server.ws_addr().expect("a WebSocket listener"),
        false => server.local_addr(),
    };
    #[cfg(not(feature = "websocket"))]
    let addr = {
        let _ = ws;
        server.local_addr()
    };
    let _ = ready.send(addr);
    if cfg.block_on {
        // The dispatch loop on the thread that called `block_on`, as `launch()` runs it.
        return server.run().await.map_err(io::Error::other);
    }
    // The dispatch loop as a task on a runtime worker (the default of this bench).
    match tokio::spawn(server.run()).await {
        Ok(r) => r.map_err(io::Error::other),
        Err(e) => Err(io::Error::other(e)),
    }
}

impl Implementation for Repod {
    fn name(&self) -> &'static str {
        "repod"
    }

    fn serve(&self, cfg: ServeConfig, ready: Ready) -> Serving {
        Box::pin(serve(cfg, ready))
    }
}
