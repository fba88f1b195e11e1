#!/usr/bin/env python3
"""Generate reference fixtures for seqnn's `fit` (training).

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_train_fits.py

It (re)writes everything in tests/fixtures/train/fits/ except README.md.
Other modes:

    generate_train_fits.py CASE...     regenerate only those cases
    generate_train_fits.py --list      print the case names

For every case of CASES, the same model is built with tf_keras 2.21 ("tf")
and Keras 3.15 ("k3", TensorFlow backend), given the SAME initial weights
(rng.uniform(-0.5, 0.5) float32 per array of get_weights(), in order; the
script asserts both libraries list the same shapes in the same order, which
is also the layer order), compiled with the case's optimizer / loss /
metrics and saved UNTRAINED (but compiled, so the files hold the
compile / training config):

    <case>.tf.keras   tf_keras  model.save("x.keras")   (compile_config)
    <case>.tf.h5      tf_keras  model.save("x.h5")      (training_config)
    <case>.k3.keras   Keras 3   model.save("x.keras")   (compile_config)

Then, in each library,

    history = model.fit(x, y, epochs=3, batch_size=8, shuffle=False,
                        verbose=0[, validation_split | validation_data])

and <case>.json records history.history, the weights after training,
model.evaluate(x, y, batch_size=8, return_dict=True), the optimizer's
iterations and variables, and (from a fresh copy of the untrained model)
one train_on_batch on the first 8 samples. The format is described in
tests/fixtures/train/fits/README.md.

Checks made on every run (their results are in the JSON, "checks"):
  * replay: a fresh copy is trained batch by batch with train_on_batch
    (and test_on_batch for validation / evaluate); the epoch values of
    history must be the batch-size-weighted means of the batch values
    (for loss; metrics are means over their own sample weights, see
    README) and the replayed weights must equal fit's;
  * the untrained model's loss on the first batch recomputed in numpy
    (float64) from its predictions (masked cases: valid-timestep mean
    and all-timestep mean both reported);
  * reload: every saved file is loaded back WITH its compile config by
    its writer and trained again; history and weights must match.
  * Embedding + Adam: the first step's embedding update recomputed with
    dense Adam and with per-slice squares (the libraries differ there);
  * tf_keras, cases with metrics: the training_config metrics an .h5
    would hold if saved before any batch (the quirk save_files avoids);
  * tf_keras vs Keras 3 differences (informational).

Conventions (as generate_functional.py): clear_session() and
set_random_seed(0) before every model; rng =
np.random.default_rng(zlib.crc32(case_name)) draws the weights first,
then the data. Everything is float32; arrays are written as
{"shape", "data"} with float64 copies of the float32 values.
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"

import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402
from collections import namedtuple  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model_fixtures import (  # noqa: E402
    LIBS, ROOT, VERSIONS, case_rng, f32_list, fresh, short_error)

tf.config.experimental.enable_op_determinism()

OUT_DIR = ROOT / "tests" / "fixtures" / "train" / "fits"
GENERATED_BY = "tools/keras_reference/generate_train_fits.py"
VKEY = {"tf": "tf_keras", "k3": "keras3"}
EPOCHS, BATCH = 3, 8

# A case: build(K, v) -> model; compile(K) -> dict(optimizer=, loss=,
# metrics=); data(rng) -> dict(x=[arrays], y=array[, val=([arrays], y)]);
# fit: extra fit kwargs (validation_split); loss_np: (name, kwargs) for
# the numpy recomputation; mask_fn(x) -> bool (batch, timesteps) mask of
# the output or None; init(w0) -> the initial weights from the uniform
# draws (for variances that must be positive), or None.
Case = namedtuple("Case", "description build compile data fit loss_np "
                  "mask_fn notes init", defaults=({}, None, None, (), None))


# --------------------------------------------------------------------------
# Model helpers
# --------------------------------------------------------------------------

def seq(K, v, shape, layers_fn, dtype=None):
    """Sequential with input `shape` (no batch): tf_keras idiom
    `input_shape=` on the first layer, Keras 3 `keras.Input` first."""
    L = K.layers
    if v == "tf":
        return K.Sequential(layers_fn(L, {"input_shape": tuple(shape)}))
    inp = K.Input(shape=tuple(shape), **({"dtype": dtype} if dtype else {}))
    return K.Sequential([inp] + layers_fn(L, {}))


def u(rng, *shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def one_hot(rng, n, k):
    return np.eye(k, dtype=np.float32)[rng.integers(0, k, size=n)]


def padded_ids(rng, n, timesteps, vocab, min_len=1):
    """int32 ids in [1, vocab) followed by 0-padding; lengths random in
    [min_len, timesteps]."""
    x = np.zeros((n, timesteps), np.int32)
    lengths = rng.integers(min_len, timesteps + 1, size=n)
    for b, m in enumerate(lengths):
        x[b, :m] = rng.integers(1, vocab, size=m)
    return x


def ids_mask(x):
    return np.asarray(x) != 0


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

def build_simple_rnn(K, v):
    return seq(K, v, (5, 3), lambda L, f: [L.SimpleRNN(4, **f), L.Dense(1)])


def build_lstm_seq(K, v):
    return seq(K, v, (6, 3), lambda L, f: [
        L.LSTM(4, return_sequences=True, **f),
        L.TimeDistributed(L.Dense(2))])


def build_gru_v2(K, v):
    return seq(K, v, (5, 2), lambda L, f: [
        L.GRU(4, reset_after=True, **f), L.Dense(1)])


def build_gru_v1(K, v):
    return seq(K, v, (4, 3), lambda L, f: [
        L.GRU(3, reset_after=False, **f), L.Dense(3, activation="softmax")])


def build_bidir_sum(K, v):
    return seq(K, v, (5, 2), lambda L, f: [
        L.Bidirectional(L.LSTM(3), merge_mode="sum", **f),
        L.Dense(1, activation="sigmoid")])


def build_embedding_lstm(K, v):
    return seq(K, v, (6,), lambda L, f: [
        L.Embedding(10, 4, mask_zero=True, **f), L.LSTM(4), L.Dense(3)],
        dtype="int32")


def build_frozen(K, v):
    return seq(K, v, (5, 3), lambda L, f: [
        L.LSTM(4, return_sequences=True, trainable=False, **f),
        L.GRU(3), L.Dense(1)])


def build_go_backwards(K, v):
    return seq(K, v, (6, 2), lambda L, f: [
        L.SimpleRNN(4, go_backwards=True, **f), L.Dense(1)])


def build_autoencoder(K, v):
    return seq(K, v, (5, 2), lambda L, f: [
        L.LSTM(4, **f), L.RepeatVector(5),
        L.LSTM(4, return_sequences=True), L.TimeDistributed(L.Dense(2))])


def build_masked_bidir_gru(K, v):
    return seq(K, v, (6,), lambda L, f: [
        L.Embedding(10, 4, mask_zero=True, **f),
        L.Bidirectional(L.GRU(3, return_sequences=True)),
        L.TimeDistributed(L.Dense(2, activation="softmax"))], dtype="int32")


def build_dropout(K, v):
    return seq(K, v, (5, 3), lambda L, f: [
        L.LSTM(4, **f), L.Dropout(0.0), L.Dense(1)])


def build_two_inputs(K, v):
    L = K.layers
    a = K.Input(shape=(5, 3))
    b = K.Input(shape=(4, 2))
    h = L.Concatenate()([L.LSTM(3)(a), L.GRU(3)(b)])
    return K.Model([a, b], L.Dense(1)(h))


def build_masked_lstm_acc(K, v):
    return seq(K, v, (5,), lambda L, f: [
        L.Embedding(12, 3, mask_zero=True, **f),
        L.LSTM(4, return_sequences=True),
        L.TimeDistributed(L.Dense(3, activation="softmax"))], dtype="int32")


def build_dense_bn(K, v):
    return seq(K, v, (6,), lambda L, f: [
        L.Dense(4, **f), L.BatchNormalization(momentum=0.8), L.Dense(1)])


def build_dense_bn_4d(K, v):
    return seq(K, v, (2, 2, 3), lambda L, f: [
        L.Dense(3, **f), L.BatchNormalization(momentum=0.7), L.Flatten(),
        L.Dense(1)])


def build_dense_bn_renorm(K, v):
    return seq(K, v, (6,), lambda L, f: [
        L.Dense(4, **f),
        L.BatchNormalization(momentum=0.8, renorm=True, renorm_momentum=0.7,
                             renorm_clipping={"rmax": 1.3, "rmin": 0.7, "dmax": 0.4}),
        L.Dense(1)])


def build_lstm_regularized(K, v):
    R, C = K.regularizers, K.constraints
    return seq(K, v, (5, 3), lambda L, f: [
        L.LSTM(4, kernel_regularizer=R.L2(0.01),
               recurrent_regularizer=R.L1(0.005),
               bias_regularizer=R.L1L2(l1=0.001, l2=0.002), **f),
        L.Dense(1, kernel_regularizer=R.L2(0.05),
                kernel_constraint=C.MaxNorm(0.8),
                bias_constraint=C.NonNeg())])


def build_gru_constrained(K, v):
    R, C = K.regularizers, K.constraints
    return seq(K, v, (4, 3), lambda L, f: [
        L.GRU(3, reset_after=False, kernel_constraint=C.UnitNorm(axis=0),
              recurrent_constraint=C.MinMaxNorm(
                  min_value=0.2, max_value=0.9, rate=0.7, axis=[0]),
              **f),
        L.Dense(3, activation="softmax", kernel_regularizer=R.L2(0.02),
                kernel_constraint=C.MaxNorm(1.0, axis=[0, 1]))])


def build_frozen_regularized(K, v):
    R = K.regularizers
    return seq(K, v, (5, 3), lambda L, f: [
        L.LSTM(4, return_sequences=True, trainable=False,
               kernel_regularizer=R.L2(0.1), **f),
        L.GRU(3, recurrent_regularizer=R.L2(0.05)),
        L.Dense(1, bias_regularizer=R.L1(0.1))])


def build_embedding_conv_bn_regularized(K, v):
    R, C = K.regularizers, K.constraints
    return seq(K, v, (6,), lambda L, f: [
        L.Embedding(12, 4, embeddings_regularizer=R.L2(0.01), **f),
        L.Conv1D(3, 2, kernel_regularizer=R.L1(0.01),
                 bias_constraint=C.NonNeg()),
        L.GlobalMaxPooling1D(),
        L.BatchNormalization(gamma_regularizer=R.L2(0.1),
                             beta_constraint=C.MaxNorm(0.3)),
        L.Dense(1, activation="sigmoid")], dtype="int32")


def build_bidir_regularized(K, v):
    R, C = K.regularizers, K.constraints
    return seq(K, v, (5, 2), lambda L, f: [
        L.Bidirectional(L.SimpleRNN(3, kernel_regularizer=R.L2(0.02),
                                    recurrent_constraint=C.MaxNorm(1.0)),
                        **f),
        L.Dense(1)])


def build_dense_sigmoid(K, v):
    return seq(K, v, (6,), lambda L, f: [
        L.Dense(4, activation="relu", **f), L.Dense(1, activation="sigmoid")])


def build_dense_softmax(K, v):
    return seq(K, v, (6,), lambda L, f: [L.Dense(3, activation="softmax", **f)])


def build_functional_activation_softmax(K, v):
    L = K.layers
    a = K.Input(shape=(6,))
    h = L.Dense(3)(L.Dense(4, activation="tanh")(a))
    return K.Model(a, L.Activation("softmax")(h))


def build_td_sigmoid(K, v):
    return seq(K, v, (4, 6), lambda L, f: [
        L.TimeDistributed(L.Dense(1, activation="sigmoid"), **f)])


def build_dense_activity(K, v):
    R = K.regularizers
    return seq(K, v, (6,), lambda L, f: [
        L.Dense(4, activation="tanh", activity_regularizer=R.L2(0.05), **f),
        L.Dense(1)])


def build_lstm_activity(K, v):
    R = K.regularizers
    return seq(K, v, (5, 3), lambda L, f: [
        L.LSTM(4, activity_regularizer=R.L1(0.01), **f), L.Dense(1)])


def build_masked_lstm_seq_activity(K, v):
    R = K.regularizers
    return seq(K, v, (6,), lambda L, f: [
        L.Embedding(10, 4, mask_zero=True, **f),
        L.LSTM(4, return_sequences=True,
               activity_regularizer=R.L1L2(l1=0.01, l2=0.02)),
        L.LSTM(3), L.Dense(1)], dtype="int32")


def build_activity_regularization_layer(K, v):
    return seq(K, v, (5, 3), lambda L, f: [
        L.LSTM(4, return_sequences=True, **f),
        L.ActivityRegularization(l1=0.01, l2=0.05),
        L.GRU(3), L.Dense(1)])


def build_functional_activity(K, v):
    L, R = K.layers, K.regularizers
    a = K.Input(shape=(5, 3))
    b = K.Input(shape=(4, 2))
    o, _h, c = L.LSTM(3, return_state=True,
                      activity_regularizer=R.L2(0.05))(a)
    g = L.Bidirectional(L.GRU(2, activity_regularizer=R.L1(0.02)))(b)
    h = L.Concatenate()([o, c, g])
    return K.Model([a, b], L.Dense(1)(h))


def build_td_dense_activity(K, v):
    R = K.regularizers
    return seq(K, v, (6, 3), lambda L, f: [
        L.LSTM(4, return_sequences=True, **f),
        L.TimeDistributed(L.Dense(2, activity_regularizer=R.L2(0.1)))])


def build_td_sequential_activity(K, v):
    R = K.regularizers
    inner = seq(K, v, (4,), lambda L, f: [
        L.Dense(3, activation="tanh", activity_regularizer=R.L2(0.1), **f),
        L.Dense(2)])
    return seq(K, v, (6, 3), lambda L, f: [
        L.LSTM(4, return_sequences=True, **f), L.TimeDistributed(inner)])


def build_td_td_sequential_activity(K, v):
    R = K.regularizers
    inner = seq(K, v, (2,), lambda L, f: [
        L.Dense(3, activation="tanh",
                activity_regularizer=R.L1L2(l1=0.02, l2=0.1), **f)])
    return seq(K, v, (3, 4, 2), lambda L, f: [
        L.TimeDistributed(L.TimeDistributed(inner), **f), L.Flatten(),
        L.Dense(1)])


def build_frozen_activity(K, v):
    R = K.regularizers
    return seq(K, v, (6,), lambda L, f: [
        L.Dense(4, **f),
        L.Dense(3, activation="tanh", trainable=False,
                activity_regularizer=R.L2(0.2)),
        L.Dense(1)])


def data_ids_regression(rng):
    return {"x": [padded_ids(rng, 32, 6, 10)], "y": u(rng, 32, 1)}


def data_ids_binary(rng):
    x = rng.integers(0, 12, size=(32, 6)).astype(np.int32)
    y = rng.integers(0, 2, size=(32, 1)).astype(np.float32)
    return {"x": [x], "y": y}


def positive_at(*indices):
    """The uniform(-0.5, 0.5) draws, made positive (|w| + 0.5) at `indices`:
    BatchNormalization's moving variances."""
    def init(w0):
        return [np.abs(w) + np.float32(0.5) if i in indices else w
                for i, w in enumerate(w0)]
    return init


