"""MNIST from its IDX files, read and checked with numpy alone.

The files are read by :func:`rnnedge.data.idx.read_idx` (magic numbers, dimensions, exact
size); here each is also checked against its published MD5, so that a truncated or
substituted file fails loudly, and the splits are made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnedge.errors import DataError

from .datasets import MNIST_FILES, ensure_files, md5_of
from .idx import read_idx

__all__ = [
    "PIXEL_MEAN",
    "PIXEL_STD",
    "VALIDATION_SIZE",
    "MnistSplits",
    "load_mnist",
    "load_mnist_test",
    "mnist_files",
    "read_idx",
]

PIXEL_MEAN = 0.1307
PIXEL_STD = 0.3081
VALIDATION_SIZE = 5000
# MD5 of the decompressed IDX, for users who keep the files uncompressed.
_RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


@dataclass(frozen=True)
class MnistSplits:
    """uint8 images ``(N, 28, 28)`` and int64 labels ``(N,)`` for each split."""

    train_images: np.ndarray
    train_labels: np.ndarray
    valid_images: np.ndarray
    valid_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def _verified(folder: Path, name: str, md5: str, verify: bool) -> Path:
    """The file ``name`` in ``folder`` (or its uncompressed twin), checked against its published MD5."""
    path = folder / name
    raw_name = name.removesuffix(".gz")
    if not path.is_file():
        path, md5 = folder / raw_name, _RAW_MD5[raw_name]
    if verify and (got := md5_of(path)) != md5:
        raise DataError(
            f"MNIST file {path} has MD5 {got}, expected the published {md5}; the file is corrupt or not MNIST"
        )
    return path


def _checked(folder: Path, name: str, md5: str, magic: int, verify: bool) -> np.ndarray:
    return read_idx(_verified(folder, name, md5, verify), magic)


def mnist_files(data: str | os.PathLike[str] | None = None, *, verify: bool = True) -> tuple[Path, Path]:
    """The training and test image files (their labels files beside them), checked against their MD5s.

    What ``rnnedge train mnist-lstm`` gives ``rnnedge train classifier`` (IDX images read row by row).
    """
    folder = ensure_files("mnist", MNIST_FILES, data)
    train_images, _, test_images, _ = (_verified(folder, f.name, f.md5, verify).resolve() for f in MNIST_FILES)
    return train_images, test_images


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
