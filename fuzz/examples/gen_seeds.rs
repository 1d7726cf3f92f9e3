//! Writes the seed corpora under `fuzz/seeds/<target>/`: valid frames and payloads of the
//! sample messages with both codecs, plus a few hand-made edge cases.
//!
//! Run from `fuzz/`: `cargo run --example gen_seeds`.

use std::fs;
use std::path::Path;

use repod::{Codec, CodecKind};
use repod_fuzz::{samples, AnyMessage};

fn frame(codec: CodecKind, msg: &AnyMessage) -> Vec<u8> {
    let frame = match msg {
        AnyMessage::Chat(m) => codec.encode(m, usize::MAX),
        AnyMessage::Ping(m) => codec.encode(m, usize::MAX),
        AnyMessage::PlayerState(m) => codec.encode(m.as_ref(), usize::MAX),
    };
    frame.expect("samples encode").to_vec()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let dirs = ["frame_decoder", "msgpack_decode", "bincode_decode"].map(|t| root.join(t));
    for dir in &dirs {
        fs::create_dir_all(dir).expect("create seed dir");
    }
    let [frames_dir, msgpack_dir, bincode_dir] = &dirs;

    let mut stream = Vec::new();
    for (i, msg) in samples().iter().enumerate() {
        for (codec, dir) in [
            (CodecKind::MsgPack, msgpack_dir),
            (CodecKind::Bincode, bincode_dir),
        ] {
            let frame = frame(codec, msg);
            write(dir, &format!("sample{i}"), &frame[4..]);
            // Frame decoder seeds: max length byte, chunk seed, then the frame.
            let mut seed = vec![63, i as u8];
            seed.extend_from_slice(&frame);
            write(frames_dir, &format!("{codec}{i}"), &seed);
            stream.extend_from_slice(&frame);
        }
    }
    // Several frames back to back, then an unfinished one.
    let mut seed = vec![255, 7];
    seed.extend_from_slice(&stream);
    seed.extend_from_slice(&[0, 0, 0, 9, 1, 2]);
    write(frames_dir, "stream", &seed);
    write(frames_dir, "empty_frames", &[8, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    write(
        frames_dir,
        "too_large",
        &[16, 3, 0, 0, 0, 2, 9, 9, 0, 0, 0, 17],
    );
    write(frames_dir, "huge", &[0, 0, 0xff, 0xff, 0xff, 0xff, 0]);

    // MessagePack as Python repod sends it, and the shapes the decoder must judge.
    write(
        msgpack_dir,
        "python_emote",
        b"\x82\xa6action\xa5emote\xa4type\xa4wave",
    );
    write(msgpack_dir, "no_action", b"\x81\xa4type\xa4wave");
    write(msgpack_dir, "bare_action", b"\x81\xa6action\xa4ping");
    write(msgpack_dir, "action_not_str", b"\x81\xa6action\x07");
    write(
        msgpack_dir,
        "nested",
        b"\x82\xa6action\xa1x\xa1v\x91\x91\x91\x81\x01\xc0",
    );
    write(
        msgpack_dir,
        "ext_bin_float",
        b"\x84\xa6action\xa1x\xa1b\xc4\x02\x00\x01\xa1e\xd4\x01\x02\xa1f\xcb\x3f\xf0\0\0\0\0\0\0",
    );
    write(msgpack_dir, "map16", b"\xde\x00\x01\xa6action\xd9\x04chat");
    write(bincode_dir, "empty_action", &[0]);
    write(bincode_dir, "request", b"\x01\x00\x00\x07\x04chat\x02hi");
    write(bincode_dir, "reply", b"\x01\x00\x01\x07\x02ok");
    write(
        bincode_dir,
        "long_len",
        &[0xfc, 0xff, 0xff, 0xff, 0x7f, b'a'],
    );
    requests(&root.join("request_envelope"));
    println!("seeds written to {}", root.display());
}

/// Seeds of `request_envelope`: a mode byte (bit 0: MessagePack, bit 1: structured), then
/// requests and replies of both codecs, and what a Python peer may send.
fn requests(dir: &Path) {
    fs::create_dir_all(dir).expect("create seed dir");
    for (mode, codec) in [(0u8, CodecKind::Bincode), (1, CodecKind::MsgPack)] {
        let seed = |frame: bytes::Bytes| {
            let mut seed = vec![mode];
            seed.extend_from_slice(&frame[4..]);
            seed
        };
        let chat = repod_fuzz::Chat { text: "hi".into() };
        let request = codec.encode_request(7, &chat, usize::MAX).expect("encodes");
        write(dir, &format!("{codec}_request"), &seed(request));
        let rooms = vec!["ffa-1".to_owned(), "ffa-2".to_owned()];
        let ok = codec
            .encode_reply(300, Ok(&rooms), usize::MAX)
            .expect("encodes");
        write(dir, &format!("{codec}_reply"), &seed(ok));
        let error = codec
            .encode_reply::<()>(u64::MAX, Err("no such room"), usize::MAX)
            .expect("encodes");
        write(dir, &format!("{codec}_error"), &seed(error));
    }
    // Python dicts: an id that is a string, a negative id, a reply with nil and with both keys.
    write(
        dir,
        "python_string_rid",
        b"\x01\x82\xa6action\xa4join\xa3rid\xa2r3",
    );
    write(
        dir,
        "python_negative_rid",
        b"\x01\x82\xa3rid\xff\xa6action\xa4join",
    );
    write(
        dir,
        "python_nil_reply",
        b"\x01\x83\xa6action\xa5reply\xa3rid\x02\xa2ok\xc0",
    );
    write(
        dir,
        "python_both",
        b"\x01\x84\xa6action\xa5reply\xa3rid\x03\xa2ok\x01\xa5error\x2a",
    );
    // Structured: mode 2 and 3, arbitrary bytes for the rest.
    write(
        dir,
        "structured_bincode",
        &[2, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3],
    );
    write(
        dir,
        "structured_msgpack",
        &[3, 2, 9, 9, 9, 9, 9, 9, 9, 9, b'x'],
    );
}
