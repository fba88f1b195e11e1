//! Keras's metrics, averaged over an epoch as Keras reports them in its logs.
//!
//! A [`Metric`] is stateful: [`update`](Metric::update) adds a batch, [`result`](Metric::result)
//! gives the value Keras logs for the batches so far, [`reset`](Metric::reset) starts an epoch.
//! `Metric::from_name` takes the strings of `compile(metrics=[...])` and names the metric as
//! Keras names it in its logs.
//!
//! ```
//! use ndarray::array;
//! use seqnn::{Dialect, Metric, Weighting};
//!
//! let mut acc = Metric::from_name("accuracy", Dialect::TfKeras)?;
//! let y_true = array![1.0f32, 0.0, 2.0];
//! let y_pred = array![[0.1f32, 0.8, 0.1], [0.6, 0.3, 0.1], [0.5, 0.2, 0.3]];
//! // (batch,) labels for (batch, 3) outputs: "accuracy" is sparse categorical accuracy.
//! acc.update(y_true.view().into_dyn(), y_pred.view().into_dyn(), &Weighting::none())?;
//! assert_eq!(acc.name(), "accuracy");
//! assert!((acc.result() - 2.0 / 3.0).abs() < 1e-6);
//! # Ok::<(), seqnn::Error>(())
//! ```
//!
//! # Averages, masks and weights
//!
//! The metrics that average a value per sample or timestep (the accuracies, the errors, the
//! losses as metrics) keep Keras's `total` and `count`:
//!
//! ```text
//! tf_keras (Reduce, weighted mean):   total += Σ_r w_r·v_r           count += Σ_r w_r
//! Keras 3 (reduce_to_samplewise):     total += Σ_b mean_t(w·v)       count += Σ_b mean_t(w)
//! result = total / count                          (0 before any update)
//! ```
//!
//! with `r` a row (one value per sample, or per timestep of a sequence output), `b` a sample and
//! `t` its timesteps; they agree while every batch has the same timesteps. The weights `w` are
//! what `fit` passes:
//! - a mask (`(batch, timesteps)`, from `Embedding(mask_zero=True)` or `Masking` through a
//!   `return_sequences` layer): tf_keras's `MetricsContainer` passes it as the sample weight of
//!   every metric; Keras 3 applies it in its mean metrics (`MeanMetricWrapper`) only, so that its
//!   AUC, Precision, Recall and RootMeanSquaredError count the masked steps too. seqnn follows
//!   the [`Dialect`];
//! - sample weights, for the metrics of `compile(weighted_metrics=...)`: the fit loop passes
//!   them in the [`Weighting`] of those metrics only (`metrics=` get the mask alone). Keras 3
//!   multiplies `(batch,)` weights into `(batch, timesteps)` values along the timesteps (an
//!   error, or the wrong axis when the sizes agree) when a mask is present, and in AUC,
//!   Precision and Recall always: seqnn refuses those, as for the losses (give `(batch, 1)` or
//!   `(batch, timesteps)`). tf_keras refuses `(batch,)` weights in AUC, Precision and Recall on
//!   a sequence output without a mask; seqnn spreads them over the timesteps.
//!
//! AUC, Precision and Recall count every element of `y_pred` as one prediction, weighted by
//! its row's weight.

mod confusion;

use ndarray::ArrayViewD;

use crate::error::{Error, Result};
use crate::train::loss::{
    binary_or_sparse, resolve, Dialect, Layout, Loss, PerSample, Rows, TargetKind, Weighting,
};

pub use confusion::{AucCurve, AucSummation};
use confusion::{Buckets, Counts};

