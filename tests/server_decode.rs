//! Message bodies are decoded on the connection's own task, not on the dispatch loop: a body
//! that is slow to decode holds up only its own connection.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use repod::server::Server;
use repod::{Codec, CodecKind, Context, FrameCodec, Message};
use serde::{Deserialize, Deserializer, Serialize};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// Released by the test; a decode of `Slow` waits for it (at most 10 s).
static GATE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

fn wait_for_gate() {
    let (open, cv) = &GATE;
    let guard = open.lock().unwrap();
    let _ = cv
        .wait_timeout_while(guard, Duration::from_secs(10), |open| !*open)
        .unwrap();
}

fn open_gate() {
    let (open, cv) = &GATE;
    *open.lock().unwrap() = true;
    cv.notify_all();
}

/// A payload whose decoding blocks until the gate opens.
#[derive(Debug, Serialize, repod::Message)]
#[action("slow")]
struct Slow {
    n: u32,
}

impl<'de> Deserialize<'de> for Slow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Fields {
            n: u32,
        }
        let fields = Fields::deserialize(d)?;
        wait_for_gate();
        Ok(Slow { n: fields.n })
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("echo")]
struct Echo {
    n: u32,
}

#[derive(Default)]
struct Peer;

#[repod::channel]
impl Peer {
    #[action]
    fn slow(&mut self, ctx: &mut Context<'_, Self>, msg: Slow) {
        ctx.send(&Echo { n: msg.n });
    }

    #[action]
    fn echo(&mut self, ctx: &mut Context<'_, Self>, msg: Echo) {
        ctx.send(&msg);
    }
}

async fn connect(addr: std::net::SocketAddr) -> Framed<TcpStream, FrameCodec> {
    let mut framed = Framed::new(
        TcpStream::connect(addr).await.unwrap(),
        FrameCodec::default(),
    );
    let greeting = framed.next().await.unwrap().unwrap();
    assert_eq!(
        CodecKind::Bincode.decode_raw(greeting).unwrap().action(),
        "connected"
    );
    framed
}

fn payload<M: Message>(msg: &M) -> bytes::Bytes {
    CodecKind::Bincode.encode(msg, 1 << 20).unwrap().slice(4..)
}

async fn next_echo(framed: &mut Framed<TcpStream, FrameCodec>) -> Echo {
    let frame = tokio::time::timeout(Duration::from_secs(5), framed.next())
        .await
        .expect("no answer within 5 s")
        .unwrap()
        .unwrap();
    CodecKind::Bincode
        .decode_raw(frame)
        .unwrap()
        .decode()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_body_holds_up_only_its_own_connection() {
    let server = Server::<Peer>::builder().bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let serving = tokio::spawn(server.run());

    let mut stuck = connect(addr).await;
    let mut other = connect(addr).await;
    stuck.send(payload(&Slow { n: 1 })).await.unwrap();
    // Give the server time to start decoding the slow body.
    tokio::time::sleep(Duration::from_millis(100)).await;

    // While that decode blocks, the other peer is served: the dispatch loop is free.
    for n in 0..10 {
        other.send(payload(&Echo { n })).await.unwrap();
        assert_eq!(next_echo(&mut other).await, Echo { n });
    }

    open_gate();
    assert_eq!(next_echo(&mut stuck).await, Echo { n: 1 });

    handle.shutdown();
    serving.await.unwrap().unwrap();
}
