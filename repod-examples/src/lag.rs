//! The lag protocol, shared by `lag-server` and `lag-client`: ping/pong round trips.

use serde::{Deserialize, Serialize};

/// Client → server: please answer with a [`Pong`] carrying the same sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("ping")]
pub struct Ping {
    /// Sequence number, echoed back.
    pub seq: u64,
}

/// Server → client: the answer to a [`Ping`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("pong")]
pub struct Pong {
    /// The sequence number of the ping.
    pub seq: u64,
}

/// Summary statistics of round-trip times, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Fastest round trip.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Slowest round trip.
    pub max: u64,
}

/// Summarizes samples (sorted in place); `None` when there are none.
pub fn summarize(samples: &mut [u64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Some(Summary {
        min: samples[0],
        p50: at(0.50),
        p99: at(0.99),
        max: samples[samples.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut samples: Vec<u64> = (1..=100).rev().collect();
        let s = summarize(&mut samples).unwrap();
        assert_eq!((s.min, s.p50, s.p99, s.max), (1, 51, 99, 100));
        assert!(summarize(&mut []).is_none());
    }
}
