#!/usr/bin/env python3
"""Generate reference fixtures for seqnn's `fit` on stateful models.

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_train_stateful.py

It (re)writes tests/fixtures/train/stateful/ (except README.md). For every case, the same
stateful model (batch size fixed at 4: tf_keras `batch_input_shape=(4, T, F)` on the first
layer or `Input(batch_shape=...)`, Keras 3 `Input(batch_shape=(4, T, F))`) is built with
tf_keras 2.21 ("tf") and Keras 3.15 ("k3", TensorFlow backend), given the SAME initial
weights (rng.uniform(-0.5, 0.5) float32 per array of get_weights()), compiled with the
case's optimizer / loss / metrics and saved UNTRAINED and compiled:

    <case>.tf.keras   tf_keras  model.save("x.keras")
    <case>.k3.keras   Keras 3   model.save("x.keras")

Then, in each library,

    history = model.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0,
                        callbacks=[reset?, recorder], validation_...=...)
    states after fit
    model.evaluate(x, y, batch_size=4, return_dict=True)      (from the states fit left)
    states after evaluate

The reset callback is LambdaCallback(on_epoch_begin= or on_epoch_end=...) calling
tf_keras's `model.reset_states()` or, in Keras 3 (whose models have no reset_states), each
stateful layer's `reset_state()`. The recorder (last) keeps the states at the start of every
training batch and at each epoch's end. States are listed layer by layer, a Bidirectional's
forward then backward, each as {"shape", "data"}.

<case>.json records the data, the initial weights and per library history.history, the
states seen by the recorder, the final weights, the final states, evaluate's dict and the
states after it. errors.json records what each library says to the mistakes seqnn refuses
(another batch size, a number of samples that is not a multiple of it) and whether
shuffle=True warns.

Conventions as generate_train_fits.py: clear_session() and set_random_seed(0) before every
model; rng = np.random.default_rng(zlib.crc32(case_name)) draws the weights first, then the
data. Arrays are {"shape", "data"} with float64 copies of the float32 values.
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"

import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model_fixtures import (  # noqa: E402
    LIBS, ROOT, VERSIONS, case_rng, fresh, short_error, tensor)

tf.config.experimental.enable_op_determinism()

OUT_DIR = ROOT / "tests" / "fixtures" / "train" / "stateful"
GENERATED_BY = "tools/keras_reference/generate_train_stateful.py"
EPOCHS, BATCH = 3, 4


def seq(K, v, shape, layers_fn):
    """A stateful Sequential of batch BATCH: tf_keras's batch_input_shape on the first
    layer, Keras 3's Input(batch_shape=...)."""
    L = K.layers
    batch_shape = (BATCH,) + tuple(shape)
    if v == "tf":
        return K.Sequential(layers_fn(L, {"batch_input_shape": batch_shape}))
    return K.Sequential([K.Input(batch_shape=batch_shape)] + layers_fn(L, {}))


def functional(K, v, shape, layers_fn):
    """The same as a Functional model, Input(batch_shape=...) in both."""
    inp = K.Input(batch_shape=(BATCH,) + tuple(shape))
    out = inp
    for layer in layers_fn(K.layers, {}):
        out = layer(out)
    return K.Model(inp, out)


