#!/usr/bin/env python3
"""Generate the fixtures of checkpoints that resume exactly (tests/fixtures/train/resume/).

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_train_resume.py
    .venv-ref/bin/python tools/keras_reference/generate_train_resume.py --verify FILE CASE

For every case of CASES, the same model is built with tf_keras 2.21 ("tf") and Keras 3.15
("k3", TensorFlow backend) with the SAME initial weights (rng.uniform(-0.5, 0.5) float32 per
array of get_weights(), in order), compiled with the case's optimizer and loss, and:

    <case>.k3.untrained.keras   Keras 3, compiled, saved before any step
    (fit epoch 1, shuffle=False, batch_size=8)
    <case>.k3.epoch1.keras      Keras 3 after epoch 1: optimizer/vars/0..n in model.weights.h5
    <case>.tf.epoch1.keras      tf_keras after epoch 1 (.keras: optimizer/vars)
    <case>.tf.epoch1.h5         tf_keras after epoch 1 (legacy .h5: optimizer_weights)
    (then each library loads its own epoch-1 files with load_model and fits one more epoch)

<case>.json records, per library: the weights and the optimizer's variables after epoch 1,
the weights after epoch 2 trained by a model that load_model read from each epoch-1 file, and
the weights of an uninterrupted 2-epoch fit (which the resumed ones must equal). The data x, y
are in the JSON too, so the Rust test trains on the same batches.

Also made: damaged.*.keras and damaged.*.h5, copies of lstm_adam's epoch-1 files with their
optimizer state broken in one way each (a variable missing, a wrong shape, a float iteration,
a NaN, a dataset not numbered, legacy names out of order), which seqnn must refuse.

--verify FILE CASE loads FILE (a .keras file seqnn wrote after epoch 1 of CASE) with Keras 3's
keras.models.load_model, fits epoch 2 and compares the weights with the recorded Keras 3
epoch 2 (prints the largest difference; exits 1 above 1e-5).
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"

import json  # noqa: E402
import sys  # noqa: E402
import zipfile  # noqa: E402
import io  # noqa: E402
from collections import namedtuple  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model_fixtures import LIBS, ROOT, VERSIONS, case_rng, f32_list, fresh  # noqa: E402

tf.config.experimental.enable_op_determinism()

OUT_DIR = ROOT / "tests" / "fixtures" / "train" / "resume"
GENERATED_BY = "tools/keras_reference/generate_train_resume.py"
BATCH = 8
TOL = 1e-5

Case = namedtuple("Case", "description build optimizer loss data")


def seq(K, v, shape, layers_fn):
    L = K.layers
    if v == "tf":
        return K.Sequential(layers_fn(L, {"input_shape": tuple(shape)}))
    return K.Sequential([K.Input(shape=tuple(shape))] + layers_fn(L, {}))


def u(rng, *shape):
    return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)


def regression(n, t, f):
    return lambda rng: (u(rng, n, t, f), u(rng, n, 1))


CASES = {
    "lstm_adam": Case(
        "LSTM(4) -> Dense(1); Adam(0.01); mse; 36 samples (batches 8, 8, 8, 8, 4)",
        lambda K, v: seq(K, v, (5, 3), lambda L, f: [L.LSTM(4, **f), L.Dense(1)]),
        lambda K: K.optimizers.Adam(learning_rate=0.01), "mse", regression(36, 5, 3)),
    "gru_rmsprop": Case(
        "GRU(3) -> Dense(1); RMSprop(0.01); mse; 32 samples",
        lambda K, v: seq(K, v, (4, 2), lambda L, f: [L.GRU(3, **f), L.Dense(1)]),
        lambda K: K.optimizers.RMSprop(learning_rate=0.01), "mse", regression(32, 4, 2)),
    "simple_rnn_sgd_momentum": Case(
        "SimpleRNN(4) -> Dense(1); SGD(0.05, momentum=0.9); mse; 36 samples",
        lambda K, v: seq(K, v, (5, 3), lambda L, f: [L.SimpleRNN(4, **f), L.Dense(1)]),
        lambda K: K.optimizers.SGD(learning_rate=0.05, momentum=0.9), "mse",
        regression(36, 5, 3)),
    "lstm_rmsprop_centered_momentum": Case(
        "LSTM(3) -> Dense(1); RMSprop(0.01, momentum=0.5, centered=True); mse; three slots "
        "per variable",
        lambda K, v: seq(K, v, (4, 2), lambda L, f: [L.LSTM(3, **f), L.Dense(1)]),
        lambda K: K.optimizers.RMSprop(learning_rate=0.01, momentum=0.5, centered=True),
        "mse", regression(32, 4, 2)),
    "gru_adam_amsgrad": Case(
        "GRU(3) -> Dense(1); Adam(0.02, amsgrad=True); mse; velocity_hat after the other "
        "slots",
        lambda K, v: seq(K, v, (4, 2), lambda L, f: [L.GRU(3, **f), L.Dense(1)]),
        lambda K: K.optimizers.Adam(learning_rate=0.02, amsgrad=True), "mse",
        regression(32, 4, 2)),
    "bidir_sgd_nesterov": Case(
        "Bidirectional(SimpleRNN(3)) -> Dense(1); SGD(0.05, momentum=0.8, nesterov=True); mse",
        lambda K, v: seq(K, v, (5, 2), lambda L, f: [
            L.Bidirectional(L.SimpleRNN(3), **f), L.Dense(1)]),
        lambda K: K.optimizers.SGD(learning_rate=0.05, momentum=0.8, nesterov=True), "mse",
        regression(32, 5, 2)),
    "lstm_nadam": Case(
        "LSTM(3) -> Dense(1); Nadam(0.01); mse; Keras 3 saves its u_product (named "
        "`variable`), tf_keras does not, so a tf_keras Nadam resumes from u_product = 1 and "
        "its resumed epoch 2 differs from its uninterrupted one",
        lambda K, v: seq(K, v, (4, 2), lambda L, f: [L.LSTM(3, **f), L.Dense(1)]),
        lambda K: K.optimizers.Nadam(learning_rate=0.01), "mse", regression(32, 4, 2)),
}


def arr(a):
    a = np.asarray(a)
    return {"shape": list(a.shape), "dtype": str(a.dtype),
            "data": f32_list(a) if a.dtype == np.float32 else [float(x) for x in a.ravel()]}


def weights(model):
    return [arr(w) for w in model.get_weights()]


def opt_vars(model):
    return [dict(name=v.name, **arr(v.numpy())) for v in model.optimizer.variables]


def compiled(v, case, w0):
    K = LIBS[v]
    fresh(K)
    model = case.build(K, v)
    model.set_weights(w0)
    model.compile(optimizer=case.optimizer(K), loss=case.loss)
    return model


def fit1(model, x, y):
    model.fit(x, y, epochs=1, batch_size=BATCH, shuffle=False, verbose=0)


def max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(p) - np.asarray(q)))) for p, q in zip(a, b))


def h5_listing(path):
    """The optimizer entries of a file, for the README and a check of the layout."""
    if path.endswith(".keras"):
        f = h5py.File(io.BytesIO(zipfile.ZipFile(path).read("model.weights.h5")), "r")
        g = f["optimizer/vars"]
        keys = sorted(g.keys(), key=int)
        return {"group_name": g.attrs.get("name"),
                "vars": [[k, list(g[k].shape), str(g[k].dtype)] for k in keys]}
    f = h5py.File(path, "r")
    g = f["optimizer_weights"]
    names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
    return {"weight_names": names,
            "vars": [[n, list(g[n].shape), str(g[n].dtype)] for n in names]}


def run_case(name, case):
    rng = case_rng(name)
    probe = case.build(LIBS["k3"], "k3")
    w0 = [rng.uniform(-0.5, 0.5, size=w.shape).astype(np.float32) for w in probe.get_weights()]
    x, y = case.data(rng)
    out = {"generated_by": GENERATED_BY, "versions": VERSIONS, "description": case.description,
           "batch_size": BATCH, "x": arr(x), "y": arr(y), "initial_weights": [arr(w) for w in w0]}
    files = {}
    for v in ("k3", "tf"):
        K = LIBS[v]
        # Uninterrupted: two epochs in one fit.
        m = compiled(v, case, w0)
        m.fit(x, y, epochs=2, batch_size=BATCH, shuffle=False, verbose=0)
        straight = m.get_weights()
        # Epoch 1, saved.
        m = compiled(v, case, w0)
        if v == "k3":
            p = str(OUT_DIR / f"{name}.k3.untrained.keras")
            m.save(p)
        fit1(m, x, y)
        rec = {"epoch1_weights": weights(m), "epoch1_optimizer_variables": opt_vars(m),
               "iterations_after_epoch1": int(m.optimizer.iterations.numpy()),
               "two_epochs_weights": [arr(w) for w in straight]}
        exts = ["keras"] if v == "k3" else ["keras", "h5"]
        rec["resumed"] = {}
        for ext in exts:
            p = str(OUT_DIR / f"{name}.{v}.epoch1.{ext}")
            m.save(p)
            files[os.path.basename(p)] = h5_listing(p)
            fresh(K)
            r = K.models.load_model(p)
            loaded = [np.asarray(t.numpy()) for t in r.optimizer.variables]
            mine = [np.asarray(t.numpy()) for t in m.optimizer.variables]
            assert len(loaded) == len(mine), (name, v, ext, len(loaded), len(mine))
            assert all(np.array_equal(a, b) for a, b in zip(loaded, mine)), (name, v, ext)
            fit1(r, x, y)
            rec["resumed"][ext] = {"epoch2_weights": weights(r),
                                   "vs_two_epochs": max_diff(r.get_weights(), straight)}
        out[{"k3": "keras3", "tf": "tf_keras"}[v]] = rec
    out["files"] = files
    (OUT_DIR / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n")
    print(name, {k: {e: r["vs_two_epochs"] for e, r in out[k]["resumed"].items()}
                 for k in ("keras3", "tf_keras")})


def verify(path, name):
    case = CASES[name]
    ref = json.loads((OUT_DIR / f"{name}.json").read_text())
    x = np.asarray(ref["x"]["data"], np.float32).reshape(ref["x"]["shape"])
    y = np.asarray(ref["y"]["data"], np.float32).reshape(ref["y"]["shape"])
    K = LIBS["k3"]
    fresh(K)
    m = K.models.load_model(path)
    print("optimizer:", type(m.optimizer).__name__, "iterations:",
          int(m.optimizer.iterations.numpy()), "variables:", len(m.optimizer.variables))
    state = max_diff([np.asarray(v.numpy()).astype(np.float64) for v in m.optimizer.variables],
                     [np.asarray(e["data"]).reshape(e["shape"])
                      for e in ref["keras3"]["epoch1_optimizer_variables"]])
    print("largest difference of the optimizer variables from Keras 3's after epoch 1:", state)
    fit1(m, x, y)
    want = [np.asarray(w["data"], np.float32).reshape(w["shape"])
            for w in ref["keras3"]["resumed"]["keras"]["epoch2_weights"]]
    d = max_diff(m.get_weights(), want)
    print("largest difference of the epoch-2 weights from Keras 3's:", d)
    sys.exit(0 if d <= TOL and state <= TOL else 1)


def rewrite_weights(src, dst, edit):
    """Copies the .keras archive `src` to `dst` with its model.weights.h5 changed by
    edit(h5py.File)."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buf, "r+") as f:
        edit(f)
    members["model.weights.h5"] = buf.getvalue()
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as z:
        for n, b in members.items():
            z.writestr(n, b)


