//! Frame encode and decode, by payload size.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use repod_core::FrameCodec;
use std::hint::black_box;
use tokio_util::codec::{Decoder, Encoder};

const SIZES: [usize; 4] = [16, 256, 4096, 65536];

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame/encode");
    for size in SIZES {
        let payload = Bytes::from(vec![0xA5u8; size]);
        let mut codec = FrameCodec::default();
        let mut dst = BytesMut::with_capacity(size + 4);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &payload, |b, p| {
            b.iter(|| {
                dst.clear();
                codec.encode(black_box(p.clone()), &mut dst).unwrap();
                black_box(dst.len())
            })
        });
    }
    g.finish();
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame/decode");
    for size in SIZES {
        let mut frame = BytesMut::new();
        FrameCodec::default()
            .encode(Bytes::from(vec![0xA5u8; size]), &mut frame)
            .unwrap();
        let mut codec = FrameCodec::default();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &frame, |b, f| {
            b.iter_batched_ref(
                || f.clone(),
                |buf| black_box(codec.decode(buf).unwrap()),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
