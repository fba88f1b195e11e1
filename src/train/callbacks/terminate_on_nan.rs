//! Keras's `TerminateOnNaN`.

use crate::error::Result;
use crate::train::callbacks::{Callback, FitContext, Logs, Said};

/// Stops training at the first batch whose `loss` is NaN or infinite, printing Keras's
/// `Batch 1: Invalid loss, terminating training`: Keras's `keras.callbacks.TerminateOnNaN()`.
///
/// Keras applies that batch's step before it stops, so its weights are NaN; seqnn never
/// applies a step whose loss is not finite, so the weights are those of the batch before.
/// Without this callback such a batch is an error of `fit`; with it, `fit` returns the history,
/// whose last epoch logs the loss Keras logs (NaN).
///
/// ```
/// use seqnn::TerminateOnNaN;
/// let nan = TerminateOnNaN::new();
/// assert_eq!(nan.stopped_batch(), None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct TerminateOnNaN {
    stopped: Option<(usize, usize)>,
    epoch: usize,
    said: Said,
}

impl TerminateOnNaN {
    /// The callback.
    pub fn new() -> Self {
        Self::default()
    }

    /// The epoch and batch (from 0) where the last `fit` stopped, if it did.
    pub fn stopped_batch(&self) -> Option<(usize, usize)> {
        self.stopped
    }

    /// What the last `fit` printed.
    pub fn messages(&self) -> &[String] {
        &self.said.printed
    }
}

impl Callback for TerminateOnNaN {
    fn on_train_begin(&mut self, _logs: &mut Logs, _fit: &mut FitContext<'_>) -> Result<()> {
        *self = Self::default();
        Ok(())
    }

    fn on_epoch_begin(
        &mut self,
        epoch: usize,
        _logs: &mut Logs,
        _fit: &mut FitContext<'_>,
    ) -> Result<()> {
        self.epoch = epoch;
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        batch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        if let Some(loss) = logs.get("loss") {
            if !loss.is_finite() {
                self.said
                    .print(format!("Batch {batch}: Invalid loss, terminating training"));
                self.stopped = Some((self.epoch, batch));
                fit.set_stop_training(true);
            }
        }
        Ok(())
    }
}
