//! Keras's `BatchNormalization`: each channel normalized by the batch's statistics in training,
//! by the moving statistics at inference.

use ndarray::{Array1, ArrayD, ArrayViewD};

use crate::error::{Error, Result};
use crate::layer::{
    check_specs, check_weights, common_builders, layer_plumbing, no_weights, output_grad, owned1,
    single_input, single_shape, CallContext, Gradients, InputDecl, Layer, LayerName, MaskPolicy,
    Mode, SavedForBackward, WeightSpec,
};
use crate::limits;
use crate::linalg::norm::{
    batch_norm_input_grad, channel_moments, channel_sums, scale_shift_channels, ChannelMoments,
};
use crate::shape::Shape;

/// Which variance of the batch BatchNormalization's training moves `moving_variance` toward:
/// where tf_keras 2.21 and Keras 3.15 give different numbers. Both normalize the batch by its
/// biased variance, and move `moving_mean` alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MovingVariance {
    /// Keras 3.15: the biased variance, the one the batch is normalized with, for every input.
    #[default]
    Keras3,
    /// tf_keras 2.21: for the inputs its fused kernel (`tf.compat.v1.nn.fused_batch_norm`)
    /// takes, rank 4 with the channels on axis 1 or 3 and rank 5 with them on axis 1 or 4,
    /// the unbiased variance `var · n / (n − 1)` (`n` the values per channel, 1 for `n` = 1),
    /// and the mask is ignored there, as that kernel ignores it; the biased variance for other
    /// inputs, as Keras 3. (tf_keras refuses other axes of a rank-4 input; seqnn takes them,
    /// unfused.)
    TfKeras,
}

/// Keras's `BatchNormalization`: each channel of `axis` normalized by the batch's own mean
/// and variance in training, by the moving mean and variance that training keeps at inference.
///
/// ```text
/// inference: mean, var = moving_mean[c], moving_variance[c]
/// training:  mean, var = the mean and the biased variance of channel c over every other axis
///                        (over the unmasked timesteps only, with a mask)
///            moving_mean     ← moving_mean · momentum + mean · (1 − momentum)
///            moving_variance ← moving_variance · momentum + var · (1 − momentum)
/// inv[c] = gamma[c] / sqrt(var + epsilon)
/// y      = x · inv[c] + (beta[c] − mean · inv[c])      c: the index along `axis`
/// ```
///
/// (`gamma` is 1 without `scale`, `beta` 0 without `center`; the order of operations is
/// `tf.nn.batch_normalization`'s, which both Kerases call.)
///
/// With `renorm` (batch renormalization, Ioffe 2017), training corrects the batch's
/// normalization toward the renorm statistics, which it keeps as moving averages of their
/// own, and keeps the moving variance through a moving standard deviation:
///
/// ```text
/// stddev = sqrt(var + epsilon)                            mean, var: the batch's, as above
/// s      = max(renorm_stddev, sqrt(epsilon))
/// r      = clip(stddev / s, rmin, rmax)                   (renorm_clipping; no bound without)
/// d      = clip((mean − renorm_mean) / s, −dmax, dmax)
/// y      = x̂ · (r · gamma) + (d · gamma + beta)           x̂ = (x − mean) / stddev
/// renorm_mean     ← renorm_mean · renorm_momentum + mean · (1 − renorm_momentum)
/// renorm_stddev   ← renorm_stddev · renorm_momentum + stddev · (1 − renorm_momentum)
/// moving_mean     ← moving_mean · momentum + mean · (1 − momentum)
/// moving_stddev   ← moving_stddev · momentum + stddev · (1 − momentum)
/// moving_variance ← max(moving_stddev² − epsilon, 0)       (the new moving_stddev)
/// ```
///
/// `r` and `d` are constants to the gradient (Keras's `stop_gradient`); `r` and `d` use the
/// renorm statistics from before the call. Inference is the same with or without `renorm`.
/// There is no schedule: the clipping is the same at every step, as in both Kerases (which
/// leave warming `rmax` and `dmax` up to the user).
///
/// - Input: any shape whose `axis` dimension `C` is known: `(batch, features)` after a Dense,
///   `(batch, timesteps, features)` between recurrent layers or after a convolution.
///   Output: the same shape.
/// - Weights, in Keras's order, each `(C,)`: `gamma` (with `scale`), `beta` (with `center`),
///   `moving_mean`, `moving_variance`; with `renorm`, then `moving_stddev`, `renorm_mean` and
///   `renorm_stddev`, which only training uses. So `4·C` parameters by default. The moving
///   statistics (and the renorm ones) are non-trainable weights, as in Keras.
/// - Mask: passed on unchanged (Keras's `supports_masking`); at inference every step is
///   normalized alike. In training, the mask of a `(batch, timesteps, features)` input keeps
///   the masked steps out of the batch statistics (both Kerases), and every step, masked or
///   not, is normalized with them.
///
/// # Training
///
/// A call in [`Mode::Training`] of a trainable layer normalizes by the batch (Keras's
/// `training and self.trainable`); a frozen layer (`trainable` false) runs as at inference, as in
/// Keras 2 and 3. The call does not change the layer (`call` takes `&self`): it keeps the new
/// moving statistics in its record, and [`Layer::updates`] gives them, for `fit` to set once
/// the step succeeded, with the optimizer's step. So a failed step (a loss that is not finite)
/// leaves them as they were, and a training call outside `fit` changes nothing until its
/// record's updates are set. The moving variance moves toward the biased variance in Keras 3,
/// toward the unbiased one in tf_keras's fused kernel (rank 4 and 5): see [`MovingVariance`];
/// a layer read from a tf_keras config has [`MovingVariance::TfKeras`].
///
/// The backward pass gives the input's gradient through the batch statistics in training (the
/// masked steps' too: they are normalized with statistics they did not enter), `gamma`'s and
/// `beta`'s, and zeros for the moving statistics (and renorm's), which TensorFlow gives none;
/// with `renorm`, through the scale `r · gamma` and the offset `d · gamma + beta`; after an
/// inference call it is that of the fixed affine map, the moving statistics' gradients
/// included, as `tf.GradientTape` gives them.
///
/// Options, with Keras's defaults: `axis` −1, `momentum` 0.99 (training only), `epsilon` 1e-3,
/// `center` and `scale` true, `renorm` false, `renorm_clipping` none, `renorm_momentum` 0.99.
/// As Keras, the weights start as `gamma` 1, `beta` 0, `moving_mean` 0, `moving_variance` 1
/// (and `moving_stddev` 1, `renorm_mean` 0, `renorm_stddev` 1). Batch renormalization is the
/// same in tf_keras 2.21 and Keras 3.15, which never runs it in tf_keras's fused kernel: a
/// layer with `renorm` moves its statistics as above whatever its [`MovingVariance`].
///
/// Keras 3 takes one axis; tf_keras also takes a list, whose weights then have the input's
/// rank: seqnn takes one axis, as Keras 3.
///
/// ```
/// use seqnn::{BatchNormalization, Dense, Sequential, LSTM};
/// // model.add(LSTM(8, return_sequences=True, input_shape=(10, 3)))
/// // model.add(BatchNormalization())
/// // model.add(Dense(2))
/// let mut model = Sequential::new();
/// model.add(LSTM::new(8).with_return_sequences(true).input_shape((10, 3)))?;
/// model.add(BatchNormalization::new())?;
/// model.add(Dense::new(2))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 10, 2)");
/// assert_eq!(model.layers()[1].count_params(), 32); // gamma, beta, moving mean and variance: 4·8
/// assert_eq!(model.layers()[1].trainable_params(), 16); // gamma and beta
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding or building it fails with [`Error::InvalidArgument`] for an `axis` outside the input's
/// rank (Keras 3's message) or whose dimension is unknown (tf_keras's message), and a built layer
/// refuses another rank ([`Error::IncompatibleRank`]) or another `C`
/// ([`Error::IncompatibleShape`]). With `renorm`, adding or building it fails with
/// [`Error::InvalidArgument`] for a `renorm_clipping` whose `rmax` is below its `rmin` or whose
/// `dmax` is negative (Keras 3's checks; tf_keras takes them), or that holds a NaN. A training
/// call of a trainable layer is refused with [`Error::InvalidArgument`] with a mask on an input
/// that is not `(batch, timesteps, features)` (Keras 3's message).
#[derive(Debug, Clone)]
pub struct BatchNormalization {
    name: LayerName,
    /// Keras's regularizers and constraints of the weights, and the activity regularizer.
    rules: crate::train::WeightRules,
    input: InputDecl,
    axis: isize,
    momentum: f32,
    epsilon: f32,
    center: bool,
    scale: bool,
    renorm: bool,
    renorm_clipping: RenormClipping,
    renorm_momentum: f32,
    moving_variance: MovingVariance,
    trainable: bool,
    /// The input's rank, the axis resolved against it, and the channels, once built.
    built: Option<Built>,
    /// The weights, once the layer has them.
    values: Option<Box<Values>>,
}

