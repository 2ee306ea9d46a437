"""A stream: one recurrent state held for one caller, fed piece by piece.

A failed ``feed`` leaves the state exactly as it was (the new state is only kept once
the whole call succeeded). A stream belongs to one thread at a time; using it from two
threads at once (two feeds, or reading ``state`` during another thread's feed) raises
:class:`ConcurrentUseError` instead of corrupting or tearing the state.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from .binding import DeviceValues, download, upload
from .errors import ConcurrentUseError, InputError
from .state import State

if TYPE_CHECKING:
    from .model import Model

__all__ = ["Stream"]


class Stream:
    """Holds one state (batch 1) for a model; ``feed`` advances it and returns the current prediction."""

    def __init__(self, model: Model, state: State | None = None) -> None:
        self.model = model
        state = model.init_state(1) if state is None else model.check_state(state, 1)
        # The state lives on the host as arrays by state input name (_arrays, which each feed
        # advances in place) or, when the model keeps it on its device, as device values (_values)
        # copied to the host only when asked for; None marks the side not up to date. The immutable
        # State (_state) is made only when someone asks for it.
        self._state: State | None = state
        self._arrays: dict[str, np.ndarray] | None = dict(state.arrays)
        self._values: DeviceValues | None = None
        self._on_device = model.state_on_device  # fixed for the stream's life
        self._lock = threading.Lock()
        self._exclusive = _Exclusive(self._lock, "stream")
        self._last: np.ndarray | None = None

    @property
    def state(self) -> State:
        """The current state: an immutable value, safe to keep and restore later."""
        state = self._state
        if state is None:
            with self._exclusive:
                if self._arrays is None:  # on the device only: copy it to the host once
                    assert self._values is not None
                    self._arrays = download(self._values)
                # Fresh arrays that only this stream holds and never writes to: frozen in place.
                model = self.model
                state = State.of(model.metadata.model_id, self._arrays, 1, copy=False, checked_by=model._token)
                self._state = state
        return state

    @state.setter
    def state(self, state: State) -> None:
        """The current state: an immutable value, safe to keep and restore later."""
        with self._exclusive:
            self._state = self.model.check_state(state, 1)
            self._arrays = dict(self._state.arrays)
            self._values = None
            self._last = None

    @property
    def last(self) -> np.ndarray | None:
        """What the latest successful ``feed`` returned (``None`` after a reset or restore)."""
        return self._last

    def reset(self) -> None:
        """Start again from the model's initial state."""
        self.state = self.model.init_state(1)

    def copy(self) -> Stream:
        """An independent stream starting from this one's state (to branch)."""
        twin = type(self)(self.model, self.state)
        twin._last = self._last
        return twin

    def __copy__(self) -> Stream:
        """``copy.copy(stream)`` is :meth:`copy`: a twin sharing the state arrays would advance them for both."""
        return self.copy()

    def _graph_input(self, x: Any) -> np.ndarray:
        return self.model.stream_input(x)

    def feed(self, x: Any) -> np.ndarray:
        """Advance the state by ``x`` and return the model's prediction after everything fed so far."""
        with self._exclusive:
            graph_input = self._graph_input(x)
            if graph_input.shape[0] != 1:
                raise InputError(f"a stream takes one sequence at a time, got batch {graph_input.shape[0]}")
            # stream_input checked the input and the state setter checked the state: run directly.
            model = self.model
            if self._on_device:
                if self._values is None:
                    assert self._arrays is not None
                    self._values = upload(self._arrays, model.device)
                outputs, values = model._run_bound(graph_input, self._values)
                result: np.ndarray = model.stream_results(outputs)[0]
                self._values, self._arrays, self._state, self._last = values, None, None, result
                return result
            assert self._arrays is not None
            result = model.stream_results(model._stream_run(graph_input, self._arrays))[0]
            self._state, self._last = None, result
            return result


class _Exclusive:
    """A non-blocking lock as a context manager: a second thread gets :class:`ConcurrentUseError`, not a wait."""

    __slots__ = ("_lock", "_what")

    def __init__(self, lock: threading.Lock, what: str) -> None:
        self._lock, self._what = lock, what

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise ConcurrentUseError(
                f"this {self._what} is being used by another thread; give each thread its own {self._what}"
            )

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
