//! Keras's `Dot`: the dot product of two tensors along an axis of each, per sample.

use ndarray::{s, ArrayD, ArrayViewD, Axis, Ix3, IxDyn};

use crate::error::{Error, Result};
use crate::layer::{check_not_empty, layer_plumbing, weightless, CallContext, Layer, LayerName};
use crate::limits;
use crate::shape::Shape;

/// Keras's `Dot(axes, normalize=False)`: for each sample, the sum over one axis of the first
/// input and one axis of the second of their products (Keras's `batch_dot`).
///
/// ```text
/// y[b, i…, j…] = Σ_k x1[b, i…, k, …] · x2[b, j…, k, …]     (k on axes[0] of x1, axes[1] of x2)
/// normalize: each input is first divided by its L2 norm along its axis
/// ```
///
/// - Inputs: exactly two tensors, of any rank from 2; the sizes on the two axes agree.
/// - Output: the first input's shape without its axis, then the second's without the batch
///   and its axis; `(batch, 1)` when nothing else is left.
/// - No weights, no mask (Keras's `Dot` returns none).
///
/// ```
/// use ndarray::array;
/// use seqnn::{CallContext, Dot, Layer, Shape};
/// let mut dot = Dot::new(1);
/// let s = Shape::new(vec![None, Some(3)]);
/// assert_eq!(dot.build(&[s.clone(), s])?[0].to_string(), "(None, 1)");
/// let (a, b) = (array![[1.0_f32, 2.0, 3.0]].into_dyn(), array![[4.0_f32, 5.0, 6.0]].into_dyn());
/// let y = dot.call(&[a.view(), b.view()], &mut CallContext::inference())?;
/// assert_eq!(y[0], array![[32.0_f32]].into_dyn()); // 4 + 10 + 18
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Keras's errors for other than two inputs and for axes whose sizes differ; an axis out of
/// range or the batch axis is refused.
#[derive(Debug, Clone)]
pub struct Dot {
    name: LayerName,
    axes: (isize, isize),
    normalize: bool,
    trainable: bool,
    built: bool,
}

impl Dot {
    /// The product along axis `axes` of both inputs, as Keras's `Dot(axes=n)`.
    pub fn new(axes: isize) -> Self {
        Self::with_axes_pair(axes, axes)
    }

    /// The product along `a` of the first input and `b` of the second, as Keras's
    /// `Dot(axes=(a, b))`.
    pub fn with_axes_pair(a: isize, b: isize) -> Self {
        Dot {
            name: LayerName::new("dot"),
            axes: (a, b),
            normalize: false,
            trainable: true,
            built: false,
        }
    }

    /// Keras's `normalize`: L2-normalize each input along its axis first, which makes the
    /// product a cosine similarity. Default false.
    #[must_use]
    pub fn with_normalize(mut self, yes: bool) -> Self {
        self.normalize = yes;
        self
    }

    /// Keras's `name`. Without it, the layer is named when it is first used.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name.set(name.into());
        self
    }

    /// The axes, of the first input and of the second, as given.
    pub fn axes(&self) -> (isize, isize) {
        self.axes
    }

    /// Whether the inputs are L2-normalized first.
    pub fn normalize(&self) -> bool {
        self.normalize
    }

    /// The two axes as indices, as Keras's `Dot` resolves negative ones.
    fn resolve(&self, r1: usize, r2: usize) -> Result<(usize, usize)> {
        let norm = |a: isize, r: usize| -> Option<usize> {
            let a = if a < 0 { a.rem_euclid(r as isize) } else { a };
            (a > 0 && (a as usize) < r).then_some(a as usize)
        };
        match (norm(self.axes.0, r1), norm(self.axes.1, r2)) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: format!(
                    "axes={:?} are out of range for inputs of ranks {r1} and {r2} (the batch axis \
                     0 cannot be contracted)",
                    self.axes
                ),
            }),
        }
    }

    fn two<'a, T>(&self, inputs: &'a [T]) -> Result<(&'a T, &'a T)> {
        match inputs {
            [a, b] => Ok((a, b)),
            _ => Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: format!(
                    "A `Dot` layer should be called on a list of 2 inputs. Received: {} inputs.",
                    inputs.len()
                ),
            }),
        }
    }
}

/// `x` with `axis` moved last (`last`) or right after the batch, as a standard-layout array.
fn move_axis(x: &ArrayViewD<'_, f32>, axis: usize, last: bool) -> ArrayD<f32> {
    let n = x.ndim();
    let mut order: Vec<usize> = (0..n).filter(|&a| a != axis).collect();
    if last {
        order.push(axis);
    } else {
        order.insert(1, axis);
    }
    x.view()
        .permuted_axes(IxDyn(&order))
        .as_standard_layout()
        .into_owned()
}

/// `x` divided by its L2 norm along `axis`, as Keras's `l2_normalize` (epsilon 1e-12).
fn l2_normalize(x: &ArrayViewD<'_, f32>, axis: usize) -> ArrayD<f32> {
    let sq = x
        .mapv(|v| v * v)
        .sum_axis(Axis(axis))
        .insert_axis(Axis(axis));
    let inv = sq.mapv(|s| 1.0 / s.max(1e-12).sqrt());
    let mut y = x.to_owned();
    y *= &inv;
    y
}

