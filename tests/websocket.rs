//! WebSocket beside TCP, over real sockets: WebSocket peers are ordinary channels (same ids,
//! rooms, broadcasts, limits, authentication), bad WebSocket input is a protocol error, and a
//! peer that stalls or garbles its upgrade is closed by the handshake timeout without holding
//! up anybody else.
#![cfg(feature = "websocket")]

mod server_support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use repod::server::{Server, ServerBuilder, ServerHandle, Transport};
use repod::{AsyncClient, Client, CloseReason, Codec, CodecKind, Context, ErrorMessage, Message};
use repod::{Connected, RawMessage};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use server_support::{
    eventually, game_builder, records, within, Big, Chat, Echo, Game, Log, Login, Record, Said,
    TestClient, WhoAmI,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

/// Binds TCP and WebSocket on 127.0.0.1, port 0 each, and runs the server on a task.
async fn serve_both<Ch: repod::Channel>(
    builder: ServerBuilder<Ch>,
) -> (
    SocketAddr,
    SocketAddr,
    ServerHandle<Ch>,
    tokio::task::JoinHandle<Result<(), repod::server::ServerError>>,
) {
    let server = builder
        .listen_ws("127.0.0.1:0")
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let tcp = server.local_addr();
    let ws = server.ws_addr().expect("a WebSocket listener");
    assert_ne!(ws.port(), 0);
    assert_ne!(ws, tcp);
    assert_eq!(
        server.local_addrs(),
        &[(Transport::Tcp, tcp), (Transport::WebSocket, ws)]
    );
    let handle = server.handle();
    assert_eq!(handle.ws_addr(), Some(ws));
    (tcp, ws, handle, tokio::spawn(server.run()))
}

/// A raw WebSocket peer: one binary message per payload, as a browser would send.
struct WsPeer {
    ws: WebSocketStream<TcpStream>,
    codec: CodecKind,
}

impl WsPeer {
    /// Upgrades `stream` (any request path will do) without reading anything more.
    async fn upgrade(stream: TcpStream, addr: SocketAddr, codec: CodecKind) -> WsPeer {
        let url = format!("ws://{addr}/any/path?room=1");
        let (ws, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .expect("upgrade");
        WsPeer { ws, codec }
    }

    async fn connect_raw(addr: SocketAddr, codec: CodecKind) -> WsPeer {
        let stream = TcpStream::connect(addr).await.expect("connect");
        WsPeer::upgrade(stream, addr, codec).await
    }

    /// Connects and reads the server's `connected` greeting.
    async fn connect(addr: SocketAddr, codec: CodecKind) -> WsPeer {
        let mut peer = WsPeer::connect_raw(addr, codec).await;
        let greeting = peer.recv().await.expect("greeting");
        assert_eq!(greeting.action(), "connected");
        peer
    }

    async fn send<M: Message>(&mut self, msg: &M) {
        let frame = self.codec.encode(msg, usize::MAX).expect("encode");
        self.send_raw(WsMessage::Binary(frame.slice(4..))).await;
    }

    async fn send_raw(&mut self, msg: WsMessage) {
        self.ws.send(msg).await.expect("send");
    }

    /// The next message, or `None` once the server closed the connection.
    async fn recv(&mut self) -> Option<RawMessage> {
        loop {
            match self.ws.next().await {
                Some(Ok(WsMessage::Binary(payload))) => {
                    return Some(self.codec.decode_raw(payload).expect("decodable"))
                }
                Some(Ok(WsMessage::Text(text))) => panic!("the server sent text: {text}"),
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                Some(Ok(WsMessage::Close(_))) => continue,
                Some(Ok(WsMessage::Frame(_))) | Some(Err(_)) | None => return None,
            }
        }
    }

    async fn expect<M: Message + DeserializeOwned>(&mut self) -> M {
        let raw = self.recv().await.expect("a message before the end");
        assert_eq!(raw.action(), M::ACTION, "unexpected message {raw:?}");
        raw.decode().expect("body")
    }

    /// Asserts the server closes the connection, skipping at most `max` messages first.
    async fn expect_closed(&mut self, max: usize) {
        for _ in 0..=max {
            if self.recv().await.is_none() {
                return;
            }
        }
        panic!("the connection stayed open");
    }
}

// A room channel: players join a group and speak to it.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("enter")]
struct Enter {
    room: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("entered")]
struct Entered {
    id: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("say")]
struct Say {
    room: String,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("heard")]
struct Heard {
    from: u64,
    text: String,
}

#[derive(Default)]
struct Player;

#[repod::channel]
impl Player {
    #[action]
    fn enter(&mut self, ctx: &mut Context<'_, Self>, msg: Enter) {
        ctx.join(&msg.room);
        let id = ctx.id().get();
        let _ = ctx.send(&Entered { id });
    }

    #[action]
    fn say(&mut self, ctx: &mut Context<'_, Self>, msg: Say) {
        let from = ctx.id().get();
        ctx.send_to_group(
            &msg.room,
            &Heard {
                from,
                text: msg.text,
            },
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_websocket_players_share_a_room() {
    for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
        within(async {
            let (tcp_addr, ws_addr, handle, server) =
                serve_both(Server::<Player>::builder().codec(codec)).await;
            let room = || "lobby".to_owned();

            let mut tcp = TestClient::connect(tcp_addr, codec).await;
            tcp.send(&Enter { room: room() }).await;
            let tcp_id = tcp.expect::<Entered>().await.id;
            let mut ws = WsPeer::connect(ws_addr, codec).await;
            ws.send(&Enter { room: room() }).await;
            let ws_id = ws.expect::<Entered>().await.id;
            assert_ne!(tcp_id, ws_id, "ordinary, distinct channel ids");

            // Rust clients over ws:// are players too, game-loop and async alike.
            let mut rust_ws = AsyncClient::builder()
                .codec(codec)
                .connect_async(format!("ws://{ws_addr}/"))
                .await
                .expect("async client over WebSocket");
            assert_eq!(rust_ws.recv().await.unwrap().action(), "socketConnect");
            assert!(rust_ws.recv().await.unwrap().is::<Connected>());
            rust_ws.send(&Enter { room: room() }).unwrap();
            let rust_id = async_expect::<Entered>(&mut rust_ws).await.id;

            let mut game_loop = Client::builder()
                .codec(codec)
                .connect(format!("ws://{ws_addr}/play").as_str())
                .expect("game-loop client over WebSocket");
            game_loop.send(&Enter { room: room() }).unwrap();
            let (loop_id, mut game_loop, mut loop_events) =
                tokio::task::spawn_blocking(move || {
                    let mut events = Recorder::default();
                    let id = pump_until::<Entered>(&mut game_loop, &mut events).id;
                    (id, game_loop, events)
                })
                .await
                .unwrap();

            let peers = handle.peers().await.unwrap();
            let mut ids: Vec<u64> = peers.iter().map(|p| p.id.get()).collect();
            ids.sort_unstable();
            let mut expected = vec![tcp_id, ws_id, rust_id, loop_id];
            expected.sort_unstable();
            assert_eq!(ids, expected);

            // Each speaks; everybody in the room hears it, whatever their transport.
            tcp.send(&Say {
                room: room(),
                text: "from tcp".into(),
            })
            .await;
            ws.send(&Say {
                room: room(),
                text: "from ws".into(),
            })
            .await;
            let expected = [
                Heard {
                    from: tcp_id,
                    text: "from tcp".into(),
                },
                Heard {
                    from: ws_id,
                    text: "from ws".into(),
                },
            ];
            for want in &expected {
                assert_eq!(&tcp.expect::<Heard>().await, want);
                assert_eq!(&ws.expect::<Heard>().await, want);
                assert_eq!(&async_expect::<Heard>(&mut rust_ws).await, want);
            }
            let game_loop_heard = tokio::task::spawn_blocking(move || {
                let heard = [
                    pump_until::<Heard>(&mut game_loop, &mut loop_events),
                    pump_until::<Heard>(&mut game_loop, &mut loop_events),
                ];
                game_loop.close();
                heard
            })
            .await
            .unwrap();
            assert_eq!(game_loop_heard, expected);

            rust_ws.close().await;
            handle.shutdown();
            server.await.unwrap().unwrap();
        })
        .await;
    }
}

/// The next application message of an async client, which must be an `M`.
async fn async_expect<M: Message + DeserializeOwned>(client: &mut AsyncClient) -> M {
    let raw = client.recv().await.expect("a message before the end");
    assert_eq!(raw.action(), M::ACTION, "unexpected message {raw:?}");
    raw.decode().expect("body")
}

/// A listener that keeps every event, in order.
#[derive(Default)]
struct Recorder(std::collections::VecDeque<RawMessage>);

impl repod::Listener for Recorder {
    const ACTIONS: &'static [&'static str] = &[];

    fn dispatch(&mut self, _: &mut repod::ClientContext<'_>, msg: RawMessage) {
        self.0.push_back(msg);
    }
}

/// Pumps a game-loop client until its next event other than the greetings, which must be an
/// `M`.
fn pump_until<M: Message + DeserializeOwned>(client: &mut Client, events: &mut Recorder) -> M {
    let deadline = std::time::Instant::now() + server_support::SCENARIO_TIMEOUT;
    loop {
        while let Some(raw) = events.0.pop_front() {
            match raw.action() {
                "socketConnect" | "connected" => continue,
                action => {
                    assert_eq!(action, M::ACTION, "unexpected message {raw:?}");
                    return raw.decode().expect("body");
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {} in time",
            M::ACTION
        );
        client.pump(events);
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_both_transports_and_bad_websocket_input_is_a_protocol_error() {
    for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
        within(async {
            let log = Log::default();
            let (tcp_addr, ws_addr, handle, server) =
                serve_both(game_builder(&log).codec(codec).max_frame_len(4096)).await;
            let mut tcp = TestClient::connect(tcp_addr, codec).await;
            let mut ws = WsPeer::connect(ws_addr, codec).await;

            ws.send(&Chat { text: "hi".into() }).await;
            let said: Said = tcp.expect().await;
            assert_eq!(said.text, "hi");
            assert_eq!(ws.expect::<Said>().await, said);
            tcp.send(&Chat { text: "yo".into() }).await;
            let said: Said = ws.expect().await;
            assert_eq!(said.text, "yo");
            assert_eq!(tcp.expect::<Said>().await, said);
            // Pings are answered by the WebSocket layer, not dispatched.
            ws.send_raw(WsMessage::Ping(Bytes::from_static(b"p"))).await;
            ws.send(&Echo { n: 3 }).await;
            assert_eq!(ws.expect::<Echo>().await, Echo { n: 3 });

            // A message over the maximum frame length: error, then the close.
            let mut big = WsPeer::connect(ws_addr, codec).await;
            big.send_raw(WsMessage::Binary(Bytes::from(vec![0u8; 8192])))
                .await;
            let error: ErrorMessage = big.expect().await;
            assert!(error.message.contains("exceeds"), "{}", error.message);
            big.expect_closed(0).await;

            // A text message: error, then the close.
            let mut text = WsPeer::connect(ws_addr, codec).await;
            text.send_raw(WsMessage::text("{\"action\": \"chat\"}"))
                .await;
            let error: ErrorMessage = text.expect().await;
            assert!(error.message.contains("text"), "{}", error.message);
            text.expect_closed(0).await;

            // A payload the codec cannot read: error, then the close, as over TCP.
            let mut garbled = WsPeer::connect(ws_addr, codec).await;
            garbled
                .send_raw(WsMessage::Binary(Bytes::from_static(&[0xc1, 0xff, 0x00])))
                .await;
            let _: ErrorMessage = garbled.expect().await;
            garbled.expect_closed(0).await;

            let protocol_closes = || {
                records(&log)
                    .iter()
                    .filter(|r| matches!(r, Record::Disconnect(_, CloseReason::Protocol(_))))
                    .count()
            };
            eventually(|| protocol_closes() == 3).await;

            // The well-behaved peers were not disturbed.
            ws.send(&Echo { n: 4 }).await;
            assert_eq!(ws.expect::<Echo>().await, Echo { n: 4 });
            tcp.send(&Echo { n: 5 }).await;
            assert_eq!(tcp.expect::<Echo>().await, Echo { n: 5 });

            // A peer whose connection ends without a close message: a peer close too, not a
            // protocol error.
            let dropped = WsPeer::connect(ws_addr, codec).await;
            let dropped_id = said_id(&handle, 3).await;
            drop(dropped.ws.into_inner());
            eventually(|| {
                records(&log).contains(&Record::Disconnect(dropped_id, CloseReason::PeerClosed))
            })
            .await;

            // A close from the peer ends its channel as a peer close.
            let ws_id = said_id(&handle, 2).await;
            ws.ws.close(None).await.unwrap();
            eventually(|| {
                records(&log).contains(&Record::Disconnect(ws_id, CloseReason::PeerClosed))
            })
            .await;

            handle.shutdown();
            server.await.unwrap().unwrap();
        })
        .await;
    }
}

/// The id of the `n`th channel to connect (1-based), as the server lists them.
async fn said_id<Ch: repod::Channel>(handle: &ServerHandle<Ch>, n: usize) -> u64 {
    handle.peers().await.unwrap()[n - 1].id.get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_garbled_upgrades_are_closed_by_the_handshake_timeout() {
    within(async {
        let log = Log::default();
        let builder = game_builder(&log)
            .handshake_timeout(Duration::from_millis(500))
            .max_connections(8);
        let (_tcp_addr, ws_addr, handle, server) = serve_both(builder).await;

        // Half an upgrade request, then nothing.
        let mut stalled = TcpStream::connect(ws_addr).await.unwrap();
        stalled
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n")
            .await
            .unwrap();
        // Connected, and silent.
        let mut silent = TcpStream::connect(ws_addr).await.unwrap();
        // Not HTTP at all.
        let mut garbage = TcpStream::connect(ws_addr).await.unwrap();
        garbage
            .write_all(b"\x00\x00\x00\x05hello, this is not an upgrade\r\n\r\n")
            .await
            .unwrap();

        // Meanwhile a WebSocket player is served at once.
        let mut player = WsPeer::connect(ws_addr, CodecKind::Bincode).await;
        player.send(&Echo { n: 1 }).await;
        assert_eq!(player.expect::<Echo>().await, Echo { n: 1 });

        // Each bad peer is closed, without a reply the WebSocket layer did not write and
        // without a channel.
        for stream in [&mut stalled, &mut silent, &mut garbage] {
            let mut buf = vec![0u8; 4096];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue, // an HTTP error response, if any
                }
            }
        }
        let connects = records(&log)
            .iter()
            .filter(|r| matches!(r, Record::Connect(_)))
            .count();
        assert_eq!(
            connects,
            1,
            "only the player got a channel: {:?}",
            records(&log)
        );
        assert_eq!(handle.connection_count(), 1);

        // Their slots are free again: more peers than the stalled ones fit.
        let mut more = Vec::new();
        for _ in 0..7 {
            more.push(WsPeer::connect(ws_addr, CodecKind::Bincode).await);
        }
        player.send(&Echo { n: 2 }).await;
        assert_eq!(player.expect::<Echo>().await, Echo { n: 2 });
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_peers_authenticate_like_tcp_peers() {
    within(async {
        let log = Log::default();
        let builder = game_builder(&log).codec(CodecKind::MsgPack).auth(
            Duration::from_secs(10),
            |login: Login, _peer| async move {
                if login.token == "good" {
                    Ok("alice".to_owned())
                } else {
                    Err(format!("bad token {:?}", login.token))
                }
            },
        );
        let (_tcp, ws_addr, handle, server) = serve_both(builder).await;

        let mut refused = WsPeer::connect_raw(ws_addr, CodecKind::MsgPack).await;
        refused
            .send(&Login {
                token: "bad".into(),
            })
            .await;
        let error: ErrorMessage = refused.expect().await;
        assert_eq!(error.message, "bad token \"bad\"");
        refused.expect_closed(0).await;

        let mut early = WsPeer::connect_raw(ws_addr, CodecKind::MsgPack).await;
        early.send(&Chat { text: "hi".into() }).await;
        let error: ErrorMessage = early.expect().await;
        assert_eq!(error.message, "authentication required");
        early.expect_closed(0).await;
        assert_eq!(records(&log), vec![], "no channel for refused peers");

        let mut good = WsPeer::connect_raw(ws_addr, CodecKind::MsgPack).await;
        good.send(&Login {
            token: "good".into(),
        })
        .await;
        good.send(&WhoAmI {}).await;
        assert_eq!(good.recv().await.unwrap().action(), "connected");
        let said: Said = good.expect().await;
        assert_eq!(said.text, "alice");
        assert_eq!(records(&log), vec![Record::Connect(said.from)]);

        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_peer_that_never_reads_is_reset_as_a_slow_consumer() {
    within(async {
        let log = Log::default();
        let builder = game_builder(&log)
            .outbound_queue_bytes(256 * 1024)
            .outbound_queue_frames(1_000_000);
        let (tcp_addr, ws_addr, handle, server) = serve_both(builder).await;
        let mut fast = TestClient::connect(tcp_addr, CodecKind::Bincode).await;

        // A small receive buffer, and never a read after the upgrade.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(ws_addr).await.unwrap();
        let slow = WsPeer::upgrade(stream, ws_addr, CodecKind::Bincode).await;
        eventually(|| handle.connection_count() == 2).await;
        let slow_id = said_id(&handle, 2).await;
        let cut =
            || records(&log).contains(&Record::Disconnect(slow_id, CloseReason::SlowConsumer));

        let data = "x".repeat(32 * 1024);
        let mut seq = 0;
        while !cut() {
            assert!(seq < 20_000, "the peer was never cut off");
            handle
                .send_to_all(&Big {
                    seq,
                    data: data.clone(),
                })
                .unwrap();
            seq += 1;
            if seq % 4 == 0 {
                // The fast peer keeps up, well within its queue (256 KiB is 8 broadcasts).
                for n in seq - 4..seq {
                    assert_eq!(fast.expect::<Big>().await.seq, n);
                }
            }
        }
        assert!(records(&log).contains(&Record::OnClose(slow_id, CloseReason::SlowConsumer)));

        // The slow peer's socket is reset: reading what reached it ends in an error, not a
        // close message.
        let mut stream = slow.ws.into_inner();
        let mut sink = vec![0u8; 64 * 1024];
        let end = loop {
            match stream.read(&mut sink).await {
                Ok(0) => break Ok(()),
                Ok(_) => continue,
                Err(error) => break Err(error.kind()),
            }
        };
        assert_eq!(end, Err(std::io::ErrorKind::ConnectionReset));

        fast.send(&Echo { n: 9 }).await;
        loop {
            // Skip the broadcasts still on their way to the fast peer.
            let raw = fast.recv().await.expect("still served");
            if raw.action() == Echo::ACTION {
                assert_eq!(raw.decode::<Echo>().unwrap(), Echo { n: 9 });
                break;
            }
        }
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_allow_list_refuses_other_pages_but_not_programs() {
    within(async {
        let builder = Server::<Game>::builder_with_state(Default::default())
            .ws_allowed_origins(["http://good.example"]);
        let (_tcp, ws_addr, handle, server) = serve_both(builder).await;
        let upgrade = |origin: Option<&'static str>| async move {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let mut request = format!("ws://{ws_addr}/").into_client_request().unwrap();
            if let Some(origin) = origin {
                request
                    .headers_mut()
                    .insert("Origin", origin.parse().unwrap());
            }
            let stream = TcpStream::connect(ws_addr).await.unwrap();
            tokio_tungstenite::client_async(request, stream)
                .await
                .map(|_| ())
        };
        assert!(upgrade(Some("http://good.example")).await.is_ok());
        assert!(upgrade(None).await.is_ok());
        match upgrade(Some("http://evil.example")).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403)
            }
            other => panic!("expected a 403, got {other:?}"),
        }
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

/// A game-loop client whose WebSocket connect fails reports it as `error` then
/// `disconnected`, never `connected`.
#[test]
fn a_game_loop_client_reports_a_failed_websocket_connect() {
    // Nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut client = Client::connect(format!("ws://{addr}/").as_str()).unwrap();
    let mut events = Recorder::default();
    let deadline = std::time::Instant::now() + server_support::SCENARIO_TIMEOUT;
    while !events.0.iter().any(|e| e.action() == "disconnected") {
        assert!(
            std::time::Instant::now() < deadline,
            "no disconnected in time"
        );
        client.pump(&mut events);
        std::thread::sleep(Duration::from_millis(2));
    }
    let seen: Vec<&str> = events.0.iter().map(RawMessage::action).collect();
    assert_eq!(seen, ["error", "disconnected"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_tells_a_websocket_peer_so_in_a_message_it_can_read() {
    within(async {
        let log = Log::default();
        let (_tcp, ws_addr, handle, server) =
            serve_both(game_builder(&log).max_connections(1)).await;
        let mut first = WsPeer::connect(ws_addr, CodecKind::Bincode).await;
        let mut second = WsPeer::connect_raw(ws_addr, CodecKind::Bincode).await;
        let error: ErrorMessage = second.expect().await;
        assert_eq!(error.message, "server full");
        second.expect_closed(0).await;
        first.send(&Echo { n: 1 }).await;
        assert_eq!(first.expect::<Echo>().await, Echo { n: 1 });
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_and_heartbeats_apply_to_websocket_peers() {
    within(async {
        let log = Log::default();
        let builder = game_builder(&log).idle_timeout(Duration::from_millis(600));
        let (_tcp, ws_addr, handle, server) = serve_both(builder).await;

        // A silent WebSocket peer is closed as idle.
        let mut silent = WsPeer::connect(ws_addr, CodecKind::Bincode).await;
        let error: ErrorMessage = silent.expect().await;
        assert_eq!(error.message, "idle timeout");
        silent.expect_closed(0).await;

        // A Rust client over ws:// beating well within the timeout stays, and measures its
        // round trip.
        let mut beating = AsyncClient::builder()
            .heartbeat(Duration::from_millis(60))
            .connect_async(format!("ws://{ws_addr}/"))
            .await
            .unwrap();
        eventually(|| beating.rtt().is_some()).await;
        // Several idle timeouts later it is still served.
        tokio::time::sleep(Duration::from_millis(1800)).await;
        beating.send(&Echo { n: 8 }).unwrap();
        loop {
            let event = beating.recv().await.expect("still connected");
            if event.is::<Echo>() {
                assert_eq!(event.decode::<Echo>().unwrap(), Echo { n: 8 });
                break;
            }
            assert!(
                !matches!(event.action(), "error" | "disconnected"),
                "unexpected {event:?}"
            );
        }
        beating.close().await;
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}
