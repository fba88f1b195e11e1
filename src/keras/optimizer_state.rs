//! The optimizer's state in Keras files: what `model.save()` writes after training, so that
//! `load_model` resumes exactly where the run stopped.
//!
//! - Keras 3 `.keras` (and `.weights.h5`): `optimizer/vars/<i>` in `model.weights.h5`, the
//!   group's `name` attribute the optimizer's name, one dataset per variable of
//!   `optimizer.variables` in its order: `iteration` (int64), `learning_rate` (float32, for a
//!   constant rate), the slots, the optimizer's own (Nadam's `u_product`). Saved before the
//!   first step, the list is `iteration` and `learning_rate` alone.
//! - tf_keras `.keras`: the same group, no `name` attribute, `iteration` then the slots (tf_keras
//!   keeps neither its learning rate nor Nadam's `u_product` among its variables: the rate
//!   comes from the compile config, the product from the step count, as an uninterrupted run
//!   has it).
//! - legacy `.h5` (tf_keras, Keras 3): the group `optimizer_weights`, its attribute
//!   `weight_names` listing the datasets in the optimizer's order (tf_keras:
//!   `iteration:0`, `Adam/m/dense/kernel:0`, ...; Keras 3: its own names).
//!
//! Keras's slot groups are in the same order in both Kerases (Adam: each variable's `m`, `v`,
//! then every `vhat`), so the mapping is positional; the legacy names are checked against it.

use hdf5_pure::{Datatype, File};

use crate::keras::config::{Dialect, Loaded};
use crate::keras::hdf5::{attr_strings, attrs, read_weight};
use crate::keras::LoadError;
use crate::layer::{Layer, WeightSpec};
use crate::shape::Shape;
use crate::train::fit::Compiled;
use crate::train::optimizer::{Optimizer, OptimizerVariable, VariableRole, VariableValue};

/// Where a file keeps its optimizer's state, and whose layout it is.
#[derive(Clone, Copy)]
pub(crate) enum Stored {
    /// `optimizer/vars/<i>` of a `.keras` archive or a `.weights.h5` file.
    Vars(Dialect),
    /// `optimizer_weights` of a legacy `.h5` file.
    Legacy(Dialect),
}

/// One variable in the file: where it is and how errors name it.
struct Entry {
    path: String,
    /// The file's name of it (legacy `.h5`), if it has one.
    name: Option<String>,
}

/// Restores the state `file` holds into the optimizer `model` was compiled with (as Keras's
/// `load_model` does), checked whole before anything is set. A model that is not compiled, a
/// file without optimizer state, and a file whose optimizer had not taken a step (Keras saves
/// `iteration` = 0 and no slots then) leave the optimizer as it is.
pub(crate) fn restore(model: &mut Loaded, file: &File, stored: Stored) -> Result<(), LoadError> {
    let restored = match model {
        Loaded::Sequential(m) => with_state(&*m, m.compiled(), file, stored, None)?,
        Loaded::Functional(m) => with_state(&*m, m.compiled(), file, stored, None)?,
    };
    if let Some(compiled) = restored {
        match model {
            Loaded::Sequential(m) => m.compile_with(compiled),
            Loaded::Functional(m) => m.compile_with(compiled),
        }
    }
    Ok(())
}

/// `compiled` with its optimizer given the state `file` holds for `model`, or `None` when
/// there is nothing to restore: the model is not compiled, the file holds no state or that of
/// an optimizer before its first step, or (`file_class`, the class of the file's own
/// optimizer, for weights loaded into a model compiled apart from the file) the state is that
/// of another optimizer class, which Keras's `load_weights` skips too.
pub(crate) fn with_state(
    model: &dyn Layer,
    compiled: Option<&Compiled>,
    file: &File,
    stored: Stored,
    file_class: Option<&str>,
) -> Result<Option<Compiled>, LoadError> {
    let Some(compiled) = compiled else {
        return Ok(None);
    };
    if file_class.is_some_and(|c| c != compiled.optimizer().class_name()) {
        return Ok(None);
    }
    let Some(entries) = entries(file, stored)? else {
        return Ok(None);
    };
    let specs = crate::train::fit::trainable_specs(model);
    let restored = restored(compiled.optimizer(), &specs, file, &entries, stored)?;
    Ok(restored.map(|optimizer| compiled.clone().with_optimizer(optimizer)))
}

