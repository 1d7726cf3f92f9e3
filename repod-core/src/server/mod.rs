//! The server: one channel per connection, one dispatch loop, broadcast, flow control.

mod hub;
mod outbox;

pub use self::hub::{ChannelId, Context, Hub, HubConfig, Peer, PeerInfo, ServerContext};
pub use self::outbox::{Outbox, OutboxReceiver, PushError};
