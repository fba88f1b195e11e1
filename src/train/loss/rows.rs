//! A batch laid out as rows, one per loss element, with the reduced axis along the row: the
//! shape rules Keras applies between `y_true` and `y_pred`, and the checks of the targets.

use ndarray::{ArrayView2, ArrayViewD, CowArray, Ix1, Ix2};

use super::kernels::Target;
use crate::error::{Error, Result};
use crate::shape::Shape;

/// How a loss or a metric reads `y_true` against `y_pred`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout<'n> {
    /// The loss's or metric's name, for the errors.
    pub(crate) who: &'n str,
    /// The reduced axis (CosineSimilarity's `axis`); the last one when `None`.
    pub(crate) axis: Option<isize>,
    /// What the targets are.
    pub(crate) targets: TargetKind,
}

/// What a loss or metric takes as targets, and what it refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetKind {
    /// Any values, of y_pred's shape.
    Values,
    /// Probabilities in `[0, 1]` (binary crossentropy).
    Probabilities,
    /// One-hot targets or probabilities in `[0, 1]`, whose width must be the output's units.
    OneHot,
    /// One-hot targets (or anything whose argmax is the class), whose width must be the units.
    Classes,
    /// All 0/1 or all -1/1 (hinge losses).
    Signs,
    /// 0 or 1 only (binary accuracy, AUC, precision, recall).
    Binary,
    /// Integer class labels, of y_pred's shape without its last axis.
    Sparse {
        /// A label to leave out, which need not be a class.
        ignore_class: Option<i64>,
    },
}

/// `y_pred` as `(rows, width)` with its targets, ready for the kernels.
#[derive(Debug)]
pub(crate) struct Rows<'a> {
    pred: CowArray<'a, f32, Ix2>,
    targets: Targets<'a>,
    /// `y_pred`'s shape without its reduced axis: the shape of the losses.
    pub(crate) loss_shape: Vec<usize>,
    /// The axes of `y_pred` in row order, when the reduced axis was not the last one.
    pub(crate) permutation: Option<Vec<usize>>,
    /// Every target is 0 or 1 (hinge losses then read them as -1 and 1).
    pub(crate) binary_targets: bool,
    ignore_class: Option<f32>,
}

