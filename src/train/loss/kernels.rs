//! One row of a loss: the value over the reduced axis and its gradient, in one pass.
//!
//! Each kernel computes as TensorFlow does in float32 (clipping at epsilon, the `+ eps` inside
//! logarithms, the gradient of a clip being zero outside its range), so that saturated outputs
//! give Keras's numbers, not only the mathematically equal ones.

pub(crate) use crate::activation::sigmoid;

/// Keras's backend epsilon, `keras.backend.epsilon()`.
pub(crate) const EPSILON: f32 = 1e-7;

/// The target of one row: the values of `y_true` along the reduced axis, or a sparse label.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'r> {
    Dense(&'r [f32]),
    Label(usize),
}

impl<'r> Target<'r> {
    fn dense(self) -> &'r [f32] {
        match self {
            Target::Dense(t) => t,
            Target::Label(_) => unreachable!("a dense kernel was given a sparse label"),
        }
    }

    fn label(self) -> usize {
        match self {
            Target::Label(l) => l,
            Target::Dense(_) => unreachable!("a sparse kernel was given dense targets"),
        }
    }
}

/// A loss's arithmetic on one row, with the options and the dialect's choices resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kernel {
    Mse,
    Mae,
    Mape,
    Msle,
    Huber(f32),
    LogCosh,
    Kld,
    Poisson,
    /// `convert`: every target of the batch is 0 or 1, so they become -1 and 1.
    Hinge {
        convert: bool,
    },
    SquaredHinge {
        convert: bool,
    },
    CategoricalHinge,
    /// `tf`: tf.linalg.l2_normalize's floor (1e-12 on the squared norm); Keras 3 floors the
    /// norm at epsilon instead.
    Cosine {
        tf: bool,
    },
    /// `tf`: tf_keras's `log(p + eps)` and `log((1 + eps) - p)` (as `fit`'s graph computes
    /// `log(1 - p + eps)`); Keras 3 has no `+ eps`.
    BceProbabilities {
        smoothing: f32,
        tf: bool,
    },
    BceLogits {
        smoothing: f32,
    },
    CceProbabilities {
        smoothing: f32,
    },
    CceLogits {
        smoothing: f32,
    },
    ScceProbabilities,
    ScceLogits,
}

