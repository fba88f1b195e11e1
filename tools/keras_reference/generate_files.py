#!/usr/bin/env python3
"""Generate reference Keras model FILES for seqnn's loader/saver tests.

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_files.py

It (re)writes everything in tests/fixtures/files/ except README.md (about
two minutes). `generate_files.py CASE...` regenerates only those cases,
`generate_files.py --bad` only bad/ (it needs course_text_classifier's
files), and `generate_files.py --dump FILE...` prints the zip members,
JSON configs and HDF5 trees of saved files (as shown in the README):

  * for every case of CASES, the same architecture built with tf_keras 2.21
    ("tf") and with Keras 3.15 ("k3", TensorFlow backend), given the SAME
    weights, and saved as

        <case>.tf.keras       tf_keras  model.save("x.keras")
        <case>.tf.h5          tf_keras  model.save("x.h5")   (legacy HDF5)
        <case>.k3.keras       Keras 3   model.save("x.keras")
        <case>.k3.h5          Keras 3   model.save("x.h5")   (legacy HDF5)
        <case>.k3.weights.h5  Keras 3   model.save_weights("x.weights.h5")

    plus <case>.json (inputs, expected outputs per Keras version, summaries,
    notes), <case>.input.npy and <case>.expected.npy (tf_keras's output;
    when Keras 3's output differs, also <case>.k3.expected.npy);
  * bad/ : intentionally broken or unsupported files for error tests, and
    bad/manifest.json describing them;
  * variants/ : valid files Keras does not write itself (a .keras whose
    zip members are deflated instead of stored).

Every saved file is reloaded with the library that wrote it and must
reproduce that library's prediction (max abs diff 0); files are also
cross-loaded (tf-written files by Keras 3, k3-written .h5 by tf_keras) and
the outcome is recorded under "cross_load" in <case>.json.

Both libraries live in one process (they do not share state: tf_keras
has its own name uids, clear_session and serialization registry).

Conventions are those of generate_core.py: clear_session() and
set_random_seed(0) before every model (names restart at `sequential`,
`lstm`, ...); weights rng.uniform(-0.6, 0.6) float32 in get_weights order with
rng = np.random.default_rng(zlib.crc32(case_name)); then the input from the
same rng.

The .keras zips embed the save time (metadata.json "date_saved", zip entry
times) so those files are not byte-identical between runs; the weights, the
configs, the JSON files and the .npy files are.
"""

import os
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"

import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import warnings  # noqa: E402
import zipfile  # noqa: E402
import zlib  # noqa: E402
from collections import namedtuple  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import h5py  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
import keras  # noqa: E402

tf.get_logger().setLevel("ERROR")
warnings.filterwarnings("ignore")
import absl.logging  # noqa: E402

absl.logging.set_verbosity(absl.logging.ERROR)

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "tests" / "fixtures" / "files"
BAD_DIR = OUT_DIR / "bad"
GENERATED_BY = "tools/keras_reference/generate_files.py"
VERSIONS = {
    "tensorflow": tf.__version__,
    "tf_keras": tf_keras.__version__,
    "keras": keras.__version__,
    "numpy": np.__version__,
    "h5py": h5py.__version__,
}
LIBS = {"tf": tf_keras, "k3": keras}
VERSION_KEY = {"tf": "tf_keras", "k3": "keras3"}


# --------------------------------------------------------------------------
# Building blocks. A case's `build(K, v)` gets the Keras module K
# (tf_keras or keras) and v = "tf" | "k3" and returns the Sequential model.
# Keras 2 idiom: input_shape= / batch_input_shape= / input_length= on the
# first layer. Keras 3 idiom: keras.Input(shape=... | batch_shape=...).
# --------------------------------------------------------------------------

def seq(K, v, shape, layers_fn, batch_size=None, dtype=None, tf_first=None,
        name=None):
    """Sequential model with input `shape` (without batch).

    layers_fn(L, first) -> list of layers; `first` are the kwargs to give the
    first layer (Keras 2 only; {} for Keras 3). `tf_first` overrides them
    (e.g. {"input_length": 7} for an Embedding)."""
    L = K.layers
    if v == "tf":
        if tf_first is not None:
            first = dict(tf_first)
        elif batch_size is not None:
            first = {"batch_input_shape": (batch_size,) + tuple(shape)}
        else:
            first = {"input_shape": tuple(shape)}
        return K.Sequential(layers_fn(L, first), name=name)
    if batch_size is not None:
        inp = K.Input(batch_shape=(batch_size,) + tuple(shape),
                      **({"dtype": dtype} if dtype else {}))
    else:
        inp = K.Input(shape=tuple(shape), **({"dtype": dtype} if dtype else {}))
    return K.Sequential([inp] + layers_fn(L, {}), name=name)


def floats(*shape):
    return lambda rng: rng.uniform(-1, 1, size=shape).astype(np.float32)


def padded_ids(vocab, timesteps, lengths):
    """One row per length; real tokens in [1, vocab) then 0-padding."""
    def make(rng):
        x = np.zeros((len(lengths), timesteps), np.int32)
        for b, n in enumerate(lengths):
            x[b, :n] = rng.integers(1, vocab, size=n)
        return x
    return make