/// The file's optimizer variables in order, or `None` when it has none.
fn entries(file: &File, stored: Stored) -> Result<Option<Vec<Entry>>, LoadError> {
    match stored {
        Stored::Vars(_) => {
            let Ok(group) = file.group("optimizer/vars") else {
                return Ok(None);
            };
            let names = group
                .datasets()
                .map_err(|e| LoadError::sourced(format!("cannot list optimizer/vars ({e})"), e))?;
            let mut indices = Vec::with_capacity(names.len());
            for name in &names {
                match name.parse::<usize>() {
                    Ok(i) if i < names.len() => indices.push(i),
                    _ => {
                        return Err(format!(
                            "optimizer/vars holds a dataset named {name:?}, where Keras numbers \
                             its {} optimizer variables 0 to {}",
                            names.len(),
                            names.len().saturating_sub(1)
                        )
                        .into())
                    }
                }
            }
            indices.sort_unstable();
            indices.dedup();
            if indices.len() != names.len() {
                return Err("optimizer/vars numbers two datasets alike".into());
            }
            Ok(Some(
                (0..names.len())
                    .map(|i| Entry {
                        path: format!("optimizer/vars/{i}"),
                        name: None,
                    })
                    .collect(),
            ))
        }
        Stored::Legacy(_) => {
            let Ok(a) = attrs(file, "optimizer_weights") else {
                return Ok(None);
            };
            let names = attr_strings(&a, "weight_names").unwrap_or_default();
            // Keras 2.0 to tf.keras 2.10 (the optimizers before tf_keras's rewrite) name their
            // counter `iterations`, `iter` or `training/...`: that state is not read.
            if names
                .first()
                .is_none_or(|n| n.trim_end_matches(":0") != "iteration")
            {
                return Ok(None);
            }
            Ok(Some(
                names
                    .into_iter()
                    .map(|n| Entry {
                        path: format!("optimizer_weights/{n}"),
                        name: Some(n),
                    })
                    .collect(),
            ))
        }
    }
}

/// Whether the file lists every variable of Keras 3's list (with `learning_rate` and the
/// optimizer's own), or tf_keras's (`iteration` and the slots).
fn keras3_list(stored: Stored) -> bool {
    matches!(
        stored,
        Stored::Vars(Dialect::Keras3) | Stored::Legacy(Dialect::Keras3)
    )
}

