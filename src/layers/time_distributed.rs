//! Keras's `TimeDistributed` wrapper: one layer applied to every timestep.

use std::fmt;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::error::{Error, Result};
use crate::layer::{
    backward_layer, call_layer, check_weights, common_builders, no_weights, output_grad,
    single_input, single_shape, CallContext, Gradients, InputDecl, Layer, LayerName, MaskPolicy,
    SavedForBackward, WeightSpec,
};
use crate::shape::Shape;
use crate::train::loss::Dialect;

/// Keras's `TimeDistributed`: applies a layer to every timestep of a sequence, with the same
/// weights.
///
/// ```text
/// x (batch, T, ...)  ->  reshape (batch·T, ...)  ->  layer  ->  reshape (batch, T, ...)
/// ```
///
/// - Input: `(batch, timesteps, ...)`, rank 3 or more; the wrapped layer sees `(None, ...)`.
/// - Output: `(batch, timesteps)` followed by the wrapped layer's output without its batch.
/// - Weights and parameters: the wrapped layer's, in its order.
/// - Mask: passed on unchanged; the wrapped layer runs on every step, masked or not.
///
/// The wrapped layer keeps its own name (`dense`); the wrapper is `time_distributed`.
///
/// ```
/// use seqnn::{ActivationFn, Dense, Sequential, SimpleRNN, TimeDistributed};
/// // model.add(SimpleRNN(4, return_sequences=True, input_shape=(5, 3)))
/// // model.add(TimeDistributed(Dense(2, activation="softmax")))
/// let mut model = Sequential::new();
/// model.add(SimpleRNN::new(4).with_return_sequences(true).input_shape((5, 3)))?;
/// model.add(TimeDistributed::new(Dense::new(2).with_activation(ActivationFn::Softmax)))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 5, 2)");
/// assert_eq!(model.layers()[1].count_params(), 10); // the Dense's 2·(4 + 1)
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding or building it fails with [`Error::InvalidArgument`] for an input of rank below 3
/// (Keras's message) or a wrapped layer with several outputs, and with the wrapped layer's own
/// error when it cannot take one timestep.
pub struct TimeDistributed {
    name: LayerName,
    layer: Box<dyn Layer>,
    input: InputDecl,
    trainable: bool,
    built: bool,
}

/// What a training call of a TimeDistributed keeps: the wrapped layer's record, and the
/// shapes to merge and split the time axis again.
struct TimeDistributedSaved {
    inner: SavedForBackward,
    input_shape: Vec<usize>,
    output_shape: Vec<usize>,
}

impl TimeDistributed {
    /// Wraps `layer`, as Keras's `TimeDistributed(layer)`. The layer is named now if it has no
    /// name yet, so it keeps its own name (`dense`, ...) inside the wrapper.
    pub fn new(layer: impl Layer + 'static) -> Self {
        Self::from_boxed(Box::new(layer))
    }

    /// [`new`](TimeDistributed::new) for a layer that is already boxed.
    pub fn from_boxed(mut layer: Box<dyn Layer>) -> Self {
        layer.ensure_named();
        TimeDistributed {
            name: LayerName::new("time_distributed"),
            layer,
            input: InputDecl::default(),
            trainable: true,
            built: false,
        }
    }

    common_builders!("time_distributed");

    /// The wrapped layer.
    pub fn layer(&self) -> &dyn Layer {
        self.layer.as_ref()
    }

