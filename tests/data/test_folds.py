"""Cross-validation folds: stratified, disjoint, covering, deterministic; repeated hold-out for tiny classes."""

from __future__ import annotations

import numpy as np
import pytest
from sequence_models import gunpoint, vowels

from rnnedge.data.folds import cv_folds
from rnnedge.data.sequences import read_sequences
from rnnedge.errors import ConfigError


@pytest.mark.parametrize("problem", [vowels, gunpoint])
def test_stratified_k_fold_validates_every_case_once_in_each_class_share(problem: object) -> None:
    labels = read_sequences(problem("train")).labels  # type: ignore[operator]
    folds = cv_folds(labels, 5, seed=3)
    assert folds.method == "stratified k-fold" and len(folds.splits) == 5
    seen = np.concatenate([valid for _, valid in folds.splits])
    assert sorted(seen.tolist()) == list(range(len(labels)))  # each case validated exactly once
    counts = np.bincount(labels)
    for train, valid in folds.splits:
        assert np.intersect1d(train, valid).size == 0
        assert np.union1d(train, valid).tolist() == list(range(len(labels)))
        assert (np.diff(train) > 0).all() and (np.diff(valid) > 0).all()
        per_class = np.bincount(labels[valid], minlength=len(counts))
        assert (np.abs(per_class - counts / 5) < 1).all()  # each class split as evenly as it can be


def test_folds_are_a_function_of_the_seed() -> None:
    labels = read_sequences(gunpoint("train")).labels
    same = [cv_folds(labels, 5, seed=1) for _ in range(2)]
    other = cv_folds(labels, 5, seed=2)
    for (a_train, a_valid), (b_train, b_valid) in zip(same[0].splits, same[1].splits, strict=True):
        assert a_train.tolist() == b_train.tolist() and a_valid.tolist() == b_valid.tolist()
    assert any(a.tolist() != b.tolist() for (_, a), (_, b) in zip(same[0].splits, other.splits, strict=True))


def test_classes_smaller_than_k_get_repeated_stratified_hold_out_splits() -> None:
    labels = np.array([0] * 12 + [1] * 3 + [2] * 1, dtype=np.int64)
    folds = cv_folds(labels, 5, seed=0)
    assert folds.method == "repeated stratified hold-out" and len(folds.splits) == 5
    for train, valid in folds.splits:
        assert np.intersect1d(train, valid).size == 0 and len(train) + len(valid) == len(labels)
        assert set(labels[train].tolist()) == {0, 1, 2}  # every class keeps a training case
        assert 15 not in valid  # the one-case class is never held out
        assert np.bincount(labels[valid], minlength=3).tolist()[:2] == [2, 1]  # about a fifth of each class
    assert len({tuple(v.tolist()) for _, v in folds.splits}) > 1  # repeated, not the same split five times


def test_a_file_with_one_case_per_class_cannot_be_cross_validated() -> None:
    with pytest.raises(ConfigError, match="a class with at least 2 cases"):
        cv_folds(np.arange(4, dtype=np.int64), 5)
    with pytest.raises(ConfigError, match="at least 2 folds"):
        cv_folds(np.zeros(10, dtype=np.int64), 1)
