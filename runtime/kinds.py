"""The runtime's kinds: for each metadata ``kind``, the :class:`Model` subclass ``load`` returns.

A kind registers itself at the end of its own module (``classifier.py``, ``language.py``),
and the runtime's ``__init__`` imports every kind module: that is the one list of built-in
kinds. The subclass is the kind's whole record: how its inputs are read (``stream_input``,
``stack_inputs``, ``prepare``), what a result is (``results``, ``names``, ``top_k``), what it
supports (``causal`` from the metadata; ``DEVICE_STATE``), how ``rnnedge info`` shows it
(``info_fields``) and what ``rnnedge bench`` times (``UNIT``, ``WORKLOAD``, ``example_steps``,
``example_batch``, ``predict``). Nothing else switches on kind names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ModelFileError
from .metadata import ModelMetadata

if TYPE_CHECKING:
    from .model import Model

__all__ = ["RuntimeKind", "register_kind", "registered_kinds", "runtime_kind"]


@dataclass(frozen=True)
class RuntimeKind:
    """How one metadata kind runs: the model class that ``load`` returns for it."""

    name: str
    model: type[Model]


_KINDS: dict[str, RuntimeKind] = {}


def register_kind(name: str, model: type[Model]) -> None:
    """Make files whose metadata says ``kind: name`` load as ``model``."""
    if name in _KINDS:
        raise ValueError(f"runtime kind {name!r} is registered twice")
    _KINDS[name] = RuntimeKind(name, model)


def registered_kinds() -> list[str]:
    """The kinds this runtime runs, sorted."""
    return sorted(_KINDS)


def runtime_kind(metadata: ModelMetadata | str) -> RuntimeKind:
    """The registered kind of a file (or of a kind name); :class:`ModelFileError` for one this runtime lacks."""
    name = metadata if isinstance(metadata, str) else metadata.kind
    try:
        return _KINDS[name]
    except KeyError:
        raise ModelFileError(
            f"model kind {name!r} is not one this runtime runs ({', '.join(sorted(_KINDS))})"
        ) from None
