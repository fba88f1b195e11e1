//! Keras's `AdditiveAttention`: Bahdanau-style attention of a query sequence over a value
//! sequence.

use ndarray::{ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2};

use crate::error::{Error, Result};
use crate::init::Initializer;
use crate::layer::{
    check_specs, layer_plumbing, no_weights, CallContext, Gradients, Layer, LayerName, MaskPolicy,
    Outputs, SavedForBackward, WeightSpec,
};
use crate::layers::attention::{
    call_dims, check_broadcast, contiguous, dense_attention_builders, dense_backward, dense_call,
    dense_output_shapes, dense_shapes, dense_working_elements, held_weights, DenseOptions,
    ScoreGrads,
};
use crate::linalg::attention::{tanh_scores, tanh_scores_backward, TanhGrads, TanhScores};
use crate::shape::Shape;

/// Keras's `AdditiveAttention`: Bahdanau-style attention, scores from a sum of `tanh`s.
///
/// ```text
/// scores[b, i, j] = Σ_f scale[f] · tanh(query[b, i, f] + key[b, j, f])     (scale = 1 without use_scale)
/// scores[b, i, j] -= 1e9  where value_mask[b, j] is false, or j > i when causal
/// weights = softmax(scores) over j
/// output[b, i] = Σ_j weights[b, i, j] · value[b, j],   0 where query_mask[b, i] is false
/// ```
///
/// - Inputs, through [`call`](Layer::call): `[query, value]` or `[query, value, key]`,
///   `query (batch, Tq, dim)`, `value (batch, Tv, value_dim)`, `key (batch, Tv, dim)`; without
///   a key, the value is the key. The query, the key and `scale` broadcast (equal widths, or 1).
/// - Masks, outputs, causal masking and `return_attention_scores`: as [`Attention`]'s; so is
///   training, whose backward pass gives the gradients of the query, the value, the key and
///   `scale`.
/// - Weights: `scale (dim,)` with `use_scale` (the default; initialized glorot_uniform), where
///   `dim` is the query's last dimension as in Keras 3.15. tf_keras 2.21 sizes it by the value's
///   last dimension (`AdditiveAttention.build` reads `input_shape[1]`), which is the same unless
///   the value's features differ from the query's, where tf_keras's call fails; a layer read
///   from a tf_keras config sizes it as tf_keras does.
///
/// [`Attention`]: crate::Attention
///
/// ```
/// use ndarray::Array3;
/// use seqnn::{AdditiveAttention, CallContext, Layer, Shape};
/// // keras.layers.AdditiveAttention()([query, value])
/// let mut attention = AdditiveAttention::new();
/// let out = attention.build(&[
///     Shape::new(vec![None, Some(3), Some(4)]),
///     Shape::new(vec![None, Some(5), Some(4)]),
/// ])?;
/// assert_eq!(out[0].to_string(), "(None, 3, 4)");
/// assert_eq!(attention.count_params(), 4); // scale (4,)
/// attention.initialize();
/// let query = Array3::<f32>::ones((2, 3, 4)).into_dyn();
/// let value = Array3::<f32>::ones((2, 5, 4)).into_dyn();
/// let y = attention.call(&[query.view(), value.view()], &mut CallContext::inference())?;
/// assert_eq!(y[0].shape(), &[2, 3, 4]);
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// As [`Attention`]'s, and building fails with [`Error::InvalidArgument`] when the dimension
/// that sizes `scale` is unknown, with [`Error::IncompatibleShape`] when a built layer is given
/// another one, and with [`Error::TooLarge`] when `scale` would exceed the weight limit.
#[derive(Debug, Clone)]
pub struct AdditiveAttention {
    name: LayerName,
    trainable: bool,
    use_scale: bool,
    options: DenseOptions,
    /// tf_keras sizes `scale` by the value's features, Keras 3 by the query's.
    scale_from_value: bool,
    /// The features `scale` was built for; `None` before the layer is built.
    scale_dim: Option<usize>,
    /// `scale`, when `use_scale`, once the layer has weights.
    values: Option<Vec<ArrayD<f32>>>,
}

impl Default for AdditiveAttention {
    /// Keras's `AdditiveAttention()`.
    fn default() -> Self {
        Self::new()
    }
}