def data_shaped_regression(n, *shape):
    """x (n, *shape) and y (n, 1), both uniform(-1, 1)."""
    def make(rng):
        return {"x": [u(rng, n, *shape)], "y": u(rng, n, 1)}
    return make


def data_regression(n, t, f, out=1, scale=1.0):
    def make(rng):
        x = u(rng, n, t, f)
        y = u(rng, n, out, lo=-scale, hi=scale)
        return {"x": [x], "y": y}
    return make


def data_seq_regression(rng):
    return {"x": [u(rng, 32, 6, 3)], "y": u(rng, 32, 6, 2)}


def data_gru_v1(rng):
    return {"x": [u(rng, 44, 4, 3)], "y": one_hot(rng, 44, 3)}


def data_bidir(rng):
    x = u(rng, 36, 5, 2)
    y = rng.integers(0, 2, size=(36, 1)).astype(np.float32)
    xv = u(rng, 12, 5, 2)
    yv = rng.integers(0, 2, size=(12, 1)).astype(np.float32)
    return {"x": [x], "y": y, "val": ([xv], yv)}


def data_embedding_lstm(rng):
    x = padded_ids(rng, 40, 6, 10)
    y = rng.integers(0, 3, size=40).astype(np.float32)
    return {"x": [x], "y": y}


