//! The one sequence driver that every recurrent layer shares.
//!
//! A recurrent layer is a [`Cell`] (its weights and one timestep) inside [`Recurrent`], which
//! owns everything that is the same for SimpleRNN, LSTM and GRU: the input shape declaration,
//! `return_sequences`, `return_state`, `go_backwards`, initial states, shape inference, and the
//! loop over time. [`Bidirectional`](crate::Bidirectional) drives any of them through the
//! object-safe [`RecurrentLayer`] trait.
//!
//! The loop is built for speed:
//! - the input projection `x·kernel + bias` of all timesteps is one matrix product over
//!   `(timesteps·batch, input_dim)`, laid out time-major so that each step's rows are contiguous;
//! - each step adds `h_{t-1}·recurrent_kernel` into its own rows of that projection in place and
//!   lets the cell finish the step there: the loop allocates nothing;
//! - gates are fused: one kernel holds all gates' columns, so each step is one recurrent product;
//! - batch rows are independent, so large batches are split across threads, each running the
//!   whole sequence for its rows.

use std::fmt;

use ndarray::{
    concatenate, s, Array2, Array3, ArrayD, ArrayView1, ArrayView2, ArrayView3, ArrayViewD, Axis,
    Ix3, Zip,
};

use crate::error::{Error, Result};
use crate::layer::{
    check_input, check_rank, check_weights, common_builders, layer_plumbing, InputDecl, Layer,
    LayerName, Mask, MaskPolicy,
};
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

    /// Creates fresh weights for inputs with `input_dim` features, from the initializers.
    fn init_weights(&mut self, input_dim: usize);

    /// The weights in Keras order, as views.
    fn weights(&self) -> Vec<ArrayViewD<'_, f32>>;

    /// Replaces the weights; their count and shapes were checked against
    /// [`weights`](Cell::weights) already.
    fn assign_weights(&mut self, weights: &[ArrayD<f32>]);

    /// The input kernel, `(input_dim, gate_width)`.
    fn kernel(&self) -> ArrayView2<'_, f32>;

    /// The bias added to the input projection, `(gate_width,)`, if any.
    fn input_bias(&self) -> Option<ArrayView1<'_, f32>>;

    /// Finishes one timestep for `batch` rows.
    ///
    /// `z` holds `x_t·kernel + input bias`, `(batch, gate_width)` row-major, and may be
    /// overwritten. `states` hold the previous states, each `(batch, units)` in standard layout,
    /// and receive the new ones; `states[0]` is the step's output. `scratch` has
    /// `batch·scratch_width()` values. It must not allocate.
    fn step(&self, z: &mut [f32], states: &mut [Array2<f32>], scratch: &mut [f32], batch: usize);
}

/// What a recurrent layer returns when called with [`RecurrentLayer::call_with_state`]: its
/// output and its final states, as Keras's `return_state=True` list.
#[derive(Debug, Clone, PartialEq)]
pub struct RnnOutput {
    /// `(batch, units)`, or `(batch, timesteps, units)` under `return_sequences`.
    pub output: ArrayD<f32>,
    /// The final states, each `(batch, units)`: `[h]`, or `[h, c]` for an LSTM. For a
    /// Bidirectional, the forward layer's states then the backward layer's.
    pub states: Vec<Array2<f32>>,
}

impl RnnOutput {
    /// Keras's list: the output, then every state.
    pub fn into_vec(self) -> Vec<ArrayD<f32>> {
        std::iter::once(self.output)
            .chain(self.states.into_iter().map(|s| s.into_dyn()))
            .collect()
    }
}

/// A recurrent layer as [`Bidirectional`](crate::Bidirectional) needs it: callable with initial
/// states, and able to make its time-reversed twin.
pub trait RecurrentLayer: Layer {
    /// Runs the layer on `(batch, timesteps, features)` from `initial_state` (zeros if `None`)
    /// and returns the output and the final states.
    ///
    /// # Errors
    /// When the layer is not built, `x` does not fit it, or the initial states are not
    /// [`state_count`](RecurrentLayer::state_count) arrays of shape `(batch, units)`.
    fn call_with_state(
        &self,
        x: ArrayView3<'_, f32>,
        initial_state: Option<&[Array2<f32>]>,
    ) -> Result<RnnOutput> {
        self.call_masked(x, initial_state, None, false)
    }

