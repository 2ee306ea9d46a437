"""A stream: one recurrent state held for one caller, fed piece by piece.

A failed ``feed`` leaves the state exactly as it was (the new state is only kept once
the whole call succeeded). A stream belongs to one thread at a time; using it from two
threads at once (two feeds, or reading ``state`` during another thread's feed) raises
:class:`ConcurrentUseError` instead of corrupting or tearing the state. The stream only
holds state: its model's engine computes, and its codec converts inputs and outputs.
"""

from __future__ import annotations

import threading
from typing import Any, NoReturn

import numpy as np

from .binding import DeviceValues, download, upload
from .codec import Codec
from .engine import Engine
from .errors import InputError, NotPicklableError
from .exclusive import Exclusive
from .state import State

__all__ = ["Stream"]


class Stream:
    """Holds one state (batch 1) for a model; ``feed`` advances it and returns the current prediction."""

    def __init__(self, engine: Engine, state: State | None = None, *, state_on_device: bool = False) -> None:
        self.engine = engine
        self.codec: Codec = engine.codec
        state = engine.init_state(1) if state is None else engine.check_state(state, 1)
        # The state lives on the host as arrays by state input name (_arrays, which each feed
        # advances in place) or, when kept on the device, as device values (_values) copied to the
        # host only when asked for; None marks the side not up to date. The immutable State
        # (_state) is made only when someone asks for it.
        self._state: State | None = state
        self._arrays: dict[str, np.ndarray] | None = dict(state.arrays)
        self._values: DeviceValues | None = None
        self._on_device = state_on_device  # fixed for the stream's life
        self._lock = threading.Lock()
        self._exclusive = Exclusive(self._lock, "stream")
        self._last: np.ndarray | None = state.prediction if state.checked_by is engine.state_token else None

    @property
    def state(self) -> State:
        """The current state: an immutable value, safe to keep and restore later (with its prediction)."""
        state = self._state
        if state is None:
            with self._exclusive:
                if self._arrays is None:  # on the device only: copy it to the host once
                    assert self._values is not None
                    self._arrays = download(self._values)
                # Fresh arrays that only this stream holds and never writes to: frozen in place.
                state = self.engine.freeze(self._arrays, 1, self._last)
                self._state = state
        return state

    @state.setter
    def state(self, state: State) -> None:
        """The current state: an immutable value, safe to keep and restore later."""
        with self._exclusive:
            self._state = self.engine.check_state(state, 1)
            self._arrays = dict(self._state.arrays)
            self._values = None
            # The prediction travels with states this model made; one built by hand has none.
            self._last = self._state.prediction if self._state.checked_by is self.engine.state_token else None

    @property
    def last(self) -> np.ndarray | None:
        """What the latest ``feed`` returned, or the prediction stored with a restored state (else ``None``)."""
        return self._last

    def reset(self) -> None:
        """Start again from the model's initial state."""
        self.state = self.engine.init_state(1)

    def copy(self) -> Stream:
        """An independent stream starting from this one's state (to branch)."""
        return type(self)(self.engine, self.state, state_on_device=self._on_device)

    def __copy__(self) -> Stream:
        """``copy.copy(stream)`` is :meth:`copy`: a twin sharing the state arrays would advance them for both."""
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> Stream:
        """``copy.deepcopy(stream)`` is :meth:`copy` too: the model's session is shared, never copied."""
        return self.copy()

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise NotPicklableError(
            "a stream holds a live onnxruntime session and cannot be pickled; pickle stream.state (a plain "
            "value) and continue with stream = model.stream(); stream.state = saved"
        )

    def _graph_input(self, x: Any) -> np.ndarray:
        return self.codec.to_graph(x)

    def feed(self, x: Any) -> np.ndarray:
        """Advance the state by ``x`` and return the model's prediction after everything fed so far."""
        with self._exclusive:
            graph_input = self._graph_input(x)
            if graph_input.shape[0] != 1:
                raise InputError(f"a stream takes one sequence at a time, got batch {graph_input.shape[0]}")
            # to_graph checked the input and the state setter checked the state: run directly.
            if self._on_device:
                if self._values is None:
                    assert self._arrays is not None
                    self._values = upload(self._arrays, self.engine.device)
                outputs, values = self.engine.advance_on_device(graph_input, self._values)
                result: np.ndarray = self.codec.results(outputs)[0]
                self._values, self._arrays, self._state, self._last = values, None, None, result
                return result
            assert self._arrays is not None
            result = self.codec.results(self.engine.advance(graph_input, self._arrays))[0]
            self._state, self._last = None, result
            return result
