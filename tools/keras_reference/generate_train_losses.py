#!/usr/bin/env python3
"""Fixtures of seqnn's training losses and metrics (tests/train_losses.rs, tests/train_metrics.rs),
from tf_keras 2.21 and Keras 3.15 (TensorFlow backend), through the paths `fit` takes:

- losses: tf_keras's `compile_utils.LossesContainer` (what `Model.compute_loss` calls) and
  Keras 3's `trainers.compile_utils.CompileLoss` (what its `Model.compute_loss` calls), inside a
  `tf.function` as `fit` runs them (graph mode: Grappler rewrites some arithmetic, such as
  tf_keras's `log(1 - p + eps)` into `log((1 + eps) - p)`), with the gradient from
  `tf.GradientTape` with respect to `y_pred`, or to the logits for the cases whose output is a
  sigmoid or softmax (made by the library's own `activations.sigmoid` / `softmax`, so that the
  output carries `_keras_logits` and its op type, as a Dense layer's output does). A mask rides
  on `y_pred` as `_keras_mask`, as a return_sequences RNN's output carries it.
- fit: real models (Embedding(mask_zero) -> LSTM -> Dense(softmax), Dense(sigmoid),
  TimeDistributed(Dense(softmax)), ...) run as `train_step` runs them (`model(x,
  training=True)`, `model.compute_loss`, in a `tf.function`): the loss, the gradient of the
  last Dense layer's bias, and the logits (or probabilities) seqnn needs to recompute them.
- metrics: tf_keras's `compile_utils.MetricsContainer` and Keras 3's `CompileMetrics`, updated
  in a `tf.function` on three batches (the last one smaller, as an epoch's last batch), the
  result after each, and the name Keras logs.
- names: which loss and metric strings each Keras accepts, what they resolve to and the name
  each logs under.

Writes tests/fixtures/train/losses/*.json and tests/fixtures/train/metrics/*.json; each file
names this script and the versions. Inputs are drawn from np.random.default_rng(crc32(case)).

    /work/main/.venv-ref/bin/python tools/keras_reference/generate_train_losses.py
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"

import json  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
import keras  # noqa: E402
from tf_keras.src.engine import compile_utils as tf_compile  # noqa: E402
from keras.src.trainers import compile_utils as k3_compile  # noqa: E402

warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[2]
OUT_LOSSES = ROOT / "tests" / "fixtures" / "train" / "losses"
OUT_METRICS = ROOT / "tests" / "fixtures" / "train" / "metrics"
BY = "tools/keras_reference/generate_train_losses.py"
VERSIONS = {
    "tensorflow": tf.__version__,
    "tf_keras": tf_keras.__version__,
    "keras": keras.__version__,
    "numpy": np.__version__,
}
LIBS = {"tf": tf_keras, "k3": keras}
B, T, C = 4, 5, 3


def num(x):
    """A float for JSON: NaN (which JSON cannot hold) as null."""
    x = float(x)
    return None if np.isnan(x) else x


def arr(a):
    a = np.asarray(a)
    if a.dtype == bool:
        return {"shape": list(a.shape), "data": a.ravel().tolist()}
    return {"shape": list(a.shape), "data": [num(x) for x in a.astype(np.float64).ravel()]}


def error_text(e):
    """The error's type and the last line of its message (a traced function's error ends with
    the original message, after the "in user code:" traceback)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return f"{type(e).__name__}: {(lines[-1] if lines else '')[:300]}"


def rng_for(case):
    return np.random.default_rng(zlib.crc32(case.encode()))


def f32(x):
    return np.asarray(x, np.float32)


# ---------------------------------------------------------------------------------------------
# Losses through the compiled-loss path


def make_loss(K, spec):
    """A loss object of library K from {"class_name", "config"}, or the string itself."""
    if isinstance(spec, str):
        return spec
    return getattr(K.losses, spec["class_name"])(**spec.get("config", {}))


def set_mask(lib, t, mask):
    if lib == "k3":
        keras.src.backend.set_keras_mask(t, mask)
    else:
        t._keras_mask = mask


def compiled_loss(lib, spec, y_true, x, mask=None, sample_weight=None, activation=None):
    """The loss `fit` computes for output `x` (or activation(x)) and its gradient wrt `x`."""
    K = LIBS[lib]
    loss = make_loss(K, spec)
    if lib == "tf":
        container = tf_compile.LossesContainer(loss)
    else:
        container = k3_compile.CompileLoss(loss)

    @tf.function
    def run(yt, xt, m, sw):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            if activation == "sigmoid":
                yp = K.activations.sigmoid(xt)
            elif activation == "softmax":
                yp = K.activations.softmax(xt)
            else:
                yp = tf.identity(xt)
            if m is not None:
                set_mask(lib, yp, m)
            value = container(yt, yp, sample_weight=sw)
        return value, tape.gradient(value, xt)

    try:
        value, grad = run(
            tf.constant(f32(y_true)),
            tf.constant(f32(x)),
            None if mask is None else tf.constant(np.asarray(mask, bool)),
            None if sample_weight is None else tf.constant(f32(sample_weight)),
        )
    except Exception as e:  # noqa: BLE001 - the error is the fixture
        return {"error": error_text(e)}
    out = {"value": num(value.numpy())}
    out["grad"] = None if grad is None else arr(grad.numpy())
    return out


def loss_case(name, spec, y_true, x, mask=None, sample_weight=None, activation=None, note=None):
    case = {
        "case": name,
        "loss": spec,
        "y_true": arr(f32(y_true)),
        ("logits" if activation else "y_pred"): arr(f32(x)),
    }
    if activation:
        case["activation"] = activation
    if mask is not None:
        case["mask"] = arr(np.asarray(mask, bool))
    if sample_weight is not None:
        case["sample_weight"] = arr(f32(sample_weight))
    if note:
        case["note"] = note
    for lib in ("tf", "k3"):
        case[lib] = compiled_loss(lib, spec, y_true, x, mask, sample_weight, activation)
    return case


