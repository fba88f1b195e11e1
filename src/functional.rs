//! Keras's Functional API: [`Input`], layers applied to symbolic [`Tensor`]s, and
//! [`Model::new(inputs, outputs)`](Model::new), a graph of layers with several inputs and
//! outputs.
//!
//! ```
//! use seqnn::{Apply, Concatenate, Dense, Input, Model, LSTM};
//! // a = Input(shape=(5, 3)); b = Input(shape=(7, 2))
//! let a = Input::new((5, 3));
//! let b = Input::new((7, 2));
//! let ha = LSTM::new(4).apply(&a)?;
//! let hb = LSTM::new(4).apply(&b)?;
//! let both = Concatenate::new().apply_all(&[&ha, &hb])?.remove(0);
//! let y = Dense::new(1).apply(&both)?;
//! let model = Model::new(&[a, b], &[y])?;
//! assert_eq!(model.layers().len(), 6); // two InputLayers, two LSTMs, Concatenate, Dense
//! println!("{}", model.summary()?);
//! # Ok::<(), seqnn::Error>(())
//! ```
//!
//! A layer becomes a node of the graph when it is applied: `layer.apply(&x)` for one input and
//! one output, `layer.apply_all(&[&x, &h0, &c0])` for several (a recurrent layer's initial
//! states follow its input, as Keras's `initial_state`; `return_state` gives several outputs).
//! A layer applied twice shares its weights: wrap it in a [`SharedLayer`] first. Layers are
//! built, and their weights drawn, when they are applied, as in Keras. [`Model::new`] then
//! takes copies of them: the model owns its layers, runs on `&self`, and is `Send + Sync`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use ndarray::{ArrayD, ArrayViewD, Axis, Slice};

use crate::activation::ActivationFn;
use crate::error::{Error, Result};
use crate::input::InputArray;
use crate::layer::{
    backward_layer, call_layer, CallContext, Gradients, Layer, Mask, SavedForBackward, States,
};
use crate::layers::input_layer::InputLayer;
use crate::limits;
use crate::session::unique_name;
use crate::shape::Shape;
use crate::summary::{self, Layout, Totals};
use crate::train::fit::{
    self, not_compiled, Compiled, FitOptions, History, IntoLoss, IntoOptimizer, IntoTargets,
};

/// A layer that can be applied to tensors more than once, sharing its weights, as a Keras layer
/// called on several inputs.
///
/// ```
/// use seqnn::{Apply, Dense, Input, Model, SharedLayer};
/// let shared = SharedLayer::new(Dense::new(3));
/// let (a, b) = (Input::new((4,)), Input::new((4,)));
/// let (ya, yb) = (shared.apply(&a)?, shared.apply(&b)?);
/// let model = Model::new(&[a, b], &[ya, yb])?;
/// assert_eq!(model.count_params()?, 15); // one kernel (4, 3) and one bias (3,)
/// # Ok::<(), seqnn::Error>(())
/// ```
#[derive(Clone)]
pub struct SharedLayer {
    slot: Arc<Mutex<Slot>>,
}

/// A layer and how many nodes (calls) it has.
struct Slot {
    layer: Box<dyn Layer>,
    nodes: usize,
}

impl fmt::Debug for SharedLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedLayer")
            .field(&self.lock().layer)
            .finish()
    }
}

impl SharedLayer {
    /// `layer`, ready to be applied to tensors.
    pub fn new(layer: impl Layer + 'static) -> Self {
        Self::from_boxed(Box::new(layer))
    }

    /// [`new`](Self::new) for a boxed layer.
    pub fn from_boxed(layer: Box<dyn Layer>) -> Self {
        SharedLayer {
            slot: Arc::new(Mutex::new(Slot { layer, nodes: 0 })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        // A panic while the lock was held left a layer that is still whole: go on with it.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(&self) -> usize {
        Arc::as_ptr(&self.slot) as *const () as usize
    }

    /// The layer's name.
    pub fn name(&self) -> String {
        self.lock().layer.name().to_string()
    }

    /// Applies the layer to one tensor and returns its one output (Keras's `layer(x)`).
    ///
    /// # Errors
    /// As [`apply_all`](Self::apply_all), and when the layer has several outputs.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let mut out = self.apply_all(&[x])?;
        if out.len() != 1 {
            return Err(Error::InvalidArgument {
                layer: self.name(),
                message: format!(
                    "this layer has {} outputs; use apply_all to get them all",
                    out.len()
                ),
            });
        }
        Ok(out.remove(0))
    }

    /// Applies the layer to `inputs` (its main input first, then any extra ones, such as a
    /// recurrent layer's initial states) and returns all its outputs. The layer is named if it
    /// has no name yet, built for the inputs' shapes and, on its first use, given its weights.
    ///
    /// # Errors
    /// The layer's own error when it cannot take these inputs (Keras's messages).
    pub fn apply_all(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        self.apply_node(inputs, None, true)
    }

    /// [`apply_all`](Self::apply_all) with explicit masks, one per input (`None` for an input
    /// without one), as Keras's `layer(inputs, mask=masks)`: each mask is a tensor of shape
    /// `(batch, timesteps)` whose non-zero entries are the steps to keep. They replace the masks
    /// that would come with the inputs.
    ///
    /// ```
    /// use seqnn::{Apply, Input, Model, SharedLayer, LSTM};
    /// let x = Input::new((6, 3));
    /// let m = Input::new((6,));
    /// let y = SharedLayer::new(LSTM::new(2)).apply_all_with_masks(&[&x], &[Some(&m)])?;
    /// let model = Model::new(&[x, m], &y)?;
    /// assert_eq!(model.output_shapes()[0].to_string(), "(None, 2)");
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`apply_all`](Self::apply_all), and when `masks` is not one per input.
    pub fn apply_all_with_masks(
        &self,
        inputs: &[&Tensor],
        masks: &[Option<&Tensor>],
    ) -> Result<Vec<Tensor>> {
        self.apply_node(inputs, Some(masks), true)
    }

    /// [`apply_all`](Self::apply_all) without drawing weights, for a loader: the file gives
    /// them once the whole graph is built.
    #[cfg_attr(not(feature = "keras"), allow(dead_code))]
    pub(crate) fn apply_without_weights(
        &self,
        inputs: &[&Tensor],
        masks: Option<&[Option<&Tensor>]>,
    ) -> Result<Vec<Tensor>> {
        self.apply_node(inputs, masks, false)
    }

    fn apply_node(
        &self,
        inputs: &[&Tensor],
        masks: Option<&[Option<&Tensor>]>,
        initialize: bool,
    ) -> Result<Vec<Tensor>> {
        let shapes: Vec<Shape> = inputs.iter().map(|t| t.shape().clone()).collect();
        // Explicit masks follow the inputs among the node's parents.
        let mut parents: Vec<Tensor> = inputs.iter().map(|t| (*t).clone()).collect();
        let mask_slots = match masks {
            None => None,
            Some(masks) => {
                if masks.len() != inputs.len() {
                    return Err(Error::InvalidArgument {
                        layer: self.name(),
                        message: format!(
                            "{} mask(s) were given for {} input(s); give one (or None) per input",
                            masks.len(),
                            inputs.len()
                        ),
                    });
                }
                let mut slots = Vec::with_capacity(masks.len());
                for m in masks {
                    slots.push(m.map(|t| {
                        parents.push(t.clone());
                        parents.len() - 1
                    }));
                }
                for (m, input) in masks.iter().zip(inputs) {
                    if let Some(m) = m {
                        check_mask_shape(&self.name(), m.shape(), input.shape())?;
                    }
                }
                Some(slots)
            }
        };
        let mut slot = self.lock();
        slot.layer.ensure_named();
        let mut trial = slot.layer.clone_box();
        let outputs = trial.build(&shapes)?;
        if initialize && !trial.has_weights() {
            trial.initialize();
        }
        slot.layer = trial;
        let node_index = slot.nodes;
        slot.nodes += 1;
        drop(slot);
        let node = Arc::new(SymNode {
            layer: self.clone(),
            node_index,
            inputs: parents,
            data: inputs.len(),
            masks: mask_slots,
            outputs,
        });
        Ok((0..node.outputs.len())
            .map(|index| Tensor {
                node: Arc::clone(&node),
                index,
            })
            .collect())
    }
}

/// An explicit mask must be `(batch, timesteps)` for an input of those first two axes.
fn check_mask_shape(layer: &str, mask: &Shape, input: &Shape) -> Result<()> {
    let fits = mask.rank() == 2
        && input.rank() >= 2
        && (mask.dim(1).is_none() || input.dim(1).is_none() || mask.dim(1) == input.dim(1));
    if fits {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            layer: layer.to_string(),
            message: format!(
                "a mask must have the shape (batch, timesteps) of its input; the mask is {mask} \
                 for an input of {input}"
            ),
        })
    }
}

