//! Max and average pooling over channels-last windows, shared by the 1-D and 2-D pooling
//! layers (a 1-D pooling is a 2-D one of height 1).
//!
//! Each output position reduces the input cells of its window, clipped to the input (Keras's
//! "same" padding pads with cells that take no part: `-inf` for max, and an average over the
//! real cells only, as TensorFlow's `avg_pool`). A cell is `channels` contiguous values, so the
//! reduction runs over whole slices, which the compiler vectorizes; nothing is allocated.

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

/// Pools `batch` samples `x` (`batch · h · w · channels` values, standard layout) into `out`
/// (`batch · oh · ow · channels` values, overwritten).
///
/// # Panics
/// When the slices do not have the lengths `shape` and `batch` give (a broken invariant).
pub(crate) fn pool(x: &[f32], batch: usize, shape: &PoolShape, reduce: Reduce, out: &mut [f32]) {
    let [h, w] = shape.input;
    let [oh, ow] = shape.output;
    let c = shape.channels;
    assert_eq!(x.len(), batch * h * w * c);
    assert_eq!(out.len(), batch * oh * ow * c);
    if c == 0 {
        return;
    }
    let cols: Vec<(usize, usize)> = (0..ow).map(|ox| shape.span(1, ox)).collect();
    for (b, out_b) in out.chunks_exact_mut(oh * ow * c).enumerate() {
        let xb = &x[b * h * w * c..(b + 1) * h * w * c];
        for (oy, out_row) in out_b.chunks_exact_mut(ow * c).enumerate() {
            let (y0, y1) = shape.span(0, oy);
            for (acc, &(x0, x1)) in out_row.chunks_exact_mut(c).zip(&cols) {
                let count = (y1 - y0) * (x1 - x0);
                match reduce {
                    Reduce::Max => acc.fill(f32::NEG_INFINITY),
                    Reduce::Average => acc.fill(0.0),
                }
                for iy in y0..y1 {
                    let cells = &xb[(iy * w + x0) * c..(iy * w + x1) * c];
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
                    let inv = 1.0 / count as f32;
                    acc.iter_mut().for_each(|a| *a *= inv);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_d_max_and_average_by_hand() {
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
