//! A client's sends arrive whole and in order, whether they were written straight from the
//! sending thread or queued for the connection's writer: with a server that reads late (so the
//! socket fills in the middle of a frame) and with several threads sending at once.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use repod::{AsyncClient, Client, Codec, CodecKind, FrameCodec, Message, SendError};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::codec::FramedRead;

/// How long the server waits for anything.
const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Numbered {
    sender: u32,
    seq: u32,
    /// Bytes that must arrive intact: `seq` as a byte, repeated.
    #[serde(with = "serde_bytes")]
    fill: Vec<u8>,
}

impl Message for Numbered {
    const ACTION: &'static str = "numbered";
}

impl Numbered {
    fn new(sender: u32, seq: u32, len: usize) -> Numbered {
        Numbered {
            sender,
            seq,
            fill: vec![seq as u8; len],
        }
    }
}

/// A one-connection server that reads nothing until `go` is signalled, then reports every
/// `Numbered` it receives, and `None` at the end of the connection.
fn server(
    go: std_mpsc::Receiver<()>,
) -> (std::net::SocketAddr, std_mpsc::Receiver<Option<Numbered>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, seen_rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            // Wait (off the runtime's thread) for the signal to start reading.
            let _ = tokio::task::spawn_blocking(move || go.recv_timeout(DEADLINE)).await;
            let mut frames = FramedRead::new(stream, FrameCodec::default());
            while let Ok(Some(Ok(payload))) = tokio::time::timeout(DEADLINE, frames.next()).await {
                let msg = CodecKind::Bincode.decode_raw(payload).unwrap();
                if msg.action() == Numbered::ACTION {
                    let _ = seen.send(Some(msg.decode::<Numbered>().unwrap()));
                }
            }
            let _ = seen.send(None);
        });
    });
    (addr, seen_rx)
}

/// Sizes that overflow the socket's buffers part way through a frame, mixed with small ones.
fn size(seq: u32) -> usize {
    if seq.is_multiple_of(4) {
        200_000 + seq as usize
    } else {
        seq as usize % 50
    }
}

/// Reads `count` messages per sender and checks each is whole and each sender's are in order.
fn check(seen: &std_mpsc::Receiver<Option<Numbered>>, senders: u32, count: u32) {
    let mut next = vec![0u32; senders as usize];
    for _ in 0..senders * count {
        let msg = seen
            .recv_timeout(DEADLINE)
            .expect("the server received every message in time")
            .expect("the connection stayed open");
        let expected = &mut next[msg.sender as usize];
        assert_eq!(
            msg.seq, *expected,
            "sender {}'s messages in order",
            msg.sender
        );
        assert_eq!(msg, Numbered::new(msg.sender, msg.seq, size(msg.seq)));
        *expected += 1;
    }
}

/// Waits until the game-loop client is connected, so that its sends may go straight out.
fn connected(client: Client) -> Client {
    let since = std::time::Instant::now();
    while !client.is_connected() {
        assert!(since.elapsed() < DEADLINE, "connected in time");
        std::thread::yield_now();
    }
    client
}

#[test]
fn sends_written_before_the_server_reads_arrive_whole_and_in_order() {
    let (go, go_rx) = std_mpsc::channel();
    let (addr, seen) = server(go_rx);
    let client = Client::builder()
        .send_queue(1 << 16, 256 << 20)
        .connect(addr)
        .unwrap();
    let client = connected(client);
    let count = 60;
    for seq in 0..count {
        client.send(&Numbered::new(0, seq, size(seq))).unwrap();
    }
    go.send(()).unwrap();
    check(&seen, 1, count);
    drop(client);
    assert_eq!(seen.recv_timeout(DEADLINE).unwrap(), None);
}

#[test]
fn sends_from_several_threads_keep_each_threads_order() {
    let (go, go_rx) = std_mpsc::channel();
    let (addr, seen) = server(go_rx);
    go.send(()).unwrap();
    let client = Arc::new(connected(Client::connect(addr).unwrap()));
    let (senders, count) = (4, 200);
    let threads: Vec<_> = (0..senders)
        .map(|sender| {
            let client = client.clone();
            std::thread::spawn(move || {
                for seq in 0..count {
                    let msg = Numbered::new(sender, seq, size(seq));
                    // A full queue is the server not keeping up: try again until it has room.
                    loop {
                        match client.send(&msg) {
                            Ok(()) => break,
                            Err(SendError::QueueFull) => std::thread::yield_now(),
                            Err(e) => panic!("send failed: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    check(&seen, senders, count);
}

#[test]
fn async_close_after_direct_and_queued_sends_delivers_them_all() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (go, go_rx) = std_mpsc::channel();
    let (addr, seen) = server(go_rx);
    runtime.block_on(async move {
        let client = AsyncClient::builder()
            .send_queue(1 << 16, 256 << 20)
            .close_timeout(DEADLINE)
            .connect_async(addr)
            .await
            .unwrap();
        let count = 40;
        for seq in 0..count {
            client.send(&Numbered::new(0, seq, size(seq))).unwrap();
        }
        go.send(()).unwrap();
        let ended = client.close().await;
        assert_eq!(ended.reason, "closed by client");
        check(&seen, 1, count);
        assert_eq!(seen.recv_timeout(DEADLINE).unwrap(), None);
    });
}
