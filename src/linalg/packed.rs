//! The small matrix product at the heart of every recurrence step.
//!
//! `out += a · w`, where `w` is a recurrent kernel that stays the same for every timestep. It is
//! packed once, when the weights are set, into column panels that the micro-kernel streams
//! through; each step then runs register-blocked tiles of up to 14 rows by two vector
//! registers of columns and allocates nothing (a general matrix-multiply library would repack
//! `w` and allocate its buffers on every call, that is, on every timestep).
//!
//! The kernel is plain Rust over fixed-size arrays, compiled three times: with AVX-512, with
//! AVX2 and FMA, and portably. The CPU is asked once which one to use.

use std::cell::Cell;
use std::sync::OnceLock;

use ndarray::{s, Array2, ArrayView1, ArrayView2};

/// Which instruction set the kernel runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
    Portable,
}

/// The instruction set the CPU has: the widest of the three.
fn detected() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("fma")
        {
            return Isa::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

/// The instruction set the kernels run with, chosen once: the CPU's, or a narrower one that
/// `SEQNN_ISA` asks for (`portable`, `avx2`; a wider one than the CPU has, or another value,
/// is ignored).
fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let cpu = detected();
        let asked = match std::env::var("SEQNN_ISA").as_deref() {
            Ok("portable") => Isa::Portable,
            Ok("avx2") => Isa::Avx2,
            _ => return cpu,
        };
        if asked.lanes() < cpu.lanes() {
            asked
        } else {
            cpu
        }
    })
}

/// The instruction set seqnn's kernels run with: `"avx512"` (AVX-512F with AVX2 and FMA),
/// `"avx2"` (AVX2 and FMA) or `"portable"` (plain Rust, any CPU), chosen at run time, once,
/// from what the CPU has.
///
/// The environment variable `SEQNN_ISA=avx2` or `SEQNN_ISA=portable`, set before the first
/// call, makes the kernels use that narrower set instead (a wider one than the CPU has is
/// ignored): to compare the paths, or to measure one. Every path gives Keras's numbers within
/// the same tolerance; the tests run each one.
///
/// ```
/// assert!(["avx512", "avx2", "portable"].contains(&seqnn::instruction_set()));
/// ```
pub fn instruction_set() -> &'static str {
    match isa() {
        Isa::Avx512 => "avx512",
        Isa::Avx2 => "avx2",
        Isa::Portable => "portable",
    }
}

/// Whether the CPU has AVX2 and FMA (asked once).
pub(crate) fn has_avx2() -> bool {
    matches!(isa(), Isa::Avx512 | Isa::Avx2)
}

/// Whether the CPU has AVX-512F, AVX2 and FMA (asked once).
pub(crate) fn has_avx512() -> bool {
    isa() == Isa::Avx512
}

/// Rows of `a` per tile of the portable kernel.
const MR: usize = 4;

impl Isa {
    /// f32 lanes per vector register.
    fn lanes(self) -> usize {
        match self {
            Isa::Avx512 => 16,
            Isa::Avx2 => 8,
            Isa::Portable => 4,
        }
    }

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
        let mut packed = Packed {
            nr,
            ..Packed::default()
        };
        packed.repack(w);
        packed
    }

    /// Packs `w` in place of what this holds, in the same panel width, reusing the buffer.
    fn repack(&mut self, w: ArrayView2<'_, f32>) {
        let (k, n) = w.dim();
        let nr = self.nr;
        let panels = n.div_ceil(nr);
        // Every value is written below, the last panel's padding with zeros.
        self.data.resize(panels * k * nr, 0.0);
        (self.k, self.n) = (k, n);
        if k == 0 || n == 0 {
            return;
        }
        match nr {
            32 => self.pack_rows::<32>(w),
            16 => self.pack_rows::<16>(w),
            8 => self.pack_rows::<8>(w),
            _ => unreachable!("panels are 8, 16 or 32 columns wide"),
        }
    }

    /// [`repack`](Self::repack) for panels of `NR` columns: row by row of `w`, each row's
    /// columns go, `NR` at a time, to the same row of every panel, each a copy of known size
    /// (a call to `memcpy` per 128 bytes took longer than the copy).
    fn pack_rows<const NR: usize>(&mut self, w: ArrayView2<'_, f32>) {
        let (k, n) = w.dim();
        let whole = n / NR;
        for (kk, row) in w.rows().into_iter().enumerate() {
            for p in 0..whole {
                let at = (p * k + kk) * NR;
                let d: &mut [f32; NR] =
                    (&mut self.data[at..at + NR]).try_into().expect("NR values");
                match row.as_slice() {
                    Some(row) => *d = row[p * NR..(p + 1) * NR].try_into().expect("NR values"),
                    None => {
                        for (c, v) in d.iter_mut().enumerate() {
                            *v = row[p * NR + c];
                        }
                    }
                }
            }
            if whole * NR < n {
                let last = &mut self.data[(whole * k + kk) * NR..][..NR];
                let (values, padding) = last.split_at_mut(n - whole * NR);
                for (c, v) in values.iter_mut().enumerate() {
                    *v = row[whole * NR + c];
                }
                padding.fill(0.0);
            }
        }
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
    assert!(a.len() >= rows * w.k);
    let a = Lhs {
        data: a,
        rs: w.k,
        ks: 1,
    };
    gemm_lhs(a, w.rhs(), out, rows, ldo, None);
}

