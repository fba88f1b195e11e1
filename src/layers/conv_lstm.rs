//! Keras's `ConvLSTM1D` and `ConvLSTM2D`: an LSTM whose products are convolutions, run by the
//! shared recurrence driver.
//!
//! Each call makes a `Step` (the driver's trait) for its input's spatial shape: the states are
//! the feature maps `(positions, filters)` flattened per batch row, the input projection of
//! every timestep is one convolution over all `timesteps · batch` frames (a matrix product over
//! patches), and each step adds the recurrent convolution of `h` (padding "same", stride 1)
//! into its rows of that projection, then applies the LSTM's gates at every position. The
//! driver does the rest, as for [`LSTM`](crate::LSTM): masks, `go_backwards`, sequences,
//! initial and stateful states, and backpropagation through time, where each step's recurrent
//! gradient is the transposed convolution of its gates' gradient and both kernels' gradients
//! are one product over the patches of every frame (`linalg::conv::kernel_grad`).

use ndarray::{Array1, Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, IxDyn};

use crate::activation::ActivationFn;
use crate::error::{Error, Result};
use crate::init::{sample1, Initializer};
use crate::layer::{
    check_gradient, check_specs, check_weights, common_builders, input_count, layer_plumbing,
    no_weights, owned1, CallContext, Gradients, InputDecl, Layer, LayerName, MaskPolicy,
    SavedForBackward, WeightSpec,
};
use crate::layers::conv::{axis_output, check_positive, plane, py_tuple, span, Dims, Padding};
use crate::layers::lstm::{lstm_gates, LstmGates};
use crate::layers::recurrent::{
    backward, run, run_rows_traced, InputGradient, PreparedBackward, RunOptions, SequenceBackward,
    Step, Trace, Widths,
};
use crate::limits;
use crate::linalg::conv::{
    column_sums, conv, conv_in, conv_input_grad_in, kernel_grad, pack, pack_transposed, ConvShape,
    Kernel, Transposed,
};
use crate::linalg::Packed;
use crate::shape::Shape;

/// Keras's `ConvLSTM1D` (`N = 1`, [`ConvLSTM1D`]) and `ConvLSTM2D` (`N = 2`,
/// [`ConvLSTM2D`]): an LSTM over a sequence of feature maps, whose input and recurrent
/// products are convolutions, with Keras's gate order i, f, c, o.
///
/// ```text
/// z   = conv(x_t, kernel) + bias + conv_same(h_{t-1}, recurrent_kernel)   (4·filters: i|f|c|o)
/// i   = recurrent_activation(z_i)    f = recurrent_activation(z_f)
/// o   = recurrent_activation(z_o)    c̃ = activation(z_c)
/// c_t = f · c_{t-1} + i · c̃          h_t = o · activation(c_t)            h_0 = c_0 = 0
/// ```
///
/// - Input: `(batch, timesteps, steps, channels)` (1-D) or `(batch, timesteps, height, width,
///   channels)` (2-D), channels last.
/// - Output: `(batch, *maps, filters)`, or `(batch, timesteps, *maps, filters)` with
///   `return_sequences`, where the maps' sizes follow the input convolution's `padding`,
///   `strides` and `dilation_rate` as [`Conv1D`](crate::Conv1D)'s do; under `return_state`,
///   the states `[h, c]`, each `(batch, *maps, filters)`.
/// - Weights, in Keras's order and layout: `kernel (*kernel_size, channels, 4·filters)`,
///   `recurrent_kernel (*kernel_size, filters, 4·filters)`, `bias (4·filters,)`.
/// - Mask: `(batch, timesteps)`, as an LSTM's: masked steps keep the previous states.
/// - Training: its backward pass gives the gradients of the input, of initial states given
///   as inputs and of the weights, through masks, `go_backwards`, sequences and states.
///
/// Options, with tf_keras's defaults (Keras 3 differs in one: its `recurrent_activation` is
/// sigmoid; a file says which): `strides` 1, `padding` valid (or same), `dilation_rate` 1,
/// `activation` tanh, `recurrent_activation` hard_sigmoid, `use_bias` true, `unit_forget_bias`
/// true, `return_sequences`, `return_state`, `go_backwards`, `stateful` false.
///
/// ```
/// use seqnn::{ConvLSTM2D, Padding, Sequential};
/// // model.add(ConvLSTM2D(4, (3, 3), padding="same", input_shape=(5, 8, 8, 1)))
/// let mut model = Sequential::new();
/// model.add(
///     ConvLSTM2D::new(4, (3, 3))
///         .with_padding(Padding::Same)
///         .input_shape([5, 8, 8, 1]),
/// )?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 8, 8, 4)");
/// // kernel (3, 3, 1, 16), recurrent_kernel (3, 3, 4, 16), bias (16,)
/// assert_eq!(model.count_params()?, 9 * 16 + 9 * 4 * 16 + 16);
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding or building it fails with Keras's messages for zero filters, a zero kernel size,
/// stride or dilation, strides and dilation both above 1, causal padding, an input of another
/// rank or with unknown channels, and "valid" windows longer than the input; with
/// [`Error::TooLarge`] when the weights, the outputs or a call's projection would exceed
/// [`limits`].
#[derive(Debug, Clone)]
pub struct ConvLSTM<const N: usize> {
    name: LayerName,
    /// Keras's regularizers and constraints of the weights, and the activity regularizer.
    rules: crate::train::WeightRules,
    input: InputDecl,
    trainable: bool,
    filters: usize,
    kernel_size: [usize; N],
    strides: [usize; N],
    padding: Padding,
    dilation_rate: [usize; N],
    activation: ActivationFn,
    recurrent_activation: ActivationFn,
    use_bias: bool,
    unit_forget_bias: bool,
    kernel_initializer: Initializer,
    recurrent_initializer: Initializer,
    bias_initializer: Initializer,
    return_sequences: bool,
    return_state: bool,
    go_backwards: bool,
    stateful: bool,
    /// The input channels, once built.
    channels: Option<usize>,
    /// The batch size a stateful layer was built for.
    batch: Option<usize>,
    /// A stateful layer's states, `(batch, positions · filters)` each; `None` for zeros.
    state: Option<Vec<Array2<f32>>>,
    values: Option<Box<Values>>,
}

