//! The merge layers in Keras configs: Add, Subtract, Multiply, Average, Maximum, Minimum,
//! Concatenate and Dot; and the InputLayer of a Functional model.

use serde_json::{json, Value};

use super::{Dialect, Entry};
use crate::error::Result;
use crate::layer::Layer;
use crate::layers::concatenate::Concatenate;
use crate::layers::dot::Dot;
use crate::layers::input_layer::InputLayer;
use crate::layers::merge::{Add, Average, Maximum, Minimum, Multiply, Subtract};

/// A layer of this family from its entry.
pub(super) fn from_entry(e: &Entry<'_>, d: Dialect) -> Option<Result<Box<dyn Layer>>> {
    let k3 = d == Dialect::Keras3;
    fn boxed<L: Layer>(l: L) -> Result<Box<dyn Layer>> {
        Ok(Box::new(l))
    }
    Some(match e.class {
        "Add" => boxed(Add::new()),
        "Subtract" => boxed(Subtract::new()),
        "Multiply" => boxed(Multiply::new().with_keras3_masking(k3)),
        "Average" => boxed(Average::new()),
        "Maximum" => boxed(Maximum::new().with_keras3_masking(k3)),
        "Minimum" => boxed(Minimum::new().with_keras3_masking(k3)),
        "Concatenate" => int(e, "axis", -1).map(|a| Box::new(Concatenate::new().with_axis(a)) as _),
        "Dot" => dot_from(e).map(|d| Box::new(d) as _),
        "InputLayer" => input_from(e).map(|l| Box::new(l) as _),
        _ => return None,
    })
}

/// An integer option, possibly negative.
fn int(e: &Entry<'_>, key: &str, default: isize) -> Result<isize> {
    match &e.config[key] {
        Value::Null => Ok(default),
        v => v
            .as_i64()
            .and_then(|a| isize::try_from(a).ok())
            .ok_or_else(|| e.unsupported(format!("option {key} must be an integer, got {v}"))),
    }
}

fn dot_from(e: &Entry<'_>) -> Result<Dot> {
    let axes = &e.config["axes"];
    let pair = |v: &Value| -> Option<isize> { v.as_i64().and_then(|a| isize::try_from(a).ok()) };
    let dot = match axes {
        Value::Array(a) if a.len() == 2 => match (pair(&a[0]), pair(&a[1])) {
            (Some(x), Some(y)) => Dot::with_axes_pair(x, y),
            _ => return Err(e.unsupported(format!("option axes={axes} is not two integers"))),
        },
        v => match pair(v) {
            Some(a) => Dot::new(a),
            None => return Err(e.unsupported(format!("option axes={axes} is not an integer"))),
        },
    };
    Ok(dot.with_normalize(e.bool("normalize", false)?))
}

fn input_from(e: &Entry<'_>) -> Result<InputLayer> {
    e.require("sparse", |v| v == &Value::Bool(false), "sparse inputs")?;
    e.require("ragged", |v| v == &Value::Bool(false), "ragged inputs")?;
    let shape = e
        .batch_shape()?
        .ok_or_else(|| e.unsupported("an InputLayer without batch_shape or batch_input_shape"))?;
    Ok(InputLayer::new(shape))
}

/// The options of a layer of this family, for Keras 3's config.
pub(super) fn to_config(layer: &dyn Layer) -> Option<Result<Value>> {
    let any: &dyn std::any::Any = layer;
    if let Some(c) = any.downcast_ref::<Concatenate>() {
        return Some(Ok(json!({ "axis": c.axis() })));
    }
    if let Some(d) = any.downcast_ref::<Dot>() {
        let (a, b) = d.axes();
        let axes = if a == b { json!(a) } else { json!([a, b]) };
        return Some(Ok(json!({ "axes": axes, "normalize": d.normalize() })));
    }
    if let Some(i) = any.downcast_ref::<InputLayer>() {
        return Some(Ok(json!({
            "batch_shape": super::dims(i.batch_shape()),
            "sparse": false,
        })));
    }
    let elementwise = any.is::<Add>()
        || any.is::<Subtract>()
        || any.is::<Multiply>()
        || any.is::<Average>()
        || any.is::<Maximum>()
        || any.is::<Minimum>();
    elementwise.then(|| Ok(json!({})))
}
