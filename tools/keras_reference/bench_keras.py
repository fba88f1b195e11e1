#!/usr/bin/env python3
"""Benchmark real Keras (tf_keras) recurrent-layer forward passes on CPU.

Baseline numbers for the Rust crate's README. Times each workload three ways
after warm-up: model.predict, eager model(x), and a tf.function-wrapped call.

Usage:
    .venv-ref/bin/python tools/keras_reference/bench_keras.py [--json out.json]
        [--min-runs 20] [--min-seconds 3] [--budget-seconds 300]

TensorFlow threading is left at its defaults; the values it reports are
printed. OPENBLAS_* and TF_ENABLE_ONEDNN_OPTS are recorded as seen, never set.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

# Snapshot the relevant env vars before TF is imported (recorded as seen).
ENV_VARS = [
    "TF_ENABLE_ONEDNN_OPTS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_NUM_INTRAOP_THREADS",
]
ENV_SEEN = {k: os.environ.get(k) for k in ENV_VARS}

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from bench_common import cpu_model, flops_per_sample_step, time_fn  # noqa: E402


def onednn_status():
    """Best-effort: what TF reports about oneDNN.

    TF 2.x enables oneDNN by default on x86 Linux unless
    TF_ENABLE_ONEDNN_OPTS=0; on aarch64 it is only used when the variable is
    set to 1 (for some CPUs). The runtime log line is suppressed by
    TF_CPP_MIN_LOG_LEVEL=3, so we also ask the build info / internal helper.
    """
    info = {}
    try:
        from tensorflow.python.framework import test_util  # noqa: F401
        from tensorflow.python.util import _pywrap_util_port
        info["IsMklEnabled"] = bool(_pywrap_util_port.IsMklEnabled())
    except Exception as e:  # pragma: no cover - best effort
        info["IsMklEnabled"] = f"unavailable ({type(e).__name__})"
    try:
        bi = tf.sysconfig.get_build_info()
        info["build_info"] = {k: str(v) for k, v in bi.items()
                             if k in ("cpu_compiler", "is_cuda_build",
                                      "is_rocm_build", "is_tensorrt_build")}
    except Exception:
        pass
    v = ENV_SEEN.get("TF_ENABLE_ONEDNN_OPTS")
    if platform.machine() in ("x86_64", "AMD64"):
        info["custom_ops_expected"] = ("off (TF_ENABLE_ONEDNN_OPTS=0)"
                                       if v in ("0", "false", "False")
                                       else "on (x86_64 default)")
    else:
        info["custom_ops_expected"] = ("on (TF_ENABLE_ONEDNN_OPTS=1)"
                                       if v in ("1", "true", "True")
                                       else "platform-dependent default")
    return info


def build_workloads():
    L = keras.layers
    ws = []

    def simple(units, t, f, batch):
        m = keras.Sequential([L.SimpleRNN(units, input_shape=(t, f))])
        return m, (batch, t, f), batch * t * flops_per_sample_step(units, f)

    ws.append(("notebook_8x2x10_u3",) + simple(3, 2, 10, 8))
    ws.append(("64x100x128_u256_last",) + simple(256, 100, 128, 64))

    # Bidirectional stack: 4 layers, 2 directions each.
    b, t, f, u = 32, 50, 64, 128
    layers = []
    for i in range(4):
        kw = {"input_shape": (t, f)} if i == 0 else {}
        layers.append(L.Bidirectional(
            L.SimpleRNN(u, return_sequences=True), **kw))
    m = keras.Sequential(layers)
    fl = 0
    for i in range(4):
        inp = f if i == 0 else 2 * u
        fl += 2 * flops_per_sample_step(u, inp)
    ws.append(("bidi4_32x50x64_u128", m, (b, t, f), b * t * fl))

    b, t, f, u = 64, 100, 128, 256
    m = keras.Sequential([L.LSTM(u, input_shape=(t, f))])
    ws.append(("lstm_64x100x128_u256_last", m, (b, t, f),
               b * t * flops_per_sample_step(u, f, gates=4)))
    m = keras.Sequential([L.GRU(u, input_shape=(t, f))])
    ws.append(("gru_64x100x128_u256_last", m, (b, t, f),
               b * t * flops_per_sample_step(u, f, gates=3)))
    return ws


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write results JSON to this path "
                    "(default: print JSON at the end of stdout)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--min-runs", type=int, default=20)
    ap.add_argument("--min-seconds", type=float, default=3.0)
    ap.add_argument("--budget-seconds", type=float, default=300.0,
                    help="approximate total time budget for all measurements")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    tf.random.set_seed(args.seed)
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "tensorflow": tf.__version__,
        "tf_keras": keras.__version__,
        "numpy": np.__version__,
        "cpu_model": cpu_model(),
        "os.cpu_count": os.cpu_count(),
        "sched_getaffinity": (len(os.sched_getaffinity(0))
                              if hasattr(os, "sched_getaffinity") else None),
        "env_vars_as_seen": ENV_SEEN,
        "onednn": onednn_status(),
        # 0 means "let TF choose" (defaults; uses all available cores).
        "inter_op_parallelism_threads":
            tf.config.threading.get_inter_op_parallelism_threads(),
        "intra_op_parallelism_threads":
            tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }

    print("== Environment ==")
    for k, v in env.items():
        print(f"  {k}: {v}")
    print(f"  settings: warmup={args.warmup} min_runs={args.min_runs} "
          f"min_seconds={args.min_seconds} budget_seconds={args.budget_seconds}")
    sys.stdout.flush()

    workloads = build_workloads()
    n_cells = len(workloads) * 3
    # Per-measurement cap so the whole script stays within budget.
    per_cell_cap = max(args.min_seconds, args.budget_seconds / n_cells)

    results = []
    script_t0 = time.perf_counter()
    for name, model, shape, flops in workloads:
        x_np = rng.uniform(-0.5, 0.5, size=shape).astype(np.float32)
        x = tf.constant(x_np)

        f = tf.function(lambda inp, m=model: m(inp, training=False),
                        jit_compile=False)

        # Sanity: all three paths agree.
        y_pred = model.predict(x_np, batch_size=len(x_np), verbose=0)
        y_eager = model(x, training=False).numpy()
        y_fn = f(x).numpy()
        maxdiff = float(max(np.max(np.abs(y_pred - y_eager)),
                            np.max(np.abs(y_fn - y_eager))))

        methods = [
            ("predict", lambda: model.predict(x_np, batch_size=len(x_np),
                                              verbose=0)),
            ("eager", lambda: model(x, training=False).numpy()),
            ("tf.function", lambda: f(x).numpy()),
        ]
        for mname, fn in methods:
            ts = time_fn(fn, args.warmup, args.min_runs, args.min_seconds,
                         per_cell_cap)
            med = statistics.median(ts)
            mn = min(ts)
            r = {
                "workload": name,
                "method": mname,
                "input_shape": list(shape),
                "flops_per_call": flops,
                "runs": len(ts),
                "median_ms": med * 1e3,
                "min_ms": mn * 1e3,
                "mean_ms": statistics.fmean(ts) * 1e3,
                "stdev_ms": (statistics.stdev(ts) * 1e3) if len(ts) > 1 else 0.0,
                "gflops_at_median": flops / med / 1e9,
                "gflops_at_min": flops / mn / 1e9,
                "max_abs_diff_between_methods": maxdiff,
            }
            results.append(r)
            print(f"  done {name:28s} {mname:12s} runs={len(ts):5d} "
                  f"median={r['median_ms']:.3f} ms", file=sys.stderr)
            sys.stderr.flush()
    total = time.perf_counter() - script_t0

    print()
    print("== Results (times include .numpy() host copy for eager/tf.function;"
          " predict returns numpy) ==")
    hdr = (f"{'workload':28s} {'method':12s} {'runs':>5s} {'median ms':>11s} "
           f"{'min ms':>11s} {'GFLOP/s(med)':>13s} {'GFLOP/s(min)':>13s}")
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        print(f"{r['workload']:28s} {r['method']:12s} {r['runs']:5d} "
              f"{r['median_ms']:11.3f} {r['min_ms']:11.3f} "
              f"{r['gflops_at_median']:13.3f} {r['gflops_at_min']:13.3f}")
    print(f"\nTotal measurement time: {total:.1f} s")
    print("FLOPs: 2*units*(input+units) per sample per timestep per direction "
          "(x4 LSTM, x3 GRU); bidi stack input 64 then 256.")

    out = {"environment": env, "settings": vars(args),
           "total_measure_seconds": total, "results": results}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
        print(f"JSON written to {args.json}")
    else:
        print("\n== JSON ==")
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
