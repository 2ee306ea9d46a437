"""The model kinds training knows, each a small record registered once beside its module.

A checkpoint's ``"kind"`` names one of these; export looks up its graph writer by the same
name (``rnnedge.export.kinds``) and the runtime its codec by the metadata's kind. Nothing
else switches on kind names. Older checkpoints name a kind by its first preset (``mnist-lstm``,
``ptb``): those names are aliases, so every checkpoint ever written keeps loading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from rnnedge.errors import CheckpointError

__all__ = ["ModelKind", "build_from_checkpoint", "kind_named", "known_kinds", "register"]


@dataclass(frozen=True)
class ModelKind:
    """One kind of network: how a checkpoint's ``config`` dict becomes a module.

    ``config`` is the frozen dataclass of the network's shape (stored as ``asdict`` in the
    checkpoint and in the exported file's metadata); ``module`` builds the untrained network.
    """

    name: str
    config: type[Any]
    module: Callable[[Any], nn.Module]
    aliases: tuple[str, ...] = ()


_KINDS: dict[str, ModelKind] = {}


def register(kind: ModelKind) -> ModelKind:
    """Add ``kind`` (under its name and aliases); a name taken by another kind is a programming error."""
    for name in (kind.name, *kind.aliases):
        if name in _KINDS and _KINDS[name] is not kind:
            raise ValueError(f"model kind {name!r} is registered twice")
        _KINDS[name] = kind
    return kind


def known_kinds() -> list[str]:
    """The registered kinds' names (not their aliases), sorted."""
    _load_builtin_kinds()
    return sorted({k.name for k in _KINDS.values()})


def kind_named(name: object) -> ModelKind:
    """The kind a checkpoint names; :class:`CheckpointError` naming the known ones otherwise."""
    _load_builtin_kinds()
    kind = _KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise CheckpointError(f"unknown model kind {name!r}; known kinds: {', '.join(known_kinds())}")
    return kind


def build_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    """Rebuild the network a checkpoint describes, with its weights, in eval mode."""
    from .checkpoint import build_model

    kind = kind_named(ckpt["kind"])
    return build_model(ckpt, kind.config, kind.module)


def _load_builtin_kinds() -> None:
    """Import the modules that register rnnedge's own kinds (they register on import)."""
    from . import models  # noqa: F401
