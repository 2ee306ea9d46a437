"""Quality of an exported file measured through the runtime, exactly as the command line measures it.

Used for the variants (int8, fp16): what a user gets is measured on the file itself, and
the number recorded in its metadata is the number ``rnnedge classify FILE`` or ``rnnedge
perplexity FILE ptb.test.txt`` prints for that file. That matters for int8 files: dynamic
quantization picks one activation scale per tensor over the whole batch, so an int8
classifier's accuracy depends on how the test set is split into batches, and an int8
language model's perplexity on the window length. Both call :mod:`rnnedge.runtime.evaluation`,
with the same loads, batches and windows; ``tests/export`` holds both to the same digits. Needs
only numpy and onnxruntime besides the data readers.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from rnnedge.runtime import LanguageModel, ModelMetadata, load
from rnnedge.runtime.evaluation import CLASSIFY_CHUNK, PERPLEXITY_WINDOW, perplexity_on_file, recorded_test_file

__all__ = [
    "CLASSIFY_CHUNK",
    "PERPLEXITY_WINDOW",
    "Measured",
    "format_quality",
    "language_model_quality",
    "measure_quality",
    "test_file_of",
]


@dataclass(frozen=True)
class Measured:
    """Quality values of one file, and how each was measured (a sentence per key, for the metadata's notes)."""

    values: dict[str, float]
    how: dict[str, str] = field(default_factory=dict)


def test_file_of(metadata: ModelMetadata, data: str | os.PathLike[str] | None = None) -> Path:
    """The file a model's quality is measured on: ``data`` if it is a file, else the test file training recorded.

    The recorded file (``config.data.test``) is looked for where it was, then in the data folder
    ``data`` (or ``$RNNEDGE_DATA``, or the cache) under its name (:func:`~rnnedge.data.datasets.find_data_file`).
    """
    if data is not None and Path(data).is_file():
        return Path(data)
    return recorded_test_file(metadata, data)


def language_model_quality(model_path: Path, data: str | os.PathLike[str] | None = None) -> Measured:
    """``test_perplexity`` on the model's test text (:func:`test_file_of`), as ``rnnedge perplexity FILE TEST``.

    A character model adds ``test_bpc``, bits per character.
    """
    with load(model_path, provider="cpu", threads=1) as model:
        if not isinstance(model, LanguageModel):
            raise TypeError(f"{model_path} is a {model.kind}, not a language model")
        test_file = test_file_of(model.metadata, data)
        value = perplexity_on_file(model, test_file)
        chars = model.tokens == "chars"
    how = (
        f"`rnnedge perplexity FILE {test_file.name}`: batch 1, state carried, {PERPLEXITY_WINDOW} tokens per run "
        "(its default window), CPU provider"
    )
    values, hows = {"test_perplexity": value}, {"test_perplexity": how}
    if chars:
        values["test_bpc"] = math.log2(value)
        hows["test_bpc"] = "bits per character: log2 of test_perplexity"
    return Measured(values, hows)


def format_quality(quality: dict[str, float]) -> str:
    """``key value`` pairs as people read them: accuracies to 4 places, perplexities to 2, changes signed."""
    parts = []
    for key, value in quality.items():
        places = 2 if "perplexity" in key else 3 if "bpc" in key else 4
        sign = "+" if key.endswith("_change") else ""
        parts.append(f"{key} {value:{sign}.{places}f}")
    return ", ".join(parts)


def measure_quality(model_path: Path, data: str | os.PathLike[str] | None = None) -> Measured:
    """The quality of any exported file, measured as its kind's command does (see :mod:`.kinds`)."""
    from rnnedge.errors import ModelFileError
    from rnnedge.runtime import read_metadata

    from .kinds import export_kind_for

    checkpoint_kind = read_metadata(model_path).config.get("checkpoint_kind")
    if not isinstance(checkpoint_kind, str):
        raise ModelFileError(f"cannot measure {model_path}: its metadata names no checkpoint_kind in config")
    kind = export_kind_for(checkpoint_kind)
    if kind.measure is None:
        raise ModelFileError(f"cannot measure {model_path}: files of kind {kind.name} have no quality measure")
    return kind.measure(model_path, data)
