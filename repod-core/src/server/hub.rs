//! The sans-I/O heart of the server: every channel, the shared state, and dispatch.
//!
//! A [`Hub`] owns the channels and runs their handlers; it never touches a socket. The server
//! feeds it decoded messages and drains each connection's [`Outbox`]; tests drive it directly.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use std::future::Future;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::auth::Identity;
use super::channel::Channel;
use super::cluster::Link;
use super::groups::Groups;
use super::reply::{QueuedReply, ReplyRoute};
use super::session::{Resume, Session, Sessions};
use super::{Command, ResumeFn, ServerHandle};
use crate::codec::{Codec, CodecKind, RawMessage};
use crate::connection::{Outbox, PushError};
use crate::dispatch::DispatchContext;
use crate::error::{ChannelError, CloseReason, CodecError, SendError};
use crate::frame::Frame;
use crate::message::{Connected, ErrorMessage, Message};
use crate::session::{SessionAck, SessionReply, Token};

/// Identifies one connection for the lifetime of a server; never reused.
///
/// An id is a plain number (1 for the first connection, then counting up), so it can travel
/// in messages: it serializes as that number with every codec, and [`ChannelId::new`]
/// rebuilds it. That lets a client name another player (to whisper to, to kick, to target).
/// An id that comes from a peer is only a claim: the channel may have closed meanwhile, or may
/// never have existed, so look it up ([`Context::channel`], or the `Err` of
/// [`Context::send_to`]) before trusting it, and check that this peer may act on it.
///
/// ```
/// use repod_core::ChannelId;
///
/// let id = ChannelId::new(7);
/// assert_eq!(id.get(), 7);
/// assert_eq!(id.to_string(), "#7");
/// ```
///
/// A server that is one node of a cluster (see `ServerBuilder::cluster`, with the cargo feature
/// `cluster`) puts its node number above the low 32 bits, so ids stay unique across nodes:
/// the third connection of node 2 is `2 << 32 | 3`. Such ids still fit in 53 bits (a node
/// number is below 2^21), so they survive a trip through a JSON number or a Python float, and
/// they display with the node number first:
///
/// ```
/// use repod_core::ChannelId;
///
/// let id = ChannelId::new(2 << 32 | 3);
/// assert_eq!(id.node(), 2);
/// assert_eq!(id.to_string(), "#2:3");
/// assert_eq!(ChannelId::new(3).node(), 0);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ChannelId(pub(crate) u64);

impl ChannelId {
    /// The id with this number, as [`get`](ChannelId::get) returns it (for instance read
    /// from a message). Nothing checks here that such a channel exists.
    pub const fn new(id: u64) -> Self {
        ChannelId(id)
    }

    /// The id as a number (1 for the first connection, then counting up).
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The number of the cluster node that holds this channel: the bits above the low 32;
    /// 0 on a server that is not part of a cluster.
    pub const fn node(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The id without its node number: the connection's number on its own node.
    const fn local(self) -> u64 {
        self.0 & 0xffff_ffff
    }
}

impl From<ChannelId> for u64 {
    fn from(id: ChannelId) -> u64 {
        id.0
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.node() {
            0 => write!(f, "#{}", self.0),
            node => write!(f, "#{node}:{}", self.local()),
        }
    }
}

/// A connection's id and peer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    /// The channel's id.
    pub id: ChannelId,
    /// The peer's address.
    pub addr: SocketAddr,
}

/// Another channel, seen from a handler: its id, address and state.
#[derive(Debug)]
pub struct Peer<'a, Ch> {
    /// The channel's id.
    pub id: ChannelId,
    /// The peer's address.
    pub addr: SocketAddr,
    /// The channel's value.
    pub channel: &'a Ch,
}

type Factory<Ch> = Box<dyn FnMut(&PeerInfo) -> Ch + Send>;
type ConnectHook<S> = Box<dyn FnMut(&mut S, &PeerInfo) + Send>;
type DisconnectHook<S> = Box<dyn FnMut(&mut S, &PeerInfo, &CloseReason) + Send>;

struct Slot<Ch> {
    info: PeerInfo,
    /// The connection the channel speaks through: its own id, another one after a resume, or
    /// none (0) while its peer is away.
    conn: ChannelId,
    /// The channel's resumable session, if its peer asked for one.
    session: Option<Box<Session>>,
    /// What authentication proved about the peer, if the server authenticates.
    identity: Option<Identity>,
    /// The round-trip time last reported by the peer's heartbeat.
    rtt: Option<Duration>,
    /// `None` while one of its handlers runs.
    channel: Option<Ch>,
    outbox: Outbox,
    close: Option<CloseReason>,
}

/// Channels and state, borrowed by contexts.
pub(crate) struct Core<Ch: Channel> {
    state: Ch::State,
    slots: Vec<Option<Slot<Ch>>>,
    free: Vec<usize>,
    index: HashMap<ChannelId, usize>,
    codec: CodecKind,
    max_frame_len: usize,
    /// Slots marked for closing, processed after the current handler returns.
    closing: Vec<usize>,
    /// Named groups of slots.
    groups: Groups,
    /// The handle given to handlers; its commands come back to this hub.
    handle: ServerHandle<Ch>,
    /// Where reply tokens send their replies.
    replies: Arc<ReplyRoute>,
    /// The last request answered (or given a token) on the loop: lets a fallback's caller
    /// know whether the fallback answered.
    answered: Option<(ChannelId, u64)>,
    /// Resumable sessions, when the server resumes them.
    sessions: Option<Sessions>,
    /// Counters of what is sent, by action.
    sent: crate::observe::Sent,
    /// The other nodes of a cluster; inert on a server that is not a cluster node.
    cluster: Link,
}

/// Marks a slot for closing (once; the first reason wins).
fn mark_close<Ch>(
    slots: &mut [Option<Slot<Ch>>],
    closing: &mut Vec<usize>,
    slot: usize,
    reason: CloseReason,
) {
    if let Some(Some(s)) = slots.get_mut(slot) {
        if s.close.is_none() {
            s.close = Some(reason);
            closing.push(slot);
        }
    }
}

/// Queues a frame to one slot; a full queue marks the slot as a slow consumer.
fn push<Ch>(
    slots: &mut [Option<Slot<Ch>>],
    closing: &mut Vec<usize>,
    slot: usize,
    frame: Bytes,
) -> Result<(), SendError> {
    let Some(Some(s)) = slots.get_mut(slot) else {
        return Err(SendError::Closed);
    };
    if matches!(&s.close, Some(r) if !r.flushes()) {
        return Err(SendError::Closed);
    }
    if let Some(session) = s.session.as_mut() {
        session.record(&frame);
        if session.is_away() {
            // Kept for the peer's return.
            return Ok(());
        }
    }
    match s.outbox.push(frame) {
        Ok(()) => Ok(()),
        Err(PushError::Full) => {
            tracing::warn!(target: "repod::server", id = s.info.id.0, peer = %s.info.addr, "outbound queue full: disconnecting slow consumer");
            crate::observe::slow_consumer();
            mark_close(slots, closing, slot, CloseReason::SlowConsumer);
            Err(SendError::QueueFull)
        }
        Err(PushError::Closed) => Err(SendError::Closed),
    }
}

impl<Ch: Channel> Core<Ch> {
    /// Encodes a message for a send to many channels, which reports a failure by sending to
    /// none: the error is logged.
    fn encode<M: Message + ?Sized>(&self, msg: &M) -> Option<Bytes> {
        match self.codec.encode(msg, self.max_frame_len) {
            Ok(frame) => Some(frame),
            Err(error) => {
                tracing::error!(target: "repod::server", action = M::ACTION, %error, "cannot encode message: sent to nobody");
                None
            }
        }
    }

    /// Encodes a message for a send to one channel, which returns the error.
    fn encode_one<M: Message + ?Sized>(&self, msg: &M) -> Result<Bytes, SendError> {
        Ok(self.codec.encode(msg, self.max_frame_len)?)
    }

    fn encode_frame<M: Message + ?Sized>(&self, msg: &M) -> Result<Frame, CodecError> {
        self.codec
            .encode(msg, self.max_frame_len)
            .map(Frame::new_unchecked)
    }

