"""What ``serve`` asks of a model kind, as one small record per kind, looked up by the file's ``kind``.

The server and the batcher never test a model's class: they ask the kind's :class:`ServeKind`.
Built-in kinds register in their own modules (:mod:`.language_kind`, :mod:`.classifier_kind`, :mod:`.tagger_kind`),
which :func:`serve_kind` imports on first use; a new kind adds a module that calls
:func:`register_serve_kind` and names it in ``_BUILT_IN``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnedge.runtime import ConfigError, Model

from .outcomes import FeedOutcome

__all__ = ["ServeKind", "register_serve_kind", "serve_kind"]

_BUILT_IN = ("rnnedge.serve.language_kind", "rnnedge.serve.classifier_kind", "rnnedge.serve.tagger_kind")


@dataclass(frozen=True)
class ServeKind:
    """How ``serve`` reads one kind's inputs and names its predictions.

    ``labels(model)``: the names of a prediction's entries, in order (``top_k`` pairs name them).
    ``read_input(model, value, strict)``: a feed's JSON ``input`` -> what ``StreamBatch.feed`` takes
    for one stream and the number of steps it advances; raises the runtime's ``InputError``.
    ``opened(model)``: the kind's own fields of the ``opened`` reply.
    ``unit``: what one step of a feed is called in messages ("tokens", "rows", "frames").
    ``outcomes(results, ks, labels)``: a batched step's stacked result (``StreamBatch.feed_stacked``)
    -> each feed's :class:`~rnnedge.serve.outcomes.FeedOutcome` with its top-``ks[i]`` pairs
    (:func:`~rnnedge.serve.outcomes.per_feed` or :func:`~rnnedge.serve.outcomes.per_frame`).
    ``generates``: ``generate`` applies: a sampled entry's index, as ``int64 (1,)``, is the next input.
    """

    labels: Callable[[Model], tuple[str, ...]]
    read_input: Callable[[Model, Any, bool], tuple[np.ndarray, int]]
    opened: Callable[[Model], dict[str, Any]]
    unit: str
    outcomes: Callable[[np.ndarray, Sequence[int], tuple[str, ...]], list[FeedOutcome]]
    generates: bool = False


_KINDS: dict[str, ServeKind] = {}


def register_serve_kind(names: tuple[str, ...], kind: ServeKind) -> None:
    """Serve files whose metadata ``kind`` is one of ``names`` with ``kind``."""
    for name in names:
        if name in _KINDS:
            raise ValueError(f"serve kind {name!r} is registered twice")
        _KINDS[name] = kind


def serve_kind(model: Model) -> ServeKind:
    """The registered :class:`ServeKind` of ``model``'s file; :class:`ConfigError` for a kind serve cannot serve."""
    if not _KINDS:
        for module in _BUILT_IN:
            importlib.import_module(module)
    try:
        return _KINDS[model.kind]
    except KeyError:
        raise ConfigError(f"serve: {model.kind} models cannot be served ({', '.join(sorted(_KINDS))} can)") from None
