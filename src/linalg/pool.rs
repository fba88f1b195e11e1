//! Max and average pooling over channels-last windows, shared by the 1-D and 2-D pooling
//! layers (a 1-D pooling is a 2-D one of height 1).
//!
//! Each output position reduces the input cells of its window, clipped to the input (Keras's
//! "same" padding pads with cells that take no part: `-inf` for max, and an average over the
//! real cells only, as TensorFlow's `avg_pool`). A cell is `channels` contiguous values, so the
//! reduction runs over whole slices, which the compiler vectorizes; nothing is allocated but
//! the windows' column spans. The backward pass ([`pool_backward`]) walks the same windows.

/// The geometry of one pooling over channels-last samples of `(h, w, channels)`, checked by
/// the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolShape {
    /// `(h, w)` of one input sample; `(1, length)` for a 1-D pooling.
    pub(crate) input: [usize; 2],
    /// Channels, pooled each on its own.
    pub(crate) channels: usize,
    /// `(h, w)` of one output sample.
    pub(crate) output: [usize; 2],
    /// The window, per axis.
    pub(crate) pool: [usize; 2],
    /// Steps between windows, per axis.
    pub(crate) strides: [usize; 2],
    /// Padding cells before the first row and column ("same" padding).
    pub(crate) pad: [usize; 2],
}

/// How the cells of a window combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reduce {
    Max,
    Average,
}

impl PoolShape {
    /// The input cells `lo..hi` that window `o` of axis `a` covers.
    fn span(&self, a: usize, o: usize) -> (usize, usize) {
        let start = o.saturating_mul(self.strides[a]);
        let lo = start.saturating_sub(self.pad[a]).min(self.input[a]);
        let hi = start
            .saturating_add(self.pool[a])
            .saturating_sub(self.pad[a])
            .min(self.input[a]);
        (lo, hi.max(lo))
    }
}

impl PoolShape {
    /// Calls `f(out, sample, ys, xs)` for every output cell of `batch` samples, in order:
    /// `out` is the offset of its channels in the output, `sample` that of its sample in the
    /// input, and `ys`, `xs` the input rows and columns its window covers.
    fn windows(
        &self,
        batch: usize,
        mut f: impl FnMut(usize, usize, (usize, usize), (usize, usize)),
    ) {
        let [h, w] = self.input;
        let [oh, ow] = self.output;
        let c = self.channels;
        let cols: Vec<(usize, usize)> = (0..ow).map(|ox| self.span(1, ox)).collect();
        for b in 0..batch {
            for oy in 0..oh {
                let ys = self.span(0, oy);
                for (ox, &xs) in cols.iter().enumerate() {
                    f(((b * oh + oy) * ow + ox) * c, b * h * w * c, ys, xs);
                }
            }
        }
    }

    /// Checks the lengths of an input `x` and an output `out` of `batch` samples.
    fn check(&self, batch: usize, x: usize, out: usize) {
        let c = self.channels;
        assert_eq!(x, batch * self.input[0] * self.input[1] * c);
        assert_eq!(out, batch * self.output[0] * self.output[1] * c);
    }
}

/// Pools `batch` samples `x` (`batch · h · w · channels` values, standard layout) into `out`
/// (`batch · oh · ow · channels` values, overwritten).
///
/// # Panics
/// When the slices do not have the lengths `shape` and `batch` give (a broken invariant).
pub(crate) fn pool(x: &[f32], batch: usize, shape: &PoolShape, reduce: Reduce, out: &mut [f32]) {
    shape.check(batch, x.len(), out.len());
    let (w, c) = (shape.input[1], shape.channels);
    if c == 0 {
        return;
    }
    shape.windows(batch, |o, xb, (y0, y1), (x0, x1)| {
        let acc = &mut out[o..o + c];
        match reduce {
            Reduce::Max => acc.fill(f32::NEG_INFINITY),
            Reduce::Average => acc.fill(0.0),
        }
        for iy in y0..y1 {
            let cells = &x[xb + (iy * w + x0) * c..xb + (iy * w + x1) * c];
            for cell in cells.chunks_exact(c) {
                match reduce {
                    Reduce::Max => acc
                        .iter_mut()
                        .zip(cell)
                        .for_each(|(a, &v)| *a = if v > *a { v } else { *a }),
                    Reduce::Average => acc.iter_mut().zip(cell).for_each(|(a, &v)| *a += v),
                }
            }
        }
        if reduce == Reduce::Average {
            let inv = 1.0 / ((y1 - y0) * (x1 - x0)) as f32;
            acc.iter_mut().for_each(|a| *a *= inv);
        }
    });
}

