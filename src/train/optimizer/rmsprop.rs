//! RMSprop, plain, centered, with momentum.

use crate::train::config::ConfigValue;
use crate::train::optimizer::{base_builders, each, impl_optimizer, option, Core, Rule, Step};

/// Keras's `RMSprop`: the gradient divided by a moving root mean square of the gradients.
///
/// ```text
/// v ← ρ·v + (1 - ρ)·g²
/// centered:  a ← ρ·a + (1 - ρ)·g;   d = v - a² + ε
/// otherwise: d = v + ε
/// Δ = lr·g / sqrt(d)
/// momentum > 0: μ ← momentum·μ + Δ;   w ← w - μ
/// otherwise:    w ← w - Δ
/// ```
///
/// | option | Keras default |
/// |---|---|
/// | `learning_rate` | 0.001 |
/// | `rho` | 0.9 |
/// | `momentum` | 0.0 (plain momentum; none unless positive) |
/// | `epsilon` | 1e-7 (inside the square root) |
/// | `centered` | false |
///
/// Its slots: `<path>_velocity` for each variable, then `<path>_momentum` for each (momentum
/// only), then `<path>_average_gradient` for each (centered only). tf_keras 2.21 computes
/// `lr·g·rsqrt(d)` where Keras 3 divides by `sqrt(d)`: the two differ in the last bit (a few
/// 1e-8 on the fixtures), well within 1e-6.
///
/// ```
/// use seqnn::train::{Optimizer, RMSprop};
/// let rms = RMSprop::new().with_centered(true).with_momentum(0.5);
/// assert_eq!((rms.rho(), rms.momentum(), rms.centered()), (0.9, 0.5, true));
/// ```
#[derive(Debug, Clone)]
pub struct RMSprop {
    core: Core,
    rule: RMSpropRule,
}

#[derive(Debug, Clone)]
struct RMSpropRule {
    rho: f64,
    momentum: f64,
    epsilon: f64,
    centered: bool,
}

impl Default for RMSprop {
    fn default() -> Self {
        Self::new()
    }
}

impl RMSprop {
    /// `RMSprop()` with Keras's defaults.
    pub fn new() -> Self {
        RMSprop {
            core: Core::new("RMSprop", "rm_sprop", 0.001),
            rule: RMSpropRule {
                rho: 0.9,
                momentum: 0.0,
                epsilon: 1e-7,
                centered: false,
            },
        }
    }

    base_builders!();

    option!(
        /// Keras's `rho` (default 0.9): the decay of the moving averages.
        rho, with_rho: f64
    );

    option!(
        /// Keras's `momentum` (default 0.0): plain momentum on the increments, when positive.
        momentum, with_momentum: f64
    );

    option!(
        /// Keras's `epsilon` (default 1e-7), added under the square root.
        epsilon, with_epsilon: f64
    );

    option!(
        /// Keras's `centered` (default false): divide by an estimate of the variance of the
        /// gradients instead of their second moment.
        centered, with_centered: bool
    );
}

impl_optimizer!(RMSprop);

impl Rule for RMSpropRule {
    fn slots(&self) -> &'static [&'static [&'static str]] {
        match (self.momentum > 0.0, self.centered) {
            (false, false) => &[&["velocity"]],
            (true, false) => &[&["velocity"], &["momentum"]],
            (false, true) => &[&["velocity"], &["average_gradient"]],
            (true, true) => &[&["velocity"], &["momentum"], &["average_gradient"]],
        }
    }

    fn update(&self, step: &Step, _: &[f32], w: &mut [f32], g: &[f32], slots: &mut [&mut [f32]]) {
        let lr = step.learning_rate;
        let rho = self.rho as f32;
        let one_minus_rho = (1.0 - self.rho) as f32;
        let epsilon = self.epsilon as f32;
        let momentum = self.momentum as f32;
        let velocity = move |v: &mut f32, g: f32| *v = rho * *v + one_minus_rho * (g * g);
        let centered = move |v: f32, a: &mut f32, g: f32| {
            *a = rho * *a + one_minus_rho * g;
            v - *a * *a + epsilon
        };
        let increment = move |g: f32, d: f32| (lr * g) / d.sqrt();
        match (self.momentum > 0.0, self.centered) {
            (false, false) => each::<1>(w, g, slots, move |w, g, [v]| {
                velocity(v, g);
                *w -= increment(g, *v + epsilon);
            }),
            (true, false) => each::<2>(w, g, slots, move |w, g, [v, mu]| {
                velocity(v, g);
                *mu = momentum * *mu + increment(g, *v + epsilon);
                *w -= *mu;
            }),
            (false, true) => each::<2>(w, g, slots, move |w, g, [v, a]| {
                velocity(v, g);
                *w -= increment(g, centered(*v, a, g));
            }),
            (true, true) => each::<3>(w, g, slots, move |w, g, [v, mu, a]| {
                velocity(v, g);
                *mu = momentum * *mu + increment(g, centered(*v, a, g));
                *w -= *mu;
            }),
        }
    }

    fn options(&self) -> Vec<(&'static str, ConfigValue)> {
        vec![
            ("rho", ConfigValue::Float(self.rho)),
            ("momentum", ConfigValue::Float(self.momentum)),
            ("epsilon", ConfigValue::Float(self.epsilon)),
            ("centered", ConfigValue::Bool(self.centered)),
        ]
    }
}
