//! Keras's optimizers: [`SGD`], [`Adam`], [`AdamW`], [`RMSprop`], [`Adagrad`], [`Adadelta`],
//! [`Adamax`], [`Nadam`] and [`Ftrl`], behind one small object-safe trait, [`Optimizer`].
//!
//! Each is Keras 3.15's optimizer of the same name (`keras/src/optimizers/*.py`), with its
//! defaults and its float32 arithmetic in Keras's order, so that the weights after each step
//! equal Keras's to 1e-6. tf_keras 2.21's optimizers (`tf_keras/src/optimizers/*.py`, the ones
//! `tf_keras.optimizers.Adam` and friends are) compute the same numbers to the last bit or so,
//! and each type's docs say where the two differ. The differences that show are elsewhere:
//! tf_keras names its optimizer variables differently, and its `learning_rate` under a schedule
//! lags one step behind. `tests/fixtures/train/optimizers/README.md` lists them all. A step, as
//! Keras 3's `apply_gradients`:
//!
//! ```text
//! lr = learning_rate at iterations               (a constant or a schedule)
//! g  = clip(g)                                   (clipnorm, global_clipnorm or clipvalue)
//! w  = w - w·weight_decay·lr                     (if weight_decay is set, every optimizer)
//! w  = the optimizer's update of w with g and its slots
//! iterations = iterations + 1                    (so bias corrections use iterations + 1)
//! ```
//!
//! ```
//! use ndarray::{arr1, ArrayD};
//! use seqnn::train::{Optimizer, SGD};
//!
//! let mut w: ArrayD<f32> = arr1(&[1.0, 2.0]).into_dyn();
//! let g: ArrayD<f32> = arr1(&[0.5, -1.0]).into_dyn();
//! let mut sgd = SGD::new().with_learning_rate(0.1);
//! sgd.apply(&mut [w.view_mut()], &[g.view()])?;
//! assert_eq!(w, arr1(&[1.0 - 0.1 * 0.5, 2.0 + 0.1]).into_dyn());
//! assert_eq!(sgd.iterations(), 1);
//! # Ok::<(), seqnn::Error>(())
//! ```
//!
//! Seqnn refuses, where Keras takes them and trains on to NaN weights, hyper-parameters that
//! are not finite (`nan`, `inf`). Keras's `use_ema`, `loss_scale_factor`,
//! `gradient_accumulation_steps` and `exclude_from_weight_decay` are not here yet: their config
//! entries hold Keras's defaults.

mod adadelta;
mod adagrad;
mod adam;
mod adamax;
mod adamw;
mod ftrl;
mod nadam;
mod rmsprop;
mod sgd;

use std::fmt;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};

use crate::error::{Error, Result};
use crate::layer::WeightSpec;
use crate::shape::Shape;
use crate::train::clip::GradientClipping;
use crate::train::config::{Config, ConfigValue};
use crate::train::elements::map_in_place;
use crate::train::schedule::LearningRate;

pub use adadelta::Adadelta;
pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamax::Adamax;
pub use adamw::AdamW;
pub use ftrl::Ftrl;
pub use nadam::Nadam;
pub use rmsprop::RMSprop;
pub use sgd::SGD;

/// An optimizer: one step at a time over the same variables, with its state (Keras's optimizer
/// variables) beside them.
///
/// Object-safe, so that a training loop holds a `Box<dyn Optimizer>`
/// ([`optimizer_from_name`]).
pub trait Optimizer: fmt::Debug + Send + Sync {
    /// Keras's class: `"Adam"`, `"RMSprop"`.
    fn class_name(&self) -> &'static str;

    /// Keras's `name`: `adam`, `adam_1`, ... by default (`rm_sprop` for RMSprop, `adam_w` for
    /// AdamW), numbered per thread as layers are, until [`clear_session`](crate::clear_session).
    fn name(&self) -> &str;

    /// How many steps have been applied (Keras's `iterations`, incremented after each step).
    fn iterations(&self) -> u64;

    /// The learning rate the next step uses: the constant, or the schedule at
    /// [`iterations`](Optimizer::iterations), as float32.
    fn learning_rate(&self) -> f32;

    /// Sets a constant learning rate, as Keras's `optimizer.learning_rate = 0.01`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an optimizer made with a schedule (Keras refuses it in
    /// the same words) or a rate that is not finite.
    fn set_learning_rate(&mut self, learning_rate: f64) -> Result<()>;

    /// Whether the slots exist (after [`build`](Optimizer::build) or the first
    /// [`apply`](Optimizer::apply)).
    fn is_built(&self) -> bool;

    /// Keras's `optimizer.build(variables)`: checks the hyper-parameters and creates the slots
    /// of these variables, named after their Keras paths (`dense/kernel` gives
    /// `dense_kernel_momentum`). Optional: the first `apply` builds with the names
    /// `variable_0`, `variable_1`, ... A second build does nothing, as in Keras.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a hyper-parameter Keras refuses (in Keras's words) or one
    /// that is not finite; nothing is built then.
    fn build(&mut self, variables: &[WeightSpec]) -> Result<()>;

    /// One step: each variable takes its gradient (same order, same shapes on every call),
    /// then [`iterations`](Optimizer::iterations) grows by one.
    ///
    /// The first call builds the slots; later calls allocate nothing (but to copy a variable or
    /// gradient of more than four dimensions that is not in standard layout). No variables is
    /// no step, as in Keras.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the optimizer, the variable and both shapes, for a
    /// gradient whose shape is not its variable's, a variable whose shape or count is not the
    /// one the optimizer was built for, or a bad hyper-parameter (checked when building).
    /// Everything is checked before anything changes: after an error the variables, the slots
    /// and `iterations` are as they were.
    fn apply(
        &mut self,
        variables: &mut [ArrayViewMutD<'_, f32>],
        gradients: &[ArrayViewD<'_, f32>],
    ) -> Result<()>;

    /// Keras 3's `optimizer.variables`, names and values, in its order: `iteration`, then
    /// `learning_rate` (for a constant rate), then the slots (`<path>_momentum`, ... grouped as
    /// Keras groups them), then anything else the optimizer keeps (Nadam's `variable`).
    fn variables(&self) -> Vec<OptimizerVariable>;

    /// Sets the optimizer variables back from values in [`variables`](Optimizer::variables)'s
    /// order (Keras's `set_weights`), to resume training from a checkpoint.
    ///
    /// # Errors
    /// [`Error::WeightCount`] or [`Error::WeightShape`] when the values do not match (nothing
    /// is set then); [`Error::InvalidArgument`] for an optimizer not built yet (Keras's
    /// words), a negative iteration count, or a value of the wrong kind.
    fn set_variables(&mut self, values: &[VariableValue]) -> Result<()>;

    /// The optimizer's own variables ([`VariableRole::Global`], in
    /// [`variables`](Optimizer::variables)'s order) as an uninterrupted run has them after
    /// `iterations` steps: they follow from the step count alone (Nadam's `u_product`, the
    /// product of its momentum schedule). tf_keras does not save them, so its files are
    /// resumed with these; empty for an optimizer without any.
    ///
    /// ```
    /// use seqnn::train::{Nadam, Optimizer};
    /// let nadam = Nadam::new();
    /// // u_product after one step: beta_1 · (1 - 0.5 · 0.96^1)
    /// assert_eq!(nadam.globals_at(1), [0.9f32 * (1.0 - 0.5 * 0.96f32)]);
    /// assert!(seqnn::train::Adam::new().globals_at(5).is_empty());
    /// ```
    fn globals_at(&self, iterations: u64) -> Vec<f32>;

    /// Keras 3's `get_config()`: `name`, `learning_rate`, `weight_decay`, the clipping options,
    /// the options seqnn does not have (with Keras's defaults), then the optimizer's own.
    fn config(&self) -> Config;

    /// A boxed copy, state included.
    fn box_clone(&self) -> Box<dyn Optimizer>;
}

impl Clone for Box<dyn Optimizer> {
    fn clone(&self) -> Self {
        self.box_clone()
    }
}

/// The value of one of Keras's optimizer variables.
#[derive(Debug, Clone, PartialEq)]
pub enum VariableValue {
    /// `iteration`, Keras's int64 step counter.
    Int64(i64),
    /// Every other variable, float32 (a scalar as a 0-dimensional array).
    Float32(ArrayD<f32>),
}

/// One of Keras's optimizer variables: its name (`iteration`, `dense_kernel_momentum`), what it
/// is, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerVariable {
    /// Keras 3's `variable.name`.
    pub name: String,
    /// What the variable is, which tells how tf_keras's files, which list only
    /// `iteration` and the slots, map onto Keras 3's list.
    pub role: VariableRole,
    /// Its value.
    pub value: VariableValue,
}

/// What one of [`Optimizer::variables`] is.
///
/// ```
/// use seqnn::train::{Optimizer, VariableRole, SGD};
/// use seqnn::WeightSpec;
/// let mut sgd = SGD::new().with_momentum(0.9);
/// sgd.build(&[WeightSpec::new("dense/kernel", vec![2, 3])])?;
/// let roles: Vec<VariableRole> = sgd.variables().into_iter().map(|v| v.role).collect();
/// assert_eq!(
///     roles,
///     [
///         VariableRole::Iterations,
///         VariableRole::LearningRate,
///         VariableRole::Slot { variable: 0, kind: "momentum" },
///     ]
/// );
/// # Ok::<(), seqnn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VariableRole {
    /// `iteration`, the step counter (int64).
    Iterations,
    /// `learning_rate`, which Keras 3 keeps as a variable when the rate is a constant.
    LearningRate,
    /// A slot of one of the variables the optimizer was built for (their index, in the
    /// order given to [`Optimizer::build`]): `kind` is Keras 3's name of the slot
    /// (`"momentum"`, `"velocity"`, ...).
    Slot {
        /// The index of the model variable.
        variable: usize,
        /// Keras 3's name of the slot.
        kind: &'static str,
    },
    /// A variable of the whole optimizer (Nadam's `u_product`, named `variable`).
    Global,
}

