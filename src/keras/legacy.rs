//! Legacy Keras HDF5 files: full models saved with `model.save("x.h5")` by tf.keras, tf_keras
//! and Keras 3, and weights saved with tf_keras's `save_weights("x.h5")`.
//!
//! The root attribute `model_config` holds the JSON config; the group `model_weights` (or the
//! root, for a weights-only file) lists `layer_names`, each layer's group lists `weight_names`,
//! and each weight is the dataset `<group>/<layer>/<weight name>`. The order comes from these
//! lists, never from HDF5's alphabetical iteration.

use hdf5_pure::File;
use ndarray::ArrayD;

use crate::keras::config::{model_from_config, Described, Dialect, Loaded, StoredLayouts};
use crate::keras::hdf5::{attr_string, attr_strings, attrs, read_weight};
use crate::keras::LoadError;
use crate::layer::Layer;

/// Whether the file is a legacy full model (it has a `model_config` attribute).
pub(crate) fn is_full_model(file: &File) -> bool {
    attrs(file, "/").is_ok_and(|a| a.contains_key("model_config"))
}

/// Whether the file is a legacy weights file (`layer_names` at the root).
pub(crate) fn is_weights_file(file: &File) -> bool {
    attrs(file, "/").is_ok_and(|a| attr_strings(&a, "layer_names").is_some())
}

/// The model a legacy full-model file's config describes, without its weights.
pub(crate) fn described(file: &File) -> Result<Described<Loaded>, LoadError> {
    let root = attrs(file, "/")?;
    let config = attr_string(&root, "model_config")
        .ok_or("the file has no model_config attribute: it is not a saved Keras model")?;
    let config =
        crate::keras::archive::json_text(config.into_bytes(), "the model_config attribute")?;
    let version = attr_string(&root, "keras_version");
    let dialect = Dialect::from_version(version.as_deref());
    Ok(model_from_config(&config, dialect)?)
}

/// The model of a legacy full-model file, with its weights.
pub(crate) fn load_model(file: &File) -> Result<Loaded, LoadError> {
    let Described { mut model, stored } = described(file)?;
    match &mut model {
        Loaded::Sequential(m) => {
            if !m.is_built() {
                return Err("the saved model has no input shape, so it was never built".into());
            }
            let w = weights(file, "model_weights", m.layers(), &stored)?;
            m.set_weights(&w)?;
        }
        Loaded::Functional(m) => {
            let w = weights(file, "model_weights", m.layers(), &stored)?;
            m.set_weights(&w)?;
        }
    }
    // Compiled with the file's training_config, as Keras's load_model returns it.
    let root = attrs(file, "/")?;
    if let Some(text) = attr_string(&root, "training_config") {
        let config: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let version = attr_string(&root, "keras_version");
        let dialect =
            crate::keras::compile::loss_dialect(Dialect::from_version(version.as_deref()));
        crate::keras::compile::attach(&mut model, &config, dialect);
    }
    let version = attr_string(&root, "keras_version");
    crate::keras::optimizer_state::restore(
        &mut model,
        file,
        crate::keras::optimizer_state::Stored::Legacy(Dialect::from_version(version.as_deref())),
    )?;
    Ok(model)
}

/// The weights stored under `group` (`"model_weights"` in a full model, `"/"` in a weights
/// file), in the model's order, each checked against the model's shape for it. Layers are
/// matched in order among those that have weights, as Keras's `load_weights` does.
pub(crate) fn weights(
    file: &File,
    group: &str,
    layers: &[Box<dyn Layer>],
    stored: &StoredLayouts,
) -> Result<Vec<ArrayD<f32>>, LoadError> {
    let group_attrs = attrs(file, group)?;
    let names = attr_strings(&group_attrs, "layer_names")
        .ok_or_else(|| format!("{group} has no layer_names attribute"))?;
    let prefix = if group == "/" {
        String::new()
    } else {
        format!("{group}/")
    };
    let mut saved = Vec::new();
    for name in &names {
        let a = attrs(file, &format!("{prefix}{name}"))?;
        let weight_names = attr_strings(&a, "weight_names").unwrap_or_default();
        if !weight_names.is_empty() {
            saved.push((name.clone(), weight_names));
        }
    }
    let layers: Vec<_> = layers
        .iter()
        .filter(|l| !l.weight_specs().is_empty())
        .collect();
    if layers.len() != saved.len() {
        return Err(format!(
            "the file has weights for {} layer(s), but the model has {} layer(s) with weights",
            saved.len(),
            layers.len()
        )
        .into());
    }
    let mut out = Vec::new();
    for (layer, (name, weight_names)) in layers.into_iter().zip(saved) {
        let expected = layer.weight_specs();
        if expected.len() != weight_names.len() {
            return Err(format!(
                "layer {name} has {} weight(s) in the file, but layer \"{}\" ({}) has {}",
                weight_names.len(),
                layer.name(),
                layer.class_name(),
                expected.len()
            )
            .into());
        }
        let layout = stored.get(layer.name());
        let shapes = match layout {
            Some(l) => l.stored_shapes(&expected),
            None => expected.iter().map(|w| w.shape.clone()).collect(),
        };
        // Keras stores a layer's `_legacy_weights`: its trainable weights, then the others.
        // Inside a nested model that moves, say, a BatchNormalization's moving statistics
        // after every trainable weight of the model; file weight `j` is spec `order[j]`.
        let trainable = layer.trainable();
        let order: Vec<usize> = (0..expected.len())
            .filter(|&i| trainable && expected[i].trainable)
            .chain((0..expected.len()).filter(|&i| !(trainable && expected[i].trainable)))
            .collect();
        let mut slots: Vec<Option<ArrayD<f32>>> = vec![None; shapes.len()];
        for (&i, weight_name) in order.iter().zip(&weight_names) {
            slots[i] = Some(read_weight(
                file,
                &format!("{prefix}{name}/{weight_name}"),
                &shapes[i],
            )?);
        }
        let values: Vec<ArrayD<f32>> = slots.into_iter().flatten().collect();
        out.extend(match layout {
            Some(l) => l.convert(values),
            None => values,
        });
    }
    Ok(out)
}
