//! The runtime of [repod](https://docs.rs/repod): frames, codecs, dispatch, server and client.
//!
//! Applications depend on the `repod` crate, which re-exports everything here together with the
//! `#[repod::channel]`, `#[repod::listener]` and `#[derive(repod::Message)]` macros.
//!
//! Layers, each depending only on the ones below it:
//!
//! * [`frame`]: 4-byte big-endian length-prefixed frames with a maximum length.
//! * [`codec`]: [`Bincode`] and [`MsgPack`] payloads carrying an action name and a body.
//! * [`message`]: typed [`Message`]s and undecoded [`RawMessage`]s.
//! * [`dispatch`]: the [`Channel`] and [`Listener`] traits the macros implement.
//! * [`server`] and [`client`]: the networking.

#![deny(missing_docs)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod client;
pub mod codec;
pub mod dispatch;
pub mod error;
pub mod frame;
pub mod message;
pub mod server;

pub use crate::client::{
    AsyncClient, Client, ClientBuilder, ClientContext, ClientSender, ConnectError,
};
pub use crate::codec::{Bincode, Codec, CodecKind, MsgPack};
pub use crate::dispatch::{Channel, DispatchContext, HandlerResult, Listener};
pub use crate::error::{ChannelError, CloseReason, CodecError, FrameError, SendError};
pub use crate::frame::{Frame, FrameCodec, FrameConfig, DEFAULT_MAX_FRAME_LEN};
pub use crate::message::{
    Connected, Disconnected, ErrorMessage, Message, RawMessage, SocketConnect,
};
pub use crate::server::{BackgroundServer, Server, ServerBuilder, ServerError, ServerHandle};
pub use crate::server::{ChannelId, Context, Hub, HubConfig, Peer, PeerInfo, ServerContext};
