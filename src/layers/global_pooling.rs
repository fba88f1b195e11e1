//! Keras's `GlobalMaxPooling1D`, `GlobalAveragePooling1D`, `GlobalMaxPooling2D` and
//! `GlobalAveragePooling2D`: one layer, [`GlobalPooling`].

use std::marker::PhantomData;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::error::{Error, Result};
use crate::layer::{
    check_not_empty, check_rank, common_builders, layer_plumbing, output_grad, single_input,
    single_shape, weightless, CallContext, Gradients, InputDecl, Layer, LayerName,
    SavedForBackward,
};
use crate::layers::pooling::{base_name, class_name, AveragePool, MaxPool, PoolKind};
use crate::shape::Shape;

/// Keras's global poolings: the largest value or the mean of every channel over all the
/// spatial axes.
///
/// ```text
/// y[b, c] = max or mean over every position p of x[b, p, c]
/// y[b, c] = Σ_t mask[b, t] · x[b, t, c] / Σ_t mask[b, t]     (GlobalAveragePooling1D, masked)
/// ```
///
/// - Input: `(batch, steps, channels)` (1-D) or `(batch, height, width, channels)` (2-D).
/// - Output: `(batch, channels)`, or with `keepdims` `(batch, 1, channels)` /
///   `(batch, 1, 1, channels)`.
/// - No weights. The output has no mask.
/// - Masks, as Keras: `GlobalAveragePooling1D` (`supports_masking` true in tf_keras 2.21 and
///   Keras 3.15) averages only the unmasked steps, so a sample whose steps are all masked gives
///   `0 / 0`, NaN, as in Keras; masked steps count as zeros whatever they hold (Keras 3's
///   `where`). The other three do not support masking: Keras never hands them the mask, so
///   `GlobalMaxPooling1D` takes the maximum over every step, masked or not.
///
/// Options, with Keras's defaults: `keepdims` false.
///
/// # Errors
/// Building or calling it fails with [`Error::IncompatibleRank`] for an input of another rank;
/// a call with [`Error::InvalidArgument`] for a mask that is not `(batch, steps)`.
#[derive(Debug, Clone)]
pub struct GlobalPooling<const N: usize, P: PoolKind> {
    name: LayerName,
    input: InputDecl,
    keepdims: bool,
    trainable: bool,
    built: bool,
    kind: PhantomData<P>,
}

/// Keras's `GlobalMaxPooling1D()`. See [`GlobalPooling`].
///
/// ```
/// use seqnn::{Conv1D, GlobalMaxPooling1D, Sequential};
/// let mut model = Sequential::new();
/// model.add(Conv1D::new(4, 3).input_shape((10, 2)))?;
/// model.add(GlobalMaxPooling1D::new())?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 4)");
/// # Ok::<(), seqnn::Error>(())
/// ```
pub type GlobalMaxPooling1D = GlobalPooling<1, MaxPool>;

/// Keras's `GlobalAveragePooling1D()`; it averages only the unmasked steps. See
/// [`GlobalPooling`].
///
/// ```
/// use seqnn::{Embedding, GlobalAveragePooling1D, Sequential};
/// // The classic bag-of-embeddings classifier: padding (id 0) does not dilute the average.
/// let mut model = Sequential::new();
/// model.add(Embedding::new(100, 8).with_mask_zero(true).input_shape([12]))?;
/// model.add(GlobalAveragePooling1D::new())?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 8)");
/// # Ok::<(), seqnn::Error>(())
/// ```
pub type GlobalAveragePooling1D = GlobalPooling<1, AveragePool>;

/// Keras's `GlobalMaxPooling2D()`. See [`GlobalPooling`].
///
/// ```
/// use seqnn::{GlobalMaxPooling2D, Sequential};
/// let mut model = Sequential::new();
/// model.add(GlobalMaxPooling2D::new().with_keepdims(true).input_shape([5, 4, 3]))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 1, 1, 3)");
/// # Ok::<(), seqnn::Error>(())
/// ```
pub type GlobalMaxPooling2D = GlobalPooling<2, MaxPool>;

/// Keras's `GlobalAveragePooling2D()`. See [`GlobalPooling`].
///
/// ```
/// use seqnn::{Conv2D, GlobalAveragePooling2D, Sequential};
/// let mut model = Sequential::new();
/// model.add(Conv2D::new(6, 3).input_shape([8, 8, 1]))?;
/// model.add(GlobalAveragePooling2D::new())?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 6)");
/// # Ok::<(), seqnn::Error>(())
/// ```
pub type GlobalAveragePooling2D = GlobalPooling<2, AveragePool>;

