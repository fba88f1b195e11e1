//! Keras's `CSVLogger`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::train::callbacks::{Callback, FitContext, Logs};
use crate::train::config::{py_repr, py_repr_f32};
use crate::train::loss::Dialect;

/// Writes each epoch's logs to a CSV file: Keras's `keras.callbacks.CSVLogger(filename,
/// separator=",", append=False)`.
///
/// The columns are Keras's: `epoch` (from 0), then the keys of the first epoch's logs, sorted;
/// when none of them is a `val_` key, a `val_` column for each follows (`NA` in every row), as
/// Keras writes them. Values are written as Keras's logs print in Python (`0.2871604859828949`:
/// a float32 widened to a Python float; tf_keras's `lr`, a NumPy float32, as `0.1`), lines end
/// in `\r\n` (Python's `csv` module), and the file is flushed after each row. With `append`,
/// rows go after what the file holds, and the header only into an empty or new file.
///
/// ```
/// use seqnn::CSVLogger;
/// // keras.callbacks.CSVLogger("training.log", separator=";", append=True)
/// let log = CSVLogger::new("training.log").separator(';').append(true);
/// # let _ = log;
/// ```
#[derive(Debug)]
pub struct CSVLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    keys: Option<Vec<String>>,
    header: bool,
    file: Option<File>,
}

impl CSVLogger {
    /// A logger writing `path`, with Keras's `,` separator, overwriting it.
    pub fn new(path: impl AsRef<Path>) -> Self {
        CSVLogger {
            path: path.as_ref().to_path_buf(),
            separator: ',',
            append: false,
            keys: None,
            header: true,
            file: None,
        }
    }

    /// Keras's `separator` (default `,`).
    #[must_use]
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = separator;
        self
    }

    /// Keras's `append` (default false): add to an existing file.
    #[must_use]
    pub fn append(mut self, append: bool) -> Self {
        self.append = append;
        self
    }

    /// A field, quoted as Python's `csv` module quotes it when needed.
    fn field(&self, text: &str) -> String {
        if text.contains([self.separator, '"', '\r', '\n']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_string()
        }
    }

    fn write_line(&mut self, fields: &[String]) -> Result<()> {
        let sep = self.separator.to_string();
        let line: Vec<String> = fields.iter().map(|f| self.field(f)).collect();
        let line = format!("{}\r\n", line.join(&sep));
        let path = self.path.clone();
        let file = self.file.as_mut().ok_or_else(|| Error::Callback {
            callback: "CSVLogger".into(),
            message: format!("{} is not open: on_train_begin was not run", path.display()),
        })?;
        file.write_all(line.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| Error::io(&path, e))
    }
}

impl Callback for CSVLogger {
    fn on_train_begin(&mut self, _logs: &mut Logs, _fit: &mut FitContext<'_>) -> Result<()> {
        let path = &self.path;
        let mut options = std::fs::OpenOptions::new();
        if self.append {
            self.header = match File::open(path) {
                Ok(f) => {
                    let mut first = String::new();
                    BufReader::new(f)
                        .read_line(&mut first)
                        .map_err(|e| Error::io(path, e))?;
                    first.is_empty()
                }
                Err(_) => true,
            };
            options.append(true).create(true);
        } else {
            self.header = true;
            options.write(true).create(true).truncate(true);
        }
        self.file = Some(options.open(path).map_err(|e| Error::io(path, e))?);
        self.keys = None;
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        if self.keys.is_none() {
            let mut keys: Vec<String> = logs.keys().map(str::to_string).collect();
            keys.sort();
            if !keys.is_empty() && !keys.iter().any(|k| k.starts_with("val_")) {
                let val: Vec<String> = keys.iter().map(|k| format!("val_{k}")).collect();
                keys.extend(val);
            }
            if self.header {
                let mut header = vec!["epoch".to_string()];
                header.extend(keys.iter().cloned());
                self.write_line(&header)?;
            }
            self.keys = Some(keys);
        }
        let dialect = fit.dialect();
        let mut row = vec![epoch.to_string()];
        for k in self.keys.iter().flatten() {
            row.push(match logs.get(k) {
                None => "NA".to_string(),
                // tf_keras logs its learning rate as NumPy's float32.
                Some(v) if dialect == Dialect::TfKeras && k == "lr" => py_repr_f32(v),
                Some(v) => py_repr(f64::from(v)),
            });
        }
        self.write_line(&row)
    }

    fn on_train_end(&mut self, _logs: &mut Logs, _fit: &mut FitContext<'_>) -> Result<()> {
        self.file = None;
        Ok(())
    }
}
