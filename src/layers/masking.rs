//! Keras's `Masking`: marks padded timesteps for the layers downstream.

use ndarray::{Array2, ArrayD, ArrayViewD, Ix3};

use crate::error::{Error, Result};
use crate::layer::{
    check_input, common_builders, layer_plumbing, output_grad, single_input, single_shape,
    weightless, CallContext, Gradients, InputDecl, Layer, LayerName, Mask, MaskPolicy,
    SavedForBackward,
};
use crate::shape::Shape;

/// Keras's `Masking`: a timestep whose features all equal `mask_value` is padding. The layer
/// zeroes such steps and makes the mask that recurrent layers downstream read, so they skip
/// them.
///
/// ```text
/// mask[b, t] = any_f(x[b, t, f] != mask_value)
/// y[b, t, :] = x[b, t, :] · mask[b, t]
/// ```
///
/// - Input: `(batch, timesteps, features)`. Output: the same shape.
/// - No weights. The mask it makes replaces any incoming mask.
///
/// ```
/// use seqnn::{Masking, Sequential, SimpleRNN};
/// // model.add(Masking(mask_value=0.0, input_shape=(6, 3)))
/// // model.add(SimpleRNN(4, return_sequences=True))
/// let mut model = Sequential::new();
/// model.add(Masking::new(0.0).input_shape((6, 3)))?;
/// model.add(SimpleRNN::new(4).with_return_sequences(true))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 6, 4)");
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding, building or calling it fails with [`Error::IncompatibleRank`] for an input that is
/// not 3-D (Keras takes other ranks, but a seqnn [`Mask`] is `(batch, timesteps)`), and a call
/// with [`Error::EmptyInput`] for an input with no elements.
#[derive(Debug, Clone)]
pub struct Masking {
    name: LayerName,
    input: InputDecl,
    mask_value: f32,
    trainable: bool,
    built: bool,
}

impl Default for Masking {
    /// Keras's `Masking()`: `mask_value` 0.
    fn default() -> Self {
        Self::new(0.0)
    }
}

impl Masking {
    /// A Masking layer for padding of `mask_value`, as Keras's `Masking(mask_value)`.
    pub fn new(mask_value: f32) -> Self {
        Masking {
            name: LayerName::new("masking"),
            input: InputDecl::default(),
            mask_value,
            trainable: true,
            built: false,
        }
    }

    common_builders!("masking");

    /// The value that marks padding (Keras's `mask_value`).
    pub fn mask_value(&self) -> f32 {
        self.mask_value
    }

    /// The zeroed output and the mask of a 3-D input.
    fn mask_and_zero(&self, input: ArrayViewD<'_, f32>) -> Result<(ArrayD<f32>, Mask)> {
        let name = self.name.get();
        check_input(name, &Shape::new(vec![None; 3]), input.shape())?;
        let x = input
            .into_dimensionality::<Ix3>()
            .expect("checked to be 3-D");
        let (batch, timesteps, features) = x.dim();
        let mut y = x.as_standard_layout().into_owned();
        let mut mask = Array2::from_elem((batch, timesteps), false);
        let steps = y
            .as_slice_mut()
            .expect("an owned standard-layout array is contiguous")
            .chunks_exact_mut(features);
        for (step, keep) in steps.zip(mask.iter_mut()) {
            *keep = step.iter().any(|&v| v != self.mask_value);
            // As Keras, the input times the mask: a NaN or infinite padding value stays NaN.
            let m = if *keep { 1.0 } else { 0.0 };
            step.iter_mut().for_each(|v| *v *= m);
        }
        Ok((y.into_dyn(), mask))
    }
}

impl Layer for Masking {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        "Masking"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let input = single_shape(self.name.get(), inputs)?;
        if input.rank() != 3 {
            return Err(Error::IncompatibleRank {
                layer: self.name.get().to_string(),
                expected: 3,
                found: input.rank(),
                shape: input.clone(),
            });
        }
        Ok(vec![input.clone()])
    }

    weightless!();

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let input = single_input(self.name.get(), inputs)?;
        let (y, mask) = self.mask_and_zero(input.view())?;
        if ctx.records() {
            ctx.save_for_backward(Box::new((mask.clone(), input.shape().to_vec())));
        }
        ctx.set_output_masks(vec![Some(mask)]);
        Ok(vec![y])
    }

    /// The output is the input times its timestep's mask: so is the gradient.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let (mask, shape): &(Mask, Vec<usize>) = saved.get(name)?;
        let features = shape[2];
        let mut g = output_grad(name, output_grads, 0, shape)?;
        let values = g.as_slice_mut().expect("standard layout");
        for (step, &keep) in values.chunks_exact_mut(features.max(1)).zip(mask.iter()) {
            if !keep {
                step.fill(0.0);
            }
        }
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
    use crate::layer::{apply, apply_masked};
    use ndarray::{array, Axis};

    /// The number of real timesteps per sample of a mask.
    fn lengths(mask: &Mask) -> Vec<usize> {
        mask.axis_iter(Axis(0))
            .map(|row| row.iter().filter(|&&m| m).count())
            .collect()
    }

    #[test]
    fn masks_and_zeroes_steps_equal_to_the_mask_value() -> Result<()> {
        let mut masking = Masking::new(0.5);
        masking.build(&[Shape::new(vec![None, Some(3), Some(2)])])?;
        let x = array![
            [[0.5_f32, 0.5], [0.5, 1.0], [2.0, 3.0]],
            [[1.0, 1.0], [0.5, 0.5], [0.5, 0.5]]
        ];
        let incoming = array![[true, true, true], [true, true, true]];
        let (mut y, mut mask) =
            apply_masked(&masking, &[x.view().into_dyn()], Some(incoming.view()))?;
        let (y, mask) = (y.swap_remove(0), mask.swap_remove(0));
        // Step [0.5, 0.5] is all padding; [0.5, 1.0] has one real feature, so it stays.
        let mask = mask.expect("Masking makes a mask");
        assert_eq!(mask, array![[false, true, true], [true, false, false]]);
        assert_eq!(lengths(&mask), vec![2, 1]);
        assert_eq!(
            y,
            array![
                [[0.0_f32, 0.0], [0.5, 1.0], [2.0, 3.0]],
                [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
            ]
            .into_dyn()
        );
        // forward alone gives the same zeroed values.
        assert_eq!(apply(&masking, x.view().into_dyn())?, y);
        Ok(())
    }

    #[test]
    fn default_mask_value_is_zero() -> Result<()> {
        let masking = Masking::default();
        assert_eq!(masking.mask_value(), 0.0);
        let x = array![[[0.0_f32, 0.0], [0.0, -1.0]]];
        let (_, mut mask) = apply_masked(&masking, &[x.view().into_dyn()], None)?;
        let mask = mask.swap_remove(0);
        assert_eq!(mask, Some(array![[false, true]]));
        Ok(())
    }

    #[test]
    fn takes_three_d_inputs_only() {
        let masking = Masking::default();
        let err = masking
            .compute_output_shape(&[Shape::new(vec![None, Some(5)])])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Input 0 of layer \"masking\" is incompatible with the layer: expected ndim=3, found \
             ndim=2. Full shape received: (None, 5)"
        );
        let x = ArrayD::<f32>::zeros(ndarray::IxDyn(&[2, 5]));
        assert!(matches!(
            apply(&masking, x.view()),
            Err(Error::IncompatibleRank { .. })
        ));
        let empty = ArrayD::<f32>::zeros(ndarray::IxDyn(&[2, 3, 0]));
        assert!(matches!(
            apply(&masking, empty.view()),
            Err(Error::EmptyInput { .. })
        ));
    }
}
