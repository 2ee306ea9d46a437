"""Real training runs on real MNIST (the ``mnist-lstm`` preset of the sequence classifier), small budgets.

Learning, checkpoints, resume, safety, and the preset being ``train classifier`` on the IDX files.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from rnnedge.data.mnist import mnist_files
from rnnedge.errors import CheckpointError, ConfigError
from rnnedge.training.checkpoint import load_checkpoint, save_checkpoint
from rnnedge.training.config import MNIST_LSTM
from rnnedge.training.train_sequences import train_sequence_classifier


def train_mnist(out: Path, data_dir: Path, model: dict[str, Any], train: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """``rnnedge train mnist-lstm`` with some preset values replaced."""
    train_images, test_images = mnist_files(data_dir)
    return train_sequence_classifier(
        replace(MNIST_LSTM.model, **model),
        replace(MNIST_LSTM.train, **train),
        out,
        train_file=train_images,
        test_file=test_images,
        quiet=True,
        **kw,
    )


def test_short_run_beats_chance_by_far(data_dir: Path, tmp_path: Path) -> None:
    metrics = train_mnist(tmp_path, data_dir, {"hidden_size": 64}, {"max_steps": 150, "lr": 5e-3})
    assert metrics["valid_accuracy"] > 0.75 and metrics["test_accuracy"] > 0.75  # chance is 0.10
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt", "sequence_classifier")
    assert set(ckpt) >= {"model", "config", "metrics", "optimizer", "train_config", "progress"}
    assert ckpt["progress"]["done"] and ckpt["metrics"]["test_accuracy"] == metrics["test_accuracy"]
    events = [line for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any('"event": "valid"' in e for e in events) and any('"event": "test"' in e for e in events)


class _Interrupt(BaseException):
    """Stands in for a kill arriving right after a checkpoint was written."""


def test_resume_ends_where_an_uninterrupted_run_ends(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rnnedge.training import loop as module  # the one loop writes every checkpoint

    model_cfg = {"hidden_size": 16}
    cfg = {"epochs": 1, "max_steps": 40, "batch_size": 32, "checkpoint_every": 15}
    train_mnist(tmp_path / "a", data_dir, model_cfg, cfg)

    def save_then_die(path, ckpt):
        save_checkpoint(path, ckpt)
        if ckpt["progress"]["step"] == 30:
            raise _Interrupt

    monkeypatch.setattr(module, "save_checkpoint", save_then_die)
    with pytest.raises(_Interrupt):
        train_mnist(tmp_path / "b", data_dir, model_cfg, cfg)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["progress"]["step"] == 30
    train_mnist(tmp_path / "b", data_dir, model_cfg, cfg, resume=True)
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert a["metrics"] == {**b["metrics"], "train_seconds": a["metrics"]["train_seconds"]}
    records = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["event"] == "train"]
    assert steps == sorted(set(steps)), "a resumed run's metrics must not repeat steps"


def test_resume_with_other_settings_is_refused(data_dir: Path, tmp_path: Path) -> None:
    train_mnist(tmp_path, data_dir, {"hidden_size": 8}, {"max_steps": 2})
    with pytest.raises(CheckpointError, match="cannot resume"):
        train_mnist(tmp_path, data_dir, {"hidden_size": 9}, {"max_steps": 2}, resume=True)


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/rnnedge-pwned"),))


def test_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = Path("/tmp/rnnedge-pwned")
    marker.unlink(missing_ok=True)
    path = tmp_path / "evil.pt"
    torch.save({"kind": "mnist-lstm", "model": _Exploit(), "config": {}}, path)
    with pytest.raises(CheckpointError, match="refused by the safe loader"):
        load_checkpoint(path)
    assert not marker.exists()


def test_truncated_and_foreign_checkpoints(tmp_path: Path, tiny_checkpoint: Path) -> None:
    data = tiny_checkpoint.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match="expected language_model"):
        load_checkpoint(tiny_checkpoint, "language_model")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not written by rnnedge"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_atomic_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "c.pt", {"kind": "sequence_classifier", "model": {}, "config": {}})
    save_checkpoint(tmp_path / "c.pt", {"kind": "sequence_classifier", "model": {"w": torch.ones(1)}, "config": {}})
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
    assert torch.equal(load_checkpoint(tmp_path / "c.pt")["model"]["w"], torch.ones(1))


def test_checkpoints_name_their_kind_and_carry_normalisation_labels_and_files(
    tiny_checkpoint: Path, tiny_lm_checkpoint: Path, data_dir: Path
) -> None:
    """Export reads the classifier's normalisation, class names and test file from the checkpoint."""
    from rnnedge.training.kinds import build_from_checkpoint
    from rnnedge.training.models import RecurrentLanguageModel, SequenceClassifier

    ckpt = load_checkpoint(tiny_checkpoint)
    assert ckpt["kind"] == "sequence_classifier" and "upgraded_from" not in ckpt
    assert ckpt["labels"] == list("0123456789")
    mean, std = ckpt["standardize"]["mean"], ckpt["standardize"]["std"]
    assert len(mean) == 28 and len(set(mean)) == 1 and len(set(std)) == 1  # normalize="global"
    assert Path(ckpt["data"]["test"]) == mnist_files(data_dir)[1]
    model = build_from_checkpoint(ckpt)
    assert isinstance(model, SequenceClassifier) and not model.training
    lm = load_checkpoint(tiny_lm_checkpoint)
    assert lm["kind"] == "language_model" and isinstance(build_from_checkpoint(lm), RecurrentLanguageModel)
    assert Path(lm["data"]["test"]).name == "ptb.test.txt" and Path(lm["data"]["test"]).is_absolute()


