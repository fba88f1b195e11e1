#!/usr/bin/env python3
"""Check `.keras` files (e.g. written by seqnn) with real Keras 3.

Each file is loaded with `keras.models.load_model` (Keras 3, TensorFlow
backend), run with `model.predict` on the input of its case, and compared
with the case's expected output (max abs diff <= --atol, default 1e-5).

Cases are `<case>.json` files in one of two formats:

  * tests/fixtures/files/ (see its README.md), single-input Sequential
    models: `input {shape, dtype, data}` and `expected {"keras3": {shape,
    data}, "tf_keras": {...}}` (one output);
  * tests/fixtures/functional/ and tests/fixtures/models/ (see their
    README.md): `inputs [{names, shape, dtype, data}, ...]` and
    `expected {"keras3": [{shape, data}, ...], ...}`, one entry per model
    input / output in the model's flat order (model.inputs /
    model.outputs; for dict inputs/outputs, sorted by key). The inputs are
    packed into the loaded model's own input structure (a dict model gets
    a dict) and its outputs flattened, with keras.tree. A case with
    `second_predict` (stateful models) is also predicted a second time
    without resetting the states and compared with it. A file listed in
    the case's `reload_failures` (Keras itself cannot load it back) that
    fails to load is reported XFAIL, not FAIL.

Stateful RNNs (of any nesting depth) are reset before the first predict.

Finding the case of a file `DIR/<stem>.keras`:
  * `--case NAME_OR_JSON` (applies to every file given), else
  * the first `<prefix>.json` that exists, trying the stem and then the stem
    with trailing dot-components removed (`text.seqnn.keras` ->
    `text.seqnn.json`, `text.json`), first next to the file, then in each
    --fixtures folder in order (default tests/fixtures/files,
    tests/fixtures/functional, tests/fixtures/models).

Usage (from the repository root):

    .venv-ref/bin/python tools/keras_reference/verify_seqnn_keras.py OUT_DIR
    .venv-ref/bin/python tools/keras_reference/verify_seqnn_keras.py \\
        tests/fixtures/files --glob '*.k3.keras'
    .venv-ref/bin/python tools/keras_reference/verify_seqnn_keras.py \\
        model.keras --case course_text_classifier
    .venv-ref/bin/python tools/keras_reference/verify_seqnn_keras.py \\
        tests/fixtures/functional tests/fixtures/models --glob '*.k3.keras'
    .venv-ref/bin/python tools/keras_reference/verify_seqnn_keras.py \\
        OUT_DIR --fixtures tests/fixtures/models tests/fixtures/functional

Prints one row per file (status PASS, FAIL, ERROR or XFAIL) and a final
`PASS`/`FAIL` line; exit code 0 when every file passes (or is an expected
failure), 1 when any fails (load error, wrong number or shape of outputs,
a difference above the tolerance), 2 on usage errors (nothing to check).

--expect chooses the reference: `keras3` (default; the file is evaluated by
Keras 3, so Keras 3 semantics apply, e.g. hard_sigmoid = relu6(x+3)/6),
`tf_keras`, or `auto` (keras3 when the case has it, else tf_keras).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ["KERAS_BACKEND"] = "tensorflow"

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FIXTURES = [ROOT / "tests" / "fixtures" / name
                    for name in ("files", "functional", "models")]


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Load .keras files with Keras 3 and compare predictions "
                    "with the expected outputs of their cases.")
    p.add_argument("paths", nargs="+",
                   help=".keras files and/or directories holding them")
    p.add_argument("--glob", default="*.keras",
                   help="file pattern inside directories (default *.keras)")
    p.add_argument("--case", help="case name or path of a <case>.json, for "
                                  "every file given")
    p.add_argument("--fixtures", nargs="+", action="extend", default=None,
                   metavar="DIR",
                   help="folders searched for <case>.json, in order (may be "
                        "repeated; put it after the paths; default "
                        "tests/fixtures/files, tests/fixtures/functional, "
                        "tests/fixtures/models)")
    p.add_argument("--atol", type=float, default=1e-5,
                   help="max abs difference allowed (default 1e-5)")
    p.add_argument("--expect", choices=["keras3", "tf_keras", "auto"],
                   default="keras3",
                   help="which expected output to compare with")
    p.add_argument("--verbose", action="store_true",
                   help="print full error messages")
    return p.parse_args(argv)


def collect_files(paths, pattern):
    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.glob(pattern) if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            print(f"error: {raw}: no such file or directory", file=sys.stderr)
            sys.exit(2)
    return files


def find_case_json(file, case_arg, fixtures):
    if case_arg:
        candidate = Path(case_arg)
        if candidate.suffix == ".json" and candidate.is_file():
            return candidate
        for folder in (file.parent, *fixtures):
            j = folder / f"{case_arg}.json"
            if j.is_file():
                return j
        return None
    stem = file.name[: -len(".keras")] if file.name.endswith(".keras") \
        else file.stem
    parts = stem.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        for folder in (file.parent, *fixtures):
            j = folder / f"{prefix}.json"
            if j.is_file():
                return j
    return None


def short(exc, verbose):
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    if verbose:
        return f"{type(exc).__name__}: {text}"
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    first = lines[0] if lines else ""
    if first.startswith("Exception encountered") and len(lines) > 1:
        first += " " + lines[1]
    if len(first) > 160:
        first = first[:157] + "..."
    return f"{type(exc).__name__}: {first}"


def reset_stateful(model):
    """reset_state() on every stateful layer, nested ones included."""
    layers = (model._flatten_layers(include_self=False, recursive=True)
              if hasattr(model, "_flatten_layers") else model.layers)
    for layer in layers:
        if getattr(layer, "stateful", False) and hasattr(layer,
                                                         "reset_state"):
            layer.reset_state()


def check_file(keras, np, file, case_json, args):
    """Returns a row dict: file, case, ref, shape, diff, status, detail."""
    row = {"file": str(file), "case": "-", "ref": "-", "shape": "-",
           "diff": "-", "status": "ERROR", "detail": ""}
    if case_json is None:
        row["detail"] = "no <case>.json found (use --case)"
        return row
    with open(case_json, encoding="utf-8") as fh:
        case = json.load(fh)
    row["case"] = case.get("case", case_json.stem)
    expected_all = case.get("expected", {})
    if args.expect == "auto":
        ref = "keras3" if "keras3" in expected_all else "tf_keras"
    else:
        ref = args.expect
    if ref not in expected_all:
        row["detail"] = (f"case has no '{ref}' expected output "
                         f"(skipped: {case.get('skipped', {}).get(ref, '?')})")
        return row
    row["ref"] = ref
    if "inputs" in case:
        return check_multi(keras, np, file, case, ref, row, args)
    inp = case["input"]
    x = np.asarray(inp["data"], dtype=inp.get("dtype", "float32")).reshape(
        inp["shape"])
    exp = expected_all[ref]
    want = np.asarray(exp["data"], dtype=np.float64).reshape(exp["shape"])

    try:
        keras.backend.clear_session()
        model = keras.models.load_model(str(file), compile=False)
    except Exception as exc:  # noqa: BLE001 - reported in the table
        row["detail"] = "load failed: " + short(exc, args.verbose)
        return row
    try:
        for layer in model.layers:
            if getattr(layer, "stateful", False) and hasattr(layer,
                                                             "reset_state"):
                layer.reset_state()
        got = np.asarray(model.predict(x, verbose=0, batch_size=len(x)))
    except Exception as exc:  # noqa: BLE001
        row["detail"] = "predict failed: " + short(exc, args.verbose)
        return row
    row["shape"] = "x".join(str(d) for d in got.shape)
    if list(got.shape) != list(want.shape):
        row["status"] = "FAIL"
        row["detail"] = (f"shape {list(got.shape)} != expected "
                         f"{list(want.shape)}")
        return row
    diff = float(np.max(np.abs(got.astype(np.float64) - want))) \
        if want.size else 0.0
    if not np.all(np.isfinite(got)):
        diff = float("inf")
    row["diff"] = f"{diff:.2e}"
    row["status"] = "PASS" if diff <= args.atol else "FAIL"
    if row["status"] == "FAIL":
        row["detail"] = f"max abs diff {diff:.3g} > {args.atol:g}"
    return row


def check_multi(keras, np, file, case, ref, row, args):
    """A case in the functional/models format: `inputs` and `expected[ref]`
    are lists in the model's flat input/output order."""
    xs = [np.asarray(i["data"], dtype=i.get("dtype", "float32"))
          .reshape(i["shape"]) for i in case["inputs"]]

    def arrays(entries):
        return [np.asarray(t["data"], dtype=np.float64).reshape(t["shape"])
                for t in entries]
    wants = [("", arrays(case["expected"][ref]))]
    second = case.get("second_predict", {}).get(ref)
    if second is not None:
        wants.append(("second predict: ", arrays(second)))

    known = case.get("reload_failures", {}).get(file.name)
    try:
        keras.backend.clear_session()
        model = keras.models.load_model(str(file), compile=False)
    except Exception as exc:  # noqa: BLE001 - reported in the table
        row["detail"] = "load failed: " + short(exc, args.verbose)
        if known:
            row["status"] = "XFAIL"
            row["detail"] += " (expected: listed in the case's reload_failures)"
        return row
    if len(model.inputs) != len(xs):
        row["status"] = "FAIL"
        row["detail"] = (f"the model has {len(model.inputs)} inputs, the "
                         f"case {len(xs)}")
        return row
    struct = getattr(model, "_inputs_struct", None)
    feed = (keras.tree.pack_sequence_as(struct, xs) if struct is not None
            else (xs[0] if len(xs) == 1 else xs))
    worst, shapes = 0.0, None
    try:
        reset_stateful(model)
        results = []
        for _ in wants:
            y = model.predict(feed, verbose=0, batch_size=len(xs[0]))
            results.append([np.asarray(t) for t in keras.tree.flatten(y)])
    except Exception as exc:  # noqa: BLE001
        row["detail"] = "predict failed: " + short(exc, args.verbose)
        return row
    for (label, want), got in zip(wants, results):
        if shapes is None:
            shapes = ",".join("x".join(str(d) for d in g.shape) for g in got)
            row["shape"] = shapes
        if len(got) != len(want):
            row["status"] = "FAIL"
            row["detail"] = (f"{label}{len(got)} outputs, expected "
                             f"{len(want)}")
            return row
        for k, (g, w) in enumerate(zip(got, want)):
            if list(g.shape) != list(w.shape):
                row["status"] = "FAIL"
                row["detail"] = (f"{label}output {k}: shape {list(g.shape)} "
                                 f"!= expected {list(w.shape)}")
                return row
            if not np.all(np.isfinite(g)):
                worst = float("inf")
            elif w.size:
                worst = max(worst, float(np.max(np.abs(
                    g.astype(np.float64) - w))))
    row["diff"] = f"{worst:.2e}"
    row["status"] = "PASS" if worst <= args.atol else "FAIL"
    if row["status"] == "FAIL":
        row["detail"] = f"max abs diff {worst:.3g} > {args.atol:g}"
    return row


