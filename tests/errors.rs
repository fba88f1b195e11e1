//! Every bad input gets an `Err` of the right variant with a message that names the layer and
//! quotes the shapes, in Keras's words where Keras has words for it
//! (`tests/fixtures/keras/errors.json`), and a failed call leaves the model as it was.

mod common;
use common::call;

use ndarray::{Array2, Array3, ArrayD, IxDyn};
use seqnn::{
    clear_session, ActivationFn, Bidirectional, Error, Layer, MergeMode, Sequential, Shape,
    SimpleRNN,
};

/// Keras's message for an error case, without TensorFlow's traceback.
fn keras_message(case: &str) -> String {
    let errors = common::load("errors").json;
    errors[case]["core_message"]
        .as_str()
        .unwrap_or_else(|| panic!("no Keras message for {case}"))
        .to_string()
}

fn notebook_model() -> Sequential {
    let mut m = Sequential::new();
    m.add(SimpleRNN::new(3).input_shape((2, 10))).unwrap();
    m
}

#[test]
fn rank_mismatch_on_add_is_keras_message_and_model_unchanged() {
    clear_session();
    let mut m = notebook_model();
    let err = m.add(SimpleRNN::new(3)).unwrap_err();
    assert!(matches!(
        err,
        Error::IncompatibleRank {
            expected: 3,
            found: 2,
            ..
        }
    ));
    assert_eq!(err.to_string(), keras_message("rank_mismatch_stacked_rnn"));
    assert_eq!(m.layers().len(), 1);
    assert_eq!(m.output_shape().unwrap().to_string(), "(None, 3)");
}

#[test]
fn feature_mismatch_on_predict_quotes_both_shapes() {
    clear_session();
    let m = notebook_model();
    let weights = m.get_weights();
    let err = m.predict(&Array3::<f32>::zeros((4, 2, 7))).unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }));
    // Keras shows the batch as None; seqnn shows the shape it was actually given.
    let keras = keras_message("predict_feature_mismatch");
    let prefix = keras.split("found shape=").next().unwrap();
    assert_eq!(err.to_string(), format!("{prefix}found shape=(4, 2, 7)"));
    assert_eq!(m.get_weights(), weights);
}

#[test]
fn rank_mismatch_on_predict_is_a_shape_error_like_keras() {
    let m = notebook_model();
    let err = m.predict(&Array2::<f32>::zeros((4, 10))).unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }));
    let keras = keras_message("predict_rank_mismatch");
    let prefix = keras.split("found shape=").next().unwrap();
    assert_eq!(err.to_string(), format!("{prefix}found shape=(4, 10)"));
}

#[test]
fn other_timesteps_than_declared_are_refused_as_keras_does() {
    let m = notebook_model();
    let err = m.call(&Array3::<f32>::zeros((4, 3, 10))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Input 0 of layer \"sequential\" is incompatible with the layer: expected \
         shape=(None, 2, 10), found shape=(4, 3, 10)"
            .replace("\"sequential\"", &format!("\"{}\"", m.name()))
    );
}

#[test]
fn any_batch_size_goes_on_a_stateless_model_with_a_batch_shape() -> seqnn::Result<()> {
    let mut m = Sequential::new();
    m.add(SimpleRNN::new(3).batch_input_shape((8, 2, 10)))?;
    assert_eq!(
        m.predict(&Array3::<f32>::zeros((3, 2, 10)))?.shape(),
        &[3, 3]
    );
    Ok(())
}

#[test]
fn empty_input_is_an_error() {
    let m = notebook_model();
    let err = m.predict(&Array3::<f32>::zeros((0, 2, 10))).unwrap_err();
    assert!(matches!(err, Error::EmptyInput { .. }));
    assert!(err
        .to_string()
        .starts_with("Expected input data to be non-empty."));
    assert!(err.to_string().contains("(0, 2, 10)"));

    // An unbuilt model does not predict; it stays unbuilt when the data that would build it
    // is empty.
    let mut m = Sequential::new();
    m.add(SimpleRNN::new(3)).unwrap();
    let x = Array3::<f32>::zeros((2, 0, 4));
    assert!(matches!(m.predict(&x), Err(Error::NotBuilt { .. })));
    let err = m.build_from_data(&x).unwrap_err();
    assert!(matches!(err, Error::EmptyInput { .. }));
    assert!(!m.is_built());
}