def ids(vocab, *shape):
    return lambda rng: rng.integers(0, vocab, size=shape).astype(np.int32)


def padded_floats(timesteps, features, lengths, hole=None):
    """Float rows zero-padded after `lengths[b]` steps; `hole` = (row, t)
    zeroes one extra interior timestep (masked mid-sequence)."""
    def make(rng):
        x = rng.uniform(-1, 1, size=(len(lengths), timesteps, features))
        for b, n in enumerate(lengths):
            x[b, n:] = 0.0
        if hole is not None:
            x[hole[0], hole[1]] = 0.0
        return x.astype(np.float32)
    return make


Case = namedtuple("Case", "description build make_x notes", defaults=((),))


def _bidir_modes(rnn):
    """Four stacked Bidirectional(rnn) using the four merge modes."""
    def build(K, v):
        def layers(L, first):
            R = getattr(L, rnn)
            return [
                L.Bidirectional(R(3, return_sequences=True),
                                merge_mode="concat", **first),
                L.Bidirectional(R(2, return_sequences=True), merge_mode="sum"),
                L.Bidirectional(R(2, return_sequences=True), merge_mode="mul"),
                L.Bidirectional(R(2), merge_mode="ave"),
            ]
        return seq(K, v, (5, 3), layers)
    return build


