//! Resumable sessions on the server: a channel whose peer dropped is kept for a grace period,
//! with the frames its peer has not acknowledged, and handed back to a new connection that
//! presents the session's token.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::hub::ChannelId;
use crate::session::Token;

/// The default replay buffer, in frames: 4,096.
pub const DEFAULT_REPLAY_FRAMES: usize = 4096;
/// The default replay buffer, in bytes: 4 MiB.
pub const DEFAULT_REPLAY_BYTES: usize = 4 * 1024 * 1024;
/// How long a server with resumption on waits for a new connection's first frame, to learn
/// whether it resumes a session, before it greets the peer as a new one: 500 ms.
pub const DEFAULT_HELLO_WINDOW: Duration = Duration::from_millis(500);

/// A side acknowledges what it received after this many frames.
pub(crate) const ACK_EVERY: u64 = 16;

/// Settings of resumable sessions, for [`ServerBuilder::resume`](super::ServerBuilder::resume).
///
/// ```
/// use std::time::Duration;
/// use repod_core::server::Resume;
///
/// let resume = Resume::new(Duration::from_secs(30)).replay_buffer(1024, 1 << 20);
/// assert_eq!(resume.grace(), Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    grace: Duration,
    replay_frames: usize,
    replay_bytes: usize,
    hello_window: Duration,
}

impl Resume {
    /// Sessions kept for `grace` after their peer dropped, with the default replay buffer
    /// (4,096 frames, 4 MiB per session) and hello window (500 ms).
    pub fn new(grace: Duration) -> Self {
        Resume {
            grace,
            replay_frames: DEFAULT_REPLAY_FRAMES,
            replay_bytes: DEFAULT_REPLAY_BYTES,
            hello_window: DEFAULT_HELLO_WINDOW,
        }
    }

    /// The most frames, and bytes, a session keeps that its peer has not acknowledged (at least
    /// one frame). While the peer is connected it acknowledges every few frames, so this is
    /// what a peer may miss while away: more, and its session cannot be resumed.
    pub fn replay_buffer(mut self, frames: usize, bytes: usize) -> Self {
        self.replay_frames = frames.max(1);
        self.replay_bytes = bytes;
        self
    }

    /// How long a new connection has to send its first frame before the server greets it as a
    /// new session. Clients that resume send their hello at once, with the connection; a peer
    /// that waits for the greeting before it says anything (as Python repod clients may) is
    /// greeted when the window ends. The default is 500 ms.
    pub fn hello_window(mut self, window: Duration) -> Self {
        self.hello_window = window;
        self
    }

    /// The grace period.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    pub(crate) fn window(&self) -> Duration {
        self.hello_window
    }
}

/// One channel's session.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) token: Token,
    limits: Resume,
    /// Frames numbered so far (the last one's number).
    pub(crate) sent: u64,
    /// The frames after `base`, not acknowledged by the peer, oldest first.
    replay: VecDeque<Bytes>,
    replay_bytes: usize,
    /// The number of the last frame no longer kept (acknowledged, or pushed out by overflow).
    base: u64,
    /// The highest number the peer acknowledged.
    acked: u64,
    /// Frames received from the peer in this session.
    pub(crate) recv: u64,
    /// `recv` when the peer was last told it.
    told: u64,
    /// When the peer is away: the end of its grace period.
    pub(crate) away_until: Option<Instant>,
}

impl Session {
    pub(crate) fn new(token: Token, recv: u64, limits: Resume) -> Self {
        Session {
            token,
            limits,
            sent: 0,
            replay: VecDeque::new(),
            replay_bytes: 0,
            base: 0,
            acked: 0,
            recv,
            told: recv,
            away_until: None,
        }
    }

    pub(crate) fn is_away(&self) -> bool {
        self.away_until.is_some()
    }

    /// Numbers a frame and keeps it until the peer acknowledges it.
    pub(crate) fn record(&mut self, frame: &Bytes) {
        let limits = self.limits;
        self.sent += 1;
        self.replay_bytes += frame.len();
        self.replay.push_back(frame.clone());
        while self.replay.len() > limits.replay_frames
            || (self.replay_bytes > limits.replay_bytes && self.replay.len() > 1)
        {
            self.drop_oldest();
        }
    }

