//! Learning-rate schedules, as `keras.optimizers.schedules`: a learning rate for each step,
//! evaluated by the optimizer at its `iterations` (0 for the first step).
//!
//! Every schedule computes in float32 in Keras's order of operations (`step` cast to float32,
//! Python-float options rounded to float32 where Keras rounds them), so its rates equal Keras's.
//! The formulas of Keras 3.15 and tf_keras 2.21 are the same; Keras 3 alone refuses a
//! `decay_steps` that is not positive, and names its schedules by default (`"ExponentialDecay"`
//! where tf_keras has `None`). Give one to an optimizer with
//! `with_learning_rate_schedule(schedule)`:
//!
//! ```
//! use seqnn::train::{ExponentialDecay, LearningRateSchedule, Optimizer, SGD};
//! let schedule = ExponentialDecay::new(0.1, 10, 0.5).with_staircase(true);
//! assert_eq!(schedule.at(25), 0.1 * 0.25);
//! let sgd = SGD::new().with_learning_rate_schedule(schedule);
//! assert_eq!(sgd.learning_rate(), 0.1); // at iterations 0
//! ```

use std::f64::consts::PI;
use std::fmt;

use crate::error::{Error, Result};
use crate::train::config::{py_repr, Config, ConfigValue};

/// A learning rate that depends on the step, as Keras's `LearningRateSchedule`.
pub trait LearningRateSchedule: fmt::Debug + Send + Sync {
    /// Keras's class name: `"ExponentialDecay"`.
    fn class_name(&self) -> &'static str;

    /// The learning rate at `step` (Keras's `schedule(step)`), as float32.
    fn at(&self, step: u64) -> f32;

    /// Keras's checks of the schedule's arguments; an optimizer runs them when it is built.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] in Keras's words, such as ``Argument `decay_steps` must be
    /// > 0. Received: decay_steps=0``.
    fn check(&self) -> Result<()>;

    /// Keras's `get_config()`.
    fn config(&self) -> Config;

    /// A boxed copy, so that optimizers holding a schedule can be cloned.
    fn box_clone(&self) -> Box<dyn LearningRateSchedule>;
}

impl Clone for Box<dyn LearningRateSchedule> {
    fn clone(&self) -> Self {
        self.box_clone()
    }
}

/// An optimizer's learning rate: a constant (Keras's float32 `learning_rate` variable) or a
/// schedule.
#[derive(Debug, Clone)]
pub(crate) enum LearningRate {
    Constant(f32),
    Schedule(Box<dyn LearningRateSchedule>),
}

impl LearningRate {
    /// The rate at `step`.
    pub(crate) fn at(&self, step: u64) -> f32 {
        match self {
            LearningRate::Constant(lr) => *lr,
            LearningRate::Schedule(s) => s.at(step),
        }
    }

    /// Keras's config entry: the float the variable holds, or the schedule.
    pub(crate) fn config(&self) -> ConfigValue {
        match self {
            LearningRate::Constant(lr) => ConfigValue::Float(f64::from(*lr)),
            LearningRate::Schedule(s) => ConfigValue::Object(s.config()),
        }
    }
}

/// Keras's check that `decay_steps` is positive.
fn check_decay_steps(owner: &str, decay_steps: u64) -> Result<()> {
    if decay_steps == 0 {
        return Err(Error::InvalidArgument {
            layer: owner.to_string(),
            message: "Argument `decay_steps` must be > 0. Received: decay_steps=0".into(),
        });
    }
    Ok(())
}

/// The builders every schedule has: its `name`; with `decay`, the getters of
/// `initial_learning_rate` and `decay_steps` too.
macro_rules! schedule_plumbing {
    (decay) => {
        schedule_plumbing!();

        /// `initial_learning_rate`.
        pub fn initial_learning_rate(&self) -> f64 {
            self.initial_learning_rate
        }

        /// `decay_steps`.
        pub fn decay_steps(&self) -> u64 {
            self.decay_steps
        }
    };
    () => {
        /// Keras's `name` of the schedule (its class name by default, as in Keras 3).
        pub fn with_name(mut self, name: impl Into<String>) -> Self {
            self.name = name.into();
            self
        }

        /// The schedule's `name`.
        pub fn name(&self) -> &str {
            &self.name
        }
    };
}

/// `step / decay_steps` as float32, floored under `staircase`: the exponent of
/// [`ExponentialDecay`] and the factor of [`InverseTimeDecay`].
fn decay_progress(step: u64, decay_steps: u64, staircase: bool) -> f32 {
    let p = step as f32 / decay_steps as f32;
    if staircase {
        p.floor()
    } else {
        p
    }
}

