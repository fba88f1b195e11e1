//! Keras's regularization layers that are the identity at inference: `SpatialDropout1D`,
//! `GaussianNoise`, `GaussianDropout` and `ActivityRegularization`. (`Dropout` has its own
//! file.) Each checks its arguments as Keras does and passes its input and its mask on
//! unchanged at inference. In [`Mode::Training`] the three noise layers draw their noise from
//! seqnn's seeded generator (`set_random_seed`) and keep it for the backward pass;
//! `ActivityRegularization` is the identity in training too, and its penalty is its
//! `activity_regularizer`, which the models add to the loss.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result};
use crate::layer::{
    check_gradient, check_rank, common_builders, layer_plumbing, single_input, single_shape,
    weightless, CallContext, Gradients, InputDecl, Layer, LayerName, MaskPolicy, Mode,
    SavedForBackward,
};
use crate::layers::dropout::{keep_mask, Dropout};
use crate::shape::Shape;
use crate::train::Regularizer;

/// Keras's `SpatialDropout1D`: in training it drops whole feature channels of a sequence (the
/// same features at every timestep); at inference, the identity.
///
/// ```text
/// y = x                         (inference)
/// y[b, t, f] = x[b, t, f] · k[b, f] / (1 − rate),  k[b, f] ~ Bernoulli(1 − rate)   (training)
/// ```
///
/// - Input: `(batch, timesteps, features)` (Keras's `ndim=3`). Output: the same.
/// - No weights. A mask goes on unchanged.
///
/// ```
/// use seqnn::{Embedding, Sequential, SpatialDropout1D, LSTM};
/// // model.add(Embedding(1000, 16, mask_zero=True))
/// // model.add(SpatialDropout1D(0.2))
/// // model.add(LSTM(8))
/// let mut model = Sequential::new();
/// model.add(Embedding::new(1000, 16).with_mask_zero(true).input_shape((20,)))?;
/// model.add(SpatialDropout1D::new(0.2))?;
/// model.add(LSTM::new(8))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 8)");
/// assert!(Sequential::new().add(SpatialDropout1D::new(1.5).input_shape((4, 3))).is_err());
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding, building or calling it fails with [`Error::InvalidArgument`] for a rate outside
/// `[0, 1]` (Dropout's message: a SpatialDropout1D is a Dropout in both Kerases) and with
/// [`Error::IncompatibleRank`] for an input that is not 3-D.
#[derive(Debug, Clone)]
pub struct SpatialDropout1D {
    name: LayerName,
    input: InputDecl,
    rate: f32,
    trainable: bool,
    built: bool,
}

impl SpatialDropout1D {
    /// A spatial dropout of `rate`, as Keras's `SpatialDropout1D(rate)`. A rate outside
    /// `[0, 1]` is refused when the layer is added to a model or built.
    pub fn new(rate: f32) -> Self {
        SpatialDropout1D {
            name: LayerName::new("spatial_dropout1d"),
            input: InputDecl::default(),
            rate,
            trainable: true,
            built: false,
        }
    }

    common_builders!("spatial_dropout1d");

    /// The fraction of channels dropped in training (Keras's `rate`).
    pub fn rate(&self) -> f32 {
        self.rate
    }

    fn validate(&self) -> Result<()> {
        if (0.0..=1.0).contains(&self.rate) {
            return Ok(());
        }
        // Keras's own check and words: Dropout's `__init__`, which both Kerases run for it.
        Dropout::new(self.rate)
            .with_name(self.name.get())
            .declared_input_shape()
            .map(|_| ())
    }
}

