//! Keras's `MultiHeadAttention`: scaled dot-product attention over several heads, with the
//! query, key, value and output projections (tf_keras 2.21
//! `tf_keras/src/layers/attention/multi_head_attention.py`, Keras 3.15
//! `keras/src/layers/attention/multi_head_attention.py`).

use ndarray::linalg::general_mat_mul;
use ndarray::{
    s, Array2, Array3, Array4, ArrayD, ArrayView2, ArrayViewD, Axis, CowArray, Ix2, Ix3, IxDyn,
};

use crate::activation::ActivationFn;
use crate::error::{Error, Result};
use crate::init::Initializer;
use crate::layer::{
    check_not_empty, check_specs, layer_plumbing, no_weights, output_grad, CallContext, Gradients,
    Layer, LayerName, MaskPolicy, Outputs, SavedForBackward, WeightSpec,
};
use crate::layers::attention::{
    attention_dropout, held_weights, input_mask, list, name_builders, rank_error, same_dim,
    standard, AttentionDropout,
};
use crate::limits;
use crate::linalg::attention::{masked_softmax, masked_softmax_backward, Fill};
use crate::shape::Shape;

/// What `MultiHeadAttention`'s softmax does with masked scores: the one place where tf_keras
/// 2.21 and Keras 3.15 give different numbers. They differ only for a query position whose
/// every score is masked, which a query mask makes: Keras's attention mask is
/// `query_mask[:, :, None] & value_mask[:, None, :]`, so a masked query position is a row of
/// masked scores, and its output is what the softmax makes of such a row, projected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SoftmaxMasking {
    /// Keras 3.15. Without `return_attention_scores` and with `dropout` 0, the layer calls
    /// `ops.dot_product_attention`, which puts a large negative number in place of a masked
    /// score: a fully masked row has uniform weights. With `return_attention_scores`, or a
    /// dropout rate above 0 (even at inference), it runs its `Softmax` layer, which also
    /// zeroes the masked weights: a fully masked row has zero weights, and the output there
    /// is the output projection's bias.
    #[default]
    Keras3,
    /// tf_keras 2.21 with `softmax_robust_masking=False` (its default): `-1e9` is added to a
    /// masked score, so a fully masked row's weights are a softmax of `score - 1e9` (uniform
    /// when the scores are small).
    TfKeras,
    /// tf_keras 2.21 with `softmax_robust_masking=True`: `-1e9` in place of a masked score, so
    /// a fully masked row has uniform weights.
    TfKerasRobust,
}

/// Keras's `MultiHeadAttention`: the query, key and value projected into `num_heads` heads,
/// scaled dot-product attention in each, and the heads projected back.
///
/// ```text
/// Q[b, t, n] = query[b, t] · query_kernel[:, n, :] + query_bias[n]        (key_dim wide)
/// K[b, s, n] = key[b, s]   · key_kernel[:, n, :]   + key_bias[n]          (key_dim wide)
/// V[b, s, n] = value[b, s] · value_kernel[:, n, :] + value_bias[n]        (value_dim wide)
/// scores[b, n, t, s] = (Q[b, t, n] / sqrt(key_dim)) · K[b, s, n]
/// weights = softmax over s of the scores, masked where mask[b, t, s] is false
/// O[b, t, n] = Σ_s weights[b, n, t, s] · V[b, s, n]
/// output[b, t] = Σ_n O[b, t, n] · output_kernel[n] + output_bias
/// mask[b, t, s] = query_mask[b, t] & value_mask[b, s] & key_mask[b, s] & (s <= t if causal)
///                 & (|t - s| < sliding_window) & attention_mask[b, t, s]
/// ```
///
/// - Inputs, through [`call`](Layer::call): `[query, value]` or `[query, value, key]` (Keras's
///   `layer(query, value, key)`), `query (batch, T, dim)`, `value (batch, S, value_features)`,
///   `key (batch, S, key_features)`; without a key, the value is the key. With
///   [`with_attention_mask_input`](MultiHeadAttention::with_attention_mask_input), one more
///   input last: Keras's `attention_mask`, `(batch, T, S)`, nonzero where query `t` may attend
///   to key `s`.
/// - Masks: the context's masks of the query, the value and the key, as Keras reads their
///   `_keras_mask`s.
/// - Outputs: `(batch, T, dim)`, or `(batch, T, *output_shape)` with
///   [`with_output_shape`](MultiHeadAttention::with_output_shape), carrying the query's mask;
///   then, with [`with_return_attention_scores`](MultiHeadAttention::with_return_attention_scores),
///   the weights `(batch, num_heads, T, S)` without a mask. (Keras 3.15's symbolic shape for
///   the scores says `(batch, num_heads, T, T)`, wrongly when `S` is not `T`; its tensors have
///   `S`, and so does seqnn's shape.)
/// - Weights, in Keras's order (`layer.get_weights()`): `query/kernel (dim, num_heads,
///   key_dim)`, `query/bias (num_heads, key_dim)`, `key/kernel (key_features, num_heads,
///   key_dim)`, `key/bias`, with `use_gate` `gate/kernel (dim, num_heads, value_dim)` and
///   `gate/bias`, `value/kernel (value_features, num_heads, value_dim)`, `value/bias (num_heads,
///   value_dim)`, `attention_output/kernel (num_heads, value_dim, *output_shape)`,
///   `attention_output/bias (*output_shape)`; no biases without `use_bias`.
///
/// Training: the same in both modes but for `dropout`, which a training call applies to the
/// weights (`O` sums `weights ⊙ keep / (1 − rate)`, `keep` drawn per sample, head, query and
/// key). The backward pass gives the gradients of the query, the value and the key (the
/// value's includes the key's when there is no key; the attention mask input gets none), and
/// of every projection, through the call's dropout and each head's softmax as the layer's
/// [`SoftmaxMasking`] computes it.
///
/// Only rank-3 inputs and the default `attention_axes` (the timesteps) are supported. What a
/// fully masked row of scores gives differs between tf_keras and Keras 3: see
/// [`SoftmaxMasking`]. Keras's call arguments `use_causal_mask`, `return_attention_scores` and
/// `attention_mask` are options of the layer here.
///
/// ```
/// use ndarray::Array3;
/// use seqnn::{CallContext, Layer, MultiHeadAttention, Shape};
/// // keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)(query, value)
/// let mut mha = MultiHeadAttention::new(2, 3);
/// let out = mha.build(&[
///     Shape::new(vec![None, Some(4), Some(8)]),
///     Shape::new(vec![None, Some(6), Some(8)]),
/// ])?;
/// assert_eq!(out[0].to_string(), "(None, 4, 8)");
/// // query, key, value: 8·2·3 + 2·3 each; output: 2·3·8 + 8
/// assert_eq!(mha.count_params(), 3 * (48 + 6) + 48 + 8);
/// mha.initialize();
/// let query = Array3::<f32>::ones((1, 4, 8)).into_dyn();
/// let value = Array3::<f32>::ones((1, 6, 8)).into_dyn();
/// let y = mha.call(&[query.view(), value.view()], &mut CallContext::inference())?;
/// assert_eq!(y[0].shape(), &[1, 4, 8]);
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Building or calling it fails with [`Error::InvalidArgument`] for zero heads, `key_dim`,
/// `value_dim`, `sliding_window` or `output_shape` dimension (Keras's messages), for the wrong
/// number of inputs, inputs of rank below 3 (the query's is [`Error::IncompatibleRank`]),
/// unknown feature dimensions, different batch sizes, a key whose timesteps are not the
/// value's (Keras's message), an attention mask that is not `(batch, T, S)`, or masks that are
/// not their inputs' `(batch, timesteps)`; with [`Error::Unsupported`] for inputs of rank above
/// 3; with [`Error::IncompatibleShape`] when a built layer is given other features; with
/// [`Error::TooLarge`] when the weights, the projections, the scores or the output would exceed
/// the limits; a call on an unbuilt layer with [`Error::NotBuilt`], on empty inputs with
/// [`Error::EmptyInput`]; building it fails with [`Error::InvalidArgument`] for a `dropout`
/// outside `[0, 1]` (Keras's `Dropout`'s message).
#[derive(Debug, Clone)]
pub struct MultiHeadAttention {
    name: LayerName,
    /// Keras's regularizers and constraints of the weights, and the activity regularizer.
    rules: crate::train::WeightRules,
    trainable: bool,
    num_heads: usize,
    key_dim: usize,
    value_dim: Option<usize>,
    dropout: f32,
    use_bias: bool,
    output_shape: Option<Vec<usize>>,
    use_gate: bool,
    sliding_window: Option<usize>,
    softmax_masking: SoftmaxMasking,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    use_causal_mask: bool,
    return_attention_scores: bool,
    attention_mask_input: bool,
    /// The features of the query, the value and the key it was built for.
    features: Option<[usize; 3]>,
    /// The weights in Keras order, each in its Keras shape and standard layout.
    values: Option<Vec<ArrayD<f32>>>,
}

