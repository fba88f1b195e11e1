#!/usr/bin/env python3
"""Time one training epoch in seqnn, tf_keras, Keras 3 and PyTorch, in one run.

The figures the README sets beside seqnn's `cargo bench --bench train`. Run from the
repository root:

    .venv-ref/bin/python tools/keras_reference/bench_train.py --with-seqnn
        [--libs tf_keras,keras3,torch] [--threads 1,2] [--epochs 5]
        [--workloads t1,t2,t3,t4] [--samples 2048] [--json out.json]
        [--max-load 0.5] [--max-wait-seconds 900]

Workloads (the same as benches/train.rs, on the same numbers: the inputs and targets are
its formulas):

    T1  SimpleRNN(3) -> Dense(1)                         x (256, 2, 10)   batch 32  SGD(0.01)  mse
    T2  LSTM(128) -> Dense(1)                            x (2048, 50, 32) batch 64  Adam       mse
    T3  Embedding(5000, 64) -> Bidirectional(LSTM(64))
        -> Dense(1, sigmoid)                             ids (2048, 80)   batch 64  Adam       binary cross-entropy
    T4  GRU(128, return_sequences)
        -> TimeDistributed(Dense(16))                    x (2048, 40, 16) batch 64  RMSprop    mse

Each library, for each thread count:
- tf_keras 2.21 and Keras 3.15 (TensorFlow backend, its defaults: no XLA on a CPU-only
  machine): `model.fit(x, y, batch_size, epochs=1, verbose=0)` (shuffled), once to warm up
  (tracing), then --epochs more times, each timed;
- PyTorch: a plain loop over a shuffled epoch (zero_grad, forward, loss, backward, step) with
  nn.RNN / nn.LSTM / nn.GRU / nn.Embedding / nn.Linear and the optimizers at Keras's default
  hyperparameters (SGD lr 0.01; Adam lr 1e-3, betas (0.9, 0.999), eps 1e-7; RMSprop lr 1e-3,
  alpha 0.9, eps 1e-7), one warm-up epoch, then --epochs timed;
- seqnn: criterion's median of ten epochs (benches/train.rs), read from
  target/criterion/train_epoch/<id>/threads_<n>/new/estimates.json. --with-seqnn runs
  `cargo bench --bench train` first, so that its column is measured in the same run; without
  it, the results already there are read (and their time shown), or the column is empty.

The median epoch is reported. Every library and thread count runs in a process of its own
(this script with --worker): TensorFlow fixes its thread pools at its first operation, torch
its OpenMP pool at start, and tf_keras and Keras 3 are best kept apart. A worker with n threads
has OMP_NUM_THREADS=n and sets tf.config.threading's intra- and inter-op threads to n (TF), or
torch.set_num_threads(n) and torch.set_num_interop_threads(n). The tf_keras worker has
TF_USE_LEGACY_KERAS=1 (so tf.keras is tf_keras too), the Keras 3 worker KERAS_BACKEND=tensorflow.
seqnn's thread count is seqnn::set_num_threads(n). Other variables (TF_ENABLE_ONEDNN_OPTS,
OPENBLAS_*) are recorded as seen, never set.

Before measuring, waits until the 1-minute load average is below --max-load (at most
--max-wait-seconds; 0 does not wait), as bench_torch.py does.

--samples n (and --epochs 1) make a quick check of the tools: T2-T4 train on n samples, in every
library (seqnn through SEQNN_BENCH_TRAIN_SAMPLES); the figures are then no measurement.

Prints a markdown table (milliseconds per epoch, and each peer's time over seqnn's) with the
CPU model, then the JSON of everything (or writes it to --json).
"""

import argparse
import json
import os
import statistics
import sys
import time

from bench_common import (add_run_options, cargo_bench, criterion_estimate, import_keras,
                          loadavg, machine_environment, parse_run_options, peer_versions,
                          run_worker as run_worker_process, seq_input, wait_as_asked)

LIBS = {"tf_keras": "tf_keras fit", "keras3": "Keras 3 fit", "torch": "PyTorch loop"}

