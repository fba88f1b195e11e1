#!/usr/bin/env python3
"""Generate reference fixtures for seqnn's BackupAndRestore: a fit
interrupted by a callback raising, then resumed, against the uninterrupted
fit.

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_train_backup.py

It (re)writes everything in tests/fixtures/train/backup/ except README.md.
`generate_train_backup.py CASE...` regenerates some cases, `--list` prints
their names. `generate_train_backup.py --check-seqnn DIR CASE` has Keras 3
resume CASE from a backup directory seqnn wrote (tests/train_backup.rs
leaves one of epoch_adam, interrupted at epoch 3, in
target/tmp/backup-damaged/backup) and prints how far its weights are from
Keras 3's own resumed run.

Conventions, as generate_train_callbacks.py: for each case the same model,
LSTM(4) -> Dense(1) on inputs (5, 2), is built in Keras 3.15 ("k3",
TensorFlow backend) and, for the cases it runs, tf_keras 2.21 ("tf"), given
the SAME initial weights (rng.uniform(-0.5, 0.5) float32 per array of
get_weights(), in order), compiled with the case's optimizer and mse, and
saved UNTRAINED but compiled:

    <case>.k3.keras   Keras 3   model.save("x.keras")
    <case>.tf.keras   tf_keras  model.save("x.keras")

Every fit is model.fit(x, y, epochs, batch_size=8, shuffle=False,
verbose=0, validation_data=(val_x, val_y)) (or the case's
validation_split). Per library, from a fresh model each time:

  uninterrupted  fit with the case's callbacks (BackupAndRestore(dir) among
                 them), without the interruption;
  interrupted    the same fit with an Interrupt callback that raises
                 RuntimeError at the case's hook (on_epoch_begin of an
                 epoch, on_epoch_end of an epoch, or on_train_batch_end of
                 a batch of an epoch), placed after BackupAndRestore or
                 before it (`interrupt_first`); the backup directory it
                 leaves is recorded (file names; Keras 3's
                 training_metadata.json text) and, for Keras 3, copied to
                 <case>.k3.backup/ (latest.weights.h5,
                 training_metadata.json, and the .bkp pair with
                 double_checkpoint). A case may then damage the backup
                 (`damage`: latest.weights.h5 cut to half its bytes)
                 before it is copied;
  resumed        a fresh model (same initial weights), fit again with fresh
                 callbacks on the same directory: history.epoch,
                 history.history, the weights after it, and what is left of the
                 directory (null: it is gone; tf_keras leaves it empty).

<case>.json records, per library ("tf_keras", "keras3"), those three runs:
their histories, weights after fit, the error text of the interruption,
the backup's files, its metadata, and stopped_epoch for a case with
EarlyStopping. rng = np.random.default_rng(zlib.crc32(case_name)) draws the
weights, then the data. Everything is float32.
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"

import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model_fixtures import (  # noqa: E402
    LIBS, ROOT, VERSIONS, case_rng, fresh)
# The callbacks' conventions: their data (40 samples of (5, 2), 12 to
# validate), batches of 8, weight lists, library keys.
from generate_train_callbacks import (  # noqa: E402
    BATCH, VKEY, data_json, data_regression as data, f32_weights)

tf.config.experimental.enable_op_determinism()

OUT_DIR = ROOT / "tests" / "fixtures" / "train" / "backup"
GENERATED_BY = "tools/keras_reference/generate_train_backup.py"


def build(K, v):
    L = K.layers
    if v == "tf":
        return K.Sequential([L.LSTM(4, input_shape=(5, 2)), L.Dense(1)])
    return K.Sequential([K.Input(shape=(5, 2)), L.LSTM(4), L.Dense(1)])


def interrupter(K, hook, epoch, batch=None):
    """A callback that raises RuntimeError at `hook` of `epoch` (and
    `batch`)."""
    class Interrupt(K.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = None

        def on_epoch_begin(self, e, logs=None):
            self.epoch = e
            if hook == "on_epoch_begin" and e == epoch:
                raise RuntimeError(f"interrupted at the start of epoch {e}")

        def on_epoch_end(self, e, logs=None):
            if hook == "on_epoch_end" and e == epoch:
                raise RuntimeError(f"interrupted at the end of epoch {e}")

        def on_train_batch_end(self, b, logs=None):
            if (hook == "on_train_batch_end" and self.epoch == epoch
                    and b == batch):
                raise RuntimeError(
                    f"interrupted after batch {b} of epoch {epoch}")
    return Interrupt()


def adam(K):
    return K.optimizers.Adam(learning_rate=0.02)


def sgd_momentum(K):
    return K.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)


def rmsprop(K):
    return K.optimizers.RMSprop(learning_rate=0.01)


# A case: the optimizer, the epochs, the interruption (hook, epoch, batch),
# the BackupAndRestore options, and the libraries that run it.
CASES = {
    "epoch_adam": dict(
        description="BackupAndRestore(dir) with Adam(0.02); 6 epochs; "
        "interrupted at on_epoch_begin of epoch 3 (from 0), so the backup "
        "holds epoch 3 and the resumed fit runs epochs 3 to 5",
        optimizer=adam, epochs=6, interrupt=("on_epoch_begin", 3, None),
        libs=("tf", "k3")),
    "epoch_end_before_backup": dict(
        description="BackupAndRestore(dir) with SGD(0.1, momentum=0.9, "
        "nesterov=True) and validation_split=0.25; 5 epochs; interrupted "
        "at on_epoch_end of epoch 2 by a callback placed BEFORE "
        "BackupAndRestore, so epoch 2 is not backed up and is run again",
        optimizer=sgd_momentum, epochs=5,
        interrupt=("on_epoch_end", 2, None), interrupt_first=True,
        split=0.25, libs=("tf", "k3")),
    "batches_every_2": dict(
        description="BackupAndRestore(dir, save_freq=2) with RMSprop(0.01); "
        "5 epochs of 5 batches; interrupted after batch 3 of epoch 2 (by a "
        "callback after BackupAndRestore): the last backup is of that batch "
        "(batches counted across epochs: 1, 3; 0, 2, 4; 1, 3), its metadata "
        "says epoch 2, batch 3, and Keras 3 resumes at the START of epoch 2 "
        "from those weights (so the result is not the uninterrupted one)",
        optimizer=rmsprop, epochs=5,
        interrupt=("on_train_batch_end", 2, 3), backup=dict(save_freq=2),
        libs=("k3",)),
    "double_checkpoint_damaged": dict(
        description="BackupAndRestore(dir, double_checkpoint=True) with "
        "Adam(0.02); 6 epochs; interrupted at on_epoch_begin of epoch 3; "
        "then latest.weights.h5 is cut to half its bytes: Keras 3 restores "
        "the previous backup (.bkp, epoch 2) and runs epochs 2 to 5",
        optimizer=adam, epochs=6, interrupt=("on_epoch_begin", 3, None),
        backup=dict(double_checkpoint=True), damage=True, libs=("k3",)),
    "early_stopping_restarts": dict(
        description="[BackupAndRestore(dir), EarlyStopping(monitor='loss', "
        "min_delta=1.0, patience=2)] with Adam(0.02); 8 epochs: "
        "uninterrupted it stops at epoch 2; interrupted at on_epoch_begin "
        "of epoch 2 and resumed with a new EarlyStopping, whose state Keras "
        "does not back up, it runs epochs 2 to 4 and stops at 4",
        optimizer=adam, epochs=8, interrupt=("on_epoch_begin", 2, None),
        early_stopping=dict(monitor="loss", min_delta=1.0, patience=2),
        libs=("tf", "k3")),
}


def build_compiled(v, case, w0):
    K = LIBS[v]
    fresh(K)
    model = build(K, v)
    model.set_weights(w0)
    model.compile(optimizer=case["optimizer"](K), loss="mse")
    return model


def history_of(h):
    return {
        "epoch": list(h.epoch),
        "history": {k: [float(x) for x in vals]
                    for k, vals in h.history.items()},
    }


def run_fit(v, case, w0, d, backup_dir, interrupt):
    """One fit from a fresh model: its history (or error), its weights,
    EarlyStopping's stopped_epoch."""
    K = LIBS[v]
    model = build_compiled(v, case, w0)
    backup = K.callbacks.BackupAndRestore(str(backup_dir),
                                          **case.get("backup", {}))
    callbacks = [backup]
    stop = None
    if case.get("early_stopping"):
        stop = K.callbacks.EarlyStopping(**case["early_stopping"])
        callbacks.append(stop)
    if interrupt:
        hook, epoch, batch = case["interrupt"]
        cb = interrupter(K, hook, epoch, batch)
        if case.get("interrupt_first"):
            callbacks.insert(0, cb)
        else:
            callbacks.append(cb)
    kwargs = dict(batch_size=BATCH, shuffle=False, verbose=0,
                  callbacks=callbacks)
    if case.get("split"):
        kwargs["validation_split"] = case["split"]
    else:
        kwargs["validation_data"] = d["val"]
    out = {"history": None, "error": None}
    try:
        out["history"] = history_of(
            model.fit(d["x"], d["y"], epochs=case["epochs"], **kwargs))
    except RuntimeError as e:
        out["error"] = f"{type(e).__name__}: {e}"
    out["weights"] = f32_weights(model.get_weights())
    if stop is not None:
        out["stopped_epoch"] = int(stop.stopped_epoch)
    return out


