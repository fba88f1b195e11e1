#!/usr/bin/env python3
"""Layer-level fixtures of the attention layers (tests/layers_attention.rs): Attention,
AdditiveAttention and MultiHeadAttention in tf_keras 2.21 and Keras 3.15, with their configs,
weights, inputs, masks, outputs and output masks.

    .venv-ref/bin/python tools/keras_reference/generate_layers_attention.py

Cases whose call needs keyword arguments a layer config does not hold (use_causal_mask,
return_attention_scores, attention_mask) go to `attention/call/`, with those arguments
recorded in the case; the others to `attention/`, which `check_family("attention")` reads.

Masks travel as Keras masks on the inputs (`keras_masks=True`), as an Embedding or Masking layer
upstream leaves them: that is how MultiHeadAttention reads them in both libraries, and how
Attention and AdditiveAttention read them in a Functional model.
"""

import json
import zlib
from pathlib import Path

import numpy as np

from layer_fixtures import write_case

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "layers" / "attention"
CALL = OUT / "call"
BY = "tools/keras_reference/generate_layers_attention.py"
BOTH = ("tf", "k3")

# Batch 3: query masks with masked steps, value masks keeping at least one step per sample.
MASK_Q4 = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]], bool)
MASK_Q3 = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]], bool)
MASK_V5 = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], bool)
MASK_K5 = np.array([[1, 0, 1, 1, 1], [1, 1, 1, 1, 0], [0, 1, 1, 1, 1]], bool)


def same_data(case, shape, copies=2):
    """The same random array `copies` times: self-attention with query = value (= key)."""
    rng = np.random.default_rng(zlib.crc32(("data/" + case).encode()))
    x = rng.uniform(-1.0, 1.0, size=(3,) + shape).astype(np.float32)
    return [x] * copies


def causal_band(t, s):
    """A (3, t, s) attention mask: each query sees the keys within one step of it."""
    i = np.arange(t)[:, None]
    j = np.arange(s)[None, :]
    return np.broadcast_to(np.abs(i - j) <= 1, (3, t, s)).astype(np.float32)


def mha_attention_mask_inputs(case):
    rng = np.random.default_rng(zlib.crc32(("data/" + case).encode()))
    q = rng.uniform(-1.0, 1.0, size=(3, 3, 4)).astype(np.float32)
    v = rng.uniform(-1.0, 1.0, size=(3, 5, 4)).astype(np.float32)
    return [q, v, causal_band(3, 5)]