/// The weights, and both kernels as the convolution's matrices, packed when wide enough.
#[derive(Debug, Clone)]
struct Values {
    kernel: ArrayD<f32>,
    recurrent: ArrayD<f32>,
    bias: Array1<f32>,
    kernel_packed: Vec<Packed>,
    recurrent_packed: Vec<Packed>,
}

/// Keras's `ConvLSTM1D`: over `(batch, timesteps, steps, channels)`. See [`ConvLSTM`].
///
/// ```
/// use seqnn::{ConvLSTM1D, Sequential};
/// let mut model = Sequential::new();
/// model.add(ConvLSTM1D::new(3, 2).with_return_sequences(true).input_shape([5, 7, 2]))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 5, 6, 3)");
/// # Ok::<(), seqnn::Error>(())
/// ```
pub type ConvLSTM1D = ConvLSTM<1>;

/// Keras's `ConvLSTM2D`: over `(batch, timesteps, height, width, channels)`. See
/// [`ConvLSTM`].
pub type ConvLSTM2D = ConvLSTM<2>;

impl ConvLSTM<1> {
    /// A ConvLSTM1D of `filters` feature maps and a window of `kernel_size` steps, with
    /// tf_keras's defaults, as Keras's `ConvLSTM1D(filters, kernel_size)`.
    pub fn new(filters: usize, kernel_size: usize) -> Self {
        Self::make("conv_lstm1d", filters, [kernel_size])
    }
}

impl ConvLSTM<2> {
    /// A ConvLSTM2D of `filters` feature maps and a `kernel_size` window, with tf_keras's
    /// defaults, as Keras's `ConvLSTM2D(filters, kernel_size)`.
    pub fn new(filters: usize, kernel_size: impl Into<Dims<2>>) -> Self {
        Self::make("conv_lstm2d", filters, kernel_size.into().0)
    }
}

impl<const N: usize> ConvLSTM<N> {
    fn make(base: &'static str, filters: usize, kernel_size: [usize; N]) -> Self {
        ConvLSTM {
            name: LayerName::new(base),
            rules: crate::train::WeightRules::new(),
            input: InputDecl::default(),
            trainable: true,
            filters,
            kernel_size,
            strides: [1; N],
            padding: Padding::Valid,
            dilation_rate: [1; N],
            activation: ActivationFn::Tanh,
            recurrent_activation: ActivationFn::HardSigmoid,
            use_bias: true,
            unit_forget_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            recurrent_initializer: Initializer::Orthogonal,
            bias_initializer: Initializer::Zeros,
            return_sequences: false,
            return_state: false,
            go_backwards: false,
            stateful: false,
            channels: None,
            batch: None,
            state: None,
            values: None,
        }
    }

    common_builders!(@names
        "`conv_lstm1d` or `conv_lstm2d`, then numbered: `conv_lstm2d_1`, ..."
    );

    crate::layer::rule_builders! {
        "kernel", "the input kernel" => with_kernel_regularizer, with_kernel_constraint;
        "recurrent", "the recurrent kernel" => with_recurrent_regularizer, with_recurrent_constraint;
        "bias", "the bias" => with_bias_regularizer, with_bias_constraint;
    }

    /// Keras's `strides` of the input convolution (an integer, or one per axis). Default 1.
    #[must_use]
    pub fn with_strides(mut self, strides: impl Into<Dims<N>>) -> Self {
        self.strides = strides.into().0;
        self
    }

    /// Keras's `padding` of the input convolution: valid (default) or same.
    #[must_use]
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Keras's `dilation_rate` of the input convolution. Default 1.
    #[must_use]
    pub fn with_dilation_rate(mut self, dilation: impl Into<Dims<N>>) -> Self {
        self.dilation_rate = dilation.into().0;
        self
    }

    /// Keras's `activation`, of the candidate and the output. Default tanh.
    #[must_use]
    pub fn with_activation(mut self, activation: ActivationFn) -> Self {
        self.activation = activation;
        self
    }

    /// Keras's `recurrent_activation`, of the gates. Default hard_sigmoid (tf_keras's; Keras
    /// 3's is sigmoid).
    #[must_use]
    pub fn with_recurrent_activation(mut self, activation: ActivationFn) -> Self {
        self.recurrent_activation = activation;
        self
    }

    /// Keras's `use_bias`. Default true.
    #[must_use]
    pub fn with_use_bias(mut self, yes: bool) -> Self {
        self.use_bias = yes;
        self
    }

    /// Keras's `unit_forget_bias`: the forget gate's bias starts at one. Default true.
    #[must_use]
    pub fn with_unit_forget_bias(mut self, yes: bool) -> Self {
        self.unit_forget_bias = yes;
        self
    }

    /// Keras's `kernel_initializer`. Default glorot_uniform.
    #[must_use]
    pub fn with_kernel_initializer(mut self, init: Initializer) -> Self {
        self.kernel_initializer = init;
        self
    }

    /// Keras's `recurrent_initializer`. Default orthogonal.
    #[must_use]
    pub fn with_recurrent_initializer(mut self, init: Initializer) -> Self {
        self.recurrent_initializer = init;
        self
    }

    /// Keras's `bias_initializer`. Default zeros.
    #[must_use]
    pub fn with_bias_initializer(mut self, init: Initializer) -> Self {
        self.bias_initializer = init;
        self
    }

    /// Keras's `return_sequences`: every timestep's maps. Default false.
    #[must_use]
    pub fn with_return_sequences(mut self, yes: bool) -> Self {
        self.return_sequences = yes;
        self
    }

    /// Keras's `return_state`: a call also returns the final `[h, c]`. Default false.
    #[must_use]
    pub fn with_return_state(mut self, yes: bool) -> Self {
        self.return_state = yes;
        self
    }

    /// Keras's `go_backwards`. Default false.
    #[must_use]
    pub fn with_go_backwards(mut self, yes: bool) -> Self {
        self.go_backwards = yes;
        self
    }

    /// Keras's `stateful`: the final states are the next call's initial states. It needs a
    /// fixed batch size. Default false.
    #[must_use]
    pub fn with_stateful(mut self, yes: bool) -> Self {
        self.stateful = yes;
        self
    }

