"""Shared machinery of the whole-model fixture generators
(generate_functional.py, generate_models.py).

A case is a `Case(description, build, inputs, notes, stateful)`: `build(K, v)`
gets the Keras module K (tf_keras or keras) and v = "tf" | "k3" and returns
the built model; `inputs` are input makers (functions of the case rng).
`make_case(name, case, out_dir, generated_by)` builds the case in both
libraries, gives both the same weights, predicts, saves every format,
reloads every file with its writer (and cross-loads it with the other
library), and writes `<out_dir>/<case>.json`. The conventions (names,
weights, inputs, reload checks, JSON keys) are described in
tests/fixtures/functional/README.md; generate_functional.py's and
generate_models.py's outputs both come from here.

Weights: rng.uniform(-0.6, 0.6) float32 per array of get_weights(), in
order, except BatchNormalization's `moving_variance`, which must stay
positive: rng.uniform(0.5, 1.5) (same draw count, so other arrays are
unaffected by the rule).

Also here: the --dump helpers and the format checks shared by the
generators (graph references, .keras weight groups, legacy .h5 weights).
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"

import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import warnings  # noqa: E402
import zipfile  # noqa: E402
import zlib  # noqa: E402
from collections import namedtuple  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import h5py  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
import keras  # noqa: E402

tf.get_logger().setLevel("ERROR")
warnings.filterwarnings("ignore")
import absl.logging  # noqa: E402

absl.logging.set_verbosity(absl.logging.ERROR)

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = {
    "tensorflow": tf.__version__,
    "tf_keras": tf_keras.__version__,
    "keras": keras.__version__,
    "numpy": np.__version__,
    "h5py": h5py.__version__,
}
LIBS = {"tf": tf_keras, "k3": keras}
VERSION_KEY = {"tf": "tf_keras", "k3": "keras3"}


# --------------------------------------------------------------------------
# Input makers: each takes the case rng and returns one array.
# --------------------------------------------------------------------------

def floats(*shape):
    return lambda rng: rng.uniform(-1, 1, size=shape).astype(np.float32)


def padded_ids(vocab, timesteps, lengths):
    """One row per length; real tokens in [1, vocab) then 0-padding."""
    def make(rng):
        x = np.zeros((len(lengths), timesteps), np.int32)
        for b, n in enumerate(lengths):
            x[b, :n] = rng.integers(1, vocab, size=n)
        return x
    return make


def padded_floats(timesteps, features, lengths, hole=None):
    """Float rows zero-padded after `lengths[b]` steps; `hole` = (row, t)
    zeroes one extra interior timestep (masked mid-sequence)."""
    def make(rng):
        x = rng.uniform(-1, 1, size=(len(lengths), timesteps, features))
        for b, n in enumerate(lengths):
            x[b, n:] = 0.0
        if hole is not None:
            x[hole[0], hole[1]] = 0.0
        return x.astype(np.float32)
    return make


def bool_mask(timesteps, lengths, hole=None):
    """Boolean (batch, timesteps): True for the first lengths[b] steps;
    `hole` = (row, t) sets one interior step to False."""
    def make(rng):
        m = np.zeros((len(lengths), timesteps), bool)
        for b, n in enumerate(lengths):
            m[b, :n] = True
        if hole is not None:
            m[hole[0], hole[1]] = False
        rng.uniform()  # keep the rng stream moving like the other makers
        return m
    return make


Case = namedtuple("Case", "description build inputs notes stateful",
                  defaults=((), False))


def _inner_sequential(K, v, layers_fn, shape=None):
    """A Sequential for nesting: with an input shape (Keras 2 idiom
    `input_shape=` on its first layer; Keras 3 idiom `Input` first) when
    `shape` is given, else without (built when first called)."""
    L = K.layers
    if shape is None:
        return K.Sequential(layers_fn(L, {}))
    if v == "tf":
        return K.Sequential(layers_fn(L, {"input_shape": tuple(shape)}))
    return K.Sequential([K.Input(shape=tuple(shape))] + layers_fn(L, {}))


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def fresh(K):
    K.backend.clear_session()
    K.utils.set_random_seed(0)


def case_rng(name):
    return np.random.default_rng(zlib.crc32(name.encode("utf-8")))


def f32_list(arr):
    arr = np.asarray(arr).astype(np.float32)
    return arr.astype(np.float64).ravel().tolist()


def tensor(arr):
    arr = np.asarray(arr)
    return {"shape": list(arr.shape), "data": f32_list(arr)}


def capture_summary(model):
    chunks = []
    model.summary(print_fn=lambda line, *a, **k: chunks.append(str(line)))
    return "\n".join(c.rstrip("\n") for c in chunks)


def input_names(model, v):
    if v == "tf":
        return list(model.input_names)
    return [t._keras_history.operation.name for t in model.inputs]


def output_names(model):
    """model.output_names; a Keras 3 Sequential has none: the names of the
    layers producing model.outputs."""
    if hasattr(model, "output_names"):
        return list(model.output_names)
    return [t._keras_history.operation.name for t in model.outputs]


def feed(model, v, xs):
    """The model's input structure filled with xs (model.inputs order).
    (A Keras 3 Sequential has no _inputs_struct: one input.)"""
    struct = getattr(model, "_nested_inputs" if v == "tf"
                     else "_inputs_struct", None)
    if isinstance(struct, dict):
        names = input_names(model, v)
        return dict(zip(names, xs))
    return xs[0] if len(xs) == 1 else list(xs)


def flat_outputs(model, v, y):
    """Model outputs as a list in model.outputs order."""
    if isinstance(y, dict):
        return [np.asarray(y[n]) for n in model.output_names]
    if isinstance(y, (list, tuple)):
        return [np.asarray(t) for t in y]
    return [np.asarray(y)]


def predict(model, v, xs):
    y = model.predict(feed(model, v, xs), verbose=0, batch_size=len(xs[0]))
    return flat_outputs(model, v, y)


def max_diff(ys, zs):
    return max(float(np.max(np.abs(a - b))) if a.size else 0.0
               for a, b in zip(ys, zs))


def reset_states(model):
    """Zero the states of stateful RNNs (tf_keras: RNN.reset_states;
    Keras 3: RNN.reset_state)."""
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            if hasattr(layer, "reset_state"):
                layer.reset_state()
            else:
                layer.reset_states()


def layer_list(model):
    out = []
    for layer in model.layers:
        entry = {"name": layer.name, "class": type(layer).__name__}
        if hasattr(layer, "layers") and isinstance(
                layer, (tf_keras.Model, keras.Model)):
            entry["layers"] = layer_list(layer)
        out.append(entry)
    return out


def weight_info(model, v):
    if v == "tf":
        return [{"name": w.name, "shape": list(w.shape)} for w in model.weights]
    return [{"path": w.path, "name": w.name, "shape": list(w.shape)}
            for w in model.weights]


def params(model):
    def count(ws):
        return int(sum(int(np.prod(w.shape)) for w in ws))
    return {"total": int(model.count_params()),
            "trainable": count(model.trainable_weights),
            "non_trainable": count(model.non_trainable_weights)}


def load(v, path):
    K = LIBS[v]
    fresh(K)
    return K.models.load_model(str(path), compile=False)


def short_error(exc):
    """`Type: first informative line` of an exception."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
             for line in str(exc).strip().split("\n")]
    lines = [line for line in lines if line]
    text = lines[0] if lines else ""
    if text.startswith("Exception encountered when calling") and len(lines) > 1:
        text = text + " " + lines[1]
    text = text.replace(str(ROOT) + "/", "")
    text = re.sub(r" at 0x[0-9a-f]+", "", text)
    if len(text) > 400:
        text = text[:397] + "..."
    return f"{type(exc).__name__}: {text}"


