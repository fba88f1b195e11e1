//! Activation functions, named as Keras names them.

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayViewMut2, Axis};

use crate::error::{Error, Result};

/// An activation function, with the formula tf_keras 2.21 uses.
///
/// The names are Keras's strings, so `"hard_sigmoid".parse::<ActivationFn>()` works:
///
/// ```
/// use seqnn::ActivationFn;
/// let a: ActivationFn = "hard_sigmoid".parse()?;
/// assert_eq!(a, ActivationFn::HardSigmoid);
/// assert_eq!(a.to_string(), "hard_sigmoid");
/// assert!("nope".parse::<ActivationFn>().is_err());
/// # Ok::<(), seqnn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ActivationFn {
    /// `tanh(x)`, the default of recurrent layers.
    #[default]
    Tanh,
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `clip(0.2·x + 0.5, 0, 1)`, Keras 2's piecewise-linear sigmoid.
    HardSigmoid,
    /// `x`, Keras's `"linear"` (also `None` in a Keras config).
    Linear,
    /// `x` for `x > 0`, `exp(x) - 1` otherwise.
    Elu,
    /// `scale·elu_α(x)` with Keras's α = 1.6732632 and scale = 1.0507010.
    Selu,
    /// `ln(1 + exp(x))`.
    Softplus,
    /// `x / (1 + |x|)`.
    Softsign,
    /// Keras 3's `"hard_sigmoid"`: `relu6(x + 3) / 6`, that is `clip(x/6 + 0.5, 0, 1)`. Keras 2
    /// (tf_keras) gives the same name to [`HardSigmoid`](ActivationFn::HardSigmoid); the Keras
    /// file loader picks the one the file's Keras version means.
    HardSigmoidKeras3,
    /// `x·sigmoid(x)`.
    Swish,
    /// `0.5·x·(1 + erf(x/√2))`, the exact GELU (Keras's `approximate=False`).
    Gelu,
    /// `exp(x_i) / Σ_j exp(x_j)` over the last axis.
    Softmax,
}

const ALL: [(ActivationFn, &str); 12] = [
    (ActivationFn::Tanh, "tanh"),
    (ActivationFn::Relu, "relu"),
    (ActivationFn::Sigmoid, "sigmoid"),
    (ActivationFn::HardSigmoid, "hard_sigmoid"),
    (ActivationFn::Linear, "linear"),
    (ActivationFn::Elu, "elu"),
    (ActivationFn::Selu, "selu"),
    (ActivationFn::Softplus, "softplus"),
    (ActivationFn::Softsign, "softsign"),
    (ActivationFn::Swish, "swish"),
    (ActivationFn::Gelu, "gelu"),
    (ActivationFn::Softmax, "softmax"),
];

const SELU_ALPHA: f32 = 1.673_263_2;
const SELU_SCALE: f32 = 1.050_701;

