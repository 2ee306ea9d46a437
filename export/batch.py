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
from functools import partial
from pathlib import Path
from typing import Any

from rnnedge.data.atomic import atomic_output
from rnnedge.errors import ConfigError
from rnnedge.runtime.metadata import ModelMetadata

from .exporter import ExportResult, _producer, export_checkpoint
from .graphs import OPSET
from .half import convert_fp16
from .quality import measure_quality
from .quantize import QualityFn, quantize_int8

__all__ = ["MANIFEST_NAME", "REPORT_NAME", "VARIANTS", "BatchSummary", "export_many", "find_checkpoints"]

MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.md"
MANIFEST_FORMAT = 1
# The variants written beside each float model, from its file: int8 for the CPU, fp16 for CUDA.
VARIANTS: dict[str, Callable[[Path, Path, QualityFn | None], ExportResult]] = {
    "int8": quantize_int8,
    "fp16": convert_fp16,
}


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_checkpoints(sources: Iterable[Path]) -> list[Path]:
    """Checkpoint files named directly, or every ``*.pt`` below a named folder (sorted, no duplicates)."""
    found: list[Path] = []
    for source in sources:
        if source.is_dir():
            found.extend(p for p in sorted(source.rglob("*.pt")) if not p.name.startswith("."))
        else:
            found.append(source)
    return list(dict.fromkeys(p.resolve() for p in found))


def _model_name(checkpoint: Path, taken: set[str]) -> str:
    base = checkpoint.parent.name if checkpoint.name == "checkpoint.pt" else checkpoint.stem
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _describe(result: ExportResult, meta: ModelMetadata) -> dict[str, Any]:
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
    """What a batch export did, entry by entry (as written to the manifest)."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        """The entries whose export failed."""
        return [e for e in self.entries if e["status"] == "failed"]


def _write_text(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def _report(entries: list[dict[str, Any]]) -> str:
    lines = [
        "# rnnedge export report",
        "",
        "| model | variant | status | kind | size | quality | parity (largest diff) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in entries:
        quality = e.get("reason") or ", ".join(f"{k} {v:.4g}" for k, v in (e.get("quality") or {}).items())
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


def export_many(
    sources: Iterable[Path],
    dist: Path,
    *,
    variants: Iterable[str] = (),
    data: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> BatchSummary:
    """Export every checkpoint under ``sources`` into ``dist``, plus ``variants`` (int8, fp16) of each.

    Never stops at a failing model.
    """
    extra = list(dict.fromkeys(variants))
    if unknown := [v for v in extra if v not in VARIANTS]:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    dist.mkdir(parents=True, exist_ok=True)
    manifest_path = dist / MANIFEST_NAME
    previous: dict[tuple[str, str], dict[str, Any]] = {}
    if manifest_path.exists() and not force:
        try:
            for e in json.loads(manifest_path.read_text())["models"]:
                previous[(e["name"], e["variant"])] = e
        except (ValueError, KeyError, TypeError):
            previous = {}  # an unreadable manifest only costs a full re-export
    producer = _producer()
    summary = BatchSummary()
    taken: set[str] = set()
    checkpoints = find_checkpoints(sources)
    for i, checkpoint in enumerate(checkpoints, 1):
        name = _model_name(checkpoint, taken)
        ckpt_sha = sha256_of(checkpoint) if checkpoint.is_file() else None
        for variant in ["float32", *extra]:
            settings = {"variant": variant, "opset": OPSET, "rnnedge": producer["version"]}
            entry: dict[str, Any] = {
                "name": name,
                "variant": variant,
                "checkpoint": str(checkpoint),
                "checkpoint_sha256": ckpt_sha,
                "settings": settings,
            }
            if progress:
                progress(f"[{i}/{len(checkpoints)}] {name} ({variant})")
            old = previous.get((name, variant))
            out = dist / (f"{name}.onnx" if variant == "float32" else f"{name}.{variant}.onnx")
            if (
                old
                and old.get("status") in ("ok", "unchanged")
                and old.get("checkpoint_sha256") == ckpt_sha
                and old.get("settings") == settings
                and out.is_file()
                and sha256_of(out) == old.get("sha256")
            ):
                summary.entries.append({**old, "status": "unchanged"})
                continue
            try:
                if variant == "float32":
                    result = export_checkpoint(checkpoint, out)
                else:
                    make = VARIANTS[variant]
                    result = make(dist / f"{name}.onnx", out, partial(measure_quality, data=data))
                entry.update(status="ok", **_describe(result, result.metadata))
            except ConfigError as e:  # a variant this kind of model does not have (fp16 of a classifier)
                entry.update(status="skipped", reason=str(e))
            except Exception as e:
                detail = "".join(traceback.format_exception_only(type(e), e)).strip()
                entry.update(status="failed", error=detail)
                if variant == "float32" and extra:
                    summary.entries.append(entry)
                    for v in extra:
                        summary.entries.append({**entry, "variant": v, "error": "float export failed"})
                    break
            summary.entries.append(entry)
    _write_text(
        manifest_path,
        json.dumps({"format": MANIFEST_FORMAT, "producer": producer, "models": summary.entries}, indent=2),
    )
    _write_text(dist / REPORT_NAME, _report(summary.entries))
    return summary
