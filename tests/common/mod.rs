//! Shared test helpers: reading the fixtures that `tools/keras_reference/generate_core.py` wrote
//! from real tf_keras 2.21, and turning their Keras layer configs into seqnn layers.
#![allow(dead_code)]

use std::path::PathBuf;

use approx::assert_abs_diff_eq;
use ndarray::{Array2, ArrayD, IxDyn};
use serde_json::Value;

use seqnn::{
    ActivationFn, Bidirectional, Layer, MergeMode, RecurrentLayer, Sequential, Shape, SimpleRNN,
};

/// The tolerance the issue asks for: Keras's numbers to 1e-5.
pub const TOL: f32 = 1e-5;

/// One fixture file, parsed.
pub struct Fixture {
    pub json: Value,
}

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keras")
        .join(format!("{name}.json"))
}

pub fn load(case: &str) -> Fixture {
    let path = fixture_path(case);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Fixture {
        json: serde_json::from_str(&text).expect("fixture is JSON"),
    }
}

/// `{"shape": [...], "data": [...]}` as an array.
pub fn array(v: &Value) -> ArrayD<f32> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().expect("dim") as usize)
        .collect();
    let data: Vec<f32> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).expect("data fits shape")
}

/// A JSON shape list with nulls as a [`Shape`].
pub fn shape(v: &Value) -> Shape {
    Shape::new(
        v.as_array()
            .expect("shape list")
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect(),
    )
}

impl Fixture {
    pub fn arrays(&self, key: &str) -> Vec<ArrayD<f32>> {
        self.json[key]
            .as_array()
            .expect("array list")
            .iter()
            .map(array)
            .collect()
    }

    pub fn weights(&self) -> Vec<ArrayD<f32>> {
        self.arrays("weights")
    }

    pub fn input(&self) -> ArrayD<f32> {
        self.arrays("inputs").remove(0)
    }

    pub fn outputs(&self) -> Vec<ArrayD<f32>> {
        self.arrays("outputs")
    }

    pub fn layer_configs(&self) -> Vec<(String, Value)> {
        self.json["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| {
                (
                    l["class_name"].as_str().expect("class").to_string(),
                    l["config"].clone(),
                )
            })
            .collect()
    }

    pub fn summary(&self) -> String {
        self.json["summary"].as_str().expect("summary").to_string()
    }
}

/// Whether `name` is a name Keras generated for `base` (`base` or `base_N`), so that seqnn should
/// generate the same one rather than be told it.
fn is_generated(name: &str, base: &str) -> bool {
    name == base
        || name
            .strip_prefix(base)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|n| n.parse::<usize>().is_ok())
}

fn flag(config: &Value, key: &str) -> bool {
    config[key].as_bool().unwrap_or(false)
}

/// A SimpleRNN from its Keras config. Generated names are left for seqnn to generate.
pub fn simple_rnn(config: &Value) -> SimpleRNN {
    let mut rnn = SimpleRNN::new(config["units"].as_u64().expect("units") as usize)
        .activation(
            config["activation"]
                .as_str()
                .unwrap_or("linear")
                .parse::<ActivationFn>()
                .expect("known activation"),
        )
        .use_bias(config["use_bias"].as_bool().unwrap_or(true))
        .return_sequences(flag(config, "return_sequences"))
        .return_state(flag(config, "return_state"))
        .go_backwards(flag(config, "go_backwards"));
    let name = config["name"].as_str().expect("name");
    if !is_generated(name, "simple_rnn") {
        rnn = rnn.name(name);
    }
    if let Some(s) = config.get("batch_input_shape").filter(|s| !s.is_null()) {
        rnn = rnn.batch_input_shape(shape(s));
    }
    rnn
}

