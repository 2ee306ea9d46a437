"""The model kinds training knows, each a small record registered once beside its module.

A checkpoint's ``"kind"`` names one of these; export looks up its graph writer by the same
name (``rnnedge.export.kinds``) and the runtime its codec by the metadata's kind. Nothing
else switches on kind names. Built-in kinds are found by one mechanism: every module of this
package is imported once, when the registry is first asked (:func:`load_builtin_kinds`).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from rnnedge.errors import CheckpointError

__all__ = ["ModelKind", "build_from_checkpoint", "kind_named", "known_kinds", "load_builtin_kinds", "register"]


@dataclass(frozen=True)
class ModelKind:
    """One kind of network: how a checkpoint's ``config`` dict becomes a module.

    ``config`` is the frozen dataclass of the network's shape (stored as ``asdict`` in the
    checkpoint and in the exported file's metadata); ``module`` builds the untrained network.
    """

    name: str
    config: type[Any]
    module: Callable[[Any], nn.Module]


_KINDS: dict[str, ModelKind] = {}


def register(kind: ModelKind) -> ModelKind:
    """Add ``kind`` under its name; a name taken by another kind is a programming error."""
    if kind.name in _KINDS and _KINDS[kind.name] is not kind:
        raise ValueError(f"model kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind
    return kind


def known_kinds() -> list[str]:
    """The registered kinds' names, sorted."""
    load_builtin_kinds(__name__)
    return sorted(_KINDS)


def kind_named(name: object) -> ModelKind:
    """The kind a checkpoint names; :class:`CheckpointError` naming the known ones otherwise."""
    load_builtin_kinds(__name__)
    kind = _KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise CheckpointError(f"unknown model kind {name!r}; known kinds: {', '.join(known_kinds())}")
    return kind


def build_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    """Rebuild the network a checkpoint describes, with its weights, in eval mode."""
    from .checkpoint import build_model

    kind = kind_named(ckpt["kind"])
    return build_model(ckpt, kind.config, kind.module)


_LOADED: set[str] = set()


def load_builtin_kinds(module: str) -> None:
    """Import, once, every module of the package that holds ``module`` (its kinds register on import).

    The one way each stage finds its built-in kinds (training here, export in ``rnnedge.export.kinds``):
    a new kind is a new module in the stage's package, and no list names it.
    """
    package = module.rpartition(".")[0]
    if package in _LOADED:
        return
    _LOADED.add(package)
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{info.name}")
