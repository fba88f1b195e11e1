//! Functional model configs (`keras.Model(inputs, outputs)`, classes `Functional` and, before
//! TF 2.4, `Model`), and models nested as layers of other models.
//!
//! A Functional config lists its layers, each with its `inbound_nodes`: the calls of the layer,
//! each naming the tensors it was called on as `[layer, node index, tensor index]`. The two
//! dialects write a call differently:
//! - tf_keras (and tf.keras back to 2.0): a list of `[layer, node, tensor, kwargs]`, one per
//!   input, kwargs repeated on each; tensors inside kwargs are `[layer, node, tensor]` lists
//!   (tf_keras `functional.py`, `reconstruct_from_config`);
//! - Keras 3: `{"args": [...], "kwargs": {...}}`, each tensor a `__keras_tensor__` object with
//!   its `keras_history` (Keras 3 `functional.py`, `deserialize_node`).
//!
//! The graph is rebuilt as Keras rebuilds it: every layer is made first, then each layer's
//! calls are made in their order, each once the tensors it reads exist. Node indices count a
//! layer's calls within this model, except that tf_keras counts a nested model's from 1 (its
//! first node links its own inputs to its outputs: `_should_skip_first_node`), and Keras 3 does
//! so only in `input_layers` and `output_layers`, and only for a nested Functional.
//!
//! No layer draws weights here: the file gives them once the graph is whole.

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::Value;

use super::{excerpt, fields, layer_from, malformed, value, Dialect, Entry, StoredLayouts};
use crate::error::{Error, Result};
use crate::functional::{Input, Model, SharedLayer, Tensor};
use crate::layer::Layer;
use crate::layers::input_layer::InputLayer;
use crate::layers::op::{Op, Operand};

/// The model classes whose configs hold a graph of layers.
pub(crate) fn is_functional_class(class: &str) -> bool {
    matches!(class, "Functional" | "Model")
}

/// A tensor a call reads, as the config names it.
#[derive(Debug, Clone)]
struct Ref {
    layer: String,
    node: usize,
    tensor: usize,
}

/// One call of a layer: the tensors it reads, in seqnn's input order (the positional
/// arguments flattened, then `initial_state`, then `value` and `key`), and its explicit masks.
#[derive(Debug, Clone, Default)]
struct Call {
    inputs: Vec<Ref>,
    /// The `mask=` of the call, one per input: `None` when the masks come with the inputs.
    masks: Option<Vec<Option<Ref>>>,
    /// The positional arguments in order, tensors and constants (an operation's operands).
    operands: Vec<Operand>,
    /// Call arguments that are options of seqnn's layer (`use_causal_mask=True`, ...).
    options: Vec<&'static str>,
}

/// A layer of the graph being rebuilt.
struct Made {
    name: String,
    kind: Kind,
    /// The calls still to make, in their order.
    calls: std::collections::VecDeque<Call>,
    /// How many calls the config lists (node indices beyond are an error).
    listed: usize,
    /// The outputs of each call made so far.
    outputs: Vec<Vec<Tensor>>,
    /// What the config adds to this layer's node indices in calls, and in the model's inputs
    /// and outputs.
    offset_calls: usize,
    offset_io: usize,
}

enum Kind {
    /// An InputLayer: its one tensor is its node 0's.
    Input,
    Layer(SharedLayer),
}

