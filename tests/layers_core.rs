//! Layer-level Keras fixtures of the core layers (`tools/keras_reference/generate_layers_core.py`):
//! each layer rebuilt from the config Keras serialized, in tf_keras 2.21 and Keras 3.15.
#![cfg(feature = "keras")]

mod common;

#[test]
fn core_layers_equal_keras() {
    common::layer_fixture::check_family("core");
}

/// The portable kernels, and AVX2 on an AVX-512 CPU, give these numbers too (the tests above
/// run on the CPU's own).
#[test]
fn every_instruction_set_gives_these_numbers() {
    common::rerun_on_narrower_instruction_sets("every_instruction_set_gives_these_numbers");
}
