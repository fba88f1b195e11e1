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
use crate::functional::Model;
use crate::functional::TensorRef;
use crate::keras::archive::{layer_keys, snake_case};
use crate::keras::config::{dims, layer_entry};
use crate::layer::Layer;
use crate::layers::additive_attention::AdditiveAttention;
use crate::layers::attention::Attention;
use crate::layers::bidirectional::Bidirectional;
use crate::layers::multi_head_attention::MultiHeadAttention;
use crate::layers::op::{Op, OpKind, Operand};
use crate::layers::time_distributed::TimeDistributed;
use crate::sequential::Sequential;
use crate::shape::Shape;
use crate::train::optimizer::{Optimizer, VariableValue};

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
    let optimizer = model.compiled().map(|c| c.optimizer());
    archive(
        &config,
        weights_h5(model.name(), model.layers(), optimizer)?,
    )
}

/// The bytes of a `.keras` archive for a Functional `model`.
pub(crate) fn functional_archive(model: &Model) -> Result<Vec<u8>> {
    let config = functional_config(model)?;
    let optimizer = model.compiled().map(|c| c.optimizer());
    archive(
        &config,
        weights_h5(model.name(), model.layers(), optimizer)?,
    )
}

/// The archive of a config and its weights file.
fn archive(config: &Value, weights: Vec<u8>) -> Result<Vec<u8>> {
    let metadata = json!({
        "keras_version": KERAS_FORMAT_VERSION,
        "saved_by": concat!("seqnn ", env!("CARGO_PKG_VERSION")),
    });
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
            "name": model.input_name(),
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
        "compile_config": crate::keras::compile::compile_config_json(model.compiled(), &[model.name().to_string()]),
    }))
}

/// A nested Sequential's `config` object, for a Functional model's file.
pub(crate) fn nested_sequential_config(model: &Sequential) -> Result<Value> {
    let input = model.input_shape().ok_or_else(|| Error::NotBuilt {
        name: model.name().to_string(),
    })?;
    Ok(model_config(model, &input)?["config"].take())
}

/// Keras 3's config of a Functional model: every layer with its calls (`inbound_nodes`), the
/// model's inputs and outputs as `[layer, node, tensor]`.
pub(crate) fn functional_config(model: &Model) -> Result<Value> {
    let nodes = model.nodes();
    let layers = model.layers();
    // Each node's index among its layer's nodes in this model, as Keras 3 re-indexes them.
    let mut per_layer: Vec<Vec<usize>> = vec![Vec::new(); layers.len()];
    for (i, n) in nodes.iter().enumerate() {
        per_layer[n.layer].push(i);
    }
    for list in per_layer.iter_mut() {
        list.sort_by_key(|&i| nodes[i].node_index);
    }
    let mut own_index = vec![0; nodes.len()];
    for list in &per_layer {
        for (k, &i) in list.iter().enumerate() {
            own_index[i] = k;
        }
    }
    let keras_tensor = |t: TensorRef| -> Value {
        let src = &nodes[t.node];
        json!({
            "class_name": "__keras_tensor__",
            "config": {
                "shape": dims(&src.outputs[t.index]),
                "dtype": "float32",
                "keras_history": [layers[src.layer].name(), own_index[t.node], t.index],
            },
        })
    };
    let mut entries = Vec::with_capacity(layers.len());
    for (li, layer) in layers.iter().enumerate() {
        let mut entry = layer_entry(layer.as_ref())?;
        let mut inbound = Vec::new();
        for &ni in &per_layer[li] {
            let node = &nodes[ni];
            if node.inputs.is_empty() {
                continue;
            }
            let tensors: Vec<Value> = node.inputs[..node.data]
                .iter()
                .map(|&t| keras_tensor(t))
                .collect();
            let mut call = call_arguments(layer.as_ref(), tensors);
            if let Some(slots) = &node.masks {
                let masks: Vec<Value> = slots
                    .iter()
                    .map(|s| s.map_or(Value::Null, |i| keras_tensor(node.inputs[i])))
                    .collect();
                call["kwargs"]["mask"] = if masks.len() == 1 {
                    masks.into_iter().next().expect("one")
                } else {
                    Value::Array(masks)
                };
            }
            inbound.push(call);
        }
        entry["name"] = json!(layer.name());
        entry["inbound_nodes"] = Value::Array(inbound);
        entries.push(entry);
    }
    // A nested Functional's first node is its own graph's, so the model's references to it
    // count from 1 (Keras 3's `get_config`).
    let io_ref = |t: TensorRef| -> Value {
        let src = &nodes[t.node];
        let layer = layers[src.layer].as_ref();
        let any: &dyn std::any::Any = layer;
        let offset = usize::from(any.is::<Model>());
        json!([layer.name(), own_index[t.node] + offset, t.index])
    };
    let list = |refs: Vec<Value>| -> Value {
        if refs.len() == 1 {
            refs.into_iter().next().expect("one")
        } else {
            Value::Array(refs)
        }
    };
    let inputs = model
        .input_nodes()
        .iter()
        .map(|&n| io_ref(TensorRef { node: n, index: 0 }))
        .collect();
    let outputs = model.output_refs().iter().map(|&t| io_ref(t)).collect();
    Ok(json!({
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": model.name(),
            "trainable": true,
            "layers": entries,
            "input_layers": list(inputs),
            "output_layers": list(outputs),
        },
        "registered_name": "Functional",
        "build_config": { "input_shape": null },
        "compile_config": crate::keras::compile::compile_config_json(
            model.compiled(),
            &model.output_names(),
        ),
    }))
}

