#!/usr/bin/env python3
"""Generate reference fixtures for seqnn's `fit` with `sample_weight`, `class_weight` and
`compile(weighted_metrics=...)`.

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_train_weights.py

It (re)writes tests/fixtures/train/weights/ (except README.md). For every case, the same
model is built with tf_keras 2.21 ("tf") and Keras 3.15 ("k3", TensorFlow backend), given
the SAME initial weights (rng.uniform(-0.5, 0.5) float32 per array of get_weights()),
compiled with the case's optimizer / loss / metrics and saved UNTRAINED and compiled:

    <case>.tf.keras   tf_keras  model.save("x.keras")
    <case>.tf.h5      tf_keras  model.save("x.h5"), for the cases marked h5 (after one
                      test_on_batch, so that its training_config holds the metrics resolved
                      against the real labels, as generate_train_fits.py does)
    <case>.k3.keras   Keras 3   model.save("x.keras")

Then, in each library,

    history = model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0,
                        sample_weight=..., class_weight=..., validation_split=...)
    model.evaluate(x, y, batch_size=8, sample_weight=..., return_dict=True)

and <case>.json records the data, the weights given, history.history (and its keys in
Keras's order), the final weights and evaluate's dict per library, or the library's error
text where it refuses the call (Keras 3 refuses class_weight together with sample_weight,
and on targets with one label per timestep; tf_keras multiplies them, and weighs each
timestep). A case of two outputs (a Functional model) records "ys", one target per output,
in place of "y".

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


def timestep_labels(rng, n, t, classes, sample_weight):
    """(n, t) sparse labels whose largest value comes at one of the first `classes`
    timesteps, so that both Kerases' argmax over the last axis (they take the row for one-hot
    classes) gives a class; with a (n, t) sample_weight."""
    y = np.zeros((n, t), np.float32)
    y[:, :classes] = rng.integers(0, classes, size=(n, classes))
    d = dict(y=y, class_weight={0: 1.0, 1: 2.0, 2: 0.5})
    if sample_weight:
        d["sample_weight"] = rng.uniform(0, 2, size=(n, t)).astype(np.float32)
    return d


def scce(optimizer, **metrics):
    """compile(optimizer, "sparse_categorical_crossentropy", **metrics) for a case."""
    return lambda K: dict(optimizer=optimizer(K), loss="sparse_categorical_crossentropy",
                          **metrics)


def adam(K):
    return K.optimizers.Adam(0.02)


def sgd(K):
    return K.optimizers.SGD(0.1)


def sparse_data(n, sample_weight):
    """x (n, 4, 3), labels (n,) of 3 classes and, if asked, a sample_weight (n,)."""
    def make(rng):
        d = dict(x=u(rng, n, 4, 3), y=rng.integers(0, 3, size=n).astype(np.float32))
        if sample_weight:
            d["sample_weight"] = rng.uniform(0, 2, size=n).astype(np.float32)
        return d
    return make


def gru_seq_softmax(K, v):
    return seq(K, v, (5, 2), lambda L, f: [
        L.GRU(3, return_sequences=True, **f), L.Dense(3, activation="softmax")])


def two_heads(K, v):
    """GRU(4) -> a: Dense(3, softmax), b: Dense(1), a Functional model of two outputs."""
    L = K.layers
    inp = K.Input(shape=(4, 3))
    h = L.GRU(4)(inp)
    return K.Model(inp, [L.Dense(3, activation="softmax", name="a")(h),
                         L.Dense(1, name="b")(h)])


def masked_ids(rng, n, t, vocab):
    lengths = rng.integers(2, t + 1, size=n)
    x = np.zeros((n, t), np.float32)
    for b, k in enumerate(lengths):
        x[b, :k] = rng.integers(1, vocab, size=k)
    return x


CASES.update({
    "class_weight_temporal_onehot": dict(
        description="LSTM(4, return_sequences=True) -> TimeDistributed(Dense(3, softmax)); "
                    "Adam(0.02); categorical_crossentropy; metrics ['accuracy'], "
                    "weighted_metrics ['accuracy']; one-hot labels (32, 6, 3); class_weight "
                    "{0: 2.0, 1: 0.5, 2: 1.0}; validation_split=0.25: tf_keras weighs each "
                    "timestep by its label, Keras 3 refuses (one label per sample)",
        build=lambda K, v: seq(K, v, (6, 3), lambda L, f: [
            L.LSTM(4, return_sequences=True, **f),
            L.TimeDistributed(L.Dense(3, activation="softmax"))]),
        compile=lambda K: dict(optimizer=K.optimizers.Adam(0.02),
                               loss="categorical_crossentropy", metrics=["accuracy"],
                               weighted_metrics=["accuracy"]),
        data=lambda rng: dict(
            x=u(rng, 32, 6, 3),
            y=np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=(32, 6))],
            class_weight={0: 2.0, 1: 0.5, 2: 1.0}),
        fit={"validation_split": 0.25}),
    "class_weight_temporal_sparse_and_sample_weight": dict(
        description="GRU(3, return_sequences=True) -> Dense(3, softmax); RMSprop(0.01); "
                    "sparse_categorical_crossentropy; labels (32, 5, 1); class_weight {0: 1.0,"
                    " 1: 3.0, 2: 0.5} AND sample_weight (32, 5): tf_keras multiplies them "
                    "timestep by timestep, Keras 3 refuses",
        build=gru_seq_softmax, compile=scce(lambda K: K.optimizers.RMSprop(0.01)),
        data=lambda rng: dict(
            x=u(rng, 32, 5, 2), y=rng.integers(0, 3, size=(32, 5, 1)).astype(np.float32),
            class_weight={0: 1.0, 1: 3.0, 2: 0.5},
            sample_weight=rng.uniform(0, 2, size=(32, 5)).astype(np.float32)),
        fit={}),
    "class_weight_temporal_binary_and_per_sample_weight": dict(
        description="SimpleRNN(3, return_sequences=True) -> Dense(1, sigmoid); SGD(0.2); "
                    "binary_crossentropy; weighted_metrics ['binary_accuracy']; labels "
                    "(40, 5, 1); class_weight {0: 0.3, 1: 1.7} AND sample_weight (40,): "
                    "tf_keras spreads the sample's weight over its timesteps' class weights, "
                    "Keras 3 refuses. 40 samples, whole batches of 8: with a partial last "
                    "batch tf_keras fails (checks.tf_keras_with_a_partial_last_batch)",
        build=lambda K, v: seq(K, v, (5, 2), lambda L, f: [
            L.SimpleRNN(3, return_sequences=True, **f), L.Dense(1, activation="sigmoid")]),
        compile=lambda K: dict(optimizer=K.optimizers.SGD(0.2), loss="binary_crossentropy",
                               weighted_metrics=["binary_accuracy"]),
        data=lambda rng: dict(
            x=u(rng, 40, 5, 2), y=rng.integers(0, 2, size=(40, 5, 1)).astype(np.float32),
            class_weight={0: 0.3, 1: 1.7},
            sample_weight=rng.uniform(0, 2, size=40).astype(np.float32)),
        fit={}, partial_batch_check=True),
    "class_weight_timestep_labels": dict(
        description="GRU(3, return_sequences=True) -> Dense(3, softmax); SGD(0.1); "
                    "sparse_categorical_crossentropy; labels (32, 5), one per timestep, whose "
                    "argmax over the timesteps reaches 3 and 4; class_weight {0: 1.0, 1: 2.0, "
                    "2: 0.5}: both Kerases take each row for one sample's one-hot classes, "
                    "tf_keras then has no weight for class 3, Keras 3's loss refuses (samples,) "
                    "weights on (samples, timesteps) losses",
        build=gru_seq_softmax, compile=scce(sgd),
        data=lambda rng: dict(
            x=u(rng, 32, 5, 2), y=rng.integers(0, 3, size=(32, 5)).astype(np.float32),
            class_weight={0: 1.0, 1: 2.0, 2: 0.5}),
        fit={}),
    "class_weight_timestep_labels_and_temporal_sample_weight": dict(
        description="as class_weight_timestep_labels, each row's largest label among its "
                    "first 3 timesteps (so that its argmax is a class), with a sample_weight "
                    "(32, 5): tf_keras cannot multiply the (samples, timesteps) sample weight "
                    "with the per-sample class weights, Keras 3 refuses both at once",
        build=gru_seq_softmax, compile=scce(sgd),
        data=lambda rng: dict(x=u(rng, 32, 5, 2), **timestep_labels(rng, 32, 5, 3, True)),
        fit={}),
    "weighted_metrics_sample_weight": dict(
        description="GRU(3) -> Dense(3, softmax); Adam(0.02); sparse_categorical_crossentropy;"
                    " metrics ['accuracy'], weighted_metrics ['accuracy', "
                    "'sparse_categorical_crossentropy']; sample_weight (40,) with zeros; "
                    "validation_split=0.2 (the weights split with the data)",
        build=gru_softmax,
        compile=scce(adam, metrics=["accuracy"],
                     weighted_metrics=["accuracy", "sparse_categorical_crossentropy"]),
        data=lambda rng: dict(
            x=u(rng, 40, 4, 3), y=rng.integers(0, 3, size=40).astype(np.float32),
            sample_weight=np.where(np.arange(40) % 7 == 0, 0.0,
                                   rng.uniform(0, 2, size=40)).astype(np.float32)),
        fit={"validation_split": 0.2}, h5=True),
    "weighted_metrics_class_weight": dict(
        description="SimpleRNN(3) -> Dense(1, sigmoid); SGD(0.2); binary_crossentropy; "
                    "metrics ['mse'], weighted_metrics ['accuracy', 'mse']; class_weight "
                    "{0: 0.3, 1: 1.7}; labels (36, 1); validation_split=0.25 (not class-"
                    "weighted)",
        build=lambda K, v: seq(K, v, (5, 2), lambda L, f: [
            L.SimpleRNN(3, **f), L.Dense(1, activation="sigmoid")]),
        compile=lambda K: dict(optimizer=K.optimizers.SGD(0.2), loss="binary_crossentropy",
                               metrics=["mse"], weighted_metrics=["accuracy", "mse"]),
        data=lambda rng: dict(
            x=u(rng, 36, 5, 2), y=rng.integers(0, 2, size=(36, 1)).astype(np.float32),
            class_weight={0: 0.3, 1: 1.7}),
        fit={"validation_split": 0.25}),
    "weighted_metrics_masked_temporal": dict(
        description="Embedding(7, 3, mask_zero=True) -> LSTM(4, return_sequences=True) -> "
                    "TimeDistributed(Dense(1)); SGD(0.2) (Keras 3's Adam squares an "
                    "Embedding's gradient per occurrence of an id); mse; metrics ['mae'], "
                    "weighted_metrics ['mae', 'mse']; ids (32, 6) padded with 0; "
                    "sample_weight (32, 6), one per timestep, with the mask",
        build=lambda K, v: seq(K, v, (6,), lambda L, f: [
            L.Embedding(7, 3, mask_zero=True, **f), L.LSTM(4, return_sequences=True),
            L.TimeDistributed(L.Dense(1))]),
        compile=lambda K: dict(optimizer=K.optimizers.SGD(0.2), loss="mse",
                               metrics=["mae"], weighted_metrics=["mae", "mse"]),
        data=lambda rng: dict(
            x=masked_ids(rng, 32, 6, 7), y=u(rng, 32, 6, 1),
            sample_weight=rng.uniform(0, 2, size=(32, 6)).astype(np.float32)),
        fit={}),
    "weighted_metrics_two_outputs": dict(
        description="Functional GRU(4) -> a: Dense(3, softmax), b: Dense(1); Adam(0.02); "
                    "losses [sparse_categorical_crossentropy, mse]; metrics {'a': "
                    "['accuracy']}, weighted_metrics {'a': ['accuracy'], 'b': ['mae', 'mse']};"
                    " sample_weight (40,) for both outputs",
        build=two_heads,
        compile=lambda K: dict(optimizer=K.optimizers.Adam(0.02),
                               loss=["sparse_categorical_crossentropy", "mse"],
                               metrics={"a": ["accuracy"]},
                               weighted_metrics={"a": ["accuracy"], "b": ["mae", "mse"]}),
        data=lambda rng: dict(
            x=u(rng, 40, 4, 3),
            ys=[rng.integers(0, 3, size=40).astype(np.float32), u(rng, 40, 1)],
            sample_weight=rng.uniform(0, 2, size=40).astype(np.float32)),
        fit={}, h5=True),
    "weighted_metrics_duplicate_names": dict(
        description="GRU(3) -> Dense(3, softmax); Adam(0.02); sparse_categorical_crossentropy;"
                    " metrics ['accuracy'], weighted_metrics ['accuracy', 'accuracy']: "
                    "tf_keras refuses the second (\"Found two weighted metrics with the same "
                    "name\"), Keras 3 logs weighted_accuracy and weighted_accuracy_1",
        build=gru_softmax,
        compile=scce(adam, metrics=["accuracy"], weighted_metrics=["accuracy", "accuracy"]),
        data=sparse_data(24, sample_weight=True),
        fit={}),
    "metrics_duplicate_names": dict(
        description="GRU(3) -> Dense(3, softmax); Adam(0.02); sparse_categorical_crossentropy;"
                    " metrics ['accuracy', 'accuracy']: tf_keras refuses (\"Found two metrics "
                    "with the same name\"), Keras 3 logs accuracy and accuracy_1",
        build=gru_softmax, compile=scce(adam, metrics=["accuracy", "accuracy"]),
        data=sparse_data(24, sample_weight=False),
        fit={}),
})

# The phrase that carries a library's refusal, where its first line does not (tf_keras's
# graph errors begin with "Graph execution error:" or "in user code:").
KEY_PHRASES = ("Found two", "Dimensions must be equal", "is not in [",
               "only 0-dimensional arrays", "at the same time")


def error_text(exc):
    """short_error, or `Type: the line with the key phrase` when another line carries it."""
    for line in str(exc).split("\n"):
        if any(p in line for p in KEY_PHRASES):
            line = line.strip()
            return f"{type(exc).__name__}: {line[:400]}"
    return short_error(exc)


def partial_batch_error(case, w0, d):
    """tf_keras's fit of the case on its first 36 samples (a last batch of 4): its class
    weights' map reshapes the sample weights to the batch's static shape, unknown then."""
    K = LIBS["tf"]
    fresh(K)
    model = case["build"](K, "tf")
    model.set_weights(w0)
    model.compile(**case["compile"](K))
    try:
        model.fit(d["x"][:36], d["y"][:36], epochs=1, batch_size=BATCH, shuffle=False,
                  verbose=0, sample_weight=d["sample_weight"][:36],
                  class_weight=d["class_weight"])
    except Exception as e:  # noqa: BLE001 - the refusal is the result
        return error_text(e)
    return None


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
    y = d["ys"] if "ys" in d else d["y"]
    out = {"file": path.name}
    if v == "tf" and case.get("h5"):
        first = [t[:BATCH] for t in y] if "ys" in d else y[:BATCH]
        model.test_on_batch(d["x"][:BATCH], first)
        model.save(str(OUT_DIR / f"{name}.tf.h5"))
        out["h5"] = f"{name}.tf.h5"
    kw = dict(case["fit"])
    for key in ("sample_weight", "class_weight"):
        if key in d:
            kw[key] = d[key]
    try:
        h = model.fit(d["x"], y, epochs=EPOCHS, batch_size=BATCH, shuffle=False,
                      verbose=0, **kw)
    except Exception as e:  # noqa: BLE001 - the library's refusal is the result
        out["error"] = error_text(e)
        return out
    out["history"] = {k: [float(x) for x in vals] for k, vals in h.history.items()}
    out["history_keys"] = list(h.history)
    out["final_weights"] = [tensor(w) for w in weights_list(model)]
    ev_kw = {"sample_weight": d["sample_weight"]} if "sample_weight" in d else {}
    ev = model.evaluate(d["x"], y, batch_size=BATCH, verbose=0, return_dict=True, **ev_kw)
    out["evaluate"] = {k: float(x) for k, x in ev.items()}
    out["evaluate_keys"] = list(ev)
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
            **({"ys": [tensor(t) for t in d["ys"]]} if "ys" in d else {"y": tensor(d["y"])}),
            "compile": {k: val for k, val in case["compile"](LIBS["k3"]).items()
                        if k in ("metrics", "weighted_metrics")},
            "sample_weight": tensor(d["sample_weight"]) if "sample_weight" in d else None,
            "class_weight": ({str(k): float(v) for k, v in d["class_weight"].items()}
                             if "class_weight" in d else None),
            "initial_weights": [tensor(w) for w in w0],
            "results": results,
        }
        if case.get("partial_batch_check"):
            doc["checks"] = {
                "tf_keras_with_a_partial_last_batch": partial_batch_error(case, w0, d)}
        (OUT_DIR / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(name, {k: (r.get("error") or r["history"]["loss"][-1])
                     for k, r in results.items()})


if __name__ == "__main__":
    main(sys.argv[1:] or list(CASES))
