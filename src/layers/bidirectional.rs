//! Keras's `Bidirectional` wrapper.

use std::fmt;
use std::str::FromStr;

use ndarray::{s, Array2, ArrayD, ArrayViewD, Axis};

use crate::error::{Error, Result};
use crate::layer::{
    backward_layer, call_layer, check_gradient, check_weights, common_builders, input_count,
    layer_plumbing, no_weights, CallContext, Gradients, InputDecl, Layer, LayerName, MaskPolicy,
    Outputs, SavedForBackward, States, WeightSpec,
};
use crate::layers::recurrent::{RecurrentLayer, PARALLEL_WORK};
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
/// model.add(Bidirectional::new(SimpleRNN::new(8).with_return_sequences(true)).input_shape((10, 4)))?;
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

/// What a training call of a Bidirectional keeps: each direction's record, the directions'
/// outputs for `merge_mode="mul"`, and the forward output's shape.
struct BidirectionalSaved {
    forward: SavedForBackward,
    backward: SavedForBackward,
    outputs: Option<(ArrayD<f32>, ArrayD<f32>)>,
    forward_units: usize,
    /// The shape of the first output (the merged one, or the forward one without merging).
    merged_shape: Vec<usize>,
    initial_inputs: usize,
    /// Whether the directions ran side by side, as their backward passes then do.
    side_by_side: bool,
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
        force_zero_output_for_mask(forward.as_mut());
        force_zero_output_for_mask(backward.as_mut());
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
    #[must_use]
    pub fn with_backward_layer(self, layer: impl RecurrentLayer + 'static) -> Self {
        self.with_backward_layer_boxed(Box::new(layer))
    }

    /// [`backward_layer`](Self::backward_layer) for a layer that is already boxed.
    #[must_use]
    pub fn with_backward_layer_boxed(mut self, mut backward: Box<dyn RecurrentLayer>) -> Self {
        backward.ensure_named();
        let name = format!("backward_{}", backward.name());
        backward.set_name(name);
        force_zero_output_for_mask(backward.as_mut());
        self.backward = backward;
        self
    }

    /// Keras's `merge_mode`. Default [`MergeMode::Concat`].
    #[must_use]
    pub fn with_merge_mode(mut self, mode: MergeMode) -> Self {
        self.merge_mode = mode;
        self
    }

    /// The merge mode.
    pub fn merge_mode(&self) -> MergeMode {
        self.merge_mode
    }

    /// The forward copy.
    pub fn forward_layer(&self) -> &dyn RecurrentLayer {
        self.forward.as_ref()
    }

