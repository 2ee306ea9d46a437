"""Export many runs at once into a distribution folder with a manifest and a report.

``DIST/manifest.json`` lists every model (kind, file, size, SHA-256, opset, inputs,
outputs, state layout, quality, parity, variant) and ``DIST/report.md`` says the same for
people. A failing model is recorded and the others go on. A model whose checkpoint and
export settings did not change since the last run, and whose file is still intact, is
skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnedge.data.atomic import atomic_output
from rnnedge.errors import ConfigError
from rnnedge.training.run_dir import CHECKPOINT_NAME

from .exporter import export_model, variant_path
from .files import check_output_file, output_errors
from .graphs import OPSET
from .metadata import producer
from .quality import format_quality
from .results import ExportResult
from .validate import Tolerances
from .variants import VARIANTS

__all__ = [
    "MANIFEST_NAME",
    "REPORT_NAME",
    "VARIANTS",
    "BatchSummary",
    "export_many",
    "find_checkpoints",
    "model_names",
]

# Raised whenever the same checkpoint exports to other files (2: the MNIST kind became a sequence
# classifier), so that a re-run re-exports what an earlier version wrote instead of keeping it.
EXPORT_REVISION = 2

MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.md"
MANIFEST_FORMAT = 1


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_checkpoints(sources: Iterable[Path]) -> list[Path]:
    """Checkpoint files named directly, or every ``*.pt`` below a named folder (sorted, no duplicates)."""
    return list(_discover(sources))


def _discover(sources: Iterable[Path]) -> dict[Path, Path]:
    """Each checkpoint found (resolved), with the run it stands for: its folder, or the file less ``.pt``.

    A checkpoint file named ``checkpoint.pt`` stands for its run folder; any other ``NAME.pt`` for
    ``NAME`` beside it. The run's path keeps the part below the source it was found in first.
    """
    found: dict[Path, Path] = {}
    for source in sources:
        base = source.resolve()
        paths = [p for p in sorted(base.rglob("*.pt")) if not p.name.startswith(".")] if base.is_dir() else [base]
        for path in paths:
            path = path.resolve()
            if path in found:
                continue
            run = _run_of(path)
            below = run.relative_to(base).parts if base.is_dir() and run.is_relative_to(base) else ()
            found[path] = Path(*below) if below else Path(run.name)
    return found


def _run_of(checkpoint: Path) -> Path:
    """The run a checkpoint stands for: its run folder, or the file itself for one named otherwise."""
    return checkpoint.parent if checkpoint.name == CHECKPOINT_NAME else checkpoint.with_suffix("")


def model_names(sources: Iterable[Path]) -> dict[Path, str]:
    """A file name for each checkpoint found: its run's path below the source folder, joined by ``-``.

    ``runs/`` holding ``a/run/checkpoint.pt`` and ``b/run/checkpoint.pt`` gives ``a-run`` and
    ``b-run``; a run folder named itself (``runs/one``) gives ``one``. Names depend on the paths
    only, never on the order they are found in: where two runs would share a name, both take
    folders from above until they differ (and, past the root, a number in path order).
    """
    found = _discover(sources)
    runs = {ckpt: _run_of(ckpt) for ckpt in found}
    depth = {ckpt: max(1, len(rel.parts)) for ckpt, rel in found.items()}

    def name(ckpt: Path) -> str:
        return "-".join(runs[ckpt].parts[-depth[ckpt] :])

    while True:
        groups: dict[str, list[Path]] = {}
        for ckpt in runs:
            groups.setdefault(name(ckpt), []).append(ckpt)
        grew = False
        for group in groups.values():
            for ckpt in group if len(group) > 1 else ():
                if depth[ckpt] < len(runs[ckpt].parts) - 1:  # never the root "/"
                    depth[ckpt] += 1
                    grew = True
        if not grew:
            break
    names: dict[Path, str] = {}
    taken: set[str] = set()
    for ckpt in sorted(runs):
        base = candidate = name(ckpt)
        n = 2
        while candidate in taken:
            candidate, n = f"{base}-{n}", n + 1
        taken.add(candidate)
        names[ckpt] = candidate
    return names


def _describe(result: ExportResult) -> dict[str, Any]:
    meta = result.metadata
    return {
        "file": result.path.name,
        "size_bytes": result.size_bytes,
        "sha256": sha256_of(result.path),
        "kind": meta.kind,
        "causal": meta.causal,
        "opset": OPSET,
        "inputs": [meta.input.as_dict()] + [s.input.as_dict() for s in meta.states],
        "outputs": [o.as_dict() for o in meta.outputs] + [{**s.input.as_dict(), "name": s.output} for s in meta.states],
        "state": [s.as_dict() for s in meta.states],
        "quality": meta.quality,
        "parity": result.parity.as_dict() if result.parity.checks else None,
    }


@dataclass
class BatchSummary:
    """What a batch export did, entry by entry (as written to the manifest), and stale files it removed."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        """The entries whose export failed."""
        return [e for e in self.entries if e["status"] == "failed"]


def _write_text(path: Path, text: str) -> None:
    check_output_file(path)
    with output_errors(path), atomic_output(path) as tmp:
        tmp.write_text(text)


def _report(entries: list[dict[str, Any]]) -> str:
    lines = [
        "# rnnedge export report",
        "",
        "| model | variant | status | kind | size | quality | parity (largest diff) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in entries:
        quality = e.get("reason") or format_quality(e.get("quality") or {})
        if e["status"] == "failed":
            quality = "see below"
        parity = e.get("parity") or {}
        size = f"{e['size_bytes'] / 1e6:.2f} MB" if "size_bytes" in e else ""
        worst = f"{parity['worst']:.1e} ({parity['checks']} checks)" if parity else ""
        lines.append(
            f"| {e['name']} | {e['variant']} | {e['status']} | {e.get('kind', '')} | {size} | {quality} | {worst} |"
        )
    for e in entries:
        if e["status"] == "failed":
            lines += ["", f"## {e['name']} ({e['variant']}) failed", "", "```", e["error"], "```"]
    return "\n".join(lines) + "\n"


def _previous_entries(manifest_path: Path) -> list[dict[str, Any]]:
    try:
        models = json.loads(manifest_path.read_text())["models"]
        return [e for e in models if isinstance(e, dict) and "name" in e and "variant" in e]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # an unreadable manifest only costs a full re-export


def export_many(
    sources: Iterable[Path],
    dist: Path,
    *,
    variants: Iterable[str] = (),
    data: str | os.PathLike[str] | None = None,
    force: bool = False,
    tolerances: Tolerances | None = None,
    progress: Callable[[str], None] | None = None,
) -> BatchSummary:
    """Export every checkpoint under ``sources`` into ``dist``, plus ``variants`` (int8, fp16) of each.

    Never stops at a failing model. ``dist`` holds what the manifest lists: a variant not asked
    for this time (or that the kind does not have), and a model's file under the name an
    earlier rnnedge gave the same checkpoint, are removed.
    """
    sources = list(sources)
    extra = list(dict.fromkeys(variants))
    if unknown := [v for v in extra if v not in VARIANTS]:
        raise ConfigError(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    if dist.exists() and not dist.is_dir():
        raise ConfigError(f"cannot export into {dist}: it exists and is not a folder")
    with output_errors(dist):
        dist.mkdir(parents=True, exist_ok=True)
    manifest_path = dist / MANIFEST_NAME
    earlier = _previous_entries(manifest_path) if manifest_path.exists() else []
    previous = {} if force else {(e["name"], e["variant"]): e for e in earlier}
    made_by = producer()
    tolerances = tolerances or Tolerances()
    summary = BatchSummary()
    names = model_names(sources)
    for i, (checkpoint, name) in enumerate(names.items(), 1):
        ckpt_sha = sha256_of(checkpoint) if checkpoint.is_file() else None
        float_path = dist / f"{name}.onnx"
        base = {"name": name, "checkpoint": str(checkpoint), "checkpoint_sha256": ckpt_sha}

        def settings(variant: str) -> dict[str, Any]:
            return {
                "variant": variant,
                "opset": OPSET,
                "rnnedge": made_by["version"],
                "export_revision": EXPORT_REVISION,
                **tolerances.as_dict(),
            }

        def keep(variant: str, path: Path) -> bool:
            old = previous.get((name, variant))  # noqa: B023 (called within this iteration only)
            return bool(
                old
                and old.get("status") in ("ok", "unchanged")
                and old.get("checkpoint_sha256") == ckpt_sha  # noqa: B023
                and old.get("settings") == settings(variant)
                and path.is_file()
                and sha256_of(path) == old.get("sha256")
            )

        def announce(variant: str) -> None:
            if progress:
                progress(f"[{i}/{len(names)}] {name} ({variant})")  # noqa: B023

        try:
            outcomes = export_model(
                checkpoint, float_path, variants=extra, data=data, tolerances=tolerances, keep=keep, progress=announce
            )
        except Exception as e:
            error = "".join(traceback.format_exception_only(type(e), e)).strip()
            summary.entries.append(
                {**base, "variant": "float32", "settings": settings("float32"), "status": "failed", "error": error}
            )
            for v in extra:
                summary.entries.append(
                    {**base, "variant": v, "settings": settings(v), "status": "failed", "error": "float export failed"}
                )
            continue
        for outcome in outcomes:
            entry: dict[str, Any] = {**base, "variant": outcome.variant, "settings": settings(outcome.variant)}
            if outcome.status == "unchanged":
                entry = {**previous[(name, outcome.variant)], "status": "unchanged"}
            elif outcome.status == "ok" and outcome.result is not None:
                entry.update(status="ok", **_describe(outcome.result))
            elif outcome.status == "skipped":
                entry.update(status="skipped", reason=outcome.message)
            else:
                entry.update(status="failed", error=outcome.message)
            summary.entries.append(entry)
            if outcome.status == "skipped" and outcome.path.exists():
                summary.removed.append(outcome.path)
        for v in VARIANTS:  # variants not asked for this time: their files would be listed nowhere
            stale = variant_path(float_path, v)
            if v not in extra and stale.is_file():
                summary.removed.append(stale)
    listed = {e["file"] for e in summary.entries if "file" in e}
    current = {str(c) for c in names}
    for old in earlier:  # the same checkpoint's files under a name an earlier export gave it
        file = old.get("file")
        if (
            not isinstance(file, str)
            or Path(file).name != file
            or file in listed
            or old.get("checkpoint") not in current
        ):
            continue  # only a plain file name in dist, never a path a hand-edited manifest could point elsewhere
        stale = dist / file
        if stale.suffix == ".onnx" and stale.is_file():
            summary.removed.append(stale)
    summary.removed = list(dict.fromkeys(summary.removed))  # a file found stale twice is reported once
    for stale in summary.removed:
        with output_errors(stale):
            stale.unlink(missing_ok=True)
    _write_text(
        manifest_path,
        json.dumps({"format": MANIFEST_FORMAT, "producer": made_by, "models": summary.entries}, indent=2),
    )
    _write_text(dist / REPORT_NAME, _report(summary.entries))
    return summary
