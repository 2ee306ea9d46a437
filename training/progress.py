"""Progress bars that stay quiet when asked or when stderr is not a terminal."""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

__all__ = ["progress_bar"]


def progress_bar(*, total: int, desc: str, quiet: bool = False, initial: int = 0, unit: str = "step") -> Any:
    # disable=None: tqdm turns itself off when stderr is not a TTY.
    """A tqdm bar on stderr, silent with ``quiet`` or when stderr is not a terminal."""
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=True if quiet else None, dynamic_ncols=True)
