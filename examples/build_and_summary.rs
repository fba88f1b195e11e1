//! Building models the three ways Keras declares an input, and printing their summaries.
//!
//! `cargo run --example build_and_summary`

use ndarray::Array3;
use seqnn::{Bidirectional, MergeMode, Sequential, SimpleRNN};

fn main() -> seqnn::Result<()> {
    // input_shape=(timesteps, input_dim)
    let mut model = Sequential::new();
    model.add(
        SimpleRNN::new(16)
            .with_return_sequences(true)
            .input_shape((12, 6)),
    )?;
    model.add(Bidirectional::new(SimpleRNN::new(8)).with_merge_mode(MergeMode::Sum))?;
    println!("{model}");

    // input_dim alone: any number of timesteps.
    let mut model = Sequential::new();
    model.add(SimpleRNN::new(4).input_dim(3))?;
    println!("input shape {}", model.input_shape().expect("declared"));

    // No input shape at all: unbuilt until built from data.
    let mut model = Sequential::new();
    model.add(SimpleRNN::new(4))?;
    match model.summary() {
        Ok(s) => println!("{s}"),
        Err(e) => println!("summary before build: {e}"),
    }
    let x = Array3::<f32>::zeros((2, 5, 7));
    model.build_from_data(&x)?; // Keras builds on the first call; here it is said
    let y = model.predict(&x)?;
    println!("built from (2, 5, 7), then predict: output {:?}", y.shape());
    println!("{}", model.summary()?);
    Ok(())
}
