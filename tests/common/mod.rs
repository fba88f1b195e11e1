//! Shared test helpers: reading the fixtures that `tools/keras_reference/generate_core.py` wrote
//! from real tf_keras 2.21, and turning their Keras layer configs into seqnn layers.
#![allow(dead_code)]

pub mod counting;
pub mod layer_fixture;
pub mod model_fixture;
pub mod train_fixture;

use std::path::PathBuf;

use ndarray::{Array2, ArrayD, IxDyn};
use serde_json::Value;

use seqnn::{
    Activation, ActivationFn, Bidirectional, Cell, Dense, Dropout, Embedding, Flatten, Layer,
    Masking, MergeMode, Recurrent, RecurrentLayer, RepeatVector, Sequential, Shape, SimpleRNN,
    TimeDistributed, GRU, LSTM,
};

/// The tolerance the issue asks for: Keras's numbers to 1e-5.
pub const TOL: f32 = 1e-5;

/// One fixture file, parsed.
pub struct Fixture {
    pub json: Value,
}

pub fn fixture_path(folder: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(folder)
        .join(format!("{name}.json"))
}

/// A fixture of the core set, `tests/fixtures/keras/<case>.json`.
pub fn load(case: &str) -> Fixture {
    load_from("keras", case)
}

/// A fixture of the toolbox set, `tests/fixtures/toolbox/<case>.json`.
pub fn toolbox(case: &str) -> Fixture {
    load_from("toolbox", case)
}

/// A fixture from `tests/fixtures/<folder>/<case>.json`.
pub fn load_from(folder: &str, case: &str) -> Fixture {
    let path = fixture_path(folder, case);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Fixture {
        json: serde_json::from_str(&text).expect("fixture is JSON"),
    }
}

/// The options of a callbacks or backup fixture's fit (`tests/fixtures/train/callbacks/`,
/// `.../backup/`): its `fit` (`epochs`, `batch_size`, `validation` for its `val_x` and
/// `val_y`, else its `validation_split`), unshuffled and silent.
pub fn fixture_fit_options(f: &Value) -> seqnn::FitOptions {
    let fit = &f["fit"];
    let options = seqnn::FitOptions::new()
        .with_epochs(fit["epochs"].as_u64().unwrap() as usize)
        .with_batch_size(fit["batch_size"].as_u64().unwrap() as usize)
        .with_shuffle(false)
        .with_verbose(0);
    if fit["validation"].as_bool().unwrap() {
        return options.with_validation_data(vec![array(&f["val_x"])], array(&f["val_y"]));
    }
    let split = fit["validation_split"].as_f64().unwrap_or(0.0);
    options.with_validation_split(split as f32)
}

