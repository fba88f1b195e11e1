#!/usr/bin/env python3
"""Generate HOSTILE Keras model files: real files with absurd sizes in the config.

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_hostile.py

It deletes and rewrites everything in tests/fixtures/hostile/ (a few
minutes): for every case of CASES, two files,

    <case>.k3.keras   Keras 3.15 (TensorFlow backend) model.save("x.keras"),
                      then config.json replaced by the patched config (the
                      other zip members byte-identical, all members STORED,
                      same order, same ZipInfo: names, dates, attributes)
    <case>.tf.h5      tf_keras 2.21 model.save("x.h5") (legacy HDF5), then the
                      root attribute `model_config` rewritten with the patched
                      config, with the attribute type Keras used (a scalar
                      variable-length ASCII string)

plus manifest.json and README.md (both generated from CASES). Other modes,
which keep the other cases' files and manifest entries as they are (so that
their .keras zips, which embed Keras's save time, stay byte-identical):

    generate_hostile.py --missing   make only the cases whose files or
                                    manifest entries are missing
    generate_hostile.py CASE...     remake only those cases

and rewrite manifest.json (kept entries completed with the fields that
follow from CASES and from the file's config, after checking that the file
holds the case's value at every patched path) and README.md.

Each file is a copy of a real, small Keras-written model (Sequential, or
Functional: keras.Model(inputs, outputs)) in which only size fields of the
model config were changed (JSON integers, or for a list-valued field such as
kernel_size, strides, pool_size or target_shape a list of JSON integers of
the same length, as Keras writes them; lstm_units_float is the one float),
so the weights stored in the file no longer fit the config, or the config
asks for absurd sizes. A loader must refuse them with an error (never a
crash, an abort or a huge allocation); for the weightless sizes (expect
"load_ok_predict_error": RepeatVector n, input timesteps, MaxPooling1D
pool_size, UpSampling1D size) loading may succeed and predicting must be
refused / must not match.

Conventions are those of generate_files.py: clear_session() and
set_random_seed(0) before every model; the same architecture built with
tf_keras (Keras 2 idiom: input_shape= / input_length= on the first layer) and
Keras 3 (keras.Input(shape=...) first); weights rng.uniform(-0.6, 0.6) float32
in get_weights order with rng = np.random.default_rng(zlib.crc32(case)), then
the input from the same rng (BatchNormalization's moving variance then made
positive, |w| + 0.5, so that the real model predicts numbers, not NaN).

Checks made for every file:
  * the ORIGINAL (unpatched) file reloads in the library that wrote it and
    predicts exactly what the model predicted before saving;
  * the original config survives json.loads/json.dumps byte for byte (so the
    patched config differs from Keras's text only in the patched numbers);
  * the patched file is then tried with load_model of the library that wrote
    it, in a child process (RLIMIT_AS 8 GiB, 10 min timeout), unless the
    patched sizes would make Keras allocate more than 1 GiB of weights
    ("not tried (would allocate ~N bytes ...)"). The outcome is recorded
    under "keras_load" in manifest.json (and "keras_predict" for the two
    weightless cases). The generator itself never builds a patched model.

Output is deterministic apart from what Keras itself varies: metadata.json
"date_saved" and the zip entry time of model.weights.h5, and the Keras 3
config.json "shared_object_id" values (Python id()s, left as Keras wrote
them).
"""

import os
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"

import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
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
OUT_DIR = ROOT / "tests" / "fixtures" / "hostile"
GENERATED_BY = "tools/keras_reference/generate_hostile.py"
REGENERATE = ".venv-ref/bin/python tools/keras_reference/generate_hostile.py"
VERSIONS = {
    "tensorflow": tf.__version__,
    "tf_keras": tf_keras.__version__,
    "keras": keras.__version__,
    "numpy": np.__version__,
    "h5py": h5py.__version__,
    "python": platform.python_version(),
}
LIBS = {"tf": tf_keras, "k3": keras}
FORMAT = {"k3": "keras3 .keras", "tf": "tf_keras .h5"}
LIB_NAME = {"k3": "Keras 3", "tf": "tf_keras"}

# Patched files are only handed to Keras when the patched model's weights
# would take at most this many bytes; the child process gets RLIMIT_AS.
TRY_LIMIT_BYTES = 1 << 30
CHILD_RLIMIT_AS = 8 << 30
CHILD_TIMEOUT_S = 600


# --------------------------------------------------------------------------
# Building blocks (as in generate_files.py)
# --------------------------------------------------------------------------

def seq(K, v, shape, layers_fn, dtype=None, tf_first=None):
    """Sequential model with input `shape` (without batch).

    layers_fn(L, first) -> list of layers; `first` are the kwargs to give the
    first layer (Keras 2 only; {} for Keras 3). `tf_first` overrides them
    (e.g. {"input_length": 5} for an Embedding)."""
    L = K.layers
    if v == "tf":
        first = dict(tf_first) if tf_first is not None else {
            "input_shape": tuple(shape)}
        return K.Sequential(layers_fn(L, first))
    inp = K.Input(shape=tuple(shape), **({"dtype": dtype} if dtype else {}))
    return K.Sequential([inp] + layers_fn(L, {}))


def func(K, shape, body):
    """Functional model (keras.Model(inputs, outputs)) of one input of
    `shape` (without batch): body(L, x) -> the output tensor. The same idiom
    in both libraries."""
    inp = K.Input(shape=tuple(shape))
    return K.Model(inp, body(K.layers, inp))


def floats(*shape):
    return lambda rng: rng.uniform(-1, 1, size=shape).astype(np.float32)


def ids(vocab, *shape):
    return lambda rng: rng.integers(0, vocab, size=shape).astype(np.int32)


def fresh(K):
    K.backend.clear_session()
    K.utils.set_random_seed(0)


def case_rng(name):
    return np.random.default_rng(zlib.crc32(name.encode("utf-8")))


def predict(model, x):
    return np.asarray(model.predict(x, verbose=0, batch_size=len(x)))


