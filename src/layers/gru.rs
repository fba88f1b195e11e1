//! Keras's `GRU`: the gated recurrent unit, in both of Keras's variants.

use ndarray::{s, Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewD, Axis};

use crate::activation::ActivationFn;
use crate::error::Result;
use crate::init::Initializer;
use crate::init::{sample1, sample2};
use crate::layer::{owned1, owned2};
use crate::layers::recurrent::{
    cell_getters, check_cell_units, gate_columns, Cell, PackedKernel, PreparedBackward, Recurrent,
    SequenceBackward,
};
use crate::linalg::{gemm_acc, gemm_acc_strided, gemm_tn_acc, tn_product, Packed};

/// Keras's `GRU`, with its three gates fused in one kernel, in Keras's order z, r, h.
///
/// ```text
/// x_z | x_r | x_h = x_t · kernel + b_in                          (3·units wide)
/// reset_after = true (Keras's default, and cuDNN's):
///   u_z | u_r | u_h = h_{t-1} · recurrent_kernel + b_rec
///   z = recurrent_activation(x_z + u_z)      r = recurrent_activation(x_r + u_r)
///   h̃ = activation(x_h + r · u_h)
/// reset_after = false:
///   z = recurrent_activation(x_z + h_{t-1} · U_z)   r = recurrent_activation(x_r + h_{t-1} · U_r)
///   h̃ = activation(x_h + (r · h_{t-1}) · U_h)
/// h_t = z · h_{t-1} + (1 − z) · h̃                                 h_0 = 0
/// ```
///
/// - Input: `(batch, timesteps, input_dim)`.
/// - Output: `(batch, units)`, or `(batch, timesteps, units)` with `return_sequences`.
/// - Weights, in Keras's order and layout: `kernel (input_dim, 3·units)`,
///   `recurrent_kernel (units, 3·units)`, and `bias (2, 3·units)` (row 0 `b_in`, row 1 `b_rec`)
///   with `reset_after`, or `bias (3·units,)` without.
///
/// Its own options, with Keras's defaults: `with_activation` (tanh),
/// `with_recurrent_activation` (sigmoid), `with_use_bias` (true), `with_reset_after` (true),
/// `with_kernel_initializer` (glorot_uniform), `with_recurrent_initializer` (orthogonal),
/// `with_bias_initializer` (zeros); each has a getter of Keras's name. The options every
/// recurrent layer has are listed below.
///
/// ```
/// use seqnn::{Sequential, GRU};
/// let mut model = Sequential::new();
/// model.add(GRU::new(4).input_shape((5, 3)))?;
/// assert_eq!(model.count_params()?, 3 * 4 * (3 + 4) + 2 * 3 * 4);
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding or building it fails for zero units and for an input that is not 3-D.
#[doc = ""]
#[doc = include_str!("recurrent_options.md")]
#[allow(clippy::upper_case_acronyms)]
pub type GRU = Recurrent<GRUCell>;

/// The cell of [`GRU`]: its configuration, weights and one timestep.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone)]
pub struct GRUCell {
    units: usize,
    activation: ActivationFn,
    recurrent_activation: ActivationFn,
    use_bias: bool,
    reset_after: bool,
    kernel_initializer: Initializer,
    recurrent_initializer: Initializer,
    bias_initializer: Initializer,
    values: Option<Box<GRUWeights>>,
}

/// The weights of a [`GRUCell`], once it has them.
#[derive(Debug, Clone)]
struct GRUWeights {
    kernel: Array2<f32>,
    recurrent_kernel: Array2<f32>,
    /// `(2, 3u)` with `reset_after` (input bias, recurrent bias), `(1, 3u)` without, and
    /// `(0, 3u)` without bias.
    bias: Array2<f32>,
    /// The kernel, packed for the input projection.
    packed_kernel: PackedKernel,
    /// reset_after: the whole recurrent kernel; otherwise its z and r columns.
    packed_gates: Packed,
    /// reset_before only: the candidate's columns of the recurrent kernel.
    packed_candidate: Packed,
}

impl GRUCell {
    /// A cell with `units` hidden units and Keras's defaults.
    pub fn new(units: usize) -> Self {
        GRUCell {
            units,
            activation: ActivationFn::Tanh,
            recurrent_activation: ActivationFn::Sigmoid,
            use_bias: true,
            reset_after: true,
            kernel_initializer: Initializer::GlorotUniform,
            recurrent_initializer: Initializer::Orthogonal,
            bias_initializer: Initializer::Zeros,
            values: None,
        }
    }

    /// Whether the reset gate applies after the recurrent product (Keras's `reset_after`).
    pub fn reset_after(&self) -> bool {
        self.reset_after
    }

    /// The activation of the candidate.
    pub fn activation(&self) -> ActivationFn {
        self.activation
    }

    /// The activation of the gates.
    pub fn recurrent_activation(&self) -> ActivationFn {
        self.recurrent_activation
    }

    /// Whether the cell has a bias.
    pub fn use_bias(&self) -> bool {
        self.use_bias
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

    /// Keeps the weights, with the recurrent kernel packed for the step.
    fn set(&mut self, kernel: Array2<f32>, recurrent_kernel: Array2<f32>, bias: Array2<f32>) {
        let u = self.units;
        let (packed_gates, packed_candidate) = if self.reset_after {
            (Packed::new(recurrent_kernel.view()), Packed::default())
        } else {
            (
                Packed::new(recurrent_kernel.slice(s![.., ..2 * u])),
                Packed::new(recurrent_kernel.slice(s![.., 2 * u..])),
            )
        };
        self.values = Some(Box::new(GRUWeights {
            packed_kernel: PackedKernel::new(kernel.view()),
            kernel,
            recurrent_kernel,
            // Standard layout, so that the steps copy its rows as slices.
            bias: bias.as_standard_layout().into_owned(),
            packed_gates,
            packed_candidate,
        }));
    }

    fn weights_for_step(&self) -> &GRUWeights {
        self.values
            .as_ref()
            .expect("the driver steps only a cell with weights")
    }

    fn bias_rows(&self) -> usize {
        if self.reset_after {
            2
        } else {
            1
        }
    }
}

impl GRU {
    /// A GRU with `units` hidden units, as Keras's `GRU(units)`.
    pub fn new(units: usize) -> Self {
        Recurrent::from_cell(GRUCell::new(units))
    }