def run_lib(v, name, case, w0, d):
    model = build_compiled(v, case, w0)
    model.save(str(OUT_DIR / f"{name}.{v}.keras"))
    tmp = Path(tempfile.mkdtemp())
    backup_dir = tmp / "backup"
    uninterrupted = run_fit(v, case, w0, d, tmp / "whole", False)
    interrupted = run_fit(v, case, w0, d, backup_dir, True)
    assert interrupted["error"], f"{name} {v}: the fit was not interrupted"
    if case.get("damage"):
        p = backup_dir / "latest.weights.h5"
        b = p.read_bytes()
        p.write_bytes(b[:len(b) // 2])
    files = sorted(str(p.relative_to(backup_dir))
                   for p in backup_dir.rglob("*") if p.is_file())
    interrupted["files"] = files
    meta = backup_dir / "training_metadata.json"
    interrupted["metadata"] = meta.read_text() if meta.exists() else None
    if v == "k3":
        copy = OUT_DIR / f"{name}.k3.backup"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(backup_dir, copy)
    resumed = run_fit(v, case, w0, d, backup_dir, False)
    resumed["files_left"] = sorted(
        str(p.relative_to(tmp)) for p in backup_dir.rglob("*")) if \
        backup_dir.exists() else None
    shutil.rmtree(tmp)
    return {"uninterrupted": uninterrupted, "interrupted": interrupted,
            "resumed": resumed}


def run_case(name):
    case = CASES[name]
    rng = case_rng(name)
    K = LIBS["k3"]
    fresh(K)
    shapes = [w.shape for w in build(K, "k3").get_weights()]
    w0 = [rng.uniform(-0.5, 0.5, size=s).astype(np.float32) for s in shapes]
    d = data(rng)
    results = {VKEY[v]: run_lib(v, name, case, w0, d) for v in case["libs"]}
    hook, epoch, batch = case["interrupt"]
    out = {
        "case": name,
        "description": case["description"],
        "generated_by": GENERATED_BY,
        "versions": VERSIONS,
        "fit": {"batch_size": BATCH, "epochs": case["epochs"],
                "validation_split": case.get("split", 0.0),
                "validation": not case.get("split")},
        "backup": case.get("backup", {}),
        "interrupt": {"hook": hook, "epoch": epoch, "batch": batch,
                      "first": bool(case.get("interrupt_first"))},
        "early_stopping": case.get("early_stopping"),
        "damage": bool(case.get("damage")),
        "initial_weights": f32_weights(w0),
        **data_json(d),
        "results": results,
    }
    (OUT_DIR / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n")
    for v, r in results.items():
        print(f"{name} {v}: whole {r['uninterrupted']['history']['epoch']} "
              f"stopped by {r['interrupted']['error']!r} "
              f"backup {r['interrupted']['files']} "
              f"{r['interrupted']['metadata']} "
              f"resumed {r['resumed']['history']['epoch']} "
              f"left {r['resumed']['files_left']}")


def check_seqnn_backup(backup_dir, name):
    """Keras 3 resumes from a backup seqnn wrote (a copy of it), for case
    `name`: prints the epochs it runs and the largest difference from the
    fixture's Keras 3 resumed weights."""
    case = CASES[name]
    f = json.loads((OUT_DIR / f"{name}.json").read_text())
    w0 = [np.asarray(w["data"], np.float32).reshape(w["shape"])
          for w in f["initial_weights"]]
    arr = lambda v: np.asarray(v["data"], np.float32).reshape(v["shape"])
    d = {"x": arr(f["x"]), "y": arr(f["y"]),
         "val": (arr(f["val_x"]), arr(f["val_y"]))}
    tmp = Path(tempfile.mkdtemp()) / "backup"
    shutil.copytree(backup_dir, tmp)
    out = run_fit("k3", case, w0, d, tmp, False)
    want = f["results"]["keras3"]["resumed"]
    diff = max(float(np.abs(np.asarray(a["data"]) - np.asarray(b["data"])).max())
               for a, b in zip(out["weights"], want["weights"]))
    print(f"{name}: Keras 3 resumed from seqnn's backup: epochs "
          f"{out['history']['epoch']} (Keras's own resume: "
          f"{want['history']['epoch']}), max |weight difference| {diff:.3g}")


def main(argv):
    if argv == ["--list"]:
        print("\n".join(CASES))
        return
    if argv[:1] == ["--check-seqnn"] and len(argv) == 3:
        check_seqnn_backup(Path(argv[1]), argv[2])
        return
    names = argv or list(CASES)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    if not argv:
        for p in OUT_DIR.iterdir():
            if p.name == "README.md":
                continue
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
    for name in names:
        run_case(name)


if __name__ == "__main__":
    main(sys.argv[1:])