/// Keras's `renorm_clipping`, the bounds of batch renormalization's correction: `r` is clipped
/// to `[rmin, rmax]` and `d` to `[−dmax, dmax]`; a bound left `None` is no bound (Keras's
/// missing key: `rmax` ∞, `rmin` 0, `dmax` ∞). Keras's
/// `renorm_clipping={"rmax": 3.0, "rmin": 1 / 3, "dmax": 5.0}`:
///
/// ```
/// use seqnn::{BatchNormalization, RenormClipping};
/// let bn = BatchNormalization::new()
///     .with_renorm(true)
///     .with_renorm_clipping(RenormClipping {
///         rmax: Some(3.0),
///         rmin: Some(1.0 / 3.0),
///         dmax: Some(5.0),
///     });
/// assert_eq!(bn.renorm_clipping().dmax, Some(5.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RenormClipping {
    /// The largest `r`.
    pub rmax: Option<f32>,
    /// The smallest `r`.
    pub rmin: Option<f32>,
    /// The largest `|d|`.
    pub dmax: Option<f32>,
}

impl RenormClipping {
    /// `r` and `d` clipped as Keras clips them: `r` raised to `rmin`, then lowered to `rmax`;
    /// `d` raised to `−dmax`, then lowered to `dmax`.
    fn clip(&self, r: f32, d: f32) -> (f32, f32) {
        let r = self.rmin.map_or(r, |lo| r.max(lo));
        let r = self.rmax.map_or(r, |hi| r.min(hi));
        let d = self.dmax.map_or(d, |m| d.max(-m).min(m));
        (r, d)
    }

    /// Keras 3's checks (`BatchNormalization.__init__`), and no NaN.
    fn check(&self, layer: &str) -> Result<()> {
        let invalid = |message: String| {
            Err(Error::InvalidArgument {
                layer: layer.to_string(),
                message,
            })
        };
        let py = crate::layers::dropout::py_float;
        if [self.rmax, self.rmin, self.dmax]
            .iter()
            .flatten()
            .any(|v| v.is_nan())
        {
            return invalid(format!(
                "renorm_clipping holds a NaN: rmax={:?}, rmin={:?}, dmax={:?}",
                self.rmax, self.rmin, self.dmax
            ));
        }
        if let (Some(hi), Some(lo)) = (self.rmax, self.rmin) {
            if hi < lo {
                // Keras 3's words (which forget the f-string and print the braces).
                return invalid(format!(
                    "rmax should be greater than rmin in the `renorm_clipping` argument. \
                     Received: rmax={}, rmin={}.",
                    py(hi),
                    py(lo)
                ));
            }
        }
        match self.dmax {
            Some(m) if m < 0.0 => invalid(format!(
                "dmax should be non-negative in the `renorm_clipping` argument. Received: \
                 dmax={}.",
                py(m)
            )),
            _ => Ok(()),
        }
    }
}

/// The weights by name; [`Layer::weights`] lists them in Keras's order.
#[derive(Debug, Clone)]
struct Values {
    gamma: Option<Array1<f32>>,
    beta: Option<Array1<f32>>,
    moving_mean: Array1<f32>,
    moving_variance: Array1<f32>,
    /// `moving_stddev`, `renorm_mean`, `renorm_stddev` with `renorm`; empty without.
    renorm: Vec<Array1<f32>>,
}

impl Values {
    /// The weights of a layer with `gamma` and `beta` or not, from the arrays in Keras's order
    /// (checked against the specs).
    fn from_keras_order(scale: bool, center: bool, weights: &[ArrayD<f32>]) -> Values {
        let mut w = weights.iter().map(owned1);
        let mut next = || w.next().expect("the count was checked against the specs");
        let gamma = scale.then(&mut next);
        let beta = center.then(&mut next);
        let (moving_mean, moving_variance) = (next(), next());
        Values {
            gamma,
            beta,
            moving_mean,
            moving_variance,
            renorm: w.collect(),
        }
    }

    fn in_keras_order(&self) -> impl Iterator<Item = &Array1<f32>> {
        self.gamma
            .iter()
            .chain(&self.beta)
            .chain([&self.moving_mean, &self.moving_variance])
            .chain(&self.renorm)
    }

