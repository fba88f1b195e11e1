//! Layer-level Keras fixtures of the attention layers
//! (`tools/keras_reference/generate_layers_attention.py`): Attention, AdditiveAttention and
//! MultiHeadAttention rebuilt from the configs tf_keras 2.21 and Keras 3.15 serialized, and
//! sizes that must be refused before anything is allocated for them.
#![cfg(feature = "keras")]

mod common;

use std::any::Any;
use std::path::Path;

use ndarray::{Array2, ArrayD, IxDyn};
use serde_json::Value;

use common::counting::{alone, measure, mib, Counting};
use common::layer_fixture::{self, with_call_arguments};
use common::{array, assert_close, shape};
use seqnn::keras::{layer_from_config, layer_to_config};
use seqnn::{AdditiveAttention, Attention, CallContext, Error, Layer, MultiHeadAttention, Shape};

#[global_allocator]
static A: Counting = Counting;

/// The most a refused build or call may allocate.
const REFUSAL_BOUND: usize = 1 << 20;

#[test]
fn attention_layers_equal_keras() {
    let _alone = alone();
    layer_fixture::check_family("attention");
}

/// The cases of `attention/call/`, whose Keras call had keyword arguments.
fn call_cases() -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(layer_fixture::dir("attention").join("call"))
        .expect("call fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
}

fn bool_mask(v: &Value) -> Option<Array2<bool>> {
    let dims: Vec<usize> = v["shape"]
        .as_array()?
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<bool> = v["data"]
        .as_array()?
        .iter()
        .map(|b| b.as_bool().unwrap())
        .collect();
    (dims.len() == 2).then(|| Array2::from_shape_vec((dims[0], dims[1]), data).expect("2-D mask"))
}