/// How Keras 3 passes a node's input tensors to the layer's `call`: a recurrent layer's
/// initial states by keyword; several inputs of another layer as one list.
fn call_arguments(layer: &dyn Layer, mut tensors: Vec<Value>) -> Value {
    let any: &dyn std::any::Any = layer;
    if let Some(op) = any.downcast_ref::<Op>() {
        // An operation's operands, tensors and constants, in its order.
        let operands: Vec<Value> = op
            .operands(tensors.len())
            .iter()
            .map(|o| match *o {
                Operand::Input(i) => tensors.get(i).cloned().unwrap_or(Value::Null),
                Operand::Scalar(v) => json!(v),
            })
            .collect();
        let args = match op.kind() {
            OpKind::Concatenate { .. } => vec![Value::Array(operands)],
            _ => operands,
        };
        return json!({ "args": args, "kwargs": {} });
    }
    if let Some(call) = attention_call(layer, &mut tensors) {
        return call;
    }
    let recurrent = matches!(
        layer.class_name(),
        "SimpleRNN" | "LSTM" | "GRU" | "Bidirectional"
    );
    if tensors.len() == 1 {
        json!({ "args": tensors, "kwargs": {} })
    } else if recurrent {
        let states = tensors.split_off(1);
        json!({ "args": tensors, "kwargs": { "initial_state": states } })
    } else {
        json!({ "args": [tensors], "kwargs": {} })
    }
}

/// An attention layer's call as Keras 3 makes it: MultiHeadAttention's query, value and key
/// positional and its attention mask by keyword; the others' inputs as one list; the call
/// options seqnn keeps on the layer as keywords.
fn attention_call(layer: &dyn Layer, tensors: &mut Vec<Value>) -> Option<Value> {
    let any: &dyn std::any::Any = layer;
    let (causal, scores) = if let Some(l) = any.downcast_ref::<MultiHeadAttention>() {
        (l.use_causal_mask(), l.return_attention_scores())
    } else if let Some(l) = any.downcast_ref::<Attention>() {
        (l.use_causal_mask(), l.return_attention_scores())
    } else if let Some(l) = any.downcast_ref::<AdditiveAttention>() {
        (l.use_causal_mask(), l.return_attention_scores())
    } else {
        return None;
    };
    let mut kwargs = serde_json::Map::new();
    if causal {
        kwargs.insert("use_causal_mask".into(), json!(true));
    }
    if scores {
        kwargs.insert("return_attention_scores".into(), json!(true));
    }
    let args = match any.downcast_ref::<MultiHeadAttention>() {
        Some(mha) => {
            if mha.attention_mask_input() {
                if let Some(m) = tensors.pop() {
                    kwargs.insert("attention_mask".into(), m);
                }
            }
            std::mem::take(tensors)
        }
        None => vec![Value::Array(std::mem::take(tensors))],
    };
    Some(json!({ "args": args, "kwargs": kwargs }))
}

