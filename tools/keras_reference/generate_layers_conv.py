#!/usr/bin/env python3
"""Layer-level fixtures of the convolutional family (tests/layers_conv.rs): Conv1D, Conv2D
(also inside TimeDistributed), the poolings, the global poolings, ZeroPadding1D, Cropping1D and
UpSampling1D, each in tf_keras 2.21 and Keras 3.15, and Keras's error messages for the
options and shapes these layers refuse.

    .venv-ref/bin/python tools/keras_reference/generate_layers_conv.py

Writes tests/fixtures/layers/conv/<case>.<lib>.json (see layer_fixtures.py) and
tests/fixtures/layers/conv/errors/keras_errors.json: {case: {"tf": message, "k3": message}}.
Masks are given as a model gives them (keras_masks): attached to the input, so that the
layers that do not support masking (all but GlobalAveragePooling1D) drop them, as in a model.
"""

import json
import os
import re
import warnings
from pathlib import Path

import numpy as np

from layer_fixtures import LIBS, VERSIONS, write_case

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "layers" / "conv"
BY = "tools/keras_reference/generate_layers_conv.py"


def mask(batch, steps, lengths):
    """A (batch, steps) mask whose sample b has its first lengths[b] steps real."""
    return np.array([[t < n for t in range(steps)] for n in lengths[:batch]])


def holes(steps):
    """A mask with holes in the middle, and one sample with only its last step real."""
    m = np.ones((3, steps), bool)
    m[0, 1] = m[0, 3] = False
    m[1, -1] = False
    m[2, :-1] = False
    return m


FREE_LENGTH = np.random.default_rng(7).uniform(-1, 1, (2, 6, 3)).astype(np.float32)

