"""``rnnedge bench``: bare onnxruntime against rnnedge on one model file (base install)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="onnxruntime intra-op threads for rnnedge and the bare session (load()'s default too).",
)
@click.option("--rounds", type=click.IntRange(min=1), default=15, show_default=True, help="Interleaved rounds.")
@click.option(
    "--cold-runs",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Fresh interpreters per program for the cold start (0 skips it).",
)
@click.option("--limits/--no-limits", default=True, show_default=True, help="Measure GEMM rate and read bandwidth.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs (times in seconds per unit).")
def bench(model_path: Path, threads: int, rounds: int, cold_runs: int, limits: bool, as_json: bool) -> None:
    """Speed of MODEL here: a hand-written onnxruntime loop against rnnedge, timed interleaved.

    Streaming step at batch 1 (Model.step and a stream's feed), whole sequences (20 × 35
    tokens or 256 × 28 rows), cold start in fresh interpreters (import, load, first result,
    peak memory) and, beside them, the machine's GEMM rate, read bandwidth and the lower
    bound of a step. Medians with their interquartile range.
    """
    from rnnedge.runtime.bench import format_report, run_bench

    def progress(message: str) -> None:
        if sys.stderr.isatty():
            click.echo(message, err=True)

    report = run_bench(
        model_path, threads=threads, rounds=rounds, cold_runs=cold_runs, limits=limits, progress=progress
    )
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))
