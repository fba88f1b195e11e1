//! Keras model configs (JSON) to seqnn layers and back, in both dialects: tf_keras 2.x and
//! Keras 3.
//!
//! Every key that changes what a layer computes is read, and what training needs: the
//! recurrent layers' dropout rates, the regularizers and constraints ([`rules`]); the
//! initializers of loaded weights are ignored, as Keras ignores them. Anything else that seqnn cannot reproduce is
//! refused with [`Error::Unsupported`], naming the layer, its class and the option.
//!
//! Each family of layers has its own file with both directions, `from_entry` (a config entry to
//! a layer) and `to_config` (a layer's own options for Keras 3's config); [`FAMILIES`] lists
//! them. A new layer is one arm in its family's two functions.

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::Value;

use serde_json::json;

use crate::activation::ActivationFn;
use crate::error::{Error, Result};
use crate::functional::Model;
use crate::layer::Layer;
use crate::sequential::Sequential;
use crate::shape::Shape;

mod attention;
mod conv;
mod core;
mod functional;
mod merge;
mod normalization;
mod ops;
mod recurrent;
mod rules;

/// One family of layers: a config entry to a layer, and a layer's own options back. Each
/// answers `None` for a class or a layer that is not its own.
struct Family {
    from_entry: FromEntry,
    to_config: ToConfig,
}

/// A family's `from_entry`: the layer of an entry, or `None` for another family's class.
type FromEntry = fn(&Entry<'_>, Dialect) -> Option<Result<Box<dyn Layer>>>;

/// A family's `to_config`: a layer's own options, or `None` for another family's layer.
type ToConfig = fn(&dyn Layer) -> Option<Result<Value>>;

/// Every family, tried in order.
const FAMILIES: &[Family] = &[
    // First: an operation's class may be a layer's too (Concatenate), told apart by module.
    Family {
        from_entry: ops::from_entry,
        to_config: ops::to_config,
    },
    Family {
        from_entry: recurrent::from_entry,
        to_config: recurrent::to_config,
    },
    Family {
        from_entry: core::from_entry,
        to_config: core::to_config,
    },
    Family {
        from_entry: merge::from_entry,
        to_config: merge::to_config,
    },
    Family {
        from_entry: functional::nested,
        to_config: functional::nested_config,
    },
    Family {
        from_entry: normalization::from_entry,
        to_config: normalization::to_config,
    },
    Family {
        from_entry: attention::from_entry,
        to_config: attention::to_config,
    },
    Family {
        from_entry: conv::from_entry,
        to_config: conv::to_config,
    },
];

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
pub(crate) struct Entry<'a> {
    pub(crate) class: &'a str,
    pub(crate) config: &'a Value,
    pub(crate) name: String,
    /// The whole entry (with `build_config`, `inbound_nodes`, ...).
    pub(crate) entry: &'a Value,
}

