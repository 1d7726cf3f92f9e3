//! The server's metrics, read back through a Prometheus recorder in this process: each
//! scenario checks the exact change of the counters it touches.
//!
//! A process has one global recorder, and the counters are process-wide, so every scenario
//! runs in the one test below, one after the other.
#![cfg(feature = "metrics")]

mod server_support;

use std::collections::HashMap;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use repod::metrics as names;
use repod::server::{RateLimit, RatePolicy};
use repod::{Codec, CodecKind, Message};
use serde::{Deserialize, Serialize};
use server_support::*;
use tokio::net::{TcpSocket, TcpStream};

/// A message no handler of the test channel declares.
#[derive(Debug, Serialize, Deserialize)]
struct Bogus {
    n: u64,
}

impl Message for Bogus {
    const ACTION: &'static str = "bogus";
}

/// The values of one scrape, by series (`name{labels}`).
#[derive(Debug)]
struct Scrape(HashMap<String, f64>);

impl Scrape {
    fn take(handle: &PrometheusHandle) -> Scrape {
        let text = handle.render();
        let mut values = HashMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            values.insert(series.to_owned(), value.parse().expect("a number"));
        }
        Scrape(values)
    }

    /// The value of a series; 0 for one not recorded yet.
    fn get(&self, name: &str, label: Option<(&str, &str)>) -> f64 {
        let series = match label {
            Some((key, value)) => format!("{name}{{{key}=\"{value}\"}}"),
            None => name.to_owned(),
        };
        self.0.get(&series).copied().unwrap_or(0.0)
    }
}

/// Series and what they should have grown by since a first scrape.
struct Delta<'a> {
    before: &'a Scrape,
    handle: &'a PrometheusHandle,
}

impl Delta<'_> {
    fn of(&self, name: &str, label: Option<(&str, &str)>) -> f64 {
        Scrape::take(self.handle).get(name, label) - self.before.get(name, label)
    }

    /// Waits (bounded by the scenario's timeout) until the series has grown by `by`.
    async fn reaches(&self, name: &str, label: Option<(&str, &str)>, by: f64) {
        while self.of(name, label) < by {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(self.of(name, label), by, "{name} {label:?}");
    }
}

