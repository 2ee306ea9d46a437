"""``rnnedge serve``'s life cycle: load models, start their workers, listen, hold connections, drain on SIGTERM.

One asyncio event loop holds the connections, each a :class:`~rnnedge.serve.link.Link` of the
WebSocket library in use (:func:`~rnnedge.serve.speedups.listener`: picows with the ``serve-fast``
extra, else ``websockets``), and answers the HTTP routes of :mod:`.routes` on the same port, so the
service needs no web framework. One :class:`~rnnedge.serve.batcher.ModelWorker` thread per model
runs the model; the loop never does. A connection holds at most one session; its requests are
answered in order by :class:`~rnnedge.serve.sessions.SessionOps`. See :mod:`rnnedge.serve.protocol`
for the messages.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rnnedge.runtime import ConfigError, Model, load

from .batcher import ModelWorker
from .config import ServeConfig
from .link import HttpReply, Link, LinkClosed, Listener
from .metrics import Metrics
from .protocol import CLOSE_BINARY, CLOSE_FULL, CLOSE_IDLE, CLOSE_SHUTDOWN, reply_text
from .routes import http_route
from .sessions import Conversation, SessionOps
from .speedups import listener, run_loop

__all__ = ["ServeConfig", "Server", "load_models", "print_ready", "raise_open_file_limit", "run", "session_room"]

log = logging.getLogger("rnnedge.serve")

# Descriptors the process needs besides its sessions' sockets: the listening socket, the model files,
# stdio, /metrics and /healthz requests, connections being refused with 1013.
_SPARE_FILES = 64


def _open_file_limit() -> tuple[int, int] | None:
    """(soft, hard) limit on open files, or None where there is none to read (Windows) or it is unlimited."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else (soft, hard)


def raise_open_file_limit(max_sessions: int) -> None:
    """Let this process open a file per session and spares, within the hard limit (for a command that owns it)."""
    limits = _open_file_limit()
    wanted = max_sessions + _SPARE_FILES
    if limits is None or limits[0] >= wanted:
        return
    import resource

    hard = limits[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))


def session_room(max_sessions: int) -> int:
    """Sessions the open-file limit leaves room for, at most ``max_sessions``.

    Past the limit the listening socket cannot accept: asyncio retries after a second, picows'
    accept loop at once (a core busy logging the error). Holding the sessions below it closes the
    extra connections with 1013 instead.
    """
    limits = _open_file_limit()
    return max_sessions if limits is None else max(1, min(max_sessions, limits[0] - _SPARE_FILES))


def load_models(model_paths: Sequence[Path], config: ServeConfig) -> dict[str, Model]:
    """The models to serve by file stem; refuses two files of one stem and models ``StreamBatch`` cannot step."""
    if not model_paths:
        raise ConfigError("serve: name at least one model file")
    models: dict[str, Model] = {}
    for path in model_paths:
        name = Path(path).stem
        if name in models:
            raise ConfigError(f"serve: two model files are named {name!r} (models are addressed by file stem)")
        model = load(path, provider=config.provider, threads=config.threads)
        if not model.causal:  # its streams re-read their prefixes: no batched step (StreamBatch refuses it)
            raise ConfigError(
                f"serve: {path} is a {model.kind} model (each result reads later steps of its sequence); rnnedge "
                "serve serves causal models only: export a causal one (train without --bidirectional or --conv, or "
                "--tune --causal), "
                "or classify whole sequences with rnnedge classify"
            )
        models[name] = model
    return models


