//! A thousand slow peers at once, over real sockets: half of them connect and send nothing,
//! half send one byte of a frame per second (slowloris). With an authentication timeout or an
//! idle timeout configured, every one of them is closed, and a well-behaved client is served
//! the whole time.

mod server_support;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use repod::server::ServerBuilder;
use repod::{CloseReason, CodecKind};
use server_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Slow peers per test: half silent, half trickling.
const PEERS: usize = 1000;

/// The server's authentication or idle timeout. Long enough that connecting every slow peer
/// and serving the good client happen while they are all still open on any machine.
const TIMEOUT: Duration = Duration::from_secs(6);

/// Every slow peer must be closed within this time of connecting, the timeout included.
const CLOSE_DEADLINE: Duration = Duration::from_secs(90);

/// The bytes a trickling peer sends, one per second: the header of a frame announcing 60,000
/// bytes, then its body. The frame is never complete within the test.
fn trickle_byte(sent: usize) -> u8 {
    match sent {
        0 | 1 => 0,
        2 => 0xea,
        3 => 0x60,
        _ => b'x',
    }
}

/// Whether the server still holds `stream` open: nothing to read yet, and no end or reset.
/// Reads and drops what the server sent (a greeting) on the way.
fn still_open(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match stream.try_read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(error) if error.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

/// Opens the slow peers: the first half silent, the second half trickling. Returns the
/// streams and a sender that stops the trickling task when dropped.
async fn slow_peers(addr: SocketAddr) -> (Vec<TcpStream>, watch::Sender<()>) {
    let mut silent = Vec::with_capacity(PEERS / 2);
    for _ in 0..PEERS / 2 {
        silent.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let mut trickling = Vec::with_capacity(PEERS / 2);
    for _ in 0..PEERS / 2 {
        trickling.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // The trickling peers are driven from one task through duplicated sockets, so the test
    // keeps a handle to read their end.
    let (stop_tx, mut stop_rx) = watch::channel(());
    let writers: Vec<TcpStream> = trickling
        .iter()
        .map(|stream| {
            let std = dup(stream);
            TcpStream::from_std(std).expect("register duplicated socket")
        })
        .collect();
    tokio::spawn(async move {
        let mut writers: Vec<Option<TcpStream>> = writers.into_iter().map(Some).collect();
        let mut sent = 0;
        loop {
            let byte = trickle_byte(sent);
            sent += 1;
            for slot in writers.iter_mut() {
                if let Some(stream) = slot {
                    if stream.write_all(&[byte]).await.is_err() {
                        *slot = None;
                    }
                }
            }
            tokio::select! {
                _ = stop_rx.changed() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
    silent.extend(trickling);
    (silent, stop_tx)
}

/// A second handle to the same socket, for writing from another task.
fn dup(stream: &TcpStream) -> std::net::TcpStream {
    use std::os::fd::{AsFd, OwnedFd};
    let fd: OwnedFd = stream
        .as_fd()
        .try_clone_to_owned()
        .expect("duplicate socket");
    let std = std::net::TcpStream::from(fd);
    std.set_nonblocking(true).expect("non-blocking");
    std
}

/// Waits until the server has closed every one of `peers`, reading what each was sent.
async fn expect_all_closed(peers: Vec<TcpStream>) {
    let waits = peers.into_iter().map(|mut stream| async move {
        let mut buf = [0u8; 256];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    });
    tokio::time::timeout(CLOSE_DEADLINE, futures::future::join_all(waits))
        .await
        .expect("every slow peer is closed by the server");
}

/// Serves the good client: `rounds` echo round trips, each answered in order.
async fn play(client: &mut TestClient, rounds: u64) {
    for n in 0..rounds {
        client.send(&Echo { n }).await;
        assert_eq!(client.expect::<Echo>().await, Echo { n });
    }
}

/// A server with room for every slow peer and the good client.
fn roomy(builder: ServerBuilder<Game>) -> ServerBuilder<Game> {
    builder
        .max_connections(PEERS + 10)
        .close_timeout(Duration::from_secs(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_slow_peers_time_out_of_authentication_while_a_player_is_served() {
    let log = Log::default();
    let codec = CodecKind::Bincode;
    let builder =
        roomy(game_builder(&log).codec(codec)).auth(TIMEOUT, |login: Login, _| async move {
            if login.token == "good" {
                Ok(())
            } else {
                Err("bad token".to_owned())
            }
        });
    let (addr, handle, server) = serve(builder).await;
    let (peers, stop) = slow_peers(addr).await;

    // The good client logs in and plays while every slow peer holds a connection.
    let mut good = TestClient::connect_raw(addr, codec).await;
    good.send(&Login {
        token: "good".to_owned(),
    })
    .await;
    let greeting = good.recv().await.expect("greeting");
    assert_eq!(greeting.action(), "connected");
    play(&mut good, 50).await;
    let open = peers.iter().filter(|stream| still_open(stream)).count();
    assert!(
        open > 0,
        "the player was served while slow peers were still connected"
    );

    expect_all_closed(peers).await;
    drop(stop);
    // The good client is still served after them, and none of them ever had a channel.
    play(&mut good, 10).await;
    assert_eq!(handle.connection_count(), 1);
    assert_eq!(
        records(&log)
            .iter()
            .filter(|r| matches!(r, Record::Connect(_)))
            .count(),
        1
    );
    handle.shutdown();
    server.await.expect("server task").expect("server ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_slow_peers_are_closed_as_idle_while_a_player_is_served() {
    let log = Log::default();
    let codec = CodecKind::MsgPack;
    let (addr, handle, server) =
        serve(roomy(game_builder(&log).codec(codec).idle_timeout(TIMEOUT))).await;
    let (peers, stop) = slow_peers(addr).await;

    let mut good = TestClient::connect(addr, codec).await;
    play(&mut good, 50).await;
    let open = peers.iter().filter(|stream| still_open(stream)).count();
    assert!(
        open > 0,
        "the player was served while slow peers were still connected"
    );

    // The player keeps playing (so it is never idle) until every slow peer is closed.
    let closing = expect_all_closed(peers);
    tokio::pin!(closing);
    let mut n = 0;
    loop {
        tokio::select! {
            () = &mut closing => break,
            () = tokio::time::sleep(Duration::from_millis(300)) => {
                good.send(&Echo { n }).await;
                assert_eq!(good.expect::<Echo>().await, Echo { n });
                n += 1;
            }
        }
    }
    drop(stop);
    // Every slow peer's channel closed as idle; the player still plays.
    eventually_within(|| {
        records(&log)
            .iter()
            .filter(|r| matches!(r, Record::Disconnect(_, CloseReason::Idle)))
            .count()
            >= PEERS
    })
    .await;
    play(&mut good, 10).await;
    assert_eq!(handle.connection_count(), 1);
    handle.shutdown();
    server.await.expect("server task").expect("server ran");
}

/// [`eventually`] with the generous deadline of this file.
async fn eventually_within(cond: impl FnMut() -> bool) {
    tokio::time::timeout(CLOSE_DEADLINE, eventually(cond))
        .await
        .expect("condition reached in time");
}
