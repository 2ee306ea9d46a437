"""The loaded model as callers see it: the functional core, streams, and the engine underneath.

``init_state`` and ``step`` are the explicit core every other path uses (streams,
batched streams, ``predict``, ``generate``); a ``Model`` holds no per-caller state, so
one instance can be shared between threads. Task faces (:class:`ClassifierModel`,
:class:`LanguageModel`) add what their kind is for on top of the same engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import numpy as np
import onnxruntime as ort

from .codec import Codec
from .engine import Engine, Outputs
from .errors import ConfigError, NotPicklableError
from .metadata import ModelMetadata
from .state import State
from .stream import Stream
from .stream_batch import StreamBatch

ModelT = TypeVar("ModelT", bound="Model")

__all__ = ["Model", "Outputs"]


class Model:
    """A loaded rnnedge model. Use :func:`rnnedge.runtime.load` to make one."""

    def __init__(self, engine: Engine, *, state_on_device: bool | None = None) -> None:
        self.engine = engine
        codec: Codec = engine.codec
        # On CUDA a language model's streams keep their state on the device between steps (binding.py).
        if state_on_device is None:
            state_on_device = engine.device == "cuda" and codec.state_on_device
        elif state_on_device and not codec.state_on_device:
            raise ConfigError(
                f"state_on_device: only language models keep streams' state on the device, {engine.path} is a "
                f"{engine.metadata.kind}"
            )
        self.state_on_device = state_on_device

    # -- what the file says ------------------------------------------------------------------
    @property
    def metadata(self) -> ModelMetadata:
        """Everything the file says about itself."""
        return self.engine.metadata

    @property
    def path(self) -> Path:
        """The file this model was loaded from."""
        return self.engine.path

    @property
    def provider(self) -> str:
        """``cpu`` or ``cuda``: the execution provider actually used."""
        return self.engine.provider

    @property
    def device(self) -> str:
        """Where streams keep their state when ``state_on_device`` is on."""
        return self.engine.device

    @property
    def kind(self) -> str:
        """``causal_classifier``, ``noncausal_classifier`` or ``language_model``."""
        return self.metadata.kind

    @property
    def causal(self) -> bool:
        """False for models whose output after a chunk depends on the whole prefix (bidirectional)."""
        return self.metadata.causal

    @property
    def stream_outputs(self) -> tuple[str, ...]:
        """The graph outputs a stream's result is made of, all that a stream's step fetches."""
        return self.engine.codec.stream_outputs

    @property
    def session(self) -> ort.InferenceSession:
        """The onnxruntime session; raises :class:`ModelClosedError` after :meth:`close`."""
        return self.engine.session

    def close(self) -> None:
        """Release the onnxruntime session; later calls raise :class:`ModelClosedError`."""
        self.engine.close()

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

    # -- the functional core -------------------------------------------------------------
    def init_state(self, batch: int = 1) -> State:
        """Zero state for ``batch`` independent sequences."""
        return self.engine.init_state(batch)

    def check_state(self, state: object, batch: int | None = None) -> State:
        """Return ``state`` if it fits this model (and ``batch``); else raise :class:`StateError`."""
        return self.engine.check_state(state, batch)

    def state_from_arrays(self, arrays: Mapping[str, Any]) -> State:
        """Build a :class:`State` from plain arrays (e.g. saved by the caller), checking every part."""
        return self.engine.state_from_arrays(arrays)

    def check_input(self, x: object) -> np.ndarray:
        """The graph's main input must match the metadata exactly (dtype, rank, fixed sizes, non-empty)."""
        return self.engine.check_input(x)

    def step(self, x: object, state: State | Mapping[str, np.ndarray], lengths: object = None) -> tuple[Outputs, State]:
        """Run the graph on ``x`` from ``state``; return ``({output name: array}, new state)``.

        ``x`` is the graph's input exactly as ``metadata.input`` describes it (already
        preprocessed). Nothing is modified: the caller decides whether to keep the new state.
        ``lengths`` (files with a ``lengths`` input): the valid steps of each row of ``x``.
        """
        return self.engine.step(x, state, lengths)

    def stream_input(self, x: Any) -> np.ndarray:
        """Turn what a caller feeds a stream into the checked graph input (batch 1)."""
        return self.engine.codec.to_graph(x)

    def stream_results(self, outputs: list[np.ndarray]) -> np.ndarray:
        """Turn the ``stream_outputs`` (in that order) into what a stream's ``feed`` returns, a row per sequence."""
        return self.engine.codec.results(outputs)

    def stream(self) -> Stream:
        """A stream holding one state for one caller; what ``feed`` takes and returns depends on the kind."""
        return Stream(self.engine, state_on_device=self.state_on_device)

    def stream_batch(self) -> StreamBatch:
        """Many named streams stepped together in one onnxruntime call (causal models only)."""
        return StreamBatch(self.engine)
