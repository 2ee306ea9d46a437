"""IDX image files read as labelled sequences of rows (``rnnedge.data.idx``): MNIST's format, any images."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from rnnedge.data.idx import labels_file_for, read_idx_sequences
from rnnedge.data.mnist import load_mnist_test, mnist_files
from rnnedge.data.sequences import SequenceFileError, read_sequences
from rnnedge.errors import DataError


def write_idx(folder: Path, name: str, images: np.ndarray, labels: np.ndarray, gz: bool = False) -> Path:
    """``NAME-images-idx3-ubyte`` and its labels file, written as the format says."""
    suffix = ".gz" if gz else ""
    opener = gzip.open if gz else open
    path = folder / f"{name}-images-idx3-ubyte{suffix}"
    with opener(path, "wb") as f:
        f.write((2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in images.shape))
        f.write(images.astype(np.uint8).tobytes())
    with opener(labels_file_for(path), "wb") as f:
        f.write((2049).to_bytes(4, "big") + len(labels).to_bytes(4, "big") + labels.astype(np.uint8).tobytes())
    return path


def test_mnist_test_images_are_28_rows_of_28_uint8_pixels(data_dir: Path) -> None:
    _, test_images = mnist_files(data_dir)
    test = read_sequences(test_images)
    images, labels = load_mnist_test(data_dir)
    assert len(test) == 10000 and test.num_channels == 28 and test.class_names == tuple("0123456789")
    assert test.name == "mnist" and all(s.dtype == np.uint8 and s.shape == (28, 28) for s in test.sequences[:50])
    np.testing.assert_array_equal(np.stack(test.sequences[:50]), images[:50])
    np.testing.assert_array_equal(test.labels, labels)


@pytest.mark.parametrize("gz", [False, True])
def test_any_images_read_as_sequences_of_rows(tmp_path: Path, gz: bool) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 5, 3))  # 6 images of 5 rows of 3 pixels
    path = write_idx(tmp_path, "train", images, np.array([3, 7, 3, 9, 7, 3]), gz)
    data = read_idx_sequences(path)
    assert data.class_names == ("3", "7", "9") and data.labels.tolist() == [0, 1, 0, 2, 1, 0]
    assert data.num_channels == 3 and [s.shape for s in data.sequences] == [(5, 3)] * 6
    test = read_idx_sequences(write_idx(tmp_path, "test", images[:2], np.array([9, 9])), class_names=data.class_names)
    assert test.labels.tolist() == [2, 2] and test.class_names == data.class_names


def test_an_image_file_needs_its_labels_beside_it(tmp_path: Path) -> None:
    path = write_idx(tmp_path, "train", np.zeros((2, 3, 3)), np.array([0, 1]))
    labels_file_for(path).unlink()
    with pytest.raises(DataError, match="its labels file train-labels-idx1-ubyte is not beside it"):
        read_sequences(path)
    with pytest.raises(DataError, match=r"cannot read sequences from a '\.bin' file"):
        read_sequences(tmp_path / "train-images.bin")


def test_a_test_label_outside_the_training_classes_is_refused(tmp_path: Path) -> None:
    path = write_idx(tmp_path, "test", np.zeros((2, 3, 3)), np.array([7, 1]))
    with pytest.raises(SequenceFileError, match=r"label 7 \(item 0\) is not a class of the training split"):
        read_idx_sequences(path, class_names=("0", "1"))


def test_images_and_labels_of_different_counts_are_refused(tmp_path: Path) -> None:
    path = write_idx(tmp_path, "train", np.zeros((3, 2, 2)), np.array([0, 1]))
    with pytest.raises(DataError, match=r"holds 3 images but .* 2 labels"):
        read_idx_sequences(path)
