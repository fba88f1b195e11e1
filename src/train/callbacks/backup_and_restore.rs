//! Keras's `BackupAndRestore`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::session::{self, RngState};
use crate::train::callbacks::save_freq::{BatchCount, SaveFreq};
use crate::train::callbacks::{Callback, FitContext, Logs, Said};

/// The weights and the optimizer's state, as Keras 3's `model.save_weights`.
const WEIGHTS: &str = "latest.weights.h5";
/// The epoch to resume at, as Keras 3 writes it (`{"epoch": 3, "batch": 0}`), with seqnn's own
/// keys beside.
const METADATA: &str = "training_metadata.json";
/// What `double_checkpoint` appends to the previous backup's names.
const PREVIOUS: &str = ".bkp";

/// Backs up the training state so that an interrupted `fit` resumes where it stopped: Keras's
/// `keras.callbacks.BackupAndRestore(backup_dir, save_freq="epoch", double_checkpoint=False,
/// delete_checkpoint=True)`.
///
/// At the end of each epoch (or every `save_freq` batches) it writes, in `backup_dir`, what
/// Keras 3 writes there: `latest.weights.h5`, the model's weights and its optimizer's state
/// (Keras 3's `save_weights`, which Keras 3 reads back), and `training_metadata.json`, the
/// number of epochs done (`{"epoch": 3, "batch": 0, ...}`). When `fit` begins, a backup in
/// `backup_dir` is restored (the weights, the optimizer's state with its step count and
/// learning rate) and `fit` starts at the epoch it holds: a run interrupted during epoch 3
/// (from 0) runs epochs 3 to the end when `fit` is called again with the same arguments, and
/// ends with the weights of the uninterrupted run. Its [`History`](crate::History) holds the
/// epochs it ran, as Keras's. When `fit` ends normally (also when a callback stops it), the
/// backup is deleted (`delete_checkpoint`); when it stops with an error (a step, a callback,
/// the process killed), the backup stays for the next run.
///
/// ```
/// use ndarray::{Array2, Array3};
/// use seqnn::{BackupAndRestore, Callback, Dense, Error, FitContext, FitOptions, Logs, Sequential, SimpleRNN};
/// # let dir = std::env::temp_dir().join(format!("seqnn-doc-backup-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// /// Fails at the start of epoch 4, as a run that is killed there.
/// struct Interrupt;
/// impl Callback for Interrupt {
///     fn on_epoch_begin(&mut self, epoch: usize, _: &mut Logs, _: &mut FitContext<'_>) -> seqnn::Result<()> {
///         if epoch == 4 {
///             return Err(Error::Callback { callback: "Interrupt".into(), message: "interrupted".into() });
///         }
///         Ok(())
///     }
/// }
/// let mut model = Sequential::new();
/// model.add(SimpleRNN::new(3).input_shape((4, 2)))?;
/// model.add(Dense::new(1))?;
/// model.compile("sgd", "mse")?;
/// let (x, y) = (Array3::<f32>::from_elem((5, 4, 2), 0.5), Array2::<f32>::zeros((5, 1)));
/// let options = FitOptions::new().with_epochs(10).with_batch_size(1).with_verbose(0);
/// // keras.callbacks.BackupAndRestore(backup_dir=dir)
/// let mut backup = BackupAndRestore::new(&dir);
/// assert!(model.fit_with_callbacks(&x, &y, &options, &mut [&mut backup, &mut Interrupt]).is_err());
/// // Run again: epochs 4 to 9, from the weights and optimizer state at the end of epoch 3.
/// let history = model.fit_with_callbacks(&x, &y, &options, &mut [&mut backup])?;
/// assert_eq!(history.epoch(), &[4, 5, 6, 7, 8, 9]);
/// assert_eq!(backup.restored_epoch(), Some(4));
/// assert!(!dir.exists()); // deleted at the normal end
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// The backup also holds seqnn's random generator (the one [`set_random_seed`] seeds, which
/// draws the shuffled order of each epoch and the dropout masks), and the restore puts it
/// back: a resumed run shuffles as the uninterrupted one would have, even in a new process
/// with another seed. Keras draws its shuffles apart from any backup, so its resumed run with
/// `shuffle=True` takes other batches than the uninterrupted one.
///
/// Place it last in the callback list, so that a backup holds what the other callbacks did at
/// the end of its epoch (a learning rate [`ReduceLROnPlateau`](crate::ReduceLROnPlateau)
/// lowered, a row [`CSVLogger`](crate::CSVLogger) wrote). The other callbacks' own state is not
/// backed up, as in Keras: a resumed [`EarlyStopping`](crate::EarlyStopping) counts its
/// patience from the resumed epoch and forgets its best weights; a
/// [`ModelCheckpoint`](crate::ModelCheckpoint) made anew forgets its best value (the same one
/// keeps it, as Keras's does across `fit` calls).
///
/// # Backups by batches
///
/// With [`SaveFreq::Batches`], the backup is written every that many batches (counted across
/// epochs) and also holds the number of epochs done; a resumed run starts at the *start* of the
/// epoch it was in, from the weights of its last backup, as Keras 3 does (the batches of that
/// epoch before the backup are trained again, so the result is not that of an uninterrupted
/// run). tf_keras resumes at the batch after the backup instead. Keras 3.15 writes `"epoch": 0`
/// in a batch backup made before the first epoch end of a resumed run (its epoch counter is not
/// restored); seqnn writes the epoch the run is in.
///
/// # Damaged backups
///
/// A backup that cannot be read (a damaged or truncated file, weights or optimizer state that
/// do not fit the model, an optimizer of another class, a `latest.weights.h5` and a
/// `training_metadata.json` that were not written by the same save) is an error before
/// training: the run does not start from scratch unnoticed. With `double_checkpoint`, the
/// previous backup (`*.bkp`, one save older) is restored instead, with a warning, as in Keras
/// 3. Each file is written atomically (to a temporary file, then renamed), so a failed save
/// leaves the backup that was there. A `backup_dir` that cannot be written is an error before
/// training.
///
/// Keras 3 deletes the whole `backup_dir` at the end; seqnn deletes the files it writes and
/// then the directory if it is empty, so a directory given by mistake loses nothing else.
/// tf_keras's `save_before_preemption` (saving when a cluster preempts a worker) has no
/// counterpart: seqnn trains on one machine.
///
/// [`set_random_seed`]: crate::set_random_seed
#[derive(Debug, Clone)]
pub struct BackupAndRestore {
    backup_dir: PathBuf,
    save_freq: SaveFreq,
    double_checkpoint: bool,
    delete_checkpoint: bool,
    current_epoch: usize,
    batches: BatchCount,
    restored_epoch: Option<usize>,
    said: Said,
}

