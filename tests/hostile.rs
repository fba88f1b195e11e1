//! Hostile sizes: Keras files whose config promises enormous layers, sizes given to the API,
//! a zip bomb, JSON nested 200,000 deep and 200,000 layers. Each is an `Err`, never an abort or
//! a panic, and the bytes held at once stay within a small multiple of the file's size.
//!
//! The size-field files come from `tools/keras_reference/generate_hostile.py`: real Keras files
//! (Keras 3 `.keras`, tf_keras `.h5`; Sequential and Functional models of recurrent, dense,
//! convolution, pooling, normalization, reshaping and attention layers) with only a size in
//! their config changed. The others are built here.

#![cfg(feature = "keras")]

mod common;

use std::io::Write;
use std::path::PathBuf;

use common::counting::{alone, measure, mib, Counting};
use ndarray::{Array2, Array3, ArrayD};
use seqnn::{
    AnyModel, Bidirectional, Dense, Embedding, Error, RepeatVector, Sequential, SimpleRNN,
    TimeDistributed, GRU, LSTM,
};
use serde_json::Value;

#[global_allocator]
static ALLOC: Counting = Counting;

fn hostile_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile")
}

/// What a file may cost while it is refused: a few copies of it (the bytes read, the unpacked
/// member, the parsed HDF5 and JSON) and a fixed allowance for the parsers' own tables.
fn bound(file_len: usize) -> usize {
    8 * file_len + (4 << 20)
}

/// Loads `bytes` alone and checks the peak allocation against [`bound`].
fn load_bounded(what: &str, bytes: &[u8]) -> seqnn::Result<Sequential> {
    let (result, peak) = measure(|| seqnn::load_model_from_bytes(bytes));
    eprintln!("{what}: held {} for {}", mib(peak), mib(bytes.len()));
    assert!(
        peak <= bound(bytes.len()),
        "{what}: loading held {} for a file of {}",
        mib(peak),
        mib(bytes.len())
    );
    result
}

/// Loads a hostile file as the kind of model its manifest entry says: a Sequential one with
/// [`load_bounded`], a Functional one with [`load_any_bounded`].
fn load_entry_bounded(file: &str, model_class: &str, bytes: &[u8]) -> seqnn::Result<AnyModel> {
    match model_class {
        "Sequential" => load_bounded(file, bytes).map(AnyModel::Sequential),
        "Functional" => load_any_bounded(file, bytes),
        other => panic!("{file}: unknown model_class {other}"),
    }
}

/// The error of a hostile file says which layer or size it refuses: it names the patched
/// layer (or, for a wrapper, the wrapper or its patched wrapped layer), or for a patched
/// model input, quotes the size.
fn assert_names_the_patch(file: &str, entry: &Value, err: &Error) {
    let text = err.to_string();
    eprintln!("{file}: refused: {text}");
    let value = entry["value"].as_str().expect("value");
    let layer = entry["layer"].as_str().expect("layer");
    match entry["target"].as_str().expect("target") {
        "input shape" => assert!(text.contains(value), "{file}: {value} not in: {err}"),
        "layer" => assert!(text.contains(layer), "{file}: {layer} not in: {err}"),
        "wrapped layer" => {
            let inner = entry["inner_layers"].as_array().expect("inner_layers");
            let names = inner.iter().map(|n| n.as_str().expect("name"));
            assert!(
                text.contains(layer) || names.clone().any(|n| text.contains(n)),
                "{file}: neither {layer} nor {:?} in: {err}",
                names.collect::<Vec<_>>()
            );
        }
        other => panic!("{file}: unknown target {other}"),
    }
}

#[test]
fn config_sizes_from_real_keras_files_are_refused_before_allocating() {
    let _alone = alone();
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(hostile_dir().join("manifest.json")).expect("manifest"),
    )
    .expect("manifest is JSON");
    let files = manifest["files"].as_array().expect("files");
    assert_eq!(files.len(), 62, "31 cases in two formats");
    let mut failures = Vec::new();
    for entry in files {
        let file = entry["file"].as_str().expect("file");
        // Each file on its own, so that one refusal that goes wrong reports every other one.
        let checked = std::panic::catch_unwind(|| check_hostile_file(file, entry));
        if let Err(panic) = checked {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(ToString::to_string))
                .unwrap_or_default();
            failures.push(message);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} hostile files were not refused as they should be:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