/// The optimizer with the file's state, or `None` for a file whose optimizer had not been
/// built.
fn restored(
    current: &dyn Optimizer,
    specs: &[WeightSpec],
    file: &File,
    entries: &[Entry],
    stored: Stored,
) -> Result<Option<Box<dyn Optimizer>>, LoadError> {
    let mut optimizer = current.box_clone();
    let unbuilt = optimizer.variables().len();
    if !optimizer.is_built() {
        optimizer.build(specs)?;
    }
    let expected = optimizer.variables();
    let in_file: Vec<usize> = (0..expected.len())
        .filter(|&j| {
            keras3_list(stored)
                || matches!(
                    expected[j].role,
                    VariableRole::Iterations | VariableRole::Slot { .. }
                )
        })
        .collect();
    let what = format!("the optimizer's state ({})", optimizer.class_name());
    if entries.len() != in_file.len() {
        // Saved before its first step: `iteration` (and Keras 3's `learning_rate`) alone.
        let before_first_step = if keras3_list(stored) { unbuilt } else { 1 };
        if entries.len() == before_first_step && in_file.len() > before_first_step {
            return match read_iterations(file, &entries[0], &expected[0])? {
                0 => Ok(None),
                n => Err(format!(
                    "{what}: the file's optimizer counts {n} steps but holds no slots: \
                     {} variables, where the model's {} has {}",
                    entries.len(),
                    optimizer.class_name(),
                    in_file.len()
                )
                .into()),
            };
        }
        return Err(format!(
            "{what}: the file holds {} optimizer variables, but the model's {} over its {} \
             trainable weights has {}{}",
            entries.len(),
            optimizer.class_name(),
            specs.len(),
            in_file.len(),
            first_missing(&expected, &in_file, entries.len())
        )
        .into());
    }
    let mut values: Vec<VariableValue> = expected.iter().map(|v| v.value.clone()).collect();
    for (k, (entry, &j)) in entries.iter().zip(&in_file).enumerate() {
        let variable = &expected[j];
        check_name(entry, variable, k, stored).map_err(|m| format!("{what}: {m}"))?;
        values[j] = match variable.role {
            VariableRole::Iterations => {
                VariableValue::Int64(read_iterations(file, entry, variable)?)
            }
            _ => {
                let shape = match &variable.value {
                    VariableValue::Float32(a) => a.shape().to_vec(),
                    VariableValue::Int64(_) => Vec::new(),
                };
                let value = read_weight(file, &entry.path, &shape).map_err(|m| {
                    format!(
                        "{what}: variable {j} ({}) does not fit: {}",
                        variable.name,
                        m.replace("the model expects", "the model's optimizer has")
                    )
                })?;
                if value.iter().any(|v| !v.is_finite()) {
                    return Err(format!(
                        "{what}: variable {j} ({}) at {} holds a value that is not finite",
                        variable.name, entry.path
                    )
                    .into());
                }
                VariableValue::Float32(value)
            }
        };
    }
    if !keras3_list(stored) {
        // tf_keras keeps no globals: they are those of an uninterrupted run (tf_keras itself
        // restarts Nadam's u_product from 1, and so does not resume exactly).
        let iterations = match values.first() {
            Some(VariableValue::Int64(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        };
        let mut globals = optimizer.globals_at(iterations).into_iter();
        for (value, variable) in values.iter_mut().zip(&expected) {
            if variable.role == VariableRole::Global {
                if let Some(g) = globals.next() {
                    *value = VariableValue::Float32(ndarray::arr0(g).into_dyn());
                }
            }
        }
    }
    optimizer.set_variables(&values)?;
    Ok(Some(optimizer))
}

/// For an error on the count: the first variable of the model's optimizer that the file
/// lacks, or that the file has beyond it.
fn first_missing(expected: &[OptimizerVariable], in_file: &[usize], stored: usize) -> String {
    match in_file.get(stored) {
        Some(&j) => format!(
            " (the first it lacks is variable {j}, {})",
            expected[j].name
        ),
        None => format!(" (the file's variable {} is one too many)", in_file.len()),
    }
}

/// The step counter: an integer scalar.
fn read_iterations(
    file: &File,
    entry: &Entry,
    variable: &OptimizerVariable,
) -> Result<i64, LoadError> {
    let path = &entry.path;
    let ds = file
        .dataset(path)
        .map_err(|e| format!("missing optimizer variable {path} ({e})"))?;
    let shape = ds
        .shape()
        .map_err(|e| format!("cannot read the shape of {path} ({e})"))?;
    if !shape.iter().all(|&d| d == 1) {
        let dims: Vec<usize> = shape
            .iter()
            .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
            .collect();
        return Err(format!(
            "optimizer variable 0 ({}) at {path} has shape {}, but Keras's step counter is a \
             scalar",
            variable.name,
            Shape::known(&dims)
        )
        .into());
    }
    match ds.datatype() {
        Ok(Datatype::FixedPoint { .. }) => {}
        _ => {
            return Err(format!(
                "optimizer variable 0 ({}) at {path} is not an integer, but Keras's step \
                 counter is int64",
                variable.name
            )
            .into())
        }
    }
    let values = ds
        .read_i64()
        .map_err(|e| format!("cannot read {path} ({e})"))?;
    match values.as_slice() {
        [n] if *n >= 0 => Ok(*n),
        [n] => Err(format!("optimizer variable 0 ({}) at {path} is {n}", variable.name).into()),
        _ => Err(format!("{path} holds {} values, not one", values.len()).into()),
    }
}

/// tf_keras's short name of a slot kind (`Adam/m/dense/kernel:0`), where it has one (its
/// RMSprop's `velocity` is Keras 3's name).
fn tf_keras_kind(kind: &str) -> &str {
    match kind {
        "momentum" => "m",
        "velocity" => "v",
        "velocity_hat" => "vhat",
        "norm" => "u",
        other => other,
    }
}

/// A legacy file's name for the variable, checked against what the model's optimizer has at
/// that place.
fn check_name(
    entry: &Entry,
    variable: &OptimizerVariable,
    index: usize,
    stored: Stored,
) -> Result<(), String> {
    let Some(name) = &entry.name else {
        return Ok(());
    };
    let bare = name.trim_end_matches(":0");
    let fits = match (variable.role, stored) {
        (VariableRole::Iterations, _) => bare == "iteration",
        (VariableRole::LearningRate, _) => bare == "learning_rate",
        (VariableRole::Slot { kind, .. }, Stored::Legacy(Dialect::Keras2)) => bare
            .split('/')
            .nth(1)
            .is_some_and(|k| k == kind || k == tf_keras_kind(kind)),
        (VariableRole::Slot { kind, .. }, _) => bare.ends_with(&format!("_{kind}")),
        _ => true,
    };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "the file's optimizer variable {index} is {name}, where the model's optimizer has \
             {}",
            variable.name
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_keras_names_its_slots_briefly() {
        assert_eq!(tf_keras_kind("momentum"), "m");
        assert_eq!(tf_keras_kind("velocity_hat"), "vhat");
        assert_eq!(tf_keras_kind("average_gradient"), "average_gradient");
    }
}