/// What a [`Metric`] computes, with its options and Keras's defaults.
///
/// Each names its Keras class and the value it averages per row (`y_pred`'s last axis, of size
/// `C`, reduced), or for AUC, Precision and Recall what it counts.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum MetricKind {
    /// `"accuracy"` or `"acc"` (in any case), before the first batch tells which accuracy it
    /// is, as `compile_utils` resolves it in tf_keras 2.21 and Keras 3.15 (from the shapes
    /// alone, not from the loss): [`BinaryAccuracy`](MetricKind::BinaryAccuracy) for an output
    /// of one unit, [`SparseCategoricalAccuracy`](MetricKind::SparseCategoricalAccuracy) for
    /// targets of lower rank than the output or with a last dimension of 1,
    /// [`CategoricalAccuracy`](MetricKind::CategoricalAccuracy) otherwise.
    Accuracy,
    /// tf_keras's `"crossentropy"` or `"ce"` (in any case; Keras 3 refuses them as metrics),
    /// resolved as `"accuracy"` is, to the binary, sparse categorical or categorical
    /// crossentropy.
    Crossentropy,
    /// `BinaryAccuracy(threshold=0.5)`, `binary_accuracy`.
    ///
    /// ```text
    /// v = mean(y_true == (y_pred > threshold))        y_true 0 or 1
    /// ```
    BinaryAccuracy {
        /// Above it a prediction is 1; Keras's default 0.5.
        threshold: f32,
    },
    /// `CategoricalAccuracy`, `categorical_accuracy`.
    ///
    /// ```text
    /// v = argmax(y_true) == argmax(y_pred)           (the first of tied maxima)
    /// ```
    CategoricalAccuracy,
    /// `SparseCategoricalAccuracy`, `sparse_categorical_accuracy`.
    ///
    /// ```text
    /// v = y_true == argmax(y_pred)
    /// ```
    SparseCategoricalAccuracy,
    /// `TopKCategoricalAccuracy(k=5)`, `top_k_categorical_accuracy`.
    ///
    /// ```text
    /// y = argmax(y_true)
    /// v = #{j : y_pred_j > y_pred_y} < k             (tf.math.in_top_k: ties count in,
    ///                                                 a row with a non-finite value is 0)
    /// ```
    TopKCategoricalAccuracy {
        /// Keras's default 5.
        k: usize,
    },
    /// `SparseTopKCategoricalAccuracy(k=5)`, `sparse_top_k_categorical_accuracy`: as
    /// [`TopKCategoricalAccuracy`](MetricKind::TopKCategoricalAccuracy) with `y = y_true`.
    SparseTopKCategoricalAccuracy {
        /// Keras's default 5.
        k: usize,
    },
    /// `MeanAbsoluteError`, `"mae"`: `v = mean(|y_pred - y_true|)`.
    MeanAbsoluteError,
    /// `MeanSquaredError`, `"mse"`: `v = mean((y_pred - y_true)²)`.
    MeanSquaredError,
    /// `RootMeanSquaredError`: the square root of the mean of `(y_pred - y_true)²`, taken at
    /// the result.
    ///
    /// ```text
    /// result = sqrt(total / count)        with v = mean((y_pred - y_true)²)
    /// ```
    RootMeanSquaredError,
    /// `AUC(num_thresholds=200, curve="ROC", summation_method="interpolation",
    /// from_logits=False)`: the area under the ROC or PR curve, from true and false positives
    /// and negatives counted at `num_thresholds` thresholds evenly spread over `[0, 1]`.
    ///
    /// ```text
    /// thresholds: -eps, 1/(n-1), 2/(n-1), ..., (n-2)/(n-1), 1 + eps
    /// p = clip(from_logits ? sigmoid(y_pred) : y_pred, 0, 1) is positive above a threshold
    /// ROC:  Σ_i (fpr_i - fpr_i+1)·(tpr_i + tpr_i+1)/2     (minoring: min, majoring: max)
    /// PR:   interpolate_pr_auc (Davis & Goadrich)        (minoring, majoring: Riemann sums)
    /// ```
    Auc {
        /// Keras's default 200; at least 2.
        num_thresholds: usize,
        /// Keras's default ROC.
        curve: AucCurve,
        /// Keras's default interpolation.
        summation_method: AucSummation,
        /// The scores are logits; Keras's default false.
        from_logits: bool,
    },
    /// `Precision(thresholds=0.5)`: `tp / (tp + fp)`, a prediction positive above the
    /// threshold (one threshold; Keras's list of thresholds is one metric each).
    Precision {
        /// Keras's default 0.5.
        threshold: f32,
    },
    /// `Recall(thresholds=0.5)`: `tp / (tp + fn)`.
    Recall {
        /// Keras's default 0.5.
        threshold: f32,
    },
    /// `Mean`: the weighted mean of the values given to [`Metric::update_value`], as Keras's
    /// `loss` in the logs (each batch's loss weighted by its batch size).
    Mean,
    /// A loss as a metric (Keras's `MeanMetricWrapper` over the loss function:
    /// `"binary_crossentropy"`, `"mape"`, `"kl_divergence"`, ...): `v` is the loss of a row,
    /// from the probabilities given.
    Loss(Loss),
}

impl MetricKind {
    /// `AUC()` with Keras's defaults.
    pub fn auc() -> MetricKind {
        MetricKind::Auc {
            num_thresholds: 200,
            curve: AucCurve::Roc,
            summation_method: AucSummation::Interpolation,
            from_logits: false,
        }
    }

