//! seqnn's losses against tf_keras 2.21 and Keras 3.15 (`tools/keras_reference/
//! generate_train_losses.py`): the value `fit` minimizes and its gradient, at 1e-6 (absolute
//! below 1, relative above), through the compiled-loss path, with masks, sample weights,
//! logits, and real models.

mod common;

use common::train_fixture::{cases, close, loss, mask, optional, worst, LIBS};
use ndarray::{ArrayD, Axis};
use serde_json::Value;

use seqnn::{ActivationFn, Dialect, Loss, Weighting};

/// The cases where seqnn refuses what Keras computes, each for a reason its docs give.
fn seqnn_refuses(case: &str) -> bool {
    // Hinge targets mixing 0 with -1: Keras weighs the zeros as no label at all.
    case == "hinge_mixed" || case == "squared_hinge_mixed"
}

fn activation(case: &Value) -> Option<ActivationFn> {
    case.get("activation")
        .and_then(Value::as_str)
        .map(|a| a.parse().expect("an activation"))
}

/// seqnn's loss and gradient for a case in `dialect`.
fn compute(case: &Value, dialect: Dialect) -> seqnn::Result<(f32, ArrayD<f32>)> {
    let l = loss(&case["loss"], dialect);
    let y_true = common::array(&case["y_true"]);
    let m = mask(case, "mask");
    let sw = optional(case, "sample_weight");
    let mut w = Weighting::none();
    if let Some(m) = &m {
        w = w.with_mask(m);
    }
    if let Some(sw) = &sw {
        w = w.with_sample_weight(sw);
    }
    match activation(case) {
        Some(act) => {
            let logits = common::array(&case["logits"]);
            l.value_and_grad_from_logits(y_true.view(), logits.view(), act, &w, dialect)
        }
        None => {
            let y_pred = common::array(&case["y_pred"]);
            l.value_and_grad(y_true.view(), y_pred.view(), &w, dialect)
        }
    }
}

/// Every case of a loss file, both libraries; returns the failures.
fn check_file(file: &str) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases("losses", file) {
        let name = case["case"].as_str().unwrap();
        for (lib, dialect) in LIBS {
            let want = &case[lib];
            let got = compute(&case, dialect);
            let keras_fails =
                want.get("error").is_some() || want["value"].as_f64().is_none_or(f64::is_nan);
            match got {
                Err(e) if keras_fails || seqnn_refuses(name) => {
                    eprintln!("{name} [{lib}]: refused as Keras fails: {e}");
                }
                Err(e) => failures.push(format!("{name} [{lib}]: seqnn failed: {e}")),
                Ok((v, _)) if keras_fails || seqnn_refuses(name) => failures.push(format!(
                    "{name} [{lib}]: seqnn gave {v} where it should refuse ({})",
                    want.get("error")
                        .map_or("NaN".to_string(), |e| e.to_string())
                )),
                Ok((v, g)) => {
                    let value = want["value"].as_f64().unwrap();
                    if !close(v, value) {
                        failures.push(format!("{name} [{lib}]: value {v}, Keras {value}"));
                    }
                    let grad = common::array(&want["grad"]);
                    if let Some((i, g, k)) = worst(&g, &grad) {
                        failures.push(format!("{name} [{lib}]: grad[{i}] {g}, Keras {k}"));
                    }
                }
            }
        }
    }
    failures
}

macro_rules! loss_files {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                let failures = check_file($file);
                assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
            }
        )*
    };
}

loss_files! {
    mean_squared_error => "mse",
    mean_absolute_error => "mae",
    mean_absolute_percentage_error => "mape",
    mean_squared_logarithmic_error => "msle",
    log_cosh => "logcosh",
    huber => "huber",
    kl_divergence => "kld",
    poisson => "poisson",
    hinge => "hinge",
    squared_hinge => "squared_hinge",
    categorical_hinge => "categorical_hinge",
    cosine_similarity => "cosine_similarity",
    binary_crossentropy => "binary_crossentropy",
    categorical_crossentropy => "categorical_crossentropy",
    sparse_categorical_crossentropy => "sparse_categorical_crossentropy",
    fully_masked_batches => "masked_out",
}

