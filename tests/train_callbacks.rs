//! Callbacks against Keras: each case of `tests/fixtures/train/callbacks/`
//! (`tools/keras_reference/generate_train_callbacks.py`) is a SimpleRNN(3) -> Dense(1) model,
//! compiled with SGD and MSE and saved untrained by tf_keras 2.21 and by Keras 3.15, then
//! trained by each Keras with callbacks (batches of 8, no shuffling, validation data). seqnn
//! loads each file (compiled from it, so in its Keras's dialect), trains it with the same
//! callbacks, and must stop at the same epoch, log the same history (1e-4), end with the same
//! weights (1e-4: restored or not), set the same learning rates, write the same checkpoint
//! files holding the same weights and the same CSV, print Keras's messages and warnings, and
//! run the hooks in Keras's order.
#![cfg(feature = "keras")]

mod common;

use std::path::{Path, PathBuf};

use common::files;

use ndarray::{ArrayD, IxDyn};
use seqnn::{
    load_model, CSVLogger, Callback, EarlyStopping, Error, FitContext, FitOptions, LambdaCallback,
    LearningRateScheduler, Logs, ModelCheckpoint, MonitorMode, ReduceLROnPlateau, SaveFreq,
    Sequential, TerminateOnNaN,
};
use serde_json::Value;

const TOL: f32 = 1e-4;
const LIBS: [(&str, &str); 2] = [("tf", "tf_keras"), ("k3", "keras3")];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/callbacks")
}

