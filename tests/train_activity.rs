//! Activity regularizers (a layer's `activity_regularizer`, the `ActivityRegularization`
//! layer) in training and evaluation, against Keras: the loss `train_on_batch`,
//! `test_on_batch` and `evaluate` report with sample weights and loss weights
//! (`tests/fixtures/train/activity/`, `tools/keras_reference/generate_train_activity.py`),
//! single steps and builder-made models of the fit fixtures (`tests/fixtures/train/fits/`,
//! `generate_train_fits.py`; their whole trainings are checked by `train_fits.rs`), and what
//! is refused.
#![cfg(feature = "keras")]

mod common;

use std::path::PathBuf;

use ndarray::{ArrayD, ArrayViewD, Axis};
use seqnn::train::Optimizer;
use seqnn::train::Regularizer;
use seqnn::{
    load_any, ActivationFn, ActivityRegularization, AnyModel, Apply, CallContext, Compiled, Dense,
    Dialect, Error, FitOptions, Input, Layer, Loss, Model, RMSprop, Sequential, TimeDistributed,
    GRU, LSTM, SGD,
};
use serde_json::Value;

use common::array;
use common::train_fixture::{arrays, fits_options};

/// The fit fixtures' tolerance: 1e-4, relative above 1.
fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-4 * b.abs().max(1.0)
}

fn assert_close(ours: f32, keras: &Value, what: &str) {
    let k = keras.as_f64().unwrap_or_else(|| panic!("{what}: no value")) as f32;
    assert!(close(ours, k), "{what}: {ours} against Keras's {k}");
}

fn assert_weights(ours: &[ArrayD<f32>], keras: &[ArrayD<f32>], what: &str) {
    assert_eq!(ours.len(), keras.len(), "{what}: weight count");
    for (i, (a, k)) in ours.iter().zip(keras).enumerate() {
        assert_eq!(a.shape(), k.shape(), "{what}: weight {i}");
        for (j, (x, y)) in a.iter().zip(k).enumerate() {
            assert!(close(*x, *y), "{what}: weight {i} at {j}: {x} against {y}");
        }
    }
}

fn log(logs: &[(String, f32)], key: &str) -> f32 {
    logs.iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key} in {logs:?}"))
        .1
}

const DIALECTS: [(&str, Dialect); 2] =
    [("tf_keras", Dialect::TfKeras), ("keras3", Dialect::Keras3)];

fn activity_cases() -> Vec<Value> {
    common::load_from("train/activity", "activity").json["cases"]
        .as_array()
        .unwrap()
        .clone()
}

/// `Dense(units, tanh, activity_regularizer=regularizer)`.
fn tanh_dense(units: usize, regularizer: Regularizer) -> Dense {
    Dense::new(units)
        .with_activation(ActivationFn::Tanh)
        .with_activity_regularizer(regularizer)
}

/// `Input(4) -> Dense(3, tanh, activity_regularizer) name "h"`, the two cases' hidden layer.
fn hidden(regularizer: Regularizer) -> Dense {
    tanh_dense(3, regularizer).with_name("h")
}

/// The case's model, built with the builders, with its initial weights, compiled in `dialect`.
fn case_model(case: &Value, dialect: Dialect) -> seqnn::Result<Model> {
    let x = Input::new((4,));
    let mut model = match case["case"].as_str().unwrap() {
        "dense_sample_weight" => {
            let h = hidden(Regularizer::l2(0.1)).apply(&x)?;
            let out = Dense::new(2).with_name("out").apply(&h)?;
            let mut m = Model::new(&[x], &[out])?;
            m.compile_with(
                Compiled::new(
                    Box::new(SGD::new().with_learning_rate(0.1)),
                    Loss::from_name("mse")?,
                )
                .with_dialect(dialect),
            );
            m
        }
        "two_outputs_loss_weights" => {
            let h = hidden(Regularizer::l1_l2(0.05, 0.1)).apply(&x)?;
            let o1 = Dense::new(2).with_name("o1").apply(&h)?;
            let o2 = Dense::new(1).with_name("o2").apply(&h)?;
            let mut m = Model::new(&[x], &[o1, o2])?;
            m.compile_with(
                Compiled::new(
                    Box::new(SGD::new().with_learning_rate(0.1)),
                    Loss::from_name("mse")?,
                )
                .with_losses(vec![Loss::from_name("mse")?, Loss::from_name("mae")?])
                .with_loss_weights(vec![0.3, 2.0])
                .with_dialect(dialect),
            );
            m
        }
        other => panic!("no case {other}"),
    };
    model.set_weights(&arrays(&case["initial_weights"]))?;
    Ok(model)
}

