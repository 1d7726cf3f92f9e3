//! The two tasks that talk to Redis: the publisher (one multiplexed connection, pipelined
//! PUBLISH commands) and the subscriber (one dedicated pub/sub connection). Both reconnect by
//! themselves with exponential backoff; neither ever makes the dispatch loop wait.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use redis::aio::{MultiplexedConnection, PubSub};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::counters::Counters;
use super::wire::{self, Origin};
use super::{ClusterConfig, Event};
use crate::server::ServerError;

/// The first wait before reconnecting; doubled after each failure up to [`BACKOFF_MAX`].
pub(super) const BACKOFF_MIN: Duration = Duration::from_millis(50);
/// The longest wait between two attempts to reconnect.
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Messages sent to Redis in one pipeline, at most.
const BATCH: usize = 256;
/// The most a pipeline of PUBLISH commands may take before the connection counts as broken.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// The highest node number: node numbers sit above the low 32 bits of a channel id, which
/// stays below 2^53.
pub(super) const MAX_NODE: u64 = (1 << 21) - 1;

/// One message for the publisher: where to, the cluster header, and the frame if any.
pub(super) struct Outgoing {
    /// 0 for every node, otherwise the one node.
    pub(super) to: u32,
    pub(super) head: Vec<u8>,
    pub(super) frame: Option<Bytes>,
}

/// The Redis names of one cluster.
#[derive(Debug, Clone)]
pub(super) struct Names {
    prefix: Arc<str>,
}

impl Names {
    pub(super) fn new(prefix: &str) -> Self {
        Names {
            prefix: prefix.into(),
        }
    }

    pub(super) fn all(&self) -> String {
        format!("{}:all", self.prefix)
    }

    pub(super) fn node(&self, node: u32) -> String {
        format!("{}:node:{node}", self.prefix)
    }

    fn seq(&self) -> String {
        format!("{}:node-seq", self.prefix)
    }

    fn codec(&self) -> String {
        format!("{}:codec", self.prefix)
    }
}

fn cluster_error(what: &str, error: impl std::fmt::Display) -> ServerError {
    ServerError::Cluster(format!("{what}: {error}"))
}

/// What joining the cluster gave: a node number and two live connections.
pub(super) struct Joined {
    pub(super) client: redis::Client,
    pub(super) conn: MultiplexedConnection,
    pub(super) pubsub: PubSub,
    pub(super) node: u32,
}

/// Connects, checks the codec, takes a node number and subscribes, so that this node receives
/// whatever other nodes publish from the moment this returns.
pub(super) async fn join(
    config: &ClusterConfig,
    names: &Names,
    codec_name: &str,
) -> Result<Joined, ServerError> {
    let client = redis::Client::open(config.url.as_str())
        .map_err(|e| cluster_error("invalid Redis URL", e))?;
    let mut conn = connect(&client, config.connect_timeout)
        .await
        .map_err(|e| cluster_error("cannot connect to Redis", e))?;
    check_codec(&mut conn, names, codec_name).await?;
    let node: u64 = redis::cmd("INCR")
        .arg(names.seq())
        .query_async(&mut conn)
        .await
        .map_err(|e| cluster_error("cannot take a node number", e))?;
    if node == 0 || node > MAX_NODE {
        return Err(ServerError::Cluster(format!(
            "node number {node} out of range 1..={MAX_NODE}: delete the key {} once every node is stopped",
            names.seq()
        )));
    }
    let node = node as u32;
    let pubsub = subscribe(&client, names, node, config.connect_timeout)
        .await
        .map_err(|e| cluster_error("cannot subscribe", e))?;
    Ok(Joined {
        client,
        conn,
        pubsub,
        node,
    })
}

async fn connect(client: &redis::Client, limit: Duration) -> Result<MultiplexedConnection, String> {
    match timeout(limit, client.get_multiplexed_async_connection()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("timed out after {limit:?}")),
    }
}

async fn subscribe(
    client: &redis::Client,
    names: &Names,
    node: u32,
    limit: Duration,
) -> Result<PubSub, String> {
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(names.all()).await?;
        pubsub.subscribe(names.node(node)).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    match timeout(limit, attempt).await {
        Ok(Ok(pubsub)) => Ok(pubsub),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("timed out after {limit:?}")),
    }
}

