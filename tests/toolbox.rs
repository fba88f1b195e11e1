//! LSTM, GRU, Dense, Embedding, the shape layers, masking and stateful RNNs, against real
//! tf_keras 2.21: `tests/fixtures/toolbox/*.json`, written by
//! `tools/keras_reference/generate_toolbox.py` (see the README there).

mod common;

use common::{assert_close, check_sequential};
use seqnn::Layer;

use common::toolbox;

macro_rules! sequential_cases {
    ($($case:ident),* $(,)?) => {$(
        #[test]
        fn $case() {
            check_sequential(&toolbox(stringify!($case)));
        }
    )*};
}

sequential_cases!(
    lstm_last,
    lstm_sequences,
    lstm_go_backwards,
    lstm_no_unit_forget_bias,
    lstm_activations,
    lstm_no_bias,
    lstm_stacked,
    lstm_bidirectional_concat,
    lstm_bidirectional_sum,
    gru_last,
    gru_sequences,
    gru_reset_before,
    gru_reset_before_sequences,
    gru_go_backwards,
    gru_no_bias_after,
    gru_no_bias_before,
    gru_activations,
    gru_bidirectional_ave,
    gru_stacked,
    dense_after_rnn,
    dense_3d,
    embedding_lstm,
    time_distributed,
    repeat_vector_seq2seq,
    flatten_dropout_activation,
    text_classifier,
    tagger,
    mask_embedding_lstm_right,
    mask_embedding_lstm_left,
    mask_embedding_lstm_holes,
    mask_embedding_lstm_last_right,
    mask_embedding_lstm_last_left,
    mask_embedding_gru_right,
    mask_embedding_simple_rnn_left,
    mask_embedding_bidirectional_left,
    mask_embedding_bidirectional_right,
    mask_embedding_bidirectional_last_right,
    mask_masking_layer,
    mask_masking_gru_last,
    mask_a_row_fully_masked,
    mask_a_row_fully_masked_last,
    mask_go_backwards,
);

#[test]
fn call_lstm_state() {
    common::check_layer_call(&toolbox("call_lstm_state"));
}

#[test]
fn call_gru_state() {
    common::check_layer_call(&toolbox("call_gru_state"));
}

#[test]
fn call_gru_before_state() {
    common::check_layer_call(&toolbox("call_gru_before_state"));
}

#[test]
fn call_bidirectional_lstm_state() {
    common::check_layer_call(&toolbox("call_bidirectional_lstm_state"));
}

#[test]
fn call_bidirectional_gru_state() {
    common::check_layer_call(&toolbox("call_bidirectional_gru_state"));
}

/// Three consecutive batches carry the state over, `reset_states` starts afresh, and
/// `call(&self)` refuses to run a stateful model.
fn check_stateful(case: &str) {
    let f = toolbox(case);
    let mut m = common::model(&f);
    assert!(m.is_stateful());
    let inputs = f.arrays("inputs");
    let outputs = f.outputs();
    for (step, (x, y)) in inputs.iter().zip(&outputs).enumerate().take(3) {
        let got = m.predict_stateful(x).unwrap();
        assert_close(&got, y, &format!("{case} step {step}"));
    }
    m.reset_states();
    assert_close(
        &m.predict_stateful(&inputs[3]).unwrap(),
        &outputs[3],
        &format!("{case} after reset"),
    );
    assert!(m.call(&inputs[0]).is_err());
    assert!(m.predict(&inputs[0]).is_err());
    assert_eq!(m.summary().unwrap(), common::notebook_layout(&f.summary()));
}

#[test]
fn stateful_simple_rnn() {
    check_stateful("stateful_simple_rnn");
}

#[test]
fn stateful_lstm() {
    check_stateful("stateful_lstm");
}

#[test]
fn stateful_gru() {
    check_stateful("stateful_gru");
}

/// Keras's message for an error case, without TensorFlow's traceback.
fn keras_message(case: &str) -> String {
    let errors = toolbox("errors").json;
    errors[case]["core_message"]
        .as_str()
        .unwrap_or_else(|| panic!("no Keras message for {case}"))
        .to_string()
}

fn embedding_model() -> seqnn::Sequential {
    let mut m = seqnn::Sequential::new();
    m.add(seqnn::Embedding::new(20, 4).input_length(6)).unwrap();
    m.add(seqnn::LSTM::new(3)).unwrap();
    m
}

#[test]
fn out_of_range_ids_name_the_id_its_position_and_the_vocabulary() {
    let m = embedding_model();
    for (id, case) in [
        (25.0_f32, "embedding_id_too_large"),
        (20.0, "embedding_id_equal_input_dim"),
    ] {
        let mut x = ndarray::Array2::<f32>::from_elem((2, 6), 1.0);
        x[[0, 2]] = id;
        let err = m.call(&x).unwrap_err();
        assert!(matches!(err, seqnn::Error::InvalidArgument { .. }), "{err}");
        // Keras's own words: "indices[0,2] = 25 is not in [0, 20)"
        assert_eq!(
            err.to_string(),
            format!("layer \"embedding\": {}", keras_message(case))
        );
    }
}

