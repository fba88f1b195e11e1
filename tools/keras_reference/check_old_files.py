#!/usr/bin/env python3
"""Check tests/fixtures/old/ against the REAL Keras 2.0-2.2 code.

generate_old_files.py writes the old Keras files itself, from reading
Keras's sources. This script runs those sources: for each Keras 2 case it
builds the same model with the real Keras 2.x `Sequential` and layers and
saves it with the real `keras.models.save_model`, then compares the result
with the fixture:

  * the root `model_config` and `training_config` strings: byte-identical;
  * `keras_version`, `backend`;
  * the HDF5 tree: every group and dataset path, dataset shapes and dtypes,
    and the attribute values (`layer_names`, `weight_names`, ...),
    including `optimizer_weights`.

String TYPES are not compared (this run writes with h5py 3, which stores
strings differently from the h5py 2.x the fixtures emulate). For the Theano
case the TensorFlow-backend result is compared after removing ':0' and
setting backend 'theano' (Theano is not available). CuDNN layers cannot be
called without a GPU: for k224_cudnn the unbuilt layers' configs are
compared with the fixture's, and the layers are built inside their name
scope (as `Layer.__call__` does) to compare weight names and shapes.

Old Keras runs on TensorFlow 2.21's `tf.compat.v1` with graph mode, plus
stubs for what it imports but these checks never use (tf.contrib, scipy,
yaml, keras_applications, keras_preprocessing) and aliases for TF 1.x names
removed since (`keep_dims`, `tf.train.Optimizer`, ...). Nothing of this is
needed by the fixtures or by the generator; it is only the evidence that the
generator writes what Keras wrote.

Usage (from the repository root; needs the Keras sources from PyPI):

    mkdir -p /tmp/oldkeras
    for v in 2.0.8 2.1.0 2.1.6 2.2.2 2.2.4; do
        .venv-ref/bin/python -m pip download --no-deps --no-binary :all: \\
            keras==$v -d /tmp/oldkeras && tar xzf /tmp/oldkeras/Keras-$v.tar.gz -C /tmp/oldkeras
    done
    .venv-ref/bin/python tools/keras_reference/check_old_files.py /tmp/oldkeras [CASE...]

It prints one line per case and `PASS: n/n cases` (exit 0) or `FAIL`
(exit 1).
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OLD = ROOT / "tests" / "fixtures" / "old"

# case -> (Keras version, model code run in the old Keras). Must build the
# same models as generate_old_files.py's CASES.
CASES = {
    "k224_lstm_dense": ("2.2.4", """
m = Sequential()
m.add(L.LSTM(4, input_shape=(5, 3)))
m.add(L.Dense(3, activation='softmax'))
m.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
m._make_train_function()    # what fit() does first: creates Adam's weights
"""),
    "k222_bare_list_lstm_dense": ("2.2.2", """
m = Sequential()
m.add(L.LSTM(4, input_shape=(5, 3)))
m.add(L.Dense(3, activation='softmax'))
m.compile(optimizer='sgd', loss='categorical_crossentropy')
"""),
    "k208_gru_simple_rnn": ("2.0.8", """
m = Sequential()
m.add(L.GRU(4, return_sequences=True, input_shape=(5, 3)))
m.add(L.SimpleRNN(3))
m.add(L.Dense(2, activation='softmax'))
"""),
    "k216_theano_lstm_gru": ("2.1.6", """
m = Sequential()
m.add(L.LSTM(4, return_sequences=True, input_shape=(5, 3)))
m.add(L.GRU(3))
m.add(L.Dense(2, activation='softmax'))
"""),
    "k224_hard_sigmoid": ("2.2.4", """
m = Sequential()
m.add(L.LSTM(4, recurrent_activation='hard_sigmoid', return_sequences=True,
             input_shape=(5, 3)))
m.add(L.GRU(3, recurrent_activation='hard_sigmoid'))
m.add(L.Dense(2, activation='softmax'))
"""),
    "k224_cudnn": ("2.2.4", """
layers_only = True
a = L.CuDNNLSTM(4, return_sequences=True, input_shape=(5, 3))
b = L.CuDNNGRU(3)
c = L.Dense(2, activation='softmax')
m = [a, b, c]
import keras.backend as K
with K.name_scope(a.name):
    a.build((None, 5, 3))