    fn mark_close(&mut self, slot: usize, reason: CloseReason) {
        mark_close(&mut self.slots, &mut self.closing, slot, reason);
    }

    /// Encodes a reply to request `rid` and queues it to a channel.
    fn reply<T: Serialize + ?Sized>(
        &mut self,
        id: ChannelId,
        rid: u64,
        outcome: Result<&T, &str>,
    ) -> Result<(), SendError> {
        self.answered = Some((id, rid));
        let frame = ReplyRoute::encode(self.codec, self.max_frame_len, rid, outcome)?;
        self.send_frame_to(id, frame)
    }

    /// Queues a frame to one slot; a full queue marks the slot as a slow consumer.
    fn push(&mut self, slot: usize, frame: Bytes) -> Result<(), SendError> {
        push(&mut self.slots, &mut self.closing, slot, frame)
    }

    /// Like [`push`](Core::push), counting the frame in the metrics when it is queued.
    fn push_counted(&mut self, slot: usize, frame: Bytes) -> Result<(), SendError> {
        let tally = self.sent.tally(self.codec, &frame);
        let pushed = self.push(slot, frame);
        if pushed.is_ok() {
            self.sent.add(tally, 1);
        }
        pushed
    }

    fn slot_of(&self, id: ChannelId) -> Option<usize> {
        self.index.get(&id).copied()
    }

    /// Queues a frame to a channel of this node, or of another node of the cluster.
    fn send_frame_to(&mut self, id: ChannelId, frame: Bytes) -> Result<(), SendError> {
        match self.slot_of(id) {
            Some(slot) => self.push_counted(slot, frame),
            None => match self.cluster.publish_to(id, &frame) {
                Some(sent) => sent,
                None => Err(SendError::NoSuchChannel(id.0)),
            },
        }
    }

    /// Queues a frame to a channel of this node only.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    fn send_local(&mut self, id: ChannelId, frame: Bytes) -> Result<(), SendError> {
        match self.slot_of(id) {
            Some(slot) => self.push_counted(slot, frame),
            None => Err(SendError::NoSuchChannel(id.0)),
        }
    }

    fn send_frame_to_many(
        &mut self,
        ids: impl IntoIterator<Item = ChannelId>,
        frame: &Bytes,
    ) -> usize {
        let mut sent = 0;
        let mut remote = Vec::new();
        for id in ids {
            match self.slot_of(id) {
                Some(slot) if self.push(slot, frame.clone()).is_ok() => sent += 1,
                Some(_) => {}
                None if self.cluster.is_remote(id) => remote.push(id),
                None => {}
            }
        }
        if !remote.is_empty() {
            sent += self.cluster.publish_to_many(remote, frame);
        }
        sent
    }

    /// Queues a frame to every channel (but the slot `except`) of this node, and publishes it
    /// to the other nodes of the cluster.
    fn broadcast_frame(&mut self, frame: &Bytes, except: Option<usize>) -> usize {
        let sent = self.broadcast_local(frame, except);
        let except = except.and_then(|slot| self.slots[slot].as_ref().map(|s| s.info.id));
        self.cluster.publish_all(frame, except);
        sent
    }

    fn broadcast_local(&mut self, frame: &Bytes, except: Option<usize>) -> usize {
        let mut sent = 0;
        for slot in 0..self.slots.len() {
            if Some(slot) != except
                && self.slots[slot].is_some()
                && self.push(slot, frame.clone()).is_ok()
            {
                sent += 1;
            }
        }
        self.sent.frame(self.codec, frame, sent);
        sent
    }

    /// Queues a frame to every member of a group but `except`: one push per member of this
    /// node, and one message to the other nodes of the cluster.
    fn group_frame(&mut self, name: &str, frame: &Bytes, except: Option<ChannelId>) -> usize {
        let except_slot = except.and_then(|id| self.slot_of(id));
        let sent = self.group_local(name, frame, except_slot);
        self.cluster.publish_group(name, frame, except);
        sent
    }

    /// Queues a frame to every member of a group on this node but `except`.
    fn group_local(&mut self, name: &str, frame: &Bytes, except: Option<usize>) -> usize {
        let Core {
            slots,
            closing,
            groups,
            ..
        } = self;
        let mut sent = 0;
        for &slot in groups.members(name) {
            if Some(slot) != except && push(slots, closing, slot, frame.clone()).is_ok() {
                sent += 1;
            }
        }
        self.sent.frame(self.codec, frame, sent);
        sent
    }

    /// Adds a slot to a group, and tells the cluster.
    fn join_slot(&mut self, slot: usize, name: &str) -> bool {
        let joined = self.groups.join(slot, name);
        if joined {
            if let Some(s) = self.slots[slot].as_ref() {
                self.cluster.joined(s.info.id, name);
            }
        }
        joined
    }

    /// Removes a slot from a group, and tells the cluster.
    fn leave_slot(&mut self, slot: usize, name: &str) -> bool {
        let left = self.groups.leave(slot, name);
        if left {
            if let Some(s) = self.slots[slot].as_ref() {
                self.cluster.left(s.info.id, name);
            }
        }
        left
    }

    /// Removes a slot from all its groups, and tells the cluster.
    fn leave_all_slot(&mut self, slot: usize) -> usize {
        let left = self.groups.leave_all(slot);
        if left > 0 {
            if let Some(s) = self.slots[slot].as_ref() {
                self.cluster.left_all(s.info.id);
            }
        }
        left
    }

    fn join(&mut self, id: ChannelId, name: &str) -> bool {
        match self.slot_of(id) {
            Some(slot) => self.join_slot(slot, name),
            None => false,
        }
    }

    fn leave(&mut self, id: ChannelId, name: &str) -> bool {
        match self.slot_of(id) {
            Some(slot) => self.leave_slot(slot, name),
            None => false,
        }
    }

    fn in_group(&self, id: ChannelId, name: &str) -> bool {
        match self.slot_of(id) {
            Some(slot) => self.groups.contains(slot, name),
            None => self.cluster.remote_contains(id, name),
        }
    }

    fn groups_of(&self, id: ChannelId) -> impl Iterator<Item = &str> + '_ {
        let slot = self.slot_of(id);
        let remote = slot.is_none().then(|| self.cluster.remote_groups_of(id));
        slot.into_iter()
            .flat_map(|slot| self.groups.of_slot(slot))
            .chain(remote.into_iter().flatten())
    }

    fn group_ids(&self, name: &str) -> impl Iterator<Item = ChannelId> + '_ {
        self.groups
            .members(name)
            .iter()
            .filter_map(|&slot| self.slots[slot].as_ref().map(|s| s.info.id))
            .chain(self.cluster.remote_members(name))
    }

    fn group_len(&self, name: &str) -> usize {
        self.groups.members(name).len() + self.cluster.remote_len(name)
    }

    fn group_count(&self) -> usize {
        let remote_only = self
            .cluster
            .remote_groups()
            .filter(|(name, _)| self.groups.members(name).is_empty())
            .count();
        self.groups.len() + remote_only
    }

    fn group_sizes(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        let remote_only = self
            .cluster
            .remote_groups()
            .filter(|(name, _)| self.groups.members(name).is_empty());
        self.groups
            .iter()
            .map(|(name, len)| (name, len + self.cluster.remote_len(name)))
            .chain(remote_only)
    }

    /// Every membership of this node's channels, for the cluster's snapshot.
    #[cfg(feature = "cluster")]
    fn publish_snapshot(&mut self) {
        let Core {
            slots,
            groups,
            cluster,
            ..
        } = self;
        let groups: &Groups = groups;
        let entries = slots.iter().enumerate().flat_map(|(slot, s)| {
            let id = s.as_ref().map(|s| s.info.id);
            id.into_iter()
                .flat_map(move |id| groups.of_slot(slot).map(move |name| (id, name)))
        });
        cluster.publish_snapshot(entries);
    }

    fn group_peers(&self, name: &str) -> impl Iterator<Item = Peer<'_, Ch>> + '_ {
        self.groups
            .members(name)
            .iter()
            .filter_map(|&slot| peer_of(self.slots[slot].as_ref()?))
    }

    fn peers(&self) -> impl Iterator<Item = Peer<'_, Ch>> + '_ {
        self.slots.iter().flatten().filter_map(peer_of)
    }

    fn channel(&self, id: ChannelId) -> Option<&Ch> {
        let slot = self.slot_of(id)?;
        self.slots[slot].as_ref()?.channel.as_ref()
    }

    fn channel_mut(&mut self, id: ChannelId) -> Option<&mut Ch> {
        let slot = self.slot_of(id)?;
        self.slots[slot].as_mut()?.channel.as_mut()
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}