/// Keras's `GaussianNoise`: in training it adds zero-centered Gaussian noise of `stddev`; at
/// inference, the identity.
///
/// ```text
/// y = x                         (inference)
/// y = x + n,  n ~ N(0, stddev²) (training)
/// ```
///
/// - Input: any shape. Output: the same.
/// - No weights. A mask goes on unchanged.
///
/// ```
/// use seqnn::{GaussianNoise, Sequential, GRU};
/// // model.add(GaussianNoise(0.1, input_shape=(12, 4)))
/// // model.add(GRU(5))
/// let mut model = Sequential::new();
/// model.add(GaussianNoise::new(0.1).input_shape((12, 4)))?;
/// model.add(GRU::new(5))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 5)");
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding, building or calling it fails with [`Error::InvalidArgument`] for a `stddev` outside
/// `[0, 1]`, in Keras 3's words (tf_keras takes any value; seqnn writes Keras 3 configs, which
/// Keras 3 would refuse).
#[derive(Debug, Clone)]
pub struct GaussianNoise {
    name: LayerName,
    input: InputDecl,
    stddev: f32,
    trainable: bool,
    built: bool,
}

impl GaussianNoise {
    /// Noise of standard deviation `stddev`, as Keras's `GaussianNoise(stddev)`. A value outside
    /// `[0, 1]` is refused when the layer is added to a model or built (Keras 3 refuses it at
    /// construction).
    pub fn new(stddev: f32) -> Self {
        GaussianNoise {
            name: LayerName::new("gaussian_noise"),
            input: InputDecl::default(),
            stddev,
            trainable: true,
            built: false,
        }
    }

    common_builders!("gaussian_noise");

    /// The standard deviation of the training noise (Keras's `stddev`).
    pub fn stddev(&self) -> f32 {
        self.stddev
    }

    fn validate(&self) -> Result<()> {
        between_0_and_1(self.name.get(), "stddev", self.stddev)
    }
}

/// Keras's `GaussianDropout`: in training it multiplies by Gaussian noise of mean 1 and
/// standard deviation `sqrt(rate / (1 − rate))`; at inference, the identity.
///
/// ```text
/// y = x                         (inference)
/// y = x · n,  n ~ N(1, rate / (1 − rate))   (training, for 0 < rate < 1; else y = x)
/// ```
///
/// - Input: any shape. Output: the same.
/// - No weights. A mask goes on unchanged.
///
/// ```
/// use seqnn::{Dense, GaussianDropout, Sequential};
/// let mut model = Sequential::new();
/// model.add(Dense::new(4).input_shape((3,)))?;
/// model.add(GaussianDropout::new(0.3))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 4)");
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding, building or calling it fails with [`Error::InvalidArgument`] for a rate outside
/// `[0, 1]`, in Keras 3's words (tf_keras takes any value).
#[derive(Debug, Clone)]
pub struct GaussianDropout {
    name: LayerName,
    input: InputDecl,
    rate: f32,
    trainable: bool,
    built: bool,
}

impl GaussianDropout {
    /// A Gaussian dropout of `rate`, as Keras's `GaussianDropout(rate)`. A rate outside `[0, 1]`
    /// is refused when the layer is added to a model or built.
    pub fn new(rate: f32) -> Self {
        GaussianDropout {
            name: LayerName::new("gaussian_dropout"),
            input: InputDecl::default(),
            rate,
            trainable: true,
            built: false,
        }
    }

    common_builders!("gaussian_dropout");

    /// The drop probability that sets the training noise (Keras's `rate`).
    pub fn rate(&self) -> f32 {
        self.rate
    }

    fn validate(&self) -> Result<()> {
        between_0_and_1(self.name.get(), "rate", self.rate)
    }
}

