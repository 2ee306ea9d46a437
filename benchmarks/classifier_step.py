"""Per-row streaming step of a row classifier at batch 1: PyTorch vs bare onnxruntime vs rnnedge.

    python benchmarks/classifier_step.py CHECKPOINT.pt MODEL.onnx [--threads 1] [--json [PATH]]

Contenders, interleaved in one run: PyTorch eager with default threads, PyTorch tuned
(1 thread, mkldnn off), a hand-written ``InferenceSession.run`` loop, rnnedge's
``Model.step`` (graph input, validated) and ``Stream.feed`` (raw uint8 row: preprocessing,
validation, state kept).
"""

from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort
import torch
from pytorch_baseline import pytorch_contenders
from results import Results, add_json_option

from rnnedge.bench import format_table, interleaved, summarize
from rnnedge.runtime import load
from rnnedge.training.checkpoint import load_checkpoint
from rnnedge.training.kinds import build_from_checkpoint


def main(checkpoint: str, model_path: str, threads: int = 1, json_path: str | None = None) -> None:
    results = Results("classifier_step", __doc__, models=[model_path])
    net = build_from_checkpoint(load_checkpoint(checkpoint))
    row_u8 = (np.random.default_rng(0).random(28) * 255).astype(np.uint8)
    model = load(model_path, threads=threads)
    x = model.preprocess(row_u8[None])[None]  # (1, 1, 28)
    xt = torch.from_numpy(x)

    torch_state = [net.init_state(1)]

    @torch.no_grad()
    def torch_step() -> None:
        torch_state[0] = net.forward_stream(xt, torch_state[0])[1]

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    feeds = {"x": x, **{k: np.array(v) for k, v in model.init_state(1).items()}}
    if model.metadata.lengths is not None:  # a graph that takes each sequence's valid steps
        feeds[model.metadata.lengths.name] = np.ones(1, np.int64)
    parts = model.metadata.states
    names = ["probs", *(p.output for p in parts)]

    def bare_ort() -> None:
        out = sess.run(names, feeds)
        for part, value in zip(parts, out[1:], strict=True):
            feeds[part.name] = value

    core_state = [model.init_state(1)]

    def rnnedge_step() -> None:
        core_state[0] = model.step(x, core_state[0])[1]

    stream = model.stream()

    def rnnedge_feed() -> None:
        stream.feed(row_u8)

    def reset() -> None:  # keep prefixes short so every contender does the same work
        torch_state[0] = net.init_state(1)
        feeds.update({k: np.array(v) for k, v in model.init_state(1).items()})
        core_state[0] = model.init_state(1)
        stream.reset()

    contenders = {
        **pytorch_contenders(torch_step),
        f"bare onnxruntime ({threads} thread)": bare_ort,
        "rnnedge Model.step": rnnedge_step,
        "rnnedge Stream.feed (uint8 row)": rnnedge_feed,
    }
    samples = {name: [] for name in contenders}
    for _ in range(5):  # 5 blocks of 28-row sequences
        reset()
        for name, values in interleaved(contenders, rounds=5, inner=28).items():
            samples[name].extend(values)
            reset()
    print(f"per-row step at batch 1, {model_path}")
    summaries = {name: summarize(values) for name, values in samples.items()}
    print(format_table(summaries, f"bare onnxruntime ({threads} thread)"))
    results.summaries("Per-row step at batch 1", summaries, f"bare onnxruntime ({threads} thread)")
    results.write(json_path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    add_json_option(parser)
    args = parser.parse_args()
    main(args.checkpoint, args.model, args.threads, args.json)
