//! Recurrent forward passes (inference): the workloads W1–W7 that
//! `tools/keras_reference/bench_all.py` times beside tf_keras, Keras 3 and PyTorch.
//!
//! `cargo bench --bench recurrent`. Each workload runs under `set_num_threads(1)` and under
//! `set_num_threads(2)`: ids `recurrent_forward/<workload>/threads_<n>`. Throughput is in
//! elements = FLOPs, counting `2·gates·units·(input + units)` per sample per timestep per
//! direction, so criterion's "elem/s" is FLOP/s. `SEQNN_BENCH_QUICK=1` makes it a smoke run of
//! ten short samples each.
//!
//! | id | model | input |
//! |---|---|---|
//! | `w1_notebook_8x2x10_u3` | `SimpleRNN(3)` | `(8, 2, 10)` |
//! | `w2_simplernn256_64x100x128_last` | `SimpleRNN(256)` | `(64, 100, 128)` |
//! | `w3_bidi4_32x50x64_u128` | 4 × `Bidirectional(SimpleRNN(128, return_sequences))` | `(32, 50, 64)` |
//! | `w4_lstm256_64x100x128_last` | `LSTM(256)` | `(64, 100, 128)` |
//! | `w5_gru256_64x100x128_last` | `GRU(256)` | `(64, 100, 128)` |
//! | `w6_simplernn512_seq_256x200x256` | `SimpleRNN(512, return_sequences)` | `(256, 200, 256)` |
//! | `w7_lstm512_1x100x256_last` | `LSTM(512)` | `(1, 100, 256)` |

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use seqnn::{
    set_num_threads, set_random_seed, Bidirectional, Result, Sequential, SimpleRNN, GRU, LSTM,
};

mod common;
use common::{input, quick};

/// The thread counts each workload runs with.
const THREADS: [usize; 2] = [1, 2];

/// FLOPs of one recurrent layer, one direction: `2·gates·units·(input + units)` per sample per
/// timestep.
fn flops(gates: usize, batch: usize, steps: usize, input: usize, units: usize) -> u64 {
    (2 * gates * units * (input + units) * batch * steps) as u64
}

/// One inference workload: a model and its input.
struct Workload {
    /// The criterion function id, with the input's shape.
    id: &'static str,
    /// A new model, built, with weights from the seed set just before.
    model: fn() -> Result<Sequential>,
    /// The input's `(batch, steps, features)`.
    input: (usize, usize, usize),
    /// FLOPs of one call.
    flops: u64,
    /// criterion's samples: 100 for the microseconds of the notebook, fewer for calls of
    /// milliseconds.
    samples: usize,
}

fn w1() -> Result<Sequential> {
    let mut model = Sequential::new();
    model.add(SimpleRNN::new(3).input_shape((2, 10)))?;
    Ok(model)
}

fn w2() -> Result<Sequential> {
    let mut model = Sequential::new();
    model.add(SimpleRNN::new(256).input_shape((100, 128)))?;
    Ok(model)
}

fn w3() -> Result<Sequential> {
    let mut model = Sequential::new();
    model.add(
        Bidirectional::new(SimpleRNN::new(128).with_return_sequences(true)).input_shape((50, 64)),
    )?;
    for _ in 0..3 {
        model.add(Bidirectional::new(
            SimpleRNN::new(128).with_return_sequences(true),
        ))?;
    }
    Ok(model)
}

fn w4() -> Result<Sequential> {
    let mut model = Sequential::new();
    model.add(LSTM::new(256).input_shape((100, 128)))?;
    Ok(model)
}

fn w5() -> Result<Sequential> {
    let mut model = Sequential::new();
    model.add(GRU::new(256).input_shape((100, 128)))?;
    Ok(model)
}

fn w6() -> Result<Sequential> {
    let mut model = Sequential::new();
    model.add(
        SimpleRNN::new(512)
            .with_return_sequences(true)
            .input_shape((200, 256)),
    )?;
    Ok(model)
}

/// One stream: a batch of one sequence, too few rows to split, so its steps split by units.
fn w7() -> Result<Sequential> {
    let mut model = Sequential::new();
    model.add(LSTM::new(512).input_shape((100, 256)))?;
    Ok(model)
}

fn workloads() -> [Workload; 7] {
    [
        Workload {
            id: "w1_notebook_8x2x10_u3",
            model: w1,
            input: (8, 2, 10),
            flops: flops(1, 8, 2, 10, 3),
            samples: 100,
        },
        Workload {
            id: "w2_simplernn256_64x100x128_last",
            model: w2,
            input: (64, 100, 128),
            flops: flops(1, 64, 100, 128, 256),
            samples: 20,
        },
        Workload {
            id: "w3_bidi4_32x50x64_u128",
            model: w3,
            input: (32, 50, 64),
            // Two directions per layer; the first reads 64 features, the others both
            // directions' 128.
            flops: 2 * flops(1, 32, 50, 64, 128) + 3 * 2 * flops(1, 32, 50, 256, 128),
            samples: 20,
        },
        Workload {
            id: "w4_lstm256_64x100x128_last",
            model: w4,
            input: (64, 100, 128),
            flops: flops(4, 64, 100, 128, 256),
            samples: 20,
        },
        Workload {
            id: "w5_gru256_64x100x128_last",
            model: w5,
            input: (64, 100, 128),
            flops: flops(3, 64, 100, 128, 256),
            samples: 20,
        },
        Workload {
            id: "w6_simplernn512_seq_256x200x256",
            model: w6,
            input: (256, 200, 256),
            flops: flops(1, 256, 200, 256, 512),
            samples: 10,
        },
        Workload {
            id: "w7_lstm512_1x100x256_last",
            model: w7,
            input: (1, 100, 256),
            flops: flops(4, 1, 100, 256, 512),
            samples: 20,
        },
    ]
}

/// One `call` of each workload, on one thread and on two.
fn forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("recurrent_forward");
    if quick() {
        group
            .warm_up_time(Duration::from_millis(100))
            .measurement_time(Duration::from_millis(300));
    } else {
        group.warm_up_time(Duration::from_secs(1));
    }
    for w in workloads() {
        set_random_seed(0);
        let model = (w.model)().expect("builds");
        let (batch, steps, features) = w.input;
        let x = input(batch, steps, features);
        // Flat sampling for calls of milliseconds: `samples` equal samples, not the 55 calls
        // per ten samples of criterion's linear sampling.
        let mode = if w.samples < 100 {
            SamplingMode::Flat
        } else {
            SamplingMode::Auto
        };
        group
            .sample_size(if quick() { 10 } else { w.samples })
            .sampling_mode(mode)
            .throughput(Throughput::Elements(w.flops));
        for threads in THREADS {
            set_num_threads(threads);
            group.bench_function(BenchmarkId::new(w.id, format!("threads_{threads}")), |b| {
                b.iter(|| model.call(black_box(&x)).expect("runs"))
            });
        }
    }
    set_num_threads(0);
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