/// Real models run as `train_step` runs them: the loss from the last Dense layer's logits (or,
/// where Keras uses them, its probabilities) and the gradient of its bias.
#[test]
fn fit_path_of_real_models() {
    let mut failures = Vec::new();
    for case in cases("losses", "fit") {
        let name = case["case"].as_str().unwrap();
        let act = activation(&case).unwrap();
        let y_true = common::array(&case["y_true"]);
        let sw = optional(&case, "sample_weight");
        let time_distributed = case["uses"] == "probabilities" && name.contains("time_distributed");
        for (lib, dialect) in LIBS {
            let out = &case[lib];
            let l = loss(&case["loss"], dialect);
            let m = mask(out, "mask");
            let mut w = Weighting::none();
            if let Some(m) = &m {
                w = w.with_mask(m);
            }
            if let Some(sw) = &sw {
                w = w.with_sample_weight(sw);
            }
            let logits = common::array(&out["logits"]);
            let y_pred = common::array(&out["y_pred"]);
            let want = out["value"].as_f64().unwrap();
            let (from_logits, grad) = l
                .value_and_grad_from_logits(y_true.view(), logits.view(), act, &w, dialect)
                .unwrap();
            let (from_output, _) = l
                .value_and_grad(y_true.view(), y_pred.view(), &w, dialect)
                .unwrap();
            if time_distributed {
                // TimeDistributed reshapes the softmax's output: the fit loop takes the loss of
                // the output, and the logits' formula would be wrong here.
                if !close(from_output, want) || close(from_logits, want) {
                    failures.push(format!(
                        "{name} [{lib}]: output {from_output}, logits {from_logits}, Keras {want}"
                    ));
                }
                continue;
            }
            if !close(from_logits, want) {
                failures.push(format!("{name} [{lib}]: {from_logits}, Keras {want}"));
            }
            // The bias's gradient is the logits' gradient summed over every row.
            let rows = grad.len() / grad.shape()[grad.ndim() - 1];
            let last = grad.shape()[grad.ndim() - 1];
            let bias = grad
                .into_shape_with_order((rows, last))
                .unwrap()
                .sum_axis(Axis(0));
            let keras_bias = common::array(&out["bias_grad"]);
            if let Some((i, g, k)) = worst(&bias.into_dyn(), &keras_bias) {
                failures.push(format!("{name} [{lib}]: bias grad[{i}] {g}, Keras {k}"));
            }
            // The formula Keras did not use gives another number (the case is saturated enough
            // to tell them apart), so that the test above tells which one ran.
            let keras_used_logits = l.uses_logits(act, y_true.shape(), logits.shape(), dialect);
            let other = if keras_used_logits {
                from_output
            } else {
                from_logits
            };
            if keras_used_logits && close(other, want) {
                failures.push(format!(
                    "{name} [{lib}]: the probabilities also give {other}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Which strings each Keras accepts as a loss, and what they resolve to.
#[test]
fn loss_names() {
    let doc = common::load_from("train/losses", "names").json;
    let mut failures = Vec::new();
    for (name, row) in doc["names"].as_object().unwrap() {
        for (lib, dialect) in LIBS {
            let want = row[lib].as_str();
            let got = Loss::resolve(name, dialect, &[2, 1], &[2, 1]).ok();
            if got.map(|l| l.keras_name()) != want {
                failures.push(format!("{name} [{lib}]: {got:?}, Keras {want:?}"));
            }
            if let Some(l) = got.filter(|_| {
                !name.eq_ignore_ascii_case("ce") && !name.eq_ignore_ascii_case("crossentropy")
            }) {
                assert_eq!(Loss::from_name(name).unwrap(), l, "{name}");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
