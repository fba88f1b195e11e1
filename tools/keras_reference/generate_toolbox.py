#!/usr/bin/env python3
"""Generate Keras reference fixtures for the seqnn "toolbox" layers.

LSTM, GRU, Dense, Embedding, TimeDistributed, RepeatVector, Flatten,
Dropout, Activation, Masking, masking semantics and stateful RNNs.

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_toolbox.py

It (re)writes every file in tests/fixtures/toolbox/ except README.md:
  * one <case>.json per entry of SEQUENTIAL_CASES / LAYER_CALL_CASES /
    STATEFUL_CASES,
  * errors.json (exception types and messages for invalid uses).

After writing, every fixture is re-read from disk and checked against an
independent float64 NumPy implementation (see `check_fixture`); the maximum
absolute difference per case is printed and must stay below 1e-5.

The JSON schema and the helpers are the ones of generate_core.py (imported,
not copied); see tests/fixtures/toolbox/README.md for the additions.
Everything is deterministic: per-case numpy seeds derived from the case
name, keras.utils.set_random_seed(0) and keras.backend.clear_session()
before every model.
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from collections import namedtuple  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from tf_keras.layers import (  # noqa: E402
    GRU, LSTM, Activation, Bidirectional, Dense, Dropout, Embedding, Flatten,
    Masking, RepeatVector, SimpleRNN, TimeDistributed)

import generate_core  # noqa: E402
from generate_core import (  # noqa: E402
    VERSIONS, capture_summary, case_rng, fresh_session, json_default,
    layer_entry, random_weights, shape_list, tensor_entry, weight_entries)

tf.get_logger().setLevel("ERROR")

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "tests" / "fixtures" / "toolbox"
GENERATED_BY = "tools/keras_reference/generate_toolbox.py"
TOLERANCE = 1e-5


# The core generator's writers and layer-call procedure serve here too, writing into
# this script's folder under this script's name.
generate_core.OUT_DIR = OUT_DIR
generate_core.GENERATED_BY = GENERATED_BY
write_json = generate_core.write_json
header = generate_core.header
make_layer_call_fixture = generate_core.make_layer_call_fixture


# --------------------------------------------------------------------------
# Input makers: rng -> numpy array. Id inputs are int32 arrays (recorded with
# "input_dtype": "int32"); everything else is float32.
# --------------------------------------------------------------------------

def floats(*shape):
    return lambda rng: rng.uniform(-1, 1, size=shape).astype(np.float32)


def ids(vocab, *shape):
    """Ids uniform in [0, vocab) (no mask: 0 is an ordinary id)."""
    return lambda rng: rng.integers(0, vocab, size=shape).astype(np.int32)


def padded_ids(vocab, timesteps, rows):
    """rows: list of (length, side) with side 'right' (zeros at the end),
    'left' (zeros at the start) or an explicit list of 0/1 keep flags.
    Real tokens are in [1, vocab), padding is 0."""
    def make(rng):
        x = np.zeros((len(rows), timesteps), np.int32)
        for b, (length, side) in enumerate(rows):
            tokens = rng.integers(1, vocab, size=timesteps)
            if side == "right":
                keep = np.arange(timesteps) < length
            elif side == "left":
                keep = np.arange(timesteps) >= timesteps - length
            else:
                keep = np.asarray(side, bool)
                assert keep.sum() == length
            x[b] = np.where(keep, tokens, 0)
        return x
    return make


def padded_floats(timesteps, features, rows):
    """Float rows whose padded timesteps are exactly 0.0 (all features)."""
    def make(rng):
        x = rng.uniform(-1, 1, size=(len(rows), timesteps, features))
        for b, (length, side) in enumerate(rows):
            if side == "right":
                x[b, length:] = 0.0
            else:
                x[b, :timesteps - length] = 0.0
        return x.astype(np.float32)
    return make


def is_ids(x):
    return np.issubdtype(np.asarray(x).dtype, np.integer)


# --------------------------------------------------------------------------
# Case tables
# --------------------------------------------------------------------------
Case = namedtuple("Case", "description build make_x")

RIGHT = [(6, "right"), (4, "right"), (2, "right"), (1, "right")]
LEFT = [(6, "left"), (4, "left"), (2, "left"), (1, "left")]


def _emb15():
    return Embedding(15, 4, input_length=6, mask_zero=True)


SEQUENTIAL_CASES = {
    # -- LSTM -------------------------------------------------------------
    "lstm_last": Case(
        "LSTM(5, input_shape=(6,4)): last output",
        lambda: [LSTM(5, input_shape=(6, 4))],
        floats(4, 6, 4)),
    "lstm_sequences": Case(
        "LSTM(5, input_shape=(6,4), return_sequences=True)",
        lambda: [LSTM(5, input_shape=(6, 4), return_sequences=True)],
        floats(4, 6, 4)),
    "lstm_go_backwards": Case(
        "LSTM(5, input_shape=(6,4), go_backwards=True, return_sequences=True)"
        ": sequence in reversed-time order",
        lambda: [LSTM(5, input_shape=(6, 4), go_backwards=True,
                      return_sequences=True)],
        floats(4, 6, 4)),
    "lstm_no_unit_forget_bias": Case(
        "LSTM(5, input_shape=(6,4), unit_forget_bias=False): only changes the "
        "bias initializer; weights are overwritten anyway",
        lambda: [LSTM(5, input_shape=(6, 4), unit_forget_bias=False)],
        floats(4, 6, 4)),
    "lstm_activations": Case(
        "LSTM(5, input_shape=(6,4), activation='relu', "
        "recurrent_activation='hard_sigmoid', return_sequences=True)",
        lambda: [LSTM(5, input_shape=(6, 4), activation="relu",
                      recurrent_activation="hard_sigmoid",
                      return_sequences=True)],
        floats(4, 6, 4)),
    "lstm_no_bias": Case(
        "LSTM(5, input_shape=(6,4), use_bias=False, return_sequences=True): "
        "2 weights",
        lambda: [LSTM(5, input_shape=(6, 4), use_bias=False,
                      return_sequences=True)],
        floats(4, 6, 4)),
    "lstm_stacked": Case(
        "LSTM(5, return_sequences=True, input_shape=(6,4)) then LSTM(3)",
        lambda: [LSTM(5, return_sequences=True, input_shape=(6, 4)),
                 LSTM(3)],
        floats(4, 6, 4)),
    "lstm_bidirectional_concat": Case(
        "Bidirectional(LSTM(4, return_sequences=True), merge_mode='concat', "
        "input_shape=(5,3))",
        lambda: [Bidirectional(LSTM(4, return_sequences=True),
                               merge_mode="concat", input_shape=(5, 3))],
        floats(4, 5, 3)),
    "lstm_bidirectional_sum": Case(
        "Bidirectional(LSTM(4), merge_mode='sum', input_shape=(5,3)): last "
        "outputs summed",
        lambda: [Bidirectional(LSTM(4), merge_mode="sum",
                               input_shape=(5, 3))],
        floats(4, 5, 3)),
    # -- GRU --------------------------------------------------------------
    "gru_last": Case(
        "GRU(4, input_shape=(5,3)) (reset_after=True default, bias (2, 12))",
        lambda: [GRU(4, input_shape=(5, 3))],
        floats(4, 5, 3)),
    "gru_sequences": Case(
        "GRU(4, input_shape=(5,3), return_sequences=True)",
        lambda: [GRU(4, input_shape=(5, 3), return_sequences=True)],
        floats(4, 5, 3)),
    "gru_reset_before": Case(
        "GRU(4, input_shape=(5,3), reset_after=False): bias (12,)",
        lambda: [GRU(4, input_shape=(5, 3), reset_after=False)],
        floats(4, 5, 3)),
    "gru_reset_before_sequences": Case(
        "GRU(4, input_shape=(5,3), reset_after=False, return_sequences=True)",
        lambda: [GRU(4, input_shape=(5, 3), reset_after=False,
                     return_sequences=True)],
        floats(4, 5, 3)),
    "gru_go_backwards": Case(
        "GRU(4, input_shape=(5,3), go_backwards=True, return_sequences=True)",
        lambda: [GRU(4, input_shape=(5, 3), go_backwards=True,
                     return_sequences=True)],
        floats(4, 5, 3)),
    "gru_no_bias_after": Case(
        "GRU(4, input_shape=(5,3), use_bias=False, reset_after=True, "
        "return_sequences=True): 2 weights",
        lambda: [GRU(4, input_shape=(5, 3), use_bias=False, reset_after=True,
                     return_sequences=True)],
        floats(4, 5, 3)),
    "gru_no_bias_before": Case(
        "GRU(4, input_shape=(5,3), use_bias=False, reset_after=False, "
        "return_sequences=True): 2 weights",
        lambda: [GRU(4, input_shape=(5, 3), use_bias=False, reset_after=False,
                     return_sequences=True)],
        floats(4, 5, 3)),
    "gru_activations": Case(
        "GRU(4, input_shape=(5,3), activation='relu', "
        "recurrent_activation='hard_sigmoid', return_sequences=True)",
        lambda: [GRU(4, input_shape=(5, 3), activation="relu",
                     recurrent_activation="hard_sigmoid",
                     return_sequences=True)],
        floats(4, 5, 3)),
    "gru_bidirectional_ave": Case(
        "Bidirectional(GRU(4, return_sequences=True), merge_mode='ave', "
        "input_shape=(5,3))",
        lambda: [Bidirectional(GRU(4, return_sequences=True),
                               merge_mode="ave", input_shape=(5, 3))],
        floats(4, 5, 3)),
    "gru_stacked": Case(
        "GRU(5, return_sequences=True, input_shape=(5,3)) then "
        "GRU(3, reset_after=False)",
        lambda: [GRU(5, return_sequences=True, input_shape=(5, 3)),
                 GRU(3, reset_after=False)],
        floats(4, 5, 3)),
    # -- Dense / Embedding / others ---------------------------------------
    "dense_after_rnn": Case(
        "SimpleRNN(4, input_shape=(5,3)), Dense(2, activation='softmax')",
        lambda: [SimpleRNN(4, input_shape=(5, 3)),
                 Dense(2, activation="softmax")],
        floats(4, 5, 3)),
    "dense_3d": Case(
        "LSTM(4, return_sequences=True, input_shape=(5,3)), "
        "Dense(3, activation='relu'), Dense(2, use_bias=False): Dense on a "
        "3-D tensor (applied to the last axis)",
        lambda: [LSTM(4, return_sequences=True, input_shape=(5, 3)),
                 Dense(3, activation="relu"), Dense(2, use_bias=False)],
        floats(4, 5, 3)),
    "embedding_lstm": Case(
        "Embedding(20, 4, input_length=6), LSTM(5), "
        "Dense(1, activation='sigmoid'); int ids in [0, 20)",
        lambda: [Embedding(20, 4, input_length=6), LSTM(5),
                 Dense(1, activation="sigmoid")],
        ids(20, 4, 6)),
    "time_distributed": Case(
        "SimpleRNN(4, return_sequences=True, input_shape=(5,3)), "
        "TimeDistributed(Dense(2))",
        lambda: [SimpleRNN(4, return_sequences=True, input_shape=(5, 3)),
                 TimeDistributed(Dense(2))],
        floats(4, 5, 3)),
    "repeat_vector_seq2seq": Case(
        "Course seq2seq model: LSTM(6, input_shape=(5,3)), RepeatVector(4), "
        "LSTM(5, return_sequences=True), "
        "TimeDistributed(Dense(3, activation='softmax'))",
        lambda: [LSTM(6, input_shape=(5, 3)), RepeatVector(4),
                 LSTM(5, return_sequences=True),
                 TimeDistributed(Dense(3, activation="softmax"))],
        floats(4, 5, 3)),
    "flatten_dropout_activation": Case(
        "SimpleRNN(4, return_sequences=True, input_shape=(5,3)), "
        "Dropout(0.5), Flatten(), Dense(3), Activation('tanh'); Dropout is "
        "the identity in predict",
        lambda: [SimpleRNN(4, return_sequences=True, input_shape=(5, 3)),
                 Dropout(0.5), Flatten(), Dense(3), Activation("tanh")],
        floats(4, 5, 3)),
    "text_classifier": Case(
        "Course text classifier: Embedding(30, 8, input_length=7), "
        "Bidirectional(LSTM(5)), Dense(3, activation='softmax'); int ids in "
        "[0, 30)",
        lambda: [Embedding(30, 8, input_length=7), Bidirectional(LSTM(5)),
                 Dense(3, activation="softmax")],
        ids(30, 4, 7)),
    "tagger": Case(
        "Tagger: Embedding(25, 6, input_length=7, mask_zero=True), "
        "Bidirectional(GRU(4, return_sequences=True)), "
        "TimeDistributed(Dense(5, activation='softmax')); right-padded ids "
        "(lengths 7, 5, 3, 1)",
        lambda: [Embedding(25, 6, input_length=7, mask_zero=True),
                 Bidirectional(GRU(4, return_sequences=True)),
                 TimeDistributed(Dense(5, activation="softmax"))],
        padded_ids(25, 7, [(7, "right"), (5, "right"), (3, "right"),
                           (1, "right")])),
    # -- masking ----------------------------------------------------------
    "mask_embedding_lstm_right": Case(
        "Embedding(15, 4, input_length=6, mask_zero=True), "
        "LSTM(5, return_sequences=True); right-padded ids, lengths 6,4,2,1",
        lambda: [_emb15(), LSTM(5, return_sequences=True)],
        padded_ids(15, 6, RIGHT)),
    "mask_embedding_lstm_left": Case(
        "Embedding(15, 4, input_length=6, mask_zero=True), "
        "LSTM(5, return_sequences=True); left-padded ids, lengths 6,4,2,1",
        lambda: [_emb15(), LSTM(5, return_sequences=True)],
        padded_ids(15, 6, LEFT)),
    "mask_embedding_lstm_holes": Case(
        "Embedding(15, 4, input_length=6, mask_zero=True), "
        "LSTM(5, return_sequences=True); zeros inside the sequences (holes) "
        "as well as at the ends",
        lambda: [_emb15(), LSTM(5, return_sequences=True)],
        padded_ids(15, 6, [(4, [1, 0, 1, 1, 0, 1]), (3, [0, 1, 0, 1, 1, 0]),
                           (5, [1, 1, 1, 0, 1, 1])])),
    "mask_embedding_lstm_last_right": Case(
        "Embedding(15, 4, input_length=6, mask_zero=True), LSTM(5); "
        "right-padded ids, lengths 6,4,2,1",
        lambda: [_emb15(), LSTM(5)],
        padded_ids(15, 6, RIGHT)),
    "mask_embedding_lstm_last_left": Case(
        "Embedding(15, 4, input_length=6, mask_zero=True), LSTM(5); "
        "left-padded ids, lengths 6,4,2,1",
        lambda: [_emb15(), LSTM(5)],
        padded_ids(15, 6, LEFT)),
    "mask_embedding_gru_right": Case(
        "Embedding(15, 4, input_length=6, mask_zero=True), "
        "GRU(5, return_sequences=True); right-padded ids, lengths 6,4,2,1",
        lambda: [_emb15(), GRU(5, return_sequences=True)],
        padded_ids(15, 6, RIGHT)),
    "mask_embedding_simple_rnn_left": Case(
        "Embedding(15, 4, input_length=6, mask_zero=True), "
        "SimpleRNN(5, return_sequences=True); left-padded ids, lengths "
        "6,4,2,1",
        lambda: [_emb15(), SimpleRNN(5, return_sequences=True)],
        padded_ids(15, 6, LEFT)),
    "mask_embedding_bidirectional_left": Case(
        "Embedding(15, 4, input_length=6, mask_zero=True), "
        "Bidirectional(LSTM(4, return_sequences=True)); left-padded ids",
        lambda: [_emb15(), Bidirectional(LSTM(4, return_sequences=True))],
        padded_ids(15, 6, LEFT)),
    "mask_embedding_bidirectional_right": Case(
        "Embedding(15, 4, input_length=6, mask_zero=True), "
        "Bidirectional(LSTM(4, return_sequences=True)); right-padded ids",
        lambda: [_emb15(), Bidirectional(LSTM(4, return_sequences=True))],
        padded_ids(15, 6, RIGHT)),
    "mask_embedding_bidirectional_last_right": Case(
        "Embedding(15, 4, input_length=6, mask_zero=True), "
        "Bidirectional(LSTM(4)) (last outputs, concat); right-padded ids",
        lambda: [_emb15(), Bidirectional(LSTM(4))],
        padded_ids(15, 6, RIGHT)),
    "mask_masking_layer": Case(
        "Masking(mask_value=0.0, input_shape=(6,3)), "
        "SimpleRNN(4, return_sequences=True); float rows whose padded "
        "timesteps are exactly 0: full, right 4, left 3, right 1, left 5",
        lambda: [Masking(mask_value=0.0, input_shape=(6, 3)),
                 SimpleRNN(4, return_sequences=True)],
        padded_floats(6, 3, [(6, "right"), (4, "right"), (3, "left"),
                             (1, "right"), (5, "left")])),
    "mask_masking_gru_last": Case(
        "Masking(mask_value=0.0, input_shape=(6,3)), GRU(4); float rows "
        "whose padded timesteps are exactly 0: full, right 4, left 3, "
        "right 1, left 5",
        lambda: [Masking(mask_value=0.0, input_shape=(6, 3)), GRU(4)],
        padded_floats(6, 3, [(6, "right"), (4, "right"), (3, "left"),
                             (1, "right"), (5, "left")])),
    "mask_a_row_fully_masked": Case(
        "Embedding(10, 4, input_length=5, mask_zero=True), "
        "LSTM(3, return_sequences=True); row 2 is all padding (ids 0)",
        lambda: [Embedding(10, 4, input_length=5, mask_zero=True),
                 LSTM(3, return_sequences=True)],
        padded_ids(10, 5, [(5, "right"), (3, "right"), (0, "right"),
                           (2, "left")])),
    "mask_a_row_fully_masked_last": Case(
        "Embedding(10, 4, input_length=5, mask_zero=True), LSTM(3); row 2 is "
        "all padding (ids 0)",
        lambda: [Embedding(10, 4, input_length=5, mask_zero=True), LSTM(3)],
        padded_ids(10, 5, [(5, "right"), (3, "right"), (0, "right"),
                           (2, "left")])),
    "mask_go_backwards": Case(
        "Embedding(15, 4, input_length=6, mask_zero=True), "
        "SimpleRNN(4, return_sequences=True, go_backwards=True); right-padded "
        "ids, lengths 6,4,2,1",
        lambda: [_emb15(), SimpleRNN(4, return_sequences=True,
                                     go_backwards=True)],
        padded_ids(15, 6, RIGHT)),
}

# Layer-call cases: name -> (description, make_layer(), x shape,
#                            initial state shapes)
X_CALL = (3, 5, 4)
LAYER_CALL_CASES = {
    "call_lstm_state": (
        "LSTM(4, return_sequences=True, return_state=True) called with "
        "initial_state=[h0, c0] -> [sequence, h, c]",
        lambda: LSTM(4, return_sequences=True, return_state=True),
        X_CALL, [(3, 4), (3, 4)]),
    "call_gru_state": (
        "GRU(4, return_state=True) called with initial_state=[h0] -> "
        "[output, h]",
        lambda: GRU(4, return_state=True),
        X_CALL, [(3, 4)]),
    "call_gru_before_state": (
        "GRU(4, return_state=True, reset_after=False) called with "
        "initial_state=[h0] -> [output, h]",
        lambda: GRU(4, return_state=True, reset_after=False),
        X_CALL, [(3, 4)]),
    "call_bidirectional_lstm_state": (
        "Bidirectional(LSTM(3, return_state=True)) -> "
        "[output, forward_h, forward_c, backward_h, backward_c]",
        lambda: Bidirectional(LSTM(3, return_state=True)),
        X_CALL, []),
    "call_bidirectional_gru_state": (
        "Bidirectional(GRU(3, return_sequences=True, return_state=True)) "
        "called with initial_state=[forward_h0, backward_h0] -> "
        "[sequence, forward_h, backward_h]",
        lambda: Bidirectional(GRU(3, return_sequences=True,
                                  return_state=True)),
        X_CALL, [(3, 3), (3, 3)]),
}

# Stateful cases: name -> (description, build(), batch_input_shape)
STATEFUL_SHAPE = (3, 5, 2)
STATEFUL_CASES = {
    "stateful_simple_rnn": (
        "SimpleRNN(4, stateful=True, batch_input_shape=(3,5,2)): predict on "
        "x1, x2, x3, then reset_states() and predict on x1 again",
        lambda: [SimpleRNN(4, stateful=True,
                           batch_input_shape=STATEFUL_SHAPE)],
        STATEFUL_SHAPE),
    "stateful_lstm": (
        "LSTM(4, stateful=True, batch_input_shape=(3,5,2), "
        "return_sequences=True): predict on x1, x2, x3, then reset_states() "
        "and predict on x1 again",
        lambda: [LSTM(4, stateful=True, batch_input_shape=STATEFUL_SHAPE,
                      return_sequences=True)],
        STATEFUL_SHAPE),
    "stateful_gru": (
        "GRU(4, stateful=True, batch_input_shape=(3,5,2)): predict on x1, "
        "x2, x3, then reset_states() and predict on x1 again",
        lambda: [GRU(4, stateful=True, batch_input_shape=STATEFUL_SHAPE)],
        STATEFUL_SHAPE),
    "stateful_bidirectional": (
        "Bidirectional(LSTM(3, stateful=True, return_sequences=True), "
        "batch_input_shape=(3,5,2)) then GRU(2, stateful=True): both "
        "directions carry their states across predicts, until reset_states()",
        lambda: [Bidirectional(LSTM(3, stateful=True, return_sequences=True),
                               batch_input_shape=STATEFUL_SHAPE),
                 GRU(2, stateful=True)],
        STATEFUL_SHAPE),
}


# --------------------------------------------------------------------------
# Fixture kinds
# --------------------------------------------------------------------------

def _model_description(model):
    return {
        "layers": [layer_entry(l) for l in model.layers],
        "input_shape": shape_list(model.input_shape),
        "output_shape": shape_list(model.output_shape),
        "params": int(model.count_params()),
        "summary": capture_summary(model),
        "layer_rows": [{
            "name": l.name,
            "class_name": type(l).__name__,
            "output_shape": shape_list(l.output_shape),
            "params": int(l.count_params()),
        } for l in model.layers],
        "weights": weight_entries(model.weights, model.get_weights()),
    }


def _build_sequential(build):
    model = keras.Sequential()
    for layer in build():
        model.add(layer)
    assert model.built
    return model


def make_sequential_fixture(name, case):
    fresh_session()
    rng = case_rng(name)
    model = _build_sequential(case.build)
    model.set_weights(random_weights(rng, model.get_weights()))
    x = case.make_x(rng)
    y = model.predict(x, verbose=0)
    outputs = y if isinstance(y, (list, tuple)) else [y]

    payload = header(name, case.description, "sequential")
    payload.update(_model_description(model))
    if is_ids(x):
        payload["input_dtype"] = "int32"
    payload["inputs"] = [tensor_entry(x)]
    payload["outputs"] = [tensor_entry(o) for o in outputs]
    assert len(payload["weights"]) == len(model.get_weights())
    return write_json(name, payload)


STATEFUL_STEPS = ["predict(x1)", "predict(x2)", "predict(x3)",
                  "reset_states(); predict(x1)"]


def make_stateful_fixture(name, description, build, batch_shape):
    fresh_session()
    rng = case_rng(name)
    model = _build_sequential(build)
    model.set_weights(random_weights(rng, model.get_weights()))
    xs = [rng.uniform(-1, 1, size=batch_shape).astype(np.float32)
          for _ in range(3)]
    batch = batch_shape[0]
    ys = [model.predict(x, batch_size=batch, verbose=0) for x in xs]
    model.reset_states()
    ys.append(model.predict(xs[0], batch_size=batch, verbose=0))
    # reset_states() restores the zero state: same result as the first call.
    np.testing.assert_array_equal(ys[0], ys[3])
    assert not np.array_equal(ys[0], ys[1])

    payload = header(name, description, "stateful")
    payload.update(_model_description(model))
    payload["batch_size"] = batch
    payload["steps"] = STATEFUL_STEPS
    payload["inputs"] = [tensor_entry(x) for x in xs + [xs[0]]]
    payload["outputs"] = [tensor_entry(y) for y in ys]
    assert len(payload["weights"]) == len(model.get_weights())
    return write_json(name, payload)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------
# Each error function receives `step(name)`, which it calls before each
# user-visible operation ("construct", "add", "set_weights", "predict").
# A function that does not raise returns a dict merged into the
# {"accepted": true, ...} record (at least a "note").

def _seq(step, *layers):
    step("construct")
    model = keras.Sequential()
    step("add")
    for layer in layers:
        model.add(layer)
    return model


def _embedding_20(step, name):
    step("construct")
    layer = Embedding(20, 4, input_length=6)
    model = _seq(step, layer)
    step("set_weights")
    model.set_weights(random_weights(case_rng(name), model.get_weights()))
    return model


def _bad_id(value, name):
    def fn(step):
        model = _embedding_20(step, name)
        x = np.array([[1, 2, value, 3, 4, 5], [6, 7, 8, 9, 10, 11]], np.int32)
        step("predict")
        model.predict(x, verbose=0)
    return fn


def _err_embedding_fractional_id(step):
    model = _embedding_20(step, "embedding_fractional_id")
    x = np.array([[2.5, 2.99, -0.5, 0.7, 19.9, 1.0]], np.float32)
    step("predict")
    y = model.predict(x, verbose=0)
    truncated = np.trunc(x).astype(np.int32)
    np.testing.assert_array_equal(y, model.predict(truncated, verbose=0))
    np.testing.assert_array_equal(y[0], model.get_weights()[0][truncated[0]])
    return {
        "note": "no error: Embedding casts float ids to int32 (truncation "
                "toward zero: 2.5 -> 2, 2.99 -> 2, -0.5 -> 0, 0.7 -> 0, "
                "19.9 -> 19); the output equals predict on the truncated ids",
        "weights": weight_entries(model.weights, model.get_weights()),
        "inputs": [tensor_entry(x)],
        "outputs": [tensor_entry(y)],
    }


def _mask_zero_then(step, *rest):
    step("construct")
    layers = [Embedding(15, 4, input_length=6, mask_zero=True)] + list(rest)
    model = _seq(step, *layers)
    x = np.array([[3, 4, 5, 0, 0, 0], [1, 2, 3, 4, 5, 6]], np.int32)
    step("predict")
    y = model.predict(x, verbose=0)
    masks = [None if l.output_mask is None else "propagated"
             for l in model.layers]
    return {
        "note": (f"no error; output_shape={shape_list(model.output_shape)}, "
                 f"predict returned shape {list(y.shape)}; output mask per "
                 f"layer: {masks}"),
        "output_masks": [l.output_mask is not None for l in model.layers],
    }


def _err_mask_zero_flatten_dense(step):
    return _mask_zero_then(step, Flatten(), Dense(2))


def _err_mask_zero_dense(step):
    return _mask_zero_then(step, Dense(2))


def _err_stateful_without_batch_size(step):
    step("construct")
    layer = SimpleRNN(3, stateful=True, input_shape=(5, 2))
    model = _seq(step, layer)
    step("predict")
    model.predict(np.zeros((3, 5, 2), np.float32), verbose=0)


def _err_construct(factory):
    def fn(step):
        step("construct")
        factory()
    return fn


def _stateful_predict(rows, batch_size, explanation=""):
    def fn(step):
        step("construct")
        layer = SimpleRNN(4, stateful=True, batch_input_shape=(3, 5, 2))
        model = _seq(step, layer)
        step("predict")
        x = np.zeros((rows, 5, 2), np.float32)
        kwargs = {} if batch_size is None else {"batch_size": batch_size}
        y = model.predict(x, verbose=0, **kwargs)
        return {"note": f"no error; predict on {rows} rows returned shape "
                        f"{list(y.shape)}{explanation}"}
    return fn


_BROADCAST = (" (accidental: a 1-row batch broadcasts against the (3, 4) "
              "state inside the cell, giving 3 output rows for it)")


ERROR_CASES = {
    "embedding_negative_id": (
        "Sequential([Embedding(20, 4, input_length=6)]).predict with id -1 "
        "at [0, 2] (int32 input)",
        _bad_id(-1, "embedding_negative_id")),
    "embedding_id_too_large": (
        "Sequential([Embedding(20, 4, input_length=6)]).predict with id 25 "
        "at [0, 2] (int32 input)",
        _bad_id(25, "embedding_id_too_large")),
    "embedding_id_equal_input_dim": (
        "Sequential([Embedding(20, 4, input_length=6)]).predict with id 20 "
        "(== input_dim) at [0, 2]",
        _bad_id(20, "embedding_id_equal_input_dim")),
    "embedding_fractional_id": (
        "Sequential([Embedding(20, 4, input_length=6)]).predict with float "
        "ids [2.5, 2.99, -0.5, 0.7, 19.9, 1.0]",
        _err_embedding_fractional_id),
    "mask_zero_flatten_dense": (
        "Embedding(15, 4, input_length=6, mask_zero=True), Flatten(), "
        "Dense(2): build and predict on padded ids",
        _err_mask_zero_flatten_dense),
    "mask_zero_dense": (
        "Embedding(15, 4, input_length=6, mask_zero=True), Dense(2): build "
        "and predict on padded ids",
        _err_mask_zero_dense),
    "stateful_without_batch_size": (
        "SimpleRNN(3, stateful=True, input_shape=(5,2)) added to a "
        "Sequential, then predict",
        _err_stateful_without_batch_size),
    "gru_units_zero": ("GRU(0)", _err_construct(lambda: GRU(0))),
    "lstm_units_zero": ("LSTM(0)", _err_construct(lambda: LSTM(0))),
    "embedding_input_dim_zero": (
        "Embedding(0, 4)", _err_construct(lambda: Embedding(0, 4))),
    "embedding_output_dim_zero": (
        "Embedding(20, 0)", _err_construct(lambda: Embedding(20, 0))),
    "stateful_predict_batch_4": (
        "SimpleRNN(4, stateful=True, batch_input_shape=(3,5,2)); predict on "
        "x of shape (4,5,2) (default batch_size)",
        _stateful_predict(4, None)),
    "stateful_predict_batch_2": (
        "SimpleRNN(4, stateful=True, batch_input_shape=(3,5,2)); predict on "
        "x of shape (2,5,2) (default batch_size)",
        _stateful_predict(2, None)),
    "stateful_predict_batch_1": (
        "SimpleRNN(4, stateful=True, batch_input_shape=(3,5,2)); predict on "
        "x of shape (1,5,2) (default batch_size)",
        _stateful_predict(1, None, _BROADCAST)),
    "stateful_predict_6_rows_batch_size_3": (
        "SimpleRNN(4, stateful=True, batch_input_shape=(3,5,2)); predict on "
        "x of shape (6,5,2) with batch_size=3 (two full batches)",
        _stateful_predict(6, 3)),
    "stateful_predict_4_rows_batch_size_3": (
        "SimpleRNN(4, stateful=True, batch_input_shape=(3,5,2)); predict on "
        "x of shape (4,5,2) with batch_size=3 (last batch has 1 row)",
        _stateful_predict(4, 3, _BROADCAST.replace("a 1-row batch",
                                                   "the last 1-row batch"))),
    "stateful_predict_5_rows_batch_size_3": (
        "SimpleRNN(4, stateful=True, batch_input_shape=(3,5,2)); predict on "
        "x of shape (5,5,2) with batch_size=3 (last batch has 2 rows)",
        _stateful_predict(5, 3)),
}


def core_message(message):
    """The message without TensorFlow's wrapping.

    * 'in user code:' (errors raised while tracing predict's tf.function):
      the final '<Type>: ...' block, de-indented.
    * 'Graph execution error:' (op errors at run time, e.g.
      InvalidArgumentError from the embedding lookup): the op message after
      the 'Detected at node ... defined at' traceback, without the trailing
      '\\t [[{{node ...}}]] [Op:...]' line.
    * otherwise the message unchanged."""
    if message.startswith("in user code:"):
        matches = list(re.finditer(r"\n    (\w+(?:Error|Exception)): ",
                                   message))
        core = message[matches[-1].end():]
        return "\n".join(line[4:] if line.startswith("    ") else line
                         for line in core.rstrip("\n").split("\n"))
    if message.startswith("Graph execution error:"):
        core = message[message.rindex("\n\n") + 2:]
        return core.split("\n\t [[")[0]
    return message


def make_errors():
    results = {}
    for name, (description, fn) in ERROR_CASES.items():
        fresh_session()
        stage = {"value": None}

        def step(value, stage=stage):
            stage["value"] = value

        try:
            extra = fn(step)
        except Exception as exc:  # noqa: BLE001 - record whatever Keras raises
            message = str(exc)
            results[name] = {
                "description": description,
                "raised_at": stage["value"],
                "type": type(exc).__name__,
                "message": message,
                "core_message": core_message(message),
            }
        else:
            extra = extra or {"note": "no error"}
            results[name] = {"description": description, "accepted": True,
                             **extra}
    return write_json("errors", results)


# --------------------------------------------------------------------------
# Independent float64 NumPy reference, run on the written JSON files
# --------------------------------------------------------------------------

def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
    "linear": lambda x: x,
    "softmax": _softmax,
}


def _array(entry):
    return np.asarray(entry["data"], np.float64).reshape(entry["shape"])


class WeightQueue:
    def __init__(self, weights):
        self.items = [_array(w) for w in weights]
        self.pos = 0

    def take(self, n):
        out = self.items[self.pos:self.pos + n]
        assert len(out) == n
        self.pos += n
        return out


def _rnn_weights(cfg, queue):
    n = 3 if cfg.get("use_bias", True) else 2
    w = queue.take(n)
    return w if n == 3 else w + [None]


def _cell_step(kind, cfg, weights, x_t, states):
    kernel, rec, bias = weights
    act = ACTIVATIONS[cfg["activation"]]
    if kind == "SimpleRNN":
        z = x_t @ kernel + states[0] @ rec
        if bias is not None:
            z = z + bias
        h = act(z)
        return h, [h]
    ract = ACTIVATIONS[cfg["recurrent_activation"]]
    u = cfg["units"]
    if kind == "LSTM":
        h_prev, c_prev = states
        z = x_t @ kernel + h_prev @ rec
        if bias is not None:
            z = z + bias
        i, f = ract(z[:, :u]), ract(z[:, u:2 * u])
        c = f * c_prev + i * act(z[:, 2 * u:3 * u])
        o = ract(z[:, 3 * u:])
        h = o * act(c)
        return h, [h, c]
    assert kind == "GRU"
    h_prev = states[0]
    xz = x_t @ kernel
    if cfg["reset_after"]:
        hz = h_prev @ rec
        if bias is not None:   # bias (2, 3u): [input bias, recurrent bias]
            xz, hz = xz + bias[0], hz + bias[1]
        z = ract(xz[:, :u] + hz[:, :u])
        r = ract(xz[:, u:2 * u] + hz[:, u:2 * u])
        hh = act(xz[:, 2 * u:] + r * hz[:, 2 * u:])
    else:
        if bias is not None:   # bias (3u,)
            xz = xz + bias
        z = ract(xz[:, :u] + h_prev @ rec[:, :u])
        r = ract(xz[:, u:2 * u] + h_prev @ rec[:, u:2 * u])
        hh = act(xz[:, 2 * u:] + (r * h_prev) @ rec[:, 2 * u:])
    h = z * h_prev + (1.0 - z) * hh
    return h, [h]


def _rnn(kind, cfg, weights, x, mask, init_states, zero_output_for_mask):
    """Keras backend.rnn semantics. Returns (sequence in scan order,
    last output, final states)."""
    batch, steps = x.shape[:2]
    u = cfg["units"]
    n_states = 2 if kind == "LSTM" else 1
    states = ([np.zeros((batch, u)) for _ in range(n_states)]
              if init_states is None else list(init_states))
    if cfg["go_backwards"]:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    prev = np.zeros((batch, u))
    outs = []
    for t in range(steps):
        out, new_states = _cell_step(kind, cfg, weights, x[:, t], states)
        if mask is not None:
            m = mask[:, t][:, None]
            new_states = [np.where(m, n, s)
                          for n, s in zip(new_states, states)]
            out = np.where(m, out, 0.0 if zero_output_for_mask else prev)
        prev, states = out, new_states
        outs.append(out)
    return np.stack(outs, axis=1), outs[-1], states


def _rnn_layer(kind, cfg, weights, x, mask, init_states=None,
               zero_output_for_mask=None):
    if zero_output_for_mask is None:
        zero_output_for_mask = cfg.get("zero_output_for_mask", False)
    seq, last, states = _rnn(kind, cfg, weights, x, mask, init_states,
                             zero_output_for_mask)
    out = seq if cfg["return_sequences"] else last
    return out, states


def _merge(mode, a, b):
    if mode == "concat":
        return np.concatenate([a, b], axis=-1)
    if mode == "sum":
        return a + b
    if mode == "ave":
        return (a + b) / 2.0
    if mode == "mul":
        return a * b
    raise ValueError(mode)


def _bidirectional(cfg, queue, x, mask, init_states=None):
    inner = cfg["layer"]
    kind, icfg = inner["class_name"], inner["config"]
    fw_cfg = dict(icfg)
    bw_cfg = dict(icfg, go_backwards=not icfg["go_backwards"])
    fw_w = _rnn_weights(fw_cfg, queue)
    bw_w = _rnn_weights(bw_cfg, queue)
    zero = icfg["return_sequences"]  # Bidirectional forces this
    half = None if init_states is None else len(init_states) // 2
    fw_out, fw_states = _rnn_layer(
        kind, fw_cfg, fw_w, x, mask,
        None if half is None else init_states[:half], zero)
    bw_out, bw_states = _rnn_layer(
        kind, bw_cfg, bw_w, x, mask,
        None if half is None else init_states[half:], zero)
    if icfg["return_sequences"]:
        bw_out = bw_out[:, ::-1]
    out = _merge(cfg["merge_mode"], fw_out, bw_out)
    return out, fw_states + bw_states


def _dense(cfg, queue, x):
    kernel = queue.take(1)[0]
    y = x @ kernel
    if cfg["use_bias"]:
        y = y + queue.take(1)[0]
    return ACTIVATIONS[cfg["activation"]](y)


RNN_KINDS = ("SimpleRNN", "LSTM", "GRU")


def np_forward(layers, queue, x, rnn_states=None):
    """Forward pass of a Sequential. rnn_states (a dict layer index ->
    states) carries state across calls for stateful layers."""
    mask = None
    for index, layer in enumerate(layers):
        kind, cfg = layer["class_name"], layer["config"]
        if kind == "Embedding":
            table = queue.take(1)[0]
            ids_ = x.astype(np.int64)
            assert np.array_equal(ids_, x)
            mask = ids_ != 0 if cfg["mask_zero"] else None
            x = table[ids_]
        elif kind == "Masking":
            mask = np.any(x != cfg["mask_value"], axis=-1)
            x = x * mask[..., None]
        elif kind in RNN_KINDS:
            weights = _rnn_weights(cfg, queue)
            init = None if rnn_states is None else rnn_states.get(index)
            x, states = _rnn_layer(kind, cfg, weights, x, mask, init)
            if cfg.get("stateful") and rnn_states is not None:
                rnn_states[index] = states
            mask = mask if cfg["return_sequences"] else None
        elif kind == "Bidirectional":
            init = None if rnn_states is None else rnn_states.get(index)
            x, states = _bidirectional(cfg, queue, x, mask, init)
            if cfg["layer"]["config"].get("stateful") and rnn_states is not None:
                rnn_states[index] = states
            if not cfg["layer"]["config"]["return_sequences"]:
                mask = None
        elif kind == "Dense":
            x = _dense(cfg, queue, x)
        elif kind == "TimeDistributed":
            inner = cfg["layer"]
            assert inner["class_name"] == "Dense"
            x = _dense(inner["config"], queue, x)
        elif kind == "RepeatVector":
            x = np.repeat(x[:, None, :], cfg["n"], axis=1)
            mask = None
        elif kind == "Flatten":
            x = x.reshape(x.shape[0], -1)
            mask = None
        elif kind == "Dropout":
            pass
        elif kind == "Activation":
            x = ACTIVATIONS[cfg["activation"]](x)
        else:
            raise NotImplementedError(kind)
    assert queue.pos == len(queue.items)
    return x


def np_layer_call(layer, queue, x, init_states):
    kind, cfg = layer["class_name"], layer["config"]
    init = init_states or None
    if kind == "Bidirectional":
        out, states = _bidirectional(cfg, queue, x, None, init)
        return_state = cfg["layer"]["config"]["return_state"]
    else:
        out, states = _rnn_layer(kind, cfg, _rnn_weights(cfg, queue), x,
                                 None, init)
        return_state = cfg["return_state"]
    assert queue.pos == len(queue.items)
    return [out] + (states if return_state else [])


def _check_shapes(payload):
    for entry in payload["weights"] + payload["inputs"] + payload["outputs"]:
        assert len(entry["data"]) == int(np.prod(entry["shape"])), entry
    for entry in payload["weights"]:
        assert entry["name"], entry


def check_fixture(path):
    """Re-read a fixture and return max |keras - numpy| over its outputs."""
    payload = json.loads(path.read_text(encoding="utf-8"))
    _check_shapes(payload)
    kind, layers = payload["kind"], payload["layers"]
    inputs = [_array(e) for e in payload["inputs"]]
    expected = [_array(e) for e in payload["outputs"]]
    if kind == "sequential":
        got = [np_forward(layers, WeightQueue(payload["weights"]),
                          inputs[0])]
        assert (payload.get("input_dtype") == "int32") == (
            layers[0]["class_name"] == "Embedding")
        assert payload["summary"] and payload["layer_rows"]
    elif kind == "layer_call":
        got = np_layer_call(layers[0], WeightQueue(payload["weights"]),
                            inputs[0], inputs[1:])
    elif kind == "stateful":
        rnn_states = {}
        got = []
        for step, x in zip(payload["steps"], inputs):
            if step.startswith("reset_states()"):
                rnn_states = {}
            got.append(np_forward(layers, WeightQueue(payload["weights"]),
                                  x, rnn_states))
    else:
        raise ValueError(kind)
    assert len(got) == len(expected)
    diff = 0.0
    for g, e in zip(got, expected):
        assert g.shape == e.shape, (path.name, g.shape, e.shape)
        diff = max(diff, float(np.max(np.abs(g - e))))
    return diff


def check_errors(path):
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert set(payload) == set(ERROR_CASES)
    for name, entry in payload.items():
        if entry.get("accepted"):
            assert entry["note"], name
        else:
            assert entry["core_message"], name
            assert "in user code" not in entry["core_message"], name
            assert "Graph execution" not in entry["core_message"], name


# --------------------------------------------------------------------------

def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for name, case in SEQUENTIAL_CASES.items():
        written.append(make_sequential_fixture(name, case))
    for name, (desc, make, x_shape, states) in LAYER_CALL_CASES.items():
        written.append(make_layer_call_fixture(name, desc, make, x_shape,
                                               states))
    for name, (desc, build, shape) in STATEFUL_CASES.items():
        written.append(make_stateful_fixture(name, desc, build, shape))
    errors_path = make_errors()

    worst = 0.0
    for path in written:
        diff = check_fixture(path)
        worst = max(worst, diff)
        print(f"{path.relative_to(ROOT)}  max|keras-numpy|={diff:.3g}")
        assert diff < TOLERANCE, (path.name, diff)
    check_errors(errors_path)
    print(errors_path.relative_to(ROOT))
    total = sum(p.stat().st_size for p in OUT_DIR.glob("*.json"))
    print(f"{len(written) + 1} files, {total / 1e6:.2f} MB, "
          f"worst max|keras-numpy| = {worst:.3g}")


if __name__ == "__main__":
    main()
