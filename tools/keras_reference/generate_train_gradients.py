#!/usr/bin/env python3
"""Gradient fixtures for seqnn's backward passes: one Keras layer (or a small model) called
under a tf.GradientTape, with the gradients of sum_i sum(outputs[i] * upstream[i]) with respect
to its float inputs and its weights, in tf_keras 2.21 ("tf") and Keras 3.15 ("k3").

    .venv-ref/bin/python tools/keras_reference/generate_train_gradients.py           # all
    .venv-ref/bin/python tools/keras_reference/generate_train_gradients.py lstm_ bn_  # cases
                                                                     # whose name starts so
    .venv-ref/bin/python tools/keras_reference/generate_train_gradients.py --kinks   # probe

Writes tests/fixtures/train/gradients/<case>.<tf|k3>.json: a layer fixture as
layer_fixtures.write_case writes it (config, weights, inputs, masks, outputs, ...) plus
`training`, `upstream`, `input_gradients`, `weight_gradients`, `weight_trainable` and, where
the call changed a weight (BatchNormalization's moving statistics), `weights_after`
(layer_fixtures.write_gradient_case), and model_<name>.<tf|k3>.json for the model cases
(`model_case` below). The README beside the fixtures describes both formats.

Conventions: those of layer_fixtures.py (clear_session and set_random_seed(0) per case, the
case rng np.random.default_rng(zlib.crc32(case)) draws the weights uniform(-0.6, 0.6), then
the inputs uniform(-1, 1), then the upstream arrays uniform(-1, 1)); float32 throughout, as
Keras computes; oneDNN off (TF_ENABLE_ONEDNN_OPTS=0), as model_fixtures.py has it.

`--kinks` prints, per library, the value and the derivative TensorFlow gives each activation
at its kinks (relu at 0, hard_sigmoid at its clip edges, ...), which the README tabulates.
The fixtures themselves keep away from kinks and ties (random float inputs: no pre-activation
is exactly at a kink, no pooling window or Maximum/Minimum pair has a tie).
"""

import os
import sys

os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import contextlib  # noqa: E402
import json  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from layer_fixtures import LIBS, VERSIONS, _array, write_gradient_case  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "train" / "gradients"
BY = "tools/keras_reference/generate_train_gradients.py"
BOTH = ("tf", "k3")

# Masks, batch 3 over 5 steps. Right-padded with a fully masked row; left-padded (the data
# at the end, as for go_backwards over right-aligned sequences) with a fully masked row;
# lengths 5, 3, 1 (no empty row: a masked average over none is 0 / 0).
MASK_RIGHT = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], bool)
MASK_LEFT = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
MASK_531 = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], bool)
MASK_4 = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], bool)
MASK_Q4 = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]], bool)
MASK_V5 = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], bool)
MASK_Q3 = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]], bool)
MASK_V3 = np.array([[1, 1, 0], [1, 1, 1]], bool)


def mha_band_inputs(case, t, features):
    """Query and value (3, t, features) floats from their own rng, and a (3, t, t) int32
    attention mask: each query sees the keys within one step of it, and the first sample
    loses its last key."""
    rng = np.random.default_rng(zlib.crc32(("data/" + case).encode()))
    q = rng.uniform(-1.0, 1.0, size=(3, t, features)).astype(np.float32)
    v = rng.uniform(-1.0, 1.0, size=(3, t, features)).astype(np.float32)
    i, j = np.arange(t)[:, None], np.arange(t)[None, :]
    band = np.broadcast_to(np.abs(i - j) <= 1, (3, t, t)).astype(np.int32).copy()
    band[0, :, -1] = 0
    return [q, v, band]


@contextlib.contextmanager
def fixed_dropout(lib, keep):
    """Keras's dropout, in the library `lib`, made to drop by the pattern `keep` (bool): every
    dropout call gives `inputs * keep / (1 - rate)` (inverted dropout, as TensorFlow's), so
    that a training call under the tape drops what seqnn's generator can be made to drop.
    tf_keras's layers drop through their `backend.RandomGenerator.dropout`, Keras 3's through
    `backend.random.dropout` (its Dropout layer, which MultiHeadAttention holds, and
    Attention's `_apply_scores`)."""
    factors = keep.astype(np.float32)

    def drop(inputs, rate):
        assert tuple(inputs.shape) == keep.shape, (inputs.shape, keep.shape)
        return inputs * tf.constant(factors / np.float32(1.0 - rate))

    if lib == "tf":
        from tf_keras.src import backend as owner
        cls = owner.RandomGenerator
        saved = cls.dropout
        cls.dropout = lambda self, inputs, rate, noise_shape=None: drop(inputs, rate)
        try:
            yield
        finally:
            cls.dropout = saved
    else:
        from keras.src import backend as owner
        saved = owner.random.dropout
        owner.random.dropout = lambda inputs, rate, noise_shape=None, seed=None: drop(inputs,
                                                                                      rate)
        try:
            yield
        finally:
            owner.random.dropout = saved


def dropout_case(case, make, shapes, keep, **kw):
    """A case whose training call drops the attention weights by the pattern `keep` (nested
    lists of 0 and 1, the weights' shape) at rate 0.5: the fixture records it as
    `dropout_keep` (bool) and `dropout_rate`."""
    kw.update(same_as_inference=False, dropout_keep=np.array(keep, bool))
    return (case, make, shapes, kw)


def rnn(kind, units=3, **kw):
    """make(L) for one recurrent layer; "gru" is reset_after=True (the default), "gru_v1"
    reset_after=False."""
    def make(L):
        if kind == "simple_rnn":
            return L.SimpleRNN(units, **kw)
        if kind == "lstm":
            return L.LSTM(units, **kw)
        if kind == "gru":
            return L.GRU(units, reset_after=True, **kw)
        return L.GRU(units, reset_after=False, **kw)
    return make


def bidi(kind, units=3, backward=None, layer_kw=None, **kw):
    """make(L) for Bidirectional(rnn(kind, units, **layer_kw), **kw); `backward` = (kind,
    units, kwargs) for an explicit backward_layer (go_backwards=True added)."""
    def make(L):
        fw = rnn(kind, units, **(layer_kw or {}))(L)
        if backward is not None:
            bk, bu, bkw = backward
            kw["backward_layer"] = rnn(bk, bu, go_backwards=True, **bkw)(L)
        return L.Bidirectional(fw, **kw)
    return make