    /// Keras's `filters`.
    pub fn filters(&self) -> usize {
        self.filters
    }

    /// Keras's `kernel_size`.
    pub fn kernel_size(&self) -> [usize; N] {
        self.kernel_size
    }

    /// Keras's `strides`.
    pub fn strides(&self) -> [usize; N] {
        self.strides
    }

    /// Keras's `padding`.
    pub fn padding(&self) -> Padding {
        self.padding
    }

    /// Keras's `dilation_rate`.
    pub fn dilation_rate(&self) -> [usize; N] {
        self.dilation_rate
    }

    /// Keras's `activation`.
    pub fn activation(&self) -> ActivationFn {
        self.activation
    }

    /// Keras's `recurrent_activation`.
    pub fn recurrent_activation(&self) -> ActivationFn {
        self.recurrent_activation
    }

    /// Keras's `use_bias`.
    pub fn use_bias(&self) -> bool {
        self.use_bias
    }

    /// Keras's `unit_forget_bias`.
    pub fn unit_forget_bias(&self) -> bool {
        self.unit_forget_bias
    }

    /// Keras's `kernel_initializer`.
    pub fn kernel_initializer(&self) -> Initializer {
        self.kernel_initializer
    }

    /// Keras's `recurrent_initializer`.
    pub fn recurrent_initializer(&self) -> Initializer {
        self.recurrent_initializer
    }

    /// Keras's `bias_initializer`.
    pub fn bias_initializer(&self) -> Initializer {
        self.bias_initializer
    }

    /// Keras's `return_sequences`.
    pub fn return_sequences(&self) -> bool {
        self.return_sequences
    }

    /// Keras's `return_state`.
    pub fn return_state(&self) -> bool {
        self.return_state
    }

    /// Keras's `go_backwards`.
    pub fn go_backwards(&self) -> bool {
        self.go_backwards
    }

    /// Keras's `stateful`.
    pub fn stateful(&self) -> bool {
        self.stateful
    }

    fn invalid(&self, message: String) -> Error {
        Error::InvalidArgument {
            layer: self.name.get().to_string(),
            message,
        }
    }

    /// The options alone, as Keras checks them.
    fn check_options(&self) -> Result<()> {
        let name = self.name.get();
        check_positive(name, "kernel_size", &self.kernel_size)?;
        check_positive(name, "strides", &self.strides)?;
        check_positive(name, "dilation_rate", &self.dilation_rate)?;
        if self.padding == Padding::Causal {
            return Err(self.invalid(
                "The `padding` argument must be one of \"valid\" or \"same\" for a ConvLSTM. \
                 Received: causal"
                    .into(),
            ));
        }
        if self.filters == 0 {
            return Err(self.invalid(
                "Invalid value for argument `filters`. Expected a strictly positive value. \
                 Received filters=0."
                    .into(),
            ));
        }
        let max = |v: &[usize; N]| v.iter().copied().max().unwrap_or(1);
        if max(&self.strides) > 1 && max(&self.dilation_rate) > 1 {
            return Err(self.invalid(format!(
                "`strides > 1` not supported in conjunction with `dilation_rate > 1`. \
                 Received: strides={} and dilation_rate={}",
                py_tuple(&self.strides),
                py_tuple(&self.dilation_rate)
            )));
        }
        for (&k, &d) in self.kernel_size.iter().zip(&self.dilation_rate) {
            span(name, k, d)?;
        }
        Ok(())
    }

    /// `4·filters`, checked.
    fn gates(&self) -> Result<usize> {
        limits::mul(self.name.get(), 4, self.filters)
    }

    fn kernel_shape(&self, channels: usize, gates: usize) -> Vec<usize> {
        let mut shape = self.kernel_size.to_vec();
        shape.extend([channels, gates]);
        shape
    }

    /// The input's channels after Keras's checks of its shape.
    fn check_input_shape(&self, input: &Shape) -> Result<usize> {
        let name = self.name.get();
        if input.rank() != N + 3 {
            return Err(Error::IncompatibleRank {
                layer: name.to_string(),
                expected: N + 3,
                found: input.rank(),
                shape: input.clone(),
            });
        }
        let Some(channels) = input.last() else {
            return Err(self.invalid(format!(
                "The channel dimension of the inputs should be defined. Found `None` in {input}"
            )));
        };
        if let Some(built) = self.channels.filter(|&c| c != channels) {
            let mut accepted = vec![None; N + 2];
            accepted.push(Some(built));
            return Err(Error::IncompatibleShape {
                layer: name.to_string(),
                expected: Shape::new(accepted),
                found: input.clone(),
            });
        }
        if self.stateful && input.dim(0).is_none() {
            return Err(self.invalid(format!(
                "If a RNN is stateful, it needs to know its batch size. Specify the batch size \
                 of your input tensors: give the first layer a batch_input_shape. Input shape \
                 received: {input}"
            )));
        }
        Ok(channels)
    }

    /// The maps' lengths and the input convolution's padding before, per axis (`None` where
    /// a length is unknown), or Keras's error when a window does not fit.
    fn maps(
        &self,
        spatial: &[Option<usize>],
        input: &Shape,
    ) -> Result<Vec<Option<(usize, usize)>>> {
        let mut out = Vec::with_capacity(N);
        for (a, &len) in spatial.iter().enumerate().take(N) {
            let span = span(self.name.get(), self.kernel_size[a], self.dilation_rate[a])?;
            let Some(len) = len else {
                out.push(None);
                continue;
            };
            match axis_output(len, span, self.strides[a], self.padding) {
                Some(o) => out.push(Some(o)),
                None => {
                    return Err(self.invalid(format!(
                        "Computed output size would be zero or negative. Received `inputs \
                         shape={input}`, `kernel_size={}`, `dilation_rate={}`, `strides={}`, \
                         `padding={}`.",
                        py_tuple(&self.kernel_size),
                        py_tuple(&self.dilation_rate),
                        py_tuple(&self.strides),
                        self.padding
                    )))
                }
            }
        }
        Ok(out)
    }

