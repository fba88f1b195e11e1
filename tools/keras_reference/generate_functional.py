#!/usr/bin/env python3
"""Generate reference Keras FUNCTIONAL model files for seqnn's loader.

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_functional.py

It (re)writes everything in tests/fixtures/functional/ except README.md
(a few minutes) and then runs the format checks. Other modes:

    generate_functional.py CASE...          regenerate only those cases
    generate_functional.py --check          verify the README's format rules
                                            on every file here and print the
                                            observed key sets / call forms
    generate_functional.py --dump FILE...   zip members, metadata, the graph
                                            (one line per config entry with
                                            its inbound_nodes, recursively)
                                            and the HDF5 tree of saved files
    generate_functional.py --dump-full FILE...   the same plus the whole
                                            config JSON

For every case of CASES, the same Functional model (`Model(inputs,
outputs)`) is built with tf_keras 2.21 ("tf") and with Keras 3.15 ("k3",
TensorFlow backend) from one description, given the SAME weights, and
saved as

    <case>.tf.keras       tf_keras  model.save("x.keras")
    <case>.tf.h5          tf_keras  model.save("x.h5")   (legacy HDF5)
    <case>.k3.keras       Keras 3   model.save("x.keras")
    <case>.k3.h5          Keras 3   model.save("x.h5")   (legacy HDF5)
    <case>.k3.weights.h5  Keras 3   model.save_weights("x.weights.h5")

plus <case>.json: the inputs (one entry per model input, with its Keras
input name in each library), the outputs each library predicts (one entry
per model output), summaries, params, layers, weight names, input and
output names, the graph as serialized in each dialect, notes.

Every saved file is reloaded by the library that wrote it and must predict
exactly (max abs diff 0) what that library predicted before saving; the
.k3.weights.h5 is loaded into a freshly built Keras 3 model. A file its
writer cannot load back is kept only when load_weights of it into a freshly
built model reproduces the outputs exactly ("reload_failures" in the JSON).
Files are also cross-loaded by the other library (informational,
"cross_load"). After a full run, the format checks (--check) and the
mask-semantics checks (masked merge outputs recomputed from the README's
formulas) must pass.

Conventions are those of generate_files.py: clear_session() and
set_random_seed(0) before every model in each library (names restart at
`model` / `functional`, `input_1` / `input_layer`, `lstm`, ...); weights
rng.uniform(-0.6, 0.6) float32 in get_weights order (tf_keras's; the script
asserts Keras 3 has the same shapes in the same order), with
rng = np.random.default_rng(zlib.crc32(case_name)); then the inputs, in
model-input order, from the same rng.

The .keras zips embed the save time (metadata.json "date_saved", the zip
entry time of model.weights.h5) and their config.json contains
`shared_object_id` values that are Python id()s, so the .keras files are
not byte-identical between runs; the JSON, .h5 and .weights.h5 files are,
and the .keras files are equal up to those three things.
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
OUT_DIR = ROOT / "tests" / "fixtures" / "functional"
GENERATED_BY = "tools/keras_reference/generate_functional.py"
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
# Input makers: each takes the case rng and returns one array.
# --------------------------------------------------------------------------

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


def bool_mask(timesteps, lengths, hole=None):
    """Boolean (batch, timesteps): True for the first lengths[b] steps;
    `hole` = (row, t) sets one interior step to False."""
    def make(rng):
        m = np.zeros((len(lengths), timesteps), bool)
        for b, n in enumerate(lengths):
            m[b, :n] = True
        if hole is not None:
            m[hole[0], hole[1]] = False
        rng.uniform()  # keep the rng stream moving like the other makers
        return m
    return make


Case = namedtuple("Case", "description build inputs notes stateful",
                  defaults=((), False))


def _inner_sequential(K, v, layers_fn, shape=None):
    """A Sequential for nesting: with an input shape (Keras 2 idiom
    `input_shape=` on its first layer; Keras 3 idiom `Input` first) when
    `shape` is given, else without (built when first called)."""
    L = K.layers
    if shape is None:
        return K.Sequential(layers_fn(L, {}))
    if v == "tf":
        return K.Sequential(layers_fn(L, {"input_shape": tuple(shape)}))
    return K.Sequential([K.Input(shape=tuple(shape))] + layers_fn(L, {}))


# --------------------------------------------------------------------------
# Cases. build(K, v) gets the Keras module K (tf_keras or keras) and
# v = "tf" | "k3" and returns the Functional model. The Functional API is
# the same in both libraries, so the code is shared (only nested
# Sequentials use each library's idiom).
# --------------------------------------------------------------------------

def build_chain_lstm(K, v):
    L = K.layers
    x = K.Input(shape=(5, 3))
    h = L.LSTM(4, return_sequences=True)(x)
    h = L.LSTM(3)(h)
    y = L.Dense(3, activation="softmax")(h)
    return K.Model(x, y)


def build_two_inputs_concat(K, v):
    L = K.layers
    a = K.Input(shape=(5, 3))
    b = K.Input(shape=(4, 2))
    h = L.Concatenate()([L.LSTM(3)(a), L.LSTM(2)(b)])
    return K.Model([a, b], L.Dense(2, activation="tanh")(h))


def build_encoder_decoder_lstm(K, v):
    L = K.layers
    enc_in = K.Input(shape=(5, 3))
    dec_in = K.Input(shape=(4, 2))
    _, h, c = L.LSTM(4, return_state=True)(enc_in)
    d = L.LSTM(4, return_sequences=True)(dec_in, initial_state=[h, c])
    y = L.TimeDistributed(L.Dense(3, activation="softmax"))(d)
    return K.Model([enc_in, dec_in], y)


def build_encoder_decoder_gru(K, v):
    L = K.layers
    enc_in = K.Input(shape=(5, 3))
    dec_in = K.Input(shape=(4, 2))
    _, h = L.GRU(3, return_state=True)(enc_in)
    d = L.GRU(3, return_sequences=True)(dec_in, initial_state=h)
    y = L.Dense(2)(d)
    return K.Model([enc_in, dec_in], y)


def build_shared_dense(K, v):
    L = K.layers
    a = K.Input(shape=(5, 3))
    b = K.Input(shape=(5, 3))
    shared = L.Dense(4, activation="tanh")
    h = L.Concatenate()([shared(a), shared(b)])
    return K.Model([a, b], L.LSTM(3)(h))


def build_shared_embedding_lstm(K, v):
    L = K.layers
    a = K.Input(shape=(6,), dtype="int32")
    b = K.Input(shape=(6,), dtype="int32")
    emb = L.Embedding(10, 3, mask_zero=True)
    lstm = L.LSTM(3)
    d = L.Subtract()([lstm(emb(a)), lstm(emb(b))])
    return K.Model([a, b], L.Dense(1, activation="sigmoid")(d))


def build_merge_elementwise(K, v):
    L = K.layers
    a = K.Input(shape=(5, 3))
    b = K.Input(shape=(5, 3))
    x = L.LSTM(3, return_sequences=True)(a)
    y = L.GRU(3, return_sequences=True)(b)
    outs = [L.Add()([x, y]), L.Subtract()([x, y]), L.Multiply()([x, y]),
            L.Average()([x, y]), L.Maximum()([x, y]), L.Minimum()([x, y]),
            L.Add()([x, y, a]), L.Multiply()([x, y, a]),
            L.Average()([x, y, a]), L.Maximum()([x, y, a]),
            L.Minimum()([x, y, a])]
    return K.Model([a, b], outs)


def build_merge_concatenate(K, v):
    L = K.layers
    a = K.Input(shape=(5, 3))
    b = K.Input(shape=(4, 3))
    c = K.Input(shape=(5, 2))
    x = L.SimpleRNN(2, return_sequences=True)(a)
    out_feat = L.Concatenate(axis=-1)([x, c, a])          # (5, 7)
    out_time = L.Concatenate(axis=1)([a, b])              # (9, 3)
    out_time_rnn = L.GRU(2)(L.Concatenate(axis=1)([b, a]))  # (2,)
    out_vec = L.Concatenate()([L.LSTM(2)(a), L.LSTM(3)(b)])  # (5,)
    out_ax2 = L.Concatenate(axis=2)([c, x])               # (5, 4)
    return K.Model([a, b, c], [out_feat, out_time, out_time_rnn, out_vec,
                               out_ax2])


def build_merge_dot(K, v):
    L = K.layers
    a = K.Input(shape=(5, 3))
    b = K.Input(shape=(3, 3))
    x = L.LSTM(4, return_sequences=True)(a)   # (5, 4)
    y = L.GRU(4, return_sequences=True)(b)    # (3, 4)
    z = L.SimpleRNN(2, return_sequences=True)(a)  # (5, 2)
    hx = L.LSTM(3)(a)
    hy = L.GRU(3)(b)
    outs = [
        L.Dot(axes=1)([hx, hy]),                          # (1,)
        L.Dot(axes=1, normalize=True)([hx, hy]),          # (1,) cosine
        L.Dot(axes=(2, 2))([x, y]),                       # (5, 3)
        L.Dot(axes=(2, 2), normalize=True)([x, y]),       # (5, 3)
        L.Dot(axes=1)([x, z]),                            # (4, 2)
        L.Dot(axes=1, normalize=True)([x, z]),            # (4, 2)
        L.Dot(axes=-1)([x, L.Dense(4)(z)]),               # (5, 5)
    ]
    return K.Model([a, b], outs)


def build_multi_output(K, v):
    L = K.layers
    x = K.Input(shape=(5, 3))
    seq = L.LSTM(4, return_sequences=True)(x)
    per_step = L.TimeDistributed(L.Dense(2, activation="softmax"))(seq)
    last = L.Dense(1, activation="sigmoid")(L.LSTM(3)(seq))
    # Outputs deliberately not in layer order; `seq` is an intermediate
    # tensor that is also an output.
    return K.Model(x, [last, per_step, seq])


def build_mask_embedding_chain(K, v):
    L = K.layers
    x = K.Input(shape=(7,), dtype="int32")
    e = L.Embedding(12, 4, mask_zero=True)(x)
    s = L.LSTM(4, return_sequences=True)(e)
    s2 = L.SimpleRNN(3, return_sequences=True)(s)
    h = L.GRU(3)(s2)
    y = L.Dense(2, activation="softmax")(h)
    td = L.TimeDistributed(L.Dense(2))(s2)
    return K.Model(x, [y, s, td])


def build_mask_concat_branches(K, v):
    L = K.layers
    a = K.Input(shape=(6,), dtype="int32")
    b = K.Input(shape=(6,), dtype="int32")
    f = K.Input(shape=(6, 2))
    xa = L.LSTM(3, return_sequences=True)(L.Embedding(10, 3, mask_zero=True)(a))
    xb = L.Embedding(10, 2, mask_zero=True)(b)
    both = L.Concatenate()([xa, xb])             # two masked branches, axis -1
    out_feat = L.GRU(2)(both)
    time = L.Concatenate(axis=1)([xa, L.Dense(3)(xb)])  # axis 1 (time)
    out_time = L.SimpleRNN(2)(time)
    mixed = L.Concatenate()([xa, f])             # masked + unmasked, axis -1
    out_mixed = L.GRU(2)(mixed)
    return K.Model([a, b, f], [out_feat, out_time, out_mixed])


def build_mask_merge_add(K, v):
    L = K.layers
    a = K.Input(shape=(6,), dtype="int32")
    b = K.Input(shape=(6,), dtype="int32")
    f = K.Input(shape=(6, 3))
    xa = L.Embedding(10, 3, mask_zero=True)(a)
    xb = L.Embedding(10, 3, mask_zero=True)(b)
    mul_both = L.Multiply()([xa, xb])
    max_both = L.Maximum()([xa, xb])
    min_mixed = L.Minimum()([xa, f])
    return K.Model([a, b, f], [
        L.GRU(2)(L.Add()([xa, xb])),                        # 0 two masks
        L.GRU(2)(L.Multiply()([xa, f])),                    # 1 mixed
        L.SimpleRNN(2)(L.Average()([xa, xb, L.Dense(3)(f)])),  # 2
        L.GRU(2)(L.Subtract()([xa, xb])),                   # 3
        mul_both,                                           # 4 raw values
        L.GRU(2)(mul_both),                                 # 5
        max_both,                                           # 6 raw values
        L.GRU(2)(max_both),                                 # 7
        min_mixed,                                          # 8 raw values
        L.GRU(2)(min_mixed),                                # 9
    ])


def build_mask_masking_layer(K, v):
    L = K.layers
    x = K.Input(shape=(6, 3))
    m = L.Masking(mask_value=0.0)(x)
    s = L.LSTM(3, return_sequences=True)(m)
    r = L.SimpleRNN(3, return_sequences=True)(m)
    h = L.GRU(2)(L.Add()([s, r]))
    td = L.TimeDistributed(L.Dense(2))(s)
    return K.Model(x, [h, td])


def build_mask_explicit_input(K, v):
    L = K.layers
    x = K.Input(shape=(6, 3))
    m = K.Input(shape=(6,), dtype="bool")
    s = L.LSTM(3, return_sequences=True)(x, mask=m)
    h = L.GRU(2)(s)
    g = L.SimpleRNN(2)(x, mask=m)
    return K.Model([x, m], [h, g, s])


def build_nested_sequential(K, v):
    L = K.layers
    x = K.Input(shape=(5, 3))
    with_input = _inner_sequential(
        K, v, lambda L, first: [L.LSTM(3, return_sequences=True, **first),
                                L.GRU(2)], shape=(5, 3))
    without_input = _inner_sequential(
        K, v, lambda L, first: [L.SimpleRNN(2, return_sequences=True),
                                L.LSTM(2)])
    h = L.Concatenate()([with_input(x), without_input(x)])
    return K.Model(inputs=[x], outputs=[L.Dense(2, activation="softmax")(h)])


def build_nested_functional(K, v):
    L = K.layers
    i = K.Input(shape=(5, 3))
    inner = K.Model(i, L.Dense(2)(L.GRU(3)(i)))
    a = K.Input(shape=(5, 3))
    b = K.Input(shape=(5, 3))
    ya = inner(a)
    yb = inner(b)
    # The second output is the nested model's own output, unchanged.
    return K.Model([a, b], [L.Dense(1)(L.Concatenate()([ya, yb])), yb])


def build_shared_across_nesting(K, v):
    L = K.layers
    proj = L.Dense(2)
    i = K.Input(shape=(5, 3))
    inner = K.Model(i, proj(L.GRU(3)(i)))
    a = K.Input(shape=(5, 3))
    b = K.Input(shape=(5, 3))
    # `proj` is used inside `inner` and directly by the outer model.
    return K.Model([a, b], L.Add()([inner(a), proj(L.LSTM(3)(b))]))


def build_nested_deep(K, v):
    L = K.layers
    # innermost: a Functional with two outputs
    i0 = K.Input(shape=(5, 3))
    s0 = L.LSTM(3, return_sequences=True)(i0)
    innermost = K.Model(i0, [s0, L.LSTM(2)(s0)])
    # middle: a Functional using `innermost` and a Sequential
    i1 = K.Input(shape=(5, 3))
    seq_out, last = innermost(i1)
    head = _inner_sequential(
        K, v, lambda L, first: [L.GRU(2, **first), L.Dense(2)], shape=(5, 3))
    middle = K.Model(i1, L.Add()([last, head(seq_out)]))
    # outer
    x = K.Input(shape=(5, 3))
    return K.Model(x, L.Dense(2, activation="tanh")(middle(x)))


def build_branch_bidirectional(K, v):
    L = K.layers
    x = K.Input(shape=(5, 3))
    bi = L.Bidirectional(L.GRU(3, return_sequences=True))(x)  # (5, 6)
    rnn = L.SimpleRNN(6, return_sequences=True)(x)            # (5, 6)
    return K.Model(x, L.Add()([bi, rnn]))


def build_stateful_lstm(K, v):
    L = K.layers
    x = K.Input(batch_shape=(2, 4, 3))
    s, h, c = L.LSTM(3, stateful=True, return_sequences=True,
                     return_state=True)(x)
    return K.Model(x, [L.Dense(2)(s), h, c])


def build_return_state_outputs(K, v):
    L = K.layers
    x = K.Input(shape=(5, 3))
    o1 = L.LSTM(3, return_state=True)(x)                     # out, h, c
    o2 = L.GRU(2, return_sequences=True, return_state=True)(x)  # seq, h
    o3 = L.SimpleRNN(2, return_state=True)(x)                # out, h
    o4 = L.Bidirectional(L.LSTM(2, return_state=True))(x)  # out,fh,fc,bh,bc
    o5 = L.Bidirectional(L.GRU(2, return_sequences=True, return_state=True),
                         merge_mode="sum")(x)                # seq, fh, bh
    return K.Model(x, list(o1) + list(o2) + list(o3) + list(o4) + list(o5))


def build_custom_names(K, v):
    L = K.layers
    # Layers created in an order that differs from the graph order.
    head = L.Dense(2, activation="softmax", name="head")
    merge = L.Concatenate(name="join")
    rnn_b = L.GRU(2, name="zz_gru")
    rnn_a = L.LSTM(3, name="aa_lstm")
    emb = L.Embedding(8, 3, name="frozen_embedding", trainable=False)
    tokens = K.Input(shape=(5,), dtype="int32", name="tokens")
    feats = K.Input(shape=(5, 2), name="features")
    h = merge([rnn_a(emb(tokens)), rnn_b(feats)])
    return K.Model([tokens, feats], head(h), name="my_net")


def build_dict_io(K, v):
    L = K.layers
    a = K.Input(shape=(5, 3), name="left")
    b = K.Input(shape=(4, 3), name="right")
    h = L.Concatenate()([L.LSTM(2, name="enc_left")(a),
                         L.GRU(2, name="enc_right")(b)])
    return K.Model(inputs={"left": a, "right": b},
                   outputs={"score": L.Dense(1, name="score")(h),
                            "feat": L.Dense(2, name="feat")(h)})


CASES = {
    "chain_lstm": Case(
        "Input(5, 3) -> LSTM(4, return_sequences=True) -> LSTM(3) -> "
        "Dense(3, softmax): the plain chain, Model(x, y)",
        build_chain_lstm, [floats(3, 5, 3)]),
    "two_inputs_concat": Case(
        "Two inputs (5, 3) and (4, 2) -> LSTM(3) and LSTM(2) -> "
        "Concatenate() -> Dense(2, tanh)",
        build_two_inputs_concat, [floats(3, 5, 3), floats(3, 4, 2)]),
    "encoder_decoder_lstm": Case(
        "Encoder Input(5, 3) -> LSTM(4, return_state=True) -> (out, h, c); "
        "decoder Input(4, 2) -> LSTM(4, return_sequences=True)(dec, "
        "initial_state=[h, c]) -> TimeDistributed(Dense(3, softmax))",
        build_encoder_decoder_lstm, [floats(3, 5, 3), floats(3, 4, 2)],
        ("tf_keras serializes initial_state as extra inbound tensors of the "
         "decoder node ([dec, h, c]); Keras 3 as kwargs.initial_state",)),
    "encoder_decoder_gru": Case(
        "Encoder Input(5, 3) -> GRU(3, return_state=True) -> (out, h); "
        "decoder Input(4, 2) -> GRU(3, return_sequences=True)(dec, "
        "initial_state=h) (a single tensor, not a list) -> Dense(2) on the "
        "3-D sequence",
        build_encoder_decoder_gru, [floats(3, 5, 3), floats(3, 4, 2)]),
    "shared_dense": Case(
        "One Dense(4, tanh) applied to two inputs (5, 3) (two nodes of one "
        "layer, one set of weights) -> Concatenate -> LSTM(3)",
        build_shared_dense, [floats(3, 5, 3), floats(3, 5, 3)]),
    "shared_embedding_lstm": Case(
        "One Embedding(10, 3, mask_zero=True) and one LSTM(3) applied to "
        "two int inputs (6,) (zero-padded, different lengths) -> "
        "Subtract -> Dense(1, sigmoid)",
        build_shared_embedding_lstm,
        [padded_ids(10, 6, [6, 4, 2]), padded_ids(10, 6, [3, 6, 1])]),
    "merge_elementwise": Case(
        "a, b (5, 3) -> LSTM(3, seq)(a) = x, GRU(3, seq)(b) = y; 11 outputs: "
        "Add, Subtract, Multiply, Average, Maximum, Minimum of [x, y], then "
        "Add, Multiply, Average, Maximum, Minimum of [x, y, a] (3 inputs)",
        build_merge_elementwise, [floats(3, 5, 3), floats(3, 5, 3)]),
    "merge_concatenate": Case(
        "a (5, 3), b (4, 3), c (5, 2); x = SimpleRNN(2, seq)(a). Outputs: "
        "Concatenate(axis=-1)([x, c, a]) (5, 7); Concatenate(axis=1)([a, b]) "
        "(9, 3); GRU(2)(Concatenate(axis=1)([b, a])); "
        "Concatenate()([LSTM(2)(a), LSTM(3)(b)]) (5,); "
        "Concatenate(axis=2)([c, x]) (5, 4)",
        build_merge_concatenate,
        [floats(3, 5, 3), floats(3, 4, 3), floats(3, 5, 2)]),
    "merge_dot": Case(
        "a (5, 3), b (3, 3); x = LSTM(4, seq)(a) (5, 4), y = GRU(4, seq)(b) "
        "(3, 4), z = SimpleRNN(2, seq)(a) (5, 2), hx = LSTM(3)(a), "
        "hy = GRU(3)(b). Outputs: Dot(axes=1)([hx, hy]) (1,), same with "
        "normalize=True, Dot(axes=(2, 2))([x, y]) (5, 3), same normalized, "
        "Dot(axes=1)([x, z]) (4, 2) (contracts time), same normalized, "
        "Dot(axes=-1)([x, Dense(4)(z)]) (5, 5)",
        build_merge_dot, [floats(3, 5, 3), floats(3, 3, 3)]),
    "multi_output": Case(
        "Input(5, 3) -> LSTM(4, seq) = s; outputs [Dense(1, sigmoid)("
        "LSTM(3)(s)), TimeDistributed(Dense(2, softmax))(s), s] (not in "
        "layer order; an intermediate tensor is an output)",
        build_multi_output, [floats(3, 5, 3)]),
    "mask_embedding_chain": Case(
        "ids (7,) (zero-padded) -> Embedding(12, 4, mask_zero=True) -> "
        "LSTM(4, seq) = s -> SimpleRNN(3, seq) = s2 -> GRU(3) -> Dense(2, "
        "softmax); outputs [that, s, TimeDistributed(Dense(2))(s2)] (masked "
        "steps of s repeat the previous output)",
        build_mask_embedding_chain, [padded_ids(12, 7, [7, 5, 3, 1])]),
    "mask_concat_branches": Case(
        "a, b ids (6,) with different paddings, f (6, 2) float. xa = LSTM(3, "
        "seq)(Embedding(10, 3, mask_zero)(a)), xb = Embedding(10, 2, "
        "mask_zero)(b). Outputs: GRU(2)(Concatenate()([xa, xb])) (two "
        "masked branches, axis -1); SimpleRNN(2)(Concatenate(axis=1)([xa, "
        "Dense(3)(xb)])) (time axis); GRU(2)(Concatenate()([xa, f])) (masked "
        "+ unmasked)",
        build_mask_concat_branches,
        [padded_ids(10, 6, [6, 3, 2, 4]), padded_ids(10, 6, [4, 6, 5, 1]),
         floats(4, 6, 2)],
        ("Concatenate's output mask differs between the libraries: tf_keras "
         "ANDs the input masks (axis -1: all() over the concatenated "
         "[b, T, 1] masks; an unmasked input counts as all True), Keras 3 "
         "ORs them (any()), so outputs 0 and 2 differ; axis=1 concatenates "
         "the masks along time in both",)),
    "mask_merge_add": Case(
        "a, b ids (6,) with different paddings, f (6, 3) float; xa, xb = "
        "Embedding(10, 3, mask_zero)(a), (b) (two Embeddings). 10 outputs: "
        "0 GRU(2)(Add()([xa, xb])); 1 GRU(2)(Multiply()([xa, f])) (masked * "
        "unmasked); 2 SimpleRNN(2)(Average()([xa, xb, Dense(3)(f)])); "
        "3 GRU(2)(Subtract()([xa, xb])); 4 Multiply()([xa, xb]) and 5 GRU(2) "
        "of it; 6 Maximum()([xa, xb]) and 7 GRU(2) of it; 8 Minimum()([xa, "
        "f]) and 9 GRU(2) of it",
        build_mask_merge_add,
        [padded_ids(10, 6, [6, 3, 2, 4]), padded_ids(10, 6, [4, 6, 5, 1]),
         floats(4, 6, 3)],
        ("merge layers and masks differ between the libraries. tf_keras: "
         "the values are the plain op; the output mask is the AND of the "
         "input masks that are not None (None if all are None). Keras 3: "
         "Add/Subtract/Average are the plain op; Multiply first replaces "
         "each masked input's masked entries by 1 and, when every input "
         "has a mask, zeroes the product where no input is unmasked; "
         "Maximum/Minimum fold pairwise with "
         "_apply_merge_op_and_or_mask (see the README); the output mask is "
         "the OR of the input masks, but None as soon as one input has no "
         "mask",)),
    "mask_masking_layer": Case(
        "Input(6, 3) zero-padded rows (one interior all-zero step) -> "
        "Masking(0.0) = m; s = LSTM(3, seq)(m), r = SimpleRNN(3, seq)(m); "
        "outputs [GRU(2)(Add()([s, r])), TimeDistributed(Dense(2))(s)]",
        build_mask_masking_layer,
        [padded_floats(6, 3, [6, 4, 2], hole=(0, 2))]),
    "mask_explicit_input": Case(
        "x (6, 3) float and m (6,) bool inputs; s = LSTM(3, seq)(x, mask=m); "
        "outputs [GRU(2)(s) (the mask propagates from s), "
        "SimpleRNN(2)(x, mask=m), s]",
        build_mask_explicit_input,
        [floats(3, 6, 3), bool_mask(6, [6, 4, 2], hole=(0, 1))],
        ("an explicit call kwarg mask=<tensor>: tf_keras puts it in the 4th "
         "element of the inbound-node entry as [layer, node, tensor]; "
         "Keras 3 in kwargs.mask as a __keras_tensor__",)),
    "nested_sequential": Case(
        "Model(inputs=[x], outputs=[y]) (lists of one): x (5, 3) -> two "
        "nested Sequentials: [LSTM(3, seq), GRU(2)] built with an input "
        "shape (tf_keras input_shape=, Keras 3 Input) and [SimpleRNN(2, "
        "seq), LSTM(2)] without (built when called) -> Concatenate -> "
        "Dense(2, softmax)",
        build_nested_sequential, [floats(3, 5, 3)]),
    "nested_functional": Case(
        "inner = Model(Input(5, 3), Dense(2)(GRU(3)(i))) applied to two "
        "inputs a, b (a shared nested model); outputs [Dense(1)("
        "Concatenate()([inner(a), inner(b)])), inner(b)]",
        build_nested_functional, [floats(3, 5, 3), floats(3, 5, 3)]),
    "nested_deep": Case(
        "Three levels: innermost = Model(i0, [LSTM(3, seq)(i0) = s0, "
        "LSTM(2)(s0)]) (two outputs); middle = Model(i1, Add()([last, "
        "Sequential([GRU(2), Dense(2)])(seq)])) where seq, last = "
        "innermost(i1); outer = Model(x, Dense(2, tanh)(middle(x)))",
        build_nested_deep, [floats(3, 5, 3)]),
    "shared_across_nesting": Case(
        "proj = Dense(2) is used inside inner = Model(i, proj(GRU(3)(i))) "
        "AND directly by the outer model: Add()([inner(a), "
        "proj(LSTM(3)(b))]); a, b (5, 3)",
        build_shared_across_nesting, [floats(3, 5, 3), floats(3, 5, 3)],
        ("a layer shared between the outer model and a nested model cannot "
         "be expressed by the config: the outer `layers` and the nested "
         "model's `layers` each hold a full `dense` entry, so loading makes "
         "two separate Dense layers. The .keras weights file stores the "
         "shared layer's variables once, under the first container that "
         "reaches it (layers/functional/layers/dense), and nothing for the "
         "outer `dense`; legacy .h5 stores them twice (in the nested model's "
         "group and in /model_weights/dense)",)),
    "branch_bidirectional": Case(
        "Input(5, 3) -> Bidirectional(GRU(3, seq)) (concat, 6) and "
        "SimpleRNN(6, seq) -> Add",
        build_branch_bidirectional, [floats(3, 5, 3)]),
    "stateful_lstm": Case(
        "Input(batch_shape=(2, 4, 3)) -> LSTM(3, stateful=True, "
        "return_sequences=True, return_state=True) -> (s, h, c); outputs "
        "[Dense(2)(s), h, c]. `expected` is the first predict after "
        "reset_states (zero state); `second_predict` a second predict on "
        "the same input (state carried over)",
        build_stateful_lstm, [floats(2, 4, 3)], (), True),
    "return_state_outputs": Case(
        "Input(5, 3); every return_state tensor is a model output: "
        "LSTM(3, return_state) -> out, h, c; GRU(2, seq, return_state) -> "
        "seq, h; SimpleRNN(2, return_state) -> out, h; "
        "Bidirectional(LSTM(2, return_state)) -> out, fh, fc, bh, bc; "
        "Bidirectional(GRU(2, seq, return_state), sum) -> seq, fh, bh "
        "(15 outputs)",
        build_return_state_outputs, [floats(3, 5, 3)]),
    "custom_names": Case(
        "Explicit names: Model(name='my_net'), Input(name='tokens', int32 "
        "(5,)), Input(name='features', (5, 2)); Embedding(8, 3, "
        "name='frozen_embedding', trainable=False) -> LSTM(3, "
        "name='aa_lstm'); GRU(2, name='zz_gru'); Concatenate(name='join') "
        "-> Dense(2, softmax, name='head'). Layers are created in the "
        "order head, join, zz_gru, aa_lstm, frozen_embedding",
        build_custom_names, [padded_ids(8, 5, [5, 3, 1]), floats(3, 5, 2)],
        ("the frozen Embedding gives 24 non-trainable params",)),
    "dict_io": Case(
        "Model(inputs={'left': Input(5, 3, name='left'), 'right': "
        "Input(4, 3, name='right')}, outputs={'score': Dense(1, "
        "name='score')(h), 'feat': Dense(2, name='feat')(h)}) with "
        "h = Concatenate()([LSTM(2, name='enc_left')(left), GRU(2, "
        "name='enc_right')(right)]). `inputs` / `expected` are listed in "
        "the model's flat order (model.inputs / model.outputs)",
        build_dict_io, [floats(3, 5, 3), floats(3, 4, 3)]),
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
    arr = np.asarray(arr).astype(np.float32)
    return arr.astype(np.float64).ravel().tolist()


def tensor(arr):
    arr = np.asarray(arr)
    return {"shape": list(arr.shape), "data": f32_list(arr)}


def capture_summary(model):
    chunks = []
    model.summary(print_fn=lambda line, *a, **k: chunks.append(str(line)))
    return "\n".join(c.rstrip("\n") for c in chunks)


def input_names(model, v):
    if v == "tf":
        return list(model.input_names)
    return [t._keras_history.operation.name for t in model.inputs]


def feed(model, v, xs):
    """The model's input structure filled with xs (model.inputs order)."""
    if isinstance(model._nested_inputs if v == "tf" else model._inputs_struct,
                  dict):
        names = input_names(model, v)
        return dict(zip(names, xs))
    return xs[0] if len(xs) == 1 else list(xs)


