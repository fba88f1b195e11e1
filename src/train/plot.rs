//! [`History::plot`]: the training curves as a PNG or an SVG, as the matplotlib cell of every
//! Keras course draws them (feature `plot`).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::train::History;

/// The size of one panel, in pixels.
const PANEL: (u32, u32) = (640, 400);

/// The font every text of a plot is drawn with, embedded (DejaVu Sans), registered once.
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // DejaVu Sans is a valid TrueType font: registering it cannot fail.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::InvalidArgument {
        layer: "History::plot".into(),
        message: format!("cannot draw {}: {e}", path.display()),
    }
}

/// The panels: each logged name without `val_` (`loss` first), with its `val_` twin if any.
fn panels(history: &History) -> Vec<(String, Option<String>)> {
    let mut names: Vec<&String> = history
        .history()
        .keys()
        .filter(|k| !k.starts_with("val_"))
        .collect();
    names.sort_by_key(|k| (k.as_str() != "loss", k.as_str()));
    names
        .into_iter()
        .map(|k| {
            let val = format!("val_{k}");
            let has_val = history.history().contains_key(&val);
            (k.clone(), has_val.then_some(val))
        })
        .collect()
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    history: &History,
    panels: &[(String, Option<String>)],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let areas = root.split_evenly((panels.len(), 1));
    let epochs: Vec<f64> = history.epoch().iter().map(|&e| e as f64 + 1.0).collect();
    let (first, last) = (
        epochs.first().copied().unwrap_or(1.0),
        epochs.last().copied().unwrap_or(1.0),
    );
    for (area, (name, val)) in areas.iter().zip(panels) {
        let series = |key: &str| -> Vec<(f64, f64)> {
            let values = history.get(key).unwrap_or(&[]);
            epochs
                .iter()
                .zip(values)
                .filter(|(_, v)| v.is_finite())
                .map(|(&e, &v)| (e, f64::from(v)))
                .collect()
        };
        let train = series(name);
        let valid = val.as_deref().map(series).unwrap_or_default();
        let (lo, hi) = train
            .iter()
            .chain(&valid)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, v)| {
                (lo.min(v), hi.max(v))
            });
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.05).max(1e-6);
        let x_hi = if last > first { last } else { first + 1.0 };
        let mut chart = ChartBuilder::on(area)
            .caption(name, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(first..x_hi, (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .x_desc("Epoch")
            .y_desc(name.as_str())
            .label_style(("sans-serif", 13))
            .draw()?;
        let blue = RGBColor(31, 119, 180);
        let orange = RGBColor(255, 127, 14);
        chart
            .draw_series(LineSeries::new(train, blue.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2))
            });
        if let Some(val) = val {
            chart
                .draw_series(DashedLineSeries::new(valid, 8, 5, orange.stroke_width(2)))?
                .label(val.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], orange.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    root.present()
}

impl History {
    /// Draws the curves of every logged value into `path`, a PNG (`.png`) or an SVG (`.svg`):
    /// one panel per value (`loss` first, then the metrics), against the epoch (from 1), the
    /// training curve solid and its `val_` twin dashed, as the matplotlib cell of a Keras
    /// course draws `history.history`. Feature `plot`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ndarray::{Array2, Array3};
    /// use seqnn::{Dense, FitOptions, Sequential, SimpleRNN};
    /// let mut model = Sequential::new();
    /// model.add(SimpleRNN::new(3).input_shape((2, 4)))?;
    /// model.add(Dense::new(1))?;
    /// model.compile("sgd", "mse")?;
    /// let (x, y) = (Array3::<f32>::zeros((8, 2, 4)), Array2::<f32>::ones((8, 1)));
    /// let options = FitOptions::new().with_epochs(3).with_validation_split(0.25).with_verbose(0);
    /// let history = model.fit(&x, &y, &options)?;
    /// let path = std::env::temp_dir().join("seqnn-doc-curves.svg");
    /// history.plot(&path)?;
    /// assert!(std::fs::read_to_string(&path)?.contains("val_loss"));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a history without epochs or an extension other than
    /// `png` or `svg`; [`Error::Io`] when the file cannot be created.
    pub fn plot(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let panels = panels(self);
        if self.epoch().is_empty() || panels.is_empty() {
            return Err(Error::InvalidArgument {
                layer: "History::plot".into(),
                message: "the history has no epoch to plot".into(),
            });
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if !matches!(ext.as_deref(), Some("png" | "svg")) {
            return Err(Error::InvalidArgument {
                layer: "History::plot".into(),
                message: format!("{} is neither a .png nor a .svg file name", path.display()),
            });
        }
        // The system's own error for a path that cannot be written, before any drawing.
        std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        register_font();
        let size = (PANEL.0, PANEL.1 * panels.len() as u32);
        if ext.as_deref() == Some("svg") {
            let root = SVGBackend::new(path, size).into_drawing_area();
            draw(&root, self, &panels).map_err(|e| plot_error(path, e))
        } else {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            draw(&root, self, &panels).map_err(|e| plot_error(path, e))
        }
    }
}
