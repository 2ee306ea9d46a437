"""MNIST from its IDX files, read and checked with numpy alone.

The IDX format is a big-endian header (magic, then one uint32 per dimension) followed
by uint8 data; we check magic numbers, dimensions, the exact file size and the
published MD5 of each file so that a truncated or substituted file fails loudly.
"""

from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnedge.errors import DataError

from .datasets import MNIST_FILES, ensure_files, md5_of

__all__ = ["PIXEL_MEAN", "PIXEL_STD", "VALIDATION_SIZE", "MnistSplits", "load_mnist", "load_mnist_test", "read_idx"]

PIXEL_MEAN = 0.1307
PIXEL_STD = 0.3081
VALIDATION_SIZE = 5000
_MAGIC = {2049: 1, 2051: 3}  # labels: 1 dimension, images: 3 dimensions
# MD5 of the decompressed IDX, for users who keep the files uncompressed.
_RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


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


@dataclass(frozen=True)
class MnistSplits:
    """uint8 images ``(N, 28, 28)`` and int64 labels ``(N,)`` for each split."""

    train_images: np.ndarray
    train_labels: np.ndarray
    valid_images: np.ndarray
    valid_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def _checked(folder: Path, name: str, md5: str, magic: int, verify: bool) -> np.ndarray:
    path = folder / name
    raw_name = name.removesuffix(".gz")
    if not path.is_file():
        path, md5 = folder / raw_name, _RAW_MD5[raw_name]
    if verify and (got := md5_of(path)) != md5:
        raise DataError(
            f"MNIST file {path} has MD5 {got}, expected the published {md5}; the file is corrupt or not MNIST"
        )
    return read_idx(path, magic)


def load_mnist(data: str | os.PathLike[str] | None = None, *, verify: bool = True) -> MnistSplits:
    """Load MNIST, holding out the last 5,000 training images for validation."""
    folder = ensure_files("mnist", MNIST_FILES, data)
    arrays = [_checked(folder, f.name, f.md5, 2051 if "images" in f.name else 2049, verify) for f in MNIST_FILES]
    train_x, train_y, test_x, test_y = arrays
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise DataError(
            f"MNIST image and label counts differ: {len(train_x)}/{len(train_y)}, {len(test_x)}/{len(test_y)}"
        )
    if train_x.shape[1:] != (28, 28) or test_x.shape[1:] != (28, 28):
        raise DataError(f"MNIST images must be 28x28, got {train_x.shape[1:]} and {test_x.shape[1:]}")
    cut = len(train_x) - VALIDATION_SIZE
    labels = [a.astype(np.int64) for a in (train_y, test_y)]
    return MnistSplits(train_x[:cut], labels[0][:cut], train_x[cut:], labels[0][cut:], test_x, labels[1])


def load_mnist_test(
    data: str | os.PathLike[str] | None = None, *, verify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 test images ``(N, 28, 28)`` uint8 and labels ``(N,)`` int64 alone: no training files needed."""
    test_files = tuple(f for f in MNIST_FILES if f.name.startswith("t10k"))
    folder = ensure_files("mnist", test_files, data)
    images, labels = (_checked(folder, f.name, f.md5, 2051 if "images" in f.name else 2049, verify) for f in test_files)
    if len(images) != len(labels):
        raise DataError(f"MNIST test image and label counts differ: {len(images)}/{len(labels)}")
    if images.shape[1:] != (28, 28):
        raise DataError(f"MNIST images must be 28x28, got {images.shape[1:]}")
    return images, labels.astype(np.int64)
