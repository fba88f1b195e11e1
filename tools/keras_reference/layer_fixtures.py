"""Layer-level fixtures: one Keras layer, called on given inputs, with everything seqnn needs to
rebuild it and check it (`tests/common/layer_fixture.rs`).

Used by the `generate_layers_*.py` scripts:

    from layer_fixtures import LIBS, write_case
    write_case(OUT, "conv1d_same", "k3", lambda L: L.Conv1D(4, 3, padding="same"),
               input_shapes=[(7, 3)])

For each case and library ("tf" = tf_keras 2.21, "k3" = Keras 3 with the TensorFlow backend)
it writes `<out>/<case>.<lib>.json`:

    {"case", "library", "generated_by", "versions",
     "config":        keras.layers.serialize(layer), the JSON seqnn's layer_from_config reads,
     "input_shapes":  the shapes the layer is built for, batch as null,
     "output_shapes": layer.compute_output_shape(...), batch as null,
     "params":        layer.count_params(),
     "trainable_params": the size of layer.trainable_weights,
     "weights":       [{"name", "shape", "data"}] in get_weights() order,
     "inputs":        [{"shape", "data"}], "masks": [null | {"shape", "data"}] per input,
     "outputs":       [{"shape", "data"}] from calling the layer (training=False),
     "output_masks":  [null | {"shape", "data"}] per output (layer.compute_mask)}

and, for a case that needs them (attention layers), what the config cannot hold:

     "call_kwargs":   the call's keyword arguments (use_causal_mask, return_attention_scores),
     "kwarg_inputs":  {index: keyword} for the inputs passed by keyword (attention_mask)}

Several inputs go to the call as one list (`layer([q, v])`), or with `call_args="positional"`
each as its own argument (`layer(q, v, k)`, MultiHeadAttention's signature); `kwarg_inputs`
passes some by keyword instead. A keyword named by several inputs gets the list of them in
input order: `kwarg_inputs={1: "initial_state", 2: "initial_state"}` calls
`layer(x, initial_state=[h, c])`. With `keras_masks=True` the masks are not passed as `mask=`
but attached to the inputs as Keras masks, as an Embedding or Masking layer upstream leaves them
(MultiHeadAttention reads them there), and the output masks are those the call leaves on its
outputs.

`write_gradient_case` (generate_train_gradients.py) writes the same fixture, from the same
draws, plus what a backward pass needs: the call's `training` flag, an `upstream` array per
output, and the gradients of sum_i sum(outputs[i] * upstream[i]) with respect to the float
inputs and every weight (`input_gradients`, `weight_gradients`, `weight_trainable`); see its
docstring. write_case's fixtures are unchanged by it.

Conventions, as in generate_files.py: clear_session() and set_random_seed(0) before each
case; weights drawn with rng.uniform(-0.6, 0.6) (float32) unless the case gives `weights`
(a function of the layer's default weights, for layers such as BatchNormalization whose
variance must stay positive); inputs from the same rng, rng =
np.random.default_rng(zlib.crc32(case)); integer inputs where `int_inputs` says so.

Masks go to the call as `mask=` (but for the inputs passed by keyword, such as initial
states: `masks=[m, None, None]` with `kwarg_inputs={1: ..., 2: ...}` calls `mask=m`) and the
output masks are `layer.compute_mask`'s; with
`keras_masks=True` they ride on the input tensors instead, as a Masking or Embedding layer
upstream leaves them (for layers whose `call` takes no mask, such as LayerNormalization or
Reshape), and the output masks are those Keras leaves on the outputs (none where a layer that
does not support masking drops them).
"""

import json
import os
import warnings
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
import keras  # noqa: E402

LIBS = {"tf": tf_keras, "k3": keras}
VERSIONS = {
    "tensorflow": tf.__version__,
    "tf_keras": tf_keras.__version__,
    "keras": keras.__version__,
    "numpy": np.__version__,
}