def scaled(factor):
    """Weights uniform(-0.6 * factor, 0.6 * factor): pre-activations wide enough to reach
    hard_sigmoid's flat parts (same number of draws as the default)."""
    def make(default, rng):
        return [rng.uniform(-0.6 * factor, 0.6 * factor, size=w.shape) for w in default]
    return make


def positive(*indices):
    """uniform(-0.6, 0.6), but uniform(0.2, 1.5) at `indices` (variances), as generate_layers_
    norm.py draws them."""
    def make(default, rng):
        return [rng.uniform(0.2, 1.5, size=w.shape) if i in indices
                else rng.uniform(-0.6, 0.6, size=w.shape) for i, w in enumerate(default)]
    return make


def wide_inputs(case, shape, scale=2.0):
    """(3, *shape) floats uniform(-scale, scale) from their own rng: gate pre-activations past
    hard_sigmoid's clip edges without weights so large that a linear GRU blows up."""
    rng = np.random.default_rng(zlib.crc32(("wide/" + case).encode()))
    return [rng.uniform(-scale, scale, size=(3,) + shape).astype(np.float32)]


def masking_inputs():
    """(3, 5, 3) floats with whole steps at 0.0, the Masking value: row 0 step 2, row 1 steps
    3-4, row 2 steps 0-3."""
    x = np.random.default_rng(11).uniform(-1, 1, (3, 5, 3)).astype(np.float32)
    x[0, 2] = 0.0
    x[1, 3:] = 0.0
    x[2, :4] = 0.0
    return [x]


def embedding_ids():
    """(3, 5) ids in [0, 5) with repeats; rows 5 and 6 of the (7, 3) table unused."""
    return [np.array([[0, 1, 1, 4, 2], [3, 3, 3, 0, 1], [4, 2, 0, 0, 1]], np.int32)]


def state_inputs(kind, units=3):
    """Extra input shapes and kwarg_inputs for initial states: [h] or [h, c] (LSTM)."""
    n = 2 if kind == "lstm" else 1
    return [(units,)] * n, {1 + i: "initial_state" for i in range(n)}


RNNS = ("simple_rnn", "lstm", "gru", "gru_v1")


def rnn_cases():
    cases = []
    for k in RNNS:
        shapes, kwargs = state_inputs(k)
        cases += [
            (f"{k}_last", rnn(k), [(5, 3)], {}),
            (f"{k}_seq", rnn(k, return_sequences=True), [(5, 3)], {}),
            (f"{k}_backwards_seq", rnn(k, go_backwards=True, return_sequences=True), [(5, 3)],
             {}),
            (f"{k}_state_seq", rnn(k, return_sequences=True, return_state=True), [(5, 3)], {}),
            (f"{k}_initial_state", rnn(k), [(5, 3)] + shapes, {"kwarg_inputs": kwargs}),
            (f"{k}_masked_right_seq", rnn(k, return_sequences=True), [(5, 3)],
             {"masks": [MASK_RIGHT]}),
            (f"{k}_masked_left_backwards_state",
             rnn(k, go_backwards=True, return_state=True), [(5, 3)], {"masks": [MASK_LEFT]}),
        ]
    # Initial states with masks (the mask goes to `mask=`, the states by keyword): the
    # outputs of steps before the first real one are zeros, not the initial state, while the
    # returned states are the initial states there.
    lstm_shapes, lstm_kwargs = state_inputs("lstm")
    gru_shapes, gru_kwargs = state_inputs("gru")
    cases += [
        ("lstm_initial_state_masked_left_state_seq",
         rnn("lstm", return_sequences=True, return_state=True), [(5, 3)] + lstm_shapes,
         {"kwarg_inputs": lstm_kwargs, "masks": [MASK_LEFT, None, None]}),
        ("gru_initial_state_masked_right_state",
         rnn("gru", return_state=True), [(5, 3)] + gru_shapes,
         {"kwarg_inputs": gru_kwargs, "masks": [MASK_RIGHT, None]}),
    ]
    cases += [
        ("simple_rnn_relu_no_bias_seq",
         rnn("simple_rnn", 4, activation="relu", use_bias=False, return_sequences=True),
         [(5, 2)], {}),
        ("simple_rnn_elu_seq", rnn("simple_rnn", activation="elu", return_sequences=True),
         [(4, 3)], {}),
        ("simple_rnn_selu_last", rnn("simple_rnn", 2, activation="selu"), [(5, 3)], {}),
        ("lstm_softplus_hard_sigmoid_seq",
         rnn("lstm", activation="softplus", recurrent_activation="hard_sigmoid",
             return_sequences=True), [(5, 3)], {"weights": scaled(4.0)}),
        ("lstm_swish_no_unit_forget_bias_seq",
         rnn("lstm", 2, activation="swish", unit_forget_bias=False, return_sequences=True),
         [(4, 3)], {}),
        ("lstm_gelu_no_bias_last", rnn("lstm", activation="gelu", use_bias=False), [(5, 2)],
         {}),
        ("gru_linear_hard_sigmoid_seq",
         rnn("gru", activation="linear", recurrent_activation="hard_sigmoid",
             return_sequences=True), [(5, 3)],
         {"weights": scaled(2.5), "inputs": wide_inputs("gru_linear_hard_sigmoid_seq", (5, 3))}),
        ("gru_relu_no_bias_last", rnn("gru", 4, activation="relu", use_bias=False), [(5, 2)],
         {}),
        ("gru_v1_sigmoid_hard_sigmoid_no_bias_seq",
         rnn("gru_v1", activation="sigmoid", recurrent_activation="hard_sigmoid",
             use_bias=False, return_sequences=True), [(5, 3)], {"weights": scaled(4.0)}),
    ]
    return cases


