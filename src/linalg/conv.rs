//! Convolution as a matrix product over patches (im2col), shared by `Conv1D` and `Conv2D`.
//!
//! A 1-D convolution is a 2-D one of height 1. For every output position the patch it sees,
//! `kh · kw · channels_per_group` values in the kernel's own order `(ky, kx, c)`, is copied into
//! one row of a scratch matrix (zeros where the window hangs over the padding); the rows of many
//! positions, across the batch, then meet the kernel in one `general_mat_mul` per group:
//!
//! ```text
//! out[rows, group's filters] = patches[rows, kh·kw·cg] · kernel[kh·kw·cg, group's filters]
//! ```
//!
//! The backward pass ([`conv_backward`]) is the same walk over the patches: the kernel's
//! gradient is one product over every output position of the batch, `patchesᵀ · d_out` per
//! group, and the input's is the transposed product `d_out · kernelᵀ`, whose patch rows are
//! added back onto the input cells they came from (col2im).
//!
//! The scratch matrix holds at most [`CHUNK_ELEMENTS`] values (or one patch row, if a row is
//! larger), so its size does not grow with the batch. A 1×1 kernel with stride 1 over one
//! group needs no patches: the input itself is the matrix.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, ArrayD, ArrayView2, ArrayViewMut2, ShapeBuilder};

use super::{gemm_acc_strided, Packed};

/// The most values one scratch matrix of patches holds (4 MiB, a size that stays in cache
/// while the product reads it), unless one patch row is larger.
pub(crate) const CHUNK_ELEMENTS: usize = 1 << 20;

/// Below this many multiply-adds a call runs on its caller's thread alone.
const PARALLEL_WORK: usize = 1 << 22;

/// The geometry of one convolution over channels-last samples of `(h, w, channels)`. Every
/// size here was checked by the layer: the kernel fits the parameter limit, the output the
/// tensor limit, and `dilation · (kernel − 1) + 1` does not overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvShape {
    /// `(h, w)` of one input sample; `(1, length)` for a 1-D convolution.
    pub(crate) input: [usize; 2],
    /// Input channels, all groups together.
    pub(crate) channels: usize,
    /// `(h, w)` of one output sample.
    pub(crate) output: [usize; 2],
    /// `(kh, kw)`.
    pub(crate) kernel: [usize; 2],
    /// Steps between output positions, per axis.
    pub(crate) strides: [usize; 2],
    /// Steps between kernel taps, per axis.
    pub(crate) dilation: [usize; 2],
    /// Zeros before the first row and the first column (Keras's "same" or "causal" padding).
    pub(crate) pad: [usize; 2],
    /// Channel groups: group `g` reads channels `g·cg..` and writes filters `g·fg..`.
    pub(crate) groups: usize,
    /// Output channels, all groups together.
    pub(crate) filters: usize,
}

impl ConvShape {
    /// Input channels per group.
    fn group_channels(&self) -> usize {
        self.channels / self.groups
    }

    /// The length of one patch row, `kh · kw · cg`: the kernel matrix's rows.
    pub(crate) fn patch_len(&self) -> usize {
        self.kernel[0] * self.kernel[1] * self.group_channels()
    }

    /// Output positions of one sample.
    fn positions(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// Whether the input is already the patch matrix: a 1×1 kernel, stride 1, no padding, one
    /// group.
    fn pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.strides == [1, 1] && self.pad == [0, 0] && self.groups == 1
    }

    /// Patch rows per scratch matrix.
    fn chunk_rows(&self) -> usize {
        (CHUNK_ELEMENTS / self.patch_len().max(1)).max(1)
    }

    /// The scratch values one call of `batch` samples allocates, per thread: what the layer
    /// checks against the tensor limit before calling [`conv`]. 0 when no patches are needed.
    pub(crate) fn scratch_elements(&self, batch: usize) -> usize {
        if self.pointwise() {
            return 0;
        }
        let rows = batch.saturating_mul(self.positions());
        rows.min(self.chunk_rows()).saturating_mul(self.patch_len())
    }

