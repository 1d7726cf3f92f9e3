//! The server's instrumentation points, in one place.
//!
//! Server code calls these functions where something worth counting happens. With the
//! `metrics` feature they record through the `metrics` facade (names in [`crate::metrics`]);
//! without it every function is empty and every type is zero-sized, so a build without the
//! feature pays nothing.
//!
//! Hot paths keep handles to their counters: a connection's reader caches one pair of counters
//! per action ([`Received`]), the dispatch loop one pair per action it sends ([`Sent`]), so
//! counting a message is two atomic additions, not a registry look-up.

#![cfg_attr(not(feature = "metrics"), allow(unused_variables))]

use bytes::Bytes;

use crate::codec::CodecKind;
use crate::error::CloseReason;

#[cfg(feature = "metrics")]
use crate::message::{Heartbeat, Message};
#[cfg(feature = "metrics")]
use crate::metrics as names;
#[cfg(feature = "metrics")]
use ::metrics::{counter, gauge, Counter};
#[cfg(feature = "metrics")]
use std::time::Instant;

/// The label of actions that are not counted under their own name.
#[cfg(feature = "metrics")]
const OTHER: &str = "_other";

/// The most distinct action names counted on the sending side; the rest count as `_other`.
#[cfg(feature = "metrics")]
const MAX_SENT_ACTIONS: usize = 256;

/// How often the dispatch loop samples the gauges it owns.
#[cfg(feature = "metrics")]
const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Gives every metric its description (see [`crate::metrics::describe`]).
#[inline]
pub(crate) fn describe() {
    #[cfg(feature = "metrics")]
    {
        names::describe();
        // Series without labels exist from the start, at zero, so that alerts on their rate
        // see them before the first event.
        for name in [
            names::CONNECTIONS_ACCEPTED,
            names::SLOW_CONSUMERS,
            names::AUTH_REFUSALS,
            names::DISPATCH_BUSY,
        ] {
            counter!(name).increment(0);
        }
        gauge!(names::CONNECTIONS_OPEN).increment(0.0);
    }
}

/// A connection was accepted and counted open.
#[inline]
pub(crate) fn opened() {
    #[cfg(feature = "metrics")]
    {
        counter!(names::CONNECTIONS_ACCEPTED).increment(1);
        gauge!(names::CONNECTIONS_OPEN).increment(1.0);
    }
}

/// A connection counted by [`opened`] closed its socket.
#[inline]
pub(crate) fn socket_closed() {
    #[cfg(feature = "metrics")]
    gauge!(names::CONNECTIONS_OPEN).decrement(1.0);
}

/// A connection was refused at once: over `max_connections` (`per_address == false`) or over
/// `max_connections_per_ip`.
#[inline]
pub(crate) fn refused(per_address: bool) {
    #[cfg(feature = "metrics")]
    {
        let reason = if per_address {
            "per_address"
        } else {
            "server_full"
        };
        counter!(names::CONNECTIONS_REFUSED, "reason" => reason).increment(1);
    }
}

/// A channel closed, for this reason.
#[inline]
pub(crate) fn closed(reason: &CloseReason) {
    #[cfg(feature = "metrics")]
    counter!(names::CONNECTIONS_CLOSED, "reason" => reason_label(reason)).increment(1);
}

/// The `reason` label of a close: a fixed name per kind, never the text it carries.
#[cfg(feature = "metrics")]
fn reason_label(reason: &CloseReason) -> &'static str {
    #[allow(unreachable_patterns)]
    match reason {
        CloseReason::PeerClosed => "peer_closed",
        CloseReason::Disconnected => "disconnected",
        CloseReason::SlowConsumer => "slow_consumer",
        CloseReason::Protocol(_) => "protocol",
        CloseReason::Io(_) => "io",
        CloseReason::HandlerPanicked(_) => "handler_panicked",
        CloseReason::Shutdown => "shutdown",
        CloseReason::Idle => "idle",
        CloseReason::RateLimited => "rate_limited",
        CloseReason::SessionExpired => "session_expired",
        _ => "other",
    }
}