/// [`gemm_acc`] with the rows of `a` `lda` values apart: `out[r·n + j] += Σ_kk a[r·lda + kk] ·
/// w[kk, j]`, so that the product reads rows of a wider matrix where they are (one timestep of
/// a `(batch, timesteps, features)` input: `lda = timesteps·features`).
///
/// # Panics
/// If `lda < k`, or a slice is shorter than its shape says: internal invariants.
pub(crate) fn gemm_acc_lda(a: &[f32], lda: usize, w: &Packed, out: &mut [f32], rows: usize) {
    assert!(lda >= w.k);
    let a = Lhs {
        data: a,
        rs: lda,
        ks: 1,
    };
    gemm_lhs(a, w.rhs(), out, rows, w.n, None);
}

/// `out[r·n + j] = row[j] + Σ_kk a[r·lda + kk] · w[kk, j]`: [`gemm_acc_lda`] into rows that
/// start as `row` (a bias), with the bits of setting every row of `out` to `row` and then
/// adding, without that pass over `out`. The rows of `a` are `lda` values apart.
///
/// # Panics
/// If `lda < k`, `row` is shorter than `n`, or a slice is shorter than its shape says:
/// internal invariants.
pub(crate) fn gemm_from_row_lda(
    a: &[f32],
    lda: usize,
    w: &Packed,
    row: &[f32],
    out: &mut [f32],
    rows: usize,
) {
    assert!(lda >= w.k);
    let a = Lhs {
        data: a,
        rs: lda,
        ks: 1,
    };
    gemm_lhs(a, w.rhs(), out, rows, w.n, Some(row));
}

/// The left operand of a product, `rows` by `k`: its element `(i, kk)` is `data[i·rs + kk·ks]`.
/// A row-major matrix has `rs = k` and `ks = 1`; the transpose of a row-major `(m, k)` one
/// `rs = 1` and `ks = k`, so that a product with a transpose reads it where it is.
#[derive(Debug, Clone, Copy)]
struct Lhs<'a> {
    data: &'a [f32],
    rs: usize,
    ks: usize,
}

impl<'a> Lhs<'a> {
    /// The operand from row `r` on.
    fn rows_from(self, r: usize) -> Lhs<'a> {
        Lhs {
            data: &self.data[r * self.rs..],
            ..self
        }
    }

    /// Whether `data` holds every element of `rows` rows by `k`.
    fn covers(&self, rows: usize, k: usize) -> bool {
        rows == 0 || k == 0 || self.data.len() > (rows - 1) * self.rs + (k - 1) * self.ks
    }
}

/// The right operand of a product, `k` by `n`, in panels of `nr` columns: row `kk` of panel
/// `p` is the `nr` values from `data[p·ps + kk·ws]`. A [`Packed`] matrix has `ws = nr` and
/// `ps = k·nr`; a row-major matrix read where it is, `ws` its row length and `ps = nr`.
#[derive(Debug, Clone, Copy)]
struct Rhs<'a> {
    data: &'a [f32],
    k: usize,
    n: usize,
    nr: usize,
    ws: usize,
    ps: usize,
}

impl<'a> Rhs<'a> {
    /// The first `n` columns of the row-major `(k, ws)` matrix in `data`, read where they are:
    /// `n` must be a multiple of `nr`, so that every panel is whole.
    ///
    /// # Panics
    /// If it is not, or `data` is shorter than `k` rows: internal invariants.
    fn row_major(data: &'a [f32], k: usize, n: usize, ws: usize, nr: usize) -> Self {
        assert!(n.is_multiple_of(nr) && n <= ws && data.len() >= k * ws);
        Rhs {
            data,
            k,
            n,
            nr,
            ws,
            ps: nr,
        }
    }

    /// Panel `p`, which starts at column `p·nr`.
    fn panel(&self, p: usize) -> Panel<'a> {
        Panel {
            data: &self.data[p * self.ps..],
            ws: self.ws,
        }
    }
}

/// One panel of an [`Rhs`]: its row `kk` is the `nr` values from `data[kk·ws]`.
#[derive(Debug, Clone, Copy)]
struct Panel<'a> {
    data: &'a [f32],
    ws: usize,
}

impl Packed {
    /// The packed matrix as a product's right operand.
    fn rhs(&self) -> Rhs<'_> {
        Rhs {
            data: &self.data,
            k: self.k,
            n: self.n,
            nr: self.nr,
            ws: self.nr,
            ps: self.k * self.nr,
        }
    }
}

/// `out += a · w` into rows `ldo` apart, on the instruction set of the CPU; with a `base` row,
/// `out = base + a · w` (each row of `out` as if it held `base`).
///
/// # Panics
/// If `a`, `w`, `out` or `base` is shorter than its shape says, or `ldo < n`: internal
/// invariants.
fn gemm_lhs(
    a: Lhs<'_>,
    w: Rhs<'_>,
    out: &mut [f32],
    rows: usize,
    ldo: usize,
    base: Option<&[f32]>,
) {
    assert!(ldo >= w.n && a.covers(rows, w.k));
    assert!(base.is_none_or(|b| b.len() >= w.n));
    assert!(rows == 0 || out.len() >= (rows - 1) * ldo + w.n);
    let panels = w.n.div_ceil(w.nr);
    assert!(
        panels == 0 || w.k == 0 || w.data.len() >= (panels - 1) * w.ps + (w.k - 1) * w.ws + w.nr
    );
    let backwards = walk_backwards(&w);
    match (isa(), w.nr) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 32) => {
            // SAFETY: the CPU has AVX-512F and FMA, checked by `isa()`.
            unsafe { gemm_avx512(a, w, out, rows, ldo, base, backwards) }
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, 16) => {
            // SAFETY: the CPU has AVX2 and FMA, checked by `isa()`.
            unsafe { gemm_avx2(a, w, out, rows, ldo, base, backwards) }
        }
        (_, 8) => gemm::<8, false>(a, w, out, rows, ldo, base, backwards),
        _ => unreachable!("a matrix is packed for the CPU it runs on"),
    }
}