def bidi_cases():
    lstm_states = {i: "initial_state" for i in range(1, 5)}
    return [
        ("bidi_lstm_concat_seq", bidi("lstm", 2, layer_kw={"return_sequences": True}),
         [(5, 3)], {}),
        ("bidi_gru_sum_last", bidi("gru", merge_mode="sum"), [(5, 3)], {}),
        ("bidi_simple_rnn_mul_seq",
         bidi("simple_rnn", layer_kw={"return_sequences": True}, merge_mode="mul"),
         [(5, 2)], {}),
        ("bidi_gru_v1_ave_seq",
         bidi("gru_v1", 2, layer_kw={"return_sequences": True}, merge_mode="ave"),
         [(4, 3)], {}),
        ("bidi_lstm_none_last", bidi("lstm", 2, merge_mode=None), [(5, 3)], {}),
        ("bidi_gru_none_seq",
         bidi("gru", 2, layer_kw={"return_sequences": True}, merge_mode=None), [(5, 3)], {}),
        ("bidi_simple_rnn_concat_masked_seq",
         bidi("simple_rnn", layer_kw={"return_sequences": True}), [(5, 3)],
         {"masks": [MASK_RIGHT]}),
        ("bidi_gru_ave_masked_last", bidi("gru", merge_mode="ave"), [(5, 3)],
         {"masks": [MASK_LEFT]}),
        ("bidi_lstm_sum_masked_state_seq",
         bidi("lstm", 2, layer_kw={"return_sequences": True, "return_state": True},
              merge_mode="sum"), [(5, 3)], {"masks": [MASK_RIGHT]}),
        ("bidi_simple_rnn_none_state",
         bidi("simple_rnn", 2, layer_kw={"return_state": True}, merge_mode=None),
         [(5, 3)], {}),
        # Forward GRU (reset_after=True, tanh), backward GRU reset_after=False with relu.
        ("bidi_gru_backward_layer_concat_seq",
         bidi("gru", 3, layer_kw={"return_sequences": True},
              backward=("gru_v1", 3, {"return_sequences": True, "activation": "relu"})),
         [(5, 3)], {}),
        # Forward LSTM of 3 units, backward LSTM of 2 (concat allows it), masked.
        ("bidi_lstm_backward_layer_masked_last",
         bidi("lstm", 3, backward=("lstm", 2, {})), [(5, 2)], {"masks": [MASK_531]}),
        # initial_state=[h_fw, c_fw, h_bw, c_bw].
        ("bidi_lstm_initial_state_concat", bidi("lstm", 2), [(5, 3)] + [(2,)] * 4,
         {"kwarg_inputs": lstm_states}),
    ]


def core_cases():
    return [
        ("dense_2d_linear", lambda L: L.Dense(3), [(4,)], {}),
        ("dense_3d_softmax", lambda L: L.Dense(4, activation="softmax"), [(5, 3)], {}),
        ("dense_2d_relu_no_bias", lambda L: L.Dense(3, activation="relu", use_bias=False),
         [(4,)], {}),
        ("embedding", lambda L: L.Embedding(7, 3), [(5,)],
         {"int_inputs": {0: 7}, "inputs": embedding_ids()}),
        ("time_distributed_dense", lambda L: L.TimeDistributed(L.Dense(2, activation="tanh")),
         [(4, 3)], {}),
        ("repeat_vector", lambda L: L.RepeatVector(3), [(4,)], {}),
        ("flatten", lambda L: L.Flatten(), [(4, 3)], {}),
        ("activation_tanh", lambda L: L.Activation("tanh"), [(4, 3)], {}),
        ("activation_softmax", lambda L: L.Activation("softmax"), [(4, 3)], {}),
        ("activation_relu", lambda L: L.Activation("relu"), [(4, 3)], {}),
        ("masking", lambda L: L.Masking(0.0), [(5, 3)],
         {"inputs": masking_inputs(), "keras_masks": True}),
        ("dropout_inference", lambda L: L.Dropout(0.5), [(4, 3)], {"training": False}),
    ]


