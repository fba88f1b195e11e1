//! seqnn's metrics against tf_keras 2.21 and Keras 3.15 (`tools/keras_reference/
//! generate_train_losses.py`): three batches through the compiled-metrics path of each Keras,
//! the result after each at 1e-6 (absolute below 1, relative above), and the names Keras logs.

mod common;

use common::train_fixture::{cases, close, mask, optional, LIBS};
use serde_json::Value;

use seqnn::{AucCurve, AucSummation, Dialect, Metric, MetricKind, Weighting};

/// Where Keras fails and seqnn answers, each as its docs say: tf_keras refuses `(batch,)`
/// weights in AUC, Precision and Recall on a sequence output without a mask; seqnn spreads
/// them over the timesteps.
fn seqnn_answers(case: &str, lib: &str) -> bool {
    lib == "tf" && case.ends_with("_3d_weighted_per_sample")
}

/// The metric a fixture's spec names, in `dialect`.
fn metric(spec: &Value, dialect: Dialect) -> seqnn::Result<Metric> {
    if let Some(name) = spec.as_str() {
        return Metric::from_name(name, dialect);
    }
    let config = &spec["config"];
    let number = |k: &str, default: f64| config.get(k).and_then(Value::as_f64).unwrap_or(default);
    let kind = match spec["class_name"].as_str().unwrap() {
        "BinaryAccuracy" => MetricKind::BinaryAccuracy {
            threshold: number("threshold", 0.5) as f32,
        },
        "CategoricalAccuracy" => MetricKind::CategoricalAccuracy,
        "SparseCategoricalAccuracy" => MetricKind::SparseCategoricalAccuracy,
        "TopKCategoricalAccuracy" => MetricKind::TopKCategoricalAccuracy {
            k: number("k", 5.0) as usize,
        },
        "SparseTopKCategoricalAccuracy" => MetricKind::SparseTopKCategoricalAccuracy {
            k: number("k", 5.0) as usize,
        },
        "AUC" => MetricKind::Auc {
            num_thresholds: number("num_thresholds", 200.0) as usize,
            curve: match config.get("curve").and_then(Value::as_str) {
                Some("PR") => AucCurve::Pr,
                _ => AucCurve::Roc,
            },
            summation_method: match config.get("summation_method").and_then(Value::as_str) {
                Some("minoring") => AucSummation::Minoring,
                Some("majoring") => AucSummation::Majoring,
                _ => AucSummation::Interpolation,
            },
            from_logits: config
                .get("from_logits")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        "Precision" => MetricKind::Precision {
            threshold: number("thresholds", 0.5) as f32,
        },
        "Recall" => MetricKind::Recall {
            threshold: number("thresholds", 0.5) as f32,
        },
        other => panic!("no metric {other} in the fixtures' specs"),
    };
    Ok(Metric::new(kind, dialect))
}

/// seqnn's results after each batch of a case, or the first error.
fn run(case: &Value, dialect: Dialect) -> seqnn::Result<(String, Vec<f32>)> {
    let mut m = metric(&case["metric"], dialect)?;
    let weighted = case["weighted"].as_bool().unwrap();
    let mut results = Vec::new();
    for batch in case["batches"].as_array().unwrap() {
        let y_true = common::array(&batch["y_true"]);
        let y_pred = common::array(&batch["y_pred"]);
        let mk = mask(batch, "mask");
        let sw = optional(batch, "sample_weight").filter(|_| weighted);
        let mut w = Weighting::none();
        if let Some(mk) = &mk {
            w = w.with_mask(mk);
        }
        if let Some(sw) = &sw {
            w = w.with_sample_weight(sw);
        }
        m.update(y_true.view(), y_pred.view(), &w)?;
        results.push(m.result());
    }
    Ok((m.name().to_string(), results))
}

/// Every case of a metric file, both libraries; returns the failures.
fn check_file(file: &str) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases("metrics", file) {
        let name = case["case"].as_str().unwrap();
        for (lib, dialect) in LIBS {
            let want = &case[lib];
            match (run(&case, dialect), want.get("error")) {
                (Err(e), Some(_)) => eprintln!("{name} [{lib}]: refused as Keras fails: {e}"),
                (Ok(_), Some(_)) if seqnn_answers(name, lib) => {}
                (Ok((_, got)), Some(e)) => {
                    failures.push(format!("{name} [{lib}]: seqnn gave {got:?}, Keras {e}"))
                }
                (Err(e), None) => failures.push(format!("{name} [{lib}]: seqnn failed: {e}")),
                (Ok((log_name, got)), None) => {
                    if log_name != want["name"].as_str().unwrap() {
                        failures.push(format!(
                            "{name} [{lib}]: named {log_name}, Keras {}",
                            want["name"]
                        ));
                    }
                    let keras: Vec<f64> = want["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_f64().unwrap())
                        .collect();
                    let agree = got.len() == keras.len()
                        && got.iter().zip(&keras).all(|(&g, &k)| close(g, k));
                    if !agree {
                        failures.push(format!("{name} [{lib}]: {got:?}, Keras {keras:?}"));
                    }
                }
            }
        }
    }
    failures
}

macro_rules! metric_files {
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

metric_files! {
    accuracy_resolved_from_shapes => "accuracy",
    binary_accuracy => "binary_accuracy",
    categorical_accuracy => "categorical_accuracy",
    sparse_categorical_accuracy => "sparse_categorical_accuracy",
    top_k => "top_k",
    regression => "regression",
    auc => "auc",
    precision_recall => "precision_recall",
    loss_functions => "loss_functions",
}

/// The `loss` of the logs: the batches' losses weighted by their sizes.
#[test]
fn loss_tracker() {
    for case in cases("metrics", "mean") {
        let values = case["values"].as_array().unwrap();
        let sizes = case["batch_sizes"].as_array().unwrap();
        for (lib, _) in LIBS {
            let mut tracker = Metric::loss_tracker();
            assert_eq!(tracker.name(), case[lib]["name"].as_str().unwrap());
            for ((v, n), want) in values
                .iter()
                .zip(sizes)
                .zip(case[lib]["results"].as_array().unwrap())
            {
                tracker
                    .update_value(v.as_f64().unwrap() as f32, n.as_f64().unwrap() as f32)
                    .unwrap();
                assert!(close(tracker.result(), want.as_f64().unwrap()), "{lib}");
            }
        }
    }
}

/// Which strings each Keras accepts as a metric, and the names it logs them under.
#[test]
fn metric_names() {
    // Keras metrics seqnn does not have.
    let missing = ["cosine_similarity"];
    let doc = common::load_from("train/metrics", "names").json;
    let mut failures = Vec::new();
    for (name, row) in doc["names"].as_object().unwrap() {
        if missing.contains(&name.as_str()) {
            assert!(Metric::from_name(name, Dialect::TfKeras).is_err());
            continue;
        }
        for (lib, dialect) in LIBS {
            let want = row[lib].get("log_name").and_then(Value::as_str);
            let got = Metric::from_name(name, dialect).ok();
            if got.as_ref().map(Metric::name) != want {
                failures.push(format!(
                    "{name} [{lib}]: {:?}, Keras {want:?}",
                    got.map(|m| m.name().to_string())
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
