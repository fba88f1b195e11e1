//! The convolutional family in Keras configs: Conv1D and Conv2D, ConvLSTM1D and ConvLSTM2D,
//! the poolings, the global
//! poolings, ZeroPadding1D, Cropping1D and UpSampling1D (and the aliases Keras registers for
//! them: `Convolution1D`, `MaxPool1D`, `GlobalAvgPool1D`, ...).
//!
//! Only channels-last layers are read: `data_format="channels_first"` is refused.

use std::any::Any;

use serde_json::{json, Value};

use super::{activation_name, Dialect, Entry};
use crate::activation::ActivationFn;
use crate::error::Result;
use crate::layer::Layer;
use crate::layers::conv::{Conv, Conv1D, Conv2D, Padding};
use crate::layers::conv_lstm::{ConvLSTM, ConvLSTM1D, ConvLSTM2D};
use crate::layers::cropping1d::Cropping1D;
use crate::layers::global_pooling::GlobalPooling;
use crate::layers::pooling::{AveragePool, MaxPool, PoolKind, Pooling};
use crate::layers::up_sampling1d::UpSampling1D;
use crate::layers::zero_padding1d::ZeroPadding1D;

/// A layer of this family from its entry.
pub(super) fn from_entry(e: &Entry<'_>, d: Dialect) -> Option<Result<Box<dyn Layer>>> {
    fn boxed<L: Layer>(l: Result<L>) -> Result<Box<dyn Layer>> {
        l.map(|l| Box::new(l) as Box<dyn Layer>)
    }
    Some(match e.class {
        "Conv1D" | "Convolution1D" => boxed(
            sizes::<1>(e, "kernel_size", None)
                .and_then(|[k]| conv_from(e, d, Conv1D::new(e.usize("filters")?, k))),
        ),
        "Conv2D" | "Convolution2D" => boxed(
            sizes::<2>(e, "kernel_size", None)
                .and_then(|k| conv_from(e, d, Conv2D::new(e.usize("filters")?, k))),
        ),
        "MaxPooling1D" | "MaxPool1D" => boxed(pooling_from(e, |[p]| Pooling::<1, MaxPool>::new(p))),
        "AveragePooling1D" | "AvgPool1D" => {
            boxed(pooling_from(e, |[p]| Pooling::<1, AveragePool>::new(p)))
        }
        "MaxPooling2D" | "MaxPool2D" => boxed(pooling_from(e, Pooling::<2, MaxPool>::new)),
        "AveragePooling2D" | "AvgPool2D" => boxed(pooling_from(e, Pooling::<2, AveragePool>::new)),
        "GlobalMaxPooling1D" | "GlobalMaxPool1D" => boxed(global_from::<1, MaxPool>(e)),
        "GlobalAveragePooling1D" | "GlobalAvgPool1D" => boxed(global_from::<1, AveragePool>(e)),
        "GlobalMaxPooling2D" | "GlobalMaxPool2D" => boxed(global_from::<2, MaxPool>(e)),
        "GlobalAveragePooling2D" | "GlobalAvgPool2D" => boxed(global_from::<2, AveragePool>(e)),
        "ZeroPadding1D" => boxed(
            channels_last(e)
                .and_then(|()| sizes::<2>(e, "padding", Some([1, 1])))
                .map(ZeroPadding1D::new),
        ),
        "Cropping1D" => boxed(sizes::<2>(e, "cropping", Some([1, 1])).map(Cropping1D::new)),
        "ConvLSTM1D" => boxed(
            sizes::<1>(e, "kernel_size", None)
                .and_then(|[k]| conv_lstm_from(e, d, ConvLSTM1D::new(e.usize("filters")?, k))),
        ),
        "ConvLSTM2D" => boxed(
            sizes::<2>(e, "kernel_size", None)
                .and_then(|k| conv_lstm_from(e, d, ConvLSTM2D::new(e.usize("filters")?, k))),
        ),
        "UpSampling1D" => boxed(match e.config["size"] {
            Value::Null => Ok(UpSampling1D::new(2)),
            _ => e.usize("size").map(UpSampling1D::new),
        }),
        _ => return None,
    })
}

/// Refuses `data_format="channels_first"`: seqnn's layers are channels-last.
fn channels_last(e: &Entry<'_>) -> Result<()> {
    e.require(
        "data_format",
        |v| v == "channels_last",
        "seqnn's convolutions and poolings are channels-last",
    )
}