# (case, make(L), input shapes, extra write_case keywords)
CASES = [
    # Conv1D: each padding with strides 1 and 2, odd and even lengths, dilation, groups.
    ("conv1d_valid", lambda L: L.Conv1D(4, 3), [(7, 3)], {}),
    ("conv1d_valid_strides2_even", lambda L: L.Conv1D(4, 3, strides=2), [(8, 3)], {}),
    ("conv1d_valid_strides2_odd", lambda L: L.Conv1D(2, 2, strides=2), [(7, 2)], {}),
    ("conv1d_same", lambda L: L.Conv1D(4, 3, padding="same"), [(7, 3)], {}),
    ("conv1d_same_even_kernel", lambda L: L.Conv1D(3, 4, padding="same"), [(6, 2)], {}),
    ("conv1d_same_strides2_odd", lambda L: L.Conv1D(3, 4, strides=2, padding="same"),
     [(7, 2)], {}),
    ("conv1d_same_strides2_even", lambda L: L.Conv1D(3, 3, strides=2, padding="same"),
     [(8, 2)], {}),
    ("conv1d_causal", lambda L: L.Conv1D(2, 3, padding="causal"), [(6, 3)], {}),
    ("conv1d_causal_strides2", lambda L: L.Conv1D(2, 3, strides=2, padding="causal"),
     [(7, 2)], {}),
    ("conv1d_causal_dilated", lambda L: L.Conv1D(3, 2, padding="causal", dilation_rate=4),
     [(9, 2)], {}),
    ("conv1d_valid_dilated", lambda L: L.Conv1D(2, 3, dilation_rate=2), [(9, 3)], {}),
    ("conv1d_same_dilated", lambda L: L.Conv1D(2, 3, dilation_rate=3, padding="same"),
     [(8, 2)], {}),
    ("conv1d_groups", lambda L: L.Conv1D(6, 3, groups=3, padding="same"), [(7, 6)], {}),
    ("conv1d_groups_strides2", lambda L: L.Conv1D(4, 2, groups=2, strides=2), [(9, 4)], {}),
    ("conv1d_no_bias_relu", lambda L: L.Conv1D(4, 2, use_bias=False, activation="relu"),
     [(5, 3)], {}),
    ("conv1d_pointwise_softmax", lambda L: L.Conv1D(3, 1, activation="softmax"), [(5, 4)], {}),
    ("conv1d_tanh_strides3", lambda L: L.Conv1D(2, 2, strides=3, activation="tanh"),
     [(10, 2)], {}),
    ("conv1d_kernel_equals_length", lambda L: L.Conv1D(2, 5), [(5, 2)], {}),
    ("conv1d_free_length", lambda L: L.Conv1D(2, 3, padding="same"), [(None, 3)],
     {"inputs": [FREE_LENGTH]}),
    ("conv1d_mask_dropped", lambda L: L.Conv1D(2, 3, padding="same"), [(5, 2)],
     {"masks": [mask(3, 5, [5, 3, 1])], "keras_masks": True}),
    # Conv2D.
    ("conv2d_valid", lambda L: L.Conv2D(4, 3), [(6, 5, 3)], {}),
    ("conv2d_same_strides2", lambda L: L.Conv2D(3, (3, 2), strides=2, padding="same"),
     [(7, 6, 2)], {}),
    ("conv2d_valid_strides2x1", lambda L: L.Conv2D(3, (2, 3), strides=(2, 1)), [(6, 7, 2)], {}),
    ("conv2d_same_dilated", lambda L: L.Conv2D(2, 3, dilation_rate=(2, 1), padding="same"),
     [(7, 5, 2)], {}),
    ("conv2d_valid_dilated", lambda L: L.Conv2D(2, 2, dilation_rate=2), [(6, 6, 1)], {}),
    ("conv2d_groups_relu", lambda L: L.Conv2D(4, 3, groups=2, activation="relu"),
     [(5, 5, 4)], {}),
    ("conv2d_pointwise_no_bias", lambda L: L.Conv2D(2, 1, use_bias=False), [(4, 3, 3)], {}),
    ("conv2d_same_even_kernel_sigmoid",
     lambda L: L.Conv2D(2, 4, padding="same", activation="sigmoid"), [(5, 6, 1)], {}),
    ("conv2d_same_strides2_even", lambda L: L.Conv2D(2, 3, strides=2, padding="same"),
     [(6, 4, 2)], {}),
    # Conv2D on every frame of a video, as in LRCN models.
    ("time_distributed_conv2d",
     lambda L: L.TimeDistributed(L.Conv2D(3, 3, padding="same", activation="relu")),
     [(4, 5, 5, 2)], {}),
    ("time_distributed_conv2d_strides2",
     lambda L: L.TimeDistributed(L.Conv2D(2, (3, 2), strides=2)), [(3, 7, 6, 1)], {}),
    ("time_distributed_max_pooling2d", lambda L: L.TimeDistributed(L.MaxPooling2D()),
     [(3, 5, 4, 2)], {}),
    # Poolings: pool sizes that do not divide the length, same padding, other strides.
    ("max_pooling1d_default_odd", lambda L: L.MaxPooling1D(), [(7, 3)], {}),
    ("max_pooling1d_3_even", lambda L: L.MaxPooling1D(3), [(8, 2)], {}),
    ("max_pooling1d_same", lambda L: L.MaxPooling1D(3, padding="same"), [(8, 2)], {}),
    ("max_pooling1d_strides1", lambda L: L.MaxPooling1D(3, strides=1), [(6, 2)], {}),
    ("max_pooling1d_same_strides2", lambda L: L.MaxPooling1D(3, strides=2, padding="same"),
     [(7, 2)], {}),
    ("max_pooling1d_same_strides1", lambda L: L.MaxPooling1D(4, strides=1, padding="same"),
     [(6, 3)], {}),
    ("max_pooling1d_mask_dropped", lambda L: L.MaxPooling1D(2), [(6, 2)],
     {"masks": [mask(3, 6, [6, 4, 1])], "keras_masks": True}),
    ("average_pooling1d_valid", lambda L: L.AveragePooling1D(3), [(8, 2)], {}),
    ("average_pooling1d_same", lambda L: L.AveragePooling1D(3, padding="same"), [(7, 2)], {}),
    ("average_pooling1d_same_strides1",
     lambda L: L.AveragePooling1D(4, strides=1, padding="same"), [(6, 2)], {}),
    ("average_pooling1d_same_strides2",
     lambda L: L.AveragePooling1D(2, strides=2, padding="same"), [(5, 3)], {}),
    ("average_pooling1d_strides_above_pool", lambda L: L.AveragePooling1D(2, strides=3),
     [(9, 2)], {}),
    ("max_pooling2d_default_odd", lambda L: L.MaxPooling2D(), [(5, 7, 3)], {}),
    ("max_pooling2d_same", lambda L: L.MaxPooling2D((3, 2), padding="same"), [(5, 5, 2)], {}),
    ("max_pooling2d_strides1", lambda L: L.MaxPooling2D(2, strides=1), [(4, 4, 2)], {}),
    ("max_pooling2d_same_strides_2x1",
     lambda L: L.MaxPooling2D(3, strides=(2, 1), padding="same"), [(6, 5, 1)], {}),
    ("average_pooling2d_valid", lambda L: L.AveragePooling2D(2), [(5, 4, 2)], {}),
    ("average_pooling2d_same_strides2",
     lambda L: L.AveragePooling2D(3, strides=2, padding="same"), [(6, 5, 2)], {}),
    ("average_pooling2d_same_strides1",
     lambda L: L.AveragePooling2D((2, 3), strides=1, padding="same"), [(4, 5, 1)], {}),
    # Global poolings, keepdims, masks.
    ("global_max_pooling1d", lambda L: L.GlobalMaxPooling1D(), [(5, 3)], {}),
    ("global_max_pooling1d_keepdims", lambda L: L.GlobalMaxPooling1D(keepdims=True),
     [(5, 3)], {}),
    ("global_max_pooling1d_mask_ignored", lambda L: L.GlobalMaxPooling1D(), [(6, 3)],
     {"masks": [mask(3, 6, [6, 2, 1])], "keras_masks": True}),
    ("global_average_pooling1d", lambda L: L.GlobalAveragePooling1D(), [(5, 3)], {}),
    ("global_average_pooling1d_keepdims", lambda L: L.GlobalAveragePooling1D(keepdims=True),
     [(4, 2)], {}),
    ("global_average_pooling1d_masked", lambda L: L.GlobalAveragePooling1D(), [(6, 3)],
     {"masks": [mask(3, 6, [6, 3, 1])], "keras_masks": True}),
    ("global_average_pooling1d_masked_holes",
     lambda L: L.GlobalAveragePooling1D(keepdims=True), [(5, 2)],
     {"masks": [holes(5)], "keras_masks": True}),
    ("global_average_pooling2d", lambda L: L.GlobalAveragePooling2D(), [(4, 5, 3)], {}),
    ("global_average_pooling2d_keepdims", lambda L: L.GlobalAveragePooling2D(keepdims=True),
     [(3, 2, 2)], {}),
    ("global_max_pooling2d", lambda L: L.GlobalMaxPooling2D(), [(4, 5, 3)], {}),
    ("global_max_pooling2d_keepdims", lambda L: L.GlobalMaxPooling2D(keepdims=True),
     [(3, 4, 2)], {}),
    # Padding, cropping, upsampling.
    ("zero_padding1d_default", lambda L: L.ZeroPadding1D(), [(5, 2)], {}),
    ("zero_padding1d_pair", lambda L: L.ZeroPadding1D((2, 0)), [(4, 3)], {}),
    ("zero_padding1d_int", lambda L: L.ZeroPadding1D(3), [(3, 2)], {}),
    ("zero_padding1d_mask_dropped", lambda L: L.ZeroPadding1D(1), [(4, 2)],
     {"masks": [mask(3, 4, [4, 2, 1])], "keras_masks": True}),
    ("cropping1d_default", lambda L: L.Cropping1D(), [(5, 2)], {}),
    ("cropping1d_pair", lambda L: L.Cropping1D((0, 2)), [(6, 3)], {}),
    ("cropping1d_start", lambda L: L.Cropping1D((2, 1)), [(6, 2)], {}),
    ("cropping1d_mask_dropped", lambda L: L.Cropping1D((1, 1)), [(5, 2)],
     {"masks": [mask(3, 5, [5, 3, 1])], "keras_masks": True}),
    ("up_sampling1d_default", lambda L: L.UpSampling1D(), [(4, 3)], {}),
    ("up_sampling1d_3", lambda L: L.UpSampling1D(3), [(3, 2)], {}),
    ("up_sampling1d_mask_dropped", lambda L: L.UpSampling1D(2), [(3, 2)],
     {"masks": [mask(3, 3, [3, 2, 1])], "keras_masks": True}),
]

