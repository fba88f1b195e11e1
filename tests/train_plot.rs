//! `History::plot`: the curves as PNG and SVG files, and its errors.
#![cfg(feature = "plot")]

use ndarray::{Array2, Array3};
use seqnn::{ActivationFn, Dense, Error, FitOptions, History, Sequential, SimpleRNN};

fn history(metrics: bool) -> History {
    seqnn::set_random_seed(4);
    let mut m = Sequential::new();
    m.add(SimpleRNN::new(3).input_shape((3, 2))).unwrap();
    m.add(Dense::new(1).with_activation(ActivationFn::Sigmoid))
        .unwrap();
    if metrics {
        m.compile_with(
            seqnn::Compiled::new(
                Box::new(seqnn::SGD::new()),
                seqnn::Loss::binary_crossentropy(),
            )
            .with_metrics(&["accuracy"])
            .unwrap(),
        );
    } else {
        m.compile("sgd", "mse").unwrap();
    }
    let x = Array3::from_shape_fn((16, 3, 2), |(b, t, f)| ((b + t * f) % 3) as f32 * 0.3);
    let y = Array2::from_shape_fn((16, 1), |(b, _)| (b % 2) as f32);
    let options = FitOptions::new()
        .with_epochs(4)
        .with_validation_split(0.25)
        .with_verbose(0);
    m.fit(&x, &y, &options).unwrap()
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("seqnn-plot-{}-{name}", std::process::id()))
}

#[test]
fn a_png_has_one_panel_per_logged_value() {
    let path = tmp("curves.png");
    history(true).plot(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // The IHDR chunk: width then height, big-endian: two panels (loss, accuracy) of 400.
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (640, 800));
    std::fs::remove_file(&path).ok();
}

#[test]
fn an_svg_names_each_curve_and_its_validation_twin() {
    let path = tmp("curves.svg");
    history(true).plot(&path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    // Each <text> element's content, trimmed.
    let texts: Vec<&str> = svg
        .split("<text")
        .skip(1)
        .filter_map(|t| {
            t.split_once('>')
                .and_then(|(_, rest)| rest.split_once("</text>"))
        })
        .map(|(content, _)| content.trim())
        .collect();
    for label in ["loss", "val_loss", "accuracy", "val_accuracy", "Epoch"] {
        assert!(texts.contains(&label), "{label} missing from {texts:?}");
    }
    // The validation curves are dashed: many short segments, where a training curve is one
    // polyline per panel.
    let polylines = svg.matches("<polyline").count();
    assert!(polylines > 10, "{polylines} polylines");
    std::fs::remove_file(&path).ok();
}

#[test]
fn bad_paths_and_empty_histories_are_errors() {
    let h = history(false);
    let err = h.plot(tmp("curves.jpg")).expect_err("not png or svg");
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    let err = h
        .plot(std::env::temp_dir().join("no-such-dir-seqnn/curves.svg"))
        .expect_err("no directory");
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    let err = History::default()
        .plot(tmp("empty.svg"))
        .expect_err("empty");
    assert!(err.to_string().contains("no epoch"), "{err}");
}