    /// The shape of one timestep, `(None, ...)`, after checking the rank as Keras does.
    fn step_shape(&self, input: &Shape) -> Result<Shape> {
        if input.rank() < 3 {
            return Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: format!(
                    "`TimeDistributed` Layer should be passed an `input_shape ` with at least 3 \
                     dimensions, received: {input}"
                ),
            });
        }
        if self.layer.output_count() > 1 {
            return Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: format!(
                    "the wrapped layer \"{}\" has {} outputs; TimeDistributed takes a layer with \
                     one output",
                    self.layer.name(),
                    self.layer.output_count()
                ),
            });
        }
        // One step of every sample: (batch·timesteps, ...), unknown when either is.
        let rows = input
            .dim(0)
            .zip(input.dim(1))
            .and_then(|(b, t)| b.checked_mul(t));
        let mut dims = vec![rows];
        dims.extend_from_slice(&input.dims()[2..]);
        Ok(Shape::new(dims))
    }

    fn with_timesteps(input: &Shape, step_out: &Shape) -> Shape {
        let mut dims = vec![input.dim(0), input.dim(1)];
        dims.extend_from_slice(step_out.dims().get(1..).unwrap_or(&[]));
        Shape::new(dims)
    }

    fn single_output(&self, mut out: Vec<Shape>) -> Result<Shape> {
        match out.len() {
            1 => Ok(out.swap_remove(0)),
            n => Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: format!(
                    "the wrapped layer \"{}\" has {n} outputs; TimeDistributed takes a layer with \
                     one output",
                    self.layer.name()
                ),
            }),
        }
    }
}

impl Clone for TimeDistributed {
    fn clone(&self) -> Self {
        TimeDistributed {
            name: self.name.clone(),
            layer: self.layer.clone_box(),
            input: self.input.clone(),
            trainable: self.trainable,
            built: self.built,
        }
    }
}

impl fmt::Debug for TimeDistributed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeDistributed")
            .field("name", &self.name.get())
            .field("layer", &self.layer)
            .field("trainable", &self.trainable)
            .field("built", &self.built)
            .finish()
    }
}

impl Layer for TimeDistributed {
    fn name(&self) -> &str {
        self.name.get()
    }

    fn ensure_named(&mut self) {
        self.name.ensure();
    }

    fn set_name(&mut self, name: String) {
        self.name.set(name);
    }

