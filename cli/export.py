"""``rnnedge export``: checkpoints and run folders to validated ``.onnx`` files (the train extra).

A thin layer over :func:`rnnedge.export.exporter.export_model` (one model) and
:func:`rnnedge.export.batch.export_many` (many, which calls the same function per model):
this module only resolves the paths the user typed and prints what came back.
"""

from __future__ import annotations

import glob
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rnnedge.errors import ConfigError, RnnEdgeError
from rnnedge.training.run_dir import CHECKPOINT_NAME

from .common import DATA_HELP, require_training_extra

if TYPE_CHECKING:
    from rnnedge.export.results import ExportResult, Outcome
    from rnnedge.export.validate import Tolerances


def _sources(sources: tuple[str, ...]) -> list[Path]:
    """The paths named, globs expanded; a name that matches nothing is a usage error saying so."""
    paths: list[Path] = []
    for source in sources:
        if glob.has_magic(source):
            matches = sorted(glob.glob(source))
            if not matches:
                raise click.BadParameter(f"{source!r} matches no file or folder", param_hint="SOURCES")
            paths.extend(Path(m) for m in matches)
        elif not os.path.lexists(source):
            raise click.BadParameter(f"{source!r}: no such file or folder", param_hint="SOURCES")
        else:
            paths.append(Path(source))
    return paths


def _is_single_file(output: str) -> bool:
    """``-o NAME.onnx`` is one model file; a folder (existing, ending in ``/``, or without a suffix) is a batch.

    Anything else (``model.bin``, a typo like ``model.onx``, an existing file that is not a folder)
    is refused rather than silently becoming a folder.
    """
    path = Path(output)
    if path.suffix == ".onnx" and not output.endswith(("/", os.sep)):
        return True
    if output.endswith(("/", os.sep)) or path.is_dir():
        return False
    if path.exists():
        raise click.BadParameter(
            f"{output} exists and is not a folder; give MODEL.onnx for one model or a folder for several",
            param_hint="'-o' / '--output'",
        )
    if path.suffix:
        raise click.BadParameter(
            f"{output} is neither a model file (its name must end in .onnx) nor a folder name (no suffix, "
            f"or end it with /: {output}/)",
            param_hint="'-o' / '--output'",
        )
    return False


def _refuse_replacing(target: Path, variants: tuple[str, ...], force: bool) -> None:
    """One model's files already there (an earlier export, perhaps of another model) are replaced only with --force."""
    from rnnedge.export.exporter import variant_path

    there = [str(p) for p in dict.fromkeys(variant_path(target, v) for v in ("float32", *variants)) if p.is_file()]
    if there and not force:
        raise ConfigError(
            f"{' and '.join(there)} already exist{'s' if len(there) == 1 else ''}; pass --force to replace "
            f"{'it' if len(there) == 1 else 'them'}, or give another -o"
        )


def _one_checkpoint(paths: list[Path], output: str) -> Path:
    from rnnedge.export.batch import find_checkpoints

    if len(paths) != 1:
        raise click.UsageError(
            f"-o {output} names one model file: give exactly one checkpoint or run folder (got {len(paths)} "
            "paths); to export several, give a folder as -o"
        )
    path = paths[0]
    if not path.is_dir():
        return path
    if (path / CHECKPOINT_NAME).is_file():
        return path / CHECKPOINT_NAME
    found = find_checkpoints([path])
    if len(found) == 1:
        return Path(found[0])
    if not found:
        raise click.UsageError(f"no checkpoints (*.pt) found in {path}")
    shown = ", ".join(str(p) for p in found[:3]) + (", ..." if len(found) > 3 else "")
    raise click.UsageError(
        f"-o {output} names one model file, but {path} holds {len(found)} checkpoints ({shown}); "
        "give one of them, or a folder as -o to export all"
    )


def _indented(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _echo_outcome(outcome: Outcome) -> None:
    from rnnedge.export.quality import format_quality

    result = outcome.result
    if outcome.status == "ok" and result is not None:
        meta, parity = result.metadata, result.parity
        if outcome.variant == "float32":
            click.echo(
                f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB, {meta.kind}); parity with PyTorch "
                f"(judged against its float64 result): {parity.checks} checks, largest difference {parity.worst:.2e} "
                f"({parity.margin:.0%} of what is allowed at most)"
            )
        else:
            click.echo(f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB, {outcome.variant})")
            click.echo(f"  quality: {format_quality(meta.quality)}")
    elif outcome.status == "skipped":
        click.echo(f"skipped {outcome.variant}: {outcome.message}")
    elif outcome.status == "failed":
        click.echo(f"failed {outcome.variant} ({outcome.path}):\n{_indented(outcome.message)}")


