//! `seqnn`: run and convert Keras recurrent models, Sequential or Functional, from the command
//! line.
//!
//! ```text
//! seqnn summary MODEL                  print the Keras summary table
//! seqnn predict MODEL INPUT [-o OUTPUT] [--batch-size N]
//!                                      run the model; print each output's shape
//! seqnn convert MODEL OUT.keras        save any model seqnn loads as a .keras archive
//! seqnn fit MODEL X Y -o OUT.keras [--epochs N] [--resume DIR] ...
//!                                      train as Keras's fit, with its callbacks; save
//! seqnn evaluate MODEL X Y             print the loss and metrics
//! ```
//!
//! A model is a `.keras` archive (Keras 3 or tf_keras 2.x) or a legacy full-model `.h5` file,
//! loaded with [`seqnn::load_any`]. Its input is a NumPy `.npy` file (a model with one input)
//! or a `.npz` archive: its arrays named after the model's inputs, or `arr_0`, `arr_1`, ... in
//! order, as `np.savez(path, a, b)` writes them. Its outputs are written as float32, one `.npy`
//! file for a model with one output, or a `.npz` archive of arrays named after the outputs.
//! The dtypes read and how they convert are in the `arrays` module.
//!
//! Any failure prints one line, `error: ` and what went wrong, on standard error, and exits
//! with status 1; a command line clap cannot parse exits with clap's status 2.
//!
//! The `seqnn-cli` crate of the workspace: `cargo install --path seqnn-cli`, or
//! `cargo run --release -p seqnn-cli -- ...` from the repository.

#![forbid(unsafe_code)]

mod arrays;

use std::io::IsTerminal;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use arrays::Array;
use clap::{Parser, Subcommand};
use ndarray::{ArrayD, Axis, Slice};
use seqnn::{AnyModel, Compiled, Error, FitOptions, InputArray, Shape};

/// Run and convert Keras recurrent models, without Python
///
/// A model is a .keras archive (Keras 3 or tf_keras 2.x) or a legacy full-model .h5
/// file, Sequential or Functional: SimpleRNN, LSTM, GRU, Bidirectional, Dense,
/// Embedding and the other layers seqnn has. Arrays are NumPy .npy files, or .npz
/// archives for models with several inputs or outputs. The outputs are the numbers
/// Keras computes for the same weights.
#[derive(Debug, Parser)]
#[command(
    name = "seqnn",
    version,
    verbatim_doc_comment,
    after_help = "\
Example:
  seqnn summary model.keras
  seqnn predict model.keras x.npy -o y.npy --batch-size 32
  seqnn predict two_inputs.keras x.npz -o y.npz
  seqnn fit model.keras x.npy y.npy -o trained.keras --epochs 20 --resume backup/
  seqnn convert legacy.h5 model.keras"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Help texts are wrapped by hand (`verbatim_doc_comment`): clap wraps only with its `wrap_help`
// feature, which would add a dependency for the terminal's width.
#[derive(Debug, Subcommand)]
enum Command {
    /// Print the model's summary table, as Keras's model.summary()
    Summary {
        /// The model: a .keras archive or a legacy .h5 file
        #[arg(value_name = "MODEL")]
        model: PathBuf,
    },

