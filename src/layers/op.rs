//! Keras 3's operations (`keras.ops.not_equal`, `keras.ops.any`, `keras.ops.concatenate`, ...)
//! as nodes of a Functional graph.
//!
//! Keras 3 records a Functional model's masks as operations when it builds the graph: an
//! `Embedding(mask_zero=True)` adds `NotEqual(ids, 0)`, a `Masking` layer `Any(NotEqual(x, v))`,
//! a merge of masked tensors `ExpandDims`, `LogicalOr`, `Concatenate` and `Any` nodes, and each
//! recurrent layer then reads its mask from them (`mask=` in its call). Such a saved model holds
//! these nodes, so seqnn runs them; a model may also call `keras.ops` on its tensors directly.
//!
//! Values are float32, as every tensor of seqnn: a boolean is 1.0 or 0.0, and an integer its
//! float value. Operands broadcast as NumPy's do.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Zip};

use crate::error::{Error, Result};
use crate::layer::{
    check_not_empty, layer_plumbing, weightless, CallContext, Layer, LayerName, MaskPolicy,
};
use crate::limits;
use crate::shape::Shape;

/// An element-wise operation of two operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `keras.ops.equal`: 1 where equal.
    Equal,
    /// `keras.ops.not_equal`: 1 where different.
    NotEqual,
    /// `keras.ops.greater`.
    Greater,
    /// `keras.ops.greater_equal`.
    GreaterEqual,
    /// `keras.ops.less`.
    Less,
    /// `keras.ops.less_equal`.
    LessEqual,
    /// `keras.ops.logical_and`: 1 where both are non-zero.
    LogicalAnd,
    /// `keras.ops.logical_or`: 1 where either is non-zero.
    LogicalOr,
    /// `keras.ops.logical_xor`.
    LogicalXor,
    /// `keras.ops.add`.
    Add,
    /// `keras.ops.subtract`.
    Subtract,
    /// `keras.ops.multiply`.
    Multiply,
    /// `keras.ops.divide` (true division).
    Divide,
    /// `keras.ops.maximum`.
    Maximum,
    /// `keras.ops.minimum`.
    Minimum,
}

/// An element-wise operation of one operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `keras.ops.logical_not`: 1 where zero.
    LogicalNot,
    /// `keras.ops.zeros_like`.
    ZerosLike,
    /// `keras.ops.ones_like`.
    OnesLike,
    /// `keras.ops.cast` to a float type: the value as it is.
    CastFloat,
    /// `keras.ops.cast` to an integer type: truncated toward zero.
    CastInt,
    /// `keras.ops.cast` to bool: 1 where non-zero.
    CastBool,
    /// `keras.ops.absolute`.
    Absolute,
    /// `keras.ops.negative`.
    Negative,
    /// `keras.ops.square`.
    Square,
    /// `keras.ops.sqrt`.
    Sqrt,
    /// `keras.ops.exp`.
    Exp,
    /// `keras.ops.log`.
    Log,
}

/// A reduction over axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// `keras.ops.any`: 1 where any element is non-zero.
    Any,
    /// `keras.ops.all`: 1 where every element is non-zero.
    All,
    /// `keras.ops.sum`.
    Sum,
    /// `keras.ops.mean`.
    Mean,
    /// `keras.ops.max`.
    Max,
    /// `keras.ops.min`.
    Min,
}

/// What an [`Op`] computes.
#[derive(Debug, Clone, PartialEq)]
pub enum OpKind {
    /// An element-wise operation of two operands, broadcast.
    Binary(BinaryOp),
    /// An element-wise operation of one operand.
    Unary(UnaryOp),
    /// `keras.ops.expand_dims(x, axis)`.
    ExpandDims {
        /// Where the new axis goes; negative counts from the end of the result.
        axis: isize,
    },
    /// `keras.ops.squeeze(x, axis)`: drops an axis of size 1 (all of them for `None`).
    Squeeze {
        /// The axis to drop.
        axis: Option<isize>,
    },
    /// A reduction (`keras.ops.any(x, axis, keepdims)`, ...).
    Reduce {
        /// What it computes.
        op: ReduceOp,
        /// The axes it reduces; `None` for all.
        axis: Option<Vec<isize>>,
        /// Whether the reduced axes stay, of size 1.
        keepdims: bool,
    },
    /// `keras.ops.concatenate(xs, axis)`.
    Concatenate {
        /// The axis joined along.
        axis: isize,
    },
}

