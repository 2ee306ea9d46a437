"""Quality over a test file, measured through the runtime: accuracy of a classifier, perplexity of a language model.

The one implementation that ``rnnedge classify`` / ``rnnedge perplexity`` (``cli/infer.py``) and
export (``export/quality.py``, which records the number in a variant's metadata) both call, so the
number a file records is the number the command prints for it. Needs numpy, onnxruntime and
rnnedge's data readers (no torch). Int8 files quantize each call's activations over the whole
call, so the chunk and window sizes are part of the measure: these are the commands' defaults.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnedge.errors import DataError

from .classifier import ClassifierModel
from .errors import InputError, MissingExtraError
from .language import LanguageModel
from .metadata import ModelMetadata

__all__ = [
    "CLASSIFY_CHUNK",
    "NAMED_COLUMNS",
    "PERPLEXITY_WINDOW",
    "Accuracy",
    "ClassReport",
    "accuracy_on_file",
    "class_report",
    "perplexity_on_file",
    "plot_confusion",
    "recorded_test_file",
]

CLASSIFY_CHUNK = 500  # labelled sequences per predict call (one onnxruntime call each)
PERPLEXITY_WINDOW = 100  # tokens per onnxruntime run

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Accuracy:
    """A classifier's accuracy on a file: the fraction right, of how many sequences, from which file, per class."""

    value: float
    count: int
    path: Path
    report: ClassReport


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
    predicted = []
    for lo in range(0, len(sequences), chunk):
        probs = model.predict(sequences[lo : lo + chunk], batch_size=chunk)  # (n, classes)
        predicted.append(probs.argmax(1))
        if progress is not None:
            progress(min(lo + chunk, len(sequences)), len(sequences))
    report = class_report(labels, np.concatenate(predicted), model.labels)
    return Accuracy(report.accuracy, len(sequences), Path(path), report)


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


NAMED_COLUMNS = 8
"""Longest class name the confusion matrix's text heads a column with (longer ones are numbered)."""


@dataclass(frozen=True)
class ClassReport:
    """``confusion[i, j]``: cases of true class ``i`` predicted as ``j`` (int64 ``(C, C)``), and what follows from it.

    Per class (float64 ``(C,)``): ``precision`` (of the cases predicted as the class, the share that are),
    ``recall`` (of the class's cases, the share found), ``f1`` (their harmonic mean) and ``support``
    (the class's cases, int64). A share with nothing to divide (no case predicted as a class) is 0,
    as scikit-learn's ``zero_division=0`` reads it.
    """

    labels: tuple[str, ...]
    confusion: np.ndarray

    @property
    def support(self) -> np.ndarray:
        out: np.ndarray = self.confusion.sum(axis=1)
        return out

    @property
    def precision(self) -> np.ndarray:
        return _share(np.diag(self.confusion), self.confusion.sum(axis=0))

    @property
    def recall(self) -> np.ndarray:
        return _share(np.diag(self.confusion), self.support)

    @property
    def f1(self) -> np.ndarray:
        p, r = self.precision, self.recall
        return _share(2 * p * r, p + r)

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(int(self.confusion.sum()), 1))

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON: accuracy, macro averages, one row per class and the confusion matrix."""
        rows = [
            {"label": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(self.labels, self.precision, self.recall, self.f1, self.support, strict=True)
        ]
        return {
            "accuracy": self.accuracy,
            "macro": {k: float(getattr(self, k).mean()) for k in ("precision", "recall", "f1")},
            "classes": rows,
            "confusion": self.confusion.tolist(),
        }

    def table(self) -> str:
        """The per-class table (text, one class a line), with macro averages and accuracy."""
        width = max(12, *(len(name) for name in self.labels))
        lines = [f"{'class':<{width}}  precision  recall  f1      support"]
        for name, p, r, f, s in zip(self.labels, self.precision, self.recall, self.f1, self.support, strict=True):
            lines.append(f"{name:<{width}}  {p:9.4f}  {r:6.4f}  {f:6.4f}  {s:7d}")
        total = int(self.support.sum())
        macro = (self.precision.mean(), self.recall.mean(), self.f1.mean())
        lines.append(f"{'macro avg':<{width}}  {macro[0]:9.4f}  {macro[1]:6.4f}  {macro[2]:6.4f}  {total:7d}")
        lines.append(f"{'accuracy':<{width}}  {'':9}  {'':6}  {self.accuracy:6.4f}  {total:7d}")
        return "\n".join(lines)

    def confusion_text(self) -> str:
        """The confusion matrix: a row per true class, a column per predicted class.

        Columns are headed by the class names when all are short (at most :data:`NAMED_COLUMNS` characters);
        otherwise rows and columns are numbered (``#0``, ``#1``, ...: not to be read as a class named ``0``).
        """
        counts = self.confusion
        named = all(len(name) <= NAMED_COLUMNS for name in self.labels)
        heads = list(self.labels) if named else [f"#{j}" for j in range(len(self.labels))]
        cell = max(4, len(str(int(counts.max()))) + 1, *(len(h) + 1 for h in heads))
        rows = list(self.labels) if named else [f"#{i} {name}" for i, name in enumerate(self.labels)]
        width = max(16, *(len(r) for r in rows))
        head = f"{'true / predicted':<{width}}" + "".join(f"{h:>{cell}}" for h in heads)
        lines = [f"{r:<{width}}" + "".join(f"{int(v):>{cell}}" for v in counts[i]) for i, r in enumerate(rows)]
        return "\n".join([head, *lines])


def _share(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    num, den = numerator.astype(np.float64), denominator.astype(np.float64)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def class_report(
    truth: np.ndarray | Sequence[int], predicted: np.ndarray | Sequence[int], labels: Sequence[str]
) -> ClassReport:
    """The report of class ids ``predicted`` against ``truth`` (each ``(N,)``, values in ``[0, len(labels))``)."""
    t, p = np.asarray(truth), np.asarray(predicted)
    c = len(labels)
    if t.ndim != 1 or p.shape != t.shape or len(t) == 0:
        raise InputError(f"expected two class-id arrays of one shape (N,), N >= 1; got shapes {t.shape} and {p.shape}")
    for name, a in (("true", t), ("predicted", p)):
        if not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= c:
            raise InputError(f"{name} class ids must be integers in [0, {c}); got {a.dtype} in [{a.min()}, {a.max()}]")
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (t, p), 1)
    return ClassReport(tuple(labels), confusion)


def plot_confusion(report: ClassReport, path: str | os.PathLike[str], title: str = "") -> Path:
    """Draw the confusion matrix (counts, rows normalised in colour) with the per-class F1 to a PNG; its path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError("the confusion matrix PNG needs matplotlib: pip install 'rnnedge[plot]'") from None
    counts = report.confusion
    c = len(report.labels)
    size = min(max(4.0, 0.5 * c + 2.5), 16.0)
    fig, ax = plt.subplots(figsize=(size, size))
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(c):
        for j in range(c):
            ax.text(
                j, i, str(int(counts[i, j])), ha="center", va="center", color="white" if rates[i, j] > 0.5 else "black"
            )
    names = [f"{n} (F1 {f:.2f})" for n, f in zip(report.labels, report.f1, strict=True)]
    ax.set_xticks(range(c), [str(n) for n in report.labels], rotation=45, ha="right")
    ax.set_yticks(range(c), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {report.accuracy:.4f}")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