    /// Run the model on its inputs and print the shape of each output
    ///
    /// Prints the output's shape as Python prints a tuple, e.g. `output shape: (4, 3)`;
    /// for a model with several outputs, one line each with the output's name, e.g.
    /// `output dense: (4, 3)`. With -o, writes the outputs as float32.
    #[command(verbatim_doc_comment)]
    Predict {
        /// The model: a .keras archive or a legacy .h5 file
        #[arg(value_name = "MODEL")]
        model: PathBuf,
        /// The inputs, batch first: a .npy file (np.save) or a .npz file (np.savez)
        ///
        /// A .npy file is the input of a model with one input. A .npz file holds one
        /// array per model input, named after the inputs, np.savez("x.npz", left=a,
        /// right=b), or in the model's order, np.savez("x.npz", a, b) (arr_0, arr_1);
        /// np.savez_compressed works too. Arrays of float32, float64, bool or integers:
        /// integer ids for an Embedding arrive exactly (an integer beyond 2^24, which
        /// float32 cannot hold, is refused).
        #[arg(value_name = "INPUT.npy|INPUT.npz", verbatim_doc_comment)]
        input: PathBuf,
        /// Write the outputs to this file, as float32: .npy or .npz
        ///
        /// A .npy file holds the one output of a model; a .npz file holds every
        /// output, each named after it (np.load("y.npz")["dense"]). A model with
        /// several outputs needs a .npz file.
        #[arg(
            short,
            long,
            value_name = "OUTPUT.npy|OUTPUT.npz",
            verbatim_doc_comment
        )]
        output: Option<PathBuf>,
        /// Run N samples at a time (N > 0), as Keras's predict(x, batch_size=N)
        ///
        /// The outputs of the batches are joined along the first axis. Without it, the
        /// batches are as the library's predict chooses them: 32 samples or more, within a
        /// working set of 32 MiB; the numbers are the same. A stateful model runs in the
        /// batch size it was built for, carrying its states from batch to batch.
        /// On a terminal, the samples done so far are shown on stderr.
        #[arg(long, value_name = "N", verbatim_doc_comment)]
        batch_size: Option<usize>,
    },

    /// Train a model as Keras's fit, and save it as a Keras 3 .keras archive
    ///
    /// Trains with the model file's own compile configuration (its optimizer, loss
    /// and metrics); --optimizer, --learning-rate and --loss override it. A file
    /// without a compile configuration needs --optimizer and --loss. Prints Keras's
    /// progress lines, one per epoch, then the history. --early-stopping,
    /// --checkpoint, --csv-log and --reduce-lr-on-plateau add Keras's callbacks;
    /// --resume DIR backs the run up so that, interrupted, it continues where it
    /// stopped when run again.
    #[command(verbatim_doc_comment)]
    Fit(Box<FitArgs>),

    /// Print the loss and metrics of a compiled model on inputs and targets, as Keras's evaluate
    #[command(verbatim_doc_comment)]
    Evaluate {
        #[command(flatten)]
        data: ModelData,
        /// Keras's batch_size
        #[arg(long, default_value_t = 32, value_name = "N")]
        batch_size: usize,
    },

    /// Save a model as a Keras 3 .keras archive
    ///
    /// Reads any model seqnn loads (a legacy .h5 file, a tf_keras or Keras 3 .keras
    /// archive, Sequential or Functional) and writes it as a .keras archive that
    /// keras.models.load_model opens.
    #[command(verbatim_doc_comment)]
    Convert {
        /// The model to read: a .keras archive or a legacy .h5 file
        #[arg(value_name = "MODEL")]
        model: PathBuf,
        /// The archive to write; its name must end in .keras
        #[arg(value_name = "OUT.keras")]
        output: PathBuf,
    },
}

/// The model, inputs and targets of `seqnn fit` and `seqnn evaluate`.
#[derive(Debug, clap::Args)]
struct ModelData {
    /// The model: a .keras archive or a legacy .h5 file (evaluate needs it compiled)
    #[arg(value_name = "MODEL")]
    model: PathBuf,
    /// The inputs, batch first: a .npy file, or a .npz file of one array per input
    #[arg(value_name = "X.npy|X.npz")]
    x: PathBuf,
    /// The targets, batch first: a .npy file, or a .npz file of one array per output
    /// (named after the outputs, or arr_0, arr_1, ... in output order)
    #[arg(value_name = "Y.npy|Y.npz")]
    y: PathBuf,
}