/// A fresh directory `<prefix>-<name>` under Cargo's temporary directory for tests.
pub fn scratch(prefix: &str, name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{prefix}-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The names of the files in `d`, sorted.
pub fn files(d: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
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

fn activation(config: &Value, key: &str) -> ActivationFn {
    config[key]
        .as_str()
        .unwrap_or("linear")
        .parse()
        .expect("known activation")
}

fn explicit_name(config: &Value, base: &str) -> Option<String> {
    let name = config["name"].as_str().expect("name");
    (!is_generated(name, base)).then(|| name.to_string())
}

fn batch_shape(config: &Value) -> Option<Shape> {
    config
        .get("batch_input_shape")
        .filter(|s| !s.is_null())
        .map(shape)
}

/// The options every Keras recurrent layer has.
fn recurrent<C: Cell>(mut rnn: Recurrent<C>, config: &Value, base: &str) -> Recurrent<C> {
    rnn = rnn
        .with_return_sequences(flag(config, "return_sequences"))
        .with_return_state(flag(config, "return_state"))
        .with_go_backwards(flag(config, "go_backwards"))
        .with_stateful(flag(config, "stateful"));
    if let Some(name) = explicit_name(config, base) {
        rnn = rnn.with_name(name);
    }
    if let Some(s) = batch_shape(config) {
        rnn = rnn.batch_input_shape(s);
    }
    rnn
}

fn units(config: &Value) -> usize {
    config["units"].as_u64().expect("units") as usize
}

/// A SimpleRNN from its Keras config. Generated names are left for seqnn to generate.
pub fn simple_rnn(config: &Value) -> SimpleRNN {
    let rnn = SimpleRNN::new(units(config))
        .with_activation(activation(config, "activation"))
        .with_use_bias(config["use_bias"].as_bool().unwrap_or(true));
    recurrent(rnn, config, "simple_rnn")
}

/// An LSTM from its Keras config.
pub fn lstm(config: &Value) -> LSTM {
    let rnn = LSTM::new(units(config))
        .with_activation(activation(config, "activation"))
        .with_recurrent_activation(activation(config, "recurrent_activation"))
        .with_use_bias(config["use_bias"].as_bool().unwrap_or(true))
        .with_unit_forget_bias(config["unit_forget_bias"].as_bool().unwrap_or(true));
    recurrent(rnn, config, "lstm")
}

/// A GRU from its Keras config.
pub fn gru(config: &Value) -> GRU {
    let rnn = GRU::new(units(config))
        .with_activation(activation(config, "activation"))
        .with_recurrent_activation(activation(config, "recurrent_activation"))
        .with_use_bias(config["use_bias"].as_bool().unwrap_or(true))
        .with_reset_after(config["reset_after"].as_bool().unwrap_or(true));
    recurrent(rnn, config, "gru")
}

/// A recurrent layer of any class from a Keras `{class_name, config}`.
pub fn recurrent_layer(class_name: &str, config: &Value) -> Box<dyn RecurrentLayer> {
    match class_name {
        "SimpleRNN" => Box::new(simple_rnn(config)),
        "LSTM" => Box::new(lstm(config)),
        "GRU" => Box::new(gru(config)),
        other => panic!("{other} is not a recurrent layer"),
    }
}

/// A Bidirectional from its Keras config.
pub fn bidirectional(config: &Value) -> Bidirectional {
    let inner = &config["layer"];
    let class = inner["class_name"].as_str().expect("class");
    let mut bi = Bidirectional::new_boxed(recurrent_layer(class, &inner["config"]));
    if let Some(b) = config.get("backward_layer").filter(|b| !b.is_null()) {
        let class = b["class_name"].as_str().expect("class");
        bi = bi.with_backward_layer_boxed(recurrent_layer(class, &b["config"]));
    }
    let mode = match &config["merge_mode"] {
        Value::Null => MergeMode::None,
        Value::String(s) => s.parse().expect("known merge mode"),
        other => panic!("merge_mode {other}"),
    };
    bi = bi.with_merge_mode(mode);
    if let Some(name) = explicit_name(config, "bidirectional") {
        bi = bi.with_name(name);
    }
    if let Some(s) = batch_shape(config) {
        bi = bi.batch_input_shape(s);
    }
    bi
}

/// A Dense from its Keras config.
pub fn dense(config: &Value) -> Dense {
    let mut d = Dense::new(units(config))
        .with_activation(activation(config, "activation"))
        .with_use_bias(config["use_bias"].as_bool().unwrap_or(true));
    if let Some(name) = explicit_name(config, "dense") {
        d = d.with_name(name);
    }
    if let Some(s) = batch_shape(config) {
        d = d.batch_input_shape(s);
    }
    d
}

fn count(config: &Value, key: &str) -> usize {
    config[key].as_u64().unwrap_or_else(|| panic!("{key}")) as usize
}

/// A boxed layer from a Keras `{class_name, config}`.
pub fn layer(class_name: &str, config: &Value) -> Box<dyn Layer> {
    let name = |base: &str| explicit_name(config, base);
    match class_name {
        "SimpleRNN" | "LSTM" | "GRU" => recurrent_layer(class_name, config),
        "Bidirectional" => Box::new(bidirectional(config)),
        "Dense" => Box::new(dense(config)),
        "Embedding" => {
            let mut e = Embedding::new(count(config, "input_dim"), count(config, "output_dim"))
                .with_mask_zero(flag(config, "mask_zero"));
            if let Some(n) = config["input_length"].as_u64() {
                e = e.input_length(n as usize);
            }
            if let Some(s) = batch_shape(config) {
                e = e.batch_input_shape(s);
            }
            if let Some(n) = name("embedding") {
                e = e.with_name(n);
            }
            Box::new(e)
        }
        "TimeDistributed" => {
            let inner = &config["layer"];
            assert_eq!(
                inner["class_name"], "Dense",
                "TimeDistributed over Dense only here"
            );
            Box::new(TimeDistributed::new(dense(&inner["config"])))
        }
        "RepeatVector" => Box::new(RepeatVector::new(count(config, "n"))),
        "Flatten" => Box::new(Flatten::new()),
        "Dropout" => Box::new(Dropout::new(config["rate"].as_f64().expect("rate") as f32)),
        "Activation" => Box::new(Activation::new(activation(config, "activation"))),
        "Masking" => {
            let mut m = Masking::new(config["mask_value"].as_f64().expect("mask_value") as f32);
            if let Some(s) = batch_shape(config) {
                m = m.batch_input_shape(s);
            }
            Box::new(m)
        }
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

/// One inference call of `layer` on `inputs`: its outputs.
pub fn call(
    layer: &dyn Layer,
    inputs: &[ndarray::ArrayViewD<'_, f32>],
) -> seqnn::Result<Vec<ArrayD<f32>>> {
    layer.call(inputs, &mut seqnn::CallContext::inference())
}

/// Element-wise comparison with the shapes first: within [`TOL`] absolutely where Keras's value
/// is below 1 in magnitude, relatively above (float32 keeps about seven digits).
pub fn assert_close(actual: &ArrayD<f32>, expected: &ArrayD<f32>, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    for ((index, &a), &e) in actual.indexed_iter().zip(expected.iter()) {
        let bound = TOL * e.abs().max(1.0);
        assert!(
            (a - e).abs() <= bound || (a.is_nan() && e.is_nan()),
            "{what}: at {:?}, {a} against Keras's {e} (off by {}, allowed {bound})",
            ndarray::Dimension::slice(&index),
            (a - e).abs()
        );
    }
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
    // 65 columns for a Sequential table, 98 with `Connected to`.
    let width = lines
        .iter()
        .find(|l| l.starts_with('_'))
        .map_or(65, |l| l.chars().count());
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let next_is_rule = lines.get(i + 1).is_some_and(|n| n.starts_with('='));
        if line.trim().is_empty() && !line.is_empty() {
            if !next_is_rule {
                out.push("_".repeat(width));
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

/// A sequential fixture: seqnn's output, output shape, parameter counts, layer names and summary
/// equal Keras's.
pub fn check_sequential(f: &Fixture) {
    let case = f.json["case"].as_str().unwrap_or("?").to_string();
    let m = model(f);
    let y = m.predict(&f.input()).expect("predict");
    assert_close(&y, &f.outputs()[0], &case);
    assert_eq!(
        m.count_params().unwrap() as u64,
        f.json["params"].as_u64().unwrap(),
        "{case}: params"
    );
    assert_eq!(
        m.output_shape().unwrap(),
        shape(&f.json["output_shape"]),
        "{case}: output shape"
    );
    for (layer, row) in m
        .layers()
        .iter()
        .zip(f.json["layer_rows"].as_array().unwrap())
    {
        assert_eq!(
            layer.name(),
            row["name"].as_str().unwrap(),
            "{case}: layer name"
        );
        assert_eq!(
            layer.count_params() as u64,
            row["params"].as_u64().unwrap(),
            "{case}: row params"
        );
    }
    assert_eq!(
        m.summary().unwrap(),
        notebook_layout(&f.summary()),
        "{case}: summary"
    );
}

/// A layer-call fixture: a standalone recurrent layer or Bidirectional, built, given Keras's
/// weights, and called with the fixture's initial states; every output equals Keras's, and so
/// does the number of outputs the layer declares.
pub fn check_layer_call(f: &Fixture) {
    let case = f.json["case"].as_str().unwrap_or("?").to_string();
    let (class, config) = f.layer_configs().remove(0);
    let inputs = f.arrays("inputs");
    let views: Vec<_> = inputs.iter().map(|a| a.view()).collect();
    let input_shape = shape(&f.json["input_shape"]);
    let mut layer: Box<dyn Layer> = if class == "Bidirectional" {
        Box::new(bidirectional(&config))
    } else {
        recurrent_layer(&class, &config)
    };
    layer.build(&[input_shape]).unwrap();
    layer.set_weights(&f.weights()).unwrap();
    let got = layer
        .call(&views, &mut seqnn::CallContext::inference())
        .unwrap();
    let expected = f.outputs();
    assert_eq!(got.len(), expected.len(), "{case}: output count");
    assert_eq!(
        layer.output_count(),
        expected.len(),
        "{case}: declared output count"
    );
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_close(g, e, &format!("{case} output {i}"));
    }
}

/// Runs the other tests of this test binary again with each narrower instruction set than the
/// CPU's forced by `SEQNN_ISA` (the portable kernels always, AVX2 on an AVX-512 CPU), in a
/// child process each, since the kernels choose theirs once per process: every path must give
/// the numbers this binary checks. `this_test` is the caller's name, which the children skip.
pub fn rerun_on_narrower_instruction_sets(this_test: &str) {
    if let Ok(isa) = std::env::var("SEQNN_ISA") {
        // A child: the kernels must run the set it was asked for.
        assert_eq!(seqnn::instruction_set(), isa, "SEQNN_ISA={isa} is in force");
        return;
    }
    let narrower: &[&str] = match seqnn::instruction_set() {
        "avx512" => &["avx2", "portable"],
        "avx2" => &["portable"],
        _ => &[],
    };
    let exe = std::env::current_exe().expect("the test binary's path");
    for isa in narrower {
        let out = std::process::Command::new(&exe)
            .args(["--skip", this_test, "--test-threads", "2"])
            .env("SEQNN_ISA", isa)
            .output()
            .expect("the test binary runs again");
        assert!(
            out.status.success(),
            "with SEQNN_ISA={isa}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("test result: ok") && !stdout.contains(" 0 passed"),
            "with SEQNN_ISA={isa} the other tests ran: {stdout}"
        );
    }
}
