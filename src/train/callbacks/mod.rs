//! Keras's callbacks: code that `fit` runs at the start and end of training, of each epoch and
//! of each batch, with the logs, the model's weights, the optimizer's learning rate and a way to
//! stop training.
//!
//! - [`Callback`]: Keras's `keras.callbacks.Callback`, its hooks in Keras's order;
//!   [`FitContext`] is what a hook reaches (Keras's `self.model`, `self.params`).
//! - [`EarlyStopping`], [`ReduceLROnPlateau`], [`LearningRateScheduler`], [`TerminateOnNaN`],
//!   [`CSVLogger`], [`LambdaCallback`] and, with the `keras` feature, [`ModelCheckpoint`] and
//!   [`BackupAndRestore`] (which resumes an interrupted `fit` where it stopped);
//!   [`History`] records the logs of every epoch, as Keras's does, and is
//!   what `fit` returns.
//!
//! `fit_with_callbacks` on [`Sequential`](crate::Sequential::fit_with_callbacks) and
//! [`Model`](crate::Model::fit_with_callbacks) takes them, as Keras's `fit(...,
//! callbacks=[...])`. They are borrowed, so their state (`stopped_epoch`, `best`) can be read
//! after `fit`, as in Keras:
//!
//! ```
//! use ndarray::{Array2, Array3};
//! use seqnn::{Callback, Dense, EarlyStopping, FitOptions, Sequential, SimpleRNN};
//! seqnn::set_random_seed(0);
//! let mut model = Sequential::new();
//! model.add(SimpleRNN::new(3).input_shape((4, 2)))?;
//! model.add(Dense::new(1))?;
//! model.compile("sgd", "mse")?;
//! let (x, y) = (Array3::<f32>::from_elem((16, 4, 2), 0.5), Array2::<f32>::zeros((16, 1)));
//! // keras.callbacks.EarlyStopping(monitor="loss", min_delta=1.0, patience=1)
//! let mut stop = EarlyStopping::new().monitor("loss").min_delta(1.0).patience(1);
//! let options = FitOptions::new().with_epochs(10).with_verbose(0);
//! let history = model.fit_with_callbacks(&x, &y, &options, &mut [&mut stop])?;
//! assert_eq!(history.epoch(), &[0, 1]);
//! assert_eq!(stop.stopped_epoch(), 1);
//! # Ok::<(), seqnn::Error>(())
//! ```
//!
//! The order is Keras's (`trainers/trainer.py` of Keras 3.15, `engine/training.py` of tf_keras
//! 2.21): `on_train_begin`; for each epoch `on_epoch_begin`, then per batch
//! `on_train_batch_begin` and `on_train_batch_end` (with the running `loss` and metrics); then,
//! with validation data, `on_test_begin`, the test batches and `on_test_end`; then
//! `on_epoch_end` with the epoch's logs (`loss`, metrics, `val_` keys); `on_train_end` with the
//! last epoch's logs. A stop asked for in a batch ends that epoch's batches; its validation and
//! `on_epoch_end` still run. Each hook is given to the callbacks in their order, then to the
//! `History`; a key a callback adds to the logs (`lr`, `learning_rate`) is seen by the
//! callbacks after it and by the `History`.

#[cfg(feature = "keras")]
mod backup_and_restore;
mod csv_logger;
mod early_stopping;
mod format;
mod history;
mod lambda;
mod learning_rate_scheduler;
#[cfg(feature = "keras")]
mod model_checkpoint;
mod monitor;
mod reduce_lr_on_plateau;
#[cfg(feature = "keras")]
mod save_freq;
mod terminate_on_nan;

use ndarray::ArrayD;

use crate::error::Result;
use crate::layer::Layer;
use crate::train::loss::Dialect;
use crate::train::optimizer::Optimizer;
use crate::{Compiled, History};

