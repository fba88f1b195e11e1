//! BackupAndRestore against Keras (`tests/fixtures/train/backup/`, made by
//! `tools/keras_reference/generate_train_backup.py`): an LSTM(4) -> Dense(1) model, saved
//! untrained and compiled by Keras 3.15 (and tf_keras 2.21), is trained by each Keras with
//! `BackupAndRestore`, interrupted by a callback raising, then trained again from a fresh model
//! on the same backup directory; and trained uninterrupted. seqnn does the same from the same
//! file and must:
//!
//! - end the uninterrupted and the resumed runs on Keras's weights (1e-5), run the epochs Keras
//!   runs on resume and return Keras's History of them (only the resumed epochs);
//! - write the backup Keras 3 writes (`latest.weights.h5` with the weights Keras 3's holds,
//!   `training_metadata.json` with its `epoch` and `batch`), and delete it at the end;
//! - resume from the backup Keras 3 left (its files, copied) to Keras's resumed weights.
//!
//! Then what Keras has no fixture for: a shuffled run with dropout resumed in a "new process"
//! (another seed) equals the uninterrupted one; damaged, incomplete or foreign backups are
//! refused before training with the model unchanged; a failed save leaves the previous backup;
//! a directory that cannot be written fails before training.
#![cfg(feature = "keras")]

mod common;

use std::path::{Path, PathBuf};

use common::files;

use common::array;
use ndarray::{Array2, Array3, ArrayD};
use seqnn::{
    load_model, BackupAndRestore, Callback, Dense, Dropout, EarlyStopping, Error, FitContext,
    FitOptions, History, Logs, Result, SaveFreq, Sequential, LSTM,
};
use serde_json::Value;

const TOL: f32 = 1e-5;

const CASES: &[&str] = &[
    "epoch_adam",
    "epoch_end_before_backup",
    "batches_every_2",
    "double_checkpoint_damaged",
    "early_stopping_restarts",
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/backup")
}

fn fixture(case: &str) -> Value {
    common::load_from("train/backup", case).json
}

fn arrays(v: &Value) -> Vec<ArrayD<f32>> {
    v.as_array().unwrap().iter().map(array).collect()
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= TOL * b.abs().max(1.0)
}

fn assert_weights(ours: &[ArrayD<f32>], keras: &[ArrayD<f32>], what: &str) {
    assert_eq!(ours.len(), keras.len(), "{what}: weight count");
    for (i, (a, b)) in ours.iter().zip(keras).enumerate() {
        assert_eq!(a.shape(), b.shape(), "{what}: weight {i}");
        for (j, (&x, &y)) in a.iter().zip(b).enumerate() {
            assert!(
                close(x, y),
                "{what}: weight {i}[{j}] {x} against Keras's {y}"
            );
        }
    }
}

fn assert_same_weights(a: &[ArrayD<f32>], b: &[ArrayD<f32>], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: weight count");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x, y, "{what}: weight {i}");
    }
}