/// Right operands of at least this many bytes are walked in alternate directions (see
/// [`walk_backwards`]); smaller ones stay in the L2 cache whatever the order.
const SERPENTINE_BYTES: usize = 256 << 10;

thread_local! {
    /// The last two large right operands this thread multiplied by, by address, the latest
    /// first, and whether each was walked from its last panel to its first.
    static WALKS: Cell<[(usize, bool); 2]> = const { Cell::new([(0, false); 2]) };
}

/// Whether to walk the panels of `w` from the last to the first: the other way from the last
/// time this thread multiplied by `w`, if it is large and one of the last two it did.
///
/// A recurrence multiplies by the same kernel at every step. One larger than the L2 cache
/// (an `LSTM(512)`'s recurrent kernel is 4 MiB) read in the same order every time finds none
/// of it cached, since its first panels were evicted by its last; read the other way every
/// other time, the panels read last are read first, from the cache. On a Xeon with 2 MiB of
/// L2 per core, a one-row product over 4 MiB ran 30 % faster so. Every output value is one
/// panel's sum over `k`, the same in either order: the bits do not change. Two operands are
/// remembered so that a projection between the steps does not break the alternation.
fn walk_backwards(w: &Rhs<'_>) -> bool {
    if std::mem::size_of_val(w.data) < SERPENTINE_BYTES {
        return false;
    }
    let id = w.data.as_ptr() as usize;
    WALKS.with(|walks| {
        let [last, before] = walks.get();
        let (backwards, other) = match (last.0 == id, before.0 == id) {
            (true, _) => (!last.1, before),
            (false, true) => (!before.1, last),
            (false, false) => (false, last),
        };
        walks.set([(id, backwards), other]);
        backwards
    })
}

/// Rows of `a` and `b` per block in [`gemm_tn_acc`]: a block of `b` is `128·n` values, which
/// stay in the L2 cache while every row tile of `out` reads them, and a panel's 128 rows of it
/// (16 KiB) stay in L1 with a tile's rows of `a` while the panel's tiles read them. On an
/// Intel Xeon (48 KiB of L1), 128 rows ran the products of T2-T4's weight gradients as fast as
/// 256 or faster: 20 % faster for a kernel on 32 features, whose whole block of `a` (32 KiB)
/// then fits in L1 too.
const TN_BLOCK: usize = 128;

/// `out += aᵀ · b`, that is `out[i·ldo + j] += Σ_r a[r, i] · b[r, j]`, for `a: (m, k)` and
/// `b: (m, n)` of any layout, into `out`, `(k, n)` with rows `ldo` apart: the weight gradients
/// `xᵀ · d_z` of a whole sequence, where `m` (timesteps × batch) is long and `k`, `n` are a
/// layer's widths.
///
/// The tiles of [`gemm_acc`] run over `m` in blocks of [`TN_BLOCK`] rows. They read `a` where
/// it is, as the transpose of a row-major matrix, and so `b` when it is row-major, but for
/// its last columns short of a whole panel; those, and any other layout, are packed a block at
/// a time into a buffer allocated once per call (a block of `a` in another layout is copied
/// row by row). The copies are at most `m·(k + n)` values against the product's `m·k·n`
/// multiply-adds.
///
/// # Panics
/// If `a` and `b` have different numbers of rows, `ldo < n`, or `out` is shorter than `k` rows
/// `ldo` apart: internal invariants, callers size them.
pub(crate) fn gemm_tn_acc(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    out: &mut [f32],
    ldo: usize,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert_eq!(b.nrows(), m, "aᵀ·b needs as many rows in a as in b");
    if m == 0 || k == 0 || n == 0 {
        return;
    }
    let nr = isa().nr();
    let (a_rows, b_rows) = (a.as_slice(), b.as_slice());
    // The columns of b read where they are: its whole panels, if it is row-major.
    let direct = if b_rows.is_some() { n - n % nr } else { 0 };
    let mut copy = match a_rows {
        Some(_) => Vec::new(),
        None => vec![0.0_f32; TN_BLOCK.min(m) * k],
    };
    let mut packed = Packed {
        nr,
        ..Packed::default()
    };
    for start in (0..m).step_by(TN_BLOCK) {
        let rows = TN_BLOCK.min(m - start);
        let block = match a_rows {
            Some(a) => &a[start * k..(start + rows) * k],
            None => {
                let block = a.slice(s![start..start + rows, ..]);
                for (dst, row) in copy.chunks_exact_mut(k).zip(block.rows()) {
                    dst.iter_mut().zip(row).for_each(|(d, &v)| *d = v);
                }
                &copy[..rows * k]
            }
        };
        let at = Lhs {
            data: block,
            rs: 1,
            ks: k,
        };
        if let (Some(b), true) = (b_rows, direct > 0) {
            let b = Rhs::row_major(&b[start * n..(start + rows) * n], rows, direct, n, nr);
            gemm_lhs(at, b, out, k, ldo, None);
        }
        if direct < n {
            packed.repack(b.slice(s![start..start + rows, direct..]));
            gemm_lhs(at, packed.rhs(), &mut out[direct..], k, ldo, None);
        }
    }
}

