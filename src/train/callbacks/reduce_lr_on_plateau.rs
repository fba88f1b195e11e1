//! Keras's `ReduceLROnPlateau`.

use crate::error::{Error, Result};
use crate::train::callbacks::monitor::{monitor_options, Monitor, MonitorMode};
use crate::train::callbacks::{learning_rate_key, py_float, Callback, FitContext, Logs, Said};
use crate::train::loss::Dialect;

/// Lowers the learning rate when a monitored value has stopped improving: Keras's
/// `keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=10, verbose=0,
/// mode="auto", min_delta=1e-4, cooldown=0, min_lr=0)`.
///
/// At the end of each epoch it writes the learning rate into the logs (tf_keras's `lr`,
/// Keras 3's `learning_rate`, by the model's [`Dialect`]); then, after `patience` epochs
/// without an improvement of more than `min_delta` (and outside a `cooldown`), the rate
/// becomes `max(lr · factor, min_lr)`, if it is above `min_lr`; the count starts over and the
/// `cooldown` epochs begin. With `verbose` 1 it prints Keras's
/// `Epoch 5: ReduceLROnPlateau reducing learning rate to 0.05000000074505806.`
///
/// `mode` [`MonitorMode::Auto`] is each Keras's rule: tf_keras maximizes a key containing `acc`,
/// Keras 3 as [`EarlyStopping`](crate::EarlyStopping).
///
/// ```
/// use seqnn::ReduceLROnPlateau;
/// // keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_lr=1e-4)
/// let reduce = ReduceLROnPlateau::new().monitor("loss").factor(0.5).patience(2).min_lr(1e-4);
/// # let _ = reduce;
/// ```
#[derive(Debug, Clone)]
pub struct ReduceLROnPlateau {
    monitor: Monitor,
    factor: f64,
    patience: usize,
    verbose: u8,
    cooldown: usize,
    min_lr: f64,
    cooldown_counter: usize,
    wait: usize,
    said: Said,
}

impl Default for ReduceLROnPlateau {
    fn default() -> Self {
        ReduceLROnPlateau {
            monitor: Monitor::new("val_loss", 1e-4),
            factor: 0.1,
            patience: 10,
            verbose: 0,
            cooldown: 0,
            min_lr: 0.0,
            cooldown_counter: 0,
            wait: 0,
            said: Said::default(),
        }
    }
}

impl ReduceLROnPlateau {
    /// Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    monitor_options!();

    /// The factor of each reduction (default 0.1); below 1.
    #[must_use]
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// Epochs without improvement before a reduction (default 10).
    #[must_use]
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// The least change that counts as an improvement (default 1e-4).
    #[must_use]
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.monitor.min_delta = min_delta;
        self
    }

    /// Epochs after a reduction during which nothing is counted (default 0).
    #[must_use]
    pub fn cooldown(mut self, cooldown: usize) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The lowest learning rate (default 0).
    #[must_use]
    pub fn min_lr(mut self, min_lr: f64) -> Self {
        self.min_lr = min_lr;
        self
    }
}

/// tf_keras's `auto` rule for ReduceLROnPlateau.
fn tf_auto(key: &str) -> bool {
    key.contains("acc")
}

impl Callback for ReduceLROnPlateau {
    fn on_train_begin(&mut self, _logs: &mut Logs, fit: &mut FitContext<'_>) -> Result<()> {
        if self.factor >= 1.0 || self.factor.is_nan() {
            return Err(Error::Callback {
                callback: "ReduceLROnPlateau".into(),
                message: format!(
                    "ReduceLROnPlateau does not support a factor >= 1.0. Received factor={}",
                    py_float(self.factor)
                ),
            });
        }
        self.monitor.resolve("ReduceLROnPlateau", tf_auto, fit)?;
        self.monitor.best = match fit.dialect() {
            Dialect::TfKeras => Some(self.monitor.tf_start()),
            Dialect::Keras3 => None,
        };
        self.cooldown_counter = 0;
        self.wait = 0;
        self.said = Said::default();
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        logs.insert(learning_rate_key(fit.dialect()), fit.learning_rate());
        let Some(current) = logs.get(&self.monitor.key) else {
            let end = match fit.dialect() {
                Dialect::TfKeras => "",
                Dialect::Keras3 => ".",
            };
            self.said.warn(
                fit.dialect(),
                format!(
                    "Learning rate reduction is conditioned on metric `{}` which is not \
                     available. Available metrics are: {}{end}",
                    self.monitor.key,
                    logs.key_list()
                ),
            );
            return Ok(());
        };
        let current = f64::from(current);
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if self.monitor.improves(current, self.monitor.best) {
            self.monitor.best = Some(current);
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                let old = f64::from(fit.learning_rate());
                if old > f64::from(self.min_lr as f32) {
                    let new = (old * self.factor).max(self.min_lr);
                    fit.set_learning_rate(new)?;
                    if self.verbose > 0 {
                        self.said.print(format!(
                            "\nEpoch {}: ReduceLROnPlateau reducing learning rate to {}.",
                            epoch + 1,
                            py_float(new)
                        ));
                    }
                    self.cooldown_counter = self.cooldown;
                    self.wait = 0;
                }
            }
        }
        Ok(())
    }
}
