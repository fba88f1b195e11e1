//! Keras's `Attention` (Luong's dot-product attention), and what it shares with
//! [`AdditiveAttention`](crate::AdditiveAttention): the inputs, the masks, causal masking, the
//! softmax and the weighted sum of the values. In tf_keras 2.21 that is `BaseDenseAttention`
//! (`tf_keras/src/layers/attention/base_dense_attention.py`); in Keras 3.15, `Attention`
//! itself, which `AdditiveAttention` subclasses (`keras/src/layers/attention/attention.py`).

use std::str::FromStr;

use ndarray::linalg::general_mat_mul;
use ndarray::{
    Array2, Array3, ArrayD, ArrayView, ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut2, Axis,
    CowArray, Dimension, Ix3, IxDyn,
};

use crate::error::{Error, Result};
use crate::init::Initializer;
use crate::layer::{
    check_not_empty, layer_plumbing, no_weights, output_grad, CallContext, Gradients, Layer,
    LayerName, MaskPolicy, Mode, Outputs, SavedForBackward, WeightSpec,
};
use crate::limits;
use crate::linalg::attention::{
    masked_softmax, masked_softmax_backward, tanh_scores, tanh_scores_backward, Fill, TanhGrads,
    TanhScores,
};
use crate::shape::Shape;

/// How [`Attention`] scores a query against a key: Keras's `score_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoreMode {
    /// `"dot"`: the dot product `query · key`, times `scale` with `use_scale`.
    #[default]
    Dot,
    /// `"concat"`: `concat_score_weight · Σ tanh(scale · (query + key))` over the features.
    Concat,
}

impl ScoreMode {
    /// Keras's name: `"dot"` or `"concat"`.
    pub fn name(self) -> &'static str {
        match self {
            ScoreMode::Dot => "dot",
            ScoreMode::Concat => "concat",
        }
    }
}

impl FromStr for ScoreMode {
    type Err = Error;

    /// `"dot"` or `"concat"`; anything else is Keras's error.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "dot" => Ok(ScoreMode::Dot),
            "concat" => Ok(ScoreMode::Concat),
            other => Err(Error::UnknownName {
                kind: "score mode",
                name: other.to_string(),
                message: format!(
                    "Invalid value for argument score_mode. Expected one of {{'dot', 'concat'}}. \
                     Received: score_mode={other}"
                ),
            }),
        }
    }
}

/// The options [`Attention`] and [`AdditiveAttention`](crate::AdditiveAttention) share: the
/// dropout rate, the two ways of asking for causal masking and whether a call returns the
/// attention scores.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct DenseOptions {
    pub(crate) dropout: f32,
    pub(crate) causal: bool,
    pub(crate) use_causal_mask: bool,
    pub(crate) return_attention_scores: bool,
}

impl DenseOptions {
    fn is_causal(&self) -> bool {
        self.causal || self.use_causal_mask
    }

    fn outputs(&self) -> usize {
        1 + usize::from(self.return_attention_scores)
    }
}

/// `with_name` and `with_trainable`, for the attention layers: [`common_builders`]'s without
/// the input declarations, which a layer of several inputs does not have.
///
/// [`common_builders`]: crate::layer
macro_rules! name_builders {
    ($base:literal) => {
        #[doc = concat!(
                    "Keras's `name`. Without it, the layer is named when it is added to a model: `",
                    $base, "`, `", $base, "_1`, ..."
                )]
        #[must_use]
        pub fn with_name(mut self, name: impl Into<String>) -> Self {
            self.name.set(name.into());
            self
        }

        /// Keras's `trainable`. Default true.
        #[must_use]
        pub fn with_trainable(mut self, yes: bool) -> Self {
            self.trainable = yes;
            self
        }
    };
}
pub(crate) use name_builders;

/// The [`Layer`] methods the attention layers share: no declared input shape (they take
/// several inputs), and weights held in Keras order in a `values: Option<Vec<ArrayD<f32>>>`
/// field, each drawn from the layer's `initializer_for(&WeightSpec)`.
macro_rules! held_weights {
    () => {
        fn declared_input_shape(&self) -> $crate::Result<Option<$crate::Shape>> {
            Ok(None)
        }

        fn initialize(&mut self) {
            if self.is_built() {
                let specs = self.weight_specs();
                let values = specs
                    .iter()
                    .map(|s| self.initializer_for(s).sample(&s.shape))
                    .collect();
                self.values = Some(values);
            }
        }

        fn weights(&self) -> Vec<ndarray::ArrayViewD<'_, f32>> {
            self.values.iter().flatten().map(|w| w.view()).collect()
        }

        fn set_weights(&mut self, weights: &[ndarray::ArrayD<f32>]) -> $crate::Result<()> {
            let name = self.name.get();
            if !self.is_built() {
                return Err($crate::layer::no_weights(name));
            }
            $crate::layer::check_weights(name, &self.weight_specs(), weights)?;
            self.values = Some(
                weights
                    .iter()
                    .map(|w| w.as_standard_layout().into_owned())
                    .collect(),
            );
            Ok(())
        }
    };
}
pub(crate) use held_weights;

