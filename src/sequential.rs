//! Keras's `Sequential` model: a stack of single-output layers.

use std::collections::HashSet;
use std::fmt;

use ndarray::{ArrayBase, ArrayD, ArrayViewD, Axis, Data, Dimension, Slice};

use crate::activation::ActivationFn;
use crate::error::{Error, Result};
use crate::input::Element;
use crate::layer::{
    backward_layer, call_layer, CallContext, Gradients, Layer, Mask, SavedForBackward, States,
};
use crate::limits;
use crate::session::unique_name;
use crate::shape::Shape;
use crate::summary::{self, Row, Totals};
use crate::train::fit::{
    self, not_compiled, Compiled, FitOptions, History, IntoLoss, IntoOptimizer,
};

/// Keras's default `predict` batch size.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// The scalars one batch's working set may hold when [`Sequential::predict`] chooses the batch
/// size: 2^23, 32 MiB of f32.
const BATCH_BUDGET: usize = 1 << 23;

/// The largest batch [`Sequential::predict`] chooses.
const MAX_AUTO_BATCH: usize = 4096;

/// Keras's `Sequential`: layers applied one after the other.
///
/// When the input shape is known (from the first layer's `input_shape`, `batch_input_shape` or
/// `input_dim`), each added layer is built at once: its output shape is inferred and its weights
/// created. Without one, the model stays unbuilt until [`build`](Sequential::build) or
/// [`build_from_data`](Sequential::build_from_data).
///
/// Running it:
/// - [`predict`](Sequential::predict) (`&self`) runs any number of samples in batches, with
///   memory for the input, the output and one batch;
/// - [`predict_batched`](Sequential::predict_batched) does the same with a batch size of yours,
///   as Keras's `predict(x, batch_size=n)`;
/// - [`call`](Sequential::call) (`&self`) runs the input as one batch, as Keras's `model(x)`;
/// - [`predict_stateful`](Sequential::predict_stateful) (`&mut self`) runs a model with
///   stateful layers, which carry their states from one batch to the next.
///
/// Every call that fails leaves the model as it was.
///
/// ```
/// use seqnn::{Sequential, SimpleRNN};
/// use ndarray::Array3;
/// let mut model = Sequential::new();
/// model.add(SimpleRNN::new(3).input_shape((2, 10)))?;
/// let y = model.predict(&Array3::<f32>::zeros((4, 2, 10)))?;
/// assert_eq!(y.shape(), &[4, 3]);
/// println!("{}", model.summary()?);
/// # Ok::<(), seqnn::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Sequential {
    name: String,
    layers: Vec<Box<dyn Layer>>,
    input_shape: Option<Shape>,
    /// The name of the model's input, as a loaded file gave it (`lstm_input` in tf_keras).
    input_name: Option<String>,
    /// The input shape came from data rather than a declaration, so, as Keras relaxes it, the
    /// timesteps may vary from call to call.
    inferred: bool,
    /// Each layer's output shape, once the model is built.
    output_shapes: Vec<Shape>,
    /// The optimizer and loss of `compile`, with the optimizer's state.
    compiled: Option<Box<Compiled>>,
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Vec<Box<dyn Layer>>> for Sequential {
    /// Keras's `Sequential([layer, ...])`: a model of these layers, built at once when the first
    /// declares its input shape. Layers that cannot be stacked (a repeated name, several
    /// outputs, shapes that do not fit) leave the model unbuilt, and the first
    /// [`build`](Sequential::build), [`summary`](Sequential::summary) or call says why.
    ///
    /// ```
    /// use seqnn::{Dense, Layer, Sequential, LSTM};
    /// let model = Sequential::from(vec![
    ///     Box::new(LSTM::new(8).input_shape((5, 3))) as Box<dyn Layer>,
    ///     Box::new(Dense::new(1)),
    /// ]);
    /// assert_eq!(model.count_params()?, 4 * 8 * (3 + 8 + 1) + 9);
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    fn from(layers: Vec<Box<dyn Layer>>) -> Self {
        let mut model = Sequential::new();
        for mut layer in layers {
            layer.ensure_named();
            model.layers.push(layer);
        }
        if let Ok(Some(input)) = model.first_declared_input() {
            // An error here is kept for the first call that needs the model built.
            let _ = model.build_from(input, false, true);
        }
        model
    }
}

/// What a run of the layers gives.
struct RunResult {
    /// The output.
    y: ArrayD<f32>,
    /// The output's mask.
    mask: Option<Mask>,
    /// The activation the last layer left out, when the run asked for logits.
    left_out: Option<ActivationFn>,
}

/// What a recording call of a Sequential keeps: each layer's record, in order, and whether
/// the gradient of each layer's input is needed.
struct SequentialSaved {
    records: Vec<SavedForBackward>,
    input_gradients: Vec<bool>,
}

impl Sequential {
    /// An empty model named as Keras names it: `sequential`, `sequential_1`, ... (counted per
    /// thread, reset by [`clear_session`](crate::clear_session)).
    pub fn new() -> Self {
        Self::named(unique_name("sequential"))
    }

    /// An empty model with the given name (Keras's `Sequential(name=...)`).
    pub fn named(name: impl Into<String>) -> Self {
        Sequential {
            name: name.into(),
            layers: Vec::new(),
            input_shape: None,
            input_name: None,
            inferred: false,
            output_shapes: Vec::new(),
            compiled: None,
        }
    }

    /// The model's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a layer on top, building it at once when the model's input shape is known.
    ///
    /// # Errors
    /// - [`Error::DuplicateLayerName`] when a layer of that name is in the model already;
    /// - [`Error::UnsupportedInModel`] for a layer with several outputs (`return_state`,
    ///   a Bidirectional with merge mode none);
    /// - [`Error::TooLarge`] for sizes beyond [`limits`];
    /// - the layer's own error when it cannot take the previous layer's output, such as
    ///   [`Error::IncompatibleRank`] with Keras's message, or an invalid configuration.
    ///
    /// The model is unchanged after an error.
    pub fn add(&mut self, layer: impl Layer + 'static) -> Result<()> {
        self.add_boxed(Box::new(layer))
    }

    /// [`add`](Sequential::add) for a layer that is already boxed.
    ///
    /// # Errors
    /// As [`add`](Sequential::add).
    pub fn add_boxed(&mut self, mut layer: Box<dyn Layer>) -> Result<()> {
        layer.ensure_named();
        if self.layers.iter().any(|l| l.name() == layer.name()) {
            return Err(Error::DuplicateLayerName {
                name: layer.name().to_string(),
            });
        }
        check_single_output(layer.as_ref())?;
        let declared = layer.declared_input_shape()?;
        let input = if self.layers.is_empty() {
            declared
        } else {
            self.output_shape()
        };
        if let Some(input) = input {
            let out = build_one(layer.as_mut(), &input, true)?;
            if self.layers.is_empty() {
                self.input_shape = Some(input);
                self.inferred = false;
                self.output_shapes.clear();
            }
            self.output_shapes.push(out);
        }
        self.layers.push(layer);
        Ok(())
    }

