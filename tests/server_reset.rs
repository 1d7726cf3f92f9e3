//! A peer the server cuts off without flushing is reset, not left hanging: a slow consumer, and
//! a connection whose close did not finish within the close timeout, both see "connection
//! reset" at once, though they never read, and nothing unsent stays queued for them.

mod server_support;

use std::io;
use std::time::Duration;

use repod::{CloseReason, CodecKind};
use server_support::*;
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::{TcpSocket, TcpStream};

/// A socket that holds a small receive buffer and never reads (until the test says so).
async fn never_reading_peer(addr: std::net::SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Waits, without reading, until the connection reports an error: the reset has arrived.
async fn reset_arrives(stream: &TcpStream) {
    loop {
        let ready = stream.ready(Interest::ERROR).await.unwrap();
        if ready.is_error() {
            return;
        }
    }
}

/// Reads everything still buffered, then returns how the stream ended.
async fn read_to_end(stream: &mut TcpStream) -> io::Result<()> {
    let mut sink = vec![0u8; 64 * 1024];
    loop {
        if stream.read(&mut sink).await? == 0 {
            return Ok(());
        }
    }
}

fn peer_id_of(records: &[Record]) -> Option<u64> {
    records.iter().find_map(|r| match r {
        Record::Connect(id) => Some(*id),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_reset_and_sees_it_without_reading() {
    within(async {
        let log = Log::default();
        let builder = game_builder(&log)
            .outbound_queue_bytes(256 * 1024)
            .outbound_queue_frames(1_000_000);
        let (addr, handle, server) = serve(builder).await;
        let mut slow = never_reading_peer(addr).await;
        eventually(|| peer_id_of(&records(&log)).is_some()).await;
        let id = peer_id_of(&records(&log)).unwrap();
        let cut = || records(&log).contains(&Record::Disconnect(id, CloseReason::SlowConsumer));

        // Broadcast until the server gives up on the peer: far more than its queue and the
        // kernel's buffers hold, so only the cut can end this.
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
            if seq % 16 == 0 {
                // A round trip through the loop: it has handled every broadcast before it, so
                // no more than 16 wait in its queue at any time.
                handle.call(|_| ()).await.unwrap();
            }
        }

        // The peer has not read a byte, yet its socket already knows.
        reset_arrives(&slow).await;
        let end = read_to_end(&mut slow).await;
        assert_eq!(
            end.as_ref().map_err(io::Error::kind),
            Err(io::ErrorKind::ConnectionReset),
            "the peer should read a reset after what reached it, not {end:?}"
        );

        // Asked through the loop, not read from `connection_count`, which the loop updates
        // only after the event that closed the channel, possibly after the peer saw the reset.
        let channels = handle.call(|ctx| ctx.channels().count()).await.unwrap();
        assert_eq!(
            channels, 0,
            "the server still holds the slow consumer's channel"
        );
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_that_times_out_resets_the_connection() {
    within(async {
        let log = Log::default();
        let builder = game_builder(&log)
            .outbound_queue_bytes(64 << 20)
            .outbound_queue_frames(1_000_000)
            .close_timeout(Duration::from_millis(300));
        let (addr, handle, server) = serve(builder).await;
        let mut peer = never_reading_peer(addr).await;
        eventually(|| peer_id_of(&records(&log)).is_some()).await;
        // Queue 16 MiB to the peer, more than the kernel holds for it, then close the channel
        // gracefully: the writer cannot finish within the close timeout.
        let queued = handle
            .call(|ctx| {
                let ids: Vec<_> = ctx.channels().map(|p| p.id).collect();
                let data = "y".repeat(32 * 1024);
                let mut queued = 0;
                for id in &ids {
                    for seq in 0..512 {
                        if ctx
                            .send_to(
                                *id,
                                &Big {
                                    seq,
                                    data: data.clone(),
                                },
                            )
                            .is_ok()
                        {
                            queued += 1;
                        }
                    }
                    ctx.disconnect_peer(*id);
                }
                queued
            })
            .await
            .unwrap();
        assert_eq!(queued, 512);
        let closed_id = peer_id_of(&records(&log)).unwrap();
        eventually(|| {
            records(&log).contains(&Record::Disconnect(closed_id, CloseReason::Disconnected))
        })
        .await;

        reset_arrives(&peer).await;
        let end = read_to_end(&mut peer).await;
        assert_eq!(
            end.as_ref().map_err(io::Error::kind),
            Err(io::ErrorKind::ConnectionReset),
            "the peer should read a reset after what reached it, not {end:?}"
        );

        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_close_still_delivers_everything() {
    within(async {
        let log = Log::default();
        let (addr, handle, server) = serve(game_builder(&log)).await;
        let mut client = TestClient::connect(addr, CodecKind::Bincode).await;
        let data = "z".repeat(1024);
        handle
            .call(move |ctx| {
                let ids: Vec<_> = ctx.channels().map(|p| p.id).collect();
                for id in ids {
                    for seq in 0..1000 {
                        let _ = ctx.send_to(
                            id,
                            &Big {
                                seq,
                                data: data.clone(),
                            },
                        );
                    }
                    ctx.disconnect_peer(id);
                }
            })
            .await
            .unwrap();
        for seq in 0..1000 {
            assert_eq!(client.expect::<Big>().await.seq, seq);
        }
        // Then the end of the stream: a FIN, not a reset.
        assert!(
            futures::StreamExt::next(&mut client.framed).await.is_none(),
            "the connection should end cleanly"
        );
        handle.shutdown();
        server.await.unwrap().unwrap();
    })
    .await;
}