def short_error(exc):
    """`Type: informative line(s)` of an exception (as generate_files.py, and
    unwrapping what Keras wraps: Keras 3's nested "could not be deserialized
    ... Exception encountered: <reason>", "A total of N objects could not be
    loaded. Example error message for object <...>:" + reason, and
    tf.function's "in user code: <traceback> <Type>: <reason>")."""
    msg = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    if "\nException encountered: " in msg:
        head = msg.split("\n")[0].split(" Please ensure")[0]
        msg = (head + " Innermost: "
               + msg.rsplit("\nException encountered: ", 1)[1])
    lines = [line.strip() for line in msg.strip().split("\n")]
    lines = [line for line in lines if line]
    text = lines[0] if lines else ""
    if text.startswith("in user code:"):
        errs = [line for line in lines if re.match(r"\w+(Error|Exception): ",
                                                   line)]
        if errs:
            return errs[-1][:400]
    if (text.startswith("Exception encountered when calling")
            or text.endswith(":")) and len(lines) > 1:
        text = text + " " + lines[1].split(" Target variable:")[0]
    text = text.replace(str(ROOT) + "/", "")
    text = re.sub(r"/tmp/[^ '\"]*/", "", text)
    if len(text) > 400:
        text = text[:397] + "..."
    return f"{type(exc).__name__}: {text}"


# --------------------------------------------------------------------------
# Models: small real sizes (inputs (3, 2), 3-4 units)
# --------------------------------------------------------------------------

def m_rnn(cls, **kw):
    return lambda K, v: seq(K, v, (3, 2), lambda L, first: [
        getattr(L, cls)(4, **kw, **first)])


def m_bidir_lstm(K, v):
    return seq(K, v, (3, 2), lambda L, first: [
        L.Bidirectional(L.LSTM(4), **first)])


def m_lstm_dense(K, v):
    return seq(K, v, (3, 2), lambda L, first: [L.LSTM(4, **first), L.Dense(3)])


def m_embedding_lstm(K, v):
    return seq(K, v, (5,), lambda L, first: [
        L.Embedding(20, 4, **first), L.LSTM(3)],
        dtype="int32", tf_first={"input_length": 5})


def m_lstm_td_dense(K, v):
    return seq(K, v, (3, 2), lambda L, first: [
        L.LSTM(4, return_sequences=True, **first),
        L.TimeDistributed(L.Dense(3))])


def m_lstm_repeat_lstm(K, v):
    return seq(K, v, (3, 2), lambda L, first: [
        L.LSTM(4, **first), L.RepeatVector(3), L.LSTM(2)])


def m_dense(K, v):
    return seq(K, v, (2,), lambda L, first: [L.Dense(3, **first)])


def m_conv1d(K, v):
    return seq(K, v, (5, 2), lambda L, first: [L.Conv1D(3, 3, **first)])


def m_td_conv2d(K, v):
    return seq(K, v, (2, 4, 4, 1), lambda L, first: [
        L.TimeDistributed(L.Conv2D(2, 2), **first)])


def m_max_pooling1d_lstm(K, v):
    return seq(K, v, (6, 2), lambda L, first: [
        L.MaxPooling1D(2, **first), L.LSTM(3)])


def m_up_sampling1d_lstm(K, v):
    return seq(K, v, (3, 2), lambda L, first: [
        L.UpSampling1D(2, **first), L.LSTM(3)])


def m_lstm_up_sampling1d(K, v):
    return seq(K, v, (3, 2), lambda L, first: [
        L.LSTM(2, return_sequences=True, **first), L.UpSampling1D(2)])


def m_batch_norm(K, v):
    return seq(K, v, (3, 2), lambda L, first: [
        L.BatchNormalization(**first)])


def m_layer_norm(K, v):
    return seq(K, v, (3, 2), lambda L, first: [
        L.LayerNormalization(**first)])


def m_reshape_lstm(K, v):
    return seq(K, v, (3, 2), lambda L, first: [
        L.Reshape((2, 3), **first), L.LSTM(3)])


def m_conv_lstm2d(K, v):
    return seq(K, v, (2, 4, 4, 1), lambda L, first: [
        L.ConvLSTM2D(2, 2, **first)])


def m_f_lstm_mha(K, v):
    def body(L, x):
        x = L.LSTM(4, return_sequences=True)(x)
        x = L.MultiHeadAttention(num_heads=2, key_dim=2)(x, x)
        x = L.GlobalAveragePooling1D()(x)
        return L.Dense(3)(x)
    return func(K, (3, 2), body)


def m_f_conv1d(K, v):
    def body(L, x):
        x = L.Conv1D(3, 3)(x)
        x = L.GlobalAveragePooling1D()(x)
        return L.Dense(2)(x)
    return func(K, (5, 2), body)


# Float32 weight counts of the PATCHED models (what Keras would allocate to
# build them), as functions of the patched value.
def n_simple_rnn(u, i=2):
    return u * i + u * u + u


def n_lstm(u, i=2):
    return 4 * u * (i + u + 1)


def n_gru(u, i=2):  # reset_after=True (the default in both versions)
    return 3 * u * (i + u) + 2 * 3 * u


def n_dense(u, i):
    return u * i + u


def n_conv(filters, kernel, channels):
    """Conv1D/Conv2D: kernel (*kernel, channels, filters) and bias."""
    return int(np.prod(kernel, dtype=object)) * channels * filters + filters


def n_conv_lstm(filters, kernel, channels):
    k = int(np.prod(kernel, dtype=object))
    return k * channels * 4 * filters + k * filters * 4 * filters + 4 * filters


def n_mha(heads, key_dim, value_dim, features):
    """query, key and value kernels (features, heads, dim) with biases, the
    output kernel (heads, value_dim, features) with bias."""
    qk = 2 * (features * heads * key_dim + heads * key_dim)
    val = features * heads * value_dim + heads * value_dim
    return qk + val + heads * value_dim * features + features


# The rest of m_f_lstm_mha: LSTM(4) on 2 features, Dense(3) on 4.
N_MHA_REST = n_lstm(4) + n_dense(3, 4)


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------
#
# target: ("layer", class_name)            patch config[field] of the first
#                                          top-level layer of that class
#                                          (Sequential or Functional
#                                          config.layers); a list value
#                                          replaces Keras's list
#         ("inner", wrapper_class_name)    patch config[field] of the wrapped
#                                          layer(s): "layer" and, where
#                                          present, "backward_layer"
#         ("input", axis)                  patch axis `axis` of every input
#                                          shape (see patch_input_shape)
# weights(v): float32 weights Keras would build for the patched model, or
# None (Keras validates the value before allocating).
# predict_floats(v): floats of the activations of predicting the case's real
# x with the patched model (only relevant for files that load).
# fix_weights(weights): makes the drawn weights those of a working model.

HCase = namedtuple(
    "HCase",
    "model build shape make_x target field value expect note weights "
    "predict_floats fix_weights",
    defaults=(lambda v: 0, None))