    /// The Keras class: `"BinaryAccuracy"`, `"AUC"`, `"LogCoshError"`, ...
    pub fn class_name(&self) -> &'static str {
        self.names().0
    }

    /// The name Keras gives a metric of this kind made from its class (`BinaryAccuracy()` is
    /// `"binary_accuracy"`, `AUC()` is `"auc"`, `KLDivergence()` is tf_keras's
    /// `"kullback_leibler_divergence"` and Keras 3's `"kl_divergence"`).
    pub fn default_name(&self, dialect: Dialect) -> &'static str {
        match self {
            MetricKind::Loss(Loss::KLDivergence) if dialect == Dialect::TfKeras => {
                "kullback_leibler_divergence"
            }
            _ => self.names().1,
        }
    }

    /// The class's name and its default name.
    fn names(&self) -> (&'static str, &'static str) {
        use MetricKind as K;
        match self {
            K::Accuracy => ("Accuracy", "accuracy"),
            K::Crossentropy => ("Crossentropy", "crossentropy"),
            K::BinaryAccuracy { .. } => ("BinaryAccuracy", "binary_accuracy"),
            K::CategoricalAccuracy => ("CategoricalAccuracy", "categorical_accuracy"),
            K::SparseCategoricalAccuracy => {
                ("SparseCategoricalAccuracy", "sparse_categorical_accuracy")
            }
            K::TopKCategoricalAccuracy { .. } => {
                ("TopKCategoricalAccuracy", "top_k_categorical_accuracy")
            }
            K::SparseTopKCategoricalAccuracy { .. } => (
                "SparseTopKCategoricalAccuracy",
                "sparse_top_k_categorical_accuracy",
            ),
            K::MeanAbsoluteError => ("MeanAbsoluteError", "mean_absolute_error"),
            K::MeanSquaredError => ("MeanSquaredError", "mean_squared_error"),
            K::RootMeanSquaredError => ("RootMeanSquaredError", "root_mean_squared_error"),
            K::Auc { .. } => ("AUC", "auc"),
            K::Precision { .. } => ("Precision", "precision"),
            K::Recall { .. } => ("Recall", "recall"),
            K::Mean => ("Mean", "mean"),
            K::Loss(Loss::LogCosh) => ("LogCoshError", "logcosh"),
            K::Loss(l) => (l.class_name(), l.keras_name()),
        }
    }
}

/// Who accepts a metric string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Both,
    TfKeras,
    Keras3,
}

impl By {
    fn accepts(self, dialect: Dialect) -> bool {
        match self {
            By::Both => true,
            By::TfKeras => dialect == Dialect::TfKeras,
            By::Keras3 => dialect == Dialect::Keras3,
        }
    }
}

/// The metric a `compile(metrics=[...])` string names, and which Keras accepts it, as
/// `tests/fixtures/train/metrics/names.json` records them (`"accuracy"`, `"acc"` and
/// tf_keras's `"crossentropy"`, `"ce"`, in any case, apart).
fn lookup(name: &str) -> Option<(MetricKind, By)> {
    use By::{Both, Keras3, TfKeras};
    use MetricKind as K;
    let loss = |l: Loss| K::Loss(l);
    Some(match name {
        "binary_accuracy" | "BinaryAccuracy" => (K::BinaryAccuracy { threshold: 0.5 }, Both),
        "categorical_accuracy" | "CategoricalAccuracy" => (K::CategoricalAccuracy, Both),
        "sparse_categorical_accuracy" | "SparseCategoricalAccuracy" => {
            (K::SparseCategoricalAccuracy, Both)
        }
        "top_k_categorical_accuracy" | "TopKCategoricalAccuracy" => {
            (K::TopKCategoricalAccuracy { k: 5 }, Both)
        }
        "sparse_top_k_categorical_accuracy" | "SparseTopKCategoricalAccuracy" => {
            (K::SparseTopKCategoricalAccuracy { k: 5 }, Both)
        }
        "mae" | "MAE" | "mean_absolute_error" | "MeanAbsoluteError" => (K::MeanAbsoluteError, Both),
        "mse" | "MSE" | "mean_squared_error" | "MeanSquaredError" => (K::MeanSquaredError, Both),
        "RootMeanSquaredError" => (K::RootMeanSquaredError, Both),
        "root_mean_squared_error" => (K::RootMeanSquaredError, Keras3),
        "AUC" => (K::auc(), Both),
        "auc" => (K::auc(), Keras3),
        "Precision" => (K::Precision { threshold: 0.5 }, Both),
        "precision" => (K::Precision { threshold: 0.5 }, Keras3),
        "Recall" => (K::Recall { threshold: 0.5 }, Both),
        "recall" => (K::Recall { threshold: 0.5 }, Keras3),
        "binary_crossentropy" | "BinaryCrossentropy" => (loss(Loss::binary_crossentropy()), Both),
        "bce" | "BCE" => (loss(Loss::binary_crossentropy()), Keras3),
        "categorical_crossentropy" | "CategoricalCrossentropy" => {
            (loss(Loss::categorical_crossentropy()), Both)
        }
        "sparse_categorical_crossentropy" | "SparseCategoricalCrossentropy" => {
            (loss(Loss::sparse_categorical_crossentropy()), Both)
        }
        "mape" | "MAPE" | "mean_absolute_percentage_error" | "MeanAbsolutePercentageError" => {
            (loss(Loss::MeanAbsolutePercentageError), Both)
        }
        "msle" | "MSLE" | "mean_squared_logarithmic_error" | "MeanSquaredLogarithmicError" => {
            (loss(Loss::MeanSquaredLogarithmicError), Both)
        }
        "KLDivergence" => (loss(Loss::KLDivergence), Both),
        "kullback_leibler_divergence" => (loss(Loss::KLDivergence), TfKeras),
        "kl_divergence" => (loss(Loss::KLDivergence), Keras3),
        "LogCoshError" => (loss(Loss::LogCosh), Both),
        "logcosh" | "log_cosh" => (loss(Loss::LogCosh), TfKeras),
        "log_cosh_error" => (loss(Loss::LogCosh), Keras3),
        "poisson" | "Poisson" => (loss(Loss::Poisson), Both),
        "hinge" | "Hinge" => (loss(Loss::Hinge), Both),
        "squared_hinge" | "SquaredHinge" => (loss(Loss::SquaredHinge), Both),
        "categorical_hinge" | "CategoricalHinge" => (loss(Loss::CategoricalHinge), Both),
        _ => return None,
    })
}

