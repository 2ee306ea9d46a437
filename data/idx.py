"""IDX files (the format MNIST is published in) and labelled image files as sequences.

An IDX file is a big-endian header (magic, then one uint32 per dimension) followed by uint8
data; :func:`read_idx` checks the magic number, the dimensions and the exact size, so a
truncated or forged file fails loudly. :func:`read_idx_sequences` reads an image file
``NAME-images-idx3-ubyte[.gz]`` with the labels beside it (``NAME-labels-idx1-ubyte[.gz]``) as
labelled sequences: each image is a sequence of its rows, each row's pixels its channels.
"""

from __future__ import annotations

import gzip
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnedge.errors import DataError

from .sequences import SequenceDataset, SequenceFileError

__all__ = ["IMAGES_MARK", "LABELS_MARK", "is_idx_images", "labels_file_for", "read_idx", "read_idx_sequences"]

_MAGIC = {2049: 1, 2051: 3}  # labels: 1 dimension, images: 3 dimensions
IMAGES_MARK = "-images-idx3-ubyte"
LABELS_MARK = "-labels-idx1-ubyte"


def read_idx(path: str | os.PathLike[str], expected_magic: int | None = None) -> np.ndarray:
    """Read one IDX file (gzipped if its name ends in ``.gz``) into a uint8 array."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read IDX file {path}: {e}") from None
    if len(data) < 8:
        raise DataError(f"IDX file {path} is {len(data)} bytes, too short for a header")
    magic = int.from_bytes(data[:4], "big")
    if magic not in _MAGIC or (expected_magic is not None and magic != expected_magic):
        want = expected_magic if expected_magic is not None else sorted(_MAGIC)
        raise DataError(f"IDX file {path} has magic number {magic}, expected {want}")
    ndim = _MAGIC[magic]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(dims)  # Python ints: a forged header cannot overflow the count
    if len(data) != expected:
        raise DataError(f"IDX file {path} is {len(data)} bytes, expected {expected} for shape {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def is_idx_images(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named like an IDX image file (``NAME-images-idx3-ubyte``, optionally ``.gz``)."""
    return Path(path).name.removesuffix(".gz").endswith(IMAGES_MARK)


def labels_file_for(images: str | os.PathLike[str]) -> Path:
    """The labels file that goes with an IDX image file: the same name with ``labels-idx1`` for ``images-idx3``."""
    p = Path(images)
    gz = p.name.endswith(".gz")
    stem = p.name.removesuffix(".gz").removesuffix(IMAGES_MARK)
    return p.with_name(stem + LABELS_MARK + (".gz" if gz else ""))


def read_idx_sequences(path: str | os.PathLike[str], *, class_names: Sequence[str] | None = None) -> SequenceDataset:
    """An IDX image file and its labels file as labelled sequences of uint8 rows ``(rows, columns)``.

    Class names are the label values written as decimal numbers, in numeric order (those present
    in the file), unless ``class_names`` (the training split's) is given: then every label must be
    one of them. The problem's name is the folder's.
    """
    p = Path(path)
    if not is_idx_images(p):
        raise DataError(f"{p}: an IDX image file is named NAME{IMAGES_MARK} (or with .gz)")
    labels_path = labels_file_for(p)
    if not labels_path.is_file():
        raise DataError(f"{p}: its labels file {labels_path.name} is not beside it")
    images = read_idx(p, 2051)  # (N, rows, columns)
    values = read_idx(labels_path, 2049)  # (N,)
    if len(images) != len(values):
        raise DataError(f"{p} holds {len(images)} images but {labels_path} {len(values)} labels; expected as many")
    if len(images) == 0 or images.shape[1] == 0 or images.shape[2] == 0:
        raise DataError(f"{p} holds no pixels (shape {images.shape})")
    names = tuple(str(v) for v in np.unique(values)) if class_names is None else tuple(str(c) for c in class_names)
    index = {name: i for i, name in enumerate(names)}
    ids = np.empty(len(values), dtype=np.int64)
    for value in np.unique(values):
        if str(value) not in index:
            where = int(np.flatnonzero(values == value)[0])
            raise SequenceFileError(
                labels_path, f"label {value} (item {where}) is not a class of the training split {list(names)}"
            )
        ids[values == value] = index[str(value)]
    return SequenceDataset(tuple(images), ids, names, p.resolve().parent.name or p.stem)