# (case, libraries, make_layer, input shapes, write_case options)
CASES = [
    # Attention
    ("attention_self", BOTH, lambda L: L.Attention(),
     [(4, 3), (4, 3)], {"inputs": same_data("attention_self", (4, 3))}),
    ("attention_scale_cross", BOTH, lambda L: L.Attention(use_scale=True),
     [(3, 4), (5, 4)], {}),
    ("attention_key_value_dim", BOTH, lambda L: L.Attention(),
     [(3, 4), (5, 6), (5, 4)], {}),
    ("attention_masked", BOTH, lambda L: L.Attention(use_scale=True),
     [(4, 3), (5, 3)], {"masks": [MASK_Q4, MASK_V5]}),
    ("attention_concat_masked", BOTH,
     lambda L: L.Attention(use_scale=True, score_mode="concat"),
     [(4, 3), (5, 3)], {"masks": [MASK_Q4, MASK_V5]}),
    ("attention_concat_key", BOTH, lambda L: L.Attention(score_mode="concat", dropout=0.2),
     [(3, 4), (5, 2), (5, 4)], {"masks": [MASK_Q3, MASK_V5, MASK_K5]}),
    # tf_keras's deprecated constructor argument; Keras 3 has none.
    ("attention_causal_config", ("tf",), lambda L: L.Attention(causal=True),
     [(4, 3), (4, 3)], {"inputs": same_data("attention_causal_config", (4, 3))}),
    # AdditiveAttention
    ("additive_default", BOTH, lambda L: L.AdditiveAttention(),
     [(3, 4), (5, 4)], {}),
    ("additive_no_scale_masked", BOTH, lambda L: L.AdditiveAttention(use_scale=False),
     [(4, 3), (5, 3)], {"masks": [MASK_Q4, MASK_V5]}),
    ("additive_key_masked", BOTH, lambda L: L.AdditiveAttention(),
     [(3, 4), (5, 4), (5, 4)], {"masks": [MASK_Q3, MASK_V5, MASK_K5]}),
    # Keras 3 sizes the scale by the query, so the value's features may differ; tf_keras fails.
    ("additive_value_dim", ("k3",), lambda L: L.AdditiveAttention(),
     [(3, 4), (5, 6), (5, 4)], {}),
    ("additive_causal_config", ("tf",), lambda L: L.AdditiveAttention(causal=True),
     [(4, 3), (4, 3)], {"inputs": same_data("additive_causal_config", (4, 3))}),
    # MultiHeadAttention
    ("mha_self", BOTH, lambda L: L.MultiHeadAttention(num_heads=2, key_dim=3),
     [(4, 5), (4, 5)], {"inputs": same_data("mha_self", (4, 5))}),
    ("mha_cross", BOTH, lambda L: L.MultiHeadAttention(num_heads=2, key_dim=3),
     [(3, 4), (5, 6)], {}),
    ("mha_key_value_dim", BOTH,
     lambda L: L.MultiHeadAttention(num_heads=3, key_dim=2, value_dim=4),
     [(3, 4), (5, 6), (5, 7)], {}),
    ("mha_output_shape", BOTH,
     lambda L: L.MultiHeadAttention(num_heads=2, key_dim=3, output_shape=(2, 5)),
     [(3, 4), (5, 4)], {}),
    ("mha_output_int_no_bias", BOTH,
     lambda L: L.MultiHeadAttention(num_heads=2, key_dim=2, output_shape=7, use_bias=False),
     [(3, 4), (5, 4)], {}),
    # A masked query position is a fully masked row of scores: tf_keras and Keras 3 differ there.
    ("mha_masked", BOTH, lambda L: L.MultiHeadAttention(num_heads=2, key_dim=3),
     [(4, 3), (5, 3)], {"masks": [MASK_Q4, MASK_V5]}),
    ("mha_key_masked", BOTH, lambda L: L.MultiHeadAttention(num_heads=2, key_dim=3),
     [(3, 4), (5, 4), (5, 6)], {"masks": [MASK_Q3, MASK_V5, MASK_K5]}),
    # Keras 3 leaves dot_product_attention for its Softmax layer when dropout > 0, even at
    # inference, and that zeroes fully masked rows.
    ("mha_dropout_masked", BOTH,
     lambda L: L.MultiHeadAttention(num_heads=2, key_dim=3, dropout=0.3),
     [(4, 3), (5, 3)], {"masks": [MASK_Q4, MASK_V5]}),
    ("mha_robust_masked", ("tf",),
     lambda L: L.MultiHeadAttention(num_heads=2, key_dim=3, softmax_robust_masking=True),
     [(4, 3), (5, 3)], {"masks": [MASK_Q4, MASK_V5]}),
    ("mha_gate", ("k3",),
     lambda L: L.MultiHeadAttention(num_heads=2, key_dim=3, use_gate=True),
     [(3, 4), (5, 6)], {}),
    ("mha_sliding_window_masked", ("k3",),
     lambda L: L.MultiHeadAttention(num_heads=2, key_dim=3, sliding_window=2),
     [(4, 3), (5, 3)], {"masks": [MASK_Q4, MASK_V5]}),
]

