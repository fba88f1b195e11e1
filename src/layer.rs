//! The [`Layer`] trait every layer implements, the [`CallContext`] a call runs in, and the shape
//! and weight checks layers share.
//!
//! # Design
//!
//! - **One call path.** [`Layer::call`] takes the layer's inputs (its main input first, then any
//!   extra ones, such as a recurrent layer's initial states, as in a Keras Functional node) and a
//!   [`CallContext`], and returns the outputs. There is no other forward method: `Sequential`
//!   calls it with one input, a graph with several, [`Bidirectional`](crate::Bidirectional) calls
//!   its two layers through it.
//! - **The context carries what is not a tensor.** The [`Mode`] (inference or training), the
//!   masks of the inputs and of the outputs, the states a stateful layer carries from one call
//!   to the next, and a slot for what a backward pass will need. A stateful layer reads its
//!   states from the context and leaves its final states there, so `call` takes `&self`: the
//!   model commits every layer's new states only once the whole call succeeded.
//! - **Shapes are separate from compute**, over lists: [`Layer::compute_output_shape`] maps input
//!   shapes to output shapes without touching weights.
//! - **Building is separate from initializing.** [`Layer::build`] fixes the input and weight
//!   shapes ([`Layer::weight_specs`]) and checks their sizes against [`limits`](crate::limits::MAX_LAYER_PARAMS),
//!   without allocating weights. [`Layer::initialize`] draws fresh weights from the initializers;
//!   [`Layer::set_weights`] gives them. A model runs `initialize` only for a layer that is new;
//!   a loader checks the stored shapes against `weight_specs` and reads, and no initializer runs.
//! - **Masks** follow Keras: a layer that does not set its output masks in the context gets its
//!   [`mask_policy`](Layer::mask_policy) applied by [`CallContext::output_masks`].

use std::any::Any;
use std::fmt;

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD};

use crate::activation::ActivationFn;
use crate::error::{Error, Result};
use crate::limits;
use crate::session::unique_name;
use crate::shape::Shape;
use crate::train::loss::Dialect;

/// A per-timestep mask, `(batch, timesteps)`: `true` where the step is real, `false` where it is
/// padding. Keras's `_keras_mask`, made by `Embedding(mask_zero=True)` and `Masking`.
pub type Mask = Array2<bool>;

/// The states a recurrent layer carries, `(batch, units)` each: `[h]`, or `[h, c]` for an LSTM.
pub type States = Vec<Array2<f32>>;

/// The outputs of a call, in Keras's order.
pub type Outputs = Vec<ArrayD<f32>>;

/// What a layer does with the mask that arrives with its input, as Keras decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskPolicy {
    /// The first output has the input's timesteps, and the first input's mask goes on with it
    /// (Keras's `supports_masking`: Dense, Dropout, Activation, TimeDistributed, sequence RNNs).
    Propagate,
    /// The mask stops here (Flatten, RepeatVector, an RNN's last output). Keras does the same,
    /// without an error (Keras 3 warns for layers that do not support masking).
    Drop,
}

/// Whether a call is inference or training: Keras's `training` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// `predict`, `evaluate`: dropout is the identity, statistics are not updated.
    #[default]
    Inference,
    /// `fit`: layers keep what their backward pass needs.
    Training,
}

/// Everything a [`Layer::call`] gets and leaves besides its tensors.
///
/// ```
/// use ndarray::{array, Array3};
/// use seqnn::{CallContext, Layer, Masking, Shape};
/// let mut masking = Masking::new(0.0);
/// masking.build(&[Shape::new(vec![None, Some(2), Some(1)])])?;
/// let x = array![[[0.0_f32], [3.0]]].into_dyn();
/// let mut ctx = CallContext::inference();
/// let y = masking.call(&[x.view()], &mut ctx)?;
/// let masks = ctx.output_masks(&masking, y.len());
/// assert_eq!(masks[0], Some(array![[false, true]]));
/// # Ok::<(), seqnn::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct CallContext {
    mode: Mode,
    /// Whether layers keep what a backward pass needs (always in training).
    record: bool,
    input_masks: Vec<Option<Mask>>,
    output_masks: Option<Vec<Option<Mask>>>,
    states: Option<Vec<Array2<f32>>>,
    saved: Option<SavedForBackward>,
    /// Which inputs' gradients the backward pass must return; `None`: every input's.
    input_gradients: Option<Vec<bool>>,
    /// Whether the caller asks for the logits of a final sigmoid or softmax.
    logits_wanted: bool,
    /// The activations a layer left out of its outputs, one per output, when asked.
    left_out: Option<Vec<Option<ActivationFn>>>,
    /// Whether the layers called add their activity penalties, and how; `None`: they add
    /// none (predict).
    activity: Option<ActivityPenalties>,
    /// The activity penalties the call's layers added (Keras's `layer.losses`).
    penalty: f32,
}

/// How the layers of a call add their activity penalties: as `dialect`'s Keras does, each
/// multiplied by `scale` (what the wrappers around them make of it, see
/// [`TimeDistributed`](crate::TimeDistributed)).
#[derive(Debug, Clone, Copy)]
struct ActivityPenalties {
    dialect: Dialect,
    scale: f32,
    /// How many `TimeDistributed`s wrap the call directly, one inside the other (0 when a
    /// model or another layer stands between).
    time_distributed: usize,
}

/// What a layer keeps from a training call for its backward pass: its own record (its own
/// type, boxed) and, when the call added an activity penalty, the penalty's gradient with
/// respect to each output, which the model's backward pass adds to the outputs' gradients
/// before it calls [`Layer::backward`].
pub struct SavedForBackward {
    record: Box<dyn Any + Send + Sync>,
    activity: Vec<ArrayD<f32>>,
}

impl SavedForBackward {
    /// A layer's record, without an activity penalty.
    pub fn new(record: Box<dyn Any + Send + Sync>) -> Self {
        SavedForBackward {
            record,
            activity: Vec::new(),
        }
    }

    /// The gradient of the call's activity penalty with respect to each of its outputs; empty
    /// when the call added none.
    pub fn activity_gradients(&self) -> &[ArrayD<f32>] {
        &self.activity
    }

    /// The layer's own record, or an error naming `layer` when the record is another's.
    pub(crate) fn get<T: 'static>(&self, layer: &str) -> Result<&T> {
        self.record
            .downcast_ref::<T>()
            .ok_or_else(|| Error::InvalidArgument {
                layer: layer.to_string(),
                message: "the backward pass was given what another layer's call kept".into(),
            })
    }
}