    /// [`call_with_state`](RecurrentLayer::call_with_state) with a `(batch, timesteps)` mask,
    /// as Keras runs a masked RNN: at a masked step the states are carried over unchanged and
    /// the output is the previous step's output (zeros before the first real step), or zeros
    /// when `zero_output_for_mask` (what Keras's Bidirectional asks of its layers).
    ///
    /// # Errors
    /// As [`call_with_state`](RecurrentLayer::call_with_state), and when the mask is not
    /// `(batch, timesteps)`.
    fn call_masked(
        &self,
        x: ArrayView3<'_, f32>,
        initial_state: Option<&[Array2<f32>]>,
        mask: Option<ArrayView2<'_, bool>>,
        zero_output_for_mask: bool,
    ) -> Result<RnnOutput>;

    /// The number of hidden units.
    fn units(&self) -> usize;

    /// How many states the layer carries.
    fn state_count(&self) -> usize;

    /// Whether the output keeps the time axis.
    fn returns_sequences(&self) -> bool;

    /// Whether a call reports the final states as extra outputs.
    fn returns_state(&self) -> bool;

    /// Whether the layer reads its input from the last timestep to the first.
    fn is_go_backwards(&self) -> bool;

    /// A boxed copy, weights included.
    fn clone_recurrent(&self) -> Box<dyn RecurrentLayer>;

    /// An unbuilt copy of the configuration with `go_backwards` flipped: Keras's backward layer.
    fn reversed_copy(&self) -> Box<dyn RecurrentLayer>;
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
    input: InputDecl,
    return_sequences: bool,
    return_state: bool,
    go_backwards: bool,
    trainable: bool,
    stateful: bool,
    zero_output_for_mask: bool,
    input_dim: Option<usize>,
    /// The batch size a stateful layer was built for.
    batch: Option<usize>,
    /// A stateful layer's states, `None` for zeros.
    state: Option<Vec<Array2<f32>>>,
}

impl<C: Cell> Recurrent<C> {
    /// Wraps a configured cell with Keras's default options.
    pub fn from_cell(cell: C) -> Self {
        Recurrent {
            cell,
            name: LayerName::new(C::BASE_NAME),
            input: InputDecl::default(),
            return_sequences: false,
            return_state: false,
            go_backwards: false,
            trainable: true,
            stateful: false,
            zero_output_for_mask: false,
            input_dim: None,
            batch: None,
            state: None,
        }
    }

    /// The cell, with its weights.
    pub fn cell(&self) -> &C {
        &self.cell
    }

    pub(crate) fn cell_mut(&mut self) -> &mut C {
        &mut self.cell
    }

    common_builders!("simple_rnn");