def positive_variance(weights):
    """BatchNormalization's [gamma, beta, moving_mean, moving_variance]: the
    variance drawn like the others, then made positive (|w| + 0.5), so that
    the real model predicts numbers, not NaN."""
    *rest, var = weights
    return rest + [(np.abs(var) + 0.5).astype(np.float32)]


U64_MAX = 18446744073709551615
B = 2  # rows of the real input

CASES = {
    "simple_rnn_units_2e5": HCase(
        "SimpleRNN(4)", m_rnn("SimpleRNN"), (3, 2), floats(B, 3, 2),
        ("layer", "SimpleRNN"), "units", 200000, "error",
        "recurrent kernel would be 200000 x 200000 float32 (160 GB); the "
        "stored kernels are (2, 4) and (4, 4)",
        lambda v: n_simple_rnn(v)),
    "lstm_units_2pow40": HCase(
        "LSTM(4)", m_rnn("LSTM"), (3, 2), floats(B, 3, 2),
        ("layer", "LSTM"), "units", 2 ** 40, "error",
        "units = 2**40: 4*units*units overflows u64 (and usize on 64-bit)",
        lambda v: n_lstm(v)),
    "lstm_units_u64max": HCase(
        "LSTM(4)", m_rnn("LSTM"), (3, 2), floats(B, 3, 2),
        ("layer", "LSTM"), "units", U64_MAX, "error",
        "units = u64::MAX (18446744073709551615): fits a u64, any arithmetic "
        "on it overflows; does not fit i64",
        lambda v: n_lstm(v)),
    "lstm_units_negative": HCase(
        "LSTM(4)", m_rnn("LSTM"), (3, 2), floats(B, 3, 2),
        ("layer", "LSTM"), "units", -5, "error",
        "negative units (JSON integer -5)",
        lambda v: None),
    "lstm_units_float": HCase(
        "LSTM(4)", m_rnn("LSTM"), (3, 2), floats(B, 3, 2),
        ("layer", "LSTM"), "units", 1e300, "error",
        "units is the JSON float 1e+300 (not an integer, far beyond u64)",
        lambda v: n_lstm(int(v))),
    "gru_units_1e6": HCase(
        "GRU(4)", m_rnn("GRU"), (3, 2), floats(B, 3, 2),
        ("layer", "GRU"), "units", 10 ** 6, "error",
        "recurrent kernel would be 1e6 x 3e6 float32 (12 TB)",
        lambda v: n_gru(v)),
    "bidirectional_units_1e6": HCase(
        "Bidirectional(LSTM(4))", m_bidir_lstm, (3, 2), floats(B, 3, 2),
        ("inner", "Bidirectional"), "units", 10 ** 6, "error",
        "inner LSTM units patched under config.layer (and, in Keras 3, under "
        "config.backward_layer too; tf_keras writes no backward_layer when "
        "it is the default copy)",
        lambda v: 2 * n_lstm(v)),
    "dense_units_1e9": HCase(
        "LSTM(4) -> Dense(3)", m_lstm_dense, (3, 2), floats(B, 3, 2),
        ("layer", "Dense"), "units", 10 ** 9, "error",
        "Dense kernel would be 4 x 1e9 float32 (16 GB)",
        lambda v: n_lstm(4) + n_dense(v, 4)),
    "embedding_input_dim_1e11": HCase(
        "Embedding(20, 4) -> LSTM(3)", m_embedding_lstm, (5,),
        ids(20, B, 5), ("layer", "Embedding"), "input_dim", 10 ** 11, "error",
        "embedding table would be 1e11 x 4 float32 (1.6 TB); stored (20, 4)",
        lambda v: v * 4 + n_lstm(3, 4)),
    "embedding_output_dim_1e11": HCase(
        "Embedding(20, 4) -> LSTM(3)", m_embedding_lstm, (5,),
        ids(20, B, 5), ("layer", "Embedding"), "output_dim", 10 ** 11,
        "error",
        "embedding table would be 20 x 1e11 and the next LSTM kernel "
        "1e11 x 12 float32; stored (20, 4) and (4, 12)",
        lambda v: 20 * v + n_lstm(3, v)),
    "time_distributed_units_1e9": HCase(
        "LSTM(4, return_sequences=True) -> TimeDistributed(Dense(3))",
        m_lstm_td_dense, (3, 2), floats(B, 3, 2),
        ("inner", "TimeDistributed"), "units", 10 ** 9, "error",
        "inner Dense units patched under config.layer.config.units",
        lambda v: n_lstm(4) + n_dense(v, 4)),
    "repeat_vector_1e12": HCase(
        "LSTM(4) -> RepeatVector(3) -> LSTM(2)", m_lstm_repeat_lstm, (3, 2),
        floats(B, 3, 2), ("layer", "RepeatVector"), "n", 10 ** 12,
        "load_ok_predict_error",
        "weightless size: the stored weights still fit, so loading may "
        "succeed; predicting must be refused (the RepeatVector output alone "
        "would be batch x 1e12 x 4 float32). Only `n` is patched: in Keras 3 "
        "the next LSTM's build_config still says input_shape [null, 3, 4]",
        lambda v: n_lstm(4) + n_lstm(2, 4),
        lambda v: B * v * 4 * 2),
    "input_features_1e7": HCase(
        "LSTM(4)", m_rnn("LSTM"), (3, 2), floats(B, 3, 2),
        ("input", 2), "input feature dim", 10 ** 7, "error",
        "input shape (None, 3, 1e7) everywhere it appears: LSTM kernel would "
        "be 1e7 x 16 float32 (640 MB); stored (2, 16)",
        lambda v: n_lstm(4, v)),
    "input_timesteps_1e12": HCase(
        "LSTM(4)", m_rnn("LSTM"), (3, 2), floats(B, 3, 2),
        ("input", 1), "input timesteps dim", 10 ** 12,
        "load_ok_predict_error",
        "weightless dimension: input shape (None, 1e12, 2) everywhere it "
        "appears; the weights still fit, so loading may succeed; predicting "
        "the real (2, 3, 2) input does not match the declared shape",
        lambda v: n_lstm(4)),
    "input_dims_2pow63": HCase(
        "Dense(3)", m_dense, (2,), floats(B, 2),
        ("input", 1), "input feature dim", 2 ** 63, "error",
        "input shape (None, 2**63) everywhere it appears: 2**63 = "
        "9223372036854775808 is i64::MAX + 1 (fits u64, not i64); Dense "
        "kernel would be 2**63 x 3",
        lambda v: n_dense(3, v)),
    "dense_units_zero": HCase(
        "Dense(3)", m_dense, (2,), floats(B, 2),
        ("layer", "Dense"), "units", 0, "error",
        "zero units: the stored kernel is (2, 3) and bias (3,)",
        lambda v: n_dense(v, 2)),
    # ---- convolutions, pooling, normalization, reshaping, attention ----
    "conv1d_filters_2pow40": HCase(
        "Conv1D(3, 3)", m_conv1d, (5, 2), floats(B, 5, 2),
        ("layer", "Conv1D"), "filters", 2 ** 40, "error",
        "kernel would be 3 x 2 x 2**40 float32 (26 TB); stored (3, 2, 3)",
        lambda v: n_conv(v, [3], 2)),
    "conv1d_kernel_size_1e12": HCase(
        "Conv1D(3, 3)", m_conv1d, (5, 2), floats(B, 5, 2),
        ("layer", "Conv1D"), "kernel_size", [10 ** 12], "error",
        "kernel_size is a list in both configs ([3] -> [1000000000000]): the "
        "kernel would be 1e12 x 2 x 3 float32, and the window is longer than "
        "the 5 input steps",
        lambda v: n_conv(3, v, 2)),
    "conv1d_dilation_rate_2pow62": HCase(
        "Conv1D(3, 3)", m_conv1d, (5, 2), floats(B, 5, 2),
        ("layer", "Conv1D"), "dilation_rate", [2 ** 62], "error",
        "weightless size: the stored kernel still fits, but the dilated "
        "window spans 2**62 * (3 - 1) + 1 = 2**63 + 1 input steps (past "
        "i64::MAX) on an input of 5 steps ('valid' padding)",
        lambda v: n_conv(3, [3], 2)),
    "conv1d_strides_zero": HCase(
        "Conv1D(3, 3)", m_conv1d, (5, 2), floats(B, 5, 2),
        ("layer", "Conv1D"), "strides", [0], "error",
        "zero stride ([1] -> [0]): the output length divides by it; the "
        "stored kernel still fits",
        lambda v: n_conv(3, [3], 2)),
    "time_distributed_conv2d_filters_1e9": HCase(
        "TimeDistributed(Conv2D(2, 2))", m_td_conv2d, (2, 4, 4, 1),
        floats(B, 2, 4, 4, 1), ("inner", "TimeDistributed"), "filters",
        10 ** 9, "error",
        "inner Conv2D filters patched under config.layer.config.filters: "
        "kernel would be 2 x 2 x 1 x 1e9 float32 (16 GB); stored (2, 2, 1, 2)",
        lambda v: n_conv(v, [2, 2], 1)),
    "max_pooling1d_pool_size_1e12": HCase(
        "MaxPooling1D(2) -> LSTM(3)", m_max_pooling1d_lstm, (6, 2),
        floats(B, 6, 2), ("layer", "MaxPooling1D"), "pool_size", [10 ** 12],
        "load_ok_predict_error",
        "weightless size (pool_size [2] -> [1000000000000], strides left "
        "[2]): the LSTM's stored weights still fit; a window of 1e12 steps "
        "on 6 input steps with 'valid' padding leaves no output step",
        lambda v: n_lstm(3)),
    "up_sampling1d_size_2pow40": HCase(
        "UpSampling1D(2) -> LSTM(3)", m_up_sampling1d_lstm, (3, 2),
        floats(B, 3, 2), ("layer", "UpSampling1D"), "size", 2 ** 40,
        "load_ok_predict_error",
        "weightless size: the LSTM's stored weights still fit; the "
        "UpSampling1D output alone would be 3 * 2**40 steps x 2 float32 per "
        "sample (52 TB)",
        lambda v: n_lstm(3),
        lambda v: B * 3 * v * 2),
    "up_sampling1d_size_2pow28": HCase(
        "LSTM(2, return_sequences=True) -> UpSampling1D(2)",
        m_lstm_up_sampling1d, (3, 2), floats(B, 3, 2),
        ("layer", "UpSampling1D"), "size", 2 ** 28, "load_ok_predict_error",
        "weightless size that fits one sample: the output is 3 * 2**28 steps "
        "x 2 float32 per sample (1.6e9 scalars, 6.4 GB), so loading may "
        "succeed; predicting the real batch of 2 must be refused (12.9 GB "
        "of output)",
        lambda v: n_lstm(2),
        lambda v: B * 3 * v * 2),
    "batch_normalization_features_1e9": HCase(
        "BatchNormalization()", m_batch_norm, (3, 2), floats(B, 3, 2),
        ("input", 2), "input feature dim", 10 ** 9, "error",
        "input shape (None, 3, 1e9) everywhere it appears: gamma, beta, "
        "moving mean and variance would be 4 x 1e9 float32 (16 GB); stored "
        "4 x (2,)",
        lambda v: 4 * v, lambda v: 0, positive_variance),
    "layer_normalization_features_1e8": HCase(
        "LayerNormalization()", m_layer_norm, (3, 2), floats(B, 3, 2),
        ("input", 2), "input feature dim", 10 ** 8, "error",
        "input shape (None, 3, 1e8) everywhere it appears: gamma and beta "
        "would be 2 x 1e8 float32 (800 MB, within seqnn's weight limit, so "
        "only the stored (2,) can refuse it); stored 2 x (2,)",
        lambda v: 2 * v),
    "reshape_target_shape_1e12": HCase(
        "Reshape((2, 3)) -> LSTM(3)", m_reshape_lstm, (3, 2),
        floats(B, 3, 2), ("layer", "Reshape"), "target_shape",
        [10 ** 6, 10 ** 6], "error",
        "target_shape [2, 3] -> [1000000, 1000000]: 1e12 elements per sample "
        "from 6; the next LSTM would see 1e6 features (a 1e6 x 12 kernel, "
        "within limits)",
        lambda v: n_lstm(3, v[1])),
    "conv_lstm2d_filters_1e6": HCase(
        "ConvLSTM2D(2, 2)", m_conv_lstm2d, (2, 4, 4, 1),
        floats(B, 2, 4, 4, 1), ("layer", "ConvLSTM2D"), "filters", 10 ** 6,
        "error",
        "recurrent kernel would be 2 x 2 x 1e6 x 4e6 float32 (64 TB); stored "
        "(2, 2, 2, 8)",
        lambda v: n_conv_lstm(v, [2, 2], 1)),
    "mha_num_heads_2pow40": HCase(
        "Functional: LSTM(4, return_sequences=True) -> "
        "MultiHeadAttention(num_heads=2, key_dim=2)(x, x) -> "
        "GlobalAveragePooling1D() -> Dense(3)",
        m_f_lstm_mha, (3, 2), floats(B, 3, 2),
        ("layer", "MultiHeadAttention"), "num_heads", 2 ** 40, "error",
        "Functional model; query/key/value kernels would be 4 x 2**40 x 2 "
        "float32 each; stored (4, 2, 2)",
        lambda v: n_mha(v, 2, 2, 4) + N_MHA_REST),
    "mha_key_dim_1e12": HCase(
        "Functional: LSTM(4, return_sequences=True) -> "
        "MultiHeadAttention(num_heads=2, key_dim=2)(x, x) -> "
        "GlobalAveragePooling1D() -> Dense(3)",
        m_f_lstm_mha, (3, 2), floats(B, 3, 2),
        ("layer", "MultiHeadAttention"), "key_dim", 10 ** 12, "error",
        "Functional model; only key_dim is patched (value_dim, written "
        "explicitly by both libraries, stays 2): query and key kernels would "
        "be 4 x 2 x 1e12 float32; stored (4, 2, 2)",
        lambda v: n_mha(2, v, 2, 4) + N_MHA_REST),
    "functional_conv1d_filters_2pow40": HCase(
        "Functional: Conv1D(3, 3) -> GlobalAveragePooling1D() -> Dense(2)",
        m_f_conv1d, (5, 2), floats(B, 5, 2), ("layer", "Conv1D"), "filters",
        2 ** 40, "error",
        "Functional model; Conv1D kernel would be 3 x 2 x 2**40 float32 and "
        "the next Dense kernel 2**40 x 2",
        lambda v: n_conv(v, [3], 2) + n_dense(2, v)),
}


