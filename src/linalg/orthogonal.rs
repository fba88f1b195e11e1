//! Random orthogonal matrices, distributed as Keras's `orthogonal` initializer draws them.
//!
//! Keras takes a standard normal matrix `A` of shape `(m, n)`, `m ≥ n`, factors it `A = QR`,
//! and returns `Q · sign(diag(R))`: the unique `Q` whose `R` has a positive diagonal. That `Q`
//! is uniformly (Haar) distributed over the matrices with `n` orthonormal columns.
//!
//! A Householder QR of `A` reflects column `k` of what is left of `A` onto `e_k`. Because the
//! reflections are orthogonal and a standard normal vector stays standard normal under any
//! orthogonal map, that column is, at every step, a fresh standard normal vector of length
//! `m − k`, independent of the reflections before it (Stewart, "The efficient generation of
//! random orthogonal matrices", SIAM J. Numer. Anal. 17, 1980). So the reflectors are built
//! here straight from fresh normal draws, and the update of the trailing columns of `A`, half
//! of a QR's work, is never done: what remains is forming `Q` from its reflectors, with the
//! signs that make `R`'s diagonal positive. The distribution is Keras's exactly; the numbers
//! differ, as the random generators do.
//!
//! `Q` is formed as LAPACK's `sorgqr` forms it: blocks of `NB` reflectors in compact WY form
//! (`I − V T Vᵀ`, LAPACK's `slarft`), each applied to the trailing part of `Q` with two matrix
//! products, and the column blocks of that part split across the thread pool.

use ndarray::{s, Array2, ArrayViewMut1, ArrayViewMut2, Axis, ShapeBuilder};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// Reflectors per block: wide enough for the products to run near the machine's speed, narrow
/// enough that the triangular factor stays small.
const NB: usize = 128;

/// The fewest columns of `Q` a part of the update gets when it is split across threads.
const MIN_COLUMNS_PER_PART: usize = 64;

/// A `(m, n)` matrix with orthonormal columns, `m ≥ n`, drawn as Keras's orthogonal initializer
/// draws it (see the module docs). `rng` gives one seed; each reflector draws from its own
/// generator seeded from it, so that they are drawn in parallel and the result depends on the
/// seed alone, not on the number of threads.
///
/// # Panics
/// If `m < n`: an internal invariant, the caller transposes for wide shapes.
pub(crate) fn haar_columns<R: Rng + ?Sized>(m: usize, n: usize, rng: &mut R) -> Array2<f32> {
    haar(m, n, rng, false)
}

/// The transpose of [`haar_columns`]: a `(n, m)` matrix with orthonormal rows, in standard
/// layout, made without a transposing copy.
pub(crate) fn haar_rows<R: Rng + ?Sized>(n: usize, m: usize, rng: &mut R) -> Array2<f32> {
    haar(m, n, rng, true).reversed_axes()
}

/// The `(m, n)` Q, column-major when `column_major` (so that its transpose is standard).
fn haar<R: Rng + ?Sized>(m: usize, n: usize, rng: &mut R, column_major: bool) -> Array2<f32> {
    assert!(m >= n, "haar needs m >= n, got ({m}, {n})");
    let (vt, tau, signs) = reflectors(m, n, rng.random());
    let mut q = form_q(&vt, &tau, NB, column_major);
    // Keras's q * sign(diag(r)), along the memory order of the layout.
    let flat = q
        .as_slice_memory_order_mut()
        .expect("a fresh array is contiguous");
    if column_major {
        for (column, &s) in flat.chunks_exact_mut(m.max(1)).zip(&signs) {
            if s < 0.0 {
                column.iter_mut().for_each(|x| *x = -*x);
            }
        }
    } else {
        for row in flat.chunks_exact_mut(n.max(1)) {
            row.iter_mut().zip(&signs).for_each(|(x, &s)| *x *= s);
        }
    }
    q
}

