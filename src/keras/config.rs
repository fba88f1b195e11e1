//! Keras model configs (JSON) to seqnn layers, in both dialects: tf_keras 2.x and Keras 3.
//!
//! Every key that changes what a layer computes is read; keys that only matter in training
//! (dropout rates of recurrent layers, regularizers, constraints, initializers of loaded weights)
//! are ignored, as Keras ignores them in `predict`. Anything else that seqnn cannot reproduce is
//! refused with [`Error::Unsupported`], naming the layer, its class and the option.

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::activation::ActivationFn;
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::layers::bidirectional::{Bidirectional, MergeMode};
use crate::layers::recurrent::{Cell, Recurrent, RecurrentLayer};
use crate::layers::{
    activation::Activation, dense::Dense, dropout::Dropout, embedding::Embedding, flatten::Flatten,
    gru::GRU, lstm::LSTM, masking::Masking, repeat_vector::RepeatVector, simple_rnn::SimpleRNN,
    time_distributed::TimeDistributed,
};
use crate::sequential::Sequential;
use crate::shape::Shape;

/// Which Keras wrote the config: names and a few meanings differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// tf.keras / tf_keras 2.x: `batch_input_shape`, string dtypes, Keras 2's hard_sigmoid.
    Keras2,
    /// Keras 3: an `InputLayer` with `batch_shape`, `DTypePolicy` dtypes, relu6 hard_sigmoid.
    Keras3,
}

impl Dialect {
    /// The dialect of a model's JSON alone (`model.to_json()`): tf_keras writes its version
    /// beside a legacy config; without it, Keras 3 is told by what only it writes (an input's
    /// `batch_shape`, `DTypePolicy` dtypes).
    pub(crate) fn of_json(json: &str) -> Dialect {
        if let Ok(root) = serde_json::from_str::<Fields<'_>>(json) {
            if let Some(v) = root.get("keras_version") {
                let version: Option<String> = serde_json::from_str(v.get()).ok();
                return Dialect::from_version(version.as_deref());
            }
        }
        if json.contains("\"batch_shape\"") || json.contains("\"DTypePolicy\"") {
            Dialect::Keras3
        } else {
            Dialect::Keras2
        }
    }

    /// The dialect of a `keras_version` string ("2.21.0", "3.15.1"); Keras 2 when unknown.
    pub(crate) fn from_version(version: Option<&str>) -> Dialect {
        match version.and_then(|v| v.split('.').next()) {
            Some(major) if major.parse::<u32>().is_ok_and(|m| m >= 3) => Dialect::Keras3,
            _ => Dialect::Keras2,
        }
    }
}

/// One layer entry of a config: `{"class_name": ..., "config": {...}}`.
struct Entry<'a> {
    class: &'a str,
    config: &'a Value,
    name: String,
}

impl<'a> Entry<'a> {
    fn new(v: &'a Value) -> Result<Entry<'a>> {
        let class = v["class_name"]
            .as_str()
            .ok_or_else(|| malformed(format!("a layer entry has no class_name: {}", excerpt(v))))?;
        let config = &v["config"];
        if !config.is_object() {
            return Err(malformed(format!(
                "layer entry {class} has no config object"
            )));
        }
        let name = config["name"].as_str().unwrap_or(class).to_string();
        if let Some(registered) = v["registered_name"].as_str() {
            if registered != class && !registered.is_empty() {
                return Err(unsupported_class(&name, class, registered));
            }
        }
        Ok(Entry {
            class,
            config,
            name,
        })
    }

    fn unsupported(&self, message: impl Into<String>) -> Error {
        Error::Unsupported {
            layer: self.name.clone(),
            class: self.class.to_string(),
            message: message.into(),
        }
    }

    fn usize(&self, key: &str) -> Result<usize> {
        self.config[key]
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| {
                self.unsupported(format!(
                    "option {key} must be a non-negative integer, got {}",
                    self.config[key]
                ))
            })
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match &self.config[key] {
            Value::Null => Ok(default),
            Value::Bool(b) => Ok(*b),
            other => {
                Err(self.unsupported(format!("option {key} must be true or false, got {other}")))
            }
        }
    }