/// A slot as seen by handlers: `None` while closing or while its own handler runs.
fn peer_of<Ch>(s: &Slot<Ch>) -> Option<Peer<'_, Ch>> {
    if s.close.is_some() {
        return None;
    }
    s.channel.as_ref().map(|channel| Peer {
        id: s.info.id,
        addr: s.info.addr,
        channel,
    })
}

macro_rules! shared_context_methods {
    () => {
        /// Whether the peer of this channel is away: its connection dropped, and its session
        /// is kept for it to resume (see [`ServerBuilder::resume`](crate::server::ServerBuilder::resume)).
        /// Messages sent to it meanwhile wait for its return. `false` for a channel that is not
        /// connected at all.
        pub fn is_away(&self, id: ChannelId) -> bool {
            self.core
                .slot_of(id)
                .and_then(|slot| self.core.slots[slot].as_ref())
                .and_then(|s| s.session.as_ref())
                .is_some_and(|session| session.is_away())
        }

        /// The server-wide state (the fields of a Python `Server` subclass).
        pub fn state(&self) -> &Ch::State {
            &self.core.state
        }

        /// The server-wide state, mutably.
        pub fn state_mut(&mut self) -> &mut Ch::State {
            &mut self.core.state
        }

        /// Sends a message to one channel, without waiting.
        ///
        /// # Errors
        ///
        /// [`SendError::NoSuchChannel`] if no channel with this id is connected (an id read
        /// from a message may name a channel that is gone), [`SendError::Codec`] if the
        /// message cannot be encoded or is longer than the maximum frame length,
        /// [`SendError::QueueFull`] if the channel's outbound queue overflowed (which
        /// disconnects it as a slow consumer), [`SendError::Closed`] if it is being dropped.
        pub fn send_to<M: Message + ?Sized>(
            &mut self,
            id: ChannelId,
            msg: &M,
        ) -> Result<(), SendError> {
            let frame = self.core.encode_one(msg)?;
            self.core.send_frame_to(id, frame)
        }

        /// Sends a message to every connected channel, encoding it once. Returns how many
        /// channels it was queued to. Like Python repod's `server.send_to_all`.
        ///
        /// Like every send to many channels, it skips the channels that cannot take the
        /// message, and a message that cannot be encoded reaches nobody (0, logged at
        /// `ERROR`); [`encode`](Self::encode) first to get that error.
        pub fn send_to_all<M: Message + ?Sized>(&mut self, msg: &M) -> usize {
            match self.core.encode(msg) {
                Some(frame) => self.core.broadcast_frame(&frame, None),
                None => 0,
            }
        }

        /// Encodes a message once into a [`Frame`] with this server's codec, to queue it to
        /// any number of channels with the `send_frame_*` methods.
        ///
        /// Fails if the message cannot be encoded or exceeds the maximum frame length.
        pub fn encode<M: Message + ?Sized>(&self, msg: &M) -> Result<Frame, CodecError> {
            self.core.encode_frame(msg)
        }

        /// Queues an encoded frame to one channel.
        ///
        /// # Errors
        ///
        /// As [`send_to`](Self::send_to), but for encoding, which is already done.
        pub fn send_frame_to(&mut self, id: ChannelId, frame: &Frame) -> Result<(), SendError> {
            self.core.send_frame_to(id, frame.as_bytes().clone())
        }

        /// Queues an encoded frame to each of these channels (ids not connected are skipped);
        /// returns how many it was queued to. The frame is shared, not copied.
        ///
        /// To send to the members of a group, [`send_frame_to_group`](Self::send_frame_to_group)
        /// saves collecting their ids.
        pub fn send_frame_to_many(
            &mut self,
            ids: impl IntoIterator<Item = ChannelId>,
            frame: &Frame,
        ) -> usize {
            self.core.send_frame_to_many(ids, frame.as_bytes())
        }

        /// Queues an encoded frame to every channel; returns how many it was queued to.
        pub fn send_frame_to_all(&mut self, frame: &Frame) -> usize {
            self.core.broadcast_frame(frame.as_bytes(), None)
        }

        /// Queues an encoded frame to every member of a group; returns how many it was queued
        /// to (0 for a group that does not exist).
        pub fn send_frame_to_group(&mut self, name: &str, frame: &Frame) -> usize {
            self.core.group_frame(name, frame.as_bytes(), None)
        }

        /// Sends a message to every member of a group, encoding it once. Returns how many
        /// channels it was queued to (0 for a group that does not exist). Costs one queue push
        /// per member, whatever the number of other channels.
        pub fn send_to_group<M: Message + ?Sized>(&mut self, name: &str, msg: &M) -> usize {
            match self.core.encode(msg) {
                Some(frame) => self.core.group_frame(name, &frame, None),
                None => 0,
            }
        }

        /// Sends a message to every member of a group but one (say, the player whose move it
        /// reports), encoding it once. Returns how many channels it was queued to.
        pub fn send_to_group_except<M: Message + ?Sized>(
            &mut self,
            name: &str,
            except: ChannelId,
            msg: &M,
        ) -> usize {
            match self.core.encode(msg) {
                Some(frame) => self.core.group_frame(name, &frame, Some(except)),
                None => 0,
            }
        }

        /// Adds a channel to a group, creating the group if needed. Returns `false` if it was
        /// already a member or no such channel is connected.
        ///
        /// A channel can be in any number of groups, and leaves all of them when it closes,
        /// right after its `on_close` has run.
        pub fn add_to_group(&mut self, id: ChannelId, name: &str) -> bool {
            self.core.join(id, name)
        }

        /// Removes a channel from a group; a group left empty ceases to exist. Returns `false`
        /// if it was not a member.
        pub fn remove_from_group(&mut self, id: ChannelId, name: &str) -> bool {
            self.core.leave(id, name)
        }

        /// Whether a channel is a member of a group.
        pub fn is_in_group(&self, id: ChannelId, name: &str) -> bool {
            self.core.in_group(id, name)
        }

        /// The groups a channel is in, in the order it joined them.
        pub fn groups_of(&self, id: ChannelId) -> impl Iterator<Item = &str> + '_ {
            self.core.groups_of(id)
        }

        /// The ids of a group's members, in no particular order (none for a group that does
        /// not exist). In a handler, this includes the current channel.
        ///
        /// The iterator borrows the context: collect the ids first to send to them one by
        /// one, or use [`send_to_group`](Self::send_to_group).
        pub fn group_members(&self, name: &str) -> impl Iterator<Item = ChannelId> + '_ {
            self.core.group_ids(name)
        }

        /// A group's members as [`channels`](Self::channels) gives them: id, address and
        /// value, in no particular order. Like `channels`, it skips the current channel in a
        /// handler and channels that are closing.
        pub fn group_channels(&self, name: &str) -> impl Iterator<Item = Peer<'_, Ch>> + '_ {
            self.core.group_peers(name)
        }

        /// How many members a group has (0 for a group that does not exist).
        pub fn group_len(&self, name: &str) -> usize {
            self.core.group_len(name)
        }

        /// How many groups exist. A group exists while it has at least one member.
        pub fn group_count(&self) -> usize {
            self.core.group_count()
        }

        /// Every group's name and size, in no particular order.
        pub fn groups(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
            self.core.group_sizes()
        }

        /// The connected channels (in a handler: all but the current one): id, address and value.
        ///
        /// They come in slot order, not strictly in connection order: a new connection may
        /// reuse the slot of one that closed. Channels that are closing are skipped.
        pub fn channels(&self) -> impl Iterator<Item = Peer<'_, Ch>> + '_ {
            self.core.peers()
        }

        /// Another channel's value, by id (`None` for the current channel and unknown ids).
        pub fn channel(&self, id: ChannelId) -> Option<&Ch> {
            self.core.channel(id)
        }

        /// Another channel's value, mutably.
        pub fn channel_mut(&mut self, id: ChannelId) -> Option<&mut Ch> {
            self.core.channel_mut(id)
        }

        /// The number of connected channels, the current one included.
        pub fn channel_count(&self) -> usize {
            self.core.len()
        }

        /// Disconnects a channel after flushing what is queued to it.
        pub fn disconnect_peer(&mut self, id: ChannelId) {
            if let Some(slot) = self.core.slot_of(id) {
                self.core.mark_close(slot, CloseReason::Disconnected);
            }
        }

        /// The codec of this server.
        pub fn codec(&self) -> CodecKind {
            self.core.codec
        }

        /// A handle to this server, to move into a task or a thread: it sends to channels and
        /// runs code on the dispatch loop from there. See [`ServerHandle`].
        pub fn handle(&self) -> ServerHandle<Ch> {
            self.core.handle.clone()
        }
    };
}

