#!/usr/bin/env python3
"""Optimizer fixtures (tests/train_optimizers.rs): each Keras optimizer, with a few of its options,
its gradient clipping, weight decay and learning-rate schedules, takes three consecutive
`apply_gradients` steps on two or three float32 variables of small random shapes, in tf_keras 2.21
(the "new" optimizer that `tf_keras.optimizers.Adam` is, with its default jit_compile=True) and in
Keras 3.15 (TensorFlow backend).

For each case and library ("tf" = tf_keras 2.21, "k3" = Keras 3) it writes
`tests/fixtures/train/optimizers/<case>.<lib>.json`:

    {"case", "library", "generated_by", "versions",
     "class_name":     the optimizer's class,
     "kwargs":         the arguments it was made with (the schedule's under "learning_rate"),
     "config":         optimizer.get_config() (the schedule serialized as Keras serializes it),
     "config_keys":    its keys in Keras's order (JSON readers may sort them),
     "variables":      [{"name", "shape", "data"}] the model variables before the first step,
     "gradients":      [[{"shape", "data"}] per variable] per step, float32 as given,
     "learning_rates": [the optimizer's learning_rate before each step],
     "steps":          [[{"shape", "data"}] per variable] after each step,
     "optimizer_variables": [{"name", "shape", "dtype", "data"}] optimizer.variables at the end,
     "schedule_values": [schedule(step) for step 0..11] (schedule cases only)}

Conventions: clear_session() before each case; rng = np.random.default_rng(zlib.crc32(case)),
the same numbers for both libraries; variables named var0, var1, ... (Keras 3 names their slots
`var0_momentum`, ...); variables from rng.uniform(-1, 1), gradients from rng.normal(0, 1), all
float32.

    .venv-ref/bin/python tools/keras_reference/generate_train_optimizers.py
"""

import json
import zlib
from pathlib import Path

# First: it sets the environment (the TensorFlow backend, quiet logs) before TensorFlow loads.
from layer_fixtures import LIBS, VERSIONS

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "train" / "optimizers"
BY = "tools/keras_reference/generate_train_optimizers.py"
STEPS = 3
BOTH = ("tf", "k3")

# Shapes of the variables of most cases; a case may give its own.
SHAPES = [(3, 4), (4,), (2, 1, 3)]

