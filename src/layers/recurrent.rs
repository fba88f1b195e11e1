//! The one sequence driver that every recurrent layer shares.
//!
//! A recurrent layer is a [`Cell`] (its weights and one timestep) inside [`Recurrent`], which
//! owns everything that is the same for SimpleRNN, LSTM and GRU: the input shape declaration,
//! `return_sequences`, `return_state`, `go_backwards`, initial and stateful states, masks, shape
//! inference, and the loop over time. [`Bidirectional`](crate::Bidirectional) drives any of them
//! through the object-safe [`RecurrentLayer`] trait.
//!
//! A call takes `[x]` or `[x, state_0, ...]` (Keras's `initial_state`) and returns `[y]`, or
//! `[y, state_0, ...]` under `return_state`, as a Keras Functional node does.
//!
//! The loop is built for speed:
//! - the input projection `x·kernel + bias` of all timesteps is one matrix product over
//!   `(timesteps·batch, input_dim)`, laid out time-major so that each step's rows are contiguous;
//! - each step adds `h_{t-1}·recurrent_kernel` into its own rows of that projection in place and
//!   lets the cell finish the step there: the loop allocates nothing;
//! - gates are fused: one kernel holds all gates' columns, so each step is one recurrent product;
//! - batch rows are independent, so large batches are split across threads, each running the
//!   whole sequence for its rows; in training each block keeps its own trace, and its backward
//!   pass runs on its own thread too.

use std::fmt;
use std::ops::Range;

mod backward;
mod split;
pub(crate) use backward::backward;

use ndarray::{
    concatenate, s, Array2, Array3, ArrayD, ArrayView1, ArrayView2, ArrayView3, ArrayViewD,
    ArrayViewMut2, ArrayViewMut3, Axis, Ix2, Ix3, Zip,
};

use crate::error::{Error, Result};
use crate::layer::{
    check_gradient, check_input, check_rank, check_specs, check_weights, common_builders,
    input_count, layer_plumbing, no_weights, CallContext, Gradients, InputDecl, Layer, LayerName,
    MaskPolicy, Mode, SavedForBackward, WeightSpec,
};
use crate::limits;
use crate::shape::Shape;

