#!/usr/bin/env python3
"""Layer-level fixtures of the convolutional recurrent family: ConvLSTM1D and ConvLSTM2D, each
in tf_keras 2.21 and Keras 3.15. (seqnn has no ConvLSTM3D, so no case makes one.)

    .venv-ref/bin/python tools/keras_reference/generate_layers_conv_recurrent.py

Writes tests/fixtures/layers/conv_recurrent/<case>.<lib>.json (see layer_fixtures.py).

Inputs are (batch, time, *spatial, channels) (data_format "channels_last"). Masks are (batch,
time) and given as a model gives them (keras_masks): attached to the input, as an upstream
Masking layer leaves them. Initial states are extra inputs passed as `initial_state=[h, c]`
(`kwarg_inputs`), each shaped like one output step.

Beware: the DEFAULT recurrent_activation differs. tf_keras's ConvLSTM1D/2D default to
"hard_sigmoid" (tf_keras/src/layers/rnn/conv_lstm2d.py; Keras 2's hard_sigmoid is
clip(0.2 x + 0.5, 0, 1)), Keras 3's to "sigmoid" (keras/src/layers/rnn/conv_lstm2d.py). The
configs say which (`recurrent_activation`), so each library's fixture is self-consistent, but the
outputs of a case that keeps the default differ between the .tf and .k3 files. The `_sigmoid`
cases pass recurrent_activation="sigmoid" explicitly and agree between the libraries; the
`_hard_sigmoid` case passes "hard_sigmoid" explicitly, which is still two functions (Keras 3:
relu6(x + 3) / 6).

Beware too: with initial states, Keras 3 ignores a mask attached to the input
(`conv_lstm1d_initial_state_same_masked`: tf_keras masks, Keras 3 does not, outputs differ by
0.26). Keras 3's Layer.__call__ fills `mask` from the input's mask only when the call has a
single tensor argument (keras/src/layers/layer.py, "6. Populate mask argument(s)"); with
`initial_state` it has two. The other masked cases (no initial state) agree.

unit_forget_bias only changes the initial bias, not these numbers (the weights are set).

Weights (both libraries): kernel (*kernel_size, in_channels, 4 * filters), recurrent_kernel
(*kernel_size, filters, 4 * filters), bias (4 * filters,), gates i, f, c, o along the last axis.
The input convolution uses the layer's strides, padding and dilation_rate; the recurrent one
stride 1, padding "same", no dilation.
"""

from pathlib import Path

import numpy as np

from layer_fixtures import write_case

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "layers" / "conv_recurrent"
BY = "tools/keras_reference/generate_layers_conv_recurrent.py"


def lengths_mask(batch, steps, lengths):
    """A (batch, steps) mask whose sample b has its first lengths[b] steps real."""
    return np.array([[t < n for t in range(steps)] for n in lengths[:batch]])


def holes_mask():
    """(3, 5): holes in the middle, a sample with only its last step real."""
    m = np.ones((3, 5), bool)
    m[0, 1] = m[0, 3] = False
    m[1, -1] = False
    m[2, :-1] = False
    return m


STATE = {"kwarg_inputs": {1: "initial_state", 2: "initial_state"}}