/// The sizes of one call or build: batch, query steps `t`, key steps `s`, and the features.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    batch: usize,
    t: usize,
    s: usize,
    features: [usize; 3],
}

/// One projection's weights as a matrix `(in, out)` and a bias `(out,)`.
struct Projection<'a> {
    kernel: ArrayView2<'a, f32>,
    bias: Option<&'a [f32]>,
}

impl MultiHeadAttention {
    crate::layer::rule_builders! {
        "kernel", "every projection's kernel" => with_kernel_regularizer, with_kernel_constraint;
        "bias", "every projection's bias" => with_bias_regularizer, with_bias_constraint;
    }

    /// A MultiHeadAttention layer with `num_heads` heads of `key_dim` features for the query
    /// and the key, and Keras's defaults, as `MultiHeadAttention(num_heads, key_dim)`:
    /// `value_dim` = `key_dim`, `dropout` 0, `use_bias` true, the output projected back to the
    /// query's features.
    ///
    /// Zero heads or `key_dim` is refused when the layer is built.
    pub fn new(num_heads: usize, key_dim: usize) -> Self {
        MultiHeadAttention {
            name: LayerName::new("multi_head_attention"),
            rules: crate::train::WeightRules::new(),
            trainable: true,
            num_heads,
            key_dim,
            value_dim: None,
            dropout: 0.0,
            use_bias: true,
            output_shape: None,
            use_gate: false,
            sliding_window: None,
            softmax_masking: SoftmaxMasking::Keras3,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            use_causal_mask: false,
            return_attention_scores: false,
            attention_mask_input: false,
            features: None,
            values: None,
        }
    }

    /// Keras's `value_dim`: the features of each head of the value. Default `key_dim`.
    #[must_use]
    pub fn with_value_dim(mut self, value_dim: usize) -> Self {
        self.value_dim = Some(value_dim);
        self
    }

    /// Keras's `dropout` on the attention weights: in training, each weight of each head is
    /// dropped with this probability and the others scaled by `1 / (1 − rate)` before the sum
    /// of the values, from seqnn's seeded generator ([`crate::set_random_seed`]); the scores
    /// returned are those before the dropout, as in both Kerases. Default 0. At inference it
    /// changes nothing in tf_keras; in Keras 3 a rate above 0 switches to the path whose fully
    /// masked rows get zero weights (see [`SoftmaxMasking::Keras3`]). A rate outside `[0, 1]`
    /// is refused when the layer is built, as Keras's `Dropout` refuses it.
    #[must_use]
    pub fn with_dropout(mut self, rate: f32) -> Self {
        self.dropout = rate;
        self
    }

    /// Keras's `use_bias`: biases on the four projections. Default true.
    #[must_use]
    pub fn with_use_bias(mut self, yes: bool) -> Self {
        self.use_bias = yes;
        self
    }

    /// Keras's `output_shape`: the output's dimensions after the timesteps. Default: the
    /// query's features. An empty list is Keras's `None`.
    #[must_use]
    pub fn with_output_shape(mut self, dims: Vec<usize>) -> Self {
        self.output_shape = (!dims.is_empty()).then_some(dims);
        self
    }

    /// Keras 3's `use_gate`: the heads' outputs times `sigmoid(query · gate_kernel +
    /// gate_bias)` before the output projection. Default false.
    #[must_use]
    pub fn with_use_gate(mut self, yes: bool) -> Self {
        self.use_gate = yes;
        self
    }

    /// Keras 3's `sliding_window`: query `t` sees only the keys `s` with `|t - s| < window`.
    /// Default none.
    #[must_use]
    pub fn with_sliding_window(mut self, window: Option<usize>) -> Self {
        self.sliding_window = window;
        self
    }

    /// What the softmax does with masked scores, as tf_keras or Keras 3. Default
    /// [`SoftmaxMasking::Keras3`].
    #[must_use]
    pub fn with_softmax_masking(mut self, masking: SoftmaxMasking) -> Self {
        self.softmax_masking = masking;
        self
    }

    /// Keras's `kernel_initializer` for the four kernels. Default `glorot_uniform`.
    #[must_use]
    pub fn with_kernel_initializer(mut self, init: Initializer) -> Self {
        self.kernel_initializer = init;
        self
    }

    /// Keras's `bias_initializer` for the four biases. Default `zeros`.
    #[must_use]
    pub fn with_bias_initializer(mut self, init: Initializer) -> Self {
        self.bias_initializer = init;
        self
    }

    /// Keras's `use_causal_mask` call argument: query `t` sees only the keys `s <= t`. Default
    /// false. A Keras config does not hold call arguments, so `layer_to_config` leaves it out.
    #[must_use]
    pub fn with_use_causal_mask(mut self, yes: bool) -> Self {
        self.use_causal_mask = yes;
        self
    }

    /// Keras's `return_attention_scores` call argument: each call returns a second output, the
    /// weights `(batch, num_heads, T, S)`. Default false. A Keras config does not hold call
    /// arguments, so `layer_to_config` leaves it out.
    #[must_use]
    pub fn with_return_attention_scores(mut self, yes: bool) -> Self {
        self.return_attention_scores = yes;
        self
    }