def _export_one_module(
    spec: str,
    weights: Path | None,
    output: Path,
    variants: tuple[str, ...],
    tolerances: Tolerances | None,
    *,
    standardize: Path | None,
    vocabulary: Path | None,
    **settings: Any,
) -> None:
    """``--module``: load, export, validate against its forward, then each variant (int8) beside it."""
    from rnnedge.export.module_batch import read_standardize, read_vocabulary
    from rnnedge.export.user_module import export_module, load_user_module

    module, source = load_user_module(spec, weights)
    result = export_module(
        module,
        output,
        tolerances=tolerances,
        source=source,
        standardize=read_standardize(standardize) if standardize else None,
        vocabulary=read_vocabulary(vocabulary) if vocabulary else None,
        **settings,
    )
    _echo_outcome(_ok(result))
    _write_variants(output, variants)


def _ok(result: ExportResult) -> Outcome:
    from rnnedge.export.results import Outcome

    return Outcome("float32", result.path, "ok", result)


def _write_variants(output: Path, variants: tuple[str, ...]) -> None:
    from rnnedge.export.exporter import variant_path
    from rnnedge.export.results import Outcome
    from rnnedge.export.variants import VARIANTS, make_variant

    for name in dict.fromkeys(variants):
        path = variant_path(output, name)
        try:
            _echo_outcome(Outcome(name, path, "ok", make_variant(VARIANTS[name], output, path)))
        except RnnEdgeError as e:
            raise click.ClickException(f"{name} variant of {output}: {e}") from None


def _export_modules(manifest: Path, dist: Path, variants: tuple[str, ...], tolerances: Tolerances | None) -> None:
    """``--modules``: every module a manifest lists into ``dist``, with a manifest of what was written."""
    from rnnedge.export.module_batch import export_modules

    summary = export_modules(manifest, dist, variants=variants, tolerances=tolerances)
    for entry in summary["models"]:
        detail = f":\n{_indented(entry['error'])}" if entry["status"] == "failed" else ""
        click.echo(f"{entry['status']:>9}  {entry['name']} ({entry['variant']}){detail}")
    click.echo(f"manifest: {summary['manifest']}")
    failed = [e for e in summary["models"] if e["status"] == "failed"]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(summary['models'])} exports failed; see above")


