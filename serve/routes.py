"""The two HTTP routes on the WebSocket port: ``/healthz`` (200, or 503 while draining) and ``/metrics``."""

from __future__ import annotations

from .link import HttpReply
from .metrics import CONTENT_TYPE_LATEST, Metrics

__all__ = ["http_route"]

_TEXT = "text/plain; charset=utf-8"


def http_route(path: str, metrics: Metrics, draining: bool) -> HttpReply | None:
    """The reply to a plain HTTP request for ``path``, or ``None`` for a WebSocket handshake (any other path)."""
    if path == "/healthz":
        return HttpReply(503, _TEXT, b"draining\n") if draining else HttpReply(200, _TEXT, b"ok\n")
    if path == "/metrics":
        return HttpReply(200, CONTENT_TYPE_LATEST, metrics.text())
    return None
