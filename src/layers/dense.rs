//! Keras's `Dense`: the fully connected layer, on the last axis of its input.

use ndarray::{Array1, Array2, ArrayD, ArrayViewD, IxDyn};

use crate::activation::ActivationFn;
use crate::error::{Error, Result};
use crate::init::Initializer;
use crate::init::{sample1, sample2};
use crate::layer::{
    check_gradient, check_not_empty, check_specs, check_weights, common_builders, layer_plumbing,
    no_weights, single_input, single_shape, CallContext, Gradients, InputDecl, Layer, LayerName,
    MaskPolicy, SavedForBackward, WeightSpec,
};
use crate::layer::{owned1, owned2};
use crate::layers::simple_rnn::check_units;
use crate::limits;
use crate::shape::Shape;

/// Keras's `Dense`: a fully connected layer.
///
/// ```text
/// y = activation(x · kernel + bias)        over the last axis of x
/// ```
///
/// - Input: `(batch, ..., input_dim)`, any rank from 2 up: after a recurrent layer's last
///   output `(batch, units)` or after a whole sequence `(batch, timesteps, units)`, where it acts
///   on every timestep with the same weights (as Keras's `Dense` on a 3-D tensor).
/// - Output: the input's shape with the last dimension replaced by `units`.
/// - Weights, in Keras's order and layout: `kernel (input_dim, units)`, `bias (units,)` (absent
///   without bias), so `units·(input_dim + 1)` parameters.
/// - Mask: passed on unchanged (Keras's `supports_masking`); masked steps are computed too.
///
/// Options, with Keras's defaults: `activation` linear, `use_bias` true, `kernel_initializer`
/// glorot_uniform, `bias_initializer` zeros, `trainable` true.
///
/// ```
/// use seqnn::{ActivationFn, Dense, Sequential, SimpleRNN};
/// // model.add(SimpleRNN(4, input_shape=(5, 3)))
/// // model.add(Dense(2, activation="softmax"))
/// let mut model = Sequential::new();
/// model.add(SimpleRNN::new(4).input_shape((5, 3)))?;
/// model.add(Dense::new(2).with_activation(ActivationFn::Softmax))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 2)");
/// assert_eq!(model.count_params()?, 32 + 10); // SimpleRNN 4·(3 + 4 + 1), Dense 2·(4 + 1)
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding or building it fails with [`Error::InvalidArgument`] for zero units or an input whose
/// last dimension is unknown, with [`Error::IncompatibleRank`] for an input of rank below 2, and
/// with [`Error::IncompatibleShape`] when a built layer is given another number of features.
#[derive(Debug, Clone)]
pub struct Dense {
    name: LayerName,
    /// Keras's regularizers and constraints of the weights, and the activity regularizer.
    rules: crate::train::WeightRules,
    input: InputDecl,
    units: usize,
    activation: ActivationFn,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    trainable: bool,
    /// The input features the layer was built for; `None` before it is built.
    input_dim: Option<usize>,
    /// The kernel and the bias (empty without bias), once the layer has weights.
    values: Option<Box<(Array2<f32>, Array1<f32>)>>,
}

/// What a training call of a Dense layer keeps: its input as rows, the pre-activation (unless
/// the activation is linear) and the output, `(rows, units)`, and the output's shape.
#[derive(Debug)]
struct DenseSaved {
    x: Array2<f32>,
    pre: Option<Array2<f32>>,
    post: Array2<f32>,
    out_shape: Vec<usize>,
    /// Whether the caller needs the input's gradient.
    input_gradient: bool,
    /// The activation applied: the layer's, or linear when the caller took the logits.
    activation: ActivationFn,
}

impl Dense {
    /// A Dense layer with `units` outputs and Keras's defaults, as Keras's `Dense(units)`.
    ///
    /// Zero units is refused when the layer is added to a model or built.
    pub fn new(units: usize) -> Self {
        Dense {
            name: LayerName::new("dense"),
            rules: crate::train::WeightRules::new(),
            input: InputDecl::default(),
            units,
            activation: ActivationFn::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            trainable: true,
            input_dim: None,
            values: None,
        }
    }

    /// Keras's `activation`. Default `linear` (Keras's `None`).
    #[must_use]
    pub fn with_activation(mut self, activation: ActivationFn) -> Self {
        self.activation = activation;
        self
    }

