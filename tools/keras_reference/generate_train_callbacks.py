#!/usr/bin/env python3
"""Generate reference fixtures for seqnn's callbacks (EarlyStopping,
ModelCheckpoint, ReduceLROnPlateau, LearningRateScheduler, TerminateOnNaN,
CSVLogger, LambdaCallback, History, and the order of the hooks).

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_train_callbacks.py

It (re)writes everything in tests/fixtures/train/callbacks/ except
README.md. `generate_train_callbacks.py CASE...` regenerates some cases,
`--list` prints their names.

Conventions, as generate_train_fits.py: for each case the same model is
built in tf_keras 2.21 ("tf") and Keras 3.15 ("k3", TensorFlow backend),
given the SAME initial weights (rng.uniform(-0.5, 0.5) float32 per array of
get_weights(), in order), compiled and saved UNTRAINED but compiled:

    <case>.tf.keras   tf_keras  model.save("x.keras")
    <case>.k3.keras   Keras 3   model.save("x.keras")

Then each library runs model.fit(x, y, batch_size=8, shuffle=False,
verbose=0, validation_data=..., callbacks=[...]) as the case says, and
<case>.json records per library: history.history and history.epoch, the
weights after fit, the learning rate after fit, the hooks called (a
recording callback placed LAST in the list: hook, epoch or batch, and the
log keys it saw), the checkpoint files written (names, sorted) and the
weights each holds, the CSV text (bytes, CRLF line ends), the warnings (warnings.warn in Keras 3,
the "tensorflow" logger in tf_keras), what the callbacks printed, and the
text of a ValueError fit raised. A case may fit with validation_split
instead of validation_data, or fit twice (CSVLogger's append).
rng = np.random.default_rng(zlib.crc32(case_name)) draws the weights, then
the data. Everything is float32.
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"

import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model_fixtures import (  # noqa: E402
    LIBS, ROOT, VERSIONS, case_rng, f32_list, fresh)

tf.config.experimental.enable_op_determinism()

OUT_DIR = ROOT / "tests" / "fixtures" / "train" / "callbacks"
GENERATED_BY = "tools/keras_reference/generate_train_callbacks.py"
VKEY = {"tf": "tf_keras", "k3": "keras3"}
BATCH = 8


def build_regression(K, v):
    L = K.layers
    if v == "tf":
        return K.Sequential([L.SimpleRNN(3, input_shape=(5, 2)), L.Dense(1)])
    return K.Sequential([K.Input(shape=(5, 2)), L.SimpleRNN(3), L.Dense(1)])


def data_regression(rng):
    x = rng.uniform(-1, 1, size=(40, 5, 2)).astype(np.float32)
    y = rng.uniform(-1, 1, size=(40, 1)).astype(np.float32)
    xv = rng.uniform(-1, 1, size=(12, 5, 2)).astype(np.float32)
    yv = rng.uniform(-1, 1, size=(12, 1)).astype(np.float32)
    return {"x": x, "y": y, "val": (xv, yv)}


def data_with_nan(rng):
    d = data_regression(rng)
    d["y"][11, 0] = np.nan  # batch 1 (from 0) of the first epoch
    return d


class Recorder:
    """A callback (built per library) that records every hook it gets."""

    @staticmethod
    def make(K, events):
        class Rec(K.callbacks.Callback):
            def _rec(self, hook, index, logs):
                keys = sorted((logs or {}).keys())
                events.append([hook, index, keys])

            def on_train_begin(self, logs=None):
                self._rec("on_train_begin", None, logs)

            def on_train_end(self, logs=None):
                self._rec("on_train_end", None, logs)

            def on_epoch_begin(self, epoch, logs=None):
                self._rec("on_epoch_begin", epoch, logs)

            def on_epoch_end(self, epoch, logs=None):
                self._rec("on_epoch_end", epoch, logs)

            def on_train_batch_begin(self, batch, logs=None):
                self._rec("on_train_batch_begin", batch, logs)

            def on_train_batch_end(self, batch, logs=None):
                self._rec("on_train_batch_end", batch, logs)

            def on_test_begin(self, logs=None):
                self._rec("on_test_begin", None, logs)

            def on_test_end(self, logs=None):
                self._rec("on_test_end", None, logs)

            def on_test_batch_begin(self, batch, logs=None):
                self._rec("on_test_batch_begin", batch, logs)

            def on_test_batch_end(self, batch, logs=None):
                self._rec("on_test_batch_end", batch, logs)
        return Rec()


# A case: callbacks(K, tmp, model, state) -> list of callbacks;
# epochs; data; sgd learning rate; optional second fit (append CSV).
CASES = {
    "early_stopping_restore": dict(
        description="EarlyStopping(monitor='val_loss', min_delta=0.02, "
        "patience=2, restore_best_weights=True, verbose=1); 20 epochs",
        callbacks=lambda K, tmp, m, s: [K.callbacks.EarlyStopping(
            monitor="val_loss", min_delta=0.005, patience=2,
            restore_best_weights=True, verbose=1)],
        epochs=20, lr=0.1),
    "early_stopping_no_restore": dict(
        description="EarlyStopping(monitor='loss', min_delta=0.02, "
        "patience=1); 20 epochs; the weights of the last epoch stay",
        callbacks=lambda K, tmp, m, s: [K.callbacks.EarlyStopping(
            monitor="loss", min_delta=0.02, patience=1)],
        epochs=20, lr=0.1),
    "early_stopping_baseline": dict(
        description="EarlyStopping(monitor='val_loss', patience=3, "
        "baseline=0.01, restore_best_weights=True): no epoch beats the "
        "baseline, so it stops after `patience` epochs and restores the "
        "best of them",
        callbacks=lambda K, tmp, m, s: [K.callbacks.EarlyStopping(
            monitor="val_loss", patience=3, baseline=0.01,
            restore_best_weights=True)],
        epochs=20, lr=0.1),
    "early_stopping_start_from_epoch_max": dict(
        description="EarlyStopping(monitor='loss', mode='max', patience=1, "
        "start_from_epoch=3): a falling loss never improves in max mode; "
        "the first 3 epochs are not watched",
        callbacks=lambda K, tmp, m, s: [K.callbacks.EarlyStopping(
            monitor="loss", mode="max", patience=1, start_from_epoch=3)],
        epochs=20, lr=0.1),
    "early_stopping_unknown_monitor": dict(
        description="EarlyStopping(monitor='val_nope', mode='min'): "
        "Keras's warning each epoch, training runs every epoch",
        callbacks=lambda K, tmp, m, s: [K.callbacks.EarlyStopping(
            monitor="val_nope", mode="min", patience=0)],
        epochs=3, lr=0.1),
    "early_stopping_unknown_monitor_auto": dict(
        description="EarlyStopping(monitor='val_nope') in mode 'auto': "
        "tf_keras warns each epoch (its rule takes 'min'); Keras 3 cannot "
        "tell the direction and raises at the end of the first epoch",
        callbacks=lambda K, tmp, m, s: [K.callbacks.EarlyStopping(
            monitor="val_nope", patience=0)],
        epochs=3, lr=0.1),
    "reduce_lr_on_plateau": dict(
        description="ReduceLROnPlateau(monitor='val_loss', factor=0.5, "
        "patience=1, min_delta=0.02, cooldown=1, min_lr=0.02, verbose=1); "
        "12 epochs; the learning rate is logged (tf_keras `lr`, Keras 3 "
        "`learning_rate`)",
        callbacks=lambda K, tmp, m, s: [K.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=1, min_delta=0.02,
            cooldown=1, min_lr=0.02, verbose=1)],
        epochs=12, lr=0.2),
    "lr_scheduler": dict(
        description="LearningRateScheduler(lambda epoch, lr: lr if epoch < "
        "2 else lr * 0.5, verbose=1); 5 epochs",
        callbacks=lambda K, tmp, m, s: [K.callbacks.LearningRateScheduler(
            lambda epoch, lr: lr if epoch < 2 else lr * 0.5, verbose=1)],
        epochs=5, lr=0.1),
    "terminate_on_nan": dict(
        description="TerminateOnNaN(); y[11] is NaN, so the loss of batch 1 "
        "of the first epoch is NaN and training stops there",
        callbacks=lambda K, tmp, m, s: [K.callbacks.TerminateOnNaN()],
        epochs=3, lr=0.1, data=data_with_nan),
    "csv_logger_with_lr": dict(
        description="[ReduceLROnPlateau(monitor='loss', patience=1, "
        "min_delta=0.05, factor=0.5), CSVLogger('log.csv')]; 4 epochs: the "
        "learning-rate column comes from ReduceLROnPlateau, which runs "
        "first",
        callbacks=lambda K, tmp, m, s: [
            K.callbacks.ReduceLROnPlateau(monitor="loss", patience=1,
                                          min_delta=0.05, factor=0.5),
            K.callbacks.CSVLogger(str(tmp / "log.csv"))],
        csv="log.csv", epochs=4, lr=0.1),
    "csv_logger_append": dict(
        description="CSVLogger('log.csv', separator=';', append=True), "
        "twice: 2 epochs, then 2 more from initial_epoch=2, no validation",
        callbacks=lambda K, tmp, m, s: [K.callbacks.CSVLogger(
            str(tmp / "log.csv"), separator=";", append=True)],
        csv="log.csv", epochs=2, lr=0.1, no_val=True, again=4),
    "checkpoint_best_only": dict(
        description="ModelCheckpoint('ckpt-{epoch:02d}-{val_loss:.2f}."
        "keras', monitor='val_loss', save_best_only=True, verbose=1); "
        "6 epochs",
        callbacks=lambda K, tmp, m, s: [K.callbacks.ModelCheckpoint(
            str(tmp / "ckpt-{epoch:02d}-{val_loss:.2f}.keras"),
            monitor="val_loss", save_best_only=True, verbose=1)],
        epochs=6, lr=0.3),
    "checkpoint_weights_every_3_batches": dict(
        description="ModelCheckpoint('w-{epoch:02d}-{batch:03d}."
        "weights.h5', save_weights_only=True, save_freq=3); 2 epochs of 5 "
        "batches",
        callbacks=lambda K, tmp, m, s: [K.callbacks.ModelCheckpoint(
            str(tmp / "w-{epoch:02d}-{batch:03d}.weights.h5"),
            save_weights_only=True, save_freq=3)],
        epochs=2, lr=0.1),
    "checkpoint_max_accuracy_name": dict(
        description="ModelCheckpoint('best.keras', monitor='loss', "
        "mode='max', save_best_only=True, verbose=1) with "
        "initial_value_threshold=None: in max mode a falling loss saves "
        "only at the first epoch",
        callbacks=lambda K, tmp, m, s: [K.callbacks.ModelCheckpoint(
            str(tmp / "best.keras"), monitor="loss", mode="max",
            save_best_only=True, verbose=1)],
        epochs=3, lr=0.1),
    "cli_callbacks": dict(
        description="What `seqnn fit --reduce-lr-on-plateau --early-stopping 1 "
        "--checkpoint 'ckpt-{epoch:02d}.keras' --csv-log log.csv "
        "--validation-split 0.25` runs: [ReduceLROnPlateau(monitor="
        "'val_loss'), EarlyStopping(monitor='val_loss', patience=1, "
        "restore_best_weights=True), ModelCheckpoint('ckpt-{epoch:02d}."
        "keras'), CSVLogger('log.csv')], validation_split=0.25 (train on "
        "the first 30 of 40 samples)",
        callbacks=lambda K, tmp, m, s: [
            K.callbacks.ReduceLROnPlateau(monitor="val_loss"),
            K.callbacks.EarlyStopping(monitor="val_loss", patience=1,
                                      restore_best_weights=True),
            K.callbacks.ModelCheckpoint(str(tmp / "ckpt-{epoch:02d}.keras")),
            K.callbacks.CSVLogger(str(tmp / "log.csv"))],
        csv="log.csv", epochs=10, lr=0.8, split=0.25),
    "lambda_stop_mid_epoch": dict(
        description="LambdaCallback(on_train_batch_end=...) that sets "
        "model.stop_training at batch 2 of epoch 1 (from 0); the recorder "
        "shows that validation and on_epoch_end still run for that epoch",
        callbacks=lambda K, tmp, m, s: [K.callbacks.LambdaCallback(
            on_epoch_begin=lambda e, logs: s.__setitem__("epoch", e),
            on_train_batch_end=lambda b, logs: setattr(
                m, "stop_training", s.get("epoch") == 1 and b == 2))],
        epochs=4, lr=0.1),
}


def f32_weights(ws):
    return [{"shape": list(w.shape), "data": f32_list(w)} for w in ws]


def data_json(d):
    """The data of `data_regression` as a fixture records it: x, y, val_x,
    val_y, each {"shape", "data"}."""
    arrays = {"x": d["x"], "y": d["y"], "val_x": d["val"][0],
              "val_y": d["val"][1]}
    return {k: {"shape": list(a.shape), "data": f32_list(a)}
            for k, a in arrays.items()}


def lr_of(model):
    opt = model.optimizer
    lr = opt.learning_rate
    return float(np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr))


def build_compiled(v, w0, lr):
    K = LIBS[v]
    fresh(K)
    model = build_regression(K, v)
    model.set_weights(w0)
    model.compile(optimizer=K.optimizers.SGD(learning_rate=lr), loss="mse")
    return model


class Capture(logging.Handler):
    def __init__(self, out):
        super().__init__(logging.WARNING)
        self.out = out

    def emit(self, record):
        self.out.append(record.getMessage())


def run_lib(v, name, case, w0, d):
    K = LIBS[v]
    model = build_compiled(v, w0, case["lr"])
    model.save(str(OUT_DIR / f"{name}.{v}.keras"))
    model = build_compiled(v, w0, case["lr"])
    tmp = Path(tempfile.mkdtemp())
    events, state, warned, printed = [], {}, [], io.StringIO()
    callbacks = case["callbacks"](K, tmp, model, state)
    callbacks.append(Recorder.make(K, events))
    val = None if case.get("no_val") or case.get("split") else d["val"]
    kwargs = dict(batch_size=BATCH, shuffle=False, verbose=0,
                  validation_data=val, callbacks=callbacks)
    if case.get("split"):
        kwargs["validation_split"] = case["split"]
    tf_logger = logging.getLogger("tensorflow")
    handler = Capture(warned)
    tf_logger.addHandler(handler)
    old_level = tf_logger.level
    tf_logger.setLevel(logging.WARNING)
    histories, error = [], None
    try:
        with warnings.catch_warnings(record=True) as caught, \
                contextlib.redirect_stdout(printed):
            warnings.simplefilter("always")
            try:
                histories.append(model.fit(
                    d["x"], d["y"], epochs=case["epochs"], **kwargs))
                if case.get("again"):
                    histories.append(model.fit(
                        d["x"], d["y"], epochs=case["again"],
                        initial_epoch=case["epochs"], **kwargs))
            except ValueError as e:
                error = f"{type(e).__name__}: {e}"
    finally:
        tf_logger.removeHandler(handler)
        tf_logger.setLevel(old_level)
    warned += [str(w.message) for w in caught
               if "callback" in w.filename or "callbacks" in w.filename]
    files = sorted(p.name for p in tmp.iterdir())
    checkpoints = {}
    for f in files:
        if f.endswith(".keras"):
            checkpoints[f] = f32_weights(
                K.models.load_model(str(tmp / f)).get_weights())
        elif f.endswith(".weights.h5"):
            m2 = build_compiled(v, w0, case["lr"])
            m2.load_weights(str(tmp / f))
            checkpoints[f] = f32_weights(m2.get_weights())
    csv = None
    if case.get("csv"):
        csv = (tmp / case["csv"]).read_bytes().decode()
    shutil.rmtree(tmp)
    return {
        "histories": [{
            "epoch": list(h.epoch),
            "history": {k: [float(x) for x in vals]
                        for k, vals in h.history.items()},
            "keys": list(h.history.keys()),
        } for h in histories],
        "weights": f32_weights(model.get_weights()),
        "learning_rate": lr_of(model),
        "events": events,
        "files": files,
        "checkpoints": checkpoints,
        "csv": csv,
        "warnings": warned,
        "error": error,
        "printed": printed.getvalue(),
    }


def dumps(obj):
    return json.dumps(obj, indent=1)


def run_case(name):
    case = CASES[name]
    rng = case_rng(name)
    K = LIBS["tf"]
    fresh(K)
    shapes = [w.shape for w in build_regression(K, "tf").get_weights()]
    w0 = [rng.uniform(-0.5, 0.5, size=s).astype(np.float32) for s in shapes]
    d = case.get("data", data_regression)(rng)
    results = {VKEY[v]: run_lib(v, name, case, w0, d) for v in ("tf", "k3")}
    out = {
        "case": name,
        "description": case["description"],
        "generated_by": GENERATED_BY,
        "versions": VERSIONS,
        "fit": {"batch_size": BATCH, "epochs": case["epochs"],
                "learning_rate": case["lr"],
                "again": case.get("again"),
                "validation": not case.get("no_val") and not case.get("split"),
                "validation_split": case.get("split", 0.0)},
        "initial_weights": f32_weights(w0),
        **data_json(d),
        "results": results,
    }
    text = dumps(out).replace("NaN", "null")
    (OUT_DIR / f"{name}.json").write_text(text + "\n")
    for v in ("tf_keras", "keras3"):
        r = results[v]
        last = r["histories"][-1]["epoch"] if r["histories"] else None
        print(f"{name} {v}: epochs {last} error {r['error']} "
              f"files {r['files']} lr {r['learning_rate']:.4g}")


def main(argv):
    if argv == ["--list"]:
        print("\n".join(CASES))
        return
    names = argv or list(CASES)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    if not argv:
        for p in OUT_DIR.iterdir():
            if p.name != "README.md":
                p.unlink()
    for name in names:
        run_case(name)


if __name__ == "__main__":
    main(sys.argv[1:])