impl ActivationFn {
    /// Keras's name for it.
    pub fn name(self) -> &'static str {
        if self == ActivationFn::HardSigmoidKeras3 {
            return "hard_sigmoid";
        }
        ALL.iter()
            .find(|(a, _)| *a == self)
            .map(|(_, n)| *n)
            .unwrap_or("linear")
    }

    /// Applies the function to one value. Softmax, which needs the whole row, is not
    /// element-wise: use [`ActivationFn::apply_rows`] for it (here it returns `x` unchanged).
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            ActivationFn::Tanh => tanh(x),
            ActivationFn::Relu => x.max(0.0),
            ActivationFn::Sigmoid => sigmoid(x),
            ActivationFn::HardSigmoid => (0.2 * x + 0.5).clamp(0.0, 1.0),
            ActivationFn::Linear | ActivationFn::Softmax => x,
            ActivationFn::Elu => elu(x),
            ActivationFn::Selu => SELU_SCALE * if x > 0.0 { x } else { SELU_ALPHA * x.exp_m1() },
            ActivationFn::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            ActivationFn::Softsign => x / (1.0 + x.abs()),
            ActivationFn::HardSigmoidKeras3 => (x + 3.0).clamp(0.0, 6.0) / 6.0,
            ActivationFn::Swish => x * sigmoid(x),
            ActivationFn::Gelu => gelu(x),
        }
    }

    /// Applies the function in place to a `(rows, features)` block, softmax over each row.
    pub fn apply_rows(self, mut a: ArrayViewMut2<'_, f32>) {
        let cols = a.ncols();
        match a.as_slice_mut() {
            Some(values) => self.apply_slice(values, cols),
            None => {
                for mut row in a.axis_iter_mut(Axis(0)) {
                    let mut owned = row.to_vec();
                    self.apply_slice(&mut owned, cols);
                    row.assign(&ndarray::ArrayView1::from(&owned));
                }
            }
        }
    }

    /// Applies the function in place to row-major rows of `row_len` values (softmax over each
    /// row, element-wise otherwise). The match is outside the loop, so each arm vectorizes; on
    /// x86-64 with AVX-512 or AVX2 (checked at run time) the loops run 16 or 8 lanes wide.
    pub fn apply_slice(self, values: &mut [f32], row_len: usize) {
        apply_slice_dispatched(self, None, values, row_len);
    }

    /// [`apply_slice`](ActivationFn::apply_slice) from `src` into `dst`, leaving `src` as it
    /// is: one pass over both, where a copy and an in-place pass make two.
    ///
    /// # Panics
    /// If `src` and `dst` differ in length: an internal invariant, callers size them.
    pub(crate) fn apply_slice_into(self, src: &[f32], dst: &mut [f32], row_len: usize) {
        assert_eq!(src.len(), dst.len(), "apply_slice_into: lengths differ");
        apply_slice_dispatched(self, Some(src), dst, row_len);
    }
}

impl ActivationFn {
    /// The backward pass of [`apply_slice`](ActivationFn::apply_slice): multiplies `grad`, the
    /// gradient of the loss with respect to the outputs `post` (computed from the inputs
    /// `pre`), by the derivative, in place, so that it becomes the gradient with respect to the
    /// inputs. Softmax is taken over each row of `row_len` values: `g_i ← y_i·(g_i − Σ_j
    /// g_j·y_j)`. The derivatives are TensorFlow's: at a kink, the side TensorFlow takes
    /// (`relu` passes nothing at 0, a clip passes its bounds). Vectorized as `apply_slice` is.
    pub fn backward_slice(self, pre: &[f32], post: &[f32], grad: &mut [f32], row_len: usize) {
        backward_slice_dispatched(self, pre, post, grad, row_len);
    }
}

crate::linalg::dispatched!(
    /// [`ActivationFn::backward_slice`], compiled for each instruction set.
    fn backward_slice_dispatched(
        f: ActivationFn,
        pre: &[f32],
        post: &[f32],
        grad: &mut [f32],
        row_len: usize,
    ) {
        #[inline(always)]
        fn each(pre: &[f32], post: &[f32], grad: &mut [f32], d: impl Fn(f32, f32) -> f32) {
            for ((g, &x), &y) in grad.iter_mut().zip(pre).zip(post) {
                *g *= d(x, y);
            }
        }
        match f {
            ActivationFn::Linear => {}
            ActivationFn::Tanh => each(pre, post, grad, |_, y| 1.0 - y * y),
            ActivationFn::Sigmoid => each(pre, post, grad, |_, y| y * (1.0 - y)),
            ActivationFn::Relu => each(pre, post, grad, |x, _| f32::from(u8::from(x > 0.0))),
            ActivationFn::HardSigmoid => each(pre, post, grad, |x, _| {
                let v = 0.2 * x + 0.5;
                if (0.0..=1.0).contains(&v) {
                    0.2
                } else {
                    0.0
                }
            }),
            ActivationFn::HardSigmoidKeras3 => each(pre, post, grad, |x, _| {
                if x + 3.0 > 0.0 && x + 3.0 < 6.0 {
                    1.0 / 6.0
                } else {
                    0.0
                }
            }),
            ActivationFn::Elu => each(pre, post, grad, |x, y| if x > 0.0 { 1.0 } else { y + 1.0 }),
            ActivationFn::Selu => each(pre, post, grad, |x, y| {
                if x > 0.0 {
                    SELU_SCALE
                } else {
                    y + SELU_SCALE * SELU_ALPHA
                }
            }),
            ActivationFn::Softplus => each(pre, post, grad, |x, _| sigmoid(x)),
            ActivationFn::Softsign => each(pre, post, grad, |x, _| {
                let d = 1.0 + x.abs();
                1.0 / (d * d)
            }),
            ActivationFn::Swish => each(pre, post, grad, |x, _| {
                let s = sigmoid(x);
                s * (1.0 + x * (1.0 - s))
            }),
            ActivationFn::Gelu => each(pre, post, grad, |x, _| {
                let x64 = f64::from(x);
                let cdf = 0.5 * (1.0 + erf(x64 * std::f64::consts::FRAC_1_SQRT_2));
                let pdf = (-0.5 * x64 * x64).exp() * 0.398_942_280_401_432_7;
                (cdf + x64 * pdf) as f32
            }),
            ActivationFn::Softmax => {
                let n = row_len.max(1);
                for (g, y) in grad.chunks_mut(n).zip(post.chunks(n)) {
                    let dot: f32 = g.iter().zip(y).map(|(a, b)| a * b).sum();
                    g.iter_mut()
                        .zip(y)
                        .for_each(|(gv, &yv)| *gv = yv * (*gv - dot));
                }
            }
        }
    }
);

