//! The normalization, reshaping and noise layers in Keras configs: BatchNormalization,
//! LayerNormalization, Reshape, Permute, SpatialDropout1D, GaussianNoise, GaussianDropout and
//! ActivityRegularization.
//!
//! Read for training and written back: BatchNormalization's `momentum`, `renorm_clipping` (a
//! dict of `rmax`, `rmin`, `dmax`, any missing or null; other keys are refused, as both Kerases
//! refuse them) and `renorm_momentum`. Read and ignored: `synchronized` (Keras 3; its presence
//! says Keras 3) and `fused` (tf_keras; it picks TensorFlow's kernel for 4-D and 5-D inputs,
//! whose training moves the moving variance toward the unbiased variance: a tf_keras config
//! gives [`MovingVariance::TfKeras`] unless it says `fused: false`), every initializer,
//! regularizer and constraint, and the noise layers' `seed` and `noise_shape`. Refused:
//! BatchNormalization over several axes and tf_keras's `virtual_batch_size`, both of which give
//! the weights another shape, and Keras 3 has neither.

use serde_json::{json, Value};

use super::{excerpt, number, unsupported, Dialect, Entry};
use crate::error::Result;
use crate::layer::Layer;
use crate::layers::{
    batch_normalization::{BatchNormalization, MovingVariance, RenormClipping},
    layer_normalization::LayerNormalization,
    permute::Permute,
    regularization::{ActivityRegularization, GaussianDropout, GaussianNoise, SpatialDropout1D},
    reshape::Reshape,
};

/// A layer of this family from its entry.
pub(super) fn from_entry(e: &Entry<'_>, d: Dialect) -> Option<Result<Box<dyn Layer>>> {
    fn boxed<L: Layer>(l: Result<L>) -> Result<Box<dyn Layer>> {
        l.map(|l| Box::new(l) as Box<dyn Layer>)
    }
    Some(match e.class {
        "BatchNormalization" => boxed(batch_normalization_from(e, d)),
        "LayerNormalization" => boxed(layer_normalization_from(e, d)),
        "Reshape" => boxed(ints(e, "target_shape").map(Reshape::new)),
        "Permute" => boxed(permute_from(e)),
        "SpatialDropout1D" => boxed(required_f32(e, "rate").map(SpatialDropout1D::new)),
        "GaussianNoise" => boxed(required_f32(e, "stddev").map(GaussianNoise::new)),
        "GaussianDropout" => boxed(required_f32(e, "rate").map(GaussianDropout::new)),
        "ActivityRegularization" => boxed((|| {
            Ok(ActivityRegularization::new()
                .with_l1(e.f32("l1", 0.0)?)
                .with_l2(e.f32("l2", 0.0)?))
        })()),
        _ => return None,
    })
}

fn batch_normalization_from(e: &Entry<'_>, d: Dialect) -> Result<BatchNormalization> {
    // tf_keras writes the axis as a list after building (`validate_axis`): `[2]`.
    let axis = match axes(e)?.as_slice() {
        [] if e.config["axis"].is_null() => -1,
        [a] => *a,
        _ => {
            return Err(e.unsupported(format!(
                "option axis={} is not supported (several axes: tf_keras then gives the weights \
                 the input's rank, and Keras 3 takes one axis)",
                excerpt(&e.config["axis"])
            )))
        }
    };
    e.require(
        "virtual_batch_size",
        Value::is_null,
        "tf_keras's virtual batches, whose weights have the shape (1, ..., 1, C)",
    )?;
    e.require("adjustment", Value::is_null, "an adjustment function")?;
    // tf_keras's training moves the moving variance as its fused kernel does, unless the config
    // turned that kernel off; Keras 3 writes `synchronized`, which tf_keras does not.
    let keras3 = e.config.get("synchronized").is_some() || d == Dialect::Keras3;
    let moving_variance = if keras3 || e.config["fused"] == json!(false) {
        MovingVariance::Keras3
    } else {
        MovingVariance::TfKeras
    };
    Ok(BatchNormalization::new()
        .with_moving_variance(moving_variance)
        .with_axis(axis)
        .with_momentum(e.f32("momentum", 0.99)?)
        .with_epsilon(e.f32("epsilon", 1e-3)?)
        .with_center(e.bool("center", true)?)
        .with_scale(e.bool("scale", true)?)
        .with_renorm(e.bool("renorm", false)?)
        .with_renorm_clipping(renorm_clipping(e)?)
        .with_renorm_momentum(e.f32("renorm_momentum", 0.99)?))
}

/// `renorm_clipping`: null, or a dict of `rmax`, `rmin` and `dmax` (each a number or null).
fn renorm_clipping(e: &Entry<'_>) -> Result<RenormClipping> {
    let v = &e.config["renorm_clipping"];
    let bad = || {
        e.unsupported(format!(
            "option renorm_clipping must be a dict of numbers under the keys rmax, rmin and \
             dmax, got {}",
            excerpt(v)
        ))
    };
    let map = match v {
        Value::Null => return Ok(RenormClipping::default()),
        Value::Object(map) => map,
        _ => return Err(bad()),
    };
    if map
        .keys()
        .any(|k| !matches!(k.as_str(), "rmax" | "rmin" | "dmax"))
    {
        // Both Kerases: "Received invalid keys for `renorm_clipping` argument".
        return Err(bad());
    }
    let bound = |key: &str| match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n.as_f64().unwrap_or(f64::NAN) as f32)),
        Some(_) => Err(bad()),
    };
    Ok(RenormClipping {
        rmax: bound("rmax")?,
        rmin: bound("rmin")?,
        dmax: bound("dmax")?,
    })
}

