//! The normalization kernels: a per-channel scale and shift (BatchNormalization at inference),
//! and the per-row mean and variance normalization of LayerNormalization.
//!
//! Both follow the order of operations of TensorFlow's `tf.nn.batch_normalization`, which
//! tf_keras 2.21 and Keras 3.15 (its TensorFlow backend) call:
//!
//! ```text
//! inv = rsqrt(variance + epsilon) · gamma
//! y   = x · inv + (beta − mean · inv)
//! ```
//!
//! Every loop runs over a contiguous slice with independent lanes, so that it vectorizes; no
//! fused multiply-add is used, since TensorFlow's CPU kernels do not fuse these two operations.

/// The lanes a sum keeps apart, so that it vectorizes and its rounding stays close to a tree's.
const LANES: usize = 8;

/// The sum of `v`, over [`LANES`] partial sums.
fn sum(v: &[f32]) -> f32 {
    let mut acc = [0.0_f32; LANES];
    let mut chunks = v.chunks_exact(LANES);
    for c in chunks.by_ref() {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    acc.iter().sum::<f32>() + tail
}

/// The sum of `(v − mean)²`, over [`LANES`] partial sums.
fn sum_squared_deviations(v: &[f32], mean: f32) -> f32 {
    let mut acc = [0.0_f32; LANES];
    let mut chunks = v.chunks_exact(LANES);
    for c in chunks.by_ref() {
        for (a, x) in acc.iter_mut().zip(c) {
            let d = x - mean;
            *a += d * d;
        }
    }
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|x| (x - mean) * (x - mean))
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// `x ← x · scale[c] + shift[c]` in place, for `x` laid out row-major as
/// `(outer, channels, inner)`: the channel of a value is its index along the normalized axis.
/// `scale` and `shift` have `channels` values; `x.len()` is a multiple of `channels · inner`.
pub(crate) fn scale_shift_channels(
    x: &mut [f32],
    channels: usize,
    inner: usize,
    scale: &[f32],
    shift: &[f32],
) {
    debug_assert_eq!(scale.len(), channels);
    debug_assert_eq!(shift.len(), channels);
    if channels == 0 || inner == 0 {
        return;
    }
    if inner == 1 {
        // The channels are the last axis: one row of `channels` at a time.
        for row in x.chunks_exact_mut(channels) {
            for ((v, s), b) in row.iter_mut().zip(scale).zip(shift) {
                *v = *v * s + b;
            }
        }
        return;
    }
    for block in x.chunks_exact_mut(channels * inner) {
        for ((run, &s), &b) in block.chunks_exact_mut(inner).zip(scale).zip(shift) {
            for v in run {
                *v = *v * s + b;
            }
        }
    }
}

/// The runs of `x.len()` values laid out row-major as `(outer, channels, inner)`: each run's
/// channel and its index range (`inner` values of one channel).
fn channel_runs(
    len: usize,
    channels: usize,
    inner: usize,
) -> impl Iterator<Item = (usize, std::ops::Range<usize>)> {
    let runs = if channels == 0 || inner == 0 {
        0
    } else {
        len / inner
    };
    (0..runs).map(move |r| (r % channels, r * inner..(r + 1) * inner))
}

/// The batch statistics of each channel of `x` (laid out as in [`scale_shift_channels`]): the
/// mean and the biased variance over the values whose `keep` is true (every value without
/// `keep`), and how many values that is. Two passes, as `tf.nn.moments` and
/// `tf.nn.weighted_moments` take them, accumulated in f64; a channel without values has mean
/// and variance 0 (`weighted_moments`'s `div_no_nan`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChannelMoments {
    /// The mean of each channel.
    pub(crate) mean: Vec<f32>,
    /// The biased variance of each channel, `Σ (x − mean)² / count`.
    pub(crate) variance: Vec<f32>,
    /// The values each channel counted.
    pub(crate) count: Vec<usize>,
}