impl AdditiveAttention {
    /// An AdditiveAttention layer with Keras's defaults, as
    /// `keras.layers.AdditiveAttention()`: `use_scale` true, `dropout` 0.
    pub fn new() -> Self {
        AdditiveAttention {
            name: LayerName::new("additive_attention"),
            trainable: true,
            use_scale: true,
            options: DenseOptions::default(),
            scale_from_value: false,
            scale_dim: None,
            values: None,
        }
    }

    /// Keras's `use_scale`: a learned vector `scale` weighs each feature's `tanh`. Default true.
    #[must_use]
    pub fn with_use_scale(mut self, yes: bool) -> Self {
        self.use_scale = yes;
        self
    }

    /// Sizes `scale` by the value's features, as tf_keras 2.21 does (for tf_keras configs).
    #[must_use]
    pub(crate) fn with_scale_from_value(mut self, yes: bool) -> Self {
        self.scale_from_value = yes;
        self
    }

    dense_attention_builders!("additive_attention");

    /// Whether each feature's `tanh` is weighed by a learned `scale`.
    pub fn use_scale(&self) -> bool {
        self.use_scale
    }

    /// The values of `scale`, with `use_scale` (`None` without).
    fn scale_values(&self) -> Result<Option<&[f32]>> {
        if !self.use_scale {
            return Ok(None);
        }
        let w = self
            .values
            .as_ref()
            .and_then(|v| v.first())
            .ok_or_else(|| no_weights(self.name.get()))?;
        Ok(Some(
            w.as_slice().expect("weights are kept in standard layout"),
        ))
    }

    /// Keras's initializer of `scale`: glorot_uniform.
    fn initializer_for(&self, _: &WeightSpec) -> Initializer {
        Initializer::GlorotUniform
    }

    /// The checked shapes and the features `scale` would have for them.
    fn check_shapes<'a>(&self, inputs: &'a [Shape]) -> Result<([&'a Shape; 3], Option<usize>)> {
        let name = self.name.get();
        let shapes = dense_shapes(name, "AdditiveAttention", inputs)?;
        let [q, v, k] = shapes;
        let dim = if self.scale_from_value {
            v.last()
        } else {
            q.last()
        };
        let scale = if self.use_scale { dim } else { Some(1) };
        check_broadcast(
            name,
            "the query, the key and the scale",
            &[q.last(), k.last(), scale],
            &shapes,
        )?;
        Ok((shapes, dim))
    }
}

