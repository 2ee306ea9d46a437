"""The machine's limits: float32 GEMM rate and memory read bandwidth, and from them the lower bound of a step."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from ..metadata import ModelMetadata
from .timing import calibrate
from .workloads import _feature_size

LARGE_BYTES = 128 * 10**6  # a working set larger than the last-level cache of the machines we target
ORT_GEMV_MAX_BYTES = 64 * 10**6  # onnxruntime's copy of a larger weight would cost too much memory


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


def _model_config(meta: ModelMetadata) -> dict[str, Any]:
    model = meta.config.get("model")
    if not isinstance(model, dict):
        raise ValueError("the model's metadata has no model configuration")
    return model


def _layers(meta: ModelMetadata) -> list[tuple[int, int, int]]:
    """``(input size, hidden size, directions)`` of every LSTM layer, from the metadata's configuration."""
    cfg = _model_config(meta)
    hidden = int(cfg["hidden_size"])
    if meta.kind == "language_model":
        return [(hidden, hidden, 1)] * int(cfg.get("num_layers", 1))
    return [(int(cfg.get("input_size", _feature_size(meta))), hidden, 2 if cfg.get("bidirectional") else 1)]


def _head(meta: ModelMetadata) -> tuple[int, int]:
    """``(in, out)`` of the output layer."""
    cfg = _model_config(meta)
    hidden = int(cfg["hidden_size"])
    if meta.kind == "language_model":
        return hidden, int(cfg["vocab_size"])
    return hidden * (2 if cfg.get("bidirectional") else 1), int(cfg.get("num_classes", 10))


def weights_per_step(meta: ModelMetadata) -> int:
    """Bytes of weights one streaming step at batch 1 reads, estimated from the metadata's configuration.

    Every LSTM layer's input and recurrent matrices (``4H × in`` and ``4H × H``) and biases
    (``8H``), and the output layer; the one embedding row a language model reads is left
    out. float32 files: 4 bytes a weight; fp16 files: 2; int8 files: 1 byte a matrix entry,
    biases stay float32 (scales and zero points are negligible).
    """
    matrix_bytes = {"int8": 1, "fp16": 2}.get(meta.variant, 4)
    bias_bytes = 2 if meta.variant == "fp16" else 4
    total = 0
    for inp, hidden, directions in _layers(meta):
        total += directions * (4 * hidden * (inp + hidden) * matrix_bytes + 8 * hidden * bias_bytes)
    head_in, head_out = _head(meta)
    return total + head_in * head_out * matrix_bytes + head_out * bias_bytes


def flops_per_position(meta: ModelMetadata) -> int:
    """Floating-point operations per token (language model) or row (classifier) of a whole-sequence forward.

    The LSTM's gate products ``2 · 4H · (in + H)`` per layer and direction, plus, for a
    language model, the output projection ``2 · H · V`` at every position (a classifier's
    head runs once per sequence and is left out). Element-wise gate work is not counted.
    """
    flops = sum(d * 2 * 4 * h * (i + h) for i, h, d in _layers(meta))
    if meta.kind == "language_model":
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
    for index, (inp, hidden, directions) in enumerate(_layers(meta)):
        shapes.append(GemmShape(f"layer {index} input", batch * length, inp, 4 * hidden, directions))
        shapes.append(GemmShape(f"layer {index} recurrent", batch, hidden, 4 * hidden, directions * length))
    if meta.kind == "language_model":
        head_in, head_out = _head(meta)
        shapes.append(GemmShape("output projection", batch * length, head_in, head_out))
    return shapes


def _best_and_median(fn: Callable[[], object], min_time: float) -> tuple[float, float]:
    """Fastest and median seconds per call of ``fn``, sampled for at least ``min_time`` seconds."""
    inner = calibrate(fn, min_time / 20)
    times: list[float] = []
    deadline = time.perf_counter() + min_time
    while len(times) < 5 or time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return min(times), statistics.median(times)


def _rates(work: float, seconds: tuple[float, float]) -> dict[str, float]:
    """``{"best", "median"}`` of ``work / seconds`` in billions per second."""
    return {"best": work / seconds[0] / 1e9, "median": work / seconds[1] / 1e9}