def conv_norm_cases():
    two = [(4, 3), (4, 3)]
    return [
        ("conv1d_valid", lambda L: L.Conv1D(3, 3), [(6, 2)], {}),
        ("conv1d_same_strides2", lambda L: L.Conv1D(2, 3, strides=2, padding="same"),
         [(7, 3)], {}),
        ("conv1d_causal_dilated", lambda L: L.Conv1D(2, 2, padding="causal", dilation_rate=2),
         [(6, 3)], {}),
        ("conv1d_groups2_relu", lambda L: L.Conv1D(4, 2, groups=2, activation="relu"),
         [(5, 4)], {}),
        # Strides that skip input steps (the last two take no part).
        ("conv1d_valid_strides3_tanh_no_bias",
         lambda L: L.Conv1D(3, 2, strides=3, activation="tanh", use_bias=False), [(8, 2)], {}),
        ("conv1d_same_dilated_sigmoid",
         lambda L: L.Conv1D(2, 3, padding="same", dilation_rate=2, activation="sigmoid"),
         [(7, 3)], {}),
        ("max_pooling1d_valid", lambda L: L.MaxPooling1D(2), [(5, 3)], {}),
        ("max_pooling1d_same_overlap", lambda L: L.MaxPooling1D(3, strides=1, padding="same"),
         [(5, 2)], {}),
        ("average_pooling1d_valid", lambda L: L.AveragePooling1D(2), [(5, 3)], {}),
        # Edge windows average over the real steps only (the padding is not counted).
        ("average_pooling1d_same", lambda L: L.AveragePooling1D(3, strides=2, padding="same"),
         [(6, 2)], {}),
        # Overlapping windows, each edge one short; and strides past the pool (step 2 unread).
        ("average_pooling1d_same_strides1",
         lambda L: L.AveragePooling1D(3, strides=1, padding="same"), [(5, 2)], {}),
        ("average_pooling1d_valid_strides3", lambda L: L.AveragePooling1D(2, strides=3),
         [(8, 2)], {}),
        ("max_pooling1d_valid_strides3", lambda L: L.MaxPooling1D(2, strides=3), [(8, 2)], {}),
        ("global_max_pooling1d", lambda L: L.GlobalMaxPooling1D(), [(5, 3)], {}),
        ("global_average_pooling1d", lambda L: L.GlobalAveragePooling1D(), [(5, 3)], {}),
        ("global_average_pooling1d_masked", lambda L: L.GlobalAveragePooling1D(), [(5, 3)],
         {"masks": [MASK_531], "keras_masks": True}),
        # gamma, beta, moving_mean, moving_variance.
        ("bn_train_3d", lambda L: L.BatchNormalization(), [(4, 3)],
         {"weights": positive(3), "same_as_inference": False}),
        ("bn_train_masked", lambda L: L.BatchNormalization(), [(4, 3)],
         {"weights": positive(3), "masks": [MASK_4], "keras_masks": True,
          "same_as_inference": False}),
        # Rank 4: tf_keras's fused kernel.
        ("bn_train_4d", lambda L: L.BatchNormalization(), [(2, 2, 3)],
         {"weights": positive(3), "same_as_inference": False}),
        ("bn_inference", lambda L: L.BatchNormalization(), [(4, 3)],
         {"weights": positive(3), "training": False}),
        # Neither gamma nor beta: weights moving_mean, moving_variance.
        ("bn_train_no_center_scale",
         lambda L: L.BatchNormalization(center=False, scale=False, momentum=0.9), [(4, 3)],
         {"weights": positive(1), "same_as_inference": False}),
        ("bn_train_no_scale", lambda L: L.BatchNormalization(scale=False), [(4, 3)],
         {"weights": positive(2), "same_as_inference": False}),
        # After a Dense: (batch, features), statistics over the batch alone.
        ("bn_train_2d", lambda L: L.BatchNormalization(momentum=0.8), [(5,)],
         {"weights": positive(3), "same_as_inference": False, "batch": 4}),
        # Channels on the time axis of a sequence, masked: statistics per timestep over the
        # unmasked samples.
        ("bn_train_axis1_masked", lambda L: L.BatchNormalization(axis=1), [(4, 3)],
         {"weights": positive(3), "masks": [MASK_4], "keras_masks": True,
          "same_as_inference": False}),
        # Rank 4 with the channels first (tf_keras's fused kernel, NCHW).
        ("bn_train_4d_axis1", lambda L: L.BatchNormalization(axis=1), [(2, 3, 2)],
         {"weights": positive(3), "same_as_inference": False}),
        # Frozen: Keras runs it at inference even with training=True, and changes nothing.
        ("bn_frozen_training", lambda L: L.BatchNormalization(trainable=False), [(4, 3)],
         {"weights": positive(3)}),
        # Batch renormalization: gamma, beta, moving_mean, moving_variance, moving_stddev,
        # renorm_mean, renorm_stddev (the last three positive where they are deviations). r and
        # d are constants to the gradient; every non-trainable weight moves.
        ("bn_renorm_train", lambda L: L.BatchNormalization(renorm=True, momentum=0.9,
                                                            renorm_momentum=0.8),
         [(4, 3)], {"weights": positive(3, 4, 6), "same_as_inference": False}),
        # Clipped (r to [0.5, 1.2], d to [-0.3, 0.3]: r 0.32, 0.69, 0.61, 0.47, 0.46 and d
        # -0.06, -0.33, -0.22, 0.52, 0.40 unclipped), with a mask: the statistics over the
        # unmasked steps.
        ("bn_renorm_clipped_masked",
         lambda L: L.BatchNormalization(
             renorm=True, renorm_clipping={"rmax": 1.2, "rmin": 0.5, "dmax": 0.3}),
         [(4, 5)], {"weights": positive(3, 4, 6), "masks": [MASK_4], "keras_masks": True,
                    "same_as_inference": False}),
        # No gamma: the scale is r, the offset d + beta. (batch, features), only rmax (r 0.38,
        # 1.02, 0.37, 1.70, 0.63 unclipped).
        ("bn_renorm_no_scale_2d",
         lambda L: L.BatchNormalization(scale=False, renorm=True, renorm_clipping={"rmax": 1.1},
                                        renorm_momentum=0.5),
         [(5,)], {"weights": positive(2, 3, 5), "same_as_inference": False, "batch": 4}),
        # Rank 4: tf_keras's fused kernel does not do renorm, so both move the moving standard
        # deviation toward the biased one. Only dmax (d 0.53, -0.38, -1.22 unclipped).
        ("bn_renorm_4d", lambda L: L.BatchNormalization(renorm=True, renorm_clipping={
            "dmax": 0.5}), [(2, 2, 3)],
         {"weights": positive(3, 4, 6), "same_as_inference": False}),
        ("layer_norm", lambda L: L.LayerNormalization(), [(4, 5)], {}),
        # Over the timesteps: each feature normalized over time (axes moved last).
        ("layer_norm_axis1", lambda L: L.LayerNormalization(axis=1), [(4, 3)], {}),
        # Over two trailing axes together, weights (4, 3).
        ("layer_norm_axes12", lambda L: L.LayerNormalization(axis=[1, 2]), [(4, 3)], {}),
        # Rank 4, two axes that are not adjacent, weights (3, 2): rows are gathered.
        ("layer_norm_axes13_no_center", lambda L: L.LayerNormalization(axis=[1, 3],
                                                                        center=False),
         [(3, 2, 2)], {}),
        ("layer_norm_no_scale", lambda L: L.LayerNormalization(scale=False), [(4, 5)], {}),
        ("layer_norm_plain", lambda L: L.LayerNormalization(center=False, scale=False),
         [(4, 5)], {}),
        # Keras 3 only: x / sqrt(var + epsilon) * gamma, not centered.
        ("layer_norm_rms_scaling", lambda L: L.LayerNormalization(rms_scaling=True),
         [(4, 5)], {}),
        ("reshape", lambda L: L.Reshape((8, 3)), [(4, 6)], {}),
        ("permute", lambda L: L.Permute((2, 1)), [(4, 3)], {}),
        ("zero_padding1d", lambda L: L.ZeroPadding1D((1, 2)), [(4, 3)], {}),
        ("cropping1d", lambda L: L.Cropping1D((1, 2)), [(6, 2)], {}),
        ("up_sampling1d", lambda L: L.UpSampling1D(2), [(4, 3)], {}),
        ("concatenate", lambda L: L.Concatenate(), [(4, 3), (4, 2)], {}),
        ("add", lambda L: L.Add(), two, {}),
        ("subtract", lambda L: L.Subtract(), two, {}),
        ("multiply", lambda L: L.Multiply(), two, {}),
        ("average", lambda L: L.Average(), two, {}),
        ("maximum", lambda L: L.Maximum(), two, {}),
        ("minimum", lambda L: L.Minimum(), two, {}),
        ("dot_axes2", lambda L: L.Dot(axes=2), [(4, 3), (5, 3)], {}),
        ("dot_normalize", lambda L: L.Dot(axes=1, normalize=True), [(4,), (4,)], {}),
        ("attention_scale_masked", lambda L: L.Attention(use_scale=True), [(4, 3), (5, 3)],
         {"masks": [MASK_Q4, MASK_V5], "keras_masks": True}),
        ("additive_attention", lambda L: L.AdditiveAttention(), [(3, 4), (5, 4)],
         {}),
        # Causal self-attention shapes (Tq = Tv), query and value masks.
        ("attention_causal_masked", lambda L: L.Attention(use_scale=True), [(4, 3), (4, 3)],
         {"masks": [MASK_Q4, MASK_Q4], "keras_masks": True,
          "call_kwargs": {"use_causal_mask": True}}),
        # Query, value and key: the key scores, the value is summed (3 features).
        ("attention_concat_scale_key",
         lambda L: L.Attention(use_scale=True, score_mode="concat"), [(3, 2), (5, 3), (5, 2)],
         {}),
        # The attention weights as a second output, with upstream on them too.
        ("attention_concat_scores_masked", lambda L: L.Attention(score_mode="concat"),
         [(3, 2), (5, 2)],
         {"masks": [MASK_Q3, MASK_V5], "keras_masks": True,
          "call_kwargs": {"return_attention_scores": True}}),
        ("attention_dot_causal_scores", lambda L: L.Attention(), [(4, 3), (5, 3)],
         {"call_kwargs": {"use_causal_mask": True, "return_attention_scores": True}}),
        ("additive_attention_causal_scores_masked", lambda L: L.AdditiveAttention(),
         [(4, 3), (5, 3)],
         {"masks": [MASK_Q4, MASK_V5], "keras_masks": True,
          "call_kwargs": {"use_causal_mask": True, "return_attention_scores": True}}),
        ("additive_attention_no_scale_key", lambda L: L.AdditiveAttention(use_scale=False),
         [(3, 4), (5, 2), (5, 4)], {}),
        ("mha", lambda L: L.MultiHeadAttention(num_heads=2, key_dim=2), [(3, 4), (5, 3)],
         {"call_args": "positional"}),
        ("mha_value_masked", lambda L: L.MultiHeadAttention(num_heads=2, key_dim=2),
         [(4, 3), (5, 3)],
         {"call_args": "positional", "masks": [None, MASK_V5], "keras_masks": True}),
        # A key of its own features; a query mask makes whole rows of scores masked (where
        # tf_keras's softmax of score − 1e9 and Keras 3's replaced scores differ).
        ("mha_key_query_masked", lambda L: L.MultiHeadAttention(num_heads=2, key_dim=2),
         [(4, 3), (5, 3), (5, 2)],
         {"call_args": "positional", "masks": [MASK_Q4, MASK_V5, None], "keras_masks": True}),
        # An attention_mask (int32: no gradient) with the causal mask on top.
        ("mha_attention_mask_causal", lambda L: L.MultiHeadAttention(num_heads=2, key_dim=3),
         [(4, 4), (4, 4), (4, 4)],
         {"call_args": "positional", "kwarg_inputs": {2: "attention_mask"},
          "int_inputs": {2: 2}, "inputs": mha_band_inputs("mha_attention_mask_causal", 4, 4),
          "call_kwargs": {"use_causal_mask": True}}),
        # The weights as a second output (T = S: Keras 3's symbolic shape of the scores is
        # right only then); Keras 3 then zeroes masked weights.
        ("mha_scores_causal_masked", lambda L: L.MultiHeadAttention(num_heads=2, key_dim=2),
         [(4, 3), (4, 3)],
         {"call_args": "positional", "masks": [MASK_Q4, MASK_Q4], "keras_masks": True,
          "call_kwargs": {"return_attention_scores": True, "use_causal_mask": True}}),
        ("mha_value_dim_output_shape_no_bias",
         lambda L: L.MultiHeadAttention(num_heads=2, key_dim=2, value_dim=3, use_bias=False,
                                        output_shape=(2,)),
         [(3, 4), (5, 3)], {"call_args": "positional"}),
        # Keras 3 only.
        ("mha_gate", lambda L: L.MultiHeadAttention(num_heads=2, key_dim=2, use_gate=True),
         [(3, 4), (5, 3)], {"call_args": "positional"}),
        ("mha_sliding_window_masked",
         lambda L: L.MultiHeadAttention(num_heads=2, key_dim=2, sliding_window=2),
         [(4, 3), (5, 3)],
         {"call_args": "positional", "masks": [None, MASK_V5], "keras_masks": True}),
        # tf_keras only: -1e9 in place of masked scores.
        ("mha_robust_query_masked",
         lambda L: L.MultiHeadAttention(num_heads=2, key_dim=2, softmax_robust_masking=True),
         [(4, 3), (5, 3)],
         {"call_args": "positional", "masks": [MASK_Q4, MASK_V5], "keras_masks": True}),
        ("conv2d_same_strides2", lambda L: L.Conv2D(2, 3, strides=2, padding="same"),
         [(5, 5, 2)], {}),
        ("conv2d_valid_dilated", lambda L: L.Conv2D(3, (2, 3), dilation_rate=(2, 1)),
         [(5, 6, 2)], {}),
        ("conv2d_groups2_relu_strides_no_bias",
         lambda L: L.Conv2D(4, 2, strides=(2, 1), groups=2, activation="relu", use_bias=False),
         [(5, 4, 4)], {}),
        ("conv2d_pointwise", lambda L: L.Conv2D(3, 1), [(3, 4, 2)], {}),
        ("max_pooling2d", lambda L: L.MaxPooling2D(2), [(4, 5, 2)], {}),
        ("max_pooling2d_same_overlap",
         lambda L: L.MaxPooling2D(3, strides=(2, 1), padding="same"), [(5, 4, 2)], {}),
        ("average_pooling2d_same",
         lambda L: L.AveragePooling2D((2, 3), strides=(1, 2), padding="same"), [(3, 5, 2)], {}),
        ("average_pooling2d_valid", lambda L: L.AveragePooling2D(2), [(4, 5, 2)], {}),
        ("time_distributed_conv2d", lambda L: L.TimeDistributed(L.Conv2D(2, 2)),
         [(3, 4, 4, 2)], {}),
        ("conv_lstm1d_seq_sigmoid",
         lambda L: L.ConvLSTM1D(2, 2, recurrent_activation="sigmoid", return_sequences=True),
         [(4, 5, 2)], {}),
        # Keeps each library's default recurrent_activation: hard_sigmoid in tf_keras (Keras 2's
        # 0.2 x + 0.5), sigmoid in Keras 3.
        ("conv_lstm1d_same_masked_last", lambda L: L.ConvLSTM1D(2, 3, padding="same"),
         [(5, 4, 2)], {"masks": [MASK_531], "keras_masks": True}),
        ("conv_lstm1d_valid_backwards_seq",
         lambda L: L.ConvLSTM1D(2, 2, recurrent_activation="sigmoid", go_backwards=True,
                                return_sequences=True), [(4, 5, 2)], {}),
        # Strided input convolution (maps of 4 from 7 steps); outputs [h, h, c].
        ("conv_lstm1d_strides2_state",
         lambda L: L.ConvLSTM1D(2, 3, strides=2, padding="same", recurrent_activation="sigmoid",
                                return_state=True), [(3, 7, 2)], {}),
        ("conv_lstm1d_dilated_no_bias_masked_left_backwards_seq",
         lambda L: L.ConvLSTM1D(2, 2, dilation_rate=2, use_bias=False, go_backwards=True,
                                recurrent_activation="sigmoid", return_sequences=True),
         [(5, 6, 2)], {"masks": [MASK_LEFT], "keras_masks": True}),
        # initial_state=[h, c], maps of 4.
        ("conv_lstm1d_initial_state_seq",
         lambda L: L.ConvLSTM1D(2, 2, recurrent_activation="sigmoid", return_sequences=True),
         [(3, 5, 2), (4, 2), (4, 2)], {"kwarg_inputs": {1: "initial_state", 2: "initial_state"}}),
        ("conv_lstm2d_same_seq",
         lambda L: L.ConvLSTM2D(2, 2, padding="same", recurrent_activation="sigmoid",
                                return_sequences=True), [(3, 3, 4, 1)], {}),
        ("conv_lstm2d_valid_masked_last",
         lambda L: L.ConvLSTM2D(2, (2, 3), recurrent_activation="sigmoid"), [(5, 3, 4, 2)],
         {"masks": [MASK_531], "keras_masks": True}),
    ]


