"""Helpers shared by the bench_*.py scripts, so that they measure, count and wait alike.

Nothing here imports TensorFlow or PyTorch.
"""

import sys
import time


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
