//! The convolutional family against Keras (`tools/keras_reference/generate_layers_conv.py`):
//! every layer rebuilt from the config Keras serialized, in tf_keras 2.21 and Keras 3.15, with
//! Keras's shapes, parameter counts, outputs and output masks; Keras's error messages; configs
//! written back as Keras 3's; and hostile sizes refused before anything large is allocated.
#![cfg(feature = "keras")]

mod common;

use common::counting::{alone, measure, mib, Counting};
use ndarray::{Array3, ArrayD, IxDyn};
use serde_json::Value;

use seqnn::keras::{layer_from_config, layer_to_config};
use seqnn::{
    AveragePooling1D, AveragePooling2D, CallContext, Conv1D, Conv2D, Cropping1D, Error,
    GlobalAveragePooling1D, GlobalMaxPooling2D, Layer, MaxPooling1D, Padding, Sequential, Shape,
    UpSampling1D,
};

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn conv_layers_equal_keras() {
    let _alone = alone();
    common::layer_fixture::check_family("conv");
}

/// Keras's error for a case of `errors/keras_errors.json`, from library `lib`: the message
/// without the wrapping Keras adds when a call fails.
fn keras_error(case: &str, lib: &str) -> String {
    let path = common::layer_fixture::dir("conv").join("errors/keras_errors.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("errors fixture"))
        .expect("JSON");
    all["errors"][case][lib]["core"]
        .as_str()
        .unwrap_or_else(|| panic!("no {lib} error for {case}"))
        .to_string()
}

/// An error case: its name in `keras_errors.json`, seqnn's layer, and the input without the
/// batch.
type ErrorCase = (&'static str, Box<dyn Layer>, Vec<Option<usize>>);

#[test]
fn errors_are_keras_words() {
    let _alone = alone();
    let known = |d: &[usize]| d.iter().map(|&v| Some(v)).collect::<Vec<_>>();
    // (the library whose words seqnn uses, (case, seqnn's layer, the input))
    let cases: Vec<(&str, ErrorCase)> = vec![
        (
            "k3",
            (
                "conv1d_filters_zero",
                Box::new(Conv1D::new(0, 3)),
                known(&[6, 3]),
            ),
        ),
        (
            "k3",
            (
                "conv1d_kernel_size_zero",
                Box::new(Conv1D::new(2, 0)),
                known(&[6, 3]),
            ),
        ),
        (
            "k3",
            (
                "conv1d_strides_zero",
                Box::new(Conv1D::new(2, 3).with_strides(0)),
                known(&[6, 3]),
            ),
        ),
        (
            "k3",
            (
                "conv2d_strides_zero",
                Box::new(Conv2D::new(2, 3).with_strides((2, 0))),
                known(&[6, 6, 3]),
            ),
        ),
        (
            "k3",
            (
                "conv1d_strides_and_dilation",
                Box::new(Conv1D::new(2, 3).with_strides(2).with_dilation_rate(2)),
                known(&[6, 3]),
            ),
        ),
        (
            "k3",
            (
                "conv1d_filters_not_divisible",
                Box::new(Conv1D::new(3, 3).with_groups(2)),
                known(&[6, 4]),
            ),
        ),
        (
            "k3",
            (
                "conv1d_channels_not_divisible",
                Box::new(Conv1D::new(4, 3).with_groups(2)),
                known(&[6, 3]),
            ),
        ),
        (
            "k3",
            (
                "conv1d_groups_zero",
                Box::new(Conv1D::new(4, 3).with_groups(0)),
                known(&[6, 4]),
            ),
        ),
        (
            "k3",
            (
                "conv1d_kernel_longer_than_input",
                Box::new(Conv1D::new(2, 5)),
                known(&[3, 2]),
            ),
        ),
        (
            "k3",
            (
                "conv1d_kernel_one_longer_than_input",
                Box::new(Conv1D::new(2, 4)),
                known(&[3, 2]),
            ),
        ),
        (
            "k3",
            (
                "conv1d_dilated_kernel_longer_than_input",
                Box::new(Conv1D::new(2, 3).with_dilation_rate(2)),
                known(&[4, 2]),
            ),
        ),
        (
            "k3",
            (
                "conv2d_kernel_wider_than_input",
                Box::new(Conv2D::new(2, (3, 7))),
                known(&[6, 6, 3]),
            ),
        ),
        (
            "tf",
            (
                "conv2d_causal",
                Box::new(Conv2D::new(2, 3).with_padding(Padding::Causal)),
                known(&[6, 6, 3]),
            ),
        ),
        (
            "tf",
            (
                "conv1d_channels_unknown",
                Box::new(Conv1D::new(2, 3)),
                vec![Some(6), None],
            ),
        ),
        (
            "k3",
            (
                "max_pooling1d_pool_longer_than_input",
                Box::new(MaxPooling1D::new(4)),
                known(&[3, 2]),
            ),
        ),
        (
            "k3",
            (
                "average_pooling2d_pool_wider_than_input",
                Box::new(AveragePooling2D::new((2, 5))),
                known(&[4, 4, 2]),
            ),
        ),
        (
            "k3",
            (
                "max_pooling1d_pool_size_zero",
                Box::new(MaxPooling1D::new(0)),
                known(&[3, 2]),
            ),
        ),
        (
            "k3",
            (
                "cropping1d_everything",
                Box::new(Cropping1D::new(2)),
                known(&[4, 2]),
            ),
        ),
        (
            "k3",
            (
                "up_sampling1d_size_zero",
                Box::new(UpSampling1D::new(0)),
                known(&[4, 2]),
            ),
        ),
    ];
    for (lib, (case, mut layer, input)) in cases {
        layer.ensure_named();
        let name = layer.name().to_string();
        let mut dims = vec![None];
        dims.extend(input);
        let err = layer.build(&[Shape::new(dims)]).expect_err(case);
        assert!(
            matches!(err, Error::InvalidArgument { .. }),
            "{case}: {err:?}"
        );
        let keras = keras_error(case, lib);
        assert_eq!(
            err.to_string(),
            format!("layer \"{name}\": {keras}"),
            "{case}"
        );
    }
    // Ranks: tf_keras's words, but a seqnn rank error says ndim where Keras's convolutions
    // say min_ndim (they take extra batch axes, which seqnn does not).
    let rank_cases: Vec<ErrorCase> = vec![
        ("conv1d_rank2", Box::new(Conv1D::new(2, 3)), known(&[6])),
        (
            "max_pooling1d_rank2",
            Box::new(MaxPooling1D::new(2)),
            known(&[3]),
        ),
        (
            "global_average_pooling1d_rank2",
            Box::new(GlobalAveragePooling1D::new()),
            known(&[3]),
        ),
        (
            "global_max_pooling2d_rank3",
            Box::new(GlobalMaxPooling2D::new()),
            known(&[3, 4]),
        ),
    ];
    for (case, mut layer, input) in rank_cases {
        seqnn::clear_session();
        layer.ensure_named();
        let mut dims = vec![None];
        dims.extend(input);
        let err = layer.build(&[Shape::new(dims)]).expect_err(case);
        assert!(
            matches!(err, Error::IncompatibleRank { .. }),
            "{case}: {err:?}"
        );
        let keras = keras_error(case, "tf").replace("min_ndim=", "ndim=");
        assert_eq!(err.to_string(), keras, "{case}");
    }
}

/// Every layer of the family, written as Keras 3's config and read back, is the same layer;
/// the same JSON is what `keras.layers.deserialize` rebuilds it from in Keras 3.
#[test]
fn configs_round_trip_through_keras_3_form() -> seqnn::Result<()> {
    let _alone = alone();
    for path in common::layer_fixture::cases("conv") {
        let f: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON");
        let what = path.display().to_string();
        let layer = layer_from_config(&f["config"].to_string())?;
        let written = layer_to_config(layer.as_ref())?;
        let again = layer_from_config(&written)?;
        assert_eq!(layer_to_config(again.as_ref())?, written, "{what}");
        let v: Value = serde_json::from_str(&written).expect("JSON");
        assert_eq!(v["class_name"], f["config"]["class_name"], "{what}");
        if !what.ends_with(".k3.json") {
            continue;
        }
        // Every option Keras 3 wrote is written back with the same value.
        let ours = &v["config"];
        let keras = &f["config"]["config"];
        for (key, value) in ours.as_object().expect("object") {
            if key == "dtype" || key == "layer" {
                continue;
            }
            assert_eq!(&keras[key], value, "{what}: option {key}");
        }
    }
    Ok(())
}

#[test]
fn channels_first_and_unknown_options_are_refused() {
    let _alone = alone();
    for class in [
        "Conv1D",
        "MaxPooling2D",
        "GlobalAveragePooling1D",
        "ZeroPadding1D",
    ] {
        let json = format!(
            r#"{{"class_name": "{class}", "config": {{"name": "x", "filters": 2,
                "kernel_size": 3, "data_format": "channels_first"}}}}"#
        );
        let err = layer_from_config(&json).unwrap_err();
        assert!(
            matches!(err, Error::Unsupported { .. }) && err.to_string().contains("data_format"),
            "{class}: {err}"
        );
    }
    let err = layer_from_config(
        r#"{"class_name": "Conv1D", "config": {"name": "c", "filters": 2, "kernel_size": 3,
            "padding": "full"}}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("padding=\"full\""), "{err}");
    // Keras's aliases are read too.
    let l = layer_from_config(r#"{"class_name": "MaxPool1D", "config": {"name": "m"}}"#)
        .expect("an alias");
    assert_eq!(l.class_name(), "MaxPooling1D");
}