/// The epochs and values of `history` against Keras's `{"epoch", "history"}`.
fn check_history(history: &History, keras: &Value, what: &str) {
    let epochs: Vec<usize> = (keras["epoch"].as_array().unwrap().iter())
        .map(|e| e.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(history.epoch(), epochs.as_slice(), "{what}: epochs run");
    let keys = keras["history"].as_object().unwrap();
    let mut ours: Vec<&String> = history.history().keys().collect();
    let mut theirs: Vec<&String> = keys.keys().collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "{what}: history keys");
    for (key, values) in keys {
        let got = history.get(key).unwrap();
        let want = values.as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{what}: {key} values");
        for (e, (a, b)) in got.iter().zip(want).enumerate() {
            let b = b.as_f64().unwrap() as f32;
            assert!(close(*a, b), "{what}: {key}[{e}] {a} against Keras's {b}");
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    common::scratch("backup", name)
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn metadata(d: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(d.join("training_metadata.json")).unwrap())
        .unwrap()
}

/// Raises at a hook of an epoch (and batch), as the fixture's `Interrupt` callback.
struct Interrupt {
    hook: String,
    epoch: usize,
    batch: Option<usize>,
    current: usize,
}

impl Interrupt {
    fn new(hook: &str, epoch: usize, batch: Option<usize>) -> Self {
        Interrupt {
            hook: hook.into(),
            epoch,
            batch,
            current: 0,
        }
    }

    /// Raises when `hook` (after `batch`) of the current epoch is the one asked for.
    fn at(&self, hook: &str, batch: Option<usize>) -> Result<()> {
        if hook != self.hook || self.current != self.epoch || batch != self.batch {
            return Ok(());
        }
        let epoch = self.epoch;
        let message = match batch {
            Some(b) => format!("interrupted after batch {b} of epoch {epoch}"),
            None if hook == "on_epoch_begin" => {
                format!("interrupted at the start of epoch {epoch}")
            }
            None => format!("interrupted at the end of epoch {epoch}"),
        };
        Err(Error::Callback {
            callback: "Interrupt".into(),
            message,
        })
    }
}

impl Callback for Interrupt {
    fn on_epoch_begin(&mut self, e: usize, _: &mut Logs, _: &mut FitContext) -> Result<()> {
        self.current = e;
        self.at("on_epoch_begin", None)
    }

    fn on_epoch_end(&mut self, _: usize, _: &mut Logs, _: &mut FitContext) -> Result<()> {
        self.at("on_epoch_end", None)
    }

    fn on_train_batch_end(&mut self, b: usize, _: &mut Logs, _: &mut FitContext) -> Result<()> {
        self.at("on_train_batch_end", Some(b))
    }
}

/// One library's runs of a case: its file, data and fit options, and the case's callbacks.
struct Case {
    name: String,
    lib: String,
    f: Value,
    keras: Value,
    x: ArrayD<f32>,
    y: ArrayD<f32>,
    options: FitOptions,
}

impl Case {
    fn new(name: &str, lib: (&str, &str)) -> Option<Self> {
        let f = fixture(name);
        let keras = f["results"].get(lib.1)?.clone();
        let options = common::fixture_fit_options(&f);
        Some(Case {
            name: format!("{name}.{}", lib.0),
            lib: lib.0.into(),
            x: array(&f["x"]),
            y: array(&f["y"]),
            f,
            keras,
            options,
        })
    }

    fn model(&self) -> Sequential {
        let stem = self.name.clone();
        let model = load_model(dir().join(format!("{stem}.keras"))).unwrap();
        assert!(model.compiled().is_some(), "{stem}: compiled from the file");
        model
    }

    fn backup(&self, d: &Path) -> BackupAndRestore {
        let options = &self.f["backup"];
        let mut backup = BackupAndRestore::new(d);
        if let Some(n) = options.get("save_freq").and_then(Value::as_u64) {
            backup = backup.save_freq(SaveFreq::Batches(n as usize));
        }
        if let Some(double) = options.get("double_checkpoint").and_then(Value::as_bool) {
            backup = backup.double_checkpoint(double);
        }
        backup
    }

    fn early_stopping(&self) -> Option<EarlyStopping> {
        let e = self.f["early_stopping"].as_object()?;
        Some(
            EarlyStopping::new()
                .monitor(e["monitor"].as_str().unwrap())
                .min_delta(e["min_delta"].as_f64().unwrap())
                .patience(e["patience"].as_u64().unwrap() as usize),
        )
    }

    fn interrupt(&self) -> Interrupt {
        let i = &self.f["interrupt"];
        Interrupt::new(
            i["hook"].as_str().unwrap(),
            i["epoch"].as_u64().unwrap() as usize,
            i["batch"].as_u64().map(|b| b as usize),
        )
    }

    /// A fit of a fresh model with the case's callbacks on `d`, interrupted or not: its
    /// result, the model, and EarlyStopping's stopped epoch.
    fn run(&self, d: &Path, interrupted: bool) -> (Result<History>, Sequential, Option<usize>) {
        let mut model = self.model();
        let mut backup = self.backup(d);
        let mut stop = self.early_stopping();
        let mut interrupt = self.interrupt();
        let mut callbacks: Vec<&mut dyn Callback> = vec![&mut backup];
        if let Some(stop) = stop.as_mut() {
            callbacks.push(stop);
        }
        if interrupted {
            if self.f["interrupt"]["first"].as_bool().unwrap() {
                callbacks.insert(0, &mut interrupt);
            } else {
                callbacks.push(&mut interrupt);
            }
        }
        let result = model.fit_with_callbacks(&self.x, &self.y, &self.options, &mut callbacks);
        (result, model, stop.map(|s| s.stopped_epoch()))
    }

    fn check_stopped(&self, stopped: Option<usize>, keras: &Value, what: &str) {
        if let Some(want) = keras.get("stopped_epoch") {
            assert_eq!(
                stopped,
                want.as_u64().map(|e| e as usize),
                "{}: {what} stopped_epoch",
                self.name
            );
        }
    }

    /// Cuts the latest weights of the backup in `d` to half, as the case's `damage`.
    fn damage(&self, d: &Path) {
        if self.f["damage"].as_bool().unwrap() {
            let p = d.join("latest.weights.h5");
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        }
    }

    /// The resumed run on `d`: Keras's epochs, history and weights; the backup gone.
    fn check_resumed(&self, d: &Path, what: &str) {
        let (history, model, stopped) = self.run(d, false);
        let history = history.unwrap();
        let keras = &self.keras["resumed"];
        check_history(
            &history,
            &keras["history"],
            &format!("{}: {what}", self.name),
        );
        assert_weights(
            &model.get_weights(),
            &arrays(&keras["weights"]),
            &format!("{}: {what}, weights", self.name),
        );
        self.check_stopped(stopped, keras, what);
        assert!(
            !d.exists(),
            "{}: {what}: the backup is deleted at the end",
            self.name
        );
    }
}

#[test]
fn an_interrupted_fit_resumes_as_keras() {
    for name in CASES {
        for lib in [("tf", "tf_keras"), ("k3", "keras3")] {
            let Some(case) = Case::new(name, lib) else {
                continue;
            };
            let what = &case.name;
            let tmp = scratch(what);

            // Uninterrupted: Keras's weights and history; the backup deleted at the end.
            let whole = tmp.join("whole");
            let (history, model, stopped) = case.run(&whole, false);
            let keras = &case.keras["uninterrupted"];
            check_history(
                &history.unwrap(),
                &keras["history"],
                &format!("{what}: uninterrupted"),
            );
            assert_weights(
                &model.get_weights(),
                &arrays(&keras["weights"]),
                &format!("{what}: uninterrupted"),
            );
            case.check_stopped(stopped, keras, "uninterrupted");
            assert!(!whole.exists(), "{what}: the backup is deleted at the end");

            // Interrupted: the error is the callback's, the weights are Keras's at that point,
            // and the backup is Keras 3's.
            let d = tmp.join("backup");
            let (result, model, _) = case.run(&d, true);
            let keras = &case.keras["interrupted"];
            let err = result.unwrap_err().to_string();
            let keras_error = keras["error"]
                .as_str()
                .unwrap()
                .trim_start_matches("RuntimeError: ");
            assert_eq!(err, format!("Interrupt: {keras_error}"), "{what}");
            assert_weights(
                &model.get_weights(),
                &arrays(&keras["weights"]),
                &format!("{what}: interrupted"),
            );
            if case.lib == "k3" {
                let want: Vec<String> = (keras["files"].as_array().unwrap().iter())
                    .map(|f| f.as_str().unwrap().to_string())
                    .collect();
                assert_eq!(files(&d), want, "{what}: the backup's files");
                let k3: Value = serde_json::from_str(keras["metadata"].as_str().unwrap()).unwrap();
                let ours = metadata(&d);
                assert_eq!(ours["epoch"], k3["epoch"], "{what}: metadata epoch");
                assert_eq!(ours["batch"], k3["batch"], "{what}: metadata batch");
                // The weights file holds what Keras 3's holds (read into a model as Keras 3's
                // load_weights reads it).
                let read = |path: &Path| {
                    let mut m = case.model();
                    m.load_weights(path).unwrap();
                    m.get_weights()
                };
                // A damaged case's latest Keras file is the cut one: its previous is compared.
                let name = if case.f["damage"].as_bool().unwrap() {
                    "latest.weights.h5.bkp"
                } else {
                    "latest.weights.h5"
                };
                let keras_backup = dir().join(format!("{}.backup", case.name));
                assert_weights(
                    &read(&d.join(name)),
                    &read(&keras_backup.join(name)),
                    &format!("{what}: {name}"),
                );
            }
            case.damage(&d);

            // Resumed from seqnn's backup, then (Keras 3) from Keras's own.
            case.check_resumed(&d, "resumed");
            if case.lib == "k3" {
                let from_keras = tmp.join("from-keras");
                copy_dir(&dir().join(format!("{}.backup", case.name)), &from_keras);
                case.check_resumed(&from_keras, "resumed from Keras 3's backup");
            }
        }
    }
}

/// Samples for the seqnn-only cases: 40 of `(5, 2)`, targets `(40, 1)`.
fn data() -> (ArrayD<f32>, ArrayD<f32>) {
    let x = Array3::from_shape_fn((40, 5, 2), |(i, t, f)| {
        ((i * 7 + t * 3 + f * 5) % 11) as f32 / 11.0 - 0.5
    });
    let y = Array2::from_shape_fn((40, 1), |(i, _)| ((i * 5) % 7) as f32 / 7.0 - 0.4);
    (x.into_dyn(), y.into_dyn())
}

/// LSTM(4) -> Dropout(0.3) -> Dense(1) with Adam, its initial weights drawn from `seed`.
fn dropout_model(seed: u64) -> Sequential {
    seqnn::set_random_seed(seed);
    let mut m = Sequential::new();
    m.add(LSTM::new(4).input_shape((5, 2))).unwrap();
    m.add(Dropout::new(0.3)).unwrap();
    m.add(Dense::new(1)).unwrap();
    m.compile("adam", "mse").unwrap();
    m
}

#[test]
fn a_shuffled_run_with_dropout_resumes_as_the_uninterrupted_one() {
    let (x, y) = data();
    let options = FitOptions::new()
        .with_epochs(6)
        .with_batch_size(8)
        .with_verbose(0);
    let d = scratch("shuffled").join("backup");
    let mut whole = dropout_model(7);
    let expected = whole.fit(&x, &y, &options).unwrap();

    let mut first = dropout_model(7);
    let mut interrupt = Interrupt::new("on_epoch_begin", 3, None);
    let mut backup = BackupAndRestore::new(&d);
    assert!(first
        .fit_with_callbacks(&x, &y, &options, &mut [&mut backup, &mut interrupt])
        .is_err());
    let kept = tempdir_copy(&d, "shuffled-kept");

    // As a new process: another seed, so other initial weights and another generator; the
    // backup puts back the weights, the optimizer and the generator of the end of epoch 2.
    let mut resumed = dropout_model(12345);
    let history = resumed
        .fit_with_callbacks(&x, &y, &options, &mut [&mut BackupAndRestore::new(&d)])
        .unwrap();
    assert_eq!(history.epoch(), &[3, 4, 5]);
    assert_eq!(
        history.get("loss").unwrap(),
        &expected.get("loss").unwrap()[3..]
    );
    assert_same_weights(&resumed.get_weights(), &whole.get_weights(), "resumed");

    // Without the generator (a backup as Keras 3 writes it), the shuffles and masks differ.
    std::fs::write(
        kept.join("training_metadata.json"),
        "{\"epoch\": 3, \"batch\": 0}",
    )
    .unwrap();
    let mut keras_like = dropout_model(12345);
    let history = keras_like
        .fit_with_callbacks(&x, &y, &options, &mut [&mut BackupAndRestore::new(&kept)])
        .unwrap();
    assert_eq!(history.epoch(), &[3, 4, 5]);
    assert_ne!(keras_like.get_weights(), whole.get_weights());
}

/// A copy of the directory `from` in a fresh scratch directory `name`.
fn tempdir_copy(from: &Path, name: &str) -> PathBuf {
    let to = scratch(name).join("backup");
    copy_dir(from, &to);
    to
}

/// Counts the epochs that begin.
#[derive(Default)]
struct Epochs(usize);

impl Callback for Epochs {
    fn on_epoch_begin(&mut self, _: usize, _: &mut Logs, _: &mut FitContext) -> Result<()> {
        self.0 += 1;
        Ok(())
    }
}

/// seqnn's backup of `epoch_adam` (Keras 3's model), interrupted at the start of epoch 3.
fn interrupted_backup(name: &str) -> (Case, PathBuf) {
    let case = Case::new("epoch_adam", ("k3", "keras3")).unwrap();
    let d = scratch(name).join("backup");
    let (result, _, _) = case.run(&d, true);
    assert!(result.is_err());
    (case, d)
}

/// A fit on the backup in `d` that must be refused before training, with `needle` in its
/// error, the model and the backup as they were.
fn assert_refused(case: &Case, mut model: Sequential, d: &Path, needle: &str) {
    let before: Vec<(String, Vec<u8>)> = files(d)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(d.join(&f)).unwrap();
            (f, bytes)
        })
        .collect();
    let weights = model.get_weights();
    let steps = model.compiled().unwrap().optimizer().iterations();
    let mut epochs = Epochs::default();
    let mut backup = BackupAndRestore::new(d);
    let err = model
        .fit_with_callbacks(
            &case.x,
            &case.y,
            &case.options,
            &mut [&mut epochs, &mut backup],
        )
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains(needle), "{needle:?} not in: {message}");
    assert!(
        message.starts_with("BackupAndRestore: cannot restore the backup in")
            && message.ends_with("Delete the directory to train from the start"),
        "{message}"
    );
    assert_eq!(epochs.0, 0, "{needle}: no epoch ran");
    assert_same_weights(&model.get_weights(), &weights, needle);
    assert_eq!(model.compiled().unwrap().optimizer().iterations(), steps);
    let after: Vec<(String, Vec<u8>)> = files(d)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(d.join(&f)).unwrap();
            (f, bytes)
        })
        .collect();
    assert!(after == before, "{needle}: the backup is as it was");
}

