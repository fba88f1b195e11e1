//! AdamW: Adam with decoupled weight decay.

use crate::train::optimizer::adam::{adam_options, AdamRule};
use crate::train::optimizer::{base_builders, impl_optimizer, option, Core};

/// Keras's `AdamW`: [`Adam`](crate::train::Adam) with decoupled weight decay, on by default.
///
/// ```text
/// w ← w - w·weight_decay·lr                   (before the step, as every optimizer's weight_decay)
/// then Adam's step:
/// m ← m + (g - m)·(1 - β1);   v ← v + (g² - v)·(1 - β2);   v̂ ← max(v̂, v) (amsgrad)
/// w ← w - m·lr·sqrt(1 - β2^t)/(1 - β1^t) / (sqrt(v) + ε)   t = iterations + 1
/// ```
///
/// | option | Keras default |
/// |---|---|
/// | `learning_rate` | 0.001 |
/// | `weight_decay` | 0.004 (required: AdamW always decays) |
/// | `beta_1`, `beta_2`, `epsilon`, `amsgrad` | 0.9, 0.999, 1e-7, false |
///
/// In Keras 3 and tf_keras 2.21 alike, AdamW is Adam whose base-optimizer `weight_decay` is
/// set: the decay `w - w·wd·lr` comes first, with the step's learning rate, then Adam's
/// update. Its slots and config are Adam's; its name is `adam_w`.
///
/// ```
/// use seqnn::train::{AdamW, Optimizer};
/// let adamw = AdamW::new().with_weight_decay(0.01);
/// assert_eq!(adamw.weight_decay(), Some(0.01));
/// assert_eq!(AdamW::new().weight_decay(), Some(0.004));
/// assert_eq!(adamw.class_name(), "AdamW");
/// ```
#[derive(Debug, Clone)]
pub struct AdamW {
    core: Core,
    rule: AdamRule,
}

impl Default for AdamW {
    fn default() -> Self {
        Self::new()
    }
}

impl AdamW {
    /// `AdamW()` with Keras's defaults.
    pub fn new() -> Self {
        let mut core = Core::new("AdamW", "adam_w", 0.001);
        core.set_weight_decay(Some(0.004));
        AdamW {
            core,
            rule: AdamRule::new(),
        }
    }

    base_builders!();
    adam_options!();
}

impl_optimizer!(AdamW);
