#!/usr/bin/env python3
"""Layer-level fixtures of layers seqnn had before the layer fixtures existed, which check the
fixture pipeline itself (tests/layers_core.rs): a config from keras.layers.serialize, Keras's
weights, inputs, masks, outputs and output masks, in tf_keras 2.21 and Keras 3.15.

    .venv-ref/bin/python tools/keras_reference/generate_layers_core.py
"""

from pathlib import Path

import numpy as np

from layer_fixtures import write_case

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "layers" / "core"
BY = "tools/keras_reference/generate_layers_core.py"

MASK = np.array([[True, True, True, False], [True, True, False, False], [True, False, False, False]])

CASES = [
    ("dense_relu_3d", lambda L: L.Dense(3, activation="relu"), [(4, 5)], {}),
    ("lstm_state_masked", lambda L: L.LSTM(3, return_sequences=True, return_state=True),
     [(4, 2)], {"masks": [MASK]}),
    ("bidirectional_gru_masked", lambda L: L.Bidirectional(L.GRU(2, return_sequences=True)),
     [(4, 3)], {"masks": [MASK]}),
]


def main():
    for case, make, shapes, kw in CASES:
        for lib in ("tf", "k3"):
            print(write_case(OUT, case, lib, make, shapes, generated_by=BY, **kw))


if __name__ == "__main__":
    main()