/// A damaged backup: its name, the weights file's bytes and the metadata's text (none: no
/// such file), and what the error must say.
type Variant<'a> = (&'a str, Option<&'a [u8]>, Option<&'a str>, &'a str);

#[test]
fn a_damaged_or_foreign_backup_is_refused_before_training() {
    let (case, d) = interrupted_backup("damaged");
    let weights = std::fs::read(d.join("latest.weights.h5")).unwrap();
    let meta = std::fs::read_to_string(d.join("training_metadata.json")).unwrap();
    let variant = |name: &str, weights: Option<&[u8]>, meta: Option<&str>| -> PathBuf {
        let v = scratch(&format!("damaged-{name}")).join("backup");
        std::fs::create_dir_all(&v).unwrap();
        if let Some(w) = weights {
            std::fs::write(v.join("latest.weights.h5"), w).unwrap();
        }
        if let Some(m) = meta {
            std::fs::write(v.join("training_metadata.json"), m).unwrap();
        }
        v
    };
    let half = &weights[..weights.len() / 2];
    let cut_meta = &meta[..meta.len() / 2];
    let other_steps = meta.replace("\"iterations\":15", "\"iterations\":20");
    assert_ne!(other_steps, meta, "the metadata counts 15 steps: {meta}");
    let cases: Vec<Variant<'_>> = vec![
        ("truncated", Some(half), Some(&meta), "latest.weights.h5: "),
        (
            "not_json",
            Some(&weights),
            Some(cut_meta),
            "training_metadata.json: not the JSON",
        ),
        (
            "metadata_only",
            None,
            Some(&meta),
            "it is incomplete: training_metadata.json is there without latest.weights.h5",
        ),
        (
            "weights_only",
            Some(&weights),
            None,
            "it is incomplete: latest.weights.h5 is there without training_metadata.json",
        ),
        (
            "two_saves",
            Some(&weights),
            Some(&other_steps),
            "it is inconsistent: training_metadata.json was written after 20 optimizer steps, \
             and latest.weights.h5 holds the state after 15",
        ),
        (
            "no_epoch",
            Some(&weights),
            Some("{\"batch\": 0}"),
            "it has no `epoch`",
        ),
    ];
    for (name, w, m, needle) in cases {
        let v = variant(name, w, m);
        assert_refused(&case, case.model(), &v, needle);
    }
    // Another optimizer, another model.
    let mut sgd = case.model();
    sgd.compile("sgd", "mse").unwrap();
    assert_refused(
        &case,
        sgd,
        &d,
        "it was made with the optimizer Adam, and the model is compiled with SGD",
    );
    let mut other = Sequential::new();
    other.add(LSTM::new(5).input_shape((5, 2))).unwrap();
    other.add(Dense::new(1)).unwrap();
    other.compile("adam", "mse").unwrap();
    assert_refused(&case, other, &d, "latest.weights.h5: ");
}

