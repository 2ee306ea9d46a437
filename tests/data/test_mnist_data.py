"""The IDX reader and the data-folder rules, on the real MNIST files and on damaged copies."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from rnnedge.data import datasets
from rnnedge.data.mnist import load_mnist, read_idx
from rnnedge.errors import DataError


def test_real_mnist_splits(mnist) -> None:
    assert mnist.train_images.shape == (55000, 28, 28) and mnist.train_images.dtype == np.uint8
    assert mnist.valid_images.shape == (5000, 28, 28)
    assert mnist.test_images.shape == (10000, 28, 28)
    assert mnist.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(mnist.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    full_train = np.concatenate([mnist.train_images, mnist.valid_images])
    assert abs(full_train.mean() - 33.3184) < 1e-3


def _copy_mnist(data_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(data_dir / "mnist", tmp_path / "mnist")
    return tmp_path / "mnist"


def test_uncompressed_files_are_read_and_verified(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    folder.mkdir()
    for f in (data_dir / "mnist").iterdir():
        (folder / f.name.removesuffix(".gz")).write_bytes(gzip.decompress(f.read_bytes()))
    splits = load_mnist(tmp_path)
    assert splits.test_images.shape == (10000, 28, 28)


def test_truncated_file_is_refused(data_dir: Path, tmp_path: Path) -> None:
    raw = gzip.decompress((data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes())
    path = tmp_path / "labels"
    path.write_bytes(raw[:-10])
    with pytest.raises(DataError, match="10008"):
        read_idx(path)


def test_wrong_magic_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    path.write_bytes((1234).to_bytes(4, "big") + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(DataError, match="magic number 1234"):
        read_idx(path)


def test_labels_file_where_images_expected(data_dir: Path) -> None:
    with pytest.raises(DataError, match="magic number 2049, expected 2051"):
        read_idx(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz", 2051)


def test_corrupt_gzip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="cannot read IDX file"):
        read_idx(path)


def test_checksum_mismatch_names_the_file(data_dir: Path, tmp_path: Path) -> None:
    folder = _copy_mnist(data_dir, tmp_path)
    raw = bytearray(gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # a plausible label, wrong file
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz has MD5"):
        load_mnist(tmp_path)


def test_missing_files_say_where_to_put_them(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path)
    message = str(err.value)
    assert "train-images-idx3-ubyte.gz" in message and str(tmp_path / "mnist") in message


def test_folder_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RNNEDGE_DATA", str(tmp_path / "env"))
    assert datasets.resolve_data_dir(tmp_path / "arg") == (tmp_path / "arg", False)
    assert datasets.resolve_data_dir(None) == (tmp_path / "env", False)
    monkeypatch.delenv("RNNEDGE_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert datasets.resolve_data_dir(None) == (tmp_path / "cache" / "rnnedge" / "data", True)


def _mirror(files: tuple[datasets.DataFile, ...], url: str) -> tuple[datasets.DataFile, ...]:
    return tuple(datasets.DataFile(f.name, f.md5, (url + f.name,)) for f in files)


def test_download_into_cache_verifies_checksums(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The real download path, served from a file:// mirror (this machine has no internet)."""
    monkeypatch.delenv("RNNEDGE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    files = _mirror(datasets.MNIST_FILES, (data_dir / "mnist").as_uri() + "/")
    folder = datasets.ensure_files("mnist", files)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f.name for f in files)


def test_download_with_bad_checksum_keeps_nothing(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RNNEDGE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # Serve the test labels under every name: each download fails its MD5 check.
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for f in datasets.MNIST_FILES:
        shutil.copy(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz", mirror / f.name)
    files = _mirror(datasets.MNIST_FILES[:1], mirror.as_uri() + "/")
    with pytest.raises(DataError, match="does not match the published"):
        datasets.ensure_files("mnist", files)
    assert list((tmp_path / "cache" / "rnnedge" / "data" / "mnist").iterdir()) == []


def test_offline_download_failure_is_clear(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RNNEDGE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    files = _mirror(datasets.MNIST_FILES, (tmp_path / "nowhere").as_uri() + "/")
    with pytest.raises(DataError, match="Put the files in"):
        datasets.ensure_files("mnist", files)
