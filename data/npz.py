"""Labelled sequences from an ``.npz`` file (``np.savez``), read without ever unpickling.

``np.load(allow_pickle=False)`` cannot read an object array, so a list of ``(T_i, F)`` arrays of
different lengths cannot be stored as one; the file takes one of two plain layouts instead:

- **padded**: ``x`` of shape ``(N, T, F)``, with an optional ``lengths`` ``(N,)`` giving each case's
  valid steps (``1 <= lengths[i] <= T``; without it every case has all ``T`` steps). Steps at or
  beyond ``lengths[i]`` are never read — they may hold anything, NaN included.
- **flat**: ``x`` of shape ``(sum(lengths), F)``, the cases one after another, with ``lengths``
  ``(N,)`` required. ``np.savez(f, x=np.concatenate(seqs), lengths=[len(s) for s in seqs], y=y)``.

Fields (any other name is refused, so ``X`` or ``labels`` cannot be silently ignored):

- ``x``: real numbers (any float or integer dtype), read as float32; every valid value finite and
  within float32's range.
- ``y`` ``(N,)``: integer labels or strings (``str`` or UTF-8 ``bytes``).
- ``lengths`` ``(N,)``: integers, optional for the padded layout.
- ``class_names`` ``(C,)``: strings, optional; fixes the classes and their order. With integer ``y``
  each label is an index into it; with string ``y`` each label must be one of its names.

Without ``class_names`` the classes are the distinct labels sorted — numerically for integer ``y``
(named ``str(value)``: ``y`` in ``{3, 7}`` gives ``("3", "7")``), by code point for strings — so the
same labels always give the same order; store ``class_names`` to choose another.

Every array's header is read before its data: object, structured and non-numeric dtypes are refused,
and an array larger than ``max_bytes`` (4 GiB by default) is refused before it is allocated.
Errors are :class:`~rnnedge.data.sequences.SequenceFileError` naming the file and the field; case,
step and channel numbers in them count from 0, as numpy indexes the arrays.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnedge.errors import ConfigError

from .sequences import SequenceDataset, SequenceFileError

__all__ = ["FIELDS", "MAX_BYTES", "read_npz"]

MAX_BYTES = 4 << 30
FIELDS = ("x", "y", "lengths", "class_names")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _read_arrays(path: Path, max_bytes: int) -> dict[str, np.ndarray]:
    """Every ``.npy`` member of the archive, header checked before its data is read."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, ValueError) as e:
        raise SequenceFileError(
            path, f"is not an .npz file (a zip archive of .npy arrays, as np.savez writes): {e}"
        ) from None
    except OSError as e:
        raise SequenceFileError(path, f"cannot read: {e.strerror or e}") from None
    arrays: dict[str, np.ndarray] = {}
    with archive:
        for info in archive.infolist():
            field = info.filename.removesuffix(".npy")
            if not info.filename.endswith(".npy") or field not in FIELDS:
                raise SequenceFileError(
                    path, f"unexpected member {info.filename!r}; an .npz of sequences holds {', '.join(FIELDS)}"
                )
            if field in arrays:
                raise SequenceFileError(path, "appears twice in the archive", field=field)
            arrays[field] = _read_member(path, archive, info, field, max_bytes)
    return arrays


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, field: str, max_bytes: int) -> np.ndarray:
    def error(message: str) -> SequenceFileError:
        return SequenceFileError(path, message, field=field)

    try:
        with archive.open(info) as fp:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
            else:
                raise error(f"is .npy format version {version[0]}.{version[1]}; expected 1.0 or 2.0")
            if dtype.hasobject:
                raise error(
                    "holds Python objects (dtype object), which only unpickling can read, and rnnedge never "
                    "unpickles a data file; store sequences of different lengths padded (N, T, F) or flat "
                    "(sum of lengths, F) with 'lengths', and labels as ints or fixed-width strings"
                )
            if dtype.names is not None or dtype.subdtype is not None:
                raise error(f"has a structured dtype {dtype}; expected a plain numeric or string array")
            nbytes = math.prod(shape) * dtype.itemsize  # Python ints: a forged shape cannot overflow
            if nbytes > max_bytes:
                raise error(f"has shape {shape} of {dtype} ({nbytes} bytes), more than max_bytes={max_bytes}")
            data = fp.read(nbytes + 1)
    except SequenceFileError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as e:
        raise error(f"cannot be read: {e}") from None
    if len(data) != nbytes:
        raise error(f"holds {len(data)} bytes of data, its header says {nbytes} for shape {shape} of {dtype}")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _strings(path: Path, field: str, a: np.ndarray) -> list[str]:
    if a.dtype.kind == "U":
        return [str(v) for v in a]
    try:
        return [bytes(v).decode("utf-8") for v in a]
    except UnicodeDecodeError:
        raise SequenceFileError(path, "holds bytes that are not UTF-8 text", field=field) from None


