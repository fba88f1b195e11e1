//! `sample_weight` and `class_weight` against Keras: each model of
//! `tests/fixtures/train/weights/` (`tools/keras_reference/generate_train_weights.py`),
//! compiled and saved by tf_keras 2.21 and Keras 3.15 before training, is loaded and trained
//! by seqnn with the case's weights; every epoch's logs, the final weights and the weighted
//! `evaluate` match Keras's at 1e-4, and where Keras refuses the call seqnn refuses it too.
#![cfg(feature = "keras")]

mod common;

use std::path::PathBuf;

use seqnn::{load_any, AnyModel, FitOptions};
use serde_json::Value;

use common::array;
use common::train_fixture::{compare_arrays, compare_history, compare_logs};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/weights")
}

fn options(f: &Value) -> FitOptions {
    let mut o = common::train_fixture::fits_options();
    if let Some(split) = f["fit"]["validation_split"].as_f64() {
        o = o.with_validation_split(split as f32);
    }
    if !f["sample_weight"].is_null() {
        o = o.with_sample_weight(array(&f["sample_weight"]));
    }
    if let Some(cw) = f["class_weight"].as_object() {
        o = o.with_class_weight(
            cw.iter()
                .map(|(k, v)| (k.parse().unwrap(), v.as_f64().unwrap() as f32)),
        );
    }
    o
}

fn run(f: &Value, lib: &str, file: &str) -> Result<(), String> {
    let AnyModel::Sequential(mut m) = load_any(dir().join(file)).map_err(|e| e.to_string())? else {
        return Err("not a Sequential".into());
    };
    let keras = &f["results"][lib];
    let (x, y) = (array(&f["x"]), array(&f["y"]));
    let fitted = m.fit(&x, &y, &options(f));
    if let Some(err) = keras["error"].as_str() {
        let Err(e) = fitted else {
            return Err(format!("Keras refuses this fit ({err}), seqnn trained"));
        };
        if err.contains("at the same time") && !e.to_string().contains("at the same time") {
            return Err(format!("refused with {e}, Keras with {err}"));
        }
        return Ok(());
    }
    let h = fitted.map_err(|e| format!("fit: {e}"))?;
    compare_history(&h, &keras["history"])?;
    compare_arrays("weight", &m.get_weights(), &keras["final_weights"])?;
    let ev = if f["sample_weight"].is_null() {
        m.evaluate(&x, &y, 8)
    } else {
        m.evaluate_weighted(&x, &y, &array(&f["sample_weight"]), 8)
    }
    .map_err(|e| format!("evaluate: {e}"))?;
    compare_logs("evaluate", &ev, &keras["evaluate"])?;
    Ok(())
}

#[test]
fn weighted_fits_end_where_keras_fits_end() {
    let (cases, failures) = common::train_fixture::run_cases(&dir(), run);
    assert!(cases >= 7, "the fixtures are there");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A compiled two-class model and data, for the refusals.
fn binary() -> (
    seqnn::Sequential,
    ndarray::Array3<f32>,
    ndarray::Array2<f32>,
) {
    seqnn::set_random_seed(2);
    let mut m = seqnn::Sequential::new();
    m.add(seqnn::SimpleRNN::new(3).input_shape((4, 2))).unwrap();
    m.add(seqnn::Dense::new(1).with_activation(seqnn::ActivationFn::Sigmoid))
        .unwrap();
    m.compile("sgd", "binary_crossentropy").unwrap();
    let x = ndarray::Array3::from_shape_fn((6, 4, 2), |(b, t, f)| (b + t + f) as f32 * 0.1);
    let y = ndarray::Array2::from_shape_fn((6, 1), |(b, _)| (b % 2) as f32);
    (m, x, y)
}

#[test]
fn bad_weights_are_refused_before_any_step() {
    let (mut m, x, y) = binary();
    let before = m.get_weights();
    let quiet = FitOptions::new().with_verbose(0);
    for (options, text) in [
        (
            quiet
                .clone()
                .with_sample_weight(ndarray::Array1::<f32>::ones(5).into_dyn()),
            "6 samples",
        ),
        (
            quiet.clone().with_class_weight([(0, 1.0), (3, 2.0)]),
            "class 3",
        ),
        (
            quiet.clone().with_class_weight([(0, f32::NAN), (1, 1.0)]),
            "not a finite",
        ),
        // tf_keras wants a weight for each class from 0 up (the files' Keras here is tf_keras).
        (
            quiet.clone().with_class_weight([(1, 2.0)]),
            "keys from 0 to one less",
        ),
    ] {
        let err = m.fit(&x, &y, &options).expect_err("refused");
        assert!(err.to_string().contains(text), "{err} lacks {text:?}");
        assert_eq!(m.get_weights(), before);
        assert_eq!(m.compiled().unwrap().optimizer().iterations(), 0);
    }
    // A label that is no class of the output.
    let mut y3 = y.clone();
    y3[[2, 0]] = 3.0;
    let err = m
        .fit(&x, &y3, &quiet.with_class_weight([(0, 1.0), (1, 2.0)]))
        .expect_err("refused");
    assert!(err.to_string().contains("label 3 of sample 2"), "{err}");
    assert_eq!(m.get_weights(), before);
}