/// What a handler can reach: its peer, the other channels, and the server state.
///
/// The other channels are visible through [`channels`](Context::channels); the current one is
/// `self` in the handler, so it is not listed there.
pub struct Context<'a, Ch: Channel> {
    core: &'a mut Core<Ch>,
    slot: usize,
    info: PeerInfo,
}

impl<Ch: Channel> Context<'_, Ch> {
    shared_context_methods!();

    /// This channel's id.
    pub fn id(&self) -> ChannelId {
        self.info.id
    }

    /// This channel's peer address.
    pub fn addr(&self) -> SocketAddr {
        self.info.addr
    }

    /// This channel's id and address.
    pub fn peer(&self) -> PeerInfo {
        self.info
    }

    /// What the server's authentication check returned for this peer, if it is of type `T`;
    /// `None` when the server does not authenticate (see
    /// [`ServerBuilder::auth`](super::ServerBuilder::auth)) or the identity is of another type.
    pub fn identity<T: std::any::Any>(&self) -> Option<&T> {
        let slot = self.core.slots.get(self.slot)?.as_ref()?;
        slot.identity.as_deref()?.downcast_ref::<T>()
    }

    /// The round-trip time to this peer, as its heartbeat last reported it; `None` until a
    /// peer that sends heartbeats (the Rust clients, with
    /// [`heartbeat`](crate::client::ClientBuilder::heartbeat)) has measured one. The value is
    /// the peer's own measurement: good for showing a "ping", not for trusting.
    pub fn rtt(&self) -> Option<Duration> {
        self.core.slots.get(self.slot)?.as_ref()?.rtt
    }

    /// Sends a message to this channel's peer, without waiting.
    ///
    /// # Errors
    ///
    /// [`SendError::Codec`] if the message cannot be encoded or is longer than the maximum
    /// frame length, [`SendError::QueueFull`] if the outbound queue overflowed (the channel is
    /// then disconnected as a slow consumer once the handler returns), [`SendError::Closed`]
    /// if the channel is being dropped. None of them needs handling for the server's sake:
    /// `let _ = ctx.send(..)` is fine where the handler has nothing better to do.
    pub fn send<M: Message + ?Sized>(&mut self, msg: &M) -> Result<(), SendError> {
        let frame = self.core.encode_one(msg)?;
        self.core.push_counted(self.slot, frame)
    }

    /// Sends a message to every channel but this one, encoding it once. Returns how many
    /// channels it was queued to (see [`send_to_all`](Self::send_to_all)).
    pub fn send_to_others<M: Message + ?Sized>(&mut self, msg: &M) -> usize {
        match self.core.encode(msg) {
            Some(frame) => self.core.broadcast_frame(&frame, Some(self.slot)),
            None => 0,
        }
    }

    /// Runs `future` on the server's runtime, off the dispatch loop, then `then` with its
    /// result back on the loop, with this channel and a context, like a handler.
    ///
    /// For work that takes time: a database, a web service, a file. The handler returns at
    /// once and the loop goes on serving every channel (this one included) meanwhile. If the
    /// channel closes before the future completes, `then` is not called: the result is
    /// dropped, with a `DEBUG` log. So is it when the server stops first. A panic in `then`
    /// closes the channel like a panic in a handler. The future needs the tokio runtime the
    /// server runs on; on a [`Hub`] driven outside any runtime, nothing is spawned (logged at
    /// `ERROR`).
    ///
    /// To reach other channels from the future itself, move a [`handle`](Self::handle) into
    /// it.
    ///
    /// ```
    /// use repod_core::Context;
    /// # use repod_core::RawMessage;
    /// # #[derive(Default)] struct Player { name: Option<String> }
    /// # impl repod_core::Channel for Player {
    /// #     type State = ();
    /// #     type Inbound = RawMessage;
    /// #     const ACTIONS: &'static [&'static str] = &[];
    /// #     fn decode(msg: RawMessage) -> RawMessage { msg }
    /// #     fn dispatch(&mut self, _: &mut Context<'_, Self>, _: RawMessage) {}
    /// # }
    /// # async fn look_up(_: String) -> Option<String> { None }
    ///
    /// fn login(player: &mut Player, ctx: &mut Context<'_, Player>, token: String) {
    ///     ctx.spawn(look_up(token), |player, ctx, name| match name {
    ///         Some(name) => player.name = Some(name),
    ///         None => ctx.disconnect(),
    ///     });
    /// }
    /// ```
    pub fn spawn<T, F>(
        &self,
        future: F,
        then: impl FnOnce(&mut Ch, &mut Context<'_, Ch>, T) + Send + 'static,
    ) where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let id = self.info.id;
        self.core.handle.spawn_then(future, move |result| {
            Command::Resume(id, Box::new(move |ch, ctx| then(ch, ctx, result)))
        });
    }

    /// Closes this channel once the handler returns, after flushing what is queued to it.
    pub fn disconnect(&mut self) {
        self.core.mark_close(self.slot, CloseReason::Disconnected);
    }

    /// Queues an encoded frame to this channel's peer.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), but for encoding, which is already done.
    pub fn send_frame(&mut self, frame: &Frame) -> Result<(), SendError> {
        self.core.push_counted(self.slot, frame.as_bytes().clone())
    }

    /// Joins a group (a room), creating it if needed. Returns `false` if this channel was
    /// already a member.
    ///
    /// The channel leaves all its groups by itself when it closes, right after `on_close`
    /// has run, so `on_close` can still tell its groups goodbye.
    pub fn join(&mut self, name: &str) -> bool {
        self.core.join_slot(self.slot, name)
    }

    /// Leaves a group; a group left empty ceases to exist. Returns `false` if this channel
    /// was not a member.
    pub fn leave(&mut self, name: &str) -> bool {
        self.core.leave_slot(self.slot, name)
    }

    /// Leaves every group this channel is in; returns how many.
    pub fn leave_all(&mut self) -> usize {
        self.core.leave_all_slot(self.slot)
    }

    /// Whether this channel is a member of a group.
    pub fn in_group(&self, name: &str) -> bool {
        self.core.groups.contains(self.slot, name)
    }

    /// The groups this channel is in, in the order it joined them.
    pub fn my_groups(&self) -> impl Iterator<Item = &str> + '_ {
        self.core.groups.of_slot(self.slot)
    }

    /// Sends a message to every member of a group but this channel, encoding it once.
    /// Returns how many channels it was queued to. This channel need not be a member.
    pub fn send_to_others_in_group<M: Message + ?Sized>(&mut self, name: &str, msg: &M) -> usize {
        match self.core.encode(msg) {
            Some(frame) => self.core.group_frame(name, &frame, Some(self.info.id)),
            None => 0,
        }
    }
}

