"""Small checks every kind's input and state checks share: finiteness, and how a value is named in messages."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .metadata import TensorSpec

__all__ = ["SMALL", "all_finite", "describe", "expected_shape"]

SMALL = 64  # arrays up to this size are checked in plain Python (see all_finite)


def all_finite(a: np.ndarray) -> bool:
    """No NaN or infinity in a float array; small ones (a streaming step) checked in plain Python.

    Right after an onnxruntime call numpy's machinery is cold in the caches: two numpy calls
    on a 28-value row cost more than the Python loop over its values.
    """
    if a.size <= SMALL:
        return all(map(math.isfinite, a.ravel().tolist()))
    return bool(np.isfinite(a).all())


def describe(a: Any) -> str:
    """``float64 of shape (1, 28)``: how an error message names what came in."""
    if isinstance(a, np.ndarray):
        return f"{a.dtype} of shape {a.shape}"
    return f"{type(a).__name__}"


def expected_shape(spec: TensorSpec, batch: int | None = None) -> str:
    """A spec's shape for error messages, e.g. ``(N, T, 28)``."""
    dims = [str(batch) if d == "batch" and batch is not None else ("N" if d == "batch" else str(d)) for d in spec.shape]
    dims = ["T" if d == "sequence" else d for d in dims]
    return "(" + ", ".join(dims) + ")"
