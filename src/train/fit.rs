//! The fit loop: Keras's `compile`, `fit`, `evaluate`, `train_on_batch` and `test_on_batch`,
//! for any model that is a [`Layer`] with a backward pass ([`Sequential`](crate::Sequential),
//! [`Model`](crate::Model)).
//!
//! One training step, as Keras's `train_step`:
//!
//! ```text
//! y_pred = model(x, training=True)                  (each layer keeps what backward needs)
//! loss   = compiled loss of (y, y_pred), masked by the output's mask
//!          + the weights' penalties + the layers' activity penalties (Keras's `model.losses`)
//! grads  = backward of the model from d loss / d y_pred (each activity penalty's gradient
//!          joining its layer's output's)
//! optimizer.apply(trainable weights, their grads)   (clipping, weight decay, schedule inside)
//! the layers' updates (BatchNormalization's moving statistics) set, from the training call
//! ```
//!
//! Keras assigns the moving statistics inside the call; seqnn's call takes `&self`, so the
//! call keeps them in its record and [`Layer::updates`] hands them to the step, which sets them
//! with the optimizer's new weights in one `set_weights`: once per step, and not at all for a
//! step that fails.
//!
//! The `loss` Keras logs for an epoch is the mean of the batches' losses weighted by their
//! sizes; so is seqnn's. A step whose loss is not finite stops training with an error naming
//! the epoch and batch, before the weights change, so the model keeps those of the last finite
//! step.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis};

use crate::activation::ActivationFn;
use crate::error::{Error, Result};
use crate::layer::{CallContext, Layer, States, WeightSpec};
use crate::shape::Shape;
use crate::stateful;
use crate::train::callbacks::{Callback, CallbackList, Logs, Params};
use crate::train::loss::{Dialect, Loss, Weighting};
use crate::train::metric::Metric;
use crate::train::optimizer::Optimizer;
use crate::train::penalties::Penalties;
use crate::train::progress::Progress;
use crate::train::sample_weight;

/// An optimizer as `compile` takes it: a Keras name (`"adam"`) or an optimizer value.
pub trait IntoOptimizer {
    /// The optimizer.
    ///
    /// # Errors
    /// [`Error::UnknownName`] for a name Keras does not know.
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>>;
}

impl IntoOptimizer for &str {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>> {
        crate::train::optimizer::optimizer_from_name(self)
    }
}

impl<O: Optimizer + 'static> IntoOptimizer for O {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>> {
        Ok(Box::new(self))
    }
}

impl IntoOptimizer for Box<dyn Optimizer> {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>> {
        Ok(self)
    }
}

/// A loss as `compile` takes it: a Keras name (`"mse"`) or a [`Loss`].
pub trait IntoLoss {
    /// The loss.
    ///
    /// # Errors
    /// [`Error::UnknownName`] for a name Keras does not know.
    fn into_loss(self) -> Result<Loss>;
}

impl IntoLoss for &str {
    fn into_loss(self) -> Result<Loss> {
        Loss::from_name(self)
    }
}

impl IntoLoss for Loss {
    fn into_loss(self) -> Result<Loss> {
        Ok(self)
    }
}

/// Targets as a Functional model's `fit` and `evaluate` take them: one array for a model of one
/// output (`y.view()`), a slice or a `Vec` of arrays, in output order, for several
/// (`&[y1.view(), y2.view()]`), as Keras's `fit(x, [y1, y2])`.
pub trait IntoTargets<'a> {
    /// The target arrays, one per output.
    fn into_targets(self) -> Vec<ArrayViewD<'a, f32>>;
}

impl<'a> IntoTargets<'a> for ArrayViewD<'a, f32> {
    fn into_targets(self) -> Vec<ArrayViewD<'a, f32>> {
        vec![self]
    }
}

impl<'a> IntoTargets<'a> for &[ArrayViewD<'a, f32>] {
    fn into_targets(self) -> Vec<ArrayViewD<'a, f32>> {
        self.to_vec()
    }
}

impl<'a, const N: usize> IntoTargets<'a> for &[ArrayViewD<'a, f32>; N] {
    fn into_targets(self) -> Vec<ArrayViewD<'a, f32>> {
        self.to_vec()
    }
}

impl<'a> IntoTargets<'a> for Vec<ArrayViewD<'a, f32>> {
    fn into_targets(self) -> Vec<ArrayViewD<'a, f32>> {
        self
    }
}

/// What `compile` sets: the optimizer (with its state), the loss of each output and their
/// weights, the metrics, and which Keras's arithmetic the losses follow where tf_keras and
/// Keras 3 differ.
///
/// A model of several outputs is trained on `Σ loss_weights[i] · loss_i(y_i, y_pred_i)`, as
/// Keras's `compile(loss=[...], loss_weights=[...])`; one loss serves every output.
///
/// ```
/// use seqnn::{Compiled, Loss, SGD};
/// // model.compile("sgd", loss=["mse", "sparse_categorical_crossentropy"],
/// //               loss_weights=[1.0, 0.5], metrics={"cls": "accuracy"})
/// let compiled = Compiled::new(Box::new(SGD::new()), Loss::MeanSquaredError)
///     .with_losses(vec![
///         Loss::MeanSquaredError,
///         Loss::SparseCategoricalCrossentropy { from_logits: false, ignore_class: None },
///     ])
///     .with_loss_weights(vec![1.0, 0.5])
///     .with_output_metrics("cls", &["accuracy"])?;
/// assert_eq!(compiled.loss_weights(), &[1.0, 0.5]);
/// # Ok::<(), seqnn::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Compiled {
    optimizer: Box<dyn Optimizer>,
    losses: Vec<Loss>,
    loss_weights: Vec<f32>,
    dialect: Dialect,
    metrics: MetricSet,
    weighted: MetricSet,
}

/// The metrics of a `compile` argument (`metrics` or `weighted_metrics`): those of every
/// output, and those of single outputs by output name.
#[derive(Debug, Clone, Default)]
struct MetricSet {
    all: Vec<Metric>,
    by_output: Vec<(String, Vec<Metric>)>,
}

impl MetricSet {
    fn add_for(&mut self, output: &str, metric: Metric) {
        match self.by_output.iter_mut().find(|(o, _)| o == output) {
            Some((_, list)) => list.push(metric),
            None => self.by_output.push((output.to_string(), vec![metric])),
        }
    }

    /// The same metrics, made again in `dialect`'s Keras.
    fn redialect(&mut self, dialect: Dialect) {
        let all = (self.all.iter_mut()).chain(self.by_output.iter_mut().flat_map(|(_, m)| m));
        for m in all {
            *m = Metric::from_name(m.name(), dialect).unwrap_or_else(|_| m.clone());
        }
    }

    /// One list per output of `names` (each fresh), or the error for an output name the model
    /// lacks.
    fn bind(&self, model: &str, names: &[String], what: &str) -> Result<Vec<Vec<Metric>>> {
        let mut lists: Vec<Vec<Metric>> = vec![self.all.clone(); names.len()];
        for (output, list) in &self.by_output {
            let Some(i) = names.iter().position(|o| o == output) else {
                return Err(invalid(
                    model,
                    format!(
                        "{what} were given for the output {output:?}, which the model does \
                         not have; its outputs are {names:?}"
                    ),
                ));
            };
            lists[i].extend(list.iter().cloned());
        }
        lists.iter_mut().flatten().for_each(Metric::reset);
        Ok(lists)
    }
}

