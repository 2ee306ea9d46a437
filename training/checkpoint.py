"""Checkpoints: ``{"kind", "model", "config", "train_config", "metrics", "optimizer", "progress"}``.

Written atomically (temporary file, fsync, rename) so a kill at any moment leaves the
previous checkpoint intact; read with ``weights_only=True`` so a file can never run code.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from rnnedge.data.atomic import atomic_output
from rnnedge.errors import CheckpointError

__all__ = ["build_model", "check_resumable", "load_checkpoint", "save_checkpoint"]

_REQUIRED = ("kind", "model", "config")
_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip archive; the legacy format is a bare pickle
ModelT = TypeVar("ModelT", bound=nn.Module)


def save_checkpoint(path: str | os.PathLike[str], checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint`` to ``path`` so that readers only ever see a complete file."""
    with atomic_output(path) as tmp:
        torch.save(checkpoint, tmp)


def load_checkpoint(path: str | os.PathLike[str], kind: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """Load a checkpoint as plain data; refuse anything that is not one (or not of ``kind``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} " + ("is not a file" if path.exists() else "does not exist"))
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e.strerror or e}") from None
    if not head.startswith(_MAGIC):
        raise CheckpointError(
            f"checkpoint {path} is unreadable: it starts with {head!r}, not like a file torch.save writes "
            "(a zip archive); it is not a checkpoint"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's own message suggests weights_only=False, exactly what must never be done with an unknown file.
        found = re.search(r"WeightsUnpickler error: ([^\n]*?)(?:\. |\n|$)", str(e))
        reason = found.group(1) if found else type(e).__name__
        raise CheckpointError(
            f"checkpoint {path} was refused by the safe loader (weights_only=True): it holds objects other than "
            f"tensors and plain data ({reason}); rnnedge checkpoints never do, and none of the file's code was run"
        ) from None
    except Exception as e:  # torch.load fails on garbage with many unrelated types (KeyError, RuntimeError, ...)
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or not a checkpoint): {e!r}") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in _REQUIRED):
        raise CheckpointError(f"checkpoint {path} lacks the fields {_REQUIRED}; it was not written by rnnedge")
    if not isinstance(ckpt["kind"], str) or not isinstance(ckpt["model"], dict) or not isinstance(ckpt["config"], dict):
        got = ", ".join(f"{k}: {type(ckpt[k]).__name__}" for k in _REQUIRED)
        raise CheckpointError(
            f"checkpoint {path} has {got}; expected kind: str, model: dict of tensors, config: dict; "
            "it was not written by rnnedge"
        )
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds is not None and ckpt["kind"] not in kinds:
        raise CheckpointError(f"checkpoint {path} holds a {ckpt['kind']!r} model, expected {' or '.join(kinds)}")
    return ckpt


def build_model(ckpt: dict[str, Any], config_cls: Callable[..., Any], model_cls: Callable[[Any], ModelT]) -> ModelT:
    """Rebuild the model a checkpoint describes from its config, load its weights, and set eval mode."""
    try:
        model = model_cls(config_cls(**ckpt["config"]))
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint weights do not fit its config {ckpt['config']}: {e}") from None
    broken = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if broken:
        raise CheckpointError(
            f"checkpoint weights contain NaN or infinity in {', '.join(broken[:5])}; expected finite weights "
            "(did training diverge?)"
        )
    return model.eval()


def check_resumable(
    ckpt: dict[str, Any],
    path: Path,
    model_config: dict[str, Any],
    train_config: dict[str, Any],
    free: Iterable[str] = (),
) -> None:
    """Refuse to resume a checkpoint made with other settings, naming each setting that differs.

    The ``free`` training fields (the budget: epochs, max_steps, checkpoint cadence) may differ.
    """
    free = set(free)
    saved_train = ckpt.get("train_config") or {}
    differ = [
        f"{name} (checkpoint {saved.get(name, '<unset>')!r}, this run {wanted.get(name, '<unset>')!r})"
        for saved, wanted, skip in ((ckpt["config"], model_config, set()), (saved_train, train_config, free))
        for name in sorted(set(saved) | set(wanted))
        if name not in skip and saved.get(name, _MISSING) != wanted.get(name, _MISSING)
    ]
    if differ:
        raise CheckpointError(
            f"cannot resume {path}: it was trained with other settings: {'; '.join(differ)}; "
            "give the run's own settings, or train into a new folder"
        )


_MISSING = object()
