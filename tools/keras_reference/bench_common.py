"""Helpers shared by bench_keras.py and bench_torch.py, so that both measure and count alike.

Nothing here imports TensorFlow or PyTorch.
"""

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
