//! The compile configuration a Keras file holds: `compile_config` in a `.keras` archive (Keras 3
//! and tf_keras), `training_config` in a legacy `.h5` file. `load_model` returns the model
//! compiled with it, as Keras's `load_model(compile=True)` does.
//!
//! Read: the optimizer (Keras's nine, with their options, `clipnorm`, `clipvalue`,
//! `global_clipnorm` and `weight_decay`; a constant learning rate or one of Keras's five
//! schedules), the loss (by name, or a
//! loss object with its options; for several outputs a list in output order or a dict by
//! output name), `loss_weights` (list or dict) and the `metrics` and `weighted_metrics`
//! (names or metric objects; a flat list for every output, tf_keras's `.h5` list per output,
//! or a dict by output name).
//! A configuration seqnn cannot express (a custom object, an unknown schedule) leaves the model
//! uncompiled: the model itself still loads.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::train::fit::Compiled;
use crate::train::loss::{Dialect, Loss};
use crate::train::metric::Metric;
use crate::train::optimizer::{
    Adadelta, Adagrad, Adam, AdamW, Adamax, Ftrl, Nadam, Optimizer, RMSprop, SGD,
};
use crate::train::schedule::{
    CosineDecay, ExponentialDecay, InverseTimeDecay, LearningRateSchedule, PiecewiseConstantDecay,
    PolynomialDecay,
};

/// The `compile_config` of a `.keras` archive's `config.json` text (`Null` without one),
/// read without parsing the rest of the config.
pub(crate) fn compile_config_of(config: &str) -> Value {
    let Ok(fields) = serde_json::from_str::<
        std::collections::HashMap<String, &serde_json::value::RawValue>,
    >(config) else {
        return Value::Null;
    };
    fields
        .get("compile_config")
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or(Value::Null)
}

/// The loss arithmetic of a file's Keras.
pub(crate) fn loss_dialect(dialect: crate::keras::config::Dialect) -> Dialect {
    match dialect {
        crate::keras::config::Dialect::Keras2 => Dialect::TfKeras,
        crate::keras::config::Dialect::Keras3 => Dialect::Keras3,
    }
}

/// Compiles `model` with the file's configuration, when seqnn can express it.
pub(crate) fn attach(model: &mut crate::keras::config::Loaded, config: &Value, dialect: Dialect) {
    let outputs = match model {
        crate::keras::config::Loaded::Sequential(_) => vec![String::new()],
        crate::keras::config::Loaded::Functional(m) => m.output_names(),
    };
    if let Ok(Some(compiled)) = compiled_from(config, dialect, &outputs) {
        match model {
            crate::keras::config::Loaded::Sequential(m) => m.compile_with(compiled),
            crate::keras::config::Loaded::Functional(m) => m.compile_with(compiled),
        }
    }
}

/// One loss entry: a name, or a loss object.
fn one_loss(v: &Value, dialect: Dialect) -> Result<Loss> {
    match v {
        Value::String(name) => Loss::from_name_in(name, dialect),
        Value::Object(_) if v.get("class_name").is_some() => loss_from(v),
        other => Err(unsupported(format!("the loss entry {other}"))),
    }
}

/// A list in output order, or a dict by output name, as one entry per output (an output the
/// dict leaves out gets `null`, which the metrics allow and the losses do not); `None` for a
/// single entry (neither list nor dict).
fn per_output<'v>(v: &'v Value, outputs: &[String], what: &str) -> Result<Option<Vec<&'v Value>>> {
    match v {
        Value::Array(items) if items.len() == outputs.len() => Ok(Some(items.iter().collect())),
        Value::Array(items) => Err(unsupported(format!(
            "{what} for {} outputs, where the model has {}",
            items.len(),
            outputs.len()
        ))),
        Value::Object(o) if o.get("class_name").is_none() => {
            if let Some(k) = o.keys().find(|k| !outputs.contains(k)) {
                return Err(unsupported(format!(
                    "{what} for the output {k:?}, which the model does not have"
                )));
            }
            Ok(Some(
                outputs
                    .iter()
                    .map(|name| o.get(name).unwrap_or(&Value::Null))
                    .collect(),
            ))
        }
        _ => Ok(None),
    }
}