    fn drop_oldest(&mut self) {
        if let Some(frame) = self.replay.pop_front() {
            self.replay_bytes -= frame.len();
            self.base += 1;
        }
    }

    /// The peer has received the first `recv` frames; forgets them. A count beyond what was
    /// sent is ignored.
    pub(crate) fn ack(&mut self, recv: u64) {
        if recv > self.sent {
            return;
        }
        self.acked = self.acked.max(recv);
        while self.base < recv {
            self.drop_oldest();
        }
    }

    /// Whether the frames after `recv` are all still kept.
    pub(crate) fn can_replay_from(&self, recv: u64) -> bool {
        recv >= self.base && recv <= self.sent
    }

    /// The frames after `recv`, to send again (call after [`can_replay_from`](Self::can_replay_from)).
    pub(crate) fn replay_from(&self, recv: u64) -> impl Iterator<Item = &Bytes> + '_ {
        let skip = (recv - self.base) as usize;
        self.replay.iter().skip(skip)
    }

    /// Counts `n` frames received; returns the count to acknowledge when it is time to.
    pub(crate) fn received(&mut self, n: u64) -> Option<u64> {
        self.recv += n;
        if self.recv - self.told >= ACK_EVERY {
            self.told = self.recv;
            Some(self.recv)
        } else {
            None
        }
    }

    /// The peer was told `recv` (in a reply).
    pub(crate) fn told(&mut self) {
        self.told = self.recv;
    }
}

/// The sessions of a server: tokens, connections of resumed sessions, and grace periods.
#[derive(Debug)]
pub(crate) struct Sessions {
    pub(crate) config: Resume,
    /// Each live token, and its channel.
    pub(crate) tokens: HashMap<Token, ChannelId>,
    /// The channel of each connection that resumed a session (a connection's id differs from
    /// its channel's then).
    pub(crate) conns: HashMap<ChannelId, ChannelId>,
    /// Grace periods, soonest first: (end, channel). Stale entries are skipped.
    pub(crate) expiries: BinaryHeap<Reverse<(Instant, ChannelId)>>,
}

impl Sessions {
    pub(crate) fn new(config: Resume) -> Self {
        Sessions {
            config,
            tokens: HashMap::new(),
            conns: HashMap::new(),
            expiries: BinaryHeap::new(),
        }
    }

    /// A new token for `id`, registered.
    pub(crate) fn issue(&mut self, id: ChannelId) -> Token {
        loop {
            let token = Token::generate();
            if let std::collections::hash_map::Entry::Vacant(e) = self.tokens.entry(token) {
                e.insert(id);
                return token;
            }
        }
    }

    /// The channel a connection speaks for: its own id unless it resumed a session.
    pub(crate) fn channel_of(&self, conn: ChannelId) -> ChannelId {
        self.conns.get(&conn).copied().unwrap_or(conn)
    }

    /// The end of the soonest grace period.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.expiries.peek().map(|Reverse((at, _))| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8) -> Bytes {
        Bytes::from(vec![n; 10])
    }

    #[test]
    fn acks_forget_and_overflow_forbids_an_old_resume() {
        let limits = Resume::new(Duration::from_secs(1)).replay_buffer(4, usize::MAX);
        let mut s = Session::new(Token::generate(), 0, limits);
        for n in 1..=3 {
            s.record(&frame(n));
        }
        assert!(s.can_replay_from(0));
        assert_eq!(s.replay_from(1).count(), 2);
        s.ack(2);
        assert!(!s.can_replay_from(1));
        assert!(s.can_replay_from(2));
        assert_eq!(s.replay_from(2).next(), Some(&frame(3)));
        for n in 4..=8 {
            s.record(&frame(n));
        }
        // Kept: 5..=8; the peer that received 3 missed 4, which is gone.
        assert!(!s.can_replay_from(3));
        assert!(s.can_replay_from(4));
        assert!(!s.can_replay_from(9), "more than was sent");
        s.ack(100);
        assert!(s.can_replay_from(4), "an impossible ack is ignored");
    }

    #[test]
    fn receipts_are_acknowledged_every_few_frames() {
        let mut s = Session::new(Token::generate(), 1, Resume::new(Duration::from_secs(1)));
        let mut acks = Vec::new();
        for _ in 0..40 {
            if let Some(n) = s.received(1) {
                acks.push(n);
            }
        }
        assert_eq!(acks, [17, 33]);
    }
}
