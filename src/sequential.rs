//! Keras's `Sequential` model: a stack of single-output layers.

use std::fmt;

use ndarray::{ArrayBase, ArrayD, ArrayViewD, Data, Dimension};

use crate::error::{Error, Result};
use crate::layer::{CallContext, Layer, Mask, States};
use crate::session::unique_name;
use crate::shape::Shape;
use crate::summary::{self, Row, Totals};

/// Keras's `Sequential`: layers applied one after the other.
///
/// When the input shape is known (from the first layer's `input_shape`, `batch_input_shape` or
/// `input_dim`), each added layer is built at once: its output shape is inferred and its weights
/// created. Without one, the model stays unbuilt until [`build`](Sequential::build) or the first
/// [`predict`](Sequential::predict).
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
    /// The input shape came from data rather than a declaration, so, as Keras relaxes it, the
    /// timesteps may vary from call to call.
    inferred: bool,
    /// Each layer's output shape, once the model is built.
    output_shapes: Vec<Shape>,
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
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
            inferred: false,
            output_shapes: Vec::new(),
        }
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a layer on top, building it at once when the model's input shape is known.
    ///
    /// # Errors
    /// - [`Error::DuplicateLayerName`] when a layer of that name is in the model already;
    /// - [`Error::UnsupportedInModel`] for a layer with several outputs (`return_state`,
    ///   a Bidirectional with merge mode none);
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
    pub fn add_boxed(&mut self, layer: Box<dyn Layer>) -> Result<()> {
        self.push(layer, true)
    }

    /// [`add_boxed`](Sequential::add_boxed) without drawing weights: the layer is built (its
    /// shapes fixed and checked) but has no values until `set_weights`. What a loader uses, so
    /// that no initializer runs for weights a file is about to give.
    #[cfg_attr(not(feature = "keras"), allow(dead_code))]
    pub(crate) fn add_without_weights(&mut self, layer: Box<dyn Layer>) -> Result<()> {
        self.push(layer, false)
    }

    fn push(&mut self, mut layer: Box<dyn Layer>, initialize: bool) -> Result<()> {
        layer.ensure_named();
        if self.layers.iter().any(|l| l.name() == layer.name()) {
            return Err(Error::DuplicateLayerName {
                name: layer.name().to_string(),
            });
        }
        if layer.output_count() > 1 {
            return Err(Error::UnsupportedInModel {
                layer: layer.name().to_string(),
                message: "All layers in a Sequential model should have a single output tensor. \
                          For multi-output layers, use the functional API."
                    .to_string(),
            });
        }
        let declared = layer.declared_input_shape()?;
        let input = if self.layers.is_empty() {
            declared
        } else {
            self.output_shape()
        };
        if let Some(input) = input {
            let out = build_one(layer.as_mut(), &input, initialize)?;
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

    /// Builds every layer for inputs of `input_shape` (batch first, `None` where unknown), as
    /// Keras's `model.build(input_shape)`.
    ///
    /// # Errors
    /// When the model has no layers, or a layer cannot take its input; the model is unchanged.
    pub fn build(&mut self, input_shape: impl Into<Shape>) -> Result<()> {
        self.build_from(input_shape.into(), false, true)
    }

    /// [`build`](Sequential::build) without drawing weights, for a loader.
    #[cfg_attr(not(feature = "keras"), allow(dead_code))]
    pub(crate) fn build_without_weights(&mut self, input_shape: Shape) -> Result<()> {
        self.build_from(input_shape, false, false)
    }

    fn build_from(&mut self, input: Shape, inferred: bool, initialize: bool) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::InvalidArgument {
                layer: self.name.clone(),
                message: "a model with no layers cannot be built; add a layer first".into(),
            });
        }
        let mut layers = self.layers.clone();
        let mut shapes = Vec::with_capacity(layers.len());
        let mut current = input.clone();
        for layer in layers.iter_mut() {
            current = build_one(layer.as_mut(), &current, initialize)?;
            shapes.push(current.clone());
        }
        self.layers = layers;
        self.output_shapes = shapes;
        self.input_shape = Some(input);
        self.inferred = inferred;
        Ok(())
    }

    /// Whether every layer has its weights.
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

    /// Runs the model on a batch, `(batch, timesteps, features)`, and returns the last layer's
    /// output. An unbuilt model is first built from the data's shape (batch left unknown), as
    /// Keras does on the first call.
    ///
    /// Inference on a built model only needs `&self`: see [`call`](Sequential::call). A model
    /// with stateful layers is run here, and its states carry over to the next `predict`.
    ///
    /// # Errors
    /// As [`call`](Sequential::call); building from the data fails as
    /// [`build`](Sequential::build). The model is unchanged after an error.
    pub fn predict<S, D>(&mut self, x: &ArrayBase<S, D>) -> Result<ArrayD<f32>>
    where
        S: Data<Elem = f32>,
        D: Dimension,
    {
        let x = x.view().into_dyn();
        if self.is_built() {
            if self.is_stateful() {
                return self.predict_stateful(x);
            }
            return self.call(&x);
        }
        let mut dims: Vec<Option<usize>> = x.shape().iter().map(|&d| Some(d)).collect();
        if let Some(batch) = dims.first_mut() {
            *batch = None;
        }
        let mut trial = self.clone();
        trial.build_from(Shape::new(dims), true, true)?;
        let y = trial.call(&x)?;
        *self = trial;
        Ok(y)
    }

    /// Runs the built model on a batch without changing it, so one model can serve many
    /// threads. Any batch size goes, as in Keras.
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before the model is built; [`Error::IncompatibleShape`] (naming the
    /// model, quoting both shapes, as Keras) when `x` has the wrong rank, features or fixed
    /// timesteps; [`Error::EmptyInput`] for an input with no elements.
    pub fn call<S, D>(&self, x: &ArrayBase<S, D>) -> Result<ArrayD<f32>>
    where
        S: Data<Elem = f32>,
        D: Dimension,
    {
        let input = self.input_shape.as_ref().ok_or_else(|| self.not_built())?;
        if !self.is_built() {
            return Err(self.not_built());
        }
        let x: ArrayViewD<'_, f32> = x.view().into_dyn();
        let mut accepted = input.with_batch(None);
        if self.inferred {
            let mut dims = accepted.dims().to_vec();
            let last = dims.len().saturating_sub(1);
            for d in dims.iter_mut().take(last).skip(1) {
                *d = None;
            }
            accepted = Shape::new(dims);
        }
        // As Keras's model-level check: one message for a wrong rank or a wrong dimension.
        if !accepted.accepts(x.shape()) {
            return Err(Error::IncompatibleShape {
                layer: self.name.clone(),
                expected: accepted,
                found: Shape::known(x.shape()),
            });
        }
        if x.is_empty() {
            return Err(Error::EmptyInput {
                layer: self.name.clone(),
                shape: Shape::known(x.shape()),
            });
        }
        if self.is_stateful() {
            return Err(Error::InvalidArgument {
                layer: self.name.clone(),
                message: "this model has stateful layers, whose states each call updates: run \
                          it with predict (which takes &mut self), not call"
                    .to_string(),
            });
        }
        Ok(self.run(x, false)?.0)
    }

    /// Runs every layer in order, passing each output and its mask to the next. With `carry`,
    /// each stateful layer starts from its states; its final states are returned, one entry per
    /// layer (`None` for stateless ones), for the caller to commit.
    fn run(
        &self,
        x: ArrayViewD<'_, f32>,
        carry: bool,
    ) -> Result<(ArrayD<f32>, Vec<Option<States>>)> {
        let mut y: Option<ArrayD<f32>> = None;
        let mut mask: Option<Mask> = None;
        let mut finals = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let mut ctx = CallContext::inference().with_masks(vec![mask.take()]);
            if carry && layer.is_stateful() {
                ctx = ctx.with_states(layer.states());
            }
            let mut out = {
                let input = y.as_ref().map_or_else(|| x.view(), |y| y.view());
                layer.call(&[input], &mut ctx)?
            };
            if out.len() != 1 {
                return Err(Error::UnsupportedInModel {
                    layer: layer.name().to_string(),
                    message: format!(
                        "All layers in a Sequential model should have a single output tensor, \
                         got {}. For multi-output layers, use the functional API.",
                        out.len()
                    ),
                });
            }
            mask = ctx.output_masks(layer.as_ref(), 1).swap_remove(0);
            finals.push(if carry && layer.is_stateful() {
                ctx.take_states()
            } else {
                None
            });
            y = Some(out.swap_remove(0));
        }
        let y = y.ok_or_else(|| self.not_built())?;
        Ok((y, finals))
    }

    /// Whether any layer keeps state between calls (`stateful(true)`).
    pub fn is_stateful(&self) -> bool {
        self.layers.iter().any(|l| l.is_stateful())
    }

    /// Zeroes the states of every stateful layer, as Keras's `model.reset_states()`.
    pub fn reset_states(&mut self) {
        for layer in self.layers.iter_mut() {
            layer.reset_states();
        }
    }

    /// A stateful run: each stateful layer starts from the states the last run left. If a layer
    /// fails, every state is put back as it was.
    fn predict_stateful(&mut self, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        let input = self.input_shape.clone().ok_or_else(|| self.not_built())?;
        let accepted = input.with_batch(None);
        if !accepted.accepts(x.shape()) {
            return Err(Error::IncompatibleShape {
                layer: self.name.clone(),
                expected: input,
                found: Shape::known(x.shape()),
            });
        }
        // The new states are committed only once every layer ran: a failure changes nothing.
        let (y, finals) = self.run(x, true)?;
        for (layer, states) in self.layers.iter_mut().zip(finals) {
            if let Some(states) = states {
                layer.set_states(states)?;
            }
        }
        Ok(y)
    }

    /// The summary table Keras prints, in the notebook's layout (see the crate docs).
    ///
    /// # Errors
    /// [`Error::NotBuilt`], with Keras's message, before the model is built.
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
        self.layers.iter().fold((0, 0), |(t, n), l| {
            if l.trainable() {
                (t + l.count_params(), n)
            } else {
                (t, n + l.count_params())
            }
        })
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
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// The layer called `name`.
    ///
    /// # Errors
    /// [`Error::NoSuchLayer`], listing the names there are.
    pub fn get_layer(&self, name: &str) -> Result<&dyn Layer> {
        self.layers
            .iter()
            .find(|l| l.name() == name)
            .map(|l| l.as_ref())
            .ok_or_else(|| Error::NoSuchLayer {
                name: name.to_string(),
                existing: self
                    .layers
                    .iter()
                    .map(|l| l.name().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The model's input shape, batch first, once known.
    pub fn input_shape(&self) -> Option<Shape> {
        self.input_shape.clone()
    }

    /// The last layer's output shape, once the model is built.
    pub fn output_shape(&self) -> Option<Shape> {
        if self.is_built() {
            self.output_shapes.last().cloned()
        } else {
            None
        }
    }

    /// All weights in Keras order (layer by layer, each in its own order), as copies.
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
    /// [`Error::WeightCount`] or [`Error::WeightShape`], naming the model as Keras does.
    pub fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        let counts: Vec<usize> = self.layers.iter().map(|l| l.weight_specs().len()).collect();
        let expected: usize = counts.iter().sum();
        if weights.len() != expected {
            return Err(Error::WeightCount {
                layer: self.name.clone(),
                expected,
                found: weights.len(),
            });
        }
        // Every shape first, naming the layer and its weight, then the values.
        let mut rest = weights;
        for (layer, &n) in self.layers.iter().zip(&counts) {
            let (mine, others) = rest.split_at(n);
            crate::layer::check_weights(layer.name(), &layer.weight_specs(), mine)?;
            rest = others;
        }
        let mut rest = weights;
        for (layer, &n) in self.layers.iter_mut().zip(&counts) {
            let (mine, others) = rest.split_at(n);
            if n > 0 {
                layer.set_weights(mine)?;
            }
            rest = others;
        }
        Ok(())
    }
}

/// Builds `layer` for `input` and returns its one output shape; draws its weights when
/// `initialize` and it has none yet.
fn build_one(layer: &mut dyn Layer, input: &Shape, initialize: bool) -> Result<Shape> {
    let mut out = layer.build(std::slice::from_ref(input))?;
    if out.len() != 1 {
        return Err(Error::UnsupportedInModel {
            layer: layer.name().to_string(),
            message: "All layers in a Sequential model should have a single output tensor. \
                      For multi-output layers, use the functional API."
                .to_string(),
        });
    }
    if initialize && !layer.has_weights() {
        layer.initialize();
    }
    Ok(out.swap_remove(0))
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