/// What `training_metadata.json` says.
#[derive(Debug, Clone, PartialEq)]
struct Metadata {
    /// The epochs done: the epoch to resume at.
    epoch: usize,
    /// The last batch of the epoch a batch backup was made after (0 for an epoch's).
    batch: usize,
    /// seqnn's: the optimizer's class and step count when the weights were saved, to check
    /// that the two files are of the same save; the random generator.
    optimizer: Option<String>,
    iterations: Option<u64>,
    rng: Option<RngState>,
}

/// A backup read and checked, ready to be set.
struct Backup {
    metadata: Metadata,
    weights: Vec<ndarray::ArrayD<f32>>,
    compiled: Option<crate::Compiled>,
}

impl BackupAndRestore {
    /// Backs up to `backup_dir`, with Keras's defaults: at each epoch end, one backup, deleted
    /// when training ends. The directory is made if missing; it should hold nothing else (in
    /// particular not another run's backup, nor a [`ModelCheckpoint`](crate::ModelCheckpoint)'s
    /// files).
    pub fn new(backup_dir: impl AsRef<Path>) -> Self {
        BackupAndRestore {
            backup_dir: backup_dir.as_ref().to_path_buf(),
            save_freq: SaveFreq::Epoch,
            double_checkpoint: false,
            delete_checkpoint: true,
            current_epoch: 0,
            batches: BatchCount::default(),
            restored_epoch: None,
            said: Said::default(),
        }
    }