/// One recurrent cell: the weights and the arithmetic of a single timestep.
///
/// [`Recurrent`] runs the sequence; a cell only says how wide its fused gate projection is and
/// how to finish a step once `x_t·kernel + bias` is known. Implementing this trait is how a new
/// recurrent layer plugs into the driver, [`Bidirectional`](crate::Bidirectional) and
/// [`Sequential`](crate::Sequential).
pub trait Cell: Clone + fmt::Debug + Send + Sync + 'static {
    /// The Keras class name of the layer: `"SimpleRNN"`.
    const CLASS_NAME: &'static str;
    /// The Keras base name of the layer: `"simple_rnn"`.
    const BASE_NAME: &'static str;

    /// The size of the hidden state (Keras's `units`).
    fn units(&self) -> usize;

    /// How many state tensors of width `units` the cell carries: 1 (SimpleRNN, GRU) or 2 (LSTM).
    fn state_count(&self) -> usize {
        1
    }

    /// The width of the fused input projection: the kernel's columns (`units` for SimpleRNN,
    /// `4·units` for LSTM).
    fn gate_width(&self) -> usize;

    /// Scratch values per batch row that [`step`](Cell::step) may use.
    fn scratch_width(&self) -> usize {
        0
    }

    /// Checks the configuration (positive units, ...), naming the layer in the error.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a value Keras refuses.
    fn validate(&self, layer: &str) -> Result<()>;

    /// The weights' Keras names and shapes for inputs with `input_dim` features, in Keras order.
    /// Sizes are computed without overflow by the caller's checks of `units` and `input_dim`.
    fn weight_shapes(&self, input_dim: usize) -> Vec<(&'static str, Vec<usize>)>;

    /// Draws fresh weights for inputs with `input_dim` features, from the initializers.
    fn init_weights(&mut self, input_dim: usize);

    /// A copy of the configuration, without weights.
    fn without_weights(&self) -> Self;

    /// The weights in Keras order, as views; empty until the cell has weights.
    fn weights(&self) -> Vec<ArrayViewD<'_, f32>>;

    /// Replaces the weights; their count and shapes were checked against
    /// [`weight_shapes`](Cell::weight_shapes) already.
    fn assign_weights(&mut self, weights: &[ArrayD<f32>]);

    /// The input kernel `(input_dim, gate_width)` and the bias added to the input projection
    /// (`(gate_width,)`, if any), or `None` until the cell has weights.
    fn input_projection(&self) -> Option<(ArrayView2<'_, f32>, Option<ArrayView1<'_, f32>>)>;

    /// The input kernel of [`input_projection`](Cell::input_projection), packed once when the
    /// weights were set, for the projection's products; `None` (the default) packs it anew
    /// for each block of timesteps.
    fn packed_input_kernel(&self) -> Option<&PackedKernel> {
        None
    }

    /// Finishes one timestep for `batch` rows. Only called on a cell whose
    /// [`input_projection`](Cell::input_projection) is `Some`.
    ///
    /// `z` holds `x_t·kernel + input bias`, `(batch, gate_width)` row-major, and may be
    /// overwritten. `states` hold the previous states, each `(batch, units)` in standard layout,
    /// and receive the new ones; `states[0]` is the step's output. `scratch` has
    /// `batch·scratch_width()` values. It must not allocate.
    fn step(&self, z: &mut [f32], states: &mut [Array2<f32>], scratch: &mut [f32], batch: usize);

    /// The cell restricted to the units `range` (its kernels' and bias's columns of those
    /// units, in every gate; the recurrent kernel keeps all its rows), for an inference run
    /// whose steps are split over threads by units. `None`, the default, for a cell whose
    /// step cannot be split so (GRU without `reset_after` needs all of `r` before its
    /// candidate's product). Only called on a cell with weights, `range` inside `0..units`.
    fn unit_slice(&self, range: std::ops::Range<usize>) -> Option<Self> {
        let _ = range;
        None
    }

    /// [`step`](Cell::step) of a cell made by [`unit_slice`](Cell::unit_slice): its recurrent
    /// products take `h`, the whole cell's previous output `(batch, units of the whole
    /// cell)`, instead of `states[0]`; `z`, `states` and `scratch` are the slice's own. Only
    /// called on such a slice, whose cell overrides this. It must not allocate.
    fn step_slice(
        &self,
        h: &[f32],
        z: &mut [f32],
        states: &mut [Array2<f32>],
        scratch: &mut [f32],
        batch: usize,
    ) {
        let _ = (h, z, states, scratch, batch);
        unreachable!("only a cell whose unit_slice gives slices steps a slice");
    }

    /// Values per batch row that [`step_keep`](Cell::step_keep) keeps for the backward pass
    /// (the pre-activations of the gates, and whatever else the cell's backward step needs).
    fn keep_width(&self) -> usize;

    /// [`step`](Cell::step) in a training call: also writes all `batch·keep_width()` values of
    /// `keep`, which holds unspecified values on entry. It must not allocate.
    fn step_keep(
        &self,
        z: &mut [f32],
        states: &mut [Array2<f32>],
        scratch: &mut [f32],
        batch: usize,
        keep: &mut [f32],
    );

    /// [`step_keep`](Cell::step_keep) under recurrent dropout: `mask`, `(batch, units)` in
    /// standard layout, multiplies the output state `h_{t-1}` where it enters the products with the recurrent
    /// kernel, and nowhere else.
    ///
    /// The default multiplies `states[0]` by the mask before the step: right for a cell that
    /// reads `h_{t-1}` only in those products (SimpleRNN, LSTM). A cell that also reads it
    /// elsewhere (GRU's `z ⊙ h_{t-1}`) overrides this and
    /// [`step_backward_dropped`](Cell::step_backward_dropped). It must not allocate.
    fn step_keep_dropped(
        &self,
        z: &mut [f32],
        states: &mut [Array2<f32>],
        scratch: &mut [f32],
        batch: usize,
        keep: &mut [f32],
        mask: ArrayView2<'_, f32>,
    ) {
        states[0] *= &mask;
        self.step_keep(z, states, scratch, batch, keep);
    }

    /// Prepares the backward pass once, before its steps (the recurrent kernel transposed and
    /// packed). Only called on a cell with weights.
    fn prepare_backward(&self) -> PreparedBackward;

    /// The width of the gradient a backward step writes for the recurrent projection
    /// (`h_{t-1}·recurrent_kernel`), or 0 when it is the input projection's gradient.
    fn recurrent_grad_width(&self) -> usize {
        0
    }

    /// Scratch values per batch row that [`step_backward`](Cell::step_backward) may use.
    fn backward_scratch_width(&self) -> usize {
        0
    }

    /// The backward pass of one step for `batch` rows. `post` and `keep` are what the step
    /// left in its projection and kept; `prev` and `next` the states before and after it.
    /// `d_states` hold the gradient of the loss with respect to the states after the step and
    /// receive the gradient with respect to the states before it. Writes the gradient of the
    /// input projection (`x_t·kernel + bias`) to `d_z`, `(batch, gate_width)`, and, for a cell
    /// whose [`recurrent_grad_width`](Cell::recurrent_grad_width) is not 0, that of the
    /// recurrent projection to `d_rec`: every value of both, which hold unspecified values on
    /// entry. It must not allocate.
    #[allow(clippy::too_many_arguments)]
    fn step_backward(
        &self,
        prepared: &PreparedBackward,
        post: &[f32],
        keep: &[f32],
        prev: &[ArrayView2<'_, f32>],
        next: &[ArrayView2<'_, f32>],
        d_states: &mut [Array2<f32>],
        d_z: &mut [f32],
        d_rec: &mut [f32],
        scratch: &mut [f32],
        batch: usize,
    );

    /// The backward pass of a [`step_keep_dropped`](Cell::step_keep_dropped) step, as
    /// [`step_backward`](Cell::step_backward); `prev` holds the states before the step as
    /// they were, without the mask.
    ///
    /// The default is [`step_backward`](Cell::step_backward), then the gradient of `h_{t-1}`
    /// times the mask: right for a cell that reads `h_{t-1}` only in its recurrent products,
    /// whose backward step then does not read `prev[0]`. It must not allocate.
    #[allow(clippy::too_many_arguments)]
    fn step_backward_dropped(
        &self,
        prepared: &PreparedBackward,
        post: &[f32],
        keep: &[f32],
        prev: &[ArrayView2<'_, f32>],
        next: &[ArrayView2<'_, f32>],
        d_states: &mut [Array2<f32>],
        d_z: &mut [f32],
        d_rec: &mut [f32],
        scratch: &mut [f32],
        batch: usize,
        mask: ArrayView2<'_, f32>,
    ) {
        self.step_backward(
            prepared, post, keep, prev, next, d_states, d_z, d_rec, scratch, batch,
        );
        d_states[0] *= &mask;
    }

    /// The gradients of the weights, in Keras order, from a whole sequence at once (see
    /// [`SequenceBackward`]).
    fn weight_grads(&self, seq: SequenceBackward<'_>) -> Vec<ArrayD<f32>>;
}

/// What the sequence driver runs: the widths of one row's projection and states, the input
/// projection of a block of timesteps, and one step, forward and backward. Every [`Cell`] is
/// one; a convolutional recurrent layer makes one per call for its input's spatial shape, with
/// states that are its feature maps flattened.
pub(crate) trait Step: Sync {
    /// The widths of one batch row.
    fn widths(&self) -> Widths;

    /// Writes `x · kernel + bias` for the rows of `x` (one row per timestep and batch row) into
    /// `z`, `(rows, gates)`, every value of it: its values on entry are unspecified.
    fn project(&self, x: ArrayView2<'_, f32>, z: ArrayViewMut2<'_, f32>);

    /// [`project`](Step::project) for `rows` rows of `x` `lda` values apart, each its first
    /// `features` values, into `z` (`rows · gates`), reading them where they are: `true`, or
    /// `false` (the default) when the step cannot, leaving `z` as it was.
    fn project_rows(&self, _x: &[f32], _lda: usize, _rows: usize, _z: &mut [f32]) -> bool {
        false
    }

    /// Finishes one timestep for `batch` rows, as [`Cell::step`].
    fn advance(&self, z: &mut [f32], states: &mut [Array2<f32>], scratch: &mut [f32], batch: usize);

    /// Values per batch row that a training step keeps for the backward pass, as
    /// [`Cell::keep_width`].
    fn keep_width(&self) -> usize;

    /// [`advance`](Step::advance), keeping `keep_width` values per row in `keep`, as
    /// [`Cell::step_keep`]; with a `recurrent_dropout` mask, as [`Cell::step_keep_dropped`].
    fn advance_keep(
        &self,
        z: &mut [f32],
        states: &mut [Array2<f32>],
        scratch: &mut [f32],
        batch: usize,
        keep: &mut [f32],
        recurrent_dropout: Option<ArrayView2<'_, f32>>,
    );

    /// As [`Cell::prepare_backward`].
    fn prepare_backward(&self) -> PreparedBackward;

    /// As [`Cell::recurrent_grad_width`].
    fn recurrent_grad_width(&self) -> usize;

    /// As [`Cell::backward_scratch_width`].
    fn backward_scratch_width(&self) -> usize;

    /// The backward pass of one step, as [`Cell::step_backward`]; of a step that took a
    /// `recurrent_dropout` mask, as [`Cell::step_backward_dropped`].
    #[allow(clippy::too_many_arguments)]
    fn step_backward(
        &self,
        prepared: &PreparedBackward,
        post: &[f32],
        keep: &[f32],
        prev: &[ArrayView2<'_, f32>],
        next: &[ArrayView2<'_, f32>],
        d_states: &mut [Array2<f32>],
        d_z: &mut [f32],
        d_rec: &mut [f32],
        scratch: &mut [f32],
        batch: usize,
        recurrent_dropout: Option<ArrayView2<'_, f32>>,
    );

    /// From a whole sequence at once (what [`Cell::weight_grads`] reads): the gradients of
    /// the weights, in Keras order, and, when the caller needs it, the gradient of the input
    /// sequence, written into `input`.
    fn grads(
        &self,
        seq: SequenceBackward<'_>,
        input: Option<InputGradient<'_>>,
    ) -> Vec<ArrayD<f32>>;
}

/// A whole sequence's backward pass, as [`Cell::weight_grads`] reads it: every array
/// `(timesteps·batch, _)`, time-major in processing order (rows `t·batch .. (t+1)·batch` for
/// step `t`).
#[derive(Debug, Clone, Copy)]
pub struct SequenceBackward<'a> {
    /// The input.
    pub xt: ArrayView2<'a, f32>,
    /// The states before each step: the output state; under recurrent dropout, times the
    /// mask, as the recurrent kernel met it.
    pub h_prev: ArrayView2<'a, f32>,
    /// What the steps kept ([`Cell::keep_width`] per row).
    pub keep: ArrayView2<'a, f32>,
    /// The gradients of the input projection.
    pub d_z: ArrayView2<'a, f32>,
    /// The gradients of the recurrent projection: `d_z` for a cell without its own.
    pub d_rec: ArrayView2<'a, f32>,
    /// `Σ_r d_z[r, :]`, the bias gradient of the input projection, which the backward loop
    /// adds up step by step while each step's gradients are in the cache (summed afterwards
    /// from the whole sequence, the sums took 2.7 % of a GRU's training epoch).
    pub d_z_sums: &'a [f32],
    /// `Σ_r d_rec[r, :]`, the same for `d_rec`.
    pub d_rec_sums: &'a [f32],
}

/// Where a [`Step`] writes the gradient of its input sequence: `(batch, timesteps, features)`,
/// zeros on entry, in the input's own time order (step `t` of a `go_backwards` run read
/// timestep `timesteps − 1 − t`).
pub(crate) struct InputGradient<'a> {
    /// The gradient, `(batch, timesteps, features)`.
    pub(crate) values: &'a mut Array3<f32>,
    /// Whether the run read the input from its last timestep to its first.
    pub(crate) go_backwards: bool,
}

impl InputGradient<'_> {
    /// The input timestep that step `t` of the run read.
    pub(crate) fn source(&self, t: usize) -> usize {
        if self.go_backwards {
            self.values.dim().1 - 1 - t
        } else {
            t
        }
    }

    /// Writes a time-major gradient, `(timesteps·batch, features)` in processing order.
    pub(crate) fn assign_time_major(&mut self, dxt: ArrayView2<'_, f32>) {
        let (batch, timesteps, _) = self.values.dim();
        for t in 0..timesteps {
            let source = self.source(t);
            self.values
                .slice_mut(s![.., source, ..])
                .assign(&dxt.slice(s![t * batch..(t + 1) * batch, ..]));
        }
    }
}

/// The widths of one batch row in a [`Step`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Widths {
    /// Each state's values (a cell's units).
    pub(crate) units: usize,
    /// How many states.
    pub(crate) states: usize,
    /// The input projection's values.
    pub(crate) gates: usize,
    /// Scratch values for a step.
    pub(crate) scratch: usize,
}

impl<C: Cell> Step for C {
    fn widths(&self) -> Widths {
        Widths {
            units: self.units(),
            states: self.state_count(),
            gates: self.gate_width(),
            scratch: self.scratch_width(),
        }
    }

    fn project(&self, x: ArrayView2<'_, f32>, mut z: ArrayViewMut2<'_, f32>) {
        let (kernel, bias) = self
            .input_projection()
            .expect("the driver runs only a cell with weights");
        // On the packed tiles of the recurrent steps: the kernel packs in a copy of its
        // values, against the product's rows·values multiply-adds.
        if let (Some(xs), Some(zs)) = (x.as_slice(), z.as_slice_mut()) {
            let (rows, features) = x.dim();
            let owned;
            let packed = match self.packed_input_kernel() {
                Some(packed) => &packed.0,
                None => {
                    owned = crate::linalg::Packed::new(kernel);
                    &owned
                }
            };
            // The bias row as a slice, whatever its layout: a copy of its few values per block.
            let bias = bias.map(|b| b.to_vec());
            project_from_bias(xs, features, packed, bias.as_deref(), zs, rows);
            return;
        }
        // z starts as the bias, or zeros: the product adds into it.
        match bias {
            Some(b) => z.assign(&b),
            None => z.fill(0.0),
        }
        ndarray::linalg::general_mat_mul(1.0, &x, &kernel, 1.0, &mut z);
    }

    fn project_rows(&self, x: &[f32], lda: usize, rows: usize, z: &mut [f32]) -> bool {
        let (Some(packed), Some((_, bias))) = (self.packed_input_kernel(), self.input_projection())
        else {
            return false;
        };
        let bias = match bias.map(|b| b.to_slice()) {
            None => None,
            Some(Some(b)) => Some(b),
            // A bias that is not contiguous: the copying path, which copies it once per block.
            Some(None) => return false,
        };
        project_from_bias(x, lda, &packed.0, bias, z, rows);
        true
    }

    fn advance(
        &self,
        z: &mut [f32],
        states: &mut [Array2<f32>],
        scratch: &mut [f32],
        batch: usize,
    ) {
        self.step(z, states, scratch, batch);
    }

    fn keep_width(&self) -> usize {
        Cell::keep_width(self)
    }

    fn advance_keep(
        &self,
        z: &mut [f32],
        states: &mut [Array2<f32>],
        scratch: &mut [f32],
        batch: usize,
        keep: &mut [f32],
        recurrent_dropout: Option<ArrayView2<'_, f32>>,
    ) {
        match recurrent_dropout {
            None => self.step_keep(z, states, scratch, batch, keep),
            Some(mask) => self.step_keep_dropped(z, states, scratch, batch, keep, mask),
        }
    }

    fn prepare_backward(&self) -> PreparedBackward {
        Cell::prepare_backward(self)
    }

    fn recurrent_grad_width(&self) -> usize {
        Cell::recurrent_grad_width(self)
    }

    fn backward_scratch_width(&self) -> usize {
        Cell::backward_scratch_width(self)
    }

    fn step_backward(
        &self,
        prepared: &PreparedBackward,
        post: &[f32],
        keep: &[f32],
        prev: &[ArrayView2<'_, f32>],
        next: &[ArrayView2<'_, f32>],
        d_states: &mut [Array2<f32>],
        d_z: &mut [f32],
        d_rec: &mut [f32],
        scratch: &mut [f32],
        batch: usize,
        recurrent_dropout: Option<ArrayView2<'_, f32>>,
    ) {
        match recurrent_dropout {
            None => Cell::step_backward(
                self, prepared, post, keep, prev, next, d_states, d_z, d_rec, scratch, batch,
            ),
            Some(mask) => self.step_backward_dropped(
                prepared, post, keep, prev, next, d_states, d_z, d_rec, scratch, batch, mask,
            ),
        }
    }

    /// The input's gradient is `d_z · kernelᵀ` on the packed tiles, step by step, each step
    /// straight into its own rows of the `(batch, timesteps, features)` gradient: the rows of
    /// one step are `timesteps·features` apart.
    fn grads(
        &self,
        seq: SequenceBackward<'_>,
        input: Option<InputGradient<'_>>,
    ) -> Vec<ArrayD<f32>> {
        if let Some(input) = input {
            let (kernel, _) = self
                .input_projection()
                .expect("the driver runs only a cell with weights");
            let (batch, timesteps, features) = input.values.dim();
            let kernel_t = crate::linalg::Packed::new(kernel.t());
            let gates = seq.d_z.ncols();
            let d_z = seq.d_z.as_standard_layout();
            let d_z = d_z.as_slice().expect("standard layout");
            for t in (0..timesteps).filter(|_| batch > 0) {
                let source = input.source(t);
                let out = input.values.as_slice_mut().expect("a new array");
                let dz_t = &d_z[t * batch * gates..(t + 1) * batch * gates];
                let ldo = timesteps * features;
                crate::linalg::gemm_acc_strided(
                    dz_t,
                    &kernel_t,
                    &mut out[source * features..],
                    batch,
                    ldo,
                );
            }
        }
        self.weight_grads(seq)
    }
}

/// A recurrent layer as [`Bidirectional`](crate::Bidirectional) needs it: its options, and its
/// time-reversed twin.
pub trait RecurrentLayer: Layer {
    /// The number of hidden units.
    fn units(&self) -> usize;

    /// How many states the layer carries.
    fn state_count(&self) -> usize;

    /// Whether the output keeps the time axis.
    fn return_sequences(&self) -> bool;

    /// Whether a call reports the final states as extra outputs.
    fn return_state(&self) -> bool;

    /// Whether the layer reads its input from the last timestep to the first.
    fn go_backwards(&self) -> bool;

    /// Sets Keras's `zero_output_for_mask`, as Keras's Bidirectional does on the layers it wraps.
    fn set_zero_output_for_mask(&mut self, yes: bool);

    /// A boxed copy, weights included.
    fn clone_recurrent(&self) -> Box<dyn RecurrentLayer>;

    /// An unbuilt copy of the configuration with `go_backwards` flipped: Keras's backward layer.
    fn reversed_copy(&self) -> Box<dyn RecurrentLayer>;

    /// The multiply-adds of a call in `ctx` on an input of shape `(batch, timesteps,
    /// features)`, when the call may run on a thread other than the caller's; `None` when it
    /// may not, because it draws random numbers (dropout, in training), which come in order
    /// from the calling thread's generator. [`Bidirectional`](crate::Bidirectional) runs its
    /// two directions side by side when both may and their work is worth a thread. By
    /// default `None`.
    fn parallel_work(&self, ctx: &CallContext, input: (usize, usize, usize)) -> Option<usize> {
        let _ = (ctx, input);
        None
    }
}

/// A recurrent layer: a [`Cell`] run over time by the shared driver. [`SimpleRNN`](crate::SimpleRNN)
/// is `Recurrent<SimpleRNNCell>`.
///
/// The options shared by all recurrent layers are set here, with Keras's defaults:
/// `return_sequences` false, `return_state` false, `go_backwards` false, `trainable` true.
#[derive(Debug, Clone)]
pub struct Recurrent<C: Cell> {
    cell: C,
    name: LayerName,
    /// Keras's regularizers and constraints of the weights, and the activity regularizer.
    rules: crate::train::WeightRules,
    input: InputDecl,
    return_sequences: bool,
    return_state: bool,
    go_backwards: bool,
    trainable: bool,
    stateful: bool,
    zero_output_for_mask: bool,
    dropout: f32,
    recurrent_dropout: f32,
    input_dim: Option<usize>,
    /// The batch size a stateful layer was built for.
    batch: Option<usize>,
    /// A stateful layer's states, `None` for zeros.
    state: Option<Vec<Array2<f32>>>,
    /// The cell's slices for inference steps split over threads by units.
    slices: split::SliceCache<C>,
}

impl<C: Cell> Recurrent<C> {
    /// Wraps a configured cell with Keras's default options.
    pub fn from_cell(cell: C) -> Self {
        Recurrent {
            cell,
            name: LayerName::new(C::BASE_NAME),
            rules: crate::train::WeightRules::new(),
            input: InputDecl::default(),
            return_sequences: false,
            return_state: false,
            go_backwards: false,
            trainable: true,
            stateful: false,
            zero_output_for_mask: false,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            input_dim: None,
            batch: None,
            state: None,
            slices: split::SliceCache::default(),
        }
    }

    /// Keras's `dropout`: in training, the fraction of the input features dropped, with one
    /// mask per sequence drawn at each call and kept over its timesteps, as Keras draws it
    /// (`get_dropout_mask_for_cell`). Clamped to `[0, 1]` as Keras clamps it; a rate of 0 or 1
    /// drops nothing, as in Keras. Default 0.
    #[must_use]
    pub fn with_dropout(mut self, rate: f32) -> Self {
        self.dropout = clamp_rate(rate);
        self
    }

    /// Keras's `recurrent_dropout`: in training, the fraction of the recurrent state dropped
    /// before its product with the recurrent kernel, one mask per sequence drawn at each call
    /// and kept over its timesteps. Clamped to `[0, 1]`. Default 0.
    ///
    /// Keras (its `implementation=1`, which a recurrent dropout selects) draws one mask per
    /// gate, for the input and for the state; seqnn draws one of each, shared by the gates.
    /// As in Keras, a GRU's mask applies where `h_{t-1}` enters its recurrent products (with
    /// `reset_after` false, the candidate's takes `r ⊙ (h_{t-1} ⊙ mask)`), not in
    /// `z ⊙ h_{t-1}`.
    #[must_use]
    pub fn with_recurrent_dropout(mut self, rate: f32) -> Self {
        self.recurrent_dropout = clamp_rate(rate);
        self
    }

    /// The input dropout rate (Keras's `dropout`).
    pub fn dropout(&self) -> f32 {
        self.dropout
    }

    /// The recurrent dropout rate (Keras's `recurrent_dropout`).
    pub fn recurrent_dropout(&self) -> f32 {
        self.recurrent_dropout
    }

    /// The recurrent dropout mask of a training call, `(batch, units)`, for a rate in `(0, 1)`:
    /// one draw per sequence and unit, kept over the timesteps.
    fn recurrent_dropout_mask(&self, ctx: &CallContext, batch: usize) -> Option<Array2<f32>> {
        drops(ctx, self.recurrent_dropout).then(|| {
            crate::layers::dropout::keep_mask(Ix2(batch, self.cell.units()), self.recurrent_dropout)
        })
    }

    /// The input dropout mask of a training call, `(batch, 1, features)`, for a rate in
    /// `(0, 1)`: one draw per sequence and feature, scaled by `1 / (1 − rate)`.
    fn input_dropout_mask(
        &self,
        ctx: &CallContext,
        batch: usize,
        features: usize,
    ) -> Option<Array3<f32>> {
        drops(ctx, self.dropout)
            .then(|| crate::layers::dropout::keep_mask(Ix3(batch, 1, features), self.dropout))
    }

    /// The cell, with its weights.
    pub fn cell(&self) -> &C {
        &self.cell
    }

    pub(crate) fn cell_mut(&mut self) -> &mut C {
        self.slices.clear();
        &mut self.cell
    }

    common_builders!(recurrent);

    crate::layer::rule_builders! {
        "kernel", "the input kernel" => with_kernel_regularizer, with_kernel_constraint;
        "recurrent", "the recurrent kernel" => with_recurrent_regularizer, with_recurrent_constraint;
        "bias", "the bias" => with_bias_regularizer, with_bias_constraint;
    }

    /// Keras's `batch_size`, the batch dimension to put before `input_shape`.
    #[must_use]
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.input.batch_size = Some(batch_size);
        self
    }

    /// Keras 2's legacy `input_length`: the number of timesteps. Needs
    /// [`input_dim`](Self::input_dim) as well.
    #[must_use]
    pub fn input_length(mut self, timesteps: usize) -> Self {
        self.input.input_length = Some(timesteps);
        self
    }

    /// Keras 2's legacy `input_dim`: the features per timestep. Alone it declares
    /// `(None, None, input_dim)`, and the number of timesteps may vary from call to call.
    #[must_use]
    pub fn input_dim(mut self, features: usize) -> Self {
        self.input.input_dim = Some(features);
        self
    }

    /// Keras's `return_sequences`: output every timestep, `(batch, timesteps, units)`, instead of
    /// the last, `(batch, units)`. Default false.
    #[must_use]
    pub fn with_return_sequences(mut self, yes: bool) -> Self {
        self.return_sequences = yes;
        self
    }

    /// Keras's `return_state`: a call also returns the final states. Such a layer has several
    /// outputs, so it is called directly or in a graph, not in a `Sequential`. Default false.
    #[must_use]
    pub fn with_return_state(mut self, yes: bool) -> Self {
        self.return_state = yes;
        self
    }

    /// Keras's `go_backwards`: read the input from the last timestep to the first; the output
    /// sequence is in that reversed order too. Default false.
    #[must_use]
    pub fn with_go_backwards(mut self, yes: bool) -> Self {
        self.go_backwards = yes;
        self
    }

    /// Keras's `zero_output_for_mask`: with a mask and `return_sequences`, output zeros at
    /// masked steps instead of repeating the previous output. Default false (Keras's
    /// Bidirectional sets it on the layers it wraps).
    #[must_use]
    pub fn with_zero_output_for_mask(mut self, yes: bool) -> Self {
        self.zero_output_for_mask = yes;
        self
    }

    /// Whether masked steps of a sequence output zeros (Keras's `zero_output_for_mask`).
    pub fn zero_output_for_mask(&self) -> bool {
        self.zero_output_for_mask
    }

    /// The number of hidden units (Keras's `units`).
    pub fn units(&self) -> usize {
        self.cell.units()
    }

    /// Whether the output keeps the time axis (Keras's `return_sequences`).
    pub fn return_sequences(&self) -> bool {
        self.return_sequences
    }

    /// Whether a call also returns the final states (Keras's `return_state`).
    pub fn return_state(&self) -> bool {
        self.return_state
    }

    /// Whether the input is read from the last timestep to the first (Keras's `go_backwards`).
    pub fn go_backwards(&self) -> bool {
        self.go_backwards
    }

    /// Whether the states carry over from one call to the next (Keras's `stateful`).
    pub fn stateful(&self) -> bool {
        self.stateful
    }

    /// Keras's `stateful`: the final state of each batch row is the initial state of the same
    /// row in the next call, until [`reset_states`](Layer::reset_states). It needs a fixed batch
    /// size, from `batch_input_shape`. Default false.
    #[must_use]
    pub fn with_stateful(mut self, yes: bool) -> Self {
        self.stateful = yes;
        self
    }

    /// The input features the layer was built for, `None` before it is built.
    pub fn built_input_dim(&self) -> Option<usize> {
        self.input_dim
    }

    fn output_shape_for(&self, input: &Shape) -> Vec<Shape> {
        let units = Some(self.cell.units());
        let output = if self.return_sequences {
            Shape::new(vec![input.dim(0), input.dim(1), units])
        } else {
            Shape::new(vec![input.dim(0), units])
        };
        let states = if self.return_state {
            self.cell.state_count()
        } else {
            0
        };
        let mut out = vec![output];
        out.extend(std::iter::repeat_n(
            Shape::new(vec![input.dim(0), units]),
            states,
        ));
        out
    }

    /// The shape this built layer takes: `(None, None, input_dim)`.
    fn accepted_shape(&self, input_dim: usize) -> Shape {
        Shape::new(vec![None, None, Some(input_dim)])
    }

    /// The `(batch, units)` shape every state has, checked for each initial state given.
    fn check_initial_states(&self, batch: usize, states: &[ArrayView2<'_, f32>]) -> Result<()> {
        let units = self.cell.units();
        let expected = self.cell.state_count();
        let bad = states.len() != expected || states.iter().any(|s| s.dim() != (batch, units));
        if bad {
            let got: Vec<String> = states
                .iter()
                .map(|s| Shape::known(s.shape()).to_string())
                .collect();
            return Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: format!(
                    "initial_state must be {expected} array(s) of shape ({batch}, {units}), got [{}]",
                    got.join(", ")
                ),
            });
        }
        Ok(())
    }

    /// The shape checks of `compute_output_shape` on the main input.
    fn check_input_shape(&self, input: &Shape) -> Result<()> {
        let name = self.name.get();
        self.cell.validate(name)?;
        check_rank(name, 3, input)?;
        if self.stateful && input.dim(0).is_none() {
            return Err(Error::InvalidArgument {
                layer: name.to_string(),
                message: format!(
                    "If a RNN is stateful, it needs to know its batch size. Specify the batch \
                     size of your input tensors: give the first layer a batch_input_shape, \
                     such as batch_input_shape((32, {}, {})). Input shape received: {input}",
                    input.dim(1).map_or("None".into(), |t| t.to_string()),
                    input.last().map_or("None".into(), |d| d.to_string()),
                ),
            });
        }
        match (input.last(), self.input_dim) {
            (None, _) => Err(Error::InvalidArgument {
                layer: name.to_string(),
                message: format!(
                    "the last dimension of the input must be known, got input shape {input}"
                ),
            }),
            (Some(d), Some(built)) if d != built => Err(Error::IncompatibleShape {
                layer: name.to_string(),
                expected: self.accepted_shape(built),
                found: input.clone(),
            }),
            (Some(d), _) => {
                // The weights' sizes, before anything is built from them.
                let shapes = self.cell.weight_shapes(d);
                let specs: Vec<(&str, &[usize])> =
                    shapes.iter().map(|(n, s)| (*n, s.as_slice())).collect();
                check_specs(name, &specs)?;
                let gates = limits::mul(name, self.cell.gate_width(), 1)?;
                let z = Shape::new(vec![input.dim(0), input.dim(1), Some(gates)]);
                limits::check_tensor(name, "input projection", &z)
            }
        }
    }

    /// Keras's RNN mask rule: a sequence output keeps the input's mask (not reversed, even
    /// under go_backwards); a last output and the states have none.
    /// A call's outputs from the run's output and final states: the output masks set, the
    /// states appended under `return_state` and carried under `stateful`.
    fn finish_call(
        &self,
        ctx: &mut CallContext,
        output: ArrayD<f32>,
        states: Vec<Array2<f32>>,
    ) -> Vec<ArrayD<f32>> {
        let masks = self.output_masks(ctx, self.output_count());
        ctx.set_output_masks(masks);
        let mut outputs = vec![output];
        if self.return_state {
            outputs.extend(states.iter().map(|s| s.clone().into_dyn()));
        }
        if self.stateful {
            ctx.set_states(states);
        }
        outputs
    }

    fn output_masks(&self, ctx: &CallContext, outputs: usize) -> Vec<Option<crate::Mask>> {
        let mut masks = vec![None; outputs];
        if self.return_sequences {
            masks[0] = ctx.input_mask(0).map(|m| m.to_owned());
        }
        masks
    }
}

/// Getters of a recurrent layer that read its cell's options, named after Keras's attributes.
/// Used inside `impl SimpleRNN`, `impl LSTM`, ...
macro_rules! cell_getters {
    ($($name:ident: $ty:ty),* $(,)?) => {
        $(
            #[doc = concat!("Keras's `", stringify!($name), "`.")]
            pub fn $name(&self) -> $ty {
                self.cell().$name()
            }
        )*
    };
}
pub(crate) use cell_getters;

/// The check of `weight_shapes`' inputs: positive units that keep every weight's size in range.
/// Cells call it from `validate` with their gate count.
pub(crate) fn check_cell_units(layer: &str, units: usize, gates: usize) -> Result<()> {
    crate::layers::simple_rnn::check_units(layer, units)?;
    // The recurrent kernel alone, (units, gates·units), must fit: this also keeps gates·units
    // from overflowing in the cell's own arithmetic.
    let width = limits::mul(layer, gates, units)?;
    let recurrent = limits::mul(layer, units, width)?;
    limits::check_params(
        layer,
        Some(recurrent),
        &format!("recurrent_kernel ({units}, {width})"),
    )
    .map(|_| ())
}

impl<C: Cell> Layer for Recurrent<C> {
    layer_plumbing!();
    crate::layer::rule_methods!();

    fn class_name(&self) -> &'static str {
        C::CLASS_NAME
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.cell.validate(self.name.get())?;
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        let Some((input, states)) = inputs.split_first() else {
            return Err(input_count(name, 1, 0));
        };
        self.check_input_shape(input)?;
        if !states.is_empty() && states.len() != self.cell.state_count() {
            return Err(input_count(name, 1 + self.cell.state_count(), inputs.len()));
        }
        let units = Some(self.cell.units());
        for s in states {
            if s.rank() != 2 || s.dim(1).is_some_and(|u| Some(u) != units) {
                return Err(Error::IncompatibleShape {
                    layer: name.to_string(),
                    expected: Shape::new(vec![None, units]),
                    found: s.clone(),
                });
            }
        }
        Ok(self.output_shape_for(input))
    }

    fn build(&mut self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let out = self.compute_output_shape(inputs)?;
        let input = &inputs[0];
        if self.input_dim.is_none() {
            self.input_dim = input.last();
        }
        if self.stateful {
            self.batch = input.dim(0);
        }
        Ok(out)
    }

    fn is_built(&self) -> bool {
        self.input_dim.is_some()
    }

    fn weight_specs(&self) -> Vec<WeightSpec> {
        match self.input_dim {
            Some(d) => self
                .cell
                .weight_shapes(d)
                .into_iter()
                .map(|(n, s)| WeightSpec::new(n, s))
                .collect(),
            None => Vec::new(),
        }
    }

    fn initialize(&mut self) {
        if let Some(d) = self.input_dim {
            self.slices.clear();
            self.cell.init_weights(d);
        }
    }

    fn weights(&self) -> Vec<ArrayViewD<'_, f32>> {
        self.cell.weights()
    }

    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        if !self.is_built() {
            return Err(no_weights(self.name.get()));
        }
        check_weights(self.name.get(), &self.weight_specs(), weights)?;
        self.slices.clear();
        self.cell.assign_weights(weights);
        Ok(())
    }

    fn output_count(&self) -> usize {
        if self.return_state {
            1 + self.cell.state_count()
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
        let x = as_sequence(name, x.view())?;
        let input_dim = self.input_dim.ok_or_else(|| no_weights(name))?;
        check_input(name, &self.accepted_shape(input_dim), x.shape())?;
        let (batch, timesteps, _) = x.dim();
        let carried = if self.stateful {
            ctx.take_states()
        } else {
            None
        };
        if let Some(expected) = self.batch {
            if batch != expected {
                return Err(crate::stateful::batch_mismatch(name, expected, batch));
            }
        }
        let initial: Vec<ArrayView2<'_, f32>> = if initial.is_empty() {
            carried
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|s| s.view())
                .collect()
        } else {
            initial
                .iter()
                .map(|s| {
                    s.view()
                        .into_dimensionality::<Ix2>()
                        .map_err(|_| Error::IncompatibleShape {
                            layer: name.to_string(),
                            expected: Shape::new(vec![None, Some(self.cell.units())]),
                            found: Shape::known(s.shape()),
                        })
                })
                .collect::<Result<_>>()?
        };
        if !initial.is_empty() {
            self.check_initial_states(batch, &initial)?;
        }
        let mask = ctx.input_mask(0);
        if let Some(m) = mask {
            if m.dim() != (batch, timesteps) {
                return Err(Error::InvalidArgument {
                    layer: name.to_string(),
                    message: format!(
                        "the mask must be (batch, timesteps) = ({batch}, {timesteps}), got {}",
                        Shape::known(m.shape())
                    ),
                });
            }
        }
        limits::check_dims(
            name,
            "input projection",
            &[timesteps, batch, self.cell.gate_width()],
        )?;
        let options = RunOptions {
            go_backwards: self.go_backwards,
            return_sequences: self.return_sequences,
            zero_output_for_mask: self.zero_output_for_mask,
        };
        if self.cell.input_projection().is_none() {
            return Err(no_weights(name));
        }
        let (batch, _, features) = x.dim();
        let dropout = self.input_dropout_mask(ctx, batch, features);
        let dropped = dropout.as_ref().map(|m| &x * m);
        let x = dropped.as_ref().map_or(x, |d| d.view());
        let recurrent_dropout = self.recurrent_dropout_mask(ctx, batch);
        let parts = parts_for(&self.cell, x.dim());
        // A large call splits its batch rows over the threads where it has enough of them;
        // an inference call's plain loop with too few (a stream of one sequence) splits each
        // step's units instead, where the cell can. Measured on 2 cores (benches/recurrent.rs):
        // with 64 rows, splitting rows is 1.4-2.6x faster than splitting units, whose threads
        // exchange every step's whole output; with 1 row, splitting units is 1.8x faster than
        // one thread.
        let plain = !ctx.records() && mask.is_none() && recurrent_dropout.is_none();
        let large = is_large(&self.cell, x.dim());
        if let Some(slices) = (plain && large && parts < 2)
            .then(|| self.slices.get(&self.cell, crate::threads::num_threads()))
            .flatten()
        {
            let (output, states) = split::run(&self.cell, &slices, x, &initial, options);
            return Ok(self.finish_call(ctx, output, states));
        }
        let (output, states, traces) = run_blocks(
            &self.cell,
            x,
            &initial,
            mask,
            options,
            ctx.records(),
            parts,
            recurrent_dropout.as_ref().map(|m| m.view()),
        );
        if ctx.records() {
            let input_gradient = ctx.needs_input_gradient(0);
            ctx.save_for_backward(Box::new(RecurrentSaved {
                traces,
                initial_inputs: inputs.len() - 1,
                output_shape: output.shape().to_vec(),
                dropout,
                input_gradient,
            }));
        }
        Ok(self.finish_call(ctx, output, states))
    }

    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let saved: &RecurrentSaved = saved.get(name)?;
        let batch = saved.traces.iter().map(|t| t.batch).sum();
        let units = self.cell.units();
        let grad = |i: usize, shape: &[usize]| -> Result<Option<ArrayViewD<'_, f32>>> {
            match output_grads.get(i).and_then(Option::as_ref) {
                Some(g) => {
                    check_gradient(name, i, g, shape)?;
                    Ok(Some(g.view()))
                }
                None => Ok(None),
            }
        };
        let d_out = grad(0, &saved.output_shape)?;
        let (d_seq, d_last) = match &d_out {
            Some(g) if self.return_sequences => (
                Some(
                    g.view()
                        .into_dimensionality::<Ix3>()
                        .expect("checked shape"),
                ),
                None,
            ),
            Some(g) => (
                None,
                Some(
                    g.view()
                        .into_dimensionality::<Ix2>()
                        .expect("checked shape"),
                ),
            ),
            None => (None, None),
        };
        let mut d_final = Vec::new();
        if self.return_state {
            for i in 0..self.cell.state_count() {
                d_final.push(
                    grad(1 + i, &[batch, units])?
                        .map(|g| g.into_dimensionality::<Ix2>().expect("checked shape")),
                );
            }
        }
        if self.cell.input_projection().is_none() {
            return Err(no_weights(name));
        }
        let mut grads = backward(
            &self.cell,
            &saved.traces,
            d_seq,
            d_last,
            &d_final,
            saved.input_gradient,
        );
        if let (Some(g), Some(m)) = (grads.input.as_mut(), &saved.dropout) {
            *g *= m;
        }
        let mut inputs = vec![grads.input.map(|g| g.into_dyn())];
        if saved.initial_inputs > 0 {
            inputs.extend(grads.initial.into_iter().map(|g| Some(g.into_dyn())));
        }
        Ok(Gradients {
            inputs,
            weights: grads.weights,
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
        // At most the time-major input copy and the projection of every timestep: a training
        // call's. An inference call holds a block of them (`projection_block`).
        let t = inputs.first().and_then(|s| s.dim(1)).unwrap_or(1);
        let d = self.input_dim.unwrap_or(0);
        t.saturating_mul(d.saturating_add(self.cell.gate_width()))
    }

    fn is_stateful(&self) -> bool {
        self.stateful
    }

    fn states(&self) -> Vec<Array2<f32>> {
        match (&self.state, self.batch) {
            (Some(s), _) => s.clone(),
            (None, Some(b)) if self.stateful => {
                vec![Array2::zeros((b, self.cell.units())); self.cell.state_count()]
            }
            _ => Vec::new(),
        }
    }

    fn set_states(&mut self, states: Vec<Array2<f32>>) -> Result<()> {
        if !self.stateful {
            return if states.is_empty() {
                Ok(())
            } else {
                Err(Error::InvalidArgument {
                    layer: self.name.get().to_string(),
                    message: "this layer is not stateful, so it takes no states".into(),
                })
            };
        }
        let views: Vec<ArrayView2<'_, f32>> = states.iter().map(|s| s.view()).collect();
        if let Some(b) = self.batch {
            self.check_initial_states(b, &views)?;
        }
        self.state = Some(states);
        Ok(())
    }

    fn reset_states(&mut self) {
        self.state = None;
    }
}

