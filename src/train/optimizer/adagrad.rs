//! Adagrad.

use crate::train::config::ConfigValue;
use crate::train::optimizer::{base_builders, each, impl_optimizer, option, Core, Rule, Step};

/// Keras's `Adagrad`: each element's rate divided by the root of its accumulated squared
/// gradients.
///
/// ```text
/// a ← a + g²                                 (a starts at initial_accumulator_value)
/// w ← w - lr·g / sqrt(a + ε)
/// ```
///
/// | option | Keras default |
/// |---|---|
/// | `learning_rate` | 0.001 |
/// | `initial_accumulator_value` | 0.1 |
/// | `epsilon` | 1e-7 (inside the square root) |
///
/// Its slot is `<path>_accumulator`. tf_keras 2.21 computes the same numbers.
///
/// ```
/// use seqnn::train::{Adagrad, Optimizer};
/// let adagrad = Adagrad::new().with_initial_accumulator_value(0.0).with_epsilon(1e-3);
/// assert_eq!(adagrad.initial_accumulator_value(), 0.0);
/// ```
#[derive(Debug, Clone)]
pub struct Adagrad {
    core: Core,
    rule: AdagradRule,
}

#[derive(Debug, Clone)]
struct AdagradRule {
    initial_accumulator_value: f64,
    epsilon: f64,
}

impl Default for Adagrad {
    fn default() -> Self {
        Self::new()
    }
}

impl Adagrad {
    /// `Adagrad()` with Keras's defaults.
    pub fn new() -> Self {
        Adagrad {
            core: Core::new("Adagrad", "adagrad", 0.001),
            rule: AdagradRule {
                initial_accumulator_value: 0.1,
                epsilon: 1e-7,
            },
        }
    }

    base_builders!();

    option!(
        /// Keras's `initial_accumulator_value` (default 0.1): where the accumulators start.
        initial_accumulator_value, with_initial_accumulator_value: f64
    );

    option!(
        /// Keras's `epsilon` (default 1e-7), added under the square root.
        epsilon, with_epsilon: f64
    );
}

impl_optimizer!(Adagrad);

impl Rule for AdagradRule {
    fn slots(&self) -> &'static [&'static [&'static str]] {
        &[&["accumulator"]]
    }

    fn initial(&self, _slot: &str) -> f32 {
        self.initial_accumulator_value as f32
    }

    fn update(&self, step: &Step, _: &[f32], w: &mut [f32], g: &[f32], slots: &mut [&mut [f32]]) {
        let lr = step.learning_rate;
        let epsilon = self.epsilon as f32;
        each::<1>(w, g, slots, move |w, g, [a]| {
            *a += g * g;
            *w -= (lr * g) / (*a + epsilon).sqrt();
        });
    }

    fn options(&self) -> Vec<(&'static str, ConfigValue)> {
        vec![
            (
                "initial_accumulator_value",
                ConfigValue::Float(self.initial_accumulator_value),
            ),
            ("epsilon", ConfigValue::Float(self.epsilon)),
        ]
    }
}