ENV_VARS = [
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_USE_LEGACY_KERAS",
    "KERAS_BACKEND",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "RAYON_NUM_THREADS",
]

FULL_SAMPLES = 2048


# -- The workloads ---------------------------------------------------------------------------

def recurrent_train_flops(gates, units, features, input_gradient):
    """The multiply-add FLOPs (2 per multiply-add) of one sample step of a recurrent layer in
    training: the forward products (`x·kernel`, `h·recurrent_kernel`), then the backward
    pass's `d_z·recurrent_kernelᵀ`, its weight gradients `xᵀ·d_z` and `hᵀ·d_z`, and, only
    where the layer's input needs a gradient (not where it reads the data), `d_z·kernelᵀ`."""
    width = gates * units
    forward = 2 * width * (features + units)
    backward = 2 * width * units + 2 * width * (features + units)
    return forward + backward + (2 * width * features if input_gradient else 0)


def dense_train_flops(inputs, units, input_gradient):
    """The same for a Dense layer on one row: `x·kernel`, `xᵀ·d_y`, and `d_y·kernelᵀ` where
    its input needs a gradient."""
    return 2 * inputs * units * (3 if input_gradient else 2)


def epoch_flops(key, n):
    """The FLOPs of the products of one epoch of workload `key` on `n` samples, as
    recurrent_train_flops and dense_train_flops count them (an Embedding's gather and
    scatter count none): what the training table's share of the GEMM peak divides by."""
    if key == "t1":
        per_sample = 2 * recurrent_train_flops(1, 3, 10, False) + dense_train_flops(3, 1, True)
    elif key == "t2":
        per_sample = 50 * recurrent_train_flops(4, 128, 32, False) + dense_train_flops(
            128, 1, True)
    elif key == "t3":
        # Both directions of the Bidirectional, each on the Embedding's 64 values.
        per_sample = 2 * 80 * recurrent_train_flops(4, 64, 64, True) + dense_train_flops(
            128, 1, True)
    elif key == "t4":
        per_sample = 40 * (recurrent_train_flops(3, 128, 16, False)
                           + dense_train_flops(128, 16, True))
    else:
        raise ValueError(key)
    return n * per_sample


def workloads(samples):
    """The four workloads, keyed t1..t4, with criterion's ids (benches/train.rs) and their
    FLOPs per epoch (epoch_flops)."""
    n = samples
    found = {
        "t1": {"id": "t1_simplernn3_256x2x10",
               "label": "T1 `SimpleRNN(3) → Dense(1)`, x `(256, 2, 10)`, batch 32, SGD(0.01), mse",
               "n": 256, "batch": 32},
        "t2": {"id": f"t2_lstm128_{n}x50x32",
               "label": f"T2 `LSTM(128) → Dense(1)`, x `({n}, 50, 32)`, batch 64, Adam, mse",
               "n": n, "batch": 64},
        "t3": {"id": f"t3_embed_bilstm64_{n}x80",
               "label": (f"T3 `Embedding(5000, 64) → Bidirectional(LSTM(64)) → Dense(1, sigmoid)`,"
                         f" ids `({n}, 80)`, batch 64, Adam, binary cross-entropy"),
               "n": n, "batch": 64},
        "t4": {"id": f"t4_gru128_seq_td16_{n}x40x16",
               "label": (f"T4 `GRU(128, return_sequences) → TimeDistributed(Dense(16))`,"
                         f" x `({n}, 40, 16)`, batch 64, RMSprop, mse"),
               "n": n, "batch": 64},
    }
    for key, w in found.items():
        w["flops"] = epoch_flops(key, w["n"])
    return found


