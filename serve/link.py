"""One client connection as ``rnnedge serve`` sees it, whichever WebSocket library carries it.

The server's connection handling (limits, sessions, close codes, draining) is written once against
:class:`Link`; :mod:`.link_websockets` (the plain path) and :mod:`.link_picows` (the ``serve-fast``
extra) each make links from their library's connections and answer the HTTP routes on the same
port. A :class:`Listener` is what either returns once listening.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["HttpReply", "HttpRoute", "Link", "LinkClosed", "Listener", "OnLink"]


class LinkClosed(Exception):
    """The connection is closed (the client left, or the server closed it): nothing more goes either way."""


class Link(Protocol):
    """A WebSocket connection: text and binary messages in, text messages out, a close code at the end."""

    async def recv(self) -> str | bytes:
        """The next whole message (fragments joined); raises :class:`LinkClosed` once the connection is closed."""
        ...

    async def send(self, text: str) -> None:
        """Send a text message, waiting while the client reads slower than the server writes."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Start the closing handshake with ``code``; the connection ends when the client answers."""
        ...

    def abort(self) -> None:
        """Drop the connection at once (no closing handshake)."""
        ...

    def close_code_sent(self) -> int | None:
        """The close code the server sent first (this code's or the library's), or None."""
        ...


@dataclass(frozen=True)
class HttpReply:
    """A plain HTTP response on the WebSocket port (``/healthz``, ``/metrics``)."""

    status: int
    content_type: str
    body: bytes


HttpRoute = Callable[[str], "HttpReply | None"]  # a request's path -> its reply, or None for a WebSocket handshake
OnLink = Callable[[Link], Awaitable[None]]  # runs for the life of each connection


class Listener(Protocol):
    """A listening socket: its port, and a way to stop accepting (open connections stay)."""

    port: int

    def stop_accepting(self) -> None: ...