/// The optimizers by Keras's names, as `keras.optimizers.get("adam")`, case-insensitive:
/// `sgd`, `adam`, `adamw`, `rmsprop`, `adagrad`, `adadelta`, `adamax`, `nadam`, `ftrl`, each
/// with Keras's defaults.
///
/// ```
/// use seqnn::train::{optimizer_from_name, Optimizer};
/// let opt = optimizer_from_name("RMSprop")?;
/// assert_eq!(opt.class_name(), "RMSprop");
/// assert_eq!(opt.learning_rate(), 0.001);
/// assert!(optimizer_from_name("adam_w").is_err());
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// [`Error::UnknownName`] for any other name, listing these.
pub fn optimizer_from_name(name: &str) -> Result<Box<dyn Optimizer>> {
    Ok(match name.to_lowercase().as_str() {
        "sgd" => Box::new(SGD::new()),
        "adam" => Box::new(Adam::new()),
        "adamw" => Box::new(AdamW::new()),
        "rmsprop" => Box::new(RMSprop::new()),
        "adagrad" => Box::new(Adagrad::new()),
        "adadelta" => Box::new(Adadelta::new()),
        "adamax" => Box::new(Adamax::new()),
        "nadam" => Box::new(Nadam::new()),
        "ftrl" => Box::new(Ftrl::new()),
        lower => {
            let later = ["adafactor", "lion", "lamb", "muon", "schedulefreeadamw"];
            let note = if later.contains(&lower) {
                " (a Keras optimizer seqnn does not have yet)"
            } else {
                ""
            };
            return Err(Error::UnknownName {
                kind: "optimizer",
                name: name.to_string(),
                message: format!(
                    "Could not interpret optimizer identifier: {name}{note}. Known names: sgd, \
                     adam, adamw, rmsprop, adagrad, adadelta, adamax, nadam, ftrl"
                ),
            });
        }
    })
}

/// What an update sees of the step: the learning rate and the iteration count before it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    pub(crate) learning_rate: f32,
    pub(crate) iterations: u64,
}

impl Step {
    /// Keras's `local_step = cast(iterations + 1, float32)`.
    pub(crate) fn local_step(&self) -> f32 {
        (self.iterations + 1) as f32
    }
}

/// One optimizer's arithmetic, given to the shared [`Core`]: its hyper-parameters, its slots
/// and its update of one variable.
pub(crate) trait Rule: Sync {
    /// The slots of each variable, in groups in Keras's order: `optimizer.variables` lists,
    /// group by group, each variable's slots of that group (Adam with amsgrad:
    /// `[["momentum", "velocity"], ["velocity_hat"]]`). [`update`](Rule::update) gets a
    /// variable's slots in the flattened order.
    fn slots(&self) -> &'static [&'static [&'static str]];

    /// The initial value of a slot (Keras's initializer; zeros but for accumulators).
    fn initial(&self, _slot: &str) -> f32 {
        0.0
    }

    /// Scalar variables of the whole optimizer, after the slots in Keras's list (Nadam's
    /// `u_product`, named `variable`), with their initial values.
    fn globals(&self) -> &'static [(&'static str, f32)] {
        &[]
    }

    /// Keras's checks of the optimizer's own hyper-parameters.
    fn check(&self, _name: &str) -> Result<()> {
        Ok(())
    }

    /// Once per step, before the variables' updates (Nadam's `u_product`).
    fn begin_step(&self, _step: &Step, _globals: &mut [f32]) {}

    /// The update of elements of one variable, `w`, with their gradients `g` and the same
    /// elements of each of its slots: every element on its own, so that a large variable's
    /// update can run in parts side by side ([`update_in_parts`]).
    fn update(
        &self,
        step: &Step,
        globals: &[f32],
        w: &mut [f32],
        g: &[f32],
        slots: &mut [&mut [f32]],
    );

    /// The optimizer's own `get_config()` entries, after the base optimizer's.
    fn options(&self) -> Vec<(&'static str, ConfigValue)>;
}

/// Runs `f(w, g, slots)` on every element: the variable's element, the gradient's, and the
/// same element of each of the `N` slots.
///
/// The loop is compiled for each instruction set (AVX-512, AVX2, portable) with `f` inlined
/// into it, and the one the CPU has runs, so that a rule's arithmetic runs 16 or 8 elements
/// at a time. Each element's operations are the same IEEE ones in any width (Rust contracts
/// no multiply-add on its own): the bits do not change with the instruction set. The rules
/// pass `move` closures: one that captures its constants by reference reads them from memory
/// at every element, since LLVM cannot tell that the slots' stores leave them alone, and its
/// loop stays one element wide (RMSprop's did).
///
/// # Panics
/// If `slots` are not `N` slices of `w`'s length: the optimizer made them so.
pub(crate) fn each<const N: usize>(
    w: &mut [f32],
    g: &[f32],
    slots: &mut [&mut [f32]],
    mut f: impl FnMut(&mut f32, f32, &mut [f32; N]),
) {
    assert_eq!(slots.len(), N, "an optimizer's slot count");
    let mut rest = slots.iter_mut();
    let s: [&mut [f32]; N] =
        std::array::from_fn(|_| &mut **rest.next().expect("an optimizer's slot count"));
    assert!(s.iter().all(|s| s.len() == w.len()) && g.len() == w.len());
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx2,fma")]
        unsafe fn avx512<const N: usize, F: FnMut(&mut f32, f32, &mut [f32; N])>(
            w: &mut [f32],
            g: &[f32],
            s: [&mut [f32]; N],
            f: &mut F,
        ) {
            each_element(w, g, s, f);
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<const N: usize, F: FnMut(&mut f32, f32, &mut [f32; N])>(
            w: &mut [f32],
            g: &[f32],
            s: [&mut [f32]; N],
            f: &mut F,
        ) {
            each_element(w, g, s, f);
        }
        if crate::linalg::has_avx512() {
            // SAFETY: the CPU has AVX-512F, AVX2 and FMA.
            return unsafe { avx512(w, g, s, &mut f) };
        }
        if crate::linalg::has_avx2() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { avx2(w, g, s, &mut f) };
        }
    }
    each_element(w, g, s, &mut f);
}

