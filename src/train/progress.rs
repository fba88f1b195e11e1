//! `fit`'s progress, as tf_keras's `Progbar` prints it: `Epoch 1/10`, then
//! `32/32 [==============================] - 1s 12ms/step - loss: 0.6931 - ...`.
//!
//! With `verbose=1` on a terminal (and the `progress` feature), the bar updates in place after
//! each batch, with the running averages, through indicatif; elsewhere one line per epoch, the
//! bar's last state. `verbose=2` prints tf_keras's line per epoch:
//! `32/32 - 1s - loss: 0.6931 - val_loss: 0.6920 - 1s/epoch - 12ms/step`.

use std::io::Write;
use std::time::Duration;

/// The progress of one epoch.
pub(crate) struct Progress {
    verbose: u8,
    steps: usize,
    #[cfg(feature = "progress")]
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// Starts epoch `epoch` (from 0) of `epochs`, of `steps` batches.
    pub(crate) fn epoch(verbose: u8, epoch: usize, epochs: usize, steps: usize) -> Self {
        if verbose > 0 {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "Epoch {}/{}", epoch + 1, epochs);
            let _ = out.flush();
        }
        Progress {
            verbose,
            steps,
            #[cfg(feature = "progress")]
            bar: live_bar(verbose, steps),
        }
    }

    /// After batch `done` (from 1), with the running values.
    pub(crate) fn step(&self, done: usize, logs: &[(String, f32)]) {
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.set_message(values(logs, f32::abs));
            bar.set_position(done as u64);
        }
        let _ = (done, logs);
    }

    /// The epoch's line, with its time and final values.
    pub(crate) fn finish(self, elapsed: Duration, logs: &[(String, f32)]) {
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.verbose == 0 {
            return;
        }
        let steps = self.steps;
        let seconds = elapsed.as_secs_f64();
        let per_step = seconds / steps.max(1) as f64;
        let line = if self.verbose == 1 {
            format!(
                "{steps}/{steps} [==============================] - {seconds:.0}s{}{}",
                time_text(per_step, "step"),
                values(logs, f32::abs)
            )
        } else {
            // tf_keras's `verbose=2` compares the value, not its magnitude, with 1e-3.
            format!(
                "{steps}/{steps} - {seconds:.0}s{} -{} -{}",
                values(logs, |v| v),
                time_text(seconds, "epoch"),
                time_text(per_step, "step")
            )
        };
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{line}");
    }
}

/// tf_keras's Progbar `_format_time`: ` 2s/step`, ` 12ms/step`, ` 66us/step` (and ` 0s/step`).
fn time_text(seconds: f64, unit: &str) -> String {
    if seconds >= 1.0 || seconds == 0.0 {
        format!(" {seconds:.0}s/{unit}")
    } else if seconds >= 1e-3 {
        format!(" {:.0}ms/{unit}", seconds * 1e3)
    } else {
        format!(" {:.0}us/{unit}", seconds * 1e6)
    }
}

/// A value as the Progbar prints it: `0.6931`, or `1.2346e-04` when `size(v)` is not above 1e-3.
fn value_text(v: f32, size: impl Fn(f32) -> f32) -> String {
    if size(v) > 1e-3 {
        return format!("{v:.4}");
    }
    // Python's `.4e`: a sign and at least two digits in the exponent.
    let rust = format!("{v:.4e}");
    match rust.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => rust,
    }
}

/// ` - loss: 0.6931 - accuracy: 0.5000`.
fn values(logs: &[(String, f32)], size: impl Fn(f32) -> f32 + Copy) -> String {
    logs.iter()
        .map(|(k, v)| format!(" - {k}: {}", value_text(*v, size)))
        .collect()
}

/// A bar updated in place, for `verbose=1` on a terminal.
#[cfg(feature = "progress")]
fn live_bar(verbose: u8, steps: usize) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if verbose != 1 || !std::io::stdout().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(steps as u64),
        indicatif::ProgressDrawTarget::stdout(),
    );
    let style = indicatif::ProgressStyle::with_template("{pos}/{len} [{bar:30}] - {elapsed}{msg}")
        .ok()?
        .progress_chars("=> ");
    bar.set_style(style);
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_values_are_printed_as_the_progbar_prints_them() {
        // Python: Progbar._format_time and f"{avg:.4f}" / f"{avg:.4e}".
        assert_eq!(time_text(2.4, "step"), " 2s/step");
        assert_eq!(time_text(0.012, "step"), " 12ms/step");
        assert_eq!(time_text(0.000_066, "step"), " 66us/step");
        assert_eq!(time_text(0.0, "epoch"), " 0s/epoch");
        assert_eq!(
            values(
                &[("loss".into(), 0.812_345), ("accuracy".into(), 0.5)],
                f32::abs
            ),
            " - loss: 0.8123 - accuracy: 0.5000"
        );
        assert_eq!(value_text(0.000_123_456, f32::abs), "1.2346e-04");
        assert_eq!(value_text(2.5e-12, f32::abs), "2.5000e-12");
        assert_eq!(value_text(0.0, f32::abs), "0.0000e+00");
        // verbose=1 compares the magnitude, verbose=2 the value.
        assert_eq!(value_text(-0.5, f32::abs), "-0.5000");
        assert_eq!(value_text(-0.5, |v| v), "-5.0000e-01");
    }
}