    /// Keras's `use_bias`. Default true.
    #[must_use]
    pub fn with_use_bias(mut self, yes: bool) -> Self {
        self.use_bias = yes;
        self
    }

    /// Keras's `kernel_initializer`. Default `glorot_uniform`.
    #[must_use]
    pub fn with_kernel_initializer(mut self, init: Initializer) -> Self {
        self.kernel_initializer = init;
        self
    }

    /// Keras's `bias_initializer`. Default `zeros`.
    #[must_use]
    pub fn with_bias_initializer(mut self, init: Initializer) -> Self {
        self.bias_initializer = init;
        self
    }

    common_builders!("dense");

    crate::layer::rule_builders! {
        "kernel", "the kernel" => with_kernel_regularizer, with_kernel_constraint;
        "bias", "the bias" => with_bias_regularizer, with_bias_constraint;
    }

    /// Keras's legacy `input_dim`: declares the input `(None, input_dim)`, as
    /// `Dense(32, input_dim=16)`. `input_shape` and `batch_input_shape` take precedence.
    #[must_use]
    pub fn input_dim(mut self, features: usize) -> Self {
        self.input.input_dim = Some(features);
        self
    }

    /// The number of outputs (Keras's `units`).
    pub fn units(&self) -> usize {
        self.units
    }

    /// The activation applied to the outputs.
    pub fn activation(&self) -> ActivationFn {
        self.activation
    }

    /// Whether the layer adds a bias.
    pub fn use_bias(&self) -> bool {
        self.use_bias
    }

    /// The kernel's initializer.
    pub fn kernel_initializer(&self) -> Initializer {
        self.kernel_initializer
    }

    /// The bias's initializer.
    pub fn bias_initializer(&self) -> Initializer {
        self.bias_initializer
    }

    /// The input features the layer was built for, `None` before it is built.
    pub fn built_input_dim(&self) -> Option<usize> {
        self.input_dim
    }

    /// The shape a built layer takes at rank `rank`: `(None, ..., input_dim)`.
    fn accepted_shape(&self, rank: usize, input_dim: usize) -> Shape {
        let mut dims = vec![None; rank.saturating_sub(1)];
        dims.push(Some(input_dim));
        Shape::new(dims)
    }

    fn check_rank(&self, input: &Shape) -> Result<()> {
        // Keras's InputSpec(min_ndim=2); its message says "min_ndim=2".
        if input.rank() < 2 {
            return Err(Error::IncompatibleRank {
                layer: self.name.get().to_string(),
                expected: 2,
                found: input.rank(),
                shape: input.clone(),
            });
        }
        Ok(())
    }
}

impl Dense {
    fn check_input_shape(&self, input: &Shape) -> Result<()> {
        let name = self.name.get();
        check_units(name, self.units)?;
        self.check_rank(input)?;
        match (input.last(), self.input_dim) {
            (None, _) => Err(Error::InvalidArgument {
                layer: name.to_string(),
                message: format!(
                    "The last dimension of the inputs to a Dense layer should be defined. Found \
                     None. Full input shape received: {input}"
                ),
            }),
            (Some(d), Some(built)) if d != built => Err(Error::IncompatibleShape {
                layer: name.to_string(),
                expected: self.accepted_shape(input.rank(), built),
                found: input.clone(),
            }),
            (Some(d), _) => {
                check_specs(
                    name,
                    &[("kernel", &[d, self.units]), ("bias", &[self.units])],
                )?;
                limits::check_tensor(name, "output", &input.with_last(Some(self.units)))
            }
        }
    }
}

impl Layer for Dense {
    layer_plumbing!();
    crate::layer::rule_methods!();