fn case(name: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `{"shape", "data"}` as an array, `null` as NaN (the generator writes NaN as null).
fn array(v: &Value) -> ArrayD<f32> {
    let shape: Vec<usize> = (v["shape"].as_array().unwrap().iter())
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data = (v["data"].as_array().unwrap().iter())
        .map(|x| x.as_f64().map_or(f32::NAN, |x| x as f32))
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

fn close(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= TOL * b.abs().max(1.0)
}

fn assert_weights(ours: &[ArrayD<f32>], keras: &Value, what: &str) {
    let keras: Vec<ArrayD<f32>> = keras.as_array().unwrap().iter().map(array).collect();
    assert_eq!(ours.len(), keras.len(), "{what}: weight count");
    for (i, (a, b)) in ours.iter().zip(&keras).enumerate() {
        assert_eq!(a.shape(), b.shape(), "{what}: weight {i}");
        for (j, (&x, &y)) in a.iter().zip(b).enumerate() {
            assert!(
                close(x, y),
                "{what}: weight {i}[{j}] {x} against Keras's {y}"
            );
        }
    }
}

/// One library's run of a case: the model from its file, the data, the options.
struct Run {
    model: Sequential,
    x: ArrayD<f32>,
    y: ArrayD<f32>,
    options: FitOptions,
    keras: Value,
    what: String,
}

fn setup(name: &str, lib: (&str, &str)) -> Run {
    let f = case(name);
    let model = load_model(dir().join(format!("{name}.{}.keras", lib.0))).unwrap();
    assert!(model.compiled().is_some(), "{name}: compiled from the file");
    let options = common::fixture_fit_options(&f);
    Run {
        model,
        x: array(&f["x"]),
        y: array(&f["y"]),
        options,
        keras: f["results"][lib.1].clone(),
        what: format!("{name}.{}", lib.0),
    }
}

impl Run {
    fn fit(&mut self, callbacks: &mut [&mut dyn Callback]) -> seqnn::Result<seqnn::History> {
        self.model
            .fit_with_callbacks(&self.x, &self.y, &self.options, callbacks)
    }

    /// The history of fit `i` (a case may fit twice) against Keras's: epochs, keys, values.
    fn check_history(&self, history: &seqnn::History, i: usize) {
        let keras = &self.keras["histories"][i];
        let epochs: Vec<usize> = (keras["epoch"].as_array().unwrap().iter())
            .map(|e| e.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(
            history.epoch(),
            epochs.as_slice(),
            "{}: epochs run",
            self.what
        );
        let keys: Vec<&str> = (keras["history"].as_object().unwrap().keys())
            .map(String::as_str)
            .collect();
        let mut ours: Vec<&str> = history.history().keys().map(String::as_str).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        ours.sort();
        assert_eq!(ours, sorted, "{}: history keys", self.what);
        for key in keys {
            let want = &keras["history"][key];
            for (e, (a, b)) in (history.get(key).unwrap().iter())
                .zip(want.as_array().unwrap())
                .enumerate()
            {
                let b = b.as_f64().map_or(f32::NAN, |b| b as f32);
                assert!(
                    close(*a, b),
                    "{}: {key} of epoch {e}: {a} against Keras's {b}",
                    self.what
                );
            }
        }
    }

    fn check_weights(&self) {
        assert_weights(
            &self.model.get_weights(),
            &self.keras["weights"],
            &self.what,
        );
    }

    fn check_learning_rate(&self) {
        let want = self.keras["learning_rate"].as_f64().unwrap() as f32;
        let ours = self.model.compiled().unwrap().optimizer().learning_rate();
        assert!(
            close(ours, want),
            "{}: learning rate {ours} against Keras's {want}",
            self.what
        );
    }

    /// What the callbacks printed, as Keras printed it (one `print` per message).
    fn check_printed(&self, messages: &[String]) {
        let ours: String = messages.iter().map(|m| format!("{m}\n")).collect();
        let keras = without_tmp_dirs(self.keras["printed"].as_str().unwrap());
        assert_eq!(without_tmp_dirs(&ours), keras, "{}: printed", self.what);
    }

    fn check_warnings(&self, warnings: &[String]) {
        let keras: Vec<&str> = (self.keras["warnings"].as_array().unwrap().iter())
            .map(|w| w.as_str().unwrap())
            .collect();
        assert_eq!(warnings, keras.as_slice(), "{}: warnings", self.what);
    }
}

/// A text with its temporary directories (`/tmp/tmpab12cd/`, or seqnn's test directories)
/// replaced by `<dir>/`.
fn without_tmp_dirs(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split(" to ").enumerate() {
        if i > 0 {
            out.push_str(" to ");
        }
        match (part.starts_with('/'), part.rfind('/')) {
            (true, Some(slash)) => {
                out.push_str("<dir>");
                out.push_str(&part[slash..]);
            }
            _ => out.push_str(part),
        }
    }
    out
}

fn scratch(name: &str) -> PathBuf {
    common::scratch("callbacks", name)
}

#[test]
fn early_stopping_stops_and_restores_as_keras() {
    type Make = fn() -> EarlyStopping;
    let cases: [(&str, Make); 4] = [
        ("early_stopping_restore", || {
            EarlyStopping::new()
                .monitor("val_loss")
                .min_delta(0.005)
                .patience(2)
                .restore_best_weights(true)
                .verbose(1)
        }),
        ("early_stopping_no_restore", || {
            EarlyStopping::new()
                .monitor("loss")
                .min_delta(0.02)
                .patience(1)
        }),
        ("early_stopping_baseline", || {
            EarlyStopping::new()
                .patience(3)
                .baseline(0.01)
                .restore_best_weights(true)
        }),
        ("early_stopping_start_from_epoch_max", || {
            EarlyStopping::new()
                .monitor("loss")
                .mode(MonitorMode::Max)
                .patience(1)
                .start_from_epoch(3)
        }),
    ];
    for (name, make) in cases {
        for lib in LIBS {
            let mut run = setup(name, lib);
            let mut stop = make();
            let history = run.fit(&mut [&mut stop]).unwrap();
            run.check_history(&history, 0);
            run.check_weights();
            run.check_printed(stop.messages());
            let epochs = run.keras["histories"][0]["epoch"].as_array().unwrap().len();
            let max = run.options.epochs();
            let want = if epochs < max { epochs - 1 } else { 0 };
            assert_eq!(stop.stopped_epoch(), want, "{}: stopped_epoch", run.what);
        }
    }
}

#[test]
fn an_unknown_monitor_gets_keras_warning() {
    for lib in LIBS {
        let mut run = setup("early_stopping_unknown_monitor", lib);
        let mut stop = EarlyStopping::new()
            .monitor("val_nope")
            .mode(MonitorMode::Min);
        let history = run.fit(&mut [&mut stop]).unwrap();
        run.check_history(&history, 0);
        run.check_warnings(stop.warnings());
        assert_eq!(
            stop.warnings()[0],
            "Early stopping conditioned on metric `val_nope` which is not available. \
             Available metrics are: loss,val_loss"
        );
    }
}

#[test]
fn an_unknown_monitor_in_auto_mode_is_each_keras_rule() {
    // tf_keras minimizes any key it does not know; Keras 3 cannot tell and refuses it (at the
    // end of the first epoch; seqnn before training, with the weights untouched).
    let mut run = setup("early_stopping_unknown_monitor_auto", LIBS[0]);
    let mut stop = EarlyStopping::new().monitor("val_nope");
    let history = run.fit(&mut [&mut stop]).unwrap();
    run.check_history(&history, 0);
    run.check_warnings(stop.warnings());

    let mut run = setup("early_stopping_unknown_monitor_auto", LIBS[1]);
    let before = run.model.get_weights();
    let mut stop = EarlyStopping::new().monitor("val_nope");
    let err = run.fit(&mut [&mut stop]).unwrap_err();
    let keras = run.keras["error"].as_str().unwrap();
    assert!(matches!(err, Error::Callback { .. }), "{err:?}");
    assert_eq!(
        format!(
            "ValueError: {}",
            err.to_string().trim_start_matches("EarlyStopping: ")
        ),
        keras
    );
    assert_eq!(run.model.get_weights(), before, "nothing trained");
}

#[test]
fn reduce_lr_on_plateau_sets_and_logs_the_rates_keras_sets() {
    for lib in LIBS {
        let mut run = setup("reduce_lr_on_plateau", lib);
        let mut reduce = ReduceLROnPlateau::new()
            .monitor("val_loss")
            .factor(0.5)
            .patience(1)
            .min_delta(0.02)
            .cooldown(1)
            .min_lr(0.02)
            .verbose(1);
        let history = run.fit(&mut [&mut reduce]).unwrap();
        run.check_history(&history, 0);
        let key = if lib.0 == "tf" { "lr" } else { "learning_rate" };
        assert!(history.get(key).is_some(), "{}: {key} logged", run.what);
        run.check_weights();
        run.check_learning_rate();
        run.check_printed(reduce.messages());
    }
}

#[test]
fn learning_rate_scheduler_sets_the_rates_keras_sets() {
    for lib in LIBS {
        let mut run = setup("lr_scheduler", lib);
        let mut schedule =
            LearningRateScheduler::new(|epoch, lr| if epoch < 2 { lr } else { lr * 0.5 })
                .verbose(1);
        let history = run.fit(&mut [&mut schedule]).unwrap();
        run.check_history(&history, 0);
        run.check_weights();
        run.check_learning_rate();
        run.check_printed(schedule.messages());
    }
}

#[test]
fn terminate_on_nan_stops_at_keras_batch() {
    for lib in LIBS {
        let mut run = setup("terminate_on_nan", lib);
        let mut nan = TerminateOnNaN::new();
        let history = run.fit(&mut [&mut nan]).unwrap();
        // Keras's loss and val_loss are NaN (it applied the NaN step); seqnn's loss is NaN and
        // its weights are those before that step, so its val_loss is a number.
        assert_eq!(history.epoch(), &[0], "{}", run.what);
        assert!(history.get("loss").unwrap()[0].is_nan(), "{}", run.what);
        assert_eq!(nan.stopped_batch(), Some((0, 1)), "{}", run.what);
        run.check_printed(nan.messages());
        assert!(
            run.model
                .get_weights()
                .iter()
                .flatten()
                .all(|w| w.is_finite()),
            "{}: the weights of the last finite step",
            run.what
        );
    }
    // Without the callback the same batch is fit's error.
    let mut run = setup("terminate_on_nan", LIBS[0]);
    let err = run.fit(&mut []).unwrap_err().to_string();
    assert!(err.contains("the loss is NaN at epoch 1, batch 2"), "{err}");
}

/// Our CSV against Keras's: the same header and `NA`s, the learning rates written alike, the
/// other numbers within 1e-4, `\r\n` line ends.
fn check_csv(ours: &str, keras: &str, separator: char, what: &str) {
    assert!(
        keras.ends_with("\r\n") && ours.ends_with("\r\n"),
        "{what}: line ends"
    );
    let (ours, keras): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), keras.lines().collect());
    assert_eq!(ours.len(), keras.len(), "{what}: rows\n{ours:?}\n{keras:?}");
    assert_eq!(ours[0], keras[0], "{what}: header");
    let header: Vec<&str> = keras[0].split(separator).collect();
    for (row, (a, b)) in ours.iter().zip(&keras).enumerate().skip(1) {
        let (a, b): (Vec<&str>, Vec<&str>) =
            (a.split(separator).collect(), b.split(separator).collect());
        assert_eq!(a.len(), b.len(), "{what}: row {row}");
        for ((x, y), column) in a.iter().zip(&b).zip(&header) {
            if matches!(*column, "epoch" | "lr" | "learning_rate") || *y == "NA" {
                assert_eq!(x, y, "{what}: row {row}, {column}");
            } else {
                let (x, y): (f32, f32) = (x.parse().unwrap(), y.parse().unwrap());
                assert!(close(x, y), "{what}: row {row}, {column}: {x} against {y}");
            }
        }
    }
}

#[test]
fn csv_logger_writes_keras_columns() {
    for lib in LIBS {
        let mut run = setup("csv_logger_with_lr", lib);
        let d = scratch(&format!("csv-{}", lib.0));
        let path = d.join("log.csv");
        // ReduceLROnPlateau first: its learning-rate key is in the logs the logger sees.
        let mut reduce = ReduceLROnPlateau::new()
            .monitor("loss")
            .patience(1)
            .min_delta(0.05)
            .factor(0.5);
        let mut log = CSVLogger::new(&path);
        let history = run.fit(&mut [&mut reduce, &mut log]).unwrap();
        run.check_history(&history, 0);
        let ours = std::fs::read_to_string(&path).unwrap();
        check_csv(&ours, run.keras["csv"].as_str().unwrap(), ',', &run.what);
    }
}

#[test]
fn csv_logger_appends_as_keras() {
    for lib in LIBS {
        let mut run = setup("csv_logger_append", lib);
        let d = scratch(&format!("csv-append-{}", lib.0));
        let path = d.join("log.csv");
        let mut log = CSVLogger::new(&path).separator(';').append(true);
        let first = run.fit(&mut [&mut log]).unwrap();
        run.check_history(&first, 0);
        run.options = run.options.clone().with_epochs(4).with_initial_epoch(2);
        let second = run.fit(&mut [&mut log]).unwrap();
        run.check_history(&second, 1);
        let ours = std::fs::read_to_string(&path).unwrap();
        check_csv(&ours, run.keras["csv"].as_str().unwrap(), ';', &run.what);
    }
}

/// Each file's weights against those Keras's file of that name holds.
fn check_checkpoints(run: &Run, d: &Path) {
    let keras: Vec<&str> = (run.keras["files"].as_array().unwrap().iter())
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(files(d), keras, "{}: files written", run.what);
    for name in keras {
        let path = d.join(name);
        let weights = if name.ends_with(".weights.h5") {
            let mut m = load_model(dir().join(format!("{}.keras", run.what))).unwrap();
            m.load_weights(&path).unwrap();
            m.get_weights()
        } else {
            let m = load_model(&path).unwrap();
            assert!(m.compiled().is_some(), "{}: {name} is compiled", run.what);
            m.get_weights()
        };
        assert_weights(
            &weights,
            &run.keras["checkpoints"][name],
            &format!("{} {name}", run.what),
        );
    }
}

#[test]
fn model_checkpoint_writes_keras_files() {
    for lib in LIBS {
        let mut run = setup("checkpoint_best_only", lib);
        let d = scratch(&format!("best-{}", lib.0));
        let mut ckpt = ModelCheckpoint::new(d.join("ckpt-{epoch:02d}-{val_loss:.2f}.keras"))
            .monitor("val_loss")
            .save_best_only(true)
            .verbose(1);
        let history = run.fit(&mut [&mut ckpt]).unwrap();
        run.check_history(&history, 0);
        check_checkpoints(&run, &d);
        run.check_printed(ckpt.messages());

        let mut run = setup("checkpoint_weights_every_3_batches", lib);
        let d = scratch(&format!("batches-{}", lib.0));
        let mut ckpt = ModelCheckpoint::new(d.join("w-{epoch:02d}-{batch:03d}.weights.h5"))
            .save_weights_only(true)
            .save_freq(SaveFreq::Batches(3));
        run.fit(&mut [&mut ckpt]).unwrap();
        check_checkpoints(&run, &d);

        let mut run = setup("checkpoint_max_accuracy_name", lib);
        let d = scratch(&format!("max-{}", lib.0));
        let mut ckpt = ModelCheckpoint::new(d.join("best.keras"))
            .monitor("loss")
            .mode(MonitorMode::Max)
            .save_best_only(true)
            .verbose(1);
        run.fit(&mut [&mut ckpt]).unwrap();
        check_checkpoints(&run, &d);
        run.check_printed(ckpt.messages());
    }
}

/// A callback that records each hook as the generator's recorder does.
#[derive(Default)]
struct Recorder {
    events: Vec<(String, Option<usize>, Vec<String>)>,
}

impl Recorder {
    fn rec(&mut self, hook: &str, index: Option<usize>, logs: &Logs) {
        let mut keys: Vec<String> = logs.keys().map(str::to_string).collect();
        keys.sort();
        self.events.push((hook.to_string(), index, keys));
    }
}

impl Callback for Recorder {
    fn on_train_begin(&mut self, logs: &mut Logs, _: &mut FitContext<'_>) -> seqnn::Result<()> {
        self.rec("on_train_begin", None, logs);
        Ok(())
    }
    fn on_train_end(&mut self, logs: &mut Logs, _: &mut FitContext<'_>) -> seqnn::Result<()> {
        self.rec("on_train_end", None, logs);
        Ok(())
    }
    fn on_epoch_begin(
        &mut self,
        e: usize,
        logs: &mut Logs,
        _: &mut FitContext<'_>,
    ) -> seqnn::Result<()> {
        self.rec("on_epoch_begin", Some(e), logs);
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        e: usize,
        logs: &mut Logs,
        _: &mut FitContext<'_>,
    ) -> seqnn::Result<()> {
        self.rec("on_epoch_end", Some(e), logs);
        Ok(())
    }
    fn on_train_batch_begin(
        &mut self,
        b: usize,
        logs: &mut Logs,
        _: &mut FitContext<'_>,
    ) -> seqnn::Result<()> {
        self.rec("on_train_batch_begin", Some(b), logs);
        Ok(())
    }
    fn on_train_batch_end(
        &mut self,
        b: usize,
        logs: &mut Logs,
        _: &mut FitContext<'_>,
    ) -> seqnn::Result<()> {
        self.rec("on_train_batch_end", Some(b), logs);
        Ok(())
    }
    fn on_test_begin(&mut self, logs: &mut Logs, _: &mut FitContext<'_>) -> seqnn::Result<()> {
        self.rec("on_test_begin", None, logs);
        Ok(())
    }
    fn on_test_end(&mut self, logs: &mut Logs, _: &mut FitContext<'_>) -> seqnn::Result<()> {
        self.rec("on_test_end", None, logs);
        Ok(())
    }
    fn on_test_batch_begin(
        &mut self,
        b: usize,
        logs: &mut Logs,
        _: &mut FitContext<'_>,
    ) -> seqnn::Result<()> {
        self.rec("on_test_batch_begin", Some(b), logs);
        Ok(())
    }
    fn on_test_batch_end(
        &mut self,
        b: usize,
        logs: &mut Logs,
        _: &mut FitContext<'_>,
    ) -> seqnn::Result<()> {
        self.rec("on_test_batch_end", Some(b), logs);
        Ok(())
    }
}

#[test]
fn hooks_run_in_keras_order_and_a_lambda_stops_mid_epoch() {
    for lib in LIBS {
        let mut run = setup("lambda_stop_mid_epoch", lib);
        let epoch = std::rc::Rc::new(std::cell::Cell::new(0));
        let seen = epoch.clone();
        let mut stop = LambdaCallback::new()
            .on_epoch_begin(move |e, _, _| seen.set(e))
            .on_train_batch_end(move |b, _, fit| fit.set_stop_training(epoch.get() == 1 && b == 2));
        let mut recorder = Recorder::default();
        let history = run.fit(&mut [&mut stop, &mut recorder]).unwrap();
        run.check_history(&history, 0);
        run.check_weights();
        let keras: Vec<(String, Option<usize>, Vec<String>)> =
            (run.keras["events"].as_array().unwrap().iter())
                .map(|e| {
                    let keys = e[2]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|k| k.as_str().unwrap().to_string());
                    (
                        e[0].as_str().unwrap().to_string(),
                        e[1].as_u64().map(|i| i as usize),
                        keys.collect(),
                    )
                })
                .collect();
        assert_eq!(recorder.events, keras, "{}: hooks", run.what);
    }
}

