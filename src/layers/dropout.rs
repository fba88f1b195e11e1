//! Keras's `Dropout`: inverted dropout in training, the identity at inference.

use ndarray::{ArrayD, ArrayViewD};

use crate::error::{Error, Result};
use crate::layer::{
    common_builders, layer_plumbing, single_input, single_shape, weightless, CallContext,
    Gradients, InputDecl, Layer, LayerName, MaskPolicy, Mode, SavedForBackward,
};
use crate::shape::Shape;

/// Keras's `Dropout`: in training it zeroes a fraction `rate` of the values and scales the
/// others up; at inference it passes its input through unchanged, as Keras's `predict` does.
///
/// ```text
/// y = x                                         (inference)
/// y = x · keep / (1 − rate),  keep ~ Bernoulli(1 − rate)   (training, seqnn's seeded draws)
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

/// What a call of a Dropout keeps: in training, each value's factor (0 or `1 / (1 − rate)`);
/// at inference, nothing (the identity).
#[derive(Debug)]
struct DropoutSaved(Option<ArrayD<f32>>);

/// Inverted dropout's factors, drawn from seqnn's seeded generator: each `1 / (1 − rate)` with
/// probability `1 − rate`, else 0 (all 0 for a rate of 1).
pub(crate) fn keep_mask<D: ndarray::Dimension>(shape: D, rate: f32) -> ndarray::Array<f32, D> {
    let mut keep = ndarray::Array::zeros(shape);
    fill_keep_mask(keep.view_mut(), rate);
    keep
}

/// [`keep_mask`]'s factors drawn into `keep`, in its logical order (the same draws as a fresh
/// `keep_mask` of its shape).
pub(crate) fn fill_keep_mask<D: ndarray::Dimension>(
    mut keep: ndarray::ArrayViewMut<'_, f32, D>,
    rate: f32,
) {
    let scale = if rate < 1.0 { 1.0 / (1.0 - rate) } else { 0.0 };
    crate::session::with_rng(|rng| {
        keep.iter_mut().for_each(|k| {
            *k = if rand::Rng::random::<f32>(rng) >= rate {
                scale
            } else {
                0.0
            }
        })
    })
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
pub(crate) fn py_float(v: f32) -> String {
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
        if ctx.mode() != Mode::Training || self.rate == 0.0 {
            if ctx.records() {
                ctx.save_for_backward(Box::new(DropoutSaved(None)));
            }
            return Ok(vec![input.to_owned()]);
        }
        // Keras's inverted dropout: each value kept with probability 1 − rate and scaled by
        // 1 / (1 − rate), from seqnn's seeded generator (`set_random_seed`).
        let keep = keep_mask(input.raw_dim(), self.rate);
        let y = input * &keep;
        if ctx.records() {
            ctx.save_for_backward(Box::new(DropoutSaved(Some(keep))));
        }
        Ok(vec![y])
    }

    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let DropoutSaved(keep) = saved.get(name)?;
        let g = match (output_grads.first().and_then(Option::as_ref), keep) {
            (Some(g), Some(k)) => {
                crate::layer::check_gradient(name, 0, g, k.shape())?;
                Some(g * k)
            }
            (Some(g), None) => Some(g.to_owned()),
            (None, _) => None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::apply;
    use ndarray::array;

    /// Over 200,000 draws the dropped fraction is the rate and the mean is kept (binomial
    /// standard deviation of the fraction: √(0.3·0.7/200000) ≈ 0.001); the gradient goes
    /// through exactly the values kept, scaled as they were.
    #[test]
    fn drops_the_rate_in_training_and_keeps_the_mean() -> Result<()> {
        crate::set_random_seed(7);
        let mut d = Dropout::new(0.3);
        d.build(&[Shape::new(vec![None, Some(1000)])])?;
        let x = ArrayD::<f32>::ones(ndarray::IxDyn(&[200, 1000]));
        let mut ctx = CallContext::training();
        let y = d.call(&[x.view()], &mut ctx)?.swap_remove(0);
        let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
        assert!((dropped - 0.3).abs() < 0.005, "dropped {dropped}");
        let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / y.len() as f64;
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
        let saved = ctx.take_saved().expect("kept");
        let g = d.backward(&saved, &[Some(x.view())])?;
        assert_eq!(g.inputs[0].as_ref().expect("a gradient"), &y);
        // A second call draws again.
        let y2 = d
            .call(&[x.view()], &mut CallContext::training())?
            .swap_remove(0);
        assert_ne!(y, y2);
        Ok(())
    }

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
