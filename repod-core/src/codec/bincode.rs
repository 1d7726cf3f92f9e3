//! The bincode codec: `action` as a bincode string, then the body with bincode 2.

use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::envelope::{self, Envelope};
use super::{Codec, CodecKind, RawMessage};
use crate::error::CodecError;

/// The bincode codec, repod's default.
///
/// Payload layout, with bincode 2's standard configuration (little-endian, varint lengths):
///
/// ```text
/// +-----------------+---------------------+------------------------------+
/// | varint len (L)  | action (L bytes)    | body (bincode-encoded fields) |
/// +-----------------+---------------------+------------------------------+
/// ```
///
/// A unit struct has an empty body. Bincode is not self-describing: a body can only be decoded
/// into the type it was encoded from, which is why client and server share one protocol module.
///
/// While decoding, bincode may reserve memory for a declared string or sequence length before
/// the bytes arrive; repod caps such claims per message at a limit chosen from the payload's
/// size (64 KiB, 1 MiB, 16 MiB or at most [`Bincode::DECODE_LIMIT`]), so a lying length prefix
/// in a small message cannot claim much memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bincode;

impl Bincode {
    /// The most memory one message body may claim while it is decoded: 64 MiB.
    ///
    /// This is the ceiling. The limit actually applied is the smallest of 64 KiB, 1 MiB,
    /// 16 MiB and 64 MiB that is at least 32 times the size of the bytes being
    /// decoded, so a body of a few bytes announcing a huge string fails at once, without
    /// reserving memory for it.
    pub const DECODE_LIMIT: usize = 64 * 1024 * 1024;
}

/// How many times its encoded size a body may claim while it is decoded.
///
/// Bincode counts a claim as `len * size_of::<T>()` for a sequence of `len` elements of `T`
/// (and reserves that much at once for strings and byte vectors), while an element may take as
/// little as one byte on the wire: a small integer is one varint byte but a `u64` or `u128` in
/// memory, an empty `String`, `Vec` or a `None::<String>` is one byte but 24 in memory. So
/// legitimate claims exceed the encoded size several times over; 32 covers those common
/// elements, while what a lying length can claim stays proportional to the bytes that actually
/// arrived (a 9-byte body may claim 64 KiB, not 64 MiB). Elements much larger in memory than
/// on the wire (an enum with one big variant, sent as a small one) can still exceed it in a
/// long sequence; send such data in a type closer to its wire size.
const CLAIM_FACTOR: usize = 32;

/// Runs a bincode decode with the standard configuration and the smallest byte limit that is
/// at least [`CLAIM_FACTOR`] times `$len` (at most [`Bincode::DECODE_LIMIT`]); evaluates to
/// `(result, limit)`.
macro_rules! with_decode_limit {
    ($len:expr, |$config:ident| $decode:expr) => {{
        const KIB64: usize = 64 * 1024;
        const MIB1: usize = 1024 * 1024;
        const MIB16: usize = 16 * 1024 * 1024;
        let standard = bincode::config::standard();
        match ($len).saturating_mul(CLAIM_FACTOR) {
            n if n <= KIB64 => {
                let $config = standard.with_limit::<KIB64>();
                ($decode, KIB64)
            }
            n if n <= MIB1 => {
                let $config = standard.with_limit::<MIB1>();
                ($decode, MIB1)
            }
            n if n <= MIB16 => {
                let $config = standard.with_limit::<MIB16>();
                ($decode, MIB16)
            }
            _ => {
                let $config = standard.with_limit::<{ Bincode::DECODE_LIMIT }>();
                ($decode, Bincode::DECODE_LIMIT)
            }
        }
    }};
}

const NAME: &str = "bincode";

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// Lets bincode write straight into a `BytesMut`.
struct BytesWriter<'a>(&'a mut BytesMut);

impl bincode::enc::write::Writer for BytesWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

impl Codec for Bincode {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kind(&self) -> CodecKind {
        CodecKind::Bincode
    }

    fn encode_payload<T: Serialize + ?Sized>(
        &self,
        action: &str,
        body: &T,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let encode_err = |e: bincode::error::EncodeError| CodecError::Encode {
            action: action.to_owned(),
            reason: e.to_string(),
        };
        if action == envelope::BINCODE_MARKER {
            return Err(CodecError::Encode {
                action: action.to_owned(),
                reason: "the action name \"\\0\" is reserved for requests and replies".to_owned(),
            });
        }
        bincode::encode_into_writer(action, BytesWriter(dst), config()).map_err(encode_err)?;
        bincode::serde::encode_into_writer(body, BytesWriter(dst), config()).map_err(encode_err)
    }

    fn decode_raw(&self, payload: Bytes) -> Result<RawMessage, CodecError> {
        let (action, used) = read_str(&payload, 0, "the action name")?;
        if action == envelope::BINCODE_MARKER {
            return decode_envelope(payload, used);
        }
        let start = used - action.len();
        Ok(RawMessage::from_parts(
            CodecKind::Bincode,
            payload.clone(),
            start..used,
            used,
        ))
    }
}

/// Reads a bincode string at `at`; returns it and the offset after it.
fn read_str<'p>(payload: &'p [u8], at: usize, what: &str) -> Result<(&'p str, usize), CodecError> {
    let bytes = &payload[at..];
    let (decoded, limit) = with_decode_limit!(payload.len(), |config| {
        bincode::borrow_decode_from_slice::<&str, _>(bytes, config)
    });
    let (text, used) = decoded.map_err(|e| CodecError::Malformed {
        codec: NAME,
        reason: format!("cannot read {what}: {}", describe(&e, "payload", limit)),
    })?;
    Ok((text, at + used))
}

