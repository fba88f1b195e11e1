#!/usr/bin/env python3
"""Fixtures for seqnn's `fit` of a Functional model of several outputs, with per-output losses,
`loss_weights` and per-output metrics, in tf_keras 2.21 ("tf") and Keras 3.15 ("k3",
TensorFlow backend).

    .venv-ref/bin/python tools/keras_reference/generate_train_multi_output.py

Writes tests/fixtures/train/multi_output/<case>.<tf|k3>.json and, for each, the model saved
compiled but untrained: <case>.tf.keras and <case>.tf.h5 (tf_keras), <case>.k3.keras. Before
its .h5, the tf_keras model runs one test_on_batch, so that the file's metrics are resolved
from the real labels (the .h5 quirk of tests/fixtures/train/fits/README.md).

The model (both cases): Input (4, 3) named "x" -> LSTM(5) -> Dense(1) named "reg" and
Dense(3, softmax) named "cls". The initial weights are drawn once per case,
rng = np.random.default_rng(zlib.crc32(case)), uniform(-0.5, 0.5) float32 per array of
get_weights() in order; then x = uniform(-1, 1) (20, 4, 3), y_reg = uniform(-1, 1) (20, 1),
y_cls = integers(0, 3) (20,) as float32.

Cases:
  list: SGD(0.1, momentum=0.9), loss=["mse", "sparse_categorical_crossentropy"],
        loss_weights=[1.0, 0.5], metrics={"cls": ["accuracy"]}, validation_split=0.25
  dict: Adam(0.01), loss={"reg": "mae", "cls": "sparse_categorical_crossentropy"},
        loss_weights={"reg": 2.0, "cls": 1.0}, metrics={"reg": ["mse"], "cls": ["accuracy"]}

Each library then runs model.fit(x, [y_reg, y_cls], epochs=3, batch_size=8, shuffle=False,
verbose=0) and the JSON records: "initial_weights", "x", "y" (two arrays), "history"
(history.history), "final_weights", "evaluate" (model.evaluate(x, y, batch_size=8,
return_dict=True)) and "fit" (the options). Float32 throughout; oneDNN off.
"""

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "train" / "multi_output"
CASES = ("list", "dict")


def f32_list(a):
    import numpy as np

    return [float(v) for v in np.asarray(a, np.float32).ravel().tolist()]


def array(a):
    import numpy as np

    a = np.asarray(a, np.float32)
    return {"shape": list(a.shape), "data": f32_list(a)}


def run(lib):
    if lib == "tf":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import tf_keras as keras
    else:
        import keras
    import numpy as np
    import tensorflow as tf

    for case in CASES:
        keras.backend.clear_session()
        tf.random.set_seed(0)
        inp = keras.Input((4, 3), name="x")
        h = keras.layers.LSTM(5, name="lstm")(inp)
        reg = keras.layers.Dense(1, name="reg")(h)
        cls = keras.layers.Dense(3, activation="softmax", name="cls")(h)
        model = keras.Model(inp, [reg, cls])
        rng = np.random.default_rng(zlib.crc32(case.encode()))
        w0 = [rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in model.get_weights()]
        model.set_weights(w0)
        x = rng.uniform(-1, 1, (20, 4, 3)).astype(np.float32)
        y_reg = rng.uniform(-1, 1, (20, 1)).astype(np.float32)
        y_cls = rng.integers(0, 3, (20,)).astype(np.float32)
        if case == "list":
            model.compile(
                keras.optimizers.SGD(0.1, momentum=0.9),
                loss=["mse", "sparse_categorical_crossentropy"],
                loss_weights=[1.0, 0.5],
                metrics={"cls": ["accuracy"]},
            )
            fit = {"epochs": 3, "batch_size": 8, "shuffle": False, "validation_split": 0.25}
        else:
            model.compile(
                keras.optimizers.Adam(0.01),
                loss={"reg": "mae", "cls": "sparse_categorical_crossentropy"},
                loss_weights={"reg": 2.0, "cls": 1.0},
                metrics={"reg": ["mse"], "cls": ["accuracy"]},
            )
            fit = {"epochs": 3, "batch_size": 8, "shuffle": False, "validation_split": 0.0}
        model.save(OUT / f"{case}.{lib}.keras")
        if lib == "tf":
            # tf_keras's .h5 quirk (tests/fixtures/train/fits/README.md): metrics not yet
            # built from real labels resolve "accuracy" to categorical_accuracy in the file's
            # training_config. One test_on_batch builds them; it changes no weight.
            model.test_on_batch(x[:8], [y_reg[:8], y_cls[:8]])
            model.save(OUT / f"{case}.tf.h5")
        history = model.fit(x, [y_reg, y_cls], verbose=0, **fit)
        ev = model.evaluate(x, [y_reg, y_cls], batch_size=8, verbose=0, return_dict=True)
        out = {
            "generated_by": "tools/keras_reference/generate_train_multi_output.py",
            "library": {"tf": "tf_keras " + keras.__version__, "k3": "keras " + keras.__version__}[lib],
            "case": case,
            "fit": fit,
            "initial_weights": [array(w) for w in w0],
            "x": array(x),
            "y": [array(y_reg), array(y_cls)],
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "final_weights": [array(w) for w in model.get_weights()],
            "evaluate": {k: float(v) for k, v in ev.items()},
        }
        (OUT / f"{case}.{lib}.json").write_text(json.dumps(out, indent=1) + "\n")
        print(lib, case, sorted(out["history"]))


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("tf", "k3"):
        run(sys.argv[1])
        return
    OUT.mkdir(parents=True, exist_ok=True)
    # tf_keras and Keras 3 cannot share a process: each runs in its own.
    for lib in ("tf", "k3"):
        subprocess.run([sys.executable, __file__, lib], check=True)


if __name__ == "__main__":
    main()