/// A schedule of `initial_learning_rate`, `decay_steps`, `decay_rate` and `staircase`, whose
/// rate is `$at` of `initial_learning_rate`, `decay_rate` (both float32) and
/// [`decay_progress`] `p`: ExponentialDecay and InverseTimeDecay.
macro_rules! staircase_schedule {
    ($(#[$doc:meta])* $ty:ident, $class:literal,
     |$initial:ident, $rate:ident, $p:ident| $at:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $ty {
            initial_learning_rate: f64,
            decay_steps: u64,
            decay_rate: f64,
            staircase: bool,
            name: String,
        }

        impl $ty {
            #[doc = concat!("Keras's `", $class, "(initial_learning_rate, decay_steps, ",
                            "decay_rate)`; `staircase` is false.")]
            pub fn new(initial_learning_rate: f64, decay_steps: u64, decay_rate: f64) -> Self {
                $ty {
                    initial_learning_rate,
                    decay_steps,
                    decay_rate,
                    staircase: false,
                    name: $class.into(),
                }
            }

            /// Keras's `staircase` (default false): `p` is floored, so that the rate changes at
            /// whole multiples of `decay_steps` only.
            #[must_use]
            pub fn with_staircase(mut self, staircase: bool) -> Self {
                self.staircase = staircase;
                self
            }

            schedule_plumbing!(decay);

            /// `decay_rate`.
            pub fn decay_rate(&self) -> f64 {
                self.decay_rate
            }

            /// `staircase`.
            pub fn staircase(&self) -> bool {
                self.staircase
            }
        }

        impl LearningRateSchedule for $ty {
            fn class_name(&self) -> &'static str {
                $class
            }

            fn at(&self, step: u64) -> f32 {
                let $p = decay_progress(step, self.decay_steps, self.staircase);
                let ($initial, $rate) = (self.initial_learning_rate as f32, self.decay_rate as f32);
                $at
            }

            fn check(&self) -> Result<()> {
                check_decay_steps(&self.name, self.decay_steps)
            }

            fn config(&self) -> Config {
                Config {
                    class_name: $class,
                    options: vec![
                        ("initial_learning_rate", ConfigValue::Float(self.initial_learning_rate)),
                        ("decay_steps", ConfigValue::Int(self.decay_steps as i64)),
                        ("decay_rate", ConfigValue::Float(self.decay_rate)),
                        ("staircase", ConfigValue::Bool(self.staircase)),
                        ("name", ConfigValue::Str(self.name.clone())),
                    ],
                }
            }

            fn box_clone(&self) -> Box<dyn LearningRateSchedule> {
                Box::new(self.clone())
            }
        }
    };
}

staircase_schedule!(
    /// Keras's `ExponentialDecay`: `initial_learning_rate · decay_rate^(step / decay_steps)`.
    ///
    /// ```text
    /// p  = step / decay_steps          (floor(p) with staircase)
    /// lr = initial_learning_rate · decay_rate^p
    /// ```
    ExponentialDecay, "ExponentialDecay",
    |initial, rate, p| initial * rate.powf(p)
);

staircase_schedule!(
    /// Keras's `InverseTimeDecay`: `initial_learning_rate / (1 + decay_rate · step / decay_steps)`.
    ///
    /// ```text
    /// p  = step / decay_steps          (floor(p) with staircase)
    /// lr = initial_learning_rate / (1 + decay_rate · p)
    /// ```
    InverseTimeDecay, "InverseTimeDecay",
    |initial, rate, p| initial / (1.0 + rate * p)
);

/// Keras's `PiecewiseConstantDecay`: `values[0]` up to `boundaries[0]` (included), `values[i]`
/// after `boundaries[i-1]` up to `boundaries[i]`, the last value after the last boundary.
///
/// ```text
/// lr = Σ values[i] · [boundaries[i-1] < step <= boundaries[i]]     (the ends open)
/// ```
///
/// Keras 3 sums the values of every range the step falls in, which is one range for sorted
/// boundaries; seqnn does the same (tf_keras fails on unsorted boundaries).
#[derive(Debug, Clone, PartialEq)]
pub struct PiecewiseConstantDecay {
    boundaries: Vec<i64>,
    values: Vec<f64>,
    name: String,
}

impl PiecewiseConstantDecay {
    /// Keras's `PiecewiseConstantDecay(boundaries, values)`: one more value than boundaries.
    pub fn new(boundaries: Vec<i64>, values: Vec<f64>) -> Self {
        PiecewiseConstantDecay {
            boundaries,
            values,
            name: "PiecewiseConstant".into(),
        }
    }

