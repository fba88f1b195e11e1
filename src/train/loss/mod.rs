//! Keras's losses: the value `fit` minimizes and its gradient, in one pass.
//!
//! A [`Loss`] takes `y_true` and `y_pred` (the model's output, `(batch, ..., units)`), and a
//! [`Weighting`] (the mask a sequence output carries, and sample weights), and gives the
//! loss reduced as Keras's default `sum_over_batch_size` reduces it, with its gradient with
//! respect to `y_pred`:
//!
//! ```text
//! loss = Σ_r w_r · l_r / n        l_r: the loss of row r (y_pred's last axis reduced)
//!                                 w_r: sample_weight_r · mask_r (0 where masked)
//!                                 n:   the number of rows, or of unmasked rows under a mask
//! ```
//!
//! ```
//! use ndarray::array;
//! use seqnn::{Dialect, Loss, Weighting};
//!
//! let y_true = array![[0.0f32, 1.0], [1.0, 0.0]];
//! let y_pred = array![[0.1f32, 0.9], [0.8, 0.2]];
//! let loss = Loss::from_name("mse")?;
//! let (value, grad) = loss.value_and_grad(
//!     y_true.view().into_dyn(),
//!     y_pred.view().into_dyn(),
//!     &Weighting::none(),
//!     Dialect::TfKeras,
//! )?;
//! // ((0.01 + 0.01)/2 + (0.04 + 0.04)/2) / 2 = 0.025
//! assert!((value - 0.025).abs() < 1e-7);
//! assert_eq!(grad.shape(), &[2, 2]);
//! # Ok::<(), seqnn::Error>(())
//! ```
//!
//! # Masks
//!
//! A mask `(batch, timesteps)` comes with a `(batch, timesteps, features)` output. tf_keras 2.21
//! (`LossesContainer` multiplies it into the sample weights, then `Loss.__call__` applies it
//! again through `apply_valid_mask`, scaled by `total / valid`) and Keras 3.15
//! (`reduce_weighted_values` → `apply_mask`, the same scaling) both divide the weighted sum by
//! the number of unmasked steps, not by the sample weights' sum:
//!
//! ```text
//! loss = Σ_(b,t) sample_weight_(b,t) · mask_(b,t) · l_(b,t) / Σ_(b,t) mask_(b,t)
//! ```
//!
//! They differ in two places, which [`Dialect`] selects:
//! - a batch whose every step is masked (or whose every label is `ignore_class`): tf_keras
//!   divides by 0 and gives NaN, Keras 3 gives 0. seqnn refuses the batch under
//!   [`Dialect::TfKeras`] (a NaN loss turns every weight into NaN) and gives 0, with a zero
//!   gradient, under [`Dialect::Keras3`];
//! - per-sample weights `(batch,)` on a sequence output: tf_keras expands them to
//!   `(batch, 1)`, so each sample's weight weighs each of its steps; Keras 3 multiplies them
//!   into the `(batch, timesteps)` losses along the timesteps axis, which fails when the batch
//!   and the timesteps differ and weighs the wrong axis when they are equal. seqnn refuses them
//!   under [`Dialect::Keras3`] (give `(batch, 1)` or `(batch, timesteps)`).
//!
//! # Logits
//!
//! Keras computes a crossentropy from the logits of a final sigmoid or softmax when it can:
//! tf_keras's `backend.binary_crossentropy` / `categorical_crossentropy` /
//! `sparse_categorical_crossentropy` and Keras 3's `backend/tensorflow/nn.py` call
//! `_get_logits`, which takes `output._keras_logits` (set by the `sigmoid` and `softmax`
//! activations, so by any `Dense` or `Activation` with them) or, in a graph, the input of an
//! output whose op is `Sigmoid` / `Softmax`, and then runs the formula on logits. In `fit`
//! this applies when the model's last layer is a `Dense` (on 2-D or 3-D inputs) or an
//! `Activation` with `activation="sigmoid"` or `"softmax"`, and the loss is binary,
//! categorical or sparse categorical crossentropy, except:
//! - the output is reshaped or sliced after the activation (`TimeDistributed(Dense(...))`
//!   reshapes it): Keras uses the probabilities;
//! - `y_true` has one axis less than a `(..., 1)` output, such as `(batch, timesteps)` targets
//!   for `(batch, timesteps, 1)`: both Keras squeeze `y_pred` first, which loses the logits
//!   (`(batch,)` targets for a `(batch, 1)` output are expanded instead, and keep them);
//! - Keras 3 with `ignore_class`: it masks `y_pred` with `ops.where` before the loss, which
//!   loses the logits (tf_keras keeps them).
//!
//! Keras does not check that the activation fits the loss: binary crossentropy on a softmax
//! output runs `sigmoid_cross_entropy_with_logits` on the softmax's logits, and categorical
//! crossentropy on a sigmoid output runs the softmax formula on the sigmoid's logits. With
//! `from_logits=True` on such an output Keras warns and uses the logits all the same.
//! [`Loss::value_and_grad_from_logits`] does all of this (see [`Loss::uses_logits`]), giving the
//! gradient with respect to the logits; the fit loop calls it for such a last layer, and
//! [`Loss::value_and_grad`] for any other output. The numbers differ only near saturation,
//! where the clipping at epsilon of the probability formulas shows.

mod kernels;
mod rows;
mod weighting;

use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, ArrayD, ArrayViewD, ArrayViewMut2, ArrayViewMutD, IxDyn};

use crate::activation::ActivationFn;
use crate::error::{Error, Result};
use crate::shape::Shape;

pub(crate) use crate::activation::sigmoid;
use kernels::Kernel;
pub(crate) use rows::{Layout, Rows, TargetKind};
pub use weighting::Weighting;
pub(crate) use weighting::{resolve, PerSample};

/// Which Keras's arithmetic to follow where tf_keras 2.21 and Keras 3.15 give different
/// numbers for the same loss or metric. The fit loop picks the one of the model's origin.
///
/// The differences (each documented where it applies):
/// - binary crossentropy of probabilities: tf_keras takes `log(p + eps)` and
///   `log(1 - p + eps)` (which `fit`'s graph computes as `log((1 + eps) - p)`), Keras 3
///   `log(p)` and `log(1 - p)`, both after clipping `p` to `[eps, 1 - eps]`;
/// - CosineSimilarity: tf_keras's `l2_normalize` floors the squared norm at 1e-12, Keras 3
///   the norm at epsilon (1e-7);
/// - masks: see [the module docs](self#masks), and [`Metric`](crate::Metric) for metrics;
/// - sparse categorical crossentropy with `ignore_class` on a softmax output: tf_keras uses the
///   logits, Keras 3 the probabilities (see [the module docs](self#logits)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Dialect {
    /// tf_keras 2.21 (Keras 2, `tf.keras`), as in the notebook.
    #[default]
    TfKeras,
    /// Keras 3.15 with the TensorFlow backend.
    Keras3,
}