#[test]
fn summary_and_count_params_of_an_unbuilt_model() {
    let mut m = Sequential::new();
    m.add(SimpleRNN::new(3)).unwrap();
    let err = m.summary().unwrap_err();
    assert!(matches!(err, Error::NotBuilt { .. }));
    assert_eq!(err.to_string(), keras_message("summary_unbuilt"));
    assert!(matches!(m.count_params(), Err(Error::NotBuilt { .. })));
    assert!(m
        .to_string()
        .starts_with("This model has not yet been built."));
    assert!(matches!(
        m.call(&Array3::<f32>::zeros((1, 2, 3))),
        Err(Error::NotBuilt { .. })
    ));
}

#[test]
fn set_weights_with_too_few_arrays() {
    clear_session();
    let mut m = notebook_model();
    let before = m.get_weights();
    let err = m.set_weights(&before[..2]).unwrap_err();
    assert!(matches!(
        err,
        Error::WeightCount {
            expected: 3,
            found: 2,
            ..
        }
    ));
    let keras = keras_message("set_weights_too_few");
    let keras_sentence = keras.split(" Provided weights").next().unwrap();
    assert_eq!(err.to_string(), keras_sentence);
    assert_eq!(m.get_weights(), before);
}

#[test]
fn set_weights_with_a_wrong_shape_changes_nothing() {
    clear_session();
    let mut m = notebook_model();
    let before = m.get_weights();
    let mut bad = before.clone();
    // A valid recurrent kernel, then a wrong kernel: nothing may be written.
    bad[1] = ArrayD::from_elem(IxDyn(&[3, 3]), 0.5);
    bad[0] = ArrayD::zeros(IxDyn(&[7, 3]));
    let err = m.set_weights(&bad).unwrap_err();
    assert!(matches!(err, Error::WeightShape { index: 0, .. }));
    // Keras's sentence names the model; seqnn's names the layer and which of its weights.
    let keras = keras_message("set_weights_wrong_kernel_shape");
    let ours = keras.replace("Layer sequential ", "Layer simple_rnn ");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: weight 0 (kernel) of the layer.",
            ours.trim_end_matches('.')
        )
    );
    assert_eq!(m.get_weights(), before);
}

#[test]
fn layer_set_weights_checks_count_shape_and_build() {
    let mut rnn = SimpleRNN::new(3);
    assert!(matches!(rnn.set_weights(&[]), Err(Error::NotBuilt { .. })));
    rnn.build(&[Shape::new(vec![None, None, Some(2)])]).unwrap();
    let err = rnn
        .set_weights(&[ArrayD::zeros(IxDyn(&[2, 3]))])
        .unwrap_err();
    assert!(matches!(
        err,
        Error::WeightCount {
            expected: 3,
            found: 1,
            ..
        }
    ));
    let err = rnn
        .set_weights(&[
            ArrayD::zeros(IxDyn(&[2, 3])),
            ArrayD::zeros(IxDyn(&[3, 3])),
            ArrayD::zeros(IxDyn(&[4])),
        ])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Layer simple_rnn weight shape (3,) is not compatible with provided weight shape (4,): \
         weight 2 (bias) of the layer."
    );
}

#[test]
fn zero_units_is_refused_with_keras_message() {
    let mut m = Sequential::new();
    let err = m.add(SimpleRNN::new(0).input_shape((2, 10))).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }));
    assert!(err.to_string().contains(&keras_message("units_zero")));
    assert!(m.layers().is_empty());
    // Unbuilt too: refused at add, not at the first predict.
    assert!(m.add(SimpleRNN::new(0)).is_err());
    // And inside a Bidirectional.
    let err = m
        .add(Bidirectional::new(SimpleRNN::new(0)).input_shape((2, 10)))
        .unwrap_err();
    assert!(err
        .to_string()
        .contains("expected a positive integer, got 0"));
}