    schedule_plumbing!();

    /// `boundaries`.
    pub fn boundaries(&self) -> &[i64] {
        &self.boundaries
    }

    /// `values`.
    pub fn values(&self) -> &[f64] {
        &self.values
    }
}

impl LearningRateSchedule for PiecewiseConstantDecay {
    fn class_name(&self) -> &'static str {
        "PiecewiseConstantDecay"
    }

    fn at(&self, step: u64) -> f32 {
        let (Some(&first), Some(&last)) = (self.boundaries.first(), self.boundaries.last()) else {
            // Refused by `check`; the one value is all there is.
            return self.values.first().map_or(0.0, |v| *v as f32);
        };
        let step = i128::from(step);
        let value = |i: usize| self.values[i] as f32;
        let indicator = |b: bool| if b { 1.0f32 } else { 0.0 };
        let mut lr = 0.0f32;
        lr += indicator(step <= i128::from(first)) * value(0);
        lr += indicator(step > i128::from(last)) * value(self.values.len() - 1);
        for (i, pair) in self.boundaries.windows(2).enumerate() {
            let (low, high) = (i128::from(pair[0]), i128::from(pair[1]));
            lr += indicator(step > low && step <= high) * value(i + 1);
        }
        lr
    }

    fn check(&self) -> Result<()> {
        let refuse = |message: String| {
            Err(Error::InvalidArgument {
                layer: self.name.clone(),
                message,
            })
        };
        if self.boundaries.len() + 1 != self.values.len() {
            let list = |items: Vec<String>| format!("[{}]", items.join(", "));
            return refuse(format!(
                "The length of boundaries should be 1 less than the length of values. \
                 Received: boundaries={} of length {}, and values={} of length {}.",
                list(self.boundaries.iter().map(|b| b.to_string()).collect()),
                self.boundaries.len(),
                list(self.values.iter().map(|v| py_repr(*v)).collect()),
                self.values.len()
            ));
        }
        if self.boundaries.is_empty() {
            // Keras fails on `boundaries[0]` with an IndexError.
            return refuse("PiecewiseConstantDecay needs at least one boundary.".into());
        }
        Ok(())
    }

    fn config(&self) -> Config {
        Config {
            class_name: "PiecewiseConstantDecay",
            options: vec![
                (
                    "boundaries",
                    ConfigValue::List(
                        self.boundaries
                            .iter()
                            .map(|b| ConfigValue::Int(*b))
                            .collect(),
                    ),
                ),
                (
                    "values",
                    ConfigValue::List(self.values.iter().map(|v| ConfigValue::Float(*v)).collect()),
                ),
                ("name", ConfigValue::Str(self.name.clone())),
            ],
        }
    }

    fn box_clone(&self) -> Box<dyn LearningRateSchedule> {
        Box::new(self.clone())
    }
}

/// Keras 3's `CosineDecay`: an optional linear warmup, then a cosine from the warmup target (or
/// the initial rate) down to `alpha` times it over `decay_steps`.
///
/// ```text
/// without warmup_target:  s = min(step, decay_steps)
///                         lr = initial · ((1 - alpha)·0.5·(1 + cos(π·s/decay_steps)) + alpha)
/// with warmup_target:     s = min(step, warmup_steps + decay_steps)
///   s < warmup_steps:     lr = (warmup_target - initial) · s/warmup_steps + initial
///   otherwise:            lr = warmup_target · ((1 - alpha)·0.5·(1 + cos(π·(s - warmup_steps)/decay_steps)) + alpha)
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CosineDecay {
    initial_learning_rate: f64,
    decay_steps: u64,
    alpha: f64,
    warmup_target: Option<f64>,
    warmup_steps: u64,
    name: String,
}

impl CosineDecay {
    /// Keras's `CosineDecay(initial_learning_rate, decay_steps)`: `alpha` 0, no warmup.
    pub fn new(initial_learning_rate: f64, decay_steps: u64) -> Self {
        CosineDecay {
            initial_learning_rate,
            decay_steps,
            alpha: 0.0,
            warmup_target: None,
            warmup_steps: 0,
            name: "CosineDecay".into(),
        }
    }

