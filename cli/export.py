"""``rnnedge export``: checkpoints and run folders to validated ``.onnx`` files (the train extra)."""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import click

from .common import DATA_HELP, require_training_extra


@click.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="MODEL.onnx for one checkpoint, or a folder (DIST/) for several runs.",
)
@click.option(
    "--quantize",
    type=click.Choice(["int8", "fp16"]),
    multiple=True,
    help="Also write this variant (repeatable): int8 for the CPU, fp16 for the CUDA provider only.",
)
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), help=DATA_HELP + " Measures variant quality.")
@click.option("--force", is_flag=True, help="Batch: re-export even unchanged runs.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def export(
    sources: tuple[Path, ...], output: Path, quantize: tuple[str, ...], data: Path | None, force: bool, quiet: bool
) -> None:
    """Export checkpoints to validated, self-describing ONNX files.

    One checkpoint and ``-o MODEL.onnx`` writes that file. Run folders, checkpoints or
    globs with ``-o DIST/`` export every checkpoint found into DIST with a manifest.json
    and a report.md; the command exits with status 1 if any model failed.
    """
    require_training_extra()
    from rnnedge.export.exporter import export_checkpoint

    paths = [Path(p) for s in sources for p in (sorted(glob.glob(str(s))) if glob.has_magic(str(s)) else [s])]
    if output.suffix == ".onnx":  # one model to one file
        if len(paths) == 1 and paths[0].is_dir() and (paths[0] / "checkpoint.pt").is_file():
            paths = [paths[0] / "checkpoint.pt"]
        if len(paths) != 1 or not paths[0].is_file():
            raise click.UsageError(
                f"-o {output} names one model file: give exactly one checkpoint or run folder (got {len(paths)} "
                "paths); to export several, give a folder as -o"
            )
        result = export_checkpoint(paths[0], output)
        click.echo(
            f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB, {result.metadata.kind}); parity with PyTorch: "
            f"{result.parity.checks} checks, largest difference {result.parity.worst:.2e}"
        )
        if quantize:
            from functools import partial

            from rnnedge.export.batch import VARIANTS
            from rnnedge.export.quality import measure_quality

            for variant in dict.fromkeys(quantize):
                out = output.with_suffix(f".{variant}.onnx")
                q = VARIANTS[variant](output, out, partial(measure_quality, data=data))
                click.echo(f"wrote {q.path} ({q.size_bytes / 1e6:.2f} MB, {variant}); quality {q.metadata.quality}")
        return
    from rnnedge.export.batch import MANIFEST_NAME, export_many, find_checkpoints

    if not find_checkpoints(paths):
        raise click.UsageError(f"no checkpoints (*.pt) found in {', '.join(map(str, sources))}")

    def progress(message: str) -> None:
        if not quiet and sys.stderr.isatty():
            click.echo(message, err=True)

    summary = export_many(paths, output, variants=quantize, data=data, force=force, progress=progress)
    for entry in summary.entries:
        click.echo(
            f"{entry['status']:>9}  {entry['name']} ({entry['variant']})"
            + (f": {entry['error'].splitlines()[-1]}" if entry["status"] == "failed" else "")
            + (f": {entry['reason']}" if entry["status"] == "skipped" else "")
        )
    click.echo(f"manifest: {output / MANIFEST_NAME}")
    if summary.failed:
        raise click.ClickException(f"{len(summary.failed)} of {len(summary.entries)} exports failed; see the report")