    fn class_name(&self) -> &'static str {
        "TimeDistributed"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        // As Keras, a declaration on the wrapped layer is not the wrapper's.
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let input = single_shape(self.name.get(), inputs)?;
        let step = self.step_shape(input)?;
        let step_out = self.layer.compute_output_shape(&[step]);
        let step_out = self.single_output(step_out.map_err(|e| e.in_wrapper(self.name.get()))?)?;
        Ok(vec![Self::with_timesteps(input, &step_out)])
    }

    fn build(&mut self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let out = self.compute_output_shape(inputs)?;
        // As Keras, the wrapped layer is built for one step of any batch.
        let step = self.step_shape(&inputs[0])?.with_batch(None);
        self.layer.build(&[step])?;
        self.built = true;
        Ok(out)
    }

    fn is_built(&self) -> bool {
        self.built && self.layer.is_built()
    }

    fn weight_specs(&self) -> Vec<WeightSpec> {
        self.layer.weight_specs()
    }

    fn weight_rules(&self) -> Vec<crate::train::WeightRule> {
        self.layer.weight_rules()
    }

    fn activity_regularizers(&self) -> Vec<(String, crate::train::Regularizer)> {
        self.layer.activity_regularizers()
    }

    fn initialize(&mut self) {
        self.layer.initialize();
    }

    fn weights(&self) -> Vec<ArrayViewD<'_, f32>> {
        self.layer.weights()
    }

    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        if !self.is_built() {
            return Err(no_weights(self.name.get()));
        }
        check_weights(self.name.get(), &self.layer.weight_specs(), weights)?;
        self.layer.set_weights(weights)
    }

    fn trainable(&self) -> bool {
        self.trainable && self.layer.trainable()
    }

    fn set_trainable(&mut self, trainable: bool) {
        self.trainable = trainable;
    }

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let input = single_input(self.name.get(), inputs)?;
        let shape = input.shape().to_vec();
        self.step_shape(&Shape::known(&shape))?;
        if !self.is_built() {
            return Err(no_weights(self.name.get()));
        }
        let (batch, timesteps) = (shape[0], shape[1]);
        let mut step_dims = vec![batch * timesteps];
        step_dims.extend_from_slice(&shape[2..]);
        let x = input.as_standard_layout();
        let steps = x
            .view()
            .into_shape_with_order(IxDyn(&step_dims))
            .expect("a standard-layout array merges its first two axes");
        let mut inner = ctx.inner(0..0);
        let mut y = if inner.activity_dialect() == Some(Dialect::Keras3) {
            // Keras 3 calls the layer's `call` once per timestep: the layer's own activity
            // penalty is not added, and those of the layers inside it are divided by the
            // batch, not by the batch·timesteps rows they see here.
            inner.scale_activity(timesteps as f32);
            self.layer.call(&[steps], &mut inner)?
        } else {
            // tf_keras calls the layer (its `__call__`) on the batch·timesteps rows. A model
            // runs once more in its `compute_mask` (tf_keras's `Functional.compute_mask`
            // "will duplicate any updates and losses"), which the `compute_mask` of each
            // `TimeDistributed` wrapping this one directly calls again.
            let depth = inner.enter_time_distributed(ctx);
            if matches!(self.layer.class_name(), "Sequential" | "Functional") {
                inner.scale_activity((1 + depth) as f32);
            }
            call_layer(self.layer.as_ref(), &[steps], &mut inner)?
        };
        ctx.add_penalties_of(&inner);
        let y = y.swap_remove(0);
        let rows = y.shape().first().copied().unwrap_or(0);
        if rows != batch * timesteps {
            return Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: format!(
                    "the wrapped layer \"{}\" returned {rows} rows for {} timesteps",
                    self.layer.name(),
                    batch * timesteps
                ),
            });
        }
        let mut out_dims = vec![batch, timesteps];
        out_dims.extend_from_slice(&y.shape()[1..]);
        let y = if y.is_standard_layout() {
            y
        } else {
            y.as_standard_layout().into_owned()
        };
        if ctx.records() {
            // A wrapped layer without a backward pass keeps nothing, and its backward says so.
            let kept = inner
                .take_saved()
                .unwrap_or_else(|| SavedForBackward::new(Box::new(())));
            ctx.save_for_backward(Box::new(TimeDistributedSaved {
                inner: kept,
                input_shape: shape.clone(),
                output_shape: out_dims.clone(),
            }));
        }
        Ok(vec![y.into_shape_with_order(IxDyn(&out_dims)).expect(
            "batch·timesteps rows split into (batch, timesteps)",
        )])
    }

    /// The wrapped layer's backward pass over all timesteps at once, as its call ran.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let saved: &TimeDistributedSaved = saved.get(name)?;
        let merge = |shape: &[usize]| {
            let mut dims = vec![shape[0] * shape[1]];
            dims.extend_from_slice(&shape[2..]);
            dims
        };
        let g = output_grad(name, output_grads, 0, &saved.output_shape)?
            .into_shape_with_order(IxDyn(&merge(&saved.output_shape)))
            .expect("a standard-layout array merges its first two axes");
        let inner = backward_layer(self.layer.as_ref(), &saved.inner, &[Some(g.view())])?;
        let input = inner.inputs.into_iter().next().flatten().map(|d| {
            d.as_standard_layout()
                .into_owned()
                .into_shape_with_order(IxDyn(&saved.input_shape))
                .expect("the rows split back into (batch, timesteps)")
        });
        Ok(Gradients {
            inputs: vec![input],
            weights: inner.weights,
        })
    }

    /// The wrapped layer's, from its call's record.
    fn updates(&self, saved: &SavedForBackward) -> Result<Vec<Option<ArrayD<f32>>>> {
        let saved: &TimeDistributedSaved = saved.get(self.name.get())?;
        self.layer.updates(&saved.inner)
    }

    fn working_elements(&self, inputs: &[Shape]) -> usize {
        match inputs.first().and_then(|s| self.step_shape(s).ok()) {
            Some(step) => {
                let t = inputs[0].dim(1).unwrap_or(1);
                t.saturating_mul(self.layer.working_elements(&[step]))
            }
            None => 0,
        }
    }

    fn clone_box(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }

    fn mask_policy(&self) -> MaskPolicy {
        MaskPolicy::Propagate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::apply;
    use crate::layers::dense::Dense;
    use crate::layers::flatten::Flatten;
    use crate::layers::simple_rnn::SimpleRNN;
    use crate::session::clear_session;
    use approx::assert_abs_diff_eq;
    use ndarray::{array, Array3};

    #[test]
    fn equals_dense_on_a_sequence() -> Result<()> {
        let kernel = array![[1.0_f32, 0.0], [2.0, -1.0], [0.5, 3.0]].into_dyn();
        let bias = array![0.1_f32, -0.2].into_dyn();
        let input = Shape::new(vec![None, Some(2), Some(3)]);
        let mut td = TimeDistributed::new(Dense::new(2));
        assert_eq!(
            td.build(std::slice::from_ref(&input))?[0].to_string(),
            "(None, 2, 2)"
        );
        td.set_weights(&[kernel.clone(), bias.clone()])?;
        let mut dense = Dense::new(2);
        dense.build(&[input])?;
        dense.set_weights(&[kernel, bias])?;

        let x = Array3::from_shape_vec(
            (2, 2, 3),
            vec![1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 1.0, -1.0, 2.0],
        )
        .expect("12 values")
        .into_dyn();
        let y = apply(&td, x.view())?;
        // [1, 1, 1]·K + b = [1 + 2 + 0.5, 0 - 1 + 3] + [0.1, -0.2] = [3.6, 1.8]
        // [0, 1, 0]·K + b = [2, -1] + [0.1, -0.2]                 = [2.1, -1.2]
        assert_eq!(y.shape(), &[2, 2, 2]);
        assert_abs_diff_eq!(y[[0, 0, 0]], 3.6, epsilon = 1e-6);
        assert_abs_diff_eq!(y[[0, 0, 1]], 1.8, epsilon = 1e-6);
        assert_abs_diff_eq!(y[[0, 1, 0]], 2.1, epsilon = 1e-6);
        assert_abs_diff_eq!(y[[0, 1, 1]], -1.2, epsilon = 1e-6);
        assert_abs_diff_eq!(y, apply(&dense, x.view())?, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn weights_params_and_names_are_the_wrapped_layers() -> Result<()> {
        clear_session();
        let mut td = TimeDistributed::new(Dense::new(3));
        td.ensure_named();
        assert_eq!(Layer::name(&td), "time_distributed");
        assert_eq!(td.layer().name(), "dense");
        assert!(!td.is_built());
        td.build(&[Shape::new(vec![None, Some(4), Some(5)])])?;
        assert_eq!(td.count_params(), 18); // 3·(5 + 1)
        td.initialize();
        let shapes: Vec<Vec<usize>> = td.weights().iter().map(|w| w.shape().to_vec()).collect();
        assert_eq!(shapes, vec![vec![5, 3], vec![3]]);
        assert!(matches!(
            td.set_weights(&[]),
            Err(Error::WeightCount {
                expected: 2,
                found: 0,
                ..
            })
        ));
        let frozen = TimeDistributed::new(Dense::new(3).with_trainable(false));
        assert!(!Layer::trainable(&frozen));
        Ok(())
    }

    #[test]
    fn refuses_inputs_below_rank_three_with_keras_message() {
        let td = TimeDistributed::new(Dense::new(3));
        let err = td
            .compute_output_shape(&[Shape::new(vec![None, Some(4)])])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"time_distributed\": `TimeDistributed` Layer should be passed an \
             `input_shape ` with at least 3 dimensions, received: (None, 4)"
        );
    }

    #[test]
    fn wraps_rank_four_inputs_and_other_layers() -> Result<()> {
        // TimeDistributed(Flatten) on (None, 4, 3, 2): each step flattens to 6.
        let mut td = TimeDistributed::new(Flatten::new());
        assert_eq!(
            td.build(&[Shape::new(vec![None, Some(4), Some(3), Some(2)])])?[0].to_string(),
            "(None, 4, 6)"
        );
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 2, 3, 2]), (0..12).map(|v| v as f32).collect())
            .expect("12 values");
        let y = apply(&td, x.view())?;
        assert_eq!(y.shape(), &[1, 2, 6]);
        assert_eq!(y[[0, 1, 0]], 6.0);
        // TimeDistributed(SimpleRNN) reads a sequence per step: (None, 4, 5, 3) -> (None, 4, 2).
        let mut td = TimeDistributed::new(SimpleRNN::new(2));
        assert_eq!(
            td.build(&[Shape::new(vec![None, Some(4), Some(5), Some(3)])])?[0].to_string(),
            "(None, 4, 2)"
        );
        Ok(())
    }

    /// `TimeDistributed(layer)` on `(None, 3, 1)`, or `TimeDistributed(TimeDistributed(layer))`
    /// on `(None, 3, 1, 1)` when `twice`, `layer` being `Dense(1, L2(0.5))` with kernel 1 and
    /// bias 0 (y = x), or a Sequential of it: the activity penalty of x = 1..6 in `dialect`
    /// and the input gradient of the penalty alone.
    fn penalty_of(wrap_model: bool, twice: bool, dialect: Dialect) -> Result<(f32, ArrayD<f32>)> {
        use crate::sequential::Sequential;
        use crate::train::Regularizer;
        let dense = Dense::new(1)
            .input_shape((1,))
            .with_activity_regularizer(Regularizer::l2(0.5));
        let mut td = if wrap_model {
            let mut inner = Sequential::new();
            inner.add(dense)?;
            TimeDistributed::new(inner)
        } else {
            TimeDistributed::new(dense)
        };
        let mut dims = vec![2, 3, 1];
        if twice {
            td = TimeDistributed::new(td);
            dims.push(1);
        }
        td.build(&[Shape::known(&dims).with_batch(None)])?;
        td.set_weights(&[array![[1.0_f32]].into_dyn(), array![0.0_f32].into_dyn()])?;
        let x =
            ArrayD::from_shape_vec(dims, (1..=6).map(|v| v as f32).collect()).expect("6 values");
        let mut ctx = CallContext::training().with_activity_penalties(dialect);
        let y = call_layer(&td, &[x.view()], &mut ctx)?;
        assert_eq!(y[0], x);
        let saved = ctx.take_saved().expect("a record");
        let g = backward_layer(&td, &saved, &[None])?;
        Ok((
            ctx.activity_penalty(),
            g.inputs[0].clone().expect("a gradient"),
        ))
    }

    #[test]
    fn activity_penalties_of_the_wrapped_layer_as_each_keras() -> Result<()> {
        // Σx² = 91 over the batch·timesteps = 6 rows of a batch of 2.
        let x = ArrayD::from_shape_vec(vec![2, 3, 1], (1..=6).map(|v| v as f32).collect())
            .expect("6 values");
        let cases = [
            // tf_keras: the Dense over the 6 rows, 0.5·91/6; gradient 0.5·2x/6 = x/6.
            (false, false, Dialect::TfKeras, 91.0 / 12.0, 1.0 / 6.0),
            // Keras 3 calls the Dense's `call`: no penalty.
            (false, false, Dialect::Keras3, 0.0, 0.0),
            (false, true, Dialect::Keras3, 0.0, 0.0),
            // tf_keras runs a wrapped model twice (its compute_mask): 2·0.5·91/6, x/3.
            (true, false, Dialect::TfKeras, 91.0 / 6.0, 1.0 / 3.0),
            // ... and once more for each TimeDistributed around: 3·0.5·91/6, x/2.
            (true, true, Dialect::TfKeras, 91.0 / 4.0, 1.0 / 2.0),
            // Keras 3: the model's Dense on each timestep over the batch, 0.5·91/2, x/2.
            (true, false, Dialect::Keras3, 91.0 / 4.0, 1.0 / 2.0),
            (true, true, Dialect::Keras3, 91.0 / 4.0, 1.0 / 2.0),
        ];
        for (wrap_model, twice, dialect, penalty, slope) in cases {
            let what = format!("model {wrap_model}, twice {twice}, {dialect:?}");
            let (p, g) = penalty_of(wrap_model, twice, dialect)?;
            assert_abs_diff_eq!(p, penalty, epsilon = 1e-5);
            let want = x.mapv(|v| v * slope);
            let got = g
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order(x.raw_dim());
            let got = got.expect("the same 6 values");
            assert!(
                got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5),
                "{what}: {got} against {want}"
            );
        }
        Ok(())
    }
}