impl fmt::Debug for SavedForBackward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SavedForBackward(..)")
    }
}

impl CallContext {
    /// A context for `mode`, without masks or states.
    pub fn new(mode: Mode) -> Self {
        CallContext {
            mode,
            ..CallContext::default()
        }
    }

    /// A context for inference.
    pub fn inference() -> Self {
        Self::new(Mode::Inference)
    }

    /// A context for training: layers act as in `fit` and keep what their backward pass needs.
    pub fn training() -> Self {
        Self::new(Mode::Training).recording()
    }

    /// The same context, with layers keeping what their backward pass needs in either mode:
    /// the gradient of an inference call (Keras's `GradientTape` around `training=False`, or a
    /// frozen BatchNormalization inside `fit`).
    #[must_use]
    pub fn recording(mut self) -> Self {
        self.record = true;
        self
    }

    /// Whether layers keep what their backward pass needs.
    pub fn records(&self) -> bool {
        self.record
    }

    /// The same context, saying which inputs of the call need a gradient from its backward
    /// pass: one flag per input, in order; an input past the end of `needed` needs one. A
    /// caller that has no use for an input's gradient (`fit` for a model's own inputs) says
    /// so, and the layer may then skip computing it and return `None` in its place (a
    /// recurrent layer saves `d_z · kernelᵀ` over every timestep). By default every input
    /// needs its gradient.
    ///
    /// ```
    /// use seqnn::CallContext;
    /// let ctx = CallContext::training().with_input_gradients(vec![false]);
    /// assert!(!ctx.needs_input_gradient(0));
    /// assert!(ctx.needs_input_gradient(1));
    /// ```
    #[must_use]
    pub fn with_input_gradients(mut self, needed: Vec<bool>) -> Self {
        self.input_gradients = Some(needed);
        self
    }

    /// Whether the backward pass of this call must return the gradient of input `i`
    /// (see [`with_input_gradients`](Self::with_input_gradients)).
    pub fn needs_input_gradient(&self, i: usize) -> bool {
        self.input_gradients
            .as_ref()
            .and_then(|n| n.get(i).copied())
            .unwrap_or(true)
    }

    /// The same context, asking for logits: a layer whose outputs end in a sigmoid or softmax
    /// may leave that activation out and return the logits instead, saying so with
    /// [`set_left_out_activations`](Self::set_left_out_activations). Its backward pass then
    /// takes the gradient with respect to the logits. This is how `fit` follows Keras, whose
    /// crossentropy losses read the logits of a final sigmoid or softmax (`_keras_logits`)
    /// rather than its clipped probabilities; see [`Loss::uses_logits`](crate::Loss::uses_logits).
    ///
    /// ```
    /// use ndarray::array;
    /// use seqnn::{ActivationFn, Activation, CallContext, Layer};
    /// let sigmoid = Activation::new(ActivationFn::Sigmoid);
    /// let x = array![[40.0_f32, -3.0]].into_dyn();
    /// let mut ctx = CallContext::inference().with_logits_wanted();
    /// let y = sigmoid.call(&[x.view()], &mut ctx)?;
    /// assert_eq!(y[0], x); // the logits, not 1.0 and 0.047
    /// assert_eq!(ctx.take_left_out_activations(1), vec![Some(ActivationFn::Sigmoid)]);
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    #[must_use]
    pub fn with_logits_wanted(mut self) -> Self {
        self.logits_wanted = true;
        self
    }

    /// Whether the caller asks for logits (see [`with_logits_wanted`](Self::with_logits_wanted)).
    pub fn logits_wanted(&self) -> bool {
        self.logits_wanted
    }

    /// Says which activation the layer left out of each output, asked for logits (`None` for
    /// an output that is as usual).
    pub fn set_left_out_activations(&mut self, left_out: Vec<Option<ActivationFn>>) {
        self.left_out = Some(left_out);
    }

    /// The activation left out of each of the `outputs` outputs of the call: none unless the
    /// layer was asked for logits and gave them.
    pub fn take_left_out_activations(&mut self, outputs: usize) -> Vec<Option<ActivationFn>> {
        let mut left = self.left_out.take().unwrap_or_default();
        left.resize(outputs, None);
        left
    }

    /// The activation a layer whose outputs end in `activation` leaves out: `activation` when
    /// the caller asks for logits and it is a sigmoid or softmax, and not otherwise. It also
    /// records the choice for the caller.
    pub(crate) fn leave_out(&mut self, activation: ActivationFn) -> Option<ActivationFn> {
        let left = (self.logits_wanted
            && matches!(activation, ActivationFn::Sigmoid | ActivationFn::Softmax))
        .then_some(activation);
        if self.logits_wanted {
            self.left_out = Some(vec![left]);
        }
        left
    }

    /// A context for the call a wrapper makes of the layer inside it, on inputs that are the
    /// wrapper's own input `0` then `extra` more: the same mode and recording, and the
    /// gradient needs of input `0` then of the wrapper's inputs `extra`; no masks or states.
    pub(crate) fn inner(&self, extra: std::ops::Range<usize>) -> CallContext {
        let mut ctx = self.child();
        ctx.record = self.record;
        if self.input_gradients.is_some() {
            let needed = std::iter::once(0)
                .chain(extra)
                .map(|i| self.needs_input_gradient(i))
                .collect();
            ctx = ctx.with_input_gradients(needed);
        }
        ctx
    }

    /// The same context, with the layers it calls adding their activity penalties as
    /// `dialect`'s Keras adds them to `model.losses`: `regularizer(y) / batch` for each output
    /// `y` of a layer with an `activity_regularizer` (Keras's `Layer.__call__`; an
    /// [`ActivityRegularization`](crate::ActivityRegularization) is such a layer), whatever
    /// the mode and whether the layer is trainable, summed in
    /// [`activity_penalty`](Self::activity_penalty). A recording call keeps each penalty's
    /// gradient for the backward pass. The models and wrappers add them when they call their
    /// layers; a layer's own [`call`](Layer::call), as Keras's `call`, adds none. The
    /// dialects differ in [`TimeDistributed`](crate::TimeDistributed) only: Keras 3 calls the
    /// wrapped layer's `call` on each timestep, so the layer's own penalty is not added and
    /// those of the layers inside it are divided by the batch; tf_keras adds the layer's over
    /// the `batch · timesteps` rows it sees, and a wrapped model's twice (its `compute_mask`
    /// runs it again). By default no penalty is added (predict).
    ///
    /// ```
    /// use ndarray::array;
    /// use seqnn::train::Regularizer;
    /// use seqnn::{CallContext, Dense, Dialect, Layer, Sequential};
    /// let mut model = Sequential::new();
    /// model.add(
    ///     Dense::new(1)
    ///         .input_shape((2,))
    ///         .with_activity_regularizer(Regularizer::l2(0.5)),
    /// )?;
    /// model.set_weights(&[array![[1.0_f32], [1.0]].into_dyn(), array![0.0_f32].into_dyn()])?;
    /// let x = array![[1.0_f32, 2.0], [0.0, 1.0]].into_dyn();
    /// let mut ctx = CallContext::inference().with_activity_penalties(Dialect::TfKeras);
    /// let y = Layer::call(&model, &[x.view()], &mut ctx)?;
    /// // y = [3, 1]: 0.5 · (3² + 1²) / 2 rows.
    /// assert_eq!(ctx.activity_penalty(), 2.5);
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    #[must_use]
    pub fn with_activity_penalties(mut self, dialect: Dialect) -> Self {
        self.activity = Some(ActivityPenalties {
            dialect,
            scale: 1.0,
            time_distributed: 0,
        });
        self
    }

