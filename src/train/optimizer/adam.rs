//! Adam, and the rule AdamW shares.

use crate::train::config::ConfigValue;
use crate::train::optimizer::{
    base_builders, beta_config, each, impl_optimizer, option, Core, Rule, Step,
};

/// Keras's `Adam`: adaptive estimates of the first and second moments of the gradients.
///
/// ```text
/// t = iterations + 1
/// m ← m + (g - m)·(1 - β1)
/// v ← v + (g² - v)·(1 - β2)
/// v̂ ← max(v̂, v)                              (amsgrad only; v̂ stands for v below)
/// α = lr·sqrt(1 - β2^t) / (1 - β1^t)
/// w ← w - m·α / (sqrt(v) + ε)
/// ```
///
/// | option | Keras default |
/// |---|---|
/// | `learning_rate` | 0.001 |
/// | `beta_1` | 0.9 |
/// | `beta_2` | 0.999 |
/// | `epsilon` | 1e-7 (ε outside the square root, Keras's "epsilon hat") |
/// | `amsgrad` | false |
///
/// Its slots are `<path>_momentum` and `<path>_velocity` for each variable, then
/// `<path>_velocity_hat` for each with amsgrad. tf_keras 2.21 computes the same numbers (its
/// slots are `m`, `v`, `vhat`) and has an `adaptive_epsilon` option that Keras 3 dropped.
///
/// ```
/// use seqnn::train::{Adam, Optimizer};
/// let adam = Adam::new().with_learning_rate(1e-3).with_beta_1(0.9).with_amsgrad(true);
/// assert_eq!((adam.beta_1(), adam.beta_2(), adam.epsilon()), (0.9, 0.999, 1e-7));
/// assert_eq!(adam.class_name(), "Adam");
/// ```
#[derive(Debug, Clone)]
pub struct Adam {
    core: Core,
    rule: AdamRule,
}

/// Adam's hyper-parameters and update, also AdamW's.
#[derive(Debug, Clone)]
pub(super) struct AdamRule {
    pub(super) beta_1: f64,
    pub(super) beta_2: f64,
    pub(super) epsilon: f64,
    pub(super) amsgrad: bool,
}

impl AdamRule {
    /// Keras's defaults.
    pub(super) fn new() -> Self {
        AdamRule {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
        }
    }
}

/// The builders of Adam's options, for Adam and AdamW.
macro_rules! adam_options {
    () => {
        $crate::train::optimizer::beta_options!("the second-moment estimate", "`sqrt(v)`");

        option!(
            /// Keras's `amsgrad` (default false): divide by the largest `v` so far.
            amsgrad, with_amsgrad: bool
        );
    };
}
pub(super) use adam_options;

impl Default for Adam {
    fn default() -> Self {
        Self::new()
    }
}

impl Adam {
    /// `Adam()` with Keras's defaults.
    pub fn new() -> Self {
        Adam {
            core: Core::new("Adam", "adam", 0.001),
            rule: AdamRule::new(),
        }
    }

    base_builders!();
    adam_options!();
}

impl_optimizer!(Adam);

impl Rule for AdamRule {
    fn slots(&self) -> &'static [&'static [&'static str]] {
        if self.amsgrad {
            &[&["momentum", "velocity"], &["velocity_hat"]]
        } else {
            &[&["momentum", "velocity"]]
        }
    }

    fn update(&self, step: &Step, _: &[f32], w: &mut [f32], g: &[f32], slots: &mut [&mut [f32]]) {
        let t = step.local_step();
        let beta_1_power = (self.beta_1 as f32).powf(t);
        let beta_2_power = (self.beta_2 as f32).powf(t);
        let alpha = step.learning_rate * (1.0 - beta_2_power).sqrt() / (1.0 - beta_1_power);
        // Keras multiplies by the Python floats `1 - beta_1`, `1 - beta_2`: float64, then rounded.
        let (one_minus_beta_1, one_minus_beta_2) =
            ((1.0 - self.beta_1) as f32, (1.0 - self.beta_2) as f32);
        let epsilon = self.epsilon as f32;
        if self.amsgrad {
            each::<3>(w, g, slots, move |w, g, [m, v, v_hat]| {
                *m += (g - *m) * one_minus_beta_1;
                *v += (g * g - *v) * one_minus_beta_2;
                *v_hat = v_hat.max(*v);
                *w -= (*m * alpha) / (v_hat.sqrt() + epsilon);
            });
        } else {
            each::<2>(w, g, slots, move |w, g, [m, v]| {
                *m += (g - *m) * one_minus_beta_1;
                *v += (g * g - *v) * one_minus_beta_2;
                *w -= (*m * alpha) / (v.sqrt() + epsilon);
            });
        }
    }

    fn options(&self) -> Vec<(&'static str, ConfigValue)> {
        let mut options = beta_config(self.beta_1, self.beta_2, self.epsilon);
        options.push(("amsgrad", ConfigValue::Bool(self.amsgrad)));
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::Optimizer;
    use ndarray::arr1;

    #[test]
    fn the_first_step_is_about_lr_times_the_sign_of_the_gradient() -> crate::Result<()> {
        // t = 1, lr = 0.01, in float32 as Keras: 1 - 0.999 = 0.0009999871 (0.999 rounds to
        // 0.99900001), 1 - 0.9 = 0.100000024, so α = 0.01·sqrt(0.0009999871)/0.100000024
        // = 0.01·0.031622574/0.100000024 = 0.0031622564.
        // g = 2:    m = 0.1·2 = 0.2, v = 0.001·4 = 0.004, sqrt(v) = 0.06324556,
        //           w -= 0.2·α/(0.06324556 + 1e-7) = 0.009999918 → 0.99000007
        // g = -0.5: m = -0.05, sqrt(v) = 0.01581139, w += 0.009999869 → 1.0099999
        let mut w = arr1(&[1.0f32, 1.0]).into_dyn();
        let g = arr1(&[2.0f32, -0.5]).into_dyn();
        let mut adam = Adam::new().with_learning_rate(0.01);
        adam.apply(&mut [w.view_mut()], &[g.view()])?;
        assert!((w[0] - (1.0 - 0.009_999_918)).abs() < 1e-7, "{w}");
        assert!((w[1] - (1.0 + 0.009_999_869)).abs() < 1e-7, "{w}");
        Ok(())
    }
}