/// The builders and getters of the options in [`DenseOptions`], and of `name` and `trainable`,
/// for a dense attention layer with the fields `name`, `trainable` and `options`.
macro_rules! dense_attention_builders {
    ($base:literal) => {
        /// Keras's `dropout`: the fraction of the attention weights dropped in training,
        /// after the softmax and before the sum of the values, the others scaled by
        /// `1 / (1 − rate)`, from seqnn's seeded generator ([`crate::set_random_seed`]); the
        /// scores returned are those after the dropout, as in both Kerases. Default 0. At
        /// inference it changes nothing. A training call with a rate above 1 is refused.
        #[must_use]
        pub fn with_dropout(mut self, rate: f32) -> Self {
            self.options.dropout = rate;
            self
        }

        /// Keras's `use_causal_mask` call argument (tf_keras 2.21 and Keras 3): query `i` sees
        /// only the keys `j <= i`, for decoder self-attention. Default false. A Keras config
        /// does not hold call arguments, so `keras::layer_to_config` leaves it out.
        #[must_use]
        pub fn with_use_causal_mask(mut self, yes: bool) -> Self {
            self.options.use_causal_mask = yes;
            self
        }

        /// tf_keras's deprecated `causal` constructor argument, the same masking as
        /// [`with_use_causal_mask`](Self::with_use_causal_mask) fixed in the layer's config.
        /// Default false. Keras 3 has no such argument, so a layer with it cannot be written
        /// as a Keras 3 config.
        #[must_use]
        pub fn with_causal(mut self, yes: bool) -> Self {
            self.options.causal = yes;
            self
        }

        /// Keras's `return_attention_scores` call argument: each call returns a second output,
        /// the attention weights `(batch, Tq, Tv)` after masking and softmax. Default false.
        /// A Keras config does not hold call arguments, so `keras::layer_to_config` leaves it
        /// out.
        #[must_use]
        pub fn with_return_attention_scores(mut self, yes: bool) -> Self {
            self.options.return_attention_scores = yes;
            self
        }

        $crate::layers::attention::name_builders!($base);

        /// The fraction of attention weights dropped in training (Keras's `dropout`).
        pub fn dropout(&self) -> f32 {
            self.options.dropout
        }

        /// Whether calls mask causally because of the `use_causal_mask` call argument.
        pub fn use_causal_mask(&self) -> bool {
            self.options.use_causal_mask
        }

        /// Whether calls mask causally because of tf_keras's `causal` constructor argument.
        pub fn causal(&self) -> bool {
            self.options.causal
        }

        /// Whether a call returns the attention scores as a second output.
        pub fn return_attention_scores(&self) -> bool {
            self.options.return_attention_scores
        }
    };
}
pub(crate) use dense_attention_builders;

/// The words of Keras's `_validate_inputs` for a call on the wrong number of inputs.
pub(crate) fn input_count_error(layer: &str, class: &str, found: usize) -> Error {
    Error::InvalidArgument {
        layer: layer.to_string(),
        message: format!(
            "{class} layer accepts inputs list of length 2 or 3, namely [query, value] or \
             [query, value, key]. Received length: {found}."
        ),
    }
}

/// The rank error for input `index` (0 query, 1 value, 2 key), in Keras's words.
pub(crate) fn rank_error(layer: &str, index: usize, expected: usize, shape: &Shape) -> Error {
    if index == 0 {
        return Error::IncompatibleRank {
            layer: layer.to_string(),
            expected,
            found: shape.rank(),
            shape: shape.clone(),
        };
    }
    Error::InvalidArgument {
        layer: layer.to_string(),
        message: format!(
            "Input {index} of layer \"{layer}\" is incompatible with the layer: expected \
             ndim={expected}, found ndim={}. Full shape received: {shape}",
            shape.rank()
        ),
    }
}

/// Two dimensions that must agree where both are known.
pub(crate) fn same_dim(
    layer: &str,
    what: &str,
    a: Option<usize>,
    b: Option<usize>,
    shapes: &[&Shape],
) -> Result<()> {
    match (a, b) {
        (Some(a), Some(b)) if a != b => Err(Error::InvalidArgument {
            layer: layer.to_string(),
            message: format!("{what} differ ({a} and {b}); inputs {}", list(shapes)),
        }),
        _ => Ok(()),
    }
}

/// Shapes as `(None, 3, 4), (None, 5, 4)`, for messages.
pub(crate) fn list(shapes: &[&Shape]) -> String {
    shapes
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The query, value and key shapes of a dense attention layer's inputs (the key is the value
/// when there is none), checked as seqnn takes them: 2 or 3 inputs, each 3-D, with the same
/// batch, and a key with the value's number of timesteps.
pub(crate) fn dense_shapes<'a>(
    layer: &str,
    class: &str,
    inputs: &'a [Shape],
) -> Result<[&'a Shape; 3]> {
    let [q, v, k] = match inputs {
        [q, v] => [q, v, v],
        [q, v, k] => [q, v, k],
        _ => return Err(input_count_error(layer, class, inputs.len())),
    };
    for (i, s) in inputs.iter().enumerate() {
        if s.rank() != 3 {
            return Err(rank_error(layer, i, 3, s));
        }
    }
    let all = [q, v, k];
    same_dim(layer, "the batch sizes", q.dim(0), v.dim(0), &all)?;
    same_dim(layer, "the batch sizes", q.dim(0), k.dim(0), &all)?;
    same_dim(
        layer,
        "the timesteps of the value and the key",
        v.dim(1),
        k.dim(1),
        &all,
    )?;
    Ok(all)
}

/// Whether features of widths `dims` broadcast (each is the largest or 1), as NumPy's
/// broadcasting of `query + key` (and AdditiveAttention's scale) requires; unknown widths pass.
pub(crate) fn check_broadcast(
    layer: &str,
    what: &str,
    dims: &[Option<usize>],
    shapes: &[&Shape],
) -> Result<()> {
    let width = dims.iter().flatten().copied().max().unwrap_or(1);
    if dims.iter().flatten().all(|&d| d == width || d == 1) {
        return Ok(());
    }
    let dims: Vec<String> = dims
        .iter()
        .map(|d| d.map_or("None".to_string(), |d| d.to_string()))
        .collect();
    Err(Error::InvalidArgument {
        layer: layer.to_string(),
        message: format!(
            "Incompatible shapes: {what} of widths [{}] do not broadcast; inputs {}",
            dims.join(", "),
            list(shapes)
        ),
    })
}

/// The output shapes of a dense attention layer, `(batch, Tq, value_dim)` and, with
/// `return_attention_scores`, `(batch, Tq, Tv)`, checked against the tensor limit (the scores
/// are a working buffer even when they are not returned).
pub(crate) fn dense_output_shapes(
    layer: &str,
    [q, v, k]: [&Shape; 3],
    options: &DenseOptions,
) -> Result<Vec<Shape>> {
    let batch = q.dim(0).or(v.dim(0)).or(k.dim(0));
    let out = Shape::new(vec![batch, q.dim(1), v.last()]);
    let scores = Shape::new(vec![batch, q.dim(1), k.dim(1)]);
    limits::check_tensor(layer, "output", &out)?;
    limits::check_tensor(layer, "attention scores", &scores)?;
    let mut shapes = vec![out];
    if options.return_attention_scores {
        shapes.push(scores);
    }
    Ok(shapes)
}

