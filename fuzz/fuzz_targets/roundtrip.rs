//! Structured input: an arbitrary message under an arbitrary action name, encoded with either
//! codec, framed, fed back through `FrameCodec` in chunks, decoded: it must come back equal.
#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use repod::{Codec, CodecKind, FrameCodec, FrameConfig, RawMessage};
use repod_fuzz::{AnyMessage, Chat, Ping, PlayerState};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::codec::Decoder;

#[derive(Debug, Arbitrary)]
struct Input {
    action: String,
    msgpack: bool,
    chunk: u8,
    messages: Vec<AnyMessage>,
}

/// Floats compare by their printed form, so NaN equals NaN and 0.0 differs from -0.0.
fn same<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

fn check<T: Serialize + DeserializeOwned + std::fmt::Debug>(raw: &RawMessage, sent: &T) {
    let got: T = raw
        .decode()
        .unwrap_or_else(|e| panic!("{:?} decoding {sent:?}: {e}", raw.codec()));
    assert!(same(&got, sent), "sent {sent:?}, got {got:?}");
}

fuzz_target!(|input: Input| {
    let codec = if input.msgpack {
        CodecKind::MsgPack
    } else {
        CodecKind::Bincode
    };
    let max = 64 * 1024;
    let mut stream = Vec::new();
    let mut sent = Vec::new();
    for msg in &input.messages {
        let frame = match msg {
            AnyMessage::Chat(m) => codec.encode_frame(&input.action, m, max),
            AnyMessage::Ping(m) => codec.encode_frame(&input.action, m, max),
            AnyMessage::PlayerState(m) => codec.encode_frame(&input.action, m, max),
        };
        match frame {
            Ok(frame) => {
                stream.extend_from_slice(&frame);
                sent.push(msg);
            }
            Err(repod::CodecError::TooLarge { len, .. }) => assert!(len > max),
            // bincode keeps the action name "\0" for requests and replies.
            Err(repod::CodecError::Encode { .. }) if !input.msgpack && input.action == "\0" => {}
            Err(e) => panic!("encoding {msg:?} failed: {e}"),
        }
    }

    let mut frames = FrameCodec::new(FrameConfig::with_max_frame_len(max));
    let mut buf = BytesMut::new();
    let mut received = Vec::new();
    let step = usize::from(input.chunk).max(1);
    for chunk in stream.chunks(step) {
        buf.extend_from_slice(chunk);
        while let Some(payload) = frames.decode(&mut buf).expect("our frames are valid") {
            received.push(codec.decode_raw(payload).expect("our payloads are valid"));
        }
    }
    assert!(buf.is_empty());
    assert_eq!(received.len(), sent.len());
    for (raw, msg) in received.iter().zip(sent) {
        assert_eq!(raw.action(), input.action);
        match msg {
            AnyMessage::Chat(m) => check::<Chat>(raw, m),
            AnyMessage::Ping(m) => check::<Ping>(raw, m),
            AnyMessage::PlayerState(m) => check::<PlayerState>(raw, m),
        }
    }
});
