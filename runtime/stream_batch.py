"""Named streams of one model, fed together: a thin scheduler on :meth:`Model.feed`.

A server holding hundreds of conversations, or a device reading many sensors, would
otherwise pay one onnxruntime call (and one pass over the weights) per stream and step.
A :class:`StreamBatch` names its streams by key; each ``feed`` advances any subset of them
in one :meth:`Model.feed` call, so the weights are read once for all of them, and each
stream's results are bit-identical to feeding it alone (the batch rows never mix). Streams
join (``add``) and leave (``remove``) between any two steps.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator, Mapping
from typing import Any

import numpy as np

from .errors import ConfigError, InputError
from .exclusive import Exclusive
from .model import Model, Stream
from .state import State

__all__ = ["StreamBatch"]

_MAX_SHOWN = 5


class StreamBatch:
    """Named streams of one causal model sharing each onnxruntime call; one thread at a time."""

    def __init__(self, model: Model, *, strict: bool = False) -> None:
        """``strict``: the streams refuse unknown tokens instead of reading them as unknown."""
        if not model.causal:
            raise ConfigError(
                f"{model.kind} models re-read each stream's whole prefix, whose lengths differ between streams; "
                "use one model.stream() per sequence instead"
            )
        self.model = model
        self.strict = strict
        self._streams: dict[Hashable, Stream] = {}
        self._lock = threading.Lock()
        self._exclusive = Exclusive(self._lock, "stream batch")

    def __len__(self) -> int:
        return len(self._streams)

    def __contains__(self, key: object) -> bool:
        try:
            return key in self._streams
        except TypeError:
            return False

    def __iter__(self) -> Iterator[Hashable]:
        return iter(list(self._streams))

    def add(self, key: Hashable, state: State | Stream | None = None) -> None:
        """Start a stream named ``key``, from the initial state, a saved :class:`State`, or a stream's state."""
        with self._exclusive:
            try:
                hash(key)
            except TypeError:
                raise InputError(f"a stream key must be hashable (a str, an int, ...), got {key!r:.80}") from None
            if key in self._streams:
                raise InputError(f"stream {key!r} is already in this batch; remove it first or pick another key")
            if isinstance(state, Stream):
                state = state.state
            self._streams[key] = self.model.stream(state, strict=self.strict)

    def remove(self, key: Hashable) -> State:
        """End stream ``key``; return its last state (batch 1), e.g. to continue it in a :class:`Stream`."""
        with self._exclusive:
            state = self._stream(key).state
            del self._streams[key]
            return state

    def state(self, key: Hashable) -> State:
        """Stream ``key``'s current state (batch 1), an immutable value."""
        with self._exclusive:
            return self._stream(key).state

    def stream(self, key: Hashable) -> Stream:
        """The stream named ``key`` (e.g. to advance a group of them with :meth:`Model.advance`)."""
        with self._exclusive:
            return self._stream(key)

    def feed(self, inputs: Mapping[Hashable, Any]) -> dict[Hashable, np.ndarray]:
        """Advance the streams named in ``inputs`` (``{key: what a stream's feed takes}``) in one call.

        Every input must advance its stream by the same number of steps (e.g. one token
        each). Returns ``{key: result}``, as each stream's ``feed`` would (rows of one stacked
        array). Streams not named keep their state. If anything is wrong no stream changes.
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
            streams = [self._stream(k) for k in keys]
            x = self.model.stack(list(inputs.values()), strict=self.strict, keys=keys)
            return self.model.advance(streams, x)

    def _stream(self, key: Hashable) -> Stream:
        try:
            return self._streams[key]
        except (KeyError, TypeError):
            keys = list(self._streams)
            shown = ", ".join(repr(k) for k in keys[:_MAX_SHOWN]) + (", ..." if len(keys) > _MAX_SHOWN else "")
            raise InputError(f"no stream {key!r} in this batch (it holds {shown or 'none'})") from None