crate::linalg::dispatched!(
    /// [`ActivationFn::apply_slice`] (in place, without `src`) and
    /// [`ActivationFn::apply_slice_into`] (`values = f(src)`), compiled for each instruction
    /// set.
    fn apply_slice_dispatched(
        f: ActivationFn,
        src: Option<&[f32]>,
        values: &mut [f32],
        row_len: usize,
    ) {
        #[inline(always)]
        fn each(src: Option<&[f32]>, values: &mut [f32], f: impl Fn(f32) -> f32) {
            match src {
                Some(src) => values.iter_mut().zip(src).for_each(|(v, &x)| *v = f(x)),
                None => values.iter_mut().for_each(|v| *v = f(*v)),
            }
        }
        // Softmax and linear work on `values` in place, from a copy of `src`.
        if let (Some(src), ActivationFn::Linear | ActivationFn::Softmax) = (src, f) {
            values.copy_from_slice(src);
        }
        match f {
            ActivationFn::Linear => {}
            ActivationFn::Tanh => each(src, values, tanh),
            ActivationFn::Relu => each(src, values, |x| x.max(0.0)),
            ActivationFn::Sigmoid => each(src, values, sigmoid),
            ActivationFn::HardSigmoid => each(src, values, |x| (0.2 * x + 0.5).clamp(0.0, 1.0)),
            ActivationFn::Softmax => {
                for row in values.chunks_mut(row_len.max(1)) {
                    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    row.iter_mut().for_each(|v| *v = (*v - max).exp());
                    let sum: f32 = row.iter().sum();
                    row.iter_mut().for_each(|v| *v /= sum);
                }
            }
            f => each(src, values, |x| f.apply(x)),
        }
    }
);

/// tanh as TensorFlow computes it on the CPU: Eigen's rational approximation
/// (`generic_fast_tanh_float`), within 4e-7 of the exact value, clamped at ±7.9988 and exact
/// (`x`) below 4e-4. Plain arithmetic, so loops over it vectorize.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Eigen's coefficients, as written there
pub(crate) fn tanh(a: f32) -> f32 {
    let x = a.clamp(-7.998_811_7, 7.998_811_7);
    let x2 = x * x;
    let mut p = x2 * -2.760_768_5e-16 + 2.000_187_9e-13;
    p = x2 * p + -8.604_671_5e-11;
    p = x2 * p + 5.122_297e-8;
    p = x2 * p + 1.485_722_4e-5;
    p = x2 * p + 6.372_619_3e-4;
    p = x2 * p + 4.893_524_6e-3;
    p *= x;
    let mut q = x2 * 1.198_258_4e-6 + 1.185_347_1e-4;
    q = x2 * q + 2.268_434_6e-3;
    q = x2 * q + 4.893_525e-3;
    if a.abs() < 0.0004 {
        a
    } else {
        p / q
    }
}

