//! Keras's `Dropout`, which is the identity at inference.

use ndarray::{ArrayD, ArrayViewD};

use crate::error::{Error, Result};
use crate::layer::{
    common_builders, layer_plumbing, single_input, single_shape, weightless, CallContext,
    InputDecl, Layer, LayerName, MaskPolicy, Mode,
};
use crate::shape::Shape;

/// Keras's `Dropout`: in training it zeroes a fraction `rate` of the values; at inference, the
/// only mode seqnn runs, it passes its input through unchanged, as Keras's `predict` does.
///
/// ```text
/// y = x                         (inference)
/// ```
///
/// - Input: any shape. Output: the same.
/// - No weights. A mask goes on unchanged.
///
/// ```
/// use seqnn::{Dropout, Sequential, SimpleRNN};
/// // model.add(SimpleRNN(4, return_sequences=True, input_shape=(5, 3)))
/// // model.add(Dropout(0.5))
/// let mut model = Sequential::new();
/// model.add(SimpleRNN::new(4).with_return_sequences(true).input_shape((5, 3)))?;
/// model.add(Dropout::new(0.5))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 5, 4)");
/// assert!(Sequential::new().add(Dropout::new(1.5)).is_err());
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding or building it fails with [`Error::InvalidArgument`] for a rate outside `[0, 1]`
/// (NaN included), in Keras's words: ``Invalid value 1.5 received for `rate`, expected a value
/// between 0 and 1.``
#[derive(Debug, Clone)]
pub struct Dropout {
    name: LayerName,
    input: InputDecl,
    rate: f32,
    trainable: bool,
    built: bool,
}

impl Dropout {
    /// A dropout of `rate`, as Keras's `Dropout(rate)`. A rate outside `[0, 1]` is refused when
    /// the layer is added to a model or built (Keras refuses it at construction).
    pub fn new(rate: f32) -> Self {
        Dropout {
            name: LayerName::new("dropout"),
            input: InputDecl::default(),
            rate,
            trainable: true,
            built: false,
        }
    }

    common_builders!("dropout");

    /// The fraction of values dropped in training (Keras's `rate`).
    pub fn rate(&self) -> f32 {
        self.rate
    }

    /// Keras's check: `0 <= rate <= 1`.
    fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.rate) {
            return Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: format!(
                    "Invalid value {} received for `rate`, expected a value between 0 and 1.",
                    py_float(self.rate)
                ),
            });
        }
        Ok(())
    }
}

/// A float as Python prints it: `1.5`, `2.0`, `nan`, `inf`.
fn py_float(v: f32) -> String {
    if v.is_nan() {
        "nan".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

impl Layer for Dropout {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        "Dropout"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.validate()?;
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        self.validate()?;
        Ok(vec![single_shape(self.name.get(), inputs)?.clone()])
    }

    weightless!();

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        self.validate()?;
        let input = single_input(self.name.get(), inputs)?;
        if ctx.mode() == Mode::Training {
            // Not the identity in training: refused rather than silently wrong.
            return Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: "Dropout in training mode is not implemented yet".into(),
            });
        }
        Ok(vec![input.to_owned()])
    }

    fn mask_policy(&self) -> MaskPolicy {
        MaskPolicy::Propagate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::apply;
    use ndarray::array;

    #[test]
    fn is_the_identity_at_inference() -> Result<()> {
        let mut d = Dropout::new(0.5);
        let out = d.build(&[Shape::new(vec![None, Some(5), Some(4)])])?;
        assert_eq!(out[0].to_string(), "(None, 5, 4)");
        assert!(d.is_built());
        let x = array![[1.0_f32, -2.0, 3.0]].into_dyn();
        assert_eq!(apply(&d, x.view())?, x);
        assert_eq!(d.count_params(), 0);
        assert_eq!(d.mask_policy(), MaskPolicy::Propagate);
        Ok(())
    }

    #[test]
    fn rates_outside_zero_one_are_refused_in_keras_words() {
        let message = |rate: f32| {
            Dropout::new(rate)
                .declared_input_shape()
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            message(1.5),
            "layer \"dropout\": Invalid value 1.5 received for `rate`, expected a value between \
             0 and 1."
        );
        assert_eq!(
            message(-0.1),
            "layer \"dropout\": Invalid value -0.1 received for `rate`, expected a value \
             between 0 and 1."
        );
        assert!(message(2.0).contains("Invalid value 2.0 received"));
        assert!(message(f32::NAN).contains("Invalid value nan received"));
        let mut d = Dropout::new(1.5);
        assert!(matches!(
            d.build(&[Shape::new(vec![None, Some(3)])]),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(!d.is_built());
        // Keras takes both ends of [0, 1].
        assert!(Dropout::new(0.0).declared_input_shape().is_ok());
        assert!(Dropout::new(1.0).declared_input_shape().is_ok());
    }
}
