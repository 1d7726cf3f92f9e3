//! repod's side of the bench: a hand-written [`Channel`] serving the bench protocol on
//! repod's [`Server`], configured like an application would (defaults, except the connection
//! limit, raised so the memory workload can open 10,000 connections plus its warm-up one).
//!
//! The channel is written by hand (a `match` on the action, what `#[repod::channel]`
//! generates) so the bench depends on `repod-core` alone.

use std::io;

use repod_core::server::Server;
use repod_core::{Channel, Context, DispatchContext, Message, RawMessage};

use crate::proto::{Move, Ping, Pong, State, Tick};
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

impl Channel for BenchChannel {
    type State = BenchState;
    type Inbound = RawMessage;
    const ACTIONS: &'static [&'static str] = &[Move::ACTION, Ping::ACTION, Tick::ACTION];

    fn decode(msg: RawMessage) -> RawMessage {
        msg
    }

    fn dispatch(&mut self, ctx: &mut Context<'_, Self>, msg: RawMessage) {
        match msg.action() {
            Move::ACTION => match msg.decode::<Move>() {
                Ok(m) => {
                    self.moves += 1;
                    if ctx.state().echo {
                        ctx.send(&m);
                    }
                }
                Err(e) => ctx.invalid_body(&msg, e),
            },
            Ping::ACTION => match msg.decode::<Ping>() {
                Ok(p) => {
                    ctx.send(&Pong {
                        seq: p.seq,
                        moves: self.moves,
                    });
                }
                Err(e) => ctx.invalid_body(&msg, e),
            },
            Tick::ACTION => match msg.decode::<Tick>() {
                Ok(t) => {
                    ctx.send_to_others(&State::for_tick(t.seq));
                }
                Err(e) => ctx.invalid_body(&msg, e),
            },
            _ => ctx.unhandled(&msg),
        }
    }
}

async fn serve(cfg: ServeConfig, ready: Ready) -> io::Result<()> {
    let server = Server::builder_with(BenchState { echo: cfg.echo }, |_| BenchChannel { moves: 0 })
        .codec(cfg.codec)
        .max_connections(65_536)
        .bind("127.0.0.1:0")
        .await
        .map_err(io::Error::other)?;
    let _ = ready.send(server.local_addr());
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
