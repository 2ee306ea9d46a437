"""How far an int8 file's batched results drift from feeding each stream alone (what `rnnedge serve` batches).

    python benchmarks/serve_int8_drift.py ptb-small.int8.onnx --text $RNNEDGE_DATA/ptb/ptb.test.txt \
        [--streams 64] [--steps 50] [--float ptb-small.onnx]

Dynamic quantization picks one activation scale per call, over the whole batch, so a stream's
int8 result depends on which other streams share its step; float32 files are bit-identical batched
or alone (tests/serve checks that through the server). N streams read the text from different
offsets, stepped together in one ``StreamBatch`` and each alone in a ``Stream``; reported: the largest
and median absolute difference of the next-word probabilities, how often the top-1 word differs, the
mean |log p| difference of the word that actually came next, and the same for the float file if given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from results import Results, add_json_option

from rnnedge.runtime import LanguageModel, load


def drift(path: str, ids: np.ndarray, streams: int, steps: int) -> dict[str, float]:
    with load(path, threads=1) as model:
        assert isinstance(model, LanguageModel)
        offsets = [(i * 997) % (len(ids) - steps - 1) for i in range(streams)]
        batch = model.stream_batch()
        alone = [model.stream() for _ in range(streams)]
        for i in range(streams):
            batch.add(i)
        diffs, top1, logp = [], 0, []
        for t in range(steps):
            got = batch.feed({i: [int(ids[o + t])] for i, o in enumerate(offsets)})
            for i, o in enumerate(offsets):
                ref = alone[i].feed([int(ids[o + t])])
                d = np.abs(got[i].astype(np.float64) - ref)
                diffs.append(d.max())
                top1 += int(np.argmax(got[i]) != np.argmax(ref))
                nxt = int(ids[o + t + 1])
                logp.append(abs(np.log(got[i][nxt]) - np.log(ref[nxt])))
    return {
        "max_abs_prob": float(np.max(diffs)),
        "median_max_abs_prob": float(np.median(diffs)),
        "top1_differs": top1 / (streams * steps),
        "mean_abs_logp_next": float(np.mean(logp)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--text", required=True)
    parser.add_argument("--float", dest="float_model", default=None)
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    add_json_option(parser)
    args = parser.parse_args()
    paths = [args.model, *([args.float_model] if args.float_model else [])]
    results = Results("serve_int8_drift", __doc__, models=paths)
    table = results.table(
        f"{args.streams} streams × {args.steps} steps, batched against alone",
        ["file", "largest |Δp|", "median per-step largest |Δp|", "top-1 differs", "mean |Δ log p(next word)|"],
    )
    with load(args.model, threads=1) as model:
        assert isinstance(model, LanguageModel)
        ids = model.encode(Path(args.text).read_text().split()[:100_000])
    for path in paths:
        r = drift(path, ids, args.streams, args.steps)
        table.add(Path(path).name, *r.values())
        print(
            f"{path}: {args.streams} streams x {args.steps} steps batched vs alone: max |dp| {r['max_abs_prob']:.3g}, "
            f"median per-step max |dp| {r['median_max_abs_prob']:.3g}, top-1 differs {r['top1_differs']:.2%}, "
            f"mean |d log p(next word)| {r['mean_abs_logp_next']:.3g}"
        )
    results.write(args.json)


if __name__ == "__main__":
    main()
