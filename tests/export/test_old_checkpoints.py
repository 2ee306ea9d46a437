"""Checkpoints an earlier rnnedge wrote keep exporting (``training/old_checkpoints.py``).

The row classifier checkpoints in ``tests/fixtures/format1`` were written by rnnedge's own MNIST kind
(``rnn_classifier``); today they are read as sequence classifiers and export as such, computing what
the files exported from them then computed. They do not resume.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from rnnedge.cli.main import cli
from rnnedge.errors import CheckpointError
from rnnedge.export.exporter import build_export, export_checkpoint
from rnnedge.runtime import load_classifier
from rnnedge.training.checkpoint import load_checkpoint, save_checkpoint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "format1"
EXPECTED = np.load(FIXTURES / "expected.npz")


@pytest.mark.parametrize("name", ["row-lstm", "row-bilstm"])
def test_an_old_row_classifier_checkpoint_exports_and_computes_what_its_old_file_did(name: str, tmp_path: Path) -> None:
    ckpt = load_checkpoint(FIXTURES / f"{name}.pt")
    assert ckpt["kind"] == "sequence_classifier" and ckpt["upgraded_from"] == "rnn_classifier"
    out = export_checkpoint(FIXTURES / f"{name}.pt", tmp_path / "new.onnx").path
    with load_classifier(out) as model, load_classifier(FIXTURES / f"{name}.onnx") as old:
        assert model.metadata.format_version == 1 and model.metadata.standardize is not None
        assert model.labels == old.labels
        images = EXPECTED["images"]
        np.testing.assert_allclose(model.predict(images), EXPECTED[f"{name}_probs"], atol=1e-5)
        np.testing.assert_allclose(model.predict(images[:, :11]), EXPECTED[f"{name}_prefix_probs"], atol=1e-5)
        stream = model.stream()
        for row in images[0]:
            probs = stream.feed(row)
        np.testing.assert_allclose(probs, EXPECTED[f"{name}_probs"][0], atol=1e-5)


def test_an_old_checkpoint_without_preprocessing_or_labels_is_an_mnist_one(tmp_path: Path) -> None:
    raw = load_checkpoint(FIXTURES / "row-lstm.pt")
    import torch

    original = torch.load(FIXTURES / "row-lstm.pt", weights_only=True)
    assert original["kind"] == "rnn_classifier"
    older = {k: v for k, v in original.items() if k not in ("preprocessing", "labels")}
    torch.save({**older, "kind": "mnist-lstm"}, tmp_path / "older.pt")
    upgraded = load_checkpoint(tmp_path / "older.pt")
    assert upgraded["labels"] == list("0123456789") and upgraded["data"]["test"].endswith("t10k-images-idx3-ubyte.gz")
    assert upgraded["standardize"] == raw["standardize"]  # the values every MNIST checkpoint was trained with


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"preprocessing": {"scale": 1.0, "mean": float("nan"), "std": 1.0}}, "finite numbers"),
        ({"preprocessing": {"scale": 0.0, "mean": 0.0, "std": 1.0}}, "expected scale > 0 and std > 0"),
        ({"preprocessing": [1, 2, 3]}, "expected {scale, mean, std}"),
        ({"labels": ["a", "b"]}, "expected 10 strings"),
        ({"config": {"hidden_size": 8}}, "is not a row classifier's"),
    ],
)
def test_a_broken_old_checkpoint_is_refused(change: dict[str, object], message: str, tmp_path: Path) -> None:
    import torch

    original = torch.load(FIXTURES / "row-lstm.pt", weights_only=True)
    torch.save({**original, **change}, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match=message):
        build_export(load_checkpoint(tmp_path / "broken.pt"))
    assert not (tmp_path / "broken.onnx").exists()


def test_an_old_run_does_not_resume_and_is_left_as_it_was(tmp_path: Path, data_dir: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(FIXTURES / "row-lstm.pt", run / "checkpoint.pt")
    before = (run / "checkpoint.pt").read_bytes()
    args = ["train", "mnist-lstm", "--data", str(data_dir), "--out", str(run), "--hidden", "8", "--resume", "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert "an earlier rnnedge wrote it as a 'rnn_classifier' model" in result.output
    assert "train into a new folder" in result.output and "Traceback" not in result.output
    assert (run / "checkpoint.pt").read_bytes() == before


def test_an_old_ptb_checkpoint_records_ptb_files_by_name(tiny_lm_checkpoint: Path, tmp_path: Path) -> None:
    """Language-model checkpoints from before they recorded their text are PTB runs: they get PTB's names."""
    ckpt = load_checkpoint(tiny_lm_checkpoint)
    save_checkpoint(tmp_path / "old.pt", {k: v for k, v in ckpt.items() if k != "data"} | {"kind": "ptb"})
    old = load_checkpoint(tmp_path / "old.pt")
    assert old["data"] == {
        "tokens": "words",
        "train": "ptb/ptb.train.txt",
        "valid": "ptb/ptb.valid.txt",
        "test": "ptb/ptb.test.txt",
    }
    out = export_checkpoint(tmp_path / "old.pt", tmp_path / "old.onnx").path
    meta = json.loads(onnx.load(str(out)).metadata_props[0].value)
    assert meta["format_version"] == 1 and meta["config"]["data"]["test"] == "ptb/ptb.test.txt"


def test_a_sequence_run_from_before_shift_and_normalize_resumes(tmp_path: Path) -> None:
    """Those fields came later: a run without them trained as their defaults say, and resumes under them."""
    from sequence_models import vowels

    from rnnedge.training.config import SequenceClassifierConfig, SequenceTrainConfig
    from rnnedge.training.train_sequences import train_sequence_classifier

    def train(epochs: int, resume: bool) -> None:
        files = {"train_file": vowels("train"), "test_file": vowels("test")}
        model, cfg = SequenceClassifierConfig(hidden_size=4), SequenceTrainConfig(epochs=epochs, batch_size=64)
        train_sequence_classifier(model, cfg, tmp_path, **files, resume=resume, quiet=True, threads=1)

    train(1, resume=False)
    checkpoint = tmp_path / "checkpoint.pt"
    ckpt = load_checkpoint(checkpoint)
    older = {k: v for k, v in ckpt["train_config"].items() if k not in ("shift", "normalize")}
    save_checkpoint(checkpoint, {**ckpt, "train_config": older})
    assert load_checkpoint(checkpoint)["train_config"] == ckpt["train_config"]
    train(2, resume=True)
    assert load_checkpoint(checkpoint)["metrics"]["epoch"] == 2
