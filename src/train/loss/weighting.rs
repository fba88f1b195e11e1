//! The mask and the sample weights of a batch, resolved to one weight per loss element.

use ndarray::{Array1, ArrayView, ArrayView2, ArrayViewD, CowArray, Dimension, Ix1};

use crate::error::{Error, Result};
use crate::shape::Shape;

/// The mask and the sample weights that come with a batch's output, as `fit` passes them to
/// the loss and the metrics.
///
/// - `mask`: `(batch, timesteps)`, `true` where a step is real: the mask a `return_sequences`
///   recurrent layer's output carries after `Embedding(mask_zero=True)` or `Masking`. It goes
///   with a `(batch, timesteps, features)` output, whose losses are `(batch, timesteps)`.
/// - `sample_weight`: `(batch,)` or `(batch, 1)`, one weight per sample; or the losses' shape
///   (`(batch, timesteps)` for a sequence output), one per loss element, with or without a
///   trailing 1; or a scalar.
///
/// ```
/// use ndarray::{array, Array2};
/// use seqnn::Weighting;
///
/// let mask = Array2::from_elem((2, 3), true);
/// let weights = array![1.0f32, 0.5];
/// let w = Weighting::none().with_mask(&mask).with_sample_weight(&weights);
/// assert!(w.mask().is_some() && w.sample_weight().is_some());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Weighting<'a> {
    mask: Option<ArrayView2<'a, bool>>,
    sample_weight: Option<ArrayViewD<'a, f32>>,
}

impl<'a> Weighting<'a> {
    /// No mask and no sample weights: every loss element weighs 1.
    pub fn none() -> Self {
        Self::default()
    }

    /// With a `(batch, timesteps)` mask.
    pub fn with_mask(mut self, mask: impl Into<ArrayView2<'a, bool>>) -> Self {
        self.mask = Some(mask.into());
        self
    }

    /// With sample weights (see the shapes above).
    pub fn with_sample_weight<D: Dimension>(
        mut self,
        sample_weight: impl Into<ArrayView<'a, f32, D>>,
    ) -> Self {
        self.sample_weight = Some(sample_weight.into().into_dyn());
        self
    }

    /// The mask, if any.
    pub fn mask(&self) -> Option<ArrayView2<'a, bool>> {
        self.mask
    }

    /// The sample weights, if any.
    pub fn sample_weight(&self) -> Option<ArrayViewD<'a, f32>> {
        self.sample_weight.clone()
    }
}

/// Whether `(batch,)` sample weights may spread over losses of rank 2 or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PerSample {
    /// tf_keras expands them to `(batch, 1)`: each sample's weight on each of its steps.
    Spread,
    /// Keras 3 multiplies them into the losses along the last axis: an error where batch and
    /// timesteps differ, the wrong axis where they are equal. seqnn refuses them.
    Refuse,
}

/// One weight per loss element (row), from the mask and the sample weights.
#[derive(Debug)]
pub(crate) struct RowWeights<'a> {
    mask: Option<CowArray<'a, bool, Ix1>>,
    weights: Option<CowArray<'a, f32, Ix1>>,
    /// Loss elements per weight: 1 for element-wise weights, the elements of a sample for
    /// per-sample weights, all of them for a scalar.
    per: usize,
}

impl RowWeights<'_> {
    /// Whether there is a mask.
    pub(crate) fn has_mask(&self) -> bool {
        self.mask.is_some()
    }

    /// Whether element `r` is masked out.
    pub(crate) fn masked(&self, r: usize) -> bool {
        self.mask.as_ref().is_some_and(|m| !m[r])
    }

    /// The sample weight of element `r`, ignoring the mask.
    pub(crate) fn sample(&self, r: usize) -> f32 {
        self.weights.as_ref().map_or(1.0, |w| w[r / self.per])
    }

    /// The weight of element `r`: 0 where masked, else its sample weight.
    pub(crate) fn weight(&self, r: usize) -> f32 {
        if self.masked(r) {
            0.0
        } else {
            self.sample(r)
        }
    }
}

