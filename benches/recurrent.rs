//! Recurrent forward passes (inference) on the workloads the README quotes.
//!
//! `cargo bench --bench recurrent`. Throughput is in elements = FLOPs, counting
//! 2·units·(input + units) per sample per timestep per direction, so criterion's "elem/s" is
//! FLOP/s.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use seqnn::{set_random_seed, Bidirectional, Layer, Sequential, SimpleRNN, GRU, LSTM};

mod common;
use common::input;

fn flops(batch: usize, steps: usize, input: usize, units: usize) -> u64 {
    (2 * units * (input + units) * batch * steps) as u64
}

fn simple_rnn(c: &mut Criterion) {
    set_random_seed(0);
    let mut group = c.benchmark_group("simple_rnn_forward");

    // The notebook's model: (8, 2, 10) with 3 units.
    let mut small = Sequential::new();
    small
        .add(SimpleRNN::new(3).input_shape((2, 10)))
        .expect("builds");
    let x = input(8, 2, 10);
    group.throughput(Throughput::Elements(flops(8, 2, 10, 3)));
    group.bench_function("notebook_8x2x10_u3", |b| {
        b.iter(|| small.call(black_box(&x)).expect("runs"))
    });

    // A realistic layer: (64, 100, 128) with 256 units, last output.
    let mut large = Sequential::new();
    large
        .add(SimpleRNN::new(256).input_shape((100, 128)))
        .expect("builds");
    let x = input(64, 100, 128);
    group.throughput(Throughput::Elements(flops(64, 100, 128, 256)));
    group.sample_size(20);
    group.bench_function("64x100x128_u256_last", |b| {
        b.iter(|| large.call(black_box(&x)).expect("runs"))
    });

    // Four stacked Bidirectional(SimpleRNN(128, return_sequences=True)) on (32, 50, 64).
    let mut deep = Sequential::new();
    deep.add(
        Bidirectional::new(SimpleRNN::new(128).with_return_sequences(true)).input_shape((50, 64)),
    )
    .expect("builds");
    for _ in 0..3 {
        deep.add(Bidirectional::new(
            SimpleRNN::new(128).with_return_sequences(true),
        ))
        .expect("builds");
    }
    let x = input(32, 50, 64);
    let total = 2 * flops(32, 50, 64, 128) + 3 * 2 * flops(32, 50, 256, 128);
    group.throughput(Throughput::Elements(total));
    group.bench_function("bidi4_32x50x64_u128", |b| {
        b.iter(|| deep.call(black_box(&x)).expect("runs"))
    });
    group.finish();
}

/// LSTM(256) and GRU(256) on (64, 100, 128), last output: 4 and 3 fused gates.
fn gated(c: &mut Criterion) {
    set_random_seed(0);
    let mut group = c.benchmark_group("gated_forward");
    group.sample_size(20);
    let x = input(64, 100, 128);
    let layers: [(&str, Box<dyn Layer>, u64); 2] = [
        (
            "lstm_64x100x128_u256_last",
            Box::new(LSTM::new(256).input_shape((100, 128))),
            4,
        ),
        (
            "gru_64x100x128_u256_last",
            Box::new(GRU::new(256).input_shape((100, 128))),
            3,
        ),
    ];
    for (name, layer, gates) in layers {
        let mut model = Sequential::new();
        model.add_boxed(layer).expect("builds");
        group.throughput(Throughput::Elements(gates * flops(64, 100, 128, 256)));
        group.bench_function(name, |b| {
            b.iter(|| model.call(black_box(&x)).expect("runs"))
        });
    }
    group.finish();
}

criterion_group!(benches, simple_rnn, gated);
criterion_main!(benches);