# --------------------------------------------------------------------------
# Patching
# --------------------------------------------------------------------------

SHAPE_KEYS = ("batch_shape", "batch_input_shape", "input_shape",
              "build_input_shape")


def ptr(path):
    """JSON pointer of a list of keys/indices."""
    return "/" + "/".join(str(p) for p in path)


MODEL_CLASSES = ("Sequential", "Functional")


def top_layers(cfg):
    """The layer list of a Sequential or Functional config (the same place
    in both: config.layers, each entry with its own config)."""
    assert cfg["class_name"] in MODEL_CLASSES, cfg["class_name"]
    return cfg["config"]["layers"]


def check_original(old, new):
    """The original is what Keras writes for a size: a JSON integer, or, for
    a list-valued field (kernel_size, strides, pool_size, target_shape...),
    a list of JSON integers, which the patch replaces by a list of the same
    length."""
    if isinstance(new, list):
        assert (type(old) is list and len(old) == len(new)
                and all(type(o) is int for o in old)), (
            "original is not a list of JSON integers of the patch's length",
            old, new)
    else:
        assert type(old) is int, ("original size is not a JSON integer", old)


def patch_layer(cfg, cls, field, value, inner):
    """Returns (layer name, [(json pointer, old, new)]); for wrappers the
    name is (wrapper name, [wrapped layers' names])."""
    for i, layer in enumerate(top_layers(cfg)):
        if layer["class_name"] != cls:
            continue
        base = ["config", "layers", i, "config"]
        if not inner:
            old = layer["config"][field]
            check_original(old, value)
            layer["config"][field] = value
            return layer["config"]["name"], [(ptr(base + [field]), old, value)]
        changes, names = [], []
        for sub in ("layer", "backward_layer"):
            if sub not in layer["config"]:
                continue
            c = layer["config"][sub]["config"]
            names.append(c["name"])
            old = c[field]
            check_original(old, value)
            c[field] = value
            changes.append((ptr(base + [sub, "config", field]), old, value))
        assert changes, ("no wrapped layer", cls)
        return (layer["config"]["name"], names), changes
    raise AssertionError(f"no {cls} layer in the config")


