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

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"

import json  # noqa: E402

import numpy as np  # noqa: E402

# The machinery shared with generate_models.py (helpers, make_case, dumps,
# format checks) lives in model_fixtures.py, next to this script.
from model_fixtures import (  # noqa: E402
    ROOT, VERSION_KEY, Case, _inner_sequential, _strip_for_h5, _strip_ids,
    bool_mask, check_graph, check_keras_weights, check_layer_order,
    check_legacy_h5, floats, graph_summary, load, run_generator,
    padded_floats, padded_ids, read_h5_config, read_keras_config)

OUT_DIR = ROOT / "tests" / "fixtures" / "functional"
GENERATED_BY = "tools/keras_reference/generate_functional.py"


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


# --------------------------------------------------------------------------

def main():
    run_generator(OUT_DIR, CASES, GENERATED_BY, check_formats, check_mask_semantics,
                  None)


if __name__ == "__main__":
    main()

