#!/usr/bin/env python3
"""Generate reference Keras WHOLE MODELS built with seqnn's newer layers
(convolutions, poolings, normalization, reshaping, noise, attention,
ConvLSTM) for seqnn's loader, end to end.

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_models.py

It (re)writes everything in tests/fixtures/models/ except README.md and
then runs the format checks. Other modes:

    generate_models.py CASE...          regenerate only those cases
    generate_models.py --check          verify the README's format rules on
                                        every file here
    generate_models.py --layouts        print the weight groups / names of
                                        every layer kind new here, per
                                        format (what the README tabulates)
    generate_models.py --dump FILE...   zip members, metadata, the graph and
                                        the HDF5 tree of saved files
    generate_models.py --dump-full FILE...   the same plus the config JSON

Same machinery and conventions as generate_functional.py (shared in
model_fixtures.py): for every case of CASES, the same model (a Sequential,
or a Functional `Model(inputs, outputs)`) is built with tf_keras 2.21
("tf") and Keras 3.15 ("k3", TensorFlow backend) from one description,
given the SAME weights, and saved as

    <case>.tf.keras       tf_keras  model.save("x.keras")
    <case>.tf.h5          tf_keras  model.save("x.h5")   (legacy HDF5)
    <case>.k3.keras       Keras 3   model.save("x.keras")
    <case>.k3.h5          Keras 3   model.save("x.h5")   (legacy HDF5)
    <case>.k3.weights.h5  Keras 3   model.save_weights("x.weights.h5")

plus <case>.json (keys as in tests/fixtures/functional/README.md).
Sequential models use each library's idiom: tf_keras `input_shape=` /
`input_length=` on the first layer, Keras 3 `keras.Input(...)` first.
clear_session() + set_random_seed(0) before every model; weights
rng.uniform(-0.6, 0.6) float32 in get_weights order (BatchNormalization's
moving_variance uniform(0.5, 1.5)), rng = default_rng(zlib.crc32(case));
then the inputs from the same rng. Every saved file is reloaded by its
writer and must predict exactly what it predicted before saving; a file
its writer cannot load back is kept only when load_weights of it into a
freshly built model reproduces the outputs exactly (`reload_failures`).

The .keras zips embed the save time and Python id()s (shared_object_id);
the .json, .h5 and .weights.h5 files are byte-identical between runs.
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"

import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import zipfile  # noqa: E402
from collections import defaultdict  # noqa: E402

import numpy as np  # noqa: E402
import h5py  # noqa: E402

from model_fixtures import (  # noqa: E402
    ROOT, Case, _strip_for_h5, _strip_ids, check_graph, check_layer_order,
    floats, graph_summary, keras_weight_arrays,
    padded_ids, read_h5_config, read_keras_config, run_generator)

OUT_DIR = ROOT / "tests" / "fixtures" / "models"
GENERATED_BY = "tools/keras_reference/generate_models.py"


# --------------------------------------------------------------------------
# Input makers (besides model_fixtures' floats / padded_ids).
# --------------------------------------------------------------------------

def ids(vocab, batch, timesteps):
    """int32 ids in [0, vocab): 0 is an ordinary token here (no mask)."""
    return lambda rng: rng.integers(0, vocab, size=(batch, timesteps)
                                    ).astype(np.int32)


def attention_masks(batch, tq, tv):
    """bool (batch, tq, tv): random, but every query sees its own step
    (the diagonal), so no row is fully masked."""
    def make(rng):
        m = rng.uniform(size=(batch, tq, tv)) < 0.6
        for t in range(min(tq, tv)):
            m[:, t, t] = True
        return m
    return make


# --------------------------------------------------------------------------
# Cases. build(K, v) gets the Keras module K (tf_keras or keras) and
# v = "tf" | "k3" and returns the built model.
# --------------------------------------------------------------------------

def seq(K, v, shape, layers_fn, dtype=None, tf_first=None):
    """Sequential with input `shape` (without batch): Keras 2 idiom
    (`input_shape=`, or `tf_first`, on the first layer) for tf_keras,
    `keras.Input(shape, dtype)` first for Keras 3. layers_fn(L, first)
    returns the layers; `first` are the first layer's extra kwargs."""
    L = K.layers
    if v == "tf":
        first = dict(tf_first) if tf_first is not None else {
            "input_shape": tuple(shape)}
        return K.Sequential(layers_fn(L, first))
    inp = K.Input(shape=tuple(shape), **({"dtype": dtype} if dtype else {}))
    return K.Sequential([inp] + layers_fn(L, {}))


def build_cnn_lstm(K, v):
    return seq(K, v, (8, 3), lambda L, first: [
        L.Conv1D(4, 3, padding="causal", activation="relu", **first),
        L.MaxPooling1D(2),
        L.LSTM(3),
        L.Dense(2, activation="softmax")])


