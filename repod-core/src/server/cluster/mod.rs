//! Several server nodes sharing broadcasts, groups and direct sends through Redis pub/sub.
//!
//! Each node keeps its own channels and groups on its dispatch loop, as a lone server does.
//! What a handler sends to channels it does not hold goes out as one Redis message, the frame
//! already encoded, through a bounded queue to a publisher task: the loop never waits on Redis.
//! A subscriber task reads what the other nodes publish and queues it to the loop, which
//! delivers it to its local channels exactly as a local send would.
//!
//! Every node also keeps a replica of the other nodes' group memberships, fed by the joins and
//! leaves they announce, by full snapshots (on start, after a reconnect, on request) and kept
//! alive by heartbeats: a node not heard from for the node timeout is dropped, with its
//! channels. Deliveries do not depend on the replica (each node delivers a group send to its own
//! members); only the membership queries (`group_members`, `group_len`, ...) read it.

mod counters;
mod io;
mod wire;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{MultiplexedConnection, PubSub};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

pub use self::counters::ClusterStats;
pub(crate) use self::counters::Counters;
use self::io::{Names, Outgoing, TaskContext};
use self::wire::{Body, Origin};
use crate::codec::{Codec, CodecKind};
use crate::error::SendError;
use crate::server::{ChannelId, ServerError};

/// The default [`heartbeat`](ClusterConfig::heartbeat): 1 second.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);
/// The default [`node_timeout`](ClusterConfig::node_timeout): 3 seconds.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(3);
/// The default [`publish_queue`](ClusterConfig::publish_queue) and
/// [`receive_queue`](ClusterConfig::receive_queue): 65,536 messages.
pub const DEFAULT_CLUSTER_QUEUE: usize = 65_536;

/// How a server joins a cluster of nodes sharing one Redis: given to
/// [`ServerBuilder::cluster`](crate::server::ServerBuilder::cluster), which also takes a plain
/// Redis URL (`"redis://127.0.0.1:6379"`).
///
/// | setting | default |
/// |---|---|
/// | [`prefix`](Self::prefix) | `"repod"` |
/// | [`heartbeat`](Self::heartbeat) | 1 s |
/// | [`node_timeout`](Self::node_timeout) | 3 s |
/// | [`publish_queue`](Self::publish_queue) | 65,536 messages |
/// | [`receive_queue`](Self::receive_queue) | 65,536 messages |
/// | [`connect_timeout`](Self::connect_timeout) | 5 s |
#[derive(Clone)]
pub struct ClusterConfig {
    pub(crate) url: String,
    prefix: String,
    heartbeat: Duration,
    node_timeout: Duration,
    publish_queue: usize,
    receive_queue: usize,
    pub(crate) connect_timeout: Duration,
}

impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password.
        f.debug_struct("ClusterConfig")
            .field("prefix", &self.prefix)
            .field("heartbeat", &self.heartbeat)
            .field("node_timeout", &self.node_timeout)
            .field("publish_queue", &self.publish_queue)
            .field("receive_queue", &self.receive_queue)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl ClusterConfig {
    /// A cluster reached through the Redis at `url` (`redis://[:password@]host:port[/db]`).
    pub fn new(url: impl Into<String>) -> Self {
        ClusterConfig {
            url: url.into(),
            prefix: "repod".to_owned(),
            heartbeat: DEFAULT_HEARTBEAT,
            node_timeout: DEFAULT_NODE_TIMEOUT,
            publish_queue: DEFAULT_CLUSTER_QUEUE,
            receive_queue: DEFAULT_CLUSTER_QUEUE,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The prefix of every Redis key and channel this cluster uses: several clusters (a game
    /// and its staging copy) can share one Redis under different prefixes. The default is
    /// `"repod"`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How often this node tells the others it is alive. The default is 1 second.
    ///
    /// # Panics
    ///
    /// Panics if `period` is zero.
    pub fn heartbeat(mut self, period: Duration) -> Self {
        assert!(!period.is_zero(), "the heartbeat period must not be zero");
        self.heartbeat = period;
        self
    }

    /// How long another node may stay silent before this node counts it as dead and drops its
    /// channels from every group. Keep it a few heartbeats long. The default is 3 seconds.
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// How many messages may wait for the publisher; beyond it, sends to other nodes are
    /// dropped (and counted in [`ClusterStats::publish_dropped`]). The default is 65,536.
    pub fn publish_queue(mut self, messages: usize) -> Self {
        self.publish_queue = messages.max(1);
        self
    }

    /// How many messages from other nodes may wait for the dispatch loop; beyond it, they are
    /// dropped (and counted in [`ClusterStats::receive_dropped`]). The default is 65,536.
    pub fn receive_queue(mut self, messages: usize) -> Self {
        self.receive_queue = messages.max(1);
        self
    }

    /// How long connecting to Redis may take, when joining and when reconnecting. The default
    /// is 5 seconds.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

impl From<&str> for ClusterConfig {
    fn from(url: &str) -> Self {
        ClusterConfig::new(url)
    }
}

impl From<String> for ClusterConfig {
    fn from(url: String) -> Self {
        ClusterConfig::new(url)
    }
}

/// What the Redis tasks and the heartbeat timer tell the dispatch loop.
pub(crate) enum Event {
    /// A message from another node.
    Remote(wire::Envelope),
    /// The subscriber is (again) subscribed.
    Subscribed,
    /// The publisher is connected again.
    PublisherUp,
    /// Time to send a heartbeat and to look for dead nodes.
    Tick,
}

/// What the loop has to do with its local channels after an [`Event`].
pub(crate) enum Delivery {
    Nothing,
    All {
        frame: Bytes,
        except: Option<ChannelId>,
    },
    Group {
        name: String,
        frame: Bytes,
        except: Option<ChannelId>,
    },
    Direct {
        ids: Vec<ChannelId>,
        frame: Bytes,
    },
    /// Publish every membership of this node's channels ([`Link::publish_snapshot`]).
    Snapshot,
}

/// The builder's part: the settings, then the joined connections.
#[derive(Default)]
pub(crate) struct Setup {
    config: Option<ClusterConfig>,
    joined: Option<io::Joined>,
}

impl Setup {
    pub(crate) fn configure(&mut self, config: ClusterConfig) {
        self.config = Some(config);
    }

    /// Joins the cluster, if one is configured: takes a node number, checks the codec,
    /// subscribes.
    pub(crate) async fn prepare(&mut self, codec: CodecKind) -> Result<(), ServerError> {
        let Some(config) = &self.config else {
            return Ok(());
        };
        if self.joined.is_none() {
            let names = Names::new(&config.prefix);
            let joined = io::join(config, &names, codec.name()).await?;
            tracing::info!(target: "repod::cluster", node = joined.node, prefix = %config.prefix, "joined the cluster");
            self.joined = Some(joined);
        }
        Ok(())
    }

    /// The loop's side and the tasks' side, once [`prepare`](Self::prepare) has joined.
    pub(crate) fn start(self, codec: CodecKind) -> (Link, Io) {
        let (Some(config), Some(joined)) = (self.config, self.joined) else {
            return (Link::default(), Io::default());
        };
        let io::Joined {
            client,
            conn,
            pubsub,
            node,
        } = joined;
        let origin = Origin {
            codec: wire::codec_byte(codec),
            node,
            nonce: nonce(),
        };
        let counters = Arc::new(Counters::default());
        let resync = Arc::new(AtomicBool::new(false));
        let (tx, out_rx) = mpsc::channel(config.publish_queue);
        let (events_tx, events) = mpsc::channel(config.receive_queue);
        let ctx = Arc::new(TaskContext {
            client,
            names: Names::new(&config.prefix),
            origin,
            codec_name: codec.name(),
            counters: counters.clone(),
            events: events_tx,
            connect_timeout: config.connect_timeout,
            resync: resync.clone(),
            silence: (config.heartbeat * 5).max(Duration::from_secs(2)),
        });
        let link = Link {
            active: Some(Box::new(Active {
                origin,
                tx: Some(tx),
                remote: Remote::default(),
                resync_out: false,
                resync_in: resync,
                counters,
                node_timeout: config.node_timeout,
                dropping: false,
                foreign_codec: HashSet::new(),
            })),
        };
        let io = Io {
            inner: Some(IoInner {
                events,
                heartbeat: config.heartbeat,
                interval: None,
                pending: Some((ctx, conn, pubsub, out_rx)),
                publisher: None,
                stop: CancellationToken::new(),
            }),
        };
        (link, io)
    }
}

/// A number telling this process apart from another that got the same node number (which only
/// happens when Redis lost its data while nodes ran).
fn nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.finish()
}

/// The tasks' side, driven by the server's loop: their events, the heartbeat timer, and the
/// publisher to wait for at shutdown.
#[derive(Default)]
pub(crate) struct Io {
    inner: Option<IoInner>,
}

type Pending = (
    Arc<TaskContext>,
    MultiplexedConnection,
    PubSub,
    mpsc::Receiver<Outgoing>,
);

struct IoInner {
    events: mpsc::Receiver<Event>,
    heartbeat: Duration,
    interval: Option<Interval>,
    pending: Option<Pending>,
    publisher: Option<JoinHandle<()>>,
    stop: CancellationToken,
}

/// How long a stopping node waits for its publisher to send what is queued (its goodbye last).
const FINISH_WAIT: Duration = Duration::from_secs(1);

impl Io {
    /// Whether this server is a cluster node.
    pub(crate) fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Spawns the publisher and the subscriber and starts the heartbeat timer; on the server's
    /// runtime, when it starts serving.
    pub(crate) fn start(&mut self) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        let Some((ctx, conn, pubsub, out_rx)) = inner.pending.take() else {
            return;
        };
        inner.publisher = Some(tokio::spawn(io::publisher(ctx.clone(), Some(conn), out_rx)));
        tokio::spawn(io::subscriber(ctx, pubsub, inner.stop.clone()));
        let mut interval = tokio::time::interval(inner.heartbeat);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        inner.interval = Some(interval);
    }

    /// The next event for the loop; never ends on a server that is not a cluster node.
    pub(crate) async fn next(&mut self) -> Event {
        let Some(inner) = self.inner.as_mut() else {
            return std::future::pending().await;
        };
        let IoInner {
            events, interval, ..
        } = inner;
        tokio::select! {
            Some(event) = events.recv() => event,
            _ = async {
                match interval {
                    Some(i) => i.tick().await,
                    None => std::future::pending().await,
                }
            } => Event::Tick,
        }
    }

    /// Waits (briefly) for the publisher to send what the loop queued before it closed its
    /// [`Link`], and stops the subscriber.
    pub(crate) async fn finish(self) {
        let Some(inner) = self.inner else {
            return;
        };
        inner.stop.cancel();
        if let Some(publisher) = inner.publisher {
            if tokio::time::timeout(FINISH_WAIT, publisher).await.is_err() {
                tracing::warn!(target: "repod::cluster", "stopping before the last cluster messages were published");
            }
        }
    }
}

/// The loop's side of a cluster node: publishing, and the replica of the other nodes'
/// memberships. Inactive (every method a no-op) on a server that is not a cluster node.
#[derive(Default)]
pub(crate) struct Link {
    active: Option<Box<Active>>,
}

struct Active {
    origin: Origin,
    /// `None` once the node has said goodbye.
    tx: Option<mpsc::Sender<Outgoing>>,
    remote: Remote,
    /// A membership message could not be queued: publish a snapshot at the next tick.
    resync_out: bool,
    /// A membership message from another node was dropped: ask everyone for a snapshot.
    resync_in: Arc<AtomicBool>,
    counters: Arc<Counters>,
    node_timeout: Duration,
    /// Whether the last message was dropped (to log a run of drops once).
    dropping: bool,
    /// Nodes already reported for using another codec.
    foreign_codec: HashSet<u32>,
}

impl Active {
    fn publish(&mut self, to: u32, head: Vec<u8>, frame: Option<Bytes>, membership: bool) {
        let Some(tx) = &self.tx else {
            return;
        };
        match tx.try_send(Outgoing { to, head, frame }) {
            Ok(()) => self.dropping = false,
            Err(_) => {
                self.counters.publish_dropped(1);
                if membership {
                    self.resync_out = true;
                }
                if !self.dropping {
                    tracing::warn!(target: "repod::cluster", "cluster publish queue full: dropping messages to other nodes");
                    self.dropping = true;
                }
            }
        }
    }
}

impl Link {
    /// This node's number; 0 on a server that is not a cluster node.
    pub(crate) fn node(&self) -> u32 {
        self.active.as_ref().map_or(0, |a| a.origin.node)
    }

    /// The counters, for the server's handle.
    pub(crate) fn counters(&self) -> Option<Arc<Counters>> {
        self.active.as_ref().map(|a| a.counters.clone())
    }

    /// Whether `id` belongs to another node.
    pub(crate) fn is_remote(&self, id: ChannelId) -> bool {
        self.active
            .as_ref()
            .is_some_and(|a| id.node() != a.origin.node)
    }

    /// A frame for every channel of the other nodes (but `except`).
    pub(crate) fn publish_all(&mut self, frame: &Bytes, except: Option<ChannelId>) {
        if let Some(a) = self.active.as_mut() {
            let head = wire::all(a.origin, except);
            a.publish(0, head, Some(frame.clone()), false);
        }
    }

    /// A frame for the members of a group on the other nodes (but `except`).
    pub(crate) fn publish_group(&mut self, name: &str, frame: &Bytes, except: Option<ChannelId>) {
        if let Some(a) = self.active.as_mut() {
            let head = wire::group(a.origin, name, except);
            a.publish(0, head, Some(frame.clone()), false);
        }
    }

    /// A frame for one channel of another node: `None` for an id of this node (or a server
    /// that is not a cluster node), `Err` when its node is not known to be alive.
    pub(crate) fn publish_to(
        &mut self,
        id: ChannelId,
        frame: &Bytes,
    ) -> Option<Result<(), SendError>> {
        let a = self.active.as_mut()?;
        let node = id.node();
        if node == a.origin.node {
            return None;
        }
        if !a.remote.nodes.contains_key(&node) {
            return Some(Err(SendError::NoSuchChannel(id.get())));
        }
        let head = wire::direct(a.origin, &[id]);
        a.publish(node, head, Some(frame.clone()), false);
        Some(Ok(()))
    }

    /// A frame for channels of other nodes: one message per node; returns how many ids are on
    /// nodes known to be alive.
    pub(crate) fn publish_to_many(&mut self, mut ids: Vec<ChannelId>, frame: &Bytes) -> usize {
        let Some(a) = self.active.as_mut() else {
            return 0;
        };
        ids.sort_unstable();
        ids.dedup();
        let mut sent = 0;
        for same_node in ids.chunk_by(|x, y| x.node() == y.node()) {
            let node = same_node[0].node();
            if node == a.origin.node || !a.remote.nodes.contains_key(&node) {
                continue;
            }
            let head = wire::direct(a.origin, same_node);
            a.publish(node, head, Some(frame.clone()), false);
            sent += same_node.len();
        }
        sent
    }

    pub(crate) fn joined(&mut self, id: ChannelId, name: &str) {
        if let Some(a) = self.active.as_mut() {
            let head = wire::joined(a.origin, id, name);
            a.publish(0, head, None, true);
        }
    }

    pub(crate) fn left(&mut self, id: ChannelId, name: &str) {
        if let Some(a) = self.active.as_mut() {
            let head = wire::left(a.origin, id, name);
            a.publish(0, head, None, true);
        }
    }

    pub(crate) fn left_all(&mut self, id: ChannelId) {
        if let Some(a) = self.active.as_mut() {
            let head = wire::left_all(a.origin, id);
            a.publish(0, head, None, true);
        }
    }

    /// Publishes every membership of this node's channels; the others replace what they knew.
    pub(crate) fn publish_snapshot<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (ChannelId, &'a str)>,
    ) {
        if let Some(a) = self.active.as_mut() {
            let head = wire::snapshot(a.origin, entries);
            a.publish(0, head, None, true);
        }
    }

    /// Says goodbye (the others drop this node's channels at once) and lets the publisher end
    /// once it has sent what is queued.
    pub(crate) fn close(&mut self) {
        if let Some(a) = self.active.as_mut() {
            let head = wire::bye(a.origin);
            a.publish(0, head, None, false);
            a.tx = None;
        }
    }

    /// Handles one event: updates the replica, publishes what it calls for, and says what is
    /// to be delivered locally.
    pub(crate) fn receive(&mut self, event: Event) -> Delivery {
        let Some(a) = self.active.as_mut() else {
            return Delivery::Nothing;
        };
        match event {
            Event::Tick => {
                let head = wire::heartbeat(a.origin);
                a.publish(0, head, None, false);
                let now = Instant::now();
                let timeout = a.node_timeout;
                let dead: Vec<u32> = a
                    .remote
                    .nodes
                    .iter()
                    .filter(|(_, view)| now.duration_since(view.last_seen) > timeout)
                    .map(|(&node, _)| node)
                    .collect();
                for node in dead {
                    tracing::warn!(target: "repod::cluster", node, ?timeout, "node silent: dropping its channels");
                    a.remote.remove_node(node);
                }
                if a.resync_in.swap(false, Ordering::Relaxed) {
                    let head = wire::sync(a.origin, 0);
                    a.publish(0, head, None, false);
                }
                if std::mem::take(&mut a.resync_out) {
                    Delivery::Snapshot
                } else {
                    Delivery::Nothing
                }
            }
            Event::Subscribed => {
                // Whatever the others said meanwhile is lost: ask them for all of it.
                let head = wire::sync(a.origin, 0);
                a.publish(0, head, None, false);
                Delivery::Snapshot
            }
            Event::PublisherUp => {
                // A request for snapshots made while the publisher was down was lost (the
                // subscriber may have come back first): ask again now that it can go out.
                let head = wire::sync(a.origin, 0);
                a.publish(0, head, None, false);
                Delivery::Snapshot
            }
            Event::Remote(envelope) => {
                let origin = envelope.origin;
                if origin.codec != a.origin.codec {
                    a.counters.receive_dropped();
                    if a.foreign_codec.insert(origin.node) {
                        tracing::error!(target: "repod::cluster", node = origin.node, "node uses another codec: ignoring its messages");
                    }
                    return Delivery::Nothing;
                }
                if matches!(envelope.body, Body::Bye) {
                    tracing::info!(target: "repod::cluster", node = origin.node, "node left the cluster");
                    a.remote.remove_node(origin.node);
                    return Delivery::Nothing;
                }
                let known = a.remote.seen(origin.node, origin.nonce);
                if !known && !matches!(envelope.body, Body::Snapshot(_)) {
                    // A node we did not know (or had given up for dead): learn its memberships.
                    tracing::info!(target: "repod::cluster", node = origin.node, "node joined the cluster");
                    let head = wire::sync(a.origin, origin.node);
                    a.publish(0, head, None, false);
                }
                match envelope.body {
                    Body::All { except, frame } => Delivery::All { frame, except },
                    Body::Group {
                        name,
                        except,
                        frame,
                    } => Delivery::Group {
                        name,
                        frame,
                        except,
                    },
                    Body::Direct { ids, frame } => Delivery::Direct { ids, frame },
                    Body::Joined(id, name) => {
                        a.remote.join(origin.node, id, &name);
                        Delivery::Nothing
                    }
                    Body::Left(id, name) => {
                        a.remote.leave(origin.node, id, &name);
                        Delivery::Nothing
                    }
                    Body::LeftAll(id) => {
                        a.remote.leave_all(origin.node, id);
                        Delivery::Nothing
                    }
                    Body::Snapshot(entries) => {
                        a.remote.replace(origin.node, entries);
                        Delivery::Nothing
                    }
                    Body::Heartbeat | Body::Bye => Delivery::Nothing,
                    Body::Sync(target) if target == 0 || target == a.origin.node => {
                        Delivery::Snapshot
                    }
                    Body::Sync(_) => Delivery::Nothing,
                }
            }
        }
    }

    /// The members of a group on other nodes.
    pub(crate) fn remote_members(&self, name: &str) -> impl Iterator<Item = ChannelId> + '_ {
        self.active
            .as_ref()
            .and_then(|a| a.remote.groups.get(name))
            .into_iter()
            .flatten()
            .copied()
    }

    /// How many members a group has on other nodes.
    pub(crate) fn remote_len(&self, name: &str) -> usize {
        self.active
            .as_ref()
            .and_then(|a| a.remote.groups.get(name))
            .map_or(0, HashSet::len)
    }

    /// Whether a channel of another node is in a group.
    pub(crate) fn remote_contains(&self, id: ChannelId, name: &str) -> bool {
        self.active
            .as_ref()
            .and_then(|a| a.remote.groups.get(name))
            .is_some_and(|members| members.contains(&id))
    }

    /// The groups of a channel of another node.
    pub(crate) fn remote_groups_of(&self, id: ChannelId) -> impl Iterator<Item = &str> + '_ {
        self.active
            .as_ref()
            .and_then(|a| a.remote.nodes.get(&id.node()))
            .and_then(|view| view.groups.get(&id))
            .into_iter()
            .flatten()
            .map(|name| &**name)
    }

    /// Every group with members on other nodes, with how many.
    pub(crate) fn remote_groups(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.active
            .as_ref()
            .into_iter()
            .flat_map(|a| a.remote.groups.iter())
            .map(|(name, members)| (&**name, members.len()))
    }

    /// The other nodes this node believes alive.
    pub(crate) fn nodes(&self) -> Vec<u32> {
        let mut nodes: Vec<u32> = self
            .active
            .as_ref()
            .map(|a| a.remote.nodes.keys().copied().collect())
            .unwrap_or_default();
        nodes.sort_unstable();
        nodes
    }
}

