"""data/sequences.py: one entry for both formats, the dataset's invariants, normalisation statistics that padding
cannot touch, and the deterministic stratified validation split.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnedge.data.sequences import (
    ChannelStats,
    SequenceDataset,
    SequenceFileError,
    channel_stats,
    read_sequences,
    split_validation,
)
from rnnedge.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(1)


def _toy(lengths: tuple[int, ...] = (3, 7, 1, 5), labels: tuple[int, ...] = (0, 1, 1, 0)) -> SequenceDataset:
    seqs = tuple((RNG.standard_normal((t, 2)) * [1, 10] + [5, -3]).astype(np.float32) for t in lengths)
    return SequenceDataset(seqs, np.array(labels, dtype=np.int64), ("no", "yes"), "toy")


@pytest.fixture(scope="module")
def vowels() -> SequenceDataset:
    for root in (os.environ.get("RNNEDGE_DATA"), REPO.parent / "shared" / "data"):
        path = Path(root or "/nonexistent") / "uea" / "JapaneseVowels" / "JapaneseVowels_TRAIN.ts"
        if path.is_file():
            return read_sequences(path)
    pytest.skip("JapaneseVowels is not here: set RNNEDGE_DATA to a folder holding uea/JapaneseVowels")


# --- read_sequences -----------------------------------------------------------------------------------------


def test_read_sequences_chooses_the_reader_by_suffix(tmp_path: Path) -> None:
    (tmp_path / "a.TS").write_text("@classLabel true p q\n@data\n1,2:q\n3:p\n")
    np.savez(tmp_path / "a.npz", x=np.ones((2, 2, 1)), y=np.array(["q", "p"]))
    from_ts = read_sequences(tmp_path / "a.TS")
    from_npz = read_sequences(tmp_path / "a.npz", class_names=from_ts.class_names)
    assert from_ts.class_names == from_npz.class_names == ("p", "q")
    assert from_ts.labels.tolist() == from_npz.labels.tolist() == [1, 0]
    with pytest.raises(SequenceFileError, match=":1:1: line is longer than 2 bytes"):
        read_sequences(tmp_path / "a.TS", max_line_bytes=2)
    with pytest.raises(SequenceFileError, match="more than max_bytes=8"):
        read_sequences(tmp_path / "a.npz", max_bytes=8)


def test_read_sequences_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("1,2\n")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'a.csv'}: cannot read sequences from a '.csv' file")):
        read_sequences(tmp_path / "a.csv")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'b.ts'}: no such file")):
        read_sequences(tmp_path / "b.ts")
    (tmp_path / "c.npz").mkdir()
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'c.npz'}: is not a file")):
        read_sequences(tmp_path / "c.npz")


def test_the_readers_import_no_torch() -> None:
    code = "import sys, rnnedge.data.sequences, rnnedge.data.ts, rnnedge.data.npz; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- the dataset --------------------------------------------------------------------------------------------


def test_padded_lengths_and_subset() -> None:
    ds = _toy()
    x, lengths = ds.padded(pad_value=-99.0)
    assert x.shape == (4, 7, 2) and x.dtype == np.float32 and lengths.tolist() == [3, 7, 1, 5]
    for i, s in enumerate(ds.sequences):
        assert np.array_equal(x[i, : len(s)], s) and (x[i, len(s) :] == -99.0).all()
    part = ds.subset([3, 0])
    assert part.lengths.tolist() == [5, 3] and part.labels.tolist() == [0, 0] and part.class_names == ds.class_names
    assert ds.num_channels == 2 and ds.num_classes == 2 and len(ds) == 4 and ds.class_counts().tolist() == [2, 2]


def test_the_dataset_is_frozen_and_read_only() -> None:
    ds = _toy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "other"  # type: ignore[misc,unused-ignore]
    with pytest.raises(ValueError, match="read-only"):
        ds.sequences[0][0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        ds.labels[0] = 1


@pytest.mark.parametrize(
    ("seqs", "labels", "names", "what"),
    [
        ((np.zeros((2, 1), np.float32),), np.array([0, 1]), ("a", "b"), r"labels must be int64 of shape \(1,\)"),
        ((np.zeros((2, 1), np.float32),), np.array([0], np.int32), ("a",), "labels must be int64"),
        ((), np.zeros(0, np.int64), ("a",), "holds no sequences"),
        ((np.zeros((2, 1), np.float32),), np.array([1]), ("a",), r"labels must be in \[0, 1\)"),
        ((np.zeros((2, 1), np.float32),), np.array([0]), ("a", "a"), "distinct and not empty"),
        ((np.zeros((2, 1)),), np.array([0]), ("a",), r"sequence 0 must be float32 or uint8 of shape \(T, 1\)"),
        ((np.zeros((2, 1), np.float32), np.zeros((2, 2), np.float32)), np.array([0, 0]), ("a",), "sequence 1"),
        ((np.zeros((0, 1), np.float32),), np.array([0]), ("a",), "T >= 1"),
        ((np.full((2, 1), np.nan, np.float32),), np.array([0]), ("a",), "sequence 0 contains NaN"),
    ],
)
def test_a_dataset_that_breaks_its_invariants_is_refused(
    seqs: tuple[np.ndarray, ...], labels: np.ndarray, names: tuple[str, ...], what: str
) -> None:
    with pytest.raises(DataError, match=what):
        SequenceDataset(seqs, labels, names, "bad")


# --- normalisation statistics -------------------------------------------------------------------------------


def test_channel_stats_count_valid_steps_only() -> None:
    ds = _toy()
    stats = channel_stats(ds)
    steps = np.concatenate(ds.sequences).astype(np.float64)  # (sum T_i, F): the valid steps, no padding
    assert np.allclose(stats.mean, steps.mean(axis=0), rtol=1e-6) and np.allclose(stats.std, steps.std(axis=0))
    x, lengths = ds.padded(pad_value=1e3)
    mask = np.arange(x.shape[1])[None, :] < lengths[:, None]  # (N, T)
    assert np.allclose(stats.mean, x[mask].mean(axis=0), rtol=1e-6)
    assert not np.allclose(stats.mean, x.reshape(-1, 2).mean(axis=0))  # the padding would have moved it
    normal = np.concatenate(ds.normalized(stats).sequences)
    assert np.allclose(normal.mean(axis=0), 0, atol=1e-5) and np.allclose(normal.std(axis=0), 1, atol=1e-5)


def test_a_constant_channel_gets_std_one() -> None:
    ds = SequenceDataset((np.array([[4.0, 1], [4, 2]], np.float32),), np.array([0]), ("a",), "const")
    stats = channel_stats(ds)
    assert stats.mean.tolist() == [4.0, 1.5] and stats.std.tolist() == [1.0, 0.5]
    assert ds.normalized(stats).sequences[0].tolist() == [[0.0, -1.0], [0.0, 1.0]]


def test_stats_travel_as_plain_numbers() -> None:
    stats = channel_stats(_toy())
    back = ChannelStats.from_dict(stats.to_dict())
    assert np.array_equal(back.mean, stats.mean) and np.array_equal(back.std, stats.std)
    assert all(type(v) is float for v in stats.to_dict()["mean"])
    for bad in ({"mean": [0.0], "std": [0.0]}, {"mean": [0.0, 1.0], "std": [1.0]}, {"mean": [math.nan], "std": [1.0]}):
        with pytest.raises(DataError):
            ChannelStats.from_dict(bad)
    with pytest.raises(DataError, match=r"expected values with 2 channels, got shape \(3, 5\)"):
        stats.apply(np.zeros((3, 5), np.float32))


# --- the validation split -----------------------------------------------------------------------------------


def test_the_split_is_stratified_deterministic_and_complete(vowels: SequenceDataset) -> None:
    train, valid = split_validation(vowels, 0.2, seed=0)
    assert valid.class_counts().tolist() == [6] * 9 and train.class_counts().tolist() == [24] * 9
    _, again_valid = split_validation(vowels, 0.2, seed=0)
    assert all(a is b for a, b in zip(valid.sequences, again_valid.sequences, strict=True))
    _, other = split_validation(vowels, 0.2, seed=1)
    assert [id(s) for s in other.sequences] != [id(s) for s in valid.sequences]
    ids = [id(s) for s in vowels.sequences]
    train_at = [ids.index(id(s)) for s in train.sequences]
    valid_at = [ids.index(id(s)) for s in valid.sequences]
    assert train_at == sorted(train_at) and valid_at == sorted(valid_at)  # the file's order kept
    assert sorted(train_at + valid_at) == list(range(270))


def test_every_class_keeps_a_training_case() -> None:
    ds = _toy(lengths=(2, 3, 4, 5, 6), labels=(0, 0, 0, 0, 1))
    train, valid = split_validation(ds, 0.5, seed=3)
    assert train.class_counts().tolist() == [2, 1] and valid.class_counts().tolist() == [2, 0]


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, math.nan, True, "0.2", None])
def test_a_fraction_out_of_range_is_a_config_error(fraction: object) -> None:
    with pytest.raises(ConfigError, match="valid_fraction must be a number in"):
        split_validation(_toy(), fraction)  # type: ignore[arg-type,unused-ignore]


def test_a_split_that_would_leave_no_validation_case() -> None:
    with pytest.raises(ConfigError, match=r"valid_fraction=0.1 of 4 cases \(\[2, 2\] per class\) leaves no validation"):
        split_validation(_toy(), 0.1)
    with pytest.raises(ConfigError, match="seed must be an int >= 0"):
        split_validation(_toy(), 0.5, seed=-1)
