//! **Not part of seqnn's API.** A door to the crate's own matrix kernel, for `benches/gemm.rs`:
//! it measures the machine's f32 GEMM peak with the kernel that every recurrent step and input
//! projection runs on, and the transposed product of training's weight gradients, which a bench
//! (a crate of its own) could not reach otherwise. Hidden from the docs, outside semver: it may
//! change or go in any release.

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};
use crate::linalg::{self, Packed};

/// A `(k, n)` matrix packed once for [`PackedMatrix::gemm_acc`], as a recurrent layer packs its
/// recurrent kernel when its weights are set.
#[derive(Debug, Clone)]
pub struct PackedMatrix {
    packed: Packed,
    k: usize,
    n: usize,
}

impl PackedMatrix {
    /// Packs `w`, of any layout, for the instruction set of this CPU.
    pub fn new(w: ArrayView2<'_, f32>) -> Self {
        let (k, n) = w.dim();
        PackedMatrix {
            packed: Packed::new(w),
            k,
            n,
        }
    }

    /// `out += a · w` for `a`, `(rows, k)`, and `out`, `(rows, n)`, both row-major and
    /// contiguous: seqnn's `gemm_acc`, on one thread.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `a` or `out` holds fewer values than `rows` rows.
    pub fn gemm_acc(&self, a: &[f32], out: &mut [f32], rows: usize) -> Result<()> {
        let need = |width: usize| rows.checked_mul(width);
        if need(self.k).is_none_or(|n| a.len() < n) || need(self.n).is_none_or(|n| out.len() < n) {
            return Err(Error::InvalidArgument {
                layer: "gemm_acc".to_string(),
                message: format!(
                    "a ({} values) and out ({} values) must hold {rows} rows of {} and {} values",
                    a.len(),
                    out.len(),
                    self.k,
                    self.n
                ),
            });
        }
        linalg::gemm_acc(a, &self.packed, out, rows);
        Ok(())
    }
}

/// `aᵀ · b` for `a: (m, k)` and `b: (m, n)` of any layout: the weight gradients of a recurrent
/// layer's whole sequence (`xᵀ·d_z`, `h_prevᵀ·d_z`, with `m` = timesteps × batch), as its
/// backward pass computes them, on one thread.
///
/// # Errors
/// [`Error::InvalidArgument`] if `a` and `b` have different numbers of rows.
pub fn tn_product(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
    if a.nrows() != b.nrows() {
        return Err(Error::InvalidArgument {
            layer: "tn_product".to_string(),
            message: format!(
                "a {:?} and b {:?} must have as many rows",
                a.shape(),
                b.shape()
            ),
        });
    }
    Ok(linalg::tn_product(a, b))
}

/// The instruction set the kernel runs with on this CPU: `"avx512"`, `"avx2"` or `"portable"`.
pub fn instruction_set() -> &'static str {
    if linalg::has_avx512() {
        "avx512"
    } else if linalg::has_avx2() {
        "avx2"
    } else {
        "portable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::{array, Array2};

    #[test]
    fn adds_the_product() -> Result<()> {
        // [1 2; 3 4]·[1 0 2; 0 1 3] = [1 2 8; 3 4 18], added to ones.
        let w = array![[1.0_f32, 0.0, 2.0], [0.0, 1.0, 3.0]];
        let a = [1.0_f32, 2.0, 3.0, 4.0];
        let mut out = [1.0_f32; 6];
        PackedMatrix::new(w.view()).gemm_acc(&a, &mut out, 2)?;
        let out = Array2::from_shape_vec((2, 3), out.to_vec()).expect("2×3");
        assert_abs_diff_eq!(out, array![[2.0, 3.0, 9.0], [4.0, 5.0, 19.0]]);
        Ok(())
    }

    #[test]
    fn transposed_product() -> Result<()> {
        // [1 2; 3 4]ᵀ·[1 0 2; 0 1 3] = [1 3 11; 2 4 16].
        let a = array![[1.0_f32, 2.0], [3.0, 4.0]];
        let b = array![[1.0_f32, 0.0, 2.0], [0.0, 1.0, 3.0]];
        assert_abs_diff_eq!(
            tn_product(a.view(), b.view())?,
            array![[1.0, 3.0, 11.0], [2.0, 4.0, 16.0]]
        );
        assert!(tn_product(a.view(), b.slice(ndarray::s![..1, ..])).is_err());
        Ok(())
    }

    #[test]
    fn refuses_short_slices() {
        let w = Array2::<f32>::zeros((2, 3));
        let p = PackedMatrix::new(w.view());
        let mut out = [0.0_f32; 6];
        assert!(p.gemm_acc(&[0.0; 3], &mut out, 2).is_err());
        assert!(p.gemm_acc(&[0.0; 4], &mut out[..5], 2).is_err());
        assert!(p.gemm_acc(&[0.0; 4], &mut out, usize::MAX).is_err());
        assert!(["avx512", "avx2", "portable"].contains(&instruction_set()));
    }
}
