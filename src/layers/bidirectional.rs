//! Keras's `Bidirectional` wrapper.

use std::fmt;
use std::str::FromStr;

use ndarray::{s, Array2, ArrayD, ArrayView2, ArrayView3, ArrayViewD, Axis};

use crate::error::{Error, Result};
use crate::layer::{
    check_weights, common_builders, layer_plumbing, InputDecl, Layer, LayerName, Mask, MaskPolicy,
};
use crate::layers::recurrent::{as_sequence, RecurrentLayer};
use crate::shape::Shape;

/// How [`Bidirectional`] combines the forward and backward outputs (Keras's `merge_mode`).
///
/// ```
/// use seqnn::MergeMode;
/// assert_eq!("ave".parse::<MergeMode>()?, MergeMode::Ave);
/// assert!("avg".parse::<MergeMode>().is_err());
/// # Ok::<(), seqnn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MergeMode {
    /// Concatenate along the features (the default): `2·units` features.
    #[default]
    Concat,
    /// Element-wise sum.
    Sum,
    /// Element-wise product.
    Mul,
    /// Element-wise mean.
    Ave,
    /// No merge: two outputs, forward then backward (Keras's `merge_mode=None`). Such a layer
    /// has two outputs, so it cannot go in a `Sequential`.
    None,
}

const MODES: [(MergeMode, &str); 5] = [
    (MergeMode::Concat, "concat"),
    (MergeMode::Sum, "sum"),
    (MergeMode::Mul, "mul"),
    (MergeMode::Ave, "ave"),
    (MergeMode::None, "None"),
];

impl MergeMode {
    /// Keras's string for it (`"None"` for no merge).
    pub fn name(self) -> &'static str {
        MODES
            .iter()
            .find(|(m, _)| *m == self)
            .map(|(_, n)| *n)
            .unwrap_or("concat")
    }
}

impl fmt::Display for MergeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MergeMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let alias = match s {
            "none" | "null" => "None",
            other => other,
        };
        MODES
            .iter()
            .find(|(_, n)| *n == alias)
            .map(|(m, _)| *m)
            .ok_or_else(|| Error::UnknownName {
                kind: "merge mode",
                name: s.to_string(),
                message: format!(
                    "Invalid merge mode. Received: {s}. Merge mode should be one of \
                     {{\"sum\", \"mul\", \"ave\", \"concat\", None}}"
                ),
            })
    }
}

/// One direction's initial states, if given.
type InitialStates<'s> = Option<&'s [Array2<f32>]>;
/// One direction's final states.
type States = Vec<Array2<f32>>;

/// What a [`Bidirectional`] call returns: Keras's output list, split by meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct BidirectionalOutput {
    /// The merged output, or the forward and backward outputs under [`MergeMode::None`].
    pub outputs: Vec<ArrayD<f32>>,
    /// The forward layer's final states (empty unless the wrapped layer has `return_state`).
    pub forward_states: Vec<Array2<f32>>,
    /// The backward layer's final states (empty unless the wrapped layer has `return_state`).
    pub backward_states: Vec<Array2<f32>>,
}

impl BidirectionalOutput {
    /// Keras's list: the output(s), then the forward states, then the backward states.
    pub fn into_vec(self) -> Vec<ArrayD<f32>> {
        self.outputs
            .into_iter()
            .chain(self.forward_states.into_iter().map(|s| s.into_dyn()))
            .chain(self.backward_states.into_iter().map(|s| s.into_dyn()))
            .collect()
    }
}

/// Keras's `Bidirectional`: runs a recurrent layer forwards and a copy of it backwards over the
/// same input, and merges the two outputs.
///
/// ```text
/// y_f = forward(x)                  (the wrapped layer, named forward_<name>)
/// y_b = backward(x)                 (its copy with go_backwards flipped, backward_<name>)
/// y_b = reverse_time(y_b)           (under return_sequences, so steps line up again)
/// y   = merge(y_f, y_b)             (concat by default; sum, mul, ave, or none)
/// ```
///
/// - Input: `(batch, timesteps, input_dim)`, as the wrapped layer.
/// - Output: the wrapped layer's, with `units_f + units_b` features under concat.
/// - Weights: the forward copy's, then the backward copy's; the parameter count is their sum.
///
/// ```
/// use seqnn::{Bidirectional, Sequential, SimpleRNN};
/// let mut model = Sequential::new();
/// model.add(Bidirectional::new(SimpleRNN::new(8).return_sequences(true)).input_shape((10, 4)))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 10, 16)");
/// assert_eq!(model.count_params()?, 208);
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding it to a model fails for [`MergeMode::None`] (two outputs), for `return_state`, for a
/// `backward_layer` that does not mirror the forward one, and for sum/mul/ave over outputs of
/// different shapes.
pub struct Bidirectional {
    name: LayerName,
    forward: Box<dyn RecurrentLayer>,
    backward: Box<dyn RecurrentLayer>,
    merge_mode: MergeMode,
    input: InputDecl,
    trainable: bool,
}