/// Why a compile configuration was not used.
fn unsupported(message: impl Into<String>) -> Error {
    Error::Unsupported {
        layer: "compile_config".into(),
        class: "Compile".into(),
        message: message.into(),
    }
}

/// The compile configuration of a file, if it has one seqnn can express: `config` is a
/// `.keras` file's `compile_config` or a legacy `.h5` file's `training_config`.
///
/// # Errors
/// [`Error::Unsupported`] for what seqnn cannot express (the caller loads the model
/// uncompiled then).
pub(crate) fn compiled_from(
    config: &Value,
    dialect: Dialect,
    outputs: &[String],
) -> Result<Option<Compiled>> {
    if config.is_null() {
        return Ok(None);
    }
    let optimizer = match config
        .get("optimizer")
        .or_else(|| config.get("optimizer_config"))
    {
        Some(Value::String(name)) => crate::train::optimizer::optimizer_from_name(name)?,
        Some(v @ Value::Object(_)) => optimizer_from(v)?,
        _ => return Ok(None),
    };
    let losses = match config.get("loss") {
        Some(Value::Null) | None => return Ok(None),
        Some(v) => match per_output(v, outputs, "losses")? {
            Some(items) => items
                .into_iter()
                .map(|l| one_loss(l, dialect))
                .collect::<Result<Vec<_>>>()?,
            // (A dict that leaves an output out gives it `null`, refused by `one_loss`.)
            None => vec![one_loss(v, dialect)?],
        },
    };
    let loss_weights = match config.get("loss_weights") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.is_empty() => Vec::new(),
        Some(v) => match per_output(v, outputs, "loss_weights")? {
            // Keras weighs an output a dict leaves out by 1.
            Some(items) => items
                .into_iter()
                .map(|w| match w {
                    Value::Null => Ok(1.0),
                    w => w
                        .as_f64()
                        .map(|w| w as f32)
                        .ok_or_else(|| unsupported(format!("the loss weight {w}"))),
                })
                .collect::<Result<Vec<_>>>()?,
            None => return Err(unsupported(format!("loss_weights = {v}"))),
        },
    };
    let mut compiled = Compiled::new(optimizer, losses[0])
        .with_losses(losses)
        .with_loss_weights(loss_weights)
        .with_dialect(dialect);
    for (output, m) in metrics_of(config.get("metrics"), outputs, dialect)? {
        compiled = match output {
            Some(o) => compiled.with_output_metric(&o, m),
            None => compiled.with_metric(m),
        };
    }
    for (output, m) in metrics_of(config.get("weighted_metrics"), outputs, dialect)? {
        compiled = match output {
            Some(o) => compiled.with_output_weighted_metric(&o, m),
            None => compiled.with_weighted_metric(m),
        };
    }
    Ok(Some(compiled))
}

/// The metrics of a `metrics` or `weighted_metrics` entry, each with its output's name when
/// it is for one output only: a flat list for every output, tf_keras's `.h5` list per output,
/// or a dict by output name.
fn metrics_of(
    metrics: Option<&Value>,
    outputs: &[String],
    dialect: Dialect,
) -> Result<Vec<(Option<String>, Metric)>> {
    let metrics = metrics.unwrap_or(&Value::Null);
    // Per output: tf_keras's `.h5` nests a list per output, a dict names the outputs.
    let nested = matches!(metrics, Value::Array(items)
        if outputs.len() > 1 && items.len() == outputs.len() && items.iter().all(Value::is_array));
    let per = if nested || matches!(metrics, Value::Object(o) if o.get("class_name").is_none()) {
        per_output(metrics, outputs, "metrics")?
    } else {
        None
    };
    let mut out = Vec::new();
    match per {
        Some(items) if outputs.len() > 1 => {
            for (name, item) in outputs.iter().zip(items) {
                let mut list = Vec::new();
                collect_metrics(item, dialect, &mut list)?;
                for m in list {
                    // tf_keras's `.h5` names them `<output>_<metric>`; the log adds the prefix.
                    let short = m
                        .name()
                        .strip_prefix(&format!("{name}_"))
                        .map(str::to_string);
                    let m = match short {
                        Some(short) => m.with_name(short),
                        None => m,
                    };
                    out.push((Some(name.clone()), m));
                }
            }
        }
        Some(items) => {
            for item in items {
                let mut list = Vec::new();
                collect_metrics(item, dialect, &mut list)?;
                out.extend(list.into_iter().map(|m| (None, m)));
            }
        }
        None => {
            let mut list = Vec::new();
            collect_metrics(metrics, dialect, &mut list)?;
            out.extend(list.into_iter().map(|m| (None, m)));
        }
    }
    Ok(out)
}

