//! The resume handshake: arbitrary bytes as the first frame of a connection, which a server that
//! resumes sessions reads to learn whether the peer asks for a new session, resumes one, or says
//! something else; and the other session messages a peer can send or answer with.
//!
//! The first byte picks the codec (bit 0: bincode or MessagePack) and the mode (bit 1: raw bytes
//! or a structured round trip of the rest).
//!
//! Checks on raw bytes: nothing panics; a payload is a hello only when its action is `_session`;
//! a hello that asks to resume carries a token that prints back to the same 64 hexadecimal
//! digits; the session acknowledgement and the reply decode or fail without panicking. Checks on
//! structured input: every hello encodes and parses back to what it was, and a token that is not
//! 64 lowercase hexadecimal digits is refused.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use repod::session::{
    parse_hello, HelloRequest, SessionAck, SessionHello, SessionReply, Token,
};
use repod::{Codec, CodecKind, Message};

#[derive(Debug, Arbitrary)]
struct Hello {
    token: String,
    recv: u64,
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let codec = if mode & 1 == 0 {
        CodecKind::Bincode
    } else {
        CodecKind::MsgPack
    };
    if mode & 2 == 0 {
        let payload = Bytes::copy_from_slice(rest);
        // The action of a plain message (no request or reply envelope), if it decodes.
        let plain = codec
            .decode_raw(payload.clone())
            .ok()
            .filter(|raw| raw.reply_id().is_none() && raw.request_id().is_none())
            .map(|raw| raw.action().to_owned());
        let is_hello = plain.as_deref() == Some(SessionHello::ACTION);
        match parse_hello(codec, payload.clone()) {
            Ok(Some(request)) => {
                assert!(is_hello, "{plain:?} parsed as a hello");
                if let HelloRequest::Resume { token, .. } = request {
                    assert_eq!(Token::from_hex(&token.to_hex()), Some(token));
                }
            }
            Ok(None) => assert!(!is_hello, "a hello was not recognised"),
            Err(_) => {
                // Either the payload does not decode at all, or it is a broken hello.
                assert!(is_hello || codec.decode_raw(payload.clone()).is_err());
            }
        }
        if let Ok(raw) = codec.decode_raw(payload) {
            let _ = raw.decode::<SessionAck>();
            let _ = raw.decode::<SessionReply>();
        }
        return;
    }
    let Ok(hello) = Hello::arbitrary(&mut Unstructured::new(rest)) else {
        return;
    };
    let msg = SessionHello {
        token: hello.token.clone(),
        recv: hello.recv,
    };
    let frame = codec.encode(&msg, usize::MAX).expect("a hello encodes");
    let parsed = parse_hello(codec, frame.slice(4..));
    if hello.token.is_empty() {
        assert_eq!(parsed, Ok(Some(HelloRequest::New)));
    } else {
        match Token::from_hex(&hello.token) {
            Some(token) => assert_eq!(
                parsed,
                Ok(Some(HelloRequest::Resume {
                    token,
                    recv: hello.recv
                }))
            ),
            None => assert!(parsed.is_err(), "{hello:?} parsed as {parsed:?}"),
        }
    }
});
