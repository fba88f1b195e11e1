//! Adamax.

use crate::train::config::ConfigValue;
use crate::train::optimizer::{
    base_builders, beta_config, beta_options, each, impl_optimizer, Core, Rule, Step,
};

/// Keras's `Adamax`: Adam with the infinity norm in place of the second moment.
///
/// ```text
/// t = iterations + 1
/// m ← m + (g - m)·(1 - β1)
/// u ← max(β2·u, |g|)
/// w ← w - lr·m / ((1 - β1^t)·(u + ε))
/// ```
///
/// | option | Keras default |
/// |---|---|
/// | `learning_rate` | 0.001 |
/// | `beta_1` | 0.9 |
/// | `beta_2` | 0.999 |
/// | `epsilon` | 1e-7 (added to `u`) |
///
/// Its slots are `<path>_momentum` and `<path>_norm`. tf_keras 2.21 computes the same numbers
/// (its slots are `m` and `u`).
///
/// ```
/// use seqnn::train::{Adamax, Optimizer};
/// let adamax = Adamax::new().with_beta_2(0.99);
/// assert_eq!((adamax.beta_1(), adamax.beta_2()), (0.9, 0.99));
/// ```
#[derive(Debug, Clone)]
pub struct Adamax {
    core: Core,
    rule: AdamaxRule,
}

#[derive(Debug, Clone)]
struct AdamaxRule {
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
}

impl Default for Adamax {
    fn default() -> Self {
        Self::new()
    }
}

impl Adamax {
    /// `Adamax()` with Keras's defaults.
    pub fn new() -> Self {
        Adamax {
            core: Core::new("Adamax", "adamax", 0.001),
            rule: AdamaxRule {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-7,
            },
        }
    }

    base_builders!();

    beta_options!("the infinity norm", "the norm");
}

impl_optimizer!(Adamax);

impl Rule for AdamaxRule {
    fn slots(&self) -> &'static [&'static [&'static str]] {
        &[&["momentum", "norm"]]
    }

    fn update(&self, step: &Step, _: &[f32], w: &mut [f32], g: &[f32], slots: &mut [&mut [f32]]) {
        let lr = step.learning_rate;
        let beta_1_power = (self.beta_1 as f32).powf(step.local_step());
        let one_minus_beta_1 = (1.0 - self.beta_1) as f32;
        let beta_2 = self.beta_2 as f32;
        let epsilon = self.epsilon as f32;
        each::<2>(w, g, slots, move |w, g, [m, u]| {
            *m += (g - *m) * one_minus_beta_1;
            *u = (beta_2 * *u).max(g.abs());
            *w -= (lr * *m) / ((1.0 - beta_1_power) * (*u + epsilon));
        });
    }

    fn options(&self) -> Vec<(&'static str, ConfigValue)> {
        beta_config(self.beta_1, self.beta_2, self.epsilon)
    }
}