/// A channel's outbound queue overflowed: it is reset as a slow consumer.
#[inline]
pub(crate) fn slow_consumer() {
    #[cfg(feature = "metrics")]
    counter!(names::SLOW_CONSUMERS).increment(1);
}

/// A message was over its peer's rate limit; `disconnect` tells the policy applied.
#[inline]
pub(crate) fn rate_limited(disconnect: bool) {
    #[cfg(feature = "metrics")]
    {
        let policy = if disconnect { "disconnect" } else { "throttle" };
        counter!(names::RATE_LIMITED, "policy" => policy).increment(1);
    }
}

/// A peer was refused by authentication.
#[inline]
pub(crate) fn auth_refused() {
    #[cfg(feature = "metrics")]
    counter!(names::AUTH_REFUSALS).increment(1);
}

/// A message was published to the other nodes of a cluster.
#[inline]
#[cfg_attr(not(feature = "cluster"), allow(dead_code))] // called by the cluster transport
pub(crate) fn cluster_published(n: u64) {
    #[cfg(feature = "metrics")]
    counter!(names::CLUSTER_PUBLISHED).increment(n);
    #[cfg(not(feature = "metrics"))]
    let _ = n;
}

/// A message arrived from another node of a cluster.
#[inline]
#[cfg_attr(not(feature = "cluster"), allow(dead_code))] // called by the cluster transport
pub(crate) fn cluster_received() {
    #[cfg(feature = "metrics")]
    counter!(names::CLUSTER_RECEIVED).increment(1);
}

/// A cluster message was dropped. `reason` must come from a small fixed set of names (such as
/// `"queue_full"` or `"disconnected"`), never from data.
#[inline]
#[cfg_attr(not(feature = "cluster"), allow(dead_code))] // called by the cluster transport
pub(crate) fn cluster_dropped(reason: &'static str, n: u64) {
    #[cfg(feature = "metrics")]
    counter!(names::CLUSTER_DROPPED, "reason" => reason).increment(n);
    #[cfg(not(feature = "metrics"))]
    let _ = (reason, n);
}

/// A pair of counters for one action: messages and bytes.
#[cfg(feature = "metrics")]
struct Pair {
    messages: Counter,
    bytes: Counter,
}

#[cfg(feature = "metrics")]
impl Pair {
    fn new(messages: &'static str, bytes: &'static str, action: String) -> Pair {
        Pair {
            messages: counter!(messages, "action" => action.clone()),
            bytes: counter!(bytes, "action" => action),
        }
    }

    #[inline]
    fn add(&self, count: u64, bytes: u64) {
        self.messages.increment(count);
        self.bytes.increment(bytes);
    }
}

/// The receiving side's counters of one connection, one pair per known action, made on first
/// use.
pub(crate) struct Received {
    #[cfg(feature = "metrics")]
    known: &'static [&'static str],
    #[cfg(feature = "metrics")]
    login: Option<&'static str>,
    /// One slot per known action, then the heartbeat, the login action and `_other`.
    #[cfg(feature = "metrics")]
    pairs: Vec<Option<Pair>>,
}

impl Received {
    /// Counters for a channel with these actions, on a server whose login action (if it
    /// authenticates) is `login`.
    #[inline]
    pub(crate) fn new(actions: &'static [&'static str], login: Option<&'static str>) -> Self {
        Received {
            #[cfg(feature = "metrics")]
            known: actions,
            #[cfg(feature = "metrics")]
            login,
            #[cfg(feature = "metrics")]
            pairs: std::iter::repeat_with(|| None)
                .take(actions.len() + 3)
                .collect(),
        }
    }

    /// Counts one message with this action, `len` bytes long (its frame, header included).
    #[inline]
    pub(crate) fn count(&mut self, action: &str, len: usize) {
        #[cfg(feature = "metrics")]
        {
            let n = self.known.len();
            let (slot, label) = match self.known.iter().position(|&a| a == action) {
                Some(i) => (i, self.known[i]),
                None if action == <Heartbeat as Message>::ACTION => {
                    (n, <Heartbeat as Message>::ACTION)
                }
                None => match self.login {
                    Some(login) if login == action => (n + 1, login),
                    _ => (n + 2, OTHER),
                },
            };
            let pair = self.pairs[slot].get_or_insert_with(|| {
                Pair::new(
                    names::MESSAGES_RECEIVED,
                    names::BYTES_RECEIVED,
                    label.to_owned(),
                )
            });
            pair.add(1, len as u64);
        }
    }
}