impl<Ch: Channel> DispatchContext for Context<'_, Ch> {
    fn invalid_body(&mut self, msg: &RawMessage, error: CodecError) {
        tracing::debug!(target: "repod::server", id = self.info.id.0, action = msg.action(), %error, "invalid message body");
        match msg.request_id() {
            // A request's caller learns it from the reply.
            Some(rid) => {
                let _ = self.queue_reply::<()>(self.info.id, rid, Err(&error.to_string()));
            }
            None => {
                let _ = self.send(&ErrorMessage::new(error.to_string()));
            }
        }
    }

    fn unhandled(&mut self, msg: &RawMessage) {
        tracing::debug!(target: "repod::dispatch", action = msg.action(), "no handler for action");
        if let Some(rid) = msg.request_id() {
            let text = format!("no handler for action {:?}", msg.action());
            let _ = self.queue_reply::<()>(self.info.id, rid, Err(&text));
        }
    }

    fn handler_failed(&mut self, action: &str, error: &dyn fmt::Display) {
        tracing::debug!(target: "repod::server", id = self.info.id.0, action, %error, "handler returned an error");
        let _ = self.send(&ErrorMessage::new(error.to_string()));
    }
}

/// Server-wide access outside any handler: for ticks, timers and [`Hub::with_context`].
pub struct ServerContext<'a, Ch: Channel> {
    core: &'a mut Core<Ch>,
}

impl<Ch: Channel> ServerContext<'_, Ch> {
    shared_context_methods!();

    /// Runs `future` on the server's runtime, off the dispatch loop, then `then` with its
    /// result back on the loop, with a `ServerContext`: for slow work started by a tick or
    /// through a handle (saving the world, asking a matchmaking service), while the loop goes
    /// on serving every channel.
    ///
    /// If the server stops before the future completes, `then` is not called. The future needs
    /// the tokio runtime the server runs on; on a [`Hub`] driven outside any runtime, nothing
    /// is spawned (logged at `ERROR`). See [`Context::spawn`] for work on behalf of one channel.
    pub fn spawn<T, F>(
        &self,
        future: F,
        then: impl FnOnce(&mut ServerContext<'_, Ch>, T) + Send + 'static,
    ) where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.core.handle.spawn_then(future, move |result| {
            Command::Call(Box::new(move |ctx| then(ctx, result)))
        });
    }

    /// Every connected channel, mutably: id, address and value.
    pub fn channels_mut(&mut self) -> impl Iterator<Item = (PeerInfo, &mut Ch)> + '_ {
        self.core.slots.iter_mut().flatten().filter_map(|s| {
            if s.close.is_some() {
                return None;
            }
            let info = s.info;
            s.channel.as_mut().map(|c| (info, c))
        })
    }
}

impl<Ch: Channel> Context<'_, Ch> {
    /// The route of reply tokens; making one counts as answering the request.
    pub(super) fn reply_route(&mut self, rid: Option<u64>) -> &Arc<ReplyRoute> {
        if let Some(rid) = rid {
            self.core.answered = Some((self.info.id, rid));
        }
        &self.core.replies
    }

    /// Forgets which request was answered last.
    pub(super) fn forget_answered(&mut self) {
        self.core.answered = None;
    }

    /// Whether the request `rid` of this channel was the last one answered, or given a token.
    pub(super) fn was_answered(&self, rid: u64) -> bool {
        self.core.answered == Some((self.info.id, rid))
    }

    pub(super) fn queue_reply<T: Serialize + ?Sized>(
        &mut self,
        id: ChannelId,
        rid: u64,
        outcome: Result<&T, &str>,
    ) -> Result<(), SendError> {
        self.core.reply(id, rid, outcome)
    }
}

impl<Ch: Channel> ServerContext<'_, Ch> {
    /// The other nodes this node believes alive.
    #[cfg(feature = "cluster")]
    pub(super) fn cluster_nodes(&self) -> Vec<u32> {
        self.core.cluster.nodes()
    }

    pub(super) fn queue_reply<T: Serialize + ?Sized>(
        &mut self,
        id: ChannelId,
        rid: u64,
        outcome: Result<&T, &str>,
    ) -> Result<(), SendError> {
        self.core.reply(id, rid, outcome)
    }
}

/// Settings of a [`Hub`].
#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// The codec every connection speaks.
    pub codec: CodecKind,
    /// The largest frame payload sent.
    pub max_frame_len: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            codec: CodecKind::default(),
            max_frame_len: crate::frame::DEFAULT_MAX_FRAME_LEN,
        }
    }
}

/// All channels of a server and its state, without any I/O.
///
/// The server runs one `Hub` on its dispatch loop. Tests can drive one directly: connect a
/// channel with an [`Outbox`], feed it [`RawMessage`]s, read the frames from the receiver.
///
/// A hub has a [`ServerHandle`] of its own ([`Hub::handle`], and `ctx.handle()` in handlers);
/// what is sent through it, and the results of work started with [`Context::spawn`], wait in
/// the hub's command queue until [`run_commands`](Hub::run_commands) or
/// [`run_next_command`](Hub::run_next_command) runs them. A server does that on its loop.
pub struct Hub<Ch: Channel> {
    core: Core<Ch>,
    /// Replies sent through reply tokens, waiting for the loop.
    replies: mpsc::UnboundedReceiver<QueuedReply>,
    /// This node's number, shifted above the local part of channel ids (0 outside a cluster).
    id_base: u64,
    next_id: u64,
    factory: Factory<Ch>,
    on_connect: Option<ConnectHook<Ch::State>>,
    on_disconnect: Option<DisconnectHook<Ch::State>>,
    /// The receiving end of the handle's queue, when no server owns it.
    commands: Option<mpsc::Receiver<Command<Ch>>>,
}

pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

impl<Ch: Channel> Hub<Ch> {
    /// A hub with this state, creating each channel's value with `factory`.
    ///
    /// Its handle reports the unspecified address `0.0.0.0:0` as its
    /// [`local_addr`](ServerHandle::local_addr): no socket is bound.
    pub fn new(
        config: HubConfig,
        state: Ch::State,
        factory: impl FnMut(&PeerInfo) -> Ch + Send + 'static,
    ) -> Self {
        let (handle, commands) = ServerHandle::new_pair(
            config.codec,
            config.max_frame_len,
            vec![(super::Transport::Tcp, SocketAddr::from(([0, 0, 0, 0], 0)))],
            super::DEFAULT_COMMAND_QUEUE,
        );
        let mut hub = Self::with_handle(config, state, Box::new(factory), handle);
        hub.commands = Some(commands);
        hub
    }

    /// A hub whose handle's commands are received by a server.
    pub(crate) fn with_handle(
        config: HubConfig,
        state: Ch::State,
        factory: Factory<Ch>,
        handle: ServerHandle<Ch>,
    ) -> Self {
        let (route, replies) = ReplyRoute::new(config.codec, config.max_frame_len);
        Hub {
            replies,
            core: Core {
                state,
                slots: Vec::new(),
                free: Vec::new(),
                index: HashMap::new(),
                codec: config.codec,
                max_frame_len: config.max_frame_len,
                closing: Vec::new(),
                groups: Groups::default(),
                handle,
                replies: route,
                answered: None,
                sessions: None,
                sent: crate::observe::Sent::new(),
                cluster: Link::default(),
            },
            id_base: 0,
            next_id: 1,
            factory,
            on_connect: None,
            on_disconnect: None,
            commands: None,
        }
    }

    /// The handle of this hub (of its server, when a server runs it).
    pub fn handle(&self) -> ServerHandle<Ch> {
        self.core.handle.clone()
    }

    /// Runs the commands waiting in this hub's queue (sends through its handle, results of
    /// spawned work) without waiting for more; returns how many ran. A hub run by a server
    /// has no queue of its own (the server runs its commands): this returns 0.
    pub fn run_commands(&mut self) -> usize {
        let Some(mut commands) = self.commands.take() else {
            return 0;
        };
        let mut ran = 0;
        while let Ok(command) = commands.try_recv() {
            super::handle_command(self, command);
            ran += 1;
        }
        self.commands = Some(commands);
        ran
    }

    /// Waits for the next command in this hub's queue and runs it. Returns `false` at once
    /// for a hub run by a server, which has no queue of its own.
    pub async fn run_next_command(&mut self) -> bool {
        let Some(mut commands) = self.commands.take() else {
            return false;
        };
        // The hub's own handle keeps the queue open, so `recv` cannot end it.
        let command = commands.recv().await;
        self.commands = Some(commands);
        match command {
            Some(command) => {
                super::handle_command(self, command);
                true
            }
            None => false,
        }
    }

