//! Keras's `LayerNormalization`: each sample normalized over its own mean and variance.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::error::{Error, Result};
use crate::layer::{
    check_specs, check_weights, common_builders, layer_plumbing, no_weights, output_grad,
    single_input, single_shape, CallContext, Gradients, InputDecl, Layer, LayerName, MaskPolicy,
    SavedForBackward, WeightSpec,
};
use crate::layers::batch_normalization::{check_built, epsilon_center_scale, resolve_axis};
use crate::limits;
use crate::linalg::norm::{normalize_rows, normalize_rows_backward, RowNorm};
use crate::shape::Shape;

/// Keras's `LayerNormalization`: every group of values that shares its indices outside `axis`
/// (one sample's features, by default) is normalized over its own mean and variance.
///
/// ```text
/// mean, var = the mean and the biased variance over the axes
/// inv       = gamma / sqrt(var + epsilon)
/// y         = x · inv + (beta − mean · inv)
/// ```
///
/// (`gamma` 1 without `scale`, `beta` 0 without `center`.) With Keras 3's deprecated
/// `rms_scaling`, `y = x / sqrt(var + epsilon) · gamma`: not centered, and by the variance, not
/// the mean square, as Keras 3.15's `ops.layer_normalization`. tf_keras 2.21 and Keras 3.15 agree
/// otherwise (`tf.nn.moments`, then `tf.nn.batch_normalization`; tf_keras's fused kernel, which
/// it picks for trailing axes and `epsilon` ≥ 1.001e-5, differs only in rounding).
///
/// - Input: any shape whose dimensions along `axis` are known. Output: the same shape.
/// - Weights, in Keras's order: `gamma` (with `scale` or `rms_scaling`), `beta` (with `center`,
///   not with `rms_scaling`). Their shape is the input's dimensions along the axes, in the order
///   the axes are listed (negative ones counted from the end); their values, read in row-major
///   order, go to the axes in increasing order, as both Kerases reshape them. Keras 3 sorts the
///   list first (its configs are sorted), tf_keras keeps it as given.
/// - Mask: passed on unchanged (Keras's `supports_masking`); masked steps are normalized too.
/// - Training: the same in both modes. The backward pass gives the gradients of the input
///   (through each group's mean and variance), of `gamma` and of `beta`, for every axis option.
///
/// Options, with Keras's defaults: `axis` −1, `epsilon` 1e-3, `center` and `scale` true,
/// `rms_scaling` false; the weights start as `gamma` 1, `beta` 0.
///
/// ```
/// use seqnn::{LayerNormalization, Sequential, GRU};
/// // model.add(GRU(6, return_sequences=True, input_shape=(10, 3)))
/// // model.add(LayerNormalization())
/// let mut model = Sequential::new();
/// model.add(GRU::new(6).with_return_sequences(true).input_shape((10, 3)))?;
/// model.add(LayerNormalization::new())?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 10, 6)");
/// assert_eq!(model.layers()[1].count_params(), 12); // gamma and beta, 6 each
/// // Over the timesteps and the features together:
/// let ln = LayerNormalization::new().with_axes([1, 2]);
/// assert_eq!(ln.axis(), &[1, 2]);
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding or building it fails with [`Error::InvalidArgument`] for an axis outside the input's
/// rank (Keras 3's message), an axis listed twice or one whose dimension is unknown (tf_keras's
/// messages); a built layer refuses another rank ([`Error::IncompatibleRank`]) or other
/// dimensions along the axes ([`Error::IncompatibleShape`]).
#[derive(Debug, Clone)]
pub struct LayerNormalization {
    name: LayerName,
    /// Keras's regularizers and constraints of the weights, and the activity regularizer.
    rules: crate::train::WeightRules,
    input: InputDecl,
    axis: Vec<isize>,
    epsilon: f32,
    center: bool,
    scale: bool,
    rms_scaling: bool,
    trainable: bool,
    /// The shapes the layer was built for.
    built: Option<Built>,
    /// `gamma` and `beta`, once the layer has weights.
    values: Option<Box<GammaBeta>>,
}

