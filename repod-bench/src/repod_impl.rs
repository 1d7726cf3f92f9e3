//! repod's side of the bench: a [`#[repod::channel]`](repod::channel) serving the bench
//! protocol on repod's [`Server`], configured like an application would (defaults, except the
//! connection limit, raised so the memory workload can open 10,000 connections plus its
//! warm-up one). Bodies are decoded on each connection's task, handlers run on the dispatch
//! loop, exactly as in an application.

use std::io;

use repod::server::Server;
use repod::Context;

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