    /// Keras's `alpha` (default 0.0): the final rate as a fraction of the decayed-from one.
    pub fn with_alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Keras's `warmup_target` and `warmup_steps` (defaults `None` and 0): the rate rises
    /// linearly from the initial one to `warmup_target` over `warmup_steps`, then decays from it.
    pub fn with_warmup(mut self, warmup_target: f64, warmup_steps: u64) -> Self {
        self.warmup_target = Some(warmup_target);
        self.warmup_steps = warmup_steps;
        self
    }

    schedule_plumbing!(decay);

    /// `alpha`.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// `warmup_target`, if any.
    pub fn warmup_target(&self) -> Option<f64> {
        self.warmup_target
    }

    /// `warmup_steps`.
    pub fn warmup_steps(&self) -> u64 {
        self.warmup_steps
    }

    /// Keras's `_decay_function`.
    fn decay(&self, step: f32, decay_steps: f32, from: f32) -> f32 {
        let completed_fraction = step / decay_steps;
        let cosine_decayed = 0.5 * (1.0 + (PI as f32 * completed_fraction).cos());
        let decayed = (1.0 - self.alpha) as f32 * cosine_decayed + self.alpha as f32;
        from * decayed
    }
}

impl LearningRateSchedule for CosineDecay {
    fn class_name(&self) -> &'static str {
        "CosineDecay"
    }

    fn at(&self, step: u64) -> f32 {
        let initial = self.initial_learning_rate as f32;
        let decay_steps = self.decay_steps as f32;
        let step = step as f32;
        let Some(target) = self.warmup_target else {
            return self.decay(step.min(decay_steps), decay_steps, initial);
        };
        let target = target as f32;
        let warmup_steps = self.warmup_steps as f32;
        let step = step.min(decay_steps + warmup_steps);
        if step < warmup_steps {
            let completed_fraction = step / warmup_steps;
            (target - initial) * completed_fraction + initial
        } else {
            self.decay(step - warmup_steps, decay_steps, target)
        }
    }

    fn check(&self) -> Result<()> {
        check_decay_steps(&self.name, self.decay_steps)
    }

    fn config(&self) -> Config {
        Config {
            class_name: "CosineDecay",
            options: vec![
                (
                    "initial_learning_rate",
                    ConfigValue::Float(self.initial_learning_rate),
                ),
                ("decay_steps", ConfigValue::Int(self.decay_steps as i64)),
                ("alpha", ConfigValue::Float(self.alpha)),
                ("name", ConfigValue::Str(self.name.clone())),
                (
                    "warmup_target",
                    ConfigValue::float_or_null(self.warmup_target),
                ),
                ("warmup_steps", ConfigValue::Int(self.warmup_steps as i64)),
            ],
        }
    }

    fn box_clone(&self) -> Box<dyn LearningRateSchedule> {
        Box::new(self.clone())
    }
}

/// Keras's `PolynomialDecay`: from the initial rate to `end_learning_rate` along
/// `(1 - step/decay_steps)^power`, then constant, or cycling with `cycle`.
///
/// ```text
/// without cycle:  s = min(step, decay_steps);  d = decay_steps
/// with cycle:     s = step;  d = decay_steps · max(1, ceil(step / decay_steps))
/// lr = (initial - end) · (1 - s/d)^power + end
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PolynomialDecay {
    initial_learning_rate: f64,
    decay_steps: u64,
    end_learning_rate: f64,
    power: f64,
    cycle: bool,
    name: String,
}

impl PolynomialDecay {
    /// Keras's `PolynomialDecay(initial_learning_rate, decay_steps)`: `end_learning_rate`
    /// 0.0001, `power` 1.0, `cycle` false.
    pub fn new(initial_learning_rate: f64, decay_steps: u64) -> Self {
        PolynomialDecay {
            initial_learning_rate,
            decay_steps,
            end_learning_rate: 0.0001,
            power: 1.0,
            cycle: false,
            name: "PolynomialDecay".into(),
        }
    }

    /// Keras's `end_learning_rate` (default 0.0001).
    pub fn with_end_learning_rate(mut self, end_learning_rate: f64) -> Self {
        self.end_learning_rate = end_learning_rate;
        self
    }

    /// Keras's `power` (default 1.0, a linear decay).
    pub fn with_power(mut self, power: f64) -> Self {
        self.power = power;
        self
    }

    /// Keras's `cycle` (default false): past `decay_steps`, decay again over the next multiple.
    pub fn with_cycle(mut self, cycle: bool) -> Self {
        self.cycle = cycle;
        self
    }

    schedule_plumbing!(decay);

    /// `end_learning_rate`.
    pub fn end_learning_rate(&self) -> f64 {
        self.end_learning_rate
    }

    /// `power`.
    pub fn power(&self) -> f64 {
        self.power
    }

