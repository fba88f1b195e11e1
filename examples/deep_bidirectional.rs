//! A deep stack of Bidirectional SimpleRNNs, as in the notebook's last cell, run on a batch.
//!
//! `cargo run --release --example deep_bidirectional`

use ndarray::Array3;
use seqnn::{set_random_seed, Bidirectional, Sequential, SimpleRNN};

fn main() -> seqnn::Result<()> {
    set_random_seed(42);
    let (timesteps, input_dim, hidden_size) = (10, 4, 8);
    let mut model = Sequential::new();
    model.add(
        Bidirectional::new(SimpleRNN::new(hidden_size).with_return_sequences(true))
            .input_shape((timesteps, input_dim)),
    )?;
    for _ in 0..3 {
        model.add(Bidirectional::new(
            SimpleRNN::new(hidden_size).with_return_sequences(true),
        ))?;
    }
    println!("{}", model.summary()?);

    let x = Array3::from_shape_fn((32, timesteps, input_dim), |(b, t, d)| {
        ((b * 13 + t * 5 + d * 3) % 17) as f32 / 17.0 - 0.5
    });
    let start = std::time::Instant::now();
    let y = model.predict(&x)?;
    println!(
        "predict on {:?} -> {:?} in {:.2?}",
        x.shape(),
        y.shape(),
        start.elapsed()
    );
    Ok(())
}