/// A Functional model from its config object's fields (`name`, `layers`, `input_layers`,
/// `output_layers`), every layer built for its inputs and none given weights.
pub(crate) fn from_fields(
    config: &HashMap<String, &RawValue>,
    dialect: Dialect,
    stored: &mut StoredLayouts,
) -> Result<Model> {
    let name = value(config, "name")?
        .as_str()
        .unwrap_or("model")
        .to_string();
    let layers_raw = config
        .get("layers")
        .map(|r| r.get())
        .ok_or_else(|| malformed(format!("the Functional config of {name} has no layers")))?;
    let entries: Vec<&RawValue> = serde_json::from_str(layers_raw).map_err(|_| {
        malformed(format!(
            "the layers of the Functional config of {name} are not a list"
        ))
    })?;

    // Every layer, made from its entry (parsed one at a time) with its calls.
    let mut made: Vec<Made> = Vec::with_capacity(entries.len());
    let mut index: HashMap<String, usize> = HashMap::with_capacity(entries.len());
    for raw in entries {
        let v: Value = serde_json::from_str(raw.get())
            .map_err(|e| malformed(format!("a layer entry is not valid JSON ({e})")))?;
        let m = make(&v, dialect, stored)?;
        if index.insert(m.name.clone(), made.len()).is_some() {
            return Err(Error::InvalidArgument {
                layer: name,
                message: format!(
                    "The name \"{}\" is used 2 times in the model. All layer names should be \
                     unique.",
                    m.name
                ),
            });
        }
        made.push(m);
    }

    // The calls, each once what it reads exists.
    for start in 0..made.len() {
        while !made[start].calls.is_empty() {
            run_until(&mut made, &index, start, &name)?;
        }
    }

    let inputs = tensors(config, "input_layers", &made, &index, &name)?;
    let outputs = tensors(config, "output_layers", &made, &index, &name)?;
    Model::named_taking_layers(name, &inputs, &outputs)
}

/// Makes calls (of this layer and whatever they read) until `start` has made its next call.
/// Iterative, so that a chain of any length fits on the stack.
fn run_until(
    made: &mut [Made],
    index: &HashMap<String, usize>,
    start: usize,
    model: &str,
) -> Result<()> {
    // Each entry: a layer, and the count of its calls that must be made before it is popped.
    let target = made[start].outputs.len() + 1;
    let mut stack: Vec<(usize, usize)> = vec![(start, target)];
    let mut waiting: Vec<bool> = Vec::new();
    while let Some(&(layer, until)) = stack.last() {
        if made[layer].outputs.len() >= until {
            stack.pop();
            if let Some(w) = waiting.get_mut(layer) {
                *w = false;
            }
            continue;
        }
        let Some(call) = made[layer].calls.front() else {
            return Err(disconnected(model, &made[layer].name, until - 1));
        };
        // The first tensor this call reads that does not exist yet.
        let mut missing = None;
        let masks = call.masks.iter().flatten().flatten();
        for r in call.inputs.iter().chain(masks) {
            let &source = index.get(&r.layer).ok_or_else(|| {
                malformed(format!(
                    "layer {} is called on a tensor of layer {}, which the model does not have",
                    made[layer].name, r.layer
                ))
            })?;
            let node = node_index(&made[source], r.node, false, model)?;
            if node >= made[source].outputs.len() {
                missing = Some((source, node));
                break;
            }
        }
        match missing {
            Some((source, node)) => {
                if waiting.len() < made.len() {
                    waiting.resize(made.len(), false);
                }
                waiting[layer] = true;
                if waiting[source] {
                    return Err(Error::file(
                        "",
                        format!(
                            "Invalid Functional model configuration of {model}: the graph has a \
                             loop through layer {}",
                            made[source].name
                        ),
                    ));
                }
                stack.push((source, node + 1));
            }
            None => {
                let call = made[layer].calls.pop_front().expect("the call is there");
                let resolve = |r: &Ref| -> Result<&Tensor> {
                    let source = made.get(index[&r.layer]).expect("an index of made");
                    let node = node_index(source, r.node, false, model)?;
                    tensor(source, node, r.tensor)
                };
                let inputs: Vec<&Tensor> =
                    call.inputs.iter().map(resolve).collect::<Result<_>>()?;
                let masks: Option<Vec<Option<&Tensor>>> = call
                    .masks
                    .as_ref()
                    .map(|ms| {
                        ms.iter()
                            .map(|m| m.as_ref().map(resolve).transpose())
                            .collect::<Result<Vec<_>>>()
                    })
                    .transpose()?;
                let outputs = match &made[layer].kind {
                    Kind::Layer(shared) => {
                        shared.apply_without_weights(&inputs, masks.as_deref())?
                    }
                    Kind::Input => {
                        return Err(malformed(format!(
                            "the InputLayer {} has inbound nodes",
                            made[layer].name
                        )))
                    }
                };
                made[layer].outputs.push(outputs);
            }
        }
    }
    Ok(())
}