    /// Keras's `batch_size`, the batch dimension to put before `input_shape`.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.input.batch_size = Some(batch_size);
        self
    }

    /// Keras 2's legacy `input_length`: the number of timesteps. Needs
    /// [`input_dim`](Self::input_dim) as well.
    pub fn input_length(mut self, timesteps: usize) -> Self {
        self.input.input_length = Some(timesteps);
        self
    }

    /// Keras 2's legacy `input_dim`: the features per timestep. Alone it declares
    /// `(None, None, input_dim)`, and the number of timesteps may vary from call to call.
    pub fn input_dim(mut self, features: usize) -> Self {
        self.input.input_dim = Some(features);
        self
    }

    /// Keras's `return_sequences`: output every timestep, `(batch, timesteps, units)`, instead of
    /// the last, `(batch, units)`. Default false.
    pub fn return_sequences(mut self, yes: bool) -> Self {
        self.return_sequences = yes;
        self
    }

    /// Keras's `return_state`: a call also returns the final states. Such a layer has several
    /// outputs, so it is used through [`RecurrentLayer::call_with_state`], not in a
    /// `Sequential`. Default false.
    pub fn return_state(mut self, yes: bool) -> Self {
        self.return_state = yes;
        self
    }

    /// Keras's `go_backwards`: read the input from the last timestep to the first; the output
    /// sequence is in that reversed order too. Default false.
    pub fn go_backwards(mut self, yes: bool) -> Self {
        self.go_backwards = yes;
        self
    }

    /// Keras's `zero_output_for_mask`: with a mask and `return_sequences`, output zeros at
    /// masked steps instead of repeating the previous output. Default false (Keras's
    /// Bidirectional sets it on the layers it wraps).
    pub fn zero_output_for_mask(mut self, yes: bool) -> Self {
        self.zero_output_for_mask = yes;
        self
    }

    /// Whether masked steps of a sequence output zeros (Keras's `zero_output_for_mask`).
    pub fn outputs_zero_for_mask(&self) -> bool {
        self.zero_output_for_mask
    }

    /// Keras's `stateful`: the final state of each batch row is the initial state of the same
    /// row in the next [`Sequential::predict`](crate::Sequential::predict), until
    /// [`reset_states`](Layer::reset_states). It needs a fixed batch size, from
    /// `batch_input_shape`. Default false.
    pub fn stateful(mut self, yes: bool) -> Self {
        self.stateful = yes;
        self
    }

    /// The input features the layer was built for, `None` before it is built.
    pub fn built_input_dim(&self) -> Option<usize> {
        self.input_dim
    }

    fn output_shape_for(&self, input: &Shape) -> Shape {
        let units = Some(self.cell.units());
        if self.return_sequences {
            Shape::new(vec![input.dim(0), input.dim(1), units])
        } else {
            Shape::new(vec![input.dim(0), units])
        }
    }

    /// The shape this built layer takes: `(None, None, input_dim)`.
    fn accepted_shape(&self, input_dim: usize) -> Shape {
        Shape::new(vec![None, None, Some(input_dim)])
    }

    fn check_initial_state(&self, batch: usize, states: &[Array2<f32>]) -> Result<()> {
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
}

impl<C: Cell> Layer for Recurrent<C> {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        C::CLASS_NAME
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.cell.validate(self.name.get())?;
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, input: &Shape) -> Result<Shape> {
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
            _ => Ok(self.output_shape_for(input)),
        }
    }

    fn build(&mut self, input: &Shape) -> Result<Shape> {
        let out = self.compute_output_shape(input)?;
        if self.input_dim.is_none() {
            let d = input.last().unwrap_or(0);
            self.cell.init_weights(d);
            self.input_dim = Some(d);
        }
        if self.stateful {
            self.batch = input.dim(0);
        }
        Ok(out)
    }

    fn is_built(&self) -> bool {
        self.input_dim.is_some()
    }

    fn weights(&self) -> Vec<ArrayViewD<'_, f32>> {
        if self.is_built() {
            self.cell.weights()
        } else {
            Vec::new()
        }
    }

    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        if !self.is_built() {
            return Err(Error::NotBuilt {
                name: self.name.get().to_string(),
            });
        }
        check_weights(self.name.get(), &self.cell.weights(), weights)?;
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

    fn forward(&self, input: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        Ok(self.forward_masked(input, None)?.0)
    }

    fn mask_policy(&self) -> MaskPolicy {
        if self.return_sequences {
            MaskPolicy::Propagate
        } else {
            MaskPolicy::Drop
        }
    }

    fn forward_masked(
        &self,
        input: ArrayViewD<'_, f32>,
        mask: Option<ArrayView2<'_, bool>>,
    ) -> Result<(ArrayD<f32>, Option<Mask>)> {
        let x = as_sequence(self.name.get(), input)?;
        let out = self.call_masked(x, None, mask, self.zero_output_for_mask)?;
        Ok((out.output, self.output_mask(mask)))
    }

    fn is_stateful(&self) -> bool {
        self.stateful
    }

    fn forward_stateful(
        &mut self,
        input: ArrayViewD<'_, f32>,
        mask: Option<ArrayView2<'_, bool>>,
    ) -> Result<(ArrayD<f32>, Option<Mask>)> {
        if !self.stateful {
            return self.forward_masked(input, mask);
        }
        let x = as_sequence(self.name.get(), input)?;
        if let Some(batch) = self.batch {
            if x.dim().0 != batch {
                return Err(Error::InvalidArgument {
                    layer: self.name.get().to_string(),
                    message: format!(
                        "this stateful layer was built for batches of {batch}, got an input of \
                         shape {}",
                        Shape::known(x.shape())
                    ),
                });
            }
        }
        let out = self.call_masked(x, self.state.as_deref(), mask, self.zero_output_for_mask)?;
        self.state = Some(out.states);
        Ok((out.output, self.output_mask(mask)))
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

    fn restore_states(&mut self, states: Vec<Array2<f32>>) {
        if self.stateful {
            self.state = (!states.is_empty()).then_some(states);
        }
    }

    fn reset_states(&mut self) {
        self.state = None;
    }
}

