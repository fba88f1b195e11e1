//! Keras's `LearningRateScheduler`.

use crate::error::{Error, Result};
use crate::train::callbacks::{learning_rate_key, py_float, Callback, FitContext, Logs, Said};

/// The schedule of a [`LearningRateScheduler`]: `(epoch, learning rate) → learning rate`.
type Schedule = Box<dyn FnMut(usize, f64) -> f64>;

/// Sets the learning rate at the start of each epoch from a function of the epoch (from 0) and
/// the current rate: Keras's `keras.callbacks.LearningRateScheduler(schedule, verbose=0)`.
///
/// The current rate is given as Keras gives it, the optimizer's float32 value widened
/// (`0.10000000149011612` for 0.1). At the end of each epoch the rate is written into the logs
/// (tf_keras's `lr`, Keras 3's `learning_rate`). With `verbose` 1 it prints Keras's
/// `Epoch 3: LearningRateScheduler setting learning rate to 0.05000000074505806.`
///
/// ```
/// use seqnn::LearningRateScheduler;
/// // keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr if epoch < 2 else lr * 0.5)
/// let schedule = LearningRateScheduler::new(|epoch, lr| if epoch < 2 { lr } else { lr * 0.5 });
/// # let _ = schedule;
/// ```
pub struct LearningRateScheduler {
    schedule: Schedule,
    verbose: u8,
    said: Said,
}

impl std::fmt::Debug for LearningRateScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LearningRateScheduler")
            .field("verbose", &self.verbose)
            .finish_non_exhaustive()
    }
}

impl LearningRateScheduler {
    /// A scheduler with Keras's `verbose=0`.
    pub fn new(schedule: impl FnMut(usize, f64) -> f64 + 'static) -> Self {
        LearningRateScheduler {
            schedule: Box::new(schedule),
            verbose: 0,
            said: Said::default(),
        }
    }

    /// 1 prints the rate set at each epoch; default 0.
    #[must_use]
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }

    /// What the last `fit` printed with `verbose` 1.
    pub fn messages(&self) -> &[String] {
        &self.said.printed
    }
}

impl Callback for LearningRateScheduler {
    fn on_epoch_begin(
        &mut self,
        epoch: usize,
        _logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        let lr = (self.schedule)(epoch, f64::from(fit.learning_rate()));
        if !lr.is_finite() {
            return Err(Error::Callback {
                callback: "LearningRateScheduler".into(),
                message: format!(
                    "The output of the `schedule` function should be a finite float. Got: {} \
                     at epoch {epoch}",
                    py_float(lr)
                ),
            });
        }
        fit.set_learning_rate(lr)?;
        if self.verbose > 0 {
            self.said.print(format!(
                "\nEpoch {}: LearningRateScheduler setting learning rate to {}.",
                epoch + 1,
                py_float(lr)
            ));
        }
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        logs.insert(learning_rate_key(fit.dialect()), fit.learning_rate());
        Ok(())
    }
}