def random_mask(rng, shape):
    """A padding mask: each row keeps a prefix of 1..T steps, one row keeps all of them."""
    b, t = shape
    lengths = rng.integers(1, t + 1, size=b)
    lengths[0] = t
    return np.arange(t)[None, :] < lengths[:, None]


def weighting_cases(prefix, spec, make_true, make_pred, rng, activation=None, three_d=True):
    """The same loss on 2-D and 3-D outputs, with and without mask and sample weights."""
    cases = []
    yt, yp = make_true(rng, (B,)), make_pred(rng, (B,))
    cases.append(loss_case(f"{prefix}_2d", spec, yt, yp, activation=activation))
    sw = rng.uniform(0.2, 2.0, size=(B,))
    cases.append(loss_case(f"{prefix}_2d_sw", spec, yt, yp, sample_weight=sw,
                           activation=activation))
    if not three_d:
        return cases
    yt, yp = make_true(rng, (B, T)), make_pred(rng, (B, T))
    mask = random_mask(rng, (B, T))
    cases.append(loss_case(f"{prefix}_3d", spec, yt, yp, activation=activation))
    cases.append(loss_case(f"{prefix}_3d_mask", spec, yt, yp, mask=mask, activation=activation))
    cases.append(loss_case(f"{prefix}_3d_sw_per_sample", spec, yt, yp, sample_weight=sw,
                           activation=activation,
                           note="Keras 3 multiplies (batch,) weights into (batch, timesteps) "
                                "losses along the timesteps: an error when they differ"))
    sw2 = rng.uniform(0.2, 2.0, size=(B, T))
    cases.append(loss_case(f"{prefix}_3d_mask_sw", spec, yt, yp, mask=mask, sample_weight=sw2,
                           activation=activation))
    cases.append(loss_case(f"{prefix}_3d_mask_sw_per_sample", spec, yt, yp, mask=mask,
                           sample_weight=sw, activation=activation))
    return cases


def uniform(lo, hi, width=C):
    return lambda rng, lead: rng.uniform(lo, hi, size=lead + (width,))


def binary(width=C):
    return lambda rng, lead: rng.integers(0, 2, size=lead + (width,)).astype(np.float32)


def one_hot(width=C):
    return lambda rng, lead: np.eye(width, dtype=np.float32)[rng.integers(0, width, size=lead)]


def sparse(width=C, trailing=False):
    def make(rng, lead):
        y = rng.integers(0, width, size=lead).astype(np.float32)
        return y[..., None] if trailing else y
    return make


def probabilities(width=C):
    def make(rng, lead):
        p = rng.uniform(0.05, 1.0, size=lead + (width,))
        return p / p.sum(-1, keepdims=True)
    return make


def normal(scale, width=C):
    return lambda rng, lead: rng.normal(0.0, scale, size=lead + (width,))


def saturated(width=C):
    """Probabilities at and near 0 and 1: the clipping at epsilon shows."""
    def make(rng, lead):
        pool = np.array([0.0, 1e-9, 5e-8, 1e-7, 2e-7, 1e-3, 0.5, 0.999, 0.9999999, 1.0])
        return rng.choice(pool, size=lead + (width,))
    return make