    /// A model of `layers`, built for `input` (or the first layer's declaration) when there is
    /// one, without drawing weights: every layer's shapes are fixed and checked, and its values
    /// come from `set_weights`. What a loader uses: no initializer runs for weights a file is
    /// about to give, and names are checked in one pass however many layers there are.
    #[cfg_attr(not(feature = "keras"), allow(dead_code))]
    pub(crate) fn from_layers_without_weights(
        name: String,
        mut layers: Vec<Box<dyn Layer>>,
        input: Option<Shape>,
    ) -> Result<Sequential> {
        for layer in layers.iter_mut() {
            layer.ensure_named();
        }
        // Names are checked when the model is built, in one pass.
        let mut model = Sequential::named(name);
        model.layers = layers;
        let input = match input {
            Some(s) => Some(s),
            None => model.first_declared_input()?,
        };
        if let Some(input) = input {
            model.build_in_place(input, false)?;
        }
        Ok(model)
    }

    /// Draws weights for the layers that have none yet (a model built without weights).
    #[cfg_attr(not(feature = "keras"), allow(dead_code))]
    pub(crate) fn initialize_missing_weights(&mut self) {
        for layer in self.layers.iter_mut() {
            if layer.is_built() && !layer.has_weights() {
                layer.initialize();
            }
        }
    }

    /// The first layer's declared input shape.
    fn first_declared_input(&self) -> Result<Option<Shape>> {
        match self.layers.first() {
            Some(l) => l.declared_input_shape(),
            None => Ok(None),
        }
    }

    /// Builds every layer for inputs of `input_shape` (batch first, `None` where unknown), as
    /// Keras's `model.build(input_shape)`.
    ///
    /// # Errors
    /// When the model has no layers, or a layer cannot take its input; the model is unchanged.
    pub fn build(&mut self, input_shape: impl Into<Shape>) -> Result<()> {
        self.build_from(input_shape.into(), false, true)
    }