/// The backward pass of [`pool`] over the same `batch` samples `x`: adds into `dx` (`x`'s
/// length) the gradient of the input for the gradient `dy` of the output. An average gives
/// each real cell of its window an equal share, `dy / count`; a max gives all of `dy` to the
/// first cell of its window, in row-major order, that holds the maximum (TensorFlow's
/// `MaxPoolGrad`, which both Keras versions run). Only a max reads `x`.
///
/// # Panics
/// When the slices do not have the lengths `shape` and `batch` give (a broken invariant).
pub(crate) fn pool_backward(
    x: &[f32],
    batch: usize,
    shape: &PoolShape,
    reduce: Reduce,
    dy: &[f32],
    dx: &mut [f32],
) {
    shape.check(batch, dx.len(), dy.len());
    let (w, c) = (shape.input[1], shape.channels);
    if c == 0 {
        return;
    }
    match reduce {
        Reduce::Average => shape.windows(batch, |o, xb, (y0, y1), (x0, x1)| {
            let count = (y1 - y0) * (x1 - x0);
            if count == 0 {
                return;
            }
            let inv = 1.0 / count as f32;
            let g = &dy[o..o + c];
            for iy in y0..y1 {
                let cells = &mut dx[xb + (iy * w + x0) * c..xb + (iy * w + x1) * c];
                for cell in cells.chunks_exact_mut(c) {
                    cell.iter_mut().zip(g).for_each(|(d, &v)| *d += v * inv);
                }
            }
        }),
        Reduce::Max => {
            assert_eq!(x.len(), dx.len());
            // Per channel: the largest value so far and where it is.
            let mut best = vec![f32::NEG_INFINITY; c];
            let mut at = vec![0_usize; c];
            shape.windows(batch, |o, xb, (y0, y1), (x0, x1)| {
                if y1 == y0 || x1 == x0 {
                    return;
                }
                best.fill(f32::NEG_INFINITY);
                let first = xb + (y0 * w + x0) * c;
                at.iter_mut().enumerate().for_each(|(k, a)| *a = first + k);
                for iy in y0..y1 {
                    for cell in (xb + (iy * w + x0) * c..xb + (iy * w + x1) * c).step_by(c) {
                        for k in 0..c {
                            if x[cell + k] > best[k] {
                                best[k] = x[cell + k];
                                at[k] = cell + k;
                            }
                        }
                    }
                }
                for (&i, &g) in at.iter().zip(&dy[o..o + c]) {
                    dx[i] += g;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_d_max_and_average_by_hand_and_backward() {
        // x = [1, 5, 2, 4, 3], pool 2, stride 2, "same": out 3, pad total (3−1)·2 + 2 − 5 = 1,
        // none before: windows [1, 5], [2, 4], [3] (the padding cell takes no part).
        let s = PoolShape {
            input: [1, 5],
            channels: 1,
            output: [1, 3],
            pool: [1, 2],
            strides: [1, 2],
            pad: [0, 0],
        };
        let x = [1.0, 5.0, 2.0, 4.0, 3.0];
        let mut out = [0.0; 3];
        pool(&x, 1, &s, Reduce::Max, &mut out);
        assert_eq!(out, [5.0, 4.0, 3.0]);
        pool(&x, 1, &s, Reduce::Average, &mut out);
        // (1 + 5) / 2, (2 + 4) / 2, 3 / 1
        assert_eq!(out, [3.0, 3.0, 3.0]);
        // Backward, with d_out [1, 2, 3]: the max sends each to its window's maximum,
        // [0, 1, 0, 2, 3]; the average shares it among the real cells, [1/2, 1/2, 2/2, 2/2, 3/1].
        let dy = [1.0, 2.0, 3.0];
        let mut dx = [0.0; 5];
        pool_backward(&x, 1, &s, Reduce::Max, &dy, &mut dx);
        assert_eq!(dx, [0.0, 1.0, 0.0, 2.0, 3.0]);
        let mut dx = [0.0; 5];
        pool_backward(&x, 1, &s, Reduce::Average, &dy, &mut dx);
        assert_eq!(dx, [0.5, 0.5, 1.0, 1.0, 3.0]);
        // A tie goes to the first maximal cell, as TensorFlow's MaxPoolGrad:
        // [1, 1, .5, .5] pooled by 2 gives [1, 0, 1, 0] for d_out [1, 1].
        let s = PoolShape {
            input: [1, 4],
            output: [1, 2],
            ..s
        };
        let mut dx = [0.0; 4];
        pool_backward(
            &[1.0, 1.0, 0.5, 0.5],
            1,
            &s,
            Reduce::Max,
            &[1.0, 1.0],
            &mut dx,
        );
        assert_eq!(dx, [1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn two_d_windows_over_channels() {
        // One 3×3 sample, 2 channels: channel 0 counts 0..9, channel 1 is its negative.
        // Pool 2×2, stride 1, valid: 2×2 windows; max of channel 0 at (0, 0) is x[1][1] = 4,
        // average of channel 1 at (1, 1) is −(4 + 5 + 7 + 8) / 4 = −6.
        let x: Vec<f32> = (0..9).flat_map(|v| [v as f32, -(v as f32)]).collect();
        let s = PoolShape {
            input: [3, 3],
            channels: 2,
            output: [2, 2],
            pool: [2, 2],
            strides: [1, 1],
            pad: [0, 0],
        };
        let mut out = vec![0.0; 8];
        pool(&x, 1, &s, Reduce::Max, &mut out);
        assert_eq!(out[0], 4.0);
        assert_eq!(out[1], 0.0);
        pool(&x, 1, &s, Reduce::Average, &mut out);
        assert_eq!(out[7], -6.0);
    }
}
