//! TLS over real sockets: both clients in both codecs, TLS and plain TCP peers in one server,
//! and peers that get the handshake wrong.
#![cfg(feature = "tls")]

mod server_support;
mod tls_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use repod::server::ServerBuilder;
use repod::{
    AsyncClient, Client, ClientContext, Codec, CodecKind, ConnectError, Listener, Message,
    RawMessage,
};
use server_support::*;
use tls_support::TestCerts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CODECS: [CodecKind; 2] = [CodecKind::Bincode, CodecKind::MsgPack];

/// The test game serving plain TCP on its main address and TLS on another.
async fn serve_both(
    builder: ServerBuilder<Game>,
    certs: &TestCerts,
) -> (SocketAddr, SocketAddr, repod::server::ServerHandle<Game>) {
    let (plain, handle, _task) = serve(builder.listen_tls("127.0.0.1:0", certs.server())).await;
    let tls = handle.tls_addr().expect("a TLS listener");
    assert_ne!(tls.port(), 0);
    assert_ne!(tls, plain);
    (plain, tls, handle)
}

/// The next event of an async client that is an `M`, skipping others.
async fn next_of<M: Message + serde::de::DeserializeOwned>(client: &mut AsyncClient) -> M {
    loop {
        let event = client.recv().await.expect("an event before the end");
        if event.action() == M::ACTION {
            return event.decode().expect("body");
        }
        assert_ne!(event.action(), "disconnected", "disconnected: {event:?}");
    }
}

/// Reads from a raw socket until the server ends the connection (or resets it), reading at
/// most 64 KiB: what a peer sees when the server gives up on it.
async fn read_until_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                total += n;
                assert!(total < 64 * 1024, "the server kept sending");
            }
        }
    }
}

#[tokio::test]
async fn the_async_client_talks_over_tls_in_both_codecs() {
    within(async {
        let certs = TestCerts::generate();
        for codec in CODECS {
            let log = Log::default();
            let (_, tls, handle) = serve_both(game_builder(&log).codec(codec), &certs).await;
            let mut client = AsyncClient::builder()
                .codec(codec)
                .tls(certs.client())
                .connect_async(tls)
                .await
                .expect("connect over TLS");
            assert_eq!(
                client.recv().await.expect("socketConnect").action(),
                "socketConnect"
            );
            assert_eq!(
                client.recv().await.expect("connected").action(),
                "connected"
            );
            for n in 0..50 {
                client.send(&Echo { n }).unwrap();
            }
            for n in 0..50 {
                assert_eq!(next_of::<Echo>(&mut client).await, Echo { n }, "{codec}");
            }
            // A frame larger than a TLS record (16 KiB) crosses whole, both ways.
            let data = "x".repeat(100_000);
            client
                .send(&Chat { text: data.clone() })
                .expect("send a large message");
            let said: Said = next_of(&mut client).await;
            assert_eq!(said.text, data, "{codec}");
            let end = client.close().await;
            assert_eq!(end.reason, "closed by client", "{codec}");
            handle.shutdown();
        }
    })
    .await
}

/// Records every event of a game-loop client.
#[derive(Default)]
struct Events(Vec<RawMessage>);

impl Listener for Events {
    const ACTIONS: &'static [&'static str] = &[];

    fn dispatch(&mut self, _: &mut ClientContext<'_>, msg: RawMessage) {
        self.0.push(msg);
    }
}