/// A Keras metric with its running state.
///
/// # Errors
///
/// [`update`](Metric::update) refuses, naming the metric and quoting the shapes, what the
/// losses refuse (see [`Loss`]): targets of the wrong shape (one-hot targets of another width
/// than the output, sparse labels of another shape), sparse labels that are not class
/// indices, masks and sample weights that do not fit; and targets other than 0 and 1 for
/// BinaryAccuracy, AUC, Precision and Recall (Keras compares them with 0 and 1, or casts them
/// to bool, without a word), and NaN scores in an AUC.
#[derive(Debug, Clone)]
pub struct Metric {
    name: String,
    kind: MetricKind,
    dialect: Dialect,
    state: State,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Mean { total: f64, count: f64 },
    Confusion(Counts),
}

impl Metric {
    /// A metric of `kind` under Keras's default name for it (see
    /// [`MetricKind::default_name`]), following `dialect`'s arithmetic.
    ///
    /// # Panics
    ///
    /// An AUC with fewer than 2 thresholds (Keras refuses it too).
    pub fn new(kind: MetricKind, dialect: Dialect) -> Metric {
        if let MetricKind::Auc { num_thresholds, .. } = kind {
            assert!(
                num_thresholds > 1,
                "Argument `num_thresholds` must be an integer > 1"
            );
        }
        Metric {
            name: kind.default_name(dialect).to_string(),
            kind,
            dialect,
            state: State::new(&kind),
        }
    }

    /// The loss tracker of `fit`'s logs: a [`Mean`](MetricKind::Mean) named `"loss"`, to be
    /// given each batch's loss weighted by its batch size.
    ///
    /// ```
    /// let mut loss = seqnn::Metric::loss_tracker();
    /// loss.update_value(0.75, 32.0)?;
    /// loss.update_value(0.5, 32.0)?;
    /// loss.update_value(1.25, 7.0)?; // the epoch's last, smaller batch
    /// // (0.75·32 + 0.5·32 + 1.25·7) / 71 = 0.686620
    /// assert!((loss.result() - 0.686_620).abs() < 1e-6);
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    pub fn loss_tracker() -> Metric {
        Metric::new(MetricKind::Mean, Dialect::TfKeras).with_name("loss")
    }

    /// This metric named `name` (Keras's `name=`).
    pub fn with_name(mut self, name: impl Into<String>) -> Metric {
        self.name = name.into();
        self
    }

    /// The metric `compile(metrics=[name])` makes in `dialect`'s Keras, named as that Keras
    /// logs it: under the string itself, except tf_keras's class names (`"AUC"` logs as
    /// `"auc"`, `"BinaryAccuracy"` as `"binary_accuracy"`). `"accuracy"` / `"acc"` (and
    /// tf_keras's `"crossentropy"` / `"ce"`) resolve at the first [`update`](Metric::update).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownName`] for a string that Keras does not accept (`"auc"` and
    /// `"precision"` are Keras 3's only, `"kullback_leibler_divergence"` tf_keras's), or that
    /// seqnn does not have (`"cosine_similarity"`).
    pub fn from_name(name: &str, dialect: Dialect) -> Result<Metric> {
        let lower = name.to_lowercase();
        let special = match lower.as_str() {
            "accuracy" | "acc" => Some(MetricKind::Accuracy),
            "crossentropy" | "ce" if dialect == Dialect::TfKeras => Some(MetricKind::Crossentropy),
            _ => None,
        };
        if let Some(kind) = special {
            return Ok(Metric::new(kind, dialect).with_name(name));
        }
        match lookup(name) {
            Some((kind, by)) if by.accepts(dialect) => {
                let metric = Metric::new(kind, dialect);
                // tf_keras logs a metric made from its class under the class's default name.
                let class = name == kind.class_name();
                Ok(if class && dialect == Dialect::TfKeras {
                    metric
                } else {
                    metric.with_name(name)
                })
            }
            Some(_) => Err(unknown(name, dialect, true)),
            None => Err(unknown(name, dialect, false)),
        }
    }

    /// The name Keras logs the metric under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the metric computes; `Accuracy` and `Crossentropy` until the first update
    /// resolves them.
    pub fn kind(&self) -> MetricKind {
        self.kind
    }