def dropout_cases():
    """The attention layers' dropout in training (rate 0.5), each with a keep pattern (about
    half kept, in every row some of the weights that count) that the Rust test finds among
    seqnn's draws by the outputs. Small batches (12 weights at most) keep that search short."""
    return [
        # The scores returned are the weights after the dropout.
        dropout_case("attention_dropout_scale_scores",
                     lambda L: L.Attention(use_scale=True, dropout=0.5), [(2, 3), (3, 3)],
                     [[[1, 0, 1], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]], batch=2,
                     call_kwargs={"return_attention_scores": True}),
        # A value mask (its weights are 0 whatever the pattern) and a key.
        dropout_case("attention_dropout_concat_key_masked",
                     lambda L: L.Attention(score_mode="concat", dropout=0.5),
                     [(2, 2), (3, 3), (3, 2)],
                     [[[1, 0, 1], [1, 1, 0]], [[0, 1, 1], [1, 0, 1]]], batch=2,
                     masks=[None, MASK_V3, None], keras_masks=True),
        dropout_case("additive_attention_dropout_causal",
                     lambda L: L.AdditiveAttention(dropout=0.5), [(3, 2), (3, 2)],
                     [[[1, 1, 0], [0, 1, 1], [1, 0, 1]]], batch=1,
                     call_kwargs={"use_causal_mask": True, "return_attention_scores": True}),
        # The scores returned are those before the dropout (T = S, where Keras 3's symbolic
        # shape of the scores is right).
        dropout_case("mha_dropout_scores",
                     lambda L: L.MultiHeadAttention(num_heads=2, key_dim=2, dropout=0.5),
                     [(2, 3), (2, 3)], [[[[1, 0], [1, 1]], [[0, 1], [1, 0]]]],
                     batch=1,
                     call_args="positional", call_kwargs={"return_attention_scores": True}),
        dropout_case("mha_dropout_value_masked",
                     lambda L: L.MultiHeadAttention(num_heads=1, key_dim=2, dropout=0.5),
                     [(2, 3), (3, 3)],
                     [[[[0, 1, 1], [1, 0, 1]]], [[[1, 1, 0], [0, 1, 1]]]], batch=2,
                     call_args="positional",
                     masks=[None, MASK_V3], keras_masks=True),
    ]