def patch_input_shape(cfg, batch_shape, axis, value):
    """Set axis `axis` of every list stored under a SHAPE_KEYS key that equals
    the model's input batch shape (the InputLayer's batch_shape /
    batch_input_shape, the first layer's batch_input_shape / build_config
    input_shape, Sequential's build_input_shape and the model's
    build_config.input_shape). Returns (input layer name, changes)."""
    changes = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, val in node.items():
                if k in SHAPE_KEYS and val == batch_shape:
                    old = val[axis]
                    val[axis] = value
                    changes.append((ptr(path + [k, axis]), old, value))
                else:
                    walk(val, path + [k])
        elif isinstance(node, list):
            for i, val in enumerate(node):
                walk(val, path + [i])

    walk(cfg, [])
    first = top_layers(cfg)[0]
    assert first["class_name"] == "InputLayer", first["class_name"]
    assert any(p.startswith("/config/layers/0/config/") for p, _, _ in changes)
    return first["config"]["name"], changes


def apply_patch(cfg, case):
    kind, arg = case.target
    if kind in ("layer", "inner"):
        return patch_layer(cfg, arg, case.field, case.value, kind == "inner")
    return patch_input_shape(cfg, [None] + list(case.shape), arg, case.value)


def get_ptr(cfg, pointer):
    node = cfg
    for p in pointer.strip("/").split("/"):
        node = node[int(p)] if isinstance(node, list) else node[p]
    return node


def patched_text(raw, case):
    """(patched JSON text, layer name, changes) from Keras's JSON text."""
    cfg = json.loads(raw)
    # Keras writes json.dumps(config) with the default separators: the
    # round trip is exact, so only the patched numbers differ.
    assert json.dumps(cfg) == raw, "config JSON does not round-trip"
    layer, changes = apply_patch(cfg, case)
    assert changes
    text = json.dumps(cfg)
    back = json.loads(text)
    for pointer, _, new in changes:
        got = get_ptr(back, pointer)
        assert got == new and type(got) is type(new), (pointer, got, new)
    return text, layer, changes


