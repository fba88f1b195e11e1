//! `predict` as Keras does it: in batches that change nothing in the numbers, integer ids for
//! an Embedding, stateful models through `predict_stateful`, and a model shared by threads.
//! Expected numbers are Keras's (`tests/fixtures/toolbox/`, from `generate_toolbox.py`).

mod common;

use std::sync::Arc;

use common::{assert_close, toolbox};
use ndarray::{concatenate, Array2, ArrayD, Axis};
use seqnn::Error;

/// `x` repeated `n` times along the batch.
fn tiled(x: &ArrayD<f32>, n: usize) -> ArrayD<f32> {
    let views = vec![x.view(); n];
    concatenate(Axis(0), &views).expect("same shapes")
}

#[test]
fn every_batch_size_gives_keras_numbers_and_the_same_bits() {
    for case in [
        "text_classifier",
        "mask_embedding_bidirectional_left",
        "lstm_stacked",
    ] {
        let f = toolbox(case);
        let m = common::model(&f);
        // 4 samples from Keras, repeated to 604: batches of 1, 7, 32 and the model's own choice
        // all leave remainders.
        let x = tiled(&f.input(), 151);
        let expected = tiled(&f.outputs()[0], 151);
        let whole = m.call(&x).expect("one batch");
        assert_close(&whole, &expected, case);
        assert_eq!(m.predict(&x).expect("predict"), whole, "{case}: predict");
        for batch in [1, 7, 32, 1000] {
            let y = m.predict_batched(&x, batch).expect("batched");
            assert_eq!(y, whole, "{case}: batches of {batch}");
        }
    }
}

#[test]
fn integer_ids_are_taken_exactly_and_big_ones_refused() {
    let f = toolbox("text_classifier");
    let m = common::model(&f);
    let x = f.input();
    let expected = &f.outputs()[0];
    let as_i64 = x.mapv(|v| v as i64);
    assert_close(&m.predict(&as_i64).unwrap(), expected, "i64 ids");
    assert_close(
        &m.predict(&x.mapv(|v| v as i32)).unwrap(),
        expected,
        "i32 ids",
    );
    assert_close(
        &m.predict(&x.mapv(|v| v as u32)).unwrap(),
        expected,
        "u32 ids",
    );
    assert_close(&m.call(&as_i64).unwrap(), expected, "call on ids");

    let mut big = as_i64.clone();
    big[[1, 2]] = (1 << 24) + 1;
    let err = m.predict(&big).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }));
    assert!(err.to_string().contains("[1, 2]"), "{err}");
    assert!(err.to_string().contains("2^24"), "{err}");
    // An id the vocabulary lacks is the Embedding's error, in Keras's words.
    let mut unknown = as_i64;
    unknown[[0, 0]] = 1_000;
    let err = m.predict(&unknown).unwrap_err();
    assert!(err.to_string().contains("is not in [0, "), "{err}");
}

#[test]
fn a_batch_size_of_zero_is_refused() {
    let f = toolbox("text_classifier");
    let m = common::model(&f);
    let err = m.predict_batched(&f.input(), 0).unwrap_err();
    assert!(err.to_string().contains("batch_size"), "{err}");
}

#[test]
fn a_stateful_model_runs_its_batches_in_order_through_predict_stateful() {
    let f = toolbox("stateful_gru");
    let mut m = common::model(&f);
    let inputs = f.arrays("inputs");
    let outputs = f.outputs();
    // Keras's three consecutive calls, as one input of three batches.
    let x = concatenate(
        Axis(0),
        &[inputs[0].view(), inputs[1].view(), inputs[2].view()],
    )
    .expect("same shapes");
    let expected = concatenate(
        Axis(0),
        &[outputs[0].view(), outputs[1].view(), outputs[2].view()],
    )
    .expect("same shapes");
    assert!(
        m.predict(&x).is_err(),
        "predict(&self) refuses a stateful model"
    );
    assert_close(&m.predict_stateful(&x).unwrap(), &expected, "three batches");

    // 4 samples are not a number of batches of 3: refused, and the states stay.
    m.reset_states();
    m.predict_stateful(&inputs[0]).unwrap();
    let states = m.layers()[0].states();
    let four = inputs[1].slice_axis(Axis(0), ndarray::Slice::from(0..2));
    let four = concatenate(Axis(0), &[inputs[1].view(), four]).expect("same shapes");
    let err = m.predict_stateful(&four).unwrap_err();
    assert!(err.to_string().contains("multiple of 3"), "{err}");
    assert_eq!(m.layers()[0].states(), states);
    assert_close(&m.predict_stateful(&inputs[1]).unwrap(), &outputs[1], "y2");
}

