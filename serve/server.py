"""``rnnedge serve``: many live streams over WebSocket, each model's pending feeds batched into one call.

One asyncio event loop holds the connections (the ``websockets`` library's asyncio API; its
``process_request`` hook answers the two HTTP routes, ``/healthz`` and ``/metrics``, on the same
port, so the service needs no web framework). One :class:`~rnnedge.serve.batcher.ModelWorker`
thread per model runs the model; the loop never does. A connection holds at most one session;
its requests are answered in order. See :mod:`rnnedge.serve.protocol` for the messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.server import Server as WebSocketServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response

from rnnedge.runtime import (
    ConfigError,
    InputError,
    LanguageModel,
    Model,
    RnnEdgeError,
    StateError,
    load,
)

from .batcher import ModelWorker, result_fields
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .protocol import (
    CLOSE_BINARY,
    CLOSE_FULL,
    CLOSE_IDLE,
    CLOSE_SHUTDOWN,
    ProtocolError,
    Request,
    parse_request,
)
from .sampling import Pcg32, sample
from .tokens import decode_state, encode_state

__all__ = ["ServeConfig", "Server", "run"]

log = logging.getLogger("rnnedge.serve")

_DEFAULT_K = 5
SWITCH_INTERVAL = 0.0005  # seconds (see run)


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one server; the command line's options map one to one onto these fields."""

    host: str = "127.0.0.1"
    port: int = 8765  # 0: any free port (the ready line names it)
    max_batch: int = 64  # sessions advanced per model call at most
    batch_window_ms: float = 2.0  # how long a step waits for more feeds after the first (0: none)
    max_sessions: int = 1024  # open connections (one session each) at most; more are closed with 1013
    max_message_bytes: int = 65536  # a larger message closes the connection with 1009
    idle_timeout: float = 300.0  # seconds without a message before the server closes with 4001
    max_feed_steps: int = 512  # tokens or rows in one feed
    max_generate_words: int = 256
    shutdown_timeout: float = 10.0  # on SIGTERM: how long in-flight requests get to finish
    threads: int = 1  # onnxruntime intra-op threads per model
    provider: str = "cpu"
    token_key: bytes | None = field(default=None, repr=False)  # sign and check state tokens (HMAC-SHA256)

    def __post_init__(self) -> None:
        problems = []
        for name in ("max_batch", "max_sessions", "max_feed_steps", "max_generate_words", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                problems.append(f"{name}={v!r} (expected an int >= 1)")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            problems.append(f"port={self.port!r} (expected an int in [0, 65535])")
        size = self.max_message_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size < 1024:
            problems.append(f"max_message_bytes={self.max_message_bytes!r} (expected an int >= 1024)")
        for name, lo in (("batch_window_ms", 0.0), ("idle_timeout", 1e-3), ("shutdown_timeout", 0.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < lo:
                problems.append(f"{name}={v!r} (expected a finite number >= {lo:g})")
        if self.token_key is not None and (not isinstance(self.token_key, bytes) or len(self.token_key) < 16):
            problems.append("token_key: expected at least 16 bytes")
        if problems:
            raise ConfigError("serve: " + "; ".join(problems))


@dataclass
class _Session:
    key: str
    worker: ModelWorker
    strict: bool
    last: np.ndarray | None = None  # the latest prediction (V,), for top_k and generate


@dataclass(eq=False)
class _Connection:
    ws: ServerConnection
    session: _Session | None = None
    busy: bool = False  # a request is being answered
    draining: bool = False
    goodbye: asyncio.Task[None] | None = None


class Server:
    """Serves loaded models; :meth:`start`, then :meth:`wait_stopped` (SIGTERM or :meth:`request_shutdown`)."""

    def __init__(self, model_paths: Sequence[Path], config: ServeConfig) -> None:
        if not model_paths:
            raise ConfigError("serve: name at least one model file")
        self.config = config
        self.metrics = Metrics()
        self._models: dict[str, Model] = {}
        for path in model_paths:
            name = Path(path).stem
            if name in self._models:
                raise ConfigError(f"serve: two model files are named {name!r} (models are addressed by file stem)")
            model = load(path, provider=config.provider, threads=config.threads)
            model.stream_batch()  # refuses a non-causal model here, with the runtime's reason
            self._models[name] = model
        self._workers: dict[str, ModelWorker] = {}
        self._conns: set[_Connection] = set()
        self._ws_server: WebSocketServer | None = None
        self._draining = False
        self._stopped: asyncio.Event | None = None
        self._next_key = 0
        self.port = 0

    @property
    def model_names(self) -> list[str]:
        return list(self._models)

    # -- life cycle ------------------------------------------------------------------------
    async def start(self) -> int:
        """Start the workers and listen; return the port."""
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        window = self.config.batch_window_ms / 1000
        for name, model in self._models.items():
            self._workers[name] = ModelWorker(name, model, loop, self.metrics, self.config.max_batch, window)
            self.metrics.start_model(name)
        try:
            self._ws_server = await serve(
                self._handle,
                self.config.host,
                self.config.port,
                process_request=self._http,
                max_size=self.config.max_message_bytes,
                compression=None,  # deflate costs CPU per message and shrinks neither probabilities nor states much
            )
        except OSError as e:  # the port is taken, the address is not this machine's, ...
            for worker in self._workers.values():
                worker.stop(1.0)
            raise ConfigError(
                f"serve: cannot listen on {self.config.host}:{self.config.port}: {e.strerror or e}"
            ) from None
        self.port = int(self._ws_server.sockets[0].getsockname()[1])
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
        assert self._ws_server is not None and self._stopped is not None
        self._ws_server.close(close_connections=False)  # the listening socket closes now; new connections fail
        for conn in list(self._conns):
            conn.draining = True
            if not conn.busy:
                self._start_goodbye(conn)
        try:
            await asyncio.wait_for(self._ws_server.wait_closed(), self.config.shutdown_timeout)
        except (TimeoutError, asyncio.TimeoutError):  # distinct types on Python 3.10
            log.warning(
                "shutdown: %d connection(s) still open after %.1f s, cut",
                len(self._conns),
                self.config.shutdown_timeout,
            )
            for conn in list(self._conns):
                conn.ws.transport.abort()
        for worker in self._workers.values():
            await asyncio.to_thread(worker.stop, self.config.shutdown_timeout)
        for model in self._models.values():
            model.close()
        self._stopped.set()

    def _start_goodbye(self, conn: _Connection) -> None:
        if conn.goodbye is None:
            conn.goodbye = asyncio.get_running_loop().create_task(self._say_goodbye(conn))

    async def _say_goodbye(self, conn: _Connection) -> None:
        message: dict[str, Any] = {"op": "shutdown", "message": "server shutting down; reopen the session elsewhere"}
        try:
            if conn.session is not None:
                s = conn.session
                message["token"] = await s.worker.call(lambda b: encode_state(b.state(s.key), self.config.token_key))
                message["message"] += " from this token"
            await conn.ws.send(json.dumps(message, separators=(",", ":")))
            self.metrics.closes.labels(str(CLOSE_SHUTDOWN)).inc()
            await conn.ws.close(CLOSE_SHUTDOWN, "server shutting down")
        except ConnectionClosed:
            pass

    # -- HTTP routes -----------------------------------------------------------------------
    def _http(self, connection: ServerConnection, request: HttpRequest) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return connection.respond(503, "draining\n") if self._draining else connection.respond(200, "ok\n")
        if path == "/metrics":
            body = self.metrics.text()
            headers = Headers([("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
            return Response(200, "OK", headers, body)
        return None  # a WebSocket handshake (any other path)

    # -- one connection --------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        if self._draining:
            await ws.close(CLOSE_SHUTDOWN, "server shutting down")
            return
        if len(self._conns) >= self.config.max_sessions:
            self.metrics.closes.labels(str(CLOSE_FULL)).inc()
            await ws.close(
                CLOSE_FULL, f"server full: {len(self._conns)} sessions open (--max-sessions); try again later"
            )
            return
        conn = _Connection(ws)
        self._conns.add(conn)
        self.metrics.connections.inc()
        try:
            await self._serve_connection(conn)
        finally:
            if conn.goodbye is not None:
                await conn.goodbye
            if conn.session is not None:
                await self._end_session(conn)
            self._conns.discard(conn)
            self.metrics.connections.dec()

    async def _serve_connection(self, conn: _Connection) -> None:
        ws = conn.ws
        while True:
            try:
                async with _timeout(self.config.idle_timeout):
                    message = await ws.recv()
            except TimeoutError:
                self.metrics.closes.labels(str(CLOSE_IDLE)).inc()
                await ws.close(CLOSE_IDLE, f"idle for {self.config.idle_timeout:g} s (--idle-timeout)")
                return
            except ConnectionClosed:
                return  # includes 1009, a message over --max-message-bytes (the library closes)
            if conn.draining:
                return  # the goodbye is under way: it sends the state token and closes
            if isinstance(message, bytes):
                self.metrics.closes.labels(str(CLOSE_BINARY)).inc()
                await ws.close(CLOSE_BINARY, "binary frames are not part of the protocol: send JSON text")
                return
            conn.busy = True
            try:
                await self._answer(conn, message)
            except ConnectionClosed:
                return  # the client left mid-request: its session ends in _handle
            finally:
                conn.busy = False
            if conn.draining:
                self._start_goodbye(conn)
                return

    async def _end_session(self, conn: _Connection) -> None:
        s = conn.session
        assert s is not None
        conn.session = None
        self.metrics.sessions.labels(s.worker.name).dec()
        try:
            await s.worker.call(lambda b: b.remove(s.key))
        except RnnEdgeError:
            log.exception("removing session %s", s.key)

    async def _answer(self, conn: _Connection, text: str) -> None:
        request_id: object = None
        try:
            request = parse_request(text)
            request_id = request.id
            await _OPS[request.op](self, conn, request)
        except ProtocolError as e:
            await self._error(conn, e.code, str(e), e.request_id if request_id is None else request_id)
        except StateError as e:
            await self._error(conn, "state", str(e), request_id)
        except InputError as e:  # the runtime's message; the session's state is as it was
            await self._error(conn, "input", str(e), request_id)
        except ConnectionClosed:
            raise
        except Exception as e:  # a bug: logged, reported, the state is unchanged (feeds change nothing when they raise)
            log.exception("request failed")
            await self._error(conn, "internal", f"{type(e).__name__}: {e}", request_id)

    async def _error(self, conn: _Connection, code: str, message: str, request_id: object) -> None:
        self.metrics.errors.labels(code).inc()
        await self._send(conn, {"op": "error", "id": request_id, "error": code, "message": message})

    @staticmethod
    async def _send(conn: _Connection, reply: dict[str, Any]) -> None:
        if reply.get("id") is None:
            reply.pop("id", None)
        await conn.ws.send(json.dumps(reply, separators=(",", ":")))

    # -- the ops ---------------------------------------------------------------------------
    def _session(self, conn: _Connection, request: Request) -> _Session:
        if conn.session is None:
            raise ProtocolError("no_session", f"{request.op}: no session open on this connection: send open first")
        return conn.session

    async def _op_open(self, conn: _Connection, request: Request) -> None:
        if conn.session is not None:
            raise ProtocolError(
                "no_session", "open: this connection already holds a session (one per connection): close it first"
            )
        name = request.fields.get("model")
        if name is None:
            if len(self._workers) > 1:
                raise ProtocolError("bad_request", f"open: name a model: this server serves {', '.join(self._workers)}")
            name = next(iter(self._workers))
        worker = self._workers.get(name)
        if worker is None:
            raise ProtocolError(
                "unknown_model", f"open: no model {name!r}; this server serves {', '.join(self._workers)}"
            )
        token = request.fields.get("token")
        state = None if token is None else decode_state(token, worker.model, self.config.token_key)
        self._next_key += 1
        key = f"s{self._next_key}"
        await worker.call(lambda b: b.add(key, state))
        conn.session = _Session(key, worker, bool(request.fields.get("strict", False)))
        self.metrics.sessions.labels(name).inc()
        model = worker.model
        reply: dict[str, Any] = {"op": "opened", "id": request.id, "model": name, "kind": model.kind, "session": key}
        if isinstance(model, LanguageModel):
            reply["vocab_size"] = model.vocab_size
        else:
            reply["labels"] = list(worker.labels)
        await self._send(conn, reply)

    def _k(self, s: _Session, k: object) -> int:
        size = len(s.worker.labels)
        if k is None:
            return min(_DEFAULT_K, size)
        assert isinstance(k, int)
        if k > size:
            raise ProtocolError("bad_request", f"top_k must be an int in [1, {size}], got {k}")
        return k

    def _input(self, s: _Session, value: Any) -> tuple[np.ndarray, int]:
        """A feed's ``input`` -> what the worker feeds (ids ``(T,)`` or rows) and its number of steps ``T``."""
        model = s.worker.model
        limit = self.config.max_feed_steps
        if isinstance(model, LanguageModel):
            if isinstance(value, str) or (isinstance(value, list) and value and all(isinstance(w, str) for w in value)):
                ids = model.encode(value, strict=s.strict)
            elif isinstance(value, list):
                ids = model.check_ids(value)
            else:
                raise InputError(f"input must be words (a string or a list of strings) or token ids, got {value!r:.60}")
            if ids.size > limit:
                raise ProtocolError(
                    "limit", f"feed: {ids.size} tokens in one feed, over the limit of {limit} (--max-feed-steps)"
                )
            return ids, int(ids.size)
        rows = _rows(value, pixels=model.metadata.preprocessing is not None)
        length = model.stream_input(rows).shape[1]  # the runtime's checks, nothing advanced
        if length > limit:
            raise ProtocolError(
                "limit", f"feed: {length} rows in one feed, over the limit of {limit} (--max-feed-steps)"
            )
        return (rows[0] if rows.ndim == 2 and rows.shape[0] == 1 else rows), length

    async def _op_feed(self, conn: _Connection, request: Request) -> None:
        s = self._session(conn, request)
        k = self._k(s, request.fields.get("top_k"))
        x, length = self._input(s, request.fields["input"])
        outcome = await s.worker.feed(s.key, x, length, k, bool(request.fields.get("probs", False)))
        s.last = outcome.probs
        await self._send(conn, {"op": "result", "id": request.id, **outcome.fields})

    async def _op_top_k(self, conn: _Connection, request: Request) -> None:
        s = self._session(conn, request)
        k = self._k(s, request.fields.get("k"))
        if s.last is None:
            raise InputError("no prediction yet: feed at least one input after opening the session (or a token)")
        fields = result_fields(s.last, s.worker.labels, k, bool(request.fields.get("probs", False)))
        await self._send(conn, {"op": "result", "id": request.id, **fields})

    async def _op_generate(self, conn: _Connection, request: Request) -> None:
        s = self._session(conn, request)
        model = s.worker.model
        if not isinstance(model, LanguageModel):
            raise ProtocolError("unsupported", f"generate: {model.kind} models do not generate words")
        f = request.fields
        max_words = f["max_words"]
        if max_words > self.config.max_generate_words:
            raise ProtocolError(
                "limit", f"generate: max_words {max_words} over the limit of {self.config.max_generate_words}"
            )
        top_k = f.get("top_k")
        if top_k is not None and top_k > model.vocab_size:
            raise ProtocolError(
                "bad_request", f"generate: top_k must be an int in [1, {model.vocab_size}], got {top_k}"
            )
        temperature = float(f.get("temperature", 1.0))
        if "prompt" in f:
            x, length = self._input(s, f["prompt"])
            s.last = (await s.worker.feed(s.key, x, length, 1, False)).probs
        if s.last is None:
            raise InputError("generate continues from the session's last prediction: feed words first or pass a prompt")
        rng = Pcg32(f.get("seed"))
        words: list[str] = []
        stopped = "max_words"
        for _ in range(max_words):
            if conn.draining:
                stopped = "shutdown"
                break
            choice = sample(s.last, temperature, top_k, rng)
            words.append(model.vocabulary[choice])
            await self._send(conn, {"op": "word", "id": request.id, "word": words[-1]})
            s.last = (await s.worker.feed(s.key, np.array([choice], np.int64), 1, 1, False)).probs
        await self._send(conn, {"op": "generated", "id": request.id, "words": words, "stopped": stopped})

    async def _op_state(self, conn: _Connection, request: Request) -> None:
        s = self._session(conn, request)
        token = await s.worker.call(lambda b: encode_state(b.state(s.key), self.config.token_key))
        await self._send(conn, {"op": "state", "id": request.id, "token": token})

    async def _op_close(self, conn: _Connection, request: Request) -> None:
        s = self._session(conn, request)
        conn.session = None
        self.metrics.sessions.labels(s.worker.name).dec()
        state = await s.worker.call(lambda b: b.remove(s.key))
        await self._send(conn, {"op": "closed", "id": request.id, "token": encode_state(state, self.config.token_key)})


def _timeout(seconds: float) -> Any:
    """``asyncio.timeout`` (3.11+: no task per call); on 3.10, the same with ``wait_for`` semantics."""
    if sys.version_info >= (3, 11):
        return asyncio.timeout(seconds)
    return _Timeout310(seconds)


class _Timeout310:
    """A minimal ``asyncio.timeout`` for Python 3.10: cancels the current task, raises ``TimeoutError``."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._handle: asyncio.TimerHandle | None = None
        self._fired = False

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        assert task is not None

        def fire() -> None:
            self._fired = True
            task.cancel()

        self._handle = asyncio.get_running_loop().call_later(self._seconds, fire)

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> bool:
        assert self._handle is not None
        self._handle.cancel()
        if self._fired and exc_type is asyncio.CancelledError:
            raise TimeoutError
        return False


_OPS: dict[str, Callable[[Server, _Connection, Request], Any]] = {
    "open": Server._op_open,
    "feed": Server._op_feed,
    "top_k": Server._op_top_k,
    "generate": Server._op_generate,
    "state": Server._op_state,
    "close": Server._op_close,
}


def _rows(value: Any, pixels: bool) -> np.ndarray:
    """A classifier feed's JSON rows -> an array of the values the model takes.

    ``pixels`` (a format-1 file's ``preprocessing``): ints are 0..255 pixels, floats intensities in
    [0, 1]. Otherwise every value is raw (the file's ``standardize`` applies); ints in 0..255 go as
    uint8, which the runtime standardises by one table look-up, with the same values.
    """
    if not isinstance(value, list):
        raise InputError(f"a classifier's input is one row (a list of numbers) or a list of rows, got {value!r:.60}")
    try:
        rows = np.array(value)
    except (ValueError, TypeError, OverflowError):
        raise InputError("rows must be lists of numbers, all of one length") from None
    if rows.dtype.kind in "iu":
        lo, hi = (int(rows.min()), int(rows.max())) if rows.size else (0, 0)
        if lo >= 0 and hi <= 255:
            return rows.astype(np.uint8)
        if pixels:
            raise InputError(
                f"pixels given as ints must be in [0, 255] (floats: in [0, 1]), got values in [{lo}, {hi}]"
            )
    return rows  # floats (float64), other ints: range-checked by the runtime; anything else refused there by dtype


def run(model_paths: Sequence[Path], config: ServeConfig, ready: Callable[[Server], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully. ``ready(server)`` once listening."""

    async def main() -> None:
        # The worker thread and the event loop share the GIL: a thread waiting for it takes it after the
        # switch interval at the latest, 5 ms by default, which would add up to 5 ms to a step's replies.
        sys.setswitchinterval(SWITCH_INTERVAL)
        server = Server(model_paths, config)
        await server.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.request_shutdown)
        if ready is not None:
            ready(server)
        await server.wait_stopped()

    asyncio.run(main())


def print_ready(server: Server) -> None:
    """The ready line on stderr (tests and scripts read the port from it)."""
    print(
        f"rnnedge serve: listening on ws://{server.config.host}:{server.port} "
        f"(models: {', '.join(server.model_names)}; /healthz, /metrics)",
        file=sys.stderr,
        flush=True,
    )