/// The sending side's counters of one dispatch loop, one pair per action sent, made on first
/// use.
pub(crate) struct Sent {
    #[cfg(feature = "metrics")]
    index: std::collections::HashMap<Box<str>, usize>,
    #[cfg(feature = "metrics")]
    pairs: Vec<Pair>,
    /// The pair of `_other`, once used.
    #[cfg(feature = "metrics")]
    other: Option<usize>,
}

/// Which counters a frame about to be sent goes to, and its length: see [`Sent::tally`].
#[derive(Clone, Copy)]
pub(crate) struct Tally {
    #[cfg(feature = "metrics")]
    pair: usize,
    #[cfg(feature = "metrics")]
    len: u64,
}

impl Sent {
    #[inline]
    pub(crate) fn new() -> Self {
        Sent {
            #[cfg(feature = "metrics")]
            index: std::collections::HashMap::new(),
            #[cfg(feature = "metrics")]
            pairs: Vec::new(),
            #[cfg(feature = "metrics")]
            other: None,
        }
    }

    /// Reads the action of an encoded frame (its name, `reply` for a reply) and finds its
    /// counters, without counting anything yet.
    #[inline]
    pub(crate) fn tally(&mut self, codec: CodecKind, frame: &Bytes) -> Tally {
        #[cfg(feature = "metrics")]
        {
            let pair = self.pair_of(codec, frame);
            Tally {
                pair,
                len: frame.len() as u64,
            }
        }
        #[cfg(not(feature = "metrics"))]
        Tally {}
    }

    /// Counts a frame queued to `recipients` channels.
    #[inline]
    pub(crate) fn add(&self, tally: Tally, recipients: usize) {
        #[cfg(feature = "metrics")]
        if recipients > 0 {
            let n = recipients as u64;
            self.pairs[tally.pair].add(n, n * tally.len);
        }
    }

    /// Counts an encoded frame queued to `recipients` channels.
    #[inline]
    pub(crate) fn frame(&mut self, codec: CodecKind, frame: &Bytes, recipients: usize) {
        #[cfg(feature = "metrics")]
        if recipients > 0 {
            let tally = self.tally(codec, frame);
            self.add(tally, recipients);
        }
    }

    #[cfg(feature = "metrics")]
    fn pair_of(&mut self, codec: CodecKind, frame: &Bytes) -> usize {
        use crate::codec::Codec;
        let raw = frame.get(crate::frame::HEADER_LEN..).and_then(|_| {
            codec
                .decode_raw(frame.slice(crate::frame::HEADER_LEN..))
                .ok()
        });
        let action = match &raw {
            Some(raw) if raw.reply_id().is_some() => crate::codec::REPLY_ACTION,
            Some(raw) => raw.action(),
            None => OTHER,
        };
        if let Some(&pair) = self.index.get(action) {
            return pair;
        }
        if self.index.len() >= MAX_SENT_ACTIONS {
            return self.other_pair();
        }
        let pair = self.push(action.to_owned());
        self.index.insert(action.into(), pair);
        pair
    }

    #[cfg(feature = "metrics")]
    fn other_pair(&mut self) -> usize {
        match self.other {
            Some(pair) => pair,
            None => {
                let pair = self.push(OTHER.to_owned());
                self.other = Some(pair);
                pair
            }
        }
    }