def build_conv_text(K, v):
    return seq(K, v, (8,), lambda L, first: [
        L.Embedding(20, 4, mask_zero=False, **first),
        L.Conv1D(5, 3, padding="same", dilation_rate=2),
        L.GlobalMaxPooling1D(),
        L.Dense(1, activation="sigmoid")],
        dtype="int32", tf_first={"input_length": 8})


def build_conv_pool_variety(K, v):
    return seq(K, v, (12, 2), lambda L, first: [
        L.Conv1D(4, 2, strides=2, padding="valid", groups=1, **first),
        L.AveragePooling1D(2, padding="same"),
        L.ZeroPadding1D((1, 2)),
        L.Cropping1D((0, 1)),
        L.UpSampling1D(2),
        L.GRU(2)])


def build_bn_between_rnns(K, v):
    return seq(K, v, (6, 3), lambda L, first: [
        L.LSTM(4, return_sequences=True, **first),
        L.BatchNormalization(),
        L.GRU(3, return_sequences=True),
        L.LayerNormalization(),
        L.SpatialDropout1D(0.2),
        L.GaussianNoise(0.1),
        L.LSTM(2),
        L.Dense(2)])


def build_nested_bn(K, v):
    L = K.layers
    x = K.Input(shape=(5, 3))
    if v == "tf":
        inner = K.Sequential([L.LSTM(3, return_sequences=True,
                                     input_shape=(5, 3)),
                              L.BatchNormalization(), L.GRU(2)])
    else:
        inner = K.Sequential([K.Input(shape=(5, 3)),
                              L.LSTM(3, return_sequences=True),
                              L.BatchNormalization(), L.GRU(2)])
    h = L.BatchNormalization()(inner(x))
    return K.Model(x, L.Dense(2)(h))


def build_reshape_permute(K, v):
    return seq(K, v, (4, 3), lambda L, first: [
        L.Dense(6, **first),
        L.Reshape((8, 3)),
        L.Permute((2, 1)),
        L.SimpleRNN(2),
        L.GaussianDropout(0.1),
        L.ActivityRegularization(l1=0.01),
        L.Dense(1)])


def build_masked_global_avg(K, v):
    return seq(K, v, (6,), lambda L, first: [
        L.Embedding(10, 3, mask_zero=True, **first),
        L.LSTM(3, return_sequences=True),
        L.GlobalAveragePooling1D(),
        L.Dense(2)],
        dtype="int32", tf_first={"input_length": 6})


def build_lrcn_video(K, v):
    return seq(K, v, (4, 8, 8, 1), lambda L, first: [
        L.TimeDistributed(L.Conv2D(3, (3, 3), activation="relu"), **first),
        L.TimeDistributed(L.MaxPooling2D((2, 2))),
        L.TimeDistributed(L.Flatten()),
        L.LSTM(3),
        L.Dense(2)])


def build_spectrogram_2d(K, v):
    return seq(K, v, (5, 6, 4, 1), lambda L, first: [
        L.TimeDistributed(L.Conv2D(2, (2, 2), padding="same"), **first),
        L.TimeDistributed(L.AveragePooling2D((2, 2))),
        L.TimeDistributed(L.GlobalAveragePooling2D()),
        L.GRU(2)])


def build_self_attention(K, v):
    L = K.layers
    x = K.Input(shape=(6, 4))
    s = L.LSTM(4, return_sequences=True)(x)
    a = L.MultiHeadAttention(num_heads=2, key_dim=3)(s, s)
    return K.Model(x, L.Dense(2)(L.GlobalAveragePooling1D()(a)))


def build_self_attention_causal(K, v):
    L = K.layers
    x = K.Input(shape=(6, 4))
    s = L.LSTM(4, return_sequences=True)(x)
    a, scores = L.MultiHeadAttention(num_heads=2, key_dim=3)(
        s, s, use_causal_mask=True, return_attention_scores=True)
    return K.Model(x, [L.Dense(2)(L.GlobalAveragePooling1D()(a)), scores])


def build_self_attention_mask(K, v):
    L = K.layers
    x = K.Input(shape=(6, 4))
    m = K.Input(shape=(6, 6), dtype="bool")
    s = L.LSTM(4, return_sequences=True)(x)
    a = L.MultiHeadAttention(num_heads=2, key_dim=3)(s, s, attention_mask=m)
    return K.Model([x, m], L.Dense(2)(L.GlobalAveragePooling1D()(a)))


