//! Stateful models in `fit` and `evaluate` against Keras: each model of
//! `tests/fixtures/train/stateful/` (`tools/keras_reference/generate_train_stateful.py`), a
//! stateful SimpleRNN, LSTM, GRU, stack, Functional model or Bidirectional built for batches of
//! 4 and compiled and saved by tf_keras 2.21 and Keras 3.15 before training, is loaded and
//! trained by seqnn for 3 epochs without shuffling, with the case's reset callback (a
//! `LambdaCallback` calling `reset_states`) and validation. The logs of every epoch, the
//! states at the start of every batch and at each epoch's end, the final weights and states,
//! and `evaluate_stateful` with the states after it match Keras's at 1e-4. Keras's refusals
//! of other batch sizes are refused before any step.
#![cfg(feature = "keras")]

mod common;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use ndarray::{Array2, ArrayD};
use seqnn::{load_any, AnyModel, FitOptions, LambdaCallback, Layer};
use serde_json::Value;

use common::array;
use common::train_fixture::{compare_arrays, compare_history, compare_logs};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/stateful")
}

fn dyn_states(states: Vec<Array2<f32>>) -> Vec<ArrayD<f32>> {
    states.into_iter().map(|s| s.into_dyn()).collect()
}

/// What the recorder saw: `(hook, index, states)`.
type Seen = Rc<RefCell<Vec<(String, usize, Vec<ArrayD<f32>>)>>>;

fn recorder(seen: &Seen) -> LambdaCallback {
    let (a, b) = (seen.clone(), seen.clone());
    LambdaCallback::new()
        .on_train_batch_begin(move |batch, _, fit| {
            a.borrow_mut()
                .push(("train_batch_begin".into(), batch, dyn_states(fit.states())));
        })
        .on_epoch_end(move |epoch, _, fit| {
            b.borrow_mut()
                .push(("epoch_end".into(), epoch, dyn_states(fit.states())));
        })
}

fn reset_callback(when: &str) -> LambdaCallback {
    match when {
        "on_epoch_begin" => LambdaCallback::new().on_epoch_begin(|_, _, fit| fit.reset_states()),
        "on_epoch_end" => LambdaCallback::new().on_epoch_end(|_, _, fit| fit.reset_states()),
        other => panic!("no reset {other}"),
    }
}

fn options(f: &Value) -> FitOptions {
    let mut o = FitOptions::new()
        .with_epochs(3)
        .with_batch_size(4)
        .with_shuffle(false)
        .with_verbose(0);
    if let Some(split) = f["fit"]["validation_split"].as_f64() {
        o = o.with_validation_split(split as f32);
    }
    if !f["x_val"].is_null() {
        o = o.with_validation_data(vec![array(&f["x_val"])], array(&f["y_val"]));
    }
    o
}

fn run(f: &Value, lib: &str, file: &str) -> Result<(), String> {
    let mut model = load_any(dir().join(file)).map_err(|e| e.to_string())?;
    let keras = &f["results"][lib];
    let (x, y) = (array(&f["x"]), array(&f["y"]));
    let seen: Seen = Rc::default();
    let mut record = recorder(&seen);
    let mut reset = f["fit"]["reset"].as_str().map(reset_callback);
    let mut callbacks: Vec<&mut dyn seqnn::Callback> = Vec::new();
    if let Some(r) = reset.as_mut() {
        callbacks.push(r);
    }
    callbacks.push(&mut record);
    let options = options(f);
    let h = match &mut model {
        AnyModel::Sequential(m) => m.fit_with_callbacks(&x, &y, &options, &mut callbacks),
        AnyModel::Functional(m) => {
            m.fit_with_callbacks(&[x.view()], y.view(), &options, &mut callbacks)
        }
    }
    .map_err(|e| format!("fit: {e}"))?;
    compare_history(&h, &keras["history"])?;
    let theirs = keras["seen"].as_array().unwrap();
    let ours = seen.borrow();
    if ours.len() != theirs.len() {
        return Err(format!("{} hooks seen, Keras {}", ours.len(), theirs.len()));
    }
    for ((hook, i, states), k) in ours.iter().zip(theirs) {
        let index = k.get("batch").or_else(|| k.get("epoch")).unwrap();
        let what = format!("states at {hook} {i}");
        if k["hook"] != hook.as_str() || index.as_u64() != Some(*i as u64) {
            return Err(format!("{what}, where Keras had {}", k["hook"]));
        }
        compare_arrays(&what, states, &k["states"])?;
    }
    compare_arrays(
        "final weight",
        &model.get_weights(),
        &keras["final_weights"],
    )?;
    compare_arrays("final state", &states_of(&model), &keras["final_states"])?;
    let ev = match &mut model {
        AnyModel::Sequential(m) => m.evaluate_stateful(&x, &y, 4),
        AnyModel::Functional(m) => m.evaluate_stateful(&[x.view()], y.view(), 4),
    }
    .map_err(|e| format!("evaluate: {e}"))?;
    compare_logs("evaluate", &ev, &keras["evaluate"])?;
    compare_arrays(
        "state after evaluate",
        &states_of(&model),
        &keras["states_after_evaluate"],
    )
}

/// The states a model's stateful layers carry, in layer order.
fn states_of(model: &AnyModel) -> Vec<ArrayD<f32>> {
    let layer: &dyn Layer = match model {
        AnyModel::Sequential(m) => m,
        AnyModel::Functional(m) => m,
    };
    dyn_states(layer.states())
}

