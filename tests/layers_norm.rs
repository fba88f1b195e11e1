//! Layer-level Keras fixtures of the normalization, reshaping and noise layers
//! (`tools/keras_reference/generate_layers_norm.py`), each rebuilt from the config Keras
//! serialized in tf_keras 2.21 and Keras 3.15; their configs both ways; and hostile sizes, each
//! an `Err` with a bounded peak allocation.
#![cfg(feature = "keras")]

mod common;

use common::counting::{alone, measure, mib, Counting};
use ndarray::{ArrayD, IxDyn};
use seqnn::keras::{layer_from_config, layer_to_config};
use seqnn::{
    ActivityRegularization, BatchNormalization, CallContext, Dense, Error, GaussianDropout,
    GaussianNoise, Layer, LayerNormalization, MovingVariance, Permute, RenormClipping, Reshape,
    Sequential, Shape, SpatialDropout1D, LSTM,
};

#[global_allocator]
static ALLOC: Counting = Counting;

/// What refusing a hostile size may hold at once: its error message and the shapes it quotes.
const SMALL: usize = 64 << 10;

/// Runs `f` (its test holds [`alone`]), checks that it fails and held at most [`SMALL`] bytes,
/// and returns the error.
fn refused<T: std::fmt::Debug>(what: &str, f: impl FnOnce() -> seqnn::Result<T>) -> Error {
    refused_within(what, SMALL, f)
}

/// [`refused`] with a bound of `bound` bytes.
fn refused_within<T: std::fmt::Debug>(
    what: &str,
    bound: usize,
    f: impl FnOnce() -> seqnn::Result<T>,
) -> Error {
    let (result, peak) = measure(f);
    eprintln!("{what}: held {}", mib(peak));
    assert!(peak <= bound, "{what}: held {} while refusing", mib(peak));
    result.expect_err(what)
}

fn shape(dims: &[Option<usize>]) -> Shape {
    Shape::new(dims.to_vec())
}

#[test]
fn norm_layers_equal_keras() {
    let _alone = alone();
    common::layer_fixture::check_family("norm");
}

#[test]
fn reshape_to_a_trillion_elements_is_refused_before_allocating() {
    let _alone = alone();
    let mut model = Sequential::new();
    let err = refused("Reshape((10^6, 10^6)) in a model", || {
        model.add(Reshape::new([1_000_000, 1_000_000]).input_shape((None, 6)))
    });
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("1000000000000"), "{err}");
    assert!(model.layers().is_empty());
    // The same from a Keras 3 config, and with sizes whose product overflows.
    let json = r#"{"module": "keras.layers", "class_name": "Reshape", "registered_name": null,
        "config": {"name": "reshape", "trainable": true, "dtype": "float32",
                   "target_shape": [1000000, 1000000]}}"#;
    let mut layer = layer_from_config(json).expect("the config itself is valid");
    let err = refused("Reshape config", || {
        layer.build(&[shape(&[None, None, Some(6)])])
    });
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    let huge = i64::MAX / 2;
    let err = refused("Reshape overflowing", || {
        Reshape::new([huge, huge, huge]).compute_output_shape(&[shape(&[None, None])])
    });
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    // A call on a real input: the sizes differ, refused before any copy.
    let x = ArrayD::<f32>::zeros(IxDyn(&[2, 4, 6]));
    let r = Reshape::new([1_000_000, 1_000_000]);
    let err = refused("Reshape call", || {
        r.call(&[x.view()], &mut CallContext::inference())
    });
    assert!(err.to_string().contains("must be unchanged"), "{err}");
}

#[test]
fn normalization_weights_beyond_the_limit_are_refused_before_allocating() {
    let _alone = alone();
    let mut bn = BatchNormalization::new();
    let err = refused("BatchNormalization over 2^40 channels", || {
        bn.build(&[shape(&[None, Some(4), Some(1 << 40)])])
    });
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(!bn.is_built());
    let mut ln = LayerNormalization::new().with_axes([1, 2]);
    let err = refused("LayerNormalization over 2^20 · 2^20", || {
        ln.build(&[shape(&[None, Some(1 << 20), Some(1 << 20)])])
    });
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(!ln.is_built());
}

