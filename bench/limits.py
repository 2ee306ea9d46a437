"""The machine's limits: float32 GEMM rate and memory read bandwidth, and from them the lower bound of a step.

``python -m rnnedge.bench.limits ARGS_JSON`` runs :func:`measure_limits` in the interpreter
:func:`measure_limits_in_subprocess` starts, whose BLAS thread count is set before numpy loads.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import onnxruntime as ort

from .child import run_module
from .cost import GemmShape
from .kernel_model import matmul_model
from .timing import calibrate

__all__ = [
    "LARGE_BYTES",
    "bare_session_from_bytes",
    "copy_bandwidth",
    "gemm_gflops",
    "measure_limits",
    "measure_limits_in_subprocess",
    "ort_gemm_gflops",
    "read_bandwidth",
]

LARGE_BYTES = 128 * 10**6  # a working set larger than the last-level cache of the machines we target
ORT_GEMV_MAX_BYTES = 64 * 10**6  # onnxruntime's copy of a larger weight would cost too much memory


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


def bare_session_from_bytes(model: bytes, threads: int | None) -> ort.InferenceSession:
    """A CPU session of a serialized model with ``threads`` intra-op threads (``None``: onnxruntime's default)."""
    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def _ort_matmul(m: int, weights: np.ndarray, threads: int | None) -> Callable[[], object]:
    session = bare_session_from_bytes(matmul_model(m, weights), threads)
    feeds = {"a": np.random.default_rng(1).random((m, weights.shape[0]), dtype=np.float32)}
    return lambda: session.run(None, feeds)


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


def measure_limits_in_subprocess(
    weight_bytes: int | None = None,
    shapes: Sequence[GemmShape] = (),
    *,
    threads: int | None = None,
    min_time: float = 0.2,
    large_bytes: int = LARGE_BYTES,
    python: str | None = None,
) -> dict[str, Any]:
    """:func:`measure_limits` in a fresh interpreter whose BLAS uses ``threads`` threads (``None``: its default).

    The interpreter runs ``python -m rnnedge.bench.limits``; if it fails, :class:`BenchError`.
    """
    env = dict(os.environ)
    if threads is not None:
        for key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[key] = str(threads)
    args = {
        "weight_bytes": weight_bytes,
        "shapes": [asdict(s) for s in shapes],
        "threads": threads,
        "min_time": min_time,
        "large_bytes": large_bytes,
    }
    result: dict[str, Any] = run_module(
        "rnnedge.bench.limits", [json.dumps(args)], what="machine limits", python=python, env=env
    )
    return result


def _main(argv: list[str]) -> None:
    args = json.loads(argv[0])
    shapes = [GemmShape(**s) for s in args["shapes"]]
    limits = measure_limits(
        args["weight_bytes"],
        shapes,
        threads=args["threads"],
        min_time=args["min_time"],
        large_bytes=args["large_bytes"],
    )
    print(json.dumps(limits))


if __name__ == "__main__":
    _main(sys.argv[1:])
