//! Keras's `Reshape`: each sample given another shape with the same values.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::error::{Error, Result};
use crate::layer::{
    common_builders, layer_plumbing, output_grad, single_input, single_shape, weightless,
    CallContext, Gradients, InputDecl, Layer, LayerName, SavedForBackward,
};
use crate::limits;
use crate::shape::Shape;

/// Keras's `Reshape`: gives each sample the shape `target_shape`, keeping its values in
/// row-major order. One dimension may be −1, for whatever size makes the totals equal.
///
/// ```text
/// (batch, d1, d2, ...)  ->  (batch, *target_shape)        d1·d2·... = product of target_shape
/// ```
///
/// - Input: any shape. Output: `(batch, *target_shape)`, the −1 resolved when the input's
///   dimensions are known, `None` otherwise (as Keras).
/// - No weights. A mask stops here: Keras's `Reshape` does not support masking (Keras 3 warns
///   that it destroys the mask, tf_keras drops it silently).
///
/// ```
/// use seqnn::{Reshape, Sequential, Dense, LSTM};
/// // model.add(Dense(24, input_shape=(10,)))
/// // model.add(Reshape((-1, 4)))
/// // model.add(LSTM(3))
/// let mut model = Sequential::new();
/// model.add(Dense::new(24).input_shape((10,)))?;
/// model.add(Reshape::new([-1, 4]))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 6, 4)");
/// model.add(LSTM::new(3))?;
/// assert!(Sequential::new().add(Reshape::new([-1, -1]).input_shape((4,))).is_err());
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding, building or calling it fails with [`Error::InvalidArgument`], in Keras 3's words, for
/// a `target_shape` with a dimension below −1 or several −1, and for an input whose size the
/// target does not keep (the sizes differ, or the known dimensions do not divide it); with
/// [`Error::TooLarge`] when the output of one sample would exceed
/// [`MAX_TENSOR_ELEMENTS`](limits::MAX_TENSOR_ELEMENTS).
#[derive(Debug, Clone)]
pub struct Reshape {
    name: LayerName,
    input: InputDecl,
    target_shape: Vec<i64>,
    trainable: bool,
    built: bool,
}

impl Reshape {
    /// A layer reshaping each sample to `target_shape` (without the batch), as Keras's
    /// `Reshape(target_shape)`. A bad target is refused when the layer is added to a model or
    /// built (Keras refuses it at construction).
    pub fn new(target_shape: impl Into<Vec<i64>>) -> Self {
        Reshape {
            name: LayerName::new("reshape"),
            input: InputDecl::default(),
            target_shape: target_shape.into(),
            trainable: true,
            built: false,
        }
    }

    common_builders!("reshape");

    /// The shape of one output sample, as given, −1 included (Keras's `target_shape`).
    pub fn target_shape(&self) -> &[i64] {
        &self.target_shape
    }

    fn invalid(&self, message: String) -> Error {
        Error::InvalidArgument {
            layer: self.name.get().to_string(),
            message,
        }
    }

    /// Keras 3's `validate_reshape_shape`: every dimension ≥ −1, at most one −1.
    fn validate(&self) -> Result<()> {
        let target = py_tuple(&self.target_shape);
        if self.target_shape.iter().any(|&d| d < -1) {
            return Err(self.invalid(format!(
                "Each dimension in `target_shape` must be a non-negative integer, or `-1` for a \
                 single unknown dimension. Received: target_shape={target}."
            )));
        }
        if self.target_shape.iter().filter(|&&d| d == -1).count() > 1 {
            return Err(self.invalid(format!(
                "There must be at most one unknown dimension (-1) in `target_shape`. Received: \
                 target_shape={target}."
            )));
        }
        Ok(())
    }

    /// Keras 3's `compute_reshape_output_shape` for the dimensions of one sample: the target
    /// with its −1 resolved, or as `None` when some input dimension is unknown.
    fn resolve(&self, sample: &[Option<usize>]) -> Result<Vec<Option<usize>>> {
        self.validate()?;
        // A valid target has no dimension below −1, so the others convert to usize.
        let known = |d: i64| usize::try_from(d).ok();
        let Some(dims) = sample.iter().copied().collect::<Option<Vec<usize>>>() else {
            return Ok(self.target_shape.iter().map(|&d| known(d)).collect());
        };
        let size = limits::elements(&dims).ok_or_else(|| Error::TooLarge {
            layer: self.name.get().to_string(),
            message: format!("its input sample {} overflows", Shape::known(&dims)),
        })?;
        // The product of the target's known dimensions; `None` when it overflows, which makes
        // it larger than any input (Python's integers do not overflow).
        let product = self
            .target_shape
            .iter()
            .filter_map(|&d| known(d))
            .try_fold(1_usize, |acc, d| acc.checked_mul(d));
        let unknown = self.target_shape.iter().position(|&d| d == -1);
        let message = |detail: &str| {
            format!(
                "The total size of the tensor must be unchanged{detail}. Received: \
                 input_shape={}, target_shape={}",
                Shape::known(&dims),
                py_tuple(&self.target_shape)
            )
        };
        let mut out: Vec<Option<usize>> = self.target_shape.iter().map(|&d| known(d)).collect();
        match (unknown, product) {
            (None, Some(p)) if p == size => {}
            (None, _) => return Err(self.invalid(message(""))),
            (Some(i), Some(p)) if p != 0 && size % p == 0 => out[i] = Some(size / p),
            // Python: `input_size % known_output_size` is 0 for an empty input.
            (Some(i), None) if size == 0 => out[i] = Some(0),
            (Some(_), _) => {
                return Err(self.invalid(message(
                    ", however, the input size cannot by divided by the specified dimensions in \
                     target_shape",
                )))
            }
        }
        Ok(out)
    }
}