/// One operand of an [`Op`]: one of the node's input tensors, or a constant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Operand {
    /// The node's input tensor of this index.
    Input(usize),
    /// A scalar constant (`keras.ops.not_equal(x, 0)`).
    Scalar(f32),
}

/// A Keras 3 operation as a node of a Functional [`Model`](crate::Model): `keras.ops.not_equal`,
/// `keras.ops.any`, ... (Keras classes `NotEqual`, `Any`, ...). It has no weights, takes its
/// operands from the node's inputs and constants, and does not pass masks on, as Keras.
///
/// ```
/// use seqnn::{Apply, BinaryOp, Input, Model, Op, OpKind, Operand};
/// // ops.not_equal(ids, 0): the mask an Embedding(mask_zero=True) makes.
/// let ids = Input::new((5,));
/// let not_pad = Op::new(OpKind::Binary(BinaryOp::NotEqual))
///     .with_operands(vec![Operand::Input(0), Operand::Scalar(0.0)])
///     .apply(&ids)?;
/// let model = Model::new(&[ids], &[not_pad])?;
/// let y = model.predict(&[(&ndarray::array![[3_i64, 1, 0, 0, 0]]).into()])?;
/// assert_eq!(y[0], ndarray::array![[1.0_f32, 1.0, 0.0, 0.0, 0.0]].into_dyn());
/// # Ok::<(), seqnn::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Op {
    name: LayerName,
    kind: OpKind,
    /// `None`: the node's inputs, in order.
    operands: Option<Vec<Operand>>,
    trainable: bool,
    built: bool,
}

impl Op {
    /// The operation `kind`, on the node's inputs in order.
    pub fn new(kind: OpKind) -> Self {
        Op {
            name: LayerName::new(base_name(&kind)),
            kind,
            operands: None,
            trainable: true,
            built: false,
        }
    }

    /// Its operands: input tensors and constants, in the operation's order.
    #[must_use]
    pub fn with_operands(mut self, operands: Vec<Operand>) -> Self {
        self.operands = Some(operands);
        self
    }

    /// The layer's name. Without it, the operation is named after its Keras function:
    /// `not_equal`, `not_equal_1`, ...
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name.set(name.into());
        self
    }

    /// What it computes.
    #[must_use]
    pub fn kind(&self) -> &OpKind {
        &self.kind
    }

    /// Its operands, for `inputs` input tensors.
    #[must_use]
    pub fn operands(&self, inputs: usize) -> Vec<Operand> {
        self.operands
            .clone()
            .unwrap_or_else(|| (0..inputs).map(Operand::Input).collect())
    }

    fn error(&self, message: String) -> Error {
        Error::InvalidArgument {
            layer: self.name.get().to_string(),
            message,
        }
    }

    /// The operands' shapes, checked against what the operation takes.
    fn operand_shapes(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let operands = self.operands(inputs.len());
        let shapes = operands
            .iter()
            .map(|o| match *o {
                Operand::Input(i) => inputs.get(i).cloned().ok_or_else(|| {
                    self.error(format!(
                        "operand {i} is an input the node does not have (it has {})",
                        inputs.len()
                    ))
                }),
                Operand::Scalar(_) => Ok(Shape::new(Vec::new())),
            })
            .collect::<Result<Vec<_>>>()?;
        let arity = match self.kind {
            OpKind::Binary(_) => Some(2),
            OpKind::Concatenate { .. } => None,
            _ => Some(1),
        };
        let fits = match arity {
            Some(n) => shapes.len() == n,
            None => !shapes.is_empty(),
        };
        if !fits {
            return Err(self.error(format!(
                "{} takes {} operand(s), but it was given {}",
                self.class_name(),
                arity.map_or("one or more".into(), |n| n.to_string()),
                shapes.len()
            )));
        }
        Ok(shapes)
    }
}

