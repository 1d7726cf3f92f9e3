//! The MessagePack codec, byte-compatible with Python repod.

use std::cell::RefCell;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::envelope::{Envelope, REPLY_ACTION, REQUEST_ID_KEY};
use super::{Codec, CodecKind, RawMessage};
use crate::error::CodecError;

/// The MessagePack codec, compatible with Python repod and PodSixNet-style peers.
///
/// The payload is one MessagePack map: the `"action"` key holds the action name, the other keys
/// are the message's fields, in declaration order, after the action:
///
/// ```text
/// {"action": "chat", "text": "Hello"}
///
/// 82                    map of 2 entries
/// a6 61 63 74 69 6f 6e  "action"
/// a4 63 68 61 74        "chat"
/// a4 74 65 78 74        "text"
/// a5 48 65 6c 6c 6f     "Hello"
/// ```
///
/// These are the bytes Python's `msgpack.packb(d, use_bin_type=True)` produces for the same
/// dictionary. Integers take their smallest encoding, `f64` fields are float64 (Python floats),
/// `f32` fields float32. Bodies must serialize as a map (a struct with named fields) or be a
/// unit struct, which encodes as a bare `{"action": …}`.
///
/// Decoding accepts what Python sends: any map; a map without `"action"` is a message with the
/// empty action `""` (it goes to the fallback handler). Keys the body type does not know are
/// ignored, for a unit struct too (`{"action": "ping", "seq": 1}` decodes into `struct Ping;`).
/// The whole payload is checked before it
/// is used: one value, nothing after it, no declared length beyond the bytes present, and at
/// most [`MAX_DEPTH`] levels of nesting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsgPack;

/// How deeply arrays and maps may nest in a MessagePack payload.
pub const MAX_DEPTH: usize = 64;

const NAME: &str = "msgpack";

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Codec for MsgPack {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kind(&self) -> CodecKind {
        CodecKind::MsgPack
    }

    fn encode_payload<T: Serialize + ?Sized>(
        &self,
        action: &str,
        body: &T,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        encode_map(action, None, body, dst)
    }

    fn decode_raw(&self, payload: Bytes) -> Result<RawMessage, CodecError> {
        let keys = scan(&payload)?;
        let action = keys.action.clone().unwrap_or(0..0);
        let envelope = match keys.rid {
            None => Envelope::Plain,
            Some(rid) => {
                let is_reply = &payload[action.clone()] == REPLY_ACTION.as_bytes();
                match (is_reply, keys.error, keys.ok) {
                    (true, Some(error), _) => Envelope::Reply {
                        rid,
                        outcome: Err(error),
                    },
                    (true, None, Some(ok)) => Envelope::Reply {
                        rid,
                        outcome: Ok(ok),
                    },
                    _ => Envelope::Request(rid),
                }
            }
        };
        Ok(RawMessage::from_parts(CodecKind::MsgPack, payload, action, 0).with_envelope(envelope))
    }
}

/// Encodes a message's map: `"action"`, then `"rid"` for a request, then the body's fields.
pub(super) fn encode_map<T: Serialize + ?Sized>(
    action: &str,
    rid: Option<u64>,
    body: &T,
    dst: &mut BytesMut,
) -> Result<(), CodecError> {
    let encode_err = |reason: String| CodecError::Encode {
        action: action.to_owned(),
        reason,
    };
    SCRATCH.with(|scratch| {
        // A re-entrant call (a Serialize impl that encodes a message) gets its own buffer.
        let mut own = Vec::new();
        let mut guard = scratch.try_borrow_mut();
        let buf: &mut Vec<u8> = match guard.as_deref_mut() {
            Ok(buf) => buf,
            Err(_) => &mut own,
        };
        buf.clear();
        rmp_serde::encode::write_named(buf, body).map_err(|e| encode_err(e.to_string()))?;
        let (fields, header_len) = match map_header(buf) {
            Some(found) => found,
            None => {
                return Err(encode_err(
                    "a msgpack message body must serialize as a map (a struct with named \
                     fields) or be a unit struct"
                        .to_owned(),
                ))
            }
        };
        let extra = 1 + u32::from(rid.is_some());
        let mut w = BytesMutWriter(dst);
        rmp::encode::write_map_len(&mut w, fields.saturating_add(extra))
            .map_err(|e| encode_err(e.to_string()))?;
        rmp::encode::write_str(&mut w, "action").map_err(|e| encode_err(e.to_string()))?;
        rmp::encode::write_str(&mut w, action).map_err(|e| encode_err(e.to_string()))?;
        if let Some(rid) = rid {
            rmp::encode::write_str(&mut w, REQUEST_ID_KEY)
                .map_err(|e| encode_err(e.to_string()))?;
            rmp::encode::write_uint(&mut w, rid).map_err(|e| encode_err(e.to_string()))?;
        }
        dst.extend_from_slice(&buf[header_len..]);
        if buf.capacity() > 64 * 1024 {
            // Do not keep a large buffer alive after one large message.
            *buf = Vec::new();
        }
        Ok(())
    })
}

