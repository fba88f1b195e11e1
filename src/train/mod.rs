//! Training as in Keras: what `compile` and `fit` compute around a model's output.
//!
//! - [`optimizer`]: the [`Optimizer`] trait and Keras's optimizers ([`SGD`], [`Adam`],
//!   [`AdamW`], [`RMSprop`], [`Adagrad`], [`Adadelta`], [`Adamax`], [`Nadam`], [`Ftrl`]),
//!   [`optimizer_from_name`] for Keras's strings.
//! - [`schedule`]: [`LearningRateSchedule`] and Keras's schedules ([`ExponentialDecay`],
//!   [`PiecewiseConstantDecay`], [`CosineDecay`], [`InverseTimeDecay`], [`PolynomialDecay`]).
//! - [`clip`]: [`GradientClipping`], Keras's `clipnorm`, `clipvalue` and `global_clipnorm`.
//! - [`config`]: [`Config`], what an optimizer or schedule was made with, as Keras's
//!   `get_config()` lists it.
//! - [`fit`]: the fit loop ([`Compiled`], [`FitOptions`], [`History`]) behind
//!   [`Sequential::compile`](crate::Sequential::compile), `fit`, `evaluate`,
//!   `train_on_batch` and `test_on_batch`.
//! - [`callbacks`]: the [`Callback`] trait and Keras's callbacks ([`EarlyStopping`],
//!   [`ReduceLROnPlateau`], [`LearningRateScheduler`], [`TerminateOnNaN`], [`CSVLogger`],
//!   [`LambdaCallback`], `ModelCheckpoint`), which `fit_with_callbacks` runs.
//! - [`loss`]: Keras's losses, each giving the reduced value and its gradient with respect to
//!   the output (or to the logits of a final sigmoid or softmax, as `fit` computes them), with
//!   masks and sample weights as tf_keras 2.21 or Keras 3.15 apply them ([`Dialect`](loss::Dialect)).
//! - [`metric`]: Keras's metrics, averaged over an epoch as Keras reports them in its logs.
//! - [`regularizer`], [`constraint`] and [`weight_rules`]: Keras's weight and activity
//!   penalties ([`Regularizer`]) and weight projections ([`Constraint`]), as a layer keeps
//!   them ([`WeightRules`]) and `fit` applies them.
//!
//! The numbers are checked against real Keras (tf_keras 2.21 and Keras 3.15) by the
//! `tests/train_*.rs` tests, whose fixtures the `tools/keras_reference/generate_train_*.py`
//! scripts write.

pub mod callbacks;
pub mod clip;
pub mod config;
pub mod constraint;
mod elements;
pub mod fit;
pub mod loss;
pub mod metric;
pub mod optimizer;
mod penalties;
#[cfg(feature = "plot")]
mod plot;
mod progress;
pub mod regularizer;
mod sample_weight;
pub mod schedule;
pub mod weight_rules;

#[cfg(feature = "keras")]
pub use callbacks::{BackupAndRestore, ModelCheckpoint, SaveFreq};
pub use callbacks::{
    CSVLogger, Callback, EarlyStopping, FitContext, LambdaCallback, LearningRateScheduler, Logs,
    MonitorMode, ReduceLROnPlateau, TerminateOnNaN,
};
pub use clip::GradientClipping;
pub use config::{Config, ConfigValue};
pub use constraint::Constraint;
pub use fit::{Compiled, FitOptions, History, IntoLoss, IntoOptimizer, IntoTargets};
pub use optimizer::{
    optimizer_from_name, Adadelta, Adagrad, Adam, AdamW, Adamax, Ftrl, Nadam, Optimizer,
    OptimizerVariable, RMSprop, VariableRole, VariableValue, SGD,
};
pub use regularizer::Regularizer;
pub use schedule::{
    CosineDecay, ExponentialDecay, InverseTimeDecay, LearningRateSchedule, PiecewiseConstantDecay,
    PolynomialDecay,
};
pub use weight_rules::{WeightRule, WeightRules};
