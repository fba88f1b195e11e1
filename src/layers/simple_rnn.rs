//! Keras's `SimpleRNN`: the fully connected recurrence.

use ndarray::{Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewD};

use crate::activation::ActivationFn;
use crate::error::{Error, Result};
use crate::init::Initializer;
use crate::init::{sample1, sample2};
use crate::layers::recurrent::{
    cell_getters, check_cell_units, Cell, GateWeights, PreparedBackward, Recurrent,
    SequenceBackward,
};
use crate::linalg::gemm_acc;

/// Keras's `SimpleRNN`: a fully connected recurrent layer.
///
/// ```text
/// h_t = activation(x_t · kernel + h_{t-1} · recurrent_kernel + bias),   h_0 = 0
/// ```
///
/// - Input: `(batch, timesteps, input_dim)`.
/// - Output: `(batch, units)`, or `(batch, timesteps, units)` with
///   [`with_return_sequences`](Recurrent::with_return_sequences).
/// - Weights, in Keras's order and layout: `kernel (input_dim, units)`,
///   `recurrent_kernel (units, units)`, `bias (units,)` (absent without bias), so
///   `units·(input_dim + units + 1)` parameters.
///
/// Its own options, with Keras's defaults: `with_activation` (tanh), `with_use_bias` (true),
/// `with_kernel_initializer` (glorot_uniform), `with_recurrent_initializer` (orthogonal),
/// `with_bias_initializer` (zeros); each has a getter of Keras's name. The options every
/// recurrent layer has are listed below.
///
/// ```
/// use seqnn::{Sequential, SimpleRNN};
/// let mut model = Sequential::new();
/// model.add(SimpleRNN::new(3).input_shape((2, 10)))?;
/// assert_eq!(model.count_params()?, 42);
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding or building it fails with [`Error::InvalidArgument`] for zero units, and with
/// [`Error::IncompatibleRank`] for an input that is not 3-D.
#[doc = ""]
#[doc = include_str!("recurrent_options.md")]
#[allow(clippy::upper_case_acronyms)]
pub type SimpleRNN = Recurrent<SimpleRNNCell>;

/// The cell of [`SimpleRNN`]: its configuration, weights and one timestep.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone)]
pub struct SimpleRNNCell {
    units: usize,
    activation: ActivationFn,
    kernel_initializer: Initializer,
    recurrent_initializer: Initializer,
    bias_initializer: Initializer,
    weights: GateWeights,
}

impl SimpleRNNCell {
    /// A cell with `units` hidden units and Keras's defaults.
    pub fn new(units: usize) -> Self {
        SimpleRNNCell {
            units,
            activation: ActivationFn::Tanh,
            kernel_initializer: Initializer::GlorotUniform,
            recurrent_initializer: Initializer::Orthogonal,
            bias_initializer: Initializer::Zeros,
            weights: GateWeights::default(),
        }
    }

    /// The activation.
    pub fn activation(&self) -> ActivationFn {
        self.activation
    }

    /// Whether the cell has a bias.
    pub fn use_bias(&self) -> bool {
        self.weights.use_bias
    }

    /// The kernel's initializer.
    pub fn kernel_initializer(&self) -> Initializer {
        self.kernel_initializer
    }

    /// The recurrent kernel's initializer.
    pub fn recurrent_initializer(&self) -> Initializer {
        self.recurrent_initializer
    }

    /// The bias's initializer.
    pub fn bias_initializer(&self) -> Initializer {
        self.bias_initializer
    }
}

impl SimpleRNN {
    /// A SimpleRNN with `units` hidden units, as Keras's `SimpleRNN(units)`.
    ///
    /// Zero units is refused when the layer is added to a model or built.
    pub fn new(units: usize) -> Self {
        Recurrent::from_cell(SimpleRNNCell::new(units))
    }

    cell_getters! {
        activation: ActivationFn,
        use_bias: bool,
        kernel_initializer: Initializer,
        recurrent_initializer: Initializer,
        bias_initializer: Initializer,
    }

    /// Keras's `activation`. Default `tanh`.
    #[must_use]
    pub fn with_activation(mut self, activation: ActivationFn) -> Self {
        self.cell_mut().activation = activation;
        self
    }