#[cfg(feature = "keras")]
pub use backup_and_restore::BackupAndRestore;
pub use csv_logger::CSVLogger;
pub use early_stopping::EarlyStopping;
pub use lambda::LambdaCallback;
pub use learning_rate_scheduler::LearningRateScheduler;
#[cfg(feature = "keras")]
pub use model_checkpoint::ModelCheckpoint;
pub(crate) use monitor::keras3_direction;
pub use monitor::MonitorMode;
pub use reduce_lr_on_plateau::ReduceLROnPlateau;
#[cfg(feature = "keras")]
pub use save_freq::SaveFreq;
pub use terminate_on_nan::TerminateOnNaN;

/// Keras's logs: the values a hook gets, by name, in Keras's order (`loss`, the metrics, the
/// `val_` keys, then what callbacks added, such as `learning_rate`).
///
/// ```
/// use seqnn::Logs;
/// let mut logs = Logs::new();
/// logs.insert("loss", 0.5);
/// logs.insert("val_loss", 0.75);
/// logs.insert("loss", 0.25); // replaces, keeping the place
/// assert_eq!(logs.get("loss"), Some(0.25));
/// assert_eq!(logs.keys().collect::<Vec<_>>(), ["loss", "val_loss"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Logs {
    entries: Vec<(String, f32)>,
}

impl Logs {
    /// No values (Keras's `logs=None`).
    pub fn new() -> Self {
        Self::default()
    }

    /// The value logged under `key`.
    pub fn get(&self, key: &str) -> Option<f32> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Sets `key` (Keras's `logs[key] = value`): in its place if it is there, else at the end.
    pub fn insert(&mut self, key: &str, value: f32) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.entries.push((key.to_string(), value)),
        }
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// The keys and values, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f32)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// How many values.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys joined by commas, as Keras lists them in its warnings: `loss,val_loss`.
    pub(crate) fn key_list(&self) -> String {
        self.keys().collect::<Vec<_>>().join(",")
    }

    /// The entries, as `(name, value)` pairs.
    pub fn as_slice(&self) -> &[(String, f32)] {
        &self.entries
    }
}

impl From<Vec<(String, f32)>> for Logs {
    fn from(entries: Vec<(String, f32)>) -> Self {
        Logs { entries }
    }
}

/// What a callback's hook reaches during `fit`: Keras's `self.model` (its weights, its
/// optimizer's learning rate, `stop_training`, `reset_states()`) and `self.params`
/// (`epochs`, `steps`, `verbose`).
///
/// ```
/// use seqnn::{Callback, FitContext, Logs, Result};
/// /// Halves the learning rate after each epoch and stops after the third.
/// struct Halve;
/// impl Callback for Halve {
///     fn on_epoch_end(&mut self, epoch: usize, _logs: &mut Logs, fit: &mut FitContext<'_>) -> Result<()> {
///         let lr = fit.learning_rate();
///         fit.set_learning_rate(f64::from(lr) / 2.0)?;
///         if epoch == 2 {
///             fit.set_stop_training(true); // model.stop_training = True
///         }
///         Ok(())
///     }
/// }
/// ```
pub struct FitContext<'a> {
    model: &'a mut dyn Layer,
    compiled: &'a mut Compiled,
    params: &'a Params,
    stop_training: &'a mut bool,
    initial_epoch: &'a mut Option<usize>,
}

/// `fit`'s parameters as a callback sees them (Keras's `callback.params`), and what the auto
/// mode of a monitor needs.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    pub(crate) epochs: usize,
    pub(crate) steps: usize,
    pub(crate) verbose: u8,
    pub(crate) dialect: Dialect,
    /// Each metric's log name (without `val_`) and whether Keras 3 maximizes it (`None` for a
    /// metric without a direction).
    pub(crate) directions: Vec<(String, Option<MonitorMode>)>,
}

impl std::fmt::Debug for FitContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FitContext")
            .field("model", &self.model.name())
            .field("epochs", &self.params.epochs)
            .field("stop_training", &self.stop_training)
            .finish()
    }
}