impl<C: Cell> Recurrent<C> {
    /// Keras's RNN mask rule: a sequence output keeps the input's mask (not reversed, even
    /// under go_backwards); a last output has none.
    fn output_mask(&self, mask: Option<ArrayView2<'_, bool>>) -> Option<Mask> {
        if self.return_sequences {
            mask.map(|m| m.to_owned())
        } else {
            None
        }
    }
}

impl<C: Cell> RecurrentLayer for Recurrent<C> {
    fn call_masked(
        &self,
        x: ArrayView3<'_, f32>,
        initial_state: Option<&[Array2<f32>]>,
        mask: Option<ArrayView2<'_, bool>>,
        zero_output_for_mask: bool,
    ) -> Result<RnnOutput> {
        let name = self.name.get();
        let Some(input_dim) = self.input_dim else {
            return Err(Error::NotBuilt {
                name: name.to_string(),
            });
        };
        check_input(name, &self.accepted_shape(input_dim), x.shape())?;
        if let Some(states) = initial_state {
            self.check_initial_state(x.dim().0, states)?;
        }
        let (batch, timesteps, _) = x.dim();
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
        let options = RunOptions {
            go_backwards: self.go_backwards,
            return_sequences: self.return_sequences,
            zero_output_for_mask,
        };
        Ok(run(&self.cell, x, initial_state, mask, options))
    }

    fn units(&self) -> usize {
        self.cell.units()
    }

    fn state_count(&self) -> usize {
        self.cell.state_count()
    }

    fn returns_sequences(&self) -> bool {
        self.return_sequences
    }

    fn returns_state(&self) -> bool {
        self.return_state
    }

    fn is_go_backwards(&self) -> bool {
        self.go_backwards
    }

    fn clone_recurrent(&self) -> Box<dyn RecurrentLayer> {
        Box::new(self.clone())
    }

    fn reversed_copy(&self) -> Box<dyn RecurrentLayer> {
        let mut copy = self.clone();
        copy.go_backwards = !self.go_backwards;
        copy.input_dim = None;
        copy.state = None;
        Box::new(copy)
    }
}

/// The weights of a cell with one kernel, one recurrent kernel and an optional bias, all of the
/// fused gate width (SimpleRNN: `units`; LSTM: `4·units`), in Keras's order, with the recurrent
/// kernel kept packed for the per-step product.
#[derive(Debug, Clone)]
pub(crate) struct GateWeights {
    pub(crate) use_bias: bool,
    kernel: Array2<f32>,
    recurrent: Array2<f32>,
    packed: crate::linalg::Packed,
    bias: ndarray::Array1<f32>,
}

impl Default for GateWeights {
    fn default() -> Self {
        GateWeights {
            use_bias: true,
            kernel: Array2::zeros((0, 0)),
            recurrent: Array2::zeros((0, 0)),
            packed: crate::linalg::Packed::default(),
            bias: ndarray::Array1::zeros(0),
        }
    }
}

impl GateWeights {
    /// Sets fresh weights (the bias only matters with `use_bias`).
    pub(crate) fn set(
        &mut self,
        kernel: Array2<f32>,
        recurrent: Array2<f32>,
        bias: ndarray::Array1<f32>,
    ) {
        self.packed = crate::linalg::Packed::new(recurrent.view());
        self.kernel = kernel;
        self.recurrent = recurrent;
        self.bias = if self.use_bias {
            bias
        } else {
            ndarray::Array1::zeros(0)
        };
    }

