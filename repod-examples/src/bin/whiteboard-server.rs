//! A shared whiteboard for browsers, Rust bots and Python programs, all in one room.
//!
//! ```text
//! cargo run -p repod-examples --bin whiteboard-server
//! ```
//!
//! and open the printed `http://` address in a few browser windows. The server answers on
//! three ports: the page and its scripts over HTTP (everything is built into the binary:
//! nothing else to install), repod over WebSocket for the page, and repod over TCP for the
//! `whiteboard-bots` and for Python repod programs. It always speaks MessagePack.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use repod::server::Server;
use repod::{CloseReason, CodecKind, Context};
use repod_examples::whiteboard::{
    check_stroke, color_of, player_name, Drawn, History, Join, Joined, Left, Player, Stroke,
    Welcome, BOARD,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The shared whiteboard of the repod examples: a web page and its game server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the TCP listener (Rust bots, Python repod programs).
    #[arg(long, default_value = "127.0.0.1:5071")]
    addr: String,
    /// Address of the WebSocket listener (the page).
    #[arg(long, default_value = "127.0.0.1:5072")]
    ws: String,
    /// Address of the web server that serves the page.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: String,
}

/// The board, shared by every channel.
#[derive(Default)]
struct Board {
    history: History,
}

/// One connection; a player once it has joined.
#[derive(Default)]
struct Painter {
    me: Option<Player>,
}

#[repod::channel(state = Board)]
impl Painter {
    #[action]
    fn join(&mut self, ctx: &mut Context<'_, Self>, join: Join) -> Result<Welcome, &'static str> {
        if self.me.is_some() {
            return Err("already on the board");
        }
        let id = ctx.id().get();
        let me = Player {
            id,
            name: player_name(&join.name, id),
            color: color_of(id).to_owned(),
        };
        ctx.join(BOARD);
        ctx.send_to_others_in_group(BOARD, &Joined { player: me.clone() });
        // The others (a handler's own channel is not among `group_channels`), then me.
        let mut players: Vec<Player> = ctx
            .group_channels(BOARD)
            .filter_map(|peer| peer.channel.me.clone())
            .collect();
        players.push(me.clone());
        players.sort_by_key(|p| p.id);
        self.me = Some(me.clone());
        Ok(Welcome {
            you: me,
            players,
            strokes: ctx.state().history.strokes().cloned().collect(),
        })
    }

    #[action]
    fn stroke(&mut self, ctx: &mut Context<'_, Self>, stroke: Stroke) -> Result<(), String> {
        let me = self.me.as_ref().ok_or("join the board first")?;
        check_stroke(&stroke)?;
        let drawn = Drawn {
            id: me.id,
            color: me.color.clone(),
            points: stroke.points,
        };
        ctx.send_to_others_in_group(BOARD, &drawn);
        ctx.state_mut().history.push(drawn);
        Ok(())
    }

    fn on_close(&mut self, ctx: &mut Context<'_, Self>, _reason: &CloseReason) {
        if let Some(me) = &self.me {
            ctx.send_to_others_in_group(BOARD, &Left { id: me.id });
        }
    }
}

const PAGE: &str = include_str!("../../web/whiteboard.html");
const PAGE_SCRIPT: &str = include_str!("../../web/whiteboard.js");
const CLIENT: &str = include_str!("../../../clients/js/src/repod.js");
const MSGPACK: &str = include_str!("../../../clients/js/vendor/msgpack.min.js");
const MSGPACK_MODULE: &str = include_str!("../../../clients/js/vendor/msgpack.js");

/// The body and content type served for `path`, if any. The page learns the WebSocket port
/// from its `data-ws-port` attribute.
fn file(path: &str, ws_port: u16) -> Option<(String, &'static str)> {
    const JS: &str = "text/javascript; charset=utf-8";
    Some(match path {
        "/" | "/index.html" => (
            PAGE.replace("{{WS_PORT}}", &ws_port.to_string()),
            "text/html; charset=utf-8",
        ),
        "/whiteboard.js" => (PAGE_SCRIPT.to_owned(), JS),
        "/repod.js" => (CLIENT.to_owned(), JS),
        "/msgpack.min.js" => (MSGPACK.to_owned(), JS),
        "/msgpack.js" => (MSGPACK_MODULE.to_owned(), JS),
        _ => return None,
    })
}

/// Serves the page: a minimal HTTP/1.1 responder for `GET` of the files above, one request
/// per connection.
async fn serve_http(listener: tokio::net::TcpListener, ws_port: u16) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), async {
                let mut head = Vec::with_capacity(1024);
                let mut buf = [0u8; 1024];
                // Read the request head (bounded); the body, if any, is not needed.
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 || head.len() + n > 16 * 1024 {
                        return Ok(());
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let line = String::from_utf8_lossy(&head);
                let mut words = line.split_whitespace();
                let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let path = target.split(['?', '#']).next().unwrap_or("");
                let (status, body, kind) = match (method, file(path, ws_port)) {
                    ("GET" | "HEAD", Some((body, kind))) => ("200 OK", body, kind),
                    ("GET" | "HEAD", None) => ("404 Not Found", "not found\n".into(), "text/plain"),
                    _ => ("405 Method Not Allowed", "GET only\n".into(), "text/plain"),
                };
                let header = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n\
                     cache-control: no-store\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                stream.write_all(header.as_bytes()).await?;
                if method != "HEAD" {
                    stream.write_all(body.as_bytes()).await?;
                }
                stream.shutdown().await
            })
            .await;
        });
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    repod_examples::init_tracing();
    let http = std::net::TcpListener::bind(&args.http)?;
    http.set_nonblocking(true)?;
    let http_addr = http.local_addr()?;
    Server::<Painter>::builder()
        .codec(CodecKind::MsgPack)
        .listen_ws(&args.ws)
        .launch_with(args.addr.as_str(), move |handle| {
            let ws: SocketAddr = handle.ws_addr().expect("a WebSocket listener");
            println!("listening on {}", handle.local_addr());
            println!("websocket on ws://{ws}");
            println!("open http://{http_addr}/ in a browser");
            use std::io::Write;
            let _ = std::io::stdout().flush();
            let http = tokio::net::TcpListener::from_std(http).expect("the web listener");
            tokio::spawn(serve_http(http, ws.port()));
        })?;
    println!("stopped");
    Ok(())
}
