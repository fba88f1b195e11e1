//! The notebook's cells (`../shared/seed/notebook.txt`): their summaries verbatim, their shapes
//! and parameter counts, the names one notebook session gives, and the hand-written RNN loop.

mod common;

use approx::assert_abs_diff_eq;
use ndarray::{Array1, Array2, Array3};
use seqnn::{clear_session, Bidirectional, Layer, Sequential, Shape, SimpleRNN};

/// The notebook's summary table, with the `=` rules that its copy lost restored.
fn notebook_summary(model: &str, row: &str) -> String {
    let rule_ = "_".repeat(65);
    let rule = "=".repeat(65);
    format!(
        "Model: \"{model}\"\n{rule_}\n\
         Layer (type)                 Output Shape              Param #   \n{rule}\n\
         {row}\n{rule}\n\
         Total params: 42\nTrainable params: 42\nNon-trainable params: 0\n{rule_}\n"
    )
}

/// Cells 3, 4 and 5, run in order in one session as the notebook ran them.
#[test]
fn cells_3_4_5_print_the_notebooks_summaries() -> seqnn::Result<()> {
    clear_session();
    // In [3]
    let mut model = Sequential::new();
    model.add(SimpleRNN::new(3).input_shape((2, 10)))?;
    assert_eq!(
        model.summary()?,
        notebook_summary(
            "sequential",
            "simple_rnn (SimpleRNN)       (None, 3)                 42        "
        )
    );
    assert_eq!(model.output_shape(), Some(Shape::new(vec![None, Some(3)])));
    // In [4]
    let mut model = Sequential::new();
    model.add(SimpleRNN::new(3).batch_input_shape((8, 2, 10)))?;
    assert_eq!(
        model.summary()?,
        notebook_summary(
            "sequential_1",
            "simple_rnn_1 (SimpleRNN)     (8, 3)                    42        "
        )
    );
    assert_eq!(model.output_shape().unwrap().to_string(), "(8, 3)");
    // In [5]
    let mut model = Sequential::new();
    model.add(
        SimpleRNN::new(3)
            .batch_input_shape((8, 2, 10))
            .with_return_sequences(true),
    )?;
    assert_eq!(
        model.summary()?,
        notebook_summary(
            "sequential_2",
            "simple_rnn_2 (SimpleRNN)     (8, 2, 3)                 42        "
        )
    );
    assert_eq!(model.output_shape().unwrap().to_string(), "(8, 2, 3)");
    // Display prints the same table.
    assert_eq!(model.to_string(), model.summary()?);
    Ok(())
}

/// The commented alternative of cell 3, `SimpleRNN(3, input_length=2, input_dim=10)`, "is the
/// same": same shapes, same 42 parameters.
#[test]
fn input_length_and_input_dim_equal_input_shape() -> seqnn::Result<()> {
    let mut a = Sequential::new();
    a.add(SimpleRNN::new(3).input_length(2).input_dim(10))?;
    let mut b = Sequential::new();
    b.add(SimpleRNN::new(3).input_shape((2, 10)))?;
    assert_eq!(a.input_shape(), b.input_shape());
    assert_eq!(a.input_shape().unwrap().to_string(), "(None, 2, 10)");
    assert_eq!(a.output_shape(), b.output_shape());
    assert_eq!(a.count_params()?, 42);
    Ok(())
}

/// The first form, `model.add(SimpleRNN(hidden_size))`, has no input shape: the model is not
/// built and its summary is Keras's error, until data builds it.
#[test]
fn simplest_form_is_unbuilt_until_built_from_data() -> seqnn::Result<()> {
    let mut model = Sequential::new();
    model.add(SimpleRNN::new(8))?;
    let err = model.summary().unwrap_err();
    assert!(matches!(err, seqnn::Error::NotBuilt { .. }));
    assert_eq!(
        err.to_string(),
        "This model has not yet been built. Build the model first by calling `build()` or by \
         calling the model on a batch of data."
    );
    let x = Array3::<f32>::zeros((2, 10, 4));
    model.build_from_data(&x)?;
    let y = model.predict(&x)?;
    assert_eq!(y.shape(), &[2, 8]);
    assert_eq!(model.count_params()?, 8 * (4 + 8 + 1));
    Ok(())
}

