//! Reading the training fixtures (`tools/keras_reference/generate_train_losses.py`): the cases
//! of a file, the Keras loss a spec names, masks, and the comparison at 1e-6.

use ndarray::{Array2, ArrayD};
use serde_json::Value;

use seqnn::{Dialect, Loss};

use super::{array, load_from, shape};

/// The tolerance of the issue: 1e-6, absolute below 1 and relative above.
pub const TOL: f64 = 1e-6;

/// Whether `got` is within [`TOL`] of Keras's `want`.
pub fn close(got: f32, want: f64) -> bool {
    let (g, w) = (f64::from(got), want);
    if w.is_nan() {
        return g.is_nan();
    }
    (g - w).abs() <= TOL * w.abs().max(1.0)
}

/// The largest violation of [`TOL`] between `got` and Keras's array `want`, with its index.
pub fn worst(got: &ArrayD<f32>, want: &ArrayD<f32>) -> Option<(usize, f32, f32)> {
    assert_eq!(got.shape(), want.shape(), "shapes");
    got.iter()
        .zip(want.iter())
        .enumerate()
        .filter(|(_, (&g, &w))| !close(g, f64::from(w)))
        .max_by(|a, b| {
            let d = |(_, (g, w)): &(usize, (&f32, &f32))| (*g - *w).abs();
            d(a).total_cmp(&d(b))
        })
        .map(|(i, (&g, &w))| (i, g, w))
}

/// The cases of `tests/fixtures/train/<folder>/<file>.json`.
pub fn cases(folder: &str, file: &str) -> Vec<Value> {
    load_from(&format!("train/{folder}"), file).json["cases"]
        .as_array()
        .expect("cases")
        .clone()
}

/// The libraries of a case, with their dialects.
pub const LIBS: [(&str, Dialect); 2] = [("tf", Dialect::TfKeras), ("k3", Dialect::Keras3)];

/// The array under `key`, if the case has one.
pub fn optional(case: &Value, key: &str) -> Option<ArrayD<f32>> {
    case.get(key).filter(|v| !v.is_null()).map(array)
}

/// The boolean mask under `key`, if any.
pub fn mask(case: &Value, key: &str) -> Option<Array2<bool>> {
    let v = case.get(key).filter(|v| !v.is_null())?;
    let dims: Vec<usize> = shape(&v["shape"])
        .dims()
        .iter()
        .map(|d| d.unwrap())
        .collect();
    let data = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_bool().unwrap());
    Some(Array2::from_shape_vec((dims[0], dims[1]), data.collect()).unwrap())
}

/// The loss a fixture's spec names: a Keras string, or `{"class_name", "config"}`.
pub fn loss(spec: &Value, dialect: Dialect) -> Loss {
    if let Some(name) = spec.as_str() {
        return Loss::from_name_in(name, dialect).expect("a Keras loss name");
    }
    let config = &spec["config"];
    let flag = |k: &str| config.get(k).and_then(Value::as_bool).unwrap_or(false);
    let number = |k: &str, default: f64| config.get(k).and_then(Value::as_f64).unwrap_or(default);
    match spec["class_name"].as_str().unwrap() {
        "Huber" => Loss::Huber {
            delta: number("delta", 1.0) as f32,
        },
        "CosineSimilarity" => Loss::CosineSimilarity {
            axis: number("axis", -1.0) as isize,
        },
        "BinaryCrossentropy" => Loss::BinaryCrossentropy {
            from_logits: flag("from_logits"),
            label_smoothing: number("label_smoothing", 0.0) as f32,
        },
        "CategoricalCrossentropy" => Loss::CategoricalCrossentropy {
            from_logits: flag("from_logits"),
            label_smoothing: number("label_smoothing", 0.0) as f32,
        },
        "SparseCategoricalCrossentropy" => Loss::SparseCategoricalCrossentropy {
            from_logits: flag("from_logits"),
            ignore_class: config.get("ignore_class").and_then(Value::as_i64),
        },
        other => panic!("no loss {other} in the fixtures' specs"),
    }
}

/// How the fit fixtures (`tools/keras_reference/generate_train_fits.py`) train: 3 epochs of
/// batches of 8, in order, silently.
pub fn fits_options() -> seqnn::FitOptions {
    seqnn::FitOptions::new()
        .with_epochs(3)
        .with_batch_size(8)
        .with_shuffle(false)
        .with_verbose(0)
}

/// The JSON files of a fixture folder, sorted.
pub fn json_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut cases: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    cases.sort();
    cases
}

/// A JSON list of `{"shape", "data"}` arrays, such as a fixture's `final_weights`.
pub fn arrays(v: &Value) -> Vec<ArrayD<f32>> {
    v.as_array().unwrap().iter().map(array).collect()
}