def merge_cases():
    """Merging and reshaping beyond the plain cases: broadcasting (an input of lower rank is
    expanded at axis 1, an axis of size 1 stretched; its gradient is summed back), three
    inputs, Keras masks (Keras 3's Multiply, Maximum and Minimum change their values at masked
    steps, tf_keras's do not), Dot over other axes and ranks."""
    masked2 = {"masks": [MASK_531, MASK_LEFT], "keras_masks": True}
    masked1 = {"masks": [MASK_531, None], "keras_masks": True}
    return [
        ("add_broadcast", lambda L: L.Add(), [(4, 3), (4, 1)], {}),
        ("add_three_masked", lambda L: L.Add(), [(5, 3)] * 3,
         {"masks": [MASK_531, MASK_LEFT, None], "keras_masks": True}),
        ("subtract_broadcast", lambda L: L.Subtract(), [(3,), (4, 3)], {}),
        ("average_three_broadcast", lambda L: L.Average(), [(4, 3), (1, 3), (4, 3)], {}),
        ("multiply_three_broadcast", lambda L: L.Multiply(), [(5, 3), (3,), (1, 3)], {}),
        ("multiply_masked", lambda L: L.Multiply(), [(5, 3), (5, 3)], masked2),
        ("multiply_masked_one", lambda L: L.Multiply(), [(5, 3), (5, 3)], masked1),
        ("multiply_broadcast_masked", lambda L: L.Multiply(), [(5, 3), (3,)], masked1),
        ("maximum_broadcast", lambda L: L.Maximum(), [(4, 3), (3,)], {}),
        ("maximum_masked", lambda L: L.Maximum(), [(5, 3), (5, 3)], masked2),
        ("maximum_three_masked_one", lambda L: L.Maximum(), [(5, 3)] * 3,
         {"masks": [None, MASK_531, None], "keras_masks": True}),
        ("minimum_three", lambda L: L.Minimum(), [(4, 3)] * 3, {}),
        ("minimum_masked", lambda L: L.Minimum(), [(5, 3), (5, 3)], masked2),
        ("minimum_masked_one", lambda L: L.Minimum(), [(5, 3), (5, 3)], masked1),
        ("dot_axes_pair", lambda L: L.Dot(axes=(1, 2)), [(4, 3), (5, 4)], {}),
        ("dot_negative_axes", lambda L: L.Dot(axes=(-1, -2)), [(3,), (3, 4)], {}),
        ("dot_rank4", lambda L: L.Dot(axes=(3, 1)), [(2, 3, 4), (4, 5)], {}),
        ("dot_normalize_axes_pair", lambda L: L.Dot(axes=(1, 2), normalize=True),
         [(4, 3), (5, 4)], {}),
        ("dot_masked", lambda L: L.Dot(axes=2), [(5, 3), (4, 3)],
         {"masks": [MASK_531, MASK_Q4], "keras_masks": True}),
        ("zero_padding1d_masked", lambda L: L.ZeroPadding1D(2), [(5, 3)],
         {"masks": [MASK_531], "keras_masks": True}),
        ("cropping1d_masked", lambda L: L.Cropping1D((2, 0)), [(5, 3)],
         {"masks": [MASK_531], "keras_masks": True}),
        ("up_sampling1d_3_masked", lambda L: L.UpSampling1D(3), [(5, 2)],
         {"masks": [MASK_531], "keras_masks": True}),
    ]


