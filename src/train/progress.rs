//! `fit`'s progress, as tf_keras's `Progbar` prints it: `Epoch 1/10`, then
//! `32/32 [==============================] - 1s 12ms/step - loss: 0.6931 - ...`.
//!
//! With `verbose=1` on a terminal (and the `progress` feature), the bar updates in place after
//! each batch, with the running averages, through indicatif; elsewhere, and with `verbose=2`,
//! one line per epoch.

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
            bar.set_message(values(logs));
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
        let per_step = elapsed.as_secs_f64() / steps.max(1) as f64;
        let per_step = per_step_text(per_step);
        let bar = if self.verbose == 1 {
            " [==============================]"
        } else {
            ""
        };
        let mut out = std::io::stdout();
        let _ = writeln!(
            out,
            "{steps}/{steps}{bar} - {}s {per_step}{}",
            elapsed.as_secs(),
            values(logs)
        );
    }
}

/// tf_keras's Progbar: seconds, milliseconds or microseconds per step.
fn per_step_text(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.0}s/step")
    } else if seconds >= 1e-3 {
        format!("{:.0}ms/step", seconds * 1e3)
    } else {
        format!("{:.0}us/step", seconds * 1e6)
    }
}

/// ` - loss: 0.6931 - accuracy: 0.5000`.
fn values(logs: &[(String, f32)]) -> String {
    logs.iter()
        .map(|(k, v)| format!(" - {k}: {v:.4}"))
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
    fn times_per_step_are_in_keras_units() {
        assert_eq!(per_step_text(2.4), "2s/step");
        assert_eq!(per_step_text(0.012), "12ms/step");
        assert_eq!(per_step_text(0.000_066), "66us/step");
        assert_eq!(
            values(&[("loss".into(), 0.812_345), ("accuracy".into(), 0.5)]),
            " - loss: 0.8123 - accuracy: 0.5000"
        );
    }
}