/// A Keras loss, with its options.
///
/// Each variant names its Keras class and function and gives the loss of one row (`y_pred`'s
/// last axis reduced, `C` its size, `eps` = 1e-7, Keras's backend epsilon); the batch's loss
/// is their weighted mean, as [the module docs](self) say.
///
/// ```
/// use seqnn::Loss;
/// assert_eq!(Loss::from_name("mse")?, Loss::MeanSquaredError);
/// assert_eq!(
///     Loss::from_name("sparse_categorical_crossentropy")?,
///     Loss::SparseCategoricalCrossentropy { from_logits: false, ignore_class: None },
/// );
/// let typed = Loss::SparseCategoricalCrossentropy { from_logits: true, ignore_class: Some(0) };
/// assert_eq!(typed.keras_name(), "sparse_categorical_crossentropy");
/// assert_eq!(Loss::huber(), Loss::Huber { delta: 1.0 });
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
///
/// Every computation refuses, with an [`Error::InvalidArgument`] naming the loss and quoting the
/// shapes, what would give silently wrong numbers (Keras checks little of it):
/// - `y_true` and `y_pred` of different shapes. Keras's squeezes are accepted: `y_true` may
///   lack `y_pred`'s trailing 1 (`(batch, timesteps)` for `(batch, timesteps, 1)`) or add one;
///   one-hot targets whose width is not the output's units are named as such;
/// - sparse labels not of `y_pred`'s shape without its last axis (or with a trailing 1),
///   labels that are negative, fractional, not finite or not below the number of classes
///   (except `ignore_class`), and a sparse loss on an output of one unit;
/// - binary and categorical crossentropy targets outside `[0, 1]` (not probabilities);
/// - hinge and squared hinge targets that are neither all 0/1 nor all -1/1 (Keras converts
///   0/1 targets only when every target of the batch is 0 or 1, so a batch mixing 0 and -1
///   would weigh its zeros as no label at all);
/// - a mask or sample weights that do not fit (see [`Weighting`]), and the [`Dialect`]'s
///   refusals (see [the module docs](self#masks)).
///
/// An empty output is an [`Error::EmptyInput`]. NaN and infinite predictions are not checked:
/// they give a NaN loss, as in Keras.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Loss {
    /// `MeanSquaredError`, `mean_squared_error`, `"mse"`.
    ///
    /// ```text
    /// l = mean((y_pred - y_true)²)
    /// ```
    MeanSquaredError,
    /// `MeanAbsoluteError`, `mean_absolute_error`, `"mae"`.
    ///
    /// ```text
    /// l = mean(|y_pred - y_true|)
    /// ```
    MeanAbsoluteError,
    /// `MeanAbsolutePercentageError`, `mean_absolute_percentage_error`, `"mape"`.
    ///
    /// ```text
    /// l = 100 · mean(|(y_true - y_pred) / max(|y_true|, eps)|)
    /// ```
    MeanAbsolutePercentageError,
    /// `MeanSquaredLogarithmicError`, `mean_squared_logarithmic_error`, `"msle"`.
    ///
    /// ```text
    /// l = mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))²)
    /// ```
    MeanSquaredLogarithmicError,
    /// `Huber(delta=1.0)`, `huber`.
    ///
    /// ```text
    /// e = y_pred - y_true
    /// l = mean(|e| ≤ delta ? e²/2 : delta·|e| - delta²/2)
    /// ```
    Huber {
        /// Where the loss turns from quadratic to linear; Keras's default 1.0.
        delta: f32,
    },
    /// `LogCosh`, `log_cosh`.
    ///
    /// ```text
    /// x = y_pred - y_true
    /// l = mean(x + softplus(-2x) - log 2)          (log(cosh(x)))
    /// ```
    LogCosh,
    /// `BinaryCrossentropy(from_logits=False, label_smoothing=0.0)`, `binary_crossentropy`,
    /// `"bce"`.
    ///
    /// ```text
    /// t = y_true·(1 - label_smoothing) + label_smoothing/2
    /// probabilities: q = clip(y_pred, eps, 1 - eps)
    ///   tf_keras:  l = -mean(t·log(q + eps) + (1 - t)·log((1 + eps) - q))
    ///   Keras 3:   l = -mean(t·log(q) + (1 - t)·log(1 - q))
    /// logits x:    l = mean(max(x, 0) - x·t + log(1 + e^-|x|))
    /// ```
    BinaryCrossentropy {
        /// `y_pred` holds logits; Keras's default false.
        from_logits: bool,
        /// Keras's default 0.0.
        label_smoothing: f32,
    },
    /// `CategoricalCrossentropy(from_logits=False, label_smoothing=0.0)`,
    /// `categorical_crossentropy`, with one-hot (or probability) targets.
    ///
    /// ```text
    /// t = y_true·(1 - label_smoothing) + label_smoothing/C
    /// probabilities: q = clip(y_pred / Σ y_pred, eps, 1 - eps);   l = -Σ t·log(q)
    /// logits x:      l = Σ t·(logsumexp(x) - x);   ∂l/∂x = softmax(x) - t (TensorFlow's)
    /// ```
    CategoricalCrossentropy {
        /// `y_pred` holds logits; Keras's default false.
        from_logits: bool,
        /// Keras's default 0.0.
        label_smoothing: f32,
    },
    /// `SparseCategoricalCrossentropy(from_logits=False, ignore_class=None)`,
    /// `sparse_categorical_crossentropy`, with integer class labels (as `f32`).
    ///
    /// ```text
    /// probabilities: q = clip(y_pred, eps, 1 - eps);   l = log(Σ q) - log(q_y)
    /// logits x:      l = logsumexp(x) - x_y
    /// ignore_class:  rows labelled with it weigh 0 and are not counted in n
    /// ```
    SparseCategoricalCrossentropy {
        /// `y_pred` holds logits; Keras's default false.
        from_logits: bool,
        /// A label whose rows are left out (as a mask would); Keras's default none.
        ignore_class: Option<i64>,
    },
    /// `KLDivergence`, `kl_divergence`, `"kld"`.
    ///
    /// ```text
    /// t = clip(y_true, eps, 1);  p = clip(y_pred, eps, 1)
    /// l = Σ t·log(t / p)
    /// ```
    KLDivergence,
    /// `Poisson`, `poisson`.
    ///
    /// ```text
    /// l = mean(y_pred - y_true·log(y_pred + eps))
    /// ```
    Poisson,
    /// `Hinge`, `hinge`, with targets -1/1 (or 0/1, read as -1/1).
    ///
    /// ```text
    /// t = every target 0 or 1 ? 2·y_true - 1 : y_true
    /// l = mean(max(1 - t·y_pred, 0))
    /// ```
    Hinge,
    /// `SquaredHinge`, `squared_hinge`.
    ///
    /// ```text
    /// t = every target 0 or 1 ? 2·y_true - 1 : y_true
    /// l = mean(max(1 - t·y_pred, 0)²)
    /// ```
    SquaredHinge,
    /// `CategoricalHinge`, `categorical_hinge`.
    ///
    /// ```text
    /// l = max(max((1 - y_true)·y_pred) - Σ y_true·y_pred + 1, 0)
    /// ```
    CategoricalHinge,
    /// `CosineSimilarity(axis=-1)`, `cosine_similarity`: the negative cosine, reduced over
    /// `axis` instead of the last axis.
    ///
    /// ```text
    /// n(x) = x / ‖x‖, with ‖x‖² floored at 1e-12 (tf_keras) or ‖x‖ at eps (Keras 3)
    /// l = -Σ n(y_true)·n(y_pred)
    /// ```
    CosineSimilarity {
        /// The axis of the vectors (not the batch axis); Keras's default -1.
        axis: isize,
    },
}