def save_all(v, model, name, out_dir):
    """Save `model` (built with library v) in every format of that library.
    Returns {filename: None | "why it failed"}."""
    results = {}
    if v == "tf":
        targets = [(f"{name}.tf.keras", model.save),
                   (f"{name}.tf.h5", model.save)]
    else:
        targets = [(f"{name}.k3.keras", model.save),
                   (f"{name}.k3.h5", model.save),
                   (f"{name}.k3.weights.h5", model.save_weights)]
    for fname, fn in targets:
        path = out_dir / fname
        try:
            fn(str(path))
            results[fname] = None
        except Exception as exc:  # noqa: BLE001 - recorded in the JSON
            if path.exists():
                path.unlink()
            results[fname] = short_error(exc)
    return results


def read_keras_config(path):
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json"))


def read_h5_config(path):
    with h5py.File(path, "r") as f:
        val = f.attrs["model_config"]
    return json.loads(val.decode() if isinstance(val, bytes) else val)


def graph_summary(model_cfg):
    """Compact view of a Functional config: entries in `layers` order
    (name, class_name, module, number of inbound nodes, nested graph),
    input_layers, output_layers."""
    cfg = model_cfg["config"]
    entries = []
    for entry in cfg["layers"]:
        e = {"name": entry.get("name", entry["config"].get("name")),
             "class_name": entry["class_name"],
             "module": entry.get("module"),
             "inbound_nodes": (len(entry["inbound_nodes"])
                               if "inbound_nodes" in entry else None)}
        if entry["class_name"] in ("Functional", "Sequential"):
            e["nested"] = graph_summary(entry)
        entries.append(e)
    out = {"class_name": model_cfg["class_name"], "name": cfg.get("name"),
           "layers": entries}
    for key in ("input_layers", "output_layers"):
        if key in cfg:
            out[key] = cfg[key]
    return out


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