/// Makes the next atomic write of `file` in `d` fail: a directory where its temporary file
/// goes.
struct BlockWrite {
    dir: PathBuf,
    file: &'static str,
    at_epoch_end: usize,
}

impl BlockWrite {
    fn blocker(&self) -> PathBuf {
        self.dir
            .join(format!(".{}.{}.tmp", self.file, std::process::id()))
    }
}

impl Callback for BlockWrite {
    fn on_epoch_end(&mut self, e: usize, _: &mut Logs, _: &mut FitContext) -> Result<()> {
        if e == self.at_epoch_end {
            std::fs::create_dir_all(self.blocker()).unwrap();
        }
        Ok(())
    }
}

#[test]
fn a_failed_save_leaves_the_previous_backup() {
    let case = Case::new("epoch_adam", ("k3", "keras3")).unwrap();
    let uninterrupted = &case.keras["uninterrupted"];
    let resume = |d: &Path, double: bool| {
        let mut model = case.model();
        let mut backup = BackupAndRestore::new(d).double_checkpoint(double);
        let history = model
            .fit_with_callbacks(&case.x, &case.y, &case.options, &mut [&mut backup])
            .unwrap();
        (history, model, backup)
    };
    // The weights' save at the end of epoch 2 fails: the backup of epoch 1 stays whole, and
    // the resumed run (epochs 2 to 5) ends on Keras's uninterrupted weights.
    for (file, double) in [("latest.weights.h5", false), ("latest.weights.h5", true)] {
        let d = scratch(&format!("failed-save-{double}")).join("backup");
        let mut block = BlockWrite {
            dir: d.clone(),
            file,
            at_epoch_end: 2,
        };
        let mut model = case.model();
        let mut backup = BackupAndRestore::new(&d).double_checkpoint(double);
        let err = model
            .fit_with_callbacks(
                &case.x,
                &case.y,
                &case.options,
                &mut [&mut block, &mut backup],
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("BackupAndRestore: cannot back up to") && err.contains("as it was"),
            "{err}"
        );
        assert_eq!(metadata(&d)["epoch"], 2);
        std::fs::remove_dir(block.blocker()).unwrap();
        let (history, model, _) = resume(&d, double);
        assert_eq!(history.epoch(), &[2, 3, 4, 5]);
        assert_weights(
            &model.get_weights(),
            &arrays(&uninterrupted["weights"]),
            "after a failed save",
        );
    }
    // The metadata's save fails after the weights' succeeded: the two files disagree, which is
    // refused; with double_checkpoint the previous pair is restored, with a warning.
    for double in [false, true] {
        let d = scratch(&format!("failed-metadata-{double}")).join("backup");
        let mut block = BlockWrite {
            dir: d.clone(),
            file: "training_metadata.json",
            at_epoch_end: 2,
        };
        let mut model = case.model();
        let mut backup = BackupAndRestore::new(&d).double_checkpoint(double);
        assert!(model
            .fit_with_callbacks(
                &case.x,
                &case.y,
                &case.options,
                &mut [&mut block, &mut backup]
            )
            .is_err());
        std::fs::remove_dir(block.blocker()).unwrap();
        if !double {
            assert_refused(&case, case.model(), &d, "it is inconsistent");
            continue;
        }
        let (history, model, backup) = resume(&d, true);
        assert_eq!(history.epoch(), &[2, 3, 4, 5]);
        assert_eq!(backup.restored_epoch(), Some(2));
        assert_weights(
            &model.get_weights(),
            &arrays(&uninterrupted["weights"]),
            "from .bkp",
        );
        assert_eq!(backup.warnings().len(), 1);
        assert!(
            backup.warnings()[0].contains("it is inconsistent"),
            "{:?}",
            backup.warnings()
        );
    }
}