/// Every loss, with the aliases tf_keras 2.21 (`losses.get`) and Keras 3.15 (`losses.get`,
/// `compile_utils.get_loss`) accept beside its function and class names (which both accept),
/// and those only tf_keras accepts, as `tests/fixtures/train/losses/names.json` records them.
/// Keras 3's `"crossentropy"` / `"ce"` depend on the shapes: see [`Loss::resolve`].
const ALIASES: &[(Loss, &[&str], &[&str])] = {
    use Loss::*;
    &[
        (MeanSquaredError, &["mse", "MSE"], &[]),
        (MeanAbsoluteError, &["mae", "MAE"], &[]),
        (MeanAbsolutePercentageError, &["mape", "MAPE"], &[]),
        (MeanSquaredLogarithmicError, &["msle", "MSLE"], &[]),
        (Huber { delta: 1.0 }, &[], &["huber_loss"]),
        (LogCosh, &[], &["logcosh"]),
        (
            BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            &["bce", "BCE"],
            &[],
        ),
        (
            CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            &[],
            &[],
        ),
        (
            SparseCategoricalCrossentropy {
                from_logits: false,
                ignore_class: None,
            },
            &[],
            &[],
        ),
        (
            KLDivergence,
            &["kld", "KLD"],
            &["kullback_leibler_divergence"],
        ),
        (Poisson, &[], &[]),
        (Hinge, &[], &[]),
        (SquaredHinge, &[], &[]),
        (CategoricalHinge, &[], &[]),
        (CosineSimilarity { axis: -1 }, &[], &[]),
    ]
};

/// The loss `name` names, and whether only tf_keras accepts it.
fn lookup(name: &str) -> Option<(Loss, bool)> {
    ALIASES.iter().find_map(|&(loss, both, tf_only)| {
        if name == loss.keras_name() || name == loss.class_name() || both.contains(&name) {
            Some((loss, false))
        } else {
            tf_only.contains(&name).then_some((loss, true))
        }
    })
}

