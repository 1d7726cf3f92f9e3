//! The bytes one node publishes to the others: a fixed header, then a body by kind.
//!
//! ```text
//! version u8 (1) | codec u8 | origin node u32 | origin nonce u64 | kind u8 | body
//! ```
//!
//! Integers are big-endian. Group names and ids come first in a body; a frame, when there is
//! one, is the rest of the message, exactly as it goes to a client (length prefix included).
//! Decoding checks every length and never panics: a message that does not parse is dropped.

use bytes::{BufMut, Bytes};

use crate::codec::CodecKind;
use crate::frame::HEADER_LEN;
use crate::server::ChannelId;

const VERSION: u8 = 1;
/// Bytes before the body.
pub(super) const HEADER: usize = 1 + 1 + 4 + 8 + 1;

const ALL: u8 = 1;
const GROUP: u8 = 2;
const DIRECT: u8 = 3;
const JOINED: u8 = 4;
const LEFT: u8 = 5;
const LEFT_ALL: u8 = 6;
const SNAPSHOT: u8 = 7;
const HEARTBEAT: u8 = 8;
const SYNC: u8 = 9;
const BYE: u8 = 10;

pub(super) fn codec_byte(codec: CodecKind) -> u8 {
    match codec {
        CodecKind::Bincode => 0,
        CodecKind::MsgPack => 1,
    }
}

/// Who sends: the node number, its instance nonce, and the codec of its frames.
#[derive(Debug, Clone, Copy)]
pub(super) struct Origin {
    pub(super) codec: u8,
    pub(super) node: u32,
    pub(super) nonce: u64,
}

/// What another node said.
#[derive(Debug)]
pub(super) enum Body {
    All {
        except: Option<ChannelId>,
        frame: Bytes,
    },
    Group {
        name: String,
        except: Option<ChannelId>,
        frame: Bytes,
    },
    Direct {
        ids: Vec<ChannelId>,
        frame: Bytes,
    },
    Joined(ChannelId, String),
    Left(ChannelId, String),
    LeftAll(ChannelId),
    Snapshot(Vec<(ChannelId, String)>),
    Heartbeat,
    /// "Publish your memberships": `0` asks every node, another number only that node.
    Sync(u32),
    Bye,
}

impl Body {
    /// Whether this carries a frame for clients (rather than the cluster's own bookkeeping).
    pub(super) fn is_frame(&self) -> bool {
        matches!(
            self,
            Body::All { .. } | Body::Group { .. } | Body::Direct { .. }
        )
    }
}

/// A message from another node, parsed.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(super) origin: Origin,
    pub(super) body: Body,
}

fn header(origin: Origin, kind: u8, extra: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + extra);
    out.put_u8(VERSION);
    out.put_u8(origin.codec);
    out.put_u32(origin.node);
    out.put_u64(origin.nonce);
    out.put_u8(kind);
    out
}

fn id_or_zero(id: Option<ChannelId>) -> u64 {
    id.map_or(0, ChannelId::get)
}

/// The header of a broadcast; the frame follows.
pub(super) fn all(origin: Origin, except: Option<ChannelId>) -> Vec<u8> {
    let mut out = header(origin, ALL, 8);
    out.put_u64(id_or_zero(except));
    out
}

/// The header of a group send; the frame follows.
pub(super) fn group(origin: Origin, name: &str, except: Option<ChannelId>) -> Vec<u8> {
    let mut out = header(origin, GROUP, 12 + name.len());
    out.put_u64(id_or_zero(except));
    out.put_u32(name.len() as u32);
    out.put_slice(name.as_bytes());
    out
}

/// The header of a send to channels of one node; the frame follows.
pub(super) fn direct(origin: Origin, ids: &[ChannelId]) -> Vec<u8> {
    let mut out = header(origin, DIRECT, 4 + 8 * ids.len());
    out.put_u32(ids.len() as u32);
    for id in ids {
        out.put_u64(id.get());
    }
    out
}

pub(super) fn joined(origin: Origin, id: ChannelId, name: &str) -> Vec<u8> {
    let mut out = header(origin, JOINED, 8 + name.len());
    out.put_u64(id.get());
    out.put_slice(name.as_bytes());
    out
}

pub(super) fn left(origin: Origin, id: ChannelId, name: &str) -> Vec<u8> {
    let mut out = header(origin, LEFT, 8 + name.len());
    out.put_u64(id.get());
    out.put_slice(name.as_bytes());
    out
}

pub(super) fn left_all(origin: Origin, id: ChannelId) -> Vec<u8> {
    let mut out = header(origin, LEFT_ALL, 8);
    out.put_u64(id.get());
    out
}

/// Every membership of the origin's channels.
pub(super) fn snapshot<'a>(
    origin: Origin,
    entries: impl IntoIterator<Item = (ChannelId, &'a str)>,
) -> Vec<u8> {
    let mut out = header(origin, SNAPSHOT, 64);
    let count_at = out.len();
    out.put_u32(0);
    let mut count: u32 = 0;
    for (id, name) in entries {
        out.put_u64(id.get());
        out.put_u32(name.len() as u32);
        out.put_slice(name.as_bytes());
        count += 1;
    }
    out[count_at..count_at + 4].copy_from_slice(&count.to_be_bytes());
    out
}

pub(super) fn heartbeat(origin: Origin) -> Vec<u8> {
    header(origin, HEARTBEAT, 0)
}

pub(super) fn sync(origin: Origin, target: u32) -> Vec<u8> {
    let mut out = header(origin, SYNC, 4);
    out.put_u32(target);
    out
}

pub(super) fn bye(origin: Origin) -> Vec<u8> {
    header(origin, BYE, 0)
}