/// Integers as Python prints a tuple: `(3, -1)`, `(24,)`.
fn py_tuple(v: &[i64]) -> String {
    let items: Vec<String> = v.iter().map(ToString::to_string).collect();
    match items.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", items.join(", ")),
    }
}

impl Layer for Reshape {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        "Reshape"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.validate()?;
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        let input = single_shape(name, inputs)?;
        let sample = input.dims().get(1..).unwrap_or(&[]);
        let mut dims = vec![input.dims().first().copied().flatten()];
        dims.extend(self.resolve(sample)?);
        let out = Shape::new(dims);
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
        let shape = input.shape();
        let Some((&batch, sample)) = shape.split_first() else {
            return Err(Error::IncompatibleRank {
                layer: name.to_string(),
                expected: 1,
                found: 0,
                shape: Shape::known(shape),
            });
        };
        let sample: Vec<Option<usize>> = sample.iter().map(|&d| Some(d)).collect();
        let mut dims = vec![batch];
        dims.extend(
            self.resolve(&sample)?
                .into_iter()
                .map(|d| d.expect("a known input resolves every dimension")),
        );
        limits::check_dims(name, "output", &dims)?;
        if ctx.records() {
            ctx.save_for_backward(Box::new((shape.to_vec(), dims.clone())));
        }
        Ok(vec![input
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&dims))
            .expect("the sizes were checked equal")])
    }

    /// The gradient takes the input's shape back.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let (input, output): &(Vec<usize>, Vec<usize>) = saved.get(name)?;
        let g = output_grad(name, output_grads, 0, output)?;
        Ok(Gradients {
            inputs: vec![Some(
                g.into_shape_with_order(IxDyn(input))
                    .expect("the output holds the input's values"),
            )],
            weights: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{apply, apply_masked};
    use ndarray::array;

    fn out(target: &[i64], input: Vec<Option<usize>>) -> Result<String> {
        Ok(Reshape::new(target).compute_output_shape(&[Shape::new(input)])?[0].to_string())
    }

    #[test]
    fn shapes_resolve_minus_one_as_keras() -> Result<()> {
        assert_eq!(
            out(&[-1, 2], vec![None, Some(4), Some(6)])?,
            "(None, 12, 2)"
        ); // 24 / 2
        assert_eq!(out(&[24], vec![None, Some(4), Some(6)])?, "(None, 24)");
        assert_eq!(
            out(&[2, -1, 3], vec![Some(5), Some(4), Some(6)])?,
            "(5, 2, 4, 3)"
        );
        // An unknown input dimension leaves the −1 unknown.
        assert_eq!(out(&[-1, 3], vec![None, None, Some(6)])?, "(None, None, 3)");
        Ok(())
    }

    #[test]
    fn values_keep_their_row_major_order_and_the_mask_stops() -> Result<()> {
        let mut r = Reshape::new([3, 2]);
        r.build(&[Shape::new(vec![None, Some(2), Some(3)])])?;
        let x = array![[[1.0_f32, 2.0, 3.0], [4.0, 5.0, 6.0]]];
        let (y, masks) = apply_masked(
            &r,
            &[x.view().into_dyn()],
            Some(array![[true, false]].view()),
        )?;
        assert_eq!(
            y[0],
            array![[[1.0_f32, 2.0], [3.0, 4.0], [5.0, 6.0]]].into_dyn()
        );
        assert_eq!(masks, vec![None]);
        // A transposed view reshapes in its logical order.
        let t = x.view().permuted_axes([0, 2, 1]).into_dyn();
        let y = apply(&Reshape::new([6]), t)?;
        assert_eq!(y, array![[1.0_f32, 4.0, 2.0, 5.0, 3.0, 6.0]].into_dyn());
        Ok(())
    }

    #[test]
    fn bad_targets_and_sizes_are_refused_in_keras_words() {
        let err =
            |target: &[i64], input: Vec<Option<usize>>| out(target, input).unwrap_err().to_string();
        let s = || vec![None, Some(4), Some(6)];
        assert_eq!(
            err(&[-1, -1], s()),
            "layer \"reshape\": There must be at most one unknown dimension (-1) in \
             `target_shape`. Received: target_shape=(-1, -1)."
        );
        assert_eq!(
            err(&[-2, 3], s()),
            "layer \"reshape\": Each dimension in `target_shape` must be a non-negative integer, \
             or `-1` for a single unknown dimension. Received: target_shape=(-2, 3)."
        );
        assert_eq!(
            err(&[5, 5], s()),
            "layer \"reshape\": The total size of the tensor must be unchanged. Received: \
             input_shape=(4, 6), target_shape=(5, 5)"
        );
        assert_eq!(
            err(&[5, -1], s()),
            "layer \"reshape\": The total size of the tensor must be unchanged, however, the \
             input size cannot by divided by the specified dimensions in target_shape. Received: \
             input_shape=(4, 6), target_shape=(5, -1)"
        );
        assert!(err(&[0, -1], s()).contains("cannot by divided"));
        assert!(err(&[i64::MAX, i64::MAX, -1], s()).contains("cannot by divided"));
        // 10^6 · 10^6 per sample is refused before anything is allocated.
        let big = err(&[1_000_000, 1_000_000], vec![None, None, Some(6)]);
        assert!(
            big.contains("too large") && big.contains("1000000000000"),
            "{big}"
        );
        // A call checks the real input too.
        let r = Reshape::new([5, 5]);
        let x = ArrayD::<f32>::zeros(IxDyn(&[2, 4, 6]));
        assert!(matches!(
            apply(&r, x.view()),
            Err(Error::InvalidArgument { .. })
        ));
    }
}