impl<'a> Entry<'a> {
    pub(crate) fn new(v: &'a Value) -> Result<Entry<'a>> {
        let class = v["class_name"]
            .as_str()
            .ok_or_else(|| malformed(format!("a layer entry has no class_name: {}", excerpt(v))))?;
        let config = &v["config"];
        // Keras 2.0 to 2.2 wrote a nested Sequential's config as the bare list of its layers.
        let bare_list = class == "Sequential" && config.is_array();
        if !config.is_object() && !bare_list {
            return Err(malformed(format!(
                "layer entry {class} has no config object"
            )));
        }
        let name = config["name"]
            .as_str()
            .or_else(|| v["name"].as_str())
            .unwrap_or(class)
            .to_string();
        if let Some(registered) = v["registered_name"].as_str() {
            if registered != class && !registered.is_empty() {
                return Err(unsupported_class(&name, class, registered));
            }
        }
        Ok(Entry {
            class,
            config,
            name,
            entry: v,
        })
    }

    pub(crate) fn unsupported(&self, message: impl Into<String>) -> Error {
        Error::Unsupported {
            layer: self.name.clone(),
            class: self.class.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn usize(&self, key: &str) -> Result<usize> {
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

    pub(crate) fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match &self.config[key] {
            Value::Null => Ok(default),
            Value::Bool(b) => Ok(*b),
            other => {
                Err(self.unsupported(format!("option {key} must be true or false, got {other}")))
            }
        }
    }

    pub(crate) fn f32(&self, key: &str, default: f32) -> Result<f32> {
        match &self.config[key] {
            Value::Null => Ok(default),
            Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN) as f32),
            other => Err(self.unsupported(format!("option {key} must be a number, got {other}"))),
        }
    }

    /// An option that must keep its default for seqnn to compute what Keras computes.
    pub(crate) fn require(&self, key: &str, ok: impl Fn(&Value) -> bool, what: &str) -> Result<()> {
        let v = &self.config[key];
        if v.is_null() || ok(v) {
            Ok(())
        } else {
            Err(self.unsupported(format!("option {key}={v} is not supported ({what})")))
        }
    }

    /// Only float32 layers: seqnn computes in f32 as Keras's default policy.
    pub(crate) fn check_dtype(&self) -> Result<()> {
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

    pub(crate) fn activation(&self, key: &str, dialect: Dialect) -> Result<ActivationFn> {
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
    pub(crate) fn batch_shape(&self) -> Result<Option<Shape>> {
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
pub(crate) fn malformed(message: String) -> Error {
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
pub(crate) fn excerpt(v: &Value) -> String {
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

/// A model a file holds: Keras's `Sequential` or `Functional`.
#[derive(Debug, Clone)]
pub(crate) enum Loaded {
    Sequential(Sequential),
    Functional(Model),
}

/// An f32 as the shortest decimal that reads back as it (`0.3`, not `0.30000001192092896`),
/// as Keras writes its Python floats.
pub(super) fn number(v: f32) -> Value {
    format!("{v}")
        .parse::<f64>()
        .map_or(Value::Null, Value::from)
}

/// A whole model config (`{"class_name": "Sequential", "config": {...}}`, or `Functional`,
/// JSON text) as a built model whose layers have their shapes but no weights yet: no
/// initializer runs, and the caller reads the weights after checking the stored shapes against
/// the layers'. The text's syntax was checked by the caller.
pub(crate) fn model_from_config(json: &str, dialect: Dialect) -> Result<Described<Loaded>> {
    let root = fields(json, "the model config")?;
    let class = value(&root, "class_name")?;
    let class = class.as_str().unwrap_or("");
    if functional::is_functional_class(class) {
        let config_raw = root
            .get("config")
            .map(|r| r.get())
            .ok_or_else(|| malformed("the model config has no config".into()))?;
        let config = fields(config_raw, "the model's config")?;
        let mut stored = StoredLayouts::new();
        let model = functional::from_fields(&config, dialect, &mut stored)?;
        return Ok(Described {
            model: Loaded::Functional(model),
            stored,
        });
    }
    let d = sequential_from_config(json, dialect)?;
    Ok(Described {
        model: Loaded::Sequential(d.model),
        stored: d.stored,
    })
}

/// [`model_from_config`] for a Sequential model.
pub(crate) fn sequential_from_config(
    json: &str,
    dialect: Dialect,
) -> Result<Described<Sequential>> {
    let root = fields(json, "the model config")?;
    let class = value(&root, "class_name")?;
    let class = class.as_str().unwrap_or("");
    let config_raw = root
        .get("config")
        .map(|r| r.get())
        .ok_or_else(|| malformed("the model config has no config".into()))?;
    // Keras 2.0 to 2.2.4 wrote a Sequential's config as the bare list of its layers.
    let (name, entries_raw, config) = if config_raw.trim_start().starts_with('[') {
        ("sequential".to_string(), config_raw, Fields::new())
    } else {
        let config = fields(config_raw, "the model's config")?;
        let name = value(&config, "name")?
            .as_str()
            .unwrap_or("sequential")
            .to_string();
        let layers = config.get("layers").map(|r| r.get()).unwrap_or("null");
        (name, layers, config)
    };
    if class != "Sequential" {
        return Err(Error::Unsupported {
            layer: name,
            class: class.to_string(),
            message: "only Sequential and Functional models can be loaded; this is a different \
                      model kind (a subclassed model)"
                .into(),
        });
    }
    let entries: Vec<&RawValue> = serde_json::from_str(entries_raw)
        .map_err(|_| malformed("the Sequential config has no layers list".into()))?;
    let mut layers = Vec::with_capacity(entries.len());
    let mut stored = StoredLayouts::new();
    let mut input_shape: Option<Shape> = None;
    let mut input_name: Option<String> = None;
    for raw in entries {
        let v: Value = serde_json::from_str(raw.get())
            .map_err(|e| malformed(format!("a layer entry is not valid JSON ({e})")))?;
        let entry = Entry::new(&v)?;
        if entry.class == "InputLayer" {
            input_shape = entry.batch_shape()?;
            input_name = Some(entry.name.clone());
            continue;
        }
        // The model's input: an InputLayer's, or the first layer's batch_input_shape, whose
        // input Keras 2 names after the layer (Sequential.add: `layer.name + "_input"`).
        if layers.is_empty() && input_shape.is_none() {
            input_shape = entry.batch_shape()?;
            if input_shape.is_some() && input_name.is_none() {
                input_name = Some(format!("{}_input", entry.name));
            }
        }
        if let Some(layout) = recurrent::stored_layout(&entry) {
            stored.insert(entry.name.clone(), layout);
        }
        layers.push(layer_from(&entry, dialect)?);
    }
    let mut model = Sequential::from_layers_without_weights(name, layers, input_shape)?;
    if let Some(n) = input_name {
        model.set_input_name(n);
    }
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
    Ok(Described { model, stored })
}

/// How a file stores the weights of the layers (by name) whose layout is not their own.
pub(crate) type StoredLayouts = HashMap<String, crate::keras::cudnn::StoredLayout>;

/// A model a config describes, built without weights, and how its file stores them.
pub(crate) struct Described<M> {
    pub(crate) model: M,
    pub(crate) stored: StoredLayouts,
}

/// One layer from its entry: its family's layer, with the entry's name and `trainable`.
pub(crate) fn layer_from(e: &Entry<'_>, d: Dialect) -> Result<Box<dyn Layer>> {
    // An operation's dtype is its result's (a mask's is bool), not a layer's policy.
    if !ops::is_op(e) {
        e.check_dtype()?;
    }
    let mut layer = FAMILIES
        .iter()
        .find_map(|f| (f.from_entry)(e, d))
        .unwrap_or_else(|| {
            Err(e.unsupported(format!("{} is not a layer class seqnn has", e.class)))
        })?;
    layer.set_name(e.name.clone());
    layer.set_trainable(e.bool("trainable", true)?);
    rules::read(e, layer.as_mut())?;
    Ok(layer)
}

/// `{"module", "class_name", "config", "registered_name"}` for one layer, in Keras 3's form:
/// its family's options, with its name, `trainable` and dtype.
pub(crate) fn layer_entry(layer: &dyn Layer) -> Result<Value> {
    let any: &dyn std::any::Any = layer;
    if any.is::<crate::layers::op::Op>() {
        return ops::entry(layer);
    }
    let extra = FAMILIES
        .iter()
        .find_map(|f| (f.to_config)(layer))
        .unwrap_or_else(|| {
            Err(unsupported(
                layer,
                "this layer cannot be saved in a Keras file",
            ))
        })?;
    // The dtype policy as Keras 3 writes it, which also tells the dialect of the config alone.
    let mut config = json!({
        "name": layer.name(),
        "trainable": layer.trainable(),
        "dtype": {
            "module": "keras",
            "class_name": "DTypePolicy",
            "config": { "name": "float32" },
            "registered_name": null,
        },
    });
    if let (Some(c), Value::Object(extra)) = (config.as_object_mut(), extra) {
        c.extend(extra);
        // A family's null for a common key: the Keras class does not take it.
        c.retain(|k, v| !(v.is_null() && k == "trainable"));
        rules::write(layer, c);
    }
    // Keras 3 finds a nested model's class by these, not as a layer.
    let (module, registered) = match layer.class_name() {
        "Sequential" => ("keras", Value::Null),
        "Functional" => ("keras.src.models.functional", json!("Functional")),
        _ => ("keras.layers", Value::Null),
    };
    Ok(json!({
        "module": module,
        "class_name": layer.class_name(),
        "config": config,
        "registered_name": registered,
    }))
}

/// A layer option that a Keras file cannot hold.
pub(crate) fn unsupported(layer: &dyn Layer, message: impl Into<String>) -> Error {
    Error::Unsupported {
        layer: layer.name().to_string(),
        class: layer.class_name().to_string(),
        message: message.into(),
    }
}

/// Keras 3's name for an activation; Keras 2's hard_sigmoid has none in Keras 3.
pub(crate) fn activation_name(layer: &dyn Layer, f: ActivationFn) -> Result<&'static str> {
    Ok(match f {
        ActivationFn::HardSigmoid => {
            return Err(unsupported(
                layer,
                "Keras 2's hard_sigmoid (clip(0.2x + 0.5, 0, 1)) has no Keras 3 equivalent; \
                 Keras 3's hard_sigmoid is relu6(x + 3) / 6",
            ))
        }
        ActivationFn::Swish => "silu",
        other => other.name(),
    })
}

/// A shape as Keras's JSON list, `null` for unknown dimensions.
pub(crate) fn dims(shape: &Shape) -> Value {
    Value::Array(
        shape
            .dims()
            .iter()
            .map(|d| d.map_or(Value::Null, |d| json!(d)))
            .collect(),
    )
}