    /// `inv` and `shift` per channel for statistics `mean` and `variance`:
    /// `gamma / sqrt(var + epsilon)` and `beta − mean · inv`.
    fn scale_and_shift(
        &self,
        mean: &[f32],
        variance: &[f32],
        epsilon: f32,
    ) -> (Vec<f32>, Vec<f32>) {
        scale_and_shift(self.gamma(), self.beta(), mean, variance, epsilon)
    }

    fn gamma(&self) -> Option<&[f32]> {
        self.gamma.as_ref().and_then(|g| g.as_slice())
    }

    fn beta(&self) -> Option<&[f32]> {
        self.beta.as_ref().and_then(|b| b.as_slice())
    }

    /// Batch renormalization's correction for a batch of statistics `m`: `r` and `d` per
    /// channel, from the renorm statistics before the call, clipped.
    fn renorm_correction(
        &self,
        m: &ChannelMoments,
        epsilon: f32,
        clipping: &RenormClipping,
    ) -> Correction {
        let [_, renorm_mean, renorm_stddev] = &self.renorm[..] else {
            unreachable!("a layer with renorm has its three weights")
        };
        let floor = epsilon.sqrt();
        let (r, d) = m
            .mean
            .iter()
            .zip(&m.variance)
            .zip(renorm_mean.iter().zip(renorm_stddev))
            .map(|((&mean, &var), (&rm, &rs))| {
                let s = rs.max(floor);
                clipping.clip((var + epsilon).sqrt() / s, (mean - rm) / s)
            })
            .unzip();
        Correction { r, d }
    }

    fn moving(&self) -> (&[f32], &[f32]) {
        (
            self.moving_mean
                .as_slice()
                .expect("a fresh 1-D array is contiguous"),
            self.moving_variance
                .as_slice()
                .expect("a fresh 1-D array is contiguous"),
        )
    }
}

/// `inv` and `shift` per channel, `tf.nn.batch_normalization`'s: `inv = gamma / sqrt(var +
/// epsilon)` (`1 / sqrt(var + epsilon)` without `gamma`), `shift = beta − mean · inv`.
fn scale_and_shift(
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    mean: &[f32],
    variance: &[f32],
    epsilon: f32,
) -> (Vec<f32>, Vec<f32>) {
    let mut inv: Vec<f32> = variance
        .iter()
        .map(|v| 1.0 / (v + epsilon).sqrt())
        .collect();
    if let Some(g) = gamma {
        inv.iter_mut().zip(g).for_each(|(i, g)| *i *= g);
    }
    let shift = match beta {
        Some(b) => inv
            .iter()
            .zip(mean)
            .zip(b)
            .map(|((i, m), b)| b - m * i)
            .collect(),
        None => inv.iter().zip(mean).map(|(i, m)| -m * i).collect(),
    };
    (inv, shift)
}

/// Batch renormalization's correction of a training call, per channel: the normalized batch
/// is scaled by `r` and shifted by `d` before `gamma` and `beta`.
#[derive(Debug)]
struct Correction {
    r: Vec<f32>,
    d: Vec<f32>,
}

impl Correction {
    /// Keras's `_compose_transforms`: the scale `r · gamma` (`r` without `gamma`) and the
    /// offset `d · gamma + beta` that take the place of `gamma` and `beta`.
    fn compose(&self, gamma: Option<&[f32]>, beta: Option<&[f32]>) -> (Vec<f32>, Vec<f32>) {
        let (mut scale, mut offset) = (self.r.clone(), self.d.clone());
        if let Some(g) = gamma {
            scale.iter_mut().zip(g).for_each(|(s, g)| *s *= g);
            offset.iter_mut().zip(g).for_each(|(o, g)| *o *= g);
        }
        if let Some(b) = beta {
            offset.iter_mut().zip(b).for_each(|(o, b)| *o += b);
        }
        (scale, offset)
    }
}

/// What a recording call of a BatchNormalization keeps: its input (standard layout) and, for a
/// training call, the batch's statistics and the moving statistics they give.
#[derive(Debug)]
struct BatchNormSaved {
    x: ArrayD<f32>,
    batch: Option<BatchStats>,
}

/// The statistics of a training call.
#[derive(Debug)]
struct BatchStats {
    moments: ChannelMoments,
    /// `1 / sqrt(var + epsilon)` per channel.
    inv_std: Vec<f32>,
    /// Per value of the input, whether it entered the statistics (`None`: all did).
    keep: Option<Vec<bool>>,
    /// Batch renormalization's correction, with `renorm`.
    correction: Option<Correction>,
    /// The new non-trainable weights, in Keras's order: `moving_mean`, `moving_variance`, and
    /// with `renorm` `moving_stddev`, `renorm_mean`, `renorm_stddev`.
    moved: Vec<Array1<f32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Built {
    rank: usize,
    axis: usize,
    channels: usize,
}

impl Default for BatchNormalization {
    /// Keras's `BatchNormalization()`.
    fn default() -> Self {
        Self::new()
    }
}

impl BatchNormalization {
    /// A BatchNormalization with Keras's defaults, as Keras's `BatchNormalization()`.
    pub fn new() -> Self {
        BatchNormalization {
            name: LayerName::new("batch_normalization"),
            rules: crate::train::WeightRules::new(),
            input: InputDecl::default(),
            axis: -1,
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            renorm: false,
            renorm_clipping: RenormClipping::default(),
            renorm_momentum: 0.99,
            moving_variance: MovingVariance::Keras3,
            trainable: true,
            built: None,
            values: None,
        }
    }

    /// Keras's `axis`: the axis of the channels, negative from the end. Default −1.
    #[must_use]
    pub fn with_axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }

    /// Keras's `momentum` of the moving statistics, which only training uses. Default 0.99.
    #[must_use]
    pub fn with_momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    epsilon_center_scale!();

    /// Keras's `renorm` (batch renormalization): training corrects the batch's normalization
    /// toward moving statistics of its own, three more weights; inference is the same. Default
    /// false.
    #[must_use]
    pub fn with_renorm(mut self, yes: bool) -> Self {
        self.renorm = yes;
        self
    }

    /// Keras's `renorm_clipping`: the bounds of renorm's correction (with `renorm`). Default
    /// none.
    #[must_use]
    pub fn with_renorm_clipping(mut self, clipping: RenormClipping) -> Self {
        self.renorm_clipping = clipping;
        self
    }

    /// Keras's `renorm_momentum`: the momentum of `renorm_mean` and `renorm_stddev` (with
    /// `renorm`). Default 0.99.
    #[must_use]
    pub fn with_renorm_momentum(mut self, momentum: f32) -> Self {
        self.renorm_momentum = momentum;
        self
    }