/// Applying a layer to symbolic tensors: Keras's `layer(x)`, for any layer.
///
/// ```
/// use seqnn::{Apply, Input, LSTM};
/// let x = Input::new((10, 8));
/// let outs = LSTM::new(4).with_return_state(true).apply_all(&[&x])?;
/// assert_eq!(outs.len(), 3); // the output, h and c
/// assert_eq!(outs[2].shape().to_string(), "(None, 4)");
/// # Ok::<(), seqnn::Error>(())
/// ```
pub trait Apply {
    /// Applies the layer to one tensor and returns its one output.
    ///
    /// # Errors
    /// As [`SharedLayer::apply`].
    fn apply(self, x: &Tensor) -> Result<Tensor>;

    /// Applies the layer to several tensors and returns all its outputs.
    ///
    /// # Errors
    /// As [`SharedLayer::apply_all`].
    fn apply_all(self, inputs: &[&Tensor]) -> Result<Vec<Tensor>>;
}

impl<L: Layer + 'static> Apply for L {
    fn apply(self, x: &Tensor) -> Result<Tensor> {
        SharedLayer::new(self).apply(x)
    }

    fn apply_all(self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        SharedLayer::new(self).apply_all(inputs)
    }
}

/// A symbolic tensor of a model being built: a model input, or an output of a layer applied to
/// other tensors. It knows its shape and where it comes from.
#[derive(Clone)]
pub struct Tensor {
    node: Arc<SymNode>,
    index: usize,
}

/// One call of a layer while a model is being built.
struct SymNode {
    layer: SharedLayer,
    node_index: usize,
    /// The tensors it reads: its inputs, then its explicit masks.
    inputs: Vec<Tensor>,
    /// How many of `inputs` are the layer's inputs.
    data: usize,
    /// For each input, where its explicit mask is in `inputs`; `None` for masks that come with
    /// the inputs.
    masks: Option<Vec<Option<usize>>>,
    outputs: Vec<Shape>,
}

impl SymNode {
    fn key(&self) -> usize {
        self as *const SymNode as usize
    }
}

/// A long chain of nodes is freed one node at a time, not by recursion, which would overflow
/// the stack for a model of many thousand layers.
impl Drop for SymNode {
    fn drop(&mut self) {
        let mut pending = std::mem::take(&mut self.inputs);
        while let Some(t) = pending.pop() {
            if let Ok(mut node) = Arc::try_unwrap(t.node) {
                pending.append(&mut node.inputs);
            }
        }
    }
}

impl Tensor {
    /// The tensor's shape, batch first.
    pub fn shape(&self) -> &Shape {
        &self.node.outputs[self.index]
    }

    /// The name of the layer that made it (`input_1` for an input).
    pub fn layer_name(&self) -> String {
        self.node.layer.name()
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor(shape={}, from {}[{}][{}])",
            self.shape(),
            self.layer_name(),
            self.node.node_index,
            self.index
        )
    }
}

/// Keras's `keras.Input`: a model input, as a symbolic [`Tensor`].
#[derive(Debug, Clone, Copy)]
pub struct Input;

impl Input {
    /// An input of `shape` per sample, batch left free, as Keras's `Input(shape=...)`. Its
    /// InputLayer is named `input_1`, `input_2`, ... as tf_keras names them.
    // Keras's `keras.Input(shape)` returns the tensor, not an `Input`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(shape: impl Into<Shape>) -> Tensor {
        let mut dims = vec![None];
        dims.extend_from_slice(shape.into().dims());
        Self::from_layer(InputLayer::new(Shape::new(dims)))
    }

    /// An input of `batch_shape`, batch first, as Keras's `Input(batch_shape=...)`.
    pub fn with_batch_shape(batch_shape: impl Into<Shape>) -> Tensor {
        Self::from_layer(InputLayer::new(batch_shape.into()))
    }

    /// An input of `shape` with the given name, as Keras's `Input(shape=..., name=...)`.
    pub fn named(name: impl Into<String>, shape: impl Into<Shape>) -> Tensor {
        let mut dims = vec![None];
        dims.extend_from_slice(shape.into().dims());
        let mut layer = InputLayer::new(Shape::new(dims));
        layer.set_name(name.into());
        Self::from_layer(layer)
    }

    /// The input of an InputLayer, as it is (a loader's, named as in the file).
    pub(crate) fn from_layer(mut layer: InputLayer) -> Tensor {
        layer.ensure_named();
        let shape = layer.batch_shape().clone();
        let shared = SharedLayer::new(layer);
        shared.lock().nodes = 1;
        Tensor {
            node: Arc::new(SymNode {
                layer: shared,
                node_index: 0,
                inputs: Vec::new(),
                data: 0,
                masks: None,
                outputs: vec![shape],
            }),
            index: 0,
        }
    }
}

/// A tensor of a built model: output `index` of node `node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TensorRef {
    pub(crate) node: usize,
    pub(crate) index: usize,
}

/// One call of a layer in a built model.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The layer, an index into the model's layers.
    pub(crate) layer: usize,
    /// Which call of that layer it is (Keras's node index).
    pub(crate) node_index: usize,
    /// The tensors it reads (none for an input): the layer's inputs, then explicit masks.
    pub(crate) inputs: Vec<TensorRef>,
    /// How many of `inputs` the layer is called on.
    pub(crate) data: usize,
    /// For each input, the index in `inputs` of its explicit mask; `None` when the masks come
    /// with the inputs, as Keras propagates them.
    pub(crate) masks: Option<Vec<Option<usize>>>,
    /// Its output shapes.
    pub(crate) outputs: Vec<Shape>,
    /// Keras's depth of the node, counted from the outputs.
    pub(crate) depth: usize,
}

/// Keras's Functional model (`keras.Model(inputs, outputs)`): a graph of layers from its inputs
/// to its outputs. See the [module docs](self).
///
/// It runs as [`Sequential`](crate::Sequential) does: [`predict`](Model::predict) in batches
/// with bounded memory, [`call`](Model::call) on one batch, both on `&self`; the inputs and
/// outputs are lists, in the model's order.
#[derive(Debug, Clone)]
pub struct Model {
    name: String,
    /// The layers, in Keras's `model.layers` order (inputs included).
    layers: Vec<Box<dyn Layer>>,
    /// Every node, inputs first, each after the nodes it reads.
    nodes: Vec<Node>,
    /// The input nodes, in the model's input order.
    inputs: Vec<usize>,
    /// The output tensors, in the model's output order.
    outputs: Vec<TensorRef>,
    /// The optimizer and loss of `compile`, with the optimizer's state.
    compiled: Option<Box<Compiled>>,
}

/// A run's outputs, their masks, and the activation each output's layer left out when the
/// run asked for logits.
type OutputsAndMasks = (
    Vec<ArrayD<f32>>,
    Vec<Option<Mask>>,
    Vec<Option<ActivationFn>>,
);

/// A value flowing through a run: an input array (borrowed) or a layer's output.
enum Value<'a> {
    Input(ArrayViewD<'a, f32>),
    Owned(ArrayD<f32>),
}

impl Value<'_> {
    fn view(&self) -> ArrayViewD<'_, f32> {
        match self {
            Value::Input(v) => v.view(),
            Value::Owned(a) => a.view(),
        }
    }

    fn into_owned(self) -> ArrayD<f32> {
        match self {
            Value::Input(v) => v.to_owned(),
            Value::Owned(a) => a,
        }
    }
}

/// Keras's `_map_graph_network`: the nodes and layers reachable from `outputs`, with their
/// depths, and the layers in Keras's `model.layers` order.
struct GraphMap {
    /// Nodes (by key), in the order Keras's depth dictionary first met them.
    nodes: Vec<(Arc<SymNode>, usize)>,
    /// Layers, in `model.layers` order.
    layers: Vec<SharedLayer>,
}

