//! The core layers in Keras configs: Dense, Embedding, TimeDistributed, RepeatVector, Flatten,
//! Dropout, Activation and Masking.

use serde_json::{json, Value};

use super::{activation_name, layer_entry, layer_from, Dialect, Entry};
use crate::error::Result;
use crate::layer::Layer;
use crate::layers::{
    activation::Activation, dense::Dense, dropout::Dropout, embedding::Embedding, flatten::Flatten,
    masking::Masking, repeat_vector::RepeatVector, time_distributed::TimeDistributed,
};

/// A layer of this family from its entry.
pub(super) fn from_entry(e: &Entry<'_>, d: Dialect) -> Option<Result<Box<dyn Layer>>> {
    fn boxed<L: Layer>(l: Result<L>) -> Result<Box<dyn Layer>> {
        l.map(|l| Box::new(l) as Box<dyn Layer>)
    }
    Some(match e.class {
        "Dense" => boxed(dense_from(e, d)),
        "Embedding" => boxed(embedding_from(e)),
        "TimeDistributed" => (|| {
            let inner = Entry::new(&e.config["layer"])?;
            Ok(Box::new(TimeDistributed::from_boxed(layer_from(&inner, d)?)) as Box<dyn Layer>)
        })(),
        "RepeatVector" => boxed(e.usize("n").map(RepeatVector::new)),
        "Flatten" => boxed(
            e.require(
                "data_format",
                |v| v == "channels_last",
                "seqnn flattens channels-last",
            )
            .map(|()| Flatten::new()),
        ),
        "Dropout" => boxed(
            e.require("noise_shape", Value::is_null, "a noise shape")
                .and_then(|()| e.f32("rate", 0.0))
                .map(Dropout::new),
        ),
        "Activation" => boxed(e.activation("activation", d).map(Activation::new)),
        "Masking" => boxed(e.f32("mask_value", 0.0).map(Masking::new)),
        _ => return None,
    })
}

fn dense_from(e: &Entry<'_>, d: Dialect) -> Result<Dense> {
    e.require("lora_rank", Value::is_null, "LoRA")?;
    Ok(Dense::new(e.usize("units")?)
        .with_activation(e.activation("activation", d)?)
        .with_use_bias(e.bool("use_bias", true)?))
}

fn embedding_from(e: &Entry<'_>) -> Result<Embedding> {
    e.require("sparse", |v| v == &Value::Bool(false), "sparse gradients")?;
    e.require("lora_rank", Value::is_null, "LoRA")?;
    let mut emb = Embedding::new(e.usize("input_dim")?, e.usize("output_dim")?)
        .with_mask_zero(e.bool("mask_zero", false)?);
    if let Some(n) = e.config["input_length"].as_u64() {
        emb = emb.input_length(n as usize);
    }
    Ok(emb)
}

/// The options of a layer of this family, for Keras 3's config.
pub(super) fn to_config(layer: &dyn Layer) -> Option<Result<Value>> {
    let any: &dyn std::any::Any = layer;
    if let Some(l) = any.downcast_ref::<Dense>() {
        return Some(activation_name(layer, l.activation()).map(|a| {
            json!({
                "units": l.units(),
                "activation": a,
                "use_bias": l.use_bias(),
            })
        }));
    }
    if let Some(l) = any.downcast_ref::<Embedding>() {
        return Some(Ok(json!({
            "input_dim": l.input_dim(),
            "output_dim": l.output_dim(),
            "mask_zero": l.mask_zero(),
        })));
    }
    if let Some(l) = any.downcast_ref::<TimeDistributed>() {
        return Some(layer_entry(l.layer()).map(|inner| json!({ "layer": inner })));
    }
    if let Some(l) = any.downcast_ref::<RepeatVector>() {
        return Some(Ok(json!({ "n": l.n() })));
    }
    if any.downcast_ref::<Flatten>().is_some() {
        return Some(Ok(json!({ "data_format": "channels_last" })));
    }
    if let Some(l) = any.downcast_ref::<Dropout>() {
        return Some(Ok(json!({ "rate": super::number(l.rate()) })));
    }
    if let Some(l) = any.downcast_ref::<Activation>() {
        return Some(activation_name(layer, l.activation()).map(|a| json!({ "activation": a })));
    }
    any.downcast_ref::<Masking>()
        .map(|l| Ok(json!({ "mask_value": l.mask_value() })))
}
