//! One epoch of training: the workloads `tools/keras_reference/bench_train.py` times in
//! tf_keras, Keras 3 and PyTorch, and reads seqnn's figures from criterion's results.
//!
//! `cargo bench --bench train`. One sample is one `fit` call with `epochs = 1`, `verbose = 0`
//! and the default shuffle (from seqnn's generator, seeded once per model); the model goes on
//! training from call to call, as it would over the epochs of one `fit`. Throughput is in
//! elements = training samples, so criterion's "elem/s" is samples per second.
//!
//! | id | model | data | batch | optimizer, loss |
//! |---|---|---|---|---|
//! | `t1_simplernn3_256x2x10` | `SimpleRNN(3) → Dense(1)` | x `(256, 2, 10)` | 32 | `SGD(0.01)`, mse |
//! | `t2_lstm128_2048x50x32` | `LSTM(128) → Dense(1)` | x `(2048, 50, 32)` | 64 | `Adam()`, mse |
//! | `t3_embed_bilstm64_2048x80` | `Embedding(5000, 64) → Bidirectional(LSTM(64)) → Dense(1, sigmoid)` | ids `(2048, 80)` | 64 | `Adam()`, binary cross-entropy |
//! | `t4_gru128_seq_td16_2048x40x16` | `GRU(128, return_sequences) → TimeDistributed(Dense(16))` | x `(2048, 40, 16)` | 64 | `RMSprop()`, mse |
//!
//! Each runs under `set_num_threads(1)` and under `set_num_threads(2)`: the parameter
//! `threads_1`, `threads_2`. (Recurrent layers split each batch's rows over the threads, forward
//! and backward; T1's batches are too small to split.)
//!
//! `SEQNN_BENCH_TRAIN_SAMPLES=n` trains T2–T4 on `n` samples instead of 2048, for a quick check;
//! the ids then say `n`, so such results never pass for the full ones. T1 keeps its 256.
//! `SEQNN_BENCH_QUICK=1` shortens the warm-up too.
//!
//! Inputs and targets are the formulas of `bench_train.py`, so every library trains on the same
//! numbers.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use ndarray::{Array2, Array3, ArrayD};
use seqnn::{
    set_num_threads, set_random_seed, ActivationFn, Adam, Bidirectional, Dense, Embedding,
    FitOptions, RMSprop, Sequential, SimpleRNN, TimeDistributed, GRU, LSTM, SGD,
};

mod common;
use common::{input, quick};

/// The thread counts each workload runs with.
const THREADS: [usize; 2] = [1, 2];

/// One training workload: a compiled model with its data.
struct Workload {
    /// The criterion function id, with the data's shape.
    id: String,
    /// A new model, built and compiled, with weights from the seed set just before.
    model: fn() -> seqnn::Result<Sequential>,
    x: ArrayD<f32>,
    y: ArrayD<f32>,
    batch_size: usize,
    /// criterion's measurement time: about ten epochs, so that each sample is one epoch.
    measurement: Duration,
}

/// Regression targets `(n, 1)`: `((b·13) mod 11) / 11 - 0.5`.
fn targets(n: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, 1), |(b, _)| ((b * 13) % 11) as f32 / 11.0 - 0.5)
}

/// Token ids `(n, steps)` below `vocab`: `(b·131 + t·71) mod vocab`.
fn ids(n: usize, steps: usize, vocab: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, steps), |(b, t)| ((b * 131 + t * 71) % vocab) as f32)
}

/// Binary labels `(n, 1)`: `b mod 2`.
fn labels(n: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, 1), |(b, _)| (b % 2) as f32)
}

/// Sequence targets `(n, steps, features)`: `((b·7 + t·5 + d·3) mod 19) / 19 - 0.5`.
fn sequence_targets(n: usize, steps: usize, features: usize) -> Array3<f32> {
    Array3::from_shape_fn((n, steps, features), |(b, t, d)| {
        ((b * 7 + t * 5 + d * 3) % 19) as f32 / 19.0 - 0.5
    })
}