#[derive(Debug)]
enum Targets<'a> {
    Dense(CowArray<'a, f32, Ix2>),
    Labels(CowArray<'a, f32, Ix1>),
}

impl<'a> Rows<'a> {
    /// Lays out `y_true` and `y_pred` as `layout` reads them, checking their shapes and the
    /// targets.
    pub(crate) fn new(
        layout: Layout<'_>,
        y_true: ArrayViewD<'a, f32>,
        y_pred: ArrayViewD<'a, f32>,
    ) -> Result<Self> {
        let who = layout.who;
        let invalid = |message: String| Error::InvalidArgument {
            layer: who.to_string(),
            message,
        };
        let (ts, ps) = (&y_true.shape().to_vec(), &y_pred.shape().to_vec());
        if ps.len() < 2 {
            return Err(invalid(format!(
                "y_pred must have a batch axis and at least one more, got {}",
                Shape::known(ps)
            )));
        }
        if y_pred.is_empty() {
            return Err(Error::EmptyInput {
                layer: who.to_string(),
                shape: Shape::known(ps),
            });
        }
        let axis = reduced_axis(layout.axis, ps.len()).map_err(invalid)?;
        let width = ps[axis];
        let rows = y_pred.len() / width;
        let mut loss_shape = ps.to_vec();
        loss_shape.remove(axis);
        let permutation = (axis != ps.len() - 1).then(|| {
            let mut p: Vec<usize> = (0..ps.len()).filter(|&a| a != axis).collect();
            p.push(axis);
            p
        });
        let shapes = format!(
            "y_true {} and y_pred {}",
            Shape::known(ts),
            Shape::known(ps)
        );

        let targets = if let TargetKind::Sparse { .. } = layout.targets {
            let lead = &ps[..ps.len() - 1];
            if ts != lead
                && !(ts.len() == ps.len() && ts[..lead.len()] == *lead && ts[lead.len()] == 1)
            {
                return Err(invalid(format!(
                    "sparse labels need y_pred's shape without its last axis, {}, or with a \
                     trailing 1; got {shapes}",
                    Shape::known(lead)
                )));
            }
            if width < 2 {
                return Err(invalid(format!(
                    "sparse labels need an output of 2 classes or more, got {shapes}; for one \
                     sigmoid unit use binary_crossentropy"
                )));
            }
            Targets::Labels(
                into_rows(y_true, None, rows, 1)
                    .into_shape_with_order(rows)
                    .expect("one column"),
            )
        } else {
            let same = ts == ps;
            let fits = same
                || (permutation.is_none()
                    && ((ts.len() + 1 == ps.len() && ps[..ts.len()] == *ts && ps[ts.len()] == 1)
                        || (ts.len() == ps.len() + 1
                            && ts[..ps.len()] == *ps
                            && ts[ps.len()] == 1)));
            if !fits {
                let one_hot = matches!(layout.targets, TargetKind::OneHot | TargetKind::Classes)
                    && ts.len() == ps.len()
                    && ts[..ts.len() - 1] == ps[..ps.len() - 1];
                return Err(invalid(if one_hot {
                    format!(
                        "one-hot targets of {} classes for an output of {} units: {shapes}",
                        ts[ts.len() - 1],
                        ps[ps.len() - 1]
                    )
                } else {
                    format!("y_true and y_pred must have the same shape, got {shapes}")
                }));
            }
            Targets::Dense(into_rows(y_true, permutation.as_deref(), rows, width))
        };
        let ignore_class = match layout.targets {
            TargetKind::Sparse { ignore_class } => ignore_class.map(|c| c as f32),
            _ => None,
        };
        let mut out = Rows {
            pred: into_rows(y_pred, permutation.as_deref(), rows, width),
            targets,
            loss_shape,
            permutation,
            binary_targets: false,
            ignore_class,
        };
        out.binary_targets = out.check_targets(layout.targets, ts).map_err(invalid)?;
        Ok(out)
    }

    /// The number of rows (loss elements).
    pub(crate) fn len(&self) -> usize {
        self.pred.nrows()
    }

    /// The number of values along each row (the reduced axis).
    pub(crate) fn width(&self) -> usize {
        self.pred.ncols()
    }

    /// The predictions of row `r`.
    pub(crate) fn pred(&self, r: usize) -> &[f32] {
        self.pred
            .row(r)
            .to_slice()
            .expect("rows are laid out contiguously")
    }

    /// The target of row `r`.
    pub(crate) fn target(&self, r: usize) -> Target<'_> {
        match &self.targets {
            Targets::Dense(t) => Target::Dense(t.row(r).to_slice().expect("rows are contiguous")),
            Targets::Labels(l) => Target::Label(l[r] as usize),
        }
    }

    /// The targets of row `r`, for dense targets.
    pub(crate) fn target_values(&self, r: usize) -> &[f32] {
        match self.target(r) {
            Target::Dense(t) => t,
            Target::Label(_) => unreachable!("sparse labels have no row of targets"),
        }
    }

    /// The label of row `r`, for sparse labels.
    pub(crate) fn label(&self, r: usize) -> usize {
        match self.target(r) {
            Target::Label(l) => l,
            Target::Dense(_) => unreachable!("dense targets have no label"),
        }
    }

    /// Whether row `r`'s label is the ignored class.
    pub(crate) fn ignored(&self, r: usize) -> bool {
        match (&self.targets, self.ignore_class) {
            (Targets::Labels(l), Some(c)) => l[r] == c,
            _ => false,
        }
    }

    /// Whether the loss ignores a class (so that the count of valid rows may be below the rows).
    pub(crate) fn ignores_a_class(&self) -> bool {
        self.ignore_class.is_some()
    }

    /// The checks that keep silently wrong numbers out (see [`Loss`](super::Loss)'s
    /// `# Errors`). Returns whether every target is 0 or 1.
    fn check_targets(
        &self,
        kind: TargetKind,
        shape: &[usize],
    ) -> std::result::Result<bool, String> {
        let at = |i: usize| index_in(shape, i);
        match &self.targets {
            Targets::Labels(labels) => {
                let classes = self.width();
                for (i, &l) in labels.iter().enumerate() {
                    if Some(l) == self.ignore_class {
                        continue;
                    }
                    if l.fract() != 0.0 || !l.is_finite() {
                        return Err(format!("label {l} at {} is not a class index", at(i)));
                    }
                    if l < 0.0 || l >= classes as f32 {
                        return Err(format!(
                            "label {l} at {} is out of range for {classes} classes: labels must \
                             be in [0, {classes})",
                            at(i)
                        ));
                    }
                }
                Ok(false)
            }
            Targets::Dense(t) => {
                // Rows are permuted only for CosineSimilarity, which checks nothing: the laid-out
                // targets are y_true's elements in its own order.
                let t = t.as_slice().expect("rows are laid out contiguously");
                let binary = t.iter().all(|&v| v == 0.0 || v == 1.0);
                let first_bad = |ok: fn(f32) -> bool| t.iter().position(|&v| !ok(v));
                let (bad, rule) = match kind {
                    TargetKind::Probabilities | TargetKind::OneHot => (
                        first_bad(|v| (0.0..=1.0).contains(&v)),
                        "targets must be probabilities in [0, 1]",
                    ),
                    TargetKind::Signs if !binary => (
                        first_bad(|v| v == -1.0 || v == 1.0),
                        "targets must be all 0 or 1, or all -1 or 1 (Keras converts 0/1 only \
                         when every target of the batch is 0 or 1)",
                    ),
                    TargetKind::Binary => (
                        first_bad(|v| v == 0.0 || v == 1.0),
                        "targets must be 0 or 1",
                    ),
                    _ => (None, ""),
                };
                match bad {
                    Some(i) => Err(format!("{rule}, got {} at {}", t[i], at(i))),
                    None => Ok(binary),
                }
            }
        }
    }
}

