//! The `.keras` format (Keras 3, and tf_keras 2.13+): a zip archive of `config.json`,
//! `metadata.json` and `model.weights.h5`.
//!
//! In `model.weights.h5` (and in Keras 3's `.weights.h5` files) each top-level layer's weights
//! sit under `layers/<key>`, where the key is the snake-case class name numbered by occurrence
//! (`dense`, `dense_1`, ..., not the layer's name): recurrent layers at `<key>/cell/vars/<i>`,
//! Bidirectional at `<key>/forward_layer/cell/vars/<i>` then `backward_layer/...`,
//! TimeDistributed at `<key>/layer/...`, the others at `<key>/vars/<i>`.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use hdf5_pure::File;
use ndarray::ArrayD;

use crate::functional::Model;
use crate::keras::config::{model_from_config, Dialect, Loaded};
use crate::keras::hdf5::{open, read_weight};
use crate::keras::LoadError;
use crate::layer::Layer;
use crate::layers::bidirectional::Bidirectional;
use crate::layers::multi_head_attention::MultiHeadAttention;
use crate::layers::time_distributed::TimeDistributed;
use crate::sequential::Sequential;

/// The largest member seqnn unpacks: a bound against damaged size fields and zip bombs.
const MAX_MEMBER: u64 = 1 << 32;
/// The largest config.json or metadata.json seqnn reads.
const MAX_JSON: u64 = 64 << 20;
/// How many times its stored size a member may inflate to, plus [`INFLATE_SLACK`]. Keras stores
/// its members uncompressed; a re-zipped archive of real weights deflates by far less than
/// this, and a zip bomb (zeros deflate a thousandfold) is refused before it is unpacked.
pub(crate) const MAX_INFLATE_RATIO: u64 = 32;
/// What any member may inflate to beyond [`MAX_INFLATE_RATIO`] times its stored size.
const INFLATE_SLACK: u64 = 64 << 10;

/// The members of a `.keras` archive that seqnn reads.
pub(crate) struct Archive {
    /// The model config, JSON text whose syntax was checked.
    pub(crate) config: String,
    pub(crate) keras_version: Option<String>,
    pub(crate) weights: File,
}

/// Unpacks a `.keras` archive.
pub(crate) fn read(bytes: &[u8]) -> Result<Archive, LoadError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| LoadError::sourced(format!("not a readable .keras archive ({e})"), e))?;
    let config = member(&mut zip, "config.json", MAX_JSON)?
        .ok_or("the archive has no config.json: it is not a Keras model")?;
    let config = json_text(config, "config.json")?;
    let keras_version = match member(&mut zip, "metadata.json", MAX_JSON)? {
        Some(m) => serde_json::from_slice::<serde_json::Value>(&m)
            .map_err(|e| LoadError::sourced(format!("metadata.json is not JSON ({e})"), e))?
            ["keras_version"]
            .as_str()
            .map(str::to_string),
        None => None,
    };
    let weights = member(&mut zip, "model.weights.h5", MAX_MEMBER)?
        .ok_or("the archive has no model.weights.h5")?;
    let weights = open(weights).map_err(|e| match e {
        LoadError::Sourced(m, s) => LoadError::Sourced(format!("model.weights.h5: {m}"), s),
        other => other,
    })?;
    Ok(Archive {
        config,
        keras_version,
        weights,
    })
}

/// JSON text, its syntax checked without building anything (however deep it nests); `what`
/// names it in errors.
pub(crate) fn json_text(bytes: Vec<u8>, what: &str) -> Result<String, LoadError> {
    let text = String::from_utf8(bytes)
        .map_err(|e| LoadError::sourced(format!("{what} is not UTF-8 text ({e})"), e))?;
    serde_json::from_str::<&serde_json::value::RawValue>(&text)
        .map_err(|e| LoadError::sourced(format!("{what} is not JSON ({e})"), e))?;
    Ok(text)
}

/// One member's bytes, at most `limit`, or `None` when the archive does not have it.
fn member(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, LoadError> {
    let mut file = match zip.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => {
            return Err(LoadError::sourced(
                format!("cannot read {name} in the archive ({e})"),
                e,
            ))
        }
    };
    if file.size() > limit {
        return Err(format!(
            "{name} says it holds {} bytes, more than the {limit} seqnn accepts",
            file.size()
        )
        .into());
    }
    let inflate_limit = file
        .compressed_size()
        .saturating_mul(MAX_INFLATE_RATIO)
        .saturating_add(INFLATE_SLACK);
    if file.size() > inflate_limit {
        return Err(format!(
            "{name} would inflate from {} to {} bytes, more than {MAX_INFLATE_RATIO} times its \
             stored size: seqnn refuses it as a zip bomb",
            file.compressed_size(),
            file.size()
        )
        .into());
    }
    // The declared size bounds what is read, but nothing is reserved from it: a damaged size
    // field then costs only the bytes that are really there.
    let mut out = Vec::new();
    let declared = file.size();
    file.by_ref()
        .take(declared + 1)
        .read_to_end(&mut out)
        .map_err(|e| LoadError::sourced(format!("cannot unpack {name} ({e})"), e))?;
    if out.len() as u64 != declared {
        return Err(format!("{name} is truncated or damaged in the archive").into());
    }
    Ok(Some(out))
}