/// `gamma` and `beta`, each only if the layer has it.
type GammaBeta = (Option<ArrayD<f32>>, Option<ArrayD<f32>>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Built {
    rank: usize,
    /// The axes resolved, in the order listed: the weights' axes.
    axes: Vec<usize>,
    /// The input's dimensions along `axes`: the weights' shape.
    dims: Vec<usize>,
}

impl Built {
    /// The axes in increasing order.
    fn sorted(&self) -> Vec<usize> {
        let mut s = self.axes.clone();
        s.sort_unstable();
        s
    }
}

impl Default for LayerNormalization {
    /// Keras's `LayerNormalization()`.
    fn default() -> Self {
        Self::new()
    }
}

impl LayerNormalization {
    /// A LayerNormalization over the last axis with Keras's defaults, as Keras's
    /// `LayerNormalization()`.
    pub fn new() -> Self {
        LayerNormalization {
            name: LayerName::new("layer_normalization"),
            rules: crate::train::WeightRules::new(),
            input: InputDecl::default(),
            axis: vec![-1],
            epsilon: 1e-3,
            center: true,
            scale: true,
            rms_scaling: false,
            trainable: true,
            built: None,
            values: None,
        }
    }

    /// Keras's `axis` as one integer: the axis normalized over, negative from the end.
    /// Default −1.
    #[must_use]
    pub fn with_axis(mut self, axis: isize) -> Self {
        self.axis = vec![axis];
        self
    }

    /// Keras's `axis` as a list: the axes normalized over together; their order is the weights'
    /// (see the type's docs).
    #[must_use]
    pub fn with_axes(mut self, axes: impl Into<Vec<isize>>) -> Self {
        self.axis = axes.into();
        self
    }

    epsilon_center_scale!();

    /// Keras 3's deprecated `rms_scaling`: scale by `1/sqrt(var + epsilon)` without centering,
    /// with a `gamma` and no `beta`. Default false. tf_keras has no such option.
    #[must_use]
    pub fn with_rms_scaling(mut self, yes: bool) -> Self {
        self.rms_scaling = yes;
        self
    }

    common_builders!("layer_normalization");

    crate::layer::rule_builders! {
        "beta", "the offset beta" => with_beta_regularizer, with_beta_constraint;
        "gamma", "the scale gamma" => with_gamma_regularizer, with_gamma_constraint;
    }

    /// The axes normalized over, as given (Keras's `axis`, as a list).
    pub fn axis(&self) -> &[isize] {
        &self.axis
    }

    /// Whether the layer uses Keras 3's `rms_scaling`.
    pub fn rms_scaling(&self) -> bool {
        self.rms_scaling
    }

    fn has_gamma(&self) -> bool {
        self.scale || self.rms_scaling
    }

    fn has_beta(&self) -> bool {
        self.center && !self.rms_scaling
    }

    /// The kernels' parameters, for the weights `gamma` and `beta`.
    fn row_norm<'a>(
        &self,
        gamma: &'a Option<ArrayD<f32>>,
        beta: &'a Option<ArrayD<f32>>,
    ) -> RowNorm<'a> {
        RowNorm {
            epsilon: self.epsilon,
            gamma: gamma.as_ref().and_then(|g| g.as_slice()),
            beta: beta.as_ref().and_then(|b| b.as_slice()),
            rms_scaling: self.rms_scaling,
        }
    }

    /// The axis list as Keras 3 must be given it for the same weights: Keras 3 sorts the list
    /// before it shapes the weights, so the list must already be sorted. For a built layer
    /// whose list is not, the same axes written with a sign chosen per axis may be (`[2, 1]`
    /// of rank 3 as `[-1, 1]`); `None` when no such list exists.
    pub(crate) fn keras3_axis(&self) -> Option<Vec<isize>> {
        if self.axis.is_sorted() {
            return Some(self.axis.clone());
        }
        let b = self.built.as_ref()?;
        let rank = isize::try_from(b.rank).ok()?;
        let mut out: Vec<isize> = Vec::with_capacity(b.axes.len());
        for &a in &b.axes {
            let a = a as isize;
            let next = [a - rank, a]
                .into_iter()
                .find(|c| out.last().is_none_or(|p| c > p))?;
            out.push(next);
        }
        Some(out)
    }

    /// The axes of an input shape and the weights' shape, checked as Keras checks them.
    fn resolve(&self, input: &Shape) -> Result<Built> {
        let name = self.name.get();
        let invalid = |message: String| Error::InvalidArgument {
            layer: name.to_string(),
            message,
        };
        let rank = input.rank();
        let mut axes = Vec::with_capacity(self.axis.len());
        for &a in &self.axis {
            // Keras 3's `compute_output_shape` (its `build` fails with an IndexError).
            let r = resolve_axis(a, rank).ok_or_else(|| {
                invalid(format!(
                    "Axis {a} is out of bounds for input shape {input}. Received: axis={}",
                    py_list(&self.axis)
                ))
            })?;
            axes.push(r);
        }
        let mut sorted = axes.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            // tf_keras's `validate_axis`.
            return Err(invalid(format!("Duplicate axis: {}", py_tuple(&axes))));
        }
        let dims = axes
            .iter()
            .map(|&a| input.dim(a))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| {
                invalid(format!(
                    "Input has undefined `axis` dimension. Received input with shape {input} \
                     and axis={}",
                    py_tuple(&axes)
                ))
            })?;
        if let Some(b) = &self.built {
            let fixed: Vec<(usize, usize)> =
                b.axes.iter().copied().zip(b.dims.iter().copied()).collect();
            check_built(name, b.rank, &fixed, input)?;
        }
        Ok(Built { rank, axes, dims })
    }

    /// Whether the axes are the last ones of `b`'s rank, so that each group is a contiguous
    /// row of a standard-layout input.
    fn trailing(b: &Built) -> bool {
        let sorted = b.sorted();
        sorted
            .iter()
            .enumerate()
            .all(|(i, &a)| a == b.rank - sorted.len() + i)
    }
}