    #[cfg(feature = "metrics")]
    fn push(&mut self, action: String) -> usize {
        self.pairs
            .push(Pair::new(names::MESSAGES_SENT, names::BYTES_SENT, action));
        self.pairs.len() - 1
    }
}

/// The dispatch loop's busy-time counter, kept for the server's lifetime.
pub(crate) struct LoopTimer {
    #[cfg(feature = "metrics")]
    busy: Counter,
}

impl LoopTimer {
    #[inline]
    pub(crate) fn new() -> Self {
        LoopTimer {
            #[cfg(feature = "metrics")]
            busy: counter!(names::DISPATCH_BUSY),
        }
    }

    /// Starts timing a turn of the loop's work, from now until the guard is dropped.
    #[inline]
    #[must_use]
    pub(crate) fn busy(&self) -> Busy<'_> {
        Busy {
            #[cfg(feature = "metrics")]
            counter: &self.busy,
            #[cfg(feature = "metrics")]
            started: Instant::now(),
            _timer: std::marker::PhantomData,
        }
    }
}

/// Times one turn of the dispatch loop's work; records it when dropped.
pub(crate) struct Busy<'a> {
    #[cfg(feature = "metrics")]
    counter: &'a Counter,
    #[cfg(feature = "metrics")]
    started: Instant,
    _timer: std::marker::PhantomData<&'a LoopTimer>,
}

impl Drop for Busy<'_> {
    #[inline]
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        {
            let nanos = self.started.elapsed().as_nanos();
            self.counter
                .increment(u64::try_from(nanos).unwrap_or(u64::MAX));
        }
    }
}

/// Whether the `metrics` feature is on: the dispatch loop waits for [`Sampler::tick`] only then.
pub(crate) const ENABLED: bool = cfg!(feature = "metrics");

/// Paces the sampling of the gauges the dispatch loop owns: once a second.
pub(crate) struct Sampler {
    #[cfg(feature = "metrics")]
    interval: tokio::time::Interval,
}

impl Sampler {
    /// A pace starting now; call it on the runtime (it makes a timer).
    #[inline]
    pub(crate) fn new() -> Self {
        Sampler {
            #[cfg(feature = "metrics")]
            interval: {
                let mut interval = tokio::time::interval(SAMPLE_EVERY);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                interval
            },
        }
    }

    /// Waits until the next sample is due (for ever without the feature).
    pub(crate) async fn tick(&mut self) {
        #[cfg(feature = "metrics")]
        self.interval.tick().await;
        #[cfg(not(feature = "metrics"))]
        std::future::pending::<()>().await;
    }
}