impl Layer for AdditiveAttention {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        "AdditiveAttention"
    }

    held_weights!();

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        let (shapes, dim) = self.check_shapes(inputs)?;
        if self.use_scale {
            let Some(dim) = dim else {
                let which = if self.scale_from_value { 1 } else { 0 };
                return Err(Error::InvalidArgument {
                    layer: name.to_string(),
                    message: format!(
                        "the last dimension of input {which} sizes the weight scale, so it \
                         must be defined; inputs {}",
                        crate::layers::attention::list(&shapes)
                    ),
                });
            };
            if let Some(built) = self.scale_dim.filter(|&b| b != dim) {
                let which = shapes[usize::from(self.scale_from_value)];
                return Err(Error::IncompatibleShape {
                    layer: name.to_string(),
                    expected: which.with_batch(None).with_last(Some(built)),
                    found: which.clone(),
                });
            }
            check_specs(name, &[("scale", &[dim])])?;
        }
        dense_output_shapes(name, shapes, &self.options)
    }

    fn build(&mut self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let out = self.compute_output_shape(inputs)?;
        if self.scale_dim.is_none() {
            let (_, dim) = self.check_shapes(inputs)?;
            // Without use_scale nothing depends on the features: any will do.
            self.scale_dim = Some(if self.use_scale { dim.unwrap_or(0) } else { 0 });
        }
        Ok(out)
    }

    fn is_built(&self) -> bool {
        self.scale_dim.is_some()
    }

    fn weight_specs(&self) -> Vec<WeightSpec> {
        match self.scale_dim {
            Some(d) if self.use_scale => vec![WeightSpec::new("scale", vec![d])],
            _ => Vec::new(),
        }
    }

    fn output_count(&self) -> usize {
        1 + usize::from(self.options.return_attention_scores)
    }

    fn call(&self, inputs: &[ArrayViewD<'_, f32>], ctx: &mut CallContext) -> Result<Outputs> {
        let name = self.name.get();
        let dims = call_dims(name, "AdditiveAttention", inputs)?;
        let Some(built) = self.scale_dim else {
            return Err(no_weights(name));
        };
        let shapes = dims.map(|d| Shape::known(&d));
        let (_, dim) = self.check_shapes(&shapes[..inputs.len()])?;
        let scale = if self.use_scale {
            if dim != Some(built) {
                let which = &shapes[usize::from(self.scale_from_value)];
                return Err(Error::IncompatibleShape {
                    layer: name.to_string(),
                    expected: Shape::new(vec![None, None, Some(built)]),
                    found: which.clone(),
                });
            }
            self.scale_values()?
        } else {
            None
        };
        let [[_, _, fq], _, [_, _, fk]] = dims;
        // Keras: sum(scale · tanh(expand_dims(q, -2) + expand_dims(k, -3)), axis=-1).
        let score =
            |q: ArrayView2<'_, f32>, k: ArrayView2<'_, f32>, s: &mut ArrayViewMut2<'_, f32>| {
                let p = TanhScores {
                    q: contiguous(&q),
                    fq,
                    k: contiguous(&k),
                    fk,
                    inner: None,
                    outer: scale,
                };
                tanh_scores(p, s);
            };
        dense_call(name, &self.options, inputs, dims, ctx, &score)
    }

    /// The shared dense-attention backward, with the sum of `tanh`s' own: `scale` is its outer
    /// weights.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let scale = self.scale_values()?;
        let back = |g: ScoreGrads<'_>| {
            let p = TanhScores {
                q: contiguous(&g.q),
                fq: g.q.ncols(),
                k: contiguous(&g.k),
                fk: g.k.ncols(),
                inner: None,
                outer: scale,
            };
            let mut d_inner = 0.0;
            let grads = TanhGrads {
                dq: g.dq,
                dk: g.dk,
                d_inner: &mut d_inner,
                d_outer: g.dw,
            };
            tanh_scores_backward(p, &g.ds, grads);
        };
        let specs = self.weight_specs();
        dense_backward(name, &self.options, saved, output_grads, &specs, &back)
    }

    fn mask_policy(&self) -> MaskPolicy {
        MaskPolicy::Propagate
    }

    fn working_elements(&self, inputs: &[Shape]) -> usize {
        dense_working_elements(inputs, &self.options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::backward_of;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    fn shapes(q: usize, v: usize) -> Vec<Shape> {
        vec![
            Shape::new(vec![None, Some(1), Some(q)]),
            Shape::new(vec![None, Some(2), Some(v)]),
        ]
    }

    #[test]
    fn scores_are_a_weighted_sum_of_tanh_by_hand() -> Result<()> {
        let mut attention = AdditiveAttention::new().with_return_attention_scores(true);
        attention.build(&shapes(2, 2))?;
        assert_eq!(attention.count_params(), 2);
        attention.set_weights(&[array![1.0_f32, 2.0].into_dyn()])?;
        let q = array![[[0.5_f32, 0.0]]].into_dyn();
        let v = array![[[0.5_f32, 0.0], [-0.5, 0.0]]].into_dyn();
        let y = attention.call(&[q.view(), v.view()], &mut CallContext::inference())?;
        // scores = [1·tanh(1) + 2·tanh(0), 1·tanh(0) + 2·tanh(0)] = [0.7615942, 0];
        // softmax: e^0.7615942 = 2.1417 → [2.1417, 1] / 3.1417 = [0.6817, 0.3183];
        // output feature 0 = 0.6817·0.5 - 0.3183·0.5 = 0.1817, feature 1 = 0.
        let w0 = 0.761_594_2_f32.exp() / (0.761_594_2_f32.exp() + 1.0);
        assert_abs_diff_eq!(y[1][[0, 0, 0]], w0, epsilon = 1e-6);
        assert_abs_diff_eq!(y[0][[0, 0, 0]], 0.5 * (2.0 * w0 - 1.0), epsilon = 1e-6);
        assert_abs_diff_eq!(y[0][[0, 0, 1]], 0.0, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn backward_by_hand() -> Result<()> {
        let mut attention = AdditiveAttention::new();
        attention.build(&shapes(1, 1))?;
        attention.set_weights(&[array![1.0_f32].into_dyn()])?;
        let q = array![[[0.5_f32]]].into_dyn();
        let v = array![[[0.5_f32], [-0.5]]].into_dyn();
        let d = array![[[1.0_f32]]].into_dyn();
        let g = backward_of(&attention, &[q.view(), v.view()], &[d.view()])?;
        // t = tanh(q + k) = [tanh 1, tanh 0] = [0.7615942, 0] are the scores; w = softmax =
        // [0.6816997, 0.3183003]; dW = v, dS = w·(dW − Σ dW·w) = [0.2169852, −0.2169852];
        // d scale = Σ dS·t = 0.1652547; p = dS·(1 − t²) = [0.0911282, −0.2169852]:
        // dq = Σ p = −0.1258570, d value = w + p = [0.7728280, 0.1013151].
        let dq = g.inputs[0].as_ref().expect("the query's gradient");
        let dv = g.inputs[1].as_ref().expect("the value's gradient");
        assert_abs_diff_eq!(dq[[0, 0, 0]], -0.125_857, epsilon = 1e-6);
        assert_abs_diff_eq!(dv[[0, 0, 0]], 0.772_828, epsilon = 1e-6);
        assert_abs_diff_eq!(dv[[0, 1, 0]], 0.101_315_1, epsilon = 1e-6);
        assert_abs_diff_eq!(g.weights[0][[0]], 0.165_254_7, epsilon = 1e-6);
        Ok(())
    }

    #[test]
    fn scale_is_sized_by_the_query_or_as_tf_keras_by_the_value() -> Result<()> {
        let three = vec![
            Shape::new(vec![None, Some(1), Some(4)]),
            Shape::new(vec![None, Some(2), Some(6)]),
            Shape::new(vec![None, Some(2), Some(4)]),
        ];
        let mut keras3 = AdditiveAttention::new();
        assert_eq!(keras3.build(&three)?[0].to_string(), "(None, 1, 6)");
        assert_eq!(keras3.weight_specs()[0].shape, vec![4]);
        // tf_keras: scale (6,) against tanh(q + k) of width 4 does not broadcast.
        let err = AdditiveAttention::new()
            .with_scale_from_value(true)
            .build(&three)
            .unwrap_err();
        assert!(err.to_string().contains("do not broadcast"), "{err}");
        // Without use_scale there is no weight, and the call needs none.
        let mut plain = AdditiveAttention::new().with_use_scale(false);
        plain.build(&shapes(2, 2))?;
        assert!(plain.weight_specs().is_empty());
        let x = ArrayD::<f32>::zeros(ndarray::IxDyn(&[1, 2, 2]));
        let y = plain.call(&[x.view(), x.view()], &mut CallContext::inference())?;
        assert_eq!(y[0].shape(), &[1, 2, 2]);
        Ok(())
    }

    #[test]
    fn a_built_layer_keeps_its_scale_features() -> Result<()> {
        let mut attention = AdditiveAttention::new();
        attention.build(&shapes(2, 2))?;
        let err = attention.build(&shapes(3, 3)).unwrap_err();
        assert!(matches!(err, Error::IncompatibleShape { .. }), "{err}");
        attention.initialize();
        let x = ArrayD::<f32>::zeros(ndarray::IxDyn(&[1, 2, 3]));
        let err = attention
            .call(&[x.view(), x.view()], &mut CallContext::inference())
            .unwrap_err();
        assert!(matches!(err, Error::IncompatibleShape { .. }), "{err}");
        let err = AdditiveAttention::new()
            .compute_output_shape(&[
                Shape::new(vec![None, Some(1), None]),
                Shape::new(vec![None, Some(2), Some(2)]),
            ])
            .unwrap_err();
        assert!(err.to_string().contains("must be defined"), "{err}");
        Ok(())
    }
}
