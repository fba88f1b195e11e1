//! Training: what Keras's `compile` and `fit` compute around a model's output.
//!
//! - [`loss`]: Keras's losses, each giving the reduced value and its gradient with respect to
//!   the output (or to the logits of a final sigmoid or softmax, as `fit` computes them), with
//!   masks and sample weights as tf_keras 2.21 or Keras 3.15 apply them ([`Dialect`](loss::Dialect)).
//! - [`metric`]: Keras's metrics, averaged over an epoch as Keras reports them in its logs.
//!
//! The numbers are checked against real Keras by `tests/train_losses.rs` and
//! `tests/train_metrics.rs`, whose fixtures `tools/keras_reference/generate_train_losses.py`
//! writes.

pub mod loss;
pub mod metric;
