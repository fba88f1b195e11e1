//! The fit loop: Keras's `compile`, `fit`, `evaluate`, `train_on_batch` and `test_on_batch`,
//! for any model that is a [`Layer`] with a backward pass ([`Sequential`](crate::Sequential),
//! [`Model`](crate::Model)).
//!
//! One training step, as Keras's `train_step`:
//!
//! ```text
//! y_pred = model(x, training=True)                  (each layer keeps what backward needs)
//! loss   = compiled loss of (y, y_pred), masked by the output's mask
//! grads  = backward of the model from d loss / d y_pred
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

use crate::error::{Error, Result};
use crate::layer::{CallContext, Layer};
use crate::train::loss::{Dialect, Loss, Weighting};
use crate::train::metric::Metric;
use crate::train::optimizer::Optimizer;
use crate::train::progress::Progress;

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

/// What `compile` sets: the optimizer (with its state), the loss, and which Keras's arithmetic
/// the loss follows where tf_keras and Keras 3 differ.
#[derive(Debug, Clone)]
pub struct Compiled {
    optimizer: Box<dyn Optimizer>,
    loss: Loss,
    dialect: Dialect,
    metrics: Vec<Metric>,
}

impl Compiled {
    /// A compile configuration: Keras's `model.compile(optimizer=..., loss=...)`.
    pub fn new(optimizer: Box<dyn Optimizer>, loss: Loss) -> Self {
        Compiled {
            optimizer,
            loss,
            dialect: Dialect::TfKeras,
            metrics: Vec::new(),
        }
    }

