//! Outputs, shapes, parameter counts and summaries compared with real tf_keras 2.21.
//!
//! Every expected number comes from `tests/fixtures/keras/*.json`, written by
//! `tools/keras_reference/generate_core.py` (see the README there): Keras built the model, set
//! random non-zero weights and ran `predict`. Here seqnn builds the same model from the Keras
//! config, takes the same weights, and must give the same outputs to 1e-5.

mod common;

use common::{assert_close, load, shape};
use seqnn::Layer;

fn check_sequential(case: &str) {
    common::check_sequential(&load(case));
}

macro_rules! sequential_cases {
    ($($case:ident),* $(,)?) => {$(
        #[test]
        fn $case() {
            check_sequential(stringify!($case));
        }
    )*};
}

sequential_cases!(
    notebook_input_shape,
    notebook_input_length_dim,
    notebook_batch_input_shape,
    notebook_return_sequences,
    notebook_deep_bidirectional,
    activation_tanh,
    activation_relu,
    activation_sigmoid,
    activation_hard_sigmoid,
    activation_linear,
    activation_elu,
    activation_selu,
    activation_softplus,
    activation_softsign,
    activation_swish,
    activation_gelu,
    no_bias,
    go_backwards_last,
    go_backwards_sequences,
    stacked,
    input_dim_only,
    built_by_predict,
    bidirectional_concat,
    bidirectional_sum,
    bidirectional_mul,
    bidirectional_ave,
    bidirectional_concat_last,
    bidirectional_backward_layer,
    bidirectional_go_backwards_inner,
    bidirectional_stacked_last,
    summary_long_names,
    summary_mixed,
);

#[test]
fn call_initial_state() {
    common::check_layer_call(&load("call_initial_state"));
}

#[test]
fn call_return_state() {
    common::check_layer_call(&load("call_return_state"));
}

#[test]
fn call_return_state_sequences() {
    common::check_layer_call(&load("call_return_state_sequences"));
}

#[test]
fn call_bidirectional_none() {
    common::check_layer_call(&load("call_bidirectional_none"));
}

#[test]
fn call_bidirectional_return_state() {
    common::check_layer_call(&load("call_bidirectional_return_state"));
}

#[test]
fn call_bidirectional_initial_state() {
    common::check_layer_call(&load("call_bidirectional_initial_state"));
}

/// The states a return_state layer reports are its last output (h_T), as in Keras.
#[test]
fn return_state_final_state_is_last_output() {
    let f = load("call_return_state");
    let expected = f.outputs();
    assert_close(
        &expected[0],
        &expected[1],
        "Keras's own h_T equals its output",
    );
    let (_, config) = f.layer_configs().remove(0);
    let mut rnn = common::simple_rnn(&config);
    rnn.build(&[shape(&f.json["input_shape"])]).unwrap();
    rnn.set_weights(&f.weights()).unwrap();
    assert!(rnn.return_state());
    assert_eq!(rnn.output_count(), 2);
}

/// The portable kernels, and AVX2 on an AVX-512 CPU, give these numbers too (the tests above
/// run on the CPU's own).
#[test]
fn every_instruction_set_gives_these_numbers() {
    common::rerun_on_narrower_instruction_sets("every_instruction_set_gives_these_numbers");
}