# (case, make(L), input shape without the batch): Keras's error for each, from both libraries.
ERRORS = [
    ("conv1d_filters_zero", lambda L: L.Conv1D(0, 3), (6, 3)),
    ("conv1d_kernel_size_zero", lambda L: L.Conv1D(2, (0,)), (6, 3)),
    ("conv1d_strides_zero", lambda L: L.Conv1D(2, 3, strides=(0,)), (6, 3)),
    ("conv2d_strides_zero", lambda L: L.Conv2D(2, 3, strides=(2, 0)), (6, 6, 3)),
    ("conv1d_strides_and_dilation", lambda L: L.Conv1D(2, 3, strides=2, dilation_rate=2),
     (6, 3)),
    ("conv1d_filters_not_divisible", lambda L: L.Conv1D(3, 3, groups=2), (6, 4)),
    ("conv1d_channels_not_divisible", lambda L: L.Conv1D(4, 3, groups=2), (6, 3)),
    ("conv1d_groups_zero", lambda L: L.Conv1D(4, 3, groups=0), (6, 4)),
    ("conv1d_kernel_longer_than_input", lambda L: L.Conv1D(2, 5), (3, 2)),
    ("conv1d_kernel_one_longer_than_input", lambda L: L.Conv1D(2, 4), (3, 2)),
    ("conv1d_dilated_kernel_longer_than_input", lambda L: L.Conv1D(2, 3, dilation_rate=2),
     (4, 2)),
    ("conv2d_kernel_wider_than_input", lambda L: L.Conv2D(2, (3, 7)), (6, 6, 3)),
    ("conv2d_causal", lambda L: L.Conv2D(2, 3, padding="causal"), (6, 6, 3)),
    ("conv1d_rank2", lambda L: L.Conv1D(2, 3), (6,)),
    ("conv1d_channels_unknown", lambda L: L.Conv1D(2, 3), (6, None)),
    ("max_pooling1d_pool_longer_than_input", lambda L: L.MaxPooling1D(4), (3, 2)),
    ("average_pooling2d_pool_wider_than_input", lambda L: L.AveragePooling2D((2, 5)),
     (4, 4, 2)),
    ("max_pooling1d_pool_size_zero", lambda L: L.MaxPooling1D((0,)), (3, 2)),
    ("max_pooling1d_rank2", lambda L: L.MaxPooling1D(2), (3,)),
    ("global_average_pooling1d_rank2", lambda L: L.GlobalAveragePooling1D(), (3,)),
    ("global_max_pooling2d_rank3", lambda L: L.GlobalMaxPooling2D(), (3, 4)),
    ("cropping1d_everything", lambda L: L.Cropping1D((2, 2)), (4, 2)),
    ("up_sampling1d_size_zero", lambda L: L.UpSampling1D(0), (4, 2)),
]