/// A Keras size option, "an integer or a tuple of N integers" (`3`, `[3]`, `[3, 5]`), or
/// `default` when the config has none.
fn sizes<const N: usize>(
    e: &Entry<'_>,
    key: &str,
    default: Option<[usize; N]>,
) -> Result<[usize; N]> {
    let v = &e.config[key];
    let bad = || {
        e.unsupported(format!(
            "option {key} must be an integer or a list of {N} integers, got {v}"
        ))
    };
    match v {
        Value::Null => default.ok_or_else(|| e.unsupported(format!("option {key} is missing"))),
        Value::Number(n) => n.as_u64().map(|n| [n as usize; N]).ok_or_else(bad),
        Value::Array(items) if items.len() == N => {
            let mut out = [0; N];
            for (slot, item) in out.iter_mut().zip(items) {
                *slot = item.as_u64().ok_or_else(bad)? as usize;
            }
            Ok(out)
        }
        _ => Err(bad()),
    }
}

/// Keras's `padding` string (any case), `valid` when the config has none.
fn padding(e: &Entry<'_>) -> Result<Padding> {
    match &e.config["padding"] {
        Value::Null => Ok(Padding::Valid),
        Value::String(s) => s
            .parse()
            .map_err(|_| e.unsupported(format!("option padding=\"{s}\" is not a Keras padding"))),
        other => Err(e.unsupported(format!(
            "option padding={other} is not supported: seqnn takes \"valid\", \"same\" or \
             \"causal\", not explicit padding"
        ))),
    }
}

fn conv_from<const N: usize>(e: &Entry<'_>, d: Dialect, conv: Conv<N>) -> Result<Conv<N>> {
    channels_last(e)?;
    e.require("lora_rank", Value::is_null, "LoRA")?;
    let groups = match e.config["groups"] {
        // tf_keras reads a missing or null groups as 1.
        Value::Null => 1,
        _ => e.usize("groups")?,
    };
    Ok(conv
        .with_strides(sizes::<N>(e, "strides", Some([1; N]))?)
        .with_padding(padding(e)?)
        .with_dilation_rate(sizes::<N>(e, "dilation_rate", Some([1; N]))?)
        .with_groups(groups)
        .with_activation(e.activation("activation", d)?)
        .with_use_bias(e.bool("use_bias", true)?))
}

fn conv_lstm_from<const N: usize>(
    e: &Entry<'_>,
    d: Dialect,
    layer: ConvLSTM<N>,
) -> Result<ConvLSTM<N>> {
    channels_last(e)?;
    let padding = padding(e)?;
    if padding == Padding::Causal {
        return Err(e.unsupported("option padding=\"causal\" (a ConvLSTM takes valid or same)"));
    }
    // A config without it has its Keras's default: hard_sigmoid in tf_keras, sigmoid in
    // Keras 3.
    let recurrent_activation = match (&e.config["recurrent_activation"], d) {
        (Value::Null, Dialect::Keras2) => ActivationFn::HardSigmoid,
        (Value::Null, Dialect::Keras3) => ActivationFn::Sigmoid,
        _ => e.activation("recurrent_activation", d)?,
    };
    let activation = match &e.config["activation"] {
        Value::Null => ActivationFn::Tanh,
        _ => e.activation("activation", d)?,
    };
    Ok(layer
        .with_strides(sizes::<N>(e, "strides", Some([1; N]))?)
        .with_padding(padding)
        .with_dilation_rate(sizes::<N>(e, "dilation_rate", Some([1; N]))?)
        .with_activation(activation)
        .with_recurrent_activation(recurrent_activation)
        .with_use_bias(e.bool("use_bias", true)?)
        .with_unit_forget_bias(e.bool("unit_forget_bias", true)?)
        .with_return_sequences(e.bool("return_sequences", false)?)
        .with_return_state(e.bool("return_state", false)?)
        .with_go_backwards(e.bool("go_backwards", false)?)
        .with_stateful(e.bool("stateful", false)?))
}

