//! Keras's `LSTM`: long short-term memory.

use ndarray::{concatenate, Array1, Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewD, Axis};

use crate::activation::ActivationFn;
use crate::error::Result;
use crate::init::Initializer;
use crate::init::{sample1, sample2};
use crate::layers::recurrent::{
    cell_getters, check_cell_units, Cell, GateWeights, PreparedBackward, Recurrent,
    SequenceBackward,
};
use crate::linalg::gemm_acc;

/// Keras's `LSTM`, with its four gates fused in one kernel, in Keras's order i, f, c, o.
///
/// ```text
/// z   = x_t · kernel + h_{t-1} · recurrent_kernel + bias        (4·units wide: i | f | c | o)
/// i   = recurrent_activation(z_i)    f = recurrent_activation(z_f)
/// o   = recurrent_activation(z_o)    c̃ = activation(z_c)
/// c_t = f · c_{t-1} + i · c̃
/// h_t = o · activation(c_t)                                     h_0 = c_0 = 0
/// ```
///
/// - Input: `(batch, timesteps, input_dim)`.
/// - Output: `(batch, units)`, or `(batch, timesteps, units)` with `return_sequences`; under
///   `return_state` the states are `[h, c]`.
/// - Weights, in Keras's order and layout: `kernel (input_dim, 4·units)`,
///   `recurrent_kernel (units, 4·units)`, `bias (4·units,)`, so
///   `4·units·(input_dim + units + 1)` parameters.
///
/// Its own options, with Keras's defaults: `with_activation` (tanh),
/// `with_recurrent_activation` (sigmoid), `with_use_bias` (true), `with_unit_forget_bias`
/// (true), `with_kernel_initializer` (glorot_uniform), `with_recurrent_initializer`
/// (orthogonal), `with_bias_initializer` (zeros); each has a getter of Keras's name. The
/// options every recurrent layer has are listed below.
///
/// ```
/// use seqnn::{Sequential, LSTM};
/// let mut model = Sequential::new();
/// model.add(LSTM::new(5).input_shape((6, 4)))?;
/// assert_eq!(model.count_params()?, 4 * 5 * (4 + 5 + 1));
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding or building it fails for zero units and for an input that is not 3-D.
#[doc = ""]
#[doc = include_str!("recurrent_options.md")]
#[allow(clippy::upper_case_acronyms)]
pub type LSTM = Recurrent<LSTMCell>;

/// The cell of [`LSTM`]: its configuration, weights and one timestep.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone)]
pub struct LSTMCell {
    units: usize,
    activation: ActivationFn,
    recurrent_activation: ActivationFn,
    unit_forget_bias: bool,
    kernel_initializer: Initializer,
    recurrent_initializer: Initializer,
    bias_initializer: Initializer,
    weights: GateWeights,
}

impl LSTMCell {
    /// A cell with `units` hidden units and Keras's defaults.
    pub fn new(units: usize) -> Self {
        LSTMCell {
            units,
            activation: ActivationFn::Tanh,
            recurrent_activation: ActivationFn::Sigmoid,
            unit_forget_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            recurrent_initializer: Initializer::Orthogonal,
            bias_initializer: Initializer::Zeros,
            weights: GateWeights::default(),
        }
    }
}

impl LSTMCell {
    /// The activation of the candidate and the output.
    pub fn activation(&self) -> ActivationFn {
        self.activation
    }

    /// The activation of the gates.
    pub fn recurrent_activation(&self) -> ActivationFn {
        self.recurrent_activation
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

    /// Whether the forget gate's bias starts at one.
    pub fn unit_forget_bias(&self) -> bool {
        self.unit_forget_bias
    }
}

impl LSTM {
    /// An LSTM with `units` hidden units, as Keras's `LSTM(units)`.
    pub fn new(units: usize) -> Self {
        Recurrent::from_cell(LSTMCell::new(units))
    }

    cell_getters! {
        activation: ActivationFn,
        use_bias: bool,
        kernel_initializer: Initializer,
        recurrent_initializer: Initializer,
        bias_initializer: Initializer,
        recurrent_activation: ActivationFn,
        unit_forget_bias: bool,
    }

