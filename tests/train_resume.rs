//! Checkpoints that resume exactly, both ways (`tests/fixtures/train/resume/`, made by
//! `tools/keras_reference/generate_train_resume.py`):
//!
//! - Keras → seqnn: a model Keras 3 or tf_keras trained for one epoch and saved (`.keras`, and
//!   tf_keras's legacy `.h5`) loads with its optimizer's state, and seqnn's next epoch ends on
//!   the weights Keras's next epoch ends on, after `load_model` of the same file (1e-5).
//! - seqnn → Keras: seqnn trains Keras 3's untrained file for one epoch; its weights and
//!   optimizer variables are Keras's after that epoch; the file it saves holds those
//!   variables where Keras 3 keeps them, and its next epoch is Keras's (1e-5). One such file
//!   was loaded and trained on by Keras 3 itself (the fixture README says how).
//! - `load_weights` into a compiled model takes the state too, or, when it does not fit,
//!   changes nothing.
//! - Files whose optimizer state does not fit are refused, naming the variable.
#![cfg(feature = "keras")]

mod common;

use std::path::PathBuf;

use ndarray::ArrayD;
use seqnn::train::{Optimizer, VariableValue};
use seqnn::{load_model, load_model_from_bytes, Error, FitOptions, Sequential};
use serde_json::Value;

use common::array;

const TOL: f32 = 1e-5;

const CASES: &[&str] = &[
    "lstm_adam",
    "gru_rmsprop",
    "simple_rnn_sgd_momentum",
    "lstm_rmsprop_centered_momentum",
    "gru_adam_amsgrad",
    "bidir_sgd_nesterov",
    "lstm_nadam",
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/resume")
}

fn fixture(case: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(format!("{case}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn arrays(v: &Value) -> Vec<ArrayD<f32>> {
    v.as_array().unwrap().iter().map(array).collect()
}

fn assert_all_close(ours: &[ArrayD<f32>], keras: &[ArrayD<f32>], what: &str) {
    assert_eq!(ours.len(), keras.len(), "{what}: count");
    for (k, (a, b)) in ours.iter().zip(keras).enumerate() {
        assert_eq!(a.shape(), b.shape(), "{what} {k}: shape");
        for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= TOL,
                "{what} {k}: at {i}, {x} against Keras's {y}"
            );
        }
    }
}

/// One epoch as the generator's: batches of 8 in order.
fn one_epoch(model: &mut Sequential, f: &Value) -> seqnn::Result<()> {
    let (x, y) = (array(&f["x"]), array(&f["y"]));
    let options = FitOptions::new()
        .with_epochs(1)
        .with_batch_size(8)
        .with_shuffle(false)
        .with_verbose(0);
    model.fit(&x, &y, &options)?;
    Ok(())
}

/// The optimizer's variables as arrays (the iteration count as a 0-d array), with its
/// iteration count.
fn state(optimizer: &dyn Optimizer) -> (u64, Vec<ArrayD<f32>>) {
    let values = optimizer
        .variables()
        .into_iter()
        .map(|v| match v.value {
            VariableValue::Int64(n) => ArrayD::from_elem(ndarray::IxDyn(&[]), n as f32),
            VariableValue::Float32(a) => a,
        })
        .collect();
    (optimizer.iterations(), values)
}

/// Keras's optimizer variables after epoch 1, in the same form; tf_keras's list lacks Keras
/// 3's `learning_rate`, so it is compared by the slots alone.
fn keras_state(f: &Value, keras: &str) -> Vec<ArrayD<f32>> {
    arrays(&f[keras]["epoch1_optimizer_variables"])
}

/// The compiled optimizer's variables after `keras`'s epoch 1 (checking its iteration count).
fn epoch1_state(model: &Sequential, f: &Value, keras: &str) -> Vec<ArrayD<f32>> {
    let optimizer = model.compiled().expect("compiled").optimizer();
    let (iterations, values) = state(optimizer);
    let expected = f[keras]["iterations_after_epoch1"].as_u64().unwrap();
    assert_eq!(iterations, expected, "{keras}'s iterations");
    values
}