fn t1() -> seqnn::Result<Sequential> {
    let mut model = Sequential::new();
    model.add(SimpleRNN::new(3).input_shape((2, 10)))?;
    model.add(Dense::new(1))?;
    model.compile(SGD::new().with_learning_rate(0.01), "mse")?;
    Ok(model)
}

fn t2() -> seqnn::Result<Sequential> {
    let mut model = Sequential::new();
    model.add(LSTM::new(128).input_shape((50, 32)))?;
    model.add(Dense::new(1))?;
    model.compile(Adam::new(), "mse")?;
    Ok(model)
}

fn t3() -> seqnn::Result<Sequential> {
    let mut model = Sequential::new();
    model.add(Embedding::new(5000, 64).input_length(80))?;
    model.add(Bidirectional::new(LSTM::new(64)))?;
    model.add(Dense::new(1).with_activation(ActivationFn::Sigmoid))?;
    model.compile(Adam::new(), "binary_crossentropy")?;
    Ok(model)
}

fn t4() -> seqnn::Result<Sequential> {
    let mut model = Sequential::new();
    model.add(
        GRU::new(128)
            .with_return_sequences(true)
            .input_shape((40, 16)),
    )?;
    model.add(TimeDistributed::new(Dense::new(16)))?;
    model.compile(RMSprop::new(), "mse")?;
    Ok(model)
}

/// The sample count of T2–T4: `SEQNN_BENCH_TRAIN_SAMPLES`, else 2048.
fn samples() -> usize {
    match std::env::var("SEQNN_BENCH_TRAIN_SAMPLES") {
        Ok(v) => v
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .expect("SEQNN_BENCH_TRAIN_SAMPLES is a positive integer"),
        Err(_) => 2048,
    }
}

fn workloads() -> Vec<Workload> {
    let n = samples();
    // Ten epochs of the full workloads take about this long (seconds) on one core of the
    // README's machine; fewer samples take proportionally less.
    let ten_epochs = |full_seconds: f64| Duration::from_secs_f64(full_seconds * n as f64 / 2048.0);
    vec![
        Workload {
            id: "t1_simplernn3_256x2x10".into(),
            model: t1,
            x: input(256, 2, 10).into_dyn(),
            y: targets(256).into_dyn(),
            batch_size: 32,
            measurement: Duration::from_secs(2),
        },
        Workload {
            id: format!("t2_lstm128_{n}x50x32"),
            model: t2,
            x: input(n, 50, 32).into_dyn(),
            y: targets(n).into_dyn(),
            batch_size: 64,
            measurement: ten_epochs(15.0),
        },
        Workload {
            id: format!("t3_embed_bilstm64_{n}x80"),
            model: t3,
            x: ids(n, 80, 5000).into_dyn(),
            y: labels(n).into_dyn(),
            batch_size: 64,
            measurement: ten_epochs(25.0),
        },
        Workload {
            id: format!("t4_gru128_seq_td16_{n}x40x16"),
            model: t4,
            x: input(n, 40, 16).into_dyn(),
            y: sequence_targets(n, 40, 16).into_dyn(),
            batch_size: 64,
            measurement: ten_epochs(10.0),
        },
    ]
}

/// One `fit` epoch of each workload, on one thread and on two.
fn train_epoch(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_epoch");
    // Every sample is one call (a whole epoch), so flat sampling: ten of them, not the 55
    // calls of criterion's linear sampling.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(if quick() { 100 } else { 500 }));
    for w in workloads() {
        let options = FitOptions::new()
            .with_epochs(1)
            .with_batch_size(w.batch_size)
            .with_verbose(0);
        group
            .throughput(Throughput::Elements(w.x.shape()[0] as u64))
            .measurement_time(w.measurement);
        for threads in THREADS {
            set_random_seed(0);
            let mut model = (w.model)().expect("builds and compiles");
            set_num_threads(threads);
            group.bench_function(BenchmarkId::new(&w.id, format!("threads_{threads}")), |b| {
                b.iter(|| {
                    model
                        .fit(black_box(&w.x), black_box(&w.y), &options)
                        .expect("trains")
                })
            });
        }
    }
    set_num_threads(0);
    group.finish();
}

criterion_group!(benches, train_epoch);
criterion_main!(benches);