# Cases whose call takes keyword arguments: written to attention/call/.
CALL_CASES = [
    ("attention_causal_masked", BOTH, lambda L: L.Attention(use_scale=True),
     [(4, 3), (4, 3)],
     {"inputs": same_data("attention_causal_masked", (4, 3)), "masks": [MASK_Q4, MASK_Q4],
      "call_kwargs": {"use_causal_mask": True}}),
    ("attention_scores_masked", BOTH, lambda L: L.Attention(),
     [(4, 3), (5, 3)],
     {"masks": [MASK_Q4, MASK_V5], "call_kwargs": {"return_attention_scores": True}}),
    ("attention_concat_causal_scores", BOTH, lambda L: L.Attention(score_mode="concat"),
     [(3, 2), (5, 2)],
     {"call_kwargs": {"use_causal_mask": True, "return_attention_scores": True}}),
    ("additive_causal_scores_masked", BOTH, lambda L: L.AdditiveAttention(),
     [(4, 3), (5, 3)],
     {"masks": [MASK_Q4, MASK_V5],
      "call_kwargs": {"use_causal_mask": True, "return_attention_scores": True}}),
    ("mha_causal", BOTH, lambda L: L.MultiHeadAttention(num_heads=2, key_dim=3),
     [(4, 5), (4, 5)],
     {"inputs": same_data("mha_causal", (4, 5)), "call_kwargs": {"use_causal_mask": True}}),
    ("mha_causal_masked", BOTH, lambda L: L.MultiHeadAttention(num_heads=2, key_dim=3),
     [(4, 3), (5, 3)],
     {"masks": [MASK_Q4, MASK_V5], "call_kwargs": {"use_causal_mask": True}}),
    # Keras 3's symbolic scores say (None, heads, T, T) where the tensors have S = 5.
    ("mha_scores_masked", BOTH, lambda L: L.MultiHeadAttention(num_heads=3, key_dim=2),
     [(4, 3), (5, 3)],
     {"masks": [MASK_Q4, MASK_V5], "call_kwargs": {"return_attention_scores": True}}),
    ("mha_self_scores", BOTH, lambda L: L.MultiHeadAttention(num_heads=2, key_dim=2),
     [(4, 3), (4, 3)],
     {"inputs": same_data("mha_self_scores", (4, 3)),
      "call_kwargs": {"return_attention_scores": True, "use_causal_mask": True}}),
    ("mha_attention_mask", BOTH, lambda L: L.MultiHeadAttention(num_heads=2, key_dim=3),
     [(3, 4), (5, 4), (3, 5)],
     {"inputs": mha_attention_mask_inputs("mha_attention_mask"),
      "masks": [MASK_Q3, None, None], "kwarg_inputs": {2: "attention_mask"}}),
]


def options(make, kw):
    """MultiHeadAttention takes its inputs as arguments; every case's masks are Keras masks."""
    kw = dict(kw, keras_masks=True)
    if "MultiHeadAttention" in make.__code__.co_names:
        kw["call_args"] = "positional"
    return kw


# tf_keras 2.21 reads `causal` but no longer writes it (BaseDenseAttention.get_config has only
# `dropout`), so its own config of such a layer loses the causal mask. TensorFlow's older
# tensorflow/python/keras/layers/dense_attention.py wrote it: these cases carry it as that did.
CAUSAL_CONFIG = {"attention_causal_config", "additive_causal_config"}


def add_causal(path):
    with open(path) as f:
        doc = json.load(f)
    doc["config"]["config"]["causal"] = True
    doc["note"] = ("config['causal'] added as older TensorFlow Keras wrote it: tf_keras 2.21 "
                   "reads it but leaves it out of get_config")
    with open(path, "w") as f:
        json.dump(doc, f)


def main():
    for out, cases in ((OUT, CASES), (CALL, CALL_CASES)):
        for case, libs, make, shapes, kw in cases:
            for lib in libs:
                path = write_case(out, case, lib, make, shapes, generated_by=BY,
                                  **options(make, kw))
                if case in CAUSAL_CONFIG:
                    add_causal(path)
                print(path)


if __name__ == "__main__":
    main()
