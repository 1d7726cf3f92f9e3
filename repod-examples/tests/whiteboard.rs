//! `whiteboard-server` with Rust players over TCP and over WebSocket, and its web server,
//! without a browser.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use repod::client::AsyncClient;
use repod::{CodecKind, ErrorMessage, RequestError};
use repod_examples::whiteboard::{
    color_of, Drawn, Join, Joined, Left, Stroke, Welcome, HEIGHT, MAX_POINTS, WIDTH,
};
use serde::de::DeserializeOwned;
use support::{start_whiteboard, Whiteboard};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn player(addr: &str) -> AsyncClient {
    AsyncClient::builder()
        .codec(CodecKind::MsgPack)
        .request_timeout(Duration::from_secs(20))
        .connect_async(addr)
        .await
        .expect("connect")
}

async fn join(client: &AsyncClient, name: &str) -> Welcome {
    client
        .request(&Join { name: name.into() })
        .await
        .expect("join")
}

/// The next event of `action`, skipping others except `drawn` (a stroke nobody expected
/// fails the test); bounded.
async fn next<T: DeserializeOwned>(client: &mut AsyncClient, action: &str) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline, client.recv())
            .await
            .unwrap_or_else(|_| panic!("no {action} in time"))
            .unwrap_or_else(|| panic!("disconnected while waiting for {action}"));
        if event.action() == action {
            return event.decode().expect("decode");
        }
        assert_ne!(
            event.action(),
            "drawn",
            "an unexpected stroke while waiting for {action}"
        );
    }
}

fn ws(server: &Whiteboard) -> String {
    server.ws_url.clone()
}

fn tcp(server: &Whiteboard) -> String {
    format!("127.0.0.1:{}", server.tcp_port)
}

#[test]
fn players_over_tcp_and_websocket_share_the_board() {
    let server = start_whiteboard();
    runtime().block_on(async {
        let mut ada = player(&tcp(&server)).await;
        let ada_welcome = join(&ada, "  ada  ").await;
        let me = ada_welcome.you.clone();
        assert_eq!(me.name, "ada");
        assert_eq!(me.color, color_of(me.id));
        assert_eq!(ada_welcome.players, std::slice::from_ref(&me));
        assert!(ada_welcome.strokes.is_empty());

        let mut bob = player(&ws(&server)).await;
        let bob_welcome = join(&bob, "").await;
        let bob_me = bob_welcome.you.clone();
        assert_eq!(bob_me.name, format!("player-{}", bob_me.id));
        assert_eq!(bob_welcome.players, [me.clone(), bob_me.clone()]);
        let joined: Joined = next(&mut ada, "joined").await;
        assert_eq!(joined.player, bob_me);

        // A stroke reaches the other player, not its sender.
        let line = vec![(0, 0), (WIDTH, HEIGHT)];
        ada.send(&Stroke {
            points: line.clone(),
        })
        .unwrap();
        let drawn: Drawn = next(&mut bob, "drawn").await;
        assert_eq!(
            drawn,
            Drawn {
                id: me.id,
                color: me.color.clone(),
                points: line.clone()
            }
        );
        let dot = vec![(5, 6)];
        bob.send(&Stroke {
            points: dot.clone(),
        })
        .unwrap();
        let drawn: Drawn = next(&mut ada, "drawn").await;
        assert_eq!(drawn.id, bob_me.id);
        assert_eq!(drawn.points, dot);

        // A latecomer gets the board so far, oldest first.
        let cy = player(&ws(&server)).await;
        let welcome = join(&cy, "cy").await;
        assert_eq!(welcome.players.len(), 3);
        let strokes: Vec<_> = welcome
            .strokes
            .iter()
            .map(|d| (d.id, d.points.clone()))
            .collect();
        assert_eq!(strokes, [(me.id, line), (bob_me.id, dot)]);
        let _: Joined = next(&mut ada, "joined").await;
        let _: Joined = next(&mut bob, "joined").await;

        // Leaving is announced to those still there.
        bob.close().await;
        let left: Left = next(&mut ada, "left").await;
        assert_eq!(left.id, bob_me.id);
        cy.close().await;
        ada.close().await;
    });
}

#[test]
fn wrong_moves_are_refused() {
    let server = start_whiteboard();
    runtime().block_on(async {
        let mut ada = player(&ws(&server)).await;
        ada.send(&Stroke {
            points: vec![(1, 1)],
        })
        .unwrap();
        let error: ErrorMessage = next(&mut ada, "error").await;
        assert_eq!(error.message, "join the board first");
        join(&ada, "ada").await;
        match ada
            .request(&Join {
                name: "again".into(),
            })
            .await
        {
            Err(RequestError::Remote(text)) => assert_eq!(text, "already on the board"),
            other => panic!("{other:?}"),
        }
        for points in [vec![], vec![(1, 1); MAX_POINTS + 1], vec![(WIDTH + 1, 0)]] {
            ada.send(&Stroke { points }).unwrap();
            let error: ErrorMessage = next(&mut ada, "error").await;
            assert!(error.message.contains("stroke") || error.message.contains("within"));
        }
        // A long name is cut.
        let bob = player(&tcp(&server)).await;
        let welcome = join(&bob, &"b".repeat(100)).await;
        assert_eq!(welcome.you.name.chars().count(), 24);
        // Nothing refused reached the board.
        assert!(welcome.strokes.is_empty());
        bob.close().await;
        ada.close().await;
    });
}

/// One HTTP request to the page's server; the whole response.
fn http(server: &Whiteboard, request: &str) -> String {
    let port: u16 = server
        .http_url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn the_page_and_its_scripts_are_served() {
    let server = start_whiteboard();
    let ws_port = server.ws_url.rsplit(':').next().unwrap().to_owned();
    let page = http(&server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("text/html"));
    assert!(page.contains(&format!("data-ws-port=\"{ws_port}\"")));
    for (path, needle) in [
        ("/whiteboard.js", "import { connect } from \"repod-client\""),
        ("/repod.js", "export class Client"),
        ("/msgpack.min.js", "MessagePack"),
        ("/msgpack.js", "export const"),
    ] {
        let response = http(&server, &format!("GET {path}?v=1 HTTP/1.1\r\n\r\n"));
        assert!(
            response.starts_with("HTTP/1.1 200 OK\r\n"),
            "{path}: {response}"
        );
        assert!(response.contains("text/javascript"), "{path}");
        assert!(response.contains(needle), "{path}");
    }
    assert!(http(&server, "GET /../Cargo.toml HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(http(&server, "POST / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    let head = http(&server, "HEAD / HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"));
}
