//! What a reconnecting client's sends do, on a connection and between connections, and its
//! resumable session: the frames the server has not acknowledged, numbered, to send again after
//! a resume.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use crate::codec::{Codec, CodecKind};
use crate::connection::{Outbox, PushError};
use crate::error::SendError;
use crate::message::Message;
use crate::session::{SessionAck, SessionEnd, SessionHello, SessionReply};

/// A client acknowledges what it received after this many frames.
const ACK_EVERY: u64 = 16;

/// The send side of a reconnecting client.
#[derive(Debug)]
pub(crate) struct Link {
    state: Mutex<LinkState>,
}

#[derive(Debug)]
struct LinkState {
    /// Frames go to the connection; otherwise (between connections) to the session, or they
    /// fail.
    attached: bool,
    /// The replay buffer's limits, when the client resumes sessions.
    limits: Option<(usize, usize)>,
    /// The session, while the client has one (or is about to ask for one).
    session: Option<Session>,
    /// The message that starts every new session or connection (a login), encoded.
    login: Option<Bytes>,
    /// The next new session or connection must start with the login: the one before was lost.
    needs_login: bool,
}

#[derive(Debug)]
struct Session {
    /// The token of the next resume; `None` until the server gave one.
    token: Option<String>,
    /// Frames numbered so far.
    sent: u64,
    /// The number of the last frame no longer kept.
    base: u64,
    /// The frames after `base`, not acknowledged by the server.
    replay: VecDeque<Bytes>,
    bytes: usize,
    /// Frames of the session received from the server.
    recv: u64,
    /// `recv` when the server was last told it.
    told: u64,
    /// A session lost before this one: how many frames never reached the server, and why.
    lost_before: Option<(u64, String)>,
}

impl Session {
    fn new(lost_before: Option<(u64, String)>) -> Self {
        Session {
            token: None,
            sent: 0,
            base: 0,
            replay: VecDeque::new(),
            bytes: 0,
            recv: 0,
            told: 0,
            lost_before,
        }
    }

    /// Forgets the frames the server says it has received; `false` for a count that cannot be
    /// this session's.
    fn ack(&mut self, recv: u64) -> bool {
        if recv > self.sent || recv < self.base {
            return false;
        }
        while self.base < recv {
            if let Some(frame) = self.replay.pop_front() {
                self.bytes -= frame.len();
            }
            self.base += 1;
        }
        true
    }
}

/// How the server answered a connection's hello.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The session was resumed: what the server missed was sent again.
    Resumed,
    /// A new session started; `lost` and `reason` tell about the one it replaces, if any.
    Started {
        /// Frames of the lost session that never reached the server.
        lost: u64,
        /// Why the session before was lost.
        reason: String,
    },
    /// The session could not be resumed: the server closes this connection, and the next one
    /// starts a new session.
    Refused(String),
}

fn push_error(error: PushError) -> SendError {
    match error {
        PushError::Full => SendError::QueueFull,
        PushError::Closed => SendError::Closed,
    }
}

fn control<M: Message>(codec: CodecKind, max_frame_len: usize, msg: &M) -> Option<Bytes> {
    codec.encode(msg, max_frame_len).ok()
}