def data_autoencoder(rng):
    x = u(rng, 32, 5, 2)
    return {"x": [x], "y": x.copy()}


def data_masked_bidir_gru(rng):
    x = padded_ids(rng, 40, 6, 10)
    # labels also at the padded steps, so a masked and an unmasked loss
    # differ
    y = rng.integers(0, 2, size=(40, 6)).astype(np.float32)
    return {"x": [x], "y": y}


def data_two_inputs(rng):
    return {"x": [u(rng, 32, 5, 3), u(rng, 32, 4, 2)], "y": u(rng, 32, 1)}


def data_masked_lstm_acc(rng):
    x = padded_ids(rng, 36, 5, 12)
    y = rng.integers(0, 3, size=(36, 5)).astype(np.float32)
    return {"x": [x], "y": y}


def data_saturating(shape, classes=None, sparse=False):
    """x uniform(-30, 30) of (32, *shape), so that the logits of a final
    sigmoid or softmax reach tens and its probabilities saturate in float32;
    random binary targets (32, 1), or with `classes` one-hot (32, classes)
    or sparse (32,) labels, or with a sequence shape (32, T, 1)."""
    def make(rng):
        x = u(rng, 32, *shape, lo=-30.0, hi=30.0)
        if classes is None:
            out = (32,) + tuple(shape[:-1]) + (1,)
            y = rng.integers(0, 2, size=out).astype(np.float32)
        elif sparse:
            y = rng.integers(0, classes, size=32).astype(np.float32)
        else:
            y = one_hot(rng, 32, classes)
        return {"x": [x], "y": y}
    return make


def opt(name, **kw):
    return lambda K: getattr(K.optimizers, name)(**kw)


def comp(optimizer, loss, metrics=()):
    def make(K):
        lo = loss(K) if callable(loss) else loss
        return {"optimizer": optimizer(K), "loss": lo,
                "metrics": list(metrics)}
    return make


def scheduled(name, schedule, **kw):
    """An optimizer whose learning_rate is K.optimizers.schedules.<schedule[0]>(**schedule[1])."""
    def make(K):
        cls, args = schedule
        return getattr(K.optimizers, name)(
            learning_rate=getattr(K.optimizers.schedules, cls)(**args), **kw)
    return make


