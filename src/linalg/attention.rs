//! The kernels the attention layers share: additive (tanh) scores, masking and the row softmax.
//!
//! The products (query · keyᵀ, weights · value, the projections of `MultiHeadAttention`) are
//! `ndarray::linalg::general_mat_mul` calls in the layers themselves, on strided views, so no
//! head or batch is copied out. What is here is the element-wise rest, one row at a time.

use ndarray::{ArrayView2, ArrayViewMut2};

/// What Keras adds to, or puts in place of, a masked score: `1e9` below anything a score
/// reaches, so that its softmax weight is 0 (`tf_keras` `base_dense_attention._apply_scores`,
/// Keras 3 `Attention._apply_scores` and `Softmax._large_negative_number`).
pub(crate) const MASKED: f32 = 1.0e9;

/// What a masked score becomes before the softmax, and its weight after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fill {
    /// `score - 1e9` in float32 (tf_keras's dense attention and `Softmax` without robust
    /// masking; Keras 3's dense attention): a row whose every score is masked is a softmax of
    /// `score - 1e9`, rounded to float32's 64-wide steps at that magnitude.
    Subtract,
    /// `-1e9` in place of the score (tf_keras's `Softmax(robust_masking=True)`, Keras 3's
    /// `dot_product_attention`): a row whose every score is masked has uniform weights.
    Replace,
    /// As `Replace`, then the masked weights are set to 0 (Keras 3's `Softmax` layer with a
    /// mask): a row whose every score is masked has zero weights.
    ReplaceThenZero,
}

/// The softmax of each row of `scores`, in place, with the masked entries (where `keep` says
/// false) filled as `fill` says. `keep(i, j)` is asked only when `masked` is true.
///
/// As TensorFlow's `softmax`: `exp(x - max) / sum`, over float32.
pub(crate) fn masked_softmax(
    scores: &mut ArrayViewMut2<'_, f32>,
    masked: bool,
    fill: Fill,
    keep: impl Fn(usize, usize) -> bool,
) {
    for (i, mut row) in scores.rows_mut().into_iter().enumerate() {
        if masked {
            for (j, s) in row.iter_mut().enumerate() {
                if !keep(i, j) {
                    *s = match fill {
                        Fill::Subtract => *s - MASKED,
                        Fill::Replace | Fill::ReplaceThenZero => -MASKED,
                    };
                }
            }
        }
        let max = row.fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let mut sum = 0.0_f32;
        row.mapv_inplace(|x| {
            let e = (x - max).exp();
            sum += e;
            e
        });
        row.mapv_inplace(|e| e / sum);
        if masked && fill == Fill::ReplaceThenZero {
            for (j, w) in row.iter_mut().enumerate() {
                if !keep(i, j) {
                    *w = 0.0;
                }
            }
        }
    }
}

/// The operands of additive scores, `Σ_f outer[f] · tanh(inner · (q[i, f] + k[j, f]))`, for
/// queries `q` `(rows, fq)` and keys `k` `(cols, fk)`, both contiguous, as Keras's
/// `sum(tanh(expand_dims(q, -2) + expand_dims(k, -3)), axis=-1)`.
///
/// `fq`, `fk` and the length of `outer` broadcast as NumPy broadcasts them: each is the width
/// `f` or 1 (the caller checked it). `inner` is Attention's `scale` in `score_mode="concat"`,
/// `outer` AdditiveAttention's `scale`; `None` is Keras's plain `tanh(q + k)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TanhScores<'a> {
    pub(crate) q: &'a [f32],
    pub(crate) fq: usize,
    pub(crate) k: &'a [f32],
    pub(crate) fk: usize,
    pub(crate) inner: Option<f32>,
    pub(crate) outer: Option<&'a [f32]>,
}

impl TanhScores<'_> {
    /// The broadcast width of the features.
    fn width(&self) -> usize {
        self.fq.max(self.fk).max(self.outer.map_or(1, <[f32]>::len))
    }
}

