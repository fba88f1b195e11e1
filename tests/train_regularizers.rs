//! Regularizers and constraints through the API, against the Keras fits of
//! `tests/fixtures/train/fits/` (`tools/keras_reference/generate_train_fits.py`), and what
//! training refuses. The activity regularizers have their own file, `train_activity.rs`.
#![cfg(feature = "keras")]

mod common;

use std::path::PathBuf;

use ndarray::{Array2, ArrayD};
use seqnn::train::{Constraint, Regularizer, SGD};
use seqnn::{
    ActivationFn, Compiled, Dense, Dialect, Error, FitOptions, Layer, Loss, Sequential, LSTM,
};
use serde_json::Value;

use common::array;

fn fixture(case: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/train/fits")
        .join(format!("{case}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-4 * b.abs().max(1.0)
}

/// Trains `m` as the fit fixture `f` was trained and compares with `lib`'s fit: every epoch's
/// loss and the final weights.
fn fits_as(m: &mut Sequential, f: &Value, lib: &str) -> seqnn::Result<()> {
    let (x, y) = (array(&f["x"][0]), array(&f["y"]));
    let h = m.fit(&x, &y, &common::train_fixture::fits_options())?;
    let keras = &f["results"][lib];
    for (ours, k) in h
        .get("loss")
        .unwrap()
        .iter()
        .zip(keras["history"]["loss"].as_array().unwrap())
    {
        assert!(
            close(*ours, k.as_f64().unwrap() as f32),
            "{lib}: loss {ours} against {k}"
        );
    }
    let finals = common::train_fixture::arrays(&keras["final_weights"]);
    for (ours, k) in m.get_weights().iter().zip(&finals) {
        for (a, b) in ours.iter().zip(k) {
            assert!(close(*a, *b), "{lib}: weight {a} against {b}");
        }
    }
    Ok(())
}

/// `lstm_regularized_sgd` built with the builders instead of loaded: the same fit as Keras's.
#[test]
fn builders_train_as_the_keras_file_does() -> seqnn::Result<()> {
    let f = fixture("lstm_regularized_sgd");
    let mut m = Sequential::new();
    m.add(
        LSTM::new(4)
            .input_shape((5, 3))
            .with_kernel_regularizer(Regularizer::l2(0.01))
            .with_recurrent_regularizer(Regularizer::l1(0.005))
            .with_bias_regularizer(Regularizer::l1_l2(0.001, 0.002)),
    )?;
    m.add(
        Dense::new(1)
            .with_kernel_regularizer(Regularizer::l2(0.05))
            .with_kernel_constraint(Constraint::max_norm(0.8))
            .with_bias_constraint(Constraint::non_neg()),
    )?;
    let initial: Vec<ArrayD<f32>> = f["initial_weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(array)
        .collect();
    m.set_weights(&initial)?;
    m.compile(SGD::new().with_learning_rate(0.1).with_momentum(0.5), "mse")?;
    fits_as(&mut m, &f, "tf_keras")?;
    // The constraints held after every step: the Dense bias is not negative, its kernel's
    // column norm at most 0.8.
    let w = m.get_weights();
    let norm: f32 = w[3].iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!(norm <= 0.8 + 1e-6, "{norm}");
    assert!(w[4].iter().all(|&b| b >= 0.0));
    Ok(())
}

fn small_model(layer: Dense) -> seqnn::Result<Sequential> {
    seqnn::set_random_seed(1);
    let mut m = Sequential::new();
    m.add(layer.input_shape((3,)))?;
    m.compile("sgd", "mse")?;
    Ok(m)
}

fn small_data() -> (Array2<f32>, Array2<f32>) {
    let x = Array2::from_shape_fn((8, 3), |(b, f)| (b as f32 - 3.0) * 0.1 + f as f32 * 0.2);
    let y = Array2::from_shape_fn((8, 2), |(b, c)| (b + c) as f32 * 0.1);
    (x, y)
}

/// The error of a fit that must fail before its first step, having checked that the weights
/// are unchanged.
fn refused(m: &mut Sequential) -> Error {
    let before = m.get_weights();
    let (x, y) = small_data();
    let err = m
        .fit(&x, &y, &FitOptions::new().with_verbose(0))
        .expect_err("refused");
    assert_eq!(m.get_weights(), before);
    err
}

#[test]
fn a_regularizer_training_lacks_is_refused_before_any_step() -> seqnn::Result<()> {
    let mut m = small_model(
        Dense::new(2).with_kernel_regularizer(Regularizer::Orthogonal {
            factor: 0.01,
            rows: true,
        }),
    )?;
    let err = refused(&mut m);
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("OrthogonalRegularizer"), "{err}");
    // It still predicts: the option matters only in training.
    m.predict(&small_data().0)?;
    Ok(())
}

#[test]
fn a_constraint_over_an_axis_the_weight_lacks_is_refused_before_any_step() -> seqnn::Result<()> {
    let mut m = small_model(
        Dense::new(2).with_bias_constraint(Constraint::max_norm(1.0).with_axes(vec![1])),
    )?;
    let err = refused(&mut m);
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(
        err.to_string().contains("bias") && err.to_string().contains("[2]"),
        "{err}"
    );
    Ok(())
}

#[test]
fn evaluate_counts_the_penalties_as_keras_does() -> seqnn::Result<()> {
    let (x, y) = small_data();
    let plain = small_model(Dense::new(2))?;
    let mut penalized = small_model(Dense::new(2).with_kernel_regularizer(Regularizer::l2(0.5)))?;
    penalized.set_weights(&plain.get_weights())?;
    let kernel = plain.get_weights()[0].clone();
    let penalty: f32 = 0.5 * kernel.iter().map(|v| v * v).sum::<f32>();
    let a = plain.evaluate(&x, &y, 8)?;
    let b = penalized.evaluate(&x, &y, 8)?;
    let loss = |logs: &[(String, f32)]| logs.iter().find(|(k, _)| k == "loss").unwrap().1;
    assert!(
        (loss(&b) - loss(&a) - penalty).abs() < 1e-5,
        "{a:?} {b:?} {penalty}"
    );
    Ok(())
}

#[test]
fn files_with_custom_or_unknown_rules_are_refused_and_strings_are_read() {
    let config = |reg: &str| {
        format!(
            r#"{{"class_name": "Sequential", "config": {{"name": "s", "layers": [
            {{"class_name": "InputLayer", "config": {{"batch_input_shape": [null, 3],
              "dtype": "float32", "name": "input_1"}}}},
            {{"class_name": "Dense", "config": {{"name": "d", "units": 2,
              "activation": "linear", "use_bias": true, "kernel_regularizer": {reg}}}}}
            ]}}, "keras_version": "2.21.0", "backend": "tensorflow"}}"#
        )
    };
    let m = seqnn::model_from_json(&config(r#""l2""#)).expect("a string regularizer");
    assert_eq!(m.weight_rules()[0].regularizer, Some(Regularizer::l2(0.01)));
    let m = seqnn::model_from_json(&config(
        r#"{"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.25}}"#,
    ))
    .expect("old Keras's L1L2");
    assert_eq!(
        m.weight_rules()[0].regularizer,
        Some(Regularizer::l1_l2(0.0, 0.25))
    );
    for bad in [
        r#"{"module": null, "class_name": "MyReg", "config": {}, "registered_name": "Custom>MyReg"}"#,
        r#"{"class_name": "L3", "config": {}}"#,
    ] {
        let err = seqnn::model_from_json(&config(bad)).expect_err("refused");
        assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
        assert!(err.to_string().contains("kernel_regularizer"), "{err}");
    }
}

/// An activity regularizer, once refused by training, counts as in both Kerases:
/// `frozen_activity_sgd` built with the builders, its frozen middle Dense penalized by
/// `L2(0.2)` on its output. Unlike a frozen layer's weight penalty (tf_keras only, see
/// `frozen_regularized_rmsprop`), both Kerases add it, and its gradient reaches the first
/// Dense through the frozen one.
#[test]
fn an_activity_regularizer_trains_as_keras_even_on_a_frozen_layer() -> seqnn::Result<()> {
    let f = fixture("frozen_activity_sgd");
    for (lib, dialect) in [("tf_keras", Dialect::TfKeras), ("keras3", Dialect::Keras3)] {
        let mut m = Sequential::new();
        m.add(Dense::new(4).input_shape((6,)))?;
        m.add(
            Dense::new(3)
                .with_activation(ActivationFn::Tanh)
                .with_trainable(false)
                .with_name("penalized")
                .with_activity_regularizer(Regularizer::l2(0.2)),
        )?;
        m.add(Dense::new(1))?;
        m.set_weights(&common::train_fixture::arrays(&f["initial_weights"]))?;
        m.compile_with(
            Compiled::new(
                Box::new(SGD::new().with_learning_rate(0.1)),
                Loss::from_name("mse")?,
            )
            .with_dialect(dialect),
        );
        let frozen = |m: &Sequential| -> Vec<ArrayD<f32>> {
            m.layers()[1]
                .weights()
                .iter()
                .map(|w| w.to_owned())
                .collect()
        };
        let before = frozen(&m);
        fits_as(&mut m, &f, lib)?;
        assert_eq!(frozen(&m), before, "{lib}: the frozen layer is unchanged");
    }
    Ok(())
}
