"""The protocol's session operations, whatever carries the messages (``rnnedge serve``'s sockets, Ray Serve).

A :class:`Conversation` is one client connection as the operations see it: a way to send it text
and the session it holds. :class:`SessionOps` answers one request message at a time, against the
models' :class:`~rnnedge.serve.batcher.ModelWorker`\\ s; the transport reads messages, enforces its
size limit and close codes, and calls :meth:`SessionOps.answer`. See :mod:`rnnedge.serve.protocol`.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnedge.runtime import InputError, RnnEdgeError, StateError

from .batcher import ModelWorker
from .config import ServeConfig
from .metrics import Metrics
from .outcomes import top_k_pairs
from .protocol import ProtocolError, Request, parse_request, reply_text
from .sampling import Pcg32, sample
from .tokens import decode_state, encode_state

__all__ = ["Conversation", "Session", "SessionOps"]

log = logging.getLogger("rnnedge.serve")

_DEFAULT_K = 5


@dataclass
class Session:
    key: str
    worker: ModelWorker
    strict: bool
    last: np.ndarray | None = None  # the latest distribution (V,), for top_k and generate


@dataclass(eq=False)
class Conversation:
    """One connection: ``send`` hands the client a text frame; at most one session at a time."""

    send: Callable[[str], Awaitable[None]]
    session: Session | None = None
    busy: bool = False  # a request is being answered
    draining: bool = False  # the server is shutting down: a generation stops after its current word
    last_seen: float = 0.0  # time.monotonic() of the last message (for the idle timeout)


class SessionOps:
    """Answers requests on conversations, against one worker per served model."""

    def __init__(
        self,
        workers: Mapping[str, ModelWorker],
        config: ServeConfig,
        metrics: Metrics,
        gone: tuple[type[BaseException], ...],
    ) -> None:
        """``gone``: the transport's exceptions for a client that left, passed through to the transport."""
        self.workers = workers
        self._gone = gone
        self.config = config
        self.metrics = metrics
        self._keys = itertools.count(1)
        self._timers: dict[str, Any] = {}
        self._ops: dict[str, Callable[[Conversation, Request], Awaitable[None]]] = {
            "open": self._open,
            "feed": self._feed,
            "top_k": self._top_k,
            "generate": self._generate,
            "state": self._state,
            "close": self._close,
        }

    async def answer(self, conv: Conversation, text: str) -> None:
        """Answer one request message; a refused one gets an ``error`` reply and changes nothing."""
        arrived = time.perf_counter()
        request_id: object = None
        op = "malformed"
        try:
            request = parse_request(text)
            request_id, op = request.id, request.op
            await self._ops[op](conv, request)
        except ProtocolError as e:
            await self._error(conv, e.code, str(e), e.request_id if request_id is None else request_id)
        except StateError as e:
            await self._error(conv, "state", str(e), request_id)
        except InputError as e:  # the runtime's message; the session's state is as it was
            await self._error(conv, "input", str(e), request_id)
        except self._gone:
            raise  # the client left mid-request: the transport ends its session
        except Exception as e:
            log.exception("request failed")  # a bug: logged, reported, the state is unchanged
            await self._error(conv, "internal", f"{type(e).__name__}: {e}", request_id)
        finally:
            timer = self._timers.get(op)
            if timer is None:  # one labelled child per op, looked up once (labels() takes a lock each call)
                timer = self._timers[op] = self.metrics.request_seconds.labels(op)
            timer.observe(time.perf_counter() - arrived)

    async def end(self, conv: Conversation) -> None:
        """The connection is gone: drop its session (its state is lost unless the client kept a token)."""
        s = conv.session
        if s is None:
            return
        conv.session = None
        self.metrics.sessions.labels(s.worker.name).dec()
        try:
            await s.worker.remove(s.key)
        except RnnEdgeError:
            log.exception("removing session %s", s.key)

    async def goodbye(self, conv: Conversation) -> dict[str, Any]:
        """The ``shutdown`` message for a conversation: its session's state token, if it holds one."""
        message: dict[str, Any] = {"op": "shutdown", "message": "server shutting down; reopen the session elsewhere"}
        s = conv.session
        if s is not None:
            message["token"] = await self._token(s)
            message["message"] += " from this token"
        return message

    # -- replies -----------------------------------------------------------------------------
    async def _error(self, conv: Conversation, code: str, message: str, request_id: object) -> None:
        self.metrics.errors.labels(code).inc()
        await conv.send(reply_text({"op": "error", "id": request_id, "error": code, "message": message}))

    async def _token(self, s: Session) -> str:
        state = await s.worker.call(lambda b: b.state(s.key))
        return encode_state(state, self.config.token_key)

    # -- the ops -----------------------------------------------------------------------------
    @staticmethod
    def _session(conv: Conversation, request: Request) -> Session:
        if conv.session is None:
            raise ProtocolError("no_session", f"{request.op}: no session open on this connection: send open first")
        return conv.session

    async def _open(self, conv: Conversation, request: Request) -> None:
        if conv.session is not None:
            raise ProtocolError(
                "already_open", "open: this connection already holds a session (one per connection): close it first"
            )
        name = request.fields.get("model")
        if name is None:
            if len(self.workers) > 1:
                raise ProtocolError("bad_request", f"open: name a model: this server serves {', '.join(self.workers)}")
            name = next(iter(self.workers))
        worker = self.workers.get(name)
        if worker is None:
            raise ProtocolError(
                "unknown_model", f"open: no model {name!r}; this server serves {', '.join(self.workers)}"
            )
        token = request.fields.get("token")
        state = None if token is None else decode_state(token, worker.model, self.config.token_key)
        key = f"s{next(self._keys)}"
        await worker.add(key, state)
        conv.session = Session(key, worker, bool(request.fields.get("strict", False)))
        self.metrics.sessions.labels(name).inc()
        model = worker.model
        reply = {"op": "opened", "id": request.id, "model": name, "kind": model.kind, "session": key}
        await conv.send(reply_text({**reply, **worker.kind.opened(model)}))

    def _k(self, s: Session, k: object) -> int:
        size = len(s.worker.labels)
        if k is None:
            return min(_DEFAULT_K, size)
        assert isinstance(k, int)
        if k > size:
            raise ProtocolError("bad_request", f"top_k must be an int in [1, {size}], got {k}")
        return k

    def _input(self, s: Session, value: Any) -> tuple[np.ndarray, int]:
        """A feed's ``input`` -> what the worker feeds and its number of steps, within --max-feed-steps."""
        x, length = s.worker.kind.read_input(s.worker.model, value, s.strict)
        limit = self.config.max_feed_steps
        if length > limit:
            raise ProtocolError(
                "limit",
                f"feed: {length} {s.worker.kind.unit} in one feed, over the limit of {limit} (--max-feed-steps)",
            )
        return x, length

    async def _feed(self, conv: Conversation, request: Request) -> None:
        s = self._session(conv, request)
        f = request.fields
        k = self._k(s, f.get("top_k"))
        x, length = self._input(s, f["input"])
        outcome = await s.worker.feed(s.key, x, length, k)
        s.last = outcome.last
        reply: dict[str, Any] = {"op": "result", "id": request.id, "top_k": outcome.top_k}
        if f.get("probs"):
            reply["probs"] = outcome.probs.tolist()
        if f.get("token"):
            reply["token"] = await self._token(s)
        await conv.send(reply_text(reply))

    async def _top_k(self, conv: Conversation, request: Request) -> None:
        s = self._session(conv, request)
        k = self._k(s, request.fields.get("k"))
        if s.last is None:
            raise InputError("no prediction yet: feed at least one input after opening the session (or a token)")
        reply: dict[str, Any] = {"op": "result", "id": request.id, "top_k": top_k_pairs(s.last, s.worker.labels, k)}
        if request.fields.get("probs"):
            reply["probs"] = s.last.tolist()
        await conv.send(reply_text(reply))

    async def _generate(self, conv: Conversation, request: Request) -> None:
        s = self._session(conv, request)
        worker = s.worker
        if not worker.kind.generates:
            raise ProtocolError("unsupported", f"generate: {worker.model.kind} models do not generate words")
        f = request.fields
        max_words = f["max_words"]
        if max_words > self.config.max_generate_words:
            raise ProtocolError(
                "limit", f"generate: max_words {max_words} over the limit of {self.config.max_generate_words}"
            )
        size = len(worker.labels)
        top_k = f.get("top_k")
        if top_k is not None and top_k > size:
            raise ProtocolError("bad_request", f"generate: top_k must be an int in [1, {size}], got {top_k}")
        temperature = float(f.get("temperature", 1.0))
        if "prompt" in f:
            x, length = self._input(s, f["prompt"])
            s.last = (await worker.feed(s.key, x, length, 1)).last
        if s.last is None:
            raise InputError("generate continues from the session's last prediction: feed words first or pass a prompt")
        rng = Pcg32(f.get("seed"))  # the specified generator: the same words as the runtimes for a seed
        words: list[str] = []
        stopped = "max_words"
        for _ in range(max_words):
            if conv.draining:
                stopped = "shutdown"
                break
            choice = sample(s.last, temperature, top_k, rng)
            words.append(worker.labels[choice])
            await conv.send(reply_text({"op": "word", "id": request.id, "word": words[-1]}))
            s.last = (await worker.feed(s.key, np.array([choice], np.int64), 1, 1)).last
        await conv.send(reply_text({"op": "generated", "id": request.id, "words": words, "stopped": stopped}))

    async def _state(self, conv: Conversation, request: Request) -> None:
        s = self._session(conv, request)
        await conv.send(reply_text({"op": "state", "id": request.id, "token": await self._token(s)}))

    async def _close(self, conv: Conversation, request: Request) -> None:
        s = self._session(conv, request)
        conv.session = None
        self.metrics.sessions.labels(s.worker.name).dec()
        state = await s.worker.remove(s.key)
        await conv.send(
            reply_text({"op": "closed", "id": request.id, "token": encode_state(state, self.config.token_key)})
        )
