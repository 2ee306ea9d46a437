"""What each feed of a batched step gets back, from the step's stacked result: one rule per result shape.

A kind's :class:`~rnnedge.serve.kinds.ServeKind` names its rule: :func:`per_feed` for a result of
one distribution per feed (``(N, V)``: classifiers, language models), :func:`per_frame` for one
distribution per step fed (``(N, T, C)``: taggers). The batcher hands every step's result to the
rule and each feed its :class:`FeedOutcome`, whatever the kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .sampling import top_k_rows

__all__ = ["FeedOutcome", "per_feed", "per_frame", "top_k_pairs"]


@dataclass(frozen=True)
class FeedOutcome:
    """What one feed gave, as the ``result`` reply carries it.

    ``probs``: its probabilities, ``(V,)`` or one row per step fed ``(T, C)``; ``top_k``: its
    ``[[label, probability], ...]`` pairs, likeliest first (one such list per step for ``(T, C)``);
    ``last``: the latest distribution ``(V,)``, which ``top_k`` and ``generate`` continue from.
    ``probs`` and ``last`` are views of the step's result (never written again), not copies: a view
    keeps the whole result alive while its session idles, as the batch's streams themselves do (each
    holds its row of the result until it steps again), so a copy would only cost time.
    """

    probs: np.ndarray
    top_k: list[Any]
    last: np.ndarray


def top_k_pairs(probs: np.ndarray, labels: tuple[str, ...], k: int) -> list[list[Any]]:
    """``[[label, probability], ...]`` of the ``k`` likeliest entries of ``probs`` ``(V,)``."""
    return [[labels[i], float(probs[i])] for i in top_k_rows(probs[None], k)[0]]


def _pairs(
    rows: Sequence[np.ndarray] | np.ndarray, results: np.ndarray, ks: Sequence[int], labels: tuple[str, ...]
) -> list[list[Any]]:
    """Each row's top-``ks[i]`` pairs; the top-k borrows ``results`` (``rows``' values) in place and restores it."""
    top = top_k_rows(results, max(ks), in_place=True).tolist()  # (M, k)
    return [[[labels[i], float(row[i])] for i in ids[:k]] for row, ids, k in zip(rows, top, ks, strict=True)]


def per_feed(results: np.ndarray, ks: Sequence[int], labels: tuple[str, ...]) -> list[FeedOutcome]:
    """``results`` ``(N, V)``: feed ``i`` gets row ``i`` and its top-``ks[i]`` pairs."""
    rows = list(results)  # N views (V,); the top-k works in ``results`` itself and puts it back
    return [FeedOutcome(row, pairs, row) for row, pairs in zip(rows, _pairs(rows, results, ks, labels), strict=True)]


def per_frame(results: np.ndarray, ks: Sequence[int], labels: tuple[str, ...]) -> list[FeedOutcome]:
    """``results`` ``(N, T, C)``: feed ``i`` gets its ``T`` rows, the top-``ks[i]`` pairs of each, and its last row."""
    n, steps, classes = results.shape
    flat = np.ascontiguousarray(results).reshape(n * steps, classes)  # the top-k works in it, restored after
    pairs = _pairs(flat, flat, [k for k in ks for _ in range(steps)], labels)
    return [FeedOutcome(results[i], pairs[i * steps : (i + 1) * steps], results[i, -1]) for i in range(n)]