fn base_name(kind: &OpKind) -> &'static str {
    match kind {
        OpKind::Binary(b) => match b {
            BinaryOp::Equal => "equal",
            BinaryOp::NotEqual => "not_equal",
            BinaryOp::Greater => "greater",
            BinaryOp::GreaterEqual => "greater_equal",
            BinaryOp::Less => "less",
            BinaryOp::LessEqual => "less_equal",
            BinaryOp::LogicalAnd => "logical_and",
            BinaryOp::LogicalOr => "logical_or",
            BinaryOp::LogicalXor => "logical_xor",
            BinaryOp::Add => "add",
            BinaryOp::Subtract => "subtract",
            BinaryOp::Multiply => "multiply",
            BinaryOp::Divide => "divide",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
        },
        OpKind::Unary(u) => match u {
            UnaryOp::LogicalNot => "logical_not",
            UnaryOp::ZerosLike => "zeros_like",
            UnaryOp::OnesLike => "ones_like",
            UnaryOp::CastFloat | UnaryOp::CastInt | UnaryOp::CastBool => "cast",
            UnaryOp::Absolute => "absolute",
            UnaryOp::Negative => "negative",
            UnaryOp::Square => "square",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
        },
        OpKind::ExpandDims { .. } => "expand_dims",
        OpKind::Squeeze { .. } => "squeeze",
        OpKind::Reduce { op, .. } => match op {
            ReduceOp::Any => "any",
            ReduceOp::All => "all",
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
        },
        OpKind::Concatenate { .. } => "concatenate",
    }
}

/// Keras's class of an operation: `NotEqual`, `Any`, ...
fn class_of(kind: &OpKind) -> &'static str {
    match kind {
        OpKind::Binary(b) => match b {
            BinaryOp::Equal => "Equal",
            BinaryOp::NotEqual => "NotEqual",
            BinaryOp::Greater => "Greater",
            BinaryOp::GreaterEqual => "GreaterEqual",
            BinaryOp::Less => "Less",
            BinaryOp::LessEqual => "LessEqual",
            BinaryOp::LogicalAnd => "LogicalAnd",
            BinaryOp::LogicalOr => "LogicalOr",
            BinaryOp::LogicalXor => "LogicalXor",
            BinaryOp::Add => "Add",
            BinaryOp::Subtract => "Subtract",
            BinaryOp::Multiply => "Multiply",
            BinaryOp::Divide => "Divide",
            BinaryOp::Maximum => "Maximum",
            BinaryOp::Minimum => "Minimum",
        },
        OpKind::Unary(u) => match u {
            UnaryOp::LogicalNot => "LogicalNot",
            UnaryOp::ZerosLike => "ZerosLike",
            UnaryOp::OnesLike => "OnesLike",
            UnaryOp::CastFloat | UnaryOp::CastInt | UnaryOp::CastBool => "Cast",
            UnaryOp::Absolute => "Absolute",
            UnaryOp::Negative => "Negative",
            UnaryOp::Square => "Square",
            UnaryOp::Sqrt => "Sqrt",
            UnaryOp::Exp => "Exp",
            UnaryOp::Log => "Log",
        },
        OpKind::ExpandDims { .. } => "ExpandDims",
        OpKind::Squeeze { .. } => "Squeeze",
        OpKind::Reduce { op, .. } => match op {
            ReduceOp::Any => "Any",
            ReduceOp::All => "All",
            ReduceOp::Sum => "Sum",
            ReduceOp::Mean => "Mean",
            ReduceOp::Max => "Max",
            ReduceOp::Min => "Min",
        },
        OpKind::Concatenate { .. } => "Concatenate",
    }
}