    /// Builds the model from a batch of data, as Keras does on a model's first call: the
    /// input shape is the data's, with the batch and the timesteps left free (a model built so
    /// takes any number of timesteps, as Keras relaxes it).
    ///
    /// ```
    /// use ndarray::Array3;
    /// use seqnn::{Sequential, SimpleRNN};
    /// let mut model = Sequential::new();
    /// model.add(SimpleRNN::new(3))?;
    /// let x = Array3::<f32>::zeros((4, 2, 10));
    /// model.build_from_data(&x)?;
    /// assert_eq!(model.input_shape().unwrap().to_string(), "(None, 2, 10)");
    /// assert_eq!(model.predict(&Array3::<f32>::zeros((1, 7, 10)))?.shape(), &[1, 3]);
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`build`](Sequential::build), and [`Error::EmptyInput`] for data with an empty axis.
    pub fn build_from_data<S, D, T>(&mut self, x: &ArrayBase<S, D>) -> Result<()>
    where
        S: Data<Elem = T>,
        D: Dimension,
        T: Element,
    {
        if x.shape().contains(&0) {
            return Err(Error::EmptyInput {
                layer: self.name.clone(),
                shape: Shape::known(x.shape()),
            });
        }
        let mut dims: Vec<Option<usize>> = x.shape().iter().map(|&d| Some(d)).collect();
        if let Some(batch) = dims.first_mut() {
            *batch = None;
        }
        self.build_from(Shape::new(dims), true, true)
    }

    /// [`build`](Sequential::build) without drawing weights, for a loader.
    #[cfg_attr(not(feature = "keras"), allow(dead_code))]
    pub(crate) fn build_without_weights(&mut self, input_shape: Shape) -> Result<()> {
        self.build_from(input_shape, false, false)
    }

    /// Builds copies of the layers, and keeps them only if all of them build.
    fn build_from(&mut self, input: Shape, inferred: bool, initialize: bool) -> Result<()> {
        let mut trial = Sequential {
            name: self.name.clone(),
            layers: self.layers.clone(),
            input_shape: None,
            input_name: self.input_name.clone(),
            inferred,
            output_shapes: Vec::new(),
            compiled: self.compiled.clone(),
        };
        trial.build_in_place(input, initialize)?;
        *self = trial;
        Ok(())
    }

    /// Builds the layers as they are; on an error the model is left unbuilt.
    fn build_in_place(&mut self, input: Shape, initialize: bool) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::InvalidArgument {
                layer: self.name.clone(),
                message: "a model with no layers cannot be built; add a layer first".into(),
            });
        }
        let mut seen = HashSet::with_capacity(self.layers.len());
        for layer in &self.layers {
            if !seen.insert(layer.name()) {
                return Err(Error::DuplicateLayerName {
                    name: layer.name().to_string(),
                });
            }
        }
        let mut shapes = Vec::with_capacity(self.layers.len());
        let mut current = input.clone();
        for layer in self.layers.iter_mut() {
            check_single_output(layer.as_ref())?;
            current = build_one(layer.as_mut(), &current, initialize)?;
            shapes.push(current.clone());
        }
        self.output_shapes = shapes;
        self.input_shape = Some(input);
        Ok(())
    }

    /// Whether every layer has its shapes.
    #[must_use]
    pub fn is_built(&self) -> bool {
        self.input_shape.is_some()
            && !self.layers.is_empty()
            && self.output_shapes.len() == self.layers.len()
    }

    fn not_built(&self) -> Error {
        Error::NotBuilt {
            name: self.name.clone(),
        }
    }

    /// Runs the model on `x`, batch first, as Keras's `model.predict(x)`: in batches, with
    /// the outputs joined along the first axis. The batch size is chosen for speed (from
    /// [`DEFAULT_BATCH_SIZE`] up, within a working set of 32 MiB, and below 32 only for samples
    /// too large for that); every row is computed on its own, so the numbers are those of any
    /// other batch size. Peak memory is the input, the
    /// output, and one batch's working set.
    ///
    /// `x` holds `f32`, or integer ids (`i32`, `i64`, `u32`) for a model that starts with an
    /// [`Embedding`](crate::Embedding); see [`Element`].
    ///
    /// # Errors
    /// As [`call`](Sequential::call); a model with stateful layers is refused, with a pointer to
    /// [`predict_stateful`](Sequential::predict_stateful).
    pub fn predict<S, D, T>(&self, x: &ArrayBase<S, D>) -> Result<ArrayD<f32>>
    where
        S: Data<Elem = T>,
        D: Dimension,
        T: Element,
    {
        let x = x.view().into_dyn();
        self.check_input(x.shape())?;
        self.refuse_stateful("predict")?;
        let batch = self.auto_batch_size(x.shape());
        self.predict_in_batches(x, batch)
    }

    /// [`predict`](Sequential::predict) with `batch_size` samples at a time, as Keras's
    /// `model.predict(x, batch_size=n)`.
    ///
    /// # Errors
    /// As [`predict`](Sequential::predict), and for a `batch_size` of 0.
    pub fn predict_batched<S, D, T>(
        &self,
        x: &ArrayBase<S, D>,
        batch_size: usize,
    ) -> Result<ArrayD<f32>>
    where
        S: Data<Elem = T>,
        D: Dimension,
        T: Element,
    {
        check_batch_size(&self.name, batch_size)?;
        let x = x.view().into_dyn();
        self.check_input(x.shape())?;
        self.refuse_stateful("predict_batched")?;
        self.predict_in_batches(x, batch_size)
    }

    /// [`predict_batched`](Self::predict_batched) on an input of any element type.
    #[cfg_attr(not(feature = "keras"), allow(dead_code))]
    pub(crate) fn predict_input(
        &self,
        x: &crate::input::InputArray<'_>,
        batch_size: usize,
    ) -> Result<ArrayD<f32>> {
        use crate::input::InputArray;
        match x {
            InputArray::F32(a) => self.predict_batched(a, batch_size),
            InputArray::I32(a) => self.predict_batched(a, batch_size),
            InputArray::I64(a) => self.predict_batched(a, batch_size),
            InputArray::U32(a) => self.predict_batched(a, batch_size),
        }
    }

    /// [`predict_stateful`](Self::predict_stateful) on an input of any element type.
    #[cfg_attr(not(feature = "keras"), allow(dead_code))]
    pub(crate) fn predict_stateful_input(
        &mut self,
        x: &crate::input::InputArray<'_>,
    ) -> Result<ArrayD<f32>> {
        use crate::input::InputArray;
        match x {
            InputArray::F32(a) => self.predict_stateful(a),
            InputArray::I32(a) => self.predict_stateful(a),
            InputArray::I64(a) => self.predict_stateful(a),
            InputArray::U32(a) => self.predict_stateful(a),
        }
    }

    /// Runs the built model on `x` as one batch, without changing it, so one model can serve
    /// many threads: Keras's `model(x)`. Any batch size goes, as in Keras.
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before the model is built; [`Error::IncompatibleShape`] (naming the
    /// model, quoting both shapes, as Keras) when `x` has the wrong rank, features or fixed
    /// timesteps; [`Error::EmptyInput`] for an input with no elements; [`Error::TooLarge`] when
    /// a layer's output for it would exceed [`limits`]; a stateful model is
    /// refused (see [`predict_stateful`](Sequential::predict_stateful)).
    pub fn call<S, D, T>(&self, x: &ArrayBase<S, D>) -> Result<ArrayD<f32>>
    where
        S: Data<Elem = T>,
        D: Dimension,
        T: Element,
    {
        let x = x.view().into_dyn();
        self.check_input(x.shape())?;
        self.refuse_stateful("call")?;
        // Each layer checks its own output's size before allocating it.
        let x = T::batch_as_f32(x)?;
        self.run(x.view(), None)
    }

    /// Runs a model with stateful layers on `x`, in batches of the batch size the model was
    /// built for: each stateful layer starts from the states the last call left, carries them
    /// from batch to batch, and keeps the final ones for the next call, until
    /// [`reset_states`](Sequential::reset_states). A stateless model runs as
    /// [`predict`](Sequential::predict).
    ///
    /// # Errors
    /// As [`call`](Sequential::call), and when `x`'s length is not a multiple of the batch size;
    /// after an error every state is as it was before the call.
    pub fn predict_stateful<S, D, T>(&mut self, x: &ArrayBase<S, D>) -> Result<ArrayD<f32>>
    where
        S: Data<Elem = T>,
        D: Dimension,
        T: Element,
    {
        let x = x.view().into_dyn();
        self.check_input(x.shape())?;
        if !self.is_stateful() {
            let batch = self.auto_batch_size(x.shape());
            return self.predict_in_batches(x, batch);
        }
        let n = x.len_of(Axis(0));
        let batch = crate::stateful::fixed_batch(self).unwrap_or(n);
        crate::stateful::check_whole_batches(&self.name, batch, n)?;
        self.check_sizes(x.shape(), batch)?;
        let mut states = crate::stateful::carried_states(&self.layers);
        let y = self.stateful_batches(x, batch, &mut states)?;
        // States are committed only when every batch ran: a failure leaves them as they were.
        crate::stateful::set_nested_states(&mut self.layers, states)?;
        Ok(y)
    }

    fn stateful_batches<T: Element>(
        &self,
        x: ArrayViewD<'_, T>,
        batch: usize,
        states: &mut [Option<States>],
    ) -> Result<ArrayD<f32>> {
        let mut out: Option<ArrayD<f32>> = None;
        let n = x.len_of(Axis(0));
        for start in (0..n).step_by(batch) {
            let chunk = x.slice_axis(Axis(0), Slice::from(start..start + batch));
            let chunk = T::batch_as_f32(chunk)?;
            let y = self.run(chunk.view(), Some(states))?;
            let out = match out.as_mut() {
                Some(o) => o,
                None => out.insert(self.output_for(n, &y)?),
            };
            out.slice_axis_mut(Axis(0), Slice::from(start..start + batch))
                .assign(&y);
        }
        out.ok_or_else(|| self.not_built())
    }

    /// The batches of a stateless run, written into one output allocated once.
    fn predict_in_batches<T: Element>(
        &self,
        x: ArrayViewD<'_, T>,
        batch: usize,
    ) -> Result<ArrayD<f32>> {
        self.check_sizes(x.shape(), batch)?;
        let n = x.len_of(Axis(0));
        let mut out: Option<ArrayD<f32>> = None;
        for start in (0..n).step_by(batch.max(1)) {
            let end = (start + batch).min(n);
            let chunk = T::batch_as_f32(x.slice_axis(Axis(0), Slice::from(start..end)))?;
            let y = self.run(chunk.view(), None)?;
            if start == 0 && end == n {
                return Ok(y);
            }
            let out = match out.as_mut() {
                Some(o) => o,
                None => out.insert(self.output_for(n, &y)?),
            };
            out.slice_axis_mut(Axis(0), Slice::from(start..end))
                .assign(&y);
        }
        out.ok_or_else(|| self.not_built())
    }

    /// The output array for `n` samples, shaped as the first batch's output `y`, checked
    /// against [`limits::MAX_TENSOR_ELEMENTS`] before it is allocated.
    fn output_for(&self, n: usize, y: &ArrayD<f32>) -> Result<ArrayD<f32>> {
        let mut shape = y.shape().to_vec();
        shape[0] = n;
        limits::check_tensor(&self.name, "output", &Shape::known(&shape))?;
        Ok(ArrayD::zeros(shape))
    }

    /// Checks, before anything runs, that every layer's output for a batch of `batch` samples
    /// of `input`, and the model's output for all of them, fit
    /// [`limits::MAX_TENSOR_ELEMENTS`].
    fn check_sizes(&self, input: &[usize], batch: usize) -> Result<()> {
        let n = input.first().copied().unwrap_or(0);
        let mut current = Shape::known(input).with_batch(Some(batch.min(n)));
        for layer in &self.layers {
            let mut out = layer.compute_output_shape(std::slice::from_ref(&current))?;
            current = out.swap_remove(0);
            limits::check_tensor(layer.name(), "output", &current)?;
        }
        limits::check_tensor(&self.name, "output", &current.with_batch(Some(n)))
    }

    /// A batch size that keeps one batch's working set within [`BATCH_BUDGET`] scalars:
    /// [`DEFAULT_BATCH_SIZE`] or more when samples are small, fewer only when one batch of 32
    /// would exceed the budget; at most [`MAX_AUTO_BATCH`] and the number of samples.
    fn auto_batch_size(&self, input: &[usize]) -> usize {
        let n = input.first().copied().unwrap_or(1).max(1);
        let mut current = Shape::known(input).with_batch(Some(1));
        let mut per_sample = limits::known_elements(&current).unwrap_or(usize::MAX);
        for layer in &self.layers {
            let inputs = std::slice::from_ref(&current);
            let work = layer.working_elements(inputs);
            let Ok(mut out) = layer.compute_output_shape(inputs) else {
                break;
            };
            current = out.swap_remove(0);
            let out_elements = limits::known_elements(&current).unwrap_or(usize::MAX);
            per_sample = per_sample.max(work.saturating_add(out_elements));
        }
        (BATCH_BUDGET / per_sample.max(1))
            .clamp(1, MAX_AUTO_BATCH)
            .min(n)
    }

    /// As Keras's model-level check: the model is built, and `shape` fits its input shape
    /// (one message for a wrong rank or a wrong dimension), with no empty axis.
    fn check_input(&self, shape: &[usize]) -> Result<()> {
        let input = self.input_shape.as_ref().ok_or_else(|| self.not_built())?;
        if !self.is_built() {
            return Err(self.not_built());
        }
        // The batch is free; so are the middle axes (the timesteps) of a shape inferred from
        // data, as Keras relaxes them.
        let last = input.rank().saturating_sub(1);
        let free = |axis: usize| axis == 0 || (self.inferred && axis < last);
        let fits = shape.len() == input.rank()
            && input
                .dims()
                .iter()
                .zip(shape)
                .enumerate()
                .all(|(axis, (d, &s))| free(axis) || d.is_none_or(|d| d == s));
        if !fits {
            let accepted = Shape::new(
                (0..input.rank())
                    .map(|axis| if free(axis) { None } else { input.dim(axis) })
                    .collect(),
            );
            return Err(Error::IncompatibleShape {
                layer: self.name.clone(),
                expected: accepted,
                found: Shape::known(shape),
            });
        }
        if shape.contains(&0) {
            return Err(Error::EmptyInput {
                layer: self.name.clone(),
                shape: Shape::known(shape),
            });
        }
        Ok(())
    }

    fn refuse_stateful(&self, method: &str) -> Result<()> {
        crate::stateful::refuse(&self.name, self.is_stateful(), method)
    }

    /// Runs every layer in order, passing each output and its mask to the next. With `states`
    /// (one entry per layer), each stateful layer starts from its entry and leaves its final
    /// states there, for the caller to commit.
    fn run(
        &self,
        x: ArrayViewD<'_, f32>,
        states: Option<&mut [Option<States>]>,
    ) -> Result<ArrayD<f32>> {
        self.run_masked(x, states, None).map(|r| r.y)
    }

    /// [`run`](Self::run) from the input's mask; also returns the output's.
    fn run_masked(
        &self,
        x: ArrayViewD<'_, f32>,
        states: Option<&mut [Option<States>]>,
        mask: Option<Mask>,
    ) -> Result<RunResult> {
        self.run_with(x, states, mask, &mut CallContext::inference(), None, false)
    }

    /// Whether the backward pass must return the gradient of each layer's input, when that
    /// of the model's input is `model_input`: a layer's input needs one if the model's does or
    /// a layer before it has weights.
    fn input_gradients(&self, model_input: bool) -> Vec<bool> {
        let mut needed = model_input;
        self.layers
            .iter()
            .map(|layer| {
                let this = needed;
                needed |= !layer.weight_specs().is_empty();
                this
            })
            .collect()
    }

    /// [`run_masked`](Self::run_masked) in the mode of `outer`, whose activity penalties the
    /// layers add ([`CallContext::with_activity_penalties`]); with `records`, each layer keeps
    /// what its backward pass needs, one record per layer pushed there, and the record of
    /// which layers' input gradients are needed (from `input_gradient`, the model input's).
    /// With `logits`, the last layer is asked for them (see
    /// [`CallContext::with_logits_wanted`]).
    fn run_with(
        &self,
        x: ArrayViewD<'_, f32>,
        mut states: Option<&mut [Option<States>]>,
        mask: Option<Mask>,
        outer: &mut CallContext,
        mut records: Option<(&mut Vec<SavedForBackward>, &[bool])>,
        logits: bool,
    ) -> Result<RunResult> {
        let mut y: Option<ArrayD<f32>> = None;
        let mut mask = mask;
        let mut left_out = None;
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            let mut ctx = outer.child().with_masks(vec![mask.take()]);
            if let Some((_, needed)) = &records {
                ctx = ctx.recording().with_input_gradients(vec![needed[i]]);
            }
            if logits && i == last {
                ctx = ctx.with_logits_wanted();
            }
            let carried = states
                .as_deref_mut()
                .and_then(|s| s.get_mut(i))
                .filter(|s| s.is_some());
            if let Some(slot) = &carried {
                ctx = ctx.with_states(slot.as_ref().cloned().unwrap_or_default());
            }
            let mut out = {
                let input = y.as_ref().map_or_else(|| x.view(), |y| y.view());
                call_layer(layer.as_ref(), &[input], &mut ctx)?
            };
            outer.add_penalties_of(&ctx);
            if out.len() != 1 {
                return Err(single_output_error(layer.as_ref()));
            }
            mask = ctx.output_masks(layer.as_ref(), 1).swap_remove(0);
            left_out = ctx.take_left_out_activations(1).swap_remove(0);
            if let Some((records, _)) = records.as_mut() {
                // A layer without a backward pass keeps nothing: its backward says so.
                records.push(
                    ctx.take_saved()
                        .unwrap_or_else(|| SavedForBackward::new(Box::new(()))),
                );
            }
            if let (Some(slot), Some(finals)) = (carried, ctx.take_states()) {
                *slot = Some(finals);
            }
            y = Some(out.swap_remove(0));
        }
        let y = y.ok_or_else(|| self.not_built())?;
        Ok(RunResult { y, mask, left_out })
    }

    /// Keras's `model.compile(optimizer, loss)`: the optimizer (a Keras name such as `"adam"`,
    /// or a value such as `Adam::new()`) and the loss (`"mse"`, or a [`Loss`](crate::Loss)) that
    /// [`fit`](Sequential::fit) trains with. Compiling again starts a fresh optimizer.
    ///
    /// ```
    /// use ndarray::Array3;
    /// use seqnn::{Dense, FitOptions, Sequential, SimpleRNN};
    /// seqnn::set_random_seed(0);
    /// let mut model = Sequential::new();
    /// model.add(SimpleRNN::new(3).input_shape((2, 10)))?;
    /// model.add(Dense::new(1))?;
    /// model.compile("sgd", "mse")?;
    /// let x = Array3::<f32>::from_elem((8, 2, 10), 0.1);
    /// let y = ndarray::Array2::<f32>::from_elem((8, 1), 0.5);
    /// let history = model.fit(&x, &y, &FitOptions::new().with_epochs(3).with_verbose(0))?;
    /// let losses = history.get("loss").unwrap();
    /// assert_eq!(losses.len(), 3);
    /// assert!(losses[2] < losses[0]);
    /// # Ok::<(), seqnn::Error>(())
    /// ```
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

    /// `compile` with everything Keras's takes: metrics, and the Keras whose loss arithmetic
    /// to follow.
    ///
    /// ```
    /// use seqnn::{Adam, Compiled, Dense, Loss, Sequential};
    /// let mut model = Sequential::new();
    /// model.add(Dense::new(3).input_dim(4))?;
    /// // model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    /// model.compile_with(
    ///     Compiled::new(Box::new(Adam::new()), Loss::sparse_categorical_crossentropy())
    ///         .with_metrics(&["accuracy"])?,
    /// );
    /// assert_eq!(model.compiled().unwrap().metrics()[0].name(), "accuracy");
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    pub fn compile_with(&mut self, compiled: Compiled) {
        self.compiled = Some(Box::new(compiled));
    }

    /// What [`compile`](Sequential::compile) set, with the optimizer's state; `None` before.
    #[must_use]
    pub fn compiled(&self) -> Option<&Compiled> {
        self.compiled.as_deref()
    }

    /// Keras's `model.fit(x, y, ...)`: trains on `x` and the targets `y` for the epochs of
    /// `options`, and returns the loss of each epoch (and `val_loss` with a
    /// `validation_split`).
    ///
    /// A model with stateful layers trains as Keras's does: each batch starts from the states
    /// the batch before left (a validation batch's too), taken as values, so the gradient
    /// stops at the batch's start (truncated backpropagation through time), and `fit` never
    /// resets them, neither when it starts nor between epochs; a callback does
    /// ([`FitContext::reset_states`](crate::FitContext::reset_states)). Its batches must all
    /// have the batch size it was built for, and `shuffle` should be false (Keras allows it,
    /// without a word, though the rows of successive batches then are not the same
    /// sequences).
    ///
    /// ```
    /// use ndarray::{Array2, Array3};
    /// use seqnn::{Dense, FitOptions, Sequential, GRU};
    /// let mut model = Sequential::new();
    /// model.add(GRU::new(3).with_stateful(true).batch_input_shape((2, 4, 1)))?;
    /// model.add(Dense::new(1))?;
    /// model.compile("adam", "mse")?;
    /// let (x, y) = (Array3::<f32>::from_elem((6, 4, 1), 0.5), Array2::<f32>::zeros((6, 1)));
    /// let options = FitOptions::new().with_batch_size(2).with_shuffle(false).with_verbose(0);
    /// model.fit(&x, &y, &options)?;
    /// // The states after the last batch, for the next call.
    /// assert!(seqnn::Layer::states(&model)[0].iter().any(|&h| h != 0.0));
    /// // Batches of 3 are refused, as Keras refuses them.
    /// assert!(model.fit(&x, &y, &options.with_batch_size(3)).is_err());
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    ///
    /// # Errors
    /// Keras's error before `compile`; `x` and `y` of different lengths, empty data, a
    /// `batch_size` of 0, a `validation_split` outside `[0, 1)`, targets that do not fit the
    /// loss (see [`Loss`](crate::Loss)), a layer without a backward pass, or, for a stateful
    /// model, batches of another size than the one it was built for (Keras 3's error) or a
    /// number of samples (of the training or the validation data) that is not a multiple of
    /// it (where Keras fails at the last batch): the model, its states and its optimizer are
    /// unchanged then. A loss that is not finite stops training with an error naming the
    /// epoch and batch, the weights those of the last finite step.
    pub fn fit<S, D, S2, D2>(
        &mut self,
        x: &ArrayBase<S, D>,
        y: &ArrayBase<S2, D2>,
        options: &FitOptions,
    ) -> Result<History>
    where
        S: ndarray::Data<Elem = f32>,
        D: ndarray::Dimension,
        S2: ndarray::Data<Elem = f32>,
        D2: ndarray::Dimension,
    {
        self.fit_with_callbacks(x, y, options, &mut [])
    }

    /// Keras's `model.fit(x, y, ..., callbacks=[...])`: [`fit`](Sequential::fit), running the
    /// [`Callback`](crate::Callback)s in Keras's order (see [`callbacks`](crate::train::callbacks)).
    /// They are borrowed, so what they kept (`EarlyStopping::stopped_epoch`, the files a
    /// `ModelCheckpoint` wrote) can be read after.
    ///
    /// ```
    /// use ndarray::{Array2, Array3};
    /// use seqnn::{Dense, EarlyStopping, FitOptions, ReduceLROnPlateau, Sequential, SimpleRNN};
    /// seqnn::set_random_seed(0);
    /// let mut model = Sequential::new();
    /// model.add(SimpleRNN::new(3).input_shape((4, 2)))?;
    /// model.add(Dense::new(1))?;
    /// model.compile("sgd", "mse")?;
    /// let (x, y) = (Array3::<f32>::from_elem((16, 4, 2), 0.5), Array2::<f32>::zeros((16, 1)));
    /// let mut stop = EarlyStopping::new().monitor("val_loss").patience(2).restore_best_weights(true);
    /// let mut reduce = ReduceLROnPlateau::new().patience(1).factor(0.5);
    /// let options = FitOptions::new().with_epochs(5).with_validation_split(0.25).with_verbose(0);
    /// let history = model.fit_with_callbacks(&x, &y, &options, &mut [&mut reduce, &mut stop])?;
    /// assert!(history.get("lr").is_some()); // ReduceLROnPlateau logs the rate (tf_keras's key)
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`fit`](Sequential::fit), and a callback's error (a checkpoint that cannot be
    /// written, before training starts; a monitor whose direction Keras cannot tell), which
    /// stops training with the weights of the last step.
    pub fn fit_with_callbacks<S, D, S2, D2>(
        &mut self,
        x: &ArrayBase<S, D>,
        y: &ArrayBase<S2, D2>,
        options: &FitOptions,
        callbacks: &mut [&mut dyn crate::Callback],
    ) -> Result<History>
    where
        S: ndarray::Data<Elem = f32>,
        D: ndarray::Dimension,
        S2: ndarray::Data<Elem = f32>,
        D2: ndarray::Dimension,
    {
        let mut compiled = self
            .compiled
            .take()
            .ok_or_else(|| not_compiled(&self.name))?;
        let outputs = self.output_names();
        let result = fit::fit(
            self,
            &mut compiled,
            &[x.view().into_dyn()],
            &[y.view().into_dyn()],
            &outputs,
            options,
            callbacks,
        );
        self.compiled = Some(compiled);
        result
    }

    /// Keras's `model.evaluate(x, y, batch_size, return_dict=True)`: the loss over `x`, `y`, in
    /// batches, then each metric, by name.
    ///
    /// # Errors
    /// As [`fit`](Sequential::fit), without changing anything; a model with stateful layers
    /// is refused (see [`evaluate_stateful`](Sequential::evaluate_stateful)).
    pub fn evaluate<S, D, S2, D2>(
        &self,
        x: &ArrayBase<S, D>,
        y: &ArrayBase<S2, D2>,
        batch_size: usize,
    ) -> Result<Vec<(String, f32)>>
    where
        S: ndarray::Data<Elem = f32>,
        D: ndarray::Dimension,
        S2: ndarray::Data<Elem = f32>,
        D2: ndarray::Dimension,
    {
        self.refuse_stateful("evaluate")?;
        let (x, y) = (x.view().into_dyn(), y.view().into_dyn());
        Ok(self.evaluate_inner(x, y, None, batch_size)?.0)
    }

    /// Keras's `model.evaluate(x, y, sample_weight=w, batch_size, return_dict=True)`: as
    /// [`evaluate`](Sequential::evaluate), the loss weighted by `sample_weight`, `(samples,)`
    /// or `(samples, timesteps)` (see [`FitOptions::with_sample_weight`]), and so are the
    /// `weighted_metrics`; the metrics are not weighted.
    ///
    /// # Errors
    /// As [`evaluate`](Sequential::evaluate), and for sample weights of the wrong length.
    pub fn evaluate_weighted<S, D, S2, D2>(
        &self,
        x: &ArrayBase<S, D>,
        y: &ArrayBase<S2, D2>,
        sample_weight: &ArrayD<f32>,
        batch_size: usize,
    ) -> Result<Vec<(String, f32)>>
    where
        S: ndarray::Data<Elem = f32>,
        D: ndarray::Dimension,
        S2: ndarray::Data<Elem = f32>,
        D2: ndarray::Dimension,
    {
        self.refuse_stateful("evaluate_weighted")?;
        let (x, y) = (x.view().into_dyn(), y.view().into_dyn());
        Ok(self
            .evaluate_inner(x, y, Some(sample_weight), batch_size)?
            .0)
    }

    /// Keras's `model.evaluate(x, y, batch_size)` of a model with stateful layers: as
    /// [`evaluate`](Sequential::evaluate), each stateful layer starting from its states,
    /// carrying them from batch to batch and keeping the final ones, as Keras's `evaluate`
    /// does (it resets them neither before nor after). `batch_size` must be the batch size
    /// the model was built for. A stateless model is evaluated as by `evaluate`.
    ///
    /// ```
    /// use ndarray::{Array2, Array3};
    /// use seqnn::{Dense, Sequential, LSTM};
    /// let mut model = Sequential::new();
    /// model.add(LSTM::new(3).with_stateful(true).batch_input_shape((2, 4, 1)))?;
    /// model.add(Dense::new(1))?;
    /// model.compile("adam", "mse")?;
    /// let (x, y) = (Array3::<f32>::from_elem((4, 4, 1), 0.5), Array2::<f32>::zeros((4, 1)));
    /// let first = model.evaluate_stateful(&x, &y, 2)?;
    /// // The second evaluation starts from the states the first left.
    /// let second = model.evaluate_stateful(&x, &y, 2)?;
    /// assert_ne!(first[0].1, second[0].1);
    /// model.reset_states();
    /// assert_eq!(model.evaluate_stateful(&x, &y, 2)?[0].1, first[0].1);
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`evaluate`](Sequential::evaluate), and for a `batch_size` other than the model's
    /// or a number of samples that is not a multiple of it (Keras 3's error for the first,
    /// seqnn's for the second, where Keras fails at the last batch); the states are as they
    /// were then.
    pub fn evaluate_stateful<S, D, S2, D2>(
        &mut self,
        x: &ArrayBase<S, D>,
        y: &ArrayBase<S2, D2>,
        batch_size: usize,
    ) -> Result<Vec<(String, f32)>>
    where
        S: ndarray::Data<Elem = f32>,
        D: ndarray::Dimension,
        S2: ndarray::Data<Elem = f32>,
        D2: ndarray::Dimension,
    {
        let (x, y) = (x.view().into_dyn(), y.view().into_dyn());
        let evaluated = self.evaluate_inner(x, y, None, batch_size)?;
        fit::commit(self, evaluated)
    }

    /// [`evaluate_stateful`](Sequential::evaluate_stateful) with sample weights, as
    /// [`evaluate_weighted`](Sequential::evaluate_weighted) takes them.
    ///
    /// # Errors
    /// As [`evaluate_stateful`](Sequential::evaluate_stateful), and for sample weights of the
    /// wrong length.
    pub fn evaluate_stateful_weighted<S, D, S2, D2>(
        &mut self,
        x: &ArrayBase<S, D>,
        y: &ArrayBase<S2, D2>,
        sample_weight: &ArrayD<f32>,
        batch_size: usize,
    ) -> Result<Vec<(String, f32)>>
    where
        S: ndarray::Data<Elem = f32>,
        D: ndarray::Dimension,
        S2: ndarray::Data<Elem = f32>,
        D2: ndarray::Dimension,
    {
        let (x, y) = (x.view().into_dyn(), y.view().into_dyn());
        let evaluated = self.evaluate_inner(x, y, Some(sample_weight), batch_size)?;
        fit::commit(self, evaluated)
    }

    /// The logs of an evaluation and, for a stateful model, its final states.
    fn evaluate_inner(
        &self,
        x: ArrayViewD<'_, f32>,
        y: ArrayViewD<'_, f32>,
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
            (&[x], &[y], sample_weight),
            &self.output_names(),
            batch_size,
        )
    }

    /// Keras's `model.train_on_batch(x, y)`: one step on one batch; returns its loss.
    ///
    /// # Errors
    /// As [`fit`](Sequential::fit); the model and its optimizer are unchanged then.
    pub fn train_on_batch<S, D, S2, D2>(
        &mut self,
        x: &ArrayBase<S, D>,
        y: &ArrayBase<S2, D2>,
    ) -> Result<f32>
    where
        S: ndarray::Data<Elem = f32>,
        D: ndarray::Dimension,
        S2: ndarray::Data<Elem = f32>,
        D2: ndarray::Dimension,
    {
        let options = FitOptions::new()
            .with_shuffle(false)
            .with_verbose(0)
            .with_batch_size(x.shape().first().copied().unwrap_or(0).max(1));
        self.fit(x, y, &options).map(|h| {
            h.get("loss")
                .and_then(|l| l.first().copied())
                .unwrap_or(f32::NAN)
        })
    }

    /// Keras's `model.test_on_batch(x, y)`: the loss of one batch.
    ///
    /// # Errors
    /// As [`evaluate`](Sequential::evaluate): a stateful model is refused (its
    /// `test_on_batch(x, y)` is `evaluate_stateful(&x, &y, batch)[0]`).
    pub fn test_on_batch<S, D, S2, D2>(
        &self,
        x: &ArrayBase<S, D>,
        y: &ArrayBase<S2, D2>,
    ) -> Result<f32>
    where
        S: ndarray::Data<Elem = f32>,
        D: ndarray::Dimension,
        S2: ndarray::Data<Elem = f32>,
        D2: ndarray::Dimension,
    {
        self.refuse_stateful("test_on_batch")?;
        let n = x.shape().first().copied().unwrap_or(0).max(1);
        Ok(self.evaluate(x, y, n)?[0].1)
    }

    /// The name of the model's one output: its last layer's, as Keras names it.
    fn output_names(&self) -> Vec<String> {
        vec![self
            .layers
            .last()
            .map_or_else(|| self.name.clone(), |l| l.name().to_string())]
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

    /// The summary table Keras prints, in the notebook's layout (see the crate docs).
    ///
    /// # Errors
    /// [`Error::NotBuilt`], with Keras's message, before the model is built.
    #[must_use = "the summary is returned, not printed: println!(\"{}\", model.summary()?)"]
    pub fn summary(&self) -> Result<String> {
        if !self.is_built() {
            return Err(self.not_built());
        }
        let rows: Vec<Row> = self
            .layers
            .iter()
            .zip(&self.output_shapes)
            .map(|(l, s)| Row {
                layer: format!("{} ({})", l.name(), l.class_name()),
                output_shape: s.to_string(),
                params: l.count_params(),
            })
            .collect();
        let (trainable, non_trainable) = self.param_split();
        Ok(summary::render(
            &self.name,
            &rows,
            &Totals {
                trainable,
                non_trainable,
            },
        ))
    }

    fn param_split(&self) -> (usize, usize) {
        param_split(&self.layers)
    }

    /// The number of scalars in all weights.
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before the model is built.
    pub fn count_params(&self) -> Result<usize> {
        if !self.is_built() {
            return Err(self.not_built());
        }
        let (t, n) = self.param_split();
        Ok(t + n)
    }

    /// The layers, in order.
    #[must_use]
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// The layers, in order, to change in place: their weights (`set_weights`), `trainable`,
    /// states. A layer's shapes stay as they were built.
    ///
    /// ```
    /// use ndarray::Array2;
    /// use seqnn::{Dense, Embedding, Layer, Sequential};
    /// let mut model = Sequential::new();
    /// model.add(Embedding::new(10, 4).input_shape((3,)))?;
    /// model.add(Dense::new(1))?;
    /// // Pretrained embeddings into the first layer, which is then frozen.
    /// let table = Array2::<f32>::ones((10, 4)).into_dyn();
    /// let embedding = model.layers_mut().next().unwrap();
    /// embedding.set_weights(&[table])?;
    /// embedding.set_trainable(false);
    /// assert_eq!(model.get_weights()[0][[9, 3]], 1.0);
    /// # Ok::<(), seqnn::Error>(())
    /// ```
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
            None => Err(self.no_such_layer(name)),
        }
    }

    /// The layer called `name`, to change in place (see [`layers_mut`](Sequential::layers_mut)).
    ///
    /// # Errors
    /// [`Error::NoSuchLayer`], listing the names there are.
    pub fn get_layer_mut(&mut self, name: &str) -> Result<&mut dyn Layer> {
        match self.layers.iter().position(|l| l.name() == name) {
            Some(i) => Ok(self.layers[i].as_mut()),
            None => Err(self.no_such_layer(name)),
        }
    }

    fn no_such_layer(&self, name: &str) -> Error {
        Error::NoSuchLayer {
            name: name.to_string(),
            existing: self
                .layers
                .iter()
                .map(|l| l.name().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Removes the last layer and returns it, as Keras's `model.pop()`.
    ///
    /// # Errors
    /// Keras's error for a model with no layers.
    pub fn pop(&mut self) -> Result<Box<dyn Layer>> {
        let layer = self.layers.pop().ok_or_else(|| Error::InvalidArgument {
            layer: self.name.clone(),
            message: "There are no layers in the model.".into(),
        })?;
        self.output_shapes.truncate(self.layers.len());
        if self.layers.is_empty() {
            self.input_shape = None;
            self.inferred = false;
        }
        Ok(layer)
    }

    /// The name of the model's input: the `InputLayer`'s name in a loaded file (tf_keras names
    /// it after the first layer, `lstm_input`), otherwise `input_layer`, as Keras 3 names it.
    ///
    /// ```
    /// use seqnn::{Layer, Sequential, LSTM};
    /// let mut model = Sequential::new();
    /// model.add(LSTM::new(4).input_shape((5, 3)))?;
    /// assert_eq!(model.input_name(), "input_layer");
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    #[must_use]
    pub fn input_name(&self) -> &str {
        self.input_name.as_deref().unwrap_or("input_layer")
    }

    /// Names the model's input, as a file's `InputLayer` does.
    #[cfg_attr(not(feature = "keras"), allow(dead_code))]
    pub(crate) fn set_input_name(&mut self, name: String) {
        self.input_name = Some(name);
    }

    /// The model's input shape, batch first, once known.
    #[must_use]
    pub fn input_shape(&self) -> Option<Shape> {
        self.input_shape.clone()
    }

    /// The last layer's output shape, once the model is built.
    #[must_use]
    pub fn output_shape(&self) -> Option<Shape> {
        if self.is_built() {
            self.output_shapes.last().cloned()
        } else {
            None
        }
    }

    /// All weights in Keras order (layer by layer, each in its own order), as copies.
    #[must_use]
    pub fn get_weights(&self) -> Vec<ArrayD<f32>> {
        self.layers
            .iter()
            .flat_map(|l| l.weights())
            .map(|w| w.to_owned())
            .collect()
    }

    /// Replaces all weights, given in Keras order, as `model.set_weights(...)`. Every count and
    /// shape is checked before anything changes.
    ///
    /// # Errors
    /// [`Error::WeightCount`] naming the model, or [`Error::WeightShape`] naming the layer and
    /// which of its weights.
    pub fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        set_layer_weights(&self.name, &mut self.layers, weights)
    }
}

/// Sets the weights of `layers`, given in Keras order for all of them, after checking every
/// count and shape (naming `model` for the count, the layer and its weight for a shape), so
/// that nothing changes after an error.
pub(crate) fn set_layer_weights(
    model: &str,
    layers: &mut [Box<dyn Layer>],
    weights: &[ArrayD<f32>],
) -> Result<()> {
    let counts: Vec<usize> = layers.iter().map(|l| l.weight_specs().len()).collect();
    let expected: usize = counts.iter().sum();
    if weights.len() != expected {
        return Err(Error::WeightCount {
            layer: model.to_string(),
            expected,
            found: weights.len(),
        });
    }
    let mut rest = weights;
    for (layer, &n) in layers.iter().zip(&counts) {
        let (mine, others) = rest.split_at(n);
        crate::layer::check_weights(layer.name(), &layer.weight_specs(), mine)?;
        rest = others;
    }
    let mut rest = weights;
    for (layer, &n) in layers.iter_mut().zip(&counts) {
        let (mine, others) = rest.split_at(n);
        if n > 0 {
            layer.set_weights(mine)?;
        }
        rest = others;
    }
    Ok(())
}

/// A `batch_size` of 0 is Keras's error.
/// The trainable and non-trainable parameters of `layers`, as Keras's summary counts them.
pub(crate) fn param_split(layers: &[Box<dyn Layer>]) -> (usize, usize) {
    layers.iter().fold((0, 0), |(t, n), l| {
        let trainable = l.trainable_params();
        (t + trainable, n + l.count_params() - trainable)
    })
}

pub(crate) fn check_batch_size(model: &str, batch_size: usize) -> Result<()> {
    if batch_size == 0 {
        return Err(Error::InvalidArgument {
            layer: model.to_string(),
            message: "batch_size must be a positive integer, got 0".into(),
        });
    }
    Ok(())
}

fn single_output_error(layer: &dyn Layer) -> Error {
    Error::UnsupportedInModel {
        layer: layer.name().to_string(),
        message: "All layers in a Sequential model should have a single output tensor. For \
                  multi-output layers, use the functional API."
            .to_string(),
    }
}

fn check_single_output(layer: &dyn Layer) -> Result<()> {
    if layer.output_count() > 1 {
        return Err(single_output_error(layer));
    }
    Ok(())
}

/// Builds `layer` for `input` and returns its one output shape; draws its weights when
/// `initialize` and it has none yet.
fn build_one(layer: &mut dyn Layer, input: &Shape, initialize: bool) -> Result<Shape> {
    let mut out = layer.build(std::slice::from_ref(input))?;
    if out.len() != 1 {
        return Err(single_output_error(layer));
    }
    // Every layer's sizes, whatever it checks itself: its weights, and one sample's output.
    let specs = layer.weight_specs();
    let total = specs.iter().try_fold(0_usize, |t, w| {
        limits::elements(&w.shape).and_then(|n| t.checked_add(n))
    });
    limits::check_params(layer.name(), total, "the sum of its weights")?;
    limits::check_tensor(layer.name(), "output", &out[0])?;
    if initialize && !layer.has_weights() {
        layer.initialize();
    }
    Ok(out.swap_remove(0))
}

/// A Sequential model is a layer of a bigger model, as in Keras: its weights are its layers'
/// weights, in order; a call runs them, the mask going through.
impl Layer for Sequential {
    fn name(&self) -> &str {
        &self.name
    }

    fn ensure_named(&mut self) {}

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn class_name(&self) -> &'static str {
        "Sequential"
    }

    fn trainable(&self) -> bool {
        self.layers.iter().any(|l| l.trainable()) || self.layers.is_empty()
    }

    /// Keras's `model.trainable = False`: every layer frozen (or thawed).
    fn set_trainable(&mut self, trainable: bool) {
        for layer in self.layers.iter_mut() {
            layer.set_trainable(trainable);
        }
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        match &self.input_shape {
            Some(s) => Ok(Some(s.clone())),
            None => self.first_declared_input(),
        }
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let mut current = crate::layer::single_shape(&self.name, inputs)?.clone();
        for layer in &self.layers {
            let mut out = layer.compute_output_shape(std::slice::from_ref(&current))?;
            if out.len() != 1 {
                return Err(single_output_error(layer.as_ref()));
            }
            current = out.swap_remove(0);
        }
        Ok(vec![current])
    }

    fn build(&mut self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let input = crate::layer::single_shape(&self.name, inputs)?.clone();
        if !self.is_built() {
            self.build_from(input.clone(), false, false)?;
        }
        self.compute_output_shape(&[input])
    }

    fn is_built(&self) -> bool {
        Sequential::is_built(self)
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
        set_layer_weights(&self.name, &mut self.layers, weights)
    }

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let x = crate::layer::single_input(&self.name, inputs)?;
        self.check_input(x.shape())?;
        let mut states = crate::stateful::given_states(&self.name, &self.layers, ctx)?;
        let mask = ctx.input_mask(0).map(|m| m.to_owned());
        let logits = ctx.logits_wanted();
        let run = if ctx.records() {
            let mut records = Vec::with_capacity(self.layers.len());
            let input_gradients = self.input_gradients(ctx.needs_input_gradient(0));
            let run = self.run_with(
                x.view(),
                states.as_deref_mut(),
                mask,
                ctx,
                Some((&mut records, &input_gradients)),
                logits,
            )?;
            ctx.save_for_backward(Box::new(SequentialSaved {
                records,
                input_gradients,
            }));
            run
        } else {
            self.run_with(x.view(), states.as_deref_mut(), mask, ctx, None, logits)?
        };
        ctx.set_output_masks(vec![run.mask]);
        if logits {
            ctx.set_left_out_activations(vec![run.left_out]);
        }
        if let Some(states) = states {
            ctx.set_states(crate::stateful::join_states(states));
        }
        Ok(vec![run.y])
    }

    /// Each layer's backward pass, from the last to the first; the weights' gradients in the
    /// model's order (its layers', in order).
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let SequentialSaved {
            records,
            input_gradients,
        } = saved.get(&self.name)?;
        if records.len() != self.layers.len() {
            return Err(Error::InvalidArgument {
                layer: self.name.clone(),
                message: "the backward pass was given the record of another model".into(),
            });
        }
        let mut grad: Option<ArrayD<f32>> = output_grads
            .first()
            .and_then(Option::as_ref)
            .map(|g| g.to_owned());
        let mut per_layer = Vec::with_capacity(self.layers.len());
        for (i, (layer, record)) in self.layers.iter().zip(records).enumerate().rev() {
            let g = backward_layer(layer.as_ref(), record, &[grad.as_ref().map(|g| g.view())])?;
            grad = g.inputs.into_iter().next().flatten();
            per_layer.push(g.weights);
            if !input_gradients[i] {
                // The layers before this one have no weights, and the caller needs no
                // gradient of the model's input.
                grad = None;
                break;
            }
            if grad.is_none() && i > 0 {
                return Err(Error::InvalidArgument {
                    layer: layer.name().to_string(),
                    message: "this layer passes no gradient to its input, so the layers \
                              before it cannot be trained"
                        .into(),
                });
            }
        }
        let weights = per_layer.into_iter().rev().flatten().collect();
        Ok(Gradients {
            inputs: vec![grad],
            weights,
        })
    }

    /// Each layer's, from its record, in the model's weights' order.
    fn updates(&self, saved: &SavedForBackward) -> Result<Vec<Option<ArrayD<f32>>>> {
        let SequentialSaved { records, .. } = saved.get(&self.name)?;
        let mut updates = Vec::new();
        for (layer, record) in self.layers.iter().zip(records) {
            updates.extend(layer.updates(record)?);
        }
        Ok(updates)
    }

    fn working_elements(&self, inputs: &[Shape]) -> usize {
        let mut current = match inputs.first() {
            Some(s) => s.clone(),
            None => return 0,
        };
        let mut most = 0_usize;
        for layer in &self.layers {
            let inputs = std::slice::from_ref(&current);
            most = most.max(layer.working_elements(inputs));
            match layer.compute_output_shape(inputs) {
                Ok(mut out) => {
                    current = out.swap_remove(0);
                    most = most.max(limits::known_elements(&current).unwrap_or(usize::MAX));
                }
                Err(_) => break,
            }
        }
        most
    }

    fn is_stateful(&self) -> bool {
        Sequential::is_stateful(self)
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
        Sequential::reset_states(self);
    }

    fn clone_box(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

impl fmt::Display for Sequential {
    /// The summary table, or Keras's "not yet been built" message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.summary() {
            Ok(s) => f.write_str(&s),
            Err(e) => write!(f, "{e}"),
        }
    }
}
