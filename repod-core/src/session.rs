//! Resumable sessions: the handshake messages, session tokens and the reconnect backoff.
//!
//! Both sides opt in: a server with [`ServerBuilder::resume`](crate::server::ServerBuilder::resume)
//! and a client with [`ClientBuilder::resume`](crate::client::ClientBuilder::resume). Peers that
//! do not opt in never see any of these messages.
//!
//! # Wire
//!
//! An opted-in client writes [`SessionHello`] as the first frame of every connection: an empty
//! token asks for a new session, a token asks to resume one. A server that resumes sessions
//! answers with [`SessionReply`] as its first frame on that connection; a server that does not
//! greets with `connected` (or refuses with `error`) instead, and the client carries on without a
//! session.
//!
//! After the reply, each side numbers the frames it sends in the session, implicitly: the first
//! frame after the reply (server) or after the hello (client) is 1, and so on, across every
//! connection of the session. [`SessionAck`] frames say how many frames a side has received so
//! far; they, the hello, the reply and [`SessionEnd`] are not numbered. Each side keeps the frames
//! the other has not acknowledged, in a bounded buffer, and sends again, after a resume, those the
//! other side says it has not received.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::codec::{Codec, CodecKind, RawMessage};
use crate::error::CodecError;
use crate::message::Message;

/// `{"action": "_session", "token": "…", "recv": N}`: the first frame of an opted-in client's
/// connection. An empty `token` asks for a new session; a token asks to resume that session, and
/// `recv` says how many of the session's frames the client has received.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionHello {
    /// The token of the session to resume; empty for a new session.
    pub token: String,
    /// How many frames of the session the client has received.
    pub recv: u64,
}

impl Message for SessionHello {
    const ACTION: &'static str = "_session";
}

/// `{"action": "_session_ok", …}`: the server's answer to a [`SessionHello`], its first frame
/// on that connection.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionReply {
    /// The token to present on the next resume; empty if the session could not be resumed (the
    /// connection then closes, and the client starts a new session).
    pub token: String,
    /// Whether the session the client asked for was resumed.
    pub resumed: bool,
    /// How many of the session's frames the server has received from the client.
    pub recv: u64,
    /// Why a resume was refused; empty otherwise.
    pub reason: String,
}

impl Message for SessionReply {
    const ACTION: &'static str = "_session_ok";
}

/// `{"action": "_session_ack", "recv": N}`: how many frames of the session the sender has
/// received so far. The other side forgets the frames up to `recv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionAck {
    /// How many frames of the session the sender has received.
    pub recv: u64,
}

impl Message for SessionAck {
    const ACTION: &'static str = "_session_ack";
}

/// `{"action": "_session_end"}`: the client closes its session on purpose; the server closes
/// the channel when the connection ends instead of keeping it for a resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionEnd;

impl Message for SessionEnd {
    const ACTION: &'static str = "_session_end";
}

/// `{"action": "session", "resumed": …, "lost": …, "reason": "…"}`: raised by a client that
/// [resumes sessions](crate::client::ClientBuilder::resume) each time a connection starts a
/// session or resumes one, right after `socketConnect` and before `connected`.
///
/// `resumed` tells a resumed session (the same channel on the server, nothing lost) from a new
/// one. A new session that replaces a lost one (the server restarted, the grace period ended,
/// the replay buffer overflowed) says why in `reason`, and `lost` counts the messages sent in
/// the old session that the server never received; the requests waiting for replies failed with
/// [`RequestError::Disconnected`](crate::RequestError::Disconnected) just before it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionStarted {
    /// Whether the session was resumed, rather than started anew.
    pub resumed: bool,
    /// Messages of a lost session that never reached the server.
    pub lost: u64,
    /// Why the session before was not resumed; empty for a resumed session or the first one.
    pub reason: String,
}

impl Message for SessionStarted {
    const ACTION: &'static str = "session";
}

/// The length of a session token in bytes (256 bits of the system's random source).
pub const TOKEN_LEN: usize = 32;

/// A session token: a secret drawn from the operating system's random source.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(pub(crate) [u8; TOKEN_LEN]);

impl Token {
    /// A new random token. Panics only if the system has no random source.
    pub(crate) fn generate() -> Token {
        let mut bytes = [0u8; TOKEN_LEN];
        getrandom::fill(&mut bytes).expect("the system's random source is unavailable");
        Token(bytes)
    }

    /// The token as it travels: 64 lowercase hexadecimal digits.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(TOKEN_LEN * 2);
        for byte in self.0 {
            out.push(DIGITS[usize::from(byte >> 4)] as char);
            out.push(DIGITS[usize::from(byte & 15)] as char);
        }
        out
    }

    /// Reads a token in the form of [`to_hex`](Token::to_hex); `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Token> {
        let text = text.as_bytes();
        if text.len() != TOKEN_LEN * 2 {
            return None;
        }
        let mut bytes = [0u8; TOKEN_LEN];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            bytes[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
        }
        Some(Token(bytes))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Debug for Token {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

/// What an opted-in client asks for in its first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloRequest {
    /// A new session.
    New,
    /// Resume the session of this token; the client has received `recv` of its frames.
    Resume {
        /// The session's token.
        token: Token,
        /// How many frames of the session the client has received.
        recv: u64,
    },
}

/// Reads the first frame of a connection: `Ok(None)` if it is not a session hello (an ordinary
/// first message, to be handled as such), `Ok(Some(_))` for a hello, `Err` for a hello that is
/// malformed (its body does not decode, or its token is not a token).
pub fn parse_hello(codec: CodecKind, payload: Bytes) -> Result<Option<HelloRequest>, CodecError> {
    let raw = codec.decode_raw(payload)?;
    parse_hello_raw(&raw)
}