fn map_graph(inputs: &[Tensor], outputs: &[Tensor]) -> Result<GraphMap> {
    // _build_map: a depth-first walk from the outputs, post-order; the first traversal index
    // of each layer.
    let mut finished: HashMap<usize, ()> = HashMap::new();
    let mut in_decreasing_depth: Vec<Arc<SymNode>> = Vec::new();
    let mut layer_index: HashMap<usize, isize> = HashMap::new();
    let mut layer_order: Vec<SharedLayer> = Vec::new();
    // Iterative, for graphs of any depth: each stack entry is a node and how many of its
    // inputs were visited.
    for t in outputs {
        let mut stack: Vec<(Arc<SymNode>, usize)> = vec![(Arc::clone(&t.node), 0)];
        while let Some((node, next)) = stack.pop() {
            if next == 0 {
                if finished.contains_key(&node.key()) {
                    continue;
                }
                let key = node.layer.key();
                if !layer_index.contains_key(&key) {
                    layer_index.insert(key, layer_index.len() as isize);
                    layer_order.push(node.layer.clone());
                }
            }
            if let Some(input) = node.inputs.get(next) {
                let input = Arc::clone(&input.node);
                stack.push((node, next + 1));
                if !finished.contains_key(&input.key()) {
                    stack.push((input, 0));
                }
            } else if finished.insert(node.key(), ()).is_none() {
                in_decreasing_depth.push(node);
            }
        }
    }

    // Depths, in the order Keras's dictionaries are filled.
    let mut node_depth: Vec<(Arc<SymNode>, usize)> = Vec::new();
    let mut node_pos: HashMap<usize, usize> = HashMap::new();
    let mut layer_depth: HashMap<usize, usize> = HashMap::new();
    let mut set_depth = |node: &Arc<SymNode>, depth: usize, keep_max: bool| -> usize {
        match node_pos.get(&node.key()) {
            Some(&i) => {
                if keep_max {
                    node_depth[i].1 = node_depth[i].1.max(depth);
                } else {
                    node_depth[i].1 = depth;
                }
                node_depth[i].1
            }
            None => {
                node_pos.insert(node.key(), node_depth.len());
                node_depth.push((Arc::clone(node), depth));
                depth
            }
        }
    };
    for node in in_decreasing_depth.iter().rev() {
        let depth = set_depth(node, 0, true);
        let depth = depth.max(layer_depth.get(&node.layer.key()).copied().unwrap_or(0));
        layer_depth.insert(node.layer.key(), depth);
        set_depth(node, depth, false);
        for t in &node.inputs {
            set_depth(&t.node, depth + 1, true);
        }
    }
    // Inputs that do not lead to the outputs still belong to the model.
    for t in inputs {
        let key = t.node.layer.key();
        if let std::collections::hash_map::Entry::Vacant(e) = layer_depth.entry(key) {
            e.insert(0);
            layer_index.insert(key, -1);
            layer_order.push(t.node.layer.clone());
            set_depth(&t.node, 0, true);
        }
    }

    let mut layers = layer_order;
    layers.sort_by(|a, b| {
        let (da, db) = (layer_depth[&a.key()], layer_depth[&b.key()]);
        db.cmp(&da)
            .then(layer_index[&a.key()].cmp(&layer_index[&b.key()]))
    });
    Ok(GraphMap {
        nodes: node_depth,
        layers,
    })
}

impl Model {
    /// The model from `inputs` (made by [`Input`]) to `outputs`, as Keras's
    /// `Model(inputs, outputs)`, named `model`, `model_1`, ... as tf_keras names models.
    ///
    /// # Errors
    /// Keras's errors: an input that is not made by `Input`, an output that cannot be computed
    /// from the inputs ("Graph disconnected"), two layers of one name.
    pub fn new(inputs: &[Tensor], outputs: &[Tensor]) -> Result<Model> {
        Self::named(unique_name("model"), inputs, outputs)
    }