/// The other nodes, and their channels' memberships.
#[derive(Default)]
struct Remote {
    nodes: HashMap<u32, NodeView>,
    groups: HashMap<Arc<str>, HashSet<ChannelId>>,
}

struct NodeView {
    last_seen: Instant,
    nonce: u64,
    /// Each channel's groups.
    groups: HashMap<ChannelId, Vec<Arc<str>>>,
}

impl Remote {
    /// Notes that `node` spoke; `false` if it was not known (or restarted under the same
    /// number), in which case it starts with no memberships.
    fn seen(&mut self, node: u32, nonce: u64) -> bool {
        let now = Instant::now();
        match self.nodes.get_mut(&node) {
            Some(view) if view.nonce == nonce => {
                view.last_seen = now;
                true
            }
            _ => {
                self.remove_node(node);
                self.nodes.insert(
                    node,
                    NodeView {
                        last_seen: now,
                        nonce,
                        groups: HashMap::new(),
                    },
                );
                false
            }
        }
    }

    fn join(&mut self, node: u32, id: ChannelId, name: &str) {
        // A node speaks for its own channels only.
        if id.node() != node {
            return;
        }
        let Some(view) = self.nodes.get_mut(&node) else {
            return;
        };
        let key = match self.groups.get_key_value(name) {
            Some((key, _)) => key.clone(),
            None => Arc::from(name),
        };
        if self.groups.entry(key.clone()).or_default().insert(id) {
            view.groups.entry(id).or_default().push(key);
        }
    }

