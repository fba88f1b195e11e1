//! `sample_weight`, `class_weight` and `weighted_metrics` against Keras: each model of
//! `tests/fixtures/train/weights/` (`tools/keras_reference/generate_train_weights.py`),
//! compiled and saved by tf_keras 2.21 and Keras 3.15 before training, is loaded and trained
//! by seqnn with the case's weights; every epoch's logs (under Keras's names, no more and no
//! fewer), the final weights and the weighted `evaluate` match Keras's at 1e-4, and where
//! Keras refuses the call seqnn refuses it too, in Keras's words.
#![cfg(feature = "keras")]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use ndarray::ArrayD;
use seqnn::{load_any, AnyModel, FitOptions, History};
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

/// The case's targets: `y`, or `ys` for a model of several outputs.
fn targets(f: &Value) -> Vec<ArrayD<f32>> {
    match f["ys"].as_array() {
        Some(ys) => ys.iter().map(array).collect(),
        None => vec![array(&f["y"])],
    }
}

/// What seqnn's fit and weighted `evaluate` of a loaded model give.
type Fitted = (History, Vec<(String, f32)>, Vec<ArrayD<f32>>);

fn fit_and_evaluate(model: &mut AnyModel, f: &Value) -> Result<Fitted, seqnn::Error> {
    let (x, y) = (array(&f["x"]), targets(f));
    let sw = (!f["sample_weight"].is_null()).then(|| array(&f["sample_weight"]));
    match model {
        AnyModel::Sequential(m) => {
            let h = m.fit(&x, &y[0], &options(f))?;
            let ev = match &sw {
                Some(w) => m.evaluate_weighted(&x, &y[0], w, 8)?,
                None => m.evaluate(&x, &y[0], 8)?,
            };
            Ok((h, ev, m.get_weights()))
        }
        AnyModel::Functional(m) => {
            let xs = [x.view()];
            let ys: Vec<_> = y.iter().map(|a| a.view()).collect();
            let h = m.fit(&xs, ys.clone(), &options(f))?;
            let ev = match &sw {
                Some(w) => m.evaluate_weighted(&xs, ys, w, 8)?,
                None => m.evaluate(&xs, ys, 8)?,
            };
            Ok((h, ev, m.get_weights()))
        }
    }
}

/// The words of Keras's refusal that seqnn's must say too: the phrase that carries it, up to
/// the end of the message (tf_keras's duplicate names), of the interval (its class-weight
/// lookup) or alone.
fn keras_words(err: &str) -> Option<&str> {
    for phrase in [
        "at the same time",
        "only 0-dimensional arrays",
        "Dimensions must be equal",
        "Found two",
        "is not in [",
    ] {
        let Some(at) = err.find(phrase) else {
            continue;
        };
        return Some(match phrase {
            "Found two" => &err[at..],
            "is not in [" => &err[at..=at + err[at..].find(')')?],
            _ => phrase,
        });
    }
    None
}

/// The keys of a Keras dict, as a set.
fn key_set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

fn run(f: &Value, lib: &str, file: &str) -> Result<(), String> {
    let mut model = load_any(dir().join(file)).map_err(|e| e.to_string())?;
    let before = model.get_weights();
    let keras = &f["results"][lib];
    let fitted = fit_and_evaluate(&mut model, f);
    if let Some(err) = keras["error"].as_str() {
        let Err(e) = fitted else {
            return Err(format!("Keras refuses this fit ({err}), seqnn trained"));
        };
        let untouched = model
            .compiled()
            .is_some_and(|c| c.optimizer().iterations() == 0);
        if model.get_weights() != before || !untouched {
            return Err(format!("refused ({e}) after changing the model"));
        }
        if let Some(words) = keras_words(err) {
            if !e.to_string().contains(words) {
                return Err(format!("refused with {e}, without Keras's {words:?}"));
            }
        }
        return Ok(());
    }
    let (h, ev, weights) = fitted.map_err(|e| format!("fit: {e}"))?;
    compare_history(&h, &keras["history"])?;
    let ours: BTreeSet<String> = h.history().keys().cloned().collect();
    if ours != key_set(&keras["history_keys"]) {
        return Err(format!("logged {ours:?}, Keras {}", keras["history_keys"]));
    }
    compare_arrays("weight", &weights, &keras["final_weights"])?;
    compare_logs("evaluate", &ev, &keras["evaluate"])?;
    let ours: BTreeSet<String> = ev.iter().map(|(k, _)| k.clone()).collect();
    if ours != key_set(&keras["evaluate_keys"]) || ours.len() != ev.len() {
        return Err(format!(
            "evaluate gave {ev:?}, Keras {}",
            keras["evaluate_keys"]
        ));
    }
    Ok(())
}

