//! An LSTM autoencoder, as a Keras course builds it: LSTM → RepeatVector → LSTM(sequences) →
//! TimeDistributed(Dense), trained to give back short sequences of noisy waves. It prints
//! Keras-like progress and the reconstruction error of sequences it never saw.
//!
//! `cargo run --release --example train_seq2seq`

use ndarray::Array3;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seqnn::{
    set_random_seed, Adam, Dense, FitOptions, RepeatVector, Sequential, TimeDistributed, LSTM,
};

/// `n` sequences of `steps` steps of two channels: a sine of random phase and frequency, and
/// its cosine.
fn waves(n: usize, steps: usize, seed: u64) -> Array3<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = Array3::<f32>::zeros((n, steps, 2));
    for i in 0..n {
        let (phase, freq) = (
            rng.random_range(0.0..std::f32::consts::TAU),
            rng.random_range(0.3..0.8_f32),
        );
        for t in 0..steps {
            let a = phase + freq * t as f32;
            x[[i, t, 0]] = a.sin();
            x[[i, t, 1]] = a.cos();
        }
    }
    x
}

fn main() -> seqnn::Result<()> {
    set_random_seed(5);
    let steps = 10;
    let x = waves(1_024, steps, 1);
    let x_test = waves(256, steps, 2);

    let mut model = Sequential::new();
    model.add(LSTM::new(32).input_shape((steps, 2)))?; // the encoding: (None, 32)
    model.add(RepeatVector::new(steps))?; // (None, 10, 32)
    model.add(LSTM::new(32).with_return_sequences(true))?; // (None, 10, 32)
    model.add(TimeDistributed::new(Dense::new(2)))?; // (None, 10, 2)
    println!("{}", model.summary()?);
    model.compile(Adam::new().with_learning_rate(0.01), "mse")?;
    model.fit(
        &x,
        &x,
        &FitOptions::new().with_epochs(15).with_batch_size(32),
    )?;
    let before = {
        // The error of always answering 0, for scale.
        x_test.iter().map(|v| v * v).sum::<f32>() / x_test.len() as f32
    };
    let mse = model.evaluate(&x_test, &x_test, 32)?[0].1;
    println!("held-out reconstruction mse: {mse:.5} (answering zeros: {before:.5})");
    Ok(())
}