/// `1 / (1 + e^-x)` as TensorFlow computes it on the CPU, to the bit: Eigen's vectorized
/// `scalar_logistic_op<float>` (`e/(1 + e)` with `e = exp(x/2)²`, the exponential by Cephes's
/// range reduction and a degree-5 polynomial, multiplications and additions unfused). Near 1
/// the last bit decides `1 - p`, so the probability formulas on a sigmoid's output need it.
#[allow(clippy::excessive_precision)] // Eigen's coefficients, as written there
#[inline(always)]
pub(crate) fn sigmoid(a: f32) -> f32 {
    let x = a.min(16.635_532_4) * 0.5;
    let m = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = m * -0.693_359_375 + x;
    let r = m * 2.121_944_40e-4 + r;
    let r2 = r * r;
    let even = r2 * 4.189_866_781_234_741_210_937_5e-2 + 0.499_991_416_931_152_343_75;
    let odd = r2 * 8.334_713_056_683_540_344_238_281_25e-3 + 0.166_668_772_697_448_730_468_75;
    let p = r * odd + even;
    let p = r2 * p + (r + 1.0);
    // 2^m through the exponent bits, the biased exponent clamped to [0, 255] as Eigen's
    // `pldexp_fast` does (m is within [-53, 13] for every x that the select below keeps). The
    // integer comes from the low bits of `m + 127 + 2²³`, exact for integers below 2²³, not
    // from an `as` cast, which LLVM does one lane at a time.
    let biased = m.clamp(-127.0, 128.0) + (127.0 + 8_388_608.0);
    let e = p * f32::from_bits((biased.to_bits() - 8_388_608.0_f32.to_bits()) << 23);
    let e = e * e;
    // A select, not an early return, so that loops over it vectorize.
    if a < -104.0 {
        0.0
    } else {
        e / (1.0 + e)
    }
}

#[inline]
fn elu(x: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        x.exp_m1()
    }
}

#[inline]
fn gelu(x: f32) -> f32 {
    let x64 = f64::from(x);
    (0.5 * x64 * (1.0 + erf(x64 / std::f64::consts::SQRT_2))) as f32
}

/// The error function, from the complementary error function's Chebyshev fit (Numerical
/// Recipes' `erfcc`), fractional error below 1.2e-7 everywhere: finer than f32 needs.
fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - erfc
    } else {
        erfc - 1.0
    }
}

