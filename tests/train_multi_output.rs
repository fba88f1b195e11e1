//! Training a Functional model of several outputs against Keras: the models of
//! `tests/fixtures/train/multi_output/` (`tools/keras_reference/generate_train_multi_output.py`),
//! an LSTM with a regression head and a classification head, compiled in tf_keras 2.21 and
//! Keras 3.15 with a loss per output (a list, or a dict by output name), `loss_weights` and
//! per-output metrics, are loaded compiled from the file, trained 3 epochs without shuffling
//! and compared with Keras's `fit`: every logged value (`loss`, `reg_loss`, `cls_accuracy`,
//! `val_...`), the final weights and `evaluate` (1e-4, relative above 1).
#![cfg(feature = "keras")]

mod common;

use std::path::PathBuf;

use ndarray::ArrayD;
use seqnn::{load_any, AnyModel, Compiled, FitOptions, Loss, Model, SGD};
use serde_json::Value;

use common::array;

const TOL: f32 = 1e-4;

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= TOL * b.abs().max(1.0)
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/multi_output")
}

fn fixture(case: &str, lib: &str) -> Value {
    let path = dir().join(format!("{case}.{lib}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn arrays(v: &Value) -> Vec<ArrayD<f32>> {
    v.as_array().unwrap().iter().map(array).collect()
}

fn options(f: &Value) -> FitOptions {
    let fit = &f["fit"];
    FitOptions::new()
        .with_epochs(fit["epochs"].as_u64().unwrap() as usize)
        .with_batch_size(fit["batch_size"].as_u64().unwrap() as usize)
        .with_shuffle(false)
        .with_verbose(0)
        .with_validation_split(fit["validation_split"].as_f64().unwrap() as f32)
}

fn functional(path: &std::path::Path) -> Model {
    match load_any(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        AnyModel::Functional(m) => m,
        AnyModel::Sequential(_) => panic!("a Functional model"),
    }
}

/// Trains `model` as the fixture says and compares with Keras.
fn train_and_compare(mut model: Model, f: &Value, what: &str) {
    model
        .set_weights(&arrays(&f["initial_weights"]))
        .expect("initial weights");
    let x = array(&f["x"]);
    let ys = arrays(&f["y"]);
    let targets: Vec<_> = ys.iter().map(|a| a.view()).collect();
    let history = model
        .fit(&[x.view()], targets.clone(), &options(f))
        .unwrap_or_else(|e| panic!("{what}: fit: {e}"));
    let keras = f["history"].as_object().unwrap();
    let ours: Vec<&String> = history.history().keys().collect();
    let theirs: Vec<&String> = keras.keys().collect();
    assert_eq!(ours, theirs, "{what}: the logged names");
    for (key, values) in keras {
        for (epoch, (a, b)) in history
            .get(key)
            .unwrap()
            .iter()
            .zip(values.as_array().unwrap())
            .enumerate()
        {
            let b = b.as_f64().unwrap() as f32;
            assert!(
                close(*a, b),
                "{what}: {key} of epoch {}: {a} against Keras's {b}",
                epoch + 1
            );
        }
    }
    for (i, (w, k)) in model
        .get_weights()
        .iter()
        .zip(arrays(&f["final_weights"]))
        .enumerate()
    {
        assert_eq!(w.shape(), k.shape(), "{what}: weight {i}");
        for (a, b) in w.iter().zip(&k) {
            assert!(close(*a, *b), "{what}: weight {i}: {a} against Keras's {b}");
        }
    }
    let logs = model.evaluate(&[x.view()], targets, 8).unwrap();
    let keras_ev = f["evaluate"].as_object().unwrap();
    assert_eq!(logs.len(), keras_ev.len(), "{what}: evaluate's names");
    for (name, value) in logs {
        let b = keras_ev[&name].as_f64().unwrap() as f32;
        assert!(
            close(value, b),
            "{what}: evaluate {name}: {value} against {b}"
        );
    }
}

#[test]
fn files_compiled_with_a_loss_per_output_train_as_keras() {
    for case in ["list", "dict"] {
        for (lib, suffix) in [("tf", "tf.keras"), ("tf", "tf.h5"), ("k3", "k3.keras")] {
            let f = fixture(case, lib);
            let path = dir().join(format!("{case}.{suffix}"));
            let model = functional(&path);
            let c = model.compiled().expect("compiled from the file");
            assert_eq!(c.losses().len(), 2, "{case}.{suffix}");
            assert_eq!(c.loss_weights().len(), 2, "{case}.{suffix}");
            train_and_compare(model, &f, &format!("{case}.{suffix}"));
        }
    }
}

#[test]
fn the_api_compiles_a_loss_per_output() {
    // model.compile(SGD(0.1, momentum=0.9), loss=["mse", "sparse_categorical_crossentropy"],
    //               loss_weights=[1.0, 0.5], metrics={"cls": ["accuracy"]})
    let f = fixture("list", "tf");
    let mut model = functional(&dir().join("list.tf.keras"));
    model.compile_with(
        Compiled::new(
            Box::new(SGD::new().with_learning_rate(0.1).with_momentum(0.9)),
            Loss::MeanSquaredError,
        )
        .with_losses(vec![
            Loss::MeanSquaredError,
            Loss::SparseCategoricalCrossentropy {
                from_logits: false,
                ignore_class: None,
            },
        ])
        .with_loss_weights(vec![1.0, 0.5])
        .with_output_metrics("cls", &["accuracy"])
        .unwrap(),
    );
    train_and_compare(model, &f, "list via the API");
}

#[test]
fn a_saved_model_keeps_its_losses_and_weights() {
    let model = functional(&dir().join("dict.k3.keras"));
    let path = std::env::temp_dir().join(format!("seqnn_multi_{}.keras", std::process::id()));
    model.save(&path).unwrap();
    let back = functional(&path);
    std::fs::remove_file(&path).ok();
    let (a, b) = (model.compiled().unwrap(), back.compiled().unwrap());
    assert_eq!(a.losses(), b.losses());
    assert_eq!(a.loss_weights(), b.loss_weights());
    assert_eq!(b.loss_weights(), &[2.0, 1.0]);
    let names = |c: &Compiled| -> Vec<(String, Vec<String>)> {
        c.output_metrics()
            .iter()
            .map(|(o, ms)| (o.clone(), ms.iter().map(|m| m.name().to_string()).collect()))
            .collect()
    };
    assert_eq!(names(a), names(b));
    // And it trains the same after the round trip.
    train_and_compare(back, &fixture("dict", "k3"), "dict.k3 saved by seqnn");
}

#[test]
fn mismatched_targets_losses_and_weights_are_refused_and_change_nothing() {
    let f = fixture("list", "tf");
    let x = array(&f["x"]);
    let ys = arrays(&f["y"]);
    let mut model = functional(&dir().join("list.tf.keras"));
    let before = model.get_weights();
    let opts = FitOptions::new().with_verbose(0).with_epochs(1);
    // One target for two outputs.
    let err = model.fit(&[x.view()], ys[0].view(), &opts).unwrap_err();
    assert!(
        err.to_string()
            .contains("the model has 2 output(s), but fit was given 1 target array(s)"),
        "{err}"
    );
    // Targets of different lengths.
    let short = ys[1].slice_axis(ndarray::Axis(0), (0..5).into());
    let err = model
        .fit(&[x.view()], vec![ys[0].view(), short], &opts)
        .unwrap_err();
    assert!(
        err.to_string().contains("Data cardinality is ambiguous"),
        "{err}"
    );
    // Three losses, or three weights, for two outputs.
    let compiled = model.compiled().unwrap().clone();
    model.compile_with(
        compiled
            .clone()
            .with_losses(vec![Loss::MeanSquaredError; 3]),
    );
    let targets: Vec<_> = ys.iter().map(|a| a.view()).collect();
    let err = model.fit(&[x.view()], targets.clone(), &opts).unwrap_err();
    assert!(
        err.to_string()
            .contains("The model has 2 outputs, but you passed 3 losses"),
        "{err}"
    );
    model.compile_with(compiled.clone().with_loss_weights(vec![1.0, 2.0, 3.0]));
    let err = model.fit(&[x.view()], targets.clone(), &opts).unwrap_err();
    assert!(
        err.to_string().contains("loss_weights with 3 entries"),
        "{err}"
    );
    model.compile_with(compiled.with_output_metrics("nope", &["mae"]).unwrap());
    let err = model.fit(&[x.view()], targets, &opts).unwrap_err();
    assert!(err.to_string().contains("\"nope\""), "{err}");
    assert_eq!(model.get_weights(), before, "the weights are unchanged");
}