/// The scores of one batch element: `score(query, key, out)` with the query `(Tq, fq)` and the
/// key `(Tv, fk)` as contiguous rows, and `out` `(Tq, Tv)`.
pub(crate) type ScoreFn<'a> =
    &'a dyn Fn(ArrayView2<'_, f32>, ArrayView2<'_, f32>, &mut ArrayViewMut2<'_, f32>);

/// The mask of input `index`, checked to be `(batch, steps)`.
pub(crate) fn input_mask<'c>(
    layer: &str,
    ctx: &'c CallContext,
    index: usize,
    batch: usize,
    steps: usize,
) -> Result<Option<ArrayView2<'c, bool>>> {
    let Some(m) = ctx.input_mask(index) else {
        return Ok(None);
    };
    if m.dim() != (batch, steps) {
        return Err(Error::InvalidArgument {
            layer: layer.to_string(),
            message: format!(
                "the mask of input {index} has shape {}, but that input has {batch} samples of \
                 {steps} timesteps",
                Shape::known(m.shape())
            ),
        });
    }
    Ok(Some(m))
}

/// The rate at which a call drops attention weights: `rate` in a training call with a rate
/// above 0 (Keras's `training and self.dropout > 0`), else none. A rate above 1 is refused,
/// as TensorFlow's dropout refuses it.
pub(crate) fn attention_dropout(layer: &str, ctx: &CallContext, rate: f32) -> Result<Option<f32>> {
    if ctx.mode() != Mode::Training || rate.is_nan() || rate <= 0.0 {
        return Ok(None);
    }
    if rate > 1.0 {
        return Err(Error::InvalidArgument {
            layer: layer.to_string(),
            message: format!(
                "dropout={} on the attention weights: the rate must be between 0 and 1",
                crate::layers::dropout::py_float(rate)
            ),
        });
    }
    Ok(Some(rate))
}

/// The array shapes of a call's inputs, checked as [`dense_shapes`] checks shapes, and each
/// non-empty.
pub(crate) fn call_dims(
    layer: &str,
    class: &str,
    inputs: &[ArrayViewD<'_, f32>],
) -> Result<[[usize; 3]; 3]> {
    let shapes: Vec<Shape> = inputs.iter().map(|x| Shape::known(x.shape())).collect();
    let [q, v, k] = dense_shapes(layer, class, &shapes)?;
    for x in inputs {
        check_not_empty(layer, x.shape())?;
    }
    let dims = |s: &Shape| [0, 1, 2].map(|a| s.dim(a).unwrap_or(0));
    Ok([dims(q), dims(v), dims(k)])
}

/// One call of a dense attention layer, after the layer checked its features: for each batch
/// element, the scores, the value mask and causal mask (Keras subtracts 1e9 from a masked
/// score), the softmax, the weighted sum of the values, and zeros where the query is masked.
/// A recording call keeps the inputs and the weights for [`dense_backward`].
pub(crate) fn dense_call<'a>(
    layer: &str,
    options: &DenseOptions,
    inputs: &[ArrayViewD<'a, f32>],
    dims: [[usize; 3]; 3],
    ctx: &mut CallContext,
    score: ScoreFn<'_>,
) -> Result<Outputs> {
    let dropout = attention_dropout(layer, ctx, options.dropout)?;
    let [[batch, tq, _], [_, tv, fv], _] = dims;
    let q_mask = input_mask(layer, ctx, 0, batch, tq)?.map(|m| m.to_owned());
    let v_mask = input_mask(layer, ctx, 1, batch, tv)?.map(|m| m.to_owned());
    limits::check_dims(layer, "output", &[batch, tq, fv])?;
    let keep_all = options.return_attention_scores || ctx.records();
    if keep_all {
        limits::check_dims(layer, "attention scores", &[batch, tq, tv])?;
    } else {
        limits::check_dims(layer, "attention scores", &[tq, tv])?;
    }
    let three = |x: &ArrayViewD<'a, f32>| {
        standard(
            x.clone()
                .into_dimensionality::<Ix3>()
                .expect("checked to be 3-D"),
        )
    };
    let (q, v) = (three(&inputs[0]), three(&inputs[1]));
    let key = inputs.get(2).map(three);
    let k = key.as_ref().unwrap_or(&v);
    let causal = options.is_causal();
    let mut out = Array3::<f32>::zeros((batch, tq, fv));
    let mut all_scores = keep_all.then(|| Array3::<f32>::zeros((batch, tq, tv)));
    let mut one = if all_scores.is_none() {
        Array2::<f32>::zeros((tq, tv))
    } else {
        Array2::<f32>::zeros((0, 0))
    };
    let mut drop = dropout.map(|rate| AttentionDropout::new(rate, keep_all, batch, tq, tv));
    for b in 0..batch {
        let mut s = match all_scores.as_mut() {
            Some(all) => all.index_axis_mut(Axis(0), b),
            None => one.view_mut(),
        };
        score(q.index_axis(Axis(0), b), k.index_axis(Axis(0), b), &mut s);
        let vm = v_mask.as_ref().map(|m| m.row(b));
        masked_softmax(&mut s, vm.is_some() || causal, Fill::Subtract, |i, j| {
            vm.is_none_or(|m| m[j]) && (!causal || i >= j)
        });
        let mut o = out.index_axis_mut(Axis(0), b);
        let vb = v.index_axis(Axis(0), b);
        match drop.as_mut() {
            Some(d) => general_mat_mul(1.0, d.apply(b, &s.view()), &vb, 0.0, &mut o),
            None => general_mat_mul(1.0, &s, &vb, 0.0, &mut o),
        }
        if let Some(qm) = &q_mask {
            zero_masked_rows(&mut o, qm.row(b));
        }
    }
    let factors = drop.and_then(AttentionDropout::into_factors);
    let mut outputs = vec![out.into_dyn()];
    if options.return_attention_scores {
        // Both Kerases return the weights after the dropout.
        outputs.extend(all_scores.as_ref().map(|w| match &factors {
            Some(f) => (w * f).into_dyn(),
            None => w.clone().into_dyn(),
        }));
    }
    if let (true, Some(weights)) = (ctx.records(), all_scores) {
        ctx.save_for_backward(Box::new(DenseSaved {
            q: q.into_owned(),
            v: v.into_owned(),
            k: key.map(|k| k.into_owned()),
            weights,
            dropout: factors,
            q_mask,
        }));
    }
    Ok(outputs)
}

