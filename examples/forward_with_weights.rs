//! A forward pass with weights set from arrays, in Keras's layout and order: what you do after
//! copying `model.get_weights()` out of Keras.
//!
//! `cargo run --example forward_with_weights`

use ndarray::{array, Array3};
use seqnn::{Sequential, SimpleRNN};

fn main() -> seqnn::Result<()> {
    let mut model = Sequential::new();
    model.add(
        SimpleRNN::new(2)
            .with_return_sequences(true)
            .input_shape((3, 2)),
    )?;
    // kernel (input_dim, units), recurrent_kernel (units, units), bias (units,)
    model.set_weights(&[
        array![[0.5_f32, -0.3], [0.1, 0.2]].into_dyn(),
        array![[0.4_f32, 0.0], [-0.2, 0.6]].into_dyn(),
        array![0.05_f32, -0.05].into_dyn(),
    ])?;
    let x = Array3::from_shape_vec((1, 3, 2), vec![1.0_f32, 0.0, 0.0, 1.0, 1.0, 1.0])
        .expect("6 values for (1, 3, 2)");
    let y = model.predict(&x)?;
    println!("h_t for t = 1, 2, 3:\n{y:.6}");
    // The first step by hand: tanh(x_1·kernel + bias) = tanh([0.55, -0.35]).
    println!(
        "by hand, h_1 = [{:.6}, {:.6}]",
        0.55_f32.tanh(),
        (-0.35_f32).tanh()
    );
    Ok(())
}
