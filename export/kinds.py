"""The model kinds export knows, keyed by the training kind's name (:mod:`rnnedge.training.kinds`).

Each :class:`ExportKind` says how a rebuilt network becomes a file: its graph writer, its
validation reference (PyTorch in numpy terms, with each quantity's scale), its metadata
builder (the fields that differ by kind: the runtime kind, preprocessing and labels or the
vocabulary, quality, notes) and how the quality of a file of this kind is measured. The
exporter looks kinds up here and switches on no kind name. rnnedge's own kinds live in
:mod:`.sequence_classifier` and :mod:`.word_lm`; a new kind is a module like them that calls
:func:`register`: every module of this package is imported when the registry is first asked
(:func:`rnnedge.training.kinds.load_builtin_kinds`), so no list names it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from rnnedge.errors import CheckpointError
from rnnedge.training.kinds import kind_named, load_builtin_kinds

from .quality import Measured
from .validate import Reference

__all__ = ["ExportKind", "export_kind_for", "exportable_kinds", "register"]


@dataclass(frozen=True)
class ExportKind:
    """How one training kind becomes a validated ``.onnx`` file.

    ``graph(module)`` writes the ONNX graph; ``reference(module)`` is what validation compares
    it with; ``describe(checkpoint, module)`` gives the kind's own
    :class:`~rnnedge.runtime.metadata.ModelMetadata` fields (``kind``, ``causal``,
    ``quality``, ``notes`` and preprocessing/labels or vocabulary/unk_id/eos_id);
    ``main_input`` names the graph input that is not state; ``measure(file, data)`` measures
    a file's quality on held-out data the way the command line does (None: not measurable);
    ``lengths_input`` names the graph's per-sequence lengths input, if it has one.
    """

    name: str
    main_input: str
    graph: Callable[[Any], onnx.ModelProto]
    reference: Callable[[Any], Reference]
    describe: Callable[[Mapping[str, Any], Any], dict[str, Any]]
    measure: Callable[[Path, str | os.PathLike[str] | None], Measured] | None = None
    lengths_input: str | None = None  # a graph input of per-sequence valid steps (metadata ``lengths``)


_KINDS: dict[str, ExportKind] = {}


def register(kind: ExportKind) -> ExportKind:
    """Add ``kind`` under its training kind's name; a name registered twice is a programming error."""
    if kind.name in _KINDS and _KINDS[kind.name] is not kind:
        raise ValueError(f"export kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind
    return kind


def exportable_kinds() -> list[str]:
    """The names of the kinds export knows, sorted."""
    load_builtin_kinds(__name__)
    return sorted(_KINDS)


def export_kind_for(checkpoint_kind: object) -> ExportKind:
    """The export kind for a checkpoint's ``"kind"`` (a training kind's name)."""
    load_builtin_kinds(__name__)
    try:
        name = kind_named(checkpoint_kind).name
    except CheckpointError:
        name = None
    if name not in _KINDS:
        raise CheckpointError(
            f"cannot export a checkpoint of kind {checkpoint_kind!r}; known kinds: {exportable_kinds()}"
        )
    return _KINDS[name]
