"""Links over picows (the ``serve-fast`` extra): WebSocket framing in compiled code, one callback per frame.

The ``websockets`` library spends about a third of the event loop's time per request in Python
(its parser, its send path); picows parses and frames in Cython and hands each frame to a
callback. What ``websockets`` does for the server and picows leaves to its user is done here, with
the same outcomes: fragments joined into one message under the size limit (1009 past it), text
checked as UTF-8 (1007), a closing handshake answered and awaited, writes paused while a client
reads slower than the server writes, and reading paused while a client's unanswered messages pile
up. picows answers pings, refuses frames over the size limit (1009) and malformed ones (1002), and
answers plain HTTP requests with the reply the route gives.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from .link import HttpRoute, LinkClosed, OnLink
from .protocol import CLOSE_BAD_TEXT, CLOSE_TOO_BIG

__all__ = ["PicowsLink", "listen"]

log = logging.getLogger("rnnedge.serve")

_CLOSE_TIMEOUT = 10.0  # seconds a closing handshake waits for the client's answer (websockets' default too)
_MAX_QUEUED = 16  # unanswered messages held before reading from the client pauses (websockets' max_queue)
_MAX_FRAGMENTS = 4096  # frames of one message (websockets' cap too): empty fragments add no bytes
_PING_INTERVAL = 20.0  # seconds of silence before a ping, and for its pong (websockets' keepalive defaults)
_WRITE_STALL = 60.0  # seconds a reply waits for a client that reads nothing, then the connection is dropped
# (the keepalive alone would not: a client may send pongs nobody asked for)


class PicowsLink(WSListener):
    """A :class:`~rnnedge.serve.link.Link` over one picows connection; picows calls the ``on_ws_*`` methods."""

    def __init__(self, on_link: OnLink, max_size: int) -> None:
        super().__init__()
        self._on_link = on_link
        self._max_size = max_size
        self._loop = asyncio.get_running_loop()
        self._t: WSTransport | None = None
        self._messages: deque[str | bytes] = deque()
        self._parts: list[bytes] = []  # a fragmented message's frames so far
        self._parts_size = 0
        self._parts_text = False
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None  # recv waiting for a message
        self._writable: asyncio.Future[None] | None = None  # set while writes are paused
        self._disconnected: asyncio.Future[None] = self._loop.create_future()
        self._cut: asyncio.TimerHandle | None = None  # drops a connection whose closing handshake stalls
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps only a weak reference to a task

    # -- picows' callbacks ------------------------------------------------------------------------
    def on_ws_connected(self, transport: WSTransport) -> None:
        self._t = transport
        self._task = self._loop.create_task(self._run())

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if transport.is_close_frame_sent:  # a close frame went out: data frames are ignored from here on
            if kind is WSMsgType.CLOSE:  # the answer to a close the server (or picows) sent
                self._close(WSCloseCode.OK, b"")  # only makes sure the cut is set and reading runs
                transport.disconnect()
                self._wake()
        elif frame.rsv1 or frame.rsv2 or frame.rsv3:
            self._fail(WSCloseCode.PROTOCOL_ERROR, "reserved bits set: no extension was agreed")
        elif kind is WSMsgType.CLOSE:
            self._close(_echo_code(frame), b"")
            transport.disconnect()
            self._wake()
        elif kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            if self._parts:
                self._fail(WSCloseCode.PROTOCOL_ERROR, "a new message began before the last one's final fragment")
            elif frame.fin:
                self._message(frame.get_payload_as_bytes(), kind is WSMsgType.TEXT)
            else:
                self._parts_text = kind is WSMsgType.TEXT
                self._fragment(frame)
        elif kind is WSMsgType.CONTINUATION:
            if not self._parts:
                self._fail(WSCloseCode.PROTOCOL_ERROR, "a continuation frame with no message begun")
            elif self._fragment(frame) and frame.fin:
                data = b"".join(self._parts)
                self._parts, self._parts_size = [], 0
                self._message(data, self._parts_text)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._cut is not None:
            self._cut.cancel()
        if not self._disconnected.done():
            self._disconnected.set_result(None)
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # -- the Link -------------------------------------------------------------------------------
    async def recv(self) -> str | bytes:
        while not self._messages:
            if self._disconnected.done() or self._transport.is_close_frame_sent:
                raise LinkClosed
            self._waiter = self._loop.create_future()
            await self._waiter
        message = self._messages.popleft()
        if self._reading_paused and len(self._messages) < _MAX_QUEUED // 2:
            self._reading_paused = False
            self._transport.underlying_transport.resume_reading()
        return message

    async def send(self, text: str) -> None:
        t = self._transport
        if self._disconnected.done() or t.is_close_frame_sent:
            raise LinkClosed
        t.send(WSMsgType.TEXT, text.encode())
        if self._writable is not None and not self._writable.done():  # the client reads slower than we write
            try:
                await asyncio.wait_for(asyncio.shield(self._writable), _WRITE_STALL)
            except (TimeoutError, asyncio.TimeoutError):  # distinct types on Python 3.10
                t.disconnect(graceful=False)
                raise LinkClosed from None
            if self._disconnected.done():
                raise LinkClosed

    async def close(self, code: int, reason: str) -> None:
        self._close(WSCloseCode(code), reason.encode())
        await asyncio.shield(self._disconnected)

    def abort(self) -> None:
        self._transport.disconnect(graceful=False)

    def close_code_sent(self) -> int | None:
        handshake = self._transport.close_handshake
        if handshake is None or handshake.sent is None or handshake.recv_then_sent:
            return None
        code: int = handshake.sent.code.value
        return code

    # -- in here --------------------------------------------------------------------------------
    async def _run(self) -> None:
        """The connection's life; when the server is done with it, close it as ``websockets`` does (1000, or 1011)."""
        code, reason = WSCloseCode.OK, b""
        try:
            await self._on_link(self)
        except Exception:
            log.exception("connection handler failed")
            code, reason = WSCloseCode.INTERNAL_ERROR, b"internal error"
        self._close(code, reason)

    @property
    def _transport(self) -> WSTransport:
        assert self._t is not None  # set before on_link runs
        return self._t

    def _close(self, code: WSCloseCode, reason: bytes) -> None:
        """Send a close frame (unless one went), and drop the connection if the client has not answered in time."""
        t = self._transport
        if self._disconnected.done():
            return
        if not t.is_close_frame_sent:
            t.send_close(code, reason)
        if self._reading_paused:  # the client's answer must be read
            self._reading_paused = False
            t.underlying_transport.resume_reading()
        if self._cut is None:  # not graceful: a client that stopped reading would hold a graceful close forever
            self._cut = self._loop.call_later(_CLOSE_TIMEOUT, t.disconnect, False)

    def _fragment(self, frame: WSFrame) -> bool:
        """Keep one frame of a fragmented message; False (and the connection closing) past the size limit."""
        self._parts_size += frame.payload_size
        if self._parts_size > self._max_size or len(self._parts) >= _MAX_FRAGMENTS:
            self._fail(WSCloseCode(CLOSE_TOO_BIG), f"message over {self._max_size} bytes or {_MAX_FRAGMENTS} frames")
            return False
        self._parts.append(frame.get_payload_as_bytes())
        return True

    def _message(self, data: bytes, text: bool) -> None:
        if text:
            try:
                message: str | bytes = data.decode()
            except UnicodeDecodeError:
                self._fail(WSCloseCode(CLOSE_BAD_TEXT), "a text message that is not UTF-8")
                return
        else:
            message = data
        self._messages.append(message)
        self._wake()
        if not self._reading_paused and len(self._messages) >= _MAX_QUEUED:
            self._reading_paused = True
            self._transport.underlying_transport.pause_reading()

    def _fail(self, code: WSCloseCode, reason: str) -> None:
        """Close for a fault of the client's (what picows does for the faults it finds itself); nothing more is read."""
        self._parts, self._parts_size = [], 0
        self._messages.clear()
        self._close(code, reason.encode())
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def _echo_code(frame: WSFrame) -> WSCloseCode:
    """The code that answers a client's close frame: its own if it may be sent, 1000 for none, else 1002."""
    if frame.payload_size < 2:
        return WSCloseCode.OK
    code: int = frame.get_close_code().value
    valid = (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) or 3000 <= code <= 4999
    return frame.get_close_code() if valid else WSCloseCode.PROTOCOL_ERROR