class Server:
    """Serves loaded models; :meth:`start`, then :meth:`wait_stopped` (SIGTERM or :meth:`request_shutdown`)."""

    def __init__(self, model_paths: Sequence[Path], config: ServeConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self._models = load_models(model_paths, config)
        self._max_sessions = session_room(config.max_sessions)
        if self._max_sessions < config.max_sessions:
            log.warning(
                "serve: --max-sessions %d, but the open-file limit (ulimit -n) leaves room for %d: more connections "
                "are closed with 1013; raise the limit to serve more",
                config.max_sessions,
                self._max_sessions,
            )
        self._workers: dict[str, ModelWorker] = {}
        self._ops: SessionOps | None = None
        self._conns: dict[Conversation, Link] = {}
        self._goodbyes: dict[Conversation, asyncio.Task[None]] = {}
        self._listener: Listener | None = None
        self._links = 0  # connections whose handler runs (refused ones too, until their close is done)
        self._all_closed: asyncio.Event | None = None  # set while none does
        self._draining = False
        self._stopped: asyncio.Event | None = None
        self._idle_sweeper: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def model_names(self) -> list[str]:
        return list(self._models)

    async def start(self) -> int:
        """Start the workers and listen; return the port."""
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        window = self.config.batch_window_ms / 1000
        for name, model in self._models.items():
            self._workers[name] = ModelWorker(
                name, model, loop, self.metrics, self.config.max_batch, window, self.config.half_batch_from
            )
            self.metrics.start_model(name)
        self._ops = SessionOps(self._workers, self.config, self.metrics, gone=(LinkClosed,))
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        listen = listener()
        try:
            self._listener = await listen(
                self._handle, self._http, self.config.host, self.config.port, self.config.max_message_bytes
            )
        except OSError as e:  # the port is taken, the address is not this machine's, ...
            for worker in self._workers.values():
                worker.stop(1.0)
            raise ConfigError(
                f"serve: cannot listen on {self.config.host}:{self.config.port}: {e.strerror or e}"
            ) from None
        self.port = self._listener.port
        self._idle_sweeper = loop.create_task(self._close_idle())
        return self.port

    def request_shutdown(self) -> None:
        """Begin a graceful shutdown (what SIGTERM does)."""
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._shutdown())

    async def wait_stopped(self) -> None:
        assert self._stopped is not None
        await self._stopped.wait()

    async def _shutdown(self) -> None:
        """Stop listening; let in-flight requests finish; give each session its state token; close with 1001."""
        assert self._listener is not None and self._stopped is not None and self._all_closed is not None
        self._listener.stop_accepting()  # the listening socket closes now; new connections fail
        for conv, link in list(self._conns.items()):
            conv.draining = True
            if not conv.busy:
                self._start_goodbye(conv, link)
        try:
            await asyncio.wait_for(self._all_closed.wait(), self.config.shutdown_timeout)
        except (TimeoutError, asyncio.TimeoutError):  # distinct types on Python 3.10
            log.warning(
                "shutdown: %d connection(s) still open after %.1f s, cut",
                len(self._conns),
                self.config.shutdown_timeout,
            )
            for link in list(self._conns.values()):
                link.abort()
        if self._idle_sweeper is not None:
            self._idle_sweeper.cancel()
        for worker in self._workers.values():
            await asyncio.to_thread(worker.stop, self.config.shutdown_timeout)
        for model in self._models.values():
            model.close()
        self._stopped.set()

    def _start_goodbye(self, conv: Conversation, link: Link) -> None:
        if conv not in self._goodbyes:
            self._goodbyes[conv] = asyncio.get_running_loop().create_task(self._say_goodbye(conv, link))

    async def _say_goodbye(self, conv: Conversation, link: Link) -> None:
        assert self._ops is not None
        try:
            await link.send(reply_text(await self._ops.goodbye(conv)))
            await link.close(CLOSE_SHUTDOWN, "server shutting down")
        except LinkClosed:
            pass

    async def _close_idle(self) -> None:
        """Close connections silent for --idle-timeout with 4001: one sweep a tenth of it, no timer per message."""
        timeout = self.config.idle_timeout
        while True:
            await asyncio.sleep(min(timeout / 10, 1.0))
            now = time.monotonic()
            for conv, link in list(self._conns.items()):
                if not conv.busy and not conv.draining and now - conv.last_seen > timeout:
                    conv.last_seen = float("inf")  # closed once
                    asyncio.get_running_loop().create_task(
                        link.close(CLOSE_IDLE, f"idle for {timeout:g} s (--idle-timeout)")
                    )

    def _http(self, path: str) -> HttpReply | None:
        return http_route(path, self.metrics, self._draining)

    # -- one connection --------------------------------------------------------------------
    async def _handle(self, link: Link) -> None:
        assert self._all_closed is not None
        self._links += 1
        self._all_closed.clear()
        try:
            await self._hold(link)
        finally:
            self._links -= 1
            if not self._links:
                self._all_closed.set()

    async def _hold(self, link: Link) -> None:
        if self._draining:
            await link.close(CLOSE_SHUTDOWN, "server shutting down")
            self._count_close(link)
            return
        if len(self._conns) >= self._max_sessions:
            limit = "--max-sessions" if self._max_sessions == self.config.max_sessions else "the open-file limit"
            await link.close(CLOSE_FULL, f"server full: {len(self._conns)} sessions open ({limit}); try again later")
            self._count_close(link)
            return
        assert self._ops is not None
        conv = Conversation(link.send, last_seen=time.monotonic())
        self._conns[conv] = link
        self.metrics.connections.inc()
        try:
            await self._serve_connection(conv, link)
        finally:
            try:
                goodbye = self._goodbyes.pop(conv, None)
                if goodbye is not None:
                    await goodbye  # it reads the session's state: end the session after it
                await self._ops.end(conv)
            finally:  # whatever failed above, the connection no longer counts
                del self._conns[conv]
                self.metrics.connections.dec()
                self._count_close(link)

    def _count_close(self, link: Link) -> None:
        """Count the close code the server sent, whoever sent it (this code, or the library: 1009)."""
        code = link.close_code_sent()
        if code is not None:
            self.metrics.closes.labels(str(code)).inc()

    async def _serve_connection(self, conv: Conversation, link: Link) -> None:
        assert self._ops is not None
        while True:
            try:
                message = await link.recv()
            except LinkClosed:
                return  # the client left, or the server closed (idle, 1009: over --max-message-bytes)
            conv.last_seen = time.monotonic()
            if conv.draining:
                return  # the goodbye is under way: it sends the state token and closes
            if isinstance(message, bytes):
                await link.close(CLOSE_BINARY, "binary frames are not part of the protocol: send JSON text")
                return
            conv.busy = True
            try:
                await self._ops.answer(conv, message)
            except LinkClosed:
                return  # the client left mid-request: its session ends in _handle
            finally:
                conv.busy = False
            if conv.draining:
                self._start_goodbye(conv, link)
                return


def run(model_paths: Sequence[Path], config: ServeConfig, ready: Callable[[Server], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully. ``ready(server)`` once listening."""

    async def main() -> None:
        server = Server(model_paths, config)
        await server.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.request_shutdown)
        if ready is not None:
            ready(server)
        await server.wait_stopped()

    run_loop(main())


def print_ready(server: Server) -> None:
    """The ready line on stderr (tests and scripts read the port from it)."""
    print(
        f"rnnedge serve: listening on ws://{server.config.host}:{server.port} "
        f"(models: {', '.join(server.model_names)}; /healthz, /metrics)",
        file=sys.stderr,
        flush=True,
    )