def data(key, n):
    """Inputs and targets of workload `key`, with benches/train.rs's formulas (numpy, float32;
    T3's ids int64)."""
    import numpy as np

    def targets():
        return (((np.arange(n) * 13) % 11) / 11.0 - 0.5).astype(np.float32).reshape(n, 1)

    if key == "t1":
        return seq_input(n, 2, 10), targets()
    if key == "t2":
        return seq_input(n, 50, 32), targets()
    if key == "t3":
        b, t = np.meshgrid(np.arange(n), np.arange(80), indexing="ij")
        ids = ((b * 131 + t * 71) % 5000).astype(np.int64)
        labels = (np.arange(n) % 2).astype(np.float32).reshape(n, 1)
        return ids, labels
    if key == "t4":
        b, t, d = np.meshgrid(np.arange(n), np.arange(40), np.arange(16), indexing="ij")
        y = (((b * 7 + t * 5 + d * 3) % 19) / 19.0 - 0.5).astype(np.float32)
        return seq_input(n, 40, 16), y
    raise ValueError(key)


# -- Workers: one library, one thread count, in a process of its own --------------------------

def keras_model(K, key):
    """The Keras model of workload `key`, compiled, in tf_keras or Keras 3 (`K`)."""
    L = K.layers
    if key == "t1":
        layers = [K.Input((2, 10)), L.SimpleRNN(3), L.Dense(1)]
        opt, loss = K.optimizers.SGD(learning_rate=0.01), "mse"
    elif key == "t2":
        layers = [K.Input((50, 32)), L.LSTM(128), L.Dense(1)]
        opt, loss = K.optimizers.Adam(), "mse"
    elif key == "t3":
        layers = [K.Input((80,)), L.Embedding(5000, 64), L.Bidirectional(L.LSTM(64)),
                  L.Dense(1, activation="sigmoid")]
        opt, loss = K.optimizers.Adam(), "binary_crossentropy"
    elif key == "t4":
        layers = [K.Input((40, 16)), L.GRU(128, return_sequences=True),
                  L.TimeDistributed(L.Dense(16))]
        opt, loss = K.optimizers.RMSprop(), "mse"
    else:
        raise ValueError(key)
    model = K.Sequential(layers)
    model.compile(optimizer=opt, loss=loss)
    return model


def worker_keras(lib, threads, keys, samples, epochs):
    import numpy as np
    _, K, env = import_keras(lib, threads)
    results = {}
    for key in keys:
        w = workloads(samples)[key]
        x, y = data(key, w["n"])
        if key == "t3":
            x = x.astype(np.int32)
        K.utils.set_random_seed(0)
        model = keras_model(K, key)

        def epoch():
            model.fit(x, y, batch_size=w["batch"], epochs=1, verbose=0)

        results[key] = timed_epochs(epoch, epochs)
        if lib == "keras3":
            results[key]["jit_compile"] = bool(model.jit_compile)
        report(lib, threads, key, results[key])
    return env, results


def worker_torch(threads, keys, samples, epochs):
    import numpy as np
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)

    class Last(nn.Module):
        """rnn, then Dense on the last output state: Keras's return_sequences=False."""

        def __init__(self, rnn, units, out):
            super().__init__()
            self.rnn, self.dense = rnn, nn.Linear(units, out)

        def forward(self, x):
            _, h = self.rnn(x)
            h = h[0] if isinstance(h, tuple) else h
            return self.dense(h[-1])

    class EmbedBiLSTM(nn.Module):
        """Embedding, Bidirectional(LSTM) with Keras's concat of the two last states, Dense
        with a sigmoid."""

        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(5000, 64)
            self.lstm = nn.LSTM(64, 64, batch_first=True, bidirectional=True)
            self.dense = nn.Linear(128, 1)

        def forward(self, ids):
            _, (h, _) = self.lstm(self.embedding(ids))
            return torch.sigmoid(self.dense(torch.cat([h[-2], h[-1]], dim=1)))

    class GRUSeq(nn.Module):
        """GRU with return_sequences, then Dense on every step: TimeDistributed(Dense)."""

        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(16, 128, batch_first=True)
            self.dense = nn.Linear(128, 16)

        def forward(self, x):
            y, _ = self.gru(x)
            return self.dense(y)

    def build(key):
        if key == "t1":
            m = Last(nn.RNN(10, 3, batch_first=True, nonlinearity="tanh"), 3, 1)
            return m, torch.optim.SGD(m.parameters(), lr=0.01), nn.MSELoss()
        if key == "t2":
            m = Last(nn.LSTM(32, 128, batch_first=True), 128, 1)
            return m, torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.9, 0.999),
                                       eps=1e-7), nn.MSELoss()
        if key == "t3":
            m = EmbedBiLSTM()
            return m, torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.9, 0.999),
                                       eps=1e-7), nn.BCELoss()
        if key == "t4":
            m = GRUSeq()
            return m, torch.optim.RMSprop(m.parameters(), lr=1e-3, alpha=0.9,
                                          eps=1e-7), nn.MSELoss()
        raise ValueError(key)

    env = {"torch": torch.__version__, "numpy": np.__version__,
           "num_threads": torch.get_num_threads(),
           "num_interop_threads": torch.get_num_interop_threads()}
    results = {}
    for key in keys:
        w = workloads(samples)[key]
        x_np, y_np = data(key, w["n"])
        x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
        torch.manual_seed(0)
        model, opt, loss_fn = build(key)
        model.train()
        n, batch = w["n"], w["batch"]

        def epoch():
            order = torch.randperm(n)
            for start in range(0, n, batch):
                rows = order[start:start + batch]
                xb, yb = x[rows], y[rows]
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()

        results[key] = timed_epochs(epoch, epochs)
        report("torch", threads, key, results[key])
    return env, results


