#!/usr/bin/env python3
"""Generate reference fixtures for seqnn's `fit` with `sample_weight` and `class_weight`.

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_train_weights.py

It (re)writes tests/fixtures/train/weights/ (except README.md). For every case, the same
model is built with tf_keras 2.21 ("tf") and Keras 3.15 ("k3", TensorFlow backend), given
the SAME initial weights (rng.uniform(-0.5, 0.5) float32 per array of get_weights()),
compiled with the case's optimizer / loss / metrics and saved UNTRAINED and compiled:

    <case>.tf.keras   tf_keras  model.save("x.keras")
    <case>.k3.keras   Keras 3   model.save("x.keras")

Then, in each library,

    history = model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0,
                        sample_weight=..., class_weight=..., validation_split=...)
    model.evaluate(x, y, batch_size=8, sample_weight=..., return_dict=True)

and <case>.json records the data, the weights given, history.history, the final weights and
evaluate's dict per library, or the library's error text where it refuses the call (Keras 3
refuses class_weight together with sample_weight; tf_keras multiplies them).

Conventions as generate_train_fits.py: clear_session() and set_random_seed(0) before every
model; rng = np.random.default_rng(zlib.crc32(case_name)) draws the weights first, then the
data. Arrays are {"shape", "data"} with float64 copies of the float32 values.
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"

import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model_fixtures import (  # noqa: E402
    LIBS, ROOT, VERSIONS, case_rng, fresh, short_error, tensor)

tf.config.experimental.enable_op_determinism()

OUT_DIR = ROOT / "tests" / "fixtures" / "train" / "weights"
GENERATED_BY = "tools/keras_reference/generate_train_weights.py"
EPOCHS, BATCH = 3, 8


def seq(K, v, shape, layers_fn):
    L = K.layers
    if v == "tf":
        return K.Sequential(layers_fn(L, {"input_shape": tuple(shape)}))
    return K.Sequential([K.Input(shape=tuple(shape))] + layers_fn(L, {}))


def u(rng, *shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


# Each case: build(K, v), compile(K) -> kwargs, data(rng) -> dict(x, y, and any of
# sample_weight, class_weight), fit: extra fit kwargs.
def gru_softmax(K, v):
    return seq(K, v, (4, 3), lambda L, f: [
        L.GRU(3, **f), L.Dense(3, activation="softmax")])


def adam_cce(K):
    return dict(optimizer=K.optimizers.Adam(0.02), loss="categorical_crossentropy")


def onehot_data(with_sample_weight):
    def make(rng):
        d = dict(x=u(rng, 40, 4, 3),
                 y=np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=40)],
                 class_weight={0: 2.0, 1: 0.5, 2: 1.0})
        if with_sample_weight:
            d["sample_weight"] = rng.uniform(0, 2, size=40).astype(np.float32)
        return d
    return make


CASES = {
    "sample_weight_lstm_mse": dict(
        description="LSTM(4) -> Dense(1); SGD(0.1); mse; sample_weight (36,) in [0, 2) "
                    "with zeros; validation_split=0.25 (the weights split with the data)",
        build=lambda K, v: seq(K, v, (5, 3), lambda L, f: [L.LSTM(4, **f), L.Dense(1)]),
        compile=lambda K: dict(optimizer=K.optimizers.SGD(0.1), loss="mse"),
        data=lambda rng: dict(
            x=u(rng, 36, 5, 3), y=u(rng, 36, 1),
            sample_weight=np.where(np.arange(36) % 5 == 0, 0.0,
                                   rng.uniform(0, 2, size=36)).astype(np.float32)),
        fit={"validation_split": 0.25}),
    "sample_weight_temporal_adam": dict(
        description="LSTM(4, return_sequences=True) -> TimeDistributed(Dense(2)); Adam(0.01); "
                    "mse; sample_weight (32, 6), one per timestep",
        build=lambda K, v: seq(K, v, (6, 3), lambda L, f: [
            L.LSTM(4, return_sequences=True, **f), L.TimeDistributed(L.Dense(2))]),
        compile=lambda K: dict(optimizer=K.optimizers.Adam(0.01), loss="mse"),
        data=lambda rng: dict(
            x=u(rng, 32, 6, 3), y=u(rng, 32, 6, 2),
            sample_weight=rng.uniform(0, 2, size=(32, 6)).astype(np.float32)),
        fit={}),
    "sample_weight_per_sample_on_sequence": dict(
        description="GRU(3, return_sequences=True) -> TimeDistributed(Dense(1)); RMSprop(0.01);"
                    " mae; sample_weight (32,) broadcast over the timesteps",
        build=lambda K, v: seq(K, v, (5, 2), lambda L, f: [
            L.GRU(3, return_sequences=True, **f), L.TimeDistributed(L.Dense(1))]),
        compile=lambda K: dict(optimizer=K.optimizers.RMSprop(0.01), loss="mae"),
        data=lambda rng: dict(
            x=u(rng, 32, 5, 2), y=u(rng, 32, 5, 1),
            sample_weight=rng.uniform(0, 3, size=32).astype(np.float32)),
        fit={}),
    "class_weight_sparse_softmax": dict(
        description="GRU(3) -> Dense(3, softmax); Adam(0.02); sparse_categorical_crossentropy;"
                    " metrics ['accuracy'] (unweighted); class_weight {0: 1.0, 1: 2.5, 2: 0.5}"
                    "; labels (40,)",
        build=lambda K, v: seq(K, v, (4, 3), lambda L, f: [
            L.GRU(3, **f), L.Dense(3, activation="softmax")]),
        compile=lambda K: dict(optimizer=K.optimizers.Adam(0.02),
                               loss="sparse_categorical_crossentropy", metrics=["accuracy"]),
        data=lambda rng: dict(
            x=u(rng, 40, 4, 3), y=rng.integers(0, 3, size=40).astype(np.float32),
            class_weight={0: 1.0, 1: 2.5, 2: 0.5}),
        fit={}),
    "class_weight_binary_sigmoid": dict(
        description="SimpleRNN(3) -> Dense(1, sigmoid); SGD(0.2); binary_crossentropy; "
                    "metrics ['accuracy']; class_weight {0: 0.3, 1: 1.7}; labels (36, 1)",
        build=lambda K, v: seq(K, v, (5, 2), lambda L, f: [
            L.SimpleRNN(3, **f), L.Dense(1, activation="sigmoid")]),
        compile=lambda K: dict(optimizer=K.optimizers.SGD(0.2), loss="binary_crossentropy",
                               metrics=["accuracy"]),
        data=lambda rng: dict(
            x=u(rng, 36, 5, 2), y=rng.integers(0, 2, size=(36, 1)).astype(np.float32),
            class_weight={0: 0.3, 1: 1.7}),
        fit={}),
    "class_weight_onehot_and_sample_weight": dict(
        description="GRU(3) -> Dense(3, softmax); Adam(0.02); categorical_crossentropy; one-hot"
                    " labels; class_weight {0: 2.0, 1: 0.5, 2: 1.0} AND sample_weight (40,): "
                    "tf_keras multiplies them, Keras 3 refuses the call",
        build=gru_softmax, compile=adam_cce, data=onehot_data(True), fit={}),
    "class_weight_onehot": dict(
        description="as class_weight_onehot_and_sample_weight without the sample_weight",
        build=gru_softmax, compile=adam_cce, data=onehot_data(False), fit={}),
}


def weights_list(model):
    return [np.asarray(w, np.float32) for w in model.get_weights()]


def run(v, name, case, w0, d):
    K = LIBS[v]
    fresh(K)
    model = case["build"](K, v)
    model.set_weights(w0)
    model.compile(**case["compile"](K))
    path = OUT_DIR / f"{name}.{v}.keras"
    model.save(str(path))
    kw = dict(case["fit"])
    for key in ("sample_weight", "class_weight"):
        if key in d:
            kw[key] = d[key]
    out = {"file": path.name}
    try:
        h = model.fit(d["x"], d["y"], epochs=EPOCHS, batch_size=BATCH, shuffle=False,
                      verbose=0, **kw)
    except Exception as e:  # noqa: BLE001 - the library's refusal is the result
        out["error"] = short_error(e)
        return out
    out["history"] = {k: [float(x) for x in vals] for k, vals in h.history.items()}
    out["final_weights"] = [tensor(w) for w in weights_list(model)]
    ev_kw = {"sample_weight": d["sample_weight"]} if "sample_weight" in d else {}
    out["evaluate"] = {k: float(x) for k, x in model.evaluate(
        d["x"], d["y"], batch_size=BATCH, verbose=0, return_dict=True, **ev_kw).items()}
    return out


def main(names):
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in names:
        case = CASES[name]
        rng = case_rng(name)
        fresh(LIBS["k3"])
        shapes = [w.shape for w in case["build"](LIBS["k3"], "k3").get_weights()]
        w0 = [rng.uniform(-0.5, 0.5, size=s).astype(np.float32) for s in shapes]
        d = case["data"](rng)
        results = {
            "tf_keras": run("tf", name, case, w0, d),
            "keras3": run("k3", name, case, w0, d),
        }
        doc = {
            "case": name,
            "generated_by": GENERATED_BY,
            "versions": VERSIONS,
            "description": case["description"],
            "fit": {"epochs": EPOCHS, "batch_size": BATCH, "shuffle": False,
                    **case["fit"]},
            "x": tensor(d["x"]),
            "y": tensor(d["y"]),
            "sample_weight": tensor(d["sample_weight"]) if "sample_weight" in d else None,
            "class_weight": ({str(k): float(v) for k, v in d["class_weight"].items()}
                             if "class_weight" in d else None),
            "initial_weights": [tensor(w) for w in w0],
            "results": results,
        }
        (OUT_DIR / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(name, {k: (r.get("error") or r["history"]["loss"][-1])
                     for k, r in results.items()})


if __name__ == "__main__":
    main(sys.argv[1:] or list(CASES))