/// The node a config index names, once this model's offsets are taken off.
fn node_index(m: &Made, config_index: usize, io: bool, model: &str) -> Result<usize> {
    if let Kind::Input = m.kind {
        // tf_keras: an InputLayer's tensor is always its node 0's.
        return Ok(0);
    }
    let offset = if io { m.offset_io } else { m.offset_calls };
    let node = config_index.checked_sub(offset);
    match node {
        Some(n) if n < m.listed => Ok(n),
        _ => Err(disconnected(model, &m.name, config_index)),
    }
}

fn disconnected(model: &str, layer: &str, node: usize) -> Error {
    Error::file(
        "",
        format!(
            "Invalid Functional model configuration of {model}: layer {layer} has no node \
             {node} (the graph either has loops or disconnected nodes)"
        ),
    )
}

/// Output `index` of a made node.
fn tensor(m: &Made, node: usize, index: usize) -> Result<&Tensor> {
    let outputs = &m.outputs[node];
    outputs.get(index).ok_or_else(|| {
        malformed(format!(
            "layer {} has {} output(s) at node {node}, and the config reads output {index}",
            m.name,
            outputs.len()
        ))
    })
}

/// A layer (or input) from its entry, with its calls.
fn make(v: &Value, dialect: Dialect, stored: &mut StoredLayouts) -> Result<Made> {
    let entry = Entry::new(v)?;
    if let Some(layout) = super::recurrent::stored_layout(&entry) {
        stored.insert(entry.name.clone(), layout);
    }
    let name = entry.name.clone();
    let nodes = match &v["inbound_nodes"] {
        Value::Null => Vec::new(),
        Value::Array(a) => a.clone(),
        other => {
            return Err(malformed(format!(
                "the inbound_nodes of {name} are not a list: {}",
                excerpt(other)
            )))
        }
    };
    if entry.class == "InputLayer" {
        let mut layer = input_layer(&entry, dialect)?;
        layer.set_name(name.clone());
        return Ok(Made {
            name,
            kind: Kind::Input,
            calls: Default::default(),
            listed: 1,
            outputs: vec![vec![Input::from_layer(layer)]],
            offset_calls: 0,
            offset_io: 0,
        });
    }
    let mut layer = layer_from(&entry, dialect)?;
    let calls = nodes
        .iter()
        .map(|n| call(&entry, n, dialect))
        .collect::<Result<std::collections::VecDeque<_>>>()?;
    // Call arguments that are layer options: the same in every call.
    if let Some(first) = calls.front() {
        if calls.iter().any(|c| c.options != first.options) {
            return Err(entry.unsupported(
                "the layer is called with different options (use_causal_mask, \
                 return_attention_scores, attention_mask) in different nodes",
            ));
        }
        for option in &first.options {
            layer = super::attention::call_option(layer, option).unwrap_or_else(|| {
                Err(entry.unsupported(format!(
                    "the layer is called with {option}, which it does not take"
                )))
            })?;
        }
    }
    // An operation's constants are in its calls' arguments: one pattern for all of them.
    let any: &mut dyn std::any::Any = layer.as_mut();
    if let Some(op) = any.downcast_mut::<Op>() {
        if let Some(first) = calls.front() {
            if calls.iter().any(|c| c.operands != first.operands) {
                return Err(entry.unsupported(
                    "the operation is called with different constants in different nodes",
                ));
            }
            *op = op.clone().with_operands(first.operands.clone());
        }
    }
    let nested_functional = is_functional_class(entry.class);
    // tf_keras's _should_skip_first_node: a Functional, or a Sequential that starts with an
    // InputLayer, counts its calls from 1.
    let skips_first = nested_functional
        || (entry.class == "Sequential"
            && entry.config["layers"]
                .get(0)
                .is_some_and(|l| l["class_name"] == "InputLayer"));
    let (offset_calls, offset_io) = match dialect {
        Dialect::Keras2 => (skips_first as usize, skips_first as usize),
        Dialect::Keras3 => (0, nested_functional as usize),
    };
    Ok(Made {
        name,
        kind: Kind::Layer(SharedLayer::from_boxed(layer)),
        listed: calls.len(),
        calls,
        outputs: Vec::new(),
        offset_calls,
        offset_io,
    })
}