    /// Keras's `save_freq` (default `"epoch"`): a backup at each epoch end, or every that many
    /// batches.
    #[must_use]
    pub fn save_freq(mut self, freq: SaveFreq) -> Self {
        self.save_freq = freq;
        self
    }

    /// Keras 3's `double_checkpoint` (default false): keep the previous backup too
    /// (`latest.weights.h5.bkp`, `training_metadata.json.bkp`), and restore it when the latest
    /// cannot be read.
    #[must_use]
    pub fn double_checkpoint(mut self, double: bool) -> Self {
        self.double_checkpoint = double;
        self
    }

    /// Keras's `delete_checkpoint` (default true): delete the backup when training ends
    /// normally.
    #[must_use]
    pub fn delete_checkpoint(mut self, delete: bool) -> Self {
        self.delete_checkpoint = delete;
        self
    }

    /// The directory of the backup.
    pub fn backup_dir(&self) -> &Path {
        &self.backup_dir
    }

    /// Whether `backup_dir` holds a backup (whole or not) that the next `fit` would restore.
    pub fn has_backup(&self) -> bool {
        self.path(WEIGHTS).exists() || self.path(METADATA).exists()
    }

    /// The epoch the last `fit` resumed at, from its backup; `None` when it found none.
    pub fn restored_epoch(&self) -> Option<usize> {
        self.restored_epoch
    }

    /// The warnings of the last `fit` (a damaged latest backup, when the previous one was
    /// restored instead).
    pub fn warnings(&self) -> &[String] {
        &self.said.warnings
    }

    fn path(&self, name: &str) -> PathBuf {
        self.backup_dir.join(name)
    }

    fn previous(&self, name: &str) -> PathBuf {
        self.backup_dir.join(format!("{name}{PREVIOUS}"))
    }

    fn error(&self, message: String) -> Error {
        Error::Callback {
            callback: "BackupAndRestore".into(),
            message,
        }
    }

    /// The options, and that `backup_dir` can be written (made if missing).
    fn check(&self) -> Result<()> {
        if self.backup_dir.as_os_str().is_empty() {
            return Err(self.error("Empty `backup_dir` argument passed".into()));
        }
        if self.save_freq == SaveFreq::Batches(0) {
            return Err(self.error(
                "Invalid value for argument `save_freq`. Received: save_freq=0. Expected \
                 either 'epoch' or a positive number of batches."
                    .into(),
            ));
        }
        crate::keras::check_writable(&self.backup_dir).map_err(|e| {
            self.error(format!(
                "cannot write backups to {}: {e}",
                self.backup_dir.display()
            ))
        })
    }

    /// The backup of `weights` and `metadata`, read and checked against the model: `None` when
    /// neither file is there; what is wrong with it otherwise.
    fn read(
        &self,
        weights: &Path,
        metadata: &Path,
        fit: &FitContext<'_>,
    ) -> std::result::Result<Option<Backup>, String> {
        let incomplete = |there: &Path, missing: &Path| {
            Err(format!(
                "it is incomplete: {} is there without {}",
                file_name(there),
                file_name(missing)
            ))
        };
        match (weights.exists(), metadata.exists()) {
            (false, false) => return Ok(None),
            (true, false) => return incomplete(weights, metadata),
            (false, true) => return incomplete(metadata, weights),
            (true, true) => {}
        }
        let text =
            std::fs::read_to_string(metadata).map_err(|e| Error::io(metadata, e).to_string())?;
        let meta = parse_metadata(&text).map_err(|e| format!("{}: {e}", metadata.display()))?;
        let ours = fit.optimizer().class_name();
        if let Some(class) = meta.optimizer.as_deref().filter(|&c| c != ours) {
            return Err(format!(
                "it was made with the optimizer {class}, and the model is compiled with {ours}: \
                 it is another run's"
            ));
        }
        let (w, compiled) = fit.read_weights(weights).map_err(|e| e.to_string())?;
        let steps = compiled.as_ref().map_or(0, |c| c.optimizer().iterations());
        if let Some(expected) = meta.iterations.filter(|&n| n != steps) {
            return Err(format!(
                "it is inconsistent: {} was written after {expected} optimizer steps, and {} \
                 holds the state after {steps} (a save was interrupted between the two files)",
                file_name(metadata),
                file_name(weights)
            ));
        }
        Ok(Some(Backup {
            metadata: meta,
            weights: w,
            compiled,
        }))
    }