/// A cursor over a message that fails instead of panicking.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    fn id(&mut self) -> Option<ChannelId> {
        self.u64().map(ChannelId::new)
    }

    fn except(&mut self) -> Option<Option<ChannelId>> {
        self.u64().map(|id| (id != 0).then_some(ChannelId::new(id)))
    }

    fn name(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).ok()
    }

    fn rest_name(&mut self) -> Option<String> {
        let bytes = std::mem::take(&mut self.0);
        String::from_utf8(bytes.to_vec()).ok()
    }

    /// The rest as one whole frame: its length prefix must match what follows.
    fn frame(&mut self) -> Option<Bytes> {
        let rest = std::mem::take(&mut self.0);
        let len = u32::from_be_bytes(rest.get(..HEADER_LEN)?.try_into().ok()?) as usize;
        (rest.len() - HEADER_LEN == len).then(|| Bytes::copy_from_slice(rest))
    }
}

/// Parses a message; `None` for anything malformed or of another version.
pub(super) fn decode(msg: &[u8]) -> Option<Envelope> {
    let mut r = Reader(msg);
    if r.u8()? != VERSION {
        return None;
    }
    let origin = Origin {
        codec: r.u8()?,
        node: r.u32()?,
        nonce: r.u64()?,
    };
    let body = match r.u8()? {
        ALL => Body::All {
            except: r.except()?,
            frame: r.frame()?,
        },
        GROUP => Body::Group {
            except: r.except()?,
            name: r.name()?,
            frame: r.frame()?,
        },
        DIRECT => {
            let count = r.u32()? as usize;
            // Bounded by the message itself, whatever the count claims.
            let mut ids = Vec::with_capacity(count.min(r.0.len() / 8));
            for _ in 0..count {
                ids.push(r.id()?);
            }
            Body::Direct {
                ids,
                frame: r.frame()?,
            }
        }
        JOINED => Body::Joined(r.id()?, r.rest_name()?),
        LEFT => Body::Left(r.id()?, r.rest_name()?),
        LEFT_ALL => Body::LeftAll(r.id()?),
        SNAPSHOT => {
            let count = r.u32()? as usize;
            let mut entries = Vec::with_capacity(count.min(r.0.len() / 12));
            for _ in 0..count {
                entries.push((r.id()?, r.name()?));
            }
            Body::Snapshot(entries)
        }
        HEARTBEAT => Body::Heartbeat,
        SYNC => Body::Sync(r.u32()?),
        BYE => Body::Bye,
        _ => return None,
    };
    Some(Envelope { origin, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: Origin = Origin {
        codec: 1,
        node: 7,
        nonce: 0xdead_beef,
    };

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    fn with_frame(mut head: Vec<u8>, payload: &[u8]) -> Vec<u8> {
        head.extend_from_slice(&frame(payload));
        head
    }

    #[test]
    fn every_kind_round_trips() {
        let id = ChannelId::new(7 << 32 | 3);
        let msg = decode(&with_frame(all(ORIGIN, Some(id)), b"hi")).unwrap();
        assert_eq!(
            (msg.origin.node, msg.origin.nonce, msg.origin.codec),
            (7, 0xdead_beef, 1)
        );
        match msg.body {
            Body::All { except, frame: f } => {
                assert_eq!(except, Some(id));
                assert_eq!(&f[..], &frame(b"hi")[..]);
            }
            other => panic!("{other:?}"),
        }
        match decode(&with_frame(group(ORIGIN, "room", None), b"x"))
            .unwrap()
            .body
        {
            Body::Group {
                name,
                except,
                frame: f,
            } => {
                assert_eq!((name.as_str(), except), ("room", None));
                assert_eq!(&f[..], &frame(b"x")[..]);
            }
            other => panic!("{other:?}"),
        }
        let ids = [ChannelId::new(1), id];
        match decode(&with_frame(direct(ORIGIN, &ids), b"")).unwrap().body {
            Body::Direct { ids: got, .. } => assert_eq!(got, ids),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(decode(&joined(ORIGIN, id, "r")).unwrap().body, Body::Joined(i, n) if i == id && n == "r")
        );
        assert!(
            matches!(decode(&left(ORIGIN, id, "r")).unwrap().body, Body::Left(i, n) if i == id && n == "r")
        );
        assert!(matches!(decode(&left_all(ORIGIN, id)).unwrap().body, Body::LeftAll(i) if i == id));
        match decode(&snapshot(ORIGIN, [(id, "a"), (id, "b")]))
            .unwrap()
            .body
        {
            Body::Snapshot(entries) => {
                assert_eq!(entries, [(id, "a".to_owned()), (id, "b".to_owned())])
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode(&heartbeat(ORIGIN)).unwrap().body,
            Body::Heartbeat
        ));
        assert!(matches!(
            decode(&sync(ORIGIN, 3)).unwrap().body,
            Body::Sync(3)
        ));
        assert!(matches!(decode(&bye(ORIGIN)).unwrap().body, Body::Bye));
    }

    #[test]
    fn malformed_messages_are_refused() {
        let good = with_frame(group(ORIGIN, "room", None), b"abc");
        // Every truncation fails (the frame's length prefix no longer matches).
        for len in 0..good.len() {
            assert!(decode(&good[..len]).is_none(), "prefix of {len} bytes");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(decode(&long).is_none());
        let mut version = good.clone();
        version[0] = 2;
        assert!(decode(&version).is_none());
        let mut kind = heartbeat(ORIGIN);
        kind[HEADER - 1] = 99;
        assert!(decode(&kind).is_none());
        // A count far beyond the message allocates nothing big and fails.
        let mut huge = header(ORIGIN, SNAPSHOT, 4);
        huge.put_u32(u32::MAX);
        assert!(decode(&huge).is_none());
    }
}
