//! Per-peer limits: how fast one peer may send, and how many connections one address may hold.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};

/// What happens to a peer that sends faster than its [`RateLimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RatePolicy {
    /// Stop reading from the peer until it is back within its rate: its messages wait in the
    /// kernel's buffers, then in its own, and it is slowed down without losing anything.
    #[default]
    Throttle,
    /// Disconnect the peer with `{"action": "error", "message": "rate limited"}` and
    /// [`CloseReason::RateLimited`](crate::CloseReason::RateLimited).
    Disconnect,
}

/// How fast one peer may send: messages per second and bytes per second, each with a burst
/// (a token bucket per peer), and what happens beyond that.
///
/// Every frame counts, heartbeats included. Set with
/// [`ServerBuilder::rate_limit`](super::ServerBuilder::rate_limit); off by default.
///
/// ```
/// use repod_core::server::{RateLimit, RatePolicy};
///
/// // 30 messages/s with bursts of 60, 64 KiB/s with bursts of 256 KiB; cut off beyond it.
/// let limit = RateLimit::messages(30, 60)
///     .bytes(64 * 1024, 256 * 1024)
///     .policy(RatePolicy::Disconnect);
/// # let _ = limit;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub(crate) messages: Option<(NonZeroU32, NonZeroU32)>,
    pub(crate) bytes: Option<(NonZeroU32, NonZeroU32)>,
    pub(crate) policy: RatePolicy,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl RateLimit {
    /// At most `per_second` messages a second, with bursts of up to `burst` messages
    /// (at least 1 each). No byte limit; the policy is [`RatePolicy::Throttle`].
    pub fn messages(per_second: u32, burst: u32) -> Self {
        RateLimit {
            messages: Some((nonzero(per_second), nonzero(burst))),
            bytes: None,
            policy: RatePolicy::Throttle,
        }
    }

    /// Only a byte limit: at most `per_second` payload bytes a second, with bursts of up to
    /// `burst` bytes. The burst is raised to the server's maximum frame length if lower, so a
    /// frame of the largest size always fits.
    pub fn bytes_only(per_second: u32, burst: u32) -> Self {
        RateLimit {
            messages: None,
            bytes: Some((nonzero(per_second), nonzero(burst))),
            policy: RatePolicy::Throttle,
        }
    }

    /// Adds a byte limit: at most `per_second` payload bytes a second, with bursts of up to
    /// `burst` bytes (raised to the maximum frame length if lower).
    pub fn bytes(mut self, per_second: u32, burst: u32) -> Self {
        self.bytes = Some((nonzero(per_second), nonzero(burst)));
        self
    }

    /// What to do with a peer over its rate. The default is [`RatePolicy::Throttle`].
    pub fn policy(mut self, policy: RatePolicy) -> Self {
        self.policy = policy;
        self
    }
}

fn quota((per_second, burst): (NonZeroU32, NonZeroU32)) -> Quota {
    Quota::per_second(per_second).allow_burst(burst)
}

/// One connection's token buckets, freed with the connection.
pub(crate) struct PeerLimiter {
    messages: Option<DefaultDirectRateLimiter>,
    bytes: Option<DefaultDirectRateLimiter>,
    pub(crate) policy: RatePolicy,
}

impl PeerLimiter {
    pub(crate) fn new(limit: &RateLimit, max_frame_len: usize) -> Self {
        let max = u32::try_from(max_frame_len.max(1)).unwrap_or(u32::MAX);
        PeerLimiter {
            messages: limit
                .messages
                .map(|m| DefaultDirectRateLimiter::direct(quota(m))),
            bytes: limit.bytes.map(|(rate, burst)| {
                DefaultDirectRateLimiter::direct(quota((rate, burst.max(nonzero(max)))))
            }),
            policy: limit.policy,
        }
    }

    /// Takes one message of `len` bytes from the buckets, if it fits now.
    pub(crate) fn check(&self, len: usize) -> Verdict {
        if let Some(messages) = &self.messages {
            if messages.check().is_err() {
                return Verdict::OverMessages;
            }
        }
        if let Some(bytes) = &self.bytes {
            if let Ok(Err(_)) = bytes.check_n(units(len)) {
                return Verdict::OverBytes;
            }
        }
        Verdict::Pass
    }

    /// Waits until the message refused by [`check`](PeerLimiter::check) fits, and takes it
    /// (the throttle policy).
    pub(crate) async fn wait(&self, verdict: Verdict, len: usize) {
        let clock = DefaultClock::default();
        if verdict == Verdict::OverMessages {
            if let Some(messages) = &self.messages {
                while let Err(not_until) = messages.check() {
                    tokio::time::sleep(not_until.wait_time_from(clock.now())).await;
                }
            }
        }
        if let Some(bytes) = &self.bytes {
            // A message refused for its count has not been charged its bytes yet.
            while let Ok(Err(not_until)) = bytes.check_n(units(len)) {
                tokio::time::sleep(not_until.wait_time_from(clock.now())).await;
            }
        }
    }
}

/// What [`PeerLimiter::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the limits; charged.
    Pass,
    /// Over the message rate; nothing charged.
    OverMessages,
    /// Over the byte rate; the message itself was charged.
    OverBytes,
}

/// A message's size as a count of byte tokens (at least 1). A count above the burst cannot
/// happen (the burst is raised to the largest frame) and would pass: `check_n` reports it
/// as an error of its own, which is let through rather than blocking the peer for ever.
fn units(len: usize) -> NonZeroU32 {
    nonzero(u32::try_from(len).unwrap_or(u32::MAX))
}

/// Open connections per IP address, for
/// [`max_connections_per_ip`](super::ServerBuilder::max_connections_per_ip).
#[derive(Debug, Default, Clone)]
pub(crate) struct IpSlots {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl IpSlots {
    /// Counts one more connection from `ip`, unless it already holds `max`.
    pub(crate) fn take(&self, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            slots: self.clone(),
            ip,
        })
    }
}

/// One connection counted against its address; released when dropped.
#[derive(Debug)]
pub(crate) struct IpSlot {
    slots: IpSlots,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}
