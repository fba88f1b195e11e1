//! What EarlyStopping, ReduceLROnPlateau and ModelCheckpoint share: a monitored log key, the
//! direction of an improvement (Keras's `mode`, with each Keras's `auto` rule), `min_delta` and
//! the best value so far (Keras 3's `MonitorCallback`; tf_keras repeats it in each callback).

use crate::error::{Error, Result};
use crate::train::callbacks::FitContext;
use crate::train::loss::Dialect;

/// Keras's `mode`: whether the monitored value should fall or rise.
///
/// ```
/// use seqnn::{EarlyStopping, MonitorMode};
/// let stop = EarlyStopping::new().monitor("val_accuracy").mode(MonitorMode::Max);
/// # let _ = stop;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MonitorMode {
    /// `"auto"` (the default): from the monitored key, by each Keras's rule.
    #[default]
    Auto,
    /// `"min"`: lower is better.
    Min,
    /// `"max"`: higher is better.
    Max,
}

impl MonitorMode {
    /// Keras's strings `"auto"`, `"min"`, `"max"`.
    ///
    /// # Errors
    /// [`Error::UnknownName`] for another string (Keras warns and takes `"auto"`).
    pub fn from_name(name: &str) -> Result<MonitorMode> {
        match name {
            "auto" => Ok(MonitorMode::Auto),
            "min" => Ok(MonitorMode::Min),
            "max" => Ok(MonitorMode::Max),
            other => Err(Error::UnknownName {
                kind: "mode",
                name: other.to_string(),
                message: format!("mode '{other}' is unknown: one of auto, min, max"),
            }),
        }
    }
}

/// The options and getters every monitoring callback has alike, for a struct with the fields
/// `monitor: Monitor`, `verbose: u8` and `said: Said`: `monitor`, `mode`, `verbose`,
/// `warnings` and `messages`.
macro_rules! monitor_options {
    () => {
        /// The log key watched (default `"val_loss"`).
        #[must_use]
        pub fn monitor(mut self, key: &str) -> Self {
            self.monitor.key = key.to_string();
            self
        }

        /// Keras's `mode` (default auto).
        #[must_use]
        pub fn mode(mut self, mode: MonitorMode) -> Self {
            self.monitor.mode = mode;
            self
        }

        /// 1 prints Keras's messages; default 0.
        #[must_use]
        pub fn verbose(mut self, verbose: u8) -> Self {
            self.verbose = verbose;
            self
        }

        /// The warnings of the last `fit` (a monitored key missing from the logs), in
        /// Keras's words.
        pub fn warnings(&self) -> &[String] {
            &self.said.warnings
        }

        /// What the last `fit` printed with `verbose` 1, in Keras's words.
        pub fn messages(&self) -> &[String] {
            &self.said.printed
        }
    };
}
pub(crate) use monitor_options;

/// How a tf_keras callback's `auto` mode reads the key: whether it maximizes it.
pub(crate) type TfAuto = fn(&str) -> bool;

/// A monitored key and the best value so far.
#[derive(Debug, Clone)]
pub(crate) struct Monitor {
    pub(crate) key: String,
    pub(crate) mode: MonitorMode,
    /// As given (its magnitude is used).
    pub(crate) min_delta: f64,
    /// Keras's `baseline` or `initial_value_threshold`: the best value before any epoch, if
    /// any.
    pub(crate) initial: Option<f64>,
    /// Whether higher is better, once resolved.
    greater: Option<bool>,
    /// The best value so far; `None` in Keras 3 until the first value (tf_keras starts from
    /// ±inf).
    pub(crate) best: Option<f64>,
}

impl Monitor {
    pub(crate) fn new(key: &str, min_delta: f64) -> Self {
        Monitor {
            key: key.to_string(),
            mode: MonitorMode::Auto,
            min_delta,
            initial: None,
            greater: None,
            best: None,
        }
    }

    /// Resolves the direction, as the dialect's Keras does: tf_keras by `tf_auto` on the key;
    /// Keras 3 by `loss` or the direction of the compiled metric of that name, else an error
    /// in Keras's words (Keras raises it at the end of the first epoch; seqnn before the
    /// first).
    pub(crate) fn resolve(
        &mut self,
        callback: &str,
        tf_auto: TfAuto,
        fit: &FitContext<'_>,
    ) -> Result<bool> {
        let greater = match (self.mode, fit.dialect()) {
            (MonitorMode::Min, _) => false,
            (MonitorMode::Max, _) => true,
            (MonitorMode::Auto, Dialect::TfKeras) => tf_auto(&self.key),
            (MonitorMode::Auto, Dialect::Keras3) => {
                let name = self.key.strip_prefix("val_").unwrap_or(&self.key);
                match (name == "loss", fit.metric_direction(name)) {
                    (_, Some(d)) => d == MonitorMode::Max,
                    (true, None) => false,
                    (false, None) => {
                        return Err(Error::Callback {
                            callback: callback.to_string(),
                            message: format!(
                                "{callback} callback received monitor={}, but Keras isn't \
                                 able to automatically determine whether that metric should \
                                 be maximized or minimized. Pass `mode='max'` in order to \
                                 monitor based on the highest metric value, or pass \
                                 `mode='min'` in order to use the lowest value.",
                                self.key
                            ),
                        })
                    }
                }
            }
        };
        self.greater = Some(greater);
        Ok(greater)
    }

    /// Whether higher is better (after [`resolve`](Monitor::resolve)).
    pub(crate) fn greater(&self) -> bool {
        self.greater.unwrap_or(false)
    }

    /// The best value tf_keras starts from: the initial value or ±inf.
    pub(crate) fn tf_start(&self) -> f64 {
        self.initial.unwrap_or(if self.greater() {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        })
    }

    /// Keras's `_is_improvement(current, reference)`: `current ∓ |min_delta|` beyond the
    /// reference, or any value against none.
    pub(crate) fn improves(&self, current: f64, reference: Option<f64>) -> bool {
        let Some(reference) = reference else {
            return true;
        };
        let delta = self.min_delta.abs();
        if self.greater() {
            current - delta > reference
        } else {
            current + delta < reference
        }
    }
}

/// The direction Keras 3 gives a metric (its `_direction`): up for the accuracies, AUC,
/// precision, recall and cosine similarity, down for the errors and the losses as metrics,
/// none for a plain `Mean`.
pub(crate) fn keras3_direction(kind: crate::MetricKind) -> Option<MonitorMode> {
    use crate::MetricKind as K;
    match kind {
        K::Accuracy
        | K::BinaryAccuracy { .. }
        | K::CategoricalAccuracy
        | K::SparseCategoricalAccuracy
        | K::TopKCategoricalAccuracy { .. }
        | K::SparseTopKCategoricalAccuracy { .. }
        | K::Auc { .. }
        | K::Precision { .. }
        | K::Recall { .. }
        | K::Loss(crate::Loss::CosineSimilarity { .. }) => Some(MonitorMode::Max),
        K::Mean => None,
        _ => Some(MonitorMode::Min),
    }
}