    /// The dialect the activity penalties follow, or `None` when the call adds none
    /// ([`with_activity_penalties`](Self::with_activity_penalties)).
    pub fn activity_dialect(&self) -> Option<Dialect> {
        self.activity.map(|a| a.dialect)
    }

    /// The sum of the activity penalties the call added (0 when it adds none).
    pub fn activity_penalty(&self) -> f32 {
        self.penalty
    }

    /// A context for a layer that a model or wrapper calls: the same mode and activity
    /// penalties; no recording, masks or states.
    pub(crate) fn child(&self) -> CallContext {
        CallContext {
            activity: self.activity.map(|a| ActivityPenalties {
                time_distributed: 0,
                ..a
            }),
            ..CallContext::new(self.mode)
        }
    }

    /// Multiplies the activity penalties this call's layers add, and their gradients, by
    /// `factor`.
    pub(crate) fn scale_activity(&mut self, factor: f32) {
        if let Some(a) = &mut self.activity {
            a.scale *= factor;
        }
    }

    /// For the call a `TimeDistributed` makes of its layer, `ctx` being the wrapper's own
    /// context: how many `TimeDistributed`s wrap the layer directly, this one included.
    pub(crate) fn enter_time_distributed(&mut self, ctx: &CallContext) -> usize {
        let depth = ctx.activity.map_or(0, |a| a.time_distributed) + 1;
        if let Some(a) = &mut self.activity {
            a.time_distributed = depth;
        }
        depth
    }

    /// Adds the activity penalties that the call of `child` added.
    pub(crate) fn add_penalties_of(&mut self, child: &CallContext) {
        self.penalty += child.penalty;
    }

    /// The same context with the masks of the inputs, one per input (`None` for an unmasked one).
    #[must_use]
    pub fn with_masks(mut self, masks: Vec<Option<Mask>>) -> Self {
        self.input_masks = masks;
        self
    }

    /// The same context with the states a stateful layer starts from.
    #[must_use]
    pub fn with_states(mut self, states: Vec<Array2<f32>>) -> Self {
        self.states = Some(states);
        self
    }

    /// Inference or training.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The mask of input `i`, if it has one.
    pub fn input_mask(&self, i: usize) -> Option<ArrayView2<'_, bool>> {
        self.input_masks
            .get(i)
            .and_then(|m| m.as_ref())
            .map(|m| m.view())
    }

    /// Sets the masks of the outputs, one per output. A layer that makes or changes masks
    /// (Embedding, Masking, an RNN) calls this; the others leave it to their
    /// [`mask_policy`](Layer::mask_policy).
    pub fn set_output_masks(&mut self, masks: Vec<Option<Mask>>) {
        self.output_masks = Some(masks);
    }

    /// The masks of the `outputs` outputs of a call of `layer`: those the layer set, or else
    /// its [`mask_policy`](Layer::mask_policy) applied to the input masks (Keras's
    /// `compute_mask`: the first input's mask on the first output, none on the others).
    pub fn output_masks(&mut self, layer: &dyn Layer, outputs: usize) -> Vec<Option<Mask>> {
        let mut masks = match self.output_masks.take() {
            Some(m) => m,
            None => {
                let mut m = vec![None; outputs];
                if layer.mask_policy() == MaskPolicy::Propagate && outputs > 0 {
                    m[0] = self.input_masks.first().cloned().flatten();
                }
                m
            }
        };
        masks.resize(outputs, None);
        masks
    }

    /// Takes the states a stateful layer starts from (`None`: zeros).
    pub fn take_states(&mut self) -> Option<Vec<Array2<f32>>> {
        self.states.take()
    }

    /// Leaves a stateful layer's final states, for the next call.
    pub fn set_states(&mut self, states: Vec<Array2<f32>>) {
        self.states = Some(states);
    }

    /// Keeps what a training call's backward pass will need.
    pub fn save_for_backward(&mut self, saved: Box<dyn Any + Send + Sync>) {
        self.saved = Some(SavedForBackward::new(saved));
    }

    /// Takes what the call kept for its backward pass.
    pub fn take_saved(&mut self) -> Option<SavedForBackward> {
        self.saved.take()
    }
}

/// What a backward pass returns: the gradient of the loss with respect to each input of the
/// call and to each weight of the layer.
#[derive(Debug, Clone, Default)]
pub struct Gradients {
    /// One per input of the call, in order: `None` for an input that takes no gradient
    /// (integer ids) or that the call's context said needs none.
    pub inputs: Vec<Option<ArrayD<f32>>>,
    /// One per weight, in Keras order ([`Layer::weight_specs`]), shaped as the weight; empty
    /// for a layer without weights. Training applies only those of trainable weights.
    pub weights: Vec<ArrayD<f32>>,
}

impl Gradients {
    /// The gradients of a layer with one input and no weights.
    pub(crate) fn of_input(dx: ArrayD<f32>) -> Self {
        Gradients {
            inputs: vec![Some(dx)],
            weights: Vec::new(),
        }
    }
}

