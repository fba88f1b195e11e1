//! Layer-level fixtures (`tools/keras_reference/layer_fixtures.py`): one Keras layer, rebuilt
//! here from the config Keras serialized, given Keras's weights, called on Keras's inputs and
//! masks; its output shapes, parameter count, outputs and output masks must be Keras's.

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayD};
use serde_json::Value;

use super::{array, assert_close, shape};
use seqnn::{AdditiveAttention, Attention, CallContext, Layer, MultiHeadAttention, Shape};

/// The folder of a family's layer fixtures, `tests/fixtures/layers/<family>/`.
pub fn dir(family: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/layers")
        .join(family)
}

/// Every fixture file of a family, sorted.
pub fn cases(family: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir(family))
        .unwrap_or_else(|e| panic!("fixtures of {family}: {e}"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
}

fn mask(v: &Value) -> Option<Array2<bool>> {
    if v.is_null() {
        return None;
    }
    let dims: Vec<usize> = v["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().expect("dim") as usize)
        .collect();
    let data: Vec<bool> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|b| b.as_bool().expect("bool"))
        .collect();
    Some(Array2::from_shape_vec((dims[0], dims[1]), data).expect("2-D mask"))
}

/// A layer rebuilt from its config, with the call's keyword arguments as its options, and the
/// order of its inputs: the positional ones, then those passed by keyword (the attention mask).
pub fn with_call_arguments(f: &Value) -> (Box<dyn Layer>, Vec<usize>) {
    let mut layer = seqnn::keras::layer_from_config(&f["config"].to_string())
        .unwrap_or_else(|e| panic!("{}: layer_from_config: {e}", f["case"]));
    let kw = &f["call_kwargs"];
    let flag = |k: &str| kw[k].as_bool().unwrap_or(false);
    let (causal, scores) = (flag("use_causal_mask"), flag("return_attention_scores"));
    let by_keyword: Vec<usize> = f["kwarg_inputs"]
        .as_object()
        .map(|m| m.keys().map(|k| k.parse().unwrap()).collect())
        .unwrap_or_default();
    let any: &mut dyn std::any::Any = layer.as_mut();
    if let Some(l) = any.downcast_mut::<Attention>() {
        *l = l
            .clone()
            .with_use_causal_mask(causal)
            .with_return_attention_scores(scores);
    } else if let Some(l) = any.downcast_mut::<AdditiveAttention>() {
        *l = l
            .clone()
            .with_use_causal_mask(causal)
            .with_return_attention_scores(scores);
    } else if let Some(l) = any.downcast_mut::<MultiHeadAttention>() {
        *l = l
            .clone()
            .with_use_causal_mask(causal)
            .with_return_attention_scores(scores)
            .with_attention_mask_input(!by_keyword.is_empty());
    }
    let count = f["inputs"].as_array().unwrap().len();
    let mut order: Vec<usize> = (0..count).filter(|i| !by_keyword.contains(i)).collect();
    order.extend(by_keyword);
    (layer, order)
}

/// The per-input entries `key` of a fixture (`inputs`, `masks`, `input_shapes`) in the call's
/// `order` ([`with_call_arguments`]); `null` where the file has none.
pub fn in_call_order(f: &Value, key: &str, order: &[usize]) -> Vec<Value> {
    let all = f[key].as_array().cloned().unwrap_or_default();
    order
        .iter()
        .map(|&i| all.get(i).cloned().unwrap_or(Value::Null))
        .collect()
}

/// A fixture's layer, rebuilt from Keras's config with Keras's weights, and its call's inputs
/// and masks.
pub struct Fixture {
    /// The file's JSON.
    pub f: Value,
    /// The file's name, for messages.
    pub what: String,
    /// The layer, built, with the fixture's weights.
    pub layer: Box<dyn Layer>,
    /// The call's inputs.
    pub inputs: Vec<ArrayD<f32>>,
    /// The masks the call gets, one per input.
    pub masks: Vec<Option<Array2<bool>>>,
    /// For each of `inputs`, its index in the file's inputs: the call's keyword arguments
    /// (MultiHeadAttention's `attention_mask`) come after the others.
    pub order: Vec<usize>,
}

/// Loads one fixture file, checking its output shapes and parameter counts against Keras's;
/// panics, naming the case, on any difference.
pub fn load(path: &Path) -> Fixture {
    let text = std::fs::read_to_string(path).expect("fixture");
    let f: Value = serde_json::from_str(&text).expect("JSON");
    let what = path.file_name().unwrap().to_string_lossy().to_string();
    let (mut layer, order) = with_call_arguments(&f);
    let pick = |key: &str| in_call_order(&f, key, &order);
    let input_shapes: Vec<Shape> = pick("input_shapes").iter().map(shape).collect();
    let out_shapes = layer
        .build(&input_shapes)
        .unwrap_or_else(|e| panic!("{what}: build: {e}"));
    let keras_shapes: Vec<Shape> = f["output_shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(shape)
        .collect();
    assert_eq!(out_shapes, keras_shapes, "{what}: output shapes");
    assert_eq!(
        layer.count_params() as u64,
        f["params"].as_u64().unwrap(),
        "{what}: params"
    );
    if let Some(trainable) = f["trainable_params"].as_u64() {
        assert_eq!(
            layer.trainable_params() as u64,
            trainable,
            "{what}: trainable params"
        );
    }
    let weights: Vec<ArrayD<f32>> = f["weights"].as_array().unwrap().iter().map(array).collect();
    layer
        .set_weights(&weights)
        .unwrap_or_else(|e| panic!("{what}: set_weights: {e}"));
    let inputs: Vec<ArrayD<f32>> = pick("inputs").iter().map(array).collect();
    let mut masks: Vec<Option<Array2<bool>>> = pick("masks").iter().map(mask).collect();
    // Keras 3 gives a call the mask on its input only when the call has one tensor argument
    // (Layer.__call__, "Populate mask argument(s)"): a recurrent layer given its initial
    // states by keyword ran unmasked, as a Keras 3 file's node then says.
    let keyword_states = f["kwarg_inputs"]
        .as_object()
        .is_some_and(|k| k.values().any(|v| v == "initial_state"));
    // A mask given to the call as `mask=` (`keras_masks` false) does reach it.
    let on_tensors = f["keras_masks"].as_bool().unwrap_or(true);
    if f["library"] == "keras3" && keyword_states && on_tensors {
        masks.iter_mut().for_each(|m| *m = None);
    }
    Fixture {
        f,
        what,
        layer,
        inputs,
        masks,
        order,
    }
}

/// Checks one fixture file; panics, naming the case, on any difference.
pub fn check(path: &Path) {
    let Fixture {
        f,
        what,
        layer,
        inputs,
        masks,
        ..
    } = load(path);
    let views: Vec<_> = inputs.iter().map(|a| a.view()).collect();
    let mut ctx = CallContext::inference().with_masks(masks);
    let outputs = layer
        .call(&views, &mut ctx)
        .unwrap_or_else(|e| panic!("{what}: call: {e}"));
    let expected: Vec<ArrayD<f32>> = f["outputs"].as_array().unwrap().iter().map(array).collect();
    assert_eq!(outputs.len(), expected.len(), "{what}: output count");
    for (i, (o, e)) in outputs.iter().zip(&expected).enumerate() {
        assert_close(o, e, &format!("{what} output {i}"));
    }
    if let Some(keras_masks) = f["output_masks"].as_array() {
        let ours = ctx.output_masks(layer.as_ref(), outputs.len());
        for (i, (o, k)) in ours.iter().zip(keras_masks).enumerate() {
            assert_eq!(*o, mask(k), "{what}: output mask {i}");
        }
    }
}

/// Checks every fixture of a family, and that there are some.
pub fn check_family(family: &str) {
    let paths = cases(family);
    assert!(!paths.is_empty(), "no fixtures for {family}");
    for p in paths {
        check(&p);
    }
}
