//! The connection task of a client that reconnects: one connection after another, with
//! backoff, until the client closes, the server refuses it or the attempts run out; and, with
//! resumable sessions, the hello, the answer and the acknowledgements of each connection.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::addr::Target;
use super::conn::{self, Connection, Shared, TaskConfig, RECONNECTING};
use super::link::{Answer, Link};
use crate::codec::{Codec, Envelope, RawMessage};
use crate::connection::transport::{self, FrameReader, FrameWriter};
use crate::connection::writer::{write_outbox, WriteEnd};
use crate::connection::OutboxReceiver;
use crate::error::FrameError;
use crate::message::{Connected, Disconnected, ErrorMessage, HeartbeatAck, Message, SocketConnect};
use crate::session::{random_unit, Backoff, SessionAck, SessionReply, SessionStarted};

/// How one connection ended.
enum End {
    /// The client closed; the task ends with this reason.
    Closed(String),
    /// The server refused the client (an `error` before any greeting, then the end): the task
    /// ends with this reason.
    Refused(String),
    /// The connection was lost; the client reconnects.
    Lost {
        reason: String,
        /// Whether the server had greeted the connection (or resumed its session).
        greeted: bool,
        /// Reconnect at once: the session was refused, and a new one starts.
        again_now: bool,
    },
}

/// The whole life of a reconnecting client; `first` is a connection already made
/// ([`AsyncClient`](super::AsyncClient) makes its first one before it returns).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    target: Target,
    label: String,
    shared: Arc<Shared>,
    mut outbox: OutboxReceiver,
    events: mpsc::Sender<RawMessage>,
    config: TaskConfig,
    backoff: Backoff,
    mut first: Option<Connection>,
) -> String {
    let codec = shared.codec;
    let closing = outbox.closing_token().clone();
    let mut failures: u32 = 0;
    let reason = loop {
        let stream = match first.take() {
            Some(stream) => stream,
            None => {
                if closing.is_cancelled() {
                    break "closed by client".to_owned();
                }
                let result = tokio::select! {
                    result = conn::connect(&target, &label, config.connect_timeout, config.tcp_keepalive, shared.max_frame_len, config.tls.as_ref()) => Some(result),
                    () = closing.cancelled() => None,
                };
                match result {
                    None => break "closed by client".to_owned(),
                    Some(Ok(stream)) => stream,
                    Some(Err(error)) => {
                        failures += 1;
                        tracing::debug!(target: "repod::client", addr = %label, %error, failures, "reconnect failed");
                        if backoff.attempts_limit().is_some_and(|max| failures >= max) {
                            let reason =
                                format!("gave up reconnecting after {failures} attempts: {error}");
                            conn::emit(&events, codec, &ErrorMessage::new(reason.clone())).await;
                            break reason;
                        }
                        if !pause(&backoff, failures - 1, &closing).await {
                            break "closed by client".to_owned();
                        }
                        continue;
                    }
                }
            }
        };
        tracing::debug!(target: "repod::client", addr = %label, "connected");
        shared.mark_connected();
        conn::emit(&events, codec, &SocketConnect).await;
        let end = connection(stream, &shared, &mut outbox, &events, config.clone()).await;
        if let Some(link) = &shared.link {
            link.detach();
        }
        // Frames queued for the lost connection: the session keeps them for the next one;
        // without a session they are lost with the connection.
        while outbox.try_recv().is_some() {}
        let (reason, greeted, again_now) = match end {
            End::Closed(reason) | End::Refused(reason) => break reason,
            End::Lost {
                reason,
                greeted,
                again_now,
            } => (reason, greeted, again_now),
        };
        if closing.is_cancelled() {
            break "closed by client".to_owned();
        }
        shared.set_state(RECONNECTING);
        tracing::debug!(target: "repod::client", addr = %label, %reason, "connection lost: reconnecting");
        let session = shared.link.as_ref().is_some_and(Link::has_session);
        let lost = Disconnected {
            reason: reason.clone(),
        };
        if session {
            conn::emit(&events, codec, &lost).await;
        } else {
            // No session to resume: the replies to the requests in flight will never come.
            shared.requests.fail_all();
            emit_lost(&events, &shared, &lost).await;
        }
        if greeted || again_now {
            failures = 0;
            continue;
        }
        failures += 1;
        if backoff.attempts_limit().is_some_and(|max| failures >= max) {
            break format!("gave up reconnecting after {failures} attempts: {reason}");
        }
        if !pause(&backoff, failures - 1, &closing).await {
            break "closed by client".to_owned();
        }
    };
    shared.mark_closed();
    shared.requests.close();
    drop(outbox);
    tracing::debug!(target: "repod::client", addr = %label, %reason, "disconnected");
    conn::emit_final(&events, codec, &reason).await;
    reason
}

