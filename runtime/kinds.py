"""The runtime's kinds: for each metadata ``kind``, its codec and the model face ``load`` returns.

A kind registers itself in its own module (``classifier.py``, ``language.py``); ``load``
looks the file's kind up here and nowhere else switches on kind names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .codec import Codec
from .errors import ModelFileError
from .metadata import ModelMetadata

if TYPE_CHECKING:
    from .model import Model

__all__ = ["RuntimeKind", "register_kind", "runtime_kind"]


@dataclass(frozen=True)
class RuntimeKind:
    """How one metadata kind runs: its codec (built from the metadata) and its model face."""

    name: str
    codec: type[Codec]
    model: type[Model]


_KINDS: dict[str, RuntimeKind] = {}


def register_kind(name: str, codec: type[Codec], model: type[Model]) -> None:
    """Make files whose metadata says ``kind: name`` load with ``codec`` and ``model``."""
    if name in _KINDS:
        raise ValueError(f"runtime kind {name!r} is registered twice")
    _KINDS[name] = RuntimeKind(name, codec, model)


def runtime_kind(metadata: ModelMetadata) -> RuntimeKind:
    """The registered kind of a file; :class:`ModelFileError` for a kind this runtime does not know."""
    try:
        return _KINDS[metadata.kind]
    except KeyError:
        raise ModelFileError(
            f"model kind {metadata.kind!r} is not one this runtime runs ({', '.join(sorted(_KINDS))})"
        ) from None
