//! Keras's `ModelCheckpoint`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::train::callbacks::format::{py_format, py_format_check, FormatError, PyValue};
use crate::train::callbacks::monitor::{monitor_options, Monitor, MonitorMode};
use crate::train::callbacks::save_freq::{BatchCount, SaveFreq};
use crate::train::callbacks::{Callback, FitContext, Logs, Said};
use crate::train::loss::Dialect;

/// Saves the model (or its weights) during training: Keras's
/// `keras.callbacks.ModelCheckpoint(filepath, monitor="val_loss", verbose=0,
/// save_best_only=False, save_weights_only=False, mode="auto", save_freq="epoch",
/// initial_value_threshold=None)`.
///
/// The path is a Python format string of `epoch` (from 1), `batch` (from 1, when saving by
/// batches) and the log keys, with Python's format specifications:
/// `ckpt-{epoch:02d}-{val_loss:.2f}.keras` gives `ckpt-03-0.28.keras`. A model is saved as a
/// Keras 3 `.keras` archive (the path must end in `.keras`), its weights alone as a Keras 3
/// `.weights.h5` file (`save_weights_only`; the path must end in `.weights.h5`), through
/// the same writers as [`Sequential::save`](crate::Sequential::save). Each save is atomic: the
/// file is written under a temporary name in its directory, then renamed, so a failed save
/// leaves the file that was there.
///
/// With `save_best_only`, a file is written only when the monitored value beats the best so far
/// (tf_keras starts from ±inf, Keras 3 from none, both from `initial_value_threshold` when
/// given); a missing key is Keras's warning, and tf_keras then skips the save where Keras 3
/// saves. `mode` [`MonitorMode::Auto`]: tf_keras maximizes a key containing `acc` or starting with
/// `fmeasure`; Keras 3 as [`EarlyStopping`](crate::EarlyStopping).
///
/// Before the first epoch, the path is checked: its extension, its format string, and that its
/// directory (made if missing, as Keras makes it) can be written: a path that cannot be is an
/// error before any training.
///
/// ```
/// use seqnn::{ModelCheckpoint, SaveFreq};
/// // keras.callbacks.ModelCheckpoint("ckpt-{epoch:02d}-{val_loss:.2f}.keras", save_best_only=True)
/// let best = ModelCheckpoint::new("ckpt-{epoch:02d}-{val_loss:.2f}.keras").save_best_only(true);
/// // keras.callbacks.ModelCheckpoint("w-{batch}.weights.h5", save_weights_only=True, save_freq=100)
/// let weights = ModelCheckpoint::new("w-{batch}.weights.h5")
///     .save_weights_only(true)
///     .save_freq(SaveFreq::Batches(100));
/// assert!(best.saved().is_empty() && weights.saved().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct ModelCheckpoint {
    filepath: String,
    monitor: Monitor,
    verbose: u8,
    save_best_only: bool,
    save_weights_only: bool,
    save_freq: SaveFreq,
    started: bool,
    current_epoch: usize,
    batches: BatchCount,
    saved: Vec<PathBuf>,
    said: Said,
}

impl ModelCheckpoint {
    /// A checkpoint to `filepath` with Keras's defaults: the whole model, at every epoch.
    pub fn new(filepath: impl AsRef<Path>) -> Self {
        ModelCheckpoint {
            filepath: filepath.as_ref().to_string_lossy().into_owned(),
            monitor: Monitor::new("val_loss", 0.0),
            verbose: 0,
            save_best_only: false,
            save_weights_only: false,
            save_freq: SaveFreq::Epoch,
            started: false,
            current_epoch: 0,
            batches: BatchCount::default(),
            saved: Vec::new(),
            said: Said::default(),
        }
    }

    monitor_options!();

    /// Save only when the monitored value improves (default false).
    #[must_use]
    pub fn save_best_only(mut self, best_only: bool) -> Self {
        self.save_best_only = best_only;
        self
    }

    /// Save the weights alone, as `.weights.h5` (default false).
    #[must_use]
    pub fn save_weights_only(mut self, weights_only: bool) -> Self {
        self.save_weights_only = weights_only;
        self
    }

    /// Keras's `save_freq` (default `"epoch"`).
    #[must_use]
    pub fn save_freq(mut self, freq: SaveFreq) -> Self {
        self.save_freq = freq;
        self
    }

    /// Keras's `initial_value_threshold`: the value to beat at the first save (default none).
    #[must_use]
    pub fn initial_value_threshold(mut self, value: f64) -> Self {
        self.monitor.initial = Some(value);
        self
    }

    /// The files written, in order (the same path again when it has no varying field).
    pub fn saved(&self) -> &[PathBuf] {
        &self.saved
    }

    /// The best monitored value so far.
    pub fn best(&self) -> Option<f64> {
        self.monitor.best
    }

    fn error(&self, message: String) -> Error {
        Error::Callback {
            callback: "ModelCheckpoint".into(),
            message,
        }
    }