impl FitContext<'_> {
    /// The model being trained.
    pub fn model(&self) -> &dyn Layer {
        self.model
    }

    /// Every weight of the model, in Keras's `model.get_weights()` order.
    pub fn get_weights(&self) -> Vec<ArrayD<f32>> {
        self.model.weights().iter().map(|w| w.to_owned()).collect()
    }

    /// Keras's `model.set_weights(weights)`.
    ///
    /// # Errors
    /// As [`Layer::set_weights`]: a count or a shape that is not the model's (nothing
    /// changes then).
    pub fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        self.model.set_weights(weights)
    }

    /// The states the model's stateful layers carry into the next batch, in layer order
    /// (Keras's `layer.states`); empty for a model without any.
    pub fn states(&self) -> Vec<ndarray::Array2<f32>> {
        self.model.states()
    }

    /// Zeroes the states of the model's stateful layers, so that the next batch starts from
    /// zeros: tf_keras's `model.reset_states()`, Keras 3's `layer.reset_state()` on each
    /// stateful layer (its models have no `reset_states`). Keras's `fit` never resets them
    /// itself, neither when it starts nor between epochs; a stateful model's training does it
    /// from a callback:
    ///
    /// ```
    /// use ndarray::{Array2, Array3};
    /// use seqnn::{Dense, FitOptions, LambdaCallback, Sequential, SimpleRNN};
    /// let mut model = Sequential::new();
    /// model.add(SimpleRNN::new(3).with_stateful(true).batch_input_shape((2, 4, 1)))?;
    /// model.add(Dense::new(1))?;
    /// model.compile("sgd", "mse")?;
    /// let (x, y) = (Array3::<f32>::from_elem((4, 4, 1), 0.5), Array2::<f32>::zeros((4, 1)));
    /// // LambdaCallback(on_epoch_begin=lambda epoch, logs: model.reset_states())
    /// let mut reset = LambdaCallback::new().on_epoch_begin(|_epoch, _logs, fit| fit.reset_states());
    /// let options = FitOptions::new().with_epochs(3).with_batch_size(2).with_shuffle(false).with_verbose(0);
    /// model.fit_with_callbacks(&x, &y, &options, &mut [&mut reset])?;
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    pub fn reset_states(&mut self) {
        self.model.reset_states();
    }

    /// The optimizer, with its state.
    pub fn optimizer(&self) -> &dyn Optimizer {
        self.compiled.optimizer()
    }

    /// The learning rate the next step uses (Keras's `model.optimizer.learning_rate`), as
    /// float32.
    pub fn learning_rate(&self) -> f32 {
        self.compiled.optimizer().learning_rate()
    }

    /// Keras's `model.optimizer.learning_rate = lr`.
    ///
    /// # Errors
    /// For an optimizer made with a schedule, or a rate that is not finite, as
    /// [`Optimizer::set_learning_rate`].
    pub fn set_learning_rate(&mut self, learning_rate: f64) -> Result<()> {
        self.compiled
            .optimizer_mut()
            .set_learning_rate(learning_rate)
    }

    /// Keras's `model.stop_training`: whether training stops after this batch (or epoch).
    pub fn stop_training(&self) -> bool {
        *self.stop_training
    }

    /// Keras's `model.stop_training = stop`.
    pub fn set_stop_training(&mut self, stop: bool) {
        *self.stop_training = stop;
    }

    /// Makes `fit` start at epoch `epoch` (from 0) instead of its `initial_epoch`: Keras 3's
    /// `model._initial_epoch`, which a callback sets in
    /// [`on_train_begin`](Callback::on_train_begin) to resume a run
    /// ([`BackupAndRestore`] does). Set later, it has no effect.
    pub fn set_initial_epoch(&mut self, epoch: usize) {
        *self.initial_epoch = Some(epoch);
    }

    /// `fit`'s `epochs` (Keras's `params["epochs"]`).
    pub fn epochs(&self) -> usize {
        self.params.epochs
    }

    /// The batches of an epoch (Keras's `params["steps"]`).
    pub fn steps(&self) -> usize {
        self.params.steps
    }

    /// `fit`'s `verbose`.
    pub fn verbose(&self) -> u8 {
        self.params.verbose
    }

    /// Which Keras's semantics the model was compiled with: callbacks follow the same one
    /// (tf_keras logs the learning rate as `lr`, Keras 3 as `learning_rate`).
    pub fn dialect(&self) -> Dialect {
        self.params.dialect
    }

    /// Saves the model as a Keras 3 `.keras` archive with its compile configuration,
    /// atomically: written to a temporary file of the same directory, then renamed, so that a
    /// failed save leaves the file that was there.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) or [`Error::File`](crate::Error::File) when the file
    /// cannot be written; [`Error::Unsupported`](crate::Error::Unsupported) for a model that
    /// is not a `Sequential` or a `Model`.
    #[cfg(feature = "keras")]
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        crate::keras::save_layer(self.model, self.compiled, path, false)
    }

    /// Saves the weights as a Keras 3 `.weights.h5` file, atomically, as
    /// [`save`](FitContext::save).
    ///
    /// # Errors
    /// As [`save`](FitContext::save).
    #[cfg(feature = "keras")]
    pub fn save_weights(&self, path: &std::path::Path) -> Result<()> {
        crate::keras::save_layer(self.model, self.compiled, path, true)
    }

    /// What a Keras 3 `.weights.h5` file holds for the model being trained: its weights, and
    /// the compile configuration with the file's optimizer state (`None` when it holds none).
    /// Nothing changes; [`restore`](FitContext::restore) sets them.
    #[cfg(feature = "keras")]
    pub(crate) fn read_weights(
        &self,
        path: &std::path::Path,
    ) -> Result<(Vec<ArrayD<f32>>, Option<Compiled>)> {
        crate::keras::read_training_weights(self.model, self.compiled, path)
    }

    /// Sets the weights and, when given, the compile configuration (its optimizer's state):
    /// both or, on an error, neither.
    ///
    /// # Errors
    /// As [`Layer::set_weights`].
    #[cfg(feature = "keras")]
    pub(crate) fn restore(
        &mut self,
        weights: &[ArrayD<f32>],
        compiled: Option<Compiled>,
    ) -> Result<()> {
        self.model.set_weights(weights)?;
        if let Some(compiled) = compiled {
            *self.compiled = compiled;
        }
        Ok(())
    }

    /// Whether Keras 3 maximizes the metric logged as `name` (without `val_`): `None` when it
    /// has no direction or there is no such metric.
    pub(crate) fn metric_direction(&self, name: &str) -> Option<MonitorMode> {
        (self.params.directions.iter())
            .find(|(n, _)| n == name)
            .and_then(|(_, d)| *d)
    }
}