impl Kernel {
    /// The loss of one row of predictions `p`; with `g`, writes `scale · ∂loss/∂p` into it.
    pub(crate) fn row(self, t: Target<'_>, p: &[f32], g: Option<&mut [f32]>, scale: f32) -> f32 {
        const ONE_MINUS: f32 = 1.0 - EPSILON;
        match self {
            Kernel::Mse => mean(t, p, g, scale, |t, p| {
                let d = p - t;
                (d * d, 2.0 * d)
            }),
            Kernel::Mae => mean(t, p, g, scale, |t, p| ((p - t).abs(), sign(p - t))),
            Kernel::Mape => mean(t, p, g, scale, |t, p| {
                let d = t.abs().max(EPSILON);
                (100.0 * ((t - p) / d).abs(), 100.0 * sign(p - t) / d)
            }),
            Kernel::Msle => mean(t, p, g, scale, |t, p| {
                let q = p.max(EPSILON) + 1.0;
                let d = q.ln() - (t.max(EPSILON) + 1.0).ln();
                let dq = if p >= EPSILON { 2.0 * d / q } else { 0.0 };
                (d * d, dq)
            }),
            Kernel::Huber(delta) => mean(t, p, g, scale, |t, p| {
                let e = p - t;
                if e.abs() <= delta {
                    (0.5 * e * e, e)
                } else {
                    (delta * e.abs() - 0.5 * delta * delta, delta * sign(e))
                }
            }),
            Kernel::LogCosh => mean(t, p, g, scale, |t, p| {
                let x = p - t;
                // x + softplus(-2x) - ln 2, in its stable form |x| + ln(1 + e^(-2|x|)) - ln 2.
                let v = x.abs() + (-2.0 * x.abs()).exp().ln_1p() - std::f32::consts::LN_2;
                (v, x.tanh())
            }),
            Kernel::Kld => sum(t, p, g, scale, |t, p| {
                let t = t.clamp(EPSILON, 1.0);
                let q = p.clamp(EPSILON, 1.0);
                let inside = (EPSILON..=1.0).contains(&p);
                (t * (t / q).ln(), if inside { -t / q } else { 0.0 })
            }),
            Kernel::Poisson => mean(t, p, g, scale, |t, p| {
                (p - t * (p + EPSILON).ln(), 1.0 - t / (p + EPSILON))
            }),
            Kernel::Hinge { convert } => mean(t, p, g, scale, |t, p| {
                let t = if convert { 2.0 * t - 1.0 } else { t };
                let m = 1.0 - t * p;
                if m >= 0.0 {
                    (m, -t)
                } else {
                    (0.0, 0.0)
                }
            }),
            Kernel::SquaredHinge { convert } => mean(t, p, g, scale, |t, p| {
                let t = if convert { 2.0 * t - 1.0 } else { t };
                let m = (1.0 - t * p).max(0.0);
                (m * m, -2.0 * t * m)
            }),
            Kernel::CategoricalHinge => categorical_hinge(t.dense(), p, g, scale),
            Kernel::Cosine { tf } => cosine(t.dense(), p, g, scale, tf),
            Kernel::BceProbabilities { smoothing, tf } => mean(t, p, g, scale, |t, p| {
                let t = smooth_binary(t, smoothing);
                let q = p.clamp(EPSILON, ONE_MINUS);
                let inside = (EPSILON..=ONE_MINUS).contains(&p);
                let (a, b) = if tf {
                    (q + EPSILON, (1.0 + EPSILON) - q)
                } else {
                    (q, 1.0 - q)
                };
                let v = -(t * a.ln() + (1.0 - t) * b.ln());
                (v, if inside { -t / a + (1.0 - t) / b } else { 0.0 })
            }),
            Kernel::BceLogits { smoothing } => mean(t, p, g, scale, |t, x| {
                let t = smooth_binary(t, smoothing);
                // tf.nn.sigmoid_cross_entropy_with_logits: max(x, 0) - x·t + log(1 + e^-|x|).
                let v = x.max(0.0) - x * t + (-x.abs()).exp().ln_1p();
                (v, sigmoid(x) - t)
            }),
            Kernel::CceProbabilities { smoothing } => {
                cce_probabilities(t.dense(), p, g, scale, smoothing)
            }
            Kernel::CceLogits { smoothing } => cce_logits(t.dense(), p, g, scale, smoothing),
            Kernel::ScceProbabilities => scce_probabilities(t.label(), p, g, scale),
            Kernel::ScceLogits => scce_logits(t.label(), p, g, scale),
        }
    }
}

/// `sign(x)`, 0 at 0 (TensorFlow's gradient of `abs`).
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Binary label smoothing: `t·(1 - s) + s/2`.
fn smooth_binary(t: f32, s: f32) -> f32 {
    if s == 0.0 {
        t
    } else {
        t * (1.0 - s) + 0.5 * s
    }
}

/// Categorical label smoothing over `c` classes: `t·(1 - s) + s/c`.
fn smooth_categorical(t: f32, s: f32, c: usize) -> f32 {
    if s == 0.0 {
        t
    } else {
        t * (1.0 - s) + s / c as f32
    }
}

/// An element-wise loss averaged over the row: `f(t, p)` gives the element's value and its
/// derivative with respect to `p`.
fn mean(
    t: Target<'_>,
    p: &[f32],
    g: Option<&mut [f32]>,
    scale: f32,
    f: impl Fn(f32, f32) -> (f32, f32),
) -> f32 {
    let n = p.len() as f32;
    sum(t, p, g, scale / n, f) / n
}

/// An element-wise loss summed over the row.
fn sum(
    t: Target<'_>,
    p: &[f32],
    g: Option<&mut [f32]>,
    scale: f32,
    f: impl Fn(f32, f32) -> (f32, f32),
) -> f32 {
    let t = t.dense();
    let mut total = 0.0f64;
    match g {
        Some(g) => {
            for ((&t, &p), g) in t.iter().zip(p).zip(g) {
                let (v, d) = f(t, p);
                total += f64::from(v);
                *g = scale * d;
            }
        }
        None => {
            for (&t, &p) in t.iter().zip(p) {
                total += f64::from(f(t, p).0);
            }
        }
    }
    total as f32
}

