"""A loaded model and its streams: the model computes, a stream is a value it advances.

A :class:`Model` owns the onnxruntime session, the metadata, the state rules and the one
path every call takes to onnxruntime (with the state on the host, or kept on the execution
device). It holds no per-caller state, so one instance can be shared between threads. Each
kind (``classifier.py``, ``language.py``) subclasses it with what only that kind knows: how
a caller's input becomes graph input, what a result is, and what the kind is for
(``predict``, ``generate``...).

A :class:`Stream` is passive: a state, its options and the last result. The model advances
one stream (``stream.feed(x)``) or a list of streams in one onnxruntime call
(``model.feed(streams, inputs)``, sherpa-onnx's ``decode_streams``), and a failed call leaves
every stream exactly as it was.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar

import numpy as np
import onnxruntime as ort

from .binding import bound_run, download, upload
from .checks import all_finite, describe, expected_shape
from .errors import (
    ConcurrentUseError,
    ConfigError,
    InputError,
    ModelClosedError,
    ModelFileError,
    NotPicklableError,
    StateError,
)
from .exclusive import Exclusive
from .metadata import ModelMetadata
from .network import Network
from .sampling import top_k_ids
from .session import RunFn, run_function
from .state import State

if TYPE_CHECKING:
    from .stream_batch import StreamBatch

__all__ = ["MAX_STATE_BYTES", "STREAM_WINDOW", "Model", "Outputs", "Stream"]

ModelT = TypeVar("ModelT", bound="Model")
Outputs = dict[str, np.ndarray]
MAX_STATE_BYTES = 1 << 32  # a batch whose zero state alone needs more is a mistake, not a workload
STREAM_WINDOW = 256  # a long feed runs in windows of this many steps, so memory stays bounded
_MAX_SHOWN = 5
_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64"}


class Model:
    """A loaded rnnedge model. Use :func:`rnnedge.runtime.load` to make one; kinds subclass it."""

    #: The graph outputs a stream's result is made of (``None``: every output); all a stream's step fetches.
    STREAM_OUTPUTS: ClassVar[tuple[str, ...] | None] = None
    #: Whether streams may keep their state on the execution device (nothing reads it between steps).
    DEVICE_STATE: ClassVar[bool] = False
    #: What one step of input is, for people: "row", "token".
    UNIT: ClassVar[str] = "step"
    #: A typical whole-sequence call (batch, steps): what ``rnnedge bench`` times by default.
    WORKLOAD: ClassVar[tuple[int, int]] = (1, 1)
    #: What :meth:`example_steps` and :meth:`example_batch` give, in words (benchmark labels).
    EXAMPLE_STEP: ClassVar[str] = "one step"
    EXAMPLE_BATCH: ClassVar[str] = "sequences"

    def __init__(
        self,
        session: ort.InferenceSession,
        metadata: ModelMetadata,
        path: Path,
        provider: str,
        *,
        state_on_device: bool | None = None,
    ) -> None:
        self._session: ort.InferenceSession | None = session
        self.metadata = metadata
        self.path = path
        self.provider = provider
        self.device = "cuda" if provider == "cuda" else "cpu"
        # On CUDA a kind that allows it keeps its streams' state on the device between steps (binding.py).
        if state_on_device is None:
            state_on_device = self.device == "cuda" and self.DEVICE_STATE
        elif state_on_device and not self.DEVICE_STATE:
            raise ConfigError(
                f"state_on_device: only language models keep streams' state on the device, {path} is a {metadata.kind}"
            )
        self.state_on_device = state_on_device
        self._token = object()  # marks the states this model made (State.checked_by)
        self._call: RunFn = run_function(session)
        self._state_outputs = {s.name: s.output for s in metadata.states}
        self._state_inputs = tuple(s.name for s in metadata.states)
        self._output_names = tuple(o.name for o in metadata.outputs)
        self._stream_outputs = self.STREAM_OUTPUTS or self._output_names
        self._axes: dict[str, int] = {}
        for s in metadata.states:
            assert s.input.batch_axis is not None  # the metadata parser guarantees one
            self._axes[s.name] = s.input.batch_axis
        spec = metadata.input
        self._input_name = spec.name
        # The input check runs on every step: precompute what it compares against.
        self._input_dtype = np.dtype(spec.dtype)
        self._input_fixed = tuple((axis, d) for axis, d in enumerate(spec.shape) if isinstance(d, int))
        # A graph that takes per-sequence lengths gets them on every call: all T unless said.
        self._lengths_name = metadata.lengths.name if metadata.lengths is not None else None
        self._full_lengths: dict[tuple[int, int], np.ndarray] = {}
        self._check_graph(session)
        self.read_metadata()

    def read_metadata(self) -> None:
        """What a kind reads from its file once, after the graph is checked (labels, a vocabulary...).

        Kinds override it (the constructor is the base's alone); :class:`ModelFileError` when the file lacks it.
        """

    # -- what the file says ------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """The metadata's kind, e.g. ``causal_classifier``, ``noncausal_classifier`` or ``language_model``."""
        return self.metadata.kind

    @property
    def causal(self) -> bool:
        """False for models whose output after a chunk depends on the whole prefix (bidirectional, convolutional)."""
        return self.metadata.causal

    @property
    def stream_outputs(self) -> tuple[str, ...]:
        """The graph outputs a stream's result is made of, all that a stream's step fetches."""
        return self._stream_outputs

    @property
    def names(self) -> tuple[str, ...]:
        """What each entry of a result is: class labels, or the vocabulary of a language model."""
        raise NotImplementedError(f"{self.kind} models name no result entries")

    @property
    def session(self) -> ort.InferenceSession:
        """The onnxruntime session; raises :class:`ModelClosedError` after :meth:`close`."""
        if self._session is None:
            raise ModelClosedError(f"model {self.path} was closed")
        return self._session

    @property
    def state_token(self) -> object:
        """The mark of states this model made (``State.checked_by``): such a state needs no re-check."""
        return self._token

    def close(self) -> None:
        """Release the onnxruntime session; later calls raise :class:`ModelClosedError`."""
        self._session = None
        self._call = _closed_call(self.path)

    def __enter__(self: ModelT) -> ModelT:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise NotPicklableError(
            f"a model holds a live onnxruntime session and cannot be pickled; load {self.path} again instead"
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind} from {self.path.name} on {self.provider}>"

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
        missing = [n for n in self._stream_outputs if n not in self._output_names]
        if missing:
            problems.append(f"a {meta.kind} file must have the output(s) {missing} (export it again)")
        if problems:
            raise ModelFileError(f"{self.path}: graph and metadata disagree: " + "; ".join(problems))

    # -- what a kind adds: inputs, results, its own checks (subclasses override) ----------------
    def stream_input(self, x: Any, *, strict: bool = False) -> np.ndarray:
        """What a caller feeds one stream (a numpy array, or plain lists as JSON gives them) -> the checked
        graph input of batch 1, ``(1, T, ...)``; nothing is advanced. ``strict``: unknown tokens are errors."""
        raise NotImplementedError(f"{self.kind} models do not stream")

    def stack_inputs(self, items: Sequence[Any]) -> np.ndarray | None:
        """Many streams' inputs as one checked graph input ``(N, T, ...)``, when all are of a plain kind checked
        here at once; ``None`` (the default, and for anything else): each goes through :meth:`stream_input`."""
        return None

    def results(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """The ``stream_outputs`` (in that order) -> results, a row per sequence (``(N, ...)``)."""
        return outputs[0]

    def check_graph_input(self, x: np.ndarray) -> None:
        """Checks of a graph input beyond its dtype and shape (e.g. token ids inside the vocabulary)."""

    def check_state_values(self, arrays: Mapping[str, Any]) -> None:
        """Checks of a state's values beyond its parts' dtypes and shapes."""

    def guard(self, x: np.ndarray, arrays: Mapping[str, Any]) -> None:
        """A last check of a run that needs the state's values (none by default)."""

    def example_steps(self, rng: np.random.Generator, length: int) -> list[Any]:
        """``length`` random single-step inputs as a caller feeds a stream (what benchmarks feed)."""
        raise NotImplementedError(f"{self.kind} models have no example inputs")

    def example_batch(self, rng: np.random.Generator, batch: int, length: int) -> Any:
        """A random batch of ``batch`` whole sequences of ``length`` steps, as :meth:`predict` takes it."""
        raise NotImplementedError(f"{self.kind} models have no example inputs")

    def prepare(self, batch: Any) -> np.ndarray:
        """A batch as :meth:`predict` takes it (an array ``(N, T, ...)``) -> the graph input, checked."""
        return self.check_input(batch)

    def predict(self, sequences: Any, batch_size: int = 256) -> np.ndarray:
        """The result after each whole sequence, ``(N, ...)``: what a stream fed that sequence returns."""
        raise NotImplementedError(f"{self.kind} models do not predict")

    @classmethod
    def network(cls, metadata: ModelMetadata) -> Network:
        """The network's layers as matrix sizes, from the metadata's ``config.model`` (for cost estimates)."""
        raise ModelFileError(f"model kind {metadata.kind!r}: its network's shape is not known")

    @classmethod
    def info_fields(cls, metadata: ModelMetadata) -> dict[str, Any]:
        """The kind's own fields of ``rnnedge info`` (labels, vocabulary...), from the metadata alone."""
        return {}

    def top_k(self, probs: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable entries of a result ``probs`` ``(V,)``, most probable first (ties by index)."""
        names = self.names
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(names):
            raise InputError(f"k must be an int in [1, {len(names)}], got {k!r}")
        if not isinstance(probs, np.ndarray) or probs.shape != (len(names),):
            raise InputError(f"probs must be one result ({len(names)},), got {describe(probs)}")
        return [(names[i], float(probs[i])) for i in top_k_ids(probs, int(k)).tolist()]

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

    def _freeze(self, arrays: Mapping[str, np.ndarray], batch: int, prediction: np.ndarray | None = None) -> State:
        """A :class:`State` of arrays this model produced (already checked; nobody else writes them)."""
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
        self._check_prediction(state)
        return state

    def _check_prediction(self, state: State) -> None:
        """A prediction carried by a state from outside (e.g. unpickled) must be a finite result of one row each."""
        p = state.prediction
        if p is None:
            return
        if p.dtype != np.float32 or p.ndim != 1 or not np.isfinite(p).all():
            raise StateError(f"state's prediction must be a finite float32 row (V,), got {describe(p)}")

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
        self.check_state_values(arrays)
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
        self.check_graph_input(x)
        return x if x.flags.c_contiguous else np.ascontiguousarray(x)

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

    # -- the functional core --------------------------------------------------------------------
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

    def run(self, x: np.ndarray, state: State, lengths: np.ndarray | None = None) -> tuple[Outputs, State]:
        """One call on an input and a state already checked: every output, and the new state frozen."""
        outputs, arrays = self._run(x, state.arrays, self._output_names, lengths)
        return dict(zip(self._output_names, outputs, strict=True)), self._freeze(arrays, state.batch_size)

    def _run(
        self,
        x: np.ndarray,
        state: Mapping[str, Any],
        fetch: Sequence[str],
        lengths: np.ndarray | None = None,
        *,
        on_device: bool = False,
    ) -> tuple[list[np.ndarray], dict[str, Any]]:
        """The one onnxruntime call of every path: ``fetch`` and the new state (``state`` is left as it was).

        ``on_device``: ``state`` holds onnxruntime values on ``self.device`` and the new state stays there.
        """
        self.guard(x, state)
        feeds = self._main_feeds(x, lengths)
        if on_device:
            return bound_run(self.session, feeds, state, fetch, self._state_outputs, self.device)
        feeds.update(state)
        results = self._call([*fetch, *self._state_outputs.values()], feeds)
        n = len(fetch)
        return results[:n], dict(zip(self._state_inputs, results[n:], strict=True))

    def _advance(self, x: np.ndarray, state: Mapping[str, Any], on_device: bool) -> tuple[np.ndarray, dict[str, Any]]:
        """A stream step: the results and the new state; a causal model's long feed runs in windows."""
        outputs: list[np.ndarray] = []
        if not self.metadata.causal or x.shape[1] <= STREAM_WINDOW:
            outputs, state = self._run(x, state, self._stream_outputs, on_device=on_device)
        else:
            for lo in range(0, x.shape[1], STREAM_WINDOW):
                window = x[:, lo : lo + STREAM_WINDOW]
                outputs, state = self._run(window, state, self._stream_outputs, on_device=on_device)
        return self.results(outputs), dict(state)

    def _main_feeds(self, x: np.ndarray, lengths: np.ndarray | None = None) -> dict[str, Any]:
        """``x`` under its input name, and the lengths (all of ``x``'s steps unless given) when the graph takes them."""
        feeds: dict[str, Any] = {self._input_name: x}
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

    # -- streams ---------------------------------------------------------------------------------
    def stream(self, state: State | None = None, *, strict: bool = False) -> Stream:
        """A stream: one state (batch 1) for one caller, from ``state`` or the initial state.

        What ``feed`` takes and returns depends on the kind. ``strict``: for inputs that can be
        unknown (words), refuse them instead of reading them as unknown.
        """
        return Stream(self, state, strict=strict, state_on_device=self.state_on_device)

    def stream_batch(self, strict: bool = False) -> StreamBatch:
        """Many named streams stepped together in one onnxruntime call (causal models only)."""
        from .stream_batch import StreamBatch

        return StreamBatch(self, strict=strict)

    def feed(self, streams: Stream | Sequence[Stream], inputs: Any) -> np.ndarray:
        """Advance one stream by ``inputs``, or each of a list of streams by its input, in one onnxruntime call.

        One stream: its result (``stream.feed(inputs)``). A list: ``inputs`` holds one input per
        stream (what a stream's ``feed`` takes), each advancing its stream by the same number of
        steps; returns the stacked results ``(N, ...)``, row ``i`` being stream ``i``'s (a view,
        also kept as ``streams[i].last``). If anything is wrong no stream changes.
        """
        if isinstance(streams, Stream):
            return streams.feed(inputs)
        streams = self._check_streams(streams)
        if not isinstance(inputs, Sequence) or isinstance(inputs, (str, bytes)) or len(inputs) != len(streams):
            raise InputError(f"feed takes one input per stream ({len(streams)}), got {describe(inputs)}")
        return self._advance_streams(streams, self.stack(inputs, strict=[s.strict for s in streams]))

    def advance(self, streams: Sequence[Stream], x: np.ndarray) -> np.ndarray:
        """Advance ``streams`` by a graph input ``x`` ``(N, T, ...)`` (row ``i`` for stream ``i``) in one call.

        For inputs already converted (:meth:`stream_input`, :meth:`stack_inputs`): checked again,
        not converted again. Returns the stacked results ``(N, ...)`` as :meth:`feed` does.
        """
        streams = self._check_streams(streams)
        x = self.check_input(x)
        if x.shape[0] != len(streams):
            raise InputError(f"x holds {x.shape[0]} sequences for {len(streams)} streams")
        return self._advance_streams(streams, x)

    def _check_streams(self, streams: Sequence[Stream]) -> list[Stream]:
        if not isinstance(streams, Sequence) or not streams:
            raise InputError(f"feed takes a stream or a non-empty list of streams, got {describe(streams)}")
        try:
            models = {s.model for s in streams}
        except AttributeError:  # not streams at all
            raise InputError(f"feed takes a stream or a non-empty list of streams, got {describe(streams)}") from None
        if models != {self}:
            raise InputError("every stream of one call must be a stream of this model")
        if len(set(map(id, streams))) != len(streams):
            raise InputError("a stream appears twice in one call; advance it once per call")
        if not self.metadata.causal:
            raise ConfigError(
                f"{self.kind} models re-read each stream's whole prefix, whose lengths differ between streams; "
                "feed each stream alone instead"
            )
        return list(streams)

    def stack(
        self, inputs: Sequence[Any], *, strict: bool | Sequence[bool] = False, keys: Sequence[Any] | None = None
    ) -> np.ndarray:
        """Many streams' inputs (what a stream's ``feed`` takes) -> one checked graph input ``(N, T, ...)``.

        Plain inputs of all streams are converted and checked at once (:meth:`stack_inputs`); anything
        else one by one, whose errors say which is wrong. All must have the same number of steps;
        ``keys`` name the inputs in that message (default: their positions). ``strict``: one flag, or
        one per input.
        """
        if not isinstance(inputs, Sequence) or isinstance(inputs, (str, bytes)) or not inputs:
            raise InputError(f"stack takes a non-empty list of inputs, got {describe(inputs)}")
        x = self.stack_inputs(inputs)
        if x is not None:
            return x
        flags = [strict] * len(inputs) if isinstance(strict, bool) else list(strict)
        parts = [self.stream_input(v, strict=f) for v, f in zip(inputs, flags, strict=True)]
        if len({p.shape[1] for p in parts}) > 1:
            names = list(keys) if keys is not None else list(range(len(parts)))
            lengths = {k: p.shape[1] for k, p in zip(names[:_MAX_SHOWN], parts, strict=False)}
            raise InputError(
                f"one feed advances every stream by the same number of steps, got lengths {lengths}; "
                "feed streams of different lengths in separate calls"
            )
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _advance_streams(self, streams: list[Stream], x: np.ndarray) -> np.ndarray:
        """Stack the streams' states, run once, and hand each stream its row: all or nothing."""
        locks = [s._lock for s in streams]
        taken = [lock.acquire(False) for lock in locks]
        try:
            if not all(taken):
                raise ConcurrentUseError(
                    "a stream of this call is being used by another thread; give each thread its own stream"
                )
            same = self._same_group(streams)
            stacked = same.arrays if same is not None else self._stack_states(streams)
            results, state = self._advance(x, stacked, on_device=False)
            # Nothing below can fail: every stream changes, or (above) none did.
            if same is not None:  # the streams keep their rows, which now hold the new state
                same.arrays, same.results, same.states, same.lasts = state, results, {}, {}
                return results
            rows = _Rows(state, self._axes, streams, results)
            for i, s in enumerate(streams):
                held = s._held
                if isinstance(held, tuple):
                    held[0].left += 1
                s._held, s._state = (rows, i), None
            return results
        finally:
            for lock, got in zip(locks, taken, strict=True):
                if got:
                    lock.release()

    @staticmethod
    def _same_group(streams: list[Stream]) -> _Rows | None:
        """The rows of the previous call when it advanced exactly these streams, in this order, and all still
        hold them: their state is then stacked already."""
        first = streams[0]._held
        if isinstance(first, tuple):
            rows = first[0]
            same = len(rows.owners) == len(streams) and all(o() is s for o, s in zip(rows.owners, streams, strict=True))
            if rows.left == 0 and same:
                return rows
        return None

    def _stack_states(self, streams: list[Stream]) -> dict[str, np.ndarray]:
        """The streams' states stacked on the batch axis."""
        parts = [s._host_rows() for s in streams]
        return {n: np.concatenate([p[n] for p in parts], axis=axis) for n, axis in self._axes.items()}


class _Rows:
    """What a batch call left: the stacked state and results, of which each of its streams holds one row.

    ``left`` counts the streams that have since moved on (fed alone, restored, called with others):
    while it is 0, the same streams in the same order can be advanced from ``arrays`` as they are.
    """

    __slots__ = ("arrays", "axes", "lasts", "left", "owners", "results", "states")

    def __init__(
        self, arrays: dict[str, np.ndarray], axes: Mapping[str, int], owners: list[Stream], results: np.ndarray
    ) -> None:
        self.arrays, self.axes, self.results, self.left = arrays, axes, results, 0
        # Weak: each owner holds these rows, so strong references would make a cycle per call, freed only
        # by the cyclic collector (the stacked arrays piled up in a long-lived StreamBatch).
        self.owners = [weakref.ref(s) for s in owners]
        self.states: dict[int, State] = {}  # the rows' States made so far (Stream.state), by row
        self.lasts: dict[int, np.ndarray] = {}  # and their results' rows (Stream.last)

    def row(self, i: int) -> dict[str, np.ndarray]:
        """Row ``i`` of every part (batch 1; a view where the batch axis comes first, else a copy)."""
        out = {}
        for name, a in self.arrays.items():
            index: list[Any] = [slice(None)] * a.ndim
            index[self.axes[name]] = slice(i, i + 1)
            out[name] = np.ascontiguousarray(a[tuple(index)])
        return out


class Stream:
    """One state (batch 1) of a model, its options and its last result; ``feed`` advances it.

    A failed ``feed`` leaves the state exactly as it was. A stream belongs to one thread at a
    time: using it from two at once raises :class:`ConcurrentUseError` instead of tearing it.
    """

    def __init__(
        self, model: Model, state: State | None = None, *, strict: bool = False, state_on_device: bool = False
    ) -> None:
        self.model = model
        self.strict = strict
        state = model.init_state(1) if state is None else model.check_state(state, 1)
        # The state is held as one of: host arrays by state input name (a dict only this stream holds),
        # device values, or a row of a batch call's stacked state ((rows, i)). The immutable State
        # (_state) is made only when someone asks for it.
        self._held: dict[str, Any] | tuple[_Rows, int] = dict(state.arrays)
        self._held_on_device = False  # whether _held holds device values
        self._state: State | None = state
        self._on_device = state_on_device  # fixed for the stream's life
        self._lock = threading.Lock()
        self._exclusive = Exclusive(self._lock, "stream")
        self._last: np.ndarray | None = state.prediction

    @property
    def state(self) -> State:
        """The current state: an immutable value, safe to keep and restore later (with its prediction)."""
        held = self._held
        if isinstance(held, tuple):  # a row of a batch call's state: its State is kept with the rows
            rows, i = held
            found = rows.states.get(i)
            if found is None:
                with self._exclusive:
                    found = self.model._freeze(rows.row(i), 1, rows.results[i])
                rows.states[i] = found
            return found
        state = self._state
        if state is None:
            with self._exclusive:
                state = self.model._freeze(self._host_rows(), 1, self.last)
                self._state = state
        return state

    @state.setter
    def state(self, state: State) -> None:
        with self._exclusive:
            checked = self.model.check_state(state, 1)
            held = self._held
            if isinstance(held, tuple):
                held[0].left += 1
            self._state, self._held, self._last = checked, dict(checked.arrays), checked.prediction
            self._held_on_device = False

    @property
    def last(self) -> np.ndarray | None:
        """What the latest ``feed`` returned, or the prediction stored with a restored state (else ``None``).

        After a call with other streams: this stream's row of the call's stacked results (a view).
        """
        held = self._held
        if isinstance(held, tuple):
            rows, i = held
            last = rows.lasts.get(i)
            if last is None:
                last = rows.lasts[i] = rows.results[i]
            return last
        return self._last

    def reset(self) -> None:
        """Start again from the model's initial state."""
        self.state = self.model.init_state(1)

    def copy(self) -> Stream:
        """An independent stream starting from this one's state (to branch)."""
        return Stream(self.model, self.state, strict=self.strict, state_on_device=self._on_device)

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

    def top_k(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` likeliest entries of the last result (next words, classes), with their probabilities."""
        last = self.last
        if last is None:
            raise InputError(
                "no prediction yet: feed at least one input after creating or resetting the stream, or restore "
                "a state that carries one"
            )
        return self.model.top_k(last, k)

    def feed(self, x: Any) -> np.ndarray:
        """Advance the state by ``x`` and return the model's result after everything fed so far."""
        with self._exclusive:
            model = self.model
            graph_input = model.stream_input(x, strict=self.strict)
            if graph_input.shape[0] != 1:
                raise InputError(f"a stream takes one sequence at a time, got batch {graph_input.shape[0]}")
            held = self._held
            if self._on_device:
                values = (
                    held if isinstance(held, dict) and self._held_on_device else upload(self._host_rows(), model.device)
                )
                results, new = model._advance(graph_input, values, on_device=True)
            else:
                results, new = model._advance(graph_input, self._host_rows(), on_device=False)
            result: np.ndarray = results[0]
            if isinstance(held, tuple):  # it leaves the rows of its last call with others
                held[0].left += 1
            self._held, self._held_on_device, self._state, self._last = new, self._on_device, None, result
            return result

    def _host_rows(self) -> dict[str, np.ndarray]:
        """The state as host arrays of batch 1 (copied from the device, or a view of a batch call's row)."""
        held = self._held
        if isinstance(held, tuple):
            return held[0].row(held[1])
        if self._held_on_device:
            return download(held)
        return held


def _closed_call(path: Path) -> RunFn:
    """What a closed model calls instead of onnxruntime (a function, not a method: no reference cycle)."""

    def closed(names: object, feeds: object) -> list[Any]:
        raise ModelClosedError(f"model {path} was closed")

    return closed