    /// The weights in Keras's order: kernel, recurrent kernel, then the bias if there is one.
    pub(crate) fn views(&self) -> Vec<ArrayViewD<'_, f32>> {
        let mut w = vec![
            self.kernel.view().into_dyn(),
            self.recurrent.view().into_dyn(),
        ];
        if self.use_bias {
            w.push(self.bias.view().into_dyn());
        }
        w
    }

    /// Takes weights whose count and shapes [`views`](Self::views) checked.
    pub(crate) fn assign(&mut self, weights: &[ArrayD<f32>]) {
        let bias = if self.use_bias {
            owned1(&weights[2])
        } else {
            ndarray::Array1::zeros(0)
        };
        self.set(owned2(&weights[0]), owned2(&weights[1]), bias);
    }

    pub(crate) fn kernel(&self) -> ArrayView2<'_, f32> {
        self.kernel.view()
    }

    pub(crate) fn input_bias(&self) -> Option<ArrayView1<'_, f32>> {
        self.use_bias.then(|| self.bias.view())
    }

    /// The recurrent kernel, packed.
    pub(crate) fn recurrent(&self) -> &crate::linalg::Packed {
        &self.packed
    }
}

/// A fresh `(rows, cols)` weight from `init`.
pub(crate) fn sample2(init: crate::init::Initializer, rows: usize, cols: usize) -> Array2<f32> {
    init.sample(&[rows, cols])
        .into_dimensionality()
        .expect("sampled with a 2-D shape")
}

/// A fresh `(len,)` weight from `init`.
pub(crate) fn sample1(init: crate::init::Initializer, len: usize) -> ndarray::Array1<f32> {
    init.sample(&[len])
        .into_dimensionality()
        .expect("sampled with a 1-D shape")
}

/// An owned, standard-layout copy of a weight whose 2-D shape was checked.
pub(crate) fn owned2(a: &ArrayD<f32>) -> Array2<f32> {
    a.view()
        .into_dimensionality::<ndarray::Ix2>()
        .expect("checked 2-D shape")
        .as_standard_layout()
        .into_owned()
}

/// An owned copy of a weight whose 1-D shape was checked.
pub(crate) fn owned1(a: &ArrayD<f32>) -> ndarray::Array1<f32> {
    a.view()
        .into_dimensionality::<ndarray::Ix1>()
        .expect("checked 1-D shape")
        .to_owned()
}

/// Views a layer input as `(batch, timesteps, features)`, or says which rank it has instead.
pub(crate) fn as_sequence<'a>(
    layer: &str,
    input: ArrayViewD<'a, f32>,
) -> Result<ArrayView3<'a, f32>> {
    let shape = Shape::known(input.shape());
    input
        .into_dimensionality::<Ix3>()
        .map_err(|_| Error::IncompatibleRank {
            layer: layer.to_string(),
            expected: 3,
            found: shape.rank(),
            shape,
        })
}

/// Below this many multiply-adds per call the sequence runs on one thread.
const PARALLEL_WORK: usize = 1 << 22;

/// The number of CPUs, asked once: the question reads cgroup files on Linux.
fn cpu_count() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// How the driver runs a sequence.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunOptions {
    pub(crate) go_backwards: bool,
    pub(crate) return_sequences: bool,
    pub(crate) zero_output_for_mask: bool,
}

/// Runs `cell` over `x` `(batch, timesteps, features)`: the shared sequence loop.
///
/// Inputs were checked by the caller. The output is `(batch, units)`, or
/// `(batch, timesteps, units)` with `return_sequences`, in processing order (reversed in time
/// under `go_backwards`, as Keras returns it).
pub(crate) fn run<C: Cell>(
    cell: &C,
    x: ArrayView3<'_, f32>,
    initial_state: Option<&[Array2<f32>]>,
    mask: Option<ArrayView2<'_, bool>>,
    options: RunOptions,
) -> RnnOutput {
    let (batch, timesteps, features) = x.dim();
    let work = batch * timesteps * cell.gate_width() * (features + cell.units());
    let threads = if work < PARALLEL_WORK {
        1
    } else {
        cpu_count().min(batch / 8).max(1)
    };
    if threads < 2 {
        return run_rows(cell, x, initial_state, mask, options);
    }
    // Rows are independent: each thread runs the whole sequence for its share of the batch.
    let chunk = batch.div_ceil(threads);
    let parts: Vec<RnnOutput> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..batch)
            .step_by(chunk)
            .map(|start| {
                let end = (start + chunk).min(batch);
                let xs = x.slice(s![start..end, .., ..]);
                let ms = mask.map(|m| m.slice_move(s![start..end, ..]));
                let init: Option<Vec<Array2<f32>>> = initial_state.map(|st| {
                    st.iter()
                        .map(|a| a.slice(s![start..end, ..]).to_owned())
                        .collect()
                });
                scope.spawn(move || run_rows(cell, xs, init.as_deref(), ms, options))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a sequence thread panicked"))
            .collect()
    });
    let outputs: Vec<_> = parts.iter().map(|p| p.output.view()).collect();
    let output = concatenate(Axis(0), &outputs).expect("parts share all but the batch axis");
    let states = (0..cell.state_count())
        .map(|i| {
            let views: Vec<_> = parts.iter().map(|p| p.states[i].view()).collect();
            concatenate(Axis(0), &views).expect("parts share the units axis")
        })
        .collect();
    RnnOutput { output, states }
}