    /// Walks the patches of output rows `first..first + n` (rows counted over the whole batch)
    /// of group `g`, laid end to end as the patch matrix holds them: for each run of `len`
    /// values at offset `at` of those rows, `f(at, Some(from), len)` when they are the input
    /// values `x[from..from + len]`, `f(at, None, len)` when they fall on the padding. Both
    /// [`im2col`](Self::im2col) and its transpose [`col2im`](Self::col2im) are this walk.
    #[inline(always)]
    fn walk(
        &self,
        first: usize,
        n: usize,
        g: usize,
        mut f: impl FnMut(usize, Option<usize>, usize),
    ) {
        let [h, w] = self.input;
        let [oh, ow] = self.output;
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.strides;
        let [dh, dw] = self.dilation;
        let [ph, pw] = self.pad;
        let c = self.channels;
        let cg = self.group_channels();
        let c0 = g * cg;
        let sample = h * w * c;
        // Whole kernel rows are contiguous in the input when the taps along w touch adjacent
        // cells and one group holds every channel.
        let contiguous = dw == 1 && self.groups == 1;
        let patch = self.patch_len();
        let seg_len = kw * cg;
        // The position of the first row; later rows step through it without divisions.
        let (mut b, pos) = (first / (oh * ow), first % (oh * ow));
        let (mut oy, mut ox) = (pos / ow, pos % ow);
        for r in 0..n {
            let start = (ox * sw) as isize - pw as isize;
            for ky in 0..kh {
                let seg = r * patch + ky * seg_len;
                let iy = (oy * sh)
                    .checked_add(ky * dh)
                    .and_then(|p| p.checked_sub(ph))
                    .filter(|&p| p < h);
                let Some(iy) = iy else {
                    f(seg, None, seg_len);
                    continue;
                };
                let line = b * sample + iy * w * c;
                if contiguous {
                    // Taps kx at columns start + kx, of which lo..hi fall inside the input.
                    let lo = (-start).clamp(0, kw as isize) as usize;
                    let hi = (w as isize - start).clamp(lo as isize, kw as isize) as usize;
                    if lo > 0 {
                        f(seg, None, lo * c);
                    }
                    if hi > lo {
                        let from = line + (start + lo as isize) as usize * c;
                        f(seg + lo * c, Some(from), (hi - lo) * c);
                    }
                    if hi < kw {
                        f(seg + hi * c, None, (kw - hi) * c);
                    }
                    continue;
                }
                for kx in 0..kw {
                    let ix = (ox * sw)
                        .checked_add(kx * dw)
                        .and_then(|p| p.checked_sub(pw))
                        .filter(|&p| p < w);
                    f(seg + kx * cg, ix.map(|ix| line + ix * c + c0), cg);
                }
            }
            ox += 1;
            if ox == ow {
                ox = 0;
                oy += 1;
                if oy == oh {
                    oy = 0;
                    b += 1;
                }
            }
        }
    }

    /// Copies the patches of output rows `first..first + rows.len() / patch` (rows counted
    /// over the whole batch) of group `g` into `rows`.
    fn im2col(&self, x: &[f32], first: usize, g: usize, rows: &mut [f32]) {
        let n = rows.len() / self.patch_len().max(1);
        self.walk(first, n, g, |at, from, len| match from {
            Some(from) => rows[at..at + len].copy_from_slice(&x[from..from + len]),
            None => rows[at..at + len].fill(0.0),
        });
    }

    /// The transpose of [`im2col`](Self::im2col): adds each value of the patch rows `cols`
    /// of output rows `first..` of group `g` into the input cell it was copied from, in `dx`
    /// (values on the padding go nowhere).
    fn col2im(&self, cols: &[f32], first: usize, g: usize, dx: &mut [f32]) {
        let n = cols.len() / self.patch_len().max(1);
        self.walk(first, n, g, |at, from, len| {
            if let Some(from) = from {
                dx[from..from + len]
                    .iter_mut()
                    .zip(&cols[at..at + len])
                    .for_each(|(d, &v)| *d += v);
            }
        });
    }

    /// Output rows `first..first + out.len() / filters`, added into `out`, with `scratch` for
    /// the patches (any length; it grows to one chunk).
    fn rows(
        &self,
        x: &[f32],
        kernel: &Kernel<'_>,
        first: usize,
        out: &mut [f32],
        scratch: &mut Vec<f32>,
    ) {
        let n = out.len() / self.filters;
        let rows = self.chunk_rows().min(n.max(1));
        scratch.resize(rows * self.patch_len(), 0.0);
        self.rows_in(x, kernel, first, out, scratch);
    }