#[test]
fn unknown_activation_and_merge_mode() {
    let err = "nope".parse::<ActivationFn>().unwrap_err();
    assert!(matches!(
        err,
        Error::UnknownName {
            kind: "activation function",
            ..
        }
    ));
    assert!(err
        .to_string()
        .starts_with(&keras_message("unknown_activation")));
    let err = "nope".parse::<MergeMode>().unwrap_err();
    assert!(matches!(
        err,
        Error::UnknownName {
            kind: "merge mode",
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        keras_message("bidirectional_bad_merge_mode")
    );
    assert!("nope".parse::<seqnn::Initializer>().is_err());
}

#[test]
fn merge_mode_none_is_refused_in_a_sequential() {
    let mut m = Sequential::new();
    let bi = Bidirectional::new(SimpleRNN::new(3).with_return_sequences(true))
        .with_merge_mode(MergeMode::None)
        .input_shape((2, 10));
    let err = m.add(bi).unwrap_err();
    assert!(matches!(err, Error::UnsupportedInModel { .. }));
    assert!(err
        .to_string()
        .ends_with(&keras_message("bidirectional_merge_none_predict")));
    assert!(m.layers().is_empty());
    // Without an input shape Keras only fails at predict; seqnn refuses at add.
    let bi = Bidirectional::new(SimpleRNN::new(3)).with_merge_mode(MergeMode::None);
    assert!(matches!(m.add(bi), Err(Error::UnsupportedInModel { .. })));
}

#[test]
fn return_state_is_refused_in_a_sequential() {
    let mut m = Sequential::new();
    let err = m
        .add(
            SimpleRNN::new(3)
                .with_return_state(true)
                .input_shape((2, 10)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::UnsupportedInModel { .. }));
    assert!(err.to_string().contains("single output tensor"));
}

#[test]
fn duplicate_layer_names() {
    let mut m = Sequential::new();
    m.add(
        SimpleRNN::new(3)
            .with_return_sequences(true)
            .input_shape((2, 10))
            .with_name("rnn"),
    )
    .unwrap();
    let err = m.add(SimpleRNN::new(3).with_name("rnn")).unwrap_err();
    assert!(matches!(err, Error::DuplicateLayerName { .. }));
    assert_eq!(err.to_string(), keras_message("duplicate_layer_names"));
    assert_eq!(m.layers().len(), 1);
}

#[test]
fn input_length_without_input_dim_says_input_dim_is_missing() {
    let mut m = Sequential::new();
    let err = m.add(SimpleRNN::new(3).input_length(2)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }));
    assert!(err.to_string().contains("without input_dim"), "{err}");
    assert!(m.layers().is_empty());
}

#[test]
fn unknown_feature_dimension_is_refused() {
    let mut m = Sequential::new();
    let err = m
        .add(SimpleRNN::new(3).batch_input_shape(Shape::new(vec![None, Some(2), None])))
        .unwrap_err();
    assert!(err.to_string().contains("(None, 2, None)"), "{err}");
}

#[test]
fn backward_layer_must_mirror_the_forward_layer() {
    let mut m = Sequential::new();
    let bi = Bidirectional::new(SimpleRNN::new(3))
        .with_backward_layer(SimpleRNN::new(3))
        .input_shape((2, 10));
    let err = m.add(bi).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }));
    let keras = keras_message("backward_layer_same_go_backwards");
    let sentence = keras.split('.').next().unwrap();
    assert!(err.to_string().contains(sentence), "{err}");

    let bi = Bidirectional::new(SimpleRNN::new(3))
        .with_backward_layer(
            SimpleRNN::new(3)
                .with_go_backwards(true)
                .with_return_sequences(true),
        )
        .input_shape((2, 10));
    let err = m.add(bi).unwrap_err();
    assert!(err.to_string().contains("return_sequences"), "{err}");
    assert!(m.layers().is_empty());
}

#[test]
fn sum_of_different_widths_is_refused_at_add() {
    let mut m = Sequential::new();
    let bi = Bidirectional::new(SimpleRNN::new(4))
        .with_backward_layer(SimpleRNN::new(3).with_go_backwards(true))
        .with_merge_mode(MergeMode::Sum)
        .input_shape((2, 10));
    let err = m.add(bi).unwrap_err();
    assert!(err.to_string().contains("(None, 4) and (None, 3)"), "{err}");
}