    /// Runs the continuation of work spawned by a channel's handler, if the channel is still
    /// connected; drops it otherwise.
    pub(crate) fn resume(&mut self, id: ChannelId, f: ResumeFn<Ch>) {
        let open = self.core.slot_of(id).filter(|&slot| {
            self.core.slots[slot]
                .as_ref()
                .is_some_and(|s| s.close.is_none())
        });
        let Some(slot) = open else {
            tracing::debug!(target: "repod::server", id = id.0, "channel closed before its spawned work finished: result dropped");
            return;
        };
        self.run(slot, f);
        self.process_closing();
    }

    /// Sets the server-level hook run after a channel's own `on_connect`.
    pub fn set_on_connect(&mut self, hook: impl FnMut(&mut Ch::State, &PeerInfo) + Send + 'static) {
        self.on_connect = Some(Box::new(hook));
    }

    /// Sets the server-level hook run after a channel's own `on_close`.
    pub fn set_on_disconnect(
        &mut self,
        hook: impl FnMut(&mut Ch::State, &PeerInfo, &CloseReason) + Send + 'static,
    ) {
        self.on_disconnect = Some(Box::new(hook));
    }

    /// Adds a connection: creates its channel, queues the `connected` greeting, runs the
    /// `on_connect` hooks.
    pub fn connect(&mut self, addr: SocketAddr, outbox: Outbox) -> ChannelId {
        let id = self.reserve_id();
        self.connect_as(id, addr, outbox, None, None);
        id
    }

    /// Takes the next channel id, for a connection that gets its channel later (once
    /// authenticated) with [`connect_as`](Hub::connect_as).
    pub(crate) fn reserve_id(&mut self) -> ChannelId {
        let id = ChannelId(self.id_base | self.next_id);
        self.next_id += 1;
        id
    }

    /// Like [`connect`](Hub::connect), with an id from [`reserve_id`](Hub::reserve_id) and
    /// the identity authentication proved.
    ///
    /// `session` is set when the peer asked for a resumable session: how many of its frames
    /// were read before its channel existed (its login, and heartbeats before it).
    pub(crate) fn connect_as(
        &mut self,
        id: ChannelId,
        addr: SocketAddr,
        outbox: Outbox,
        identity: Option<Identity>,
        session: Option<u64>,
    ) {
        let info = PeerInfo { id, addr };
        let slot = match self.core.free.pop() {
            Some(slot) => slot,
            None => {
                self.core.slots.push(None);
                self.core.slots.len() - 1
            }
        };
        self.core.slots[slot] = Some(Slot {
            info,
            conn: id,
            session: None,
            identity,
            rtt: None,
            channel: None,
            outbox,
            close: None,
        });
        self.core.index.insert(id, slot);
        tracing::debug!(target: "repod::server", id = id.0, peer = %addr, "channel connected");
        if let (Some(recv), Some(sessions)) = (session, self.core.sessions.as_mut()) {
            // The reply comes first, unnumbered; the greeting is the session's first frame.
            let token = sessions.issue(id);
            let reply = SessionReply {
                token: token.to_hex(),
                resumed: false,
                recv,
                reason: String::new(),
            };
            if let (Some(frame), Some(s)) = (
                encode_control(self.core.codec, self.core.max_frame_len, &reply),
                self.core.slots[slot].as_mut(),
            ) {
                let _ = s.outbox.push(frame);
                s.session = Some(Box::new(Session::new(token, recv, sessions.config)));
            }
        }
        let factory = &mut self.factory;
        match catch_unwind(AssertUnwindSafe(|| factory(&info))) {
            Ok(channel) => {
                if let Some(s) = self.core.slots[slot].as_mut() {
                    s.channel = Some(channel);
                }
                if let Some(greeting) = self.core.encode(&Connected) {
                    let _ = self.core.push_counted(slot, greeting);
                }
                self.run(slot, |ch, ctx| ch.on_connect(ctx));
                if let Some(hook) = self.on_connect.as_mut() {
                    let state = &mut self.core.state;
                    if let Err(p) = catch_unwind(AssertUnwindSafe(|| hook(state, &info))) {
                        tracing::error!(target: "repod::server", panic = %panic_message(&*p), "server on_connect hook panicked");
                    }
                }
            }
            Err(p) => {
                self.core
                    .mark_close(slot, CloseReason::HandlerPanicked(panic_message(&*p)));
            }
        }
        self.process_closing();
    }

    /// Records a heartbeat's reported round-trip time and queues its answer.
    pub(crate) fn heartbeat(&mut self, id: ChannelId, rtt: Option<Duration>, ack: Bytes) {
        let Some(slot) = self.core.slot_of(id) else {
            return;
        };
        if let Some(Some(s)) = self.core.slots.get_mut(slot) {
            if rtt.is_some() {
                s.rtt = rtt;
            }
        }
        if !ack.is_empty() {
            let _ = self.core.push_counted(slot, ack);
        }
        self.process_closing();
    }

