"""The one model the bench makes itself: ``y = MatMul(a, b)`` with ``b`` a constant weight.

Why it exists: the machine limits compare a model's step with onnxruntime's *own* matrix
kernels (GEMM rate, and the read bandwidth of a one-row product, a streaming step's shape).
That needs an ONNX model holding one ``MatMul`` with its weight as an initializer, as the
exported graphs hold theirs (onnxruntime pre-packs constant weights; a weight fed as an
input would measure another kernel path). onnxruntime's Python API runs models but cannot
build one, the runtime only reads files, and the ``onnx`` package is not in the base install,
where ``rnnedge bench`` must run. So the few protobuf fields of that one graph are written
here; nothing else in rnnedge writes ONNX without the ``onnx`` package. The field numbers
are onnx.proto's; the tests check the result with ``onnx.checker`` where onnx is installed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["matmul_model"]

_OPSET = 17
_IR_VERSION = 8
_FLOAT = 1  # TensorProto.FLOAT


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: int | str | bytes) -> bytes:
    """One protobuf field: a varint for an int, length-delimited bytes for a str or bytes."""
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _float_input(name: str, dims: tuple[int, ...]) -> bytes:
    """ValueInfoProto ``name`` of TypeProto.tensor_type { elem_type FLOAT, shape { dim { dim_value } } }."""
    shape = b"".join(_field(1, _field(1, d)) for d in dims)
    return _field(1, name) + _field(2, _field(1, _field(1, _FLOAT) + _field(2, shape)))


def matmul_model(m: int, weights: np.ndarray) -> bytes:
    """Serialized ONNX model (opset 17): ``y (m, n) = MatMul(a (m, k), b)`` with ``weights`` ``(k, n)`` as ``b``."""
    k, n = weights.shape
    node = _field(1, "a") + _field(1, "b") + _field(2, "y") + _field(4, "MatMul")  # NodeProto
    init = _field(1, k) + _field(1, n) + _field(2, _FLOAT) + _field(8, "b")  # TensorProto dims, type, name
    init += _field(9, np.ascontiguousarray(weights, dtype="<f4").tobytes())  # raw_data, little-endian
    graph = _field(1, node) + _field(2, "matmul") + _field(5, init)  # GraphProto node, name, initializer
    graph += _field(11, _float_input("a", (m, k))) + _field(12, _float_input("y", (m, n)))  # input, output
    opset = _field(1, "") + _field(2, _OPSET)  # OperatorSetIdProto: the default domain
    return _field(1, _IR_VERSION) + _field(7, graph) + _field(8, opset)  # ModelProto