    /// The latest backup, or with `double_checkpoint` the previous one when the latest cannot be
    /// read (copied over the latest, as Keras 3 does, so that the next save keeps it).
    fn read_latest_or_previous(&mut self, fit: &FitContext<'_>) -> Result<Option<Backup>> {
        let dir = self.backup_dir.display();
        let err = match self.read(&self.path(WEIGHTS), &self.path(METADATA), fit) {
            Ok(backup) => return Ok(backup),
            Err(e) => e,
        };
        let refused = |message: String| {
            self.error(format!(
                "cannot restore the backup in {dir}: {message}. Delete the directory to train \
                 from the start"
            ))
        };
        if !self.double_checkpoint || !self.previous(WEIGHTS).exists() {
            return Err(refused(err));
        }
        let backup = self
            .read(&self.previous(WEIGHTS), &self.previous(METADATA), fit)
            .map_err(|e| refused(format!("{err}; nor the previous one: {e}")))?;
        for name in [WEIGHTS, METADATA] {
            copy_atomic(&self.previous(name), &self.path(name))
                .map_err(|e| refused(e.to_string()))?;
        }
        let warning = format!(
            "BackupAndRestore: the latest backup in {dir} cannot be restored ({err}); the \
             previous one is restored"
        );
        self.said.warn(fit.dialect(), warning);
        Ok(backup)
    }

    /// Writes the backup: the weights and optimizer state, then the metadata, each atomically;
    /// with `double_checkpoint` the backup that was there is kept as the previous one first.
    fn save(&self, fit: &FitContext<'_>) -> Result<()> {
        let epoch = self.current_epoch;
        let failed = |e: Error| {
            self.error(format!(
                "cannot back up to {} (the backup there is as it was): {e}",
                self.backup_dir.display()
            ))
        };
        std::fs::create_dir_all(&self.backup_dir)
            .map_err(|e| failed(Error::io(&self.backup_dir, e)))?;
        if self.double_checkpoint {
            for name in [WEIGHTS, METADATA] {
                if self.path(name).exists() {
                    copy_atomic(&self.path(name), &self.previous(name)).map_err(failed)?;
                }
            }
        }
        fit.save_weights(&self.path(WEIGHTS)).map_err(failed)?;
        let metadata = Metadata {
            epoch,
            batch: self.batches.last_batch(),
            optimizer: Some(fit.optimizer().class_name().to_string()),
            iterations: Some(fit.optimizer().iterations()),
            rng: Some(session::rng_state()),
        };
        crate::keras::write_atomic(&self.path(METADATA), metadata_json(&metadata).as_bytes())
            .map_err(failed)
    }

