//! Backward passes: each layer's gradients against central finite differences of its own
//! forward pass (a check of the calculus, independent of Keras), and against the gradients
//! `tf.GradientTape` gives in tf_keras 2.21 and Keras 3.15 (`tests/fixtures/train/gradients/`).

#![cfg(feature = "keras")]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use ndarray::{Array2, ArrayD, IxDyn};
use seqnn::{CallContext, Dense, Layer, Shape, SimpleRNN, GRU, LSTM};

use common::layer_fixture::{load, Fixture};
use common::{array, assert_close};

/// The layer classes that have no backward pass yet: their fixtures must say so with
/// `Error::Unsupported`, and every other class must match Keras. A class leaves this list when
/// its backward pass lands.
const NOT_YET: &[&str] = &[
    "AdditiveAttention",
    "Add",
    "Attention",
    "Average",
    "AveragePooling1D",
    "BatchNormalization",
    "Conv1D",
    "Conv2D",
    "ConvLSTM1D",
    "Cropping1D",
    "Dot",
    "LayerNormalization",
    "MaxPooling1D",
    "MaxPooling2D",
    "Maximum",
    "Minimum",
    "MultiHeadAttention",
    "Multiply",
    "Subtract",
    "UpSampling1D",
    "ZeroPadding1D",
];

/// Every layer case of `tests/fixtures/train/gradients/` (`generate_train_gradients.py`):
/// the training call's outputs, and the gradients of `Σ outputs · upstream` with respect to
/// the inputs and the weights, against `tf.GradientTape`'s (1e-5, relative above 1).
#[test]
fn gradients_match_keras() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/gradients");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("gradient fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("model_")
        })
        .collect();
    paths.sort();
    assert!(paths.len() > 100, "the gradient fixtures are there");
    let mut unsupported = BTreeSet::new();
    let mut checked = 0;
    for path in &paths {
        let Fixture {
            f,
            what,
            layer,
            inputs,
            masks,
        } = load(path);
        let views: Vec<_> = inputs.iter().map(|a| a.view()).collect();
        let mut ctx = if f["training"].as_bool().unwrap_or(true) {
            CallContext::training()
        } else {
            CallContext::inference().recording()
        }
        .with_masks(masks);
        // A layer whose training call is not implemented yet refuses it.
        let Ok(outputs) = layer.call(&views, &mut ctx) else {
            unsupported.insert(layer.class_name().to_string());
            continue;
        };
        let expected: Vec<ArrayD<f32>> =
            f["outputs"].as_array().unwrap().iter().map(array).collect();
        for (i, (o, e)) in outputs.iter().zip(&expected).enumerate() {
            assert_close(o, e, &format!("{what} output {i}"));
        }
        let Some(saved) = ctx.take_saved() else {
            unsupported.insert(layer.class_name().to_string());
            continue;
        };
        let upstream: Vec<ArrayD<f32>> = f["upstream"]
            .as_array()
            .unwrap()
            .iter()
            .map(array)
            .collect();
        let grads: Vec<_> = upstream.iter().map(|u| Some(u.view())).collect();
        let g = match layer.backward(&saved, &grads) {
            Ok(g) => g,
            Err(seqnn::Error::Unsupported { class, .. }) => {
                // The class that has no backward pass: the layer's, or a wrapped layer's.
                unsupported.insert(class);
                continue;
            }
            Err(e) => panic!("{what}: backward: {e}"),
        };
        for (i, keras) in f["input_gradients"].as_array().unwrap().iter().enumerate() {
            match (keras.is_null(), g.inputs.get(i).and_then(Option::as_ref)) {
                (true, _) => {}
                (false, Some(ours)) => {
                    assert_close(ours, &array(keras), &format!("{what} d input {i}"))
                }
                (false, None) => panic!("{what}: no gradient for input {i}"),
            }
        }
        let keras_w = f["weight_gradients"].as_array().unwrap();
        assert_eq!(g.weights.len(), keras_w.len(), "{what}: weight gradients");
        for (i, (ours, keras)) in g.weights.iter().zip(keras_w).enumerate() {
            if !keras.is_null() {
                assert_close(ours, &array(keras), &format!("{what} d weight {i}"));
            }
        }
        checked += 1;
    }
    let expected: BTreeSet<String> = NOT_YET.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        unsupported, expected,
        "the classes without a backward pass are those listed in NOT_YET"
    );
    eprintln!("{checked} cases match Keras; without a backward pass: {unsupported:?}");
    assert!(checked >= 60, "{checked} cases checked");
}