    cell_getters! {
        activation: ActivationFn,
        use_bias: bool,
        kernel_initializer: Initializer,
        recurrent_initializer: Initializer,
        bias_initializer: Initializer,
        recurrent_activation: ActivationFn,
        reset_after: bool,
    }

    /// Keras's `activation`, for the candidate. Default `tanh`.
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
        self.cell_mut().use_bias = yes;
        self
    }

    /// Keras's `reset_after`: apply the reset gate after the recurrent product, with separate
    /// input and recurrent biases. Default true, as Keras 2.
    #[must_use]
    pub fn with_reset_after(mut self, yes: bool) -> Self {
        self.cell_mut().reset_after = yes;
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

impl Cell for GRUCell {
    const CLASS_NAME: &'static str = "GRU";
    const BASE_NAME: &'static str = "gru";

    fn units(&self) -> usize {
        self.units
    }

    fn gate_width(&self) -> usize {
        3 * self.units
    }

    /// `h_{t-1}·recurrent_kernel + b_rec` with `reset_after`, `r ⊙ h_{t-1}` without; then
    /// `h_{t-1} ⊙ mask` under recurrent dropout.
    fn scratch_width(&self) -> usize {
        if self.reset_after {
            4 * self.units
        } else {
            2 * self.units
        }
    }

    fn validate(&self, layer: &str) -> Result<()> {
        check_cell_units(layer, self.units, 3)
    }

    fn weight_shapes(&self, input_dim: usize) -> Vec<(&'static str, Vec<usize>)> {
        let w = 3 * self.units;
        let mut shapes = vec![
            ("kernel", vec![input_dim, w]),
            ("recurrent_kernel", vec![self.units, w]),
        ];
        if self.use_bias {
            shapes.push((
                "bias",
                if self.reset_after {
                    vec![2, w]
                } else {
                    vec![w]
                },
            ));
        }
        shapes
    }

    fn init_weights(&mut self, input_dim: usize) {
        let u = self.units;
        let rows = if self.use_bias { self.bias_rows() } else { 0 };
        let flat = sample1(self.bias_initializer, rows * 3 * u);
        let bias = flat
            .into_shape_with_order((rows, 3 * u))
            .expect("rows·3u values");
        self.set(
            sample2(self.kernel_initializer, input_dim, 3 * u),
            sample2(self.recurrent_initializer, u, 3 * u),
            bias,
        );
    }

    fn without_weights(&self) -> Self {
        GRUCell {
            values: None,
            ..*self
        }
    }

    fn weights(&self) -> Vec<ArrayViewD<'_, f32>> {
        let Some(v) = &self.values else {
            return Vec::new();
        };
        let mut w = vec![
            v.kernel.view().into_dyn(),
            v.recurrent_kernel.view().into_dyn(),
        ];
        if self.use_bias {
            w.push(if self.reset_after {
                v.bias.view().into_dyn()
            } else {
                v.bias.row(0).into_dyn()
            });
        }
        w
    }

    fn assign_weights(&mut self, weights: &[ArrayD<f32>]) {
        let bias = match (self.use_bias, self.reset_after) {
            (false, _) => Array2::zeros((0, 3 * self.units)),
            (true, true) => owned2(&weights[2]),
            (true, false) => owned1(&weights[2]).insert_axis(Axis(0)),
        };
        self.set(owned2(&weights[0]), owned2(&weights[1]), bias);
    }

    fn input_projection(&self) -> Option<(ArrayView2<'_, f32>, Option<ArrayView1<'_, f32>>)> {
        let v = self.values.as_ref()?;
        Some((v.kernel.view(), self.use_bias.then(|| v.bias.row(0))))
    }

    fn packed_input_kernel(&self) -> Option<&PackedKernel> {
        self.values.as_ref().map(|v| &v.packed_kernel)
    }

    fn step(&self, z: &mut [f32], states: &mut [Array2<f32>], scratch: &mut [f32], batch: usize) {
        self.step_from(None, z, states, scratch, batch, None, None);
    }

    /// With `reset_after` only: without it, the candidate's product takes `r ⊙ h_{t-1}`, all
    /// of `r` before any of it.
    fn unit_slice(&self, range: std::ops::Range<usize>) -> Option<Self> {
        if !self.reset_after {
            return None;
        }
        let v = self.weights_for_step();
        let columns = |a: &Array2<f32>| gate_columns(a.view(), 3, self.units, &range);
        let mut slice = GRUCell {
            units: range.len(),
            values: None,
            ..*self
        };
        slice.set(
            columns(&v.kernel),
            columns(&v.recurrent_kernel),
            columns(&v.bias),
        );
        Some(slice)
    }

    fn step_slice(
        &self,
        h: &[f32],
        z: &mut [f32],
        states: &mut [Array2<f32>],
        scratch: &mut [f32],
        batch: usize,
    ) {
        self.step_from(Some(h), z, states, scratch, batch, None, None);
    }

    /// A step keeps the pre-activations of z, r and the candidate, then the recurrent
    /// candidate term: `h_{t-1}·U_h + b_rh` with `reset_after`, `r ⊙ h_{t-1}` without.
    fn keep_width(&self) -> usize {
        4 * self.units
    }

    fn step_keep(
        &self,
        z: &mut [f32],
        states: &mut [Array2<f32>],
        scratch: &mut [f32],
        batch: usize,
        keep: &mut [f32],
    ) {
        self.step_from(None, z, states, scratch, batch, Some(keep), None);
    }

    /// As Keras's `GRUCell`: the recurrent products take `h_{t-1} ⊙ mask` (the candidate's,
    /// without `reset_after`, `r ⊙ (h_{t-1} ⊙ mask)`), the blend `z ⊙ h_{t-1}` the state as
    /// it is.
    fn step_keep_dropped(
        &self,
        z: &mut [f32],
        states: &mut [Array2<f32>],
        scratch: &mut [f32],
        batch: usize,
        keep: &mut [f32],
        mask: ArrayView2<'_, f32>,
    ) {
        let mask = mask.as_slice().expect("the mask is in standard layout");
        self.step_from(None, z, states, scratch, batch, Some(keep), Some(mask));
    }

    /// `reset_after`: the recurrent kernel transposed; without: its z, r columns and its
    /// candidate columns, each transposed.
    fn prepare_backward(&self) -> PreparedBackward {
        let v = self.weights_for_step();
        let u = self.units;
        PreparedBackward::new(if self.reset_after {
            vec![Packed::new(v.recurrent_kernel.t())]
        } else {
            vec![
                Packed::new(v.recurrent_kernel.slice(s![.., ..2 * u]).t()),
                Packed::new(v.recurrent_kernel.slice(s![.., 2 * u..]).t()),
            ]
        })
    }

    fn recurrent_grad_width(&self) -> usize {
        if self.reset_after {
            3 * self.units
        } else {
            0
        }
    }

    /// Without `reset_after`: the candidate's gradient, that of `r ⊙ h_{t-1}`, and the z, r
    /// gradients, contiguous (with it, the step needs none). Then, for recurrent dropout,
    /// the direct part of `d_h_{t-1}` and, without `reset_after`, `h_{t-1} ⊙ mask`.
    fn backward_scratch_width(&self) -> usize {
        if self.reset_after {
            self.units
        } else {
            6 * self.units
        }
    }

    /// ```text
    /// d_z = d_h ⊙ (h_{t-1} − h̃)   d_h̃ = d_h ⊙ (1 − z)   d_a = d_h̃ ⊙ g'(a)  (a: h̃'s input)
    /// reset_after: d_r = d_a ⊙ (h_{t-1}·U_h + b_rh),  the recurrent term's gradient d_a ⊙ r
    /// otherwise:   d(r⊙h) = d_a · U_hᵀ,  d_r = d(r⊙h) ⊙ h_{t-1}
    /// d_h_{t-1} = d_h ⊙ z + (the recurrent products' gradients) · U
    /// ```
    ///
    /// Each row in one pass with `reset_after` (two around the candidate's product without),
    /// the direct part of `d_h_{t-1}` written over `d_h` in place.
    fn step_backward(
        &self,
        prepared: &PreparedBackward,
        post: &[f32],
        keep: &[f32],
        prev: &[ArrayView2<'_, f32>],
        _next: &[ArrayView2<'_, f32>],
        d_states: &mut [Array2<f32>],
        d_z: &mut [f32],
        d_rec: &mut [f32],
        scratch: &mut [f32],
        batch: usize,
    ) {
        self.backward_step(
            prepared, post, keep, prev, d_states, d_z, d_rec, scratch, batch, None,
        );
    }

    /// As [`step_backward`](Cell::step_backward), with `h̄ = h_{t-1} ⊙ mask` where the
    /// products took it: `d_r = d(r⊙h̄) ⊙ h̄` without `reset_after`, and
    /// `d_h_{t-1} = d_h ⊙ z + ((the products' gradients) · U) ⊙ mask`.
    fn step_backward_dropped(
        &self,
        prepared: &PreparedBackward,
        post: &[f32],
        keep: &[f32],
        prev: &[ArrayView2<'_, f32>],
        _next: &[ArrayView2<'_, f32>],
        d_states: &mut [Array2<f32>],
        d_z: &mut [f32],
        d_rec: &mut [f32],
        scratch: &mut [f32],
        batch: usize,
        mask: ArrayView2<'_, f32>,
    ) {
        let mask = mask.as_slice().expect("the mask is in standard layout");
        self.backward_step(
            prepared,
            post,
            keep,
            prev,
            d_states,
            d_z,
            d_rec,
            scratch,
            batch,
            Some(mask),
        );
    }

    fn weight_grads(&self, seq: SequenceBackward<'_>) -> Vec<ArrayD<f32>> {
        let u = self.units;
        let SequenceBackward {
            xt,
            h_prev,
            keep,
            d_z,
            d_rec,
            ..
        } = seq;
        let sums = |s: &[f32]| ndarray::Array1::from(s.to_vec());
        let kernel = tn_product(xt, d_z);
        let (recurrent, bias) = if self.reset_after {
            let bias = ndarray::stack(
                Axis(0),
                &[sums(seq.d_z_sums).view(), sums(seq.d_rec_sums).view()],
            )
            .expect("two rows of 3u")
            .into_dyn();
            (tn_product(h_prev, d_rec), bias)
        } else {
            // z, r columns from h_{t-1}, the candidate's from r ⊙ h_{t-1}, into one (u, 3u).
            let mut recurrent = Array2::zeros((u, 3 * u));
            let out = recurrent.as_slice_mut().expect("a new array");
            gemm_tn_acc(h_prev, d_z.slice(s![.., ..2 * u]), out, 3 * u);
            let rh = keep.slice(s![.., 3 * u..]);
            gemm_tn_acc(rh, d_z.slice(s![.., 2 * u..]), &mut out[2 * u..], 3 * u);
            (recurrent, sums(seq.d_z_sums).into_dyn())
        };
        let mut w = vec![kernel.into_dyn(), recurrent.into_dyn()];
        if self.use_bias {
            w.push(bias);
        }
        w
    }
}

/// Under recurrent dropout, moves the direct part of `d_h_{t-1}` (`d_h ⊙ z`) from `dh` to
/// `direct`, leaving zeros in which the gradient through the recurrent products gathers.
fn set_aside_direct(mask: Option<&[f32]>, direct: &mut [f32], dh: &mut [f32]) {
    if mask.is_some() {
        direct.copy_from_slice(dh);
        dh.fill(0.0);
    }
}

/// `out = a ⊙ b`, returned.
fn times<'a>(out: &'a mut [f32], a: &[f32], b: &[f32]) -> &'a [f32] {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x * y;
    }
    out
}

/// One row of a GRU's backward step, before the activations' derivatives: the update gate's
/// gradient `d_h ⊙ (h_{t-1} − h̃)`, the candidate's `d_h ⊙ (1 − z)`, and the direct part of
/// `d_h_{t-1}`, `d_h ⊙ z`, written over `d_h`.
#[inline(always)]
fn candidate_and_update(
    dzz: &mut [f32],
    dzh: &mut [f32],
    dh: &mut [f32],
    h_prev: &[f32],
    z: &[f32],
    cand: &[f32],
) {
    // One length for all, so that the loop has no bounds checks and vectorizes.
    let n = dh.len();
    let (dzz, dzh, h_prev, z, cand) = (
        &mut dzz[..n],
        &mut dzh[..n],
        &h_prev[..n],
        &z[..n],
        &cand[..n],
    );
    for k in 0..n {
        let g = dh[k];
        dzz[k] = g * (h_prev[k] - cand[k]);
        dzh[k] = g * (1.0 - z[k]);
        dh[k] = g * z[k];
    }
}

/// The gate gradients of a `reset_after` GRU's backward step over all its rows, for any
/// `(activation, recurrent_activation)`: from `dh`, the gradient of each row's output, the
/// gradients of the pre-activations into `d_z` (z | r | h̃) and `d_rec` (those of the
/// recurrent product `h_{t-1}·U + b_rec`: z's and r's, then the candidate's inner one), and
/// `dh` becomes the part of `h_{t-1}`'s gradient that does not pass through the products.
#[allow(clippy::too_many_arguments)]
fn reset_after_gate_grads(
    (act, rec): (ActivationFn, ActivationFn),
    u: usize,
    post: &[f32],
    keep: &[f32],
    d_z: &mut [f32],
    dh: &mut [f32],
    h_prev: &[f32],
    d_rec: &mut [f32],
) {
    let rows = post
        .chunks_exact(3 * u)
        .zip(keep.chunks_exact(4 * u))
        .zip(d_z.chunks_exact_mut(3 * u))
        .zip(dh.chunks_exact_mut(u).zip(h_prev.chunks_exact(u)));
    for ((((gates, pre), dz), (dhr, hp)), drec) in rows.zip(d_rec.chunks_exact_mut(3 * u)) {
        let (zg, rest) = gates.split_at(u);
        let (rg, cand) = rest.split_at(u);
        let (dzz, rest) = dz.split_at_mut(u);
        let (dzr, dzh) = rest.split_at_mut(u);
        candidate_and_update(dzz, dzh, dhr, hp, zg, cand);
        act.backward_slice(&pre[2 * u..3 * u], cand, dzh, u);
        let (inner, drec_h) = (&pre[3 * u..4 * u], &mut drec[2 * u..3 * u]);
        for k in 0..u {
            let da = dzh[k];
            dzr[k] = da * inner[k];
            drec_h[k] = da * rg[k];
        }
        rec.backward_slice(&pre[..2 * u], &gates[..2 * u], &mut dz[..2 * u], 2 * u);
        drec[..2 * u].copy_from_slice(&dz[..2 * u]);
    }
}

crate::linalg::dispatched!(
    /// [`reset_after_gate_grads`] for `activation` tanh and `recurrent_activation` sigmoid,
    /// whose derivatives come from their outputs (`1 − y²`, `y·(1 − y)`): each value as that
    /// path computes it, operation for operation, in one pass over each row instead of five
    /// and a copy (the general path's two passes per row through the activations' dispatch
    /// took 6 % of T4's epoch).
    fn tanh_sigmoid_reset_after_backward(
        u: usize,
        post: &[f32],
        keep: &[f32],
        d_z: &mut [f32],
        dh: &mut [f32],
        h_prev: &[f32],
        d_rec: &mut [f32],
    ) {
        let rows = post
            .chunks_exact(3 * u)
            .zip(keep.chunks_exact(4 * u))
            .zip(
                d_z.chunks_exact_mut(3 * u)
                    .zip(d_rec.chunks_exact_mut(3 * u)),
            )
            .zip(dh.chunks_exact_mut(u).zip(h_prev.chunks_exact(u)));
        for (((gates, pre), (dz, drec)), (dhr, hp)) in rows {
            tanh_sigmoid_reset_after_row(gates, &pre[3 * u..], dz, drec, dhr, hp);
        }
    }
);

/// One row of `tanh_sigmoid_reset_after_backward`, its slices as arguments so that LLVM knows
/// they do not overlap and vectorizes the loop.
#[inline(always)]
fn tanh_sigmoid_reset_after_row(
    gates: &[f32],
    inner: &[f32],
    dz: &mut [f32],
    drec: &mut [f32],
    dh: &mut [f32],
    h_prev: &[f32],
) {
    let u = dh.len();
    let (zg, rest) = gates.split_at(u);
    let (rg, cand) = rest.split_at(u);
    let (dzz, rest) = dz.split_at_mut(u);
    let (dzr, dzh) = rest.split_at_mut(u);
    let (drz, rest) = drec.split_at_mut(u);
    let (drr, drh) = rest.split_at_mut(u);
    // One length for all, so that the loop has no bounds checks.
    let (zg, rg, cand, inner, h_prev) = (&zg[..u], &rg[..u], &cand[..u], &inner[..u], &h_prev[..u]);
    let (dzz, dzr, dzh, drz, drr, drh) = (
        &mut dzz[..u],
        &mut dzr[..u],
        &mut dzh[..u],
        &mut drz[..u],
        &mut drr[..u],
        &mut drh[..u],
    );
    for k in 0..u {
        let g = dh[k];
        let (z, r, c) = (zg[k], rg[k], cand[k]);
        dh[k] = g * z;
        // The candidate's tanh, then the reset gate's and update gate's sigmoids.
        let da = g * (1.0 - z) * (1.0 - c * c);
        let dz_z = g * (h_prev[k] - c) * (z * (1.0 - z));
        let dz_r = da * inner[k] * (r * (1.0 - r));
        dzz[k] = dz_z;
        dzr[k] = dz_r;
        dzh[k] = da;
        drz[k] = dz_z;
        drr[k] = dz_r;
        drh[k] = da * r;
    }
}

impl GRUCell {
    /// The backward step ([`Cell::step_backward`]); with a recurrent dropout `mask`, that of
    /// a step whose recurrent products took `h_{t-1} ⊙ mask`.
    #[allow(clippy::too_many_arguments)]
    fn backward_step(
        &self,
        prepared: &PreparedBackward,
        post: &[f32],
        keep: &[f32],
        prev: &[ArrayView2<'_, f32>],
        d_states: &mut [Array2<f32>],
        d_z: &mut [f32],
        d_rec: &mut [f32],
        scratch: &mut [f32],
        batch: usize,
        mask: Option<&[f32]>,
    ) {
        let u = self.units;
        let (act, rec) = (self.activation, self.recurrent_activation);
        let h_prev = prev[0].as_slice().expect("standard layout");
        let dh = d_states[0]
            .as_slice_mut()
            .expect("states are in standard layout");
        let base = if self.reset_after { 0 } else { 4 * batch * u };
        let (scratch, dropped) = scratch.split_at_mut(base);
        let (direct, h_masked) = dropped.split_at_mut(batch * u);
        if self.reset_after {
            if (act, rec) == (ActivationFn::Tanh, ActivationFn::Sigmoid) {
                // Keras's activations: every row in one pass, the same arithmetic as below.
                tanh_sigmoid_reset_after_backward(u, post, keep, d_z, dh, h_prev, d_rec);
            } else {
                reset_after_gate_grads((act, rec), u, post, keep, d_z, dh, h_prev, d_rec);
            }
            set_aside_direct(mask, direct, dh);
            gemm_acc(d_rec, prepared.kernel(0), dh, batch);
        } else {
            let (da, rest) = scratch.split_at_mut(batch * u);
            let (d_rh, dzr) = rest.split_at_mut(batch * u);
            let rows = post
                .chunks_exact(3 * u)
                .zip(keep.chunks_exact(4 * u))
                .zip(d_z.chunks_exact_mut(3 * u))
                .zip(dh.chunks_exact_mut(u).zip(h_prev.chunks_exact(u)));
            for ((((gates, pre), dz), (dhr, hp)), d) in rows.zip(da.chunks_exact_mut(u)) {
                let (zg, rest) = gates.split_at(u);
                let cand = &rest[u..];
                let (dzz, rest) = dz.split_at_mut(u);
                let dzh = &mut rest[u..];
                candidate_and_update(dzz, dzh, dhr, hp, zg, cand);
                act.backward_slice(&pre[2 * u..3 * u], cand, dzh, u);
                d.copy_from_slice(dzh);
            }
            set_aside_direct(mask, direct, dh);
            d_rh.fill(0.0);
            gemm_acc(da, prepared.kernel(1), d_rh, batch);
            // What the products took: h_{t-1}, or h_{t-1} ⊙ mask.
            let h_rec: &[f32] = match mask {
                Some(m) => times(h_masked, h_prev, m),
                None => h_prev,
            };
            let rows = post
                .chunks_exact(3 * u)
                .zip(keep.chunks_exact(4 * u))
                .zip(d_z.chunks_exact_mut(3 * u))
                .zip(dh.chunks_exact_mut(u).zip(h_rec.chunks_exact(u)))
                .zip(d_rh.chunks_exact(u).zip(dzr.chunks_exact_mut(2 * u)));
            for ((((gates, pre), dz), (dhr, hp)), (drh, zr)) in rows {
                let (rg, dzr_row) = (&gates[u..2 * u], &mut dz[u..2 * u]);
                // d_h holds d_h ⊙ z from the first pass (zeros under recurrent dropout).
                for k in 0..u {
                    let g = drh[k];
                    dzr_row[k] = g * hp[k];
                    dhr[k] += g * rg[k];
                }
                rec.backward_slice(&pre[..2 * u], &gates[..2 * u], &mut dz[..2 * u], 2 * u);
                zr.copy_from_slice(&dz[..2 * u]);
            }
            gemm_acc(dzr, prepared.kernel(0), dh, batch);
        }
        if let Some(m) = mask {
            // d_h_{t-1} = d_h ⊙ z + (the gradient with respect to h_{t-1} ⊙ mask) ⊙ mask
            for ((d, &g), &mv) in dh.iter_mut().zip(&*direct).zip(m) {
                *d = g + *d * mv;
            }
        }
    }

    /// One step, keeping what the backward step needs when training; with a recurrent
    /// dropout `mask`, the recurrent products take `h_{t-1} ⊙ mask`; given `h_in`, the whole
    /// cell's `h_{t-1}` for a unit slice ([`Cell::step_slice`]), they take that.
    #[allow(clippy::too_many_arguments)]
    fn step_from(
        &self,
        h_in: Option<&[f32]>,
        z: &mut [f32],
        states: &mut [Array2<f32>],
        scratch: &mut [f32],
        batch: usize,
        mut keep: Option<&mut [f32]>,
        mask: Option<&[f32]>,
    ) {
        let u = self.units;
        let h = states[0]
            .as_slice_mut()
            .expect("states are in standard layout");
        let (rec, act) = (self.recurrent_activation, self.activation);
        let w = self.weights_for_step();
        let (scratch, dropped) = scratch.split_at_mut(scratch.len() - batch * u);
        // What the recurrent products take: h_{t-1}, or h_{t-1} ⊙ mask; a unit slice's
        // products take the whole cell's h_{t-1}, `h_in`.
        let h_rec: &[f32] = match (h_in, mask) {
            (Some(whole), _) => whole,
            (None, Some(m)) => times(dropped, h, m),
            (None, None) => h,
        };
        if self.reset_after {
            // scratch = h_rec · recurrent_kernel + b_rec
            let b_rec = self.use_bias.then(|| w.bias.row(1));
            // A row of the standard-layout bias is contiguous: each row a memcpy.
            let b_rec = b_rec.as_ref().map(|b| b.as_slice().expect("a bias row"));
            for row in scratch.chunks_exact_mut(3 * u) {
                match b_rec {
                    Some(b) => row.copy_from_slice(b),
                    None => row.fill(0.0),
                }
            }
            gemm_acc_strided(h_rec, &w.packed_gates, scratch, batch, 3 * u);
            if (act, rec) == (ActivationFn::Tanh, ActivationFn::Sigmoid) {
                // Keras's activations: every row in one pass, the same arithmetic as below.
                tanh_sigmoid_reset_after(u, z, scratch, h, keep);
                return;
            }
            let rows = z
                .chunks_exact_mut(3 * u)
                .zip(scratch.chunks_exact(3 * u))
                .zip(h.chunks_exact_mut(u));
            for (row, ((zr, inner), hr)) in rows.enumerate() {
                let (gates, cand) = zr.split_at_mut(2 * u);
                gates.iter_mut().zip(inner).for_each(|(g, &i)| *g += i);
                let mut kept = keep
                    .as_deref_mut()
                    .map(|k| &mut k[row * 4 * u..(row + 1) * 4 * u]);
                if let Some(k) = kept.as_deref_mut() {
                    k[..2 * u].copy_from_slice(gates);
                    k[3 * u..].copy_from_slice(&inner[2 * u..]);
                }
                rec.apply_slice(gates, 2 * u);
                let (zg, rg) = gates.split_at(u);
                for ((c, &r), &i) in cand.iter_mut().zip(rg).zip(&inner[2 * u..]) {
                    *c += r * i;
                }
                if let Some(k) = kept {
                    k[2 * u..3 * u].copy_from_slice(cand);
                }
                act.apply_slice(cand, u);
                for ((hv, &zv), &cv) in hr.iter_mut().zip(zg).zip(cand.iter()) {
                    *hv = zv * *hv + (1.0 - zv) * cv;
                }
            }
        } else {
            // z, r: add h_rec · U_zr into the first 2u columns of each row.
            gemm_acc_strided(h_rec, &w.packed_gates, z, batch, 3 * u);
            for (row, ((zr, hr), rh)) in z
                .chunks_exact_mut(3 * u)
                .zip(h_rec.chunks_exact(u))
                .zip(scratch.chunks_exact_mut(u))
                .enumerate()
            {
                if let Some(k) = keep.as_deref_mut() {
                    k[row * 4 * u..row * 4 * u + 2 * u].copy_from_slice(&zr[..2 * u]);
                }
                rec.apply_slice(&mut zr[..2 * u], 2 * u);
                for ((v, &r), &hv) in rh.iter_mut().zip(&zr[u..2 * u]).zip(hr) {
                    *v = r * hv;
                }
            }
            // h̃: add (r · h_rec) · U_h into the last u columns.
            gemm_acc_strided(scratch, &w.packed_candidate, &mut z[2 * u..], batch, 3 * u);
            for (row, (zr, hr)) in z
                .chunks_exact_mut(3 * u)
                .zip(h.chunks_exact_mut(u))
                .enumerate()
            {
                let (gates, cand) = zr.split_at_mut(2 * u);
                if let Some(k) = keep.as_deref_mut() {
                    let k = &mut k[row * 4 * u..(row + 1) * 4 * u];
                    k[2 * u..3 * u].copy_from_slice(cand);
                    k[3 * u..].copy_from_slice(&scratch[row * u..(row + 1) * u]);
                }
                act.apply_slice(cand, u);
                for ((hv, &zv), &cv) in hr.iter_mut().zip(&gates[..u]).zip(cand.iter()) {
                    *hv = zv * *hv + (1.0 - zv) * cv;
                }
            }
        }
    }
}

crate::linalg::dispatched!(
    /// The gates of a GRU with `reset_after`, `activation` tanh and `recurrent_activation`
    /// sigmoid, over all rows, after the recurrent product `inner` (`h_{t-1}·U + b_rec`):
    /// each value as the general path of [`GRUCell::step_from`] computes it, operation for
    /// operation, in one pass over each row instead of seven. With `keep` it leaves in `z`
    /// and `keep` what that path leaves there; without, an inference step's, `z` keeps its
    /// pre-activations, which nothing reads after the step.
    fn tanh_sigmoid_reset_after(
        u: usize,
        z: &mut [f32],
        inner: &[f32],
        h: &mut [f32],
        keep: Option<&mut [f32]>,
    ) {
        let rows = z
            .chunks_exact_mut(3 * u)
            .zip(inner.chunks_exact(3 * u))
            .zip(h.chunks_exact_mut(u));
        match keep {
            Some(keep) => {
                for (((zr, ir), hr), kr) in rows.zip(keep.chunks_exact_mut(4 * u)) {
                    let (zg, rest) = zr.split_at_mut(u);
                    let (rg, cand) = rest.split_at_mut(u);
                    let (kzr, rest) = kr.split_at_mut(2 * u);
                    let (kc, ki) = rest.split_at_mut(u);
                    reset_after_row_keeping(zg, rg, cand, ir, hr, kzr, kc, ki);
                }
            }
            None => {
                for ((zr, ir), hr) in rows {
                    let (zg, rest) = zr.split_at_mut(u);
                    let (rg, cand) = rest.split_at_mut(u);
                    reset_after_row(zg, rg, cand, ir, hr);
                }
            }
        }
    }
);

/// One row of [`tanh_sigmoid_reset_after`]: the update, reset and candidate columns of `z`,
/// the row's recurrent product `inner` (all three gates) and its state `h`. Each slice is an
/// argument of its own, so that LLVM knows that they do not overlap and vectorizes the loop
/// (fields of one struct, they ran the scalar loop).
#[inline(always)]
fn reset_after_row(zg: &[f32], rg: &[f32], cand: &[f32], inner: &[f32], h: &mut [f32]) {
    use crate::activation::{sigmoid, tanh};
    let u = h.len();
    // One length for all, so that the loop has no bounds checks.
    let (zg, rg, cand) = (&zg[..u], &rg[..u], &cand[..u]);
    let (iz, ir, ih) = (&inner[..u], &inner[u..2 * u], &inner[2 * u..3 * u]);
    // Nothing reads z after an inference step: the gates go to registers only.
    for k in 0..u {
        let (zv, rv) = (sigmoid(zg[k] + iz[k]), sigmoid(rg[k] + ir[k]));
        let cv = tanh(cand[k] + rv * ih[k]);
        h[k] = zv * h[k] + (1.0 - zv) * cv;
    }
}

/// [`reset_after_row`] for training, keeping the update and reset pre-activations in `kzr`,
/// the candidate's pre-activation in `kc` and its recurrent product in `ki`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn reset_after_row_keeping(
    zg: &mut [f32],
    rg: &mut [f32],
    cand: &mut [f32],
    inner: &[f32],
    h: &mut [f32],
    kzr: &mut [f32],
    kc: &mut [f32],
    ki: &mut [f32],
) {
    use crate::activation::{sigmoid, tanh};
    let u = h.len();
    let (zg, rg, cand, kc, ki) = (
        &mut zg[..u],
        &mut rg[..u],
        &mut cand[..u],
        &mut kc[..u],
        &mut ki[..u],
    );
    let (kz, kr) = kzr.split_at_mut(u);
    let (kz, kr) = (&mut kz[..u], &mut kr[..u]);
    let (iz, ir, ih) = (&inner[..u], &inner[u..2 * u], &inner[2 * u..3 * u]);
    for k in 0..u {
        let (zp, rp) = (zg[k] + iz[k], rg[k] + ir[k]);
        (kz[k], kr[k], ki[k]) = (zp, rp, ih[k]);
        let (zv, rv) = (sigmoid(zp), sigmoid(rp));
        let cp = cand[k] + rv * ih[k];
        kc[k] = cp;
        let cv = tanh(cp);
        (zg[k], rg[k], cand[k]) = (zv, rv, cv);
        h[k] = zv * h[k] + (1.0 - zv) * cv;
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

    /// The one-pass backward rows for tanh and sigmoid leave the bits of the general path, on
    /// gates in (0, 1) and (−1, 1) as the forward step leaves them, over rows of 37 units (two
    /// full vectors of 16 lanes and a remainder).
    #[test]
    fn tanh_sigmoid_backward_rows_match_the_general_path() {
        let (u, rows) = (37, 5);
        let value = |i: usize, seed: usize| ((i * 31 + seed * 17) % 97) as f32 / 97.0;
        let post: Vec<f32> = (0..rows * 3 * u)
            .map(|i| {
                let v = value(i, 1);
                // z and r are sigmoids' outputs; the candidate a tanh's.
                if i % (3 * u) < 2 * u {
                    v
                } else {
                    2.0 * v - 1.0
                }
            })
            .collect();
        let keep: Vec<f32> = (0..rows * 4 * u).map(|i| 4.0 * value(i, 2) - 2.0).collect();
        let h_prev: Vec<f32> = (0..rows * u).map(|i| 2.0 * value(i, 3) - 1.0).collect();
        let dh: Vec<f32> = (0..rows * u).map(|i| value(i, 4) - 0.5).collect();
        let run = |fused: bool| {
            let (mut d_z, mut d_rec, mut dh) = (
                vec![f32::NAN; rows * 3 * u],
                vec![f32::NAN; rows * 3 * u],
                dh.clone(),
            );
            if fused {
                tanh_sigmoid_reset_after_backward(
                    u, &post, &keep, &mut d_z, &mut dh, &h_prev, &mut d_rec,
                );
            } else {
                let acts = (ActivationFn::Tanh, ActivationFn::Sigmoid);
                reset_after_gate_grads(
                    acts, u, &post, &keep, &mut d_z, &mut dh, &h_prev, &mut d_rec,
                );
            }
            (d_z, d_rec, dh)
        };
        let (general, fused) = (run(false), run(true));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fused.0), bits(&general.0));
        assert_eq!(bits(&fused.1), bits(&general.1));
        assert_eq!(bits(&fused.2), bits(&general.2));
        // Every value written, and the rows' gradients not all alike.
        assert!(fused.0.iter().chain(&fused.1).all(|v| v.is_finite()));
        assert!(fused.0.iter().any(|&v| v != fused.0[0]));
    }

    /// One unit, one step from h0 = 1: both variants by hand.
    #[test]
    fn one_unit_one_step_by_hand() -> Result<()> {
        let x = array![[[1.0_f32]]];
        let h0 = array![[1.0_f32]];
        // reset_after: kernel z, r, h = 0, 0, 0.5; recurrent = 0, 0, 1; b_rec_h = 0.2.
        // z = r = σ(0) = 0.5; h̃ = tanh(0.5 + 0.5·(1 + 0.2)) = tanh(1.1) = 0.8004990
        // h = 0.5·1 + 0.5·0.8004990 = 0.9002495
        let mut gru = GRU::new(1);
        gru.build(&[Shape::new(vec![None, None, Some(1)])])?;
        gru.set_weights(&[
            array![[0.0_f32, 0.0, 0.5]].into_dyn(),
            array![[0.0_f32, 0.0, 1.0]].into_dyn(),
            array![[0.0_f32, 0.0, 0.0], [0.0, 0.0, 0.2]].into_dyn(),
        ])?;
        let y = gru.call(
            &[x.view().into_dyn(), h0.view().into_dyn()],
            &mut CallContext::inference(),
        )?;
        assert_abs_diff_eq!(y[0][[0, 0]], 0.900_249_5, epsilon = 1e-6);

        // reset_before, bias 0.2 on h: h̃ = tanh(0.5 + 0.2 + (0.5·1)·1) = tanh(1.2) = 0.8336546
        // h = 0.5 + 0.5·0.8336546 = 0.9168273
        let mut gru = GRU::new(1).with_reset_after(false);
        gru.build(&[Shape::new(vec![None, None, Some(1)])])?;
        gru.set_weights(&[
            array![[0.0_f32, 0.0, 0.5]].into_dyn(),
            array![[0.0_f32, 0.0, 1.0]].into_dyn(),
            array![0.0_f32, 0.0, 0.2].into_dyn(),
        ])?;
        let y = gru.call(
            &[x.view().into_dyn(), h0.view().into_dyn()],
            &mut CallContext::inference(),
        )?;
        assert_abs_diff_eq!(y[0][[0, 0]], 0.916_827_3, epsilon = 1e-6);
        Ok(())
    }

    /// One unit, one step from h0 = 1 under recurrent dropout, rows masked 0 and 2: the
    /// recurrent products take h0 ⊙ mask, the blend z · h0 takes h0 itself (Keras's GRUCell).
    #[test]
    fn recurrent_dropout_masks_the_products_and_not_the_blend() -> Result<()> {
        let run = |gru: &GRU, x_h: f32| {
            let cell = gru.cell();
            // x = 1: x·kernel + b_in = 0, 0, x_h on each row.
            let mut z = vec![0.0, 0.0, x_h, 0.0, 0.0, x_h];
            let mut states = vec![array![[1.0_f32], [1.0]]];
            let mut scratch = vec![0.0; 2 * cell.scratch_width()];
            let mut keep = vec![0.0; 2 * cell.keep_width()];
            let mask = array![[0.0_f32], [2.0]];
            cell.step_keep_dropped(&mut z, &mut states, &mut scratch, 2, &mut keep, mask.view());
            states.remove(0)
        };
        // reset_after, as one_unit_one_step_by_hand: z = r = 0.5;
        // mask 0: h̃ = tanh(0.5 + 0.5·(0 + 0.2)) = tanh(0.6) = 0.5370496,
        //         h = 0.5·1 + 0.5·0.5370496 = 0.7685248 (0.2685248 if the blend took h0 ⊙ mask);
        // mask 2: h̃ = tanh(0.5 + 0.5·(2 + 0.2)) = tanh(1.6) = 0.9216686, h = 0.9608343.
        let mut gru = GRU::new(1);
        gru.build(&[Shape::new(vec![None, None, Some(1)])])?;
        gru.set_weights(&[
            array![[0.0_f32, 0.0, 0.5]].into_dyn(),
            array![[0.0_f32, 0.0, 1.0]].into_dyn(),
            array![[0.0_f32, 0.0, 0.0], [0.0, 0.0, 0.2]].into_dyn(),
        ])?;
        let h = run(&gru, 0.5);
        assert_abs_diff_eq!(h, array![[0.768_524_8_f32], [0.960_834_3]], epsilon = 1e-6);

        // reset_before, bias 0.2 on h: x_h = 0.7;
        // mask 0: h̃ = tanh(0.7 + (0.5·0)·1) = tanh(0.7) = 0.6043678, h = 0.8021839;
        // mask 2: h̃ = tanh(0.7 + (0.5·2)·1) = tanh(1.7) = 0.9354091, h = 0.9677045.
        let mut gru = GRU::new(1).with_reset_after(false);
        gru.build(&[Shape::new(vec![None, None, Some(1)])])?;
        gru.set_weights(&[
            array![[0.0_f32, 0.0, 0.5]].into_dyn(),
            array![[0.0_f32, 0.0, 1.0]].into_dyn(),
            array![0.0_f32, 0.0, 0.2].into_dyn(),
        ])?;
        let h = run(&gru, 0.7);
        assert_abs_diff_eq!(h, array![[0.802_183_9_f32], [0.967_704_5]], epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn bias_shape_follows_reset_after() -> Result<()> {
        let input = Shape::new(vec![None, None, Some(2)]);
        let mut after = GRU::new(3);
        after.build(std::slice::from_ref(&input))?;
        assert_eq!(after.weight_specs()[2].shape, vec![2, 9]);
        after.initialize();
        assert_eq!(after.weights()[2].shape(), &[2, 9]);
        let mut before = GRU::new(3).with_reset_after(false);
        before.build(&[input])?;
        before.initialize();
        assert_eq!(before.weights()[2].shape(), &[9]);
        assert_eq!(before.count_params(), 3 * 3 * (2 + 3) + 9);
        Ok(())
    }
}