def loss_files():
    files = {}

    def add(file, cases):
        files.setdefault(file, []).extend(cases)

    reg = [
        ("mse", "mean_squared_error"),
        ("mae", "mean_absolute_error"),
        ("mape", "mean_absolute_percentage_error"),
        ("msle", "mean_squared_logarithmic_error"),
        ("logcosh", "log_cosh"),
    ]
    for file, name in reg:
        rng = rng_for(file)
        add(file, weighting_cases(file, name, uniform(-2, 2), uniform(-2, 2), rng))
    # MAPE near zero targets (the epsilon floor), MSLE with negative values (the floor at eps).
    rng = rng_for("mape_small")
    yt = rng.choice([0.0, 1e-9, -1e-8, 0.5], size=(B, C))
    add("mape", [loss_case("mape_small_targets", "mape", yt, rng.uniform(-1, 1, (B, C)))])
    rng = rng_for("logcosh_large")
    add("logcosh", [loss_case("logcosh_large", "log_cosh", rng.uniform(-30, 30, (B, C)),
                              rng.uniform(-30, 30, (B, C)))])

    for delta in (1.0, 0.5, 2.5):
        spec = {"class_name": "Huber", "config": {"delta": delta}}
        rng = rng_for(f"huber_{delta}")
        add("huber", weighting_cases(f"huber_delta{delta}", spec, uniform(-3, 3), uniform(-3, 3),
                                     rng, three_d=delta == 1.0))

    rng = rng_for("kld")
    add("kld", weighting_cases("kld", "kl_divergence", probabilities(), probabilities(), rng))
    add("kld", [loss_case("kld_saturated", "kld", saturated()(rng, (B,)), saturated()(rng, (B,)))])
    rng = rng_for("poisson")
    add("poisson", weighting_cases("poisson", "poisson", uniform(0, 3), uniform(0.01, 3), rng))
    add("poisson", [loss_case("poisson_zero_pred", "poisson", uniform(0, 3)(rng, (B,)),
                              rng.choice([0.0, 1e-8, 0.5], size=(B, C)))])

    for file, name in (("hinge", "hinge"), ("squared_hinge", "squared_hinge"),
                       ("categorical_hinge", "categorical_hinge")):
        rng = rng_for(file)
        labels = one_hot() if file == "categorical_hinge" else binary()
        add(file, weighting_cases(f"{file}_01", name, labels, uniform(-2, 2), rng))
        signs = lambda rng, lead: rng.choice([-1.0, 1.0], size=lead + (C,))  # noqa: E731
        add(file, [loss_case(f"{file}_pm1", name, signs(rng, (B,)), uniform(-2, 2)(rng, (B,)))])
        # Labels that are not all 0/1 are used as they are (only an all-binary batch converts).
        mixed = rng.choice([0.0, 1.0], size=(B, C))
        mixed[0, 0] = -1.0
        add(file, [loss_case(f"{file}_mixed", name, mixed, uniform(-2, 2)(rng, (B,)))])

    for axis in (-1, 1):
        spec = {"class_name": "CosineSimilarity", "config": {"axis": axis}}
        rng = rng_for(f"cosine_{axis}")
        if axis == -1:
            add("cosine_similarity", weighting_cases("cosine", spec, uniform(-1, 1),
                                                     uniform(-1, 1), rng))
            zero = uniform(-1, 1)(rng, (B,))
            zero[1] = 0.0
            zero[2] = 1e-5
            add("cosine_similarity", [loss_case("cosine_tiny_vectors", spec,
                                                uniform(-1, 1)(rng, (B,)), zero)])
        else:
            add("cosine_similarity", [loss_case(
                "cosine_axis1_3d", spec, uniform(-1, 1)(rng, (B, T)),
                uniform(-1, 1)(rng, (B, T)))])

    # Binary crossentropy: probabilities, saturation, options, logits.
    rng = rng_for("bce")
    bce = "binary_crossentropy"
    add("binary_crossentropy", weighting_cases("bce", bce, binary(), uniform(0.01, 0.99), rng))
    add("binary_crossentropy", [
        loss_case("bce_saturated", bce, binary()(rng, (B, T)), saturated()(rng, (B, T))),
        loss_case("bce_soft_targets", bce, uniform(0, 1)(rng, (B,)), uniform(0.01, 0.99)(rng, (B,))),
    ])
    smooth = {"class_name": "BinaryCrossentropy", "config": {"label_smoothing": 0.2}}
    add("binary_crossentropy", weighting_cases("bce_smooth", smooth, binary(),
                                               uniform(0.01, 0.99), rng, three_d=False))
    logits = {"class_name": "BinaryCrossentropy", "config": {"from_logits": True}}
    add("binary_crossentropy", weighting_cases("bce_from_logits", logits, binary(), normal(4),
                                               rng))
    smooth_logits = {"class_name": "BinaryCrossentropy",
                     "config": {"from_logits": True, "label_smoothing": 0.1}}
    add("binary_crossentropy", [loss_case("bce_from_logits_smooth", smooth_logits,
                                          binary()(rng, (B,)), normal(4)(rng, (B,)))])
    # A sigmoid output: Keras takes its logits (_keras_logits / op type Sigmoid).
    add("binary_crossentropy", weighting_cases("bce_sigmoid_output", bce, binary(), normal(12),
                                               rng, activation="sigmoid"))
    add("binary_crossentropy", [
        loss_case("bce_sigmoid_output_smooth", smooth, binary()(rng, (B,)),
                  normal(12)(rng, (B,)), activation="sigmoid"),
        loss_case("bce_sigmoid_output_from_logits_true", logits, binary()(rng, (B,)),
                  normal(12)(rng, (B,)), activation="sigmoid",
                  note="from_logits=True on a sigmoid output: Keras warns and uses the logits"),
        # y_true (B, T) for a (B, T, 1) output: Keras squeezes y_pred, which loses the logits.
        loss_case("bce_sigmoid_output_squeezed", bce, binary(1)(rng, (B, T))[..., 0],
                  normal(12, 1)(rng, (B, T)), activation="sigmoid",
                  note="y_true one axis shorter: y_pred is squeezed and the probability "
                       "formula runs"),
        loss_case("bce_sigmoid_output_2d_rank1_targets", bce, binary(1)(rng, (B,))[..., 0],
                  normal(12, 1)(rng, (B,)), activation="sigmoid",
                  note="(B,) targets for a (B, 1) output are expanded: the logits stay"),
        # A softmax output with binary crossentropy: Keras takes the softmax's logits too.
        loss_case("bce_softmax_output", bce, binary()(rng, (B,)), normal(6)(rng, (B,)),
                  activation="softmax",
                  note="binary_crossentropy on a softmax output: Keras computes "
                       "sigmoid_cross_entropy_with_logits of the softmax's inputs"),
    ])

    rng = rng_for("cce")
    cce = "categorical_crossentropy"
    add("categorical_crossentropy", weighting_cases("cce", cce, one_hot(), probabilities(), rng))
    add("categorical_crossentropy", [
        loss_case("cce_unnormalized", cce, one_hot()(rng, (B,)), uniform(0.01, 2)(rng, (B,))),
        loss_case("cce_saturated", cce, one_hot()(rng, (B, T)), saturated()(rng, (B, T))),
        loss_case("cce_soft_targets", cce, probabilities()(rng, (B,)),
                  probabilities()(rng, (B,))),
    ])
    smooth = {"class_name": "CategoricalCrossentropy", "config": {"label_smoothing": 0.1}}
    add("categorical_crossentropy", weighting_cases("cce_smooth", smooth, one_hot(),
                                                    probabilities(), rng, three_d=False))
    logits = {"class_name": "CategoricalCrossentropy", "config": {"from_logits": True}}
    add("categorical_crossentropy", weighting_cases("cce_from_logits", logits, one_hot(),
                                                    normal(4), rng))
    add("categorical_crossentropy", [
        loss_case("cce_from_logits_soft_targets", logits, uniform(0, 1)(rng, (B,)),
                  normal(3)(rng, (B,)),
                  note="targets that do not sum to 1: TensorFlow's gradient is "
                       "softmax - y_true all the same"),
    ])
    add("categorical_crossentropy", weighting_cases("cce_softmax_output", cce, one_hot(),
                                                    normal(12), rng, activation="softmax"))
    add("categorical_crossentropy", [
        loss_case("cce_softmax_output_smooth", smooth, one_hot()(rng, (B,)),
                  normal(12)(rng, (B,)), activation="softmax"),
        loss_case("cce_sigmoid_output", cce, one_hot()(rng, (B,)), normal(6)(rng, (B,)),
                  activation="sigmoid",
                  note="categorical_crossentropy on a sigmoid output: Keras computes "
                       "softmax_cross_entropy_with_logits of the sigmoid's inputs"),
    ])

    rng = rng_for("scce")
    scce = "sparse_categorical_crossentropy"
    add("sparse_categorical_crossentropy", weighting_cases("scce", scce, sparse(),
                                                           probabilities(), rng))
    add("sparse_categorical_crossentropy", [
        loss_case("scce_trailing_1", scce, sparse(trailing=True)(rng, (B, T)),
                  probabilities()(rng, (B, T))),
        loss_case("scce_2d_trailing_1", scce, sparse(trailing=True)(rng, (B,)),
                  probabilities()(rng, (B,))),
        loss_case("scce_unnormalized", scce, sparse()(rng, (B,)), uniform(0.01, 2)(rng, (B,))),
        loss_case("scce_saturated", scce, sparse()(rng, (B, T)), saturated()(rng, (B, T))),
    ])
    logits = {"class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": True}}
    add("sparse_categorical_crossentropy", weighting_cases("scce_from_logits", logits, sparse(),
                                                           normal(4), rng))
    add("sparse_categorical_crossentropy", weighting_cases(
        "scce_softmax_output", scce, sparse(), normal(12), rng, activation="softmax"))
    for ignore in (0, 2):
        spec = {"class_name": "SparseCategoricalCrossentropy", "config": {"ignore_class": ignore}}
        yt = sparse()(rng, (B, T))
        add("sparse_categorical_crossentropy", [
            loss_case(f"scce_ignore{ignore}_3d", spec, yt, probabilities()(rng, (B, T))),
            loss_case(f"scce_ignore{ignore}_3d_mask", spec, yt, probabilities()(rng, (B, T)),
                      mask=random_mask(rng, (B, T))),
            loss_case(f"scce_ignore{ignore}_softmax_output", spec, yt, normal(12)(rng, (B, T)),
                      activation="softmax",
                      note="Keras 3 masks y_pred with ops.where before the loss, which loses "
                           "the logits: the probability formula runs"),
        ])
    spec = {"class_name": "SparseCategoricalCrossentropy",
            "config": {"ignore_class": -1, "from_logits": True}}
    yt = sparse()(rng, (B, T))
    yt[1, 2:] = -1
    add("sparse_categorical_crossentropy", [
        loss_case("scce_ignore_minus1_from_logits", spec, yt, normal(3)(rng, (B, T)),
                  sample_weight=rng.uniform(0.2, 2.0, (B, T))),
    ])

    # A batch whose every step is masked.
    rng = rng_for("masked_out")
    add("masked_out", [
        loss_case("mse_all_masked", "mse", uniform(-1, 1)(rng, (B, T)), uniform(-1, 1)(rng, (B, T)),
                  mask=np.zeros((B, T), bool),
                  note="tf_keras divides by the zero count of valid steps: NaN; Keras 3: 0"),
        loss_case("scce_all_ignored", {"class_name": "SparseCategoricalCrossentropy",
                                       "config": {"ignore_class": 1}},
                  np.ones((B, T), np.float32), probabilities()(rng, (B, T))),
    ])
    return files