    /// Runs `f` on a slot's channel with a context; a panic marks the slot closed.
    fn run(&mut self, slot: usize, f: impl FnOnce(&mut Ch, &mut Context<'_, Ch>)) {
        let Some(s) = self.core.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let info = s.info;
        let Some(mut channel) = s.channel.take() else {
            return;
        };
        let mut ctx = Context {
            core: &mut self.core,
            slot,
            info,
        };
        let result = catch_unwind(AssertUnwindSafe(|| f(&mut channel, &mut ctx)));
        if let Some(s) = self.core.slots[slot].as_mut() {
            s.channel = Some(channel);
        }
        if let Err(p) = result {
            let message = panic_message(&*p);
            tracing::error!(target: "repod::server", id = info.id.0, peer = %info.addr, panic = %message, "handler panicked: closing its channel");
            self.core
                .mark_close(slot, CloseReason::HandlerPanicked(message));
        }
    }

    /// Decodes one message from a connection with [`Channel::decode`] and dispatches it to its
    /// channel's handler. Messages for unknown or closing channels are dropped.
    pub fn dispatch(&mut self, id: ChannelId, msg: RawMessage) {
        self.dispatch_decoded(id, Ch::decode(msg));
    }

    /// Dispatches a message already decoded by [`Channel::decode`] (the server decodes on the
    /// connection's task). Messages for unknown or closing channels are dropped.
    pub fn dispatch_decoded(&mut self, id: ChannelId, msg: Ch::Inbound) {
        let Some(slot) = self.core.slot_of(id) else {
            return;
        };
        if self.core.slots[slot]
            .as_ref()
            .is_some_and(|s| s.close.is_some())
        {
            return;
        }
        tracing::trace!(target: "repod::server", id = id.0, "dispatch");
        self.run(slot, |ch, ctx| ch.dispatch(ctx, msg));
        self.process_closing();
    }

    /// Reports a peer error to the channel's `on_error` hook.
    pub fn peer_error(&mut self, id: ChannelId, error: &ChannelError) {
        if let Some(slot) = self.core.slot_of(id) {
            self.run(slot, |ch, ctx| ch.on_error(ctx, error));
            self.process_closing();
        }
    }

    /// Closes a channel: runs `on_close`, removes the channel from its groups, runs
    /// `on_disconnect`, then releases its outbox
    /// (flushing first if `reason` [flushes](CloseReason::flushes)).
    pub fn close(&mut self, id: ChannelId, reason: CloseReason) {
        if let Some(slot) = self.core.slot_of(id) {
            self.core.mark_close(slot, reason);
            self.process_closing();
        }
    }

    fn process_closing(&mut self) {
        while let Some(slot) = self.core.closing.pop() {
            let Some(reason) = self.core.slots[slot].as_ref().and_then(|s| s.close.clone()) else {
                continue;
            };
            self.run(slot, |ch, ctx| ch.on_close(ctx, &reason));
            // After `on_close`, which may still want to tell its groups.
            self.core.leave_all_slot(slot);
            let Some(s) = self.core.slots[slot].take() else {
                continue;
            };
            self.core.index.remove(&s.info.id);
            self.core.free.push(slot);
            if let Some(sessions) = self.core.sessions.as_mut() {
                sessions.conns.remove(&s.conn);
                if let Some(session) = &s.session {
                    sessions.tokens.remove(&session.token);
                }
            }
            crate::observe::closed(&reason);
            match &reason {
                CloseReason::PeerClosed | CloseReason::Disconnected | CloseReason::Shutdown => {
                    tracing::debug!(target: "repod::server", id = s.info.id.0, peer = %s.info.addr, %reason, "channel closed")
                }
                _ => {
                    tracing::warn!(target: "repod::server", id = s.info.id.0, peer = %s.info.addr, %reason, "channel closed")
                }
            }
            if let Some(hook) = self.on_disconnect.as_mut() {
                let state = &mut self.core.state;
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| hook(state, &s.info, &reason))) {
                    tracing::error!(target: "repod::server", panic = %panic_message(&*p), "server on_disconnect hook panicked");
                }
            }
            if reason.resets() {
                s.outbox.abort();
            } else if !reason.flushes() {
                s.outbox.cancel();
            }
            // Dropping the outbox lets the writer flush what is queued, then close.
        }
    }

    /// Queues an encoded frame to one channel.
    ///
    /// # Errors
    ///
    /// [`SendError::NoSuchChannel`] for an id that is not connected, [`SendError::QueueFull`]
    /// when the channel's queue overflowed (which disconnects it as a slow consumer),
    /// [`SendError::Closed`] when it is being dropped.
    pub fn send_frame_to(&mut self, id: ChannelId, frame: Bytes) -> Result<(), SendError> {
        let sent = self.core.send_frame_to(id, frame);
        self.process_closing();
        sent
    }

    /// Queues an encoded frame to every channel.
    pub fn send_frame_to_all(&mut self, frame: &Bytes) -> usize {
        let sent = self.core.broadcast_frame(frame, None);
        self.process_closing();
        sent
    }

    /// Queues an encoded frame to each of these channels.
    pub(crate) fn send_frame_to_many(
        &mut self,
        ids: impl IntoIterator<Item = ChannelId>,
        frame: &Bytes,
    ) -> usize {
        let sent = self.core.send_frame_to_many(ids, frame);
        self.process_closing();
        sent
    }

    /// Queues an encoded frame to the members of a group, but `except`.
    pub(crate) fn send_frame_to_group(
        &mut self,
        name: &str,
        frame: &Bytes,
        except: Option<ChannelId>,
    ) -> usize {
        let sent = self.core.group_frame(name, frame, except);
        self.process_closing();
        sent
    }

    /// Queues the replies that [`ReplyTo`](super::ReplyTo) tokens sent since the last call to
    /// their channels; returns how many. The server does this on its loop as they arrive;
    /// tests driving a hub call it themselves.
    pub fn flush_replies(&mut self) -> usize {
        let mut sent = 0;
        while let Ok((id, frame)) = self.replies.try_recv() {
            if self.core.send_frame_to(id, frame).is_ok() {
                sent += 1;
            }
        }
        self.process_closing();
        sent
    }

    /// Waits for a reply sent through a token (never ends: the hub holds a sender itself).
    pub(crate) async fn next_reply(&mut self) -> QueuedReply {
        match self.replies.recv().await {
            Some(reply) => reply,
            None => std::future::pending().await,
        }
    }

    /// Runs `f` with server-wide access to the state and all channels.
    pub fn with_context<R>(&mut self, f: impl FnOnce(&mut ServerContext<'_, Ch>) -> R) -> R {
        let result = f(&mut ServerContext {
            core: &mut self.core,
        });
        self.process_closing();
        result
    }

    /// Closes every channel with [`CloseReason::Shutdown`], flushing their queues.
    ///
    /// Sends through the hub's handle fail from then on.
    pub fn shutdown(&mut self) {
        self.core.handle.shared.shutdown.cancel();
        let slots: Vec<usize> = self.core.index.values().copied().collect();
        for slot in slots {
            self.core.mark_close(slot, CloseReason::Shutdown);
        }
        self.process_closing();
        // The other nodes drop this one's channels at once, without waiting for its silence.
        self.core.cluster.close();
    }

    /// Makes this hub a cluster node: ids carry its node number, sends reach the other nodes.
    pub(crate) fn set_cluster(&mut self, link: Link) {
        self.id_base = u64::from(link.node()) << 32;
        self.core.cluster = link;
    }

    /// The cluster's counters, when this hub is a cluster node.
    #[cfg(feature = "cluster")]
    pub(crate) fn cluster_counters(&self) -> Option<Arc<super::cluster::Counters>> {
        self.core.cluster.counters()
    }

    /// This node's number (0 outside a cluster).
    #[cfg(feature = "cluster")]
    pub(crate) fn cluster_node(&self) -> u32 {
        (self.id_base >> 32) as u32
    }

    /// Handles what the cluster's tasks report: a message from another node is delivered to
    /// this node's channels exactly as a local send would be (never published again).
    #[cfg(feature = "cluster")]
    pub(crate) fn cluster_event(&mut self, event: super::cluster::Event) {
        use super::cluster::Delivery;
        match self.core.cluster.receive(event) {
            Delivery::Nothing => return,
            Delivery::All { frame, except } => {
                let except = except.and_then(|id| self.core.slot_of(id));
                self.core.broadcast_local(&frame, except);
            }
            Delivery::Group {
                name,
                frame,
                except,
            } => {
                let except = except.and_then(|id| self.core.slot_of(id));
                self.core.group_local(&name, &frame, except);
            }
            Delivery::Direct { ids, frame } => {
                for id in ids {
                    let _ = self.core.send_local(id, frame.clone());
                }
            }
            Delivery::Snapshot => self.core.publish_snapshot(),
        }
        self.process_closing();
    }

    /// Id and address of every connected channel, in connection order.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let mut peers: Vec<PeerInfo> = self.core.slots.iter().flatten().map(|s| s.info).collect();
        peers.sort_by_key(|p| p.id);
        peers
    }

    /// The number of connected channels.
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether no channel is connected.
    pub fn is_empty(&self) -> bool {
        self.core.len() == 0
    }

    /// The server-wide state.
    pub fn state(&self) -> &Ch::State {
        &self.core.state
    }

    /// The server-wide state, mutably.
    pub fn state_mut(&mut self) -> &mut Ch::State {
        &mut self.core.state
    }

    /// A channel's value by id.
    pub fn channel(&self, id: ChannelId) -> Option<&Ch> {
        self.core.channel(id)
    }

    /// The codec of this hub.
    pub fn codec(&self) -> CodecKind {
        self.core.codec
    }

    /// The maximum frame length used when encoding.
    pub fn max_frame_len(&self) -> usize {
        self.core.max_frame_len
    }

    /// Records the gauges sampled from the channels: how many, and the bytes queued to them.
    pub(crate) fn sample_metrics(&self) {
        let (mut total, mut max) = (0, 0);
        for s in self.core.slots.iter().flatten() {
            let queued = s.outbox.queued_bytes();
            total += queued;
            max = max.max(queued);
        }
        crate::observe::sample(self.core.len(), total, max);
    }
}

/// Encodes a session control frame (never numbered nor kept for replay).
fn encode_control<M: Message>(codec: CodecKind, max_frame_len: usize, msg: &M) -> Option<Bytes> {
    match codec.encode(msg, max_frame_len) {
        Ok(frame) => Some(frame),
        Err(error) => {
            tracing::error!(target: "repod::server", action = M::ACTION, %error, "cannot encode a session frame");
            None
        }
    }
}

/// A closed outbox, standing in for the connection of a channel whose peer is away.
fn away_outbox() -> Outbox {
    let (outbox, receiver) = Outbox::new(1, 0);
    drop(receiver);
    outbox
}

/// Resumable sessions.
impl<Ch: Channel> Hub<Ch> {
    /// Turns resumable sessions on.
    pub(crate) fn enable_sessions(&mut self, config: Resume) {
        self.core.sessions = Some(Sessions::new(config));
    }