    /// Keras's `attention_mask` call argument, as one more input after the query, the value
    /// and the key: `(batch, T, S)`, nonzero where query `t` may attend to key `s`. Default
    /// false.
    #[must_use]
    pub fn with_attention_mask_input(mut self, yes: bool) -> Self {
        self.attention_mask_input = yes;
        self
    }

    name_builders!("multi_head_attention");

    /// The number of heads (Keras's `num_heads`).
    pub fn num_heads(&self) -> usize {
        self.num_heads
    }

    /// The features of each head of the query and the key (Keras's `key_dim`).
    pub fn key_dim(&self) -> usize {
        self.key_dim
    }

    /// The features of each head of the value (Keras's `value_dim`, `key_dim` by default).
    pub fn value_dim(&self) -> usize {
        self.value_dim.unwrap_or(self.key_dim)
    }

    /// The dropout rate on the attention weights.
    pub fn dropout(&self) -> f32 {
        self.dropout
    }

    /// Whether the projections have biases.
    pub fn use_bias(&self) -> bool {
        self.use_bias
    }

    /// The output's dimensions after the timesteps, when they are not the query's features.
    pub fn output_shape(&self) -> Option<&[usize]> {
        self.output_shape.as_deref()
    }

    /// Whether the heads' outputs are gated (Keras 3's `use_gate`).
    pub fn use_gate(&self) -> bool {
        self.use_gate
    }

    /// The sliding window, if any (Keras 3's `sliding_window`).
    pub fn sliding_window(&self) -> Option<usize> {
        self.sliding_window
    }

    /// What the softmax does with masked scores.
    pub fn softmax_masking(&self) -> SoftmaxMasking {
        self.softmax_masking
    }

    /// The kernels' initializer.
    pub fn kernel_initializer(&self) -> Initializer {
        self.kernel_initializer
    }

    /// The biases' initializer.
    pub fn bias_initializer(&self) -> Initializer {
        self.bias_initializer
    }

    /// Whether calls mask causally (the `use_causal_mask` call argument).
    pub fn use_causal_mask(&self) -> bool {
        self.use_causal_mask
    }

    /// Whether a call returns the attention scores as a second output.
    pub fn return_attention_scores(&self) -> bool {
        self.return_attention_scores
    }

    /// Whether the call takes an attention mask as its last input.
    pub fn attention_mask_input(&self) -> bool {
        self.attention_mask_input
    }

    /// The initializer of a weight: `kernel_initializer` for the kernels, else
    /// `bias_initializer`.
    fn initializer_for(&self, spec: &WeightSpec) -> Initializer {
        if spec.name.ends_with("kernel") {
            self.kernel_initializer
        } else {
            self.bias_initializer
        }
    }

    /// Keras 3's checks of the constructor's arguments.
    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |message: String| {
            Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message,
            })
        };
        for (arg, v) in [("num_heads", self.num_heads), ("key_dim", self.key_dim)] {
            if v == 0 {
                return invalid(format!(
                    "Received an invalid value for argument `{arg}`, expected a positive \
                     integer. Received: {arg}=0"
                ));
            }
        }
        if self.value_dim == Some(0) {
            return invalid(
                "Received an invalid value for argument `value_dim`, expected a positive \
                 integer or `None`. Received: value_dim=0"
                    .into(),
            );
        }
        if self.sliding_window == Some(0) {
            return invalid(
                "`sliding_window` must be `None` or a positive integer. Received: \
                 sliding_window=0"
                    .into(),
            );
        }
        if !(0.0..=1.0).contains(&self.dropout) {
            // Keras 3's Dropout, which the layer makes in its constructor.
            return invalid(format!(
                "Invalid value received for argument `rate`. Expected a float value between 0 \
                 and 1. Received: rate={}",
                crate::layers::dropout::py_float(self.dropout)
            ));
        }
        if let Some(dims) = self.output_shape.as_ref().filter(|d| d.contains(&0)) {
            return invalid(format!(
                "Invalid `output_shape`: {dims:?}. Its dimensions must be positive."
            ));
        }
        Ok(())
    }

    /// The dimensions after the timesteps of the output, for a query of `dim` features.
    fn out_dims(&self, dim: usize) -> Vec<usize> {
        self.output_shape.clone().unwrap_or_else(|| vec![dim])
    }

    /// The weights' names and shapes in Keras order, for inputs of `features`.
    fn specs_for(&self, [dq, dv, dk]: [usize; 3]) -> Vec<(&'static str, Vec<usize>)> {
        let (n, hk, hv) = (self.num_heads, self.key_dim, self.value_dim());
        let mut specs = Vec::with_capacity(10);
        let mut dense =
            |name: (&'static str, &'static str), kernel: Vec<usize>, bias: Vec<usize>| {
                specs.push((name.0, kernel));
                if self.use_bias {
                    specs.push((name.1, bias));
                }
            };
        dense(("query/kernel", "query/bias"), vec![dq, n, hk], vec![n, hk]);
        dense(("key/kernel", "key/bias"), vec![dk, n, hk], vec![n, hk]);
        if self.use_gate {
            dense(("gate/kernel", "gate/bias"), vec![dq, n, hv], vec![n, hv]);
        }
        dense(("value/kernel", "value/bias"), vec![dv, n, hv], vec![n, hv]);
        let out = self.out_dims(dq);
        let mut kernel = vec![n, hv];
        kernel.extend_from_slice(&out);
        dense(
            ("attention_output/kernel", "attention_output/bias"),
            kernel,
            out,
        );
        specs
    }

    /// The input shapes checked, and the query, value and key shapes.
    fn shapes<'a>(&self, inputs: &'a [Shape]) -> Result<([&'a Shape; 3], Option<&'a Shape>)> {
        let name = self.name.get();
        let extra = usize::from(self.attention_mask_input);
        let (q, v, k) = match inputs.len().checked_sub(extra) {
            Some(2) => (&inputs[0], &inputs[1], &inputs[1]),
            Some(3) => (&inputs[0], &inputs[1], &inputs[2]),
            _ => {
                let mask = if extra == 1 {
                    ", then the attention mask"
                } else {
                    ""
                };
                return Err(Error::InvalidArgument {
                    layer: name.to_string(),
                    message: format!(
                        "MultiHeadAttention takes the inputs [query, value] or [query, value, \
                         key]{mask}; received {} input(s)",
                        inputs.len()
                    ),
                });
            }
        };
        let attention_mask = (extra == 1).then(|| &inputs[inputs.len() - 1]);
        for (i, s) in inputs[..inputs.len() - extra].iter().enumerate() {
            if s.rank() > 3 {
                return Err(Error::Unsupported {
                    layer: name.to_string(),
                    class: "MultiHeadAttention".into(),
                    message: format!(
                        "seqnn's MultiHeadAttention takes inputs of rank 3 (batch, timesteps, \
                         features), attending over the timesteps; input {i} has shape {s}"
                    ),
                });
            }
            if s.rank() < 3 {
                return Err(rank_error(name, i, 3, s));
            }
        }
        // Keras's build: value_shape[1:-1] must equal key_shape[1:-1].
        if let (Some(a), Some(b)) = (v.dim(1), k.dim(1)) {
            if a != b {
                return Err(Error::InvalidArgument {
                    layer: name.to_string(),
                    message: format!(
                        "All dimensions of `value` and `key`, except the last one, must be \
                         equal. Received: value_shape={v} and key_shape={k}"
                    ),
                });
            }
        }
        let all = [q, v, k];
        same_dim(name, "the batch sizes", q.dim(0), v.dim(0), &all)?;
        same_dim(name, "the batch sizes", q.dim(0), k.dim(0), &all)?;
        if let Some(m) = attention_mask {
            let expected = Shape::new(vec![q.dim(0).or(v.dim(0)), q.dim(1), v.dim(1)]);
            let fits = m.rank() == 3
                && m.dims()
                    .iter()
                    .zip(expected.dims())
                    .all(|(a, b)| a.is_none() || b.is_none() || a == b);
            if !fits {
                return Err(Error::InvalidArgument {
                    layer: name.to_string(),
                    message: format!(
                        "the attention mask must have the shape (batch, T, S) = {expected}, \
                         got {m}; inputs {}",
                        list(&all)
                    ),
                });
            }
        }
        Ok((all, attention_mask))
    }

    /// The known features of the query, the value and the key, or Keras's error.
    fn features(&self, [q, v, k]: [&Shape; 3]) -> Result<[usize; 3]> {
        let mut f = [0; 3];
        for (i, s) in [q, v, k].into_iter().enumerate() {
            f[i] = s.last().ok_or_else(|| Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: format!(
                    "The last dimension of the inputs to a MultiHeadAttention layer should be \
                     defined. Found None. Full input shape received: {s}"
                ),
            })?;
        }
        Ok(f)
    }

    /// The shapes of the tensors a call makes per sample, with what they are, for the limits.
    fn tensors(&self, sizes: &Sizes) -> Result<Vec<(&'static str, Vec<usize>)>> {
        let name = self.name.get();
        let Sizes {
            batch,
            t,
            s,
            features,
        } = *sizes;
        let n = self.num_heads;
        let qk = limits::mul(name, n, self.key_dim)?;
        let v = limits::mul(name, n, self.value_dim())?;
        let mut out = vec![batch, t];
        out.extend(self.out_dims(features[0]));
        let mut tensors = vec![
            ("query projection", vec![batch, t, qk]),
            ("key projection", vec![batch, s, qk]),
            ("value projection", vec![batch, s, v]),
            ("heads' output", vec![batch, t, v]),
            ("output", out),
        ];
        if self.return_attention_scores {
            tensors.push(("attention scores", vec![batch, n, t, s]));
        } else {
            tensors.push(("attention scores", vec![t, s]));
        }
        Ok(tensors)
    }

    /// The weights, by role.
    fn projections(&self) -> Option<[Option<Projection<'_>>; 5]> {
        let values = self.values.as_ref()?;
        let mut it = values.iter();
        // A kernel's first `inputs` axes are its rows: the features for the query, key, gate
        // and value projections, (heads, value_dim) for the output's.
        let mut next = |wanted: bool, inputs: usize| -> Option<Option<Projection<'_>>> {
            if !wanted {
                return Some(None);
            }
            let kernel = it.next()?;
            let rows: usize = kernel.shape().iter().take(inputs).product();
            let kernel = kernel
                .view()
                .into_shape_with_order((rows, kernel.len() / rows.max(1)))
                .ok()?;
            let bias = if self.use_bias {
                Some(it.next()?.as_slice()?)
            } else {
                None
            };
            Some(Some(Projection { kernel, bias }))
        };
        let query = next(true, 1)?;
        let key = next(true, 1)?;
        let gate = next(self.use_gate, 1)?;
        let value = next(true, 1)?;
        let output = next(true, 2)?;
        Some([query, key, gate, value, output])
    }

    /// How a masked score is filled, for this layer's dialect and call.
    fn fill(&self) -> Fill {
        match self.softmax_masking {
            SoftmaxMasking::TfKeras => Fill::Subtract,
            SoftmaxMasking::TfKerasRobust => Fill::Replace,
            SoftmaxMasking::Keras3 if self.return_attention_scores || self.dropout > 0.0 => {
                Fill::ReplaceThenZero
            }
            SoftmaxMasking::Keras3 => Fill::Replace,
        }
    }
}