/// A Keras callback: hooks that `fit` runs, each with the logs Keras gives it and the
/// [`FitContext`]. Every hook does nothing by default; implement those you need. A hook's
/// error stops `fit` with it.
///
/// Keras: `keras.callbacks.Callback`. The hooks take `(epoch or batch, logs)` as Keras's do,
/// then the context; indices count from 0.
pub trait Callback {
    /// Before the first epoch.
    ///
    /// # Errors
    /// A callback that cannot run (a checkpoint path that cannot be written) says so here,
    /// before any training.
    fn on_train_begin(&mut self, logs: &mut Logs, fit: &mut FitContext<'_>) -> Result<()> {
        let _ = (logs, fit);
        Ok(())
    }

    /// After the last epoch, with its logs.
    ///
    /// # Errors
    /// The callback's own.
    fn on_train_end(&mut self, logs: &mut Logs, fit: &mut FitContext<'_>) -> Result<()> {
        let _ = (logs, fit);
        Ok(())
    }

    /// At the start of epoch `epoch`; the logs are empty.
    ///
    /// # Errors
    /// The callback's own.
    fn on_epoch_begin(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        let _ = (epoch, logs, fit);
        Ok(())
    }

    /// At the end of epoch `epoch`, with its `loss`, metrics and `val_` values.
    ///
    /// # Errors
    /// The callback's own.
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        let _ = (epoch, logs, fit);
        Ok(())
    }

    /// Before training batch `batch` of the epoch; the logs are empty.
    ///
    /// # Errors
    /// The callback's own.
    fn on_train_batch_begin(
        &mut self,
        batch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        let _ = (batch, logs, fit);
        Ok(())
    }

    /// After training batch `batch`, with the epoch's running `loss` and metrics.
    ///
    /// # Errors
    /// The callback's own.
    fn on_train_batch_end(
        &mut self,
        batch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        let _ = (batch, logs, fit);
        Ok(())
    }

    /// Before the validation of an epoch.
    ///
    /// # Errors
    /// The callback's own.
    fn on_test_begin(&mut self, logs: &mut Logs, fit: &mut FitContext<'_>) -> Result<()> {
        let _ = (logs, fit);
        Ok(())
    }

    /// After the validation, with its values (`loss`, not `val_loss`).
    ///
    /// # Errors
    /// The callback's own.
    fn on_test_end(&mut self, logs: &mut Logs, fit: &mut FitContext<'_>) -> Result<()> {
        let _ = (logs, fit);
        Ok(())
    }

    /// Before validation batch `batch`.
    ///
    /// # Errors
    /// The callback's own.
    fn on_test_batch_begin(
        &mut self,
        batch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        let _ = (batch, logs, fit);
        Ok(())
    }

    /// After validation batch `batch`, with the running values.
    ///
    /// # Errors
    /// The callback's own.
    fn on_test_batch_end(
        &mut self,
        batch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        let _ = (batch, logs, fit);
        Ok(())
    }
}