/// The arguments of `seqnn fit` (boxed in [`Command`]: they are many).
#[derive(Debug, clap::Args)]
struct FitArgs {
    #[command(flatten)]
    data: ModelData,
    /// The trained model's archive; its name must end in .keras
    #[arg(short, long, value_name = "OUT.keras")]
    output: PathBuf,
    /// Keras's epochs
    #[arg(long, default_value_t = 1, value_name = "N")]
    epochs: usize,
    /// Keras's batch_size
    #[arg(long, default_value_t = 32, value_name = "N")]
    batch_size: usize,
    /// Keep the samples' order (Keras's shuffle=False)
    #[arg(long)]
    no_shuffle: bool,
    /// Keras's validation_split: the last fraction of the samples, held out
    #[arg(long, default_value_t = 0.0, value_name = "F")]
    validation_split: f32,
    /// 0: silent; 1 or 2: a line per epoch
    #[arg(long, default_value_t = 1, value_name = "0|1|2")]
    verbose: u8,
    /// An optimizer by its Keras name (adam, sgd, rmsprop, ...), with its defaults
    #[arg(long, value_name = "NAME")]
    optimizer: Option<String>,
    /// The optimizer's learning rate
    #[arg(long, value_name = "LR")]
    learning_rate: Option<f64>,
    /// A loss by its Keras name (mse, binary_crossentropy, ...)
    #[arg(long, value_name = "NAME")]
    loss: Option<String>,
    /// Stop when val_loss (loss without validation) has not improved for N epochs
    ///
    /// Keras's EarlyStopping(monitor="val_loss", patience=N,
    /// restore_best_weights=True): the weights of the best epoch are kept.
    #[arg(long, value_name = "PATIENCE", verbatim_doc_comment)]
    early_stopping: Option<usize>,
    /// Save the model after each epoch, as Keras's ModelCheckpoint(PATH)
    ///
    /// PATH ends in .keras and may hold Python format fields: {epoch:02d}, and the
    /// logged values, {loss:.4f} or {val_loss:.2f}. A path that cannot be written
    /// is refused before training; each save replaces the file atomically.
    #[arg(long, value_name = "PATH", verbatim_doc_comment)]
    checkpoint: Option<PathBuf>,
    /// Write each epoch's logs to a CSV file, as Keras's CSVLogger(PATH)
    #[arg(long, value_name = "PATH")]
    csv_log: Option<PathBuf>,
    /// Lower the learning rate tenfold after 10 epochs without improvement, as Keras's
    /// ReduceLROnPlateau(monitor="val_loss") (loss without validation)
    #[arg(long, verbatim_doc_comment)]
    reduce_lr_on_plateau: bool,
    /// Draw the loss and metric curves into PATH (.png or .svg), val_ curves dashed
    #[arg(long, value_name = "PATH")]
    plot: Option<PathBuf>,
    /// Back up the training state into DIR after each epoch, and resume from it
    ///
    /// Keras's BackupAndRestore(DIR): the weights, the optimizer's state and the
    /// epochs done (DIR/latest.weights.h5, DIR/training_metadata.json, as Keras 3
    /// writes them; Keras 3 resumes from them too). A run that stops (an error,
    /// Ctrl-C, a killed process), run again with the same arguments, continues at
    /// the first epoch not backed up, with the shuffling it would have had; the
    /// history printed is of the epochs it runs, and --csv-log appends to its file.
    /// DIR is deleted when training ends. A backup that cannot be read is refused
    /// before training, and a DIR that cannot be written too.
    #[arg(long, value_name = "DIR", verbatim_doc_comment)]
    resume: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::BrokenPipe) => ExitCode::SUCCESS,
        Err(Failure::Message(message)) => {
            // One line, whatever the message holds.
            let line = message
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

/// Why a command stopped.
#[derive(Debug)]
enum Failure {
    /// What to tell the user, without the `error: ` prefix.
    Message(String),
    /// Standard output was closed by its reader (`seqnn summary m.keras | head -3`): nothing
    /// more to say, and nothing wrong.
    BrokenPipe,
}

impl From<Error> for Failure {
    /// The error's message; an I/O error in plain words: `m.keras: no such file or directory`.
    fn from(e: Error) -> Self {
        Failure::Message(match &e {
            Error::Io { path, source } => format!("{}: {}", path.display(), plain(source)),
            _ => e.to_string(),
        })
    }
}

/// An I/O error as a person would say it, without the OS's error number.
fn plain(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "is a directory".into(),
        _ => e.to_string(),
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::BrokenPipe
        } else {
            Failure::Message(format!("cannot write to standard output: {e}"))
        }
    }
}

