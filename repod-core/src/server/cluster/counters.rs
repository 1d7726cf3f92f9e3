//! The counting points of the cluster: every message published to Redis, every message dropped
//! on the way out or in, every message received from another node, every reconnection.
//!
//! This is the one place those events are counted; metrics for operators hook in here (each
//! method below is called exactly where the event happens).

use std::sync::atomic::{AtomicU64, Ordering};

/// What a cluster node has counted since it started, from
/// [`ServerHandle::cluster_stats`](crate::server::ServerHandle::cluster_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterStats {
    /// Messages Redis accepted from this node (frames and the cluster's bookkeeping).
    pub published: u64,
    /// Messages this node meant to publish and did not: its publish queue was full, or Redis
    /// was unreachable or failed the command.
    pub publish_dropped: u64,
    /// Messages received from other nodes and handed to the dispatch loop.
    pub received: u64,
    /// Messages from other nodes not handled: the loop's cluster queue was full, the message
    /// did not parse, or its node uses another codec.
    pub receive_dropped: u64,
    /// Connections to Redis re-established after a failure (publishing and subscribing count
    /// apart).
    pub reconnects: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    published: AtomicU64,
    publish_dropped: AtomicU64,
    received: AtomicU64,
    receive_dropped: AtomicU64,
    reconnects: AtomicU64,
}

impl Counters {
    /// Redis accepted `n` messages.
    pub(crate) fn published(&self, n: u64) {
        self.published.fetch_add(n, Ordering::Relaxed);
        crate::observe::cluster_published(n);
    }

    /// `n` messages were not published.
    pub(crate) fn publish_dropped(&self, n: u64) {
        self.publish_dropped.fetch_add(n, Ordering::Relaxed);
        crate::observe::cluster_dropped("publish", n);
    }

    /// One message from another node reached the loop's queue.
    pub(crate) fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
        crate::observe::cluster_received();
    }

    /// One message from another node was dropped.
    pub(crate) fn receive_dropped(&self) {
        self.receive_dropped.fetch_add(1, Ordering::Relaxed);
        crate::observe::cluster_dropped("receive", 1);
    }

    /// A connection to Redis came back.
    pub(crate) fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ClusterStats {
        ClusterStats {
            published: self.published.load(Ordering::Relaxed),
            publish_dropped: self.publish_dropped.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            receive_dropped: self.receive_dropped.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
        }
    }
}
