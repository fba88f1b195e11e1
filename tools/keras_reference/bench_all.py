#!/usr/bin/env python3
"""seqnn's speed beside tf_keras, Keras 3 and PyTorch, and the machine's GEMM peak, in one run.

Run from the repository root (cargo on PATH, torch installed in the venv):

    .venv-ref/bin/python tools/keras_reference/bench_all.py [--train] [--quick]
        [--libs tf_keras,keras3,torch] [--threads 1,2] [--workloads w1,...,w7]
        [--json out.json] [--max-load 0.5] [--max-wait-seconds 900]

Inference workloads (benches/recurrent.rs; the input is benches/common/mod.rs's formula in
every library):

    W1  SimpleRNN(3)                                          x (8, 2, 10)
    W2  SimpleRNN(256), last output                           x (64, 100, 128)
    W3  4 x Bidirectional(SimpleRNN(128, return_sequences))   x (32, 50, 64)
    W4  LSTM(256), last output                                x (64, 100, 128)
    W5  GRU(256), last output                                 x (64, 100, 128)
    W6  SimpleRNN(512, return_sequences)                      x (256, 200, 256)
    W7  LSTM(512), one stream                                 x (1, 100, 256)

In order:
1. waits until the 1-minute load average is below --max-load (at most --max-wait-seconds);
2. the f32 GEMM peak, `cargo bench --bench gemm`: matrixmultiply (ndarray's general_mat_mul)
   and seqnn's packed kernel on two squares and the products of W2-W6, on 1 and 2 threads, and
   W7's one-row step on 1; the best GFLOP/s of each thread count is its peak;
3. seqnn's first pass: `cargo bench --bench recurrent` (criterion's median), with --train also
   `cargo bench --bench train` (bench_train.py's T1-T4, one fit epoch);
4. the peers, each library and thread count in a process of its own (this script with
   --worker; bench_train.py's workers for --train): tf_keras 2.21 and Keras 3.15 call a
   `tf.function` of `model(x, training=False)` (TensorFlow with n intra- and inter-op threads,
   OMP_NUM_THREADS=n), PyTorch calls nn.RNN / nn.LSTM / nn.GRU under
   `torch.inference_mode()` (torch.set_num_threads(n) and set_num_interop_threads(n)); the
   median of at least 20 calls and 3 s after 3 warm-up calls (at most 15 s, at least 5 calls);
5. seqnn's second pass, the same as the first, so that each seqnn figure is a range over two
   passes, one before the peers and one after: the machine's drift shows.

seqnn's thread count is seqnn::set_num_threads(n) in the benches.

Prints markdown: the CPU model and its instruction sets, the date, the GEMM table and peak, and
a table per kind of workload with each library's median on each thread count, seqnn's time over
the best peer's, seqnn's share of the GEMM peak of its thread count (the workload's FLOPs, as
benches/recurrent.rs counts them, over its time, over the peak; for training, the FLOPs of an
epoch's products as bench_train.py's epoch_flops counts them) and seqnn's speed-up over 1 thread.
--json writes every raw number; --render JSON prints the tables of such a file again, measuring
nothing.

--quick is a smoke run of the tools (SEQNN_BENCH_QUICK=1 for the benches, a few calls per peer,
bench_train.py's --samples 256 --epochs 1, no waiting for idle): its figures are no
measurement.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from bench_common import (add_run_options, cargo_bench, command_output, cpu_flags,
                          criterion_dir, criterion_estimate, flops_per_sample_step,
                          import_keras, loadavg, machine_environment, parse_run_options,
                          peer_versions, run_worker, seq_input, time_fn, wait_as_asked)

LIBS = {"tf_keras": "tf_keras `tf.function`", "keras3": "Keras 3 `tf.function`",
        "torch": "PyTorch"}
TRAIN_LIBS = {"tf_keras": "tf_keras `fit`", "keras3": "Keras 3 `fit`", "torch": "PyTorch loop"}

ENV_VARS = ["TF_ENABLE_ONEDNN_OPTS", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "RAYON_NUM_THREADS", "CRITERION_HOME"]


# -- The workloads ---------------------------------------------------------------------------

def spec(wid, label, kind, units, shape, layers=1, bidirectional=False,
         return_sequences=False):
    """One inference workload: `layers` recurrent layers of `kind` ("simple", "lstm", "gru"),
    each `units` wide (both directions' outputs concatenated when bidirectional), on an input
    of `shape` = (batch, steps, features); criterion's id `wid`."""
    gates = {"simple": 1, "lstm": 4, "gru": 3}[kind]
    batch, steps, features = shape
    directions = 2 if bidirectional else 1
    flops = 0
    for i in range(layers):
        inp = features if i == 0 else directions * units
        flops += directions * batch * steps * flops_per_sample_step(units, inp, gates)
    return {"id": wid, "label": label, "kind": kind, "units": units, "shape": list(shape),
            "layers": layers, "bidirectional": bidirectional,
            "return_sequences": return_sequences, "flops": flops}


WORKLOADS = {
    "w1": spec("w1_notebook_8x2x10_u3", "W1 notebook `SimpleRNN(3)`, x `(8, 2, 10)`",
               "simple", 3, (8, 2, 10)),
    "w2": spec("w2_simplernn256_64x100x128_last",
               "W2 `SimpleRNN(256)`, x `(64, 100, 128)`, last output",
               "simple", 256, (64, 100, 128)),
    "w3": spec("w3_bidi4_32x50x64_u128",
               "W3 4 × `Bidirectional(SimpleRNN(128, return_sequences))`, x `(32, 50, 64)`",
               "simple", 128, (32, 50, 64), layers=4, bidirectional=True,
               return_sequences=True),
    "w4": spec("w4_lstm256_64x100x128_last", "W4 `LSTM(256)`, x `(64, 100, 128)`, last output",
               "lstm", 256, (64, 100, 128)),
    "w5": spec("w5_gru256_64x100x128_last", "W5 `GRU(256)`, x `(64, 100, 128)`, last output",
               "gru", 256, (64, 100, 128)),
    "w6": spec("w6_simplernn512_seq_256x200x256",
               "W6 `SimpleRNN(512, return_sequences)`, x `(256, 200, 256)`",
               "simple", 512, (256, 200, 256), return_sequences=True),
    "w7": spec("w7_lstm512_1x100x256_last",
               "W7 `LSTM(512)`, x `(1, 100, 256)`, last output: one stream",
               "lstm", 512, (1, 100, 256)),
}


def keras_model(K, w):
    """Workload `w` in tf_keras or Keras 3 (`K`)."""
    L = K.layers
    cell = {"simple": L.SimpleRNN, "lstm": L.LSTM, "gru": L.GRU}[w["kind"]]
    layers = [K.Input(tuple(w["shape"][1:]))]
    for i in range(w["layers"]):
        layer = cell(w["units"], return_sequences=w["return_sequences"] or i < w["layers"] - 1)
        layers.append(L.Bidirectional(layer) if w["bidirectional"] else layer)
    return K.Sequential(layers)


def torch_model(w):
    """Workload `w` as one nn.RNN / nn.LSTM / nn.GRU of `layers` layers, returning what Keras
    returns: the whole sequence, or the last layer's last state."""
    from torch import nn
    from bench_torch import LastH, LastHLSTM, Seq
    cls = {"simple": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[w["kind"]]
    kw = {"nonlinearity": "tanh"} if w["kind"] == "simple" else {}
    rnn = cls(w["shape"][2], w["units"], num_layers=w["layers"],
              bidirectional=w["bidirectional"], batch_first=True, **kw)
    if w["return_sequences"]:
        return Seq(rnn).eval()
    return (LastHLSTM(rnn) if w["kind"] == "lstm" else LastH(rnn)).eval()


# -- Workers: one library, one thread count, in a process of its own --------------------------

def timing(quick):
    """time_fn's (warmup, min_runs, min_seconds, max_seconds)."""
    return (1, 3, 0.2, 1.0) if quick else (3, 20, 3.0, 15.0)


def measure(fn, quick):
    ts = time_fn(fn, *timing(quick))
    return {"median_ms": statistics.median(ts) * 1e3, "min_ms": min(ts) * 1e3,
            "runs": len(ts)}


def worker_keras(lib, threads, keys, quick):
    tf, K, env = import_keras(lib, threads)
    results = {}
    for key in keys:
        w = WORKLOADS[key]
        K.utils.set_random_seed(0)
        model = keras_model(K, w)
        x = tf.constant(seq_input(*w["shape"]))
        f = tf.function(lambda inp, m=model: m(inp, training=False), jit_compile=False)
        results[key] = measure(lambda: f(x).numpy(), quick)
        report(lib, threads, key, results[key])
    return env, results


def worker_torch(threads, keys, quick):
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)
    env = {"torch": torch.__version__, "numpy": np.__version__,
           "num_threads": torch.get_num_threads(),
           "num_interop_threads": torch.get_num_interop_threads()}
    results = {}
    with torch.inference_mode():
        for key in keys:
            w = WORKLOADS[key]
            torch.manual_seed(0)
            model = torch_model(w)
            x = torch.from_numpy(seq_input(*w["shape"]))
            results[key] = measure(lambda: model(x).numpy(), quick)
            report("torch", threads, key, results[key])
    return env, results


def report(lib, threads, key, r):
    print(f"  {lib:8s} threads={threads} {key}: median {fmt_time(r['median_ms'])} "
          f"over {r['runs']} calls", file=sys.stderr)
    sys.stderr.flush()


def worker_main(args):
    keys = args.workloads.split(",")
    if args.worker == "torch":
        env, results = worker_torch(args.worker_threads, keys, args.quick)
    else:
        env, results = worker_keras(args.worker, args.worker_threads, keys, args.quick)
    env["env_vars_as_seen"] = {k: os.environ.get(k) for k in ENV_VARS}
    with open(args.out, "w") as fh:
        json.dump({"environment": env, "results": results}, fh, indent=2)


# -- seqnn: the benches ------------------------------------------------------------------------

def alternatives(items):
    return "(" + "|".join(str(i) for i in items) + ")"


def bench_env(args):
    return {"SEQNN_BENCH_QUICK": "1"} if args.quick else {}


def gemm_pass(args, threads, since):
    """`cargo bench --bench gemm`, then its GFLOP/s as {kernel: {shape: {n: ...}}}."""
    rc = cargo_bench("gemm", "^gemm/.*/threads_" + alternatives(threads) + "$", bench_env(args))
    base = criterion_dir() / "gemm"
    out = {}
    for fdir in sorted(base.iterdir()) if base.is_dir() else []:
        # <kernel>_<role>_<m>x<k>x<n>, the role a word or a workload's product.
        kernel, _, rest = fdir.name.partition("_")
        role, _, shape = rest.rpartition("_")
        if not role:
            continue
        shape = f"{shape} {role}"
        for n in threads:
            est = criterion_estimate("gemm", fdir.name, f"threads_{n}", since)
            if est is None or not est["this_run"] or not est["throughput"]:
                continue
            flops = est["throughput"]["Elements"]
            est["gflops"] = flops / (est["median_ms"] * 1e-3) / 1e9
            out.setdefault(kernel, {}).setdefault(shape, {})[n] = est
    return rc, out


def peaks(gemm, threads):
    """The peak of each thread count n: the best GFLOP/s on at most n threads (n threads can
    always do what fewer do; on a loaded machine two may do less), with the kernel, shape and
    thread count that reached it."""
    out = {}
    for n in threads:
        for kernel, shapes in gemm.items():
            for shape, by_n in shapes.items():
                for used, est in by_n.items():
                    if used <= n and (n not in out or est["gflops"] > out[n]["gflops"]):
                        out[n] = {"gflops": est["gflops"], "kernel": kernel, "shape": shape,
                                  "threads": used}
    return out


def seqnn_pass(args, threads, keys, train_args, since):
    """One pass of seqnn's benches: {"inference": {key: {n: est}}, "train": ..., "rc": ...}."""
    ids = [WORKLOADS[k]["id"] for k in keys]
    rc = {"recurrent": cargo_bench("recurrent", "^recurrent_forward/" + alternatives(ids)
                                   + "/threads_" + alternatives(threads) + "$",
                                   bench_env(args))}
    inference = {}
    for key in keys:
        for n in threads:
            est = criterion_estimate("recurrent_forward", WORKLOADS[key]["id"],
                                     f"threads_{n}", since)
            if est is not None and est["this_run"]:
                inference.setdefault(key, {})[n] = est
    out = {"inference": inference, "rc": rc}
    if train_args is not None:
        import bench_train
        rc["train"] = bench_train.run_seqnn(train_args, threads, bench_env(args))
        out["train"] = {k: {n: e for n, e in d.items() if e["this_run"]}
                        for k, d in bench_train.read_seqnn(train_args, threads, since).items()}
    return out


# -- The tables --------------------------------------------------------------------------------

def fmt_time(ms):
    """A time in ms, in µs below a millisecond, with three significant digits or so."""
    return fmt_times([ms])


def fmt_times(values):
    """One time, or a range "lo–hi", in ms (µs below a millisecond); "–" for none."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return "–"
    top = values[-1]
    unit, scale = ("ms", 1.0) if top >= 1 else ("µs", 1e3)
    scaled = [v * scale for v in values]
    digits = 0 if scaled[-1] >= 100 else 1 if scaled[-1] >= 10 else 2
    parts = [f"{v:.{digits}f}" for v in (scaled[0], scaled[-1])]
    text = parts[0] if parts[0] == parts[1] else f"{parts[0]}–{parts[1]}"
    return f"{text} {unit}"


def fmt_ratio(values, suffix="×"):
    """A ratio or a range of them: two decimals, two significant digits below 0.1."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return "–"

    def one(v):
        return f"{v:.2f}" if v >= 0.1 else f"{v:.2g}"
    lo, hi = one(values[0]), one(values[-1])
    return (lo if lo == hi else f"{lo}–{hi}") + suffix


def fmt_share(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return "–"
    digits = 0 if 100 * values[-1] >= 10 else 1 if 100 * values[-1] >= 1 else 2
    lo, hi = f"{100 * values[0]:.{digits}f}", f"{100 * values[-1]:.{digits}f}"
    return (lo if lo == hi else f"{lo}–{hi}") + " %"


def gemm_table(gemm, threads):
    kernels = [k for k in ("packed", "matrixmultiply") if k in gemm]
    names = {"packed": "seqnn packed", "matrixmultiply": "matrixmultiply"}
    cols = [f"{names[k]}, {n} thread{'s' if n > 1 else ''}" for k in kernels for n in threads]
    lines = ["| product m×k×n | of | " + " | ".join(cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    # The squares first, then by workload.
    shapes = sorted({s for k in kernels for s in gemm[k]},
                    key=lambda s: (s.split(" ")[1] != "square", s.split(" ")[1],
                                   [int(d) for d in s.split(" ")[0].split("x")]))
    for shape in shapes:
        cells = []
        for k in kernels:
            for n in threads:
                est = gemm[k].get(shape, {}).get(n)
                cells.append(f"{est['gflops']:.0f}" if est else "–")
        dims, role = shape.split(" ")
        lines.append(f"| {dims.replace('x', '×')} | {role_words(role)} | " + " | ".join(cells)
                     + " |")
    return "\n".join(lines)


def role_words(role):
    """"w3_projection_first" → "W3 projection, first"; "square" stays."""
    words = role.split("_")
    if words[0] in WORKLOADS:
        words[0] = words[0].upper()
        return " ".join(words[:2]) + "".join(", " + w for w in words[2:])
    return role


def seqnn_times(passes, kind, key, n):
    return [p.get(kind, {}).get(key, {}).get(n, {}).get("median_ms") for p in passes]


def peer_ms(peers, lib, n, key):
    r = peers.get(lib, {}).get(n, {}).get("results", {}).get(key)
    return r["median_ms"] if r else None


def workload_table(kind, keys, labels, threads, libs, lib_names, passes, peers, flops=None,
                   peak=None):
    """The markdown table of `kind` ("inference" or "train"): a row per workload and thread
    count; with `flops` and `peak`, seqnn's share of the GEMM peak."""
    cols = ["seqnn"] + [lib_names[lib] for lib in libs] + ["seqnn / best peer"]
    if flops is not None:
        cols.append("share of GEMM peak")
    cols.append("speed-up over 1 thread")
    lines = ["| workload | threads | " + " | ".join(cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for key in keys:
        for n in threads:
            mine = [t for t in seqnn_times(passes, kind, key, n) if t is not None]
            theirs = [peer_ms(peers, lib, n, key) for lib in libs]
            cells = [fmt_times(mine)] + [fmt_times([t]) for t in theirs]
            best = min((t for t in theirs if t is not None), default=None)
            cells.append(fmt_ratio([t / best for t in mine]) if best else "–")
            if flops is not None:
                p = peak.get(n, {}).get("gflops")
                cells.append(fmt_share([flops[key] / (t * 1e-3) / 1e9 / p for t in mine])
                             if p else "–")
            ones = seqnn_times(passes, kind, key, 1)
            speedups = [a / b for a, b in zip(ones, seqnn_times(passes, kind, key, n))
                        if a is not None and b]
            cells.append(fmt_ratio(speedups) if n != 1 else "")
            label = labels[key] if n == threads[0] else ""
            lines.append(f"| {label} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def instruction_sets(flags):
    """AVX2 / FMA / AVX-512 as the CPU reports them, in words."""
    parts = []
    if "avx2" in flags:
        parts.append("AVX2" + (" + FMA" if "fma" in flags else ""))
    avx512 = sorted(f[len("avx512"):].lstrip("_").upper() for f in flags
                    if f.startswith("avx512"))
    if avx512:
        parts.append("AVX-512 (" + ", ".join(avx512) + ")")
    elif "avx2" in flags:
        parts.append("no AVX-512")
    return "; ".join(parts) or "neither AVX2 nor AVX-512"


def seqnn_kernel(flags):
    """The instruction set seqnn's kernels pick on this CPU (src/linalg/packed.rs's rule)."""
    if "avx512f" in flags and "fma" in flags:
        return "AVX-512"
    if "avx2" in flags and "fma" in flags:
        return "AVX2"
    return "portable"


def markdown(args, env, threads, keys, libs, gemm, peak, passes, peers, train_keys,
             train_peers, loads, wait_info):
    # The flags a run recorded (--render prints a run of another machine), or this CPU's.
    flags = set(env.get("cpu_flags") or cpu_flags())
    out = [f"CPU: {env['cpu_model']}, {env['sched_getaffinity']} CPUs usable; "
           f"{instruction_sets(flags)} (seqnn's kernels: {seqnn_kernel(flags)})",
           f"Date: {env['date']}; seqnn {str(env['seqnn_commit'])[:10]}, {env['rustc']}",
           f"Peers: {peer_versions(libs, peers, train_peers)}",
           f"Load average: start {loads['start']}; end {loads['end']}; idle before measuring: "
           f"{wait_info['idle_reached']} (waited {wait_info['waited_seconds']:.0f} s, "
           f"threshold load1 < {args.max_load})"]
    if args.quick:
        out.append("QUICK SMOKE RUN: these figures are no measurement.")
    out += ["", "f32 GEMM, GFLOP/s (criterion's median; 2 threads: the rows split in halves):",
            "", gemm_table(gemm, threads), ""]
    out.append("Peak (the best on at most that many threads): " + "; ".join(
        f"{n} thread{'s' if n > 1 else ''} {p['gflops']:.0f} GFLOP/s "
        f"({p['kernel']}, {p['shape'].split(' ')[0].replace('x', '×')} "
        f"{role_words(p['shape'].split(' ')[1])}, "
        f"{p['threads']} thread{'s' if p['threads'] > 1 else ''})"
        for n, p in sorted(peak.items())))
    out += ["", "Inference, median time per call (seqnn: criterion's median, two passes, one "
            "before the peers and one after; peers: median of their calls). seqnn / best peer "
            "below 1 is faster; share of GEMM peak: the workload's FLOPs over seqnn's time over "
            "the peak of the same thread count.", ""]
    labels = {k: WORKLOADS[k]["label"] for k in keys}
    flops = {k: WORKLOADS[k]["flops"] for k in keys}
    out.append(workload_table("inference", keys, labels, threads, libs, LIBS, passes, peers,
                              flops, peak))
    if train_keys:
        import bench_train
        tw = bench_train.workloads(args.train_samples)
        out += ["", f"Training, median time per epoch (peers: {args.train_epochs} timed epoch(s)"
                " after a warm-up one; seqnn: criterion's median of 10, two passes). Share of "
                "GEMM peak: the FLOPs of an epoch's products (the forward pass; the backward "
                "pass's state and weight gradients, and the input's gradient where a layer's "
                "input needs one: bench_train.py's epoch_flops) over seqnn's time over the peak "
                "of the same thread count.", ""]
        out.append(workload_table("train", train_keys, {k: tw[k]["label"] for k in train_keys},
                                  threads, libs, TRAIN_LIBS, passes, train_peers,
                                  {k: tw[k]["flops"] for k in train_keys}, peak))
    errors = [f"{lib} with {n} thread(s){what}: {r['error']}"
              for what, ps in (("", peers), (" (training)", train_peers))
              for lib, d in ps.items() for n, r in d.items() if "error" in r]
    errors += [f"pass {i + 1}: cargo bench --bench {b} exited with {rc}"
               for i, p in enumerate(passes) for b, rc in p["rc"].items() if rc != 0]
    errors += [f"pass {i + 1}: criterion counted {est['throughput']} FLOPs for {key}, "
               f"this script {flops[key]}"
               for i, p in enumerate(passes) for key, d in p["inference"].items()
               for est in d.values()
               if (est["throughput"] or {}).get("Elements") != flops[key]]
    if errors:
        out += [""] + errors
    return "\n".join(out)


# -- The driver ---------------------------------------------------------------------------------

def int_keys(value):
    """`value` from JSON with its dicts' keys that are integers (thread counts) as ints again."""
    if isinstance(value, dict):
        return {int(k) if k.isdigit() else k: int_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [int_keys(v) for v in value]
    return value


def render(path):
    """Prints the tables of the run that --json saved at `path`, as the run printed them, with
    what this script computes from its figures now (the training table's share of the GEMM
    peak, for a run older than it)."""
    run = int_keys(json.loads(Path(path).read_text()))
    args = argparse.Namespace(**run["settings"])
    keys = [k for k in WORKLOADS if k in run["workloads"]]
    train_keys = sorted(run.get("train_workloads") or {})
    libs = sorted({*run["peers"], *run["train_peers"]}, key=list(LIBS).index)
    threads = sorted(run["gemm_peak"])
    print(markdown(args, run["environment"], threads, keys, libs, run["gemm"],
                   run["gemm_peak"], run["seqnn_passes"], run["peers"], train_keys,
                   run["train_peers"], run["loadavg"], run["idle_wait"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", action="store_true",
                    help="also the training workloads T1-T4 of bench_train.py")
    ap.add_argument("--quick", action="store_true",
                    help="a short smoke run of the tools; its figures are no measurement")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated subset of " + ",".join(WORKLOADS))
    ap.add_argument("--render", metavar="JSON",
                    help="measure nothing: print the tables of a run that --json saved")
    add_run_options(ap, LIBS, "write the raw numbers here as JSON")
    args = ap.parse_args()

    keys = [k.strip() for k in args.workloads.split(",") if k.strip()]
    for k in keys:
        if k not in WORKLOADS:
            ap.error(f"unknown workload {k!r}")
    if args.worker:
        worker_main(args)
        return
    if args.render:
        render(args.render)
        return
    libs, threads = parse_run_options(ap, args, LIBS)
    if not set(threads) <= {1, 2}:
        ap.error("--threads: seqnn's benches run on 1 and 2 threads only")

    train_args = None
    train_keys = []
    if args.train:
        import bench_train
        args.train_samples = 256 if args.quick else bench_train.FULL_SAMPLES
        args.train_epochs = 1 if args.quick else 5
        train_keys = ["t1", "t2", "t3", "t4"]
        train_args = argparse.Namespace(workloads=",".join(train_keys),
                                        samples=args.train_samples, epochs=args.train_epochs)

    if args.quick:
        args.max_wait_seconds = 0
    wait_info = wait_as_asked(args)
    started = time.time()
    loads = {"start": loadavg()}

    print("== GEMM peak", file=sys.stderr)
    gemm_rc, gemm = gemm_pass(args, threads, started)
    peak = peaks(gemm, threads)
    loads["after gemm"] = loadavg()

    passes = []
    print("== seqnn, pass 1", file=sys.stderr)
    passes.append(seqnn_pass(args, threads, keys, train_args, time.time()))
    passes[-1]["rc"]["gemm"] = gemm_rc
    loads["after seqnn pass 1"] = loadavg()

    worker_args = ["--workloads", ",".join(keys)] + (["--quick"] if args.quick else [])
    peers, train_peers = {}, {}
    for lib in libs:
        for n in threads:
            print(f"== {lib}, {n} thread(s)", file=sys.stderr)
            peers.setdefault(lib, {})[n] = run_worker(__file__, lib, n, worker_args)
            if train_args is not None:
                import bench_train
                train_peers.setdefault(lib, {})[n] = bench_train.run_worker(lib, n, train_args)
            loads[f"after {lib} {n}"] = loadavg()

    print("== seqnn, pass 2", file=sys.stderr)
    passes.append(seqnn_pass(args, threads, keys, train_args, time.time()))
    loads["end"] = loadavg()

    env = machine_environment(ENV_VARS, started)
    env["cpu_flags"] = sorted(f for f in cpu_flags() if f.startswith(("avx", "fma")))
    env["seqnn_tree_clean"] = command_output(["git", "status", "--porcelain"]) == ""
    print()
    print(markdown(args, env, threads, keys, libs, gemm, peak, passes, peers, train_keys,
                   train_peers, loads, wait_info))

    if args.json:
        out = {"environment": env, "settings": vars(args), "idle_wait": wait_info,
               "loadavg": loads, "workloads": {k: WORKLOADS[k] for k in keys},
               "gemm": gemm, "gemm_peak": peak, "seqnn_passes": passes, "peers": peers,
               "train_peers": train_peers}
        if train_args is not None:
            import bench_train
            out["train_workloads"] = bench_train.workloads(args.train_samples)
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"\nJSON written to {args.json}")


if __name__ == "__main__":
    main()
