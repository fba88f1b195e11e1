//! Nadam.

use crate::train::config::ConfigValue;
use crate::train::optimizer::{
    base_builders, beta_config, beta_options, each, impl_optimizer, Core, Rule, Step,
};

/// Keras's `Nadam`: Adam with Nesterov momentum, after Dozat (2015), with its momentum schedule.
///
/// ```text
/// t = iterations + 1
/// μ_t = β1·(1 - 0.5·0.96^t),   μ_t+1 = β1·(1 - 0.5·0.96^(t+1))
/// Π ← Π·μ_t                                   (once a step, before the variables; Π starts at 1)
/// m ← m + (g - m)·(1 - β1)
/// v ← v + (g² - v)·(1 - β2)
/// m̂ = μ_t+1·m / (1 - Π·μ_t+1) + (1 - μ_t)·g / (1 - Π)
/// v̂ = v / (1 - β2^t)
/// w ← w - m̂·lr / (sqrt(v̂) + ε)
/// ```
///
/// | option | Keras default |
/// |---|---|
/// | `learning_rate` | 0.001 |
/// | `beta_1` | 0.9 |
/// | `beta_2` | 0.999 |
/// | `epsilon` | 1e-7 |
///
/// Its slots are `<path>_momentum` and `<path>_velocity`; the momentum cache Π (Keras's
/// `u_product`) is one more optimizer variable, last, which Keras 3 names `variable`.
///
/// Keras 3 updates Π once a step before any variable, as `(Π·β1)·(1 - 0.5·0.96^t)`; tf_keras
/// 2.21 updates it inside the first variable's update, as `Π·μ_t`, and keeps it out of
/// `optimizer.variables` (so a tf_keras checkpoint does not resume it). The products round
/// alike on the fixtures; seqnn follows Keras 3.
///
/// ```
/// use seqnn::train::{Nadam, Optimizer};
/// let nadam = Nadam::new().with_learning_rate(0.002);
/// assert_eq!((nadam.beta_1(), nadam.learning_rate()), (0.9, 0.002));
/// ```
#[derive(Debug, Clone)]
pub struct Nadam {
    core: Core,
    rule: NadamRule,
}

#[derive(Debug, Clone)]
struct NadamRule {
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
}

/// The decay of Nadam's momentum schedule, Keras's `0.96`.
const DECAY: f32 = 0.96;

impl Default for Nadam {
    fn default() -> Self {
        Self::new()
    }
}

impl Nadam {
    /// `Nadam()` with Keras's defaults.
    pub fn new() -> Self {
        Nadam {
            core: Core::new("Nadam", "nadam", 0.001),
            rule: NadamRule {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-7,
            },
        }
    }

    base_builders!();

    beta_options!("the second-moment estimate", "`sqrt(v̂)`");
}

impl_optimizer!(Nadam);

impl NadamRule {
    /// `μ` at float32 step `t`: `β1·(1 - 0.5·0.96^t)`.
    fn mu(&self, t: f32) -> f32 {
        self.beta_1 as f32 * (1.0 - 0.5 * DECAY.powf(t))
    }
}

impl Rule for NadamRule {
    fn slots(&self) -> &'static [&'static [&'static str]] {
        &[&["momentum", "velocity"]]
    }

    fn globals(&self) -> &'static [(&'static str, f32)] {
        &[("variable", 1.0)]
    }

    fn begin_step(&self, step: &Step, globals: &mut [f32]) {
        // Keras 3's _backend_update_step: u_product * beta_1 * (1 - 0.5 * 0.96^(t)).
        let u_product = &mut globals[0];
        *u_product = *u_product * self.beta_1 as f32 * (1.0 - 0.5 * DECAY.powf(step.local_step()));
    }

    fn update(
        &self,
        step: &Step,
        globals: &[f32],
        w: &mut [f32],
        g: &[f32],
        slots: &mut [&mut [f32]],
    ) {
        let lr = step.learning_rate;
        let t = step.local_step();
        let next_step = (step.iterations + 2) as f32;
        let u_t = self.mu(t);
        let u_t_1 = self.mu(next_step);
        let u_product_t = globals[0];
        let u_product_t_1 = u_product_t * u_t_1;
        let (beta_1, beta_2) = (self.beta_1 as f32, self.beta_2 as f32);
        let beta_2_power = beta_2.powf(t);
        let epsilon = self.epsilon as f32;
        // Here Keras subtracts from the float32 betas: `1 - beta_1` in float32.
        let (one_minus_beta_1, one_minus_beta_2) = (1.0 - beta_1, 1.0 - beta_2);
        each::<2>(w, g, slots, move |w, g, [m, v]| {
            *m += (g - *m) * one_minus_beta_1;
            *v += (g * g - *v) * one_minus_beta_2;
            let m_hat =
                (u_t_1 * *m) / (1.0 - u_product_t_1) + ((1.0 - u_t) * g) / (1.0 - u_product_t);
            let v_hat = *v / (1.0 - beta_2_power);
            *w -= (m_hat * lr) / (v_hat.sqrt() + epsilon);
        });
    }

    fn options(&self) -> Vec<(&'static str, ConfigValue)> {
        beta_config(self.beta_1, self.beta_2, self.epsilon)
    }
}
