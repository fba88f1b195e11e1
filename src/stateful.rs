//! Models with stateful layers (Keras's `stateful=True`): the states of a whole model, and the
//! batches a model of fixed batch size can run.
//!
//! A model's states are its stateful layers' states one after the other, in layer order, so
//! that a [`Sequential`](crate::Sequential) or a [`Model`](crate::Model) is itself a stateful
//! [`Layer`]: the fit loop hands them to its call in the [`CallContext`](crate::CallContext)
//! and commits the final ones after the step, as it does for one recurrent layer.

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::layer::{CallContext, Layer, States};

/// The error for a stateful model run by `method` (`predict`, `evaluate`, ...), a method of
/// `&self` that cannot keep the states it updates: it names the method of `&mut self` to use.
pub(crate) fn refuse(model: &str, stateful: bool, method: &str) -> Result<()> {
    if !stateful {
        return Ok(());
    }
    let instead = if method.starts_with("evaluate") || method == "test_on_batch" {
        "evaluate_stateful"
    } else {
        "predict_stateful"
    };
    Err(Error::InvalidArgument {
        layer: model.to_string(),
        message: format!(
            "this model has stateful layers, whose states each call updates: run it with \
             {instead} (which takes &mut self), not {method}"
        ),
    })
}

/// The states a call of a stateful model as a layer starts from, one entry per layer, split
/// from those the context gives (`None` for a stateless model).
///
/// # Errors
/// A stateful model called without its states: who calls it so could not keep the states
/// the call updates (`fit` and the `*_stateful` methods give them).
pub(crate) fn given_states(
    model: &str,
    layers: &[Box<dyn Layer>],
    ctx: &mut CallContext,
) -> Result<Option<Vec<Option<States>>>> {
    if !layers.iter().any(|l| l.is_stateful()) {
        return Ok(None);
    }
    let Some(states) = ctx.take_states() else {
        return Err(Error::InvalidArgument {
            layer: model.to_string(),
            message: "this model has stateful layers, whose states each call updates: a call \
                      of it as a layer must be given their states, as fit and predict_stateful \
                      give them"
                .into(),
        });
    };
    split_states(model, layers, states).map(Some)
}

/// The states of `layers`' stateful ones, in order, as one list: a model's
/// [`Layer::states`].
pub(crate) fn nested_states(layers: &[Box<dyn Layer>]) -> States {
    layers
        .iter()
        .filter(|l| l.is_stateful())
        .flat_map(|l| l.states())
        .collect()
}

/// A model's states split back into one entry per layer: `Some` with as many arrays as each
/// stateful layer carries, `None` for the others.
///
/// # Errors
/// When `states` does not hold as many arrays as the stateful layers carry.
pub(crate) fn split_states(
    model: &str,
    layers: &[Box<dyn Layer>],
    states: Vec<Array2<f32>>,
) -> Result<Vec<Option<States>>> {
    let counts: Vec<Option<usize>> = layers
        .iter()
        .map(|l| l.is_stateful().then(|| l.states().len()))
        .collect();
    let total: usize = counts.iter().flatten().sum();
    if states.len() != total {
        return Err(Error::InvalidArgument {
            layer: model.to_string(),
            message: format!(
                "the model's stateful layers carry {total} state(s), got {} array(s)",
                states.len()
            ),
        });
    }
    let mut rest = states.into_iter();
    Ok(counts
        .into_iter()
        .map(|c| c.map(|c| rest.by_ref().take(c).collect()))
        .collect())
}

/// One entry per layer to start a run from: each stateful layer's own states.
pub(crate) fn carried_states(layers: &[Box<dyn Layer>]) -> Vec<Option<States>> {
    layers
        .iter()
        .map(|l| l.is_stateful().then(|| l.states()))
        .collect()
}

/// The entries of a run joined into a model's states (the inverse of [`split_states`]).
pub(crate) fn join_states(per_layer: Vec<Option<States>>) -> States {
    per_layer.into_iter().flatten().flatten().collect()
}

/// Gives each stateful layer its entry, all or nothing: when a layer refuses its entry, the
/// layers before it get their states back.
///
/// # Errors
/// The first layer's refusal (a count or shape that is not its states').
pub(crate) fn set_nested_states(
    layers: &mut [Box<dyn Layer>],
    per_layer: Vec<Option<States>>,
) -> Result<()> {
    let mut before: Vec<(usize, States)> = Vec::new();
    for (i, (layer, states)) in layers.iter_mut().zip(per_layer).enumerate() {
        let Some(states) = states else { continue };
        let previous = layer.states();
        if let Err(e) = layer.set_states(states) {
            for (j, s) in before {
                // The layer held these a moment ago, so they fit.
                let _ = layers[j].set_states(s);
            }
            return Err(e);
        }
        before.push((i, previous));
    }
    Ok(())
}

/// The batch size a stateful model was built for: the rows of its first state (`None` for a
/// model without states).
pub(crate) fn fixed_batch(model: &dyn Layer) -> Option<usize> {
    if !model.is_stateful() {
        return None;
    }
    model.states().first().map(Array2::nrows)
}

/// Refuses `n` samples that do not make whole batches of `batch`, the size a stateful model
/// was built for. Keras fails on the last, shorter batch only, after training on the others
/// (`Incompatible shapes: [2,3] vs. [4,3]`); seqnn refuses before the first.
pub(crate) fn check_whole_batches(model: &str, batch: usize, n: usize) -> Result<()> {
    if n.is_multiple_of(batch) {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        layer: model.to_string(),
        message: format!(
            "this stateful model runs batches of {batch}, so the number of samples must be a \
             multiple of {batch}; got {n}"
        ),
    })
}

/// Refuses to run `n` samples in batches of `batch_size` on a stateful model built for
/// batches of `fixed`: every batch must have `fixed` rows. The first batch's size is
/// Keras 3's error (tf_keras's is that of the layer's input spec, `expected shape=(4, None,
/// 2), found shape=(2, 5, 2)`), the last's as [`check_whole_batches`].
pub(crate) fn check_batches(model: &str, fixed: usize, n: usize, batch_size: usize) -> Result<()> {
    let first = batch_size.min(n);
    if first != fixed {
        return Err(batch_mismatch(model, fixed, first));
    }
    check_whole_batches(model, fixed, n)
}

/// Keras 3's error for a batch of `got` rows given to the stateful layer (or model) `layer`,
/// built for `expected`.
pub(crate) fn batch_mismatch(layer: &str, expected: usize, got: usize) -> Error {
    Error::InvalidArgument {
        layer: layer.to_string(),
        message: format!(
            "If an RNN is stateful, the batch size of the input sequences must be the same as \
             the batch size of the initial state. \n- Expected batch size: {expected}\n- \
             Received batch size: {got}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_must_all_have_the_built_size() {
        assert!(check_batches("m", 4, 8, 4).is_ok());
        // One batch of all the samples, as Keras takes a batch_size above their number.
        assert!(check_batches("m", 4, 4, 32).is_ok());
        let err = check_batches("m", 4, 8, 2).unwrap_err().to_string();
        assert!(
            err.contains("Expected batch size: 4\n- Received batch size: 2"),
            "{err}"
        );
        let err = check_batches("m", 4, 8, 32).unwrap_err().to_string();
        assert!(err.contains("Received batch size: 8"), "{err}");
        let err = check_batches("m", 4, 10, 4).unwrap_err().to_string();
        assert!(err.contains("multiple of 4; got 10"), "{err}");
    }
}
