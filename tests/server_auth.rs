//! Authentication before a channel exists, over real sockets: a peer must log in first, and
//! until it has, nothing it sends reaches a channel.

mod server_support;

use std::time::Duration;

use repod::server::ServerBuilder;
use repod::{CloseReason, CodecKind, ErrorMessage};
use server_support::*;
use tokio::io::AsyncWriteExt;

/// A `login` with the wrong fields.
#[derive(serde::Serialize)]
struct BadLogin {
    pin: u32,
}
impl repod::Message for BadLogin {
    const ACTION: &'static str = "login";
}

/// The test game, requiring a login whose token is "good" (the identity is the token's
/// owner), within `timeout`.
fn auth_builder(log: &Log, timeout: Duration) -> ServerBuilder<Game> {
    game_builder(log).auth(timeout, |login: Login, _peer| async move {
        // A check that takes a while, as a database would: others are served meanwhile.
        tokio::time::sleep(Duration::from_millis(20)).await;
        if login.token == "good" {
            Ok("alice".to_owned())
        } else {
            Err(format!("bad token {:?}", login.token))
        }
    })
}

/// Connects and logs in with `token`, without reading anything.
async fn login(addr: std::net::SocketAddr, codec: CodecKind, token: &str) -> TestClient {
    let mut client = TestClient::connect_raw(addr, codec).await;
    client
        .send(&Login {
            token: token.to_owned(),
        })
        .await;
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_login_gets_a_channel_with_its_identity() {
    for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
        within(async {
            let log = Log::default();
            let (addr, handle, server) =
                serve(auth_builder(&log, Duration::from_secs(10)).codec(codec)).await;
            let mut client = login(addr, codec, "good").await;
            // Sent right behind the login: dispatched after the channel exists.
            client.send(&WhoAmI {}).await;
            let greeting = client.recv().await.expect("greeting");
            assert_eq!(greeting.action(), "connected");
            let said: Said = client.expect().await;
            assert_eq!(said.text, "alice");
            assert_eq!(records(&log), vec![Record::Connect(said.from)]);

            // A second login is answered, not dispatched, and the connection stays.
            client
                .send(&Login {
                    token: "good".into(),
                })
                .await;
            let error: ErrorMessage = client.expect().await;
            assert_eq!(error.message, "already authenticated");
            client.send(&Echo { n: 7 }).await;
            assert_eq!(client.expect::<Echo>().await, Echo { n: 7 });

            handle.shutdown();
            server.await.unwrap().unwrap();
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_peers_are_told_why_and_never_get_a_channel() {
    within(async {
        let log = Log::default();
        let codec = CodecKind::MsgPack;
        let (addr, handle, server) =
            serve(auth_builder(&log, Duration::from_secs(10)).codec(codec)).await;

        // A wrong token.
        let mut client = login(addr, codec, "bad").await;
        let error: ErrorMessage = client.expect().await;
        assert_eq!(error.message, "bad token \"bad\"");
        client.expect_closed(0).await;

        // Another action before the login: refused, the action is not dispatched.
        let mut client = TestClient::connect_raw(addr, codec).await;
        client.send(&Chat { text: "hi".into() }).await;
        let error: ErrorMessage = client.expect().await;
        assert_eq!(error.message, "authentication required");
        client.expect_closed(0).await;

        // A login whose body does not fit the login type.
        let mut client = TestClient::connect_raw(addr, codec).await;
        client.send(&BadLogin { pin: 1234 }).await;
        let error: ErrorMessage = client.expect().await;
        assert!(error.message.contains("token"), "{}", error.message);
        client.expect_closed(0).await;

        // Nobody got a channel: no on_connect, no on_close, nothing dispatched.
        assert_eq!(records(&log), vec![]);
        assert_eq!(handle.connection_count(), 0);

        // A good login still works after all that.
        let mut client = login(addr, codec, "good").await;
        assert_eq!(client.recv().await.expect("greeting").action(), "connected");

        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_trickling_peers_are_closed_at_the_auth_timeout() {
    within(async {
        let log = Log::default();
        let codec = CodecKind::Bincode;
        let (addr, handle, server) = serve(
            auth_builder(&log, Duration::from_millis(200))
                .codec(codec)
                .close_timeout(Duration::from_millis(200)),
        )
        .await;

        // Peers that say nothing, and peers that send one byte of a frame header at a time.
        let mut silent = Vec::new();
        for _ in 0..50 {
            silent.push(TestClient::connect_raw(addr, codec).await);
        }
        let mut trickling = Vec::new();
        for _ in 0..50 {
            let mut client = TestClient::connect_raw(addr, codec).await;
            client.framed.get_mut().write_all(&[0]).await.unwrap();
            trickling.push(client);
        }
        // Meanwhile a well-behaved peer logs in and plays.
        let mut good = login(addr, codec, "good").await;
        assert_eq!(good.recv().await.expect("greeting").action(), "connected");
        good.send(&Echo { n: 1 }).await;
        assert_eq!(good.expect::<Echo>().await, Echo { n: 1 });

        for client in trickling.iter_mut() {
            // A second byte, after the first: still not a whole frame.
            let _ = client.framed.get_mut().write_all(&[0]).await;
        }
        for mut client in silent.into_iter().chain(trickling) {
            let error: ErrorMessage = client.expect().await;
            assert_eq!(error.message, "auth timeout");
            client.expect_closed(0).await;
        }
        // The good peer is still served.
        good.send(&Echo { n: 2 }).await;
        assert_eq!(good.expect::<Echo>().await, Echo { n: 2 });
        assert_eq!(handle.connection_count(), 1);
        assert!(!records(&log)
            .iter()
            .any(|r| matches!(r, Record::OnClose(_, CloseReason::Protocol(_)))));

        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_attempts_and_connections_are_limited_per_address() {
    within(async {
        let log = Log::default();
        let codec = CodecKind::Bincode;
        let (addr, handle, server) = serve(
            auth_builder(&log, Duration::from_secs(10))
                .codec(codec)
                .auth_attempts_per_minute(3)
                .max_connections_per_ip(4),
        )
        .await;

        // Three attempts pass the limiter (and are checked), the fourth is not checked.
        for _ in 0..3 {
            let mut client = login(addr, codec, "bad").await;
            let error: ErrorMessage = client.expect().await;
            assert_eq!(error.message, "bad token \"bad\"");
            client.expect_closed(0).await;
        }
        let mut client = login(addr, codec, "good").await;
        let error: ErrorMessage = client.expect().await;
        assert_eq!(error.message, "too many authentication attempts");
        client.expect_closed(0).await;

        // Four connections from 127.0.0.1 are held open; the fifth is refused at once.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(TestClient::connect_raw(addr, codec).await);
        }
        // Accepted in order: once a probe is refused the four are counted.
        let mut extra = TestClient::connect_raw(addr, codec).await;
        let error: ErrorMessage = extra.expect().await;
        assert_eq!(error.message, "too many connections from this address");
        extra.expect_closed(0).await;

        // Closing one frees a place.
        drop(held.pop());
        let mut refused = 0;
        loop {
            let mut client = TestClient::connect_raw(addr, codec).await;
            // Accepted (pending authentication) or refused: a login tells which.
            client.send(&Login { token: "x".into() }).await;
            let error: ErrorMessage = client.expect().await;
            if error.message == "too many connections from this address" {
                // The freed place is released when the server has closed that socket.
                refused += 1;
                assert!(refused < 1000, "the place was never freed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            assert_eq!(error.message, "too many authentication attempts");
            break;
        }

        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}