    /// The output shapes for an input shape whose checks passed.
    fn output_shapes(&self, input: &Shape, maps: &[Option<(usize, usize)>]) -> Vec<Shape> {
        let batch = input.dim(0);
        let mut map: Vec<Option<usize>> = maps.iter().map(|o| o.map(|(l, _)| l)).collect();
        map.push(Some(self.filters));
        let mut out = vec![batch];
        if self.return_sequences {
            out.push(input.dim(1));
        }
        out.extend(&map);
        let mut shapes = vec![Shape::new(out)];
        if self.return_state {
            let mut state = vec![batch];
            state.extend(&map);
            shapes.extend([Shape::new(state.clone()), Shape::new(state)]);
        }
        shapes
    }

    /// The step of a call on maps of `spatial` input lengths.
    fn step_for<'a>(
        &'a self,
        spatial: [usize; N],
        channels: usize,
        v: &'a Values,
    ) -> Result<ConvStep<'a>> {
        let name = self.name.get();
        let gates = self.gates()?;
        let mut out_len = [0; N];
        let mut pad = [0; N];
        let mut rec_pad = [0; N];
        for a in 0..N {
            let span = span(name, self.kernel_size[a], self.dilation_rate[a])?;
            let (len, p) = axis_output(spatial[a], span, self.strides[a], self.padding)
                .ok_or_else(|| {
                    self.invalid(format!(
                        "Computed output size would be zero or negative for maps of {}",
                        py_tuple(&spatial)
                    ))
                })?;
            out_len[a] = len;
            pad[a] = p;
            // The recurrent convolution: "same", stride 1, no dilation.
            rec_pad[a] =
                axis_output(len, self.kernel_size[a], 1, Padding::Same).map_or(0, |(_, p)| p);
        }
        let input = ConvShape {
            input: plane(spatial, 1),
            channels,
            output: plane(out_len, 1),
            kernel: plane(self.kernel_size, 1),
            strides: plane(self.strides, 1),
            dilation: plane(self.dilation_rate, 1),
            pad: plane(pad, 0),
            groups: 1,
            filters: gates,
        };
        let recurrent = ConvShape {
            input: plane(out_len, 1),
            channels: self.filters,
            output: plane(out_len, 1),
            kernel: plane(self.kernel_size, 1),
            strides: [1, 1],
            dilation: [1, 1],
            pad: plane(rec_pad, 0),
            groups: 1,
            filters: gates,
        };
        let positions = limits::mul(name, out_len.iter().product::<usize>(), 1)?;
        Ok(ConvStep {
            filters: self.filters,
            activation: self.activation,
            recurrent_activation: self.recurrent_activation,
            values: v,
            input,
            recurrent,
            positions,
            maps: out_len.to_vec(),
        })
    }

    fn matrix(kernel: &ArrayD<f32>, gates: usize) -> ArrayView2<'_, f32> {
        let rows = kernel.len() / gates.max(1);
        kernel
            .view()
            .into_shape_with_order((rows, gates))
            .expect("Keras's kernel is (kernel positions · channels, 4·filters)")
    }

    fn with_values(
        &self,
        kernel: ArrayD<f32>,
        recurrent: ArrayD<f32>,
        bias: Array1<f32>,
    ) -> Values {
        let gates = 4 * self.filters;
        Values {
            kernel_packed: pack(Self::matrix(&kernel, gates), 1),
            recurrent_packed: pack(Self::matrix(&recurrent, gates), 1),
            kernel,
            recurrent,
            bias,
        }
    }

    /// The flat `(batch, positions · filters)` state from a `(batch, *maps, filters)` array.
    fn flat_state(
        &self,
        s: &ArrayViewD<'_, f32>,
        batch: usize,
        maps: &[usize],
    ) -> Result<Array2<f32>> {
        let mut expected = vec![batch];
        expected.extend(maps);
        expected.push(self.filters);
        if s.shape() != expected.as_slice() {
            return Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: format!(
                    "initial_state must be 2 arrays of shape {}, got {}",
                    Shape::known(&expected),
                    Shape::known(s.shape())
                ),
            });
        }
        let width = s.len() / batch.max(1);
        Ok(s.as_standard_layout()
            .into_owned()
            .into_shape_with_order((batch, width))
            .expect("the same values in two axes"))
    }
}

/// What a recording call of a [`ConvLSTM`] keeps: the driver's trace, the input's shape (the
/// step is made again from its spatial lengths), how many initial states the call took as
/// inputs (0: zeros or carried states) and the shape of each output.
#[derive(Debug)]
struct ConvLSTMSaved {
    trace: Trace,
    input_shape: Vec<usize>,
    initial_inputs: usize,
    output_shapes: Vec<Vec<usize>>,
    /// Whether the caller needs the gradient of the input sequence.
    input_gradient: bool,
}

/// One call's step of a [`ConvLSTM`]: both convolutions for its maps' sizes.
struct ConvStep<'a> {
    filters: usize,
    activation: ActivationFn,
    recurrent_activation: ActivationFn,
    values: &'a Values,
    input: ConvShape,
    recurrent: ConvShape,
    positions: usize,
    maps: Vec<usize>,
}

