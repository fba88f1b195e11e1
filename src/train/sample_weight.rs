//! Keras's `sample_weight` and `class_weight` of `fit`: the per-sample (or per-timestep)
//! weights the losses take, as tf_keras 2.21 and Keras 3.15 derive them.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

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
/// turned into one weight per label, or both multiplied (tf_keras; Keras 3 refuses both at
/// once). `None` when neither is given.
///
/// `y` is the model's only target (class weights need a single output), `classes` the
/// number of classes of the model's output (its last axis, 2 for a single sigmoid unit).
/// Labels are Keras's: along the last axis of a target of rank 2 or more, the argmax where it
/// is longer than 1 (one-hot rows), else the rounded value (sparse or binary labels); each
/// value of a target of rank 1. So `(samples, classes)` and `(samples, 1)` targets give one
/// weight per sample, and, under tf_keras, `(samples, timesteps, classes)` and `(samples,
/// timesteps, 1)` one per timestep (Keras 3 refuses them). Both Kerases take `(samples,
/// timesteps)` sparse labels for one-hot rows and weigh each sample by the argmax of its
/// labels over the timesteps; so does seqnn, and then tf_keras's loss spreads the weight
/// over the timesteps where Keras 3's refuses it.
///
/// With both options, tf_keras gives a `(samples,)` sample weight trailing axes of 1 and
/// multiplies: per-timestep class weights spread it over the timesteps (tf_keras fails there
/// when the last batch is partial, "Cannot convert a partially known TensorShape"; seqnn
/// spreads it in every batch), per-sample class weights of a `(samples, timesteps)` sample
/// weight are refused, as tf_keras refuses them.
///
/// # Errors
/// [`Error::InvalidArgument`] for weights of the wrong length or not finite, a class weight
/// for a class the output lacks, keys that tf_keras refuses (not `0..k`) and labels it has no
/// weight for, a `(samples, timesteps)` sample weight with per-sample class weights, both
/// options or targets of rank 3 or more under Keras 3, or class weights with several outputs.
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
    if y.ndim() > 2 && dialect == Dialect::Keras3 {
        return Err(invalid(
            model,
            format!(
                "Keras 3's `class_weight` takes one label per sample, and targets of shape {} \
                 have one per timestep (Keras 3 fails with \"TypeError: only 0-dimensional \
                 arrays can be converted to Python scalars\"): weigh the timesteps with a \
                 sample_weight of shape (samples, timesteps) instead",
                crate::layers::conv::py_tuple(y.shape())
            ),
        ));
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
    let weights = label_weights(model, dialect, y, cw)?;
    Ok(Some(match sample_weight {
        None => weights,
        // tf_keras: `class_weight` and `sample_weight` are multiplicative.
        Some(sw) => multiply(model, sw, &weights)?,
    }))
}

/// The weight of each label of `y` (see [`per_sample`]): shaped as `y` without its last axis
/// (as `y` for a target of rank 1).
fn label_weights(
    model: &str,
    dialect: Dialect,
    y: &ArrayViewD<'_, f32>,
    class_weight: &[(usize, f32)],
) -> Result<ArrayD<f32>> {
    let shape = y.shape();
    let (lead, width) = match shape.split_last() {
        Some((&w, lead)) if shape.len() >= 2 => (lead.to_vec(), w),
        _ => (shape.to_vec(), 1),
    };
    let y = y.as_standard_layout();
    let values = y.as_slice().expect("standard layout");
    let per_sample = lead.iter().skip(1).product::<usize>().max(1);
    let mut weights = Vec::with_capacity(values.len() / width.max(1));
    for (r, row) in values.chunks(width.max(1)).enumerate() {
        let label = if width > 1 {
            // numpy's and TensorFlow's argmax: the first of equal maxima.
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            best as f64
        } else {
            f64::from(row[0]).round_ties_even()
        };
        let place = if lead.len() > 1 {
            format!("sample {}, timestep {}", r / per_sample, r % per_sample)
        } else {
            format!("sample {r}")
        };
        if !label.is_finite() {
            return Err(invalid(
                model,
                format!(
                    "label {label} of {place} is not a number, so class_weight cannot weigh it"
                ),
            ));
        }
        let weight = class_weight
            .iter()
            .find(|(k, _)| *k as f64 == label)
            .map(|(_, v)| *v);
        weights.push(match (weight, dialect) {
            (Some(w), _) => w,
            // Keras 3: `class_weight.get(label, 1.0)`.
            (None, Dialect::Keras3) => 1.0,
            // tf_keras gathers the weight from the list of the keys 0..k-1.
            (None, Dialect::TfKeras) => {
                return Err(invalid(
                    model,
                    format!(
                        "label {label} of {place} has no class weight: tf_keras takes it from \
                         the list of the weights of classes 0 to {k}, and {label} is not in [0, \
                         {})",
                        class_weight.len(),
                        k = class_weight.len().saturating_sub(1),
                    ),
                ))
            }
        });
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&lead), weights).expect("one weight per label"))
}