CASES = (rnn_cases() + bidi_cases() + core_cases() + conv_norm_cases() + merge_cases()
         + dropout_cases())


# --------------------------------------------------------------------------------------------
# Model cases
# --------------------------------------------------------------------------------------------

def m_embedding_lstm_dense(K):
    L = K.layers
    x = K.Input((5,), dtype="int32", name="ids")
    h = L.Embedding(8, 3, mask_zero=True, name="embedding")(x)
    h = L.LSTM(3, name="lstm")(h)
    return K.Model(x, L.Dense(2, name="dense")(h), name="embedding_lstm_dense")


def m_lstm_time_distributed(K):
    L = K.layers
    return K.Sequential([
        K.Input((5, 3), name="x"),
        L.LSTM(3, return_sequences=True, name="lstm"),
        L.TimeDistributed(L.Dense(2, activation="tanh"), name="td_dense"),
    ], name="lstm_time_distributed")


def m_bidi_gru_dense(K):
    L = K.layers
    return K.Sequential([
        K.Input((5, 3), name="x"),
        L.Bidirectional(L.GRU(3), name="bidi_gru"),
        L.Dense(2, activation="softmax", name="dense"),
    ], name="bidi_gru_dense")


def m_frozen_first(K):
    L = K.layers
    return K.Sequential([
        K.Input((5, 3), name="x"),
        L.LSTM(3, return_sequences=True, trainable=False, name="frozen_lstm"),
        L.GRU(2, name="gru"),
        L.Dense(1, name="dense"),
    ], name="frozen_first")


def m_two_inputs_concat(K):
    L = K.layers
    seq = K.Input((5, 3), name="seq")
    side = K.Input((4,), name="side")
    a = L.GRU(3, name="gru")(seq)
    b = L.Dense(3, activation="relu", name="side_dense")(side)
    h = L.Concatenate(name="concat")([a, b])
    return K.Model([seq, side], L.Dense(2, name="head")(h), name="two_inputs_concat")


def m_masking_lstm_pool(K):
    L = K.layers
    return K.Sequential([
        K.Input((5, 3), name="x"),
        L.Masking(0.0, name="masking"),
        L.LSTM(3, return_sequences=True, name="lstm"),
        L.LayerNormalization(name="ln"),
        L.GlobalAveragePooling1D(name="pool"),
        L.Dense(2, name="dense"),
    ], name="masking_lstm_pool")


def floats(*shape):
    return lambda rng: rng.uniform(-1, 1, size=shape).astype(np.float32)


def padded_ids(vocab, steps, lengths):
    """Ids in [1, vocab) for the first lengths[b] steps, then 0 (masked by mask_zero)."""
    def make(rng):
        x = np.zeros((len(lengths), steps), np.int32)
        for b, n in enumerate(lengths):
            x[b, :n] = rng.integers(1, vocab, size=n)
        return x
    return make


def padded_floats(steps, features, lengths):
    """Floats with the steps after lengths[b] at 0.0 (masked by Masking(0.0))."""
    def make(rng):
        x = rng.uniform(-1, 1, size=(len(lengths), steps, features))
        for b, n in enumerate(lengths):
            x[b, n:] = 0.0
        return x.astype(np.float32)
    return make


# (name, build(K), input makers, notes)
MODELS = [
    ("embedding_lstm_dense", m_embedding_lstm_dense, [padded_ids(8, 5, [5, 3, 0])],
     "Embedding(mask_zero=True) -> LSTM -> Dense; row 2 is all padding (fully masked: the "
     "LSTM returns its zero initial state, so the Dense sees zeros); the embedding gradient "
     "has rows only for the ids used, and none for id 0 (masked steps feed no gradient)"),
    ("lstm_time_distributed", m_lstm_time_distributed, [floats(3, 5, 3)],
     "LSTM(return_sequences=True) -> TimeDistributed(Dense(tanh))"),
    ("bidi_gru_dense", m_bidi_gru_dense, [floats(3, 5, 3)],
     "Bidirectional(GRU(3)) concat -> Dense(softmax)"),
    ("frozen_first", m_frozen_first, [floats(3, 5, 3)],
     "the first LSTM has trainable=False: its weights are in `weights` (trainable false) but "
     "not in trainable_weight_names / weight_gradients; the input gradient still flows "
     "through it"),
    ("two_inputs_concat", m_two_inputs_concat, [floats(3, 5, 3), floats(3, 4)],
     "Functional: GRU(seq) and Dense(relu)(side) -> Concatenate -> Dense"),
    ("masking_lstm_pool", m_masking_lstm_pool, [padded_floats(5, 3, [5, 3, 1])],
     "Masking(0.0) -> LSTM(seq) -> LayerNormalization -> GlobalAveragePooling1D (masked "
     "average over the real steps) -> Dense"),
]


def _weight_name(lib, w):
    return w.path if lib == "k3" else w.name


