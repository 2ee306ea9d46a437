"""Checkpoints: ``{"kind", "model", "config", "train_config", "metrics", "optimizer", "progress"}``.

Written atomically (temporary file, fsync, rename) so a kill at any moment leaves the
previous checkpoint intact; read with ``weights_only=True`` so a file can never run code.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from rnnedge.runtime.errors import CheckpointError

from .atomic import atomic_output

__all__ = ["CHECKPOINT_KINDS", "build_model", "check_resumable", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_KINDS = ("mnist-lstm", "mnist-bilstm", "ptb")
_REQUIRED = ("kind", "model", "config")
ModelT = TypeVar("ModelT", bound=nn.Module)


def save_checkpoint(path: str | os.PathLike[str], checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint`` to ``path`` so that readers only ever see a complete file."""
    with atomic_output(path) as tmp:
        torch.save(checkpoint, tmp)


def load_checkpoint(path: str | os.PathLike[str], kind: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """Load a checkpoint as plain data; refuse anything that is not one (or not of ``kind``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"checkpoint {path} was refused by the safe loader (weights_only=True): {e}") from None
    except Exception as e:  # torch.load fails on garbage with many unrelated types (KeyError, RuntimeError, ...)
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or not a checkpoint): {e!r}") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in _REQUIRED):
        raise CheckpointError(f"checkpoint {path} lacks the fields {_REQUIRED}; it was not written by rnnedge")
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
    return model.eval()


def check_resumable(
    ckpt: dict[str, Any],
    path: Path,
    model_config: dict[str, Any],
    train_config: dict[str, Any],
    free: Iterable[str] = (),
) -> None:
    """Refuse to resume a checkpoint made with other settings; the ``free`` training fields may differ."""
    free = set(free)
    wanted = {k: v for k, v in train_config.items() if k not in free}
    saved = {k: v for k, v in (ckpt.get("train_config") or {}).items() if k not in free}
    if ckpt["config"] != model_config or saved != wanted:
        raise CheckpointError(
            f"cannot resume {path}: it was trained with {ckpt['config']} / {ckpt.get('train_config')}, "
            f"this run asks for {model_config} / {train_config}"
        )
