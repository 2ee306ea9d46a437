"""Shared fixtures: the real data folder, and tiny real models trained once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from rnnedge.runtime import ClassifierModel, LanguageModel, Model, load

M = TypeVar("M", bound=Model)

REPO = Path(__file__).resolve().parents[1]
# A folder of ready-made tiny models (tests/write_test_models.py writes it): the runtime's tests then
# run on the base install, with neither torch nor onnx, as `.ci/check_base_install.sh` does.
PREBUILT = os.environ.get("RNNEDGE_TEST_MODELS")


def _prebuilt(name: str) -> Path:
    assert PREBUILT is not None
    path = Path(PREBUILT) / name
    if not path.is_file():
        pytest.fail(f"RNNEDGE_TEST_MODELS={PREBUILT} lacks {name}; write it with tests/write_test_models.py")
    return path


def _data_dir() -> Path | None:
    for candidate in (os.environ.get("RNNEDGE_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "mnist").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = _data_dir()
    if found is None:
        pytest.skip("real datasets not found: set RNNEDGE_DATA to a folder holding mnist/ and ptb/")
    return found


@pytest.fixture(scope="session")
def mnist(data_dir: Path):
    from rnnedge.data.mnist import load_mnist

    return load_mnist(data_dir)


def train_tiny(data_dir: Path, out: Path, *, bidirectional: bool = False, steps: int = 40) -> Path:
    """The MNIST row classifier (``rnnedge train mnist-lstm``'s preset) with 24 units, ``steps`` steps of 64 images."""
    pytest.importorskip("torch", reason="training a model needs the train extra")
    from dataclasses import replace

    from rnnedge.data.mnist import mnist_files
    from rnnedge.training.config import MNIST_BILSTM, MNIST_LSTM
    from rnnedge.training.train_sequences import train_sequence_classifier

    preset = MNIST_BILSTM if bidirectional else MNIST_LSTM
    train_images, test_images = mnist_files(data_dir)
    train_sequence_classifier(
        replace(preset.model, hidden_size=24),
        replace(preset.train, epochs=1, max_steps=steps, batch_size=64, lr=5e-3),
        out,
        train_file=train_images,
        test_file=test_images,
        quiet=True,
    )
    return out / "checkpoint.pt"


@pytest.fixture(scope="session")
def tiny_checkpoint(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny(data_dir, tmp_path_factory.mktemp("tiny-lstm"))


@pytest.fixture(scope="session")
def tiny_onnx(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if PREBUILT:
        return _prebuilt("tiny.onnx")
    from rnnedge.export.exporter import export_checkpoint

    checkpoint = request.getfixturevalue("tiny_checkpoint")
    return export_checkpoint(checkpoint, tmp_path_factory.mktemp("onnx") / "tiny.onnx").path


@pytest.fixture(scope="session")
def tiny_bi_checkpoint(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny(data_dir, tmp_path_factory.mktemp("tiny-bilstm"), bidirectional=True)


@pytest.fixture(scope="session")
def tiny_bi_onnx(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if PREBUILT:
        return _prebuilt("tiny-bi.onnx")
    from rnnedge.export.exporter import export_checkpoint

    checkpoint = request.getfixturevalue("tiny_bi_checkpoint")
    return export_checkpoint(checkpoint, tmp_path_factory.mktemp("onnx-bi") / "tiny-bi.onnx").path


# -- PTB language model -------------------------------------------------------------------------
# Tiny but real: one LSTM layer of 32 on real PTB for 300 windows of 20 x 10 words, on one
# thread (the fastest on a small shared CPU). Its validation perplexity lands near 510, far
# below the unigram baseline (~690).
TINY_LM_STEPS = 300


@pytest.fixture(scope="session")
def ptb_data(data_dir: Path) -> Path:
    if not (data_dir / "ptb").is_dir():
        pytest.skip(f"PTB files not found in {data_dir / 'ptb'}")
    return data_dir


def train_tiny_lm(data_dir: Path, out: Path, *, steps: int = TINY_LM_STEPS, **model: object) -> Path:
    pytest.importorskip("torch", reason="training a model needs the train extra")
    from rnnedge.data.ptb import load_ptb
    from rnnedge.training.models import LanguageModelConfig
    from rnnedge.training.train_lm import LanguageTrainConfig, train_language_model

    train_language_model(
        LanguageModelConfig(**{"hidden_size": 32, "num_layers": 1, **model}),  # type: ignore[arg-type]
        LanguageTrainConfig(num_steps=10, lr=2.0, max_steps=steps, checkpoint_every=1000),
        out,
        corpus=load_ptb(data_dir),
        name="ptb",
        quiet=True,
        threads=1,
    )
    return out / "checkpoint.pt"


@pytest.fixture(scope="session")
def tiny_lm_checkpoint(ptb_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_lm(ptb_data, tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="session")
def tiny_lm_onnx(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if PREBUILT:
        return _prebuilt("tiny-lm.onnx")
    from rnnedge.export.exporter import export_checkpoint

    checkpoint = request.getfixturevalue("tiny_lm_checkpoint")
    return export_checkpoint(checkpoint, tmp_path_factory.mktemp("lm-onnx") / "tiny-lm.onnx").path


def _loaded(path: Path, kind: type[M]) -> Iterator[M]:
    """A module fixture's model: loaded once per test module (one thread), closed after it."""
    with load(path, threads=1) as model:
        assert isinstance(model, kind)
        yield model


@pytest.fixture(scope="module")
def clf(tiny_onnx: Path) -> Iterator[ClassifierModel]:
    """The tiny row-LSTM classifier."""
    yield from _loaded(tiny_onnx, ClassifierModel)


@pytest.fixture(scope="module")
def bi(tiny_bi_onnx: Path) -> Iterator[ClassifierModel]:
    """The tiny bidirectional classifier."""
    yield from _loaded(tiny_bi_onnx, ClassifierModel)


@pytest.fixture(scope="module")
def lm(tiny_lm_onnx: Path) -> Iterator[LanguageModel]:
    """The tiny language model."""
    yield from _loaded(tiny_lm_onnx, LanguageModel)


_BLOCK_TORCH = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('torch', 'onnx'): raise ImportError('blocked ' + name)\n"
    "sys.meta_path.insert(0, Block())\n"
    "from rnnedge.cli.main import cli\n"
    "cli(sys.argv[1:])\n"
)


def _run_without_torch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _BLOCK_TORCH, *args], capture_output=True, text=True)


@pytest.fixture(scope="session")
def without_torch():
    """Run the CLI as on a device without torch or onnx: an import hook refuses both."""
    return _run_without_torch