/// See [`ChannelMoments`].
pub(crate) fn channel_moments(
    x: &[f32],
    channels: usize,
    inner: usize,
    keep: Option<&[bool]>,
) -> ChannelMoments {
    let mut total = vec![0.0_f64; channels];
    let mut count = vec![0_usize; channels];
    for (c, run) in channel_runs(x.len(), channels, inner) {
        for i in run {
            if keep.is_none_or(|k| k[i]) {
                total[c] += f64::from(x[i]);
                count[c] += 1;
            }
        }
    }
    let per = |v: f64, n: usize| if n == 0 { 0.0 } else { (v / n as f64) as f32 };
    let mean: Vec<f32> = total.iter().zip(&count).map(|(&t, &n)| per(t, n)).collect();
    let mut squares = vec![0.0_f64; channels];
    for (c, run) in channel_runs(x.len(), channels, inner) {
        for i in run {
            if keep.is_none_or(|k| k[i]) {
                let d = f64::from(x[i] - mean[c]);
                squares[c] += d * d;
            }
        }
    }
    let variance = squares
        .iter()
        .zip(&count)
        .map(|(&s, &n)| per(s, n))
        .collect();
    ChannelMoments {
        mean,
        variance,
        count,
    }
}

/// Per channel, `Σ g` and `Σ g · (x − center[c])` over every value (f64 sums), for `x` and `g`
/// laid out alike: what the gradients of `beta`, `gamma` and the statistics of a per-channel
/// affine map are made of.
pub(crate) fn channel_sums(
    x: &[f32],
    g: &[f32],
    channels: usize,
    inner: usize,
    center: &[f32],
) -> (Vec<f64>, Vec<f64>) {
    let mut sum_g = vec![0.0_f64; channels];
    let mut sum_gx = vec![0.0_f64; channels];
    for (c, run) in channel_runs(x.len(), channels, inner) {
        for (&xi, &gi) in x[run.clone()].iter().zip(&g[run]) {
            sum_g[c] += f64::from(gi);
            sum_gx[c] += f64::from(gi) * f64::from(xi - center[c]);
        }
    }
    (sum_g, sum_gx)
}

/// The input's gradient of a normalization by batch statistics, in place of `g` (the output's):
///
/// ```text
/// x̂ = (x − mean[c]) · r[c],   w = keep (1 without it),   n = count[c]
/// dx = gamma[c] · r[c] · (g − w / n · (Σ g + x̂ · Σ g·x̂))       sums over every value of c
/// ```
///
/// `sum_g` and `sum_gx` are [`channel_sums`] with `center = mean` (so `Σ g·x̂ = r · sum_gx`).
/// The variance's own dependence on the mean drops out, as in `tf.nn.moments`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn batch_norm_input_grad(
    x: &[f32],
    g: &mut [f32],
    channels: usize,
    inner: usize,
    keep: Option<&[bool]>,
    moments: &ChannelMoments,
    r: &[f32],
    gamma: Option<&[f32]>,
    (sum_g, sum_gx): (&[f64], &[f64]),
) {
    let per: Vec<(f32, f32, f32, f32)> = (0..channels)
        .map(|c| {
            let n = moments.count[c].max(1) as f64;
            (
                gamma.map_or(1.0, |gm| gm[c]) * r[c],
                (sum_g[c] / n) as f32,
                (f64::from(r[c]) * sum_gx[c] / n) as f32,
                moments.mean[c],
            )
        })
        .collect();
    for (c, run) in channel_runs(x.len(), channels, inner) {
        let (scale, mean_g, mean_gx, mean) = per[c];
        for i in run {
            let w = keep.is_none_or(|k| k[i]);
            let centered = if w {
                let xhat = (x[i] - mean) * r[c];
                g[i] - (mean_g + xhat * mean_gx)
            } else {
                g[i]
            };
            g[i] = scale * centered;
        }
    }
}

