//! A closing connection never lingers: what is queued to a peer that does not read is dropped
//! after the close timeout, and until then the socket still counts against `max_connections`.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use repod::server::Server;
use repod::{Codec, CodecKind, Context, ErrorMessage, FrameCodec, Message, RawMessage};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("flood_then_leave")]
struct FloodThenLeave;

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("blob")]
struct Blob {
    data: String,
}

#[derive(Default)]
struct Flooder;

#[repod::channel]
impl Flooder {
    #[action("flood_then_leave")]
    fn flood_then_leave(&mut self, ctx: &mut Context<'_, Self>) {
        // 40 MiB: far more than the loopback socket buffers hold.
        let blob = Blob {
            data: "x".repeat(512 * 1024),
        };
        for _ in 0..80 {
            let _ = ctx.send(&blob);
        }
        ctx.disconnect();
    }
}

fn frame<M: Message>(msg: &M) -> bytes::Bytes {
    CodecKind::Bincode.encode(msg, 1 << 20).unwrap().slice(4..)
}

/// Connects and returns the first message the server sends.
async fn first_message(addr: std::net::SocketAddr) -> RawMessage {
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut framed = Framed::new(stream, FrameCodec::default());
    let payload = tokio::time::timeout(Duration::from_secs(5), framed.next())
        .await
        .expect("no greeting")
        .expect("closed before a greeting")
        .unwrap();
    CodecKind::Bincode.decode_raw(payload).unwrap()
}

#[tokio::test]
async fn a_peer_that_never_reads_cannot_keep_a_closed_connection_open() {
    // Long enough for the checks below to run inside it on a loaded machine.
    let close_timeout = Duration::from_secs(3);
    let server = Server::<Flooder>::builder()
        .max_connections(1)
        .outbound_queue_bytes(64 << 20)
        .outbound_queue_frames(1024)
        .close_timeout(close_timeout)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let serving = tokio::spawn(server.run());

    // The peer asks for a flood, then never reads.
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut framed = Framed::new(stream, FrameCodec::default());
    framed.send(frame(&FloodThenLeave)).await.unwrap();
    let asked = Instant::now();

    // Wait until the server has closed the channel (its handler ran and disconnected it).
    while handle.connection_count() != 0 {
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "the channel never closed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The socket is still flushing: it still counts, so another peer is refused.
    let refused = first_message(addr).await;
    assert!(
        asked.elapsed() < close_timeout,
        "the check ran too late to mean anything"
    );
    assert_eq!(refused.action(), "error");
    assert_eq!(
        refused.decode::<ErrorMessage>().unwrap().message,
        "server full"
    );

    // Not reading past the close timeout: the server drops the socket, which frees its place
    // again...
    let deadline = Instant::now() + close_timeout + Duration::from_secs(10);
    loop {
        let msg = first_message(addr).await;
        if msg.action() == "connected" {
            break;
        }
        assert!(Instant::now() < deadline, "the place never freed up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ... and reading it now yields only what was already in flight, then the end.
    let mut stream = framed.into_inner();
    let mut sink = vec![0u8; 1 << 16];
    let mut received = 0usize;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received += n,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the server never closed the socket");
    assert!(
        received < 80 * 512 * 1024,
        "the peer should not have been sent everything ({received} bytes)"
    );

    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