/// Pumps a game-loop client until an event with `action` arrives, within the scenario
/// deadline; returns it.
fn pump_until(client: &mut Client, events: &mut Events, action: &str) -> RawMessage {
    let deadline = Instant::now() + SCENARIO_TIMEOUT;
    loop {
        client.pump(events);
        if let Some(i) = events.0.iter().position(|e| e.action() == action) {
            return events.0.remove(i);
        }
        assert!(Instant::now() < deadline, "no {action} in {:?}", events.0);
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_game_loop_client_talks_over_tls_in_both_codecs() {
    within(async {
        let certs = TestCerts::generate();
        for codec in CODECS {
            let log = Log::default();
            let (_, tls, handle) = serve_both(game_builder(&log).codec(codec), &certs).await;
            let client_tls = certs.client();
            tokio::task::spawn_blocking(move || {
                let mut client = Client::builder()
                    .codec(codec)
                    .tls(client_tls)
                    .connect(tls)
                    .expect("start the client");
                let mut events = Events::default();
                pump_until(&mut client, &mut events, "connected");
                for n in 0..20 {
                    client.send(&Echo { n }).unwrap();
                }
                for n in 0..20 {
                    let echo: Echo = pump_until(&mut client, &mut events, "echo")
                        .decode()
                        .expect("echo");
                    assert_eq!(echo, Echo { n }, "{codec}");
                }
                client.close();
                let end = pump_until(&mut client, &mut events, "disconnected");
                let end: repod::Disconnected = end.decode().expect("disconnected");
                assert_eq!(end.reason, "closed by client", "{codec}");
            })
            .await
            .expect("the game loop");
            handle.shutdown();
        }
    })
    .await
}

#[tokio::test]
async fn tls_and_plain_peers_share_one_server_and_its_groups() {
    within(async {
        let certs = TestCerts::generate();
        let log = Log::default();
        let (plain, tls, handle) = serve_both(game_builder(&log), &certs).await;
        let mut secure = AsyncClient::builder()
            .tls(certs.client())
            .connect_async(tls)
            .await
            .expect("connect over TLS");
        next_of::<repod::Connected>(&mut secure).await;
        let mut clear = TestClient::connect(plain, CodecKind::Bincode).await;

        // The same team: each hears of the other, whatever its transport.
        secure.send(&JoinTeam { team: 7 }).unwrap();
        assert_eq!(next_of::<TeamJoined>(&mut secure).await.team, 7);
        clear.send(&JoinTeam { team: 7 }).await;
        assert_eq!(clear.expect::<TeamJoined>().await.team, 7);
        let joined: PlayerJoinedTeam = next_of(&mut secure).await;
        assert_eq!(joined.team, 7);

        // A broadcast from either reaches both.
        secure
            .send(&Chat {
                text: "from tls".into(),
            })
            .unwrap();
        assert_eq!(clear.expect::<Said>().await.text, "from tls");
        assert_eq!(next_of::<Said>(&mut secure).await.text, "from tls");
        clear
            .send(&Chat {
                text: "from tcp".into(),
            })
            .await;
        assert_eq!(next_of::<Said>(&mut secure).await.text, "from tcp");
        assert_eq!(clear.expect::<Said>().await.text, "from tcp");
        assert_eq!(handle.peers().await.expect("peers").len(), 2);
        handle.shutdown();
    })
    .await
}

#[tokio::test]
async fn a_plaintext_peer_on_the_tls_port_is_closed_and_tls_peers_go_on() {
    within(async {
        let certs = TestCerts::generate();
        let log = Log::default();
        let (_, tls, handle) = serve_both(game_builder(&log), &certs).await;
        let mut secure = AsyncClient::builder()
            .tls(certs.client())
            .connect_async(tls)
            .await
            .expect("connect over TLS");
        next_of::<repod::Connected>(&mut secure).await;

        // A repod frame in the clear, where a TLS ClientHello belongs.
        let mut clear = TcpStream::connect(tls).await.expect("connect");
        let frame = CodecKind::Bincode
            .encode(&Chat { text: "hi".into() }, usize::MAX)
            .unwrap();
        clear.write_all(&frame).await.expect("write");
        read_until_closed(&mut clear).await;

        // The TLS peer is still served; the plaintext one never had a channel.
        secure.send(&Echo { n: 5 }).unwrap();
        assert_eq!(next_of::<Echo>(&mut secure).await, Echo { n: 5 });
        assert_eq!(handle.peers().await.expect("peers").len(), 1);
        let connects = records(&log)
            .iter()
            .filter(|r| matches!(r, Record::Connect(_)))
            .count();
        assert_eq!(connects, 1, "{:?}", records(&log));
        handle.shutdown();
    })
    .await
}

#[tokio::test]
async fn a_peer_stalling_mid_handshake_is_closed_by_the_handshake_timeout() {
    within(async {
        let certs = TestCerts::generate();
        let log = Log::default();
        let timeout = Duration::from_millis(300);
        let (_, tls, handle) =
            serve_both(game_builder(&log).handshake_timeout(timeout), &certs).await;

        // The header of a handshake record announcing 512 bytes, and then nothing.
        let started = Instant::now();
        let mut stalled = TcpStream::connect(tls).await.expect("connect");
        stalled
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .await
            .expect("write");

        // Meanwhile others connect and are served.
        for n in 0..3 {
            let mut secure = AsyncClient::builder()
                .tls(certs.client())
                .connect_async(tls)
                .await
                .expect("connect over TLS");
            secure.send(&Echo { n }).unwrap();
            assert_eq!(next_of::<Echo>(&mut secure).await, Echo { n });
            secure.close().await;
        }

        read_until_closed(&mut stalled).await;
        assert!(
            started.elapsed() >= timeout,
            "closed after {:?}, before the handshake timeout",
            started.elapsed()
        );
        // It never became a channel.
        let connects = records(&log)
            .iter()
            .filter(|r| matches!(r, Record::Connect(_)))
            .count();
        assert_eq!(connects, 3, "{:?}", records(&log));
        handle.shutdown();
    })
    .await
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_fails_to_connect_clearly() {
    within(async {
        let certs = TestCerts::generate();
        let strangers = TestCerts::generate();
        let log = Log::default();
        let (plain, tls, handle) = serve_both(game_builder(&log), &certs).await;

        // Signed by a CA the client does not trust.
        let error = AsyncClient::builder()
            .tls(strangers.client())
            .connect_async(tls)
            .await
            .expect_err("an untrusted certificate");
        assert!(matches!(error, ConnectError::Tls { .. }), "{error:?}");
        let text = error.to_string();
        assert!(text.contains("certificate"), "{text}");
        assert!(text.contains(&tls.to_string()), "{text}");

        // Trusted, but for other names.
        let error = AsyncClient::builder()
            .tls(certs.client().server_name("game.example.com").unwrap())
            .connect_async(tls)
            .await
            .expect_err("a certificate for another name");
        assert!(matches!(error, ConnectError::Tls { .. }), "{error:?}");
        assert!(error.to_string().contains("certificate"), "{error}");

        // TLS spoken to the plain port fails too, without harming the server.
        let error = AsyncClient::builder()
            .tls(certs.client())
            .connect_timeout(Duration::from_secs(5))
            .connect_async(plain)
            .await
            .expect_err("TLS to a plain port");
        assert!(
            matches!(
                error,
                ConnectError::Tls { .. } | ConnectError::Timeout { .. }
            ),
            "{error:?}"
        );

        // The game-loop client says the same through its events.
        let client_tls = strangers.client();
        tokio::task::spawn_blocking(move || {
            let mut client = Client::builder()
                .tls(client_tls)
                .connect(tls)
                .expect("start the client");
            let mut events = Events::default();
            let end = pump_until(&mut client, &mut events, "disconnected");
            let end: repod::Disconnected = end.decode().expect("disconnected");
            assert!(end.reason.contains("certificate"), "{}", end.reason);
            assert!(
                !events.0.iter().any(|e| e.action() == "connected"),
                "{:?}",
                events.0
            );
        })
        .await
        .expect("the game loop");

        // Only the peer on the plain port got a channel (before it broke the protocol); a
        // trusting client still gets one.
        let mut secure = AsyncClient::builder()
            .tls(certs.client().server_name("localhost").unwrap())
            .connect_async(tls)
            .await
            .expect("connect over TLS");
        next_of::<repod::Connected>(&mut secure).await;
        let connects = records(&log)
            .iter()
            .filter(|r| matches!(r, Record::Connect(_)))
            .count();
        assert_eq!(connects, 2, "{:?}", records(&log));
        handle.shutdown();
    })
    .await
}

#[tokio::test]
async fn a_server_can_serve_tls_only_on_its_main_address() {
    within(async {
        let certs = TestCerts::generate();
        let log = Log::default();
        let (addr, handle, _task) = serve(game_builder(&log).tls(certs.server())).await;
        assert_eq!(handle.tls_addr(), Some(addr));
        assert_eq!(
            handle.local_addrs(),
            &[(repod::server::Transport::Tls, addr)]
        );
        let mut secure = AsyncClient::builder()
            .tls(certs.client())
            .connect_async(addr)
            .await
            .expect("connect over TLS");
        secure.send(&Echo { n: 9 }).unwrap();
        assert_eq!(next_of::<Echo>(&mut secure).await, Echo { n: 9 });
        // A plain client is not served there.
        let error = AsyncClient::builder()
            .connect_timeout(Duration::from_secs(5))
            .connect_async(addr)
            .await;
        match error {
            // The TCP connect succeeds; the first frame never comes.
            Ok(mut clear) => {
                clear.send(&Echo { n: 1 }).unwrap();
                loop {
                    let event = clear.recv().await.expect("events until the end");
                    assert_ne!(event.action(), "echo");
                    assert_ne!(event.action(), "connected");
                    if event.action() == "disconnected" {
                        break;
                    }
                }
            }
            Err(error) => panic!("the TCP connect itself failed: {error}"),
        }
        handle.shutdown();
    })
    .await
}

#[tokio::test]
async fn a_full_server_tells_a_tls_peer_after_its_handshake() {
    within(async {
        let certs = TestCerts::generate();
        let log = Log::default();
        let (_, tls, handle) = serve_both(game_builder(&log).max_connections(1), &certs).await;
        let mut first = AsyncClient::builder()
            .tls(certs.client())
            .connect_async(tls)
            .await
            .expect("connect over TLS");
        next_of::<repod::Connected>(&mut first).await;
        let mut second = AsyncClient::builder()
            .tls(certs.client())
            .connect_async(tls)
            .await
            .expect("the handshake is made, to say why");
        let mut said = Vec::new();
        loop {
            let event = second.recv().await.expect("events until the end");
            match event.action() {
                "error" => said.push(event.decode::<repod::ErrorMessage>().unwrap().message),
                "disconnected" => break,
                other => assert_ne!(other, "connected"),
            }
        }
        assert_eq!(said, ["server full"]);
        first.send(&Echo { n: 3 }).unwrap();
        assert_eq!(next_of::<Echo>(&mut first).await, Echo { n: 3 });
        handle.shutdown();
    })
    .await
}

#[cfg(feature = "websocket")]
#[tokio::test]
async fn websocket_over_tls_is_served_beside_tcp() {
    within(async {
        let certs = TestCerts::generate();
        let log = Log::default();
        let (plain, handle, _task) =
            serve(game_builder(&log).listen_wss("127.0.0.1:0", certs.server())).await;
        let wss = handle.wss_addr().expect("a wss listener");
        let url = format!("wss://127.0.0.1:{}/play", wss.port());
        let mut secure = AsyncClient::builder()
            .tls(certs.client())
            .connect_async(url.as_str())
            .await
            .expect("connect over wss");
        next_of::<repod::Connected>(&mut secure).await;
        let mut clear = TestClient::connect(plain, CodecKind::Bincode).await;
        secure
            .send(&Chat {
                text: "over wss".into(),
            })
            .unwrap();
        assert_eq!(clear.expect::<Said>().await.text, "over wss");
        assert_eq!(next_of::<Said>(&mut secure).await.text, "over wss");

        // wss:// without TLS settings, and ws:// with them, are refused before connecting.
        let error = AsyncClient::builder()
            .connect_async(url.as_str())
            .await
            .expect_err("wss:// without TLS settings");
        assert!(error.to_string().contains("TLS settings"), "{error}");
        let error = AsyncClient::builder()
            .tls(certs.client())
            .connect_async(format!("ws://127.0.0.1:{}/", wss.port()).as_str())
            .await
            .expect_err("ws:// with TLS settings");
        assert!(error.to_string().contains("wss://"), "{error}");
        handle.shutdown();
    })
    .await
}