# ---------------------------------------------------------------------------------------------
# Real models, as train_step runs them


def fit_case(name, build, x, y, loss, last, activation, uses, note, sample_weight=None,
             mask_from=None, head_scale=4.0):
    """`build(K)` returns a built model; `last` names its last Dense layer; `uses` is "logits"
    or "probabilities": which of the two arrays the test recomputes the loss from."""
    case = {"case": name, "loss": loss, "activation": activation, "note": note,
            "x": arr(x), "y_true": arr(f32(y))}
    if sample_weight is not None:
        case["sample_weight"] = arr(f32(sample_weight))
    weights = None
    for lib in ("tf", "k3"):
        K = LIBS[lib]
        K.backend.clear_session()
        model = build(K)
        if weights is None:
            rng = rng_for(name + "_weights")
            weights = [rng.uniform(-1, 1, size=w.shape).astype(np.float32) * 3
                       for w in model.get_weights()]
            # The last layer's kernel and bias, larger: saturated outputs show which formula ran.
            weights[-2:] = [w * np.float32(head_scale) for w in weights[-2:]]
        model.set_weights(weights)
        model.compile(optimizer="sgd", loss=make_loss(K, loss))
        dense = model.get_layer(last)
        inner = getattr(dense, "layer", dense)

        @tf.function
        def step(xt, yt, sw):
            with tf.GradientTape() as tape:
                yp = model(xt, training=True)
                value = model.compute_loss(x=xt, y=yt, y_pred=yp, sample_weight=sw)
            return value, tape.gradient(value, inner.bias), yp

        sw = None if sample_weight is None else tf.constant(f32(sample_weight))
        value, bias_grad, y_pred = step(tf.constant(x), tf.constant(f32(y)), sw)
        # The logits: the last Dense layer's input through its kernel and bias.
        feed = K.Model(model.inputs, dense.input)
        h = feed(tf.constant(x), training=False).numpy().astype(np.float64)
        z = h @ inner.kernel.numpy().astype(np.float64) + inner.bias.numpy()
        out = {"value": float(value.numpy()), "bias_grad": arr(bias_grad.numpy()),
               "logits": arr(z), "y_pred": arr(y_pred.numpy())}
        if mask_from is not None:
            out["mask"] = arr(x != 0)
        case[lib] = out
    case["uses"] = uses
    return case


