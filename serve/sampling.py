"""What the server computes from a step's probabilities: top-k for many rows at once, and sampling."""

from __future__ import annotations

import numpy as np

__all__ = ["sample", "top_k_rows"]


def top_k_rows(probs: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` likeliest ids of each row of ``probs`` ``(N, V)`` -> ``(N, k)``, likeliest first, ties by id.

    The same order as ``LanguageModel.top_k`` (a stable sort of ``-probs``) at the cost of one
    partition over all rows instead of a full sort per row: the ids whose probability reaches the
    row's k-th largest are the candidates, taken in id order and sorted stably by probability. A row
    with ties at the k-th place (more than ``k`` candidates) is sorted on its own.
    """
    n, v = probs.shape
    k = min(k, v)
    if k == v:
        return np.argsort(-probs, axis=1, kind="stable")
    kth = -np.partition(-probs, k - 1, axis=1)[:, k - 1 : k]  # (N, 1): each row's k-th largest
    mask = probs >= kth  # (N, V)
    counts = mask.sum(axis=1)
    if (counts == k).all():  # no ties at the k-th place: every row has exactly k candidates
        ids = np.nonzero(mask)[1].reshape(n, k)  # (N, k), ascending ids in each row
    else:
        ids = np.empty((n, k), np.int64)
        for i in range(n):
            ids[i] = np.flatnonzero(mask[i])[np.argsort(-probs[i, mask[i]], kind="stable")[:k]]
        return ids
    order = np.argsort(-np.take_along_axis(probs, ids, axis=1), axis=1, kind="stable")
    return np.take_along_axis(ids, order, axis=1)


def sample(probs: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator) -> int:
    """One id drawn from ``probs`` ``(V,)`` sharpened (``temperature`` < 1) or flattened, among the ``top_k`` likeliest.

    Works from the probabilities a stream returns (log-probabilities / temperature), in float64;
    a given ``rng`` state always draws the same id.
    """
    with np.errstate(divide="ignore"):
        scores = np.log(probs.astype(np.float64)) / temperature  # (V,); -inf where a probability underflowed
    if top_k is not None and top_k < scores.size:
        cut = np.partition(scores, -top_k)[-top_k]
        scores = np.where(scores >= cut, scores, -np.inf)
    p = np.exp(scores - scores.max())
    cdf = np.cumsum(p)
    choice = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    return min(choice, scores.size - 1)