def write_patched_keras(src, dst, case):
    """Copy the .keras zip `src` to `dst` with config.json patched."""
    with zipfile.ZipFile(src) as zin:
        infos = zin.infolist()
        assert [i.filename for i in infos] == [
            "metadata.json", "config.json", "model.weights.h5"], infos
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        members = {i.filename: zin.read(i.filename) for i in infos}
        text, layer, changes = patched_text(
            members["config.json"].decode("utf-8"), case)
        with zipfile.ZipFile(dst, "w") as zout:
            for info in infos:
                data = (text.encode("utf-8") if info.filename == "config.json"
                        else members[info.filename])
                out = zipfile.ZipInfo(info.filename, date_time=info.date_time)
                out.compress_type = zipfile.ZIP_STORED
                out.external_attr = info.external_attr
                out.create_system = info.create_system
                zout.writestr(out, data)
    with zipfile.ZipFile(dst) as z:
        assert [(i.filename, i.compress_type, i.date_time) for i in
                z.infolist()] == [(i.filename, i.compress_type, i.date_time)
                                  for i in infos]
        for name, data in members.items():
            if name != "config.json":
                assert z.read(name) == data, name
        assert z.read("config.json").decode("utf-8") == text
    return layer, changes


def write_patched_h5(src, dst, case):
    """Copy the legacy .h5 `src` to `dst` with attribute model_config
    patched, keeping Keras's attribute type (scalar vlen ASCII string)."""
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        aid = f.attrs.get_id("model_config")
        dtype, shape = aid.dtype, aid.shape
        info = h5py.check_string_dtype(dtype)
        assert info is not None and info.length is None, dtype  # vlen string
        raw = f.attrs["model_config"]
        raw = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        text, layer, changes = patched_text(raw, case)
        f.attrs.create("model_config", data=text.encode(info.encoding),
                       shape=shape, dtype=dtype)
    with h5py.File(dst, "r") as f:
        aid = f.attrs.get_id("model_config")
        assert aid.dtype == dtype and aid.shape == shape
        assert h5py.check_string_dtype(aid.dtype) == info
        got = f.attrs["model_config"]
        got = got.decode("utf-8") if isinstance(got, bytes) else got
        assert got == text
    kind = "scalar" if shape == () else f"shape {shape}"
    return layer, changes, f"{kind} variable-length {info.encoding} string"


# --------------------------------------------------------------------------
# Trying the patched files with Keras (child process)
# --------------------------------------------------------------------------

def child_try(v, path, x_path):
    """Runs in the child: load_model(path) with library v, then (if x_path)
    predict; prints one RESULT line of JSON."""
    K = LIBS[v]
    result = {}
    fresh(K)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = K.models.load_model(path, compile=False)
            result["load"] = "loads"
            msgs = sorted({str(w.message).split("\n")[0][:200]
                           for w in caught})
            if msgs:
                result["load"] += " (warnings: " + " | ".join(msgs) + ")"
        except Exception as exc:  # noqa: BLE001 - recorded
            result["load"] = "error: " + short_error(exc)
            model = None
    if model is not None and x_path:
        x = np.load(x_path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                y = predict(model, x)
                result["predict"] = (f"predict(real input {list(x.shape)}) "
                                     f"returns shape {list(y.shape)}")
                msgs = sorted({str(w.message).split("\n")[0][:200]
                               for w in caught})
                result["predict"] += (" (warnings: " + " | ".join(msgs) + ")"
                                      if msgs else " (no warning)")
            except Exception as exc:  # noqa: BLE001
                result["predict"] = "error: " + short_error(exc)
    print("RESULT " + json.dumps(result), flush=True)


def _limit_child():
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_RLIMIT_AS, CHILD_RLIMIT_AS))


def try_in_child(v, path, x_path=None):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--try-load", v,
           str(path)] + ([str(x_path)] if x_path else [])
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=CHILD_TIMEOUT_S, preexec_fn=_limit_child,
                              cwd=str(ROOT))
    except subprocess.TimeoutExpired:
        return {"load": f"timed out after {CHILD_TIMEOUT_S} s"}
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
           else f"exit code {proc.returncode}")
    tail = proc.stderr.strip().splitlines()[-1:] or [""]
    return {"load": f"child process died ({how}): {tail[0][:300]}"}


def human_bytes(n):
    """~1.6e+11 bytes (exact for huge ints, where float() overflows)."""
    digits = str(int(n))
    return f"~{digits[0]}.{digits[1:3]}e+{len(digits) - 1:02d} bytes"


# --------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------

def make_case(name, case, tmp):
    entries = []
    rng = case_rng(name)
    models = {}
    for v in ("tf", "k3"):
        K = LIBS[v]
        fresh(K)
        models[v] = case.build(K, v)
        assert models[v].built, (name, v)
    weights = [rng.uniform(-0.6, 0.6, size=w.shape).astype(np.float32)
               for w in models["tf"].get_weights()]
    if case.fix_weights is not None:
        weights = case.fix_weights(weights)
    x = case.make_x(rng)
    x_path = tmp / f"{name}.input.npy"
    np.save(x_path, x)
    for v in ("k3", "tf"):
        K = LIBS[v]
        model = models[v]
        assert [w.shape for w in model.get_weights()] == [
            w.shape for w in weights], (name, v)
        model.set_weights(weights)
        y = predict(model, x)
        ext = "keras" if v == "k3" else "h5"
        orig = tmp / f"{name}.{v}.{ext}"
        model.save(str(orig))

        # The original reloads in its writer and predicts the same.
        fresh(K)
        again = K.models.load_model(str(orig), compile=False)
        diff = float(np.max(np.abs(predict(again, x) - y)))
        assert diff == 0.0, (name, v, diff)

        fname = f"{name}.{v}.{ext}"
        dst = OUT_DIR / fname
        if v == "k3":
            layer, changes = write_patched_keras(orig, dst, case)
            where = "zip member config.json"
        else:
            layer, changes, attr_type = write_patched_h5(orig, dst, case)
            where = f"root attribute model_config ({attr_type})"

        inner = None
        if isinstance(layer, tuple):
            layer, inner = layer
        n_weights = case.weights(case.value)
        if n_weights is not None and n_weights * 4 > TRY_LIMIT_BYTES:
            tried = {"load": f"not tried (would allocate "
                             f"{human_bytes(n_weights * 4)} of float32 "
                             f"weights)"}
        else:
            n_pred = case.predict_floats(case.value)
            if case.expect == "load_ok_predict_error" and \
                    n_pred * 4 > TRY_LIMIT_BYTES:
                tried = try_in_child(v, dst)
                if tried["load"].startswith("loads"):
                    tried["predict"] = (
                        f"not tried (would allocate {human_bytes(n_pred * 4)}"
                        f" of float32 activations)")
            else:
                tried = try_in_child(
                    v, dst,
                    x_path if case.expect == "load_ok_predict_error" else None)
        field = case.field
        if case.target[0] == "input":
            keys = []
            for p, _, _ in changes:
                k = p.split("/")[-2]
                if k not in keys:
                    keys.append(k)
            field = ", ".join(f"{k}[{case.target[1]}]" for k in keys)
        entry = {
            "file": fname,
            "format": FORMAT[v],
            "layer": layer,
            **({"inner_layers": inner} if inner else {}),
            "field": field,
            "original_value": json.dumps(changes[0][1]),
            "config_location": where,
            "paths": [p for p, _, _ in changes],
            "original_reload": "ok (reloaded by " + LIB_NAME[v] +
                               ", predict max abs diff 0)",
            "keras_load": f"{LIB_NAME[v]} load_model: " + tried["load"],
        }
        if "predict" in tried:
            entry["keras_predict"] = tried["predict"]
        entry = complete_entry(name, case, entry)
        entries.append(entry)
        size = dst.stat().st_size
        print(f"  {fname:40s} {size:6d} B  {entry['keras_load'][:110]}",
              flush=True)
    return entries


