//! The request/reply tests' protocol and server: immediate, failing, deferred, dropped and
//! never-answered requests, beside plain messages.
#![allow(dead_code)]

use std::collections::HashMap;

use repod::server::ReplyTo;
use repod::{Context, RawMessage};
use serde::{Deserialize, Serialize};

/// Answered at once with the rooms of a mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("list_rooms")]
#[reply(RoomList)]
pub struct ListRooms {
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomList {
    pub rooms: Vec<String>,
}

/// Answered with `Err("no such room: …")` unless the room is `"lobby"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("join_room")]
#[reply(Joined)]
pub struct JoinRoom {
    pub room: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Joined {
    pub room: String,
    pub seat: u32,
}

/// Deferred: answered once `players` requests wait, the latest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("find_match")]
#[reply(MatchFound)]
pub struct FindMatch {
    pub players: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchFound {
    pub position: u32,
}

/// Its handler drops the reply token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("forget")]
#[reply(u32)]
pub struct Forget;

/// Its handler keeps the token until `release` (or forever): for timeouts and disconnects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("stall")]
#[reply(u64)]
pub struct Stall {
    pub n: u64,
}

/// Answers every stalled request, from a thread of its own, with its `n`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("release")]
pub struct Release;

/// Answers with the same number: the request of the many-in-flight tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("double")]
#[reply(u64)]
pub struct Double {
    pub n: u64,
}

/// A plain message; the server answers with `Said`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub struct Chat {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("said")]
pub struct Said {
    pub text: String,
}

/// A request type no channel handles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("nobody")]
#[reply(String)]
pub struct Nobody;

/// Same action as `ListRooms`, another reply type: the reply does not decode into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("list_rooms")]
#[reply(u8)]
pub struct ListRoomsAsNumber {
    pub mode: String,
}

/// The server state: deferred tokens.
#[derive(Default)]
pub struct Lobby {
    pub matching: Vec<(u32, ReplyTo<FindMatch>)>,
    pub stalled: HashMap<u64, ReplyTo<Stall>>,
}

#[derive(Default)]
pub struct Player {
    pub seat: u32,
}

#[repod::channel(state = Lobby)]
impl Player {
    #[action]
    fn list_rooms(&mut self, req: ListRooms) -> RoomList {
        RoomList {
            rooms: vec![format!("{}-1", req.mode), format!("{}-2", req.mode)],
        }
    }

    #[action]
    fn join_room(&mut self, req: JoinRoom) -> Result<Joined, String> {
        if req.room != "lobby" {
            return Err(format!("no such room: {}", req.room));
        }
        self.seat += 1;
        Ok(Joined {
            room: req.room,
            seat: self.seat,
        })
    }

    #[action]
    fn find_match(
        &mut self,
        ctx: &mut Context<'_, Self>,
        req: FindMatch,
        reply: ReplyTo<FindMatch>,
    ) {
        let lobby = ctx.state_mut();
        let position = lobby.matching.len() as u32 + 1;
        lobby.matching.push((position, reply));
        if lobby.matching.len() as u32 >= req.players {
            let waiting: Vec<_> = ctx.state_mut().matching.drain(..).rev().collect();
            for (position, reply) in waiting {
                let _ = ctx.reply(reply, &MatchFound { position });
            }
        }
    }

    #[action]
    fn forget(&mut self, _: Forget, reply: ReplyTo<Forget>) {
        drop(reply);
    }

    #[action]
    fn stall(&mut self, ctx: &mut Context<'_, Self>, req: Stall, reply: ReplyTo<Stall>) {
        ctx.state_mut().stalled.insert(req.n, reply);
    }

    #[action]
    fn release(&mut self, ctx: &mut Context<'_, Self>, _: Release) {
        let stalled: Vec<(u64, ReplyTo<Stall>)> = ctx.state_mut().stalled.drain().collect();
        // Answered from another thread, through the tokens alone.
        std::thread::spawn(move || {
            for (n, reply) in stalled {
                let _ = reply.send(&n);
            }
        });
    }

    #[action]
    fn double(&mut self, req: Double) -> u64 {
        req.n * 2
    }

    #[action]
    fn chat(&mut self, ctx: &mut Context<'_, Self>, msg: Chat) {
        let _ = ctx.send(&Said { text: msg.text });
    }

    #[action("poke")]
    fn poke(&mut self) {}

    fn network_received(&mut self, ctx: &mut Context<'_, Self>, msg: RawMessage) {
        // Answers requests for "echo_raw" with their "text" (MessagePack only).
        if let (Some(rid), "echo_raw") = (msg.request_id(), msg.action()) {
            let text = msg
                .get("text")
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = ctx.reply_raw(rid, Ok(&text));
        }
    }
}