/// As `layer_fixture::check`, for a case whose call took keyword arguments. Two differences
/// from Keras are checked to be what they are: Keras 3.15's symbolic shape of
/// MultiHeadAttention's scores, `(batch, heads, T, T)`, where its tensors (and seqnn's shape)
/// have `S`; and the 4-D attention mask Keras leaves on those scores, which a seqnn `Mask`
/// `(batch, timesteps)` cannot hold, so seqnn's scores carry none.
fn check_call_case(path: &Path) {
    let f: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let what = path.file_name().unwrap().to_string_lossy().to_string();
    let (mut layer, order) = with_call_arguments(&f);
    let pick = |key: &str| layer_fixture::in_call_order(&f, key, &order);
    let input_shapes: Vec<Shape> = pick("input_shapes").iter().map(shape).collect();
    let ours = layer
        .build(&input_shapes)
        .unwrap_or_else(|e| panic!("{what}: build: {e}"));
    let outputs: Vec<ArrayD<f32>> = f["outputs"].as_array().unwrap().iter().map(array).collect();
    let keras: Vec<Shape> = f["output_shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(shape)
        .collect();
    assert_eq!(ours.len(), keras.len(), "{what}: output count");
    for (i, (o, k)) in ours.iter().zip(&keras).enumerate() {
        if o != k {
            let real = Shape::known(outputs[i].shape()).with_batch(None);
            assert!(
                f["library"] == "keras3" && layer.class_name() == "MultiHeadAttention" && i == 1,
                "{what}: output shape {i}: {o} against Keras's {k}"
            );
            assert_eq!(*o, real, "{what}: seqnn's scores shape is the tensors'");
            assert_eq!(
                k.dim(2),
                k.dim(3),
                "{what}: Keras 3 says (batch, heads, T, T)"
            );
        }
    }
    assert_eq!(
        layer.count_params() as u64,
        f["params"].as_u64().unwrap(),
        "{what}: params"
    );
    let weights: Vec<ArrayD<f32>> = f["weights"].as_array().unwrap().iter().map(array).collect();
    layer
        .set_weights(&weights)
        .unwrap_or_else(|e| panic!("{what}: set_weights: {e}"));
    let inputs: Vec<ArrayD<f32>> = pick("inputs").iter().map(array).collect();
    let views: Vec<_> = inputs.iter().map(|a| a.view()).collect();
    let masks: Vec<Option<Array2<bool>>> = pick("masks").iter().map(bool_mask).collect();
    let mut ctx = CallContext::inference().with_masks(masks);
    let got = layer
        .call(&views, &mut ctx)
        .unwrap_or_else(|e| panic!("{what}: call: {e}"));
    assert_eq!(got.len(), outputs.len(), "{what}: outputs");
    assert_eq!(
        layer.output_count(),
        outputs.len(),
        "{what}: declared outputs"
    );
    for (i, (g, e)) in got.iter().zip(&outputs).enumerate() {
        assert_close(g, e, &format!("{what} output {i}"));
    }
    let our_masks = ctx.output_masks(layer.as_ref(), got.len());
    for (i, (o, k)) in our_masks
        .iter()
        .zip(f["output_masks"].as_array().unwrap())
        .enumerate()
    {
        match k["shape"].as_array().map(Vec::len) {
            Some(4) => assert!(o.is_none(), "{what}: output mask {i}"),
            _ => assert_eq!(*o, bool_mask(k), "{what}: output mask {i}"),
        }
    }
}

#[test]
fn calls_with_keras_keyword_arguments_equal_keras() {
    let _alone = alone();
    let cases = call_cases();
    assert!(cases.len() >= 18, "call fixtures: {}", cases.len());
    for p in cases {
        check_call_case(&p);
    }
}

/// Every fixture's layer written as Keras 3's config and read back: the same config again,
/// and, for Keras 3's fixtures, Keras's numbers from seqnn's own config.
#[test]
fn seqnn_configs_read_back_as_the_same_layers() {
    let _alone = alone();
    let tmp = std::env::temp_dir().join(format!("seqnn-attention-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for path in layer_fixture::cases("attention") {
        let mut f: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let what = path.file_name().unwrap().to_string_lossy().to_string();
        let layer = layer_from_config(&f["config"].to_string()).unwrap();
        let written = match layer_to_config(layer.as_ref()) {
            Ok(w) => w,
            Err(e) => {
                // tf_keras's causal constructor argument: no Keras 3 config holds it.
                assert!(what.contains("causal_config"), "{what}: {e}");
                assert!(matches!(e, Error::Unsupported { .. }), "{what}: {e}");
                continue;
            }
        };
        let again = layer_from_config(&written).unwrap();
        assert_eq!(layer_to_config(again.as_ref()).unwrap(), written, "{what}");
        if f["library"] == "keras3" {
            f["config"] = serde_json::from_str(&written).unwrap();
            let copy = tmp.join(&what);
            std::fs::write(&copy, f.to_string()).unwrap();
            layer_fixture::check(&copy);
        }
    }
    std::fs::remove_dir_all(&tmp).ok();
}

#[test]
fn configs_refuse_what_seqnn_does_not_compute() {
    let _alone = alone();
    let refused = [
        r#"{"class_name": "MultiHeadAttention", "config": {"name": "m", "num_heads": 2, "key_dim": 3, "attention_axes": [2]}}"#,
        r#"{"class_name": "Attention", "config": {"name": "a", "score_mode": "general"}}"#,
        r#"{"class_name": "MultiHeadAttention", "config": {"name": "m", "num_heads": 0, "key_dim": 3}}"#,
    ];
    let expected = [
        "layer \"m\" (MultiHeadAttention): option attention_axes=[2] is not supported (seqnn \
         attends over the timesteps only, attention_axes=None)",
        "layer \"a\" (Attention): Invalid value for argument score_mode. Expected one of \
         {'dot', 'concat'}. Received: score_mode=general",
        "<json>: layer \"m\": Received an invalid value for argument `num_heads`, expected a positive \
         integer. Received: num_heads=0",
    ];
    for (json, message) in refused.iter().zip(expected) {
        let err = layer_from_config(json).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    // tf_keras's softmax_robust_masking and Keras 3's keys tell the dialects apart.
    let tf = r#"{"class_name": "MultiHeadAttention", "config": {"name": "m", "num_heads": 2,
        "key_dim": 3, "softmax_robust_masking": true, "dtype": "float32"}}"#;
    let layer = layer_from_config(tf).unwrap();
    let mha = (layer.as_ref() as &dyn Any)
        .downcast_ref::<MultiHeadAttention>()
        .unwrap();
    assert_eq!(mha.softmax_masking(), seqnn::SoftmaxMasking::TfKerasRobust);
    let written = layer_to_config(layer.as_ref()).unwrap();
    let back = layer_from_config(&written).unwrap();
    let back = (back.as_ref() as &dyn Any)
        .downcast_ref::<MultiHeadAttention>()
        .unwrap();
    assert_eq!(back.softmax_masking(), seqnn::SoftmaxMasking::Keras3);
}

fn seq(t: Option<usize>, features: usize) -> Shape {
    Shape::new(vec![None, t, Some(features)])
}

/// `f` refused with [`Error::TooLarge`], allocating at most [`REFUSAL_BOUND`] bytes.
fn refused_small<T: std::fmt::Debug>(what: &str, f: impl FnOnce() -> seqnn::Result<T>) {
    let (result, peak) = measure(f);
    let err = result.expect_err(what);
    assert!(matches!(err, Error::TooLarge { .. }), "{what}: {err}");
    assert!(peak <= REFUSAL_BOUND, "{what}: peak {}", mib(peak));
}

#[test]
fn hostile_heads_and_sizes_are_refused_before_allocation() {
    let _alone = alone();
    let two = || vec![seq(Some(3), 8), seq(Some(3), 8)];
    refused_small("2^40 heads", || {
        MultiHeadAttention::new(1 << 40, 4).build(&two())
    });
    refused_small("key_dim 10^12", || {
        MultiHeadAttention::new(2, 1_000_000_000_000).build(&two())
    });
    refused_small("value_dim 10^12", || {
        MultiHeadAttention::new(2, 4)
            .with_value_dim(1_000_000_000_000)
            .build(&two())
    });
    refused_small("output_shape 2^40", || {
        MultiHeadAttention::new(2, 4)
            .with_output_shape(vec![1 << 20, 1 << 20])
            .build(&two())
    });
    // Known lengths whose score matrix would be 2^40 per sample: refused when built.
    let long = || vec![seq(Some(1 << 20), 4), seq(Some(1 << 20), 4)];
    refused_small("MultiHeadAttention scores", || {
        MultiHeadAttention::new(2, 2).build(&long())
    });
    refused_small("Attention scores", || Attention::new().build(&long()));
    refused_small("AdditiveAttention scores", || {
        AdditiveAttention::new().build(&long())
    });
}

#[test]
fn a_query_too_long_for_its_scores_is_refused_by_the_call() {
    let _alone = alone();
    // Free lengths when built; at the call, 2^17 queries over 2^17 keys would make a score
    // matrix of 2^34 scalars (64 GiB). The inputs themselves are 512 KiB each.
    let free = vec![seq(None, 1), seq(None, 1)];
    let x = ArrayD::<f32>::zeros(IxDyn(&[1, 1 << 17, 1]));
    let mut attention = Attention::new();
    attention.build(&free).unwrap();
    let mut additive = AdditiveAttention::new();
    additive.build(&free).unwrap();
    additive.initialize();
    let mut mha = MultiHeadAttention::new(1, 1);
    mha.build(&free).unwrap();
    mha.initialize();
    let scores_mha = MultiHeadAttention::new(1, 1).with_return_attention_scores(true);
    let mut scores_mha = scores_mha;
    scores_mha.build(&free).unwrap();
    scores_mha.initialize();
    for layer in [&attention as &dyn Layer, &additive, &mha, &scores_mha] {
        let what = layer.class_name();
        refused_small(what, || {
            layer.call(&[x.view(), x.view()], &mut CallContext::inference())
        });
    }
}

/// The portable kernels, and AVX2 on an AVX-512 CPU, give these numbers too (the tests above
/// run on the CPU's own).
#[test]
fn every_instruction_set_gives_these_numbers() {
    common::rerun_on_narrower_instruction_sets("every_instruction_set_gives_these_numbers");
}