    /// The Keras whose arithmetic the metric follows.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Adds a batch: `y_true` and `y_pred` (the model's output) with the batch's mask and, for
    /// a weighted metric, its sample weights (see [the module docs](self)).
    ///
    /// # Errors
    ///
    /// As [`Metric`] says, and a [`Mean`](MetricKind::Mean), which takes values
    /// ([`update_value`](Metric::update_value)). The state is unchanged on error.
    pub fn update(
        &mut self,
        y_true: ArrayViewD<'_, f32>,
        y_pred: ArrayViewD<'_, f32>,
        weighting: &Weighting<'_>,
    ) -> Result<()> {
        let kind = self.resolved(y_true.shape(), y_pred.shape());
        let confusion = matches!(
            kind,
            MetricKind::Auc { .. } | MetricKind::Precision { .. } | MetricKind::Recall { .. }
        );
        // tf_keras's container passes the mask to every metric; Keras 3's mean metrics read it
        // from y_pred, its confusion metrics and RootMeanSquaredError do not.
        let sees_mask = self.dialect == Dialect::TfKeras
            || !(confusion || kind == MetricKind::RootMeanSquaredError);
        let w = if sees_mask {
            weighting.clone()
        } else {
            without_mask(weighting)
        };
        match kind {
            MetricKind::Mean => {
                return Err(self.invalid(
                    "a Mean takes values (update_value), not targets and predictions".to_string(),
                ))
            }
            _ if confusion => self.update_confusion(kind, y_true, y_pred, &w)?,
            _ => self.update_mean(kind, y_true, y_pred, &w)?,
        }
        self.kind = kind;
        Ok(())
    }

    /// Adds `value` with weight `weight` to a [`Mean`](MetricKind::Mean): for the loss tracker,
    /// a batch's loss and its batch size.
    ///
    /// # Errors
    ///
    /// Any other metric (which takes targets and predictions).
    pub fn update_value(&mut self, value: f32, weight: f32) -> Result<()> {
        match (&self.kind, &mut self.state) {
            (MetricKind::Mean, State::Mean { total, count }) => {
                *total += f64::from(value) * f64::from(weight);
                *count += f64::from(weight);
                Ok(())
            }
            _ => Err(self.invalid(
                "update_value is for a Mean; this metric takes targets and predictions (update)"
                    .to_string(),
            )),
        }
    }

    /// The value Keras logs for the batches since the last reset (0 before any).
    pub fn result(&self) -> f32 {
        let value = match (&self.kind, &self.state) {
            (MetricKind::RootMeanSquaredError, State::Mean { total, count }) => {
                confusion::divide_no_nan(*total, *count).sqrt()
            }
            (_, State::Mean { total, count }) => confusion::divide_no_nan(*total, *count),
            (
                MetricKind::Auc {
                    curve,
                    summation_method,
                    ..
                },
                State::Confusion(c),
            ) => confusion::auc(c, *curve, *summation_method),
            (MetricKind::Precision { .. }, State::Confusion(c)) => {
                confusion::divide_no_nan(c.tp[0], c.tp[0] + c.fp[0])
            }
            (_, State::Confusion(c)) => confusion::divide_no_nan(c.tp[0], c.tp[0] + c.fn_[0]),
        };
        value as f32
    }

    /// Starts over, as Keras's `reset_state` at each epoch: the resolved kind stays.
    pub fn reset(&mut self) {
        match &mut self.state {
            State::Mean { total, count } => (*total, *count) = (0.0, 0.0),
            State::Confusion(c) => c.reset(),
        }
    }

    /// The kind, with `Accuracy` and `Crossentropy` resolved from these shapes.
    fn resolved(&self, y_true: &[usize], y_pred: &[usize]) -> MetricKind {
        let (binary, sparse) = binary_or_sparse(y_true, y_pred);
        match self.kind {
            MetricKind::Accuracy if binary => MetricKind::BinaryAccuracy { threshold: 0.5 },
            MetricKind::Accuracy if sparse => MetricKind::SparseCategoricalAccuracy,
            MetricKind::Accuracy => MetricKind::CategoricalAccuracy,
            MetricKind::Crossentropy if binary => MetricKind::Loss(Loss::binary_crossentropy()),
            MetricKind::Crossentropy if sparse => {
                MetricKind::Loss(Loss::sparse_categorical_crossentropy())
            }
            MetricKind::Crossentropy => MetricKind::Loss(Loss::categorical_crossentropy()),
            kind => kind,
        }
    }

    fn invalid(&self, message: String) -> Error {
        Error::InvalidArgument {
            layer: self.name.clone(),
            message,
        }
    }