    /// Everything that can be checked before training: the extension, the format string, the
    /// frequency and the directory.
    fn check(&self) -> Result<()> {
        let path = &self.filepath;
        if self.save_weights_only {
            if !path.ends_with(".weights.h5") {
                return Err(self.error(format!(
                    "When using `save_weights_only=True` in `ModelCheckpoint`, the filepath \
                     provided must end in `.weights.h5` (Keras weights format). Received: \
                     filepath={path}"
                )));
            }
        } else if path.ends_with(".h5") {
            return Err(self.error(format!(
                "seqnn writes models as .keras archives only, not legacy .h5 files: give a \
                 filepath ending in `.keras`, or save_weights_only with `.weights.h5`. \
                 Received: filepath={path}"
            )));
        } else if !path.ends_with(".keras") {
            return Err(self.error(format!(
                "The filepath provided must end in `.keras` (Keras model format). Received: \
                 filepath={path}"
            )));
        }
        if self.save_freq == SaveFreq::Batches(0) {
            return Err(self.error(
                "Unrecognized save_freq: 0. Expected save_freq are 'epoch' or a positive \
                 number of batches"
                    .into(),
            ));
        }
        py_format_check(path).map_err(|e| self.format_error(e))?;
        let file = Path::new(path);
        if !path.contains('{') && file.is_dir() {
            return Err(self.error(format!(
                "Please specify a non-directory filepath for ModelCheckpoint. Filepath used is \
                 an existing directory: {path}"
            )));
        }
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        if dir.to_string_lossy().contains('{') {
            return Ok(());
        }
        crate::keras::check_writable(&dir)
            .map_err(|e| self.error(format!("cannot write checkpoints to {path}: {e}")))
    }

    fn format_error(&self, e: FormatError) -> Error {
        match e {
            FormatError::Key(key) => self.error(format!(
                "Failed to format this callback filepath: \"{}\". Reason: '{key}'",
                self.filepath
            )),
            FormatError::Value(message) => self.error(format!(
                "Failed to format this callback filepath: \"{}\". Reason: {message}",
                self.filepath
            )),
        }
    }

    fn path_for(&self, epoch: usize, batch: Option<usize>, logs: &Logs) -> Result<String> {
        py_format(&self.filepath, |name| match name {
            "epoch" => Some(PyValue::Int(epoch as i64 + 1)),
            "batch" if logs.get("batch").is_none() => batch.map(|b| PyValue::Int(b as i64 + 1)),
            key => logs.get(key).map(|v| PyValue::Float(f64::from(v))),
        })
        .map_err(|e| self.format_error(e))
    }

    /// Whether to save now, with Keras's messages (`_should_save_model`, or tf_keras's
    /// `_save_model`).
    fn should_save(&mut self, epoch: usize, logs: &Logs, path: &str, dialect: Dialect) -> bool {
        if !self.save_best_only {
            if self.verbose > 0 {
                self.said
                    .print(format!("\nEpoch {}: saving model to {path}", epoch + 1));
            }
            return true;
        }
        let Some(current) = logs.get(&self.monitor.key) else {
            let (text, save) = match dialect {
                Dialect::TfKeras => (
                    format!(
                        "Can save best model only with {} available, skipping.",
                        self.monitor.key
                    ),
                    false,
                ),
                Dialect::Keras3 => (
                    format!(
                        "Can save best model only with {} available.",
                        self.monitor.key
                    ),
                    true,
                ),
            };
            self.said.warn(dialect, text);
            return save;
        };
        let current = f64::from(current);
        let best = match self.monitor.best {
            None => "None".to_string(),
            Some(b) if b.is_infinite() => if b > 0.0 { "inf" } else { "-inf" }.to_string(),
            Some(b) => format!("{b:.5}"),
        };
        if self.monitor.improves(current, self.monitor.best) {
            if self.verbose > 0 {
                self.said.print(format!(
                    "\nEpoch {}: {} improved from {best} to {current:.5}, saving model to {path}",
                    epoch + 1,
                    self.monitor.key
                ));
            }
            self.monitor.best = Some(current);
            true
        } else {
            if self.verbose > 0 {
                self.said.print(format!(
                    "\nEpoch {}: {} did not improve from {best}",
                    epoch + 1,
                    self.monitor.key
                ));
            }
            false
        }
    }

    fn save(
        &mut self,
        epoch: usize,
        batch: Option<usize>,
        logs: &Logs,
        fit: &FitContext<'_>,
    ) -> Result<()> {
        let path = self.path_for(epoch, batch, logs)?;
        if !self.should_save(epoch, logs, &path, fit.dialect()) {
            return Ok(());
        }
        let file = PathBuf::from(&path);
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        if file.is_dir() {
            return Err(self.error(format!(
                "Please specify a non-directory filepath for ModelCheckpoint. Filepath used is \
                 an existing directory: {path}"
            )));
        }
        if self.save_weights_only {
            fit.save_weights(&file)?;
        } else {
            fit.save(&file)?;
        }
        if self.verbose > 0 && fit.dialect() == Dialect::Keras3 {
            self.said.print(format!(
                "\nEpoch {}: finished saving model to {path}",
                epoch + 1
            ));
        }
        self.saved.push(file);
        Ok(())
    }
}

/// tf_keras's `auto` rule for ModelCheckpoint.
fn tf_auto(key: &str) -> bool {
    key.contains("acc") || key.starts_with("fmeasure")
}

impl Callback for ModelCheckpoint {
    fn on_train_begin(&mut self, _logs: &mut Logs, fit: &mut FitContext<'_>) -> Result<()> {
        self.check()?;
        self.monitor.resolve("ModelCheckpoint", tf_auto, fit)?;
        if !self.started {
            // Keras sets the best value when the callback is made, not at each fit.
            self.monitor.best = match fit.dialect() {
                Dialect::TfKeras => Some(self.monitor.tf_start()),
                Dialect::Keras3 => self.monitor.initial,
            };
            self.started = true;
        }
        self.said = Said::default();
        Ok(())
    }

    fn on_epoch_begin(
        &mut self,
        epoch: usize,
        _logs: &mut Logs,
        _fit: &mut FitContext<'_>,
    ) -> Result<()> {
        self.current_epoch = epoch;
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        batch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        if self.batches.save_after(batch, self.save_freq) {
            self.save(self.current_epoch, Some(batch), logs, fit)?;
        }
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        if self.save_freq == SaveFreq::Epoch {
            self.save(epoch, None, logs, fit)?;
        }
        Ok(())
    }
}
