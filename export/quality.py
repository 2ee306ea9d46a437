"""Quality of an exported file measured through the runtime, on the held-out test data.

Used for the variants (int8): what a user will get is measured on the file itself.
Needs only numpy and onnxruntime besides the data readers.
"""

from __future__ import annotations

import os
from pathlib import Path

from rnnedge.runtime import ClassifierModel, load
from rnnedge.runtime.language import LanguageModel

__all__ = ["measure_quality"]


def measure_quality(model_path: Path, data: str | os.PathLike[str] | None = None) -> dict[str, float]:
    """``{"test_accuracy": ...}`` for a classifier, ``{"test_perplexity": ...}`` for a language model."""
    model = load(model_path)
    try:
        if isinstance(model, ClassifierModel):
            from rnnedge.data.mnist import load_mnist

            test = load_mnist(data)
            probs = model.predict(test.test_images, batch_size=1000)
            return {"test_accuracy": float((probs.argmax(1) == test.test_labels).mean())}
        if isinstance(model, LanguageModel):
            from rnnedge.data.ptb import load_ptb

            corpus = load_ptb(data)
            return {"test_perplexity": model.perplexity_of_ids(corpus.test, window=200)}
        raise TypeError(f"no quality measure for a {model.kind}")
    finally:
        model.close()