#[test]
fn a_checkpoint_path_that_cannot_be_written_fails_before_training() {
    let d = scratch("unwritable");
    // A directory that cannot exist: its parent is a file (refused even to root).
    let blocker = d.join("not-a-directory");
    std::fs::write(&blocker, b"x").unwrap();
    let mut run = setup("checkpoint_best_only", LIBS[1]);
    let before = run.model.get_weights();
    let mut ckpt = ModelCheckpoint::new(blocker.join("ckpt.keras"));
    let mut recorder = Recorder::default();
    let err = run.fit(&mut [&mut ckpt, &mut recorder]).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Callback { .. }), "{err:?}");
    assert!(
        text.starts_with("ModelCheckpoint: cannot write checkpoints to"),
        "{text}"
    );
    assert!(text.contains("not-a-directory"), "{text}");
    assert_eq!(run.model.get_weights(), before, "nothing trained");
    assert!(recorder.events.is_empty(), "no hook ran after the refusal");
}

#[test]
fn a_failed_save_leaves_the_previous_checkpoint() {
    let d = scratch("atomic");
    let path = d.join("ckpt.keras");
    let mut run = setup("checkpoint_best_only", LIBS[1]);
    run.options = run.options.clone().with_epochs(1);
    let mut ckpt = ModelCheckpoint::new(&path);
    run.fit(&mut [&mut ckpt]).unwrap();
    let saved = std::fs::read(&path).unwrap();
    let weights = run.model.get_weights();
    // Injected failure: a directory where the save's temporary file goes, so writing it fails
    // after training went on.
    let tmp = d.join(format!(".ckpt.keras.{}.tmp", std::process::id()));
    std::fs::create_dir(&tmp).unwrap();
    let err = run.fit(&mut [&mut ckpt]).unwrap_err();
    assert!(err.to_string().contains(".ckpt.keras."), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        saved,
        "the previous checkpoint is intact"
    );
    assert_eq!(load_model(&path).unwrap().get_weights(), weights);
    std::fs::remove_dir(&tmp).unwrap();
    assert_eq!(files(&d), ["ckpt.keras"], "no temporary file left");
    // Once the directory can be written again, the save replaces the file.
    run.fit(&mut [&mut ckpt]).unwrap();
    assert_ne!(std::fs::read(&path).unwrap(), saved);
    assert_eq!(files(&d), ["ckpt.keras"]);
}