def build_luong_attention(K, v):
    L = K.layers
    enc_in = K.Input(shape=(6, 3))
    dec_in = K.Input(shape=(5, 2))
    enc, h, c = L.LSTM(4, return_sequences=True, return_state=True)(enc_in)
    dec = L.LSTM(4, return_sequences=True)(dec_in, initial_state=[h, c])
    dot = L.Attention()([dec, enc])
    add = L.AdditiveAttention()([dec, enc])
    y = L.TimeDistributed(L.Dense(2))(L.Concatenate()([dec, dot, add]))
    return K.Model([enc_in, dec_in], y)


def build_masked_attention(K, v):
    L = K.layers
    x = K.Input(shape=(6,), dtype="int32")
    e = L.Embedding(12, 4, mask_zero=True)(x)
    a = L.MultiHeadAttention(2, 2)(e, e)
    return K.Model(x, L.LSTM(2)(a))


def build_masked_seq2seq(K, v):
    L = K.layers
    enc_in = K.Input(shape=(6,), dtype="int32")
    dec_in = K.Input(shape=(5,), dtype="int32")
    _, h, c = L.LSTM(4, return_state=True)(
        L.Embedding(10, 3, mask_zero=True)(enc_in))
    d = L.LSTM(4, return_sequences=True)(
        L.Embedding(10, 3, mask_zero=True)(dec_in), initial_state=[h, c])
    return K.Model([enc_in, dec_in], L.TimeDistributed(L.Dense(2))(d))


def build_multiply_gate(K, v):
    L = K.layers
    x = K.Input(shape=(5, 3))
    s = L.LSTM(3, return_sequences=True)(x)
    g = L.Dense(3, activation="sigmoid")(s)
    return K.Model(x, L.GRU(2)(L.Multiply()([s, g])))


def build_conv_lstm2d(K, v):
    return seq(K, v, (4, 6, 6, 1), lambda L, first: [
        L.ConvLSTM2D(2, (3, 3), padding="same", return_sequences=True,
                     **first),
        L.ConvLSTM2D(2, (2, 2)),
        L.Flatten(),
        L.Dense(2)])


def build_conv_lstm1d(K, v):
    return seq(K, v, (5, 7, 2), lambda L, first: [
        L.ConvLSTM1D(3, 2, padding="valid",
                     recurrent_activation="hard_sigmoid", **first),
        L.Flatten(),
        L.Dense(1)])


HARD_SIGMOID_NOTE = (
    "recurrent_activation='hard_sigmoid' is the same config string in both "
    "libraries but another function: tf_keras (Keras 2) "
    "clip(0.2 * x + 0.5, 0, 1) (tf_keras/src/backend.py hard_sigmoid), "
    "Keras 3 relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1) "
    "(keras/src/backend/tensorflow/nn.py hard_sigmoid). So "
    "expected.tf_keras and expected.keras3 differ; a loader must apply the "
    "function of the file's dialect (metadata keras_version). Checked: the "
    "Keras 3 model with its ConvLSTM recurrent_activation replaced by the "
    "Keras 2 formula reproduces expected.tf_keras")
CONV_LSTM_DEFAULT_NOTE = (
    "ConvLSTM1D/2D/3D's DEFAULT recurrent_activation differs: 'hard_sigmoid' "
    "in tf_keras (tf_keras/src/layers/rnn/conv_lstm2d.py ConvLSTM2D.__init__; "
    "LSTM's default is 'sigmoid' there), 'sigmoid' in Keras 3 "
    "(keras/src/layers/rnn/conv_lstm2d.py). The same Python code therefore "
    "builds different models: the .tf configs say 'hard_sigmoid' (Keras 2's "
    "clip(0.2 * x + 0.5, 0, 1)), the .k3 configs 'sigmoid', and "
    "expected.tf_keras differs from expected.keras3. Checked: the Keras 3 "
    "model with recurrent_activation replaced by the Keras 2 hard_sigmoid "
    "reproduces expected.tf_keras")
MHA_MASK_NOTE = (
    "the Embedding's mask reaches MultiHeadAttention as query_mask and "
    "value_mask (Keras 3 Layer.__call__ fills the `<arg>_mask` call "
    "arguments from the arguments' masks, keras/src/layers/layer.py step 6; "
    "tf_keras reads query._keras_mask / value._keras_mask in "
    "MultiHeadAttention._compute_attention_mask); the attention mask is "
    "query_mask[:, :, None] & value_mask[:, None, :], and the output "
    "carries the query mask to the LSTM. Keras 3's config records no mask "
    "on the MultiHeadAttention node (kwargs {}): a loader must propagate "
    "the Embedding's mask itself; the LSTM node gets mask=KT(not_equal) "
    "from a NotEqual op entry placed after the MultiHeadAttention entry. "
    "Checked: recomputed with an explicit attention_mask = q & v and the "
    "LSTM masked by the ids != 0, both libraries' expected are reproduced "
    "(< 1e-8); without masks the output differs by ~0.035")

