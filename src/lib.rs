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
//! - Normalization: [`BatchNormalization`] (batch statistics in training, moving ones at
//!   inference) and [`LayerNormalization`]; shapes: [`Reshape`] and [`Permute`]; and the layers
//!   that are the identity at inference, [`SpatialDropout1D`], [`GaussianNoise`],
//!   [`GaussianDropout`] and [`ActivityRegularization`].
//! - Attention layers [`Attention`], [`AdditiveAttention`] and [`MultiHeadAttention`], with
//!   several inputs (`[query, value]` or `[query, value, key]`) and their masks through
//!   [`call`](Layer::call); Keras's call arguments `use_causal_mask` and
//!   `return_attention_scores` are options of the layers.
//! - Convolutions [`Conv1D`] and [`Conv2D`] (valid, same and causal [`Padding`], strides,
//!   dilation, groups), poolings [`MaxPooling1D`], [`AveragePooling1D`], [`MaxPooling2D`],
//!   [`AveragePooling2D`], global poolings [`GlobalMaxPooling1D`], [`GlobalAveragePooling1D`]
//!   (masked), [`GlobalMaxPooling2D`], [`GlobalAveragePooling2D`], and [`ZeroPadding1D`],
//!   [`Cropping1D`], [`UpSampling1D`].
//! - The [`Layer`] trait: one [`call`](Layer::call) with a [`CallContext`] (masks, states,
//!   [`Mode`]), shape inference over lists of shapes, building apart from initializing.
//! - [`ActivationFn`] and [`Initializer`] with Keras's names; [`set_random_seed`] and
//!   [`clear_session`] as in Keras.
//! - Training, as far as [`train`] goes: Keras's optimizers ([`SGD`], [`Adam`], [`AdamW`],
//!   [`RMSprop`], [`Adagrad`], [`Adadelta`], [`Adamax`], [`Nadam`], [`Ftrl`]) behind the
//!   [`Optimizer`] trait, with their gradient clipping ([`GradientClipping`]), `weight_decay`
//!   and learning-rate schedules ([`ExponentialDecay`], [`PiecewiseConstantDecay`],
//!   [`CosineDecay`], [`InverseTimeDecay`], [`PolynomialDecay`]), equal to Keras 3's step for
//!   step; and the losses and metrics: every Keras [`Loss`] with its value and its
//!   gradient with respect to the output (or to a final sigmoid's or softmax's logits, as `fit`
//!   computes them), masks and sample weights as tf_keras 2.21 or Keras 3.15 apply them
//!   ([`Dialect`], [`Weighting`]), and Keras's [`Metric`]s averaged over an epoch as Keras logs
//!   them.
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
//!   [`model_from_json`] are Keras's. A compiled model's file holds its optimizer's state, as
//!   Keras 3 writes it, and loading restores it, so that training resumes exactly. The core
//!   never depends on it.
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
/// Not part of the API: seqnn's own matrix kernel, for `benches/gemm.rs` to measure the
/// machine's GEMM peak with. Hidden, outside semver.
#[doc(hidden)]
pub mod bench_hook;
mod buffers;
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
mod stateful;
mod summary;
pub mod threads;
pub mod train;

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
pub use layer::{
    CallContext, Gradients, Layer, Mask, MaskPolicy, Mode, Outputs, SavedForBackward, States,
    WeightSpec,
};
pub use layers::activation::Activation;
pub use layers::additive_attention::AdditiveAttention;
pub use layers::attention::{Attention, ScoreMode};
pub use layers::batch_normalization::{BatchNormalization, MovingVariance, RenormClipping};
pub use layers::bidirectional::{Bidirectional, MergeMode};
pub use layers::concatenate::Concatenate;
pub use layers::conv::{Conv, Conv1D, Conv2D, Dims, Padding};
pub use layers::conv_lstm::{ConvLSTM, ConvLSTM1D, ConvLSTM2D};
pub use layers::cropping1d::Cropping1D;
pub use layers::dense::Dense;
pub use layers::dot::Dot;
pub use layers::dropout::Dropout;
pub use layers::embedding::Embedding;
pub use layers::flatten::Flatten;
pub use layers::global_pooling::{
    GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D,
    GlobalPooling,
};
pub use layers::gru::{GRUCell, GRU};
pub use layers::input_layer::InputLayer;
pub use layers::layer_normalization::LayerNormalization;
pub use layers::lstm::{LSTMCell, LSTM};
pub use layers::masking::Masking;
pub use layers::merge::{
    Add, Average, Keras3Masking, Maximum, Merge, MergeGradient, MergeOp, Minimum, Multiply,
    Subtract,
};
pub use layers::multi_head_attention::{MultiHeadAttention, SoftmaxMasking};
pub use layers::op::{BinaryOp, Op, OpKind, Operand, ReduceOp, UnaryOp};
pub use layers::permute::Permute;
pub use layers::pooling::{
    AveragePool, AveragePooling1D, AveragePooling2D, MaxPool, MaxPooling1D, MaxPooling2D, PoolKind,
    Pooling,
};
pub use layers::recurrent::{
    Cell, PackedKernel, PreparedBackward, Recurrent, RecurrentLayer, SequenceBackward,
};
pub use layers::regularization::{
    ActivityRegularization, GaussianDropout, GaussianNoise, SpatialDropout1D,
};
pub use layers::repeat_vector::RepeatVector;
pub use layers::reshape::Reshape;
pub use layers::simple_rnn::{SimpleRNN, SimpleRNNCell};
pub use layers::time_distributed::TimeDistributed;
pub use layers::up_sampling1d::UpSampling1D;
pub use layers::zero_padding1d::ZeroPadding1D;
pub use linalg::instruction_set;
pub use sequential::{Sequential, DEFAULT_BATCH_SIZE};
pub use session::{clear_session, set_random_seed};
pub use shape::Shape;
pub use threads::{num_threads, set_num_threads};
pub use train::loss::{Dialect, Loss, Weighting};
pub use train::metric::{AucCurve, AucSummation, Metric, MetricKind};
pub use train::{
    optimizer_from_name, Adadelta, Adagrad, Adam, AdamW, Adamax, Compiled, CosineDecay,
    ExponentialDecay, FitOptions, Ftrl, GradientClipping, History, IntoLoss, IntoOptimizer,
    IntoTargets, InverseTimeDecay, LearningRateSchedule, Nadam, Optimizer, PiecewiseConstantDecay,
    PolynomialDecay, RMSprop, SGD,
};
#[cfg(feature = "keras")]
pub use train::{BackupAndRestore, ModelCheckpoint, SaveFreq};
pub use train::{
    CSVLogger, Callback, EarlyStopping, FitContext, LambdaCallback, LearningRateScheduler, Logs,
    MonitorMode, ReduceLROnPlateau, TerminateOnNaN,
};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
