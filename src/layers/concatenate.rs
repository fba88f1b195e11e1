//! Keras's `Concatenate`: several tensors joined along one axis.

use ndarray::{concatenate, ArrayD, ArrayViewD, Axis};

use crate::error::{Error, Result};
use crate::layer::{
    check_not_empty, layer_plumbing, output_grad, weightless, CallContext, Gradients, Layer,
    LayerName, Mask, MaskPolicy, SavedForBackward,
};
use crate::limits;
use crate::shape::Shape;

/// Keras's `Concatenate(axis=-1)`: its inputs joined along `axis`.
///
/// - Inputs: several tensors of one rank whose shapes agree but on `axis` (the batch is axis
///   0; negative axes count from the end, as Keras).
/// - Output: the same shape with the sizes along `axis` added.
/// - Masks, as Keras's `Concatenate.compute_mask`: joining features (the last axis), a step is
///   real where it is real in every input (an input without a mask counts as all real);
///   joining along the time axis, the masks are joined along time too.
/// - No weights.
///
/// ```
/// use ndarray::array;
/// use seqnn::{CallContext, Concatenate, Layer, Shape};
/// let mut cat = Concatenate::new();
/// let out = cat.build(&[Shape::new(vec![None, Some(2)]), Shape::new(vec![None, Some(3)])])?;
/// assert_eq!(out[0].to_string(), "(None, 5)");
/// let (a, b) = (array![[1.0_f32, 2.0]].into_dyn(), array![[3.0_f32, 4.0, 5.0]].into_dyn());
/// let y = cat.call(&[a.view(), b.view()], &mut CallContext::inference())?;
/// assert_eq!(y[0], array![[1.0_f32, 2.0, 3.0, 4.0, 5.0]].into_dyn());
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Keras's errors for no input and for shapes that differ elsewhere than on `axis`; an axis
/// out of range or the batch axis is refused.
#[derive(Debug, Clone)]
pub struct Concatenate {
    name: LayerName,
    axis: isize,
    trainable: bool,
    built: bool,
}

impl Default for Concatenate {
    fn default() -> Self {
        Self::new()
    }
}

impl Concatenate {
    /// Concatenation along the last axis, as Keras's `Concatenate()`.
    pub fn new() -> Self {
        Concatenate {
            name: LayerName::new("concatenate"),
            axis: -1,
            trainable: true,
            built: false,
        }
    }

    /// Keras's `axis`: the axis to join along, negative from the end. Default −1.
    #[must_use]
    pub fn with_axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }

    /// Keras's `name`. Without it, the layer is named when it is first used.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name.set(name.into());
        self
    }

    /// The axis the inputs are joined along, as given (negative from the end).
    pub fn axis(&self) -> isize {
        self.axis
    }

    /// The axis as an index into a shape of `rank`, or the error for one out of range.
    fn resolve(&self, rank: usize) -> Result<usize> {
        let r = rank as isize;
        let a = if self.axis < 0 {
            self.axis + r
        } else {
            self.axis
        };
        if a <= 0 || a >= r {
            return Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: format!(
                    "axis={} is out of range for inputs of rank {rank} (the batch axis 0 cannot \
                     be joined)",
                    self.axis
                ),
            });
        }
        Ok(a as usize)
    }

    fn mismatch(&self, inputs: &[Shape]) -> Error {
        let shapes = inputs
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Error::InvalidArgument {
            layer: self.name.get().to_string(),
            message: format!(
                "A `Concatenate` layer requires inputs with matching shapes except for the \
                 concatenation axis. Received: input_shape=[{shapes}]"
            ),
        }
    }

    /// Keras's masks of the output, from the masks of the inputs.
    fn output_mask(
        &self,
        ctx: &CallContext,
        inputs: &[ArrayViewD<'_, f32>],
        axis: usize,
    ) -> Option<Mask> {
        let masks: Vec<Option<ndarray::ArrayView2<'_, bool>>> =
            (0..inputs.len()).map(|i| ctx.input_mask(i)).collect();
        if masks.iter().all(Option::is_none) {
            return None;
        }
        let batch = inputs[0].shape()[0];
        if axis == 1 && inputs.iter().all(|x| x.ndim() >= 2) {
            // Joined along time: the masks are joined along time.
            let parts: Vec<Mask> = masks
                .iter()
                .zip(inputs)
                .map(|(m, x)| match m {
                    Some(m) => m.to_owned(),
                    None => Mask::from_elem((batch, x.shape()[1]), true),
                })
                .collect();
            let views: Vec<_> = parts.iter().map(|m| m.view()).collect();
            return concatenate(Axis(1), &views).ok();
        }
        crate::layers::merge::and_masks(ctx, inputs.len())
    }
}

