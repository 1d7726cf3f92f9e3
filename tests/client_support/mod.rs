//! A small scripted server and a recording listener for the client tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use repod::{Client, ClientContext, Codec, CodecKind, FrameCodec, Listener, Message, RawMessage};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

/// How long any one scenario may wait for something to happen.
pub const DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chat {
    pub text: String,
}

impl Message for Chat {
    const ACTION: &'static str = "chat";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Join {
    pub name: String,
}

impl Message for Join {
    const ACTION: &'static str = "join";
}

/// Asks the test server to close the connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shutdown;

impl Message for Shutdown {
    const ACTION: &'static str = "shutdown";
}

/// How the server greets a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// No greeting at all.
    None,
    /// `Connected` encoded with the connection's codec, as repod's server does.
    Rust,
    /// The exact bytes Python repod sends: the msgpack map `{"action": "connected"}`.
    Python,
}

/// What the server saw.
#[derive(Debug)]
pub enum Seen {
    Frame(Instant, RawMessage),
    Eof,
}

enum Command {
    Send(Bytes),
    Raw(Bytes),
    Close,
}

/// A one-connection server on 127.0.0.1 that greets, reports and echoes every frame, and
/// closes when it receives `shutdown` or is told to.
pub struct TestServer {
    pub addr: SocketAddr,
    pub codec: CodecKind,
    seen: std_mpsc::Receiver<Seen>,
    commands: mpsc::UnboundedSender<Command>,
}

impl TestServer {
    pub fn start(codec: CodecKind, greeting: Greeting) -> TestServer {
        // Bound with std so that async tests can start a server too.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen_tx, seen) = std_mpsc::channel();
        let (commands, commands_rx) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                serve(listener, codec, greeting, seen_tx, commands_rx).await;
            });
        });
        TestServer {
            addr,
            codec,
            seen,
            commands,
        }
    }

    /// Sends a message to the client.
    pub fn send<M: Message>(&self, msg: &M) {
        let frame = self.codec.encode(msg, usize::MAX).unwrap();
        let _ = self.commands.send(Command::Send(frame.slice(4..)));
    }

    /// Writes bytes to the socket as they are (no header added).
    pub fn send_raw(&self, bytes: &[u8]) {
        let _ = self
            .commands
            .send(Command::Raw(Bytes::copy_from_slice(bytes)));
    }

    /// Closes the connection.
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }

    /// The next thing the server saw, waiting up to `DEADLINE`.
    pub fn next(&self) -> Seen {
        self.seen
            .recv_timeout(DEADLINE)
            .expect("the test server saw nothing in time")
    }

    /// The next frame the server received.
    pub fn next_frame(&self) -> (Instant, RawMessage) {
        match self.next() {
            Seen::Frame(at, msg) => (at, msg),
            Seen::Eof => panic!("expected a frame, the connection ended"),
        }
    }

    /// Waits for the end of the connection, returning the frames received before it.
    pub fn frames_until_eof(&self) -> Vec<RawMessage> {
        let mut frames = Vec::new();
        loop {
            match self.next() {
                Seen::Frame(_, msg) => frames.push(msg),
                Seen::Eof => return frames,
            }
        }
    }
}

async fn serve(
    listener: TcpListener,
    codec: CodecKind,
    greeting: Greeting,
    seen: std_mpsc::Sender<Seen>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let Ok((stream, _)) = listener.accept().await else {
        return;
    };
    let mut framed = Framed::new(stream, FrameCodec::default());
    match greeting {
        Greeting::None => {}
        Greeting::Rust => {
            let frame = codec.encode(&repod::Connected, usize::MAX).unwrap();
            framed.send(frame.slice(4..)).await.unwrap();
        }
        Greeting::Python => {
            let payload = Bytes::from_static(b"\x81\xa6action\xa9connected");
            framed.send(payload).await.unwrap();
        }
    }
    loop {
        tokio::select! {
            frame = framed.next() => match frame {
                Some(Ok(payload)) => {
                    let at = Instant::now();
                    let msg = codec.decode_raw(payload.clone()).unwrap();
                    let shutdown = msg.action() == Shutdown::ACTION;
                    let _ = seen.send(Seen::Frame(at, msg));
                    if shutdown {
                        break;
                    }
                    if framed.send(payload).await.is_err() {
                        break;
                    }
                }
                _ => break,
            },
            command = commands.recv() => match command {
                Some(Command::Send(payload)) => {
                    let _ = framed.send(payload).await;
                }
                Some(Command::Raw(bytes)) => {
                    let stream = framed.get_mut();
                    let _ = stream.write_all(&bytes).await;
                    let _ = stream.flush().await;
                }
                Some(Command::Close) | None => break,
            },
        }
    }
    let _ = seen.send(Seen::Eof);
}

/// A listener recording every event, optionally answering `connected` with a `join`.
#[derive(Debug, Default)]
pub struct Recorder {
    pub events: Vec<RawMessage>,
    pub join_as: Option<String>,
}

impl Listener for Recorder {
    const ACTIONS: &'static [&'static str] = &[
        "socketConnect",
        "connected",
        "disconnected",
        "error",
        "chat",
    ];

    fn dispatch(&mut self, ctx: &mut ClientContext<'_>, msg: RawMessage) {
        if msg.action() == "connected" {
            if let Some(name) = &self.join_as {
                ctx.send(&Join { name: name.clone() }).unwrap();
            }
        }
        self.events.push(msg);
    }
}

impl Recorder {
    pub fn actions(&self) -> Vec<&str> {
        self.events.iter().map(RawMessage::action).collect()
    }

    pub fn count(&self, action: &str) -> usize {
        self.events.iter().filter(|m| m.action() == action).count()
    }

    pub fn first(&self, action: &str) -> Option<&RawMessage> {
        self.events.iter().find(|m| m.action() == action)
    }

    /// The reason of the `disconnected` event, if any.
    pub fn disconnect_reason(&self) -> Option<String> {
        let msg = self.first("disconnected")?;
        Some(msg.decode::<repod::Disconnected>().unwrap().reason)
    }

    /// The texts of the `error` events.
    pub fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|m| m.action() == "error")
            .map(|m| m.decode::<repod::ErrorMessage>().unwrap().message)
            .collect()
    }
}

/// Pumps `client` into `listener` until `done` holds; panics after `DEADLINE`.
pub fn pump_until(client: &mut Client, listener: &mut Recorder, done: impl Fn(&Recorder) -> bool) {
    let start = Instant::now();
    loop {
        client.pump(listener);
        if done(listener) {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out; events so far: {:?}",
            listener.actions()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Pumps for a short while more, to catch events that should not come.
pub fn pump_for(client: &mut Client, listener: &mut Recorder, time: Duration) {
    let start = Instant::now();
    while start.elapsed() < time {
        client.pump(listener);
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A port on 127.0.0.1 nobody listens on.
pub fn dead_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

pub const CODECS: [CodecKind; 2] = [CodecKind::Bincode, CodecKind::MsgPack];