/// The callbacks of one `fit`, then its [`History`], as Keras's `CallbackList`.
pub(crate) struct CallbackList<'c, 'd> {
    callbacks: &'c mut [&'d mut dyn Callback],
    pub(crate) history: History,
    params: Params,
    stop_training: bool,
    initial_epoch: Option<usize>,
}

impl<'c, 'd> CallbackList<'c, 'd> {
    pub(crate) fn new(callbacks: &'c mut [&'d mut dyn Callback], params: Params) -> Self {
        CallbackList {
            callbacks,
            history: History::default(),
            params,
            stop_training: false,
            initial_epoch: None,
        }
    }

    /// Runs `hook` on every callback, then on the history, in that order; stops at the first
    /// error.
    pub(crate) fn call(
        &mut self,
        model: &mut dyn Layer,
        compiled: &mut Compiled,
        mut hook: impl FnMut(&mut dyn Callback, &mut FitContext<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut fit = FitContext {
            model,
            compiled,
            params: &self.params,
            stop_training: &mut self.stop_training,
            initial_epoch: &mut self.initial_epoch,
        };
        for c in self.callbacks.iter_mut() {
            hook(&mut **c, &mut fit)?;
        }
        hook(&mut self.history, &mut fit)
    }

    /// Whether a callback asked to stop.
    pub(crate) fn stop_training(&self) -> bool {
        self.stop_training
    }

    /// The epoch a callback set `fit` to start at ([`FitContext::set_initial_epoch`]).
    pub(crate) fn initial_epoch(&self) -> Option<usize> {
        self.initial_epoch
    }
}

/// What a callback printed and warned, kept for reading after `fit` (Keras prints them; seqnn
/// prints them too: messages on standard output, warnings on standard error).
#[derive(Debug, Clone, Default)]
pub(crate) struct Said {
    pub(crate) printed: Vec<String>,
    pub(crate) warnings: Vec<String>,
}

impl Said {
    /// Keras's `io_utils.print_msg`.
    pub(crate) fn print(&mut self, message: String) {
        println!("{message}");
        self.printed.push(message);
    }

    /// Keras 3's `warnings.warn` (`UserWarning: ...`) or tf_keras's `logging.warning`
    /// (`WARNING:tensorflow:...`), on standard error.
    pub(crate) fn warn(&mut self, dialect: Dialect, message: String) {
        match dialect {
            Dialect::TfKeras => eprintln!("WARNING:tensorflow:{message}"),
            Dialect::Keras3 => eprintln!("UserWarning: {message}"),
        }
        self.warnings.push(message);
    }
}

/// The log key of the learning rate: tf_keras's `lr`, Keras 3's `learning_rate`.
pub(crate) fn learning_rate_key(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::TfKeras => "lr",
        Dialect::Keras3 => "learning_rate",
    }
}

/// A Python float's `str`: the shortest digits of `v`, as Keras 3 prints a learning rate it
/// read as `float(...)` (`0.10000000149011612` for float32's 0.1).
pub(crate) fn py_float(v: f64) -> String {
    crate::train::config::py_repr(v)
}