CASES = {
    "cnn_lstm": Case(
        "Sequential on (8, 3): Conv1D(4, 3, padding='causal', "
        "activation='relu') -> MaxPooling1D(2) -> LSTM(3) -> Dense(2, "
        "softmax)",
        build_cnn_lstm, [floats(3, 8, 3)]),
    "conv_text": Case(
        "Sequential on int ids (8,): Embedding(20, 4, mask_zero=False) -> "
        "Conv1D(5, 3, padding='same', dilation_rate=2) -> "
        "GlobalMaxPooling1D -> Dense(1, sigmoid). tf_keras: input_length=8 "
        "on the Embedding (float32 InputLayer); Keras 3: Input((8,), "
        "dtype='int32')",
        build_conv_text, [ids(20, 4, 8)],
        ("tf_keras's InputLayer is float32 (Keras 2 idiom input_length=8); "
         "the ids are fed as int32 and cast; Keras 3's is int32",)),
    "conv_pool_variety": Case(
        "Sequential on (12, 2): Conv1D(4, 2, strides=2, padding='valid', "
        "groups=1) (6, 4) -> AveragePooling1D(2, padding='same') (3, 4) -> "
        "ZeroPadding1D((1, 2)) (6, 4) -> Cropping1D((0, 1)) (5, 4) -> "
        "UpSampling1D(2) (10, 4) -> GRU(2)",
        build_conv_pool_variety, [floats(3, 12, 2)]),
    "bn_between_rnns": Case(
        "Sequential on (6, 3): LSTM(4, seq) -> BatchNormalization -> "
        "GRU(3, seq) -> LayerNormalization -> SpatialDropout1D(0.2) -> "
        "GaussianNoise(0.1) -> LSTM(2) -> Dense(2). BN moving_mean "
        "uniform(-0.6, 0.6), moving_variance uniform(0.5, 1.5) (like every "
        "weight, set with set_weights)",
        build_bn_between_rnns, [floats(3, 6, 3)],
        ("SpatialDropout1D and GaussianNoise are the identity in predict; "
         "BatchNormalization uses the moving statistics: "
         "gamma * (x - moving_mean) / sqrt(moving_variance + 0.001) + beta",
         "BatchNormalization's 4 weights are gamma, beta (trainable) then "
         "moving_mean, moving_variance (non-trainable): 8 of the 285 params "
         "are non-trainable; epsilon 0.001 in both libraries",
         "Keras 3's SpatialDropout1D config is only {rate, seed, name, "
         "dtype}: no `trainable`, dtype a plain string, no build_config "
         "(keras/src/layers/regularization/spatial_dropout.py "
         "BaseSpatialDropout.get_config); in a legacy .k3.h5 model_config "
         "it therefore looks like a Keras 3 op entry (see the README)")),
    "nested_bn": Case(
        "Functional: x (5, 3) -> inner = Sequential([LSTM(3, seq), "
        "BatchNormalization(), GRU(2)]) (tf_keras input_shape=, Keras 3 "
        "Input first) -> BatchNormalization -> Dense(2). Shows where the "
        "BN moving statistics of a NESTED model go in each format",
        build_nested_bn, [floats(3, 5, 3)],
        ("legacy .h5 (both libraries) stores a nested model's weights as "
         "trainable_weights + non_trainable_weights of the whole nested "
         "model, so the inner BN's moving_mean/moving_variance come AFTER "
         "the GRU's weights there, unlike get_weights() and the .keras "
         "files (per layer, in layer order); see the README",)),
    "reshape_permute": Case(
        "Sequential on (4, 3): Dense(6) (4, 6) -> Reshape((8, 3)) -> "
        "Permute((2, 1)) (3, 8) -> SimpleRNN(2) -> GaussianDropout(0.1) -> "
        "ActivityRegularization(l1=0.01) -> Dense(1)",
        build_reshape_permute, [floats(3, 4, 3)],
        ("GaussianDropout and ActivityRegularization are the identity in "
         "predict (the regularizer only adds a loss)",)),
    "masked_global_avg": Case(
        "Sequential on padded ids (6,): Embedding(10, 3, mask_zero=True) -> "
        "LSTM(3, seq) -> GlobalAveragePooling1D (masked: the mean over the "
        "real steps only) -> Dense(2)",
        build_masked_global_avg, [padded_ids(10, 6, [6, 4, 2, 1])],
        ("the Embedding's mask goes through the LSTM (return_sequences) to "
         "GlobalAveragePooling1D, which averages only the unmasked steps: "
         "sum(x * m) / sum(m); its output has no mask",)),
    "lrcn_video": Case(
        "Sequential on (4, 8, 8, 1) (frames, height, width, channels): "
        "TimeDistributed(Conv2D(3, (3, 3), relu)) (4, 6, 6, 3) -> "
        "TimeDistributed(MaxPooling2D((2, 2))) (4, 3, 3, 3) -> "
        "TimeDistributed(Flatten()) (4, 27) -> LSTM(3) -> Dense(2)",
        build_lrcn_video, [floats(3, 4, 8, 8, 1)]),
    "spectrogram_2d": Case(
        "Sequential on (5, 6, 4, 1): TimeDistributed(Conv2D(2, (2, 2), "
        "padding='same')) (5, 6, 4, 2) -> TimeDistributed(AveragePooling2D("
        "(2, 2))) (5, 3, 2, 2) -> TimeDistributed(GlobalAveragePooling2D()) "
        "(5, 2) -> GRU(2)",
        build_spectrogram_2d, [floats(3, 5, 6, 4, 1)]),
    "self_attention": Case(
        "Functional: x (6, 4) -> LSTM(4, seq) = s -> MultiHeadAttention("
        "num_heads=2, key_dim=3)(s, s) -> GlobalAveragePooling1D -> "
        "Dense(2)",
        build_self_attention, [floats(3, 6, 4)],
        ("mha(s, s) is serialized differently: tf_keras writes one inbound "
         "reference for the query with the value as a tensor kwarg, "
         "[[\"lstm\", 0, 0, {\"value\": [\"lstm\", 0, 0]}]]; Keras 3 "
         "args [KT(lstm), KT(lstm)] (query, value), kwargs {}",
         "MultiHeadAttention's config: tf_keras adds query_shape, key_shape, "
         "value_shape (used to build it at load) and softmax_robust_masking; "
         "Keras 3 adds use_gate, sliding_window, seed and keeps the shapes "
         "in build_config.shapes_dict {query_shape, value_shape} (no "
         "key_shape when key is the value)")),
    "self_attention_causal": Case(
        "Functional: x (6, 4) -> LSTM(4, seq) = s -> MultiHeadAttention(2, "
        "3)(s, s, use_causal_mask=True, return_attention_scores=True) -> "
        "(a, scores); outputs [Dense(2)(GlobalAveragePooling1D()(a)), "
        "scores (batch, heads, 6, 6)]",
        build_self_attention_causal, [floats(3, 6, 4)],
        ("use_causal_mask and return_attention_scores are literal kwargs "
         "of the MultiHeadAttention node in both dialects (tf_keras: in "
         "the reference's kwargs dict, beside \"value\"); the scores are "
         "output 1 of the layer ([\"multi_head_attention\", 0, 1] in "
         "output_layers), shape (batch, num_heads, T_query, T_value), "
         "zero above the diagonal",)),
    "self_attention_mask": Case(
        "Functional: inputs x (6, 4) and m bool (6, 6); LSTM(4, seq) = s -> "
        "MultiHeadAttention(2, 3)(s, s, attention_mask=m) -> "
        "GlobalAveragePooling1D -> Dense(2). m is random with a True "
        "diagonal (no fully masked row)",
        build_self_attention_mask, [floats(3, 6, 4), attention_masks(3, 6, 6)],
        ("attention_mask=m is a tensor kwarg of the MultiHeadAttention node: "
         "tf_keras [\"input_2\", 0, 0] in the kwargs dict, Keras 3 "
         "kwargs.attention_mask = KT(input_layer_1); True = may attend; "
         "the second InputLayer comes after the LSTM in `layers` (model."
         "layers is ordered by depth)",)),
    "luong_attention": Case(
        "Functional: encoder Input(6, 3) -> LSTM(4, seq, return_state) -> "
        "enc, h, c; decoder Input(5, 2) -> LSTM(4, seq)(dec_in, "
        "initial_state=[h, c]) = dec; Attention()([dec, enc]) and "
        "AdditiveAttention()([dec, enc]) -> Concatenate()([dec, dot, add]) "
        "(5, 12) -> TimeDistributed(Dense(2))",
        build_luong_attention, [floats(3, 6, 3), floats(3, 5, 2)],
        ("Attention() has no weights (use_scale=False by default); "
         "AdditiveAttention() has one, `scale` (4,) (use_scale=True by "
         "default). Both get [query, value] as one list argument (tf_keras "
         "two references, Keras 3 args [[KT, KT]])",
         "Keras 3 cannot load its own luong_attention.k3.h5: its legacy "
         "loader turns the config string score_mode='dot' into the function "
         "keras.layers.dot (keras/src/legacy/saving/serialization.py "
         "class_and_config_for_serialized_keras_object replaces any string "
         "config value naming a function of module_objects = "
         "keras.src.layers.__dict__, saving_utils.model_from_config), and "
         "Attention rejects it")),
    "masked_attention": Case(
        "Functional: ids (6,) zero-padded -> Embedding(12, 4, "
        "mask_zero=True) = e -> MultiHeadAttention(2, 2)(e, e) -> LSTM(2). "
        "The Embedding's mask reaches the attention (query and value "
        "masks) and, through it, the LSTM",
        build_masked_attention, [padded_ids(12, 6, [6, 4, 2, 1])],
        (MHA_MASK_NOTE,)),
    "masked_seq2seq": Case(
        "Functional: encoder ids (6,) -> Embedding(10, 3, mask_zero=True) "
        "-> LSTM(4, return_state) -> h, c; decoder ids (5,) -> Embedding(10, "
        "3, mask_zero=True) -> LSTM(4, seq)(dec, initial_state=[h, c]) -> "
        "TimeDistributed(Dense(2)); both zero-padded, different lengths",
        build_masked_seq2seq,
        [padded_ids(10, 6, [6, 3, 5, 1]), padded_ids(10, 5, [5, 4, 2, 1])],
        ("the libraries compute different numbers here: Keras 3 ignores the "
         "decoder Embedding's mask because the LSTM is called with "
         "initial_state. Keras 3 Layer.__call__ fills `mask` from the "
         "inputs' masks only when the call has exactly one tensor argument "
         "(keras/src/layers/layer.py, '6. Populate mask argument(s)'); with "
         "initial_state there are two (sequences, initial_state), and RNN has "
         "no sequences_mask argument, so the mask is dropped and the padded "
         "steps are processed. tf_keras masks them (masked steps keep the "
         "state and repeat the previous output). The encoder LSTM (no "
         "initial_state) is masked in both. Keras 3's config has no mask "
         "kwarg on the decoder node (kwargs {initial_state: [...]}); it does "
         "record the decoder mask (op not_equal_1) and passes it on to "
         "TimeDistributed as mask=, which Dense ignores. Checked: each library's expected is "
         "reproduced by the decoder LSTM called with mask=dec_ids != 0 "
         "(tf_keras) / without mask (Keras 3)",)),
    "multiply_gate": Case(
        "Functional: x (5, 3) -> LSTM(3, seq) = s; g = Dense(3, sigmoid)(s); "
        "Multiply()([s, g]) -> GRU(2)",
        build_multiply_gate, [floats(3, 5, 3)]),
    "conv_lstm2d": Case(
        "Sequential on (4, 6, 6, 1) (time, rows, cols, channels): "
        "ConvLSTM2D(2, (3, 3), padding='same', return_sequences=True) "
        "(4, 6, 6, 2) -> ConvLSTM2D(2, (2, 2)) (5, 5, 2) -> Flatten (50) -> "
        "Dense(2). Each library's default activations: tanh and, for "
        "recurrent_activation, tf_keras 'hard_sigmoid' / Keras 3 'sigmoid'",
        build_conv_lstm2d, [floats(3, 4, 6, 6, 1)],
        (CONV_LSTM_DEFAULT_NOTE,
         "ConvLSTM weights: kernel (kh, kw, in_channels, 4 * filters), "
         "recurrent_kernel (kh, kw, filters, 4 * filters), bias (4 * "
         "filters,), gates i, f, c, o along the last axis as in LSTM; the "
         "recurrent convolution always uses padding 'same' and stride 1; "
         "tf_keras names them conv_lstm2d/kernel:0 (no cell in the name) but "
         "stores them under cell/ in .keras, Keras 3 "
         "conv_lstm2d/conv_lstm_cell/kernel")),
    "conv_lstm1d": Case(
        "Sequential on (5, 7, 2) (time, steps, channels): ConvLSTM1D(3, 2, "
        "padding='valid', recurrent_activation='hard_sigmoid') (6, 3) -> "
        "Flatten (18) -> Dense(1)",
        build_conv_lstm1d, [floats(3, 5, 7, 2)], (HARD_SIGMOID_NOTE,)),
}


