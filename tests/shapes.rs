//! Shape inference and parameter counts against Keras's closed-form rules, over a table of
//! configurations and over random ones; and the batched driver against a plain per-timestep
//! reference loop.

mod common;

use approx::assert_abs_diff_eq;
use ndarray::{s, Array1, Array2, Array3, ArrayD, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seqnn::{ActivationFn, Bidirectional, Layer, MergeMode, Sequential, Shape, SimpleRNN};

/// Keras's SimpleRNN parameter count: kernel, recurrent kernel, bias.
fn rnn_params(input_dim: usize, units: usize, bias: bool) -> usize {
    units * input_dim + units * units + if bias { units } else { 0 }
}

fn shape(dims: &[Option<usize>]) -> Shape {
    Shape::new(dims.to_vec())
}

#[test]
fn configuration_table() -> seqnn::Result<()> {
    type Build = fn() -> seqnn::Result<Sequential>;
    let n = None;
    let table: Vec<(&str, Build, Shape, usize)> = vec![
        (
            "last output",
            || {
                let mut m = Sequential::new();
                m.add(SimpleRNN::new(4).input_shape((5, 3)))?;
                Ok(m)
            },
            shape(&[n, Some(4)]),
            rnn_params(3, 4, true),
        ),
        (
            "return_sequences",
            || {
                let mut m = Sequential::new();
                m.add(
                    SimpleRNN::new(4)
                        .with_return_sequences(true)
                        .input_shape((5, 3)),
                )?;
                Ok(m)
            },
            shape(&[n, Some(5), Some(4)]),
            rnn_params(3, 4, true),
        ),
        (
            "use_bias off",
            || {
                let mut m = Sequential::new();
                m.add(SimpleRNN::new(4).with_use_bias(false).input_shape((5, 3)))?;
                Ok(m)
            },
            shape(&[n, Some(4)]),
            rnn_params(3, 4, false),
        ),
        (
            "input_dim alone",
            || {
                let mut m = Sequential::new();
                m.add(SimpleRNN::new(4).with_return_sequences(true).input_dim(3))?;
                Ok(m)
            },
            shape(&[n, n, Some(4)]),
            rnn_params(3, 4, true),
        ),
        (
            "stacked",
            || {
                let mut m = Sequential::new();
                m.add(
                    SimpleRNN::new(6)
                        .with_return_sequences(true)
                        .input_shape((7, 3)),
                )?;
                m.add(SimpleRNN::new(5).with_return_sequences(true))?;
                m.add(SimpleRNN::new(4))?;
                Ok(m)
            },
            shape(&[n, Some(4)]),
            rnn_params(3, 6, true) + rnn_params(6, 5, true) + rnn_params(5, 4, true),
        ),
        (
            "bidirectional concat",
            || {
                let mut m = Sequential::new();
                m.add(
                    Bidirectional::new(SimpleRNN::new(4).with_return_sequences(true))
                        .input_shape((5, 3)),
                )?;
                Ok(m)
            },
            shape(&[n, Some(5), Some(8)]),
            2 * rnn_params(3, 4, true),
        ),
        (
            "bidirectional sum",
            || {
                let mut m = Sequential::new();
                m.add(
                    Bidirectional::new(SimpleRNN::new(4))
                        .with_merge_mode(MergeMode::Sum)
                        .input_shape((5, 3)),
                )?;
                Ok(m)
            },
            shape(&[n, Some(4)]),
            2 * rnn_params(3, 4, true),
        ),
        (
            "bidirectional mul",
            || {
                let mut m = Sequential::new();
                m.add(
                    Bidirectional::new(SimpleRNN::new(4).with_return_sequences(true))
                        .with_merge_mode(MergeMode::Mul)
                        .batch_input_shape((2, 5, 3)),
                )?;
                Ok(m)
            },
            shape(&[Some(2), Some(5), Some(4)]),
            2 * rnn_params(3, 4, true),
        ),
        (
            "bidirectional ave over a stack",
            || {
                let mut m = Sequential::new();
                m.add(
                    Bidirectional::new(SimpleRNN::new(4).with_return_sequences(true))
                        .input_shape((5, 3)),
                )?;
                m.add(Bidirectional::new(SimpleRNN::new(2)).with_merge_mode(MergeMode::Ave))?;
                Ok(m)
            },
            shape(&[n, Some(2)]),
            2 * rnn_params(3, 4, true) + 2 * rnn_params(8, 2, true),
        ),
    ];
    for (what, build, out, params) in table {
        let m = build()?;
        assert_eq!(m.output_shape(), Some(out), "{what}");
        assert_eq!(m.count_params()?, params, "{what}");
        assert_eq!(
            m.get_weights().iter().map(|w| w.len()).sum::<usize>(),
            params,
            "{what}"
        );
    }
    Ok(())
}

#[test]
fn unbuilt_model_is_built_from_data() -> seqnn::Result<()> {
    let mut m = Sequential::new();
    m.add(SimpleRNN::new(3).with_return_sequences(true))?;
    m.add(Bidirectional::new(SimpleRNN::new(2)))?;
    assert!(!m.is_built());
    assert_eq!(m.output_shape(), None);
    let x = Array3::<f32>::zeros((2, 5, 7));
    assert!(matches!(m.predict(&x), Err(seqnn::Error::NotBuilt { .. })));
    m.build_from_data(&x)?;
    let y = m.predict(&x)?;
    assert_eq!(y.shape(), &[2, 4]);
    assert!(m.is_built());
    // As Keras records it: the batch unknown, the rest from the data.
    assert_eq!(m.input_shape().unwrap().to_string(), "(None, 5, 7)");
    assert_eq!(
        m.count_params()?,
        rnn_params(7, 3, true) + 2 * rnn_params(3, 2, true)
    );
    // Keras relaxes an inferred time axis: other lengths still run.
    assert_eq!(
        m.predict(&Array3::<f32>::zeros((3, 6, 7)))?.shape(),
        &[3, 4]
    );
    Ok(())
}

/// Random configurations: shapes and counts follow the closed-form rules, and a forward pass
/// produces the inferred shape.
#[test]
fn random_configurations_follow_the_closed_form_rules() -> seqnn::Result<()> {
    let mut rng = StdRng::seed_from_u64(20261129);
    let modes = [
        MergeMode::Concat,
        MergeMode::Sum,
        MergeMode::Mul,
        MergeMode::Ave,
    ];
    for case in 0..150 {
        let timesteps = rng.random_range(1..7);
        let input_dim = rng.random_range(1..6);
        let batch = rng.random_range(1..4);
        let fixed_time = rng.random_bool(0.7);
        let depth = rng.random_range(1..4);
        let mut m = Sequential::new();
        let mut features = input_dim;
        let mut params = 0;
        let mut last_sequences = false;
        for i in 0..depth {
            let units = rng.random_range(1..6);
            let sequences = i + 1 < depth || rng.random_bool(0.5);
            let bias = rng.random_bool(0.8);
            let rnn = SimpleRNN::new(units)
                .with_return_sequences(sequences)
                .with_use_bias(bias)
                .with_go_backwards(rng.random_bool(0.3));
            let wrap = rng.random_bool(0.5);
            let layer: Box<dyn Layer> = if wrap {
                let mode = modes[rng.random_range(0..modes.len())];
                let mut bi = Bidirectional::new(rnn).with_merge_mode(mode);
                if i == 0 {
                    bi = bi.input_shape((fixed_time.then_some(timesteps), input_dim));
                }
                params += 2 * rnn_params(features, units, bias);
                features = if mode == MergeMode::Concat {
                    2 * units
                } else {
                    units
                };
                Box::new(bi)
            } else {
                let rnn = if i == 0 {
                    rnn.input_shape((fixed_time.then_some(timesteps), input_dim))
                } else {
                    rnn
                };
                params += rnn_params(features, units, bias);
                features = units;
                Box::new(rnn)
            };
            m.add_boxed(layer)?;
            last_sequences = sequences;
        }
        let time = fixed_time.then_some(timesteps);
        let expected = if last_sequences {
            shape(&[None, time, Some(features)])
        } else {
            shape(&[None, Some(features)])
        };
        assert_eq!(m.output_shape(), Some(expected), "case {case}");
        assert_eq!(m.count_params()?, params, "case {case}");
        let x = Array3::from_shape_fn((batch, timesteps, input_dim), |(b, t, d)| {
            ((b * 31 + t * 7 + d) % 11) as f32 / 11.0 - 0.5
        });
        let y = m.predict(&x)?;
        let mut want = vec![batch];
        if last_sequences {
            want.push(timesteps);
        }
        want.push(features);
        assert_eq!(y.shape(), want.as_slice(), "case {case}");
    }
    Ok(())
}

/// The obvious loop, one sample and one timestep at a time, in f64.
fn reference(
    x: &Array3<f32>,
    w: &[ArrayD<f32>],
    act: ActivationFn,
    go_backwards: bool,
    init: Option<&Array2<f32>>,
) -> (Array3<f64>, Array2<f64>) {
    let f = |a: &ArrayD<f32>| a.mapv(f64::from);
    let kernel = f(&w[0]).into_dimensionality::<ndarray::Ix2>().unwrap();
    let rec = f(&w[1]).into_dimensionality::<ndarray::Ix2>().unwrap();
    let bias = f(&w[2]).into_dimensionality::<ndarray::Ix1>().unwrap();
    let (batch, steps, _) = x.dim();
    let units = rec.nrows();
    let mut seq = Array3::zeros((batch, steps, units));
    let mut last = Array2::zeros((batch, units));
    for b in 0..batch {
        let mut h: Array1<f64> = init.map_or(Array1::zeros(units), |s| s.row(b).mapv(f64::from));
        for k in 0..steps {
            let t = if go_backwards { steps - 1 - k } else { k };
            let xt = x.slice(s![b, t, ..]).mapv(f64::from);
            let z = xt.dot(&kernel) + h.dot(&rec) + &bias;
            h = z.mapv(|v| f64::from(act.apply(v as f32)));
            seq.slice_mut(s![b, k, ..]).assign(&h);
        }
        last.row_mut(b).assign(&h);
    }
    (seq, last)
}

fn random_array(rng: &mut StdRng, shape: &[usize], scale: f32) -> ArrayD<f32> {
    ArrayD::from_shape_simple_fn(shape, || rng.random_range(-scale..scale))
}

/// The batched path (hoisted projection, in-place steps, threads for large batches) equals the
/// per-timestep reference, forwards and backwards, with and without an initial state.
#[test]
fn batched_driver_equals_the_reference_loop() -> seqnn::Result<()> {
    let mut rng = StdRng::seed_from_u64(7);
    // The last workload is large enough to be split across threads.
    for &(batch, steps, dim, units) in &[(1, 1, 1, 1), (3, 5, 4, 6), (5, 9, 3, 2), (64, 20, 64, 64)]
    {
        for go_backwards in [false, true] {
            for with_init in [false, true] {
                let act = if with_init {
                    ActivationFn::Tanh
                } else {
                    ActivationFn::Relu
                };
                let mut rnn = SimpleRNN::new(units)
                    .with_return_sequences(true)
                    .with_return_state(true)
                    .with_go_backwards(go_backwards)
                    .with_activation(act);
                rnn.build(&[Shape::new(vec![None, None, Some(dim)])])?;
                // Scaled by fan-in so that relu stays bounded over 20 steps.
                let w = vec![
                    random_array(&mut rng, &[dim, units], 1.0 / (dim as f32).sqrt()),
                    random_array(&mut rng, &[units, units], 1.0 / (units as f32).sqrt()),
                    random_array(&mut rng, &[units], 0.5),
                ];
                rnn.set_weights(&w)?;
                let x = random_array(&mut rng, &[batch, steps, dim], 1.0)
                    .into_dimensionality()
                    .unwrap();
                let init = with_init.then(|| {
                    random_array(&mut rng, &[batch, units], 1.0)
                        .into_dimensionality::<ndarray::Ix2>()
                        .unwrap()
                });
                let mut inputs = vec![x.view().into_dyn()];
                inputs.extend(init.as_ref().map(|h| h.view().into_dyn()));
                let out = common::call(&rnn, &inputs)?;
                let (output, state) = (&out[0], &out[1]);
                let (seq, last) = reference(&x, &w, act, go_backwards, init.as_ref());
                assert_abs_diff_eq!(*output, seq.mapv(|v| v as f32).into_dyn(), epsilon = 1e-4);
                assert_abs_diff_eq!(*state, last.mapv(|v| v as f32).into_dyn(), epsilon = 1e-4);
                // The last output of the sequence is the final state.
                let y_last = output.index_axis(Axis(1), steps - 1).to_owned();
                assert_abs_diff_eq!(y_last, *state, epsilon = 0.0);
            }
        }
    }
    Ok(())
}

/// A built model serves several threads through `&self`.
#[test]
fn one_model_serves_many_threads() -> seqnn::Result<()> {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Sequential>();
    let mut m = Sequential::new();
    m.add(Bidirectional::new(SimpleRNN::new(5).with_return_sequences(true)).input_shape((6, 3)))?;
    m.add(SimpleRNN::new(2))?;
    let x = Array3::from_shape_fn((4, 6, 3), |(b, t, d)| (b + t + d) as f32 * 0.05);
    let expected = m.call(&x)?;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| m.call(&x))).collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), expected);
        }
    });
    Ok(())
}