def flat_outputs(model, v, y):
    """Model outputs as a list in model.outputs order."""
    if isinstance(y, dict):
        return [np.asarray(y[n]) for n in model.output_names]
    if isinstance(y, (list, tuple)):
        return [np.asarray(t) for t in y]
    return [np.asarray(y)]


def predict(model, v, xs):
    y = model.predict(feed(model, v, xs), verbose=0, batch_size=len(xs[0]))
    return flat_outputs(model, v, y)


def max_diff(ys, zs):
    return max(float(np.max(np.abs(a - b))) if a.size else 0.0
               for a, b in zip(ys, zs))


def reset_states(model):
    """Zero the states of stateful RNNs (tf_keras: RNN.reset_states;
    Keras 3: RNN.reset_state)."""
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            if hasattr(layer, "reset_state"):
                layer.reset_state()
            else:
                layer.reset_states()


def layer_list(model):
    out = []
    for layer in model.layers:
        entry = {"name": layer.name, "class": type(layer).__name__}
        if hasattr(layer, "layers") and isinstance(
                layer, (tf_keras.Model, keras.Model)):
            entry["layers"] = layer_list(layer)
        out.append(entry)
    return out


def weight_info(model, v):
    if v == "tf":
        return [{"name": w.name, "shape": list(w.shape)} for w in model.weights]
    return [{"path": w.path, "name": w.name, "shape": list(w.shape)}
            for w in model.weights]


