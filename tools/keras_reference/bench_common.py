"""Helpers shared by the bench_*.py scripts, so that they measure, count and wait alike.

Nothing here imports TensorFlow or PyTorch at import time (import_keras does, in a worker).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
        # Some architectures (e.g. aarch64) have no "model name" line.
        with open("/proc/cpuinfo") as fh:
            fields = {}
            for line in fh:
                if ":" in line:
                    k, v = line.split(":", 1)
                    fields.setdefault(k.strip(), v.strip())
            parts = [f"{k}={fields[k]}" for k in
                     ("CPU implementer", "CPU part", "CPU variant", "Features")
                     if k in fields]
            return "; ".join(parts) or "unknown"
    except OSError:
        return "unknown"


def cpu_flags():
    """The instruction-set flags of the first CPU in /proc/cpuinfo (x86 "flags", Arm
    "Features"), as a set; empty where there are none."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("flags", "features"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def flops_per_sample_step(units, inp, gates=1):
    return 2 * gates * units * (inp + units)


def time_fn(fn, warmup, min_runs, min_seconds, max_seconds):
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        if len(times) >= min_runs and elapsed >= min_seconds:
            break
        if elapsed >= max_seconds and len(times) >= 5:
            break
    return times


def loadavg():
    try:
        with open("/proc/loadavg") as fh:
            return fh.read().strip()
    except OSError:
        return "unavailable"


def load1():
    try:
        return float(loadavg().split()[0])
    except (ValueError, IndexError):
        return None


def wait_for_idle(max_load, max_wait, poll=15.0):
    """Wait until the 1-minute load average is below max_load."""
    t0 = time.monotonic()
    while True:
        l1 = load1()
        waited = time.monotonic() - t0
        if l1 is None:
            return {"idle_reached": None, "waited_seconds": waited,
                    "note": "no /proc/loadavg"}
        if l1 < max_load:
            return {"idle_reached": True, "waited_seconds": waited}
        if waited >= max_wait:
            print(f"  WARNING: load1={l1:.2f} still >= {max_load} after "
                  f"{waited:.0f} s; measuring anyway", file=sys.stderr)
            return {"idle_reached": False, "waited_seconds": waited}
        print(f"  waiting for idle: loadavg={loadavg()} "
              f"(waited {waited:.0f} s)", file=sys.stderr)
        sys.stderr.flush()
        time.sleep(poll)


def seq_input(n, steps, features):
    """The `(n, steps, features)` float32 input every library gets, the formula of
    benches/common/mod.rs: ((b*31 + t*17 + d*7) mod 23) / 23 - 0.5."""
    import numpy as np
    b, t, d = np.meshgrid(np.arange(n), np.arange(steps), np.arange(features), indexing="ij")
    return (((b * 31 + t * 17 + d * 7) % 23) / 23.0 - 0.5).astype(np.float32)


# -- Workers: one library, one thread count, in a process of its own --------------------------

def worker_env(lib, threads):
    """The environment of a worker for `lib` ("tf_keras", "keras3" or "torch") on `threads`
    threads: OMP_NUM_THREADS=threads; TF_USE_LEGACY_KERAS=1 for tf_keras (so that tf.keras is
    tf_keras too), KERAS_BACKEND=tensorflow for Keras 3."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if lib == "tf_keras":
        env["TF_USE_LEGACY_KERAS"] = "1"
    else:
        env.pop("TF_USE_LEGACY_KERAS", None)
    if lib == "keras3":
        env["KERAS_BACKEND"] = "tensorflow"
    return env


def run_worker(script, lib, threads, extra_args):
    """`script --worker lib --worker-threads threads --out FILE extra_args...` in a process of
    its own (its output on stderr); the JSON it writes to FILE, or {"error": ...}."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "worker.json")
        cmd = [sys.executable, str(Path(script).resolve()), "--worker", lib,
               "--worker-threads", str(threads), "--out", out] + list(extra_args)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=worker_env(lib, threads), cwd=Path(script).parent,
                              stdout=sys.stderr)
        if proc.returncode != 0 or not os.path.exists(out):
            return {"error": f"worker exited with {proc.returncode}"}
        with open(out) as fh:
            result = json.load(fh)
        result["process_seconds"] = time.perf_counter() - t0
        return result


def import_keras(lib, threads):
    """In a worker: TensorFlow with `threads` intra- and inter-op threads (set before its first
    operation, which fixes its pools), then tf_keras or Keras 3 (`lib`). Returns
    (tf, the Keras module, a dict of versions and thread settings)."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    tf.get_logger().setLevel("ERROR")
    if lib == "tf_keras":
        import tf_keras as K
    else:
        import keras as K
    env = {"tensorflow": tf.__version__, "keras": K.__version__, "numpy": np.__version__,
           "intra_op_parallelism_threads":
               tf.config.threading.get_intra_op_parallelism_threads(),
           "inter_op_parallelism_threads":
               tf.config.threading.get_inter_op_parallelism_threads()}
    if lib == "keras3":
        env["keras_backend"] = K.backend.backend()
    return tf, K, env


# -- seqnn's side: criterion -------------------------------------------------------------------

def criterion_dir():
    """Where criterion writes: CRITERION_HOME, else <cargo's target directory>/criterion."""
    if os.environ.get("CRITERION_HOME"):
        return Path(os.environ["CRITERION_HOME"])
    try:
        meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                              cwd=ROOT, capture_output=True, text=True, check=True)
        return Path(json.loads(meta.stdout)["target_directory"]) / "criterion"
    except (OSError, subprocess.CalledProcessError, ValueError, KeyError):
        return ROOT / "target" / "criterion"