    /// [`rows`](Self::rows) with the patches in `scratch`, as many rows at a time as it holds
    /// (at least one patch row): nothing is allocated.
    fn rows_in(
        &self,
        x: &[f32],
        kernel: &Kernel<'_>,
        first: usize,
        out: &mut [f32],
        scratch: &mut [f32],
    ) {
        let f = self.filters;
        let fg = f / self.groups;
        self.chunked(out.len() / f, scratch, |done, m, rows| {
            let y = &mut out[done * f..(done + m) * f];
            for g in 0..self.groups {
                self.im2col(x, first + done, g, rows);
                kernel.product(g, rows, m, &mut y[g * fg..], f);
            }
        });
    }

    /// Splits output rows `0..n` into chunks of as many rows as `scratch` holds patch rows
    /// (at least one): `f(done, m, rows)` for the chunk of the `m` rows from `done`, with
    /// `rows` the first `m` patch rows of `scratch`.
    fn chunked(&self, n: usize, scratch: &mut [f32], mut f: impl FnMut(usize, usize, &mut [f32])) {
        let patch = self.patch_len();
        let chunk = (scratch.len() / patch.max(1)).max(1);
        let mut done = 0;
        while done < n {
            let m = chunk.min(n - done);
            f(done, m, &mut scratch[..m * patch]);
            done += m;
        }
    }

    /// The scratch values per sample that [`conv_in`] works best with: every patch row of one
    /// sample, up to [`CHUNK_ELEMENTS`].
    pub(crate) fn scratch_per_sample(&self) -> usize {
        if self.pointwise() {
            return 0;
        }
        self.positions()
            .saturating_mul(self.patch_len())
            .min(CHUNK_ELEMENTS)
            .max(self.patch_len())
    }

    /// The backward pass over output rows `first..first + dy.len() / filters` of the
    /// gradient `dy`: adds the kernel matrix's gradient, `patchesᵀ · dy` per group, into `dk`
    /// (`(patch_len, filters)`, row-major) when given, and the input's, `dy · kernelᵀ` per
    /// group scattered back by [`col2im`](Self::col2im), into `dx` when given. The patch rows
    /// go through `scratch` (at least one, or nothing for a pointwise convolution), as many
    /// at a time as it holds.
    #[allow(clippy::too_many_arguments)]
    fn backward_rows(
        &self,
        x: &[f32],
        kernel: Transposed<'_>,
        first: usize,
        dy: &[f32],
        mut dk: Option<&mut [f32]>,
        mut dx: Option<&mut [f32]>,
        scratch: &mut [f32],
    ) {
        let f = self.filters;
        let fg = f / self.groups;
        let patch = self.patch_len();
        let n = dy.len() / f;
        if self.pointwise() {
            // The input rows are the patches.
            let d = ArrayView2::from_shape((n, f), dy).expect("gradient rows");
            let at = first * patch..(first + n) * patch;
            if let Some(dk) = dk {
                let a = ArrayView2::from_shape((n, patch), &x[at.clone()]).expect("input rows");
                let mut k = ArrayViewMut2::from_shape((patch, f), dk).expect("the kernel matrix");
                general_mat_mul(1.0, &a.t(), &d, 1.0, &mut k);
            }
            if let Some(dx) = dx {
                kernel.product(0, dy, n, &mut dx[at], patch);
            }
            return;
        }
        self.chunked(n, scratch, |done, m, rows| {
            for g in 0..self.groups {
                if let Some(dk) = dk.as_deref_mut() {
                    let d = columns(&dy[done * f + g * fg..], m, f, fg);
                    self.im2col(x, first + done, g, rows);
                    let a = ArrayView2::from_shape((m, patch), &*rows).expect("rows of patches");
                    let mut k = columns_mut(&mut dk[g * fg..], patch, f, fg);
                    general_mat_mul(1.0, &a.t(), &d, 1.0, &mut k);
                }
                if let Some(dx) = dx.as_deref_mut() {
                    rows.fill(0.0);
                    kernel.product(g, &dy[done * f..], m, rows, patch);
                    self.col2im(rows, first + done, g, dx);
                }
            }
        });
    }
}

/// `rows` rows of `width` values, `ld` apart, at the start of `a`: one group's columns of a
/// row-major matrix `ld` wide.
fn columns(a: &[f32], rows: usize, ld: usize, width: usize) -> ArrayView2<'_, f32> {
    let len = (rows.max(1) - 1) * ld + width;
    ArrayView2::from_shape((rows, width).strides((ld, 1)), &a[..len]).expect("rows ld apart")
}

