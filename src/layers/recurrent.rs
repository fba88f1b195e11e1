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
    Ix3,
};

use crate::error::{Error, Result};
use crate::layer::{check_input, check_rank, check_weights, InputDecl, Layer, LayerName};
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
    input_dim: Option<usize>,
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
            input_dim: None,
        }
    }

    /// The cell, with its weights.
    pub fn cell(&self) -> &C {
        &self.cell
    }

    pub(crate) fn cell_mut(&mut self) -> &mut C {
        &mut self.cell
    }

    /// Keras's `input_shape=(timesteps, input_dim)`: the shape of one sample. Use
    /// `(None, input_dim)` for any number of timesteps.
    pub fn input_shape(mut self, shape: impl Into<Shape>) -> Self {
        self.input.shape = Some(shape.into());
        self
    }

    /// Keras's `batch_input_shape=(batch, timesteps, input_dim)`: a fixed batch size too.
    pub fn batch_input_shape(mut self, shape: impl Into<Shape>) -> Self {
        self.input.batch_shape = Some(shape.into());
        self
    }

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

    /// Keras's `name`. Without it, the layer is named when it is added to a model:
    /// `simple_rnn`, `simple_rnn_1`, ...
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name.set(name.into());
        self
    }

    /// Keras's `trainable`. Default true.
    pub fn trainable(mut self, yes: bool) -> Self {
        self.trainable = yes;
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
    fn name(&self) -> &str {
        self.name.get()
    }

    fn ensure_named(&mut self) {
        self.name.ensure();
    }

    fn set_name(&mut self, name: String) {
        self.name.set(name);
    }

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

    fn trainable(&self) -> bool {
        self.trainable
    }

    fn output_count(&self) -> usize {
        if self.return_state {
            1 + self.cell.state_count()
        } else {
            1
        }
    }

    fn forward(&self, input: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        let x = as_sequence(self.name.get(), input)?;
        Ok(self.call_with_state(x, None)?.output)
    }

    fn clone_box(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

impl<C: Cell> RecurrentLayer for Recurrent<C> {
    fn call_with_state(
        &self,
        x: ArrayView3<'_, f32>,
        initial_state: Option<&[Array2<f32>]>,
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
        Ok(run(
            &self.cell,
            x,
            initial_state,
            self.go_backwards,
            self.return_sequences,
        ))
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
        Box::new(copy)
    }
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

/// Runs `cell` over `x` `(batch, timesteps, features)`: the shared sequence loop.
///
/// Inputs were checked by the caller. The output is `(batch, units)`, or
/// `(batch, timesteps, units)` with `return_sequences`, in processing order (reversed in time
/// under `go_backwards`, as Keras returns it).
pub(crate) fn run<C: Cell>(
    cell: &C,
    x: ArrayView3<'_, f32>,
    initial_state: Option<&[Array2<f32>]>,
    go_backwards: bool,
    return_sequences: bool,
) -> RnnOutput {
    let (batch, timesteps, features) = x.dim();
    let work = batch * timesteps * cell.gate_width() * (features + cell.units());
    let threads = if work < PARALLEL_WORK {
        1
    } else {
        cpu_count().min(batch / 8).max(1)
    };
    if threads < 2 {
        return run_rows(cell, x, initial_state, go_backwards, return_sequences);
    }
    // Rows are independent: each thread runs the whole sequence for its share of the batch.
    let chunk = batch.div_ceil(threads);
    let parts: Vec<RnnOutput> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..batch)
            .step_by(chunk)
            .map(|start| {
                let end = (start + chunk).min(batch);
                let xs = x.slice(s![start..end, .., ..]);
                let init: Option<Vec<Array2<f32>>> = initial_state.map(|st| {
                    st.iter()
                        .map(|a| a.slice(s![start..end, ..]).to_owned())
                        .collect()
                });
                scope.spawn(move || {
                    run_rows(cell, xs, init.as_deref(), go_backwards, return_sequences)
                })
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

/// The sequence loop for one block of batch rows, on the calling thread.
fn run_rows<C: Cell>(
    cell: &C,
    x: ArrayView3<'_, f32>,
    initial_state: Option<&[Array2<f32>]>,
    go_backwards: bool,
    return_sequences: bool,
) -> RnnOutput {
    let (batch, timesteps, features) = x.dim();
    let units = cell.units();
    let width = cell.gate_width();

    // Time-major copy of the input, reversed under go_backwards: rows t·batch .. (t+1)·batch
    // are timestep t in processing order.
    let mut xt = Array2::<f32>::zeros((timesteps * batch, features));
    for t in 0..timesteps {
        let src = if go_backwards { timesteps - 1 - t } else { t };
        xt.slice_mut(s![t * batch..(t + 1) * batch, ..])
            .assign(&x.slice(s![.., src, ..]));
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
    let mut sequence = return_sequences.then(|| Array3::<f32>::zeros((timesteps, batch, units)));

    let zs = z.as_slice_mut().expect("z is in standard layout");
    for (t, zt) in zs.chunks_exact_mut(batch * width).enumerate() {
        cell.step(zt, &mut states, &mut scratch, batch);
        if let Some(seq) = sequence.as_mut() {
            seq.index_axis_mut(Axis(0), t).assign(&states[0]);
        }
    }

    let output = match sequence {
        Some(seq) => seq
            .permuted_axes([1, 0, 2])
            .as_standard_layout()
            .into_owned()
            .into_dyn(),
        None => states[0].clone().into_dyn(),
    };
    RnnOutput { output, states }
}
