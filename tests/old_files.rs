//! Files of Keras 2.0 to 2.2 and of tf.keras 2.2: every case of `tests/fixtures/old/`, written
//! by `tools/keras_reference/generate_old_files.py` in the HDF5 layout those versions wrote
//! (read from their sources, cited there), loads and predicts what tf_keras 2.21 predicts for
//! the same model and weights (1e-5, relative above 1), with Keras's parameter counts and
//! summary. Sequential and Functional models alike, with one input or two.
//!
//! Each test checks every case and then fails once, naming each case that failed and why, so
//! that one failing case does not hide the others.
#![cfg(feature = "keras")]

mod common;

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use ndarray::ArrayD;
use seqnn::{load_any, AnyModel, InputArray};
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/old")
}

fn cases() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if let Some(case) = name.strip_suffix(".json") {
            if case != "manifest" {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((case.to_string(), serde_json::from_str(&text).unwrap()));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 26, "the old-format fixtures are missing");
    out
}

/// Runs `check` on every case, then fails if any case failed, listing them all.
fn for_every_case(test: &str, check: impl Fn(&str, &Value)) {
    let mut failures = Vec::new();
    let all = cases();
    for (name, c) in &all {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(name, c))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".to_string());
            failures.push(format!("  {name}: {message}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{test}: {} of {} cases fail:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

/// The case's inputs, in the order of the model's inputs: `inputs` (two-input models), or
/// `input`, inline or in its `.npy` file (8,800 steps).
fn inputs(c: &Value) -> Vec<ArrayD<f32>> {
    if let Some(list) = c["inputs"].as_array() {
        return list.iter().map(common::array).collect();
    }
    vec![match c["input"]["file"].as_str() {
        Some(file) => ndarray_npy::read_npy(dir().join(file)).unwrap(),
        None => common::array(&c["input"]),
    }]
}

fn views(xs: &[ArrayD<f32>]) -> Vec<InputArray<'_>> {
    xs.iter().map(InputArray::from).collect()
}

fn load(name: &str) -> AnyModel {
    let path = dir().join(format!("{name}.h5"));
    load_any(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The model's only output (every case has one).
fn predict_one(model: &mut AnyModel, xs: &[ArrayD<f32>], name: &str) -> ArrayD<f32> {
    let mut ys = model
        .predict_stateful(&views(xs))
        .unwrap_or_else(|e| panic!("{name}: predict: {e}"));
    assert_eq!(ys.len(), 1, "{name}: outputs");
    ys.remove(0)
}

#[test]
fn old_files_predict_as_keras() {
    for_every_case("old_files_predict_as_keras", |name, c| {
        let mut model = load(name);
        let xs = inputs(c);
        assert_eq!(model.input_count(), xs.len(), "{name}: inputs");
        let y = predict_one(&mut model, &xs, name);
        let expected = common::array(&c["expected"]["tf_keras"]);
        common::assert_close(&y, &expected, name);
        if let Some(second) = c.get("second_predict") {
            // A stateful layer goes on from the states the first predict left.
            let y = predict_one(&mut model, &xs, name);
            common::assert_close(&y, &common::array(&second["tf_keras"]), name);
        }
    });
}

#[test]
fn old_files_have_keras_params_and_summaries() {
    for_every_case("old_files_have_keras_params_and_summaries", |name, c| {
        if name == "k224_cudnn" {
            // CuDNN layers load as the LSTM and GRU they are on a CPU, as tf_keras converts
            // them (their weights checked in old_files_predict_as_keras): their rows and counts
            // are those layers', without cuDNN's second bias.
            return;
        }
        let model = load(name);
        assert_eq!(
            model.count_params().unwrap() as u64,
            c["params"].as_u64().unwrap(),
            "{name}: params"
        );
        // The summaries are tf_keras's for the file (its CuDNN classes included); tf_keras
        // cannot load the GRUs of Keras 2.0 and 2.1, which have no reset_after.
        if let Some(summary) = c["summary"]["tf_keras"].as_str() {
            let keras = common::notebook_layout(summary);
            assert_eq!(model.summary().unwrap(), keras, "{name}: summary");
        }
    });
}

/// A file saved again by seqnn keeps the model: Keras 3 has no Keras 2 hard_sigmoid, so those
/// models are refused with a clear error; every other one loads back with the same outputs.
#[test]
fn old_files_convert_to_keras3_files() {
    let tmp = std::env::temp_dir().join(format!("seqnn-old-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let saved = Cell::new(0);
    let keras3_compatible = Cell::new(0);
    for_every_case("old_files_convert_to_keras3_files", |name, c| {
        let compatible = !c["model_config"].to_string().contains("hard_sigmoid");
        let model = load(name);
        let out = tmp.join(format!("{name}.keras"));
        match model.save(&out) {
            Ok(()) => {
                assert!(
                    compatible,
                    "{name}: saved a Keras 2 hard_sigmoid for Keras 3"
                );
                let mut back = load_any(&out).unwrap_or_else(|e| panic!("{name}: reload: {e}"));
                let y = predict_one(&mut back, &inputs(c), name);
                common::assert_close(&y, &common::array(&c["expected"]["tf_keras"]), name);
                saved.set(saved.get() + 1);
            }
            Err(seqnn::Error::Unsupported { message, .. }) => {
                assert!(message.contains("hard_sigmoid"), "{name}: {message}")
            }
            Err(e) => panic!("{name}: {e}"),
        }
        if compatible {
            keras3_compatible.set(keras3_compatible.get() + 1);
        }
    });
    assert_eq!(
        saved.get(),
        keras3_compatible.get(),
        "models without hard_sigmoid all save"
    );
    std::fs::remove_dir_all(&tmp).ok();
}
