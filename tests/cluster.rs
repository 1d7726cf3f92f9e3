//! Several server nodes over a real `redis-server`: a room shared across nodes (both codecs),
//! direct sends by channel id, ordering per origin node, a node that stops or is killed, and
//! Redis killed and restarted under running nodes.
//!
//! Each test starts its own `redis-server` on a free port; without one installed the tests
//! warn and pass, unless `REPOD_REQUIRE_REDIS=1`.
#![cfg(feature = "cluster")]

mod cluster_support;

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster_support::Redis;
use futures::{SinkExt, StreamExt};
use repod::server::{ClusterConfig, Server, ServerError, ServerHandle};
use repod::{ChannelId, Codec, CodecKind, Context, FrameCodec, Message, RawMessage};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// Every wait for a condition gives up after this long (generous: the machine may be busy).
const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("enter")]
pub struct Enter {
    pub room: String,
}

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("entered")]
pub struct Entered {
    pub room: String,
    pub id: u64,
}

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("say")]
pub struct Say {
    pub room: String,
    pub n: u64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("said")]
pub struct Said {
    pub room: String,
    pub from: u64,
    pub n: u64,
}

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("whisper")]
pub struct Whisper {
    pub to: u64,
    pub n: u64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("whispered")]
pub struct Whispered {
    pub from: u64,
    pub n: u64,
}

#[derive(Debug, Serialize, Deserialize, repod::Message)]
#[action("shout")]
pub struct Shout {
    pub n: u64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("shouted")]
pub struct Shouted {
    pub from: u64,
    pub n: u64,
}

#[derive(Default)]
pub struct Member;

#[repod::channel]
impl Member {
    #[action]
    fn enter(&mut self, ctx: &mut Context<'_, Self>, msg: Enter) {
        ctx.join(&msg.room);
        let id = ctx.id().get();
        let _ = ctx.send(&Entered { room: msg.room, id });
    }

    #[action]
    fn say(&mut self, ctx: &mut Context<'_, Self>, msg: Say) {
        let from = ctx.id().get();
        let room = msg.room;
        ctx.send_to_group(
            &room.clone(),
            &Said {
                room,
                from,
                n: msg.n,
            },
        );
    }

    #[action]
    fn whisper(&mut self, ctx: &mut Context<'_, Self>, msg: Whisper) -> Result<(), String> {
        let from = ctx.id().get();
        ctx.send_to(ChannelId::new(msg.to), &Whispered { from, n: msg.n })
            .map_err(|e| e.to_string())
    }

    #[action]
    fn shout(&mut self, ctx: &mut Context<'_, Self>, msg: Shout) {
        let from = ctx.id().get();
        ctx.send_to_others(&Shouted { from, n: msg.n });
    }
}

/// Short heartbeats and timeouts, so that node death shows within a second or two.
fn config(redis: &Redis) -> ClusterConfig {
    ClusterConfig::new(redis.url())
        .heartbeat(Duration::from_millis(100))
        .node_timeout(Duration::from_millis(1000))
}

async fn node(redis: &Redis, codec: CodecKind) -> (SocketAddr, ServerHandle<Member>) {
    let server = Server::<Member>::builder()
        .codec(codec)
        .cluster(config(redis))
        .bind("127.0.0.1:0")
        .await
        .expect("bind a cluster node");
    let addr = server.local_addr();
    let handle = server.handle();
    tokio::spawn(server.run());
    (addr, handle)
}

/// Waits until `check` (run on the node's loop) holds.
async fn until<T: Send + 'static>(
    handle: &ServerHandle<Member>,
    what: &str,
    check: impl Fn(&mut repod::ServerContext<'_, Member>) -> T + Send + Sync + Clone + 'static,
    want: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let got = handle.call(check.clone()).await.expect("node running");
        if want(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn within<T>(scenario: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), scenario)
        .await
        .expect("scenario timed out")
}

struct Player {
    framed: Framed<TcpStream, FrameCodec>,
    codec: CodecKind,
    id: u64,
}

impl Player {
    async fn enter(addr: SocketAddr, codec: CodecKind, room: &str) -> Player {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut player = Player {
            framed: Framed::new(stream, FrameCodec::default()),
            codec,
            id: 0,
        };
        let greeting = player.recv().await.expect("greeting");
        assert_eq!(greeting.action(), "connected");
        player.send(&Enter { room: room.into() }).await;
        let entered: Entered = player.expect().await;
        player.id = entered.id;
        player
    }

