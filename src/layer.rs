//! The [`Layer`] trait every layer implements, and the shape and weight checks layers share.

use std::fmt;

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD};

use crate::error::{Error, Result};
use crate::session::unique_name;
use crate::shape::Shape;

/// A per-timestep mask, `(batch, timesteps)`: `true` where the step is real, `false` where it is
/// padding. Keras's `_keras_mask`, made by `Embedding(mask_zero=True)` and `Masking`.
pub type Mask = Array2<bool>;

/// What a layer does with the mask that arrives with its input, as Keras decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskPolicy {
    /// The output has the input's timesteps, and the mask goes on with it (Keras's
    /// `supports_masking`: Dense, Dropout, ActivationFn, TimeDistributed, sequence RNNs).
    Propagate,
    /// The mask stops here (Flatten, RepeatVector, an RNN's last output). Keras does the same,
    /// without an error (Keras 3 warns for layers that do not support masking).
    Drop,
}

/// A Keras layer: shape inference, weights in Keras order, and an inference forward pass.
///
/// The trait is object-safe, so a [`Sequential`](crate::Sequential) holds `Box<dyn Layer>`; a
/// `&dyn Layer` converts to `&dyn Any` to reach the concrete layer.
/// Shape inference ([`compute_output_shape`](Layer::compute_output_shape)) is separate from
/// compute ([`forward`](Layer::forward)), and [`build`](Layer::build) is what creates weights.
///
/// ```
/// use seqnn::{Layer, Shape, SimpleRNN};
/// let mut rnn = SimpleRNN::new(3);
/// let out = rnn.build(&Shape::new(vec![None, Some(2), Some(10)]))?;
/// assert_eq!(out.to_string(), "(None, 3)");
/// assert_eq!(rnn.count_params(), 42); // 10·3 + 3·3 + 3
/// # Ok::<(), seqnn::Error>(())
/// ```
pub trait Layer: std::any::Any + fmt::Debug + Send + Sync {
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

    /// The input shape the layer was declared with (`input_shape`, `batch_input_shape`,
    /// `input_dim`), batch first, or `None` when it was given none.
    ///
    /// # Errors
    /// When the declaration is incomplete, such as `input_length` without `input_dim`.
    fn declared_input_shape(&self) -> Result<Option<Shape>>;

    /// The output shape for an input of shape `input`, without building anything.
    ///
    /// # Errors
    /// When the layer cannot take such an input: the error names the layer and quotes the shape.
    fn compute_output_shape(&self, input: &Shape) -> Result<Shape>;

    /// Creates the weights for inputs of shape `input` and returns the output shape. A layer that
    /// is already built keeps its weights, and only checks that `input` fits them.
    ///
    /// # Errors
    /// As [`compute_output_shape`](Layer::compute_output_shape).
    fn build(&mut self, input: &Shape) -> Result<Shape>;

    /// Whether the layer has its weights.
    fn is_built(&self) -> bool;

    /// The weights in Keras order (`get_weights()`), as views. Empty before the layer is built.
    fn weights(&self) -> Vec<ArrayViewD<'_, f32>>;

    /// Replaces the weights, given in Keras order.
    ///
    /// # Errors
    /// [`Error::WeightCount`] or [`Error::WeightShape`]; the layer is unchanged then.
    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()>;

    /// The number of scalars in the weights, as Keras's `count_params()`.
    fn count_params(&self) -> usize {
        self.weights().iter().map(|w| w.len()).sum()
    }

    /// Whether training may change the weights (Keras's `trainable`).
    fn trainable(&self) -> bool;

    /// How many tensors a call returns: more than one under `return_state` or a Bidirectional
    /// with `merge_mode` none. A [`Sequential`](crate::Sequential) takes only single-output
    /// layers.
    fn output_count(&self) -> usize {
        1
    }

