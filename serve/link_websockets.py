"""Links over the ``websockets`` library's asyncio server: the plain path of ``rnnedge serve``.

Its ``process_request`` hook answers the HTTP routes on the same port; the library enforces the
message size limit (closing with 1009), joins fragments, checks UTF-8 (1007) and answers pings.
"""

from __future__ import annotations

from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .link import HttpRoute, LinkClosed, OnLink

__all__ = ["WebsocketsLink", "listen"]


class WebsocketsLink:
    """A :class:`~rnnedge.serve.link.Link` over one ``websockets`` server connection."""

    __slots__ = ("_ws",)

    def __init__(self, ws: ServerConnection) -> None:
        self._ws = ws

    async def recv(self) -> str | bytes:
        try:
            return await self._ws.recv()
        except ConnectionClosed:
            raise LinkClosed from None

    async def send(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except ConnectionClosed:
            raise LinkClosed from None

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code, reason)

    def abort(self) -> None:
        self._ws.transport.abort()

    def close_code_sent(self) -> int | None:
        p = self._ws.protocol
        return None if p.close_sent is None or p.close_rcvd_then_sent else p.close_sent.code


class _Listener:
    def __init__(self, server: Server) -> None:
        self._server = server
        self.port = int(server.sockets[0].getsockname()[1])

    def stop_accepting(self) -> None:
        self._server.close(close_connections=False)


async def listen(on_link: OnLink, route: HttpRoute, host: str, port: int, max_size: int) -> _Listener:
    """Listen on ``host:port``; each connection runs ``on_link``; plain HTTP requests get ``route``'s reply."""

    async def handler(ws: ServerConnection) -> None:
        await on_link(WebsocketsLink(ws))

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        reply = route(request.path.split("?", 1)[0])
        if reply is None:
            return None
        headers = Headers([("Content-Type", reply.content_type), ("Content-Length", str(len(reply.body)))])
        return Response(reply.status, HTTPStatus(reply.status).phrase, headers, reply.body)

    server = await serve(
        handler,
        host,
        port,
        process_request=process_request,
        max_size=max_size,
        compression=None,  # deflate costs CPU per message and shrinks neither probabilities nor states much
    )
    return _Listener(server)