def fit_files():
    rng = rng_for("fit")
    cases = []
    ids = rng.integers(1, 10, size=(B, T))
    for b, n in enumerate([5, 3, 1, 4]):
        ids[b, n:] = 0

    def embed_lstm_dense(act):
        def build(K):
            L = K.layers
            model = K.Sequential([
                L.Embedding(10, 4, mask_zero=True),
                L.LSTM(6, return_sequences=True),
                L.Dense(C, activation=act, name="head"),
            ])
            model.build((None, T))
            return model
        return build

    y_sparse = rng.integers(0, C, size=(B, T)).astype(np.float32)
    cases.append(fit_case(
        "fit_embedding_lstm_softmax_scce", embed_lstm_dense("softmax"), ids.astype(np.int32),
        y_sparse, "sparse_categorical_crossentropy", "head", "softmax", "logits",
        "Embedding(mask_zero) -> LSTM(return_sequences) -> Dense(softmax): the mask reaches the "
        "loss and the loss uses the logits", mask_from="x"))
    cases.append(fit_case(
        "fit_embedding_lstm_softmax_cce_sw", embed_lstm_dense("softmax"), ids.astype(np.int32),
        np.eye(C, dtype=np.float32)[y_sparse.astype(int)], "categorical_crossentropy", "head",
        "softmax", "logits", "the same with one-hot targets and (batch, timesteps) weights",
        sample_weight=rng.uniform(0.2, 2.0, (B, T)), mask_from="x"))
    cases.append(fit_case(
        "fit_embedding_lstm_softmax_scce_ignore", embed_lstm_dense("softmax"),
        ids.astype(np.int32), y_sparse,
        {"class_name": "SparseCategoricalCrossentropy", "config": {"ignore_class": 0}},
        "head", "softmax", "logits_tf_probabilities_k3",
        "ignore_class: tf_keras uses the logits, Keras 3 the probabilities", mask_from="x",
        head_scale=8.0))

    def dense(units, act, shape):
        def build(K):
            model = K.Sequential([K.layers.Dense(units, activation=act, name="head")])
            model.build((None,) + shape)
            return model
        return build

    x2 = rng.normal(size=(B, 4)).astype(np.float32)
    x3 = rng.normal(size=(B, T, 4)).astype(np.float32)
    cases.append(fit_case(
        "fit_dense_sigmoid_bce", dense(1, "sigmoid", (4,)), x2,
        rng.integers(0, 2, size=(B,)).astype(np.float32), "binary_crossentropy", "head",
        "sigmoid", "logits", "Dense(1, sigmoid) with (batch,) targets: the logits"))
    cases.append(fit_case(
        "fit_dense_sigmoid_bce_sequence_squeezed", dense(1, "sigmoid", (T, 4)), x3,
        rng.integers(0, 2, size=(B, T)).astype(np.float32), "binary_crossentropy", "head",
        "sigmoid", "probabilities",
        "Dense(1, sigmoid) on sequences with (batch, timesteps) targets: Keras squeezes the "
        "output, which loses the logits"))
    cases.append(fit_case(
        "fit_dense_sigmoid_bce_sequence", dense(1, "sigmoid", (T, 4)), x3,
        rng.integers(0, 2, size=(B, T, 1)).astype(np.float32), "binary_crossentropy", "head",
        "sigmoid", "logits", "the same with (batch, timesteps, 1) targets: the logits"))
    cases.append(fit_case(
        "fit_dense_softmax_bce", dense(2, "softmax", (4,)), x2,
        rng.integers(0, 2, size=(B, 2)).astype(np.float32), "binary_crossentropy", "head",
        "softmax", "logits",
        "binary_crossentropy on a softmax output: Keras runs the sigmoid formula on the "
        "softmax's logits"))
    cases.append(fit_case(
        "fit_dense_sigmoid_cce", dense(C, "sigmoid", (4,)), x2,
        np.eye(C, dtype=np.float32)[rng.integers(0, C, size=B)], "categorical_crossentropy",
        "head", "sigmoid", "logits",
        "categorical_crossentropy on a sigmoid output: the softmax formula on the logits"))

    def time_distributed(K):
        model = K.Sequential([K.layers.TimeDistributed(
            K.layers.Dense(C, activation="softmax"), name="head")])
        model.build((None, T, 4))
        return model

    cases.append(fit_case(
        "fit_time_distributed_softmax_cce", time_distributed, x3,
        np.eye(C, dtype=np.float32)[rng.integers(0, C, size=(B, T))], "categorical_crossentropy",
        "head", "softmax", "probabilities",
        "TimeDistributed(Dense(softmax)): the output is reshaped, so Keras uses the "
        "probabilities"))
    return {"fit": cases}


# ---------------------------------------------------------------------------------------------
# Metrics through the compiled-metrics path


def make_metric(K, spec):
    if isinstance(spec, str):
        return spec
    return getattr(K.metrics, spec["class_name"])(**spec.get("config", {}))


def compiled_metric(lib, spec, batches, weighted):
    K = LIBS[lib]
    K.backend.clear_session()  # metric names are unique per session: auc, auc_1, ...
    metric = make_metric(K, spec)
    lists = ([metric], None) if not weighted else (None, [metric])
    try:
        if lib == "tf":
            container = tf_compile.MetricsContainer(*lists)
        else:
            container = k3_compile.CompileMetrics(*lists)
        first = batches[0]
        yt0, yp0 = tf.constant(f32(first["y_true"])), tf.constant(f32(first["y_pred"]))
        if lib == "tf":
            container.build(yp0, yt0)
        else:
            container.build(yt0, yp0)

        @tf.function
        def update(yt, yp, m, sw):
            yp = tf.identity(yp)
            if m is not None:
                set_mask(lib, yp, m)
            container.update_state(yt, yp, sample_weight=sw)

        results, name = [], None
        for batch in batches:
            m = batch.get("mask")
            sw = batch.get("sample_weight")
            update(tf.constant(f32(batch["y_true"])), tf.constant(f32(batch["y_pred"])),
                   None if m is None else tf.constant(np.asarray(m, bool)),
                   None if sw is None else tf.constant(f32(sw)))
            if lib == "tf":
                obj = container.metrics[0]
                name, value = obj.name, obj.result()
            else:
                (name, value), = container.result().items()
            results.append(num(np.asarray(value)))
        return {"results": results, "name": name}
    except Exception as e:  # noqa: BLE001
        return {"error": error_text(e)}


def metric_case(name, spec, make_true, make_pred, rng, lead=(B,), mask=False, weights=None,
                weighted=False, sizes=(4, 4, 3), note=None):
    batches = []
    for size in sizes:
        shape = (size,) + lead[1:]
        batch = {"y_true": f32(make_true(rng, shape)), "y_pred": f32(make_pred(rng, shape))}
        if mask:
            batch["mask"] = random_mask(rng, shape)
        if weights == "sample":
            batch["sample_weight"] = f32(rng.uniform(0.2, 2.0, size=(size,)))
        elif weights == "step":
            batch["sample_weight"] = f32(rng.uniform(0.2, 2.0, size=shape))
        batches.append(batch)
    case = {"case": name, "metric": spec, "weighted": weighted,
            "batches": [{k: arr(v) for k, v in b.items()} for b in batches]}
    if note:
        case["note"] = note
    for lib in ("tf", "k3"):
        case[lib] = compiled_metric(lib, spec, batches, weighted)
    return case


