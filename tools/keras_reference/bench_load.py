#!/usr/bin/env python3
"""Time Keras loading a saved LSTM(1024) model and building a new LSTM layer.

These are the Keras figures the README sets beside seqnn's load and build times.
Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/bench_load.py [--out DIR] [--json]
        [--runs 7]

A. Loading. The model is Sequential: Input(shape=(10, 64)) -> LSTM(1024).
   It is saved as lstm1024.k3.keras (by Keras 3.15, TensorFlow backend),
   lstm1024.tf.keras and lstm1024.tf.h5 (by tf_keras 2.21; the .h5 is the
   legacy format). The files go to --out (default: a new temp dir, which is
   kept) so that the Rust bench can load the same files. Each file is then
   loaded 1 + --runs times in this process, with keras.models.load_model or
   tf_keras.models.load_model. The first call is reported apart ("first");
   median and min are taken over the calls after it. The OS page cache is warm,
   and the library has already built and saved the model, so "first" is the
   first load in a warm process, not a load in a fresh process (the import
   times are printed apart).
B. Building. From nothing to a built layer with its weights initialized
   (glorot_uniform kernel, orthogonal recurrent kernel (QR), zeros bias):
   `layer = LSTM(units); layer.build((None, 10, 64))` for 1024 and 512 units,
   in each library; and, for reference, Orthogonal()(shape=(1024, 4096)) alone.

TensorFlow threading is left at its defaults; the thread settings it reports
are printed. Prints a markdown table, or JSON with --json.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["KERAS_BACKEND"] = "tensorflow"
ONEDNN_SEEN = os.environ.get("TF_ENABLE_ONEDNN_OPTS")  # recorded, never set

# Timed apart: importing tensorflow also imports keras 3 (for tf.keras).
_t = [time.perf_counter()]
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
_t.append(time.perf_counter())
import tf_keras  # noqa: E402
_t.append(time.perf_counter())
IMPORT_S = {"tensorflow + keras": _t[1] - _t[0], "tf_keras": _t[2] - _t[1]}
import numpy as np  # noqa: E402
from bench_common import cpu_model, time_fn  # noqa: E402

tf.get_logger().setLevel("ERROR")
warnings.filterwarnings("ignore")

LIBS = {"Keras 3": keras, "tf_keras": tf_keras}
SHAPE = (None, 10, 64)


def timed(fn, runs):
    """First call, then `runs` more: exactly 1 + runs calls of fn."""
    ts = time_fn(fn, warmup=0, min_runs=runs + 1, min_seconds=0.0,
                 max_seconds=float("inf"))
    rest = ts[1:]
    return {"first_ms": ts[0] * 1e3, "median_ms": statistics.median(rest) * 1e3,
            "min_ms": min(rest) * 1e3, "runs": len(rest)}


def save_models(out):
    """Save the model with each library; returns {(library, file): path}."""
    paths = {}
    for lib, K in LIBS.items():
        K.utils.set_random_seed(0)
        model = K.Sequential([K.Input(shape=SHAPE[1:]), K.layers.LSTM(1024)])
        exts = [".keras"] if lib == "Keras 3" else [".keras", ".h5"]
        for ext in exts:
            path = os.path.join(out, f"lstm1024.{'k3' if lib == 'Keras 3' else 'tf'}{ext}")
            model.save(path)
            paths[(lib, ext)] = path
        K.backend.clear_session()
    return paths


def bench(out, runs):
    results = []
    for (lib, ext), path in save_models(out).items():
        K = LIBS[lib]
        r = timed(lambda: K.models.load_model(path), runs)
        results.append({"task": f"load_model `{ext}`", "library": lib,
                        "path": path, "bytes": os.path.getsize(path), **r})
        print(f"  done {lib} load {ext}", file=sys.stderr)
    for lib, K in LIBS.items():
        for units in (1024, 512):
            def build(K=K, units=units):
                layer = K.layers.LSTM(units)
                layer.build(SHAPE)
                return layer
            results.append({"task": f"build LSTM({units}) on {SHAPE}",
                            "library": lib, **timed(build, runs)})
        # A new instance each call: tf_keras warns about reusing an unseeded one.
        results.append({"task": "Orthogonal()(shape=(1024, 4096))", "library": lib,
                        **timed(lambda K=K: K.initializers.Orthogonal()(shape=(1024, 4096)), runs)})
        print(f"  done {lib} build", file=sys.stderr)
    return results


def environment():
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": cpu_model(), "schedulable_cpus": n, "machine": platform.machine(),
        "python": sys.version.split()[0], "tensorflow": tf.__version__,
        "keras": keras.__version__, "tf_keras": tf_keras.__version__,
        "numpy": np.__version__, "TF_ENABLE_ONEDNN_OPTS": ONEDNN_SEEN,
        # 0 means TF's default, which is one thread per schedulable CPU.
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "import_seconds": {k: round(v, 3) for k, v in IMPORT_S.items()},
    }


def print_markdown(env, results):
    threads = lambda v: f"{v} (default: {env['schedulable_cpus']})" if v == 0 else str(v)  # noqa: E731
    print(f"CPU: {env['cpu_model']} ({env['schedulable_cpus']} schedulable CPUs)")
    print(f"TensorFlow {env['tensorflow']}, Keras {env['keras']}, tf_keras {env['tf_keras']}, "
          f"numpy {env['numpy']}, Python {env['python']}")
    print(f"TF threads: intra-op {threads(env['intra_op_threads'])}, inter-op "
          f"{threads(env['inter_op_threads'])}; TF_ENABLE_ONEDNN_OPTS={env['TF_ENABLE_ONEDNN_OPTS']}")
    print("import (s): " + ", ".join(f"{k} {v:.2f}" for k, v in env["import_seconds"].items()))
    print()
    print("| task | library | first ms | median ms | min ms | runs | file size |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        size = f"{r['bytes'] / 2**20:.2f} MiB" if "bytes" in r else ""
        print(f"| {r['task']} | {r['library']} | {r['first_ms']:.1f} | {r['median_ms']:.1f} | "
              f"{r['min_ms']:.1f} | {r['runs']} | {size} |")
    print("\nMedian and min are over the calls after the first.")
    print("Files:")
    for r in results:
        if "path" in r:
            print(f"  {r['path']}  ({r['bytes']} bytes)")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="directory for the saved files (default: a new temp dir)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--runs", type=int, default=7, help="calls after the first (default 7)")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="seqnn_bench_load_")
    os.makedirs(out, exist_ok=True)

    env = environment()
    results = bench(out, args.runs)
    if args.json:
        print(json.dumps({"environment": env, "out": out, "results": results}, indent=2))
    else:
        print_markdown(env, results)


if __name__ == "__main__":
    main()
