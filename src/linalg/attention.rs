//! The kernels the attention layers share: additive (tanh) scores, masking and the row softmax.
//!
//! The products (query · keyᵀ, weights · value, the projections of `MultiHeadAttention`) are
//! `ndarray::linalg::general_mat_mul` calls in the layers themselves, on strided views, so no
//! head or batch is copied out. What is here is the element-wise rest, one row at a time.

use ndarray::ArrayViewMut2;

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

/// Additive scores, `out[i, j] = Σ_f outer[f] · tanh(inner · (q[i, f] + k[j, f]))`, for
/// queries `q` `(rows, fq)` and keys `k` `(cols, fk)`, both contiguous, as Keras's
/// `sum(tanh(expand_dims(q, -2) + expand_dims(k, -3)), axis=-1)`.
///
/// `fq`, `fk` and the length of `outer` broadcast as NumPy broadcasts them: each is the width
/// `f` or 1 (the caller checked it). `inner` is Attention's `scale` in `score_mode="concat"`,
/// `outer` AdditiveAttention's `scale`; `None` is Keras's plain `tanh(q + k)`.
pub(crate) fn tanh_scores(
    q: &[f32],
    fq: usize,
    k: &[f32],
    fk: usize,
    inner: Option<f32>,
    outer: Option<&[f32]>,
    out: &mut ArrayViewMut2<'_, f32>,
) {
    let width = fq.max(fk).max(outer.map_or(1, <[f32]>::len));
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
    fn tanh_scores_by_hand_and_broadcast() {
        let q = [0.5_f32, -0.5];
        let k = [0.5_f32, 0.5, 0.0, 0.0];
        let mut out = Array2::<f32>::zeros((1, 2));
        tanh_scores(&q, 2, &k, 2, None, None, &mut out.view_mut());
        // tanh(1) + tanh(0) = 0.7615942; tanh(0.5) + tanh(-0.5) = 0.
        assert_abs_diff_eq!(out[[0, 0]], 0.761_594_2, epsilon = 1e-6);
        assert_abs_diff_eq!(out[[0, 1]], 0.0, epsilon = 1e-6);
        // A query of width 1 broadcasts over the key's 2 features, an inner scale of 2 and
        // outer weights [1, -1]: tanh(2·(0.5 + 0.5)) - tanh(2·(0.5 + 0.5)) = 0, and
        // tanh(2·0.5) - tanh(2·0.5) = 0 for the second key too.
        tanh_scores(
            &[0.5],
            1,
            &k,
            2,
            Some(2.0),
            Some(&[1.0, -1.0]),
            &mut out.view_mut(),
        );
        assert_abs_diff_eq!(out[[0, 0]], 0.0, epsilon = 1e-6);
        // Outer weights of width 1 scale every feature: 3·(tanh(1) + tanh(0)).
        tanh_scores(&q, 2, &k, 2, None, Some(&[3.0]), &mut out.view_mut());
        assert_abs_diff_eq!(out[[0, 0]], 3.0 * 0.761_594_2, epsilon = 1e-5);
    }
}