/// The Householder reflectors `H_k = I − τ_k v_k v_kᵀ` of a standard normal `(m, n)` matrix:
/// row `k` of `vt` is `v_k` (`vt[k, k] = 1`, zeros before), with `τ` and the sign of `R`'s
/// diagonal. Reflector `k` draws from a generator seeded by `seed` and `k`.
fn reflectors(m: usize, n: usize, seed: u64) -> (Array2<f32>, Vec<f32>, Vec<f32>) {
    let mut vt = Array2::<f32>::zeros((n, m));
    let rows: Vec<(usize, ArrayViewMut1<'_, f32>)> =
        vt.axis_iter_mut(Axis(0)).enumerate().collect();
    let per_row = crate::threads::map_owned(rows, |(k, mut row)| {
        let mut rng = SmallRng::seed_from_u64(seed ^ (k as u64).wrapping_mul(GOLDEN));
        let g = row.slice_mut(s![k..]);
        reflector(g, &mut rng)
    });
    let (tau, signs) = per_row.into_iter().unzip();
    (vt, tau, signs)
}

/// An odd constant that spreads consecutive reflector indices over the seed's bits.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// Fills `v` with a reflector built from a fresh standard normal vector `g` of its length:
/// `(I − τ v vᵀ) g = β e_1`, `v[0] = 1`. Returns `τ` and the sign of `β`, R's diagonal entry.
fn reflector(mut v: ArrayViewMut1<'_, f32>, rng: &mut SmallRng) -> (f32, f32) {
    let mut g = Vec::with_capacity(v.len());
    g.extend((0..v.len()).map(|_| rng.sample::<f64, _>(StandardNormal)));
    let alpha = g[0];
    let norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
    v[0] = 1.0;
    if norm == 0.0 {
        return (0.0, 1.0); // probability zero: H = I
    }
    // β = −sign(α)·‖g‖, as LAPACK's slarfg chooses it (no cancellation in α − β).
    let beta = if alpha >= 0.0 { -norm } else { norm };
    let v0 = alpha - beta;
    for (vi, &gi) in v.iter_mut().zip(&g).skip(1) {
        *vi = (gi / v0) as f32;
    }
    // Keras's sign correction flips the column of Q where R's diagonal entry β is negative.
    let sign = if beta < 0.0 { -1.0 } else { 1.0 };
    (((beta - alpha) / beta) as f32, sign)
}

/// `Q = H_0 H_1 ⋯ H_{n−1} [I; 0]`, `(m, n)`, from the reflectors (the rows of `vt`), in blocks
/// of `nb`.
fn form_q(vt: &Array2<f32>, tau: &[f32], nb: usize, column_major: bool) -> Array2<f32> {
    let (n, m) = vt.dim();
    let mut q = if column_major {
        Array2::<f32>::zeros((m, n).f())
    } else {
        Array2::<f32>::zeros((m, n))
    };
    for i in 0..n {
        q[[i, i]] = 1.0;
    }
    let starts: Vec<usize> = (0..n).step_by(nb.max(1)).collect();
    for &j in starts.iter().rev() {
        let b = nb.min(n - j);
        let vb = vt.slice(s![j..j + b, j..]).reversed_axes();
        let t = triangular_factor(vb, &tau[j..j + b]);
        // Q[j.., j..] ← (I − V T Vᵀ) Q[j.., j..]: the columns are independent, so they split.
        let mut trailing = q.slice_mut(s![j.., j..]);
        let cols = trailing.ncols();
        let per_part = cols
            .div_ceil(crate::threads::parts(cols / MIN_COLUMNS_PER_PART))
            .max(1);
        let parts: Vec<ArrayViewMut2<'_, f32>> =
            trailing.axis_chunks_iter_mut(Axis(1), per_part).collect();
        crate::threads::for_each_mut(parts, |mut qc| {
            let cols = qc.ncols();
            let mut w = Array2::<f32>::zeros((b, cols));
            ndarray::linalg::general_mat_mul(1.0, &vb.t(), &qc, 0.0, &mut w);
            let tw = t.dot(&w);
            ndarray::linalg::general_mat_mul(-1.0, &vb, &tw, 1.0, &mut qc);
        });
    }
    q
}

/// LAPACK's `slarft` (forward, column-wise): the upper triangular `T` with
/// `H_0 ⋯ H_{b−1} = I − V T Vᵀ`, from the Gram matrix `Vᵀ V` (one matrix product).
fn triangular_factor(v: ndarray::ArrayView2<'_, f32>, tau: &[f32]) -> Array2<f32> {
    let b = tau.len();
    let gram = v.t().dot(&v);
    let mut t = Array2::<f32>::zeros((b, b));
    for i in 0..b {
        t[[i, i]] = tau[i];
        // T[0..i, i] = −τ_i · T[0..i, 0..i] · (V[:, 0..i]ᵀ v_i)
        for r in 0..i {
            let dot: f32 = (r..i).map(|c| t[[r, c]] * gram[[c, i]]).sum();
            t[[r, i]] = -tau[i] * dot;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn gram(q: &Array2<f32>) -> Array2<f32> {
        q.t().dot(q)
    }

    #[test]
    fn columns_are_orthonormal_for_every_block_remainder() {
        let mut rng = StdRng::seed_from_u64(3);
        for (m, n) in [
            (1, 1),
            (5, 1),
            (7, 7),
            (40, 33),
            (64, 64),
            (100, 65),
            (130, 97),
        ] {
            let q = haar_columns(m, n, &mut rng);
            assert_eq!(q.dim(), (m, n));
            assert_abs_diff_eq!(gram(&q), Array2::eye(n), epsilon = 2e-5);
            let r = haar_rows(n, m, &mut rng);
            assert!(r.is_standard_layout());
            assert_abs_diff_eq!(r.dot(&r.t()), Array2::eye(n), epsilon = 2e-5);
        }
    }

    #[test]
    fn blocked_and_one_by_one_forming_agree() {
        let mut rng = StdRng::seed_from_u64(4);
        let (vt, tau, _) = reflectors(70, 45, rng.random());
        let one = form_q(&vt, &tau, 1, false);
        for nb in [2, 7, 32, 64] {
            assert_abs_diff_eq!(form_q(&vt, &tau, nb, false), one, epsilon = 1e-5);
            assert_abs_diff_eq!(form_q(&vt, &tau, nb, true), one, epsilon = 1e-5);
        }
    }

    /// Keras's sign rule makes R's diagonal positive: the first column is then the first draw
    /// normalized, never its negative.
    #[test]
    fn the_first_column_is_the_first_draw_normalized() {
        let (m, n, seed) = (9, 4, 77);
        let q = haar_columns(m, n, &mut ConstSeed(seed));
        let mut first = SmallRng::seed_from_u64(seed);
        let g: Vec<f64> = (0..m)
            .map(|_| first.sample::<f64, _>(StandardNormal))
            .collect();
        let norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
        for (i, gi) in g.iter().enumerate() {
            assert_abs_diff_eq!(q[[i, 0]], (gi / norm) as f32, epsilon = 1e-6);
        }
    }

    /// A generator whose every draw is the same: `haar_columns` takes one seed from it.
    struct ConstSeed(u64);

    impl rand::RngCore for ConstSeed {
        fn next_u32(&mut self) -> u32 {
            self.0 as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            rand::rand_core::impls::fill_bytes_via_next(self, dst)
        }
    }

    #[test]
    fn the_result_depends_on_the_seed_alone() {
        let a = haar_columns(300, 200, &mut ConstSeed(5));
        crate::threads::set_num_threads(1);
        let b = haar_columns(300, 200, &mut ConstSeed(5));
        crate::threads::set_num_threads(0);
        assert_eq!(a, b);
        assert_ne!(a, haar_columns(300, 200, &mut ConstSeed(6)));
    }

    /// Haar-distributed columns: each entry has mean 0, E[q²] = 1/m and E[q⁴] = 3/(m(m + 2)),
    /// and a square Q has det +1 or −1 with equal chance.
    #[test]
    fn the_moments_are_those_of_the_haar_distribution() {
        let mut rng = StdRng::seed_from_u64(6);
        let (m, n, draws) = (5, 3, 4000);
        let (mut s1, mut s2, mut s4) = (0.0_f64, 0.0_f64, 0.0_f64);
        for _ in 0..draws {
            for &x in haar_columns(m, n, &mut rng).iter() {
                let x = f64::from(x);
                s1 += x;
                s2 += x * x;
                s4 += x.powi(4);
            }
        }
        let count = (draws * m * n) as f64;
        assert_abs_diff_eq!(s1 / count, 0.0, epsilon = 0.01);
        assert_abs_diff_eq!(s2 / count, 1.0 / m as f64, epsilon = 0.005);
        assert_abs_diff_eq!(s4 / count, 3.0 / (m * (m + 2)) as f64, epsilon = 0.005);

        let positive = (0..2000)
            .filter(|_| {
                let q = haar_columns(2, 2, &mut rng);
                q[[0, 0]] * q[[1, 1]] - q[[0, 1]] * q[[1, 0]] > 0.0
            })
            .count();
        assert!((900..1100).contains(&positive), "{positive} of 2000");
    }
}