impl Compiled {
    /// A compile configuration: Keras's `model.compile(optimizer=..., loss=...)`.
    pub fn new(optimizer: Box<dyn Optimizer>, loss: Loss) -> Self {
        Compiled {
            optimizer,
            losses: vec![loss],
            loss_weights: Vec::new(),
            dialect: Dialect::TfKeras,
            metrics: MetricSet::default(),
            weighted: MetricSet::default(),
        }
    }

    /// The same, with one loss per output, in the model's output order (Keras's
    /// `loss=[...]`). An empty list keeps the loss there was.
    #[must_use]
    pub fn with_losses(mut self, losses: Vec<Loss>) -> Self {
        if !losses.is_empty() {
            self.losses = losses;
        }
        self
    }

    /// The same, with Keras's `loss_weights=[...]`: the factor of each output's loss in the
    /// loss that is minimized (default 1 each).
    #[must_use]
    pub fn with_loss_weights(mut self, weights: Vec<f32>) -> Self {
        self.loss_weights = weights;
        self
    }

    /// The same, with metrics for one output only, by the output's name (Keras's
    /// `metrics={"cls": ["accuracy"]}`); logged as `cls_accuracy`.
    ///
    /// # Errors
    /// [`Error::UnknownName`] for a metric name Keras does not know.
    pub fn with_output_metrics(mut self, output: &str, names: &[&str]) -> Result<Self> {
        for m in self.named(names)? {
            self.metrics.add_for(output, m);
        }
        Ok(self)
    }