/// An InputLayer: its dtype may be an integer one (ids for an Embedding), which seqnn reads
/// as float32 as Keras casts them.
fn input_layer(e: &Entry<'_>, _dialect: Dialect) -> Result<InputLayer> {
    e.require("sparse", |v| v == &Value::Bool(false), "sparse inputs")?;
    e.require("ragged", |v| v == &Value::Bool(false), "ragged inputs")?;
    let shape = e
        .batch_shape()?
        .ok_or_else(|| e.unsupported("an InputLayer without batch_shape or batch_input_shape"))?;
    let mut layer = InputLayer::new(shape);
    layer.set_trainable(e.bool("trainable", true)?);
    Ok(layer)
}

/// One call (an entry of `inbound_nodes`) in either dialect.
fn call(e: &Entry<'_>, node: &Value, dialect: Dialect) -> Result<Call> {
    let mut c = Call::default();
    let op = super::ops::is_op(e);
    match node {
        // tf_keras: [[layer, node, tensor, kwargs], ...], possibly nested.
        Value::Array(_) => {
            let mut leaves = Vec::new();
            legacy_leaves(node, &mut leaves);
            let mut kwargs = None;
            for leaf in leaves {
                let a = leaf.as_array().expect("a leaf is a list");
                if a.first().and_then(Value::as_str) == Some("_CONSTANT_VALUE") {
                    return Err(e.unsupported(format!(
                        "the layer is called on a constant ({}), which seqnn cannot load",
                        excerpt(leaf)
                    )));
                }
                c.operands.push(Operand::Input(c.inputs.len()));
                c.inputs.push(legacy_ref(e, leaf)?);
                if let Some(k) = a.get(3) {
                    kwargs = Some(k);
                }
            }
            if let Some(k) = kwargs {
                call_kwargs(e, k, &mut c, Dialect::Keras2)?;
            }
        }
        // Keras 3: {"args": [...], "kwargs": {...}}.
        Value::Object(o) => {
            if let Some(args) = o.get("args") {
                if op {
                    operands(e, args, &mut c)?;
                } else {
                    keras3_tensors(e, args, &mut c.inputs, "a positional argument")?;
                }
            }
            if let Some(k) = o.get("kwargs") {
                call_kwargs(e, k, &mut c, Dialect::Keras3)?;
            }
            if c.masks.is_none() && is_recurrent(e.class) && tensor_arguments(o) > 1 {
                // Keras 3 gives a call the mask of its input only when the call has one tensor
                // argument (Layer.__call__, "Populate mask argument(s)"): a recurrent layer
                // called with initial_state runs unmasked there.
                c.masks = Some(vec![None; c.inputs.len()]);
            }
        }
        other => {
            return Err(malformed(format!(
                "a node of {} is neither a list nor an object: {}",
                e.name,
                excerpt(other)
            )))
        }
    }
    if c.inputs.is_empty() {
        return Err(malformed(format!(
            "a node of {} is called on no tensor",
            e.name
        )));
    }
    let _ = dialect;
    Ok(c)
}

/// An operation's positional arguments: tensors (in lists too) and scalar constants.
fn operands(e: &Entry<'_>, args: &Value, c: &mut Call) -> Result<()> {
    match args {
        Value::Array(a) => a.iter().try_for_each(|x| operands(e, x, c)),
        Value::Number(n) => {
            c.operands
                .push(Operand::Scalar(n.as_f64().unwrap_or(f64::NAN) as f32));
            Ok(())
        }
        Value::Bool(b) => {
            c.operands.push(Operand::Scalar(if *b { 1.0 } else { 0.0 }));
            Ok(())
        }
        other => {
            let mut refs = Vec::new();
            keras3_tensors(e, other, &mut refs, "an operand")?;
            for r in refs {
                c.operands.push(Operand::Input(c.inputs.len()));
                c.inputs.push(r);
            }
            Ok(())
        }
    }
}

/// The recurrent layer classes, whose call takes a `mask`.
fn is_recurrent(class: &str) -> bool {
    matches!(
        class,
        "SimpleRNN" | "LSTM" | "GRU" | "Bidirectional" | "ConvLSTM1D" | "ConvLSTM2D"
    )
}