    /// The inference forward pass: the layer's single output for a batch of inputs.
    ///
    /// # Errors
    /// When the layer is not built, or `input` does not fit it.
    fn forward(&self, input: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>>;

    /// A boxed copy, weights included.
    fn clone_box(&self) -> Box<dyn Layer>;

    /// What the layer does with an incoming mask. Default: drop it.
    fn mask_policy(&self) -> MaskPolicy {
        MaskPolicy::Drop
    }

    /// The forward pass with the mask of the input, returning the output and its mask: Keras's
    /// `call(inputs, mask=...)` and `compute_mask`. Layers that make masks (Embedding, Masking)
    /// or read them (recurrent layers) override it; the default runs
    /// [`forward`](Layer::forward) and applies [`mask_policy`](Layer::mask_policy).
    ///
    /// # Errors
    /// As [`forward`](Layer::forward).
    fn forward_masked(
        &self,
        input: ArrayViewD<'_, f32>,
        mask: Option<ArrayView2<'_, bool>>,
    ) -> Result<(ArrayD<f32>, Option<Mask>)> {
        let out = self.forward(input)?;
        let mask = match self.mask_policy() {
            MaskPolicy::Propagate => mask.map(|m| m.to_owned()),
            MaskPolicy::Drop => None,
        };
        Ok((out, mask))
    }

    /// Whether the layer keeps state from one call to the next (Keras's `stateful=True`).
    fn is_stateful(&self) -> bool {
        false
    }

    /// The forward pass of a stateful layer: starts from the state the last call left and
    /// keeps the final state for the next. Stateless layers run
    /// [`forward_masked`](Layer::forward_masked).
    ///
    /// # Errors
    /// As [`forward_masked`](Layer::forward_masked); the state is unchanged after an error.
    fn forward_stateful(
        &mut self,
        input: ArrayViewD<'_, f32>,
        mask: Option<ArrayView2<'_, bool>>,
    ) -> Result<(ArrayD<f32>, Option<Mask>)> {
        self.forward_masked(input, mask)
    }

    /// The states a stateful layer carries, `(batch, units)` each; empty for other layers.
    fn states(&self) -> Vec<Array2<f32>> {
        Vec::new()
    }

    /// Puts back states taken with [`states`](Layer::states).
    fn restore_states(&mut self, states: Vec<Array2<f32>>) {
        let _ = states;
    }

    /// Zeroes the states of a stateful layer (Keras's `reset_states()`).
    fn reset_states(&mut self) {}
}

impl Clone for Box<dyn Layer> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
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

/// Checks that `weights` has the count and the shapes of `expected` (a layer's current weights).
pub(crate) fn check_weights(
    layer: &str,
    expected: &[ArrayViewD<'_, f32>],
    weights: &[ArrayD<f32>],
) -> Result<()> {
    if weights.len() != expected.len() {
        return Err(Error::WeightCount {
            layer: layer.to_string(),
            expected: expected.len(),
            found: weights.len(),
        });
    }
    for (e, w) in expected.iter().zip(weights) {
        if e.shape() != w.shape() {
            return Err(Error::WeightShape {
                layer: layer.to_string(),
                expected: Shape::known(e.shape()),
                found: Shape::known(w.shape()),
            });
        }
    }
    Ok(())
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
    let found = Shape::known(input);
    check_rank(layer, expected.rank(), &found)?;
    if !expected.accepts(input) {
        return Err(Error::IncompatibleShape {
            layer: layer.to_string(),
            expected: expected.clone(),
            found,
        });
    }
    if input.contains(&0) {
        return Err(Error::EmptyInput {
            layer: layer.to_string(),
            shape: found,
        });
    }
    Ok(())
}

/// The Keras options every layer has, as chaining setters: `input_shape`, `batch_input_shape`,
/// `name` and `trainable`. Used inside a layer's inherent `impl`; the layer has the fields
/// `input: InputDecl`, `name: LayerName` and `trainable: bool`.
macro_rules! common_builders {
    ($base:literal) => {
        /// Keras's `input_shape`: the shape of one sample, without the batch.
        pub fn input_shape(mut self, shape: impl Into<$crate::Shape>) -> Self {
            self.input.shape = Some(shape.into());
            self
        }

        /// Keras's `batch_input_shape`: the input shape with a fixed batch size first.
        pub fn batch_input_shape(mut self, shape: impl Into<$crate::Shape>) -> Self {
            self.input.batch_shape = Some(shape.into());
            self
        }

        #[doc = concat!(
                    "Keras's `name`. Without it, the layer is named when it is added to a model: `",
                    $base, "`, `", $base, "_1`, ..."
                )]
        pub fn name(mut self, name: impl Into<String>) -> Self {
            self.name.set(name.into());
            self
        }

        /// Keras's `trainable`. Default true.
        pub fn trainable(mut self, yes: bool) -> Self {
            self.trainable = yes;
            self
        }
    };
}
pub(crate) use common_builders;

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
        fn build(&mut self, input: &$crate::Shape) -> $crate::Result<$crate::Shape> {
            let out = self.compute_output_shape(input)?;
            self.built = true;
            Ok(out)
        }

        fn is_built(&self) -> bool {
            self.built
        }

        fn weights(&self) -> Vec<ndarray::ArrayViewD<'_, f32>> {
            Vec::new()
        }

        fn set_weights(&mut self, weights: &[ndarray::ArrayD<f32>]) -> $crate::Result<()> {
            $crate::layer::check_weights(self.name.get(), &[], weights)
        }
    };
}
pub(crate) use weightless;