def _sequences(path: Path, x: np.ndarray, lengths: np.ndarray | None) -> list[np.ndarray]:
    """Cut ``x`` into float32 ``(T_i, F)`` arrays, checking every valid value."""

    def error(field: str, message: str) -> SequenceFileError:
        return SequenceFileError(path, message, field=field)

    if x.dtype.kind not in "fiu":
        raise error("x", f"must hold real numbers (a float or integer dtype), got {x.dtype} of shape {x.shape}")
    if x.ndim not in (2, 3) or 0 in x.shape:
        raise error(
            "x",
            f"must be padded (N, T, F) or flat (sum of lengths, F) with every size >= 1, got shape {x.shape}",
        )
    if x.ndim == 2 and lengths is None:
        raise error("x", f"of shape {x.shape} is the flat layout, which needs 'lengths' to cut it into cases")
    if lengths is not None:
        if lengths.dtype.kind not in "iu" or lengths.ndim != 1 or len(lengths) == 0:
            raise error("lengths", f"must be integers of shape (N,), got {lengths.dtype} of shape {lengths.shape}")
        if x.ndim == 3 and len(lengths) != x.shape[0]:
            raise error("lengths", f"has {len(lengths)} entries, x has {x.shape[0]} cases (shape {x.shape})")
        limit = x.shape[1] if x.ndim == 3 else x.shape[0]
        bad = np.flatnonzero((lengths < 1) | (lengths > limit))
        if len(bad):
            i = int(bad[0])
            raise error("lengths", f"case {i} has length {lengths[i]}, expected 1 to {limit} (x has shape {x.shape})")
        if x.ndim == 2 and (total := int(lengths.astype(np.int64).sum())) != x.shape[0]:
            raise error("lengths", f"sum to {total}, but the flat x has {x.shape[0]} rows (shape {x.shape})")
    if x.ndim == 3:
        n, t = x.shape[0], x.shape[1]
        lens = np.full(n, t, dtype=np.int64) if lengths is None else lengths.astype(np.int64)
        cases = [x[i, : lens[i]] for i in range(n)]
    else:
        sizes = np.asarray(lengths, dtype=np.int64).tolist()
        ends = np.cumsum(sizes).tolist()
        cases = [x[end - size : end] for end, size in zip(ends, sizes, strict=True)]
    out = []
    for i, case in enumerate(cases):
        if case.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                bad_values = ~np.isfinite(case) | (np.abs(case) > _FLOAT32_MAX)
            if bad_values.any():
                step, channel = (int(v) for v in np.argwhere(bad_values)[0])
                hint = "" if lengths is not None else "; if the end of a case is padding, give 'lengths'"
                raise error(
                    "x",
                    f"case {i}, step {step}, channel {channel} (from 0) is {case[step, channel]}; "
                    f"valid steps must be finite and within float32's range{hint}",
                )
        out.append(np.ascontiguousarray(case, dtype=np.float32))
    return out


def _labels(path: Path, y: np.ndarray, stored: np.ndarray | None, n: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(labels int64 (N,), class names)`` from ``y`` and the optional stored ``class_names``."""
    if y.ndim != 1 or len(y) != n:
        raise SequenceFileError(path, f"must have shape ({n},) (one label per case), got {y.shape}", field="y")
    names: list[str] | None = None
    if stored is not None:
        if stored.dtype.kind not in "US" or stored.ndim != 1 or len(stored) == 0:
            raise SequenceFileError(
                path, f"must be strings of shape (C,), got {stored.dtype} of shape {stored.shape}", field="class_names"
            )
        names = _strings(path, "class_names", stored)
        if len(set(names)) != len(names) or "" in names:
            raise SequenceFileError(path, f"must be distinct, non-empty names, got {names}", field="class_names")
    if y.dtype.kind in "iu":
        values = y.astype(np.int64) if y.dtype.kind == "i" or y.dtype.itemsize < 8 else y
        if names is not None:
            bad = np.flatnonzero((values < 0) | (values >= len(names)))
            if len(bad):
                i = int(bad[0])
                raise SequenceFileError(
                    path,
                    f"case {i} has label {y[i]}, expected an index in [0, {len(names)}) into class_names",
                    field="y",
                )
            return values.astype(np.int64), tuple(names)
        classes, labels = np.unique(values, return_inverse=True)
        return labels.astype(np.int64).reshape(n), tuple(str(v) for v in classes.tolist())
    if y.dtype.kind not in "US":
        raise SequenceFileError(path, f"must be integer or string labels, got {y.dtype}", field="y")
    words = _strings(path, "y", y)
    if "" in words:
        raise SequenceFileError(path, f"case {words.index('')} has an empty label", field="y")
    if names is None:
        names = sorted(set(words))
    index = {name: k for k, name in enumerate(names)}
    for i, w in enumerate(words):
        if w not in index:
            raise SequenceFileError(path, f"case {i} has label {w!r}, not in class_names {names}", field="y")
    return np.array([index[w] for w in words], dtype=np.int64), tuple(names)


def read_npz(
    path: str | os.PathLike[str],
    *,
    class_names: Sequence[str] | None = None,
    max_bytes: int = MAX_BYTES,
) -> SequenceDataset:
    """Read an ``.npz`` of labelled sequences (layouts and rules in the module's notes).

    ``class_names``: for a test or validation file, the training split's class names; labels are
    mapped onto them by name (a label absent from them is an error).
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ConfigError(f"max_bytes must be an int >= 1, got {max_bytes!r}")
    p = Path(path)
    arrays = _read_arrays(p, max_bytes)
    for field in ("x", "y"):
        if field not in arrays:
            raise SequenceFileError(p, f"has no '{field}' array; it holds {sorted(arrays) or 'nothing'}")
    sequences = _sequences(p, arrays["x"], arrays.get("lengths"))
    labels, names = _labels(p, arrays["y"], arrays.get("class_names"), len(sequences))
    if class_names is not None:
        given = tuple(class_names)
        if not given or len(set(given)) != len(given):
            raise ConfigError(f"class_names must be distinct and not empty, got {list(given)}")
        index = {name: k for k, name in enumerate(given)}
        for i, k in enumerate(labels.tolist()):
            if names[k] not in index:
                raise SequenceFileError(
                    p, f"case {i} has label {names[k]!r}, not among the given class_names {list(given)}", field="y"
                )
        labels = np.array([index[names[k]] for k in labels.tolist()], dtype=np.int64)
        names = given
    return SequenceDataset(tuple(sequences), labels, names, p.stem)