CASES = {
    # -- SimpleRNN ----------------------------------------------------------
    "simple_rnn_options": Case(
        "SimpleRNN(4, activation='relu', use_bias=False, go_backwards=True, "
        "return_sequences=True) then SimpleRNN(3) (tanh, last output); "
        "input (5, 3)",
        lambda K, v: seq(K, v, (5, 3), lambda L, first: [
            L.SimpleRNN(4, activation="relu", use_bias=False,
                        go_backwards=True, return_sequences=True, **first),
            L.SimpleRNN(3)]),
        floats(3, 5, 3)),
    "simple_rnn_stateful": Case(
        "SimpleRNN(3, stateful=True, return_sequences=True) with a fixed batch "
        "of 2: batch_input_shape=(2, 4, 3) (Keras 3: Input(batch_shape=...)). "
        "`expected` is the first predict after loading (zero state); "
        "`second_predict` is a second predict on the same input (state "
        "carried over)",
        lambda K, v: seq(K, v, (4, 3), lambda L, first: [
            L.SimpleRNN(3, stateful=True, return_sequences=True, **first)],
            batch_size=2),
        floats(2, 4, 3)),
    # -- LSTM ---------------------------------------------------------------
    "lstm_stack": Case(
        "LSTM(4, return_sequences=True) then LSTM(3) (defaults: tanh, "
        "recurrent_activation sigmoid); input (5, 3)",
        lambda K, v: seq(K, v, (5, 3), lambda L, first: [
            L.LSTM(4, return_sequences=True, **first), L.LSTM(3)]),
        floats(3, 5, 3)),
    "lstm_hard_sigmoid": Case(
        "LSTM(4, recurrent_activation='hard_sigmoid', return_sequences=True, "
        "go_backwards=True); input (5, 3). hard_sigmoid differs: tf_keras "
        "clip(0.2*x + 0.5, 0, 1), Keras 3 relu6(x + 3) / 6 = clip(x/6 + 0.5, "
        "0, 1), so the expected outputs differ per version",
        lambda K, v: seq(K, v, (5, 3), lambda L, first: [
            L.LSTM(4, recurrent_activation="hard_sigmoid",
                   return_sequences=True, go_backwards=True, **first)]),
        lambda rng: (2.0 * rng.uniform(-1, 1, size=(3, 5, 3))).astype(
            np.float32),
        ("keras3 hard_sigmoid differs: tf_keras files mean "
         "clip(0.2*x+0.5, 0, 1), Keras 3 files mean relu6(x+3)/6; the "
         "config string is 'hard_sigmoid' in both",)),
    # -- GRU ----------------------------------------------------------------
    "gru_reset_after": Case(
        "GRU(4, return_sequences=True) (reset_after=True, bias (2, 12)) then "
        "GRU(3, reset_after=False) (bias (9,)); input (5, 3)",
        lambda K, v: seq(K, v, (5, 3), lambda L, first: [
            L.GRU(4, return_sequences=True, **first),
            L.GRU(3, reset_after=False)]),
        floats(3, 5, 3)),
    # -- Bidirectional ------------------------------------------------------
    "bidirectional_simple_rnn_modes": Case(
        "Bidirectional(SimpleRNN) x4 with merge modes concat, sum, mul, ave "
        "(last one returns the last output); input (5, 3)",
        _bidir_modes("SimpleRNN"), floats(3, 5, 3)),
    "bidirectional_lstm_modes": Case(
        "Bidirectional(LSTM) x4 with merge modes concat, sum, mul, ave; "
        "input (5, 3)",
        _bidir_modes("LSTM"), floats(3, 5, 3)),
    "bidirectional_gru_modes": Case(
        "Bidirectional(GRU) x4 with merge modes concat, sum, mul, ave; "
        "input (5, 3)",
        _bidir_modes("GRU"), floats(3, 5, 3)),
    "bidirectional_backward_layer": Case(
        "Bidirectional(LSTM(3, return_sequences=True), backward_layer="
        "LSTM(3, return_sequences=True, go_backwards=True, activation='relu'))"
        " (concat -> 6 features), then Bidirectional(GRU(2), backward_layer="
        "GRU(2, go_backwards=True, reset_after=False), merge_mode='sum') "
        "(forward bias (2, 6), backward bias (6,)); input (4, 3)",
        lambda K, v: seq(K, v, (4, 3), lambda L, first: [
            L.Bidirectional(
                L.LSTM(3, return_sequences=True),
                backward_layer=L.LSTM(3, return_sequences=True,
                                      go_backwards=True, activation="relu"),
                **first),
            L.Bidirectional(
                L.GRU(2),
                backward_layer=L.GRU(2, go_backwards=True, reset_after=False),
                merge_mode="sum")]),
        floats(3, 4, 3)),
    "bidirectional_backward_units": Case(
        "Bidirectional(SimpleRNN(3, return_sequences=True), backward_layer="
        "SimpleRNN(2, return_sequences=True, go_backwards=True)) (concat -> "
        "3 + 2 = 5 features), then TimeDistributed(Dense(2)); input (4, 3). "
        "Keras 3.15 gets the concat width wrong (3 * 2 = 6) when the "
        "backward layer has other units, so only tf_keras files exist",
        lambda K, v: seq(K, v, (4, 3), lambda L, first: [
            L.Bidirectional(
                L.SimpleRNN(3, return_sequences=True),
                backward_layer=L.SimpleRNN(2, return_sequences=True,
                                           go_backwards=True),
                **first),
            L.TimeDistributed(L.Dense(2))]),
        floats(3, 4, 3)),
    # -- Dense / Activation / Flatten / Dropout -----------------------------
    "dense_stack": Case(
        "On 3-D input (4, 5): Dense(3, use_bias=False), Activation('tanh'), "
        "Dropout(0.3), Flatten, Dense(4, activation='softmax')",
        lambda K, v: seq(K, v, (4, 5), lambda L, first: [
            L.Dense(3, use_bias=False, **first),
            L.Activation("tanh"),
            L.Dropout(0.3),
            L.Flatten(),
            L.Dense(4, activation="softmax")]),
        floats(3, 4, 5)),
    "dense_name_order": Case(
        "12 Dense(3) layers named dense, dense_1, ..., dense_11 (alphabetical "
        "order differs from layer order: 'dense_10' < 'dense_2'), the last "
        "with softmax; input (3,)",
        lambda K, v: seq(K, v, (3,), lambda L, first: [
            L.Dense(3, activation="tanh", **first)] + [
            L.Dense(3, activation="tanh") for _ in range(10)] + [
            L.Dense(3, activation="softmax")]),
        floats(3, 3)),
    # -- Embedding ----------------------------------------------------------
    "embedding_mask_zero": Case(
        "Embedding(10, 4, mask_zero=True) on int ids (6,) (tf_keras: "
        "input_length=6; Keras 3: Input(shape=(6,), dtype='int32')), then "
        "SimpleRNN(3, return_sequences=True) (masked steps repeat the "
        "previous output), then GRU(2)",
        lambda K, v: seq(K, v, (6,), lambda L, first: [
            L.Embedding(10, 4, mask_zero=True, **first),
            L.SimpleRNN(3, return_sequences=True),
            L.GRU(2)], dtype="int32", tf_first={"input_length": 6}),
        padded_ids(10, 6, [6, 4, 2, 1])),
    "embedding_no_mask": Case(
        "Embedding(8, 3) (mask_zero=False; id 0 is an ordinary token) with "
        "input_shape=(5,) (Keras 3: Input(shape=(5,)), float32 default "
        "dtype), then Flatten, Dense(2)",
        lambda K, v: seq(K, v, (5,), lambda L, first: [
            L.Embedding(8, 3, **first),
            L.Flatten(),
            L.Dense(2)]),
        ids(8, 3, 5)),
    # -- TimeDistributed / RepeatVector / Masking ---------------------------
    "repeat_time_distributed": Case(
        "On vector input (4,): Dense(3, activation='relu'), RepeatVector(3), "
        "SimpleRNN(3, return_sequences=True), "
        "TimeDistributed(Dense(2, activation='softmax'))",
        lambda K, v: seq(K, v, (4,), lambda L, first: [
            L.Dense(3, activation="relu", **first),
            L.RepeatVector(3),
            L.SimpleRNN(3, return_sequences=True),
            L.TimeDistributed(L.Dense(2, activation="softmax"))]),
        floats(3, 4)),
    "masking": Case(
        "Masking(mask_value=0.0) on (6, 3) with zero-padded rows (and one "
        "interior all-zero step), then LSTM(3, return_sequences=True), "
        "GRU(2, return_sequences=True), TimeDistributed(Dense(2))",
        lambda K, v: seq(K, v, (6, 3), lambda L, first: [
            L.Masking(mask_value=0.0, **first),
            L.LSTM(3, return_sequences=True),
            L.GRU(2, return_sequences=True),
            L.TimeDistributed(L.Dense(2))]),
        padded_floats(6, 3, [6, 4, 2], hole=(0, 2))),
    # -- course models ------------------------------------------------------
    "course_text_classifier": Case(
        "Course model: Embedding(20, 5, mask_zero=True) on ids (7,), "
        "Bidirectional(LSTM(4)), Dense(3, activation='softmax')",
        lambda K, v: seq(K, v, (7,), lambda L, first: [
            L.Embedding(20, 5, mask_zero=True, **first),
            L.Bidirectional(L.LSTM(4)),
            L.Dense(3, activation="softmax")],
            tf_first={"input_length": 7}),
        padded_ids(20, 7, [7, 5, 3, 1])),
    "course_sequence_tagger": Case(
        "Course model: Embedding(20, 5, mask_zero=True) on ids (7,), "
        "Bidirectional(GRU(4, return_sequences=True)), "
        "TimeDistributed(Dense(3, activation='softmax'))",
        lambda K, v: seq(K, v, (7,), lambda L, first: [
            L.Embedding(20, 5, mask_zero=True, **first),
            L.Bidirectional(L.GRU(4, return_sequences=True)),
            L.TimeDistributed(L.Dense(3, activation="softmax"))],
            tf_first={"input_length": 7}),
        padded_ids(20, 7, [7, 5, 3, 1])),
    "course_seq2seq": Case(
        "Course model: LSTM(4) on (5, 3), RepeatVector(4), "
        "LSTM(4, return_sequences=True), "
        "TimeDistributed(Dense(3, activation='softmax'))",
        lambda K, v: seq(K, v, (5, 3), lambda L, first: [
            L.LSTM(4, **first),
            L.RepeatVector(4),
            L.LSTM(4, return_sequences=True),
            L.TimeDistributed(L.Dense(3, activation="softmax"))]),
        floats(3, 5, 3)),
    # -- naming -------------------------------------------------------------
    "custom_names": Case(
        "Explicit layer names that differ from the class-based paths of the "
        ".keras weights file: Sequential(name='my_model') of "
        "SimpleRNN(4, return_sequences=True, name='zz_encoder'), "
        "Bidirectional(GRU(2, return_sequences=True, name='my_gru'), "
        "name='bi'), SimpleRNN(3, return_sequences=True, name='aa_decoder'), "
        "TimeDistributed(Dense(2, name='proj'), name='head'), "
        "Flatten(name='flat'), Dense(2, activation='softmax', "
        "name='dense_out'); input (4, 3)",
        lambda K, v: seq(K, v, (4, 3), lambda L, first: [
            L.SimpleRNN(4, return_sequences=True, name="zz_encoder", **first),
            L.Bidirectional(L.GRU(2, return_sequences=True, name="my_gru"),
                            name="bi"),
            L.SimpleRNN(3, return_sequences=True, name="aa_decoder"),
            L.TimeDistributed(L.Dense(2, name="proj"), name="head"),
            L.Flatten(name="flat"),
            L.Dense(2, activation="softmax", name="dense_out")],
            name="my_model"),
        floats(3, 4, 3),
        (".keras/.weights.h5 groups are named after the layer CLASS "
         "(layers/simple_rnn, layers/simple_rnn_1, layers/bidirectional, "
         "layers/time_distributed, layers/flatten, layers/dense), not after "
         "the layer names; legacy .h5 groups use the layer names",)),
    # -- notebook -----------------------------------------------------------
    "notebook_deep_bidirectional": Case(
        "Notebook cell 15: 4 x Bidirectional(SimpleRNN(8, "
        "return_sequences=True)), input (10, 4)",
        lambda K, v: seq(K, v, (10, 4), lambda L, first: [
            L.Bidirectional(L.SimpleRNN(8, return_sequences=True), **first)] + [
            L.Bidirectional(L.SimpleRNN(8, return_sequences=True))
            for _ in range(3)]),
        floats(2, 10, 4)),
}


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def fresh(K):
    K.backend.clear_session()
    K.utils.set_random_seed(0)