    /// Whether the hub resumes sessions.
    pub(crate) fn resumes(&self) -> bool {
        self.core.sessions.is_some()
    }

    /// The channel an event of connection `conn` is for, if that connection is still the
    /// channel's: events of a connection replaced by a resume, or of a peer that is away, are
    /// dropped.
    pub(crate) fn route(&self, conn: ChannelId) -> Option<ChannelId> {
        let Some(sessions) = &self.core.sessions else {
            return Some(conn);
        };
        let id = sessions.channel_of(conn);
        let slot = self.core.slot_of(id)?;
        (self.core.slots[slot].as_ref()?.conn == conn).then_some(id)
    }

    /// Counts `n` frames received from a channel's peer, and acknowledges them when it is time.
    pub(crate) fn received(&mut self, id: ChannelId, n: u64) {
        let Some(slot) = self.core.slot_of(id) else {
            return;
        };
        let (codec, max) = (self.core.codec, self.core.max_frame_len);
        let Some(s) = self.core.slots[slot].as_mut() else {
            return;
        };
        let Some(session) = s.session.as_mut() else {
            return;
        };
        if let Some(recv) = session.received(n) {
            if let Some(frame) = encode_control(codec, max, &SessionAck { recv }) {
                let _ = s.outbox.push(frame);
            }
        }
    }

    /// Whether a channel has a session that a lost connection keeps.
    pub(crate) fn keeps_session(&self, id: ChannelId) -> bool {
        self.core
            .slot_of(id)
            .and_then(|slot| self.core.slots[slot].as_ref())
            .is_some_and(|s| s.session.is_some() && s.close.is_none())
    }

    /// The peer acknowledged the first `recv` frames of its session.
    pub(crate) fn session_ack(&mut self, id: ChannelId, recv: u64) {
        if let Some(session) = self
            .core
            .slot_of(id)
            .and_then(|slot| self.core.slots[slot].as_mut())
            .and_then(|s| s.session.as_mut())
        {
            session.ack(recv);
        }
    }

    /// The peer ends its session: the channel closes with its connection, and the token is void.
    pub(crate) fn session_end(&mut self, id: ChannelId) {
        let Some(slot) = self.core.slot_of(id) else {
            return;
        };
        if let (Some(s), Some(sessions)) =
            (self.core.slots[slot].as_mut(), self.core.sessions.as_mut())
        {
            if let Some(session) = s.session.take() {
                sessions.tokens.remove(&session.token);
            }
        }
    }

    /// The connection of a channel ended for `reason`. A channel with a session whose peer
    /// dropped is kept for the grace period; any other closes.
    pub(crate) fn connection_lost(&mut self, id: ChannelId, reason: CloseReason) {
        let Some(slot) = self.core.slot_of(id) else {
            return;
        };
        let dropped = matches!(
            reason,
            CloseReason::PeerClosed | CloseReason::Io(_) | CloseReason::Idle
        );
        let Some(sessions) = self.core.sessions.as_mut() else {
            return self.close(id, reason);
        };
        let Some(s) = self.core.slots[slot].as_mut() else {
            return;
        };
        let keep = dropped && s.close.is_none() && s.session.is_some();
        if !keep {
            return self.close(id, reason);
        }
        let until = Instant::now() + sessions.config.grace();
        sessions.conns.remove(&s.conn);
        s.conn = ChannelId(0);
        let old = std::mem::replace(&mut s.outbox, away_outbox());
        old.cancel();
        if let Some(session) = s.session.as_mut() {
            session.away_until = Some(until);
        }
        sessions.expiries.push(std::cmp::Reverse((until, id)));
        tracing::debug!(target: "repod::server", id = id.0, %reason, "peer away: session kept for its grace period");
    }

    /// The end of the soonest grace period, if a peer is away.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.core.sessions.as_ref()?.next_expiry()
    }

    /// Closes the channels whose peers did not come back within their grace period.
    pub(crate) fn expire_sessions(&mut self, now: Instant) {
        loop {
            let Some(sessions) = self.core.sessions.as_mut() else {
                return;
            };
            match sessions.expiries.peek() {
                Some(std::cmp::Reverse((at, _))) if *at <= now => {}
                _ => break,
            }
            let Some(std::cmp::Reverse((_, id))) = sessions.expiries.pop() else {
                break;
            };
            let expired = self
                .core
                .slot_of(id)
                .and_then(|slot| self.core.slots[slot].as_ref())
                .and_then(|s| s.session.as_ref())
                .and_then(|session| session.away_until)
                .is_some_and(|until| until <= now);
            if expired {
                if let Some(slot) = self.core.slot_of(id) {
                    self.core.mark_close(slot, CloseReason::SessionExpired);
                }
            }
        }
        self.process_closing();
    }

    /// A new connection `conn` presents a session token: hands it the session's channel and
    /// replays what its peer missed, or tells it why not and closes it.
    pub(crate) fn resume_session(
        &mut self,
        conn: ChannelId,
        addr: SocketAddr,
        outbox: Outbox,
        token: Token,
        peer_recv: u64,
    ) {
        let (codec, max) = (self.core.codec, self.core.max_frame_len);
        let refuse = |outbox: Outbox, reason: &str| {
            tracing::debug!(target: "repod::server", conn = conn.0, peer = %addr, reason, "session not resumed");
            let reply = SessionReply {
                token: String::new(),
                resumed: false,
                recv: 0,
                reason: reason.to_owned(),
            };
            if let Some(frame) = encode_control(codec, max, &reply) {
                let _ = outbox.push(frame);
            }
            // Dropping it closes the connection after the reply.
        };
        let Some(&id) = self
            .core
            .sessions
            .as_ref()
            .and_then(|sessions| sessions.tokens.get(&token))
        else {
            return refuse(outbox, "unknown or expired session");
        };
        let found = self.core.slot_of(id);
        let Some(sessions) = self.core.sessions.as_mut() else {
            return refuse(outbox, "this server does not resume sessions");
        };
        let Some(slot) = found else {
            sessions.tokens.remove(&token);
            return refuse(outbox, "unknown or expired session");
        };
        let Some(s) = self.core.slots[slot].as_mut() else {
            return refuse(outbox, "unknown or expired session");
        };
        if s.close.is_some() {
            return refuse(outbox, "the session is closing");
        }
        let Some(session) = s.session.as_mut() else {
            return refuse(outbox, "unknown or expired session");
        };
        if peer_recv > session.sent {
            // Not this session's peer, or a broken one: the session stays for its own.
            return refuse(outbox, "the session does not match");
        }
        if !session.can_replay_from(peer_recv) {
            refuse(outbox, "the replay buffer overflowed");
            self.core.mark_close(slot, CloseReason::ReplayOverflow);
            self.process_closing();
            return;
        }
        // The token is single use: a new one for the next resume.
        sessions.tokens.remove(&token);
        let next = loop {
            let candidate = Token::generate();
            if !sessions.tokens.contains_key(&candidate) {
                break candidate;
            }
        };
        sessions.tokens.insert(next, id);
        session.token = next;
        session.ack(peer_recv);
        session.away_until = None;
        session.told();
        sessions.conns.remove(&s.conn);
        sessions.conns.insert(conn, id);
        s.conn = conn;
        s.info.addr = addr;
        // A peer that comes back before its old connection was seen to drop takes over.
        let old = std::mem::replace(&mut s.outbox, outbox);
        old.abort();
        let reply = SessionReply {
            token: next.to_hex(),
            resumed: true,
            recv: session.recv,
            reason: String::new(),
        };
        let mut full = false;
        if let Some(frame) = encode_control(codec, max, &reply) {
            full |= s.outbox.push(frame) == Err(PushError::Full);
        }
        for frame in session.replay_from(peer_recv) {
            if s.outbox.push(frame.clone()).is_err() {
                full = true;
                break;
            }
        }
        tracing::debug!(target: "repod::server", id = id.0, conn = conn.0, peer = %addr, "session resumed");
        if full {
            self.core.mark_close(slot, CloseReason::SlowConsumer);
            self.process_closing();
        }
    }
}
