//! Whole-model fixtures (`tests/fixtures/functional/`, `tests/fixtures/models/`): each case's
//! files in five formats, its inputs, the outputs each Keras predicted, names, counts and
//! summaries, as `tools/keras_reference/model_fixtures.py` writes them.

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use seqnn::{load_any, AnyModel, InputArray};
use serde_json::Value;

/// A folder of whole-model fixtures under `tests/fixtures/`.
#[derive(Debug, Clone, Copy)]
pub struct Folder(pub &'static str);

impl Folder {
    pub fn dir(self) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(self.0)
    }

    pub fn case(self, name: &str) -> Value {
        let text = std::fs::read_to_string(self.dir().join(format!("{name}.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// Every case that has a file in `format` (`tf.keras`, `tf.h5`, `k3.keras`, `k3.h5`,
/// `k3.weights.h5`).
pub fn cases_with(folder: Folder, format: &str) -> Vec<(String, PathBuf)> {
    let dir = folder.dir();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if let Some(case) = name.strip_suffix(&format!(".{format}")) {
            if !case.contains('.') && dir.join(format!("{case}.json")).exists() {
                out.push((case.to_string(), path));
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no {format} fixtures");
    out
}

pub fn version(format: &str) -> &'static str {
    if format.starts_with("tf") {
        "tf_keras"
    } else {
        "keras3"
    }
}

/// The inputs of a case, as their dtypes say (integer ids stay integers).
pub enum Owned {
    F32(ArrayD<f32>),
    I64(ArrayD<i64>),
}

pub fn inputs(c: &Value) -> Vec<Owned> {
    c["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let shape: Vec<usize> = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let data = v["data"].as_array().unwrap();
            let number = |x: &Value| match x {
                Value::Bool(b) => f64::from(u8::from(*b)),
                other => other.as_f64().unwrap(),
            };
            if v["dtype"].as_str().unwrap_or("float32").starts_with("int") {
                let d = data.iter().map(|x| number(x) as i64).collect();
                Owned::I64(ArrayD::from_shape_vec(IxDyn(&shape), d).unwrap())
            } else {
                // float32, or bool (a mask input) as 1 and 0.
                let d = data.iter().map(|x| number(x) as f32).collect();
                Owned::F32(ArrayD::from_shape_vec(IxDyn(&shape), d).unwrap())
            }
        })
        .collect()
}

pub fn views(owned: &[Owned]) -> Vec<InputArray<'_>> {
    owned
        .iter()
        .map(|o| match o {
            Owned::F32(a) => a.into(),
            Owned::I64(a) => a.into(),
        })
        .collect()
}

pub fn check_predictions(model: &AnyModel, c: &Value, format: &str, what: &str) {
    let x = inputs(c);
    let mut model = model.clone();
    let ys = if model.is_stateful() {
        model.predict_stateful(&views(&x))
    } else {
        model.predict(&views(&x))
    }
    .unwrap_or_else(|e| panic!("{what}: predict: {e}"));
    let v = version(format);
    let expected = c["expected"][v].as_array().unwrap();
    assert_eq!(ys.len(), expected.len(), "{what}: outputs");
    for (i, (y, e)) in ys.iter().zip(expected).enumerate() {
        super::assert_close(y, &super::array(e), &format!("{what}: output {i}"));
    }
    // A stateful model's second predict starts from the states the first left.
    if let Some(second) = c["second_predict"][v].as_array() {
        let ys = model.predict_stateful(&views(&x)).unwrap();
        for (i, (y, e)) in ys.iter().zip(second).enumerate() {
            super::assert_close(y, &super::array(e), &format!("{what}: second, output {i}"));
        }
        model.reset_states();
        let again = model.predict_stateful(&views(&x)).unwrap();
        for (i, (y, e)) in again.iter().zip(expected).enumerate() {
            super::assert_close(y, &super::array(e), &format!("{what}: after reset, {i}"));
        }
    }
}

pub fn load(path: &Path) -> AnyModel {
    load_any(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// tf_keras's `output_names`: a repeated name gets `_1`, `_2`, ... (counted per name).
pub fn unique(names: Vec<String>) -> Vec<String> {
    let mut used = std::collections::HashSet::new();
    let mut counts = std::collections::HashMap::new();
    names
        .into_iter()
        .map(|name| {
            let mut proposal = name.clone();
            while used.contains(&proposal) {
                let n = counts.entry(name.clone()).or_insert(1);
                proposal = format!("{name}_{n}");
                *n += 1;
            }
            used.insert(proposal.clone());
            proposal
        })
        .collect()
}

/// Whether Keras itself cannot load this file with `load_model` (the case says why).
pub fn keras_refuses(c: &Value, path: &Path) -> bool {
    let file = path.file_name().unwrap().to_str().unwrap();
    c["reload_failures"].get(file).is_some()
}

pub fn check_format(folder: Folder, format: &str) {
    for (name, path) in cases_with(folder, format) {
        let c = folder.case(&name);
        if keras_refuses(&c, &path) {
            // Keras cannot load it (Keras 3 does not know its own mask operations in a legacy
            // .h5; neither knows where a layer shared with a nested model went): seqnn refuses
            // it with a file error, or loads it and predicts what the saved model predicted.
            match load_any(&path) {
                Err(seqnn::Error::File { .. }) => continue,
                Err(e) => panic!("{}: {e}", path.display()),
                Ok(model) => {
                    check_predictions(&model, &c, format, &path.display().to_string());
                    continue;
                }
            }
        }
        let model = load(&path);
        let what = path.display().to_string();
        check_predictions(&model, &c, format, &what);
        let v = version(format);
        let names = |key: &str| -> Vec<String> {
            c[key][v]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(model.input_names(), names("input_names"), "{what}: inputs");
        // seqnn names outputs as tf_keras does, unique; Keras 3 repeats a layer's name for
        // each of its outputs.
        assert_eq!(
            model.output_names(),
            unique(names("output_names")),
            "{what}: outputs"
        );
        // A layer shared by the outer model and a nested one becomes two layers once loaded
        // (Keras's configs cannot say otherwise), so the counts of the original model differ.
        let shared_with_nested = name == "shared_across_nesting";
        if let (AnyModel::Functional(m), false) = (&model, shared_with_nested) {
            assert_eq!(
                m.count_params().unwrap() as u64,
                c["params"][v]["total"].as_u64().unwrap(),
                "{what}: params"
            );
        }
    }
}

/// Each `.weights.h5` file loads into the model of the case's Keras 3 file, its weights zeroed
/// first, and predicts what Keras 3 predicted.
pub fn check_weights_files(folder: Folder) {
    for (name, path) in cases_with(folder, "k3.weights.h5") {
        let c = folder.case(&name);
        let keras = folder.dir().join(format!("{name}.k3.keras"));
        if keras_refuses(&c, &keras) {
            continue;
        }
        let mut model = load(&keras);
        let zeros: Vec<ArrayD<f32>> = model
            .get_weights()
            .iter()
            .map(|w| ArrayD::zeros(w.raw_dim()))
            .collect();
        model.set_weights(&zeros).unwrap();
        model
            .load_weights(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check_predictions(&model, &c, "k3", &path.display().to_string());
    }
}

/// A model loaded from tf_keras's `.h5` prints tf_keras's summary, in the notebook's layout
/// (but the cases in `skip`).
pub fn check_tf_keras_summaries(folder: Folder, skip: &[&str]) {
    for (name, path) in cases_with(folder, "tf.h5") {
        if skip.contains(&name.as_str()) {
            continue;
        }
        let c = folder.case(&name);
        let model = load(&path);
        let keras = super::notebook_layout(c["summary"]["tf_keras"].as_str().unwrap());
        assert_eq!(model.summary().unwrap(), keras, "{name}");
    }
}

/// Each model loaded from Keras 3's `.h5`, saved by seqnn as `.keras`, loads back with the
/// same summary and Keras 3's outputs.
pub fn check_saved_files(folder: Folder) {
    let tmp = std::env::temp_dir().join(format!("seqnn-{}-{}", folder.0, std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for (name, path) in cases_with(folder, "k3.h5") {
        let c = folder.case(&name);
        let model = load(&path);
        let out = tmp.join(format!("{name}.keras"));
        model
            .save(&out)
            .unwrap_or_else(|e| panic!("{name}: save: {e}"));
        let back = load(&out);
        assert_eq!(back.summary().unwrap(), model.summary().unwrap(), "{name}");
        check_predictions(&back, &c, "k3", &format!("{name} saved by seqnn"));
        let keras3 = folder.dir().join(format!("{name}.k3.keras"));
        if keras3.exists() {
            // Every entry of Keras 3's own file is in seqnn's, named the same way. (A model
            // loaded from a Keras 3 legacy .h5 may have more: the mask operations that file
            // stores as layers.)
            let ours = class_identities(&out);
            for entry in class_identities(&keras3) {
                assert!(
                    ours.contains(&entry),
                    "{name}: seqnn's file has no entry {entry:?}, as Keras 3's has"
                );
            }
        }
    }
    std::fs::remove_dir_all(&tmp).ok();
}

/// Each layer entry of a `.keras` file's config, nested models' entries too, as
/// `(name, module, class_name, registered_name)`: what Keras 3 finds a class by. Keras 3's
/// operations are left out (seqnn writes the ones it runs, under Keras's names).
fn class_identities(path: &Path) -> Vec<(String, String, String, String)> {
    let file = std::fs::File::open(path).unwrap();
    let mut archive = zip::ZipArchive::new(file).unwrap();
    let config: Value = serde_json::from_reader(archive.by_name("config.json").unwrap()).unwrap();
    fn walk(entry: &Value, out: &mut Vec<(String, String, String, String)>) {
        let text = |v: &Value| v.as_str().unwrap_or("null").to_string();
        let module = text(&entry["module"]);
        if !module.starts_with("keras.src.ops") {
            out.push((
                text(&entry["config"]["name"]),
                module,
                text(&entry["class_name"]),
                text(&entry["registered_name"]),
            ));
        }
        for inner in entry["config"]["layers"].as_array().into_iter().flatten() {
            walk(inner, out);
        }
    }
    let mut out = Vec::new();
    walk(&config, &mut out);
    out.sort();
    out
}
