//! Outputs, shapes, parameter counts and summaries compared with real tf_keras 2.21.
//!
//! Every expected number comes from `tests/fixtures/keras/*.json`, written by
//! `tools/keras_reference/generate_core.py` (see the README there): Keras built the model, set
//! random non-zero weights and ran `predict`. Here seqnn builds the same model from the Keras
//! config, takes the same weights, and must give the same outputs to 1e-5.

mod common;

use common::{assert_close, bidirectional, call_recurrent, load, shape};
use ndarray::Ix3;
use seqnn::{Layer, RecurrentLayer};

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

/// A standalone SimpleRNN called with initial states and/or return_state.
fn check_rnn_call(case: &str) {
    let f = load(case);
    let (class, config) = f.layer_configs().remove(0);
    assert_eq!(class, "SimpleRNN");
    let mut rnn = common::simple_rnn(&config);
    rnn.build(&shape(&f.json["input_shape"])).unwrap();
    rnn.set_weights(&f.weights()).unwrap();
    let got = call_recurrent(&rnn, &f);
    let expected = f.outputs();
    assert_eq!(got.len(), expected.len(), "{case}: output count");
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_close(g, e, &format!("{case} output {i}"));
    }
}

/// A standalone Bidirectional called with initial states, return_state or merge mode none.
fn check_bidirectional_call(case: &str) {
    let f = load(case);
    let (class, config) = f.layer_configs().remove(0);
    assert_eq!(class, "Bidirectional");
    let mut bi = bidirectional(&config);
    bi.build(&shape(&f.json["input_shape"])).unwrap();
    bi.set_weights(&f.weights()).unwrap();
    let inputs = f.arrays("inputs");
    let x = inputs[0].clone().into_dimensionality::<Ix3>().unwrap();
    let init = common::states(&inputs[1..]);
    let got = bi
        .call_with_state(x.view(), (!init.is_empty()).then_some(init.as_slice()))
        .unwrap()
        .into_vec();
    let expected = f.outputs();
    assert_eq!(got.len(), expected.len(), "{case}: output count");
    assert_eq!(
        bi.output_count(),
        expected.len(),
        "{case}: declared output count"
    );
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_close(g, e, &format!("{case} output {i}"));
    }
}

#[test]
fn call_initial_state() {
    check_rnn_call("call_initial_state");
}

#[test]
fn call_return_state() {
    check_rnn_call("call_return_state");
}

#[test]
fn call_return_state_sequences() {
    check_rnn_call("call_return_state_sequences");
}

#[test]
fn call_bidirectional_none() {
    check_bidirectional_call("call_bidirectional_none");
}

#[test]
fn call_bidirectional_return_state() {
    check_bidirectional_call("call_bidirectional_return_state");
}

#[test]
fn call_bidirectional_initial_state() {
    check_bidirectional_call("call_bidirectional_initial_state");
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
    rnn.build(&shape(&f.json["input_shape"])).unwrap();
    rnn.set_weights(&f.weights()).unwrap();
    assert!(rnn.returns_state());
    assert_eq!(rnn.output_count(), 2);
}