impl Bidirectional {
    common_builders!("bidirectional");

    /// Wraps `layer`; the backward copy is made from its configuration with `go_backwards`
    /// flipped. The layer is named now if it has no name, and the copies are called
    /// `forward_<name>` and `backward_<name>`.
    pub fn new(layer: impl RecurrentLayer + 'static) -> Self {
        Self::new_boxed(Box::new(layer))
    }

    /// [`new`](Self::new) for a layer that is already boxed, such as one chosen at run time.
    pub fn new_boxed(mut forward: Box<dyn RecurrentLayer>) -> Self {
        forward.ensure_named();
        let inner = forward.name().to_string();
        let mut backward = forward.reversed_copy();
        forward.set_name(format!("forward_{inner}"));
        backward.set_name(format!("backward_{inner}"));
        Bidirectional {
            name: LayerName::new("bidirectional"),
            forward,
            backward,
            merge_mode: MergeMode::Concat,
            input: InputDecl::default(),
            trainable: true,
        }
    }

    /// Keras's `backward_layer`: use this layer, instead of a copy, to read the sequence
    /// backwards. It must have the opposite `go_backwards` and the same `return_sequences` and
    /// `return_state` as the forward layer; that is checked when the wrapper is built.
    pub fn backward_layer(self, layer: impl RecurrentLayer + 'static) -> Self {
        self.backward_layer_boxed(Box::new(layer))
    }

    /// [`backward_layer`](Self::backward_layer) for a layer that is already boxed.
    pub fn backward_layer_boxed(mut self, mut backward: Box<dyn RecurrentLayer>) -> Self {
        backward.ensure_named();
        let name = format!("backward_{}", backward.name());
        backward.set_name(name);
        self.backward = backward;
        self
    }

    /// Keras's `merge_mode`. Default [`MergeMode::Concat`].
    pub fn merge_mode(mut self, mode: MergeMode) -> Self {
        self.merge_mode = mode;
        self
    }

    /// The merge mode.
    pub fn mode(&self) -> MergeMode {
        self.merge_mode
    }

    /// The forward copy.
    pub fn forward_layer(&self) -> &dyn RecurrentLayer {
        self.forward.as_ref()
    }

    /// The backward copy.
    pub fn backward_layer_ref(&self) -> &dyn RecurrentLayer {
        self.backward.as_ref()
    }

    fn invalid(&self, message: String) -> Error {
        Error::InvalidArgument {
            layer: self.name.get().to_string(),
            message,
        }
    }

    /// Keras's checks that a given backward layer mirrors the forward one.
    fn validate(&self) -> Result<()> {
        let (f, b) = (&self.forward, &self.backward);
        if f.is_go_backwards() == b.is_go_backwards() {
            return Err(self.invalid(format!(
                "Forward layer and backward layer should have different `go_backwards` value. \
                 forward_layer.go_backwards = {}, backward_layer.go_backwards = {}",
                py_bool(f.is_go_backwards()),
                py_bool(b.is_go_backwards())
            )));
        }
        for (what, fv, bv) in [
            (
                "return_sequences",
                f.returns_sequences(),
                b.returns_sequences(),
            ),
            ("return_state", f.returns_state(), b.returns_state()),
        ] {
            if fv != bv {
                return Err(self.invalid(format!(
                    "Forward layer and backward layer are expected to have the same value for \
                     attribute \"{what}\", got \"{}\" for forward layer and \"{}\" for backward \
                     layer",
                    py_bool(fv),
                    py_bool(bv)
                )));
            }
        }
        Ok(())
    }

    fn merged_shape(&self, f: Shape, b: Shape) -> Result<Shape> {
        match self.merge_mode {
            MergeMode::Concat => {
                let last = f.last().zip(b.last()).map(|(x, y)| x + y);
                Ok(f.with_last(last))
            }
            MergeMode::None => Ok(f),
            _ if f == b => Ok(f),
            mode => Err(self.invalid(format!(
                "merge_mode={mode} needs forward and backward outputs of the same shape, got \
                 {f} and {b}"
            ))),
        }
    }