/// How [`normalize_rows`] scales each normalized row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowNorm<'a> {
    /// Added to the variance under the square root.
    pub(crate) epsilon: f32,
    /// One factor per position of a row, if any.
    pub(crate) gamma: Option<&'a [f32]>,
    /// One offset per position of a row, if any (never with `rms_scaling`).
    pub(crate) beta: Option<&'a [f32]>,
    /// Keras 3's deprecated `rms_scaling`: `x · rsqrt(variance + epsilon) · gamma`, without
    /// subtracting the mean.
    pub(crate) rms_scaling: bool,
}

/// Normalizes every row of `n` values of `x` in place, over its own mean and (biased)
/// variance, as `tf.nn.moments` then `tf.nn.batch_normalization` do:
///
/// ```text
/// mean = Σ x / n,   var = Σ (x − mean)² / n,   inv_j = rsqrt(var + epsilon) · gamma_j
/// y_j  = x_j · inv_j + (beta_j − mean · inv_j)
/// ```
///
/// With `rms_scaling`, `y_j = (x_j · rsqrt(var + epsilon)) · gamma_j` (Keras 3's
/// `ops.layer_normalization`, which uses the variance, not the mean square).
///
/// With `stats`, each row's `(mean, rsqrt(var + epsilon))` is pushed there, for
/// [`normalize_rows_backward`].
pub(crate) fn normalize_rows(
    x: &mut [f32],
    n: usize,
    p: RowNorm<'_>,
    mut stats: Option<&mut Vec<(f32, f32)>>,
) {
    if n == 0 {
        return;
    }
    let count = n as f32;
    for row in x.chunks_exact_mut(n) {
        let mean = sum(row) / count;
        let variance = sum_squared_deviations(row, mean) / count;
        let inv = 1.0 / (variance + p.epsilon).sqrt();
        if let Some(s) = stats.as_deref_mut() {
            s.push((mean, inv));
        }
        if p.rms_scaling {
            match p.gamma {
                Some(g) => row.iter_mut().zip(g).for_each(|(v, g)| *v = (*v * inv) * g),
                None => row.iter_mut().for_each(|v| *v *= inv),
            }
            continue;
        }
        match (p.gamma, p.beta) {
            (Some(g), Some(b)) => {
                for ((v, g), b) in row.iter_mut().zip(g).zip(b) {
                    let inv = inv * g;
                    *v = *v * inv + (b - mean * inv);
                }
            }
            (Some(g), None) => {
                for (v, g) in row.iter_mut().zip(g) {
                    let inv = inv * g;
                    *v = *v * inv - mean * inv;
                }
            }
            (None, Some(b)) => {
                let shift = -mean * inv;
                for (v, b) in row.iter_mut().zip(b) {
                    *v = *v * inv + (shift + b);
                }
            }
            (None, None) => {
                let shift = -mean * inv;
                row.iter_mut().for_each(|v| *v = *v * inv + shift);
            }
        }
    }
}