impl Step for ConvStep<'_> {
    fn widths(&self) -> Widths {
        let f = self.filters;
        Widths {
            units: self.positions * f,
            states: 2,
            gates: self.positions * 4 * f,
            scratch: self.recurrent.scratch_per_sample(),
        }
    }

    fn project(&self, x: ArrayView2<'_, f32>, mut z: ArrayViewMut2<'_, f32>) {
        let frames = x.nrows();
        let x = x.as_standard_layout();
        let kernel = Kernel {
            matrix: ConvLSTM::<1>::matrix(&self.values.kernel, self.input.filters),
            packed: &self.values.kernel_packed,
            groups: 1,
        };
        let xs = x.as_slice().expect("a standard-layout copy");
        let zs = z.as_slice_mut().expect("z is in standard layout");
        // The convolution adds into z, whose values on entry are unspecified.
        zs.fill(0.0);
        conv(xs, frames, &self.input, kernel, zs);
        if !self.values.bias.is_empty() {
            let b = self.values.bias.as_slice().expect("a 1-D bias");
            for row in zs.chunks_exact_mut(b.len()) {
                row.iter_mut().zip(b).for_each(|(v, &bv)| *v += bv);
            }
        }
    }

    fn advance(
        &self,
        z: &mut [f32],
        states: &mut [Array2<f32>],
        scratch: &mut [f32],
        batch: usize,
    ) {
        self.advance_keeping(z, states, scratch, batch, None);
    }

    /// A step keeps what the LSTM's gates keep at every position ([`LstmGates::keep_width`]).
    fn keep_width(&self) -> usize {
        self.positions * self.gates().keep_width()
    }

    /// ConvLSTM has no `recurrent_dropout`: its calls give the driver no mask.
    fn advance_keep(
        &self,
        z: &mut [f32],
        states: &mut [Array2<f32>],
        scratch: &mut [f32],
        batch: usize,
        keep: &mut [f32],
        recurrent_dropout: Option<ArrayView2<'_, f32>>,
    ) {
        debug_assert!(
            recurrent_dropout.is_none(),
            "ConvLSTM draws no recurrent dropout"
        );
        self.advance_keeping(z, states, scratch, batch, Some(keep));
    }

    /// The recurrent kernel transposed and packed, for each step's input gradient.
    fn prepare_backward(&self) -> PreparedBackward {
        PreparedBackward::new(
            pack_transposed(self.recurrent_matrix(), 1)
                .into_iter()
                .collect(),
        )
    }

    fn recurrent_grad_width(&self) -> usize {
        0
    }

    /// The LSTM's gates at every position, then the recurrent convolution's patches.
    fn backward_scratch_width(&self) -> usize {
        2 * self.filters * self.positions + self.recurrent.scratch_per_sample()
    }

    /// The LSTM's gates at every position ([`LstmGates::backward`]), then the gradient of the
    /// previous `h` through the recurrent convolution: `d_z · recurrent_kernelᵀ`, folded back
    /// onto the maps.
    fn step_backward(
        &self,
        prepared: &PreparedBackward,
        post: &[f32],
        keep: &[f32],
        prev: &[ArrayView2<'_, f32>],
        next: &[ArrayView2<'_, f32>],
        d_states: &mut [Array2<f32>],
        d_z: &mut [f32],
        _d_rec: &mut [f32],
        scratch: &mut [f32],
        batch: usize,
        recurrent_dropout: Option<ArrayView2<'_, f32>>,
    ) {
        debug_assert!(
            recurrent_dropout.is_none(),
            "ConvLSTM draws no recurrent dropout"
        );
        let (gates, patches) = scratch.split_at_mut(batch * 2 * self.filters * self.positions);
        let dh = self
            .gates()
            .backward(post, keep, prev, next, d_states, d_z, gates);
        dh.fill(0.0);
        let kernel = Transposed {
            matrix: self.recurrent_matrix(),
            packed: prepared.get(0),
            groups: 1,
        };
        conv_input_grad_in(d_z, batch, &self.recurrent, kernel, dh, patches);
    }

    /// Both kernels' gradients are one product over the patches of every frame (`x_t` for
    /// the kernel, `h_{t-1}` for the recurrent kernel) with `d_z`; the input's is the input
    /// convolution's transpose.
    fn grads(
        &self,
        seq: SequenceBackward<'_>,
        input: Option<InputGradient<'_>>,
    ) -> Vec<ArrayD<f32>> {
        // The loop's column sums are over rows of whole maps: the bias's gradient sums each
        // filter over the positions too, below.
        let (xt, h_prev, d_z) = (seq.xt, seq.h_prev, seq.d_z);
        let frames = xt.nrows();
        let (xt, h_prev, d_z) = (
            xt.as_standard_layout(),
            h_prev.as_standard_layout(),
            d_z.as_standard_layout(),
        );
        let dz = d_z.as_slice().expect("standard layout");
        let mut dx = input.as_ref().map(|_| Array2::<f32>::zeros(xt.raw_dim()));
        let dk = kernel_grad(
            xt.as_slice().expect("standard layout"),
            frames,
            &self.input,
            &self.values.kernel,
            dz,
            dx.as_mut()
                .map(|dx| dx.as_slice_mut().expect("standard layout")),
        );
        if let (Some(mut input), Some(dx)) = (input, &dx) {
            input.assign_time_major(dx.view());
        }
        let h_prev = h_prev.as_slice().expect("standard layout");
        let dr = kernel_grad(
            h_prev,
            frames,
            &self.recurrent,
            &self.values.recurrent,
            dz,
            None,
        );
        let mut weights = vec![dk, dr];
        if !self.values.bias.is_empty() {
            weights.push(column_sums(dz, self.input.filters).into_dyn());
        }
        weights
    }
}

impl ConvStep<'_> {
    /// The recurrent kernel as the convolution's `(kernel positions · filters, 4·filters)`
    /// matrix.
    fn recurrent_matrix(&self) -> ArrayView2<'_, f32> {
        ConvLSTM::<1>::matrix(&self.values.recurrent, self.recurrent.filters)
    }

    fn gates(&self) -> LstmGates {
        LstmGates {
            units: self.filters,
            activation: self.activation,
            recurrent_activation: self.recurrent_activation,
        }
    }

    /// One step, keeping what the backward pass needs when training.
    fn advance_keeping(
        &self,
        z: &mut [f32],
        states: &mut [Array2<f32>],
        scratch: &mut [f32],
        batch: usize,
        keep: Option<&mut [f32]>,
    ) {
        let f = self.filters;
        let [h, c] = states else {
            unreachable!("a ConvLSTM carries two states");
        };
        let h = h.as_slice_mut().expect("states are in standard layout");
        let c = c.as_slice_mut().expect("states are in standard layout");
        let kernel = Kernel {
            matrix: self.recurrent_matrix(),
            packed: &self.values.recurrent_packed,
            groups: 1,
        };
        conv_in(h, batch, &self.recurrent, kernel, z, scratch);
        lstm_gates(z, h, c, f, self.activation, self.recurrent_activation, keep);
    }
}

impl<const N: usize> Layer for ConvLSTM<N> {
    layer_plumbing!();
    crate::layer::rule_methods!();

