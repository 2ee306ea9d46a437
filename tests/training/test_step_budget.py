"""Early stopping's budgets count optimizer steps: a small training set gets enough steps, a large one is unchanged.

Tiny generated sequences (a few steps of one channel); only the task's arithmetic and its stopping rule
are exercised, through the very :class:`SequenceTask` a run trains.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnedge.data.sequences import SequenceDataset
from rnnedge.training.config import STEP_BUDGET, SequenceClassifierConfig, SequenceTrainConfig, StepBudget
from rnnedge.training.train_sequences import SequenceData, SequenceTask


def _cases(n: int, seed: int = 0) -> SequenceDataset:
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % 2
    sequences = tuple((rng.normal(size=(6, 1)) + label).astype(np.float32) for label in labels)
    return SequenceDataset(sequences, labels, ("a", "b"), "tiny")


def _task(n: int, batch: int, epochs: int | None = None, patience: int = 20, valid: bool = True) -> SequenceTask:
    data = SequenceData(_cases(n), _cases(10, 1) if valid else None, None, {})
    model = SequenceClassifierConfig(input_size=1, num_classes=2, hidden_size=4)
    return SequenceTask(model, SequenceTrainConfig(epochs=epochs, batch_size=batch, patience=patience), data)


def test_the_budget_in_steps_stretches_epochs_warm_up_and_patience_only_where_an_epoch_has_few_steps() -> None:
    rules = StepBudget(default_epochs=100, min_steps=1000, warmup_steps=250, patience_steps=100)
    assert rules.epochs(5, None, True) == 200 and rules.epochs(7, None, True) == 143  # 40 or 50 cases, batch 8
    assert rules.epochs(11, None, True) == 100 and rules.epochs(430, None, True) == 100  # enough steps already
    assert rules.epochs(5, None, False) == 100 and rules.epochs(5, 4, True) == 4  # no early stopping; given
    assert rules.warmup_epochs(5) == 50 and rules.warmup_epochs(430) == 1
    assert rules.patience(5, 10) == 20 and rules.patience(11, 10) == 10 and rules.patience(430, 20) == 20


def test_a_small_training_set_may_take_the_minimum_steps_and_its_checkpoint_says_how_many_epochs() -> None:
    task = _task(40, 8)
    assert task.steps_per_epoch == 5
    assert task.train_config.epochs == STEP_BUDGET.epochs(5, None, True) > STEP_BUDGET.default_epochs
    assert task.total_steps >= STEP_BUDGET.min_steps


@pytest.mark.parametrize(
    ("n", "batch", "epochs", "patience", "valid"),
    [(2000, 32, None, 20, True), (40, 8, None, 0, True), (40, 8, None, 20, False), (40, 8, 30, 20, True)],
    ids=["many steps an epoch", "no early stopping", "no validation", "epochs given"],
)
def test_epochs_are_unchanged_with_many_steps_an_epoch_without_early_stopping_or_when_given(
    n: int, batch: int, epochs: int | None, patience: int, valid: bool
) -> None:
    task = _task(n, batch, epochs=epochs, patience=patience, valid=valid)
    expected = epochs or STEP_BUDGET.default_epochs
    assert task.train_config.epochs == expected and task.total_steps == expected * task.steps_per_epoch


def test_early_stopping_waits_for_the_warm_up_steps_and_the_patience_in_steps() -> None:
    task = _task(40, 8, epochs=300, patience=3)  # 5 steps an epoch: 3 epochs would be 15 steps
    task.best = {"epoch": 1, "accuracy": 0.5, "loss": 1.0, "model": {}}
    task.top = 0.9  # above chance (0.5: the validation split's classes are balanced)
    warm, patience = STEP_BUDGET.warmup_epochs(5), STEP_BUDGET.patience(5, 3)
    assert warm > 300 // 4 and patience > 3  # the rules in epochs alone would stop sooner
    task.validated, task.since_best = warm - 1, patience + 50
    assert not task.stop_early()  # however long since the best, not before the warm-up steps
    task.validated, task.since_best = warm, patience - 1
    assert not task.stop_early()  # warm, but not yet the patience in steps
    task.since_best = patience
    assert task.stop_early()


def test_a_run_never_above_chance_waits_for_the_minimum_steps_before_it_stops() -> None:
    task = _task(40, 8, epochs=400, patience=3)
    task.validate(0)  # an untrained model: its accuracy is what it is, chance is 0.5
    task.best, task.top = {"epoch": 1, "accuracy": 0.5, "loss": 1.0, "model": {}}, task.chance
    assert task.chance == 0.5
    task.since_best = 1000
    task.validated = STEP_BUDGET.warmup_epochs(5)
    assert not task.stop_early()  # at chance: the longer warm-up
    task.validated = STEP_BUDGET.warmup_epochs(5, at_chance=True)
    assert STEP_BUDGET.warmup_epochs(5, at_chance=True) * 5 >= STEP_BUDGET.min_steps and task.stop_early()
    task.top = 0.6
    task.validated = STEP_BUDGET.warmup_epochs(5)
    assert task.stop_early()  # above chance once: the usual warm-up
