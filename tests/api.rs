//! The surface a Rust developer reaches for: getters named after Keras's attributes, models
//! built from a list, layers changed in place, `pop`, errors with their sources.

mod common;

use ndarray::{Array2, Array3, ArrayD, IxDyn};
use seqnn::{
    ActivationFn, Bidirectional, Dense, Embedding, Error, Initializer, Layer, MergeMode,
    RecurrentLayer, Sequential, SimpleRNN, GRU, LSTM,
};

#[test]
fn getters_are_named_after_keras_attributes_and_report_the_builders() {
    let lstm = LSTM::new(7)
        .with_name("encoder")
        .with_trainable(false)
        .with_return_sequences(true)
        .with_return_state(true)
        .with_go_backwards(true)
        .with_activation(ActivationFn::Relu)
        .with_recurrent_activation(ActivationFn::HardSigmoid)
        .with_use_bias(false)
        .with_unit_forget_bias(false)
        .with_kernel_initializer(Initializer::HeNormal);
    assert_eq!(lstm.name(), "encoder");
    assert!(!lstm.trainable());
    assert_eq!(lstm.units(), 7);
    assert!(lstm.return_sequences() && lstm.return_state() && lstm.go_backwards());
    assert!(!lstm.stateful());
    assert_eq!(lstm.activation(), ActivationFn::Relu);
    assert_eq!(lstm.recurrent_activation(), ActivationFn::HardSigmoid);
    assert!(!lstm.use_bias() && !lstm.unit_forget_bias());
    assert_eq!(lstm.kernel_initializer(), Initializer::HeNormal);
    assert_eq!(lstm.recurrent_initializer(), Initializer::Orthogonal);
    // The object-safe trait says the same.
    let r: &dyn RecurrentLayer = &lstm;
    assert!(r.return_sequences() && r.return_state() && r.go_backwards());
    assert_eq!(r.state_count(), 2);

    let gru = GRU::new(3).with_reset_after(false);
    assert!(!gru.reset_after());
    let dense = Dense::new(4).with_activation(ActivationFn::Softmax);
    assert_eq!(
        (dense.units(), dense.activation(), dense.use_bias()),
        (4, ActivationFn::Softmax, true)
    );
    let emb = Embedding::new(100, 8).with_mask_zero(true);
    assert_eq!(
        (emb.input_dim(), emb.output_dim(), emb.mask_zero()),
        (100, 8, true)
    );
    let bi = Bidirectional::new(SimpleRNN::new(2)).with_merge_mode(MergeMode::Sum);
    assert_eq!(bi.merge_mode(), MergeMode::Sum);
    assert!(bi.backward_layer().go_backwards() && !bi.forward_layer().go_backwards());
}

#[test]
fn a_model_from_a_list_of_layers_builds_as_keras_does() -> seqnn::Result<()> {
    let model = Sequential::from(vec![
        Box::new(SimpleRNN::new(3).input_shape((2, 10))) as Box<dyn Layer>,
        Box::new(Dense::new(1)),
    ]);
    assert!(model.is_built());
    assert_eq!(model.count_params()?, 42 + 4);
    assert_eq!(model.layers()[1].name(), "dense");

    // A stack that cannot be built stays unbuilt; building says why.
    let mut bad = Sequential::from(vec![
        Box::new(Dense::new(3).with_name("same").input_dim(2)) as Box<dyn Layer>,
        Box::new(Dense::new(1).with_name("same")),
    ]);
    assert!(!bad.is_built());
    let err = bad
        .build(seqnn::Shape::new(vec![None, Some(2)]))
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateLayerName { .. }), "{err}");
    Ok(())
}

#[test]
fn one_layer_changes_in_place_without_touching_the_flat_weight_list() -> seqnn::Result<()> {
    let mut model = Sequential::new();
    model.add(Embedding::new(5, 3).input_shape((4,)).with_name("emb"))?;
    model.add(LSTM::new(2))?;
    // Pretrained embeddings, frozen.
    let table = ArrayD::from_shape_fn(IxDyn(&[5, 3]), |i| (i[0] * 3 + i[1]) as f32 * 0.1);
    let emb = model.get_layer_mut("emb")?;
    emb.set_weights(std::slice::from_ref(&table))?;
    emb.set_trainable(false);
    assert_eq!(model.get_weights()[0], table);
    assert!(!model.get_layer("emb")?.trainable());
    assert!(model.summary()?.contains("Non-trainable params: 15"));
    // A wrong shape names the layer and its weight, and changes nothing.
    let err = model
        .get_layer_mut("emb")?
        .set_weights(&[ArrayD::zeros(IxDyn(&[4, 3]))])
        .unwrap_err();
    assert!(matches!(err, Error::WeightShape { index: 0, .. }));
    assert!(err.to_string().contains("emb") && err.to_string().contains("embeddings"));
    assert_eq!(model.get_weights()[0], table);
    for layer in model.layers_mut() {
        layer.set_trainable(true);
    }
    assert!(model.summary()?.contains("Non-trainable params: 0"));
    assert!(model.get_layer_mut("nope").is_err());
    Ok(())
}

#[test]
fn pop_removes_the_last_layer_as_keras_does() -> seqnn::Result<()> {
    let mut model = Sequential::new();
    model.add(SimpleRNN::new(3).input_shape((2, 10)))?;
    model.add(Dense::new(1))?;
    let dense = model.pop()?;
    assert_eq!(dense.class_name(), "Dense");
    assert_eq!(model.output_shape().unwrap().to_string(), "(None, 3)");
    assert_eq!(
        model.predict(&Array3::<f32>::zeros((2, 2, 10)))?.shape(),
        &[2, 3]
    );
    model.pop()?;
    let err = model.pop().unwrap_err();
    assert!(err
        .to_string()
        .contains("There are no layers in the model."));
    assert!(!model.is_built());
    Ok(())
}

#[cfg(feature = "keras")]
#[test]
fn a_size_error_in_a_file_keeps_the_layers_error_underneath() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hostile/lstm_units_2pow40.k3.keras");
    let err = seqnn::load_model(&path).unwrap_err();
    assert!(matches!(err, Error::File { .. }), "{err}");
    let source = std::error::Error::source(&err).expect("a source");
    let inner = source.downcast_ref::<Error>().expect("seqnn's own error");
    assert!(matches!(inner, Error::TooLarge { .. }), "{inner}");
}

#[test]
fn calls_take_a_context_and_report_masks_and_states() -> seqnn::Result<()> {
    let mut rnn = SimpleRNN::new(2)
        .with_return_sequences(true)
        .with_return_state(true);
    rnn.build(&[seqnn::Shape::new(vec![None, None, Some(1)])])?;
    rnn.initialize();
    let x = Array3::<f32>::ones((1, 3, 1)).into_dyn();
    let h0 = Array2::<f32>::zeros((1, 2)).into_dyn();
    let mask = ndarray::array![[true, true, false]];
    let mut ctx = seqnn::CallContext::inference().with_masks(vec![Some(mask.clone())]);
    let out = rnn.call(&[x.view(), h0.view()], &mut ctx)?;
    assert_eq!(out.len(), 2);
    // The last step is masked: the final state is the second step's output.
    assert_eq!(
        out[1],
        out[0].slice(ndarray::s![.., 1, ..]).to_owned().into_dyn()
    );
    let masks = ctx.output_masks(&rnn, out.len());
    assert_eq!(masks, vec![Some(mask), None]);
    Ok(())
}
