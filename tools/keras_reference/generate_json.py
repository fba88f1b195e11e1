#!/usr/bin/env python3
"""Generate `model.to_json()` fixtures: what tf_keras 2.21 and Keras 3.15 return for a few
models, for seqnn's `model_from_json` tests.

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_json.py

It writes tests/fixtures/json/<case>.tf.json and <case>.k3.json (the JSON text exactly as
to_json returns it) and <case>.expected.json (parameter counts and the layer names and
classes of each library's model). Versions are pinned in requirements.txt.
"""

import json
import os
from pathlib import Path

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["KERAS_BACKEND"] = "tensorflow"

import keras  # noqa: E402
import tf_keras  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "json"


def text_classifier(K, v):
    L = K.layers
    first = [K.Input(shape=(7,))] if v == "k3" else []
    kw = {} if v == "k3" else {"input_length": 7}
    return K.Sequential(first + [
        L.Embedding(20, 4, mask_zero=True, **kw),
        L.Bidirectional(L.LSTM(5, return_sequences=False)),
        L.Dense(3, activation="softmax"),
    ])


def hard_sigmoid_gru(K, v):
    L = K.layers
    first = [K.Input(shape=(4, 3))] if v == "k3" else []
    kw = {} if v == "k3" else {"input_shape": (4, 3)}
    return K.Sequential(first + [
        L.GRU(6, recurrent_activation="hard_sigmoid", return_sequences=True, **kw),
        L.TimeDistributed(L.Dense(2)),
    ])


CASES = {"text_classifier": text_classifier, "hard_sigmoid_gru": hard_sigmoid_gru}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for case, build in CASES.items():
        expected = {"generated_by": "tools/keras_reference/generate_json.py",
                    "versions": {"tf_keras": tf_keras.__version__, "keras": keras.__version__}}
        for v, K in (("tf", tf_keras), ("k3", keras)):
            K.backend.clear_session()
            model = build(K, v)
            (OUT / f"{case}.{v}.json").write_text(model.to_json())
            expected[v] = {
                "params": int(model.count_params()),
                "layers": [[l.name, l.__class__.__name__] for l in model.layers],
            }
        (OUT / f"{case}.expected.json").write_text(json.dumps(expected, indent=1) + "\n")
        print("wrote", case)


if __name__ == "__main__":
    main()