with K.name_scope(b.name):
    b.build((None, 5, 4))
with K.name_scope(c.name):
    c.build((None, 3))
"""),
    "k224_options": ("2.2.4", """
m = Sequential()
m.add(L.LSTM(4, implementation=2, unroll=True, dropout=0.2, recurrent_dropout=0.1,
             kernel_regularizer=R.l2(0.01), recurrent_regularizer=R.l1(0.001),
             bias_regularizer=R.l1_l2(l1=0.01, l2=0.01),
             activity_regularizer=R.l2(0.001),
             kernel_constraint=C.max_norm(2.), recurrent_constraint=C.unit_norm(),
             bias_constraint=C.non_neg(), return_sequences=True, input_shape=(4, 3)))
m.add(L.GRU(3, implementation=2, unroll=True, dropout=0.3, recurrent_dropout=0.2,
            reset_after=True, recurrent_activation='sigmoid',
            kernel_constraint=C.min_max_norm(min_value=0.0, max_value=1.5),
            return_sequences=True))
m.add(L.SimpleRNN(2, unroll=True, dropout=0.1, recurrent_dropout=0.1))
m.add(L.Dense(2, kernel_regularizer=R.l2(0.01), kernel_constraint=C.max_norm(3.)))
"""),
    "k224_relu_simple_rnn": ("2.2.4", """
m = Sequential()
m.add(L.SimpleRNN(4, activation='relu', return_sequences=True, input_shape=(5, 3)))
m.add(L.Dropout(0.5))
m.add(L.SimpleRNN(3, activation='relu'))
m.add(L.Dense(2))
m.add(L.Activation('softmax'))
"""),
    "k224_stateful_lstm": ("2.2.4", """
m = Sequential()
m.add(L.LSTM(3, stateful=True, batch_input_shape=(1, 6, 2)))
m.add(L.Dense(2))
"""),
    "k224_bidirectional": ("2.2.4", """
m = Sequential()
m.add(L.Bidirectional(L.LSTM(3, return_sequences=True), input_shape=(5, 3)))
m.add(L.Bidirectional(L.LSTM(2), merge_mode='sum'))
m.add(L.Dense(2, activation='softmax'))
"""),
    "k224_embedding_mask": ("2.2.4", """
m = Sequential()
m.add(L.Embedding(10, 4, mask_zero=True, input_length=6))
m.add(L.LSTM(3))
m.add(L.Dense(1, activation='sigmoid'))
"""),
    "k224_time_distributed": ("2.2.4", """
m = Sequential()
m.add(L.LSTM(4, return_sequences=True, input_shape=(5, 3)))
m.add(L.TimeDistributed(L.Dense(3, activation='relu')))
m.add(L.Dropout(0.25))
m.add(L.TimeDistributed(L.Dense(2)))
m.add(L.Activation('softmax'))
"""),
    "k224_long_sequence": ("2.2.4", """
m = Sequential()
m.add(L.LSTM(4, input_shape=(8800, 1)))
m.add(L.Dense(1))
"""),
}

# The CNN, normalization, reshaping and Functional cases (added with the layers around the
# RNNs); old Keras calls tf.nn.convolution and the poolings with filter=, hence the tf.compat.v1
# patch below.
NEW = {
    "k224_cnn_lstm": ("2.2.4", """
m = Sequential()
m.add(L.Conv1D(4, 3, padding='same', activation='relu', input_shape=(12, 3)))
m.add(L.BatchNormalization())
m.add(L.MaxPooling1D(2))
m.add(L.LSTM(4))
m.add(L.Dense(2, activation='softmax'))
"""),
    "k216_cnn_gru": ("2.1.6", """
m = Sequential()
m.add(L.Conv1D(4, 3, activation='relu', input_shape=(10, 2)))
m.add(L.MaxPooling1D(pool_size=2))
m.add(L.GRU(3))
m.add(L.Dense(2, activation='softmax'))
"""),
    "k208_functional_cnn_lstm": ("2.0.8", """
