//! ConvLSTM1D and ConvLSTM2D, layer by layer, against tf_keras 2.21 and Keras 3.15
//! (`tools/keras_reference/generate_layers_conv_recurrent.py`): configs, shapes, parameter
//! counts, outputs, states and masks.
#![cfg(feature = "keras")]

mod common;

#[test]
fn conv_recurrent_layers_match_keras() {
    common::layer_fixture::check_family("conv_recurrent");
}
