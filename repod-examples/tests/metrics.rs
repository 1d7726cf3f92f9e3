//! `lobby-server --metrics-addr` serves the server's metrics over HTTP: clients play, the test
//! scrapes `/metrics` like Prometheus would and checks the counters.
#![cfg(feature = "metrics")]

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use repod::client::AsyncClient;
use repod_examples::lobby::{Input, ListMatches, Welcome};
use support::{start_server, Running};

/// How long any condition of this test may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// A port free a moment ago, for the metrics listener (which cannot report a port it picked).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts the lobby server with its metrics on a port that was free a moment ago.
fn start_lobby() -> (Running, u16) {
    let metrics_port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lobby-server"));
    cmd.args([
        "--addr",
        "127.0.0.1:0",
        "--metrics-addr",
        &format!("127.0.0.1:{metrics_port}"),
    ]);
    (start_server(cmd), metrics_port)
}

/// One scrape of `/metrics`: the body, and its samples by series (`name{labels}`).
fn scrape(port: u16) -> (String, HashMap<String, f64>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to /metrics");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let samples = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect();
    (body.to_owned(), samples)
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

/// Scrapes until `series` has the value `expected` (bounded), then returns the scrape.
fn scrape_until(port: u16, series: &str, expected: f64) -> HashMap<String, f64> {
    let start = Instant::now();
    loop {
        let (_, samples) = scrape(port);
        if value(&samples, series) == expected {
            return samples;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{series} is {} rather than {expected}",
            value(&samples, series)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_lobby_server_serves_its_metrics() {
    let (server, metrics_port) = start_lobby();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Three players: one short of a match, so the server sends nothing but what they cause.
    let clients = runtime.block_on(async {
        tokio::time::timeout(DEADLINE, async {
            let mut clients = Vec::new();
            for _ in 0..3 {
                let mut client = AsyncClient::connect(("127.0.0.1", server.port))
                    .await
                    .unwrap();
                while let Some(msg) = client.recv().await {
                    if msg.is::<Welcome>() {
                        break;
                    }
                }
                for i in 0..4 {
                    client
                        .send(&Input {
                            dx: i as f32,
                            dy: 1.0,
                        })
                        .unwrap();
                }
                let list = client.request(&ListMatches).await.unwrap();
                assert!(list.matches.is_empty());
                clients.push(client);
            }
            clients
        })
        .await
        .expect("the players did not get through in time")
    });

    let samples = scrape_until(
        metrics_port,
        r#"repod_messages_received_total{action="input"}"#,
        12.0,
    );
    let expect = |series: &str, expected: f64| {
        assert_eq!(value(&samples, series), expected, "{series}");
    };
    expect("repod_connections_accepted_total", 3.0);
    expect("repod_connections_open", 3.0);
    expect(
        r#"repod_messages_received_total{action="list_matches"}"#,
        3.0,
    );
    expect(r#"repod_messages_sent_total{action="connected"}"#, 3.0);
    expect(r#"repod_messages_sent_total{action="welcome"}"#, 3.0);
    expect(r#"repod_messages_sent_total{action="reply"}"#, 3.0);
    expect(r#"repod_messages_received_total{action="_other"}"#, 0.0);
    assert!(value(&samples, "repod_dispatch_busy_nanoseconds_total") > 0.0);
    let (body, _) = scrape(metrics_port);
    assert!(
        body.contains("# HELP repod_connections_accepted_total Connections accepted."),
        "{body}"
    );

    runtime.block_on(async move { drop(clients) });
    drop(runtime);
    scrape_until(
        metrics_port,
        r#"repod_connections_closed_total{reason="peer_closed"}"#,
        3.0,
    );
    scrape_until(metrics_port, "repod_connections_open", 0.0);
    drop(server);
}
