//! Keras's regularization layers that are the identity at inference: `SpatialDropout1D`,
//! `GaussianNoise`, `GaussianDropout` and `ActivityRegularization`. (`Dropout` has its own
//! file.) Each checks its arguments as Keras does, passes its input and its mask on unchanged
//! at inference, and refuses [`Mode::Training`], whose noise (or, for
//! `ActivityRegularization`, whose loss) is not implemented yet.

use ndarray::{ArrayD, ArrayViewD};

use crate::error::{Error, Result};
use crate::layer::{
    check_rank, common_builders, layer_plumbing, single_input, single_shape, weightless,
    CallContext, InputDecl, Layer, LayerName, MaskPolicy, Mode,
};
use crate::layers::dropout::Dropout;
use crate::shape::Shape;

/// Keras's `SpatialDropout1D`: in training it drops whole feature channels of a sequence (the
/// same features at every timestep); at inference, the identity.
///
/// ```text
/// y = x                         (inference)
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
/// [`Error::IncompatibleRank`] for an input that is not 3-D; a call in [`Mode::Training`] with
/// [`Error::InvalidArgument`].
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
/// Keras 3 would refuse); a call in [`Mode::Training`] with [`Error::InvalidArgument`].
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
/// `[0, 1]`, in Keras 3's words (tf_keras takes any value); a call in [`Mode::Training`] with
/// [`Error::InvalidArgument`].
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

/// Keras's `ActivityRegularization`: the identity, which in training adds
/// `l1·Σ|x| + l2·Σx²` to the loss.
///
/// ```text
/// y = x
/// ```
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
/// negative or not finite, in Keras 3's words (tf_keras takes any value); a call in
/// [`Mode::Training`] with [`Error::InvalidArgument`], since the loss is not implemented yet.
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
macro_rules! identity_at_inference {
    ($layer:ident, $class:literal, $rank:expr) => {
        impl Layer for $layer {
            layer_plumbing!();

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
                if ctx.mode() == Mode::Training {
                    // Not the identity in training: refused rather than silently wrong.
                    return Err(Error::InvalidArgument {
                        layer: name.to_string(),
                        message: concat!($class, " in training mode is not implemented yet").into(),
                    });
                }
                Ok(vec![input.to_owned()])
            }

            fn mask_policy(&self) -> MaskPolicy {
                MaskPolicy::Propagate
            }
        }
    };
}

identity_at_inference!(SpatialDropout1D, "SpatialDropout1D", Some(3));
identity_at_inference!(GaussianNoise, "GaussianNoise", None::<usize>);
identity_at_inference!(GaussianDropout, "GaussianDropout", None::<usize>);
identity_at_inference!(
    ActivityRegularization,
    "ActivityRegularization",
    None::<usize>
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
            let err = layer
                .call(&[x.view()], &mut CallContext::training())
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "layer \"{}\": {} in training mode is not implemented yet",
                    layer.name(),
                    layer.class_name()
                )
            );
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