def case_rng(name):
    return np.random.default_rng(zlib.crc32(name.encode("utf-8")))


def f32_list(arr):
    return np.asarray(arr).astype(np.float32).astype(np.float64).ravel().tolist()


def tensor(arr):
    arr = np.asarray(arr)
    return {"shape": list(arr.shape), "data": f32_list(arr)}


def capture_summary(model):
    chunks = []
    model.summary(print_fn=lambda line, *a, **k: chunks.append(str(line)))
    return "\n".join(c.rstrip("\n") for c in chunks)


def predict(model, x):
    return np.asarray(model.predict(x, verbose=0, batch_size=len(x)))


def reset_states(model):
    """Zero the states of stateful RNNs (tf_keras: Model.reset_states;
    Keras 3: RNN.reset_state on each layer)."""
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            if hasattr(layer, "reset_state"):
                layer.reset_state()
            else:
                layer.reset_states()


def weight_names(model, v):
    if v == "tf":
        return [w.name for w in model.weights]
    return [w.path for w in model.weights]


def load(v, path):
    K = LIBS[v]
    fresh(K)
    return K.models.load_model(str(path), compile=False)


def short_error(exc):
    """`Type: first informative line` of an exception (ANSI codes removed;
    Keras 3's "Exception encountered when calling X.call()." header is
    followed by the real message)."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
             for line in str(exc).strip().split("\n")]
    lines = [line for line in lines if line]
    text = lines[0] if lines else ""
    if text.startswith("Exception encountered when calling") and len(lines) > 1:
        text = text + " " + lines[1]
    text = text.replace(str(ROOT) + "/", "")
    if len(text) > 400:
        text = text[:397] + "..."
    return f"{type(exc).__name__}: {text}"


def save_all(v, model, name):
    """Save `model` (built with library v) in every format of that library.
    Returns {filename: null | "why it failed"}."""
    results = {}
    if v == "tf":
        targets = [(f"{name}.tf.keras", lambda p: model.save(p)),
                   (f"{name}.tf.h5", lambda p: model.save(p))]
    else:
        targets = [(f"{name}.k3.keras", lambda p: model.save(p)),
                   (f"{name}.k3.h5", lambda p: model.save(p)),
                   (f"{name}.k3.weights.h5", lambda p: model.save_weights(p))]
    for fname, fn in targets:
        path = OUT_DIR / fname
        try:
            fn(str(path))
            results[fname] = None
        except Exception as exc:  # noqa: BLE001 - recorded in the JSON
            if path.exists():
                path.unlink()
            results[fname] = short_error(exc)
    return results


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

def build_version(v, case):
    K = LIBS[v]
    fresh(K)
    model = case.build(K, v)
    assert model.built, (v, "model not built")
    return model


def make_case(name, case):
    rng = case_rng(name)
    payload = {
        "case": name,
        "description": case.description,
        "generated_by": GENERATED_BY,
        "versions": VERSIONS,
    }
    models, skipped = {}, {}
    for v in ("tf", "k3"):
        try:
            models[v] = build_version(v, case)
        except Exception as exc:  # noqa: BLE001
            skipped[VERSION_KEY[v]] = "build failed: " + short_error(exc)

    # Weights: generated once, from the first version available, in
    # get_weights order; both versions must agree on the shapes.
    ref = models.get("tf") or models["k3"]
    weights = [rng.uniform(-0.6, 0.6, size=w.shape).astype(np.float32)
               for w in ref.get_weights()]
    for v, model in list(models.items()):
        shapes = [tuple(w.shape) for w in model.get_weights()]
        if shapes != [w.shape for w in weights]:
            # A version that builds other weight shapes cannot take the
            # case's weights: skip it, recording why (and what predict says).
            why = (f"builds weight shapes {shapes} instead of "
                   f"{[w.shape for w in weights]}; model.output_shape "
                   f"{model.output_shape}")
            try:
                predict(model, case.make_x(case_rng(name)))
            except Exception as exc:  # noqa: BLE001
                why += "; predict fails: " + short_error(exc)
            skipped[VERSION_KEY[v]] = why
            del models[v]
            continue
        model.set_weights(weights)
    x = case.make_x(rng)
    dtype = "int32" if np.issubdtype(x.dtype, np.integer) else "float32"
    x = x.astype(dtype)

    outputs, second, summaries, params, wnames, files = {}, {}, {}, {}, {}, {}
    stateful = name == "simple_rnn_stateful"
    for v, model in models.items():
        key = VERSION_KEY[v]
        if stateful:
            reset_states(model)
        outputs[key] = predict(model, x)
        if stateful:
            second[key] = predict(model, x)
            reset_states(model)
        summaries[key] = capture_summary(model)
        params[key] = int(model.count_params())
        wnames[key] = weight_names(model, v)
        files.update(save_all(v, model, name))

    # Reload every file with the library that wrote it.
    reload_check = {}
    for fname, err in files.items():
        if err is not None or fname.endswith(".weights.h5"):
            continue
        v = fname.split(".")[-2]
        model = load(v, OUT_DIR / fname)
        if stateful:
            reset_states(model)
        y = predict(model, x)
        diff = float(np.max(np.abs(y - outputs[VERSION_KEY[v]])))
        reload_check[fname] = diff
        assert diff == 0.0, (fname, diff)
    # weights.h5: rebuild fresh in Keras 3 and load_weights.
    wfile = f"{name}.k3.weights.h5"
    if files.get(wfile, "missing") is None:
        model = build_version("k3", case)
        model.load_weights(str(OUT_DIR / wfile))
        y = predict(model, x)
        diff = float(np.max(np.abs(y - outputs["keras3"])))
        reload_check[wfile] = diff
        assert diff == 0.0, (wfile, diff)

    # Cross-loading (informational).
    cross = {}
    for fname in sorted(files):
        if files[fname] is not None or fname.endswith(".weights.h5"):
            continue
        writer = fname.split(".")[-2]
        other = "k3" if writer == "tf" else "tf"
        label = f"{VERSION_KEY[other]} loads {fname}"
        try:
            model = load(other, OUT_DIR / fname)
            if stateful:
                reset_states(model)
            y = predict(model, x)
            want = outputs.get(VERSION_KEY[other])
            if want is None:
                cross[label] = "loaded"
            else:
                d = float(np.max(np.abs(y - want)))
                cross[label] = f"ok, max abs diff vs its own expected {d:.3g}"
        except Exception as exc:  # noqa: BLE001
            cross[label] = "fails: " + short_error(exc)

    notes = list(case.notes)
    if "tf_keras" in outputs and "keras3" in outputs:
        d = float(np.max(np.abs(outputs["tf_keras"] - outputs["keras3"])))
        payload_diff = d
        if d > 1e-5:
            notes.append(f"tf_keras and keras3 outputs differ (max abs diff "
                         f"{d:.3g}); each version's files must reproduce its "
                         f"own expected output")
    else:
        payload_diff = None

    payload.update({
        "input": {"shape": list(x.shape), "dtype": dtype,
                  "data": x.ravel().tolist() if dtype == "int32"
                  else f32_list(x)},
        "expected": {k: tensor(o) for k, o in outputs.items()},
        "max_abs_diff_tf_keras_vs_keras3": payload_diff,
        "params": params,
        "summary": summaries,
        "weight_names": wnames,
        "weights": [tensor(w) | {"name": n} for w, n in
                    zip(weights, wnames.get("tf_keras", wnames.get("keras3")))],
        "files": sorted(f for f, e in files.items() if e is None)
        + [f"{name}.input.npy", f"{name}.expected.npy"],
        "skipped": {**skipped, **{f: e for f, e in files.items() if e}},
        "reload_check_max_abs_diff": reload_check,
        "cross_load": cross,
        "notes": notes,
    })
    if stateful:
        payload["second_predict"] = {k: tensor(o) for k, o in second.items()}
        payload["notes"].append(
            "stateful: predict() does not reset states in either version; "
            "reset_states() was called before the recorded first predict")

    np.save(OUT_DIR / f"{name}.input.npy", x)
    main_out = outputs.get("tf_keras", outputs.get("keras3"))
    np.save(OUT_DIR / f"{name}.expected.npy", main_out.astype(np.float32))
    if payload_diff is not None and payload_diff > 1e-5:
        np.save(OUT_DIR / f"{name}.k3.expected.npy",
                outputs["keras3"].astype(np.float32))
        payload["files"].append(f"{name}.k3.expected.npy")
    payload["files"].append(f"{name}.json")
    with open(OUT_DIR / f"{name}.json", "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=1)
        fh.write("\n")
    return payload


# --------------------------------------------------------------------------
# Bad files
# --------------------------------------------------------------------------

def _rewrite_zip(src, dst, drop=(), replace=None):
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = replace.get(info.filename, zin.read(info.filename))
            zout.writestr(info, data)


def make_bad_files():
    BAD_DIR.mkdir(parents=True, exist_ok=True)
    manifest = {}

    def add(fname, description, expect, **extra):
        assert (BAD_DIR / fname).exists(), fname
        manifest[fname] = {"description": description, "expected_error": expect,
                           **extra}

    good_keras = OUT_DIR / "course_text_classifier.k3.keras"
    good_h5 = OUT_DIR / "course_text_classifier.tf.h5"

    data = good_keras.read_bytes()
    (BAD_DIR / "truncated.keras").write_bytes(data[: len(data) // 2])
    add("truncated.keras",
        f"first half ({len(data) // 2} of {len(data)} bytes) of "
        "course_text_classifier.k3.keras: the zip central directory is gone",
        "not a valid zip / corrupt archive")

    _rewrite_zip(good_keras, BAD_DIR / "missing_weights.keras",
                 drop=("model.weights.h5",))
    add("missing_weights.keras",
        "course_text_classifier.k3.keras without the model.weights.h5 member "
        "(config.json and metadata.json intact)",
        "missing zip member model.weights.h5")

    _rewrite_zip(good_keras, BAD_DIR / "missing_config.keras",
                 drop=("config.json",))
    add("missing_config.keras",
        "course_text_classifier.k3.keras without the config.json member",
        "missing zip member config.json")

    _rewrite_zip(good_keras, BAD_DIR / "config_not_json.keras",
                 replace={"config.json": b"this is {not json\n"})
    add("config_not_json.keras",
        "course_text_classifier.k3.keras whose config.json is the text "
        "'this is {not json'",
        "config.json is not valid JSON")

    data = good_h5.read_bytes()
    (BAD_DIR / "truncated.h5").write_bytes(data[: len(data) // 2])
    add("truncated.h5",
        f"first half ({len(data) // 2} of {len(data)} bytes) of "
        "course_text_classifier.tf.h5 (the HDF5 superblock is intact; "
        "the end-of-file address points past the end)",
        "truncated / corrupt HDF5 file")

    (BAD_DIR / "text_renamed.h5").write_text(
        "This is a plain text file, not HDF5.\n", encoding="utf-8")
    add("text_renamed.h5", "a plain text file with a .h5 extension",
        "not an HDF5 file (bad signature)")

    # Functional models with a branch / two inputs.
    for v in ("k3", "tf"):
        K = LIBS[v]
        fresh(K)
        L = K.layers
        a = K.Input(shape=(5, 3))
        b = K.Input(shape=(5, 3))
        h = L.Concatenate()([L.SimpleRNN(2)(a), L.SimpleRNN(2)(b)])
        model = K.Model([a, b], L.Dense(1)(h))
        model.save(str(BAD_DIR / f"functional_two_inputs.{v}.keras"))
        add(f"functional_two_inputs.{v}.keras",
            f"{VERSION_KEY[v]} Functional model (class_name 'Functional' in "
            "config.json): two Input(shape=(5,3)) -> SimpleRNN(2) each -> "
            "Concatenate -> Dense(1)",
            "load_model: not a Sequential model (Functional); load_any loads it")
    fresh(keras)
    a = keras.Input(shape=(5, 3))
    h = keras.layers.SimpleRNN(3, return_sequences=True)(a)
    h = keras.layers.Add()([h, keras.layers.Dense(3)(a)])
    model = keras.Model(a, h)
    model.save(str(BAD_DIR / "functional_branch.k3.keras"))
    add("functional_branch.k3.keras",
        "Keras 3 Functional model with one input and a branch: "
        "Add()([SimpleRNN(3, return_sequences=True)(x), Dense(3)(x)])",
        "load_model: not a Sequential model (Functional); load_any loads it")

    # Custom activation registered with register_keras_serializable.
    for v in ("k3", "tf"):
        K = LIBS[v]
        fresh(K)

        @K.saving.register_keras_serializable(package="seqnn_fixtures",
                                              name="scaled_tanh")
        def scaled_tanh(x):
            return 1.7159 * tf.math.tanh(2.0 / 3.0 * x)

        model = seq(K, v, (4, 3), lambda L, first: [
            L.SimpleRNN(3, activation=scaled_tanh, **first)])
        model.save(str(BAD_DIR / f"custom_activation.{v}.keras"))
        add(f"custom_activation.{v}.keras",
            f"{VERSION_KEY[v]} Sequential([SimpleRNN(3, activation="
            "scaled_tanh)]) on (4, 3); scaled_tanh is a Python function "
            "registered with register_keras_serializable(package="
            "'seqnn_fixtures', name='scaled_tanh')",
            "unknown activation 'seqnn_fixtures>scaled_tanh'")

    # Layer class seqnn lacks.
    for v in ("k3", "tf"):
        K = LIBS[v]
        fresh(K)
        model = seq(K, v, (6, 3), lambda L, first: [
            L.Conv1D(4, 3, **first), L.SimpleRNN(2)])
        for ext in ("keras", "h5"):
            fname = f"conv1d.{v}.{ext}"
            model.save(str(BAD_DIR / fname))
            add(fname,
                f"{VERSION_KEY[v]} Sequential([Conv1D(4, 3), SimpleRNN(2)]) "
                "on (6, 3) (model.save as ." + ext + ")",
                "none any more: written when seqnn had no Conv1D, it loads")

    # Weights of a different architecture.
    fresh(keras)
    model = seq(keras, "k3", (7,), lambda L, first: [
        L.Embedding(20, 5, mask_zero=True),
        L.Bidirectional(L.GRU(4)),
        L.Dense(3, activation="softmax")])
    model.save_weights(str(BAD_DIR / "wrong_architecture.weights.h5"))
    add("wrong_architecture.weights.h5",
        "Keras 3 save_weights of Embedding(20,5,mask_zero) -> "
        "Bidirectional(GRU(4)) -> Dense(3): pair it with "
        "course_text_classifier.k3.keras (same layer names `embedding`, "
        "`bidirectional`, `dense`, but Bidirectional(LSTM(4)) there): the "
        "kernel shapes differ ((5, 12) vs (5, 16))",
        "weight shape mismatch",
        pair_with="course_text_classifier.k3.keras")

    fresh(keras)
    model = keras.Sequential([
        keras.Input(shape=(4, 3), dtype="float64"),
        keras.layers.SimpleRNN(3, dtype="float64"),
        keras.layers.Dense(2, dtype="float64")])
    model.save(str(BAD_DIR / "float64.k3.keras"))
    add("float64.k3.keras",
        "Keras 3 Sequential([Input((4,3), dtype='float64'), SimpleRNN(3, "
        "dtype='float64'), Dense(2, dtype='float64')]): weights stored as "
        "float64 ('<f8') datasets",
        "unsupported weight dtype float64")

    # What real Keras 3 says about each file (informational). The custom
    # activation is registered in this process, so it loads here; elsewhere
    # Keras 3 needs the function registered first.
    for fname, entry in manifest.items():
        path = BAD_DIR / fname
        try:
            fresh(keras)
            if fname.endswith(".weights.h5"):
                model = keras.models.load_model(
                    str(OUT_DIR / entry["pair_with"]), compile=False)
                model.load_weights(str(path))
            else:
                keras.models.load_model(str(path), compile=False)
            entry["keras3_load"] = "loads"
        except Exception as exc:  # noqa: BLE001
            entry["keras3_load"] = short_error(exc)

    with open(BAD_DIR / "manifest.json", "w", encoding="utf-8") as fh:
        json.dump({"generated_by": GENERATED_BY, "versions": VERSIONS,
                   "files": manifest}, fh, indent=1)
        fh.write("\n")
    return manifest


# --------------------------------------------------------------------------
# Valid variants
# --------------------------------------------------------------------------

def make_variants():
    """variants/: valid files Keras itself does not write but loads."""
    var_dir = OUT_DIR / "variants"
    var_dir.mkdir(parents=True, exist_ok=True)
    src = OUT_DIR / "course_text_classifier.k3.keras"
    dst = var_dir / "course_text_classifier.k3.deflated.keras"
    with zipfile.ZipFile(src) as zin, \
            zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            out = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            out.compress_type = zipfile.ZIP_DEFLATED
            out.external_attr = info.external_attr
            zout.writestr(out, data)
    with zipfile.ZipFile(dst) as z:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED
                   for i in z.infolist())
    # Must still load and predict like the original.
    with open(OUT_DIR / "course_text_classifier.json", encoding="utf-8") as fh:
        case = json.load(fh)
    x = np.asarray(case["input"]["data"], case["input"]["dtype"]).reshape(
        case["input"]["shape"])
    model = load("k3", dst)
    want = np.asarray(case["expected"]["keras3"]["data"]).reshape(
        case["expected"]["keras3"]["shape"])
    assert np.max(np.abs(predict(model, x) - want)) == 0.0

    # tf_keras's legacy weights-only HDF5 (save_weights to a name not ending in
    # .weights.h5): layer_names and weight_names at the root, no model_config.
    legacy = var_dir / "course_text_classifier.tf.save_weights.h5"
    tf_model = load("tf", OUT_DIR / "course_text_classifier.tf.h5")
    tf_model.save_weights(str(legacy))
    tf_want = np.asarray(case["expected"]["tf_keras"]["data"]).reshape(
        case["expected"]["tf_keras"]["shape"])
    assert np.max(np.abs(predict(tf_model, x) - tf_want)) == 0.0
    return [dst, legacy]


# --------------------------------------------------------------------------
# Dumps (for the README): --dump FILE...
# --------------------------------------------------------------------------

def dump_h5(fileobj):
    lines = []
    with h5py.File(fileobj, "r") as f:
        def attrs(o):
            out = []
            for k, val in o.attrs.items():
                if isinstance(val, bytes):
                    val = val.decode()
                if isinstance(val, np.ndarray):
                    val = [x.decode() if isinstance(x, bytes) else x
                           for x in val.tolist()]
                s = repr(val)
                if isinstance(val, str) and len(s) > 80:  # model_config
                    s = s[:77] + "...'"
                out.append(f"{k}={s}")
            return ("  {" + ", ".join(out) + "}") if out else ""

        lines.append("/" + attrs(f))

        def visit(n, o):
            if isinstance(o, h5py.Dataset):
                lines.append(f"{n}  dataset {o.shape} {o.dtype.str}{attrs(o)}")
            else:
                lines.append(f"{n}/{attrs(o)}")
        f.visititems(visit)
    return "\n".join(lines)


def dump(path):
    path = Path(path)
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as z:
            print(f"== {path.name}: zip members")
            for i in z.infolist():
                print(f"  {i.filename:20s} compress_type={i.compress_type} "
                      f"size={i.file_size} date_time={i.date_time}")
            for m in ("metadata.json", "config.json"):
                if m in z.namelist():
                    print(f"== {m}")
                    print(json.dumps(json.loads(z.read(m)), indent=1))
            if "model.weights.h5" in z.namelist():
                print("== model.weights.h5")
                print(dump_h5(io.BytesIO(z.read("model.weights.h5"))))
    else:
        print(f"== {path.name}")
        print(dump_h5(str(path)))
        with h5py.File(str(path), "r") as f:
            for k in ("model_config", "training_config"):
                if k in f.attrs:
                    val = f.attrs[k]
                    val = val.decode() if isinstance(val, bytes) else val
                    print(f"== attr {k}")
                    print(json.dumps(json.loads(val), indent=1))


# --------------------------------------------------------------------------

def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--dump":
        for p in sys.argv[2:]:
            dump(p)
        return
    if sys.argv[1:] == ["--variants"]:
        print(f"variants/: {len(make_variants())} files")
        return
    only = sys.argv[1:]
    bad_only = only == ["--bad"]
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    if not only:
        for p in OUT_DIR.iterdir():
            if p.name == "README.md":
                continue
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
    for name, case in CASES.items():
        if bad_only or (only and name not in only):
            continue
        payload = make_case(name, case)
        print(f"{name:32s} params={payload['params']} "
              f"tf-vs-k3={payload['max_abs_diff_tf_keras_vs_keras3']} "
              f"skipped={list(payload['skipped'])}")
    if not only or bad_only:
        if bad_only and BAD_DIR.exists():
            shutil.rmtree(BAD_DIR)
        manifest = make_bad_files()
        print(f"bad/: {len(manifest)} files")
        variants = make_variants()
        print(f"variants/: {len(variants)} files")
    total = sum(p.stat().st_size for p in OUT_DIR.rglob("*") if p.is_file())
    print(f"total size of {OUT_DIR.relative_to(ROOT)}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
