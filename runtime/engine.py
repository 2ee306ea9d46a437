"""The engine: one onnxruntime session and everything every kind of model shares.

It owns the session, the state checks, the concurrency-free core (``run``) and the one
windowed path that streams advance by (``advance``, or ``advance_on_device`` when a
stream's state lives on the execution device). What differs between kinds — how user
input becomes graph input and outputs become results — is the kind's :class:`Codec`,
which the engine consults only for the checks that need a kind's knowledge.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .binding import DeviceValues, bound_run
from .codec import Codec
from .errors import InputError, ModelClosedError, ModelFileError, StateError
from .metadata import ModelMetadata, TensorSpec
from .session import RunFn, run_function
from .state import State

__all__ = ["STREAM_WINDOW", "Engine", "Outputs", "all_finite", "describe", "expected_shape"]

Outputs = dict[str, np.ndarray]
SMALL = 64  # arrays up to this size are checked in plain Python (see all_finite)
MAX_STATE_BYTES = 1 << 32  # a batch whose zero state alone needs more is a mistake, not a workload
STREAM_WINDOW = 256  # a long feed runs in windows of this many steps, so memory stays bounded
_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64"}


def all_finite(a: np.ndarray) -> bool:
    """No NaN or infinity in a float array; small ones (a streaming step) checked in plain Python.

    Right after an onnxruntime call numpy's machinery is cold in the caches: two numpy calls
    on a 28-value row cost more than the Python loop over its values.
    """
    if a.size <= SMALL:
        return all(map(math.isfinite, a.ravel().tolist()))
    return bool(np.isfinite(a).all())


def describe(a: Any) -> str:
    """``float64 of shape (1, 28)``: how an error message names what came in."""
    if isinstance(a, np.ndarray):
        return f"{a.dtype} of shape {a.shape}"
    return f"{type(a).__name__}"


def expected_shape(spec: TensorSpec, batch: int | None = None) -> str:
    """A spec's shape for error messages, e.g. ``(N, T, 28)``."""
    dims = [str(batch) if d == "batch" and batch is not None else ("N" if d == "batch" else str(d)) for d in spec.shape]
    dims = ["T" if d == "sequence" else d for d in dims]
    return "(" + ", ".join(dims) + ")"