# --------------------------------------------------------------------------
# Format checks (--check; also run after a full generation).
# --------------------------------------------------------------------------

def legacy_weight_arrays(path):
    """layer_names and [(group, weight name, array)] of a legacy .h5, in
    layer_names / weight_names order (a name already seen is skipped)."""
    out, seen = [], set()
    with h5py.File(str(path), "r") as f:
        mw = f["model_weights"]
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in mw.attrs["layer_names"]]
        for n in names:
            wn = [w.decode() if isinstance(w, bytes) else w
                  for w in mw[n].attrs["weight_names"]]
            for w in wn:
                if w in seen:
                    continue
                seen.add(w)
                out.append((n, w, np.asarray(mw[n][w])))
    return names, out


def check_legacy_weights(path, case, dialect, container, weights):
    """Each legacy dataset is the get_weights() array of the variable of
    the same name (tf_keras: variable.name; Keras 3: variable.path), and
    within a group the order is the layer's weights in order, except for a
    nested model: its trainable weights first, then its non-trainable ones
    (save_weights_to_hdf5_group -> _legacy_weights(layer) =
    layer.trainable_weights + layer.non_trainable_weights, in
    tf_keras/src/saving/legacy/hdf5_format.py and
    keras/src/legacy/saving/legacy_h5_format.py)."""
    key = "name" if dialect == "tf_keras" else "path"
    index = {w[key]: i for i, w in enumerate(case["weight_names"][dialect])}
    assert len(index) == len(weights), path.name
    nested = {e["name"] for e in case["layers"][dialect] if "layers" in e}
    names, arrays = legacy_weight_arrays(path)
    top = [e["name"] for e in case["layers"][dialect]
           if not (container == "Sequential" and e["class"] == "InputLayer")]
    assert names == top, (path.name, names, top)
    assert sorted(index[w] for _, w, _ in arrays) == list(range(len(weights)))
    for g in names:
        got = [index[w] for n, w, _ in arrays if n == g]

        def non_trainable(i):
            return case["weight_names"][dialect][i][key].split("/")[-1] \
                .startswith("moving_")
        want = sorted(got, key=lambda i: ((non_trainable(i) if g in nested
                                           else 0), i))
        assert got == want, (path.name, g, got, want)
    for g, w, a in arrays:
        assert np.array_equal(a, weights[index[w]]), (path.name, g, w)
    return [w for _, w, _ in arrays]


