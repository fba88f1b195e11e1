//! Training as a Keras tutorial does right after its first `fit`: EarlyStopping keeps the best
//! weights, ModelCheckpoint saves the best model, and the loss curves are drawn, as the
//! matplotlib cell draws `history.history`. A noisy sine wave, forecast by an LSTM.
//!
//! `cargo run --release --example train_with_callbacks`
//!
//! It writes `best.keras` (the checkpoint) and `curves.png` into `target/train_with_callbacks/`.

use ndarray::{Array2, Array3};
use seqnn::{
    load_model, set_random_seed, Adam, Dense, EarlyStopping, FitOptions, ModelCheckpoint,
    Sequential, LSTM,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    set_random_seed(7);
    let window = 16;
    // sin(t / 5) with a deterministic wobble: windows of 16 predict the next point.
    let wave: Vec<f32> = (0..900)
        .map(|t| (t as f32 / 5.0).sin() + 0.1 * ((t * 7919) % 13) as f32 / 13.0)
        .collect();
    let n = wave.len() - window;
    let x = Array3::from_shape_fn((n, window, 1), |(i, t, _)| wave[i + t]);
    let y = Array2::from_shape_fn((n, 1), |(i, _)| wave[i + window]);

    let mut model = Sequential::new();
    model.add(LSTM::new(16).input_shape((window, 1)))?;
    model.add(Dense::new(1))?;
    model.compile(Adam::new().with_learning_rate(0.01), "mse")?;

    let dir = std::path::Path::new("target/train_with_callbacks");
    std::fs::create_dir_all(dir)?;
    // callbacks = [EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True),
    //              ModelCheckpoint("best.keras", monitor="val_loss", save_best_only=True)]
    let mut stop = EarlyStopping::new()
        .monitor("val_loss")
        .patience(3)
        .restore_best_weights(true);
    let mut best = ModelCheckpoint::new(dir.join("best.keras"))
        .monitor("val_loss")
        .save_best_only(true);
    // history = model.fit(x, y, epochs=40, validation_split=0.2, callbacks=callbacks)
    let options = FitOptions::new()
        .with_epochs(40)
        .with_batch_size(32)
        .with_validation_split(0.2)
        .with_verbose(2);
    let history = model.fit_with_callbacks(&x, &y, &options, &mut [&mut stop, &mut best])?;

    let val = history.get("val_loss").expect("validation loss");
    let best_val = val.iter().copied().fold(f32::INFINITY, f32::min);
    match stop.stopped_epoch() {
        0 => println!("trained all {} epochs", val.len()),
        e => println!("early stopping after epoch {}", e + 1),
    }
    println!("best val_loss {best_val:.5}; the model keeps the best epoch's weights");

    // The checkpoint loads back compiled, with the best weights.
    let reloaded = load_model(dir.join("best.keras"))?;
    let here = model.evaluate(&x, &y, 32)?;
    let there = reloaded.evaluate(&x, &y, 32)?;
    println!(
        "loss of the model {:.5}, of best.keras {:.5}",
        here[0].1, there[0].1
    );

    // plt.plot(history.history["loss"]); plt.plot(history.history["val_loss"], "--")
    let curves = dir.join("curves.png");
    history.plot(&curves)?;
    println!("curves drawn into {}", curves.display());
    Ok(())
}