/// Waits out a backoff delay; `false` if the client closed meanwhile.
async fn pause(backoff: &Backoff, attempt: u32, closing: &CancellationToken) -> bool {
    let delay = backoff.delay(attempt, random_unit());
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = closing.cancelled() => false,
    }
}

/// Raises an event marked so that `pump` fails the requests still waiting before it.
async fn emit_lost<M: Message>(events: &mpsc::Sender<RawMessage>, shared: &Shared, msg: &M) {
    if let Ok(raw) = RawMessage::from_message(shared.codec, msg) {
        let _ = events.send(raw.with_envelope(Envelope::Lost)).await;
    }
}

/// Drives one connection until it ends.
async fn connection(
    connection: Connection,
    shared: &Shared,
    outbox: &mut OutboxReceiver,
    events: &mpsc::Sender<RawMessage>,
    config: TaskConfig,
) -> End {
    match connection {
        Connection::Tcp(stream) => {
            let halves = transport::tcp(stream, shared.max_frame_len);
            connection_on(halves, shared, outbox, events, config).await
        }
        #[cfg(feature = "websocket")]
        Connection::Ws(reader, writer) => {
            connection_on((reader, writer), shared, outbox, events, config).await
        }
        #[cfg(feature = "tls")]
        Connection::Tls(reader, writer) => {
            connection_on((reader, writer), shared, outbox, events, config).await
        }
        #[cfg(all(feature = "tls", feature = "websocket"))]
        Connection::Wss(reader, writer) => {
            connection_on((reader, writer), shared, outbox, events, config).await
        }
    }
}

/// [`connection`] over a transport's halves.
async fn connection_on<R: FrameReader, W: FrameWriter>(
    (reader, writer): (R, W),
    shared: &Shared,
    outbox: &mut OutboxReceiver,
    events: &mpsc::Sender<RawMessage>,
    config: TaskConfig,
) -> End {
    let asked_resume = match &shared.link {
        Some(link) => link.connected(&shared.outbox, shared.codec, shared.max_frame_len),
        None => false,
    };
    let heartbeat = async {
        match config.heartbeat {
            Some(period) => {
                let mut ticks =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    shared.beat();
                }
            }
            None => std::future::pending().await,
        }
    };
    let closing = outbox.closing_token().clone();
    let close_deadline = async {
        closing.cancelled().await;
        tokio::time::sleep(config.close_timeout).await;
    };
    let read = read_loop(reader, events, shared, config.resume, asked_resume);
    let write = write_outbox(writer, outbox, config.close_timeout);
    tokio::pin!(close_deadline, read, write, heartbeat);
    tokio::select! {
        () = &mut heartbeat => unreachable!("the heartbeat never ends"),
        end = &mut read => {
            if closing.is_cancelled() {
                End::Closed("closed by client".to_owned())
            } else {
                end
            }
        }
        end = &mut write => match end {
            WriteEnd::Closed => {
                // As for a client that does not reconnect: read until the server closes too.
                tokio::select! {
                    _ = &mut read => {}
                    () = &mut close_deadline => {}
                }
                End::Closed("closed by client".to_owned())
            }
            WriteEnd::Reset { timed_out: true } => End::Closed(format!(
                "closed by client (flush timed out after {:?})",
                config.close_timeout
            )),
            WriteEnd::Reset { timed_out: false } | WriteEnd::Dropped => {
                End::Closed("closed by client".to_owned())
            }
            WriteEnd::Failed(error) => End::Lost {
                reason: conn::io_reason(&error),
                greeted: false,
                again_now: false,
            },
        },
    }
}