# (case, class, kwargs, schedule (class, kwargs) or None, options)
# options: "shapes", the shapes of the variables when not SHAPES.
CASES = [
    ("sgd", "SGD", {}, None, {}),
    ("sgd_lr", "SGD", {"learning_rate": 0.3}, None, {}),
    ("sgd_momentum", "SGD", {"learning_rate": 0.1, "momentum": 0.9}, None, {}),
    ("sgd_nesterov", "SGD", {"learning_rate": 0.1, "momentum": 0.8, "nesterov": True}, None, {}),
    ("sgd_clipvalue", "SGD", {"learning_rate": 0.1, "clipvalue": 0.5}, None, {}),
    ("sgd_clipnorm", "SGD", {"learning_rate": 0.1, "clipnorm": 1.0}, None, {}),
    ("sgd_global_clipnorm", "SGD", {"learning_rate": 0.1, "global_clipnorm": 2.0}, None, {}),
    ("sgd_weight_decay", "SGD", {"learning_rate": 0.1, "momentum": 0.5, "weight_decay": 0.05},
     None, {}),
    ("adam", "Adam", {}, None, {}),
    ("adam_options", "Adam", {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.95,
                              "epsilon": 1e-3}, None, {}),
    ("adam_amsgrad", "Adam", {"learning_rate": 0.01, "amsgrad": True}, None, {}),
    ("adam_clipnorm", "Adam", {"learning_rate": 0.01, "clipnorm": 0.5}, None, {}),
    ("adam_global_clipnorm", "Adam", {"learning_rate": 0.01, "global_clipnorm": 1.0}, None, {}),
    ("adam_clipvalue", "Adam", {"learning_rate": 0.01, "clipvalue": 0.1}, None, {}),
    ("adam_weight_decay", "Adam", {"learning_rate": 0.01, "weight_decay": 0.1}, None, {}),
    ("adam_exponential_decay", "Adam", {},
     ("ExponentialDecay", {"initial_learning_rate": 0.01, "decay_steps": 2,
                           "decay_rate": 0.5}), {}),
    ("adamw", "AdamW", {"learning_rate": 0.01}, None, {}),
    ("adamw_options", "AdamW", {"learning_rate": 0.02, "weight_decay": 0.3, "amsgrad": True,
                                "beta_1": 0.5}, None, {}),
    ("adamw_cosine_decay", "AdamW", {"weight_decay": 0.1},
     ("CosineDecay", {"initial_learning_rate": 0.05, "decay_steps": 3, "alpha": 0.1}), {}),
    ("rmsprop", "RMSprop", {}, None, {}),
    ("rmsprop_momentum", "RMSprop", {"learning_rate": 0.01, "momentum": 0.9, "rho": 0.8}, None,
     {}),
    ("rmsprop_centered", "RMSprop", {"learning_rate": 0.01, "centered": True}, None, {}),
    ("rmsprop_centered_momentum", "RMSprop", {"learning_rate": 0.01, "centered": True,
                                              "momentum": 0.5, "epsilon": 1e-4}, None, {}),
    ("rmsprop_clipnorm", "RMSprop", {"learning_rate": 0.01, "clipnorm": 1.0}, None, {}),
    ("adagrad", "Adagrad", {"learning_rate": 0.1}, None, {}),
    ("adagrad_options", "Adagrad", {"learning_rate": 0.5, "initial_accumulator_value": 0.0,
                                    "epsilon": 1e-3}, None, {}),
    ("adagrad_weight_decay", "Adagrad", {"learning_rate": 0.1, "weight_decay": 0.2}, None, {}),
    ("adadelta", "Adadelta", {"learning_rate": 1.0}, None, {}),
    ("adadelta_options", "Adadelta", {"learning_rate": 0.5, "rho": 0.7, "epsilon": 1e-4}, None,
     {}),
    ("adamax", "Adamax", {"learning_rate": 0.01}, None, {}),
    ("adamax_options", "Adamax", {"learning_rate": 0.05, "beta_1": 0.7, "beta_2": 0.9,
                                  "epsilon": 1e-3}, None, {}),
    ("adamax_global_clipnorm", "Adamax", {"learning_rate": 0.01, "global_clipnorm": 0.5}, None,
     {}),
    ("nadam", "Nadam", {"learning_rate": 0.01}, None, {}),
    # tf_keras's Nadam keeps its u_product right for one variable only (see the README).
    ("nadam_one_variable", "Nadam", {"learning_rate": 0.01}, None, {"shapes": [(3, 4)]}),
    ("nadam_options", "Nadam", {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.9,
                                "epsilon": 1e-4}, None, {"shapes": [(5,)]}),
    ("nadam_weight_decay", "Nadam", {"learning_rate": 0.01, "weight_decay": 0.1}, None, {}),
    ("ftrl", "Ftrl", {"learning_rate": 0.1}, None, {}),
    ("ftrl_l1_l2", "Ftrl", {"learning_rate": 0.2, "l1_regularization_strength": 0.3,
                            "l2_regularization_strength": 0.1}, None, {}),
    ("ftrl_shrinkage_beta", "Ftrl", {"learning_rate": 0.2, "learning_rate_power": -0.3,
                                     "initial_accumulator_value": 0.5,
                                     "l1_regularization_strength": 0.05,
                                     "l2_regularization_strength": 0.2,
                                     "l2_shrinkage_regularization_strength": 0.4,
                                     "beta": 0.5}, None, {}),
    ("ftrl_fixed_rate", "Ftrl", {"learning_rate": 0.1, "learning_rate_power": 0.0}, None, {}),
    # The schedules, on SGD so that the learning rate shows plainly in the steps.
    ("schedule_exponential", "SGD", {},
     ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.3}),
     {}),
    ("schedule_exponential_staircase", "SGD", {},
     ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.3,
                           "staircase": True}), {}),
    ("schedule_piecewise", "SGD", {"momentum": 0.5},
     ("PiecewiseConstantDecay", {"boundaries": [0, 1], "values": [0.1, 0.05, 0.01]}), {}),
    ("schedule_cosine", "SGD", {},
     ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 4, "alpha": 0.2}), {}),
    ("schedule_cosine_warmup", "SGD", {},
     ("CosineDecay", {"initial_learning_rate": 0.01, "decay_steps": 5, "alpha": 0.0,
                      "warmup_target": 0.2, "warmup_steps": 2}), {}),
    ("schedule_inverse_time", "SGD", {},
     ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 1, "decay_rate": 0.5}),
     {}),
    ("schedule_inverse_time_staircase", "SGD", {},
     ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.5,
                           "staircase": True}), {}),
    ("schedule_polynomial", "SGD", {},
     ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 3,
                          "end_learning_rate": 0.01, "power": 2.0}), {}),
    ("schedule_polynomial_cycle", "SGD", {},
     ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 1,
                          "end_learning_rate": 0.02, "power": 0.5, "cycle": True}), {}),
]


