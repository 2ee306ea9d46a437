"""What one step or one position of a model costs: weight bytes read, FLOPs, the GEMMs run.

Estimated from the network's shape, which the file's kind reads from the configuration the
model was trained with (``config.model`` in the metadata; see ``rnnedge.runtime.network``):
a file whose configuration lacks a field is refused with a :class:`ModelFileError` that names
it, rather than estimated from a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rnnedge.runtime import ModelMetadata, Network

__all__ = ["GemmShape", "flops_per_position", "lstm_gemm_shapes", "weights_per_step"]


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


def _network(meta: ModelMetadata) -> Network:
    """The file's network as its kind reads it from ``config.model`` (the kind names a missing field)."""
    from rnnedge.runtime import runtime_kind

    return runtime_kind(meta).model.network(meta)


def weights_per_step(meta: ModelMetadata) -> int:
    """Bytes of weights one streaming step at batch 1 reads, estimated from the metadata's configuration.

    Every LSTM layer's input and recurrent matrices (``4H × in`` and ``4H × H``) and biases
    (``8H``), and the output layer; the one embedding row a language model reads is left
    out. float32 files: 4 bytes a weight; fp16 files: 2; int8 files: 1 byte a matrix entry,
    biases stay float32 (scales and zero points are negligible).
    """
    matrix_bytes = {"int8": 1, "fp16": 2}.get(meta.variant, 4)
    bias_bytes = 2 if meta.variant == "fp16" else 4
    net = _network(meta)
    total = 0
    for inp, hidden, directions, gates in net.layers:
        total += directions * (gates * hidden * (inp + hidden) * matrix_bytes + 2 * gates * hidden * bias_bytes)
    head_in, head_out = net.head
    return total + head_in * head_out * matrix_bytes + head_out * bias_bytes


def flops_per_position(meta: ModelMetadata) -> int:
    """Floating-point operations per token (language model) or row (classifier) of a whole-sequence forward.

    The LSTM's gate products ``2 · 4H · (in + H)`` per layer and direction, plus, for a
    language model, the output projection ``2 · H · V`` at every position (a classifier's
    head runs once per sequence and is left out). Element-wise gate work is not counted.
    """
    net = _network(meta)
    flops = sum(d * 2 * gates * h * (i + h) for i, h, d, gates in net.layers)
    if net.head_every_step:
        flops += 2 * net.head[0] * net.head[1]
    return flops


def lstm_gemm_shapes(meta: ModelMetadata, batch: int, length: int) -> list[GemmShape]:
    """The matrix products of a whole-sequence forward as onnxruntime's LSTM runs them.

    Per layer and direction: the input projection of all positions at once
    ``(B·T, in) @ (in, 4H)``, then ``T`` recurrent products ``(B, H) @ (H, 4H)``; for a
    language model, the output projection ``(B·T, H) @ (H, V)``.
    """
    shapes: list[GemmShape] = []
    net = _network(meta)
    for index, (inp, hidden, directions, gates) in enumerate(net.layers):
        shapes.append(GemmShape(f"layer {index} input", batch * length, inp, gates * hidden, directions))
        shapes.append(GemmShape(f"layer {index} recurrent", batch, hidden, gates * hidden, directions * length))
    if net.head_every_step:
        head_in, head_out = net.head
        shapes.append(GemmShape("output projection", batch * length, head_in, head_out))
    return shapes