fn conv_lstm_config<const N: usize>(l: &ConvLSTM<N>) -> Result<Value> {
    Ok(json!({
        "filters": l.filters(),
        "kernel_size": l.kernel_size().to_vec(),
        "strides": l.strides().to_vec(),
        "padding": l.padding().name(),
        "data_format": "channels_last",
        "dilation_rate": l.dilation_rate().to_vec(),
        "activation": activation_name(l, l.activation())?,
        "recurrent_activation": activation_name(l, l.recurrent_activation())?,
        "use_bias": l.use_bias(),
        "unit_forget_bias": l.unit_forget_bias(),
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
        "return_sequences": l.return_sequences(),
        "return_state": l.return_state(),
        "go_backwards": l.go_backwards(),
        "stateful": l.stateful(),
        "unroll": false,
    }))
}

fn pooling_from<const N: usize, P: PoolKind>(
    e: &Entry<'_>,
    make: impl Fn([usize; N]) -> Pooling<N, P>,
) -> Result<Pooling<N, P>> {
    channels_last(e)?;
    let pool = make(sizes::<N>(e, "pool_size", Some([2; N]))?).with_padding(padding(e)?);
    Ok(match e.config["strides"] {
        Value::Null => pool,
        _ => pool.with_strides(sizes::<N>(e, "strides", None)?),
    })
}

fn global_from<const N: usize, P: PoolKind>(e: &Entry<'_>) -> Result<GlobalPooling<N, P>> {
    channels_last(e)?;
    Ok(GlobalPooling::new().with_keepdims(e.bool("keepdims", false)?))
}

/// The options of a layer of this family, for Keras 3's config.
pub(super) fn to_config(layer: &dyn Layer) -> Option<Result<Value>> {
    let any: &dyn Any = layer;
    if let Some(l) = any.downcast_ref::<Conv1D>() {
        return Some(conv_config(l));
    }
    if let Some(l) = any.downcast_ref::<Conv2D>() {
        return Some(conv_config(l));
    }
    if let Some(l) = any.downcast_ref::<ConvLSTM1D>() {
        return Some(conv_lstm_config(l));
    }
    if let Some(l) = any.downcast_ref::<ConvLSTM2D>() {
        return Some(conv_lstm_config(l));
    }
    let pooling = pooling_config::<1, MaxPool>(any)
        .or_else(|| pooling_config::<1, AveragePool>(any))
        .or_else(|| pooling_config::<2, MaxPool>(any))
        .or_else(|| pooling_config::<2, AveragePool>(any))
        .or_else(|| global_config::<1, MaxPool>(any))
        .or_else(|| global_config::<1, AveragePool>(any))
        .or_else(|| global_config::<2, MaxPool>(any))
        .or_else(|| global_config::<2, AveragePool>(any));
    if let Some(v) = pooling {
        return Some(Ok(v));
    }
    if let Some(l) = any.downcast_ref::<ZeroPadding1D>() {
        return Some(Ok(json!({
            "padding": l.padding(),
            "data_format": "channels_last",
        })));
    }
    if let Some(l) = any.downcast_ref::<Cropping1D>() {
        return Some(Ok(json!({ "cropping": l.cropping() })));
    }
    any.downcast_ref::<UpSampling1D>()
        .map(|l| Ok(json!({ "size": l.size() })))
}

fn conv_config<const N: usize>(l: &Conv<N>) -> Result<Value> {
    Ok(json!({
        "filters": l.filters(),
        "kernel_size": l.kernel_size().to_vec(),
        "strides": l.strides().to_vec(),
        "padding": l.padding().name(),
        "data_format": "channels_last",
        "dilation_rate": l.dilation_rate().to_vec(),
        "groups": l.groups(),
        "activation": activation_name(l, l.activation())?,
        "use_bias": l.use_bias(),
    }))
}

fn pooling_config<const N: usize, P: PoolKind>(any: &dyn Any) -> Option<Value> {
    any.downcast_ref::<Pooling<N, P>>().map(|l| {
        json!({
            "pool_size": l.pool_size().to_vec(),
            "padding": l.padding().name(),
            "strides": l.strides().to_vec(),
            "data_format": "channels_last",
        })
    })
}

fn global_config<const N: usize, P: PoolKind>(any: &dyn Any) -> Option<Value> {
    any.downcast_ref::<GlobalPooling<N, P>>().map(|l| {
        json!({
            "data_format": "channels_last",
            "keepdims": l.keepdims(),
        })
    })
}