/// [`columns`], mutable.
fn columns_mut(a: &mut [f32], rows: usize, ld: usize, width: usize) -> ArrayViewMut2<'_, f32> {
    let len = (rows.max(1) - 1) * ld + width;
    ArrayViewMut2::from_shape((rows, width).strides((ld, 1)), &mut a[..len]).expect("rows ld apart")
}

/// A convolution's kernel as the input gradient needs it: Keras's kernel as the
/// `(kh · kw · cg, filters)` matrix, and, for a single group, its transpose packed for the
/// register-tiled product ([`pack_transposed`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transposed<'a> {
    /// `(kh · kw · cg, filters)`.
    pub(crate) matrix: ArrayView2<'a, f32>,
    /// `matrixᵀ` packed, or none for the general product.
    pub(crate) packed: Option<&'a Packed>,
    /// The channel groups.
    pub(crate) groups: usize,
}

/// The transpose of `kernel` (`(kh · kw · cg, filters)`), `(filters, kh · kw · cg)`, packed for
/// the register-tiled product of the input gradient, or none for several groups (whose
/// gradients are not contiguous) or patches of fewer than 16 values (mostly padding in a
/// panel, as in [`pack`]).
pub(crate) fn pack_transposed(kernel: ArrayView2<'_, f32>, groups: usize) -> Option<Packed> {
    (groups == 1 && kernel.nrows() >= 16).then(|| Packed::new(kernel.t()))
}

impl Transposed<'_> {
    /// `out[r·ldo + j] += (dy_g · kernel_gᵀ)[r, j]` for the `rows` rows of `dy` (`filters`
    /// values apart, of which group `g`'s are taken) and the patch values `j`.
    fn product(&self, g: usize, dy: &[f32], rows: usize, out: &mut [f32], ldo: usize) {
        let (patch, f) = self.matrix.dim();
        if let Some(p) = self.packed {
            gemm_acc_strided(dy, p, out, rows, ldo);
            return;
        }
        let fg = f / self.groups;
        let d = columns(&dy[g * fg..], rows, f, fg);
        let w = self.matrix.slice(s![.., g * fg..(g + 1) * fg]);
        let mut y = columns_mut(out, rows, ldo, patch);
        general_mat_mul(1.0, &d, &w.t(), 1.0, &mut y);
    }
}

/// The backward pass of [`conv`] over the same `batch` samples `x`: from `dy`, the gradient
/// of the convolution's output (`batch · oh · ow · filters`, before any bias or activation),
/// adds the kernel matrix's gradient, `patchesᵀ · dy` per group over every output position of
/// every sample, into `dk` (`(kh · kw · cg, filters)`, row-major), and, when `dx` is given
/// (`x`'s length), the input's gradient, the patches' gradient `dy · kernelᵀ` folded back onto
/// the input cells they were copied from (col2im), into it.
///
/// Large calls split the batch into parts, each with its own share of `dx` and its own copy of
/// `dk`, summed at the end.
///
/// # Panics
/// When the slices do not have the lengths `shape` and `batch` give (a broken invariant: the
/// layer checked them).
pub(crate) fn conv_backward(
    x: &[f32],
    batch: usize,
    shape: &ConvShape,
    kernel: Transposed<'_>,
    dy: &[f32],
    dk: &mut [f32],
    dx: Option<&mut [f32]>,
) {
    let f = shape.filters;
    let patch = shape.patch_len();
    let positions = shape.positions();
    let sample = shape.input[0] * shape.input[1] * shape.channels;
    assert_eq!(x.len(), batch * sample);
    assert_eq!(dy.len(), batch * positions * f);
    assert_eq!(dk.len(), patch * f);
    assert_eq!(kernel.matrix.dim(), (patch, f));
    assert_eq!(kernel.groups, shape.groups);
    if let Some(dx) = &dx {
        assert_eq!(dx.len(), x.len());
    }
    if batch * positions == 0 || f == 0 {
        return;
    }
    let work = (batch * positions)
        .saturating_mul(patch)
        .saturating_mul(f / shape.groups)
        .saturating_mul(if dx.is_some() { 2 } else { 1 });
    let parts = if work < PARALLEL_WORK {
        1
    } else {
        crate::threads::parts(batch)
    };
    let per = batch.div_ceil(parts);
    // Samples s0.. of one part: its kernel gradient into `dk`, its input gradient into `dx`.
    let part = |s0: usize, dk: &mut [f32], dx: Option<&mut [f32]>| {
        let n = per.min(batch - s0);
        let xs = &x[s0 * sample..(s0 + n) * sample];
        let dys = &dy[s0 * positions * f..(s0 + n) * positions * f];
        let rows = if shape.pointwise() {
            0
        } else {
            shape.chunk_rows().min(n * positions)
        };
        let mut scratch = vec![0.0_f32; rows * patch];
        shape.backward_rows(xs, kernel, 0, dys, Some(dk), dx, &mut scratch);
    };
    if parts < 2 {
        part(0, dk, dx);
        return;
    }
    let starts: Vec<usize> = (0..batch).step_by(per).collect();
    let dxs: Vec<Option<&mut [f32]>> = match dx {
        Some(dx) => dx.chunks_mut(per * sample).map(Some).collect(),
        None => starts.iter().map(|_| None).collect(),
    };
    let partials = crate::threads::map_owned(starts.into_iter().zip(dxs).collect(), |(s0, dx)| {
        let mut own = vec![0.0_f32; dk.len()];
        part(s0, &mut own, dx);
        own
    });
    for p in partials {
        dk.iter_mut().zip(&p).for_each(|(d, &v)| *d += v);
    }
}