    fn f32(&self, key: &str, default: f32) -> Result<f32> {
        match &self.config[key] {
            Value::Null => Ok(default),
            Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN) as f32),
            other => Err(self.unsupported(format!("option {key} must be a number, got {other}"))),
        }
    }

    /// An option that must keep its default for seqnn to compute what Keras computes.
    fn require(&self, key: &str, ok: impl Fn(&Value) -> bool, what: &str) -> Result<()> {
        let v = &self.config[key];
        if v.is_null() || ok(v) {
            Ok(())
        } else {
            Err(self.unsupported(format!("option {key}={v} is not supported ({what})")))
        }
    }

    /// Only float32 layers: seqnn computes in f32 as Keras's default policy.
    fn check_dtype(&self) -> Result<()> {
        let dtype = &self.config["dtype"];
        let name = match dtype {
            Value::Null => return Ok(()),
            Value::String(s) => s.as_str(),
            Value::Object(_) => dtype["config"]["name"].as_str().unwrap_or(""),
            _ => "",
        };
        if name == "float32" {
            Ok(())
        } else {
            Err(self.unsupported(format!(
                "option dtype={} is not supported: seqnn computes in float32",
                excerpt(dtype)
            )))
        }
    }

    fn activation(&self, key: &str, dialect: Dialect) -> Result<ActivationFn> {
        let v = &self.config[key];
        let name = match v {
            Value::Null => return Ok(ActivationFn::Linear),
            Value::String(s) => s.as_str(),
            // A serialized function object: Keras's own are strings, so this is custom.
            other => {
                return Err(self.unsupported(format!(
                    "option {key}={} is a custom activation, which seqnn cannot run",
                    excerpt(other)
                )))
            }
        };
        if name == "hard_sigmoid" && dialect == Dialect::Keras3 {
            return Ok(ActivationFn::HardSigmoidKeras3);
        }
        name.parse().map_err(|_| {
            self.unsupported(format!(
                "option {key}=\"{name}\" is not an activation seqnn has"
            ))
        })
    }

    /// `batch_input_shape` (Keras 2) or `batch_shape` (Keras 3) on the layer itself.
    fn batch_shape(&self) -> Result<Option<Shape>> {
        for key in ["batch_input_shape", "batch_shape"] {
            if let Some(v) = self.config.get(key).filter(|v| !v.is_null()) {
                return shape(v)
                    .map(Some)
                    .map_err(|m| self.unsupported(format!("{key}: {m}")));
            }
        }
        Ok(None)
    }
}

/// A config that is not what Keras writes; the file's path is added by the caller.
fn malformed(message: String) -> Error {
    Error::file("", format!("the model config is malformed: {message}"))
}

fn unsupported_class(name: &str, class: &str, registered: &str) -> Error {
    Error::Unsupported {
        layer: name.to_string(),
        class: class.to_string(),
        message: format!("the custom class \"{registered}\" is not a layer seqnn has"),
    }
}

/// The first characters of a JSON value, for messages.
fn excerpt(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// A JSON shape list (`[null, 2, 10]`).
pub(crate) fn shape(v: &Value) -> std::result::Result<Shape, String> {
    let dims = v
        .as_array()
        .ok_or_else(|| format!("a shape must be a list, got {}", excerpt(v)))?;
    dims.iter()
        .map(|d| match d {
            Value::Null => Ok(None),
            Value::Number(n) => n
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| format!("a dimension must be a non-negative integer, got {n}")),
            other => Err(format!(
                "a dimension must be an integer or null, got {other}"
            )),
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(Shape::new)
}

/// The fields of a JSON object, each left unparsed: a config is read one layer entry at a
/// time, so that its parsed form never holds more than one layer's JSON.
type Fields<'a> = HashMap<String, &'a RawValue>;

fn fields<'a>(json: &'a str, what: &str) -> Result<Fields<'a>> {
    serde_json::from_str(json).map_err(|e| malformed(format!("{what} is not a JSON object ({e})")))
}

