#!/usr/bin/env python3
"""Generate reference fixtures for the loss seqnn reports with activity penalties.

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_train_activity.py

It (re)writes tests/fixtures/train/activity/activity.json (README.md there is
written by hand). The whole trainings with activity regularizers are in
tests/fixtures/train/fits/ (generate_train_fits.py); this file holds what those
do not: the loss that train_on_batch, test_on_batch and evaluate report with
sample weights, with batches of different sizes, and with the loss_weights of
a model of two outputs.

For every case, the same model is built with tf_keras 2.21 ("tf") and
Keras 3.15 ("k3", TensorFlow backend) and given the SAME initial weights
(rng.uniform(-0.5, 0.5) float32 per array of get_weights(), in order). Then, in
each library, from those weights:

    test_on_batch(x[:8], y[:8], return_dict=True)
    test_on_batch(x[:8], y[:8], sample_weight=w[:8], return_dict=True)
    evaluate(x, y, sample_weight=w, batch_size=8, return_dict=True)  (12 samples: 8 + 4)
    train_on_batch(x[:8], y[:8], sample_weight=w[:8], return_dict=True)
        and the weights after that step (a fresh copy)

and, as checks, the activity penalty of the first batch recomputed in numpy
(float64) from the regularized layer's output, and the unweighted loss less that
penalty next to the loss of the same model without its activity regularizer:
equal, so the penalty is added once, outside the sample weights and the
loss_weights.

Conventions as generate_train_fits.py: clear_session() and set_random_seed(0)
before every model; rng = np.random.default_rng(zlib.crc32(case_name)) draws
the weights first, then the data. Arrays are {"shape", "data"} with float64
copies of the float32 values.
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"

import json  # noqa: E402
import platform  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model_fixtures import (  # noqa: E402
    LIBS, ROOT, VERSIONS, case_rng, f32_list, fresh)

tf.config.experimental.enable_op_determinism()

OUT_DIR = ROOT / "tests" / "fixtures" / "train" / "activity"
GENERATED_BY = "tools/keras_reference/generate_train_activity.py"
BATCH, SAMPLES = 8, 12
VKEY = {"tf": "tf_keras", "k3": "keras3"}


def u(rng, *shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def dense_two_layers(K, v, activity=True):
    """Input(4) -> Dense(3, tanh, activity_regularizer=L2(0.1), name="h") ->
    Dense(2, name="out")."""
    L = K.layers
    reg = {"activity_regularizer": K.regularizers.L2(0.1)} if activity else {}
    a = K.Input(shape=(4,))
    h = L.Dense(3, activation="tanh", name="h", **reg)(a)
    return K.Model(a, L.Dense(2, name="out")(h))


def two_outputs(K, v, activity=True):
    """Input(4) -> Dense(3, tanh, activity_regularizer=L1L2(0.05, 0.1),
    name="h") -> [Dense(2, name="o1"), Dense(1, name="o2")]."""
    L = K.layers
    reg = ({"activity_regularizer": K.regularizers.L1L2(l1=0.05, l2=0.1)}
           if activity else {})
    a = K.Input(shape=(4,))
    h = L.Dense(3, activation="tanh", name="h", **reg)(a)
    return K.Model(a, [L.Dense(2, name="o1")(h), L.Dense(1, name="o2")(h)])


CASES = {
    "dense_sample_weight": dict(
        description="Input(4) -> Dense(3, tanh, activity_regularizer=L2(0.1)"
                    ", name='h') -> Dense(2, name='out'); SGD(0.1); mse; "
                    "sample weights per sample; evaluate over 12 samples in "
                    "batches of 8 and 4, each divided by its own size",
        build=dense_two_layers,
        compile=lambda K: dict(optimizer=K.optimizers.SGD(0.1), loss="mse"),
        penalty=lambda h: 0.1 * np.sum(h ** 2),
        y=lambda rng: [u(rng, SAMPLES, 2)]),
    "two_outputs_loss_weights": dict(
        description="Input(4) -> Dense(3, tanh, activity_regularizer="
                    "L1L2(0.05, 0.1), name='h') -> [Dense(2, name='o1'), "
                    "Dense(1, name='o2')]; SGD(0.1); loss ['mse', 'mae'], "
                    "loss_weights [0.3, 2.0]; one sample weight array for "
                    "both outputs",
        build=two_outputs,
        compile=lambda K: dict(optimizer=K.optimizers.SGD(0.1),
                               loss=["mse", "mae"], loss_weights=[0.3, 2.0]),
        penalty=lambda h: 0.05 * np.sum(np.abs(h)) + 0.1 * np.sum(h ** 2),
        y=lambda rng: [u(rng, SAMPLES, 2), u(rng, SAMPLES, 1)]),
}


def array(a):
    a = np.asarray(a, np.float32)
    return {"shape": list(a.shape), "data": f32_list(a)}


def floats(logs):
    return {k: float(v) for k, v in logs.items()}


def feed(ys):
    return ys[0] if len(ys) == 1 else list(ys)


def model_of(v, case, w0, activity=True):
    K = LIBS[v]
    fresh(K)
    m = case["build"](K, v, activity)
    m.set_weights(w0)
    m.compile(**case["compile"](K))
    return m


def run(v, case, w0, x, ys, w):
    head = slice(0, BATCH)
    m = model_of(v, case, w0)
    yb = feed([y[head] for y in ys])
    out = {
        "test_on_batch": floats(m.test_on_batch(x[head], yb,
                                                return_dict=True)),
        "test_on_batch_weighted": floats(m.test_on_batch(
            x[head], yb, sample_weight=w[head], return_dict=True)),
        "evaluate_weighted": floats(m.evaluate(
            x, feed(ys), sample_weight=w, batch_size=BATCH, verbose=0,
            return_dict=True)),
    }
    # The penalty of the first batch, from the regularized layer's output.
    K = LIBS[v]
    hidden = K.Model(m.inputs, m.get_layer("h").output)
    h = np.asarray(hidden(x[head], training=False), np.float64)
    penalty = float(case["penalty"](h) / BATCH)
    plain = model_of(v, case, w0, activity=False)
    plain_loss = float(plain.test_on_batch(x[head], yb, return_dict=True)
                       ["loss"])
    out["checks"] = {
        "first_batch_penalty_numpy": penalty,
        "test_on_batch_loss_less_penalty": out["test_on_batch"]["loss"]
        - penalty,
        "loss_without_activity_regularizer": plain_loss,
    }
    m = model_of(v, case, w0)
    out["train_on_batch_weighted"] = floats(m.train_on_batch(
        x[head], yb, sample_weight=w[head], return_dict=True))
    out["weights_after_train_on_batch"] = [array(a) for a in m.get_weights()]
    return out


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"generated_by": GENERATED_BY,
               "versions": VERSIONS | {"python": platform.python_version()},
               "batch_size": BATCH, "cases": []}
    for name, case in CASES.items():
        rng = case_rng(name)
        K = LIBS["tf"]
        fresh(K)
        shapes = [a.shape for a in case["build"](K, "tf").get_weights()]
        fresh(LIBS["k3"])
        assert shapes == [a.shape for a in
                          case["build"](LIBS["k3"], "k3").get_weights()]
        w0 = [rng.uniform(-0.5, 0.5, size=s).astype(np.float32)
              for s in shapes]
        x = u(rng, SAMPLES, 4)
        ys = case["y"](rng)
        w = rng.uniform(0.2, 2.0, size=SAMPLES).astype(np.float32)
        entry = {"case": name, "description": case["description"],
                 "initial_weights": [array(a) for a in w0],
                 "x": array(x), "y": [array(y) for y in ys],
                 "sample_weight": array(w), "results": {}}
        for v in ("tf", "k3"):
            entry["results"][VKEY[v]] = run(v, case, w0, x, ys, w)
            ck = entry["results"][VKEY[v]]["checks"]
            print(f"{name:26s} {v}: penalty {ck['first_batch_penalty_numpy']:.6f}"
                  f", loss less penalty {ck['test_on_batch_loss_less_penalty']:.6f}"
                  f" vs without {ck['loss_without_activity_regularizer']:.6f}")
        payload["cases"].append(entry)
    with open(OUT_DIR / "activity.json", "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
