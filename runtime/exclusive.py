"""A non-blocking lock: an object used by two threads at once says so instead of waiting or tearing."""

from __future__ import annotations

import threading

from .errors import ConcurrentUseError

__all__ = ["Exclusive"]


class Exclusive:
    """A context manager: a second thread entering gets :class:`ConcurrentUseError`, not a wait."""

    __slots__ = ("_lock", "_what")

    def __init__(self, lock: threading.Lock, what: str) -> None:
        self._lock, self._what = lock, what

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise ConcurrentUseError(
                f"this {self._what} is being used by another thread; give each thread its own {self._what}"
            )

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