/// How many of a Keras 3 call's arguments (positional, and keyword other than `mask`) hold
/// tensors: a list of tensors is one argument.
fn tensor_arguments(call: &serde_json::Map<String, Value>) -> usize {
    fn has_tensor(v: &Value) -> bool {
        match v {
            Value::Object(o) => {
                o.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__")
                    || o.values().any(has_tensor)
            }
            Value::Array(a) => a.iter().any(has_tensor),
            _ => false,
        }
    }
    let positional = call
        .get("args")
        .and_then(Value::as_array)
        .map_or(0, |a| a.iter().filter(|v| has_tensor(v)).count());
    let keyword = call
        .get("kwargs")
        .and_then(Value::as_object)
        .map_or(0, |k| {
            k.iter()
                .filter(|(key, v)| key.as_str() != "mask" && has_tensor(v))
                .count()
        });
    positional + keyword
}

/// The `[layer, node, tensor, ...]` lists of a tf_keras node, in order.
fn legacy_leaves<'v>(v: &'v Value, out: &mut Vec<&'v Value>) {
    match v {
        Value::Array(a) if a.first().is_some_and(Value::is_string) => out.push(v),
        Value::Array(a) => a.iter().for_each(|x| legacy_leaves(x, out)),
        Value::Object(o) => o.values().for_each(|x| legacy_leaves(x, out)),
        _ => {}
    }
}

fn legacy_ref(e: &Entry<'_>, v: &Value) -> Result<Ref> {
    let a = v.as_array().map(Vec::as_slice).unwrap_or_default();
    match a {
        [Value::String(layer), node, tensor, ..] => match (node.as_u64(), tensor.as_u64()) {
            (Some(node), Some(tensor)) => Ok(Ref {
                layer: layer.clone(),
                node: usize::try_from(node).unwrap_or(usize::MAX),
                tensor: usize::try_from(tensor).unwrap_or(usize::MAX),
            }),
            _ => Err(bad_ref(e, v)),
        },
        _ => Err(bad_ref(e, v)),
    }
}

fn bad_ref(e: &Entry<'_>, v: &Value) -> Error {
    malformed(format!(
        "a node of {} names a tensor as {}, not as [layer, node index, tensor index]",
        e.name,
        excerpt(v)
    ))
}

/// The tensors of a Keras 3 argument, in order; anything else is refused.
fn keras3_tensors(e: &Entry<'_>, v: &Value, out: &mut Vec<Ref>, what: &str) -> Result<()> {
    match v {
        Value::Array(a) => a.iter().try_for_each(|x| keras3_tensors(e, x, out, what)),
        Value::Object(o)
            if o.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") =>
        {
            out.push(legacy_ref(e, &v["config"]["keras_history"])?);
            Ok(())
        }
        Value::Object(o) => o.values().try_for_each(|x| keras3_tensors(e, x, out, what)),
        other => Err(e.unsupported(format!(
            "{what} of a call is a constant ({}), which seqnn cannot load",
            excerpt(other)
        ))),
    }
}

/// The tensors of a kwargs value in either dialect.
fn kwarg_tensors(e: &Entry<'_>, v: &Value, d: Dialect, key: &str) -> Result<Vec<Ref>> {
    let mut out = Vec::new();
    match d {
        Dialect::Keras3 => keras3_tensors(e, v, &mut out, &format!("option {key}"))?,
        Dialect::Keras2 => {
            let mut leaves = Vec::new();
            legacy_leaves(v, &mut leaves);
            for leaf in leaves {
                out.push(legacy_ref(e, leaf)?);
            }
        }
    }
    Ok(out)
}