impl Link {
    /// A link; with a resumable session, whose replay buffer holds at most `limits` (frames,
    /// bytes).
    pub(crate) fn new(limits: Option<(usize, usize)>) -> Self {
        Link {
            // Sends before the first connection wait for it: in the queue, or in the session.
            state: Mutex::new(LinkState {
                attached: limits.is_none(),
                limits,
                session: limits.map(|_| Session::new(None)),
                login: None,
                needs_login: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame: numbered and kept in the session, if there is one, and written to the
    /// connection, if there is one. Between connections, without a session, it fails with
    /// [`SendError::Disconnected`].
    pub(crate) fn push(&self, outbox: &Outbox, frame: Bytes) -> Result<(), SendError> {
        push_locked(&mut self.lock(), outbox, frame)
    }

    /// Sets the login: sent now, like any message, and again first on every new session (or,
    /// without sessions, every new connection) after this one.
    pub(crate) fn set_login(&self, outbox: &Outbox, frame: Bytes) -> Result<(), SendError> {
        let mut state = self.lock();
        state.login = Some(frame.clone());
        push_locked(&mut state, outbox, frame)
    }

    /// A new connection is up. Without sessions, frames go to it from now on; with them, its
    /// hello is queued (the connection's first frame), and for a new session the frames
    /// waiting behind it. Returns whether the hello asks to resume (the frames then wait for
    /// the server's answer).
    pub(crate) fn connected(
        &self,
        outbox: &Outbox,
        codec: CodecKind,
        max_frame_len: usize,
    ) -> bool {
        let mut state = self.lock();
        let login = if state.needs_login {
            state.login.clone()
        } else {
            None
        };
        if state.limits.is_none() {
            state.attached = true;
            if let Some(login) = login {
                let _ = outbox.push(login);
            }
            state.needs_login = false;
            return false;
        }
        let session = state.session.get_or_insert_with(|| Session::new(None));
        if let (Some(login), None) = (login, &session.token) {
            // First in the new session, before what was sent while there was none.
            session.sent += 1;
            session.bytes += login.len();
            session.replay.push_front(login);
            state.needs_login = false;
        }
        let Some(session) = state.session.as_mut() else {
            return false;
        };
        let hello = match &session.token {
            Some(token) => SessionHello {
                token: token.clone(),
                recv: session.recv,
            },
            None => SessionHello::default(),
        };
        let resume = session.token.is_some();
        if let Some(frame) = control(codec, max_frame_len, &hello) {
            let _ = outbox.push(frame);
        }
        if !resume {
            // A new session numbers from the hello on: everything kept goes now.
            for frame in &session.replay {
                let _ = outbox.push(frame.clone());
            }
            state.attached = true;
        }
        resume
    }

    /// The server's answer to the hello.
    pub(crate) fn answer(
        &self,
        reply: &SessionReply,
        asked_resume: bool,
        outbox: &Outbox,
    ) -> Answer {
        let mut state = self.lock();
        let Some(session) = state.session.as_mut() else {
            return Answer::Started {
                lost: 0,
                reason: String::new(),
            };
        };
        if asked_resume {
            if reply.resumed && session.ack(reply.recv) {
                for frame in &session.replay {
                    let _ = outbox.push(frame.clone());
                }
                session.token = Some(reply.token.clone());
                state.attached = true;
                return Answer::Resumed;
            }
            let reason = if reply.reason.is_empty() {
                "the session does not match".to_owned()
            } else {
                reply.reason.clone()
            };
            let lost = session.replay.len() as u64;
            state.session = Some(Session::new(Some((lost, reason.clone()))));
            state.needs_login = true;
            return Answer::Refused(reason);
        }
        session.token = Some(reply.token.clone());
        session.recv = 0;
        session.told = 0;
        session.ack(reply.recv);
        let (lost, reason) = session.lost_before.take().unwrap_or_default();
        Answer::Started { lost, reason }
    }

    /// The server answered the hello with something else: it does not resume sessions. The
    /// connection goes on without one. Returns how many frames waiting for a resume were lost.
    pub(crate) fn no_sessions(&self) -> u64 {
        let mut state = self.lock();
        let waiting = state.attached;
        state.attached = true;
        match state.session.take() {
            Some(session) if !waiting => session.replay.len() as u64,
            _ => 0,
        }
    }

    /// Counts a frame of the session received; returns the acknowledgement to send when it is
    /// time to.
    pub(crate) fn received(&self, codec: CodecKind, max_frame_len: usize) -> Option<Bytes> {
        let mut state = self.lock();
        let session = state.session.as_mut()?;
        session.token.as_ref()?;
        session.recv += 1;
        if session.recv - session.told < ACK_EVERY {
            return None;
        }
        session.told = session.recv;
        control(codec, max_frame_len, &SessionAck { recv: session.recv })
    }

    /// The server acknowledged the first `recv` frames.
    pub(crate) fn acked(&self, recv: u64) {
        if let Some(session) = self.lock().session.as_mut() {
            session.ack(recv);
        }
    }

    /// The connection is gone: frames wait for the next one (with a session) or fail.
    pub(crate) fn detach(&self) {
        let mut state = self.lock();
        state.attached = false;
        // Without a session, the next connection is a new one.
        if state.session.is_none() {
            state.needs_login = true;
        }
    }

    /// The client closes on purpose: tells the server, so that it does not keep the session.
    pub(crate) fn end(&self, outbox: &Outbox, codec: CodecKind, max_frame_len: usize) {
        let mut state = self.lock();
        let attached = state.attached;
        let Some(session) = state.session.as_mut() else {
            return;
        };
        if attached && session.token.take().is_some() {
            if let Some(frame) = control(codec, max_frame_len, &SessionEnd) {
                let _ = outbox.push(frame);
            }
        }
    }

    /// Whether frames wait in a session for the next connection.
    pub(crate) fn has_session(&self) -> bool {
        self.lock().session.is_some()
    }
}

fn push_locked(state: &mut LinkState, outbox: &Outbox, frame: Bytes) -> Result<(), SendError> {
    let attached = state.attached;
    let limits = state.limits.unwrap_or((usize::MAX, usize::MAX));
    match state.session.as_mut() {
        Some(session) => {
            let len = frame.len();
            if session.replay.len() >= limits.0
                || (!session.replay.is_empty() && session.bytes + len > limits.1)
            {
                return Err(SendError::QueueFull);
            }
            if attached {
                outbox.push(frame.clone()).map_err(push_error)?;
            }
            session.sent += 1;
            session.bytes += len;
            session.replay.push_back(frame);
            Ok(())
        }
        None if attached => outbox.push(frame).map_err(push_error),
        None => Err(SendError::Disconnected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8) -> Bytes {
        Bytes::from(vec![0, 0, 0, 1, n])
    }

    #[test]
    fn a_resume_sends_again_what_the_server_missed() {
        let (outbox, mut rx) = Outbox::new(64, 1 << 20);
        let link = Link::new(Some((8, 1 << 20)));
        assert!(!link.connected(&outbox, CodecKind::MsgPack, 1 << 20));
        let _hello = rx.try_recv().unwrap();
        for n in 1..=3 {
            link.push(&outbox, frame(n)).unwrap();
        }
        let reply = SessionReply {
            token: "t".into(),
            resumed: false,
            recv: 0,
            reason: String::new(),
        };
        assert!(matches!(
            link.answer(&reply, false, &outbox),
            Answer::Started { lost: 0, .. }
        ));
        while rx.try_recv().is_some() {}
        link.detach();
        link.push(&outbox, frame(4)).unwrap();
        assert!(
            rx.try_recv().is_none(),
            "nothing is written between connections"
        );
        assert!(link.connected(&outbox, CodecKind::MsgPack, 1 << 20));
        let _hello = rx.try_recv().unwrap();
        let resumed = SessionReply {
            token: "u".into(),
            resumed: true,
            recv: 2,
            reason: String::new(),
        };
        assert!(matches!(
            link.answer(&resumed, true, &outbox),
            Answer::Resumed
        ));
        assert_eq!(rx.try_recv(), Some(frame(3)));
        assert_eq!(rx.try_recv(), Some(frame(4)));
        assert_eq!(rx.try_recv(), None);
    }

    #[test]
    fn a_refused_resume_counts_what_was_lost() {
        let (outbox, mut rx) = Outbox::new(64, 1 << 20);
        let link = Link::new(Some((2, 1 << 20)));
        link.connected(&outbox, CodecKind::Bincode, 1 << 20);
        let reply = SessionReply {
            token: "t".into(),
            resumed: false,
            recv: 0,
            reason: String::new(),
        };
        link.answer(&reply, false, &outbox);
        link.detach();
        link.push(&outbox, frame(1)).unwrap();
        link.push(&outbox, frame(2)).unwrap();
        assert_eq!(link.push(&outbox, frame(3)), Err(SendError::QueueFull));
        while rx.try_recv().is_some() {}
        link.connected(&outbox, CodecKind::Bincode, 1 << 20);
        let refused = SessionReply {
            reason: "unknown or expired session".into(),
            ..SessionReply::default()
        };
        assert!(matches!(
            link.answer(&refused, true, &outbox),
            Answer::Refused(_)
        ));
        link.connected(&outbox, CodecKind::Bincode, 1 << 20);
        let fresh = SessionReply {
            token: "v".into(),
            ..SessionReply::default()
        };
        match link.answer(&fresh, false, &outbox) {
            Answer::Started { lost, reason } => {
                assert_eq!(lost, 2);
                assert_eq!(reason, "unknown or expired session");
            }
            other => panic!("{other:?}"),
        }
    }
}