/// `a · w`, plus `row` in every row when given (a bias), as a new `(m, n)` array, for `a: (m,
/// k)` and `w: (k, n)` of any layout, on the packed tiles: `w` is packed for the call (`k·n`
/// copies against the product's `m·k·n` multiply-adds), and `a` copied to row-major only if
/// it is not.
///
/// # Panics
/// If `a` has not `w`'s rows as its columns, or `row` is not `n` long: internal invariants.
pub(crate) fn matmul(
    a: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
    row: Option<ArrayView1<'_, f32>>,
) -> Array2<f32> {
    let ((m, k), n) = (a.dim(), w.ncols());
    assert_eq!(w.nrows(), k, "a·w needs as many columns in a as rows in w");
    let a = a.as_standard_layout();
    let a = a.as_slice().expect("standard layout");
    let packed = Packed::new(w);
    let mut out = Array2::zeros((m, n));
    if m == 0 || n == 0 {
        return out;
    }
    let values = out.as_slice_mut().expect("a new array");
    match row {
        Some(row) => {
            assert_eq!(row.len(), n, "the row added to a·w has its columns");
            let row = row.to_vec();
            gemm_from_row_lda(a, k, &packed, &row, values, m);
        }
        None => gemm_acc(a, &packed, values, m),
    }
    out
}