def params(model):
    def count(ws):
        return int(sum(int(np.prod(w.shape)) for w in ws))
    return {"total": int(model.count_params()),
            "trainable": count(model.trainable_weights),
            "non_trainable": count(model.non_trainable_weights)}


def load(v, path):
    K = LIBS[v]
    fresh(K)
    return K.models.load_model(str(path), compile=False)


def short_error(exc):
    """`Type: first informative line` of an exception."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
             for line in str(exc).strip().split("\n")]
    lines = [line for line in lines if line]
    text = lines[0] if lines else ""
    if text.startswith("Exception encountered when calling") and len(lines) > 1:
        text = text + " " + lines[1]
    text = text.replace(str(ROOT) + "/", "")
    text = re.sub(r" at 0x[0-9a-f]+", "", text)
    if len(text) > 400:
        text = text[:397] + "..."
    return f"{type(exc).__name__}: {text}"


def save_all(v, model, name):
    """Save `model` (built with library v) in every format of that library.
    Returns {filename: None | "why it failed"}."""
    results = {}
    if v == "tf":
        targets = [(f"{name}.tf.keras", model.save),
                   (f"{name}.tf.h5", model.save)]
    else:
        targets = [(f"{name}.k3.keras", model.save),
                   (f"{name}.k3.h5", model.save),
                   (f"{name}.k3.weights.h5", model.save_weights)]
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


def read_keras_config(path):
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json"))


def read_h5_config(path):
    with h5py.File(path, "r") as f:
        val = f.attrs["model_config"]
    return json.loads(val.decode() if isinstance(val, bytes) else val)


def graph_summary(model_cfg):
    """Compact view of a Functional config: entries in `layers` order
    (name, class_name, module, number of inbound nodes, nested graph),
    input_layers, output_layers."""
    cfg = model_cfg["config"]
    entries = []
    for entry in cfg["layers"]:
        e = {"name": entry.get("name", entry["config"].get("name")),
             "class_name": entry["class_name"],
             "module": entry.get("module"),
             "inbound_nodes": (len(entry["inbound_nodes"])
                               if "inbound_nodes" in entry else None)}
        if entry["class_name"] in ("Functional", "Sequential"):
            e["nested"] = graph_summary(entry)
        entries.append(e)
    out = {"class_name": model_cfg["class_name"], "name": cfg.get("name"),
           "layers": entries}
    for key in ("input_layers", "output_layers"):
        if key in cfg:
            out[key] = cfg[key]
    return out


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

    # Weights: generated once, in tf_keras's get_weights order (Keras 3's
    # when tf_keras could not build); both versions must agree on shapes.
    ref = models.get("tf") or models["k3"]
    weights = [rng.uniform(-0.6, 0.6, size=w.shape).astype(np.float32)
               for w in ref.get_weights()]
    for v, model in list(models.items()):
        shapes = [tuple(w.shape) for w in model.get_weights()]
        if shapes != [w.shape for w in weights]:
            skipped[VERSION_KEY[v]] = (
                f"builds weight shapes {shapes} instead of "
                f"{[w.shape for w in weights]}")
            del models[v]
            continue
        model.set_weights(weights)
    xs = [make(rng) for make in case.inputs]

    outputs, second, summaries, prm, wnames, files = {}, {}, {}, {}, {}, {}
    layers, in_names, out_names, predict_err = {}, {}, {}, {}
    for v, model in list(models.items()):
        key = VERSION_KEY[v]
        if case.stateful:
            reset_states(model)
        try:
            outputs[key] = predict(model, v, xs)
        except Exception as exc:  # noqa: BLE001
            skipped[key] = "predict failed: " + short_error(exc)
            del models[v]
            continue
        if case.stateful:
            second[key] = predict(model, v, xs)
            reset_states(model)
        summaries[key] = capture_summary(model)
        prm[key] = params(model)
        wnames[key] = weight_info(model, v)
        layers[key] = layer_list(model)
        in_names[key] = input_names(model, v)
        out_names[key] = list(model.output_names)
        files.update(save_all(v, model, name))

    # Reload every file with the library that wrote it.
    # A file its writer cannot load back is kept when its weights load
    # into a freshly built model and reproduce the outputs exactly
    # (recorded under "reload_failures"); otherwise it is deleted.
    reload_check, reload_failures = {}, {}
    for fname, err in list(files.items()):
        if err is not None or fname.endswith(".weights.h5"):
            continue
        v = fname.split(".")[-2]
        try:
            model = load(v, OUT_DIR / fname)
        except Exception as exc:  # noqa: BLE001
            why = short_error(exc)
            model = build_version(v, case)
            model.load_weights(str(OUT_DIR / fname))
            if case.stateful:
                reset_states(model)
            diff = max_diff(predict(model, v, xs), outputs[VERSION_KEY[v]])
            if diff != 0.0:
                (OUT_DIR / fname).unlink()
                files[fname] = (f"saved, but load_model fails ({why}) and "
                                f"its weights give max abs diff {diff}")
                continue
            reload_failures[fname] = (
                f"load_model fails: {why}; kept because load_weights of this "
                "file into a freshly built model reproduces the outputs "
                "exactly")
            reload_check[fname] = diff
            continue
        if case.stateful:
            reset_states(model)
        ys = predict(model, v, xs)
        diff = max_diff(ys, outputs[VERSION_KEY[v]])
        reload_check[fname] = diff
        assert diff == 0.0, (fname, diff)
        assert input_names(model, v) == in_names[VERSION_KEY[v]], fname
        assert list(model.output_names) == out_names[VERSION_KEY[v]], fname
    wfile = f"{name}.k3.weights.h5"
    if files.get(wfile, "missing") is None:
        model = build_version("k3", case)
        model.load_weights(str(OUT_DIR / wfile))
        if case.stateful:
            reset_states(model)
        diff = max_diff(predict(model, "k3", xs), outputs["keras3"])
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
            if case.stateful:
                reset_states(model)
            ys = predict(model, other, xs)
            want = outputs.get(VERSION_KEY[other])
            if want is None:
                cross[label] = "loaded"
            else:
                cross[label] = (f"ok, max abs diff vs its own expected "
                                f"{max_diff(ys, want):.3g}")
        except Exception as exc:  # noqa: BLE001
            cross[label] = "fails: " + short_error(exc)

    # The graph as each dialect serialized it (from the .keras file).
    graph = {}
    for v in models:
        path = OUT_DIR / f"{name}.{v}.keras"
        if path.exists():
            graph[VERSION_KEY[v]] = graph_summary(read_keras_config(path))

    notes = list(case.notes)
    if "tf_keras" in outputs and "keras3" in outputs:
        diffs = [float(np.max(np.abs(a - b))) if a.size else 0.0
                 for a, b in zip(outputs["tf_keras"], outputs["keras3"])]
        if max(diffs) > 1e-5:
            notes.append(
                "tf_keras and keras3 outputs differ (max abs diff per output "
                f"{[float(f'{d:.3g}') for d in diffs]}); each version's "
                "files must reproduce its own expected outputs")
    else:
        diffs = None

    ref_key = "tf_keras" if "tf_keras" in in_names else "keras3"
    inputs = []
    for i, x in enumerate(xs):
        dtype = str(x.dtype)
        entry = {"names": {k: in_names[k][i] for k in in_names},
                 "shape": list(x.shape), "dtype": dtype}
        if dtype == "float32":
            entry["data"] = f32_list(x)
        else:
            entry["data"] = x.ravel().tolist()
        inputs.append(entry)

    payload.update({
        "inputs": inputs,
        "input_names": in_names,
        "output_names": out_names,
        "expected": {k: [tensor(o) for o in outs]
                     for k, outs in outputs.items()},
        "max_abs_diff_tf_keras_vs_keras3": diffs,
        "params": prm,
        "summary": summaries,
        "layers": layers,
        "weight_names": wnames,
        "weights": [tensor(w) | {"name": n["name"]} for w, n in
                    zip(weights, wnames.get(ref_key, []))],
        "graph": graph,
        "files": sorted(f for f, e in files.items() if e is None)
        + [f"{name}.json"],
        "skipped": {**skipped, **{f: e for f, e in files.items() if e}},
        "reload_check_max_abs_diff": reload_check,
        "reload_failures": reload_failures,
        "cross_load": cross,
        "notes": notes,
    })
    if case.stateful:
        payload["second_predict"] = {k: [tensor(o) for o in outs]
                                     for k, outs in second.items()}
        payload["notes"].append(
            "stateful: predict() does not reset states in either version; "
            "reset_states() was called before the recorded first predict")
    with open(OUT_DIR / f"{name}.json", "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    return payload


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


def dump_graph(cfg, indent=""):
    """One line per config entry with its inbound nodes, recursively."""
    c = cfg["config"]
    print(f"{indent}{cfg['class_name']} {c.get('name')!r}")
    for entry in c.get("layers", []):
        nodes = json.dumps(entry.get("inbound_nodes", None))
        print(f"{indent}  [{entry.get('module')}] {entry['class_name']} "
              f"{entry.get('name', entry['config'].get('name'))!r} "
              f"inbound_nodes={nodes}")
        if entry["class_name"] in ("Functional", "Sequential"):
            dump_graph(entry, indent + "    ")
    for key in ("input_layers", "output_layers"):
        if key in c:
            print(f"{indent}  {key}={json.dumps(c[key])}")


def dump(path, full=False):
    path = Path(path)
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as z:
            print(f"== {path.name}: zip members")
            for i in z.infolist():
                print(f"  {i.filename:20s} compress_type={i.compress_type} "
                      f"size={i.file_size} date_time={i.date_time}")
            print("== metadata.json")
            print(z.read("metadata.json").decode())
            cfg = json.loads(z.read("config.json"))
            print("== config.json graph")
            dump_graph(cfg)
            if full:
                print("== config.json")
                print(json.dumps(cfg, indent=1))
            print("== model.weights.h5")
            print(dump_h5(io.BytesIO(z.read("model.weights.h5"))))
    else:
        print(f"== {path.name}")
        print(dump_h5(str(path)))
        with h5py.File(str(path), "r") as f:
            if "model_config" in f.attrs:
                val = f.attrs["model_config"]
                cfg = json.loads(val.decode() if isinstance(val, bytes)
                                 else val)
                print("== attr model_config graph")
                dump_graph(cfg)
                if full:
                    print("== attr model_config")
                    print(json.dumps(cfg, indent=1))


# --------------------------------------------------------------------------
# Format checks (--check; also run after a full generation): the rules the
# README states, verified on every file written here. Prints the observed
# key sets, kwargs and argument forms per dialect.
# --------------------------------------------------------------------------

def snake(name):
    """Keras's to_snake_case, as used for the .keras weight group names."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name


