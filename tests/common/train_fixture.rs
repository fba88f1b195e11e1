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

/// Whether `got` is within 1e-4 of Keras's `want` (absolute below 1, relative above): the
/// tolerance of whole fits.
pub fn close_fit(got: f32, want: f32) -> bool {
    (got - want).abs() <= 1e-4 * want.abs().max(1.0)
}

/// The first epoch where a fit's logs differ from Keras's `history.history` beyond
/// [`close_fit`], or a key seqnn did not log.
pub fn compare_history(h: &seqnn::History, keras: &Value) -> Result<(), String> {
    for (key, values) in keras.as_object().unwrap() {
        let ours = h.get(key).ok_or_else(|| format!("no {key} in {h}"))?;
        for (epoch, (a, b)) in ours.iter().zip(values.as_array().unwrap()).enumerate() {
            let b = b.as_f64().unwrap() as f32;
            if !close_fit(*a, b) {
                return Err(format!(
                    "{key} of epoch {}: {a} against Keras's {b}",
                    epoch + 1
                ));
            }
        }
    }
    Ok(())
}

/// The first of Keras's `evaluate(..., return_dict=True)` values that `ours` lacks or
/// misses beyond [`close_fit`].
pub fn compare_logs(what: &str, ours: &[(String, f32)], keras: &Value) -> Result<(), String> {
    for (key, v) in keras.as_object().unwrap() {
        let got = ours
            .iter()
            .find(|(k, _)| k == key)
            .ok_or_else(|| format!("no {key} in {what}'s {ours:?}"))?
            .1;
        let v = v.as_f64().unwrap() as f32;
        if !close_fit(got, v) {
            return Err(format!("{what}'s {key}: {got} against Keras's {v}"));
        }
    }
    Ok(())
}

/// The first element where `ours` and Keras's list of arrays `theirs` differ beyond
/// [`close_fit`] (or in count or shape).
pub fn compare_arrays(what: &str, ours: &[ArrayD<f32>], theirs: &Value) -> Result<(), String> {
    let theirs = arrays(theirs);
    if ours.len() != theirs.len() {
        return Err(format!(
            "{what}: {} arrays against Keras's {}",
            ours.len(),
            theirs.len()
        ));
    }
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        if a.shape() != b.shape() {
            return Err(format!(
                "{what} {i}: shape {:?} against {:?}",
                a.shape(),
                b.shape()
            ));
        }
        if let Some((p, q)) = a.iter().zip(b).find(|(p, q)| !close_fit(**p, **q)) {
            return Err(format!("{what} {i}: {p} against Keras's {q}"));
        }
    }
    Ok(())
}

/// Runs `run(case, library, file)` on each case of a fixture folder (its JSON files that have a
/// `case`) for the `.keras` file of each library (`tf_keras`: `<case>.tf.keras`, `keras3`:
/// `<case>.k3.keras`); returns how many cases there were and the failures, one line each.
pub fn run_cases(
    dir: &std::path::Path,
    run: impl Fn(&Value, &str, &str) -> Result<(), String>,
) -> (usize, Vec<String>) {
    let mut count = 0;
    let mut failures = Vec::new();
    for path in json_files(dir) {
        let f: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(case) = f["case"].as_str() else {
            continue;
        };
        count += 1;
        for (lib, suffix) in [("tf_keras", "tf.keras"), ("keras3", "k3.keras")] {
            if let Err(e) = run(&f, lib, &format!("{case}.{suffix}")) {
                failures.push(format!("{case}.{suffix}: {e}"));
            }
        }
    }
    (count, failures)
}
