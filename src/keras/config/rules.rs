//! A layer's `<weight>_regularizer`, `<weight>_constraint` and `activity_regularizer` options,
//! for every layer that has them: read from both dialects' configs, written in Keras 3's.
//!
//! tf_keras writes `{"class_name": "L2", "config": {"l2": 0.01}}`, Keras 3 the same with
//! `"module": "keras.regularizers"` and `"registered_name"`; older Keras wrote `L1L2` for
//! `l2(0.01)`, and a hand-written config may hold a string (`"l2"`). A custom (registered)
//! regularizer or constraint is refused, as Keras refuses it without its code.

use serde_json::{json, Map, Value};

use super::Entry;
use crate::error::Result;
use crate::layer::Layer;
use crate::train::{Constraint, Regularizer};

const REGULARIZER: &str = "_regularizer";
const CONSTRAINT: &str = "_constraint";

/// Reads the entry's regularizers and constraints into `layer`.
///
/// # Errors
/// [`Error::Unsupported`](crate::Error::Unsupported) for a regularizer or constraint seqnn
/// lacks, or one set on a layer that cannot hold it.
pub(super) fn read(e: &Entry<'_>, layer: &mut dyn Layer) -> Result<()> {
    let Some(config) = e.config.as_object() else {
        return Ok(());
    };
    for (key, value) in config {
        if value.is_null() {
            continue;
        }
        let (prefix, is_regularizer) = if let Some(p) = key.strip_suffix(REGULARIZER) {
            (p, true)
        } else if let Some(p) = key.strip_suffix(CONSTRAINT) {
            (p, false)
        } else {
            continue;
        };
        let Some(rules) = layer.weight_rule_options_mut() else {
            return Err(e.unsupported(format!(
                "option {key} on a {}: seqnn keeps regularizers and constraints only on layers \
                 with weights of their own",
                e.class
            )));
        };
        if is_regularizer {
            let r = regularizer(e, key, value)?;
            if prefix == "activity" {
                rules.set_activity(Some(r));
            } else {
                rules.set_regularizer(prefix, Some(r));
            }
        } else {
            rules.set_constraint(prefix, Some(constraint(e, key, value)?));
        }
    }
    Ok(())
}

/// The class name and config of a serialized object, or its string.
fn class_and_config<'v>(
    e: &Entry<'_>,
    key: &str,
    value: &'v Value,
) -> Result<(String, Option<&'v Map<String, Value>>)> {
    match value {
        Value::String(s) => Ok((s.clone(), None)),
        Value::Object(o) => {
            if let Some(r) = o.get("registered_name").and_then(Value::as_str) {
                let class = o.get("class_name").and_then(Value::as_str).unwrap_or("");
                if r != class && r.contains('>') {
                    return Err(e.unsupported(format!(
                        "option {key} is the custom object \"{r}\", which seqnn lacks"
                    )));
                }
            }
            let class = o
                .get("class_name")
                .and_then(Value::as_str)
                .ok_or_else(|| e.unsupported(format!("option {key} has no class_name: {value}")))?;
            Ok((
                class.to_string(),
                o.get("config").and_then(Value::as_object),
            ))
        }
        other => Err(e.unsupported(format!("option {key} must be an object, got {other}"))),
    }
}

/// A number of an object's config, or `default`.
fn number(
    e: &Entry<'_>,
    key: &str,
    config: Option<&Map<String, Value>>,
    name: &str,
    default: f32,
) -> Result<f32> {
    match config.and_then(|c| c.get(name)) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => Ok(n.as_f64().unwrap_or(f64::NAN) as f32),
        Some(other) => Err(e.unsupported(format!(
            "option {key}'s {name} must be a number, got {other}"
        ))),
    }
}

fn regularizer(e: &Entry<'_>, key: &str, value: &Value) -> Result<Regularizer> {
    let (class, config) = class_and_config(e, key, value)?;
    let num = |name: &str, default: f32| number(e, key, config, name, default);
    Ok(match class.as_str() {
        "L1" | "l1" => Regularizer::L1(num("l1", 0.01)?),
        "L2" | "l2" => Regularizer::L2(num("l2", 0.01)?),
        "L1L2" | "l1_l2" => {
            // The class defaults to zeros, the string to 0.01 each (Keras's `l1_l2()`).
            let d = if config.is_some() { 0.0 } else { 0.01 };
            Regularizer::L1L2 {
                l1: num("l1", d)?,
                l2: num("l2", d)?,
            }
        }
        "OrthogonalRegularizer" | "orthogonal_regularizer" => Regularizer::Orthogonal {
            factor: num("factor", 0.01)?,
            rows: match config.and_then(|c| c.get("mode")).and_then(Value::as_str) {
                None | Some("rows") => true,
                Some("columns") => false,
                Some(other) => {
                    return Err(e.unsupported(format!(
                        "option {key}: OrthogonalRegularizer mode {other:?} is not rows or columns"
                    )))
                }
            },
        },
        other => {
            return Err(e.unsupported(format!(
                "option {key}: the regularizer {other} is not one seqnn has (L1, L2, L1L2, \
                 OrthogonalRegularizer)"
            )))
        }
    })
}