/// [`parse_hello`] for a message whose action is already read.
pub fn parse_hello_raw(raw: &RawMessage) -> Result<Option<HelloRequest>, CodecError> {
    if raw.action() != SessionHello::ACTION
        || raw.reply_id().is_some()
        || raw.request_id().is_some()
    {
        return Ok(None);
    }
    let hello: SessionHello = raw.decode()?;
    if hello.token.is_empty() {
        return Ok(Some(HelloRequest::New));
    }
    match Token::from_hex(&hello.token) {
        Some(token) => Ok(Some(HelloRequest::Resume {
            token,
            recv: hello.recv,
        })),
        None => Err(CodecError::Body {
            action: SessionHello::ACTION.to_owned(),
            reason: "the session token is not 64 lowercase hexadecimal digits".to_owned(),
        }),
    }
}

/// How a client waits between reconnect attempts: exponential backoff with jitter and a cap.
///
/// The n-th attempt in a row (counting from 0) waits `initial × factorⁿ`, at most `max`, less a
/// random share of up to `jitter` of it (so clients cut off together do not all come back
/// together). The first attempt after a connection that was established waits nothing; a
/// connection counts as established once the server greeted it.
///
/// ```
/// use std::time::Duration;
/// use repod_core::session::Backoff;
///
/// let backoff = Backoff::new()
///     .initial(Duration::from_millis(200))
///     .max(Duration::from_secs(10))
///     .max_attempts(Some(20));
/// assert_eq!(backoff.delay(0, 0.0), Duration::from_millis(200));
/// assert_eq!(backoff.delay(1, 0.0), Duration::from_millis(400));
/// assert_eq!(backoff.delay(30, 0.0), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    factor: f64,
    jitter: f64,
    max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

impl Backoff {
    /// 100 ms, doubling, at most 5 s, with up to half of each delay taken off at random, and
    /// no limit on the attempts.
    pub fn new() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            factor: 2.0,
            jitter: 0.5,
            max_attempts: None,
        }
    }

    /// The delay before the first attempt after a failure. The default is 100 ms.
    pub fn initial(mut self, delay: Duration) -> Self {
        self.initial = delay;
        self
    }

    /// The longest delay. The default is 5 seconds.
    pub fn max(mut self, delay: Duration) -> Self {
        self.max = delay;
        self
    }

    /// How much each delay grows over the last (at least 1). The default is 2.
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = if factor.is_finite() {
            factor.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// The largest share of a delay taken off at random, from 0 (none) to 1. The default is 0.5.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// How many failed attempts in a row end the client (`disconnected` with a reason saying
    /// so); `None` never gives up. The default is `None`.
    pub fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The limit set with [`max_attempts`](Backoff::max_attempts).
    pub fn attempts_limit(&self) -> Option<u32> {
        self.max_attempts
    }

    /// The delay before attempt `attempt` (0 for the first after a failure), with `random` in
    /// `[0, 1)` choosing the share of jitter taken off.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let base = self.initial.as_secs_f64() * self.factor.powi(attempt.min(64) as i32);
        let capped = base.min(self.max.as_secs_f64()).max(0.0);
        let cut = capped * self.jitter * random.clamp(0.0, 1.0);
        Duration::try_from_secs_f64(capped - cut).unwrap_or(self.max)
    }
}

/// A number in `[0, 1)` from the system's random source, for jitter.
pub(crate) fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_differ() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a, b);
        assert_eq!(Token::from_hex(&a.to_hex()), Some(a));
        assert_eq!(Token::from_hex("00"), None);
        assert_eq!(Token::from_hex(&"G".repeat(64)), None);
        assert_eq!(
            Token::from_hex(&"A".repeat(64)),
            None,
            "uppercase is refused"
        );
        assert_eq!(format!("{a:?}"), "Token(…)");
    }

    #[test]
    fn hellos_parse_in_both_codecs() {
        for codec in [CodecKind::Bincode, CodecKind::MsgPack] {
            let token = Token::generate();
            let new = codec
                .encode(&SessionHello::default(), 1 << 20)
                .unwrap()
                .slice(4..);
            assert_eq!(parse_hello(codec, new).unwrap(), Some(HelloRequest::New));
            let resume = codec
                .encode(
                    &SessionHello {
                        token: token.to_hex(),
                        recv: 7,
                    },
                    1 << 20,
                )
                .unwrap()
                .slice(4..);
            assert_eq!(
                parse_hello(codec, resume).unwrap(),
                Some(HelloRequest::Resume { token, recv: 7 })
            );
            let other = codec
                .encode(&SessionAck { recv: 1 }, 1 << 20)
                .unwrap()
                .slice(4..);
            assert_eq!(parse_hello(codec, other).unwrap(), None);
            let bad = codec
                .encode(
                    &SessionHello {
                        token: "x".into(),
                        recv: 0,
                    },
                    1 << 20,
                )
                .unwrap()
                .slice(4..);
            assert!(parse_hello(codec, bad).is_err());
        }
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let b = Backoff::new();
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(100));
        assert_eq!(b.delay(2, 0.0), Duration::from_millis(400));
        assert_eq!(b.delay(100, 0.0), Duration::from_secs(5));
        assert_eq!(
            b.delay(0, 0.999_999),
            Duration::from_secs_f64(0.1 - 0.05 * 0.999_999)
        );
        let r = random_unit();
        assert!((0.0..1.0).contains(&r));
    }
}