CASES = {
    "simple_rnn_sgd_expdecay": Case(
        "SimpleRNN(4) -> Dense(1); SGD(ExponentialDecay(0.1, decay_steps=3, "
        "decay_rate=0.5, staircase=True), momentum=0.5); mse; a schedule in "
        "the file's compile config",
        build_simple_rnn,
        comp(scheduled("SGD", ("ExponentialDecay", dict(
            initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5,
            staircase=True)), momentum=0.5), "mse"),
        data_regression(36, 5, 3), loss_np=("mse", {})),
    "gru_rmsprop_piecewise": Case(
        "GRU(4) -> Dense(1); RMSprop(PiecewiseConstantDecay([4, 8], [0.02, "
        "0.01, 0.005])); mae",
        build_gru_v2,
        comp(scheduled("RMSprop", ("PiecewiseConstantDecay", dict(
            boundaries=[4, 8], values=[0.02, 0.01, 0.005]))), "mae"),
        data_regression(40, 5, 2), loss_np=("mae", {})),
    "lstm_seq_adam_cosine": Case(
        "LSTM(4, return_sequences=True) -> TimeDistributed(Dense(2)); "
        "Adam(CosineDecay(0.0, decay_steps=6, alpha=0.1, warmup_target=0.02, "
        "warmup_steps=3)); mse",
        build_lstm_seq,
        comp(scheduled("Adam", ("CosineDecay", dict(
            initial_learning_rate=0.0, decay_steps=6, alpha=0.1,
            warmup_target=0.02, warmup_steps=3))), "mse"),
        data_seq_regression, loss_np=("mse", {})),
    "simple_rnn_sgd_mse": Case(
        "SimpleRNN(4) -> Dense(1); SGD(0.05); mse; 36 samples (last batch "
        "of each epoch has 4)",
        build_simple_rnn, comp(opt("SGD", learning_rate=0.05), "mse"),
        data_regression(36, 5, 3), loss_np=("mse", {})),
    "lstm_seq_adam_mse": Case(
        "LSTM(4, return_sequences=True) -> TimeDistributed(Dense(2)); "
        "Adam(0.01); mse on a (batch, 6, 2) output",
        build_lstm_seq, comp(opt("Adam", learning_rate=0.01), "mse"),
        data_seq_regression, loss_np=("mse", {})),
    "gru_rmsprop_mae": Case(
        "GRU(4, reset_after=True) -> Dense(1); RMSprop(0.01); mae",
        build_gru_v2, comp(opt("RMSprop", learning_rate=0.01), "mae"),
        data_regression(40, 5, 2), loss_np=("mae", {})),
    "gru_v1_softmax_cce": Case(
        "GRU(3, reset_after=False) -> Dense(3, softmax); Adam(); "
        "categorical_crossentropy; metrics ['accuracy'] (resolves to "
        "categorical accuracy); 44 samples (last batch 4)",
        build_gru_v1, comp(opt("Adam"), "categorical_crossentropy",
                           ["accuracy"]),
        data_gru_v1, loss_np=("cce", {})),
    "bidir_lstm_sum_bce_valdata": Case(
        "Bidirectional(LSTM(3), merge_mode='sum') -> Dense(1, sigmoid); "
        "Adam(); binary_crossentropy; metrics ['accuracy'] (binary "
        "accuracy); validation_data of 12 samples (val batches 8 + 4)",
        build_bidir_sum, comp(opt("Adam"), "binary_crossentropy",
                              ["accuracy"]),
        data_bidir, loss_np=("bce", {})),
    "embedding_lstm_logits_clipnorm": Case(
        "Embedding(10, 4, mask_zero=True) -> LSTM(4) -> Dense(3) (logits); "
        "SparseCategoricalCrossentropy(from_logits=True); "
        "Adam(clipnorm=1.0); metrics ['accuracy'] (sparse categorical "
        "accuracy); int32 ids right-padded with 0; labels (batch,)",
        build_embedding_lstm,
        comp(opt("Adam", clipnorm=1.0),
             lambda K: K.losses.SparseCategoricalCrossentropy(
                 from_logits=True), ["accuracy"]),
        data_embedding_lstm, loss_np=("scce", {"from_logits": True})),
    "frozen_lstm_gru_momentum": Case(
        "LSTM(4, return_sequences=True, trainable=False) -> GRU(3) -> "
        "Dense(1); SGD(0.1, momentum=0.9); mse; the frozen LSTM's weights "
        "must not change and get no optimizer slots",
        build_frozen, comp(opt("SGD", learning_rate=0.1, momentum=0.9),
                           "mse"),
        data_regression(32, 5, 3), loss_np=("mse", {})),
    "go_backwards_nesterov_huber": Case(
        "SimpleRNN(4, go_backwards=True) -> Dense(1); SGD(0.05, "
        "momentum=0.9, nesterov=True); huber (delta 1); targets in "
        "(-3, 3) so both Huber regimes occur; 36 samples",
        build_go_backwards,
        comp(opt("SGD", learning_rate=0.05, momentum=0.9, nesterov=True),
             "huber"),
        data_regression(36, 6, 2, scale=3.0), loss_np=("huber", {})),
    "seq2seq_autoencoder": Case(
        "LSTM(4) -> RepeatVector(5) -> LSTM(4, return_sequences=True) -> "
        "TimeDistributed(Dense(2)); Adam(); mse; y = x",
        build_autoencoder, comp(opt("Adam"), "mse"),
        data_autoencoder, loss_np=("mse", {})),
    "masked_bidir_gru_seq_scce": Case(
        "Embedding(10, 4, mask_zero=True) -> Bidirectional(GRU(3, "
        "return_sequences=True)) -> TimeDistributed(Dense(2, softmax)); "
        "sparse_categorical_crossentropy on (batch, 6) labels; Adam(); "
        "labels exist at padded steps too (masked out by the mask that "
        "reaches the output)",
        build_masked_bidir_gru,
        comp(opt("Adam"), "sparse_categorical_crossentropy"),
        data_masked_bidir_gru, loss_np=("scce", {}), mask_fn=ids_mask),
    "dropout_adagrad_valsplit": Case(
        "LSTM(4) -> Dropout(0.0) -> Dense(1); Adagrad(0.1); mse; "
        "validation_split=0.25 of 42 samples: train on the first "
        "floor(42 * 0.75) = 31 (batches 8, 8, 8, 7), validate on the last "
        "11 (8 + 3)",
        build_dropout, comp(opt("Adagrad", learning_rate=0.1), "mse"),
        data_regression(42, 5, 3), fit={"validation_split": 0.25},
        loss_np=("mse", {})),
    "functional_two_inputs": Case(
        "Functional: Input(5,3) -> LSTM(3); Input(4,2) -> GRU(3); "
        "Concatenate -> Dense(1); Adam(); mse; x is a list of two arrays "
        "(model input order)",
        build_two_inputs, comp(opt("Adam"), "mse"),
        data_two_inputs, loss_np=("mse", {})),
    "masked_lstm_seq_accuracy": Case(
        "Embedding(12, 3, mask_zero=True) -> LSTM(4, return_sequences=True)"
        " -> TimeDistributed(Dense(3, softmax)); "
        "sparse_categorical_crossentropy; Adam(0.05) (large, so the accuracy"
        " changes between epochs); metrics ['accuracy'] on a masked "
        "sequence output; 36 samples (last batch 4)",
        build_masked_lstm_acc,
        comp(opt("Adam", learning_rate=0.05),
             "sparse_categorical_crossentropy", ["accuracy"]),
        data_masked_lstm_acc, loss_np=("scce", {}), mask_fn=ids_mask),
    "dense_bn_sgd_mse": Case(
        "Dense(4) -> BatchNormalization(momentum=0.8) -> Dense(1); "
        "SGD(0.05); mse; 36 samples (last batch 4): each step normalizes "
        "by its batch and moves the moving statistics once; evaluate "
        "normalizes by them",
        build_dense_bn, comp(opt("SGD", learning_rate=0.05), "mse"),
        data_shaped_regression(36, 6), loss_np=("mse", {}),
        init=positive_at(5)),
    "dense_bn_4d_sgd_mse": Case(
        "Input(2, 2, 3) -> Dense(3) -> BatchNormalization(momentum=0.7) -> "
        "Flatten -> Dense(1); SGD(0.05); mse; 36 samples: on a rank-4 "
        "input tf_keras runs its fused kernel, which moves the moving "
        "variance toward the unbiased batch variance, Keras 3 toward the "
        "biased one",
        build_dense_bn_4d, comp(opt("SGD", learning_rate=0.05), "mse"),
        data_shaped_regression(36, 2, 2, 3), loss_np=("mse", {}),
        init=positive_at(5)),
    "dense_bn_renorm_sgd_mse": Case(
        "Dense(4) -> BatchNormalization(momentum=0.8, renorm=True, "
        "renorm_momentum=0.7, renorm_clipping={rmax: 1.3, rmin: 0.7, dmax: "
        "0.4}) -> Dense(1); SGD(0.05, momentum=0.5); mse; 36 samples (last "
        "batch 4): batch renormalization, r and d clipped, every step moves "
        "the moving and renorm statistics; evaluate normalizes by the moving "
        "ones",
        build_dense_bn_renorm,
        comp(opt("SGD", learning_rate=0.05, momentum=0.5), "mse"),
        data_shaped_regression(36, 6), loss_np=("mse", {}),
        init=positive_at(5, 6, 8)),
    "lstm_regularized_sgd": Case(
        "LSTM(4, kernel_regularizer=L2(0.01), recurrent_regularizer=L1(0.005),"
        " bias_regularizer=L1L2(0.001, 0.002)) -> Dense(1, "
        "kernel_regularizer=L2(0.05), kernel_constraint=MaxNorm(0.8), "
        "bias_constraint=NonNeg()); SGD(0.1, momentum=0.5); mse: the loss "
        "holds the penalties, the gradients theirs, and each step ends "
        "with the constraints",
        build_lstm_regularized,
        comp(opt("SGD", learning_rate=0.1, momentum=0.5), "mse"),
        data_regression(36, 5, 3)),
    "gru_constrained_adam": Case(
        "GRU(3, reset_after=False, kernel_constraint=UnitNorm(axis=0), "
        "recurrent_constraint=MinMaxNorm(0.2, 0.9, rate=0.7, axis=[0])) -> "
        "Dense(3, softmax, kernel_regularizer=L2(0.02), "
        "kernel_constraint=MaxNorm(1.0, axis=[0, 1])); Adam(0.02); "
        "categorical_crossentropy; metrics ['accuracy']",
        build_gru_constrained,
        comp(opt("Adam", learning_rate=0.02), "categorical_crossentropy",
             ["accuracy"]),
        data_gru_v1),
    "frozen_regularized_rmsprop": Case(
        "LSTM(4, return_sequences=True, trainable=False, "
        "kernel_regularizer=L2(0.1)) -> GRU(3, recurrent_regularizer="
        "L2(0.05)) -> Dense(1, bias_regularizer=L1(0.1)); RMSprop(0.01); "
        "mse: tf_keras's loss holds the frozen LSTM's penalty, Keras 3's "
        "does not",
        build_frozen_regularized,
        comp(opt("RMSprop", learning_rate=0.01), "mse"),
        data_regression(32, 5, 3)),
    "embedding_conv_bn_regularized": Case(
        "Embedding(12, 4, embeddings_regularizer=L2(0.01)) -> Conv1D(3, 2, "
        "kernel_regularizer=L1(0.01), bias_constraint=NonNeg()) -> "
        "GlobalMaxPooling1D -> BatchNormalization(gamma_regularizer=L2(0.1),"
        " beta_constraint=MaxNorm(0.3)) -> Dense(1, sigmoid); SGD(0.1); "
        "binary_crossentropy; int32 ids",
        build_embedding_conv_bn_regularized,
        comp(opt("SGD", learning_rate=0.1), "binary_crossentropy"),
        data_ids_binary, init=positive_at(6)),
    "bidir_regularized_adam": Case(
        "Bidirectional(SimpleRNN(3, kernel_regularizer=L2(0.02), "
        "recurrent_constraint=MaxNorm(1.0))) -> Dense(1); Adam(0.01); mse: "
        "both directions' rules",
        build_bidir_regularized,
        comp(opt("Adam", learning_rate=0.01), "mse"),
        data_regression(32, 5, 2)),
    "dense_sigmoid_saturated_bce": Case(
        "Dense(4, relu) -> Dense(1, sigmoid) on x in (-30, 30); SGD(0.01); "
        "binary_crossentropy; metrics ['accuracy']: both Keras take the "
        "loss from the sigmoid's logits (_keras_logits), so saturated "
        "outputs still give a loss of tens and a gradient",
        build_dense_sigmoid,
        comp(opt("SGD", learning_rate=0.01), "binary_crossentropy",
             ["accuracy"]),
        data_saturating((6,))),
    "dense_softmax_saturated_cce": Case(
        "Dense(3, softmax) on x in (-30, 30); Adam(0.01); "
        "categorical_crossentropy; metrics ['accuracy']: from the "
        "softmax's logits",
        build_dense_softmax,
        comp(opt("Adam", learning_rate=0.01), "categorical_crossentropy",
             ["accuracy"]),
        data_saturating((6,), classes=3)),
    "functional_activation_softmax_sparse": Case(
        "Functional: Dense(4, tanh) -> Dense(3) -> Activation(softmax) on "
        "x in (-30, 30); SGD(0.05, momentum=0.9); "
        "sparse_categorical_crossentropy: the Activation layer's logits",
        build_functional_activation_softmax,
        comp(opt("SGD", learning_rate=0.05, momentum=0.9),
             "sparse_categorical_crossentropy"),
        data_saturating((6,), classes=3, sparse=True)),
    "td_sigmoid_saturated_bce": Case(
        "TimeDistributed(Dense(1, sigmoid)) on x (32, 4, 6) in (-30, 30); "
        "SGD(0.01); binary_crossentropy: TimeDistributed reshapes the "
        "output, so both Keras take the loss from the clipped "
        "probabilities, each with its own formula",
        build_td_sigmoid,
        comp(opt("SGD", learning_rate=0.01), "binary_crossentropy"),
        data_saturating((4, 6))),
    "dense_activity_l2_sgd": Case(
        "Dense(4, tanh, activity_regularizer=L2(0.05)) -> Dense(1); SGD(0.1);"
        " mse; 36 samples (last batch 4): each batch's loss holds "
        "0.05 * sum(h^2) / batch of the first Dense's output h, and its "
        "gradient reaches the first Dense",
        build_dense_activity, comp(opt("SGD", learning_rate=0.1), "mse"),
        data_shaped_regression(36, 6)),
    "lstm_activity_l1_adam": Case(
        "LSTM(4, activity_regularizer=L1(0.01)) -> Dense(1); Adam(0.01); "
        "mse: the penalty of the last output",
        build_lstm_activity, comp(opt("Adam", learning_rate=0.01), "mse"),
        data_regression(32, 5, 3)),
    "masked_lstm_seq_activity_sgd": Case(
        "Embedding(10, 4, mask_zero=True) -> LSTM(4, return_sequences=True, "
        "activity_regularizer=L1L2(0.01, 0.02)) -> LSTM(3) -> Dense(1); "
        "SGD(0.1); mse; int32 ids right-padded with 0: the penalty is over "
        "every timestep of the sequence, the padded ones (which repeat the "
        "last real output) included",
        build_masked_lstm_seq_activity,
        comp(opt("SGD", learning_rate=0.1), "mse"), data_ids_regression),
    "activity_regularization_layer_rmsprop": Case(
        "LSTM(4, return_sequences=True) -> ActivityRegularization(l1=0.01, "
        "l2=0.05) -> GRU(3) -> Dense(1); RMSprop(0.01); mse: the layer's "
        "penalty is its activity_regularizer's, divided by the batch size",
        build_activity_regularization_layer,
        comp(opt("RMSprop", learning_rate=0.01), "mse"),
        data_regression(32, 5, 3)),
    "functional_activity_states": Case(
        "Functional: Input(5,3) -> LSTM(3, return_state=True, "
        "activity_regularizer=L2(0.05)) -> [o, h, c]; Input(4,2) -> "
        "Bidirectional(GRU(2, activity_regularizer=L1(0.02))); "
        "Concatenate([o, c, bidir]) -> Dense(1); Adam(0.01); mse: the LSTM's "
        "three outputs are each penalized (h, unused, too), each direction "
        "of the Bidirectional on its own output",
        build_functional_activity, comp(opt("Adam", learning_rate=0.01), "mse"),
        data_two_inputs),
    "td_dense_activity_sgd": Case(
        "LSTM(4, return_sequences=True) -> TimeDistributed(Dense(2, "
        "activity_regularizer=L2(0.1))); SGD(0.1); mse on a (batch, 6, 2) "
        "output: tf_keras calls the Dense on the batch * 6 rows and divides "
        "by batch * 6; Keras 3 calls the Dense's call() and adds no penalty",
        build_td_dense_activity, comp(opt("SGD", learning_rate=0.1), "mse"),
        data_seq_regression),
    "td_sequential_activity_sgd": Case(
        "LSTM(4, return_sequences=True) -> TimeDistributed(Sequential(["
        "Dense(3, tanh, activity_regularizer=L2(0.1)), Dense(2)])); SGD(0.1);"
        " mse on a (batch, 6, 2) output: tf_keras calls the Sequential on the"
        " batch * 6 rows, and its Functional.compute_mask runs it once more,"
        " so the penalty is 2 * 0.1 * sum(h^2) / (batch * 6); Keras 3 calls"
        " the Sequential's call() once per timestep, whose Dense divides by"
        " the batch: 0.1 * sum(h^2) / batch",
        build_td_sequential_activity,
        comp(opt("SGD", learning_rate=0.1), "mse"), data_seq_regression),
    "td_td_sequential_activity_sgd": Case(
        "TimeDistributed(TimeDistributed(Sequential([Dense(3, tanh, "
        "activity_regularizer=L1L2(0.02, 0.1))]))) -> Flatten -> Dense(1) on"
        " (3, 4, 2); SGD(0.1); mse: tf_keras's penalty is 3 times the"
        " Dense's over the batch * 12 rows (the call, and the Sequential"
        " run again by each TimeDistributed's compute_mask); Keras 3's is"
        " the Dense's divided by the batch",
        build_td_td_sequential_activity,
        comp(opt("SGD", learning_rate=0.1), "mse"),
        data_shaped_regression(32, 3, 4, 2)),
    "frozen_activity_sgd": Case(
        "Dense(4) -> Dense(3, tanh, trainable=False, activity_regularizer="
        "L2(0.2)) -> Dense(1); SGD(0.1); mse: the frozen layer's penalty "
        "counts in both libraries and its gradient reaches the first Dense "
        "through the frozen one",
        build_frozen_activity, comp(opt("SGD", learning_rate=0.1), "mse"),
        data_shaped_regression(32, 6)),
}