/// What a recording call of a MultiHeadAttention keeps: its query, value and key rows (`None`:
/// the value is the key), the projections (the query's scaled), the attention weights
/// `(batch, heads, T, S)` (before the dropout), the dropout's factors, which scores the masks
/// kept where a fill replaced the others `(batch, T, S)`, the heads' output before the gate, the
/// gate, the output's shape, and whether an attention mask was an input.
#[derive(Debug)]
struct MhaSaved {
    query: Array2<f32>,
    value: Array2<f32>,
    key: Option<Array2<f32>>,
    q: Array2<f32>,
    k: Array2<f32>,
    v: Array2<f32>,
    weights: Array4<f32>,
    /// The dropout's factors on the weights, one `(T, S)` matrix per sample and head, in a
    /// training call with dropout.
    dropout: Option<Array3<f32>>,
    kept: Option<Array3<bool>>,
    heads: Array2<f32>,
    gate: Option<Array2<f32>>,
    out_shape: Vec<usize>,
    attention_mask: bool,
}

/// The backward pass of [`project`] for the gradient `d` of its output: the input's gradient
/// `d · kernelᵀ`, then the gradients of the kernel `xᵀ · d` and of the bias `Σ d` (with one),
/// as flat matrices.
fn project_backward(
    x: ArrayView2<'_, f32>,
    d: &Array2<f32>,
    p: &Projection<'_>,
) -> (Array2<f32>, Vec<ArrayD<f32>>) {
    let dx = d.dot(&p.kernel.t());
    let dx = if dx.is_standard_layout() {
        dx
    } else {
        dx.as_standard_layout().into_owned()
    };
    let mut grads = vec![x.t().dot(d).as_standard_layout().into_owned().into_dyn()];
    if p.bias.is_some() {
        grads.push(crate::linalg::column_sums(d.view()).into_dyn());
    }
    (dx, grads)
}

/// `x (rows, in) · kernel (in, out) + bias`, as Keras's `EinsumDense`: one matrix product.
fn project(x: ArrayView2<'_, f32>, p: &Projection<'_>) -> Array2<f32> {
    let (rows, cols) = (x.nrows(), p.kernel.ncols());
    let mut y = match p.bias {
        Some(b) => {
            let b = ArrayView2::from_shape((1, cols), b).expect("a bias has the kernel's columns");
            b.broadcast((rows, cols))
                .expect("a row broadcasts to every row")
                .to_owned()
        }
        None => Array2::zeros((rows, cols)),
    };
    general_mat_mul(1.0, &x, &p.kernel, 1.0, &mut y);
    y
}

/// An input's `(batch·steps, features)` matrix: a view in standard layout, else a copy.
fn rows<'a>(x: &ArrayViewD<'a, f32>) -> CowArray<'a, f32, Ix2> {
    let (b, t, f) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    standard(x.clone())
        .into_shape_with_order((b * t, f))
        .expect("a 3-D standard-layout array reshapes to rows")
}

