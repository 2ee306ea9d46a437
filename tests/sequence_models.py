"""Helpers for the tests of sequence classifiers on a user's files: the real UEA files, tiny models."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def uea_dir() -> Path:
    """The folder holding ``JapaneseVowels/`` and ``GunPoint/`` (``$RNNEDGE_DATA/uea``), else the test is skipped."""
    for candidate in (os.environ.get("RNNEDGE_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "uea" / "JapaneseVowels").is_dir():
            return Path(candidate) / "uea"
    pytest.skip("the UEA files are not here: set RNNEDGE_DATA to a folder holding uea/JapaneseVowels")


def vowels(split: str) -> Path:
    return uea_dir() / "JapaneseVowels" / f"JapaneseVowels_{split.upper()}.ts"


def gunpoint(split: str) -> Path:
    return uea_dir() / "GunPoint" / f"GunPoint_{split.upper()}.ts"


def first_cases(source: Path, n: int, out: Path) -> Path:
    """A real subset: ``source``'s header and first ``n`` cases (a line each after ``@data``), written to ``out``."""
    lines = source.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data") + 1
    out.write_text("".join(lines[:start] + [line for line in lines[start:] if line.strip()][:n]))
    return out


def train_tiny_sequences(
    out: Path, *, epochs: int = 3, train: Path | None = None, test: Path | None = None, **model: Any
) -> Path:
    """A tiny classifier trained for a few epochs on JapaneseVowels (seconds); returns its checkpoint."""
    pytest.importorskip("torch", reason="training a model needs the train extra")
    from rnnedge.training.config import SequenceClassifierConfig, SequenceTrainConfig
    from rnnedge.training.train_sequences import train_sequence_classifier

    train_sequence_classifier(
        SequenceClassifierConfig(**{"hidden_size": 12, **model}),
        SequenceTrainConfig(epochs=epochs, batch_size=32, lr=1e-2),
        out,
        train_file=train or vowels("train"),
        test_file=test or vowels("test"),
        quiet=True,
        threads=1,
    )
    return out / "checkpoint.pt"


def random_checkpoint(path: Path, channels: int = 3, classes: int = 4, **model: Any) -> Path:
    """An untrained classifier's checkpoint (random weights, made-up normalisation): for parity and runtime checks."""
    torch = pytest.importorskip("torch", reason="building a model needs the train extra")
    from rnnedge.training.checkpoint import save_checkpoint
    from rnnedge.training.config import SequenceClassifierConfig
    from rnnedge.training.models import SequenceClassifier

    torch.manual_seed(0)
    config = SequenceClassifierConfig(**{"input_size": channels, "num_classes": classes, "hidden_size": 8, **model})
    save_checkpoint(
        path,
        {
            "kind": "sequence_classifier",
            "model": SequenceClassifier(config).state_dict(),
            "config": asdict(config),
            "standardize": {"mean": [float(c) for c in range(channels)], "std": [1.0 + c for c in range(channels)]},
            "labels": [f"class {k}" for k in range(classes)],
            "metrics": {},
        },
    )
    return path


# Models of the runtime's tests (random weights: the runtime's behaviour does not depend on them).
SEQUENCE_MODELS = {
    "lstm-mean": {"cell": "lstm", "head": "mean"},
    "gru2-last": {"cell": "gru", "num_layers": 2, "head": "last"},
    "bigru-mean": {"cell": "gru", "bidirectional": True, "head": "mean"},  # forward carried, prefix re-read
    "bilstm2-last": {"cell": "lstm", "num_layers": 2, "bidirectional": True, "head": "last"},  # prefix alone
    "lstm-conv-last": {"cell": "lstm", "head": "last", "conv_channels": 4},  # a convolutional branch: prefix alone
    "bigru-conv-mean": {"cell": "gru", "bidirectional": True, "head": "mean", "conv_channels": 4},  # prefix alone
}


def write_sequence_models(folder: Path) -> dict[str, Path]:
    """Export :data:`SEQUENCE_MODELS` into ``folder`` as ``sequence-NAME.onnx`` (needs the train extra)."""
    pytest.importorskip("onnx", reason="exporting a model needs the train extra")
    from rnnedge.export.exporter import export_checkpoint

    out = {}
    for name, cfg in SEQUENCE_MODELS.items():
        out[name] = folder / f"sequence-{name}.onnx"
        export_checkpoint(random_checkpoint(folder / f"sequence-{name}.pt", **cfg), out[name])
    return out


def prebuilt_sequence_models() -> dict[str, Path] | None:
    """The files ``tests/write_test_models.py`` wrote into ``$RNNEDGE_TEST_MODELS`` (None when it is not set)."""
    folder = os.environ.get("RNNEDGE_TEST_MODELS")
    if not folder:
        return None
    out = {name: Path(folder) / f"sequence-{name}.onnx" for name in SEQUENCE_MODELS}
    missing = [str(p) for p in out.values() if not p.is_file()]
    if missing:
        pytest.fail(f"RNNEDGE_TEST_MODELS={folder} lacks {missing}; write them with tests/write_test_models.py")
    return out