/// A field parsed as a value, `Null` when it is missing.
fn value(f: &Fields<'_>, key: &str) -> Result<Value> {
    match f.get(key) {
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|e| malformed(format!("the config's {key} is not valid JSON ({e})"))),
        None => Ok(Value::Null),
    }
}

/// A whole model config (`{"class_name": "Sequential", "config": {...}}`, JSON text) as a
/// built [`Sequential`] whose layers have their shapes but no weights yet: no initializer
/// runs, and the caller reads the weights after checking the stored shapes against the
/// layers'. The text's syntax was checked by the caller.
pub(crate) fn model_from_config(json: &str, dialect: Dialect) -> Result<Sequential> {
    let root = fields(json, "the model config")?;
    let class = value(&root, "class_name")?;
    let class = class.as_str().unwrap_or("");
    let config_raw = root
        .get("config")
        .map(|r| r.get())
        .ok_or_else(|| malformed("the model config has no config".into()))?;
    let config = fields(config_raw, "the model's config")?;
    let name = value(&config, "name")?
        .as_str()
        .unwrap_or("sequential")
        .to_string();
    if class != "Sequential" {
        return Err(Error::Unsupported {
            layer: name,
            class: class.to_string(),
            message: "only Sequential models can be loaded; this is a different model kind \
                      (a Functional model or a subclass)"
                .into(),
        });
    }
    let entries: Vec<&RawValue> = match config.get("layers") {
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|_| malformed("the Sequential config has no layers list".into()))?,
        None => return Err(malformed("the Sequential config has no layers list".into())),
    };
    let mut layers = Vec::with_capacity(entries.len());
    let mut input_shape: Option<Shape> = None;
    for raw in entries {
        let v: Value = serde_json::from_str(raw.get())
            .map_err(|e| malformed(format!("a layer entry is not valid JSON ({e})")))?;
        let entry = Entry::new(&v)?;
        if entry.class == "InputLayer" {
            input_shape = entry.batch_shape()?;
            continue;
        }
        let declared = input_shape.take().filter(|_| layers.is_empty());
        layers.push(layer_from(&entry, dialect, declared)?);
    }
    let mut model = Sequential::from_layers_without_weights(name, layers, None)?;
    if !model.is_built() {
        let build_config = match root.get("build_config") {
            Some(raw) => fields(raw.get(), "the build_config")?,
            None => Fields::new(),
        };
        let build = [
            value(&build_config, "input_shape")?,
            value(&config, "build_input_shape")?,
        ]
        .into_iter()
        .find(|v| !v.is_null());
        if let Some(v) = build {
            let s = shape(&v).map_err(malformed)?;
            model.build_without_weights(s)?;
        }
    }
    Ok(model)
}

/// One layer from its entry; `declared` is the model's input shape when it is the first layer.
fn layer_from(e: &Entry<'_>, d: Dialect, declared: Option<Shape>) -> Result<Box<dyn Layer>> {
    e.check_dtype()?;
    let declared = match declared {
        Some(s) => Some(s),
        None => e.batch_shape()?,
    };
    let name = e.name.clone();
    macro_rules! finish {
        ($layer:expr) => {{
            let mut layer = $layer
                .with_name(name)
                .with_trainable(e.bool("trainable", true)?);
            if let Some(s) = declared {
                layer = layer.batch_input_shape(s);
            }
            Box::new(layer) as Box<dyn Layer>
        }};
    }
    Ok(match e.class {
        "SimpleRNN" | "LSTM" | "GRU" => recurrent_boxed(e, d, declared)? as Box<dyn Layer>,
        "Bidirectional" => finish!(bidirectional_from(e, d)?),
        "Dense" => finish!(dense_from(e, d)?),
        "Embedding" => {
            e.require("sparse", |v| v == &Value::Bool(false), "sparse gradients")?;
            e.require("lora_rank", Value::is_null, "LoRA")?;
            let mut emb = Embedding::new(e.usize("input_dim")?, e.usize("output_dim")?)
                .with_mask_zero(e.bool("mask_zero", false)?);
            if let Some(n) = e.config["input_length"].as_u64() {
                emb = emb.input_length(n as usize);
            }
            finish!(emb)
        }
        "TimeDistributed" => {
            let inner = Entry::new(&e.config["layer"])?;
            let inner_layer = layer_from(&inner, d, None)?;
            finish!(TimeDistributed::from_boxed(inner_layer))
        }
        "RepeatVector" => finish!(RepeatVector::new(e.usize("n")?)),
        "Flatten" => {
            e.require(
                "data_format",
                |v| v == "channels_last",
                "seqnn flattens channels-last",
            )?;
            finish!(Flatten::new())
        }
        "Dropout" => {
            e.require("noise_shape", Value::is_null, "a noise shape")?;
            finish!(Dropout::new(e.f32("rate", 0.0)?))
        }
        "Activation" => finish!(Activation::new(e.activation("activation", d)?)),
        "Masking" => finish!(Masking::new(e.f32("mask_value", 0.0)?)),
        other => {
            return Err(e.unsupported(format!("{other} is not a layer class seqnn has")));
        }
    })
}

