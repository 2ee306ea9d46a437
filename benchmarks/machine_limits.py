"""The machine's limits beside the figures: float32 GEMM rate, memory read bandwidth, and a step's lower bound.

    python benchmarks/machine_limits.py [MODEL.onnx ...] [--threads 1 2] [--min-time 0.3]

For each thread count, in a fresh interpreter whose BLAS is limited to that many threads
(``OPENBLAS_NUM_THREADS``) and onnxruntime to that many intra-op threads: float32 GEMM,
numpy's and onnxruntime's own ``MatMul`` (its MLAS kernels, what the models run on), at
1024³ and at the shapes of each model's gate and projection products (batch 20 × 35 for a
language model, 256 × 28 for a classifier); read bandwidth over a working set the size of
each model's per-step weights (cache-resident when it fits the last-level cache) and over
256 MB (main memory); copy bandwidth.

A streaming step at batch 1 reads every weight once (each LSTM layer's input and recurrent
matrices and biases, and the output layer; a language model's embedding contributes one
row), so ``per-step weight bytes / read bandwidth`` is a lower bound on the step. The bytes
are counted exactly from the file's initializers (``weight_bytes``).

Other scripts import :func:`weight_bytes` and :func:`step_bound`; the measurements themselves
live in ``rnnedge.bench`` (numpy + onnxruntime), which ``rnnedge bench`` uses too.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import onnx
from onnx import numpy_helper
from results import Results, add_json_option

from rnnedge.bench import GemmShape, lstm_gemm_shapes, measure_limits_in_subprocess, weights_per_step
from rnnedge.runtime import load

LARGE = 256 * 10**6  # main memory: eight times this machine's 32 MB last-level cache


@dataclass(frozen=True)
class WeightBytes:
    """Bytes of a model file's initializers: all of them, the embedding table, and those one step reads."""

    total: int
    embedding: int
    per_step: int
    estimate: int  # rnnedge.bench.weights_per_step, from the metadata's configuration alone


def weight_bytes(path: str | Path) -> WeightBytes:
    """Count the initializers of ``path``; a 2-D initializer only a ``Gather`` reads is an embedding: a row a step."""
    model = onnx.load(str(path))
    sizes = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    total = sum(a.nbytes for a in sizes.values())
    embedding = row = 0
    uses: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    for node in model.graph.node:
        # A table read only by a Gather is an embedding; a tied one is also the output layer, read whole.
        if (
            node.op_type == "Gather"
            and node.input[0] in sizes
            and sizes[node.input[0]].ndim == 2
            and uses[node.input[0]] == 1
        ):
            table = sizes[node.input[0]]
            embedding += table.nbytes
            row += table.nbytes // table.shape[0]
    with load(path) as m:
        estimate = weights_per_step(m.metadata)
    return WeightBytes(total, embedding, total - embedding + row, estimate)


def model_shapes(path: str | Path) -> list[GemmShape]:
    """The GEMM shapes of a whole-sequence forward at the benchmark batch (20 × 35 tokens, 256 × 28 rows)."""
    with load(path) as m:
        lm = m.kind == "language_model"
        shapes = lstm_gemm_shapes(m.metadata, 20 if lm else 256, 35 if lm else 28)
    return [replace(s, label=f"{Path(path).stem} {s.label}") for s in shapes]


def step_bound(path: str | Path, threads: int = 1, *, min_time: float = 0.3) -> dict[str, Any]:
    """The lower bound of one streaming step of ``path``: its per-step weight bytes over the measured read bandwidth.

    Bandwidth measured in a fresh interpreter with ``threads`` threads over a working set of
    exactly those bytes; ``bound_s`` uses the fastest sample of the fastest kernel,
    ``bound_median_s`` the median of the kernel with the best median.
    """
    wb = weight_bytes(path)
    lim = measure_limits_in_subprocess(wb.per_step, (), threads=threads, min_time=min_time)
    return {
        "weight_bytes": wb.per_step,
        "bandwidth_gbs": lim["read_bandwidth_gbs_weights"],
        "bound_s": lim["step_bound_s"],
        "bound_median_s": lim["step_bound_median_bw_s"],
        "threads": threads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", type=Path, help="rnnedge .onnx files whose per-step bound to print")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="thread counts to measure with")
    parser.add_argument("--min-time", type=float, default=0.4, help="seconds of sampling per measurement")
    add_json_option(parser)
    args = parser.parse_args()
    results = Results("machine_limits", __doc__, models=args.models)
    gemm = results.table(
        "float32 GEMM, best of the samples", ["threads", "shape", "numpy GFLOP/s", "onnxruntime GFLOP/s"]
    )
    memory = results.table("Main memory bandwidth (256 MB), best of the samples", ["threads", "read GB/s", "copy GB/s"])
    steps = results.table(
        "Lower bound of a streaming step: its weights read once",
        ["threads", "model", "MB per step", "best GB/s", "bound (µs)"],
    )

    weights = {p: weight_bytes(p) for p in args.models}
    print("per-step weights read (exact, from the initializers; the embedding table counts one row):")
    for p, wb in weights.items():
        print(
            f"  {p.name:<22} initializers {wb.total / 1e6:6.2f} MB, embedding {wb.embedding / 1e6:5.2f} MB, "
            f"per step {wb.per_step / 1e6:7.3f} MB (metadata estimate {wb.estimate / 1e6:.3f} MB)"
        )
    shapes: dict[tuple[int, int, int], GemmShape] = {}  # one per distinct shape, named after the first product
    for s in (s for p in args.models for s in model_shapes(p)):
        shapes.setdefault((s.m, s.k, s.n), s)
    for threads in args.threads:
        print(
            f"\n== {threads} thread(s): numpy's BLAS and onnxruntime's intra-op pool; best / median of the samples =="
        )
        lim = measure_limits_in_subprocess(
            None, list(shapes.values()), threads=threads, min_time=args.min_time, large_bytes=LARGE
        )
        for label, g in {"1024×1024 @ 1024×1024": lim["gemm_gflops_1024"], **lim["gemm_gflops_shapes"]}.items():
            n, o = g["numpy"], g["onnxruntime"]
            print(
                f"  GEMM {label:<58} numpy {n['best']:6.1f} / {n['median']:6.1f}   "
                f"onnxruntime {o['best']:6.1f} / {o['median']:6.1f} GFLOP/s"
            )
            gemm.add(threads, label, n["best"], o["best"])
        r, c = lim["read_bandwidth_gbs_large"], lim["copy_bandwidth_gbs_large"]
        print(
            f"  main memory (256 MB): read {r['best']:.1f} / {r['median']:.1f} GB/s ({r['kernel']}), "
            f"copy {c['best']:.1f} / {c['median']:.1f} GB/s (read + write)"
        )
        memory.add(threads, r["best"], c["best"])
        for p, wb in weights.items():
            bound = step_bound(p, threads, min_time=args.min_time)
            bw = bound["bandwidth_gbs"]
            kernels = ", ".join(f"{k} {v['best']:.0f}/{v['median']:.0f}" for k, v in bw["kernels"].items())
            print(
                f"  {p.name:<22} read over {wb.per_step / 1e6:6.2f} MB: {kernels} GB/s → step lower bound "
                f"{bound['bound_s'] * 1e6:7.1f} µs ({bound['bound_median_s'] * 1e6:.1f} µs at the median bandwidth)"
            )
            steps.add(threads, p.name, wb.per_step / 1e6, bw["best"], bound["bound_s"] * 1e6)
    results.write(args.json)


if __name__ == "__main__":
    main()