/// A Bidirectional from its Keras config.
pub fn bidirectional(config: &Value) -> Bidirectional {
    let inner = &config["layer"];
    assert_eq!(inner["class_name"], "SimpleRNN");
    let mut bi = Bidirectional::new(simple_rnn(&inner["config"]));
    if let Some(b) = config.get("backward_layer").filter(|b| !b.is_null()) {
        bi = bi.backward_layer(simple_rnn(&b["config"]));
    }
    let mode = match &config["merge_mode"] {
        Value::Null => MergeMode::None,
        Value::String(s) => s.parse().expect("known merge mode"),
        other => panic!("merge_mode {other}"),
    };
    bi = bi.merge_mode(mode);
    let name = config["name"].as_str().expect("name");
    if !is_generated(name, "bidirectional") {
        bi = bi.name(name);
    }
    if let Some(s) = config.get("batch_input_shape").filter(|s| !s.is_null()) {
        bi = bi.batch_input_shape(shape(s));
    }
    bi
}

/// A boxed layer from a Keras `{class_name, config}`.
pub fn layer(class_name: &str, config: &Value) -> Box<dyn Layer> {
    match class_name {
        "SimpleRNN" => Box::new(simple_rnn(config)),
        "Bidirectional" => Box::new(bidirectional(config)),
        other => panic!("no mapping for Keras class {other}"),
    }
}

/// The fixture's Sequential model, built, with the fixture's weights set.
pub fn model(f: &Fixture) -> Sequential {
    seqnn::clear_session();
    let mut m = Sequential::new();
    for (class, config) in f.layer_configs() {
        m.add_boxed(layer(&class, &config))
            .expect("fixture model adds");
    }
    if !m.is_built() {
        m.build(shape(&f.json["input_shape"])).expect("builds");
    }
    m.set_weights(&f.weights()).expect("fixture weights fit");
    m
}

/// Element-wise comparison at [`TOL`], with the shapes first.
pub fn assert_close(actual: &ArrayD<f32>, expected: &ArrayD<f32>, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    assert_abs_diff_eq!(actual, expected, epsilon = TOL);
}

pub fn states(arrays: &[ArrayD<f32>]) -> Vec<Array2<f32>> {
    arrays
        .iter()
        .map(|a| a.clone().into_dimensionality().expect("2-D state"))
        .collect()
}

/// Turns tf_keras 2.21's summary text into the notebook's layout, which seqnn prints:
/// rows start at column 0 with columns still at 29 and 55 (tf_keras indents each row by one
/// space and narrows the first column by one), `_` rules between layers where tf_keras leaves a
/// blank line, and the totals without byte sizes.
pub fn notebook_layout(tf_keras: &str) -> String {
    let lines: Vec<&str> = tf_keras.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let next_is_rule = lines.get(i + 1).is_some_and(|n| n.starts_with('='));
        if line.trim().is_empty() && !line.is_empty() {
            if !next_is_rule {
                out.push("_".repeat(65));
            }
        } else if let Some(rest) = line.strip_prefix(' ') {
            // " " + first column (28 wide) + rest  ->  first column (28) + " " + rest
            let chars: Vec<char> = rest.chars().collect();
            let first: String = chars[..28].iter().collect();
            let tail: String = chars[28..].iter().collect();
            out.push(format!("{first} {tail}"));
        } else if line.contains(" params: ") {
            out.push(line.split(" (").next().unwrap_or(line).to_string());
        } else {
            out.push(line.to_string());
        }
    }
    out.iter().map(|l| format!("{l}\n")).collect()
}

/// Runs a layer-call fixture on a standalone recurrent layer and returns Keras's output list.
pub fn call_recurrent(layer: &dyn RecurrentLayer, f: &Fixture) -> Vec<ArrayD<f32>> {
    let inputs = f.arrays("inputs");
    let x = inputs[0].clone().into_dimensionality().expect("3-D input");
    let init = states(&inputs[1..]);
    let out = layer
        .call_with_state(x.view(), (!init.is_empty()).then_some(init.as_slice()))
        .expect("layer call");
    out.into_vec()
        .into_iter()
        .take(layer.output_count())
        .collect()
}
