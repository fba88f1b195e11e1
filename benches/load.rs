//! Building a new recurrent layer, and loading one from a Keras file: the figures the README
//! puts beside Keras's own (`tools/keras_reference/bench_load.py`).
//!
//! `cargo bench --bench load`. The `.keras` file is the one Keras 3 wrote when
//! `SEQNN_BENCH_LOAD_DIR` names the folder `bench_load.py --out` wrote
//! (`lstm1024.k3.keras`, `lstm1024.tf.keras`, `lstm1024.tf.h5`); without it, seqnn saves the
//! same model itself first, in the same format.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use seqnn::{set_random_seed, Initializer, Sequential, LSTM};

/// `Input(shape=(10, 64)) → LSTM(units)` with fresh weights.
fn lstm_model(units: usize) -> Sequential {
    let mut model = Sequential::new();
    model
        .add(LSTM::new(units).input_shape((10, 64)))
        .expect("builds");
    model
}

fn build(c: &mut Criterion) {
    set_random_seed(0);
    let mut group = c.benchmark_group("build");
    group.sample_size(20);
    for units in [512, 1024] {
        group.bench_function(format!("lstm{units}_on_10x64"), |b| {
            b.iter(|| black_box(lstm_model(units)))
        });
    }
    group.bench_function("orthogonal_1024x4096", |b| {
        b.iter(|| black_box(Initializer::Orthogonal.sample(&[1024, 4096])))
    });
    group.finish();
}

/// The Keras-written files when `SEQNN_BENCH_LOAD_DIR` is set, else one seqnn writes.
fn files() -> Vec<(String, PathBuf)> {
    if let Some(dir) = std::env::var_os("SEQNN_BENCH_LOAD_DIR") {
        let dir = PathBuf::from(dir);
        return ["lstm1024.k3.keras", "lstm1024.tf.keras", "lstm1024.tf.h5"]
            .into_iter()
            .map(|f| (f.replace('.', "_"), dir.join(f)))
            .filter(|(_, p)| p.exists())
            .collect();
    }
    let path =
        std::env::temp_dir().join(format!("seqnn_bench_lstm1024_{}.keras", std::process::id()));
    lstm_model(1024).save(&path).expect("saves");
    vec![("lstm1024_seqnn_keras".to_string(), path)]
}

fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("load_model");
    group.sample_size(20);
    for (name, path) in files() {
        group.bench_function(name, |b| {
            b.iter(|| black_box(seqnn::load_model(&path).expect("loads")))
        });
    }
    group.finish();
}

criterion_group!(benches, build, load);
criterion_main!(benches);