/// The backward pass of [`normalize_rows`], for the rows `x` it was given (before
/// normalizing) and the `stats` it pushed: `g`, the gradient of the output, becomes the
/// gradient of `x`, and the gradients of `gamma` and `beta` (one per position of a row) are
/// added to `d_gamma` and `d_beta`.
///
/// ```text
/// x̂ = (x − mean) · r,   z = x̂ (z = x · r with rms_scaling),   a = g · gamma
/// d_beta += g,   d_gamma += g · z
/// dx = r · (a − mean(a) − x̂ · mean(a · z))       (no mean(a) term with rms_scaling)
/// ```
///
/// The variance's own dependence on the mean drops out (its derivative is `Σ (x − mean) = 0`),
/// as in `tf.nn.moments`, which stops that gradient.
pub(crate) fn normalize_rows_backward(
    x: &[f32],
    stats: &[(f32, f32)],
    n: usize,
    p: RowNorm<'_>,
    g: &mut [f32],
    mut d_gamma: Option<&mut [f32]>,
    mut d_beta: Option<&mut [f32]>,
) {
    if n == 0 {
        return;
    }
    let count = n as f32;
    let mut a = vec![0.0_f32; n];
    let mut z = vec![0.0_f32; n];
    for ((row, gr), &(mean, r)) in x.chunks_exact(n).zip(g.chunks_exact_mut(n)).zip(stats) {
        for (j, (&xj, &gj)) in row.iter().zip(gr.iter()).enumerate() {
            z[j] = if p.rms_scaling {
                xj * r
            } else {
                (xj - mean) * r
            };
            a[j] = p.gamma.map_or(gj, |gm| gj * gm[j]);
        }
        if let Some(db) = d_beta.as_deref_mut() {
            db.iter_mut().zip(gr.iter()).for_each(|(d, &gj)| *d += gj);
        }
        if let Some(dg) = d_gamma.as_deref_mut() {
            dg.iter_mut()
                .zip(gr.iter().zip(&z))
                .for_each(|(d, (&gj, &zj))| *d += gj * zj);
        }
        let c1 = if p.rms_scaling { 0.0 } else { sum(&a) / count };
        let c2 = a.iter().zip(&z).map(|(a, z)| a * z).sum::<f32>() / count;
        for ((d, &xj), &aj) in gr.iter_mut().zip(row).zip(&a) {
            let xhat = (xj - mean) * r;
            *d = r * (aj - c1 - xhat * c2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    #[test]
    fn sums_keep_every_value() {
        let v: Vec<f32> = (1..=19).map(|i| i as f32).collect();
        assert_eq!(sum(&v), 190.0); // 19·20 / 2
        assert_eq!(sum(&[]), 0.0);
        // mean 10: Σ (i − 10)² for i = 1..19 is 2·(1² + ... + 9²) = 2·285 = 570
        assert_eq!(sum_squared_deviations(&v, 10.0), 570.0);
    }

    #[test]
    fn channels_scale_along_the_middle_axis() {
        // (outer 2, channels 2, inner 2): channel 0 doubles, channel 1 adds 10.
        let mut x = [1.0_f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        scale_shift_channels(&mut x, 2, 2, &[2.0, 1.0], &[0.0, 10.0]);
        assert_eq!(x, [2.0, 4.0, 13.0, 14.0, 10.0, 12.0, 17.0, 18.0]);
        let mut last = [1.0_f32, 2.0, 3.0, 4.0];
        scale_shift_channels(&mut last, 2, 1, &[2.0, 1.0], &[0.0, 10.0]);
        assert_eq!(last, [2.0, 12.0, 6.0, 14.0]);
    }

    #[test]
    fn rows_normalize_by_hand() {
        // [1, 3]: mean 2, var ((−1)² + 1²) / 2 = 1, inv = 1/√(1 + 0) = 1 -> [−1, 1];
        // gamma [2, 1], beta [0, 5] -> [−2, 6].
        let mut x = [1.0_f32, 3.0];
        let p = RowNorm {
            epsilon: 0.0,
            gamma: Some(&[2.0, 1.0]),
            beta: Some(&[0.0, 5.0]),
            rms_scaling: false,
        };
        normalize_rows(&mut x, 2, p, None);
        assert_abs_diff_eq!(x[0], -2.0, epsilon = 1e-6);
        assert_abs_diff_eq!(x[1], 6.0, epsilon = 1e-6);
        // rms_scaling: [1, 3] · 1/√(var 1 + 0) = [1, 3], not centered.
        let mut x = [1.0_f32, 3.0];
        let p = RowNorm {
            beta: None,
            rms_scaling: true,
            gamma: None,
            ..p
        };
        normalize_rows(&mut x, 2, p, None);
        assert_eq!(x, [1.0, 3.0]);
    }
}