/// The keyword arguments of a call: tensors join the inputs in seqnn's order; options that
/// change nothing at inference are passed over; the rest is refused, by name.
fn call_kwargs(e: &Entry<'_>, kwargs: &Value, c: &mut Call, d: Dialect) -> Result<()> {
    let Some(map) = kwargs.as_object() else {
        return Ok(());
    };
    for key in ["initial_state", "value", "key"] {
        if let Some(v) = map.get(key).filter(|v| !v.is_null()) {
            c.inputs.extend(kwarg_tensors(e, v, d, key)?);
        }
    }
    if let Some(v) = map.get("mask") {
        explicit_masks(e, v, c, d)?;
    }
    // MultiHeadAttention's masks of its query, value and key.
    for (slot, key) in ["query_mask", "value_mask", "key_mask"].iter().enumerate() {
        if let Some(v) = map.get(*key) {
            input_mask(e, v, slot, c, d)?;
        }
    }
    for key in super::attention::CALL_OPTIONS {
        if map.get(*key) == Some(&Value::Bool(true)) {
            c.options.push(key);
        }
    }
    // MultiHeadAttention's attention_mask: one more input, after the others.
    if let Some(v) = map.get("attention_mask").filter(|v| !v.is_null()) {
        let n = c.inputs.len();
        c.inputs.extend(kwarg_tensors(e, v, d, "attention_mask")?);
        if let Some(m) = c.masks.as_mut() {
            m.resize(c.inputs.len(), None);
        }
        if c.inputs.len() != n + 1 {
            return Err(malformed(format!(
                "the attention_mask of a call of {} is not one tensor",
                e.name
            )));
        }
        c.options.push("attention_mask");
    }
    for (key, v) in map {
        match key.as_str() {
            "initial_state" | "value" | "key" | "training" | "mask" | "query_mask"
            | "value_mask" | "key_mask" | "attention_mask" => {}
            k if super::attention::CALL_OPTIONS.contains(&k) => {}
            _ if v.is_null() || v == &Value::Bool(false) => {}
            _ => {
                return Err(e.unsupported(format!(
                    "the layer is called with {key}={}, which seqnn cannot load",
                    excerpt(v)
                )))
            }
        }
    }
    Ok(())
}

/// One input's mask by keyword (`query_mask=` of input 0, ...), with `mask=`'s meaning of
/// `null` in each dialect.
fn input_mask(e: &Entry<'_>, v: &Value, slot: usize, c: &mut Call, d: Dialect) -> Result<()> {
    let n = c.inputs.len();
    if slot >= n {
        // A key_mask without a key: Keras uses the value's.
        return Ok(());
    }
    if v.is_null() && d == Dialect::Keras2 {
        return Ok(());
    }
    let masks = c.masks.get_or_insert_with(|| vec![None; n]);
    if !v.is_null() {
        let mut refs = kwarg_tensors(e, v, d, "a mask")?;
        if refs.len() != 1 {
            return Err(malformed(format!(
                "a mask of a call of {} is {}, not one tensor",
                e.name,
                excerpt(v)
            )));
        }
        masks[slot] = refs.pop();
    }
    Ok(())
}

/// A call's `mask=`: one tensor (the first input's mask), or a list with one per input (`null`
/// for none). Keras 3 writes `"mask": null` for a call whose inputs had no mask when the graph
/// was built: then none is used, whatever seqnn's own layers would propagate. tf_keras computes
/// every mask inside its layers, so its `null` leaves them to propagate.
fn explicit_masks(e: &Entry<'_>, v: &Value, c: &mut Call, d: Dialect) -> Result<()> {
    let n = c.inputs.len();
    if v.is_null() {
        if d == Dialect::Keras3 {
            c.masks = Some(vec![None; n]);
        }
        return Ok(());
    }
    let one = |v: &Value| -> Result<Option<Ref>> {
        if v.is_null() {
            return Ok(None);
        }
        let mut refs = kwarg_tensors(e, v, d, "mask")?;
        match refs.len() {
            1 => Ok(refs.pop()),
            _ => Err(malformed(format!(
                "a mask of a call of {} is {}, not one tensor",
                e.name,
                excerpt(v)
            ))),
        }
    };
    // A list of masks, or one mask (tf_keras writes a tensor as a [layer, node, tensor] list).
    let is_one = match d {
        Dialect::Keras3 => !v.is_array(),
        Dialect::Keras2 => v
            .as_array()
            .and_then(|a| a.first())
            .is_some_and(Value::is_string),
    };
    let mut masks = if is_one {
        vec![one(v)?]
    } else {
        v.as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(one)
            .collect::<Result<Vec<_>>>()?
    };
    if masks.len() > n {
        return Err(malformed(format!(
            "a call of {} has {} masks for {n} inputs",
            e.name,
            masks.len()
        )));
    }
    masks.resize(n, None);
    c.masks = Some(masks);
    Ok(())
}