/// Keras's `Layer.__call__` around [`Layer::call`], as the models and wrappers call their
/// layers: the call, then, when `ctx` adds activity penalties
/// ([`CallContext::with_activity_penalties`]), the layer's `regularizer(y) / batch` for each
/// output `y`, `batch` its first dimension; a recording call keeps the penalty's gradient
/// `regularizer'(y) / batch` for [`backward_layer`].
///
/// # Errors
/// As [`Layer::call`]; [`Error::Unsupported`] for an activity regularizer training cannot
/// compute (`OrthogonalRegularizer`).
pub(crate) fn call_layer(
    layer: &dyn Layer,
    inputs: &[ArrayViewD<'_, f32>],
    ctx: &mut CallContext,
) -> Result<Outputs> {
    let (regularizer, factor) = match (ctx.activity, layer.activity_regularizer()) {
        (Some(a), Some(r)) => (r, a.scale),
        _ => return layer.call(inputs, ctx),
    };
    if !regularizer.trains() {
        return Err(untrainable_activity(layer.name(), &regularizer));
    }
    let outputs = layer.call(inputs, ctx)?;
    let mut grads = Vec::with_capacity(if ctx.record { outputs.len() } else { 0 });
    for y in &outputs {
        // Keras's `divide_no_nan`: an output without rows adds 0.
        let rows = y.shape().first().copied().unwrap_or(1);
        let scale = if rows == 0 { 0.0 } else { factor / rows as f32 };
        ctx.penalty += regularizer.penalty(y.view()) * scale;
        if ctx.record {
            let mut g = ArrayD::zeros(y.raw_dim());
            regularizer.add_gradient(y.view(), scale, g.view_mut());
            grads.push(g);
        }
    }
    if ctx.record {
        ctx.saved
            .get_or_insert_with(|| SavedForBackward::new(Box::new(())))
            .activity = grads;
    }
    Ok(outputs)
}

/// The error for an activity regularizer that training cannot compute.
pub(crate) fn untrainable_activity(layer: &str, regularizer: &crate::train::Regularizer) -> Error {
    Error::Unsupported {
        layer: layer.to_string(),
        class: regularizer.class_name().to_string(),
        message: format!(
            "the {} as activity_regularizer is not implemented in training (it is kept, \
             saved, and has no effect on predict)",
            regularizer.class_name()
        ),
    }
}

/// The backward pass of a call made by [`call_layer`]: [`Layer::backward`] from the outputs'
/// gradients plus those of the call's activity penalty, if any.
///
/// # Errors
/// As [`Layer::backward`]; [`Error::InvalidArgument`] when a gradient's shape is not its
/// output's.
pub(crate) fn backward_layer(
    layer: &dyn Layer,
    saved: &SavedForBackward,
    output_grads: &[Option<ArrayViewD<'_, f32>>],
) -> Result<Gradients> {
    if saved.activity.is_empty() {
        return layer.backward(saved, output_grads);
    }
    let mut sums: Vec<Option<ArrayD<f32>>> = Vec::with_capacity(saved.activity.len());
    for (i, p) in saved.activity.iter().enumerate() {
        sums.push(match output_grads.get(i).and_then(Option::as_ref) {
            Some(g) => {
                check_gradient(layer.name(), i, g, p.shape())?;
                Some(g + p)
            }
            None => None,
        });
    }
    let grads: Vec<Option<ArrayViewD<'_, f32>>> = (sums.iter().zip(&saved.activity))
        .map(|(sum, p)| Some(sum.as_ref().unwrap_or(p).view()))
        .collect();
    layer.backward(saved, &grads)
}

/// The gradient of output `index` in a backward pass, checked against the output's `shape`,
/// as an owned array in standard layout; zeros when the loss does not reach the output.
pub(crate) fn output_grad(
    layer: &str,
    output_grads: &[Option<ArrayViewD<'_, f32>>],
    index: usize,
    shape: &[usize],
) -> Result<ArrayD<f32>> {
    match output_grads.get(index).and_then(Option::as_ref) {
        Some(g) => {
            check_gradient(layer, index, g, shape)?;
            Ok(g.as_standard_layout().into_owned())
        }
        None => Ok(ArrayD::zeros(shape)),
    }
}

/// The weight specs of a model's layers, in order, each named under its layer and trainable
/// only if its layer is.
pub(crate) fn nested_weight_specs(layers: &[Box<dyn Layer>]) -> Vec<WeightSpec> {
    layers
        .iter()
        .flat_map(|l| {
            let name = l.name().to_string();
            l.weight_specs()
                .into_iter()
                .map(move |w| w.nested(&name, l.trainable()))
        })
        .collect()
}

/// Draws weights for a model's built layers that have none yet.
pub(crate) fn initialize_layers(layers: &mut [Box<dyn Layer>]) {
    for layer in layers.iter_mut() {
        if layer.is_built() && !layer.has_weights() {
            layer.initialize();
        }
    }
}

/// What a training call of a layer keeps when its backward pass needs only its input's shape.
#[derive(Debug)]
pub(crate) struct InputShape(pub(crate) Vec<usize>);

/// For the backward pass of a layer whose training call kept only its input's shape
/// ([`InputShape`]): that shape, and the gradient of its output, whose shape `output` gives
/// from it.
pub(crate) fn input_shape_and_grad<'a>(
    layer: &str,
    saved: &'a SavedForBackward,
    output_grads: &[Option<ArrayViewD<'_, f32>>],
    output: impl FnOnce(&[usize]) -> Result<Vec<usize>>,
) -> Result<(&'a [usize], ArrayD<f32>)> {
    let InputShape(shape) = saved.get(layer)?;
    let g = output_grad(layer, output_grads, 0, &output(shape)?)?;
    Ok((shape, g))
}

/// Checks that the gradient of output `index` has the output's shape, in a backward pass.
pub(crate) fn check_gradient(
    layer: &str,
    index: usize,
    grad: &ArrayViewD<'_, f32>,
    expected: &[usize],
) -> Result<()> {
    if grad.shape() == expected {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        layer: layer.to_string(),
        message: format!(
            "the gradient of output {index} has shape {}, but the output has shape {}",
            crate::layers::conv::py_tuple(grad.shape()),
            crate::layers::conv::py_tuple(expected)
        ),
    })
}

/// One weight of a layer: its Keras name and shape, known once the layer is built, before it
/// has any values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightSpec {
    /// Keras's name for it: `kernel`, `recurrent_kernel`, `bias`, `embeddings`; inside a wrapper,
    /// prefixed with the wrapped layer's name (`forward_lstm/kernel`).
    pub name: String,
    /// Its shape, in Keras's layout.
    pub shape: Vec<usize>,
    /// Whether training may change it (Keras's `trainable_weights`); false for statistics
    /// such as BatchNormalization's moving mean and variance, whatever the layer's flag.
    pub trainable: bool,
}

impl WeightSpec {
    /// A trainable spec from a name and a shape.
    pub fn new(name: impl Into<String>, shape: Vec<usize>) -> Self {
        WeightSpec {
            name: name.into(),
            shape,
            trainable: true,
        }
    }

    /// A spec that training never changes (Keras's `non_trainable_weights`).
    pub fn non_trainable(name: impl Into<String>, shape: Vec<usize>) -> Self {
        WeightSpec {
            trainable: false,
            ..Self::new(name, shape)
        }
    }

    /// The spec inside a wrapper or a nested model: its name under `prefix`, trainable only
    /// if the inner layer is.
    pub fn nested(self, prefix: &str, layer_trainable: bool) -> Self {
        WeightSpec {
            name: format!("{prefix}/{}", self.name),
            shape: self.shape,
            trainable: self.trainable && layer_trainable,
        }
    }

    /// The number of scalars it holds (saturating at `usize::MAX`).
    pub fn len(&self) -> usize {
        limits::elements(&self.shape).unwrap_or(usize::MAX)
    }

    /// Whether it holds no scalar.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A Keras layer: shape inference, weights in Keras order, and one call.
///
/// The trait is object-safe, so a [`Sequential`](crate::Sequential) holds `Box<dyn Layer>`; a
/// `&dyn Layer` converts to `&dyn Any` to reach the concrete layer. See the [module
/// docs](self) for the design.
///
/// ```
/// use seqnn::{CallContext, Layer, Shape, SimpleRNN};
/// use ndarray::Array3;
/// let mut rnn = SimpleRNN::new(3);
/// let out = rnn.build(&[Shape::new(vec![None, Some(2), Some(10)])])?;
/// assert_eq!(out[0].to_string(), "(None, 3)");
/// assert_eq!(rnn.count_params(), 42); // 10·3 + 3·3 + 3, before any weight exists
/// rnn.initialize();
/// let x = Array3::<f32>::zeros((4, 2, 10)).into_dyn();
/// let y = rnn.call(&[x.view()], &mut CallContext::inference())?;
/// assert_eq!(y[0].shape(), &[4, 3]);
/// # Ok::<(), seqnn::Error>(())
/// ```
pub trait Layer: Any + fmt::Debug + Send + Sync {
    /// The layer's name: the one given, or the one its model gave it (`simple_rnn_1`). Before
    /// either, the Keras base name of its class (`simple_rnn`).
    fn name(&self) -> &str;

    /// Gives the layer its unique default name (`simple_rnn`, `simple_rnn_1`, ...) if it has no
    /// name yet. Models call this when the layer is added; calling it again does nothing.
    fn ensure_named(&mut self);

    /// Renames the layer (used by wrappers, which name their copies `forward_<name>`).
    fn set_name(&mut self, name: String);

    /// The Keras class name, as shown in summaries: `"SimpleRNN"`.
    fn class_name(&self) -> &'static str;

    /// Whether training may change the weights (Keras's `trainable`).
    fn trainable(&self) -> bool;

    /// Sets whether training may change the weights, as Keras's `layer.trainable = False`.
    fn set_trainable(&mut self, trainable: bool);

    /// The input shape the layer was declared with (`input_shape`, `batch_input_shape`,
    /// `input_dim`), batch first, or `None` when it was given none.
    ///
    /// # Errors
    /// When the declaration is incomplete, such as `input_length` without `input_dim`, or the
    /// configuration is invalid.
    fn declared_input_shape(&self) -> Result<Option<Shape>>;

    /// The output shapes for inputs of shapes `inputs`, without building anything.
    ///
    /// # Errors
    /// When the layer cannot take such inputs: the error names the layer and quotes the shape.
    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>>;

    /// Fixes the layer's input and weight shapes for inputs of shapes `inputs` and returns the
    /// output shapes. It allocates no weight: [`initialize`](Layer::initialize) or
    /// [`set_weights`](Layer::set_weights) gives the values. A layer that is built already keeps
    /// its shapes and weights, and only checks that `inputs` fit them.
    ///
    /// # Errors
    /// As [`compute_output_shape`](Layer::compute_output_shape), and [`Error::TooLarge`] when the
    /// weights would exceed [`limits::MAX_LAYER_PARAMS`].
    fn build(&mut self, inputs: &[Shape]) -> Result<Vec<Shape>>;

    /// Whether the layer's shapes are fixed.
    fn is_built(&self) -> bool;

    /// The weights' names and shapes in Keras order, once the layer is built; empty before.
    fn weight_specs(&self) -> Vec<WeightSpec>;

    /// Draws fresh weights from the layer's initializers (Keras's `build`), for a built layer.
    /// Does nothing before the layer is built.
    fn initialize(&mut self);

    /// The weights in Keras order (`get_weights()`), as views. Empty until the layer has
    /// values (from [`initialize`](Layer::initialize) or [`set_weights`](Layer::set_weights)).
    fn weights(&self) -> Vec<ArrayViewD<'_, f32>>;

    /// Replaces the weights, given in Keras order, after checking every count and shape
    /// against [`weight_specs`](Layer::weight_specs).
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before the layer is built; [`Error::WeightCount`] or
    /// [`Error::WeightShape`] (naming the layer and the weight); the layer is unchanged then.
    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()>;

    /// Whether the layer has all its weights' values.
    fn has_weights(&self) -> bool {
        self.weights().len() == self.weight_specs().len()
    }

    /// The number of scalars in the weights, as Keras's `count_params()`: known once the layer
    /// is built, before it has values.
    fn count_params(&self) -> usize {
        self.weight_specs().iter().map(WeightSpec::len).sum()
    }

    /// How many of those are trainable, as Keras's summary counts them: none for a frozen
    /// layer, else those of its trainable weights.
    fn trainable_params(&self) -> usize {
        if !self.trainable() {
            return 0;
        }
        self.weight_specs()
            .iter()
            .filter(|w| w.trainable)
            .map(WeightSpec::len)
            .sum()
    }

    /// How many tensors a call returns: more than one under `return_state` or a Bidirectional
    /// with `merge_mode` none. A [`Sequential`](crate::Sequential) takes only single-output
    /// layers.
    fn output_count(&self) -> usize {
        1
    }

    /// The call: the outputs for `inputs` (the main input first, then any extra inputs the layer
    /// takes, such as a recurrent layer's initial states), with the masks, states and mode of
    /// `ctx`. It does not change the layer; a stateful layer leaves its final states in `ctx`.
    /// It is Keras's `call`: the layer's own activity penalty is added by whoever calls it
    /// through Keras's `__call__` (a model or wrapper, see
    /// [`CallContext::with_activity_penalties`]); those of layers inside it, by the layer.
    ///
    /// # Errors
    /// When the layer has no weights yet, or the inputs do not fit it; `ctx` is then unchanged
    /// apart from the states it was given, which may have been taken.
    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>>;

    /// The backward pass of a training call: from what that call kept
    /// ([`CallContext::take_saved`]) and the gradient of the loss with respect to each of its
    /// outputs (`None` for an output the loss does not reach, as zeros), the gradients of its
    /// inputs and weights. An input the call's context said needs no gradient
    /// ([`CallContext::with_input_gradients`]) may get `None`. It does not change the layer:
    /// an optimizer applies the gradients.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a layer that cannot take part in training yet (the
    /// default), and [`Error::InvalidArgument`] when `saved` is not this layer's or a
    /// gradient's shape is not its output's.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let _ = (saved, output_grads);
        Err(Error::Unsupported {
            layer: self.name().to_string(),
            class: self.class_name().to_string(),
            message: "this layer has no backward pass yet, so it cannot be trained".into(),
        })
    }

    /// What a training call changes in the layer besides through its gradients: the new
    /// values of its non-trainable weights (BatchNormalization's moving statistics, Keras's
    /// `layer.updates`), from what that call kept ([`CallContext::take_saved`]). One entry per
    /// weight, in Keras order ([`weight_specs`](Layer::weight_specs)): `None` for a weight the
    /// call leaves as it is. The default: none changes.
    ///
    /// A call takes `&self`, so it changes nothing itself: `fit` sets these values once the
    /// step succeeded, together with the optimizer's step, so that a failed step leaves them
    /// as they were. A model gives its layers' in its weights' order; a layer called by
    /// several nodes of a Functional model takes the updates of its last call (Keras applies
    /// each call's in turn).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `saved` is not this layer's.
    fn updates(&self, saved: &SavedForBackward) -> Result<Vec<Option<ArrayD<f32>>>> {
        let _ = saved;
        Ok(vec![None; self.weight_specs().len()])
    }

    /// The regularizer and the constraint of each weight (Keras's `kernel_regularizer`,
    /// `kernel_constraint`, `recurrent_regularizer`, `bias_constraint`, ...), one entry per
    /// weight in Keras order ([`weight_specs`](Layer::weight_specs)). `fit` adds the
    /// penalties to the loss and applies the constraints after each optimizer step. A model
    /// or wrapper gives its layers'. The default: none.
    fn weight_rules(&self) -> Vec<crate::train::WeightRule> {
        vec![crate::train::WeightRule::default(); self.weight_specs().len()]
    }

    /// The layer's own regularizers and constraints (a file's `kernel_regularizer`, ...);
    /// `None` for a layer without options of this kind (layers without weights of their own,
    /// wrappers and models).
    fn weight_rule_options(&self) -> Option<&crate::train::WeightRules> {
        None
    }

    /// [`weight_rule_options`](Layer::weight_rule_options), to change them.
    fn weight_rule_options_mut(&mut self) -> Option<&mut crate::train::WeightRules> {
        None
    }

    /// Keras's `activity_regularizer`: a penalty on each of the layer's outputs, divided by
    /// the batch size, that training and evaluation add to the loss (see
    /// [`CallContext::with_activity_penalties`]); an
    /// [`ActivityRegularization`](crate::ActivityRegularization) layer's `L1L2(l1, l2)`. The
    /// default: none.
    fn activity_regularizer(&self) -> Option<crate::train::Regularizer> {
        None
    }

    /// The [`activity_regularizer`](Layer::activity_regularizer) of every layer, this one and
    /// those inside it (models and wrappers look inside), with the layer's name, in order.
    fn activity_regularizers(&self) -> Vec<(String, crate::train::Regularizer)> {
        self.activity_regularizer()
            .map(|r| (self.name().to_string(), r))
            .into_iter()
            .collect()
    }

    /// What the layer does with an incoming mask when its call does not say. Default: drop it.
    fn mask_policy(&self) -> MaskPolicy {
        MaskPolicy::Drop
    }

    /// The scalars a call needs per sample beyond its inputs and outputs, for inputs of shapes
    /// `inputs` (unknown dimensions as 1): what a model counts when it chooses a batch size.
    fn working_elements(&self, inputs: &[Shape]) -> usize {
        let _ = inputs;
        0
    }

    /// Whether the layer keeps state from one call to the next (Keras's `stateful=True`).
    fn is_stateful(&self) -> bool {
        false
    }

    /// The states a stateful layer carries into its next call, `(batch, units)` each (Keras's
    /// `layer.states`); empty for other layers.
    fn states(&self) -> Vec<Array2<f32>> {
        Vec::new()
    }

    /// Replaces the states a stateful layer carries (what a call left in its context).
    ///
    /// # Errors
    /// When the states do not have the count and shapes of [`states`](Layer::states); the
    /// layer is unchanged then.
    fn set_states(&mut self, states: Vec<Array2<f32>>) -> Result<()> {
        if states.is_empty() {
            return Ok(());
        }
        Err(Error::InvalidArgument {
            layer: self.name().to_string(),
            message: format!(
                "this layer is not stateful, so it takes no states; got {} array(s)",
                states.len()
            ),
        })
    }

    /// Zeroes the states of a stateful layer (Keras's `reset_states()`).
    fn reset_states(&mut self) {}

    /// A boxed copy, weights included.
    fn clone_box(&self) -> Box<dyn Layer>;
}

impl Clone for Box<dyn Layer> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// The one input of a single-input layer, or Keras's error for another count.
pub(crate) fn single_input<'a, 'b>(
    layer: &str,
    inputs: &'a [ArrayViewD<'b, f32>],
) -> Result<&'a ArrayViewD<'b, f32>> {
    match inputs {
        [x] => Ok(x),
        _ => Err(input_count(layer, 1, inputs.len())),
    }
}