def _array(a):
    a = np.asarray(a)
    data = a.astype(np.float64).ravel().tolist() if a.dtype != bool else a.ravel().tolist()
    return {"shape": list(a.shape), "data": data}


def _shape(s):
    return [None if d is None else int(d) for d in s]


def _set_keras_mask(lib, tensor, mask):
    if lib == "k3":
        keras.src.backend.set_keras_mask(tensor, mask)
    else:
        tensor._keras_mask = mask


def _get_keras_mask(lib, tensor):
    if lib == "k3":
        return keras.src.backend.get_keras_mask(tensor)
    return getattr(tensor, "_keras_mask", None)


def _attach_masks(lib, args, masks):
    for t, mask in zip(args, masks):
        if mask is not None:
            _set_keras_mask(lib, t, mask)


def _call(layer, tensors, call_args, kwarg_inputs, **kwargs):
    """Calls `layer` on `tensors` as the case says: one tensor, a list, or arguments."""
    kwarg_inputs = kwarg_inputs or {}
    by_kw = {}
    for i, name in sorted(kwarg_inputs.items()):
        if list(kwarg_inputs.values()).count(name) > 1:
            by_kw.setdefault(name, []).append(tensors[i])  # e.g. initial_state
        else:
            by_kw[name] = tensors[i]
    rest = [t for i, t in enumerate(tensors) if i not in kwarg_inputs]
    if call_args == "positional":
        return layer(*rest, **by_kw, **kwargs)
    return layer(rest[0] if len(rest) == 1 else rest, **by_kw, **kwargs)


def _prepare(case, lib, make_layer, input_shapes, inputs, masks, int_inputs, weights,
             call_kwargs, batch, call_args, kwarg_inputs, keras_masks):
    """What write_case and write_gradient_case share: the layer built on `input_shapes`, its
    weights set, the inputs made (masks attached or in `mask=`). Draws from the case rng in
    this order: the weights, then the inputs."""
    K = LIBS[lib]
    K.backend.clear_session()
    K.utils.set_random_seed(0)
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    layer = make_layer(K.layers)
    int_inputs = int_inputs or {}
    tensors = [
        K.Input(shape=tuple(s), dtype="int32" if i in int_inputs else "float32")
        for i, s in enumerate(input_shapes)
    ]
    call_kwargs = call_kwargs or {}
    symbolic = _call(layer, tensors, call_args, kwarg_inputs, **call_kwargs)
    default = layer.get_weights()
    if weights is not None:
        values = [np.asarray(w, np.float32) for w in weights(default, rng)]
    else:
        values = [rng.uniform(-0.6, 0.6, size=w.shape).astype(np.float32) for w in default]
    layer.set_weights(values)

    if inputs is None:
        inputs = []
        for i, s in enumerate(input_shapes):
            shape = (batch,) + tuple(s)
            if i in int_inputs:
                inputs.append(rng.integers(0, int_inputs[i], size=shape).astype(np.int32))
            else:
                inputs.append(rng.uniform(-1.0, 1.0, size=shape).astype(np.float32))
    args = [tf.constant(x) for x in inputs]
    kw = dict(call_kwargs)
    if masks is not None:
        m = [None if x is None else tf.constant(np.asarray(x, bool)) for x in masks]
        if keras_masks:
            _attach_masks(lib, args, m)
        else:
            # Inputs passed by keyword (initial states) have no place in `mask=`.
            m = [x for i, x in enumerate(m) if i not in (kwarg_inputs or {})]
            kw["mask"] = m[0] if len(m) == 1 else m
    return K, rng, layer, symbolic, values, inputs, args, kw


def _output_masks(lib, layer, args, kw, outs, keras_masks):
    if keras_masks:
        out_masks = [_get_keras_mask(lib, o) for o in outs]
    else:
        out_masks = layer.compute_mask(args[0] if len(args) == 1 else args, kw.get("mask"))
    if not isinstance(out_masks, (list, tuple)):
        out_masks = [out_masks] * (1 if len(outs) == 1 else len(outs))
    return out_masks