    /// The same, with the loss and metrics computed as `dialect`'s Keras computes them
    /// (default tf_keras).
    #[must_use]
    pub fn with_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self.metrics.redialect(dialect);
        self.weighted.redialect(dialect);
        self
    }

    /// The same, with Keras's `metrics=[...]`, by their Keras names (`"accuracy"`, `"mae"`).
    ///
    /// # Errors
    /// [`Error::UnknownName`] for a name Keras does not know.
    pub fn with_metrics(mut self, names: &[&str]) -> Result<Self> {
        self.metrics.all = self.named(names)?;
        Ok(self)
    }

    /// The same, with Keras's `weighted_metrics=[...]`, for every output: metrics that take
    /// the sample weights (`sample_weight`, and `class_weight` in `fit`), where the `metrics`
    /// take the mask alone. Keras logs each under its name, or, where a metric already has
    /// it, as `weighted_<name>` (and Keras 3 then `weighted_<name>_1`, ...; tf_keras refuses
    /// a name twice).
    ///
    /// ```
    /// use seqnn::{Compiled, Loss, SGD};
    /// // model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"],
    /// //               weighted_metrics=["accuracy"])  logs accuracy and weighted_accuracy
    /// let compiled = Compiled::new(Box::new(SGD::new()), Loss::sparse_categorical_crossentropy())
    ///     .with_metrics(&["accuracy"])?
    ///     .with_weighted_metrics(&["accuracy"])?;
    /// assert_eq!(compiled.weighted_metrics()[0].name(), "accuracy");
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownName`] for a name Keras does not know.
    pub fn with_weighted_metrics(mut self, names: &[&str]) -> Result<Self> {
        self.weighted.all = self.named(names)?;
        Ok(self)
    }

    /// The same, with weighted metrics for one output only (Keras's
    /// `weighted_metrics={"cls": ["accuracy"]}`).
    ///
    /// # Errors
    /// [`Error::UnknownName`] for a metric name Keras does not know.
    pub fn with_output_weighted_metrics(mut self, output: &str, names: &[&str]) -> Result<Self> {
        for m in self.named(names)? {
            self.weighted.add_for(output, m);
        }
        Ok(self)
    }

    /// The same, with one more weighted metric, for every output.
    #[must_use]
    pub fn with_weighted_metric(mut self, metric: Metric) -> Self {
        self.weighted.all.push(metric);
        self
    }

    /// The same, with one more weighted metric for the output named `output` only.
    #[must_use]
    pub fn with_output_weighted_metric(mut self, output: &str, metric: Metric) -> Self {
        self.weighted.add_for(output, metric);
        self
    }

    /// The metrics Keras names, in this configuration's dialect.
    fn named(&self, names: &[&str]) -> Result<Vec<Metric>> {
        (names.iter())
            .map(|n| Metric::from_name(n, self.dialect))
            .collect()
    }

    /// The same, with another optimizer (a fresh one, as a new `compile` gives).
    #[must_use]
    pub fn with_optimizer(mut self, optimizer: Box<dyn Optimizer>) -> Self {
        self.optimizer = optimizer;
        self
    }

    /// The same, with another loss, for every output.
    #[must_use]
    pub fn with_loss(mut self, loss: Loss) -> Self {
        self.losses = vec![loss];
        self
    }

    /// The optimizer, to change its settings (`set_learning_rate`).
    pub fn optimizer_mut(&mut self) -> &mut dyn Optimizer {
        self.optimizer.as_mut()
    }

    /// The same, with one more metric, for every output.
    #[must_use]
    pub fn with_metric(mut self, metric: Metric) -> Self {
        self.metrics.all.push(metric);
        self
    }

    /// The same, with one more metric for the output named `output` only.
    #[must_use]
    pub fn with_output_metric(mut self, output: &str, metric: Metric) -> Self {
        self.metrics.add_for(output, metric);
        self
    }

    /// The metrics of every output, in their `compile` order.
    pub fn metrics(&self) -> &[Metric] {
        &self.metrics.all
    }

    /// The metrics given for single outputs, by output name
    /// ([`with_output_metrics`](Compiled::with_output_metrics)).
    pub fn output_metrics(&self) -> &[(String, Vec<Metric>)] {
        &self.metrics.by_output
    }

    /// The weighted metrics of every output, in their `compile` order
    /// ([`with_weighted_metrics`](Compiled::with_weighted_metrics)).
    pub fn weighted_metrics(&self) -> &[Metric] {
        &self.weighted.all
    }

    /// The weighted metrics given for single outputs, by output name
    /// ([`with_output_weighted_metrics`](Compiled::with_output_weighted_metrics)).
    pub fn output_weighted_metrics(&self) -> &[(String, Vec<Metric>)] {
        &self.weighted.by_output
    }

    /// The optimizer, with its state.
    pub fn optimizer(&self) -> &dyn Optimizer {
        self.optimizer.as_ref()
    }

    /// The loss (the first output's, for a model of several).
    pub fn loss(&self) -> Loss {
        self.losses[0]
    }

    /// The losses: one for every output, or one per output.
    pub fn losses(&self) -> &[Loss] {
        &self.losses
    }

    /// The factors of the outputs' losses; empty for 1 each.
    pub fn loss_weights(&self) -> &[f32] {
        &self.loss_weights
    }

    /// The compile configuration bound to a model's outputs, named `names`: a loss, a weight
    /// and metrics per output, with Keras's errors for lists that do not match.
    fn bind(&self, model: &str, names: &[String]) -> Result<Bound> {
        let n = names.len();
        let losses = match self.losses.len() {
            1 => vec![self.losses[0]; n],
            k if k == n => self.losses.clone(),
            k => {
                return Err(invalid(
                    model,
                    format!(
                        "When passing a list as loss, it should have one entry per model \
                         outputs. The model has {n} outputs, but you passed {k} losses"
                    ),
                ))
            }
        };
        let weights = match self.loss_weights.len() {
            0 => vec![1.0; n],
            k if k == n => self.loss_weights.clone(),
            k => {
                return Err(invalid(
                    model,
                    format!(
                        "When passing a list as loss_weights, it should have one entry per \
                         model output. The model has {n} outputs, but you passed \
                         loss_weights with {k} entries"
                    ),
                ))
            }
        };
        let metrics = self.metrics.bind(model, names, "metrics")?;
        let weighted = self.weighted.bind(model, names, "weighted_metrics")?;
        let keys = log_keys(model, self.dialect, names, &metrics, &weighted)?;
        Ok(Bound {
            names: names.to_vec(),
            losses,
            weights,
            metrics,
            weighted,
            keys,
        })
    }
}

/// Where a logged metric is in a [`Bound`]: its output, whether it is weighted, its index in
/// that output's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    output: usize,
    weighted: bool,
    index: usize,
}

/// The names Keras logs the metrics under, in its order, as `dialect`'s Keras gives them:
/// `<output>_` before each when there are several outputs; a weighted metric whose name is
/// taken becomes `weighted_<name>`.
///
/// tf_keras (`MetricsContainer._set_metric_names`) lists each output's metrics then its
/// weighted ones and refuses a name twice; Keras 3 (`CompileMetrics.result`) lists every
/// output's metrics, then the weighted ones, and numbers a repeated name (`accuracy_1`;
/// `weighted_accuracy_1`).
///
/// # Errors
/// tf_keras's error for a repeated name.
fn log_keys(
    model: &str,
    dialect: Dialect,
    names: &[String],
    metrics: &[Vec<Metric>],
    weighted: &[Vec<Metric>],
) -> Result<Vec<(String, Slot)>> {
    let several = names.len() > 1;
    let prefix = |o: usize, name: &str| {
        if several {
            format!("{}_{name}", names[o])
        } else {
            name.to_string()
        }
    };
    let slots = |lists: &[Vec<Metric>], weighted: bool| -> Vec<(Slot, String)> {
        let mut out = Vec::new();
        for (output, list) in lists.iter().enumerate() {
            for (index, m) in list.iter().enumerate() {
                let slot = Slot {
                    output,
                    weighted,
                    index,
                };
                out.push((slot, m.name().to_string()));
            }
        }
        out
    };
    let (plain, heavy) = (slots(metrics, false), slots(weighted, true));
    let mut keys: Vec<(String, Slot)> = Vec::new();
    match dialect {
        Dialect::TfKeras => {
            let taken = |keys: &[(String, Slot)], k: &str| keys.iter().any(|(n, _)| n == k);
            for output in 0..names.len() {
                for (slot, name) in plain.iter().filter(|(s, _)| s.output == output) {
                    let key = prefix(output, name);
                    if taken(&keys, &key) {
                        return Err(invalid(
                            model,
                            format!(
                                "Found two metrics with the same name: {key}. All the metrics \
                                 added to the model need to have unique names."
                            ),
                        ));
                    }
                    keys.push((key, *slot));
                }
                for (slot, name) in heavy.iter().filter(|(s, _)| s.output == output) {
                    let mut key = prefix(output, name);
                    if taken(&keys, &key) {
                        key = prefix(output, &format!("weighted_{name}"));
                    }
                    if taken(&keys, &key) {
                        return Err(invalid(
                            model,
                            format!(
                                "Found two weighted metrics with the same name: {key}.All the \
                                 metrics added to the model need to have unique names."
                            ),
                        ));
                    }
                    keys.push((key, *slot));
                }
            }
        }
        Dialect::Keras3 => {
            // `unique_name_counters`; a numbered name is not counted, and a result under a
            // name already there takes its place, as in a Python dict.
            let mut counters: Vec<(String, usize)> = Vec::new();
            let count = |counters: &mut Vec<(String, usize)>, key: &str| -> Option<usize> {
                match counters.iter_mut().find(|(k, _)| k == key) {
                    Some((_, c)) => {
                        *c += 1;
                        Some(*c - 1)
                    }
                    None => {
                        counters.push((key.to_string(), 1));
                        None
                    }
                }
            };
            let put = |keys: &mut Vec<(String, Slot)>, key: String, slot: Slot| match keys
                .iter_mut()
                .find(|(k, _)| *k == key)
            {
                Some(entry) => entry.1 = slot,
                None => keys.push((key, slot)),
            };
            for (slot, name) in &plain {
                let key = prefix(slot.output, name);
                let key = match count(&mut counters, &key) {
                    None => key,
                    Some(i) => format!("{key}_{i}"),
                };
                put(&mut keys, key, *slot);
            }
            for (slot, name) in &heavy {
                let key = prefix(slot.output, name);
                if counters.iter().all(|(k, _)| *k != key) {
                    count(&mut counters, &key);
                    put(&mut keys, key, *slot);
                    continue;
                }
                let key = prefix(slot.output, &format!("weighted_{name}"));
                let key = match count(&mut counters, &key) {
                    None => key,
                    Some(i) => format!("{key}_{i}"),
                };
                put(&mut keys, key, *slot);
            }
        }
    }
    Ok(keys)
}

/// The losses of the batches so far: the weighted loss, then each output's.
struct Totals {
    /// Each batch's values times its size.
    by_sample: Vec<f64>,
    /// Each batch's values.
    by_batch: Vec<f64>,
    samples: usize,
    batches: usize,
}

impl Totals {
    fn new(outputs: usize) -> Self {
        Totals {
            by_sample: vec![0.0; 1 + outputs],
            by_batch: vec![0.0; 1 + outputs],
            samples: 0,
            batches: 0,
        }
    }

    fn add(&mut self, losses: &[f32], size: usize) {
        for (i, &l) in losses.iter().enumerate() {
            self.by_sample[i] += f64::from(l) * size as f64;
            self.by_batch[i] += f64::from(l);
        }
        self.samples += size;
        self.batches += 1;
    }

    /// The mean of value `i` over the samples, as Keras logs its `loss` (and tf_keras each
    /// output's loss); Keras 3 logs each output's loss as the mean over the batches (its
    /// tracker's weight, the batch size, is unknown when traced).
    fn mean(&self, i: usize, dialect: Dialect) -> f32 {
        match dialect {
            Dialect::Keras3 if i > 0 => (self.by_batch[i] / self.batches.max(1) as f64) as f32,
            _ => (self.by_sample[i] / self.samples.max(1) as f64) as f32,
        }
    }
}

/// A compile configuration bound to a model's outputs for one `fit` or `evaluate`.
struct Bound {
    names: Vec<String>,
    losses: Vec<Loss>,
    weights: Vec<f32>,
    metrics: Vec<Vec<Metric>>,
    weighted: Vec<Vec<Metric>>,
    /// The metrics' log names, in Keras's order ([`log_keys`]).
    keys: Vec<(String, Slot)>,
}

impl Bound {
    /// Starts the metrics over, as Keras does at each epoch.
    fn reset(&mut self) {
        (self.metrics.iter_mut().chain(&mut self.weighted))
            .flatten()
            .for_each(Metric::reset);
    }

    fn metric(&self, slot: Slot) -> &Metric {
        let lists = if slot.weighted {
            &self.weighted
        } else {
            &self.metrics
        };
        &lists[slot.output][slot.index]
    }

    /// Keras's logs: `loss`, then each output's loss when there are several
    /// (`<output>_loss`), then the metrics under their log names.
    fn logs(&self, totals: &Totals, dialect: Dialect) -> Vec<(String, f32)> {
        let mut logs = vec![("loss".to_string(), totals.mean(0, Dialect::TfKeras))];
        if self.names.len() > 1 {
            for (i, name) in self.names.iter().enumerate() {
                logs.push((format!("{name}_loss"), totals.mean(1 + i, dialect)));
            }
        }
        for (key, slot) in &self.keys {
            logs.push((key.clone(), self.metric(*slot).result()));
        }
        logs
    }

    /// Each metric's log name with the direction Keras 3 gives it, for the callbacks' `auto`
    /// mode.
    fn directions(&self) -> Vec<(String, Option<crate::MonitorMode>)> {
        (self.keys.iter())
            .map(|(key, slot)| {
                let kind = self.metric(*slot).kind();
                (key.clone(), crate::train::callbacks::keras3_direction(kind))
            })
            .collect()
    }

    /// Adds a batch to each output's metrics, with the output's mask on sequence outputs, and
    /// to its weighted metrics, with the batch's sample weights too.
    fn update_metrics(
        &mut self,
        y: &[ArrayViewD<'_, f32>],
        step: &Step,
        sample_weight: Option<ArrayViewD<'_, f32>>,
    ) -> Result<()> {
        for (i, (list, heavy)) in (self.metrics.iter_mut().zip(&mut self.weighted)).enumerate() {
            let (t, yp) = (y[i].view(), step.y_pred[i].view());
            let weighting = output_weighting(step.masks[i].as_ref(), &step.y_pred[i]);
            for m in list.iter_mut() {
                m.update(t.clone(), yp.clone(), &weighting)?;
            }
            let weighting = weighted(weighting, &sample_weight);
            for m in heavy.iter_mut() {
                m.update(t.clone(), yp.clone(), &weighting)?;
            }
        }
        Ok(())
    }
}

/// Inputs and targets: one array per model input, one per output.
type Arrays = (Vec<ArrayD<f32>>, Vec<ArrayD<f32>>);

/// What an evaluation gives: the logs and, for a stateful model, its final states.
pub(crate) type Evaluated = (Vec<(String, f32)>, Option<States>);

/// The logs of an evaluation of `model`, whose final states (of a stateful model) become
/// its own.
pub(crate) fn commit(
    model: &mut dyn Layer,
    (logs, states): Evaluated,
) -> Result<Vec<(String, f32)>> {
    if let Some(states) = states {
        model.set_states(states)?;
    }
    Ok(logs)
}

/// The inputs, the targets and the sample weights of an evaluation.
pub(crate) type Data<'v, 'a> = (
    &'v [ArrayViewD<'a, f32>],
    &'v [ArrayViewD<'a, f32>],
    Option<&'v ArrayD<f32>>,
);

/// The options of [`fit`](crate::Sequential::fit), with Keras's defaults: one epoch, batches of
/// 32, shuffled, no validation, progress printed (`verbose=1`).
#[derive(Debug, Clone)]
pub struct FitOptions {
    epochs: usize,
    batch_size: usize,
    shuffle: bool,
    validation_split: f32,
    initial_epoch: usize,
    verbose: u8,
    validation_data: Option<Arrays>,
    sample_weight: Option<ArrayD<f32>>,
    class_weight: Option<Vec<(usize, f32)>>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            validation_split: 0.0,
            initial_epoch: 0,
            verbose: 1,
            validation_data: None,
            sample_weight: None,
            class_weight: None,
        }
    }
}

impl FitOptions {
    /// Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keras's `epochs` (default 1): training ends after epoch `epochs`.
    #[must_use]
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Keras's `batch_size` (default 32).
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Keras's `shuffle` (default true): the samples' order is drawn anew each epoch from
    /// seqnn's seeded generator (Keras's own draws cannot be matched). A stateful model wants
    /// false, so that row `i` of each batch continues row `i` of the batch before; Keras
    /// takes true without an error or a warning, and so does seqnn.
    #[must_use]
    pub fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Keras's `validation_split` (default 0): the last fraction of the samples, taken before
    /// shuffling, is held out and evaluated after each epoch.
    #[must_use]
    pub fn with_validation_split(mut self, split: f32) -> Self {
        self.validation_split = split;
        self
    }

    /// Keras's `validation_data=(x_val, y_val)`: evaluated after each epoch (one array per
    /// model input), in place of a `validation_split`.
    #[must_use]
    pub fn with_validation_data(mut self, x: Vec<ArrayD<f32>>, y: ArrayD<f32>) -> Self {
        self.validation_data = Some((x, vec![y]));
        self
    }

    /// Keras's `validation_data=(x_val, [y1_val, y2_val])` for a model of several outputs:
    /// one target array per output.
    #[must_use]
    pub fn with_validation_outputs(mut self, x: Vec<ArrayD<f32>>, y: Vec<ArrayD<f32>>) -> Self {
        self.validation_data = Some((x, y));
        self
    }

    /// Keras's `initial_epoch` (default 0): the epoch to start from, to resume training.
    #[must_use]
    pub fn with_initial_epoch(mut self, epoch: usize) -> Self {
        self.initial_epoch = epoch;
        self
    }

    /// Keras's `verbose` (default 1): 0 prints nothing, 1 and 2 a line per epoch.
    #[must_use]
    pub fn with_verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }

    /// Keras's `sample_weight`: one weight per sample, `(samples,)`, or per timestep of a
    /// sequence output, `(samples, timesteps)`, that the losses take (each output's, as
    /// Keras applies one array to every output); split with the data by a
    /// `validation_split`. The `weighted_metrics` take them too, the `metrics` do not (see
    /// [`Compiled::with_weighted_metrics`]).
    ///
    /// ```
    /// use ndarray::arr1;
    /// use seqnn::FitOptions;
    /// let options = FitOptions::new().with_sample_weight(arr1(&[1.0, 0.5, 2.0]).into_dyn());
    /// ```
    #[must_use]
    pub fn with_sample_weight(mut self, sample_weight: ArrayD<f32>) -> Self {
        self.sample_weight = Some(sample_weight);
        self
    }

    /// Keras's `class_weight`: a weight per class (`{0: 1.0, 1: 2.5}` as pairs), given to
    /// each training sample by its label (the argmax of a one-hot row, the rounded value of a
    /// sparse or binary one), and by tf_keras to each timestep of `(samples, timesteps,
    /// classes)` and `(samples, timesteps, 1)` targets, which Keras 3 refuses. A class without
    /// a weight weighs 1 under Keras 3; tf_keras wants a weight for each class from 0 up.
    /// With a `sample_weight` too, tf_keras multiplies the two and Keras 3 refuses; the model
    /// needs a single output. The training batches' `weighted_metrics` take them, as the
    /// loss does; validation is not class-weighted.
    ///
    /// ```
    /// use seqnn::FitOptions;
    /// let options = FitOptions::new().with_class_weight([(0, 1.0), (1, 2.5)]);
    /// ```
    #[must_use]
    pub fn with_class_weight(
        mut self,
        class_weight: impl IntoIterator<Item = (usize, f32)>,
    ) -> Self {
        self.class_weight = Some(class_weight.into_iter().collect());
        self
    }

    /// The number of epochs.
    pub fn epochs(&self) -> usize {
        self.epochs
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
}

