"""Several of a user's own modules into one folder, from a small manifest (``rnnedge export --modules M.json``).

The manifest is JSON: ``{"models": [{"name": "vad", "module": "vad.py:VoiceActivity", "weights":
"vad.pt", "task": "tagger", ...}, ...]}``; paths are relative to the manifest, and each entry may
set what :func:`~.user_module.export_module` takes (``head``, ``labels``, ``vocabulary`` (a file),
``tokens``, ``standardize`` (a training file), ``time_major``) and ``quantize: ["int8"]``. Each
model becomes ``DIST/NAME.onnx`` (and its variants), validated against its own forward; a model
that fails is recorded and the others go on. ``DIST/manifest.json`` lists every file written with
its SHA-256, kind, parity and the entry it came from.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rnnedge.data.atomic import atomic_output
from rnnedge.errors import ConfigError, DataError
from rnnedge.runtime.metadata import Standardize

from .batch import sha256_of
from .exporter import variant_path
from .files import output_errors
from .validate import Tolerances
from .variants import VARIANTS, make_variant

__all__ = ["ENTRY_KEYS", "export_modules", "read_standardize", "read_vocabulary"]

ENTRY_KEYS = frozenset(
    {"name", "module", "weights", "task", "head", "labels", "vocabulary", "tokens", "standardize", "time_major"}
    | {"quantize"}
)
MANIFEST_NAME = "manifest.json"


def read_vocabulary(path: Path) -> list[str]:
    """One token per line, in id order (a trailing newline is not a token)."""
    try:
        tokens = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read the vocabulary {path}: {e}") from None
    if not tokens:
        raise DataError(f"the vocabulary {path} is empty; expected one token per line")
    return tokens


def read_standardize(path: Path) -> Standardize:
    """Per-channel mean and std of a training file's frames (``.ts``, ``.npz``; what training computes)."""
    from rnnedge.data.sequences import read_sequences

    from .user_module import standardize_from

    return standardize_from(read_sequences(path).sequences)


def _entries(manifest: Path) -> list[dict[str, Any]]:
    try:
        raw = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read the module manifest {manifest}: {e}") from None
    models = raw.get("models") if isinstance(raw, dict) else None
    if not isinstance(models, list) or not models:
        raise ConfigError(f'{manifest}: expected {{"models": [...]}} with at least one entry')
    names = set()
    for i, entry in enumerate(models):
        if not isinstance(entry, dict) or not {"name", "module", "task"} <= set(entry):
            raise ConfigError(f"{manifest}: models[{i}] must be an object with name, module and task")
        if unknown := set(entry) - ENTRY_KEYS:
            known = sorted(ENTRY_KEYS)
            raise ConfigError(f"{manifest}: models[{i}] has unknown keys {sorted(unknown)}; known: {known}")
        name = entry["name"]
        if not isinstance(name, str) or not name or "/" in name or name.startswith(".") or name in names:
            raise ConfigError(f"{manifest}: models[{i}].name {name!r} must be a plain file name, used once")
        names.add(name)
    return models


def _export_entry(entry: dict[str, Any], base: Path, dist: Path, tolerances: Tolerances | None) -> list[dict[str, Any]]:
    from .user_module import export_module, load_user_module

    file, _, attr = str(entry["module"]).rpartition(":")
    weights = entry.get("weights")
    module, source = load_user_module(f"{base / file}:{attr}", base / weights if weights else None)
    settings: dict[str, Any] = {k: entry[k] for k in ("head", "labels", "tokens", "time_major") if k in entry}
    if "vocabulary" in entry:
        settings["vocabulary"] = read_vocabulary(base / entry["vocabulary"])
    if "standardize" in entry:
        settings["standardize"] = read_standardize(base / entry["standardize"])
    output = dist / f"{entry['name']}.onnx"
    result = export_module(module, output, task=entry["task"], tolerances=tolerances, source=source, **settings)
    written = [("float32", output, result.metadata.kind, result.parity.as_dict())]
    for variant in entry.get("quantize", []):
        if variant not in VARIANTS:
            raise ConfigError(f"unknown variant {variant!r}; choose from {sorted(VARIANTS)}")
        path = variant_path(output, variant)
        made = make_variant(VARIANTS[variant], output, path)
        written.append((variant, path, made.metadata.kind, made.parity.as_dict()))
    return [
        {"variant": v, "file": p.name, "size_bytes": p.stat().st_size, "sha256": sha256_of(p), "kind": k, "parity": d}
        for v, p, k, d in written
    ]


def export_modules(
    manifest: Path, dist: Path, *, variants: Iterable[str] = (), tolerances: Tolerances | None = None
) -> dict[str, Any]:
    """Export every module ``manifest`` lists into ``dist``; returns what ``DIST/manifest.json`` holds.

    ``variants`` are added to every entry's own ``quantize``. Never stops at a failing model: its
    entry says ``failed`` with the whole error.
    """
    entries = _entries(manifest)
    if dist.exists() and not dist.is_dir():
        raise ConfigError(f"cannot export into {dist}: it exists and is not a folder")
    with output_errors(dist):
        dist.mkdir(parents=True, exist_ok=True)
    listed: list[dict[str, Any]] = []
    for entry in entries:
        entry = {**entry, "quantize": list(dict.fromkeys([*entry.get("quantize", []), *variants]))}
        try:
            for made in _export_entry(entry, manifest.parent, dist, tolerances):
                listed.append({"name": entry["name"], "status": "ok", **made, "source": entry})
        except Exception as e:  # a batch never stops at one model; the message keeps every line
            error = "".join(traceback.format_exception_only(type(e), e)).strip()
            listed.append({"name": entry["name"], "variant": "float32", "status": "failed", "error": error})
    summary = {"format": 1, "from": str(manifest), "models": listed}
    path = dist / MANIFEST_NAME
    with output_errors(path), atomic_output(path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return {**summary, "manifest": str(path)}