def _doc(K, lib, case, generated_by, layer, symbolic, input_shapes, values, inputs, masks,
         outs, out_masks, call_kwargs, kwarg_inputs):
    sym = symbolic if isinstance(symbolic, (list, tuple)) else [symbolic]
    names = [w.name for w in layer.weights]
    doc = {
        "case": case,
        "library": {"tf": "tf_keras", "k3": "keras3"}[lib],
        "generated_by": generated_by,
        "versions": VERSIONS,
        "config": K.layers.serialize(layer),
        "input_shapes": [[None] + list(s) for s in input_shapes],
        "output_shapes": [_shape(t.shape) for t in sym],
        "params": int(layer.count_params()),
        "trainable_params": int(sum(np.prod(w.shape) for w in layer.trainable_weights)),
        "weights": [dict(_array(v), name=n) for n, v in zip(names, values)],
        "inputs": [_array(x) for x in inputs],
        "masks": None if masks is None else [None if x is None else _array(np.asarray(x, bool))
                                             for x in masks],
        "outputs": [_array(np.asarray(o)) for o in outs],
        "output_masks": [None if m is None else _array(np.asarray(m)) for m in out_masks],
    }
    if call_kwargs:
        doc["call_kwargs"] = call_kwargs
    if kwarg_inputs:
        doc["kwarg_inputs"] = {str(i): name for i, name in kwarg_inputs.items()}
    return doc


