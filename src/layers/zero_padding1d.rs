//! Keras's `ZeroPadding1D`: zeros added before and after the steps of a sequence.

use ndarray::{s, Array3, ArrayD, ArrayViewD, Ix3};

use crate::error::{Error, Result};
use crate::layer::{
    check_not_empty, check_rank, common_builders, input_shape_and_grad, layer_plumbing,
    single_input, single_shape, weightless, CallContext, Gradients, InputDecl, InputShape, Layer,
    LayerName, SavedForBackward,
};
use crate::layers::conv::Dims;
use crate::limits;
use crate::shape::Shape;

/// Keras's `ZeroPadding1D`: `left` steps of zeros before each sequence and `right` after it.
///
/// ```text
/// y[b, t, c] = x[b, t − left, c]   for left ≤ t < left + steps, 0 elsewhere
/// ```
///
/// - Input: `(batch, steps, channels)`. Output: `(batch, left + steps + right, channels)`.
/// - No weights. A mask stops here, as in Keras (`supports_masking` is false in tf_keras 2.21
///   and Keras 3.15).
///
/// ```
/// use seqnn::{Conv1D, Sequential, ZeroPadding1D};
/// // model.add(ZeroPadding1D((2, 0), input_shape=(10, 3)))
/// // model.add(Conv1D(4, 3))
/// let mut model = Sequential::new();
/// model.add(ZeroPadding1D::new((2, 0)).input_shape((10, 3)))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 12, 3)");
/// model.add(Conv1D::new(4, 3))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 10, 4)");
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding, building or calling it fails with [`Error::IncompatibleRank`] for an input that is
/// not 3-D, and with [`Error::TooLarge`] when the output would exceed
/// [`crate::limits`].
#[derive(Debug, Clone)]
pub struct ZeroPadding1D {
    name: LayerName,
    input: InputDecl,
    padding: [usize; 2],
    trainable: bool,
    built: bool,
}

impl Default for ZeroPadding1D {
    /// Keras's `ZeroPadding1D()`: one step on each side.
    fn default() -> Self {
        Self::new(1)
    }
}

impl ZeroPadding1D {
    /// Pads with `padding` steps, one number for both sides or `(left, right)`, as Keras's
    /// `ZeroPadding1D(padding)`.
    pub fn new(padding: impl Into<Dims<2>>) -> Self {
        ZeroPadding1D {
            name: LayerName::new("zero_padding1d"),
            input: InputDecl::default(),
            padding: padding.into().0,
            trainable: true,
            built: false,
        }
    }

    common_builders!("zero_padding1d");

    /// The steps added `[before, after]` (Keras's `padding`).
    pub fn padding(&self) -> [usize; 2] {
        self.padding
    }

    /// The padded length of `steps` steps, or [`Error::TooLarge`] when it overflows.
    fn padded(&self, steps: usize) -> Result<usize> {
        steps
            .checked_add(self.padding[0])
            .and_then(|v| v.checked_add(self.padding[1]))
            .ok_or_else(|| Error::TooLarge {
                layer: self.name.get().to_string(),
                message: format!("{steps} steps padded by {:?} overflow", self.padding),
            })
    }
}

impl Layer for ZeroPadding1D {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        "ZeroPadding1D"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        let input = single_shape(name, inputs)?;
        check_rank(name, 3, input)?;
        let steps = input.dim(1).map(|t| self.padded(t)).transpose()?;
        let out = Shape::new(vec![input.dim(0), steps, input.dim(2)]);
        limits::check_tensor(name, "output", &out)?;
        Ok(vec![out])
    }

    weightless!();

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let name = self.name.get();
        let input = single_input(name, inputs)?;
        check_rank(name, 3, &Shape::known(input.shape()))?;
        check_not_empty(name, input.shape())?;
        let x = input.view().into_dimensionality::<Ix3>().expect("3-D");
        let (batch, steps, channels) = x.dim();
        let padded = self.padded(steps)?;
        limits::check_dims(name, "output", &[batch, padded, channels])?;
        let mut y = Array3::zeros((batch, padded, channels));
        let left = self.padding[0];
        y.slice_mut(s![.., left..left + steps, ..]).assign(&x);
        if ctx.records() {
            ctx.save_for_backward(Box::new(InputShape(input.shape().to_vec())));
        }
        Ok(vec![y.into_dyn()])
    }

    /// Each input step gets the gradient of the output step it went to; the padding's
    /// gradient reaches nothing.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let (shape, g) = input_shape_and_grad(self.name.get(), saved, output_grads, |s| {
            Ok(vec![s[0], self.padded(s[1])?, s[2]])
        })?;
        let left = self.padding[0];
        let input = g.slice(s![.., left..left + shape[1], ..]).to_owned();
        Ok(Gradients::of_input(input.into_dyn()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::apply;
    use ndarray::array;

    #[test]
    fn pads_each_side_by_hand() -> Result<()> {
        // [[1, 2], [3, 4]] padded (1, 2): a zero step, the two steps, two zero steps.
        let mut pad = ZeroPadding1D::new((1, 2));
        assert_eq!(
            pad.build(&[Shape::new(vec![None, Some(2), Some(2)])])?[0].to_string(),
            "(None, 5, 2)"
        );
        let y = apply(&pad, array![[[1.0_f32, 2.0], [3.0, 4.0]]].into_dyn().view())?;
        assert_eq!(
            y,
            array![[
                [0.0_f32, 0.0],
                [1.0, 2.0],
                [3.0, 4.0],
                [0.0, 0.0],
                [0.0, 0.0]
            ]]
            .into_dyn()
        );
        assert_eq!(ZeroPadding1D::default().padding(), [1, 1]);
        assert!(matches!(
            ZeroPadding1D::new(usize::MAX).compute_output_shape(&[Shape::new(vec![
                None,
                Some(2),
                Some(1)
            ])]),
            Err(Error::TooLarge { .. })
        ));
        Ok(())
    }

    #[test]
    fn the_padding_takes_no_gradient() -> Result<()> {
        // Padded (1, 2): output steps 1 and 2 are the input's, so their gradients come back.
        let pad = ZeroPadding1D::new((1, 2));
        let x = array![[[1.0_f32], [2.0]]].into_dyn();
        let mut ctx = CallContext::training();
        pad.call(&[x.view()], &mut ctx)?;
        let g = array![[[10.0_f32], [20.0], [30.0], [40.0], [50.0]]].into_dyn();
        let saved = ctx.take_saved().expect("a record");
        let dx = pad.backward(&saved, &[Some(g.view())])?.inputs.remove(0);
        assert_eq!(dx, Some(array![[[20.0_f32], [30.0]]].into_dyn()));
        Ok(())
    }
}