def print_table(rows):
    headers = ["file", "case", "ref", "shape", "max|diff|", "status"]
    keys = ["file", "case", "ref", "shape", "diff", "status"]
    cells = [[str(r[k]) for k in keys] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("-" * len(line))
    for r, c in zip(rows, cells):
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)))
        if r["detail"]:
            print(f"    -> {r['detail']}")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    files = collect_files(args.paths, args.glob)
    if not files:
        print("error: no files to check", file=sys.stderr)
        return 2

    warnings.filterwarnings("ignore")
    import numpy as np
    import tensorflow as tf
    import keras
    tf.get_logger().setLevel("ERROR")
    try:
        import absl.logging
        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass

    fixtures = ([Path(f) for raw in args.fixtures
                 for f in raw.split(os.pathsep) if f]
                if args.fixtures else DEFAULT_FIXTURES)
    rows = []
    for file in files:
        case_json = find_case_json(file, args.case, fixtures)
        rows.append(check_file(keras, np, file, case_json, args))

    try:
        base = Path.cwd()
        for r in rows:
            p = Path(r["file"]).resolve()
            if p.is_relative_to(base):
                r["file"] = str(p.relative_to(base))
    except (ValueError, OSError):
        pass
    print(f"Keras {keras.__version__} (backend {keras.backend.backend()}), "
          f"tolerance {args.atol:g}, reference '{args.expect}'")
    print_table(rows)
    passed = sum(r["status"] == "PASS" for r in rows)
    xfailed = sum(r["status"] == "XFAIL" for r in rows)
    failed = len(rows) - passed - xfailed
    verdict = "PASS" if failed == 0 else "FAIL"
    print(f"{verdict}: {passed}/{len(rows)} files passed"
          + (f", {xfailed} expected failures (reload_failures)"
             if xfailed else "")
          + (f", {failed} failed" if failed else ""))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
