"""Whole-sequence throughput: PTB batch 20 × 35 and MNIST batch 256 × 28, PyTorch vs bare onnxruntime vs rnnedge.

    python benchmarks/throughput.py --lm CHECKPOINT.pt MODEL.onnx [--lm ...] [--mnist CHECKPOINT.pt MODEL.onnx]
                                    [--threads 1] [--rounds 10] [--json [PATH]]

Per model, interleaved in one run: PyTorch eager with its default threads and tuned
(1 thread, mkldnn off), a hand-written ``InferenceSession.run`` ("bare onnxruntime") from
the zero state, rnnedge's ``Model.step`` on the same input, and for a classifier
``predict`` on uint8 images (normalisation included). Reported per token (or row):
median time and spread, tokens (rows) per second, and the GFLOP/s the gate and projection
products imply (``rnnedge.bench.flops_per_position``), as a percentage of the
machine's measured float32 GEMM peak (the best of numpy and onnxruntime's ``MatMul`` at
1024³, same thread count) and against the *GEMM floor*: the time the forward's own matrix
products take at the best rates onnxruntime's ``MatMul`` reaches at exactly those shapes.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from pytorch_baseline import pytorch_contenders
from results import Results, add_json_option

from rnnedge.bench import (
    BARE,
    bare_session,
    flops_per_position,
    lstm_gemm_shapes,
    measure_limits_in_subprocess,
    run_workload,
    throughput_workload,
)
from rnnedge.runtime import ClassifierModel, LanguageModel, Model, load
from rnnedge.training.checkpoint import load_checkpoint
from rnnedge.training.kinds import build_from_checkpoint
from rnnedge.training.train_lm import build_language_model


def torch_contenders(checkpoint: Path, model: Model, batch: int, length: int) -> dict[str, Callable[[], object]]:
    """PyTorch eager (default threads) and tuned (1 thread, mkldnn off) on the same whole-sequence input."""
    rng = np.random.default_rng(0)
    forward: Callable[[], object]
    if isinstance(model, LanguageModel):
        net = build_language_model(load_checkpoint(checkpoint))
        tokens = torch.from_numpy(rng.integers(0, model.vocab_size, size=(batch, length)))  # (B, T) int64

        def forward() -> object:
            return net(tokens, net.init_state(batch))

    elif isinstance(model, ClassifierModel):
        clf = build_from_checkpoint(load_checkpoint(checkpoint))
        images = (rng.random((batch, length, model.feature_size)) * 255).astype(np.uint8)
        x = torch.from_numpy(model.preprocess(images))  # (B, T, F) float32

        def forward() -> object:
            return clf(x)

    else:
        raise SystemExit(f"no throughput workload for a {model.kind}")

    @torch.inference_mode()
    def eager() -> None:
        forward()

    return pytorch_contenders(eager)


def bench_model(checkpoint: Path, path: Path, threads: int, rounds: int, results: Results) -> None:
    model = load(path, threads=threads)
    workload = throughput_workload(model, bare_session(path, threads))
    workload.contenders = {
        **torch_contenders(checkpoint, model, workload.batch, workload.length),
        **workload.contenders,
    }
    summaries = run_workload(workload, rounds=rounds, target_s=0.1)

    meta = model.metadata
    shapes = lstm_gemm_shapes(meta, workload.batch, workload.length)
    lim = measure_limits_in_subprocess(None, shapes, threads=threads)
    peak = lim["gemm_peak_gflops"]
    rates = {(g["m"], g["k"], g["n"]): g for g in lim["gemm_gflops_shapes"].values()}
    floor_s = sum(s.flops / (rates[(s.m, s.k, s.n)]["onnxruntime"]["best"] * 1e9) for s in shapes)
    floor_per_unit = floor_s / workload.per_call
    flops = flops_per_position(meta)

    unit = workload.unit
    print(
        f"\n{path.name}: batch {workload.batch} × {workload.length}, {threads} onnxruntime thread(s), "
        f"{rounds} interleaved rounds; {flops / 1e6:.2f} MFLOP per {unit}"
    )
    width = max(len(n) for n in summaries)
    print(
        f"  {'contender':<{width}}  {'µs/' + unit:>9}  {'IQR':>7}  {'× bare':>6}  {unit + 's/s':>10}  "
        f"{'GFLOP/s':>8}  {'% peak':>6}  {'× floor':>7}"
    )
    base = summaries[BARE].median
    table = results.table(
        f"{path.name}: batch {workload.batch} × {workload.length}, {threads} thread(s), {rounds} rounds",
        ["contender", f"µs/{unit}", "IQR (µs)", "× bare", f"{unit}s/s", "GFLOP/s", "% of GEMM peak", "× GEMM floor"],
        note=f"{flops / 1e6:.2f} MFLOP per {unit}; GEMM peak {peak:.1f} GFLOP/s (1024³); "
        f"GEMM floor {floor_per_unit * 1e6:.2f} µs/{unit}.",
    )
    for name, s in summaries.items():
        gflops = flops / s.median / 1e9
        table.add(
            name,
            s.median * 1e6,
            s.iqr * 1e6,
            s.median / base,
            1 / s.median,
            gflops,
            100 * gflops / peak,
            s.median / floor_per_unit,
        )
        print(
            f"  {name:<{width}}  {s.median * 1e6:>9.2f}  {s.iqr * 1e6:>7.2f}  {s.median / base:>6.2f}  "
            f"{1 / s.median:>10.0f}  {gflops:>8.1f}  {100 * gflops / peak:>6.1f}  {s.median / floor_per_unit:>7.2f}"
        )
    g = lim["gemm_gflops_1024"]
    print(
        f"  GEMM peak {peak:.1f} GFLOP/s (1024³, best of numpy {g['numpy']['best']:.1f} and onnxruntime "
        f"{g['onnxruntime']['best']:.1f}, {threads} thread(s)); GEMM floor {floor_per_unit * 1e6:.2f} µs/{unit}:"
    )
    for s in shapes:
        r = rates[(s.m, s.k, s.n)]["onnxruntime"]
        print(
            f"    {s.label} ({s.m}×{s.k} @ {s.k}×{s.n}) × {s.count}: onnxruntime MatMul {r['best']:.1f} / "
            f"{r['median']:.1f} GFLOP/s (best / median) → {s.flops / (r['best'] * 1e9) * 1e3:.2f} ms per forward"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lm", nargs=2, action="append", default=[], metavar=("CHECKPOINT", "MODEL"), type=Path)
    parser.add_argument("--mnist", nargs=2, action="append", default=[], metavar=("CHECKPOINT", "MODEL"), type=Path)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads and BLAS threads")
    parser.add_argument("--rounds", type=int, default=10)
    add_json_option(parser)
    args = parser.parse_args()
    if not args.lm and not args.mnist:
        parser.error("give at least one --lm or --mnist pair")
    pairs = [*args.lm, *args.mnist]
    results = Results("throughput", __doc__, models=[path for _, path in pairs])
    for checkpoint, path in pairs:
        bench_model(checkpoint, path, args.threads, args.rounds, results)
    results.write(args.json)


if __name__ == "__main__":
    main()