def _is_kt(obj):
    return isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"


def _walk_kts(obj, path=""):
    """Yield (path, keras_history) of every __keras_tensor__ in obj."""
    if _is_kt(obj):
        yield path, obj["config"]["keras_history"]
    elif isinstance(obj, dict):
        for k, val in obj.items():
            yield from _walk_kts(val, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, val in enumerate(obj):
            yield from _walk_kts(val, f"{path}[{i}]")


def _leaves(struct):
    """[name, node, tensor] leaves of input_layers / output_layers."""
    if (isinstance(struct, list) and len(struct) == 3
            and isinstance(struct[0], str)):
        return [struct]
    if isinstance(struct, dict):
        return [x for val in struct.values() for x in _leaves(val)]
    return [x for val in struct for x in _leaves(val)]


def _struct_kind(struct):
    if (isinstance(struct, list) and len(struct) == 3
            and isinstance(struct[0], str)):
        return "flat [name, node, tensor]"
    if isinstance(struct, dict):
        return "dict of [name, node, tensor]"
    return "list of [name, node, tensor]"


def check_graph(cfg, dialect, facts, where):
    """Check one Functional config (recursively) and collect facts."""
    c = cfg["config"]
    entries = {e["name"]: e for e in c["layers"]}
    assert len(entries) == len(c["layers"]), (where, "duplicate names")
    facts["model_config_keys"].add(tuple(sorted(c)))
    facts["input_layers_forms"].add(_struct_kind(c["input_layers"]))
    facts["output_layers_forms"].add(_struct_kind(c["output_layers"]))

    def offset(entry, for_io):
        if dialect == "tf_keras":
            if entry["class_name"] in ("Functional", "Sequential"):
                first = entry["config"]["layers"][0]
                assert first["class_name"] == "InputLayer", where
                return 1
            return 0
        if for_io and entry["class_name"] == "Functional":
            return 1
        return 0

    position = {e["name"]: i for i, e in enumerate(c["layers"])}

    def resolve(ref, for_io, what, at=None):
        name, node, tensor_index = ref[:3]
        assert name in entries, (where, what, ref)
        # every reference points to an EARLIER entry of `layers`
        assert at is None or position[name] < at, (where, what, ref)
        entry = entries[name]
        assert isinstance(tensor_index, int) and tensor_index >= 0
        if entry["class_name"] == "InputLayer":
            assert node == 0 and tensor_index == 0, (where, what, ref)
            return
        k = node - offset(entry, for_io)
        assert 0 <= k < len(entry["inbound_nodes"]), (where, what, ref)

    for e in c["layers"]:
        facts["entry_keys"].add(tuple(sorted(e)))
        if e["class_name"] == "InputLayer":
            assert e["inbound_nodes"] == [], (where, e["name"])
            facts["input_layer_config_keys"].add(tuple(sorted(e["config"])))
        else:
            assert e["inbound_nodes"], (where, e["name"], "no nodes")
        if e.get("module") not in (None, "keras.layers"):
            facts["modules"].add((e["module"], e["class_name"]))
        if "module" in e:
            assert (e["module"] == "keras.src.ops.numpy") == _is_op_entry(e), \
                (where, e["name"])
        if _is_op_entry(e):
            facts["op_config_keys"].add(
                (e["class_name"], tuple(sorted(e["config"]))))
        if e["class_name"] != "InputLayer" and (
                "batch_input_shape" in e["config"]):
            facts["batch_input_shape_outside_InputLayer"].add(
                (e["class_name"], json.dumps(e["config"]["batch_input_shape"])))
        for node in e["inbound_nodes"]:
            if dialect == "tf_keras":
                assert isinstance(node, list), (where, e["name"])
                for ref in node:
                    assert len(ref) == 4 and isinstance(ref[3], dict), ref
                    resolve(ref, False, e["name"], position[e["name"]])
                    for k, val in ref[3].items():
                        facts["tf_kwargs"].add((e["class_name"], k))
                        resolve(val, False, f"{e['name']} kwargs {k}",
                                position[e["name"]])
                facts["tf_node_arity"].add((e["class_name"], len(node)))
            else:
                assert sorted(node) == ["args", "kwargs"], (where, node)
                args, kwargs = node["args"], node["kwargs"]
                form = []
                for a in args:
                    if _is_kt(a):
                        form.append("tensor")
                    elif isinstance(a, list) and all(_is_kt(x) for x in a):
                        form.append(f"[tensor x{len(a)}]")
                    else:
                        form.append(f"literal {json.dumps(a)}")
                facts["k3_args"].add((e["class_name"], tuple(form)))
                for k, val in kwargs.items():
                    kind = ("null" if val is None else
                            "tensor" if _is_kt(val) else
                            f"[tensor x{len(val)}]" if isinstance(val, list)
                            else json.dumps(val))
                    facts["k3_kwargs"].add((e["class_name"], k, kind))
                for path, hist in _walk_kts(node):
                    resolve(hist, False, f"{e['name']} {path}",
                            position[e["name"]])
                for path, kt in _walk_kts_objs(node):
                    facts["k3_tensor_config_keys"].add(tuple(sorted(kt)))
        if e["class_name"] == "Functional":
            check_graph(e, dialect, facts, f"{where} > {e['name']}")
        if e["class_name"] == "Sequential":
            facts["nested_sequential_first"].add(
                e["config"]["layers"][0]["class_name"])
    for ref in _leaves(c["input_layers"]):
        resolve(ref, True, "input_layers")
        assert entries[ref[0]]["class_name"] == "InputLayer"
    for ref in _leaves(c["output_layers"]):
        resolve(ref, True, "output_layers")


def _walk_kts_objs(obj, path=""):
    if _is_kt(obj):
        yield path, obj["config"]
    elif isinstance(obj, dict):
        for k, val in obj.items():
            yield from _walk_kts_objs(val, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, val in enumerate(obj):
            yield from _walk_kts_objs(val, f"{path}[{i}]")


def expected_keras_groups(layer_list_, container_class, seen,
                          prefix="layers"):
    """The .keras weight groups of a container's layers, from the case
    JSON's `layers` (model.layers order): [(group path, layer entry)], in
    save order. The group is `to_snake_case(class)` plus `_<n>` for the
    n-th repeat of a class within one container; a Sequential's InputLayer
    is not in its `layers`; a layer already reached earlier (a layer
    shared across nesting levels) gets no group (but still uses up its
    class counter)."""
    out, used = [], {}
    for entry in layer_list_:
        if container_class == "Sequential" and entry["class"] == "InputLayer":
            continue
        g = snake(entry["class"])
        if g in used:
            used[g] += 1
            g = f"{g}_{used[g]}"
        else:
            used[g] = 0
        if entry["name"] in seen:
            continue
        seen.add(entry["name"])
        path = f"{prefix}/{g}"
        out.append((path, entry))
        if "layers" in entry:
            out.extend(expected_keras_groups(entry["layers"], entry["class"],
                                             seen, path + "/layers"))
    return out


# Order of a layer's own datasets in get_weights order: its vars/<i>, then
# the sublayers (RNN cell, Bidirectional halves, TimeDistributed layer).
_SUBGROUP_ORDER = {"vars": 0, "cell": 1, "forward_layer": 2,
                   "backward_layer": 3, "layer": 4}


def check_layer_order(cfg, layer_list_, where):
    """A Functional config's `layers`, without Keras 3's op entries, are
    model.layers in order (names); recursively for nested models (a nested
    Sequential's config also lists its InputLayer, model.layers not)."""
    c = cfg["config"]
    entries = [e for e in c["layers"]
               if e.get("module") != "keras.src.ops.numpy"
               and not _is_op_entry(e)]
    names = [e.get("name", e["config"].get("name")) for e in entries]
    if cfg["class_name"] == "Sequential":
        assert entries[0]["class_name"] == "InputLayer", where
        names = names[1:]
    assert names == [x["name"] for x in layer_list_], (where, names)
    by_name = {x["name"]: x for x in layer_list_}
    for e, n in zip(entries[1:] if cfg["class_name"] == "Sequential"
                    else entries, names):
        if "layers" in by_name[n]:
            check_layer_order(e, by_name[n]["layers"], f"{where} > {n}")


def _is_op_entry(e):
    """A Keras 3 op entry also in a legacy .h5 model_config (no `module`
    there): its config lacks the `trainable` / `dtype` every layer has."""
    return (e["class_name"] not in ("InputLayer", "Sequential", "Functional")
            and "trainable" not in e["config"])


def check_keras_weights(path, case):
    """The weights file has exactly the expected groups, and reading the
    datasets group by group in that order gives get_weights()."""
    dialect = "tf_keras" if ".tf." in path.name else "keras3"
    want = expected_keras_groups(case["layers"][dialect], "Functional", set())
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as z:
            data = io.BytesIO(z.read("model.weights.h5"))
    else:
        data = str(path)
    arrays = []
    with h5py.File(data, "r") as f:
        assert sorted(f.keys()) == ["layers", "vars"], path.name
        assert len(f["vars"]) == 0, path.name
        containers = {"layers"} | {p + "/layers" for p, e in want
                                   if "layers" in e}
        for c in containers:
            have = sorted(c + "/" + k for k in f[c].keys())
            expect = sorted(p for p, _ in want if p.rsplit("/", 1)[0] == c)
            assert have == expect, (path.name, have, expect)
        for p, entry in want:
            if "layers" in entry:     # a nested model: its layers follow
                assert sorted(f[p].keys()) == ["layers", "vars"], p
                assert len(f[p]["vars"]) == 0, p
                continue
            names = []
            f[p].visititems(lambda n, o: names.append(n)
                            if isinstance(o, h5py.Dataset) else None)

            def key(n):
                return [(_SUBGROUP_ORDER.get(x, 9), int(x) if x.isdigit()
                         else x) for x in n.split("/")]
            for n in sorted(names, key=key):
                assert re.fullmatch(r"((cell|forward_layer|backward_layer|"
                                    r"layer)/)*(cell/)?vars/\d+", n), (p, n)
                arrays.append(np.asarray(f[p][n]))
    weights = [np.asarray(w["data"], np.float32).reshape(w["shape"])
               for w in case["weights"]]
    assert len(arrays) == len(weights), (path.name, len(arrays), len(weights))
    for a, w in zip(arrays, weights):
        assert a.shape == w.shape and np.array_equal(a, w), path.name


def check_legacy_h5(path, case, facts):
    dialect = "tf_keras" if ".tf." in path.name else "keras3"
    top_names = [e["name"] for e in case["layers"][dialect]]
    arrays, seen = [], set()
    with h5py.File(str(path), "r") as f:
        mw = f["model_weights"]
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in mw.attrs["layer_names"]]
        assert names == top_names, (path.name, names, top_names)
        assert set(mw.keys()) == set(names) | {"top_level_model_weights"}
        for n in names:
            wn = [w.decode() if isinstance(w, bytes) else w
                  for w in mw[n].attrs["weight_names"]]
            for w in wn:
                facts["legacy_weight_names"].add((dialect, n, w))
                if w in seen:       # the same variable saved twice
                    continue
                seen.add(w)
                arrays.append(np.asarray(mw[n][w]))
    weights = [np.asarray(w["data"], np.float32).reshape(w["shape"])
               for w in case["weights"]]
    assert len(arrays) == len(weights), (path.name, len(arrays), len(weights))
    for a, w in zip(arrays, weights):
        assert a.shape == w.shape and np.array_equal(a, w), path.name


def check_mask_semantics():
    """Recompute the masked merge outputs from the README's formulas (numpy
    for the merges, the loaded model's own RNN layers called with an
    explicit mask) and compare with the recorded outputs of each library."""
    def case_data(name):
        case = json.loads((OUT_DIR / f"{name}.json").read_text("utf-8"))
        xs = [np.asarray(i["data"], i["dtype"]).reshape(i["shape"])
              for i in case["inputs"]]
        return case, xs

    worst = 0.0
    for v in ("tf", "k3"):
        key = VERSION_KEY[v]
        # mask_merge_add
        case, xs = case_data("mask_merge_add")
        m = load(v, OUT_DIR / f"mask_merge_add.{v}.keras")
        L = {layer.name: layer for layer in m.layers}
        ma, mb = xs[0] != 0, xs[1] != 0
        A, B = ma[..., None], mb[..., None]
        xa = np.asarray(L["embedding"](xs[0]))
        xb = np.asarray(L["embedding_1"](xs[1]))
        f = xs[2]
        dn = np.asarray(L["dense"](f))
        if v == "tf":     # plain ops; mask = AND of the non-None masks
            got = [L["gru"](xa + xb, mask=ma & mb),
                   L["gru_1"](xa * f, mask=ma),
                   L["simple_rnn"]((xa + xb + dn) / 3, mask=ma & mb),
                   L["gru_2"](xa - xb, mask=ma & mb),
                   xa * xb, L["gru_3"](xa * xb, mask=ma & mb),
                   np.maximum(xa, xb),
                   L["gru_4"](np.maximum(xa, xb), mask=ma & mb),
                   np.minimum(xa, f), L["gru_5"](np.minimum(xa, f), mask=ma)]
        else:             # Keras 3: masked values rewritten; mask = OR or None
            mul = np.where(A | B, np.where(A, xa, 1) * np.where(B, xb, 1), 0)
            x = np.where(B, xb, xa)
            mx = np.maximum(np.where(A, xa, x), x)
            mn = np.minimum(np.where(A, xa, f), f)
            got = [L["gru"](xa + xb, mask=ma | mb),
                   L["gru_1"](np.where(A, xa, 1) * f),
                   L["simple_rnn"]((xa + xb + dn) / 3),
                   L["gru_2"](xa - xb, mask=ma | mb),
                   mul, L["gru_3"](mul, mask=ma | mb),
                   mx, L["gru_4"](mx, mask=ma | mb),
                   mn, L["gru_5"](mn)]
        want = [np.asarray(t["data"]).reshape(t["shape"])
                for t in case["expected"][key]]
        for i, (a, b) in enumerate(zip(got, want)):
            d = float(np.max(np.abs(np.asarray(a) - b)))
            assert d < 1e-6, ("mask_merge_add", v, i, d)
            worst = max(worst, d)
        # mask_concat_branches
        case, xs = case_data("mask_concat_branches")
        m = load(v, OUT_DIR / f"mask_concat_branches.{v}.keras")
        L = {layer.name: layer for layer in m.layers}
        ma, mb = xs[0] != 0, xs[1] != 0
        s = np.asarray(L["lstm"](L["embedding"](xs[0]), mask=ma))
        eb = np.asarray(L["embedding_1"](xs[1]))
        both = np.concatenate([s, eb], -1)
        time = np.concatenate([s, np.asarray(L["dense"](eb))], 1)
        tmask = np.concatenate([ma, mb], 1)
        mixed = np.concatenate([s, xs[2]], -1)
        if v == "tf":     # all() over the concatenated masks
            got = [L["gru"](both, mask=ma & mb),
                   L["simple_rnn"](time, mask=tmask),
                   L["gru_1"](mixed, mask=ma)]
        else:             # any()
            got = [L["gru"](both, mask=ma | mb),
                   L["simple_rnn"](time, mask=tmask),
                   L["gru_1"](mixed, mask=np.ones_like(ma))]
        want = [np.asarray(t["data"]).reshape(t["shape"])
                for t in case["expected"][key]]
        for i, (a, b) in enumerate(zip(got, want)):
            d = float(np.max(np.abs(np.asarray(a) - b)))
            assert d < 1e-6, ("mask_concat_branches", v, i, d)
            worst = max(worst, d)
    print(f"mask semantics checks passed (max abs diff {worst:.3g})")


def check_formats(verbose=True):
    from collections import defaultdict
    facts = defaultdict(lambda: defaultdict(set))
    n_files = 0
    for jpath in sorted(OUT_DIR.glob("*.json")):
        case = json.loads(jpath.read_text(encoding="utf-8"))
        name = case["case"]
        for fname in case["files"]:
            path = OUT_DIR / fname
            if fname.endswith(".json"):
                continue
            n_files += 1
            dialect = "tf_keras" if ".tf." in fname else "keras3"
            fx = facts[dialect]
            if fname.endswith(".keras"):
                cfg = read_keras_config(path)
                fx["top_keys"].add(tuple(sorted(cfg)))
                fx["top_module"].add((cfg["module"], cfg["class_name"],
                                      cfg["registered_name"]))
                check_graph(cfg, dialect, fx, fname)
                check_layer_order(cfg, case["layers"][dialect], fname)
                check_keras_weights(path, case)
                # the graph recorded in the JSON is this file's
                assert graph_summary(cfg) == case["graph"][dialect], fname
            elif fname.endswith(".weights.h5"):
                check_keras_weights(path, case)
            else:
                cfg = read_h5_config(path)
                fx["h5_top_keys"].add(tuple(sorted(cfg)))
                check_graph(cfg, dialect, fx, fname)
                check_layer_order(cfg, case["layers"][dialect], fname)
                check_legacy_h5(path, case, fx)
                # model_config = config.json minus module/registered_name/
                # build_config/compile_config/shared_object_id on the model
                # and its graph entries
                keras_cfg = read_keras_config(
                    OUT_DIR / fname.replace(".h5", ".keras"))
                assert _strip_for_h5(keras_cfg) == _strip_ids(cfg), fname
    if verbose:
        for dialect, fx in facts.items():
            print(f"==== {dialect}")
            for key, vals in sorted(fx.items()):
                if key == "legacy_weight_names":
                    continue
                print(f"  {key}:")
                for val in sorted(vals, key=str):
                    print(f"    {val}")
    print(f"format checks passed on {n_files} model files")
    return facts


def _strip_ids(obj):
    if isinstance(obj, dict):
        return {k: _strip_ids(v) for k, v in obj.items()
                if k != "shared_object_id"}
    if isinstance(obj, list):
        return [_strip_ids(v) for v in obj]
    return obj


def _strip_for_h5(cfg):
    """What config.json becomes in a legacy .h5 model_config: the model and
    every entry of a Functional/Sequential `layers` list (recursively) lose
    module, registered_name, build_config, compile_config."""
    cfg = _strip_ids(cfg)

    def strip_entry(e):
        e = {k: v for k, v in e.items()
             if k not in ("module", "registered_name", "build_config",
                          "compile_config")}
        if e["class_name"] in ("Functional", "Sequential"):
            e["config"] = dict(e["config"])
            e["config"]["layers"] = [strip_entry(x)
                                     for x in e["config"]["layers"]]
        return e
    return strip_entry(cfg)


# --------------------------------------------------------------------------

def main():
    args = sys.argv[1:]
    if args == ["--check"]:
        check_formats()
        check_mask_semantics()
        return
    if args and args[0] in ("--dump", "--dump-full"):
        for p in args[1:]:
            dump(p, full=args[0] == "--dump-full")
        return
    unknown = [a for a in args if a not in CASES]
    if unknown:
        sys.exit(f"unknown case(s) {unknown}; cases: {list(CASES)}")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    if not args:
        for p in OUT_DIR.iterdir():
            if p.name == "README.md":
                continue
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
    for name, case in CASES.items():
        if args and name not in args:
            continue
        payload = make_case(name, case)
        diffs = payload["max_abs_diff_tf_keras_vs_keras3"]
        totals = {k: v["total"] for k, v in payload["params"].items()}
        print(f"{name:24s} params={totals} "
              f"tf-vs-k3={max(diffs) if diffs else None} "
              f"skipped={list(payload['skipped'])}", flush=True)
    if not args:
        check_formats(verbose=False)
        check_mask_semantics()
    total = sum(p.stat().st_size for p in OUT_DIR.rglob("*") if p.is_file())
    count = sum(1 for p in OUT_DIR.rglob("*") if p.is_file())
    print(f"{OUT_DIR.relative_to(ROOT)}: {count} files, {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