/// The additive scores of [`TanhScores`], `out[i, j]`.
pub(crate) fn tanh_scores(p: TanhScores<'_>, out: &mut ArrayViewMut2<'_, f32>) {
    let TanhScores {
        q,
        fq,
        k,
        fk,
        inner,
        outer,
    } = p;
    let width = p.width();
    let pick = |v: &[f32], f: usize| if v.len() == 1 { v[0] } else { v[f] };
    for (i, mut row) in out.rows_mut().into_iter().enumerate() {
        let qi = &q[i * fq..(i + 1) * fq];
        for (j, s) in row.iter_mut().enumerate() {
            let kj = &k[j * fk..(j + 1) * fk];
            *s = if fq == width && fk == width {
                // The usual case: the two rows side by side, no broadcasting.
                let pairs = qi.iter().zip(kj);
                match (inner, outer) {
                    (None, None) => pairs.map(|(a, b)| (a + b).tanh()).sum(),
                    (Some(c), None) => pairs.map(|(a, b)| (c * (a + b)).tanh()).sum(),
                    (c, Some(w)) => pairs
                        .enumerate()
                        .map(|(f, (a, b))| pick(w, f) * (c.unwrap_or(1.0) * (a + b)).tanh())
                        .sum(),
                }
            } else {
                (0..width)
                    .map(|f| {
                        let t = (inner.unwrap_or(1.0) * (pick(qi, f) + pick(kj, f))).tanh();
                        outer.map_or(t, |w| pick(w, f) * t)
                    })
                    .sum()
            };
        }
    }
}

/// The backward pass of [`masked_softmax`] over each row, in place of `d` (the gradient of the
/// weights `w`, which the softmax gave): `ds = w · (d − Σ_j d·w)`. Where `fill` replaced a masked
/// score by a constant (`Replace`, `ReplaceThenZero`), the score gets no gradient; `Subtract`
/// passes it on (`d(s − 1e9)/ds = 1`). For `ReplaceThenZero`, `w` is the weights after the
/// zeroing, which is the softmax's but on fully masked rows, whose gradient is 0 either way.
pub(crate) fn masked_softmax_backward(
    w: &ArrayView2<'_, f32>,
    d: &mut ArrayViewMut2<'_, f32>,
    masked: bool,
    fill: Fill,
    keep: impl Fn(usize, usize) -> bool,
) {
    for (i, (wr, mut dr)) in w.rows().into_iter().zip(d.rows_mut()).enumerate() {
        let dot: f32 = wr.iter().zip(dr.iter()).map(|(w, d)| w * d).sum();
        for (j, (dv, &wv)) in dr.iter_mut().zip(wr.iter()).enumerate() {
            *dv = if masked && fill != Fill::Subtract && !keep(i, j) {
                0.0
            } else {
                wv * (*dv - dot)
            };
        }
    }
}

/// What [`tanh_scores_backward`] adds its gradients to: those of the query and the key rows
/// (as [`tanh_scores`] takes them) and of `inner` and `outer`.
pub(crate) struct TanhGrads<'a> {
    /// `(rows, fq)`, contiguous.
    pub(crate) dq: &'a mut [f32],
    /// `(cols, fk)`, contiguous.
    pub(crate) dk: &'a mut [f32],
    /// The gradient of `inner` (when there is one).
    pub(crate) d_inner: &'a mut f32,
    /// One per value of `outer` (when there is one).
    pub(crate) d_outer: &'a mut [f32],
}