    async fn send<M: Message>(&mut self, msg: &M) {
        let frame = self.codec.encode(msg, usize::MAX).expect("encode");
        let payload: Bytes = frame.slice(4..);
        self.framed.send(payload).await.expect("send");
    }

    async fn recv(&mut self) -> Option<RawMessage> {
        match self.framed.next().await {
            Some(Ok(payload)) => Some(self.codec.decode_raw(payload).expect("decodable")),
            _ => None,
        }
    }

    async fn expect<M: Message + DeserializeOwned>(&mut self) -> M {
        let raw = tokio::time::timeout(DEADLINE, self.recv())
            .await
            .expect("a message in time")
            .expect("a message before the end");
        assert_eq!(raw.action(), M::ACTION, "unexpected message {raw:?}");
        raw.decode().expect("body")
    }

    /// The next message within `wait`, if any.
    async fn try_recv(&mut self, wait: Duration) -> Option<RawMessage> {
        tokio::time::timeout(wait, self.recv()).await.ok().flatten()
    }
}

fn node_of(id: u64) -> u32 {
    ChannelId::new(id).node()
}

async fn chat_across_nodes(codec: CodecKind) {
    let Some(redis) = Redis::start() else { return };
    within(async {
        let (addr_a, a) = node(&redis, codec).await;
        let (addr_b, b) = node(&redis, codec).await;
        let node_a = a.cluster_node().expect("a is a cluster node");
        let node_b = b.cluster_node().expect("b is a cluster node");
        assert_ne!(node_a, node_b);

        let mut alice = Player::enter(addr_a, codec, "red").await;
        let mut bob = Player::enter(addr_b, codec, "red").await;
        let mut carol = Player::enter(addr_a, codec, "blue").await;
        assert_eq!((node_of(alice.id), node_of(bob.id)), (node_a, node_b));
        assert_ne!(alice.id, bob.id);

        // Membership is cluster-wide: each node lists the other's member.
        let members = until(
            &a,
            "a to see bob in red",
            |ctx| {
                let mut m: Vec<u64> = ctx.group_members("red").map(ChannelId::get).collect();
                m.sort();
                m
            },
            |m| m.len() == 2,
        )
        .await;
        assert!(members.contains(&bob.id) && members.contains(&alice.id));
        let alice_id = alice.id;
        let seen = until(
            &b,
            "b to see alice in red",
            move |ctx| {
                (
                    ctx.group_len("red"),
                    ctx.is_in_group(ChannelId::new(alice_id), "red"),
                    ctx.groups_of(ChannelId::new(alice_id))
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                )
            },
            |(len, member, _)| *len == 2 && *member,
        )
        .await;
        assert_eq!(seen.2, ["red"]);

        // A room spanning both nodes, both ways; the sender hears itself too.
        alice
            .send(&Say {
                room: "red".into(),
                n: 1,
            })
            .await;
        let from_alice = Said {
            room: "red".into(),
            from: alice.id,
            n: 1,
        };
        assert_eq!(bob.expect::<Said>().await, from_alice);
        assert_eq!(alice.expect::<Said>().await, from_alice);
        bob.send(&Say {
            room: "red".into(),
            n: 2,
        })
        .await;
        let from_bob = Said {
            room: "red".into(),
            from: bob.id,
            n: 2,
        };
        assert_eq!(alice.expect::<Said>().await, from_bob);
        assert_eq!(bob.expect::<Said>().await, from_bob);

        // A direct send by id, across nodes. Carol is in another room: bob's message to her
        // comes after his "red" message in his node's order, so receiving it first proves
        // she never got the red one.
        bob.send(&Whisper { to: carol.id, n: 3 }).await;
        assert_eq!(
            carol.expect::<Whispered>().await,
            Whispered { from: bob.id, n: 3 }
        );
        carol.send(&Whisper { to: bob.id, n: 4 }).await;
        assert_eq!(
            bob.expect::<Whispered>().await,
            Whispered {
                from: carol.id,
                n: 4
            }
        );

        // A broadcast to every channel of every node but the sender.
        bob.send(&Shout { n: 5 }).await;
        assert_eq!(
            alice.expect::<Shouted>().await,
            Shouted { from: bob.id, n: 5 }
        );
        assert_eq!(
            carol.expect::<Shouted>().await,
            Shouted { from: bob.id, n: 5 }
        );

        // Order per origin node: a burst from alice arrives at bob in the order sent.
        for n in 0..300 {
            alice
                .send(&Say {
                    room: "red".into(),
                    n,
                })
                .await;
        }
        for n in 0..300 {
            assert_eq!(bob.expect::<Said>().await.n, n);
        }
        for n in 0..300 {
            assert_eq!(alice.expect::<Said>().await.n, n);
        }

        // An id of no node, and an id of this node that is gone: refused.
        bob.send(&Whisper {
            to: 999 << 32 | 1,
            n: 6,
        })
        .await;
        let error = bob.recv().await.expect("an error");
        assert_eq!(error.action(), "error");
        bob.send(&Whisper {
            to: u64::from(node_b) << 32 | 999,
            n: 7,
        })
        .await;
        let error = bob.recv().await.expect("an error");
        assert_eq!(error.action(), "error");

        // A node with the other codec is refused at join.
        let other = match codec {
            CodecKind::Bincode => CodecKind::MsgPack,
            CodecKind::MsgPack => CodecKind::Bincode,
        };
        let refused = Server::<Member>::builder()
            .codec(other)
            .cluster(config(&redis))
            .bind("127.0.0.1:0")
            .await;
        match refused {
            Err(ServerError::Cluster(message)) => assert!(message.contains("codec"), "{message}"),
            other => panic!("expected a codec refusal, got {other:?}"),
        }

        let stats = a.cluster_stats().expect("stats");
        assert!(stats.published > 0 && stats.received > 0, "{stats:?}");
        a.shutdown();
        b.shutdown();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_across_nodes_bincode() {
    chat_across_nodes(CodecKind::Bincode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_across_nodes_msgpack() {
    chat_across_nodes(CodecKind::MsgPack).await;
}

/// The environment variable that turns this test binary into a cluster node (see
/// [`child_node`]).
const CHILD_URL: &str = "REPOD_CLUSTER_TEST_CHILD_URL";
const CHILD_ADDR: &str = "REPOD_CLUSTER_TEST_ADDR=";

/// Not a test of its own: run by [`node_killed`] as a separate process (this same test binary,
/// asked for this test only), to be killed with SIGKILL like a crashed server. Serves until
/// killed, or until its standard input closes (the parent test is gone).
#[test]
#[ignore = "a helper process of node_killed"]
fn child_node() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let server = Server::<Member>::builder()
        .cluster(
            ClusterConfig::new(url)
                .heartbeat(Duration::from_millis(100))
                .node_timeout(Duration::from_millis(1000)),
        )
        .start_background("127.0.0.1:0")
        .expect("child node");
    println!("{CHILD_ADDR}{}", server.local_addr());
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child_node(redis: &Redis) -> (Child, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "child_node",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL, redis.url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the child node");
    let stdout = child.stdout.take().expect("stdout");
    let child = Child(child);
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the child node printed its address")
            .expect("readable output");
        // The test harness may have written "test child_node ... " before it on the line.
        if let Some((_, addr)) = line.split_once(CHILD_ADDR) {
            break addr.trim().parse().expect("an address");
        }
    };
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_killed_or_stopped_leaves_every_group() {
    let Some(redis) = Redis::start() else { return };
    within(async {
        let codec = CodecKind::Bincode;
        let (addr_a, a) = node(&redis, codec).await;
        let (child, addr_b) = tokio::task::block_in_place(|| spawn_child_node(&redis));
        let (addr_c, c) = node(&redis, codec).await;
        let mut alice = Player::enter(addr_a, codec, "red").await;
        let bob = Player::enter(addr_b, codec, "red").await;
        let carol = Player::enter(addr_c, codec, "red").await;
        let node_b = node_of(bob.id);
        until(
            &a,
            "a to see all three in red",
            |ctx| ctx.group_len("red"),
            |n| *n == 3,
        )
        .await;

        // Killed: no goodbye; a drops its channels once it has been silent for the timeout.
        let killed = Instant::now();
        drop(child);
        until(
            &a,
            "a to drop the killed node's channels",
            |ctx| ctx.group_len("red"),
            |n| *n == 2,
        )
        .await;
        let took = killed.elapsed();
        let nodes = a.cluster_nodes().await.expect("nodes");
        assert!(!nodes.contains(&node_b), "{nodes:?}");
        // The bound is node timeout + one heartbeat (1.1 s here); allow for a busy machine.
        assert!(took < Duration::from_secs(15), "took {took:?}");
        drop(bob);

        // The others go on: alice's room still reaches carol on the third node.
        alice
            .send(&Say {
                room: "red".into(),
                n: 1,
            })
            .await;
        assert_eq!(alice.expect::<Said>().await.n, 1);
        let mut carol = carol;
        assert_eq!(carol.expect::<Said>().await.from, alice.id);

        // Stopped gracefully: its goodbye drops its channels at once (well within the timeout,
        // though the test only waits for the condition).
        c.shutdown();
        until(
            &a,
            "a to drop the stopped node's channels",
            |ctx| ctx.group_len("red"),
            |n| *n == 1,
        )
        .await;
        assert!(a.cluster_nodes().await.expect("nodes").is_empty());
        alice
            .send(&Say {
                room: "red".into(),
                n: 2,
            })
            .await;
        assert_eq!(alice.expect::<Said>().await.n, 2);
        a.shutdown();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_game() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    within(async {
        let codec = CodecKind::MsgPack;
        let (addr_a, a) = node(&redis, codec).await;
        let (addr_b, b) = node(&redis, codec).await;
        let mut alice = Player::enter(addr_a, codec, "red").await;
        let mut bob = Player::enter(addr_b, codec, "red").await;
        until(&a, "a to see bob", |ctx| ctx.group_len("red"), |n| *n == 2).await;
        alice
            .send(&Say {
                room: "red".into(),
                n: 0,
            })
            .await;
        assert_eq!(bob.expect::<Said>().await.n, 0);
        assert_eq!(alice.expect::<Said>().await.n, 0);

        // Redis dies: local delivery goes on.
        tokio::task::block_in_place(|| redis.kill());
        alice
            .send(&Say {
                room: "red".into(),
                n: 1,
            })
            .await;
        assert_eq!(alice.expect::<Said>().await.n, 1);
        // The other node is given up for dead once silent for the node timeout.
        until(
            &a,
            "a to give b up",
            |ctx| ctx.group_len("red"),
            |n| *n == 1,
        )
        .await;

        // Redis comes back, empty: the nodes reconnect and announce their rooms again, and
        // cross-node delivery resumes. Messages sent meanwhile may be lost: alice says
        // numbered lines until bob hears one of them.
        tokio::task::block_in_place(|| redis.restart());
        let deadline = Instant::now() + DEADLINE;
        let mut n = 100;
        let heard = 'resume: loop {
            assert!(
                Instant::now() < deadline,
                "cross-node delivery never resumed"
            );
            alice
                .send(&Say {
                    room: "red".into(),
                    n,
                })
                .await;
            assert_eq!(alice.expect::<Said>().await.n, n);
            if let Some(raw) = bob.try_recv(Duration::from_millis(100)).await {
                assert_eq!(raw.action(), "said");
                let said: Said = raw.decode().expect("said");
                // Earlier lines may be lost, never reordered.
                assert!(said.n >= 100 && said.n <= n, "{said:?}");
                break 'resume said.n;
            }
            n += 1;
        };
        assert!(heard >= 100);
        // Membership is back on both sides.
        until(
            &a,
            "a to see bob again",
            |ctx| ctx.group_len("red"),
            |n| *n == 2,
        )
        .await;
        until(
            &b,
            "b to see alice again",
            |ctx| ctx.group_len("red"),
            |n| *n == 2,
        )
        .await;
        // And the other way round.
        bob.send(&Say {
            room: "red".into(),
            n: 1000,
        })
        .await;
        loop {
            let said: Said = alice.expect().await;
            if said.n == 1000 {
                assert_eq!(said.from, bob.id);
                break;
            }
        }
        let stats = a.cluster_stats().expect("stats");
        assert!(stats.reconnects >= 1, "{stats:?}");
        a.shutdown();
        b.shutdown();
    })
    .await;
}
