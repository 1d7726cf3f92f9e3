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

/// A TCP relay in front of a server that cuts its connections on demand, resetting them as a
/// network blip would: the `--blip-every` of `lag-client`, to watch a session resume.
pub struct BlipRelay {
    addr: std::net::SocketAddr,
    cut: std::sync::Arc<std::sync::Mutex<tokio::sync::watch::Sender<u64>>>,
}

impl BlipRelay {
    /// Starts a relay to `target` on 127.0.0.1 (a port of its own), on a thread of its own.
    pub fn start(target: &str) -> std::io::Result<BlipRelay> {
        let target = std::net::ToSocketAddrs::to_socket_addrs(target)?
            .next()
            .ok_or_else(|| std::io::Error::other("the address did not resolve"))?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::watch::channel(0u64);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                while let Ok((mut client, _)) = listener.accept().await {
                    let mut cuts = rx.clone();
                    cuts.mark_unchanged();
                    tokio::spawn(async move {
                        let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cuts.changed() => {
                                // A reset on both sides: what was in flight is gone.
                                let _ = client.set_zero_linger();
                                let _ = server.set_zero_linger();
                            }
                        }
                    });
                }
            });
        });
        Ok(BlipRelay {
            addr,
            cut: std::sync::Arc::new(std::sync::Mutex::new(tx)),
        })
    }

    /// The address to connect to instead of the server's.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Resets every connection through the relay now.
    pub fn cut(&self) {
        let tx = self.cut.lock().unwrap_or_else(|e| e.into_inner());
        tx.send_modify(|n| *n += 1);
    }
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