#[test]
fn axes_out_of_range_and_wrong_permutations_are_errors() {
    let _alone = alone();
    let input = [shape(&[None, Some(4), Some(3)])];
    for axis in [3, -4, isize::MAX, isize::MIN] {
        let err = BatchNormalization::new()
            .with_axis(axis)
            .compute_output_shape(&input)
            .unwrap_err();
        assert!(err.to_string().contains("out of bounds"), "{axis}: {err}");
    }
    let json = r#"{"class_name": "BatchNormalization",
        "config": {"name": "bn", "axis": 9223372036854775807}}"#;
    let mut bn = layer_from_config(json).expect("the config itself is valid");
    assert!(bn.build(&input).is_err());
    // Permute: a permutation of the wrong length for the input, or no permutation at all.
    let err = Permute::new([2, 1])
        .compute_output_shape(&[shape(&[None, Some(2), Some(3), Some(4)])])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::IncompatibleRank {
                expected: 3,
                found: 4,
                ..
            }
        ),
        "{err}"
    );
    // Checking a permutation of n axes takes n bytes, an eighth of the list itself.
    let n = 100_000;
    let long = Permute::new((1..=n).rev().collect::<Vec<usize>>());
    let err = refused_within("Permute of 10^5 axes on a 3-D input", n + SMALL, || {
        long.compute_output_shape(&input)
    });
    assert!(matches!(err, Error::IncompatibleRank { .. }), "{err}");
    let json = r#"{"class_name": "Permute", "config": {"name": "p", "dims": [1, 4, 2]}}"#;
    let mut p = layer_from_config(json).expect("checked when built, as Keras at construction");
    let err = p
        .build(&[shape(&[None, Some(2), Some(3), Some(4)])])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Invalid permutation argument `dims`"),
        "{err}"
    );
    let x = ArrayD::<f32>::zeros(IxDyn(&[1, 2, 3, 4]));
    assert!(Permute::new([2, 1])
        .call(&[x.view()], &mut CallContext::inference())
        .is_err());
}

/// The layer's Keras 3 config, read back and written again, is the same.
fn round_trip(layer: &dyn Layer) -> Box<dyn Layer> {
    let json = layer_to_config(layer).expect("to_config");
    let back = layer_from_config(&json).expect("from_config");
    assert_eq!(layer_to_config(back.as_ref()).expect("again"), json);
    assert_eq!(back.class_name(), layer.class_name());
    back
}

fn downcast<T: 'static>(layer: &dyn Layer) -> &T {
    let any: &dyn std::any::Any = layer;
    any.downcast_ref::<T>().expect("the same class")
}