/// The model of a `.keras` archive, with its weights.
pub(crate) fn load_model(bytes: &[u8]) -> Result<Loaded, LoadError> {
    let archive = read(bytes)?;
    let dialect = Dialect::from_version(archive.keras_version.as_deref());
    let mut model = model_from_config(&archive.config, dialect)?.model;
    match &mut model {
        Loaded::Sequential(m) => {
            if !m.is_built() {
                return Err("the saved model has no input shape, so it was never built".into());
            }
            let w = weights(&archive.weights, m.layers())?;
            m.set_weights(&w)?;
        }
        Loaded::Functional(m) => {
            let w = weights(&archive.weights, m.layers())?;
            m.set_weights(&w)?;
        }
    }
    // Compiled as Keras's load_model returns it, when seqnn can express the configuration.
    let compile = crate::keras::compile::compile_config_of(&archive.config);
    crate::keras::compile::attach(
        &mut model,
        &compile,
        crate::keras::compile::loss_dialect(dialect),
    );
    // With its optimizer's state, as Keras's load_model restores it.
    crate::keras::optimizer_state::restore(
        &mut model,
        &archive.weights,
        crate::keras::optimizer_state::Stored::Vars(dialect),
    )?;
    Ok(model)
}

/// Keras's snake case of a class name: `SimpleRNN` → `simple_rnn`, `LSTM` → `lstm`.
pub(crate) fn snake_case(class: &str) -> String {
    let chars: Vec<char> = class.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower = i > 0 && chars[i - 1].is_lowercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Each layer's key under `layers/`: snake-case class, numbered by occurrence.
pub(crate) fn layer_keys(layers: &[Box<dyn Layer>]) -> Vec<String> {
    let mut used: HashMap<String, usize> = HashMap::new();
    layers
        .iter()
        .map(|l| {
            let base = snake_case(l.class_name());
            let n = used.entry(base.clone()).or_insert(0);
            let key = if *n == 0 {
                base.clone()
            } else {
                format!("{base}_{n}")
            };
            *n += 1;
            key
        })
        .collect()
}

/// The groups of `vars` datasets that hold a layer's weights, relative to its key, in the
/// layer's weight order, with how many weights each holds.
pub(crate) fn var_groups(layer: &dyn Layer) -> Vec<(String, usize)> {
    let any: &dyn std::any::Any = layer;
    if let Some(bi) = any.downcast_ref::<Bidirectional>() {
        let f: &dyn Layer = bi.forward_layer();
        let b: &dyn Layer = bi.backward_layer();
        return [("forward_layer", f), ("backward_layer", b)]
            .into_iter()
            .flat_map(|(attr, l)| {
                var_groups(l)
                    .into_iter()
                    .map(move |(g, n)| (format!("{attr}/{g}"), n))
            })
            .collect();
    }
    let nested = if let Some(m) = any.downcast_ref::<Model>() {
        Some(m.layers())
    } else {
        any.downcast_ref::<Sequential>().map(|s| s.layers())
    };
    if let Some(layers) = nested {
        return layers
            .iter()
            .zip(layer_keys(layers))
            .flat_map(|(l, key)| {
                var_groups(l.as_ref())
                    .into_iter()
                    .map(move |(g, n)| (format!("layers/{key}/{g}"), n))
            })
            .collect();
    }
    if let Some(td) = any.downcast_ref::<TimeDistributed>() {
        return var_groups(td.layer())
            .into_iter()
            .map(|(g, n)| (format!("layer/{g}"), n))
            .collect();
    }
    if let Some(mha) = any.downcast_ref::<MultiHeadAttention>() {
        // Its projections are Dense-like sublayers, in the weights' order (Keras 3's
        // names; tf_keras prefixes each with `_`, which `weights` tries next).
        let per = if mha.use_bias() { 2 } else { 1 };
        let mut parts = vec!["query_dense", "key_dense"];
        if mha.use_gate() {
            parts.push("_gate_dense");
        }
        parts.extend(["value_dense", "output_dense"]);
        return parts
            .into_iter()
            .map(|p| (format!("{p}/vars"), per))
            .collect();
    }
    let group = match layer.class_name() {
        "SimpleRNN" | "LSTM" | "GRU" | "ConvLSTM1D" | "ConvLSTM2D" => "cell/vars",
        _ => "vars",
    };
    vec![(group.to_string(), layer.weight_specs().len())]
}

/// The weights of `layers` from a Keras-3-layout weights file, in the model's order.
pub(crate) fn weights(
    file: &File,
    layers: &[Box<dyn Layer>],
) -> Result<Vec<ArrayD<f32>>, LoadError> {
    let mut out = Vec::new();
    for (layer, key) in layers.iter().zip(layer_keys(layers)) {
        let expected = layer.weight_specs();
        let mut shapes = expected.into_iter().map(|w| w.shape);
        for (group, count) in var_groups(layer.as_ref()) {
            for i in 0..count {
                let shape = shapes.next().ok_or_else(|| {
                    format!(
                        "layer \"{}\" has fewer weights than its parts",
                        layer.name()
                    )
                })?;
                let path = format!("layers/{key}/{group}/{i}");
                let value = match read_weight(file, &path, &shape) {
                    // tf_keras names a MultiHeadAttention's sublayers `_query_dense`, ...
                    Err(e) if layer.class_name() == "MultiHeadAttention" => {
                        let alt = format!("layers/{key}/_{group}/{i}");
                        read_weight(file, &alt, &shape).map_err(|_| e)?
                    }
                    other => other?,
                };
                out.push(value);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_as_keras() {
        for (class, snake) in [
            ("SimpleRNN", "simple_rnn"),
            ("LSTM", "lstm"),
            ("GRU", "gru"),
            ("TimeDistributed", "time_distributed"),
            ("RepeatVector", "repeat_vector"),
            ("Dense", "dense"),
            ("Bidirectional", "bidirectional"),
        ] {
            assert_eq!(snake_case(class), snake);
        }
    }
}
