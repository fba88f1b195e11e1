//! Functional models from real Keras files: every case of `tests/fixtures/functional/`, written
//! by `tools/keras_reference/generate_functional.py` with tf_keras 2.21 and Keras 3.15, in every
//! format it was saved in, predicts what Keras predicted (1e-5, relative above 1), with Keras's
//! names, parameter counts and summaries; saved again by seqnn, it loads back the same.
#![cfg(feature = "keras")]

mod common;

use common::model_fixture::{
    check_format, check_saved_files, check_tf_keras_summaries, check_weights_files, Folder,
};

const FOLDER: Folder = Folder("functional");

#[test]
fn tf_keras_dot_keras_files_predict_as_keras() {
    check_format(FOLDER, "tf.keras");
}

#[test]
fn tf_keras_legacy_h5_files_predict_as_keras() {
    check_format(FOLDER, "tf.h5");
}

#[test]
fn keras3_dot_keras_files_predict_as_keras() {
    check_format(FOLDER, "k3.keras");
}

#[test]
fn keras3_legacy_h5_files_predict_as_keras() {
    check_format(FOLDER, "k3.h5");
}

/// A `.weights.h5` file loads into the model of the Keras 3 file, its weights zeroed first.
#[test]
fn keras3_weights_files_load_into_the_same_graph() {
    check_weights_files(FOLDER);
}

/// A loaded tf_keras model's summary is tf_keras's text, in the notebook's layout.
#[test]
fn tf_keras_summaries_are_keras_summaries() {
    // The summary of shared_across_nesting is of the model with one Dense in two places
    // (Keras's configs cannot say so): loaded, it has two.
    check_tf_keras_summaries(FOLDER, &["shared_across_nesting"]);
}

/// seqnn's `.keras` file of a loaded model loads back with the same layers, weights and
/// outputs.
#[test]
fn saved_files_load_back_the_same() {
    check_saved_files(FOLDER);
}
