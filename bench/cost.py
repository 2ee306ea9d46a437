"""What one step or one position of a model costs: weight bytes read, FLOPs, the GEMMs run.

Estimated from the configuration the model was trained with, which export stores in the
metadata under ``config.model``. Every field is read explicitly: a file whose configuration
lacks one, or holds it with the wrong type, is refused with a :class:`ModelFileError` that
names the field, rather than estimated from a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rnnedge.errors import ModelFileError

if TYPE_CHECKING:
    from rnnedge.runtime import ModelMetadata

__all__ = ["GemmShape", "flops_per_position", "lstm_gemm_shapes", "weights_per_step"]

LANGUAGE_MODEL = "language_model"
CLASSIFIERS = ("causal_classifier", "noncausal_classifier")


@dataclass(frozen=True)
class GemmShape:
    """One matrix product ``(m, k) @ (k, n)`` that a forward pass runs ``count`` times."""

    label: str
    m: int
    k: int
    n: int
    count: int = 1

    @property
    def flops(self) -> int:
        """Multiply-adds counted as two operations, over all ``count`` products."""
        return 2 * self.m * self.k * self.n * self.count


class _ModelConfig:
    """``config.model`` of a file's metadata, read field by field with errors that name the field."""

    def __init__(self, meta: ModelMetadata) -> None:
        if meta.kind != LANGUAGE_MODEL and meta.kind not in CLASSIFIERS:
            raise ModelFileError(
                f"model kind {meta.kind!r}: its cost is estimated for {', '.join((LANGUAGE_MODEL, *CLASSIFIERS))} only"
            )
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
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelFileError(f"metadata field config.model.{key} must be a positive integer, got {value!r:.40}")
        return value

    def flag(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise ModelFileError(f"metadata field config.model.{key} must be true or false, got {value!r:.40}")
        return value


def _gates(meta: ModelMetadata) -> int:
    """Gate blocks per layer: 4 for an LSTM, 3 for a GRU (``config.model.cell``; absent: an LSTM)."""
    return 3 if _ModelConfig(meta).raw.get("cell") == "gru" else 4


def _layers(meta: ModelMetadata) -> list[tuple[int, int, int]]:
    """``(input size, hidden size, directions)`` of every recurrent layer, from the metadata's configuration."""
    cfg = _ModelConfig(meta)
    hidden = cfg.size("hidden_size")
    if meta.kind == LANGUAGE_MODEL:
        return [(hidden, hidden, 1)] * cfg.size("num_layers")
    directions = 2 if cfg.flag("bidirectional") else 1
    layers = cfg.size("num_layers") if "num_layers" in cfg.raw else 1  # a row classifier has one
    return [(cfg.size("input_size") if i == 0 else directions * hidden, hidden, directions) for i in range(layers)]


def _head(meta: ModelMetadata) -> tuple[int, int]:
    """``(in, out)`` of the output layer."""
    cfg = _ModelConfig(meta)
    hidden = cfg.size("hidden_size")
    if meta.kind == LANGUAGE_MODEL:
        return hidden, cfg.size("vocab_size")
    return hidden * (2 if cfg.flag("bidirectional") else 1), cfg.size("num_classes")


def weights_per_step(meta: ModelMetadata) -> int:
    """Bytes of weights one streaming step at batch 1 reads, estimated from the metadata's configuration.

    Every LSTM layer's input and recurrent matrices (``4H × in`` and ``4H × H``) and biases
    (``8H``), and the output layer; the one embedding row a language model reads is left
    out. float32 files: 4 bytes a weight; fp16 files: 2; int8 files: 1 byte a matrix entry,
    biases stay float32 (scales and zero points are negligible).
    """
    matrix_bytes = {"int8": 1, "fp16": 2}.get(meta.variant, 4)
    bias_bytes = 2 if meta.variant == "fp16" else 4
    total, gates = 0, _gates(meta)
    for inp, hidden, directions in _layers(meta):
        total += directions * (gates * hidden * (inp + hidden) * matrix_bytes + 2 * gates * hidden * bias_bytes)
    head_in, head_out = _head(meta)
    return total + head_in * head_out * matrix_bytes + head_out * bias_bytes


def flops_per_position(meta: ModelMetadata) -> int:
    """Floating-point operations per token (language model) or row (classifier) of a whole-sequence forward.

    The LSTM's gate products ``2 · 4H · (in + H)`` per layer and direction, plus, for a
    language model, the output projection ``2 · H · V`` at every position (a classifier's
    head runs once per sequence and is left out). Element-wise gate work is not counted.
    """
    gates = _gates(meta)
    flops = sum(d * 2 * gates * h * (i + h) for i, h, d in _layers(meta))
    if meta.kind == LANGUAGE_MODEL:
        head_in, head_out = _head(meta)
        flops += 2 * head_in * head_out
    return flops


def lstm_gemm_shapes(meta: ModelMetadata, batch: int, length: int) -> list[GemmShape]:
    """The matrix products of a whole-sequence forward as onnxruntime's LSTM runs them.

    Per layer and direction: the input projection of all positions at once
    ``(B·T, in) @ (in, 4H)``, then ``T`` recurrent products ``(B, H) @ (H, 4H)``; for a
    language model, the output projection ``(B·T, H) @ (H, V)``.
    """
    shapes: list[GemmShape] = []
    gates = _gates(meta)
    for index, (inp, hidden, directions) in enumerate(_layers(meta)):
        shapes.append(GemmShape(f"layer {index} input", batch * length, inp, gates * hidden, directions))
        shapes.append(GemmShape(f"layer {index} recurrent", batch, hidden, gates * hidden, directions * length))
    if meta.kind == LANGUAGE_MODEL:
        head_in, head_out = _head(meta)
        shapes.append(GemmShape("output projection", batch * length, head_in, head_out))
    return shapes