/// Waits until a gauge has this value.
async fn gauge_is(handle: &PrometheusHandle, name: &str, value: f64) {
    while Scrape::take(handle).get(name, None) != value {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn frame_len<M: Message>(codec: CodecKind, msg: &M) -> f64 {
    codec.encode(msg, usize::MAX).expect("encode").len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_counts_what_happens() {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this process");
    for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
        within(messages_by_action(&handle, codec)).await;
    }
    within(rate_limits(&handle)).await;
    within(auth_refusals(&handle)).await;
    within(full_server(&handle)).await;
    within(slow_consumer(&handle)).await;
}

/// Accepted and closed connections, messages and bytes in and out by action, the open
/// connections and channels, and the loop's busy time.
async fn messages_by_action(handle: &PrometheusHandle, codec: CodecKind) {
    gauge_is(handle, names::CONNECTIONS_OPEN, 0.0).await;
    let before = Scrape::take(handle);
    let delta = Delta {
        before: &before,
        handle,
    };
    let log = Log::default();
    let (addr, server, task) = serve(game_builder(&log).codec(codec)).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(TestClient::connect(addr, codec).await);
    }
    for client in &mut clients {
        for n in 0..5 {
            client.send(&Echo { n }).await;
        }
        for n in 0..5 {
            assert_eq!(client.expect::<Echo>().await, Echo { n });
        }
    }
    // A broadcast to the three, and an action the channel does not declare.
    clients[0].send(&Chat { text: "hi".into() }).await;
    clients[0].send(&Bogus { n: 1 }).await;
    let said = Said {
        from: 1,
        text: "hi".into(),
    };
    for client in &mut clients {
        assert_eq!(client.expect::<Said>().await.text, "hi");
    }
    let unknown = clients[0].expect::<Unknown>().await;
    assert_eq!(unknown.name, "bogus");

    assert_eq!(delta.of(names::CONNECTIONS_ACCEPTED, None), 3.0);
    assert_eq!(Scrape::take(handle).get(names::CONNECTIONS_OPEN, None), 3.0);
    let action = |name| Some(("action", name));
    // In: the channel's own actions by name, anything else as `_other`.
    assert_eq!(delta.of(names::MESSAGES_RECEIVED, action("echo")), 15.0);
    assert_eq!(
        delta.of(names::BYTES_RECEIVED, action("echo")),
        15.0 * frame_len(codec, &Echo { n: 0 })
    );
    assert_eq!(delta.of(names::MESSAGES_RECEIVED, action("chat")), 1.0);
    assert_eq!(delta.of(names::MESSAGES_RECEIVED, action("_other")), 1.0);
    assert_eq!(delta.of(names::MESSAGES_RECEIVED, action("bogus")), 0.0);
    // Out: one per recipient.
    assert_eq!(delta.of(names::MESSAGES_SENT, action("connected")), 3.0);
    assert_eq!(delta.of(names::MESSAGES_SENT, action("echo")), 15.0);
    assert_eq!(
        delta.of(names::BYTES_SENT, action("echo")),
        15.0 * frame_len(codec, &Echo { n: 0 })
    );
    assert_eq!(delta.of(names::MESSAGES_SENT, action("said")), 3.0);
    assert_eq!(
        delta.of(names::BYTES_SENT, action("said")),
        3.0 * frame_len(codec, &said)
    );
    assert_eq!(delta.of(names::MESSAGES_SENT, action("unknown")), 1.0);
    assert!(delta.of(names::DISPATCH_BUSY, None) > 0.0);
    // Sampled once a second by the loop.
    gauge_is(handle, names::CHANNELS, 3.0).await;

    drop(clients);
    delta
        .reaches(
            names::CONNECTIONS_CLOSED,
            Some(("reason", "peer_closed")),
            3.0,
        )
        .await;
    gauge_is(handle, names::CONNECTIONS_OPEN, 0.0).await;
    gauge_is(handle, names::CHANNELS, 0.0).await;
    server.shutdown();
    task.await.unwrap().unwrap();
}

/// Throttled messages, and a peer disconnected for its rate.
async fn rate_limits(handle: &PrometheusHandle) {
    let before = Scrape::take(handle);
    let delta = Delta {
        before: &before,
        handle,
    };
    let codec = CodecKind::Bincode;
    let policy = |policy| Some(("policy", policy));

    // One message a second: of two sent at once, the second waits, and still arrives.
    let log = Log::default();
    let (addr, server, task) =
        serve(game_builder(&log).rate_limit(RateLimit::messages(1, 1))).await;
    let mut client = TestClient::connect(addr, codec).await;
    client.send(&Echo { n: 1 }).await;
    client.send(&Echo { n: 2 }).await;
    assert_eq!(client.expect::<Echo>().await, Echo { n: 1 });
    assert_eq!(client.expect::<Echo>().await, Echo { n: 2 });
    assert_eq!(delta.of(names::RATE_LIMITED, policy("throttle")), 1.0);
    drop(client);
    server.shutdown();
    task.await.unwrap().unwrap();

    let log = Log::default();
    let limit = RateLimit::messages(1, 1).policy(RatePolicy::Disconnect);
    let (addr, server, task) = serve(game_builder(&log).rate_limit(limit)).await;
    let mut client = TestClient::connect(addr, codec).await;
    for n in 0..3 {
        client.send(&Echo { n }).await;
    }
    client.expect_closed(3).await;
    delta
        .reaches(
            names::CONNECTIONS_CLOSED,
            Some(("reason", "rate_limited")),
            1.0,
        )
        .await;
    assert_eq!(delta.of(names::RATE_LIMITED, policy("disconnect")), 1.0);
    server.shutdown();
    task.await.unwrap().unwrap();
}

/// A peer whose login is refused is counted, and never had a channel.
async fn auth_refusals(handle: &PrometheusHandle) {
    let before = Scrape::take(handle);
    let delta = Delta {
        before: &before,
        handle,
    };
    let log = Log::default();
    let builder = game_builder(&log).auth(Duration::from_secs(10), |login: Login, _| async move {
        match login.token.as_str() {
            "good" => Ok(login.token),
            _ => Err("bad token".to_owned()),
        }
    });
    let (addr, server, task) = serve(builder).await;
    let codec = CodecKind::Bincode;
    for token in ["bad", "worse"] {
        let mut client = TestClient::connect_raw(addr, codec).await;
        client
            .send(&Login {
                token: token.into(),
            })
            .await;
        client.expect_closed(1).await;
    }
    let mut client = TestClient::connect_raw(addr, codec).await;
    client
        .send(&Login {
            token: "good".into(),
        })
        .await;
    assert_eq!(client.recv().await.expect("greeting").action(), "connected");
    delta.reaches(names::AUTH_REFUSALS, None, 2.0).await;
    assert_eq!(delta.of(names::CONNECTIONS_ACCEPTED, None), 3.0);
    assert_eq!(
        delta.of(names::MESSAGES_SENT, Some(("action", "connected"))),
        1.0
    );
    drop(client);
    server.shutdown();
    task.await.unwrap().unwrap();
}

/// Connections over `max_connections` are refused, and counted as such.
async fn full_server(handle: &PrometheusHandle) {
    gauge_is(handle, names::CONNECTIONS_OPEN, 0.0).await;
    let before = Scrape::take(handle);
    let delta = Delta {
        before: &before,
        handle,
    };
    let log = Log::default();
    let (addr, server, task) = serve(game_builder(&log).max_connections(1)).await;
    let codec = CodecKind::Bincode;
    let _first = TestClient::connect(addr, codec).await;
    let mut second = TestClient::connect_raw(addr, codec).await;
    let refusal = second.recv().await.expect("an error message");
    assert_eq!(refusal.action(), "error");
    delta
        .reaches(
            names::CONNECTIONS_REFUSED,
            Some(("reason", "server_full")),
            1.0,
        )
        .await;
    assert_eq!(delta.of(names::CONNECTIONS_ACCEPTED, None), 1.0);
    server.shutdown();
    task.await.unwrap().unwrap();
}

/// A peer that never reads overflows its queue: reset as a slow consumer, and counted.
async fn slow_consumer(handle: &PrometheusHandle) {
    let before = Scrape::take(handle);
    let delta = Delta {
        before: &before,
        handle,
    };
    let log = Log::default();
    let builder = game_builder(&log)
        .outbound_queue_bytes(256 * 1024)
        .outbound_queue_frames(1_000_000);
    let (addr, server, task) = serve(builder).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let _slow: TcpStream = socket.connect(addr).await.unwrap();
    while delta.of(names::CONNECTIONS_ACCEPTED, None) < 1.0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.call(|_| ()).await.unwrap();
    let data = "x".repeat(32 * 1024);
    let mut seq = 0;
    while delta.of(names::SLOW_CONSUMERS, None) < 1.0 {
        assert!(seq < 20_000, "the peer was never cut off");
        server
            .send_to_all(&Big {
                seq,
                data: data.clone(),
            })
            .unwrap();
        seq += 1;
        if seq % 16 == 0 {
            // A round trip through the loop keeps its command queue short.
            server.call(|_| ()).await.unwrap();
        }
    }
    delta
        .reaches(
            names::CONNECTIONS_CLOSED,
            Some(("reason", "slow_consumer")),
            1.0,
        )
        .await;
    assert_eq!(delta.of(names::SLOW_CONSUMERS, None), 1.0);
    server.shutdown();
    task.await.unwrap().unwrap();
}