#[test]
fn weighted_fits_end_where_keras_fits_end() {
    let (cases, mut failures) = common::train_fixture::run_cases(&dir(), run);
    assert!(cases >= 18, "the fixtures are there");
    // tf_keras's legacy .h5 files: their training_config holds the weighted metrics too.
    let mut h5 = 0;
    for path in common::train_fixture::json_files(&dir()) {
        let f: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if let Some(file) = f["results"]["tf_keras"]["h5"].as_str() {
            h5 += 1;
            if let Err(e) = run(&f, "tf_keras", file) {
                failures.push(format!("{file}: {e}"));
            }
        }
    }
    assert!(h5 >= 2, "the .h5 fixtures are there");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn fixture(case: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(format!("{case}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The `compile_config` of a `.keras` archive.
fn compile_config(path: &std::path::Path) -> Value {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let config: Value = serde_json::from_reader(zip.by_name("config.json").unwrap()).unwrap();
    config["compile_config"].clone()
}

/// A model compiled with weighted metrics, saved by seqnn, holds them where Keras 3 does
/// (`compile_config.weighted_metrics`, as Keras 3's own file has them), and loaded back it
/// trains as Keras 3 did.
#[test]
fn saved_files_keep_the_weighted_metrics() {
    let tmp = std::env::temp_dir().join(format!("seqnn-weighted-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for case in [
        "weighted_metrics_sample_weight",
        "weighted_metrics_two_outputs",
        "weighted_metrics_duplicate_names",
    ] {
        let f = fixture(case);
        let keras_file = dir().join(format!("{case}.k3.keras"));
        let path = tmp.join(format!("{case}.keras"));
        load_any(&keras_file).unwrap().save(&path).unwrap();
        for key in ["metrics", "weighted_metrics"] {
            assert_eq!(
                compile_config(&path)[key],
                compile_config(&keras_file)[key],
                "{case}: {key}"
            );
        }
        let mut back = load_any(&path).unwrap();
        let (h, _, _) = fit_and_evaluate(&mut back, &f).unwrap();
        compare_history(&h, &f["results"]["keras3"]["history"])
            .unwrap_or_else(|e| panic!("{case}: {e}"));
    }
    std::fs::remove_dir_all(&tmp).ok();
}

/// tf_keras fails on per-timestep class weights with a `(samples,)` sample weight when the
/// last batch is partial (the fixture's `checks`); seqnn spreads the sample weights in every
/// batch, as tf_keras does in whole ones.
#[test]
fn per_sample_weights_spread_over_timestep_class_weights_in_a_partial_batch() {
    let f = fixture("class_weight_temporal_binary_and_per_sample_weight");
    let tf_error = f["checks"]["tf_keras_with_a_partial_last_batch"]
        .as_str()
        .unwrap();
    assert!(
        tf_error.contains("partially known TensorShape"),
        "{tf_error}"
    );
    let mut m = load_any(dir().join(format!("{}.tf.keras", f["case"].as_str().unwrap())))
        .unwrap()
        .into_sequential()
        .unwrap();
    let rows = ndarray::s![..36, .., ..];
    let (x, y) = (array(&f["x"]), array(&f["y"]));
    let sw = array(&f["sample_weight"]);
    let options = FitOptions::new()
        .with_epochs(1)
        .with_batch_size(8)
        .with_shuffle(false)
        .with_verbose(0)
        .with_sample_weight(sw.slice(ndarray::s![..36]).to_owned().into_dyn())
        .with_class_weight([(0, 0.3), (1, 1.7)]);
    let x36 = x.slice(rows).to_owned();
    let y36 = y.slice(rows).to_owned();
    let h = m.fit(&x36, &y36, &options).expect("trains");
    assert!(h.get("loss").unwrap()[0].is_finite());
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