/// What a masked run keeps besides the states: the states before the step (to put back at
/// masked rows) and the last output of each row.
struct MaskState {
    /// The mask in processing order, time-major: `[t·batch + b]`.
    steps: Vec<bool>,
    saved: Vec<Array2<f32>>,
    last_output: Array2<f32>,
}

/// The sequence loop for one block of batch rows, on the calling thread.
fn run_rows<C: Cell>(
    cell: &C,
    x: ArrayView3<'_, f32>,
    initial_state: Option<&[Array2<f32>]>,
    mask: Option<ArrayView2<'_, bool>>,
    options: RunOptions,
) -> RnnOutput {
    let (batch, timesteps, features) = x.dim();
    let units = cell.units();
    let width = cell.gate_width();
    let source = |t: usize| {
        if options.go_backwards {
            timesteps - 1 - t
        } else {
            t
        }
    };

    // Time-major copy of the input, reversed under go_backwards: rows t·batch .. (t+1)·batch
    // are timestep t in processing order.
    let mut xt = Array2::<f32>::zeros((timesteps * batch, features));
    for t in 0..timesteps {
        xt.slice_mut(s![t * batch..(t + 1) * batch, ..])
            .assign(&x.slice(s![.., source(t), ..]));
    }

    // The input projection of every timestep: one matrix product, bias included.
    let mut z = match cell.input_bias() {
        Some(b) => b
            .broadcast((timesteps * batch, width))
            .map(|v| v.to_owned()),
        None => None,
    }
    .unwrap_or_else(|| Array2::zeros((timesteps * batch, width)));
    ndarray::linalg::general_mat_mul(1.0, &xt, &cell.kernel(), 1.0, &mut z);

    let mut states: Vec<Array2<f32>> = match initial_state {
        Some(init) => init
            .iter()
            .map(|s| s.as_standard_layout().into_owned())
            .collect(),
        None => vec![Array2::zeros((batch, units)); cell.state_count()],
    };
    let mut scratch = vec![0.0_f32; batch * cell.scratch_width()];
    let mut sequence = options
        .return_sequences
        .then(|| Array3::<f32>::zeros((timesteps, batch, units)));
    let mut masked = mask.map(|m| MaskState {
        steps: (0..timesteps)
            .flat_map(|t| m.column(source(t)).to_vec())
            .collect(),
        saved: states.clone(),
        last_output: Array2::zeros((batch, units)),
    });

    let zs = z.as_slice_mut().expect("z is in standard layout");
    for (t, zt) in zs.chunks_exact_mut(batch * width).enumerate() {
        if let Some(ms) = masked.as_mut() {
            for (saved, state) in ms.saved.iter_mut().zip(&states) {
                saved.assign(state);
            }
        }
        cell.step(zt, &mut states, &mut scratch, batch);
        match masked.as_mut() {
            None => {
                if let Some(seq) = sequence.as_mut() {
                    seq.index_axis_mut(Axis(0), t).assign(&states[0]);
                }
            }
            Some(ms) => {
                apply_mask_step(ms, t, &mut states);
                let real = &ms.steps[t * batch..(t + 1) * batch];
                if let Some(seq) = sequence.as_mut() {
                    let mut out = seq.index_axis_mut(Axis(0), t);
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

    let output = match (sequence, masked) {
        (Some(seq), _) => seq
            .permuted_axes([1, 0, 2])
            .as_standard_layout()
            .into_owned()
            .into_dyn(),
        (None, Some(ms)) => ms.last_output.into_dyn(),
        (None, None) => states[0].clone().into_dyn(),
    };
    RnnOutput { output, states }
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
