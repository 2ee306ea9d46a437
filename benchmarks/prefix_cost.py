"""Cost of one streamed row against the length of the prefix already received.

    python benchmarks/prefix_cost.py CAUSAL.onnx BIDIRECTIONAL.onnx [--json [PATH]]

A causal model carries its state, so a row costs the same at any prefix length. A
bidirectional model's backward direction must re-read the whole prefix, so a row costs
O(prefix) — this prints both curves, measured interleaved in one run.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from results import Results, add_json_option

from rnnedge.bench import interleaved
from rnnedge.runtime import ClassifierModel, load

PREFIXES = (0, 7, 27, 55, 111, 223)


def main(causal_path: str, bi_path: str, json_path: str | None = None) -> None:
    results = Results("prefix_cost", __doc__, models=[causal_path, bi_path])
    table = results.table(
        "One row fed after a prefix (median, one thread)",
        ["prefix rows", "causal µs/row", "bidirectional µs/row", "ratio"],
    )
    models = {"causal": load(causal_path, threads=1), "bidirectional": load(bi_path, threads=1)}
    row = (np.random.default_rng(0).random((1, 28)) * 255).astype(np.uint8)
    print(f"{'prefix rows':>11} " + " ".join(f"{name + ' µs/row':>20}" for name in models) + f" {'ratio':>7}")
    for prefix in PREFIXES:
        contenders = {}
        for name, model in models.items():
            assert isinstance(model, ClassifierModel)
            stream = model.stream()
            if prefix:
                stream.feed(np.repeat(row, prefix, axis=0))
            saved = stream.state

            def feed_one(stream=stream, saved=saved) -> None:
                stream.state = saved
                stream.feed(row)

            contenders[name] = feed_one
        samples = interleaved(contenders, rounds=9, inner=50)
        med = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
        print(
            f"{prefix:>11} "
            + " ".join(f"{v:>20.1f}" for v in med.values())
            + f" {med['bidirectional'] / med['causal']:>7.2f}"
        )
        table.add(prefix, med["causal"], med["bidirectional"], med["bidirectional"] / med["causal"])
    results.write(json_path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("causal")
    parser.add_argument("bidirectional")
    add_json_option(parser)
    args = parser.parse_args()
    main(args.causal, args.bidirectional, args.json)