TARGET_KIND = {"layer": "layer", "inner": "wrapped layer",
               "input": "input shape"}

# The order of an entry's keys in manifest.json.
ENTRY_KEYS = ("file", "case", "format", "model_class", "layer",
              "inner_layers", "target", "field", "value", "expect", "note",
              "model", "input_shape", "original_value", "config_location",
              "paths", "original_reload", "keras_load", "keras_predict")


def file_config(path):
    """The (patched) model config stored in a file of OUT_DIR."""
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("config.json").decode("utf-8"))
    with h5py.File(path, "r") as f:
        raw = f.attrs["model_config"]
    return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)


def complete_entry(name, case, entry):
    """`entry` (what making the file found: the layer's name, the patched
    paths, Keras's outcome...) with the fields that follow from CASES and
    from the file's config, in ENTRY_KEYS order. Checks that the file holds
    the case's value at every patched path."""
    cfg = file_config(OUT_DIR / entry["file"])
    for pointer in entry["paths"]:
        got = get_ptr(cfg, pointer)
        assert got == case.value and type(got) is type(case.value), (
            entry["file"], pointer, got, case.value,
            "the file is not this case's: regenerate it")
    x = case.make_x(np.random.default_rng(0))
    full = dict(entry)
    full.update({
        "case": name,
        "model_class": cfg["class_name"],
        "target": TARGET_KIND[case.target[0]],
        "value": json.dumps(case.value),
        "expect": case.expect,
        "note": case.note,
        "model": case.model + (
            f" on int32 ids of shape {tuple(case.shape)}"
            if np.issubdtype(x.dtype, np.integer)
            else f" on input {tuple(case.shape)}"),
        "input_shape": list(x.shape),
    })
    if case.target[0] != "input":
        full["field"] = case.field
    assert set(full) <= set(ENTRY_KEYS), set(full) - set(ENTRY_KEYS)
    return {k: full[k] for k in ENTRY_KEYS if k in full}


README_HEAD = """\
# Hostile Keras model files: absurd sizes in the model config

Every file here is a copy of a **real, small Keras-written model**
(Sequential, or Functional for the `mha_*` and `functional_*` cases) in which
only size fields of the model config were changed, so that the weights stored
in the file no longer fit the config, or the config asks for absurd sizes
(2**40 units or filters, u64::MAX, 2**63 input features, a negative or float
`units`, a kernel of 1e12 steps, a dilation of 2**62, a zero stride, a
trillion-element `target_shape`...). They exist to test that seqnn's loader
**refuses** such files with an error: never a panic, an abort, an overflow or
a huge allocation. For the weightless sizes (`expect` =
`load_ok_predict_error`: `repeat_vector_1e12`, `input_timesteps_1e12`,
`max_pooling1d_pool_size_1e12`, `up_sampling1d_size_2pow40`,
`up_sampling1d_size_2pow28`) loading may succeed, but predicting must be
refused (or, for the timesteps, the real input simply does not match).

All files here, including this README and `manifest.json`, are generated by
[`tools/keras_reference/generate_hostile.py`](../../../tools/keras_reference/generate_hostile.py);
do not edit them by hand.

## Regenerating

```sh
{regenerate}
```

It deletes and rewrites this folder (a few minutes). The files are not
byte-identical from run to run only where Keras itself varies: the
`.keras` `metadata.json` `date_saved`, the zip entry time of
`model.weights.h5`, and Keras 3's `shared_object_id` values in `config.json`
(Python `id()`s, left as Keras wrote them). To add cases without touching the
others' files, `... generate_hostile.py --missing` makes only the cases whose
files or manifest entries are missing (`... generate_hostile.py CASE...`
remakes only those), keeping the other files and their manifest entries.

## Versions

| package | version |
|---------|---------|
{versions}

## Files per case

| file | made from |
|------|-----------|
| `<case>.k3.keras` | Keras 3 (`KERAS_BACKEND=tensorflow`) `keras.Input(shape=...)` + layers, `model.save("x.keras")`; then `config.json` replaced by the patched JSON (other members byte-identical, all members `ZIP_STORED`, same order, names, dates and attributes) |
| `<case>.tf.h5` | tf_keras `input_shape=` / `input_length=` on the first layer, `model.save("x.h5")` (legacy HDF5); then the root attribute `model_config` rewritten with the patched JSON, keeping Keras's attribute type: a scalar variable-length ASCII string |

Conventions as in `generate_files.py`: `clear_session()` and
`set_random_seed(0)` before every model; weights
`rng.uniform(-0.6, 0.6)` float32 with
`rng = np.random.default_rng(zlib.crc32(case))`; the original (unpatched)
file is reloaded by its writer and must predict exactly as before saving.
Numbers are patched as JSON integers (`lstm_units_float`: the JSON float
`1e+300`), list-valued fields (`kernel_size`, `dilation_rate`, `strides`,
`pool_size`, `target_shape`) as a list of JSON integers of the length Keras
wrote; Keras writes `json.dumps(config)` and the script checks the
original text round-trips exactly, so the patched JSON differs from Keras's
only in the patched numbers. For `batch_normalization_features_1e9` the
moving variance is made positive (`|w| + 0.5`) so that the real model
predicts numbers, not NaN.

Where the fields are (Keras 3 / tf_keras):

* layer sizes: `config.layers[i].config.units` (`input_dim`, `output_dim`,
  `n`, `filters`, `kernel_size`, `num_heads`, `key_dim`...), in a Sequential
  and in a Functional config alike; wrappers nest the inner layer under
  `config.layers[i].config.layer`
  and, Keras 3 only, `config.layers[i].config.backward_layer` (tf_keras
  writes no `backward_layer` for a default Bidirectional). Both are patched.
* input shape, Keras 3: `InputLayer` `config.batch_shape`, the first layer's
  `build_config.input_shape`, Sequential's `config.build_input_shape`, and
  the model's top-level `build_config.input_shape`.
* input shape, tf_keras: `batch_input_shape` both on an explicit `InputLayer`
  (named `<first layer>_input`) that tf_keras writes into the HDF5 config, and
  on the first layer itself. No `build_input_shape` in tf_keras's h5 config.

`manifest.json`: `{{"generated_by", "versions", "files": [...]}}`, one entry
per file: `file`, `case`, `format` (`keras3 .keras` | `tf_keras .h5`),
`model_class` (`Sequential` | `Functional`: the config's `class_name`),
`layer` (patched layer's name in that config; the wrapper's for
Bidirectional / TimeDistributed, whose patched wrapped layers are listed in
`inner_layers`; the InputLayer's for input shapes), `target` (`layer` |
`wrapped layer` | `input shape`), `field`, `value` (JSON text), `expect`
(`error` | `load_ok_predict_error`), `note`, `input_shape` (the real input's
shape, batch first, for predicting), and informational `model`,
`original_value`, `config_location`, `paths` (JSON pointers of every patched
number in the config), `original_reload`, `keras_load` (what the library that
wrote the file says when loading the patched file; tried in a child process
with an 8 GiB address-space limit, and not tried when the patched weights
would exceed 1 GiB) and `keras_predict` (weightless cases).

## Cases

| case | model | patch | expect | Keras 3 `load_model` | tf_keras `load_model` |
|------|-------|-------|--------|----------------------|-----------------------|
"""