    /// Keras's `activation`, for the candidate and the output. Default `tanh`.
    #[must_use]
    pub fn with_activation(mut self, activation: ActivationFn) -> Self {
        self.cell_mut().activation = activation;
        self
    }

    /// Keras's `recurrent_activation`, for the gates. Default `sigmoid`.
    #[must_use]
    pub fn with_recurrent_activation(mut self, activation: ActivationFn) -> Self {
        self.cell_mut().recurrent_activation = activation;
        self
    }

    /// Keras's `use_bias`. Default true.
    #[must_use]
    pub fn with_use_bias(mut self, yes: bool) -> Self {
        self.cell_mut().weights.use_bias = yes;
        self
    }

    /// Keras's `unit_forget_bias`: initialize the forget gate's bias to ones. Default true.
    #[must_use]
    pub fn with_unit_forget_bias(mut self, yes: bool) -> Self {
        self.cell_mut().unit_forget_bias = yes;
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

impl Cell for LSTMCell {
    const CLASS_NAME: &'static str = "LSTM";
    const BASE_NAME: &'static str = "lstm";

    fn units(&self) -> usize {
        self.units
    }

    fn state_count(&self) -> usize {
        2
    }

    fn gate_width(&self) -> usize {
        4 * self.units
    }

    fn validate(&self, layer: &str) -> Result<()> {
        check_cell_units(layer, self.units, 4)
    }

    fn weight_shapes(&self, input_dim: usize) -> Vec<(&'static str, Vec<usize>)> {
        self.weights.shapes(input_dim, self.units, 4 * self.units)
    }

    fn without_weights(&self) -> Self {
        LSTMCell {
            weights: self.weights.config_only(),
            ..*self
        }
    }

    fn init_weights(&mut self, input_dim: usize) {
        let u = self.units;
        let bias = if self.unit_forget_bias {
            concatenate(
                Axis(0),
                &[
                    sample1(self.bias_initializer, u).view(),
                    Array1::ones(u).view(),
                    sample1(self.bias_initializer, 2 * u).view(),
                ],
            )
            .expect("1-D pieces")
        } else {
            sample1(self.bias_initializer, 4 * u)
        };
        self.weights.set(
            sample2(self.kernel_initializer, input_dim, 4 * u),
            sample2(self.recurrent_initializer, u, 4 * u),
            bias,
        );
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
        Some(LSTMCell {
            units: range.len(),
            weights: self.weights.unit_slice(4, self.units, range),
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
        let [h_part, c] = states else {
            unreachable!("an LSTM carries two states");
        };
        gemm_acc(h, self.weights.recurrent(), z, batch);
        let h_part = h_part
            .as_slice_mut()
            .expect("states are in standard layout");
        let c = c.as_slice_mut().expect("states are in standard layout");
        lstm_gates(
            z,
            h_part,
            c,
            self.units,
            self.activation,
            self.recurrent_activation,
            None,
        );
    }

    /// What [`lstm_gates`] keeps for the backward pass ([`LstmGates::keep_width`]).
    fn keep_width(&self) -> usize {
        self.gates().keep_width()
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

    fn backward_scratch_width(&self) -> usize {
        2 * self.units
    }

    /// `LstmGates::backward`, then `d_h_{t-1} = d_z · recurrent_kernelᵀ`.
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
    ) {
        let dh = self
            .gates()
            .backward(post, keep, prev, next, d_states, d_z, scratch);
        dh.fill(0.0);
        gemm_acc(d_z, prepared.kernel(0), dh, batch);
    }

    fn weight_grads(&self, seq: SequenceBackward<'_>) -> Vec<ArrayD<f32>> {
        self.weights.grads(seq)
    }
}

crate::linalg::dispatched!(
    /// An LSTM's backward step over all its rows, for `activation` tanh and
    /// `recurrent_activation` sigmoid, whose derivatives come from their outputs: `1 − y²` and
    /// `y·(1 − y)`. Each value is what the general path computes, operation for operation, in one
    /// pass instead of eight.
    fn tanh_sigmoid_rows(
        u: usize,
        gates: &[f32],
        tanh_c: &[f32],
        d_z: &mut [f32],
        dh: &[f32],
        dc: &mut [f32],
        c_prev: &[f32],
    ) {
        let rows = gates
            .chunks_exact(4 * u)
            .zip(d_z.chunks_exact_mut(4 * u))
            .zip(dh.chunks_exact(u).zip(dc.chunks_exact_mut(u)))
            .zip(c_prev.chunks_exact(u).zip(tanh_c.chunks_exact(u)));
        for (((gates, dz), (dh, dc)), (cp, tc)) in rows {
            tanh_sigmoid_row(gates, dz, dh, dc, cp, tc);
        }
    }
);

/// One row of `tanh_sigmoid_rows`, its slices as arguments so that LLVM knows they do
/// not overlap and vectorizes the loop.
#[inline(always)]
fn tanh_sigmoid_row(
    gates: &[f32],
    dz: &mut [f32],
    dh: &[f32],
    dc: &mut [f32],
    c_prev: &[f32],
    tanh_c: &[f32],
) {
    let u = dc.len();
    let (i, rest) = gates.split_at(u);
    let (f, rest) = rest.split_at(u);
    let (g, o) = rest.split_at(u);
    let (di, rest) = dz.split_at_mut(u);
    let (df, rest) = rest.split_at_mut(u);
    let (dg, d_o) = rest.split_at_mut(u);
    // One length for all, so that the loop has no bounds checks.
    let (i, f, g, o, dh, c_prev, tanh_c) = (
        &i[..u],
        &f[..u],
        &g[..u],
        &o[..u],
        &dh[..u],
        &c_prev[..u],
        &tanh_c[..u],
    );
    let d_o = &mut d_o[..u];
    for k in 0..u {
        let t = tanh_c[k];
        let dcell = dh[k] * o[k] * (1.0 - t * t);
        let d = dcell + dc[k];
        d_o[k] = dh[k] * t * (o[k] * (1.0 - o[k]));
        di[k] = d * g[k] * (i[k] * (1.0 - i[k]));
        df[k] = d * c_prev[k] * (f[k] * (1.0 - f[k]));
        dg[k] = d * i[k] * (1.0 - g[k] * g[k]);
        dc[k] = d * f[k];
    }
}

/// One row of an LSTM's backward step, before the gates' derivatives: from `dc`, the gradient
/// of the cell state, and the cell's share `dcell = d_h ⊙ o ⊙ g'(c_t)` of it, the gradients of
/// the gates' outputs into `dz` (i | f | c̃ | o) and the gradient of `c_{t-1}` over `dc`.
///
/// Its own function, so that its slices come in as distinct arguments: LLVM vectorizes the
/// loop only when it knows that they do not overlap.
#[inline(always)]
fn gate_gradients(
    dz: &mut [f32],
    dc: &mut [f32],
    dh: &[f32],
    tanh_c: &[f32],
    dcell: &[f32],
    [i, f, g]: [&[f32]; 3],
    c_prev: &[f32],
) {
    let u = dc.len();
    let (di, rest) = dz.split_at_mut(u);
    let (df, rest) = rest.split_at_mut(u);
    let (dg, d_o) = rest.split_at_mut(u);
    // One length for all, so that the loop has no bounds checks.
    let (d_o, dh, tanh_c, dcell) = (&mut d_o[..u], &dh[..u], &tanh_c[..u], &dcell[..u]);
    let (i, f, g, c_prev) = (&i[..u], &f[..u], &g[..u], &c_prev[..u]);
    for k in 0..u {
        let d = dcell[k] + dc[k];
        d_o[k] = dh[k] * tanh_c[k];
        di[k] = d * g[k];
        df[k] = d * c_prev[k];
        dg[k] = d * i[k];
        dc[k] = d * f[k];
    }
}

impl LSTMCell {
    /// The cell's gates, for [`LstmGates`]'s methods.
    fn gates(&self) -> LstmGates {
        LstmGates {
            units: self.units,
            activation: self.activation,
            recurrent_activation: self.recurrent_activation,
        }
    }

    /// One step, keeping what the backward pass needs when training.
    fn step_keeping(
        &self,
        z: &mut [f32],
        states: &mut [Array2<f32>],
        batch: usize,
        keep: Option<&mut [f32]>,
    ) {
        let u = self.units;
        let [h, c] = states else {
            unreachable!("an LSTM carries two states");
        };
        let h = h.as_slice_mut().expect("states are in standard layout");
        let c = c.as_slice_mut().expect("states are in standard layout");
        gemm_acc(h, self.weights.recurrent(), z, batch);
        lstm_gates(z, h, c, u, self.activation, self.recurrent_activation, keep);
    }
}

/// The LSTM's gates for rows of `4·units` pre-activations `z` (i | f | c | o, each `units`
/// wide), updating the rows of `units` of `h` and `c` in place; `z` is overwritten, and `keep`,
/// if any, receives what [`LstmGates::backward`] needs besides the activated gates
/// ([`LstmGates::keep_width`] per row). Shared with ConvLSTM, whose rows are the positions of
/// its feature maps.
pub(crate) fn lstm_gates(
    z: &mut [f32],
    h: &mut [f32],
    c: &mut [f32],
    u: usize,
    activation: ActivationFn,
    recurrent_activation: ActivationFn,
    keep: Option<&mut [f32]>,
) {
    if (activation, recurrent_activation) == (ActivationFn::Tanh, ActivationFn::Sigmoid) {
        // Keras's activations: every row in one pass, the same arithmetic as below, keeping
        // tanh(c_t).
        tanh_sigmoid_gates(u, z, h, c, keep);
        return;
    }
    if let Some(keep) = keep {
        // Other activations' derivatives need the pre-activations.
        keep.copy_from_slice(z);
    }
    let rows = z
        .chunks_exact_mut(4 * u)
        .zip(h.chunks_exact_mut(u))
        .zip(c.chunks_exact_mut(u));
    for ((zr, hr), cr) in rows {
        let (ifg, rest) = zr.split_at_mut(2 * u);
        let (cand, o) = rest.split_at_mut(u);
        recurrent_activation.apply_slice(ifg, 2 * u);
        activation.apply_slice(cand, u);
        recurrent_activation.apply_slice(o, u);
        let (i, f) = ifg.split_at(u);
        for (((cv, &iv), &fv), &gv) in cr.iter_mut().zip(i).zip(f).zip(cand.iter()) {
            *cv = fv * *cv + iv * gv;
        }
        hr.copy_from_slice(cr);
        activation.apply_slice(hr, u);
        for (hv, &ov) in hr.iter_mut().zip(o.iter()) {
            *hv *= ov;
        }
    }
}

crate::linalg::dispatched!(
    /// [`lstm_gates`] for `activation` tanh and `recurrent_activation` sigmoid: each value as
    /// the general path computes it, operation for operation, in one pass over each row
    /// instead of six, so that the four gates of a unit are read once and stay in registers.
    /// With `keep`, `units` values per row, also writes `tanh(c_t)` there, for the backward
    /// pass, which then needs no tanh of its own.
    fn tanh_sigmoid_gates(
        u: usize,
        z: &mut [f32],
        h: &mut [f32],
        c: &mut [f32],
        keep: Option<&mut [f32]>,
    ) {
        let rows = z
            .chunks_exact_mut(4 * u)
            .zip(h.chunks_exact_mut(u))
            .zip(c.chunks_exact_mut(u));
        match keep {
            Some(keep) => {
                for (((zr, hr), cr), tc) in rows.zip(keep.chunks_exact_mut(u)) {
                    let (i, rest) = zr.split_at_mut(u);
                    let (f, rest) = rest.split_at_mut(u);
                    let (g, o) = rest.split_at_mut(u);
                    tanh_sigmoid_gates_row::<true>(i, f, g, o, hr, cr, tc);
                }
            }
            None => {
                for ((zr, hr), cr) in rows {
                    let (i, rest) = zr.split_at_mut(u);
                    let (f, rest) = rest.split_at_mut(u);
                    let (g, o) = rest.split_at_mut(u);
                    tanh_sigmoid_gates_row::<false>(i, f, g, o, hr, cr, &mut []);
                }
            }
        }
    }
);

/// One row of `tanh_sigmoid_gates`, each gate's slice an argument of its own: LLVM then knows
/// that they do not overlap and vectorizes the loop without run-time checks (split inside, the
/// slices of one row's `z` failed the checks that LLVM hoisted over all rows, and every row
/// ran the scalar loop).
/// `KEEP` says whether `tanh_c` (empty otherwise) receives `tanh(c_t)` and the gates their
/// activations; without it, z keeps its pre-activations.
#[inline(always)]
#[allow(clippy::many_single_char_names)]
fn tanh_sigmoid_gates_row<const KEEP: bool>(
    i: &mut [f32],
    f: &mut [f32],
    g: &mut [f32],
    o: &mut [f32],
    h: &mut [f32],
    c: &mut [f32],
    tanh_c: &mut [f32],
) {
    use crate::activation::{sigmoid, tanh};
    let u = c.len();
    // One length for all, so that the loop has no bounds checks.
    let (i, f, g, o, h) = (
        &mut i[..u],
        &mut f[..u],
        &mut g[..u],
        &mut o[..u],
        &mut h[..u],
    );
    let tanh_c = &mut tanh_c[..if KEEP { u } else { 0 }];
    for k in 0..u {
        let (iv, fv, gv, ov) = (sigmoid(i[k]), sigmoid(f[k]), tanh(g[k]), sigmoid(o[k]));
        // A training step's trace keeps the activated gates in z for the backward pass; an
        // inference step's z is read no more.
        if KEEP {
            (i[k], f[k], g[k], o[k]) = (iv, fv, gv, ov);
        }
        let cv = fv * c[k] + iv * gv;
        c[k] = cv;
        let t = tanh(cv);
        if KEEP {
            tanh_c[k] = t;
        }
        h[k] = t * ov;
    }
}

/// The gates of an LSTM over rows of `units`: what [`lstm_gates`] computes, for its backward
/// pass. Shared with ConvLSTM, whose rows are the positions of its maps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LstmGates {
    pub(crate) units: usize,
    pub(crate) activation: ActivationFn,
    pub(crate) recurrent_activation: ActivationFn,
}

impl LstmGates {
    /// Values per row of `units` that [`lstm_gates`] keeps for [`backward`](Self::backward):
    /// with Keras's activations, tanh and sigmoid, whose derivatives come from their outputs,
    /// `tanh(c_t)` (`units`), which the backward pass would otherwise compute again, a division
    /// per unit (5 % of an LSTM's training epoch); else the pre-activations of the four gates
    /// (`4·units`).
    pub(crate) fn keep_width(self) -> usize {
        if (self.activation, self.recurrent_activation)
            == (ActivationFn::Tanh, ActivationFn::Sigmoid)
        {
            self.units
        } else {
            4 * self.units
        }
    }

    /// The backward pass of [`lstm_gates`] over a step's rows, every row on its own. `post`
    /// and `keep` are the step's activated gates and what [`lstm_gates`] kept
    /// ([`keep_width`](Self::keep_width) per row), `prev` and `next` the states `[h, c]` before and after it. From `d_states`, the
    /// gradients of the loss with respect to the new `[h, c]`, writes the gradient of the
    /// gates' pre-activations to `d_z` and leaves that of the previous `c` in `d_states[1]`;
    /// returns `d_states[0]`, unchanged, for the caller to overwrite with the previous `h`'s
    /// gradient, its recurrent product of `d_z`. `scratch` holds `2·units` values per row.
    ///
    /// ```text
    /// d_o = d_h ⊙ g(c_t)                     d_c = d_c_t + d_h ⊙ o ⊙ g'(c_t)
    /// d_i = d_c ⊙ c̃   d_f = d_c ⊙ c_{t-1}   d_c̃ = d_c ⊙ i   d_c_{t-1} = d_c ⊙ f
    /// d_z = (d_i, d_f, d_c̃, d_o) ⊙ the gates' derivatives
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward<'a>(
        self,
        post: &[f32],
        keep: &[f32],
        prev: &[ArrayView2<'_, f32>],
        next: &[ArrayView2<'_, f32>],
        d_states: &'a mut [Array2<f32>],
        d_z: &mut [f32],
        scratch: &mut [f32],
    ) -> &'a mut [f32] {
        let (u, act, rec) = (self.units, self.activation, self.recurrent_activation);
        let [dh, dc] = d_states else {
            unreachable!("an LSTM carries two states");
        };
        let dh = dh.as_slice_mut().expect("states are in standard layout");
        let dc = dc.as_slice_mut().expect("states are in standard layout");
        let c_prev = prev[1].as_slice().expect("standard layout");
        let c_next = next[1].as_slice().expect("standard layout");
        if (act, rec) == (ActivationFn::Tanh, ActivationFn::Sigmoid) {
            // Keras's activations: every row in one pass, the same arithmetic as below.
            tanh_sigmoid_rows(u, post, keep, d_z, dh, dc, c_prev);
            return dh;
        }
        let rows = post
            .chunks_exact(4 * u)
            .zip(keep.chunks_exact(4 * u))
            .zip(d_z.chunks_exact_mut(4 * u))
            .zip(scratch.chunks_exact_mut(2 * u))
            .zip(dh.chunks_exact(u).zip(dc.chunks_exact_mut(u)))
            .zip(c_prev.chunks_exact(u).zip(c_next.chunks_exact(u)));
        for (((((gates, pre), dz), sc), (dhr, dcr)), (cp, cn)) in rows {
            let (i, rest) = gates.split_at(u);
            let (f, rest) = rest.split_at(u);
            let (g, o) = rest.split_at(u);
            let (tc, dcell) = sc.split_at_mut(u);
            tc.copy_from_slice(cn);
            act.apply_slice(tc, u);
            for ((d, &h), &ov) in dcell.iter_mut().zip(dhr).zip(o) {
                *d = h * ov;
            }
            act.backward_slice(cn, tc, dcell, u);
            gate_gradients(dz, dcr, dhr, tc, dcell, [i, f, g], cp);
            rec.backward_slice(&pre[..2 * u], &gates[..2 * u], &mut dz[..2 * u], 2 * u);
            act.backward_slice(&pre[2 * u..3 * u], g, &mut dz[2 * u..3 * u], u);
            rec.backward_slice(&pre[3 * u..], o, &mut dz[3 * u..], u);
        }
        dh
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::CallContext;
    use crate::layer::Layer;
    use crate::shape::Shape;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    #[test]
    fn one_unit_one_step_by_hand() -> Result<()> {
        let mut lstm = LSTM::new(1).with_return_state(true);
        lstm.build(&[Shape::new(vec![None, None, Some(1)])])?;
        // kernel columns i, f, c, o = 1, 1, 1, 1; no recurrence; bias 0.
        lstm.set_weights(&[
            array![[1.0_f32, 1.0, 1.0, 1.0]].into_dyn(),
            array![[0.0_f32, 0.0, 0.0, 0.0]].into_dyn(),
            array![0.0_f32, 0.0, 0.0, 0.0].into_dyn(),
        ])?;
        let x = array![[[0.5_f32]]];
        let out = lstm.call(&[x.view().into_dyn()], &mut CallContext::inference())?;
        // i = f = o = σ(0.5) = 0.6224593; c̃ = tanh(0.5) = 0.4621172
        // c = 0.6224593 · 0.4621172 = 0.2876491; h = 0.6224593 · tanh(0.2876491) = 0.1742697
        assert_abs_diff_eq!(out[2][[0, 0]], 0.287_649_1, epsilon = 1e-6);
        assert_abs_diff_eq!(out[1][[0, 0]], 0.174_269_7, epsilon = 1e-6);
        assert_abs_diff_eq!(out[0][[0, 0]], 0.174_269_7, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn unit_forget_bias_sets_the_forget_block_to_one() -> Result<()> {
        let mut lstm = LSTM::new(3);
        lstm.build(&[Shape::new(vec![None, None, Some(2)])])?;
        lstm.initialize();
        let bias = lstm.weights()[2].to_owned();
        assert_eq!(bias.shape(), &[12]);
        assert!(bias.iter().take(3).all(|&b| b == 0.0));
        assert!(bias.iter().skip(3).take(3).all(|&b| b == 1.0));
        assert!(bias.iter().skip(6).all(|&b| b == 0.0));
        Ok(())
    }
}
