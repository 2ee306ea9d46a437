"""Cross-validation folds of a labelled training file, for choosing settings without the test file.

:func:`cv_folds` gives stratified k-fold splits when every class has at least ``k`` cases, and
otherwise (a very small or very unbalanced file) ``k`` repeated stratified hold-out splits of about
``1/k`` of each class. Numpy only and deterministic given the seed, so a resumed search compares its
candidates on the very folds its first session used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnedge.errors import ConfigError

__all__ = ["Folds", "cv_folds"]


@dataclass(frozen=True)
class Folds:
    """``splits``: ``(train, valid)`` int64 index arrays into the file's cases, each sorted, disjoint.

    ``method`` is ``"stratified k-fold"`` (every case validated exactly once) or ``"repeated stratified
    hold-out"`` (each split holds out about ``1/k`` of each class; a class with one case is never held out).
    """

    splits: tuple[tuple[np.ndarray, np.ndarray], ...]
    method: str

    def describe(self) -> str:
        return f"{len(self.splits)} folds ({self.method})"


def cv_folds(labels: np.ndarray, k: int = 5, *, seed: int = 0) -> Folds:
    """Split cases with int64 ``labels`` ``(N,)`` into ``k`` train/validation pairs, stratified by class.

    Every training part keeps at least one case of each class; a file with fewer than two cases of
    every class cannot be validated at all and is refused.
    """
    labels = np.asarray(labels)
    if k < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got {k}")
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    counts = [len(m) for m in members]
    if max(counts) < 2:
        raise ConfigError(
            f"cross-validation needs a class with at least 2 cases; the training file has {len(labels)} cases, "
            "one per class"
        )
    rng = np.random.default_rng(seed)
    every = np.arange(len(labels))
    splits: list[tuple[np.ndarray, np.ndarray]] = []
    if min(counts) >= k:
        # Each class shuffled once and dealt round-robin into the k folds: fold sizes differ by at most one per class.
        fold_of = np.empty(len(labels), dtype=np.int64)
        for m in members:
            fold_of[rng.permutation(m)] = np.arange(len(m)) % k
        for f in range(k):
            valid = np.flatnonzero(fold_of == f)
            splits.append((np.setdiff1d(every, valid), valid))
        return Folds(tuple(splits), "stratified k-fold")
    for _ in range(k):
        held = [rng.permutation(m)[: min(max(1, round(len(m) / k)), len(m) - 1)] for m in members]
        valid = np.sort(np.concatenate(held))
        splits.append((np.setdiff1d(every, valid), valid))
    return Folds(tuple(splits), "repeated stratified hold-out")
