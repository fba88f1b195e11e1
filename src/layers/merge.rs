//! Keras's element-wise merge layers: `Add`, `Subtract`, `Multiply`, `Average`, `Maximum` and
//! `Minimum`, one generic layer over the operation, as Keras's `_Merge` base.

use std::fmt;
use std::marker::PhantomData;

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Zip};

use crate::error::{Error, Result};
use crate::layer::{
    check_not_empty, layer_plumbing, output_grad, weightless, CallContext, Gradients, Layer,
    LayerName, Mask, MaskPolicy, SavedForBackward,
};
use crate::limits;
use crate::shape::Shape;

/// The arithmetic of one element-wise merge layer.
pub trait MergeOp: Clone + fmt::Debug + Send + Sync + 'static {
    /// The Keras class name: `"Add"`.
    const CLASS_NAME: &'static str;
    /// The Keras base name of the layer: `"add"`.
    const BASE_NAME: &'static str;
    /// How many inputs it takes: `Some(2)` for `Subtract`, `None` for any number from 1.
    const ARITY: Option<usize> = None;

    /// Folds `x` into the running result `acc`.
    fn fold(acc: &mut f32, x: f32);

    /// Finishes the result of `n` inputs (the mean divides by `n`).
    fn finish(acc: &mut ArrayD<f32>, n: usize) {
        let _ = (acc, n);
    }

    /// How Keras 3 lets masks change the values (it does for `Multiply`, `Maximum` and
    /// `Minimum`; tf_keras never does).
    const KERAS3_MASKING: Keras3Masking = Keras3Masking::None;

    /// How the backward pass sends the output's gradient to the inputs.
    const GRADIENT: MergeGradient;
}

/// How a merge layer's backward pass sends the gradient of its output to its inputs, as
/// TensorFlow differentiates the operation Keras merges with. The gradient of an input that
/// was broadcast is summed over the axes it was stretched along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeGradient {
    /// `Add`: the output's gradient to every input.
    Sum,
    /// `Subtract`: the output's gradient to the first input, its negation to the second.
    Difference,
    /// `Average`: the output's gradient divided by the number of inputs, to every input.
    Mean,
    /// `Multiply`: the output's gradient times the product of the other inputs; none to a
    /// step Keras 3 masked (it counted as 1), nor where its product was masked to 0.
    Product,
    /// `Maximum`, `Minimum`: all of the output's gradient to the input whose value the output
    /// took; on a tie to the earlier input, as TensorFlow's gradients of `maximum` and
    /// `minimum` give it to their first operand.
    Select,
}

/// How a merge of masked inputs computes its values in Keras 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keras3Masking {
    /// The masks do not change the values.
    None,
    /// `Multiply`: masked steps count as 1, and when every input has a mask the steps masked in
    /// all of them are 0.
    Product,
    /// `Maximum`, `Minimum`: a masked step takes the other operand's value.
    Extremum,
}

/// `Add`: the element-wise sum.
#[derive(Debug, Clone)]
pub struct AddOp;
/// `Subtract`: the first input minus the second.
#[derive(Debug, Clone)]
pub struct SubtractOp;
/// `Multiply`: the element-wise product.
#[derive(Debug, Clone)]
pub struct MultiplyOp;
/// `Average`: the element-wise mean.
#[derive(Debug, Clone)]
pub struct AverageOp;
/// `Maximum`: the element-wise maximum.
#[derive(Debug, Clone)]
pub struct MaximumOp;
/// `Minimum`: the element-wise minimum.
#[derive(Debug, Clone)]
pub struct MinimumOp;

impl MergeOp for AddOp {
    const CLASS_NAME: &'static str = "Add";
    const BASE_NAME: &'static str = "add";
    const GRADIENT: MergeGradient = MergeGradient::Sum;
    fn fold(acc: &mut f32, x: f32) {
        *acc += x;
    }
}

impl MergeOp for SubtractOp {
    const CLASS_NAME: &'static str = "Subtract";
    const BASE_NAME: &'static str = "subtract";
    const ARITY: Option<usize> = Some(2);
    const GRADIENT: MergeGradient = MergeGradient::Difference;
    fn fold(acc: &mut f32, x: f32) {
        *acc -= x;
    }
}