impl<C: Cell> RecurrentLayer for Recurrent<C> {
    fn units(&self) -> usize {
        self.cell.units()
    }

    fn state_count(&self) -> usize {
        self.cell.state_count()
    }

    fn return_sequences(&self) -> bool {
        self.return_sequences
    }

    fn return_state(&self) -> bool {
        self.return_state
    }

    fn go_backwards(&self) -> bool {
        self.go_backwards
    }

    fn set_zero_output_for_mask(&mut self, yes: bool) {
        self.zero_output_for_mask = yes;
    }

    fn clone_recurrent(&self) -> Box<dyn RecurrentLayer> {
        Box::new(self.clone())
    }

    fn reversed_copy(&self) -> Box<dyn RecurrentLayer> {
        let mut copy = self.clone();
        copy.go_backwards = !self.go_backwards;
        copy.input_dim = None;
        copy.state = None;
        copy.cell = self.cell.without_weights();
        Box::new(copy)
    }

    fn parallel_work(&self, ctx: &CallContext, input: (usize, usize, usize)) -> Option<usize> {
        let draws = drops(ctx, self.dropout) || drops(ctx, self.recurrent_dropout);
        (!draws).then(|| work(&self.cell, input))
    }
}

/// The weights of a cell with one kernel, one recurrent kernel and an optional bias, all of the
/// fused gate width (SimpleRNN: `units`; LSTM: `4·units`), in Keras's order, with the recurrent
/// kernel kept packed for the per-step product.
#[derive(Debug, Clone)]
pub(crate) struct GateWeights {
    pub(crate) use_bias: bool,
    values: Option<Box<GateValues>>,
}