    /// Runs both directions from optional initial states (the forward layer's states, then the
    /// backward layer's) and returns Keras's outputs: the merged output (two outputs under
    /// [`MergeMode::None`]) and, under `return_state`, the final states.
    ///
    /// # Errors
    /// When the wrapper is not built, `x` does not fit it, or the initial states do not split
    /// into the two layers' states.
    pub fn call_with_state(
        &self,
        x: ArrayView3<'_, f32>,
        initial_state: Option<&[Array2<f32>]>,
    ) -> Result<BidirectionalOutput> {
        self.call_masked(x, initial_state, None)
    }

    /// [`call_with_state`](Self::call_with_state) with a `(batch, timesteps)` mask. As Keras,
    /// both directions skip masked steps, and under `return_sequences` their outputs there
    /// are zeros.
    ///
    /// # Errors
    /// As [`call_with_state`](Self::call_with_state), and for a mask that is not
    /// `(batch, timesteps)`.
    pub fn call_masked(
        &self,
        x: ArrayView3<'_, f32>,
        initial_state: Option<&[Array2<f32>]>,
        mask: Option<ArrayView2<'_, bool>>,
    ) -> Result<BidirectionalOutput> {
        let (f_init, b_init) = self.split_states(initial_state)?;
        Ok(self.run(x, f_init, b_init, mask)?.0)
    }

    fn split_states<'s>(
        &self,
        initial_state: Option<&'s [Array2<f32>]>,
    ) -> Result<(InitialStates<'s>, InitialStates<'s>)> {
        let Some(states) = initial_state else {
            return Ok((None, None));
        };
        let nf = self.forward.state_count();
        let nb = self.backward.state_count();
        if states.len() != nf + nb {
            return Err(self.invalid(format!(
                "initial_state must hold {nf} forward and {nb} backward state(s), got {} \
                 array(s)",
                states.len()
            )));
        }
        Ok((Some(&states[..nf]), Some(&states[nf..])))
    }

    /// Both directions and the merge; also returns every final state, for stateful use.
    fn run(
        &self,
        x: ArrayView3<'_, f32>,
        f_init: Option<&[Array2<f32>]>,
        b_init: Option<&[Array2<f32>]>,
        mask: Option<ArrayView2<'_, bool>>,
    ) -> Result<(BidirectionalOutput, States, States)> {
        // Keras's Bidirectional asks its layers for zeros at masked steps of a sequence.
        let zero = self.forward.returns_sequences();
        let f = self.forward.call_masked(x, f_init, mask, zero)?;
        let b = self.backward.call_masked(x, b_init, mask, zero)?;
        // The backward sequence, put back in forward time order: a view, copied once below.
        let b_view = if self.forward.returns_sequences() {
            b.output.slice(s![.., ..;-1, ..]).into_dyn()
        } else {
            b.output.view()
        };
        let outputs = match self.merge_mode {
            MergeMode::Concat => {
                let last = f.output.ndim() - 1;
                let (uf, ub) = (f.output.shape()[last], b_view.shape()[last]);
                let mut shape = f.output.shape().to_vec();
                shape[last] = uf + ub;
                let mut merged = ArrayD::<f32>::zeros(shape);
                merged
                    .slice_axis_mut(Axis(last), (..uf).into())
                    .assign(&f.output);
                merged
                    .slice_axis_mut(Axis(last), (uf..).into())
                    .assign(&b_view);
                vec![merged]
            }
            MergeMode::None => vec![f.output.clone(), b_view.to_owned()],
            mode => {
                if f.output.shape() != b_view.shape() {
                    return Err(self.invalid(format!(
                        "merge_mode={mode} needs outputs of the same shape, got {} and {}",
                        Shape::known(f.output.shape()),
                        Shape::known(b_view.shape())
                    )));
                }
                let mut merged = f.output.clone();
                let combine: fn(&mut f32, f32) = match mode {
                    MergeMode::Sum => |m, b| *m += b,
                    MergeMode::Mul => |m, b| *m *= b,
                    _ => |m, b| *m = (*m + b) * 0.5,
                };
                ndarray::Zip::from(&mut merged)
                    .and(&b_view)
                    .for_each(|m, &bv| combine(m, bv));
                vec![merged]
            }
        };
        // As Keras, the states are outputs only under return_state.
        let keep = self.forward.returns_state();
        let output = BidirectionalOutput {
            outputs,
            forward_states: if keep { f.states.clone() } else { Vec::new() },
            backward_states: if keep { b.states.clone() } else { Vec::new() },
        };
        Ok((output, f.states, b.states))
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

impl Clone for Bidirectional {
    fn clone(&self) -> Self {
        Bidirectional {
            name: self.name.clone(),
            forward: self.forward.clone_recurrent(),
            backward: self.backward.clone_recurrent(),
            merge_mode: self.merge_mode,
            input: self.input.clone(),
            trainable: self.trainable,
        }
    }
}

impl fmt::Debug for Bidirectional {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bidirectional")
            .field("name", &self.name.get())
            .field("forward", &self.forward)
            .field("backward", &self.backward)
            .field("merge_mode", &self.merge_mode)
            .finish()
    }
}