    /// A batch of a mean metric: one value per row, weighted.
    fn update_mean(
        &mut self,
        kind: MetricKind,
        y_true: ArrayViewD<'_, f32>,
        y_pred: ArrayViewD<'_, f32>,
        weighting: &Weighting<'_>,
    ) -> Result<()> {
        let shape = y_pred.shape().to_vec();
        let batch = shape.first().copied().unwrap_or(0);
        let who = self.name.clone();
        let mut values = Vec::new();
        let as_loss = match kind {
            MetricKind::Loss(loss) => Some(loss),
            MetricKind::MeanAbsoluteError => Some(Loss::MeanAbsoluteError),
            MetricKind::MeanSquaredError | MetricKind::RootMeanSquaredError => {
                Some(Loss::MeanSquaredError)
            }
            _ => None,
        };
        let loss_shape = match as_loss {
            Some(loss) => {
                loss.row_values(&who, y_true, y_pred, self.dialect, |v| values.push(v))?
            }
            None => {
                let rows = Rows::new(accuracy_layout(kind, &who), y_true, y_pred)?;
                values.extend((0..rows.len()).map(|r| Some(accuracy(kind, &rows, r))));
                rows.loss_shape
            }
        };
        // Keras 3 fails on (batch,) weights with a mask (apply_mask broadcasts them along the
        // timesteps); without one it averages each sample first, which takes them.
        let per_sample = match self.dialect {
            Dialect::Keras3 if weighting.mask().is_some() => PerSample::Refuse,
            _ => PerSample::Spread,
        };
        let weights = resolve(&who, &loss_shape, &shape, weighting, per_sample)?;
        let per = if self.dialect == Dialect::Keras3 && batch > 0 {
            1.0 / (values.len() / batch) as f64
        } else {
            1.0
        };
        let (mut total, mut count) = (0.0f64, 0.0f64);
        for (r, v) in values.iter().enumerate() {
            if let Some(v) = v {
                let w = f64::from(weights.weight(r)) * per;
                total += w * f64::from(*v);
                count += w;
            }
        }
        if let State::Mean { total: t, count: c } = &mut self.state {
            *t += total;
            *c += count;
        }
        Ok(())
    }

    /// A batch of AUC, Precision or Recall: every element a prediction.
    fn update_confusion(
        &mut self,
        kind: MetricKind,
        y_true: ArrayViewD<'_, f32>,
        y_pred: ArrayViewD<'_, f32>,
        weighting: &Weighting<'_>,
    ) -> Result<()> {
        let who = self.name.clone();
        let layout = Layout {
            who: &who,
            axis: None,
            targets: TargetKind::Binary,
        };
        let shape = y_pred.shape().to_vec();
        let rows = Rows::new(layout, y_true, y_pred)?;
        let per_sample = match self.dialect {
            Dialect::TfKeras => PerSample::Spread,
            Dialect::Keras3 => PerSample::Refuse,
        };
        let weights = resolve(&who, &rows.loss_shape, &shape, weighting, per_sample)?;
        let State::Confusion(counts) = &mut self.state else {
            unreachable!("a confusion metric has counts")
        };
        let elements = (0..rows.len()).flat_map(|r| {
            let w = f64::from(weights.weight(r));
            let t = rows.target_values(r);
            rows.pred(r)
                .iter()
                .zip(t)
                .map(move |(&p, &t)| (p, t == 1.0, w))
        });
        match kind {
            MetricKind::Auc {
                num_thresholds,
                from_logits,
                ..
            } => {
                let score = |p: f32| {
                    if from_logits {
                        crate::train::loss::sigmoid(p)
                    } else {
                        p
                    }
                };
                if let Some(i) = (0..rows.len()).find(|&r| rows.pred(r).iter().any(|p| p.is_nan()))
                {
                    return Err(Error::InvalidArgument {
                        layer: who,
                        message: format!("a NaN score in row {i} of y_pred"),
                    });
                }
                let mut buckets = Buckets::new(num_thresholds);
                for (p, positive, w) in elements {
                    buckets.add(score(p), positive, w);
                }
                buckets.into_counts(counts);
            }
            MetricKind::Precision { threshold } | MetricKind::Recall { threshold } => {
                for (p, positive, w) in elements {
                    counts.add_at(threshold, p, positive, w);
                }
            }
            _ => unreachable!("only AUC, Precision and Recall count"),
        }
        Ok(())
    }
}

impl State {
    fn new(kind: &MetricKind) -> State {
        match *kind {
            MetricKind::Auc { num_thresholds, .. } => State::Confusion(Counts::new(num_thresholds)),
            MetricKind::Precision { .. } | MetricKind::Recall { .. } => {
                State::Confusion(Counts::new(1))
            }
            _ => State::Mean {
                total: 0.0,
                count: 0.0,
            },
        }
    }
}

/// How an accuracy reads its targets.
fn accuracy_layout(kind: MetricKind, who: &str) -> Layout<'_> {
    let targets = match kind {
        MetricKind::BinaryAccuracy { .. } => TargetKind::Binary,
        MetricKind::CategoricalAccuracy | MetricKind::TopKCategoricalAccuracy { .. } => {
            TargetKind::Classes
        }
        _ => TargetKind::Sparse { ignore_class: None },
    };
    Layout {
        who,
        axis: None,
        targets,
    }
}

