//! The confusion-matrix metrics: AUC, Precision and Recall, accumulated per threshold.

/// The curve an [`Auc`](super::MetricKind::Auc) integrates: Keras's `curve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum AucCurve {
    /// `"ROC"` (Keras's default): the true positive rate against the false positive rate.
    #[default]
    Roc,
    /// `"PR"`: precision against recall.
    Pr,
}

/// How an [`Auc`](super::MetricKind::Auc) sums the curve: Keras's `summation_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum AucSummation {
    /// `"interpolation"` (Keras's default): trapezoids for ROC, and for PR the interpolation
    /// of Davis & Goadrich (2006), as Keras's `interpolate_pr_auc`.
    #[default]
    Interpolation,
    /// `"minoring"`: left or right heights, whichever is lower.
    Minoring,
    /// `"majoring"`: whichever is higher.
    Majoring,
}

/// True and false positives and negatives, one of each per threshold.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Counts {
    pub(crate) tp: Vec<f64>,
    pub(crate) fp: Vec<f64>,
    pub(crate) tn: Vec<f64>,
    pub(crate) fn_: Vec<f64>,
}

impl Counts {
    pub(crate) fn new(thresholds: usize) -> Self {
        Counts {
            tp: vec![0.0; thresholds],
            fp: vec![0.0; thresholds],
            tn: vec![0.0; thresholds],
            fn_: vec![0.0; thresholds],
        }
    }

    pub(crate) fn reset(&mut self) {
        for v in [&mut self.tp, &mut self.fp, &mut self.tn, &mut self.fn_] {
            v.fill(0.0);
        }
    }

    /// One prediction `p` with target `positive` and weight `w`, at a single threshold
    /// (`p > threshold` is positive).
    pub(crate) fn add_at(&mut self, threshold: f32, p: f32, positive: bool, w: f64) {
        match (positive, p > threshold) {
            (true, true) => self.tp[0] += w,
            (false, true) => self.fp[0] += w,
            (true, false) => self.fn_[0] += w,
            (false, false) => self.tn[0] += w,
        }
    }
}

/// An AUC's per-batch buckets, as Keras's `_update_confusion_matrix_variables_optimized`
/// fills them for evenly spaced thresholds: a score `p` (clipped to `[0, 1]`) is above the
/// thresholds `0 - eps, 1/(n-1), ..., (n-2)/(n-1)` below bucket `max(ceil(p·(n-1)) - 1, 0)`.
#[derive(Debug)]
pub(crate) struct Buckets {
    tp: Vec<f64>,
    fp: Vec<f64>,
    positives: f64,
    negatives: f64,
}

impl Buckets {
    pub(crate) fn new(thresholds: usize) -> Self {
        Buckets {
            tp: vec![0.0; thresholds],
            fp: vec![0.0; thresholds],
            positives: 0.0,
            negatives: 0.0,
        }
    }

    pub(crate) fn add(&mut self, p: f32, positive: bool, w: f64) {
        let n = self.tp.len();
        let p = p.clamp(0.0, 1.0);
        let bucket = ((p * (n - 1) as f32).ceil() - 1.0).max(0.0) as usize;
        if positive {
            self.tp[bucket] += w;
            self.positives += w;
        } else {
            self.fp[bucket] += w;
            self.negatives += w;
        }
    }

    /// Adds the batch into the running counts: the positives above each threshold are the
    /// buckets' reverse cumulative sums.
    pub(crate) fn into_counts(self, counts: &mut Counts) {
        let (mut tp, mut fp) = (0.0, 0.0);
        for i in (0..self.tp.len()).rev() {
            tp += self.tp[i];
            fp += self.fp[i];
            counts.tp[i] += tp;
            counts.fp[i] += fp;
            counts.tn[i] += self.negatives - fp;
            counts.fn_[i] += self.positives - tp;
        }
    }
}

