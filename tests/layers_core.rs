//! Layer-level Keras fixtures of the core layers (`tools/keras_reference/generate_layers_core.py`):
//! each layer rebuilt from the config Keras serialized, in tf_keras 2.21 and Keras 3.15.
#![cfg(feature = "keras")]

mod common;

#[test]
fn core_layers_equal_keras() {
    common::layer_fixture::check_family("core");
}