impl<const N: usize, P: PoolKind> Default for GlobalPooling<N, P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, P: PoolKind> GlobalPooling<N, P> {
    /// A global pooling, as Keras's `GlobalMaxPooling1D()` and the others.
    pub fn new() -> Self {
        GlobalPooling {
            name: LayerName::new(base_name::<P>(true, N)),
            input: InputDecl::default(),
            keepdims: false,
            trainable: true,
            built: false,
            kind: PhantomData,
        }
    }

    /// Keras's `keepdims`: keep the spatial axes, each of length 1. Default false.
    #[must_use]
    pub fn with_keepdims(mut self, yes: bool) -> Self {
        self.keepdims = yes;
        self
    }

    common_builders!(@names "`global_max_pooling1d`, ... after the class, then numbered: \
                             `global_max_pooling1d_1`, ...");

    /// Whether the spatial axes are kept, each of length 1.
    pub fn keepdims(&self) -> bool {
        self.keepdims
    }

    fn output_dims<T: Copy>(&self, batch: T, channels: T, one: T) -> Vec<T> {
        let mut dims = vec![batch];
        if self.keepdims {
            dims.extend([one; N]);
        }
        dims.push(channels);
        dims
    }
}

impl<const N: usize, P: PoolKind> Layer for GlobalPooling<N, P> {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        class_name::<P>(true, N)
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        let input = single_shape(name, inputs)?;
        check_rank(name, N + 2, input)?;
        Ok(vec![Shape::new(self.output_dims(
            input.dim(0),
            input.last(),
            Some(1),
        ))])
    }

    weightless!();

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let name = self.name.get();
        let input = single_input(name, inputs)?;
        let shape = input.shape();
        check_rank(name, N + 2, &Shape::known(shape))?;
        check_not_empty(name, shape)?;
        let (batch, channels) = (shape[0], shape[N + 1]);
        let positions = shape[1..=N].iter().product::<usize>();
        // Only GlobalAveragePooling1D reads a mask; Keras hands the others none.
        let mask = if N == 1 && !P::MAX {
            ctx.input_mask(0)
        } else {
            None
        };
        if let Some(m) = &mask {
            if m.dim() != (batch, positions) {
                return Err(Error::InvalidArgument {
                    layer: name.to_string(),
                    message: format!(
                        "the mask of shape {} does not fit the input of shape {}",
                        Shape::known(m.shape()),
                        Shape::known(shape)
                    ),
                });
            }
        }
        let x = input.as_standard_layout();
        let x = x.as_slice().expect("standard layout");
        let mut y = vec![0.0_f32; batch * channels];
        for (b, (acc, xb)) in y
            .chunks_exact_mut(channels)
            .zip(x.chunks_exact(positions * channels))
            .enumerate()
        {
            let cells = xb.chunks_exact(channels);
            if P::MAX {
                acc.fill(f32::NEG_INFINITY);
                for cell in cells {
                    acc.iter_mut()
                        .zip(cell)
                        .for_each(|(a, &v)| *a = if v > *a { v } else { *a });
                }
                continue;
            }
            let mut count = 0_usize;
            for (t, cell) in cells.enumerate() {
                if mask.as_ref().is_some_and(|m| !m[[b, t]]) {
                    continue;
                }
                count += 1;
                acc.iter_mut().zip(cell).for_each(|(a, &v)| *a += v);
            }
            // All steps masked: 0 / 0 is NaN, as Keras's sum over the mask divides by zero.
            let n = count as f32;
            acc.iter_mut().for_each(|a| *a /= n);
        }
        let out_shape = self.output_dims(batch, channels, 1);
        if ctx.records() {
            ctx.save_for_backward(Box::new(PoolSaved {
                input: (P::MAX).then(|| input.as_standard_layout().into_owned()),
                input_shape: shape.to_vec(),
                mask: mask.map(|m| m.to_owned()),
                output: y.clone(),
                out_shape: out_shape.clone(),
            }));
        }
        Ok(vec![ArrayD::from_shape_vec(IxDyn(&out_shape), y)
            .expect("batch · channels values fill the output")])
    }

    /// The average's gradient goes evenly to the positions it counted; the maximum's to the
    /// positions that hold it, shared evenly among ties, as TensorFlow's `reduce_max` does.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let saved: &PoolSaved = saved.get(name)?;
        let g = output_grad(name, output_grads, 0, &saved.out_shape)?;
        let g = g.as_slice().expect("standard layout");
        let shape = &saved.input_shape;
        let (channels, positions) = (shape[N + 1], shape[1..=N].iter().product::<usize>());
        let mut dx = ArrayD::<f32>::zeros(IxDyn(shape));
        let out = dx.as_slice_mut().expect("standard layout");
        for (b, (db, gb)) in out
            .chunks_exact_mut(positions * channels)
            .zip(g.chunks_exact(channels))
            .enumerate()
        {
            match &saved.input {
                Some(x) => {
                    let xb = &x.as_slice().expect("standard layout")
                        [b * positions * channels..(b + 1) * positions * channels];
                    let yb = &saved.output[b * channels..(b + 1) * channels];
                    for c in 0..channels {
                        let ties = (0..positions)
                            .filter(|&t| xb[t * channels + c] == yb[c])
                            .count()
                            .max(1);
                        for t in 0..positions {
                            if xb[t * channels + c] == yb[c] {
                                db[t * channels + c] = gb[c] / ties as f32;
                            }
                        }
                    }
                }
                None => {
                    let counted = |t: usize| saved.mask.as_ref().is_none_or(|m| m[[b, t]]);
                    let n = (0..positions).filter(|&t| counted(t)).count() as f32;
                    for t in (0..positions).filter(|&t| counted(t)) {
                        db[t * channels..(t + 1) * channels]
                            .iter_mut()
                            .zip(gb)
                            .for_each(|(d, &gv)| *d = gv / n);
                    }
                }
            }
        }
        Ok(Gradients {
            inputs: vec![Some(dx)],
            weights: Vec::new(),
        })
    }
}