#[test]
fn a_backup_dir_that_cannot_be_written_fails_before_training() {
    let (x, y) = data();
    let options = FitOptions::new().with_epochs(2).with_verbose(0);
    let file = scratch("unwritable").join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let bad: [(BackupAndRestore, &str); 3] = [
        (
            BackupAndRestore::new(file.join("backup")),
            "cannot write backups to",
        ),
        (
            BackupAndRestore::new(""),
            "Empty `backup_dir` argument passed",
        ),
        (
            BackupAndRestore::new(scratch("zero")).save_freq(SaveFreq::Batches(0)),
            "Invalid value for argument `save_freq`",
        ),
    ];
    for (mut backup, needle) in bad {
        let mut model = dropout_model(3);
        let weights = model.get_weights();
        let mut epochs = Epochs::default();
        let err = model
            .fit_with_callbacks(&x, &y, &options, &mut [&mut epochs, &mut backup])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("BackupAndRestore: ") && err.contains(needle),
            "{err}"
        );
        assert_eq!(epochs.0, 0);
        assert_same_weights(&model.get_weights(), &weights, needle);
    }
}

#[test]
fn a_kept_backup_resumes_after_its_last_epoch_and_other_files_stay() {
    let (x, y) = data();
    let options = FitOptions::new()
        .with_epochs(3)
        .with_batch_size(8)
        .with_verbose(0);
    let d = scratch("kept").join("backup");
    let mut model = dropout_model(5);
    let mut backup = BackupAndRestore::new(&d).delete_checkpoint(false);
    model
        .fit_with_callbacks(&x, &y, &options, &mut [&mut backup])
        .unwrap();
    assert_eq!(files(&d), ["latest.weights.h5", "training_metadata.json"]);
    // Every epoch done: nothing runs (as Keras 3, whose range(3, 3) is empty).
    let mut again = dropout_model(6);
    let history = again
        .fit_with_callbacks(&x, &y, &options, &mut [&mut backup])
        .unwrap();
    assert!(history.epoch().is_empty());
    assert_same_weights(&again.get_weights(), &model.get_weights(), "nothing ran");
    // More epochs: only the new ones; a file of another program in the directory stays, and
    // so does the directory, when the backup is deleted.
    std::fs::write(d.join("notes.txt"), "mine").unwrap();
    let mut more = dropout_model(6);
    let history = more
        .fit_with_callbacks(
            &x,
            &y,
            &options.clone().with_epochs(5),
            &mut [&mut BackupAndRestore::new(&d)],
        )
        .unwrap();
    assert_eq!(history.epoch(), &[3, 4]);
    assert_eq!(files(&d), ["notes.txt"]);
}

