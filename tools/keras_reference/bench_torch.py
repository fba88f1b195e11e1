#!/usr/bin/env python3
"""Benchmark PyTorch recurrent-module forward passes on CPU.

Companion to bench_keras.py: same workloads, same FLOP counting, same
median/min reporting and output format, so the two tables can be compared
side by side. Times each workload after warm-up, under torch.inference_mode():
eager module call, a torch.jit.script-ed module, and (optionally) a
torch.compile-d module.

Usage:
    .venv-ref/bin/python tools/keras_reference/bench_torch.py [--json out.json]
        [--min-runs 20] [--min-seconds 3] [--budget-seconds 300]
        [--threads 2] [--methods eager,jit.script,compile]
        [--max-load 0.5] [--max-wait-seconds 900]

torch is NOT in requirements.txt; install it into the venv by hand
(`.venv-ref/bin/pip install torch`).

Before measuring, waits until the 1-minute load average (/proc/loadavg) is
below --max-load (polling every 15 s, at most --max-wait-seconds, then
measures anyway and says so). The load average is printed at the start and
end of the measurement.

torch.set_num_threads(--threads) is applied (default 2); the default thread
counts torch chose are printed first. OMP_*/MKL_* variables are recorded as
seen, never set.

"compile" is torch.compile(module) with the default inductor backend. Note
that dynamo does not trace nn.RNN/LSTM/GRU unless
torch._dynamo.config.allow_rnn is True, so by default the RNN op itself runs
eagerly (graph break) and only the surrounding code is compiled;
--compile-allow-rnn traces it instead (on the 2-core machine this did not
finish compiling within 400 s for these workloads, so it is off by default).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings

# Snapshot the relevant env vars before torch is imported (recorded as seen).
ENV_VARS = [
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "KMP_AFFINITY",
    "ATEN_CPU_CAPABILITY",
    "TORCH_COMPILE_DISABLE",
    "CXX",
]
ENV_SEEN = {k: os.environ.get(k) for k in ENV_VARS}

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from bench_common import (cpu_model, flops_per_sample_step, loadavg,  # noqa: E402
                          time_fn, wait_for_idle)

# torch.jit.script is deprecated in torch >= 2.10 but still works; keep the
# log readable.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated",
                        category=FutureWarning)


def torch_build_info():
    info = {}
    try:
        info["mkldnn_available"] = bool(torch.backends.mkldnn.is_available())
        info["mkl_available"] = bool(torch.backends.mkl.is_available())
        info["openmp_available"] = bool(torch.backends.openmp.is_available())
    except Exception as e:  # pragma: no cover - best effort
        info["backends"] = f"unavailable ({type(e).__name__})"
    try:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except Exception:
        pass
    try:
        cfg = torch.__config__.show()
        for line in cfg.splitlines():
            line = line.strip()
            for key in ("BLAS_INFO", "LAPACK_INFO", "CXX_COMPILER",
                        "USE_MKLDNN", "USE_OPENMP", "CUDA_VERSION"):
                if line.startswith(key + "=") or f" {key}=" in line:
                    for part in line.split(","):
                        part = part.strip()
                        if part.startswith(key + "="):
                            info[key] = part.split("=", 1)[1]
    except Exception:
        pass
    info["cuda_available"] = bool(torch.cuda.is_available())
    return info


class LastH(nn.Module):
    """Wrap an RNN/GRU/LSTM; return the last layer's final hidden state,
    i.e. what Keras returns with return_sequences=False."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        _, h = self.rnn(x)
        return h[-1]


