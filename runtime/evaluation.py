"""Quality over a test file, measured through the runtime: accuracy of a classifier, perplexity of a language model.

The one implementation that ``rnnedge classify`` / ``rnnedge perplexity`` (``cli/infer.py``) and
export (``export/quality.py``, which records the number in a variant's metadata) both call, so the
number a file records is the number the command prints for it. Needs numpy, onnxruntime and
rnnedge's data readers (no torch). Int8 files quantize each call's activations over the whole
call, so the chunk and window sizes are part of the measure: these are the commands' defaults.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rnnedge.errors import DataError

from .classifier import ClassifierModel
from .language import LanguageModel
from .metadata import ModelMetadata

__all__ = [
    "CLASSIFY_CHUNK",
    "PERPLEXITY_WINDOW",
    "Accuracy",
    "accuracy_on_file",
    "perplexity_on_file",
    "recorded_test_file",
]

CLASSIFY_CHUNK = 500  # labelled sequences per predict call (one onnxruntime call each)
PERPLEXITY_WINDOW = 100  # tokens per onnxruntime run

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Accuracy:
    """A classifier's accuracy on a file: the fraction right, of how many sequences, from which file."""

    value: float
    count: int
    path: Path


def recorded_test_file(metadata: ModelMetadata, data: str | os.PathLike[str] | None = None) -> Path:
    """The test file a model records from training (``config.data.test``), found where it was or in ``data``.

    Looked for where training read it, then under its name in the data folder ``data`` (or
    ``$RNNEDGE_DATA``, or the cache): :func:`~rnnedge.data.datasets.find_data_file`. A model that
    records none raises :class:`DataError`.
    """
    from rnnedge.data.datasets import find_data_file

    record = metadata.config.get("data")
    test = record.get("test") if isinstance(record, dict) else None
    if not isinstance(test, str):
        raise DataError("the model records no test file (config.data.test in its metadata); give one")
    return find_data_file(test, data)


def accuracy_on_file(
    model: ClassifierModel,
    path: Path,
    *,
    limit: int | None = None,
    chunk: int = CLASSIFY_CHUNK,
    progress: Progress | None = None,
) -> Accuracy:
    """Accuracy of ``model`` on the labelled sequences of ``path`` (``.ts``, ``.npz`` or IDX images).

    The file's class names are matched to the model's labels (a class the model lacks is a
    :class:`DataError`); the first ``limit`` sequences (all: None) go to ``predict`` ``chunk`` at a
    time. ``progress(done, total)`` is called after each chunk.
    """
    from rnnedge.data.sequences import read_sequences

    test = read_sequences(path, class_names=model.labels)
    sequences, labels = list(test.sequences)[:limit], test.labels[:limit]
    correct = 0
    for lo in range(0, len(sequences), chunk):
        probs = model.predict(sequences[lo : lo + chunk], batch_size=chunk)  # (n, classes)
        correct += int((probs.argmax(1) == labels[lo : lo + chunk]).sum())
        if progress is not None:
            progress(min(lo + chunk, len(sequences)), len(sequences))
    return Accuracy(correct / len(sequences), len(sequences), Path(path))


def perplexity_on_file(
    model: LanguageModel,
    path: Path,
    *,
    window: int = PERPLEXITY_WINDOW,
    strict: bool = False,
    progress: Progress | None = None,
) -> float:
    """Perplexity of ``model`` on the text file ``path``: every line closed by ``<eos>``, state carried, batch 1."""
    return model.perplexity(Path(path), window=window, strict=strict, progress=progress)
