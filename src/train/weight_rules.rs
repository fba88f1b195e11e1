//! What a layer's Keras options `kernel_regularizer`, `kernel_constraint`, `bias_regularizer`,
//! ..., and `activity_regularizer` ask of training, kept by the layer.

use crate::layer::WeightSpec;
use crate::train::{Constraint, Regularizer};

/// The regularizer and the constraint of one weight, as training applies them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WeightRule {
    /// The penalty added to the loss (Keras's `<weight>_regularizer`).
    pub regularizer: Option<Regularizer>,
    /// The projection after each optimizer step (Keras's `<weight>_constraint`).
    pub constraint: Option<Constraint>,
}

/// A layer's regularizers and constraints, by Keras's option prefix: `kernel`, `recurrent`
/// (the recurrent kernel), `bias`, `embeddings`, `gamma`, `beta`, ...; and its
/// `activity_regularizer`.
///
/// A prefix applies to every weight of the layer whose name ends with it (`recurrent` with
/// `recurrent_kernel`): MultiHeadAttention's `kernel_regularizer` reaches its query, key,
/// value and output kernels, as in Keras.
///
/// ```
/// use seqnn::train::{Regularizer, WeightRules};
/// use seqnn::WeightSpec;
/// let mut rules = WeightRules::new();
/// rules.set_regularizer("kernel", Some(Regularizer::l2(0.01)));
/// let specs = [WeightSpec::new("kernel", vec![3, 2]), WeightSpec::new("bias", vec![2])];
/// let per_weight = rules.for_specs(&specs);
/// assert_eq!(per_weight[0].regularizer, Some(Regularizer::l2(0.01)));
/// assert_eq!(per_weight[1].regularizer, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WeightRules {
    by_prefix: Vec<(String, WeightRule)>,
    activity: Option<Regularizer>,
}

impl WeightRules {
    /// No regularizer, no constraint (Keras's defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// The option prefix a weight named `name` answers to: its last path component, with
    /// `recurrent_kernel` answering to `recurrent`.
    pub fn prefix_of(name: &str) -> &str {
        let last = name.rsplit('/').next().unwrap_or(name);
        match last {
            "recurrent_kernel" => "recurrent",
            other => other,
        }
    }

    fn entry(&mut self, prefix: &str) -> &mut WeightRule {
        let i = match self.by_prefix.iter().position(|(p, _)| p == prefix) {
            Some(i) => i,
            None => {
                self.by_prefix
                    .push((prefix.to_string(), WeightRule::default()));
                self.by_prefix.len() - 1
            }
        };
        &mut self.by_prefix[i].1
    }

    /// Sets the regularizer of the weights answering to `prefix` (`None` removes it).
    pub fn set_regularizer(&mut self, prefix: &str, regularizer: Option<Regularizer>) {
        self.entry(prefix).regularizer = regularizer;
    }

    /// Sets the constraint of the weights answering to `prefix` (`None` removes it).
    pub fn set_constraint(&mut self, prefix: &str, constraint: Option<Constraint>) {
        self.entry(prefix).constraint = constraint;
    }

    /// Sets Keras's `activity_regularizer`: a penalty on the layer's outputs, divided by the
    /// batch size, as Keras adds it.
    pub fn set_activity(&mut self, regularizer: Option<Regularizer>) {
        self.activity = regularizer;
    }

    /// The rule of the weights answering to `prefix`.
    pub fn rule(&self, prefix: &str) -> WeightRule {
        self.by_prefix
            .iter()
            .find(|(p, _)| p == prefix)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    }

    /// The activity regularizer.
    pub fn activity(&self) -> Option<Regularizer> {
        self.activity
    }

    /// The prefixes that have a regularizer or a constraint, with their rules.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &WeightRule)> {
        self.by_prefix
            .iter()
            .filter(|(_, r)| r.regularizer.is_some() || r.constraint.is_some())
            .map(|(p, r)| (p.as_str(), r))
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.activity.is_none() && self.iter().next().is_none()
    }

    /// One rule per spec, in order: the rule of the spec's prefix (whether the weight is
    /// trainable or not; training decides what a frozen weight's penalty counts for).
    pub fn for_specs(&self, specs: &[WeightSpec]) -> Vec<WeightRule> {
        specs
            .iter()
            .map(|s| self.rule(Self::prefix_of(&s.name)))
            .collect()
    }
}
