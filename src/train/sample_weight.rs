//! Keras's `sample_weight` and `class_weight` of `fit`: the per-sample (or per-timestep)
//! weights the losses take, as tf_keras 2.21 and Keras 3.15 derive them.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};

use crate::error::{Error, Result};
use crate::train::loss::Dialect;

fn invalid(model: &str, message: String) -> Error {
    Error::InvalidArgument {
        layer: model.to_string(),
        message,
    }
}

/// Python's repr of a class-weight dict, as Keras's messages quote it: `{0: 1.0, 1: 2.5}`.
fn repr(class_weight: &[(usize, f32)]) -> String {
    let items: Vec<String> = class_weight
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}: {}",
                crate::train::config::py_repr(v.to_string().parse().unwrap_or(f64::NAN))
            )
        })
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// The weights of each training sample: `sample_weight` as given (checked), `class_weight`
/// turned into one weight per sample from its label, or both multiplied (tf_keras; Keras 3
/// refuses both at once). `None` when neither is given.
///
/// `y` is the model's only target (class weights need a single output), `classes` the
/// number of classes of the model's output (its last axis, 2 for a single sigmoid unit).
/// Labels are Keras's: the argmax of one-hot rows, the rounded value of sparse or binary
/// ones.
///
/// # Errors
/// [`Error::InvalidArgument`] for weights of the wrong length or not finite, a class weight
/// for a class the output lacks, a label that is not a class, keys that tf_keras refuses (not
/// `0..k`), both options under Keras 3, or class weights with several outputs;
/// [`Error::Unsupported`] for class weights on targets of rank 3 or more.
pub(crate) fn per_sample(
    model: &str,
    dialect: Dialect,
    n: usize,
    y: &[ArrayViewD<'_, f32>],
    classes: Option<usize>,
    sample_weight: Option<&ArrayD<f32>>,
    class_weight: Option<&[(usize, f32)]>,
) -> Result<Option<ArrayD<f32>>> {
    if let Some(w) = sample_weight {
        if w.ndim() == 0 || w.shape()[0] != n {
            return Err(invalid(
                model,
                format!(
                    "sample_weight of shape {:?} does not have one row per sample: the data has \
                     {n} samples",
                    w.shape()
                ),
            ));
        }
        if w.ndim() > 2 {
            return Err(invalid(
                model,
                format!(
                    "sample_weight must be (samples,) or (samples, timesteps), got {:?}",
                    w.shape()
                ),
            ));
        }
        if w.iter().any(|v| !v.is_finite()) {
            return Err(invalid(
                model,
                "sample_weight has values that are not finite".into(),
            ));
        }
    }
    let Some(cw) = class_weight else {
        return Ok(sample_weight.cloned());
    };
    if sample_weight.is_some() && dialect == Dialect::Keras3 {
        return Err(invalid(
            model,
            "You cannot `class_weight` and `sample_weight` at the same time.".into(),
        ));
    }
    let [y] = y else {
        return Err(invalid(
            model,
            "`class_weight` is only supported for Models with a single output.".into(),
        ));
    };
    if y.ndim() > 2 {
        return Err(Error::Unsupported {
            layer: model.to_string(),
            class: "class_weight".into(),
            message: format!(
                "class_weight on targets of rank {} ({:?}) is not implemented: seqnn takes \
                 labels (samples,), (samples, 1) or one-hot (samples, classes)",
                y.ndim(),
                y.shape()
            ),
        });
    }
    if let Some((k, v)) = cw.iter().find(|(_, v)| !v.is_finite()) {
        return Err(invalid(
            model,
            format!("class_weight for class {k} is {v}, not a finite number"),
        ));
    }
    let classes = classes.unwrap_or(0);
    if let Some((k, _)) = cw.iter().find(|(k, _)| *k >= classes) {
        return Err(invalid(
            model,
            format!(
                "class_weight has a weight for class {k}, but the output has {classes} classes \
                 (0 to {})",
                classes.saturating_sub(1)
            ),
        ));
    }
    let mut keys: Vec<usize> = cw.iter().map(|(k, _)| *k).collect();
    keys.sort_unstable();
    if dialect == Dialect::TfKeras && keys != (0..keys.len()).collect::<Vec<_>>() {
        return Err(invalid(
            model,
            format!(
                "Expected `class_weight` to be a dict with keys from 0 to one less than the \
                 number of classes, found {}",
                repr(cw)
            ),
        ));
    }
    let one_hot = y.ndim() == 2 && y.shape()[1] > 1;
    let mut weights = ArrayD::<f32>::ones(IxDyn(&[n]));
    for (i, row) in y.axis_iter(Axis(0)).enumerate() {
        let label = if one_hot {
            // numpy's and TensorFlow's argmax: the first of equal maxima.
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            best as f64
        } else {
            f64::from(row.iter().next().copied().unwrap_or(0.0)).round_ties_even()
        };
        if !(0.0..classes as f64).contains(&label) {
            return Err(invalid(
                model,
                format!(
                    "label {label} of sample {i} is not a class of the output (0 to {}), so \
                     class_weight cannot weigh it",
                    classes.saturating_sub(1)
                ),
            ));
        }
        let label = label as usize;
        weights[i] = cw
            .iter()
            .find(|(k, _)| *k == label)
            .map_or(1.0, |(_, v)| *v);
    }
    Ok(Some(match sample_weight {
        None => weights,
        Some(sw) => {
            // tf_keras: `class_weight` and `sample_weight` are multiplicative.
            let mut shape = vec![n];
            shape.extend(std::iter::repeat_n(1, sw.ndim() - 1));
            let cw = weights
                .into_shape_with_order(IxDyn(&shape))
                .expect("n values");
            sw * &cw
        }
    }))
}