impl MergeOp for MultiplyOp {
    const CLASS_NAME: &'static str = "Multiply";
    const BASE_NAME: &'static str = "multiply";
    const KERAS3_MASKING: Keras3Masking = Keras3Masking::Product;
    const GRADIENT: MergeGradient = MergeGradient::Product;
    fn fold(acc: &mut f32, x: f32) {
        *acc *= x;
    }
}

impl MergeOp for AverageOp {
    const CLASS_NAME: &'static str = "Average";
    const BASE_NAME: &'static str = "average";
    const GRADIENT: MergeGradient = MergeGradient::Mean;
    fn fold(acc: &mut f32, x: f32) {
        *acc += x;
    }
    fn finish(acc: &mut ArrayD<f32>, n: usize) {
        let n = n as f32;
        acc.mapv_inplace(|v| v / n);
    }
}

impl MergeOp for MaximumOp {
    const CLASS_NAME: &'static str = "Maximum";
    const BASE_NAME: &'static str = "maximum";
    const KERAS3_MASKING: Keras3Masking = Keras3Masking::Extremum;
    const GRADIENT: MergeGradient = MergeGradient::Select;
    fn fold(acc: &mut f32, x: f32) {
        *acc = acc.max(x);
    }
}

impl MergeOp for MinimumOp {
    const CLASS_NAME: &'static str = "Minimum";
    const BASE_NAME: &'static str = "minimum";
    const KERAS3_MASKING: Keras3Masking = Keras3Masking::Extremum;
    const GRADIENT: MergeGradient = MergeGradient::Select;
    fn fold(acc: &mut f32, x: f32) {
        *acc = acc.min(x);
    }
}

/// A Keras element-wise merge layer over the operation `O`: [`Add`], [`Subtract`],
/// [`Multiply`], [`Average`], [`Maximum`], [`Minimum`].
///
/// ```text
/// y = x_0 ∘ x_1 ∘ … ∘ x_n        (∘ the operation; Average divides the sum by n + 1)
/// ```
///
/// - Inputs: several tensors (exactly two for `Subtract`) of shapes that broadcast as Keras
///   broadcasts them: an input of lower rank is expanded at axis 1 until the ranks agree, then
///   every axis of size 1 stretches to the others' size.
/// - Output: the broadcast shape.
/// - Masks: the logical AND of the masks that arrive (tf_keras's `_Merge.compute_mask`).
///   With [`with_keras3_masking`](Merge::with_keras3_masking), as a model loaded from a Keras 3
///   file has it, `Multiply`, `Maximum` and `Minimum` compute their values from masked inputs
///   as Keras 3 does (see [`Keras3Masking`]).
/// - No weights. The backward pass sends the gradient as [`MergeGradient`] says for the
///   operation, Keras 3's masked values included; a broadcast input's is summed over the axes
///   it was stretched along.
///
/// ```
/// use ndarray::array;
/// use seqnn::{Add, CallContext, Layer, Shape};
/// let mut add = Add::new();
/// let s = Shape::new(vec![None, Some(2)]);
/// assert_eq!(add.build(&[s.clone(), s])?[0].to_string(), "(None, 2)");
/// let (a, b) = (array![[1.0_f32, 2.0]].into_dyn(), array![[10.0_f32, 20.0]].into_dyn());
/// let y = add.call(&[a.view(), b.view()], &mut CallContext::inference())?;
/// assert_eq!(y[0], array![[11.0_f32, 22.0]].into_dyn());
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Building or calling it fails for fewer than two inputs (other than two for `Subtract`),
/// for shapes that do not broadcast (Keras's "Inputs have incompatible shapes"), and for
/// inputs of different batch sizes.
#[derive(Debug, Clone)]
pub struct Merge<O: MergeOp> {
    name: LayerName,
    trainable: bool,
    built: bool,
    keras3_masking: bool,
    op: PhantomData<O>,
}

/// Keras's `Add`: the element-wise sum of its inputs.
pub type Add = Merge<AddOp>;
/// Keras's `Subtract`: its first input minus its second.
pub type Subtract = Merge<SubtractOp>;
/// Keras's `Multiply`: the element-wise product of its inputs.
pub type Multiply = Merge<MultiplyOp>;
/// Keras's `Average`: the element-wise mean of its inputs.
pub type Average = Merge<AverageOp>;
/// Keras's `Maximum`: the element-wise maximum of its inputs.
pub type Maximum = Merge<MaximumOp>;
/// Keras's `Minimum`: the element-wise minimum of its inputs.
pub type Minimum = Merge<MinimumOp>;

