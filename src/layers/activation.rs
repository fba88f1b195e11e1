//! Keras's `Activation` layer: an activation function as a layer of its own.

use ndarray::{ArrayD, ArrayViewD};

use crate::activation::ActivationFn;
use crate::error::{Error, Result};
use crate::layer::{
    common_builders, layer_plumbing, output_grad, single_input, single_shape, weightless,
    CallContext, Gradients, InputDecl, Layer, LayerName, MaskPolicy, SavedForBackward,
};
use crate::shape::Shape;

/// Keras's `Activation`: applies an [`ActivationFn`] to its input, element by element, or over
/// the last axis for softmax.
///
/// ```text
/// y = activation(x)
/// ```
///
/// - Input: any shape (at least 2-D for softmax, as Keras). Output: the same.
/// - No weights. A mask goes on unchanged.
///
/// ```
/// use seqnn::{Activation, ActivationFn, Dense, Sequential};
/// // model.add(Dense(3, input_shape=(20,)))
/// // model.add(Activation("tanh"))
/// let mut model = Sequential::new();
/// model.add(Dense::new(3).input_shape((20,)))?;
/// model.add(Activation::new(ActivationFn::Tanh))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 3)");
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding, building or calling it fails with [`Error::InvalidArgument`] for softmax over a 1-D
/// input (Keras refuses to normalize over the batch).
#[derive(Debug, Clone)]
pub struct Activation {
    name: LayerName,
    input: InputDecl,
    activation: ActivationFn,
    trainable: bool,
    built: bool,
}

/// What a training call of an Activation layer keeps: its input, its output, and the
/// activation applied (linear when the caller took the logits).
#[derive(Debug)]
struct ActivationSaved {
    pre: ArrayD<f32>,
    post: ArrayD<f32>,
    activation: ActivationFn,
}

impl Activation {
    /// A layer applying `activation`, as Keras's `Activation(activation)`.
    pub fn new(activation: ActivationFn) -> Self {
        Activation {
            name: LayerName::new("activation"),
            input: InputDecl::default(),
            activation,
            trainable: true,
            built: false,
        }
    }

    common_builders!("activation");

    /// The function applied.
    pub fn activation(&self) -> ActivationFn {
        self.activation
    }

    /// Keras's refusal of softmax over a 1-D tensor.
    fn check(&self, input: &Shape) -> Result<()> {
        if self.activation == ActivationFn::Softmax && input.rank() < 2 {
            return Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: format!(
                    "Cannot apply softmax to a tensor that is 1D. Received input shape: {input}"
                ),
            });
        }
        Ok(())
    }
}

impl Layer for Activation {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        "Activation"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let input = single_shape(self.name.get(), inputs)?;
        self.check(input)?;
        Ok(vec![input.clone()])
    }

    weightless!();

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let input = single_input(self.name.get(), inputs)?;
        self.check(&Shape::known(input.shape()))?;
        let row = input.shape().last().copied().unwrap_or(1);
        let mut y = input.as_standard_layout().into_owned();
        let activation = match ctx.leave_out(self.activation) {
            Some(_) => ActivationFn::Linear,
            None => self.activation,
        };
        activation.apply_slice(
            y.as_slice_mut()
                .expect("an owned standard-layout array is contiguous"),
            row,
        );
        if ctx.records() {
            ctx.save_for_backward(Box::new(ActivationSaved {
                pre: input.as_standard_layout().into_owned(),
                post: y.clone(),
                activation,
            }));
        }
        Ok(vec![y])
    }

    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let ActivationSaved {
            pre,
            post,
            activation,
        } = saved.get(name)?;
        let mut g = output_grad(name, output_grads, 0, post.shape())?;
        let row = post.shape().last().copied().unwrap_or(1);
        activation.backward_slice(
            pre.as_slice().expect("standard layout"),
            post.as_slice().expect("standard layout"),
            g.as_slice_mut().expect("standard layout"),
            row,
        );
        Ok(Gradients {
            inputs: vec![Some(g)],
            weights: Vec::new(),
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
    use ndarray::array;

    #[test]
    fn applies_element_wise() -> Result<()> {
        let relu = Activation::new(ActivationFn::Relu);
        let y = apply(
            &relu,
            array![[-1.0_f32, 0.5], [2.0, -3.0]].into_dyn().view(),
        )?;
        assert_eq!(y, array![[0.0_f32, 0.5], [2.0, 0.0]].into_dyn());
        let tanh = Activation::new(ActivationFn::Tanh);
        // tanh(0.5) = 0.4621172
        let y = apply(&tanh, array![0.5_f32].into_dyn().view())?;
        assert_abs_diff_eq!(y[[0]], 0.462_117_2, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn softmax_runs_over_the_last_axis() -> Result<()> {
        let mut softmax = Activation::new(ActivationFn::Softmax);
        assert_eq!(
            softmax.build(&[Shape::new(vec![None, Some(2), Some(2)])])?[0].to_string(),
            "(None, 2, 2)"
        );
        let x = array![[[1.0_f32, 2.0], [3.0, 3.0]]];
        let y = apply(&softmax, x.view().into_dyn())?;
        // softmax([1, 2]) = [1, e] / (1 + e) = [0.2689414, 0.7310586]; softmax([3, 3]) = [½, ½]
        assert_abs_diff_eq!(y[[0, 0, 0]], 0.268_941_4, epsilon = 1e-6);
        assert_abs_diff_eq!(y[[0, 0, 1]], 0.731_058_6, epsilon = 1e-6);
        assert_abs_diff_eq!(y[[0, 1, 0]], 0.5, epsilon = 1e-6);
        // The same over a transposed view: the last axis is the logical one.
        let t = x.view().permuted_axes([0, 2, 1]).into_dyn();
        let y = apply(&softmax, t)?;
        // Columns [1, 3] and [2, 3]: softmax([1, 3])[0] = 1 / (1 + e²) = 0.1192029
        assert_abs_diff_eq!(y[[0, 0, 0]], 0.119_202_9, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn softmax_over_one_axis_is_refused_as_keras() {
        let err = Activation::new(ActivationFn::Softmax)
            .compute_output_shape(&[Shape::new(vec![None])])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"activation\": Cannot apply softmax to a tensor that is 1D. Received input \
             shape: (None,)"
        );
        assert!(Activation::new(ActivationFn::Relu)
            .compute_output_shape(&[Shape::new(vec![None])])
            .is_ok());
    }

    #[test]
    fn is_a_weightless_layer_named_activation() -> Result<()> {
        let mut a = Activation::new(ActivationFn::Sigmoid);
        assert_eq!(a.class_name(), "Activation");
        assert_eq!(Layer::name(&a), "activation");
        assert!(!a.is_built());
        a.build(&[Shape::new(vec![None, Some(3)])])?;
        assert!(a.is_built());
        assert!(a.weights().is_empty());
        assert!(a.set_weights(&[]).is_ok());
        assert!(a
            .set_weights(&[ArrayD::zeros(ndarray::IxDyn(&[3]))])
            .is_err());
        Ok(())
    }
}
