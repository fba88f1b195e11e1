//! Weight initializers, with Keras's names and distributions.

use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, ArrayD, IxDyn};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use crate::error::{Error, Result};
use crate::session::with_rng;

/// How a weight is filled when a layer is built, as Keras's `kernel_initializer` and friends.
///
/// Fans follow Keras: for a 2-D weight `(rows, cols)`, `fan_in = rows` and `fan_out = cols`; for a
/// 1-D weight both are its length. Random draws come from the thread's generator, which
/// [`set_random_seed`](crate::set_random_seed) seeds.
///
/// ```
/// use seqnn::Initializer;
/// let init: Initializer = "glorot_uniform".parse()?;
/// let w = init.sample(&[4, 3]);
/// let limit = (6.0_f32 / 7.0).sqrt();
/// assert!(w.iter().all(|v| v.abs() <= limit));
/// # Ok::<(), seqnn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Initializer {
    /// All zeros (Keras's default bias initializer).
    Zeros,
    /// All ones.
    Ones,
    /// Uniform in `±sqrt(6 / (fan_in + fan_out))` (Keras's default kernel initializer).
    GlorotUniform,
    /// Truncated normal with stddev `sqrt(2 / (fan_in + fan_out))`.
    GlorotNormal,
    /// Uniform in `±sqrt(6 / fan_in)`.
    HeUniform,
    /// Truncated normal with stddev `sqrt(2 / fan_in)`.
    HeNormal,
    /// Uniform in `±sqrt(3 / fan_in)`.
    LecunUniform,
    /// Truncated normal with stddev `sqrt(1 / fan_in)`.
    LecunNormal,
    /// A random orthogonal matrix: Q of the QR decomposition of a standard normal matrix, with
    /// the signs of R's diagonal folded in (Keras's default recurrent initializer).
    Orthogonal,
    /// Uniform in `[-0.05, 0.05]`.
    RandomUniform,
    /// Normal with mean 0 and stddev 0.05.
    RandomNormal,
    /// Normal with stddev 0.05, redrawn beyond two stddevs.
    TruncatedNormal,
}

const ALL: [(Initializer, &str); 12] = [
    (Initializer::Zeros, "zeros"),
    (Initializer::Ones, "ones"),
    (Initializer::GlorotUniform, "glorot_uniform"),
    (Initializer::GlorotNormal, "glorot_normal"),
    (Initializer::HeUniform, "he_uniform"),
    (Initializer::HeNormal, "he_normal"),
    (Initializer::LecunUniform, "lecun_uniform"),
    (Initializer::LecunNormal, "lecun_normal"),
    (Initializer::Orthogonal, "orthogonal"),
    (Initializer::RandomUniform, "random_uniform"),
    (Initializer::RandomNormal, "random_normal"),
    (Initializer::TruncatedNormal, "truncated_normal"),
];

/// Keras's correction from a truncated normal's stddev to the underlying normal's
/// (the stddev of a unit normal truncated at ±2).
const TRUNCATED_STDDEV_FIX: f64 = 0.879_625_661_034_239_8;

impl Initializer {
    /// Keras's name for it.
    pub fn name(self) -> &'static str {
        ALL.iter()
            .find(|(i, _)| *i == self)
            .map(|(_, n)| *n)
            .unwrap_or("zeros")
    }

    /// A new array of `shape` filled by this initializer, from the thread's generator.
    pub fn sample(self, shape: &[usize]) -> ArrayD<f32> {
        with_rng(|rng| self.sample_with(shape, rng))
    }

    /// A new array of `shape` filled by this initializer, from `rng`.
    pub fn sample_with<R: Rng + ?Sized>(self, shape: &[usize], rng: &mut R) -> ArrayD<f32> {
        let (fan_in, fan_out) = fans(shape);
        let n = shape.iter().product::<usize>();
        let uniform = |limit: f64, rng: &mut R| -> Vec<f32> {
            match Uniform::new_inclusive(-limit, limit) {
                Ok(dist) => (0..n).map(|_| dist.sample(rng) as f32).collect(),
                Err(_) => vec![0.0; n],
            }
        };
        let values = match self {
            Initializer::Zeros => vec![0.0; n],
            Initializer::Ones => vec![1.0; n],
            Initializer::GlorotUniform => uniform((6.0 / (fan_in + fan_out)).sqrt(), rng),
            Initializer::HeUniform => uniform((6.0 / fan_in).sqrt(), rng),
            Initializer::LecunUniform => uniform((3.0 / fan_in).sqrt(), rng),
            Initializer::RandomUniform => uniform(0.05, rng),
            Initializer::GlorotNormal => truncated(
                n,
                (2.0 / (fan_in + fan_out)).sqrt() / TRUNCATED_STDDEV_FIX,
                rng,
            ),
            Initializer::HeNormal => {
                truncated(n, (2.0 / fan_in).sqrt() / TRUNCATED_STDDEV_FIX, rng)
            }
            Initializer::LecunNormal => {
                truncated(n, (1.0 / fan_in).sqrt() / TRUNCATED_STDDEV_FIX, rng)
            }
            Initializer::TruncatedNormal => truncated(n, 0.05, rng),
            Initializer::RandomNormal => (0..n)
                .map(|_| (0.05 * rng.sample::<f64, _>(StandardNormal)) as f32)
                .collect(),
            Initializer::Orthogonal => orthogonal(shape, rng),
        };
        ArrayD::from_shape_vec(IxDyn(shape), values).expect("values has the shape's length")
    }
}