    /// Which variance training moves `moving_variance` toward, as Keras 3 or tf_keras. Default
    /// [`MovingVariance::Keras3`].
    #[must_use]
    pub fn with_moving_variance(mut self, which: MovingVariance) -> Self {
        self.moving_variance = which;
        self
    }

    common_builders!("batch_normalization");

    crate::layer::rule_builders! {
        "beta", "the offset beta" => with_beta_regularizer, with_beta_constraint;
        "gamma", "the scale gamma" => with_gamma_regularizer, with_gamma_constraint;
    }

    /// Which variance training moves `moving_variance` toward.
    pub fn moving_variance(&self) -> MovingVariance {
        self.moving_variance
    }

    /// The axis of the channels, as given (Keras's `axis`).
    pub fn axis(&self) -> isize {
        self.axis
    }

    /// The momentum of the moving statistics.
    pub fn momentum(&self) -> f32 {
        self.momentum
    }

    /// Whether the layer has batch renormalization's weights.
    pub fn renorm(&self) -> bool {
        self.renorm
    }

    /// The bounds of batch renormalization's correction.
    pub fn renorm_clipping(&self) -> RenormClipping {
        self.renorm_clipping
    }

    /// The momentum of the renorm statistics.
    pub fn renorm_momentum(&self) -> f32 {
        self.renorm_momentum
    }

    /// The weights' names in Keras's order.
    fn weight_names(&self) -> Vec<&'static str> {
        let mut names = Vec::with_capacity(7);
        if self.scale {
            names.push("gamma");
        }
        if self.center {
            names.push("beta");
        }
        names.extend(["moving_mean", "moving_variance"]);
        if self.renorm {
            names.extend(["moving_stddev", "renorm_mean", "renorm_stddev"]);
        }
        names
    }

    /// The axis and channels of an input shape, checked as Keras checks them.
    fn resolve(&self, input: &Shape) -> Result<Built> {
        let name = self.name.get();
        let rank = input.rank();
        let axis = resolve_axis(self.axis, rank).ok_or_else(|| {
            // Keras 3's `compute_output_shape` (its `build` fails with an IndexError).
            Error::InvalidArgument {
                layer: name.to_string(),
                message: format!(
                    "Axis {a} is out of bounds for input shape {input}. Received: axis={a}",
                    a = self.axis
                ),
            }
        })?;
        let Some(channels) = input.dim(axis) else {
            // tf_keras's BatchNormalization.build, which quotes the axis resolved.
            return Err(Error::InvalidArgument {
                layer: name.to_string(),
                message: format!(
                    "Input has undefined `axis` dimension. Received input with shape {input} \
                     and axis=({axis},)"
                ),
            });
        };
        if let Some(b) = self.built {
            check_built(name, b.rank, &[(b.axis, b.channels)], input)?;
        }
        Ok(Built {
            rank,
            axis,
            channels,
        })
    }
}

impl BatchNormalization {
    /// Whether tf_keras would run its fused kernel on inputs of `b`'s rank and axis (never
    /// with `renorm`, which that kernel does not do).
    fn fused(&self, b: &Built) -> bool {
        self.moving_variance == MovingVariance::TfKeras
            && !self.renorm
            && matches!((b.rank, b.axis), (4, 1 | 3) | (5, 1 | 4))
    }

    /// The non-trainable weights after a training call with batch statistics `m`, in Keras's
    /// order: each `moving · momentum + batch · (1 − momentum)`; the variance made unbiased
    /// where tf_keras's fused kernel makes it so; with `renorm`, the renorm statistics with
    /// their own momentum, and the moving variance from the new moving standard deviation.
    fn moved(&self, values: &Values, m: &ChannelMoments) -> Vec<Array1<f32>> {
        let toward = |old: &Array1<f32>, new: &[f32], mom: f32| -> Array1<f32> {
            old.iter()
                .zip(new)
                .map(|(old, new)| old * mom + new * (1.0 - mom))
                .collect()
        };
        let mean = toward(&values.moving_mean, &m.mean, self.momentum);
        if let [moving_stddev, renorm_mean, renorm_stddev] = &values.renorm[..] {
            let stddev: Vec<f32> = m
                .variance
                .iter()
                .map(|v| (v + self.epsilon).sqrt())
                .collect();
            let moving_stddev = toward(moving_stddev, &stddev, self.momentum);
            // relu(moving_stddev² − epsilon), in case rounding makes it negative.
            let variance = moving_stddev.mapv(|s| (s * s - self.epsilon).max(0.0));
            return vec![
                mean,
                variance,
                moving_stddev,
                toward(renorm_mean, &m.mean, self.renorm_momentum),
                toward(renorm_stddev, &stddev, self.renorm_momentum),
            ];
        }
        let fused = self.built.is_some_and(|b| self.fused(&b));
        let (mom, rest) = (self.momentum, 1.0 - self.momentum);
        let variance = values
            .moving_variance
            .iter()
            .zip(&m.variance)
            .zip(&m.count)
            .map(|((old, &new), &n)| {
                let new = if fused && n > 1 {
                    new * (n as f32 / (n - 1) as f32)
                } else {
                    new
                };
                old * mom + new * rest
            })
            .collect();
        vec![mean, variance]
    }

    /// Which values of an input of `shape` enter a training call's statistics: those of the
    /// unmasked timesteps, for a `(batch, timesteps, features)` input with a mask; all (`None`)
    /// without a mask, or where tf_keras's fused kernel ignores it.
    fn batch_keep(
        &self,
        ctx: &CallContext,
        shape: &[usize],
        b: &Built,
    ) -> Result<Option<Vec<bool>>> {
        let Some(mask) = ctx.input_mask(0) else {
            return Ok(None);
        };
        if self.fused(b) {
            return Ok(None);
        }
        if shape.len() != 3 || mask.shape() != &shape[..2] {
            // Keras 3's check (tf_keras's weighted moments would broadcast the mask as it can).
            return Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: format!(
                    "The mask provided should be one dimension less than the inputs. \
                     Received: mask.shape={}, inputs.shape={}",
                    crate::layers::conv::py_tuple(mask.shape()),
                    crate::layers::conv::py_tuple(shape)
                ),
            });
        }
        let features = shape[2];
        Ok(Some(
            mask.iter()
                .flat_map(|&k| std::iter::repeat_n(k, features))
                .collect(),
        ))
    }
}