/// The dropout of a training call on the attention weights, one `(Tq, Tv)` matrix of weights
/// at a time: each weight kept with probability `1 − rate` and scaled by `1 / (1 − rate)`
/// (Keras's inverted dropout), from seqnn's seeded generator, the matrices drawn in order, so
/// a call that keeps the factors for its backward pass draws what one that does not draws.
#[derive(Debug)]
pub(crate) struct AttentionDropout {
    rate: f32,
    /// Every matrix's factors `(matrices, Tq, Tv)` when the call keeps them; else one
    /// matrix's `(1, Tq, Tv)`, redrawn for each.
    factors: Array3<f32>,
    keeps: bool,
    /// The current matrix's weights times its factors.
    dropped: Array2<f32>,
}

impl AttentionDropout {
    /// The dropout at `rate` of `matrices` matrices `(rows, cols)`; with `keeps`, the factors
    /// are kept for [`into_factors`](Self::into_factors).
    pub(crate) fn new(rate: f32, keeps: bool, matrices: usize, rows: usize, cols: usize) -> Self {
        AttentionDropout {
            rate,
            factors: Array3::zeros((if keeps { matrices } else { 1 }, rows, cols)),
            keeps,
            dropped: Array2::zeros((rows, cols)),
        }
    }

    /// Draws the factors of matrix `m` and gives the weights `w` times them.
    pub(crate) fn apply(&mut self, m: usize, w: &ArrayView2<'_, f32>) -> &Array2<f32> {
        let mut f = self
            .factors
            .index_axis_mut(Axis(0), if self.keeps { m } else { 0 });
        crate::layers::dropout::fill_keep_mask(f.view_mut(), self.rate);
        self.dropped.assign(w);
        self.dropped *= &f;
        &self.dropped
    }

    /// Every matrix's factors, when they were kept.
    pub(crate) fn into_factors(self) -> Option<Array3<f32>> {
        self.keeps.then_some(self.factors)
    }
}

/// Zeroes the rows of `o` whose `keep` is false (the masked query steps).
fn zero_masked_rows(o: &mut ArrayViewMut2<'_, f32>, keep: ArrayView1<'_, bool>) {
    for (mut row, &k) in o.rows_mut().into_iter().zip(keep) {
        if !k {
            row.fill(0.0);
        }
    }
}

/// What a recording call of a dense attention layer keeps: its query, value and key (`None`:
/// the value is the key), the attention weights after the softmax `(batch, Tq, Tv)`, the
/// dropout's factors on them (in a training call with dropout), and the query's mask.
#[derive(Debug)]
pub(crate) struct DenseSaved {
    q: Array3<f32>,
    v: Array3<f32>,
    k: Option<Array3<f32>>,
    weights: Array3<f32>,
    dropout: Option<Array3<f32>>,
    q_mask: Option<Array2<bool>>,
}

/// The gradient `ds` of the scores of one batch element, for the layer's score function to
/// take back to the query `q` `(Tq, fq)` and the key `k` `(Tv, fk)`: it adds the gradients of
/// their contiguous rows to `dq` and `dk`, and those of the layer's weights to `dw` (their
/// values one after another, in Keras order).
pub(crate) struct ScoreGrads<'a> {
    pub(crate) q: ArrayView2<'a, f32>,
    pub(crate) k: ArrayView2<'a, f32>,
    pub(crate) ds: ArrayView2<'a, f32>,
    pub(crate) dq: &'a mut [f32],
    pub(crate) dk: &'a mut [f32],
    pub(crate) dw: &'a mut [f32],
}

