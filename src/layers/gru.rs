//! Keras's `GRU`: the gated recurrent unit, in both of Keras's variants.

use ndarray::{s, Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewD};

use crate::activation::ActivationFn;
use crate::error::Result;
use crate::init::Initializer;
use crate::layers::recurrent::{owned1, owned2, sample1, sample2, Cell, Recurrent};
use crate::layers::simple_rnn::check_units;
use crate::linalg::{gemm_acc_strided, Packed};

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
    kernel: Array2<f32>,
    recurrent_kernel: Array2<f32>,
    /// `(2, 3u)` with `reset_after` (input bias, recurrent bias), else `(1, 3u)`.
    bias: Array2<f32>,
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
            kernel: Array2::zeros((0, 0)),
            recurrent_kernel: Array2::zeros((0, 0)),
            bias: Array2::zeros((0, 0)),
            packed_gates: Packed::default(),
            packed_candidate: Packed::default(),
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

    fn pack(&mut self) {
        let u = self.units;
        if self.reset_after {
            self.packed_gates = Packed::new(self.recurrent_kernel.view());
        } else {
            self.packed_gates = Packed::new(self.recurrent_kernel.slice(s![.., ..2 * u]));
            self.packed_candidate = Packed::new(self.recurrent_kernel.slice(s![.., 2 * u..]));
        }
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

    /// Keras's `activation`, for the candidate. Default `tanh`.
    pub fn activation(mut self, activation: ActivationFn) -> Self {
        self.cell_mut().activation = activation;
        self
    }

    /// Keras's `recurrent_activation`, for the gates. Default `sigmoid`.
    pub fn recurrent_activation(mut self, activation: ActivationFn) -> Self {
        self.cell_mut().recurrent_activation = activation;
        self
    }

    /// Keras's `use_bias`. Default true.
    pub fn use_bias(mut self, yes: bool) -> Self {
        self.cell_mut().use_bias = yes;
        self
    }

    /// Keras's `reset_after`: apply the reset gate after the recurrent product, with separate
    /// input and recurrent biases. Default true, as Keras 2.
    pub fn reset_after(mut self, yes: bool) -> Self {
        self.cell_mut().reset_after = yes;
        self
    }

    /// Keras's `kernel_initializer`. Default `glorot_uniform`.
    pub fn kernel_initializer(mut self, init: Initializer) -> Self {
        self.cell_mut().kernel_initializer = init;
        self
    }

    /// Keras's `recurrent_initializer`. Default `orthogonal`.
    pub fn recurrent_initializer(mut self, init: Initializer) -> Self {
        self.cell_mut().recurrent_initializer = init;
        self
    }

    /// Keras's `bias_initializer`. Default `zeros`.
    pub fn bias_initializer(mut self, init: Initializer) -> Self {
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

    fn scratch_width(&self) -> usize {
        if self.reset_after {
            3 * self.units
        } else {
            self.units
        }
    }

    fn validate(&self, layer: &str) -> Result<()> {
        check_units(layer, self.units)
    }

    fn init_weights(&mut self, input_dim: usize) {
        let u = self.units;
        self.kernel = sample2(self.kernel_initializer, input_dim, 3 * u);
        self.recurrent_kernel = sample2(self.recurrent_initializer, u, 3 * u);
        self.bias = if self.use_bias {
            let rows = self.bias_rows();
            let flat = sample1(self.bias_initializer, rows * 3 * u);
            flat.into_shape_with_order((rows, 3 * u))
                .expect("rows·3u values")
        } else {
            Array2::zeros((0, 0))
        };
        self.pack();
    }

    fn weights(&self) -> Vec<ArrayViewD<'_, f32>> {
        let mut w = vec![
            self.kernel.view().into_dyn(),
            self.recurrent_kernel.view().into_dyn(),
        ];
        if self.use_bias {
            w.push(if self.reset_after {
                self.bias.view().into_dyn()
            } else {
                self.bias.row(0).into_dyn()
            });
        }
        w
    }

    fn assign_weights(&mut self, weights: &[ArrayD<f32>]) {
        self.kernel = owned2(&weights[0]);
        self.recurrent_kernel = owned2(&weights[1]);
        if self.use_bias {
            self.bias = if self.reset_after {
                owned2(&weights[2])
            } else {
                owned1(&weights[2]).insert_axis(ndarray::Axis(0))
            };
        }
        self.pack();
    }

    fn kernel(&self) -> ArrayView2<'_, f32> {
        self.kernel.view()
    }

    fn input_bias(&self) -> Option<ArrayView1<'_, f32>> {
        self.use_bias.then(|| self.bias.row(0))
    }

    fn step(&self, z: &mut [f32], states: &mut [Array2<f32>], scratch: &mut [f32], batch: usize) {
        let u = self.units;
        let h = states[0]
            .as_slice_mut()
            .expect("states are in standard layout");
        let (rec, act) = (self.recurrent_activation, self.activation);
        if self.reset_after {
            // scratch = h · recurrent_kernel + b_rec
            let b_rec = self.use_bias.then(|| self.bias.row(1));
            for row in scratch.chunks_exact_mut(3 * u) {
                match &b_rec {
                    Some(b) => row.iter_mut().zip(b).for_each(|(v, &bv)| *v = bv),
                    None => row.fill(0.0),
                }
            }
            gemm_acc_strided(h, &self.packed_gates, scratch, batch, 3 * u);
            let rows = z
                .chunks_exact_mut(3 * u)
                .zip(scratch.chunks_exact(3 * u))
                .zip(h.chunks_exact_mut(u));
            for ((zr, inner), hr) in rows {
                let (gates, cand) = zr.split_at_mut(2 * u);
                gates.iter_mut().zip(inner).for_each(|(g, &i)| *g += i);
                rec.apply_slice(gates, 2 * u);
                let (zg, rg) = gates.split_at(u);
                for ((c, &r), &i) in cand.iter_mut().zip(rg).zip(&inner[2 * u..]) {
                    *c += r * i;
                }
                act.apply_slice(cand, u);
                for ((hv, &zv), &cv) in hr.iter_mut().zip(zg).zip(cand.iter()) {
                    *hv = zv * *hv + (1.0 - zv) * cv;
                }
            }
        } else {
            // z, r: add h · U_zr into the first 2u columns of each row.
            gemm_acc_strided(h, &self.packed_gates, z, batch, 3 * u);
            for ((zr, hr), rh) in z
                .chunks_exact_mut(3 * u)
                .zip(h.chunks_exact(u))
                .zip(scratch.chunks_exact_mut(u))
            {
                rec.apply_slice(&mut zr[..2 * u], 2 * u);
                for ((v, &r), &hv) in rh.iter_mut().zip(&zr[u..2 * u]).zip(hr) {
                    *v = r * hv;
                }
            }
            // h̃: add (r · h) · U_h into the last u columns.
            gemm_acc_strided(
                scratch,
                &self.packed_candidate,
                &mut z[2 * u..],
                batch,
                3 * u,
            );
            for (zr, hr) in z.chunks_exact_mut(3 * u).zip(h.chunks_exact_mut(u)) {
                let (gates, cand) = zr.split_at_mut(2 * u);
                act.apply_slice(cand, u);
                for ((hv, &zv), &cv) in hr.iter_mut().zip(&gates[..u]).zip(cand.iter()) {
                    *hv = zv * *hv + (1.0 - zv) * cv;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Layer;
    use crate::layers::recurrent::RecurrentLayer;
    use crate::shape::Shape;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    /// One unit, one step from h0 = 1: both variants by hand.
    #[test]
    fn one_unit_one_step_by_hand() -> Result<()> {
        let x = array![[[1.0_f32]]];
        let h0 = [array![[1.0_f32]]];
        // reset_after: kernel z, r, h = 0, 0, 0.5; recurrent = 0, 0, 1; b_rec_h = 0.2.
        // z = r = σ(0) = 0.5; h̃ = tanh(0.5 + 0.5·(1 + 0.2)) = tanh(1.1) = 0.8004990
        // h = 0.5·1 + 0.5·0.8004990 = 0.9002495
        let mut gru = GRU::new(1);
        gru.build(&Shape::new(vec![None, None, Some(1)]))?;
        gru.set_weights(&[
            array![[0.0_f32, 0.0, 0.5]].into_dyn(),
            array![[0.0_f32, 0.0, 1.0]].into_dyn(),
            array![[0.0_f32, 0.0, 0.0], [0.0, 0.0, 0.2]].into_dyn(),
        ])?;
        let y = gru.call_with_state(x.view(), Some(&h0))?.output;
        assert_abs_diff_eq!(y[[0, 0]], 0.900_249_5, epsilon = 1e-6);

        // reset_before, bias 0.2 on h: h̃ = tanh(0.5 + 0.2 + (0.5·1)·1) = tanh(1.2) = 0.8336546
        // h = 0.5 + 0.5·0.8336546 = 0.9168273
        let mut gru = GRU::new(1).reset_after(false);
        gru.build(&Shape::new(vec![None, None, Some(1)]))?;
        gru.set_weights(&[
            array![[0.0_f32, 0.0, 0.5]].into_dyn(),
            array![[0.0_f32, 0.0, 1.0]].into_dyn(),
            array![0.0_f32, 0.0, 0.2].into_dyn(),
        ])?;
        let y = gru.call_with_state(x.view(), Some(&h0))?.output;
        assert_abs_diff_eq!(y[[0, 0]], 0.916_827_3, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn bias_shape_follows_reset_after() -> Result<()> {
        let input = Shape::new(vec![None, None, Some(2)]);
        let mut after = GRU::new(3);
        after.build(&input)?;
        assert_eq!(after.weights()[2].shape(), &[2, 9]);
        let mut before = GRU::new(3).reset_after(false);
        before.build(&input)?;
        assert_eq!(before.weights()[2].shape(), &[9]);
        assert_eq!(before.count_params(), 3 * 3 * (2 + 3) + 9);
        Ok(())
    }
}
