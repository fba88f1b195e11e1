//! Whole models from real Keras files, in every format each Keras saved them: every case of
//! - `tests/fixtures/functional/` (`tools/keras_reference/generate_functional.py`): Functional
//!   graphs, several inputs and outputs, shared layers, nested models, encoder–decoders,
//!   merges and masks;
//! - `tests/fixtures/models/` (`tools/keras_reference/generate_models.py`): the layers around
//!   the RNNs, CNN-LSTMs, text convolutions, poolings, BatchNormalization between RNNs,
//!   Reshape and Permute, TimeDistributed Conv2D video and spectrogram models, self-attention
//!   with causal and explicit masks, Luong and Bahdanau attention, ConvLSTM1D and ConvLSTM2D.
//!
//! Each predicts what its Keras predicted (1e-5, relative above 1), with Keras's names,
//! parameter counts and tf_keras's summary; saved again by seqnn, it loads back the same.
#![cfg(feature = "keras")]

mod common;

use common::model_fixture::{
    check_format, check_saved_files, check_tf_keras_summaries, check_weights_files, Folder,
};

const FOLDERS: [Folder; 2] = [Folder("functional"), Folder("models")];

#[test]
fn tf_keras_dot_keras_files_predict_as_keras() {
    FOLDERS.iter().for_each(|&f| check_format(f, "tf.keras"));
}

#[test]
fn tf_keras_legacy_h5_files_predict_as_keras() {
    FOLDERS.iter().for_each(|&f| check_format(f, "tf.h5"));
}

#[test]
fn keras3_dot_keras_files_predict_as_keras() {
    FOLDERS.iter().for_each(|&f| check_format(f, "k3.keras"));
}

#[test]
fn keras3_legacy_h5_files_predict_as_keras() {
    FOLDERS.iter().for_each(|&f| check_format(f, "k3.h5"));
}

/// A `.weights.h5` file loads into the model of the Keras 3 file, its weights zeroed first.
#[test]
fn keras3_weights_files_load_into_the_same_model() {
    FOLDERS.iter().for_each(|&f| check_weights_files(f));
}

/// A loaded tf_keras model's summary is tf_keras's text, in the notebook's layout.
#[test]
fn tf_keras_summaries_are_keras_summaries() {
    // The summary of shared_across_nesting is of the model with one Dense in two places
    // (Keras's configs cannot say so): loaded, it has two.
    FOLDERS
        .iter()
        .for_each(|&f| check_tf_keras_summaries(f, &["shared_across_nesting"]));
}

/// seqnn's `.keras` file of a loaded model loads back with the same layers, weights and
/// outputs.
#[test]
fn saved_files_load_back_the_same() {
    FOLDERS.iter().for_each(|&f| check_saved_files(f));
}

/// The portable kernels, and AVX2 on an AVX-512 CPU, give these numbers too (the tests above
/// run on the CPU's own).
#[test]
fn every_instruction_set_gives_these_numbers() {
    common::rerun_on_narrower_instruction_sets("every_instruction_set_gives_these_numbers");
}