/// The axes of `b`'s rank reordered so that the normalized ones come last, in increasing order.
fn row_order(b: &Built) -> Vec<usize> {
    let sorted = b.sorted();
    let mut order: Vec<usize> = (0..b.rank).filter(|a| !sorted.contains(a)).collect();
    order.extend(&sorted);
    order
}

/// The permutation that undoes `order`.
fn inverse(order: &[usize]) -> Vec<usize> {
    let mut back = vec![0; order.len()];
    for (i, &a) in order.iter().enumerate() {
        back[a] = i;
    }
    back
}

/// What a recording call of a LayerNormalization keeps: its input with the normalized axes
/// moved last (as rows), each row's mean and `rsqrt(var + epsilon)`, and the move (`None` when
/// the axes were the last ones already).
#[derive(Debug)]
struct LayerNormSaved {
    x: ArrayD<f32>,
    stats: Vec<(f32, f32)>,
    order: Option<Vec<usize>>,
}

/// Integers as Python prints a list: `[1, -1]`.
fn py_list(v: &[isize]) -> String {
    let items: Vec<String> = v.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// Integers as Python prints a tuple: `(1, 2)`, `(2,)`.
fn py_tuple(v: &[usize]) -> String {
    Shape::known(v).to_string()
}

impl Layer for LayerNormalization {
    layer_plumbing!();
    crate::layer::rule_methods!();

    fn class_name(&self) -> &'static str {
        "LayerNormalization"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        let input = single_shape(name, inputs)?;
        let b = self.resolve(input)?;
        let mut specs: Vec<(&str, &[usize])> = Vec::with_capacity(2);
        if self.has_gamma() {
            specs.push(("gamma", &b.dims));
        }
        if self.has_beta() {
            specs.push(("beta", &b.dims));
        }
        check_specs(name, &specs)?;
        limits::check_tensor(name, "output", input)?;
        Ok(vec![input.clone()])
    }

    fn build(&mut self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let out = self.compute_output_shape(inputs)?;
        if self.built.is_none() {
            self.built = Some(self.resolve(&inputs[0])?);
        }
        Ok(out)
    }

    fn is_built(&self) -> bool {
        self.built.is_some()
    }

    fn weight_specs(&self) -> Vec<WeightSpec> {
        let Some(b) = &self.built else {
            return Vec::new();
        };
        let mut w = Vec::with_capacity(2);
        if self.has_gamma() {
            w.push(WeightSpec::new("gamma", b.dims.clone()));
        }
        if self.has_beta() {
            w.push(WeightSpec::new("beta", b.dims.clone()));
        }
        w
    }

    fn initialize(&mut self) {
        let Some(b) = &self.built else {
            return;
        };
        // Keras's initializers: gamma ones, beta zeros.
        let gamma = self.has_gamma().then(|| ArrayD::ones(IxDyn(&b.dims)));
        let beta = self.has_beta().then(|| ArrayD::zeros(IxDyn(&b.dims)));
        self.values = Some(Box::new((gamma, beta)));
    }

    fn weights(&self) -> Vec<ArrayViewD<'_, f32>> {
        let Some((gamma, beta)) = self.values.as_deref() else {
            return Vec::new();
        };
        gamma.iter().chain(beta).map(|w| w.view()).collect()
    }

    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        if !self.is_built() {
            return Err(no_weights(self.name.get()));
        }
        check_weights(self.name.get(), &self.weight_specs(), weights)?;
        let mut w = weights.iter().map(|a| a.as_standard_layout().into_owned());
        let gamma = if self.has_gamma() { w.next() } else { None };
        let beta = if self.has_beta() { w.next() } else { None };
        self.values = Some(Box::new((gamma, beta)));
        Ok(())
    }

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let name = self.name.get();
        let input = single_input(name, inputs)?;
        let (Some(_), Some((gamma, beta))) = (&self.built, self.values.as_deref()) else {
            return Err(no_weights(name));
        };
        let b = self.resolve(&Shape::known(input.shape()))?;
        limits::check_dims(name, "output", input.shape())?;
        let p = self.row_norm(gamma, beta);
        let n: usize = b.dims.iter().product();
        // The normalized axes moved last (in increasing order, the weights' layout), so that
        // each group is a row; trailing axes need no move.
        let order = (!Self::trailing(&b)).then(|| row_order(&b));
        let mut y = match &order {
            Some(o) => input
                .view()
                .permuted_axes(IxDyn(o))
                .as_standard_layout()
                .into_owned(),
            None => input.as_standard_layout().into_owned(),
        };
        let mut stats = ctx.records().then(Vec::new);
        let x = stats.is_some().then(|| y.clone());
        normalize_rows(
            y.as_slice_mut()
                .expect("an owned standard-layout array is contiguous"),
            n,
            p,
            stats.as_mut(),
        );
        if let (Some(x), Some(stats)) = (x, stats) {
            ctx.save_for_backward(Box::new(LayerNormSaved {
                x,
                stats,
                order: order.clone(),
            }));
        }
        Ok(vec![match order {
            Some(o) => y
                .permuted_axes(IxDyn(&inverse(&o)))
                .as_standard_layout()
                .into_owned(),
            None => y,
        }])
    }

    /// The gradients of the input, `gamma` and `beta`, through each group's own mean and
    /// variance (`normalize_rows_backward`).
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let saved: &LayerNormSaved = saved.get(name)?;
        let (Some(b), Some((gamma, beta))) = (&self.built, self.values.as_deref()) else {
            return Err(no_weights(name));
        };
        let back = saved.order.as_deref().map(inverse);
        // The input's shape, from the rows' shape.
        let shape: Vec<usize> = match &back {
            Some(bk) => bk.iter().map(|&a| saved.x.shape()[a]).collect(),
            None => saved.x.shape().to_vec(),
        };
        let g = output_grad(name, output_grads, 0, &shape)?;
        let mut g = match &saved.order {
            Some(o) => g.permuted_axes(IxDyn(o)).as_standard_layout().into_owned(),
            None => g,
        };
        let n: usize = b.dims.iter().product();
        let mut d_gamma = gamma.as_ref().map(|_| vec![0.0_f32; n]);
        let mut d_beta = beta.as_ref().map(|_| vec![0.0_f32; n]);
        normalize_rows_backward(
            saved.x.as_slice().expect("kept in standard layout"),
            &saved.stats,
            n,
            self.row_norm(gamma, beta),
            g.as_slice_mut().expect("standard layout"),
            d_gamma.as_deref_mut(),
            d_beta.as_deref_mut(),
        );
        let dx = match back {
            Some(bk) => g
                .permuted_axes(IxDyn(&bk))
                .as_standard_layout()
                .into_owned(),
            None => g,
        };
        // The weights' values are the sorted axes' in row-major order, in the listed shape.
        let weights = d_gamma
            .into_iter()
            .chain(d_beta)
            .map(|d| ArrayD::from_shape_vec(IxDyn(&b.dims), d).expect("one value per position"))
            .collect();
        Ok(Gradients {
            inputs: vec![Some(dx)],
            weights,
        })
    }

    fn mask_policy(&self) -> MaskPolicy {
        MaskPolicy::Propagate
    }

    fn working_elements(&self, inputs: &[Shape]) -> usize {
        // Axes that are not the last ones are normalized in a transposed copy.
        match (inputs, &self.built) {
            ([input], Some(b)) if !Self::trailing(b) => {
                limits::known_elements(input).unwrap_or(usize::MAX)
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{apply, apply_masked};
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    #[test]
    fn last_axis_by_hand() -> Result<()> {
        let mut ln = LayerNormalization::new().with_epsilon(0.0);
        ln.build(&[Shape::new(vec![None, Some(2)])])?;
        ln.set_weights(&[
            array![2.0_f32, 1.0].into_dyn(),
            array![0.0_f32, 5.0].into_dyn(),
        ])?;
        let y = apply(&ln, array![[1.0_f32, 3.0], [4.0, 0.0]].into_dyn().view())?;
        // [1, 3]: mean 2, var 1 -> [−1, 1] · [2, 1] + [0, 5] = [−2, 6]
        // [4, 0]: mean 2, var 4 -> [1, −1] · [2, 1] + [0, 5] = [2, 4]
        assert_abs_diff_eq!(y[[0, 0]], -2.0, epsilon = 1e-6);
        assert_abs_diff_eq!(y[[0, 1]], 6.0, epsilon = 1e-6);
        assert_abs_diff_eq!(y[[1, 0]], 2.0, epsilon = 1e-6);
        assert_abs_diff_eq!(y[[1, 1]], 4.0, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn the_time_axis_normalizes_each_feature_over_time_and_keeps_the_mask() -> Result<()> {
        let mut ln = LayerNormalization::new()
            .with_axis(1)
            .with_center(false)
            .with_scale(false)
            .with_epsilon(0.0);
        ln.build(&[Shape::new(vec![None, Some(2), Some(2)])])?;
        assert_eq!(ln.count_params(), 0);
        ln.set_weights(&[])?;
        let x = array![[[1.0_f32, 10.0], [3.0, 10.0]]];
        let mask = array![[true, false]];
        let (y, masks) = apply_masked(&ln, &[x.view().into_dyn()], Some(mask.view()))?;
        // feature 0 over time: [1, 3] -> [−1, 1]; feature 1: [10, 10], var 0 -> 0/√0 = NaN in
        // Keras too with epsilon 0; here only feature 0 is checked.
        assert_abs_diff_eq!(y[0][[0, 0, 0]], -1.0, epsilon = 1e-6);
        assert_abs_diff_eq!(y[0][[0, 1, 0]], 1.0, epsilon = 1e-6);
        assert_eq!(masks[0], Some(mask));
        Ok(())
    }

    #[test]
    fn weights_follow_the_listed_order_and_fill_the_sorted_axes() -> Result<()> {
        // axis [2, 1] of (None, 1, 2): gamma has shape (2, 1) (features, then time), and its
        // values in row-major order go to (time, features): gamma[f, 0] scales feature f.
        let mut ln = LayerNormalization::new()
            .with_axes([2, 1])
            .with_center(false)
            .with_epsilon(0.0);
        ln.build(&[Shape::new(vec![None, Some(1), Some(2)])])?;
        assert_eq!(ln.weight_specs()[0].shape, vec![2, 1]);
        ln.set_weights(&[array![[3.0_f32], [5.0]].into_dyn()])?;
        // [1, 3] over both axes: mean 2, var 1 -> [−1, 1] · [3, 5] = [−3, 5]
        let y = apply(&ln, array![[[1.0_f32, 3.0]]].into_dyn().view())?;
        assert_abs_diff_eq!(y[[0, 0, 0]], -3.0, epsilon = 1e-6);
        assert_abs_diff_eq!(y[[0, 0, 1]], 5.0, epsilon = 1e-6);
        // Keras 3 sorts the list first: [2, 1] is written [-1, 1] so that it keeps this order.
        assert_eq!(ln.keras3_axis(), Some(vec![-1, 1]));
        assert_eq!(
            LayerNormalization::new().with_axes([2, 1]).keras3_axis(),
            None
        );
        Ok(())
    }

    #[test]
    fn rms_scaling_has_gamma_only_and_does_not_center() -> Result<()> {
        let mut ln = LayerNormalization::new()
            .with_rms_scaling(true)
            .with_epsilon(0.0);
        ln.build(&[Shape::new(vec![None, Some(2)])])?;
        let names: Vec<String> = ln.weight_specs().into_iter().map(|w| w.name).collect();
        assert_eq!(names, ["gamma"]);
        ln.initialize();
        // [1, 3]: var 1 -> [1, 3] / √1 · 1 = [1, 3]; [2, 6]: var 4 -> [1, 3]
        let y = apply(&ln, array![[1.0_f32, 3.0], [2.0, 6.0]].into_dyn().view())?;
        assert_eq!(y, array![[1.0_f32, 3.0], [1.0, 3.0]].into_dyn());
        Ok(())
    }

    #[test]
    fn backward_by_hand() -> Result<()> {
        let mut ln = LayerNormalization::new().with_epsilon(0.0);
        ln.build(&[Shape::new(vec![None, Some(3)])])?;
        ln.initialize();
        let x = array![[0.0_f32, 1.0, 2.0]].into_dyn();
        let g = array![[1.0_f32, 0.0, 0.0]].into_dyn();
        let grads = crate::layer::backward_of(&ln, &[x.view()], &[g.view()])?;
        // mean 1, var 2/3, r = √1.5 = 1.2247449, x̂ = [−r, 0, r]; gamma 1, so a = g:
        // mean(a) = 1/3, mean(a·x̂) = −r/3, dx = r·(a − 1/3 + x̂·r/3) = r·[1/6, −1/3, 1/6].
        let r = 1.5_f32.sqrt();
        let dx = grads.inputs[0].as_ref().expect("a float input's gradient");
        for (j, want) in [r / 6.0, -r / 3.0, r / 6.0].into_iter().enumerate() {
            assert_abs_diff_eq!(dx[[0, j]], want, epsilon = 1e-6);
        }
        // d gamma = g·x̂ = [−r, 0, 0], d beta = g.
        assert_abs_diff_eq!(grads.weights[0][[0]], -r, epsilon = 1e-6);
        assert_eq!(grads.weights[1], array![1.0_f32, 0.0, 0.0].into_dyn());
        Ok(())
    }

    #[test]
    fn bad_axes_are_refused_in_keras_words() {
        let shape = Shape::new(vec![None, Some(4), Some(6)]);
        let err = |ln: LayerNormalization| {
            ln.compute_output_shape(std::slice::from_ref(&shape))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(LayerNormalization::new().with_axes([1, 3])),
            "layer \"layer_normalization\": Axis 3 is out of bounds for input shape (None, 4, 6). \
             Received: axis=[1, 3]"
        );
        assert_eq!(
            err(LayerNormalization::new().with_axes([2, -1])),
            "layer \"layer_normalization\": Duplicate axis: (2, 2)"
        );
        assert!(LayerNormalization::new()
            .compute_output_shape(&[Shape::new(vec![None, Some(4), None])])
            .unwrap_err()
            .to_string()
            .contains("Input has undefined `axis` dimension"));
    }
}