fn check_hostile_file(file: &str, entry: &Value) {
    let bytes = std::fs::read(hostile_dir().join(file)).expect("hostile file");
    let model_class = entry["model_class"].as_str().expect("model_class");
    let result = load_entry_bounded(file, model_class, &bytes);
    match entry["expect"].as_str().expect("expect") {
        "error" => {
            let err = result.expect_err(file);
            assert_names_the_patch(file, entry, &err);
        }
        "load_ok_predict_error" => {
            // A weightless size may load; running it is refused before allocating. A refusal
            // at load says what it refuses, as any other.
            let model = match result {
                Ok(model) => model,
                Err(err) => return assert_names_the_patch(file, entry, &err),
            };
            let shape: Vec<usize> = entry["input_shape"]
                .as_array()
                .expect("input_shape")
                .iter()
                .map(|d| usize::try_from(d.as_u64().expect("a dimension")).expect("usize"))
                .collect();
            let x = ArrayD::<f32>::from_elem(shape, 0.5);
            // Sequential::predict chooses its batch size itself; Model::predict runs 32.
            let (y, peak) = measure(|| match &model {
                AnyModel::Sequential(m) => m.predict(&x).map(|_| ()),
                AnyModel::Functional(m) => m.predict(&[(&x).into()]).map(|_| ()),
            });
            let err = y.expect_err(&format!("{file}: predict should be refused"));
            eprintln!("{file}: predict refused: {err}");
            // The check that refuses may be the model's whole output (which names the model)
            // or a layer's batch: either way, a size refused as too large.
            assert!(matches!(err, Error::TooLarge { .. }), "{file}: {err}");
            assert!(peak < 1 << 20, "{file}: predict held {}", mib(peak));
        }
        other => panic!("{file}: unknown expectation {other}"),
    }
}

/// A `.keras` archive of the members given, stored or deflated as said.
fn archive(members: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for (name, bytes, deflate) in members {
        let method = if *deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(bytes.len() > u32::MAX as usize / 2);
        zip.start_file(*name, options).expect("member");
        zip.write_all(bytes).expect("member bytes");
    }
    zip.finish().expect("archive");
    out.into_inner()
}

/// The members of a real small Keras 3 file.
fn real_members() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/files/course_seq2seq.k3.keras");
    let file = std::fs::File::open(path).expect("fixture");
    let mut zip = zip::ZipArchive::new(file).expect("zip");
    let mut read = |name: &str| {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut zip.by_name(name).expect("member"), &mut v).expect("read");
        v
    };
    (
        read("metadata.json"),
        read("config.json"),
        read("model.weights.h5"),
    )
}

#[test]
fn a_zip_bomb_is_refused_before_it_is_unpacked() {
    let _alone = alone();
    let (metadata, config, _) = real_members();
    // 256 MiB of zeros, which deflate to a few hundred KiB.
    let zeros = vec![0_u8; 256 << 20];
    let bomb = archive(&[
        ("metadata.json", &metadata, false),
        ("config.json", &config, false),
        ("model.weights.h5", &zeros, true),
    ]);
    drop(zeros);
    assert!(bomb.len() < 4 << 20, "{}", bomb.len());
    let err = load_bounded("zip bomb", &bomb).expect_err("a bomb");
    assert!(matches!(err, Error::File { .. }), "{err}");
    assert!(err.to_string().contains("zip bomb"), "{err}");

    // A config.json bomb too: JSON of spaces.
    let spaces = vec![b' '; 64 << 20];
    let bomb = archive(&[
        ("metadata.json", &metadata, false),
        ("config.json", &spaces, true),
    ]);
    drop(spaces);
    let err = load_bounded("config bomb", &bomb).expect_err("a bomb");
    assert!(err.to_string().contains("zip bomb"), "{err}");
}

#[test]
fn a_member_whose_size_field_lies_costs_only_its_real_bytes() {
    let _alone = alone();
    let (metadata, config, weights) = real_members();
    let mut file = archive(&[
        ("metadata.json", &metadata, false),
        ("config.json", &config, false),
        ("model.weights.h5", &weights, false),
    ]);
    // Say, in the central directory, that the weights member holds 4 GiB - 1 uncompressed and
    // compressed: the data after it is what there is.
    let name = b"model.weights.h5";
    let cd = find_last(&file, b"PK\x01\x02", name).expect("central entry");
    file[cd + 20..cd + 24].copy_from_slice(&u32::MAX.to_le_bytes());
    file[cd + 24..cd + 28].copy_from_slice(&u32::MAX.to_le_bytes());
    let result = load_bounded("lying size", &file);
    assert!(result.is_err());
}