fn run(command: Command) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Summary { model } => {
            let model = load(&model)?;
            write!(out, "{}", model.summary()?)?;
        }
        Command::Predict {
            model,
            input,
            output,
            batch_size,
        } => {
            if batch_size == Some(0) {
                return Err(Failure::Message(
                    "--batch-size must be at least 1, got 0".into(),
                ));
            }
            // The input first: its errors do not wait for a large model to load.
            let input = arrays::read(&input)?;
            let mut model = load(&model)?;
            let names = model.output_names();
            let npz = output.as_deref().is_some_and(is_npz);
            // Before the run, which may be long, and again on what it gave.
            let one_array = |path: &Path, outputs: usize| -> Result<(), Failure> {
                if outputs == 1 {
                    return Ok(());
                }
                Err(Error::File {
                    path: path.to_path_buf(),
                    message: format!(
                        "a .npy file holds one array, and this model has {outputs} outputs \
                         ({}): give a name ending in .npz to write them all",
                        names.join(", ")
                    ),
                    source: None,
                }
                .into())
            };
            if let Some(path) = output.as_deref().filter(|_| !npz) {
                one_array(path, names.len())?;
            }
            let xs = input.for_inputs(&model.input_names())?;
            let ys = predict(&mut model, &xs, batch_size)?;
            // Written first, so that a failure leaves nothing on standard output.
            match (output, ys.as_slice()) {
                (Some(path), _) if npz => {
                    let named: Vec<(&str, &ArrayD<f32>)> =
                        names.iter().map(String::as_str).zip(&ys).collect();
                    arrays::write_npz(&path, &named)?;
                }
                (Some(path), [y]) => arrays::write_npy(&path, y)?,
                (Some(path), _) => one_array(&path, ys.len())?,
                (None, _) => {}
            }
            match ys.as_slice() {
                [y] => writeln!(out, "output shape: {}", Shape::known(y.shape()))?,
                _ => {
                    for (name, y) in names.iter().zip(&ys) {
                        writeln!(out, "output {name}: {}", Shape::known(y.shape()))?;
                    }
                }
            }
        }
        Command::Fit(args) => fit(*args, &mut out)?,
        Command::Evaluate {
            data: ModelData { model, x, y },
            batch_size,
        } => {
            let (xs, y) = (arrays::read(&x)?, arrays::read(&y)?);
            let mut model = load(&model)?;
            let xs = floats(xs.for_inputs(&model.input_names())?);
            let ys = floats(y.for_outputs(&target_names(&model))?);
            let views: Vec<_> = xs.iter().map(|a| a.view()).collect();
            let targets: Vec<_> = ys.iter().map(|a| a.view()).collect();
            // A stateful model carries its states from batch to batch, as Keras's evaluate.
            let logs = match &mut model {
                AnyModel::Sequential(m) => m.evaluate_stateful(&xs[0], &ys[0], batch_size)?,
                AnyModel::Functional(m) => m.evaluate_stateful(&views, targets, batch_size)?,
            };
            for (key, value) in logs {
                writeln!(out, "{key}: {value:.6}")?;
            }
        }
        Command::Convert { model, output } => {
            keras_output(&output)?;
            let model = load(&model)?;
            model.save(&output).map_err(|e| e.in_file(&output))?;
            writeln!(out, "saved {}", output.display())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `seqnn fit`: trains the model as Keras's `fit`, with the callbacks its flags ask for, saves
/// it, and prints its history to `out`.
fn fit(args: FitArgs, out: &mut impl Write) -> Result<(), Failure> {
    let FitArgs {
        data: ModelData { model, x, y },
        output,
        epochs,
        batch_size,
        no_shuffle,
        validation_split,
        verbose,
        optimizer,
        learning_rate,
        loss,
        early_stopping,
        checkpoint,
        csv_log,
        reduce_lr_on_plateau,
        plot,
        resume,
    } = args;
    keras_output(&output)?;
    if let Some(path) = &plot {
        let ext = path.extension().and_then(|e| e.to_str());
        if !matches!(
            ext.map(str::to_ascii_lowercase).as_deref(),
            Some("png" | "svg")
        ) {
            return Err(Failure::Message(format!(
                "--plot {} must name a .png or .svg file",
                path.display()
            )));
        }
    }
    let (xs, y) = (arrays::read(&x)?, arrays::read(&y)?);
    let mut model = load(&model)?;
    let xs = floats(xs.for_inputs(&model.input_names())?);
    let ys = floats(y.for_outputs(&target_names(&model))?);
    let compiled = match model.compiled() {
        Some(c) => c.clone(),
        None => {
            let (Some(o), Some(l)) = (&optimizer, &loss) else {
                return Err(Failure::Message(
                    "the model file holds no compile configuration: give --optimizer \
                     and --loss"
                        .into(),
                ));
            };
            Compiled::new(seqnn::optimizer_from_name(o)?, seqnn::Loss::from_name(l)?)
        }
    };
    let mut compiled = match (&optimizer, &loss) {
        (Some(o), _) if model.compiled().is_some() => {
            compiled.with_optimizer(seqnn::optimizer_from_name(o)?)
        }
        _ => compiled,
    };
    if let (Some(l), true) = (&loss, model.compiled().is_some()) {
        compiled = compiled.with_loss(seqnn::Loss::from_name(l)?);
    }
    if let Some(lr) = learning_rate {
        compiled.optimizer_mut().set_learning_rate(lr)?;
    }
    let options = FitOptions::new()
        .with_epochs(epochs)
        .with_batch_size(batch_size)
        .with_shuffle(!no_shuffle)
        .with_validation_split(validation_split)
        .with_verbose(verbose);
    let views: Vec<_> = xs.iter().map(|a| a.view()).collect();
    // Keras's callbacks, in this order: the learning rate is in the logs the CSV
    // logger writes.
    let monitor = if validation_split > 0.0 {
        "val_loss"
    } else {
        "loss"
    };
    let mut callbacks: Vec<Box<dyn seqnn::Callback>> = Vec::new();
    if reduce_lr_on_plateau {
        let reduce = seqnn::ReduceLROnPlateau::new().monitor(monitor);
        callbacks.push(Box::new(reduce.verbose(u8::from(verbose > 0))));
    }
    if let Some(patience) = early_stopping {
        let stop = seqnn::EarlyStopping::new()
            .monitor(monitor)
            .patience(patience)
            .restore_best_weights(true);
        callbacks.push(Box::new(stop.verbose(u8::from(verbose > 0))));
    }
    if let Some(path) = &checkpoint {
        callbacks.push(Box::new(seqnn::ModelCheckpoint::new(path)));
    }
    let mut backup = resume.as_ref().map(seqnn::BackupAndRestore::new);
    // A resumed run adds its epochs' rows to the log of the interrupted one.
    let resuming = backup.as_ref().is_some_and(|b| b.has_backup());
    if let Some(path) = &csv_log {
        callbacks.push(Box::new(seqnn::CSVLogger::new(path).append(resuming)));
    }
    let mut callbacks: Vec<&mut dyn seqnn::Callback> = callbacks
        .iter_mut()
        .map(|c| -> &mut dyn seqnn::Callback { c.as_mut() })
        .collect();
    // Last: a backup holds what the other callbacks did at the end of its epoch (a
    // lowered learning rate, a CSV row), and an epoch whose callbacks failed is not
    // backed up, so it runs again.
    if let Some(backup) = backup.as_mut() {
        callbacks.push(backup);
    }
    let history = match &mut model {
        AnyModel::Sequential(m) => {
            m.compile_with(compiled);
            m.fit_with_callbacks(&xs[0], &ys[0], &options, &mut callbacks)?
        }
        AnyModel::Functional(m) => {
            m.compile_with(compiled);
            let targets: Vec<_> = ys.iter().map(|a| a.view()).collect();
            m.fit_with_callbacks(&views, targets, &options, &mut callbacks)?
        }
    };
    model.save(&output).map_err(|e| e.in_file(&output))?;
    if let Some(path) = &plot {
        history.plot(path)?;
    }
    let resumed = backup.as_ref().and_then(|b| b.restored_epoch());
    if let (Some(epoch), Some(dir)) = (resumed, &resume) {
        writeln!(
            out,
            "resumed from {} at epoch {}/{epochs}",
            dir.display(),
            epoch + 1
        )?;
    }
    for (key, values) in history.history() {
        let values: Vec<String> = values.iter().map(|v| format!("{v:.6}")).collect();
        writeln!(out, "{key}: [{}]", values.join(", "))?;
    }
    writeln!(out, "saved {}", output.display())?;
    Ok(())
}

/// Refuses an output path that does not end in `.keras`.
fn keras_output(output: &Path) -> Result<(), Failure> {
    if output.extension().and_then(|e| e.to_str()) == Some("keras") {
        return Ok(());
    }
    Err(Error::File {
        path: output.to_path_buf(),
        message: "the output must be a .keras file (seqnn writes the Keras 3 .keras format); \
                  give a name ending in .keras"
            .into(),
        source: None,
    }
    .into())
}

/// The arrays as float32 (integer ids are exact in float32: the reader checked them).
fn floats(arrays: Vec<arrays::Array>) -> Vec<ArrayD<f32>> {
    arrays
        .into_iter()
        .map(|a| match a {
            arrays::Array::F32(a) => a,
            arrays::Array::I32(a) => a.mapv(|v| v as f32),
            arrays::Array::I64(a) => a.mapv(|v| v as f32),
            arrays::Array::U32(a) => a.mapv(|v| v as f32),
        })
        .collect()
}

/// Whether an output path names a `.npz` archive (else it is written as `.npy`).
fn is_npz(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"))
}

/// Loads a model of either kind. Every error names the file, even one about a layer in it
/// (`m.h5: layer "conv1d" (Conv1D): ...`).
/// The names a targets file is read by: the model's output names (a `.npz` of several
/// targets names its arrays after them, or `arr_0`, `arr_1`, ... in output order).
fn target_names(model: &AnyModel) -> Vec<String> {
    match model {
        AnyModel::Functional(m) => m.output_names(),
        _ => vec!["y".to_string()],
    }
}

fn load(path: &Path) -> Result<AnyModel, Error> {
    seqnn::load_any(path).map_err(|e| e.in_file(path))
}

/// The batch size a stateful model was built for, which it runs in; `None` for a stateless
/// model.
fn stateful_batch(model: &AnyModel) -> Option<usize> {
    if !model.is_stateful() {
        return None;
    }
    match model {
        AnyModel::Sequential(m) => m.input_shape().and_then(|s| s.dim(0)),
        AnyModel::Functional(m) => m.input_shapes().first().and_then(|s| s.dim(0)),
    }
}

/// Runs the model on `xs`, one array per model input, all with the same number of samples,
/// as the library's `predict` does (batches chosen for speed, or `batch_size` at a time; a
/// stateful model in its own batch size, carrying its states), a part at a time so that a
/// terminal can show the progress, into one array per output.
fn predict(
    model: &mut AnyModel,
    xs: &[Array],
    batch_size: Option<usize>,
) -> Result<Vec<ArrayD<f32>>, Failure> {
    let n = xs
        .first()
        .and_then(|x| x.shape().first().copied())
        .unwrap_or(0);
    let stateful_batch = stateful_batch(model);
    if let (Some(fixed), Some(given)) = (stateful_batch, batch_size) {
        if fixed != given {
            return Err(Failure::Message(format!(
                "--batch-size {given} does not fit this stateful model, which was built for \
                 batches of {fixed}"
            )));
        }
    }
    // Parts of many batches: few enough calls to keep the library's batching, enough for the
    // progress to move.
    let unit = stateful_batch
        .or(batch_size)
        .unwrap_or(seqnn::DEFAULT_BATCH_SIZE);
    let part = unit.saturating_mul(64).min(n).max(1);
    let parts = n.div_ceil(part);
    // Long runs show their progress, on a terminal only: piped stderr stays one error line.
    let progress = parts > 1 && std::io::stderr().is_terminal();
    let mut outs: Option<Vec<ArrayD<f32>>> = None;
    for (i, start) in (0..n).step_by(part).enumerate() {
        if progress {
            eprint!("\rsamples {start}/{n}");
        }
        let end = (start + part).min(n);
        let chunk: Vec<InputArray<'_>> = xs.iter().map(|x| x.rows(start, end)).collect();
        let ys = match (stateful_batch, batch_size) {
            (Some(_), _) => model.predict_stateful(&chunk),
            (None, Some(b)) => model.predict_batched(&chunk, b),
            (None, None) => model.predict(&chunk),
        };
        if progress && (ys.is_err() || i + 1 == parts) {
            eprint!("\r{}\r", " ".repeat(40));
        }
        let ys = ys?;
        if parts == 1 {
            return Ok(ys);
        }
        let outs = match outs.as_mut() {
            Some(o) => o,
            None => outs.insert(
                ys.iter()
                    .map(|y| all_rows(y, n))
                    .collect::<Result<_, _>>()?,
            ),
        };
        for (o, y) in outs.iter_mut().zip(&ys) {
            let mut rows = o.slice_axis_mut(Axis(0), Slice::from(start..end));
            if rows.shape() != y.shape() {
                return Err(Failure::Message(format!(
                    "the model gave an output of shape {} for samples {start} to {end}, \
                     where {} was expected",
                    Shape::known(y.shape()),
                    Shape::known(rows.shape())
                )));
            }
            rows.assign(y);
        }
    }
    outs.ok_or_else(|| Failure::Message("the input has no samples".into()))
}

/// Zeros for every sample of an output whose first part is `y`.
fn all_rows(y: &ArrayD<f32>, n: usize) -> Result<ArrayD<f32>, Failure> {
    let mut shape = y.shape().to_vec();
    match shape.first_mut() {
        Some(rows) => *rows = n,
        None => {
            return Err(Failure::Message(
                "the model gave an output without a batch axis".into(),
            ))
        }
    }
    match seqnn::limits::elements(&shape) {
        Some(len) if len <= seqnn::limits::MAX_TENSOR_ELEMENTS => Ok(ArrayD::zeros(shape)),
        _ => Err(Failure::Message(format!(
            "the output of shape {} is more than the {} scalars seqnn allocates \
             (seqnn::limits::MAX_TENSOR_ELEMENTS): give fewer samples at a time",
            Shape::known(&shape),
            seqnn::limits::MAX_TENSOR_ELEMENTS
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    fn run_predict(model: &mut AnyModel, x: &ArrayD<f32>, n: Option<usize>) -> ArrayD<f32> {
        match predict(model, &[Array::F32(x.clone())], n) {
            Ok(mut ys) if ys.len() == 1 => ys.remove(0),
            Ok(ys) => panic!("one output expected, got {}", ys.len()),
            Err(e) => panic!("predict failed: {e:?}"),
        }
    }

    #[test]
    fn batches_join_into_what_one_batch_gives() -> seqnn::Result<()> {
        let mut model = seqnn::Sequential::new();
        model.add(seqnn::SimpleRNN::new(3).input_shape((2, 4)))?;
        // 300 samples: in parts of 64 batches when batches are 1 or 3, in one part otherwise.
        let x = ArrayD::from_shape_fn(ndarray::IxDyn(&[300, 2, 4]), |i| {
            (i[0] as f32 - 150.0) * 0.01 + i[1] as f32 * 0.2 - i[2] as f32 * 0.05
        });
        let whole = model.call(&x)?;
        let mut model = AnyModel::Sequential(model);
        assert_eq!(run_predict(&mut model, &x, None), whole);
        for n in [1, 3, 7, 100, 1000] {
            let y = run_predict(&mut model, &x, Some(n));
            approx::assert_abs_diff_eq!(y, whole, epsilon = 1e-6);
        }
        Ok(())
    }

    #[test]
    fn a_stateful_model_carries_its_states_across_batches() -> seqnn::Result<()> {
        let mut model = seqnn::Sequential::new();
        model.add(
            seqnn::SimpleRNN::new(3)
                .batch_input_shape((2, 2, 4))
                .with_stateful(true),
        )?;
        let x = ArrayD::from_shape_fn(ndarray::IxDyn(&[4, 2, 4]), |i| {
            (i[0] + i[1] + i[2]) as f32 * 0.1
        });
        let mut by_hand = model.clone();
        let first = by_hand.predict_stateful(&x.slice_axis(Axis(0), Slice::from(0..2)))?;
        let second = by_hand.predict_stateful(&x.slice_axis(Axis(0), Slice::from(2..4)))?;
        let mut model = AnyModel::Sequential(model);
        let y = run_predict(&mut model, &x, Some(2));
        let expected =
            ndarray::concatenate(Axis(0), &[first.view(), second.view()]).expect("joined");
        approx::assert_abs_diff_eq!(y, expected, epsilon = 1e-6);
        // A batch of another size is an error, not a panic; so is a length that is not a
        // multiple of the model's batch.
        let input = [Array::F32(x.clone())];
        assert!(predict(&mut model, &input, Some(3)).is_err());
        let odd = [Array::F32(
            x.slice_axis(Axis(0), Slice::from(0..3)).to_owned(),
        )];
        assert!(predict(&mut model, &odd, None).is_err());
        Ok(())
    }
}
