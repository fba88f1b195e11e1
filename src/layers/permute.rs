//! Keras's `Permute`: the axes of each sample reordered.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::error::{Error, Result};
use crate::layer::{
    check_rank, common_builders, layer_plumbing, output_grad, single_input, single_shape,
    weightless, CallContext, Gradients, InputDecl, Layer, LayerName, SavedForBackward,
};
use crate::shape::Shape;

/// Keras's `Permute`: reorders the axes of each sample. `dims` counts the axes from 1, without
/// the batch: `Permute([2, 1])` swaps timesteps and features.
///
/// ```text
/// y[b, i_1, ..., i_n] = x[b, j_1, ..., j_n]        where j_dims[k] = i_k
/// output shape: (batch, d_dims[0], ..., d_dims[n−1])
/// ```
///
/// - Input: rank `dims.len() + 1`. Output: the input's dimensions in the order of `dims`.
/// - No weights. A mask stops here: Keras's `Permute` does not support masking (Keras 3 warns
///   that it destroys the mask, tf_keras drops it silently).
///
/// ```
/// use seqnn::{Permute, Sequential, SimpleRNN};
/// // model.add(Permute((2, 1), input_shape=(10, 64)))
/// // model.add(SimpleRNN(4))
/// let mut model = Sequential::new();
/// model.add(Permute::new([2, 1]).input_shape((10, 64)))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 64, 10)");
/// model.add(SimpleRNN::new(4))?;
/// assert!(Sequential::new().add(Permute::new([1, 3]).input_shape((10, 64))).is_err());
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding, building or calling it fails with [`Error::InvalidArgument`], in Keras's words, when
/// `dims` is not a permutation of `1..=n`, and with [`Error::IncompatibleRank`] for an input
/// whose rank is not `n + 1`.
#[derive(Debug, Clone)]
pub struct Permute {
    name: LayerName,
    input: InputDecl,
    dims: Vec<usize>,
    trainable: bool,
    built: bool,
}

impl Permute {
    /// A layer permuting the axes of each sample as `dims` (from 1, without the batch), as
    /// Keras's `Permute(dims)`. A `dims` that is not a permutation is refused when the layer is
    /// added to a model or built (Keras refuses it at construction).
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Permute {
            name: LayerName::new("permute"),
            input: InputDecl::default(),
            dims: dims.into(),
            trainable: true,
            built: false,
        }
    }

    common_builders!("permute");

    /// The order of the axes, counted from 1 without the batch (Keras's `dims`).
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Keras's check: `sorted(dims) == [1, ..., n]`.
    fn validate(&self) -> Result<()> {
        let n = self.dims.len();
        let mut seen = vec![false; n];
        let permutation = self
            .dims
            .iter()
            .all(|&d| (1..=n).contains(&d) && !std::mem::replace(&mut seen[d - 1], true));
        if permutation {
            return Ok(());
        }
        Err(Error::InvalidArgument {
            layer: self.name.get().to_string(),
            message: format!(
                "Invalid permutation argument `dims` for Permute Layer. The set of indices in \
                 `dims` must be consecutive and start from 1. Received dims={}",
                Shape::known(&self.dims)
            ),
        })
    }

    /// The axes of the output in terms of the input's, the batch first.
    fn axes(&self) -> Vec<usize> {
        std::iter::once(0)
            .chain(self.dims.iter().copied())
            .collect()
    }
}

