//! Keras's `EarlyStopping`.

use ndarray::ArrayD;

use crate::error::Result;
use crate::train::callbacks::monitor::{monitor_options, Monitor, MonitorMode};
use crate::train::callbacks::{Callback, FitContext, Logs, Said};
use crate::train::loss::Dialect;

/// Stops training when a monitored value has stopped improving: Keras's
/// `keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=0, patience=0, verbose=0,
/// mode="auto", baseline=None, restore_best_weights=False, start_from_epoch=0)`.
///
/// At the end of each epoch from `start_from_epoch` on, the value improves when it is beyond
/// the best by more than `min_delta`; after `patience` epochs without an improvement (never
/// at the first epoch) training stops. An improvement that does not also beat the
/// `baseline` does not restart the count, but an epoch that improves never stops training.
/// With `restore_best_weights`, the weights of the best epoch are put back when training ends,
/// whether it stopped early or not (tf_keras 2.21 and Keras 3.15 alike).
///
/// `mode` [`MonitorMode::Auto`] follows the model's Keras: tf_keras maximizes a key ending in `acc`,
/// `accuracy` or `auc`; Keras 3 minimizes `loss` and follows the direction of the compiled
/// metric of that name, and refuses a key it cannot tell (before the first epoch in seqnn, at
/// the end of the first in Keras). A key missing from the logs is Keras's warning: "Early
/// stopping conditioned on metric `val_nope` which is not available. Available metrics are:
/// loss,val_loss" (see [`warnings`](EarlyStopping::warnings)).
///
/// ```
/// use seqnn::{EarlyStopping, MonitorMode};
/// // keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
/// let stop = EarlyStopping::new().patience(3).restore_best_weights(true);
/// assert_eq!(stop.stopped_epoch(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    monitor: Monitor,
    patience: usize,
    verbose: u8,
    baseline: Option<f64>,
    restore_best_weights: bool,
    start_from_epoch: usize,
    wait: usize,
    stopped_epoch: usize,
    best_epoch: usize,
    best_weights: Option<Vec<ArrayD<f32>>>,
    said: Said,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            monitor: Monitor::new("val_loss", 0.0),
            patience: 0,
            verbose: 0,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            wait: 0,
            stopped_epoch: 0,
            best_epoch: 0,
            best_weights: None,
            said: Said::default(),
        }
    }
}

impl EarlyStopping {
    /// Keras's defaults: monitor `val_loss`, patience 0.
    pub fn new() -> Self {
        Self::default()
    }

    monitor_options!();

    /// The least change that counts as an improvement (default 0; its magnitude is used).
    #[must_use]
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.monitor.min_delta = min_delta;
        self
    }

    /// Epochs without improvement before stopping (default 0).
    #[must_use]
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// A value the monitored one must beat for the patience count to restart (default none).
    #[must_use]
    pub fn baseline(mut self, baseline: f64) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// Put back the weights of the best epoch when training ends (default false).
    #[must_use]
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    /// Epochs to wait before watching (default 0).
    #[must_use]
    pub fn start_from_epoch(mut self, epoch: usize) -> Self {
        self.start_from_epoch = epoch;
        self
    }

    /// The epoch (from 0) at which training was stopped; 0 when it was not.
    pub fn stopped_epoch(&self) -> usize {
        self.stopped_epoch
    }

    /// The epoch (from 0) of the best value.
    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }

    /// The best value seen (`None` before any, in Keras 3; ±inf in tf_keras).
    pub fn best(&self) -> Option<f64> {
        self.monitor.best
    }
}

/// tf_keras's `auto` rule for EarlyStopping.
fn tf_auto(key: &str) -> bool {
    key.ends_with("acc") || key.ends_with("accuracy") || key.ends_with("auc")
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, _logs: &mut Logs, fit: &mut FitContext<'_>) -> Result<()> {
        self.monitor.resolve("EarlyStopping", tf_auto, fit)?;
        self.wait = 0;
        self.stopped_epoch = 0;
        self.best_epoch = 0;
        self.best_weights = None;
        self.said = Said::default();
        self.monitor.best = match fit.dialect() {
            Dialect::TfKeras => Some(self.monitor.tf_start()),
            Dialect::Keras3 => None,
        };
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        let Some(current) = logs.get(&self.monitor.key) else {
            self.said.warn(
                fit.dialect(),
                format!(
                    "Early stopping conditioned on metric `{}` which is not available. \
                     Available metrics are: {}",
                    self.monitor.key,
                    logs.key_list()
                ),
            );
            return Ok(());
        };
        if epoch < self.start_from_epoch {
            return Ok(());
        }
        let current = f64::from(current);
        if self.restore_best_weights && self.best_weights.is_none() {
            self.best_weights = Some(fit.get_weights());
            self.best_epoch = epoch;
        }
        self.wait += 1;
        if self.monitor.improves(current, self.monitor.best) {
            self.monitor.best = Some(current);
            self.best_epoch = epoch;
            if self.restore_best_weights {
                self.best_weights = Some(fit.get_weights());
            }
            if self.baseline.is_none() || self.monitor.improves(current, self.baseline) {
                self.wait = 0;
            }
            return Ok(());
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = epoch;
            fit.set_stop_training(true);
        }
        Ok(())
    }

    fn on_train_end(&mut self, _logs: &mut Logs, fit: &mut FitContext<'_>) -> Result<()> {
        if self.stopped_epoch > 0 && self.verbose > 0 {
            self.said
                .print(format!("Epoch {}: early stopping", self.stopped_epoch + 1));
        }
        if let (true, Some(weights)) = (self.restore_best_weights, &self.best_weights) {
            if self.verbose > 0 {
                self.said.print(format!(
                    "Restoring model weights from the end of the best epoch: {}.",
                    self.best_epoch + 1
                ));
            }
            fit.set_weights(weights)?;
        }
        Ok(())
    }
}
