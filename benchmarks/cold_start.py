"""Cold start and peak memory: fresh interpreters that import, load a model and produce the first result.

    python benchmarks/cold_start.py MODEL.onnx [MODEL.onnx ...] [--runs 10] [--threads 1] [--steps 100]

For each model, ``--runs`` fresh interpreters of each kind, alternating (medians reported):

- rnnedge: ``import numpy``, ``import onnxruntime`` (timed apart: every program on the
  device pays it, and it is the same for both kinds), ``import rnnedge.runtime``,
  ``load(MODEL)``, and the first result of a stream (one uint8 row, or one word id);
- bare onnxruntime: the same imports, ``InferenceSession(MODEL)`` and one ``run`` from a
  zero state, as a hand-written program would do.

``cold`` is import of rnnedge + load + first result (the onnxruntime import excluded; for
bare onnxruntime: session + first run); ``process`` is the wall time of the whole process
seen from outside, interpreter start-up and exit included. Peak resident memory is read
after the imports and again after streaming ``--steps`` more steps: on Linux ``VmHWM`` from
``/proc/self/status``, because ``getrusage``'s ``ru_maxrss`` in a child also reports the
parent's peak (the kernel carries it across fork and exec). ``python -c pass`` and
``python -c "import numpy, onnxruntime"`` are timed the same way, as references.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from results import Results, add_json_option

from rnnedge.bench import BARE, cold_start, summarize


def process_wall(code: str, runs: int) -> float:
    """Median wall time of ``python -c code`` over ``runs`` fresh interpreters."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return summarize(times).median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--steps", type=int, default=100, help="steps streamed after the first result")
    add_json_option(parser)
    args = parser.parse_args()
    results = Results("cold_start", __doc__, models=args.models)

    print(f"fresh interpreters, median of {args.runs} each, {args.threads} onnxruntime thread(s); times in ms")
    bare_python = process_wall("pass", args.runs)
    print(f"  python -c pass:                              {bare_python * 1e3:7.1f} ms")
    imports = process_wall("import numpy, onnxruntime", args.runs)
    print(f"  python -c 'import numpy, onnxruntime':       {imports * 1e3:7.1f} ms")
    table = results.table(
        f"Fresh interpreters, median of {args.runs} runs ({args.threads} onnxruntime thread(s))",
        [
            "model",
            "program",
            "import rnnedge (ms)",
            "load (ms)",
            "first result (ms)",
            "cold (ms)",
            "process (ms)",
            "RSS (MB)",
        ],
        note="cold = import rnnedge.runtime + load + first result (bare: session + first run); the numpy and "
        f"onnxruntime imports are apart: `python -c pass` {bare_python * 1e3:.0f} ms, "
        f"`import numpy, onnxruntime` {imports * 1e3:.0f} ms.",
    )
    header = (
        f"  {'model':<22} {'program':<17} {'numpy':>6} {'onnxrt':>7} {'rnnedge':>8} {'load':>6} {'1st':>6}"
        f" {'cold':>7} {'IQR':>6} {'process':>8} {'RSS imports':>11} {'peak RSS':>9}"
    )
    print(header)
    for path in args.models:
        result = cold_start(path, runs=args.runs, threads=args.threads, steps=args.steps)
        for mode in ("rnnedge", BARE):
            r = result[mode]

            def ms(key: str, r: dict[str, dict[str, float]] = r) -> float:
                return r[key]["median_s"] * 1e3

            print(
                f"  {path.name:<22} {mode:<17} {ms('import_numpy_s'):>6.1f} {ms('import_onnxruntime_s'):>7.1f}"
                f" {ms('import_rnnedge_s'):>8.1f} {ms('load_s'):>6.1f} {ms('first_result_s'):>6.1f}"
                f" {ms('cold_s'):>7.1f} {r['cold_s']['iqr_s'] * 1e3:>6.1f} {ms('process_s'):>8.1f}"
                f" {r['max_rss_after_imports_bytes']['median_bytes'] / 1e6:>8.1f} MB"
                f" {r['max_rss_bytes']['median_bytes'] / 1e6:>6.1f} MB"
            )
            table.add(
                path.name,
                mode,
                ms("import_rnnedge_s"),
                ms("load_s"),
                ms("first_result_s"),
                ms("cold_s"),
                ms("process_s"),
                r["max_rss_bytes"]["median_bytes"] / 1e6,
            )
    print(
        "  cold = import rnnedge.runtime + load + first result (bare: session + first run); "
        "the numpy and onnxruntime imports are reported apart"
    )
    results.write(args.json)


if __name__ == "__main__":
    main()