/// The peak bytes a refused layer may cost: a few small allocations for names and messages.
const SMALL: usize = 1 << 16;

fn refused_small(what: &str, f: impl FnOnce() -> seqnn::Result<Sequential>) -> Error {
    let (result, peak) = measure(f);
    let err = result.expect_err(what);
    eprintln!("{what}: {err} (held {})", mib(peak));
    assert!(peak < SMALL, "{what}: held {}", mib(peak));
    err
}

#[test]
fn hostile_sizes_are_refused_before_allocating() {
    let _alone = alone();
    let add = |layer: Conv1D| {
        move || {
            let mut m = Sequential::new();
            m.add(layer.input_shape((16, 8)))?;
            Ok(m)
        }
    };
    let err = refused_small("filters 2^40", add(Conv1D::new(1 << 40, 3)));
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    let err = refused_small(
        "kernel_size 10^12, same",
        add(Conv1D::new(4, 1_000_000_000_000).with_padding(Padding::Same)),
    );
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    let err = refused_small(
        "kernel_size 10^12, valid",
        add(Conv1D::new(4, 1_000_000_000_000)),
    );
    assert!(err
        .to_string()
        .contains("Computed output size would be zero or negative"));
    let err = refused_small("strides 0", add(Conv1D::new(4, 3).with_strides(0)));
    assert!(err
        .to_string()
        .contains("The `strides` argument must be a tuple of 1 integers"));
    let err = refused_small("kernel longer than the input", add(Conv1D::new(4, 17)));
    assert!(err.to_string().contains("kernel shape=(17, 8, 4)"), "{err}");
    let err = refused_small(
        "dilation 2^62",
        add(Conv1D::new(4, 5).with_dilation_rate(1 << 62)),
    );
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    let err = refused_small("pool 10^12", || {
        let mut m = Sequential::new();
        m.add(MaxPooling1D::new(1_000_000_000_000).input_shape((16, 8)))?;
        Ok(m)
    });
    assert!(err
        .to_string()
        .contains("Computed output size would be zero or negative"));
    let err = refused_small("upsampling 2^40", || {
        let mut m = Sequential::new();
        m.add(UpSampling1D::new(1 << 40).input_shape((1 << 20, 8)))?;
        Ok(m)
    });
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");

    // The same sizes in a Keras 3 config.
    let config = |filters: &str, kernel: &str, strides: &str| {
        format!(
            r#"{{"class_name": "Sequential", "config": {{"name": "s", "layers": [
                {{"class_name": "InputLayer", "config": {{"batch_shape": [null, 16, 8]}}}},
                {{"class_name": "Conv1D", "config": {{"name": "c", "filters": {filters},
                  "kernel_size": {kernel}, "strides": {strides}, "padding": "same"}}}}]}}}}"#
        )
    };
    for (what, json) in [
        ("config filters 2^40", config("1099511627776", "[3]", "[1]")),
        (
            "config kernel_size 10^12",
            config("4", "[1000000000000]", "[1]"),
        ),
        ("config strides 0", config("4", "[3]", "[0]")),
    ] {
        let err = refused_small(what, || seqnn::model_from_json(&json));
        assert!(err.to_string().contains("\"c\""), "{what}: {err}");
    }
}