# --------------------------------------------------------------------------
# JSON helpers
# --------------------------------------------------------------------------

def jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    return obj


def array(arr, **extra):
    arr = np.asarray(arr)
    out = {"shape": list(arr.shape), "dtype": str(arr.dtype)}
    out.update(extra)
    if arr.dtype == np.float32:
        out["data"] = f32_list(arr)
    else:
        out["data"] = [float(v) for v in arr.ravel().tolist()]
    return out


def weights_list(model, v):
    out = []
    for var, w in zip(model.weights, model.get_weights()):
        name = var.name if v == "tf" else var.path
        out.append({"name": name, "shape": list(w.shape),
                    "data": f32_list(w)})
    return out


def optimizer_variables(model, v):
    out = []
    for var in model.optimizer.variables:
        val = np.asarray(var.numpy())
        entry = {"name": var.name}
        if v == "k3":
            entry["path"] = var.path
        entry.update({"shape": list(val.shape), "dtype": str(val.dtype),
                      "data": f32_list(val) if val.dtype == np.float32
                      else [float(x) for x in val.ravel().tolist()]})
        out.append(entry)
    return out


def dumps(obj, indent=0):
    """JSON with one space of indentation per level, but lists of numbers
    (and short lists of strings) on one line."""
    pad = " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{json.dumps(k)}: {dumps(v, indent + 1)}"
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(obj, list):
        if all(isinstance(x, (int, float, bool)) or x is None for x in obj):
            return "[" + ", ".join(json.dumps(x) for x in obj) + "]"
        if all(isinstance(x, str) for x in obj) and sum(
                len(x) for x in obj) < 80:
            return json.dumps(obj)
        items = [pad + dumps(x, indent + 1) for x in obj]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return json.dumps(obj, ensure_ascii=False)