/// A layer's score function backward: see [`ScoreGrads`].
pub(crate) type ScoreBackFn<'a> = &'a dyn Fn(ScoreGrads<'_>);

/// The backward pass of [`dense_call`], for a layer of weights `specs`:
///
/// ```text
/// dO = d output, 0 where the query is masked      dW = dO · Vᵀ (+ d scores, when returned)
/// dV = Wᵀ · dO       dS = W · (dW − Σ_j dW·W)        then the score function's own backward
/// ```
///
/// With dropout, the call multiplied `W` by its factors `M` before the sum and returned the
/// product: `dV = (W ⊙ M)ᵀ · dO` and `dW` is taken back through `M` (`dW ⊙ M`) before the
/// softmax. The masked scores' `− 1e9` passes the gradient on unchanged, as in Keras; without a
/// key, the value gets the key's gradient too.
pub(crate) fn dense_backward(
    layer: &str,
    options: &DenseOptions,
    saved: &SavedForBackward,
    output_grads: &[Option<ArrayViewD<'_, f32>>],
    specs: &[WeightSpec],
    back: ScoreBackFn<'_>,
) -> Result<Gradients> {
    let saved: &DenseSaved = saved.get(layer)?;
    let (batch, tq, tv) = saved.weights.dim();
    let fv = saved.v.dim().2;
    let k = saved.k.as_ref().unwrap_or(&saved.v);
    let mut d_out = output_grad(layer, output_grads, 0, &[batch, tq, fv])?
        .into_dimensionality::<Ix3>()
        .expect("checked to be 3-D");
    let d_scores = if options.return_attention_scores {
        Some(
            output_grad(layer, output_grads, 1, &[batch, tq, tv])?
                .into_dimensionality::<Ix3>()
                .expect("checked to be 3-D"),
        )
    } else {
        None
    };
    let mut dq = Array3::<f32>::zeros(saved.q.raw_dim());
    let mut dk = Array3::<f32>::zeros(k.raw_dim());
    let mut dv = Array3::<f32>::zeros(saved.v.raw_dim());
    let mut dw = vec![0.0_f32; specs.iter().map(WeightSpec::len).sum()];
    let mut ds = Array2::<f32>::zeros((tq, tv));
    let mut dropped = Array2::<f32>::zeros(if saved.dropout.is_some() {
        (tq, tv)
    } else {
        (0, 0)
    });
    for b in 0..batch {
        let mut dob = d_out.index_axis_mut(Axis(0), b);
        if let Some(qm) = &saved.q_mask {
            zero_masked_rows(&mut dob, qm.row(b));
        }
        let w = saved.weights.index_axis(Axis(0), b);
        let vb = saved.v.index_axis(Axis(0), b);
        match &d_scores {
            Some(d) => ds.assign(&d.index_axis(Axis(0), b)),
            None => ds.fill(0.0),
        }
        general_mat_mul(1.0, &dob, &vb.t(), 1.0, &mut ds);
        let mut dvb = dv.index_axis_mut(Axis(0), b);
        match &saved.dropout {
            Some(f) => {
                let f = f.index_axis(Axis(0), b);
                dropped.assign(&w);
                dropped *= &f;
                general_mat_mul(1.0, &dropped.t(), &dob, 0.0, &mut dvb);
                ds *= &f;
            }
            None => general_mat_mul(1.0, &w.t(), &dob, 0.0, &mut dvb),
        }
        masked_softmax_backward(&w, &mut ds.view_mut(), false, Fill::Subtract, |_, _| true);
        let mut dqb = dq.index_axis_mut(Axis(0), b);
        let mut dkb = dk.index_axis_mut(Axis(0), b);
        back(ScoreGrads {
            q: saved.q.index_axis(Axis(0), b),
            k: k.index_axis(Axis(0), b),
            ds: ds.view(),
            dq: dqb
                .as_slice_mut()
                .expect("a batch element of a fresh array is contiguous"),
            dk: dkb
                .as_slice_mut()
                .expect("a batch element of a fresh array is contiguous"),
            dw: &mut dw,
        });
    }
    let mut inputs = vec![Some(dq.into_dyn())];
    if saved.k.is_some() {
        inputs.extend([Some(dv.into_dyn()), Some(dk.into_dyn())]);
    } else {
        inputs.push(Some((dv + dk).into_dyn()));
    }
    let mut flat = dw.into_iter();
    let weights = specs
        .iter()
        .map(|spec| {
            let values = flat.by_ref().take(spec.len()).collect();
            ArrayD::from_shape_vec(IxDyn(&spec.shape), values).expect("one value per element")
        })
        .collect();
    Ok(Gradients { inputs, weights })
}

/// `x` itself when it is in standard layout, else a standard-layout copy.
pub(crate) fn standard<D: Dimension>(x: ArrayView<'_, f32, D>) -> CowArray<'_, f32, D> {
    if x.is_standard_layout() {
        x.into()
    } else {
        x.as_standard_layout().into_owned().into()
    }
}

/// Keras's `Attention`: Luong-style dot-product attention of a query sequence over a value
/// sequence.
///
/// ```text
/// scores[b, i, j] = scale · (query[b, i] · key[b, j])                     score_mode "dot"
///                 = concat_score_weight · Σ_f tanh(scale · (query[b, i, f] + key[b, j, f]))
///                                                                          score_mode "concat"
/// scores[b, i, j] -= 1e9  where value_mask[b, j] is false, or j > i when causal
/// weights = softmax(scores) over j
/// output[b, i] = Σ_j weights[b, i, j] · value[b, j],   0 where query_mask[b, i] is false
/// ```
///
/// - Inputs, through [`call`](Layer::call): `[query, value]` or `[query, value, key]`
///   (Keras's list), `query (batch, Tq, dim)`, `value (batch, Tv, value_dim)`,
///   `key (batch, Tv, dim)`; without a key, the value is the key. In `"dot"` mode the query and
///   the key have the same `dim`; in `"concat"` mode they broadcast (equal, or one of them 1).
/// - Masks: the context's masks of the query and of the value (Keras's `mask=[query_mask,
///   value_mask]`); a key's mask is ignored, as Keras ignores it.
/// - Outputs: `(batch, Tq, value_dim)`, then, with
///   [`with_return_attention_scores`](Attention::with_return_attention_scores), the weights
///   `(batch, Tq, Tv)` (not zeroed where the query is masked). The first output carries the
///   query's mask; the scores carry none, as in Keras.
/// - Weights, in Keras's order: `scale ()` with `use_scale` (initialized to 1), then
///   `concat_score_weight ()` in `"concat"` mode (initialized to 1).
///
/// Training: the same in both modes but for `dropout`, which a training call applies to the
/// weights after the softmax (`weights ⊙ keep / (1 − rate)`, `keep` drawn per sample, query
/// and value from seqnn's seeded generator), and returns so with the scores. The backward pass
/// gives the gradients of the query, the value and the key (the value's includes the key's
/// when there is no key), and of `scale` and `concat_score_weight`, through the call's dropout,
/// with upstream gradients on the scores too when they are returned; masked query steps pass
/// none, and masked scores pass theirs on as Keras's `− 1e9` does.
///
/// Keras's call arguments `use_causal_mask` and `return_attention_scores` are options of the
/// layer here ([`with_use_causal_mask`](Attention::with_use_causal_mask),
/// [`with_return_attention_scores`](Attention::with_return_attention_scores)); tf_keras's
/// deprecated `causal` constructor argument is [`with_causal`](Attention::with_causal). The
/// numbers are the same in tf_keras 2.21 and Keras 3.15.
///
/// ```
/// use ndarray::Array3;
/// use seqnn::{Attention, CallContext, Layer, Shape};
/// // keras.layers.Attention(use_scale=True)([query, value])
/// let mut attention = Attention::new().with_use_scale(true);
/// let out = attention.build(&[
///     Shape::new(vec![None, Some(3), Some(4)]),
///     Shape::new(vec![None, Some(5), Some(4)]),
/// ])?;
/// assert_eq!(out[0].to_string(), "(None, 3, 4)");
/// assert_eq!(attention.count_params(), 1);
/// attention.initialize();
/// let query = Array3::<f32>::ones((2, 3, 4)).into_dyn();
/// let value = Array3::<f32>::ones((2, 5, 4)).into_dyn();
/// let y = attention.call(&[query.view(), value.view()], &mut CallContext::inference())?;
/// assert_eq!(y[0].shape(), &[2, 3, 4]);
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Building or calling it fails with [`Error::InvalidArgument`] for other than 2 or 3 inputs
/// (Keras's message), inputs that are not 3-D (the query's is [`Error::IncompatibleRank`]),
/// different batch sizes, a key whose timesteps are not the value's, features that do not fit
/// the score mode, or masks whose shapes are not their inputs' `(batch, timesteps)`; with
/// [`Error::TooLarge`] when the output or the scores would exceed the tensor limit; a call on an
/// unbuilt layer with [`Error::NotBuilt`], on empty inputs with [`Error::EmptyInput`], and in
/// training mode with a dropout rate above 1 with [`Error::InvalidArgument`].
#[derive(Debug, Clone)]
pub struct Attention {
    name: LayerName,
    trainable: bool,
    use_scale: bool,
    score_mode: ScoreMode,
    options: DenseOptions,
    built: bool,
    /// `scale` and `concat_score_weight`, those the options ask for, in Keras order.
    values: Option<Vec<ArrayD<f32>>>,
}

impl Default for Attention {
    /// Keras's `Attention()`.
    fn default() -> Self {
        Self::new()
    }
}

impl Attention {
    /// An Attention layer with Keras's defaults, as `keras.layers.Attention()`: `use_scale`
    /// false, `score_mode` `"dot"`, `dropout` 0.
    pub fn new() -> Self {
        Attention {
            name: LayerName::new("attention"),
            trainable: true,
            use_scale: false,
            score_mode: ScoreMode::Dot,
            options: DenseOptions::default(),
            built: false,
            values: None,
        }
    }

    /// Keras's `use_scale`: a learned scalar `scale` multiplies the scores. Default false.
    #[must_use]
    pub fn with_use_scale(mut self, yes: bool) -> Self {
        self.use_scale = yes;
        self
    }

    /// Keras's `score_mode`. Default [`ScoreMode::Dot`].
    #[must_use]
    pub fn with_score_mode(mut self, mode: ScoreMode) -> Self {
        self.score_mode = mode;
        self
    }

    dense_attention_builders!("attention");

    /// Whether the scores are scaled by a learned scalar.
    pub fn use_scale(&self) -> bool {
        self.use_scale
    }

    /// How the scores are computed.
    pub fn score_mode(&self) -> ScoreMode {
        self.score_mode
    }

    /// Keras's initializers: ones for `scale` and `concat_score_weight`.
    fn initializer_for(&self, _: &WeightSpec) -> Initializer {
        Initializer::Ones
    }

    /// `scale` and `concat_score_weight`, those the options ask for. Weightless options (no
    /// scale, `"dot"`) need no values; the others need them set.
    fn scalars(&self) -> Result<(Option<f32>, Option<f32>)> {
        let name = self.name.get();
        let mut stored = self
            .values
            .iter()
            .flatten()
            .map(|w| w.iter().next().copied());
        let mut next = |wanted: bool| -> Result<Option<f32>> {
            if !wanted {
                return Ok(None);
            }
            stored
                .next()
                .flatten()
                .map(Some)
                .ok_or_else(|| no_weights(name))
        };
        let scale = next(self.use_scale)?;
        Ok((scale, next(self.score_mode == ScoreMode::Concat)?))
    }

    /// The query's and the key's features fit the score mode (where both are known).
    fn check_features(&self, shapes: [&Shape; 3]) -> Result<()> {
        let name = self.name.get();
        let [q, _, k] = shapes;
        match self.score_mode {
            ScoreMode::Dot => match (q.last(), k.last()) {
                (Some(a), Some(b)) if a != b => Err(Error::InvalidArgument {
                    layer: name.to_string(),
                    message: format!(
                        "score_mode=\"dot\" takes a query and a key with the same last \
                         dimension, got {a} and {b}; inputs {}",
                        list(&shapes)
                    ),
                }),
                _ => Ok(()),
            },
            ScoreMode::Concat => check_broadcast(
                name,
                "the query and the key",
                &[q.last(), k.last()],
                &shapes,
            ),
        }
    }
}

impl Layer for Attention {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        "Attention"
    }

    held_weights!();

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        let shapes = dense_shapes(name, "Attention", inputs)?;
        self.check_features(shapes)?;
        dense_output_shapes(name, shapes, &self.options)
    }

    fn build(&mut self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let out = self.compute_output_shape(inputs)?;
        self.built = true;
        Ok(out)
    }

    fn is_built(&self) -> bool {
        self.built
    }

    fn weight_specs(&self) -> Vec<WeightSpec> {
        if !self.built {
            return Vec::new();
        }
        let mut specs = Vec::new();
        if self.use_scale {
            specs.push(WeightSpec::new("scale", vec![]));
        }
        if self.score_mode == ScoreMode::Concat {
            specs.push(WeightSpec::new("concat_score_weight", vec![]));
        }
        specs
    }

    fn output_count(&self) -> usize {
        self.options.outputs()
    }

    fn call(&self, inputs: &[ArrayViewD<'_, f32>], ctx: &mut CallContext) -> Result<Outputs> {
        let name = self.name.get();
        let dims = call_dims(name, "Attention", inputs)?;
        if !self.built {
            return Err(no_weights(name));
        }
        let shapes = dims.map(|d| Shape::known(&d));
        self.check_features([&shapes[0], &shapes[1], &shapes[2]])?;
        let (scale, concat_weight) = self.scalars()?;
        let [[_, _, fq], _, [_, _, fk]] = dims;
        let score =
            |q: ArrayView2<'_, f32>, k: ArrayView2<'_, f32>, s: &mut ArrayViewMut2<'_, f32>| {
                match concat_weight {
                    // Keras: matmul(query, key^T), then times the scale.
                    None => general_mat_mul(scale.unwrap_or(1.0), &q, &k.t(), 0.0, s),
                    // Keras: concat_score_weight · sum(tanh(scale · (q + k)), axis=-1).
                    Some(c) => {
                        let (q, k) = (contiguous(&q), contiguous(&k));
                        let p = TanhScores {
                            q,
                            fq,
                            k,
                            fk,
                            inner: scale,
                            outer: None,
                        };
                        tanh_scores(p, s);
                        s.mapv_inplace(|x| c * x);
                    }
                }
            };
        dense_call(name, &self.options, inputs, dims, ctx, &score)
    }

    /// The shared dense-attention backward, with the scores' own: `"dot"`'s product, or
    /// `"concat"`'s sum of `tanh`s, whose `concat_score_weight` is an outer weight of width 1.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let (scale, concat_weight) = self.scalars()?;
        let back = |g: ScoreGrads<'_>| {
            let ScoreGrads {
                q,
                k,
                ds,
                dq,
                dk,
                dw,
            } = g;
            let (fq, fk) = (q.ncols(), k.ncols());
            match concat_weight {
                // S = c·q·kᵀ: G = dS·k, dq = c·G, dk = c·dSᵀ·q, d scale = Σ q·G.
                None => {
                    let c = scale.unwrap_or(1.0);
                    let g = ds.dot(&k);
                    let mut dqv = ArrayViewMut2::from_shape(q.raw_dim(), dq)
                        .expect("the query's gradient has the query's shape");
                    dqv.scaled_add(c, &g);
                    let mut dkv = ArrayViewMut2::from_shape(k.raw_dim(), dk)
                        .expect("the key's gradient has the key's shape");
                    general_mat_mul(c, &ds.t(), &q, 1.0, &mut dkv);
                    if scale.is_some() {
                        dw[0] += (&q * &g).sum();
                    }
                }
                Some(c) => {
                    let (mut d_inner, mut d_outer) = (0.0, [0.0]);
                    let grads = TanhGrads {
                        dq,
                        dk,
                        d_inner: &mut d_inner,
                        d_outer: &mut d_outer,
                    };
                    let (q, k) = (contiguous(&q), contiguous(&k));
                    let p = TanhScores {
                        q,
                        fq,
                        k,
                        fk,
                        inner: scale,
                        outer: Some(&[c]),
                    };
                    tanh_scores_backward(p, &ds, grads);
                    let at = usize::from(scale.is_some());
                    if scale.is_some() {
                        dw[0] += d_inner;
                    }
                    dw[at] += d_outer[0];
                }
            }
        };
        let specs = self.weight_specs();
        dense_backward(name, &self.options, saved, output_grads, &specs, &back)
    }

    fn mask_policy(&self) -> MaskPolicy {
        // Keras's compute_mask: the query's mask goes on with the output.
        MaskPolicy::Propagate
    }

    fn working_elements(&self, inputs: &[Shape]) -> usize {
        dense_working_elements(inputs, &self.options)
    }
}