def _dump(out_dir, case, lib, doc):
    path = os.path.join(out_dir, f"{case}.{lib}.json")
    os.makedirs(out_dir, exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def write_case(out_dir, case, lib, make_layer, input_shapes, *, generated_by,
               inputs=None, masks=None, int_inputs=None, weights=None, call_kwargs=None,
               batch=3, call_args="list", kwarg_inputs=None, keras_masks=False):
    """Builds `make_layer(K.layers)` in library `lib` on `input_shapes` (without the batch),
    calls it on random (or given) inputs, and writes the case's JSON. Returns the path."""
    K, rng, layer, symbolic, values, inputs, args, kw = _prepare(
        case, lib, make_layer, input_shapes, inputs, masks, int_inputs, weights, call_kwargs,
        batch, call_args, kwarg_inputs, keras_masks)
    with warnings.catch_warnings():
        # Keras 3 warns when a layer without masking support drops a mask.
        warnings.simplefilter("ignore")
        out = _call(layer, args, call_args, kwarg_inputs, training=False, **kw)
    outs = out if isinstance(out, (list, tuple)) else [out]
    out_masks = _output_masks(lib, layer, args, kw, outs, keras_masks)
    doc = _doc(K, lib, case, generated_by, layer, symbolic, input_shapes, values, inputs, masks,
               outs, out_masks, call_kwargs, kwarg_inputs)
    return _dump(out_dir, case, lib, doc)


def _variable(lib, w):
    """The tf.Variable behind a layer weight (Keras 3 wraps it in a KerasVariable)."""
    return w.value if lib == "k3" else w


def write_gradient_case(out_dir, case, lib, make_layer, input_shapes, *, generated_by,
                        training=True, same_as_inference=True, inputs=None, masks=None,
                        int_inputs=None, weights=None, call_kwargs=None, batch=3,
                        call_args="list", kwarg_inputs=None, keras_masks=False, extra=None):
    """A layer fixture (as write_case writes it, the same draws from the case rng) plus what a
    backward pass needs: the layer is called once with `training=training` under a
    tf.GradientTape watching the float inputs and every weight, the outputs are that call's,
    `upstream` (one rng.uniform(-1, 1) float32 array per output, drawn after the inputs) weighs
    them into the loss sum_i sum(outputs[i] * upstream[i]) (float32), and the fixture records

        "training":          the call's training flag,
        "upstream":          [{"shape", "data"}] per output,
        "loss":              the float32 loss, as a float,
        "input_gradients":   [null | {"shape", "data"}] per input: d loss / d input (null for
                             integer inputs),
        "weight_gradients":  [null | {"shape", "data", "name"}] per weight, in get_weights()
                             order (= layer.weights order, asserted): d loss / d weight, null
                             where TensorFlow gives none (IndexedSlices written dense),
        "weight_trainable":  [bool] per weight, whether Keras trains it,
        "keras_masks":       whether the masks rode on the input tensors (true) or went to the
                             call as `mask=` (false),
        "weights_after":     only where the call changed a weight (BatchNormalization's moving
                             statistics in training): [{"shape", "data", "name"}] per weight,
                             every weight's value right after the taped call.

    With `same_as_inference` (layers without randomness or batch statistics) it also checks
    that a training=False call gives the same outputs. `extra` (a dict) is added to the
    fixture as it is."""
    K, rng, layer, symbolic, values, inputs, args, kw = _prepare(
        case, lib, make_layer, input_shapes, inputs, masks, int_inputs, weights, call_kwargs,
        batch, call_args, kwarg_inputs, keras_masks)
    int_inputs = int_inputs or {}
    variables = [_variable(lib, w) for w in layer.weights]
    current = layer.get_weights()
    assert len(current) == len(values) == len(variables), case
    for v, a, b in zip(variables, current, values):
        # get_weights() order is layer.weights order: the values set are where they were put.
        assert np.array_equal(v.numpy(), a) and np.array_equal(a, b), case
    trainable = [any(w is t for t in layer.trainable_weights) for w in layer.weights]
    float_args = [i for i in range(len(args)) if i not in int_inputs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if same_as_inference:
            ref = tf.nest.flatten(
                _call(layer, args, call_args, kwarg_inputs, training=False, **kw))
            if keras_masks and masks is not None:
                # Keras 3's MultiHeadAttention takes the masks off its inputs: put them back.
                _attach_masks(lib, args, [None if x is None else tf.constant(np.asarray(x, bool))
                                          for x in masks])
        with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
            for i in float_args:
                tape.watch(args[i])
            for v in variables:
                tape.watch(v)
            out = _call(layer, args, call_args, kwarg_inputs, training=training, **kw)
            outs = tf.nest.flatten(out)
            upstream = [rng.uniform(-1.0, 1.0, size=o.shape).astype(np.float32) for o in outs]
            loss = tf.add_n([tf.reduce_sum(o * tf.constant(u)) for o, u in zip(outs, upstream)])
    if same_as_inference:
        for a, b in zip(ref, outs):
            assert np.allclose(np.asarray(a), np.asarray(b), atol=1e-6), case
    after = [np.asarray(v.numpy()) for v in variables]
    g_in = tape.gradient(loss, [args[i] for i in float_args])
    g_w = tape.gradient(loss, variables)
    del tape
    input_gradients = [None] * len(args)
    for i, g in zip(float_args, g_in):
        input_gradients[i] = None if g is None else _array(tf.convert_to_tensor(g).numpy())
    out_masks = _output_masks(lib, layer, args, kw, outs, keras_masks)
    doc = _doc(K, lib, case, generated_by, layer, symbolic, input_shapes, values, inputs, masks,
               outs, out_masks, call_kwargs, kwarg_inputs)
    doc["training"] = bool(training)
    doc["upstream"] = [_array(u) for u in upstream]
    doc["loss"] = float(loss.numpy())
    doc["input_gradients"] = input_gradients
    doc["weight_gradients"] = [
        None if g is None else dict(_array(tf.convert_to_tensor(g).numpy()), name=w.name)
        for g, w in zip(g_w, layer.weights)]
    doc["weight_trainable"] = trainable
    doc["keras_masks"] = bool(keras_masks)
    if any(not np.array_equal(a, v) for a, v in zip(after, values)):
        doc["weights_after"] = [dict(_array(a), name=w.name)
                                for a, w in zip(after, layer.weights)]
    doc.update(extra or {})
    return _dump(out_dir, case, lib, doc)