#[test]
fn stateful_fits_carry_and_reset_their_states_as_keras_does() {
    let (cases, failures) = common::train_fixture::run_cases(&dir(), run);
    assert!(cases >= 7, "the fixtures are there");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The model of `simple_rnn_sgd`, as Keras 3 saved it, and its data.
fn simple_rnn() -> (seqnn::Sequential, ArrayD<f32>, ArrayD<f32>) {
    let f: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("simple_rnn_sgd.json")).unwrap())
            .unwrap();
    let AnyModel::Sequential(m) = load_any(dir().join("simple_rnn_sgd.k3.keras")).unwrap() else {
        panic!("a Sequential");
    };
    (m, array(&f["x"]), array(&f["y"]))
}

/// What each Keras said to the mistakes (`errors.json`), by library.
fn keras_errors() -> Value {
    let text = std::fs::read_to_string(dir().join("errors.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["errors"].clone()
}

fn keras_error(lib: &str, key: &str) -> String {
    keras_errors()[lib][key].as_str().unwrap().to_string()
}

#[test]
fn other_batch_sizes_are_refused_before_any_step_in_keras_3s_words() {
    let (mut m, x, y) = simple_rnn();
    let before = m.get_weights();
    let quiet = FitOptions::new().with_verbose(0).with_shuffle(false);
    // Keras 3: "If an RNN is stateful, the batch size ... - Expected batch size: 4 - Received
    // batch size: 2" (tf_keras: its input spec's "expected shape=(4, None, 2), found
    // shape=(2, 5, 2)").
    for (batch, key) in [(2, "batch_size_2"), (8, "batch_size_8")] {
        let err = m
            .fit(&x, &y, &quiet.clone().with_batch_size(batch))
            .expect_err("refused")
            .to_string();
        for line in keras_error("keras3", key)
            .trim_start_matches("ValueError: ")
            .lines()
        {
            assert!(err.contains(line.trim()), "{err} lacks Keras's {line:?}");
        }
        assert_eq!(m.get_weights(), before);
        assert_eq!(m.compiled().unwrap().optimizer().iterations(), 0);
        let err = m.evaluate_stateful(&x, &y, batch).expect_err("refused");
        assert!(err.to_string().contains("Expected batch size: 4"), "{err}");
    }
    // Keras trains on the whole batches, then fails on the last one ("Incompatible shapes:
    // [2,3] vs. [4,3]"); seqnn refuses at once.
    assert!(keras_error("tf_keras", "samples_10_batch_size_4").contains("Incompatible shapes"));
    let ten = x.slice_axis(ndarray::Axis(0), (0..10).into()).to_owned();
    let ten_y = y.slice_axis(ndarray::Axis(0), (0..10).into()).to_owned();
    let err = m
        .fit(&ten, &ten_y, &quiet.clone().with_batch_size(4))
        .expect_err("refused");
    assert!(err.to_string().contains("multiple of 4; got 10"), "{err}");
    // A validation of 6 samples cannot run in batches of 4 either.
    let val = quiet.clone().with_batch_size(4).with_validation_data(
        vec![ten.slice_axis(ndarray::Axis(0), (0..6).into()).to_owned()],
        ten_y.slice_axis(ndarray::Axis(0), (0..6).into()).to_owned(),
    );
    let err = m.fit(&x, &y, &val).expect_err("refused");
    assert!(err.to_string().contains("multiple of 4; got 6"), "{err}");
    assert_eq!(m.get_weights(), before);
    assert!(m.layers()[0].states()[0].iter().all(|&h| h == 0.0));
    // train_on_batch takes one batch of the model's size.
    assert!(m.train_on_batch(&ten, &ten_y).is_err());
    assert_eq!(m.get_weights(), before);
}

#[test]
fn shuffled_batches_are_allowed_as_keras_allows_them() {
    // Keras neither refuses nor warns (errors.json: no warning about shuffle).
    for lib in ["tf_keras", "keras3"] {
        let said = &keras_errors()[lib]["shuffle_true_warnings"];
        assert_eq!(said, &serde_json::json!([]));
    }
    let (mut m, x, y) = simple_rnn();
    let options = FitOptions::new().with_verbose(0).with_batch_size(4);
    let h = m.fit(&x, &y, &options).expect("shuffled");
    assert_eq!(h.epoch(), &[0]);
}

#[test]
fn train_on_batch_carries_the_states_as_fit_does() {
    // Keras: fit over 4 batches == train_on_batch on each in turn (the states carried).
    let (mut by_fit, x, y) = simple_rnn();
    let (mut by_batch, _, _) = simple_rnn();
    let options = FitOptions::new()
        .with_verbose(0)
        .with_batch_size(4)
        .with_shuffle(false);
    by_fit.fit(&x, &y, &options).unwrap();
    for b in 0..4 {
        let rows = ndarray::Slice::from(4 * b..4 * b + 4);
        by_batch
            .train_on_batch(
                &x.slice_axis(ndarray::Axis(0), rows),
                &y.slice_axis(ndarray::Axis(0), rows),
            )
            .unwrap();
    }
    for (a, b) in by_fit.get_weights().iter().zip(by_batch.get_weights()) {
        assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-6));
    }
    assert_eq!(
        Layer::states(&by_fit)[0].shape(),
        Layer::states(&by_batch)[0].shape()
    );
    let (s1, s2) = (Layer::states(&by_fit), Layer::states(&by_batch));
    assert!(s1[0].iter().zip(&s2[0]).all(|(p, q)| (p - q).abs() < 1e-6));
    assert!(s1[0].iter().any(|&h| h != 0.0));
    // The stateless entry points refuse, pointing to the stateful one.
    let err = by_fit.evaluate(&x, &y, 4).unwrap_err().to_string();
    assert!(err.contains("evaluate_stateful"), "{err}");
    let err = by_fit.test_on_batch(&x, &y).unwrap_err().to_string();
    assert!(err.contains("evaluate_stateful"), "{err}");
}
