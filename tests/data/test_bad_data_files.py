"""Data files that are missing, cut short, forged or of the wrong corpus (docs/bad_input.md): a DataError
that names the file and what was expected, or a ConfigError for a batching setting out of range.
"""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from rnnedge.data import datasets
from rnnedge.data.mnist import load_mnist, load_mnist_test, read_idx
from rnnedge.data.ptb import batchify, load_ptb
from rnnedge.errors import ConfigError, DataError


def _idx(path: Path, magic: int, dims: tuple[int, ...], body: bytes = b"") -> Path:
    path.write_bytes(struct.pack(f">I{len(dims)}I", magic, *dims) + body)
    return path


def test_a_forged_header_whose_size_overflows_is_refused(tmp_path: Path) -> None:
    # 2**31 * 2**31 * 4 = 2**64: a 64-bit element count wraps to 0 and would "match" an empty body.
    path = _idx(tmp_path / "forged", 2051, (2**31, 2**31, 4))
    with pytest.raises(DataError, match=r"is 16 bytes, expected 18446744073709551632 for shape \(2147483648,"):
        read_idx(path)


def test_a_file_shorter_than_its_header_or_longer_than_its_data(tmp_path: Path) -> None:
    (tmp_path / "stub").write_bytes(b"\x00\x00\x08")
    with pytest.raises(DataError, match="stub is 3 bytes, too short for a header"):
        read_idx(tmp_path / "stub")
    path = _idx(tmp_path / "long", 2049, (3,), b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match=r"long is 12 bytes, expected 11 for shape \(3,\)"):
        read_idx(path)


def _fake_mnist(root: Path, images: tuple[int, int, int], labels: int, test: int = 2) -> Path:
    """An uncompressed MNIST folder of the given sizes (read with verify=False: the MD5s cannot match)."""
    folder = root / "mnist"
    folder.mkdir(parents=True)
    n, h, w = images
    _idx(folder / "train-images-idx3-ubyte", 2051, images, bytes(n * h * w))
    _idx(folder / "train-labels-idx1-ubyte", 2049, (labels,), bytes(labels))
    _idx(folder / "t10k-images-idx3-ubyte", 2051, (test, h, w), bytes(test * h * w))
    _idx(folder / "t10k-labels-idx1-ubyte", 2049, (test,), bytes(test))
    return root


def test_image_and_label_counts_that_differ(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="MNIST image and label counts differ: 6/5, 2/2"):
        load_mnist(_fake_mnist(tmp_path, (6, 28, 28), 5), verify=False)


def test_images_that_are_not_28_by_28(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"MNIST images must be 28x28, got \(32, 32\)"):
        load_mnist(_fake_mnist(tmp_path, (4, 32, 32), 4), verify=False)


def test_unverified_files_are_still_checked_against_the_published_md5_by_default(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte has MD5 [0-9a-f]{32}, expected the published"):
        load_mnist(_fake_mnist(tmp_path, (4, 28, 28), 4))


def test_one_missing_file_is_named_alone(data_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(data_dir / "mnist", tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path)
    message = str(info.value)
    assert "missing from" in message and "t10k-labels-idx1-ubyte.gz" in message
    assert "train-images" not in message.split("\n")[0]


def test_a_data_folder_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    with pytest.raises(DataError, match="Put the files in"):
        load_mnist(tmp_path / "data")


def test_a_labels_file_cut_inside_the_gzip_stream(data_dir: Path, tmp_path: Path) -> None:
    data = (data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cannot read IDX file .*cut\.gz"):
        read_idx(tmp_path / "cut.gz")
    (tmp_path / "fine.gz").write_bytes(gzip.compress(gzip.decompress(data)[:-5]))
    with pytest.raises(DataError, match="is 10003 bytes, expected 10008"):
        read_idx(tmp_path / "fine.gz")


def _ptb_folder(root: Path, texts: dict[str, bytes]) -> Path:
    (root / "ptb").mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (root / "ptb" / f"ptb.{split}.txt").write_bytes(texts.get(split, b" a b \n c d \n"))
    return root


def test_a_truncated_ptb_file_fails_its_checksum(ptb_data: Path, tmp_path: Path) -> None:
    shutil.copytree(ptb_data / "ptb", tmp_path / "ptb")
    valid = tmp_path / "ptb" / "ptb.valid.txt"
    valid.write_bytes(valid.read_bytes()[:-1000])
    with pytest.raises(DataError, match=r"ptb\.valid\.txt has MD5 [0-9a-f]{32}, expected the published"):
        load_ptb(tmp_path)


def test_a_custom_corpus_that_is_not_utf8_or_too_short(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"ptb\.train\.txt, line 1, column 4: byte 0xe9 is not UTF-8"):
        load_ptb(_ptb_folder(tmp_path / "latin", {"train": b"caf\xe9 au lait\n"}), custom=True)
    with pytest.raises(DataError, match=r"ptb\.valid\.txt holds 0 tokens; a language model needs at least 2"):
        load_ptb(_ptb_folder(tmp_path / "empty", {"valid": b""}), custom=True)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True, "4"])
def test_batchify_refuses_a_batch_size_out_of_range(batch_size: object) -> None:
    with pytest.raises(ConfigError, match=rf"batch_size must be an int >= 1, got {batch_size!r}"):
        batchify(np.arange(100, dtype=np.int64), batch_size)  # type: ignore[arg-type]


def test_a_user_folder_is_never_downloaded_into(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="Put the files in"):
        datasets.ensure_files("ptb", datasets.PTB_FILES, tmp_path / "mine")
    assert not (tmp_path / "mine").exists() and not (tmp_path / "cache").exists()


def test_a_missing_dataset_says_how_to_name_a_folder_from_python_or_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Python caller reads `data=DIR`, not only the command line's `--data`; and where the folder came from."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataError) as given:
        load_mnist_test(tmp_path / "mine")
    message = str(given.value)
    assert f"missing from {tmp_path / 'mine' / 'mnist'} (the data folder given)" in message
    assert "data=DIR in Python" in message and "--data DIR on the command line" in message
    assert "RNNEDGE_DATA=DIR" in message
    monkeypatch.setenv("RNNEDGE_DATA", str(tmp_path / "env"))
    with pytest.raises(DataError, match=r"mnist \(the data folder RNNEDGE_DATA names\)"):
        load_mnist_test()
    assert not (tmp_path / "mine").exists() and not (tmp_path / "env").exists()