/// The backward pass of [`tanh_scores`] for the gradient `d` of its scores: with
/// `t = tanh(c · (q + k))` (`c` = `inner`, 1 without) and `w` = `outer` (1 without),
///
/// ```text
/// d_outer[f] += Σ d · t,     p = d · w · (1 − t²),     d_inner += Σ p · (q + k)
/// dq[i, f]   += Σ_j p · c,   dk[j, f] += Σ_i p · c       (summed over f where a width is 1)
/// ```
pub(crate) fn tanh_scores_backward(
    p: TanhScores<'_>,
    d: &ArrayView2<'_, f32>,
    grads: TanhGrads<'_>,
) {
    let width = p.width();
    let (q, k, fq, fk, outer) = (p.q, p.k, p.fq, p.fk, p.outer);
    let at = |len: usize, f: usize| if len == 1 { 0 } else { f };
    let c = p.inner.unwrap_or(1.0);
    for ((i, j), &ds) in d.indexed_iter() {
        if ds == 0.0 {
            continue;
        }
        for f in 0..width {
            let (qi, kj) = (i * fq + at(fq, f), j * fk + at(fk, f));
            let a = q[qi] + k[kj];
            let t = (c * a).tanh();
            let w = match outer {
                Some(o) => {
                    grads.d_outer[at(o.len(), f)] += ds * t;
                    o[at(o.len(), f)]
                }
                None => 1.0,
            };
            let p = ds * w * (1.0 - t * t);
            *grads.d_inner += p * a;
            grads.dq[qi] += p * c;
            grads.dk[kj] += p * c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::{array, Array2};

    #[test]
    fn softmax_of_a_row_by_hand() {
        let mut s = array![[0.0_f32, (2.0_f32).ln()], [1.0, 1.0]];
        masked_softmax(&mut s.view_mut(), false, Fill::Subtract, |_, _| true);
        // exp(0) : exp(ln 2) = 1 : 2, so [1/3, 2/3]; equal scores share evenly.
        assert_abs_diff_eq!(s[[0, 0]], 1.0 / 3.0, epsilon = 1e-6);
        assert_abs_diff_eq!(s[[0, 1]], 2.0 / 3.0, epsilon = 1e-6);
        assert_abs_diff_eq!(s[[1, 0]], 0.5, epsilon = 1e-6);
    }

    #[test]
    fn the_three_fills_differ_only_on_fully_masked_rows() {
        let keep = |i: usize, j: usize| i == 0 && j == 0;
        for fill in [Fill::Subtract, Fill::Replace, Fill::ReplaceThenZero] {
            let mut s = array![[1.0_f32, 2.0], [100.0, 0.0]];
            masked_softmax(&mut s.view_mut(), true, fill, keep);
            // Row 0 keeps only its first score: weights [1, 0] whatever the fill.
            assert_eq!(s.row(0).to_vec(), vec![1.0, 0.0]);
            let row1 = s.row(1).to_vec();
            match fill {
                // 100 - 1e9 rounds to -999999872 (float32 steps of 64 there), 0 - 1e9 stays
                // -1e9: 128 apart, so the first weight is 1 and the second exp(-128) ≈ 0.
                Fill::Subtract => assert_eq!(row1, vec![1.0, 0.0]),
                // Both scores become -1e9: uniform.
                Fill::Replace => assert_eq!(row1, vec![0.5, 0.5]),
                Fill::ReplaceThenZero => assert_eq!(row1, vec![0.0, 0.0]),
            }
        }
    }

    #[test]
    fn softmax_backward_by_hand() {
        // w = [0.5, 0.5], d = [1, 0]: Σ d·w = 0.5, ds = w·(d − 0.5) = [0.25, −0.25]; a score
        // replaced by a constant gets none.
        let w = array![[0.5_f32, 0.5]];
        for (fill, want) in [(Fill::Subtract, -0.25), (Fill::Replace, 0.0)] {
            let mut d = array![[1.0_f32, 0.0]];
            masked_softmax_backward(&w.view(), &mut d.view_mut(), true, fill, |_, j| j == 0);
            assert_eq!(d.row(0).to_vec(), vec![0.25, want]);
        }
    }

    fn scores<'a>(
        q: &'a [f32],
        fq: usize,
        k: &'a [f32],
        fk: usize,
        inner: Option<f32>,
        outer: Option<&'a [f32]>,
    ) -> TanhScores<'a> {
        TanhScores {
            q,
            fq,
            k,
            fk,
            inner,
            outer,
        }
    }

    #[test]
    fn tanh_scores_by_hand_and_broadcast() {
        let q = [0.5_f32, -0.5];
        let k = [0.5_f32, 0.5, 0.0, 0.0];
        let mut out = Array2::<f32>::zeros((1, 2));
        tanh_scores(scores(&q, 2, &k, 2, None, None), &mut out.view_mut());
        // tanh(1) + tanh(0) = 0.7615942; tanh(0.5) + tanh(-0.5) = 0.
        assert_abs_diff_eq!(out[[0, 0]], 0.761_594_2, epsilon = 1e-6);
        assert_abs_diff_eq!(out[[0, 1]], 0.0, epsilon = 1e-6);
        // A query of width 1 broadcasts over the key's 2 features, an inner scale of 2 and
        // outer weights [1, -1]: tanh(2·(0.5 + 0.5)) - tanh(2·(0.5 + 0.5)) = 0, and
        // tanh(2·0.5) - tanh(2·0.5) = 0 for the second key too.
        tanh_scores(
            scores(&[0.5], 1, &k, 2, Some(2.0), Some(&[1.0, -1.0])),
            &mut out.view_mut(),
        );
        assert_abs_diff_eq!(out[[0, 0]], 0.0, epsilon = 1e-6);
        // Outer weights of width 1 scale every feature: 3·(tanh(1) + tanh(0)).
        tanh_scores(
            scores(&q, 2, &k, 2, None, Some(&[3.0])),
            &mut out.view_mut(),
        );
        assert_abs_diff_eq!(out[[0, 0]], 3.0 * 0.761_594_2, epsilon = 1e-5);
    }
}