/// A deterministic pseudo-random array in [-1, 1).
fn noise(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    })
}

/// `Σ_i Σ outputs[i] · upstream[i]`, in f64.
fn loss(
    layer: &dyn Layer,
    inputs: &[ArrayD<f32>],
    masks: &[Option<Array2<bool>>],
    up: &[ArrayD<f32>],
) -> f64 {
    let views: Vec<_> = inputs.iter().map(|a| a.view()).collect();
    let mut ctx = CallContext::inference().with_masks(masks.to_vec());
    let out = layer.call(&views, &mut ctx).expect("forward");
    out.iter()
        .zip(up)
        .map(|(o, u)| {
            o.iter()
                .zip(u)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum::<f64>()
        })
        .sum()
}

/// Checks `layer`'s backward pass against central differences for every input and weight
/// value, within `tol` relative to the largest gradient.
fn check_against_differences(
    what: &str,
    layer: &mut dyn Layer,
    inputs: Vec<ArrayD<f32>>,
    masks: Vec<Option<Array2<bool>>>,
) {
    let views: Vec<_> = inputs.iter().map(|a| a.view()).collect();
    let mut ctx = CallContext::training().with_masks(masks.clone());
    let out = layer.call(&views, &mut ctx).expect("training call");
    let up: Vec<ArrayD<f32>> = out
        .iter()
        .enumerate()
        .map(|(i, o)| noise(o.shape(), 100 + i as u64))
        .collect();
    let saved = ctx
        .take_saved()
        .expect("a training call keeps what backward needs");
    let grads_up: Vec<_> = up.iter().map(|u| Some(u.view())).collect();
    let grads = layer.backward(&saved, &grads_up).expect("backward");
    let eps = 1e-2_f32;
    let mut worst = 0.0_f64;
    let mut scale = 1e-3_f64;
    // Inputs.
    for (i, input) in inputs.iter().enumerate() {
        let g = grads.inputs[i]
            .as_ref()
            .expect("a float input has a gradient")
            .as_standard_layout();
        assert_eq!(g.shape(), input.shape(), "{what}: input {i} gradient shape");
        for k in 0..input.len() {
            let mut plus = inputs.clone();
            plus[i].as_slice_mut().unwrap()[k] += eps;
            let mut minus = inputs.clone();
            minus[i].as_slice_mut().unwrap()[k] -= eps;
            let numeric = (loss(layer, &plus, &masks, &up) - loss(layer, &minus, &masks, &up))
                / (2.0 * f64::from(eps));
            let analytic = f64::from(g.as_slice().unwrap()[k]);
            worst = worst.max((numeric - analytic).abs());
            scale = scale.max(numeric.abs());
        }
    }
    // Weights.
    let weights: Vec<ArrayD<f32>> = layer
        .weights()
        .iter()
        .map(|w| w.as_standard_layout().into_owned())
        .collect();
    assert_eq!(
        grads.weights.len(),
        weights.len(),
        "{what}: one gradient per weight"
    );
    for (w, g) in grads.weights.iter().enumerate() {
        let g = g.as_standard_layout();
        assert_eq!(
            g.shape(),
            weights[w].shape(),
            "{what}: weight {w} gradient shape"
        );
        for k in 0..weights[w].len() {
            let at = |delta: f32, layer: &mut dyn Layer| {
                let mut changed = weights.clone();
                changed[w].as_slice_mut().unwrap()[k] += delta;
                layer.set_weights(&changed).unwrap();
                loss(layer, &inputs, &masks, &up)
            };
            let numeric = (at(eps, layer) - at(-eps, layer)) / (2.0 * f64::from(eps));
            let analytic = f64::from(g.as_slice().unwrap()[k]);
            worst = worst.max((numeric - analytic).abs());
            scale = scale.max(numeric.abs());
        }
        layer.set_weights(&weights).unwrap();
    }
    assert!(
        worst <= 2e-3 * scale.max(1.0),
        "{what}: largest difference from finite differences {worst:.2e} (scale {scale:.2e})"
    );
}