def _array(a, dtype=None):
    a = np.asarray(a)
    out = {"shape": list(a.shape), "data": a.astype(np.float64).ravel().tolist()}
    if dtype:
        out["dtype"] = dtype
    return out


def _jsonable(v):
    """get_config values as JSON: numpy scalars as numbers, nested configs as they are."""
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _variable(lib, value, name):
    if lib == "k3":
        return keras.Variable(value, name=name)
    return tf.Variable(value, name=name)


def write_case(case, cls, kwargs, schedule, options, lib):
    K = LIBS[lib]
    K.backend.clear_session()
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    shapes = options.get("shapes", SHAPES)
    initial = [rng.uniform(-1, 1, size=s).astype(np.float32) for s in shapes]
    grads = [[rng.normal(0, 1, size=s).astype(np.float32) for s in shapes] for _ in range(STEPS)]

    made_with = dict(kwargs)
    if schedule is not None:
        s_cls, s_kwargs = schedule
        sched = getattr(K.optimizers.schedules, s_cls)(**s_kwargs)
        made_with["learning_rate"] = {"class_name": s_cls, "config": s_kwargs}
        opt = getattr(K.optimizers, cls)(learning_rate=sched, **kwargs)
    else:
        sched = None
        opt = getattr(K.optimizers, cls)(**kwargs)
    variables = [_variable(lib, v, f"var{i}") for i, v in enumerate(initial)]

    steps, learning_rates = [], []
    for g in grads:
        learning_rates.append(float(np.asarray(opt.learning_rate)))
        opt.apply_gradients(zip([tf.constant(x) for x in g], variables))
        steps.append([_array(np.asarray(v)) for v in variables])

    def opt_var(v):
        value = np.asarray(v)
        return {"name": v.name, **_array(value, dtype=value.dtype.name)}

    data = {
        "case": case,
        "library": lib,
        "generated_by": BY,
        "versions": VERSIONS,
        "class_name": cls,
        "kwargs": made_with,
        "config": _jsonable(opt.get_config()),
        "config_keys": list(opt.get_config()),
        "variables": [{"name": f"var{i}", **_array(v)} for i, v in enumerate(initial)],
        "gradients": [[_array(x) for x in g] for g in grads],
        "learning_rates": learning_rates,
        "steps": steps,
        "optimizer_variables": [opt_var(v) for v in opt.variables],
    }
    if sched is not None:
        data["schedule_values"] = [float(np.asarray(sched(tf.constant(s, tf.int64))))
                                   for s in range(12)]
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{case}.{lib}.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def main():
    for case, cls, kwargs, schedule, options in CASES:
        for lib in BOTH:
            print(write_case(case, cls, kwargs, schedule, options, lib).name)


if __name__ == "__main__":
    main()
