//! The encoder-decoder shape model of Keras courses: LSTM → RepeatVector → LSTM(sequences) →
//! TimeDistributed(Dense(softmax)). It prints the summary and runs a batch.
//!
//! `cargo run --release --example seq2seq_shapes`

use ndarray::Array3;
use seqnn::{
    set_random_seed, ActivationFn, Dense, RepeatVector, Sequential, TimeDistributed, LSTM,
};

fn main() -> seqnn::Result<()> {
    set_random_seed(7);
    let (in_steps, features, out_steps, vocab) = (5, 3, 4, 3);
    let mut model = Sequential::new();
    model.add(LSTM::new(6).input_shape((in_steps, features)))?; // encoder: (None, 6)
    model.add(RepeatVector::new(out_steps))?; // (None, 4, 6)
    model.add(LSTM::new(5).with_return_sequences(true))?; // decoder: (None, 4, 5)
    model.add(TimeDistributed::new(
        Dense::new(vocab).with_activation(ActivationFn::Softmax),
    ))?; // (None, 4, 3)
    println!("{}", model.summary()?);

    let x = Array3::from_shape_fn((2, in_steps, features), |(b, t, f)| {
        ((b * 7 + t * 3 + f) % 5) as f32 / 5.0 - 0.4
    });
    let y = model.predict(&x)?;
    println!("input {:?} -> output {:?}", x.shape(), y.shape());
    println!(
        "first sample, one distribution per output step:\n{:.4}",
        y.index_axis(ndarray::Axis(0), 0)
    );
    Ok(())
}