/// Cells 14 and 15 after cells 3-5 in one session: the names Keras gives
/// (`tests/fixtures/keras/notebook_session.json`), the summary tf_keras printed for cell 15 in
/// the notebook's layout, and 208 + 400 + 400 + 400 = 1408 parameters.
#[test]
fn deep_bidirectional_stack_in_the_notebook_session() -> seqnn::Result<()> {
    let session = common::load("notebook_session").json;
    clear_session();
    let mut names = Vec::new();
    for layer in [
        SimpleRNN::new(3).input_shape((2, 10)),
        SimpleRNN::new(3).batch_input_shape((8, 2, 10)),
        SimpleRNN::new(3)
            .batch_input_shape((8, 2, 10))
            .with_return_sequences(true),
    ] {
        let mut m = Sequential::new();
        m.add(layer)?;
        names.push(m.name().to_string());
    }
    // In [14]
    let (timesteps, input_dim, hidden_size) = (10, 4, 8);
    let mut model = Sequential::new();
    model.add(
        Bidirectional::new(SimpleRNN::new(hidden_size).with_return_sequences(true))
            .input_shape((timesteps, input_dim)),
    )?;
    names.push(model.name().to_string());
    assert_eq!(model.layers()[0].name(), "bidirectional");
    // In [15]
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
    names.push(model.name().to_string());
    let expected_names: Vec<&str> = session["model_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(names, expected_names);
    let layer_names: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
    assert_eq!(
        layer_names,
        session["layer_names"]["cell15"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        model.summary()?,
        common::notebook_layout(session["summaries"]["cell15"].as_str().unwrap())
    );
    let params: Vec<usize> = model.layers().iter().map(|l| l.count_params()).collect();
    assert_eq!(params, [208, 400, 400, 400]);
    assert_eq!(model.count_params()?, 1408);
    assert_eq!(model.output_shape().unwrap().to_string(), "(None, 10, 16)");
    Ok(())
}

/// The wrapped copies are named as Keras names them.
#[test]
fn bidirectional_copies_are_forward_and_backward_of_the_inner_name() -> seqnn::Result<()> {
    clear_session();
    let bi = Bidirectional::new(SimpleRNN::new(8));
    assert_eq!(bi.forward_layer().name(), "forward_simple_rnn");
    assert_eq!(bi.backward_layer().name(), "backward_simple_rnn");
    assert!(bi.backward_layer().go_backwards());
    assert!(!bi.forward_layer().go_backwards());
    Ok(())
}

/// Cell 11, the NumPy loop `h_t = tanh(Wx·x_t + Wh·h_{t-1} + b)`, against a SimpleRNN given the
/// same weights (kernel = Wxᵀ, recurrent_kernel = Whᵀ, bias = b).
#[test]
fn numpy_loop_equals_simple_rnn() -> seqnn::Result<()> {
    let (timesteps, input_dim, hidden_size) = (10, 4, 8);
    // np.random.random stands in for fixed pseudo-random values in [0, 1).
    let r = |n: usize, seed: usize| -> Vec<f64> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f64 / 1000.0)
            .collect()
    };
    let inputs = Array2::from_shape_vec((timesteps, input_dim), r(40, 1)).unwrap();
    let wx = Array2::from_shape_vec((hidden_size, input_dim), r(32, 2)).unwrap() * 0.2;
    let wh = Array2::from_shape_vec((hidden_size, hidden_size), r(64, 3)).unwrap() * 0.2;
    let b = Array1::from_vec(r(8, 4)) * 0.2;

    let mut hidden = Array1::<f64>::zeros(hidden_size);
    let mut total = Vec::new();
    for input_t in inputs.rows() {
        let output_t = (wx.dot(&input_t) + wh.dot(&hidden) + &b).mapv(f64::tanh);
        total.push(output_t.clone());
        hidden = output_t;
    }

    let mut rnn = SimpleRNN::new(hidden_size).with_return_sequences(true);
    rnn.build(&[Shape::new(vec![None, None, Some(input_dim)])])?;
    let f = |a: &Array2<f64>| a.t().mapv(|v| v as f32).into_dyn();
    rnn.set_weights(&[f(&wx), f(&wh), b.mapv(|v| v as f32).into_dyn()])?;
    let x = inputs.mapv(|v| v as f32).insert_axis(ndarray::Axis(0));
    let y = common::call(&rnn, &[x.view().into_dyn()])?.remove(0);
    assert_eq!(y.shape(), &[1, timesteps, hidden_size]);
    for (t, h) in total.iter().enumerate() {
        for (j, v) in h.iter().enumerate() {
            assert_abs_diff_eq!(y[[0, t, j]], *v as f32, epsilon = 1e-5);
        }
    }
    Ok(())
}
