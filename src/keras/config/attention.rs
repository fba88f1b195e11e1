//! The attention family in Keras configs: Attention, AdditiveAttention and MultiHeadAttention.
//!
//! The dialects differ here in more than names, so each layer's dialect is told by the keys
//! only one Keras writes before falling back on the file's: Keras 3.15 writes `seed` for every
//! attention layer and `use_gate` and `sliding_window` for MultiHeadAttention, tf_keras 2.21
//! writes `softmax_robust_masking` and `query_shape` for MultiHeadAttention. (seqnn's own
//! configs, which Keras 3 reads, carry Keras 3's keys, so they read back as Keras 3.)
//!
//! Keras's call arguments (`use_causal_mask`, `return_attention_scores`, `attention_mask`) are
//! not in a layer's config: a Functional model keeps them with the call. tf_keras's deprecated
//! `causal` constructor argument is read; Keras 3 has no such option, so a layer with it is
//! refused by `to_config`.

use serde_json::{json, Value};

use super::{unsupported, Dialect, Entry};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::layers::additive_attention::AdditiveAttention;
use crate::layers::attention::{Attention, ScoreMode};
use crate::layers::multi_head_attention::{MultiHeadAttention, SoftmaxMasking};

/// A layer of this family from its entry.
pub(super) fn from_entry(e: &Entry<'_>, d: Dialect) -> Option<Result<Box<dyn Layer>>> {
    fn boxed<L: Layer>(l: Result<L>) -> Result<Box<dyn Layer>> {
        l.map(|l| Box::new(l) as Box<dyn Layer>)
    }
    Some(match e.class {
        "Attention" => boxed(attention_from(e)),
        "AdditiveAttention" => boxed(additive_from(e, d)),
        "MultiHeadAttention" => boxed(multi_head_from(e, d)),
        _ => return None,
    })
}

/// Whether the entry is Keras 3's: by the keys only one dialect writes, else by the file's.
fn is_keras3(e: &Entry<'_>, d: Dialect, keras3_keys: &[&str], keras2_keys: &[&str]) -> bool {
    let has = |keys: &[&str]| keys.iter().any(|k| e.config.get(*k).is_some());
    if has(keras2_keys) {
        false
    } else if has(keras3_keys) {
        true
    } else {
        d == Dialect::Keras3
    }
}

/// `dropout` on the attention weights, which only training applies.
fn dropout(e: &Entry<'_>) -> Result<f32> {
    e.f32("dropout", 0.0)
}

fn attention_from(e: &Entry<'_>) -> Result<Attention> {
    let mode = match &e.config["score_mode"] {
        Value::Null => ScoreMode::Dot,
        Value::String(s) => s
            .parse()
            .map_err(|err: Error| e.unsupported(err.to_string()))?,
        other => return Err(e.unsupported(format!("option score_mode={other} is not a string"))),
    };
    Ok(Attention::new()
        .with_use_scale(e.bool("use_scale", false)?)
        .with_score_mode(mode)
        .with_dropout(dropout(e)?)
        .with_causal(e.bool("causal", false)?))
}

fn additive_from(e: &Entry<'_>, d: Dialect) -> Result<AdditiveAttention> {
    // tf_keras's AdditiveAttention.build sizes `scale` by input_shape[1] (the value), Keras 3's
    // by input_shape[0] (the query).
    let tf_keras = !is_keras3(e, d, &["seed"], &[]);
    Ok(AdditiveAttention::new()
        .with_use_scale(e.bool("use_scale", true)?)
        .with_dropout(dropout(e)?)
        .with_causal(e.bool("causal", false)?)
        .with_scale_from_value(tf_keras))
}

/// An optional positive integer option (`value_dim`, `sliding_window`).
fn optional_usize(e: &Entry<'_>, key: &str) -> Result<Option<usize>> {
    match &e.config[key] {
        Value::Null => Ok(None),
        _ => e.usize(key).map(Some),
    }
}

