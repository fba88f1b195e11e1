//! ConvLSTM1D and ConvLSTM2D, layer by layer, against tf_keras 2.21 and Keras 3.15
//! (`tools/keras_reference/generate_layers_conv_recurrent.py`): configs, shapes, parameter
//! counts, outputs, states and masks.
#![cfg(feature = "keras")]

mod common;

#[test]
fn conv_recurrent_layers_match_keras() {
    common::layer_fixture::check_family("conv_recurrent");
}

/// The portable kernels, and AVX2 on an AVX-512 CPU, give these numbers too (the tests above
/// run on the CPU's own).
#[test]
fn every_instruction_set_gives_these_numbers() {
    common::rerun_on_narrower_instruction_sets("every_instruction_set_gives_these_numbers");
}