impl Loss {
    /// `BinaryCrossentropy()` with Keras's defaults.
    pub fn binary_crossentropy() -> Loss {
        Loss::BinaryCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        }
    }

    /// `CategoricalCrossentropy()` with Keras's defaults.
    pub fn categorical_crossentropy() -> Loss {
        Loss::CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        }
    }

    /// `SparseCategoricalCrossentropy()` with Keras's defaults.
    pub fn sparse_categorical_crossentropy() -> Loss {
        Loss::SparseCategoricalCrossentropy {
            from_logits: false,
            ignore_class: None,
        }
    }

    /// `Huber()` with Keras's default `delta=1.0`.
    pub fn huber() -> Loss {
        Loss::Huber { delta: 1.0 }
    }

    /// `CosineSimilarity()` with Keras's default `axis=-1`.
    pub fn cosine_similarity() -> Loss {
        Loss::CosineSimilarity { axis: -1 }
    }

    /// The loss a Keras string names, in either Keras: every name, class name and alias that
    /// tf_keras 2.21 or Keras 3.15 accepts (`"mse"`, `"MSE"`, `"mean_squared_error"`,
    /// `"MeanSquaredError"`, `"bce"`, `"kld"`, `"huber_loss"`, `"logcosh"`, ...), with Keras's
    /// defaults. Keras 3's shape-dependent `"crossentropy"` / `"ce"` need
    /// [`resolve`](Loss::resolve).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownName`] for a name neither Keras knows, listing the names.
    pub fn from_name(name: &str) -> Result<Loss> {
        lookup(name)
            .map(|(loss, _)| loss)
            .ok_or_else(|| unknown(name))
    }

    /// The loss a Keras string names in one Keras: [`from_name`](Loss::from_name) without the
    /// names the other does not accept (`"huber_loss"`, `"logcosh"` and
    /// `"kullback_leibler_divergence"` are tf_keras's only).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownName`] for a name that Keras does not know.
    pub fn from_name_in(name: &str, dialect: Dialect) -> Result<Loss> {
        match lookup(name) {
            Some((loss, tf_only)) if !tf_only || dialect == Dialect::TfKeras => Ok(loss),
            _ => Err(unknown(name)),
        }
    }

    /// The loss `compile(loss=name)` gives for targets and outputs of these shapes: as
    /// [`from_name_in`](Loss::from_name_in), and, in Keras 3, `"crossentropy"` and `"ce"` (in
    /// any case) resolved as `compile_utils.get_loss` resolves them, to binary crossentropy
    /// for an output of one unit, sparse categorical crossentropy for targets of lower rank
    /// or a last dimension of 1, categorical crossentropy otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownName`] for a name that Keras does not know.
    pub fn resolve(
        name: &str,
        dialect: Dialect,
        y_true_shape: &[usize],
        y_pred_shape: &[usize],
    ) -> Result<Loss> {
        let lower = name.to_lowercase();
        if dialect == Dialect::Keras3 && (lower == "crossentropy" || lower == "ce") {
            let (binary, sparse) = binary_or_sparse(y_true_shape, y_pred_shape);
            return Ok(if binary {
                Loss::binary_crossentropy()
            } else if sparse {
                Loss::sparse_categorical_crossentropy()
            } else {
                Loss::categorical_crossentropy()
            });
        }
        Loss::from_name_in(name, dialect)
    }

    /// The Keras function's name, which tf_keras also gives the loss: `"mean_squared_error"`,
    /// `"huber"`, `"log_cosh"`, `"binary_crossentropy"`, `"kl_divergence"`, ...
    pub fn keras_name(&self) -> &'static str {
        self.names().0
    }

    /// The Keras class's name: `"MeanSquaredError"`, `"Huber"`, `"BinaryCrossentropy"`, ...
    pub fn class_name(&self) -> &'static str {
        self.names().1
    }

    /// The Keras function's and class's names.
    fn names(&self) -> (&'static str, &'static str) {
        match self {
            Loss::MeanSquaredError => ("mean_squared_error", "MeanSquaredError"),
            Loss::MeanAbsoluteError => ("mean_absolute_error", "MeanAbsoluteError"),
            Loss::MeanAbsolutePercentageError => (
                "mean_absolute_percentage_error",
                "MeanAbsolutePercentageError",
            ),
            Loss::MeanSquaredLogarithmicError => (
                "mean_squared_logarithmic_error",
                "MeanSquaredLogarithmicError",
            ),
            Loss::Huber { .. } => ("huber", "Huber"),
            Loss::LogCosh => ("log_cosh", "LogCosh"),
            Loss::BinaryCrossentropy { .. } => ("binary_crossentropy", "BinaryCrossentropy"),
            Loss::CategoricalCrossentropy { .. } => {
                ("categorical_crossentropy", "CategoricalCrossentropy")
            }
            Loss::SparseCategoricalCrossentropy { .. } => (
                "sparse_categorical_crossentropy",
                "SparseCategoricalCrossentropy",
            ),
            Loss::KLDivergence => ("kl_divergence", "KLDivergence"),
            Loss::Poisson => ("poisson", "Poisson"),
            Loss::Hinge => ("hinge", "Hinge"),
            Loss::SquaredHinge => ("squared_hinge", "SquaredHinge"),
            Loss::CategoricalHinge => ("categorical_hinge", "CategoricalHinge"),
            Loss::CosineSimilarity { .. } => ("cosine_similarity", "CosineSimilarity"),
        }
    }

    /// The loss of `y_pred` (see [the module docs](self)), without the gradient.
    ///
    /// # Errors
    ///
    /// As [`Loss`] says.
    pub fn value(
        &self,
        y_true: ArrayViewD<'_, f32>,
        y_pred: ArrayViewD<'_, f32>,
        weighting: &Weighting<'_>,
        dialect: Dialect,
    ) -> Result<f32> {
        let rows = Rows::new(self.layout(), y_true, y_pred)?;
        let path = Path::Direct(self.kernel(&rows, dialect));
        self.run(&rows, weighting, path, dialect, None)
    }

    /// The loss of `y_pred` and its gradient with respect to `y_pred` (of `y_pred`'s shape).
    ///
    /// # Errors
    ///
    /// As [`Loss`] says.
    pub fn value_and_grad(
        &self,
        y_true: ArrayViewD<'_, f32>,
        y_pred: ArrayViewD<'_, f32>,
        weighting: &Weighting<'_>,
        dialect: Dialect,
    ) -> Result<(f32, ArrayD<f32>)> {
        let mut grad = ArrayD::zeros(y_pred.raw_dim());
        let value =
            self.value_and_grad_into(y_true, y_pred, weighting, dialect, grad.view_mut())?;
        Ok((value, grad))
    }

    /// [`value_and_grad`](Loss::value_and_grad) writing the gradient into `grad` (of
    /// `y_pred`'s shape), which the fit loop allocates once: nothing else is allocated for an
    /// output in standard layout. `grad` is written only when the call succeeds.
    ///
    /// # Errors
    ///
    /// As [`Loss`] says, and `grad` of another shape than `y_pred`.
    pub fn value_and_grad_into(
        &self,
        y_true: ArrayViewD<'_, f32>,
        y_pred: ArrayViewD<'_, f32>,
        weighting: &Weighting<'_>,
        dialect: Dialect,
        grad: ArrayViewMutD<'_, f32>,
    ) -> Result<f32> {
        let shape = y_pred.shape().to_vec();
        let rows = Rows::new(self.layout(), y_true, y_pred)?;
        let path = Path::Direct(self.kernel(&rows, dialect));
        self.with_grad(&rows, weighting, path, dialect, &shape, grad)
    }

    /// Whether Keras computes this loss from the logits of a final `activation` rather than
    /// from its output, for targets and outputs of these shapes (see
    /// [the module docs](self#logits)): binary and categorical crossentropy on a sigmoid or
    /// softmax output, unless `y_true` lacks the output's trailing 1; sparse categorical
    /// crossentropy on one, unless it has an `ignore_class` under Keras 3.
    pub fn uses_logits(
        &self,
        activation: ActivationFn,
        y_true_shape: &[usize],
        y_pred_shape: &[usize],
        dialect: Dialect,
    ) -> bool {
        if !matches!(activation, ActivationFn::Sigmoid | ActivationFn::Softmax) {
            return false;
        }
        // LossFunctionWrapper squeezes y_pred's trailing 1 when y_true is one axis shorter
        // (and not of rank 1, which the container expands instead): the op is then a Squeeze.
        let squeezed = y_true_shape.len() >= 2
            && y_true_shape.len() + 1 == y_pred_shape.len()
            && y_pred_shape.last() == Some(&1);
        match self {
            Loss::BinaryCrossentropy { .. } | Loss::CategoricalCrossentropy { .. } => !squeezed,
            Loss::SparseCategoricalCrossentropy { ignore_class, .. } => {
                !(dialect == Dialect::Keras3 && ignore_class.is_some())
            }
            _ => false,
        }
    }

    /// The loss of the output `activation(logits)` as `fit` computes it, and its gradient with
    /// respect to the logits, for a model whose last layer is a `Dense` or `Activation` with
    /// `activation` sigmoid or softmax (see [the module docs](self#logits)): from the logits
    /// where Keras uses them ([`uses_logits`](Loss::uses_logits)), else from the output, with
    /// the gradient through the activation.
    ///
    /// # Errors
    ///
    /// As [`Loss`] says, and an activation other than sigmoid and softmax (whose outputs
    /// carry no logits in Keras: compute the output and call
    /// [`value_and_grad`](Loss::value_and_grad)).
    pub fn value_and_grad_from_logits(
        &self,
        y_true: ArrayViewD<'_, f32>,
        logits: ArrayViewD<'_, f32>,
        activation: ActivationFn,
        weighting: &Weighting<'_>,
        dialect: Dialect,
    ) -> Result<(f32, ArrayD<f32>)> {
        let mut grad = ArrayD::zeros(logits.raw_dim());
        let value = self.value_and_grad_from_logits_into(
            y_true,
            logits,
            activation,
            weighting,
            dialect,
            grad.view_mut(),
        )?;
        Ok((value, grad))
    }

    /// [`value_and_grad_from_logits`](Loss::value_and_grad_from_logits) writing the gradient
    /// into `grad` (of the logits' shape).
    ///
    /// # Errors
    ///
    /// As [`value_and_grad_from_logits`](Loss::value_and_grad_from_logits), and `grad` of
    /// another shape than the logits.
    pub fn value_and_grad_from_logits_into(
        &self,
        y_true: ArrayViewD<'_, f32>,
        logits: ArrayViewD<'_, f32>,
        activation: ActivationFn,
        weighting: &Weighting<'_>,
        dialect: Dialect,
        grad: ArrayViewMutD<'_, f32>,
    ) -> Result<f32> {
        if !matches!(activation, ActivationFn::Sigmoid | ActivationFn::Softmax) {
            return Err(Error::InvalidArgument {
                layer: self.keras_name().to_string(),
                message: format!(
                    "logits are those of a sigmoid or softmax output, not of {activation}: \
                     compute the output and take the loss of it"
                ),
            });
        }
        let shape = logits.shape().to_vec();
        let logits_used = self.uses_logits(activation, y_true.shape(), &shape, dialect);
        let rows = Rows::new(self.layout(), y_true, logits)?;
        let path = match self.logits_kernel().filter(|_| logits_used) {
            Some(kernel) => Path::Direct(kernel),
            None => Path::Through(activation, self.kernel(&rows, dialect)),
        };
        self.with_grad(&rows, weighting, path, dialect, &shape, grad)
    }

    /// The loss of each row (`y_pred` with its last axis reduced), in row-major order, `None`
    /// for a row whose label is `ignore_class`: what a metric named `who` averages. Returns the
    /// rows' shape.
    pub(crate) fn row_values(
        &self,
        who: &str,
        y_true: ArrayViewD<'_, f32>,
        y_pred: ArrayViewD<'_, f32>,
        dialect: Dialect,
        mut each: impl FnMut(Option<f32>),
    ) -> Result<Vec<usize>> {
        let layout = Layout {
            who,
            ..self.layout()
        };
        let rows = Rows::new(layout, y_true, y_pred)?;
        let kernel = self.kernel(&rows, dialect);
        for r in 0..rows.len() {
            each((!rows.ignored(r)).then(|| kernel.row(rows.target(r), rows.pred(r), None, 1.0)));
        }
        Ok(rows.loss_shape)
    }

    /// How this loss reads its targets.
    pub(crate) fn layout(&self) -> Layout<'static> {
        let targets = match *self {
            Loss::BinaryCrossentropy { .. } => TargetKind::Probabilities,
            Loss::CategoricalCrossentropy { .. } => TargetKind::OneHot,
            Loss::SparseCategoricalCrossentropy { ignore_class, .. } => {
                TargetKind::Sparse { ignore_class }
            }
            Loss::Hinge | Loss::SquaredHinge => TargetKind::Signs,
            _ => TargetKind::Values,
        };
        let axis = match *self {
            Loss::CosineSimilarity { axis } => Some(axis),
            _ => None,
        };
        Layout {
            who: self.keras_name(),
            axis,
            targets,
        }
    }

    /// The kernel of this loss on the rows given (probabilities, or logits for `from_logits`).
    fn kernel(&self, rows: &Rows<'_>, dialect: Dialect) -> Kernel {
        let tf = dialect == Dialect::TfKeras;
        let convert = rows.binary_targets;
        match *self {
            Loss::BinaryCrossentropy {
                from_logits: true, ..
            }
            | Loss::CategoricalCrossentropy {
                from_logits: true, ..
            }
            | Loss::SparseCategoricalCrossentropy {
                from_logits: true, ..
            } => self.logits_kernel().expect("a crossentropy"),
            Loss::MeanSquaredError => Kernel::Mse,
            Loss::MeanAbsoluteError => Kernel::Mae,
            Loss::MeanAbsolutePercentageError => Kernel::Mape,
            Loss::MeanSquaredLogarithmicError => Kernel::Msle,
            Loss::Huber { delta } => Kernel::Huber(delta),
            Loss::LogCosh => Kernel::LogCosh,
            Loss::BinaryCrossentropy {
                label_smoothing: smoothing,
                ..
            } => Kernel::BceProbabilities { smoothing, tf },
            Loss::CategoricalCrossentropy {
                label_smoothing: smoothing,
                ..
            } => Kernel::CceProbabilities { smoothing },
            Loss::SparseCategoricalCrossentropy { .. } => Kernel::ScceProbabilities,
            Loss::KLDivergence => Kernel::Kld,
            Loss::Poisson => Kernel::Poisson,
            Loss::Hinge => Kernel::Hinge { convert },
            Loss::SquaredHinge => Kernel::SquaredHinge { convert },
            Loss::CategoricalHinge => Kernel::CategoricalHinge,
            Loss::CosineSimilarity { .. } => Kernel::Cosine { tf },
        }
    }

    /// The kernel of a crossentropy on logits: TensorFlow's `*_cross_entropy_with_logits`.
    fn logits_kernel(&self) -> Option<Kernel> {
        match *self {
            Loss::BinaryCrossentropy {
                label_smoothing: smoothing,
                ..
            } => Some(Kernel::BceLogits { smoothing }),
            Loss::CategoricalCrossentropy {
                label_smoothing: smoothing,
                ..
            } => Some(Kernel::CceLogits { smoothing }),
            Loss::SparseCategoricalCrossentropy { .. } => Some(Kernel::ScceLogits),
            _ => None,
        }
    }

    /// Runs `path` writing the gradient into `grad` (of shape `shape`): directly for a
    /// standard-layout `grad` whose rows are the loss's rows, through a buffer otherwise.
    fn with_grad(
        &self,
        rows: &Rows<'_>,
        weighting: &Weighting<'_>,
        path: Path,
        dialect: Dialect,
        shape: &[usize],
        mut grad: ArrayViewMutD<'_, f32>,
    ) -> Result<f32> {
        if grad.shape() != shape {
            return Err(Error::InvalidArgument {
                layer: self.keras_name().to_string(),
                message: format!(
                    "the gradient buffer {} is not of the output's shape {}",
                    Shape::known(grad.shape()),
                    Shape::known(shape)
                ),
            });
        }
        let (n, w) = (rows.len(), rows.width());
        if rows.permutation.is_none() && grad.is_standard_layout() {
            let mut g2 = grad
                .view_mut()
                .into_shape_with_order((n, w))
                .expect("standard layout");
            return self.run(rows, weighting, path, dialect, Some(&mut g2));
        }
        let mut buffer = Array2::zeros((n, w));
        let value = self.run(rows, weighting, path, dialect, Some(&mut buffer.view_mut()))?;
        let order: Vec<usize> = rows
            .permutation
            .clone()
            .unwrap_or_else(|| (0..shape.len()).collect());
        let permuted: Vec<usize> = order.iter().map(|&a| shape[a]).collect();
        let buffer = buffer
            .into_shape_with_order(IxDyn(&permuted))
            .expect("sizes agree");
        grad.permuted_axes(order).assign(&buffer);
        Ok(value)
    }

    /// The weighted mean of the rows' losses, and with `grad` (rows × width, standard layout)
    /// its gradient.
    fn run(
        &self,
        rows: &Rows<'_>,
        weighting: &Weighting<'_>,
        path: Path,
        dialect: Dialect,
        mut grad: Option<&mut ArrayViewMut2<'_, f32>>,
    ) -> Result<f32> {
        let who = self.keras_name();
        let per_sample = match dialect {
            Dialect::TfKeras => PerSample::Spread,
            Dialect::Keras3 => PerSample::Refuse,
        };
        let output_shape = output_shape(rows);
        let weights = resolve(who, &rows.loss_shape, &output_shape, weighting, per_sample)?;
        let n = rows.len();
        let valid = |r: usize| !weights.masked(r) && !rows.ignored(r);
        let count = if weights.has_mask() || rows.ignores_a_class() {
            (0..n).filter(|&r| valid(r)).count()
        } else {
            n
        };
        if count == 0 {
            if dialect == Dialect::TfKeras {
                return Err(Error::InvalidArgument {
                    layer: who.to_string(),
                    message: format!(
                        "every loss element of the batch {} is masked or ignored: tf_keras 2.21 \
                         divides by their count, 0, and gives NaN",
                        Shape::known(&output_shape)
                    ),
                });
            }
            if let Some(g) = grad {
                g.fill(0.0);
            }
            return Ok(0.0);
        }
        let inverse = 1.0 / count as f32;
        let mut scratch = match path {
            Path::Through(..) => vec![0.0; 2 * rows.width()],
            Path::Direct(_) => Vec::new(),
        };
        let mut total = 0.0f64;
        for r in 0..n {
            let w = if valid(r) { weights.sample(r) } else { 0.0 };
            let mut g_row = grad.as_mut().map(|g| g.row_mut(r));
            let g = g_row
                .as_mut()
                .map(|g| g.as_slice_mut().expect("standard layout"));
            if w == 0.0 {
                if let Some(g) = g {
                    g.fill(0.0);
                }
                continue;
            }
            let scale = w * inverse;
            let (t, p) = (rows.target(r), rows.pred(r));
            let v = match path {
                Path::Direct(k) => k.row(t, p, g, scale),
                Path::Through(act, k) => through(act, k, t, p, g, scale, &mut scratch),
            };
            total += f64::from(w) * f64::from(v);
        }
        Ok((total / count as f64) as f32)
    }
}