def u(rng, *shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def stateful_layers(model):
    return [l for l in model.layers if getattr(l, "stateful", False)]


def states_of(model):
    out = []
    for layer in stateful_layers(model):
        parts = ([layer.forward_layer, layer.backward_layer]
                 if hasattr(layer, "forward_layer") else [layer])
        for p in parts:
            out.extend(np.asarray(s, np.float32) for s in p.states)
    return out


def reset(model, v):
    if v == "tf":
        model.reset_states()
    else:
        for layer in stateful_layers(model):
            layer.reset_state()


def recorder(K, model, log):
    def batch_begin(batch, logs):
        log.append({"hook": "train_batch_begin", "batch": batch,
                    "states": [tensor(s) for s in states_of(model)]})

    def epoch_end(epoch, logs):
        log.append({"hook": "epoch_end", "epoch": epoch,
                    "states": [tensor(s) for s in states_of(model)]})

    return K.callbacks.LambdaCallback(on_train_batch_begin=batch_begin,
                                      on_epoch_end=epoch_end)


def sgd_mse(K):
    return dict(optimizer=K.optimizers.SGD(0.1), loss="mse")


def rnn_dense(kind, units=3):
    return lambda K, v: seq(K, v, (5, 2), lambda L, f: [
        getattr(L, kind)(units, stateful=True, **f), L.Dense(1)])


def xy(n=16, t=5, f=2, out=(1,)):
    return lambda rng: dict(x=u(rng, n, t, f), y=u(rng, n, *out))


CASES = {
    "simple_rnn_sgd": dict(
        description="SimpleRNN(3, stateful) -> Dense(1); SGD(0.1); mse; 16 samples in 4 "
                    "batches of 4; no reset: the states run on across epochs",
        build=rnn_dense("SimpleRNN"), compile=sgd_mse, data=xy(), reset=None, fit={}),
    "simple_rnn_sgd_reset_epoch_begin": dict(
        description="as simple_rnn_sgd, states reset by LambdaCallback(on_epoch_begin=...)",
        build=rnn_dense("SimpleRNN"), compile=sgd_mse, data=xy(), reset="on_epoch_begin",
        fit={}),
    "lstm_adam_reset_epoch_end": dict(
        description="LSTM(4, stateful) -> Dense(1); Adam(0.01); mse, metrics ['mae']; "
                    "states reset by LambdaCallback(on_epoch_end=...)",
        build=rnn_dense("LSTM", 4),
        compile=lambda K: dict(optimizer=K.optimizers.Adam(0.01), loss="mse",
                               metrics=["mae"]),
        data=xy(), reset="on_epoch_end", fit={}),
    "gru_rmsprop_validation_data": dict(
        description="GRU(3, stateful, return_sequences) -> TimeDistributed(Dense(2)); "
                    "RMSprop(0.01); mse; validation_data of 8 samples: the validation "
                    "batches carry the states on into the next epoch; no reset",
        build=lambda K, v: seq(K, v, (5, 2), lambda L, f: [
            L.GRU(3, stateful=True, return_sequences=True, **f),
            L.TimeDistributed(L.Dense(2))]),
        compile=lambda K: dict(optimizer=K.optimizers.RMSprop(0.01), loss="mse"),
        data=lambda rng: dict(x=u(rng, 16, 5, 2), y=u(rng, 16, 5, 2),
                              x_val=u(rng, 8, 5, 2), y_val=u(rng, 8, 5, 2)),
        reset=None, fit={}),
    "lstm_gru_stack_validation_split_reset": dict(
        description="LSTM(4, stateful, return_sequences) -> GRU(3, stateful) -> "
                    "Dense(3, softmax); Adam(0.02); sparse_categorical_crossentropy, "
                    "metrics ['accuracy']; validation_split=0.25 (12 to train, 4 to "
                    "validate); reset at each epoch's start",
        build=lambda K, v: seq(K, v, (6, 2), lambda L, f: [
            L.LSTM(4, stateful=True, return_sequences=True, **f),
            L.GRU(3, stateful=True), L.Dense(3, activation="softmax")]),
        compile=lambda K: dict(optimizer=K.optimizers.Adam(0.02),
                               loss="sparse_categorical_crossentropy",
                               metrics=["accuracy"]),
        data=lambda rng: dict(x=u(rng, 16, 6, 2),
                              y=rng.integers(0, 3, size=16).astype(np.float32)),
        reset="on_epoch_begin", fit={"validation_split": 0.25}),
    "functional_lstm_sgd": dict(
        description="Functional Input(batch_shape=(4, 5, 2)) -> LSTM(3, stateful) -> "
                    "Dense(1); SGD(0.2, momentum=0.5); mse; no reset",
        build=lambda K, v: functional(K, v, (5, 2), lambda L, f: [
            L.LSTM(3, stateful=True), L.Dense(1)]),
        compile=lambda K: dict(optimizer=K.optimizers.SGD(0.2, momentum=0.5), loss="mse"),
        data=xy(), reset=None, fit={}),
    "bidirectional_lstm_reset_epoch_begin": dict(
        description="Bidirectional(LSTM(2, stateful)) -> Dense(1); Adam(0.01); mse; reset "
                    "at each epoch's start",
        build=lambda K, v: seq(K, v, (5, 2), lambda L, f: [
            L.Bidirectional(L.LSTM(2, stateful=True), **f), L.Dense(1)]),
        compile=lambda K: dict(optimizer=K.optimizers.Adam(0.01), loss="mse"),
        data=xy(), reset="on_epoch_begin", fit={}),
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
    callbacks = []
    if case["reset"]:
        callbacks.append(K.callbacks.LambdaCallback(
            **{case["reset"]: lambda epoch, logs: reset(model, v)}))
    seen = []
    callbacks.append(recorder(K, model, seen))
    kw = dict(case["fit"])
    if "x_val" in d:
        kw["validation_data"] = (d["x_val"], d["y_val"])
    h = model.fit(d["x"], d["y"], epochs=EPOCHS, batch_size=BATCH, shuffle=False,
                  verbose=0, callbacks=callbacks, **kw)
    out = {"file": path.name,
           "history": {k: [float(x) for x in vals] for k, vals in h.history.items()},
           "seen": seen,
           "final_weights": [tensor(w) for w in weights_list(model)],
           "final_states": [tensor(s) for s in states_of(model)]}
    out["evaluate"] = {k: float(x) for k, x in model.evaluate(
        d["x"], d["y"], batch_size=BATCH, verbose=0, return_dict=True).items()}
    out["states_after_evaluate"] = [tensor(s) for s in states_of(model)]
    return out


def errors():
    """What each library says to the mistakes seqnn refuses before training."""
    out = {}
    for v in ("tf", "k3"):
        K = LIBS[v]
        rng = np.random.default_rng(0)
        x, y = u(rng, 10, 5, 2), u(rng, 10, 1)
        res = {}
        for key, kw in [("batch_size_2", dict(x=x[:8], y=y[:8], batch_size=2)),
                        ("batch_size_8", dict(x=x[:8], y=y[:8], batch_size=8)),
                        ("samples_10_batch_size_4", dict(x=x, y=y, batch_size=4))]:
            fresh(K)
            model = rnn_dense("SimpleRNN")(K, v)
            model.compile(**sgd_mse(K))
            try:
                model.fit(verbose=0, shuffle=False, **kw)
                res[key] = None
            except Exception as e:  # noqa: BLE001 - the library's refusal is the result
                # The line that says what failed (tf.function errors bury it in a trace).
                lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
                         for line in str(e).split("\n")]
                said = [line for line in lines if any(
                    p in line for p in ("incompatible with the layer", "If an RNN is stateful",
                                        "Incompatible shapes", "Expected batch size",
                                        "Received batch size"))]
                res[key] = (f"{type(e).__name__}: " + "\n".join(said)) if said else short_error(e)
        fresh(K)
        model = rnn_dense("SimpleRNN")(K, v)
        model.compile(**sgd_mse(K))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x[:8], y[:8], batch_size=4, shuffle=True, verbose=0)
        res["shuffle_true_warnings"] = [str(w.message) for w in caught
                                        if "shuffle" in str(w.message).lower()]
        res["model_has_reset_states"] = hasattr(model, "reset_states")
        out["tf_keras" if v == "tf" else "keras3"] = res
    return out