#[test]
fn keras3_checkpoints_resume_in_seqnn() -> seqnn::Result<()> {
    for case in CASES {
        let f = fixture(case);
        let mut model = load_model(dir().join(format!("{case}.k3.epoch1.keras")))?;
        let values = epoch1_state(&model, &f, "keras3");
        // Keras 3's list, whole: iteration, learning_rate, the slots.
        assert_all_close(&values, &keras_state(&f, "keras3"), case);
        assert_all_close(
            &model.get_weights(),
            &arrays(&f["keras3"]["epoch1_weights"]),
            case,
        );
        one_epoch(&mut model, &f)?;
        assert_all_close(
            &model.get_weights(),
            &arrays(&f["keras3"]["resumed"]["keras"]["epoch2_weights"]),
            &format!("{case}: epoch 2 after Keras 3's checkpoint"),
        );
    }
    Ok(())
}

#[test]
fn tf_keras_checkpoints_resume_in_seqnn() -> seqnn::Result<()> {
    for case in CASES {
        let f = fixture(case);
        for ext in ["keras", "h5"] {
            let what = format!("{case}.tf.epoch1.{ext}");
            let mut model = load_model(dir().join(&what))?;
            let values = epoch1_state(&model, &f, "tf_keras");
            // tf_keras lists iteration and the slots; seqnn's list has Keras 3's
            // learning_rate second (and Nadam's u_product last, which tf_keras does not
            // save: seqnn takes it from the step count, as Keras 3 has it after the epoch).
            let keras = keras_state(&f, "tf_keras");
            assert_all_close(&values[2..1 + keras.len()], &keras[1..], &what);
            if *case == "lstm_nadam" {
                let keras3 = keras_state(&f, "keras3");
                assert_all_close(
                    &values[values.len() - 1..],
                    &keras3[keras3.len() - 1..],
                    &what,
                );
                // tf_keras's Nadam under fit (a tf.function) multiplies its u_product once per
                // variable in some steps (a Python counter read while tracing), so its fits
                // are not Keras 3's nor seqnn's, resumed or not: only the state is compared.
                continue;
            }
            one_epoch(&mut model, &f)?;
            assert_all_close(
                &model.get_weights(),
                &arrays(&f["tf_keras"]["resumed"][ext]["epoch2_weights"]),
                &format!("{what}: epoch 2"),
            );
        }
    }
    Ok(())
}