/// How the rows given reach the loss.
#[derive(Debug, Clone, Copy)]
enum Path {
    /// The kernel runs on them.
    Direct(Kernel),
    /// They are logits: the activation runs first, the kernel on its output, and the gradient
    /// goes back through the activation.
    Through(ActivationFn, Kernel),
}

/// One row through `activation` then `kernel`, the gradient chained back to the logits.
fn through(
    activation: ActivationFn,
    kernel: Kernel,
    t: kernels::Target<'_>,
    z: &[f32],
    g: Option<&mut [f32]>,
    scale: f32,
    scratch: &mut [f32],
) -> f32 {
    let (p, gp) = scratch.split_at_mut(z.len());
    let softmax = activation == ActivationFn::Softmax;
    if softmax {
        let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut s = 0.0;
        for (p, &z) in p.iter_mut().zip(z) {
            *p = (z - m).exp();
            s += *p;
        }
        p.iter_mut().for_each(|p| *p /= s);
    } else {
        p.iter_mut().zip(z).for_each(|(p, &z)| *p = sigmoid(z));
    }
    let Some(g) = g else {
        return kernel.row(t, p, None, scale);
    };
    let value = kernel.row(t, p, Some(gp), scale);
    if softmax {
        // (grad - Σ grad·y)·y, TensorFlow's gradient of softmax.
        let dot: f32 = gp.iter().zip(p.iter()).map(|(g, p)| g * p).sum();
        for ((g, &gp), &p) in g.iter_mut().zip(gp.iter()).zip(p.iter()) {
            *g = (gp - dot) * p;
        }
    } else {
        for ((g, &gp), &p) in g.iter_mut().zip(gp.iter()).zip(p.iter()) {
            *g = gp * p * (1.0 - p);
        }
    }
    value
}