impl Layer for Concatenate {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        "Concatenate"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        Ok(None)
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let Some(first) = inputs.first() else {
            return Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: "A `Concatenate` layer should be called on a list of at least 1 \
                          input. Received: input_shape=[]"
                    .into(),
            });
        };
        let rank = first.rank();
        if inputs.iter().any(|s| s.rank() != rank) {
            return Err(self.mismatch(inputs));
        }
        let axis = self.resolve(rank)?;
        let mut out = first.dims().to_vec();
        for other in &inputs[1..] {
            for (i, (o, d)) in out.iter_mut().zip(other.dims()).enumerate() {
                if i == axis {
                    *o = match (*o, *d) {
                        (Some(a), Some(b)) => {
                            Some(a.checked_add(b).ok_or_else(|| Error::TooLarge {
                                layer: self.name.get().to_string(),
                                message: format!("the joined size {a} + {b} overflows"),
                            })?)
                        }
                        _ => None,
                    };
                } else if i > 0 {
                    match (*o, *d) {
                        (Some(a), Some(b)) if a != b => return Err(self.mismatch(inputs)),
                        (None, known) => *o = known,
                        _ => {}
                    }
                }
            }
        }
        let out = Shape::new(out);
        limits::check_tensor(self.name.get(), "output", &out)?;
        Ok(vec![out])
    }

    weightless!();

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let shapes: Vec<Shape> = inputs.iter().map(|x| Shape::known(x.shape())).collect();
        let out = self.compute_output_shape(&shapes)?;
        let dims: Vec<usize> = out[0].dims().iter().map(|d| d.unwrap_or(0)).collect();
        check_not_empty(self.name.get(), &dims)?;
        let axis = self.resolve(inputs[0].ndim())?;
        let y = concatenate(Axis(axis), inputs).map_err(|_| self.mismatch(&shapes))?;
        let mask = self.output_mask(ctx, inputs, axis);
        ctx.set_output_masks(vec![mask]);
        if ctx.records() {
            let widths: Vec<usize> = inputs.iter().map(|x| x.shape()[axis]).collect();
            ctx.save_for_backward(Box::new((axis, widths, y.shape().to_vec())));
        }
        Ok(vec![y])
    }

    /// Each input gets its own slice of the output's gradient along the axis.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let (axis, widths, shape): &(usize, Vec<usize>, Vec<usize>) = saved.get(name)?;
        let g = output_grad(name, output_grads, 0, shape)?;
        let mut start = 0;
        let inputs = widths
            .iter()
            .map(|&w| {
                let part = g
                    .slice_axis(Axis(*axis), (start..start + w).into())
                    .to_owned();
                start += w;
                Some(part)
            })
            .collect();
        Ok(Gradients {
            inputs,
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
    use ndarray::array;

    #[test]
    fn joins_along_time_or_features_with_keras_shapes() -> Result<()> {
        let a =
            ArrayD::from_shape_vec(ndarray::IxDyn(&[1, 2, 2]), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let b = ArrayD::from_shape_vec(ndarray::IxDyn(&[1, 1, 2]), vec![5.0, 6.0]).unwrap();
        let time = Concatenate::new().with_axis(1);
        let y = time.call(&[a.view(), b.view()], &mut CallContext::inference())?;
        // [[1, 2], [3, 4]] then [[5, 6]] along time.
        assert_eq!(y[0].shape(), &[1, 3, 2]);
        assert_eq!(y[0][[0, 2, 1]], 6.0);
        let err = Concatenate::new()
            .compute_output_shape(&[
                Shape::new(vec![None, Some(2), Some(2)]),
                Shape::new(vec![None, Some(3), Some(2)]),
            ])
            .unwrap_err();
        assert!(err
            .to_string()
            .contains("matching shapes except for the concatenation axis"));
        assert!(Concatenate::new()
            .with_axis(0)
            .compute_output_shape(&[Shape::new(vec![None, Some(2)])])
            .is_err());
        Ok(())
    }

    #[test]
    fn masks_follow_keras() -> Result<()> {
        let x = ArrayD::<f32>::zeros(ndarray::IxDyn(&[1, 3, 2]));
        let m = array![[true, false, true]];
        let cat = Concatenate::new();
        let mut ctx = CallContext::inference().with_masks(vec![Some(m.clone()), None]);
        cat.call(&[x.view(), x.view()], &mut ctx)?;
        // Features joined: a step is real where every masked input says so.
        assert_eq!(ctx.output_masks(&cat, 1)[0], Some(m.clone()));
        let time = Concatenate::new().with_axis(1);
        let mut ctx = CallContext::inference().with_masks(vec![Some(m), None]);
        time.call(&[x.view(), x.view()], &mut ctx)?;
        assert_eq!(
            ctx.output_masks(&time, 1)[0],
            Some(array![[true, false, true, true, true, true]])
        );
        Ok(())
    }
}