/// Encodes a reply's map: `{"action": "reply", "rid": N, "ok": value}` or `… "error": text}`.
pub(super) fn encode_reply<T: Serialize + ?Sized>(
    rid: u64,
    outcome: Result<&T, &str>,
    dst: &mut BytesMut,
) -> Result<(), CodecError> {
    let encode_err = |reason: String| CodecError::Encode {
        action: REPLY_ACTION.to_owned(),
        reason,
    };
    let mut w = BytesMutWriter(dst);
    rmp::encode::write_map_len(&mut w, 3).map_err(|e| encode_err(e.to_string()))?;
    rmp::encode::write_str(&mut w, "action").map_err(|e| encode_err(e.to_string()))?;
    rmp::encode::write_str(&mut w, REPLY_ACTION).map_err(|e| encode_err(e.to_string()))?;
    rmp::encode::write_str(&mut w, REQUEST_ID_KEY).map_err(|e| encode_err(e.to_string()))?;
    rmp::encode::write_uint(&mut w, rid).map_err(|e| encode_err(e.to_string()))?;
    match outcome {
        Ok(value) => {
            rmp::encode::write_str(&mut w, "ok").map_err(|e| encode_err(e.to_string()))?;
            rmp_serde::encode::write_named(&mut w, value).map_err(|e| encode_err(e.to_string()))
        }
        Err(text) => {
            rmp::encode::write_str(&mut w, "error").map_err(|e| encode_err(e.to_string()))?;
            rmp::encode::write_str(&mut w, text).map_err(|e| encode_err(e.to_string()))
        }
    }
}

/// Decodes one validated value into `T`; errors name `action`.
pub(super) fn decode_slice<T: DeserializeOwned>(
    bytes: &[u8],
    action: &str,
) -> Result<T, CodecError> {
    match rmp_serde::from_slice::<T>(bytes) {
        Ok(value) => Ok(value),
        Err(first) => {
            // A unit reply type accepts whatever a peer sent for "nothing" (nil, {}, []).
            if is_unit_like::<T>() {
                // `()` reads nil, a unit struct an empty array.
                for nothing in [[0xc0], [0x90]] {
                    if let Ok(value) = rmp_serde::from_slice::<T>(&nothing) {
                        return Ok(value);
                    }
                }
            }
            Err(CodecError::Body {
                action: action.to_owned(),
                reason: first.to_string(),
            })
        }
    }
}

/// A `std::io::Write` over `BytesMut` for rmp's encoding functions.
struct BytesMutWriter<'a>(&'a mut BytesMut);

impl std::io::Write for BytesMutWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The number of entries and the header length of a map encoded by rmp-serde; a unit struct
/// (an empty array) or unit (nil) counts as an empty map.
fn map_header(buf: &[u8]) -> Option<(u32, usize)> {
    let first = *buf.first()?;
    match first {
        0x80..=0x8f => Some(((first & 0x0f) as u32, 1)),
        0xde => Some((u16::from_be_bytes([*buf.get(1)?, *buf.get(2)?]) as u32, 3)),
        0xdf => Some((
            u32::from_be_bytes([*buf.get(1)?, *buf.get(2)?, *buf.get(3)?, *buf.get(4)?]),
            5,
        )),
        0x90 | 0xc0 if buf.len() == 1 => Some((0, 1)),
        _ => None,
    }
}

