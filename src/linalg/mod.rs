//! The crate's numerical kernels, apart from the layers that use them.
//!
//! - [`packed`]: the allocation-free product at the heart of every recurrence step, over a
//!   recurrent kernel packed once, with AVX-512, AVX2 and portable tiles chosen at run time;
//!   and on the same tiles, the transposed product `aᵀ·b` of the weight gradients.
//! - [`attention`]: the element-wise parts of the attention layers (additive scores, the masked
//!   row softmax); their products are matrix products in the layers.
//! - [`conv`]: convolution as one matrix product over patches (im2col) per group, for
//!   `Conv1D` and `Conv2D`.
//! - [`pool`]: max and average pooling windows over contiguous channel slices.
//! - [`orthogonal`]: random orthogonal matrices for Keras's `orthogonal` initializer, by blocked
//!   Householder reflections.
//! - [`norm`]: BatchNormalization's per-channel scale and shift, LayerNormalization's rows.
//! - [`stream`]: copies into memory beyond the cache, with stores that bypass it.
//! - [`column_sums`]: the bias gradients, a matrix's sums over its rows.
//! - [`all_finite`]: whether values hold no infinity or NaN, the check of every gradient.

pub(crate) mod attention;
pub(crate) mod conv;
pub(crate) mod norm;
pub(crate) mod orthogonal;
pub(crate) mod packed;
pub(crate) mod pool;
pub(crate) mod stream;

pub use packed::instruction_set;
pub(crate) use packed::{
    gemm_acc, gemm_acc_lda, gemm_acc_strided, gemm_from_row_lda, gemm_tn_acc, has_avx2, has_avx512,
    matmul, tn_product, Packed,
};
pub(crate) use stream::{stream_rows, worth_streaming};

/// A function whose body is compiled for each instruction set, AVX-512, AVX2 and portable, the
/// one the CPU has (asked once) called, so that the body's loops run 16, 8 or 4 lanes wide:
///
/// ```ignore
/// dispatched!(
///     /// Docs.
///     fn name(a: &mut [f32], b: usize) { body }
/// );
/// ```
macro_rules! dispatched {
    ($(#[$attr:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$attr])*
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                if crate::linalg::has_avx512() {
                    // SAFETY: the CPU has AVX-512F, AVX2 and FMA.
                    return unsafe { avx512($($arg),*) };
                }
                if crate::linalg::has_avx2() {
                    // SAFETY: the CPU has AVX2 and FMA.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use dispatched;

dispatched!(
    /// `acc[j] += row[j]` for every row of `rows`, `acc.len()` values each, in order.
    fn add_rows(rows: &[f32], acc: &mut [f32]) {
        let n = acc.len();
        for row in rows.chunks_exact(n) {
            for (a, &v) in acc.iter_mut().zip(&row[..n]) {
                *a += v;
            }
        }
    }
);

/// `acc[j] += row[j]` for every row of `rows` in order, `acc.len()` values each, vectorized
/// ([`add_rows`], for the crate).
///
/// # Panics
/// If `rows` does not hold whole rows: an internal invariant.
pub(crate) fn accumulate_rows(rows: &[f32], acc: &mut [f32]) {
    assert!(
        rows.len().is_multiple_of(acc.len().max(1)),
        "whole rows of the sums' width"
    );
    add_rows(rows, acc);
}

/// The sums of `a`'s columns over its rows, the bias gradient `Σ_r d_z[r, :]` of a layer: the
/// bits of `a.sum_axis(Axis(0))`, which adds the rows in order from zeros, but in one
/// vectorized pass over a row-major `a` (ndarray's took 2.5 % of an LSTM's training epoch, row
/// by row). Any other layout goes to `sum_axis`.
pub(crate) fn column_sums(a: ndarray::ArrayView2<'_, f32>) -> ndarray::Array1<f32> {
    match a.as_slice() {
        Some(values) if a.ncols() > 1 => {
            let mut acc = vec![0.0_f32; a.ncols()];
            add_rows(values, &mut acc);
            ndarray::Array1::from_vec(acc)
        }
        _ => a.sum_axis(ndarray::Axis(0)),
    }
}

/// Whether `values` hold no infinity and no NaN: a vectorized pass over their exponent bits
/// (all ones for both), a block at a time so that a bad value ends it early, where
/// `iter().any(|v| !v.is_finite())` over an `ArrayD` went element by element (0.9 % of T3's
/// samples on two threads, on the thread that the other waited for).
pub(crate) fn all_finite(values: &[f32]) -> bool {
    const EXPONENT: u32 = 0x7f80_0000;
    values.chunks(4096).all(|block| {
        let bad = (block.iter()).fold(false, |bad, v| bad | (v.to_bits() & EXPONENT == EXPONENT));
        !bad
    })
}

/// [`all_finite`] of an array of any layout.
pub(crate) fn array_finite<D: ndarray::Dimension>(a: &ndarray::ArrayRef<f32, D>) -> bool {
    match a.as_slice_memory_order() {
        Some(values) => all_finite(values),
        None => a.iter().all(|v| v.is_finite()),
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{s, Array2, Axis};

    #[test]
    fn all_finite_finds_every_infinity_and_nan_anywhere() {
        let edge = [f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1e-45, -0.0, 0.0];
        for len in [0, 1, 15, 4096, 4097, 9000] {
            let mut v: Vec<f32> = (0..len).map(|i| edge[i % edge.len()]).collect();
            assert!(super::all_finite(&v), "{len} finite values");
            for at in [0, len / 2, len.saturating_sub(1)]
                .into_iter()
                .filter(|_| len > 0)
            {
                for bad in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN] {
                    let keep = v[at];
                    v[at] = bad;
                    assert!(!super::all_finite(&v), "{bad} at {at} of {len}");
                    v[at] = keep;
                }
            }
        }
        let a = Array2::from_shape_fn((5, 7), |(i, j)| (i * 7 + j) as f32);
        let mut t = a.t().to_owned();
        assert!(super::array_finite(&a.slice(s![.., 1..])) && super::array_finite(&t));
        t[[6, 4]] = f32::NAN;
        assert!(!super::array_finite(&t) && !super::array_finite(&t.slice(s![5.., ..])));
        assert!(super::array_finite(&t.slice(s![..6, ..])));
    }

    /// The same bits as ndarray's `sum_axis`, row-major or not, on values whose sums round.
    #[test]
    fn column_sums_are_sum_axis() {
        let a = Array2::from_shape_fn((37, 45), |(i, j)| {
            ((i * 31 + j * 7) % 17) as f32 * 0.1 - 0.77
        });
        let views = [
            a.view(),
            a.slice(s![.., ..1]),
            a.slice(s![1.., 3..]),
            a.t().slice_move(s![.., ..9]),
        ];
        for v in views {
            let (got, want) = (super::column_sums(v), v.sum_axis(Axis(0)));
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.to_bits(), w.to_bits());
            }
        }
        assert_eq!(
            super::column_sums(Array2::<f32>::zeros((0, 3)).view()).to_vec(),
            [0.0; 3]
        );
    }
}
