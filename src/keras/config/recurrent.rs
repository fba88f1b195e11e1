//! The recurrent family in Keras configs: SimpleRNN, LSTM, GRU and Bidirectional.

use serde_json::{json, Value};

use super::{activation_name, layer_entry, number, Dialect, Entry};
use crate::activation::ActivationFn;
use crate::error::Result;
use crate::keras::cudnn::StoredLayout;
use crate::layer::Layer;
use crate::layers::bidirectional::{Bidirectional, MergeMode};
use crate::layers::gru::GRU;
use crate::layers::lstm::LSTM;
use crate::layers::recurrent::{Cell, Recurrent, RecurrentLayer};
use crate::layers::simple_rnn::SimpleRNN;

/// A layer of this family from its entry.
pub(super) fn from_entry(e: &Entry<'_>, d: Dialect) -> Option<Result<Box<dyn Layer>>> {
    match e.class {
        "SimpleRNN" | "LSTM" | "GRU" | "CuDNNLSTM" | "CuDNNGRU" => {
            Some(recurrent_from(e, d).map(|l| l as Box<dyn Layer>))
        }
        "Bidirectional" => Some(bidirectional_from(e, d).map(|l| Box::new(l) as Box<dyn Layer>)),
        _ => None,
    }
}

/// The options every Keras recurrent layer has.
fn recurrent_common<C: Cell>(rnn: Recurrent<C>, e: &Entry<'_>) -> Result<Recurrent<C>> {
    e.require(
        "time_major",
        |v| v == &Value::Bool(false),
        "time-major inputs",
    )?;
    Ok(rnn
        .with_return_sequences(e.bool("return_sequences", false)?)
        .with_return_state(e.bool("return_state", false)?)
        .with_go_backwards(e.bool("go_backwards", false)?)
        .with_stateful(e.bool("stateful", false)?)
        .with_zero_output_for_mask(e.bool("zero_output_for_mask", false)?)
        .with_dropout(e.f32("dropout", 0.0)?)
        .with_recurrent_dropout(e.f32("recurrent_dropout", 0.0)?)
        .with_trainable(e.bool("trainable", true)?)
        .with_name(e.name.clone()))
}

/// A recurrent layer from its entry, as Bidirectional needs it.
fn recurrent_from(e: &Entry<'_>, d: Dialect) -> Result<Box<dyn RecurrentLayer>> {
    let mut layer = recurrent_options(e, d)?;
    // A Bidirectional's inner layers come here, not through layer_from.
    super::rules::read(e, layer.as_mut())?;
    Ok(layer)
}

/// [`recurrent_from`] before the regularizers and constraints.
fn recurrent_options(e: &Entry<'_>, d: Dialect) -> Result<Box<dyn RecurrentLayer>> {
    e.check_dtype()?;
    let units = e.usize("units")?;
    let use_bias = e.bool("use_bias", true)?;
    Ok(match e.class {
        "SimpleRNN" => Box::new(recurrent_common(
            SimpleRNN::new(units)
                .with_activation(e.activation("activation", d)?)
                .with_use_bias(use_bias),
            e,
        )?),
        "LSTM" => Box::new(recurrent_common(
            LSTM::new(units)
                .with_activation(e.activation("activation", d)?)
                .with_recurrent_activation(e.activation("recurrent_activation", d)?)
                .with_use_bias(use_bias)
                .with_unit_forget_bias(e.bool("unit_forget_bias", true)?),
            e,
        )?),
        // Every Keras since 2.1 writes reset_after; a GRU config without it is older, from
        // before reset_after existed, when the reset gate applied before the product.
        "GRU" => Box::new(recurrent_common(
            GRU::new(units)
                .with_activation(e.activation("activation", d)?)
                .with_recurrent_activation(e.activation("recurrent_activation", d)?)
                .with_use_bias(use_bias)
                .with_reset_after(e.bool("reset_after", false)?),
            e,
        )?),
        // Keras 2's cuDNN layers compute an LSTM and a GRU(reset_after=True) with the default
        // activations; their weights are converted on load (see keras::cudnn).
        "CuDNNLSTM" => Box::new(recurrent_common(
            LSTM::new(units).with_unit_forget_bias(e.bool("unit_forget_bias", true)?),
            e,
        )?),
        "CuDNNGRU" => Box::new(recurrent_common(
            GRU::new(units)
                .with_recurrent_activation(ActivationFn::Sigmoid)
                .with_reset_after(true),
            e,
        )?),
        other => {
            return Err(e.unsupported(format!(
                "Bidirectional can wrap SimpleRNN, LSTM or GRU, not {other}"
            )))
        }
    })
}