pub(super) fn decode_body<T: DeserializeOwned>(raw: &RawMessage) -> Result<T, CodecError> {
    let payload = raw.payload();
    match rmp_serde::from_slice::<T>(payload) {
        Ok(value) => Ok(value),
        Err(first) => {
            // A unit struct is encoded as a map holding "action" and perhaps keys it does not
            // know; rmp-serde expects an empty array for it, so try that shape before giving
            // up. Only for unit-like types: a struct whose fields all have defaults would also
            // accept an empty array, and must not turn a bad field into a default.
            if is_map(payload) && is_unit_like::<T>() {
                if let Ok(value) = rmp_serde::from_slice::<T>(&[0x90]) {
                    return Ok(value);
                }
            }
            Err(CodecError::Body {
                action: raw.action().to_owned(),
                reason: first.to_string(),
            })
        }
    }
}

/// Whether the payload starts with a map header (of any size).
fn is_map(payload: &[u8]) -> bool {
    matches!(payload.first(), Some(0x80..=0x8f | 0xde | 0xdf))
}

/// Whether `T` deserializes as a unit or unit struct (`struct Ping;`, `()`).
fn is_unit_like<'de, T: serde::Deserialize<'de>>() -> bool {
    T::deserialize(UnitProbe).is_ok()
}

/// A deserializer that offers only a unit: types asking for anything else fail on it.
struct UnitProbe;

#[derive(Debug)]
struct NotUnit;

impl std::fmt::Display for NotUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a unit type")
    }
}

impl std::error::Error for NotUnit {}

impl serde::de::Error for NotUnit {
    fn custom<M: std::fmt::Display>(_msg: M) -> Self {
        NotUnit
    }
}

impl<'de> serde::Deserializer<'de> for UnitProbe {
    type Error = NotUnit;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _visitor: V) -> Result<V::Value, NotUnit> {
        Err(NotUnit)
    }

    fn deserialize_unit<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, NotUnit> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, NotUnit> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// Decodes a validated payload into a dynamic value.
pub(crate) fn to_value(payload: &[u8]) -> Result<rmpv::Value, CodecError> {
    // The payload was validated by `scan` when it was received (lengths fit, depth bounded),
    // so rmpv's allocations are bounded by the payload's size.
    let mut rd = payload;
    rmpv::decode::read_value(&mut rd).map_err(|e| CodecError::Malformed {
        codec: NAME,
        reason: e.to_string(),
    })
}

/// The byte range of the value of the first top-level entry whose key is the string `key`, in
/// a payload holding one map; `None` if there is no such key.
///
/// Only headers are read and values skipped, so nothing is allocated for the other entries.
pub(crate) fn value_range(payload: &[u8], key: &str) -> Result<Option<Range<usize>>, CodecError> {
    let mut sc = Scanner {
        buf: payload,
        pos: 0,
    };
    let entries = match sc.item()? {
        Item::Map(n) => n,
        _ => {
            return Err(CodecError::NotAMap {
                found: payload
                    .first()
                    .map_or("an empty payload", |&b| kind_name(b)),
            })
        }
    };
    for _ in 0..entries {
        let matches = match payload.get(sc.pos) {
            Some(0xa0..=0xbf | 0xd9..=0xdb) => match sc.item()? {
                Item::Str(r) => &payload[r] == key.as_bytes(),
                _ => false,
            },
            _ => {
                sc.skip_value(1)?;
                false
            }
        };
        let start = sc.pos;
        sc.skip_value(1)?;
        if matches {
            return Ok(Some(start..sc.pos));
        }
    }
    Ok(None)
}

/// Decodes the one MessagePack value at `range` of a validated payload.
pub(crate) fn value_at(payload: &[u8], range: Range<usize>) -> Result<rmpv::Value, CodecError> {
    match payload.get(range) {
        Some(bytes) => to_value(bytes),
        None => Err(malformed("a value range outside the payload")),
    }
}

// ---- validation -------------------------------------------------------------------------------