/// `a / b`, 0 where `b` is 0 (TensorFlow's `divide_no_nan`).
pub(crate) fn divide_no_nan(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

/// Keras's `AUC.result()`.
pub(crate) fn auc(c: &Counts, curve: AucCurve, summation: AucSummation) -> f64 {
    let n = c.tp.len();
    if curve == AucCurve::Pr && summation == AucSummation::Interpolation {
        return interpolate_pr_auc(c);
    }
    let recall: Vec<f64> = (0..n)
        .map(|i| divide_no_nan(c.tp[i], c.tp[i] + c.fn_[i]))
        .collect();
    let (x, y): (Vec<f64>, Vec<f64>) = match curve {
        AucCurve::Roc => {
            let fpr = (0..n).map(|i| divide_no_nan(c.fp[i], c.fp[i] + c.tn[i]));
            (fpr.collect(), recall)
        }
        AucCurve::Pr => {
            let precision = (0..n).map(|i| divide_no_nan(c.tp[i], c.tp[i] + c.fp[i]));
            (recall, precision.collect())
        }
    };
    (0..n - 1)
        .map(|i| {
            let height = match summation {
                AucSummation::Interpolation => (y[i] + y[i + 1]) / 2.0,
                AucSummation::Minoring => y[i].min(y[i + 1]),
                AucSummation::Majoring => y[i].max(y[i + 1]),
            };
            (x[i] - x[i + 1]) * height
        })
        .sum()
}

/// Keras's `interpolate_pr_auc`: between two thresholds precision is interpolated along the
/// true positives, and the area integrated in closed form.
fn interpolate_pr_auc(c: &Counts) -> f64 {
    let n = c.tp.len();
    let p: Vec<f64> = (0..n).map(|i| c.tp[i] + c.fp[i]).collect();
    (0..n - 1)
        .map(|i| {
            let dtp = c.tp[i] - c.tp[i + 1];
            let dp = p[i] - p[i + 1];
            let slope = divide_no_nan(dtp, dp.max(0.0));
            let intercept = c.tp[i + 1] - slope * p[i + 1];
            let ratio = if p[i] > 0.0 && p[i + 1] > 0.0 {
                divide_no_nan(p[i], p[i + 1].max(0.0))
            } else {
                1.0
            };
            divide_no_nan(
                slope * (dtp + intercept * ratio.ln()),
                (c.tp[i + 1] + c.fn_[i + 1]).max(0.0),
            )
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_keras_thresholds() {
        // 3 thresholds: -eps, 0.5, 1 + eps. Scores 0 (bucket 0: above -eps only), 0.5
        // (ceil(1) - 1 = 0: not above 0.5) and 0.7 (ceil(1.4) - 1 = 1: above 0.5).
        let mut b = Buckets::new(3);
        b.add(0.0, false, 1.0);
        b.add(0.5, true, 1.0);
        b.add(0.7, true, 1.0);
        let mut c = Counts::new(3);
        b.into_counts(&mut c);
        assert_eq!(c.tp, vec![2.0, 1.0, 0.0]);
        assert_eq!(c.fp, vec![1.0, 0.0, 0.0]);
        assert_eq!(c.tn, vec![0.0, 1.0, 1.0]);
        assert_eq!(c.fn_, vec![0.0, 1.0, 2.0]);
        // ROC points (fpr, tpr): (1, 1), (0, 0.5), (0, 0): trapezoids 1·(1 + 0.5)/2 = 0.75.
        assert!((auc(&c, AucCurve::Roc, AucSummation::Interpolation) - 0.75).abs() < 1e-12);
        // Minoring takes the lower height, 0.5; majoring the higher, 1.
        assert!((auc(&c, AucCurve::Roc, AucSummation::Minoring) - 0.5).abs() < 1e-12);
        assert!((auc(&c, AucCurve::Roc, AucSummation::Majoring) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_perfect_ranking_has_an_auc_of_one() {
        let mut b = Buckets::new(200);
        for (p, positive) in [(0.1, false), (0.2, false), (0.8, true), (0.9, true)] {
            b.add(p, positive, 1.0);
        }
        let mut c = Counts::new(200);
        b.into_counts(&mut c);
        assert!((auc(&c, AucCurve::Roc, AucSummation::Interpolation) - 1.0).abs() < 1e-12);
        assert!((auc(&c, AucCurve::Pr, AucSummation::Interpolation) - 1.0).abs() < 1e-9);
    }
}