/// An axis of a rank-`rank` array, negative counting from the end.
fn axis_of(axis: isize, rank: usize) -> Option<usize> {
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

/// NumPy's broadcast of two shapes (right-aligned); unknown dimensions stay unknown.
fn broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
    let rank = a.rank().max(b.rank());
    let pad = |s: &Shape| -> Vec<Option<usize>> {
        let mut d = vec![Some(1); rank - s.rank()];
        d.extend_from_slice(s.dims());
        d
    };
    let (da, db) = (pad(a), pad(b));
    da.into_iter()
        .zip(db)
        .map(|(x, y)| match (x, y) {
            (Some(1), d) | (d, Some(1)) => Some(d),
            (None, d) | (d, None) => Some(d.or(None)),
            (Some(x), Some(y)) if x == y => Some(Some(x)),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .map(Shape::new)
}

impl Layer for Op {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        class_of(&self.kind)
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        Ok(None)
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let shapes = self.operand_shapes(inputs)?;
        let x = &shapes[0];
        let out = match &self.kind {
            OpKind::Binary(_) => broadcast(&shapes[0], &shapes[1]).ok_or_else(|| {
                self.error(format!(
                    "Cannot broadcast shapes {} and {}",
                    shapes[0], shapes[1]
                ))
            })?,
            OpKind::Unary(_) => x.clone(),
            OpKind::ExpandDims { axis } => {
                let at = axis_of(*axis, x.rank() + 1).ok_or_else(|| {
                    self.error(format!(
                        "axis {axis} is out of range for a result of rank {}",
                        x.rank() + 1
                    ))
                })?;
                let mut d = x.dims().to_vec();
                d.insert(at, Some(1));
                Shape::new(d)
            }
            OpKind::Squeeze { axis } => {
                let drop: Vec<usize> = match axis {
                    Some(a) => {
                        let at = axis_of(*a, x.rank()).ok_or_else(|| {
                            self.error(format!("axis {a} is out of range for {x}"))
                        })?;
                        if x.dim(at).is_some_and(|d| d != 1) {
                            return Err(self.error(format!(
                                "Cannot squeeze axis {a} of {x}: its size is not 1"
                            )));
                        }
                        vec![at]
                    }
                    None => (0..x.rank()).filter(|&i| x.dim(i) == Some(1)).collect(),
                };
                Shape::new(
                    (0..x.rank())
                        .filter(|i| !drop.contains(i))
                        .map(|i| x.dim(i))
                        .collect(),
                )
            }
            OpKind::Reduce { axis, keepdims, .. } => {
                let axes = self.reduced_axes(axis.as_deref(), x.rank())?;
                let mut d = Vec::new();
                for i in 0..x.rank() {
                    if !axes.contains(&i) {
                        d.push(x.dim(i));
                    } else if *keepdims {
                        d.push(Some(1));
                    }
                }
                Shape::new(d)
            }
            OpKind::Concatenate { axis } => {
                let rank = x.rank();
                let at = axis_of(*axis, rank)
                    .ok_or_else(|| self.error(format!("axis {axis} is out of range for {x}")))?;
                let mut d = x.dims().to_vec();
                for s in &shapes[1..] {
                    let fits = s.rank() == rank
                        && (0..rank).all(|i| {
                            i == at || s.dim(i).is_none() || d[i].is_none() || s.dim(i) == d[i]
                        });
                    if !fits {
                        return Err(
                            self.error(format!("Cannot concatenate {x} and {s} along axis {axis}"))
                        );
                    }
                    d[at] = match (d[at], s.dim(at)) {
                        (Some(a), Some(b)) => Some(a.saturating_add(b)),
                        _ => None,
                    };
                }
                Shape::new(d)
            }
        };
        limits::check_tensor(self.name.get(), "output", &out)?;
        Ok(vec![out])
    }

    weightless!();

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        _ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let shapes: Vec<Shape> = inputs.iter().map(|x| Shape::known(x.shape())).collect();
        let out_shape = self.compute_output_shape(&shapes)?.remove(0);
        let dims: Vec<usize> = out_shape.dims().iter().map(|d| d.unwrap_or(0)).collect();
        limits::check_dims(self.name.get(), "output", &dims)?;
        let operands = self.operands(inputs.len());
        let operand = |o: &Operand| -> ArrayD<f32> {
            match *o {
                Operand::Input(i) => inputs[i].to_owned(),
                Operand::Scalar(v) => ArrayD::from_elem(IxDyn(&[]), v),
            }
        };
        let out = match &self.kind {
            OpKind::Binary(op) => {
                let (a, b) = (operand(&operands[0]), operand(&operands[1]));
                let a = a.broadcast(IxDyn(&dims)).expect("checked shapes broadcast");
                let b = b.broadcast(IxDyn(&dims)).expect("checked shapes broadcast");
                let f = binary(*op);
                Zip::from(&a).and(&b).map_collect(|&x, &y| f(x, y))
            }
            OpKind::Unary(op) => operand(&operands[0]).mapv(unary(*op)),
            OpKind::ExpandDims { .. } | OpKind::Squeeze { .. } => {
                let x = operand(&operands[0]);
                let x = x.as_standard_layout().into_owned();
                x.into_shape_with_order(IxDyn(&dims))
                    .expect("the same elements in a new shape")
            }
            OpKind::Reduce { op, axis, keepdims } => {
                let x = operand(&operands[0]);
                let mut axes = self.reduced_axes(axis.as_deref(), x.ndim())?;
                check_not_empty(self.name.get(), x.shape())?;
                axes.sort_unstable();
                let mut acc = x;
                for &a in axes.iter().rev() {
                    acc = reduce(*op, acc.view(), Axis(a));
                    if *keepdims {
                        acc.insert_axis_inplace(Axis(a));
                    }
                }
                acc
            }
            OpKind::Concatenate { axis } => {
                let parts: Vec<ArrayD<f32>> = operands.iter().map(operand).collect();
                let views: Vec<ArrayViewD<'_, f32>> = parts.iter().map(|p| p.view()).collect();
                let at = axis_of(*axis, views[0].ndim()).expect("checked axis");
                ndarray::concatenate(Axis(at), &views)
                    .map_err(|e| self.error(format!("cannot concatenate: {e}")))?
            }
        };
        Ok(vec![out])
    }

    fn mask_policy(&self) -> MaskPolicy {
        MaskPolicy::Drop
    }
}