def cargo_bench(bench, filter_regex, env_extra=None):
    """`cargo bench --bench <bench> -- <filter_regex>` at the repository root (its output on
    stderr); returns its exit code."""
    env = dict(os.environ)
    env.update(env_extra or {})
    cmd = ["cargo", "bench", "--bench", bench, "--", filter_regex]
    shown = " ".join(f"{k}={v}" for k, v in (env_extra or {}).items())
    print("  $ " + (shown + " " if shown else "") + " ".join(cmd), file=sys.stderr)
    sys.stderr.flush()
    return subprocess.run(cmd, cwd=ROOT, env=env, stdout=sys.stderr).returncode


def criterion_estimate(group, function_id, param, since=None):
    """criterion's last estimates of `<group>/<function_id>/<param>` (times in ms, the
    throughput as criterion recorded it), or None where there are none. `this_run` says whether
    they were written at or after `since` (a time.time())."""
    base = criterion_dir() / group / function_id / param / "new"
    path = base / "estimates.json"
    if not path.exists():
        return None
    with open(path) as fh:
        est = json.load(fh)
    throughput = None
    try:
        with open(base / "benchmark.json") as fh:
            throughput = json.load(fh).get("throughput")
    except (OSError, ValueError):
        pass
    mtime = path.stat().st_mtime
    return {
        "median_ms": est["median"]["point_estimate"] / 1e6,
        "median_ci_ms": [est["median"]["confidence_interval"]["lower_bound"] / 1e6,
                         est["median"]["confidence_interval"]["upper_bound"] / 1e6],
        "mean_ms": est["mean"]["point_estimate"] / 1e6,
        "throughput": throughput,
        "path": str(path),
        "written": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(mtime)),
        "this_run": since is not None and mtime >= since,
    }


def command_output(cmd):
    """The stripped stdout of `cmd` run at the repository root, or None if it fails."""
    try:
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


# -- The drivers' shared options and report lines ----------------------------------------------

def add_run_options(ap, libs, json_help):
    """--libs (a subset of `libs`), --threads, --json, --max-load, --max-wait-seconds, and a
    worker's internal --worker, --worker-threads, --out."""
    ap.add_argument("--libs", default=",".join(libs),
                    help="comma-separated subset of " + ",".join(libs))
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--json", help=json_help)
    ap.add_argument("--max-load", type=float, default=0.5,
                    help="wait until the 1-min load average is below this")
    ap.add_argument("--max-wait-seconds", type=float, default=900.0,
                    help="give up waiting for idle after this long (0 = do not wait)")
    ap.add_argument("--worker", choices=sorted(libs), help=argparse.SUPPRESS)
    ap.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)


def parse_run_options(ap, args, libs):
    """The libraries and the thread counts (sorted) that --libs and --threads ask for; an
    argparse error for anything else."""
    chosen = [lib.strip() for lib in args.libs.split(",") if lib.strip()]
    for lib in chosen:
        if lib not in libs:
            ap.error(f"unknown library {lib!r}")
    try:
        threads = sorted({int(n) for n in args.threads.split(",")})
    except ValueError:
        ap.error(f"--threads takes comma-separated integers, not {args.threads!r}")
    if not threads or threads[0] < 1:
        ap.error("--threads must be positive")
    return chosen, threads


def wait_as_asked(args):
    """wait_for_idle(--max-load, --max-wait-seconds), unless --max-wait-seconds is 0."""
    if args.max_wait_seconds <= 0:
        return {"idle_reached": None, "waited_seconds": 0.0}
    print(f"  waiting until load1 < {args.max_load} "
          f"(max {args.max_wait_seconds:.0f} s)...", file=sys.stderr)
    return wait_for_idle(args.max_load, args.max_wait_seconds)


def machine_environment(env_vars, started):
    """The machine, the toolchain and seqnn's commit, for a report's JSON; `env_vars` as
    seen, `started` (a time.time()) as the date."""
    return {
        "cpu_model": cpu_model(),
        "os.cpu_count": os.cpu_count(),
        "sched_getaffinity": (len(os.sched_getaffinity(0))
                              if hasattr(os, "sched_getaffinity") else None),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "rustc": command_output(["rustc", "--version"]),
        "seqnn_commit": command_output(["git", "rev-parse", "HEAD"]),
        "env_vars_as_seen": {k: os.environ.get(k) for k in env_vars},
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
    }


def peer_versions(libs, *peer_sets):
    """"PyTorch 2.15.0; tf_keras 2.21.0 on TensorFlow 2.21.0; ..." from the workers' JSON,
    each `peer_sets` {lib: {threads: worker result}}."""
    out = []
    for lib in libs:
        e = next((r["environment"] for peers in peer_sets for r in peers.get(lib, {}).values()
                  if "environment" in r), None)
        if e is None:
            continue
        if lib == "torch":
            out.append(f"PyTorch {e['torch']}")
        else:
            out.append(f"{'tf_keras' if lib == 'tf_keras' else 'Keras'} {e['keras']} "
                       f"on TensorFlow {e['tensorflow']}")
    return "; ".join(out)
