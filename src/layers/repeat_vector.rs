//! Keras's `RepeatVector`: a vector repeated into a sequence.

use ndarray::{ArrayD, ArrayViewD, Axis, Ix2};

use crate::error::{Error, Result};
use crate::layer::{
    check_rank, common_builders, input_shape_and_grad, layer_plumbing, single_input, single_shape,
    weightless, CallContext, Gradients, InputDecl, InputShape, Layer, LayerName, SavedForBackward,
};
use crate::limits;
use crate::shape::Shape;

/// Keras's `RepeatVector`: repeats each sample's vector `n` times, making a sequence of `n`
/// equal timesteps; the bridge from an encoder's last output to a decoder in seq2seq models.
///
/// ```text
/// y[b, t, :] = x[b, :]        for t in 0..n
/// ```
///
/// - Input: `(batch, features)`.
/// - Output: `(batch, n, features)`.
/// - No weights. A mask stops here, as in Keras.
///
/// ```
/// use seqnn::{RepeatVector, Sequential, SimpleRNN};
/// // model.add(SimpleRNN(6, input_shape=(5, 3)))
/// // model.add(RepeatVector(4))
/// // model.add(SimpleRNN(5, return_sequences=True))
/// let mut model = Sequential::new();
/// model.add(SimpleRNN::new(6).input_shape((5, 3)))?;
/// model.add(RepeatVector::new(4))?;
/// model.add(SimpleRNN::new(5).with_return_sequences(true))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 4, 5)");
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding, building or calling it fails with [`Error::IncompatibleRank`] (Keras's message) for
/// an input that is not 2-D.
#[derive(Debug, Clone)]
pub struct RepeatVector {
    name: LayerName,
    input: InputDecl,
    n: usize,
    trainable: bool,
    built: bool,
}

impl RepeatVector {
    /// A layer repeating its input `n` times, as Keras's `RepeatVector(n)`. As Keras, `n = 0`
    /// is taken, and gives sequences with no timesteps.
    pub fn new(n: usize) -> Self {
        RepeatVector {
            name: LayerName::new("repeat_vector"),
            input: InputDecl::default(),
            n,
            trainable: true,
            built: false,
        }
    }

    common_builders!("repeat_vector");

    /// How many times the input is repeated (Keras's `n`).
    pub fn n(&self) -> usize {
        self.n
    }
}

impl Layer for RepeatVector {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        "RepeatVector"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        let input = single_shape(name, inputs)?;
        check_rank(name, 2, input)?;
        Ok(vec![Shape::new(vec![
            input.dim(0),
            Some(self.n),
            input.dim(1),
        ])])
    }

    weightless!();

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let name = self.name.get();
        let input = single_input(name, inputs)?;
        let found = Shape::known(input.shape());
        let x = input
            .view()
            .into_dimensionality::<Ix2>()
            .map_err(|_| Error::IncompatibleRank {
                layer: self.name.get().to_string(),
                expected: 2,
                found: found.rank(),
                shape: found,
            })?;
        let (batch, features) = x.dim();
        limits::check_dims(name, "output", &[batch, self.n, features])?;
        let repeated = x
            .insert_axis(Axis(1))
            .broadcast((batch, self.n, features))
            .expect("a length-1 axis broadcasts to any length")
            .as_standard_layout()
            .into_owned();
        if ctx.records() {
            ctx.save_for_backward(Box::new(InputShape(vec![batch, features])));
        }
        Ok(vec![repeated.into_dyn()])
    }

    /// Each input value was repeated `n` times: its gradient is the sum of theirs.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let (_, g) = input_shape_and_grad(self.name.get(), saved, output_grads, |s| {
            Ok(vec![s[0], self.n, s[1]])
        })?;
        Ok(Gradients::of_input(g.sum_axis(Axis(1))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::apply;
    use ndarray::array;

    #[test]
    fn repeats_each_row_n_times() -> Result<()> {
        let mut rv = RepeatVector::new(3);
        assert!(!rv.is_built());
        assert_eq!(
            rv.build(&[Shape::new(vec![None, Some(2)])])?[0].to_string(),
            "(None, 3, 2)"
        );
        assert!(rv.is_built());
        let y = apply(&rv, array![[1.0_f32, 2.0], [3.0, 4.0]].into_dyn().view())?;
        // Row [1, 2] three times, then row [3, 4] three times.
        assert_eq!(
            y,
            array![
                [[1.0_f32, 2.0], [1.0, 2.0], [1.0, 2.0]],
                [[3.0, 4.0], [3.0, 4.0], [3.0, 4.0]]
            ]
            .into_dyn()
        );
        assert_eq!(rv.count_params(), 0);
        Ok(())
    }

    #[test]
    fn refuses_a_sequence_with_keras_message() {
        let rv = RepeatVector::new(3);
        let err = rv
            .compute_output_shape(&[Shape::new(vec![None, Some(5), Some(3)])])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Input 0 of layer \"repeat_vector\" is incompatible with the layer: expected ndim=2, \
             found ndim=3. Full shape received: (None, 5, 3)"
        );
        let x = ArrayD::<f32>::zeros(ndarray::IxDyn(&[1, 5, 3]));
        assert!(matches!(
            apply(&rv, x.view()),
            Err(Error::IncompatibleRank {
                expected: 2,
                found: 3,
                ..
            })
        ));
    }

    #[test]
    fn has_no_weights_to_set() {
        let mut rv = RepeatVector::new(2);
        assert!(rv.set_weights(&[]).is_ok());
        assert!(matches!(
            rv.set_weights(&[ArrayD::zeros(ndarray::IxDyn(&[1]))]),
            Err(Error::WeightCount {
                expected: 0,
                found: 1,
                ..
            })
        ));
    }
}
