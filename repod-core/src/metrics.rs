//! The server's metrics: names, labels and descriptions (cargo feature `metrics`).
//!
//! With the feature on, the server records its counters, gauges and histograms through the
//! [`metrics`](https://docs.rs/metrics) facade; the application chooses where they go by
//! installing a recorder (for Prometheus, `metrics-exporter-prometheus`), before it starts
//! the server: what is recorded while no recorder is installed is lost. Without the feature
//! nothing is recorded and nothing of it is compiled in.
//!
//! Every name starts with `repod_`. Labels take only the values listed here, so the number of
//! series stays bounded whatever peers send; `action` is bounded by the application's own
//! actions (see [`MESSAGES_RECEIVED`] and [`MESSAGES_SENT`]).
//!
//! The counters are process-wide: two servers in one process add to the same series.
//!
//! ```
//! // The names are constants, for dashboards and tests.
//! assert_eq!(repod_core::metrics::CONNECTIONS_ACCEPTED, "repod_connections_accepted_total");
//! ```

/// Gauge: connections open now, from their acceptance until their socket is closed
/// (authenticating and closing ones included).
pub const CONNECTIONS_OPEN: &str = "repod_connections_open";

/// Counter: connections accepted (past `max_connections` and `max_connections_per_ip`).
pub const CONNECTIONS_ACCEPTED: &str = "repod_connections_accepted_total";

/// Counter, label `reason`: connections refused at once, `server_full` (over
/// `max_connections`) or `per_address` (over `max_connections_per_ip`).
pub const CONNECTIONS_REFUSED: &str = "repod_connections_refused_total";

/// Counter, label `reason`: channels closed, by why: `peer_closed`, `disconnected`,
/// `shutdown`, `slow_consumer`, `protocol`, `io`, `handler_panicked`, `idle`,
/// `rate_limited`, or `other`. A connection refused by authentication never had a channel
/// and is counted in [`AUTH_REFUSALS`] instead.
pub const CONNECTIONS_CLOSED: &str = "repod_connections_closed_total";

/// Gauge: channels connected (authenticated, not yet closed), sampled about once a second by
/// the dispatch loop.
pub const CHANNELS: &str = "repod_channels";

/// Counter, label `action`: messages received from peers and read by the server, by action.
///
/// `action` is one of the channel's own actions, `_heartbeat`, the login action of a server
/// that authenticates, or `_other` for any other name a peer sends (a fallback handler's
/// actions are all `_other`), so a peer cannot create series.
pub const MESSAGES_RECEIVED: &str = "repod_messages_received_total";

/// Counter, label `action`: bytes of the messages of [`MESSAGES_RECEIVED`], frame headers
/// included.
pub const BYTES_RECEIVED: &str = "repod_bytes_received_total";

/// Counter, label `action`: messages queued to channels, one per recipient (a broadcast to
/// 100 channels counts 100), by action.
///
/// `action` is the action name the server's code sent, `reply` for replies to requests, and
/// `_other` beyond the first 256 names (an application that makes up action names at run
/// time stays bounded).
pub const MESSAGES_SENT: &str = "repod_messages_sent_total";

/// Counter, label `action`: bytes of the messages of [`MESSAGES_SENT`], frame headers
/// included, one copy per recipient.
pub const BYTES_SENT: &str = "repod_bytes_sent_total";

/// Gauge: bytes waiting in all outbound queues together, sampled about once a second.
pub const OUTBOUND_QUEUED_BYTES: &str = "repod_outbound_queued_bytes";

/// Gauge: bytes waiting in the fullest outbound queue, sampled about once a second. Close to
/// the `outbound_queue_bytes` limit means a slow consumer is about to be dropped.
pub const OUTBOUND_QUEUED_BYTES_MAX: &str = "repod_outbound_queued_bytes_max";

/// Counter: channels reset because their outbound queue overflowed (slow consumers).
pub const SLOW_CONSUMERS: &str = "repod_slow_consumer_resets_total";

/// Counter, label `policy`: messages over a peer's rate limit, `throttle` (the peer was
/// slowed down) or `disconnect` (the peer was disconnected).
pub const RATE_LIMITED: &str = "repod_rate_limited_total";

/// Counter: peers refused by authentication (wrong first message, failed check, too many
/// attempts, timeout).
pub const AUTH_REFUSALS: &str = "repod_auth_refusals_total";

/// Counter: nanoseconds the dispatch loop spent working (handlers, ticks, sends, accepting)
/// rather than waiting. Its rate divided by 10⁹ is the loop's utilization: 1.0 means the loop
/// never waits, and everything queues behind it. (Counters of the `metrics` facade are
/// integers, hence nanoseconds rather than seconds.)
pub const DISPATCH_BUSY: &str = "repod_dispatch_busy_nanoseconds_total";

/// Counter: messages this node published to the other nodes of a cluster.
pub const CLUSTER_PUBLISHED: &str = "repod_cluster_published_total";

/// Counter: messages this node received from the other nodes of a cluster.
pub const CLUSTER_RECEIVED: &str = "repod_cluster_received_total";

/// Counter, label `reason`: cluster messages dropped instead of being published or delivered.
pub const CLUSTER_DROPPED: &str = "repod_cluster_dropped_total";

/// Gives every metric above its description and unit, for the recorder to show (Prometheus'
/// `# HELP` lines).
///
/// The server calls it when it starts; call it yourself only to have the descriptions before
/// any server runs. Like every metric, it reaches only a recorder installed before the call.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, Unit};

    describe_gauge!(
        CONNECTIONS_OPEN,
        "Connections open now, from acceptance to socket close."
    );
    describe_counter!(CONNECTIONS_ACCEPTED, "Connections accepted.");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused at once, by reason (server_full, per_address)."
    );
    describe_counter!(CONNECTIONS_CLOSED, "Channels closed, by reason.");
    describe_gauge!(CHANNELS, "Channels connected, sampled about once a second.");
    describe_counter!(
        MESSAGES_RECEIVED,
        "Messages received from peers, by action."
    );
    describe_counter!(
        BYTES_RECEIVED,
        Unit::Bytes,
        "Bytes of messages received from peers, by action, headers included."
    );
    describe_counter!(
        MESSAGES_SENT,
        "Messages queued to channels, one per recipient, by action."
    );
    describe_counter!(
        BYTES_SENT,
        Unit::Bytes,
        "Bytes of messages queued to channels, one copy per recipient, by action."
    );
    describe_gauge!(
        OUTBOUND_QUEUED_BYTES,
        Unit::Bytes,
        "Bytes waiting in all outbound queues, sampled about once a second."
    );
    describe_gauge!(
        OUTBOUND_QUEUED_BYTES_MAX,
        Unit::Bytes,
        "Bytes waiting in the fullest outbound queue, sampled about once a second."
    );
    describe_counter!(
        SLOW_CONSUMERS,
        "Channels reset because their outbound queue overflowed."
    );
    describe_counter!(
        RATE_LIMITED,
        "Messages over a peer's rate limit, by policy (throttle, disconnect)."
    );
    describe_counter!(AUTH_REFUSALS, "Peers refused by authentication.");
    describe_counter!(
        DISPATCH_BUSY,
        Unit::Nanoseconds,
        "Nanoseconds the dispatch loop spent working rather than waiting."
    );
    describe_counter!(CLUSTER_PUBLISHED, "Messages published to the other nodes.");
    describe_counter!(CLUSTER_RECEIVED, "Messages received from the other nodes.");
    describe_counter!(CLUSTER_DROPPED, "Cluster messages dropped, by reason.");
}