/// The output's shape as the rows were laid out from it (the reduced axis last).
fn output_shape(rows: &Rows<'_>) -> Vec<usize> {
    let mut s = rows.loss_shape.clone();
    s.push(rows.width());
    s
}

/// tf_keras's and Keras 3's `is_binary_or_sparse_categorical`: an output of one unit is
/// binary; targets of lower rank, or with a last dimension of 1 for an output of more, are
/// sparse.
pub(crate) fn binary_or_sparse(y_true_shape: &[usize], y_pred_shape: &[usize]) -> (bool, bool) {
    let p_last = y_pred_shape.last().copied();
    let t_last = y_true_shape.last().copied();
    let binary = p_last == Some(1);
    let sparse = y_true_shape.len() < y_pred_shape.len()
        || (t_last == Some(1) && p_last.is_some_and(|c| c > 1));
    (binary, sparse)
}

fn unknown(name: &str) -> Error {
    let mut names: Vec<&str> = ALIASES
        .iter()
        .flat_map(|&(l, both, tf_only)| {
            [l.keras_name(), l.class_name()]
                .into_iter()
                .chain(both.iter().chain(tf_only).copied())
        })
        .collect();
    names.sort_unstable();
    Error::UnknownName {
        kind: "loss",
        name: name.to_string(),
        message: format!(
            "Could not interpret loss identifier: {name}. Known losses: {}",
            names.join(", ")
        ),
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keras_name())
    }
}

impl FromStr for Loss {
    type Err = Error;