/// The rows of a batch element of a standard-layout array, as one slice.
pub(crate) fn contiguous<'a>(x: &'a ArrayView2<'_, f32>) -> &'a [f32] {
    x.as_slice()
        .expect("a batch element of a standard-layout array is contiguous")
}

/// The scores buffer of one batch element, `Tq · Tv`, when the scores are not an output.
pub(crate) fn dense_working_elements(inputs: &[Shape], options: &DenseOptions) -> usize {
    if options.return_attention_scores {
        return 0;
    }
    let steps = |i: usize| inputs.get(i).and_then(|s| s.dim(1)).unwrap_or(1);
    let key = if inputs.len() > 2 { 2 } else { 1 };
    steps(0).saturating_mul(steps(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::backward_of;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    fn shapes(tq: usize, tv: usize, dim: usize) -> Vec<Shape> {
        vec![
            Shape::new(vec![None, Some(tq), Some(dim)]),
            Shape::new(vec![None, Some(tv), Some(dim)]),
        ]
    }

    #[test]
    fn one_query_over_two_values_by_hand() -> Result<()> {
        let mut attention = Attention::new()
            .with_use_scale(true)
            .with_return_attention_scores(true);
        attention.build(&shapes(1, 2, 1))?;
        attention.set_weights(&[ndarray::arr0(2.0_f32).into_dyn()])?;
        let q = array![[[1.0_f32]]].into_dyn();
        let v = array![[[0.0_f32], [0.5]]].into_dyn();
        let y = attention.call(&[q.view(), v.view()], &mut CallContext::inference())?;
        // scores = 2 · [1·0, 1·0.5] = [0, 1]; softmax = [1, e] / (1 + e) = [0.2689414, 0.7310586];
        // output = 0.2689414·0 + 0.7310586·0.5 = 0.3655293.
        assert_abs_diff_eq!(y[0][[0, 0, 0]], 0.365_529_3, epsilon = 1e-6);
        assert_abs_diff_eq!(y[1][[0, 0, 0]], 0.268_941_4, epsilon = 1e-6);
        assert_abs_diff_eq!(y[1][[0, 0, 1]], 0.731_058_6, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn backward_of_one_query_over_two_values_by_hand() -> Result<()> {
        let mut attention = Attention::new().with_use_scale(true);
        attention.build(&shapes(1, 2, 1))?;
        attention.set_weights(&[ndarray::arr0(2.0_f32).into_dyn()])?;
        let q = array![[[1.0_f32]]].into_dyn();
        let v = array![[[0.0_f32], [0.5]]].into_dyn();
        let d = array![[[1.0_f32]]].into_dyn();
        let g = backward_of(&attention, &[q.view(), v.view()], &[d.view()])?;
        // w = [0.2689414, 0.7310586] (above); dW = d·vᵀ = [0, 0.5], Σ dW·w = 0.3655293,
        // dS = w·(dW − 0.3655293) = [−0.0983059, 0.0983059].
        // dq = 2·dS·k = 2·0.5·0.0983059 = 0.0983059; d scale = q·(dS·k) = 0.0491530;
        // d value = wᵀ·d + 2·dSᵀ·q = [0.2689414 − 0.1966119, 0.7310586 + 0.1966119].
        let dq = g.inputs[0].as_ref().expect("the query's gradient");
        let dv = g.inputs[1].as_ref().expect("the value's gradient");
        assert_abs_diff_eq!(dq[[0, 0, 0]], 0.098_305_9, epsilon = 1e-6);
        assert_abs_diff_eq!(dv[[0, 0, 0]], 0.072_329_5, epsilon = 1e-6);
        assert_abs_diff_eq!(dv[[0, 1, 0]], 0.927_670_5, epsilon = 1e-6);
        assert_abs_diff_eq!(g.weights[0][[]], 0.049_153_0, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn masks_and_causal_by_hand() -> Result<()> {
        let mut attention = Attention::new().with_use_causal_mask(true);
        attention.build(&shapes(2, 2, 1))?;
        attention.initialize();
        let q = array![[[1.0_f32], [1.0]]].into_dyn();
        let v = array![[[2.0_f32], [4.0]]].into_dyn();
        // Causal: query 0 sees only value 0, so its output is 2. Query 1 sees both, scores
        // [2, 4], softmax [1, e^2] / (1 + e^2) = [0.1192029, 0.8807971]: 0.2384058 + 3.5231884.
        let y = attention.call(&[q.view(), v.view()], &mut CallContext::inference())?;
        assert_abs_diff_eq!(y[0][[0, 0, 0]], 2.0, epsilon = 1e-6);
        assert_abs_diff_eq!(y[0][[0, 1, 0]], 3.761_594_2, epsilon = 1e-5);
        // A query mask zeroes the output there; a value mask hides value 1 from query 1.
        let mut ctx = CallContext::inference().with_masks(vec![
            Some(array![[false, true]]),
            Some(array![[true, false]]),
        ]);
        let y = attention.call(&[q.view(), v.view()], &mut ctx)?;
        assert_eq!(y[0][[0, 0, 0]], 0.0);
        assert_abs_diff_eq!(y[0][[0, 1, 0]], 2.0, epsilon = 1e-6);
        assert_eq!(
            ctx.output_masks(&attention, 1)[0],
            Some(array![[false, true]])
        );
        Ok(())
    }

    #[test]
    fn concat_scores_by_hand() -> Result<()> {
        let mut attention = Attention::new()
            .with_score_mode(ScoreMode::Concat)
            .with_return_attention_scores(true);
        attention.build(&shapes(1, 2, 1))?;
        assert_eq!(attention.weight_specs()[0].name, "concat_score_weight");
        attention.set_weights(&[ndarray::arr0(0.5_f32).into_dyn()])?;
        let q = array![[[0.5_f32]]].into_dyn();
        let v = array![[[0.5_f32], [-0.5]]].into_dyn();
        let y = attention.call(&[q.view(), v.view()], &mut CallContext::inference())?;
        // scores = 0.5 · [tanh(1), tanh(0)] = [0.3807971, 0]; softmax: e^0.3807971 = 1.4634,
        // so [1.4634 / 2.4634, 1 / 2.4634] = [0.5940622, 0.4059378].
        assert_abs_diff_eq!(y[1][[0, 0, 0]], 0.594_062_2, epsilon = 1e-5);
        assert_abs_diff_eq!(
            y[0][[0, 0, 0]],
            0.5 * (0.594_062_2 - 0.405_937_8),
            epsilon = 1e-5
        );
        Ok(())
    }

    #[test]
    fn refuses_bad_inputs_with_keras_words() {
        let attention = Attention::new();
        let one = [Shape::new(vec![None, Some(3), Some(4)])];
        assert_eq!(
            attention
                .compute_output_shape(&one)
                .unwrap_err()
                .to_string(),
            "layer \"attention\": Attention layer accepts inputs list of length 2 or 3, \
             namely [query, value] or [query, value, key]. Received length: 1."
        );
        let err = attention
            .compute_output_shape(&[
                Shape::new(vec![None, Some(3), Some(4)]),
                Shape::new(vec![None, Some(5), Some(6)]),
            ])
            .unwrap_err();
        assert!(err.to_string().contains("same last dimension, got 4 and 6"));
        let err = attention
            .compute_output_shape(&[
                Shape::new(vec![None, Some(3), Some(4)]),
                Shape::new(vec![None, Some(4)]),
            ])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"attention\": Input 1 of layer \"attention\" is incompatible with the \
             layer: expected ndim=3, found ndim=2. Full shape received: (None, 4)"
        );
        // Other value and query features are fine: the output has the value's.
        let out = Attention::new()
            .compute_output_shape(&[
                Shape::new(vec![None, Some(3), Some(4)]),
                Shape::new(vec![None, Some(5), Some(6)]),
                Shape::new(vec![None, Some(5), Some(4)]),
            ])
            .unwrap();
        assert_eq!(out[0].to_string(), "(None, 3, 6)");
        assert!("dots".parse::<ScoreMode>().is_err());
    }

    #[test]
    fn an_unbuilt_or_weightless_call_and_training_with_dropout() -> Result<()> {
        let q = ArrayD::<f32>::zeros(ndarray::IxDyn(&[1, 2, 3]));
        let unbuilt = Attention::new().with_use_scale(true);
        let err = unbuilt
            .call(&[q.view(), q.view()], &mut CallContext::inference())
            .unwrap_err();
        assert!(matches!(err, Error::NotBuilt { .. }));
        let mut scaled = unbuilt.clone();
        scaled.build(&shapes(2, 2, 3))?;
        assert!(matches!(
            scaled.call(&[q.view(), q.view()], &mut CallContext::inference()),
            Err(Error::NotBuilt { .. })
        ));
        let mut plain = Attention::new().with_dropout(0.5);
        plain.build(&shapes(2, 2, 3))?;
        assert!(plain.weight_specs().is_empty());
        plain.call(&[q.view(), q.view()], &mut CallContext::inference())?;
        plain.call(&[q.view(), q.view()], &mut CallContext::training())?;
        // A rate of 1 drops every weight: the output and the scores returned are 0 (a value
        // of ones would give 1 at inference).
        let mut all = Attention::new()
            .with_dropout(1.0)
            .with_return_attention_scores(true);
        all.build(&shapes(2, 2, 3))?;
        let ones = ArrayD::<f32>::ones(ndarray::IxDyn(&[1, 2, 3]));
        let y = all.call(&[q.view(), ones.view()], &mut CallContext::training())?;
        assert!(y.iter().all(|a| a.iter().all(|&v| v == 0.0)));
        let y = all.call(&[q.view(), ones.view()], &mut CallContext::inference())?;
        assert!(y[0].iter().all(|&v| (v - 1.0).abs() < 1e-6));
        let mut too_much = Attention::new().with_dropout(1.5);
        too_much.build(&shapes(2, 2, 3))?;
        let err = too_much
            .call(&[q.view(), q.view()], &mut CallContext::training())
            .unwrap_err();
        assert!(err.to_string().contains("dropout=1.5"), "{err}");
        Ok(())
    }
}
