//! Message bodies are decoded on each connection's own task, not on the dispatch loop, so
//! decoding never holds up other channels.
//!
//! The proof is which tokio task does the work: the payload's `Deserialize` impl and the
//! handler record their task ids, and the test compares them.

use std::sync::Mutex;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use repod::server::Server;
use repod::{Codec, CodecKind, Context, FrameCodec};
use serde::{Deserialize, Deserializer, Serialize};
use tokio::net::TcpStream;
use tokio::task::Id;
use tokio_util::codec::Framed;

/// (connection tag, task that decoded the body) for every `probe` decoded.
static DECODED_IN: Mutex<Vec<(u32, Option<Id>)>> = Mutex::new(Vec::new());
/// (connection tag, task that ran the handler) for every `probe` handled.
static HANDLED_IN: Mutex<Vec<(u32, Option<Id>)>> = Mutex::new(Vec::new());

/// A payload that records which task decodes it.
#[derive(Debug, Serialize, repod::Message)]
#[action("probe")]
struct Probe {
    tag: u32,
}

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Fields {
            tag: u32,
        }
        let fields = Fields::deserialize(d)?;
        DECODED_IN
            .lock()
            .unwrap()
            .push((fields.tag, tokio::task::try_id()));
        Ok(Probe { tag: fields.tag })
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("done")]
struct Done {
    tag: u32,
}

#[derive(Default)]
struct Peer;

#[repod::channel]
impl Peer {
    #[action]
    fn probe(&mut self, ctx: &mut Context<'_, Self>, msg: Probe) {
        HANDLED_IN
            .lock()
            .unwrap()
            .push((msg.tag, tokio::task::try_id()));
        let _ = ctx.send(&Done { tag: msg.tag });
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

async fn probe(framed: &mut Framed<TcpStream, FrameCodec>, tag: u32) {
    let payload = CodecKind::Bincode
        .encode(&Probe { tag }, 1 << 20)
        .unwrap()
        .slice(4..);
    framed.send(payload).await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(5), framed.next())
        .await
        .expect("no answer within 5 s")
        .unwrap()
        .unwrap();
    let done: Done = CodecKind::Bincode
        .decode_raw(frame)
        .unwrap()
        .decode()
        .unwrap();
    assert_eq!(done, Done { tag });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_decoded_on_the_connection_task_not_on_the_loop() {
    let server = Server::<Peer>::builder().bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let serving = tokio::spawn(server.run());

    let mut a = connect(addr).await;
    let mut b = connect(addr).await;
    for round in 0..3 {
        probe(&mut a, 100 + round).await;
        probe(&mut b, 200 + round).await;
    }
    handle.shutdown();
    serving.await.unwrap().unwrap();

    let decoded = DECODED_IN.lock().unwrap().clone();
    let handled = HANDLED_IN.lock().unwrap().clone();
    assert_eq!(decoded.len(), 6, "{decoded:?}");
    assert_eq!(handled.len(), 6, "{handled:?}");
    // Every handler ran in one task: the dispatch loop.
    let loop_task = handled[0].1.expect("handlers run inside a tokio task");
    assert!(
        handled.iter().all(|(_, id)| *id == Some(loop_task)),
        "{handled:?}"
    );
    // No body was decoded there; each connection decoded its own, in a task of its own.
    let task_of = |conn: u32| -> Vec<Option<Id>> {
        decoded
            .iter()
            .filter(|(tag, _)| tag / 100 == conn)
            .map(|(_, id)| *id)
            .collect()
    };
    let (a_tasks, b_tasks) = (task_of(1), task_of(2));
    assert!(
        a_tasks.iter().all(|id| id.is_some() && *id == a_tasks[0]),
        "{decoded:?}"
    );
    assert!(
        b_tasks.iter().all(|id| id.is_some() && *id == b_tasks[0]),
        "{decoded:?}"
    );
    assert_ne!(a_tasks[0], b_tasks[0]);
    assert_ne!(a_tasks[0], Some(loop_task));
    assert_ne!(b_tasks[0], Some(loop_task));
}