    fn forget(groups: &mut HashMap<Arc<str>, HashSet<ChannelId>>, id: ChannelId, name: &str) {
        if let Some(members) = groups.get_mut(name) {
            members.remove(&id);
            if members.is_empty() {
                groups.remove(name);
            }
        }
    }

    fn leave(&mut self, node: u32, id: ChannelId, name: &str) {
        let Some(view) = self.nodes.get_mut(&node) else {
            return;
        };
        let Some(names) = view.groups.get_mut(&id) else {
            return;
        };
        let Some(i) = names.iter().position(|n| **n == *name) else {
            return;
        };
        names.swap_remove(i);
        if names.is_empty() {
            view.groups.remove(&id);
        }
        Self::forget(&mut self.groups, id, name);
    }

    fn leave_all(&mut self, node: u32, id: ChannelId) {
        let Some(view) = self.nodes.get_mut(&node) else {
            return;
        };
        for name in view.groups.remove(&id).unwrap_or_default() {
            Self::forget(&mut self.groups, id, &name);
        }
    }

    fn clear_node(&mut self, node: u32) {
        let Some(view) = self.nodes.get_mut(&node) else {
            return;
        };
        for (id, names) in view.groups.drain() {
            for name in names {
                Self::forget(&mut self.groups, id, &name);
            }
        }
    }

