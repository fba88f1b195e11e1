//! The weight regularizers and constraints of a model, as one training call applies them.

use ndarray::{ArrayD, ArrayViewD};

use crate::error::{Error, Result};
use crate::layer::{untrainable_activity, Layer};
use crate::train::loss::Dialect;
use crate::train::WeightRule;

/// A model's weight rules, fixed for a call: which penalties its loss takes, which gradients
/// they reach, which weights are projected after a step.
///
/// Both Kerases add `Σ regularizer(w)` to the loss and its gradient to the trainable weights'
/// gradients, then project each trainable weight by its constraint after the optimizer's step.
/// They differ on a frozen weight's penalty: tf_keras 2.21's `model.losses` takes every
/// layer's (a constant in the loss, with no gradient), Keras 3.15's only those of
/// `trainable_weights`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Penalties {
    /// One per weight, in the model's order; empty when the model has no rule at all.
    rules: Vec<WeightRule>,
    /// Whether each weight's penalty counts in the loss.
    counted: Vec<bool>,
    /// Whether each weight is trainable (gets the penalty's gradient and its constraint).
    trainable: Vec<bool>,
}

impl Penalties {
    /// The rules of `model`, whose weights' trainable flags are `trainable`, checked: every
    /// regularizer can train and every constraint fits its weight's shape.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a regularizer training cannot compute
    /// (`OrthogonalRegularizer`), of a weight or as a layer's `activity_regularizer` (whose
    /// penalties the call itself adds, see [`CallContext::with_activity_penalties`]);
    /// [`Error::InvalidArgument`] for a constraint over an axis its weight lacks.
    ///
    /// [`CallContext::with_activity_penalties`]: crate::CallContext::with_activity_penalties
    pub(crate) fn of(model: &dyn Layer, trainable: &[bool], dialect: Dialect) -> Result<Self> {
        if let Some((layer, r)) =
            (model.activity_regularizers().into_iter()).find(|(_, r)| !r.trains())
        {
            return Err(untrainable_activity(&layer, &r));
        }
        let rules = model.weight_rules();
        if rules
            .iter()
            .all(|r| r.regularizer.is_none() && r.constraint.is_none())
        {
            return Ok(Penalties::default());
        }
        let specs = model.weight_specs();
        for (rule, spec) in rules.iter().zip(&specs) {
            if let Some(r) = rule.regularizer.filter(|r| !r.trains()) {
                return Err(Error::Unsupported {
                    layer: model.name().to_string(),
                    class: r.class_name().to_string(),
                    message: format!(
                        "the {} of weight {} is not implemented in training",
                        r.class_name(),
                        spec.name
                    ),
                });
            }
            if let Some(c) = &rule.constraint {
                c.check(&format!("{}/{}", model.name(), spec.name), &spec.shape)?;
            }
        }
        let counted = trainable
            .iter()
            .map(|&t| t || dialect == Dialect::TfKeras)
            .collect();
        Ok(Penalties {
            rules,
            counted,
            trainable: trainable.to_vec(),
        })
    }

    /// The penalties of `weights` that the loss takes.
    pub(crate) fn loss(&self, weights: &[ArrayViewD<'_, f32>]) -> f32 {
        let mut total = 0.0_f32;
        for ((rule, &counted), w) in self.rules.iter().zip(&self.counted).zip(weights) {
            if let (Some(r), true) = (rule.regularizer, counted) {
                total += r.penalty(w.view());
            }
        }
        total
    }

    /// Adds the penalties' gradients to the trainable weights' `grads`.
    pub(crate) fn add_gradients(&self, weights: &[ArrayViewD<'_, f32>], grads: &mut [ArrayD<f32>]) {
        for (((rule, &trainable), w), g) in (self.rules.iter().zip(&self.trainable))
            .zip(weights)
            .zip(grads)
        {
            if let (Some(r), true) = (rule.regularizer, trainable) {
                r.add_gradient(w.view(), 1.0, g.view_mut());
            }
        }
    }

    /// Projects the trainable weights by their constraints.
    pub(crate) fn constrain(&self, weights: &mut [ArrayD<f32>]) -> Result<()> {
        for ((rule, &trainable), w) in (self.rules.iter().zip(&self.trainable)).zip(weights) {
            if let (Some(c), true) = (&rule.constraint, trainable) {
                c.apply(&mut w.view_mut())?;
            }
        }
        Ok(())
    }

    /// Whether the model has no penalty and no constraint.
    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
