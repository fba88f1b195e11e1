//! Gradient clipping, as Keras 3's optimizers apply it before a step: `clipnorm` (each
//! gradient on its own), `global_clipnorm` (all of them together) or `clipvalue` (each element).

use ndarray::{ArrayBase, ArrayViewMutD, DataMut, IxDyn};

use crate::error::{Error, Result};
use crate::train::config::py_option;
use crate::train::elements::{map_in_place, sum_of_squares};

/// Keras's three clipping options, at most one of them set.
///
/// Every optimizer has one (`Adam::new().with_clipnorm(1.0)`); it can also clip gradients on its
/// own. With `c` the option's value, as float32:
///
/// ```text
/// clipnorm:        g ← (g·c) / max(‖g‖, c)          each gradient, ‖g‖ = sqrt(Σ g²)
/// global_clipnorm: g ← g · c·min(1/N, 1/c)          N = sqrt(Σ over every gradient of Σ g²)
/// clipvalue:       g ← clip(g, -c, c)               each element
/// ```
///
/// These are Keras 3's formulas with the TensorFlow backend: `tf.clip_by_norm` for `clipnorm`
/// (`‖g‖` is 0 for a zero gradient, which then stays zero), and `base_optimizer.py`'s own
/// `clip_by_global_norm` (`1/c` is computed in float64 and rounded, and a global norm that is
/// not finite makes every gradient NaN). An option that is 0 or negative clips nothing, as in
/// Keras. tf_keras 2.21 clips with the same formulas up to the last bit (its global norm goes
/// through `tf.nn.l2_loss`), and refuses only `clipnorm` with `global_clipnorm`, where Keras 3
/// refuses any two.
///
/// ```
/// use ndarray::{arr1, ArrayD};
/// use seqnn::train::GradientClipping;
/// let clip = GradientClipping::new().with_clipnorm(1.0);
/// let mut g: ArrayD<f32> = arr1(&[3.0, 4.0]).into_dyn();  // ‖g‖ = 5
/// clip.apply(&mut [g.view_mut()])?;
/// assert_eq!(g, arr1(&[0.6, 0.8]).into_dyn());
/// # Ok::<(), seqnn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GradientClipping {
    clipnorm: Option<f64>,
    clipvalue: Option<f64>,
    global_clipnorm: Option<f64>,
}

/// The clipping that applies, once Keras's order has been followed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Active {
    Norm(f32),
    GlobalNorm(f64),
    Value(f32),
}

impl GradientClipping {
    /// No clipping (Keras's default: all three `None`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Keras's `clipnorm`: each gradient is scaled so that its L2 norm is at most this.
    pub fn with_clipnorm(mut self, clipnorm: f64) -> Self {
        self.clipnorm = Some(clipnorm);
        self
    }

    /// Keras's `clipvalue`: each element is clipped to `[-clipvalue, clipvalue]`.
    pub fn with_clipvalue(mut self, clipvalue: f64) -> Self {
        self.clipvalue = Some(clipvalue);
        self
    }

    /// Keras's `global_clipnorm`: all gradients are scaled together so that the norm of their
    /// concatenation is at most this.
    pub fn with_global_clipnorm(mut self, global_clipnorm: f64) -> Self {
        self.global_clipnorm = Some(global_clipnorm);
        self
    }

    /// `clipnorm`, if set.
    pub fn clipnorm(&self) -> Option<f64> {
        self.clipnorm
    }

    /// `clipvalue`, if set.
    pub fn clipvalue(&self) -> Option<f64> {
        self.clipvalue
    }

    /// `global_clipnorm`, if set.
    pub fn global_clipnorm(&self) -> Option<f64> {
        self.global_clipnorm
    }

    /// Keras 3's check: at most one of the three may be set (and, in seqnn, each finite).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `owner`, in Keras's words: ``Only one of `clipnorm`,
    /// `clipvalue` and `global_clipnorm` can be set. Received: clipnorm=1.0, clipvalue=None,
    /// global_clipnorm=1.0``.
    pub fn check(&self, owner: &str) -> Result<()> {
        let set = [self.clipnorm, self.clipvalue, self.global_clipnorm];
        if set.iter().flatten().count() > 1 {
            return Err(Error::InvalidArgument {
                layer: owner.to_string(),
                message: format!(
                    "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. \
                     Received: clipnorm={}, clipvalue={}, global_clipnorm={}",
                    py_option(self.clipnorm),
                    py_option(self.clipvalue),
                    py_option(self.global_clipnorm)
                ),
            });
        }
        Ok(())
    }

    /// Whether [`apply`](Self::apply) changes anything: an option is set and positive.
    pub fn is_active(&self) -> bool {
        self.active().is_some()
    }

