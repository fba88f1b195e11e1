//! Keras's `Dot`: the dot product of two tensors along an axis of each, per sample.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array3, ArrayD, ArrayViewD, Axis, IxDyn, Zip};

use crate::error::{Error, Result};
use crate::layer::{
    check_not_empty, layer_plumbing, output_grad, weightless, CallContext, Gradients, Layer,
    LayerName, SavedForBackward,
};
use crate::layers::permute::inverse_permutation;
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
/// - No weights, no mask (Keras's `Dot` returns none). Masks on the inputs do not change the
///   values, nor the gradients.
/// - The backward pass, each input taken per sample as a matrix of its other axes by its
///   contracted axis: `d x1 = g · x2ᵀ`, `d x2 = x1ᵀ · g`, then back through the normalization
///   with `normalize`.
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
/// range or the batch axis is refused, and a call with [`Error::EmptyInput`] for an input
/// with an empty axis.
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

/// The order of `n` axes that moves `axis` last (`last`) or right after the batch.
fn axis_order(n: usize, axis: usize, last: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).filter(|&a| a != axis).collect();
    if last {
        order.push(axis);
    } else {
        order.insert(1, axis);
    }
    order
}

/// `x` with `axis` moved last (`last`) or right after the batch, as a `(batch, rest, k)` or
/// `(batch, k, rest)` matrix per sample.
fn as_matrices(x: &ArrayViewD<'_, f32>, axis: usize, last: bool) -> Array3<f32> {
    let shape = x.shape();
    let (batch, k) = (shape[0], shape[axis]);
    let rest: usize = (1..shape.len())
        .filter(|&a| a != axis)
        .map(|a| shape[a])
        .product();
    let dims = if last {
        (batch, rest, k)
    } else {
        (batch, k, rest)
    };
    x.view()
        .permuted_axes(IxDyn(&axis_order(shape.len(), axis, last)))
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order(dims)
        .expect("the moved axes hold the input's elements")
}

/// The inverse of [`as_matrices`]: the gradient `g` of those matrices, in the layout of the
/// input of `shape`.
fn from_matrices(g: Array3<f32>, shape: &[usize], axis: usize, last: bool) -> ArrayD<f32> {
    let order = axis_order(shape.len(), axis, last);
    let moved: Vec<usize> = order.iter().map(|&a| shape[a]).collect();
    g.into_shape_with_order(IxDyn(&moved))
        .expect("the matrices hold the input's elements")
        .permuted_axes(IxDyn(&inverse_permutation(&order)))
        .as_standard_layout()
        .into_owned()
}

/// The lower bound of the squared norm in Keras's `l2_normalize`.
const EPSILON: f32 = 1e-12;

/// `1 / √max(s, ε)`, Keras's inverse norm of a vector whose squares sum to `s`.
fn inverse_norm(s: f32) -> f32 {
    1.0 / s.max(EPSILON).sqrt()
}

/// `m` divided by its L2 norm along `axis`, as Keras's `l2_normalize` (`x · rsqrt(max(Σ x²,
/// 1e-12))`), and the sums of squares, the axis kept (of size 1), which its gradient needs.
fn l2_normalize(m: Array3<f32>, axis: usize) -> (Array3<f32>, Array3<f32>) {
    let squares = m
        .mapv(|v| v * v)
        .sum_axis(Axis(axis))
        .insert_axis(Axis(axis));
    let mut n = m;
    n *= &squares.mapv(inverse_norm);
    (n, squares)
}

/// The gradient of [`l2_normalize`]'s input from `g`, its output's, given the output `n` and
/// the sums of squares: `inv · (g − n · Σ g·n)`, or `inv · g` where ε replaced the sum (the
/// norm is then a constant, as TensorFlow's gradient of `maximum` says).
fn l2_normalize_grad(
    g: Array3<f32>,
    n: &Array3<f32>,
    squares: &Array3<f32>,
    axis: usize,
) -> Array3<f32> {
    let mut along = (&g * n).sum_axis(Axis(axis)).insert_axis(Axis(axis));
    Zip::from(&mut along).and(squares).for_each(|d, &s| {
        if s < EPSILON {
            *d = 0.0;
        }
    });
    let mut dx = g - &(n * &along);
    dx *= &squares.mapv(inverse_norm);
    dx
}