fn built(mut layer: impl Layer + 'static, shapes: &[Vec<Option<usize>>]) -> Box<dyn Layer> {
    let shapes: Vec<Shape> = shapes.iter().map(|s| Shape::new(s.clone())).collect();
    layer.build(&shapes).expect("build");
    layer.initialize();
    // Larger weights than the initializers give, so that every path carries gradient.
    let w: Vec<ArrayD<f32>> = layer
        .weights()
        .iter()
        .enumerate()
        .map(|(i, v)| noise(v.shape(), 7 + i as u64).mapv(|x| 0.6 * x))
        .collect();
    layer.set_weights(&w).expect("weights");
    Box::new(layer)
}

fn seq(f: usize) -> Vec<Vec<Option<usize>>> {
    vec![vec![None, None, Some(f)]]
}

fn mask() -> Array2<bool> {
    // Right-padded, left-padded, and a row with a hole.
    ndarray::array![
        [true, true, true, false],
        [false, true, true, true],
        [true, false, true, true]
    ]
}

#[test]
fn recurrent_layers_match_finite_differences() {
    let x = || noise(&[3, 4, 2], 1);
    let cases: Vec<(&str, Box<dyn Layer>, bool)> = vec![
        ("simple_rnn last", built(SimpleRNN::new(3), &seq(2)), false),
        (
            "simple_rnn seq relu backwards",
            built(
                SimpleRNN::new(3)
                    .with_return_sequences(true)
                    .with_go_backwards(true)
                    .with_activation(seqnn::ActivationFn::Swish),
                &seq(2),
            ),
            false,
        ),
        ("lstm last", built(LSTM::new(3), &seq(2)), false),
        (
            "lstm seq state masked",
            built(
                LSTM::new(3)
                    .with_return_sequences(true)
                    .with_return_state(true),
                &seq(2),
            ),
            true,
        ),
        ("lstm last masked", built(LSTM::new(2), &seq(2)), true),
        ("gru last", built(GRU::new(3), &seq(2)), false),
        (
            "gru v1 seq backwards masked",
            built(
                GRU::new(3)
                    .with_reset_after(false)
                    .with_return_sequences(true)
                    .with_go_backwards(true),
                &seq(2),
            ),
            true,
        ),
        (
            "gru v1 no bias state",
            built(
                GRU::new(2)
                    .with_reset_after(false)
                    .with_use_bias(false)
                    .with_return_state(true),
                &seq(2),
            ),
            false,
        ),
        (
            "gru seq masked state",
            built(
                GRU::new(2)
                    .with_return_sequences(true)
                    .with_return_state(true),
                &seq(2),
            ),
            true,
        ),
    ];
    for (what, mut layer, masked) in cases {
        let masks = vec![masked.then(mask)];
        check_against_differences(what, layer.as_mut(), vec![x()], masks);
    }
}

#[test]
fn initial_states_get_gradients() {
    let x = noise(&[3, 4, 2], 3);
    let h = noise(&[3, 3], 4);
    let c = noise(&[3, 3], 5);
    let shapes = vec![
        vec![None, None, Some(2)],
        vec![None, Some(3)],
        vec![None, Some(3)],
    ];
    let mut lstm = built(LSTM::new(3).with_return_sequences(true), &shapes);
    check_against_differences(
        "lstm initial",
        lstm.as_mut(),
        vec![x.clone(), h.clone(), c],
        vec![Some(mask()), None, None],
    );
    let mut gru = built(GRU::new(3), &shapes[..2]);
    check_against_differences(
        "gru initial",
        gru.as_mut(),
        vec![x, h],
        vec![Some(mask()), None],
    );
}

