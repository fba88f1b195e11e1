//! The Keras RNN notebook (`../shared/seed/notebook.txt`), cell by cell, in Rust.
//!
//! Run it with `cargo run --release --example notebook`. Each executed cell prints what the
//! notebook shows; the never-run `In [None]` cell is skipped. At the end, the hand-written RNN
//! loop of cells 6-13 is computed again by a `SimpleRNN` given the same weights.

use ndarray::{Array1, Array2, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seqnn::{Bidirectional, Sequential, Shape, SimpleRNN};

fn main() -> seqnn::Result<()> {
    // In [3]: SimpleRNN(3, input_shape=(2,10)); the output is (batch_size, output_dim).
    println!("In [3]:");
    let mut model = Sequential::new();
    model.add(SimpleRNN::new(3).input_shape((2, 10)))?;
    // Same as SimpleRNN::new(3).input_length(2).input_dim(10).
    println!("{}", model.summary()?);

    // In [4]: a fixed batch size of 8.
    println!("In [4]:");
    let mut model = Sequential::new();
    model.add(SimpleRNN::new(3).batch_input_shape((8, 2, 10)))?;
    println!("{}", model.summary()?);

    // In [5]: return_sequences=True gives (batch_size, timesteps, output_dim).
    println!("In [5]:");
    let mut model = Sequential::new();
    model.add(
        SimpleRNN::new(3)
            .batch_input_shape((8, 2, 10))
            .with_return_sequences(true),
    )?;
    println!("{}", model.summary()?);

    // In [6]: an RNN in plain arrays (NumPy in the notebook, ndarray here).
    let timesteps = 10; // the number of timesteps: a sentence's length in NLP
    let input_dim = 4; // the size of each input: a word vector's dimension in NLP
    let hidden_size = 8; // the size of the hidden state: the memory cell's capacity
    let mut rng = StdRng::seed_from_u64(2021);
    let mut random =
        |shape: (usize, usize)| Array2::from_shape_simple_fn(shape, || rng.random::<f64>());
    let inputs = random((timesteps, input_dim)); // np.random.random((timesteps, input_dim))
    let mut hidden_state_t = Array1::<f64>::zeros(hidden_size);

    // In [7]
    println!("In [7]:\n{}\n", numpy_vector(&hidden_state_t));

    // In [9]: weights and bias.
    let wx = random((hidden_size, input_dim)); // (8, 4): weights for the input
    let wh = random((hidden_size, hidden_size)); // (8, 8): weights for the hidden state
    let b = random((1, hidden_size)).remove_axis(Axis(0)); // (8,): the bias

    // In [10]
    println!("In [10]:");
    for shape in [wx.shape(), wh.shape(), b.shape()] {
        println!("{}", Shape::known(shape));
    }
    println!();

    // In [11]: the memory cell, one timestep at a time.
    println!("In [11]:");
    let mut total_hidden_states: Vec<Array1<f64>> = Vec::new();
    for input_t in inputs.rows() {
        let output_t = (wx.dot(&input_t) + wh.dot(&hidden_state_t) + &b).mapv(f64::tanh);
        total_hidden_states.push(output_t.clone());
        println!(
            "{}",
            Shape::known(&[total_hidden_states.len(), hidden_size])
        );
        hidden_state_t = output_t;
    }
    println!();

    // In [13]: the stacked hidden states.
    let views: Vec<_> = total_hidden_states.iter().map(|h| h.view()).collect();
    let stacked = ndarray::stack(Axis(0), &views).expect("equal lengths");
    println!("In [13]:\n{stacked:.8}\n");

    // In [14]: a Bidirectional SimpleRNN.
    let mut model = Sequential::new();
    model.add(
        Bidirectional::new(SimpleRNN::new(hidden_size).with_return_sequences(true))
            .input_shape((timesteps, input_dim)),
    )?;

    // In [15]: a deep recurrent network of four Bidirectional layers.
    println!("In [15]:");
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

    // The loop of In [11] again, by a SimpleRNN holding the same weights in Keras's layout:
    // kernel = Wxᵀ (input_dim, units), recurrent_kernel = Whᵀ, bias = b.
    println!("The same loop computed by SimpleRNN({hidden_size}, return_sequences=True):");
    let mut rnn = Sequential::new();
    rnn.add(
        SimpleRNN::new(hidden_size)
            .with_return_sequences(true)
            .input_shape((timesteps, input_dim)),
    )?;
    let f32s = |a: &Array2<f64>| a.t().mapv(|v| v as f32).into_dyn();
    rnn.set_weights(&[f32s(&wx), f32s(&wh), b.mapv(|v| v as f32).into_dyn()])?;
    let x = inputs.mapv(|v| v as f32).insert_axis(Axis(0));
    let layer_states = rnn.predict(&x)?;
    let max_diff = layer_states
        .iter()
        .zip(stacked.iter())
        .map(|(a, b)| (f64::from(*a) - b).abs())
        .fold(0.0, f64::max);
    println!("{:.8}", layer_states.index_axis(Axis(0), 0));
    println!(
        "largest difference from the hand-written loop: {max_diff:.2e} ({})",
        if max_diff < 1e-5 {
            "they agree"
        } else {
            "they DISAGREE"
        }
    );
    if max_diff >= 1e-5 {
        std::process::exit(1);
    }
    Ok(())
}

/// A vector as NumPy prints zeros: `[0. 0. 0.]`.
fn numpy_vector(v: &Array1<f64>) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:.0}.")).collect();
    format!("[{}]", items.join(" "))
}