#[test]
fn bad_callback_options_are_errors_naming_the_callback() {
    let d = scratch("bad");
    let mut cases: Vec<(Box<dyn Callback>, &str)> = vec![
        (
            Box::new(ModelCheckpoint::new(d.join("w.h5")).save_weights_only(true)),
            "ModelCheckpoint: When using `save_weights_only=True` in `ModelCheckpoint`, the \
             filepath provided must end in `.weights.h5`",
        ),
        (
            Box::new(ModelCheckpoint::new(d.join("m.h5"))),
            "ModelCheckpoint: seqnn writes models as .keras archives only",
        ),
        (
            Box::new(ModelCheckpoint::new(d.join("model"))),
            "ModelCheckpoint: The filepath provided must end in `.keras`",
        ),
        (
            Box::new(ModelCheckpoint::new(d.join("m.keras")).save_freq(SaveFreq::Batches(0))),
            "ModelCheckpoint: Unrecognized save_freq: 0",
        ),
        (
            Box::new(ModelCheckpoint::new(d.join("m-{epoch:02q}.keras"))),
            "ModelCheckpoint: Failed to format this callback filepath",
        ),
        (
            Box::new(ModelCheckpoint::new(&d)),
            "ModelCheckpoint: The filepath provided must end in `.keras`",
        ),
        (
            Box::new(ReduceLROnPlateau::new().factor(1.0)),
            "ReduceLROnPlateau: ReduceLROnPlateau does not support a factor >= 1.0. Received \
             factor=1.0",
        ),
        (
            Box::new(LearningRateScheduler::new(|_, _| f64::NAN)),
            "LearningRateScheduler: The output of the `schedule` function should be a finite \
             float. Got: nan at epoch 0",
        ),
    ];
    for (callback, want) in cases.iter_mut() {
        let mut run = setup("checkpoint_best_only", LIBS[0]);
        let err = run.fit(&mut [callback.as_mut()]).unwrap_err();
        assert!(matches!(err, Error::Callback { .. }), "{err:?}");
        assert!(err.to_string().starts_with(*want), "{err}\nwanted: {want}");
    }
    // A field the logs do not have is Keras's KeyError text, at the first save.
    let mut run = setup("checkpoint_best_only", LIBS[1]);
    let template = d.join("m-{val_nope:.2f}.keras");
    let mut ckpt = ModelCheckpoint::new(&template);
    let err = run.fit(&mut [&mut ckpt]).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "ModelCheckpoint: Failed to format this callback filepath: \"{}\". Reason: 'val_nope'",
            template.display()
        )
    );
}