def short_outcome(entry):
    def short(text):
        if text.startswith("not tried"):
            return "not tried"
        if text.startswith("loads"):
            return "loads"
        if text.startswith("predict("):
            return "returns " + text.split(" returns ")[1].split(" (")[0]
        m = re.match(r"error: (\w+)", text)
        return f"error ({m.group(1)})" if m else text[:40]
    out = short(entry["keras_load"].split(": ", 1)[1])  # drop "<lib> ..."
    if "keras_predict" in entry:
        out += "; predict: " + short(entry["keras_predict"])
    return out


def write_readme(entries):
    versions = "\n".join(f"| {k} | {val} |" for k, val in VERSIONS.items())
    text = README_HEAD.format(regenerate=REGENERATE, versions=versions)
    by_case = {}
    for e in entries:
        by_case.setdefault(e["case"], {})[e["format"]] = e
    for name, case in CASES.items():
        k3 = by_case[name]["keras3 .keras"]
        tfe = by_case[name]["tf_keras .h5"]
        patch = f"{case.field} = `{json.dumps(case.value)}`"
        if case.target[0] == "inner":
            patch = f"inner {patch}"
        elif case.target[0] == "layer":
            patch = f"{case.target[1]} {patch}"
        text += (f"| `{name}` | {k3['model']} | {patch} | {case.expect} | "
                 f"{short_outcome(k3)} | {short_outcome(tfe)} |\n")
    text += ("\nThe exact messages are in `manifest.json` (`keras_load`, "
             "`keras_predict`).\n")
    (OUT_DIR / "README.md").write_text(text, encoding="utf-8")


def case_files(name):
    return [f"{name}.k3.keras", f"{name}.tf.h5"]


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "--try-load":
        child_try(sys.argv[2], sys.argv[3],
                  sys.argv[4] if len(sys.argv) > 4 else None)
        return
    args = sys.argv[1:]
    if not args:
        # Everything, from scratch.
        todo = list(CASES)
        if OUT_DIR.exists():
            shutil.rmtree(OUT_DIR)
        OUT_DIR.mkdir(parents=True)
        kept = {}
    else:
        # Keep the other cases' files and manifest entries as they are.
        manifest = OUT_DIR / "manifest.json"
        old = (json.loads(manifest.read_text(encoding="utf-8"))["files"]
               if manifest.exists() else [])
        kept = {e["file"]: e for e in old}
        if args == ["--missing"]:
            todo = [n for n in CASES if not all(
                f in kept and (OUT_DIR / f).exists() for f in case_files(n))]
        elif all(a in CASES for a in args):
            todo = args
        else:
            sys.exit(__doc__)
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        for name in CASES:
            if name in todo:
                continue
            for f in case_files(name):
                if f not in kept or not (OUT_DIR / f).exists():
                    sys.exit(f"{f} or its manifest entry is missing: "
                             f"regenerate case {name} (or run --missing)")
        known = {f for n in CASES for f in case_files(n)}
        stray = sorted(p.name for p in OUT_DIR.iterdir() if p.name not in
                       known | {"manifest.json", "README.md"})
        if stray:
            sys.exit(f"files of no case in {OUT_DIR}: {stray}")
    made = {}
    with tempfile.TemporaryDirectory(prefix="seqnn_hostile_") as tmp:
        for name in todo:
            print(name, flush=True)
            for f in case_files(name):
                if (OUT_DIR / f).exists():
                    (OUT_DIR / f).unlink()
            for e in make_case(name, CASES[name], Path(tmp)):
                made[e["file"]] = e
    entries = []
    for name, case in CASES.items():
        for f in case_files(name):
            entries.append(made[f] if f in made
                           else complete_entry(name, case, kept[f]))
    # The files' order (per case: .k3.keras, then .tf.h5) as make_case's.
    with open(OUT_DIR / "manifest.json", "w", encoding="utf-8") as fh:
        json.dump({"generated_by": GENERATED_BY, "versions": VERSIONS,
                   "files": entries}, fh, indent=1)
        fh.write("\n")
    write_readme(entries)
    total = sum(p.stat().st_size for p in OUT_DIR.iterdir())
    print(f"{len(entries)} model files ({len(made)} made now); total size of "
          f"{OUT_DIR.relative_to(ROOT)}: {total / 1e3:.1f} kB")


if __name__ == "__main__":
    main()