    fn class_name(&self) -> &'static str {
        if N == 1 {
            "ConvLSTM1D"
        } else {
            "ConvLSTM2D"
        }
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.check_options()?;
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        let Some((input, states)) = inputs.split_first() else {
            return Err(input_count(name, 1, 0));
        };
        self.check_options()?;
        let channels = self.check_input_shape(input)?;
        let maps = self.maps(&input.dims()[2..2 + N], input)?;
        let gates = self.gates()?;
        check_specs(
            name,
            &[
                ("kernel", &self.kernel_shape(channels, gates)),
                ("recurrent_kernel", &self.kernel_shape(self.filters, gates)),
                ("bias", &[gates]),
            ],
        )?;
        let shapes = self.output_shapes(input, &maps);
        for s in &shapes {
            limits::check_tensor(name, "output", s)?;
        }
        if !states.is_empty() && states.len() != 2 {
            return Err(input_count(name, 3, inputs.len()));
        }
        let state_shape = shapes.last().cloned().map(|_| {
            let mut d = vec![input.dim(0)];
            d.extend(maps.iter().map(|o| o.map(|(l, _)| l)));
            d.push(Some(self.filters));
            Shape::new(d)
        });
        for s in states {
            let fits = state_shape.as_ref().is_some_and(|e| {
                s.rank() == e.rank()
                    && s.dims()
                        .iter()
                        .zip(e.dims())
                        .skip(1)
                        .all(|(a, b)| a.is_none() || b.is_none() || a == b)
            });
            if !fits {
                return Err(Error::IncompatibleShape {
                    layer: name.to_string(),
                    expected: state_shape
                        .clone()
                        .unwrap_or_else(|| Shape::new(Vec::new())),
                    found: s.clone(),
                });
            }
        }
        Ok(shapes)
    }

    fn build(&mut self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let out = self.compute_output_shape(inputs)?;
        if self.channels.is_none() {
            self.channels = inputs[0].last();
        }
        if self.stateful {
            self.batch = inputs[0].dim(0);
        }
        Ok(out)
    }

    fn is_built(&self) -> bool {
        self.channels.is_some()
    }

    fn weight_specs(&self) -> Vec<WeightSpec> {
        let Some(c) = self.channels else {
            return Vec::new();
        };
        let gates = 4 * self.filters;
        let mut w = vec![
            WeightSpec::new("kernel", self.kernel_shape(c, gates)),
            WeightSpec::new("recurrent_kernel", self.kernel_shape(self.filters, gates)),
        ];
        if self.use_bias {
            w.push(WeightSpec::new("bias", vec![gates]));
        }
        w
    }

    fn initialize(&mut self) {
        let Some(c) = self.channels else {
            return;
        };
        let (f, gates) = (self.filters, 4 * self.filters);
        let kernel = self.kernel_initializer.sample(&self.kernel_shape(c, gates));
        let recurrent = self
            .recurrent_initializer
            .sample(&self.kernel_shape(f, gates));
        let bias = if !self.use_bias {
            Array1::zeros(0)
        } else if self.unit_forget_bias {
            let mut b = sample1(self.bias_initializer, gates);
            b.slice_mut(ndarray::s![f..2 * f]).fill(1.0);
            b
        } else {
            sample1(self.bias_initializer, gates)
        };
        self.values = Some(Box::new(self.with_values(kernel, recurrent, bias)));
    }

    fn weights(&self) -> Vec<ArrayViewD<'_, f32>> {
        let Some(v) = self.values.as_deref() else {
            return Vec::new();
        };
        let mut w = vec![v.kernel.view(), v.recurrent.view()];
        if self.use_bias {
            w.push(v.bias.view().into_dyn());
        }
        w
    }

    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        if !self.is_built() {
            return Err(no_weights(self.name.get()));
        }
        check_weights(self.name.get(), &self.weight_specs(), weights)?;
        let kernel = weights[0].as_standard_layout().into_owned();
        let recurrent = weights[1].as_standard_layout().into_owned();
        let bias = if self.use_bias {
            owned1(&weights[2])
        } else {
            Array1::zeros(0)
        };
        self.values = Some(Box::new(self.with_values(kernel, recurrent, bias)));
        Ok(())
    }

    fn output_count(&self) -> usize {
        if self.return_state {
            3
        } else {
            1
        }
    }

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let name = self.name.get();
        let Some((x, initial)) = inputs.split_first() else {
            return Err(input_count(name, 1, 0));
        };
        let channels = self.channels.ok_or_else(|| no_weights(name))?;
        let v = self.values.as_deref().ok_or_else(|| no_weights(name))?;
        self.check_input_shape(&Shape::known(x.shape()))?;
        let shape = x.shape().to_vec();
        crate::layer::check_not_empty(name, &shape)?;
        let (batch, timesteps) = (shape[0], shape[1]);
        if let Some(expected) = self.batch {
            if batch != expected {
                return Err(crate::stateful::batch_mismatch(name, expected, batch));
            }
        }
        let mut spatial = [0; N];
        spatial.copy_from_slice(&shape[2..2 + N]);
        let step = self.step_for(spatial, channels, v)?;
        let w = step.widths();
        // The projection of every frame, the step's scratch and the outputs, before any of
        // them is allocated.
        limits::check_dims(name, "input projection", &[timesteps, batch, w.gates])?;
        limits::check_dims(name, "scratch", &[batch, w.scratch.max(1)])?;
        limits::check_dims(name, "output", &[batch, timesteps, w.units])?;
        let features = shape[2..].iter().product::<usize>();
        let x3 = x
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((batch, timesteps, features))
            .expect("the same values in three axes");
        let carried = if self.stateful {
            ctx.take_states()
        } else {
            None
        };
        let initial: Vec<Array2<f32>> = if !initial.is_empty() {
            if initial.len() != 2 {
                return Err(input_count(name, 3, inputs.len()));
            }
            initial
                .iter()
                .map(|s| self.flat_state(s, batch, &step.maps))
                .collect::<Result<_>>()?
        } else {
            carried.unwrap_or_default()
        };
        let mask = ctx.input_mask(0);
        if let Some(m) = mask {
            if m.dim() != (batch, timesteps) {
                return Err(self.invalid(format!(
                    "the mask must be (batch, timesteps) = ({batch}, {timesteps}), got {}",
                    Shape::known(m.shape())
                )));
            }
        }
        let views: Vec<ArrayView2<'_, f32>> = initial.iter().map(|s| s.view()).collect();
        let options = RunOptions {
            go_backwards: self.go_backwards,
            return_sequences: self.return_sequences,
            zero_output_for_mask: false,
        };
        let (output, states, trace) = if ctx.records() {
            // One block of rows, keeping what the backward pass needs.
            run_rows_traced(&step, x3.view(), &views, mask, options, true, None)
        } else {
            let (output, states) = run(&step, x3.view(), &views, mask, options);
            (output, states, None)
        };
        let map_shape = |lead: &[usize]| -> Vec<usize> {
            let mut d = lead.to_vec();
            d.extend(&step.maps);
            d.push(self.filters);
            d
        };
        let out_shape = if self.return_sequences {
            map_shape(&[batch, timesteps])
        } else {
            map_shape(&[batch])
        };
        let mut outputs = vec![output
            .into_shape_with_order(IxDyn(&out_shape))
            .expect("the driver's output holds the maps")];
        if self.return_state {
            for s in &states {
                outputs.push(
                    s.clone()
                        .into_shape_with_order(IxDyn(&map_shape(&[batch])))
                        .expect("a state holds the maps"),
                );
            }
        }
        let mut masks = vec![None; outputs.len()];
        if self.return_sequences {
            masks[0] = mask.map(|m| m.to_owned());
        }
        ctx.set_output_masks(masks);
        if self.stateful {
            ctx.set_states(states);
        }
        if let Some(trace) = trace {
            ctx.save_for_backward(Box::new(ConvLSTMSaved {
                trace,
                input_shape: shape,
                initial_inputs: inputs.len() - 1,
                output_shapes: outputs.iter().map(|o| o.shape().to_vec()).collect(),
                input_gradient: ctx.needs_input_gradient(0),
            }));
        }
        Ok(outputs)
    }

    /// Backpropagation through time by the shared driver, as for [`LSTM`](crate::LSTM), with
    /// the step's convolutions in place of its products.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let saved: &ConvLSTMSaved = saved.get(name)?;
        let (Some(channels), Some(v)) = (self.channels, self.values.as_deref()) else {
            return Err(no_weights(name));
        };
        let shape = &saved.input_shape;
        let (batch, timesteps) = (shape[0], shape[1]);
        let mut spatial = [0; N];
        spatial.copy_from_slice(&shape[2..2 + N]);
        let step = self.step_for(spatial, channels, v)?;
        let units = step.widths().units;
        // Each output's gradient, checked against the output's shape, in standard layout.
        let mut grads = Vec::with_capacity(saved.output_shapes.len());
        for (i, expected) in saved.output_shapes.iter().enumerate() {
            grads.push(match output_grads.get(i).and_then(Option::as_ref) {
                Some(g) => {
                    check_gradient(name, i, g, expected)?;
                    Some(g.as_standard_layout().into_owned())
                }
                None => None,
            });
        }
        // The driver's flat rows: the maps of a state are one row of `units` values.
        fn rows(g: &ArrayD<f32>, batch: usize, units: usize) -> ArrayView2<'_, f32> {
            g.view()
                .into_shape_with_order((batch, units))
                .expect("a state's maps fill a row")
        }
        let (d_seq, d_last) = match &grads[0] {
            Some(g) if self.return_sequences => (
                Some(
                    g.view()
                        .into_shape_with_order((batch, timesteps, units))
                        .expect("every step's maps fill a row"),
                ),
                None,
            ),
            Some(g) => (None, Some(rows(g, batch, units))),
            None => (None, None),
        };
        let d_final: Vec<_> = grads[1..]
            .iter()
            .map(|g| g.as_ref().map(|g| rows(g, batch, units)))
            .collect();
        let g = backward(
            &step,
            std::slice::from_ref(&saved.trace),
            d_seq,
            d_last,
            &d_final,
            saved.input_gradient,
        );
        let mut inputs = vec![g.input.map(|d| {
            d.into_shape_with_order(IxDyn(shape))
                .expect("the input's values")
        })];
        if saved.initial_inputs > 0 {
            let mut state = vec![batch];
            state.extend(&step.maps);
            state.push(self.filters);
            for d in g.initial {
                inputs.push(Some(
                    d.into_shape_with_order(IxDyn(&state))
                        .expect("a state's maps"),
                ));
            }
        }
        Ok(Gradients {
            inputs,
            weights: g.weights,
        })
    }

    fn mask_policy(&self) -> MaskPolicy {
        if self.return_sequences {
            MaskPolicy::Propagate
        } else {
            MaskPolicy::Drop
        }
    }

    fn working_elements(&self, inputs: &[Shape]) -> usize {
        // The input copy and the projection of every frame.
        let Some(input) = inputs.first() else {
            return 0;
        };
        let per_sample = limits::known_elements(&input.with_batch(Some(1))).unwrap_or(usize::MAX);
        let out = self
            .compute_output_shape(inputs)
            .ok()
            .and_then(|s| limits::known_elements(&s[0].with_batch(Some(1))))
            .unwrap_or(0);
        per_sample.saturating_add(out.saturating_mul(4))
    }

    fn is_stateful(&self) -> bool {
        self.stateful
    }

    fn states(&self) -> Vec<Array2<f32>> {
        self.state.clone().unwrap_or_default()
    }

    fn set_states(&mut self, states: Vec<Array2<f32>>) -> Result<()> {
        if !self.stateful {
            return if states.is_empty() {
                Ok(())
            } else {
                Err(self.invalid("this layer is not stateful, so it takes no states".into()))
            };
        }
        if states.len() != 2 || states.iter().any(|s| Some(s.nrows()) != self.batch) {
            return Err(self.invalid(format!(
                "a stateful ConvLSTM takes 2 states of {} rows",
                self.batch.unwrap_or(0)
            )));
        }
        self.state = Some(states);
        Ok(())
    }

    fn reset_states(&mut self) {
        self.state = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::{Array, Array5};

    #[test]
    fn one_filter_one_pixel_is_an_lstm_step() -> Result<()> {
        // A 1×1 kernel on a 1×1 map is a one-unit LSTM: the by-hand step of LSTM's test.
        let mut layer = ConvLSTM2D::new(1, (1, 1))
            .with_recurrent_activation(ActivationFn::Sigmoid)
            .with_return_state(true);
        layer.build(&[Shape::new(vec![None, None, Some(1), Some(1), Some(1)])])?;
        layer.set_weights(&[
            Array::from_shape_vec(IxDyn(&[1, 1, 1, 4]), vec![1.0; 4]).unwrap(),
            Array::zeros(IxDyn(&[1, 1, 1, 4])),
            Array::zeros(IxDyn(&[4])),
        ])?;
        let x = Array5::from_elem((1, 1, 1, 1, 1), 0.5_f32).into_dyn();
        let out = layer.call(&[x.view()], &mut CallContext::inference())?;
        // i = f = o = σ(0.5) = 0.6224593; c̃ = tanh(0.5) = 0.4621172
        // c = 0.2876491; h = 0.6224593 · tanh(0.2876491) = 0.1742697
        assert_eq!(out[0].shape(), &[1, 1, 1, 1]);
        assert_abs_diff_eq!(out[0][[0, 0, 0, 0]], 0.174_269_7, epsilon = 1e-6);
        assert_abs_diff_eq!(out[2][[0, 0, 0, 0]], 0.287_649_1, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn one_pixel_backward_is_the_lstm_backward() -> Result<()> {
        // A 1×1 kernel on 1×1 maps is an LSTM of `filters` units, so its gradients, through
        // a mask and go_backwards, are the LSTM's with the same weights.
        let (c, f) = (3, 2);
        let values = |n: usize, seed: f32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i as f32 + seed) * 0.37).sin() * 0.5)
                .collect()
        };
        let kernel = values(c * 4 * f, 1.0);
        let recurrent = values(f * 4 * f, 2.0);
        let bias = values(4 * f, 3.0);
        let mut conv = ConvLSTM2D::new(f, (1, 1))
            .with_recurrent_activation(ActivationFn::Sigmoid)
            .with_return_sequences(true)
            .with_go_backwards(true);
        conv.build(&[Shape::new(vec![None, None, Some(1), Some(1), Some(c)])])?;
        conv.set_weights(&[
            Array::from_shape_vec(IxDyn(&[1, 1, c, 4 * f]), kernel.clone()).unwrap(),
            Array::from_shape_vec(IxDyn(&[1, 1, f, 4 * f]), recurrent.clone()).unwrap(),
            Array::from_shape_vec(IxDyn(&[4 * f]), bias.clone()).unwrap(),
        ])?;
        let mut lstm = crate::LSTM::new(f)
            .with_return_sequences(true)
            .with_go_backwards(true);
        lstm.build(&[Shape::new(vec![None, None, Some(c)])])?;
        lstm.set_weights(&[
            Array::from_shape_vec(IxDyn(&[c, 4 * f]), kernel).unwrap(),
            Array::from_shape_vec(IxDyn(&[f, 4 * f]), recurrent).unwrap(),
            Array::from_shape_vec(IxDyn(&[4 * f]), bias).unwrap(),
        ])?;
        let (batch, t) = (2, 3);
        let x = Array::from_shape_vec(IxDyn(&[batch, t, c]), values(batch * t * c, 4.0)).unwrap();
        let up = Array::from_shape_vec(IxDyn(&[batch, t, f]), values(batch * t * f, 5.0)).unwrap();
        let mask = ndarray::array![[true, true, false], [false, true, true]];
        let run = |layer: &dyn Layer, x: ArrayD<f32>, up: ArrayD<f32>| -> Result<Gradients> {
            let mut ctx = CallContext::training().with_masks(vec![Some(mask.clone())]);
            layer.call(&[x.view()], &mut ctx)?;
            let saved = ctx.take_saved().expect("a training call keeps its trace");
            layer.backward(&saved, &[Some(up.view())])
        };
        let to_maps = |a: &ArrayD<f32>, lead: &[usize]| {
            let mut shape = lead.to_vec();
            shape.extend([1, 1, a.shape()[a.ndim() - 1]]);
            a.clone().into_shape_with_order(IxDyn(&shape)).unwrap()
        };
        let ours = run(&conv, to_maps(&x, &[batch, t]), to_maps(&up, &[batch, t]))?;
        let theirs = run(&lstm, x, up)?;
        let dx = theirs.inputs[0].as_ref().unwrap();
        assert_abs_diff_eq!(
            ours.inputs[0].as_ref().unwrap().as_slice().unwrap(),
            dx.as_slice().unwrap(),
            epsilon = 1e-6
        );
        for (a, b) in ours.weights.iter().zip(&theirs.weights) {
            assert_abs_diff_eq!(a.as_slice().unwrap(), b.as_slice().unwrap(), epsilon = 1e-6);
        }
        Ok(())
    }

    #[test]
    fn shapes_follow_the_input_convolution() -> Result<()> {
        let layer = ConvLSTM2D::new(3, (3, 3))
            .with_strides(2)
            .with_return_sequences(true)
            .with_return_state(true);
        let out = layer.compute_output_shape(&[Shape::new(vec![
            None,
            Some(4),
            Some(9),
            Some(8),
            Some(2),
        ])])?;
        assert_eq!(out[0].to_string(), "(None, 4, 4, 3, 3)");
        assert_eq!(out[1].to_string(), "(None, 4, 3, 3)");
        let bad = ConvLSTM1D::new(2, 5).compute_output_shape(&[Shape::new(vec![
            None,
            Some(3),
            Some(4),
            Some(1),
        ])]);
        assert!(bad.unwrap_err().to_string().contains("zero or negative"));
        Ok(())
    }

    #[test]
    fn hostile_sizes_are_refused_before_allocation() {
        let huge = ConvLSTM2D::new(1 << 40, (3, 3));
        let input = Shape::new(vec![None, Some(2), Some(4), Some(4), Some(1)]);
        assert!(matches!(
            huge.compute_output_shape(std::slice::from_ref(&input)),
            Err(Error::TooLarge { .. })
        ));
        let wide = ConvLSTM2D::new(4, (1 << 31, 1));
        assert!(wide.compute_output_shape(&[input]).is_err());
    }
}
