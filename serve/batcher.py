"""Continuous batching: one worker thread per model steps every pending feed in one ``StreamBatch`` call.

The event loop never runs the model. A connection hands its session's feed to the model's
:class:`ModelWorker` and awaits an asyncio future; the worker thread waits for the first pending
feed, then up to ``window`` seconds for more (stopping early at ``max_batch`` feeds, or when every
session of the model has one pending), and advances them all in one ``StreamBatch.feed``. Feeds
arriving while a step runs form the next step. Sessions join and leave (``add``, ``remove``) and
their states are read between steps, in the same thread: a ``StreamBatch`` is used by one thread only.

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

from rnnedge.runtime import ClassifierModel, LanguageModel, Model, RnnEdgeError, StreamBatch

from .metrics import Metrics
from .sampling import top_k_rows

__all__ = ["FeedOutcome", "ModelWorker"]

log = logging.getLogger("rnnedge.serve")


@dataclass(frozen=True)
class FeedOutcome:
    """What one feed gave: the probabilities ``(V,)`` (a copy the session keeps) and the reply's fields."""

    probs: np.ndarray
    fields: dict[str, Any]


@dataclass
class _Feed:
    key: str
    x: np.ndarray  # ids (T,) int64, or rows (F,) / (T, F) as the client sent them, already checked
    length: int
    k: int
    want_probs: bool
    future: asyncio.Future[Any]
    arrived: float = field(default_factory=time.perf_counter)


def labels_of(model: Model) -> tuple[str, ...]:
    """The names of a prediction's entries: the vocabulary of a language model, a classifier's labels."""
    if isinstance(model, LanguageModel):
        return tuple(model.vocabulary)
    if isinstance(model, ClassifierModel):
        return tuple(model.labels)
    raise TypeError(f"cannot serve a {type(model).__name__}")


def result_fields(probs: np.ndarray, labels: tuple[str, ...], k: int, want_probs: bool) -> dict[str, Any]:
    """A ``result`` reply's fields from probabilities ``(V,)``: ``top_k`` pairs, and ``probs`` if asked."""
    ids = top_k_rows(probs[None], k)[0]
    fields: dict[str, Any] = {"top_k": [[labels[i], float(probs[i])] for i in ids]}
    if want_probs:
        fields["probs"] = probs.tolist()
    return fields


class ModelWorker:
    """A model's ``StreamBatch`` and the thread that steps it; every method is called from the event loop."""

    def __init__(
        self, name: str, model: Model, loop: asyncio.AbstractEventLoop, metrics: Metrics, max_batch: int, window: float
    ) -> None:
        self.name = name
        self.model = model
        self.labels = labels_of(model)
        self._batch: StreamBatch = model.stream_batch()  # ids reach it checked: strict mode is the session's
        self._loop = loop
        self._metrics = metrics
        self._max_batch = max_batch
        self._window = window
        self._cond = threading.Condition()
        self._feeds: deque[_Feed] = deque()
        self._control: deque[tuple[Callable[[StreamBatch], Any], asyncio.Future[Any]]] = deque()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"rnnedge-serve-{name}", daemon=True)
        self._thread.start()

    # -- from the event loop -------------------------------------------------------------------
    def call(self, fn: Callable[[StreamBatch], Any]) -> asyncio.Future[Any]:
        """Run ``fn(batch)`` in the worker between steps (add, remove, read a state); its result or error."""
        future = self._loop.create_future()
        with self._cond:
            self._control.append((fn, future))
            self._cond.notify()
        return future

    def feed(self, key: str, x: np.ndarray, length: int, k: int, want_probs: bool) -> asyncio.Future[FeedOutcome]:
        """Queue one feed of ``length`` steps for session ``key``; resolves to a :class:`FeedOutcome`."""
        future: asyncio.Future[FeedOutcome] = self._loop.create_future()
        with self._cond:
            self._feeds.append(_Feed(key, x, length, k, want_probs, future))
            self._cond.notify()
        return future

    def stop(self, timeout: float) -> None:
        """Finish everything queued, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    # -- in the worker thread ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._feeds and not self._control and not self._stopping:
                    self._cond.wait()
                if self._stopping and not self._feeds and not self._control:
                    return
                control = list(self._control)
                self._control.clear()
            settled = [self._control_op(fn, fut) for fn, fut in control]
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
        with self._cond:
            if not self._feeds:
                return []
            deadline = self._feeds[0].arrived + self._window
            while (
                len(self._feeds) < min(self._max_batch, len(self._batch)) and not self._control and not self._stopping
            ):
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(left)
            length = self._feeds[0].length
            group: list[_Feed] = []
            rest: deque[_Feed] = deque()
            while self._feeds:
                f = self._feeds.popleft()
                (group if f.length == length and len(group) < self._max_batch else rest).append(f)
            self._feeds = rest
            return group

    def _step(self, group: list[_Feed]) -> list[tuple[Any, ...]]:
        start = time.perf_counter()
        try:
            results = self._batch.feed({f.key: f.x for f in group})
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
        m, name = self._metrics, self.name
        m.steps.labels(name).inc()
        m.tokens.labels(name).inc(len(group) * group[0].length)
        m.batch_size.labels(name).observe(len(group))
        m.step_seconds.labels(name).observe(elapsed)
        queue = m.queue_seconds.labels(name)
        # Each session keeps its own copy of its row (a view would pin the whole (N, V) result).
        rows = [results[f.key].copy() for f in group]  # N x (V,)
        top = top_k_rows(np.stack(rows), max(f.k for f in group), overwrite=True).tolist()  # (N, k) for all rows
        labels = self.labels
        settled = []
        for f, row, ids in zip(group, rows, top, strict=True):
            queue.observe(start - f.arrived)
            fields: dict[str, Any] = {"top_k": [[labels[i], float(row[i])] for i in ids[: f.k]]}
            if f.want_probs:
                fields["probs"] = row.tolist()
            settled.append((f.future, True, FeedOutcome(row, fields)))
        return settled

    def _settle(self, settled: list[tuple[Any, ...]]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(_settle_all, settled)


def _settle_all(settled: list[tuple[Any, ...]]) -> None:
    for future, ok, value in settled:
        if future.done():  # its connection's handler was cancelled
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
