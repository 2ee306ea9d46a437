"""Loaded tiny models shared by the runtime tests: one per test module, closed after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rnnedge.runtime import ClassifierModel, LanguageModel, load


@pytest.fixture(scope="module")
def clf(tiny_onnx: Path) -> Iterator[ClassifierModel]:
    model = load(tiny_onnx, threads=1)
    assert isinstance(model, ClassifierModel)
    yield model
    model.close()


@pytest.fixture(scope="module")
def lm(tiny_lm_onnx: Path) -> Iterator[LanguageModel]:
    model = load(tiny_lm_onnx, threads=1)
    assert isinstance(model, LanguageModel)
    yield model
    model.close()