impl Layer for Permute {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        "Permute"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.validate()?;
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        let input = single_shape(name, inputs)?;
        self.validate()?;
        check_rank(name, self.dims.len() + 1, input)?;
        let dims = self.axes().into_iter().map(|a| input.dims()[a]).collect();
        Ok(vec![Shape::new(dims)])
    }

    weightless!();

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let name = self.name.get();
        let input = single_input(name, inputs)?;
        self.validate()?;
        if input.ndim() != self.dims.len() + 1 {
            check_rank(name, self.dims.len() + 1, &Shape::known(input.shape()))?;
        }
        // The output holds the input's values: no size to check beyond the input's own.
        let y = input
            .view()
            .permuted_axes(IxDyn(&self.axes()))
            .as_standard_layout()
            .into_owned();
        if ctx.records() {
            ctx.save_for_backward(Box::new(y.shape().to_vec()));
        }
        Ok(vec![y])
    }

    /// The gradient goes through the inverse permutation.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let shape: &Vec<usize> = saved.get(name)?;
        let g = output_grad(name, output_grads, 0, shape)?;
        Ok(Gradients {
            inputs: vec![Some(
                g.permuted_axes(IxDyn(&inverse_permutation(&self.axes())))
                    .as_standard_layout()
                    .into_owned(),
            )],
            weights: Vec::new(),
        })
    }
}

/// The order of axes that undoes `order` (a permutation of `0..order.len()`).
pub(crate) fn inverse_permutation(order: &[usize]) -> Vec<usize> {
    let mut inverse = vec![0; order.len()];
    for (i, &a) in order.iter().enumerate() {
        inverse[a] = i;
    }
    inverse
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{apply, apply_masked};
    use ndarray::{array, Array3};

    #[test]
    fn swaps_timesteps_and_features() -> Result<()> {
        let mut p = Permute::new([2, 1]);
        let out = p.build(&[Shape::new(vec![None, Some(2), Some(3)])])?;
        assert_eq!(out[0].to_string(), "(None, 3, 2)");
        let x = array![[[1.0_f32, 2.0, 3.0], [4.0, 5.0, 6.0]]];
        let (y, masks) = apply_masked(
            &p,
            &[x.view().into_dyn()],
            Some(array![[true, false]].view()),
        )?;
        // y[0, f, t] = x[0, t, f]
        assert_eq!(
            y[0],
            array![[[1.0_f32, 4.0], [2.0, 5.0], [3.0, 6.0]]].into_dyn()
        );
        assert_eq!(masks, vec![None]);
        Ok(())
    }

    #[test]
    fn three_axes_rotate() -> Result<()> {
        let p = Permute::new([3, 1, 2]);
        let out = p.compute_output_shape(&[Shape::new(vec![None, Some(2), Some(3), Some(4)])])?;
        assert_eq!(out[0].to_string(), "(None, 4, 2, 3)");
        let x = Array3::from_shape_fn((2, 3, 4), |(a, b, c)| (100 * a + 10 * b + c) as f32)
            .insert_axis(ndarray::Axis(0))
            .into_dyn();
        let y = apply(&p, x.view())?;
        // y[0, k, i, j] = x[0, i, j, k]: y[0, 3, 1, 2] = x[0, 1, 2, 3] = 123
        assert_eq!(y.shape(), &[1, 4, 2, 3]);
        assert_eq!(y[[0, 3, 1, 2]], 123.0);
        Ok(())
    }

    #[test]
    fn bad_dims_and_ranks_are_refused_in_keras_words() {
        let err = Permute::new([1, 3])
            .compute_output_shape(&[Shape::new(vec![None, Some(2), Some(3)])])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"permute\": Invalid permutation argument `dims` for Permute Layer. The set of \
             indices in `dims` must be consecutive and start from 1. Received dims=(1, 3)"
        );
        assert!(Permute::new([1, 1]).declared_input_shape().is_err());
        assert!(Permute::new([0, 1]).declared_input_shape().is_err());
        assert!(Permute::new([]).declared_input_shape().is_ok());
        let err = Permute::new([2, 1])
            .compute_output_shape(&[Shape::new(vec![None, Some(2), Some(3), Some(4)])])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Input 0 of layer \"permute\" is incompatible with the layer: expected ndim=3, found \
             ndim=4. Full shape received: (None, 2, 3, 4)"
        );
        let x = ArrayD::<f32>::zeros(IxDyn(&[1, 2]));
        assert!(matches!(
            apply(&Permute::new([2, 1]), x.view()),
            Err(Error::IncompatibleRank { .. })
        ));
    }
}