    /// The same, with the loss and metrics computed as `dialect`'s Keras computes them
    /// (default tf_keras).
    #[must_use]
    pub fn with_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        for m in self.metrics.iter_mut() {
            *m = Metric::from_name(m.name(), dialect).unwrap_or_else(|_| m.clone());
        }
        self
    }

    /// The same, with Keras's `metrics=[...]`, by their Keras names (`"accuracy"`, `"mae"`).
    ///
    /// # Errors
    /// [`Error::UnknownName`] for a name Keras does not know.
    pub fn with_metrics(mut self, names: &[&str]) -> Result<Self> {
        self.metrics = names
            .iter()
            .map(|n| Metric::from_name(n, self.dialect))
            .collect::<Result<_>>()?;
        Ok(self)
    }

    /// The same, with another optimizer (a fresh one, as a new `compile` gives).
    #[must_use]
    pub fn with_optimizer(mut self, optimizer: Box<dyn Optimizer>) -> Self {
        self.optimizer = optimizer;
        self
    }

    /// The same, with another loss.
    #[must_use]
    pub fn with_loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// The optimizer, to change its settings (`set_learning_rate`).
    pub fn optimizer_mut(&mut self) -> &mut dyn Optimizer {
        self.optimizer.as_mut()
    }

    /// The same, with one more metric.
    #[must_use]
    pub fn with_metric(mut self, metric: Metric) -> Self {
        self.metrics.push(metric);
        self
    }

    /// The metrics, in their `compile` order.
    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    /// The optimizer, with its state.
    pub fn optimizer(&self) -> &dyn Optimizer {
        self.optimizer.as_ref()
    }

    /// The loss.
    pub fn loss(&self) -> Loss {
        self.loss
    }
}

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
    validation_data: Option<(Vec<ArrayD<f32>>, ArrayD<f32>)>,
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
    /// seqnn's seeded generator (Keras's own draws cannot be matched).
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

    fn push(&mut self, epoch: usize, logs: &[(String, f32)]) {
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

/// Checks the inputs `x` and the targets `y`: the same number of samples, and some.
fn check_data(model: &str, x: &[ArrayViewD<'_, f32>], y: &ArrayViewD<'_, f32>) -> Result<usize> {
    let ny = y.shape().first().copied().unwrap_or(0);
    let Some(first) = x.first() else {
        return Err(invalid(model, "fit was given no input array".into()));
    };
    for a in x {
        let nx = a.shape().first().copied().unwrap_or(0);
        if a.ndim() == 0 || y.ndim() == 0 || nx != ny {
            return Err(invalid(
                model,
                format!(
                    "Data cardinality is ambiguous: x sizes: {nx}, y sizes: {ny}. Make sure all \
                     arrays contain the same number of samples. (x has shape {}, y has shape {})",
                    crate::layers::conv::py_tuple(a.shape()),
                    crate::layers::conv::py_tuple(y.shape())
                ),
            ));
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

/// One training step on one batch; returns the batch's loss. On any error the weights and
/// the optimizer are as they were.
pub(crate) fn train_step(
    model: &mut dyn Layer,
    compiled: &mut Compiled,
    x: &[ArrayViewD<'_, f32>],
    y: ArrayViewD<'_, f32>,
) -> Result<Step> {
    let name = model.name().to_string();
    let mut ctx = CallContext::training();
    let mut out = model.call(x, &mut ctx)?;
    if out.len() != 1 {
        return Err(invalid(
            &name,
            format!(
                "fit takes a model of one output, this one has {}",
                out.len()
            ),
        ));
    }
    let y_pred = out.swap_remove(0);
    let mask = ctx.output_masks(model, 1).swap_remove(0);
    let saved = ctx
        .take_saved()
        .ok_or_else(|| invalid(&name, "the model kept nothing for its backward pass".into()))?;
    let weighting = output_weighting(mask.as_ref(), &y_pred.view());
    let (loss, grad) =
        compiled
            .loss
            .value_and_grad(y, y_pred.view(), &weighting, compiled.dialect)?;
    if !loss.is_finite() {
        return Err(invalid(&name, format!("the loss is {loss}")));
    }
    let grads = model.backward(&saved, &[Some(grad.view())])?;
    if grads
        .weights
        .iter()
        .any(|g| g.iter().any(|v| !v.is_finite()))
    {
        return Err(invalid(
            &name,
            format!("the loss is {loss}, but its gradient is not finite"),
        ));
    }
    let updates = model.updates(&saved)?;
    if updates
        .iter()
        .flatten()
        .any(|u| u.iter().any(|v| !v.is_finite()))
    {
        return Err(invalid(
            &name,
            format!("the loss is {loss}, but the moving statistics are not finite"),
        ));
    }
    apply(model, &mut compiled.optimizer, grads.weights, updates)?;
    Ok(Step { loss, y_pred, mask })
}

/// What a step computed: its loss, and the output (before the update) with its mask, for the
/// metrics.
pub(crate) struct Step {
    loss: f32,
    y_pred: ArrayD<f32>,
    mask: Option<crate::Mask>,
}

/// How a loss or metric weighs an output: by its mask, on a sequence output.
fn output_weighting<'a>(
    mask: Option<&'a crate::Mask>,
    y_pred: &ArrayViewD<'_, f32>,
) -> Weighting<'a> {
    match mask {
        Some(m) if y_pred.ndim() >= 3 => Weighting::none().with_mask(m.view()),
        _ => Weighting::none(),
    }
}

/// Adds a batch to the metrics, with the output's mask on sequence outputs.
fn update_metrics(
    metrics: &mut [Metric],
    y: ArrayViewD<'_, f32>,
    y_pred: ArrayViewD<'_, f32>,
    mask: Option<&crate::Mask>,
) -> Result<()> {
    let weighting = output_weighting(mask, &y_pred);
    for m in metrics.iter_mut() {
        m.update(y.view(), y_pred.view(), &weighting)?;
    }
    Ok(())
}

/// Applies the gradients of the trainable weights (frozen layers' and statistics' are left
/// out, as Keras's `trainable_weights` leaves them), and sets the values `updates` gives
/// (one per weight, `None` for most), all in one `set_weights`.
fn apply(
    model: &mut dyn Layer,
    optimizer: &mut Box<dyn Optimizer>,
    grads: Vec<ArrayD<f32>>,
    updates: Vec<Option<ArrayD<f32>>>,
) -> Result<()> {
    let specs = model.weight_specs();
    let layer_trainable = model.trainable();
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
    let trained: Vec<bool> = specs
        .iter()
        .map(|s| layer_trainable && s.trainable)
        .collect();
    if !optimizer.is_built() {
        let specs: Vec<_> = specs
            .iter()
            .zip(&trained)
            .filter(|(_, &t)| t)
            .map(|(s, _)| s.clone())
            .collect();
        optimizer.build(&specs)?;
    }
    let before = optimizer.clone();
    {
        let mut views: Vec<ArrayViewMutD<'_, f32>> = weights
            .iter_mut()
            .zip(&trained)
            .filter(|(_, &t)| t)
            .map(|(w, _)| w.view_mut())
            .collect();
        let gviews: Vec<ArrayViewD<'_, f32>> = grads
            .iter()
            .zip(&trained)
            .filter(|(_, &t)| t)
            .map(|(g, _)| g.view())
            .collect();
        optimizer.apply(&mut views, &gviews)?;
    }
    for (w, u) in weights.iter_mut().zip(updates) {
        if let Some(u) = u {
            *w = u;
        }
    }
    if let Err(e) = model.set_weights(&weights) {
        // Not for weights of the model's own shapes; the optimizer goes back too.
        *optimizer = before;
        return Err(e);
    }
    Ok(())
}

/// The loss of the model on one batch, without training (`test_on_batch`), with its output.
pub(crate) fn test_step(
    model: &dyn Layer,
    compiled: &Compiled,
    x: &[ArrayViewD<'_, f32>],
    y: ArrayViewD<'_, f32>,
) -> Result<Step> {
    let mut ctx = CallContext::inference();
    let mut out = model.call(x, &mut ctx)?;
    let y_pred = out.swap_remove(0);
    let mask = ctx.output_masks(model, 1).swap_remove(0);
    let weighting = output_weighting(mask.as_ref(), &y_pred.view());
    let loss = compiled
        .loss
        .value(y, y_pred.view(), &weighting, compiled.dialect)?;
    Ok(Step { loss, y_pred, mask })
}

/// Rows `rows` of `a`, in that order, as a new array.
fn take_rows(a: &ArrayViewD<'_, f32>, rows: &[usize]) -> ArrayD<f32> {
    a.select(Axis(0), rows)
}

/// Keras's `evaluate`: the loss over `x`, `y` in batches, each weighted by its size, then
/// the metrics, as Keras's `return_dict=True` lists them.
pub(crate) fn evaluate(
    model: &dyn Layer,
    compiled: &Compiled,
    x: &[ArrayViewD<'_, f32>],
    y: ArrayViewD<'_, f32>,
    batch_size: usize,
) -> Result<Vec<(String, f32)>> {
    let name = model.name().to_string();
    let n = check_data(&name, x, &y)?;
    if batch_size == 0 {
        return Err(invalid(&name, "batch_size must be positive, got 0".into()));
    }
    let mut metrics = compiled.metrics.clone();
    metrics.iter_mut().for_each(Metric::reset);
    let mut total = 0.0_f64;
    for start in (0..n).step_by(batch_size) {
        let end = (start + batch_size).min(n);
        let rows: Vec<usize> = (start..end).collect();
        let xb = take_inputs(x, &rows);
        let yb = take_rows(&y, &rows);
        let step = test_step(model, compiled, &views(&xb), yb.view())?;
        update_metrics(
            &mut metrics,
            yb.view(),
            step.y_pred.view(),
            step.mask.as_ref(),
        )?;
        total += f64::from(step.loss) * (end - start) as f64;
    }
    let mut logs = vec![("loss".to_string(), (total / n as f64) as f32)];
    logs.extend(metrics.iter().map(|m| (m.name().to_string(), m.result())));
    Ok(logs)
}

/// Keras's `fit`. The model's weights and its optimizer's state change only through steps that
/// succeed; an error in a step stops training with the weights of the step before.
pub(crate) fn fit(
    model: &mut dyn Layer,
    compiled: &mut Compiled,
    x: &[ArrayViewD<'_, f32>],
    y: ArrayViewD<'_, f32>,
    options: &FitOptions,
) -> Result<History> {
    let name = model.name().to_string();
    let n = check_data(&name, x, &y)?;
    if options.batch_size == 0 {
        return Err(invalid(&name, "batch_size must be positive, got 0".into()));
    }
    if let Some((vx, vy)) = &options.validation_data {
        check_data(&name, &views(vx), &vy.view())?;
    }
    let split = options.validation_split;
    if !(0.0..1.0).contains(&split) {
        return Err(invalid(
            &name,
            format!("`validation_split` must be in [0, 1), got {split}"),
        ));
    }
    // Keras holds out the last fraction, before shuffling.
    let n_train = if split > 0.0 {
        ((n as f64) * (1.0 - f64::from(split))).floor() as usize
    } else {
        n
    };
    if n_train == 0 {
        return Err(invalid(
            &name,
            format!("validation_split={split} leaves no sample of {n} to train on"),
        ));
    }
    let xv: Vec<ArrayViewD<'_, f32>> = x
        .iter()
        .map(|a| a.slice_axis(Axis(0), (n_train..).into()))
        .collect();
    let yv = y.slice_axis(Axis(0), (n_train..).into());
    let steps = n_train.div_ceil(options.batch_size);
    let mut history = History::default();
    for epoch in options.initial_epoch..options.epochs {
        let progress = Progress::epoch(options.verbose, epoch, options.epochs, steps);
        let started = Instant::now();
        let mut order: Vec<usize> = (0..n_train).collect();
        if options.shuffle {
            crate::session::with_rng(|rng| {
                use rand::seq::SliceRandom;
                order.shuffle(rng);
            });
        }
        let mut total = 0.0_f64;
        let mut seen = 0_usize;
        let mut metrics = compiled.metrics.clone();
        metrics.iter_mut().for_each(Metric::reset);
        for (b, rows) in order.chunks(options.batch_size).enumerate() {
            let xb = take_inputs(x, rows);
            let yb = take_rows(&y, rows);
            let step =
                train_step(model, compiled, &views(&xb), yb.view()).map_err(|e| match e {
                    Error::InvalidArgument { layer, message }
                        if message.starts_with("the loss is") =>
                    {
                        Error::InvalidArgument {
                            layer,
                            message: format!(
                                "{message} at epoch {}, batch {}: training stopped, and the \
                             weights are those of the last finite step",
                                epoch + 1,
                                b + 1
                            ),
                        }
                    }
                    other => other,
                })?;
            update_metrics(
                &mut metrics,
                yb.view(),
                step.y_pred.view(),
                step.mask.as_ref(),
            )?;
            total += f64::from(step.loss) * rows.len() as f64;
            seen += rows.len();
            let mut running = vec![("loss".to_string(), (total / seen as f64) as f32)];
            running.extend(metrics.iter().map(|m| (m.name().to_string(), m.result())));
            progress.step(b + 1, &running);
        }
        let mut logs = vec![("loss".to_string(), (total / n_train as f64) as f32)];
        logs.extend(metrics.iter().map(|m| (m.name().to_string(), m.result())));
        let val = match &options.validation_data {
            Some((vx, vy)) => Some(evaluate(
                model,
                compiled,
                &views(vx),
                vy.view(),
                options.batch_size,
            )?),
            None if n_train < n => Some(evaluate(
                model,
                compiled,
                &xv,
                yv.clone(),
                options.batch_size,
            )?),
            None => None,
        };
        if let Some(val) = val {
            logs.extend(val.into_iter().map(|(k, v)| (format!("val_{k}"), v)));
        }
        progress.finish(started.elapsed(), &logs);
        history.push(epoch, &logs);
    }
    Ok(history)
}