def check_formats(verbose=True):
    facts = defaultdict(lambda: defaultdict(set))
    n_files = 0
    for jpath in sorted(OUT_DIR.glob("*.json")):
        case = json.loads(jpath.read_text(encoding="utf-8"))
        weights = [np.asarray(w["data"], np.float32).reshape(w["shape"])
                   for w in case["weights"]]
        for fname in case["files"]:
            if fname.endswith(".json"):
                continue
            path = OUT_DIR / fname
            n_files += 1
            dialect = "tf_keras" if ".tf." in fname else "keras3"
            fx = facts[dialect]
            if fname.endswith(".weights.h5"):
                cfg = read_keras_config(OUT_DIR / fname.replace(
                    ".weights.h5", ".keras"))
            elif fname.endswith(".keras"):
                cfg = read_keras_config(path)
                assert graph_summary(cfg) == case["graph"][dialect], fname
            else:
                cfg = read_h5_config(path)
                keras_cfg = read_keras_config(
                    OUT_DIR / fname.replace(".h5", ".keras"))
                assert _strip_for_h5(keras_cfg) == _strip_ids(cfg), fname
            container = cfg["class_name"]
            check_layer_order(cfg, case["layers"][dialect], fname)
            if container == "Functional":
                check_graph(cfg, dialect, fx, fname)
            if fname.endswith(".h5") and not fname.endswith(".weights.h5"):
                for w in check_legacy_weights(path, case, dialect, container,
                                              weights):
                    fx["legacy_names"].add(re.sub(r"_\d+(?=/|:|$)", "", w))
            else:
                arrays = keras_weight_arrays(path, case, container)
                assert len(arrays) == len(weights), (fname, len(arrays))
                for (p, a), w in zip(arrays, weights):
                    assert a.shape == w.shape and np.array_equal(a, w), \
                        (fname, p)
                    fx["keras_paths"].add(re.sub(r"_\d+(?=/|$)", "", p))
    if verbose:
        for dialect, fx in facts.items():
            print(f"==== {dialect}")
            for key, vals in sorted(fx.items()):
                print(f"  {key}:")
                for val in sorted(vals, key=str):
                    print(f"    {val}")
    print(f"format checks passed on {n_files} model files")
    return facts