impl Layer for MultiHeadAttention {
    layer_plumbing!();
    crate::layer::rule_methods!();

    fn class_name(&self) -> &'static str {
        "MultiHeadAttention"
    }

    held_weights!();

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        self.validate()?;
        let (shapes, _) = self.shapes(inputs)?;
        let features = self.features(shapes)?;
        if let Some(built) = self.features.filter(|b| *b != features) {
            let i = (0..3).find(|&i| built[i] != features[i]).unwrap_or(0);
            return Err(Error::IncompatibleShape {
                layer: name.to_string(),
                expected: Shape::new(vec![None, None, Some(built[i])]),
                found: shapes[i].clone(),
            });
        }
        let specs = self.specs_for(features);
        let refs: Vec<(&str, &[usize])> = specs.iter().map(|(n, s)| (*n, s.as_slice())).collect();
        check_specs(name, &refs)?;
        let [q, v, k] = shapes;
        let batch = q.dim(0).or(v.dim(0)).or(k.dim(0));
        let sizes = Sizes {
            batch: 1,
            t: q.dim(1).unwrap_or(1),
            s: v.dim(1).or(k.dim(1)).unwrap_or(1),
            features,
        };
        for (what, dims) in self.tensors(&sizes)? {
            limits::check_tensor(name, what, &Shape::known(&dims))?;
        }
        let mut out = vec![batch, q.dim(1)];
        out.extend(self.out_dims(features[0]).into_iter().map(Some));
        let mut shapes = vec![Shape::new(out)];
        if self.return_attention_scores {
            shapes.push(Shape::new(vec![
                batch,
                Some(self.num_heads),
                q.dim(1),
                v.dim(1).or(k.dim(1)),
            ]));
        }
        Ok(shapes)
    }

    fn build(&mut self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let out = self.compute_output_shape(inputs)?;
        if self.features.is_none() {
            let (shapes, _) = self.shapes(inputs)?;
            self.features = Some(self.features(shapes)?);
        }
        Ok(out)
    }

    fn is_built(&self) -> bool {
        self.features.is_some()
    }

    fn weight_specs(&self) -> Vec<WeightSpec> {
        let Some(features) = self.features else {
            return Vec::new();
        };
        self.specs_for(features)
            .into_iter()
            .map(|(n, s)| WeightSpec::new(n, s))
            .collect()
    }

    fn output_count(&self) -> usize {
        1 + usize::from(self.return_attention_scores)
    }

    fn call(&self, inputs: &[ArrayViewD<'_, f32>], ctx: &mut CallContext) -> Result<Outputs> {
        let name = self.name.get();
        self.validate()?;
        let shapes: Vec<Shape> = inputs.iter().map(|x| Shape::known(x.shape())).collect();
        let (checked, _) = self.shapes(&shapes)?;
        for x in inputs {
            check_not_empty(name, x.shape())?;
        }
        let features = self.features(checked)?;
        let (Some(built), Some([Some(wq), Some(wk), wg, Some(wv), Some(wo)])) =
            (self.features, self.projections())
        else {
            return Err(no_weights(name));
        };
        if built != features {
            let i = (0..3).find(|&i| built[i] != features[i]).unwrap_or(0);
            return Err(Error::IncompatibleShape {
                layer: name.to_string(),
                expected: Shape::new(vec![None, None, Some(built[i])]),
                found: checked[i].clone(),
            });
        }
        let dropout = attention_dropout(name, ctx, self.dropout)?;
        let has_key = inputs.len() - usize::from(self.attention_mask_input) == 3;
        let (batch, t, s) = (
            inputs[0].shape()[0],
            inputs[0].shape()[1],
            inputs[1].shape()[1],
        );
        let q_mask = input_mask(name, ctx, 0, batch, t)?;
        let v_mask = input_mask(name, ctx, 1, batch, s)?;
        let k_mask = if has_key {
            input_mask(name, ctx, 2, batch, s)?
        } else {
            None
        };
        let sizes = Sizes {
            batch,
            t,
            s,
            features,
        };
        for (what, dims) in self.tensors(&sizes)? {
            limits::check_dims(name, what, &dims)?;
        }
        let attention_mask = self.attention_mask_input.then(|| {
            inputs[inputs.len() - 1]
                .view()
                .into_dimensionality::<Ix3>()
                .expect("checked to be 3-D")
        });

        let (n, hk, hv) = (self.num_heads, self.key_dim, self.value_dim());
        let query = rows(&inputs[0]);
        let value = rows(&inputs[1]);
        let key = if has_key {
            rows(&inputs[2])
        } else {
            value.clone()
        };
        let mut q = project(query.view(), &wq);
        // Keras scales the projected query before the product: query · (1 / sqrt(key_dim)).
        let inv_sqrt = (1.0 / (self.key_dim as f64).sqrt()) as f32;
        q.mapv_inplace(|x| x * inv_sqrt);
        let k = project(key.view(), &wk);
        let v = project(value.view(), &wv);

        let causal = self.use_causal_mask;
        let window = self.sliding_window;
        let masked = q_mask.is_some()
            || v_mask.is_some()
            || k_mask.is_some()
            || causal
            || window.is_some()
            || attention_mask.is_some();
        let fill = self.fill();
        let records = ctx.records();
        let mut heads = Array2::<f32>::zeros((batch * t, n * hv));
        let mut all_scores = (self.return_attention_scores || records)
            .then(|| Array4::<f32>::zeros((batch, n, t, s)));
        // What the backward pass needs of the masks: which scores the fill replaced.
        let mut kept = (records && masked && fill != Fill::Subtract)
            .then(|| Array3::from_elem((batch, t, s), true));
        let mut one = if all_scores.is_none() {
            Array2::<f32>::zeros((t, s))
        } else {
            Array2::<f32>::zeros((0, 0))
        };
        let mut keep = Array2::from_elem(if masked { (t, s) } else { (0, 0) }, true);
        let mut drop = dropout.map(|rate| AttentionDropout::new(rate, records, batch * n, t, s));
        for b in 0..batch {
            if masked {
                for ((i, j), k) in keep.indexed_iter_mut() {
                    *k = q_mask.is_none_or(|m| m[[b, i]])
                        && v_mask.is_none_or(|m| m[[b, j]])
                        && k_mask.is_none_or(|m| m[[b, j]])
                        && (!causal || j <= i)
                        && window.is_none_or(|w| i.abs_diff(j) < w)
                        && attention_mask.as_ref().is_none_or(|m| m[[b, i, j]] != 0.0);
                }
                if let Some(kept) = kept.as_mut() {
                    kept.index_axis_mut(Axis(0), b).assign(&keep);
                }
            }
            let rows_q = b * t..(b + 1) * t;
            let rows_k = b * s..(b + 1) * s;
            for h in 0..n {
                let mut scores = match all_scores.as_mut() {
                    Some(all) => all.slice_mut(s![b, h, .., ..]),
                    None => one.view_mut(),
                };
                let qh = q.slice(s![rows_q.clone(), h * hk..(h + 1) * hk]);
                let kh = k.slice(s![rows_k.clone(), h * hk..(h + 1) * hk]);
                general_mat_mul(1.0, &qh, &kh.t(), 0.0, &mut scores);
                masked_softmax(&mut scores, masked, fill, |i, j| keep[[i, j]]);
                let vh = v.slice(s![rows_k.clone(), h * hv..(h + 1) * hv]);
                let mut oh = heads.slice_mut(s![rows_q.clone(), h * hv..(h + 1) * hv]);
                // Keras's `_dropout_layer` on the weights; the scores returned are those before.
                match drop.as_mut() {
                    Some(d) => {
                        general_mat_mul(1.0, d.apply(b * n + h, &scores.view()), &vh, 0.0, &mut oh)
                    }
                    None => general_mat_mul(1.0, &scores, &vh, 0.0, &mut oh),
                }
            }
        }
        let raw_heads = (records && wg.is_some()).then(|| heads.clone());
        let gate = wg.map(|wg| {
            let mut gate = project(query.view(), &wg);
            ActivationFn::Sigmoid.apply_slice(
                gate.as_slice_mut()
                    .expect("a fresh projection is contiguous"),
                n * hv,
            );
            heads *= &gate;
            gate
        });
        let y = project(heads.view(), &wo);
        let mut out_shape = vec![batch, t];
        out_shape.extend(self.out_dims(features[0]));
        let y = y
            .into_shape_with_order(IxDyn(&out_shape))
            .expect("rows·outputs values fill the output shape");
        let mut outputs = vec![y];
        if self.return_attention_scores {
            outputs.extend(all_scores.clone().map(|a| a.into_dyn()));
        }
        if let (true, Some(weights)) = (records, all_scores) {
            ctx.save_for_backward(Box::new(MhaSaved {
                query: query.into_owned(),
                value: value.into_owned(),
                key: has_key.then(|| key.into_owned()),
                q,
                k,
                v,
                weights,
                dropout: drop.and_then(AttentionDropout::into_factors),
                kept,
                heads: raw_heads.unwrap_or(heads),
                gate,
                out_shape,
                attention_mask: self.attention_mask_input,
            }));
        }
        Ok(outputs)
    }

    /// Back through the output projection, the gate, each head's weighted sum and softmax
    /// (masked scores replaced by a constant get no gradient, those tf_keras's `− 1e9` moved
    /// pass theirs on), the scaled product and the query, key and value projections. The
    /// attention mask input gets none.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let saved: &MhaSaved = saved.get(name)?;
        let Some([Some(wq), Some(wk), wg, Some(wv), Some(wo)]) = self.projections() else {
            return Err(no_weights(name));
        };
        let (n, hk, hv) = (self.num_heads, self.key_dim, self.value_dim());
        let (batch, _, t, s) = saved.weights.dim();
        let dy = output_grad(name, output_grads, 0, &saved.out_shape)?;
        let dy = dy
            .into_shape_with_order((batch * t, wo.kernel.ncols()))
            .expect("the output's rows");
        let d_scores = if self.return_attention_scores {
            Some(
                output_grad(name, output_grads, 1, &[batch, n, t, s])?
                    .into_dimensionality::<ndarray::Ix4>()
                    .expect("checked to be 4-D"),
            )
        } else {
            None
        };
        // The output projection, of the gated heads.
        let gated = match &saved.gate {
            Some(g) => &saved.heads * g,
            None => saved.heads.clone(),
        };
        let (mut d_heads, output_grads_w) = project_backward(gated.view(), &dy, &wo);
        let mut weights = Vec::with_capacity(10);
        let gate_grads = match (&saved.gate, &wg) {
            (Some(g), Some(wg)) => {
                // heads · σ(G): d heads = dH · σ, dG = dH · heads · σ · (1 − σ).
                let d_pre = &d_heads * &saved.heads * g * &g.mapv(|x| 1.0 - x);
                d_heads *= g;
                Some(project_backward(saved.query.view(), &d_pre, wg))
            }
            _ => None,
        };
        let fill = self.fill();
        let mut dq = Array2::<f32>::zeros(saved.q.raw_dim());
        let mut dk = Array2::<f32>::zeros(saved.k.raw_dim());
        let mut dv = Array2::<f32>::zeros(saved.v.raw_dim());
        let mut dw = Array2::<f32>::zeros((t, s));
        let mut dropped = Array2::<f32>::zeros(if saved.dropout.is_some() {
            (t, s)
        } else {
            (0, 0)
        });
        for b in 0..batch {
            let (rows_q, rows_k) = (b * t..(b + 1) * t, b * s..(b + 1) * s);
            for h in 0..n {
                let (cq, cv) = (h * hk..(h + 1) * hk, h * hv..(h + 1) * hv);
                let w = saved.weights.slice(s![b, h, .., ..]);
                let doh = d_heads.slice(s![rows_q.clone(), cv.clone()]);
                let vh = saved.v.slice(s![rows_k.clone(), cv.clone()]);
                let mut dvh = dv.slice_mut(s![rows_k.clone(), cv]);
                match &saved.dropout {
                    // The heads summed W ⊙ M; the scores returned are W itself.
                    Some(f) => {
                        let f = f.index_axis(Axis(0), b * n + h);
                        general_mat_mul(1.0, &doh, &vh.t(), 0.0, &mut dw);
                        dw *= &f;
                        if let Some(d) = &d_scores {
                            dw += &d.slice(s![b, h, .., ..]);
                        }
                        dropped.assign(&w);
                        dropped *= &f;
                        general_mat_mul(1.0, &dropped.t(), &doh, 1.0, &mut dvh);
                    }
                    None => {
                        match &d_scores {
                            Some(d) => dw.assign(&d.slice(s![b, h, .., ..])),
                            None => dw.fill(0.0),
                        }
                        general_mat_mul(1.0, &doh, &vh.t(), 1.0, &mut dw);
                        general_mat_mul(1.0, &w.t(), &doh, 1.0, &mut dvh);
                    }
                }
                let kept = saved.kept.as_ref().map(|m| m.index_axis(Axis(0), b));
                masked_softmax_backward(&w, &mut dw.view_mut(), kept.is_some(), fill, |i, j| {
                    kept.as_ref().is_none_or(|m| m[[i, j]])
                });
                let kh = saved.k.slice(s![rows_k.clone(), cq.clone()]);
                let qh = saved.q.slice(s![rows_q.clone(), cq.clone()]);
                let mut dqh = dq.slice_mut(s![rows_q.clone(), cq.clone()]);
                general_mat_mul(1.0, &dw, &kh, 1.0, &mut dqh);
                let mut dkh = dk.slice_mut(s![rows_k.clone(), cq]);
                general_mat_mul(1.0, &dw.t(), &qh, 1.0, &mut dkh);
            }
        }
        // The query was scaled by 1 / sqrt(key_dim) after its projection.
        let inv_sqrt = (1.0 / (self.key_dim as f64).sqrt()) as f32;
        dq.mapv_inplace(|x| x * inv_sqrt);
        let key_rows = saved.key.as_ref().unwrap_or(&saved.value);
        let (mut d_query, query_w) = project_backward(saved.query.view(), &dq, &wq);
        let (d_key, key_w) = project_backward(key_rows.view(), &dk, &wk);
        let (mut d_value, value_w) = project_backward(saved.value.view(), &dv, &wv);
        weights.extend(query_w);
        weights.extend(key_w);
        if let Some((d_query_gate, gate_w)) = gate_grads {
            d_query += &d_query_gate;
            weights.extend(gate_w);
        }
        weights.extend(value_w);
        weights.extend(output_grads_w);
        // Back to the weights' Keras shapes.
        let weights = weights
            .into_iter()
            .zip(self.weight_specs())
            .map(|(g, spec)| {
                g.into_shape_with_order(IxDyn(&spec.shape))
                    .expect("a gradient has its weight's values")
            })
            .collect();
        let three = |a: Array2<f32>, steps: usize| {
            let f = a.ncols();
            Some(
                a.into_shape_with_order(IxDyn(&[batch, steps, f]))
                    .expect("the rows split into (batch, steps)"),
            )
        };
        let mut inputs = vec![three(d_query, t)];
        if saved.key.is_some() {
            inputs.extend([three(d_value, s), three(d_key, s)]);
        } else {
            d_value += &d_key;
            inputs.push(three(d_value, s));
        }
        if saved.attention_mask {
            inputs.push(None);
        }
        Ok(Gradients { inputs, weights })
    }

    fn mask_policy(&self) -> MaskPolicy {
        // Keras 3 sets the query's mask on the output; tf_keras's compute_mask passes it on.
        MaskPolicy::Propagate
    }

    fn working_elements(&self, inputs: &[Shape]) -> usize {
        let Ok(([q, v, k], _)) = self.shapes(inputs) else {
            return 0;
        };
        let (n, hk, hv) = (self.num_heads, self.key_dim, self.value_dim());
        let t = q.dim(1).unwrap_or(1);
        let s = v.dim(1).or(k.dim(1)).unwrap_or(1);
        let per_step = |steps: usize, width: usize| steps.saturating_mul(n.saturating_mul(width));
        let scores = if self.return_attention_scores {
            0
        } else {
            t.saturating_mul(s)
        };
        per_step(t, hk)
            .saturating_add(per_step(s, hk))
            .saturating_add(per_step(s, hv))
            .saturating_add(per_step(t, hv).saturating_mul(1 + usize::from(self.use_gate)))
            .saturating_add(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    fn shapes(t: usize, s: usize, dim: usize) -> Vec<Shape> {
        vec![
            Shape::new(vec![None, Some(t), Some(dim)]),
            Shape::new(vec![None, Some(s), Some(dim)]),
        ]
    }

    /// One head of width 1 over features of width 1, every kernel 1 and every bias `bias`.
    fn unit(layer: MultiHeadAttention, bias: f32) -> Result<MultiHeadAttention> {
        let mut layer = layer;
        layer.build(&shapes(1, 2, 1))?;
        let weights: Vec<ArrayD<f32>> = layer
            .weight_specs()
            .iter()
            .map(|s| {
                let v = if s.name.ends_with("kernel") {
                    1.0
                } else {
                    bias
                };
                ArrayD::from_elem(IxDyn(&s.shape), v)
            })
            .collect();
        layer.set_weights(&weights)?;
        Ok(layer)
    }

    #[test]
    fn one_head_by_hand() -> Result<()> {
        let layer = unit(MultiHeadAttention::new(1, 1), 0.0)?;
        let q = array![[[1.0_f32]]].into_dyn();
        let v = array![[[0.0_f32], [2.0]]].into_dyn();
        let y = layer.call(&[q.view(), v.view()], &mut CallContext::inference())?;
        // Q = 1 (scaled by 1/sqrt(1)), K = V = [0, 2]: scores [0, 2], softmax
        // [1, e^2] / (1 + e^2) = [0.1192029, 0.8807971], O = 0.8807971·2 = 1.7615942, and the
        // output projection (kernel 1, bias 0) keeps it.
        assert_eq!(y[0].shape(), &[1, 1, 1]);
        assert_abs_diff_eq!(y[0][[0, 0, 0]], 1.761_594_2, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn one_head_backward_by_hand() -> Result<()> {
        let layer = unit(MultiHeadAttention::new(1, 1), 0.0)?;
        let q = array![[[1.0_f32]]].into_dyn();
        let v = array![[[0.0_f32], [2.0]]].into_dyn();
        let d = array![[[1.0_f32]]].into_dyn();
        let g = crate::layer::backward_of(&layer, &[q.view(), v.view()], &[d.view()])?;
        // As above, w = [0.1192029, 0.8807971], O = 1.7615942. dW = dO·Vᵀ = [0, 2],
        // dS = w·(dW − Σ dW·w) = [−0.2099872, 0.2099872]; dQ = dS·K = 0.4199743 (every kernel
        // 1, so the query's gradient too); dK = dS·Q = dS, dV = w: the value's gradient is
        // dK + dV = [−0.0907843, 1.0907843].
        let dq = g.inputs[0].as_ref().expect("the query's gradient");
        let dv = g.inputs[1].as_ref().expect("the value's gradient");
        assert_abs_diff_eq!(dq[[0, 0, 0]], 0.419_974_3, epsilon = 1e-6);
        assert_abs_diff_eq!(dv[[0, 0, 0]], -0.090_784_3, epsilon = 1e-6);
        assert_abs_diff_eq!(dv[[0, 1, 0]], 1.090_784_3, epsilon = 1e-6);
        // Weights: query kernel and bias 0.4199743; key kernel Σ key·dK = 2·0.2099872, bias
        // Σ dK = 0; value kernel Σ value·dV = 2·0.8807971, bias 1; output kernel O, bias 1.
        let want = [0.419_974_3, 0.419_974_3, 0.419_974_3, 0.0, 1.761_594_2, 1.0];
        for (i, w) in want.into_iter().enumerate() {
            assert_abs_diff_eq!(g.weights[i].iter().sum::<f32>(), w, epsilon = 1e-6);
        }
        assert_abs_diff_eq!(
            g.weights[6].iter().sum::<f32>(),
            1.761_594_2,
            epsilon = 1e-6
        );
        assert_abs_diff_eq!(g.weights[7].iter().sum::<f32>(), 1.0, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn a_masked_query_row_as_each_keras_computes_it() -> Result<()> {
        let q = array![[[1.0_f32]]].into_dyn();
        let v = array![[[0.0_f32], [2.0]]].into_dyn();
        let masked = || CallContext::inference().with_masks(vec![Some(array![[false]]), None]);
        let run = |layer: &MultiHeadAttention| -> Result<f32> {
            Ok(layer.call(&[q.view(), v.view()], &mut masked())?[0][[0, 0, 0]])
        };
        // Every score of the row is masked. V = value + 0.5 = [0.5, 2.5]; uniform weights give
        // its mean, 1.5, plus the output bias 0.5: 2 (Keras 3's dot_product_attention, and
        // tf_keras's -1e9 in both forms).
        let keras3 = unit(MultiHeadAttention::new(1, 1), 0.5)?;
        assert_abs_diff_eq!(run(&keras3)?, 2.0, epsilon = 1e-6);
        for m in [SoftmaxMasking::TfKeras, SoftmaxMasking::TfKerasRobust] {
            let tf = unit(MultiHeadAttention::new(1, 1).with_softmax_masking(m), 0.5)?;
            assert_abs_diff_eq!(run(&tf)?, 2.0, epsilon = 1e-6);
        }
        // Keras 3's Softmax layer, used with return_attention_scores or dropout, zeroes the
        // masked weights: the output is the bias alone, 0.5, and the scores are 0.
        let scores = unit(
            MultiHeadAttention::new(1, 1).with_return_attention_scores(true),
            0.5,
        )?;
        let y = scores.call(&[q.view(), v.view()], &mut masked())?;
        assert_abs_diff_eq!(y[0][[0, 0, 0]], 0.5, epsilon = 1e-6);
        assert_eq!(y[1].shape(), &[1, 1, 1, 2]);
        assert!(y[1].iter().all(|&w| w == 0.0));
        let dropout = unit(MultiHeadAttention::new(1, 1).with_dropout(0.1), 0.5)?;
        assert_abs_diff_eq!(run(&dropout)?, 0.5, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn causal_window_and_attention_mask_by_hand() -> Result<()> {
        let mut layer = MultiHeadAttention::new(1, 1)
            .with_use_causal_mask(true)
            .with_attention_mask_input(true)
            .with_return_attention_scores(true);
        let mut inputs = shapes(2, 2, 1);
        inputs.push(Shape::new(vec![None, Some(2), Some(2)]));
        layer.build(&inputs)?;
        let ones: Vec<ArrayD<f32>> = layer
            .weight_specs()
            .iter()
            .map(|s| ArrayD::from_elem(IxDyn(&s.shape), f32::from(s.name.ends_with("kernel"))))
            .collect();
        layer.set_weights(&ones)?;
        let x = array![[[1.0_f32], [3.0]]].into_dyn();
        let mask = array![[[1.0_f32, 1.0], [0.0, 1.0]]].into_dyn();
        let y = layer.call(
            &[x.view(), x.view(), mask.view()],
            &mut CallContext::inference(),
        )?;
        // Query 0 sees only key 0 (causal); query 1 only key 1 (the attention mask hides key 0).
        assert_eq!(y[1], array![[[[1.0_f32, 0.0], [0.0, 1.0]]]].into_dyn());
        assert_abs_diff_eq!(y[0][[0, 0, 0]], 1.0, epsilon = 1e-6);
        assert_abs_diff_eq!(y[0][[0, 1, 0]], 3.0, epsilon = 1e-6);
        let window = unit(
            MultiHeadAttention::new(1, 1).with_sliding_window(Some(1)),
            0.0,
        )?;
        // A window of 1 keeps only s = t; with one query and two keys, query 0 sees key 0.
        let q = array![[[1.0_f32]]].into_dyn();
        let v = array![[[4.0_f32], [2.0]]].into_dyn();
        let y = window.call(&[q.view(), v.view()], &mut CallContext::inference())?;
        assert_abs_diff_eq!(y[0][[0, 0, 0]], 4.0, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn weights_in_keras_order_with_gate_and_output_shape() -> Result<()> {
        let mut layer = MultiHeadAttention::new(2, 3)
            .with_value_dim(4)
            .with_use_gate(true)
            .with_output_shape(vec![2, 5]);
        let out = layer.build(&[
            Shape::new(vec![None, Some(3), Some(4)]),
            Shape::new(vec![None, Some(5), Some(6)]),
            Shape::new(vec![None, Some(5), Some(7)]),
        ])?;
        assert_eq!(out[0].to_string(), "(None, 3, 2, 5)");
        let specs: Vec<(String, Vec<usize>)> = layer
            .weight_specs()
            .into_iter()
            .map(|w| (w.name, w.shape))
            .collect();
        let expected: Vec<(&str, Vec<usize>)> = vec![
            ("query/kernel", vec![4, 2, 3]),
            ("query/bias", vec![2, 3]),
            ("key/kernel", vec![7, 2, 3]),
            ("key/bias", vec![2, 3]),
            ("gate/kernel", vec![4, 2, 4]),
            ("gate/bias", vec![2, 4]),
            ("value/kernel", vec![6, 2, 4]),
            ("value/bias", vec![2, 4]),
            ("attention_output/kernel", vec![2, 4, 2, 5]),
            ("attention_output/bias", vec![2, 5]),
        ];
        let expected: Vec<(String, Vec<usize>)> = expected
            .into_iter()
            .map(|(n, s)| (n.to_string(), s))
            .collect();
        assert_eq!(specs, expected);
        let mut plain = MultiHeadAttention::new(2, 3).with_use_bias(false);
        plain.build(&shapes(3, 5, 4))?;
        // query, key, value 4·2·3 each, output 2·3·4, no bias
        assert_eq!(plain.count_params(), 3 * 24 + 24);
        plain.initialize();
        let x = ArrayD::<f32>::ones(IxDyn(&[2, 3, 4]));
        let z = ArrayD::<f32>::ones(IxDyn(&[2, 5, 4]));
        let y = plain.call(&[x.view(), z.view()], &mut CallContext::inference())?;
        assert_eq!(y[0].shape(), &[2, 3, 4]);
        Ok(())
    }

    #[test]
    fn refuses_what_keras_refuses_and_what_seqnn_lacks() {
        let err = MultiHeadAttention::new(0, 3)
            .compute_output_shape(&shapes(3, 5, 4))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"multi_head_attention\": Received an invalid value for argument \
             `num_heads`, expected a positive integer. Received: num_heads=0"
        );
        let err = MultiHeadAttention::new(2, 3)
            .with_dropout(1.5)
            .compute_output_shape(&shapes(3, 5, 4))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"multi_head_attention\": Invalid value received for argument `rate`. \
             Expected a float value between 0 and 1. Received: rate=1.5"
        );
        let err = MultiHeadAttention::new(2, 3)
            .compute_output_shape(&[
                Shape::new(vec![None, Some(3), Some(4)]),
                Shape::new(vec![None, Some(5), Some(4)]),
                Shape::new(vec![None, Some(6), Some(4)]),
            ])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"multi_head_attention\": All dimensions of `value` and `key`, except the \
             last one, must be equal. Received: value_shape=(None, 5, 4) and \
             key_shape=(None, 6, 4)"
        );
        let err = MultiHeadAttention::new(2, 3)
            .compute_output_shape(&[
                Shape::new(vec![None, Some(2), Some(3), Some(4)]),
                Shape::new(vec![None, Some(2), Some(3), Some(4)]),
            ])
            .unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        let err = MultiHeadAttention::new(2, 3)
            .compute_output_shape(&shapes(3, 5, 4)[..1])
            .unwrap_err();
        assert!(err.to_string().contains("received 1 input(s)"), "{err}");
        let unbuilt = MultiHeadAttention::new(1, 1);
        let x = ArrayD::<f32>::ones(IxDyn(&[1, 2, 1]));
        assert!(matches!(
            unbuilt.call(&[x.view(), x.view()], &mut CallContext::inference()),
            Err(Error::NotBuilt { .. })
        ));
    }
}