/// Keras's `ActivityRegularization`: the identity, which adds `(l1·Σ|x| + l2·Σx²) / batch` to
/// the loss of training and evaluation.
///
/// ```text
/// y = x
/// penalty = (l1·Σ|x| + l2·Σx²) / batch     (its activity_regularizer, L1L2(l1, l2))
/// ```
///
/// As in both Kerases, the layer is one whose `activity_regularizer` is `L1L2(l1, l2)`: the
/// model that calls it adds the penalty of its output, divided by the batch size, to the loss
/// (training and evaluation, whatever the layer's `trainable`, masks ignored), and its gradient
/// to the gradient of its output (see
/// [`CallContext::with_activity_penalties`](crate::CallContext::with_activity_penalties)).
///
/// - Input: any shape. Output: the same.
/// - No weights. A mask goes on unchanged.
///
/// ```
/// use seqnn::{ActivityRegularization, Dense, Sequential};
/// let mut model = Sequential::new();
/// model.add(Dense::new(4).input_shape((3,)))?;
/// model.add(ActivityRegularization::new().with_l1(0.01))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 4)");
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding, building or calling it fails with [`Error::InvalidArgument`] for a factor that is
/// negative or not finite, in Keras 3's words (tf_keras takes any value).
#[derive(Debug, Clone)]
pub struct ActivityRegularization {
    name: LayerName,
    input: InputDecl,
    l1: f32,
    l2: f32,
    trainable: bool,
    built: bool,
}

impl Default for ActivityRegularization {
    /// Keras's `ActivityRegularization()`: both factors 0.
    fn default() -> Self {
        Self::new()
    }
}

impl ActivityRegularization {
    /// An activity regularization with both factors 0, as Keras's `ActivityRegularization()`.
    pub fn new() -> Self {
        ActivityRegularization {
            name: LayerName::new("activity_regularization"),
            input: InputDecl::default(),
            l1: 0.0,
            l2: 0.0,
            trainable: true,
            built: false,
        }
    }

    /// Keras's `l1`: the factor of `Σ|x|` in the training loss. Default 0.
    #[must_use]
    pub fn with_l1(mut self, l1: f32) -> Self {
        self.l1 = l1;
        self
    }

    /// Keras's `l2`: the factor of `Σx²` in the training loss. Default 0.
    #[must_use]
    pub fn with_l2(mut self, l2: f32) -> Self {
        self.l2 = l2;
        self
    }

    common_builders!("activity_regularization");

    /// The factor of `Σ|x|`.
    pub fn l1(&self) -> f32 {
        self.l1
    }

    /// The factor of `Σx²`.
    pub fn l2(&self) -> f32 {
        self.l2
    }

    /// Keras 3's `regularizers.validate_float_arg`, which `L1L2` runs on both factors.
    fn validate(&self) -> Result<()> {
        for (arg, v) in [("l1", self.l1), ("l2", self.l2)] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::InvalidArgument {
                    layer: self.name.get().to_string(),
                    // Keras's words, without a space after the period.
                    message: format!(
                        "Invalid value for argument {arg}: expected a non-negative \
                         float.Received: {arg}={}",
                        py_repr(v)
                    ),
                });
            }
        }
        Ok(())
    }
}

/// What a noise layer did to its input in training, kept for the backward pass.
enum Noise {
    /// The identity (inference, or a rate that draws no noise).
    None,
    /// `y = x · factor`, `factor` broadcast to the input's shape.
    Scale(ArrayD<f32>),
    /// `y = x + n`: the gradient goes through unchanged.
    Add,
}

impl SpatialDropout1D {
    /// Keras's `Dropout` with `noise_shape = (batch, 1, features)`: one keep-or-drop draw per
    /// sequence and channel, scaled by `1 / (1 − rate)`.
    fn noise(&self, x: &ArrayViewD<'_, f32>) -> Result<(ArrayD<f32>, Noise)> {
        if self.rate == 0.0 {
            return Ok((x.to_owned(), Noise::None));
        }
        let keep = keep_mask(IxDyn(&[x.shape()[0], 1, x.shape()[2]]), self.rate);
        Ok((x * &keep, Noise::Scale(keep)))
    }
}

impl GaussianNoise {
    /// `x + N(0, stddev²)`, a draw per value.
    fn noise(&self, x: &ArrayViewD<'_, f32>) -> Result<(ArrayD<f32>, Noise)> {
        if self.stddev == 0.0 {
            return Ok((x.to_owned(), Noise::None));
        }
        let sd = self.stddev;
        let mut y = x.to_owned();
        crate::session::with_rng(|rng| {
            y.iter_mut().for_each(|v| {
                let n: f32 = StandardNormal.sample(rng);
                *v += sd * n;
            })
        });
        Ok((y, Noise::Add))
    }
}