/// Records this cluster's codec if none is, and refuses to join a cluster of another codec:
/// its frames would be unreadable to this node's clients.
async fn check_codec(
    conn: &mut MultiplexedConnection,
    names: &Names,
    codec_name: &str,
) -> Result<(), ServerError> {
    let key = names.codec();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(codec_name)
        .arg("NX")
        .query_async(conn)
        .await
        .map_err(|e| cluster_error("cannot record the codec", e))?;
    let theirs: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(conn)
        .await
        .map_err(|e| cluster_error("cannot read the codec", e))?;
    match theirs {
        Some(theirs) if theirs != codec_name => Err(ServerError::Cluster(format!(
            "the cluster uses the codec {theirs}, this server {codec_name}: every node must use the same codec"
        ))),
        _ => Ok(()),
    }
}

/// After Redis came back (it may have restarted empty): records the codec again, and raises
/// the node counter to at least this node's number so a node started later takes a new one.
async fn reassert(
    conn: &mut MultiplexedConnection,
    names: &Names,
    node: u32,
    codec_name: &str,
) -> Result<(), String> {
    if let Err(error) = check_codec(conn, names, codec_name).await {
        // Logged, not fatal: this node goes on serving; the operator has to act.
        tracing::error!(target: "repod::cluster", %error, "codec check after reconnecting failed");
    }
    let script = redis::Script::new(
        "local c = tonumber(redis.call('GET', KEYS[1]) or '0') \
         if c < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end \
         return c",
    );
    let _: i64 = script
        .key(names.seq())
        .arg(node)
        .invoke_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// What both tasks need.
pub(super) struct TaskContext {
    pub(super) client: redis::Client,
    pub(super) names: Names,
    pub(super) origin: Origin,
    pub(super) codec_name: &'static str,
    pub(super) counters: Arc<Counters>,
    pub(super) events: mpsc::Sender<Event>,
    pub(super) connect_timeout: Duration,
    /// Set when the subscriber had to drop a bookkeeping message: the loop then asks every
    /// node for its memberships again.
    pub(super) resync: Arc<AtomicBool>,
    /// How long the subscription may stay silent (this node's own heartbeats come back through
    /// it) before it counts as broken.
    pub(super) silence: Duration,
}

/// Publishes what the loop queues, in order, pipelining what is waiting. While Redis is
/// unreachable, what arrives is dropped and counted: nothing is held back to be delivered late.
/// Ends when the loop drops its sender (after queueing its goodbye).
pub(super) async fn publisher(
    ctx: Arc<TaskContext>,
    mut conn: Option<MultiplexedConnection>,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    let all = ctx.names.all();
    let mut node_channels: HashMap<u32, String> = HashMap::new();
    let mut batch: Vec<Outgoing> = Vec::with_capacity(BATCH);
    let mut backoff = BACKOFF_MIN;
    loop {
        let Some(c) = conn.as_mut() else {
            match connect(&ctx.client, ctx.connect_timeout).await {
                Ok(mut c) => {
                    if let Err(error) =
                        reassert(&mut c, &ctx.names, ctx.origin.node, ctx.codec_name).await
                    {
                        tracing::warn!(target: "repod::cluster", %error, "Redis is back but failing; retrying");
                        if !drop_for(&ctx, &mut rx, backoff).await {
                            return;
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                    tracing::info!(target: "repod::cluster", "publisher reconnected to Redis");
                    ctx.counters.reconnected();
                    backoff = BACKOFF_MIN;
                    conn = Some(c);
                    // This node's memberships may have been lost on the way: publish them anew.
                    let _ = ctx.events.try_send(Event::PublisherUp);
                }
                Err(error) => {
                    tracing::debug!(target: "repod::cluster", %error, ?backoff, "cannot reach Redis to publish");
                    if !drop_for(&ctx, &mut rx, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
            continue;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut pipe = redis::pipe();
        for out in batch.drain(..) {
            let channel = match out.to {
                0 => &all,
                node => node_channels
                    .entry(node)
                    .or_insert_with(|| ctx.names.node(node)),
            };
            let mut payload = out.head;
            if let Some(frame) = &out.frame {
                payload.extend_from_slice(frame);
            }
            pipe.cmd("PUBLISH")
                .arg(channel.as_str())
                .arg(payload)
                .ignore();
        }
        let n = pipe.len() as u64;
        match timeout(PUBLISH_TIMEOUT, pipe.query_async::<()>(c)).await {
            Ok(Ok(())) => ctx.counters.published(n),
            Ok(Err(error)) => {
                ctx.counters.publish_dropped(n);
                tracing::warn!(target: "repod::cluster", %error, lost = n, "publishing to Redis failed; reconnecting");
                conn = None;
            }
            Err(_) => {
                ctx.counters.publish_dropped(n);
                tracing::warn!(target: "repod::cluster", lost = n, "publishing to Redis timed out; reconnecting");
                conn = None;
            }
        }
    }
}

/// Waits `wait`, dropping (and counting) what the loop queues meanwhile. `false` once the loop
/// has gone.
async fn drop_for(ctx: &TaskContext, rx: &mut mpsc::Receiver<Outgoing>, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        tokio::select! {
            () = sleep_until(deadline) => return true,
            next = rx.recv() => match next {
                Some(_) => ctx.counters.publish_dropped(1),
                None => return false,
            },
        }
    }
}

/// Reads what the other nodes publish and hands it to the loop, never waiting for the loop:
/// when its queue is full, a frame is dropped (counted), and a dropped bookkeeping message
/// makes the loop ask for every node's memberships again. Reconnects and resubscribes by
/// itself; tells the loop each time it did (the loop then republishes its own memberships and
/// asks for the others').
pub(super) async fn subscriber(ctx: Arc<TaskContext>, first: PubSub, stop: CancellationToken) {
    let mut pubsub = Some(first);
    let mut backoff = BACKOFF_MIN;
    let mut connected_once = false;
    loop {
        let current = match pubsub.take() {
            Some(p) => p,
            None => {
                let attempt = tokio::select! {
                    () = stop.cancelled() => return,
                    attempt = subscribe(&ctx.client, &ctx.names, ctx.origin.node, ctx.connect_timeout) => attempt,
                };
                match attempt {
                    Ok(p) => {
                        tracing::info!(target: "repod::cluster", "subscriber reconnected to Redis");
                        ctx.counters.reconnected();
                        backoff = BACKOFF_MIN;
                        p
                    }
                    Err(error) => {
                        tracing::debug!(target: "repod::cluster", %error, ?backoff, "cannot subscribe to Redis");
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                }
            }
        };
        if connected_once {
            tracing::debug!(target: "repod::cluster", "resubscribed");
        }
        connected_once = true;
        if ctx.events.try_send(Event::Subscribed).is_err() {
            ctx.resync.store(true, Ordering::Relaxed);
        }
        let mut stream = current.into_on_message();
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return,
                next = timeout(ctx.silence, stream.next()) => next,
            };
            match next {
                Ok(Some(msg)) => take(&ctx, msg.get_payload_bytes()),
                Ok(None) => {
                    tracing::warn!(target: "repod::cluster", "lost the Redis subscription; reconnecting");
                    break;
                }
                Err(_) => {
                    tracing::warn!(target: "repod::cluster", silence = ?ctx.silence, "the Redis subscription went silent; reconnecting");
                    break;
                }
            }
        }
    }
}

/// One message from Redis: parsed here, off the loop, and queued to it.
fn take(ctx: &TaskContext, payload: &[u8]) {
    let Some(envelope) = wire::decode(payload) else {
        ctx.counters.receive_dropped();
        tracing::warn!(target: "repod::cluster", len = payload.len(), "unreadable cluster message dropped");
        return;
    };
    if envelope.origin.node == ctx.origin.node {
        if envelope.origin.nonce != ctx.origin.nonce {
            tracing::error!(target: "repod::cluster", node = ctx.origin.node, "another process uses this node's number (Redis lost its data while nodes ran?): channel ids may collide; restart this node");
        }
        // Our own message, back from Redis: it kept the subscription's watchdog quiet; there
        // is nothing to deliver.
        return;
    }
    let is_frame = envelope.body.is_frame();
    match ctx.events.try_send(Event::Remote(envelope)) {
        Ok(()) => ctx.counters.received(),
        Err(_) => {
            ctx.counters.receive_dropped();
            if !is_frame {
                ctx.resync.store(true, Ordering::Relaxed);
            }
        }
    }
}