def damaged():
    """Files whose optimizer state does not fit their model, made from lstm_adam's Keras 3 and
    tf_keras epoch-1 files (see the README for what each must be refused for)."""
    src = str(OUT_DIR / "lstm_adam.k3.epoch1.keras")

    def drop_last(f):
        del f["optimizer/vars/11"]

    def reshape(f):
        v = f["optimizer/vars/9"][()]
        del f["optimizer/vars/9"]
        f["optimizer/vars/9"] = v.reshape(1, 4)

    def float_iteration(f):
        v = f["optimizer/vars/0"][()]
        del f["optimizer/vars/0"]
        f["optimizer/vars/0"] = np.float32(v)

    def nan(f):
        v = f["optimizer/vars/3"][()]
        v[0, 0] = np.nan
        f["optimizer/vars/3"][...] = v

    def renamed(f):
        g = f["optimizer/vars"]
        g["twelve"] = g["11"][()]
        del g["11"]

    for tag, edit in [("missing_variable", drop_last), ("wrong_shape", reshape),
                      ("float_iteration", float_iteration), ("nan_slot", nan),
                      ("misnamed_dataset", renamed)]:
        rewrite_weights(src, str(OUT_DIR / f"damaged.{tag}.keras"), edit)
    # A legacy .h5 whose weight_names put a v where an m belongs.
    import shutil
    dst = str(OUT_DIR / "damaged.swapped_names.h5")
    shutil.copy(OUT_DIR / "lstm_adam.tf.epoch1.h5", dst)
    with h5py.File(dst, "r+") as f:
        g = f["optimizer_weights"]
        names = list(g.attrs["weight_names"])
        names[1], names[2] = names[2], names[1]
        g.attrs["weight_names"] = names


def main(argv):
    if argv[:1] == ["--verify"]:
        return verify(argv[1], argv[2])
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in argv or CASES:
        run_case(name, CASES[name])
    damaged()


if __name__ == "__main__":
    main(sys.argv[1:])