/// `max(neg - pos + 1, 0)` with `pos = Σ t·p` and `neg = max((1 - t)·p)`; the gradient of the
/// max is shared between ties, as TensorFlow's `reduce_max` shares it.
fn categorical_hinge(t: &[f32], p: &[f32], g: Option<&mut [f32]>, scale: f32) -> f32 {
    let pos: f32 = t.iter().zip(p).map(|(t, p)| t * p).sum();
    let neg = t
        .iter()
        .zip(p)
        .map(|(t, p)| (1.0 - t) * p)
        .fold(f32::NEG_INFINITY, f32::max);
    let m = neg - pos + 1.0;
    if let Some(g) = g {
        if m >= 0.0 {
            let ties = t
                .iter()
                .zip(p)
                .filter(|&(t, p)| (1.0 - t) * p == neg)
                .count() as f32;
            for ((g, &t), &p) in g.iter_mut().zip(t).zip(p) {
                let at_max = if (1.0 - t) * p == neg {
                    (1.0 - t) / ties
                } else {
                    0.0
                };
                *g = scale * (at_max - t);
            }
        } else {
            g.fill(0.0);
        }
    }
    m.max(0.0)
}

/// `-Σ normalize(t)·normalize(p)`, `normalize(x) = x·min(1/‖x‖, k)` with tf_keras's `k = 1e6`
/// (`l2_normalize`'s floor of 1e-12 on ‖x‖²) or Keras 3's `k = 1/epsilon`.
fn cosine(t: &[f32], p: &[f32], g: Option<&mut [f32]>, scale: f32, tf: bool) -> f32 {
    let inverse_norm = |x: &[f32]| -> (f32, bool) {
        let s: f32 = x.iter().map(|v| v * v).sum();
        if tf {
            (1.0 / s.max(1e-12).sqrt(), s < 1e-12)
        } else {
            let r = 1.0 / s.sqrt();
            (r.min(1.0 / EPSILON), r > 1.0 / EPSILON || r.is_nan())
        }
    };
    let (kt, _) = inverse_norm(t);
    let (kp, floored) = inverse_norm(p);
    let dot: f32 = t.iter().zip(p).map(|(t, p)| (t * kt) * (p * kp)).sum();
    if let Some(g) = g {
        for ((g, &t), &p) in g.iter_mut().zip(t).zip(p) {
            let nt = t * kt;
            // ∂/∂p of -Σ nt·p·k: -k·(nt - (nt·np)·np) when k = 1/‖p‖, -k·nt when floored.
            let d = if floored { nt } else { nt - dot * (p * kp) };
            *g = -scale * kp * d;
        }
    }
    -dot
}

/// Categorical crossentropy of probabilities: `p / Σp`, clipped to `[eps, 1 - eps]`, then
/// `-Σ t·log(q)`.
fn cce_probabilities(
    t: &[f32],
    p: &[f32],
    g: Option<&mut [f32]>,
    scale: f32,
    smoothing: f32,
) -> f32 {
    let c = p.len();
    let s: f32 = p.iter().sum();
    let mut total = 0.0f64;
    let mut weighted = 0.0f64; // Σ h_i·o_i, for the gradient through the normalization
    for (&t, &p) in t.iter().zip(p) {
        let t = smooth_categorical(t, smoothing, c);
        let o = p / s;
        let q = o.clamp(EPSILON, 1.0 - EPSILON);
        total -= f64::from(t * q.ln());
        if (EPSILON..=1.0 - EPSILON).contains(&o) {
            weighted += f64::from(-t / q * o);
        }
    }
    if let Some(g) = g {
        let weighted = weighted as f32;
        for ((g, &t), &p) in g.iter_mut().zip(t).zip(p) {
            let t = smooth_categorical(t, smoothing, c);
            let o = p / s;
            let h = if (EPSILON..=1.0 - EPSILON).contains(&o) {
                -t / o
            } else {
                0.0
            };
            *g = scale * (h - weighted) / s;
        }
    }
    total as f32
}

/// `log Σ e^x`, shifted by the max.
fn log_sum_exp(x: &[f32]) -> (f32, f32) {
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let s: f32 = x.iter().map(|v| (v - m).exp()).sum();
    (m + s.ln(), m)
}

