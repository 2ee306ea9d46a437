"""The shape of a file's network, read from the configuration training stored in its metadata.

Each kind says how its ``config.model`` becomes a :class:`Network` (``Model.network``); the
benchmarks estimate a step's cost from it (``rnnedge.bench.cost``) without knowing any kind.
Every field is read explicitly: a configuration that lacks one, or holds it with the wrong
type, is refused with a :class:`ModelFileError` that names the field, rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ModelFileError
from .metadata import ModelMetadata

__all__ = ["ModelConfig", "Network"]


@dataclass(frozen=True)
class Network:
    """The recurrent layers and the output layer of a network, as matrix sizes."""

    layers: tuple[tuple[int, int, int], ...]  # (input size, hidden size, directions) of each recurrent layer
    gates: int  # gate blocks per layer: 4 for an LSTM, 3 for a GRU
    head: tuple[int, int]  # (in, out) of the output layer
    head_every_step: bool  # the output layer runs at every position (a language model), not once per sequence


class ModelConfig:
    """``config.model`` of a file's metadata, read field by field with errors that name the field."""

    def __init__(self, meta: ModelMetadata) -> None:
        model = meta.config.get("model")
        if not isinstance(model, Mapping):
            raise ModelFileError("metadata field config.model (the model's configuration) is missing")
        self.raw: Mapping[str, Any] = model
        self.kind = meta.kind

    def _get(self, key: str) -> Any:
        if key not in self.raw:
            raise ModelFileError(f"metadata field config.model.{key} is missing ({self.kind} configurations have it)")
        return self.raw[key]

    def size(self, key: str) -> int:
        """A positive integer field."""
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelFileError(f"metadata field config.model.{key} must be a positive integer, got {value!r:.40}")
        return value

    def flag(self, key: str) -> bool:
        """A true/false field."""
        value = self._get(key)
        if not isinstance(value, bool):
            raise ModelFileError(f"metadata field config.model.{key} must be true or false, got {value!r:.40}")
        return value

    def gates(self) -> int:
        """Gate blocks per layer from ``cell`` (absent: an LSTM)."""
        return 3 if self.raw.get("cell") == "gru" else 4