#[test]
fn layers_and_weights_are_in_keras_order() -> seqnn::Result<()> {
    let mut m = Sequential::new();
    m.add(
        Bidirectional::new(SimpleRNN::new(4))
            .with_backward_layer(SimpleRNN::new(3).with_go_backwards(true))
            .input_shape((5, 2)),
    )?;
    let shapes: Vec<Vec<usize>> = m.get_weights().iter().map(|w| w.shape().to_vec()).collect();
    // Forward kernel, recurrent kernel, bias; then the backward layer's.
    assert_eq!(
        shapes,
        vec![
            vec![2, 4],
            vec![4, 4],
            vec![4],
            vec![2, 3],
            vec![3, 3],
            vec![3]
        ]
    );
    assert_eq!(m.output_shape().unwrap().to_string(), "(None, 7)");
    Ok(())
}

/// `input_dim` alone declares `(None, None, d)`: any number of timesteps, from call to call.
#[test]
fn input_dim_alone_takes_any_number_of_timesteps() -> seqnn::Result<()> {
    let mut m = Sequential::new();
    m.add(SimpleRNN::new(4).with_return_sequences(true).input_dim(3))?;
    assert_eq!(m.input_shape().unwrap().to_string(), "(None, None, 3)");
    for steps in [1, 4, 9] {
        let y = m.call(&Array3::<f32>::zeros((2, steps, 3)))?;
        assert_eq!(y.shape(), &[2, steps, 4]);
    }
    assert!(m.call(&Array3::<f32>::zeros((2, 4, 5))).is_err());
    Ok(())
}