/// The values of [`GateWeights`], once it has them.
#[derive(Debug, Clone)]
struct GateValues {
    kernel: Array2<f32>,
    recurrent: Array2<f32>,
    /// The kernel, packed for the input projection.
    packed_kernel: PackedKernel,
    packed: crate::linalg::Packed,
    bias: ndarray::Array1<f32>,
}

impl Default for GateWeights {
    fn default() -> Self {
        GateWeights {
            use_bias: true,
            values: None,
        }
    }
}

impl GateWeights {
    /// The same configuration, without values.
    pub(crate) fn config_only(&self) -> Self {
        GateWeights {
            use_bias: self.use_bias,
            values: None,
        }
    }

    /// The Keras names and shapes: kernel `(input_dim, width)`, recurrent kernel
    /// `(units, width)`, then the bias `(width,)` if there is one.
    pub(crate) fn shapes(
        &self,
        input_dim: usize,
        units: usize,
        width: usize,
    ) -> Vec<(&'static str, Vec<usize>)> {
        let mut w = vec![
            ("kernel", vec![input_dim, width]),
            ("recurrent_kernel", vec![units, width]),
        ];
        if self.use_bias {
            w.push(("bias", vec![width]));
        }
        w
    }

    /// Sets fresh weights (the bias only matters with `use_bias`).
    pub(crate) fn set(
        &mut self,
        kernel: Array2<f32>,
        recurrent: Array2<f32>,
        bias: ndarray::Array1<f32>,
    ) {
        self.values = Some(Box::new(GateValues {
            packed_kernel: PackedKernel::new(kernel.view()),
            packed: crate::linalg::Packed::new(recurrent.view()),
            kernel,
            recurrent,
            bias: if self.use_bias {
                bias
            } else {
                ndarray::Array1::zeros(0)
            },
        }));
    }