#[test]
fn dense_matches_finite_differences() {
    for (what, layer, shape) in [
        (
            "dense 2-D tanh",
            Dense::new(3).with_activation(seqnn::ActivationFn::Tanh),
            vec![4, 2],
        ),
        (
            "dense 3-D softmax",
            Dense::new(3).with_activation(seqnn::ActivationFn::Softmax),
            vec![2, 3, 2],
        ),
        (
            "dense no bias",
            Dense::new(2).with_use_bias(false),
            vec![3, 2],
        ),
    ] {
        let mut dims: Vec<Option<usize>> = vec![None; shape.len() - 1];
        dims.push(Some(2));
        let mut layer = built(layer, &[dims]);
        check_against_differences(what, layer.as_mut(), vec![noise(&shape, 9)], vec![None]);
    }
}

/// The whole-model cases of the gradient fixtures that seqnn can train so far: a Sequential
/// rebuilt from Keras's config, called in training, its backward pass from the upstream
/// gradient. Only the trainable weights' gradients are compared, as Keras lists them.
#[test]
fn model_gradients_match_keras() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/gradients");
    let mut checked = Vec::new();
    for case in [
        "model_embedding_lstm_dense",
        "model_lstm_time_distributed",
        "model_bidi_gru_dense",
        "model_frozen_first",
        "model_two_inputs_concat",
    ] {
        for lib in ["tf", "k3"] {
            let what = format!("{case}.{lib}");
            let path = dir.join(format!("{what}.json"));
            let f: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let mut model: Box<dyn Layer> =
                match seqnn::keras::any_from_json(&f["model_config"].to_string())
                    .unwrap_or_else(|e| panic!("{what}: {e}"))
                {
                    seqnn::AnyModel::Sequential(m) => Box::new(m),
                    seqnn::AnyModel::Functional(m) => Box::new(m),
                };
            let weights: Vec<ArrayD<f32>> =
                f["weights"].as_array().unwrap().iter().map(array).collect();
            model.set_weights(&weights).unwrap();
            let inputs: Vec<ArrayD<f32>> =
                f["inputs"].as_array().unwrap().iter().map(array).collect();
            let views: Vec<_> = inputs.iter().map(|a| a.view()).collect();
            // As a caller that wants every gradient, then as fit, which wants none of the
            // inputs': the same weight gradients, and no input gradient.
            for input_gradients in [true, false] {
                let mut ctx = CallContext::training()
                    .with_input_gradients(vec![input_gradients; views.len()]);
                let out = model
                    .call(&views, &mut ctx)
                    .unwrap_or_else(|e| panic!("{what}: call: {e}"));
                assert_close(&out[0], &array(&f["outputs"][0]), &format!("{what} output"));
                let up = array(&f["upstream"][0]);
                let saved = ctx.take_saved().expect("kept");
                let g = model
                    .backward(&saved, &[Some(up.view())])
                    .unwrap_or_else(|e| panic!("{what}: backward: {e}"));
                let indices = f["trainable_weight_indices"].as_array().unwrap();
                let keras = f["weight_gradients"].as_array().unwrap();
                assert_eq!(indices.len(), keras.len());
                for (i, k) in indices.iter().zip(keras) {
                    let i = i.as_u64().unwrap() as usize;
                    assert_close(&g.weights[i], &array(k), &format!("{what} d weight {i}"));
                }
                for (i, k) in f["input_gradients"].as_array().unwrap().iter().enumerate() {
                    if !input_gradients {
                        assert!(
                            g.inputs[i].is_none(),
                            "{what}: d input {i} was not asked for"
                        );
                    } else if !k.is_null() {
                        let ours = g.inputs[i].as_ref().expect("a float input's gradient");
                        assert_close(ours, &array(k), &format!("{what} d input {i}"));
                    }
                }
            }
            checked.push(what);
        }
    }
    assert_eq!(checked.len(), 10);
}
