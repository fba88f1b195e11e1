//! Keras's `LambdaCallback`.

use crate::error::Result;
use crate::train::callbacks::{Callback, FitContext, Logs};

/// A hook of an epoch or a batch: its index (from 0), the logs, the context.
type IndexHook = Box<dyn FnMut(usize, &mut Logs, &mut FitContext<'_>)>;
/// A hook of the whole training: the logs, the context.
type TrainHook = Box<dyn FnMut(&mut Logs, &mut FitContext<'_>)>;

/// A callback made of closures, one per hook: Keras's `keras.callbacks.LambdaCallback(
/// on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
/// on_train_batch_begin=None, on_train_batch_end=None)`. Each closure gets the logs and the
/// [`FitContext`], through which it can stop training (`model.stop_training = True`) or reset
/// a stateful model's states (`model.reset_states()`, see [`FitContext::reset_states`]).
///
/// ```
/// use ndarray::{Array2, Array3};
/// use seqnn::{Dense, FitOptions, LambdaCallback, Sequential};
/// let mut model = Sequential::new();
/// model.add(Dense::new(1).input_dim(2))?;
/// model.compile("sgd", "mse")?;
/// let (x, y) = (Array2::<f32>::ones((8, 2)), Array2::<f32>::zeros((8, 1)));
/// // Stop once the loss is below 0.01.
/// let mut small = LambdaCallback::new().on_epoch_end(|_epoch, logs, fit| {
///     if logs.get("loss").is_some_and(|l| l < 0.01) {
///         fit.set_stop_training(true);
///     }
/// });
/// let options = FitOptions::new().with_epochs(500).with_verbose(0);
/// let history = model.fit_with_callbacks(&x, &y, &options, &mut [&mut small])?;
/// assert!(history.epoch().len() < 500);
/// // LambdaCallback(on_epoch_end=lambda epoch, logs: model.reset_states())
/// let _reset = LambdaCallback::new().on_epoch_end(|_epoch, _logs, fit| fit.reset_states());
/// # Ok::<(), seqnn::Error>(())
/// ```
#[derive(Default)]
pub struct LambdaCallback {
    epoch_begin: Option<IndexHook>,
    epoch_end: Option<IndexHook>,
    batch_begin: Option<IndexHook>,
    batch_end: Option<IndexHook>,
    train_begin: Option<TrainHook>,
    train_end: Option<TrainHook>,
}

impl std::fmt::Debug for LambdaCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaCallback").finish_non_exhaustive()
    }
}

impl LambdaCallback {
    /// A callback that does nothing until given closures.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keras's `on_epoch_begin=lambda epoch, logs: ...`.
    #[must_use]
    pub fn on_epoch_begin(
        mut self,
        f: impl FnMut(usize, &mut Logs, &mut FitContext<'_>) + 'static,
    ) -> Self {
        self.epoch_begin = Some(Box::new(f));
        self
    }

    /// Keras's `on_epoch_end=lambda epoch, logs: ...`.
    #[must_use]
    pub fn on_epoch_end(
        mut self,
        f: impl FnMut(usize, &mut Logs, &mut FitContext<'_>) + 'static,
    ) -> Self {
        self.epoch_end = Some(Box::new(f));
        self
    }

    /// Keras's `on_train_batch_begin=lambda batch, logs: ...`.
    #[must_use]
    pub fn on_train_batch_begin(
        mut self,
        f: impl FnMut(usize, &mut Logs, &mut FitContext<'_>) + 'static,
    ) -> Self {
        self.batch_begin = Some(Box::new(f));
        self
    }

    /// Keras's `on_train_batch_end=lambda batch, logs: ...`.
    #[must_use]
    pub fn on_train_batch_end(
        mut self,
        f: impl FnMut(usize, &mut Logs, &mut FitContext<'_>) + 'static,
    ) -> Self {
        self.batch_end = Some(Box::new(f));
        self
    }

    /// Keras's `on_train_begin=lambda logs: ...`.
    #[must_use]
    pub fn on_train_begin(
        mut self,
        f: impl FnMut(&mut Logs, &mut FitContext<'_>) + 'static,
    ) -> Self {
        self.train_begin = Some(Box::new(f));
        self
    }

    /// Keras's `on_train_end=lambda logs: ...`.
    #[must_use]
    pub fn on_train_end(mut self, f: impl FnMut(&mut Logs, &mut FitContext<'_>) + 'static) -> Self {
        self.train_end = Some(Box::new(f));
        self
    }
}

/// Runs an index hook if there is one.
fn run(
    hook: &mut Option<IndexHook>,
    i: usize,
    logs: &mut Logs,
    fit: &mut FitContext<'_>,
) -> Result<()> {
    if let Some(f) = hook {
        f(i, logs, fit);
    }
    Ok(())
}

impl Callback for LambdaCallback {
    fn on_train_begin(&mut self, logs: &mut Logs, fit: &mut FitContext<'_>) -> Result<()> {
        if let Some(f) = &mut self.train_begin {
            f(logs, fit);
        }
        Ok(())
    }

    fn on_train_end(&mut self, logs: &mut Logs, fit: &mut FitContext<'_>) -> Result<()> {
        if let Some(f) = &mut self.train_end {
            f(logs, fit);
        }
        Ok(())
    }

    fn on_epoch_begin(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        run(&mut self.epoch_begin, epoch, logs, fit)
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        run(&mut self.epoch_end, epoch, logs, fit)
    }

    fn on_train_batch_begin(
        &mut self,
        batch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        run(&mut self.batch_begin, batch, logs, fit)
    }

    fn on_train_batch_end(
        &mut self,
        batch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        run(&mut self.batch_end, batch, logs, fit)
    }
}