    /// The weights of units `range` of a cell of `units` units whose `gates` gates sit side
    /// by side in the columns, `units` each, as [`Cell::unit_slice`] takes them.
    ///
    /// # Panics
    /// Before the weights are set: the driver only splits a cell that has them.
    pub(crate) fn unit_slice(&self, gates: usize, units: usize, range: Range<usize>) -> Self {
        let v = self
            .values
            .as_ref()
            .expect("the driver splits only a cell with weights");
        let mut sliced = self.config_only();
        let bias = if self.use_bias {
            gate_columns(v.bias.view().insert_axis(Axis(0)), gates, units, &range)
                .row(0)
                .to_owned()
        } else {
            ndarray::Array1::zeros(0)
        };
        sliced.set(
            gate_columns(v.kernel.view(), gates, units, &range),
            gate_columns(v.recurrent.view(), gates, units, &range),
            bias,
        );
        sliced
    }

    /// The weights in Keras's order: kernel, recurrent kernel, then the bias if there is one.
    pub(crate) fn views(&self) -> Vec<ArrayViewD<'_, f32>> {
        let Some(v) = &self.values else {
            return Vec::new();
        };
        let mut w = vec![v.kernel.view().into_dyn(), v.recurrent.view().into_dyn()];
        if self.use_bias {
            w.push(v.bias.view().into_dyn());
        }
        w
    }

    /// Takes weights whose count and shapes [`shapes`](Self::shapes) checked.
    pub(crate) fn assign(&mut self, weights: &[ArrayD<f32>]) {
        let bias = if self.use_bias {
            crate::layer::owned1(&weights[2])
        } else {
            ndarray::Array1::zeros(0)
        };
        self.set(
            crate::layer::owned2(&weights[0]),
            crate::layer::owned2(&weights[1]),
            bias,
        );
    }

    pub(crate) fn input_projection(
        &self,
    ) -> Option<(ArrayView2<'_, f32>, Option<ArrayView1<'_, f32>>)> {
        let v = self.values.as_ref()?;
        Some((v.kernel.view(), self.use_bias.then(|| v.bias.view())))
    }

    /// The recurrent kernel transposed, `(width, units)`, packed for a backward pass's
    /// `d_z · recurrent_kernelᵀ`.
    ///
    /// # Panics
    /// Before the weights are set: the driver only runs a cell that has them.
    pub(crate) fn recurrent_transposed(&self) -> crate::linalg::Packed {
        let v = self
            .values
            .as_ref()
            .expect("the driver runs only a cell with weights");
        crate::linalg::Packed::new(v.recurrent.t())
    }

    /// The gradients of the kernel (`xtᵀ·d_z`), the recurrent kernel (`h_prevᵀ·d_z`) and the
    /// bias (`Σ d_z`, the loop's sums), in Keras order, from a whole sequence: each one
    /// product.
    pub(crate) fn grads(&self, seq: SequenceBackward<'_>) -> Vec<ArrayD<f32>> {
        let mut w = vec![
            crate::linalg::tn_product(seq.xt, seq.d_z).into_dyn(),
            crate::linalg::tn_product(seq.h_prev, seq.d_z).into_dyn(),
        ];
        if self.use_bias {
            w.push(ndarray::Array1::from(seq.d_z_sums.to_vec()).into_dyn());
        }
        w
    }

    /// The input kernel, packed, once the weights are set.
    pub(crate) fn packed_kernel(&self) -> Option<&PackedKernel> {
        self.values.as_ref().map(|v| &v.packed_kernel)
    }

    /// The recurrent kernel, packed.
    ///
    /// # Panics
    /// Before the weights are set: the driver only steps a cell that has them.
    pub(crate) fn recurrent(&self) -> &crate::linalg::Packed {
        &self
            .values
            .as_ref()
            .expect("the driver steps only a cell with weights")
            .packed
    }
}