/// Records a sample of the loop's gauges: channels connected, and the bytes queued to them in
/// total and in the fullest queue.
#[inline]
pub(crate) fn sample(channels: usize, queued_total: usize, queued_max: usize) {
    #[cfg(feature = "metrics")]
    {
        gauge!(names::CHANNELS).set(channels as f64);
        gauge!(names::OUTBOUND_QUEUED_BYTES).set(queued_total as f64);
        gauge!(names::OUTBOUND_QUEUED_BYTES_MAX).set(queued_max as f64);
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;
    use crate::codec::Codec;

    /// Runs `f` with a recorder of its own (on this thread only) and returns what it rendered.
    fn recorded(f: impl FnOnce()) -> String {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        ::metrics::with_local_recorder(&recorder, f);
        handle.render()
    }

    fn has(text: &str, sample: &str) {
        assert!(
            text.lines().any(|l| l == sample),
            "no `{sample}` in\n{text}"
        );
    }

    #[test]
    fn sent_frames_count_per_recipient_under_their_action_and_replies_as_reply() {
        for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
            #[derive(serde::Serialize)]
            struct Chat {
                text: &'static str,
            }
            let chat = codec
                .encode_frame("chat", &Chat { text: "hi" }, usize::MAX)
                .expect("encode");
            let reply = codec
                .encode_reply(7, Ok(&3u32), usize::MAX)
                .expect("encode");
            let text = recorded(|| {
                let mut sent = Sent::new();
                sent.frame(codec, &chat, 40);
                sent.frame(codec, &chat, 0);
                let tally = sent.tally(codec, &reply);
                sent.add(tally, 1);
                // Not a frame of this codec at all.
                sent.frame(codec, &Bytes::from_static(b"\0\0\0\x01\xc1"), 1);
            });
            has(&text, r#"repod_messages_sent_total{action="chat"} 40"#);
            let bytes = 40 * chat.len();
            has(
                &text,
                &format!(r#"repod_bytes_sent_total{{action="chat"}} {bytes}"#),
            );
            has(&text, r#"repod_messages_sent_total{action="reply"} 1"#);
            has(&text, r#"repod_messages_sent_total{action="_other"} 1"#);
        }
    }

    #[test]
    fn sent_actions_beyond_the_cap_count_as_other() {
        let codec = CodecKind::Bincode;
        let text = recorded(|| {
            let mut sent = Sent::new();
            for n in 0..MAX_SENT_ACTIONS + 10 {
                let frame = codec
                    .encode_frame(&format!("a{n}"), &(), usize::MAX)
                    .expect("encode");
                sent.frame(codec, &frame, 1);
            }
        });
        has(&text, r#"repod_messages_sent_total{action="a0"} 1"#);
        has(&text, r#"repod_messages_sent_total{action="_other"} 10"#);
        let series = text
            .lines()
            .filter(|l| l.starts_with("repod_messages_sent_total{"))
            .count();
        assert_eq!(series, MAX_SENT_ACTIONS + 1);
    }

    #[test]
    fn received_actions_are_the_channels_own_or_a_fixed_few() {
        let text = recorded(|| {
            let mut received = Received::new(&["move", "chat"], Some("login"));
            received.count("move", 10);
            received.count("move", 12);
            received.count("_heartbeat", 5);
            received.count("login", 8);
            for n in 0..100 {
                received.count(&format!("made-up-{n}"), 1);
            }
        });
        has(&text, r#"repod_messages_received_total{action="move"} 2"#);
        has(&text, r#"repod_bytes_received_total{action="move"} 22"#);
        has(
            &text,
            r#"repod_messages_received_total{action="_heartbeat"} 1"#,
        );
        has(&text, r#"repod_messages_received_total{action="login"} 1"#);
        has(
            &text,
            r#"repod_messages_received_total{action="_other"} 100"#,
        );
        assert!(!text.contains("made-up"), "{text}");
        assert!(!text.contains(r#"action="chat""#), "{text}");
    }

    #[test]
    fn closes_refusals_and_cluster_events_have_fixed_labels() {
        let text = recorded(|| {
            closed(&CloseReason::Protocol(
                "frame too large: 99999999 bytes".into(),
            ));
            closed(&CloseReason::Io("broken pipe".into()));
            closed(&CloseReason::SlowConsumer);
            refused(false);
            refused(true);
            rate_limited(false);
            cluster_published(1);
            cluster_published(1);
            cluster_received();
            cluster_dropped("queue_full", 1);
        });
        has(
            &text,
            r#"repod_connections_closed_total{reason="protocol"} 1"#,
        );
        has(&text, r#"repod_connections_closed_total{reason="io"} 1"#);
        has(
            &text,
            r#"repod_connections_closed_total{reason="slow_consumer"} 1"#,
        );
        has(
            &text,
            r#"repod_connections_refused_total{reason="server_full"} 1"#,
        );
        has(
            &text,
            r#"repod_connections_refused_total{reason="per_address"} 1"#,
        );
        has(&text, r#"repod_rate_limited_total{policy="throttle"} 1"#);
        has(&text, "repod_cluster_published_total 2");
        has(&text, "repod_cluster_received_total 1");
        has(
            &text,
            r#"repod_cluster_dropped_total{reason="queue_full"} 1"#,
        );
    }
}
