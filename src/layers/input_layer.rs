//! Keras's `InputLayer`: where a Functional model's input enters.

use ndarray::{ArrayD, ArrayViewD};

use crate::error::{Error, Result};
use crate::layer::{check_input, single_input, weightless, CallContext, Layer, LayerName};
use crate::shape::Shape;

/// Keras's `InputLayer`, which `keras.Input(shape)` creates: a model's input, with its shape
/// (batch first, the batch usually unknown). It has no weights; called, it returns its input
/// after checking it fits.
///
/// It is made by [`Input::new`](crate::Input::new) for a Functional [`Model`](crate::Model),
/// and shows in the model's summary as `input_1 (InputLayer)`.
///
/// ```
/// use seqnn::{InputLayer, Layer, Shape};
/// let input = InputLayer::new(Shape::new(vec![None, Some(10), Some(8)]));
/// assert_eq!(input.class_name(), "InputLayer");
/// assert_eq!(input.batch_shape().to_string(), "(None, 10, 8)");
/// ```
#[derive(Debug, Clone)]
pub struct InputLayer {
    name: LayerName,
    batch_shape: Shape,
    trainable: bool,
    built: bool,
}

impl InputLayer {
    /// An input of `batch_shape` (batch first, `None` where unknown), named as tf_keras names
    /// inputs: `input_1`, `input_2`, ... (when the model is made).
    pub fn new(batch_shape: Shape) -> Self {
        InputLayer {
            name: LayerName::new("input"),
            batch_shape,
            trainable: true,
            built: true,
        }
    }

    /// The input's shape, batch first.
    pub fn batch_shape(&self) -> &Shape {
        &self.batch_shape
    }
}

impl Layer for InputLayer {
    fn name(&self) -> &str {
        self.name.get()
    }

    /// tf_keras numbers inputs from 1: `input_1`, `input_2`, ...
    fn ensure_named(&mut self) {
        self.name.ensure_one_based();
    }

    fn set_name(&mut self, name: String) {
        self.name.set(name);
    }

    fn trainable(&self) -> bool {
        self.trainable
    }

    fn set_trainable(&mut self, trainable: bool) {
        self.trainable = trainable;
    }

    fn clone_box(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }

    fn class_name(&self) -> &'static str {
        "InputLayer"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        Ok(Some(self.batch_shape.clone()))
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        if !inputs.is_empty() {
            return Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: "an InputLayer takes no input tensors".into(),
            });
        }
        Ok(vec![self.batch_shape.clone()])
    }

    weightless!();

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        _ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let x = single_input(self.name.get(), inputs)?;
        check_input(
            self.name.get(),
            &self.batch_shape.with_batch(None),
            x.shape(),
        )?;
        Ok(vec![x.to_owned()])
    }
}
