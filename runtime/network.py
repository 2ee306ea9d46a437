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


Layer = tuple[int, int, int, int]  # (input size, hidden size, directions, gate blocks: 4 LSTM, 3 GRU)


@dataclass(frozen=True)
class Network:
    """The recurrent layers and the output layer of a network, as matrix sizes."""

    layers: tuple[Layer, ...]  # every recurrent layer, in order
    head: tuple[int, int]  # (in, out) of the output layer
    head_every_step: bool  # the output layer runs at every position (a language model), not once per sequence


class ModelConfig:
    """``config.model`` of a file's metadata, read field by field with errors that name the field."""

    def __init__(self, meta: ModelMetadata, raw: Mapping[str, Any] | None = None, path: str = "config.model") -> None:
        model = meta.config.get("model") if raw is None else raw
        if not isinstance(model, Mapping):
            raise ModelFileError(f"metadata field {path} (the model's configuration) is missing")
        self.raw: Mapping[str, Any] = model
        self.meta = meta
        self.kind = meta.kind
        self.path = path

    def _get(self, key: str) -> Any:
        if key not in self.raw:
            raise ModelFileError(f"metadata field {self.path}.{key} is missing ({self.kind} configurations have it)")
        return self.raw[key]

    def size(self, key: str) -> int:
        """A positive integer field."""
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelFileError(f"metadata field {self.path}.{key} must be a positive integer, got {value!r:.40}")
        return value

    def flag(self, key: str) -> bool:
        """A true/false field."""
        value = self._get(key)
        if not isinstance(value, bool):
            raise ModelFileError(f"metadata field {self.path}.{key} must be true or false, got {value!r:.40}")
        return value

    def gates(self) -> int:
        """Gate blocks per layer from ``cell`` (absent: an LSTM)."""
        return 3 if self.raw.get("cell") == "gru" else 4

    def layers(
        self, input_size: int, *, one_layer_default: bool = False, forward_only: bool = False
    ) -> tuple[Layer, ...]:
        """Every recurrent layer, the first reading ``input_size`` features per step.

        A network of several recurrent submodules lists them in ``rnns`` (each with its ``cell``,
        ``hidden_size``, ``num_layers`` and ``bidirectional``), one reading the previous one's
        outputs; any other is one such description. ``one_layer_default``: ``num_layers`` may be
        absent (one layer); ``forward_only``: the kind has no ``bidirectional`` to read.
        """
        stages = self.raw.get("rnns")
        if stages is None:
            parts = [self]
        elif isinstance(stages, list) and stages:
            parts = [ModelConfig(self.meta, s, f"{self.path}.rnns[{i}]") for i, s in enumerate(stages)]
        else:
            raise ModelFileError(f"metadata field {self.path}.rnns must be a non-empty list, got {stages!r:.40}")
        layers: list[Layer] = []
        for part in parts:
            hidden, gates = part.size("hidden_size"), part.gates()
            directions = 1 if forward_only else 2 if part.flag("bidirectional") else 1
            count = 1 if one_layer_default and "num_layers" not in part.raw else part.size("num_layers")
            for _ in range(count):
                layers.append((input_size, hidden, directions, gates))
                input_size = directions * hidden
        return tuple(layers)