def build_version(v, case):
    K = LIBS[v]
    fresh(K)
    model = case.build(K, v)
    assert model.built, (v, "model not built")
    return model


def case_weights(model, rng):
    """One array per get_weights() entry (model.weights order, which is
    get_weights' order in both libraries): uniform(-0.6, 0.6) float32, but
    uniform(0.5, 1.5) for a BatchNormalization moving_variance."""
    out = []
    for var, w in zip(model.weights, model.get_weights()):
        name = var.name.split("/")[-1].split(":")[0]
        if name == "moving_variance":
            out.append(rng.uniform(0.5, 1.5, size=w.shape).astype(np.float32))
        else:
            out.append(rng.uniform(-0.6, 0.6, size=w.shape).astype(np.float32))
    return out


def make_case(name, case, out_dir, generated_by):
    rng = case_rng(name)
    payload = {
        "case": name,
        "description": case.description,
        "generated_by": generated_by,
        "versions": VERSIONS,
    }
    models, skipped = {}, {}
    for v in ("tf", "k3"):
        try:
            models[v] = build_version(v, case)
        except Exception as exc:  # noqa: BLE001
            skipped[VERSION_KEY[v]] = "build failed: " + short_error(exc)

    # Weights: generated once, in tf_keras's get_weights order (Keras 3's
    # when tf_keras could not build); both versions must agree on shapes.
    ref = models.get("tf") or models["k3"]
    weights = case_weights(ref, rng)
    for v, model in list(models.items()):
        shapes = [tuple(w.shape) for w in model.get_weights()]
        if shapes != [w.shape for w in weights]:
            skipped[VERSION_KEY[v]] = (
                f"builds weight shapes {shapes} instead of "
                f"{[w.shape for w in weights]}")
            del models[v]
            continue
        model.set_weights(weights)
    xs = [make(rng) for make in case.inputs]

    outputs, second, summaries, prm, wnames, files = {}, {}, {}, {}, {}, {}
    layers, in_names, out_names = {}, {}, {}
    for v, model in list(models.items()):
        key = VERSION_KEY[v]
        if case.stateful:
            reset_states(model)
        try:
            outputs[key] = predict(model, v, xs)
        except Exception as exc:  # noqa: BLE001
            skipped[key] = "predict failed: " + short_error(exc)
            del models[v]
            continue
        if case.stateful:
            second[key] = predict(model, v, xs)
            reset_states(model)
        summaries[key] = capture_summary(model)
        prm[key] = params(model)
        wnames[key] = weight_info(model, v)
        layers[key] = layer_list(model)
        in_names[key] = input_names(model, v)
        out_names[key] = output_names(model)
        files.update(save_all(v, model, name, out_dir))

    # Reload every file with the library that wrote it.
    # A file its writer cannot load back is kept when its weights load
    # into a freshly built model and reproduce the outputs exactly
    # (recorded under "reload_failures"); otherwise it is deleted.
    reload_check, reload_failures = {}, {}
    for fname, err in list(files.items()):
        if err is not None or fname.endswith(".weights.h5"):
            continue
        v = fname.split(".")[-2]
        try:
            model = load(v, out_dir / fname)
        except Exception as exc:  # noqa: BLE001
            why = short_error(exc)
            model = build_version(v, case)
            model.load_weights(str(out_dir / fname))
            if case.stateful:
                reset_states(model)
            diff = max_diff(predict(model, v, xs), outputs[VERSION_KEY[v]])
            if diff != 0.0:
                (out_dir / fname).unlink()
                files[fname] = (f"saved, but load_model fails ({why}) and "
                                f"its weights give max abs diff {diff}")
                continue
            reload_failures[fname] = (
                f"load_model fails: {why}; kept because load_weights of this "
                "file into a freshly built model reproduces the outputs "
                "exactly")
            reload_check[fname] = diff
            continue
        if case.stateful:
            reset_states(model)
        ys = predict(model, v, xs)
        diff = max_diff(ys, outputs[VERSION_KEY[v]])
        reload_check[fname] = diff
        assert diff == 0.0, (fname, diff)
        assert input_names(model, v) == in_names[VERSION_KEY[v]], fname
        assert output_names(model) == out_names[VERSION_KEY[v]], fname
    wfile = f"{name}.k3.weights.h5"
    if files.get(wfile, "missing") is None:
        model = build_version("k3", case)
        model.load_weights(str(out_dir / wfile))
        if case.stateful:
            reset_states(model)
        diff = max_diff(predict(model, "k3", xs), outputs["keras3"])
        reload_check[wfile] = diff
        assert diff == 0.0, (wfile, diff)

    # Cross-loading (informational).
    cross = {}
    for fname in sorted(files):
        if files[fname] is not None or fname.endswith(".weights.h5"):
            continue
        writer = fname.split(".")[-2]
        other = "k3" if writer == "tf" else "tf"
        label = f"{VERSION_KEY[other]} loads {fname}"
        try:
            model = load(other, out_dir / fname)
            if case.stateful:
                reset_states(model)
            ys = predict(model, other, xs)
            want = outputs.get(VERSION_KEY[other])
            if want is None:
                cross[label] = "loaded"
            else:
                cross[label] = (f"ok, max abs diff vs its own expected "
                                f"{max_diff(ys, want):.3g}")
        except Exception as exc:  # noqa: BLE001
            cross[label] = "fails: " + short_error(exc)

    # The graph as each dialect serialized it (from the .keras file).
    graph = {}
    for v in models:
        path = out_dir / f"{name}.{v}.keras"
        if path.exists():
            graph[VERSION_KEY[v]] = graph_summary(read_keras_config(path))

    notes = list(case.notes)
    if "tf_keras" in outputs and "keras3" in outputs:
        diffs = [float(np.max(np.abs(a - b))) if a.size else 0.0
                 for a, b in zip(outputs["tf_keras"], outputs["keras3"])]
        if max(diffs) > 1e-5:
            notes.append(
                "tf_keras and keras3 outputs differ (max abs diff per output "
                f"{[float(f'{d:.3g}') for d in diffs]}); each version's "
                "files must reproduce its own expected outputs")
    else:
        diffs = None

    ref_key = "tf_keras" if "tf_keras" in in_names else "keras3"
    inputs = []
    for i, x in enumerate(xs):
        dtype = str(x.dtype)
        entry = {"names": {k: in_names[k][i] for k in in_names},
                 "shape": list(x.shape), "dtype": dtype}
        if dtype == "float32":
            entry["data"] = f32_list(x)
        else:
            entry["data"] = x.ravel().tolist()
        inputs.append(entry)

    payload.update({
        "inputs": inputs,
        "input_names": in_names,
        "output_names": out_names,
        "expected": {k: [tensor(o) for o in outs]
                     for k, outs in outputs.items()},
        "max_abs_diff_tf_keras_vs_keras3": diffs,
        "params": prm,
        "summary": summaries,
        "layers": layers,
        "weight_names": wnames,
        "weights": [tensor(w) | {"name": n["name"]} for w, n in
                    zip(weights, wnames.get(ref_key, []))],
        "graph": graph,
        "files": sorted(f for f, e in files.items() if e is None)
        + [f"{name}.json"],
        "skipped": {**skipped, **{f: e for f, e in files.items() if e}},
        "reload_check_max_abs_diff": reload_check,
        "reload_failures": reload_failures,
        "cross_load": cross,
        "notes": notes,
    })
    if case.stateful:
        payload["second_predict"] = {k: [tensor(o) for o in outs]
                                     for k, outs in second.items()}
        payload["notes"].append(
            "stateful: predict() does not reset states in either version; "
            "reset_states() was called before the recorded first predict")
    with open(out_dir / f"{name}.json", "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    return payload


# --------------------------------------------------------------------------
# Dumps (for the README): --dump FILE...
# --------------------------------------------------------------------------

def dump_h5(fileobj):
    lines = []
    with h5py.File(fileobj, "r") as f:
        def attrs(o):
            out = []
            for k, val in o.attrs.items():
                if isinstance(val, bytes):
                    val = val.decode()
                if isinstance(val, np.ndarray):
                    val = [x.decode() if isinstance(x, bytes) else x
                           for x in val.tolist()]
                s = repr(val)
                if isinstance(val, str) and len(s) > 80:  # model_config
                    s = s[:77] + "...'"
                out.append(f"{k}={s}")
            return ("  {" + ", ".join(out) + "}") if out else ""

        lines.append("/" + attrs(f))

        def visit(n, o):
            if isinstance(o, h5py.Dataset):
                lines.append(f"{n}  dataset {o.shape} {o.dtype.str}{attrs(o)}")
            else:
                lines.append(f"{n}/{attrs(o)}")
        f.visititems(visit)
    return "\n".join(lines)


def dump_graph(cfg, indent=""):
    """One line per config entry with its inbound nodes, recursively."""
    c = cfg["config"]
    print(f"{indent}{cfg['class_name']} {c.get('name')!r}")
    for entry in c.get("layers", []):
        nodes = json.dumps(entry.get("inbound_nodes", None))
        print(f"{indent}  [{entry.get('module')}] {entry['class_name']} "
              f"{entry.get('name', entry['config'].get('name'))!r} "
              f"inbound_nodes={nodes}")
        if entry["class_name"] in ("Functional", "Sequential"):
            dump_graph(entry, indent + "    ")
    for key in ("input_layers", "output_layers"):
        if key in c:
            print(f"{indent}  {key}={json.dumps(c[key])}")


def dump(path, full=False):
    path = Path(path)
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as z:
            print(f"== {path.name}: zip members")
            for i in z.infolist():
                print(f"  {i.filename:20s} compress_type={i.compress_type} "
                      f"size={i.file_size} date_time={i.date_time}")
            print("== metadata.json")
            print(z.read("metadata.json").decode())
            cfg = json.loads(z.read("config.json"))
            print("== config.json graph")
            dump_graph(cfg)
            if full:
                print("== config.json")
                print(json.dumps(cfg, indent=1))
            print("== model.weights.h5")
            print(dump_h5(io.BytesIO(z.read("model.weights.h5"))))
    else:
        print(f"== {path.name}")
        print(dump_h5(str(path)))
        with h5py.File(str(path), "r") as f:
            if "model_config" in f.attrs:
                val = f.attrs["model_config"]
                cfg = json.loads(val.decode() if isinstance(val, bytes)
                                 else val)
                print("== attr model_config graph")
                dump_graph(cfg)
                if full:
                    print("== attr model_config")
                    print(json.dumps(cfg, indent=1))


# --------------------------------------------------------------------------
# Format checks shared by the generators (their --check): graph references,
# .keras weight groups, legacy .h5 weights.
# --------------------------------------------------------------------------

def snake(name):
    """Keras's to_snake_case, as used for the .keras weight group names."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name


def _is_kt(obj):
    return isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"


def _walk_kts(obj, path=""):
    """Yield (path, keras_history) of every __keras_tensor__ in obj."""
    if _is_kt(obj):
        yield path, obj["config"]["keras_history"]
    elif isinstance(obj, dict):
        for k, val in obj.items():
            yield from _walk_kts(val, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, val in enumerate(obj):
            yield from _walk_kts(val, f"{path}[{i}]")


def _leaves(struct):
    """[name, node, tensor] leaves of input_layers / output_layers."""
    if (isinstance(struct, list) and len(struct) == 3
            and isinstance(struct[0], str)):
        return [struct]
    if isinstance(struct, dict):
        return [x for val in struct.values() for x in _leaves(val)]
    return [x for val in struct for x in _leaves(val)]


def _struct_kind(struct):
    if (isinstance(struct, list) and len(struct) == 3
            and isinstance(struct[0], str)):
        return "flat [name, node, tensor]"
    if isinstance(struct, dict):
        return "dict of [name, node, tensor]"
    return "list of [name, node, tensor]"


def check_graph(cfg, dialect, facts, where):
    """Check one Functional config (recursively) and collect facts."""
    c = cfg["config"]
    entries = {e["name"]: e for e in c["layers"]}
    assert len(entries) == len(c["layers"]), (where, "duplicate names")
    facts["model_config_keys"].add(tuple(sorted(c)))
    facts["input_layers_forms"].add(_struct_kind(c["input_layers"]))
    facts["output_layers_forms"].add(_struct_kind(c["output_layers"]))

    def offset(entry, for_io):
        if dialect == "tf_keras":
            if entry["class_name"] in ("Functional", "Sequential"):
                first = entry["config"]["layers"][0]
                assert first["class_name"] == "InputLayer", where
                return 1
            return 0
        if for_io and entry["class_name"] == "Functional":
            return 1
        return 0

    position = {e["name"]: i for i, e in enumerate(c["layers"])}

    def resolve(ref, for_io, what, at=None):
        name, node, tensor_index = ref[:3]
        assert name in entries, (where, what, ref)
        # every reference points to an EARLIER entry of `layers`
        assert at is None or position[name] < at, (where, what, ref)
        entry = entries[name]
        assert isinstance(tensor_index, int) and tensor_index >= 0
        if entry["class_name"] == "InputLayer":
            assert node == 0 and tensor_index == 0, (where, what, ref)
            return
        k = node - offset(entry, for_io)
        assert 0 <= k < len(entry["inbound_nodes"]), (where, what, ref)

    for e in c["layers"]:
        facts["entry_keys"].add(tuple(sorted(e)))
        if e["class_name"] == "InputLayer":
            assert e["inbound_nodes"] == [], (where, e["name"])
            facts["input_layer_config_keys"].add(tuple(sorted(e["config"])))
        else:
            assert e["inbound_nodes"], (where, e["name"], "no nodes")
        if e.get("module") not in (None, "keras.layers"):
            facts["modules"].add((e["module"], e["class_name"]))
        if "module" in e:
            assert (e["module"] == "keras.src.ops.numpy") == _is_op_entry(e), \
                (where, e["name"])
        if _is_op_entry(e):
            facts["op_config_keys"].add(
                (e["class_name"], tuple(sorted(e["config"]))))
        if e["class_name"] != "InputLayer" and (
                "batch_input_shape" in e["config"]):
            facts["batch_input_shape_outside_InputLayer"].add(
                (e["class_name"], json.dumps(e["config"]["batch_input_shape"])))
        for node in e["inbound_nodes"]:
            if dialect == "tf_keras":
                assert isinstance(node, list), (where, e["name"])
                for ref in node:
                    assert len(ref) == 4 and isinstance(ref[3], dict), ref
                    resolve(ref, False, e["name"], position[e["name"]])
                    for k, val in ref[3].items():
                        if (isinstance(val, list) and len(val) == 3
                                and isinstance(val[0], str)):
                            facts["tf_kwargs"].add((e["class_name"], k))
                            resolve(val, False, f"{e['name']} kwargs {k}",
                                    position[e["name"]])
                        else:   # a literal (use_causal_mask=True, ...)
                            facts["tf_kwargs"].add(
                                (e["class_name"], k, json.dumps(val)))
                facts["tf_node_arity"].add((e["class_name"], len(node)))
            else:
                assert sorted(node) == ["args", "kwargs"], (where, node)
                args, kwargs = node["args"], node["kwargs"]
                form = []
                for a in args:
                    if _is_kt(a):
                        form.append("tensor")
                    elif isinstance(a, list) and all(_is_kt(x) for x in a):
                        form.append(f"[tensor x{len(a)}]")
                    else:
                        form.append(f"literal {json.dumps(a)}")
                facts["k3_args"].add((e["class_name"], tuple(form)))
                for k, val in kwargs.items():
                    kind = ("null" if val is None else
                            "tensor" if _is_kt(val) else
                            f"[tensor x{len(val)}]" if isinstance(val, list)
                            else json.dumps(val))
                    facts["k3_kwargs"].add((e["class_name"], k, kind))
                for path, hist in _walk_kts(node):
                    resolve(hist, False, f"{e['name']} {path}",
                            position[e["name"]])
                for path, kt in _walk_kts_objs(node):
                    facts["k3_tensor_config_keys"].add(tuple(sorted(kt)))
        if e["class_name"] == "Functional":
            check_graph(e, dialect, facts, f"{where} > {e['name']}")
        if e["class_name"] == "Sequential":
            facts["nested_sequential_first"].add(
                e["config"]["layers"][0]["class_name"])
    for ref in _leaves(c["input_layers"]):
        resolve(ref, True, "input_layers")
        assert entries[ref[0]]["class_name"] == "InputLayer"
    for ref in _leaves(c["output_layers"]):
        resolve(ref, True, "output_layers")


def _walk_kts_objs(obj, path=""):
    if _is_kt(obj):
        yield path, obj["config"]
    elif isinstance(obj, dict):
        for k, val in obj.items():
            yield from _walk_kts_objs(val, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, val in enumerate(obj):
            yield from _walk_kts_objs(val, f"{path}[{i}]")


def expected_keras_groups(layer_list_, container_class, seen,
                          prefix="layers"):
    """The .keras weight groups of a container's layers, from the case
    JSON's `layers` (model.layers order): [(group path, layer entry)], in
    save order. The group is `to_snake_case(class)` plus `_<n>` for the
    n-th repeat of a class within one container; a Sequential's InputLayer
    is not in its `layers`; a layer already reached earlier (a layer
    shared across nesting levels) gets no group (but still uses up its
    class counter)."""
    out, used = [], {}
    for entry in layer_list_:
        if container_class == "Sequential" and entry["class"] == "InputLayer":
            continue
        g = snake(entry["class"])
        if g in used:
            used[g] += 1
            g = f"{g}_{used[g]}"
        else:
            used[g] = 0
        if entry["name"] in seen:
            continue
        seen.add(entry["name"])
        path = f"{prefix}/{g}"
        out.append((path, entry))
        if "layers" in entry:
            out.extend(expected_keras_groups(entry["layers"], entry["class"],
                                             seen, path + "/layers"))
    return out


def check_layer_order(cfg, layer_list_, where):
    """A Functional config's `layers`, without Keras 3's op entries, are
    model.layers in order (names); recursively for nested models (a nested
    Sequential's config also lists its InputLayer, model.layers not)."""
    c = cfg["config"]
    entries = [e for e in c["layers"]
               if e.get("module") != "keras.src.ops.numpy"
               and not _is_op_entry(e)]
    names = [e.get("name", e["config"].get("name")) for e in entries]
    if cfg["class_name"] == "Sequential":
        assert entries[0]["class_name"] == "InputLayer", where
        names = names[1:]
    assert names == [x["name"] for x in layer_list_], (where, names)
    by_name = {x["name"]: x for x in layer_list_}
    for e, n in zip(entries[1:] if cfg["class_name"] == "Sequential"
                    else entries, names):
        if "layers" in by_name[n]:
            check_layer_order(e, by_name[n]["layers"], f"{where} > {n}")


# Layers whose Keras 3 config has no `trainable` either: the spatial
# dropouts' get_config returns only rate, seed, name, dtype (and
# data_format for 2D/3D) (keras/src/layers/regularization/spatial_dropout.py
# BaseSpatialDropout.get_config).
_LAYERS_WITHOUT_TRAINABLE = ("SpatialDropout1D", "SpatialDropout2D",
                             "SpatialDropout3D")


def _is_op_entry(e):
    """A Keras 3 op entry also in a legacy .h5 model_config (no `module`
    there): its config lacks the `trainable` every layer has (except the
    spatial dropouts)."""
    return (e["class_name"] not in ("InputLayer", "Sequential", "Functional")
            and e["class_name"] not in _LAYERS_WITHOUT_TRAINABLE
            and "trainable" not in e["config"])


# Order of a layer's subgroups in a .keras weights file that reproduces
# get_weights(): its own vars/<i> first, then its sublayers in this order.
# tf_keras names sublayers by their Python attribute (`_query_dense`),
# Keras 3 by the attribute without the underscore (see the README).
SUBGROUP_ORDER = [
    "vars", "cell", "forward_layer", "backward_layer", "layer",
    "query_dense", "key_dense", "value_dense", "output_dense",
    "_query_dense", "_key_dense", "_value_dense", "_output_dense",
]
SUBGROUP_RE = re.compile(
    r"((cell|forward_layer|backward_layer|layer|_?query_dense|_?key_dense|"
    r"_?value_dense|_?output_dense)/)*vars/\d+")


def _subgroup_key(name):
    return [(SUBGROUP_ORDER.index(x) if x in SUBGROUP_ORDER else 99,
             int(x) if x.isdigit() else x) for x in name.split("/")]


def keras_weight_arrays(path, case, container):
    """The datasets of a .keras / .weights.h5 in the documented order: the
    groups of `expected_keras_groups` (model.layers order, nested models in
    place), within a layer SUBGROUP_ORDER. Also asserts that the file has
    exactly those groups. Returns [(dataset path, array)]."""
    dialect = "tf_keras" if ".tf." in path.name else "keras3"
    want = expected_keras_groups(case["layers"][dialect], container, set())
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as z:
            data = io.BytesIO(z.read("model.weights.h5"))
    else:
        data = str(path)
    out = []
    with h5py.File(data, "r") as f:
        assert sorted(f.keys()) == ["layers", "vars"], path.name
        assert len(f["vars"]) == 0, path.name
        containers = {"layers"} | {p + "/layers" for p, e in want
                                   if "layers" in e}
        for c in containers:
            have = sorted(c + "/" + k for k in f[c].keys())
            expect = sorted(p for p, _ in want if p.rsplit("/", 1)[0] == c)
            assert have == expect, (path.name, have, expect)
        for p, entry in want:
            if "layers" in entry:
                assert sorted(f[p].keys()) == ["layers", "vars"], p
                assert len(f[p]["vars"]) == 0, p
                continue
            names = []
            f[p].visititems(lambda n, o: names.append(n)
                            if isinstance(o, h5py.Dataset) else None)
            for n in sorted(names, key=_subgroup_key):
                assert SUBGROUP_RE.fullmatch(n), (path.name, p, n)
                out.append((f"{p}/{n}", np.asarray(f[p][n])))
    return out


def check_keras_weights(path, case):
    """The weights file has exactly the expected groups, and reading the
    datasets group by group in that order gives get_weights()."""
    arrays = [a for _, a in keras_weight_arrays(path, case, "Functional")]
    weights = [np.asarray(w["data"], np.float32).reshape(w["shape"])
               for w in case["weights"]]
    assert len(arrays) == len(weights), (path.name, len(arrays), len(weights))
    for a, w in zip(arrays, weights):
        assert a.shape == w.shape and np.array_equal(a, w), path.name


def check_legacy_h5(path, case, facts):
    dialect = "tf_keras" if ".tf." in path.name else "keras3"
    top_names = [e["name"] for e in case["layers"][dialect]]
    arrays, seen = [], set()
    with h5py.File(str(path), "r") as f:
        mw = f["model_weights"]
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in mw.attrs["layer_names"]]
        assert names == top_names, (path.name, names, top_names)
        assert set(mw.keys()) == set(names) | {"top_level_model_weights"}
        for n in names:
            wn = [w.decode() if isinstance(w, bytes) else w
                  for w in mw[n].attrs["weight_names"]]
            for w in wn:
                facts["legacy_weight_names"].add((dialect, n, w))
                if w in seen:       # the same variable saved twice
                    continue
                seen.add(w)
                arrays.append(np.asarray(mw[n][w]))
    weights = [np.asarray(w["data"], np.float32).reshape(w["shape"])
               for w in case["weights"]]
    assert len(arrays) == len(weights), (path.name, len(arrays), len(weights))
    for a, w in zip(arrays, weights):
        assert a.shape == w.shape and np.array_equal(a, w), path.name


def _strip_ids(obj):
    if isinstance(obj, dict):
        return {k: _strip_ids(v) for k, v in obj.items()
                if k != "shared_object_id"}
    if isinstance(obj, list):
        return [_strip_ids(v) for v in obj]
    return obj


def _strip_for_h5(cfg):
    """What config.json becomes in a legacy .h5 model_config: the model and
    every entry of a Functional/Sequential `layers` list (recursively) lose
    module, registered_name, build_config, compile_config."""
    cfg = _strip_ids(cfg)

    def strip_entry(e):
        e = {k: v for k, v in e.items()
             if k not in ("module", "registered_name", "build_config",
                          "compile_config")}
        if e["class_name"] in ("Functional", "Sequential"):
            e["config"] = dict(e["config"])
            e["config"]["layers"] = [strip_entry(x)
                                     for x in e["config"]["layers"]]
        return e
    return strip_entry(cfg)


def run_generator(out_dir, cases, generated_by, check_formats, check_semantics,
                  extra_commands=None):
    """The command line of a whole-model generator: no argument writes every
    case (clearing out_dir but its README) and checks the files; case names
    write those cases; --check checks the files; --dump / --dump-full PATH...
    print files; extra_commands maps more flags to functions."""
    import shutil
    import sys
    import time
    args = sys.argv[1:]
    if args == ["--check"]:
        check_formats()
        check_semantics()
        return
    if len(args) == 1 and args[0] in (extra_commands or {}):
        extra_commands[args[0]]()
        return
    if args and args[0] in ("--dump", "--dump-full"):
        for p in args[1:]:
            dump(p, full=args[0] == "--dump-full")
        return
    unknown = [a for a in args if a not in cases]
    if unknown:
        sys.exit(f"unknown case(s) {unknown}; cases: {list(cases)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    if not args:
        for p in out_dir.iterdir():
            if p.name == "README.md":
                continue
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
    start = time.time()
    for name, case in cases.items():
        if args and name not in args:
            continue
        payload = make_case(name, case, out_dir, generated_by)
        diffs = payload["max_abs_diff_tf_keras_vs_keras3"]
        totals = {k: v["total"] for k, v in payload["params"].items()}
        print(f"{name:24s} params={totals} "
              f"tf-vs-k3={max(diffs) if diffs else None} "
              f"skipped={list(payload['skipped'])} "
              f"reload_failures={list(payload.get('reload_failures', []))}",
              flush=True)
    if not args:
        check_formats(verbose=False)
        check_semantics()
    total = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    count = sum(1 for p in out_dir.rglob("*") if p.is_file())
    print(f"{out_dir.relative_to(ROOT)}: {count} files, {total / 1e6:.2f} MB "
          f"({time.time() - start:.0f} s)")