/// The metrics of a `metrics` entry: names (tf_keras's `.h5` nests one list per output), or
/// metric objects: a `MeanMetricWrapper` of a function (`{"name": "accuracy", "fn":
/// "binary_accuracy"}`), or a metric class, logged under its config's name.
fn collect_metrics(v: &Value, dialect: Dialect, out: &mut Vec<Metric>) -> Result<()> {
    match v {
        Value::Null => Ok(()),
        Value::Object(o) if o.get("class_name").is_none() => {
            // A dict of one output's metrics (a single-output model's `{"dense": [...]}`).
            o.values()
                .try_for_each(|i| collect_metrics(i, dialect, out))
        }
        Value::String(s) => {
            out.push(Metric::from_name(s, dialect)?);
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .try_for_each(|i| collect_metrics(i, dialect, out)),
        Value::Object(o) => {
            let Some(class) = o.get("class_name").and_then(Value::as_str) else {
                return Err(unsupported(format!("the metric entry {v}")));
            };
            let config = o.get("config").unwrap_or(&Value::Null);
            let what = config
                .get("fn")
                .and_then(Value::as_str)
                .filter(|_| class == "MeanMetricWrapper")
                .unwrap_or(class);
            let mut metric = Metric::from_name(what, dialect)?;
            if let Some(name) = config.get("name").and_then(Value::as_str) {
                metric = metric.with_name(name);
            }
            out.push(metric);
            Ok(())
        }
        _ => Err(unsupported(format!("a metric entry {v}"))),
    }
}

/// Keras's learning-rate schedule from `{"class_name", "config"}` (the five of
/// `keras.optimizers.schedules`, with their options and name).
fn schedule_from(v: &Value) -> Result<Box<dyn LearningRateSchedule>> {
    let class = v
        .get("class_name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let c = v.get("config").unwrap_or(&Value::Null);
    let f = |key: &str| -> Result<f64> {
        number(c, key)?.ok_or_else(|| unsupported(format!("the schedule {class} without {key}")))
    };
    let steps = |key: &str| -> Result<u64> {
        let x = f(key)?;
        if x.fract() != 0.0 || !(0.0..=u64::MAX as f64).contains(&x) {
            return Err(unsupported(format!("the schedule {class}'s {key} = {x}")));
        }
        Ok(x as u64)
    };
    let opt = |key: &str, default: f64| -> Result<f64> { Ok(number(c, key)?.unwrap_or(default)) };
    let name = c.get("name").and_then(Value::as_str);
    macro_rules! named {
        ($s:expr) => {{
            let s = $s;
            Box::new(match name {
                Some(n) => s.with_name(n),
                None => s,
            }) as Box<dyn LearningRateSchedule>
        }};
    }
    Ok(match class {
        "ExponentialDecay" => named!(ExponentialDecay::new(
            f("initial_learning_rate")?,
            steps("decay_steps")?,
            f("decay_rate")?
        )
        .with_staircase(flag(c, "staircase"))),
        "InverseTimeDecay" => named!(InverseTimeDecay::new(
            f("initial_learning_rate")?,
            steps("decay_steps")?,
            f("decay_rate")?
        )
        .with_staircase(flag(c, "staircase"))),
        "PiecewiseConstantDecay" => {
            let list = |key: &str| -> Result<Vec<f64>> {
                c.get(key)
                    .and_then(Value::as_array)
                    .ok_or_else(|| unsupported(format!("the schedule {class} without {key}")))?
                    .iter()
                    .map(|x| {
                        x.as_f64()
                            .ok_or_else(|| unsupported(format!("{class}'s {key} entry {x}")))
                    })
                    .collect()
            };
            let boundaries = list("boundaries")?;
            if boundaries
                .iter()
                .any(|b| b.fract() != 0.0 || b.abs() > 9.0e15)
            {
                return Err(unsupported(format!(
                    "{class}'s boundaries {boundaries:?} (seqnn takes whole steps)"
                )));
            }
            named!(PiecewiseConstantDecay::new(
                boundaries.iter().map(|&b| b as i64).collect(),
                list("values")?
            ))
        }
        "CosineDecay" => {
            let mut s = CosineDecay::new(f("initial_learning_rate")?, steps("decay_steps")?)
                .with_alpha(opt("alpha", 0.0)?);
            if let Some(target) = number(c, "warmup_target")? {
                s = s.with_warmup(target, steps("warmup_steps")?);
            }
            named!(s)
        }
        "PolynomialDecay" => named!(PolynomialDecay::new(
            f("initial_learning_rate")?,
            steps("decay_steps")?
        )
        .with_end_learning_rate(opt("end_learning_rate", 0.0001)?)
        .with_power(opt("power", 1.0)?)
        .with_cycle(flag(c, "cycle"))),
        other => return Err(unsupported(format!("the learning-rate schedule {other}"))),
    })
}

/// A number of the optimizer's config, if present and not null.
fn number(config: &Value, key: &str) -> Result<Option<f64>> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::Bool(b)) => Ok(Some(f64::from(u8::from(*b)))),
        Some(other) => Err(unsupported(format!(
            "the optimizer option {key} = {other} (a learning-rate schedule or another object)"
        ))),
    }
}