#[test]
fn configs_round_trip_with_every_option() {
    let _alone = alone();
    let bn = BatchNormalization::new()
        .with_axis(1)
        .with_momentum(0.9)
        .with_epsilon(0.01)
        .with_center(false)
        .with_renorm(true)
        .with_renorm_clipping(RenormClipping {
            rmax: Some(3.0),
            rmin: None,
            dmax: Some(0.5),
        })
        .with_renorm_momentum(0.7)
        .with_name("bn");
    let back = round_trip(&bn);
    let b = downcast::<BatchNormalization>(back.as_ref());
    assert_eq!((b.axis(), b.momentum(), b.epsilon()), (1, 0.9, 0.01));
    assert_eq!((b.center(), b.scale(), b.renorm()), (false, true, true));
    assert_eq!(b.renorm_clipping(), bn.renorm_clipping());
    assert_eq!(b.renorm_momentum(), 0.7);
    assert_eq!(back.name(), "bn");
    // Keras 3 writes the bounds given, and null without renorm.
    let json = layer_to_config(&bn).unwrap();
    assert!(
        json.contains(r#""renorm_clipping":{"dmax":0.5,"rmax":3.0}"#),
        "{json}"
    );
    let json = layer_to_config(&BatchNormalization::new()).unwrap();
    assert!(json.contains(r#""renorm_clipping":null"#), "{json}");

    let ln = LayerNormalization::new()
        .with_axes([1, 2])
        .with_epsilon(1e-6)
        .with_scale(false)
        .with_rms_scaling(true);
    let back = round_trip(&ln);
    let l = downcast::<LayerNormalization>(back.as_ref());
    assert_eq!(l.axis(), &[1, 2]);
    assert_eq!(
        (l.epsilon(), l.scale(), l.rms_scaling()),
        (1e-6, false, true)
    );

    let back = round_trip(&Reshape::new([-1, 3]));
    assert_eq!(downcast::<Reshape>(back.as_ref()).target_shape(), &[-1, 3]);
    let back = round_trip(&Permute::new([3, 1, 2]));
    assert_eq!(downcast::<Permute>(back.as_ref()).dims(), &[3, 1, 2]);
    let back = round_trip(&SpatialDropout1D::new(0.3));
    assert_eq!(downcast::<SpatialDropout1D>(back.as_ref()).rate(), 0.3);
    let back = round_trip(&GaussianNoise::new(0.25));
    assert_eq!(downcast::<GaussianNoise>(back.as_ref()).stddev(), 0.25);
    let back = round_trip(&GaussianDropout::new(0.4));
    assert_eq!(downcast::<GaussianDropout>(back.as_ref()).rate(), 0.4);
    let back = round_trip(&ActivityRegularization::new().with_l1(0.01).with_l2(0.02));
    let a = downcast::<ActivityRegularization>(back.as_ref());
    assert_eq!((a.l1(), a.l2()), (0.01, 0.02));
    // Floats are written as the shortest decimal that reads back as the same f32.
    assert!(layer_to_config(&GaussianNoise::new(0.3))
        .unwrap()
        .contains("\"stddev\":0.3"));
}

#[test]
fn layer_normalization_axes_keep_their_weights_order_in_both_dialects() -> seqnn::Result<()> {
    let _alone = alone();
    let input = [shape(&[None, Some(4), Some(6)])];
    // tf_keras keeps [2, 1]: gamma (6, 4). Keras 3 (told by its DTypePolicy) sorts it: (4, 6).
    let tf = r#"{"class_name": "LayerNormalization",
        "config": {"name": "ln", "dtype": "float32", "axis": [2, 1]}}"#;
    let k3 = r#"{"class_name": "LayerNormalization",
        "config": {"name": "ln", "axis": [2, 1], "dtype": {"module": "keras",
                   "class_name": "DTypePolicy", "config": {"name": "float32"}}}}"#;
    let mut tf = layer_from_config(tf)?;
    tf.build(&input)?;
    assert_eq!(tf.weight_specs()[0].shape, [6, 4]);
    let mut k3 = layer_from_config(k3)?;
    k3.build(&input)?;
    assert_eq!(k3.weight_specs()[0].shape, [4, 6]);
    // Written for Keras 3 with signs that keep tf_keras's order once sorted: [-1, 1].
    let json = layer_to_config(tf.as_ref())?;
    assert!(json.contains("\"axis\":[-1,1]"), "{json}");
    // An unsorted list on a layer not yet built has no such form.
    let err = layer_to_config(&LayerNormalization::new().with_axes([2, 1])).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    Ok(())
}

#[test]
fn options_that_change_the_weights_are_refused() {
    let _alone = alone();
    let refuse = |config: &str, option: &str| {
        let json = format!(r#"{{"class_name": "BatchNormalization", "config": {config}}}"#);
        let err = layer_from_config(&json).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains(option), "{err}");
    };
    refuse(r#"{"name": "bn", "axis": [1, 2]}"#, "axis=[1,2]");
    refuse(
        r#"{"name": "bn", "axis": [2], "virtual_batch_size": 4}"#,
        "virtual_batch_size",
    );
    // Keys Keras refuses ("Received invalid keys for `renorm_clipping` argument").
    refuse(
        r#"{"name": "bn", "renorm": true, "renorm_clipping": {"rmax": 2, "r": 1}}"#,
        "renorm_clipping",
    );
    // What only training reads is read and ignored.
    let json = r#"{"class_name": "BatchNormalization", "config": {"name": "bn", "axis": [2],
        "fused": true, "synchronized": true, "renorm": false, "renorm_clipping": null,
        "renorm_momentum": 0.5, "momentum": 0.5, "beta_regularizer": {"class_name": "L2"}}}"#;
    let bn = layer_from_config(json).expect("training-only options");
    assert_eq!(downcast::<BatchNormalization>(bn.as_ref()).axis(), 2);
    // `synchronized` is Keras 3's: its training moves toward the biased variance. A tf_keras
    // config moves as its fused kernel does, unless it turned that kernel off.
    let which = |json: &str| {
        let bn = layer_from_config(json).expect("config");
        downcast::<BatchNormalization>(bn.as_ref()).moving_variance()
    };
    assert_eq!(which(json), MovingVariance::Keras3);
    let tf = r#"{"class_name": "BatchNormalization", "config": {"name": "bn", "axis": [3],
        "dtype": "float32"}}"#;
    assert_eq!(which(tf), MovingVariance::TfKeras);
    let unfused = r#"{"class_name": "BatchNormalization", "config": {"name": "bn", "axis": [3],
        "dtype": "float32", "fused": false}}"#;
    assert_eq!(which(unfused), MovingVariance::Keras3);
    let json = r#"{"class_name": "GaussianNoise", "config": {"name": "g"}}"#;
    assert!(matches!(
        layer_from_config(json),
        Err(Error::Unsupported { .. })
    ));
    // Keras 3's SpatialDropout1D config has no `trainable`.
    let json = r#"{"module": "keras.layers", "class_name": "SpatialDropout1D",
        "config": {"rate": 0.3, "seed": null, "name": "sd", "dtype": "float32"}}"#;
    assert!(layer_from_config(json)
        .expect("Keras 3's own config")
        .trainable());
}