/// The offset of the last record starting with `magic` whose file name is `name`.
fn find_last(bytes: &[u8], magic: &[u8], name: &[u8]) -> Option<usize> {
    (0..bytes.len().saturating_sub(46))
        .rev()
        .find(|&i| bytes[i..].starts_with(magic) && bytes[i + 46..].starts_with(name))
}

fn keras_archive_with_config(config: &[u8]) -> Vec<u8> {
    let (metadata, _, weights) = real_members();
    archive(&[
        ("metadata.json", &metadata, false),
        ("config.json", config, false),
        ("model.weights.h5", &weights, false),
    ])
}

/// A legacy `.h5` model whose `model_config` attribute is `config`.
fn legacy_h5_with_config(config: &str) -> Vec<u8> {
    use hdf5_pure::{AttrValue, FileBuilder};
    let mut b = FileBuilder::new();
    b.set_attr(
        "model_config",
        AttrValue::VarLenAsciiString(config.to_string()),
    );
    b.set_attr("keras_version", AttrValue::VarLenString("2.21.0".into()));
    b.set_attr("backend", AttrValue::VarLenString("tensorflow".into()));
    let mut g = b.create_group("model_weights");
    g.set_attr("layer_names", AttrValue::VarLenAsciiStringArray(vec![]));
    b.add_group(g.finish());
    b.finish().expect("an HDF5 file")
}