def core(message):
    """The message without the wrapping Keras adds when a call fails: Keras 3 marks the inner
    message in bold, tf_keras puts it in the second paragraph."""
    bold = re.search("\x1b\\[1m(.*?)\x1b\\[0m", message, re.S)
    if bold:
        return bold.group(1)
    if message.startswith("Exception encountered when calling layer"):
        return message.split("\n\n")[1]
    return message


def error_message(K, make, shape):
    K.backend.clear_session()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make(K.layers)(K.Input(shape))
    except Exception as e:  # noqa: BLE001 - any error Keras raises is the reference
        return {"type": type(e).__name__, "message": str(e), "core": core(str(e))}
    return None


def main():
    for case, make, shapes, kw in CASES:
        for lib in ("tf", "k3"):
            print(write_case(OUT, case, lib, make, shapes, generated_by=BY, **kw))
    errors = {
        "generated_by": BY,
        "versions": VERSIONS,
        "errors": {
            case: {
                "input_shape": [None] + list(shape),
                **{lib: error_message(K, make, shape) for lib, K in LIBS.items()},
            }
            for case, make, shape in ERRORS
        },
    }
    path = OUT / "errors" / "keras_errors.json"
    os.makedirs(path.parent, exist_ok=True)
    with open(path, "w") as f:
        json.dump(errors, f, indent=1)
    print(path)


if __name__ == "__main__":
    main()