/// The columns of units `range` of each of the `gates` blocks of `units` columns of `a`, side
/// by side: the columns of a [`Cell::unit_slice`].
pub(crate) fn gate_columns(
    a: ArrayView2<'_, f32>,
    gates: usize,
    units: usize,
    range: &Range<usize>,
) -> Array2<f32> {
    let blocks: Vec<_> = (0..gates)
        .map(|g| a.slice(s![.., g * units + range.start..g * units + range.end]))
        .collect();
    concatenate(Axis(1), &blocks).expect("blocks of the same rows")
}

/// Views a layer input as `(batch, timesteps, features)`, or says which rank it has instead.
pub(crate) fn as_sequence<'a>(
    layer: &str,
    input: ArrayViewD<'a, f32>,
) -> Result<ArrayView3<'a, f32>> {
    let shape = input.shape().to_vec();
    input
        .into_dimensionality::<Ix3>()
        .map_err(|_| Error::IncompatibleRank {
            layer: layer.to_string(),
            expected: 3,
            found: shape.len(),
            shape: Shape::known(&shape),
        })
}

/// Below this many multiply-adds per call the sequence runs on one thread.
pub(crate) const PARALLEL_WORK: usize = 1 << 22;

/// Whether a call in `ctx` draws a dropout mask of `rate`: in training, for a rate in `(0, 1)`.
fn drops(ctx: &CallContext, rate: f32) -> bool {
    ctx.mode() == Mode::Training && rate > 0.0 && rate < 1.0
}

/// How the driver runs a sequence.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunOptions {
    pub(crate) go_backwards: bool,
    pub(crate) return_sequences: bool,
    pub(crate) zero_output_for_mask: bool,
}

