"""The two HTTP routes on the WebSocket port: ``/healthz`` (200, or 503 while draining) and ``/metrics``."""

from __future__ import annotations

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .metrics import CONTENT_TYPE_LATEST, Metrics

__all__ = ["http_route"]


def http_route(connection: ServerConnection, request: Request, metrics: Metrics, draining: bool) -> Response | None:
    """The response to a plain HTTP request, or ``None`` for a WebSocket handshake (any other path)."""
    path = request.path.split("?", 1)[0]
    if path == "/healthz":
        return connection.respond(503, "draining\n") if draining else connection.respond(200, "ok\n")
    if path == "/metrics":
        body = metrics.text()
        headers = Headers([("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return Response(200, "OK", headers, body)
    return None