    /// Deletes the files of the backup, and `backup_dir` if nothing else is left in it.
    fn delete(&self) -> Result<()> {
        let entries = match std::fs::read_dir(&self.backup_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&self.backup_dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.backup_dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_backup_file(&name) {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
        // Left when it holds other files.
        let _ = std::fs::remove_dir(&self.backup_dir);
        Ok(())
    }
}

/// Whether a file of `backup_dir` is one a backup writes: the two files, their previous
/// copies, and the temporary files of their atomic writes (left by a process killed in one).
fn is_backup_file(name: &str) -> bool {
    [WEIGHTS, METADATA].iter().any(|file| {
        name == *file
            || name.strip_suffix(PREVIOUS) == Some(*file)
            || name
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(".tmp"))
                .is_some_and(|n| {
                    n.strip_prefix(*file)
                        .or_else(|| n.strip_prefix(&format!("{file}{PREVIOUS}")))
                        .is_some_and(|pid| pid.starts_with('.'))
                })
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Copies `from` over `to` atomically.
fn copy_atomic(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).map_err(|e| Error::io(from, e))?;
    crate::keras::write_atomic(to, &bytes)
}

/// `training_metadata.json` as Keras 3 writes it (`{"epoch": 3, "batch": 0}`), then seqnn's
/// keys, which Keras ignores: `{"seqnn": {"optimizer", "iterations", "rng": {"seed" (hex),
/// "stream", "word_pos" (a decimal string: it may pass 2^53)}}}`.
fn metadata_json(m: &Metadata) -> String {
    let mut seqnn = serde_json::Map::new();
    if let Some(class) = &m.optimizer {
        seqnn.insert("optimizer".into(), json!(class));
    }
    if let Some(n) = m.iterations {
        seqnn.insert("iterations".into(), json!(n));
    }
    if let Some(rng) = &m.rng {
        let seed: String = rng.seed.iter().map(|b| format!("{b:02x}")).collect();
        seqnn.insert(
            "rng".into(),
            json!({"seed": seed, "stream": rng.stream, "word_pos": rng.word_pos.to_string()}),
        );
    }
    // serde_json's maps keep their keys sorted, Keras's dict its order: written by hand.
    format!(
        "{{\"epoch\": {}, \"batch\": {}, \"seqnn\": {}}}",
        m.epoch,
        m.batch,
        Value::Object(seqnn)
    )
}

/// Reads `training_metadata.json`: Keras's keys (`epoch` needed, `batch`), and seqnn's when
/// there (a backup Keras 3 wrote has none).
fn parse_metadata(text: &str) -> std::result::Result<Metadata, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("not the JSON of a backup's training metadata ({e})"))?;
    let count = |v: &Value, key: &str| -> std::result::Result<Option<u64>, String> {
        match v.get(key) {
            None => Ok(None),
            Some(n) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("`{key}` is {n}, where a count of 0 or more is expected")),
        }
    };
    let to_usize = |n: u64, key: &str| {
        usize::try_from(n).map_err(|_| format!("`{key}` is {n}, which is too large"))
    };
    let epoch = count(&value, "epoch")?
        .ok_or_else(|| "it has no `epoch`: it is not a backup's training metadata".to_string())?;
    let batch = count(&value, "batch")?.unwrap_or(0);
    let mut metadata = Metadata {
        epoch: to_usize(epoch, "epoch")?,
        batch: to_usize(batch, "batch")?,
        optimizer: None,
        iterations: None,
        rng: None,
    };
    let Some(ours) = value.get("seqnn") else {
        return Ok(metadata);
    };
    metadata.optimizer = match ours.get("optimizer") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("`seqnn.optimizer` is {other}, not a class name")),
    };
    metadata.iterations = count(ours, "iterations").map_err(|e| format!("seqnn.{e}"))?;
    if let Some(rng) = ours.get("rng") {
        metadata.rng = Some(parse_rng(rng).map_err(|e| format!("`seqnn.rng`: {e}"))?);
    }
    Ok(metadata)
}

fn parse_rng(v: &Value) -> std::result::Result<RngState, String> {
    let hex = v
        .get("seed")
        .and_then(Value::as_str)
        .filter(|s| s.len() == 64 && s.is_ascii())
        .ok_or("`seed` is not 64 hexadecimal digits")?;
    let mut seed = [0u8; 32];
    for (i, byte) in seed.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| "`seed` is not 64 hexadecimal digits")?;
    }
    let stream = v
        .get("stream")
        .and_then(Value::as_u64)
        .ok_or("`stream` is not a count")?;
    let word_pos = v
        .get("word_pos")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<u128>().ok())
        .ok_or("`word_pos` is not a decimal count")?;
    Ok(RngState {
        seed,
        stream,
        word_pos,
    })
}

