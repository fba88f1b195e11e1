//! The small matrix product at the heart of every recurrence step.
//!
//! `out += a · w`, where `w` is a recurrent kernel that stays the same for every timestep. It is
//! packed once, when the weights are set, into column panels that the micro-kernel streams
//! through; each step then runs register-blocked tiles of `MR` rows by `NR` columns and
//! allocates nothing (a general matrix-multiply library would repack `w` and allocate its
//! buffers on every call, that is, on every timestep).
//!
//! The kernel is plain Rust over fixed-size arrays, compiled three times: with AVX-512, with
//! AVX2 and FMA, and portably. The CPU is asked once which one to use.

use std::sync::OnceLock;

use ndarray::ArrayView2;

/// Which instruction set the kernel runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
    Portable,
}

fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    })
}

/// Whether the CPU has AVX2 and FMA (asked once).
pub(crate) fn has_avx2() -> bool {
    matches!(isa(), Isa::Avx512 | Isa::Avx2)
}

/// Rows of `a` per tile.
const MR: usize = 4;

impl Isa {
    /// Columns of `w` per panel: two vector registers per row of the tile.
    fn nr(self) -> usize {
        match self {
            Isa::Avx512 => 32,
            Isa::Avx2 => 16,
            Isa::Portable => 8,
        }
    }
}

/// A `(k, n)` matrix packed for [`gemm_acc`]: column panels of `nr` columns, each panel's `k`
/// rows contiguous, the last panel padded with zeros.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Packed {
    k: usize,
    n: usize,
    nr: usize,
    data: Vec<f32>,
}

impl Packed {
    /// Packs `w`, of any layout.
    pub(crate) fn new(w: ArrayView2<'_, f32>) -> Self {
        Self::with_panel_width(w, isa().nr())
    }

    /// Packs `w` into panels of `nr` columns (the instruction set's width, or another in tests).
    fn with_panel_width(w: ArrayView2<'_, f32>, nr: usize) -> Self {
        let (k, n) = w.dim();
        let panels = n.div_ceil(nr);
        let mut data = vec![0.0; panels * k * nr];
        if k == 0 || n == 0 {
            return Packed { k, n, nr, data };
        }
        // Row by row of w: each row's columns go, nr at a time, to the same row of every panel.
        for (kk, row) in w.rows().into_iter().enumerate() {
            let mut put = |p: usize, values: &mut dyn Iterator<Item = f32>| {
                let at = (p * k + kk) * nr;
                for (d, v) in data[at..at + nr].iter_mut().zip(values) {
                    *d = v;
                }
            };
            match row.as_slice() {
                Some(row) => {
                    for (p, chunk) in row.chunks(nr).enumerate() {
                        put(p, &mut chunk.iter().copied());
                    }
                }
                None => {
                    for p in 0..panels {
                        let end = ((p + 1) * nr).min(n);
                        put(p, &mut (p * nr..end).map(|c| row[c]));
                    }
                }
            }
        }
        Packed { k, n, nr, data }
    }
}

/// `out[r, :] += Σ_k a[r, k] · w[k, :]` for `a: (rows, k)` and `out: (rows, n)`, both row-major
/// and contiguous.
///
/// # Panics
/// If a slice is shorter than its shape says: an internal invariant, callers size them.
pub(crate) fn gemm_acc(a: &[f32], w: &Packed, out: &mut [f32], rows: usize) {
    gemm_acc_strided(a, w, out, rows, w.n);
}

