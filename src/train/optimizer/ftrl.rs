//! FTRL-proximal.

use crate::error::{Error, Result};
use crate::train::config::{py_repr, ConfigValue};
use crate::train::optimizer::{base_builders, each, impl_optimizer, option, Core, Rule, Step};

/// Keras's `Ftrl`: "Follow The Regularized Leader" (McMahan et al., 2013), with online L1 and
/// L2 regularization and L2 shrinkage.
///
/// ```text
/// p = learning_rate_power,   n: the accumulator,   z: the linear slot
/// ĝ = g + 2·l2_shrinkage·w
/// n' = n + g²
/// z ← z + ĝ - (n'^(-p) - n^(-p)) / lr · w
/// q = n'^(-p) / lr + 2·(l2 + β / (2·lr))
/// w ← (clip(z, -l1, l1) - z) / q                   (0 where |z| ≤ l1)
/// n ← n'
/// ```
///
/// | option | Keras default |
/// |---|---|
/// | `learning_rate` | 0.001 |
/// | `learning_rate_power` | -0.5 (≤ 0; 0 for a fixed rate) |
/// | `initial_accumulator_value` | 0.1 (≥ 0) |
/// | `l1_regularization_strength` | 0.0 (≥ 0) |
/// | `l2_regularization_strength` | 0.0 (≥ 0) |
/// | `l2_shrinkage_regularization_strength` | 0.0 (≥ 0: a magnitude penalty in the gradient) |
/// | `beta` | 0.0 (the paper's β, folded into the L2 term) |
///
/// Its slots are `<path>_accumulator` and `<path>_linear`. The accumulator grows with the plain
/// gradient, the linear slot with the shrunk one. tf_keras 2.21 has the same formulas but squares
/// with `tf.pow(g, 2)`, which may differ from Keras 3's `g·g` in the last bit.
///
/// ```
/// use seqnn::train::{Ftrl, Optimizer};
/// let ftrl = Ftrl::new().with_l1_regularization_strength(0.01).with_beta(0.5);
/// assert_eq!((ftrl.learning_rate_power(), ftrl.beta()), (-0.5, 0.5));
/// ```
///
/// # Errors
/// Building (or the first `apply`) fails, in Keras's words, for a positive
/// `learning_rate_power` or a negative accumulator or strength: ``learning_rate_power` needs
/// to be negative or zero. Received: learning_rate_power=0.5.``
#[derive(Debug, Clone)]
pub struct Ftrl {
    core: Core,
    rule: FtrlRule,
}

#[derive(Debug, Clone)]
struct FtrlRule {
    learning_rate_power: f64,
    initial_accumulator_value: f64,
    l1_regularization_strength: f64,
    l2_regularization_strength: f64,
    l2_shrinkage_regularization_strength: f64,
    beta: f64,
}

impl Default for Ftrl {
    fn default() -> Self {
        Self::new()
    }
}

impl Ftrl {
    /// `Ftrl()` with Keras's defaults.
    pub fn new() -> Self {
        Ftrl {
            core: Core::new("Ftrl", "ftrl", 0.001),
            rule: FtrlRule {
                learning_rate_power: -0.5,
                initial_accumulator_value: 0.1,
                l1_regularization_strength: 0.0,
                l2_regularization_strength: 0.0,
                l2_shrinkage_regularization_strength: 0.0,
                beta: 0.0,
            },
        }
    }

    base_builders!();

    option!(
        /// Keras's `learning_rate_power` (default -0.5): how the rate decreases with the
        /// accumulator; 0 for a fixed rate.
        learning_rate_power, with_learning_rate_power: f64
    );

    option!(
        /// Keras's `initial_accumulator_value` (default 0.1): where the accumulators start.
        initial_accumulator_value, with_initial_accumulator_value: f64
    );

    option!(
        /// Keras's `l1_regularization_strength` (default 0.0).
        l1_regularization_strength, with_l1_regularization_strength: f64
    );

