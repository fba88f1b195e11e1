//! Keras's `Cropping1D`: steps cut from the start and the end of a sequence.

use ndarray::{s, ArrayD, ArrayViewD, Ix3, IxDyn};

use crate::error::{Error, Result};
use crate::layer::{
    check_rank, common_builders, input_shape_and_grad, layer_plumbing, single_input, single_shape,
    weightless, CallContext, Gradients, InputDecl, InputShape, Layer, LayerName, SavedForBackward,
};
use crate::layers::conv::{py_tuple, Dims};
use crate::shape::Shape;

/// Keras's `Cropping1D`: drops `start` steps at the start of each sequence and `end` at its
/// end.
///
/// ```text
/// y[b, t, c] = x[b, start + t, c]   for 0 ≤ t < steps − start − end
/// ```
///
/// - Input: `(batch, steps, channels)`. Output: `(batch, steps − start − end, channels)`.
/// - No weights. A mask stops here, as in Keras (`supports_masking` is false in tf_keras 2.21
///   and Keras 3.15).
///
/// ```
/// use seqnn::{Cropping1D, Sequential};
/// // model.add(Cropping1D((1, 2), input_shape=(10, 3)))
/// let mut model = Sequential::new();
/// model.add(Cropping1D::new((1, 2)).input_shape((10, 3)))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 7, 3)");
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding, building or calling it fails with [`Error::IncompatibleRank`] for an input that is
/// not 3-D, and with [`Error::InvalidArgument`] (Keras 3's message) when nothing would be left.
#[derive(Debug, Clone)]
pub struct Cropping1D {
    name: LayerName,
    input: InputDecl,
    cropping: [usize; 2],
    trainable: bool,
    built: bool,
}

impl Default for Cropping1D {
    /// Keras's `Cropping1D()`: one step at each end.
    fn default() -> Self {
        Self::new(1)
    }
}

impl Cropping1D {
    /// Crops `cropping` steps, one number for both ends or `(start, end)`, as Keras's
    /// `Cropping1D(cropping)`.
    pub fn new(cropping: impl Into<Dims<2>>) -> Self {
        Cropping1D {
            name: LayerName::new("cropping1d"),
            input: InputDecl::default(),
            cropping: cropping.into().0,
            trainable: true,
            built: false,
        }
    }

    common_builders!("cropping1d");

    /// The steps cut `[at the start, at the end]` (Keras's `cropping`).
    pub fn cropping(&self) -> [usize; 2] {
        self.cropping
    }

    /// The steps left of `steps`, or Keras 3's error when none would be; `what` is how Keras
    /// names the shape (`input_shape` when inferring, `inputs.shape` when calling).
    fn kept(&self, steps: usize, what: &str, shape: &Shape) -> Result<usize> {
        let cut = self.cropping[0].saturating_add(self.cropping[1]);
        if cut >= steps {
            return Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: format!(
                    "`cropping` parameter of `Cropping1D` layer must be smaller than the input \
                     length. Received: {what}={shape}, cropping={}",
                    py_tuple(&self.cropping)
                ),
            });
        }
        Ok(steps - cut)
    }
}

impl Layer for Cropping1D {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        "Cropping1D"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        let input = single_shape(name, inputs)?;
        check_rank(name, 3, input)?;
        let steps = input
            .dim(1)
            .map(|t| self.kept(t, "input_shape", input))
            .transpose()?;
        Ok(vec![Shape::new(vec![input.dim(0), steps, input.dim(2)])])
    }

    weightless!();

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let name = self.name.get();
        let input = single_input(name, inputs)?;
        let found = Shape::known(input.shape());
        check_rank(name, 3, &found)?;
        let x = input.view().into_dimensionality::<Ix3>().expect("3-D");
        let kept = self.kept(x.dim().1, "inputs.shape", &found)?;
        let start = self.cropping[0];
        if ctx.records() {
            ctx.save_for_backward(Box::new(InputShape(input.shape().to_vec())));
        }
        Ok(vec![x
            .slice(s![.., start..start + kept, ..])
            .as_standard_layout()
            .into_owned()
            .into_dyn()])
    }

    /// The kept steps get the output's gradient; the cropped steps, none.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let (shape, g) = input_shape_and_grad(self.name.get(), saved, output_grads, |s| {
            Ok(vec![
                s[0],
                self.kept(s[1], "inputs.shape", &Shape::known(s))?,
                s[2],
            ])
        })?;
        let start = self.cropping[0];
        let mut dx = ArrayD::<f32>::zeros(IxDyn(shape));
        dx.slice_mut(s![.., start..start + g.shape()[1], ..])
            .assign(&g);
        Ok(Gradients::of_input(dx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::apply;
    use ndarray::array;

    #[test]
    fn crops_each_end_by_hand() -> Result<()> {
        // Steps [1], [2], [3], [4] cropped (1, 2): only [2] is left.
        let crop = Cropping1D::new((1, 2));
        let x = array![[[1.0_f32], [2.0], [3.0], [4.0]]].into_dyn();
        assert_eq!(apply(&crop, x.view())?, array![[[2.0_f32]]].into_dyn());
        let err = Cropping1D::new(2)
            .compute_output_shape(&[Shape::new(vec![None, Some(4), Some(2)])])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"cropping1d\": `cropping` parameter of `Cropping1D` layer must be smaller \
             than the input length. Received: input_shape=(None, 4, 2), cropping=(2, 2)"
        );
        Ok(())
    }

    #[test]
    fn cropped_steps_take_no_gradient() -> Result<()> {
        // Four steps cropped (1, 2): only step 1 is kept, so only it gets a gradient.
        let crop = Cropping1D::new((1, 2));
        let x = array![[[1.0_f32], [2.0], [3.0], [4.0]]].into_dyn();
        let mut ctx = CallContext::training();
        crop.call(&[x.view()], &mut ctx)?;
        let g = array![[[7.0_f32]]].into_dyn();
        let saved = ctx.take_saved().expect("a record");
        let dx = crop.backward(&saved, &[Some(g.view())])?.inputs.remove(0);
        assert_eq!(
            dx,
            Some(array![[[0.0_f32], [7.0], [0.0], [0.0]]].into_dyn())
        );
        Ok(())
    }
}