fn layer_normalization_from(e: &Entry<'_>, d: Dialect) -> Result<LayerNormalization> {
    let mut axis = axes(e)?;
    if e.config["axis"].is_null() {
        axis = vec![-1];
    }
    // Keras 3's `build` sorts the list as given, negative axes first, and shapes gamma and beta
    // in that order (layer_normalization.py, `build`); tf_keras keeps the order as given.
    if d == Dialect::Keras3 {
        axis.sort_unstable();
    }
    Ok(LayerNormalization::new()
        .with_axes(axis)
        .with_epsilon(e.f32("epsilon", 1e-3)?)
        .with_center(e.bool("center", true)?)
        .with_scale(e.bool("scale", true)?)
        .with_rms_scaling(e.bool("rms_scaling", false)?))
}

fn permute_from(e: &Entry<'_>) -> Result<Permute> {
    let dims = ints(e, "dims")?
        .into_iter()
        .map(usize::try_from)
        .collect::<std::result::Result<Vec<usize>, _>>()
        .map_err(|_| {
            e.unsupported(format!(
                "option dims={} must hold positive integers",
                excerpt(&e.config["dims"])
            ))
        })?;
    Ok(Permute::new(dims))
}

/// A number the layer cannot do without.
fn required_f32(e: &Entry<'_>, key: &str) -> Result<f32> {
    if e.config[key].is_null() {
        return Err(e.unsupported(format!("option {key} is missing")));
    }
    e.f32(key, 0.0)
}

/// A list of integers (`target_shape`, `dims`).
fn ints(e: &Entry<'_>, key: &str) -> Result<Vec<i64>> {
    let v = &e.config[key];
    let bad = || {
        e.unsupported(format!(
            "option {key} must be a list of integers, got {}",
            excerpt(v)
        ))
    };
    v.as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|d| d.as_i64().ok_or_else(bad))
        .collect()
}

/// `axis`, an integer or a list of them; empty when it is missing.
fn axes(e: &Entry<'_>) -> Result<Vec<isize>> {
    let v = &e.config["axis"];
    let one = |a: &Value| {
        a.as_i64()
            .and_then(|a| isize::try_from(a).ok())
            .ok_or_else(|| {
                e.unsupported(format!(
                    "option axis must be an integer or a list of integers, got {}",
                    excerpt(v)
                ))
            })
    };
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// The options of a layer of this family, for Keras 3's config.
pub(super) fn to_config(layer: &dyn Layer) -> Option<Result<Value>> {
    let any: &dyn std::any::Any = layer;
    if let Some(l) = any.downcast_ref::<BatchNormalization>() {
        return Some(Ok(json!({
            "axis": l.axis(),
            "momentum": number(l.momentum()),
            "epsilon": number(l.epsilon()),
            "center": l.center(),
            "scale": l.scale(),
            "renorm": l.renorm(),
            "renorm_clipping": renorm_clipping_config(l),
            "renorm_momentum": number(l.renorm_momentum()),
        })));
    }
    if let Some(l) = any.downcast_ref::<LayerNormalization>() {
        return Some(layer_normalization_config(l));
    }
    if let Some(l) = any.downcast_ref::<Reshape>() {
        return Some(Ok(json!({ "target_shape": l.target_shape() })));
    }
    if let Some(l) = any.downcast_ref::<Permute>() {
        return Some(Ok(json!({ "dims": l.dims() })));
    }
    if let Some(l) = any.downcast_ref::<SpatialDropout1D>() {
        // Keras 3's SpatialDropout1D takes no `trainable` (BaseSpatialDropout.__init__ has
        // rate, seed, name and dtype only): a null here leaves it out of the entry.
        return Some(Ok(json!({ "rate": number(l.rate()), "trainable": null })));
    }
    if let Some(l) = any.downcast_ref::<GaussianNoise>() {
        return Some(Ok(json!({ "stddev": number(l.stddev()) })));
    }
    if let Some(l) = any.downcast_ref::<GaussianDropout>() {
        return Some(Ok(json!({ "rate": number(l.rate()) })));
    }
    any.downcast_ref::<ActivityRegularization>()
        .map(|l| Ok(json!({ "l1": number(l.l1()), "l2": number(l.l2()) })))
}

/// Keras 3's `renorm_clipping`: null without `renorm`, else a dict of the bounds given (`{}`
/// for none, as Keras 3's constructor makes it).
fn renorm_clipping_config(l: &BatchNormalization) -> Value {
    if !l.renorm() {
        return Value::Null;
    }
    let c = l.renorm_clipping();
    let bounds = [("rmax", c.rmax), ("rmin", c.rmin), ("dmax", c.dmax)];
    Value::Object(
        bounds
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), number(v?))))
            .collect(),
    )
}

fn layer_normalization_config(l: &LayerNormalization) -> Result<Value> {
    let axis = l.keras3_axis().ok_or_else(|| {
        unsupported(
            l,
            format!(
                "axis={:?} cannot be written for Keras 3, which sorts the list and would order \
                 gamma and beta otherwise",
                l.axis()
            ),
        )
    })?;
    Ok(json!({
        "axis": match axis.as_slice() {
            [one] => json!(one),
            all => json!(all),
        },
        "epsilon": number(l.epsilon()),
        "center": l.center(),
        "scale": l.scale(),
        "rms_scaling": l.rms_scaling(),
    }))
}