/// tf.nn.softmax_cross_entropy_with_logits: `Σ t·(lse(x) - x)`; its gradient is
/// `softmax(x) - t`, as TensorFlow's fused kernel gives it even for targets that do not sum to 1.
fn cce_logits(t: &[f32], x: &[f32], g: Option<&mut [f32]>, scale: f32, smoothing: f32) -> f32 {
    let c = x.len();
    let (lse, _) = log_sum_exp(x);
    let total: f64 = t
        .iter()
        .zip(x)
        .map(|(&t, &x)| f64::from(smooth_categorical(t, smoothing, c) * (lse - x)))
        .sum();
    if let Some(g) = g {
        for ((g, &t), &x) in g.iter_mut().zip(t).zip(x) {
            *g = scale * ((x - lse).exp() - smooth_categorical(t, smoothing, c));
        }
    }
    total as f32
}

/// Sparse categorical crossentropy of probabilities, as Keras computes it: the clipped
/// probabilities' logarithms through tf.nn.sparse_softmax_cross_entropy_with_logits, that is
/// `log Σ q - log q_y` (which normalizes probabilities that do not sum to 1).
fn scce_probabilities(y: usize, p: &[f32], g: Option<&mut [f32]>, scale: f32) -> f32 {
    let clip = |p: f32| p.clamp(EPSILON, 1.0 - EPSILON);
    let s: f32 = p.iter().map(|&p| clip(p)).sum();
    let value = s.ln() - clip(p[y]).ln();
    if let Some(g) = g {
        for (k, (g, &p)) in g.iter_mut().zip(p).enumerate() {
            let q = clip(p);
            let d = q / s - if k == y { 1.0 } else { 0.0 };
            *g = if (EPSILON..=1.0 - EPSILON).contains(&p) {
                scale * d / q
            } else {
                0.0
            };
        }
    }
    value
}

