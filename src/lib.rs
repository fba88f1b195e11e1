//! # seqnn: Keras's recurrent models in Rust
//!
//! Write what you would write in Keras, and get the shapes, the summary and the numbers Keras
//! gives for the same weights:
//!
//! ```
//! use seqnn::{Sequential, SimpleRNN};
//! use ndarray::Array3;
//!
//! let mut model = Sequential::new();
//! model.add(SimpleRNN::new(3).input_shape((2, 10)))?;
//! println!("{}", model.summary()?);          // the table Keras prints
//! let x = Array3::<f32>::zeros((8, 2, 10));
//! let y = model.predict(&x)?;                // (8, 3)
//! assert_eq!(y.shape(), &[8, 3]);
//! # Ok::<(), seqnn::Error>(())
//! ```
//!
//! ## What is here
//! - [`Sequential`]: `add` with shape inference, `build`, `summary`, `get_weights` /
//!   `set_weights` in Keras order, `layers_mut`, `get_layer_mut`, `pop`, and three ways to run:
//!   [`predict`](Sequential::predict) (`&self`, in batches, bounded memory),
//!   [`call`](Sequential::call) (`&self`, one batch) and
//!   [`predict_stateful`](Sequential::predict_stateful) (`&mut self`, for stateful layers).
//!   Inputs are `f32` or integer ids ([`Element`]).
//! - Recurrent layers [`SimpleRNN`], [`LSTM`] and [`GRU`]: each a [`Recurrent`] over its
//!   [`Cell`], all sharing one sequence driver (`return_sequences`, `return_state`,
//!   `go_backwards`, initial states, masks, `stateful`).
//! - [`Bidirectional`] over any of them, with every Keras [`MergeMode`] and an optional backward
//!   layer.
//! - [`Dense`], [`Embedding`], [`TimeDistributed`], [`RepeatVector`], [`Flatten`], [`Dropout`],
//!   [`Activation`] and [`Masking`]; masks flow between layers as in Keras ([`MaskPolicy`]).
//! - The [`Layer`] trait: one [`call`](Layer::call) with a [`CallContext`] (masks, states,
//!   [`Mode`]), shape inference over lists of shapes, building apart from initializing.
//! - [`ActivationFn`] and [`Initializer`] with Keras's names; [`set_random_seed`] and
//!   [`clear_session`] as in Keras.
//! - One [`Error`](enum@Error) type, with the error underneath as its source; no panic on user
//!   input or files, and sizes checked against [`limits`] before anything is allocated.
//!
//! Every layer option `x` is a builder `with_x(value)` and a getter `x()`; the input
//! declarations keep Keras's keywords (`input_shape`, `batch_input_shape`, `batch_size`,
//! `input_dim`, `input_length`).
//!
//! ## Cargo features
//! - `keras` (default): Keras files. [`load_model`] and [`load_model_from_bytes`] read
//!   `.keras` archives (Keras 3 and tf_keras) and legacy `.h5` models;
//!   `Sequential::load_weights` reads `.weights.h5` and the weights of those files;
//!   `Sequential::save` writes a `.keras` archive that Keras 3 loads; `Sequential::to_json` and
//!   [`model_from_json`] are Keras's. The core never depends on it.
//! - `threads` (default): large calls split over one persistent thread pool (rayon's), as
//!   [`threads`] describes; without it every call runs on its caller's thread.
//!
//! The `seqnn` command-line tool, which runs model files on NumPy `.npy` and `.npz` arrays, is
//! the workspace's `seqnn-cli` crate, so that the library does not build its argument parser
//! or an array-file reader.
//!
//! ## Summaries
//! [`Sequential::summary`] prints the classic Keras table as the notebook shows it: 65 columns,
//! columns at 0, 29 and 55, `=` rules around the rows, `_` rules between them, totals without
//! byte sizes. Long cells wrap where tf_keras 2.21 wraps them.
//!
//! ## Numbers
//! All arithmetic is f32, as Keras's default float32. Outputs equal tf_keras 2.21's to 1e-5 for
//! the same weights; the test suite checks it against fixtures made by real Keras.
//!
//! ## Names and seeds
//! Layer and model names (`simple_rnn`, `simple_rnn_1`, `sequential`, ...) and the weight
//! generator are per thread, so that they are deterministic under parallel tests. A layer gets its
//! name when it is added to a model (or wrapped by a `Bidirectional`), unless it was given one.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod activation;
pub mod error;
pub mod functional;
pub mod init;
pub mod input;
#[cfg(feature = "keras")]
#[cfg_attr(docsrs, doc(cfg(feature = "keras")))]
pub mod keras;
pub mod layer;
pub mod layers;
pub mod limits;
mod linalg;
pub mod sequential;
pub mod session;
pub mod shape;
mod summary;
pub mod threads;

pub use activation::ActivationFn;
pub use error::{Error, Result, Shared, Source};
pub use functional::{Apply, Input, Model, SharedLayer, Tensor};
pub use init::Initializer;
pub use input::{Element, InputArray};
#[cfg(feature = "keras")]
#[cfg_attr(docsrs, doc(cfg(feature = "keras")))]
pub use keras::{
    any_from_json, load_any, load_any_from_bytes, load_model, load_model_from_bytes,
    model_from_json, AnyModel,
};
pub use layer::{CallContext, Layer, Mask, MaskPolicy, Mode, Outputs, States, WeightSpec};
pub use layers::activation::Activation;
pub use layers::bidirectional::{Bidirectional, MergeMode};
pub use layers::concatenate::Concatenate;
pub use layers::dense::Dense;
pub use layers::dot::Dot;
pub use layers::dropout::Dropout;
pub use layers::embedding::Embedding;
pub use layers::flatten::Flatten;
pub use layers::gru::{GRUCell, GRU};
pub use layers::input_layer::InputLayer;
pub use layers::lstm::{LSTMCell, LSTM};
pub use layers::masking::Masking;
pub use layers::merge::{
    Add, Average, Keras3Masking, Maximum, Merge, MergeOp, Minimum, Multiply, Subtract,
};
pub use layers::op::{BinaryOp, Op, OpKind, Operand, ReduceOp, UnaryOp};
pub use layers::recurrent::{Cell, Recurrent, RecurrentLayer};
pub use layers::repeat_vector::RepeatVector;
pub use layers::simple_rnn::{SimpleRNN, SimpleRNNCell};
pub use layers::time_distributed::TimeDistributed;
pub use sequential::{Sequential, DEFAULT_BATCH_SIZE};
pub use session::{clear_session, set_random_seed};
pub use shape::Shape;
pub use threads::{num_threads, set_num_threads};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