/// One MessagePack item as seen by the scanner.
enum Item {
    /// A scalar, string, binary or extension; fully consumed.
    Leaf,
    /// A string; its bytes are at this range of the payload.
    Str(Range<usize>),
    /// An array with this many elements follows.
    Array(u64),
    /// A map with this many entries follows.
    Map(u64),
}

struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn malformed(reason: impl Into<String>) -> CodecError {
    CodecError::Malformed {
        codec: NAME,
        reason: reason.into(),
    }
}

impl<'a> Scanner<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<Range<usize>, CodecError> {
        if n > self.remaining() {
            return Err(malformed(format!(
                "truncated: needs {n} more bytes at offset {}, {} left",
                self.pos,
                self.remaining()
            )));
        }
        let start = self.pos;
        self.pos += n;
        Ok(start..self.pos)
    }

    fn uint(&mut self, width: usize) -> Result<u64, CodecError> {
        let range = self.take(width)?;
        Ok(self.buf[range]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// Reads one item header (and a leaf's whole content).
    fn item(&mut self) -> Result<Item, CodecError> {
        let at = self.pos;
        let marker = self.buf[self.take(1)?][0];
        let item = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Item::Leaf,
            0x80..=0x8f => Item::Map(u64::from(marker & 0x0f)),
            0x90..=0x9f => Item::Array(u64::from(marker & 0x0f)),
            0xa0..=0xbf => Item::Str(self.take(usize::from(marker & 0x1f))?),
            0xc1 => return Err(malformed(format!("reserved marker 0xc1 at offset {at}"))),
            0xc4..=0xc6 => {
                let len = self.uint(1 << (marker - 0xc4))?;
                self.take(usize::try_from(len).unwrap_or(usize::MAX))?;
                Item::Leaf
            }
            0xc7..=0xc9 => {
                let len = self.uint(1 << (marker - 0xc7))?;
                self.take(1)?;
                self.take(usize::try_from(len).unwrap_or(usize::MAX))?;
                Item::Leaf
            }
            0xca => self.take(4).map(|_| Item::Leaf)?,
            0xcb => self.take(8).map(|_| Item::Leaf)?,
            0xcc..=0xcf => self.take(1 << (marker - 0xcc)).map(|_| Item::Leaf)?,
            0xd0..=0xd3 => self.take(1 << (marker - 0xd0)).map(|_| Item::Leaf)?,
            0xd4..=0xd8 => self.take(1 + (1 << (marker - 0xd4))).map(|_| Item::Leaf)?,
            0xd9..=0xdb => {
                let len = self.uint(1 << (marker - 0xd9))?;
                Item::Str(self.take(usize::try_from(len).unwrap_or(usize::MAX))?)
            }
            0xdc => Item::Array(self.uint(2)?),
            0xdd => Item::Array(self.uint(4)?),
            0xde => Item::Map(self.uint(2)?),
            0xdf => Item::Map(self.uint(4)?),
        };
        Ok(item)
    }

    /// Skips one complete value, checking its structure; `depth` levels are already open.
    fn skip_value(&mut self, depth: usize) -> Result<(), CodecError> {
        // Remaining children of each open container, innermost last. Iterative, so hostile
        // nesting cannot overflow the stack; bounded by MAX_DEPTH.
        let mut open: Vec<u64> = Vec::new();
        loop {
            let children = match self.item()? {
                Item::Array(n) => n,
                Item::Map(n) => n * 2,
                Item::Leaf | Item::Str(_) => 0,
            };
            if children > 0 {
                if depth + open.len() >= MAX_DEPTH {
                    return Err(CodecError::TooDeep { max: MAX_DEPTH });
                }
                // Every child takes at least one byte.
                if children > self.remaining() as u64 {
                    return Err(malformed(format!(
                        "a container at offset {} declares {children} items but only {} bytes remain",
                        self.pos,
                        self.remaining()
                    )));
                }
                open.push(children);
                continue;
            }
            // A value is complete: close every container it completes.
            loop {
                match open.last_mut() {
                    None => return Ok(()),
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        open.pop();
                    }
                }
            }
        }
    }
}