fn flag(config: &Value, key: &str) -> bool {
    config.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Keras's optimizer from `{"class_name", "config"}` (tf_keras's `.h5` writes
/// `"Custom>Adam"`; Keras 2.x's legacy optimizers call the rate `lr`).
fn optimizer_from(v: &Value) -> Result<Box<dyn Optimizer>> {
    let class = v
        .get("class_name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let class = class.strip_prefix("Custom>").unwrap_or(class);
    let c = v.get("config").unwrap_or(&Value::Null);
    if number(c, "decay")?.is_some_and(|d| d != 0.0) {
        return Err(unsupported("the legacy optimizers' decay"));
    }
    let schedule = match c.get("learning_rate") {
        Some(v @ Value::Object(_)) => Some(schedule_from(v)?),
        _ => None,
    };
    let lr = match (&schedule, number(c, "learning_rate")) {
        (Some(_), _) => None,
        (None, Ok(Some(lr))) => Some(lr),
        (None, Ok(None)) => number(c, "lr")?,
        (None, Err(e)) => return Err(e),
    };
    macro_rules! common {
        ($o:expr) => {{
            let mut o = $o;
            if let Some(name) = c.get("name").and_then(Value::as_str) {
                o = o.with_name(name);
            }
            if let Some(lr) = lr {
                o = o.with_learning_rate(lr);
            }
            if let Some(s) = schedule.clone() {
                o = o.with_boxed_learning_rate_schedule(s);
            }
            if let Some(x) = number(c, "weight_decay")? {
                o = o.with_weight_decay(x);
            }
            if let Some(x) = number(c, "clipnorm")? {
                o = o.with_clipnorm(x);
            }
            if let Some(x) = number(c, "clipvalue")? {
                o = o.with_clipvalue(x);
            }
            if let Some(x) = number(c, "global_clipnorm")? {
                o = o.with_global_clipnorm(x);
            }
            Box::new(o) as Box<dyn Optimizer>
        }};
    }
    macro_rules! set {
        ($o:ident, $key:literal, $with:ident) => {
            if let Some(x) = number(c, $key)? {
                $o = $o.$with(x);
            }
        };
    }
    let optimizer = match class.to_lowercase().as_str() {
        "sgd" => {
            let mut o = SGD::new().with_nesterov(flag(c, "nesterov"));
            set!(o, "momentum", with_momentum);
            common!(o)
        }
        "adam" | "adamw" => {
            if class.eq_ignore_ascii_case("adamw") {
                let mut o = AdamW::new().with_amsgrad(flag(c, "amsgrad"));
                set!(o, "beta_1", with_beta_1);
                set!(o, "beta_2", with_beta_2);
                set!(o, "epsilon", with_epsilon);
                common!(o)
            } else {
                let mut o = Adam::new().with_amsgrad(flag(c, "amsgrad"));
                set!(o, "beta_1", with_beta_1);
                set!(o, "beta_2", with_beta_2);
                set!(o, "epsilon", with_epsilon);
                common!(o)
            }
        }
        "rmsprop" => {
            let mut o = RMSprop::new().with_centered(flag(c, "centered"));
            set!(o, "rho", with_rho);
            set!(o, "momentum", with_momentum);
            set!(o, "epsilon", with_epsilon);
            common!(o)
        }
        "adagrad" => {
            let mut o = Adagrad::new();
            set!(
                o,
                "initial_accumulator_value",
                with_initial_accumulator_value
            );
            set!(o, "epsilon", with_epsilon);
            common!(o)
        }
        "adadelta" => {
            let mut o = Adadelta::new();
            set!(o, "rho", with_rho);
            set!(o, "epsilon", with_epsilon);
            common!(o)
        }
        "adamax" => {
            let mut o = Adamax::new();
            set!(o, "beta_1", with_beta_1);
            set!(o, "beta_2", with_beta_2);
            set!(o, "epsilon", with_epsilon);
            common!(o)
        }
        "nadam" => {
            let mut o = Nadam::new();
            set!(o, "beta_1", with_beta_1);
            set!(o, "beta_2", with_beta_2);
            set!(o, "epsilon", with_epsilon);
            common!(o)
        }
        "ftrl" => {
            let mut o = Ftrl::new();
            set!(o, "learning_rate_power", with_learning_rate_power);
            set!(
                o,
                "initial_accumulator_value",
                with_initial_accumulator_value
            );
            set!(
                o,
                "l1_regularization_strength",
                with_l1_regularization_strength
            );
            set!(
                o,
                "l2_regularization_strength",
                with_l2_regularization_strength
            );
            set!(
                o,
                "l2_shrinkage_regularization_strength",
                with_l2_shrinkage_regularization_strength
            );
            set!(o, "beta", with_beta);
            common!(o)
        }
        _ => return Err(unsupported(format!("the optimizer class {class}"))),
    };
    Ok(optimizer)
}

/// Keras's loss from a loss object `{"class_name", "config"}`.
fn loss_from(v: &Value) -> Result<Loss> {
    let class = v
        .get("class_name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let c = v.get("config").unwrap_or(&Value::Null);
    if c.get("reduction")
        .and_then(Value::as_str)
        .is_some_and(|r| !matches!(r, "sum_over_batch_size" | "auto"))
    {
        return Err(unsupported(
            "a loss reduction other than sum_over_batch_size",
        ));
    }
    let f = |key: &str, default: f64| -> Result<f64> { Ok(number(c, key)?.unwrap_or(default)) };
    let logits = flag(c, "from_logits");
    Ok(match class {
        "BinaryCrossentropy" => Loss::BinaryCrossentropy {
            from_logits: logits,
            label_smoothing: f("label_smoothing", 0.0)? as f32,
        },
        "CategoricalCrossentropy" => Loss::CategoricalCrossentropy {
            from_logits: logits,
            label_smoothing: f("label_smoothing", 0.0)? as f32,
        },
        "SparseCategoricalCrossentropy" => Loss::SparseCategoricalCrossentropy {
            from_logits: logits,
            ignore_class: number(c, "ignore_class")?.map(|x| x as i64),
        },
        "Huber" => Loss::Huber {
            delta: f("delta", 1.0)? as f32,
        },
        "CosineSimilarity" => Loss::CosineSimilarity {
            axis: f("axis", -1.0)? as isize,
        },
        other => {
            Loss::from_name(other).map_err(|_| unsupported(format!("the loss class {other}")))?
        }
    })
}

/// Keras 3's `compile_config` for a model compiled with `compiled` (`null` for none), which
/// `keras.models.load_model` compiles the model with.
pub(crate) fn compile_config_json(compiled: Option<&Compiled>, outputs: &[String]) -> Value {
    let Some(c) = compiled else {
        return Value::Null;
    };
    let config = c.optimizer().config();
    let several = outputs.len() > 1;
    let loss_json = match c.losses() {
        [one] if !several => loss_json(*one),
        losses => Value::Array(if losses.len() == outputs.len() {
            losses.iter().map(|l| loss_json(*l)).collect()
        } else {
            outputs.iter().map(|_| loss_json(losses[0])).collect()
        }),
    };
    let metrics = metrics_json(c.metrics(), c.output_metrics(), outputs);
    let weighted_metrics = metrics_json(c.weighted_metrics(), c.output_weighted_metrics(), outputs);
    let loss_weights = if c.loss_weights().is_empty() {
        Value::Null
    } else {
        Value::Array(
            c.loss_weights()
                .iter()
                .map(|&w| Value::from(f64::from(w)))
                .collect(),
        )
    };
    serde_json::json!({
        "optimizer": {
            "module": "keras.optimizers",
            "class_name": config.class_name,
            "config": options_json(&config),
            "registered_name": null,
        },
        "loss": loss_json,
        "loss_weights": loss_weights,
        "metrics": metrics,
        "weighted_metrics": weighted_metrics,
        "run_eagerly": false,
        "steps_per_execution": 1,
        "jit_compile": false,
    })
}

/// Keras 3's `metrics` (or `weighted_metrics`) entry: a list of names for one output, a dict
/// by output name for several (Keras 3 refuses a flat list there); `null` for none.
fn metrics_json(all: &[Metric], by_output: &[(String, Vec<Metric>)], outputs: &[String]) -> Value {
    let names = |ms: &[Metric]| -> Vec<Value> {
        ms.iter()
            .map(|m| Value::String(m.name().to_string()))
            .collect()
    };
    if outputs.len() > 1 {
        let mut dict = serde_json::Map::new();
        for name in outputs {
            let mut list = names(all);
            for (o, ms) in by_output {
                if o == name {
                    list.extend(names(ms));
                }
            }
            if !list.is_empty() {
                dict.insert(name.clone(), Value::Array(list));
            }
        }
        return if dict.is_empty() {
            Value::Null
        } else {
            Value::Object(dict)
        };
    }
    let mut list = names(all);
    for (_, ms) in by_output {
        list.extend(names(ms));
    }
    if list.is_empty() {
        Value::Null
    } else {
        Value::Array(list)
    }
}

/// One loss as Keras 3 serializes it: a name, or an object with its options.
fn loss_json(loss: Loss) -> Value {
    match loss {
        Loss::BinaryCrossentropy {
            from_logits,
            label_smoothing,
        }
        | Loss::CategoricalCrossentropy {
            from_logits,
            label_smoothing,
        } => loss_object(
            &loss,
            serde_json::json!({
                "from_logits": from_logits,
                "label_smoothing": label_smoothing,
                "axis": -1,
            }),
        ),
        Loss::SparseCategoricalCrossentropy {
            from_logits,
            ignore_class,
        } => loss_object(
            &loss,
            serde_json::json!({ "from_logits": from_logits, "ignore_class": ignore_class }),
        ),
        Loss::Huber { delta } => loss_object(&loss, serde_json::json!({ "delta": delta })),
        Loss::CosineSimilarity { axis } => loss_object(&loss, serde_json::json!({ "axis": axis })),
        other => Value::String(other.keras_name().to_string()),
    }
}

/// A loss object as Keras 3 serializes it, with `options` beside its name and reduction.
fn loss_object(loss: &Loss, options: Value) -> Value {
    let mut config = serde_json::json!({
        "name": loss.keras_name(),
        "reduction": "sum_over_batch_size",
    });
    if let (Some(c), Value::Object(o)) = (config.as_object_mut(), options) {
        c.extend(o);
    }
    serde_json::json!({
        "module": "keras.losses",
        "class_name": loss.class_name(),
        "config": config,
        "registered_name": null,
    })
}

/// An optimizer's or schedule's options as JSON, in Keras's order.
fn options_json(config: &crate::train::config::Config) -> Value {
    use crate::train::config::ConfigValue as V;
    fn value(v: &V) -> Value {
        match v {
            V::Null => Value::Null,
            V::Bool(b) => Value::Bool(*b),
            V::Int(i) => Value::from(*i),
            V::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            V::Str(s) => Value::String(s.clone()),
            V::List(items) => Value::Array(items.iter().map(value).collect()),
            V::Object(c) => serde_json::json!({
                "module": "keras.optimizers.schedules",
                "class_name": c.class_name,
                "config": options_json(c),
                "registered_name": null,
            }),
        }
    }
    Value::Object(
        config
            .options
            .iter()
            .map(|(k, v)| ((*k).to_string(), value(v)))
            .collect(),
    )
}
