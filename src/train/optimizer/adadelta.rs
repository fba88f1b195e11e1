//! Adadelta.

use crate::train::config::ConfigValue;
use crate::train::optimizer::{base_builders, each, impl_optimizer, option, Core, Rule, Step};

/// Keras's `Adadelta`: steps scaled by the ratio of moving roots of past steps and gradients.
///
/// ```text
/// a ← ρ·a + (1 - ρ)·g²
/// Δ = -sqrt(d + ε)·g / sqrt(a + ε)
/// d ← ρ·d + (1 - ρ)·Δ²
/// w ← w + lr·Δ
/// ```
///
/// | option | Keras default |
/// |---|---|
/// | `learning_rate` | 0.001 (the paper's Adadelta has none: use 1.0 for it) |
/// | `rho` | 0.95 |
/// | `epsilon` | 1e-7 (inside both square roots) |
///
/// Its slots are `<path>_accumulated_grad` and `<path>_accumulated_delta_var`. tf_keras 2.21
/// multiplies `(1 - ρ)·g·g` left to right where Keras 3 squares first: the last bit may differ.
///
/// ```
/// use seqnn::train::{Adadelta, Optimizer};
/// let adadelta = Adadelta::new().with_learning_rate(1.0).with_rho(0.9);
/// assert_eq!((adadelta.rho(), adadelta.epsilon()), (0.9, 1e-7));
/// ```
#[derive(Debug, Clone)]
pub struct Adadelta {
    core: Core,
    rule: AdadeltaRule,
}

#[derive(Debug, Clone)]
struct AdadeltaRule {
    rho: f64,
    epsilon: f64,
}

impl Default for Adadelta {
    fn default() -> Self {
        Self::new()
    }
}

impl Adadelta {
    /// `Adadelta()` with Keras's defaults.
    pub fn new() -> Self {
        Adadelta {
            core: Core::new("Adadelta", "adadelta", 0.001),
            rule: AdadeltaRule {
                rho: 0.95,
                epsilon: 1e-7,
            },
        }
    }

    base_builders!();

    option!(
        /// Keras's `rho` (default 0.95): the decay of the moving averages.
        rho, with_rho: f64
    );

    option!(
        /// Keras's `epsilon` (default 1e-7), added under both square roots.
        epsilon, with_epsilon: f64
    );
}

impl_optimizer!(Adadelta);

impl Rule for AdadeltaRule {
    fn slots(&self) -> &'static [&'static [&'static str]] {
        &[&["accumulated_grad", "accumulated_delta_var"]]
    }

    fn update(&self, step: &Step, _: &[f32], w: &mut [f32], g: &[f32], slots: &mut [&mut [f32]]) {
        let lr = step.learning_rate;
        let rho = self.rho as f32;
        let one_minus_rho = (1.0 - self.rho) as f32;
        let epsilon = self.epsilon as f32;
        let rms = move |x: f32| (x + epsilon).sqrt();
        each::<2>(w, g, slots, move |w, g, [a, d]| {
            *a = rho * *a + one_minus_rho * (g * g);
            let delta = -((rms(*d) * g) / rms(*a));
            *d = rho * *d + one_minus_rho * (delta * delta);
            *w += lr * delta;
        });
    }

    fn options(&self) -> Vec<(&'static str, ConfigValue)> {
        vec![
            ("rho", ConfigValue::Float(self.rho)),
            ("epsilon", ConfigValue::Float(self.epsilon)),
        ]
    }
}