    /// [`new`](Self::new) with the given name.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn named(name: impl Into<String>, inputs: &[Tensor], outputs: &[Tensor]) -> Result<Model> {
        Self::assemble(name.into(), inputs, outputs, false)
    }

    /// [`named`](Self::named) for a loader, which owns the graph: the layers are moved into
    /// the model instead of copied.
    #[cfg_attr(not(feature = "keras"), allow(dead_code))]
    pub(crate) fn named_taking_layers(
        name: String,
        inputs: &[Tensor],
        outputs: &[Tensor],
    ) -> Result<Model> {
        Self::assemble(name, inputs, outputs, true)
    }

    fn assemble(name: String, inputs: &[Tensor], outputs: &[Tensor], take: bool) -> Result<Model> {
        for t in inputs {
            if !t.node.inputs.is_empty() || t.node.layer.lock().layer.class_name() != "InputLayer" {
                return Err(Error::InvalidArgument {
                    layer: name,
                    message: format!(
                        "Input tensors to a Functional must come from `Input`. Received: {t:?}"
                    ),
                });
            }
        }
        let map = map_graph(inputs, outputs)?;
        // Keras's order of nodes: by decreasing depth, each depth in the order it was met.
        let mut order: Vec<usize> = (0..map.nodes.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(map.nodes[i].1));

        let layer_of: HashMap<usize, usize> = map
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| (l.key(), i))
            .collect();
        let input_keys: Vec<usize> = inputs.iter().map(|t| t.node.key()).collect();
        let mut node_of: HashMap<usize, usize> = HashMap::new();
        let mut nodes: Vec<Node> = Vec::with_capacity(order.len());
        // The layers read without issue so far, for Keras's message.
        let mut accessed: Vec<usize> = Vec::new();
        for &i in &order {
            let (sym, depth) = &map.nodes[i];
            let is_input = sym.inputs.is_empty();
            if is_input && !input_keys.contains(&sym.key()) {
                // An input the model was not given: whoever reads it cannot be computed. Keras
                // says so at the first reader.
                continue;
            }
            let mut refs = Vec::with_capacity(sym.inputs.len());
            for t in &sym.inputs {
                match node_of.get(&t.node.key()) {
                    Some(&n) => refs.push(TensorRef {
                        node: n,
                        index: t.index,
                    }),
                    None => {
                        return Err(Error::InvalidArgument {
                            layer: name,
                            message: format!(
                                "Graph disconnected: cannot obtain value for tensor {t:?} at \
                                 layer \"{}\". The following previous layers were accessed \
                                 without issue: [{}]",
                                sym.layer.name(),
                                accessed
                                    .iter()
                                    .map(|&l| format!("'{}'", map.layers[l].name()))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        })
                    }
                }
            }
            if !is_input {
                accessed.push(layer_of[&sym.layer.key()]);
            }
            node_of.insert(sym.key(), nodes.len());
            nodes.push(Node {
                layer: layer_of[&sym.layer.key()],
                node_index: sym.node_index,
                inputs: refs,
                data: sym.data,
                masks: sym.masks.clone(),
                outputs: sym.outputs.clone(),
                depth: *depth,
            });
        }
        let layers: Vec<Box<dyn Layer>> = map
            .layers
            .iter()
            .map(|l| {
                let mut slot = l.lock();
                if take {
                    // What stays behind is never used: the loader drops the graph.
                    let stub = Box::new(InputLayer::new(Shape::new(Vec::new())));
                    std::mem::replace(&mut slot.layer, stub)
                } else {
                    slot.layer.clone_box()
                }
            })
            .collect();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for l in &layers {
            *seen.entry(l.name()).or_insert(0) += 1;
        }
        if let Some((dup, n)) = seen.iter().find(|(_, &n)| n > 1) {
            return Err(Error::InvalidArgument {
                layer: name.clone(),
                message: format!(
                    "The name \"{dup}\" is used {n} times in the model. All layer names should \
                     be unique."
                ),
            });
        }
        let input_nodes = input_keys.iter().map(|k| node_of[k]).collect();
        let output_refs = outputs
            .iter()
            .map(|t| match node_of.get(&t.node.key()) {
                Some(&node) => Ok(TensorRef {
                    node,
                    index: t.index,
                }),
                None => Err(Error::InvalidArgument {
                    layer: name.clone(),
                    message: format!(
                        "Graph disconnected: cannot obtain value for output tensor {t:?}"
                    ),
                }),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Model {
            name,
            layers,
            nodes,
            inputs: input_nodes,
            outputs: output_refs,
            compiled: None,
        })
    }

    /// Keras's `model.compile(optimizer, loss)`, as [`Sequential::compile`](crate::Sequential::compile).
    ///
    /// # Errors
    /// [`Error::UnknownName`] for a name Keras does not know; the model is unchanged then.
    pub fn compile(&mut self, optimizer: impl IntoOptimizer, loss: impl IntoLoss) -> Result<()> {
        self.compile_with(Compiled::new(
            optimizer.into_optimizer()?,
            loss.into_loss()?,
        ));
        Ok(())
    }

    /// `compile` with metrics and the loss's Keras, as
    /// [`Sequential::compile_with`](crate::Sequential::compile_with).
    pub fn compile_with(&mut self, compiled: Compiled) {
        self.compiled = Some(Box::new(compiled));
    }

    /// What `compile` set, with the optimizer's state; `None` before.
    #[must_use]
    pub fn compiled(&self) -> Option<&Compiled> {
        self.compiled.as_deref()
    }

    /// Keras's `model.fit([x1, x2, ...], y, ...)`: one array per input, in the model's order,
    /// and for `y` one target array (`y.view()`) or one per output (`&[y1.view(), y2.view()]`),
    /// with the losses and `loss_weights` of [`Compiled`]. As
    /// [`Sequential::fit`](crate::Sequential::fit).
    ///
    /// With several outputs, the logs are Keras's: `loss` (the weighted sum), `<output>_loss`
    /// for each output and `<output>_<metric>` for each metric.
    ///
    /// ```
    /// use ndarray::{Array2, Array3};
    /// use seqnn::{Apply, Concatenate, Dense, FitOptions, Input, Model, GRU, LSTM};
    /// seqnn::set_random_seed(0);
    /// let (a, b) = (Input::new((5, 3)), Input::new((4, 2)));
    /// let merged = Concatenate::new().apply_all(&[&LSTM::new(3).apply(&a)?, &GRU::new(3).apply(&b)?])?;
    /// let y = Dense::new(1).apply(&merged[0])?;
    /// let mut model = Model::new(&[a, b], &[y])?;
    /// model.compile("adam", "mse")?;
    /// let (xa, xb) = (Array3::<f32>::from_elem((6, 5, 3), 0.1), Array3::<f32>::from_elem((6, 4, 2), -0.2));
    /// let target = Array2::<f32>::from_elem((6, 1), 0.3);
    /// let h = model.fit(&[xa.view().into_dyn(), xb.view().into_dyn()], target.view().into_dyn(), &FitOptions::new().with_verbose(0))?;
    /// assert_eq!(h.get("loss").unwrap().len(), 1);
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Sequential::fit`](crate::Sequential::fit); also a number of target arrays, losses
    /// or loss weights that is not the number of outputs.
    pub fn fit<'a>(
        &mut self,
        x: &[ArrayViewD<'_, f32>],
        y: impl IntoTargets<'a>,
        options: &FitOptions,
    ) -> Result<History> {
        self.fit_with_callbacks(x, y, options, &mut [])
    }

    /// Keras's `model.fit([x1, ...], y, ..., callbacks=[...])`: [`fit`](Model::fit) with
    /// [`Callback`](crate::Callback)s, as
    /// [`Sequential::fit_with_callbacks`](crate::Sequential::fit_with_callbacks).
    ///
    /// ```
    /// use ndarray::{Array2, Array3};
    /// use seqnn::{Apply, Dense, FitOptions, Input, LambdaCallback, Model, LSTM};
    /// let a = Input::new((5, 3));
    /// let y = Dense::new(1).apply(&LSTM::new(3).apply(&a)?)?;
    /// let mut model = Model::new(&[a], &[y])?;
    /// model.compile("adam", "mse")?;
    /// let x = Array3::<f32>::from_elem((6, 5, 3), 0.1);
    /// let target = Array2::<f32>::from_elem((6, 1), 0.3);
    /// // Stop after the first batch of the second epoch.
    /// let mut stop = LambdaCallback::new().on_train_batch_end(|batch, _logs, fit| {
    ///     fit.set_stop_training(fit.learning_rate() > 0.0 && batch == 0);
    /// });
    /// let options = FitOptions::new().with_epochs(4).with_batch_size(2).with_verbose(0);
    /// let h = model.fit_with_callbacks(&[x.view().into_dyn()], target.view().into_dyn(), &options, &mut [&mut stop])?;
    /// assert_eq!(h.epoch(), &[0]);
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`fit`](Model::fit), and a callback's error.
    pub fn fit_with_callbacks<'a>(
        &mut self,
        x: &[ArrayViewD<'_, f32>],
        y: impl IntoTargets<'a>,
        options: &FitOptions,
        callbacks: &mut [&mut dyn crate::Callback],
    ) -> Result<History> {
        let y = y.into_targets();
        let outputs = self.output_names();
        let mut compiled = self
            .compiled
            .take()
            .ok_or_else(|| not_compiled(&self.name))?;
        let result = fit::fit(self, &mut compiled, x, &y, &outputs, options, callbacks);
        self.compiled = Some(compiled);
        result
    }

    /// Keras's `model.evaluate([x1, ...], y, batch_size, return_dict=True)`, `y` as
    /// [`fit`](Model::fit) takes it.
    ///
    /// # Errors
    /// As [`fit`](Model::fit), without changing anything; a model with stateful layers is
    /// refused (see [`evaluate_stateful`](Model::evaluate_stateful)).
    pub fn evaluate<'a>(
        &self,
        x: &[ArrayViewD<'_, f32>],
        y: impl IntoTargets<'a>,
        batch_size: usize,
    ) -> Result<Vec<(String, f32)>> {
        self.refuse_stateful("evaluate")?;
        Ok(self
            .evaluate_inner(x, &y.into_targets(), None, batch_size)?
            .0)
    }

    /// Keras's `model.evaluate(x, y, sample_weight=w, ...)`: as [`evaluate`](Model::evaluate),
    /// every output's loss weighted by `sample_weight`, `(samples,)` or `(samples, timesteps)`
    /// (see [`FitOptions::with_sample_weight`](crate::FitOptions::with_sample_weight)), and so
    /// are the `weighted_metrics`; the metrics are not weighted.
    ///
    /// # Errors
    /// As [`evaluate`](Model::evaluate), and for sample weights of the wrong length.
    pub fn evaluate_weighted<'a>(
        &self,
        x: &[ArrayViewD<'_, f32>],
        y: impl IntoTargets<'a>,
        sample_weight: &ArrayD<f32>,
        batch_size: usize,
    ) -> Result<Vec<(String, f32)>> {
        self.refuse_stateful("evaluate_weighted")?;
        let y = y.into_targets();
        Ok(self
            .evaluate_inner(x, &y, Some(sample_weight), batch_size)?
            .0)
    }

    /// Keras's `model.evaluate(...)` of a model with stateful layers, as
    /// [`Sequential::evaluate_stateful`](crate::Sequential::evaluate_stateful): the states
    /// carried from batch to batch and kept, in batches of the model's batch size.
    ///
    /// # Errors
    /// As [`evaluate`](Model::evaluate), and for a `batch_size` other than the model's or a
    /// number of samples that is not a multiple of it; the states are as they were then.
    pub fn evaluate_stateful<'a>(
        &mut self,
        x: &[ArrayViewD<'_, f32>],
        y: impl IntoTargets<'a>,
        batch_size: usize,
    ) -> Result<Vec<(String, f32)>> {
        let evaluated = self.evaluate_inner(x, &y.into_targets(), None, batch_size)?;
        fit::commit(self, evaluated)
    }

    /// [`evaluate_stateful`](Model::evaluate_stateful) with sample weights, as
    /// [`evaluate_weighted`](Model::evaluate_weighted) takes them.
    ///
    /// # Errors
    /// As [`evaluate_stateful`](Model::evaluate_stateful), and for sample weights of the
    /// wrong length.
    pub fn evaluate_stateful_weighted<'a>(
        &mut self,
        x: &[ArrayViewD<'_, f32>],
        y: impl IntoTargets<'a>,
        sample_weight: &ArrayD<f32>,
        batch_size: usize,
    ) -> Result<Vec<(String, f32)>> {
        let y = y.into_targets();
        let evaluated = self.evaluate_inner(x, &y, Some(sample_weight), batch_size)?;
        fit::commit(self, evaluated)
    }

    /// The logs of an evaluation and, for a stateful model, its final states.
    fn evaluate_inner(
        &self,
        x: &[ArrayViewD<'_, f32>],
        y: &[ArrayViewD<'_, f32>],
        sample_weight: Option<&ArrayD<f32>>,
        batch_size: usize,
    ) -> Result<fit::Evaluated> {
        let compiled = self
            .compiled
            .as_deref()
            .ok_or_else(|| not_compiled(&self.name))?;
        fit::evaluate(
            self,
            compiled,
            (x, y, sample_weight),
            &self.output_names(),
            batch_size,
        )
    }

    /// Keras's `model.train_on_batch(x, y)`: one step on one batch; returns its loss (the
    /// weighted sum over the outputs).
    ///
    /// # Errors
    /// As [`fit`](Model::fit); the model and its optimizer are unchanged then.
    pub fn train_on_batch<'a>(
        &mut self,
        x: &[ArrayViewD<'_, f32>],
        y: impl IntoTargets<'a>,
    ) -> Result<f32> {
        let options = FitOptions::new()
            .with_shuffle(false)
            .with_verbose(0)
            .with_batch_size(one_batch(x));
        let h = self.fit(x, y, &options)?;
        Ok(h.get("loss")
            .and_then(|l| l.first().copied())
            .unwrap_or(f32::NAN))
    }

    /// Keras's `model.test_on_batch(x, y)`: the loss of one batch.
    ///
    /// # Errors
    /// As [`evaluate`](Model::evaluate): a stateful model is refused (its
    /// `test_on_batch(x, y)` is `evaluate_stateful(x, y, batch)[0]`).
    pub fn test_on_batch<'a>(
        &self,
        x: &[ArrayViewD<'_, f32>],
        y: impl IntoTargets<'a>,
    ) -> Result<f32> {
        self.refuse_stateful("test_on_batch")?;
        Ok(self.evaluate(x, y, one_batch(x))?[0].1)
    }

    /// The model's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layers, in Keras's `model.layers` order, the InputLayers included.
    #[must_use]
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// The layers, to change in place (weights, `trainable`); their shapes stay as built.
    pub fn layers_mut(&mut self) -> impl Iterator<Item = &mut dyn Layer> + '_ {
        self.layers.iter_mut().map(|l| l.as_mut() as &mut dyn Layer)
    }

    /// The layer called `name`.
    ///
    /// # Errors
    /// [`Error::NoSuchLayer`], listing the names there are.
    pub fn get_layer(&self, name: &str) -> Result<&dyn Layer> {
        match self.layers.iter().position(|l| l.name() == name) {
            Some(i) => Ok(self.layers[i].as_ref()),
            None => Err(Error::NoSuchLayer {
                name: name.to_string(),
                existing: self
                    .layers
                    .iter()
                    .map(|l| l.name().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The layer called `name`, to change in place.
    ///
    /// # Errors
    /// [`Error::NoSuchLayer`].
    pub fn get_layer_mut(&mut self, name: &str) -> Result<&mut dyn Layer> {
        match self.layers.iter().position(|l| l.name() == name) {
            Some(i) => Ok(self.layers[i].as_mut()),
            None => Err(self.get_layer(name).err().unwrap_or(Error::NoSuchLayer {
                name: name.to_string(),
                existing: String::new(),
            })),
        }
    }

    /// The model's input shapes, batch first, in its input order.
    #[must_use]
    pub fn input_shapes(&self) -> Vec<Shape> {
        self.inputs
            .iter()
            .map(|&n| self.nodes[n].outputs[0].clone())
            .collect()
    }

    /// The names of the model's inputs (their InputLayers), in its input order.
    #[must_use]
    pub fn input_names(&self) -> Vec<String> {
        self.inputs
            .iter()
            .map(|&n| self.layers[self.nodes[n].layer].name().to_string())
            .collect()
    }

    /// The names of the model's outputs, in order, as tf_keras's `model.output_names`: each
    /// output's layer name, made unique where a layer gives several outputs (`lstm`, `lstm_1`,
    /// ...; Keras 3 repeats the layer's name instead).
    #[must_use]
    pub fn output_names(&self) -> Vec<String> {
        let mut used = std::collections::HashSet::new();
        let mut counts: HashMap<String, usize> = HashMap::new();
        self.outputs
            .iter()
            .map(|t| {
                let name = self.layers[self.nodes[t.node].layer].name().to_string();
                let mut proposal = name.clone();
                while used.contains(&proposal) {
                    let n = counts.entry(name.clone()).or_insert(1);
                    proposal = format!("{name}_{n}");
                    *n += 1;
                }
                used.insert(proposal.clone());
                proposal
            })
            .collect()
    }

    /// The model's output shapes, batch first, in its output order.
    #[must_use]
    pub fn output_shapes(&self) -> Vec<Shape> {
        self.outputs
            .iter()
            .map(|t| self.nodes[t.node].outputs[t.index].clone())
            .collect()
    }

    pub(crate) fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub(crate) fn input_nodes(&self) -> &[usize] {
        &self.inputs
    }

    pub(crate) fn output_refs(&self) -> &[TensorRef] {
        &self.outputs
    }

    /// The number of scalars in all weights.
    ///
    /// # Errors
    /// Never at present; a `Result` as [`Sequential::count_params`](crate::Sequential::count_params).
    pub fn count_params(&self) -> Result<usize> {
        Ok(self.layers.iter().map(|l| l.count_params()).sum())
    }

    /// All weights in Keras order (layer by layer, in `model.layers` order), as copies.
    #[must_use]
    pub fn get_weights(&self) -> Vec<ArrayD<f32>> {
        self.layers
            .iter()
            .flat_map(|l| l.weights())
            .map(|w| w.to_owned())
            .collect()
    }

    /// Replaces all weights, given in Keras order, after checking every count and shape.
    ///
    /// # Errors
    /// [`Error::WeightCount`] naming the model, or [`Error::WeightShape`] naming the layer and
    /// its weight; nothing changes then.
    pub fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        crate::sequential::set_layer_weights(&self.name, &mut self.layers, weights)
    }

    /// Checks the inputs against the model's: their number, each shape (batch free, as
    /// Keras), one batch size, no empty axis. Returns the batch size.
    fn check_inputs(&self, shapes: &[&[usize]]) -> Result<usize> {
        if shapes.len() != self.inputs.len() {
            return Err(Error::InvalidArgument {
                layer: self.name.clone(),
                message: format!(
                    "Layer \"{}\" expects {} input(s), but it received {} input tensors.",
                    self.name,
                    self.inputs.len(),
                    shapes.len()
                ),
            });
        }
        let mut batch = None;
        for (i, (&node, shape)) in self.inputs.iter().zip(shapes).enumerate() {
            let expected = self.nodes[node].outputs[0].with_batch(None);
            if !expected.accepts(shape) {
                return Err(Error::IncompatibleShape {
                    layer: format!("{} (input {i})", self.name),
                    expected,
                    found: Shape::known(shape),
                });
            }
            if shape.contains(&0) {
                return Err(Error::EmptyInput {
                    layer: self.name.clone(),
                    shape: Shape::known(shape),
                });
            }
            match batch {
                None => batch = Some(shape[0]),
                Some(b) if b != shape[0] => {
                    return Err(Error::InvalidArgument {
                        layer: self.name.clone(),
                        message: format!(
                            "Data cardinality is ambiguous: the inputs have {b} and {} samples",
                            shape[0]
                        ),
                    })
                }
                Some(_) => {}
            }
        }
        batch.ok_or_else(|| Error::InvalidArgument {
            layer: self.name.clone(),
            message: "the model has no inputs".into(),
        })
    }

    /// Runs the graph on one batch of `inputs` (checked), freeing each value once its last
    /// reader ran.
    fn run(&self, inputs: &[ArrayViewD<'_, f32>]) -> Result<Vec<ArrayD<f32>>> {
        self.run_masked(inputs, Vec::new(), None)
            .map(|(outs, ..)| outs)
    }

    /// [`run`](Self::run) from the inputs' masks (none where `input_masks` is short); also
    /// returns the outputs' masks.
    ///
    /// With `states` (one entry per layer), each stateful layer's calls start from its entry and
    /// leave their final states there, in the order the nodes run.
    fn run_masked(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        input_masks: Vec<Option<Mask>>,
        states: Option<&mut Vec<Option<States>>>,
    ) -> Result<OutputsAndMasks> {
        self.run_with(
            inputs,
            input_masks,
            states,
            &mut CallContext::inference(),
            None,
            false,
        )
    }

    /// [`run_masked`](Self::run_masked) in the mode of `outer`, whose activity penalties the
    /// layers add ([`CallContext::with_activity_penalties`]); with `records`, each node's layer keeps
    /// what its backward pass needs, one record per node (`None` for the inputs), told which
    /// of its inputs need a gradient, from which of the model's inputs do (the flags beside
    /// `records`). With `logits`, the layer of each output that nothing else reads is asked
    /// for them (see [`CallContext::with_logits_wanted`]).
    fn run_with(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        input_masks: Vec<Option<Mask>>,
        mut states: Option<&mut Vec<Option<States>>>,
        outer: &mut CallContext,
        mut records: Option<(&mut Vec<Option<SavedForBackward>>, &[bool])>,
        logits: bool,
    ) -> Result<OutputsAndMasks> {
        // Whether each value needs a gradient: a model input if the caller says so, a layer's
        // output if one of the layer's inputs does or the layer has weights.
        let mut needed: Vec<Vec<bool>> = self
            .nodes
            .iter()
            .map(|n| vec![true; n.outputs.len()])
            .collect();
        if let Some((r, model_inputs)) = records.as_mut() {
            r.clear();
            r.resize_with(self.nodes.len(), || None);
            for (i, &node) in self.inputs.iter().enumerate() {
                needed[node][0] = model_inputs.get(i).copied().unwrap_or(true);
            }
        }
        // How many reads each value has still to serve; a model output is never freed.
        let mut remaining: Vec<Vec<usize>> = self
            .nodes
            .iter()
            .map(|n| vec![0; n.outputs.len()])
            .collect();
        for node in &self.nodes {
            for t in &node.inputs {
                remaining[t.node][t.index] += 1;
            }
        }
        for t in &self.outputs {
            remaining[t.node][t.index] += 1;
        }
        // A layer may give logits for an output only when its one output is read by nothing
        // but the loss: any other reader needs the activation's values.
        let wants_logits: Vec<bool> = (0..self.nodes.len())
            .map(|ni| {
                logits
                    && self.nodes[ni].outputs.len() == 1
                    && remaining[ni][0] == 1
                    && self.outputs.iter().any(|t| t.node == ni)
            })
            .collect();
        let mut left_out: Vec<Option<ActivationFn>> = vec![None; self.nodes.len()];
        let mut values: Vec<Vec<Option<Value<'_>>>> = self
            .nodes
            .iter()
            .map(|n| (0..n.outputs.len()).map(|_| None).collect())
            .collect();
        let mut masks: Vec<Vec<Option<Mask>>> = self
            .nodes
            .iter()
            .map(|n| vec![None; n.outputs.len()])
            .collect();
        for (i, &node) in self.inputs.iter().enumerate() {
            values[node][0] = Some(Value::Input(inputs[i].view()));
        }
        for (&node, mask) in self.inputs.iter().zip(input_masks) {
            masks[node][0] = mask;
        }
        for (ni, node) in self.nodes.iter().enumerate() {
            if node.inputs.is_empty() {
                continue;
            }
            let layer = self.layers[node.layer].as_ref();
            let in_masks = match &node.masks {
                None => node.inputs[..node.data]
                    .iter()
                    .map(|t| masks[t.node][t.index].clone())
                    .collect(),
                Some(slots) => slots
                    .iter()
                    .map(|slot| {
                        slot.map(|i| {
                            let t = node.inputs[i];
                            let v = values[t.node][t.index]
                                .as_ref()
                                .expect("a node runs after the nodes it reads");
                            mask_of(layer.name(), v.view())
                        })
                        .transpose()
                    })
                    .collect::<Result<Vec<_>>>()?,
            };
            let mut ctx = outer.child().with_masks(in_masks);
            if records.is_some() {
                let inputs_needed: Vec<bool> = node.inputs[..node.data]
                    .iter()
                    .map(|t| needed[t.node][t.index])
                    .collect();
                let output_needed =
                    inputs_needed.contains(&true) || !layer.weight_specs().is_empty();
                needed[ni].fill(output_needed);
                ctx = ctx.recording().with_input_gradients(inputs_needed);
            }
            if wants_logits[ni] {
                ctx = ctx.with_logits_wanted();
            }
            let carried = states
                .as_deref_mut()
                .and_then(|s| s.get_mut(node.layer))
                .filter(|_| layer.is_stateful());
            if let Some(slot) = &carried {
                if let Some(st) = slot.as_ref() {
                    ctx = ctx.with_states(st.clone());
                }
            }
            let out = {
                let views: Vec<ArrayViewD<'_, f32>> = node.inputs[..node.data]
                    .iter()
                    .map(|t| {
                        values[t.node][t.index]
                            .as_ref()
                            .map(Value::view)
                            .expect("a node runs after the nodes it reads")
                    })
                    .collect();
                call_layer(layer, &views, &mut ctx)?
            };
            outer.add_penalties_of(&ctx);
            if out.len() != node.outputs.len() {
                return Err(Error::InvalidArgument {
                    layer: layer.name().to_string(),
                    message: format!(
                        "the layer returned {} outputs where the model expects {}",
                        out.len(),
                        node.outputs.len()
                    ),
                });
            }
            masks[ni] = ctx.output_masks(layer, out.len());
            if wants_logits[ni] {
                left_out[ni] = ctx.take_left_out_activations(1)[0];
            }
            if let Some((r, _)) = records.as_mut() {
                // A layer without a backward pass keeps nothing: its backward says so.
                r[ni] = Some(
                    ctx.take_saved()
                        .unwrap_or_else(|| SavedForBackward::new(Box::new(()))),
                );
            }
            if let Some(slot) = carried {
                if let Some(finals) = ctx.take_states() {
                    *slot = Some(finals);
                }
            }
            values[ni] = out.into_iter().map(|a| Some(Value::Owned(a))).collect();
            for t in &node.inputs {
                remaining[t.node][t.index] -= 1;
                if remaining[t.node][t.index] == 0 {
                    values[t.node][t.index] = None;
                }
            }
        }
        let mut outs = Vec::with_capacity(self.outputs.len());
        let out_masks = self
            .outputs
            .iter()
            .map(|t| masks[t.node][t.index].clone())
            .collect();
        for t in &self.outputs {
            remaining[t.node][t.index] -= 1;
            let v = if remaining[t.node][t.index] == 0 {
                values[t.node][t.index].take()
            } else {
                values[t.node][t.index]
                    .as_ref()
                    .map(|v| Value::Owned(v.view().to_owned()))
            };
            outs.push(v.expect("every output was computed").into_owned());
        }
        let left_out = self.outputs.iter().map(|t| left_out[t.node]).collect();
        Ok((outs, out_masks, left_out))
    }

    /// Runs the model on one batch, without changing it: Keras's `model(inputs)`. One array per
    /// model input, in its order.
    ///
    /// ```
    /// use ndarray::Array3;
    /// use seqnn::{Apply, Input, Model, GRU};
    /// let x = Input::new((5, 3));
    /// let y = GRU::new(2).apply(&x)?;
    /// let model = Model::new(&[x], &[y])?;
    /// let out = model.call(&[(&Array3::<f32>::zeros((4, 5, 3))).into()])?;
    /// assert_eq!(out[0].shape(), &[4, 2]);
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    ///
    /// # Errors
    /// Keras's errors for the wrong number of inputs, a shape that does not fit an input, or
    /// inputs of different lengths; a layer's own errors.
    pub fn call(&self, inputs: &[InputArray<'_>]) -> Result<Vec<ArrayD<f32>>> {
        let shapes: Vec<&[usize]> = inputs.iter().map(InputArray::shape).collect();
        let n = self.check_inputs(&shapes)?;
        self.refuse_stateful("call")?;
        let converted = inputs
            .iter()
            .map(|x| x.rows_as_f32(0, n))
            .collect::<Result<Vec<_>>>()?;
        let views: Vec<ArrayViewD<'_, f32>> = converted.iter().map(|c| c.view()).collect();
        self.run(&views)
    }

    /// Runs the model on all of `inputs` in batches, as Keras's `model.predict(inputs)`: the
    /// outputs joined along the first axis, one array per model output. The batch size is
    /// [`DEFAULT_BATCH_SIZE`](crate::DEFAULT_BATCH_SIZE); every row is computed on its own, so
    /// the numbers are those of any other batch size. Peak memory is the inputs, the outputs and
    /// one batch's working set.
    ///
    /// # Errors
    /// As [`call`](Model::call).
    pub fn predict(&self, inputs: &[InputArray<'_>]) -> Result<Vec<ArrayD<f32>>> {
        self.predict_batched(inputs, crate::DEFAULT_BATCH_SIZE)
    }

    /// [`predict`](Model::predict) with `batch_size` samples at a time.
    ///
    /// # Errors
    /// As [`predict`](Model::predict), and for a `batch_size` of 0.
    pub fn predict_batched(
        &self,
        inputs: &[InputArray<'_>],
        batch_size: usize,
    ) -> Result<Vec<ArrayD<f32>>> {
        crate::sequential::check_batch_size(&self.name, batch_size)?;
        let shapes: Vec<&[usize]> = inputs.iter().map(InputArray::shape).collect();
        let n = self.check_inputs(&shapes)?;
        self.refuse_stateful("predict")?;
        let mut outs: Option<Vec<ArrayD<f32>>> = None;
        for start in (0..n).step_by(batch_size) {
            let end = (start + batch_size).min(n);
            let converted = inputs
                .iter()
                .map(|x| x.rows_as_f32(start, end))
                .collect::<Result<Vec<_>>>()?;
            let views: Vec<ArrayViewD<'_, f32>> = converted.iter().map(|c| c.view()).collect();
            let ys = self.run(&views)?;
            if start == 0 && end == n {
                return Ok(ys);
            }
            let outs = match outs.as_mut() {
                Some(o) => o,
                None => outs.insert(
                    ys.iter()
                        .map(|y| {
                            let mut shape = y.shape().to_vec();
                            shape[0] = n;
                            limits::check_dims(&self.name, "output", &shape)?;
                            Ok(ArrayD::zeros(shape))
                        })
                        .collect::<Result<Vec<_>>>()?,
                ),
            };
            for (o, y) in outs.iter_mut().zip(&ys) {
                o.slice_axis_mut(Axis(0), Slice::from(start..end)).assign(y);
            }
        }
        outs.ok_or_else(|| Error::InvalidArgument {
            layer: self.name.clone(),
            message: "the model has no inputs".into(),
        })
    }

    /// Whether any layer keeps state between calls (`with_stateful(true)`).
    #[must_use]
    pub fn is_stateful(&self) -> bool {
        self.layers.iter().any(|l| l.is_stateful())
    }

    /// Zeroes the states of every stateful layer, as Keras's `model.reset_states()`.
    pub fn reset_states(&mut self) {
        for layer in self.layers.iter_mut() {
            layer.reset_states();
        }
    }

    fn refuse_stateful(&self, method: &str) -> Result<()> {
        crate::stateful::refuse(&self.name, self.is_stateful(), method)
    }

    /// Runs a model with stateful layers on `inputs`, in batches of the batch size its inputs
    /// were declared with (`Input(batch_shape=...)`): each stateful layer starts from the states
    /// the last call left, carries them from batch to batch and keeps the final ones, until
    /// [`reset_states`](Model::reset_states), as Keras's `predict` does. A stateless model runs
    /// as [`predict`](Model::predict).
    ///
    /// # Errors
    /// As [`call`](Model::call), and when the number of samples is not a multiple of the batch
    /// size; after an error every state is as it was before the call.
    pub fn predict_stateful(&mut self, inputs: &[InputArray<'_>]) -> Result<Vec<ArrayD<f32>>> {
        if !self.is_stateful() {
            return self.predict(inputs);
        }
        let shapes: Vec<&[usize]> = inputs.iter().map(InputArray::shape).collect();
        let n = self.check_inputs(&shapes)?;
        let batch = crate::stateful::fixed_batch(self).unwrap_or(n);
        crate::stateful::check_whole_batches(&self.name, batch, n)?;
        let mut states = crate::stateful::carried_states(&self.layers);
        let mut outs: Vec<Vec<ArrayD<f32>>> = Vec::new();
        for start in (0..n).step_by(batch) {
            let converted = inputs
                .iter()
                .map(|x| x.rows_as_f32(start, start + batch))
                .collect::<Result<Vec<_>>>()?;
            let views: Vec<ArrayViewD<'_, f32>> = converted.iter().map(|c| c.view()).collect();
            // States are committed only when every batch ran: a failure leaves them as they were.
            outs.push(self.run_masked(&views, Vec::new(), Some(&mut states))?.0);
        }
        let joined = (0..self.outputs.len())
            .map(|i| {
                let parts: Vec<ArrayViewD<'_, f32>> = outs.iter().map(|o| o[i].view()).collect();
                ndarray::concatenate(Axis(0), &parts).map_err(|e| Error::InvalidArgument {
                    layer: self.name.clone(),
                    message: format!("the outputs of the batches do not join: {e}"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        crate::stateful::set_nested_states(&mut self.layers, states)?;
        Ok(joined)
    }

    /// The summary table tf_keras prints, in the notebook's layout: the Sequential table for a
    /// chain of single-input layers, else with the `Connected to` column.
    ///
    /// # Errors
    /// Never at present; a `Result` as [`Sequential::summary`](crate::Sequential::summary).
    #[must_use = "the summary is returned, not printed: println!(\"{}\", model.summary()?)"]
    pub fn summary(&self) -> Result<String> {
        let sequential_like = self.is_sequential_like();
        let rows: Vec<Vec<String>> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut row = vec![
                    format!("{} ({})", l.name(), l.class_name()),
                    self.output_shape_text(i),
                    l.count_params().to_string(),
                ];
                if !sequential_like {
                    row.push(self.connections_text(i));
                }
                row
            })
            .collect();
        let (trainable, non_trainable) = crate::sequential::param_split(&self.layers);
        let layout = if sequential_like {
            Layout::SEQUENTIAL
        } else {
            Layout::FUNCTIONAL
        };
        Ok(summary::render_table(
            &self.name,
            &layout,
            &rows,
            &Totals {
                trainable,
                non_trainable,
            },
        ))
    }

    /// tf_keras's test in `print_summary`: one node per depth, each with at most one input,
    /// and no layer used twice.
    fn is_sequential_like(&self) -> bool {
        let mut per_depth: HashMap<usize, usize> = HashMap::new();
        for n in &self.nodes {
            *per_depth.entry(n.depth).or_insert(0) += 1;
            if n.inputs.len() > 1 {
                return false;
            }
        }
        if per_depth.values().any(|&c| c > 1) {
            return false;
        }
        let mut per_layer: HashMap<usize, usize> = HashMap::new();
        for n in &self.nodes {
            *per_layer.entry(n.layer).or_insert(0) += 1;
        }
        per_layer.values().all(|&c| c == 1)
    }

    /// tf_keras's `layer.output_shape`: the outputs of its one node (a list for an input or
    /// several outputs), or `multiple` for nodes of different shapes.
    fn output_shape_text(&self, layer: usize) -> String {
        let nodes: Vec<&Node> = self.nodes.iter().filter(|n| n.layer == layer).collect();
        let Some(first) = nodes.first() else {
            return "multiple".into();
        };
        if nodes.iter().any(|n| n.outputs != first.outputs) {
            return "multiple".into();
        }
        if first.outputs.len() == 1 && !first.inputs.is_empty() {
            return first.outputs[0].to_string();
        }
        let items = first
            .outputs
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        // The attention layers return `(output, scores)`, a tuple; the recurrent layers and
        // inputs a list.
        let tuple = matches!(
            self.layers[layer].class_name(),
            "MultiHeadAttention" | "Attention" | "AdditiveAttention"
        );
        if tuple {
            format!("({items})")
        } else {
            format!("[{items}]")
        }
    }

    /// tf_keras's `Connected to`: each inbound tensor of each of the layer's nodes, as
    /// `name[node][tensor]`, in a Python list.
    fn connections_text(&self, layer: usize) -> String {
        let mut items = Vec::new();
        // In the order of the layer's calls, as Keras lists its inbound nodes.
        let mut nodes: Vec<&Node> = self.nodes.iter().filter(|n| n.layer == layer).collect();
        nodes.sort_by_key(|n| n.node_index);
        for n in nodes {
            for t in &n.inputs {
                let src = &self.nodes[t.node];
                items.push(format!(
                    "'{}[{}][{}]'",
                    self.layers[src.layer].name(),
                    src.node_index,
                    t.index
                ));
            }
        }
        format!("[{}]", items.join(", "))
    }
}

/// A mask from a tensor's values: `(batch, timesteps)`, true where non-zero.
fn mask_of(layer: &str, v: ArrayViewD<'_, f32>) -> Result<Mask> {
    let shape = v.shape().to_vec();
    let v = v
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|_| Error::InvalidArgument {
            layer: layer.to_string(),
            message: format!(
                "a mask must have the shape (batch, timesteps); this one is {shape:?}"
            ),
        })?;
    Ok(v.mapv(|x| x != 0.0))
}

/// A Functional model is a layer of a bigger model, as in Keras: its inputs and outputs are
/// the node's, its weights its layers', in `model.layers` order.
impl Layer for Model {
    fn name(&self) -> &str {
        &self.name
    }

    fn ensure_named(&mut self) {}

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn class_name(&self) -> &'static str {
        "Functional"
    }

    fn trainable(&self) -> bool {
        self.layers.iter().any(|l| l.trainable())
    }

    fn set_trainable(&mut self, trainable: bool) {
        for layer in self.layers.iter_mut() {
            layer.set_trainable(trainable);
        }
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        Ok(self.input_shapes().into_iter().next())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        if inputs.len() != self.inputs.len() {
            return Err(crate::layer::input_count(
                &self.name,
                self.inputs.len(),
                inputs.len(),
            ));
        }
        for (i, (shape, expected)) in inputs.iter().zip(self.input_shapes()).enumerate() {
            let fits = shape.rank() == expected.rank()
                && shape
                    .dims()
                    .iter()
                    .zip(expected.dims())
                    .skip(1)
                    .all(|(a, b)| a.is_none() || b.is_none() || a == b);
            if !fits {
                return Err(Error::IncompatibleShape {
                    layer: format!("{} (input {i})", self.name),
                    expected: expected.with_batch(None),
                    found: shape.clone(),
                });
            }
        }
        let batch = inputs.first().and_then(|i| i.dim(0));
        Ok(self
            .output_shapes()
            .into_iter()
            .map(|s| s.with_batch(batch))
            .collect())
    }

    fn build(&mut self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        self.compute_output_shape(inputs)
    }

    fn is_built(&self) -> bool {
        true
    }

    fn weight_specs(&self) -> Vec<crate::layer::WeightSpec> {
        crate::layer::nested_weight_specs(&self.layers)
    }

    fn weight_rules(&self) -> Vec<crate::train::WeightRule> {
        self.layers.iter().flat_map(|l| l.weight_rules()).collect()
    }

    fn activity_regularizers(&self) -> Vec<(String, crate::train::Regularizer)> {
        self.layers
            .iter()
            .flat_map(|l| l.activity_regularizers())
            .collect()
    }

    fn initialize(&mut self) {
        crate::layer::initialize_layers(&mut self.layers);
    }

    fn weights(&self) -> Vec<ArrayViewD<'_, f32>> {
        self.layers.iter().flat_map(|l| l.weights()).collect()
    }

    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        Model::set_weights(self, weights)
    }

    fn output_count(&self) -> usize {
        self.outputs.len()
    }

    fn is_stateful(&self) -> bool {
        Model::is_stateful(self)
    }

    /// Every stateful layer's states, in layer order.
    fn states(&self) -> Vec<ndarray::Array2<f32>> {
        crate::stateful::nested_states(&self.layers)
    }

    /// Gives each stateful layer its states, taken in layer order; all or nothing.
    fn set_states(&mut self, states: Vec<ndarray::Array2<f32>>) -> Result<()> {
        let per_layer = crate::stateful::split_states(&self.name, &self.layers, states)?;
        crate::stateful::set_nested_states(&mut self.layers, per_layer)
    }

    fn reset_states(&mut self) {
        Model::reset_states(self);
    }

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|x| x.shape()).collect();
        self.check_inputs(&shapes)?;
        let masks = (0..inputs.len())
            .map(|i| ctx.input_mask(i).map(|m| m.to_owned()))
            .collect();
        let mut states = crate::stateful::given_states(&self.name, &self.layers, ctx)?;
        let logits = ctx.logits_wanted();
        let (outs, masks, left_out) = if ctx.records() {
            let mut records = Vec::new();
            let input_gradients: Vec<bool> = (0..inputs.len())
                .map(|i| ctx.needs_input_gradient(i))
                .collect();
            let run = self.run_with(
                inputs,
                masks,
                states.as_mut(),
                ctx,
                Some((&mut records, &input_gradients)),
                logits,
            )?;
            ctx.save_for_backward(Box::new(FunctionalSaved(records)));
            run
        } else {
            self.run_with(inputs, masks, states.as_mut(), ctx, None, logits)?
        };
        ctx.set_output_masks(masks);
        if logits {
            ctx.set_left_out_activations(left_out);
        }
        if let Some(states) = states {
            ctx.set_states(crate::stateful::join_states(states));
        }
        Ok(outs)
    }

    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let FunctionalSaved(records) = saved.get(&self.name)?;
        self.backward_graph(records, output_grads)
    }

    /// Each layer's, from the record of its last call (none for a layer no node ran), in the
    /// model's weights' order.
    fn updates(&self, saved: &SavedForBackward) -> Result<Vec<Option<ArrayD<f32>>>> {
        let FunctionalSaved(records) = saved.get(&self.name)?;
        if records.len() != self.nodes.len() {
            return Err(Error::InvalidArgument {
                layer: self.name.clone(),
                message: "the updates were asked of the record of another model".into(),
            });
        }
        let mut per_layer: Vec<Option<Vec<Option<ArrayD<f32>>>>> = vec![None; self.layers.len()];
        for (node, record) in self.nodes.iter().zip(records) {
            if let (false, Some(record)) = (node.inputs.is_empty(), record) {
                per_layer[node.layer] = Some(self.layers[node.layer].updates(record)?);
            }
        }
        Ok(self
            .layers
            .iter()
            .zip(per_layer)
            .flat_map(|(layer, u)| u.unwrap_or_else(|| vec![None; layer.weight_specs().len()]))
            .collect())
    }

    fn clone_box(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

/// What a recording call of a Functional model keeps: each node's record (`None` for inputs).
struct FunctionalSaved(Vec<Option<SavedForBackward>>);

impl Model {
    /// The backward pass of a recorded run: the nodes from the last to the first, each
    /// tensor's gradient the sum over its readers, each layer's weight gradients the sum over
    /// its calls. The weights' gradients come in the model's order (its layers', in order;
    /// zeros for a layer the loss does not reach).
    fn backward_graph(
        &self,
        records: &[Option<SavedForBackward>],
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        if records.len() != self.nodes.len() {
            return Err(Error::InvalidArgument {
                layer: self.name.clone(),
                message: "the backward pass was given the record of another model".into(),
            });
        }
        let mut grads: Vec<Vec<Option<ArrayD<f32>>>> = self
            .nodes
            .iter()
            .map(|n| vec![None; n.outputs.len()])
            .collect();
        let add = |slot: &mut Option<ArrayD<f32>>, g: ArrayD<f32>| match slot {
            Some(acc) => *acc += &g,
            None => *slot = Some(g),
        };
        for (t, g) in self.outputs.iter().zip(output_grads) {
            if let Some(g) = g {
                add(&mut grads[t.node][t.index], g.to_owned());
            }
        }
        let mut layer_grads: Vec<Option<Vec<ArrayD<f32>>>> = vec![None; self.layers.len()];
        for (ni, node) in self.nodes.iter().enumerate().rev() {
            if node.inputs.is_empty() {
                continue;
            }
            let record = records[ni]
                .as_ref()
                .expect("every layer node keeps a record");
            // A node the loss does not reach has nothing to pass back, unless its activity
            // penalty does.
            if grads[ni].iter().all(Option::is_none) && record.activity_gradients().is_empty() {
                continue;
            }
            let layer = self.layers[node.layer].as_ref();
            let views: Vec<Option<ArrayViewD<'_, f32>>> = grads[ni]
                .iter()
                .map(|g| g.as_ref().map(|g| g.view()))
                .collect();
            let g = backward_layer(layer, record, &views)?;
            for (t, d) in node.inputs[..node.data].iter().zip(g.inputs) {
                if let Some(d) = d {
                    add(&mut grads[t.node][t.index], d);
                }
            }
            match &mut layer_grads[node.layer] {
                Some(acc) => acc.iter_mut().zip(g.weights).for_each(|(a, w)| *a += &w),
                slot => *slot = Some(g.weights),
            }
            grads[ni].iter_mut().for_each(|g| *g = None);
        }
        let inputs = self.inputs.iter().map(|&n| grads[n][0].take()).collect();
        let weights = self
            .layers
            .iter()
            .zip(layer_grads)
            .flat_map(|(layer, g)| {
                g.unwrap_or_else(|| {
                    layer
                        .weight_specs()
                        .iter()
                        .map(|w| ArrayD::zeros(w.shape.clone()))
                        .collect()
                })
            })
            .collect();
        Ok(Gradients { inputs, weights })
    }
}

impl fmt::Display for Model {
    /// The summary table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.summary() {
            Ok(s) => f.write_str(&s),
            Err(e) => write!(f, "{e}"),
        }
    }
}

/// A batch size that takes all of `x` at once (at least 1).
fn one_batch(x: &[ArrayViewD<'_, f32>]) -> usize {
    x.first()
        .and_then(|a| a.shape().first().copied())
        .unwrap_or(0)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{concatenate::Concatenate, dense::Dense, lstm::LSTM, merge::Add};
    use crate::session::clear_session;
    use ndarray::{Array2, Array3};

    #[test]
    fn only_outputs_that_nothing_else_reads_give_logits() -> Result<()> {
        // As Keras's `_keras_logits`: the loss of `p` may read its logits, but `q`'s Dense
        // reads `p` itself, so a model that also outputs `q` must compute `p`.
        clear_session();
        let a = Input::new((3,));
        let p = Dense::new(2)
            .with_activation(ActivationFn::Softmax)
            .apply(&a)?;
        let q = Dense::new(1)
            .with_activation(ActivationFn::Sigmoid)
            .apply(&p)?;
        let r = Dense::new(1)
            .with_activation(ActivationFn::Sigmoid)
            .apply(&a)?;
        let x = Array2::from_elem((2, 3), 0.5f32).into_dyn();
        type LeftOut = (Vec<Option<ActivationFn>>, Vec<ArrayD<f32>>);
        let left_out = |model: &Model| -> Result<LeftOut> {
            let mut ctx = CallContext::inference().with_logits_wanted();
            let y = Layer::call(model, &[x.view()], &mut ctx)?;
            Ok((ctx.take_left_out_activations(y.len()), y))
        };
        let both = Model::new(std::slice::from_ref(&a), &[p.clone(), q, r.clone()])?;
        let (left, y) = left_out(&both)?;
        assert_eq!(
            left,
            vec![
                None,
                Some(ActivationFn::Sigmoid),
                Some(ActivationFn::Sigmoid)
            ]
        );
        // `p` is a softmax's output (rows sum to 1); `r` is logits, which a sigmoid maps to
        // what a call without the request gives.
        assert!((y[0].sum() - 2.0).abs() < 1e-6);
        let plain = Layer::call(&both, &[x.view()], &mut CallContext::inference())?;
        let r_logits = y[2].mapv(crate::activation::sigmoid);
        assert!(r_logits.abs_diff_eq(&plain[2], 1e-7));
        assert!(!y[2].abs_diff_eq(&plain[2], 1e-3));
        let alone = Model::new(&[a], &[p, r])?;
        assert_eq!(
            left_out(&alone)?.0,
            vec![Some(ActivationFn::Softmax), Some(ActivationFn::Sigmoid)]
        );
        Ok(())
    }

    #[test]
    fn layers_come_in_keras_order_and_run() -> Result<()> {
        clear_session();
        let a = Input::new((3,));
        let b = Input::new((3,));
        let da = Dense::new(2).apply(&a)?;
        let db = Dense::new(2).apply(&b)?;
        let sum = Add::new().apply_all(&[&da, &db])?.remove(0);
        let model = Model::new(&[a, b], &[sum])?;
        let names: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
        // Keras: by depth from the inputs, each depth in traversal order from the output.
        assert_eq!(names, ["input_1", "input_2", "dense", "dense_1", "add"]);
        assert_eq!(model.name(), "model");
        let x = Array2::<f32>::ones((5, 3));
        let y = model.predict(&[(&x).into(), (&x).into()])?;
        assert_eq!(y[0].shape(), &[5, 2]);
        Ok(())
    }

    #[test]
    fn a_disconnected_graph_is_keras_error() -> Result<()> {
        let a = Input::new((3,));
        let b = Input::new((3,));
        let y = Concatenate::new().apply_all(&[&a, &b])?.remove(0);
        let err = Model::new(&[a], &[y]).unwrap_err();
        assert!(err.to_string().contains("Graph disconnected"), "{err}");
        Ok(())
    }

    #[test]
    fn initial_states_are_inputs_and_return_states_outputs() -> Result<()> {
        let x = Input::new((4, 2));
        let outs = LSTM::new(3).with_return_state(true).apply_all(&[&x])?;
        let dec = Input::new((5, 2));
        let y = LSTM::new(3)
            .apply_all(&[&dec, &outs[1], &outs[2]])?
            .remove(0);
        let model = Model::new(&[x, dec], &[y])?;
        let out = model.call(&[
            (&Array3::<f32>::ones((2, 4, 2))).into(),
            (&Array3::<f32>::ones((2, 5, 2))).into(),
        ])?;
        assert_eq!(out[0].shape(), &[2, 3]);
        assert!(!model.is_sequential_like());
        Ok(())
    }
}