/// The accuracy of row `r`: the fraction of matches (binary), or 1 or 0.
fn accuracy(kind: MetricKind, rows: &Rows<'_>, r: usize) -> f32 {
    let p = rows.pred(r);
    let argmax = |x: &[f32]| {
        // The first of tied maxima, as tf.math.argmax on the CPU.
        x.iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                if v > bv {
                    (i, v)
                } else {
                    (bi, bv)
                }
            })
            .0
    };
    let in_top_k = |y: usize, k: usize| {
        let target = p[y];
        let finite = p.iter().all(|v| v.is_finite());
        finite && p.iter().filter(|&&v| v > target).count() < k
    };
    let hit = |b: bool| if b { 1.0 } else { 0.0 };
    match kind {
        MetricKind::BinaryAccuracy { threshold } => {
            let t = rows.target_values(r);
            let matches = t
                .iter()
                .zip(p)
                .filter(|&(&t, &p)| (p > threshold) == (t == 1.0));
            matches.count() as f32 / p.len() as f32
        }
        MetricKind::CategoricalAccuracy => hit(argmax(rows.target_values(r)) == argmax(p)),
        MetricKind::SparseCategoricalAccuracy => hit(rows.label(r) == argmax(p)),
        MetricKind::TopKCategoricalAccuracy { k } => {
            hit(in_top_k(argmax(rows.target_values(r)), k))
        }
        MetricKind::SparseTopKCategoricalAccuracy { k } => hit(in_top_k(rows.label(r), k)),
        _ => unreachable!("not an accuracy"),
    }
}

/// `weighting` without its mask (Keras 3's metrics that do not see it).
fn without_mask<'a>(weighting: &Weighting<'a>) -> Weighting<'a> {
    match weighting.sample_weight() {
        Some(w) => Weighting::none().with_sample_weight(w),
        None => Weighting::none(),
    }
}

