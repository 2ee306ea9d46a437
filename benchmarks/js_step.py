"""Per-step time of the JavaScript runtime beside the Python runtime, in one run.

    python benchmarks/js_step.py mnist-lstm.onnx ptb-small.onnx ptb-small.int8.onnx [--steps 400] [--rounds 3]
        [--json [PATH]]

For every model: one ``Stream.feed`` of one uint8 row (classifiers) or one word id (language
models), timed one by one after a warm-up, median, one thread everywhere: the Python runtime,
then ``js/bench/step.js``: rnnedge on onnxruntime-node (and the bare onnxruntime-node session, the
floor), on onnxruntime-web in Node, and on onnxruntime-web in headless Chromium with 1 thread and,
cross-origin isolated, 2 threads. Prints the ratios to the Python runtime (targets: node within
1.2x, WebAssembly within 3x), what a page downloads, and navigation to first prediction.
Needs ``npm ci`` in js/ and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
from results import Results, add_json_option

from rnnedge.runtime import ClassifierModel, load

JS = Path(__file__).resolve().parents[1] / "js"


BLOCK = 20  # steps timed together, as js/bench/workload.js does (a browser's clock is coarse)


def python_step(path: Path, steps: int, warmup: int = 60) -> float:
    """Median µs of one Stream.feed (one row or one word), timed as js/bench/workload.js times it."""
    rng = np.random.default_rng(1)
    with load(path, threads=1) as model:
        if isinstance(model, ClassifierModel):
            inputs: list = list(rng.integers(0, 256, (steps + warmup, model.feature_size), dtype=np.uint8))
        else:
            inputs = [[int(i)] for i in rng.integers(0, model.vocab_size, steps + warmup)]
        words = model.stream()
        blocks = []
        for i in range(0, len(inputs), BLOCK):
            stream = model.stream() if isinstance(model, ClassifierModel) else words  # a new image every block
            t0 = time.perf_counter()
            for x in inputs[i : i + BLOCK]:
                stream.feed(x)
            t1 = time.perf_counter()
            if i >= warmup:
                blocks.append((t1 - t0) / BLOCK)
    return statistics.median(blocks) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    add_json_option(parser)
    args = parser.parse_args()
    results = Results("js_step", __doc__, models=args.models)
    paths = [str(p.resolve()) for p in args.models]
    command = ["node", "bench/step.js", *paths, "--steps", str(args.steps), "--json"]
    if args.no_browser:
        command.append("--no-browser")
    # Rounds alternate the Python runtime and the JavaScript ones, so a busy spell of the machine
    # hits both; each cell is the best round (the least disturbed by other work), with the worst.
    python: dict[str, list[float]] = {p.name: [] for p in args.models}
    cells: dict[tuple[str, str], list[float]] = {}
    first: dict[tuple[str, str], list[float]] = {}  # navigation -> first prediction, ms
    for _ in range(args.rounds):
        for p in args.models:
            python[p.name].append(python_step(p, args.steps))
        report = json.loads(subprocess.run(command, cwd=JS, check=True, capture_output=True, text=True).stdout)
        for name, row in report["models"].items():
            for column, r in row.items():
                cells.setdefault((name, column), []).append(r["median_us"])
                if "navigationToFirstPrediction_ms" in r:
                    first.setdefault((name, column), []).append(r["navigationToFirstPrediction_ms"])
    columns = ["node", "node_bare", "wasm_node", "chromium_1", "chromium_2"]
    print(f"per step, µs (ratio to Python), median of {args.steps} steps, best of {args.rounds} rounds [worst]")
    print("| model | Python runtime | " + " | ".join(columns) + " |")
    print("| --- " * (len(columns) + 2) + "|")
    table = results.table(
        f"One stream step, µs: best of {args.rounds} rounds (median of {args.steps} steps each)",
        ["model", "Python runtime", *(f"{c} (µs)" for c in columns), *(f"{c} × Python" for c in columns)],
        note="node: rnnedge on onnxruntime-node; node_bare: a bare onnxruntime-node session; wasm_node: "
        "onnxruntime-web in Node; chromium_1 / chromium_2: onnxruntime-web in headless Chromium, 1 thread / 2 "
        "threads (cross-origin isolated). An empty cell was not measured.",
    )
    for name in report["models"]:
        py = min(python[name])
        row = [f"{py:.0f} [{max(python[name]):.0f}]"]
        for c in columns:
            got = cells.get((name, c))
            if got:
                row.append(f"{min(got):.0f} ({min(got) / py:.2f}×) [{max(got):.0f}]")
            else:
                row.append("–")
        print(f"| {name} | " + " | ".join(row) + " |")
        best = [min(cells[(name, c)]) if (name, c) in cells else None for c in columns]
        table.add(name, py, *best, *(b / py if b is not None else None for b in best))
    print()
    for (name, c), ms in first.items():
        print(f"{name} {c}: navigation to first prediction {min(ms):.0f} ms [{max(ms):.0f}]")
    d = report["download"]
    mb = 1e6
    print(
        f"download: onnxruntime-web {d['onnxruntime_web']['bytes'] / mb:.2f} MB "
        f"({d['onnxruntime_web']['gzip_bytes'] / mb:.2f} MB gzip), rnnedge js {d['rnnedge_js']['bytes'] / 1e3:.0f} kB "
        f"({d['rnnedge_js']['gzip_bytes'] / 1e3:.0f} kB gzip)"
    )
    for name, s in d["models"].items():
        print(f"  {name}: {s['bytes'] / mb:.2f} MB ({s['gzip_bytes'] / mb:.2f} MB gzip)")
    sizes = results.table("What a page downloads", ["file", "MB", "MB gzipped"])
    sizes.add("onnxruntime-web", d["onnxruntime_web"]["bytes"] / mb, d["onnxruntime_web"]["gzip_bytes"] / mb)
    sizes.add("rnnedge js", d["rnnedge_js"]["bytes"] / mb, d["rnnedge_js"]["gzip_bytes"] / mb)
    for name, s in d["models"].items():
        sizes.add(name, s["bytes"] / mb, s["gzip_bytes"] / mb)
    results.write(args.json)


if __name__ == "__main__":
    main()