impl GaussianDropout {
    /// `x · N(1, rate / (1 − rate))`, a draw per value, for `0 < rate < 1` as in both Kerases;
    /// the identity otherwise.
    fn noise(&self, x: &ArrayViewD<'_, f32>) -> Result<(ArrayD<f32>, Noise)> {
        if !(self.rate > 0.0 && self.rate < 1.0) {
            return Ok((x.to_owned(), Noise::None));
        }
        let sd = (self.rate / (1.0 - self.rate)).sqrt();
        let factor = crate::session::with_rng(|rng| {
            ArrayD::from_shape_simple_fn(x.raw_dim(), || {
                let n: f32 = StandardNormal.sample(rng);
                1.0 + sd * n
            })
        });
        Ok((x * &factor, Noise::Scale(factor)))
    }
}

impl ActivityRegularization {
    /// The identity in training too: the penalty is the caller's, as its activity
    /// regularizer's.
    fn noise(&self, x: &ArrayViewD<'_, f32>) -> Result<(ArrayD<f32>, Noise)> {
        Ok((x.to_owned(), Noise::None))
    }

    /// Keras's `activity_regularizer=L1L2(l1=l1, l2=l2)`, which its `__init__` sets.
    fn regularizer(&self) -> Regularizer {
        Regularizer::l1_l2(self.l1, self.l2)
    }
}

/// Keras 3's check of `GaussianNoise`'s `stddev` and `GaussianDropout`'s `rate`.
fn between_0_and_1(layer: &str, arg: &str, v: f32) -> Result<()> {
    if (0.0..=1.0).contains(&v) {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        layer: layer.to_string(),
        message: format!(
            "Invalid value received for argument `{arg}`. Expected a float value between 0 and \
             1. Received: {arg}={}",
            py_repr(v)
        ),
    })
}

/// A float as Python's `repr` prints the usual ones: `1.5`, `2.0`, `-0.1`, `nan`, `inf`.
fn py_repr(v: f32) -> String {
    if v.is_nan() {
        "nan".to_string()
    } else {
        format!("{v:?}")
    }
}

/// The [`Layer`] of a layer that is the identity at inference, with a `validate` method for its
/// arguments; `rank` is the one rank it takes, if any (Keras's `InputSpec(ndim=...)`).
/// `$noise(&self, &input) -> Result<(output, Noise)>` is its training call; `$activity(&self)`,
/// if given, its activity regularizer.
macro_rules! identity_at_inference {
    ($layer:ident, $class:literal, $rank:expr, $noise:expr $(, $activity:expr)?) => {
        impl Layer for $layer {
            layer_plumbing!();

            $(
                fn activity_regularizer(&self) -> Option<Regularizer> {
                    Some($activity(self))
                }
            )?

            fn class_name(&self) -> &'static str {
                $class
            }

            fn declared_input_shape(&self) -> Result<Option<Shape>> {
                self.validate()?;
                self.input.resolve(self.name.get())
            }

            fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
                self.validate()?;
                let name = self.name.get();
                let input = single_shape(name, inputs)?;
                if let Some(rank) = $rank {
                    check_rank(name, rank, input)?;
                }
                Ok(vec![input.clone()])
            }

            weightless!();

            fn call(
                &self,
                inputs: &[ArrayViewD<'_, f32>],
                ctx: &mut CallContext,
            ) -> Result<Vec<ArrayD<f32>>> {
                self.validate()?;
                let name = self.name.get();
                let input = single_input(name, inputs)?;
                if let Some(rank) = $rank {
                    if input.ndim() != rank {
                        check_rank(name, rank, &Shape::known(input.shape()))?;
                    }
                }
                let (y, noise) = if ctx.mode() == Mode::Training {
                    $noise(self, &input)?
                } else {
                    (input.to_owned(), Noise::None)
                };
                if ctx.records() {
                    ctx.save_for_backward(Box::new(NoiseSaved(noise, input.shape().to_vec())));
                }
                Ok(vec![y])
            }

            /// The upstream gradient, times the drawn factor where the noise multiplies.
            fn backward(
                &self,
                saved: &SavedForBackward,
                output_grads: &[Option<ArrayViewD<'_, f32>>],
            ) -> Result<Gradients> {
                let name = self.name.get();
                let NoiseSaved(noise, shape) = saved.get(name)?;
                let g = match output_grads.first().and_then(Option::as_ref) {
                    Some(g) => {
                        check_gradient(name, 0, g, shape)?;
                        Some(match noise {
                            Noise::Scale(f) => g * f,
                            Noise::None | Noise::Add => g.to_owned(),
                        })
                    }
                    None => None,
                };
                Ok(Gradients {
                    inputs: vec![g],
                    weights: Vec::new(),
                })
            }

            fn mask_policy(&self) -> MaskPolicy {
                MaskPolicy::Propagate
            }
        }
    };
}

