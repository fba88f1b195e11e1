//! Weight constraints, as Keras's `keras.constraints` project a weight after each optimizer
//! step: what a layer's `kernel_constraint`, `recurrent_constraint`, `bias_constraint`, ... do
//! in training.

use ndarray::{ArrayD, ArrayViewMutD, Axis};

use crate::error::{Error, Result};

/// Keras's float epsilon (`keras.backend.epsilon()`), in the norms' denominators.
const EPSILON: f32 = 1e-7;

/// A projection applied to a weight after every optimizer step (Keras applies each
/// variable's `constraint` right after the optimizer updates it), with `n` the L2 norm of each
/// slice over `axes` (Keras's `axis`, 0 by default: each column of a Dense kernel):
///
/// ```text
/// MaxNorm(max_value, axis)                 w · clip(n, 0, max_value) / (ε + n)
/// NonNeg                                   max(w, 0)
/// UnitNorm(axis)                           w / (ε + n)
/// MinMaxNorm(min_value, max_value, rate)   w · (rate · clip(n, min, max) + (1 − rate) · n) / (ε + n)
/// ```
///
/// with ε = 1e-7 (`keras.backend.epsilon()`), as tf_keras 2.21 and Keras 3.15 compute them.
///
/// ```
/// use ndarray::arr2;
/// use seqnn::train::Constraint;
/// let mut w = arr2(&[[3.0_f32, 0.1], [4.0, 0.0]]).into_dyn();
/// Constraint::max_norm(1.0).apply(&mut w.view_mut())?;
/// // The first column's norm was 5: it is scaled to 1; the second stays.
/// assert!((w[[0, 0]] - 0.6).abs() < 1e-6 && (w[[1, 0]] - 0.8).abs() < 1e-6);
/// assert!((w[[0, 1]] - 0.1).abs() < 1e-6);
/// # Ok::<(), seqnn::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// Keras's `MaxNorm(max_value=2, axis=0)`.
    MaxNorm {
        /// The largest norm a slice keeps.
        max_value: f32,
        /// The axes the norm runs over (negative ones count from the end).
        axes: Vec<isize>,
    },
    /// Keras's `NonNeg()`.
    NonNeg,
    /// Keras's `UnitNorm(axis=0)`.
    UnitNorm {
        /// The axes the norm runs over.
        axes: Vec<isize>,
    },
    /// Keras's `MinMaxNorm(min_value=0, max_value=1, rate=1, axis=0)`.
    MinMaxNorm {
        /// The smallest norm.
        min_value: f32,
        /// The largest norm.
        max_value: f32,
        /// How far toward the interval each step moves the norm (1: all the way).
        rate: f32,
        /// The axes the norm runs over.
        axes: Vec<isize>,
    },
}

impl Constraint {
    /// Keras's `MaxNorm(max_value)`, over axis 0.
    pub fn max_norm(max_value: f32) -> Self {
        Constraint::MaxNorm {
            max_value,
            axes: vec![0],
        }
    }

    /// Keras's `NonNeg()`.
    pub fn non_neg() -> Self {
        Constraint::NonNeg
    }

    /// Keras's `UnitNorm()`, over axis 0.
    pub fn unit_norm() -> Self {
        Constraint::UnitNorm { axes: vec![0] }
    }

    /// Keras's `MinMaxNorm(min_value, max_value, rate)`, over axis 0.
    pub fn min_max_norm(min_value: f32, max_value: f32, rate: f32) -> Self {
        Constraint::MinMaxNorm {
            min_value,
            max_value,
            rate,
            axes: vec![0],
        }
    }

