"""Atomic file output: readers see the old file or the complete new one, never a partial one.

The temporary file is ``.NAME.<12 hex digits>.tmp`` beside ``NAME``, and its writer holds an
exclusive ``flock`` on it until it is renamed or removed. A writer killed outright (SIGKILL, power
loss) cannot remove its file, but the kernel drops its lock, so the next write of ``NAME`` knows the
file for a dead writer's and removes it: stale temporary files never pile up beside a checkpoint
that is rewritten every few hundred steps, while a live writer's file is never touched.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_output"]


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def _remove_dead_writers_files(path: Path) -> None:
    """Remove ``path``'s temporary files whose writer is gone (nobody holds their lock)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{12}}\.tmp")
    for candidate in path.parent.iterdir():
        if not pattern.fullmatch(candidate.name):
            continue
        try:
            fd = os.open(candidate, os.O_RDONLY)
        except OSError:  # renamed or removed meanwhile, or not ours to read
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live writer's (or a file system without locks: then nothing is known dead)
            os.close(fd)
            continue
        try:
            candidate.unlink(missing_ok=True)
        finally:
            os.close(fd)


def _locked_temporary(path: Path) -> tuple[int, Path]:
    """Create and lock a new temporary file beside ``path``; return its descriptor and name."""
    while True:
        tmp = _temporary_name(path)
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: nobody can take this file for a dead writer's either
            return fd, tmp
        if os.fstat(fd).st_nlink:
            return fd, tmp
        os.close(fd)  # another writer's cleanup removed it before we held the lock: make another


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it replaces ``path``.

    The temporary file is fsynced, given the permissions a plain ``open`` would give
    (``0o666`` less the umask, not the owner-only mode it is created with) and renamed
    over ``path``; on an exception it is removed and ``path`` is left untouched. Temporary
    files of ``path`` left by killed writers are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_writers_files(path)
    lock_fd, tmp = _locked_temporary(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        tmp.unlink(missing_ok=True)
        os.close(lock_fd)  # only now: the file must not look abandoned while it still has this name
