//! Without the `cluster` feature: a server is never a cluster node, and every hook the hub
//! calls does nothing (and costs nothing).

use bytes::Bytes;

use super::channel::Channel;
use super::hub::Hub;
use crate::codec::CodecKind;
use crate::error::SendError;
use crate::server::{ChannelId, ServerError};

/// Never happens: nothing produces cluster events.
pub(crate) enum Event {}

#[derive(Default)]
pub(crate) struct Setup;

impl Setup {
    pub(crate) async fn prepare(&mut self, _codec: CodecKind) -> Result<(), ServerError> {
        Ok(())
    }

    pub(crate) fn start(self, _codec: CodecKind) -> (Link, Io) {
        (Link::default(), Io::default())
    }
}

#[derive(Default)]
pub(crate) struct Io(());

impl Io {
    pub(crate) fn enabled(&self) -> bool {
        false
    }

    pub(crate) fn start(&mut self) {}

    pub(crate) async fn next(&mut self) -> Event {
        std::future::pending().await
    }

    pub(crate) async fn finish(self) {}
}

#[derive(Default)]
pub(crate) struct Link(());

impl Link {
    pub(crate) fn node(&self) -> u32 {
        0
    }

    pub(crate) fn is_remote(&self, _id: ChannelId) -> bool {
        false
    }

    pub(crate) fn publish_all(&mut self, _frame: &Bytes, _except: Option<ChannelId>) {}

    pub(crate) fn publish_group(
        &mut self,
        _name: &str,
        _frame: &Bytes,
        _except: Option<ChannelId>,
    ) {
    }

    pub(crate) fn publish_to(
        &mut self,
        _id: ChannelId,
        _frame: &Bytes,
    ) -> Option<Result<(), SendError>> {
        None
    }

    pub(crate) fn publish_to_many(&mut self, _ids: Vec<ChannelId>, _frame: &Bytes) -> usize {
        0
    }

    pub(crate) fn joined(&mut self, _id: ChannelId, _name: &str) {}

    pub(crate) fn left(&mut self, _id: ChannelId, _name: &str) {}

    pub(crate) fn left_all(&mut self, _id: ChannelId) {}

    pub(crate) fn close(&mut self) {}

    pub(crate) fn remote_members(&self, _name: &str) -> std::iter::Empty<ChannelId> {
        std::iter::empty()
    }

    pub(crate) fn remote_len(&self, _name: &str) -> usize {
        0
    }

    pub(crate) fn remote_contains(&self, _id: ChannelId, _name: &str) -> bool {
        false
    }

    pub(crate) fn remote_groups_of(&self, _id: ChannelId) -> std::iter::Empty<&str> {
        std::iter::empty()
    }

    pub(crate) fn remote_groups(&self) -> std::iter::Empty<(&str, usize)> {
        std::iter::empty()
    }
}

impl<Ch: Channel> Hub<Ch> {
    pub(crate) fn cluster_event(&mut self, event: Event) {
        match event {}
    }
}