/// What [`fit`](crate::Sequential::fit) returns: Keras's `History`, the epochs run and each
/// logged value per epoch (`loss`, and `val_loss` with validation data).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    epoch: Vec<usize>,
    history: BTreeMap<String, Vec<f32>>,
}

impl History {
    /// The epochs run, counted from 0 as Keras's `history.epoch`.
    pub fn epoch(&self) -> &[usize] {
        &self.epoch
    }

    /// Every logged value, by name, one per epoch: Keras's `history.history`.
    pub fn history(&self) -> &BTreeMap<String, Vec<f32>> {
        &self.history
    }

    /// The values logged under `name` (`"loss"`, `"val_loss"`), one per epoch.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.history.get(name).map(Vec::as_slice)
    }

    pub(crate) fn push(&mut self, epoch: usize, logs: &[(String, f32)]) {
        self.epoch.push(epoch);
        for (k, v) in logs {
            self.history.entry(k.clone()).or_default().push(*v);
        }
    }
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.history {
            writeln!(f, "{k}: {v:?}")?;
        }
        Ok(())
    }
}

/// The error for a model that was not compiled, in Keras's words.
pub(crate) fn not_compiled(model: &str) -> Error {
    Error::InvalidArgument {
        layer: model.to_string(),
        message: "You must call `compile()` before using the model.".into(),
    }
}

