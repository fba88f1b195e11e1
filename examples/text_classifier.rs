//! A text classifier as Keras courses build it: padded word ids → Embedding(mask_zero) →
//! Bidirectional(LSTM) → Dense(softmax). It prints the summary and classifies a batch.
//!
//! `cargo run --release --example text_classifier`

use ndarray::array;
use seqnn::{set_random_seed, ActivationFn, Bidirectional, Dense, Embedding, Sequential, LSTM};

fn main() -> seqnn::Result<()> {
    set_random_seed(7);
    let (vocab, max_len, classes) = (30, 7, 3);
    let mut model = Sequential::new();
    model.add(
        Embedding::new(vocab, 8)
            .input_length(max_len)
            .with_mask_zero(true),
    )?;
    model.add(Bidirectional::new(LSTM::new(5)))?;
    model.add(Dense::new(classes).with_activation(ActivationFn::Softmax))?;
    println!("{}", model.summary()?);

    // Three sentences of word ids, padded with 0 at the end (the mask skips the padding).
    let batch = array![
        [4.0_f32, 12.0, 7.0, 29.0, 3.0, 0.0, 0.0],
        [9.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [5.0, 5.0, 18.0, 2.0, 21.0, 13.0, 8.0],
    ];
    let probabilities = model.predict(&batch)?;
    for (i, row) in probabilities.outer_iter().enumerate() {
        let best = row
            .iter()
            .enumerate()
            .fold((0, f32::MIN), |b, (j, &p)| if p > b.1 { (j, p) } else { b });
        println!(
            "sentence {i}: class probabilities {row:.4} -> class {}",
            best.0
        );
    }

    // An id outside the vocabulary is an error that says where it is, not a panic.
    let bad = array![[4.0_f32, 31.0, 0.0, 0.0, 0.0, 0.0, 0.0]];
    if let Err(e) = model.predict(&bad) {
        println!("a bad id: {e}");
    }
    Ok(())
}