def gemm_gflops(m: int, k: int, n: int, *, min_time: float = 0.2) -> dict[str, float]:
    """numpy float32 ``(m, k) @ (k, n)``: ``{"best", "median"}`` GFLOP/s (numpy's BLAS, its own threads)."""
    rng = np.random.default_rng(0)
    a = rng.random((m, k), dtype=np.float32)
    b = rng.random((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    return _rates(2 * m * k * n, _best_and_median(lambda: np.matmul(a, b, out=out), min_time))


# A one-node ONNX model written by hand (protobuf wire format), so that onnxruntime's own
# kernels can be measured without the onnx package: field numbers are onnx.proto's.
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: int | str | bytes) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _float_tensor_type(dims: Sequence[int]) -> bytes:
    shape = b"".join(_field(1, _field(1, d)) for d in dims)  # TensorShapeProto.dim { dim_value }
    return _field(1, _field(1, 1) + _field(2, shape))  # TypeProto.tensor_type { elem_type FLOAT, shape }


def matmul_model(m: int, weights: np.ndarray) -> bytes:
    """Serialized ONNX model (opset 17): ``y (m, n) = MatMul(a (m, k), b)`` with ``weights`` ``(k, n)`` as ``b``."""
    k, n = weights.shape
    node = _field(1, "a") + _field(1, "b") + _field(2, "y") + _field(4, "MatMul")
    init = _field(1, k) + _field(1, n) + _field(2, 1) + _field(8, "b")
    init += _field(9, np.ascontiguousarray(weights, dtype="<f4").tobytes())
    graph = _field(1, node) + _field(2, "matmul") + _field(5, init)
    graph += _field(11, _field(1, "a") + _field(2, _float_tensor_type((m, k))))
    graph += _field(12, _field(1, "y") + _field(2, _float_tensor_type((m, n))))
    return _field(1, 8) + _field(7, graph) + _field(8, _field(1, "") + _field(2, 17))


def _ort_matmul(m: int, weights: np.ndarray, threads: int | None) -> Callable[[], object]:
    session = bare_session_from_bytes(matmul_model(m, weights), threads)
    feeds = {"a": np.random.default_rng(1).random((m, weights.shape[0]), dtype=np.float32)}
    return lambda: session.run(None, feeds)


def bare_session_from_bytes(model: bytes, threads: int | None) -> ort.InferenceSession:
    """A CPU session of a serialized model with ``threads`` intra-op threads (``None``: onnxruntime's default)."""
    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def ort_gemm_gflops(m: int, k: int, n: int, *, threads: int | None = None, min_time: float = 0.2) -> dict[str, float]:
    """onnxruntime float32 ``MatMul`` ``(m, k) @ (k, n)`` with ``(k, n)`` a weight, as the models run it: GFLOP/s."""
    weights = np.random.default_rng(0).random((k, n), dtype=np.float32)
    return _rates(2 * m * k * n, _best_and_median(_ort_matmul(m, weights, threads), min_time))


def read_bandwidth(nbytes: int, *, threads: int | None = None, min_time: float = 0.2) -> dict[str, Any]:
    """Read bandwidth over a working set of ``nbytes``: ``{"best", "median"}`` GB/s, ``"bytes"``, ``"kernel"``.

    Kernels that read every byte once and do little else: numpy's float32 dot product of the
    two halves of the buffer, numpy's matrix-vector product, and onnxruntime's ``MatMul``
    of one row by a weight matrix of ``nbytes`` (a streaming step's shape, with ``threads``
    intra-op threads; up to ``ORT_GEMV_MAX_BYTES``). ``"best"`` is the fastest sample of any
    kernel, ``"median"`` and ``"kernel"`` those of the kernel with the best median
    (``"kernels"`` holds each kernel's figures);
    a working set that fits the last-level cache measures cache bandwidth, a larger one
    main memory.
    """
    count = max(nbytes // 4 // 1024 * 1024, 1024)
    buf = np.random.default_rng(0).random(count, dtype=np.float32)
    half = count // 2
    x, y = buf[:half], buf[half : 2 * half]
    mat = buf.reshape(-1, 1024)  # (count / 1024, 1024)
    vec = np.ones(1024, np.float32)
    out = np.empty(mat.shape[0], np.float32)
    size = buf.nbytes
    kernels = {
        "numpy dot": _rates(size, _best_and_median(lambda: np.dot(x, y), min_time / 3)),
        "numpy gemv": _rates(size, _best_and_median(lambda: np.dot(mat, vec, out=out), min_time / 3)),
    }
    if size <= ORT_GEMV_MAX_BYTES:
        gemv = _ort_matmul(1, buf.reshape(1024, -1), threads)
        kernels["onnxruntime gemv"] = _rates(size, _best_and_median(gemv, min_time / 3))
    kernel = max(kernels, key=lambda name: kernels[name]["median"])
    best = max(k["best"] for k in kernels.values())
    return {"best": best, "median": kernels[kernel]["median"], "bytes": size, "kernel": kernel, "kernels": kernels}


def copy_bandwidth(nbytes: int, *, min_time: float = 0.2) -> dict[str, float]:
    """``np.copyto`` of ``nbytes``: GB/s counting the bytes read plus the bytes written."""
    src = np.ones(max(nbytes // 4, 1024), np.float32)
    dst = np.empty_like(src)
    return _rates(2 * src.nbytes, _best_and_median(lambda: np.copyto(dst, src), min_time))


def measure_limits(
    weight_bytes: int | None = None,
    shapes: Sequence[GemmShape] = (),
    *,
    threads: int | None = None,
    min_time: float = 0.2,
    large_bytes: int = LARGE_BYTES,
) -> dict[str, Any]:
    """float32 GEMM GFLOP/s (1024³ and ``shapes``), read bandwidth at ``weight_bytes`` and at ``large_bytes``.

    numpy runs with its own BLAS threads (set ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS``
    before numpy is imported to change them; :func:`measure_limits_in_subprocess` does),
    onnxruntime with ``threads`` intra-op threads. ``large_bytes`` should exceed the
    last-level cache, to measure main memory. ``gemm_peak_gflops`` is the best of the
    two libraries at 1024³. ``step_bound_s`` is ``weight_bytes`` over the best read
    bandwidth measured at that size: no implementation of a streaming step that reads its
    weights once can be faster (``step_bound_median_bw_s`` uses the median bandwidth).
    """
    gemm = {
        "numpy": gemm_gflops(1024, 1024, 1024, min_time=min_time),
        "onnxruntime": ort_gemm_gflops(1024, 1024, 1024, threads=threads, min_time=min_time),
    }
    seen: dict[tuple[int, int, int], str] = {}
    for s in shapes:  # one measurement per distinct shape, named after every product that has it
        key = (s.m, s.k, s.n)
        seen[key] = f"{seen[key]}, {s.label}" if key in seen else s.label
    out: dict[str, Any] = {
        "threads": threads,
        "gemm_gflops_1024": gemm,
        "gemm_peak_gflops": max(g["best"] for g in gemm.values()),
        "gemm_gflops_shapes": {
            f"{label} ({m}×{k} @ {k}×{n})": {
                "m": m,
                "k": k,
                "n": n,
                "numpy": gemm_gflops(m, k, n, min_time=min_time / 2),
                "onnxruntime": ort_gemm_gflops(m, k, n, threads=threads, min_time=min_time / 2),
            }
            for (m, k, n), label in seen.items()
        },
        "read_bandwidth_gbs_large": read_bandwidth(large_bytes, threads=threads, min_time=min_time),
        "copy_bandwidth_gbs_large": copy_bandwidth(large_bytes, min_time=min_time),
        "blas_threads_env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
    }
    if weight_bytes is not None:
        bw = read_bandwidth(weight_bytes, threads=threads, min_time=min_time)
        out["weight_bytes_per_step"] = weight_bytes
        out["read_bandwidth_gbs_weights"] = bw
        out["step_bound_s"] = weight_bytes / (bw["best"] * 1e9)
        out["step_bound_median_bw_s"] = weight_bytes / (bw["median"] * 1e9)
    return out


_LIMITS_CHILD = r"""
import json, sys
from rnnedge.runtime.bench import GemmShape, measure_limits
args = json.loads(sys.argv[1])
shapes = [GemmShape(**s) for s in args["shapes"]]
limits = measure_limits(
    args["weight_bytes"], shapes, threads=args["threads"], min_time=args["min_time"], large_bytes=args["large_bytes"]
)
print(json.dumps(limits))
"""


def measure_limits_in_subprocess(
    weight_bytes: int | None = None,
    shapes: Sequence[GemmShape] = (),
    *,
    threads: int | None = None,
    min_time: float = 0.2,
    large_bytes: int = LARGE_BYTES,
    python: str | None = None,
) -> dict[str, Any]:
    """:func:`measure_limits` in a fresh interpreter whose BLAS uses ``threads`` threads (``None``: its default)."""
    env = dict(os.environ)
    if threads is not None:
        for key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[key] = str(threads)
    args = json.dumps(
        {
            "weight_bytes": weight_bytes,
            "shapes": [asdict(s) for s in shapes],
            "threads": threads,
            "min_time": min_time,
            "large_bytes": large_bytes,
        }
    )
    proc = subprocess.run(
        [python or sys.executable, "-c", _LIMITS_CHILD, args], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"machine-limits child failed with status {proc.returncode}: {tail[0]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
