"""Output paths export writes to: refused up front when they cannot be a file, and write errors as messages.

Files are written atomically (:func:`rnnedge.data.atomic.atomic_output`): a temporary file
beside the target is renamed over it. A target that exists and is not a regular file (a
folder, ``/dev/full``, a socket) is refused before anything is written, because renaming a
file over it would replace the device or fail; any other failure to write (a folder that
cannot be created, a full disk, a read-only file system) becomes a
:class:`~rnnedge.errors.ModelFileError` naming the path, never a traceback.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rnnedge.errors import ModelFileError

__all__ = ["check_output_file", "output_errors"]


def _what(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_output_file(path: Path) -> None:
    """Refuse ``path`` as a file to write if it exists and is not a regular file (symbolic links followed)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise ModelFileError(f"cannot write {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        raise ModelFileError(f"cannot write {path}: it exists and is {_what(mode)}; expected a new or a regular file")


@contextmanager
def output_errors(path: Path) -> Iterator[None]:
    """Turn an ``OSError`` raised while writing ``path`` into a :class:`ModelFileError` that names it."""
    try:
        yield
    except OSError as e:
        where = f" ({e.filename})" if e.filename and str(e.filename) != str(path) else ""
        raise ModelFileError(f"cannot write {path}: {e.strerror or e}{where}") from None
