//! The bincode codec: `action` as a bincode string, then the body with bincode 2.

use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Codec, CodecKind};
use crate::error::CodecError;
use crate::message::RawMessage;

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
/// the bytes arrive; repod caps such claims at [`Bincode::DECODE_LIMIT`] per message, so a
/// lying length prefix cannot exhaust memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bincode;

impl Bincode {
    /// The most memory one message body may claim while it is decoded: 64 MiB.
    pub const DECODE_LIMIT: usize = 64 * 1024 * 1024;
}

const NAME: &str = "bincode";

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
}

fn decode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ Bincode::DECODE_LIMIT }>()
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
        bincode::encode_into_writer(action, BytesWriter(dst), config()).map_err(encode_err)?;
        bincode::serde::encode_into_writer(body, BytesWriter(dst), config()).map_err(encode_err)
    }

    fn decode_raw(&self, payload: Bytes) -> Result<RawMessage, CodecError> {
        let (action, used): (&str, usize) =
            bincode::borrow_decode_from_slice(&payload, decode_config()).map_err(|e| {
                CodecError::Malformed {
                    codec: NAME,
                    reason: format!("cannot read the action name: {e}"),
                }
            })?;
        let start = used - action.len();
        Ok(RawMessage::from_parts(
            CodecKind::Bincode,
            payload.clone(),
            start..used,
            used,
        ))
    }
}

pub(super) fn decode_body<T: DeserializeOwned>(raw: &RawMessage) -> Result<T, CodecError> {
    let body = raw.body();
    let body_err = |reason: String| CodecError::Body {
        action: raw.action().to_owned(),
        reason,
    };
    let (value, used): (T, usize) = bincode::serde::decode_from_slice(body, decode_config())
        .map_err(|e| body_err(e.to_string()))?;
    if used != body.len() {
        return Err(body_err(format!(
            "{} unexpected bytes after the body (do both sides use the same message type?)",
            body.len() - used
        )));
    }
    Ok(value)
}
