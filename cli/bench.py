"""``rnnedge bench``: bare onnxruntime against rnnedge on one model file (base install)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from rnnedge.bench import PROVIDERS  # the package imports neither numpy nor onnxruntime until used
from rnnedge.errors import ProviderError


def _refuse_fp16_off_cuda(model_path: Path, provider: str) -> None:
    """An fp16 file runs on CUDA only: say so in terms of this command's options, before anything loads."""
    from rnnedge.runtime import read_metadata

    if provider == "cuda" or read_metadata(model_path).variant != "fp16":
        return
    if provider == "auto":
        import onnxruntime

        available = onnxruntime.get_available_providers()
        if "CUDAExecutionProvider" in available:
            return
        where = f"--provider auto found no CUDA here (onnxruntime offers {', '.join(available)})"
    elif click.get_current_context().get_parameter_source("provider") == click.core.ParameterSource.DEFAULT:
        where = f"the default provider is {provider} (no --provider was given)"
    else:
        where = f"--provider {provider} was given"
    raise ProviderError(
        f"{model_path} is an fp16 model, which runs on the CUDA provider only (onnxruntime's CPU has no float16 "
        f"LSTM), and {where}: use --provider cuda on a machine with onnxruntime-gpu, or bench the float32 or int8 file"
    )


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="onnxruntime intra-op threads for rnnedge and the bare session (load()'s default too).",
)
@click.option(
    "--provider",
    type=click.Choice(PROVIDERS),
    default="cpu",
    show_default=True,
    help="Execution provider of rnnedge and the bare session (auto: CUDA when onnxruntime has it). "
    "fp16 files run on cuda only; on cuda the machine limits (the CPU's) are skipped.",
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
def bench(
    model_path: Path, threads: int, provider: str, rounds: int, cold_runs: int, limits: bool, as_json: bool
) -> None:
    """Speed of MODEL here: a hand-written onnxruntime loop against rnnedge, timed interleaved.

    Streaming step at batch 1 (Model.step and a stream's feed), whole sequences (20 × 35
    tokens or 256 × 28 rows), cold start in fresh interpreters (import, load, first result,
    peak memory) and, beside them, the machine's GEMM rate, read bandwidth and the lower
    bound of a step. Medians with their interquartile range.
    """
    from rnnedge.bench import format_report, run_bench

    _refuse_fp16_off_cuda(model_path, provider)

    def progress(message: str) -> None:
        if sys.stderr.isatty():
            click.echo(message, err=True)

    report = run_bench(
        model_path,
        threads=threads,
        provider=provider,
        rounds=rounds,
        cold_runs=cold_runs,
        limits=limits,
        progress=progress,
    )
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))