/// The one input shape of a single-input layer, or Keras's error for another count.
pub(crate) fn single_shape<'a>(layer: &str, inputs: &'a [Shape]) -> Result<&'a Shape> {
    match inputs {
        [s] => Ok(s),
        _ => Err(input_count(layer, 1, inputs.len())),
    }
}

/// Keras's error for a call with the wrong number of inputs.
pub(crate) fn input_count(layer: &str, expected: usize, found: usize) -> Error {
    Error::InvalidArgument {
        layer: layer.to_string(),
        message: format!(
            "Layer \"{layer}\" expects {expected} input(s), but it received {found} input \
             tensors."
        ),
    }
}

/// An owned, standard-layout copy of a weight whose 2-D shape was checked.
pub(crate) fn owned2(a: &ArrayD<f32>) -> Array2<f32> {
    a.view()
        .into_dimensionality::<ndarray::Ix2>()
        .expect("checked 2-D shape")
        .as_standard_layout()
        .into_owned()
}

/// An owned copy of a weight whose 1-D shape was checked.
pub(crate) fn owned1(a: &ArrayD<f32>) -> ndarray::Array1<f32> {
    a.view()
        .into_dimensionality::<ndarray::Ix1>()
        .expect("checked 1-D shape")
        .to_owned()
}

