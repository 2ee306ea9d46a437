"""The ``.npz`` reader (data/npz.py): both layouts, label orders, and every malformed file refused with its
file and field, without unpickling and without allocating what a forged header claims.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnedge.data.npz import read_npz
from rnnedge.data.sequences import SequenceFileError
from rnnedge.errors import ConfigError, DataError

RNG = np.random.default_rng(0)
SEQS = [RNG.standard_normal((t, 3)).astype(np.float32) for t in (4, 2, 5)]


def _save(tmp_path: Path, name: str = "toy.npz", compressed: bool = False, **arrays: Any) -> Path:
    path = tmp_path / name
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def _padded() -> tuple[np.ndarray, np.ndarray]:
    x = np.full((3, 5, 3), np.nan, dtype=np.float32)  # (N, T, F); NaN padding must never be read
    for i, s in enumerate(SEQS):
        x[i, : len(s)] = s
    return x, np.array([len(s) for s in SEQS])


def _same(got: tuple[np.ndarray, ...], want: list[np.ndarray]) -> bool:
    return len(got) == len(want) and all(
        g.dtype == np.float32 and np.array_equal(g, w) for g, w in zip(got, want, strict=True)
    )


# --- what an .npz may hold ---------------------------------------------------------------------------------


def test_the_padded_layout_with_lengths_never_reads_the_padding(tmp_path: Path) -> None:
    x, lengths = _padded()
    ds = read_npz(_save(tmp_path, x=x, lengths=lengths.astype(np.int32), y=np.array([2, 0, 2])))
    assert _same(ds.sequences, SEQS) and ds.lengths.tolist() == [4, 2, 5]
    assert ds.class_names == ("0", "2") and ds.labels.tolist() == [1, 0, 1]  # distinct ints, sorted
    assert ds.name == "toy" and ds.num_channels == 3


def test_the_padded_layout_without_lengths_is_all_steps(tmp_path: Path) -> None:
    x = RNG.standard_normal((2, 6, 1))  # float64 in, float32 out
    ds = read_npz(_save(tmp_path, compressed=True, x=x, y=np.array(["walk", "run"])))
    assert ds.lengths.tolist() == [6, 6] and np.array_equal(ds.sequences[1], x[1].astype(np.float32))
    assert ds.class_names == ("run", "walk") and ds.labels.tolist() == [1, 0]  # strings sorted by code point


def test_the_flat_layout(tmp_path: Path) -> None:
    ds = read_npz(_save(tmp_path, x=np.concatenate(SEQS), lengths=[4, 2, 5], y=np.array([b"b", b"a", b"\xc3\xa9"])))
    assert _same(ds.sequences, SEQS)
    assert ds.class_names == ("a", "b", "é") and ds.labels.tolist() == [1, 0, 2]


def test_stored_class_names_fix_the_order(tmp_path: Path) -> None:
    x, lengths = _padded()
    ds = read_npz(_save(tmp_path, x=x, lengths=lengths, y=np.array(["b", "c", "b"]), class_names=["c", "b", "a"]))
    assert ds.class_names == ("c", "b", "a") and ds.labels.tolist() == [1, 0, 1]
    ds = read_npz(_save(tmp_path, x=x, lengths=lengths, y=np.array([2, 0, 2], np.uint8), class_names=["c", "b", "a"]))
    assert ds.class_names == ("c", "b", "a") and ds.labels.tolist() == [2, 0, 2]


def test_integer_values_and_a_test_file_mapped_onto_the_training_classes(tmp_path: Path) -> None:
    path = _save(tmp_path, x=np.arange(12, dtype=np.int16).reshape(2, 3, 2), y=np.array([7, 3]))
    ds = read_npz(path, class_names=("1", "3", "7"))
    assert ds.class_names == ("1", "3", "7") and ds.labels.tolist() == [2, 1]
    assert ds.sequences[0].dtype == np.float32 and ds.sequences[1].tolist() == [[6, 7], [8, 9], [10, 11]]


# --- every malformed file: a SequenceFileError naming the file and the field ------------------------------


def _object_array() -> np.ndarray:
    a = np.empty(2, dtype=object)
    a[0], a[1] = np.zeros((2, 1)), np.zeros((3, 1))
    return a


X3 = np.zeros((3, 4, 2), np.float32)
Y3 = np.array([0, 1, 0])
BAD: list[tuple[str, dict[str, Any], str | None, str]] = [
    # id, arrays, field named, what the message says
    ("object x", {"x": _object_array(), "y": [0, 1]}, "x", "holds Python objects (dtype object)"),
    ("object y", {"x": X3, "y": np.array([1, "a", None], dtype=object)}, "y", "rnnedge never unpickles"),
    ("structured x", {"x": np.zeros(3, dtype=[("a", "f4"), ("b", "f4")]), "y": Y3}, "x", "structured dtype"),
    ("unknown member", {"x": X3, "y": Y3, "X": X3}, None, "unexpected member 'X.npy'"),
    ("no y", {"x": X3, "labels": Y3}, None, "unexpected member 'labels.npy'"),
    ("y missing", {"x": X3}, None, "has no 'y' array; it holds ['x']"),
    ("x missing", {"y": Y3}, None, "has no 'x' array"),
    ("bool x", {"x": X3.astype(bool), "y": Y3}, "x", "must hold real numbers (a float or integer dtype), got bool"),
    ("complex x", {"x": X3.astype(np.complex64), "y": Y3}, "x", "got complex64 of shape (3, 4, 2)"),
    ("string x", {"x": np.full((3, 4, 2), "1.5"), "y": Y3}, "x", "must hold real numbers"),
    ("rank 1", {"x": np.zeros(5), "y": Y3}, "x", "must be padded (N, T, F) or flat (sum of lengths, F)"),
    ("rank 4", {"x": np.zeros((3, 4, 2, 1)), "y": Y3}, "x", "got shape (3, 4, 2, 1)"),
    ("zero steps", {"x": np.zeros((3, 0, 2)), "y": Y3}, "x", "every size >= 1, got shape (3, 0, 2)"),
    ("flat without lengths", {"x": np.zeros((7, 2)), "y": Y3}, "x", "of shape (7, 2) is the flat layout"),
    ("float lengths", {"x": X3, "y": Y3, "lengths": [1.0, 2.0, 3.0]}, "lengths", "must be integers of shape (N,)"),
    ("lengths count", {"x": X3, "y": Y3, "lengths": [1, 2]}, "lengths", "has 2 entries, x has 3 cases"),
    ("zero length", {"x": X3, "y": Y3, "lengths": [1, 0, 4]}, "lengths", "case 1 has length 0, expected 1 to 4"),
    ("length beyond T", {"x": X3, "y": Y3, "lengths": [1, 5, 4]}, "lengths", "case 1 has length 5, expected 1 to 4"),
    ("flat sum", {"x": np.zeros((6, 2)), "y": Y3, "lengths": [1, 2, 4]}, "lengths", "sum to 7, but the flat x has 6"),
    (
        "nan in a case",
        {"x": np.where(np.arange(24).reshape(3, 4, 2) == 13, np.nan, X3), "y": Y3},
        "x",
        "case 1, step 2, channel 1 (from 0) is nan",
    ),
    ("nan hint", {"x": np.full((3, 4, 2), np.inf), "y": Y3}, "x", "if the end of a case is padding, give 'lengths'"),
    ("beyond float32", {"x": np.full((3, 4, 2), 1e39), "y": Y3}, "x", "is 1e+39; valid steps must be finite"),
    ("y shape", {"x": X3, "y": [0, 1]}, "y", "must have shape (3,) (one label per case), got (2,)"),
    ("y 2-D", {"x": X3, "y": np.zeros((3, 1), int)}, "y", "got (3, 1)"),
    ("float y", {"x": X3, "y": [0.0, 1.0, 0.0]}, "y", "must be integer or string labels, got float64"),
    ("bool y", {"x": X3, "y": [True, False, True]}, "y", "got bool"),
    ("empty label", {"x": X3, "y": ["a", "", "b"]}, "y", "case 1 has an empty label"),
    ("bytes y", {"x": X3, "y": np.array([b"a", b"\xff", b"b"])}, "y", "holds bytes that are not UTF-8 text"),
    ("int class_names", {"x": X3, "y": Y3, "class_names": [0, 1]}, "class_names", "must be strings of shape (C,)"),
    ("duplicate names", {"x": X3, "y": Y3, "class_names": ["a", "a"]}, "class_names", "distinct, non-empty names"),
    (
        "index beyond names",
        {"x": X3, "y": [0, 2, 1], "class_names": ["a", "b"]},
        "y",
        "case 1 has label 2, expected an index in [0, 2)",
    ),
    ("negative index", {"x": X3, "y": [0, -1, 1], "class_names": ["a", "b"]}, "y", "case 1 has label -1"),
    (
        "name not listed",
        {"x": X3, "y": ["a", "c", "b"], "class_names": ["a", "b"]},
        "y",
        "case 1 has label 'c', not in",
    ),
]


@pytest.mark.parametrize(("arrays", "field", "what"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_npz_files_name_the_file_and_field(
    tmp_path: Path, arrays: dict[str, Any], field: str | None, what: str
) -> None:
    path = _save(tmp_path, **arrays)
    where = f"{path}: field '{field}': " if field else f"{path}: "
    with pytest.raises(SequenceFileError, match=f"^{re.escape(where)}.*{re.escape(what)}") as info:
        read_npz(path)
    assert isinstance(info.value, DataError) and info.value.field == field


def test_files_that_are_not_npz(tmp_path: Path) -> None:
    text = tmp_path / "text.npz"
    text.write_text("x,y\n1,2\n")
    npy = tmp_path / "plain.npz"
    with open(npy, "wb") as f:
        np.save(f, X3)
    whole = _save(tmp_path, "whole.npz", x=RNG.standard_normal((50, 20, 3)), y=np.zeros(50, int))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    for path in (text, npy, cut):
        with pytest.raises(SequenceFileError, match=f"^{re.escape(str(path))}: is not an .npz file"):
            read_npz(path)
    for path in (tmp_path / "missing.npz", tmp_path):
        with pytest.raises(SequenceFileError, match=f"^{re.escape(str(path))}: cannot read"):
            read_npz(path)


def _npz_with_member(tmp_path: Path, header: dict[str, Any], data: bytes) -> Path:
    """An .npz whose ``x`` has a hand-written .npy header (a forged shape, or data cut short)."""
    raw = io.BytesIO()
    np.lib.format.write_array_header_1_0(raw, header)
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", raw.getvalue() + data)
        y = io.BytesIO()
        np.save(y, np.array([0]))
        z.writestr("y.npy", y.getvalue())
    return path


def test_a_forged_shape_is_refused_before_it_is_allocated(tmp_path: Path) -> None:
    header = {"descr": "<f4", "fortran_order": False, "shape": (2**40, 2**40, 3)}
    path = _npz_with_member(tmp_path, header, b"\0" * 64)
    with pytest.raises(SequenceFileError, match=re.escape(f"{path}: field 'x': has shape (1099511627776,")):
        read_npz(path)


def test_data_shorter_than_its_header_says(tmp_path: Path) -> None:
    header = {"descr": "<f4", "fortran_order": False, "shape": (1, 4, 2)}
    path = _npz_with_member(tmp_path, header, b"\0" * 20)
    with pytest.raises(SequenceFileError, match=re.escape("field 'x': holds 20 bytes of data, its header says 32")):
        read_npz(path)


def test_an_array_over_max_bytes(tmp_path: Path) -> None:
    path = _save(tmp_path, x=np.zeros((10, 10, 10), np.float32), y=np.zeros(10, int))
    with pytest.raises(
        SequenceFileError, match=re.escape("field 'x': has shape (10, 10, 10) of float32 (4000 bytes), more")
    ):
        read_npz(path, max_bytes=3999)
    assert len(read_npz(path, max_bytes=4000)) == 10
    with pytest.raises(ConfigError, match="max_bytes must be an int >= 1"):
        read_npz(path, max_bytes=0)


def test_a_big_endian_or_fortran_ordered_x_reads_the_same(tmp_path: Path) -> None:
    x, lengths = _padded()
    for variant in (x.astype(">f4"), np.asfortranarray(x), x.astype(">f8")):
        ds = read_npz(_save(tmp_path, x=variant, lengths=lengths, y=Y3))
        assert _same(ds.sequences, SEQS)


def test_a_label_outside_the_given_class_names(tmp_path: Path) -> None:
    path = _save(tmp_path, x=X3, y=np.array(["a", "b", "z"]))
    with pytest.raises(SequenceFileError, match=re.escape(f"{path}: field 'y': case 2 has label 'z', not among")):
        read_npz(path, class_names=("a", "b"))