#[test]
fn negative_and_fractional_ids_are_refused() {
    let m = embedding_model();
    let mut x = ndarray::Array2::<f32>::from_elem((2, 6), 1.0);
    x[[1, 3]] = -1.0;
    let msg = m.call(&x).unwrap_err().to_string();
    let keras = keras_message("embedding_negative_id").replace("[0,2]", "[1,3]");
    assert_eq!(msg, format!("layer \"embedding\": {keras}"));
    // Keras truncates 2.5 to 2 silently; seqnn refuses a fractional id.
    let errors = toolbox("errors").json;
    assert_eq!(errors["embedding_fractional_id"]["accepted"], true);
    x[[1, 3]] = 2.5;
    let msg = m.call(&x).unwrap_err().to_string();
    assert!(
        msg.contains("indices[1,3] = 2.5") && msg.contains("[0, 20)"),
        "{msg}"
    );
    x[[1, 3]] = f32::NAN;
    assert!(m.call(&x).is_err());
}

#[test]
fn stateful_without_a_batch_size_says_to_give_one() {
    let mut m = seqnn::Sequential::new();
    let err = m
        .add(
            seqnn::SimpleRNN::new(3)
                .with_stateful(true)
                .input_shape((5, 2)),
        )
        .unwrap_err();
    assert!(matches!(err, seqnn::Error::InvalidArgument { .. }));
    let keras = keras_message("stateful_without_batch_size");
    let first_sentence = keras.split(" Specify").next().unwrap();
    assert!(err.to_string().contains(first_sentence), "{err}");
    assert!(err.to_string().contains("batch_input_shape"), "{err}");
    assert!(m.layers().is_empty());
}

#[test]
fn stateful_model_refuses_another_batch_size_and_keeps_its_state() {
    let f = toolbox("stateful_gru");
    let mut m = common::model(&f);
    let inputs = f.arrays("inputs");
    let y1 = m.predict_stateful(&inputs[0]).unwrap();
    let states = m.layers()[0].states();
    let wrong = ndarray::Array3::<f32>::zeros((4, 5, 2));
    let err = m.predict_stateful(&wrong).unwrap_err();
    assert!(err.to_string().contains("batches of 3"), "{err}");
    assert_eq!(m.layers()[0].states(), states);
    // The state after the failed call is the one after x1: x2 still gives Keras's y2.
    assert_close(
        &m.predict_stateful(&inputs[1]).unwrap(),
        &f.outputs()[1],
        "y2 after a refused call",
    );
    assert_close(&y1, &f.outputs()[0], "y1");
}

#[test]
fn zero_units_and_sizes_are_refused_with_keras_messages() {
    let mut m = seqnn::Sequential::new();
    for layer in [
        Box::new(seqnn::LSTM::new(0).input_shape((5, 2))) as Box<dyn Layer>,
        Box::new(seqnn::GRU::new(0).input_shape((5, 2))),
    ] {
        let err = m.add_boxed(layer).unwrap_err();
        assert!(
            err.to_string().contains(&keras_message("lstm_units_zero")),
            "{err}"
        );
    }
    let err = m
        .add(seqnn::Embedding::new(0, 4).input_length(3))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&keras_message("embedding_input_dim_zero")),
        "{err}"
    );
    assert!(m.layers().is_empty());
}

/// Keras accepts Flatten and Dense after Embedding(mask_zero=True): Flatten drops the mask, Dense
/// carries it. seqnn does the same, and the numbers are Keras's.
#[test]
fn layers_without_mask_support_drop_the_mask_as_keras() {
    let errors = toolbox("errors").json;
    for case in ["mask_zero_flatten_dense", "mask_zero_dense"] {
        assert_eq!(errors[case]["accepted"], true, "{case}");
    }
    let mut m = seqnn::Sequential::new();
    m.add(
        seqnn::Embedding::new(10, 4)
            .input_length(6)
            .with_mask_zero(true),
    )
    .unwrap();
    m.add(seqnn::Flatten::new()).unwrap();
    m.add(seqnn::Dense::new(2)).unwrap();
    let y = m
        .call(&ndarray::array![[1.0_f32, 2.0, 0.0, 0.0, 0.0, 0.0]])
        .unwrap();
    assert_eq!(y.shape(), &[1, 2]);
}

#[test]
fn stateful_bidirectional() {
    check_stateful("stateful_bidirectional");
}

/// The portable kernels, and AVX2 on an AVX-512 CPU, give these numbers too (the tests above
/// run on the CPU's own).
#[test]
fn every_instruction_set_gives_these_numbers() {
    common::rerun_on_narrower_instruction_sets("every_instruction_set_gives_these_numbers");
}