#[test]
fn a_failed_batch_leaves_the_states_as_they_were() {
    let mut m = seqnn::Sequential::new();
    m.add(seqnn::Embedding::new(10, 2).batch_input_shape((3, 5)))
        .unwrap();
    m.add(seqnn::GRU::new(4).with_stateful(true)).unwrap();
    let ids = |v: i64| ndarray::Array2::<i64>::from_elem((3, 5), v);
    m.predict_stateful(&ids(1)).unwrap();
    let before = m.layers()[1].states();
    // Three batches; the third holds an id the vocabulary lacks, after two batches ran.
    let x = concatenate(Axis(0), &[ids(2).view(), ids(3).view(), ids(12).view()]).unwrap();
    let err = m.predict_stateful(&x).unwrap_err();
    assert!(err.to_string().contains("is not in [0, 10)"), "{err}");
    assert_eq!(m.layers()[1].states(), before);
}

#[test]
fn one_model_predicts_from_many_threads() {
    let f = toolbox("text_classifier");
    let m = Arc::new(common::model(&f));
    let x = tiled(&f.input(), 64);
    let expected = tiled(&f.outputs()[0], 64);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (m, x) = (Arc::clone(&m), x.clone());
            std::thread::spawn(move || m.predict(&x).expect("predict"))
        })
        .collect();
    for h in handles {
        assert_close(&h.join().expect("thread"), &expected, "threads");
    }
}

#[test]
fn an_unbuilt_model_says_how_to_build_it() {
    let mut m = seqnn::Sequential::new();
    m.add(seqnn::Dense::new(2)).unwrap();
    let x = Array2::<f32>::zeros((3, 4));
    let err = m.predict(&x).unwrap_err();
    assert!(matches!(err, Error::NotBuilt { .. }));
    m.build_from_data(&x).unwrap();
    assert_eq!(m.predict(&x).unwrap().shape(), &[3, 2]);
}

/// An inference call projects a long sequence's inputs a block of timesteps at a time (so that
/// its working set stays bounded), a training call all at once for its trace: both give the
/// same numbers, for every recurrent layer, in both directions, with and without a mask, and
/// with a last block shorter than the others.
#[test]
fn long_sequences_project_in_blocks_with_the_numbers_of_one_projection() {
    use ndarray::Array3;
    use seqnn::{CallContext, Layer, Shape, SimpleRNN, GRU, LSTM};
    // 64 rows of 4·256 gate values: a few timesteps per block, and 37 is no multiple of it.
    let (batch, timesteps, features) = (64, 37, 16);
    let x = Array3::from_shape_fn((batch, timesteps, features), |(b, t, f)| {
        ((b * 31 + t * 7 + f * 3) % 23) as f32 / 23.0 - 0.5
    })
    .into_dyn();
    let mask = Array2::from_shape_fn((batch, timesteps), |(b, t)| t < timesteps - b % 9);
    for go_backwards in [false, true] {
        for masked in [false, true] {
            let layers: Vec<Box<dyn Layer>> = vec![
                Box::new(
                    LSTM::new(256)
                        .with_return_sequences(true)
                        .with_go_backwards(go_backwards),
                ),
                Box::new(GRU::new(200).with_go_backwards(go_backwards)),
                Box::new(
                    SimpleRNN::new(300)
                        .with_return_sequences(true)
                        .with_go_backwards(go_backwards),
                ),
            ];
            for mut layer in layers {
                seqnn::set_random_seed(5);
                layer
                    .build(&[Shape::new(vec![None, None, Some(features)])])
                    .unwrap();
                layer.initialize();
                let masks = vec![masked.then(|| mask.clone())];
                let mut inference = CallContext::inference().with_masks(masks.clone());
                let mut training = CallContext::training().with_masks(masks);
                let a = layer.call(&[x.view()], &mut inference).unwrap();
                let b = layer.call(&[x.view()], &mut training).unwrap();
                let what = format!(
                    "{} go_backwards={go_backwards} masked={masked}",
                    layer.name()
                );
                assert_eq!(a[0].shape(), b[0].shape(), "{what}");
                assert_close(&a[0], &b[0], &what);
            }
        }
    }
}
