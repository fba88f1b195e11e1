//! The small matrix product at the heart of every recurrence step.
//!
//! `out += a · w` for row-major slices, with no allocation: the recurrent product of one
//! timestep runs millions of times, so it must not allocate packing buffers as a general
//! matrix-multiply library does on every call. Four rows of `out` are updated per pass over
//! `w`, so each row of `w` is read once for four rows of `a`. On x86-64 with AVX2 and FMA (checked
//! at run time) the same loop is compiled with fused multiply-adds.

/// `out[r, :] += Σ_k a[r, k] · w[k, :]` for `a: (rows, k)`, `w: (k, n)`, `out: (rows, n)`, all
/// row-major and contiguous.
///
/// # Panics
/// If a slice is shorter than its shape says: an internal invariant, callers size them.
pub(crate) fn gemm_acc(a: &[f32], w: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    assert!(a.len() >= rows * k && w.len() >= k * n && out.len() >= rows * n);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            unsafe { gemm_acc_fma(a, w, out, rows, k, n) };
            return;
        }
    }
    gemm_acc_body::<false>(a, w, out, rows, k, n);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_acc_fma(a: &[f32], w: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    gemm_acc_body::<true>(a, w, out, rows, k, n);
}

#[inline(always)]
fn madd<const FMA: bool>(acc: f32, x: f32, y: f32) -> f32 {
    if FMA {
        x.mul_add(y, acc)
    } else {
        acc + x * y
    }
}

#[inline(always)]
fn gemm_acc_body<const FMA: bool>(
    a: &[f32],
    w: &[f32],
    out: &mut [f32],
    rows: usize,
    k: usize,
    n: usize,
) {
    if n == 0 || k == 0 {
        return;
    }
    let out = &mut out[..rows * n];
    let mut blocks = out.chunks_exact_mut(4 * n);
    let mut r = 0;
    for block in &mut blocks {
        let (o0, rest) = block.split_at_mut(n);
        let (o1, rest) = rest.split_at_mut(n);
        let (o2, o3) = rest.split_at_mut(n);
        for (kk, wrow) in w.chunks_exact(n).take(k).enumerate() {
            let h0 = a[r * k + kk];
            let h1 = a[(r + 1) * k + kk];
            let h2 = a[(r + 2) * k + kk];
            let h3 = a[(r + 3) * k + kk];
            for ((((x0, x1), x2), x3), &wj) in o0
                .iter_mut()
                .zip(o1.iter_mut())
                .zip(o2.iter_mut())
                .zip(o3.iter_mut())
                .zip(wrow)
            {
                *x0 = madd::<FMA>(*x0, h0, wj);
                *x1 = madd::<FMA>(*x1, h1, wj);
                *x2 = madd::<FMA>(*x2, h2, wj);
                *x3 = madd::<FMA>(*x3, h3, wj);
            }
        }
        r += 4;
    }
    for o in blocks.into_remainder().chunks_exact_mut(n) {
        for (kk, wrow) in w.chunks_exact(n).take(k).enumerate() {
            let h = a[r * k + kk];
            for (x, &wj) in o.iter_mut().zip(wrow) {
                *x = madd::<FMA>(*x, h, wj);
            }
        }
        r += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::Array2;

    #[test]
    fn equals_ndarray_dot_for_every_row_remainder() {
        for rows in 1..=9 {
            let (k, n) = (5, 7);
            let a = Array2::from_shape_fn((rows, k), |(i, j)| (i * 3 + j) as f32 * 0.1 - 0.7);
            let w = Array2::from_shape_fn((k, n), |(i, j)| (i as f32 - j as f32) * 0.05);
            let mut out = Array2::from_elem((rows, n), 0.5_f32);
            let expected = a.dot(&w) + 0.5;
            gemm_acc(
                a.as_slice().unwrap(),
                w.as_slice().unwrap(),
                out.as_slice_mut().unwrap(),
                rows,
                k,
                n,
            );
            assert_abs_diff_eq!(out, expected, epsilon = 1e-5);
        }
    }

    #[test]
    fn hand_checked_product() {
        // [1 2]·[[1 0],[0 1]] + [10 20] = [11 22]
        let mut out = [10.0, 20.0];
        gemm_acc(&[1.0, 2.0], &[1.0, 0.0, 0.0, 1.0], &mut out, 1, 2, 2);
        assert_eq!(out, [11.0, 22.0]);
    }
}