def metric_variants(prefix, spec, make_true, make_pred, rng, three_d=True):
    """A metric on 2-D outputs, weighted; on 3-D outputs with a mask, weighted or not."""
    cases = [
        metric_case(f"{prefix}_2d", spec, make_true, make_pred, rng),
        metric_case(f"{prefix}_2d_weighted", spec, make_true, make_pred, rng, weights="sample",
                    weighted=True),
    ]
    if three_d:
        cases += [
            metric_case(f"{prefix}_3d", spec, make_true, make_pred, rng, lead=(B, T)),
            metric_case(f"{prefix}_3d_mask", spec, make_true, make_pred, rng, lead=(B, T),
                        mask=True),
            metric_case(f"{prefix}_3d_mask_weighted", spec, make_true, make_pred, rng,
                        lead=(B, T), mask=True, weights="step", weighted=True),
            metric_case(f"{prefix}_3d_weighted_per_sample", spec, make_true, make_pred,
                        rng, lead=(B, T), weights="sample", weighted=True),
            metric_case(f"{prefix}_3d_mask_weighted_per_sample", spec, make_true, make_pred,
                        rng, lead=(B, T), mask=True, weights="sample", weighted=True),
        ]
    return cases


def metric_files():
    files = {}

    def add(file, cases):
        files.setdefault(file, []).extend(cases)

    rng = rng_for("metrics_accuracy")
    # "accuracy" resolved from the shapes: binary, sparse categorical, categorical.
    add("accuracy", metric_variants("accuracy_binary", "accuracy", binary(1),
                                    uniform(0, 1, 1), rng))
    add("accuracy", metric_variants("accuracy_sparse", "accuracy", sparse(), probabilities(),
                                    rng))
    add("accuracy", metric_variants("accuracy_categorical", "accuracy", one_hot(),
                                    probabilities(), rng))
    add("accuracy", [
        metric_case("acc_sparse_trailing_1", "acc", sparse(trailing=True), probabilities(), rng),
        metric_case("accuracy_binary_multi", "accuracy", binary(), uniform(0, 1), rng),
        metric_case("Accuracy_capital", "Accuracy", sparse(), probabilities(), rng),
    ])
    rng = rng_for("metrics_binary_accuracy")
    add("binary_accuracy", metric_variants("binary_accuracy", "binary_accuracy", binary(),
                                           uniform(0, 1), rng))
    add("binary_accuracy", [
        metric_case("BinaryAccuracy_threshold", {"class_name": "BinaryAccuracy",
                                                 "config": {"threshold": 0.7}},
                    binary(), uniform(0, 1), rng),
        metric_case("BinaryAccuracy_class_3d_mask", {"class_name": "BinaryAccuracy"},
                    binary(), uniform(0, 1), rng, lead=(B, T), mask=True),
    ])
    rng = rng_for("metrics_categorical_accuracy")
    add("categorical_accuracy", metric_variants("categorical_accuracy", "categorical_accuracy",
                                                one_hot(), probabilities(), rng))
    add("categorical_accuracy", [metric_case("CategoricalAccuracy_class",
                                             {"class_name": "CategoricalAccuracy"},
                                             one_hot(), probabilities(), rng)])
    rng = rng_for("metrics_sparse_categorical_accuracy")
    add("sparse_categorical_accuracy", metric_variants(
        "sparse_categorical_accuracy", "sparse_categorical_accuracy", sparse(), probabilities(),
        rng))
    add("sparse_categorical_accuracy", [metric_case(
        "SparseCategoricalAccuracy_class", {"class_name": "SparseCategoricalAccuracy"},
        sparse(), probabilities(), rng)])
    rng = rng_for("metrics_top_k")
    wide = 6
    add("top_k", metric_variants("top_k_categorical_accuracy", "top_k_categorical_accuracy",
                                 one_hot(wide), probabilities(wide), rng))
    add("top_k", metric_variants("sparse_top_k_categorical_accuracy",
                                 "sparse_top_k_categorical_accuracy", sparse(wide),
                                 probabilities(wide), rng))
    add("top_k", [
        metric_case("TopK_k2", {"class_name": "TopKCategoricalAccuracy", "config": {"k": 2}},
                    one_hot(wide), probabilities(wide), rng),
        metric_case("SparseTopK_k2", {"class_name": "SparseTopKCategoricalAccuracy",
                                      "config": {"k": 2}},
                    sparse(wide), probabilities(wide), rng, lead=(B, T), mask=True),
        metric_case("SparseTopK_k2_ties", {"class_name": "SparseTopKCategoricalAccuracy",
                                           "config": {"k": 2}},
                    sparse(wide),
                    lambda rng, lead: rng.choice([0.1, 0.2, 0.3], size=lead + (wide,)), rng,
                    note="ties at the k-th value count as in the top k (tf.math.in_top_k)"),
    ])
    rng = rng_for("metrics_regression")
    for name in ("mae", "mse", "mean_absolute_error", "MeanSquaredError"):
        add("regression", metric_variants(name, name, uniform(-2, 2), uniform(-2, 2), rng,
                                          three_d=name in ("mae", "mse")))
    add("regression", metric_variants("rmse", "RootMeanSquaredError", uniform(-2, 2),
                                      uniform(-2, 2), rng))
    add("regression", [metric_case("root_mean_squared_error_name", "root_mean_squared_error",
                                   uniform(-2, 2), uniform(-2, 2), rng)])
    rng = rng_for("metrics_auc")
    scores = uniform(0, 1, 1)
    add("auc", metric_variants("auc", "AUC", binary(1), scores, rng))
    add("auc", [
        metric_case("auc_pr", {"class_name": "AUC", "config": {"curve": "PR"}}, binary(1),
                    scores, rng),
        metric_case("auc_pr_3d_mask", {"class_name": "AUC", "config": {"curve": "PR"}},
                    binary(1), scores, rng, lead=(B, T), mask=True),
        metric_case("auc_roc_minoring", {"class_name": "AUC",
                                         "config": {"summation_method": "minoring"}},
                    binary(1), scores, rng),
        metric_case("auc_pr_majoring", {"class_name": "AUC", "config": {
            "curve": "PR", "summation_method": "majoring"}}, binary(1), scores, rng),
        metric_case("auc_thresholds_11", {"class_name": "AUC", "config": {"num_thresholds": 11}},
                    binary(), lambda rng, lead: rng.integers(0, 11, size=lead + (C,)) / 10.0,
                    rng, note="scores on the thresholds themselves"),
        metric_case("auc_from_logits", {"class_name": "AUC", "config": {"from_logits": True}},
                    binary(), normal(3), rng),
        metric_case("auc_out_of_range", "AUC", binary(), uniform(-0.5, 1.5), rng,
                    note="scores outside [0, 1] are clipped"),
        metric_case("auc_lowercase", "auc", binary(1), scores, rng),
    ])
    rng = rng_for("metrics_precision_recall")
    for name in ("Precision", "Recall"):
        add("precision_recall", metric_variants(name.lower(), name, binary(), uniform(0, 1),
                                                rng))
        add("precision_recall", [
            metric_case(f"{name.lower()}_threshold", {"class_name": name,
                                                      "config": {"thresholds": 0.3}},
                        binary(), uniform(0, 1), rng),
            metric_case(f"{name.lower()}_lowercase", name.lower(), binary(), uniform(0, 1), rng),
        ])
    rng = rng_for("metrics_loss_functions")
    add("loss_functions", [
        metric_case("binary_crossentropy_metric", "binary_crossentropy", binary(),
                    uniform(0.01, 0.99), rng, lead=(B, T), mask=True),
        metric_case("categorical_crossentropy_metric", "categorical_crossentropy", one_hot(),
                    probabilities(), rng),
        metric_case("sparse_categorical_crossentropy_metric", "sparse_categorical_crossentropy",
                    sparse(), probabilities(), rng, lead=(B, T), mask=True),
        metric_case("crossentropy_metric", "crossentropy", sparse(), probabilities(), rng),
        metric_case("kl_divergence_metric", "kl_divergence", probabilities(), probabilities(),
                    rng),
        metric_case("mape_metric", "mape", uniform(0.5, 2), uniform(0.5, 2), rng),
        metric_case("msle_metric", "msle", uniform(0, 2), uniform(0, 2), rng),
        metric_case("poisson_metric", "poisson", uniform(0, 2), uniform(0.1, 2), rng),
        metric_case("hinge_metric", "hinge", binary(), uniform(-1, 1), rng),
        metric_case("squared_hinge_metric", "squared_hinge", binary(), uniform(-1, 1), rng),
        metric_case("logcosh_metric", "logcosh", uniform(-2, 2), uniform(-2, 2), rng),
    ])
    return files