/// `aᵀ · b` as a new `(k, n)` array: [`gemm_tn_acc`] into zeros.
///
/// # Panics
/// If `a` and `b` have different numbers of rows: an internal invariant.
pub(crate) fn tn_product(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f32> {
    let (k, n) = (a.ncols(), b.ncols());
    if n < isa().nr() && k > n {
        // Columns that fill less than a panel (a Dense(16)'s kernel gradient `xᵀ·d_y`) would
        // run half-empty tiles: `(bᵀ·a)ᵀ` fills them, with the same sums in the same order
        // (each value a sum over the rows, two factors that commute), the same bits.
        let mut out = Array2::zeros((n, k));
        gemm_tn_acc(b, a, out.as_slice_mut().expect("a new array"), k);
        return out.t().as_standard_layout().into_owned();
    }
    let mut out = Array2::zeros((k, n));
    let n = b.ncols();
    gemm_tn_acc(a, b, out.as_slice_mut().expect("a new array"), n);
    out
}

/// Calls the tile kernel `simd::$tile::<M>` for the height `M = $m` among the listed ones, or 1:
/// each call direct, so that the kernel inlines (through a function pointer, a 64-row product
/// ran 8 % slower).
#[cfg(target_arch = "x86_64")]
macro_rules! by_height {
    ($m:expr, $tile:ident, $args:tt, [$($h:literal),*]) => {
        match $m {
            $($h => by_height!(@call $tile, $h, $args),)*
            _ => by_height!(@call $tile, 1, $args),
        }
    };
    (@call $tile:ident, $h:literal, ($($arg:expr),*)) => {
        simd::$tile::<$h>($($arg),*)
    };
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gemm_avx512(
    a: Lhs<'_>,
    w: Rhs<'_>,
    out: &mut [f32],
    rows: usize,
    ldo: usize,
    base: Option<&[f32]>,
    backwards: bool,
) {
    gemm_with(
        a,
        w,
        out,
        rows,
        ldo,
        base,
        backwards,
        // 14 rows by 32 columns: 28 accumulators, two panel registers and a broadcast of
        // the 32 zmm registers. Fewer loads per multiply-add than 8 rows: 5-10 % faster on a
        // Xeon with AVX-512 on the products of benches/gemm.rs.
        14,
        |m, a, k, panel, out, ldo, cols, base| {
            // SAFETY: AVX-512F is enabled on this function; the operands were sized by
            // `gemm_lhs` and `gemm_with`.
            unsafe {
                by_height!(
                    m,
                    tile_avx512,
                    (a, k, panel, out, ldo, cols, base),
                    [14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2]
                )
            }
        },
    );
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_avx2(
    a: Lhs<'_>,
    w: Rhs<'_>,
    out: &mut [f32],
    rows: usize,
    ldo: usize,
    base: Option<&[f32]>,
    backwards: bool,
) {
    gemm_with(
        a,
        w,
        out,
        rows,
        ldo,
        base,
        backwards,
        // 6 rows by 16 columns: 12 accumulators, two panel registers and a broadcast of the
        // 16 ymm registers.
        6,
        |m, a, k, panel, out, ldo, cols, base| {
            // SAFETY: AVX2 and FMA are enabled on this function; the operands were sized by
            // `gemm_lhs` and `gemm_with`.
            unsafe {
                by_height!(
                    m,
                    tile_avx2,
                    (a, k, panel, out, ldo, cols, base),
                    [6, 5, 4, 3, 2]
                )
            }
        },
    );
}

/// Walks the panels and the row tiles of `out += a · w` (`out = base + a · w` with a `base`
/// row), calling `tile` on each with the panel's columns of `base`: panels of `nr` columns,
/// from the first or, `backwards`, from the last, and in each, the row tiles of
/// [`tile_heights`] for `tallest`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gemm_with(
    a: Lhs<'_>,
    w: Rhs<'_>,
    out: &mut [f32],
    rows: usize,
    ldo: usize,
    base: Option<&[f32]>,
    backwards: bool,
    tallest: usize,
    tile: impl Fn(usize, Lhs<'_>, usize, Panel<'_>, &mut [f32], usize, usize, Option<&[f32]>),
) {
    let (k, n, nr) = (w.k, w.n, w.nr);
    if k == 0 || n == 0 {
        return;
    }
    let panels = n.div_ceil(nr);
    for i in 0..panels {
        let p = if backwards { panels - 1 - i } else { i };
        let col = p * nr;
        let cols = nr.min(n - col);
        let panel = w.panel(p);
        let base = base.map(|b| &b[col..col + cols]);
        let mut r = 0;
        for m in tile_heights(rows, tallest) {
            let tail = &mut out[r * ldo + col..];
            tile(m, a.rows_from(r), k, panel, tail, ldo, cols, base);
            r += m;
        }
    }
}

/// The heights of the row tiles that cover `rows` rows: `tallest` rows each, and the rest in
/// one tile; where tiles are 6 rows or taller, a rest of fewer than 4 rows is shared with the
/// last tall tile, as two tiles of about half that height (3 rows or more). A tile of 1 or 2
/// rows has too few accumulators (2 or 4) to hide the latency of its multiply-adds and runs at
/// a fraction of the tall tile's rate: 128 rows as 9 × 14 + 1 + 1 cost about as much as 134,
/// as 8 × 14 + 8 + 8 as 128.
fn tile_heights(rows: usize, tallest: usize) -> impl Iterator<Item = usize> {
    let (mut full, rest) = (rows / tallest, rows % tallest);
    let shared = full > 0 && (1..4).contains(&rest) && tallest >= 6;
    let last = if shared {
        full -= 1;
        let both = tallest + rest;
        [both.div_ceil(2), both / 2]
    } else {
        [rest, 0]
    };
    std::iter::repeat_n(tallest, full).chain(last.into_iter().filter(|&m| m > 0))
}

#[cfg(target_arch = "x86_64")]
mod simd {
    //! The x86-64 tiles: `M` rows by two vector registers of columns, accumulators in registers.
    use std::arch::x86_64::*;

    use super::{Lhs, Panel};

    /// Adds the accumulated tile (`M` rows of `2·L` lanes spilled to `buf`) into `out`, or
    /// into the `base` row, written to `out`.
    #[inline(always)]
    fn add_out<const M: usize>(
        buf: &[[f32; 32]; M],
        out: &mut [f32],
        ldo: usize,
        cols: usize,
        base: Option<&[f32]>,
    ) {
        for (r, row) in buf.iter().enumerate() {
            let o = out[r * ldo..r * ldo + cols].iter_mut().zip(row);
            match base {
                Some(b) => o.zip(b).for_each(|((o, v), b)| *o = b + v),
                None => o.for_each(|(o, v)| *o += v),
            }
        }
    }

    /// One tile kernel per vector width: `M` rows by two registers of `$lanes` columns.
    macro_rules! tile_kernel {
        ($name:ident, $features:literal, $lanes:literal,
         $zero:ident, $load:ident, $splat:ident, $fmadd:ident, $add:ident, $store:ident) => {
            /// `M` rows of `a` by `k` times the `panel`, added into `out`'s first `cols`
            /// columns, or into the `base` row (its first `cols` values) and written there.
            ///
            /// # Safety
            #[doc = concat!("The CPU must have ", $features, "; `a` holds its `M` rows by `k`,")]
            #[doc = concat!("the panel its `k` rows of ", stringify!($lanes), "·2 values, and")]
            #[doc = "`out` reaches `(M-1)·ldo + cols`."]
            #[target_feature(enable = $features)]
            #[allow(clippy::too_many_arguments)]
            pub(super) unsafe fn $name<const M: usize>(
                a: Lhs<'_>,
                k: usize,
                panel: Panel<'_>,
                out: &mut [f32],
                ldo: usize,
                cols: usize,
                base: Option<&[f32]>,
            ) {
                const NR: usize = 2 * $lanes;
                debug_assert!(a.covers(M, k));
                debug_assert!(k == 0 || panel.data.len() >= (k - 1) * panel.ws + NR);
                let (rs, ks, ws) = (a.rs, a.ks, panel.ws);
                let mut acc = [[$zero(); 2]; M];
                let (mut ap, mut wp) = (a.data.as_ptr(), panel.data.as_ptr());
                for _ in 0..k {
                    // SAFETY: at step kk, ap is a + kk·ks and wp the panel's row kk, so the
                    // panel row and every a value are in bounds.
                    let (w0, w1) = unsafe { ($load(wp), $load(wp.add($lanes))) };
                    for (r, acc_r) in acc.iter_mut().enumerate() {
                        let av = $splat(unsafe { *ap.add(r * rs) });
                        acc_r[0] = $fmadd(av, w0, acc_r[0]);
                        acc_r[1] = $fmadd(av, w1, acc_r[1]);
                    }
                    // The next step's (past the last one, never read).
                    ap = ap.wrapping_add(ks);
                    wp = wp.wrapping_add(ws);
                }
                if cols >= NR {
                    // A whole tile: add the registers into out, or the base row, directly.
                    let base = base.map(|b| &b[..NR]);
                    for (r, acc_r) in acc.iter().enumerate() {
                        let o = &mut out[r * ldo..r * ldo + NR];
                        let p = o.as_mut_ptr();
                        let s = base.map_or(p.cast_const(), |b| b.as_ptr());
                        // SAFETY: o, and the base row if any, hold NR = 2·lanes values.
                        unsafe {
                            $store(p, $add($load(s), acc_r[0]));
                            $store(p.add($lanes), $add($load(s.add($lanes)), acc_r[1]));
                        }
                    }
                    return;
                }
                let mut buf = [[0.0_f32; 32]; M];
                for (b, acc_r) in buf.iter_mut().zip(&acc) {
                    // SAFETY: each row of buf has 32 >= NR values.
                    unsafe {
                        $store(b.as_mut_ptr(), acc_r[0]);
                        $store(b.as_mut_ptr().add($lanes), acc_r[1]);
                    }
                }
                add_out(&buf, out, ldo, cols.min(NR), base);
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
        _mm512_add_ps,
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
        _mm256_add_ps,
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
    a: Lhs<'_>,
    w: Rhs<'_>,
    out: &mut [f32],
    rows: usize,
    ldo: usize,
    base: Option<&[f32]>,
    backwards: bool,
) {
    gemm_with(
        a,
        w,
        out,
        rows,
        ldo,
        base,
        backwards,
        MR,
        |m, a, k, panel, out, ldo, cols, base| match m {
            MR => tile::<MR, NR, FMA>(a, k, panel, out, ldo, cols, base),
            3 => tile::<3, NR, FMA>(a, k, panel, out, ldo, cols, base),
            2 => tile::<2, NR, FMA>(a, k, panel, out, ldo, cols, base),
            _ => tile::<1, NR, FMA>(a, k, panel, out, ldo, cols, base),
        },
    );
}

/// One `M × NR` tile: the accumulators stay in registers over the whole `k` loop; then added
/// into `out`, or with a `base` row, into that row, written to `out`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile<const M: usize, const NR: usize, const FMA: bool>(
    a: Lhs<'_>,
    k: usize,
    panel: Panel<'_>,
    out: &mut [f32],
    ldo: usize,
    cols: usize,
    base: Option<&[f32]>,
) {
    let mut acc = [[0.0_f32; NR]; M];
    for kk in 0..k {
        let at = kk * panel.ws;
        let wrow: &[f32; NR] = panel.data[at..at + NR].try_into().expect("NR values");
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let av = a.data[r * a.rs + kk * a.ks];
            for (x, &wv) in acc_r.iter_mut().zip(wrow) {
                *x = madd::<FMA>(*x, av, wv);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        let o = &mut out[r * ldo..r * ldo + cols];
        match base {
            Some(b) => o
                .iter_mut()
                .zip(acc_r)
                .zip(b)
                .for_each(|((x, v), b)| *x = b + v),
            None => o.iter_mut().zip(acc_r).for_each(|(x, v)| *x += v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::Array1;

    /// Every kernel this CPU can run, not only the one `gemm_acc` picks, on `a` stored as it is
    /// and stored transposed (as `gemm_tn_acc` reads it).
    #[test]
    fn every_instruction_set_equals_ndarray_dot() {
        // Two tall tiles and a short one: 14 + 13, and 6 + 6 + 6 + 5 + 4.
        let (rows, k, n) = (27, 11, 37);
        let a = Array2::from_shape_fn((rows, k), |(i, j)| (i * 5 + j) as f32 * 0.07 - 0.9);
        let w = Array2::from_shape_fn((k, n), |(i, j)| i as f32 * 0.3 - j as f32 * 0.02);
        let expected = a.dot(&w);
        let a_t = a.t().as_standard_layout().into_owned();
        let layouts = [
            Lhs {
                data: a.as_slice().unwrap(),
                rs: k,
                ks: 1,
            },
            Lhs {
                data: a_t.as_slice().unwrap(),
                rs: 1,
                ks: rows,
            },
        ];
        for (name, nr, _, kernel) in kernels() {
            let w = Packed::with_panel_width(w.view(), nr);
            for a in layouts {
                let mut out = Array2::<f32>::zeros((rows, n));
                kernel(
                    a,
                    w.rhs(),
                    out.as_slice_mut().unwrap(),
                    rows,
                    n,
                    None,
                    false,
                );
                assert!(
                    out.abs_diff_eq(&expected, 1e-4),
                    "{name} with strides {} and {}",
                    a.rs,
                    a.ks
                );
            }
        }
    }

    /// Every kernel sums each value over `k` in order, in one accumulator from zero, and adds
    /// the sum to `out`: a row has the same bits alone as among others, whatever tile height
    /// takes it, so that a model's outputs do not depend on its batch size. A base row gives
    /// the bits of `out` set to it first, whatever `out` held.
    #[test]
    fn every_kernel_sums_each_value_in_k_order() {
        let k = 23;
        for (name, nr, fma, kernel) in kernels() {
            // Five panels and part of a sixth.
            let n = 5 * nr + 3;
            let w =
                Array2::from_shape_fn((k, n), |(i, j)| ((i * 7 + j * 3) % 11) as f32 * 0.13 - 0.6);
            let packed = Packed::with_panel_width(w.view(), nr);
            // Every tile height alone (1 to 14 rows), and shared rests.
            for rows in 1..=31 {
                let a = Array2::from_shape_fn((rows, k), |(i, j)| {
                    ((i * 5 + j) % 13) as f32 * 0.09 - 0.5
                });
                let lhs = Lhs {
                    data: a.as_slice().unwrap(),
                    rs: k,
                    ks: 1,
                };
                let start = Array1::from_shape_fn(n, |j| 0.25 - j as f32 * 0.01);
                // The panels in either order: each value is one panel's, so the same bits.
                for (backwards, from_row) in [(false, false), (true, false), (false, true)] {
                    let (mut out, base) = if from_row {
                        (Array2::from_elem((rows, n), f32::NAN), start.as_slice())
                    } else {
                        (Array2::from_shape_fn((rows, n), |(_, j)| start[j]), None)
                    };
                    kernel(
                        lhs,
                        packed.rhs(),
                        out.as_slice_mut().unwrap(),
                        rows,
                        n,
                        base,
                        backwards,
                    );
                    for ((i, j), &got) in out.indexed_iter() {
                        let sum = (0..k).fold(0.0_f32, |acc, kk| {
                            let (x, y) = (a[[i, kk]], w[[kk, j]]);
                            if fma {
                                x.mul_add(y, acc)
                            } else {
                                acc + x * y
                            }
                        });
                        assert_eq!(
                            got.to_bits(),
                            (start[j] + sum).to_bits(),
                            "{name}: row {i} of {rows}, column {j}, backwards {backwards}, \
                             from a row {from_row}"
                        );
                    }
                }
            }
        }
    }

    /// A product kernel: `out += a · w` for `rows` rows `ldo` apart (`out = base + a · w` with
    /// a base row), the panels from the last if the flag says so.
    type Kernel = fn(Lhs<'_>, Rhs<'_>, &mut [f32], usize, usize, Option<&[f32]>, bool);

    /// Every kernel this CPU can run, not only the one `gemm_acc` picks: its name, its panel
    /// width and whether it fuses its multiply-adds.
    fn kernels() -> Vec<(&'static str, usize, bool, Kernel)> {
        let mut all: Vec<(&'static str, usize, bool, Kernel)> =
            vec![("portable", 8, false, gemm::<8, false>)];
        #[cfg(target_arch = "x86_64")]
        {
            if matches!(isa(), Isa::Avx2 | Isa::Avx512) {
                // SAFETY: the CPU has AVX2 and FMA.
                all.push((
                    "avx2",
                    16,
                    true,
                    |a, w, out, rows, ldo, base, back| unsafe {
                        gemm_avx2(a, w, out, rows, ldo, base, back)
                    },
                ));
            }
            if isa() == Isa::Avx512 {
                // SAFETY: the CPU has AVX-512F and FMA.
                all.push((
                    "avx512",
                    32,
                    true,
                    |a, w, out, rows, ldo, base, back| unsafe {
                        gemm_avx512(a, w, out, rows, ldo, base, back)
                    },
                ));
            }
        }
        all
    }

    /// Every kernel this CPU can run on a right operand read where it is, row-major, with rows
    /// longer than the columns it takes.
    #[test]
    fn every_instruction_set_reads_a_row_major_rhs() {
        let (rows, k, n, ws) = (11, 9, 64, 70);
        let a = Array2::from_shape_fn((rows, k), |(i, j)| (i * 3 + j) as f32 * 0.05 - 0.4);
        let w = Array2::from_shape_fn((k, ws), |(i, j)| (i as f32 - j as f32 * 0.5) * 0.03);
        let expected = a.dot(&w.slice(s![.., ..n]));
        let a = Lhs {
            data: a.as_slice().unwrap(),
            rs: k,
            ks: 1,
        };
        let w = w.as_slice().unwrap();
        for (name, nr, _, kernel) in kernels() {
            let mut out = Array2::<f32>::zeros((rows, n));
            kernel(
                a,
                Rhs::row_major(w, k, n, ws, nr),
                out.as_slice_mut().unwrap(),
                rows,
                n,
                None,
                false,
            );
            assert!(out.abs_diff_eq(&expected, 1e-4), "{name}");
        }
    }

    #[test]
    fn equals_ndarray_dot_for_every_remainder() {
        for rows in 1..=31 {
            for (k, n) in [
                (5, 7),
                (3, 40),
                (16, 33),
                (1, 1),
                (4, 64),
                (9, 96),
                (35, 50),
            ] {
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
                // Relative above magnitude 1: the sums grow with k.
                approx::assert_relative_eq!(out, expected, epsilon = 1e-5, max_relative = 1e-5);
            }
        }
    }

    /// The tiles cover the rows exactly, tallest first, with no tile under 4 rows where two
    /// could share a short rest with a tall one.
    #[test]
    fn tile_heights_avoid_short_tiles() {
        let heights = |rows, tallest| tile_heights(rows, tallest).collect::<Vec<_>>();
        assert_eq!(heights(64, 14), [14, 14, 14, 14, 8]);
        assert_eq!(heights(128, 14), [14, 14, 14, 14, 14, 14, 14, 14, 8, 8]);
        assert_eq!(heights(29, 14), [14, 8, 7]);
        assert_eq!(heights(17, 14), [9, 8]);
        assert_eq!(heights(3, 14), [3]);
        assert_eq!(heights(0, 14), Vec::<usize>::new());
        assert_eq!(heights(13, 6), [6, 4, 3]);
        assert_eq!(heights(9, 6), [5, 4]);
        // Four rows a tile: the rest stays on its own.
        assert_eq!(heights(6, 4), [4, 2]);
        for tallest in [4, 6, 14] {
            for rows in 0..100 {
                let h = heights(rows, tallest);
                assert_eq!(h.iter().sum::<usize>(), rows);
                assert!(h.iter().all(|&m| (1..=tallest).contains(&m)));
                if rows >= 8 && tallest >= 6 {
                    assert!(h.iter().all(|&m| m >= 3), "{rows} rows: {h:?}");
                }
            }
        }
    }

    /// A large operand is walked the other way each time this thread multiplies by it, also
    /// with another between; a third forgets the first; small ones always go forwards.
    #[test]
    fn large_operands_are_walked_in_alternate_directions() {
        let large = |cols| Packed::new(Array2::<f32>::zeros((512, cols)).view());
        let (u, v, w) = (large(256), large(128), large(160));
        let small = Packed::new(Array2::<f32>::zeros((16, 64)).view());
        let walks = |p: &Packed| walk_backwards(&p.rhs());
        assert!(u.data.len() * 4 >= SERPENTINE_BYTES && v.data.len() * 4 >= SERPENTINE_BYTES);
        assert_eq!([walks(&u), walks(&u), walks(&u)], [false, true, false]);
        // Another between: u goes on alternating.
        assert_eq!(
            [walks(&v), walks(&u), walks(&v), walks(&u)],
            [false, true, true, false]
        );
        // Two others: u is forgotten and starts again forwards.
        assert_eq!([walks(&v), walks(&w), walks(&u)], [false, false, false]);
        assert!(!walks(&small) && !walks(&small));
    }

    /// Rows `lda` apart: the columns `3..3 + k` of a wider matrix, read where they are.
    #[test]
    fn reads_rows_lda_apart() {
        let (rows, k, n, lda) = (11, 9, 40, 17);
        let wide = Array2::from_shape_fn((rows, lda), |(i, j)| (i * 5 + j) as f32 * 0.03 - 0.4);
        let w = Array2::from_shape_fn((k, n), |(i, j)| (i as f32 - j as f32) * 0.05);
        let a = wide.slice(ndarray::s![.., 3..3 + k]);
        let mut out = Array2::from_elem((rows, n), 0.25_f32);
        let expected = a.dot(&w) + 0.25;
        let data = &wide.as_slice().unwrap()[3..];
        gemm_acc_lda(
            data,
            lda,
            &Packed::new(w.view()),
            out.as_slice_mut().unwrap(),
            rows,
        );
        assert_abs_diff_eq!(out, expected, epsilon = 1e-5);
    }

    /// `aᵀ·b` the plain way, for the tests.
    fn naive_tn(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f32> {
        let (m, k) = a.dim();
        Array2::from_shape_fn((k, b.ncols()), |(i, j)| {
            (0..m)
                .map(|r| f64::from(a[[r, i]]) * f64::from(b[[r, j]]))
                .sum::<f64>() as f32
        })
    }

    #[test]
    fn transposed_product_equals_a_plain_loop() {
        // Row counts on both sides of the block size, widths on both sides of every tile.
        for m in [1, 5, 255, 256, 257, 600] {
            for (k, n) in [(1, 1), (3, 7), (8, 32), (13, 37), (16, 70), (9, 3)] {
                let a = Array2::from_shape_fn((m, k), |(r, i)| {
                    ((r * 7 + i * 3) % 11) as f32 * 0.1 - 0.5
                });
                let b =
                    Array2::from_shape_fn((m, n), |(r, j)| ((r * 5 + j) % 13) as f32 * 0.1 - 0.6);
                // Into a column block of a wider output, whose other columns stay as they are.
                let ldo = n + 3;
                let mut out = Array2::from_elem((k, ldo), 0.25_f32);
                gemm_tn_acc(a.view(), b.view(), out.as_slice_mut().unwrap(), ldo);
                let expected = naive_tn(a.view(), b.view()) + 0.25;
                assert_abs_diff_eq!(out.slice(s![.., ..n]), expected, epsilon = 2e-3);
                assert!(out.slice(s![.., n..]).iter().all(|&v| v == 0.25));
            }
        }
    }

    #[test]
    fn matmul_equals_a_plain_loop_for_any_layout() {
        for (m, k, n) in [
            (1, 1, 1),
            (3, 5, 16),
            (27, 11, 37),
            (64, 128, 16),
            (5, 16, 128),
        ] {
            let a =
                Array2::from_shape_fn((m, k), |(r, i)| ((r * 7 + i * 3) % 11) as f32 * 0.1 - 0.5);
            let w = Array2::from_shape_fn((k, n), |(i, j)| ((i * 5 + j) % 13) as f32 * 0.1 - 0.6);
            let row = Array1::from_shape_fn(n, |j| j as f32 * 0.5 - 1.0);
            let expected = Array2::from_shape_fn((m, n), |(r, j)| {
                (0..k).map(|i| a[[r, i]] * w[[i, j]]).sum::<f32>()
            });
            assert_abs_diff_eq!(matmul(a.view(), w.view(), None), expected, epsilon = 1e-4);
            let with_row = matmul(a.view(), w.view(), Some(row.view()));
            assert_abs_diff_eq!(with_row, &expected + &row, epsilon = 1e-4);
            // A transposed (column-major) a and w: the same product.
            let (at, wt) = (a.t().to_owned(), w.t().to_owned());
            assert_abs_diff_eq!(matmul(at.t(), wt.t(), None), expected, epsilon = 1e-4);
        }
    }

    #[test]
    fn narrow_transposed_products_keep_the_bits_of_the_direct_one() {
        // Fewer columns in b than a panel and than a's, on both sides of the block size.
        for (m, k, n) in [(300, 128, 16), (5, 40, 3), (600, 33, 31), (129, 9, 1)] {
            let a =
                Array2::from_shape_fn((m, k), |(r, i)| ((r * 7 + i * 3) % 11) as f32 * 0.1 - 0.5);
            let b = Array2::from_shape_fn((m, n), |(r, j)| ((r * 5 + j) % 13) as f32 * 0.1 - 0.6);
            let mut direct = Array2::zeros((k, n));
            gemm_tn_acc(a.view(), b.view(), direct.as_slice_mut().unwrap(), n);
            let product = tn_product(a.view(), b.view());
            assert!(product.is_standard_layout());
            let bits = |x: &Array2<f32>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&product), bits(&direct), "{m}x{k}x{n}");
            assert_abs_diff_eq!(product, naive_tn(a.view(), b.view()), epsilon = 2e-3);
        }
    }

    #[test]
    fn transposed_product_takes_strided_views() {
        // Column blocks of wider arrays, and a transposed one, as the GRU's gradients take.
        let wide = Array2::from_shape_fn((300, 20), |(r, c)| ((r * 3 + c * 5) % 17) as f32 * 0.05);
        let tall = Array2::from_shape_fn((9, 300), |(c, r)| ((r + c * 7) % 5) as f32 * 0.2 - 0.4);
        let (a, b) = (wide.slice(s![.., 4..11]), tall.t());
        let mut out = Array2::<f32>::zeros((7, 9));
        gemm_tn_acc(a, b, out.as_slice_mut().unwrap(), 9);
        assert_abs_diff_eq!(out, naive_tn(a, b), epsilon = 1e-3);
    }

    #[test]
    fn hand_checked_transposed_product() {
        // aᵀ·b for a = [[1], [2]], b = [[3, 4], [5, 6]]: [1·3 + 2·5, 1·4 + 2·6] = [13, 16]
        let a = Array2::from_shape_vec((2, 1), vec![1.0, 2.0]).unwrap();
        let b = Array2::from_shape_vec((2, 2), vec![3.0, 4.0, 5.0, 6.0]).unwrap();
        let mut out = [0.0; 2];
        gemm_tn_acc(a.view(), b.view(), &mut out, 2);
        assert_eq!(out, [13.0, 16.0]);
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