impl Callback for BackupAndRestore {
    fn on_train_begin(&mut self, _logs: &mut Logs, fit: &mut FitContext<'_>) -> Result<()> {
        self.said = Said::default();
        self.restored_epoch = None;
        self.batches = BatchCount::default();
        self.check()?;
        let Some(backup) = self.read_latest_or_previous(fit)? else {
            return Ok(());
        };
        fit.restore(&backup.weights, backup.compiled)?;
        if let Some(rng) = &backup.metadata.rng {
            session::set_rng_state(rng);
        }
        let epoch = backup.metadata.epoch;
        // Keras 3: `initial_epoch = self._initial_epoch or initial_epoch`: a backup made before
        // the first epoch ended leaves fit's own.
        if epoch > 0 {
            fit.set_initial_epoch(epoch);
        }
        self.restored_epoch = Some(epoch);
        Ok(())
    }

    fn on_epoch_begin(
        &mut self,
        epoch: usize,
        _logs: &mut Logs,
        _fit: &mut FitContext<'_>,
    ) -> Result<()> {
        self.current_epoch = epoch;
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        batch: usize,
        _logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        if self.batches.save_after(batch, self.save_freq) {
            self.save(fit)?;
        }
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        _logs: &mut Logs,
        fit: &mut FitContext<'_>,
    ) -> Result<()> {
        self.current_epoch = epoch + 1;
        self.batches.end_epoch();
        if self.save_freq == SaveFreq::Epoch {
            self.save(fit)?;
        }
        Ok(())
    }

    fn on_train_end(&mut self, _logs: &mut Logs, _fit: &mut FitContext<'_>) -> Result<()> {
        if self.delete_checkpoint {
            self.delete().map_err(|e| {
                self.error(format!(
                    "cannot delete the backup in {}: {e}",
                    self.backup_dir.display()
                ))
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_reads_what_it_writes_and_what_keras_writes() {
        let m = Metadata {
            epoch: 3,
            batch: 2,
            optimizer: Some("Adam".into()),
            iterations: Some(17),
            rng: Some(RngState {
                seed: [0xab; 32],
                stream: 5,
                word_pos: u128::from(u64::MAX) * 16 + 3,
            }),
        };
        let text = metadata_json(&m);
        assert!(text.starts_with("{\"epoch\": 3, \"batch\": 2, \"seqnn\": {"));
        assert_eq!(parse_metadata(&text).unwrap(), m);
        // Keras 3's own: no seqnn keys.
        let keras = parse_metadata("{\"epoch\": 3, \"batch\": 0}").unwrap();
        assert_eq!((keras.epoch, keras.iterations, keras.rng), (3, None, None));
    }

    #[test]
    fn bad_metadata_is_refused_with_the_reason() {
        for (text, reason) in [
            ("{\"epoch\": 3, \"ba", "not the JSON"),
            ("{\"batch\": 0}", "no `epoch`"),
            ("{\"epoch\": -1}", "`epoch` is -1"),
            ("{\"epoch\": \"3\"}", "`epoch` is \"3\""),
            ("[3]", "no `epoch`"),
            (
                "{\"epoch\": 1, \"seqnn\": {\"rng\": {\"seed\": \"zz\"}}}",
                "`seed` is not 64",
            ),
            (
                "{\"epoch\": 1, \"seqnn\": {\"iterations\": 1.5}}",
                "seqnn.`iterations` is 1.5",
            ),
        ] {
            let e = parse_metadata(text).unwrap_err();
            assert!(e.contains(reason), "{text}: {e}");
        }
    }

    #[test]
    fn only_the_backup_files_are_deleted() {
        for name in [
            "latest.weights.h5",
            "training_metadata.json",
            "latest.weights.h5.bkp",
            "training_metadata.json.bkp",
            ".latest.weights.h5.1234.tmp",
            ".training_metadata.json.bkp.99.tmp",
        ] {
            assert!(is_backup_file(name), "{name}");
        }
        for name in [
            "model.keras",
            "latest.weights.h5x",
            ".latest.weights.h5x.1.tmp",
            "notes.txt",
            ".latest.weights.h5",
        ] {
            assert!(!is_backup_file(name), "{name}");
        }
    }
}