/// [`conv`] on the calling thread, with the patches in `scratch` (at least one patch row, or
/// nothing for a pointwise convolution): it allocates nothing, for a recurrent step.
///
/// # Panics
/// As [`conv`], and when `scratch` holds less than one patch row.
pub(crate) fn conv_in(
    x: &[f32],
    batch: usize,
    shape: &ConvShape,
    kernel: Kernel<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let rows = batch * shape.positions();
    assert_eq!(
        x.len(),
        batch * shape.input[0] * shape.input[1] * shape.channels
    );
    assert_eq!(out.len(), rows * shape.filters);
    if rows == 0 || shape.filters == 0 {
        return;
    }
    if shape.pointwise() {
        kernel.product(0, x, rows, out, shape.filters);
        return;
    }
    assert!(
        scratch.len() >= shape.patch_len(),
        "scratch for one patch row"
    );
    shape.rows_in(x, &kernel, 0, out, scratch);
}

/// [`conv_backward`] with Keras's kernel (`(*kernel_size, channels / groups, filters)`, standard
/// layout): its gradient, in the same shape, and the input's into `dx` when given (with the
/// kernel's transpose packed for it when that helps, [`pack_transposed`]).
///
/// # Panics
/// As [`conv_backward`].
pub(crate) fn kernel_grad(
    x: &[f32],
    batch: usize,
    shape: &ConvShape,
    kernel: &ArrayD<f32>,
    dy: &[f32],
    dx: Option<&mut [f32]>,
) -> ArrayD<f32> {
    let matrix = kernel
        .view()
        .into_shape_with_order((shape.patch_len(), shape.filters))
        .expect("Keras's kernel is (kernel positions · channels per group, filters)");
    let packed = dx
        .as_ref()
        .and_then(|_| pack_transposed(matrix, shape.groups));
    let transposed = Transposed {
        matrix,
        packed: packed.as_ref(),
        groups: shape.groups,
    };
    let mut dk = ArrayD::<f32>::zeros(kernel.raw_dim());
    let d = dk.as_slice_mut().expect("a fresh array is contiguous");
    conv_backward(x, batch, shape, transposed, dy, d, dx);
    dk
}

/// The input gradient of [`conv_in`] for the gradient `dy` of its output, added into `dx`,
/// on the calling thread with the patches' gradient in `scratch` (at least one patch row, or
/// nothing for a pointwise convolution): it allocates nothing, for a recurrent step's
/// backward pass.
///
/// # Panics
/// As [`conv_in`].
pub(crate) fn conv_input_grad_in(
    dy: &[f32],
    batch: usize,
    shape: &ConvShape,
    kernel: Transposed<'_>,
    dx: &mut [f32],
    scratch: &mut [f32],
) {
    assert_eq!(
        dx.len(),
        batch * shape.input[0] * shape.input[1] * shape.channels
    );
    assert_eq!(dy.len(), batch * shape.positions() * shape.filters);
    if dy.is_empty() {
        return;
    }
    assert!(
        shape.pointwise() || scratch.len() >= shape.patch_len(),
        "scratch for one patch row"
    );
    shape.backward_rows(&[], kernel, 0, dy, None, Some(dx), scratch);
}

