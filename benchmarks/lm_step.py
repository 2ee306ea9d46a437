"""Per-token streaming step of a PTB language model at batch 1: PyTorch vs bare onnxruntime vs rnnedge.

    python benchmarks/lm_step.py CHECKPOINT.pt MODEL.onnx [--int8 MODEL.int8.onnx] [--threads 1] [--rounds 25]

Contenders, interleaved in one run (every contender once per round, so machine noise hits
all alike): PyTorch eager with its default threads, PyTorch tuned (1 thread, mkldnn off),
a hand-written ``InferenceSession.run`` loop ("bare onnxruntime"), rnnedge's
``Model.step`` (ids checked against the vocabulary, state checked) and
``Stream.feed`` (an id in, next-word probabilities out: it also computes a softmax
over the vocabulary that the others skip); with ``--int8``, bare onnxruntime and rnnedge on
the int8 file too. Every call is a sequence of 35 single-token steps from the zero state;
times are per token.

Beside the times: the lower bound of a step (its weights read once at the read bandwidth
measured over a working set of exactly those bytes, with the same thread count; see
``machine_limits.py``) and each contender's ratio to it, and the issue's targets.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from machine_limits import step_bound
from pytorch_baseline import pytorch_contenders
from results import Results, add_json_option

from rnnedge.bench import BARE, bare_session, format_table, run_workload, step_workload
from rnnedge.runtime import LanguageModel, load
from rnnedge.training.checkpoint import load_checkpoint
from rnnedge.training.train_lm import build_language_model

LENGTH = 35


def torch_contenders(checkpoint: Path, vocab_size: int) -> dict[str, Callable[[], object]]:
    """PyTorch eager, default threads and tuned (1 thread, mkldnn off): 35 tokens from the zero state per call."""
    net = build_language_model(load_checkpoint(checkpoint))
    ids = np.random.default_rng(0).integers(0, vocab_size, size=LENGTH)  # the ids step_workload feeds
    tokens = [torch.tensor([[int(i)]]) for i in ids]  # (1, 1) int64 each

    @torch.inference_mode()
    def sequence() -> None:
        state = net.init_state(1)
        for x in tokens:
            state = net(x, state)[1]

    return pytorch_contenders(sequence)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--int8", type=Path, default=None, help="the int8 variant of MODEL")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--rounds", type=int, default=25)
    add_json_option(parser)
    args = parser.parse_args()
    results = Results("lm_step", __doc__, models=[args.model, *([args.int8] if args.int8 else [])])

    model = load(args.model, threads=args.threads)
    if not isinstance(model, LanguageModel):
        raise SystemExit(f"{args.model} is a {model.kind}, not a language model")
    workload = step_workload(model, bare_session(args.model, args.threads), length=LENGTH)
    contenders = {**torch_contenders(args.checkpoint, model.vocab_size), **workload.contenders}
    models = {"fp32": args.model}
    if args.int8 is not None:
        q = load(args.int8, threads=args.threads)
        if not isinstance(q, LanguageModel):
            raise SystemExit(f"{args.int8} is a {q.kind}, not a language model")
        int8 = step_workload(q, bare_session(args.int8, args.threads), length=LENGTH).contenders
        contenders.update({f"int8 {name}": fn for name, fn in int8.items()})
        models["int8"] = args.int8
    workload.contenders = contenders
    summaries = run_workload(workload, rounds=args.rounds)

    threads = f"{args.threads} onnxruntime thread{'s' if args.threads > 1 else ''}"
    print(f"per-token streaming step at batch 1, {args.model} ({threads}, {args.rounds} interleaved rounds)")
    print(format_table(summaries, BARE))
    results.summaries(f"Per-token streaming step at batch 1 ({threads}, {args.rounds} rounds)", summaries, BARE)

    bounds = {variant: step_bound(path, args.threads) for variant, path in models.items()}
    print("\nlower bound of a step (weights read once at the measured read bandwidth, same thread count):")
    for variant, b in bounds.items():
        bw = b["bandwidth_gbs"]
        print(
            f"  {variant}: {b['weight_bytes'] / 1e6:.3f} MB per step, read {bw['best']:.1f} / {bw['median']:.1f} GB/s "
            f"(best of any kernel / median of {bw['kernel']}) → {b['bound_s'] * 1e6:.1f} µs "
            f"({b['bound_median_s'] * 1e6:.1f} µs)"
        )
    bound_table = results.table(
        "Lower bound of a step: the weights read once", ["file", "MB per step", "GB/s", "bound (µs)"]
    )
    for variant, b in bounds.items():
        bound_table.add(variant, b["weight_bytes"] / 1e6, b["bandwidth_gbs"]["best"], b["bound_s"] * 1e6)
    print("\nratio to the bound (median step / bound at the best bandwidth):")
    for name, s in summaries.items():
        if "pytorch" not in name:
            bound = bounds["int8" if name.startswith("int8 ") else "fp32"]["bound_s"]
            print(f"  {name:<44} {s.median / bound:6.2f}")

    def ratio(a: str, b: str) -> float:
        return summaries[a].median / summaries[b].median

    eager, tuned = (name for name in summaries if name.startswith("pytorch"))
    feed = next(name for name in summaries if name.startswith("rnnedge Stream.feed"))
    prefixes = ["", "int8 "] if f"int8 {BARE}" in summaries else [""]
    print(f"\ntargets ({' / '.join((p or 'fp32 ').strip() for p in prefixes)} file):")
    for contender in ("rnnedge Model.step", feed):
        near = " / ".join(f"{ratio(p + contender, p + BARE):.2f}×" for p in prefixes)
        vs_eager = " / ".join(f"{ratio(eager, p + contender):.1f}×" for p in prefixes)
        vs_tuned = " / ".join(f"{ratio(tuned, p + contender):.1f}×" for p in prefixes)
        print(f"  {contender}:")
        print(f"    ≤ 1.1× bare onnxruntime of the same file:  {near}")
        print(f"    ≥ 10× faster than PyTorch eager (fp32):    {vs_eager}")
        print(f"    ≥ 4× faster than PyTorch tuned (fp32):     {vs_tuned}")
    fp32_bound = bounds["fp32"]["bound_s"]
    print(
        f"  fp32 step within 1.3× of the bandwidth bound: bare {summaries[BARE].median / fp32_bound:.2f}×, "
        f"rnnedge Model.step {summaries['rnnedge Model.step'].median / fp32_bound:.2f}×"
    )
    results.write(args.json)


if __name__ == "__main__":
    main()