/// The axis reduced: `axis` if given (not the batch's), else the last one.
fn reduced_axis(axis: Option<isize>, rank: usize) -> std::result::Result<usize, String> {
    let Some(axis) = axis else {
        return Ok(rank - 1);
    };
    let a = if axis < 0 { axis + rank as isize } else { axis };
    if a <= 0 || a >= rank as isize {
        return Err(format!(
            "axis {axis} is not an axis of the output other than the batch (rank {rank})"
        ));
    }
    Ok(a as usize)
}

/// `a` as `(rows, width)` rows in row-major order after `permutation`: a view when it already
/// is one, else a copy.
fn into_rows<'a>(
    a: ArrayViewD<'a, f32>,
    permutation: Option<&[usize]>,
    rows: usize,
    width: usize,
) -> CowArray<'a, f32, Ix2> {
    let a = match permutation {
        Some(p) => a.permuted_axes(p.to_vec()),
        None => a,
    };
    match a.clone().into_shape_with_order((rows, width)) {
        Ok(v) => CowArray::from(v),
        Err(_) => {
            let owned: Vec<f32> = a.iter().copied().collect();
            CowArray::from(
                ArrayView2::from_shape((rows, width), &owned)
                    .expect("sizes agree")
                    .to_owned(),
            )
        }
    }
}

/// `[i, j, ...]`: the multi-index of row-major element `i` of an array of `shape`.
pub(crate) fn index_in(shape: &[usize], mut i: usize) -> String {
    let mut idx = vec![0; shape.len()];
    for (k, &d) in shape.iter().enumerate().rev() {
        idx[k] = i % d.max(1);
        i /= d.max(1);
    }
    let parts: Vec<String> = idx.iter().map(|v| v.to_string()).collect();
    format!("[{}]", parts.join(", "))
}