/// Resolves `weighting` against losses of shape `loss_shape` (the output `y_pred` without its
/// reduced axis), for the loss or metric `who`.
pub(crate) fn resolve<'a>(
    who: &str,
    loss_shape: &[usize],
    y_pred_shape: &[usize],
    weighting: &Weighting<'a>,
    per_sample: PerSample,
) -> Result<RowWeights<'a>> {
    let invalid = |message: String| Error::InvalidArgument {
        layer: who.to_string(),
        message,
    };
    let mask = match weighting.mask {
        None => None,
        Some(m) if m.shape() == loss_shape => Some(flat(m.into_dyn())),
        Some(m) => {
            return Err(invalid(format!(
                "the mask {} does not fit the output {}: a (batch, timesteps) mask goes with a \
                 (batch, timesteps, features) output, whose losses are (batch, timesteps)",
                Shape::known(m.shape()),
                Shape::known(y_pred_shape),
            )))
        }
    };
    let (weights, per) = match weighting.sample_weight.clone() {
        None => (None, 1),
        Some(w) => {
            let per = per_weight(w.shape(), loss_shape).ok_or_else(|| {
                let batch = loss_shape[0];
                invalid(format!(
                    "sample_weight {} does not fit the values {} (one per sample or timestep): \
                     give ({batch},) or ({batch}, 1) for one weight per sample, or the values' \
                     shape",
                    Shape::known(w.shape()),
                    Shape::known(loss_shape),
                ))
            })?;
            if per_sample == PerSample::Refuse && w.ndim() == 1 && loss_shape.len() >= 2 {
                return Err(invalid(format!(
                    "Keras 3 multiplies sample_weight {} into the values {} of a sequence output \
                     along their last axis, which fails (\"Dimensions must be equal\") or, when \
                     the sizes agree, weighs the wrong axis: give ({}, 1) for one weight per \
                     sample, or the values' shape",
                    Shape::known(w.shape()),
                    Shape::known(loss_shape),
                    loss_shape[0],
                )));
            }
            (Some(flat(w)), per)
        }
    };
    Ok(RowWeights { mask, weights, per })
}

/// How many loss elements each sample weight covers, or `None` when the shape does not fit.
fn per_weight(w: &[usize], loss: &[usize]) -> Option<usize> {
    let rows: usize = loss.iter().product();
    let batch = loss[0];
    let trailing_1 = w.len() == loss.len() + 1 && w[..loss.len()] == *loss && w[loss.len()] == 1;
    if w.is_empty() {
        Some(rows.max(1))
    } else if w == loss || trailing_1 {
        Some(1)
    } else if w == [batch] || (w == [batch, 1] && loss.len() >= 2) {
        Some(rows / batch.max(1))
    } else {
        None
    }
}

/// `a`'s elements in row-major order (a view when they already are one run).
fn flat<A: Clone>(a: ArrayViewD<'_, A>) -> CowArray<'_, A, Ix1> {
    let len = a.len();
    match a.clone().into_shape_with_order(len) {
        Ok(v) => CowArray::from(v),
        Err(_) => CowArray::from(a.iter().cloned().collect::<Array1<A>>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr0, array, Array2};

    #[test]
    fn mask_and_per_sample_weights_combine() {
        let mask = array![[true, false], [true, true]];
        let sw = array![2.0f32, 0.5];
        let w = Weighting::none().with_mask(&mask).with_sample_weight(&sw);
        let r = resolve("mse", &[2, 2], &[2, 2, 3], &w, PerSample::Spread).unwrap();
        // Row-major: (0,0) weight 2, (0,1) masked, (1,0) and (1,1) weight 0.5.
        let got: Vec<f32> = (0..4).map(|i| r.weight(i)).collect();
        assert_eq!(got, vec![2.0, 0.0, 0.5, 0.5]);
    }

    #[test]
    fn keras3_refuses_per_sample_weights_on_sequences() {
        let sw = array![2.0f32, 0.5];
        let w = Weighting::none().with_sample_weight(&sw);
        let err = resolve("mse", &[2, 4], &[2, 4, 3], &w, PerSample::Refuse).unwrap_err();
        assert!(err.to_string().contains("Keras 3"), "{err}");
        // (batch, 1) is fine in both.
        let sw = array![[2.0f32], [0.5]];
        let w = Weighting::none().with_sample_weight(&sw);
        let r = resolve("mse", &[2, 4], &[2, 4, 3], &w, PerSample::Refuse).unwrap();
        assert_eq!((r.weight(3), r.weight(4)), (2.0, 0.5));
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        let mask = Array2::from_elem((2, 3), true);
        let w = Weighting::none().with_mask(&mask);
        let err = resolve("mse", &[2], &[2, 3], &w, PerSample::Spread).unwrap_err();
        assert!(err.to_string().contains("mask (2, 3)"), "{err}");
        let sw = array![1.0f32, 2.0, 3.0];
        let w = Weighting::none().with_sample_weight(&sw);
        let err = resolve("mse", &[2], &[2, 3], &w, PerSample::Spread).unwrap_err();
        assert!(err.to_string().contains("sample_weight (3,)"), "{err}");
        let scalar = arr0(3.0f32);
        let w = Weighting::none().with_sample_weight(&scalar);
        let r = resolve("mse", &[2, 2], &[2, 2, 1], &w, PerSample::Refuse).unwrap();
        assert_eq!(r.weight(3), 3.0);
    }
}