/// The model's inputs or outputs (`input_layers`, `output_layers`): `[layer, node, tensor]`
/// triples, one triple alone (Keras 3, one tensor), or a dict (in its keys' sorted order, as
/// Keras flattens it).
fn tensors(
    config: &HashMap<String, &RawValue>,
    key: &str,
    made: &[Made],
    index: &HashMap<String, usize>,
    model: &str,
) -> Result<Vec<Tensor>> {
    let v = value(config, key)?;
    let mut refs = Vec::new();
    io_refs(&v, &mut refs).map_err(|bad| {
        malformed(format!(
            "the {key} of {model} name a tensor as {}, not as [layer, node index, tensor index]",
            excerpt(bad)
        ))
    })?;
    if refs.is_empty() {
        return Err(malformed(format!(
            "the Functional config of {model} has no {key}"
        )));
    }
    refs.into_iter()
        .map(|r| {
            let &i = index.get(&r.layer).ok_or_else(|| {
                malformed(format!(
                    "the {key} of {model} name layer {}, which the model does not have",
                    r.layer
                ))
            })?;
            let node = node_index(&made[i], r.node, true, model)?;
            if let Kind::Layer(_) = made[i].kind {
                if node >= made[i].outputs.len() {
                    return Err(disconnected(model, &made[i].name, r.node));
                }
            }
            tensor(&made[i], node, r.tensor).cloned()
        })
        .collect()
}

fn io_refs<'v>(v: &'v Value, out: &mut Vec<Ref>) -> std::result::Result<(), &'v Value> {
    match v {
        Value::Array(a) if a.first().is_some_and(Value::is_string) => match a.as_slice() {
            [Value::String(layer), node, tensor] => match (node.as_u64(), tensor.as_u64()) {
                (Some(node), Some(tensor)) => {
                    out.push(Ref {
                        layer: layer.clone(),
                        node: usize::try_from(node).unwrap_or(usize::MAX),
                        tensor: usize::try_from(tensor).unwrap_or(usize::MAX),
                    });
                    Ok(())
                }
                _ => Err(v),
            },
            _ => Err(v),
        },
        Value::Array(a) => a.iter().try_for_each(|x| io_refs(x, out)),
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            keys.into_iter().try_for_each(|k| io_refs(&o[k], out))
        }
        other => Err(other),
    }
}

/// A nested model's config (a layer entry of class `Functional`, `Model` or `Sequential`),
/// built without weights.
pub(super) fn nested(e: &Entry<'_>, d: Dialect) -> Option<Result<Box<dyn Layer>>> {
    if !is_functional_class(e.class) && e.class != "Sequential" {
        return None;
    }
    Some((|| {
        let text = e.config.to_string();
        if is_functional_class(e.class) {
            let f = fields(&text, "a nested model's config")?;
            // A nested model's weights are read in its own layout: CuDNN layers inside one
            // are not converted.
            Ok(Box::new(from_fields(&f, d, &mut StoredLayouts::new())?) as Box<dyn Layer>)
        } else {
            let root = serde_json::json!({
                "class_name": "Sequential",
                "config": e.config,
                "build_config": e.entry.get("build_config"),
            });
            let seq = super::sequential_from_config(&root.to_string(), d)?;
            Ok(Box::new(seq.model) as Box<dyn Layer>)
        }
    })())
}

/// A nested model's config, for Keras 3's file.
pub(super) fn nested_config(layer: &dyn Layer) -> Option<Result<Value>> {
    let any: &dyn std::any::Any = layer;
    if let Some(m) = any.downcast_ref::<Model>() {
        return Some(crate::keras::writer::functional_config(m).map(|c| c["config"].clone()));
    }
    if let Some(s) = any.downcast_ref::<crate::sequential::Sequential>() {
        return Some(crate::keras::writer::nested_sequential_config(s));
    }
    None
}
