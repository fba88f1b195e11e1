#!/usr/bin/env python3
"""Generate Keras reference fixtures for seqnn (SimpleRNN / Bidirectional).

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_core.py

It (re)writes every file in tests/fixtures/keras/ except README.md:
  * one <case>.json per entry of SEQUENTIAL_CASES / LAYER_CALL_CASES,
  * notebook_session.json (the notebook cells run in one session),
  * errors.json (exception types and messages for invalid uses).

Everything is deterministic: fixed numpy seeds per case,
keras.utils.set_random_seed(0) and keras.backend.clear_session() before
every model (so layer names restart at `sequential`, `simple_rnn`, ...).
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

import collections.abc  # noqa: E402
import json  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from tf_keras.layers import Bidirectional, SimpleRNN  # noqa: E402

tf.get_logger().setLevel("ERROR")

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "tests" / "fixtures" / "keras"
GENERATED_BY = "tools/keras_reference/generate_core.py"
VERSIONS = {
    "tensorflow": tf.__version__,
    "tf_keras": keras.__version__,
    "numpy": np.__version__,
}


# --------------------------------------------------------------------------
# Case table
# --------------------------------------------------------------------------
# Sequential cases: name -> (description, build() -> list of layers,
#                            x shape, input scale)
# `build` returns the layers to add, in order; it is called after
# clear_session() so that auto-generated names are deterministic.

def _activation_case(act):
    return (
        f"SimpleRNN(5, input_shape=(6,4), return_sequences=True, "
        f"activation='{act}')",
        lambda: [SimpleRNN(5, input_shape=(6, 4), return_sequences=True,
                           activation=act)],
        (4, 6, 4),
        0.5,
    )


def _bidir_mode_case(mode):
    return (
        f"Bidirectional(SimpleRNN(4, return_sequences=True), "
        f"merge_mode='{mode}', input_shape=(5,3))",
        lambda: [Bidirectional(SimpleRNN(4, return_sequences=True),
                               merge_mode=mode, input_shape=(5, 3))],
        (4, 5, 3),
        1.0,
    )


def _deep_bidirectional():
    return [Bidirectional(SimpleRNN(8, return_sequences=True),
                          input_shape=(10, 4))] + [
        Bidirectional(SimpleRNN(8, return_sequences=True)) for _ in range(3)
    ]


ACTIVATIONS = ["relu", "sigmoid", "hard_sigmoid", "linear", "elu", "selu",
               "softplus", "softsign", "swish", "gelu", "tanh"]

SEQUENTIAL_CASES = {
    # -- notebook models --------------------------------------------------
    "notebook_input_shape": (
        "Notebook cell 3: SimpleRNN(3, input_shape=(2,10))",
        lambda: [SimpleRNN(3, input_shape=(2, 10))],
        (4, 2, 10), 1.0),
    "notebook_input_length_dim": (
        "Legacy Keras 2 kwargs: SimpleRNN(3, input_length=2, input_dim=10)",
        lambda: [SimpleRNN(3, input_length=2, input_dim=10)],
        (4, 2, 10), 1.0),
    "notebook_batch_input_shape": (
        "Notebook cell 4: SimpleRNN(3, batch_input_shape=(8,2,10)), "
        "fixed batch size",
        lambda: [SimpleRNN(3, batch_input_shape=(8, 2, 10))],
        (8, 2, 10), 1.0),
    "notebook_return_sequences": (
        "Notebook cell 5: SimpleRNN(3, batch_input_shape=(8,2,10), "
        "return_sequences=True)",
        lambda: [SimpleRNN(3, batch_input_shape=(8, 2, 10),
                           return_sequences=True)],
        (8, 2, 10), 1.0),
    "notebook_deep_bidirectional": (
        "Notebook cell 15: four stacked Bidirectional(SimpleRNN(8, "
        "return_sequences=True)), input_shape=(10,4)",
        _deep_bidirectional,
        (3, 10, 4), 1.0),
    # -- activations ------------------------------------------------------
    **{f"activation_{a}": _activation_case(a) for a in ACTIVATIONS},
    # -- options ----------------------------------------------------------
    "no_bias": (
        "SimpleRNN(4, input_shape=(5,3), use_bias=False, "
        "return_sequences=True): no bias weight",
        lambda: [SimpleRNN(4, input_shape=(5, 3), use_bias=False,
                           return_sequences=True)],
        (4, 5, 3), 1.0),
    "go_backwards_last": (
        "SimpleRNN(4, input_shape=(5,3), go_backwards=True): last output of "
        "the reversed scan",
        lambda: [SimpleRNN(4, input_shape=(5, 3), go_backwards=True)],
        (4, 5, 3), 1.0),
    "go_backwards_sequences": (
        "SimpleRNN(4, input_shape=(5,3), go_backwards=True, "
        "return_sequences=True): sequence in reversed-time order",
        lambda: [SimpleRNN(4, input_shape=(5, 3), go_backwards=True,
                           return_sequences=True)],
        (4, 5, 3), 1.0),
    "stacked": (
        "Three stacked SimpleRNN layers 6 -> 5 -> 4, input_shape=(7,3)",
        lambda: [SimpleRNN(6, return_sequences=True, input_shape=(7, 3)),
                 SimpleRNN(5, return_sequences=True),
                 SimpleRNN(4)],
        (4, 7, 3), 1.0),
    "input_dim_only": (
        "SimpleRNN(4, input_dim=3): variable-length time axis, input shape "
        "(None, None, 3)",
        lambda: [SimpleRNN(4, input_dim=3)],
        (3, 9, 3), 1.0),
    "built_by_predict": (
        "Sequential([SimpleRNN(3)]) without input shape, built by the first "
        "predict on (2,5,7); summary recorded after building",
        lambda: [SimpleRNN(3)],
        (2, 5, 7), 1.0),
    **{f"bidirectional_{m}": _bidir_mode_case(m)
       for m in ["concat", "sum", "mul", "ave"]},
    "bidirectional_concat_last": (
        "Bidirectional(SimpleRNN(4), merge_mode='concat', input_shape=(5,3)): "
        "last outputs concatenated",
        lambda: [Bidirectional(SimpleRNN(4), merge_mode="concat",
                               input_shape=(5, 3))],
        (4, 5, 3), 1.0),
    "bidirectional_backward_layer": (
        "Bidirectional with an explicit backward_layer SimpleRNN(3, "
        "go_backwards=True, activation='relu') of different size",
        lambda: [Bidirectional(
            SimpleRNN(4, return_sequences=True),
            backward_layer=SimpleRNN(3, return_sequences=True,
                                     go_backwards=True, activation="relu"),
            input_shape=(5, 3))],
        (4, 5, 3), 1.0),
    "bidirectional_go_backwards_inner": (
        "Bidirectional(SimpleRNN(4, return_sequences=True, go_backwards=True))"
        ": the forward copy runs backwards and the backward copy forwards",
        lambda: [Bidirectional(SimpleRNN(4, return_sequences=True,
                                         go_backwards=True),
                               input_shape=(5, 3))],
        (4, 5, 3), 1.0),
    "bidirectional_stacked_last": (
        "Bidirectional(SimpleRNN(5, return_sequences=True)) then "
        "Bidirectional(SimpleRNN(4), merge_mode='sum')",
        lambda: [Bidirectional(SimpleRNN(5, return_sequences=True),
                               input_shape=(6, 3)),
                 Bidirectional(SimpleRNN(4), merge_mode="sum")],
        (4, 6, 3), 1.0),
    # -- summary layout ---------------------------------------------------
    "summary_long_names": (
        "Summary column wrapping with long layer names",
        lambda: [Bidirectional(
            SimpleRNN(8, return_sequences=True,
                      name="a_rather_long_inner_layer_name"),
            input_shape=(10, 4), name="bidirectional_with_a_long_name"),
            SimpleRNN(3,
                      name="an_extremely_long_simple_rnn_layer_name_for_wrapping")],
        (3, 10, 4), 1.0),
    "summary_mixed": (
        "SimpleRNN(16, return_sequences=True, input_shape=(12,6)) then "
        "Bidirectional(SimpleRNN(8))",
        lambda: [SimpleRNN(16, return_sequences=True, input_shape=(12, 6)),
                 Bidirectional(SimpleRNN(8))],
        (3, 12, 6), 1.0),
}

# Layer-call cases: name -> (description, make_layer(), x shape,
#                            initial state shapes)
X_CALL = (3, 5, 4)
LAYER_CALL_CASES = {
    "call_initial_state": (
        "SimpleRNN(4, return_sequences=True) called with initial_state=[h0]",
        lambda: SimpleRNN(4, return_sequences=True),
        X_CALL, [(3, 4)]),
    "call_return_state": (
        "SimpleRNN(4, return_state=True) -> [output, final_state]",
        lambda: SimpleRNN(4, return_state=True),
        X_CALL, []),
    "call_return_state_sequences": (
        "SimpleRNN(4, return_sequences=True, return_state=True, "
        "go_backwards=True) with initial_state -> [sequence, final_state]",
        lambda: SimpleRNN(4, return_sequences=True, return_state=True,
                          go_backwards=True),
        X_CALL, [(3, 4)]),
    "call_bidirectional_none": (
        "Bidirectional(SimpleRNN(4, return_sequences=True), merge_mode=None) "
        "-> [forward_out, backward_out]",
        lambda: Bidirectional(SimpleRNN(4, return_sequences=True),
                              merge_mode=None),
        X_CALL, []),
    "call_bidirectional_return_state": (
        "Bidirectional(SimpleRNN(4, return_state=True)) -> "
        "[output, forward_h, backward_h]",
        lambda: Bidirectional(SimpleRNN(4, return_state=True)),
        X_CALL, []),
    "call_bidirectional_initial_state": (
        "Bidirectional(SimpleRNN(4, return_sequences=True)) called with "
        "initial_state=[forward_h0, backward_h0]",
        lambda: Bidirectional(SimpleRNN(4, return_sequences=True)),
        X_CALL, [(3, 4), (3, 4)]),
}


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def fresh_session():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)


def case_rng(name):
    return np.random.default_rng(zlib.crc32(name.encode("utf-8")))


def f32_list(arr):
    return np.asarray(arr).astype(np.float32).astype(np.float64).ravel().tolist()


def tensor_entry(arr, name=None):
    arr = np.asarray(arr)
    entry = {} if name is None else {"name": name}
    entry["shape"] = list(arr.shape)
    entry["data"] = f32_list(arr)
    return entry


def shape_list(shape):
    """TensorShape / tuple / nested list of shapes -> JSON (None -> null)."""
    if isinstance(shape, tf.TensorShape):
        return shape.as_list()
    if isinstance(shape, (tuple, list)):
        if shape and isinstance(shape[0], (tuple, list, tf.TensorShape)):
            return [shape_list(s) for s in shape]  # several shapes
        return [None if d is None else int(d) for d in shape]
    raise TypeError(f"unexpected shape {shape!r}")


def json_default(obj):
    if isinstance(obj, tf.TensorShape):
        return obj.as_list()
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tf.DType):
        return obj.name
    # Keras wraps nested dicts/lists (e.g. Bidirectional's "layer") in
    # trackable wrappers; they behave like plain mappings / sequences.
    if isinstance(obj, collections.abc.Mapping):
        return dict(obj)
    if isinstance(obj, collections.abc.Sequence):
        return list(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def layer_entry(layer):
    # Round-trip through JSON so tuples become lists exactly as written.
    config = json.loads(json.dumps(layer.get_config(), default=json_default))
    return {"class_name": type(layer).__name__, "config": config}


def capture_summary(model):
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    return "\n".join(lines)


def random_weights(rng, weights):
    return [rng.uniform(-0.6, 0.6, size=w.shape).astype(np.float32)
            for w in weights]


def weight_entries(variables, values):
    assert len(variables) == len(values)
    return [tensor_entry(v, name=var.name) for var, v in zip(variables, values)]


def write_json(name, payload):
    path = OUT_DIR / f"{name}.json"
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=1, default=json_default)
        fh.write("\n")
    return path


def header(name, description, kind):
    return {
        "case": name,
        "description": description,
        "generated_by": GENERATED_BY,
        "versions": VERSIONS,
        "kind": kind,
    }


# --------------------------------------------------------------------------
# Fixture kinds
# --------------------------------------------------------------------------

def make_sequential_fixture(name, description, build, x_shape, scale):
    fresh_session()
    rng = case_rng(name)
    model = keras.Sequential()
    for layer in build():
        model.add(layer)
    if not model.built:
        # Deferred build: the first predict builds the model.
        model.predict(np.zeros(x_shape, np.float32), verbose=0)
    weights = random_weights(rng, model.get_weights())
    model.set_weights(weights)
    x = (rng.uniform(-1, 1, size=x_shape) * scale).astype(np.float32)
    y = model.predict(x, verbose=0)
    outputs = y if isinstance(y, (list, tuple)) else [y]

    payload = header(name, description, "sequential")
    payload.update({
        "layers": [layer_entry(l) for l in model.layers],
        "input_shape": shape_list(model.input_shape),
        "output_shape": shape_list(model.output_shape),
        "params": int(model.count_params()),
        "summary": capture_summary(model),
        "layer_rows": [{
            "name": l.name,
            "class_name": type(l).__name__,
            "output_shape": shape_list(l.output_shape),
            "params": int(l.count_params()),
        } for l in model.layers],
        "weights": weight_entries(model.weights, model.get_weights()),
        "inputs": [tensor_entry(x)],
        "outputs": [tensor_entry(o) for o in outputs],
    })
    assert len(payload["weights"]) == len(model.get_weights())
    return write_json(name, payload)


def make_layer_call_fixture(name, description, make_layer, x_shape,
                            state_shapes):
    fresh_session()
    rng = case_rng(name)
    layer = make_layer()
    x = rng.uniform(-1, 1, size=x_shape).astype(np.float32)
    layer(x)  # builds the layer
    layer.set_weights(random_weights(rng, layer.get_weights()))
    states = [rng.uniform(-1, 1, size=s).astype(np.float32)
              for s in state_shapes]
    if states:
        outs = layer(x, initial_state=[tf.constant(s) for s in states])
    else:
        outs = layer(x)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    outs = [o.numpy() for o in outs]

    input_shape = [None] + list(x_shape[1:])
    computed = layer.compute_output_shape(tf.TensorShape(input_shape))
    computed = computed if isinstance(computed, (list, tuple)) else [computed]
    output_shapes = [shape_list(tf.TensorShape(s)) for s in computed]
    # Keras's static shapes must agree with what the call produced.
    assert len(output_shapes) == len(outs), (name, output_shapes)
    for s, o in zip(output_shapes, outs):
        assert s[1:] == list(o.shape[1:]), (name, s, o.shape)

    payload = header(name, description, "layer_call")
    payload.update({
        "layers": [layer_entry(layer)],
        "input_shape": input_shape,
        "output_shape": output_shapes,
        "params": int(layer.count_params()),
        "weights": weight_entries(layer.weights, layer.get_weights()),
        "inputs": [tensor_entry(x)] + [tensor_entry(s) for s in states],
        "outputs": [tensor_entry(o) for o in outs],
    })
    return write_json(name, payload)


def make_notebook_session():
    """The notebook's executed cells, in order, in ONE session (no
    clear_session in between), so the auto-generated names keep counting."""
    fresh_session()
    summaries, model_names, layer_names = {}, [], {}

    def record(cell, model, with_summary):
        model_names.append(model.name)
        layer_names[cell] = [l.name for l in model.layers]
        if with_summary:
            summaries[cell] = capture_summary(model)

    # cell 3
    model = keras.Sequential()
    model.add(SimpleRNN(3, input_shape=(2, 10)))
    record("cell3", model, True)
    # cell 4
    model = keras.Sequential()
    model.add(SimpleRNN(3, batch_input_shape=(8, 2, 10)))
    record("cell4", model, True)
    # cell 5
    model = keras.Sequential()
    model.add(SimpleRNN(3, batch_input_shape=(8, 2, 10),
                        return_sequences=True))
    record("cell5", model, True)
    # cell 14 (no summary in the notebook)
    model = keras.Sequential()
    model.add(Bidirectional(SimpleRNN(8, return_sequences=True),
                            input_shape=(10, 4)))
    record("cell14", model, False)
    # cell 15: a new model, four Bidirectional layers deep, then summary
    model = keras.Sequential()
    model.add(Bidirectional(SimpleRNN(8, return_sequences=True),
                            input_shape=(10, 4)))
    model.add(Bidirectional(SimpleRNN(8, return_sequences=True)))
    model.add(Bidirectional(SimpleRNN(8, return_sequences=True)))
    model.add(Bidirectional(SimpleRNN(8, return_sequences=True)))
    record("cell15", model, True)
    inner_names = [[l.forward_layer.name, l.backward_layer.name]
                   for l in model.layers]

    payload = {
        "case": "notebook_session",
        "description": "Notebook cells 3, 4, 5, 14, 15 executed in order in "
                       "one session (names keep counting across cells)",
        "generated_by": GENERATED_BY,
        "versions": VERSIONS,
        "summaries": summaries,
        "model_names": model_names,
        "layer_names": layer_names,
        "weight_names_cell15": [w.name for w in model.weights],
        "inner_layer_names_cell15": inner_names,
    }
    return write_json("notebook_session", payload)


# -- errors ----------------------------------------------------------------
# Each error function receives `step(name)`, which it calls before each
# user-visible operation, so the fixture records where Keras raised
# ("construct", "add", "predict", "summary", "set_weights").

def _seq(step, *layers):
    step("construct")
    model = keras.Sequential()
    step("add")
    for layer in layers:
        model.add(layer)
    return model


def _err_rank_mismatch_stacked(step):
    step("construct")
    first, second = SimpleRNN(3, input_shape=(2, 10)), SimpleRNN(3)
    _seq(step, first, second)


def _rnn_2_10(step):
    step("construct")
    layer = SimpleRNN(3, input_shape=(2, 10))
    return _seq(step, layer)


def _err_predict_feature_mismatch(step):
    model = _rnn_2_10(step)
    step("predict")
    model.predict(np.zeros((4, 2, 7), np.float32), verbose=0)


def _err_predict_rank_mismatch(step):
    model = _rnn_2_10(step)
    step("predict")
    model.predict(np.zeros((4, 10), np.float32), verbose=0)


def _err_summary_unbuilt(step):
    step("construct")
    model = _seq(step, SimpleRNN(3))
    step("summary")
    model.summary(print_fn=lambda *a, **k: None)


def _err_set_weights_too_few(step):
    model = _rnn_2_10(step)
    step("set_weights")
    model.set_weights(model.get_weights()[:-1])


def _err_set_weights_wrong_kernel_shape(step):
    model = _rnn_2_10(step)
    weights = model.get_weights()
    weights[0] = np.zeros((7, 3), np.float32)  # kernel should be (10, 3)
    step("set_weights")
    model.set_weights(weights)


def _err_units_zero(step):
    step("construct")
    SimpleRNN(0)


def _err_unknown_activation(step):
    step("construct")
    SimpleRNN(3, activation="nope")


def _err_bidirectional_bad_merge_mode(step):
    step("construct")
    Bidirectional(SimpleRNN(3), merge_mode="nope")


def _bidir_none(step, **kwargs):
    step("construct")
    layer = Bidirectional(SimpleRNN(3, return_sequences=True),
                          merge_mode=None, **kwargs)
    return _seq(step, layer)


def _err_bidirectional_merge_none_predict(step):
    model = _bidir_none(step, input_shape=(2, 10))
    step("predict")
    model.predict(np.zeros((4, 2, 10), np.float32), verbose=0)


def _err_bidirectional_merge_none_summary(step):
    model = _bidir_none(step, input_shape=(2, 10))
    step("summary")
    model.summary(print_fn=lambda *a, **k: None)


def _err_bidirectional_merge_none_deferred_predict(step):
    model = _bidir_none(step)  # no input shape: add() cannot check yet
    step("predict")
    model.predict(np.zeros((4, 2, 10), np.float32), verbose=0)


def _err_bidirectional_merge_none_deferred_summary(step):
    model = _bidir_none(step)
    step("summary")
    model.summary(print_fn=lambda *a, **k: None)


def _err_duplicate_layer_names(step):
    step("construct")
    first = SimpleRNN(3, return_sequences=True, input_shape=(2, 10),
                      name="rnn")
    second = SimpleRNN(3, name="rnn")
    _seq(step, first, second)


def _err_input_length_without_input_dim(step):
    step("construct")
    layer = SimpleRNN(3, input_length=2)
    return _seq(step, layer)


def _err_backward_layer_same_go_backwards(step):
    step("construct")
    Bidirectional(SimpleRNN(3, return_sequences=True),
                  backward_layer=SimpleRNN(3, return_sequences=True),
                  input_shape=(2, 10))


ERROR_CASES = {
    "rank_mismatch_stacked_rnn": (
        "Sequential: SimpleRNN(3, input_shape=(2,10)) then SimpleRNN(3) "
        "(2-D output fed into an RNN)",
        _err_rank_mismatch_stacked),
    "predict_feature_mismatch": (
        "predict on SimpleRNN(3, input_shape=(2,10)) with x of shape (4,2,7)",
        _err_predict_feature_mismatch),
    "predict_rank_mismatch": (
        "predict on SimpleRNN(3, input_shape=(2,10)) with x of shape (4,10)",
        _err_predict_rank_mismatch),
    "summary_unbuilt": (
        "summary() on Sequential([SimpleRNN(3)]) with no input shape",
        _err_summary_unbuilt),
    "set_weights_too_few": (
        "set_weights with 2 arrays instead of 3",
        _err_set_weights_too_few),
    "set_weights_wrong_kernel_shape": (
        "set_weights with a (7,3) kernel instead of (10,3)",
        _err_set_weights_wrong_kernel_shape),
    "units_zero": ("SimpleRNN(0)", _err_units_zero),
    "unknown_activation": ("SimpleRNN(3, activation='nope')",
                           _err_unknown_activation),
    "bidirectional_bad_merge_mode": (
        "Bidirectional(SimpleRNN(3), merge_mode='nope')",
        _err_bidirectional_bad_merge_mode),
    "bidirectional_merge_none_predict": (
        "Sequential + Bidirectional(..., merge_mode=None, input_shape=(2,10)),"
        " then predict",
        _err_bidirectional_merge_none_predict),
    "bidirectional_merge_none_summary": (
        "Sequential + Bidirectional(..., merge_mode=None, input_shape=(2,10)),"
        " then summary",
        _err_bidirectional_merge_none_summary),
    "bidirectional_merge_none_deferred_predict": (
        "Sequential + Bidirectional(..., merge_mode=None) without input "
        "shape, then predict on (4,2,10)",
        _err_bidirectional_merge_none_deferred_predict),
    "bidirectional_merge_none_deferred_summary": (
        "Sequential + Bidirectional(..., merge_mode=None) without input "
        "shape, then summary",
        _err_bidirectional_merge_none_deferred_summary),
    "duplicate_layer_names": (
        "two layers named 'rnn' in one Sequential",
        _err_duplicate_layer_names),
    "input_length_without_input_dim": (
        "SimpleRNN(3, input_length=2) (no input_dim) added to a Sequential",
        _err_input_length_without_input_dim),
    "backward_layer_same_go_backwards": (
        "Bidirectional whose backward_layer has go_backwards=False like the "
        "forward layer",
        _err_backward_layer_same_go_backwards),
}


def core_message(message):
    """Errors raised inside predict's tf.function carry an 'in user code:'
    traceback (with absolute paths); the core is the last '<Type>: ...'
    block. For other errors the message is returned unchanged."""
    if not message.startswith("in user code:"):
        return message
    marker = "\n    ValueError: "
    core = message[message.rindex(marker) + len(marker):]
    return "\n".join(line[4:] if line.startswith("    ") else line
                     for line in core.rstrip("\n").split("\n"))


def _accepted_note(result):
    if isinstance(result, keras.Model) and result.built:
        return (f"no error; model built, input_shape="
                f"{shape_list(result.input_shape)}, output_shape="
                f"{shape_list(result.output_shape)}")
    return "no error"


def make_errors():
    results = {}
    for name, (description, fn) in ERROR_CASES.items():
        fresh_session()
        stage = {"value": None}

        def step(value, stage=stage):
            stage["value"] = value

        try:
            result = fn(step)
        except Exception as exc:  # noqa: BLE001 - record whatever Keras raises
            message = str(exc)
            results[name] = {
                "description": description,
                "raised_at": stage["value"],
                "type": type(exc).__name__,
                "message": message,
                "core_message": core_message(message),
            }
        else:
            results[name] = {"description": description, "accepted": True,
                             "note": _accepted_note(result)}
    # Top-level keys are exactly the case names (see README.md).
    return write_json("errors", results)


# --------------------------------------------------------------------------

def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (desc, build, x_shape, scale) in SEQUENTIAL_CASES.items():
        written.append(make_sequential_fixture(name, desc, build, x_shape, scale))
    for name, (desc, make, x_shape, states) in LAYER_CALL_CASES.items():
        written.append(make_layer_call_fixture(name, desc, make, x_shape, states))
    written.append(make_notebook_session())
    written.append(make_errors())
    for path in written:
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