def loss_mean_fixture():
    """The `loss` in logs: a Mean over batches weighted by the batch size."""
    values, sizes = [0.75, 0.5, 1.25], [32, 32, 7]
    out = {"case": "loss_tracker", "values": values, "batch_sizes": sizes}
    for lib in ("tf", "k3"):
        m = LIBS[lib].metrics.Mean(name="loss")
        results = []
        for v, n in zip(values, sizes):
            m.update_state(tf.constant(v), sample_weight=n)
            results.append(float(m.result().numpy()))
        out[lib] = {"results": results, "name": m.name}
    return {"mean": [out]}


# ---------------------------------------------------------------------------------------------
# Names


LOSS_NAMES = (
    "mse MSE mean_squared_error MeanSquaredError mae MAE mean_absolute_error MeanAbsoluteError "
    "mape MAPE mean_absolute_percentage_error MeanAbsolutePercentageError msle MSLE "
    "mean_squared_logarithmic_error MeanSquaredLogarithmicError huber huber_loss Huber logcosh "
    "log_cosh LogCosh binary_crossentropy bce BCE BinaryCrossentropy categorical_crossentropy "
    "cce CategoricalCrossentropy sparse_categorical_crossentropy scce "
    "SparseCategoricalCrossentropy kld KLD kl_divergence kullback_leibler_divergence "
    "KLDivergence poisson Poisson hinge Hinge squared_hinge SquaredHinge categorical_hinge "
    "CategoricalHinge cosine_similarity cosine cosine_proximity CosineSimilarity crossentropy ce "
    "Crossentropy nope"
).split()

METRIC_NAMES = (
    "accuracy acc Accuracy ACC binary_accuracy BinaryAccuracy categorical_accuracy "
    "CategoricalAccuracy sparse_categorical_accuracy SparseCategoricalAccuracy "
    "top_k_categorical_accuracy TopKCategoricalAccuracy sparse_top_k_categorical_accuracy "
    "SparseTopKCategoricalAccuracy mae MAE mean_absolute_error MeanAbsoluteError mse MSE "
    "mean_squared_error MeanSquaredError rmse root_mean_squared_error RootMeanSquaredError auc "
    "AUC precision Precision recall Recall crossentropy ce binary_crossentropy bce BCE "
    "BinaryCrossentropy categorical_crossentropy CategoricalCrossentropy "
    "sparse_categorical_crossentropy SparseCategoricalCrossentropy mape MAPE msle MSLE kld KLD "
    "kl_divergence kullback_leibler_divergence KLDivergence logcosh log_cosh LogCoshError "
    "poisson Poisson hinge Hinge squared_hinge SquaredHinge categorical_hinge CategoricalHinge "
    "mean_absolute_percentage_error MeanAbsolutePercentageError mean_squared_logarithmic_error "
    "MeanSquaredLogarithmicError log_cosh_error kl_divergence_metric cosine_similarity mean Mean "
    "nope"
).split()