def model_case(name, lib, build, makers, notes, training=True):
    """Builds the model, sets weights uniform(-0.6, 0.6) per get_weights() array, draws the
    inputs and then the upstream from the case rng, and records the gradients of
    sum(output * upstream) with respect to model.trainable_weights and the float inputs."""
    case = f"model_{name}"
    K = LIBS[lib]
    K.backend.clear_session()
    K.utils.set_random_seed(0)
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    model = build(K)
    values = [rng.uniform(-0.6, 0.6, size=w.shape).astype(np.float32)
              for w in model.get_weights()]
    model.set_weights(values)
    weights = model.weights
    assert len(weights) == len(values), case
    for w, v in zip(weights, values):  # get_weights() order is model.weights order
        assert np.array_equal(w.numpy(), v), (case, _weight_name(lib, w))
    trainable = model.trainable_weights
    index = [next(i for i, w in enumerate(weights) if w is t) for t in trainable]
    inputs = [make(rng) for make in makers]
    args = [tf.constant(x) for x in inputs]
    floating = [i for i, x in enumerate(inputs) if x.dtype == np.float32]
    variables = [w.value if lib == "k3" else w for w in trainable]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = tf.nest.flatten(model(args if len(args) > 1 else args[0], training=False))
        with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
            for i in floating:
                tape.watch(args[i])
            for v in variables:
                tape.watch(v)
            outs = tf.nest.flatten(model(args if len(args) > 1 else args[0],
                                         training=training))
            upstream = [rng.uniform(-1, 1, size=o.shape).astype(np.float32) for o in outs]
            loss = tf.add_n([tf.reduce_sum(o * tf.constant(u)) for o, u in zip(outs, upstream)])
    for a, b in zip(ref, outs):
        assert np.allclose(np.asarray(a), np.asarray(b), atol=1e-6), case
    g_w = tape.gradient(loss, variables)
    g_in = tape.gradient(loss, [args[i] for i in floating])
    input_gradients = [None] * len(args)
    for i, g in zip(floating, g_in):
        input_gradients[i] = None if g is None else _array(tf.convert_to_tensor(g).numpy())
    input_names = (list(model.input_names) if lib == "tf"
                   else [t.name for t in model.inputs])
    doc = {
        "case": case,
        "library": {"tf": "tf_keras", "k3": "keras3"}[lib],
        "generated_by": BY,
        "versions": VERSIONS,
        "notes": notes,
        "model_config": json.loads(model.to_json()),
        "input_names": input_names,
        "inputs": [dict(_array(x), dtype=str(x.dtype)) for x in inputs],
        "training": bool(training),
        "weights": [dict(_array(v), name=_weight_name(lib, w),
                         trainable=any(w is t for t in trainable))
                    for w, v in zip(weights, values)],
        "outputs": [_array(np.asarray(o)) for o in outs],
        "upstream": [_array(u) for u in upstream],
        "loss": float(loss.numpy()),
        "trainable_weight_names": [_weight_name(lib, w) for w in trainable],
        "trainable_weight_indices": index,
        "weight_gradients": [
            None if g is None else dict(_array(tf.convert_to_tensor(g).numpy()),
                                        name=_weight_name(lib, w))
            for g, w in zip(g_w, trainable)],
        "input_gradients": input_gradients,
    }
    path = OUT / f"{case}.{lib}.json"
    OUT.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


# --------------------------------------------------------------------------------------------
# Kinks probe (for the README)
# --------------------------------------------------------------------------------------------

KINKS = [
    ("relu", [-1e-3, 0.0, 1e-3]),
    ("elu", [0.0]),
    ("selu", [0.0]),
    ("hard_sigmoid", [-3.0, -2.5, 2.5, 3.0]),
]


def kinks():
    rows = []
    for lib in BOTH:
        K = LIBS[lib]
        for name, points in KINKS:
            f = K.activations.get(name)
            x = tf.constant(points, tf.float32)
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = f(x)
            g = tape.gradient(y, x)
            for p, v, d in zip(points, y.numpy(), g.numpy()):
                rows.append((lib, name, p, float(v), float(d)))
        # Ties: which argument gets the gradient.
        a = tf.constant([[1.0, 2.0]])
        b = tf.constant([[1.0, 0.0]])
        for layer_name in ("Maximum", "Minimum"):
            layer = getattr(K.layers, layer_name)()
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(a)
                tape.watch(b)
                y = layer([a, b])
            rows.append((lib, f"{layer_name} tie (a = b = 1)", "d/da, d/db",
                         float(tape.gradient(y, a).numpy()[0, 0]),
                         float(tape.gradient(y, b).numpy()[0, 0])))
        x = tf.constant([[[1.0], [1.0], [0.5], [0.5]]])
        for layer in (K.layers.MaxPooling1D(2), K.layers.GlobalMaxPooling1D()):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
            rows.append((lib, f"{type(layer).__name__} tie [1, 1, .5, .5]", "d/dx",
                         tape.gradient(y, x).numpy().ravel().tolist(), ""))
    print("| lib | function | x | f(x) | f'(x) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")


# Cases one library gets wrong, so no fixture is written for it: Keras 3.15's
# Bidirectional.compute_output_shape doubles the forward layer's units, ignoring a backward
# layer of other units ((None, 6) for LSTM(3) + LSTM(2), whose output is 5 wide).
KERAS_WRONG = {("bidi_lstm_backward_layer_masked_last", "k3")}

# Cases of options one library does not have: Keras 3's rms_scaling, use_gate and
# sliding_window, tf_keras's softmax_robust_masking.
ONLY_K3 = {"layer_norm_rms_scaling", "mha_gate", "mha_sliding_window_masked"}
ONLY_TF = {"mha_robust_query_masked"}


def main(argv):
    if "--kinks" in argv:
        kinks()
        return
    prefixes = [a for a in argv if not a.startswith("-")]
    if not prefixes:
        for p in OUT.glob("*.json"):
            p.unlink()
    names = [c[0] for c in CASES] + [f"model_{m[0]}" for m in MODELS]
    assert len(names) == len(set(names)), "duplicate case names"
    for case, make, shapes, kw in CASES:
        if prefixes and not any(case.startswith(p) for p in prefixes):
            continue
        for lib in BOTH:
            if ((case, lib) in KERAS_WRONG or (case in ONLY_K3 and lib != "k3")
                    or (case in ONLY_TF and lib != "tf")):
                continue
            args = dict(kw)
            keep = args.pop("dropout_keep", None)
            if keep is None:
                print(write_gradient_case(OUT, case, lib, make, shapes, generated_by=BY, **args))
                continue
            with fixed_dropout(lib, keep):
                extra = {"dropout_keep": _array(keep), "dropout_rate": 0.5}
                print(write_gradient_case(OUT, case, lib, make, shapes, generated_by=BY,
                                          extra=extra, **args))
    for name, build, makers, notes in MODELS:
        if prefixes and not any(f"model_{name}".startswith(p) for p in prefixes):
            continue
        for lib in BOTH:
            print(model_case(name, lib, build, makers, notes))


if __name__ == "__main__":
    main(sys.argv[1:])