/// The first `n` rows.
fn head(a: &ArrayD<f32>, n: usize) -> ArrayD<f32> {
    a.slice_axis(Axis(0), (..n).into()).to_owned()
}

fn views(a: &[ArrayD<f32>]) -> Vec<ArrayViewD<'_, f32>> {
    a.iter().map(|a| a.view()).collect()
}

/// Each logged value of Keras's dict `keras` against ours.
fn assert_logs(ours: &[(String, f32)], keras: &Value, what: &str) {
    for (key, value) in keras.as_object().unwrap() {
        assert_close(log(ours, key), value, &format!("{what} {key}"));
    }
}

#[test]
fn reported_losses_hold_the_penalty_once_outside_the_weights() -> seqnn::Result<()> {
    for case in activity_cases() {
        let name = case["case"].as_str().unwrap().to_string();
        let x = array(&case["x"]);
        let ys = arrays(&case["y"]);
        let w = array(&case["sample_weight"]);
        let batch = 8;
        let (xb, yb, wb) = (
            head(&x, batch),
            ys.iter().map(|y| head(y, batch)).collect::<Vec<_>>(),
            head(&w, batch),
        );
        for (lib, dialect) in DIALECTS {
            let keras = &case["results"][lib];
            let what = format!("{name} {lib}");
            let mut model = case_model(&case, dialect)?;
            // test_on_batch, without and with sample weights: the penalty is not weighted.
            let logs = model.evaluate(&[xb.view()], views(&yb), batch)?;
            assert_logs(
                &logs,
                &keras["test_on_batch"],
                &format!("{what} test_on_batch"),
            );
            let logs = model.evaluate_weighted(&[xb.view()], views(&yb), &wb, batch)?;
            assert_logs(
                &logs,
                &keras["test_on_batch_weighted"],
                &format!("{what} weighted test_on_batch"),
            );
            // evaluate over batches of 8 and 4, each penalty divided by its own batch size.
            let logs = model.evaluate_weighted(&[x.view()], views(&ys), &w, batch)?;
            assert_logs(
                &logs,
                &keras["evaluate_weighted"],
                &format!("{what} evaluate"),
            );
            // One weighted step: its loss, and the weights after it.
            let options = FitOptions::new()
                .with_batch_size(batch)
                .with_shuffle(false)
                .with_verbose(0)
                .with_sample_weight(wb.clone());
            let history = model.fit(&[xb.view()], views(&yb), &options)?;
            for (key, value) in keras["train_on_batch_weighted"].as_object().unwrap() {
                let ours = history
                    .get(key)
                    .unwrap_or_else(|| panic!("{what}: no {key}"));
                assert_close(ours[0], value, &format!("{what} train_on_batch {key}"));
            }
            assert_weights(
                &model.get_weights(),
                &arrays(&keras["weights_after_train_on_batch"]),
                &format!("{what} train_on_batch"),
            );
        }
    }
    Ok(())
}

fn fits_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/fits")
}