/// A layer's name until it has one: explicit, assigned by a model, or only its class's base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LayerName {
    base: &'static str,
    name: Option<String>,
}

impl LayerName {
    pub(crate) fn new(base: &'static str) -> Self {
        LayerName { base, name: None }
    }

    pub(crate) fn get(&self) -> &str {
        self.name.as_deref().unwrap_or(self.base)
    }

    pub(crate) fn set(&mut self, name: String) {
        self.name = Some(name);
    }

    pub(crate) fn ensure(&mut self) {
        if self.name.is_none() {
            self.name = Some(unique_name(self.base));
        }
    }

    /// [`ensure`](Self::ensure) counting from 1, as tf_keras names inputs and models:
    /// `input_1`, `input_2`, ...
    pub(crate) fn ensure_one_based(&mut self) {
        if self.name.is_none() {
            self.name = Some(crate::session::unique_name_one_based(self.base));
        }
    }
}

/// How a layer was told its input shape: Keras's `input_shape`, `batch_input_shape`,
/// `batch_size`, and the recurrent layers' legacy `input_length` / `input_dim`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InputDecl {
    pub(crate) shape: Option<Shape>,
    pub(crate) batch_shape: Option<Shape>,
    pub(crate) batch_size: Option<usize>,
    pub(crate) input_length: Option<usize>,
    pub(crate) input_dim: Option<usize>,
}