#[test]
fn json_nested_200000_deep_is_refused() {
    let _alone = alone();
    let depth = 200_000;
    let mut json =
        String::from(r#"{"class_name": "Sequential", "config": {"name": "s", "layers": "#);
    json.push_str(&"[".repeat(depth));
    json.push_str(&"]".repeat(depth));
    json.push_str("}}");
    let err = load_bounded("deep .keras", &keras_archive_with_config(json.as_bytes()))
        .expect_err("too deep");
    assert!(err.to_string().contains("recursion limit"), "{err}");
    let err = load_bounded("deep .h5", &legacy_h5_with_config(&json)).expect_err("too deep");
    assert!(err.to_string().contains("recursion limit"), "{err}");
}

#[test]
fn two_hundred_thousand_layers_load_in_bounded_memory_and_time() {
    let _alone = alone();
    let n = 200_000;
    let mut json = String::from(
        r#"{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 4], "name": "in"}}"#,
    );
    for i in 0..n {
        json.push_str(&format!(
            r#", {{"class_name": "Dense", "config": {{"name": "d{i}", "units": 1}}}}"#
        ));
    }
    json.push_str("]}}");
    let start = std::time::Instant::now();
    // The weights in the file are another model's: refused, after 200,000 layers were built.
    let err = load_bounded("200k .keras", &keras_archive_with_config(json.as_bytes()))
        .expect_err("weights of another model");
    assert!(err.to_string().contains("weight"), "{err}");
    let err = load_bounded("200k .h5", &legacy_h5_with_config(&json)).expect_err("no weights");
    assert!(err.to_string().contains("weights"), "{err}");
    assert!(
        start.elapsed().as_secs() < 60,
        "took {:?}: a step that is quadratic in the layers?",
        start.elapsed()
    );
}

/// Adding `layer` fails with `TooLarge` naming it, and allocates almost nothing.
fn add_refused(layer: impl seqnn::Layer + 'static, name: &str) {
    let mut model = Sequential::new();
    let (result, peak) = measure(|| model.add(layer));
    let err = result.expect_err(name);
    assert!(matches!(err, Error::TooLarge { .. }), "{name}: {err}");
    assert!(err.to_string().contains(name), "{name}: {err}");
    assert!(model.layers().is_empty(), "{name}: the model is unchanged");
    assert!(peak < 1 << 20, "{name}: held {}", mib(peak));
}

#[test]
fn sizes_given_to_the_api_are_refused_before_allocating() {
    let _alone = alone();
    add_refused(
        LSTM::new(1 << 40).with_name("l40").input_shape((10, 64)),
        "l40",
    );
    add_refused(
        LSTM::new(usize::MAX)
            .with_name("lmax")
            .input_shape((10, 64)),
        "lmax",
    );
    add_refused(
        GRU::new(1_000_000).with_name("g6").input_shape((10, 64)),
        "g6",
    );
    add_refused(
        SimpleRNN::new(200_000)
            .with_name("s2e5")
            .input_shape((10, 64)),
        "s2e5",
    );
    add_refused(
        Bidirectional::new(LSTM::new(1_000_000))
            .with_name("bi6")
            .input_shape((10, 64)),
        "forward_lstm",
    );
    add_refused(Embedding::new(usize::MAX, 4).with_name("emax"), "emax");
    add_refused(Embedding::new(100_000_000_000, 4).with_name("e11"), "e11");
    add_refused(Embedding::new(10, 1 << 40).with_name("eo40"), "eo40");
    add_refused(Dense::new(4).with_name("d40").input_dim(1 << 40), "d40");
    add_refused(Dense::new(1_000_000_000).with_name("d9").input_dim(4), "d9");
    add_refused(
        LSTM::new(8)
            .with_name("wide")
            .input_shape((10, 10_000_000_000)),
        "wide",
    );
    add_refused(
        TimeDistributed::new(Dense::new(1_000_000_000).with_name("tdd")).input_shape((5, 4)),
        "tdd",
    );
    // A sequence output of 2^40 steps per sample.
    add_refused(
        SimpleRNN::new(4)
            .with_name("long")
            .with_return_sequences(true)
            .input_shape((1 << 40, 3)),
        "long",
    );
}

#[test]
fn a_weightless_layer_with_an_enormous_output_is_refused() {
    let _alone = alone();
    // RepeatVector has no weights: its size only shows in its output, per sample at add.
    add_refused(
        RepeatVector::new(1 << 40)
            .with_name("rv40")
            .input_shape((4,)),
        "rv40",
    );
    // A sample of 2^28 scalars (1 GiB) may be added; 64 of them are refused before any batch
    // runs, and so is one batch of 64 of them.
    let mut model = Sequential::new();
    model.add(Dense::new(4).input_dim(3)).expect("adds");
    model
        .add(RepeatVector::new(1 << 26).with_name("rv26"))
        .expect("adds");
    let x = Array2::<f32>::zeros((64, 3));
    let (y, peak) = measure(|| model.predict(&x));
    let err = y.expect_err("64 GiB of output");
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(peak < 1 << 20, "held {}", mib(peak));
    let (y, peak) = measure(|| model.call(&x));
    let err = y.expect_err("64 GiB of output");
    assert!(err.to_string().contains("rv26"), "{err}");
    assert!(peak < 1 << 20, "held {}", mib(peak));
}

/// `predict` holds the input, the output and about one batch's working set, where running
/// the whole input as one batch holds the working set of all of it.
#[test]
fn predict_memory_is_bounded_by_one_batch() {
    let _alone = alone();
    let mut model = Sequential::new();
    model
        .add(LSTM::new(64).input_shape((20, 16)))
        .expect("adds");
    let x = Array3::<f32>::from_shape_fn((20_000, 20, 16), |(b, t, d)| {
        ((b * 7 + t * 3 + d) % 11) as f32 / 11.0 - 0.5
    });
    let output = 20_000 * 64 * 4;
    let (whole, whole_peak) = measure(|| model.call(&x).expect("runs"));
    let (batched, batched_peak) = measure(|| model.predict(&x).expect("runs"));
    assert_eq!(batched, whole, "batches give the same numbers");
    // One batch's working set is at most 32 MiB of f32 by the library's budget.
    assert!(
        batched_peak <= output + (48 << 20),
        "predict held {} for an output of {}",
        mib(batched_peak),
        mib(output)
    );
    assert!(
        batched_peak * 4 < whole_peak,
        "predict held {}, one batch {}",
        mib(batched_peak),
        mib(whole_peak)
    );
}

/// What a Functional file may cost: twice [`bound`], for the graph a loader builds besides
/// the layers (each call of each layer is a node, with its tensors and its place in Keras's
/// depth tables), which is proportional to the layers the file really holds.
fn graph_bound(file_len: usize) -> usize {
    2 * bound(file_len)
}

/// Loads a model of either kind from `bytes` alone, its peak allocation checked against
/// [`graph_bound`].
fn load_any_bounded(what: &str, bytes: &[u8]) -> seqnn::Result<seqnn::AnyModel> {
    let (result, peak) = measure(|| seqnn::load_any_from_bytes(bytes));
    eprintln!("{what}: held {} for {}", mib(peak), mib(bytes.len()));
    assert!(
        peak <= graph_bound(bytes.len()),
        "{what}: loading held {} for a file of {}",
        mib(peak),
        mib(bytes.len())
    );
    result
}

/// A tf_keras Functional config: an input, then `n` Dense layers in a chain, listed in
/// `order` (a permutation of 0..n; the input first).
fn functional_chain(n: usize, order: impl Iterator<Item = usize>) -> String {
    let mut json = String::from(
        r#"{"class_name": "Functional", "config": {"name": "f", "layers": [{"class_name": "InputLayer", "config": {"batch_input_shape": [null, 4], "name": "in"}, "name": "in", "inbound_nodes": []}"#,
    );
    for i in order {
        let from = if i == 0 {
            "in".to_string()
        } else {
            format!("d{}", i - 1)
        };
        json.push_str(&format!(
            r#", {{"class_name": "Dense", "config": {{"name": "d{i}", "units": 1}}, "name": "d{i}", "inbound_nodes": [[["{from}", 0, 0, {{}}]]]}}"#
        ));
    }
    json.push_str(&format!(
        r#"], "input_layers": [["in", 0, 0]], "output_layers": [["d{}", 0, 0]]}}, "keras_version": "2.21.0"}}"#,
        n - 1
    ));
    json
}

#[test]
fn a_functional_chain_of_200000_layers_loads_in_bounded_memory_and_time() {
    let _alone = alone();
    let n = 200_000;
    let start = std::time::Instant::now();
    // In order, and listed backwards: each layer's call waits for all the layers after it.
    for (what, json) in [
        ("200k functional", functional_chain(n, 0..n)),
        (
            "200k functional, reversed",
            functional_chain(n, (0..n).rev()),
        ),
    ] {
        let err = load_any_bounded(what, &legacy_h5_with_config(&json))
            .expect_err("the file has no weights for these layers");
        assert!(err.to_string().contains("weights"), "{what}: {err}");
    }
    assert!(
        start.elapsed().as_secs() < 60,
        "took {:?}: a step that is quadratic in the layers?",
        start.elapsed()
    );
}

#[test]
fn functional_graphs_that_cannot_be_built_are_clear_errors() {
    let _alone = alone();
    let wrap = |layers: &str, outputs: &str| {
        format!(
            r#"{{"class_name": "Functional", "config": {{"name": "f", "layers": [{{"class_name": "InputLayer", "config": {{"batch_input_shape": [null, 4], "name": "in"}}, "name": "in", "inbound_nodes": []}}, {layers}], "input_layers": [["in", 0, 0]], "output_layers": {outputs}}}, "keras_version": "2.21.0"}}"#
        )
    };
    let dense = |name: &str, from: &str, node: &str, tensor: &str| {
        format!(
            r#"{{"class_name": "Dense", "config": {{"name": "{name}", "units": 1}}, "name": "{name}", "inbound_nodes": [[["{from}", {node}, {tensor}, {{}}]]]}}"#
        )
    };
    let cases = [
        (
            "a loop",
            wrap(
                &format!(
                    "{}, {}",
                    dense("a", "b", "0", "0"),
                    dense("b", "a", "0", "0")
                ),
                r#"[["b", 0, 0]]"#,
            ),
            "loop",
        ),
        (
            "a node that does not exist",
            wrap(
                &dense("a", "in", "0", "0"),
                r#"[["a", 1152921504606846976, 0]]"#,
            ),
            "has no node",
        ),
        (
            "a tensor that does not exist",
            wrap(
                &format!(
                    "{}, {}",
                    dense("a", "in", "0", "0"),
                    dense("b", "a", "0", "7")
                ),
                r#"[["b", 0, 0]]"#,
            ),
            "output 7",
        ),
        (
            "an unknown layer",
            wrap(&dense("a", "ghost", "0", "0"), r#"[["a", 0, 0]]"#),
            "ghost",
        ),
        (
            "a node index that is not a number",
            wrap(&dense("a", "in", "\"x\"", "0"), r#"[["a", 0, 0]]"#),
            "[layer, node index, tensor index]",
        ),
    ];
    for (what, json, needle) in cases {
        let err = load_any_bounded(what, &legacy_h5_with_config(&json)).expect_err(what);
        assert!(err.to_string().contains(needle), "{what}: {err}");
    }
}
