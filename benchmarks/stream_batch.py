"""Many concurrent streams: one StreamBatch call per step vs one Stream.feed per stream.

    python benchmarks/stream_batch.py MODEL.onnx [--threads 1] [--sizes 1 2 4 8 16 32 64] [--json [PATH]]

For each N, interleaved in one run: a StreamBatch of N streams advancing every stream by
one token (a row, for a classifier) per call, and N separate streams fed one after
another. Prints per-step latency, aggregate tokens/s, the speed-up of batching, and the
share of the GEMM bound: onnxruntime's measured float32 MatMul rate (1024³, same thread
count) divided by the model's FLOPs per token.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from results import Results, add_json_option

from rnnedge.bench import flops_per_position, interleaved, ort_gemm_gflops
from rnnedge.runtime import Model, load


def _measure(model: Model, n: int, rounds: int, inputs: list[object]) -> dict[str, list[float]]:
    """Seconds per step of N streams: batched in one call, and fed one after another."""
    batch = model.stream_batch()
    streams = [model.stream() for _ in range(n)]
    for key in range(n):
        batch.add(key)
    feeds = dict(enumerate(inputs))

    def batched() -> None:
        batch.feed(feeds)

    def separately() -> None:
        for stream, x in zip(streams, inputs, strict=True):
            stream.feed(x)

    return interleaved({"batch": batched, "separate": separately}, rounds=rounds, inner=max(2, 200 // n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--rounds", type=int, default=9)
    add_json_option(parser)
    args = parser.parse_args()
    results = Results("stream_batch", __doc__, models=[args.model])

    model = load(args.model, threads=args.threads)
    rng = np.random.default_rng(0)

    def one_input() -> object:
        return model.example_steps(rng, 1)[0]  # one step as a caller feeds it: an id, a row of pixels

    flops = flops_per_position(model.metadata)
    peak = ort_gemm_gflops(1024, 1024, 1024, threads=args.threads, min_time=1.0)["median"]
    bound = peak * 1e9 / flops  # tokens/s if every FLOP ran at the GEMM rate
    print(f"{args.model}: {flops / 1e6:.2f} MFLOP per token; onnxruntime MatMul 1024³ {peak:.1f} GFLOP/s")
    print(f"GEMM bound: {bound:,.0f} tokens/s ({args.threads} thread(s))\n")
    header = f"{'N':>4} {'batch step':>12} {'IQR':>9} {'tokens/s':>10} {'% bound':>8} {'N streams':>12} {'gain':>7}"
    print(header)
    table = results.table(
        f"N streams advancing one token each ({args.threads} thread(s), {args.rounds} rounds)",
        ["N", "batch step (µs)", "IQR (µs)", "tokens/s", "% of GEMM bound", "N separate streams (µs)", "gain"],
        note=f"{flops / 1e6:.2f} MFLOP per token; onnxruntime MatMul 1024³ at {peak:.1f} GFLOP/s in this run "
        f"gives a bound of {bound:,.0f} tokens/s.",
    )
    for n in args.sizes:
        samples = _measure(model, n, args.rounds, [one_input() for _ in range(n)])
        step = statistics.median(samples["batch"])
        q = statistics.quantiles(samples["batch"], n=4)
        alone = statistics.median(samples["separate"])
        rate = n / step
        print(
            f"{n:>4} {step * 1e6:>10.0f}µs {(q[2] - q[0]) * 1e6:>7.0f}µs {rate:>10,.0f} {100 * rate / bound:>7.1f}% "
            f"{alone * 1e6:>10.0f}µs {alone / step:>6.2f}x"
        )
        table.add(n, step * 1e6, (q[2] - q[0]) * 1e6, rate, 100 * rate / bound, alone * 1e6, alone / step)
    model.close()
    results.write(args.json)


if __name__ == "__main__":
    main()