#[test]
fn initial_state_of_the_wrong_shape() {
    let mut rnn = SimpleRNN::new(4);
    rnn.build(&[Shape::new(vec![None, None, Some(2)])]).unwrap();
    let x = Array3::<f32>::zeros((3, 5, 2));
    let h0 = Array2::<f32>::zeros((3, 5)).into_dyn();
    let err = call(&rnn, &[x.view().into_dyn(), h0.view()]).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }));
    assert!(
        err.to_string().contains("(3, 4)") && err.to_string().contains("(3, 5)"),
        "{err}"
    );
    // Two states for a SimpleRNN, which has one.
    let h0 = Array2::<f32>::zeros((3, 4)).into_dyn();
    let err = call(&rnn, &[x.view().into_dyn(), h0.view(), h0.view()]).unwrap_err();
    assert!(err.to_string().contains("initial_state"), "{err}");

    let mut bi = Bidirectional::new(SimpleRNN::new(4));
    bi.build(&[Shape::new(vec![None, None, Some(2)])]).unwrap();
    let h0 = Array2::<f32>::zeros((3, 4)).into_dyn();
    let err = call(&bi, &[x.view().into_dyn(), h0.view()]).unwrap_err();
    assert!(
        err.to_string().contains("1 forward and 1 backward"),
        "{err}"
    );
}

#[test]
fn layer_calls_check_build_and_input() {
    let rnn = SimpleRNN::new(4);
    let x = Array3::<f32>::zeros((3, 5, 2));
    assert!(matches!(
        call(&rnn, &[x.view().into_dyn()]),
        Err(Error::NotBuilt { .. })
    ));
    let mut rnn = SimpleRNN::new(4);
    rnn.build(&[Shape::new(vec![None, None, Some(2)])]).unwrap();
    // Built, but without weights yet: the call says so.
    assert!(matches!(
        call(&rnn, &[x.view().into_dyn()]),
        Err(Error::NotBuilt { .. })
    ));
    rnn.initialize();
    let err = call(&rnn, &[ArrayD::zeros(IxDyn(&[3, 2])).view()]).unwrap_err();
    assert!(matches!(
        err,
        Error::IncompatibleRank {
            expected: 3,
            found: 2,
            ..
        }
    ));
    let x7 = Array3::<f32>::zeros((3, 5, 7)).into_dyn();
    let err = call(&rnn, &[x7.view()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Input 0 of layer \"simple_rnn\" is incompatible with the layer: expected \
         shape=(None, None, 2), found shape=(3, 5, 7)"
    );
    // A built layer refuses to be rebuilt for other features.
    assert!(rnn.build(&[Shape::new(vec![None, None, Some(7)])]).is_err());
}

#[test]
fn build_failure_leaves_the_model_unbuilt() {
    let mut m = Sequential::new();
    m.add(SimpleRNN::new(3)).unwrap();
    m.add(SimpleRNN::new(3)).unwrap();
    // The second SimpleRNN gets a 2-D input: refused, and the first layer stays unbuilt.
    let err = m
        .build(Shape::new(vec![None, Some(2), Some(10)]))
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleRank { .. }));
    assert!(!m.is_built());
    assert!(!m.layers()[0].is_built());
    assert!(m.get_weights().is_empty());
    let err = Sequential::new().build((2, 10)).unwrap_err();
    assert!(err.to_string().contains("no layers"));
}

#[test]
fn get_layer_names_what_exists() {
    clear_session();
    let m = notebook_model();
    assert_eq!(m.get_layer("simple_rnn").unwrap().class_name(), "SimpleRNN");
    let err = m.get_layer("lstm").unwrap_err();
    assert!(matches!(err, Error::NoSuchLayer { .. }));
    assert_eq!(
        err.to_string(),
        "No such layer: lstm. Existing layers are: [simple_rnn]."
    );
}

#[test]
fn bidirectional_without_merge_returns_both_directions_but_not_in_a_sequential() {
    let mut bi = Bidirectional::new(SimpleRNN::new(2)).with_merge_mode(MergeMode::None);
    bi.build(&[Shape::new(vec![None, None, Some(2)])]).unwrap();
    bi.initialize();
    let out = call(&bi, &[ArrayD::zeros(IxDyn(&[1, 3, 2])).view()]).unwrap();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|o| o.shape() == [1, 2]));
    assert!(bi.backward_layer().go_backwards());
    let err = Sequential::new().add(bi.input_shape((3, 2))).unwrap_err();
    assert!(matches!(err, Error::UnsupportedInModel { .. }));
}