def timed_epochs(epoch, epochs):
    """One warm-up epoch, then `epochs` timed ones."""
    t0 = time.perf_counter()
    epoch()
    warmup = time.perf_counter() - t0
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    return {"median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3,
            "epochs_ms": [t * 1e3 for t in times], "warmup_ms": warmup * 1e3}


def report(lib, threads, key, r):
    print(f"  {lib:8s} threads={threads} {key}: median {r['median_ms']:.1f} ms "
          f"over {len(r['epochs_ms'])} epoch(s) (warm-up {r['warmup_ms']:.0f} ms)",
          file=sys.stderr)
    sys.stderr.flush()


def worker_main(args):
    keys = args.workloads.split(",")
    if args.worker == "torch":
        env, results = worker_torch(args.worker_threads, keys, args.samples, args.epochs)
    else:
        env, results = worker_keras(args.worker, args.worker_threads, keys, args.samples,
                                    args.epochs)
    env["env_vars_as_seen"] = {k: os.environ.get(k) for k in ENV_VARS}
    with open(args.out, "w") as fh:
        json.dump({"environment": env, "results": results}, fh, indent=2)


# -- The driver ---------------------------------------------------------------------------------

def run_worker(lib, threads, args):
    """This script as a worker for `lib` on `threads` threads; its JSON, or an error."""
    return run_worker_process(__file__, lib, threads,
                              ["--workloads", args.workloads, "--samples", str(args.samples),
                               "--epochs", str(args.epochs)])


def run_seqnn(args, threads, env_extra=None):
    """`cargo bench --bench train` for the chosen workloads; returns its exit code."""
    env = dict(env_extra or {})
    if args.samples != FULL_SAMPLES:
        env["SEQNN_BENCH_TRAIN_SAMPLES"] = str(args.samples)
    ws = workloads(args.samples)
    ids = [ws[k]["id"] for k in args.workloads.split(",")]
    return cargo_bench("train", "^train_epoch/(" + "|".join(ids) + ")/"
                       + "threads_(" + "|".join(str(n) for n in threads) + ")$", env)


def read_seqnn(args, threads, since=None):
    """criterion's estimates for each workload and thread count, as {key: {n: {...}}}."""
    out = {}
    for key in args.workloads.split(","):
        wid = workloads(args.samples)[key]["id"]
        for n in threads:
            est = criterion_estimate("train_epoch", wid, f"threads_{n}", since)
            if est is not None:
                out.setdefault(key, {})[n] = est
    return out


