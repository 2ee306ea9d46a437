"""Continuous batching: one worker thread per model steps every pending feed in one ``StreamBatch`` call.

The event loop never runs the model. A connection hands its session's feed to the model's
:class:`ModelWorker` and awaits an asyncio future; the worker thread waits for the first pending
feed, then up to ``window`` seconds for more (stopping early at ``max_batch`` feeds, or when enough
sessions have one pending: see below), and advances them all in one ``StreamBatch.feed_stacked``.
Feeds arriving while a step runs form the next step. Sessions join and leave (``add``, ``remove``)
and their states are read between steps, in the same thread: a ``StreamBatch`` is used by one thread
only.

Two halves in flight: a step that waited for every session would run in lockstep with the event loop
(the step, then the loop sending every reply and reading every next feed, then the next step: one
core idle at each phase). From ``half_from`` sessions on, a step starts once half of them have a feed
pending, so one half steps in the worker (onnxruntime releases the GIL) while the loop answers the
other half and reads its next feeds. With fewer, a step's fixed cost (one onnxruntime call) outweighs
the overlap, and a step waits for every session. On cores busy with other work the loop cannot run
beside the step and halves only make the calls smaller: there ``half_from=0`` keeps the wait for every
session. A step's feeds go to the model in session-key order: a half that comes back whole steps
again with its states still stacked from its last step (``StreamBatch`` then neither gathers nor
scatters them).

The event loop never waits for the worker: a feed is appended to a deque (atomic), and the loop takes
the condition's lock only to wake the worker when the worker waits for that many feeds (the first
one, or a full batch), so a burst of 64 feeds costs one wake-up, not 64. Each step's results come
back in one ``call_soon_threadsafe``, each feed's as its kind's ``outcomes`` rule makes it from the
stacked result (:mod:`.outcomes`).

A feed advances its session by one or more steps; one call advances every stream by the same number,
so each step takes the oldest feed's length and the pending feeds of that length (the others wait
for the next step). If the model refuses anything in a step, every feed of it is retried alone, so
only the bad one fails, and, as ``StreamBatch.feed`` changes nothing when it raises, its session's
state is unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnedge.runtime import Model, RnnEdgeError, StreamBatch

from .kinds import ServeKind, serve_kind
from .metrics import Metrics
from .outcomes import FeedOutcome

__all__ = ["ModelWorker"]

log = logging.getLogger("rnnedge.serve")

_NEVER = 1 << 62  # a feed count the queue never reaches: the worker needs no wake-up


@dataclass(slots=True)
class _Feed:
    key: str
    x: np.ndarray  # what the kind's read_input made: ids (T,) int64, or rows, already checked
    length: int
    k: int
    future: asyncio.Future[Any]
    arrived: float = field(default_factory=time.perf_counter)


class ModelWorker:
    """A model's ``StreamBatch`` and the thread that steps it; every method is called from the event loop."""

    def __init__(
        self,
        name: str,
        model: Model,
        loop: asyncio.AbstractEventLoop,
        metrics: Metrics,
        max_batch: int,
        window: float,
        half_from: int = 0,
    ) -> None:
        """``half_from``: from this many sessions on, a step starts at half of them pending (0: never)."""
        self.name = name
        self.model = model
        self.kind: ServeKind = serve_kind(model)
        self.labels = self.kind.labels(model)
        self._batch: StreamBatch = model.stream_batch()  # inputs reach it checked: strict mode is the session's
        self._loop = loop
        self._max_batch = max_batch
        self._window = window
        self._half_from = half_from
        self._sessions = 0  # sessions in the batch, counted in the worker thread
        # this model's metric children, looked up once (labels() takes a lock each call)
        self._steps = metrics.steps.labels(name)
        self._tokens = metrics.tokens.labels(name)
        self._batch_size = metrics.batch_size.labels(name)
        self._step_seconds = metrics.step_seconds.labels(name)
        self._queue_seconds = metrics.queue_seconds.labels(name)
        self._cond = threading.Condition()
        self._feeds: deque[_Feed] = deque()  # appended by the loop, taken by the worker: deque ops are atomic
        self._control: deque[tuple[Callable[[StreamBatch], Any], asyncio.Future[Any]]] = deque()
        self._wake_at = _NEVER  # the loop wakes the worker once this many feeds are pending
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"rnnedge-serve-{name}", daemon=True)
        self._thread.start()

    # -- from the event loop -------------------------------------------------------------------
    def call(self, fn: Callable[[StreamBatch], Any]) -> asyncio.Future[Any]:
        """Run ``fn(batch)`` in the worker between steps (add, remove, read a state); its result or error."""
        future = self._loop.create_future()
        self._control.append((fn, future))
        with self._cond:
            self._cond.notify()
        return future

    def add(self, key: str, state: Any) -> asyncio.Future[Any]:
        """Start session ``key`` (from ``state``, or the initial state when ``None``)."""
        return self.call(lambda b: self._add(b, key, state))

    def remove(self, key: str) -> asyncio.Future[Any]:
        """End session ``key``; resolves to its last state."""
        return self.call(lambda b: self._remove(b, key))

    def feed(self, key: str, x: np.ndarray, length: int, k: int) -> asyncio.Future[FeedOutcome]:
        """Queue one feed of ``length`` steps for session ``key``; resolves to a :class:`FeedOutcome`."""
        future: asyncio.Future[FeedOutcome] = self._loop.create_future()
        self._feeds.append(_Feed(key, x, length, k, future))
        if len(self._feeds) >= self._wake_at:
            with self._cond:
                self._cond.notify()
        return future

    def stop(self, timeout: float) -> None:
        """Finish everything queued, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    # -- in the worker thread ------------------------------------------------------------------
    def _add(self, batch: StreamBatch, key: str, state: Any) -> None:
        batch.add(key, state)
        self._sessions += 1

    def _remove(self, batch: StreamBatch, key: str) -> Any:
        state = batch.remove(key)
        self._sessions -= 1
        return state

    def _run(self) -> None:
        while True:
            with self._cond:
                self._wake_at = 1  # set before looking: a feed appended after the look notifies
                while not self._feeds and not self._control and not self._stopping:
                    self._cond.wait()
                self._wake_at = _NEVER
                if self._stopping and not self._feeds and not self._control:
                    return
            settled = []
            while self._control:
                fn, future = self._control.popleft()
                settled.append(self._control_op(fn, future))
            if settled:
                self._settle(settled)
            group = self._next_group()
            if group:
                self._settle(self._step(group))

    def _control_op(self, fn: Callable[[StreamBatch], Any], future: asyncio.Future[Any]) -> tuple[Any, ...]:
        try:
            return (future, True, fn(self._batch))
        except Exception as e:  # handed back to the awaiting connection, which reports it
            return (future, False, e)

    def _next_group(self) -> list[_Feed]:
        """The feeds of the next step: wait out the window, then the oldest feed's length, up to max_batch."""
        if not self._feeds:
            return []
        sessions = self._sessions
        wanted = (sessions + 1) // 2 if 0 < self._half_from <= sessions else sessions
        full = max(1, min(self._max_batch, wanted))
        deadline = self._feeds[0].arrived + self._window
        with self._cond:
            self._wake_at = full
            while len(self._feeds) < full and not self._control and not self._stopping:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._wake_at = _NEVER
        length = self._feeds[0].length
        group: list[_Feed] = []
        rest: list[_Feed] = []
        for _ in range(len(self._feeds)):  # feeds appended meanwhile stay behind these, in order
            f = self._feeds.popleft()
            (group if f.length == length and len(group) < self._max_batch else rest).append(f)
        self._feeds.extendleft(reversed(rest))
        group.sort(key=_session_key)  # stable: feeds of one session (one at a time, in practice) keep their order
        return group

    def _step(self, group: list[_Feed]) -> list[tuple[Any, ...]]:
        start = time.perf_counter()
        try:
            results = self._batch.feed_stacked({f.key: f.x for f in group})  # (N, V), or (N, T, C) per frame
        except RnnEdgeError as e:
            if len(group) == 1:
                return [(group[0].future, False, e)]
            settled: list[tuple[Any, ...]] = []
            for f in group:  # each alone: only the bad feed fails, the others advance as they would have
                settled.extend(self._step([f]))
            return settled
        except Exception as e:  # not a user error: log it; no state changed (feed raised)
            log.exception("step of %d feed(s) on %s failed", len(group), self.name)
            return [(f.future, False, e) for f in group]
        elapsed = time.perf_counter() - start
        self._steps.inc()
        self._tokens.inc(len(group) * group[0].length)
        self._batch_size.observe(len(group))
        self._step_seconds.observe(elapsed)
        queue = self._queue_seconds
        settled = []
        for f, outcome in zip(group, self.kind.outcomes(results, [f.k for f in group], self.labels), strict=True):
            queue.observe(start - f.arrived)
            settled.append((f.future, True, outcome))
        return settled

    def _settle(self, settled: list[tuple[Any, ...]]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(_settle_all, settled)


def _session_key(feed: _Feed) -> str:
    return feed.key


def _settle_all(settled: list[tuple[Any, ...]]) -> None:
    for future, ok, value in settled:
        if future.done():  # its connection's handler was cancelled
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