impl InputDecl {
    /// The declared batch input shape, as Keras resolves it: `batch_input_shape` first, then
    /// `(batch_size, *input_shape)`, then `(batch_size, input_length, input_dim)`.
    pub(crate) fn resolve(&self, layer: &str) -> Result<Option<Shape>> {
        if let Some(s) = &self.batch_shape {
            return Ok(Some(s.clone()));
        }
        if let Some(s) = &self.shape {
            let mut dims = vec![self.batch_size];
            dims.extend_from_slice(s.dims());
            return Ok(Some(Shape::new(dims)));
        }
        match (self.input_length, self.input_dim) {
            (_, Some(d)) => Ok(Some(Shape::new(vec![
                self.batch_size,
                self.input_length,
                Some(d),
            ]))),
            (Some(t), None) => Err(Error::InvalidArgument {
                layer: layer.to_string(),
                message: format!(
                    "input_length={t} was given without input_dim, so the input shape would be \
                     (None, {t}, None); give input_dim too, or use input_shape=({t}, input_dim)"
                ),
            }),
            (None, None) => Ok(None),
        }
    }
}

/// Checks that `weights` has the count and the shapes of `expected` (a layer's
/// [`weight_specs`](Layer::weight_specs)); errors name the layer and the weight.
pub(crate) fn check_weights(
    layer: &str,
    expected: &[WeightSpec],
    weights: &[ArrayD<f32>],
) -> Result<()> {
    if weights.len() != expected.len() {
        return Err(Error::WeightCount {
            layer: layer.to_string(),
            expected: expected.len(),
            found: weights.len(),
        });
    }
    for (index, (e, w)) in expected.iter().zip(weights).enumerate() {
        if e.shape != w.shape() {
            return Err(Error::WeightShape {
                layer: layer.to_string(),
                index,
                weight: e.name.clone(),
                expected: Shape::known(&e.shape),
                found: Shape::known(w.shape()),
            });
        }
    }
    Ok(())
}

/// The total of `specs`, checked against [`limits::MAX_LAYER_PARAMS`].
pub(crate) fn check_specs(layer: &str, specs: &[(&str, &[usize])]) -> Result<()> {
    let mut total = Some(0_usize);
    for (_, shape) in specs {
        total = total
            .zip(limits::elements(shape))
            .and_then(|(t, n)| t.checked_add(n));
    }
    if total.is_some_and(|t| t <= limits::MAX_LAYER_PARAMS) {
        return Ok(());
    }
    let what = specs
        .iter()
        .map(|(name, shape)| format!("{name} {}", Shape::known(shape)))
        .collect::<Vec<_>>()
        .join(", ");
    limits::check_params(layer, total, &what).map(|_| ())
}

/// Checks an input's rank, for layers that take one rank only.
pub(crate) fn check_rank(layer: &str, expected: usize, input: &Shape) -> Result<()> {
    if input.rank() != expected {
        return Err(Error::IncompatibleRank {
            layer: layer.to_string(),
            expected,
            found: input.rank(),
            shape: input.clone(),
        });
    }
    Ok(())
}

/// Checks that an array fits `expected` (rank and every known dimension) and is not empty.
pub(crate) fn check_input(layer: &str, expected: &Shape, input: &[usize]) -> Result<()> {
    if input.len() != expected.rank() {
        return check_rank(layer, expected.rank(), &Shape::known(input));
    }
    if !expected.accepts(input) {
        return Err(Error::IncompatibleShape {
            layer: layer.to_string(),
            expected: expected.clone(),
            found: Shape::known(input),
        });
    }
    check_not_empty(layer, input)
}

/// Refuses an input with no elements along some axis.
pub(crate) fn check_not_empty(layer: &str, input: &[usize]) -> Result<()> {
    if input.contains(&0) {
        return Err(Error::EmptyInput {
            layer: layer.to_string(),
            shape: Shape::known(input),
        });
    }
    Ok(())
}

/// The error of a call on a layer without weights.
pub(crate) fn no_weights(layer: &str) -> Error {
    Error::NotBuilt {
        name: layer.to_string(),
    }
}

