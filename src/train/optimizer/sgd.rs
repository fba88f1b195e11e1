//! Gradient descent, with momentum and Nesterov momentum.

use crate::error::{Error, Result};
use crate::train::config::{py_repr, ConfigValue};
use crate::train::optimizer::{base_builders, each, impl_optimizer, option, Core, Rule, Step};

/// Keras's `SGD`: gradient descent, with momentum.
///
/// ```text
/// momentum = 0:   w ← w - g·lr
/// otherwise:      m ← m·momentum - g·lr
///                 w ← w + m                      (nesterov: w ← w + m·momentum - g·lr)
/// ```
///
/// | option | Keras default |
/// |---|---|
/// | `learning_rate` | 0.01 |
/// | `momentum` | 0.0, in `[0, 1]` |
/// | `nesterov` | false |
///
/// Its slot, with momentum only, is `<path>_momentum`. tf_keras 2.21 computes the same numbers,
/// but keeps a slot `m` for every variable even without momentum, and takes an integer momentum
/// that Keras 3 refuses.
///
/// ```
/// use seqnn::train::{Optimizer, SGD};
/// let sgd = SGD::new().with_learning_rate(0.1).with_momentum(0.9).with_nesterov(true);
/// assert_eq!((sgd.momentum(), sgd.nesterov(), sgd.learning_rate()), (0.9, true, 0.1));
/// ```
///
/// # Errors
/// Building (or the first `apply`) fails for a momentum outside `[0, 1]`, in Keras's words:
/// ``momentum` must be a float between [0, 1]. Received: momentum=1.5``.
#[derive(Debug, Clone)]
pub struct SGD {
    core: Core,
    rule: SGDRule,
}

#[derive(Debug, Clone)]
struct SGDRule {
    momentum: f64,
    nesterov: bool,
}

impl Default for SGD {
    fn default() -> Self {
        Self::new()
    }
}

impl SGD {
    /// `SGD()` with Keras's defaults.
    pub fn new() -> Self {
        SGD {
            core: Core::new("SGD", "sgd", 0.01),
            rule: SGDRule {
                momentum: 0.0,
                nesterov: false,
            },
        }
    }

    base_builders!();

    option!(
        /// Keras's `momentum` (default 0.0): how much of the last step the next one keeps.
        momentum, with_momentum: f64
    );

    option!(
        /// Keras's `nesterov` (default false): Nesterov momentum.
        nesterov, with_nesterov: bool
    );
}

impl_optimizer!(SGD);

impl Rule for SGDRule {
    fn slots(&self) -> &'static [&'static [&'static str]] {
        if self.momentum != 0.0 {
            &[&["momentum"]]
        } else {
            &[]
        }
    }

    fn check(&self, name: &str) -> Result<()> {
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::InvalidArgument {
                layer: name.to_string(),
                message: format!(
                    "`momentum` must be a float between [0, 1]. Received: momentum={}",
                    py_repr(self.momentum)
                ),
            });
        }
        Ok(())
    }

    fn update(&self, step: &Step, _: &[f32], w: &mut [f32], g: &[f32], slots: &mut [&mut [f32]]) {
        let lr = step.learning_rate;
        if slots.is_empty() {
            each::<0>(w, g, slots, move |w, g, _| *w -= g * lr);
            return;
        }
        let momentum = self.momentum as f32;
        let nesterov = self.nesterov;
        each::<1>(w, g, slots, move |w, g, [m]| {
            *m = *m * momentum - g * lr;
            if nesterov {
                *w += *m * momentum - g * lr;
            } else {
                *w += *m;
            }
        });
    }

    fn options(&self) -> Vec<(&'static str, ConfigValue)> {
        vec![
            ("momentum", ConfigValue::Float(self.momentum)),
            ("nesterov", ConfigValue::Bool(self.nesterov)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{Optimizer, VariableValue};
    use ndarray::{arr1, arr2};

    #[test]
    fn one_momentum_step_by_hand() -> Result<()> {
        // lr 0.1, momentum 0.9, m = 0 at first:
        //   m = 0·0.9 - 0.5·0.1 = -0.05,   w = 1 + (-0.05) = 0.95
        //   m = 0·0.9 - (-2)·0.1 = 0.2,    w = -1 + 0.2 = -0.8
        // second step, same gradients:
        //   m = -0.05·0.9 - 0.05 = -0.095, w = 0.95 - 0.095 = 0.855
        let mut w = arr1(&[1.0f32, -1.0]).into_dyn();
        let g = arr1(&[0.5f32, -2.0]).into_dyn();
        let mut sgd = SGD::new().with_learning_rate(0.1).with_momentum(0.9);
        sgd.apply(&mut [w.view_mut()], &[g.view()])?;
        assert_eq!(w, arr1(&[0.95, -0.8]).into_dyn());
        sgd.apply(&mut [w.view_mut()], &[g.view()])?;
        assert!((w[0] - 0.855).abs() < 1e-7, "{w}");
        let vars = sgd.variables();
        let names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["iteration", "learning_rate", "variable_0_momentum"]);
        assert_eq!(vars[0].value, VariableValue::Int64(2));
        Ok(())
    }

    #[test]
    fn a_transposed_variable_steps_as_its_standard_copy() -> Result<()> {
        // w = [[1, 2], [3, 4]] seen transposed: its gradient meets it element by element.
        let mut w = arr2(&[[1.0f32, 2.0], [3.0, 4.0]]).into_dyn();
        let g = arr2(&[[1.0f32, 0.0], [0.0, 0.0]]).into_dyn();
        let mut sgd = SGD::new().with_learning_rate(1.0);
        let mut wt = w.view_mut().reversed_axes();
        sgd.apply(&mut [wt.view_mut()], &[g.view()])?;
        let gt = g.view().reversed_axes();
        sgd.apply(&mut [w.view_mut()], &[gt])?;
        assert_eq!(w, arr2(&[[-1.0, 2.0], [3.0, 4.0]]).into_dyn());
        Ok(())
    }

    #[test]
    fn momentum_outside_zero_one_is_refused_as_keras_refuses_it() {
        for m in [1.5, -0.1, f64::NAN] {
            let mut sgd = SGD::new().with_momentum(m);
            let mut w = arr1(&[1.0f32]).into_dyn();
            let g = arr1(&[1.0f32]).into_dyn();
            let err = sgd.apply(&mut [w.view_mut()], &[g.view()]).unwrap_err();
            assert!(
                err.to_string()
                    .contains("`momentum` must be a float between [0, 1]."),
                "{err}"
            );
            assert_eq!(w[0], 1.0);
            assert!(!sgd.is_built());
            assert_eq!(sgd.iterations(), 0);
        }
        assert!(SGD::new().with_momentum(1.0).build(&[]).is_ok());
    }
}