    /// Keras's `_clip_gradients`: clipnorm first, then global_clipnorm, then clipvalue, the
    /// first that is set and positive.
    fn active(&self) -> Option<Active> {
        let positive = |v: Option<f64>| v.filter(|v| *v > 0.0);
        if let Some(c) = positive(self.clipnorm) {
            Some(Active::Norm(c as f32))
        } else if let Some(c) = positive(self.global_clipnorm) {
            Some(Active::GlobalNorm(c))
        } else {
            positive(self.clipvalue).map(|c| Active::Value(c as f32))
        }
    }

    /// Clips `gradients` in place, all of them at once (they are one step's gradients, which
    /// `global_clipnorm` clips together).
    ///
    /// # Errors
    /// What [`check`](Self::check) refuses, with `owner` "GradientClipping".
    pub fn apply(&self, gradients: &mut [ArrayViewMutD<'_, f32>]) -> Result<()> {
        self.check("GradientClipping")?;
        self.clip(gradients);
        Ok(())
    }

    /// [`apply`](Self::apply) without the check, for an optimizer that checked at build.
    pub(crate) fn clip<S: DataMut<Elem = f32>>(&self, gradients: &mut [ArrayBase<S, IxDyn>]) {
        match self.active() {
            None => {}
            Some(Active::Value(c)) => {
                for g in gradients {
                    map_in_place(g, |x| x.clamp(-c, c));
                }
            }
            Some(Active::Norm(c)) => {
                for g in gradients {
                    // tf.clip_by_norm: where(l2sum > 0, sqrt(l2sum), l2sum), then g·c / max(norm, c).
                    let l2sum = sum_of_squares(g);
                    let norm = if l2sum > 0.0 { l2sum.sqrt() } else { l2sum };
                    let denominator = norm.max(c);
                    map_in_place(g, |x| x * c / denominator);
                }
            }
            Some(Active::GlobalNorm(c)) => {
                let total: f32 = gradients.iter().map(|g| sum_of_squares(g)).sum();
                let norm = total.sqrt();
                let c32 = c as f32;
                // clip_norm * minimum(1.0 / use_norm, 1.0 / clip_norm) + (use_norm - use_norm):
                // the last term is 0, or NaN for a norm that is not finite.
                let not_finite = if norm.is_finite() { 0.0 } else { f32::NAN };
                let scale = c32 * (1.0 / norm).min((1.0 / c) as f32) + not_finite;
                for g in gradients {
                    map_in_place(g, |x| x * scale);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, ArrayD};

    fn clipped(clip: GradientClipping, grads: &[&[f32]]) -> Vec<Vec<f32>> {
        let mut arrays: Vec<ArrayD<f32>> = grads.iter().map(|g| arr1(g).into_dyn()).collect();
        let mut views: Vec<_> = arrays.iter_mut().map(|a| a.view_mut()).collect();
        clip.apply(&mut views).unwrap();
        arrays.iter().map(|a| a.iter().copied().collect()).collect()
    }

    #[test]
    fn each_option_clips_as_keras() {
        // clipnorm 1: [3, 4] has norm 5 → [0.6, 0.8]; [0.3, 0.4] (norm 0.5) stays.
        let out = clipped(
            GradientClipping::new().with_clipnorm(1.0),
            &[&[3.0, 4.0], &[0.3, 0.4]],
        );
        assert_eq!(out, vec![vec![3.0 * 1.0 / 5.0, 4.0 / 5.0], vec![0.3, 0.4]]);
        // global_clipnorm 6.5: the norm of [3, 4, 12] is 13 → halved.
        let out = clipped(
            GradientClipping::new().with_global_clipnorm(6.5),
            &[&[3.0, 4.0], &[12.0]],
        );
        assert_eq!(out, vec![vec![1.5, 2.0], vec![6.0]]);
        // clipvalue 0.5.
        let out = clipped(
            GradientClipping::new().with_clipvalue(0.5),
            &[&[-2.0, 0.25, 0.7]],
        );
        assert_eq!(out, vec![vec![-0.5, 0.25, 0.5]]);
        // A zero gradient stays zero under clipnorm; a clip of 0 or less clips nothing.
        let out = clipped(GradientClipping::new().with_clipnorm(1.0), &[&[0.0, 0.0]]);
        assert_eq!(out, vec![vec![0.0, 0.0]]);
        let out = clipped(GradientClipping::new().with_clipvalue(-1.0), &[&[5.0]]);
        assert_eq!(out, vec![vec![5.0]]);
        assert!(!GradientClipping::new().with_clipnorm(0.0).is_active());
    }

    #[test]
    fn two_options_are_refused_in_keras_words() {
        let err = GradientClipping::new()
            .with_clipnorm(1.0)
            .with_global_clipnorm(1.0)
            .check("adam")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "layer \"adam\": Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be \
             set. Received: clipnorm=1.0, clipvalue=None, global_clipnorm=1.0"
        );
        let both = GradientClipping::new()
            .with_clipvalue(0.5)
            .with_clipnorm(2.0);
        assert!(both.check("sgd").is_err());
        assert!(GradientClipping::new()
            .with_clipvalue(0.5)
            .check("sgd")
            .is_ok());
    }
}