impl Layer for Dot {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        "Dot"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        Ok(None)
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let (s1, s2) = self.two(inputs)?;
        let (a1, a2) = self.resolve(s1.rank(), s2.rank())?;
        if let (Some(d1), Some(d2)) = (s1.dim(a1), s2.dim(a2)) {
            if d1 != d2 {
                return Err(Error::InvalidArgument {
                    layer: self.name.get().to_string(),
                    message: format!(
                        "Incompatible input shapes: axis values {d1} (at axis {a1}) != {d2} (at \
                         axis {a2}). Full input shapes: {s1}, {s2}"
                    ),
                });
            }
        }
        let mut out: Vec<Option<usize>> = s1.dims().to_vec();
        out.remove(a1);
        let mut rest2 = s2.dims().to_vec();
        rest2.remove(a2);
        out.extend(rest2.into_iter().skip(1));
        if out.len() == 1 {
            out.push(Some(1));
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
        let name = self.name.get();
        let (x1, x2) = self.two(inputs)?;
        let shapes = [Shape::known(x1.shape()), Shape::known(x2.shape())];
        let out = self.compute_output_shape(&shapes)?.remove(0);
        let (a1, a2) = self.resolve(x1.ndim(), x2.ndim())?;
        let batch = x1.shape()[0];
        if x2.shape()[0] != batch {
            return Err(Error::InvalidArgument {
                layer: name.to_string(),
                message: format!(
                    "the inputs have different batch sizes: {} and {}",
                    shapes[0], shapes[1]
                ),
            });
        }
        let out_dims: Vec<usize> = out.dims().iter().map(|d| d.unwrap_or(batch)).collect();
        check_not_empty(name, &out_dims)?;
        limits::check_dims(name, "output", &out_dims)?;
        let (n1, n2) = if self.normalize {
            (l2_normalize(x1, a1), l2_normalize(x2, a2))
        } else {
            (x1.to_owned(), x2.to_owned())
        };
        // (batch, R1, K) · (batch, K, R2), one product per sample.
        let k = x1.shape()[a1];
        let p1 = move_axis(&n1.view(), a1, true);
        let p2 = move_axis(&n2.view(), a2, false);
        let r1 = p1.len() / (batch * k).max(1);
        let r2 = p2.len() / (batch * k).max(1);
        let m1 = p1
            .into_shape_with_order((batch, r1, k))
            .expect("a standard-layout array reshapes");
        let m2 = p2
            .into_shape_with_order((batch, k, r2))
            .expect("a standard-layout array reshapes");
        let mut y = ndarray::Array3::<f32>::zeros((batch, r1, r2));
        for b in 0..batch {
            ndarray::linalg::general_mat_mul(
                1.0,
                &m1.slice(s![b, .., ..]),
                &m2.slice(s![b, .., ..]),
                0.0,
                &mut y.slice_mut(s![b, .., ..]),
            );
        }
        let y = y
            .into_dimensionality::<Ix3>()
            .expect("3-D")
            .into_shape_with_order(IxDyn(&out_dims))
            .expect("batch·R1·R2 values fill the output shape");
        ctx.set_output_masks(vec![None]);
        Ok(vec![y])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn sequences_contracted_on_features_give_a_score_matrix() -> Result<()> {
        // x1 (1, 2, 2) rows [1, 0], [0, 2]; x2 (1, 3, 2) rows [1, 1], [2, 0], [0, 3]
        // axes (2, 2): y[0, i, j] = x1_i · x2_j = [[1, 2, 0], [2, 0, 6]]
        let x1 = ArrayD::from_shape_vec(IxDyn(&[1, 2, 2]), vec![1.0, 0.0, 0.0, 2.0]).unwrap();
        let x2 =
            ArrayD::from_shape_vec(IxDyn(&[1, 3, 2]), vec![1.0, 1.0, 2.0, 0.0, 0.0, 3.0]).unwrap();
        let dot = Dot::new(2);
        let y = dot.call(&[x1.view(), x2.view()], &mut CallContext::inference())?;
        assert_eq!(
            y[0],
            array![[[1.0_f32, 2.0, 0.0], [2.0, 0.0, 6.0]]].into_dyn()
        );
        // normalize: [3, 4]·[4, 3] / (5·5) = 24/25
        let (a, b) = (
            array![[3.0_f32, 4.0]].into_dyn(),
            array![[4.0_f32, 3.0]].into_dyn(),
        );
        let y = Dot::new(1)
            .with_normalize(true)
            .call(&[a.view(), b.view()], &mut CallContext::inference())?;
        assert!((y[0][[0, 0]] - 0.96).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn mismatched_axes_are_keras_errors() {
        let err = Dot::new(1)
            .compute_output_shape(&[
                Shape::new(vec![None, Some(3)]),
                Shape::new(vec![None, Some(4)]),
            ])
            .unwrap_err();
        assert!(err
            .to_string()
            .contains("Incompatible input shapes: axis values 3 (at axis 1) != 4 (at axis 1)"));
    }
}