/// A fresh `(rows, cols)` weight from `init`.
pub(crate) fn sample2(init: Initializer, rows: usize, cols: usize) -> Array2<f32> {
    init.sample(&[rows, cols])
        .into_dimensionality()
        .expect("sampled with a 2-D shape")
}

/// A fresh `(len,)` weight from `init`.
pub(crate) fn sample1(init: Initializer, len: usize) -> ndarray::Array1<f32> {
    init.sample(&[len])
        .into_dimensionality()
        .expect("sampled with a 1-D shape")
}

/// Keras's `_compute_fans` for 1-D and 2-D weights (and the receptive-field rule beyond).
fn fans(shape: &[usize]) -> (f64, f64) {
    let (fi, fo) = match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [r, c] => (*r, *c),
        _ => {
            let receptive: usize = shape[..shape.len() - 2].iter().product();
            (
                shape[shape.len() - 2] * receptive,
                shape[shape.len() - 1] * receptive,
            )
        }
    };
    (fi.max(1) as f64, fo.max(1) as f64)
}

fn truncated<R: Rng + ?Sized>(n: usize, stddev: f64, rng: &mut R) -> Vec<f32> {
    (0..n)
        .map(|_| loop {
            let z: f64 = rng.sample(StandardNormal);
            if z.abs() <= 2.0 {
                break (z * stddev) as f32;
            }
        })
        .collect()
}

/// Keras's orthogonal initializer: the Q of a standard normal `(max, min)` matrix's QR, its
/// columns signed so that R's diagonal is positive, transposed back when the weight is wide
/// (see [`crate::linalg::orthogonal`]).
fn orthogonal<R: Rng + ?Sized>(shape: &[usize], rng: &mut R) -> Vec<f32> {
    let cols = shape.last().copied().unwrap_or(1);
    let rows: usize = shape.iter().product::<usize>() / cols.max(1);
    if rows == 0 || cols == 0 {
        return Vec::new();
    }
    let q = if rows < cols {
        crate::linalg::orthogonal::haar_rows(rows, cols, rng)
    } else {
        crate::linalg::orthogonal::haar_columns(rows, cols, rng)
    };
    // Both are in standard layout, so their buffer is the weight's, without a copy.
    let (values, offset) = q.into_raw_vec_and_offset();
    debug_assert_eq!(offset, Some(0));
    values
}

impl fmt::Display for Initializer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Initializer {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let alias = match s {
            "zero" => "zeros",
            "one" => "ones",
            "uniform" => "random_uniform",
            "normal" => "random_normal",
            other => other,
        };
        ALL.iter()
            .find(|(_, n)| *n == alias)
            .map(|(i, _)| *i)
            .ok_or_else(|| Error::UnknownName {
                kind: "initializer",
                name: s.to_string(),
                message: format!(
                    "Unknown initializer '{s}' cannot be deserialized. Known names: {}",
                    ALL.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn orthogonal_is_orthogonal_square_tall_and_wide() {
        let mut rng = StdRng::seed_from_u64(1);
        for shape in [[8, 8], [12, 5], [5, 20]] {
            let q = Initializer::Orthogonal
                .sample_with(&shape, &mut rng)
                .into_dimensionality::<ndarray::Ix2>()
                .unwrap();
            // The short side's gram matrix is the identity.
            let g = if shape[0] >= shape[1] {
                q.t().dot(&q)
            } else {
                q.dot(&q.t())
            };
            let eye = Array2::<f32>::eye(g.nrows());
            assert_abs_diff_eq!(g, eye, epsilon = 1e-5);
        }
    }

    #[test]
    fn glorot_uniform_stays_in_its_limit_and_is_not_constant() {
        let mut rng = StdRng::seed_from_u64(2);
        let w = Initializer::GlorotUniform.sample_with(&[10, 3], &mut rng);
        let limit = (6.0_f32 / 13.0).sqrt();
        assert!(w.iter().all(|v| v.abs() <= limit));
        assert!(w.iter().any(|&v| v != w[[0, 0]]));
    }

    #[test]
    fn unknown_initializer_is_an_error() {
        let e = "glorot".parse::<Initializer>().unwrap_err();
        assert!(e
            .to_string()
            .starts_with("Unknown initializer 'glorot' cannot be deserialized."));
    }
}