fn invalid(model: &str, message: String) -> Error {
    Error::InvalidArgument {
        layer: model.to_string(),
        message,
    }
}

/// Checks the inputs `x` and the targets `y`: one target per output, the same number of
/// samples in each array, and some.
fn check_data(
    model: &str,
    x: &[ArrayViewD<'_, f32>],
    y: &[ArrayViewD<'_, f32>],
    outputs: usize,
) -> Result<usize> {
    if y.len() != outputs {
        return Err(invalid(
            model,
            format!(
                "the model has {outputs} output(s), but fit was given {} target array(s)",
                y.len()
            ),
        ));
    }
    let Some(first) = x.first() else {
        return Err(invalid(model, "fit was given no input array".into()));
    };
    let ny = y[0].shape().first().copied().unwrap_or(0);
    for a in x {
        for t in y {
            let nx = a.shape().first().copied().unwrap_or(0);
            let nt = t.shape().first().copied().unwrap_or(0);
            if a.ndim() == 0 || t.ndim() == 0 || nx != ny || nt != ny {
                return Err(invalid(
                    model,
                    format!(
                        "Data cardinality is ambiguous: x sizes: {nx}, y sizes: {nt}. Make sure \
                         all arrays contain the same number of samples. (x has shape {}, y has \
                         shape {})",
                        crate::layers::conv::py_tuple(a.shape()),
                        crate::layers::conv::py_tuple(t.shape())
                    ),
                ));
            }
        }
    }
    if ny == 0 {
        return Err(Error::EmptyInput {
            layer: model.to_string(),
            shape: crate::Shape::known(first.shape()),
        });
    }
    Ok(ny)
}

/// Rows `rows` of every input.
fn take_inputs(x: &[ArrayViewD<'_, f32>], rows: &[usize]) -> Vec<ArrayD<f32>> {
    x.iter().map(|a| take_rows(a, rows)).collect()
}

/// Views of arrays.
fn views(a: &[ArrayD<f32>]) -> Vec<ArrayViewD<'_, f32>> {
    a.iter().map(|a| a.view()).collect()
}

/// One training step on one batch; returns the batch's losses and outputs. On any error the
/// weights and the optimizer are as they were.
fn train_step(
    model: &mut dyn Layer,
    compiled: &mut Compiled,
    (bound, trained): (&Bound, &Trained),
    x: &[ArrayViewD<'_, f32>],
    y: &[ArrayViewD<'_, f32>],
    sample_weight: Option<ArrayViewD<'_, f32>>,
) -> Result<Step> {
    let name = model.name().to_string();
    // Training needs the weights' gradients, not the inputs'.
    let mut ctx = CallContext::training()
        .with_input_gradients(vec![false; x.len()])
        .with_logits_wanted()
        .with_activity_penalties(compiled.dialect);
    if model.is_stateful() {
        // Each batch starts from the states the last one left, as a value: the gradient
        // stops there (truncated backpropagation through time, as Keras's state variables).
        ctx = ctx.with_states(model.states());
    }
    let mut y_pred = model.call(x, &mut ctx)?;
    check_output_count(&name, &y_pred, bound)?;
    let masks = ctx.output_masks(model, y_pred.len());
    let left_out = ctx.take_left_out_activations(y_pred.len());
    let states = ctx.take_states();
    let saved = ctx
        .take_saved()
        .ok_or_else(|| invalid(&name, "the model kept nothing for its backward pass".into()))?;
    let mut losses = vec![0.0_f32; 1 + y_pred.len()];
    let mut grads = Vec::with_capacity(y_pred.len());
    for (i, (yp, t)) in y_pred.iter_mut().zip(y).enumerate() {
        let weighting = weighted(output_weighting(masks[i].as_ref(), yp), &sample_weight);
        let (loss, mut grad) = output_loss(
            &bound.losses[i],
            (t.view(), yp),
            left_out[i],
            &weighting,
            compiled.dialect,
        )?;
        let w = bound.weights[i];
        if w != 1.0 {
            grad.mapv_inplace(|g| g * w);
        }
        losses[0] += w * loss;
        losses[1 + i] = loss;
        grads.push(grad);
    }
    losses[0] += ctx.activity_penalty();
    if !trained.penalties.is_empty() {
        losses[0] += trained.penalties.loss(&model.weights());
    }
    if !losses[0].is_finite() {
        return Err(invalid(&name, format!("the loss is {}", losses[0])));
    }
    let grad_views: Vec<_> = grads.iter().map(|g| Some(g.view())).collect();
    let mut grads = model.backward(&saved, &grad_views)?;
    if !trained.penalties.is_empty() && grads.weights.len() == trained.specs.len() {
        trained
            .penalties
            .add_gradients(&model.weights(), &mut grads.weights);
    }
    if grads
        .weights
        .iter()
        .any(|g| !crate::linalg::array_finite(g))
    {
        return Err(invalid(
            &name,
            format!("the loss is {}, but its gradient is not finite", losses[0]),
        ));
    }
    let updates = model.updates(&saved)?;
    if updates
        .iter()
        .flatten()
        .any(|u| !crate::linalg::array_finite(u))
    {
        return Err(invalid(
            &name,
            format!(
                "the loss is {}, but the moving statistics are not finite",
                losses[0]
            ),
        ));
    }
    apply(
        model,
        compiled.optimizer.as_mut(),
        trained,
        grads.weights,
        updates,
    )?;
    if let Some(states) = states {
        // The call's own final states: they fit.
        model.set_states(states)?;
    }
    Ok(Step {
        losses,
        y_pred,
        masks,
        states: None,
    })
}

/// The error for a model whose outputs do not match the compile configuration's.
fn check_output_count(model: &str, y_pred: &[ArrayD<f32>], bound: &Bound) -> Result<()> {
    if y_pred.len() == bound.names.len() {
        return Ok(());
    }
    Err(invalid(
        model,
        format!(
            "the model gave {} outputs, where {} were expected",
            y_pred.len(),
            bound.names.len()
        ),
    ))
}

/// What a step computed: its weighted loss then each output's, and the outputs (before the
/// update) with their masks, for the metrics; for a test step of a stateful model, its final
/// states, which the caller commits.
struct Step {
    losses: Vec<f32>,
    y_pred: Vec<ArrayD<f32>>,
    masks: Vec<Option<crate::Mask>>,
    states: Option<States>,
}

/// `weighting` with the batch's sample weights, if any.
fn weighted<'a>(
    weighting: Weighting<'a>,
    sample_weight: &Option<ArrayViewD<'a, f32>>,
) -> Weighting<'a> {
    match sample_weight {
        Some(w) => weighting.with_sample_weight(w.clone()),
        None => weighting,
    }
}

/// One output's loss as Keras's `fit` computes it, and its gradient with respect to what the
/// model gave. When the output's layer left out its `activation` (`y_pred` holds logits),
/// the loss reads the logits where Keras does (see [`Loss::uses_logits`]) and the gradient is
/// the logits'; `y_pred` then becomes the activation's output, for the metrics.
fn output_loss(
    loss: &Loss,
    (y_true, y_pred): (ArrayViewD<'_, f32>, &mut ArrayD<f32>),
    left_out: Option<ActivationFn>,
    weighting: &Weighting<'_>,
    dialect: Dialect,
) -> Result<(f32, ArrayD<f32>)> {
    let Some(activation) = left_out else {
        return loss.value_and_grad(y_true, y_pred.view(), weighting, dialect);
    };
    let value_and_grad =
        loss.value_and_grad_from_logits(y_true, y_pred.view(), activation, weighting, dialect)?;
    let row = y_pred.shape().last().copied().unwrap_or(1);
    if let Some(values) = y_pred.as_slice_mut() {
        activation.apply_slice(values, row);
    } else {
        let mut owned = y_pred.as_standard_layout().into_owned();
        activation.apply_slice(owned.as_slice_mut().expect("standard layout"), row);
        *y_pred = owned;
    }
    Ok(value_and_grad)
}

/// How a loss or metric weighs an output: by its mask, on a sequence output.
fn output_weighting<'a>(mask: Option<&'a crate::Mask>, y_pred: &ArrayD<f32>) -> Weighting<'a> {
    match mask {
        Some(m) if y_pred.ndim() >= 3 => Weighting::none().with_mask(m.view()),
        _ => Weighting::none(),
    }
}

/// The model's weights as a fit call trains them, fixed for the call: their specs, and which
/// are trainable (frozen layers' and statistics' are not, as Keras's `trainable_weights`
/// leaves them out).
struct Trained {
    specs: Vec<WeightSpec>,
    trainable: Vec<bool>,
    /// The weights' regularizers and constraints.
    penalties: Penalties,
}

/// Whether `fit` trains the weight of `spec` in `model`: Keras's `trainable_weights`.
fn is_trained(model: &dyn Layer, spec: &WeightSpec) -> bool {
    model.trainable() && spec.trainable
}

/// The specs of the weights `fit` trains, in order: what the optimizer is built for, so what
/// its slots belong to (Keras's `optimizer.build(model.trainable_variables)`).
pub(crate) fn trainable_specs(model: &dyn Layer) -> Vec<WeightSpec> {
    (model.weight_specs().into_iter())
        .filter(|s| is_trained(model, s))
        .collect()
}

impl Trained {
    fn of(model: &dyn Layer, dialect: Dialect) -> Result<Self> {
        let specs = model.weight_specs();
        let trainable: Vec<bool> = specs.iter().map(|s| is_trained(model, s)).collect();
        let penalties = Penalties::of(model, &trainable, dialect)?;
        Ok(Trained {
            specs,
            trainable,
            penalties,
        })
    }
}

/// Applies the gradients of the trainable weights and sets the values `updates` gives (one per
/// weight, `None` for most, such as moving statistics), all in one `set_weights`.
///
/// Everything that could fail is checked before anything changes: the optimizer checks its
/// variables and gradients before it moves, and `set_weights` fails only before the model is
/// built or for a count or shape that is not its specs' ([`Layer::set_weights`]), checked
/// here first. So a failed step leaves the weights and the optimizer as they were, without a
/// copy of the optimizer's state to put back.
fn apply(
    model: &mut dyn Layer,
    optimizer: &mut dyn Optimizer,
    trained: &Trained,
    grads: Vec<ArrayD<f32>>,
    updates: Vec<Option<ArrayD<f32>>>,
) -> Result<()> {
    let mut weights: Vec<ArrayD<f32>> = model.weights().iter().map(|w| w.to_owned()).collect();
    if grads.len() != weights.len() || updates.len() != weights.len() {
        return Err(invalid(
            model.name(),
            format!(
                "the backward pass gave {} weight gradients and {} updates for {} weights",
                grads.len(),
                updates.len(),
                weights.len()
            ),
        ));
    }
    let fits = model.is_built()
        && weights.len() == trained.specs.len()
        && (weights.iter().zip(&trained.specs)).all(|(w, s)| w.shape() == s.shape.as_slice())
        && (updates.iter().zip(&trained.specs))
            .all(|(u, s)| u.as_ref().is_none_or(|u| u.shape() == s.shape.as_slice()));
    if !fits {
        return Err(invalid(
            model.name(),
            "the model's weights are not those of its weight specs".into(),
        ));
    }
    let trainable = &trained.trainable;
    if !optimizer.is_built() {
        optimizer.build(&trainable_specs(model))?;
    }
    let mut views: Vec<ArrayViewMutD<'_, f32>> = (weights.iter_mut().zip(trainable))
        .filter(|(_, &t)| t)
        .map(|(w, _)| w.view_mut())
        .collect();
    let gviews: Vec<ArrayViewD<'_, f32>> = (grads.iter().zip(trainable))
        .filter(|(_, &t)| t)
        .map(|(g, _)| g.view())
        .collect();
    optimizer.apply(&mut views, &gviews)?;
    drop(views);
    // Checked to fit the weights' shapes when the call began: it cannot fail here.
    trained.penalties.constrain(&mut weights)?;
    for (w, u) in weights.iter_mut().zip(updates) {
        if let Some(u) = u {
            *w = u;
        }
    }
    model.set_weights(&weights)
}

/// The losses of the model on one batch, without training (`test_on_batch`), with its
/// outputs; a stateful model starts from `states`.
fn test_step(
    model: &dyn Layer,
    compiled: &Compiled,
    (bound, penalties): (&Bound, &Penalties),
    x: &[ArrayViewD<'_, f32>],
    y: &[ArrayViewD<'_, f32>],
    sample_weight: Option<ArrayViewD<'_, f32>>,
    states: Option<States>,
) -> Result<Step> {
    let mut ctx = CallContext::inference()
        .with_logits_wanted()
        .with_activity_penalties(compiled.dialect);
    if let Some(states) = states {
        ctx = ctx.with_states(states);
    }
    let mut y_pred = model.call(x, &mut ctx)?;
    check_output_count(model.name(), &y_pred, bound)?;
    let masks = ctx.output_masks(model, y_pred.len());
    let left_out = ctx.take_left_out_activations(y_pred.len());
    let mut losses = vec![0.0_f32; 1 + y_pred.len()];
    for (i, (yp, t)) in y_pred.iter_mut().zip(y).enumerate() {
        let weighting = weighted(output_weighting(masks[i].as_ref(), yp), &sample_weight);
        let (loss, dialect) = (&bound.losses[i], compiled.dialect);
        let loss = match left_out[i] {
            None => loss.value(t.view(), yp.view(), &weighting, dialect)?,
            some => output_loss(loss, (t.view(), yp), some, &weighting, dialect)?.0,
        };
        losses[0] += bound.weights[i] * loss;
        losses[1 + i] = loss;
    }
    losses[0] += ctx.activity_penalty();
    if !penalties.is_empty() {
        losses[0] += penalties.loss(&model.weights());
    }
    Ok(Step {
        losses,
        y_pred,
        masks,
        states: ctx.take_states(),
    })
}

/// Rows `rows` of `a`, in that order, as a new array: each row one copy when `a` is in
/// standard layout (ndarray's `select` appends them one by one, a tenth of a small model's
/// training step).
fn take_rows(a: &ArrayViewD<'_, f32>, rows: &[usize]) -> ArrayD<f32> {
    let (Some(data), Some(&n)) = (a.as_slice(), a.shape().first()) else {
        return a.select(Axis(0), rows);
    };
    let width = data.len().checked_div(n).unwrap_or(0);
    let mut taken = Vec::with_capacity(rows.len() * width);
    for &r in rows {
        taken.extend_from_slice(&data[r * width..(r + 1) * width]);
    }
    let mut shape = a.shape().to_vec();
    shape[0] = rows.len();
    ArrayD::from_shape_vec(shape, taken).expect("the rows fill the shape")
}

/// Keras's `evaluate`: the losses over `x`, `y` in batches, each weighted by its size, then
/// the metrics, as Keras's `return_dict=True` lists them. `outputs` names the model's outputs.
///
/// A stateful model starts from its states and carries them from batch to batch, as Keras's
/// does; the final states come back beside the logs, for the caller to commit (`None` for a
/// stateless model).
pub(crate) fn evaluate(
    model: &dyn Layer,
    compiled: &Compiled,
    (x, y, sample_weight): Data<'_, '_>,
    outputs: &[String],
    batch_size: usize,
) -> Result<Evaluated> {
    let name = model.name().to_string();
    let mut bound = compiled.bind(&name, outputs)?;
    let n = check_data(&name, x, y, bound.names.len())?;
    if batch_size == 0 {
        return Err(invalid(&name, "batch_size must be positive, got 0".into()));
    }
    if let Some(fixed) = stateful::fixed_batch(model) {
        stateful::check_batches(&name, fixed, n, batch_size)?;
    }
    let sample_weight =
        sample_weight::per_sample(&name, compiled.dialect, n, y, None, sample_weight, None)?;
    bound.reset();
    let penalties = Trained::of(model, compiled.dialect)?.penalties;
    let mut totals = Totals::new(bound.names.len());
    let mut states = model.is_stateful().then(|| model.states());
    for start in (0..n).step_by(batch_size) {
        states = test_batch(
            model,
            compiled,
            (&mut bound, &penalties),
            (x, y, sample_weight.as_ref()),
            start..(start + batch_size).min(n),
            &mut totals,
            states,
        )?;
    }
    Ok((bound.logs(&totals, compiled.dialect), states))
}

/// One batch of an evaluation: rows `rows` of `x` and `y` into the metrics and `totals`; a
/// stateful model starts from `states` and returns its final ones.
fn test_batch(
    model: &dyn Layer,
    compiled: &Compiled,
    (bound, penalties): (&mut Bound, &Penalties),
    (x, y, sample_weight): Data<'_, '_>,
    rows: std::ops::Range<usize>,
    totals: &mut Totals,
    states: Option<States>,
) -> Result<Option<States>> {
    let size = rows.len();
    let rows: Vec<usize> = rows.collect();
    let xb = take_inputs(x, &rows);
    let yb = take_inputs(y, &rows);
    let wb = sample_weight.map(|w| take_rows(&w.view(), &rows));
    let mut step = test_step(
        model,
        compiled,
        (bound, penalties),
        &views(&xb),
        &views(&yb),
        wb.as_ref().map(|w| w.view()),
        states,
    )?;
    bound.update_metrics(&views(&yb), &step, wb.as_ref().map(|w| w.view()))?;
    totals.add(&step.losses, size);
    Ok(step.states.take())
}

/// The validation of an epoch in `fit`, as Keras's `evaluate(..., callbacks=callbacks)`:
/// `on_test_begin`, each batch's hooks with the running values, `on_test_end` with the logs.
/// A stateful model's validation batches carry its states on, as in Keras: the next epoch
/// starts from the states the last of them left.
fn validate(
    model: &mut dyn Layer,
    compiled: &mut Compiled,
    callbacks: &mut CallbackList<'_, '_>,
    (x, y, sample_weight): Data<'_, '_>,
    outputs: &[String],
    batch_size: usize,
) -> Result<Vec<(String, f32)>> {
    let mut bound = compiled.bind(model.name(), outputs)?;
    let n = check_data(model.name(), x, y, outputs.len())?;
    let dialect = compiled.dialect;
    let sample_weight =
        sample_weight::per_sample(model.name(), dialect, n, y, None, sample_weight, None)?;
    let penalties = Trained::of(&*model, dialect)?.penalties;
    callbacks.call(model, compiled, |c, f| c.on_test_begin(&mut Logs::new(), f))?;
    let mut totals = Totals::new(outputs.len());
    for (b, start) in (0..n).step_by(batch_size).enumerate() {
        callbacks.call(model, compiled, |c, f| {
            c.on_test_batch_begin(b, &mut Logs::new(), f)
        })?;
        let rows = start..(start + batch_size).min(n);
        let states = test_batch(
            &*model,
            compiled,
            (&mut bound, &penalties),
            (x, y, sample_weight.as_ref()),
            rows,
            &mut totals,
            model.is_stateful().then(|| model.states()),
        )?;
        if let Some(states) = states {
            model.set_states(states)?;
        }
        let mut logs = Logs::from(bound.logs(&totals, dialect));
        callbacks.call(model, compiled, |c, f| c.on_test_batch_end(b, &mut logs, f))?;
    }
    let mut logs = Logs::from(bound.logs(&totals, dialect));
    callbacks.call(model, compiled, |c, f| c.on_test_end(&mut logs, f))?;
    Ok(logs.as_slice().to_vec())
}

/// The loss of a step refused because it is not finite (`the loss is NaN`), for the
/// callbacks' logs (Keras logs it, and TerminateOnNaN stops on it).
fn non_finite_loss(e: &Error) -> Option<f32> {
    match e {
        Error::InvalidArgument { message, .. } => message
            .strip_prefix("the loss is ")
            .and_then(|v| v.parse::<f32>().ok())
            .filter(|v| !v.is_finite()),
        _ => None,
    }
}

/// Keras's `fit`. The model's weights and its optimizer's state change only through steps that
/// succeed; an error in a step stops training with the weights of the step before. `outputs`
/// names the model's outputs, one target array in `y` each.
///
/// The large buffers its steps reuse from batch to batch go back to the allocator when it
/// returns (see [`buffers`](crate::buffers)).
pub(crate) fn fit(
    model: &mut dyn Layer,
    compiled: &mut Compiled,
    x: &[ArrayViewD<'_, f32>],
    y: &[ArrayViewD<'_, f32>],
    outputs: &[String],
    options: &FitOptions,
    callbacks: &mut [&mut dyn Callback],
) -> Result<History> {
    let _release = crate::buffers::ClearOnDrop;
    let name = model.name().to_string();
    let mut bound = compiled.bind(&name, outputs)?;
    let n = check_data(&name, x, y, outputs.len())?;
    if options.batch_size == 0 {
        return Err(invalid(&name, "batch_size must be positive, got 0".into()));
    }
    let n_given = match &options.validation_data {
        Some((vx, vy)) => Some(check_data(&name, &views(vx), &views(vy), outputs.len())?),
        None => None,
    };
    let split = options.validation_split;
    if !(0.0..1.0).contains(&split) {
        return Err(invalid(
            &name,
            format!("`validation_split` must be in [0, 1), got {split}"),
        ));
    }
    // Keras holds out the last fraction, before shuffling: `floor(n * (1 - split))` with the
    // Python float the f32 stands for (0.2, not 0.2000000030, which leaves 31 of 40).
    let split64: f64 = split.to_string().parse().unwrap_or(f64::from(split));
    let n_train = if split > 0.0 {
        ((n as f64) * (1.0 - split64)).floor() as usize
    } else {
        n
    };
    if n_train == 0 {
        return Err(invalid(
            &name,
            format!("validation_split={split} leaves no sample of {n} to train on"),
        ));
    }
    if let Some(fixed) = stateful::fixed_batch(model) {
        // Every batch, the validation's too, must have the rows the states have.
        stateful::check_batches(&name, fixed, n_train, options.batch_size)?;
        match n_given.unwrap_or(n - n_train) {
            0 => {}
            n_val => stateful::check_batches(&name, fixed, n_val, options.batch_size)?,
        }
    }
    let tail = |a: &[ArrayViewD<'_, f32>]| -> Vec<ArrayD<f32>> {
        a.iter()
            .map(|a| a.slice_axis(Axis(0), (n_train..).into()).to_owned())
            .collect()
    };
    let (xv, yv) = (tail(x), tail(y));
    // The classes of the output, for class weights: its last axis, 2 for one sigmoid unit.
    let classes = options.class_weight.as_ref().and_then(|_| {
        let shapes: Vec<Shape> = x.iter().map(|a| Shape::known(a.shape())).collect();
        let out = model.compute_output_shape(&shapes).ok()?;
        out.first()?.last().map(|c| c.max(2))
    });
    let weights = sample_weight::per_sample(
        &name,
        compiled.dialect,
        n,
        y,
        classes,
        options.sample_weight.as_ref(),
        options.class_weight.as_deref(),
    )?;
    // Keras splits the given sample weights with the data; class weights weigh only training.
    let val_weights = options
        .sample_weight
        .as_ref()
        .filter(|_| n_train < n && options.validation_data.is_none())
        .map(|w| w.slice_axis(Axis(0), (n_train..).into()).to_owned());
    let steps = n_train.div_ceil(options.batch_size);
    let trained = Trained::of(model, compiled.dialect)?;
    let dialect = compiled.dialect;
    let params = Params {
        epochs: options.epochs,
        steps,
        verbose: options.verbose,
        dialect,
        directions: bound.directions(),
    };
    let mut callbacks = CallbackList::new(callbacks, params);
    callbacks.call(model, compiled, |c, f| {
        c.on_train_begin(&mut Logs::new(), f)
    })?;
    let mut last_logs = Logs::new();
    // A callback may resume the run at another epoch (Keras 3's `model._initial_epoch`).
    let initial_epoch = callbacks.initial_epoch().unwrap_or(options.initial_epoch);
    for epoch in initial_epoch..options.epochs {
        callbacks.call(model, compiled, |c, f| {
            c.on_epoch_begin(epoch, &mut Logs::new(), f)
        })?;
        let progress = Progress::epoch(options.verbose, epoch, options.epochs, steps);
        let started = Instant::now();
        let mut order: Vec<usize> = (0..n_train).collect();
        if options.shuffle {
            crate::session::with_rng(|rng| {
                use rand::seq::SliceRandom;
                order.shuffle(rng);
            });
        }
        let mut totals = Totals::new(outputs.len());
        bound.reset();
        for (b, rows) in order.chunks(options.batch_size).enumerate() {
            callbacks.call(model, compiled, |c, f| {
                c.on_train_batch_begin(b, &mut Logs::new(), f)
            })?;
            let xb = take_inputs(x, rows);
            let yb = take_inputs(y, rows);
            let wb = weights.as_ref().map(|w| take_rows(&w.view(), rows));
            let step = train_step(
                model,
                compiled,
                (&bound, &trained),
                &views(&xb),
                &views(&yb),
                wb.as_ref().map(|w| w.view()),
            );
            let step = match step {
                Ok(step) => step,
                Err(e) => {
                    // A loss that is not finite is logged for the callbacks, which may stop
                    // training (TerminateOnNaN); the step is not applied.
                    if let Some(loss) = non_finite_loss(&e) {
                        totals.add(&vec![loss; 1 + outputs.len()], rows.len());
                        let mut logs = Logs::from(bound.logs(&totals, dialect));
                        callbacks.call(model, compiled, |c, f| {
                            c.on_train_batch_end(b, &mut logs, f)
                        })?;
                        if callbacks.stop_training() {
                            break;
                        }
                    }
                    return Err(match e {
                        Error::InvalidArgument { layer, message }
                            if message.starts_with("the loss is") =>
                        {
                            Error::InvalidArgument {
                                layer,
                                message: format!(
                                    "{message} at epoch {}, batch {}: training stopped, and \
                                     the weights are those of the last finite step",
                                    epoch + 1,
                                    b + 1
                                ),
                            }
                        }
                        other => other,
                    });
                }
            };
            bound.update_metrics(&views(&yb), &step, wb.as_ref().map(|w| w.view()))?;
            totals.add(&step.losses, rows.len());
            let mut logs = Logs::from(bound.logs(&totals, dialect));
            progress.step(b + 1, logs.as_slice());
            callbacks.call(model, compiled, |c, f| {
                c.on_train_batch_end(b, &mut logs, f)
            })?;
            if callbacks.stop_training() {
                break;
            }
        }
        let mut logs = Logs::from(bound.logs(&totals, dialect));
        let val = match &options.validation_data {
            Some((vx, vy)) => Some((views(vx), views(vy))),
            None if n_train < n => Some((views(&xv), views(&yv))),
            None => None,
        };
        if let Some((vx, vy)) = val {
            let val = validate(
                model,
                compiled,
                &mut callbacks,
                (&vx, &vy, val_weights.as_ref()),
                outputs,
                options.batch_size,
            )?;
            for (k, v) in val {
                logs.insert(&format!("val_{k}"), v);
            }
        }
        callbacks.call(model, compiled, |c, f| c.on_epoch_end(epoch, &mut logs, f))?;
        progress.finish(started.elapsed(), logs.as_slice());
        last_logs = logs;
        if callbacks.stop_training() {
            break;
        }
    }
    callbacks.call(model, compiled, |c, f| c.on_train_end(&mut last_logs, f))?;
    Ok(callbacks.history)
}
