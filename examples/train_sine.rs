//! A SimpleRNN that learns to forecast a sine wave, as a Keras course's first training: windows
//! of 20 samples predict the next one. It prints Keras-like progress per epoch and the held-out
//! error at the end.
//!
//! `cargo run --release --example train_sine`

use ndarray::{Array2, Array3, Axis};
use seqnn::{set_random_seed, Adam, Dense, FitOptions, Sequential, SimpleRNN};

fn main() -> seqnn::Result<()> {
    set_random_seed(42);
    let window = 20;
    // 1,200 points of sin(t / 4): 1,180 windows of 20, each with the point after it.
    let wave: Vec<f32> = (0..1_200).map(|t| (t as f32 / 4.0).sin()).collect();
    let n = wave.len() - window;
    let x = Array3::from_shape_fn((n, window, 1), |(i, t, _)| wave[i + t]);
    let y = Array2::from_shape_fn((n, 1), |(i, _)| wave[i + window]);

    // model = Sequential([SimpleRNN(16, input_shape=(20, 1)), Dense(1)])
    let mut model = Sequential::new();
    model.add(SimpleRNN::new(16).input_shape((window, 1)))?;
    model.add(Dense::new(1))?;
    println!("{}", model.summary()?);
    // model.compile(optimizer=Adam(0.01), loss="mse")
    model.compile(Adam::new().with_learning_rate(0.01), "mse")?;
    // model.fit(x, y, epochs=8, batch_size=32, validation_split=0.2)
    let history = model.fit(
        &x,
        &y,
        &FitOptions::new()
            .with_epochs(8)
            .with_batch_size(32)
            .with_validation_split(0.2),
    )?;
    let val = history.get("val_loss").expect("validation loss");
    println!(
        "validation mse: {:.6} after the first epoch, {:.6} after the last",
        val[0],
        val[val.len() - 1]
    );

    // The last window of the held-out part, forecast one step ahead.
    let last = x.index_axis(Axis(0), n - 1).insert_axis(Axis(0)).to_owned();
    let forecast = model.predict(&last)?;
    println!(
        "next value: forecast {:.4}, true {:.4}",
        forecast[[0, 0]],
        y[[n - 1, 0]]
    );
    Ok(())
}
