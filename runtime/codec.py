"""What a kind of model adds to the engine: how user input becomes graph input, and outputs results.

A codec is built from the metadata alone (preprocessing tables, vocabulary) before the engine
that uses it, and holds no per-caller state. The engine asks it for the checks that need a
kind's knowledge; streams and stream batches ask it to convert inputs and outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .metadata import ModelMetadata

__all__ = ["Codec"]


class Codec:
    """The base codec: graph input in, graph outputs out, no extra checks. Kinds override what they need."""

    #: The graph outputs a stream's result is made of: all that a stream's step fetches.
    stream_outputs: tuple[str, ...]
    #: Whether streams may keep their state on the execution device between steps (nothing is read
    #: from the state between steps; a classifier's row-count guard reads it).
    state_on_device = False

    def __init__(self, metadata: ModelMetadata) -> None:
        self.metadata = metadata
        self.stream_outputs = tuple(o.name for o in metadata.outputs)

    def to_graph(self, x: Any) -> np.ndarray:
        """What a caller feeds one stream -> the checked graph input of batch 1."""
        raise NotImplementedError(f"{self.metadata.kind} models do not stream")

    def stack(self, items: list[Any]) -> np.ndarray | None:
        """Many streams' inputs as one graph input, when all are of a plain kind checked here at once.

        ``None`` (the default, and for anything else): each is converted with ``to_graph``, whose
        errors say which input is wrong.
        """
        return None

    def results(self, outputs: list[np.ndarray]) -> np.ndarray:
        """The ``stream_outputs`` (in that order) -> what a stream's ``feed`` returns, a row per sequence."""
        return outputs[0]

    def check_graph_input(self, x: np.ndarray) -> None:
        """Checks of a graph input beyond its dtype and shape (e.g. token ids inside the vocabulary)."""

    def check_state(self, arrays: Mapping[str, Any]) -> None:
        """Checks of a state's values beyond its parts' dtypes and shapes."""

    def guard(self, x: np.ndarray, arrays: Mapping[str, Any]) -> None:
        """A last check of a run that needs the state's values (none by default)."""