#[test]
fn they_fit_between_recurrent_layers_with_keras_parameter_counts() -> seqnn::Result<()> {
    let _alone = alone();
    // model.add(LSTM(8, return_sequences=True, input_shape=(10, 3)))
    // model.add(BatchNormalization())
    // model.add(SpatialDropout1D(0.2))
    // model.add(LayerNormalization())
    // model.add(Permute((2, 1)))
    // model.add(Reshape((-1,)))
    // model.add(Dense(2))
    let mut model = Sequential::new();
    model.add(
        LSTM::new(8)
            .with_return_sequences(true)
            .input_shape((10, 3)),
    )?;
    model.add(BatchNormalization::new())?;
    model.add(SpatialDropout1D::new(0.2))?;
    model.add(LayerNormalization::new())?;
    model.add(Permute::new([2, 1]))?;
    model.add(Reshape::new([-1]))?;
    model.add(Dense::new(2))?;
    assert_eq!(model.output_shape().unwrap().to_string(), "(None, 2)");
    let counts: Vec<usize> = model.layers().iter().map(|l| l.count_params()).collect();
    // LSTM 4·8·(3 + 8 + 1) = 384; BN 4·8; LN 2·8; Dense 2·(80 + 1) = 162
    assert_eq!(counts, [384, 32, 0, 16, 0, 0, 162]);
    let y = model.predict(&ndarray::Array3::<f32>::zeros((2, 10, 3)))?;
    assert_eq!(y.shape(), &[2, 2]);
    Ok(())
}

/// The portable kernels, and AVX2 on an AVX-512 CPU, give these numbers too (the tests above
/// run on the CPU's own).
#[test]
fn every_instruction_set_gives_these_numbers() {
    common::rerun_on_narrower_instruction_sets("every_instruction_set_gives_these_numbers");
}
