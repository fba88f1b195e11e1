//! Keras's `UpSampling1D`: every step of a sequence repeated.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};

use crate::error::{Error, Result};
use crate::layer::{
    check_not_empty, check_rank, common_builders, input_shape_and_grad, layer_plumbing,
    single_input, single_shape, weightless, CallContext, Gradients, InputDecl, InputShape, Layer,
    LayerName, SavedForBackward,
};
use crate::limits;
use crate::shape::Shape;

/// Keras's `UpSampling1D`: repeats every step `size` times along the steps.
///
/// ```text
/// y[b, t, c] = x[b, t / size, c]      for 0 ≤ t < steps · size
/// ```
///
/// - Input: `(batch, steps, channels)`. Output: `(batch, steps · size, channels)`.
/// - No weights. A mask stops here, as in Keras (`supports_masking` is false in tf_keras 2.21
///   and Keras 3.15).
///
/// ```
/// use seqnn::{Sequential, UpSampling1D};
/// // model.add(UpSampling1D(3, input_shape=(4, 2)))
/// let mut model = Sequential::new();
/// model.add(UpSampling1D::new(3).input_shape((4, 2)))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 12, 2)");
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding, building or calling it fails with [`Error::InvalidArgument`] for size 0 (Keras 3's
/// message), with [`Error::IncompatibleRank`] for an input that is not 3-D, and with
/// [`Error::TooLarge`] when the output would exceed [`crate::limits`].
#[derive(Debug, Clone)]
pub struct UpSampling1D {
    name: LayerName,
    input: InputDecl,
    size: usize,
    trainable: bool,
    built: bool,
}

impl Default for UpSampling1D {
    /// Keras's `UpSampling1D()`: size 2.
    fn default() -> Self {
        Self::new(2)
    }
}

impl UpSampling1D {
    /// Repeats every step `size` times, as Keras's `UpSampling1D(size)`.
    pub fn new(size: usize) -> Self {
        UpSampling1D {
            name: LayerName::new("up_sampling1d"),
            input: InputDecl::default(),
            size,
            trainable: true,
            built: false,
        }
    }

    common_builders!("up_sampling1d");

    /// How many times each step is repeated (Keras's `size`).
    pub fn size(&self) -> usize {
        self.size
    }

    fn check_size(&self) -> Result<()> {
        if self.size == 0 {
            return Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: "Argument `size` should be a positive integer. Received: size=0".into(),
            });
        }
        Ok(())
    }
}

impl Layer for UpSampling1D {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        "UpSampling1D"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.check_size()?;
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        let input = single_shape(name, inputs)?;
        self.check_size()?;
        check_rank(name, 3, input)?;
        let steps = input
            .dim(1)
            .map(|t| limits::mul(name, t, self.size))
            .transpose()?;
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
        self.check_size()?;
        let shape = input.shape();
        check_rank(name, 3, &Shape::known(shape))?;
        check_not_empty(name, shape)?;
        let (batch, steps, channels) = (shape[0], shape[1], shape[2]);
        let out_shape = [batch, limits::mul(name, steps, self.size)?, channels];
        limits::check_dims(name, "output", &out_shape)?;
        let x = input.as_standard_layout();
        let mut y = Vec::with_capacity(out_shape.iter().product());
        for step in x
            .as_slice()
            .expect("standard layout")
            .chunks_exact(channels)
        {
            for _ in 0..self.size {
                y.extend_from_slice(step);
            }
        }
        if ctx.records() {
            ctx.save_for_backward(Box::new(InputShape(shape.to_vec())));
        }
        Ok(vec![ArrayD::from_shape_vec(IxDyn(&out_shape), y)
            .expect("every step repeated fills the output")])
    }

    /// Each input step gets the sum of the gradients of its `size` copies.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let (shape, g) = input_shape_and_grad(name, saved, output_grads, |s| {
            Ok(vec![s[0], limits::mul(name, s[1], self.size)?, s[2]])
        })?;
        let copies = [shape[0], shape[1], self.size, shape[2]];
        let dx = g
            .into_shape_with_order(IxDyn(&copies))
            .expect("the output holds size copies of every step")
            .sum_axis(Axis(2));
        Ok(Gradients::of_input(dx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::apply;
    use ndarray::array;

    #[test]
    fn repeats_each_step_by_hand() -> Result<()> {
        // Steps [1, 2], [3, 4] with size 2: [1, 2], [1, 2], [3, 4], [3, 4].
        let mut up = UpSampling1D::new(2);
        assert_eq!(
            up.build(&[Shape::new(vec![None, Some(2), Some(2)])])?[0].to_string(),
            "(None, 4, 2)"
        );
        let y = apply(&up, array![[[1.0_f32, 2.0], [3.0, 4.0]]].into_dyn().view())?;
        assert_eq!(
            y,
            array![[[1.0_f32, 2.0], [1.0, 2.0], [3.0, 4.0], [3.0, 4.0]]].into_dyn()
        );
        assert_eq!(
            UpSampling1D::new(0)
                .declared_input_shape()
                .unwrap_err()
                .to_string(),
            "layer \"up_sampling1d\": Argument `size` should be a positive integer. Received: \
             size=0"
        );
        assert!(matches!(
            UpSampling1D::new(1 << 40).compute_output_shape(&[Shape::new(vec![
                None,
                Some(1 << 30),
                Some(2)
            ])]),
            Err(Error::TooLarge { .. })
        ));
        Ok(())
    }

    #[test]
    fn each_step_sums_the_gradients_of_its_copies() -> Result<()> {
        // Two steps repeated 3 times: step 0 gets 1 + 2 + 3 = 6, step 1 gets 4 + 5 + 6 = 15.
        let up = UpSampling1D::new(3);
        let x = array![[[1.0_f32], [2.0]]].into_dyn();
        let mut ctx = CallContext::training();
        up.call(&[x.view()], &mut ctx)?;
        let g = array![[[1.0_f32], [2.0], [3.0], [4.0], [5.0], [6.0]]].into_dyn();
        let saved = ctx.take_saved().expect("a record");
        let dx = up.backward(&saved, &[Some(g.view())])?.inputs.remove(0);
        assert_eq!(dx, Some(array![[[6.0_f32], [15.0]]].into_dyn()));
        Ok(())
    }
}