fn dense_from(e: &Entry<'_>, d: Dialect) -> Result<Dense> {
    e.require("lora_rank", Value::is_null, "LoRA")?;
    Ok(Dense::new(e.usize("units")?)
        .with_activation(e.activation("activation", d)?)
        .with_use_bias(e.bool("use_bias", true)?))
}

/// The options every Keras recurrent layer has.
fn recurrent_common<C: Cell>(
    rnn: Recurrent<C>,
    e: &Entry<'_>,
    declared: &Option<Shape>,
) -> Result<Recurrent<C>> {
    e.require(
        "time_major",
        |v| v == &Value::Bool(false),
        "time-major inputs",
    )?;
    let mut rnn = rnn
        .with_return_sequences(e.bool("return_sequences", false)?)
        .with_return_state(e.bool("return_state", false)?)
        .with_go_backwards(e.bool("go_backwards", false)?)
        .with_stateful(e.bool("stateful", false)?)
        .with_zero_output_for_mask(e.bool("zero_output_for_mask", false)?)
        .with_trainable(e.bool("trainable", true)?)
        .with_name(e.name.clone());
    if let Some(s) = declared {
        rnn = rnn.batch_input_shape(s.clone());
    }
    Ok(rnn)
}

fn recurrent_boxed(
    e: &Entry<'_>,
    d: Dialect,
    declared: Option<Shape>,
) -> Result<Box<dyn RecurrentLayer>> {
    e.check_dtype()?;
    let units = e.usize("units")?;
    let use_bias = e.bool("use_bias", true)?;
    Ok(match e.class {
        "SimpleRNN" => Box::new(recurrent_common(
            SimpleRNN::new(units)
                .with_activation(e.activation("activation", d)?)
                .with_use_bias(use_bias),
            e,
            &declared,
        )?),
        "LSTM" => Box::new(recurrent_common(
            LSTM::new(units)
                .with_activation(e.activation("activation", d)?)
                .with_recurrent_activation(e.activation("recurrent_activation", d)?)
                .with_use_bias(use_bias)
                .with_unit_forget_bias(e.bool("unit_forget_bias", true)?),
            e,
            &declared,
        )?),
        "GRU" => Box::new(recurrent_common(
            GRU::new(units)
                .with_activation(e.activation("activation", d)?)
                .with_recurrent_activation(e.activation("recurrent_activation", d)?)
                .with_use_bias(use_bias)
                .with_reset_after(e.bool("reset_after", true)?),
            e,
            &declared,
        )?),
        other => {
            return Err(e.unsupported(format!(
                "Bidirectional can wrap SimpleRNN, LSTM or GRU, not {other}"
            )))
        }
    })
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
    let mut forward = recurrent_boxed(&inner, d, None)?;
    unprefixed(&mut forward, "forward_");
    let mut bi = Bidirectional::new_boxed(forward);
    if let Some(b) = e.config.get("backward_layer").filter(|b| !b.is_null()) {
        let mut backward = recurrent_boxed(&Entry::new(b)?, d, None)?;
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