@click.command()
@click.argument("sources", nargs=-1, type=click.Path())
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(),
    help="MODEL.onnx for one checkpoint, or a folder (DIST or DIST/) for several runs.",
)
@click.option(
    "--quantize",
    type=click.Choice(["int8", "fp16"]),
    multiple=True,
    help="Also write this variant (repeatable): int8 for the CPU, fp16 for the CUDA provider only.",
)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help=DATA_HELP + " Variants' quality is measured on the recorded test file found there; or give a test file.",
)
@click.option(
    "--atol",
    type=float,
    default=None,
    help="One absolute tolerance from the exact result (PyTorch in float64) for every value, instead of the rule: "
    "at most 16x PyTorch-float32's own distance from it, plus a floor of 2e-6 of the value's scale.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace the files already at -o MODEL.onnx (and its variants); batch: re-export even unchanged runs.",
)
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option(
    "--module",
    "module_spec",
    metavar="FILE.py:NAME",
    help="Your own PyTorch module: NAME (a class or function in FILE.py) builds it with no arguments.",
)
@click.option(
    "--weights",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --module: its state_dict, saved with torch.save (read with weights_only=True).",
)
@click.option(
    "--task",
    type=click.Choice(["classifier", "tagger", "language-model"]),
    help="With --module: what its forward returns (docs/own-module.md): (B, classes), (B, T, classes), (B, T, V).",
)
@click.option("--head", type=click.Choice(["last", "mean"]), default="last", show_default=True, help="Classifier head.")
@click.option("--labels", help="With --module: class names, comma-separated (default 0, 1, ...).")
@click.option(
    "--vocabulary",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --task language-model: one token per line, in id order, holding <unk> and <eos>.",
)
@click.option("--tokens", type=click.Choice(["words", "chars"]), default="words", show_default=True)
@click.option(
    "--standardize",
    "standardize_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --module: a training file (.ts, .csv, .npz) whose per-channel mean and std the runtime applies to "
    "raw frames before the module sees them (default: frames go in as they are).",
)
@click.option("--time-major", is_flag=True, help="With --module: its forward takes (T, B, ...) and returns time first.")
@click.option(
    "--modules",
    "modules_manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSON manifest of several modules (module, weights, task and settings per file), exported into -o DIST/.",
)
def export(
    sources: tuple[str, ...],
    output: str,
    quantize: tuple[str, ...],
    data: Path | None,
    atol: float | None,
    force: bool,
    quiet: bool,
    module_spec: str | None,
    weights: Path | None,
    task: str | None,
    head: str,
    labels: str | None,
    vocabulary: Path | None,
    tokens: str,
    standardize_file: Path | None,
    time_major: bool,
    modules_manifest: Path | None,
) -> None:
    """Export checkpoints, or your own PyTorch module, to validated, self-describing ONNX files.

    One checkpoint and ``-o MODEL.onnx`` writes that file (and MODEL.int8.onnx, MODEL.fp16.onnx
    with --quantize). Run folders, checkpoints or globs with ``-o DIST/`` export every checkpoint
    found into DIST with a manifest.json and a report.md; the command exits with status 1 if any
    model failed. ``--module FILE.py:NAME --weights W.pt --task TASK -o MODEL.onnx`` exports your
    own module, validated against its own forward (docs/own-module.md); ``--modules M.json -o DIST/``
    several of them.
    """
    if atol is not None and not (math.isfinite(atol) and atol > 0):
        raise click.BadParameter(f"{atol} is not a finite number > 0", param_hint="'--atol'")
    if module_spec or modules_manifest:
        if sources:
            raise click.UsageError("give either checkpoints (SOURCES) or --module/--modules, not both")
        require_training_extra()
        from rnnedge.export.validate import Tolerances

        chosen = Tolerances.absolute(atol) if atol is not None else None
        if modules_manifest:
            _export_modules(modules_manifest, Path(output), quantize, chosen)
            return
        if task is None:
            raise click.UsageError("--module needs --task classifier, tagger or language-model")
        if not _is_single_file(output):
            raise click.UsageError(f"--module writes one file: give -o MODEL.onnx, got {output}")
        _refuse_replacing(Path(output), quantize, force)
        _export_one_module(
            module_spec or "",
            weights,
            Path(output),
            quantize,
            chosen,
            task=task,
            head=head,
            labels=labels.split(",") if labels else None,
            vocabulary=vocabulary,
            tokens=tokens,
            standardize=standardize_file,
            time_major=time_major,
        )
        return
    if not sources:
        raise click.UsageError("give checkpoints or run folders to export (SOURCES), or --module FILE.py:NAME")
    paths = _sources(sources)
    single = _is_single_file(output)
    require_training_extra()
    from rnnedge.export.validate import Tolerances

    tolerances = Tolerances.absolute(atol) if atol is not None else None

    def progress(message: str) -> None:
        if not quiet and sys.stderr.isatty():
            click.echo(message, err=True)

    if single:
        from rnnedge.export.exporter import export_model, variant_path
        from rnnedge.export.variants import VARIANTS

        checkpoint = _one_checkpoint(paths, output)
        target = Path(output)
        _refuse_replacing(target, quantize, force)
        outcomes = export_model(
            checkpoint,
            target,
            variants=quantize,
            data=data,
            tolerances=tolerances,
            progress=lambda variant: progress(f"{checkpoint} -> {variant_path(target, variant)}"),
        )
        for outcome in outcomes:
            _echo_outcome(outcome)
        for variant in VARIANTS:
            if variant not in quantize and variant_path(target, variant).is_file():
                click.echo(
                    f"note: {variant_path(target, variant)} is from an earlier export, not this one "
                    f"(add --quantize {variant} to rewrite it, or remove it)"
                )
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            raise click.ClickException(f"{len(failed)} of {len(outcomes)} files failed; see above")
        return

    from rnnedge.export.batch import MANIFEST_NAME, export_many, find_checkpoints

    if not find_checkpoints(paths):
        raise click.UsageError(f"no checkpoints (*.pt) found in {', '.join(map(str, sources))}")
    dist = Path(output)
    summary = export_many(
        paths, dist, variants=quantize, data=data, force=force, tolerances=tolerances, progress=progress
    )
    for entry in summary.entries:
        detail = ""
        if entry["status"] == "failed":
            detail = ":\n" + _indented(entry["error"])
        elif entry["status"] == "skipped":
            detail = f": {entry['reason']}"
        click.echo(f"{entry['status']:>9}  {entry['name']} ({entry['variant']}){detail}")
    for stale in summary.removed:
        click.echo(f"  removed  {stale} (not part of this export)")
    click.echo(f"manifest: {dist / MANIFEST_NAME}")
    if summary.failed:
        raise click.ClickException(f"{len(summary.failed)} of {len(summary.entries)} exports failed; see the report")