/// Reads one connection's frames into events, answering the session's bookkeeping.
async fn read_loop<R: FrameReader>(
    mut reader: R,
    events: &mpsc::Sender<RawMessage>,
    shared: &Shared,
    resumes: bool,
    asked_resume: bool,
) -> End {
    let codec = shared.codec;
    let max = shared.max_frame_len;
    // The first frame after a hello answers it, from a server that resumes sessions.
    let mut awaiting = resumes;
    let mut greeted = false;
    let mut refusal: Option<String> = None;
    let lost = |reason: String, greeted: bool, refusal: Option<String>| match refusal {
        Some(error) if !greeted => End::Refused(error),
        _ => End::Lost {
            reason,
            greeted,
            again_now: false,
        },
    };
    loop {
        let payload = match reader.next_frame().await {
            None => return lost("closed by peer".to_owned(), greeted, refusal),
            Some(Ok(payload)) => payload,
            Some(Err(FrameError::Io(error))) => {
                return lost(conn::io_reason(&error), greeted, refusal)
            }
            Some(Err(error)) => {
                tracing::warn!(target: "repod::client", %error, "broken frame from server");
                conn::emit(events, codec, &ErrorMessage::new(error.to_string())).await;
                return lost(format!("protocol error: {error}"), greeted, refusal);
            }
        };
        shared.outbox.note_received();
        let decoded = codec.decode_raw(payload);
        if awaiting {
            awaiting = false;
            if let Ok(raw) = &decoded {
                if raw.action() == SessionReply::ACTION {
                    let Ok(reply) = raw.decode::<SessionReply>() else {
                        return lost("malformed session reply".to_owned(), greeted, refusal);
                    };
                    let Some(link) = &shared.link else { continue };
                    match link.answer(&reply, asked_resume, &shared.outbox) {
                        Answer::Resumed => {
                            tracing::debug!(target: "repod::client", "session resumed");
                            greeted = true;
                            let started = SessionStarted {
                                resumed: true,
                                lost: 0,
                                reason: String::new(),
                            };
                            conn::emit(events, codec, &started).await;
                            conn::emit(events, codec, &Connected).await;
                        }
                        Answer::Started { lost, reason } => {
                            tracing::debug!(target: "repod::client", lost, %reason, "new session");
                            let started = SessionStarted {
                                resumed: false,
                                lost,
                                reason: reason.clone(),
                            };
                            if reason.is_empty() {
                                conn::emit(events, codec, &started).await;
                            } else {
                                emit_lost(events, shared, &started).await;
                            }
                        }
                        Answer::Refused(reason) => {
                            tracing::debug!(target: "repod::client", %reason, "session not resumed: starting a new one");
                            // Their replies went with the session.
                            shared.requests.fail_all();
                            return End::Lost {
                                reason: format!("session not resumed: {reason}"),
                                greeted: false,
                                again_now: true,
                            };
                        }
                    }
                    continue;
                }
            }
            if let Some(link) = &shared.link {
                let lost = link.no_sessions();
                tracing::debug!(target: "repod::client", lost, "the server does not resume sessions");
            }
        }
        if let Some(link) = &shared.link {
            if let Ok(raw) = &decoded {
                if resumes && raw.action() == SessionAck::ACTION {
                    if let Ok(ack) = raw.decode::<SessionAck>() {
                        link.acked(ack.recv);
                    }
                    continue;
                }
            }
            if let Some(ack) = link.received(codec, max) {
                let _ = shared.outbox.push(ack);
            }
        }
        let raw = match decoded {
            Ok(raw) => raw,
            Err(error) => {
                tracing::warn!(target: "repod::client", %error, "undecodable message from server");
                let text = format!("undecodable message from server: {error}");
                conn::emit(events, codec, &ErrorMessage::new(text)).await;
                continue;
            }
        };
        if raw.action() == HeartbeatAck::ACTION {
            if let Ok(ack) = raw.decode::<HeartbeatAck>() {
                shared.acked(ack);
            }
            continue;
        }
        if raw.action() == Connected::ACTION {
            greeted = true;
        } else if !greeted && raw.action() == ErrorMessage::ACTION {
            refusal = Some(
                raw.decode::<ErrorMessage>()
                    .map(|e| e.message)
                    .unwrap_or_else(|_| "refused by the server".to_owned()),
            );
        }
        let raw = match raw.reply_id() {
            Some(_) => match shared.requests.complete(raw) {
                Some(raw) => raw,
                None => continue,
            },
            None => raw,
        };
        conn::deliver(events, raw, &reader, shared).await;
    }
}