fn kind_name(marker: u8) -> &'static str {
    match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => "an integer",
        0x90..=0x9f | 0xdc | 0xdd => "an array",
        0xa0..=0xbf | 0xd9..=0xdb => "a string",
        0xc0 => "nil",
        0xc2 | 0xc3 => "a boolean",
        0xc4..=0xc6 => "binary data",
        0xca | 0xcb => "a float",
        _ => "an extension value",
    }
}

/// The top-level keys of a message map that repod reads before decoding the body.
#[derive(Default)]
struct Keys {
    /// The range of the action name.
    action: Option<Range<usize>>,
    /// The request id: an unsigned integer under `"rid"`.
    rid: Option<u64>,
    /// The range of the value under `"ok"`.
    ok: Option<Range<usize>>,
    /// The range of the value under `"error"`.
    error: Option<Range<usize>>,
}

/// Which reserved key a map key is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Action,
    Rid,
    Ok,
    Error,
    Other,
}

/// Validates a whole payload and finds its action name (`None`: no `"action"`) and the keys
/// of requests and replies. The first entry of a key counts.
fn scan(payload: &[u8]) -> Result<Keys, CodecError> {
    let mut sc = Scanner {
        buf: payload,
        pos: 0,
    };
    let Some(&first) = payload.first() else {
        return Err(CodecError::NotAMap {
            found: "an empty payload",
        });
    };
    let entries = match sc.item()? {
        Item::Map(n) => n,
        _ => {
            return Err(CodecError::NotAMap {
                found: kind_name(first),
            })
        }
    };
    if entries.saturating_mul(2) > sc.remaining() as u64 {
        return Err(malformed(format!(
            "the map declares {entries} entries but only {} bytes remain",
            sc.remaining()
        )));
    }
    let mut keys = Keys::default();
    // The first "rid" counts, even when it is not an id.
    let mut rid_seen = false;
    for _ in 0..entries {
        let key = match payload.get(sc.pos) {
            Some(0xa0..=0xbf | 0xd9..=0xdb) => match sc.item()? {
                Item::Str(r) => match &payload[r] {
                    b"action" if keys.action.is_none() => Key::Action,
                    b"rid" if !rid_seen => Key::Rid,
                    b"ok" if keys.ok.is_none() => Key::Ok,
                    b"error" if keys.error.is_none() => Key::Error,
                    _ => Key::Other,
                },
                _ => Key::Other,
            },
            _ => {
                sc.skip_value(1)?;
                Key::Other
            }
        };
        match key {
            Key::Action => match sc.item()? {
                Item::Str(r) => {
                    if std::str::from_utf8(&payload[r.clone()]).is_err() {
                        return Err(malformed("the action name is not valid UTF-8"));
                    }
                    keys.action = Some(r);
                }
                _ => return Err(CodecError::ActionNotAString),
            },
            Key::Rid => {
                rid_seen = true;
                let start = sc.pos;
                sc.skip_value(1)?;
                // Anything but an unsigned integer leaves the message a plain one.
                keys.rid = unsigned(&payload[start..sc.pos]);
            }
            Key::Ok | Key::Error => {
                let start = sc.pos;
                sc.skip_value(1)?;
                let range = Some(start..sc.pos);
                if key == Key::Ok {
                    keys.ok = range;
                } else {
                    keys.error = range;
                }
            }
            Key::Other => sc.skip_value(1)?,
        }
    }
    if sc.remaining() != 0 {
        return Err(malformed(format!(
            "{} unexpected bytes after the message map",
            sc.remaining()
        )));
    }
    Ok(keys)
}

/// The value of one complete MessagePack integer, if it is one and not negative.
fn unsigned(value: &[u8]) -> Option<u64> {
    let (&marker, rest) = value.split_first()?;
    let be = |n: usize| -> Option<u64> {
        let bytes = rest.get(..n)?;
        Some(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    };
    match marker {
        0x00..=0x7f => Some(u64::from(marker)),
        0xcc..=0xcf => be(1 << (marker - 0xcc)),
        0xd0..=0xd3 => {
            let n = 1usize << (marker - 0xd0);
            // Signed: not negative when the top bit is clear.
            if rest.first()? & 0x80 != 0 {
                return None;
            }
            be(n)
        }
        _ => None,
    }
}