inp = Input(shape=(10, 3))
x = L.Conv1D(4, 3, padding='same', activation='relu')(inp)
x = L.MaxPooling1D(2)(x)
x = L.LSTM(3, return_sequences=True)(x)
x = L.GlobalMaxPooling1D()(x)
m = Model(inp, L.Dense(1, activation='sigmoid')(x))
"""),
    "k224_batchnorm_rnn": ("2.2.4", """
m = Sequential()
m.add(L.LSTM(4, return_sequences=True, input_shape=(5, 3)))
m.add(L.BatchNormalization(scale=False, epsilon=0.01))
m.add(L.GRU(3))
m.add(L.BatchNormalization(momentum=0.9))
m.add(L.Dense(2, activation='softmax'))
"""),
    "k224_reshape_permute": ("2.2.4", """
m = Sequential()
m.add(L.Reshape((4, 6), input_shape=(24,)))
m.add(L.Permute((2, 1)))
m.add(L.SpatialDropout1D(0.2))
m.add(L.LSTM(3, return_sequences=True))
m.add(L.GlobalAveragePooling1D())
m.add(L.Dense(2, activation='softmax'))
"""),
    "k224_functional_merge": ("2.2.4", """
a = Input((5, 3)); b = Input((4, 2))
s = L.LSTM(4, return_sequences=True)(a)
mx = L.GlobalMaxPooling1D()(s); v = L.GlobalAveragePooling1D()(s)
g = L.GRU(4)(b)
x = L.Concatenate()([L.Add()([mx, g]), L.Multiply()([v, g])])
m = Model([a, b], L.Dense(2, activation='softmax')(x))
"""),
    "k224_encoder_decoder": ("2.2.4", """
encoder_inputs = Input(shape=(None, 3))
_, state_h, state_c = L.LSTM(4, return_state=True)(encoder_inputs)
decoder_inputs = Input(shape=(None, 2))
decoder_outputs, _, _ = L.LSTM(4, return_sequences=True, return_state=True)(
    decoder_inputs, initial_state=[state_h, state_c])
m = Model([encoder_inputs, decoder_inputs],
          L.Dense(3, activation='softmax')(decoder_outputs))
"""),
    "k224_td_conv2d": ("2.2.4", """
m = Sequential()
m.add(L.TimeDistributed(L.Conv2D(2, (3, 3), activation='relu'),
                        input_shape=(3, 6, 6, 1)))