    fn class_name(&self) -> &'static str {
        "Dense"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        let name = self.name.get();
        check_units(name, self.units)?;
        if self.input.shape.is_some() || self.input.batch_shape.is_some() {
            return self.input.resolve(name);
        }
        Ok(self
            .input
            .input_dim
            .map(|d| Shape::new(vec![self.input.batch_size, Some(d)])))
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let input = single_shape(self.name.get(), inputs)?;
        self.check_input_shape(input)?;
        Ok(vec![input.with_last(Some(self.units))])
    }

    fn build(&mut self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let out = self.compute_output_shape(inputs)?;
        if self.input_dim.is_none() {
            self.input_dim = inputs[0].last();
        }
        Ok(out)
    }

    fn is_built(&self) -> bool {
        self.input_dim.is_some()
    }

    fn weight_specs(&self) -> Vec<WeightSpec> {
        let Some(d) = self.input_dim else {
            return Vec::new();
        };
        let mut w = vec![WeightSpec::new("kernel", vec![d, self.units])];
        if self.use_bias {
            w.push(WeightSpec::new("bias", vec![self.units]));
        }
        w
    }

    fn initialize(&mut self) {
        let Some(d) = self.input_dim else {
            return;
        };
        let kernel = sample2(self.kernel_initializer, d, self.units);
        let bias = if self.use_bias {
            sample1(self.bias_initializer, self.units)
        } else {
            Array1::zeros(0)
        };
        self.values = Some(Box::new((kernel, bias)));
    }

    fn weights(&self) -> Vec<ArrayViewD<'_, f32>> {
        let Some((kernel, bias)) = self.values.as_deref() else {
            return Vec::new();
        };
        let mut w = vec![kernel.view().into_dyn()];
        if self.use_bias {
            w.push(bias.view().into_dyn());
        }
        w
    }

    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        if !self.is_built() {
            return Err(no_weights(self.name.get()));
        }
        check_weights(self.name.get(), &self.weight_specs(), weights)?;
        let bias = if self.use_bias {
            owned1(&weights[1])
        } else {
            Array1::zeros(0)
        };
        self.values = Some(Box::new((owned2(&weights[0]), bias)));
        Ok(())
    }

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let name = self.name.get();
        let input = single_input(name, inputs)?;
        let (Some(input_dim), Some((kernel, bias))) = (self.input_dim, self.values.as_deref())
        else {
            return Err(no_weights(name));
        };
        let shape = input.shape().to_vec();
        let found = Shape::known(&shape);
        self.check_rank(&found)?;
        if shape[shape.len() - 1] != input_dim {
            return Err(Error::IncompatibleShape {
                layer: name.to_string(),
                expected: self.accepted_shape(shape.len(), input_dim),
                found,
            });
        }
        check_not_empty(name, &shape)?;
        let mut out_shape = shape;
        let last = out_shape.len() - 1;
        out_shape[last] = self.units;
        limits::check_dims(name, "output", &out_shape)?;
        // All leading axes become rows: one matrix product over (rows, input_dim).
        let rows = input.len() / input_dim;
        let x = input.as_standard_layout();
        let x = x
            .view()
            .into_shape_with_order((rows, input_dim))
            .expect("a standard-layout array reshapes to (rows, input_dim)");
        // On the packed tiles, the bias in each row of the product from the start.
        let mut y =
            crate::linalg::matmul(x.view(), kernel.view(), self.use_bias.then(|| bias.view()));
        // A penalty on the outputs is on the activation's, so the layer then keeps it.
        let activation = match self.activity_regularizer() {
            None if ctx.leave_out(self.activation).is_some() => ActivationFn::Linear,
            _ => self.activation,
        };
        let pre = (ctx.records() && activation != ActivationFn::Linear).then(|| y.clone());
        activation.apply_slice(
            y.as_slice_mut()
                .expect("a fresh product is in standard layout"),
            self.units,
        );
        if ctx.records() {
            ctx.save_for_backward(Box::new(DenseSaved {
                x: x.into_owned(),
                pre,
                post: y.clone(),
                out_shape: out_shape.clone(),
                input_gradient: ctx.needs_input_gradient(0),
                activation,
            }));
        }
        Ok(vec![y
            .into_shape_with_order(IxDyn(&out_shape))
            .expect("rows·units values fill the output shape")])
    }

    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let saved: &DenseSaved = saved.get(name)?;
        let Some((kernel, _)) = self.values.as_deref() else {
            return Err(no_weights(name));
        };
        let in_shape = {
            let mut s = saved.out_shape.clone();
            let last = s.len() - 1;
            s[last] = kernel.nrows();
            s
        };
        // g = dL/dy ⊙ f'(pre): the gradient of the pre-activation, (rows, units).
        let mut g = match output_grads.first().and_then(Option::as_ref) {
            Some(d) => {
                check_gradient(name, 0, d, &saved.out_shape)?;
                d.as_standard_layout()
                    .into_owned()
                    .into_shape_with_order(saved.post.raw_dim())
                    .expect("the gradient has the output's shape")
            }
            None => Array2::zeros(saved.post.raw_dim()),
        };
        let pre = saved.pre.as_ref().unwrap_or(&saved.post);
        saved.activation.backward_slice(
            pre.as_slice().expect("standard layout"),
            saved.post.as_slice().expect("standard layout"),
            g.as_slice_mut().expect("standard layout"),
            self.units,
        );
        let dx = saved.input_gradient.then(|| {
            let dx = crate::linalg::matmul(g.view(), kernel.t(), None);
            dx.into_shape_with_order(IxDyn(&in_shape))
                .expect("rows·input_dim values fill the input shape")
        });
        let mut weights = vec![crate::linalg::tn_product(saved.x.view(), g.view()).into_dyn()];
        if self.use_bias {
            weights.push(crate::linalg::column_sums(g.view()).into_dyn());
        }
        Ok(Gradients {
            inputs: vec![dx],
            weights,
        })
    }

    fn mask_policy(&self) -> MaskPolicy {
        MaskPolicy::Propagate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::apply;
    use approx::assert_abs_diff_eq;
    use ndarray::{array, Array3};

    fn built(dense: Dense, input: Shape, weights: &[ArrayD<f32>]) -> Result<Dense> {
        let mut dense = dense;
        dense.build(&[input])?;
        dense.set_weights(weights)?;
        Ok(dense)
    }

    #[test]
    fn two_by_two_product_by_hand() -> Result<()> {
        let dense = built(
            Dense::new(2),
            Shape::new(vec![None, Some(2)]),
            &[
                array![[1.0_f32, 2.0], [3.0, 4.0]].into_dyn(),
                array![0.5_f32, -1.0].into_dyn(),
            ],
        )?;
        let y = apply(&dense, array![[1.0_f32, 1.0], [2.0, 0.0]].into_dyn().view())?;
        // [1, 1]·K + b = [1 + 3, 2 + 4] + [0.5, -1] = [4.5, 5]
        // [2, 0]·K + b = [2, 4] + [0.5, -1]         = [2.5, 3]
        assert_eq!(y.shape(), &[2, 2]);
        assert_abs_diff_eq!(y[[0, 0]], 4.5);
        assert_abs_diff_eq!(y[[0, 1]], 5.0);
        assert_abs_diff_eq!(y[[1, 0]], 2.5);
        assert_abs_diff_eq!(y[[1, 1]], 3.0);
        Ok(())
    }

    #[test]
    fn softmax_and_relu_apply_after_the_bias() -> Result<()> {
        let weights = [
            array![[1.0_f32, -1.0]].into_dyn(),
            array![0.0_f32, 0.0].into_dyn(),
        ];
        let x = array![[1.0_f32]].into_dyn();
        let soft = built(
            Dense::new(2).with_activation(ActivationFn::Softmax),
            Shape::new(vec![None, Some(1)]),
            &weights,
        )?;
        // softmax([1, -1]) = [e / (e + 1/e), ...] = [0.8807971, 0.1192029]
        let y = apply(&soft, x.view())?;
        assert_abs_diff_eq!(y[[0, 0]], 0.880_797_1, epsilon = 1e-6);
        assert_abs_diff_eq!(y[[0, 1]], 0.119_202_9, epsilon = 1e-6);
        let relu = built(
            Dense::new(2).with_activation(ActivationFn::Relu),
            Shape::new(vec![None, Some(1)]),
            &weights,
        )?;
        // relu([1, -1]) = [1, 0]
        let y = apply(&relu, x.view())?;
        assert_eq!(y, array![[1.0_f32, 0.0]].into_dyn());
        Ok(())
    }

    #[test]
    fn acts_on_the_last_axis_of_a_sequence() -> Result<()> {
        let mut dense = Dense::new(1).with_use_bias(false);
        let out = dense.build(&[Shape::new(vec![None, Some(3), Some(2)])])?;
        assert_eq!(out[0].to_string(), "(None, 3, 1)");
        assert_eq!(dense.count_params(), 2); // no bias: 2·1
        dense.set_weights(&[array![[10.0_f32], [1.0]].into_dyn()])?;
        let x = Array3::from_shape_vec((2, 3, 2), (0..12).map(|v| v as f32).collect())
            .expect("12 values");
        let y = apply(&dense, x.view().into_dyn())?;
        // Each timestep [a, b] gives 10·a + b: [0, 1] -> 1, [2, 3] -> 23, ..., [10, 11] -> 111.
        assert_eq!(y.shape(), &[2, 3, 1]);
        assert_abs_diff_eq!(y[[0, 0, 0]], 1.0);
        assert_abs_diff_eq!(y[[0, 1, 0]], 23.0);
        assert_abs_diff_eq!(y[[1, 2, 0]], 111.0);
        Ok(())
    }

    #[test]
    fn weights_are_kernel_then_bias_in_keras_layout() -> Result<()> {
        let mut dense = Dense::new(3);
        assert!(dense.weights().is_empty());
        dense.build(&[Shape::new(vec![None, Some(4)])])?;
        // Built: the shapes and the count are known, and no weight exists yet.
        let specs: Vec<Vec<usize>> = dense.weight_specs().into_iter().map(|w| w.shape).collect();
        assert_eq!(specs, vec![vec![4, 3], vec![3]]);
        assert_eq!(dense.count_params(), 15); // 3·(4 + 1)
        assert!(dense.weights().is_empty() && !dense.has_weights());
        dense.initialize();
        let shapes: Vec<Vec<usize>> = dense.weights().iter().map(|w| w.shape().to_vec()).collect();
        assert_eq!(shapes, specs);
        // Zeros is the default bias initializer.
        assert!(dense.weights()[1].iter().all(|&b| b == 0.0));
        let err = dense
            .set_weights(&[ArrayD::zeros(IxDyn(&[4, 3]))])
            .unwrap_err();
        assert!(matches!(
            err,
            Error::WeightCount {
                expected: 2,
                found: 1,
                ..
            }
        ));
        Ok(())
    }

    #[test]
    fn refuses_zero_units_rank_one_and_unknown_features() {
        let err = Dense::new(0).declared_input_shape().unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"dense\": Received an invalid value for argument `units`, expected a \
             positive integer, got 0."
        );
        let err = Dense::new(2)
            .compute_output_shape(&[Shape::new(vec![None])])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Input 0 of layer \"dense\" is incompatible with the layer: expected ndim=2, found \
             ndim=1. Full shape received: (None,)"
        );
        let err = Dense::new(2)
            .compute_output_shape(&[Shape::new(vec![None, Some(4), None])])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"dense\": The last dimension of the inputs to a Dense layer should be \
             defined. Found None. Full input shape received: (None, 4, None)"
        );
    }

    #[test]
    fn a_built_layer_refuses_other_features_and_unbuilt_forward() -> Result<()> {
        let unbuilt = Dense::new(2);
        let x = ArrayD::<f32>::zeros(IxDyn(&[1, 4]));
        assert!(matches!(
            apply(&unbuilt, x.view()),
            Err(Error::NotBuilt { .. })
        ));
        let mut dense = Dense::new(2);
        dense.build(&[Shape::new(vec![None, Some(4)])])?;
        let err = dense.build(&[Shape::new(vec![None, Some(5)])]).unwrap_err();
        assert!(matches!(err, Error::IncompatibleShape { .. }));
        dense.initialize();
        let err = apply(&dense, ArrayD::<f32>::zeros(IxDyn(&[2, 3, 5])).view()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Input 0 of layer \"dense\" is incompatible with the layer: expected \
             shape=(None, None, 4), found shape=(2, 3, 5)"
        );
        // A rebuild with a fitting shape keeps the weights.
        let before = dense.weights()[0].to_owned();
        dense.build(&[Shape::new(vec![Some(8), Some(3), Some(4)])])?;
        assert_eq!(dense.weights()[0], before);
        Ok(())
    }

    #[test]
    fn input_dim_declares_a_two_d_input() -> Result<()> {
        assert_eq!(
            Dense::new(2).input_dim(16).declared_input_shape()?,
            Some(Shape::new(vec![None, Some(16)]))
        );
        assert_eq!(
            Dense::new(2)
                .input_dim(16)
                .input_shape((3, 5))
                .declared_input_shape()?,
            Some(Shape::new(vec![None, Some(3), Some(5)]))
        );
        assert_eq!(Dense::new(2).declared_input_shape()?, None);
        Ok(())
    }
}