/// What a noise layer keeps for its backward pass: its noise and its input's shape.
struct NoiseSaved(Noise, Vec<usize>);

identity_at_inference!(
    SpatialDropout1D,
    "SpatialDropout1D",
    Some(3),
    SpatialDropout1D::noise
);
identity_at_inference!(
    GaussianNoise,
    "GaussianNoise",
    None::<usize>,
    GaussianNoise::noise
);
identity_at_inference!(
    GaussianDropout,
    "GaussianDropout",
    None::<usize>,
    GaussianDropout::noise
);
identity_at_inference!(
    ActivityRegularization,
    "ActivityRegularization",
    None::<usize>,
    ActivityRegularization::noise,
    ActivityRegularization::regularizer
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::apply_masked;
    use ndarray::array;

    fn message(layer: &dyn Layer) -> String {
        layer.declared_input_shape().unwrap_err().to_string()
    }

    #[test]
    fn each_is_the_identity_and_keeps_the_mask() -> Result<()> {
        let layers: [Box<dyn Layer>; 4] = [
            Box::new(SpatialDropout1D::new(0.5)),
            Box::new(GaussianNoise::new(0.5)),
            Box::new(GaussianDropout::new(0.5)),
            Box::new(ActivityRegularization::new().with_l1(0.1).with_l2(0.2)),
        ];
        let x = array![[[1.0_f32, -2.0], [3.0, 0.5]]].into_dyn();
        let mask = array![[true, false]];
        for mut layer in layers {
            let out = layer.build(&[Shape::new(vec![None, Some(2), Some(2)])])?;
            assert_eq!(out[0].to_string(), "(None, 2, 2)");
            assert_eq!(layer.count_params(), 0);
            let (y, masks) = apply_masked(layer.as_ref(), &[x.view()], Some(mask.view()))?;
            assert_eq!(y[0], x, "{}", layer.class_name());
            assert_eq!(masks[0], Some(mask.clone()));
        }
        Ok(())
    }

    #[test]
    fn activity_regularization_adds_its_penalty_through_its_caller() -> Result<()> {
        use crate::layer::{backward_layer, call_layer};
        use crate::Dialect;
        let layer = ActivityRegularization::new().with_l1(0.1).with_l2(0.2);
        let x = array![[1.0_f32, -2.0], [3.0, 0.5]].into_dyn();
        // Its own call adds nothing, as Keras's `call`.
        let mut ctx = CallContext::training().with_activity_penalties(Dialect::TfKeras);
        layer.call(&[x.view()], &mut ctx)?;
        assert_eq!(ctx.activity_penalty(), 0.0);
        // Keras's `__call__`: Σ|x| = 6.5, Σx² = 14.25; (0.1·6.5 + 0.2·14.25) / 2 rows = 1.75.
        let mut ctx = CallContext::training().with_activity_penalties(Dialect::Keras3);
        let y = call_layer(&layer, &[x.view()], &mut ctx)?;
        assert_eq!(y[0], x, "the identity in training");
        approx::assert_abs_diff_eq!(ctx.activity_penalty(), 1.75, epsilon = 1e-6);
        // d/dx = (0.1·sign(x) + 0.4·x) / 2, plus the upstream ones.
        let saved = ctx.take_saved().expect("a record");
        let ones = ArrayD::from_elem(x.raw_dim(), 1.0_f32);
        let g = backward_layer(&layer, &saved, &[Some(ones.view())])?;
        let want = array![[1.25_f32, 0.55], [1.65, 1.15]].into_dyn();
        let got = g.inputs[0].clone().expect("an input gradient");
        for (a, b) in got.iter().zip(&want) {
            approx::assert_abs_diff_eq!(*a, *b, epsilon = 1e-6);
        }
        // Without an upstream gradient, the penalty's alone.
        let g = backward_layer(&layer, &saved, &[None])?;
        let got = g.inputs[0].clone().expect("an input gradient");
        approx::assert_abs_diff_eq!(got[[0, 1]], -0.45, epsilon = 1e-6);
        // Predict adds none.
        let mut ctx = CallContext::inference();
        call_layer(&layer, &[x.view()], &mut ctx)?;
        assert_eq!(ctx.activity_penalty(), 0.0);
        Ok(())
    }

    /// A training call of `layer` on `x` and its backward pass with an upstream of ones.
    fn train(layer: &dyn Layer, x: &ArrayD<f32>) -> Result<(ArrayD<f32>, ArrayD<f32>)> {
        let mut ctx = CallContext::training();
        let y = layer.call(&[x.view()], &mut ctx)?.remove(0);
        let saved = ctx.take_saved().expect("a training call keeps its noise");
        let ones = ArrayD::from_elem(x.raw_dim(), 1.0_f32);
        let g = layer.backward(&saved, &[Some(ones.view())])?;
        Ok((y, g.inputs[0].clone().expect("an input gradient")))
    }

    /// Mean and variance, in f64.
    fn moments<'a>(v: impl Iterator<Item = &'a f32>) -> (f64, f64) {
        let v: Vec<f64> = v.map(|&x| x as f64).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        (mean, var)
    }

    #[test]
    fn spatial_dropout_drops_whole_channels_in_training() -> Result<()> {
        crate::set_random_seed(3);
        let (batch, steps, features, rate) = (200, 7, 50, 0.3_f32);
        let x = ArrayD::from_elem(IxDyn(&[batch, steps, features]), 2.0_f32);
        let layer = SpatialDropout1D::new(rate);
        let (y, g) = train(&layer, &x)?;
        let scale = 1.0 / (1.0 - rate);
        let mut dropped = 0;
        for b in 0..batch {
            for f in 0..features {
                // One draw per sequence and channel, kept over time.
                let first = y[[b, 0, f]];
                assert!(first == 0.0 || (first - 2.0 * scale).abs() < 1e-6);
                for t in 0..steps {
                    assert_eq!(y[[b, t, f]], first);
                    // The gradient is the same factor.
                    assert!((g[[b, t, f]] * 2.0 - first).abs() < 1e-6);
                }
                dropped += usize::from(first == 0.0);
            }
        }
        let fraction = dropped as f64 / (batch * features) as f64;
        // 10 000 draws: the standard error of the fraction is 0.0046.
        assert!((fraction - 0.3).abs() < 0.02, "{fraction}");
        let (mean, _) = moments(y.iter());
        assert!((mean - 2.0).abs() < 0.06, "the mean is kept: {mean}");
        Ok(())
    }

    #[test]
    fn gaussian_noise_adds_noise_of_stddev_in_training() -> Result<()> {
        crate::set_random_seed(4);
        let x = ArrayD::from_elem(IxDyn(&[100, 10, 20]), 1.5_f32);
        let (y, g) = train(&GaussianNoise::new(0.4), &x)?;
        let (mean, var) = moments((&y - &x).iter());
        // 20 000 draws: the standard error of the mean is 0.0028, of the variance 0.0016.
        assert!(mean.abs() < 0.015, "{mean}");
        assert!((var - 0.16).abs() < 0.01, "{var}");
        assert!(g.iter().all(|&v| v == 1.0), "the gradient goes through");
        // Not the same draw twice.
        let (y2, _) = train(&GaussianNoise::new(0.4), &x)?;
        assert_ne!(y, y2);
        Ok(())
    }

    #[test]
    fn gaussian_dropout_multiplies_by_noise_of_mean_one_in_training() -> Result<()> {
        crate::set_random_seed(5);
        let x = ArrayD::from_elem(IxDyn(&[100, 200]), -2.0_f32);
        let rate = 0.2_f64;
        let (y, g) = train(&GaussianDropout::new(rate as f32), &x)?;
        let factors = y.mapv(|v| v / -2.0);
        let (mean, var) = moments(factors.iter());
        // Variance rate / (1 − rate) = 0.25; 20 000 draws.
        assert!((mean - 1.0).abs() < 0.015, "{mean}");
        assert!((var - rate / (1.0 - rate)).abs() < 0.015, "{var}");
        for (gv, f) in g.iter().zip(factors.iter()) {
            assert!((gv - f).abs() < 1e-5, "the gradient is the factor");
        }
        // A rate of 0 or 1 draws nothing, in both Kerases.
        for r in [0.0, 1.0] {
            let (y, _) = train(&GaussianDropout::new(r), &x)?;
            assert_eq!(y, x);
        }
        Ok(())
    }

    #[test]
    fn arguments_are_checked_in_keras_words() {
        assert_eq!(
            message(&SpatialDropout1D::new(1.5)),
            "layer \"spatial_dropout1d\": Invalid value 1.5 received for `rate`, expected a \
             value between 0 and 1."
        );
        assert_eq!(
            message(&GaussianNoise::new(2.0)),
            "layer \"gaussian_noise\": Invalid value received for argument `stddev`. Expected a \
             float value between 0 and 1. Received: stddev=2.0"
        );
        assert_eq!(
            message(&GaussianDropout::new(-0.1)),
            "layer \"gaussian_dropout\": Invalid value received for argument `rate`. Expected a \
             float value between 0 and 1. Received: rate=-0.1"
        );
        assert!(message(&GaussianDropout::new(f32::NAN)).ends_with("rate=nan"));
        assert_eq!(
            message(&ActivityRegularization::new().with_l2(f32::INFINITY)),
            "layer \"activity_regularization\": Invalid value for argument l2: expected a \
             non-negative float.Received: l2=inf"
        );
        // Keras takes both ends of [0, 1].
        for ok in [0.0, 1.0] {
            assert!(SpatialDropout1D::new(ok).declared_input_shape().is_ok());
            assert!(GaussianNoise::new(ok).declared_input_shape().is_ok());
            assert!(GaussianDropout::new(ok).declared_input_shape().is_ok());
        }
    }

    #[test]
    fn spatial_dropout_takes_sequences_only() {
        let err = SpatialDropout1D::new(0.2)
            .compute_output_shape(&[Shape::new(vec![None, Some(5)])])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Input 0 of layer \"spatial_dropout1d\" is incompatible with the layer: expected \
             ndim=3, found ndim=2. Full shape received: (None, 5)"
        );
        let x = ArrayD::<f32>::zeros(ndarray::IxDyn(&[2, 5]));
        let err = SpatialDropout1D::new(0.2)
            .call(&[x.view()], &mut CallContext::inference())
            .unwrap_err();
        assert!(matches!(err, Error::IncompatibleRank { found: 2, .. }));
        assert!(GaussianNoise::new(0.1)
            .compute_output_shape(&[Shape::new(vec![None, Some(5)])])
            .is_ok());
    }
}