    /// Keras's `use_bias`. Default true.
    #[must_use]
    pub fn with_use_bias(mut self, yes: bool) -> Self {
        self.cell_mut().weights.use_bias = yes;
        self
    }

    /// Keras's `kernel_initializer`. Default `glorot_uniform`.
    #[must_use]
    pub fn with_kernel_initializer(mut self, init: Initializer) -> Self {
        self.cell_mut().kernel_initializer = init;
        self
    }

    /// Keras's `recurrent_initializer`. Default `orthogonal`.
    #[must_use]
    pub fn with_recurrent_initializer(mut self, init: Initializer) -> Self {
        self.cell_mut().recurrent_initializer = init;
        self
    }

    /// Keras's `bias_initializer`. Default `zeros`.
    #[must_use]
    pub fn with_bias_initializer(mut self, init: Initializer) -> Self {
        self.cell_mut().bias_initializer = init;
        self
    }
}

/// A positive `units`, as Keras checks it.
pub(crate) fn check_units(layer: &str, units: usize) -> Result<()> {
    if units == 0 {
        return Err(Error::InvalidArgument {
            layer: layer.to_string(),
            message: "Received an invalid value for argument `units`, expected a positive \
                      integer, got 0."
                .to_string(),
        });
    }
    Ok(())
}

impl Cell for SimpleRNNCell {
    const CLASS_NAME: &'static str = "SimpleRNN";
    const BASE_NAME: &'static str = "simple_rnn";

    fn units(&self) -> usize {
        self.units
    }

    fn gate_width(&self) -> usize {
        self.units
    }

    fn validate(&self, layer: &str) -> Result<()> {
        check_cell_units(layer, self.units, 1)
    }

    fn weight_shapes(&self, input_dim: usize) -> Vec<(&'static str, Vec<usize>)> {
        self.weights.shapes(input_dim, self.units, self.units)
    }

    fn init_weights(&mut self, input_dim: usize) {
        self.weights.set(
            sample2(self.kernel_initializer, input_dim, self.units),
            sample2(self.recurrent_initializer, self.units, self.units),
            sample1(self.bias_initializer, self.units),
        );
    }

    fn without_weights(&self) -> Self {
        SimpleRNNCell {
            weights: self.weights.config_only(),
            ..*self
        }
    }