impl Layer for Bidirectional {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        "Bidirectional"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.validate()?;
        match self.input.resolve(self.name.get())? {
            Some(s) => Ok(Some(s)),
            None => self.forward.declared_input_shape(),
        }
    }

    fn compute_output_shape(&self, input: &Shape) -> Result<Shape> {
        self.validate()?;
        let f = self.forward.compute_output_shape(input)?;
        let b = self.backward.compute_output_shape(input)?;
        self.merged_shape(f, b)
    }

    fn build(&mut self, input: &Shape) -> Result<Shape> {
        let out = self.compute_output_shape(input)?;
        self.forward.build(input)?;
        self.backward.build(input)?;
        Ok(out)
    }

    fn is_built(&self) -> bool {
        self.forward.is_built() && self.backward.is_built()
    }

    fn weights(&self) -> Vec<ArrayViewD<'_, f32>> {
        let mut w = self.forward.weights();
        w.extend(self.backward.weights());
        w
    }

    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        if !self.is_built() {
            return Err(Error::NotBuilt {
                name: self.name.get().to_string(),
            });
        }
        check_weights(self.name.get(), &self.weights(), weights)?;
        let nf = self.forward.weights().len();
        self.forward.set_weights(&weights[..nf])?;
        self.backward.set_weights(&weights[nf..])
    }

    fn output_count(&self) -> usize {
        let merged = if self.merge_mode == MergeMode::None {
            2
        } else {
            1
        };
        let states = if self.forward.returns_state() {
            self.forward.state_count() + self.backward.state_count()
        } else {
            0
        };
        merged + states
    }

    fn forward(&self, input: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        Ok(self.forward_masked(input, None)?.0)
    }

    fn mask_policy(&self) -> MaskPolicy {
        if self.forward.returns_sequences() {
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
        let x = self.single_output_input(input)?;
        let (mut out, _, _) = self.run(x, None, None, mask)?;
        Ok((out.outputs.swap_remove(0), self.output_mask(mask)))
    }

    fn is_stateful(&self) -> bool {
        self.forward.is_stateful()
    }

    fn forward_stateful(
        &mut self,
        input: ArrayViewD<'_, f32>,
        mask: Option<ArrayView2<'_, bool>>,
    ) -> Result<(ArrayD<f32>, Option<Mask>)> {
        if !self.is_stateful() {
            return self.forward_masked(input, mask);
        }
        let x = self.single_output_input(input)?;
        let (f_states, b_states) = (self.forward.states(), self.backward.states());
        let f_init = (!f_states.is_empty()).then_some(f_states.as_slice());
        let b_init = (!b_states.is_empty()).then_some(b_states.as_slice());
        let (mut out, f_final, b_final) = self.run(x, f_init, b_init, mask)?;
        self.forward.restore_states(f_final);
        self.backward.restore_states(b_final);
        Ok((out.outputs.swap_remove(0), self.output_mask(mask)))
    }

    fn states(&self) -> Vec<Array2<f32>> {
        let mut s = self.forward.states();
        s.extend(self.backward.states());
        s
    }

    fn restore_states(&mut self, mut states: Vec<Array2<f32>>) {
        let nf = self.forward.states().len().min(states.len());
        let backward = states.split_off(nf);
        self.forward.restore_states(states);
        self.backward.restore_states(backward);
    }

    fn reset_states(&mut self) {
        self.forward.reset_states();
        self.backward.reset_states();
    }
}

impl Bidirectional {
    /// The input as a sequence, for the single-output forward passes.
    fn single_output_input<'a>(&self, input: ArrayViewD<'a, f32>) -> Result<ArrayView3<'a, f32>> {
        if self.output_count() > 1 {
            return Err(Error::UnsupportedInModel {
                layer: self.name.get().to_string(),
                message: "this layer has several outputs; use call_with_state to get them all"
                    .to_string(),
            });
        }
        as_sequence(self.name.get(), input)
    }

    fn output_mask(&self, mask: Option<ArrayView2<'_, bool>>) -> Option<Mask> {
        if self.forward.returns_sequences() {
            mask.map(|m| m.to_owned())
        } else {
            None
        }
    }
}