impl Op {
    fn reduced_axes(&self, axis: Option<&[isize]>, rank: usize) -> Result<Vec<usize>> {
        match axis {
            None => Ok((0..rank).collect()),
            Some(list) => list
                .iter()
                .map(|&a| {
                    axis_of(a, rank).ok_or_else(|| {
                        self.error(format!("axis {a} is out of range for rank {rank}"))
                    })
                })
                .collect(),
        }
    }
}

fn truth(x: f32) -> bool {
    x != 0.0
}

fn flag(b: bool) -> f32 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn binary(op: BinaryOp) -> fn(f32, f32) -> f32 {
    match op {
        BinaryOp::Equal => |x, y| flag(x == y),
        BinaryOp::NotEqual => |x, y| flag(x != y),
        BinaryOp::Greater => |x, y| flag(x > y),
        BinaryOp::GreaterEqual => |x, y| flag(x >= y),
        BinaryOp::Less => |x, y| flag(x < y),
        BinaryOp::LessEqual => |x, y| flag(x <= y),
        BinaryOp::LogicalAnd => |x, y| flag(truth(x) && truth(y)),
        BinaryOp::LogicalOr => |x, y| flag(truth(x) || truth(y)),
        BinaryOp::LogicalXor => |x, y| flag(truth(x) != truth(y)),
        BinaryOp::Add => |x, y| x + y,
        BinaryOp::Subtract => |x, y| x - y,
        BinaryOp::Multiply => |x, y| x * y,
        BinaryOp::Divide => |x, y| x / y,
        BinaryOp::Maximum => f32::max,
        BinaryOp::Minimum => f32::min,
    }
}

fn unary(op: UnaryOp) -> fn(f32) -> f32 {
    match op {
        UnaryOp::LogicalNot => |x| flag(!truth(x)),
        UnaryOp::ZerosLike => |_| 0.0,
        UnaryOp::OnesLike => |_| 1.0,
        UnaryOp::CastFloat => |x| x,
        UnaryOp::CastInt => f32::trunc,
        UnaryOp::CastBool => |x| flag(truth(x)),
        UnaryOp::Absolute => f32::abs,
        UnaryOp::Negative => |x| -x,
        UnaryOp::Square => |x| x * x,
        UnaryOp::Sqrt => f32::sqrt,
        UnaryOp::Exp => f32::exp,
        UnaryOp::Log => f32::ln,
    }
}