/// Reads a request or a reply: what follows the reserved action name `"\0"`.
fn decode_envelope(payload: Bytes, at: usize) -> Result<RawMessage, CodecError> {
    let malformed = |reason: String| CodecError::Malformed {
        codec: NAME,
        reason,
    };
    let Some(&kind) = payload.get(at) else {
        return Err(malformed(
            "the payload ends after the request marker".to_owned(),
        ));
    };
    let (decoded, _) = with_decode_limit!(payload.len(), |config| {
        bincode::decode_from_slice::<u64, _>(&payload[at + 1..], config)
    });
    let (rid, used) = decoded.map_err(|_| malformed("cannot read the request id".to_owned()))?;
    let after = at + 1 + used;
    match kind {
        envelope::KIND_REQUEST => {
            let (action, body_start) = read_str(&payload, after, "the request's action name")?;
            if action == envelope::BINCODE_MARKER {
                return Err(malformed(
                    "a request's action cannot be the reserved name \"\\0\"".to_owned(),
                ));
            }
            let start = body_start - action.len();
            Ok(RawMessage::from_parts(
                CodecKind::Bincode,
                payload.clone(),
                start..body_start,
                body_start,
            )
            .with_envelope(Envelope::Request(rid)))
        }
        envelope::KIND_OK | envelope::KIND_ERROR => {
            let range = after..payload.len();
            let outcome = if kind == envelope::KIND_OK {
                Ok(range)
            } else {
                Err(range)
            };
            Ok(
                RawMessage::from_parts(CodecKind::Bincode, payload.clone(), 0..0, after)
                    .with_envelope(Envelope::Reply { rid, outcome }),
            )
        }
        other => Err(malformed(format!(
            "unknown request or reply kind {other} after the request marker"
        ))),
    }
}

/// Encodes one value with bincode, appending it to `dst`.
pub(super) fn encode_value<T: Serialize + ?Sized>(
    action: &str,
    value: &T,
    dst: &mut BytesMut,
) -> Result<(), CodecError> {
    bincode::serde::encode_into_writer(value, BytesWriter(dst), config()).map_err(|e| {
        CodecError::Encode {
            action: action.to_owned(),
            reason: e.to_string(),
        }
    })
}

/// Decodes all of `bytes` into `T`, under the decode limit; errors name `action`.
pub(super) fn decode_slice<T: DeserializeOwned>(
    bytes: &[u8],
    action: &str,
) -> Result<T, CodecError> {
    let body_err = |reason: String| CodecError::Body {
        action: action.to_owned(),
        reason,
    };
    let (decoded, limit) = with_decode_limit!(bytes.len(), |config| {
        bincode::serde::decode_from_slice::<T, _>(bytes, config)
    });
    let (value, used) = decoded.map_err(|e| body_err(describe(&e, "body", limit)))?;
    if used != bytes.len() {
        return Err(body_err(format!(
            "{} unexpected bytes after the body (do both sides use the same message type?)",
            bytes.len() - used
        )));
    }
    Ok(value)
}

pub(super) fn decode_body<T: DeserializeOwned>(raw: &RawMessage) -> Result<T, CodecError> {
    decode_slice(raw.body(), raw.action())
}

/// Plain words for a bincode decode error; `what` names the bytes being decoded ("body").
fn describe(error: &bincode::error::DecodeError, what: &str, limit: usize) -> String {
    use bincode::error::DecodeError as E;
    use bincode::serde::DecodeError as S;
    match error {
        E::UnexpectedEnd { additional } => {
            format!(
                "the {what} ended {additional} bytes early (is it truncated, or of another type?)"
            )
        }
        E::Io { additional, .. } => format!("the {what} ended {additional} bytes early"),
        E::LimitExceeded => format!(
            "a length in the {what} exceeds the limit: it claims more than {} for a {what} of \
             this size (is it truncated, or of another type?)",
            human_size(limit)
        ),
        E::Utf8 { .. } => format!("invalid UTF-8 in a string of the {what}"),
        E::InvalidCharEncoding(_) => format!("an invalid char in the {what}"),
        E::InvalidBooleanValue(b) => {
            format!("invalid boolean value {b} in the {what} (expected 0 or 1)")
        }
        E::UnexpectedVariant {
            type_name, found, ..
        } => format!("unknown variant index {found} for enum `{type_name}`"),
        E::EmptyEnum { type_name } => format!("enum `{type_name}` has no variants"),
        E::InvalidIntegerType { expected, found } => {
            format!("expected an integer of type {expected:?}, found one of type {found:?}")
        }
        E::NonZeroTypeIsZero { non_zero_type } => {
            format!("zero where a non-zero {non_zero_type:?} was expected")
        }
        E::ArrayLengthMismatch { required, found } => {
            format!("an array of length {found} where {required} elements were expected")
        }
        E::OutsideUsizeRange(n) => format!("length {n} does not fit in this machine's usize"),
        E::InvalidDuration { .. } => "a duration overflows".to_owned(),
        E::InvalidSystemTime { .. } => "a time point is out of range".to_owned(),
        E::CStringNulError { position } => format!("a C string holds a zero byte at {position}"),
        E::Other(text) => (*text).to_owned(),
        E::OtherString(text) => text.clone(),
        E::Serde(S::AnyNotSupported | S::IdentifierNotSupported | S::IgnoredAnyNotSupported) => {
            "bincode cannot decode a self-describing type (serde_json::Value, rmpv::Value, \
             untagged enums, flatten, skipped unknown fields); use a concrete type"
                .to_owned()
        }
        E::Serde(S::CannotBorrowOwnedData) => {
            "bincode cannot borrow from the message here; use an owned type".to_owned()
        }
        other => other.to_string(),
    }
}

/// `64 KiB`, `16 MiB`: a limit for people.
fn human_size(bytes: usize) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}