/// A built normalization layer's check of a new input, as Keras's `InputSpec(ndim, axes)`: the
/// rank it was built for, and its `(axis, dimension)` pairs.
pub(crate) fn check_built(
    layer: &str,
    rank: usize,
    axes: &[(usize, usize)],
    input: &Shape,
) -> Result<()> {
    if input.rank() != rank {
        return Err(Error::IncompatibleRank {
            layer: layer.to_string(),
            expected: rank,
            found: input.rank(),
            shape: input.clone(),
        });
    }
    if axes.iter().any(|&(a, d)| input.dim(a) != Some(d)) {
        let mut expected = vec![None; rank];
        for &(a, d) in axes {
            expected[a] = Some(d);
        }
        return Err(Error::IncompatibleShape {
            layer: layer.to_string(),
            expected: Shape::new(expected),
            found: input.clone(),
        });
    }
    Ok(())
}

/// The builders and getters of `epsilon`, `center` and `scale`, which BatchNormalization and
/// LayerNormalization share (fields of those names).
macro_rules! epsilon_center_scale {
    () => {
        /// Keras's `epsilon`, added to the variance. Default 1e-3.
        #[must_use]
        pub fn with_epsilon(mut self, epsilon: f32) -> Self {
            self.epsilon = epsilon;
            self
        }

        /// Keras's `center`: whether there is a `beta` offset. Default true.
        #[must_use]
        pub fn with_center(mut self, yes: bool) -> Self {
            self.center = yes;
            self
        }

        /// Keras's `scale`: whether there is a `gamma` factor. Default true.
        #[must_use]
        pub fn with_scale(mut self, yes: bool) -> Self {
            self.scale = yes;
            self
        }

        /// The value added to the variance.
        pub fn epsilon(&self) -> f32 {
            self.epsilon
        }

        /// Whether a `beta` offset was asked for (Keras's `center`).
        pub fn center(&self) -> bool {
            self.center
        }

        /// Whether a `gamma` factor was asked for (Keras's `scale`).
        pub fn scale(&self) -> bool {
            self.scale
        }
    };
}
pub(crate) use epsilon_center_scale;

/// `axis` (negative from the end) as an index into `rank` axes, or `None` when out of range.
pub(crate) fn resolve_axis(axis: isize, rank: usize) -> Option<usize> {
    let rank = isize::try_from(rank).ok()?;
    let a = if axis < 0 { axis + rank } else { axis };
    (0..rank).contains(&a).then_some(a as usize)
}

impl Layer for BatchNormalization {
    layer_plumbing!();
    crate::layer::rule_methods!();