def fmt_ms(ms):
    if ms is None:
        return "–"
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def table(args, threads, libs, seqnn, peers):
    cols = ["seqnn"] + [LIBS[lib] for lib in libs]
    lines = ["| workload | threads | " + " | ".join(cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for key in args.workloads.split(","):
        label = workloads(args.samples)[key]["label"]
        for n in threads:
            s = seqnn.get(key, {}).get(n)
            s_ms = s["median_ms"] if s else None
            cells = [fmt_ms(s_ms)]
            for lib in libs:
                r = peers.get(lib, {}).get(n, {}).get("results", {}).get(key)
                ms = r["median_ms"] if r else None
                cell = fmt_ms(ms)
                if ms is not None and s_ms:
                    cell += f" ({ms / s_ms:.1f}×)"
                cells.append(cell)
            lines.append(f"| {label} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--with-seqnn", action="store_true",
                    help="run `cargo bench --bench train` first, in this run")
    ap.add_argument("--epochs", type=int, default=5,
                    help="timed epochs per workload after the warm-up one")
    ap.add_argument("--workloads", default="t1,t2,t3,t4",
                    help="comma-separated subset of t1,t2,t3,t4")
    ap.add_argument("--samples", type=int, default=FULL_SAMPLES,
                    help="samples of T2-T4 (T1 has 256); fewer for a quick check only")
    add_run_options(ap, LIBS, "write the JSON here instead of printing it")
    args = ap.parse_args()

    for k in args.workloads.split(","):
        if k not in workloads(args.samples):
            ap.error(f"unknown workload {k!r}")
    if args.epochs < 1 or args.samples < 1:
        ap.error("--epochs and --samples must be positive")
    if args.worker:
        worker_main(args)
        return
    libs, threads = parse_run_options(ap, args, LIBS)

    wait_info = wait_as_asked(args)
    started = time.time()
    loads = {"start": loadavg()}

    seqnn_rc = None
    if args.with_seqnn:
        seqnn_rc = run_seqnn(args, threads)
        loads["after seqnn"] = loadavg()
    seqnn = read_seqnn(args, threads, since=started if args.with_seqnn else None)

    peers = {}
    for lib in libs:
        for n in threads:
            print(f"== {lib}, {n} thread(s)", file=sys.stderr)
            peers.setdefault(lib, {})[n] = run_worker(lib, n, args)
            loads[f"after {lib} {n}"] = loadavg()
    loads["end"] = loadavg()

    env = machine_environment(ENV_VARS, started)

    quick = args.samples != FULL_SAMPLES or args.epochs < 3
    print()
    print(f"CPU: {env['cpu_model']} ({env['sched_getaffinity']} CPUs usable); "
          f"{env['date']}; seqnn {str(env['seqnn_commit'])[:10]}, {env['rustc']}")
    print("Peers: " + peer_versions(libs, peers))
    print(f"Median milliseconds per epoch ({args.epochs} timed epoch(s) after a warm-up one; "
          "seqnn: criterion's median of 10); in parentheses, the time over seqnn's.")
    if quick:
        print("QUICK CHECK (fewer samples or epochs): these figures are no measurement.")
    print()
    print(table(args, threads, libs, seqnn, peers))
    print()
    if args.with_seqnn and seqnn_rc != 0:
        print(f"cargo bench exited with {seqnn_rc}")
    stale = [f"{k}/threads_{n} ({v['written']})" for k, d in seqnn.items()
             for n, v in d.items() if not v["this_run"]]
    if stale:
        print("seqnn results read from an earlier run: " + ", ".join(stale))
    for lib in libs:
        for n, r in peers[lib].items():
            if "error" in r:
                print(f"{lib} with {n} thread(s): {r['error']}")
    print(f"loadavg: start {loads['start']}; end {loads['end']}; idle before measuring: "
          f"{wait_info['idle_reached']} (waited {wait_info['waited_seconds']:.0f} s, "
          f"threshold load1 < {args.max_load})")

    out = {"environment": env, "settings": vars(args), "idle_wait": wait_info,
           "loadavg": loads, "workloads": workloads(args.samples),
           "seqnn": seqnn, "peers": peers}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
        print(f"JSON written to {args.json}")
    else:
        print("\n== JSON ==")
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