class LastHLSTM(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        _, hc = self.rnn(x)
        return hc[0][-1]


class Seq(nn.Module):
    """Return the full output sequence (Keras return_sequences=True)."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        y, _ = self.rnn(x)
        return y


def build_workloads():
    ws = []

    def simple(units, t, f, batch, **kw):
        m = LastH(nn.RNN(f, units, batch_first=True, nonlinearity="tanh",
                         **kw))
        return m, (batch, t, f), batch * t * flops_per_sample_step(units, f)

    ws.append(("notebook_8x2x10_u3",) + simple(3, 2, 10, 8))
    ws.append(("64x100x128_u256_last",) + simple(256, 100, 128, 64))

    # Bidirectional stack: 4 layers, 2 directions each (concat -> 256).
    b, t, f, u = 32, 50, 64, 128
    m = Seq(nn.RNN(f, u, num_layers=4, bidirectional=True, batch_first=True,
                   nonlinearity="tanh"))
    fl = 0
    for i in range(4):
        inp = f if i == 0 else 2 * u
        fl += 2 * flops_per_sample_step(u, inp)
    ws.append(("bidi4_32x50x64_u128", m, (b, t, f), b * t * fl))

    b, t, f, u = 64, 100, 128, 256
    m = LastHLSTM(nn.LSTM(f, u, batch_first=True))
    ws.append(("lstm_64x100x128_u256_last", m, (b, t, f),
               b * t * flops_per_sample_step(u, f, gates=4)))
    m = LastH(nn.GRU(f, u, batch_first=True))
    ws.append(("gru_64x100x128_u256_last", m, (b, t, f),
               b * t * flops_per_sample_step(u, f, gates=3)))
    for _, m, _, _ in ws:
        m.eval()
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
    ap.add_argument("--threads", type=int, default=2,
                    help="torch.set_num_threads value (0 = leave default)")
    ap.add_argument("--methods", default="eager,jit.script,compile",
                    help="comma-separated subset of eager,jit.script,compile")
    ap.add_argument("--compile-allow-rnn", action="store_true",
                    help="set torch._dynamo.config.allow_rnn=True so dynamo "
                    "traces the RNN modules instead of running them eagerly")
    ap.add_argument("--max-load", type=float, default=0.5,
                    help="wait until the 1-min load average is below this")
    ap.add_argument("--max-wait-seconds", type=float, default=900.0,
                    help="give up waiting for idle after this long "
                    "(0 = do not wait)")
    args = ap.parse_args()

    methods_wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods_wanted:
        if m not in ("eager", "jit.script", "compile"):
            ap.error(f"unknown method {m!r}")

    default_threads = torch.get_num_threads()
    default_interop = torch.get_num_interop_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "torch_git_version": getattr(torch.version, "git_version", None),
        "torch_cuda_build": torch.version.cuda,
        "numpy": np.__version__,
        "cpu_model": cpu_model(),
        "os.cpu_count": os.cpu_count(),
        "sched_getaffinity": (len(os.sched_getaffinity(0))
                              if hasattr(os, "sched_getaffinity") else None),
        "env_vars_as_seen": ENV_SEEN,
        "torch_build": torch_build_info(),
        "default_num_threads": default_threads,
        "default_num_interop_threads": default_interop,
        "num_threads_used": torch.get_num_threads(),
        "num_interop_threads_used": torch.get_num_interop_threads(),
    }

    print("== Environment ==")
    for k, v in env.items():
        print(f"  {k}: {v}")
    print(f"  settings: warmup={args.warmup} min_runs={args.min_runs} "
          f"min_seconds={args.min_seconds} budget_seconds={args.budget_seconds}"
          f" methods={','.join(methods_wanted)}"
          f" compile_allow_rnn={args.compile_allow_rnn}")
    sys.stdout.flush()

    if "compile" in methods_wanted and args.compile_allow_rnn:
        import importlib
        importlib.import_module("torch._dynamo").config.allow_rnn = True

    workloads = build_workloads()
    n_cells = len(workloads) * len(methods_wanted)
    # Per-measurement cap so the whole script stays within budget.
    per_cell_cap = max(args.min_seconds, args.budget_seconds / n_cells)

    wait_info = {"idle_reached": None, "waited_seconds": 0.0}
    if args.max_wait_seconds > 0:
        print(f"  waiting until load1 < {args.max_load} "
              f"(max {args.max_wait_seconds:.0f} s)...", file=sys.stderr)
        wait_info = wait_for_idle(args.max_load, args.max_wait_seconds)
    load_start = loadavg()
    print(f"  loadavg at start of measurement: {load_start} "
          f"(idle_reached={wait_info['idle_reached']}, "
          f"waited {wait_info['waited_seconds']:.0f} s)")
    sys.stdout.flush()

    results = []
    skipped = {}
    script_t0 = time.perf_counter()
    with torch.inference_mode():
        for name, model, shape, flops in workloads:
            x_np = rng.uniform(-0.5, 0.5, size=shape).astype(np.float32)
            x = torch.from_numpy(x_np)

            fns = {}
            setup_s = {}
            if "eager" in methods_wanted:
                fns["eager"] = model
                setup_s["eager"] = 0.0
            if "jit.script" in methods_wanted:
                try:
                    t0 = time.perf_counter()
                    sm = torch.jit.script(model)
                    sm(x)
                    setup_s["jit.script"] = time.perf_counter() - t0
                    fns["jit.script"] = sm
                except Exception as e:
                    skipped[f"{name}/jit.script"] = f"{type(e).__name__}: {e}"
            if "compile" in methods_wanted:
                try:
                    t0 = time.perf_counter()
                    cm = torch.compile(model)
                    cm(x)  # triggers compilation
                    setup_s["compile"] = time.perf_counter() - t0
                    fns["compile"] = cm
                except Exception as e:
                    skipped[f"{name}/compile"] = \
                        f"{type(e).__name__}: {str(e)[:500]}"
            for k, v in skipped.items():
                if k.startswith(name + "/"):
                    print(f"  SKIPPED {k}: {v}", file=sys.stderr)

            # Sanity: all paths agree.
            y_ref = model(x).numpy()
            maxdiff = 0.0
            for mname, m in fns.items():
                maxdiff = max(maxdiff,
                              float(np.max(np.abs(m(x).numpy() - y_ref))))

            for mname in methods_wanted:
                if mname not in fns:
                    continue
                m = fns[mname]
                ts = time_fn(lambda m=m: m(x).numpy(), args.warmup,
                             args.min_runs, args.min_seconds, per_cell_cap)
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
                    "setup_seconds": setup_s.get(mname, 0.0),
                }
                results.append(r)
                print(f"  done {name:28s} {mname:12s} runs={len(ts):5d} "
                      f"median={r['median_ms']:.3f} ms", file=sys.stderr)
                sys.stderr.flush()
    total = time.perf_counter() - script_t0
    load_end = loadavg()

    print()
    print("== Results (times include .numpy() host copy, zero-copy on CPU;"
          " under torch.inference_mode()) ==")
    hdr = (f"{'workload':28s} {'method':12s} {'runs':>5s} {'median ms':>11s} "
           f"{'min ms':>11s} {'GFLOP/s(med)':>13s} {'GFLOP/s(min)':>13s}")
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        print(f"{r['workload']:28s} {r['method']:12s} {r['runs']:5d} "
              f"{r['median_ms']:11.3f} {r['min_ms']:11.3f} "
              f"{r['gflops_at_median']:13.3f} {r['gflops_at_min']:13.3f}")
    for k, v in skipped.items():
        print(f"SKIPPED {k}: {v}")
    print(f"\nTotal measurement time: {total:.1f} s")
    print(f"loadavg at start: {load_start}")
    print(f"loadavg at end:   {load_end}")
    print(f"idle before measuring: {wait_info['idle_reached']} "
          f"(waited {wait_info['waited_seconds']:.0f} s, "
          f"threshold load1 < {args.max_load})")
    print("FLOPs: 2*units*(input+units) per sample per timestep per direction "
          "(x4 LSTM, x3 GRU); bidi stack input 64 then 256.")

    out = {"environment": env, "settings": vars(args),
           "total_measure_seconds": total,
           "loadavg_start": load_start, "loadavg_end": load_end,
           "idle_wait": wait_info, "skipped": skipped, "results": results}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
        print(f"JSON written to {args.json}")
    else:
        print("\n== JSON ==")
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