/// The loop of [`each`], inlined into each instruction set's copy; the lengths, checked
/// equal by the caller, cut to one so that the loop has no bounds checks.
#[inline(always)]
fn each_element<const N: usize, F: FnMut(&mut f32, f32, &mut [f32; N])>(
    w: &mut [f32],
    g: &[f32],
    s: [&mut [f32]; N],
    f: &mut F,
) {
    let n = w.len();
    let g = &g[..n];
    let mut s = s.map(|slot| &mut slot[..n]);
    for i in 0..n {
        let mut values: [f32; N] = std::array::from_fn(|k| s[k][i]);
        f(&mut w[i], g[i], &mut values);
        for (slot, v) in s.iter_mut().zip(values) {
            slot[i] = v;
        }
    }
}

/// The fewest elements of a variable per part of its update when the call may use more than
/// one thread: an update reads and writes each element's variable, gradient and slots once,
/// so a part of fewer would cost more to hand to another thread than it saves. An
/// `Embedding(5000, 64)` (320 000 elements) runs in two.
const UPDATE_PART: usize = 1 << 15;

/// The most slots of one variable (Adam with amsgrad, RMSprop centered with momentum: 3).
const MAX_SLOTS: usize = 4;

/// `f` of slices of `slots` (standard-layout arrays), from a fixed array for up to
/// [`MAX_SLOTS`] of them, so that a step allocates nothing; from a `Vec` beyond.
fn with_views(slots: &mut [ArrayD<f32>], f: impl FnOnce(&mut [&mut [f32]])) {
    let count = slots.len();
    fn view(slot: &mut ArrayD<f32>) -> &mut [f32] {
        slot.as_slice_mut()
            .expect("slots are standard-layout arrays")
    }
    if count <= MAX_SLOTS {
        let mut views: [&mut [f32]; MAX_SLOTS] = Default::default();
        for (v, slot) in views.iter_mut().zip(slots) {
            *v = view(slot);
        }
        f(&mut views[..count]);
    } else {
        let mut views: Vec<&mut [f32]> = slots.iter_mut().map(view).collect();
        f(&mut views);
    }
}

/// `rule.update` of one variable, in halves side by side, each on its share of the threads
/// and split again while it has more than one and [`UPDATE_PART`] elements per part: the
/// same numbers as one call, since every element's update is its own, and no allocation.
/// (Adam's update of a large embedding table ran on one thread while the other waited: 1.6 %
/// of T3's samples on two threads.)
fn update_in_parts(
    rule: &dyn Rule,
    step: &Step,
    globals: &[f32],
    w: &mut [f32],
    g: &[f32],
    slots: &mut [&mut [f32]],
) {
    if crate::threads::parts(w.len() / UPDATE_PART) < 2 || slots.len() > MAX_SLOTS {
        rule.update(step, globals, w, g, slots);
        return;
    }
    let count = slots.len();
    let at = w.len() / 2;
    let ((w1, g1, mut s1), (w2, g2, mut s2)) = halves(w, g, slots, at);
    crate::threads::join(
        || update_in_parts(rule, step, globals, w1, g1, &mut s1[..count]),
        || update_in_parts(rule, step, globals, w2, g2, &mut s2[..count]),
    );
}

/// One part of a variable's update: its elements, their gradients and each slot's same
/// elements (the first `slots.len()` of the array).
type Part<'a> = (&'a mut [f32], &'a [f32], [&'a mut [f32]; MAX_SLOTS]);

/// Elements `..at` and `at..` of a variable, its gradient and its slots (at most
/// [`MAX_SLOTS`]; `at` at most the variable's length).
fn halves<'a>(
    w: &'a mut [f32],
    g: &'a [f32],
    slots: &'a mut [&mut [f32]],
    at: usize,
) -> (Part<'a>, Part<'a>) {
    let (w1, w2) = w.split_at_mut(at);
    let (g1, g2) = g.split_at(at);
    let mut s1: [&mut [f32]; MAX_SLOTS] = Default::default();
    let mut s2: [&mut [f32]; MAX_SLOTS] = Default::default();
    for ((slot, a), b) in slots.iter_mut().zip(&mut s1).zip(&mut s2) {
        (*a, *b) = slot.split_at_mut(at);
    }
    ((w1, g1, s1), (w2, g2, s2))
}

/// What every optimizer shares: Keras's base optimizer (name, learning rate, weight decay,
/// clipping, iterations) and, once built, the slots.
#[derive(Debug, Clone)]
pub(crate) struct Core {
    class_name: &'static str,
    name: String,
    learning_rate: LearningRate,
    weight_decay: Option<f64>,
    clipping: GradientClipping,
    iterations: u64,
    built: Option<Built>,
}

/// The state of a built optimizer.
#[derive(Debug, Clone)]
struct Built {
    /// Keras's paths of the variables, `/` made `_`: the prefixes of the slot names.
    paths: Vec<String>,
    shapes: Vec<Vec<usize>>,
    layout: &'static [&'static [&'static str]],
    /// `slots[variable][slot]`, in the flattened order of `layout`.
    slots: Vec<Vec<ArrayD<f32>>>,
    globals: Vec<f32>,
    /// Per variable: its gradient, clipped or in standard layout, when it must be copied.
    gradient_copies: Vec<ArrayD<f32>>,
    /// Per variable: a standard-layout copy of a variable that is not in standard layout.
    variable_copies: Vec<ArrayD<f32>>,
}

/// Where one of [`Optimizer::variables`] lives.
#[derive(Debug, Clone, Copy)]
enum Place {
    Iterations,
    LearningRate,
    Slot {
        variable: usize,
        slot: usize,
        kind: &'static str,
    },
    Global(usize),
}

impl Place {
    fn role(self) -> VariableRole {
        match self {
            Place::Iterations => VariableRole::Iterations,
            Place::LearningRate => VariableRole::LearningRate,
            Place::Slot { variable, kind, .. } => VariableRole::Slot { variable, kind },
            Place::Global(_) => VariableRole::Global,
        }
    }
}

/// `buffer` as a standard-layout copy of `from`, allocated only when the shapes differ (and,
/// for a `from` of more than four dimensions that is not in standard layout, by ndarray's
/// index of it).
fn copy_into(buffer: &mut ArrayD<f32>, from: &ArrayViewD<'_, f32>) {
    if buffer.shape() != from.shape() {
        *buffer = ArrayD::from_shape_vec(IxDyn(from.shape()), from.iter().copied().collect())
            .expect("the elements of an array fit its shape");
        return;
    }
    let to = buffer.as_slice_mut().expect("a standard-layout buffer");
    match from.as_slice() {
        Some(from) => to.copy_from_slice(from),
        None => to.iter_mut().zip(from.iter()).for_each(|(t, f)| *t = *f),
    }
}

impl Core {
    /// A Keras base optimizer named `base`, `base_1`, ... with a constant learning rate.
    pub(crate) fn new(class_name: &'static str, base: &str, learning_rate: f64) -> Self {
        Core {
            class_name,
            name: crate::session::unique_name(base),
            learning_rate: LearningRate::Constant(learning_rate as f32),
            weight_decay: None,
            clipping: GradientClipping::new(),
            iterations: 0,
            built: None,
        }
    }