/// `sample_weight` times the class weights, as tf_keras multiplies them: the sample weight
/// given trailing axes of 1 up to the class weights' rank, so that a `(samples,)` one spreads
/// over per-timestep class weights. A sample weight of higher rank than the class weights
/// (`(samples, timesteps)` against one class weight per sample) is refused in tf_keras's
/// words: it broadcasts them along the last axis, which fails (or, where the batch size and
/// the timesteps agree, weighs the wrong axis).
fn multiply(model: &str, sample_weight: &ArrayD<f32>, class: &ArrayD<f32>) -> Result<ArrayD<f32>> {
    let mut shape = sample_weight.shape().to_vec();
    shape.resize(class.ndim().max(shape.len()), 1);
    let fits = shape.len() == class.ndim()
        && (shape.iter().zip(class.shape())).all(|(&s, &c)| s == c || s == 1);
    if !fits {
        return Err(invalid(
            model,
            format!(
                "`class_weight` and `sample_weight` are multiplicative, and a sample_weight of \
                 shape {} does not broadcast with the class weights of the labels, of shape {} \
                 (tf_keras: \"Dimensions must be equal\"): give a (samples,) sample_weight, or \
                 one weight per timestep in sample_weight alone",
                crate::layers::conv::py_tuple(sample_weight.shape()),
                crate::layers::conv::py_tuple(class.shape())
            ),
        ));
    }
    let s = sample_weight
        .view()
        .into_shape_with_order(IxDyn(&shape))
        .expect("the same elements");
    Ok(&s * class)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    const CW: [(usize, f32); 3] = [(0, 2.0), (1, 0.5), (2, 1.0)];

    #[test]
    fn one_hot_sequences_weigh_each_timestep_under_tf_keras() {
        // Sample 0: classes 1 then 0 (weights 0.5, 2); sample 1: classes 2 then 1 (1, 0.5).
        let y = array![
            [[0.0f32, 1.0, 0.0], [1.0, 0.0, 0.0]],
            [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
        ]
        .into_dyn();
        let tf = Dialect::TfKeras;
        let w = per_sample("m", tf, 2, &[y.view()], Some(3), None, Some(&CW)).unwrap();
        assert_eq!(w.unwrap(), array![[0.5f32, 2.0], [1.0, 0.5]].into_dyn());
        // A (samples,) sample weight spreads over the timesteps: [3·0.5, 3·2], [2·1, 2·0.5].
        let sw = array![3.0f32, 2.0].into_dyn();
        let w = per_sample("m", tf, 2, &[y.view()], Some(3), Some(&sw), Some(&CW)).unwrap();
        assert_eq!(w.unwrap(), array![[1.5f32, 6.0], [2.0, 1.0]].into_dyn());
        let k3 = per_sample(
            "m",
            Dialect::Keras3,
            2,
            &[y.view()],
            Some(3),
            None,
            Some(&CW),
        );
        assert!(k3.unwrap_err().to_string().contains("only 0-dimensional"));
    }

    #[test]
    fn per_sample_class_weights_refuse_a_weight_per_timestep() {
        // (samples, timesteps) sparse labels: one class per sample, the argmax of each row
        // (timestep 1 and timestep 0), and a (2, 2) sample weight that cannot multiply it.
        let y = array![[0.0f32, 2.0], [1.0, 0.0]].into_dyn();
        let sw = array![[1.0f32, 1.0], [1.0, 1.0]].into_dyn();
        let tf = Dialect::TfKeras;
        let w = per_sample("m", tf, 2, &[y.view()], Some(3), None, Some(&CW)).unwrap();
        assert_eq!(w.unwrap(), array![0.5f32, 2.0].into_dyn());
        let err = per_sample("m", tf, 2, &[y.view()], Some(3), Some(&sw), Some(&CW)).unwrap_err();
        assert!(
            err.to_string().contains("Dimensions must be equal"),
            "{err}"
        );
    }
}