#[test]
fn a_batch_backup_after_a_resume_records_the_epoch_it_is_in() {
    // Keras 3.15 writes "epoch": 0 here (its counter starts at 0 in a new callback); seqnn the
    // epoch the run is in, so that a second interruption resumes there too.
    let case = Case::new("batches_every_2", ("k3", "keras3")).unwrap();
    let d = scratch("batch-after-resume").join("backup");
    let (result, _, _) = case.run(&d, true);
    assert!(result.is_err());
    assert_eq!(
        (metadata(&d)["epoch"].clone(), metadata(&d)["batch"].clone()),
        (2.into(), 3.into())
    );
    let mut model = case.model();
    let mut backup = case.backup(&d);
    let mut interrupt = Interrupt::new("on_train_batch_end", 2, Some(1));
    assert!(model
        .fit_with_callbacks(
            &case.x,
            &case.y,
            &case.options,
            &mut [&mut backup, &mut interrupt]
        )
        .is_err());
    assert_eq!(backup.restored_epoch(), Some(2));
    assert_eq!(
        (metadata(&d)["epoch"].clone(), metadata(&d)["batch"].clone()),
        (2.into(), 1.into())
    );
}

#[test]
fn a_functional_model_resumes_too() {
    use seqnn::{Apply, Input, Model, GRU};
    let build = |seed| {
        seqnn::set_random_seed(seed);
        let a = Input::new((5, 2));
        let y = Dense::new(1)
            .apply(&GRU::new(3).apply(&a).unwrap())
            .unwrap();
        let mut model = Model::new(&[a], &[y]).unwrap();
        model.compile("rmsprop", "mse").unwrap();
        model
    };
    let (x, y) = data();
    let options = FitOptions::new()
        .with_epochs(4)
        .with_batch_size(8)
        .with_verbose(0);
    let d = scratch("functional").join("backup");
    let mut whole = build(1);
    whole.fit(&[x.view()], y.view(), &options).unwrap();
    let mut first = build(1);
    let mut interrupt = Interrupt::new("on_epoch_begin", 2, None);
    let mut backup = BackupAndRestore::new(&d);
    assert!(first
        .fit_with_callbacks(
            &[x.view()],
            y.view(),
            &options,
            &mut [&mut backup, &mut interrupt]
        )
        .is_err());
    let mut resumed = build(2);
    let history = resumed
        .fit_with_callbacks(&[x.view()], y.view(), &options, &mut [&mut backup])
        .unwrap();
    assert_eq!(history.epoch(), &[2, 3]);
    assert_same_weights(&resumed.get_weights(), &whole.get_weights(), "functional");
}

#[test]
fn a_weights_checkpoint_holds_the_optimizer_state() {
    // Keras 3's save_weights of a compiled model writes optimizer/vars: so does a
    // ModelCheckpoint(save_weights_only=True) during fit.
    let (x, y) = data();
    let d = scratch("weights-checkpoint");
    let mut model = dropout_model(4);
    let mut ckpt = seqnn::ModelCheckpoint::new(d.join("w.weights.h5")).save_weights_only(true);
    let options = FitOptions::new()
        .with_epochs(1)
        .with_batch_size(8)
        .with_verbose(0);
    model
        .fit_with_callbacks(&x, &y, &options, &mut [&mut ckpt])
        .unwrap();
    let file = hdf5_pure::File::open(d.join("w.weights.h5")).unwrap();
    let vars = file.group("optimizer/vars").unwrap().datasets().unwrap();
    let optimizer = model.compiled().unwrap().optimizer();
    // iteration, learning_rate, then m and v of each of the 5 trainable weights.
    assert_eq!(vars.len(), optimizer.variables().len());
    assert_eq!(vars.len(), 2 + 2 * 5);
}