fn reduce(op: ReduceOp, x: ArrayViewD<'_, f32>, axis: Axis) -> ArrayD<f32> {
    let n = x.len_of(axis) as f32;
    match op {
        ReduceOp::Any => x.map_axis(axis, |l| flag(l.iter().any(|&v| truth(v)))),
        ReduceOp::All => x.map_axis(axis, |l| flag(l.iter().all(|&v| truth(v)))),
        ReduceOp::Sum => x.sum_axis(axis),
        ReduceOp::Mean => x.sum_axis(axis).mapv(|s| s / n),
        ReduceOp::Max => x.map_axis(axis, |l| {
            l.iter().copied().fold(f32::NEG_INFINITY, f32::max)
        }),
        ReduceOp::Min => x.map_axis(axis, |l| l.iter().copied().fold(f32::INFINITY, f32::min)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn run(op: Op, inputs: &[ArrayD<f32>]) -> Result<ArrayD<f32>> {
        let views: Vec<_> = inputs.iter().map(|a| a.view()).collect();
        Ok(op.call(&views, &mut CallContext::inference())?.remove(0))
    }

    #[test]
    fn masks_as_keras_3_computes_them() -> Result<()> {
        let ids = array![[4.0_f32, 2.0, 0.0], [0.0, 0.0, 0.0]].into_dyn();
        let ne = Op::new(OpKind::Binary(BinaryOp::NotEqual))
            .with_operands(vec![Operand::Input(0), Operand::Scalar(0.0)]);
        let m = run(ne, &[ids])?;
        assert_eq!(m, array![[1.0_f32, 1.0, 0.0], [0.0, 0.0, 0.0]].into_dyn());
        let e = run(
            Op::new(OpKind::ExpandDims { axis: -1 }),
            std::slice::from_ref(&m),
        )?;
        assert_eq!(e.shape(), &[2, 3, 1]);
        let z = run(
            Op::new(OpKind::Unary(UnaryOp::ZerosLike)),
            &[ArrayD::ones(IxDyn(&[2, 3, 2]))],
        )?;
        let or = run(Op::new(OpKind::Binary(BinaryOp::LogicalOr)), &[e, z])?;
        assert_eq!(or.shape(), &[2, 3, 2]);
        let any = Op::new(OpKind::Reduce {
            op: ReduceOp::Any,
            axis: Some(vec![-1]),
            keepdims: false,
        });
        assert_eq!(run(any, &[or])?, m);
        Ok(())
    }

    #[test]
    fn shapes_broadcast_as_numpy() -> Result<()> {
        let op = Op::new(OpKind::Binary(BinaryOp::Add));
        let s = |d: Vec<Option<usize>>| Shape::new(d);
        let out = op.compute_output_shape(&[s(vec![None, Some(5), Some(1)]), s(vec![Some(3)])])?;
        assert_eq!(out[0].to_string(), "(None, 5, 3)");
        assert!(op
            .compute_output_shape(&[s(vec![None, Some(5)]), s(vec![Some(3)])])
            .is_err());
        let cat = Op::new(OpKind::Concatenate { axis: 1 });
        let out = cat.compute_output_shape(&[
            s(vec![None, Some(5), Some(2)]),
            s(vec![None, Some(4), Some(2)]),
        ])?;
        assert_eq!(out[0].to_string(), "(None, 9, 2)");
        Ok(())
    }

    #[test]
    fn reductions_keep_or_drop_axes() -> Result<()> {
        let x = array![[[1.0_f32, 3.0], [0.0, 0.0]]].into_dyn();
        let mean = Op::new(OpKind::Reduce {
            op: ReduceOp::Mean,
            axis: Some(vec![1]),
            keepdims: true,
        });
        assert_eq!(
            run(mean, std::slice::from_ref(&x))?,
            array![[[0.5_f32, 1.5]]].into_dyn()
        );
        let all = Op::new(OpKind::Reduce {
            op: ReduceOp::All,
            axis: Some(vec![-1]),
            keepdims: false,
        });
        assert_eq!(run(all, &[x])?, array![[1.0_f32, 0.0]].into_dyn());
        Ok(())
    }
}