/// The sums of the columns of `values`, rows of `width`: a bias's gradient from the gradient
/// of the values it was added to.
pub(crate) fn column_sums(values: &[f32], width: usize) -> Array1<f32> {
    let mut sums = Array1::<f32>::zeros(width);
    let s = sums.as_slice_mut().expect("a fresh array is contiguous");
    for row in values.chunks_exact(width) {
        s.iter_mut().zip(row).for_each(|(d, &v)| *d += v);
    }
    sums
}

/// A convolution's kernel as the product needs it: Keras's kernel reshaped to
/// `(kh · kw · cg, filters)`, and each group's columns packed for the crate's register-tiled
/// product ([`pack`]) when the groups are wide enough.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kernel<'a> {
    /// `(kh · kw · cg, filters)`.
    pub(crate) matrix: ArrayView2<'a, f32>,
    /// One packed matrix per group, or none for the general product.
    pub(crate) packed: &'a [Packed],
    /// The channel groups.
    pub(crate) groups: usize,
}

/// Each group's columns of `kernel` (`(kh · kw · cg, filters)`) packed for the register-tiled
/// product, or none when a group has fewer than 16 filters: a packed panel is 8 to 32 columns
/// wide (by the CPU's vectors), so that narrower groups would be mostly padding. The packed
/// copies hold at most twice the kernel.
pub(crate) fn pack(kernel: ArrayView2<'_, f32>, groups: usize) -> Vec<Packed> {
    let fg = kernel.ncols() / groups.max(1);
    if fg < 16 {
        return Vec::new();
    }
    (0..groups)
        .map(|g| Packed::new(kernel.slice(s![.., g * fg..(g + 1) * fg])))
        .collect()
}

impl Kernel<'_> {
    /// `out[r·ldo + j] += (a · kernel_g)[r, j]` for the `rows` rows of `a` (contiguous, of
    /// `kh · kw · cg` values each) and the filters `j` of group `g`.
    fn product(&self, g: usize, a: &[f32], rows: usize, out: &mut [f32], ldo: usize) {
        if let Some(p) = self.packed.get(g) {
            gemm_acc_strided(a, p, out, rows, ldo);
            return;
        }
        let (k, f) = self.matrix.dim();
        let fg = f / self.groups;
        let a = ArrayView2::from_shape((rows, k), &a[..rows * k]).expect("rows of patches");
        let mut y = columns_mut(out, rows, ldo, fg);
        let w = self.matrix.slice(s![.., g * fg..(g + 1) * fg]);
        general_mat_mul(1.0, &a, &w, 1.0, &mut y);
    }
}

