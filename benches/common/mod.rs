//! What the benches share: their deterministic inputs, and the quick smoke-run switch.
//!
//! A folder with `mod.rs`, so that cargo does not take it for a bench of its own.

use ndarray::Array3;

/// A `(batch, steps, features)` input in `[-0.5, 0.5)`, the same on every run and in every
/// library: `((b·31 + t·17 + d·7) mod 23) / 23 - 0.5` (`tools/keras_reference/bench_train.py`
/// builds its inputs with the same formula).
pub fn input(batch: usize, steps: usize, features: usize) -> Array3<f32> {
    Array3::from_shape_fn((batch, steps, features), |(b, t, d)| {
        ((b * 31 + t * 17 + d * 7) % 23) as f32 / 23.0 - 0.5
    })
}

/// Whether `SEQNN_BENCH_QUICK` is set (to anything but `0`): a smoke run of a few samples,
/// whose figures are no measurement (`tools/keras_reference/bench_all.py --quick` sets it).
pub fn quick() -> bool {
    std::env::var_os("SEQNN_BENCH_QUICK").is_some_and(|v| v != "0")
}
