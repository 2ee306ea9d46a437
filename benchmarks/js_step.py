"""Per-step time of the JavaScript runtime beside the Python runtime, in one run (issue 14's numbers).

    python benchmarks/js_step.py mnist-lstm.onnx ptb-small.onnx ptb-small.int8.onnx [--steps 400]

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
    args = parser.parse_args()
    python = {p.name: python_step(p, args.steps) for p in args.models}
    paths = [str(p.resolve()) for p in args.models]
    command = ["node", "bench/step.js", *paths, "--steps", str(args.steps), "--json"]
    if args.no_browser:
        command.append("--no-browser")
    report = json.loads(subprocess.run(command, cwd=JS, check=True, capture_output=True, text=True).stdout)
    columns = ["node", "node_bare", "wasm_node", "chromium_1", "chromium_2"]
    print(f"per step, median µs (ratio to the Python runtime), {args.steps} steps, one thread unless said")
    print("| model | Python runtime | " + " | ".join(columns) + " |")
    print("| --- " * (len(columns) + 2) + "|")
    for name, row in report["models"].items():
        cells = [f"{python[name]:.0f}"]
        for c in columns:
            r = row.get(c)
            cells.append(f"{r['median_us']:.0f} ({r['median_us'] / python[name]:.2f}×)" if r else "–")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    for name, row in report["models"].items():
        for c in ("chromium_1", "chromium_2"):
            if c in row:
                r = row[c]
                print(
                    f"{name} {c}: navigation -> model loaded {r['navigationToLoaded_ms']:.0f} ms, "
                    f"-> first prediction {r['navigationToFirstPrediction_ms']:.0f} ms (threads {r['threads']})"
                )
    d = report["download"]
    mb = 1e6
    print(
        f"download: onnxruntime-web {d['onnxruntime_web']['bytes'] / mb:.2f} MB "
        f"({d['onnxruntime_web']['gzip_bytes'] / mb:.2f} MB gzip), rnnedge js {d['rnnedge_js']['bytes'] / 1e3:.0f} kB "
        f"({d['rnnedge_js']['gzip_bytes'] / 1e3:.0f} kB gzip)"
    )
    for name, s in d["models"].items():
        print(f"  {name}: {s['bytes'] / mb:.2f} MB ({s['gzip_bytes'] / mb:.2f} MB gzip)")


if __name__ == "__main__":
    main()
