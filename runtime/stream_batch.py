"""Many independent streams of one model, stepped together in one onnxruntime call.

A server holding hundreds of conversations, or a device reading many sensors, would
otherwise pay one onnxruntime call (and one pass over the weights) per stream and
step. A :class:`StreamBatch` keeps the states of its streams stacked on the batch axis
and runs every ``feed`` as one call, so the weights are read once for all of them.
Streams join (``add``) and leave (``remove``) between any two steps, and a ``feed``
may advance any subset of them; the others keep their state. Each stream's results
are bit-identical to feeding it alone: the batch rows never mix.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any

import numpy as np

from .engine import Engine
from .errors import ConfigError, InputError
from .exclusive import Exclusive
from .state import State
from .stream import Stream

__all__ = ["StreamBatch"]

_MAX_SHOWN = 5


class StreamBatch:
    """Named streams of one causal model sharing each onnxruntime call; one thread at a time."""

    def __init__(self, engine: Engine, graph_input: Callable[[Any], np.ndarray] | None = None) -> None:
        """``graph_input`` turns one stream's input into its graph input (default: the codec's
        ``to_graph``). Plain inputs (ids, uint8 rows) of all streams are stacked and checked at
        once by the codec; anything else goes through ``graph_input``, whose errors say what is wrong."""
        meta = engine.metadata
        if not meta.causal:
            raise ConfigError(
                f"{meta.kind} models re-read each stream's whole prefix, whose lengths differ between streams; "
                "use one model.stream() per sequence instead"
            )
        self.engine = engine
        self.codec = engine.codec
        self._graph_input = graph_input or self.codec.to_graph
        self._keys: list[Hashable] = []  # row i of the stacked state belongs to _keys[i]
        self._rows: dict[Hashable, int] = {}
        self._state: State | None = None
        self._axes: dict[str, int] = {}
        for spec in meta.states:
            assert spec.input.batch_axis is not None  # the metadata parser guarantees one
            self._axes[spec.name] = spec.input.batch_axis
        self._lock = threading.Lock()
        self._exclusive = Exclusive(self._lock, "stream batch")

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def __iter__(self) -> Iterator[Hashable]:
        return iter(list(self._keys))

    def add(self, key: Hashable, state: State | Stream | None = None) -> None:
        """Start a stream named ``key``, from the initial state, a saved :class:`State`, or a stream's state."""
        with self._exclusive:
            try:
                hash(key)
            except TypeError:
                raise InputError(f"a stream key must be hashable (a str, an int, ...), got {key!r:.80}") from None
            if key in self._rows:
                raise InputError(f"stream {key!r} is already in this batch; remove it first or pick another key")
            if isinstance(state, Stream):
                state = state.state
            one = self.engine.init_state(1) if state is None else self.engine.check_state(state, 1)
            if self._state is None:
                self._state = one
            else:
                arrays = {n: np.concatenate([a, one[n]], axis=self._axes[n]) for n, a in self._state.items()}
                self._state = self._stacked(arrays, len(self._keys) + 1)
            self._rows[key] = len(self._keys)
            self._keys.append(key)

    def remove(self, key: Hashable) -> State:
        """End stream ``key``; return its last state (batch 1), e.g. to continue it in a :class:`Stream`."""
        with self._exclusive:
            row = self._row(key)
            assert self._state is not None
            final = self._take([row])
            if len(self._keys) == 1:
                self._state = None
            else:
                arrays = {n: np.delete(a, row, axis=self._axes[n]) for n, a in self._state.items()}
                self._state = self._stacked(arrays, len(self._keys) - 1)
            del self._keys[row]
            self._rows = {k: i for i, k in enumerate(self._keys)}
            return final

    def state(self, key: Hashable) -> State:
        """Stream ``key``'s current state (batch 1), an immutable value."""
        with self._exclusive:
            return self._take([self._row(key)])

    def feed(self, inputs: Mapping[Hashable, Any]) -> dict[Hashable, np.ndarray]:
        """Advance the streams named in ``inputs`` (``{key: what a stream's feed takes}``) in one call.

        Every input must advance its stream by the same number of steps (e.g. one token
        each). Returns ``{key: prediction}``, as each stream's ``feed`` would. Streams
        not named keep their state. If anything is wrong no stream changes.
        """
        return dict(zip(inputs, self.feed_stacked(inputs), strict=True))

    def feed_stacked(self, inputs: Mapping[Hashable, Any]) -> np.ndarray:
        """:meth:`feed`, its predictions stacked in one array ``(N, ...)``, row ``i`` for ``inputs``' ``i``-th key.

        A caller that handles all rows at once (a server's top-k of every stream) gets the array
        the model made, without a dict of row views or a copy.
        """
        with self._exclusive:
            if not isinstance(inputs, Mapping) or not inputs:
                raise InputError(f"feed takes a non-empty mapping {{stream key: input}}, got {inputs!r:.80}")
            keys = list(inputs)
            rows = [self._row(k) for k in keys]
            x = self.codec.stack(list(inputs.values()))
            if x is None:
                x = self._one_by_one(keys, inputs)
            assert self._state is not None
            everyone = rows == list(range(len(self._keys)))
            before = self._state if everyone else self._take(rows)
            after = dict(before.arrays)
            results = self.codec.results(self.engine.advance(x, after))
            self._state = self._stacked(after, len(rows)) if everyone else self._put(rows, after)
            return results

    def _one_by_one(self, keys: list[Hashable], inputs: Mapping[Hashable, Any]) -> np.ndarray:
        """The stacked graph input, each stream's input converted and checked on its own."""
        parts = [self._graph_input(inputs[k]) for k in keys]  # each (1, T, ...), checked
        lengths = {k: p.shape[1] for k, p in zip(keys, parts, strict=True)}
        if len(set(lengths.values())) > 1:
            shown = dict(list(lengths.items())[:_MAX_SHOWN])
            raise InputError(
                f"one feed advances every stream by the same number of steps, got lengths {shown}; "
                "feed streams of different lengths in separate calls"
            )
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    # -- rows of the stacked state ------------------------------------------------------------
    def _row(self, key: Hashable) -> int:
        try:
            return self._rows[key]
        except (KeyError, TypeError):
            shown = ", ".join(repr(k) for k in self._keys[:_MAX_SHOWN]) + (", ..." if len(self) > _MAX_SHOWN else "")
            raise InputError(f"no stream {key!r} in this batch (it holds {shown or 'none'})") from None

    def _stacked(self, arrays: dict[str, np.ndarray], batch: int) -> State:
        return self.engine.freeze(arrays, batch)

    def _take(self, rows: list[int]) -> State:
        assert self._state is not None
        return self._stacked({n: np.take(a, rows, axis=self._axes[n]) for n, a in self._state.items()}, len(rows))

    def _put(self, rows: list[int], sub: Mapping[str, np.ndarray]) -> State:
        assert self._state is not None
        arrays = {}
        for n, a in self._state.items():
            a = a.copy()
            index: list[Any] = [slice(None)] * a.ndim
            index[self._axes[n]] = rows
            a[tuple(index)] = sub[n]
            arrays[n] = a
        return self._stacked(arrays, len(self._keys))
