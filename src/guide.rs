//! The repod user guide.
//!
//! The chapters are the Markdown files of the repository's `docs/` folder; every Rust snippet
//! in them is compiled and run as a test, so the guide cannot drift from the code.
//!
//! 1. [Messages and handlers](handlers): actions, message types, `#[action]`, validation,
//!    the fallback handler, lifecycle hooks.
//! 2. [The server](server): running, channels and state, the handler context, ticks, handles,
//!    shutdown.
//! 3. [Rooms](rooms): groups of channels, group sends encoded once, lobby → match,
//!    spectators, a tick per room.
//! 4. [The client](client): listeners, `pump()` in a game loop, built-in events, the async
//!    client.
//! 5. [Request and reply](request_reply): typed requests, handlers that answer by returning,
//!    deferred replies, deadlines, the async and the game-loop client.
//! 6. [Action reference](actions): the built-in actions and custom ones.
//! 7. [Best practices](best_practices): names, one shared protocol module, versioning, small
//!    messages.
//! 8. [A complete example](complete_example): the chat server and client in one piece.
//! 9. [The wire format](wire_format): frames and both codecs, byte by byte.
//! 10. [Interoperating with Python repod](python_interop).
//! 11. [Limits and tuning](limits).
//! 12. [Performance](performance): the benchmarks against a plain tokio baseline.
//! 13. [Robustness](robustness): fuzzing and the soak test.
//! 14. [Going online](online): authentication, TLS, idle timeouts and heartbeats, rate limits.
//! 15. [Reconnecting and resuming](reconnect): backoff, resumable sessions, what they
//!     guarantee, session tokens.
#![cfg_attr(
    feature = "websocket",
    doc = "16. [Browser players](browser): WebSocket next to TCP, Rust clients over `ws://`."
)]
#![cfg_attr(
    not(feature = "websocket"),
    doc = "16. Browser players (`docs/browser.md`, built with the `websocket` feature): WebSocket next to TCP."
)]
//! 17. [Operating](operating): metrics, logs, limits, what to alert on.
//! 18. [Scaling out](scaling): several nodes sharing rooms, broadcasts and direct sends over
//!     Redis (the `cluster` feature): how, ordering, failures, what is lost.
//!
//! # How the runtime is layered
//!
//! The runtime (`repod-core`, re-exported here) is built in layers, each using only the ones
//! before it in this list:
//!
//! 1. [`frame`](crate::frame): the 4-byte length prefix and its limit.
//! 2. [`message`](crate::message): the [`Message`](crate::Message) trait and the built-in events.
//! 3. [`codec`](crate::codec): bincode and MessagePack payloads, and the
//!    [`RawMessage`](crate::RawMessage) a codec reads (action name first, body on demand).
//! 4. [`dispatch`](crate::dispatch): what both sides' dispatchers share (reporting a failed
//!    handler or a body that does not decode).
//! 5. [`connection`](crate::connection): one connection's path, the same for server and client:
//!    the bounded outbound queue, the transport (frames in, frames out: TCP, or WebSocket with
//!    the `websocket` feature), and the writer that flushes, closes gracefully, or resets.
//! 6. [`server`](crate::server) (with the [`Channel`](crate::Channel) trait) and
//!    [`client`](crate::client) (with the [`Listener`](crate::Listener) trait), side by side:
//!    neither uses the other.

#[doc = include_str!("../docs/handlers.md")]
pub mod handlers {}

#[doc = include_str!("../docs/server.md")]
pub mod server {}

#[doc = include_str!("../docs/rooms.md")]
pub mod rooms {}

#[doc = include_str!("../docs/client.md")]
pub mod client {}

#[doc = include_str!("../docs/request-reply.md")]
pub mod request_reply {}

#[doc = include_str!("../docs/actions.md")]
pub mod actions {}

#[doc = include_str!("../docs/best-practices.md")]
pub mod best_practices {}

#[doc = include_str!("../docs/complete-example.md")]
pub mod complete_example {}

#[doc = include_str!("../docs/wire-format.md")]
pub mod wire_format {}

#[doc = include_str!("../docs/python-interop.md")]
pub mod python_interop {}

#[doc = include_str!("../docs/limits.md")]
pub mod limits {}

#[doc = include_str!("../docs/performance.md")]
pub mod performance {}

#[doc = include_str!("../docs/robustness.md")]
pub mod robustness {}

#[doc = include_str!("../docs/online.md")]
pub mod online {}

#[doc = include_str!("../docs/reconnect.md")]
pub mod reconnect {}
#[cfg(feature = "websocket")]
#[doc = include_str!("../docs/browser.md")]
pub mod browser {}
#[doc = include_str!("../docs/operating.md")]
pub mod operating {}
#[doc = include_str!("../docs/scaling.md")]
pub mod scaling {}