    /// `cycle`.
    pub fn cycle(&self) -> bool {
        self.cycle
    }
}

impl LearningRateSchedule for PolynomialDecay {
    fn class_name(&self) -> &'static str {
        "PolynomialDecay"
    }

    fn at(&self, step: u64) -> f32 {
        let initial = self.initial_learning_rate as f32;
        let end = self.end_learning_rate as f32;
        let mut step = step as f32;
        let mut decay_steps = self.decay_steps as f32;
        if self.cycle {
            let multiplier = if step == 0.0 {
                1.0
            } else {
                (step / decay_steps).ceil()
            };
            decay_steps *= multiplier;
        } else {
            step = step.min(decay_steps);
        }
        let p = step / decay_steps;
        (initial - end) * (1.0 - p).powf(self.power as f32) + end
    }

    fn check(&self) -> Result<()> {
        check_decay_steps(&self.name, self.decay_steps)
    }

    fn config(&self) -> Config {
        Config {
            class_name: "PolynomialDecay",
            options: vec![
                (
                    "initial_learning_rate",
                    ConfigValue::Float(self.initial_learning_rate),
                ),
                ("decay_steps", ConfigValue::Int(self.decay_steps as i64)),
                (
                    "end_learning_rate",
                    ConfigValue::Float(self.end_learning_rate),
                ),
                ("power", ConfigValue::Float(self.power)),
                ("cycle", ConfigValue::Bool(self.cycle)),
                ("name", ConfigValue::Str(self.name.clone())),
            ],
        }
    }

    fn box_clone(&self) -> Box<dyn LearningRateSchedule> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_decay_by_hand() {
        // 0.1 · 0.5^(3/2) = 0.1 · 0.35355339 = 0.035355339; staircase: 0.1 · 0.5^1 = 0.05.
        let s = ExponentialDecay::new(0.1, 2, 0.5);
        assert!((s.at(3) - 0.035_355_34).abs() < 1e-8);
        assert_eq!(s.with_staircase(true).at(3), 0.1f32 * 0.5);
    }

    #[test]
    fn piecewise_constant_takes_the_value_of_the_step_s_range() {
        let s = PiecewiseConstantDecay::new(vec![2, 5], vec![1.0, 0.5, 0.1]);
        let rates: Vec<f32> = (0..8).map(|t| s.at(t)).collect();
        assert_eq!(rates, vec![1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.1, 0.1]);
        assert!(s.check().is_ok());
    }

    #[test]
    fn bad_arguments_are_refused_in_keras_words() {
        let err = ExponentialDecay::new(0.1, 0, 0.5)
            .check()
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "layer \"ExponentialDecay\": Argument `decay_steps` must be > 0. Received: decay_steps=0"
        );
        assert!(CosineDecay::new(0.1, 0).check().is_err());
        assert!(InverseTimeDecay::new(0.1, 0, 1.0).check().is_err());
        assert!(PolynomialDecay::new(0.1, 0).check().is_err());
        let err = PiecewiseConstantDecay::new(vec![1, 2], vec![0.1, 0.01])
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "Received: boundaries=[1, 2] of length 2, and values=[0.1, 0.01] of length 2."
            ),
            "{err}"
        );
        assert!(PiecewiseConstantDecay::new(vec![], vec![0.1])
            .check()
            .is_err());
    }

    #[test]
    fn cosine_decay_warms_up_then_decays() {
        let s = CosineDecay::new(0.0, 4).with_warmup(1.0, 2);
        assert_eq!(s.at(0), 0.0);
        assert_eq!(s.at(1), 0.5);
        assert_eq!(s.at(2), 1.0);
        // Halfway through the decay: 0.5·(1 + cos(π/2)) = 0.5.
        assert!((s.at(4) - 0.5).abs() < 1e-7);
        assert_eq!(s.at(100), s.at(6));
        assert!(s.at(6).abs() < 1e-7);
    }

    #[test]
    fn polynomial_decay_cycles() {
        let s = PolynomialDecay::new(1.0, 2).with_end_learning_rate(0.0);
        assert_eq!([s.at(0), s.at(1), s.at(2), s.at(9)], [1.0, 0.5, 0.0, 0.0]);
        // Cycling: step 3 decays over 4 steps, 3/4 of the way.
        let s = s.with_cycle(true);
        assert_eq!([s.at(0), s.at(2), s.at(3)], [1.0, 0.0, 0.25]);
        assert_eq!(InverseTimeDecay::new(1.0, 1, 1.0).at(3), 0.25);
    }
}
