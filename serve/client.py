"""A client of ``rnnedge serve`` (or its Ray Serve app) that keeps its session alive across servers.

>>> with ResumingClient("ws://127.0.0.1:8765", model="ptb-small") as c:
...     reply = c.feed("the stock market")        # {"op": "result", "top_k": [...], ...}

Every feed asks for the session's state token with its result, and the client keeps the latest
one. If the connection drops (the replica was killed, restarted or drained), the client reconnects
to the same address (a load balancer sends it to a live replica), reopens the session from that
token and sends the request that was in flight again, so the conversation continues exactly where
it was: results are bit-identical to an uninterrupted session. A ``shutdown`` message (a draining
server) hands a fresher token, which the client takes. Only ``generate`` is not resumed mid-way.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from rnnedge.runtime import RnnEdgeError

__all__ = ["ResumingClient", "ServeError"]


class ServeError(RnnEdgeError):
    """The server refused a request (its ``error`` code and message), or could not be reached in time."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class ResumingClient:
    """One session on a server, resumed on reconnection from the latest state token.

    ``reconnect_for``: seconds to keep trying to reconnect after the connection drops (with a short
    back-off), before :class:`ServeError` (code ``unreachable``). ``token``: start from a saved token.
    ``resumed`` counts reconnections, ``resent`` the requests sent again after one (those in flight).
    """

    def __init__(
        self,
        url: str,
        model: str | None = None,
        *,
        token: str | None = None,
        strict: bool = False,
        reconnect_for: float = 30.0,
        timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.model = model
        self.token = token
        self.strict = strict
        self.reconnect_for = reconnect_for
        self.timeout = timeout
        self.resumed = 0
        self.resent = 0
        self.opened: dict[str, Any] = {}
        self._ws: ClientConnection | None = None
        self._connection: Any = None  # connect()'s context manager (websockets 17 wants one entered)
        self._open()

    # -- requests ----------------------------------------------------------------------------
    def feed(self, x: Any, *, top_k: int | None = None, probs: bool = False) -> dict[str, Any]:
        """Feed words, ids or rows; the ``result`` reply (its ``token`` is kept for resuming)."""
        message: dict[str, Any] = {"op": "feed", "input": x, "token": True}
        if top_k is not None:
            message["top_k"] = top_k
        if probs:
            message["probs"] = True
        return self.request(message)

    def state(self) -> str:
        """The session's current state token (also kept for resuming)."""
        return str(self.request({"op": "state"})["token"])

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one single-reply request; on a dropped connection, resume and send it again."""
        text = json.dumps(message)
        while True:
            try:
                reply = self._exchange(text)
            except (ConnectionClosed, OSError, TimeoutError):
                self._resume()
                self.resent += 1
                continue
            if reply.get("op") == "error":
                raise ServeError(str(reply.get("error")), str(reply.get("message")))
            if "token" in reply:
                self.token = reply["token"]
            return reply

    def close(self) -> str | None:
        """Close the session (its final token is returned and kept) and the connection."""
        try:
            if self._ws is not None:
                self.token = self.request({"op": "close"})["token"]
        finally:
            self._drop()
        return self.token

    # -- connection --------------------------------------------------------------------------
    def _exchange(self, text: str) -> dict[str, Any]:
        if self._ws is None:
            raise ConnectionRefusedError("not connected")
        self._ws.send(text)
        while True:
            reply: dict[str, Any] = json.loads(self._ws.recv(self.timeout))
            if reply.get("op") != "shutdown":
                return reply
            if "token" in reply:  # a draining server's goodbye: the freshest token there is
                self.token = reply["token"]

    def _open(self) -> None:
        self._connection = connect(self.url, open_timeout=self.timeout, max_size=2**24, compression=None)
        self._ws = self._connection.__enter__()
        message: dict[str, Any] = {"op": "open", "strict": self.strict}
        if self.model is not None:
            message["model"] = self.model
        if self.token is not None:
            message["token"] = self.token
        reply = self._exchange(json.dumps(message))
        if reply.get("op") != "opened":
            self._drop()
            raise ServeError(str(reply.get("error")), str(reply.get("message")))
        self.opened = reply

    def _resume(self) -> None:
        self._drop()
        deadline = time.monotonic() + self.reconnect_for
        delay = 0.05
        while True:
            try:
                self._open()
                self.resumed += 1
                return
            except (ConnectionClosed, OSError, TimeoutError, InvalidHandshake, InvalidStatus) as e:
                if time.monotonic() + delay > deadline:
                    raise ServeError("unreachable", f"{self.url}: no server took the session in time ({e})") from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _drop(self) -> None:
        if self._ws is not None:
            connection, self._ws, self._connection = self._connection, None, None
            with contextlib.suppress(OSError, ConnectionClosed, RuntimeError):  # already broken: nothing to close
                connection.__exit__(None, None, None)

    def __enter__(self) -> ResumingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._drop()