class Engine:
    """A loaded file's session, metadata and state rules; stateless, shareable between threads."""

    def __init__(
        self, session: ort.InferenceSession, metadata: ModelMetadata, codec: Codec, path: Path, provider: str
    ) -> None:
        self._session: ort.InferenceSession | None = session
        self.metadata = metadata
        self.codec = codec
        self.path = path
        self.provider = provider
        self.device = "cuda" if provider == "cuda" else "cpu"
        self._token = object()  # marks the states this engine made (State.checked_by)
        self._call: RunFn = run_function(session)
        self._state_outputs = {s.name: s.output for s in metadata.states}
        self._state_inputs = tuple(s.name for s in metadata.states)
        self._output_names = tuple(o.name for o in metadata.outputs)
        self._fetch = [*self._output_names, *self._state_outputs.values()]
        self._stream_fetch = [*codec.stream_outputs, *self._state_outputs.values()]
        spec = metadata.input
        self._input_name = spec.name
        # The input check runs on every step: precompute what it compares against.
        self._input_dtype = np.dtype(spec.dtype)
        self._input_fixed = tuple((axis, d) for axis, d in enumerate(spec.shape) if isinstance(d, int))
        # A graph that takes per-sequence lengths (format version 2) gets them on every call: all T unless said.
        self._lengths_name = metadata.lengths.name if metadata.lengths is not None else None
        self._full_lengths: dict[tuple[int, int], np.ndarray] = {}
        self._check_graph(session)

    def _check_graph(self, session: ort.InferenceSession) -> None:
        """The graph's declared inputs and outputs must be the ones the metadata promises."""
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = {o.name: o for o in session.get_outputs()}
        meta = self.metadata
        wanted_in = [meta.input] + [s.input for s in meta.states] + ([meta.lengths] if meta.lengths else [])
        promised = [o.name for o in meta.outputs] + [s.output for s in meta.states]
        problems = []
        declared = {s.name: s for s in [*wanted_in, *meta.outputs]}
        declared.update({s.output: s.input for s in meta.states})
        for name, spec in declared.items():
            got = inputs.get(name) or outputs.get(name)
            if got is None:
                continue  # reported below
            same_dims = len(got.shape) == len(spec.shape) and all(
                not (isinstance(d, int) and isinstance(g, int) and d != g)
                for d, g in zip(spec.shape, got.shape, strict=False)
            )
            if _ORT_TYPES.get(got.type) != spec.dtype or not same_dims:
                problems.append(f"{name}: graph has {got.type} {got.shape}, metadata {spec.dtype} {list(spec.shape)}")
        if set(inputs) != {s.name for s in wanted_in}:
            problems.append(f"graph inputs {sorted(inputs)} differ from metadata {sorted(s.name for s in wanted_in)}")
        for name in promised:
            if name not in outputs:
                problems.append(f"output {name} promised by the metadata is not in the graph")
        if problems:
            raise ModelFileError(f"{self.path}: graph and metadata disagree: " + "; ".join(problems))

    @property
    def state_token(self) -> object:
        """The mark of states this engine made (``State.checked_by``): such a state needs no re-check."""
        return self._token

    @property
    def session(self) -> ort.InferenceSession:
        """The onnxruntime session; raises :class:`ModelClosedError` after :meth:`close`."""
        if self._session is None:
            raise ModelClosedError(f"model {self.path} was closed")
        return self._session

    def close(self) -> None:
        """Release the onnxruntime session; later calls raise :class:`ModelClosedError`."""
        self._session = None
        self._call = _closed_call(self.path)

    # -- states ---------------------------------------------------------------------------------
    def init_state(self, batch: int = 1) -> State:
        """Zero state for ``batch`` independent sequences."""
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise InputError(f"batch must be a positive int, got {batch!r}")
        row_bytes = sum(
            int(np.prod(s.initial_shape(1))) * np.dtype(s.input.dtype).itemsize for s in self.metadata.states
        )
        if int(batch) * row_bytes > MAX_STATE_BYTES:
            raise InputError(
                f"batch {batch} needs {int(batch) * row_bytes:,} bytes of state, over the {MAX_STATE_BYTES:,}-byte "
                "limit; run it in smaller batches"
            )
        arrays = {s.name: np.zeros(s.initial_shape(int(batch)), dtype=s.input.dtype) for s in self.metadata.states}
        return State.of(self.metadata.model_id, arrays, int(batch), copy=False, checked_by=self._token)

    def freeze(self, arrays: Mapping[str, np.ndarray], batch: int, prediction: np.ndarray | None = None) -> State:
        """A :class:`State` of arrays this engine produced (already checked; nobody else holds them)."""
        return State.of(
            self.metadata.model_id, arrays, batch, copy=False, checked_by=self._token, prediction=prediction
        )

    def check_state(self, state: object, batch: int | None = None) -> State:
        """Return ``state`` if it fits this model (and ``batch``); else raise :class:`StateError`."""
        if isinstance(state, State) and state.checked_by is self._token:  # made here: its parts are known to fit
            if batch is not None and state.batch_size != batch:
                raise StateError(f"state holds batch {state.batch_size}, the input has batch {batch}")
            return state
        if not isinstance(state, State):
            if isinstance(state, Mapping):
                state = self.state_from_arrays(state)
            else:
                raise StateError(f"state must be an rnnedge State or a mapping of arrays, got {describe(state)}")
        if state.model_id != self.metadata.model_id:
            raise StateError(
                f"state belongs to model {state.model_id}, not to this model ({self.metadata.model_id}); "
                "make one with init_state()"
            )
        if self._check_parts(state.arrays, finite=False) != state.batch_size:
            raise StateError(f"state says batch {state.batch_size}, its arrays hold another batch size")
        if batch is not None and state.batch_size != batch:
            raise StateError(f"state holds batch {state.batch_size}, the input has batch {batch}")
        return state

    def state_from_arrays(self, arrays: Mapping[str, Any]) -> State:
        """Build a :class:`State` from plain arrays (e.g. saved by the caller), checking every part."""
        batch = self._check_parts(arrays, finite=True)
        parts = {s.name: arrays[s.name] for s in self.metadata.states}
        return State.of(self.metadata.model_id, parts, batch, checked_by=self._token)

    def _check_parts(self, arrays: Mapping[str, Any], *, finite: bool) -> int:
        """Names, dtypes, fixed sizes and one common batch size of a state's parts; return the batch size."""
        names = {s.name for s in self.metadata.states}
        if set(arrays) != names:
            raise StateError(f"state must have exactly the parts {sorted(names)}, got {sorted(map(str, arrays))}")
        batch = 0
        for spec in self.metadata.states:
            a = arrays[spec.name]
            want = spec.input
            fits = isinstance(a, np.ndarray) and a.dtype == np.dtype(want.dtype) and a.ndim == len(want.shape)
            if not fits or any(isinstance(w, int) and d != w for d, w in zip(a.shape, want.shape, strict=True)):
                raise StateError(
                    f"state part {spec.name} must be {want.dtype} of shape {expected_shape(want)}, got {describe(a)}"
                )
            size = a.shape[want.shape.index("batch")]
            if size < 1 or (batch and size != batch):
                raise StateError(f"state part {spec.name} has batch {size}, other parts have {batch or size}")
            batch = size
            if finite and a.dtype.kind == "f" and not all_finite(a):
                raise StateError(f"state part {spec.name} contains NaN or infinity")
        self.codec.check_state(arrays)
        return batch

    # -- inputs ---------------------------------------------------------------------------------
    def check_input(self, x: object) -> np.ndarray:
        """The graph's main input must match the metadata exactly (dtype, rank, fixed sizes, non-empty)."""
        spec = self.metadata.input
        if not isinstance(x, np.ndarray):
            raise InputError(
                f"{spec.name} must be a numpy array {spec.dtype} {expected_shape(spec)}, got {describe(x)}"
            )
        shape = x.shape
        fits = x.dtype == self._input_dtype and len(shape) == len(spec.shape) and 0 not in shape
        for axis, d in self._input_fixed:  # a loop: any() over a generator costs more on a hot path
            fits = fits and shape[axis] == d
        if not fits:
            raise InputError(f"{spec.name} must be {spec.dtype} of shape {expected_shape(spec)}, got {describe(x)}")
        if x.dtype.kind == "f" and not all_finite(x):
            raise InputError(f"{spec.name} contains NaN or infinity")
        self.codec.check_graph_input(x)
        return x if x.flags.c_contiguous else np.ascontiguousarray(x)

    # -- running ------------------------------------------------------------------------------
    def step(self, x: object, state: State | Mapping[str, np.ndarray], lengths: object = None) -> tuple[Outputs, State]:
        """Run the graph on ``x`` from ``state``; return ``({output name: array}, new state)``.

        ``x`` is the graph's input exactly as ``metadata.input`` describes it (already
        preprocessed). Nothing is modified: the caller decides whether to keep the new state.
        ``lengths`` (files whose graph takes them): int ``(N,)``, the valid steps of each row of ``x``
        (default: all); each row's outputs and state are then those of its valid steps alone.
        """
        x = self.check_input(x)
        checked = self.check_lengths(lengths, x.shape[0], x.shape[1])
        if checked is not None and not self.metadata.causal and int(checked.min()) < x.shape[1]:
            raise InputError(
                "a non-causal model's state keeps the rows received, so its step takes whole chunks (lengths all "
                f"{x.shape[1]}); use predict for sequences of different lengths"
            )
        return self.run(x, self.check_state(state, x.shape[0]), checked)

    def check_lengths(self, lengths: object, batch: int, steps: int) -> np.ndarray | None:
        """``lengths`` as int64 ``(batch,)`` with values in ``[1, steps]``; None stays None (all valid)."""
        if lengths is None:
            return None
        if self._lengths_name is None:
            raise InputError(f"{self.path.name} takes no lengths (its graph has no lengths input): give whole chunks")
        a = np.asarray(lengths) if isinstance(lengths, (list, tuple, np.ndarray)) else None
        if a is None or a.shape != (batch,) or a.dtype.kind not in "iu":
            raise InputError(f"lengths must be ints of shape ({batch},), one per sequence, got {describe(lengths)}")
        if batch and (int(a.min()) < 1 or int(a.max()) > steps):
            raise InputError(
                f"lengths must be in [1, {steps}] (the steps of the input), got values in [{a.min()}, {a.max()}]"
            )
        return a.astype(np.int64)

    def run(self, x: np.ndarray, state: State, lengths: np.ndarray | None = None) -> tuple[Outputs, State]:
        """One call on an input and a state already checked: every output, and the new state frozen."""
        results = self._call_on(x, dict(state.arrays), self._fetch, lengths)
        n = len(self._output_names)
        arrays = dict(zip(self._state_inputs, results[n:], strict=True))
        outputs = dict(zip(self._output_names, results[:n], strict=True))
        return outputs, self.freeze(arrays, state.batch_size)

    def advance(self, x: np.ndarray, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
        """A stream's step: advance the host state ``arrays`` (by state input name) in place by ``x``.

        Returns the codec's ``stream_outputs``. After an error ``arrays`` holds the state it
        held before: it is updated in one call once everything succeeded. A long feed of a
        causal model runs in windows with the state carried, so any length needs memory for one.
        """
        n = len(self.codec.stream_outputs)
        work = arrays
        results: list[np.ndarray] = []
        for window in self._windows(x):
            results = self._call_on(window, work, self._stream_fetch)
            work = dict(zip(self._state_inputs, results[n:], strict=True))
        # One C-level update, which nothing interrupts halfway.
        arrays.update(work)
        return results[:n]

    def advance_on_device(self, x: np.ndarray, values: DeviceValues) -> tuple[list[np.ndarray], DeviceValues]:
        """``advance`` with the state on ``self.device``: returns the stream outputs and the new values."""
        outputs: list[np.ndarray] = []
        for window in self._windows(x):
            self.codec.guard(window, values)
            outputs, values = bound_run(
                self.session,
                self._main_feeds(window),
                values,
                self.codec.stream_outputs,
                self._state_outputs,
                self.device,
            )
        return outputs, values

    def _windows(self, x: np.ndarray) -> Iterator[np.ndarray]:
        """``x`` whole, or a causal model's long feed in windows of ``STREAM_WINDOW`` steps."""
        if not self.metadata.causal or x.shape[1] <= STREAM_WINDOW:
            yield x
            return
        for lo in range(0, x.shape[1], STREAM_WINDOW):
            yield x[:, lo : lo + STREAM_WINDOW]

    def _main_feeds(self, x: np.ndarray, lengths: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """``x`` under its input name, and the lengths (all of ``x``'s steps unless given) when the graph takes them."""
        feeds = {self._input_name: x}
        if self._lengths_name is not None:
            if lengths is None:
                key = x.shape[:2]
                lengths = self._full_lengths.get(key)
                if lengths is None:
                    lengths = np.full(key[0], key[1], dtype=np.int64)
                    lengths.flags.writeable = False
                    if len(self._full_lengths) < 1024:  # streams repeat a few shapes; bounded all the same
                        self._full_lengths[key] = lengths
            feeds[self._lengths_name] = lengths
        return feeds

    def _call_on(
        self, x: np.ndarray, arrays: Mapping[str, np.ndarray], fetch: list[str], lengths: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """The one onnxruntime call of every path: ``x`` with the state ``arrays`` (left as they were)."""
        self.codec.guard(x, arrays)
        feeds = dict(arrays)
        feeds.update(self._main_feeds(x, lengths))
        return self._call(fetch, feeds)


def _closed_call(path: Path) -> RunFn:
    """What a closed engine calls instead of onnxruntime (a function, not a method: no reference cycle)."""

    def closed(names: object, feeds: object) -> list[Any]:
        raise ModelClosedError(f"model {path} was closed")

    return closed