def check_semantics():
    """Recompute some outputs from the README's rules with the loaded
    models' own layers and compare with each library's expected."""
    import tensorflow as tf
    from model_fixtures import load

    def case_data(name):
        case = json.loads((OUT_DIR / f"{name}.json").read_text("utf-8"))
        xs = [np.asarray(i["data"], i["dtype"]).reshape(i["shape"])
              for i in case["inputs"]]
        return case, xs

    def want(case, key, i=0):
        t = case["expected"][key][i]
        return np.asarray(t["data"]).reshape(t["shape"])

    worst = 0.0

    def compare(got, expected, what, tol=1e-6):
        nonlocal worst
        d = float(np.max(np.abs(np.asarray(got, np.float64) - expected)))
        assert d < tol, (what, d)
        worst = max(worst, d)

    for v, key in (("tf", "tf_keras"), ("k3", "keras3")):
        # masked_attention: attention mask = q & v, LSTM masked by ids != 0.
        case, (ids_,) = case_data("masked_attention")
        m = load(v, OUT_DIR / f"masked_attention.{v}.keras")
        L = {layer.name: layer for layer in m.layers}
        e = tf.constant(np.asarray(L["embedding"](ids_)))
        mask = tf.constant(ids_ != 0)
        am = tf.logical_and(mask[:, :, None], mask[:, None, :])
        a = L["multi_head_attention"](e, e, attention_mask=am)
        compare(L["lstm"](a, mask=mask), want(case, key),
                ("masked_attention", v))
        # masked_global_avg: the mean over the unmasked steps.
        case, (ids_,) = case_data("masked_global_avg")
        m = load(v, OUT_DIR / f"masked_global_avg.{v}.keras")
        L = {layer.name: layer for layer in m.layers}
        s = np.asarray(L["lstm"](L["embedding"](ids_), mask=ids_ != 0))
        w = (ids_ != 0)[..., None].astype(np.float32)
        pooled = (s * w).sum(1) / w.sum(1)
        compare(L["dense"](pooled), want(case, key), ("masked_global_avg", v))
        # bn_between_rnns: BN from its moving statistics.
        case, (x,) = case_data("bn_between_rnns")
        m = load(v, OUT_DIR / f"bn_between_rnns.{v}.keras")
        L = {layer.name: layer for layer in m.layers}
        gamma, beta, mean, var = L["batch_normalization"].get_weights()
        h = np.asarray(L["lstm"](x))
        h = gamma * (h - mean) / np.sqrt(var + 1e-3) + beta
        h = L["dense"](L["lstm_1"](L["layer_normalization"](L["gru"](h))))
        compare(h, want(case, key), ("bn_between_rnns", v))
        # masked_seq2seq: the decoder is masked in tf_keras only.
        case, (enc_ids, dec_ids) = case_data("masked_seq2seq")
        m = load(v, OUT_DIR / f"masked_seq2seq.{v}.keras")
        L = {layer.name: layer for layer in m.layers}
        _, h, c = L["lstm"](L["embedding"](enc_ids), mask=enc_ids != 0)
        d_in = L["embedding_1"](dec_ids)
        if v == "tf":
            d = L["lstm_1"](d_in, initial_state=[h, c], mask=dec_ids != 0)
        else:
            d = L["lstm_1"](d_in, initial_state=[h, c])
        compare(L["time_distributed"](d), want(case, key),
                ("masked_seq2seq", v))

    # ConvLSTM: Keras 3's model with Keras 2's hard_sigmoid as recurrent
    # activation reproduces tf_keras's numbers.
    import keras

    def keras2_hard_sigmoid(x):
        return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)

    for name in ("conv_lstm1d", "conv_lstm2d"):
        case, (x,) = case_data(name)
        m = load("k3", OUT_DIR / f"{name}.k3.keras")
        for layer in m.layers:
            if hasattr(layer, "cell"):
                layer.cell.recurrent_activation = keras2_hard_sigmoid
        compare(m(x), want(case, "tf_keras"), (name, "keras2 hard_sigmoid"))
        assert np.max(np.abs(want(case, "tf_keras")
                             - want(case, "keras3"))) > 1e-3, name
    print(f"semantics checks passed (max abs diff {worst:.3g})")