class _Listener:
    def __init__(self, server: asyncio.Server) -> None:
        self._server = server
        self.port = int(server.sockets[0].getsockname()[1])

    def stop_accepting(self) -> None:
        self._server.close()


async def listen(on_link: OnLink, route: HttpRoute, host: str, port: int, max_size: int) -> _Listener:
    """Listen on ``host:port``; each connection runs ``on_link``; plain HTTP requests get ``route``'s reply."""

    def factory(request: WSUpgradeRequest) -> Any:
        reply = route(request.path.decode("latin-1").split("?", 1)[0])
        if reply is None:
            return PicowsLink(on_link, max_size)
        headers = {"Content-Type": reply.content_type}
        if reply.status == 200:
            response = WSUpgradeResponse.create_ok_response(reply.body, headers)
        else:
            response = WSUpgradeResponse.create_error_response(reply.status, reply.body, headers)
        return WSUpgradeResponseWithListener(response, None)

    server = await ws_create_server(
        factory,
        host,
        port,
        max_frame_size=max_size,
        logger_name=logging.getLogger("rnnedge.serve.picows"),
        enable_auto_ping=True,  # a client that vanished without a FIN, or stopped reading, is dropped
        auto_ping_idle_timeout=_PING_INTERVAL,
        auto_ping_reply_timeout=_PING_INTERVAL,
    )
    return _Listener(server)
