//! The runtime of [repod](https://docs.rs/repod): frames, codecs, dispatch, server and client.
//!
//! Applications depend on the `repod` crate, which re-exports everything here together with the
//! `#[repod::channel]`, `#[repod::listener]` and `#[derive(repod::Message)]` macros.
//!
//! Layers, from the bottom up, each depending only on the ones below it ([`error`] holds the
//! error types of all of them and depends on none):
//!
//! * [`frame`]: 4-byte big-endian length-prefixed frames with a maximum length.
//! * [`message`]: the [`Message`] trait binding a type to its action name, and the built-in
//!   events.
//! * [`codec`]: [`Bincode`] and [`MsgPack`], turning a message into a frame's payload and a
//!   payload into a [`RawMessage`] (its action name read, its body not decoded yet).
//! * [`dispatch`]: what the dispatchers of both sides share: [`DispatchContext`] and
//!   [`HandlerResult`].
//! * [`connection`]: the connection path of both sides: the bounded [`Outbox`](connection::Outbox),
//!   the transport (a stream of frames in, a sink of frames out; TCP today) and the writer with
//!   its close, flush and reset rules.
//! * [`server`] and [`client`], side by side, neither using the other: the [`Channel`] trait
//!   and the [`Server`]; the [`Listener`] trait, the game-loop [`Client`] and the
//!   [`AsyncClient`].

#![deny(missing_docs)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod client;
pub mod codec;
pub mod connection;
pub mod dispatch;
pub mod error;
pub mod frame;
pub mod message;
#[cfg(feature = "metrics")]
pub mod metrics;
mod observe;
pub mod server;
pub mod session;
#[cfg(feature = "tls")]
pub mod tls;

pub use crate::client::{
    AsyncClient, Client, ClientBuilder, ClientContext, ClientSender, ConnectError, Listener, Ticket,
};
pub use crate::codec::{Bincode, Codec, CodecKind, MsgPack, RawMessage};
pub use crate::dispatch::{DispatchContext, HandlerResult};
pub use crate::error::{
    ChannelError, CloseReason, CodecError, FrameError, RequestError, SendError,
};
pub use crate::frame::{Frame, FrameCodec, FrameConfig, DEFAULT_MAX_FRAME_LEN};
pub use crate::message::{
    Connected, Disconnected, ErrorMessage, Heartbeat, HeartbeatAck, Message, Request, SocketConnect,
};
pub use crate::server::{BackgroundServer, Server, ServerBuilder, ServerError, ServerHandle};
pub use crate::server::{
    Channel, ChannelId, Context, Hub, HubConfig, Peer, PeerInfo, ReplyTo, ServerContext,
};
pub use crate::session::{Backoff, SessionStarted};
