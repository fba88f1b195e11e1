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

pub(crate) mod attention;
pub(crate) mod conv;
pub(crate) mod norm;
pub(crate) mod orthogonal;
pub(crate) mod packed;
pub(crate) mod pool;

pub use packed::instruction_set;
pub(crate) use packed::{
    gemm_acc, gemm_acc_lda, gemm_acc_strided, gemm_tn_acc, has_avx2, has_avx512, tn_product, Packed,
};

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