#[test]
fn a_call_checks_the_lengths_it_meets() -> seqnn::Result<()> {
    let _alone = alone();
    // Built for any length, called on one shorter than the kernel: Keras's error at call time.
    let mut conv = Conv1D::new(2, 5);
    conv.build(&[Shape::new(vec![None, None, Some(3)])])?;
    conv.initialize();
    let x = ArrayD::<f32>::zeros(IxDyn(&[2, 4, 3]));
    let (r, peak) = measure(|| conv.call(&[x.view()], &mut CallContext::inference()));
    let err = r.unwrap_err();
    assert!(peak < SMALL, "held {}", mib(peak));
    assert_eq!(
        err.to_string(),
        "layer \"conv1d\": Computed output size would be zero or negative. Received `inputs \
         shape=(2, 4, 3)`, `kernel shape=(5, 3, 2)`, `dilation_rate=[1]`, `strides=(1,)`, \
         `padding=valid`."
    );
    // Other channels than it was built for.
    let x = ArrayD::<f32>::zeros(IxDyn(&[2, 9, 4]));
    assert!(matches!(
        conv.call(&[x.view()], &mut CallContext::inference()),
        Err(Error::IncompatibleShape { .. })
    ));
    // A long sequence runs in bounded scratch: the patches of 2 · 200,000 steps would be 12 MB;
    // the call holds its output (3.2 MB) and one chunk of patches (4 MiB) per thread.
    let mut long = Conv1D::new(2, 5).with_padding(Padding::Same);
    long.build(&[Shape::new(vec![None, None, Some(3)])])?;
    long.initialize();
    let x = Array3::<f32>::from_elem((2, 200_000, 3), 0.5).into_dyn();
    let (y, peak) = measure(|| long.call(&[x.view()], &mut CallContext::inference()));
    assert_eq!(y?[0].shape(), &[2, 200_000, 2]);
    let bound = 3_200_000 + seqnn::num_threads() * (4 << 20) + (1 << 20);
    assert!(peak < bound, "held {}", mib(peak));
    // And a Sequential predict on a pooled model gives Keras's shapes.
    let mut m = Sequential::new();
    m.add(Conv1D::new(4, 3).input_shape((12, 2)))?;
    m.add(AveragePooling1D::new(3).with_padding(Padding::Same))?;
    m.add(GlobalAveragePooling1D::new())?;
    let y = m.predict(&Array3::<f32>::zeros((5, 12, 2)))?;
    assert_eq!(y.shape(), &[5, 4]);
    Ok(())
}

/// The portable kernels, and AVX2 on an AVX-512 CPU, give these numbers too (the tests above
/// run on the CPU's own).
#[test]
fn every_instruction_set_gives_these_numbers() {
    common::rerun_on_narrower_instruction_sets("every_instruction_set_gives_these_numbers");
}