    /// [`Loss::from_name`].
    fn from_str(s: &str) -> Result<Loss> {
        Loss::from_name(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array, Array3, Dimension};

    const TF: Dialect = Dialect::TfKeras;
    const K3: Dialect = Dialect::Keras3;
    const MSE: Loss = Loss::MeanSquaredError;

    /// The loss and gradient of plain arrays.
    fn grad_of<D: Dimension, E: Dimension>(
        loss: Loss,
        y_true: &Array<f32, D>,
        y_pred: &Array<f32, E>,
        w: &Weighting<'_>,
        dialect: Dialect,
    ) -> Result<(f32, ArrayD<f32>)> {
        loss.value_and_grad(
            y_true.view().into_dyn(),
            y_pred.view().into_dyn(),
            w,
            dialect,
        )
    }

    /// The unweighted loss of logits and its gradient.
    fn logits_of(
        loss: Loss,
        y_true: &Array2<f32>,
        logits: &Array2<f32>,
        activation: ActivationFn,
        dialect: Dialect,
    ) -> Result<(f32, ArrayD<f32>)> {
        let (t, z) = (y_true.view().into_dyn(), logits.view().into_dyn());
        loss.value_and_grad_from_logits(t, z, activation, &Weighting::none(), dialect)
    }

    /// The unweighted loss of plain arrays in tf_keras's dialect.
    fn value_of<D: Dimension, E: Dimension>(
        loss: Loss,
        y_true: &Array<f32, D>,
        y_pred: &Array<f32, E>,
    ) -> Result<f32> {
        grad_of(loss, y_true, y_pred, &Weighting::none(), TF).map(|(v, _)| v)
    }

    /// The message of the error [`value_of`] gives.
    fn error_of<D: Dimension, E: Dimension>(
        loss: Loss,
        y_true: &Array<f32, D>,
        y_pred: &Array<f32, E>,
    ) -> String {
        value_of(loss, y_true, y_pred).unwrap_err().to_string()
    }

    #[test]
    fn masked_steps_leave_the_mean() {
        // y_pred (1, 3, 1) against zeros: squared errors 1, 4, 9; the last step masked:
        // (1 + 4) / 2 = 2.5, and ∂/∂p = 2p/2 = (1, 2, 0).
        let y_pred = Array3::from_shape_vec((1, 3, 1), vec![1.0, 2.0, 3.0]).unwrap();
        let y_true = Array3::<f32>::zeros((1, 3, 1));
        let mask = array![[true, true, false]];
        let w = Weighting::none().with_mask(&mask);
        let (v, g) = grad_of(MSE, &y_true, &y_pred, &w, TF).unwrap();
        assert!((v - 2.5).abs() < 1e-6);
        assert_eq!(g.iter().copied().collect::<Vec<_>>(), vec![1.0, 2.0, 0.0]);
    }

    #[test]
    fn per_sample_weights_spread_over_steps_in_tf_keras() {
        // Two samples of two steps, losses (1, 1) and (4, 4), weights 3 and 1:
        // (3 + 3 + 4 + 4) / 4 = 3.5 (sum_over_batch_size: the weights' sum is not the divisor).
        let y_pred = Array3::from_shape_vec((2, 2, 1), vec![1.0, 1.0, 2.0, 2.0]).unwrap();
        let y_true = Array3::<f32>::zeros((2, 2, 1));
        let sw = array![3.0f32, 1.0];
        let w = Weighting::none().with_sample_weight(&sw);
        let (v, _) = grad_of(MSE, &y_true, &y_pred, &w, TF).unwrap();
        assert!((v - 3.5).abs() < 1e-6);
        let err = grad_of(MSE, &y_true, &y_pred, &w, K3).unwrap_err();
        assert!(err.to_string().contains("Keras 3 multiplies"), "{err}");
    }

    #[test]
    fn a_fully_masked_batch() {
        let y = Array3::<f32>::zeros((1, 2, 1));
        let mask = array![[false, false]];
        let w = Weighting::none().with_mask(&mask);
        let err = grad_of(Loss::MeanAbsoluteError, &y, &y, &w, TF).unwrap_err();
        assert!(err.to_string().contains("NaN"), "{err}");
        let (v, g) = grad_of(Loss::MeanAbsoluteError, &y, &y, &w, K3).unwrap();
        assert_eq!(v, 0.0);
        assert!(g.iter().all(|&g| g == 0.0));
    }

    #[test]
    fn sparse_labels_are_checked() {
        let y_pred = array![[0.2f32, 0.8], [0.6, 0.4]];
        let scce = Loss::sparse_categorical_crossentropy();
        let err = error_of(scce, &array![0.0, 1.5], &y_pred);
        assert!(
            err.contains("label 1.5 at [1] is not a class index"),
            "{err}"
        );
        let err = error_of(scce, &array![2.0, 0.0], &y_pred);
        assert!(err.contains("out of range for 2 classes"), "{err}");
        assert!(
            err.starts_with("layer \"sparse_categorical_crossentropy\""),
            "{err}"
        );
        assert!(value_of(scce, &array![-1.0, 0.0], &y_pred).is_err());
        let err = error_of(scce, &array![0.0, 0.0, 1.0], &y_pred);
        assert!(
            err.contains("sparse labels need y_pred's shape without its last axis"),
            "{err}"
        );
        // The ignored class may lie outside the classes: -ln(0.2/1.0) = 1.609438 over 1 row.
        let ignoring = Loss::SparseCategoricalCrossentropy {
            from_logits: false,
            ignore_class: Some(-1),
        };
        let v = value_of(ignoring, &array![0.0, -1.0], &y_pred).unwrap();
        assert!((v - 1.609_438).abs() < 1e-5, "{v}");
        let err = error_of(scce, &array![0.0], &array![[1.0f32]]);
        assert!(err.contains("2 classes or more"), "{err}");
    }

    #[test]
    fn targets_are_checked() {
        let y_pred = array![[0.2f32, 0.8]];
        let err = error_of(Loss::binary_crossentropy(), &array![[0.0f32, 1.5]], &y_pred);
        assert!(err.contains("got 1.5 at [0, 1]"), "{err}");
        let err = error_of(
            Loss::categorical_crossentropy(),
            &array![[0.0f32, 1.0, 0.0]],
            &y_pred,
        );
        assert!(
            err.contains("one-hot targets of 3 classes for an output of 2 units"),
            "{err}"
        );
        let err = error_of(Loss::Hinge, &array![[0.0f32, -1.0]], &y_pred);
        assert!(err.contains("all 0 or 1, or all -1 or 1"), "{err}");
        let err = error_of(MSE, &array![[0.0f32, 1.0, 1.0]], &y_pred);
        assert!(err.contains("got y_true (1, 3) and y_pred (1, 2)"), "{err}");
        let err = error_of(MSE, &array![0.0f32], &array![0.0f32]);
        assert!(err.contains("a batch axis and at least one more"), "{err}");
    }

    #[test]
    fn trailing_ones_are_squeezed_as_keras_does() {
        // (2,) targets for a (2, 1) output, and (2, 1, 1) for (2, 1): the same losses,
        // (0.25 + 4) / 2 = 2.125.
        let y_pred = array![[0.5f32], [2.0]];
        let deep = Array3::from_shape_vec((2, 1, 1), vec![1.0f32, 0.0]).unwrap();
        let a = value_of(MSE, &array![1.0f32, 0.0], &y_pred).unwrap();
        let b = value_of(MSE, &deep, &y_pred).unwrap();
        assert!((a - 2.125).abs() < 1e-6 && (b - 2.125).abs() < 1e-6);
    }

    #[test]
    fn logits_rules() {
        let bce = Loss::binary_crossentropy();
        let scce = Loss::SparseCategoricalCrossentropy {
            from_logits: false,
            ignore_class: Some(0),
        };
        let (sig, softmax) = (ActivationFn::Sigmoid, ActivationFn::Softmax);
        assert!(bce.uses_logits(sig, &[4], &[4, 1], TF));
        assert!(bce.uses_logits(sig, &[4, 5, 1], &[4, 5, 1], TF));
        assert!(!bce.uses_logits(sig, &[4, 5], &[4, 5, 1], TF));
        assert!(bce.uses_logits(softmax, &[4, 2], &[4, 2], K3));
        assert!(!MSE.uses_logits(sig, &[4, 1], &[4, 1], TF));
        assert!(scce.uses_logits(softmax, &[4], &[4, 3], TF));
        assert!(!scce.uses_logits(softmax, &[4], &[4, 3], K3));
        let (t, z) = (array![[1.0f32, 0.0]], array![[0.0f32, 1.0]]);
        let err = logits_of(bce, &t, &z, ActivationFn::Relu, TF).unwrap_err();
        assert!(err.to_string().contains("not of relu"), "{err}");
    }

    #[test]
    fn logits_and_probabilities_agree_away_from_saturation() {
        // sigmoid(0.3) = 0.574443: the logits path and the probability path (Keras 3's,
        // without the + eps) give the same loss, -ln(0.574443) = 0.554355, and gradients
        // related by σ' = p(1 - p): ∂/∂z = σ(z) - 1 = -0.425557.
        let z = array![[0.3f32]];
        let p = z.mapv(kernels::sigmoid);
        let t = array![[1.0f32]];
        let bce = Loss::binary_crossentropy();
        let (vz, gz) = logits_of(bce, &t, &z, ActivationFn::Sigmoid, K3).unwrap();
        let (vp, gp) = grad_of(bce, &t, &p, &Weighting::none(), K3).unwrap();
        assert!((vz - 0.554_355).abs() < 1e-5 && (vp - vz).abs() < 1e-5);
        let q = p[[0, 0]];
        assert!((gz[[0, 0]] + 0.425_557).abs() < 1e-5);
        assert!((gp[[0, 0]] * q * (1.0 - q) - gz[[0, 0]]).abs() < 1e-5);
    }

    #[test]
    fn cosine_over_a_middle_axis() {
        // y_pred (1, 2, 2) reduced over axis 1: columns (1, 0)·(1, 0) and (0, 1)·(0, 2).
        // Both cosines are 1: loss -1; the gradient of a unit vector along itself is 0.
        let y_true = Array3::from_shape_vec((1, 2, 2), vec![1.0f32, 0.0, 0.0, 1.0]).unwrap();
        let y_pred = Array3::from_shape_vec((1, 2, 2), vec![1.0f32, 0.0, 0.0, 2.0]).unwrap();
        let loss = Loss::CosineSimilarity { axis: 1 };
        let none = Weighting::none();
        let (v, g) = grad_of(loss, &y_true, &y_pred, &none, TF).unwrap();
        assert!((v + 1.0).abs() < 1e-6);
        assert!(g.iter().all(|g| g.abs() < 1e-6), "{g}");
        // Column 1 turned to (1, 1)/√2 against (0, 1): ∂(-cos)/∂p = -(nt - cos·np)/‖p‖ / 2
        // rows = -((0, 1) - (0.5, 0.5))/√2/2 = (0.176777, -0.176777) at [0, 0, 1], [0, 1, 1].
        let y_pred = Array3::from_shape_vec((1, 2, 2), vec![1.0f32, 1.0, 0.0, 1.0]).unwrap();
        let (_, g) = grad_of(loss, &y_true, &y_pred, &none, TF).unwrap();
        assert!((g[[0, 0, 1]] - 0.176_777).abs() < 1e-5);
        assert!((g[[0, 1, 1]] + 0.176_777).abs() < 1e-5);
        assert!(g[[0, 0, 0]].abs() < 1e-6 && g[[0, 1, 0]].abs() < 1e-6);
        let err = error_of(Loss::CosineSimilarity { axis: 0 }, &y_true, &y_pred);
        assert!(
            err.contains("axis 0 is not an axis of the output other than the batch"),
            "{err}"
        );
    }

    #[test]
    fn names() {
        assert_eq!(Loss::from_name("huber_loss").unwrap(), Loss::huber());
        assert!(Loss::from_name_in("huber_loss", K3).is_err());
        assert_eq!("bce".parse::<Loss>().unwrap(), Loss::binary_crossentropy());
        let err = Loss::from_name("cce").unwrap_err();
        assert!(matches!(err, Error::UnknownName { kind: "loss", .. }));
        let k3 = K3;
        let sparse = Loss::sparse_categorical_crossentropy();
        assert_eq!(Loss::resolve("CE", k3, &[4], &[4, 3]).unwrap(), sparse);
        let binary = Loss::binary_crossentropy();
        assert_eq!(
            Loss::resolve("crossentropy", k3, &[4, 1], &[4, 1]).unwrap(),
            binary
        );
        assert!(Loss::resolve("crossentropy", TF, &[4, 1], &[4, 1]).is_err());
        assert_eq!(Loss::huber().to_string(), "huber");
        assert_eq!(Loss::huber().class_name(), "Huber");
    }

    #[test]
    fn the_gradient_buffer_must_fit() {
        let y = array![[0.5f32, 0.5]];
        let mut g = ArrayD::zeros(IxDyn(&[1, 3]));
        let err = MSE
            .value_and_grad_into(
                y.view().into_dyn(),
                y.view().into_dyn(),
                &Weighting::none(),
                TF,
                g.view_mut(),
            )
            .unwrap_err();
        assert!(err.to_string().contains("gradient buffer (1, 3)"), "{err}");
        let empty = ndarray::Array2::<f32>::zeros((0, 2));
        let err = value_of(MSE, &empty, &empty).unwrap_err();
        assert!(matches!(err, Error::EmptyInput { .. }), "{err}");
    }

    #[test]
    fn a_transposed_gradient_buffer_is_filled_in_its_own_layout() {
        // A column-major buffer: written through a copy, element by element.
        let y_true = array![[0.0f32, 0.0], [0.0, 0.0]];
        let y_pred = array![[1.0f32, 2.0], [3.0, 4.0]];
        let mut g = ndarray::Array2::<f32>::zeros((2, 2)).reversed_axes();
        let none = Weighting::none();
        MSE.value_and_grad_into(
            y_true.view().into_dyn(),
            y_pred.view().into_dyn(),
            &none,
            TF,
            g.view_mut().into_dyn(),
        )
        .unwrap();
        // ∂/∂p = 2p / (2 elements · 2 rows) = p/2.
        assert_eq!(g, array![[0.5, 1.0], [1.5, 2.0]]);
    }
}
