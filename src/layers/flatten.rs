//! Keras's `Flatten`: every axis but the batch into one.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::error::{Error, Result};
use crate::layer::{
    common_builders, input_shape_and_grad, layer_plumbing, single_input, single_shape, weightless,
    CallContext, Gradients, InputDecl, InputShape, Layer, LayerName, SavedForBackward,
};
use crate::limits;
use crate::shape::Shape;

/// Keras's `Flatten`: reshapes each sample to one vector.
///
/// ```text
/// (batch, d1, d2, ...)  ->  (batch, d1·d2·...)
/// ```
///
/// - Input: any rank from 1 up; a 1-D input `(batch,)` becomes `(batch, 1)`, as in Keras.
/// - Output: `(batch, product of the other dimensions)`, `None` when one of them is unknown.
/// - No weights. A mask stops here, as in Keras.
///
/// ```
/// use seqnn::{Dense, Flatten, Sequential, SimpleRNN};
/// // model.add(SimpleRNN(4, return_sequences=True, input_shape=(5, 3)))
/// // model.add(Flatten())
/// // model.add(Dense(3))
/// let mut model = Sequential::new();
/// model.add(SimpleRNN::new(4).with_return_sequences(true).input_shape((5, 3)))?;
/// model.add(Flatten::new())?;
/// model.add(Dense::new(3))?;
/// assert_eq!(model.layers()[1].count_params(), 0);
/// assert_eq!(model.layers()[2].count_params(), 63); // 3·(5·4 + 1)
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Building or calling it fails with [`Error::IncompatibleRank`] for a 0-D input (Keras's
/// `min_ndim=1`).
#[derive(Debug, Clone)]
pub struct Flatten {
    name: LayerName,
    input: InputDecl,
    trainable: bool,
    built: bool,
}

impl Default for Flatten {
    fn default() -> Self {
        Self::new()
    }
}

impl Flatten {
    /// A Flatten layer, as Keras's `Flatten()`.
    pub fn new() -> Self {
        Flatten {
            name: LayerName::new("flatten"),
            input: InputDecl::default(),
            trainable: true,
            built: false,
        }
    }

    common_builders!("flatten");

    fn check_rank(&self, input: &Shape) -> Result<()> {
        if input.rank() == 0 {
            return Err(Error::IncompatibleRank {
                layer: self.name.get().to_string(),
                expected: 1,
                found: 0,
                shape: input.clone(),
            });
        }
        Ok(())
    }
}

impl Layer for Flatten {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        "Flatten"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        let input = single_shape(name, inputs)?;
        self.check_rank(input)?;
        let dims = input.dims()[1..]
            .iter()
            .copied()
            .collect::<Option<Vec<_>>>();
        let features = match dims {
            Some(d) => Some(limits::elements(&d).ok_or_else(|| Error::TooLarge {
                layer: name.to_string(),
                message: format!("its output size for the input {input} overflows"),
            })?),
            None => None,
        };
        Ok(vec![Shape::new(vec![input.dim(0), features])])
    }

    weightless!();

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let input = single_input(self.name.get(), inputs)?;
        self.check_rank(&Shape::known(input.shape()))?;
        let batch = input.shape()[0];
        let features = input.shape()[1..].iter().product::<usize>();
        if ctx.records() {
            ctx.save_for_backward(Box::new(InputShape(input.shape().to_vec())));
        }
        Ok(vec![input
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&[batch, features]))
            .expect("batch·features values fill (batch, features)")])
    }

    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let (shape, g) = input_shape_and_grad(self.name.get(), saved, output_grads, |s| {
            Ok(vec![s[0], s[1..].iter().product()])
        })?;
        Ok(Gradients::of_input(
            g.into_shape_with_order(IxDyn(shape))
                .expect("the output holds the input's values"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::apply;
    use ndarray::{array, Axis};

    fn shape_of(dims: Vec<Option<usize>>) -> Result<String> {
        Ok(Flatten::new().compute_output_shape(&[Shape::new(dims)])?[0].to_string())
    }

    #[test]
    fn output_shapes_follow_keras() -> Result<()> {
        assert_eq!(shape_of(vec![None, Some(5), Some(4)])?, "(None, 20)"); // 5·4
        assert_eq!(
            shape_of(vec![None, Some(2), Some(3), Some(4)])?,
            "(None, 24)"
        );
        assert_eq!(shape_of(vec![Some(8), Some(2), Some(3)])?, "(8, 6)");
        assert_eq!(shape_of(vec![None, None, Some(3)])?, "(None, None)");
        assert_eq!(shape_of(vec![None])?, "(None, 1)");
        assert!(matches!(
            Flatten::new().compute_output_shape(&[Shape::new(vec![])]),
            Err(Error::IncompatibleRank { expected: 1, .. })
        ));
        Ok(())
    }

    #[test]
    fn flattens_in_row_major_order() -> Result<()> {
        let mut f = Flatten::new();
        f.build(&[Shape::new(vec![None, Some(2), Some(2)])])?;
        assert!(f.is_built());
        let x = array![[[1.0_f32, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]];
        let y = apply(&f, x.view().into_dyn())?;
        assert_eq!(
            y,
            array![[1.0_f32, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]].into_dyn()
        );
        // A transposed view flattens in its logical order, as a copy would.
        let t = x.view().permuted_axes([0, 2, 1]);
        let y = apply(&f, t.into_dyn())?;
        let first: Vec<f32> = y.index_axis(Axis(0), 0).iter().copied().collect();
        assert_eq!(first, vec![1.0, 3.0, 2.0, 4.0]);
        // (batch,) becomes (batch, 1).
        let y = apply(&f, array![1.0_f32, 2.0].into_dyn().view())?;
        assert_eq!(y.shape(), &[2, 1]);
        assert_eq!(f.count_params(), 0);
        assert!(f.set_weights(&[]).is_ok());
        Ok(())
    }
}