    fn class_name(&self) -> &'static str {
        "BatchNormalization"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        let input = single_shape(name, inputs)?;
        if self.renorm {
            self.renorm_clipping.check(name)?;
        }
        let b = self.resolve(input)?;
        let c: &[usize] = &[b.channels];
        let specs: Vec<(&str, &[usize])> =
            self.weight_names().into_iter().map(|n| (n, c)).collect();
        check_specs(name, &specs)?;
        limits::check_tensor(name, "output", input)?;
        Ok(vec![input.clone()])
    }

    fn build(&mut self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let out = self.compute_output_shape(inputs)?;
        if self.built.is_none() {
            self.built = Some(self.resolve(&inputs[0])?);
        }
        Ok(out)
    }

    fn is_built(&self) -> bool {
        self.built.is_some()
    }

    fn weight_specs(&self) -> Vec<WeightSpec> {
        let Some(b) = self.built else {
            return Vec::new();
        };
        // gamma and beta train; the statistics (and renorm's) are Keras's non-trainable
        // weights.
        self.weight_names()
            .into_iter()
            .map(|n| {
                if n == "gamma" || n == "beta" {
                    WeightSpec::new(n, vec![b.channels])
                } else {
                    WeightSpec::non_trainable(n, vec![b.channels])
                }
            })
            .collect()
    }

    fn initialize(&mut self) {
        let Some(b) = self.built else {
            return;
        };
        // Keras's initializers: gamma ones, beta zeros, moving_mean zeros, moving_variance
        // ones; moving_stddev sqrt(ones), renorm_mean zeros, renorm_stddev sqrt(ones).
        let (zeros, ones) = (Array1::zeros(b.channels), Array1::ones(b.channels));
        self.values = Some(Box::new(Values {
            gamma: self.scale.then(|| ones.clone()),
            beta: self.center.then(|| zeros.clone()),
            moving_mean: zeros.clone(),
            moving_variance: ones.clone(),
            renorm: if self.renorm {
                vec![ones.clone(), zeros, ones]
            } else {
                Vec::new()
            },
        }));
    }

    fn weights(&self) -> Vec<ArrayViewD<'_, f32>> {
        self.values
            .iter()
            .flat_map(|v| v.in_keras_order())
            .map(|w| w.view().into_dyn())
            .collect()
    }

    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        if !self.is_built() {
            return Err(no_weights(self.name.get()));
        }
        check_weights(self.name.get(), &self.weight_specs(), weights)?;
        self.values = Some(Box::new(Values::from_keras_order(
            self.scale,
            self.center,
            weights,
        )));
        Ok(())
    }

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let name = self.name.get();
        let input = single_input(name, inputs)?;
        let (Some(_), Some(values)) = (self.built, self.values.as_deref()) else {
            return Err(no_weights(name));
        };
        let shape = input.shape();
        let b = self.resolve(&Shape::known(shape))?;
        limits::check_dims(name, "output", shape)?;
        // Keras: `training and self.trainable` (Keras 3), `training = False` for a layer that
        // is not trainable (tf_keras's `_get_training_value`).
        let training = ctx.mode() == Mode::Training && self.trainable;
        let keep = if training {
            self.batch_keep(ctx, shape, &b)?
        } else {
            None
        };
        let inner: usize = shape[b.axis + 1..].iter().product();
        let mut y = input.as_standard_layout().into_owned();
        let x = ctx.records().then(|| y.clone());
        let batch = training.then(|| {
            let moments = channel_moments(
                y.as_slice()
                    .expect("an owned standard-layout array is contiguous"),
                b.channels,
                inner,
                keep.as_deref(),
            );
            let inv_std = moments
                .variance
                .iter()
                .map(|v| 1.0 / (v + self.epsilon).sqrt())
                .collect();
            let correction = self
                .renorm
                .then(|| values.renorm_correction(&moments, self.epsilon, &self.renorm_clipping));
            let moved = self.moved(values, &moments);
            BatchStats {
                moments,
                inv_std,
                keep,
                correction,
                moved,
            }
        });
        let (inv, shift) = match &batch {
            Some(s) => {
                let (mean, variance) = (&s.moments.mean[..], &s.moments.variance[..]);
                match &s.correction {
                    Some(c) => {
                        let (scale, offset) = c.compose(values.gamma(), values.beta());
                        scale_and_shift(Some(&scale), Some(&offset), mean, variance, self.epsilon)
                    }
                    None => values.scale_and_shift(mean, variance, self.epsilon),
                }
            }
            None => {
                let (mean, variance) = values.moving();
                values.scale_and_shift(mean, variance, self.epsilon)
            }
        };
        scale_shift_channels(
            y.as_slice_mut()
                .expect("an owned standard-layout array is contiguous"),
            b.channels,
            inner,
            &inv,
            &shift,
        );
        if let Some(x) = x {
            ctx.save_for_backward(Box::new(BatchNormSaved { x, batch }));
        }
        Ok(vec![y])
    }

    /// After a training call: the gradient of the input through the batch's mean and variance,
    /// `gamma`'s and `beta`'s, and zeros for the other weights (TensorFlow gives them none);
    /// with `renorm`, `r` and `d` are constants, so the input's gradient is that of the scale
    /// `r · gamma`, and `gamma`'s is `Σ g · (x̂ · r + d)`.
    /// After an inference call: those of the affine map `x · inv + shift`, the moving
    /// statistics' included.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let saved: &BatchNormSaved = saved.get(name)?;
        let (Some(b), Some(values)) = (self.built, self.values.as_deref()) else {
            return Err(no_weights(name));
        };
        let shape = saved.x.shape();
        let inner: usize = shape[b.axis + 1..].iter().product();
        let c = b.channels;
        let x = saved.x.as_slice().expect("kept in standard layout");
        let mut g = output_grad(name, output_grads, 0, shape)?;
        let gs = g.as_slice_mut().expect("standard layout");
        let gamma = values.gamma();
        let one = |v: Vec<f32>| Array1::from(v).into_dyn();
        let zeros = || ArrayD::zeros(ndarray::IxDyn(&[c]));
        let (d_gamma, d_beta, d_moving) = match &saved.batch {
            Some(s) => {
                let (sum_g, sum_gx) = channel_sums(x, gs, c, inner, &s.moments.mean);
                // With renorm, the input sees the scale r · gamma.
                let scale = s.correction.as_ref().map(|k| k.compose(gamma, None).0);
                batch_norm_input_grad(
                    x,
                    gs,
                    c,
                    inner,
                    s.keep.as_deref(),
                    &s.moments,
                    &s.inv_std,
                    scale.as_deref().or(gamma),
                    (&sum_g, &sum_gx),
                );
                // Σ g · x̂, then times r plus d · Σ g with renorm.
                let d_gamma = (0..c)
                    .map(|i| {
                        let gx = sum_gx[i] * f64::from(s.inv_std[i]);
                        let v = match &s.correction {
                            Some(k) => gx * f64::from(k.r[i]) + sum_g[i] * f64::from(k.d[i]),
                            None => gx,
                        };
                        v as f32
                    })
                    .collect();
                let d_beta = sum_g.iter().map(|&v| v as f32).collect();
                (d_gamma, d_beta, [zeros(), zeros()])
            }
            None => {
                let (mean, variance) = values.moving();
                let (sum_g, sum_gx) = channel_sums(x, gs, c, inner, mean);
                let (inv, _) = values.scale_and_shift(mean, variance, self.epsilon);
                scale_shift_channels(gs, c, inner, &inv, &vec![0.0; c]);
                let r: Vec<f64> = variance
                    .iter()
                    .map(|v| 1.0 / f64::from(v + self.epsilon).sqrt())
                    .collect();
                let gm = |i: usize| f64::from(gamma.map_or(1.0, |g| g[i]));
                let d_gamma = (0..c).map(|i| (r[i] * sum_gx[i]) as f32).collect();
                let d_beta = sum_g.iter().map(|&v| v as f32).collect();
                // y = x · inv + beta − mean · inv: d mean = −inv Σ g; d var = Σ g·(x − mean) ·
                // gamma · (−½)(var + epsilon)^(−3/2).
                let d_mean = (0..c).map(|i| -f64::from(inv[i]) * sum_g[i]);
                let d_var = (0..c).map(|i| -0.5 * gm(i) * r[i].powi(3) * sum_gx[i]);
                (
                    d_gamma,
                    d_beta,
                    [
                        one(d_mean.map(|v| v as f32).collect()),
                        one(d_var.map(|v| v as f32).collect()),
                    ],
                )
            }
        };
        let mut weights = Vec::with_capacity(7);
        if self.scale {
            weights.push(one(d_gamma));
        }
        if self.center {
            weights.push(one(d_beta));
        }
        weights.extend(d_moving);
        if self.renorm {
            weights.extend([zeros(), zeros(), zeros()]);
        }
        Ok(Gradients {
            inputs: vec![Some(g)],
            weights,
        })
    }

    /// The moving statistics a training call moved, in their places among the weights.
    fn updates(&self, saved: &SavedForBackward) -> Result<Vec<Option<ArrayD<f32>>>> {
        let saved: &BatchNormSaved = saved.get(self.name.get())?;
        let mut updates: Vec<Option<ArrayD<f32>>> = vec![None; self.weight_specs().len()];
        if let Some(s) = &saved.batch {
            // After gamma and beta, whichever the layer has.
            let at = usize::from(self.scale) + usize::from(self.center);
            for (slot, moved) in updates[at..].iter_mut().zip(&s.moved) {
                *slot = Some(moved.clone().into_dyn());
            }
        }
        Ok(updates)
    }

    fn mask_policy(&self) -> MaskPolicy {
        MaskPolicy::Propagate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{apply, apply_masked};
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    fn built(
        bn: BatchNormalization,
        input: Shape,
        weights: &[ArrayD<f32>],
    ) -> Result<BatchNormalization> {
        let mut bn = bn;
        bn.build(&[input])?;
        bn.set_weights(weights)?;
        Ok(bn)
    }

    #[test]
    fn two_channels_by_hand() -> Result<()> {
        let bn = built(
            BatchNormalization::new().with_epsilon(0.0),
            Shape::new(vec![None, Some(2)]),
            &[
                array![2.0_f32, 1.0].into_dyn(),  // gamma
                array![0.5_f32, 0.0].into_dyn(),  // beta
                array![1.0_f32, -1.0].into_dyn(), // moving_mean
                array![4.0_f32, 0.25].into_dyn(), // moving_variance
            ],
        )?;
        let y = apply(&bn, array![[3.0_f32, 0.0], [1.0, -2.0]].into_dyn().view())?;
        // channel 0: 2·(x − 1)/√4 + 0.5 = x − 0.5:      3 -> 2.5, 1 -> 0.5
        // channel 1: 1·(x + 1)/√0.25 + 0 = 2·(x + 1):   0 -> 2,  −2 -> −2
        assert_abs_diff_eq!(y[[0, 0]], 2.5, epsilon = 1e-6);
        assert_abs_diff_eq!(y[[1, 0]], 0.5, epsilon = 1e-6);
        assert_abs_diff_eq!(y[[0, 1]], 2.0, epsilon = 1e-6);
        assert_abs_diff_eq!(y[[1, 1]], -2.0, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn axis_one_of_a_sequence_normalizes_each_timestep() -> Result<()> {
        // axis 1 of (batch, 2 timesteps, 2 features), no gamma or beta, epsilon 0:
        // step 0: (x − 1)/√1, step 1: (x − 0)/√4.
        let mut bn = BatchNormalization::new()
            .with_axis(1)
            .with_center(false)
            .with_scale(false)
            .with_epsilon(0.0);
        bn.build(&[Shape::new(vec![None, Some(2), Some(2)])])?;
        let names: Vec<String> = bn.weight_specs().into_iter().map(|w| w.name).collect();
        assert_eq!(names, ["moving_mean", "moving_variance"]);
        assert_eq!(bn.count_params(), 4); // 2 timesteps · 2 statistics
        bn.set_weights(&[
            array![1.0_f32, 0.0].into_dyn(),
            array![1.0_f32, 4.0].into_dyn(),
        ])?;
        let x = array![[[3.0_f32, 5.0], [2.0, -4.0]]];
        let mask = array![[true, false]];
        let (y, masks) = apply_masked(&bn, &[x.view().into_dyn()], Some(mask.view()))?;
        // [3, 5] - 1 = [2, 4]; [2, −4] / 2 = [1, −2]
        assert_eq!(y[0], array![[[2.0_f32, 4.0], [1.0, -2.0]]].into_dyn());
        assert_eq!(masks[0], Some(mask));
        Ok(())
    }

    #[test]
    fn defaults_and_renorm_weights_follow_keras() -> Result<()> {
        let mut bn = BatchNormalization::new().with_renorm(true);
        bn.build(&[Shape::new(vec![None, Some(3)])])?;
        let names: Vec<String> = bn.weight_specs().into_iter().map(|w| w.name).collect();
        assert_eq!(
            names,
            [
                "gamma",
                "beta",
                "moving_mean",
                "moving_variance",
                "moving_stddev",
                "renorm_mean",
                "renorm_stddev"
            ]
        );
        assert_eq!(bn.count_params(), 21); // 7 weights of 3
        bn.initialize();
        // Fresh weights: gamma 1, beta 0, mean 0, variance 1: y = x / √(1 + 0.001).
        let y = apply(&bn, array![[1.0_f32, -2.0, 0.0]].into_dyn().view())?;
        assert_abs_diff_eq!(y[[0, 0]], 0.999_500_4, epsilon = 1e-6);
        assert_abs_diff_eq!(y[[0, 1]], -1.999_000_7, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn axes_out_of_range_or_unknown_are_refused_in_keras_words() {
        let err = BatchNormalization::new()
            .with_axis(3)
            .compute_output_shape(&[Shape::new(vec![None, Some(4), Some(3)])])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"batch_normalization\": Axis 3 is out of bounds for input shape (None, 4, 3). \
             Received: axis=3"
        );
        assert!(BatchNormalization::new()
            .with_axis(-4)
            .compute_output_shape(&[Shape::new(vec![None, Some(4), Some(3)])])
            .is_err());
        assert!(BatchNormalization::new()
            .with_axis(isize::MIN)
            .compute_output_shape(&[Shape::new(vec![None, Some(3)])])
            .is_err());
        let err = BatchNormalization::new()
            .compute_output_shape(&[Shape::new(vec![None, Some(4), None])])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"batch_normalization\": Input has undefined `axis` dimension. Received input \
             with shape (None, 4, None) and axis=(2,)"
        );
    }

    #[test]
    fn a_built_layer_keeps_its_channels() -> Result<()> {
        let mut bn = BatchNormalization::new();
        assert!(matches!(
            apply(&bn, ArrayD::zeros(ndarray::IxDyn(&[1, 3])).view()),
            Err(Error::NotBuilt { .. })
        ));
        bn.build(&[Shape::new(vec![None, Some(3)])])?;
        assert!(matches!(
            bn.build(&[Shape::new(vec![None, Some(4)])]),
            Err(Error::IncompatibleShape { .. })
        ));
        assert!(matches!(
            bn.build(&[Shape::new(vec![None, Some(2), Some(3)])]),
            Err(Error::IncompatibleRank { .. })
        ));
        bn.initialize();
        let err = apply(&bn, ArrayD::zeros(ndarray::IxDyn(&[2, 5])).view()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Input 0 of layer \"batch_normalization\" is incompatible with the layer: expected \
             shape=(None, 3), found shape=(2, 5)"
        );
        Ok(())
    }

    #[test]
    fn training_normalizes_by_the_batch_and_keeps_the_moving_statistics_by_hand() -> Result<()> {
        let mut bn = BatchNormalization::new().with_epsilon(0.0);
        bn.build(&[Shape::new(vec![None, Some(1)])])?;
        bn.initialize();
        let x = array![[0.0_f32], [1.0], [2.0]].into_dyn();
        let mut ctx = CallContext::training();
        let y = bn.call(&[x.view()], &mut ctx)?;
        // mean 1, var 2/3, r = √1.5 = 1.2247449: y = (x − 1)·r = [−r, 0, r].
        let r = 1.5_f32.sqrt();
        assert_abs_diff_eq!(y[0][[0, 0]], -r, epsilon = 1e-6);
        assert_abs_diff_eq!(y[0][[2, 0]], r, epsilon = 1e-6);
        let saved = ctx.take_saved().expect("a training call keeps its record");
        // The layer is unchanged; its updates move the statistics 1 % of the way:
        // mean 0·0.99 + 1·0.01 = 0.01, variance 1·0.99 + (2/3)·0.01 = 0.9966667.
        assert_eq!(bn.weights()[2][0], 0.0);
        let updates = bn.updates(&saved)?;
        assert!(updates[0].is_none() && updates[1].is_none());
        assert_abs_diff_eq!(updates[2].as_ref().unwrap()[0], 0.01, epsilon = 1e-7);
        assert_abs_diff_eq!(updates[3].as_ref().unwrap()[0], 0.996_666_7, epsilon = 1e-6);
        // Backward of g = [1, 0, 0]: d beta = Σ g = 1, d gamma = Σ g·x̂ = −r,
        // dx = r·(g − (Σ g + x̂·Σ g·x̂)/3) = r·[1/6, −1/3, 1/6]; no gradient for the statistics.
        let g = array![[1.0_f32], [0.0], [0.0]].into_dyn();
        let grads = bn.backward(&saved, &[Some(g.view())])?;
        let dx = grads.inputs[0].as_ref().expect("the input's gradient");
        for (i, want) in [r / 6.0, -r / 3.0, r / 6.0].into_iter().enumerate() {
            assert_abs_diff_eq!(dx[[i, 0]], want, epsilon = 1e-6);
        }
        assert_abs_diff_eq!(grads.weights[0][0], -r, epsilon = 1e-6);
        assert_abs_diff_eq!(grads.weights[1][0], 1.0, epsilon = 1e-6);
        assert!(grads.weights[2..].iter().all(|w| w[0] == 0.0));
        Ok(())
    }

    #[test]
    fn frozen_layers_and_misplaced_masks_in_training() -> Result<()> {
        let mut bn = BatchNormalization::new();
        bn.build(&[Shape::new(vec![None, Some(3)])])?;
        bn.initialize();
        let x = ArrayD::<f32>::ones(ndarray::IxDyn(&[2, 3]));
        // A mask on a (batch, features) input: Keras 3's error.
        let mut ctx = CallContext::training().with_masks(vec![Some(array![[true, false]])]);
        let err = bn.call(&[x.view()], &mut ctx).unwrap_err();
        assert!(
            err.to_string()
                .contains("mask.shape=(1, 2), inputs.shape=(2, 3)"),
            "{err}"
        );
        // Not trainable: Keras runs it at inference even in training, and moves nothing.
        bn.set_trainable(false);
        let mut ctx = CallContext::training();
        let y = bn.call(&[x.view()], &mut ctx)?;
        assert_abs_diff_eq!(y[0][[0, 0]], 0.999_500_4, epsilon = 1e-6); // 1/√1.001
        let saved = ctx.take_saved().expect("kept");
        assert!(bn.updates(&saved)?.iter().all(Option::is_none));
        Ok(())
    }

    #[test]
    fn renorm_corrects_clips_and_moves_its_statistics_by_hand() -> Result<()> {
        let mut bn = BatchNormalization::new()
            .with_epsilon(0.0)
            .with_renorm(true)
            .with_renorm_momentum(0.5)
            .with_renorm_clipping(RenormClipping {
                rmax: None,
                rmin: Some(0.9),
                dmax: Some(0.5),
            });
        bn.build(&[Shape::new(vec![None, Some(1)])])?;
        bn.initialize();
        let x = array![[0.0_f32], [1.0], [2.0]].into_dyn();
        let mut ctx = CallContext::training();
        let y = bn.call(&[x.view()], &mut ctx)?;
        // mean 1, var 2/3, stddev √(2/3) = 0.8164966, x̂ = [−1.2247449, 0, 1.2247449].
        // renorm_mean 0 and renorm_stddev 1 at first: r = 0.8164966 → rmin 0.9, d = 1 → dmax
        // 0.5; y = 0.9·x̂ + 0.5 = [−0.6022704, 0.5, 1.6022704].
        for (i, want) in [-0.602_270_4, 0.5, 1.602_270_4].into_iter().enumerate() {
            assert_abs_diff_eq!(y[0][[i, 0]], want, epsilon = 1e-6);
        }
        let saved = ctx.take_saved().expect("a training call keeps its record");
        let updates = bn.updates(&saved)?;
        assert!(updates[0].is_none() && updates[1].is_none());
        let moved: Vec<f32> = updates[2..]
            .iter()
            .map(|u| u.as_ref().expect("moved")[0])
            .collect();
        // moving_mean 0.99·0 + 0.01·1; moving_stddev 0.99·1 + 0.01·0.8164966 = 0.9981650,
        // moving_variance its square 0.9963333; renorm_mean 0.5·0 + 0.5·1;
        // renorm_stddev 0.5·1 + 0.5·0.8164966 = 0.9082483.
        for (got, want) in moved
            .iter()
            .zip([0.01, 0.996_333_3, 0.998_165, 0.5, 0.908_248_3])
        {
            assert_abs_diff_eq!(*got, want, epsilon = 1e-6);
        }
        // Backward of g = [1, 0, 0]: d beta = 1, d gamma = r·Σ g·x̂ + d·Σ g = −0.6022704;
        // dx = r·gamma/stddev · (g − (Σ g + x̂·Σ g·x̂)/3) = 0.9·1.2247449·[1/6, −1/3, 1/6].
        let g = array![[1.0_f32], [0.0], [0.0]].into_dyn();
        let grads = bn.backward(&saved, &[Some(g.view())])?;
        let dx = grads.inputs[0].as_ref().expect("the input's gradient");
        let k = 0.9 * 1.224_744_9;
        for (i, want) in [k / 6.0, -k / 3.0, k / 6.0].into_iter().enumerate() {
            assert_abs_diff_eq!(dx[[i, 0]], want, epsilon = 1e-6);
        }
        assert_abs_diff_eq!(grads.weights[0][0], -0.602_270_4, epsilon = 1e-6);
        assert_abs_diff_eq!(grads.weights[1][0], 1.0, epsilon = 1e-6);
        assert!(grads.weights[2..].iter().all(|w| w[0] == 0.0));
        Ok(())
    }

    #[test]
    fn renorm_clipping_is_checked_in_keras_words() {
        let shape = [Shape::new(vec![None, Some(3)])];
        let clipped = |c: RenormClipping| {
            BatchNormalization::new()
                .with_renorm(true)
                .with_renorm_clipping(c)
                .compute_output_shape(&shape)
        };
        let err = clipped(RenormClipping {
            rmax: Some(0.5),
            rmin: Some(1.0),
            dmax: None,
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"batch_normalization\": rmax should be greater than rmin in the \
             `renorm_clipping` argument. Received: rmax=0.5, rmin=1.0."
        );
        let err = clipped(RenormClipping {
            dmax: Some(-1.0),
            ..RenormClipping::default()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("dmax should be non-negative"),
            "{err}"
        );
        assert!(clipped(RenormClipping {
            rmin: Some(f32::NAN),
            ..RenormClipping::default()
        })
        .is_err());
        // Without renorm the clipping is not read, as in Keras.
        assert!(BatchNormalization::new()
            .with_renorm_clipping(RenormClipping {
                dmax: Some(-1.0),
                ..RenormClipping::default()
            })
            .compute_output_shape(&shape)
            .is_ok());
    }
}