/// Keras's error for a metric string, saying when the other Keras takes it.
fn unknown(name: &str, dialect: Dialect, other_keras: bool) -> Error {
    let hint = match (other_keras, dialect) {
        (false, _) => String::new(),
        (true, Dialect::TfKeras) => {
            " (a Keras 3 name: tf_keras 2.21 does not accept it)".to_string()
        }
        (true, Dialect::Keras3) => " (a tf_keras name: Keras 3.15 does not accept it)".to_string(),
    };
    Error::UnknownName {
        kind: "metric",
        name: name.to_string(),
        message: format!("Could not interpret metric identifier: {name}{hint}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array, Array3, Dimension};

    const TF: Dialect = Dialect::TfKeras;
    const K3: Dialect = Dialect::Keras3;

    fn update<D: Dimension, E: Dimension>(
        m: &mut Metric,
        y_true: &Array<f32, D>,
        y_pred: &Array<f32, E>,
        w: &Weighting<'_>,
    ) -> Result<()> {
        m.update(y_true.view().into_dyn(), y_pred.view().into_dyn(), w)
    }

    #[test]
    fn accuracy_resolves_from_the_shapes() {
        let none = Weighting::none();
        let mut m = Metric::from_name("acc", TF).unwrap();
        assert_eq!(m.kind(), MetricKind::Accuracy);
        // One unit: binary. 0.7 > 0.5 matches 1, 0.2 matches 0, 0.6 does not match 0: 2/3.
        update(
            &mut m,
            &array![[1.0f32], [0.0], [0.0]],
            &array![[0.7f32], [0.2], [0.6]],
            &none,
        )
        .unwrap();
        assert_eq!(m.kind(), MetricKind::BinaryAccuracy { threshold: 0.5 });
        assert!((m.result() - 2.0 / 3.0).abs() < 1e-6);
        let mut m = Metric::from_name("Accuracy", K3).unwrap();
        update(
            &mut m,
            &array![[0.0f32, 1.0]],
            &array![[0.4f32, 0.6]],
            &none,
        )
        .unwrap();
        assert_eq!(m.kind(), MetricKind::CategoricalAccuracy);
        assert_eq!((m.name(), m.result()), ("Accuracy", 1.0));
    }

    #[test]
    fn masked_steps_do_not_count() {
        // Two samples of two steps; the second step of the second sample masked. Labels
        // (1, 0 | 2, 2), argmax (1, 1 | 2, 0): matches 1, 0, 1 over 3 real steps = 2/3.
        let y_true = array![[1.0f32, 0.0], [2.0, 2.0]];
        let mut y_pred = Array3::<f32>::zeros((2, 2, 3));
        for (b, t, c) in [(0, 0, 1), (0, 1, 1), (1, 0, 2), (1, 1, 0)] {
            y_pred[[b, t, c]] = 1.0;
        }
        let mask = array![[true, true], [true, false]];
        let w = Weighting::none().with_mask(&mask);
        for dialect in [TF, K3] {
            let mut m = Metric::new(MetricKind::SparseCategoricalAccuracy, dialect);
            update(&mut m, &y_true, &y_pred, &w).unwrap();
            assert!((m.result() - 2.0 / 3.0).abs() < 1e-6, "{dialect:?}");
        }
    }

    #[test]
    fn keras3_averages_each_sample_first() {
        // Batch 1: one sample of 1 step, error 1; batch 2: one sample of 3 steps, errors 0.
        // tf_keras: (1 + 0 + 0 + 0) / 4 steps = 0.25; Keras 3: (1 + mean(0, 0, 0)) / 2
        // samples = 0.5.
        for (dialect, want) in [(TF, 0.25), (K3, 0.5)] {
            let mut m = Metric::from_name("mae", dialect).unwrap();
            let none = Weighting::none();
            let one = Array3::<f32>::ones((1, 1, 1));
            update(&mut m, &one, &Array3::<f32>::zeros((1, 1, 1)), &none).unwrap();
            let zeros = Array3::<f32>::zeros((1, 3, 1));
            update(&mut m, &zeros, &zeros, &none).unwrap();
            assert!(
                (m.result() - want).abs() < 1e-6,
                "{dialect:?}: {}",
                m.result()
            );
        }
    }

    #[test]
    fn keras3_counts_masked_steps_in_rmse() {
        // Errors 3 and 4, the second masked: tf_keras √(9/1) = 3, Keras 3 √((9 + 16)/2).
        let y_true = Array3::<f32>::zeros((1, 2, 1));
        let y_pred = Array3::from_shape_vec((1, 2, 1), vec![3.0f32, 4.0]).unwrap();
        let mask = array![[true, false]];
        let w = Weighting::none().with_mask(&mask);
        for (dialect, want) in [(TF, 3.0f32), (K3, 12.5f32.sqrt())] {
            let mut m = Metric::new(MetricKind::RootMeanSquaredError, dialect);
            update(&mut m, &y_true, &y_pred, &w).unwrap();
            assert!((m.result() - want).abs() < 1e-6, "{dialect:?}");
        }
    }

    #[test]
    fn top_k_counts_ties_in() {
        // Scores (0.3, 0.3, 0.3, 0.1). Label 2 with k = 1: no score is above 0.3, so it is in
        // the top 1. Label 3 with k = 3: three scores are above it, out of the top 3.
        let scores = array![[0.3f32, 0.3, 0.3, 0.1]];
        for (label, k, want) in [(2.0f32, 1, 1.0), (3.0, 3, 0.0)] {
            let mut m = Metric::new(MetricKind::SparseTopKCategoricalAccuracy { k }, TF);
            update(&mut m, &array![label], &scores, &Weighting::none()).unwrap();
            assert_eq!(m.result(), want, "label {label}, k {k}");
        }
    }

    #[test]
    fn precision_and_recall_by_hand() {
        // Targets (1, 0, 1, 1), scores (0.9, 0.8, 0.2, 0.6): tp 2, fp 1, fn 1.
        let (t, p) = (
            array![[1.0f32, 0.0, 1.0, 1.0]],
            array![[0.9f32, 0.8, 0.2, 0.6]],
        );
        let mut precision = Metric::from_name("Precision", TF).unwrap();
        let mut recall = Metric::from_name("recall", K3).unwrap();
        update(&mut precision, &t, &p, &Weighting::none()).unwrap();
        update(&mut recall, &t, &p, &Weighting::none()).unwrap();
        assert_eq!(precision.name(), "precision");
        assert!((precision.result() - 2.0 / 3.0).abs() < 1e-6);
        assert!((recall.result() - 2.0 / 3.0).abs() < 1e-6);
        precision.reset();
        assert_eq!(precision.result(), 0.0);
    }

    #[test]
    fn errors() {
        let none = Weighting::none();
        let mut m = Metric::new(MetricKind::BinaryAccuracy { threshold: 0.5 }, TF);
        let err = update(&mut m, &array![[0.5f32]], &array![[0.7f32]], &none).unwrap_err();
        assert!(
            err.to_string()
                .contains("targets must be 0 or 1, got 0.5 at [0, 0]"),
            "{err}"
        );
        let mut m = Metric::from_name("sparse_categorical_accuracy", TF).unwrap();
        let err = update(&mut m, &array![3.0f32], &array![[0.2f32, 0.8]], &none).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("layer \"sparse_categorical_accuracy\""),
            "{err}"
        );
        let mut auc = Metric::new(MetricKind::auc(), TF);
        let err = update(&mut auc, &array![[1.0f32]], &array![[f32::NAN]], &none).unwrap_err();
        assert!(err.to_string().contains("NaN score"), "{err}");
        let mut mean = Metric::loss_tracker();
        assert!(update(&mut mean, &array![[1.0f32]], &array![[1.0f32]], &none).is_err());
        assert!(Metric::new(MetricKind::MeanSquaredError, TF)
            .update_value(1.0, 1.0)
            .is_err());
        let err = Metric::from_name("auc", TF).unwrap_err();
        assert!(
            matches!(err, Error::UnknownName { kind: "metric", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("a Keras 3 name"), "{err}");
        assert!(Metric::from_name("crossentropy", K3).is_err());
        assert_eq!(
            Metric::from_name("KLDivergence", TF).unwrap().name(),
            "kullback_leibler_divergence"
        );
    }
}