    /// The backward copy.
    pub fn backward_layer(&self) -> &dyn RecurrentLayer {
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
        if f.go_backwards() == b.go_backwards() {
            return Err(self.invalid(format!(
                "Forward layer and backward layer should have different `go_backwards` value. \
                 forward_layer.go_backwards = {}, backward_layer.go_backwards = {}",
                py_bool(f.go_backwards()),
                py_bool(b.go_backwards())
            )));
        }
        for (what, fv, bv) in [
            (
                "return_sequences",
                f.return_sequences(),
                b.return_sequences(),
            ),
            ("return_state", f.return_state(), b.return_state()),
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

    /// Whether the two directions of a call on `x` in `ctx` run side by side, each on its share
    /// of the threads (`threads::join`), rather than one after the other, each splitting its
    /// rows: when the call may use two threads, neither direction draws
    /// random numbers, and their work together is worth a thread. Each direction then keeps
    /// all its rows, which its products run on more efficiently, and the threads meet once
    /// per call instead of once per direction.
    fn side_by_side(&self, x: &ArrayViewD<'_, f32>, ctx: &CallContext) -> bool {
        let &[batch, timesteps, features] = x.shape() else {
            return false;
        };
        let input = (batch, timesteps, features);
        if crate::threads::num_threads() < 2 {
            return false;
        }
        match (
            self.forward.parallel_work(ctx, input),
            self.backward.parallel_work(ctx, input),
        ) {
            (Some(f), Some(b)) => f.saturating_add(b) >= PARALLEL_WORK,
            _ => false,
        }
    }

    /// Runs both directions on `x` and merges them: Keras's outputs (the merged output, or both
    /// under [`MergeMode::None`], then the states under `return_state`) and every final state,
    /// forward then backward, for a stateful layer.
    fn run(
        &self,
        x: &ArrayViewD<'_, f32>,
        initial: &[ArrayViewD<'_, f32>],
        carried: Option<Vec<Array2<f32>>>,
        ctx: &mut CallContext,
    ) -> Result<(Outputs, States, Option<BidirectionalSaved>)> {
        let nf = self.forward.state_count();
        let nb = self.backward.state_count();
        let (f_init, b_init) = match initial.len() {
            0 => (&initial[..0], &initial[..0]),
            n if n == nf + nb => initial.split_at(nf),
            n => {
                return Err(self.invalid(format!(
                    "initial_state must hold {nf} forward and {nb} backward state(s), got {n} \
                     array(s)"
                )))
            }
        };
        let (f_carried, b_carried) = match carried {
            Some(mut states) if states.len() == nf + nb => {
                let b = states.split_off(nf);
                (Some(states), Some(b))
            }
            _ => (None, None),
        };
        let mask = ctx.input_mask(0).map(|m| m.to_owned());
        // Each direction's call takes x and its own initial states: the call's inputs 1..=nf
        // for the forward one, the nb after them for the backward one. Both Kerases call the
        // layers through `__call__`, so each adds its activity penalty, on its own outputs.
        let context = |init: usize, carried: Option<Vec<Array2<f32>>>, first_state: usize| {
            let sub = ctx
                .inner(first_state..first_state + init)
                .with_masks(vec![mask.clone()]);
            match carried {
                Some(states) => sub.with_states(states),
                None => sub,
            }
        };
        let f_ctx = context(f_init.len(), f_carried, 1);
        let b_ctx = context(b_init.len(), b_carried, 1 + f_init.len());
        let direction = |layer: &dyn RecurrentLayer,
                         init: &[ArrayViewD<'_, f32>],
                         mut sub: CallContext|
         -> Result<(Outputs, CallContext)> {
            let mut inputs = vec![x.view()];
            inputs.extend(init.iter().map(|s| s.view()));
            let outputs = call_layer(layer, &inputs, &mut sub)?;
            Ok((outputs, sub))
        };
        let (forward, backward) = (self.forward.as_ref(), self.backward.as_ref());
        let side_by_side = self.side_by_side(x, ctx);
        let ((mut f, mut f_ctx), (mut b, mut b_ctx)) = if side_by_side {
            let (f, b) = crate::threads::join(
                || direction(forward, f_init, f_ctx),
                || direction(backward, b_init, b_ctx),
            );
            (f?, b?)
        } else {
            // One after the other, so that dropout draws its masks in Keras's order.
            let f = direction(forward, f_init, f_ctx)?;
            (f, direction(backward, b_init, b_ctx)?)
        };
        ctx.add_penalties_of(&f_ctx);
        ctx.add_penalties_of(&b_ctx);
        let (f_final, f_saved) = (f_ctx.take_states().unwrap_or_default(), f_ctx.take_saved());
        let (b_final, b_saved) = (b_ctx.take_states().unwrap_or_default(), b_ctx.take_saved());
        let f_states = f.split_off(1);
        let b_states = b.split_off(1);
        let (f_out, b_out) = (f.swap_remove(0), b.swap_remove(0));
        // The backward sequence, put back in forward time order: a view, copied once below.
        let b_view = if self.forward.return_sequences() {
            b_out.slice(s![.., ..;-1, ..]).into_dyn()
        } else {
            b_out.view()
        };
        // What the backward pass needs: each direction's record, and for `mul` the two
        // outputs (the backward one in forward time order).
        let saved = match (f_saved, b_saved) {
            (Some(forward), Some(backward)) => Some(BidirectionalSaved {
                forward,
                backward,
                outputs: (self.merge_mode == MergeMode::Mul)
                    .then(|| (f_out.clone(), b_view.to_owned())),
                forward_units: f_out.shape()[f_out.ndim() - 1],
                merged_shape: Vec::new(),
                initial_inputs: initial.len(),
                side_by_side,
            }),
            _ => None,
        };
        let mut outputs = match self.merge_mode {
            MergeMode::Concat => vec![concat_last(f_out.view(), b_view)],
            MergeMode::None => {
                let b_owned = b_view.to_owned();
                vec![f_out, b_owned]
            }
            mode => {
                if f_out.shape() != b_view.shape() {
                    return Err(self.invalid(format!(
                        "merge_mode={mode} needs outputs of the same shape, got {} and {}",
                        Shape::known(f_out.shape()),
                        Shape::known(b_view.shape())
                    )));
                }
                let mut merged = f_out;
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
        let saved = saved.map(|mut s| {
            s.merged_shape = outputs[0].shape().to_vec();
            s
        });
        // As Keras, the states are outputs only under return_state.
        outputs.extend(f_states);
        outputs.extend(b_states);
        let mut finals = f_final;
        finals.extend(b_final);
        Ok((outputs, finals, saved))
    }

    /// Keras's `Bidirectional.compute_mask`: the input mask on each merged output of a sequence,
    /// none on last outputs and on states.
    fn output_masks(&self, ctx: &CallContext) -> Vec<Option<crate::Mask>> {
        let merged = if self.merge_mode == MergeMode::None {
            2
        } else {
            1
        };
        let mut masks = vec![None; self.output_count()];
        if self.forward.return_sequences() {
            let mask = ctx.input_mask(0).map(|m| m.to_owned());
            for m in masks.iter_mut().take(merged) {
                m.clone_from(&mask);
            }
        }
        masks
    }
}

/// Keras's Bidirectional asks its layers for zeros at masked steps of a sequence.
fn force_zero_output_for_mask(layer: &mut dyn RecurrentLayer) {
    let yes = layer.return_sequences();
    layer.set_zero_output_for_mask(yes);
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

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        self.validate()?;
        let Some((x, states)) = inputs.split_first() else {
            return Err(input_count(self.name.get(), 1, 0));
        };
        let nf = self.forward.state_count();
        let (f_states, b_states) = if states.is_empty() {
            (&states[..0], &states[..0])
        } else if states.len() == nf + self.backward.state_count() {
            states.split_at(nf)
        } else {
            return Err(input_count(
                self.name.get(),
                1 + nf + self.backward.state_count(),
                inputs.len(),
            ));
        };
        let with = |s: &[Shape]| {
            let mut v = vec![x.clone()];
            v.extend_from_slice(s);
            v
        };
        let name = self.name.get();
        let mut f =
            (self.forward.compute_output_shape(&with(f_states))).map_err(|e| e.in_wrapper(name))?;
        let mut b = (self.backward.compute_output_shape(&with(b_states)))
            .map_err(|e| e.in_wrapper(name))?;
        let (f_rest, b_rest) = (f.split_off(1), b.split_off(1));
        let (f, b) = (f.swap_remove(0), b.swap_remove(0));
        let mut out = if self.merge_mode == MergeMode::None {
            vec![f, b]
        } else {
            vec![self.merged_shape(f, b)?]
        };
        out.extend(f_rest);
        out.extend(b_rest);
        Ok(out)
    }

    fn build(&mut self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let out = self.compute_output_shape(inputs)?;
        // Each direction builds for the main input; the states only had their shapes checked.
        let x = &inputs[..1];
        self.forward.build(x)?;
        self.backward.build(x)?;
        Ok(out)
    }

    fn is_built(&self) -> bool {
        self.forward.is_built() && self.backward.is_built()
    }

    fn weight_specs(&self) -> Vec<WeightSpec> {
        [&self.forward, &self.backward]
            .into_iter()
            .flat_map(|l| {
                l.weight_specs()
                    .into_iter()
                    .map(|w| w.nested(l.name(), l.trainable()))
            })
            .collect()
    }

    fn weight_rules(&self) -> Vec<crate::train::WeightRule> {
        [&self.forward, &self.backward]
            .into_iter()
            .flat_map(|l| l.weight_rules())
            .collect()
    }

    fn activity_regularizers(&self) -> Vec<(String, crate::train::Regularizer)> {
        [&self.forward, &self.backward]
            .into_iter()
            .flat_map(|l| l.activity_regularizers())
            .collect()
    }

    fn initialize(&mut self) {
        self.forward.initialize();
        self.backward.initialize();
    }

    fn weights(&self) -> Vec<ArrayViewD<'_, f32>> {
        let mut w = self.forward.weights();
        w.extend(self.backward.weights());
        w
    }

    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        if !self.is_built() {
            return Err(no_weights(self.name.get()));
        }
        check_weights(self.name.get(), &self.weight_specs(), weights)?;
        let nf = self.forward.weight_specs().len();
        self.forward.set_weights(&weights[..nf])?;
        self.backward.set_weights(&weights[nf..])
    }

    fn output_count(&self) -> usize {
        let merged = if self.merge_mode == MergeMode::None {
            2
        } else {
            1
        };
        let states = if self.forward.return_state() {
            self.forward.state_count() + self.backward.state_count()
        } else {
            0
        };
        merged + states
    }

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let Some((x, initial)) = inputs.split_first() else {
            return Err(input_count(self.name.get(), 1, 0));
        };
        let carried = if self.is_stateful() {
            ctx.take_states()
        } else {
            None
        };
        let (outputs, finals, saved) = self.run(x, initial, carried, ctx)?;
        if let Some(saved) = saved {
            ctx.save_for_backward(Box::new(saved));
        }
        ctx.set_output_masks(self.output_masks(ctx));
        if self.is_stateful() {
            ctx.set_states(finals);
        }
        Ok(outputs)
    }

    /// Splits the merged output's gradient between the directions (`concat`: by columns;
    /// `sum`: to both; `ave`: half to each; `mul`: times the other direction's output), turns
    /// the backward direction's back into its processing order, and adds the two input
    /// gradients.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let saved: &BidirectionalSaved = saved.get(name)?;
        let nf = self.forward.state_count();
        let nb = self.backward.state_count();
        let merged = if self.merge_mode == MergeMode::None {
            2
        } else {
            1
        };
        let grad = |i: usize| output_grads.get(i).and_then(Option::as_ref);
        let uf = saved.forward_units;
        let last = saved.merged_shape.len() - 1;
        if let (Some(g), false) = (grad(0), self.merge_mode == MergeMode::None) {
            check_gradient(name, 0, g, &saved.merged_shape)?;
        }
        let (d_f, d_b): (Option<ArrayD<f32>>, Option<ArrayD<f32>>) =
            match (self.merge_mode, grad(0)) {
                (MergeMode::None, _) => {
                    (grad(0).map(|g| g.to_owned()), grad(1).map(|g| g.to_owned()))
                }
                (_, None) => (None, None),
                (MergeMode::Concat, Some(g)) => (
                    Some(g.slice_axis(Axis(last), (..uf).into()).to_owned()),
                    Some(g.slice_axis(Axis(last), (uf..).into()).to_owned()),
                ),
                (MergeMode::Mul, Some(g)) => {
                    let (f, b) = saved
                        .outputs
                        .as_ref()
                        .expect("a mul merge keeps its outputs");
                    (Some(g * b), Some(g * f))
                }
                (MergeMode::Ave, Some(g)) => (Some(g.mapv(|v| 0.5 * v)), Some(g.mapv(|v| 0.5 * v))),
                (_, Some(g)) => (Some(g.to_owned()), Some(g.to_owned())),
            };
        // The backward direction ran reversed in time: its output gradient goes back into
        // that order.
        let d_b = d_b.map(|d| {
            if self.forward.return_sequences() {
                d.slice(s![.., ..;-1, ..]).to_owned().into_dyn()
            } else {
                d
            }
        });
        let mut f_grads = vec![d_f.as_ref().map(|d| d.view())];
        f_grads.extend((0..nf).map(|i| grad(merged + i).map(|g| g.view())));
        let mut b_grads = vec![d_b.as_ref().map(|d| d.view())];
        b_grads.extend((0..nb).map(|i| grad(merged + nf + i).map(|g| g.view())));
        let f = || backward_layer(self.forward.as_ref(), &saved.forward, &f_grads);
        let b = || backward_layer(self.backward.as_ref(), &saved.backward, &b_grads);
        let (f, b) = if saved.side_by_side {
            crate::threads::join(f, b)
        } else {
            (f(), b())
        };
        let (f, b) = (f?, b?);
        let (mut f_inputs, mut b_inputs) = (f.inputs.into_iter(), b.inputs.into_iter());
        let dx = match (f_inputs.next().flatten(), b_inputs.next().flatten()) {
            (Some(a), Some(c)) => Some(a + c),
            (a, c) => a.or(c),
        };
        let mut inputs = vec![dx];
        if saved.initial_inputs > 0 {
            inputs.extend(f_inputs);
            inputs.extend(b_inputs);
        }
        let mut weights = f.weights;
        weights.extend(b.weights);
        Ok(Gradients { inputs, weights })
    }

    fn mask_policy(&self) -> MaskPolicy {
        if self.forward.return_sequences() {
            MaskPolicy::Propagate
        } else {
            MaskPolicy::Drop
        }
    }

    fn working_elements(&self, inputs: &[Shape]) -> usize {
        let x = &inputs[..inputs.len().min(1)];
        self.forward
            .working_elements(x)
            .saturating_add(self.backward.working_elements(x))
    }

    fn is_stateful(&self) -> bool {
        self.forward.is_stateful()
    }

    fn states(&self) -> Vec<Array2<f32>> {
        let mut s = self.forward.states();
        s.extend(self.backward.states());
        s
    }

    fn set_states(&mut self, mut states: Vec<Array2<f32>>) -> Result<()> {
        if states.is_empty() {
            self.reset_states();
            return Ok(());
        }
        let nf = self.forward.state_count();
        let nb = self.backward.state_count();
        if states.len() != nf + nb {
            return Err(self.invalid(format!(
                "a stateful Bidirectional carries {nf} forward and {nb} backward state(s), got {} \
                 array(s)",
                states.len()
            )));
        }
        let backward = states.split_off(nf);
        let before = self.forward.states();
        self.forward.set_states(states)?;
        if let Err(e) = self.backward.set_states(backward) {
            // Put the forward states back, so that a refused call changes nothing.
            self.forward.set_states(before)?;
            return Err(e);
        }
        Ok(())
    }

    fn reset_states(&mut self) {
        self.forward.reset_states();
        self.backward.reset_states();
    }
}

/// `f` and `b` side by side along their last axis (their other axes equal), written row by
/// row: each pair of rows copied as slices, where ndarray's `assign` into the two halves of a
/// zeroed array went value by value through its generic n-dimensional loop (5 % of four
/// `Bidirectional(SimpleRNN(128))` layers' time).
fn concat_last(f: ArrayViewD<'_, f32>, b: ArrayViewD<'_, f32>) -> ArrayD<f32> {
    let last = f.ndim().saturating_sub(1);
    let mut shape = f.shape().to_vec();
    if let (Some(s), Some(&ub)) = (shape.last_mut(), b.shape().last()) {
        *s += ub;
    }
    let mut values = Vec::with_capacity(shape.iter().product());
    let extend = |values: &mut Vec<f32>, row: ndarray::ArrayView1<'_, f32>| match row.as_slice() {
        Some(row) => values.extend_from_slice(row),
        None => values.extend(row.iter().copied()),
    };
    for (fr, br) in f.lanes(Axis(last)).into_iter().zip(b.lanes(Axis(last))) {
        extend(&mut values, fr);
        extend(&mut values, br);
    }
    ArrayD::from_shape_vec(shape, values).expect("the rows of both, side by side")
}