impl<O: MergeOp> Default for Merge<O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O: MergeOp> Merge<O> {
    /// The merge layer, as Keras's `Add()`, `Multiply()`, ...
    pub fn new() -> Self {
        Merge {
            name: LayerName::new(O::BASE_NAME),
            trainable: true,
            built: false,
            keras3_masking: false,
            op: PhantomData,
        }
    }

    /// Whether masked inputs change the values as in Keras 3 (default false: tf_keras, where
    /// they do not). Only `Multiply`, `Maximum` and `Minimum` differ.
    #[must_use]
    pub fn with_keras3_masking(mut self, yes: bool) -> Self {
        self.keras3_masking = yes;
        self
    }

    /// Whether masked inputs change the values as in Keras 3.
    #[must_use]
    pub fn keras3_masking(&self) -> bool {
        self.keras3_masking
    }

    /// Keras's `name`. Without it, the layer is named when it is first used.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name.set(name.into());
        self
    }

    fn check_count(&self, n: usize) -> Result<()> {
        let name = self.name.get();
        match O::ARITY {
            Some(k) if n != k => Err(Error::InvalidArgument {
                layer: name.to_string(),
                message: format!(
                    "A `{}` layer should be called on exactly {k} inputs. Received: {n} \
                     inputs.",
                    O::CLASS_NAME
                ),
            }),
            None if n < 2 => Err(Error::InvalidArgument {
                layer: name.to_string(),
                message: format!(
                    "A merge layer should be called on a list of at least 2 inputs. Got {n} \
                     inputs."
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// Keras's `_compute_elemwise_op_output_shape` over all the non-batch axes, after the lower
/// ranks were expanded at axis 1.
pub(crate) fn broadcast_shapes(layer: &str, shapes: &[Shape]) -> Result<Shape> {
    let rank = shapes.iter().map(Shape::rank).max().unwrap_or(0);
    let expanded: Vec<Vec<Option<usize>>> = shapes
        .iter()
        .map(|s| {
            let mut d = s.dims().to_vec();
            while d.len() < rank {
                d.insert(d.len().min(1), Some(1));
            }
            d
        })
        .collect();
    let batches: Vec<usize> = shapes.iter().filter_map(|s| s.dim(0)).collect();
    if batches.windows(2).any(|w| w[0] != w[1]) {
        return Err(Error::InvalidArgument {
            layer: layer.to_string(),
            message: format!(
                "Cannot merge tensors with different batch sizes. Got tensors with shapes {}",
                shape_list(shapes)
            ),
        });
    }
    let mut out: Vec<Option<usize>> = vec![batches.first().copied(); rank.min(1)];
    for axis in 1..rank {
        let mut dim = Some(1);
        for e in &expanded {
            dim = match (dim, e[axis]) {
                (None, _) | (_, None) => None,
                (Some(1), d) | (d, Some(1)) => d,
                (Some(a), Some(b)) if a == b => Some(a),
                _ => {
                    return Err(Error::InvalidArgument {
                        layer: layer.to_string(),
                        message: format!(
                            "Inputs have incompatible shapes. Received shapes {}",
                            shape_list(shapes)
                        ),
                    })
                }
            };
        }
        out.push(dim);
    }
    Ok(Shape::new(out))
}

/// `dims` of lower rank expanded at axis 1 up to `rank`, as Keras's merge layers do.
fn expand_known(dims: &[usize], rank: usize) -> Vec<usize> {
    let mut out = dims.to_vec();
    while out.len() < rank {
        out.insert(out.len().min(1), 1);
    }
    out
}

fn shape_list(shapes: &[Shape]) -> String {
    shapes
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The logical AND of the masks that arrive, or none (Keras's `_Merge.compute_mask`).
pub(crate) fn and_masks(ctx: &CallContext, inputs: usize) -> Option<Mask> {
    let mut out: Option<Mask> = None;
    for i in 0..inputs {
        if let Some(m) = ctx.input_mask(i) {
            match out.as_mut() {
                None => out = Some(m.to_owned()),
                Some(o) if o.dim() == m.dim() => o.zip_mut_with(&m, |a, &b| *a &= b),
                Some(_) => {}
            }
        }
    }
    out
}

/// A `(batch, steps)` mask as a mask of `x`'s shape `(batch, steps, ...)`: Keras 3's
/// `broadcast_to(expand_dims(mask, -1), shape(x))`.
fn stretch_mask(layer: &str, mask: &Mask, x: &ArrayD<f32>) -> Result<ndarray::ArrayD<bool>> {
    let fits = x.ndim() >= 2 && mask.dim() == (x.shape()[0], x.shape()[1]);
    if !fits {
        return Err(Error::InvalidArgument {
            layer: layer.to_string(),
            message: format!(
                "a mask of shape {:?} does not fit an input of shape {:?}",
                mask.shape(),
                x.shape()
            ),
        });
    }
    let mut dims = vec![1; x.ndim()];
    dims[0] = x.shape()[0];
    dims[1] = x.shape()[1];
    let m = mask
        .view()
        .into_dyn()
        .into_shape_with_order(IxDyn(&dims))
        .expect("the same elements with axes of 1 added");
    Ok(m.broadcast(x.raw_dim())
        .expect("a mask of (batch, steps) broadcasts over the features")
        .to_owned())
}

/// `x` (in standard layout) expanded at axis 1 to `rank` axes, as Keras's merge layers expand
/// an input of lower rank.
fn expanded(x: ArrayViewD<'_, f32>, rank: usize) -> ArrayViewD<'_, f32> {
    let dims = expand_known(x.shape(), rank);
    x.into_shape_with_order(IxDyn(&dims))
        .expect("a standard-layout array takes a rank-expanded shape")
}

/// `x` expanded and broadcast to the output's shape `dims`, as a new standard-layout array.
fn stretch(x: &ArrayViewD<'_, f32>, dims: &[usize]) -> ArrayD<f32> {
    let x = x.as_standard_layout();
    let e = expanded(x.view(), dims.len());
    e.broadcast(IxDyn(dims))
        .expect("the shapes broadcast: checked by broadcast_shapes")
        .to_owned()
}

/// The inputs stretched to the output's shape `dims` (standard layout), and their masks
/// stretched over the features where they change the values.
fn stretch_all(
    layer: &str,
    inputs: &[ArrayViewD<'_, f32>],
    masks: &[Option<Mask>],
    dims: &[usize],
) -> Result<Stretched> {
    let xs: Vec<ArrayD<f32>> = inputs.iter().map(|x| stretch(x, dims)).collect();
    let masks = xs
        .iter()
        .zip(masks.iter().chain(std::iter::repeat(&None)))
        .map(|(x, m)| m.as_ref().map(|m| stretch_mask(layer, m, x)).transpose())
        .collect::<Result<Vec<_>>>()?;
    Ok(Stretched { xs, masks })
}

/// A merge's inputs at the output's shape, with the masks that change their values.
struct Stretched {
    xs: Vec<ArrayD<f32>>,
    masks: Vec<Option<ArrayD<bool>>>,
}

impl Stretched {
    /// `Multiply`'s factors as Keras 3's `_merge_function` takes them (an input's masked steps
    /// count as 1), and, when every input has a mask, where the product is kept (it is 0
    /// wherever every input is masked). Without masks, the inputs and `None`.
    fn factors(mut self) -> (Vec<ArrayD<f32>>, Option<ArrayD<bool>>) {
        let all_masked = self.masks.iter().all(Option::is_some);
        let mut kept: Option<ArrayD<bool>> = None;
        for (x, m) in self.xs.iter_mut().zip(&self.masks) {
            let Some(m) = m else { continue };
            Zip::from(x).and(m).for_each(|v, &real| {
                if !real {
                    *v = 1.0;
                }
            });
            if all_masked {
                kept = Some(match kept {
                    None => m.clone(),
                    Some(mut k) => {
                        Zip::from(&mut k).and(m).for_each(|a, &b| *a |= b);
                        k
                    }
                });
            }
        }
        (self.xs, kept)
    }

    /// `Maximum`'s or `Minimum`'s values, and for each the input it came from, as Keras
    /// computes them: a fold of the operation (tf_keras, and Keras 3 without masks), where in
    /// Keras 3 (`_apply_merge_op_and_or_mask`) a masked step of either operand takes the
    /// other's value. An input takes over where folding it in changes the running value, so
    /// on a tie the earlier input keeps it, as TensorFlow's gradient of `maximum` gives it to
    /// its first operand.
    fn select<O: MergeOp>(&self) -> (ArrayD<f32>, ArrayD<usize>) {
        let std = "stretched arrays are in standard layout";
        let mut out = self.xs[0].clone();
        let mut from = ArrayD::<usize>::zeros(out.raw_dim());
        let mut out_mask = self.masks[0].clone();
        for (i, (x, mask)) in self.xs.iter().zip(&self.masks).enumerate().skip(1) {
            let xs = x.as_slice().expect(std);
            let real = |m: &Option<ArrayD<bool>>, k: usize| {
                m.as_ref().is_none_or(|m| m.as_slice().expect(std)[k])
            };
            let (values, sources) = (
                out.as_slice_mut().expect(std),
                from.as_slice_mut().expect(std),
            );
            for k in 0..xs.len() {
                // x = where(mask, x, output); output = where(output_mask, output, x)
                let (v, src) = if real(mask, k) {
                    (xs[k], i)
                } else {
                    (values[k], sources[k])
                };
                if !real(&out_mask, k) {
                    values[k] = v;
                    sources[k] = src;
                }
                let before = values[k];
                O::fold(&mut values[k], v);
                if values[k] != before {
                    sources[k] = src;
                }
            }
            out_mask = match (out_mask, mask) {
                (Some(mut a), Some(b)) => {
                    Zip::from(&mut a).and(b).for_each(|x, &y| *x |= y);
                    Some(a)
                }
                _ => None,
            };
        }
        (out, from)
    }
}

/// The product of `factors`, 0 outside `kept`.
fn product(factors: &[ArrayD<f32>], kept: Option<&ArrayD<bool>>) -> ArrayD<f32> {
    let mut out = factors[0].clone();
    for f in &factors[1..] {
        out *= f;
    }
    if let Some(kept) = kept {
        zero_outside(&mut out, kept);
    }
    out
}

/// `a` with 0 where `real` is false.
fn zero_outside(a: &mut ArrayD<f32>, real: &ArrayD<bool>) {
    Zip::from(a).and(real).for_each(|v, &r| {
        if !r {
            *v = 0.0;
        }
    });
}

/// The gradients of `product(factors, kept)`'s factors from the output's gradient `g`, in
/// TensorFlow's order (the chain of products taken back from the last factor).
fn product_grads(
    factors: &[ArrayD<f32>],
    kept: Option<&ArrayD<bool>>,
    mut g: ArrayD<f32>,
) -> Vec<ArrayD<f32>> {
    if let Some(kept) = kept {
        zero_outside(&mut g, kept);
    }
    // prefix[k] = factors[0] · … · factors[k]
    let mut prefix = vec![factors[0].clone()];
    for f in &factors[1..factors.len() - 1] {
        let next = &prefix[prefix.len() - 1] * f;
        prefix.push(next);
    }
    let mut grads = Vec::with_capacity(factors.len());
    for k in (1..factors.len()).rev() {
        grads.push(&prefix[k - 1] * &g);
        g *= &factors[k];
    }
    grads.push(g);
    grads.reverse();
    grads
}

/// The gradient `g` of a stretched input summed back to the input's own `shape`, over the
/// axes it was broadcast along (TensorFlow's `BroadcastGradientArgs`, then the rank expansion
/// undone).
fn unstretch(mut g: ArrayD<f32>, shape: &[usize]) -> ArrayD<f32> {
    for (axis, d) in expand_known(shape, g.ndim()).into_iter().enumerate() {
        if d == 1 && g.shape()[axis] != 1 {
            g = g.sum_axis(Axis(axis)).insert_axis(Axis(axis));
        }
    }
    if !g.is_standard_layout() {
        g = g.as_standard_layout().into_owned();
    }
    g.into_shape_with_order(IxDyn(shape))
        .expect("the summed gradient holds the input's elements")
}

/// What a training call of a merge layer keeps for its backward pass.
#[derive(Debug)]
struct MergeSaved {
    /// Each input's shape, as it came.
    shapes: Vec<Vec<usize>>,
    /// The output's shape.
    out: Vec<usize>,
    /// The inputs, as they came, for `Multiply`, `Maximum` and `Minimum`, whose gradients
    /// depend on the values; empty for the others.
    inputs: Vec<ArrayD<f32>>,
    /// The masks of the inputs where they changed the values (Keras 3); empty otherwise.
    masks: Vec<Option<Mask>>,
}

impl<O: MergeOp> Layer for Merge<O> {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        O::CLASS_NAME
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        Ok(None)
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        self.check_count(inputs.len())?;
        let out = broadcast_shapes(self.name.get(), inputs)?;
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
        self.check_count(inputs.len())?;
        let shapes: Vec<Shape> = inputs.iter().map(|x| Shape::known(x.shape())).collect();
        let out = broadcast_shapes(name, &shapes)?;
        let dims: Vec<usize> = out.dims().iter().map(|d| d.unwrap_or(1)).collect();
        limits::check_dims(name, "output", &dims)?;
        check_not_empty(name, &dims)?;
        let masks: Vec<Option<Mask>> = (0..inputs.len())
            .map(|i| ctx.input_mask(i).map(|m| m.to_owned()))
            .collect();
        let keras3 = self.keras3_masking
            && O::KERAS3_MASKING != Keras3Masking::None
            && masks.iter().any(Option::is_some);
        let y = if keras3 {
            let stretched = stretch_all(name, inputs, &masks, &dims)?;
            match O::KERAS3_MASKING {
                Keras3Masking::Product => {
                    let (factors, kept) = stretched.factors();
                    product(&factors, kept.as_ref())
                }
                Keras3Masking::Extremum | Keras3Masking::None => stretched.select::<O>().0,
            }
        } else {
            let mut acc = stretch(&inputs[0], &dims);
            for x in &inputs[1..] {
                let x = x.as_standard_layout();
                Zip::from(&mut acc)
                    .and_broadcast(&expanded(x.view(), dims.len()))
                    .for_each(|a, &v| O::fold(a, v));
            }
            O::finish(&mut acc, inputs.len());
            acc
        };
        ctx.set_output_masks(vec![and_masks(ctx, inputs.len())]);
        if ctx.records() {
            let by_value = matches!(O::GRADIENT, MergeGradient::Product | MergeGradient::Select);
            ctx.save_for_backward(Box::new(MergeSaved {
                shapes: inputs.iter().map(|x| x.shape().to_vec()).collect(),
                out: dims,
                inputs: if by_value {
                    inputs.iter().map(|x| x.to_owned()).collect()
                } else {
                    Vec::new()
                },
                masks: if keras3 { masks } else { Vec::new() },
            }));
        }
        Ok(vec![y])
    }

    /// The output's gradient as [`MergeGradient`] says for the operation, each input's summed
    /// over the axes it was broadcast along.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let saved: &MergeSaved = saved.get(name)?;
        let g = output_grad(name, output_grads, 0, &saved.out)?;
        let n = saved.shapes.len();
        let stretched = match O::GRADIENT {
            MergeGradient::Sum => vec![g; n],
            MergeGradient::Difference => vec![g.clone(), -g],
            MergeGradient::Mean => vec![g.mapv(|v| v / n as f32); n],
            MergeGradient::Product | MergeGradient::Select => {
                let views: Vec<_> = saved.inputs.iter().map(|x| x.view()).collect();
                let s = stretch_all(name, &views, &saved.masks, &saved.out)?;
                if O::GRADIENT == MergeGradient::Select {
                    let (_, from) = s.select::<O>();
                    (0..n)
                        .map(|i| {
                            let mut gi = g.clone();
                            Zip::from(&mut gi).and(&from).for_each(|v, &f| {
                                if f != i {
                                    *v = 0.0;
                                }
                            });
                            gi
                        })
                        .collect()
                } else {
                    let masks = s.masks.clone();
                    let (factors, kept) = s.factors();
                    let mut grads = product_grads(&factors, kept.as_ref(), g);
                    for (gi, m) in grads.iter_mut().zip(&masks) {
                        if let Some(m) = m {
                            zero_outside(gi, m);
                        }
                    }
                    grads
                }
            }
        };
        Ok(Gradients {
            inputs: stretched
                .into_iter()
                .zip(&saved.shapes)
                .map(|(g, shape)| Some(unstretch(g, shape)))
                .collect(),
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

    fn run<O: MergeOp>(inputs: &[ArrayD<f32>]) -> Result<ArrayD<f32>> {
        let layer = Merge::<O>::new();
        let views: Vec<_> = inputs.iter().map(|a| a.view()).collect();
        Ok(layer.call(&views, &mut CallContext::inference())?.remove(0))
    }

    #[test]
    fn each_operation_by_hand() -> Result<()> {
        let a = array![[1.0_f32, -2.0], [3.0, 4.0]].into_dyn();
        let b = array![[2.0_f32, 2.0], [-1.0, 0.5]].into_dyn();
        let c = array![[0.0_f32, 5.0], [1.0, 1.0]].into_dyn();
        let three = [a.clone(), b.clone(), c.clone()];
        // a + b + c = [[3, 5], [3, 5.5]]
        assert_eq!(
            run::<AddOp>(&three)?,
            array![[3.0_f32, 5.0], [3.0, 5.5]].into_dyn()
        );
        // a − b = [[−1, −4], [4, 3.5]]
        assert_eq!(
            run::<SubtractOp>(&[a.clone(), b.clone()])?,
            array![[-1.0_f32, -4.0], [4.0, 3.5]].into_dyn()
        );
        // a·b·c = [[0, −20], [−3, 2]]
        assert_eq!(
            run::<MultiplyOp>(&three)?,
            array![[0.0_f32, -20.0], [-3.0, 2.0]].into_dyn()
        );
        // (a + b + c) / 3 = [[1, 5/3], [1, 11/6]]
        let avg = run::<AverageOp>(&three)?;
        assert!((avg[[0, 1]] - 5.0 / 3.0).abs() < 1e-6 && (avg[[1, 1]] - 11.0 / 6.0).abs() < 1e-6);
        assert_eq!(
            run::<MaximumOp>(&three)?,
            array![[2.0_f32, 5.0], [3.0, 4.0]].into_dyn()
        );
        assert_eq!(
            run::<MinimumOp>(&three)?,
            array![[0.0_f32, -2.0], [-1.0, 0.5]].into_dyn()
        );
        Ok(())
    }

    #[test]
    fn broadcasting_follows_keras() -> Result<()> {
        // (1, 2, 3) + (1, 3): the second is expanded at axis 1 to (1, 1, 3) and stretched.
        let a =
            ArrayD::from_shape_vec(IxDyn(&[1, 2, 3]), (0..6).map(|v| v as f32).collect()).unwrap();
        let b = array![[10.0_f32, 20.0, 30.0]].into_dyn();
        let y = run::<AddOp>(&[a, b])?;
        assert_eq!(y.shape(), &[1, 2, 3]);
        assert_eq!(y[[0, 1, 2]], 5.0 + 30.0);
        let err = broadcast_shapes(
            "add",
            &[
                Shape::new(vec![None, Some(3)]),
                Shape::new(vec![None, Some(4)]),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"add\": Inputs have incompatible shapes. Received shapes (None, 3) and \
             (None, 4)"
        );
        Ok(())
    }

    /// The input gradients of a recorded call of `layer` on `inputs` (with `masks`), for an
    /// upstream gradient of ones.
    fn grads(
        layer: &dyn Layer,
        inputs: &[ArrayD<f32>],
        masks: Vec<Option<Mask>>,
    ) -> Result<Vec<ArrayD<f32>>> {
        let views: Vec<_> = inputs.iter().map(|a| a.view()).collect();
        let mut ctx = CallContext::training().with_masks(masks);
        let y = layer.call(&views, &mut ctx)?.remove(0);
        let ones = ArrayD::<f32>::ones(y.raw_dim());
        let saved = ctx.take_saved().expect("a training call keeps a record");
        let g = layer.backward(&saved, &[Some(ones.view())])?;
        Ok(g.inputs
            .into_iter()
            .map(|g| g.expect("a float input"))
            .collect())
    }

    #[test]
    fn gradients_by_hand_with_broadcasting() -> Result<()> {
        // a (1, 2, 2) = [[1, 2], [3, 4]]; b (1, 2) = [10, 20], expanded to (1, 1, 2) and
        // stretched over the two steps.
        let a = ArrayD::from_shape_vec(IxDyn(&[1, 2, 2]), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let b = array![[10.0_f32, 20.0]].into_dyn();
        let two = [a.clone(), b.clone()];
        // Add: ones to a; b's summed over the steps: [2, 2].
        let g = grads(&Add::new(), &two, vec![])?;
        assert_eq!(g[0], ArrayD::<f32>::ones(IxDyn(&[1, 2, 2])));
        assert_eq!(g[1], array![[2.0_f32, 2.0]].into_dyn());
        // Subtract: b's is −2 per feature. Average: 1/2 to a, 2 · 1/2 = 1 to b.
        assert_eq!(
            grads(&Subtract::new(), &two, vec![])?[1],
            array![[-2.0_f32, -2.0]].into_dyn()
        );
        assert_eq!(
            grads(&Average::new(), &two, vec![])?[1],
            array![[1.0_f32, 1.0]].into_dyn()
        );
        // Multiply: d a = b at every step; d b = Σ_t a[t] = [1 + 3, 2 + 4].
        let g = grads(&Multiply::new(), &two, vec![])?;
        assert_eq!(
            g[0],
            ArrayD::from_shape_vec(IxDyn(&[1, 2, 2]), vec![10.0, 20.0, 10.0, 20.0]).unwrap()
        );
        assert_eq!(g[1], array![[4.0_f32, 6.0]].into_dyn());
        // Maximum: b wins everywhere, so a gets nothing and b gets 2 per feature.
        let g = grads(&Maximum::new(), &two, vec![])?;
        assert_eq!(g[0], ArrayD::<f32>::zeros(IxDyn(&[1, 2, 2])));
        assert_eq!(g[1], array![[2.0_f32, 2.0]].into_dyn());
        Ok(())
    }

    #[test]
    fn ties_go_to_the_first_input_and_keras3_masks_block_gradients() -> Result<()> {
        // max(1, 1) goes to a (TensorFlow's a >= b); max(2, 0) to a too.
        let (a, b) = (
            array![[1.0_f32, 2.0]].into_dyn(),
            array![[1.0_f32, 0.0]].into_dyn(),
        );
        let g = grads(&Maximum::new(), &[a, b], vec![])?;
        assert_eq!((g[0].sum(), g[1].sum()), (2.0, 0.0));
        // Keras 3's Multiply: a's masked step counts as 1, so y = b there and d a = 0, d b = 1;
        // at the real step y = a·b: d a = b = 4, d b = a = 2.
        let a = ArrayD::from_shape_vec(IxDyn(&[1, 2, 1]), vec![2.0, 3.0]).unwrap();
        let b = ArrayD::from_shape_vec(IxDyn(&[1, 2, 1]), vec![4.0, 5.0]).unwrap();
        let mask = Some(array![[true, false]]);
        let layer = Multiply::new().with_keras3_masking(true);
        let g = grads(&layer, &[a.clone(), b.clone()], vec![mask.clone(), None])?;
        assert_eq!(g[0].as_slice().unwrap(), &[4.0, 0.0]);
        assert_eq!(g[1].as_slice().unwrap(), &[2.0, 1.0]);
        // Keras 3's Maximum: a's masked step takes b's value, so b gets that step's gradient.
        let layer = Maximum::new().with_keras3_masking(true);
        let g = grads(&layer, &[a, b], vec![mask, None])?;
        assert_eq!(g[0].as_slice().unwrap(), &[0.0, 0.0]);
        assert_eq!(g[1].as_slice().unwrap(), &[1.0, 1.0]);
        Ok(())
    }

    #[test]
    fn backward_refuses_a_gradient_of_another_shape() -> Result<()> {
        let x = array![[1.0_f32, 2.0]].into_dyn();
        let mut ctx = CallContext::training();
        Add::new().call(&[x.view(), x.view()], &mut ctx)?;
        let saved = ctx.take_saved().expect("a record");
        let wrong = ArrayD::<f32>::zeros(IxDyn(&[1, 3]));
        let err = Add::new()
            .backward(&saved, &[Some(wrong.view())])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"add\": the gradient of output 0 has shape (1, 3), but the output has shape \
             (1, 2)"
        );
        Ok(())
    }

    #[test]
    fn counts_are_checked() {
        let s = Shape::new(vec![None, Some(2)]);
        assert!(Merge::<SubtractOp>::new()
            .compute_output_shape(&[s.clone(), s.clone(), s.clone()])
            .is_err());
        assert!(Merge::<AddOp>::new().compute_output_shape(&[s]).is_err());
    }
}