/// The convolution of `batch` channels-last samples `x` (`batch · h · w · channels` values in
/// standard layout) with `kernel`, added into `out` (`batch · oh · ow · filters` values, zeros
/// for the convolution alone). No bias, no activation.
///
/// # Panics
/// When the slices do not have the lengths `shape` and `batch` give (a broken invariant: the
/// layer checked them).
pub(crate) fn conv(
    x: &[f32],
    batch: usize,
    shape: &ConvShape,
    kernel: Kernel<'_>,
    out: &mut [f32],
) {
    let f = shape.filters;
    let rows = batch * shape.positions();
    assert_eq!(
        x.len(),
        batch * shape.input[0] * shape.input[1] * shape.channels
    );
    assert_eq!(out.len(), rows * f);
    assert_eq!(kernel.matrix.dim(), (shape.patch_len(), f));
    assert_eq!(kernel.groups, shape.groups);
    if rows == 0 || f == 0 {
        return;
    }
    let work = rows
        .saturating_mul(shape.patch_len())
        .saturating_mul(f / shape.groups);
    let parts = if work < PARALLEL_WORK {
        1
    } else {
        crate::threads::parts(rows / 64)
    };
    let per_part = rows.div_ceil(parts);
    let jobs: Vec<(usize, &mut [f32])> = out
        .chunks_mut(per_part * f)
        .enumerate()
        .map(|(i, o)| (i * per_part, o))
        .collect();
    crate::threads::for_each_mut(jobs, |(first, o)| {
        if shape.pointwise() {
            // The input rows are the patches.
            let n = o.len() / f;
            let a = &x[first * shape.channels..(first + n) * shape.channels];
            kernel.product(0, a, n, o, f);
            return;
        }
        let mut scratch = Vec::new();
        shape.rows(x, &kernel, first, o, &mut scratch);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Array4};

    /// Every product term of the convolution by its definition: `f(x, k, y)` with the
    /// indices of an input value, the kernel value it meets and the output it adds to.
    fn terms(
        x: (usize, usize, usize, usize),
        k: (usize, usize, usize, usize),
        s: &ConvShape,
        mut f: impl FnMut([usize; 4], [usize; 4], [usize; 4]),
    ) {
        let (batch, h, w, _) = x;
        let (kh, kw, cg, filters) = k;
        let fg = filters / s.groups;
        for b in 0..batch {
            for oy in 0..s.output[0] {
                for ox in 0..s.output[1] {
                    for o in 0..filters {
                        let g = o / fg;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * s.strides[0] + ky * s.dilation[0]) as isize
                                    - s.pad[0] as isize;
                                let ix = (ox * s.strides[1] + kx * s.dilation[1]) as isize
                                    - s.pad[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let (iy, ix) = (iy as usize, ix as usize);
                                for c in 0..cg {
                                    f([b, iy, ix, g * cg + c], [ky, kx, c, o], [b, oy, ox, o]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The convolution by its definition.
    fn reference(x: &Array4<f32>, k: &Array4<f32>, s: &ConvShape) -> Array4<f32> {
        let mut out = Array4::zeros((x.dim().0, s.output[0], s.output[1], k.dim().3));
        terms(x.dim(), k.dim(), s, |xi, ki, yi| out[yi] += x[xi] * k[ki]);
        out
    }

    fn filled(shape: (usize, usize, usize, usize), seed: u32) -> Array4<f32> {
        let mut state = seed;
        Array4::from_shape_simple_fn(shape, || {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            ((state >> 8) % 2001) as f32 / 1000.0 - 1.0
        })
    }

    /// The gradients of the convolution by their definition: `(dk, dx)` for the output
    /// gradient `dy`.
    fn reference_grads(
        x: &Array4<f32>,
        k: &Array4<f32>,
        dy: &Array4<f32>,
        s: &ConvShape,
    ) -> (Array4<f32>, Array4<f32>) {
        let mut dk = Array4::zeros(k.dim());
        let mut dx = Array4::zeros(x.dim());
        terms(x.dim(), k.dim(), s, |xi, ki, yi| {
            dk[ki] += x[xi] * dy[yi];
            dx[xi] += k[ki] * dy[yi];
        });
        (dk, dx)
    }

    fn close(what: &str, s: &ConvShape, ours: &[f32], expected: &[f32]) {
        assert_eq!(ours.len(), expected.len());
        for (a, e) in ours.iter().zip(expected) {
            assert!((a - e).abs() < 1e-3, "{what} {s:?}: {a} against {e}");
        }
    }

    fn check(s: ConvShape, batch: usize) {
        let x = filled((batch, s.input[0], s.input[1], s.channels), 7);
        let k = filled(
            (s.kernel[0], s.kernel[1], s.channels / s.groups, s.filters),
            11,
        );
        let km: Array2<f32> = k
            .clone()
            .into_shape_with_order((s.patch_len(), s.filters))
            .expect("kernel matrix");
        let packed = pack(km.view(), s.groups);
        for packed in [&packed[..], &[]] {
            let kernel = Kernel {
                matrix: km.view(),
                packed,
                groups: s.groups,
            };
            let mut out = vec![0.0; batch * s.output[0] * s.output[1] * s.filters];
            conv(x.as_slice().unwrap(), batch, &s, kernel, &mut out);
            let expected = reference(&x, &k, &s);
            for (a, e) in out.iter().zip(expected.iter()) {
                assert!((a - e).abs() < 1e-4, "{s:?}: {a} against {e}");
            }
        }
        let dy = filled((batch, s.output[0], s.output[1], s.filters), 13);
        let (dk_ref, dx_ref) = reference_grads(&x, &k, &dy, &s);
        let dys = dy.as_slice().unwrap();
        let packed_t = pack_transposed(km.view(), s.groups);
        for packed in [packed_t.as_ref(), None] {
            let kernel = Transposed {
                matrix: km.view(),
                packed,
                groups: s.groups,
            };
            let mut dk = vec![0.0; km.len()];
            let mut dx = vec![0.0; x.len()];
            conv_backward(
                x.as_slice().unwrap(),
                batch,
                &s,
                kernel,
                dys,
                &mut dk,
                Some(&mut dx),
            );
            close("dk", &s, &dk, dk_ref.as_slice().unwrap());
            close("dx", &s, &dx, dx_ref.as_slice().unwrap());
            // The allocation-free input gradient of a recurrent step gives the same.
            let mut dx = vec![0.0; x.len()];
            let mut scratch = vec![0.0; batch * s.scratch_per_sample()];
            conv_input_grad_in(dys, batch, &s, kernel, &mut dx, &mut scratch);
            close("dx in", &s, &dx, dx_ref.as_slice().unwrap());
        }
    }

    #[test]
    fn one_d_by_hand() {
        // x = [1, 2, 3, 4] (one channel), kernel [1, -1], valid: [1-2, 2-3, 3-4] = [-1, -1, -1];
        // with "same" padding and stride 2 (out 2, pad 0 before, 1 after): [1-2, 3-4].
        let s = ConvShape {
            input: [1, 4],
            channels: 1,
            output: [1, 2],
            kernel: [1, 2],
            strides: [1, 2],
            dilation: [1, 1],
            pad: [0, 0],
            groups: 1,
            filters: 1,
        };
        let k = Array2::from_shape_vec((2, 1), vec![1.0, -1.0]).unwrap();
        let mut out = vec![0.0; 2];
        let kernel = Kernel {
            matrix: k.view(),
            packed: &[],
            groups: 1,
        };
        conv(&[1.0, 2.0, 3.0, 4.0], 1, &s, kernel, &mut out);
        assert_eq!(out, vec![-1.0, -1.0]);
    }

    #[test]
    fn matches_the_definition_over_padding_strides_dilation_and_groups() {
        let base = ConvShape {
            input: [5, 7],
            channels: 4,
            output: [3, 5],
            kernel: [3, 3],
            strides: [1, 1],
            dilation: [1, 1],
            pad: [0, 0],
            groups: 1,
            filters: 6,
        };
        check(base, 2);
        check(ConvShape { groups: 2, ..base }, 2);
        check(
            ConvShape {
                output: [5, 7],
                pad: [1, 1],
                ..base
            },
            3,
        );
        check(
            ConvShape {
                output: [3, 4],
                strides: [2, 2],
                pad: [1, 1],
                ..base
            },
            2,
        );
        check(
            ConvShape {
                output: [1, 3],
                dilation: [2, 2],
                groups: 4,
                filters: 4,
                ..base
            },
            2,
        );
        // 1-D causal: pad d·(k−1) = 4 on the left.
        check(
            ConvShape {
                input: [1, 9],
                output: [1, 9],
                kernel: [1, 3],
                dilation: [1, 2],
                pad: [0, 4],
                ..base
            },
            3,
        );
        // Pointwise: the input is the matrix; over 16 channels, the input gradient's packed
        // product goes straight into it.
        for channels in [4, 16] {
            check(
                ConvShape {
                    kernel: [1, 1],
                    output: [5, 7],
                    channels,
                    ..base
                },
                2,
            );
        }
        // Groups of 16 filters and more: the packed product.
        check(
            ConvShape {
                filters: 32,
                groups: 2,
                pad: [1, 1],
                output: [5, 7],
                ..base
            },
            2,
        );
        check(
            ConvShape {
                kernel: [1, 1],
                output: [5, 7],
                filters: 20,
                ..base
            },
            3,
        );
    }

    #[test]
    fn chunks_and_threads_give_the_same_numbers() {
        // Many rows: several chunks, and several parts when there are threads.
        let s = ConvShape {
            input: [1, 8000],
            channels: 40,
            output: [1, 8000],
            kernel: [1, 5],
            strides: [1, 1],
            dilation: [1, 1],
            pad: [0, 2],
            groups: 1,
            filters: 24,
        };
        assert!(s.chunk_rows() < 8000);
        check(s, 2);
    }
}
