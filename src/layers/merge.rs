//! Keras's element-wise merge layers: `Add`, `Subtract`, `Multiply`, `Average`, `Maximum` and
//! `Minimum`, one generic layer over the operation, as Keras's `_Merge` base.

use std::fmt;
use std::marker::PhantomData;

use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};

use crate::error::{Error, Result};
use crate::layer::{
    check_not_empty, layer_plumbing, weightless, CallContext, Layer, LayerName, Mask, MaskPolicy,
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
    fn fold(acc: &mut f32, x: f32) {
        *acc += x;
    }
}

impl MergeOp for SubtractOp {
    const CLASS_NAME: &'static str = "Subtract";
    const BASE_NAME: &'static str = "subtract";
    const ARITY: Option<usize> = Some(2);
    fn fold(acc: &mut f32, x: f32) {
        *acc -= x;
    }
}

impl MergeOp for MultiplyOp {
    const CLASS_NAME: &'static str = "Multiply";
    const BASE_NAME: &'static str = "multiply";
    const KERAS3_MASKING: Keras3Masking = Keras3Masking::Product;
    fn fold(acc: &mut f32, x: f32) {
        *acc *= x;
    }
}

impl MergeOp for AverageOp {
    const CLASS_NAME: &'static str = "Average";
    const BASE_NAME: &'static str = "average";
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
    fn fold(acc: &mut f32, x: f32) {
        *acc = acc.max(x);
    }
}

impl MergeOp for MinimumOp {
    const CLASS_NAME: &'static str = "Minimum";
    const BASE_NAME: &'static str = "minimum";
    const KERAS3_MASKING: Keras3Masking = Keras3Masking::Extremum;
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
/// - No weights.
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

/// Keras 3's values of `Multiply` (`_merge_function`) and of `Maximum` and `Minimum`
/// (`_apply_merge_op_and_or_mask`) for masked inputs, already broadcast to one shape.
fn keras3_masked<O: MergeOp>(
    layer: &str,
    xs: Vec<ArrayD<f32>>,
    masks: &[Option<Mask>],
) -> Result<ArrayD<f32>> {
    let masks = xs
        .iter()
        .zip(masks)
        .map(|(x, m)| m.as_ref().map(|m| stretch_mask(layer, m, x)).transpose())
        .collect::<Result<Vec<_>>>()?;
    match O::KERAS3_MASKING {
        Keras3Masking::Product => {
            let all_masked = masks.iter().all(Option::is_some);
            let mut out: Option<ArrayD<f32>> = None;
            let mut out_mask: Option<ndarray::ArrayD<bool>> = None;
            for (mut x, m) in xs.into_iter().zip(masks) {
                if let Some(m) = m {
                    Zip::from(&mut x).and(&m).for_each(|v, &keep| {
                        if !keep {
                            *v = 1.0;
                        }
                    });
                    if all_masked {
                        out_mask = Some(match out_mask {
                            None => m,
                            Some(mut o) => {
                                Zip::from(&mut o).and(&m).for_each(|a, &b| *a |= b);
                                o
                            }
                        });
                    }
                }
                out = Some(match out {
                    None => x,
                    Some(mut o) => {
                        Zip::from(&mut o).and(&x).for_each(|a, &v| O::fold(a, v));
                        o
                    }
                });
            }
            let mut out = out.expect("a merge has inputs");
            if let Some(m) = out_mask {
                Zip::from(&mut out).and(&m).for_each(|v, &keep| {
                    if !keep {
                        *v = 0.0;
                    }
                });
            }
            Ok(out)
        }
        Keras3Masking::Extremum | Keras3Masking::None => {
            let mut it = xs.into_iter().zip(masks);
            let (mut out, mut out_mask) = it.next().expect("a merge has inputs");
            for (mut x, m) in it {
                if let Some(m) = &m {
                    Zip::from(&mut x).and(m).and(&out).for_each(|v, &keep, &o| {
                        if !keep {
                            *v = o;
                        }
                    });
                }
                if let Some(om) = &out_mask {
                    Zip::from(&mut out)
                        .and(om)
                        .and(&x)
                        .for_each(|o, &keep, &v| {
                            if !keep {
                                *o = v;
                            }
                        });
                }
                out_mask = match (out_mask, m) {
                    (Some(mut a), Some(b)) => {
                        Zip::from(&mut a).and(&b).for_each(|x, &y| *x |= y);
                        Some(a)
                    }
                    _ => None,
                };
                Zip::from(&mut out).and(&x).for_each(|a, &v| O::fold(a, v));
            }
            Ok(out)
        }
    }
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
        let rank = dims.len();
        let stretched = |x: &ArrayViewD<'_, f32>| -> ArrayD<f32> {
            let x = x.as_standard_layout();
            x.view()
                .into_shape_with_order(IxDyn(&expand_known(x.shape(), rank)))
                .expect("a standard-layout array takes a rank-expanded shape")
                .broadcast(IxDyn(&dims))
                .expect("the shapes broadcast: checked above")
                .to_owned()
        };
        let masks: Vec<Option<Mask>> = (0..inputs.len())
            .map(|i| ctx.input_mask(i).map(|m| m.to_owned()))
            .collect();
        if self.keras3_masking
            && O::KERAS3_MASKING != Keras3Masking::None
            && masks.iter().any(Option::is_some)
        {
            let xs: Vec<ArrayD<f32>> = inputs.iter().map(stretched).collect();
            let y = keras3_masked::<O>(name, xs, &masks)?;
            ctx.set_output_masks(vec![and_masks(ctx, inputs.len())]);
            return Ok(vec![y]);
        }
        let mut acc = stretched(&inputs[0]);
        for x in &inputs[1..] {
            let x = x.as_standard_layout();
            let xs = x
                .view()
                .into_shape_with_order(IxDyn(&expand_known(x.shape(), rank)))
                .expect("a standard-layout array takes a rank-expanded shape");
            let xb = xs
                .broadcast(IxDyn(&dims))
                .expect("the shapes broadcast: checked above");
            Zip::from(&mut acc).and(&xb).for_each(|a, &v| O::fold(a, v));
        }
        O::finish(&mut acc, inputs.len());
        ctx.set_output_masks(vec![and_masks(ctx, inputs.len())]);
        Ok(vec![acc])
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

    #[test]
    fn counts_are_checked() {
        let s = Shape::new(vec![None, Some(2)]);
        assert!(Merge::<SubtractOp>::new()
            .compute_output_shape(&[s.clone(), s.clone(), s.clone()])
            .is_err());
        assert!(Merge::<AddOp>::new().compute_output_shape(&[s]).is_err());
    }
}