    fn weights(&self) -> Vec<ArrayViewD<'_, f32>> {
        self.weights.views()
    }

    fn assign_weights(&mut self, weights: &[ArrayD<f32>]) {
        self.weights.assign(weights);
    }

    fn input_projection(&self) -> Option<(ArrayView2<'_, f32>, Option<ArrayView1<'_, f32>>)> {
        self.weights.input_projection()
    }

    fn packed_input_kernel(&self) -> Option<&crate::layers::recurrent::PackedKernel> {
        self.weights.packed_kernel()
    }

    fn step(&self, z: &mut [f32], states: &mut [Array2<f32>], _scratch: &mut [f32], batch: usize) {
        self.step_keeping(z, states, batch, None);
    }

    fn unit_slice(&self, range: std::ops::Range<usize>) -> Option<Self> {
        Some(SimpleRNNCell {
            units: range.len(),
            weights: self.weights.unit_slice(1, self.units, range),
            ..*self
        })
    }

    fn step_slice(
        &self,
        h: &[f32],
        z: &mut [f32],
        states: &mut [Array2<f32>],
        _scratch: &mut [f32],
        batch: usize,
    ) {
        gemm_acc(h, self.weights.recurrent(), z, batch);
        self.activate(z, states);
    }

    /// A step keeps its pre-activation.
    fn keep_width(&self) -> usize {
        self.units
    }

    fn step_keep(
        &self,
        z: &mut [f32],
        states: &mut [Array2<f32>],
        _scratch: &mut [f32],
        batch: usize,
        keep: &mut [f32],
    ) {
        self.step_keeping(z, states, batch, Some(keep));
    }

    fn prepare_backward(&self) -> PreparedBackward {
        PreparedBackward::new(vec![self.weights.recurrent_transposed()])
    }

    /// ```text
    /// d_z = d_h_t ⊙ f'(pre_t)        d_h_{t-1} = d_z · recurrent_kernelᵀ
    /// ```
    fn step_backward(
        &self,
        prepared: &PreparedBackward,
        post: &[f32],
        keep: &[f32],
        _prev: &[ArrayView2<'_, f32>],
        _next: &[ArrayView2<'_, f32>],
        d_states: &mut [Array2<f32>],
        d_z: &mut [f32],
        _d_rec: &mut [f32],
        _scratch: &mut [f32],
        batch: usize,
    ) {
        let dh = d_states[0]
            .as_slice_mut()
            .expect("states are in standard layout");
        d_z.copy_from_slice(dh);
        self.activation.backward_slice(keep, post, d_z, self.units);
        dh.fill(0.0);
        gemm_acc(d_z, prepared.kernel(0), dh, batch);
    }

    fn weight_grads(&self, seq: SequenceBackward<'_>) -> Vec<ArrayD<f32>> {
        self.weights.grads(seq)
    }
}

impl SimpleRNNCell {
    /// `h_t = f(z + h_{t-1}·recurrent_kernel)`, keeping the pre-activation when training.
    fn step_keeping(
        &self,
        z: &mut [f32],
        states: &mut [Array2<f32>],
        batch: usize,
        keep: Option<&mut [f32]>,
    ) {
        let h = states[0].as_slice().expect("states are in standard layout");
        gemm_acc(h, self.weights.recurrent(), z, batch);
        match keep {
            Some(keep) => {
                keep.copy_from_slice(z);
                self.activate(z, states);
            }
            // Nothing reads z after an inference step: the activation goes straight into the
            // state, in one pass where an in-place one and a copy made two.
            None => {
                let h = states[0]
                    .as_slice_mut()
                    .expect("states are in standard layout");
                self.activation.apply_slice_into(z, h, self.units);
            }
        }
    }

    /// `h = activation(z)`, into `states[0]`.
    fn activate(&self, z: &mut [f32], states: &mut [Array2<f32>]) {
        self.activation.apply_slice(z, self.units);
        states[0]
            .as_slice_mut()
            .expect("states are in standard layout")
            .copy_from_slice(z);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::apply;
    use crate::layer::Layer;
    use crate::shape::Shape;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    #[test]
    fn one_unit_by_hand() -> Result<()> {
        let mut rnn = SimpleRNN::new(1).with_return_sequences(true);
        rnn.build(&[Shape::new(vec![None, None, Some(1)])])?;
        rnn.set_weights(&[
            array![[0.5_f32]].into_dyn(),
            array![[2.0_f32]].into_dyn(),
            array![0.0_f32].into_dyn(),
        ])?;
        let x = array![[[0.1_f32], [0.0]]];
        let y = apply(&rnn, x.view().into_dyn())?;
        // h1 = tanh(0.5·0.1 + 0) = tanh(0.05) = 0.0499584
        // h2 = tanh(0 + 2·0.0499584) = tanh(0.0999168) = 0.0995857
        assert_abs_diff_eq!(y[[0, 0, 0]], 0.049_958_4, epsilon = 1e-6);
        assert_abs_diff_eq!(y[[0, 1, 0]], 0.099_585_7, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn go_backwards_reads_the_last_step_first() -> Result<()> {
        let mut rnn = SimpleRNN::new(1)
            .with_go_backwards(true)
            .with_activation(ActivationFn::Linear);
        rnn.build(&[Shape::new(vec![None, None, Some(1)])])?;
        rnn.set_weights(&[
            array![[1.0_f32]].into_dyn(),
            array![[10.0_f32]].into_dyn(),
            array![0.0_f32].into_dyn(),
        ])?;
        let x = array![[[1.0_f32], [2.0]]];
        // Backwards: h1 = 2, h2 = 1 + 10·2 = 21 (forwards it would be 2 + 10·1 = 12).
        let y = apply(&rnn, x.view().into_dyn())?;
        assert_abs_diff_eq!(y[[0, 0]], 21.0);
        Ok(())
    }
}