/// What a training call of `Dot` keeps for its backward pass.
#[derive(Debug)]
struct DotSaved {
    /// The inputs as `(batch, R1, K)` and `(batch, K, R2)` matrices, normalized along `K` when
    /// the layer normalizes.
    m1: Array3<f32>,
    m2: Array3<f32>,
    /// With `normalize`, each input's sums of squares along `K`.
    squares: Option<(Array3<f32>, Array3<f32>)>,
    /// The inputs' shapes.
    shapes: [Vec<usize>; 2],
    /// The contracted axes, resolved.
    axes: (usize, usize),
    /// The output's shape.
    out: Vec<usize>,
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
        check_not_empty(name, x1.shape())?;
        check_not_empty(name, x2.shape())?;
        check_not_empty(name, &out_dims)?;
        limits::check_dims(name, "output", &out_dims)?;
        // (batch, R1, K) · (batch, K, R2), one product per sample.
        let (mut m1, mut m2) = (as_matrices(x1, a1, true), as_matrices(x2, a2, false));
        let mut squares = None;
        if self.normalize {
            let (n1, s1) = l2_normalize(m1, 2);
            let (n2, s2) = l2_normalize(m2, 1);
            (m1, m2, squares) = (n1, n2, Some((s1, s2)));
        }
        let mut y = Array3::<f32>::zeros((batch, m1.dim().1, m2.dim().2));
        for b in 0..batch {
            general_mat_mul(
                1.0,
                &m1.slice(s![b, .., ..]),
                &m2.slice(s![b, .., ..]),
                0.0,
                &mut y.slice_mut(s![b, .., ..]),
            );
        }
        let y = y
            .into_shape_with_order(IxDyn(&out_dims))
            .expect("batch·R1·R2 values fill the output shape");
        ctx.set_output_masks(vec![None]);
        if ctx.records() {
            ctx.save_for_backward(Box::new(DotSaved {
                m1,
                m2,
                squares,
                shapes: [x1.shape().to_vec(), x2.shape().to_vec()],
                axes: (a1, a2),
                out: out_dims,
            }));
        }
        Ok(vec![y])
    }

    /// Per sample, `d m1 = g · m2ᵀ` and `d m2 = m1ᵀ · g`, then back through the
    /// normalization (when the layer normalizes) to each input's layout.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let saved: &DotSaved = saved.get(name)?;
        let g = output_grad(name, output_grads, 0, &saved.out)?;
        let (batch, r1, k) = saved.m1.dim();
        let r2 = saved.m2.dim().2;
        let g = g
            .into_shape_with_order((batch, r1, r2))
            .expect("the output holds batch·R1·R2 values");
        let mut d1 = Array3::<f32>::zeros((batch, r1, k));
        let mut d2 = Array3::<f32>::zeros((batch, k, r2));
        for b in 0..batch {
            let gb = g.slice(s![b, .., ..]);
            general_mat_mul(
                1.0,
                &gb,
                &saved.m2.slice(s![b, .., ..]).t(),
                0.0,
                &mut d1.slice_mut(s![b, .., ..]),
            );
            general_mat_mul(
                1.0,
                &saved.m1.slice(s![b, .., ..]).t(),
                &gb,
                0.0,
                &mut d2.slice_mut(s![b, .., ..]),
            );
        }
        if let Some((s1, s2)) = &saved.squares {
            d1 = l2_normalize_grad(d1, &saved.m1, s1, 2);
            d2 = l2_normalize_grad(d2, &saved.m2, s2, 1);
        }
        let (a1, a2) = saved.axes;
        Ok(Gradients {
            inputs: vec![
                Some(from_matrices(d1, &saved.shapes[0], a1, true)),
                Some(from_matrices(d2, &saved.shapes[1], a2, false)),
            ],
            weights: Vec::new(),
        })
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
    fn gradients_by_hand() -> Result<()> {
        // y = x1 · x2 over axis 1, upstream 1: d x1 = x2, d x2 = x1.
        let (a, b) = (
            array![[3.0_f32, 4.0]].into_dyn(),
            array![[4.0_f32, 3.0]].into_dyn(),
        );
        let ones = array![[1.0_f32]].into_dyn();
        let grads = |dot: Dot| -> Result<Vec<ArrayD<f32>>> {
            let mut ctx = CallContext::training();
            dot.call(&[a.view(), b.view()], &mut ctx)?;
            let saved = ctx.take_saved().expect("a record");
            let g = dot.backward(&saved, &[Some(ones.view())])?;
            Ok(g.inputs.into_iter().map(|g| g.expect("float")).collect())
        };
        let g = grads(Dot::new(1))?;
        assert_eq!((&g[0], &g[1]), (&b, &a));
        // normalize: y = n1 · n2 with n = x / |x|, |x| = 5, n1 = [0.6, 0.8], n2 = [0.8, 0.6],
        // y = 0.96; d x1 = (n2 − n1 · y) / |x1| = ([0.8, 0.6] − [0.576, 0.768]) / 5
        // = [0.0448, −0.0336], and symmetrically d x2 = [−0.0336, 0.0448].
        let g = grads(Dot::new(1).with_normalize(true))?;
        for (ours, want) in g[0]
            .iter()
            .chain(&g[1])
            .zip([0.0448, -0.0336, -0.0336, 0.0448])
        {
            assert!((ours - want).abs() < 1e-6, "{ours} vs {want}");
        }
        Ok(())
    }

    #[test]
    fn empty_contracted_axes_are_refused() {
        let x = ArrayD::<f32>::zeros(IxDyn(&[2, 0]));
        assert!(matches!(
            Dot::new(1).call(&[x.view(), x.view()], &mut CallContext::inference()),
            Err(Error::EmptyInput { .. })
        ));
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