/// tf.nn.sparse_softmax_cross_entropy_with_logits: `lse(x) - x_y`, gradient `softmax - onehot`.
fn scce_logits(y: usize, x: &[f32], g: Option<&mut [f32]>, scale: f32) -> f32 {
    let (lse, _) = log_sum_exp(x);
    if let Some(g) = g {
        for (k, (g, &x)) in g.iter_mut().zip(x).enumerate() {
            *g = scale * ((x - lse).exp() - if k == y { 1.0 } else { 0.0 });
        }
    }
    lse - x[y]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_and_grad(k: Kernel, t: Target<'_>, p: &[f32]) -> (f32, Vec<f32>) {
        let mut g = vec![0.0; p.len()];
        let v = k.row(t, p, Some(&mut g), 1.0);
        (v, g)
    }

    /// Central differences in f64 of the kernel's value, against its gradient.
    fn check_gradient(k: Kernel, t: Target<'_>, p: &[f32], tol: f32) {
        let (_, g) = value_and_grad(k, t, p);
        for i in 0..p.len() {
            let h = 1e-3f32;
            let mut hi = p.to_vec();
            hi[i] += h;
            let mut lo = p.to_vec();
            lo[i] -= h;
            let numeric = (k.row(t, &hi, None, 1.0) - k.row(t, &lo, None, 1.0)) / (2.0 * h);
            assert!(
                (numeric - g[i]).abs() <= tol * (1.0 + numeric.abs()),
                "{k:?} element {i}: numeric {numeric}, analytic {}",
                g[i]
            );
        }
    }

    #[test]
    fn mse_by_hand() {
        // ((0.5 - 1)² + (2 - 0)²) / 2 = (0.25 + 4) / 2 = 2.125; ∂/∂p = 2(p - t)/2 = (-0.5, 2).
        let (v, g) = value_and_grad(Kernel::Mse, Target::Dense(&[1.0, 0.0]), &[0.5, 2.0]);
        assert!((v - 2.125).abs() < 1e-6);
        assert_eq!(g, vec![-0.5, 2.0]);
    }

    #[test]
    fn huber_switches_at_delta() {
        // e = 0.5 ≤ 1: 0.5·0.25 = 0.125; e = -3 > 1: 1·3 - 0.5 = 2.5; mean 1.3125.
        let (v, g) = value_and_grad(Kernel::Huber(1.0), Target::Dense(&[0.0, 3.0]), &[0.5, 0.0]);
        assert!((v - 1.3125).abs() < 1e-6);
        // ∂/∂p: 0.5/2 = 0.25 and δ·sign(-3)/2 = -0.5.
        assert_eq!(g, vec![0.25, -0.5]);
    }

    #[test]
    fn bce_saturates_at_epsilon() {
        // p = 0 with t = 1: tf_keras clips to 1e-7 and takes log(1e-7 + 1e-7) = ln(2e-7)
        // = -15.424949; Keras 3 takes ln(1e-7) = -16.118095. Outside the clip: no gradient.
        let t = Target::Dense(&[1.0]);
        let tf = Kernel::BceProbabilities {
            smoothing: 0.0,
            tf: true,
        };
        let k3 = Kernel::BceProbabilities {
            smoothing: 0.0,
            tf: false,
        };
        let (v, g) = value_and_grad(tf, t, &[0.0]);
        assert!((v - 15.424949).abs() < 1e-4, "{v}");
        assert_eq!(g, vec![0.0]);
        assert!((k3.row(t, &[0.0], None, 1.0) - 16.118095).abs() < 1e-4);
    }

    #[test]
    fn bce_logits_by_hand() {
        // x = 0, t = 1: max(0, 0) - 0 + ln 2 = 0.693147; ∂/∂x = σ(0) - 1 = -0.5.
        let (v, g) = value_and_grad(
            Kernel::BceLogits { smoothing: 0.0 },
            Target::Dense(&[1.0]),
            &[0.0],
        );
        assert!((v - std::f32::consts::LN_2).abs() < 1e-6);
        assert_eq!(g, vec![-0.5]);
    }

    #[test]
    fn sparse_softmax_by_hand() {
        // x = (0, ln 3): softmax (1/4, 3/4); label 1: -ln(3/4) = 0.287682; ∂ = (1/4, -1/4).
        let (v, g) = value_and_grad(Kernel::ScceLogits, Target::Label(1), &[0.0, 3f32.ln()]);
        assert!((v - 0.287_682).abs() < 1e-6);
        assert!((g[0] - 0.25).abs() < 1e-6 && (g[1] + 0.25).abs() < 1e-6);
    }

    #[test]
    fn sigmoid_is_tensorflows() {
        // tf.sigmoid's float32 values (tensorflow-cpu 2.21), to the bit.
        let tf = [
            (0.0, 0.5),
            (14.3, 0.999_999_4),
            (15.5, 0.999_999_8),
            (16.0, 0.999_999_9),
            (12.0, 0.999_993_86),
            (-3.0, 0.047_425_866),
            (30.0, 1.0),
            (-105.0, 0.0),
        ];
        for (x, want) in tf {
            assert_eq!(sigmoid(x), want, "sigmoid({x})");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let t = [0.2, 0.7, 0.1];
        let labels = [1.0, 0.0, 1.0];
        let p = [0.3, 0.5, 0.9];
        let dense = Target::Dense(&t);
        for k in [
            Kernel::Mse,
            Kernel::Mape,
            Kernel::Msle,
            Kernel::Huber(0.25),
            Kernel::LogCosh,
            Kernel::Kld,
            Kernel::Poisson,
            Kernel::Cosine { tf: true },
            Kernel::Cosine { tf: false },
            Kernel::CceProbabilities { smoothing: 0.1 },
            Kernel::CceLogits { smoothing: 0.0 },
        ] {
            check_gradient(k, dense, &p, 2e-3);
        }
        for k in [
            Kernel::BceProbabilities {
                smoothing: 0.2,
                tf: true,
            },
            Kernel::BceLogits { smoothing: 0.1 },
            Kernel::Hinge { convert: true },
            Kernel::SquaredHinge { convert: true },
            Kernel::CategoricalHinge,
        ] {
            check_gradient(k, Target::Dense(&labels), &p, 2e-3);
        }
        check_gradient(Kernel::ScceProbabilities, Target::Label(2), &p, 2e-3);
        check_gradient(Kernel::ScceLogits, Target::Label(0), &p, 2e-3);
    }
}