/// The options every layer has, as chaining setters: `input_shape`, `batch_input_shape`,
/// `name` and `trainable`. Used inside a layer's inherent `impl`; the layer has the fields
/// `input: InputDecl`, `name: LayerName` and `trainable: bool`.
macro_rules! common_builders {
    (recurrent) => {
        $crate::layer::common_builders!(@names
            "`simple_rnn`, `lstm` or `gru` after the class, then numbered: `lstm_1`, `lstm_2`, ..."
        );
    };
    ($base:literal) => {
        $crate::layer::common_builders!(@names concat!("`", $base, "`, `", $base, "_1`, ..."));
    };
    (@names $names:expr) => {
        /// Keras's `input_shape`: the shape of one sample, without the batch.
        #[must_use]
        pub fn input_shape(mut self, shape: impl Into<$crate::Shape>) -> Self {
            self.input.shape = Some(shape.into());
            self
        }

        /// Keras's `batch_input_shape`: the input shape with a fixed batch size first.
        #[must_use]
        pub fn batch_input_shape(mut self, shape: impl Into<$crate::Shape>) -> Self {
            self.input.batch_shape = Some(shape.into());
            self
        }

        #[doc = concat!(
                    "Keras's `name`. Without it, the layer is named when it is added to a model: ",
                    $names
                )]
        #[must_use]
        pub fn with_name(mut self, name: impl Into<String>) -> Self {
            self.name.set(name.into());
            self
        }

        /// Keras's `trainable`. Default true.
        #[must_use]
        pub fn with_trainable(mut self, yes: bool) -> Self {
            self.trainable = yes;
            self
        }
    };
}
pub(crate) use common_builders;

/// Keras's regularizer and constraint options of a layer's weights, as chaining setters, one
/// pair per option prefix, and `with_activity_regularizer`. Used inside a layer's inherent
/// `impl`; the layer has the field `rules: WeightRules`.
macro_rules! rule_builders {
    ($($prefix:literal, $what:literal => $reg:ident, $con:ident;)*) => {
        $(
            #[doc = concat!(
                "Keras's `", $prefix, "_regularizer`: a penalty on ", $what,
                " that training adds to the loss. Default none."
            )]
            #[must_use]
            pub fn $reg(
                mut self,
                regularizer: impl Into<Option<$crate::train::Regularizer>>,
            ) -> Self {
                self.rules.set_regularizer($prefix, regularizer.into());
                self
            }

            #[doc = concat!(
                "Keras's `", $prefix, "_constraint`: a projection of ", $what,
                " after each optimizer step. Default none."
            )]
            #[must_use]
            pub fn $con(mut self, constraint: impl Into<Option<$crate::train::Constraint>>) -> Self {
                self.rules.set_constraint($prefix, constraint.into());
                self
            }
        )*

        /// Keras's `activity_regularizer`: a penalty on the layer's output, divided by the
        /// batch size, that training adds to the loss. Default none.
        #[must_use]
        pub fn with_activity_regularizer(
            mut self,
            regularizer: impl Into<Option<$crate::train::Regularizer>>,
        ) -> Self {
            self.rules.set_activity(regularizer.into());
            self
        }

    };
}
pub(crate) use rule_builders;

/// The [`Layer`] methods of a layer with the field `rules: WeightRules`.
macro_rules! rule_methods {
    () => {
        fn weight_rules(&self) -> Vec<$crate::train::WeightRule> {
            self.rules.for_specs(&self.weight_specs())
        }

        fn weight_rule_options(&self) -> Option<&$crate::train::WeightRules> {
            Some(&self.rules)
        }

        fn weight_rule_options_mut(&mut self) -> Option<&mut $crate::train::WeightRules> {
            Some(&mut self.rules)
        }

        fn activity_regularizer(&self) -> Option<$crate::train::Regularizer> {
            self.rules.activity()
        }
    };
}
pub(crate) use rule_methods;

/// The [`Layer`] methods that only read a layer's `name` and `trainable` fields, and its
/// `Clone`.
macro_rules! layer_plumbing {
    () => {
        fn name(&self) -> &str {
            self.name.get()
        }

        fn ensure_named(&mut self) {
            self.name.ensure();
        }

        fn set_name(&mut self, name: String) {
            self.name.set(name);
        }

        fn trainable(&self) -> bool {
            self.trainable
        }

        fn set_trainable(&mut self, trainable: bool) {
            self.trainable = trainable;
        }

        fn clone_box(&self) -> Box<dyn $crate::Layer> {
            Box::new(self.clone())
        }
    };
}
pub(crate) use layer_plumbing;

/// The [`Layer`] methods of a layer without weights, built once it has seen an input shape
/// (a `built: bool` field).
macro_rules! weightless {
    () => {
        fn build(&mut self, inputs: &[$crate::Shape]) -> $crate::Result<Vec<$crate::Shape>> {
            let out = self.compute_output_shape(inputs)?;
            self.built = true;
            Ok(out)
        }

        fn is_built(&self) -> bool {
            self.built
        }

        fn weight_specs(&self) -> Vec<$crate::layer::WeightSpec> {
            Vec::new()
        }

        fn initialize(&mut self) {}

        fn weights(&self) -> Vec<ndarray::ArrayViewD<'_, f32>> {
            Vec::new()
        }

        fn set_weights(&mut self, weights: &[ndarray::ArrayD<f32>]) -> $crate::Result<()> {
            $crate::layer::check_weights(self.name.get(), &[], weights)
        }
    };
}
pub(crate) use weightless;

/// Runs a single-input layer on one input, for the unit tests.
#[cfg(test)]
pub(crate) fn apply(layer: &dyn Layer, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
    let mut out = layer.call(&[x], &mut CallContext::inference())?;
    Ok(out.swap_remove(0))
}

/// A training call of `layer` on `inputs`, then its backward pass from `upstream` (one per
/// output), for the unit tests.
#[cfg(test)]
pub(crate) fn backward_of(
    layer: &dyn Layer,
    inputs: &[ArrayViewD<'_, f32>],
    upstream: &[ArrayViewD<'_, f32>],
) -> Result<Gradients> {
    let mut ctx = CallContext::training();
    layer.call(inputs, &mut ctx)?;
    let saved = ctx
        .take_saved()
        .expect("a training call keeps what its backward pass needs");
    let grads: Vec<_> = upstream.iter().map(|u| Some(u.view())).collect();
    layer.backward(&saved, &grads)
}

/// Runs a layer on `inputs` with one mask on the first, for the unit tests: the outputs and
/// their masks.
#[cfg(test)]
pub(crate) fn apply_masked(
    layer: &dyn Layer,
    inputs: &[ArrayViewD<'_, f32>],
    mask: Option<ArrayView2<'_, bool>>,
) -> Result<(Outputs, Vec<Option<Mask>>)> {
    let mut ctx = CallContext::inference().with_masks(vec![mask.map(|m| m.to_owned())]);
    let out = layer.call(inputs, &mut ctx)?;
    let masks = ctx.output_masks(layer, out.len());
    Ok((out, masks))
}