# (case, make(L), input shapes without the batch, extra write_case keywords)
CASES = [
    # ConvLSTM1D: (time, steps, channels).
    ("conv_lstm1d_valid", lambda L: L.ConvLSTM1D(3, 2), [(4, 6, 2)], {}),
    ("conv_lstm1d_valid_sigmoid",
     lambda L: L.ConvLSTM1D(3, 2, recurrent_activation="sigmoid"), [(4, 6, 2)], {}),
    ("conv_lstm1d_same_seq",
     lambda L: L.ConvLSTM1D(2, 3, padding="same", return_sequences=True,
                            recurrent_activation="sigmoid"), [(4, 5, 2)], {}),
    ("conv_lstm1d_strides2",
     lambda L: L.ConvLSTM1D(2, 3, strides=2, return_sequences=True), [(3, 7, 2)], {}),
    ("conv_lstm1d_same_strides2",
     lambda L: L.ConvLSTM1D(2, 2, strides=2, padding="same",
                            recurrent_activation="sigmoid"), [(3, 7, 1)], {}),
    ("conv_lstm1d_dilated",
     lambda L: L.ConvLSTM1D(2, 2, dilation_rate=2, return_sequences=True,
                            recurrent_activation="sigmoid"), [(3, 6, 1)], {}),
    ("conv_lstm1d_same_dilated",
     lambda L: L.ConvLSTM1D(2, 3, dilation_rate=2, padding="same"), [(3, 6, 2)], {}),
    ("conv_lstm1d_return_state",
     lambda L: L.ConvLSTM1D(2, 2, return_sequences=True, return_state=True,
                            recurrent_activation="sigmoid"), [(4, 5, 2)], {}),
    ("conv_lstm1d_last_return_state",
     lambda L: L.ConvLSTM1D(2, 2, return_state=True), [(3, 5, 2)], {}),
    ("conv_lstm1d_go_backwards",
     lambda L: L.ConvLSTM1D(2, 2, go_backwards=True, return_sequences=True,
                            recurrent_activation="sigmoid"), [(4, 5, 2)], {}),
    ("conv_lstm1d_masked",
     lambda L: L.ConvLSTM1D(2, 2, return_sequences=True, recurrent_activation="sigmoid"),
     [(5, 4, 2)], {"masks": [lengths_mask(3, 5, [5, 3, 1])], "keras_masks": True}),
    ("conv_lstm1d_masked_holes_last",
     lambda L: L.ConvLSTM1D(2, 2, padding="same", recurrent_activation="sigmoid"),
     [(5, 4, 2)], {"masks": [holes_mask()], "keras_masks": True}),
    ("conv_lstm1d_masked_backwards_state",
     lambda L: L.ConvLSTM1D(2, 2, go_backwards=True, return_sequences=True,
                            return_state=True, recurrent_activation="sigmoid"),
     [(5, 4, 2)], {"masks": [lengths_mask(3, 5, [5, 3, 1])], "keras_masks": True}),
    ("conv_lstm1d_initial_state",
     lambda L: L.ConvLSTM1D(2, 2, return_sequences=True, recurrent_activation="sigmoid"),
     [(4, 5, 2), (4, 2), (4, 2)], STATE),
    ("conv_lstm1d_initial_state_same_masked",
     lambda L: L.ConvLSTM1D(3, 3, padding="same", return_state=True,
                            recurrent_activation="sigmoid"),
     [(5, 4, 1), (4, 3), (4, 3)],
     dict(STATE, masks=[lengths_mask(3, 5, [5, 2, 4]), None, None], keras_masks=True)),
    ("conv_lstm1d_relu_hard_sigmoid",
     lambda L: L.ConvLSTM1D(2, 2, activation="relu", recurrent_activation="hard_sigmoid",
                            return_sequences=True), [(4, 5, 2)], {}),
    ("conv_lstm1d_tanh_relu",
     lambda L: L.ConvLSTM1D(2, 2, activation="tanh", recurrent_activation="relu"),
     [(3, 5, 2)], {}),
    ("conv_lstm1d_no_bias",
     lambda L: L.ConvLSTM1D(3, 2, use_bias=False, recurrent_activation="sigmoid"),
     [(3, 5, 2)], {}),
    ("conv_lstm1d_no_unit_forget_bias",
     lambda L: L.ConvLSTM1D(2, 2, unit_forget_bias=False, recurrent_activation="sigmoid"),
     [(3, 5, 2)], {}),
    # ConvLSTM2D: (time, rows, cols, channels).
    ("conv_lstm2d_valid", lambda L: L.ConvLSTM2D(2, (2, 2)), [(3, 5, 4, 1)], {}),
    ("conv_lstm2d_same_seq_sigmoid",
     lambda L: L.ConvLSTM2D(2, (3, 3), padding="same", return_sequences=True,
                            recurrent_activation="sigmoid"), [(3, 5, 5, 1)], {}),
    ("conv_lstm2d_strides_2x1",
     lambda L: L.ConvLSTM2D(2, (2, 3), strides=(2, 1), recurrent_activation="sigmoid"),
     [(3, 6, 5, 2)], {}),
    ("conv_lstm2d_same_strides2",
     lambda L: L.ConvLSTM2D(2, 3, strides=2, padding="same", return_sequences=True),
     [(2, 5, 4, 1)], {}),
    ("conv_lstm2d_dilated",
     lambda L: L.ConvLSTM2D(2, (2, 2), dilation_rate=(2, 1), recurrent_activation="sigmoid"),
     [(3, 5, 4, 1)], {}),
    ("conv_lstm2d_return_state_backwards_masked",
     lambda L: L.ConvLSTM2D(2, (2, 2), padding="same", go_backwards=True,
                            return_state=True, recurrent_activation="sigmoid"),
     [(4, 3, 3, 1)], {"masks": [lengths_mask(3, 4, [4, 2, 1])], "keras_masks": True}),
    ("conv_lstm2d_initial_state",
     lambda L: L.ConvLSTM2D(2, (2, 2), return_sequences=True, recurrent_activation="sigmoid"),
     [(3, 4, 4, 1), (3, 3, 2), (3, 3, 2)], STATE),
    ("conv_lstm2d_no_bias_relu",
     lambda L: L.ConvLSTM2D(2, (2, 2), use_bias=False, activation="relu",
                            recurrent_activation="sigmoid"), [(3, 4, 4, 2)], {}),
]


def main():
    for case, make, shapes, kw in CASES:
        for lib in ("tf", "k3"):
            print(write_case(OUT, case, lib, make, shapes, generated_by=BY, **kw))


if __name__ == "__main__":
    main()