/// How the file stores the weights of the layer of `e`, when not as the layer holds them: the
/// cuDNN layers, also inside a Bidirectional.
pub(super) fn stored_layout(e: &Entry<'_>) -> Option<StoredLayout> {
    let of = |v: &Value| -> Option<Box<StoredLayout>> {
        Entry::new(v)
            .ok()
            .and_then(|inner| stored_layout(&inner))
            .map(Box::new)
    };
    match e.class {
        "CuDNNLSTM" => Some(StoredLayout::CuDnnLstm),
        "CuDNNGRU" => Some(StoredLayout::CuDnnGru),
        "Bidirectional" => {
            let forward = of(&e.config["layer"]);
            let backward = match e.config.get("backward_layer").filter(|b| !b.is_null()) {
                Some(b) => of(b),
                None => forward.clone(),
            };
            (forward.is_some() || backward.is_some())
                .then_some(StoredLayout::Pair(forward, backward))
        }
        _ => None,
    }
}

fn bidirectional_from(e: &Entry<'_>, d: Dialect) -> Result<Bidirectional> {
    // Keras 3 stores the copies already named forward_<name> and backward_<name>;
    // Bidirectional adds those prefixes itself.
    let unprefixed = |layer: &mut Box<dyn RecurrentLayer>, prefix: &str| {
        if let Some(rest) = layer.name().strip_prefix(prefix).map(str::to_string) {
            layer.set_name(rest);
        }
    };
    let inner = Entry::new(&e.config["layer"])?;
    let mut forward = recurrent_from(&inner, d)?;
    unprefixed(&mut forward, "forward_");
    let mut bi = Bidirectional::new_boxed(forward);
    if let Some(b) = e.config.get("backward_layer").filter(|b| !b.is_null()) {
        let mut backward = recurrent_from(&Entry::new(b)?, d)?;
        unprefixed(&mut backward, "backward_");
        bi = bi.with_backward_layer_boxed(backward);
    }
    let mode = match &e.config["merge_mode"] {
        Value::Null => MergeMode::None,
        Value::String(s) => s.parse().map_err(|_| {
            e.unsupported(format!(
                "option merge_mode=\"{s}\" is not a Keras merge mode"
            ))
        })?,
        other => return Err(e.unsupported(format!("option merge_mode={other} is not a string"))),
    };
    Ok(bi.with_merge_mode(mode))
}

/// The options of a layer of this family, for Keras 3's config.
pub(super) fn to_config(layer: &dyn Layer) -> Option<Result<Value>> {
    let any: &dyn std::any::Any = layer;
    if let Some(l) = any.downcast_ref::<SimpleRNN>() {
        return Some(simple_rnn_config(l));
    }
    if let Some(l) = any.downcast_ref::<LSTM>() {
        return Some(lstm_config(l));
    }
    if let Some(l) = any.downcast_ref::<GRU>() {
        return Some(gru_config(l));
    }
    any.downcast_ref::<Bidirectional>()
        .map(bidirectional_config)
}

fn simple_rnn_config(l: &SimpleRNN) -> Result<Value> {
    let mut v = common_config(l);
    v["activation"] = json!(activation_name(l, l.activation())?);
    v["use_bias"] = json!(l.use_bias());
    Ok(v)
}

fn lstm_config(l: &LSTM) -> Result<Value> {
    let mut v = common_config(l);
    v["activation"] = json!(activation_name(l, l.activation())?);
    v["recurrent_activation"] = json!(activation_name(l, l.recurrent_activation())?);
    v["use_bias"] = json!(l.use_bias());
    v["unit_forget_bias"] = json!(l.unit_forget_bias());
    Ok(v)
}

fn gru_config(l: &GRU) -> Result<Value> {
    let mut v = common_config(l);
    v["activation"] = json!(activation_name(l, l.activation())?);
    v["recurrent_activation"] = json!(activation_name(l, l.recurrent_activation())?);
    v["use_bias"] = json!(l.use_bias());
    v["reset_after"] = json!(l.reset_after());
    Ok(v)
}

fn bidirectional_config(l: &Bidirectional) -> Result<Value> {
    let forward: &dyn Layer = l.forward_layer();
    let backward: &dyn Layer = l.backward_layer();
    Ok(json!({
        "merge_mode": match l.merge_mode() {
            MergeMode::None => Value::Null,
            mode => json!(mode.name()),
        },
        "layer": layer_entry(forward)?,
        "backward_layer": layer_entry(backward)?,
    }))
}

/// The options every recurrent layer has, as Keras 3 writes them.
fn common_config<C: Cell>(l: &Recurrent<C>) -> Value {
    json!({
        "units": l.units(),
        "return_sequences": l.return_sequences(),
        "return_state": l.return_state(),
        "go_backwards": l.go_backwards(),
        "stateful": l.stateful(),
        "unroll": false,
        "zero_output_for_mask": l.zero_output_for_mask(),
        "dropout": number(l.dropout()),
        "recurrent_dropout": number(l.recurrent_dropout()),
    })
}