def main(names):
    if names == ["errors"]:
        doc = {"generated_by": GENERATED_BY, "versions": VERSIONS, "errors": errors()}
        (OUT_DIR / "errors.json").write_text(json.dumps(doc, indent=1) + "\n")
        print("errors", doc["errors"])
        return
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in names:
        case = CASES[name]
        rng = case_rng(name)
        fresh(LIBS["k3"])
        shapes = [w.shape for w in case["build"](LIBS["k3"], "k3").get_weights()]
        w0 = [rng.uniform(-0.5, 0.5, size=s).astype(np.float32) for s in shapes]
        d = case["data"](rng)
        results = {"tf_keras": run("tf", name, case, w0, d),
                   "keras3": run("k3", name, case, w0, d)}
        doc = {
            "case": name,
            "generated_by": GENERATED_BY,
            "versions": VERSIONS,
            "description": case["description"],
            "fit": {"epochs": EPOCHS, "batch_size": BATCH, "shuffle": False,
                    "reset": case["reset"], **case["fit"]},
            "x": tensor(d["x"]),
            "y": tensor(d["y"]),
            "x_val": tensor(d["x_val"]) if "x_val" in d else None,
            "y_val": tensor(d["y_val"]) if "y_val" in d else None,
            "initial_weights": [tensor(w) for w in w0],
            "results": results,
        }
        (OUT_DIR / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(name, {k: r["history"]["loss"][-1] for k, r in results.items()})
    if set(names) == set(CASES):
        doc = {"generated_by": GENERATED_BY, "versions": VERSIONS, "errors": errors()}
        (OUT_DIR / "errors.json").write_text(json.dumps(doc, indent=1) + "\n")
        print("errors", doc["errors"])


if __name__ == "__main__":
    main(sys.argv[1:] or list(CASES))