/// What a recording call of a global pooling keeps: the input of a maximum, the input's
/// shape, the mask of an average, and the output.
#[derive(Debug)]
struct PoolSaved {
    input: Option<ArrayD<f32>>,
    input_shape: Vec<usize>,
    mask: Option<ndarray::Array2<bool>>,
    output: Vec<f32>,
    out_shape: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{apply, apply_masked};
    use ndarray::{array, Array3};

    #[test]
    fn masked_average_counts_only_unmasked_steps() -> Result<()> {
        // Sample 0: steps [1, 10], [3, 30], [100, 100]; the last is masked:
        // ((1 + 3) / 2, (10 + 30) / 2) = (2, 20). Sample 1 is fully masked: NaN.
        let x = Array3::from_shape_vec(
            (2, 3, 2),
            vec![
                1.0_f32, 10.0, 3.0, 30.0, 100.0, 100.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
            ],
        )
        .expect("12 values")
        .into_dyn();
        let mask = array![[true, true, false], [false, false, false]];
        let gap = GlobalAveragePooling1D::new();
        let (y, masks) = apply_masked(&gap, &[x.view()], Some(mask.view()))?;
        assert_eq!(y[0].shape(), &[2, 2]);
        assert_eq!((y[0][[0, 0]], y[0][[0, 1]]), (2.0, 20.0));
        assert!(y[0][[1, 0]].is_nan());
        assert_eq!(masks, vec![None]);
        // Unmasked: every step, (1 + 3 + 100) / 3 = 34.666667.
        let y = apply(&gap, x.view())?;
        assert!((y[[0, 0]] - 104.0 / 3.0).abs() < 1e-5);
        // The max ignores the mask, as in Keras.
        let gmp = GlobalMaxPooling1D::new().with_keepdims(true);
        let (y, _) = apply_masked(&gmp, &[x.view()], Some(mask.view()))?;
        assert_eq!(y[0].shape(), &[2, 1, 2]);
        assert_eq!(y[0][[0, 0, 0]], 100.0);
        Ok(())
    }

    #[test]
    fn two_d_pools_every_pixel() -> Result<()> {
        // A 2×2 image, one channel: [1, 2, 3, 6]: mean 3, max 6.
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 2, 2, 1]), vec![1.0_f32, 2.0, 3.0, 6.0])
            .expect("4 values");
        let mut gap = GlobalAveragePooling2D::new();
        assert_eq!(
            gap.build(&[Shape::new(vec![None, Some(2), Some(2), Some(1)])])?[0].to_string(),
            "(None, 1)"
        );
        assert_eq!(apply(&gap, x.view())?[[0, 0]], 3.0);
        assert_eq!(apply(&GlobalMaxPooling2D::new(), x.view())?[[0, 0]], 6.0);
        assert!(matches!(
            gap.compute_output_shape(&[Shape::new(vec![None, Some(2), Some(2)])]),
            Err(Error::IncompatibleRank { expected: 4, .. })
        ));
        Ok(())
    }
}