# --------------------------------------------------------------------------
# Numpy loss (float64) for the recomputation check
# --------------------------------------------------------------------------

EPS = 1e-7


def np_losses(kind, kw, y, p):
    """Per-element (per sample, or per sample and timestep) losses."""
    y = np.asarray(y, np.float64)
    p = np.asarray(p, np.float64)
    if kind == "mse":
        return np.mean((p - y) ** 2, axis=-1)
    if kind == "mae":
        return np.mean(np.abs(p - y), axis=-1)
    if kind == "huber":
        e = np.abs(p - y)
        return np.mean(np.where(e <= 1.0, 0.5 * e ** 2, e - 0.5), axis=-1)
    if kind == "bce":
        q = np.clip(p, EPS, 1 - EPS)
        return np.mean(-(y * np.log(q) + (1 - y) * np.log(1 - q)), axis=-1)
    if kind == "cce":
        q = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
        return -np.sum(y * np.log(q), axis=-1)
    if kind == "scce":
        if kw.get("from_logits"):
            z = p - p.max(-1, keepdims=True)
            logq = z - np.log(np.exp(z).sum(-1, keepdims=True))
        else:
            logq = np.log(np.clip(p, EPS, 1 - EPS))
        idx = y.astype(np.int64)
        return -np.take_along_axis(logq, idx[..., None], axis=-1)[..., 0]
    raise ValueError(kind)


# --------------------------------------------------------------------------
# Running a case
# --------------------------------------------------------------------------

def feed(xs):
    return xs[0] if len(xs) == 1 else list(xs)


def build_compiled(v, case, w0):
    K = LIBS[v]
    fresh(K)
    model = case.build(K, v)
    model.set_weights(w0)
    model.compile(**case.compile(K))
    return model


def history_dict(history):
    return {k: [float(x) for x in vals] for k, vals in history.history.items()}


def resolved_metrics(model, v):
    """What each compiled metric name resolved to."""
    out = []
    if v == "tf":
        for m in model.compiled_metrics.metrics:
            fn = getattr(m, "_fn", None)
            out.append({"name": m.name, "class": type(m).__name__,
                        "fn": fn.__name__ if fn is not None else None})
        return out

    def walk(m):
        subs = getattr(m, "metrics", None)
        if type(m).__name__ in ("CompileMetrics", "MetricsList") and subs:
            for s in subs:
                walk(s)
            return
        if type(m).__name__ == "CompileMetrics":
            for s in m._flat_metrics + m._flat_weighted_metrics:
                if s is not None:
                    walk(s)
            return
        out.append({"name": m.name, "class": type(m).__name__})
    if model._compile_metrics is not None:
        walk(model._compile_metrics)
    return out


def batches(n, size):
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def slice_xs(xs, a, b):
    return [x[a:b] for x in xs]


def split_data(case, d):
    """(train xs, train y, val xs or None, val y, split_at)."""
    vs = case.fit.get("validation_split", 0.0)
    n = len(d["y"])
    if vs:
        split_at = int(math.floor(n * (1.0 - vs)))
        return (slice_xs(d["x"], 0, split_at), d["y"][:split_at],
                slice_xs(d["x"], split_at, n), d["y"][split_at:], split_at)
    if "val" in d:
        return d["x"], d["y"], d["val"][0], d["val"][1], None
    return d["x"], d["y"], None, None, None


def weighted(values, weights):
    values = np.asarray(values, np.float64)
    weights = np.asarray(weights, np.float64)
    return float(np.sum(values * weights) / np.sum(weights))


def replay(v, case, w0, d, mask_fn):
    """Train a fresh copy batch by batch; return (per-epoch dicts of the
    candidate reductions, final weights, evaluate candidates)."""
    model = build_compiled(v, case, w0)
    xt, yt, xv, yv, _ = split_data(case, d)
    epochs = []

    def run(fn, xs, y):
        logs, sizes, valid = [], [], []
        for a, b in batches(len(y), BATCH):
            logs.append(fn(feed(slice_xs(xs, a, b)), y[a:b],
                           return_dict=True))
            sizes.append(b - a)
            valid.append(int(mask_fn(xs[0][a:b]).sum()) if mask_fn
                         else b - a)
        keys = list(logs[0])
        out = {}
        for k in keys:
            vals = [lg[k] for lg in logs]
            out[k] = {"batch_size_weighted": weighted(vals, sizes),
                      "unweighted": float(np.mean(vals))}
            if mask_fn:
                out[k]["valid_count_weighted"] = weighted(vals, valid)
        return out

    for _ in range(EPOCHS):
        ep = run(model.train_on_batch, xt, yt)
        if xv is not None:
            for k, val in run(model.test_on_batch, xv, yv).items():
                ep["val_" + k] = val
        epochs.append(ep)
    ev = run(model.test_on_batch, d["x"], d["y"])
    return epochs, model.get_weights(), ev


def compare_replay(history, epochs):
    """max |history - candidate| per reduction over epochs and keys."""
    out = {}
    for k, vals in history.items():
        for e, hv in enumerate(vals):
            for red, cand in epochs[e][k].items():
                d = abs(hv - cand)
                out.setdefault(red, {}).setdefault(k, 0.0)
                out[red][k] = max(out[red][k], d)
    return out


def max_abs(a_list, b_list):
    return max((float(np.max(np.abs(np.asarray(a, np.float64)
                                    - np.asarray(b, np.float64))))
                if np.asarray(a).size else 0.0)
               for a, b in zip(a_list, b_list))


def loss_check(v, case, w0, d, tob_loss):
    """The first batch's loss from the untrained model's predictions."""
    if case.loss_np is None:
        return None
    model = build_compiled(v, case, w0)
    xs = slice_xs(d["x"], 0, BATCH)
    y = d["y"][:BATCH]
    p = np.asarray(model(feed(xs), training=False))
    per = np_losses(case.loss_np[0], case.loss_np[1], y, p)
    out = {"train_on_batch_loss": tob_loss}
    if case.mask_fn is not None:
        m = case.mask_fn(xs[0])
        out["valid_timesteps"] = int(m.sum())
        out["all_timesteps"] = int(m.size)
        out["numpy_mean_over_valid_timesteps"] = float(per[m].mean())
        out["numpy_sum_valid_over_all_timesteps"] = float(
            per[m].sum() / m.size)
        out["numpy_mean_over_all_timesteps_unmasked"] = float(per.mean())
        out["abs_diff_mean_over_valid"] = abs(
            out["numpy_mean_over_valid_timesteps"] - tob_loss)
    else:
        out["numpy_mean"] = float(per.mean())
        out["abs_diff"] = abs(out["numpy_mean"] - tob_loss)
    return out


