"""The defaults on a small real problem: GunPoint's first 36 training cases train (they were refused).

The batch comes from the training set's size, validation stops the run once it stops improving, and
the checkpoint holds the best validation's weights, not the last epoch's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from sequence_models import first_cases, gunpoint

from rnnedge.cli.main import cli
from rnnedge.training.checkpoint import load_checkpoint
from rnnedge.training.config import STEP_BUDGET, SequenceClassifierConfig, SequenceTrainConfig
from rnnedge.training.models import SequenceClassifier
from rnnedge.training.train_sequences import as_tensors, auto_batch_size, evaluate, load_sequence_data


def test_a_36_case_problem_trains_with_the_defaults_and_keeps_its_best_epoch(tmp_path: Path) -> None:
    small = first_cases(gunpoint("train"), 36, tmp_path / "GunPoint36_TRAIN.ts")
    args = ["train", "classifier", "--train", str(small), "--test", str(gunpoint("test"))]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "run"), "--threads", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output.strip().splitlines()[-1])
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    defaults = SequenceTrainConfig()
    assert ckpt["train_config"]["batch_size"] == 4  # 29 training cases after 7 are held out: at least 4
    # 8 steps an epoch: the epochs stretch to STEP_BUDGET's minimum steps, and the checkpoint says so.
    epochs = STEP_BUDGET.epochs(8, defaults.epochs, early_stopping=True)
    assert ckpt["train_config"]["epochs"] == epochs > STEP_BUDGET.default_epochs
    assert metrics["best_epoch"] <= metrics["epoch"] <= epochs
    if metrics["epoch"] < epochs:  # stopped early: patience epochs without a better validation loss
        assert metrics["epoch"] - metrics["best_epoch"] >= STEP_BUDGET.patience(8, defaults.patience)
        assert metrics["epoch"] >= max(epochs // 4, STEP_BUDGET.warmup_epochs(8))  # a slow start gets its steps
    # The checkpoint's weights are the best epoch's: they give its validation loss again.
    data = load_sequence_data(small, gunpoint("test"), valid_fraction=defaults.valid_fraction, seed=defaults.seed)
    model = SequenceClassifier(SequenceClassifierConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    assert data.valid is not None and len(data.valid) == 7
    accuracy, loss = evaluate(model, *as_tensors(data.valid))
    assert loss == pytest.approx(metrics["valid_loss"], rel=1e-5) and accuracy == metrics["valid_accuracy"]
    assert torch.equal(ckpt["best"]["model"]["head.weight"], ckpt["model"]["head.weight"])


@pytest.mark.parametrize(("n", "batch"), [(1, 1), (3, 3), (29, 4), (216, 21), (320, 32), (60000, 32)])
def test_the_default_batch_is_a_tenth_of_the_training_set_within_4_to_32(n: int, batch: int) -> None:
    assert auto_batch_size(n) == batch


def test_a_batch_given_larger_than_the_training_set_is_still_refused(tmp_path: Path) -> None:
    small = first_cases(gunpoint("train"), 36, tmp_path / "GunPoint36_TRAIN.ts")
    args = ["train", "classifier", "--train", str(small), "--test", str(gunpoint("test")), "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(cli, [*args, "--batch-size", "32"])
    assert result.exit_code == 1 and "batch_size=32 is more than the 29 training sequences" in result.output