/// Runs `cell` over `x` `(batch, timesteps, features)`: the shared sequence loop. Returns the
/// output and the final states.
///
/// Inputs were checked by the caller, and the cell has weights. `initial` is empty (zeros) or
/// one `(batch, units)` array per state. The output is `(batch, units)`, or
/// `(batch, timesteps, units)` with `return_sequences`, in processing order (reversed in time
/// under `go_backwards`, as Keras returns it).
pub(crate) fn run<S: Step>(
    cell: &S,
    x: ArrayView3<'_, f32>,
    initial: &[ArrayView2<'_, f32>],
    mask: Option<ArrayView2<'_, bool>>,
    options: RunOptions,
) -> (ArrayD<f32>, Vec<Array2<f32>>) {
    let parts = parts_for(cell, x.dim());
    let (output, states, _) = run_blocks(cell, x, initial, mask, options, false, parts, None);
    (output, states)
}

/// How many blocks of batch rows a run of `cell` over an input of shape `(batch, timesteps,
/// features)` splits into: one per thread for a large call, else one.
pub(crate) fn parts_for<S: Step>(
    cell: &S,
    (batch, timesteps, features): (usize, usize, usize),
) -> usize {
    if is_large(cell, (batch, timesteps, features)) {
        crate::threads::parts(batch / 8)
    } else {
        1
    }
}

/// Whether a run of `cell` over an input of shape `(batch, timesteps, features)` has the
/// work to share among threads.
pub(crate) fn is_large<S: Step>(
    cell: &S,
    (batch, timesteps, features): (usize, usize, usize),
) -> bool {
    work(cell, (batch, timesteps, features)) >= PARALLEL_WORK
}

/// The multiply-adds of a run of `cell` over an input of shape `(batch, timesteps, features)`:
/// the input projection's and the recurrent products'.
fn work<S: Step>(cell: &S, (batch, timesteps, features): (usize, usize, usize)) -> usize {
    let w = cell.widths();
    batch
        .saturating_mul(timesteps)
        .saturating_mul(w.gates)
        .saturating_mul(features.saturating_add(w.units))
}

/// [`run`] in `parts` blocks of batch rows (one for fewer than two), each on its own thread
/// running the whole sequence for its rows, keeping what the backward pass needs when
/// `traced`: one [`Trace`] per block, in the order of the rows. `recurrent_dropout` is as
/// [`run_rows_traced`] takes it, for all rows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_blocks<S: Step>(
    cell: &S,
    x: ArrayView3<'_, f32>,
    initial: &[ArrayView2<'_, f32>],
    mask: Option<ArrayView2<'_, bool>>,
    options: RunOptions,
    traced: bool,
    parts: usize,
    recurrent_dropout: Option<ArrayView2<'_, f32>>,
) -> (ArrayD<f32>, Vec<Array2<f32>>, Vec<Trace>) {
    let (batch, timesteps, _) = x.dim();
    if parts < 2 || batch < 2 {
        let rd = recurrent_dropout.map(|m| m.to_owned());
        let (output, states, trace) = run_rows_traced(cell, x, initial, mask, options, traced, rd);
        return (output, states, trace.into_iter().collect());
    }
    // One sequence output for all blocks, each writing its own rows in place: no copy of
    // the parts into it afterwards, and each thread faults in the pages it writes.
    let mut sequence = options
        .return_sequences
        .then(|| sequence_output(batch, timesteps, cell.widths().units));
    let chunk = batch.div_ceil(parts);
    let rows: Vec<Option<ArrayViewMut3<'_, f32>>> = match sequence.as_mut() {
        Some(seq) => seq.axis_chunks_iter_mut(Axis(0), chunk).map(Some).collect(),
        None => (0..batch).step_by(chunk).map(|_| None).collect(),
    };
    let blocks: Vec<(usize, Option<ArrayViewMut3<'_, f32>>)> =
        (0..batch).step_by(chunk).zip(rows).collect();
    let mut results = crate::threads::map_owned(blocks, |(start, out)| {
        let end = (start + chunk).min(batch);
        let xs = x.slice(s![start..end, .., ..]);
        let ms = mask.map(|m| m.slice_move(s![start..end, ..]));
        let init: Vec<ArrayView2<'_, f32>> = initial
            .iter()
            .map(|a| a.slice(s![start..end, ..]))
            .collect();
        let rd = recurrent_dropout.map(|m| m.slice(s![start..end, ..]).to_owned());
        run_rows_into(cell, xs, &init, ms, options, traced, rd, out)
    });
    let output = match sequence {
        Some(seq) => seq.into_dyn(),
        None => {
            let outputs: Vec<_> = results.iter().map(|p| p.0.view()).collect();
            concatenate(Axis(0), &outputs)
                .expect("parts share all but the batch axis")
                .into_dyn()
        }
    };
    let states = (0..cell.widths().states)
        .map(|i| {
            let views: Vec<_> = results.iter().map(|p| p.1[i].view()).collect();
            concatenate(Axis(0), &views).expect("parts share the units axis")
        })
        .collect();
    let traces = results.iter_mut().filter_map(|p| p.2.take()).collect();
    (output, states, traces)
}

/// A new `(batch, timesteps, units)` sequence output, zeros, on huge pages where the system
/// gives them ([`crate::buffers::zeros`]).
fn sequence_output(batch: usize, timesteps: usize, units: usize) -> Array3<f32> {
    let values = crate::buffers::zeros(batch * timesteps * units);
    Array3::from_shape_vec((batch, timesteps, units), values).expect("the output's size")
}

/// The values of the input projection an inference run keeps at once, per thread: 512 KiB,
/// half a core's L2 cache on the AMD EPYC CPUs this crate is tuned on (1 MiB), so that the
/// recurrent kernel that each step reads stays there beside it. On an Intel Xeon with 2 MiB of
/// L2, W2, W4 and W5 ran 2-3 % faster on one thread than with 1 MiB (interleaved A/B, every
/// round on W2 and W5), W3, W6 and two threads within the noise.
const PROJECTION_BLOCK_VALUES: usize = 1 << 17;

/// How many timesteps of `batch` rows of `width` gate values an inference run projects at
/// once: as many as [`PROJECTION_BLOCK_VALUES`] holds, at least one, at most `timesteps`.
fn projection_block(batch: usize, width: usize, timesteps: usize) -> usize {
    (PROJECTION_BLOCK_VALUES / batch.saturating_mul(width).max(1)).clamp(1, timesteps.max(1))
}

/// The fewest batch rows an inference run projects where they are, one product per timestep,
/// rather than through a time-major copy of a block of timesteps ([`run_rows_traced`]). From
/// 16 rows, a tile and more per panel, the copy cost more than the panels read again per
/// timestep: on an Intel Xeon, W3 (32 rows) ran 18 % faster on one thread and 11 % on two
/// than with a copy below 64 rows.
const DIRECT_ROWS: usize = 16;

/// The most input values an inference run reads where they are ([`run_rows_traced`]): 16 MiB,
/// half the last-level cache of the AMD EPYC servers this crate is tuned on (32 MiB).
const DIRECT_VALUES: usize = 1 << 22;

/// What a masked run keeps besides the states: the states before the step (to put back at
/// masked rows) and the last output of each row.
struct MaskState {
    /// The mask in processing order, time-major: `[t·batch + b]`.
    steps: Vec<bool>,
    saved: Vec<Array2<f32>>,
    last_output: Array2<f32>,
}

/// The sequence loop for one block of batch rows, on the calling thread, keeping a [`Trace`]
/// for the backward pass when `traced`. With `recurrent_dropout`, `(batch, units)`, each
/// traced step's recurrent products take the output state times that mask
/// ([`Cell::step_keep_dropped`]).
pub(crate) fn run_rows_traced<S: Step>(
    cell: &S,
    x: ArrayView3<'_, f32>,
    initial: &[ArrayView2<'_, f32>],
    mask: Option<ArrayView2<'_, bool>>,
    options: RunOptions,
    traced: bool,
    recurrent_dropout: Option<Array2<f32>>,
) -> (ArrayD<f32>, Vec<Array2<f32>>, Option<Trace>) {
    let (batch, timesteps, _) = x.dim();
    let mut sequence = options
        .return_sequences
        .then(|| sequence_output(batch, timesteps, cell.widths().units));
    let out = sequence.as_mut().map(|seq| seq.view_mut());
    let (last, states, trace) = run_rows_into(
        cell,
        x,
        initial,
        mask,
        options,
        traced,
        recurrent_dropout,
        out,
    );
    let output = match sequence {
        Some(seq) => seq.into_dyn(),
        None => last.into_dyn(),
    };
    (output, states, trace)
}

/// [`run_rows_traced`] writing a sequence output (under `return_sequences`) into `sequence`,
/// `(batch, timesteps, units)`, zeros, and returning the last output (when there is no
/// `sequence`; else an empty array), the final states and the trace.
#[allow(clippy::too_many_arguments)]
fn run_rows_into<S: Step>(
    cell: &S,
    x: ArrayView3<'_, f32>,
    initial: &[ArrayView2<'_, f32>],
    mask: Option<ArrayView2<'_, bool>>,
    options: RunOptions,
    traced: bool,
    recurrent_dropout: Option<Array2<f32>>,
    mut sequence: Option<ArrayViewMut3<'_, f32>>,
) -> (Array2<f32>, Vec<Array2<f32>>, Option<Trace>) {
    let (batch, timesteps, features) = x.dim();
    let widths = cell.widths();
    let (units, width) = (widths.units, widths.gates);
    let source = |t: usize| {
        if options.go_backwards {
            timesteps - 1 - t
        } else {
            t
        }
    };

    // A training call's buffers outlive it, in its trace, and come back for the next call's.
    let buffer = |rows: usize, cols: usize| {
        if traced {
            crate::buffers::array2(rows, cols)
        } else {
            Array2::zeros((rows, cols))
        }
    };
    // The input projection, one matrix product per block of `block` timesteps, bias
    // included: of every timestep at once for a training call, whose trace keeps it, and of
    // blocks that stay in the cache otherwise, so that an inference call's working set does
    // not grow with the sequence. `xt` is the block's time-major copy of the input, reversed
    // under go_backwards: rows j·batch .. (j+1)·batch are its timestep j in processing order.
    let block = if traced {
        timesteps
    } else {
        projection_block(batch, width, timesteps)
    };
    // An inference call over an input in standard layout projects each timestep's rows where
    // they are, `timesteps·features` values apart, when the cell can: no copy of the input.
    // Not for few rows, whose product per timestep would read the whole kernel for each few
    // (W7, one row: 5.7 -> 7.3-8.1 ms), where the block's copy makes one product of them all;
    // nor for an input beyond the cache, whose rows would come from memory in short strides
    // as the product reaches them, where the copy streams them (W6, 52 MB, on a Zen 4 on 1
    // thread: 478-582 -> 459-476 ms, interleaved).
    let direct = (!traced && batch >= DIRECT_ROWS && x.len() <= DIRECT_VALUES)
        .then(|| x.as_slice())
        .flatten();
    let mut xt = match direct {
        Some(_) => Array2::zeros((0, features)),
        None => buffer(block * batch, features),
    };
    let mut z = buffer(block * batch, width);
    let project_block = |t0: usize, xt: &mut Array2<f32>, z: &mut Array2<f32>| {
        let n = block.min(timesteps - t0);
        if let Some(xs) = direct {
            let zs = z.as_slice_mut().expect("z is in standard layout");
            let lda = timesteps * features;
            // A cell that cannot says so at once, before it writes anything.
            let read_in_place = (0..n).all(|j| {
                let rows = &xs[source(t0 + j) * features..];
                let zj = &mut zs[j * batch * width..(j + 1) * batch * width];
                cell.project_rows(rows, lda, batch, zj)
            });
            if read_in_place {
                return;
            }
            // The copying path below needs the block's copy, which this call did not make.
            if xt.nrows() < n * batch {
                *xt = Array2::zeros((block * batch, features));
            }
        }
        for j in 0..n {
            copy_rows(
                xt.slice_mut(s![j * batch..(j + 1) * batch, ..]),
                x.slice(s![.., source(t0 + j), ..]),
            );
        }
        cell.project(
            xt.slice(s![..n * batch, ..]),
            z.slice_mut(s![..n * batch, ..]),
        );
    };

    let mut states: Vec<Array2<f32>> = if initial.is_empty() {
        vec![Array2::zeros((batch, units)); widths.states]
    } else {
        initial
            .iter()
            .map(|s| s.as_standard_layout().into_owned())
            .collect()
    };
    let mut scratch = vec![0.0_f32; batch * widths.scratch];
    // The sequence output, if any, is written step by step in its own (batch, timesteps,
    // units) layout.
    let mut masked = mask.map(|m| MaskState {
        steps: (0..timesteps)
            .flat_map(|t| m.column(source(t)).to_vec())
            .collect(),
        saved: states.clone(),
        last_output: Array2::zeros((batch, units)),
    });

    // What a training call keeps, every value written below: every step's states (before it,
    // and the last ones after) and what each step's cell keeps.
    let mut history = traced.then(|| {
        (
            (0..widths.states)
                .map(|_| buffer((timesteps + 1) * batch, units))
                .collect::<Vec<_>>(),
            buffer(timesteps * batch, cell.keep_width()),
        )
    });
    // The values a dropped step keeps, thrown away when the call keeps no trace.
    let mut spare_keep = (history.is_none() && recurrent_dropout.is_some())
        .then(|| vec![0.0_f32; batch * cell.keep_width()]);
    // A sequence output beyond the cache is written with streaming stores.
    let stream = sequence
        .as_ref()
        .is_some_and(|seq| crate::linalg::worth_streaming(seq.len()));
    for t in 0..timesteps {
        if t % block == 0 {
            project_block(t, &mut xt, &mut z);
        }
        let j = t % block;
        let zt = &mut z.as_slice_mut().expect("z is in standard layout")
            [j * batch * width..(j + 1) * batch * width];
        if let Some(ms) = masked.as_mut() {
            for (saved, state) in ms.saved.iter_mut().zip(&states) {
                saved.assign(state);
            }
        }
        match history.as_mut() {
            None => match (&recurrent_dropout, spare_keep.as_mut()) {
                // A training call that keeps nothing still drops the state.
                (Some(r), Some(keep)) => {
                    let dropout = Some(r.view());
                    cell.advance_keep(zt, &mut states, &mut scratch, batch, keep, dropout);
                }
                _ => cell.advance(zt, &mut states, &mut scratch, batch),
            },
            Some((seen, keep)) => {
                for (h, state) in seen.iter_mut().zip(&states) {
                    copy_block(h, t * batch, state);
                }
                let k = cell.keep_width();
                let keep = &mut keep.as_slice_mut().expect("standard layout")
                    [t * batch * k..(t + 1) * batch * k];
                let dropout = recurrent_dropout.as_ref().map(|r| r.view());
                cell.advance_keep(zt, &mut states, &mut scratch, batch, keep, dropout);
            }
        }
        match masked.as_mut() {
            None => {
                if let Some(seq) = sequence.as_mut() {
                    write_step(seq.view_mut(), t, states[0].view(), stream);
                }
            }
            Some(ms) => {
                apply_mask_step(ms, t, &mut states);
                let real = &ms.steps[t * batch..(t + 1) * batch];
                if let Some(seq) = sequence.as_mut() {
                    let mut out = seq.index_axis_mut(Axis(1), t);
                    if options.zero_output_for_mask {
                        Zip::from(out.rows_mut())
                            .and(states[0].rows())
                            .and(real)
                            .for_each(|mut o, h, &r| {
                                if r {
                                    o.assign(&h);
                                }
                            });
                    } else {
                        out.assign(&ms.last_output);
                    }
                }
            }
        }
    }

    let steps = masked.as_ref().map(|ms| ms.steps.clone());
    let output = match (sequence, masked) {
        (Some(_), _) => Array2::zeros((0, 0)),
        (None, Some(ms)) => ms.last_output,
        (None, None) => states[0].clone(),
    };
    let trace = history.map(|(mut seen, keep)| {
        for (h, state) in seen.iter_mut().zip(&states) {
            copy_block(h, timesteps * batch, state);
        }
        Trace {
            xt,
            post: z,
            keep,
            states: seen,
            steps,
            recurrent_dropout,
            batch,
            timesteps,
            options,
        }
    });
    (output, states, trace)
}

/// `z = bias + x·w`, or `x·w` without a bias, for `rows` rows of `x` `lda` values apart: the
/// product adds its sums into the bias row as it writes z, with the bits of setting z to the
/// bias and adding, in one pass over z instead of two.
fn project_from_bias(
    x: &[f32],
    lda: usize,
    w: &crate::linalg::Packed,
    bias: Option<&[f32]>,
    z: &mut [f32],
    rows: usize,
) {
    match bias {
        Some(b) if !b.is_empty() => crate::linalg::gemm_from_row_lda(x, lda, w, b, z, rows),
        _ => {
            z.fill(0.0);
            crate::linalg::gemm_acc_lda(x, lda, w, z, rows);
        }
    }
}

/// Step `t` of a sequence output, `(batch, timesteps, units)`, set to `state`, `(batch,
/// units)`: with streaming stores when `stream` and both are contiguous, row slice by row
/// slice otherwise.
fn write_step(mut seq: ArrayViewMut3<'_, f32>, t: usize, state: ArrayView2<'_, f32>, stream: bool) {
    let (_, timesteps, units) = seq.dim();
    if stream {
        if let (Some(dst), Some(src)) = (seq.as_slice_mut(), state.as_slice()) {
            crate::linalg::stream_rows(&mut dst[t * units..], timesteps * units, src, units);
            return;
        }
    }
    copy_rows(seq.index_axis_mut(Axis(1), t), state);
}

/// `dst`'s rows `row ..` = `src`: one copy of contiguous values where both are in standard
/// layout (a step's states into a training call's history: ndarray's assign, element by
/// element, was 2.6 % of an LSTM's training epoch).
fn copy_block(dst: &mut Array2<f32>, row: usize, src: &Array2<f32>) {
    let n = src.len();
    let start = row * src.ncols();
    match (dst.as_slice_mut(), src.as_slice()) {
        (Some(d), Some(s)) => d[start..start + n].copy_from_slice(s),
        _ => dst.slice_mut(s![row..row + src.nrows(), ..]).assign(src),
    }
}

/// `dst = src`, row by row as slices where both rows are contiguous (a state into a step of
/// the sequence output: one memcpy per row, where ndarray's assign, its rows strided by the
/// timesteps, went element by element).
fn copy_rows(mut dst: ArrayViewMut2<'_, f32>, src: ArrayView2<'_, f32>) {
    for (mut d, s) in dst.rows_mut().into_iter().zip(src.rows()) {
        match (d.as_slice_mut(), s.as_slice()) {
            (Some(d), Some(s)) => d.copy_from_slice(s),
            _ => d.assign(&s),
        }
    }
}

/// A cell's input kernel packed for the products of the input projection, once when its
/// weights are set ([`Cell::packed_input_kernel`]). Opaque: the crate's cells make it.
#[derive(Debug, Clone)]
pub struct PackedKernel(crate::linalg::Packed);

impl PackedKernel {
    /// `kernel`, `(input_dim, gate_width)`, packed.
    pub(crate) fn new(kernel: ArrayView2<'_, f32>) -> Self {
        PackedKernel(crate::linalg::Packed::new(kernel))
    }
}

/// What a cell's backward pass prepares once per call: its recurrent kernels transposed and
/// packed for the per-step products.
#[derive(Debug, Clone, Default)]
pub struct PreparedBackward {
    kernels: Vec<crate::linalg::Packed>,
}

impl PreparedBackward {
    /// Prepared kernels, in the cell's own order.
    pub(crate) fn new(kernels: Vec<crate::linalg::Packed>) -> Self {
        PreparedBackward { kernels }
    }

    /// Kernel `i`.
    pub(crate) fn kernel(&self, i: usize) -> &crate::linalg::Packed {
        &self.kernels[i]
    }

    /// Kernel `i`, if the cell prepared one.
    pub(crate) fn get(&self, i: usize) -> Option<&crate::linalg::Packed> {
        self.kernels.get(i)
    }
}

/// What a training call of a recurrent layer keeps.
#[derive(Debug)]
struct RecurrentSaved {
    /// One per block of batch rows, in order.
    traces: Vec<Trace>,
    /// How many initial states the call took as inputs (0: zeros or carried states).
    initial_inputs: usize,
    output_shape: Vec<usize>,
    /// The input dropout mask of the call, `(batch, 1, features)`, if it drew one.
    dropout: Option<Array3<f32>>,
    /// Whether the caller needs the gradient of the input sequence.
    input_gradient: bool,
}

/// Keras's clamp of a dropout rate to `[0, 1]` (`min(1, max(0, rate))`; NaN becomes 0).
fn clamp_rate(rate: f32) -> f32 {
    if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

/// What a training run of the sequence loop keeps for [`backward`]: all time-major, in
/// processing order, rows `t·batch .. (t+1)·batch` for step `t`. Its buffers go back to
/// [`buffers`](crate::buffers) when it is dropped.
#[derive(Debug)]
pub(crate) struct Trace {
    /// The input, `(timesteps·batch, features)`.
    xt: Array2<f32>,
    /// Each step's projection after the cell finished it (its activated gates),
    /// `(timesteps·batch, gates)`.
    post: Array2<f32>,
    /// What each step's cell kept, `(timesteps·batch, keep_width)`.
    keep: Array2<f32>,
    /// Per state, `((timesteps + 1)·batch, units)`: the states before each step (masked rows
    /// carried), then the final ones.
    states: Vec<Array2<f32>>,
    /// The mask in processing order, `[t·batch + b]`.
    steps: Option<Vec<bool>>,
    /// The recurrent dropout mask, `(batch, units)`: each step's output state was multiplied
    /// by it where it entered the products with the recurrent kernel (`states` hold it
    /// unmasked).
    recurrent_dropout: Option<Array2<f32>>,
    batch: usize,
    timesteps: usize,
    options: RunOptions,
}

impl Drop for Trace {
    fn drop(&mut self) {
        let arrays = [&mut self.xt, &mut self.post, &mut self.keep];
        for a in arrays.into_iter().chain(&mut self.states) {
            crate::buffers::give(std::mem::take(a));
        }
    }
}

/// After a masked step: rows whose step is padding get their previous states back; the others
/// record their new output.
fn apply_mask_step(ms: &mut MaskState, t: usize, states: &mut [Array2<f32>]) {
    let batch = ms.last_output.nrows();
    for (b, &r) in ms.steps[t * batch..(t + 1) * batch].iter().enumerate() {
        if r {
            ms.last_output.row_mut(b).assign(&states[0].row(b));
        } else {
            for (state, saved) in states.iter_mut().zip(&ms.saved) {
                state.row_mut(b).assign(&saved.row(b));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::layer::{apply, Layer};
    use crate::shape::Shape;
    use crate::{SimpleRNN, GRU, LSTM};
    use ndarray::{Array3, ShapeBuilder};

    /// A call may run on another thread unless it draws dropout masks: in training, with a
    /// rate in (0, 1). Its work is the projection's and the recurrence's multiply-adds.
    #[test]
    fn only_calls_without_dropout_draws_may_run_elsewhere() {
        use super::RecurrentLayer;
        use crate::CallContext;
        let input = (8, 10, 5);
        // LSTM(3): 4 gates of 3 units over 5 features and 3 units, for 8 · 10 rows.
        let work = 8 * 10 * 12 * (5 + 3);
        let (inference, training) = (CallContext::inference(), CallContext::training());
        let plain = LSTM::new(3);
        assert_eq!(plain.parallel_work(&inference, input), Some(work));
        assert_eq!(plain.parallel_work(&training, input), Some(work));
        for layer in [
            LSTM::new(3).with_dropout(0.5),
            LSTM::new(3).with_recurrent_dropout(0.25),
        ] {
            assert_eq!(layer.parallel_work(&inference, input), Some(work));
            assert_eq!(layer.parallel_work(&training, input), None);
        }
        // A rate of 1 draws nothing: everything is dropped.
        let all = LSTM::new(3).with_dropout(1.0);
        assert_eq!(all.parallel_work(&training, input), Some(work));
    }

    /// An input in standard layout is projected where it is, a timestep's rows
    /// `timesteps·features` apart; any other layout through the block's time-major copy. Both
    /// give the same numbers, to the bit, forwards and backwards, with sequences or not.
    #[test]
    fn the_input_read_in_place_gives_the_numbers_of_its_copy() {
        // Rows enough to be read in place (DIRECT_ROWS).
        let (batch, timesteps, features) = (super::DIRECT_ROWS + 1, 7, 3);
        let values =
            |(b, t, d): (usize, usize, usize)| ((b * 7 + t * 3 + d) % 11) as f32 * 0.1 - 0.5;
        let standard = Array3::from_shape_fn((batch, timesteps, features), values);
        let fortran = Array3::from_shape_fn((batch, timesteps, features).f(), values);
        assert!(fortran.as_slice().is_none());
        let layers: Vec<Box<dyn Layer>> = vec![
            Box::new(SimpleRNN::new(4).with_return_sequences(true)),
            Box::new(LSTM::new(4).with_go_backwards(true)),
            Box::new(
                GRU::new(4)
                    .with_return_sequences(true)
                    .with_go_backwards(true),
            ),
            Box::new(GRU::new(4).with_reset_after(false)),
            Box::new(
                LSTM::new(4)
                    .with_use_bias(false)
                    .with_return_sequences(true),
            ),
        ];
        for mut layer in layers {
            crate::set_random_seed(3);
            layer
                .build(&[Shape::new(vec![None, Some(timesteps), Some(features)])])
                .expect("builds");
            layer.initialize();
            // A bias that is not zero (Keras starts it at zeros), where the layer has one.
            let mut weights: Vec<_> = layer.weights().iter().map(|w| w.to_owned()).collect();
            if weights.len() == 3 {
                weights[2]
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, v)| *v = 0.1 * i as f32);
            }
            layer.set_weights(&weights).expect("its own shapes");
            let a = apply(layer.as_ref(), standard.view().into_dyn()).expect("runs");
            let b = apply(layer.as_ref(), fortran.view().into_dyn()).expect("runs");
            assert_eq!(a, b, "{}", layer.class_name());
            assert!(a.iter().any(|&v| v != 0.0));
        }
    }
}