/// The values of a dataset.
enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A group of the weights file under construction: attributes, datasets and subgroups.
#[derive(Default)]
struct Node {
    name_attr: Option<String>,
    datasets: Vec<(String, Data, Vec<u64>)>,
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
            let ds = builder.create_dataset(&name);
            match &data {
                Data::F32(v) => ds.with_f32_data(v),
                Data::I64(v) => ds.with_i64_data(v),
            }
            .with_shape(&shape);
        }
        for (name, child) in self.children {
            let mut g = builder.create_group(&name);
            child.build(&mut g);
            builder.add_group(g.finish());
        }
    }
}

/// Adds the `layers/<key>` groups of `layers` under `node`.
fn layers_vars(node: &mut Node, layers: &[Box<dyn Layer>]) {
    for (layer, key) in layers.iter().zip(layer_keys(layers)) {
        layer_vars(node.at(&format!("layers/{key}")), layer.as_ref());
    }
}

/// Adds one layer's `vars` groups (and its own, empty, as Keras 3 writes it) under `node`.
fn layer_vars(node: &mut Node, layer: &dyn Layer) {
    let any: &dyn std::any::Any = layer;
    node.at("vars").name_attr = Some(layer.name().to_string());
    if let Some(m) = any.downcast_ref::<Model>() {
        layers_vars(node, m.layers());
        return;
    }
    if let Some(s) = any.downcast_ref::<Sequential>() {
        layers_vars(node, s.layers());
        return;
    }
    if let Some(bi) = any.downcast_ref::<Bidirectional>() {
        layer_vars(node.at("forward_layer"), bi.forward_layer());
        layer_vars(node.at("backward_layer"), bi.backward_layer());
        return;
    }
    if let Some(td) = any.downcast_ref::<TimeDistributed>() {
        layer_vars(node.at("layer"), td.layer());
        return;
    }
    if any.is::<MultiHeadAttention>() {
        // Each projection in its own sublayer's group, as Keras 3 writes them.
        let weights = layer.weights();
        let mut it = weights.iter();
        for (group, count) in crate::keras::archive::var_groups(layer) {
            let g = node.at(&group);
            for i in 0..count {
                if let Some(w) = it.next() {
                    let shape = w.shape().iter().map(|&d| d as u64).collect();
                    g.datasets
                        .push((i.to_string(), Data::F32(w.iter().copied().collect()), shape));
                }
            }
        }
        return;
    }
    let group = match layer.class_name() {
        "SimpleRNN" | "LSTM" | "GRU" | "ConvLSTM1D" | "ConvLSTM2D" => {
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
            .push((i.to_string(), Data::F32(w.iter().copied().collect()), shape));
    }
}

/// Adds `optimizer/vars/<i>`, one dataset per optimizer variable in Keras 3's order, as Keras
/// 3's `save_own_variables` writes them (see [`super::optimizer_state`]).
fn optimizer_vars(node: &mut Node, optimizer: &dyn Optimizer) {
    let vars = node.at("optimizer/vars");
    vars.name_attr = Some(optimizer.name().to_string());
    for (i, v) in optimizer.variables().into_iter().enumerate() {
        let (data, shape) = match v.value {
            VariableValue::Int64(n) => (Data::I64(vec![n]), Vec::new()),
            VariableValue::Float32(a) => {
                let shape = a.shape().iter().map(|&d| d as u64).collect();
                (Data::F32(a.iter().copied().collect()), shape)
            }
        };
        vars.datasets.push((i.to_string(), data, shape));
    }
}

/// `model.weights.h5`: the layers' weights and, for a compiled model, its optimizer's state;
/// also Keras 3's `.weights.h5` file (`model.save_weights`).
pub(crate) fn weights_h5(
    name: &str,
    layers: &[Box<dyn Layer>],
    optimizer: Option<&dyn Optimizer>,
) -> Result<Vec<u8>> {
    let mut root = Node::default();
    root.at("vars").name_attr = Some(name.to_string());
    layers_vars(&mut root, layers);
    if let Some(optimizer) = optimizer {
        optimizer_vars(&mut root, optimizer);
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
