//! Weight and activity penalties, as Keras's `keras.regularizers` compute them: what a layer's
//! `kernel_regularizer`, `recurrent_regularizer`, `bias_regularizer`, ... and
//! `activity_regularizer` add to the loss in training.

use ndarray::{ArrayViewD, ArrayViewMutD, Zip};

use crate::error::{Error, Result};

/// A penalty on a weight (or on a layer's output), added to the loss that training minimizes,
/// as Keras's regularizers compute it, in float32:
///
/// ```text
/// L1(l1)        l1 · Σ |x|
/// L2(l2)        l2 · Σ x²
/// L1L2(l1, l2)  l1 · Σ |x| + l2 · Σ x²
/// ```
///
/// Keras's `keras.regularizers.L1`, `L2` and `L1L2` (strings `"l1"`, `"l2"`, `"l1_l2"`, with
/// their default factors 0.01). Its `OrthogonalRegularizer` is kept as read from a file and
/// saved again, but refused by a training call.
///
/// ```
/// use ndarray::arr1;
/// use seqnn::train::Regularizer;
/// let x = arr1(&[1.0_f32, -2.0]).into_dyn();
/// assert_eq!(Regularizer::l2(0.5).penalty(x.view()), 2.5);
/// assert_eq!(Regularizer::l1_l2(1.0, 1.0).penalty(x.view()), 8.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Regularizer {
    /// Keras's `L1(l1)`.
    L1(f32),
    /// Keras's `L2(l2)`.
    L2(f32),
    /// Keras's `L1L2(l1, l2)`.
    L1L2 {
        /// The factor of `Σ |x|`.
        l1: f32,
        /// The factor of `Σ x²`.
        l2: f32,
    },
    /// Keras's `OrthogonalRegularizer(factor, mode)`: kept and saved, not trained.
    Orthogonal {
        /// Keras's `factor`.
        factor: f32,
        /// Keras's `mode`: `true` for `"rows"`, `false` for `"columns"`.
        rows: bool,
    },
}

impl Regularizer {
    /// Keras's `L1(l1)`.
    pub fn l1(l1: f32) -> Self {
        Regularizer::L1(l1)
    }

    /// Keras's `L2(l2)`.
    pub fn l2(l2: f32) -> Self {
        Regularizer::L2(l2)
    }

    /// Keras's `L1L2(l1, l2)`.
    pub fn l1_l2(l1: f32, l2: f32) -> Self {
        Regularizer::L1L2 { l1, l2 }
    }

    /// The regularizer of a Keras string: `"l1"`, `"l2"` and `"l1_l2"` with Keras's default
    /// factors (0.01, and 0.01 each for `l1_l2`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for any other name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "l1" | "L1" => Ok(Regularizer::L1(0.01)),
            "l2" | "L2" => Ok(Regularizer::L2(0.01)),
            "l1_l2" | "l1l2" | "L1L2" => Ok(Regularizer::L1L2 { l1: 0.01, l2: 0.01 }),
            _ => Err(Error::InvalidArgument {
                layer: "regularizer".into(),
                message: format!(
                    "unknown regularizer {name:?}: seqnn has \"l1\", \"l2\" and \"l1_l2\""
                ),
            }),
        }
    }

    /// Keras's class name for it: `L1`, `L2`, `L1L2` or `OrthogonalRegularizer`.
    pub fn class_name(&self) -> &'static str {
        match self {
            Regularizer::L1(_) => "L1",
            Regularizer::L2(_) => "L2",
            Regularizer::L1L2 { .. } => "L1L2",
            Regularizer::Orthogonal { .. } => "OrthogonalRegularizer",
        }
    }

    /// The L1 and L2 factors, for the penalties training computes; `None` for
    /// `OrthogonalRegularizer`.
    fn factors(&self) -> Option<(f32, f32)> {
        match *self {
            Regularizer::L1(l1) => Some((l1, 0.0)),
            Regularizer::L2(l2) => Some((0.0, l2)),
            Regularizer::L1L2 { l1, l2 } => Some((l1, l2)),
            Regularizer::Orthogonal { .. } => None,
        }
    }

    /// Whether training can compute it (all but `OrthogonalRegularizer`).
    pub fn trains(&self) -> bool {
        self.factors().is_some()
    }

    /// The penalty of `x`, summed in float64 and rounded once (Keras sums in float32; the two
    /// agree to float32's precision). 0 for `OrthogonalRegularizer`, which training refuses.
    pub fn penalty(&self, x: ArrayViewD<'_, f32>) -> f32 {
        let Some((l1, l2)) = self.factors() else {
            return 0.0;
        };
        let (mut abs, mut sq) = (0.0_f64, 0.0_f64);
        for &v in x.iter() {
            let v = f64::from(v);
            abs += v.abs();
            sq += v * v;
        }
        let mut total = 0.0_f32;
        // Keras adds a term only for a factor that is not 0 (so that 0 · inf is no NaN).
        if l1 != 0.0 {
            total += l1 * abs as f32;
        }
        if l2 != 0.0 {
            total += l2 * sq as f32;
        }
        total
    }

    /// Adds `scale ·` the penalty's gradient with respect to `x` to `grad`: `l1 · sign(x)`
    /// (0 at 0, as TensorFlow's `abs` differentiates) and `2 · l2 · x`.
    pub fn add_gradient(&self, x: ArrayViewD<'_, f32>, scale: f32, grad: ArrayViewMutD<'_, f32>) {
        let Some((l1, l2)) = self.factors() else {
            return;
        };
        let (a, b) = (scale * l1, scale * 2.0 * l2);
        Zip::from(grad).and(&x).for_each(|g, &v| {
            let sign = if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                0.0
            };
            *g += a * sign + b * v;
        });
    }
}

impl std::str::FromStr for Regularizer {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Regularizer::from_name(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, ArrayD};

    #[test]
    fn gradients_are_the_penalties_derivatives() {
        let x = arr1(&[0.3_f32, -0.7, 0.0, 1.2]).into_dyn();
        let r = Regularizer::l1_l2(0.1, 0.2);
        let mut g = ArrayD::<f32>::zeros(x.raw_dim());
        r.add_gradient(x.view(), 1.0, g.view_mut());
        for i in 0..4 {
            if x[i] == 0.0 {
                // TensorFlow's gradient of |x| at 0 is 0; the L2 term's is 0 too.
                assert_eq!(g[i], 0.0);
                continue;
            }
            let h = 1e-3_f32;
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (r.penalty(up.view()) - r.penalty(down.view())) / (2.0 * h);
            approx::assert_abs_diff_eq!(g[i], numeric, epsilon = 1e-3);
        }
    }

    #[test]
    fn names_give_keras_defaults() -> Result<()> {
        assert_eq!("l2".parse::<Regularizer>()?, Regularizer::L2(0.01));
        assert_eq!(
            Regularizer::from_name("l1_l2")?,
            Regularizer::L1L2 { l1: 0.01, l2: 0.01 }
        );
        assert!(Regularizer::from_name("l3").is_err());
        Ok(())
    }
}
