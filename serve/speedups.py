"""Optional speed-ups from the ``serve-fast`` extra: uvloop's event loop, orjson's JSON encoder, picows' WebSockets.

Each is used when it is installed; without them (or with ``RNNEDGE_SERVE_PLAIN=1`` in the
environment, which the tests use to keep the plain path covered) the standard library's asyncio
loop and ``json`` and the ``websockets`` library serve the same protocol, byte for byte apart from
how a float is spelt (both spell the shortest text that reads back as the same float64).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Coroutine
from typing import Any

from .link import HttpRoute, Listener, OnLink

__all__ = ["PLAIN", "dumps", "listener", "run_loop"]

PLAIN = os.environ.get("RNNEDGE_SERVE_PLAIN", "") == "1"

_ENCODER = json.JSONEncoder(separators=(",", ":"))  # one encoder: json.dumps with separators builds one per call


def _plain_dumps(obj: Any) -> str:
    return _ENCODER.encode(obj)


def _fast_dumps() -> Callable[[Any], str] | None:
    if PLAIN:
        return None
    try:
        import orjson
    except ImportError:
        return None

    def dumps(obj: Any) -> str:
        return orjson.dumps(obj).decode()

    return dumps


dumps: Callable[[Any], str] = _fast_dumps() or _plain_dumps


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run(main)``, on uvloop's event loop when it is installed."""
    if not PLAIN:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


Listen = Callable[[OnLink, HttpRoute, str, int, int], Coroutine[Any, Any, Listener]]


def listener() -> Listen:
    """``listen(on_link, route, host, port, max_size)`` of picows when it is installed, else of ``websockets``."""
    if not PLAIN:
        try:
            from .link_picows import listen
        except ImportError:
            pass
        else:
            return listen
    from .link_websockets import listen as plain

    return plain