#[test]
fn callbacks_train_functional_models_and_checkpoint_them() {
    use ndarray::Array3;
    use seqnn::{Apply, Dense, Input, Model, GRU};
    seqnn::set_random_seed(1);
    let a = Input::new((4, 2));
    let y = Dense::new(1)
        .apply(&GRU::new(3).apply(&a).unwrap())
        .unwrap();
    let mut model = Model::new(&[a], &[y]).unwrap();
    model.compile("sgd", "mse").unwrap();
    let x = Array3::<f32>::from_elem((8, 4, 2), 0.3).into_dyn();
    let t = ndarray::Array2::<f32>::from_elem((8, 1), 0.5).into_dyn();
    let d = scratch("functional");
    let mut ckpt = ModelCheckpoint::new(d.join("f-{epoch}.keras")).monitor("loss");
    let mut weights = ModelCheckpoint::new(d.join("f.weights.h5")).save_weights_only(true);
    let options = FitOptions::new().with_epochs(2).with_verbose(0);
    model
        .fit_with_callbacks(
            &[x.view()],
            t.view(),
            &options,
            &mut [&mut ckpt, &mut weights],
        )
        .unwrap();
    assert_eq!(files(&d), ["f-1.keras", "f-2.keras", "f.weights.h5"]);
    let loaded = Model::load(d.join("f-2.keras")).unwrap();
    assert_eq!(loaded.get_weights(), model.get_weights());
    let mut again = Model::load(d.join("f-1.keras")).unwrap();
    again.load_weights(d.join("f.weights.h5")).unwrap();
    assert_eq!(again.get_weights(), model.get_weights());
}