fn multi_head_from(e: &Entry<'_>, d: Dialect) -> Result<MultiHeadAttention> {
    let keras3 = is_keras3(
        e,
        d,
        &["use_gate", "sliding_window", "seed"],
        &["softmax_robust_masking", "query_shape"],
    );
    // Only the default: attention over the timesteps of rank-3 inputs, which Keras writes as
    // [1] once the layer is built.
    e.require(
        "attention_axes",
        |v| v == &json!(1) || v == &json!([1]),
        "seqnn attends over the timesteps only, attention_axes=None",
    )?;
    let output_shape = match &e.config["output_shape"] {
        Value::Null => Vec::new(),
        Value::Number(_) => vec![e.usize("output_shape")?],
        Value::Array(dims) => dims
            .iter()
            .map(|d| {
                d.as_u64().map(|d| d as usize).ok_or_else(|| {
                    e.unsupported(format!(
                        "option output_shape={} must list non-negative integers",
                        e.config["output_shape"]
                    ))
                })
            })
            .collect::<Result<_>>()?,
        other => {
            return Err(e.unsupported(format!(
                "option output_shape={other} must be an integer or a list of them"
            )))
        }
    };
    let masking = if keras3 {
        SoftmaxMasking::Keras3
    } else if e.bool("softmax_robust_masking", false)? {
        SoftmaxMasking::TfKerasRobust
    } else {
        SoftmaxMasking::TfKeras
    };
    let mut layer = MultiHeadAttention::new(e.usize("num_heads")?, e.usize("key_dim")?)
        .with_dropout(dropout(e)?)
        .with_use_bias(e.bool("use_bias", true)?)
        .with_output_shape(output_shape)
        .with_use_gate(e.bool("use_gate", false)?)
        .with_sliding_window(optional_usize(e, "sliding_window")?)
        .with_softmax_masking(masking)
        .with_name(e.name.clone());
    if let Some(v) = optional_usize(e, "value_dim")? {
        layer = layer.with_value_dim(v);
    }
    layer.validate()?;
    Ok(layer)
}

/// The refusal of tf_keras's `causal`, which no Keras 3 config can hold.
fn no_causal(layer: &dyn Layer, causal: bool) -> Result<()> {
    if causal {
        return Err(unsupported(
            layer,
            "tf_keras's causal=True has no Keras 3 config: Keras 3 takes use_causal_mask=True \
             when the layer is called",
        ));
    }
    Ok(())
}

/// The options of a layer of this family, for Keras 3's config. The call arguments are left
/// to the model that calls the layer.
pub(super) fn to_config(layer: &dyn Layer) -> Option<Result<Value>> {
    let any: &dyn std::any::Any = layer;
    if let Some(l) = any.downcast_ref::<Attention>() {
        return Some(no_causal(layer, l.causal()).map(|()| {
            json!({
                "use_scale": l.use_scale(),
                "score_mode": l.score_mode().name(),
                "dropout": l.dropout(),
                "seed": null,
            })
        }));
    }
    if let Some(l) = any.downcast_ref::<AdditiveAttention>() {
        return Some(no_causal(layer, l.causal()).map(|()| {
            json!({
                "use_scale": l.use_scale(),
                "dropout": l.dropout(),
                "seed": null,
            })
        }));
    }
    // Keras 3 has no softmax_robust_masking: a layer read from tf_keras is written with Keras
    // 3's masking, which differs only at fully masked query positions (see SoftmaxMasking).
    any.downcast_ref::<MultiHeadAttention>().map(|l| {
        Ok(json!({
            "num_heads": l.num_heads(),
            "key_dim": l.key_dim(),
            "value_dim": l.value_dim(),
            "dropout": l.dropout(),
            "use_bias": l.use_bias(),
            "use_gate": l.use_gate(),
            "output_shape": l.output_shape(),
            "attention_axes": null,
            "sliding_window": l.sliding_window(),
            "kernel_initializer": l.kernel_initializer().name(),
            "bias_initializer": l.bias_initializer().name(),
            "kernel_regularizer": null,
            "bias_regularizer": null,
            "activity_regularizer": null,
            "kernel_constraint": null,
            "bias_constraint": null,
            "seed": null,
        }))
    })
}

/// The call arguments of the attention layers that are options of seqnn's layers, when true.
pub(super) const CALL_OPTIONS: &[&str] = &["use_causal_mask", "return_attention_scores"];

/// The layer with a call argument set as its option (`use_causal_mask`,
/// `return_attention_scores`, or `attention_mask` for an attention-mask input), or `None` for a
/// layer that takes no such argument.
pub(super) fn call_option(
    mut layer: Box<dyn Layer>,
    option: &str,
) -> Option<Result<Box<dyn Layer>>> {
    let any: &mut dyn std::any::Any = layer.as_mut();
    macro_rules! set {
        ($l:expr) => {{
            let l = $l;
            *l = match option {
                "use_causal_mask" => l.clone().with_use_causal_mask(true),
                "return_attention_scores" => l.clone().with_return_attention_scores(true),
                _ => return None,
            };
        }};
    }
    if let Some(l) = any.downcast_mut::<MultiHeadAttention>() {
        if option == "attention_mask" {
            *l = l.clone().with_attention_mask_input(true);
        } else {
            set!(l);
        }
    } else if let Some(l) = any.downcast_mut::<Attention>() {
        set!(l);
    } else if let Some(l) = any.downcast_mut::<AdditiveAttention>() {
        set!(l);
    } else {
        return None;
    }
    Some(Ok(layer))
}