/// [`gemm_acc`] into rows `ldo` apart: `out[r·ldo + j] += (a·w)[r, j]` for `j < n`, so that the
/// product can go into a column block of a wider matrix.
///
/// # Panics
/// If a slice is shorter than its shape says, or `ldo < n`: internal invariants.
pub(crate) fn gemm_acc_strided(a: &[f32], w: &Packed, out: &mut [f32], rows: usize, ldo: usize) {
    assert!(ldo >= w.n && a.len() >= rows * w.k);
    assert!(rows == 0 || out.len() >= (rows - 1) * ldo + w.n);
    match (isa(), w.nr) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 32) => {
            // SAFETY: the CPU has AVX-512F and FMA, checked by `isa()`.
            unsafe { gemm_avx512(a, w, out, rows, ldo) }
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, 16) => {
            // SAFETY: the CPU has AVX2 and FMA, checked by `isa()`.
            unsafe { gemm_avx2(a, w, out, rows, ldo) }
        }
        (_, 8) => gemm::<8, false>(a, w, out, rows, ldo),
        _ => unreachable!("a matrix is packed for the CPU it runs on"),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gemm_avx512(a: &[f32], w: &Packed, out: &mut [f32], rows: usize, ldo: usize) {
    gemm_with(
        a,
        w,
        out,
        rows,
        ldo,
        // Eight rows by 32 columns: 16 accumulators of the 32 zmm registers, enough to keep
        // two FMA ports busy through their latency.
        (32, 8),
        |m, a, k, panel, out, ldo, cols| {
            // SAFETY: AVX-512F is enabled on this function; the slices were sized by `gemm_with`.
            unsafe {
                match m {
                    8 => simd::tile_avx512::<8>(a, k, panel, out, ldo, cols),
                    4 => simd::tile_avx512::<4>(a, k, panel, out, ldo, cols),
                    _ => simd::tile_avx512::<1>(a, k, panel, out, ldo, cols),
                }
            }
        },
    );
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_avx2(a: &[f32], w: &Packed, out: &mut [f32], rows: usize, ldo: usize) {
    gemm_with(
        a,
        w,
        out,
        rows,
        ldo,
        (16, MR),
        |m, a, k, panel, out, ldo, cols| {
            // SAFETY: AVX2 and FMA are enabled on this function; the slices were sized by
            // `gemm_with`.
            unsafe {
                match m {
                    4 => simd::tile_avx2::<4>(a, k, panel, out, ldo, cols),
                    _ => simd::tile_avx2::<1>(a, k, panel, out, ldo, cols),
                }
            }
        },
    );
}

/// Walks the panels and the row tiles of `out += a · w`, calling `tile` on each: panels of
/// `nr` columns, tiles of up to `mr_max` rows.
#[inline(always)]
fn gemm_with(
    a: &[f32],
    w: &Packed,
    out: &mut [f32],
    rows: usize,
    ldo: usize,
    (nr, mr_max): (usize, usize),
    tile: impl Fn(usize, &[f32], usize, &[f32], &mut [f32], usize, usize),
) {
    let (k, n) = (w.k, w.n);
    if k == 0 || n == 0 {
        return;
    }
    for (p, panel) in w.data.chunks_exact(k * nr).enumerate() {
        let col = p * nr;
        let cols = nr.min(n - col);
        let mut r = 0;
        while r < rows {
            // The tallest tile that fits: mr_max rows, then MR, then one at a time.
            let m = [mr_max, MR, 1]
                .into_iter()
                .find(|&m| r + m <= rows)
                .unwrap_or(1);
            let tail = &mut out[r * ldo + col..];
            tile(m, &a[r * k..(r + m) * k], k, panel, tail, ldo, cols);
            r += m;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    //! The x86-64 tiles: `M` rows by two vector registers of columns, accumulators in registers.
    use std::arch::x86_64::*;

    /// Adds the accumulated tile (`M` rows of `2·L` lanes spilled to `buf`) into `out`.
    #[inline(always)]
    fn add_out<const M: usize>(buf: &[[f32; 32]; M], out: &mut [f32], ldo: usize, cols: usize) {
        for (r, row) in buf.iter().enumerate() {
            for (o, v) in out[r * ldo..r * ldo + cols].iter_mut().zip(row) {
                *o += v;
            }
        }
    }

    /// One tile kernel per vector width: `M` rows by two registers of `$lanes` columns.
    macro_rules! tile_kernel {
        ($name:ident, $features:literal, $lanes:literal,
         $zero:ident, $load:ident, $splat:ident, $fmadd:ident, $store:ident) => {
            /// # Safety
            #[doc = concat!("The CPU must have ", $features, "; `a` holds `M·k` values, `panel`")]
            #[doc = concat!("`", stringify!($lanes), "·2·k`, and `out` reaches `(M-1)·ldo + cols`.")]
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name<const M: usize>(
                a: &[f32],
                k: usize,
                panel: &[f32],
                out: &mut [f32],
                ldo: usize,
                cols: usize,
            ) {
                const NR: usize = 2 * $lanes;
                debug_assert!(a.len() >= M * k && panel.len() >= NR * k);
                let mut acc = [[$zero(); 2]; M];
                let (ap, wp) = (a.as_ptr(), panel.as_ptr());
                for kk in 0..k {
                    // SAFETY: kk < k, so the panel row and every a value are in bounds.
                    let (w0, w1) = unsafe {
                        ($load(wp.add(kk * NR)), $load(wp.add(kk * NR + $lanes)))
                    };
                    for (r, acc_r) in acc.iter_mut().enumerate() {
                        let av = $splat(unsafe { *ap.add(r * k + kk) });
                        acc_r[0] = $fmadd(av, w0, acc_r[0]);
                        acc_r[1] = $fmadd(av, w1, acc_r[1]);
                    }
                }
                let mut buf = [[0.0_f32; 32]; M];
                for (b, acc_r) in buf.iter_mut().zip(&acc) {
                    // SAFETY: each row of buf has 32 >= NR values.
                    unsafe {
                        $store(b.as_mut_ptr(), acc_r[0]);
                        $store(b.as_mut_ptr().add($lanes), acc_r[1]);
                    }
                }
                add_out(&buf, out, ldo, cols.min(NR));
            }
        };
    }

    tile_kernel!(
        tile_avx512,
        "avx512f",
        16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_storeu_ps
    );
    tile_kernel!(
        tile_avx2,
        "avx2,fma",
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_storeu_ps
    );
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
fn gemm<const NR: usize, const FMA: bool>(
    a: &[f32],
    w: &Packed,
    out: &mut [f32],
    rows: usize,
    ldo: usize,
) {
    gemm_with(
        a,
        w,
        out,
        rows,
        ldo,
        (NR, MR),
        |m, a, k, panel, out, ldo, cols| {
            if m == MR {
                tile::<MR, NR, FMA>(a, k, panel, out, ldo, cols);
            } else {
                tile::<1, NR, FMA>(a, k, panel, out, ldo, cols);
            }
        },
    );
}

/// One `M × NR` tile: the accumulators stay in registers over the whole `k` loop.
#[inline(always)]
fn tile<const M: usize, const NR: usize, const FMA: bool>(
    a: &[f32],
    k: usize,
    panel: &[f32],
    out: &mut [f32],
    ldo: usize,
    cols: usize,
) {
    let mut acc = [[0.0_f32; NR]; M];
    for (kk, wrow) in panel.chunks_exact(NR).enumerate().take(k) {
        let wrow: &[f32; NR] = wrow.try_into().expect("chunks of NR");
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let av = a[r * k + kk];
            for (x, &wv) in acc_r.iter_mut().zip(wrow) {
                *x = madd::<FMA>(*x, av, wv);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        let o = &mut out[r * ldo..r * ldo + cols];
        for (x, v) in o.iter_mut().zip(acc_r) {
            *x += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::Array2;

    /// Every kernel this CPU can run, not only the one `gemm_acc` picks.
    #[test]
    fn every_instruction_set_equals_ndarray_dot() {
        let (rows, k, n) = (13, 7, 37);
        let a = Array2::from_shape_fn((rows, k), |(i, j)| (i * 5 + j) as f32 * 0.07 - 0.9);
        let w = Array2::from_shape_fn((k, n), |(i, j)| i as f32 * 0.3 - j as f32 * 0.02);
        let expected = a.dot(&w);
        let a = a.as_slice().unwrap();
        type Kernel<'a> = Box<dyn Fn(&[f32], &mut [f32]) + 'a>;
        let mut kernels: Vec<(&str, Kernel)> = vec![(
            "portable",
            Box::new(|a, out| {
                gemm::<8, false>(a, &Packed::with_panel_width(w.view(), 8), out, rows, n)
            }),
        )];
        #[cfg(target_arch = "x86_64")]
        {
            if matches!(isa(), Isa::Avx2 | Isa::Avx512) {
                kernels.push((
                    "avx2",
                    // SAFETY: the CPU has AVX2 and FMA.
                    Box::new(|a, out| unsafe {
                        gemm_avx2(a, &Packed::with_panel_width(w.view(), 16), out, rows, n)
                    }),
                ));
            }
            if isa() == Isa::Avx512 {
                kernels.push((
                    "avx512",
                    // SAFETY: the CPU has AVX-512F and FMA.
                    Box::new(|a, out| unsafe {
                        gemm_avx512(a, &Packed::with_panel_width(w.view(), 32), out, rows, n)
                    }),
                ));
            }
        }
        for (name, kernel) in kernels {
            let mut out = Array2::<f32>::zeros((rows, n));
            kernel(a, out.as_slice_mut().unwrap());
            assert_abs_diff_eq!(out, expected, epsilon = 1e-4);
            let _ = name;
        }
    }

    #[test]
    fn equals_ndarray_dot_for_every_remainder() {
        for rows in 1..=19 {
            for (k, n) in [(5, 7), (3, 40), (16, 33), (1, 1)] {
                let a = Array2::from_shape_fn((rows, k), |(i, j)| (i * 3 + j) as f32 * 0.1 - 0.7);
                let w = Array2::from_shape_fn((k, n), |(i, j)| (i as f32 - j as f32) * 0.05);
                let mut out = Array2::from_elem((rows, n), 0.5_f32);
                let expected = a.dot(&w) + 0.5;
                gemm_acc(
                    a.as_slice().unwrap(),
                    &Packed::new(w.view()),
                    out.as_slice_mut().unwrap(),
                    rows,
                );
                assert_abs_diff_eq!(out, expected, epsilon = 1e-5);
            }
        }
    }

    #[test]
    fn hand_checked_product() {
        // [1 2]·[[1 0],[0 1]] + [10 20] = [11 22]
        let w = Array2::from_shape_vec((2, 2), vec![1.0, 0.0, 0.0, 1.0]).unwrap();
        let mut out = [10.0, 20.0];
        gemm_acc(&[1.0, 2.0], &Packed::new(w.view()), &mut out, 1);
        assert_eq!(out, [11.0, 22.0]);
    }

    #[test]
    fn transposed_views_pack_by_value() {
        let w = Array2::from_shape_fn((3, 2), |(i, j)| (i * 2 + j) as f32);
        let wt = w.t();
        let mut out = [0.0; 3];
        // [1 1]·wᵀ = column sums of wᵀ's rows = [0+1, 2+3, 4+5]
        gemm_acc(&[1.0, 1.0], &Packed::new(wt), &mut out, 1);
        assert_eq!(out, [1.0, 5.0, 9.0]);
    }
}