# --------------------------------------------------------------------------
# --layouts: where every weight of every layer kind new here is stored.
# --------------------------------------------------------------------------

def print_layouts():
    for jpath in sorted(OUT_DIR.glob("*.json")):
        case = json.loads(jpath.read_text(encoding="utf-8"))
        print(f"##### {case['case']}")
        for dialect in ("tf_keras", "keras3"):
            lib = "tf" if dialect == "tf_keras" else "k3"
            print(f"  {dialect} get_weights():")
            for w in case["weight_names"][dialect]:
                print(f"    {w.get('path', w['name'])} {w['shape']}")
            path = OUT_DIR / f"{case['case']}.{lib}.keras"
            if path.exists():
                with zipfile.ZipFile(path) as z:
                    data = io.BytesIO(z.read("model.weights.h5"))
                print(f"  {path.name} model.weights.h5:")
                with h5py.File(data, "r") as f:
                    def visit(n, o):
                        if isinstance(o, h5py.Dataset):
                            print(f"    {n} {list(o.shape)}")
                        elif "name" in o.attrs:
                            print(f"    {n}/ name={o.attrs['name']}")
                    f.visititems(visit)
            path = OUT_DIR / f"{case['case']}.{lib}.h5"
            if path.exists():
                names, arrays = legacy_weight_arrays(path)
                print(f"  {path.name} layer_names={names}")
                for g, w, a in arrays:
                    print(f"    {g}: {w} {list(a.shape)}")


# --------------------------------------------------------------------------

def main():
    run_generator(OUT_DIR, CASES, GENERATED_BY, check_formats, check_semantics,
                  {"--layouts": print_layouts})


if __name__ == "__main__":
    main()