    fn invalid(&self, message: String) -> Error {
        Error::InvalidArgument {
            layer: self.name.clone(),
            message: format!("{}: {message}", self.class_name),
        }
    }

    pub(crate) fn class_name(&self) -> &'static str {
        self.class_name
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn set_name(&mut self, name: String) {
        self.name = name;
    }

    pub(crate) fn iterations(&self) -> u64 {
        self.iterations
    }

    pub(crate) fn learning_rate(&self) -> f32 {
        self.learning_rate.at(self.iterations)
    }

    pub(crate) fn learning_rate_config(&self) -> &LearningRate {
        &self.learning_rate
    }

    pub(crate) fn set_constant_learning_rate(&mut self, learning_rate: f64) {
        self.learning_rate = LearningRate::Constant(learning_rate as f32);
    }

    pub(crate) fn set_schedule(&mut self, schedule: LearningRate) {
        self.learning_rate = schedule;
    }

    pub(crate) fn weight_decay(&self) -> Option<f64> {
        self.weight_decay
    }

    pub(crate) fn set_weight_decay(&mut self, weight_decay: Option<f64>) {
        self.weight_decay = weight_decay;
    }

    pub(crate) fn clipping(&self) -> GradientClipping {
        self.clipping
    }

    pub(crate) fn clipping_mut(&mut self) -> &mut GradientClipping {
        &mut self.clipping
    }

    pub(crate) fn is_built(&self) -> bool {
        self.built.is_some()
    }

    /// Keras's learning-rate setter.
    pub(crate) fn set_learning_rate(&mut self, learning_rate: f64) -> Result<()> {
        if let LearningRate::Schedule(_) = self.learning_rate {
            return Err(self.invalid(
                "This optimizer was created with a `LearningRateSchedule` object as its \
                 `learning_rate` constructor argument, hence its learning rate is not settable. \
                 If you need the learning rate to be settable, you should instantiate the \
                 optimizer with a float `learning_rate` argument."
                    .into(),
            ));
        }
        ConfigValue::Float(learning_rate).check_finite(&self.name, "learning_rate")?;
        self.set_constant_learning_rate(learning_rate);
        Ok(())
    }

    /// Every check of the hyper-parameters: the clipping, the schedule, the rule's own, and
    /// that every float is finite.
    fn check(&self, rule: &dyn Rule) -> Result<()> {
        self.clipping.check(&self.name)?;
        if let LearningRate::Schedule(s) = &self.learning_rate {
            s.check()?;
        }
        rule.check(&self.name)?;
        self.config(rule).check_finite(&self.name)
    }

    /// Keras's `build`.
    pub(crate) fn build(&mut self, rule: &dyn Rule, variables: &[WeightSpec]) -> Result<()> {
        if self.built.is_some() {
            return Ok(());
        }
        self.check(rule)?;
        let layout = rule.slots();
        let kinds: Vec<&str> = layout
            .iter()
            .flat_map(|group| group.iter().copied())
            .collect();
        let slots = variables
            .iter()
            .map(|v| {
                kinds
                    .iter()
                    .map(|kind| ArrayD::from_elem(IxDyn(&v.shape), rule.initial(kind)))
                    .collect()
            })
            .collect();
        self.built = Some(Built {
            paths: variables.iter().map(|v| v.name.replace('/', "_")).collect(),
            shapes: variables.iter().map(|v| v.shape.clone()).collect(),
            layout,
            slots,
            globals: rule.globals().iter().map(|(_, init)| *init).collect(),
            gradient_copies: Vec::new(),
            variable_copies: Vec::new(),
        });
        Ok(())
    }