def loss_names():
    """What each string resolves to: the Keras function or class, or null where refused."""
    yt = tf.constant(np.array([[1.0], [0.0]], np.float32))
    yp = tf.constant(np.array([[0.7], [0.2]], np.float32))
    out = {}
    for name in LOSS_NAMES:
        row = {}
        try:
            c = tf_compile.LossesContainer(name)
            c.build(yp)
            obj = c._losses[0]
            row["tf"] = getattr(obj.fn, "__name__", None)
        except Exception:  # noqa: BLE001
            row["tf"] = None
        try:
            obj = k3_compile.get_loss(name, yt, yp)
            row["k3"] = getattr(obj.fn, "__name__", None)
        except Exception:  # noqa: BLE001
            row["k3"] = None
        out[name] = row
    return out


def metric_names():
    """Per string: the Keras function the metric averages (or its class) and its log name. Tried
    on a (batch, 1) output with (batch, 1) targets (where accuracy resolves to binary), then,
    where that fails, on a (batch, 2) output with sparse targets."""
    probes = [
        (np.array([[1.0], [0.0]], np.float32), np.array([[0.7], [0.2]], np.float32)),
        (np.array([[1.0], [0.0]], np.float32), np.array([[0.3, 0.7], [0.8, 0.2]], np.float32)),
    ]
    out = {}
    for name in METRIC_NAMES:
        row = {}
        for lib in ("tf", "k3"):
            row[lib] = None
            for yt, yp in probes:
                yt, yp = tf.constant(yt), tf.constant(yp)
                try:
                    LIBS[lib].backend.clear_session()
                    if lib == "tf":
                        c = tf_compile.MetricsContainer([name])
                    else:
                        c = k3_compile.CompileMetrics([name], None)
                    c.update_state(yt, yp)  # tf_keras refuses some names only here
                    m = c.metrics[0]
                except Exception:  # noqa: BLE001
                    continue
                fn = getattr(m, "_fn", None)
                kind = type(m).__name__
                if kind == "MeanMetricWrapper":
                    kind = getattr(fn, "__name__", kind)
                row[lib] = {"kind": kind, "log_name": m.name}
                break
        out[name] = row
    return out


# ---------------------------------------------------------------------------------------------


README_LOSSES = """# Loss fixtures

Made by `{by}` from tensorflow {tensorflow}, tf_keras {tf_keras}, keras {keras} (TensorFlow
backend) and numpy {numpy}; each file names the script and versions again. Read by
`tests/train_losses.rs`.

Each `<loss>.json` holds `cases`; a case gives `loss` (a Keras loss string, or
`{{"class_name", "config"}}` of a Keras loss class), `y_true`, and either `y_pred` (the model's
output) or `logits` with the `activation` (sigmoid or softmax) Keras applied to them, and
optionally `mask` (`(batch, timesteps)`, as a return_sequences RNN's output carries it) and
`sample_weight`. Then per library (`tf`: tf_keras, `k3`: Keras 3) either `value` (the loss
`fit` minimizes, through tf_keras's `LossesContainer` / Keras 3's `CompileLoss` in a
`tf.function`) and `grad` (its gradient with respect to `y_pred`, or to the logits), or `error`
(what Keras raised).

`fit.json` holds real models run as `train_step` runs them: `x`, `y_true`, the loss, and per
library `value`, `bias_grad` (the gradient of the last Dense layer's bias), `logits` (that
layer's input through its kernel and bias), `y_pred` and the `mask` where there is one; `uses`
says whether Keras computed the loss from the logits or from the probabilities.

`names.json`: per loss string, the Keras function it resolves to in each library (null where
it is refused).

Array: `{{"shape": [...], "data": [...]}}`, row-major. A NaN (tf_keras's loss of a fully masked
batch) is written as null.
"""

README_METRICS = """# Metric fixtures

Made by `{by}` from tensorflow {tensorflow}, tf_keras {tf_keras}, keras {keras} (TensorFlow
backend) and numpy {numpy}; each file names the script and versions again. Read by
`tests/train_metrics.rs`.

Each `<metric>.json` holds `cases`; a case gives `metric` (a Keras metric string, or
`{{"class_name", "config"}}`), `weighted` (passed as `weighted_metrics`, which get the sample
weights, rather than `metrics`), and three `batches` (`y_true`, `y_pred`, optionally `mask` and
`sample_weight`; the last batch smaller, as an epoch's last). Per library (`tf`: tf_keras's
`MetricsContainer`, `k3`: Keras 3's `CompileMetrics`, updated in a `tf.function`): `results`
(the metric after each batch) and `name` (the name Keras logs), or `error`.

`mean.json`: the `loss` of the logs, a Mean weighted by the batch size. `names.json`: per metric
string, what it resolves to for a `(batch, 1)` output and its log name, per library.

Array: `{{"shape": [...], "data": [...]}}`, row-major.
"""


def write(folder, name, cases):
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"generated_by": BY, "versions": VERSIONS, "cases": cases}
    with open(folder / f"{name}.json", "w") as f:
        json.dump(doc, f)


def main():
    for name, cases in loss_files().items():
        write(OUT_LOSSES, name, cases)
    for name, cases in fit_files().items():
        write(OUT_LOSSES, name, cases)
    for name, cases in metric_files().items():
        write(OUT_METRICS, name, cases)
    for name, cases in loss_mean_fixture().items():
        write(OUT_METRICS, name, cases)
    with open(OUT_LOSSES / "names.json", "w") as f:
        json.dump({"generated_by": BY, "versions": VERSIONS, "names": loss_names()}, f, indent=1)
    with open(OUT_METRICS / "names.json", "w") as f:
        json.dump({"generated_by": BY, "versions": VERSIONS, "names": metric_names()}, f,
                  indent=1)
    (OUT_LOSSES / "README.md").write_text(README_LOSSES.format(by=BY, **VERSIONS))
    (OUT_METRICS / "README.md").write_text(README_METRICS.format(by=BY, **VERSIONS))


if __name__ == "__main__":
    main()