def grad_norms(v, case, w0, d):
    """Per-variable gradient norms of the first batch's loss (untrained
    model), to show whether clipnorm clips."""
    model = build_compiled(v, case, w0)
    xs = slice_xs(d["x"], 0, BATCH)
    y = d["y"][:BATCH]
    lossf = case.compile(LIBS[v])["loss"]
    if isinstance(lossf, str):
        lossf = LIBS[v].losses.get(lossf)
    with tf.GradientTape() as tape:
        p = model(feed(xs), training=True)
        loss = tf.reduce_mean(lossf(y, p))
    grads = tape.gradient(loss, model.trainable_weights)
    return [{"name": w.name if v == "tf" else w.path,
             "norm": float(tf.norm(g).numpy())}
            for w, g in zip(model.trainable_weights, grads)]


def embedding_adam_first_step(v, case, w0, d, res):
    """Embedding + Adam: the first step's embedding update recomputed in
    numpy from the first batch's IndexedSlices gradient, (a) with dense
    Adam on the summed gradient (v += (1-b2) * (sum g)^2) and (b) with the
    squares of the slices summed per row (v += (1-b2) * sum(g^2)).
    Returns the max abs diff of each candidate to the library's
    train_on_batch embeddings."""
    model = build_compiled(v, case, w0)
    xs = slice_xs(d["x"], 0, BATCH)
    y = tf.constant(d["y"][:BATCH].astype(np.int32))
    with tf.GradientTape() as tape:
        p = model(feed(xs), training=True)
        if case.loss_np[1].get("from_logits"):
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(y, p)
        else:
            q = tf.clip_by_value(p, EPS, 1 - EPS)
            ce = -tf.math.log(tf.gather(q, y, batch_dims=len(y.shape)))
        if case.mask_fn is not None:
            mask = tf.constant(case.mask_fn(xs[0]), tf.float32)
            loss = tf.reduce_sum(ce * mask) / tf.reduce_sum(mask)
        else:
            loss = tf.reduce_mean(ce)
    g = tape.gradient(loss, model.trainable_weights[0])
    assert isinstance(g, tf.IndexedSlices), type(g)
    vals = g.values.numpy().astype(np.float64)
    idx = g.indices.numpy()
    e0 = w0[0].astype(np.float64)
    gsum, gsq = np.zeros_like(e0), np.zeros_like(e0)
    np.add.at(gsum, idx, vals)
    np.add.at(gsq, idx, vals ** 2)
    cfg = model.optimizer.get_config()
    lr, b1, b2, eps = (float(cfg["learning_rate"]), cfg["beta_1"],
                       cfg["beta_2"], cfg["epsilon"])
    alpha = lr * math.sqrt(1 - b2) / (1 - b1)

    def step(sq):
        return e0 - alpha * ((1 - b1) * gsum) / (np.sqrt((1 - b2) * sq) + eps)
    got = np.asarray(res["train_on_batch"]["weights"][0]["data"]).reshape(
        e0.shape)
    return {
        "dense_adam_on_summed_gradient": float(np.abs(step(gsum ** 2)
                                                      - got).max()),
        "adam_with_per_slice_squares_summed": float(np.abs(step(gsq)
                                                           - got).max()),
        "slices": int(len(idx)), "distinct_rows": int(len(set(idx.tolist()))),
        "gradient_norm_summed": float(np.sqrt((gsum ** 2).sum())),
        "gradient_norm_slices": float(np.sqrt((vals ** 2).sum())),
    }


def save_files(v, model, name, d):
    """Save the untrained compiled model. tf_keras's .h5 stores the
    RESOLVED metrics (MeanMetricWrapper with its fn) in training_config;
    when the model has never seen data, saving resolves "accuracy" against
    y_pred-shaped targets (categorical_accuracy even for sparse labels).
    So before the .h5 one test_on_batch on the first batch builds the
    metrics from the real labels (weights and optimizer are untouched)."""
    if v == "tf":
        model.save(str(OUT_DIR / f"{name}.tf.keras"))
        model.test_on_batch(feed(slice_xs(d["x"], 0, BATCH)), d["y"][:BATCH])
        model.save(str(OUT_DIR / f"{name}.tf.h5"))
        return [f"{name}.tf.keras", f"{name}.tf.h5"]
    model.save(str(OUT_DIR / f"{name}.k3.keras"))
    return [f"{name}.k3.keras"]


def metric_names_of(case):
    return case.compile(LIBS["k3"])["metrics"]


def h5_quirk(case, w0):
    """training_config metrics of a tf_keras .h5 written from a compiled
    model that has not run a single batch (informational)."""
    path = OUT_DIR / "_quirk.h5"
    build_compiled("tf", case, w0).save(str(path))
    _, cfg = compile_config_of(path)
    path.unlink()
    return cfg["metrics"]


def compile_config_of(path):
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as z:
            cfg = json.loads(z.read("config.json"))
        return "compile_config", cfg.get("compile_config")
    with h5py.File(path, "r") as f:
        val = f.attrs.get("training_config")
    if val is None:
        return "training_config", None
    return "training_config", json.loads(
        val.decode() if isinstance(val, bytes) else val)


def reload_fit(v, case, path, d, ref_history, ref_weights):
    """Load the file WITH its compile config, fit again, compare."""
    K = LIBS[v]
    fresh(K)
    try:
        model = K.models.load_model(str(path))
    except Exception as exc:  # noqa: BLE001
        return {"error": "load_model failed: " + short_error(exc)}
    if model.optimizer is None or not getattr(model, "compiled_loss", True):
        return {"error": "loaded model is not compiled"}
    h = fit(model, case, d)
    hist = history_dict(h)
    out = {"optimizer_class": type(model.optimizer).__name__,
           "history_keys": list(hist)}
    if list(hist) != list(ref_history):
        out["error"] = f"history keys {list(hist)} != {list(ref_history)}"
        return out
    out["history_max_abs_diff"] = max(
        abs(a - b) for k in hist for a, b in zip(hist[k], ref_history[k]))
    out["final_weights_max_abs_diff"] = max_abs(model.get_weights(),
                                                ref_weights)
    return out


def fit(model, case, d):
    kw = dict(case.fit)
    if "val" in d:
        kw["validation_data"] = (feed(d["val"][0]), d["val"][1])
    return model.fit(feed(d["x"]), d["y"], epochs=EPOCHS, batch_size=BATCH,
                     shuffle=False, verbose=0, **kw)


def loss_description(loss):
    if isinstance(loss, str):
        return loss
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def layer_order_weights(model):
    """get_weights() rebuilt layer by layer (layer.get_weights() in
    model.layers order)."""
    return [w for layer in model.layers for w in layer.get_weights()]


