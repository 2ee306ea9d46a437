"""The one sampler of rnnedge: top-k, a portable random generator, and a draw from next-token probabilities.

Specified in docs/metadata.md (section 5) and written the same way in the JavaScript runtime
(``js/src/sampling.js``); ``rnnedge serve`` calls these functions. Everything works from the
probabilities a language model's stream returns (the graph's ``next_probs``, float32), so the
runtimes and the server draw from the same numbers: with the same seed, prompt, temperature and
top-k they give the same tokens. Every step of a draw is exact IEEE arithmetic (float64 division,
a running sum in id order, a uniform made of 53 random bits) except ``x ** (1/temperature)`` at a
temperature other than 1, which each language's ``pow`` rounds within an ulp.
"""

from __future__ import annotations

import math
import secrets

import numpy as np

from .errors import InputError

__all__ = ["Pcg32", "check_sampling", "sample", "top_k_ids"]

_MASK64 = (1 << 64) - 1
_MULTIPLIER = 6364136223846793005
_SEQUENCE = 54  # the PCG reference's stream constant: pcg32_srandom_r(seed, 54)
_ARGMAX_UP_TO = 16  # k at most this: k passes of argmax beat one argpartition (64 x 10,000: 0.9 vs 2.9 ms at k=5)


class Pcg32:
    """PCG32 (XSH-RR, 64-bit state), seeded as the PCG reference's ``pcg32_srandom_r(seed, 54)``.

    Small, portable (the JavaScript runtime holds its state in a BigInt) and checked against the
    reference's published outputs. ``seed`` is an int in ``[0, 2**64)``; None draws one from the OS.
    """

    def __init__(self, seed: int | None = None) -> None:
        if seed is None:
            seed = secrets.randbits(64)
        self.increment = ((_SEQUENCE << 1) | 1) & _MASK64
        self.state = 0
        self.next_uint32()
        self.state = (self.state + seed) & _MASK64
        self.next_uint32()

    def next_uint32(self) -> int:
        """The next 32 random bits, as an int in ``[0, 2**32)``."""
        old = self.state
        self.state = (old * _MULTIPLIER + self.increment) & _MASK64
        xorshifted = (((old >> 18) ^ old) >> 27) & 0xFFFFFFFF
        rotation = old >> 59
        return ((xorshifted >> rotation) | (xorshifted << ((-rotation) & 31))) & 0xFFFFFFFF

    def uniform(self) -> float:
        """A float in ``[0, 1)`` from 53 random bits: 27 of one output and 26 of the next, exact in float64."""
        high = self.next_uint32() >> 5
        low = self.next_uint32() >> 6
        return (high * 67108864 + low) / 9007199254740992


def top_k_ids(probs: np.ndarray, k: int, *, in_place: bool = False) -> np.ndarray:
    """The ``k`` likeliest ids of ``probs`` ``(V,)`` -> ``(k,)``, or of each row of ``(N, V)`` -> ``(N, k)``.

    Likeliest first; equal probabilities in order of id (a stable sort of ``-probs``). For small
    ``k``, ``k`` passes of ``argmax`` (which returns the first of equal values), each masking its
    pick; ``in_place=True`` masks ``probs`` itself instead of a copy and puts the picks' values back
    before returning (``probs`` is unchanged afterwards, but not while it runs). For larger ``k``, one
    ``argpartition``, and a row whose k-th value ties with an id outside the pick is sorted whole.
    """
    if probs.ndim == 1:
        row: np.ndarray = top_k_ids(probs[None], k, in_place=in_place)[0]
        return row
    n, v = probs.shape
    k = min(k, v)
    if k <= _ARGMAX_UP_TO:
        work = probs if in_place else probs.copy()
        rows = np.arange(n)
        out = np.empty((n, k), np.int64)
        values = np.empty((n, k), probs.dtype)
        for j in range(k):
            out[:, j] = pick = work.argmax(axis=1)
            values[:, j] = work[rows, pick]
            work[rows, pick] = -np.inf
        if in_place:  # back in reverse: a row that picked a masked id again gets the value of its first pick
            for j in range(k - 1, -1, -1):
                work[rows, out[:, j]] = values[:, j]
        for i in np.flatnonzero(np.isneginf(values[:, -1])):  # fewer than k values above -inf: masks picked again
            out[i] = np.argsort(-probs[i], kind="stable")[:k]
        return out
    ids = np.argpartition(-probs, k - 1, axis=1)[:, :k]  # (N, k) in no order
    values = np.take_along_axis(probs, ids, axis=1)  # (N, k)
    ids = np.take_along_axis(ids, np.lexsort((ids, -values), axis=1), axis=1)  # by probability, then id
    tied = np.count_nonzero(probs >= values.min(axis=1, keepdims=True), axis=1) > k
    for i in np.flatnonzero(tied):
        ids[i] = np.argsort(-probs[i], kind="stable")[:k]
    return ids


def check_sampling(temperature: object, top_k: object, vocab_size: int) -> tuple[float, int | None]:
    """``temperature`` (a finite number > 0) and ``top_k`` (None or an int in ``[1, vocab_size]``), checked."""
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not (math.isfinite(temperature) and temperature > 0)
    ):
        raise InputError(f"temperature must be a finite number > 0, got {temperature!r}")
    if top_k is not None and (
        isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= vocab_size
    ):
        raise InputError(f"top_k must be None or an int in [1, {vocab_size}], got {top_k!r}")
    return float(temperature), None if top_k is None else int(top_k)


def sample(probs: np.ndarray, temperature: float, top_k: int | None, rng: Pcg32) -> int:
    """One id drawn from next-token probabilities ``probs`` ``(V,)`` (docs/metadata.md, section 5).

    Weights ``w[i] = (p[i] / max(p)) ** (1 / temperature)`` in float64 (no power at temperature 1);
    with ``top_k`` only the ids :func:`top_k_ids` picks keep theirs (the rest weigh 0); then
    ``target = rng.uniform() * total`` and the draw is the first id whose running sum of weights
    (in id order) exceeds ``target`` (the last id of positive weight if rounding leaves none).
    """
    p = np.asarray(probs, dtype=np.float64)  # (V,)
    peak = float(p.max()) if p.size else math.nan
    if p.ndim != 1 or not (math.isfinite(peak) and peak > 0) or float(p.min()) < 0:
        raise InputError(f"probabilities must be finite, >= 0 and not all 0 (V,), got shape {p.shape} max {peak}")
    # Ids outside top-k weigh 0, which adds nothing to a running sum: only the kept ids, in id order, are summed.
    kept = np.sort(top_k_ids(p, top_k)) if top_k is not None and top_k < p.size else None  # (k,)
    weights = (p if kept is None else p[kept]) / peak
    if temperature != 1.0:
        weights = weights ** (1.0 / temperature)
    running = np.cumsum(weights)  # sequential, in id order
    target = rng.uniform() * float(running[-1])
    j = int(np.searchsorted(running, target, side="right"))  # the first whose running sum > target
    if j >= weights.size:
        j = int(np.flatnonzero(weights > 0)[-1])
    return j if kept is None else int(kept[j])
