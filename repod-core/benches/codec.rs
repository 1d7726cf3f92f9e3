//! Both codecs: encode a whole frame, read the action (`decode_raw`), decode the body.

mod common;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use repod_core::frame::HEADER_LEN;
use repod_core::{Codec, CodecKind, Message};
use serde::de::DeserializeOwned;
use std::hint::black_box;

use common::{a_move, a_state, Move, State};

const CODECS: [CodecKind; 2] = [CodecKind::Bincode, CodecKind::MsgPack];

fn bench_message<M: Message + DeserializeOwned>(c: &mut Criterion, name: &str, msg: &M) {
    let mut g = c.benchmark_group(format!("codec/{name}"));
    for codec in CODECS {
        g.bench_function(BenchmarkId::new("encode", codec), |b| {
            b.iter(|| black_box(codec.encode(black_box(msg), usize::MAX).unwrap()))
        });
        let frame = codec.encode(msg, usize::MAX).unwrap();
        let payload: Bytes = frame.slice(HEADER_LEN..);
        g.bench_function(BenchmarkId::new("decode_raw", codec), |b| {
            b.iter(|| black_box(codec.decode_raw(black_box(payload.clone())).unwrap()))
        });
        g.bench_function(BenchmarkId::new("decode_raw+body", codec), |b| {
            b.iter(|| {
                let raw = codec.decode_raw(black_box(payload.clone())).unwrap();
                black_box(raw.decode::<M>().unwrap())
            })
        });
    }
    g.finish();
}

fn codecs(c: &mut Criterion) {
    bench_message::<Move>(c, "move", &a_move());
    bench_message::<State>(c, "state", &a_state());
}

criterion_group!(benches, codecs);
criterion_main!(benches);