impl fmt::Display for ActivationFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ActivationFn {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        // tf_keras also accepts "silu" for swish and "None" for linear.
        let alias = match s {
            "silu" => "swish",
            "None" | "" => "linear",
            other => other,
        };
        ALL.iter()
            .find(|(_, n)| *n == alias)
            .map(|(a, _)| *a)
            .ok_or_else(|| Error::UnknownName {
                kind: "activation function",
                name: s.to_string(),
                message: format!(
                    "Unknown activation function '{s}' cannot be deserialized. Known names: {}",
                    ALL.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    /// Into another slice, every function gives the bits it gives in place (softmax over each
    /// row), and leaves its source as it was.
    #[test]
    fn apply_into_equals_apply_in_place() {
        let src: Vec<f32> = (0..40).map(|i| (i as f32 - 17.0) * 0.37).collect();
        let all = ALL
            .iter()
            .map(|(a, _)| *a)
            .chain([ActivationFn::HardSigmoidKeras3]);
        for f in all {
            let mut in_place = src.clone();
            f.apply_slice(&mut in_place, 8);
            let mut into = vec![f32::NAN; src.len()];
            let before = src.clone();
            f.apply_slice_into(&src, &mut into, 8);
            assert_eq!(src, before, "{f:?} changed its source");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&into), bits(&in_place), "{f:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for (a, n) in ALL {
            assert_eq!(a.name(), n);
            assert_eq!(n.parse::<ActivationFn>().unwrap(), a);
        }
    }

    #[test]
    fn unknown_name_is_an_error_naming_it() {
        let e = "nope".parse::<ActivationFn>().unwrap_err();
        assert!(matches!(e, Error::UnknownName { .. }));
        assert!(e
            .to_string()
            .starts_with("Unknown activation function 'nope' cannot be deserialized."));
    }

    #[test]
    fn tanh_is_within_4e7_of_exact() {
        let mut worst = 0.0_f64;
        for i in -120_000..120_000 {
            let x = i as f32 * 1e-4;
            worst = worst.max((f64::from(tanh(x)) - f64::from(x).tanh()).abs());
        }
        assert!(worst < 4e-7, "{worst}");
        let mut v = [-20.0, -1.0, 0.0, 1e-5, 0.5, 20.0];
        ActivationFn::Tanh.apply_slice(&mut v, 6);
        // tanh(0.5) = 0.46211716
        assert_abs_diff_eq!(v[4], 0.462_117_16, epsilon = 1e-6);
        assert_abs_diff_eq!(v[0], -1.0, epsilon = 1e-6);
        assert_eq!(v[3], 1e-5);
    }

    #[test]
    fn sigmoid_is_within_f32_precision() {
        // Eigen's e/(1 + e), as TensorFlow computes it, is within 4.1e-7 of 1/(1 + e^-x) here
        // (its worst, near x = -87, where e = exp(x/2)² loses bits).
        let mut worst = 0.0_f64;
        for i in -8_700..8_800 {
            let x = i as f32 * 0.01;
            let s = 1.0 / (1.0 + (-f64::from(x)).exp());
            worst = worst.max(((f64::from(sigmoid(x)) - s) / s).abs());
        }
        assert!(worst < 4.1e-7, "{worst}");
        // sigmoid(1) = 1 / (1 + e^-1) = 0.7310586
        assert_abs_diff_eq!(sigmoid(1.0), 0.731_058_6, epsilon = 1e-7);
        assert!(sigmoid(-200.0) < 1e-30);
        assert_eq!(sigmoid(200.0), 1.0);
    }

    #[test]
    fn keras3_hard_sigmoid_is_relu6_shifted() {
        // relu6(1 + 3) / 6 = 4/6; Keras 2's is 0.2 + 0.5 = 0.7.
        assert_abs_diff_eq!(
            ActivationFn::HardSigmoidKeras3.apply(1.0),
            4.0 / 6.0,
            epsilon = 1e-7
        );
        assert_eq!(ActivationFn::HardSigmoidKeras3.apply(-4.0), 0.0);
        assert_eq!(ActivationFn::HardSigmoidKeras3.apply(4.0), 1.0);
        assert_eq!(ActivationFn::HardSigmoidKeras3.name(), "hard_sigmoid");
    }

    #[test]
    fn hand_checked_values() {
        // hard_sigmoid(1) = 0.2 + 0.5 = 0.7; hard_sigmoid(3) clips to 1.
        assert_abs_diff_eq!(ActivationFn::HardSigmoid.apply(1.0), 0.7, epsilon = 1e-7);
        assert_abs_diff_eq!(ActivationFn::HardSigmoid.apply(3.0), 1.0);
        // gelu(1) = 0.5·(1 + erf(1/√2)) = 0.5·(1 + 0.6826895) = 0.8413447
        assert_abs_diff_eq!(ActivationFn::Gelu.apply(1.0), 0.841_344_7, epsilon = 1e-6);
        // selu(-1) = 1.0507010·1.6732632·(e^-1 - 1) = -1.1113307
        assert_abs_diff_eq!(ActivationFn::Selu.apply(-1.0), -1.111_330_7, epsilon = 1e-6);
        // softplus(0) = ln 2
        assert_abs_diff_eq!(ActivationFn::Softplus.apply(0.0), std::f32::consts::LN_2);
        // softplus of a large value does not overflow.
        assert_abs_diff_eq!(ActivationFn::Softplus.apply(100.0), 100.0);
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let mut a = ndarray::array![[1.0_f32, 2.0, 3.0], [1000.0, 1000.0, 1000.0]];
        ActivationFn::Softmax.apply_rows(a.view_mut());
        // e^1, e^2, e^3 over their sum: 0.0900306, 0.2447285, 0.6652410
        assert_abs_diff_eq!(a[[0, 0]], 0.090_030_6, epsilon = 1e-6);
        assert_abs_diff_eq!(a[[0, 2]], 0.665_241, epsilon = 1e-6);
        assert_abs_diff_eq!(a[[1, 1]], 1.0 / 3.0, epsilon = 1e-6);
    }
}
