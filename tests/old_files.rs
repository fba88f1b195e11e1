//! Files of Keras 2.0 to 2.2 and of tf.keras 2.2: every case of `tests/fixtures/old/`, written
//! by `tools/keras_reference/generate_old_files.py` in the HDF5 layout those versions wrote
//! (read from their sources, cited there), loads and predicts what tf_keras 2.21 predicts for
//! the same model and weights (1e-5, relative above 1), with Keras's parameter counts and
//! summary.
#![cfg(feature = "keras")]

mod common;

use std::path::PathBuf;

use ndarray::ArrayD;
use seqnn::{load_model, Sequential};
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
    assert!(out.len() >= 16, "the old-format fixtures are missing");
    out
}

/// The case's input: inline, or in its `.npy` file (8,800 steps).
fn input(c: &Value) -> ArrayD<f32> {
    match c["input"]["file"].as_str() {
        Some(file) => ndarray_npy::read_npy(dir().join(file)).unwrap(),
        None => common::array(&c["input"]),
    }
}

fn load(name: &str) -> Sequential {
    let path = dir().join(format!("{name}.h5"));
    load_model(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn old_files_predict_as_keras() {
    for (name, c) in cases() {
        let mut model = load(&name);
        let x = input(&c);
        let y = model
            .predict_stateful(&x)
            .unwrap_or_else(|e| panic!("{name}: predict: {e}"));
        let expected = common::array(&c["expected"]["tf_keras"]);
        common::assert_close(&y, &expected, &name);
        if let Some(second) = c.get("second_predict") {
            // A stateful layer goes on from the states the first predict left.
            let y = model.predict_stateful(&x).unwrap();
            common::assert_close(&y, &common::array(&second["tf_keras"]), &name);
        }
    }
}

#[test]
fn old_files_have_keras_params_and_summaries() {
    for (name, c) in cases() {
        if name == "k224_cudnn" {
            // CuDNN layers load as the LSTM and GRU they are on a CPU, as tf_keras converts
            // them (their weights checked in old_files_predict_as_keras): their rows and counts
            // are those layers', without cuDNN's second bias.
            continue;
        }
        let model = load(&name);
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
    }
}

/// A file saved again by seqnn keeps the model: Keras 3 has no Keras 2 hard_sigmoid, so those
/// models are refused with a clear error; every other one loads back with the same outputs.
#[test]
fn old_files_convert_to_keras3_files() {
    let tmp = std::env::temp_dir().join(format!("seqnn-old-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut saved = 0;
    let mut keras3_compatible = 0;
    for (name, c) in cases() {
        if !c["model_config"].to_string().contains("hard_sigmoid") {
            keras3_compatible += 1;
        }
        let model = load(&name);
        let out = tmp.join(format!("{name}.keras"));
        match model.save(&out) {
            Ok(()) => {
                let mut back = load_model(&out).unwrap();
                let y = back.predict_stateful(&input(&c)).unwrap();
                common::assert_close(&y, &common::array(&c["expected"]["tf_keras"]), &name);
                saved += 1;
            }
            Err(seqnn::Error::Unsupported { message, .. }) => {
                assert!(message.contains("hard_sigmoid"), "{name}: {message}")
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    assert_eq!(
        saved, keras3_compatible,
        "models without hard_sigmoid all save"
    );
    std::fs::remove_dir_all(&tmp).ok();
}