    fn remove_node(&mut self, node: u32) {
        self.clear_node(node);
        self.nodes.remove(&node);
    }

    fn replace(&mut self, node: u32, entries: Vec<(ChannelId, String)>) {
        self.clear_node(node);
        for (id, name) in entries {
            self.join(node, id, &name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(node: u32, n: u64) -> ChannelId {
        ChannelId::new(u64::from(node) << 32 | n)
    }

    fn members(remote: &Remote, name: &str) -> Vec<ChannelId> {
        let mut v: Vec<ChannelId> = remote
            .groups
            .get(name)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replica_follows_joins_leaves_snapshots_and_node_death() {
        let mut r = Remote::default();
        assert!(!r.seen(2, 9));
        assert!(r.seen(2, 9));
        r.join(2, id(2, 1), "red");
        r.join(2, id(2, 2), "red");
        r.join(2, id(2, 2), "blue");
        // Not its own channel: ignored.
        r.join(2, id(3, 1), "red");
        assert_eq!(members(&r, "red"), [id(2, 1), id(2, 2)]);
        r.leave(2, id(2, 1), "red");
        assert_eq!(members(&r, "red"), [id(2, 2)]);
        r.leave_all(2, id(2, 2));
        assert!(r.groups.is_empty());
        r.join(2, id(2, 5), "red");
        r.replace(2, vec![(id(2, 6), "green".to_owned())]);
        assert_eq!(members(&r, "red"), []);
        assert_eq!(members(&r, "green"), [id(2, 6)]);
        assert!(!r.seen(3, 1));
        r.join(3, id(3, 1), "green");
        r.remove_node(2);
        assert_eq!(members(&r, "green"), [id(3, 1)]);
        // The same number with another nonce is a new process: it starts empty.
        assert!(!r.seen(3, 2));
        assert!(r.groups.is_empty());
    }
}
