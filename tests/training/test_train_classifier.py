"""Real training runs on real MNIST, small budgets: learning, checkpoints, resume, safety."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rnnedge.errors import CheckpointError
from rnnedge.training.checkpoint import load_checkpoint, save_checkpoint
from rnnedge.training.models import RowClassifierConfig
from rnnedge.training.train_classifier import ClassifierTrainConfig, train_classifier


def test_short_run_beats_chance_by_far(data_dir: Path, tmp_path: Path) -> None:
    metrics = train_classifier(
        RowClassifierConfig(hidden_size=64),
        ClassifierTrainConfig(max_steps=150, batch_size=128, lr=5e-3),
        tmp_path,
        data=data_dir,
        quiet=True,
    )
    assert metrics["valid_accuracy"] > 0.75 and metrics["test_accuracy"] > 0.75  # chance is 0.10
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt", "mnist-lstm")
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

    model_cfg = RowClassifierConfig(hidden_size=16)
    cfg = ClassifierTrainConfig(epochs=1, max_steps=40, batch_size=32, checkpoint_every=15)
    train_classifier(model_cfg, cfg, tmp_path / "a", data=data_dir, quiet=True)

    def save_then_die(path, ckpt):
        save_checkpoint(path, ckpt)
        if ckpt["progress"]["step"] == 30:
            raise _Interrupt

    monkeypatch.setattr(module, "save_checkpoint", save_then_die)
    with pytest.raises(_Interrupt):
        train_classifier(model_cfg, cfg, tmp_path / "b", data=data_dir, quiet=True)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["progress"]["step"] == 30
    train_classifier(model_cfg, cfg, tmp_path / "b", data=data_dir, resume=True, quiet=True)
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert a["metrics"] == {**b["metrics"], "train_seconds": a["metrics"]["train_seconds"]}
    records = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["event"] == "train"]
    assert steps == sorted(set(steps)), "a resumed run's metrics must not repeat steps"


def test_resume_with_other_settings_is_refused(data_dir: Path, tmp_path: Path) -> None:
    train_classifier(
        RowClassifierConfig(hidden_size=8), ClassifierTrainConfig(max_steps=2), tmp_path, data=data_dir, quiet=True
    )
    with pytest.raises(CheckpointError, match="cannot resume"):
        train_classifier(
            RowClassifierConfig(hidden_size=9),
            ClassifierTrainConfig(max_steps=2),
            tmp_path,
            data=data_dir,
            resume=True,
            quiet=True,
        )


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
    with pytest.raises(CheckpointError, match="expected ptb"):
        load_checkpoint(tiny_checkpoint, "ptb")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not written by rnnedge"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_atomic_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "c.pt", {"kind": "mnist-lstm", "model": {}, "config": {}})
    save_checkpoint(tmp_path / "c.pt", {"kind": "mnist-lstm", "model": {"w": torch.ones(1)}, "config": {}})
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
    assert torch.equal(load_checkpoint(tmp_path / "c.pt")["model"]["w"], torch.ones(1))


def test_checkpoints_name_their_kind_and_carry_preprocessing_and_labels(
    tiny_checkpoint: Path, tiny_lm_checkpoint: Path
) -> None:
    """Export reads the classifier's normalisation and class names from the checkpoint, not from MNIST's constants."""
    from rnnedge.data.mnist import PIXEL_MEAN, PIXEL_STD
    from rnnedge.training.kinds import build_from_checkpoint
    from rnnedge.training.models import RowLSTMClassifier, WordLanguageModel
    from rnnedge.training.train_classifier import build_classifier

    ckpt = load_checkpoint(tiny_checkpoint)
    assert ckpt["kind"] == "rnn_classifier"
    assert ckpt["preprocessing"] == {"scale": 1 / 255, "mean": PIXEL_MEAN, "std": PIXEL_STD}
    assert ckpt["labels"] == list("0123456789")
    model = build_from_checkpoint(ckpt)
    assert isinstance(model, RowLSTMClassifier) and not model.training
    for name, tensor in build_classifier(ckpt).state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name
    lm = load_checkpoint(tiny_lm_checkpoint)
    assert lm["kind"] == "word_lm" and isinstance(build_from_checkpoint(lm), WordLanguageModel)