fn fit_fixture(case: &str) -> Value {
    let path = fits_dir().join(format!("{case}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fit fixtures with activity penalties.
const FIT_CASES: [&str; 9] = [
    "dense_activity_l2_sgd",
    "lstm_activity_l1_adam",
    "masked_lstm_seq_activity_sgd",
    "activity_regularization_layer_rmsprop",
    "functional_activity_states",
    "td_dense_activity_sgd",
    "td_sequential_activity_sgd",
    "td_td_sequential_activity_sgd",
    "frozen_activity_sgd",
];

/// Keras's `train_on_batch` on the first 8 samples of each fit fixture with activity
/// penalties, from each of its files: the loss it reports and the weights after.
#[test]
fn one_step_reports_and_applies_the_penalties_as_keras() -> seqnn::Result<()> {
    for case in FIT_CASES {
        let f = fit_fixture(case);
        let xs: Vec<ArrayD<f32>> = arrays(&f["x"]).iter().map(|x| head(x, 8)).collect();
        let y = head(&array(&f["y"]), 8);
        for (lib, suffix) in [
            ("tf_keras", "tf.h5"),
            ("tf_keras", "tf.keras"),
            ("keras3", "k3.keras"),
        ] {
            let what = format!("{case}.{suffix}");
            let keras = &f["results"][lib]["train_on_batch"];
            let (loss, weights) = match load_any(fits_dir().join(format!("{case}.{suffix}")))? {
                AnyModel::Sequential(mut m) => (m.train_on_batch(&xs[0], &y)?, m.get_weights()),
                AnyModel::Functional(mut m) => {
                    (m.train_on_batch(&views(&xs), y.view())?, m.get_weights())
                }
            };
            assert_close(loss, &keras["loss"], &what);
            assert_weights(&weights, &arrays(&keras["weights"]), &what);
        }
    }
    Ok(())
}

/// Trains the model `build` makes, compiled with `optimizer()` and mse in each dialect, as the
/// fit fixture `case` did, and compares with that Keras's fit: every epoch's loss and the
/// final weights.
fn fits_as_keras(
    case: &str,
    build: impl Fn() -> seqnn::Result<Sequential>,
    optimizer: impl Fn() -> Box<dyn Optimizer>,
) -> seqnn::Result<()> {
    let f = fit_fixture(case);
    for (lib, dialect) in DIALECTS {
        let mut model = build()?;
        model.set_weights(&arrays(&f["initial_weights"]))?;
        model.compile_with(
            Compiled::new(optimizer(), Loss::from_name("mse")?).with_dialect(dialect),
        );
        let h = model.fit(&array(&f["x"][0]), &array(&f["y"]), &fits_options())?;
        let keras = &f["results"][lib];
        for (epoch, (ours, k)) in h
            .get("loss")
            .unwrap()
            .iter()
            .zip(keras["history"]["loss"].as_array().unwrap())
            .enumerate()
        {
            assert_close(
                *ours,
                k,
                &format!("{case} {lib} loss of epoch {}", epoch + 1),
            );
        }
        assert_weights(
            &model.get_weights(),
            &arrays(&keras["final_weights"]),
            &format!("{case} {lib}"),
        );
    }
    Ok(())
}

fn sgd() -> Box<dyn Optimizer> {
    Box::new(SGD::new().with_learning_rate(0.1))
}

/// A Sequential of `layers`, in order.
fn stack(layers: Vec<Box<dyn Layer>>) -> seqnn::Result<Sequential> {
    let mut m = Sequential::new();
    for layer in layers {
        m.add_boxed(layer)?;
    }
    Ok(m)
}

#[test]
fn builders_train_as_the_keras_files_do() -> seqnn::Result<()> {
    let dense = || {
        stack(vec![
            Box::new(tanh_dense(4, Regularizer::l2(0.05)).input_shape((6,))),
            Box::new(Dense::new(1)),
        ])
    };
    fits_as_keras("dense_activity_l2_sgd", dense, sgd)?;
    let layer = || {
        stack(vec![
            Box::new(LSTM::new(4).input_shape((5, 3)).with_return_sequences(true)),
            Box::new(ActivityRegularization::new().with_l1(0.01).with_l2(0.05)),
            Box::new(GRU::new(3)),
            Box::new(Dense::new(1)),
        ])
    };
    let rmsprop = || -> Box<dyn Optimizer> { Box::new(RMSprop::new().with_learning_rate(0.01)) };
    fits_as_keras("activity_regularization_layer_rmsprop", layer, rmsprop)?;
    // tf_keras counts the wrapped Sequential's penalty twice over the batch·6 rows, Keras 3
    // once over the batch.
    let wrapped = || {
        let inner = stack(vec![
            Box::new(tanh_dense(3, Regularizer::l2(0.1)).input_shape((4,))),
            Box::new(Dense::new(2)),
        ])?;
        stack(vec![
            Box::new(LSTM::new(4).input_shape((6, 3)).with_return_sequences(true)),
            Box::new(TimeDistributed::new(inner)),
        ])
    };
    fits_as_keras("td_sequential_activity_sgd", wrapped, sgd)
}

/// A model whose only change is its activity regularizer: `Dense(2)` on 3 features.
fn small_model(regularizer: Option<Regularizer>) -> seqnn::Result<Sequential> {
    seqnn::set_random_seed(1);
    let mut m = Sequential::new();
    m.add(
        Dense::new(2)
            .input_shape((3,))
            .with_name("penalized")
            .with_activity_regularizer(regularizer),
    )?;
    m.compile("sgd", "mse")?;
    Ok(m)
}

fn small_data() -> (ndarray::Array2<f32>, ndarray::Array2<f32>) {
    let x = ndarray::Array2::from_shape_fn((8, 3), |(b, f)| (b as f32 - 3.0) * 0.1 + f as f32);
    let y = ndarray::Array2::from_shape_fn((8, 2), |(b, c)| (b + c) as f32 * 0.1);
    (x, y)
}

#[test]
fn predict_adds_nothing_and_evaluate_adds_the_penalty_of_its_outputs() -> seqnn::Result<()> {
    let (x, y) = small_data();
    let plain = small_model(None)?;
    let mut penalized = small_model(Some(Regularizer::l1_l2(0.2, 0.3)))?;
    penalized.set_weights(&plain.get_weights())?;
    let out = plain.predict(&x)?;
    assert_eq!(penalized.predict(&x)?, out, "predict is unchanged");
    // Each batch's penalty is divided by its size, and evaluate weighs the batches' losses by
    // their sizes: batches of 3, 3 and 2 add the penalty of all 8 outputs over 8, as one does.
    let (abs, sq) = out
        .iter()
        .fold((0.0_f32, 0.0_f32), |(a, q), v| (a + v.abs(), q + v * v));
    let whole = (0.2 * abs + 0.3 * sq) / 8.0;
    let loss = |logs: Vec<(String, f32)>| log(&logs, "loss");
    for batch in [8, 3] {
        let a = loss(plain.evaluate(&x, &y, batch)?);
        let b = loss(penalized.evaluate(&x, &y, batch)?);
        assert!(
            (b - a - whole).abs() < 1e-5,
            "batch {batch}: {a} {b} {whole}"
        );
    }
    // A call's context adds it only when asked to.
    let xv = x.view().into_dyn();
    let mut ctx = CallContext::training();
    Layer::call(&penalized, &[xv.view()], &mut ctx)?;
    assert_eq!(ctx.activity_penalty(), 0.0);
    let mut ctx = CallContext::inference().with_activity_penalties(Dialect::Keras3);
    Layer::call(&penalized, &[xv.view()], &mut ctx)?;
    assert!((ctx.activity_penalty() - whole).abs() < 1e-5);
    Ok(())
}

#[test]
fn an_orthogonal_activity_regularizer_is_refused_before_any_step() -> seqnn::Result<()> {
    let (x, y) = small_data();
    let mut m = small_model(Some(Regularizer::Orthogonal {
        factor: 0.01,
        rows: true,
    }))?;
    let before = m.get_weights();
    for err in [
        m.fit(&x, &y, &FitOptions::new().with_verbose(0))
            .expect_err("refused"),
        m.train_on_batch(&x, &y).expect_err("refused"),
        m.evaluate(&x, &y, 8).expect_err("refused"),
    ] {
        assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "layer \"penalized\" (OrthogonalRegularizer): the OrthogonalRegularizer as \
             activity_regularizer is not implemented in training (it is kept, saved, and has \
             no effect on predict)"
        );
    }
    assert_eq!(m.get_weights(), before);
    assert_eq!(m.compiled().unwrap().optimizer().iterations(), 0);
    // It still predicts: the option matters only to the loss.
    m.predict(&x)?;
    Ok(())
}