def run_case(name, case):
    rng = case_rng(name)
    # Initial weights: in get_weights order, same shapes in both libraries,
    # which is also the layer order (asserted).
    shapes = {}
    for v in ("tf", "k3"):
        K = LIBS[v]
        fresh(K)
        model = case.build(K, v)
        gw = model.get_weights()
        lw = layer_order_weights(model)
        assert [w.shape for w in gw] == [w.shape for w in lw], (name, v)
        shapes[v] = [w.shape for w in gw]
        if v == "tf":
            tf_names = [w.name for w in model.weights]
        else:
            k3_names = [w.path for w in model.weights]
    assert shapes["tf"] == shapes["k3"], (name, shapes)
    w0 = [rng.uniform(-0.5, 0.5, size=s).astype(np.float32)
          for s in shapes["tf"]]
    if case.init is not None:
        w0 = case.init(w0)
    d = case.data(rng)
    xt, yt, xv, yv, split_at = split_data(case, d)

    results, checks, files = {}, {}, []
    for v in ("tf", "k3"):
        key = VKEY[v]
        K = LIBS[v]
        # The files are written from their own compiled copy: saving a
        # compiled but never-trained tf_keras model as .h5 builds its
        # metrics against y_pred-shaped targets, so "accuracy" of that
        # model object then resolves to categorical_accuracy whatever the
        # labels are (see the README); the fitted model must not be that
        # object.
        saved = save_files(v, build_compiled(v, case, w0), name, d)
        files += saved
        model = build_compiled(v, case, w0)
        assert max_abs(layer_order_weights(model), w0) == 0.0
        if v == "k3":
            opt_cfg = jsonable(model.optimizer.get_config())
            opt_class = type(model.optimizer).__name__
            loss_desc = jsonable(loss_description(case.compile(K)["loss"]))
            metric_names = case.compile(K)["metrics"]
        else:
            tf_opt_cfg = jsonable(model.optimizer.get_config())
        h = fit(model, case, d)
        hist = history_dict(h)
        final = model.get_weights()
        ev = model.evaluate(feed(d["x"]), d["y"], batch_size=BATCH,
                            return_dict=True, verbose=0)
        ev = {k: float(x) for k, x in ev.items()}
        res = {
            "history": hist,
            "history_keys": list(hist),
            "final_weights": weights_list(model, v),
            "evaluate": ev,
            "evaluate_keys": list(ev),
            "optimizer_iterations": int(model.optimizer.iterations.numpy()),
            "optimizer_variables": optimizer_variables(model, v),
            "metrics_resolved": resolved_metrics(model, v),
        }
        # train_on_batch on a fresh untrained copy
        m2 = build_compiled(v, case, w0)
        tob = m2.train_on_batch(feed(slice_xs(d["x"], 0, BATCH)),
                                d["y"][:BATCH], return_dict=True)
        tob = {k: float(x) for k, x in tob.items()}
        res["train_on_batch"] = {"logs": tob, "loss": tob["loss"],
                                 "weights": weights_list(m2, v)}
        results[key] = res

        # checks
        ep, rw, rev = replay(v, case, w0, d, case.mask_fn)
        ck = {
            "epoch_values_vs_replay": compare_replay(hist, ep),
            "evaluate_vs_replay": {
                k: {red: abs(ev[k] - val) for red, val in c.items()}
                for k, c in rev.items()},
            "replay_final_weights_max_abs_diff": max_abs(rw, final),
            "first_batch_loss": loss_check(v, case, w0, d, tob["loss"]),
            "reload_fit": {},
            "saved_compile_config": {},
        }
        for fname in saved:
            ck["reload_fit"][fname] = reload_fit(
                v, case, OUT_DIR / fname, d, hist, final)
            kind, cfg = compile_config_of(OUT_DIR / fname)
            ck["saved_compile_config"][fname] = {kind: jsonable(cfg)}
        if v == "tf" and metric_names_of(case):
            ck["h5_metrics_if_saved_before_any_batch"] = h5_quirk(
                case, w0)
        if type(model.layers[0]).__name__ == "Embedding" and \
                type(model.optimizer).__name__ == "Adam":
            ck["embedding_adam_first_step_max_abs_diff"] = \
                embedding_adam_first_step(v, case, w0, d, res)
        if name == "embedding_lstm_logits_clipnorm":
            ck["first_batch_gradient_norms"] = grad_norms(v, case, w0, d)
        checks[key] = ck

    # tf_keras vs Keras 3
    rt, rk = results["tf_keras"], results["keras3"]

    def arrays(ws):
        return [np.asarray(w["data"]) for w in ws]
    hk = [k for k in rt["history"] if k in rk["history"]]
    cross = {
        "history_keys_equal_as_sets": set(rt["history"]) == set(rk["history"]),
        "final_weights_max_abs_diff": max_abs(arrays(rt["final_weights"]),
                                              arrays(rk["final_weights"])),
        "history_max_abs_diff": {
            k: max(abs(a - b) for a, b in zip(rt["history"][k],
                                              rk["history"][k]))
            for k in hk},
        "evaluate_max_abs_diff": {
            k: abs(rt["evaluate"][k] - rk["evaluate"][k])
            for k in rt["evaluate"] if k in rk["evaluate"]},
        "final_weights_max_abs_diff_per_weight": [
            max_abs([a], [b]) for a, b in zip(arrays(rt["final_weights"]),
                                              arrays(rk["final_weights"]))],
        "train_on_batch_loss_abs_diff": abs(rt["train_on_batch"]["loss"]
                                            - rk["train_on_batch"]["loss"]),
        "train_on_batch_weights_max_abs_diff": max_abs(
            arrays(rt["train_on_batch"]["weights"]),
            arrays(rk["train_on_batch"]["weights"])),
    }
    checks["tf_keras_vs_keras3"] = cross

    def xs_entries(xs, names_tf, names_k3):
        return [array(x, names={"tf_keras": a, "keras3": b})
                for x, a, b in zip(xs, names_tf, names_k3)]

    in_tf, in_k3 = input_names(case)
    payload = {
        "case": name,
        "generated_by": GENERATED_BY,
        "versions": VERSIONS | {"python": platform.python_version()},
        "description": case.description,
        "compile": {
            "optimizer": opt_cfg,
            "optimizer_class": opt_class,
            "optimizer_tf_keras": tf_opt_cfg,
            "loss": loss_desc,
            "metrics": metric_names,
        },
        "fit": {
            "epochs": EPOCHS, "batch_size": BATCH, "shuffle": False,
            "validation_split": case.fit.get("validation_split", 0.0),
            "validation_data": "val" in d,
            "train_samples": len(yt),
            "validation_samples": 0 if yv is None else len(yv),
            "steps_per_epoch": len(batches(len(yt), BATCH)),
            "split_at": split_at,
        },
        "x": xs_entries(d["x"], in_tf, in_k3),
        "y": array(d["y"]),
    }
    if "val" in d:
        payload["validation_data"] = {
            "x": xs_entries(d["val"][0], in_tf, in_k3),
            "y": array(d["val"][1])}
    payload["initial_weights"] = [
        {"name": a, "path_keras3": b, "shape": list(w.shape),
         "data": f32_list(w)} for a, b, w in zip(tf_names, k3_names, w0)]
    payload["results"] = results
    payload["checks"] = checks
    payload["notes"] = list(case.notes)
    payload["files"] = sorted(files) + [f"{name}.json"]
    payload = jsonable(payload)
    with open(OUT_DIR / f"{name}.json", "w", encoding="utf-8") as fh:
        fh.write(dumps(payload))
        fh.write("\n")
    return payload


def input_names(case):
    out = []
    for v in ("tf", "k3"):
        K = LIBS[v]
        fresh(K)
        model = case.build(K, v)
        if v == "tf":
            out.append(list(model.input_names))
        else:
            out.append([t._keras_history.operation.name
                        for t in model.inputs])
    return out


def summary_line(name, p):
    c = p["checks"]
    cross = c["tf_keras_vs_keras3"]
    worst = {}
    for key in ("tf_keras", "keras3"):
        ck = c[key]
        ev = ck["epoch_values_vs_replay"]
        worst[key] = {
            "loss_bsw": max(ev["batch_size_weighted"][k] for k in
                            ev["batch_size_weighted"] if "loss" in k),
            "replay_w": ck["replay_final_weights_max_abs_diff"],
            "reload": {f: (r.get("error") or
                           max(r["history_max_abs_diff"],
                               r["final_weights_max_abs_diff"]))
                       for f, r in ck["reload_fit"].items()},
        }
    return (f"{name:32s} tf-vs-k3 weights {cross['final_weights_max_abs_diff']:.2e}"
            f" {json.dumps(worst)}")


def main():
    args = sys.argv[1:]
    if args == ["--list"]:
        print("\n".join(CASES))
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
    start = time.time()
    for name, case in CASES.items():
        if args and name not in args:
            continue
        payload = run_case(name, case)
        print(summary_line(name, payload), flush=True)
    total = sum(p.stat().st_size for p in OUT_DIR.iterdir() if p.is_file())
    count = sum(1 for p in OUT_DIR.iterdir() if p.is_file())
    print(f"{OUT_DIR.relative_to(ROOT)}: {count} files, {total / 1e6:.2f} MB "
          f"({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
