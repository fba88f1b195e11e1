//! Training as in Keras: optimizers, learning-rate schedules and gradient clipping.
//!
//! - [`optimizer`]: the [`Optimizer`] trait and Keras's optimizers ([`SGD`], [`Adam`],
//!   [`AdamW`], [`RMSprop`], [`Adagrad`], [`Adadelta`], [`Adamax`], [`Nadam`], [`Ftrl`]),
//!   [`optimizer_from_name`] for Keras's strings.
//! - [`schedule`]: [`LearningRateSchedule`] and Keras's schedules ([`ExponentialDecay`],
//!   [`PiecewiseConstantDecay`], [`CosineDecay`], [`InverseTimeDecay`], [`PolynomialDecay`]).
//! - [`clip`]: [`GradientClipping`], Keras's `clipnorm`, `clipvalue` and `global_clipnorm`.
//! - [`config`]: [`Config`], what an optimizer or schedule was made with, as Keras's
//!   `get_config()` lists it.
//!
//! Each matches Keras 3.15's numbers to 1e-6 (and tf_keras 2.21's, which are the same), as the
//! fixtures in `tests/fixtures/train/` check.

pub mod clip;
pub mod config;
mod elements;
pub mod optimizer;
pub mod schedule;

pub use clip::GradientClipping;
pub use config::{Config, ConfigValue};
pub use optimizer::{
    optimizer_from_name, Adadelta, Adagrad, Adam, AdamW, Adamax, Ftrl, Nadam, Optimizer,
    OptimizerVariable, RMSprop, VariableValue, SGD,
};
pub use schedule::{
    CosineDecay, ExponentialDecay, InverseTimeDecay, LearningRateSchedule, PiecewiseConstantDecay,
    PolynomialDecay,
};