    /// The same constraint with its norm over `axes` (Keras's `axis`, an int or a list).
    #[must_use]
    pub fn with_axes(self, axes: Vec<isize>) -> Self {
        match self {
            Constraint::MaxNorm { max_value, .. } => Constraint::MaxNorm { max_value, axes },
            Constraint::NonNeg => Constraint::NonNeg,
            Constraint::UnitNorm { .. } => Constraint::UnitNorm { axes },
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                ..
            } => Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                axes,
            },
        }
    }

    /// The constraint of a Keras string: `"max_norm"`, `"non_neg"`, `"unit_norm"` and
    /// `"min_max_norm"` with Keras's defaults.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for any other name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "max_norm" | "MaxNorm" => Ok(Constraint::max_norm(2.0)),
            "non_neg" | "NonNeg" => Ok(Constraint::NonNeg),
            "unit_norm" | "UnitNorm" => Ok(Constraint::unit_norm()),
            "min_max_norm" | "MinMaxNorm" => Ok(Constraint::min_max_norm(0.0, 1.0, 1.0)),
            _ => Err(Error::InvalidArgument {
                layer: "constraint".into(),
                message: format!(
                    "unknown constraint {name:?}: seqnn has \"max_norm\", \"non_neg\", \
                     \"unit_norm\" and \"min_max_norm\""
                ),
            }),
        }
    }

    /// Keras's class name for it.
    pub fn class_name(&self) -> &'static str {
        match self {
            Constraint::MaxNorm { .. } => "MaxNorm",
            Constraint::NonNeg => "NonNeg",
            Constraint::UnitNorm { .. } => "UnitNorm",
            Constraint::MinMaxNorm { .. } => "MinMaxNorm",
        }
    }

    /// The axes of the norm (empty for `NonNeg`).
    pub fn axes(&self) -> &[isize] {
        match self {
            Constraint::MaxNorm { axes, .. }
            | Constraint::UnitNorm { axes }
            | Constraint::MinMaxNorm { axes, .. } => axes,
            Constraint::NonNeg => &[],
        }
    }

    /// Checks that the constraint fits a weight of `shape`: its axes exist and are distinct.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `weight` and quoting the shape.
    pub fn check(&self, weight: &str, shape: &[usize]) -> Result<()> {
        self.resolved_axes(shape)
            .map(|_| ())
            .ok_or_else(|| Error::InvalidArgument {
                layer: weight.to_string(),
                message: format!(
                    "{} over axis {:?} does not fit a weight of shape {:?}",
                    self.class_name(),
                    self.axes(),
                    shape
                ),
            })
    }

    fn resolved_axes(&self, shape: &[usize]) -> Option<Vec<usize>> {
        let rank = shape.len() as isize;
        let mut out = Vec::new();
        for &a in self.axes() {
            let a = if a < 0 { a + rank } else { a };
            if !(0..rank).contains(&a) || out.contains(&(a as usize)) {
                return None;
            }
            out.push(a as usize);
        }
        Some(out)
    }

    /// Projects `w` in place.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when an axis does not fit `w`'s shape ([`check`](Self::check)).
    pub fn apply(&self, w: &mut ArrayViewMutD<'_, f32>) -> Result<()> {
        self.check("constraint", w.shape())?;
        let axes = self.resolved_axes(w.shape()).unwrap_or_default();
        let scale = |norm: f32| -> f32 {
            match *self {
                Constraint::MaxNorm { max_value, .. } => {
                    norm.clamp(0.0, max_value.max(0.0)) / (EPSILON + norm)
                }
                Constraint::UnitNorm { .. } => 1.0 / (EPSILON + norm),
                Constraint::MinMaxNorm {
                    min_value,
                    max_value,
                    rate,
                    ..
                } => {
                    let clipped = norm.max(min_value).min(max_value);
                    (rate * clipped + (1.0 - rate) * norm) / (EPSILON + norm)
                }
                Constraint::NonNeg => 1.0,
            }
        };
        if matches!(self, Constraint::NonNeg) {
            w.mapv_inplace(|v| v.max(0.0));
            return Ok(());
        }
        // The squared norms with the constrained axes kept at length 1, then each value
        // scaled by its slice's factor.
        let mut sq: ArrayD<f32> = w.mapv(|v| v * v);
        for &a in &axes {
            sq = sq.sum_axis(Axis(a)).insert_axis(Axis(a));
        }
        let factors = sq.mapv(|s| scale(s.sqrt()));
        let factors = factors
            .broadcast(w.raw_dim())
            .expect("kept axes broadcast to the weight");
        ndarray::Zip::from(w)
            .and(&factors)
            .for_each(|v, &f| *v *= f);
        Ok(())
    }
}

impl std::str::FromStr for Constraint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Constraint::from_name(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr2;

    #[test]
    fn norms_run_over_the_given_axes() -> Result<()> {
        let w0 = arr2(&[[3.0_f32, 6.0], [4.0, 8.0]]).into_dyn();
        // Over axis 1: rows of norm sqrt(45) and sqrt(80), each made 1.
        let mut w = w0.clone();
        Constraint::unit_norm()
            .with_axes(vec![-1])
            .apply(&mut w.view_mut())?;
        let n0 = 45.0_f32.sqrt();
        approx::assert_abs_diff_eq!(w[[0, 0]], 3.0 / (1e-7 + n0), epsilon = 1e-6);
        approx::assert_abs_diff_eq!(w[[1, 1]], 8.0 / (1e-7 + 80.0_f32.sqrt()), epsilon = 1e-6);
        // Over both axes: one norm, sqrt(125).
        let mut w = w0.clone();
        Constraint::min_max_norm(0.0, 5.0, 0.5)
            .with_axes(vec![0, 1])
            .apply(&mut w.view_mut())?;
        let n = 125.0_f32.sqrt();
        let f = (0.5 * 5.0 + 0.5 * n) / (1e-7 + n);
        approx::assert_abs_diff_eq!(w[[1, 0]], 4.0 * f, epsilon = 1e-5);
        let mut w = w0.clone();
        Constraint::NonNeg.apply(&mut w.view_mut())?;
        assert_eq!(w, w0);
        Ok(())
    }

    #[test]
    fn an_axis_the_weight_lacks_is_an_error() {
        let mut w = ndarray::ArrayD::<f32>::zeros(vec![3]);
        let err = Constraint::max_norm(1.0)
            .with_axes(vec![1])
            .apply(&mut w.view_mut())
            .expect_err("axis 1 of a vector");
        assert!(err.to_string().contains("[3]"), "{err}");
    }
}