    option!(
        /// Keras's `l2_regularization_strength` (default 0.0): the stabilizing L2 penalty.
        l2_regularization_strength, with_l2_regularization_strength: f64
    );

    option!(
        /// Keras's `l2_shrinkage_regularization_strength` (default 0.0): an L2 penalty on the
        /// weights' magnitude, added to the gradient.
        l2_shrinkage_regularization_strength, with_l2_shrinkage_regularization_strength: f64
    );

    option!(
        /// Keras's `beta` (default 0.0), the paper's β.
        beta, with_beta: f64
    );
}

impl_optimizer!(Ftrl);

impl Rule for FtrlRule {
    fn slots(&self) -> &'static [&'static [&'static str]] {
        &[&["accumulator", "linear"]]
    }

    fn initial(&self, slot: &str) -> f32 {
        if slot == "accumulator" {
            self.initial_accumulator_value as f32
        } else {
            0.0
        }
    }

    fn check(&self, name: &str) -> Result<()> {
        let refuse = |what: &str, key: &str, value: f64| {
            Err(Error::InvalidArgument {
                layer: name.to_string(),
                message: format!(
                    "`{key}` needs to be {what}. Received: {key}={}.",
                    py_repr(value)
                ),
            })
        };
        let positive = "positive or zero";
        if self.initial_accumulator_value < 0.0 {
            return refuse(
                positive,
                "initial_accumulator_value",
                self.initial_accumulator_value,
            );
        }
        if self.learning_rate_power > 0.0 {
            return refuse(
                "negative or zero",
                "learning_rate_power",
                self.learning_rate_power,
            );
        }
        for (key, value) in [
            (
                "l1_regularization_strength",
                self.l1_regularization_strength,
            ),
            (
                "l2_regularization_strength",
                self.l2_regularization_strength,
            ),
            (
                "l2_shrinkage_regularization_strength",
                self.l2_shrinkage_regularization_strength,
            ),
        ] {
            if value < 0.0 {
                return refuse(positive, key, value);
            }
        }
        Ok(())
    }

    fn update(&self, step: &Step, _: &[f32], w: &mut [f32], g: &[f32], slots: &mut [&mut [f32]]) {
        let lr = step.learning_rate;
        let power = (-self.learning_rate_power) as f32;
        let l2_reg = self.l2_regularization_strength as f32 + self.beta as f32 / (2.0 * lr);
        let shrinkage = (2.0 * self.l2_shrinkage_regularization_strength) as f32;
        let l1 = self.l1_regularization_strength as f32;
        each::<2>(w, g, slots, move |w, g, [accumulator, linear]| {
            let grad_to_use = g + shrinkage * *w;
            let new_accumulator = *accumulator + g * g;
            *linear +=
                grad_to_use - (new_accumulator.powf(power) - accumulator.powf(power)) / lr * *w;
            let quadratic = new_accumulator.powf(power) / lr + 2.0 * l2_reg;
            let linear_clipped = linear.clamp(-l1, l1);
            *w = (linear_clipped - *linear) / quadratic;
            *accumulator = new_accumulator;
        });
    }

    fn options(&self) -> Vec<(&'static str, ConfigValue)> {
        vec![
            (
                "learning_rate_power",
                ConfigValue::Float(self.learning_rate_power),
            ),
            (
                "initial_accumulator_value",
                ConfigValue::Float(self.initial_accumulator_value),
            ),
            (
                "l1_regularization_strength",
                ConfigValue::Float(self.l1_regularization_strength),
            ),
            (
                "l2_regularization_strength",
                ConfigValue::Float(self.l2_regularization_strength),
            ),
            (
                "l2_shrinkage_regularization_strength",
                ConfigValue::Float(self.l2_shrinkage_regularization_strength),
            ),
            ("beta", ConfigValue::Float(self.beta)),
        ]
    }
}