fn constraint(e: &Entry<'_>, key: &str, value: &Value) -> Result<Constraint> {
    let (class, config) = class_and_config(e, key, value)?;
    let num = |name: &str, default: f32| number(e, key, config, name, default);
    let axes = || -> Result<Vec<isize>> {
        match config.and_then(|c| c.get("axis")) {
            None | Some(Value::Null) => Ok(vec![0]),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(|a| vec![a as isize])
                .ok_or_else(|| e.unsupported(format!("option {key}'s axis {n} is not an integer"))),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_i64().map(|a| a as isize).ok_or_else(|| {
                        e.unsupported(format!("option {key}'s axis {v} is not an integer"))
                    })
                })
                .collect(),
            Some(other) => Err(e.unsupported(format!(
                "option {key}'s axis must be an integer, got {other}"
            ))),
        }
    };
    Ok(match class.as_str() {
        "MaxNorm" | "max_norm" | "maxnorm" => Constraint::MaxNorm {
            max_value: num("max_value", 2.0)?,
            axes: axes()?,
        },
        "NonNeg" | "non_neg" | "nonneg" => Constraint::NonNeg,
        "UnitNorm" | "unit_norm" | "unitnorm" => Constraint::UnitNorm { axes: axes()? },
        "MinMaxNorm" | "min_max_norm" => Constraint::MinMaxNorm {
            min_value: num("min_value", 0.0)?,
            max_value: num("max_value", 1.0)?,
            rate: num("rate", 1.0)?,
            axes: axes()?,
        },
        other => {
            return Err(e.unsupported(format!(
                "option {key}: the constraint {other} is not one seqnn has (MaxNorm, NonNeg, \
                 UnitNorm, MinMaxNorm)"
            )))
        }
    })
}

/// Keras 3's serialized object.
fn object(module: &str, class: &str, config: Value) -> Value {
    json!({
        "module": module,
        "class_name": class,
        "config": config,
        "registered_name": null,
    })
}

fn regularizer_value(r: &Regularizer) -> Value {
    let n = |v: f32| super::number(v);
    let config = match *r {
        Regularizer::L1(l1) => json!({ "l1": n(l1) }),
        Regularizer::L2(l2) => json!({ "l2": n(l2) }),
        Regularizer::L1L2 { l1, l2 } => json!({ "l1": n(l1), "l2": n(l2) }),
        Regularizer::Orthogonal { factor, rows } => {
            json!({ "factor": n(factor), "mode": if rows { "rows" } else { "columns" } })
        }
    };
    object("keras.regularizers", r.class_name(), config)
}

fn constraint_value(c: &Constraint) -> Value {
    let n = |v: f32| super::number(v);
    let axis = match c.axes() {
        [a] => json!(a),
        axes => json!(axes),
    };
    let config = match c {
        Constraint::MaxNorm { max_value, .. } => {
            json!({ "max_value": n(*max_value), "axis": axis })
        }
        Constraint::NonNeg => json!({}),
        Constraint::UnitNorm { .. } => json!({ "axis": axis }),
        Constraint::MinMaxNorm {
            min_value,
            max_value,
            rate,
            ..
        } => json!({
            "min_value": n(*min_value),
            "max_value": n(*max_value),
            "rate": n(*rate),
            "axis": axis,
        }),
    };
    object("keras.constraints", c.class_name(), config)
}

/// Writes `layer`'s regularizers and constraints into its Keras 3 `config`.
pub(super) fn write(layer: &dyn Layer, config: &mut Map<String, Value>) {
    let Some(rules) = layer.weight_rule_options() else {
        return;
    };
    for (prefix, rule) in rules.iter() {
        if let Some(r) = &rule.regularizer {
            config.insert(format!("{prefix}{REGULARIZER}"), regularizer_value(r));
        }
        if let Some(c) = &rule.constraint {
            config.insert(format!("{prefix}{CONSTRAINT}"), constraint_value(c));
        }
    }
    if let Some(r) = rules.activity() {
        config.insert(format!("activity{REGULARIZER}"), regularizer_value(&r));
    }
}