    /// Every check `apply` makes before it changes anything.
    fn check_apply(
        &self,
        rule: &dyn Rule,
        variables: &[ArrayViewMutD<'_, f32>],
        gradients: &[ArrayViewD<'_, f32>],
    ) -> Result<()> {
        if variables.len() != gradients.len() {
            return Err(self.invalid(format!(
                "got {} variables and {} gradients; each variable takes one gradient",
                variables.len(),
                gradients.len()
            )));
        }
        match &self.built {
            None => self.check(rule)?,
            Some(built) => {
                if built.layout != rule.slots() {
                    return Err(self.invalid(
                        "an option that decides the slots (momentum, amsgrad, centered) changed \
                         after the optimizer was built; make a new optimizer instead"
                            .into(),
                    ));
                }
                if variables.len() != built.shapes.len() {
                    return Err(self.invalid(format!(
                        "it was built for {} variables and got {}. This optimizer can only be \
                         called for the variables it was originally built with.",
                        built.shapes.len(),
                        variables.len()
                    )));
                }
                for (i, (v, shape)) in variables.iter().zip(&built.shapes).enumerate() {
                    if v.shape() != shape.as_slice() {
                        return Err(self.invalid(format!(
                            "variable {i} has shape {}, but the optimizer was built for shape {}",
                            Shape::known(v.shape()),
                            Shape::known(shape)
                        )));
                    }
                }
            }
        }
        for (i, (v, g)) in variables.iter().zip(gradients).enumerate() {
            if v.shape() != g.shape() {
                return Err(self.invalid(format!(
                    "gradient {i} has shape {}, but variable {i} has shape {}",
                    Shape::known(g.shape()),
                    Shape::known(v.shape())
                )));
            }
        }
        Ok(())
    }

    /// Keras 3's `apply_gradients`.
    pub(crate) fn apply(
        &mut self,
        rule: &dyn Rule,
        variables: &mut [ArrayViewMutD<'_, f32>],
        gradients: &[ArrayViewD<'_, f32>],
    ) -> Result<()> {
        if variables.is_empty() && gradients.is_empty() {
            return Ok(());
        }
        self.check_apply(rule, variables, gradients)?;
        if self.built.is_none() {
            let specs: Vec<WeightSpec> = variables
                .iter()
                .enumerate()
                .map(|(i, v)| WeightSpec::new(format!("variable_{i}"), v.shape().to_vec()))
                .collect();
            self.build(rule, &specs)?;
        }
        let step = Step {
            learning_rate: self.learning_rate(),
            iterations: self.iterations,
        };
        let clipping = self.clipping;
        let weight_decay = self.weight_decay.map(|wd| wd as f32);
        let Built {
            slots,
            globals,
            gradient_copies,
            variable_copies,
            ..
        } = self.built.as_mut().expect("built above");
        let n = variables.len();
        gradient_copies.resize_with(n, || ArrayD::zeros(IxDyn(&[0])));
        variable_copies.resize_with(n, || ArrayD::zeros(IxDyn(&[0])));
        let clip = clipping.is_active();
        for (copy, g) in gradient_copies.iter_mut().zip(gradients) {
            if clip || !g.is_standard_layout() {
                copy_into(copy, g);
            }
        }
        if clip {
            clipping.clip(gradient_copies);
        }
        rule.begin_step(&step, globals);
        for i in 0..n {
            let variable = &mut variables[i];
            if let Some(wd) = weight_decay {
                let lr = step.learning_rate;
                map_in_place(variable, |w| w - w * wd * lr);
            }
            let g = if clip || !gradients[i].is_standard_layout() {
                gradient_copies[i].as_slice()
            } else {
                gradients[i].as_slice()
            }
            .expect("a standard-layout gradient");
            let variable_copy = &mut variable_copies[i];
            with_views(&mut slots[i], |views| match variable.as_slice_mut() {
                Some(w) => update_in_parts(rule, &step, globals, w, g, views),
                None => {
                    copy_into(variable_copy, &variable.view());
                    let w = variable_copy
                        .as_slice_mut()
                        .expect("a standard-layout copy");
                    update_in_parts(rule, &step, globals, w, g, views);
                    variable.iter_mut().zip(w.iter()).for_each(|(v, w)| *v = *w);
                }
            });
        }
        self.iterations += 1;
        Ok(())
    }

    /// The places of [`Optimizer::variables`], with their names, in Keras 3's order.
    fn places(&self, rule: &dyn Rule) -> Vec<(String, Place)> {
        let mut places = vec![("iteration".to_string(), Place::Iterations)];
        if let LearningRate::Constant(_) = self.learning_rate {
            places.push(("learning_rate".into(), Place::LearningRate));
        }
        if let Some(built) = &self.built {
            let mut first = 0;
            for group in built.layout {
                for (variable, path) in built.paths.iter().enumerate() {
                    for (k, kind) in group.iter().enumerate() {
                        let slot = first + k;
                        places.push((
                            format!("{path}_{kind}"),
                            Place::Slot {
                                variable,
                                slot,
                                kind,
                            },
                        ));
                    }
                }
                first += group.len();
            }
            for (i, (name, _)) in rule.globals().iter().enumerate() {
                places.push((name.to_string(), Place::Global(i)));
            }
        }
        places
    }

    fn value(&self, place: Place) -> VariableValue {
        let built = self.built.as_ref();
        match place {
            Place::Iterations => VariableValue::Int64(self.iterations as i64),
            Place::LearningRate => {
                VariableValue::Float32(ArrayD::from_elem(IxDyn(&[]), self.learning_rate()))
            }
            Place::Slot { variable, slot, .. } => VariableValue::Float32(
                built.expect("slots are built").slots[variable][slot].clone(),
            ),
            Place::Global(i) => VariableValue::Float32(ArrayD::from_elem(
                IxDyn(&[]),
                built.expect("globals are built").globals[i],
            )),
        }
    }

    pub(crate) fn variables(&self, rule: &dyn Rule) -> Vec<OptimizerVariable> {
        self.places(rule)
            .into_iter()
            .map(|(name, place)| OptimizerVariable {
                name,
                role: place.role(),
                value: self.value(place),
            })
            .collect()
    }

    /// The shape a value at `place` must have.
    fn shape_at(&self, place: Place) -> Vec<usize> {
        match (place, &self.built) {
            (Place::Slot { variable, .. }, Some(built)) => built.shapes[variable].clone(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn set_variables(
        &mut self,
        rule: &dyn Rule,
        values: &[VariableValue],
    ) -> Result<()> {
        if self.built.is_none() {
            return Err(self.invalid(
                "You are calling `set_weights()` on an optimizer that has not yet been built. \
                 Please call `optimizer.build(trainable_variables)` to create the optimizer \
                 weights before calling `set_weights()`."
                    .into(),
            ));
        }
        let places = self.places(rule);
        if values.len() != places.len() {
            return Err(Error::WeightCount {
                layer: self.name.clone(),
                expected: places.len(),
                found: values.len(),
            });
        }
        for (index, ((name, place), value)) in places.iter().zip(values).enumerate() {
            match (place, value) {
                (Place::Iterations, VariableValue::Int64(i)) if *i < 0 => {
                    return Err(self.invalid(format!("`iteration` must be >= 0, got {i}")));
                }
                (Place::Iterations, VariableValue::Int64(_)) => {}
                (Place::Iterations, VariableValue::Float32(_)) => {
                    return Err(self.invalid(
                        "optimizer variable 0 (iteration) is Keras's int64 counter, got a \
                         float32 array"
                            .into(),
                    ));
                }
                (_, VariableValue::Int64(_)) => {
                    return Err(self.invalid(format!(
                        "optimizer variable {index} ({name}) is float32, got an int64"
                    )));
                }
                (place, VariableValue::Float32(a)) => {
                    let expected = self.shape_at(*place);
                    if a.shape() != expected.as_slice() {
                        return Err(Error::WeightShape {
                            layer: self.name.clone(),
                            index,
                            weight: name.clone(),
                            expected: Shape::known(&expected),
                            found: Shape::known(a.shape()),
                        });
                    }
                }
            }
        }
        for ((_, place), value) in places.iter().zip(values) {
            match (place, value) {
                (Place::Iterations, VariableValue::Int64(i)) => self.iterations = *i as u64,
                (place, VariableValue::Float32(a)) => {
                    let scalar = a.iter().next().copied().unwrap_or(0.0);
                    let built = self.built.as_mut().expect("checked above");
                    match place {
                        Place::LearningRate => {
                            self.learning_rate = LearningRate::Constant(scalar);
                        }
                        Place::Slot { variable, slot, .. } => {
                            built.slots[*variable][*slot].assign(a)
                        }
                        Place::Global(i) => built.globals[*i] = scalar,
                        Place::Iterations => unreachable!("matched above"),
                    }
                }
                (_, VariableValue::Int64(_)) => unreachable!("checked above"),
            }
        }
        Ok(())
    }

    /// The globals after `iterations` steps, replayed step by step from their initial values.
    /// The replay stops when a step leaves them as they were: Nadam's factor grows toward
    /// `beta_1` with the steps, so a product a step cannot change (0, the smallest subnormal,
    /// infinity, or a factor rounded to 1) no later step changes either. That takes at most
    /// a few thousand steps; the bound is for a factor that never settles.
    pub(crate) fn globals_at(rule: &dyn Rule, iterations: u64) -> Vec<f32> {
        let mut globals: Vec<f32> = rule.globals().iter().map(|(_, init)| *init).collect();
        if globals.is_empty() {
            return globals;
        }
        for i in 0..iterations.min(1 << 20) {
            let before = globals.clone();
            let step = Step {
                learning_rate: 0.0,
                iterations: i,
            };
            rule.begin_step(&step, &mut globals);
            if (before.iter().zip(&globals)).all(|(a, b)| a.to_bits() == b.to_bits()) {
                break;
            }
        }
        globals
    }

    /// Keras 3's `get_config()`: the base optimizer's entries, then the rule's.
    pub(crate) fn config(&self, rule: &dyn Rule) -> Config {
        let float = ConfigValue::float_or_null;
        let mut options = vec![
            ("name", ConfigValue::Str(self.name.clone())),
            ("learning_rate", self.learning_rate.config()),
            ("weight_decay", float(self.weight_decay)),
            ("clipnorm", float(self.clipping.clipnorm())),
            ("global_clipnorm", float(self.clipping.global_clipnorm())),
            ("clipvalue", float(self.clipping.clipvalue())),
            ("use_ema", ConfigValue::Bool(false)),
            ("ema_momentum", ConfigValue::Float(0.99)),
            ("ema_overwrite_frequency", ConfigValue::Null),
            ("loss_scale_factor", ConfigValue::Null),
            ("gradient_accumulation_steps", ConfigValue::Null),
        ];
        options.extend(rule.options());
        Config {
            class_name: self.class_name,
            options,
        }
    }
}

/// The `Optimizer` impl of a type with fields `core: Core` and `rule` (its [`Rule`]).
macro_rules! impl_optimizer {
    ($ty:ty) => {
        impl $crate::train::optimizer::Optimizer for $ty {
            fn class_name(&self) -> &'static str {
                self.core.class_name()
            }

            fn name(&self) -> &str {
                self.core.name()
            }

            fn iterations(&self) -> u64 {
                self.core.iterations()
            }

            fn learning_rate(&self) -> f32 {
                self.core.learning_rate()
            }

            fn set_learning_rate(&mut self, learning_rate: f64) -> $crate::Result<()> {
                self.core.set_learning_rate(learning_rate)
            }

            fn is_built(&self) -> bool {
                self.core.is_built()
            }

            fn build(&mut self, variables: &[$crate::WeightSpec]) -> $crate::Result<()> {
                self.core.build(&self.rule, variables)
            }

            fn apply(
                &mut self,
                variables: &mut [ndarray::ArrayViewMutD<'_, f32>],
                gradients: &[ndarray::ArrayViewD<'_, f32>],
            ) -> $crate::Result<()> {
                self.core.apply(&self.rule, variables, gradients)
            }

            fn variables(&self) -> Vec<$crate::train::optimizer::OptimizerVariable> {
                self.core.variables(&self.rule)
            }

            fn set_variables(
                &mut self,
                values: &[$crate::train::optimizer::VariableValue],
            ) -> $crate::Result<()> {
                self.core.set_variables(&self.rule, values)
            }

            fn globals_at(&self, iterations: u64) -> Vec<f32> {
                $crate::train::optimizer::Core::globals_at(&self.rule, iterations)
            }

            fn config(&self) -> $crate::train::config::Config {
                self.core.config(&self.rule)
            }

            fn box_clone(&self) -> Box<dyn $crate::train::optimizer::Optimizer> {
                Box::new(self.clone())
            }
        }
    };
}
pub(crate) use impl_optimizer;

/// The builders and getters of Keras's base optimizer, for a type with a `core: Core` field.
macro_rules! base_builders {
    () => {
        /// Keras's `learning_rate`, a constant (kept as float32, as Keras's variable). A
        /// negative rate is taken, as in Keras (it ascends the gradient).
        #[must_use]
        pub fn with_learning_rate(mut self, learning_rate: f64) -> Self {
            self.core.set_constant_learning_rate(learning_rate);
            self
        }

        /// Keras's `learning_rate` as a schedule, evaluated at `iterations` before each step.
        #[must_use]
        pub fn with_learning_rate_schedule(
            mut self,
            schedule: impl $crate::train::schedule::LearningRateSchedule + 'static,
        ) -> Self {
            self.core
                .set_schedule($crate::train::schedule::LearningRate::Schedule(Box::new(
                    schedule,
                )));
            self
        }

        /// [`with_learning_rate_schedule`](Self::with_learning_rate_schedule) of a boxed
        /// schedule (one read from a file).
        #[must_use]
        pub(crate) fn with_boxed_learning_rate_schedule(
            mut self,
            schedule: Box<dyn $crate::train::schedule::LearningRateSchedule>,
        ) -> Self {
            self.core
                .set_schedule($crate::train::schedule::LearningRate::Schedule(schedule));
            self
        }

        /// The schedule, if the learning rate is one.
        pub fn learning_rate_schedule(
            &self,
        ) -> Option<&dyn $crate::train::schedule::LearningRateSchedule> {
            match self.core.learning_rate_config() {
                $crate::train::schedule::LearningRate::Schedule(s) => Some(s.as_ref()),
                $crate::train::schedule::LearningRate::Constant(_) => None,
            }
        }

        /// Keras's `weight_decay`: before each step, `w ← w - w·weight_decay·lr`.
        #[must_use]
        pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
            self.core.set_weight_decay(Some(weight_decay));
            self
        }

        /// `weight_decay`, if set.
        pub fn weight_decay(&self) -> Option<f64> {
            self.core.weight_decay()
        }

        /// Keras's `clipnorm` (default `None`): see [`GradientClipping`](crate::train::GradientClipping).
        #[must_use]
        pub fn with_clipnorm(mut self, clipnorm: f64) -> Self {
            *self.core.clipping_mut() = self.core.clipping().with_clipnorm(clipnorm);
            self
        }

        /// Keras's `clipvalue` (default `None`).
        #[must_use]
        pub fn with_clipvalue(mut self, clipvalue: f64) -> Self {
            *self.core.clipping_mut() = self.core.clipping().with_clipvalue(clipvalue);
            self
        }

        /// Keras's `global_clipnorm` (default `None`).
        #[must_use]
        pub fn with_global_clipnorm(mut self, global_clipnorm: f64) -> Self {
            *self.core.clipping_mut() = self.core.clipping().with_global_clipnorm(global_clipnorm);
            self
        }

        /// The three clipping options.
        pub fn clipping(&self) -> $crate::train::GradientClipping {
            self.core.clipping()
        }

        /// `clipnorm`, if set.
        pub fn clipnorm(&self) -> Option<f64> {
            self.core.clipping().clipnorm()
        }

        /// `clipvalue`, if set.
        pub fn clipvalue(&self) -> Option<f64> {
            self.core.clipping().clipvalue()
        }

        /// `global_clipnorm`, if set.
        pub fn global_clipnorm(&self) -> Option<f64> {
            self.core.clipping().global_clipnorm()
        }

        /// Keras's `name`.
        #[must_use]
        pub fn with_name(mut self, name: impl Into<String>) -> Self {
            self.core.set_name(name.into());
            self
        }
    };
}
pub(crate) use base_builders;

/// A hyper-parameter's builder and getter: `with_<name>(value)` and `<name>()` over
/// `self.rule.<name>`.
macro_rules! option {
    ($(#[$doc:meta])* $name:ident, $with:ident: $ty:ty) => {
        $(#[$doc])*
        #[must_use]
        pub fn $with(mut self, $name: $ty) -> Self {
            self.rule.$name = $name;
            self
        }

        #[doc = concat!("`", stringify!($name), "`.")]
        pub fn $name(&self) -> $ty {
            self.rule.$name
        }
    };
}
pub(crate) use option;

/// The builders of `beta_1`, `beta_2` and `epsilon` (Adam, AdamW, Adamax, Nadam): what
/// `beta_2` decays, and what `epsilon` is added to.
macro_rules! beta_options {
    ($beta_2:literal, $epsilon:literal) => {
        $crate::train::optimizer::option!(
            /// Keras's `beta_1` (default 0.9): the decay of the first-moment estimate.
            beta_1, with_beta_1: f64
        );

        $crate::train::optimizer::option!(
            #[doc = concat!("Keras's `beta_2` (default 0.999): the decay of ", $beta_2, ".")]
            beta_2, with_beta_2: f64
        );

        $crate::train::optimizer::option!(
            #[doc = concat!("Keras's `epsilon` (default 1e-7), added to ", $epsilon, ".")]
            epsilon, with_epsilon: f64
        );
    };
}
pub(crate) use beta_options;

/// The config entries `beta_1`, `beta_2`, `epsilon`, in Keras's order.
pub(crate) fn beta_config(
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
) -> Vec<(&'static str, ConfigValue)> {
    vec![
        ("beta_1", ConfigValue::Float(beta_1)),
        ("beta_2", ConfigValue::Float(beta_2)),
        ("epsilon", ConfigValue::Float(epsilon)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::ExponentialDecay;
    use ndarray::{arr1, arr2, Array2};

    fn pair() -> (ArrayD<f32>, ArrayD<f32>) {
        (
            arr2(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]).into_dyn(),
            arr1(&[0.5f32, -0.5]).into_dyn(),
        )
    }

    /// One step of `opt` on [`pair`] with gradients of ones.
    fn step(opt: &mut dyn Optimizer, a: &mut ArrayD<f32>, b: &mut ArrayD<f32>) -> Result<()> {
        let (ga, gb) = (ArrayD::ones(a.raw_dim()), ArrayD::ones(b.raw_dim()));
        opt.apply(&mut [a.view_mut(), b.view_mut()], &[ga.view(), gb.view()])
    }

    #[test]
    fn a_wrong_gradient_shape_changes_nothing_and_says_which() -> Result<()> {
        let (mut a, mut b) = pair();
        let mut opt = Adam::new().with_name("adam");
        step(&mut opt, &mut a, &mut b)?;
        let (a0, b0, state) = (a.clone(), b.clone(), opt.variables());
        let ga = Array2::<f32>::ones((3, 2)).into_dyn();
        let gb = arr1(&[1.0f32, 1.0]).into_dyn();
        // The first variable's gradient is wrong; the second is fine and must not move either.
        let err = opt
            .apply(&mut [a.view_mut(), b.view_mut()], &[ga.view(), gb.view()])
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }));
        assert_eq!(
            err.to_string(),
            "layer \"adam\": Adam: gradient 0 has shape (3, 2), but variable 0 has shape (2, 3)"
        );
        assert_eq!((a, b), (a0, b0));
        assert_eq!(opt.variables(), state);
        assert_eq!(opt.iterations(), 1);
        Ok(())
    }

    #[test]
    fn variables_must_be_those_the_optimizer_was_built_for() -> Result<()> {
        let (mut a, mut b) = pair();
        let mut opt = RMSprop::new();
        // Nothing is built by a failed first call.
        let g = arr1(&[1.0f32]).into_dyn();
        let err = opt.apply(&mut [a.view_mut()], &[g.view()]).unwrap_err();
        assert!(
            err.to_string().contains("gradient 0 has shape (1,)"),
            "{err}"
        );
        assert!(!opt.is_built());
        let err = opt
            .apply(&mut [a.view_mut(), b.view_mut()], &[g.view()])
            .unwrap_err();
        assert!(
            err.to_string().contains("got 2 variables and 1 gradients"),
            "{err}"
        );
        step(&mut opt, &mut a, &mut b)?;
        let ga = ArrayD::ones(a.raw_dim());
        let err = opt.apply(&mut [a.view_mut()], &[ga.view()]).unwrap_err();
        assert!(
            err.to_string().contains("built for 2 variables and got 1"),
            "{err}"
        );
        let err = step(&mut opt, &mut b.clone(), &mut a.clone()).unwrap_err();
        assert!(
            err.to_string().contains(
                "variable 0 has shape (2,), but the optimizer was built for shape (2, 3)"
            ),
            "{err}"
        );
        // No variables, no step (Keras's apply_gradients on an empty list).
        opt.apply(&mut [], &[])?;
        assert_eq!(opt.iterations(), 1);
        Ok(())
    }

    #[test]
    fn an_option_that_decides_the_slots_cannot_change_after_building() -> Result<()> {
        let (mut a, mut b) = pair();
        let mut opt = SGD::new();
        step(&mut opt, &mut a, &mut b)?;
        let mut opt = opt.with_momentum(0.9);
        let err = step(&mut opt, &mut a, &mut b).unwrap_err();
        assert!(
            err.to_string()
                .contains("changed after the optimizer was built"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn slots_are_named_after_the_keras_paths_of_the_variables() -> Result<()> {
        let mut opt = Adam::new().with_amsgrad(true);
        let specs = [
            WeightSpec::new("dense/kernel", vec![2, 3]),
            WeightSpec::new("dense/bias", vec![3]),
        ];
        opt.build(&specs)?;
        let names: Vec<String> = opt.variables().into_iter().map(|v| v.name).collect();
        assert_eq!(
            names,
            [
                "iteration",
                "learning_rate",
                "dense_kernel_momentum",
                "dense_kernel_velocity",
                "dense_bias_momentum",
                "dense_bias_velocity",
                "dense_kernel_velocity_hat",
                "dense_bias_velocity_hat",
            ]
        );
        // A second build is Keras's no-op; with a schedule there is no learning_rate variable.
        opt.build(&[])?;
        assert_eq!(opt.variables().len(), 8);
        let mut nadam =
            Nadam::new().with_learning_rate_schedule(ExponentialDecay::new(0.1, 5, 0.9));
        nadam.build(&specs[1..])?;
        let names: Vec<String> = nadam.variables().into_iter().map(|v| v.name).collect();
        assert_eq!(
            names,
            [
                "iteration",
                "dense_bias_momentum",
                "dense_bias_velocity",
                "variable"
            ]
        );
        Ok(())
    }

    #[test]
    fn set_variables_checks_everything_first() -> Result<()> {
        let mut opt = SGD::new().with_momentum(0.5).with_name("sgd");
        let err = opt.set_variables(&[VariableValue::Int64(3)]).unwrap_err();
        assert!(err.to_string().contains("has not yet been built"), "{err}");
        opt.build(&[WeightSpec::new("w", vec![2])])?;
        let scalar = |x: f32| VariableValue::Float32(ArrayD::from_elem(IxDyn(&[]), x));
        let momentum = VariableValue::Float32(arr1(&[0.25f32, -0.25]).into_dyn());
        let err = opt.set_variables(&[VariableValue::Int64(3)]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::WeightCount {
                    expected: 3,
                    found: 1,
                    ..
                }
            ),
            "{err}"
        );
        let short = VariableValue::Float32(arr1(&[0.25f32]).into_dyn());
        let err = opt
            .set_variables(&[VariableValue::Int64(3), scalar(0.1), short])
            .unwrap_err();
        assert!(matches!(err, Error::WeightShape { index: 2, .. }), "{err}");
        assert!(err.to_string().contains("w_momentum"), "{err}");
        let err = opt
            .set_variables(&[VariableValue::Int64(-1), scalar(0.1), momentum.clone()])
            .unwrap_err();
        assert!(
            err.to_string().contains("`iteration` must be >= 0"),
            "{err}"
        );
        let err = opt
            .set_variables(&[scalar(3.0), scalar(0.1), momentum.clone()])
            .unwrap_err();
        assert!(err.to_string().contains("int64 counter"), "{err}");
        assert_eq!(opt.iterations(), 0);
        opt.set_variables(&[VariableValue::Int64(3), scalar(0.5), momentum.clone()])?;
        assert_eq!((opt.iterations(), opt.learning_rate()), (3, 0.5));
        assert_eq!(opt.variables()[2].value, momentum);
        // A copy keeps the state.
        let boxed: Box<dyn Optimizer> = Box::new(opt);
        assert_eq!(boxed.clone().variables(), boxed.variables());
        Ok(())
    }

    #[test]
    fn learning_rates_are_set_as_keras_sets_them() -> Result<()> {
        // A negative rate is Keras's too: it climbs the gradient.
        let mut w = arr1(&[1.0f32]).into_dyn();
        let g = arr1(&[1.0f32]).into_dyn();
        let mut sgd = SGD::new().with_learning_rate(-0.5);
        sgd.apply(&mut [w.view_mut()], &[g.view()])?;
        assert_eq!(w[0], 1.5);
        sgd.set_learning_rate(0.25)?;
        assert_eq!(sgd.learning_rate(), 0.25);
        assert!(sgd.set_learning_rate(f64::NAN).is_err());
        let mut scheduled =
            SGD::new().with_learning_rate_schedule(ExponentialDecay::new(0.1, 1, 0.5));
        let err = scheduled.set_learning_rate(0.1).unwrap_err();
        assert!(
            err.to_string()
                .contains("its learning rate is not settable"),
            "{err}"
        );
        assert_eq!(
            scheduled.learning_rate_schedule().unwrap().class_name(),
            "ExponentialDecay"
        );
        Ok(())
    }

    #[test]
    fn bad_hyper_parameters_are_refused_when_building() {
        let err = Adam::new()
            .with_clipnorm(1.0)
            .with_global_clipnorm(1.0)
            .build(&[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set"),
            "{err}"
        );
        let err = Adam::new()
            .with_beta_1(f64::NAN)
            .build(&[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`beta_1` must be a finite number. Received: beta_1=nan"),
            "{err}"
        );
        let err = SGD::new()
            .with_learning_rate_schedule(ExponentialDecay::new(0.1, 0, 0.5))
            .build(&[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`decay_steps` must be > 0"), "{err}");
        for (opt, message) in [
            (
                Ftrl::new().with_learning_rate_power(0.5),
                "`learning_rate_power` needs to be negative or zero. Received: \
                 learning_rate_power=0.5.",
            ),
            (
                Ftrl::new().with_initial_accumulator_value(-1.0),
                "`initial_accumulator_value` needs to be positive or zero. Received: \
                 initial_accumulator_value=-1.0.",
            ),
            (
                Ftrl::new().with_l2_shrinkage_regularization_strength(-0.1),
                "`l2_shrinkage_regularization_strength` needs to be positive or zero. Received: \
                 l2_shrinkage_regularization_strength=-0.1.",
            ),
        ] {
            let err = opt.clone().build(&[]).unwrap_err().to_string();
            assert!(err.ends_with(message), "{err}");
        }
        // What Keras takes, seqnn takes: a momentum of exactly 1, Adam's betas above 1.
        assert!(SGD::new().with_momentum(1.0).build(&[]).is_ok());
        assert!(Adam::new().with_beta_1(1.5).build(&[]).is_ok());
    }

    #[test]
    fn configs_hold_keras_s_defaults() {
        let config = AdamW::new().config();
        assert_eq!(config.class_name, "AdamW");
        assert_eq!(config.get("weight_decay"), Some(&ConfigValue::Float(0.004)));
        assert_eq!(
            config.get("learning_rate"),
            Some(&ConfigValue::Float(f64::from(0.001f32)))
        );
        assert_eq!(config.get("use_ema"), Some(&ConfigValue::Bool(false)));
        let names: Vec<_> = ["sgd", "adam", "adamw", "rmsprop", "nadam"]
            .iter()
            .map(|n| optimizer_from_name(n).unwrap().name().to_string())
            .collect();
        assert!(
            names[2].starts_with("adam_w") && names[3].starts_with("rm_sprop"),
            "{names:?}"
        );
    }

    #[test]
    fn from_name_takes_keras_names_in_any_case() {
        for (name, class) in [
            ("sgd", "SGD"),
            ("Adam", "Adam"),
            ("ADAMW", "AdamW"),
            ("RMSProp", "RMSprop"),
            ("adagrad", "Adagrad"),
            ("adadelta", "Adadelta"),
            ("adamax", "Adamax"),
            ("nadam", "Nadam"),
            ("Ftrl", "Ftrl"),
        ] {
            assert_eq!(optimizer_from_name(name).unwrap().class_name(), class);
        }
        let err = optimizer_from_name("nope").unwrap_err();
        assert!(matches!(
            err,
            Error::UnknownName {
                kind: "optimizer",
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "Could not interpret optimizer identifier: nope. Known names: sgd, adam, adamw, \
             rmsprop, adagrad, adadelta, adamax, nadam, ftrl"
        );
        let err = optimizer_from_name("Lion").unwrap_err().to_string();
        assert!(
            err.contains("a Keras optimizer seqnn does not have yet"),
            "{err}"
        );
    }

    #[test]
    fn each_visits_every_element_with_its_slots() {
        let mut w = [1.0, 2.0, 3.0];
        let (mut a, mut b) = ([0.0f32; 3], [10.0f32; 3]);
        let mut slots: Vec<&mut [f32]> = vec![&mut a, &mut b];
        each::<2>(&mut w, &[1.0, 1.0, 2.0], &mut slots, |w, g, [a, b]| {
            *a = *w + g;
            *b -= g;
            *w = 0.0;
        });
        assert_eq!(w, [0.0; 3]);
        assert_eq!(a, [2.0, 3.0, 5.0]);
        assert_eq!(b, [9.0, 9.0, 8.0]);
    }

    /// Element `i` of the variable ends as `w + g·s0 + s1` and counts its visits in `s0`: a
    /// part that paired an element with another's gradient or slot, or that visited an
    /// element twice or never, gives other numbers.
    struct Tagging;

    impl Rule for Tagging {
        fn slots(&self) -> &'static [&'static [&'static str]] {
            &[&["a", "b"]]
        }
        fn update(&self, _: &Step, _: &[f32], w: &mut [f32], g: &[f32], slots: &mut [&mut [f32]]) {
            each::<2>(w, g, slots, |w, g, [a, b]| {
                *w += g * *a + *b;
                *a += 1.0;
            });
        }
        fn options(&self) -> Vec<(&'static str, ConfigValue)> {
            Vec::new()
        }
    }

    #[test]
    fn a_variable_split_into_parts_gets_every_element_updated_once_with_its_own_values() {
        let n = 1003;
        let w0: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let g: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
        let a0: Vec<f32> = (0..n).map(|i| (i % 5) as f32).collect();
        let b0: Vec<f32> = (0..n).map(|i| 1000.0 * i as f32).collect();
        let step = Step {
            learning_rate: 0.1,
            iterations: 0,
        };
        let expected: Vec<f32> = (0..n).map(|i| w0[i] + g[i] * a0[i] + b0[i]).collect();
        for at in [0, 1, 500, 501, n] {
            let (mut w, mut a, mut b) = (w0.clone(), a0.clone(), b0.clone());
            let mut slots: [&mut [f32]; 2] = [&mut a, &mut b];
            let ((w1, g1, mut s1), (w2, g2, mut s2)) = halves(&mut w, &g, &mut slots, at);
            assert_eq!((w1.len(), w2.len()), (at, n - at));
            Tagging.update(&step, &[], w2, g2, &mut s2[..2]);
            Tagging.update(&step, &[], w1, g1, &mut s1[..2]);
            assert_eq!(w, expected, "split at {at}");
            assert!(
                a.iter().zip(&a0).all(|(a, a0)| *a == a0 + 1.0),
                "split at {at}"
            );
            assert_eq!(b, b0, "split at {at}");
        }
        // Through the call that decides the parts (two on a machine with two threads).
        let big = 3 * UPDATE_PART + 11;
        let w0: Vec<f32> = (0..big).map(|i| (i % 1000) as f32).collect();
        let g = vec![2.0_f32; big];
        let (mut w, mut a, mut b) = (w0.clone(), vec![3.0_f32; big], vec![0.5_f32; big]);
        update_in_parts(&Tagging, &step, &[], &mut w, &g, &mut [&mut a, &mut b]);
        assert!(w.iter().zip(&w0).all(|(w, w0)| *w == w0 + 6.5));
        assert!(a.iter().all(|&a| a == 4.0));
    }

    #[test]
    fn slot_views_cover_every_slot_within_the_fixed_array_and_beyond() {
        for count in [0, 1, MAX_SLOTS, MAX_SLOTS + 2] {
            let mut slots: Vec<ArrayD<f32>> = (0..count)
                .map(|k| ArrayD::from_elem(IxDyn(&[3]), k as f32))
                .collect();
            let mut seen = Vec::new();
            with_views(&mut slots, |views| {
                for v in views.iter_mut() {
                    seen.push(v[0]);
                    v[2] = -1.0;
                }
            });
            let want: Vec<f32> = (0..count).map(|k| k as f32).collect();
            assert_eq!(seen, want, "{count} slots");
            assert!(slots.iter().all(|s| s[[2]] == -1.0), "{count} slots");
        }
    }
}