def test_the_mnist_preset_is_train_classifier_on_the_idx_files(data_dir: Path, tmp_path: Path) -> None:
    """``train mnist-lstm`` and ``train classifier`` given the IDX files and the preset's values train the same net."""
    from click.testing import CliRunner

    from rnnedge.cli.main import cli

    train_images, test_images = mnist_files(data_dir)
    budget = ["--hidden", "8", "--max-steps", "3", "--quiet"]
    preset = ["train", "mnist-lstm", "--data", str(data_dir), "--out", str(tmp_path / "preset"), *budget]
    general = [
        *("train", "classifier", "--train", str(train_images), "--test", str(test_images)),
        *("--out", str(tmp_path / "general"), "--batch-size", "128", "--lr", "0.002", "--epochs", "30"),
        *("--shift", "2", "--normalize", "global", "--valid-fraction", repr(1 / 12), *budget),
    ]
    for args in (preset, general):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    a, b = (load_checkpoint(tmp_path / run / "checkpoint.pt") for run in ("preset", "general"))
    assert a["config"] == b["config"] and a["train_config"] == b["train_config"] and a["data"] == b["data"]
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name


def test_shift_translates_images_and_fills_with_raw_zeros() -> None:
    from rnnedge.training.train_sequences import random_shift

    x = torch.arange(2 * 5 * 4, dtype=torch.float32).reshape(2, 5, 4) + 1
    fill = torch.tensor([-1.0, -2.0, -3.0, -4.0])
    moved = random_shift(x, 2, fill, torch.Generator().manual_seed(3))
    assert moved.shape == x.shape and not torch.equal(moved, x)
    for b in range(2):
        kept = moved[b][moved[b] > 0]
        assert set(kept.tolist()) <= set(x[b].flatten().tolist())  # values move, none is made up
        uncovered = moved[b] <= 0
        assert torch.equal(moved[b][uncovered], fill.expand(5, 4)[uncovered])
    assert torch.equal(random_shift(x, 0, fill, torch.Generator()), x)


def test_shift_is_refused_for_sequences_of_different_lengths(tmp_path: Path) -> None:
    from sequence_models import vowels

    with pytest.raises(ConfigError, match="shift=1 translates sequences of one length"):
        train_sequence_classifier(
            replace(MNIST_LSTM.model, hidden_size=4),
            replace(MNIST_LSTM.train, shift=1, max_steps=1),
            tmp_path,
            train_file=vowels("train"),
            test_file=vowels("test"),
            quiet=True,
        )


def test_shift_is_refused_with_per_channel_normalisation(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"moves values across channels.*normalize='global'"):
        train_mnist(tmp_path, data_dir, {"hidden_size": 4}, {"max_steps": 1, "normalize": "channel"})
    assert not (tmp_path / "checkpoint.pt").exists()
