//! Writing a [`Sequential`] as a Keras 3 `.keras` archive that `keras.models.load_model` opens.
//!
//! The config is Keras 3's dialect (an `InputLayer` with `batch_shape`, `build_config` on every
//! layer); the weights go where Keras 3 writes them (see [`super::archive`]), with the `name`
//! attributes Keras 3 puts on each `vars` group.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};

use hdf5_pure::{AttrValue, FileBuilder};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::keras::archive::{layer_keys, snake_case};
use crate::keras::config::{dims, layer_entry};
use crate::layer::Layer;
use crate::layers::bidirectional::Bidirectional;
use crate::layers::time_distributed::TimeDistributed;
use crate::sequential::Sequential;
use crate::shape::Shape;

/// The Keras version whose format this writer emits, checked by loading its output there.
pub(crate) const KERAS_FORMAT_VERSION: &str = "3.15.1";

/// The bytes of a `.keras` archive for `model`.
pub(crate) fn keras_archive(model: &Sequential) -> Result<Vec<u8>> {
    let input = model.input_shape().ok_or_else(|| Error::NotBuilt {
        name: model.name().to_string(),
    })?;
    if !model.is_built() {
        return Err(Error::NotBuilt {
            name: model.name().to_string(),
        });
    }
    let config = model_config(model, &input)?;
    let metadata = json!({
        "keras_version": KERAS_FORMAT_VERSION,
        "saved_by": concat!("seqnn ", env!("CARGO_PKG_VERSION")),
    });
    let weights = weights_h5(model)?;

    let mut out = Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let members: [(&str, Vec<u8>); 3] = [
        ("metadata.json", metadata.to_string().into_bytes()),
        ("config.json", config.to_string().into_bytes()),
        ("model.weights.h5", weights),
    ];
    for (name, bytes) in members {
        zip.start_file(name, stored)
            .and_then(|_| zip.write_all(&bytes).map_err(Into::into))
            .map_err(|e| io_error(format!("cannot write {name} into the archive ({e})")))?;
    }
    zip.finish()
        .map_err(|e| io_error(format!("cannot finish the archive ({e})")))?;
    Ok(out.into_inner())
}

/// A problem writing the archive; the caller adds the path.
fn io_error(message: String) -> Error {
    Error::file("", message)
}

pub(crate) fn model_config(model: &Sequential, input: &Shape) -> Result<Value> {
    let mut layers = vec![json!({
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {
            "batch_shape": dims(input),
            "dtype": "float32",
            "sparse": false,
            "name": "input_layer",
        },
        "registered_name": null,
    })];
    let mut shape = input.clone();
    for layer in model.layers() {
        let mut entry = layer_entry(layer.as_ref())?;
        entry["build_config"] = json!({ "input_shape": dims(&shape) });
        shape = layer
            .compute_output_shape(std::slice::from_ref(&shape))?
            .swap_remove(0);
        layers.push(entry);
    }
    Ok(json!({
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": model.name(),
            "trainable": true,
            "dtype": "float32",
            "layers": layers,
        },
        "registered_name": null,
        "build_config": { "input_shape": dims(input) },
        "compile_config": null,
    }))
}

/// A group of the weights file under construction: attributes, datasets and subgroups.
#[derive(Default)]
struct Node {
    name_attr: Option<String>,
    datasets: Vec<(String, Vec<f32>, Vec<u64>)>,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn at(&mut self, path: &str) -> &mut Node {
        path.split('/')
            .filter(|p| !p.is_empty())
            .fold(self, |node, part| {
                node.children.entry(part.to_string()).or_default()
            })
    }

    fn build(self, builder: &mut hdf5_pure::GroupBuilder) {
        if let Some(name) = self.name_attr {
            builder.set_attr("name", AttrValue::String(name));
        }
        for (name, data, shape) in self.datasets {
            builder
                .create_dataset(&name)
                .with_f32_data(&data)
                .with_shape(&shape);
        }
        for (name, child) in self.children {
            let mut g = builder.create_group(&name);
            child.build(&mut g);
            builder.add_group(g.finish());
        }
    }
}

/// Adds one layer's `vars` groups (and its own, empty, as Keras 3 writes it) under `node`.
fn layer_vars(node: &mut Node, layer: &dyn Layer) {
    let any: &dyn std::any::Any = layer;
    node.at("vars").name_attr = Some(layer.name().to_string());
    if let Some(bi) = any.downcast_ref::<Bidirectional>() {
        layer_vars(node.at("forward_layer"), bi.forward_layer());
        layer_vars(node.at("backward_layer"), bi.backward_layer());
        return;
    }
    if let Some(td) = any.downcast_ref::<TimeDistributed>() {
        layer_vars(node.at("layer"), td.layer());
        return;
    }
    let group = match layer.class_name() {
        "SimpleRNN" | "LSTM" | "GRU" => {
            let cell = node.at("cell/vars");
            cell.name_attr = Some(format!("{}_cell", snake_case(layer.class_name())));
            cell
        }
        _ => node.at("vars"),
    };
    for (i, w) in layer.weights().iter().enumerate() {
        let shape = w.shape().iter().map(|&d| d as u64).collect();
        group
            .datasets
            .push((i.to_string(), w.iter().copied().collect(), shape));
    }
}

fn weights_h5(model: &Sequential) -> Result<Vec<u8>> {
    let mut root = Node::default();
    root.at("vars").name_attr = Some(model.name().to_string());
    for (layer, key) in model.layers().iter().zip(layer_keys(model)) {
        layer_vars(root.at(&format!("layers/{key}")), layer.as_ref());
    }
    let mut builder = FileBuilder::new();
    for (name, child) in root.children {
        let mut g = builder.create_group(&name);
        child.build(&mut g);
        builder.add_group(g.finish());
    }
    builder
        .finish()
        .map_err(|e| io_error(format!("cannot write model.weights.h5 ({e})")))
}