#[test]
fn seqnn_checkpoints_resume_in_keras() -> seqnn::Result<()> {
    let out = std::env::var_os("SEQNN_RESUME_SAVE_DIR").map(PathBuf::from);
    let tmp = std::env::temp_dir().join(format!("seqnn_resume_{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for case in CASES {
        let f = fixture(case);
        let mut model = load_model(dir().join(format!("{case}.k3.untrained.keras")))?;
        one_epoch(&mut model, &f)?;
        assert_all_close(
            &model.get_weights(),
            &arrays(&f["keras3"]["epoch1_weights"]),
            &format!("{case}: epoch 1"),
        );
        let values = epoch1_state(&model, &f, "keras3");
        assert_all_close(&values, &keras_state(&f, "keras3"), case);
        let path = out
            .as_ref()
            .unwrap_or(&tmp)
            .join(format!("{case}.seqnn.epoch1.keras"));
        model.save(&path)?;
        // (a) The file holds Keras 3's epoch-1 state: read back where Keras 3 reads it.
        let mut resumed = load_model(&path)?;
        let saved = epoch1_state(&resumed, &f, "keras3");
        assert_all_close(
            &saved,
            &keras_state(&f, "keras3"),
            &format!("{case}: saved"),
        );
        // (b) Its next epoch is Keras 3's next epoch from its own checkpoint.
        one_epoch(&mut resumed, &f)?;
        assert_all_close(
            &resumed.get_weights(),
            &arrays(&f["keras3"]["resumed"]["keras"]["epoch2_weights"]),
            &format!("{case}: epoch 2 after seqnn's checkpoint"),
        );
    }
    std::fs::remove_dir_all(&tmp).ok();
    Ok(())
}

#[test]
fn the_checkpoint_keras_3_trained_on_resumes_here_too() -> seqnn::Result<()> {
    // Written by seqnn after epoch 1 and checked by Keras 3 (README): it still loads and
    // resumes to Keras's epoch 2.
    let f = fixture("lstm_adam");
    let mut model = load_model(dir().join("lstm_adam.seqnn.epoch1.keras"))?;
    one_epoch(&mut model, &f)?;
    assert_all_close(
        &model.get_weights(),
        &arrays(&f["keras3"]["resumed"]["keras"]["epoch2_weights"]),
        "seqnn's checkpoint, epoch 2",
    );
    Ok(())
}

#[test]
fn a_compiled_model_saved_before_training_holds_a_fresh_optimizer() -> seqnn::Result<()> {
    // Keras 3 saves `iteration` = 0 and `learning_rate` alone then: no error, a fresh optimizer.
    let model = load_model(dir().join("lstm_adam.k3.untrained.keras"))?;
    let optimizer = model.compiled().unwrap().optimizer();
    assert!(!optimizer.is_built());
    assert_eq!(optimizer.iterations(), 0);
    // And seqnn writes it as Keras 3 does: it loads back the same.
    let path = std::env::temp_dir().join(format!("seqnn_fresh_{}.keras", std::process::id()));
    model.save(&path)?;
    let again = load_model(&path)?;
    std::fs::remove_file(&path).ok();
    assert!(!again.compiled().unwrap().optimizer().is_built());
    Ok(())
}

/// The message of loading a damaged file, which must be an `Error::File`.
fn refused(name: &str) -> String {
    match load_model(dir().join(name)) {
        Err(e @ Error::File { .. }) => e.to_string(),
        Err(other) => panic!("{name}: not a file error: {other:?}"),
        Ok(_) => panic!("{name} was loaded"),
    }
}

#[test]
fn optimizer_state_that_does_not_fit_is_refused_naming_the_variable() {
    let cases = [
        (
            "damaged.missing_variable.keras",
            "holds 11 optimizer variables, but the model's Adam over its 5 trainable weights has \
             12 (the first it lacks is variable 11",
        ),
        ("damaged.wrong_shape.keras", "variable 9 ("),
        ("damaged.float_iteration.keras", "is not an integer"),
        ("damaged.nan_slot.keras", "variable 3 ("),
        ("damaged.misnamed_dataset.keras", "\"twelve\""),
        (
            "damaged.swapped_names.h5",
            "optimizer variable 1 is Adam/v/lstm/lstm_cell/kernel:0",
        ),
    ];
    for (name, part) in cases {
        let message = refused(name);
        assert!(message.contains(part), "{name}: {message}");
        assert!(
            message.contains(name),
            "{name}: the path is named: {message}"
        );
    }
    let message = refused("damaged.wrong_shape.keras");
    assert!(
        message.contains("(1, 4)") && message.contains("(4, 1)"),
        "{message}"
    );
    assert!(refused("damaged.nan_slot.keras").contains("not finite"));
}

#[test]
fn truncated_or_corrupted_checkpoints_are_refused_without_panic() {
    for name in ["lstm_adam.k3.epoch1.keras", "lstm_adam.tf.epoch1.h5"] {
        let bytes = std::fs::read(dir().join(name)).unwrap();
        // Truncated anywhere: refused.
        for cut in (0..bytes.len()).step_by(bytes.len() / 97 + 1) {
            assert!(
                load_model_from_bytes(&bytes[..cut]).is_err(),
                "{name} cut at {cut} was loaded"
            );
        }
        // Flipped bytes: an error or a model, never a panic.
        for at in (0..bytes.len()).step_by(bytes.len() / 151 + 1) {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x5a;
            let _ = load_model_from_bytes(&damaged);
        }
    }
}

#[test]
fn a_functional_checkpoint_goes_on_as_the_run_it_was_cut_from() -> seqnn::Result<()> {
    // Keras 3's two-input model of the fit fixtures: one epoch, saved, loaded; the next epoch
    // of the loaded copy is the next epoch of the model that was never saved.
    let fits = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/fits");
    let f: Value = serde_json::from_str(
        &std::fs::read_to_string(fits.join("functional_two_inputs.json")).unwrap(),
    )
    .unwrap();
    let x = arrays(&f["x"]);
    let y = array(&f["y"]);
    let xs: Vec<_> = x.iter().map(|a| a.view()).collect();
    let options = FitOptions::new()
        .with_epochs(1)
        .with_batch_size(8)
        .with_shuffle(false)
        .with_verbose(0);
    let mut model = seqnn::Model::load(fits.join("functional_two_inputs.k3.keras"))?;
    model.fit(&xs, y.view(), &options)?;
    let kept = std::env::var_os("SEQNN_RESUME_SAVE_DIR").map(PathBuf::from);
    let path = kept.as_ref().map_or_else(
        || std::env::temp_dir().join(format!("seqnn_functional_{}.keras", std::process::id())),
        |d| d.join("functional_two_inputs.seqnn.epoch1.keras"),
    );
    model.save(&path)?;
    let mut resumed = seqnn::Model::load(&path)?;
    if kept.is_none() {
        std::fs::remove_file(&path).ok();
    }
    let before = model.compiled().unwrap().optimizer().variables();
    assert!(before.len() > 2, "the optimizer has its slots");
    assert_eq!(resumed.compiled().unwrap().optimizer().variables(), before);
    model.fit(&xs, y.view(), &options)?;
    resumed.fit(&xs, y.view(), &options)?;
    assert_eq!(resumed.get_weights(), model.get_weights());
    Ok(())
}

#[test]
fn load_weights_resumes_a_compiled_model_from_a_checkpoint() -> seqnn::Result<()> {
    for case in ["lstm_adam", "simple_rnn_sgd_momentum"] {
        let f = fixture(case);
        for file in [
            format!("{case}.k3.epoch1.keras"),
            format!("{case}.tf.epoch1.h5"),
        ] {
            // Compiled, never trained (Keras 3's file saved before the first step).
            let mut model = load_model(dir().join(format!("{case}.k3.untrained.keras")))?;
            model.load_weights(dir().join(&file))?;
            let keras = if file.contains(".tf.") {
                "tf_keras"
            } else {
                "keras3"
            };
            epoch1_state(&model, &f, keras);
            one_epoch(&mut model, &f)?;
            let ext = if file.ends_with(".h5") { "h5" } else { "keras" };
            assert_all_close(
                &model.get_weights(),
                &arrays(&f[keras]["resumed"][ext]["epoch2_weights"]),
                &format!("{file} through load_weights: epoch 2"),
            );
        }
    }
    Ok(())
}

#[test]
fn load_weights_of_state_that_does_not_fit_changes_nothing() -> seqnn::Result<()> {
    let f = fixture("lstm_adam");
    let mut model = load_model(dir().join("lstm_adam.k3.untrained.keras"))?;
    one_epoch(&mut model, &f)?;
    let weights = model.get_weights();
    let state = model.compiled().unwrap().optimizer().variables();
    for name in [
        "damaged.wrong_shape.keras",
        "damaged.missing_variable.keras",
        "damaged.nan_slot.keras",
        "damaged.swapped_names.h5",
    ] {
        let err = model.load_weights(dir().join(name)).unwrap_err();
        assert!(matches!(err, Error::File { .. }), "{name}: {err}");
        assert!(err.to_string().contains("optimizer"), "{name}: {err}");
        assert_eq!(model.get_weights(), weights, "{name}: the weights moved");
        assert_eq!(
            model.compiled().unwrap().optimizer().variables(),
            state,
            "{name}: the optimizer moved"
        );
    }
    // Another optimizer's state is skipped, as Keras skips it: the weights load, the
    // optimizer keeps its own state.
    let mut sgd = load_model(dir().join("simple_rnn_sgd_momentum.k3.untrained.keras"))?;
    one_epoch(&mut sgd, &fixture("simple_rnn_sgd_momentum"))?;
    let sgd_state = sgd.compiled().unwrap().optimizer().variables();
    let path = std::env::temp_dir().join(format!("seqnn_other_{}.keras", std::process::id()));
    // A SimpleRNN model trained with Adam: same weights' shapes as `sgd`, another optimizer.
    let mut other = load_model(dir().join("simple_rnn_sgd_momentum.k3.untrained.keras"))?;
    other.compile("adam", "mse")?;
    one_epoch(&mut other, &fixture("simple_rnn_sgd_momentum"))?;
    other.save(&path)?;
    sgd.load_weights(&path)?;
    std::fs::remove_file(&path).ok();
    assert_eq!(sgd.get_weights(), other.get_weights());
    assert_eq!(sgd.compiled().unwrap().optimizer().variables(), sgd_state);
    Ok(())
}