m.add(L.TimeDistributed(L.MaxPooling2D((2, 2))))
m.add(L.TimeDistributed(L.Flatten()))
m.add(L.LSTM(3))
m.add(L.Dense(2, activation='softmax'))
"""),
}
CASES.update(NEW)
for _v, _name in (("2.1.0", "k210_gru_simple_rnn"),
                  ("2.1.6", "k216_gru_simple_rnn")):
    CASES[_name] = (_v, CASES["k208_gru_simple_rnn"][1])


# --------------------------------------------------------------------------
# Child: run one case inside an old Keras
# --------------------------------------------------------------------------

def install_shim(tmp):
    """Make Keras 2.0-2.2 importable on TF 2.21 / Python 3.11 / numpy 2."""
    import inspect
    import types
    import collections
    import collections.abc
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ["KERAS_HOME"] = str(Path(tmp) / "keras_home")
    import numpy as np
    import tensorflow as tf
    v1 = tf.compat.v1
    v1.disable_v2_behavior()
    for n in dir(v1):              # TF 1.x top-level names
        if not n.startswith("_") and not hasattr(tf, n):
            try:
                setattr(tf, n, getattr(v1, n))
            except Exception:  # noqa: BLE001
                pass
    for n in ["Session", "placeholder", "get_default_graph", "variable_scope",
              "random_uniform", "random_normal", "truncated_normal",
              "to_float", "to_int32", "log", "assign", "assign_add",
              "ConfigProto", "GPUOptions", "get_default_session",
              "global_variables", "variables_initializer",
              "is_variable_initialized", "report_uninitialized_variables",
              "sparse_placeholder", "py_func", "Print",
              "random_uniform_initializer", "gradients"]:
        if hasattr(v1, n):
            setattr(tf, n, getattr(v1, n))
    tf.train.Optimizer = v1.train.Optimizer
    for n in ["convolution", "conv2d", "conv1d", "max_pool", "avg_pool",
              "pool", "bias_add", "fused_batch_norm", "moments"]:
        if hasattr(v1.nn, n):
            setattr(tf.nn, n, getattr(v1.nn, n))

    def keep_dims(fn):
        def wrapped(*a, **k):
            if "keep_dims" in k:
                k["keepdims"] = k.pop("keep_dims")
            return fn(*a, **k)
        return wrapped
    for n in ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min",
              "reduce_prod", "reduce_all", "reduce_any", "reduce_logsumexp",
              "count_nonzero"]:
        setattr(tf, n, keep_dims(getattr(v1, n)))
    from tensorflow.python.framework import ops
    ops._TensorLike = tf.Tensor
    if not hasattr(ops, "is_dense_tensor_like"):
        ops.is_dense_tensor_like = lambda x: isinstance(
            x, (tf.Tensor, tf.Variable))
    from tensorflow.python.ops import control_flow_ops as cfo
    for n in ["while_loop", "cond", "group", "case", "tuple"]:
        if not hasattr(cfo, n) and hasattr(v1, n):
            setattr(cfo, n, getattr(v1, n))
    # Python 3.11 / numpy 2
    if not hasattr(inspect, "getargspec"):
        inspect.getargspec = lambda f: inspect.getfullargspec(f)[:4]
    for n in ["Iterable", "Mapping", "OrderedDict", "Sequence",
              "MutableMapping", "Callable"]:
        if not hasattr(collections, n):
            setattr(collections, n, getattr(collections.abc, n))
    if not hasattr(np, "string_"):
        np.string_ = np.bytes_

    class Any(types.ModuleType):
        """A module whose every attribute is another such module."""
        def __getattr__(self, n):
            if n.startswith("__"):
                raise AttributeError(n)
            m = Any(self.__name__ + "." + n)
            sys.modules[m.__name__] = m
            setattr(self, n, m)
            return m

        def __call__(self, *a, **k):
            return None

    for name in ["keras_applications", "keras_preprocessing",
                 "tensorflow.contrib", "tensorflow.contrib.tensorboard",
                 "tensorflow.contrib.tensorboard.plugins",
                 "tensorflow.contrib.tensorboard.plugins.projector",
                 "tensorflow.contrib.cudnn_rnn",
                 "tensorflow.contrib.cudnn_rnn.python",
                 "tensorflow.contrib.cudnn_rnn.python.ops",
                 "tensorflow.contrib.cudnn_rnn.python.ops.cudnn_rnn_ops"]:
        sys.modules[name] = Any(name)
        sys.modules[name].__path__ = []
    sys.modules["yaml"] = types.ModuleType("yaml")
    sp, sps = types.ModuleType("scipy"), types.ModuleType("scipy.sparse")
    sps.issparse = lambda x: False
    sp.sparse = sps
    sys.modules["scipy"], sys.modules["scipy.sparse"] = sp, sps
    for name in ["keras.applications", "keras.datasets", "keras.preprocessing",
                 "keras.wrappers", "keras.wrappers.scikit_learn"]:
        sys.modules[name] = types.ModuleType(name)


def child(case, out):
    install_shim(Path(out).parent)
    import warnings
    warnings.filterwarnings("ignore")
    import keras
    from keras import layers, regularizers, constraints
    from keras.models import Sequential
    from keras.models import Model
    ns = dict(keras=keras, L=layers, R=regularizers, C=constraints,
              Sequential=Sequential, Model=Model, Input=layers.Input)
    exec(CASES[case][1], ns)  # noqa: S102 - our own snippets
    m = ns["m"]
    if ns.get("layers_only"):
        import keras.backend as K
        json.dump({
            "keras_version": keras.__version__,
            "layers": [{"class_name": l.__class__.__name__,
                        "config": l.get_config()} for l in m],
            "weights": [[w.name, list(K.int_shape(w))] for l in m
                        for w in l.weights]}, open(out, "w"))
    else:
        keras.models.save_model(m, out)


# --------------------------------------------------------------------------
# Parent: compare
# --------------------------------------------------------------------------

def tree(path, theano=False):
    import h5py
    import numpy as np
    rows = []
    with h5py.File(path, "r") as f:
        def val(o, a):
            v = o.attrs[a]
            if isinstance(v, np.ndarray):
                v = [x.decode() if isinstance(x, bytes) else x
                     for x in v.tolist()]
            if isinstance(v, bytes):
                v = v.decode()
            if theano and a == "weight_names":
                v = [x.replace(":0", "") for x in v]
            if theano and a == "backend":
                v = "theano"
            return v

        def visit(n, o):
            if theano:
                n = n.replace(":0", "")
            row = [n, {a: val(o, a) for a in sorted(o.attrs)}]
            if isinstance(o, h5py.Dataset):
                row += [list(o.shape), o.dtype.str]
            rows.append(row)
        rows.append(["/", {a: val(f, a) for a in sorted(f.attrs)}])
        f.visititems(visit)
    return rows


def compare(case, got):
    import h5py
    fixture = OLD / f"{case}.h5"
    problems = []
    with h5py.File(fixture, "r") as f:
        mine_cfg = f.attrs["model_config"]
        mine_cfg = mine_cfg.decode() if isinstance(mine_cfg, bytes) \
            else mine_cfg
        if case == "k224_cudnn":
            real = json.load(open(got))
            mine = json.loads(mine_cfg)["config"]["layers"]
            if json.dumps(real["layers"]) != json.dumps(mine):
                problems.append("layer configs differ")
            mine_w = []
            for name in [x.decode() for x in f["model_weights"].attrs[
                    "layer_names"]]:
                g = f["model_weights"][name]
                for wn in g.attrs["weight_names"]:
                    wn = wn.decode()
                    mine_w.append([wn, list(g[wn].shape)])
            if real["weights"] != mine_w:
                problems.append(f"weights differ: {real['weights']} vs "
                                f"{mine_w}")
            return problems
    theano = "theano" in case
    with h5py.File(got, "r") as r, h5py.File(fixture, "r") as f:
        for key in ("model_config", "training_config", "keras_version",
                    "backend"):
            a = r.attrs.get(key)
            b = f.attrs.get(key)
            a = a.decode() if isinstance(a, bytes) else a
            b = b.decode() if isinstance(b, bytes) else b
            if key == "backend" and theano:
                a = "theano"
            if a != b:
                problems.append(f"{key} differs:\n  keras: {a}\n  mine:  {b}")
    ta, tb = tree(got, theano), tree(fixture)
    if ta != tb:
        for a, b in zip(ta, tb):
            if a != b:
                problems.append(f"tree differs: keras {a} / mine {b}")
                break
        if len(ta) != len(tb):
            problems.append(f"tree sizes {len(ta)} vs {len(tb)}")
    return problems


def main():
    if sys.argv[1:2] == ["--child"]:
        src, case, out = sys.argv[2:5]
        sys.path.insert(0, src)
        child(case, out)
        return
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    src_dir = Path(sys.argv[1])
    only = sys.argv[2:] or list(CASES)
    passed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for case in only:
            version, _ = CASES[case]
            src = src_dir / f"Keras-{version}"
            if not (src / "keras" / "__init__.py").exists():
                sys.exit(f"{src} is missing (see the usage in this file)")
            out = Path(tmp) / (f"{case}.json" if case == "k224_cudnn"
                               else f"{case}.h5")
            proc = subprocess.run(
                [sys.executable, "-W", "ignore", __file__, "--child",
                 str(src), case, str(out)],
                capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"FAIL {case:28s} Keras {version}: child failed:\n"
                      + proc.stderr[-3000:])
                continue
            problems = compare(case, out)
            if problems:
                print(f"FAIL {case:28s} Keras {version}")
                for p in problems:
                    print("     " + p)
            else:
                passed += 1
                what = ("layer configs, weight names and shapes" if
                        case == "k224_cudnn" else
                        "model_config/training_config bytes, HDF5 tree")
                print(f"ok   {case:28s} Keras {version}: {what} identical")
    total = len(only)
    print(f"{'PASS' if passed == total else 'FAIL'}: {passed}/{total} cases")
    sys.exit(0 if passed == total else 1)


if __name__ == "__main__":
    main()
