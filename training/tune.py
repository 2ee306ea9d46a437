"""``rnnedge train classifier --tune MINUTES``: a sequence classifier's settings chosen on the training file alone.

Optuna (the ``tune`` extra) proposes settings with its TPE sampler; each candidate (a *trial*) trains
on every fold of :func:`~rnnedge.data.folds.cv_folds` with early stopping on the fold's held-out part
(the epoch of lowest validation loss), and scores the mean accuracy there, ties broken by the mean loss
(``score = accuracy - 0.01 * loss``). On the first fold the trial reports its accuracy each time it has
taken another :data:`REPORT_STEPS` optimizer steps (at the end of the epoch that reaches them: steps, not
epochs, because the batch sets the steps an epoch and candidates of other batches are compared), and after
each later fold the running mean accuracy; Optuna's median pruner drops a trial whose accuracy is strictly
below the median of the finished ones at the same step count or fold. (The accuracy, not the
score: on a plateau at chance, or on a fold every candidate gets right, the candidates tie, and a
difference of cross-entropy in the fourth decimal is no reason to stop one.) It never prunes on the first
fold before :data:`~rnnedge.training.config.STEP_BUDGET`'s ``warmup_steps`` optimizer steps: a small fold
gives few steps an epoch, and a slow start is not a bad one (each fold's early stopping waits as long).
The defaults are the first trial, so the search can only choose something that cross-validates at least
as well (the first trial finishes whatever the budget says, unless another one finished before it, and the
log says when it will overrun); the next are the defaults with a convolutional branch and with the other
cell (:func:`first_candidates`). A trial whose remaining folds would not fit in the time left stops after
the fold that shows it; a trial cut short counts for nothing.

``jobs`` trials run at once: this process runs one and ``jobs - 1`` worker processes (spawned) run the
others, all sharing the study in ``tune.db``; TPE's "constant liar" keeps them from proposing the same
candidate. Each trial, and the final training, runs with one torch thread unless ``threads`` says otherwise
(the final training's share of the budget is estimated from the trials' speed). On ``--resume``, a first
candidate whose trial did not finish (a Ctrl-C during it) is queued again before TPE's own. In every
process a Ctrl-C is a request honoured before the next optimizer step (:class:`~rnnedge.training.loop.Interrupts`),
so once the search has begun it never lands inside a read or write of the study; a second one stops the
command at once (a worker process takes its parent's Ctrl-C after the terminal's as one request).

Then the final model trains on the whole training file with the best trial's settings, for the median
of the optimizer steps its folds had taken at their best epochs (steps, not epochs: a batch divides the
whole file into more steps an epoch than a fold). Before the test file is looked at, the model's
accuracy on the training file itself must reach the CV accuracy (less :data:`FIT_SLACK`): a model the
folds saw learn but that stayed on a plateau at chance this time is trained again with the next seed,
at most :data:`FIT_ATTEMPTS` times in all, and the log says so (the last try is kept with a warning).
The test file is read once, for the reported number of the model kept.

The run folder holds, beside the final run's files: ``tune.db`` (the study, SQLite: a Ctrl-C keeps every
finished trial, and ``--resume`` continues the search with what is left of the budget, or the final
training if it had started), ``tune.json`` (every trial's cross-validated score and the chosen
settings, rewritten after each trial) and ``tune.log``. The checkpoint carries the same summary
(``tuning``), and so does an exported file's metadata (``config.tuning``).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

from rnnedge.data.atomic import atomic_output
from rnnedge.data.folds import Folds, cv_folds
from rnnedge.data.sequences import SequenceDataset, read_sequences
from rnnedge.errors import CheckpointError, ConfigError, MissingExtraError, RnnEdgeError

from .checkpoint import load_checkpoint
from .config import STEP_BUDGET, SequenceClassifierConfig, SequenceTrainConfig
from .loop import Interrupts, TrainingInterrupted, torch_threads
from .run_dir import TUNE_DB, TUNE_JSON, TUNE_LOG, RunDir, open_run
from .train_sequences import (
    PoorFit,
    SequenceData,
    SequenceTask,
    batch_size_for,
    load_sequence_data,
    train_sequence_classifier,
)

__all__ = [
    "FIRST_CONV",
    "FIT_ATTEMPTS",
    "FIT_SLACK",
    "PATIENCE",
    "REPORT_STEPS",
    "SEARCHED",
    "TuningInterrupted",
    "default_jobs",
    "final_configs",
    "first_candidates",
    "fit_fold",
    "require_optuna",
    "search_space",
    "study_storage",
    "tune_sequence_classifier",
]

# The settings the search chooses (each unless given on the command line, which fixes it).
SEARCHED = (
    "cell",
    "bidirectional",
    "hidden_size",
    "num_layers",
    "head",
    "dropout",
    "noise",
    "lr",
    "batch_size",
    "weight_decay",
    "conv_channels",
)
STUDY_NAME = "rnnedge-tune"
LOSS_WEIGHT = 0.01  # score = accuracy - LOSS_WEIGHT * loss: the loss only breaks ties of accuracy
PATIENCE = 10  # each fold's early stopping, unless --patience is given
REPORT_STEPS = 50  # the first fold reports at every multiple of this many optimizer steps
FOLD_REPORTS = 10**9  # the pruner's step of fold k's running mean: FOLD_REPORTS + k, after any step count
FIT_SLACK = 0.02  # the final model's training accuracy may fall this far below the CV accuracy
FIRST_CONV = 64  # channels of the convolutional branch among the first candidates
FIT_ATTEMPTS = 3  # seeds the final training tries before it keeps a model that misses its CV accuracy
_MODEL_FIELDS = {f.name for f in fields(SequenceClassifierConfig)}


class TuningInterrupted(TrainingInterrupted):
    """The search stopped at a Ctrl-C; its finished trials are kept in ``tune.db`` and ``--resume`` continues it."""


class _OutOfTime(Exception):
    """The budget ran out during a trial (not the first): the trial counts for nothing."""


def default_jobs() -> int:
    """Trials at once by default: the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def require_optuna() -> Any:
    """Optuna, or a :class:`MissingExtraError` naming the extra that installs it."""
    try:
        import optuna
    except ImportError:
        raise MissingExtraError(
            "--tune needs Optuna; install the tune extra: pip install 'rnnedge[tune]' (training without --tune "
            "does not need it)"
        ) from None
    return optuna


def search_space(trial: Any, fixed: Mapping[str, Any], causal: bool, cases: int) -> dict[str, Any]:
    """The settings ``trial`` proposes for every name of :data:`SEARCHED`; ``fixed`` ones are not searched.

    ``causal`` keeps the model streamable (no bidirectional layer, no convolutional branch), for a user who
    streams. A proposed
    batch is at most ``cases`` (the smallest fold's training cases); ``None`` is the automatic batch.
    """
    choices: dict[str, Callable[[], Any]] = {
        "cell": lambda: trial.suggest_categorical("cell", ["lstm", "gru"]),
        "bidirectional": lambda: False if causal else trial.suggest_categorical("bidirectional", [False, True]),
        "hidden_size": lambda: trial.suggest_categorical("hidden_size", [16, 32, 64, 128]),
        "num_layers": lambda: trial.suggest_int("num_layers", 1, 2),
        "head": lambda: trial.suggest_categorical("head", ["mean", "last"]),
        "dropout": lambda: trial.suggest_float("dropout", 0.0, 0.5),
        "noise": lambda: trial.suggest_float("noise", 0.0, 0.3),
        "lr": lambda: trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "batch_size": lambda: _at_most(trial.suggest_categorical("batch_size", [None, 8, 16, 32, 64]), cases),
        "weight_decay": lambda: trial.suggest_categorical("weight_decay", [0.0, 1e-4, 1e-3]),
        "conv_channels": lambda: 0 if causal else trial.suggest_categorical("conv_channels", [0, 32, 64, 128]),
    }
    return {name: fixed[name] if name in fixed else choose() for name, choose in choices.items()}


def first_candidates(
    model_config: SequenceClassifierConfig, train_config: SequenceTrainConfig, fixed: Mapping[str, Any], causal: bool
) -> list[dict[str, Any]]:
    """The trials before TPE's: the defaults; unless ``causal``, the same with a convolutional branch of
    :data:`FIRST_CONV` channels; then (unless ``cell`` is fixed) the defaults with the other cell.

    Each is a family that wins on problems of its own: a convolutional branch beside the recurrence finds
    local shapes in long univariate series that a recurrent layer alone learns slowly or never (LSTM-FCN);
    a GRU often leaves a long plateau at chance hundreds of steps before an LSTM does; an LSTM trains
    several times faster on a CPU. So each is measured before TPE proposes its own.
    """
    defaults = {k: getattr(model_config if k in _MODEL_FIELDS else train_config, k) for k in SEARCHED}
    causal_only = ("bidirectional", "conv_channels") if causal else ()
    first = {k: v for k, v in defaults.items() if k not in fixed and k not in causal_only}
    candidates = [first]
    if not causal and "conv_channels" not in fixed and not first.get("conv_channels"):
        candidates.append({**first, "conv_channels": FIRST_CONV})
    if "cell" not in fixed:
        candidates.append({**first, "cell": "gru" if first["cell"] == "lstm" else "lstm"})
    return candidates


def _at_most(batch: int | None, cases: int) -> int | None:
    return None if batch is None else min(batch, cases)


def _configs(
    model: SequenceClassifierConfig, train: SequenceTrainConfig, params: Mapping[str, Any]
) -> tuple[SequenceClassifierConfig, SequenceTrainConfig]:
    return (
        replace(model, **{k: v for k, v in params.items() if k in _MODEL_FIELDS}),
        replace(train, **{k: v for k, v in params.items() if k not in _MODEL_FIELDS}),
    )


def final_configs(
    model_config: SequenceClassifierConfig,
    train_config: SequenceTrainConfig,
    candidate: Mapping[str, Any],
    cases: int,
) -> tuple[SequenceClassifierConfig, SequenceTrainConfig]:
    """The configs a final model of ``candidate`` trains with on all ``cases`` training sequences.

    ``candidate``: a trial of ``tune.json`` (or its ``chosen``): its ``params``, and ``steps`` (the median of
    its folds' best optimizer steps), or ``epochs`` from a search of an earlier version. No validation
    split and no early stopping: the length is the folds' (steps, not epochs: a batch divides the whole
    file into more steps an epoch than a fold).
    """
    model_cfg, train_cfg = _configs(model_config, train_config, candidate["params"])
    train_cfg = replace(train_cfg, patience=0, valid_fraction=0.0)
    if "steps" not in candidate:
        return model_cfg, replace(train_cfg, epochs=int(candidate["epochs"]))
    steps = int(candidate["steps"])
    per_epoch = math.ceil(cases / batch_size_for(cases, train_cfg.batch_size))
    return model_cfg, replace(train_cfg, epochs=math.ceil(steps / per_epoch), max_steps=steps)


def fit_fold(
    model_config: SequenceClassifierConfig,
    train_config: SequenceTrainConfig,
    data: SequenceData,
    after_epoch: Callable[[int, float, int], None] = lambda epoch, accuracy, steps: None,
    before_step: Callable[[], None] = lambda: None,
) -> dict[str, float]:
    """Train on ``data.train``, validating on ``data.valid`` each epoch; the best epoch's numbers.

    The very steps :class:`SequenceTask` takes in a run (shuffle, noise, schedule, early stopping),
    without a run folder. Returns ``accuracy`` and ``loss`` at the epoch of lowest validation loss
    (the last epoch when ``patience`` is 0), that ``epoch`` (1-based) and its optimizer ``step`` (the steps
    taken by its end), the ``epochs`` run and ``seconds``.
    ``after_epoch(epoch, accuracy, steps)`` hears, after each epoch (from 0) but the last, the accuracy the
    fold would have if it stopped there and the optimizer steps taken; it may raise to stop the fold, and so
    may ``before_step()`` (a Ctrl-C waits for it, not for the epoch's end).
    """
    started = time.monotonic()
    task = SequenceTask(model_config, train_config, data)
    step, epoch = 0, 0
    last: dict[str, float] = {}
    while step < task.total_steps:
        task.start_epoch(epoch, 0)
        for s in range(task.steps_per_epoch):
            if step >= task.total_steps:
                break
            before_step()
            task.step(epoch, s, step)
            step += 1
        last, _, _ = task.validate(epoch)
        epoch += 1
        if task.stop_early() or step >= task.total_steps:
            break
        kept = task.best if train_config.patience > 0 and task.best is not None else None
        after_epoch(epoch - 1, float(kept["accuracy"] if kept else last["valid_accuracy"]), step)
    best = task.best if train_config.patience > 0 and task.best is not None else None
    best_epoch = int(best["epoch"] if best else epoch)
    return {
        "accuracy": float(best["accuracy"] if best else last["valid_accuracy"]),
        "loss": float(best["loss"] if best else last["valid_loss"]),
        "epoch": best_epoch,
        "step": min(best_epoch * task.steps_per_epoch, task.total_steps),
        "epochs": epoch,
        "seconds": time.monotonic() - started,
    }


class _Search:
    """One process's part of the search: the study, its budget and the run folder's tune files.

    ``started`` is the wall-clock time (``time.time()``) this session began, shared by its worker
    processes; ``protect_first`` is true in the process whose first trial (the defaults, in a new
    study) must finish whatever the budget says.
    """

    def __init__(
        self,
        study: Any,
        run: RunDir,
        train: SequenceDataset,
        folds: Folds,
        model_config: SequenceClassifierConfig,
        train_config: SequenceTrainConfig,
        budget_seconds: float,
        *,
        fixed: Mapping[str, Any],
        causal: bool,
        quiet: bool,
        started: float,
        earlier: float,
        protect_first: bool,
        ctrl_c: Interrupts,
    ) -> None:
        self.study, self.run, self.train, self.folds = study, run, train, folds
        self.model_config, self.train_config = model_config, train_config
        self.budget = budget_seconds
        self.fixed, self.causal, self.quiet = dict(fixed), causal, quiet
        self.started, self.earlier, self.protect_first = started, earlier, protect_first
        self.trials_run = 0
        self.ctrl_c = ctrl_c  # entered around the trials: a Ctrl-C lands between steps, never inside the storage
        self.parent: int | None = None  # in a worker process, the command's process
        self.smallest_fold = min(len(train_idx) for train_idx, _ in folds.splits)

    # -- time ------------------------------------------------------------------------------------
    def spent(self) -> float:
        return self.earlier + time.time() - self.started

    def final_seconds(self) -> float:
        """The final training's expected time: the best trial's seconds per fold-epoch, scaled to the whole file."""
        best = self.best()
        if best is None:
            return 0.0
        attrs = best.user_attrs
        per_epoch = attrs["seconds"] / max(sum(attrs["fold_epochs"]), 1)
        fold_cases = len(self.train) * (1 - 1 / len(self.folds.splits))
        return float(1.2 * per_epoch * attrs["epochs"] * len(self.train) / max(fold_cases, 1))

    def left(self) -> float:
        """Seconds the search may still take, the final training's share of the budget set aside."""
        return self.budget - self.spent() - self.final_seconds()

    def time_left(self) -> str:
        """The time left as the log says it, every time: for trials, and the final model's share beside it."""
        kept = self.final_seconds()
        left = f"{_clock(max(self.left(), 0))} left for trials"
        return f"{left} ({_clock(kept)} kept for the final model)" if kept > 0 else left

    # -- trials ----------------------------------------------------------------------------------
    def complete(self) -> list[Any]:
        optuna = require_optuna()
        return list(self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))

    def best(self) -> Any:
        done = self.complete()
        return max(done, key=lambda t: (t.value, -t.number)) if done else None

    def optimize(self) -> None:
        """Run trials until the budget is spent (another process's trials count too)."""
        while self.parent is not None and not self.study.get_trials(deepcopy=False):
            self.ctrl_c.check()  # a worker: the first process takes the first trial (the defaults)
            time.sleep(0.2)
        if not self.complete() or self.left() > 0:
            self.study.optimize(self.objective, callbacks=[self.after_trial], gc_after_trial=False)

    def objective(self, trial: Any) -> float:
        optuna = require_optuna()
        self.ctrl_c.check()
        params = search_space(trial, self.fixed, self.causal, self.smallest_fold)
        trial.set_user_attr("params", params)  # every setting, the fixed ones too, pruned or not
        model_config, train_config = _configs(self.model_config, self.train_config, params)
        # The first trial finishes whatever the budget says until another one has: a search must have a result.
        is_first = self.protect_first and self.trials_run == 0 and not self.complete()
        self.trials_run += 1

        def protected() -> bool:
            return is_first and not self.complete()

        reported = 0  # the first fold's last report, in steps

        def after_epoch(fold: int, epoch: int, accuracy: float, steps: int) -> None:
            nonlocal reported
            if self.parent is not None and os.getppid() != self.parent:  # the command was killed: stop with it
                raise KeyboardInterrupt
            if not protected() and self.left() <= 0:
                raise _OutOfTime
            mark = steps // REPORT_STEPS * REPORT_STEPS
            if fold == 0 and mark > reported:  # the first fold screens: a trial far behind the others stops
                trial.report(accuracy, mark)
                reported = mark
                if not protected() and steps >= STEP_BUDGET.warmup_steps and trial.should_prune():
                    self.log(
                        f"trial {trial.number}: pruned at epoch {epoch + 1} of fold 1 ({steps} steps): accuracy "
                        f"{accuracy:.4f}, below the median of finished trials at {mark} steps"
                    )
                    raise optuna.TrialPruned

        self.log(f"trial {trial.number}: {_describe(params)} ...")
        results: list[dict[str, float]] = []
        overrun_said = False
        per_channel = train_config.normalize == "channel"
        for k, (train_idx, valid_idx) in enumerate(self.folds.splits):
            fold = SequenceData(
                self.train.subset(train_idx), self.train.subset(valid_idx), None, {}, per_channel=per_channel
            )
            try:
                results.append(fit_fold(model_config, train_config, fold, partial(after_epoch, k), self.ctrl_c.check))
            except _OutOfTime:
                self.log(f"trial {trial.number}: stopped at fold {k + 1}: the budget ran out; it does not count")
                raise optuna.TrialPruned from None
            rest = statistics.fmean(r["seconds"] for r in results) * (len(self.folds.splits) - k - 1)
            if rest > self.left() and protected() and not overrun_said:  # say so once, while it can be stopped
                self.log(
                    f"trial {trial.number}: its other folds will take about {_clock(rest)}, more than the "
                    f"{self.time_left()}; it runs to its end anyway, since a search needs one finished trial "
                    "(a Ctrl-C now keeps no result; a longer --tune leaves it room)"
                )
                overrun_said = True
            elif rest > self.left() and not protected():  # it would not finish: stop now rather than at the end
                self.log(
                    f"trial {trial.number}: stopped after fold {k + 1}: its other folds would take about "
                    f"{_clock(rest)}, more than the {self.time_left()}; it does not count"
                )
                raise optuna.TrialPruned
            mean = statistics.fmean(r["accuracy"] for r in results)
            trial.report(mean, FOLD_REPORTS + k)
            if trial.should_prune() and not protected():
                self.log(
                    f"trial {trial.number}: pruned after fold {k + 1}: accuracy {mean:.4f}, below the median of "
                    "finished trials"
                )
                raise optuna.TrialPruned
        accuracy = statistics.fmean(r["accuracy"] for r in results)
        loss = statistics.fmean(r["loss"] for r in results)
        trial.set_user_attr("accuracy", accuracy)
        trial.set_user_attr("loss", loss)
        trial.set_user_attr("fold_accuracy", [r["accuracy"] for r in results])
        trial.set_user_attr("fold_epochs", [r["epochs"] for r in results])
        trial.set_user_attr("best_epochs", [r["epoch"] for r in results])
        trial.set_user_attr("epochs", max(1, round(statistics.median(r["epoch"] for r in results))))
        trial.set_user_attr("steps", max(1, round(statistics.median(r["step"] for r in results))))
        trial.set_user_attr("seconds", sum(r["seconds"] for r in results))
        return accuracy - LOSS_WEIGHT * loss

    def after_trial(self, study: Any, trial: Any) -> None:
        """Optuna's callback: the progress line, the tune files, and the end of the budget."""
        study.set_user_attr("seconds", self.spent())
        best = self.best()
        if trial.state.name == "COMPLETE":
            a = trial.user_attrs
            self.log(
                f"trial {trial.number}: CV accuracy {a['accuracy']:.4f}, loss {a['loss']:.4f} "
                f"(folds {', '.join(f'{x:.3f}' for x in a['fold_accuracy'])}; {a['epochs']} epochs; "
                f"{a['seconds']:.0f} s)"
            )
        if best is not None:
            self.log(
                f"  best so far: trial {best.number}, CV accuracy {best.user_attrs['accuracy']:.4f}; {self.time_left()}"
            )
        self.write_summary()
        if self.left() <= 0 or self.ctrl_c.requested:  # a Ctrl-C: no new trial is asked for, only to fail
            study.stop()

    def log(self, line: str) -> None:
        _log(self.run.path / TUNE_LOG, line, self.quiet)

    def summary(self, jobs: int | None = None) -> dict[str, Any]:
        """What the search did and chose: ``tune.json``, the checkpoint's ``tuning``."""
        trials = []
        for t in self.study.get_trials(deepcopy=False):
            a = t.user_attrs
            trials.append(
                {
                    "number": t.number,
                    "state": t.state.name.lower(),
                    "params": a.get("params", dict(t.params)),
                    # Optuna gives a pruned trial its last report as a value: it is no score (it counts for nothing)
                    **({"score": t.value} if t.state.name == "COMPLETE" else {}),
                    **{k: a[k] for k in ("accuracy", "loss", "fold_accuracy", "epochs", "steps", "seconds") if k in a},
                }
            )
        best = self.best()
        return {
            "minutes": self.budget / 60,
            "seconds": round(self.spent(), 1),
            "jobs": jobs if jobs is not None else self.study.user_attrs.get("jobs"),
            "folds": self.folds.describe(),
            "cases": len(self.train),
            "causal": self.causal,
            "fixed": self.fixed,
            "score": f"mean CV accuracy at each fold's best epoch - {LOSS_WEIGHT} x mean CV cross-entropy",
            "sampler": f"optuna TPE (constant liar), median pruner every {REPORT_STEPS} steps of fold 1 and after "
            "each fold",
            "trials": trials,
            "chosen": None
            if best is None
            else {
                "trial": best.number,
                "params": best.user_attrs["params"],
                "epochs": best.user_attrs["epochs"],
                "steps": best.user_attrs["steps"],
                "accuracy": best.user_attrs["accuracy"],
                "loss": best.user_attrs["loss"],
            },
        }

    def write_summary(self) -> None:
        _write_json(self.run.path / TUNE_JSON, self.summary())


def study_storage(path: Path) -> Any:
    """The study's SQLite storage, each transaction taking the write lock as it begins (``BEGIN IMMEDIATE``).

    Python's sqlite3 opens a transaction only at the first write, so two processes could both read a
    queued candidate as waiting and both take it (Optuna's check and its update are one transaction
    only if the read is in it). Here every transaction is whole; one held by another process is waited for.
    """
    optuna = require_optuna()
    import sqlalchemy

    storage = optuna.storages.RDBStorage(
        f"sqlite:///{path.resolve()}", engine_kwargs={"connect_args": {"timeout": 120, "isolation_level": None}}
    )
    sqlalchemy.event.listen(storage.engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    return storage


def _sampler_and_pruner(seed: int) -> tuple[Any, Any]:
    optuna = require_optuna()
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, constant_liar=True)
    return sampler, optuna.pruners.MedianPruner(n_startup_trials=3)  # the warm-up is in steps: see objective


def _queue_again(study: Any, storage: Any, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """On ``--resume``, queue again, in order, the first candidates no trial of which has finished; those queued.

    A Ctrl-C during one fails its trial, and the ones after it may still be waiting: those are set aside
    (failed, never started) and queued again behind it, so every first candidate still comes before TPE's.
    """
    optuna = require_optuna()
    state = optuna.trial.TrialState
    done = [t.params for t in study.get_trials(deepcopy=False, states=(state.COMPLETE,))]
    missing = [c for c in candidates if c not in done]
    waiting = study.get_trials(deepcopy=False, states=(state.WAITING,))  # the last of the missing, still queued
    if len(missing) <= len(waiting):
        return []
    study_id = storage.get_study_id_from_name(STUDY_NAME)
    for t in waiting:
        storage.set_trial_state_values(storage.get_trial_id_from_study_id_trial_number(study_id, t.number), state.FAIL)
    for params in missing:
        study.enqueue_trial(params)
    return missing


def _worker(seed: int, threads: int | None, parent: int, search: dict[str, Any]) -> None:
    """A worker process: trials of the study in ``tune.db`` until the budget is spent (see the module doc)."""
    optuna = require_optuna()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler, pruner = _sampler_and_pruner(seed)
    run: RunDir = search["run"]
    ctrl_c = Interrupts(enabled=True, insist=False)
    try:
        with ctrl_c:  # from the start: the command's Ctrl-C reaches its workers too
            study = optuna.load_study(
                study_name=STUDY_NAME, storage=study_storage(run.path / TUNE_DB), sampler=sampler, pruner=pruner
            )
            worker = _Search(study, **search, ctrl_c=ctrl_c)
            worker.parent = parent
            try:
                with torch_threads(1 if threads is None else threads):
                    worker.optimize()
            except RnnEdgeError as e:
                worker.log(f"a worker process stopped: {e}")
                sys.exit(1)
    except KeyboardInterrupt:
        pass  # the first process says what the search kept


def _describe(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def _write_json(path: Path, value: Any) -> None:
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(value, indent=2) + "\n")


def tune_sequence_classifier(
    model_config: SequenceClassifierConfig,
    train_config: SequenceTrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    minutes: float,
    train_file: str | os.PathLike[str],
    test_file: str | os.PathLike[str],
    fixed: Mapping[str, Any] | None = None,
    causal: bool = False,
    folds: int = 5,
    jobs: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    threads: int | None = None,
) -> dict[str, Any]:
    """Search for ``minutes`` (in all, over resumed sessions), then train the final model; its metrics.

    ``model_config`` and ``train_config`` hold what the search does not choose (``epochs`` and
    ``patience`` bound each fold's early stopping); ``fixed`` holds the :data:`SEARCHED` settings the
    user gave, kept as given. ``jobs`` trials run at once (see the module doc). The metrics are the
    final run's, with ``tuning`` (:meth:`_Search.summary`).
    """
    optuna = require_optuna()
    fixed = dict(fixed or {})
    if causal and (fixed.get("bidirectional") or fixed.get("conv_channels")):
        raise ConfigError(
            "--causal asks for a streamable model and --bidirectional or --conv for one that is not: give one"
        )
    if not math.isfinite(minutes) or minutes <= 0:
        raise ConfigError(f"--tune takes the minutes the search may take, a number > 0; got {minutes}")
    if jobs < 1:
        raise ConfigError(f"--jobs takes the trials to run at once, a whole number >= 1; got {jobs}")
    if not Path(test_file).is_file():  # read at the end only, but a missing one is said now
        raise ConfigError(f"test file {test_file}: no such file")
    run = RunDir(out_dir, quiet=quiet)
    if resume and run.checkpoint.is_file():  # the search had ended: its final training resumes
        tuning = json.loads((run.path / TUNE_JSON).read_text()) if (run.path / TUNE_JSON).is_file() else None
        if not tuning or not tuning.get("chosen"):
            raise CheckpointError(f"cannot resume {run.path} with --tune: it holds no {TUNE_JSON} with chosen settings")
        return _final(model_config, train_config, run, tuning, train_file, test_file, True, quiet, threads)
    run = open_run(out_dir, resume=resume, overwrite=overwrite, quiet=quiet, tuning=True)
    train = read_sequences(train_file)
    model_config = replace(model_config, input_size=train.num_channels, num_classes=len(train.class_names))
    train_path = str(Path(train_file).resolve())
    cv = cv_folds(train.labels, folds, seed=train_config.seed)
    settings = {
        "train_file": train_path,
        "model_config": asdict(model_config),
        "train_config": asdict(train_config),
        "fixed": fixed,
        "causal": causal,
        "folds": folds,
    }
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial's error reaches the user as ours
    candidates = first_candidates(model_config, train_config, fixed, causal)
    queued: list[dict[str, Any]] = []
    if not resume:
        run.clear()  # an earlier run's files, --overwrite given (its tune files too)
    storage = study_storage(run.path / TUNE_DB)  # after the clear: it opens the file
    if resume:
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
        saved = study.user_attrs.get("settings", {})
        differ = sorted(k for k in settings if saved.get(k) != settings[k])
        if differ:
            raise CheckpointError(
                f"cannot resume the search in {run.path}: it was started with other {', '.join(differ)} "
                f"({'; '.join(f'{k}: {saved.get(k)!r}' for k in differ)}); give the run's own, or start a new folder"
            )
        queued = _queue_again(study, storage, candidates)
    else:
        study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="maximize")
        study.set_user_attr("settings", settings)
        for params in candidates:
            study.enqueue_trial(params)
    study.set_user_attr("jobs", jobs)
    seed = train_config.seed * 1000 + len(study.trials)  # a resumed session does not replay the first one's draws
    study.sampler, study.pruner = _sampler_and_pruner(seed)
    shared: dict[str, Any] = {
        "run": run,
        "train": train,
        "folds": cv,
        "model_config": model_config,
        "train_config": train_config,
        "budget_seconds": minutes * 60,
        "fixed": fixed,
        "causal": causal,
        "quiet": quiet,
        "started": time.time(),
        "earlier": float(study.user_attrs.get("seconds", 0.0)),
    }
    ctrl_c = Interrupts(enabled=True)
    search = _Search(study, **shared, protect_first=True, ctrl_c=ctrl_c)
    search.log(
        f"{'resumed' if resume else 'tuning'} a classifier of {train.name} for {minutes:g} minutes: "
        f"{len(train)} cases, {cv.describe()}; searching {', '.join(k for k in SEARCHED if k not in fixed)}"
        + (" (causal models only)" if causal else "")
        + f"; {jobs} trial{'s' if jobs > 1 else ''} at once; {search.time_left()}"
    )
    for params in queued:
        search.log(f"queued again, before the sampler's own candidates (its trial did not finish): {_describe(params)}")
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no torch thread pool copied by fork
    workers = [
        context.Process(
            target=_worker, args=(seed + i, threads, os.getpid(), {**shared, "protect_first": False}), daemon=True
        )
        for i in range(1, jobs)
    ]
    try:
        with ctrl_c:
            for w in workers:
                w.start()
            with torch_threads(1 if threads is None else threads):  # a core each: no threads spin-waiting
                search.optimize()
            for w in workers:
                while w.is_alive():
                    w.join(timeout=0.2)
                    ctrl_c.check()
        if ctrl_c.requested:  # one that came after the last step: the final training does not start
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        _stop(workers)
        study.set_user_attr("seconds", search.spent())
        search.write_summary()
        best = search.best()
        kept = (
            f"{len(search.complete())} finished trial(s) kept in {run.path / TUNE_DB}, the best CV accuracy "
            f"{best.user_attrs['accuracy']:.4f} (trial {best.number})"
            if best is not None
            else f"no trial had finished ({run.path / TUNE_DB} keeps the search)"
        )
        message = (
            f"search interrupted: {kept}; run the same command with --resume to continue it "
            "(with a larger --tune to give it more time) and then train the final model"
        )
        search.log(message)  # as a run's log says where its checkpoint is; with --quiet the command line says it
        raise TuningInterrupted(message, run.path / TUNE_DB, len(search.complete())) from None
    except BaseException:
        _stop(workers)
        raise
    failed = [w for w in workers if w.exitcode != 0]
    if failed and search.best() is None:
        raise RnnEdgeError(f"the search's worker processes failed ({run.path / TUNE_LOG} says why)")
    tuning = search.summary(jobs)
    search.write_summary()
    chosen = tuning["chosen"]
    search.log(
        f"chose trial {chosen['trial']} ({_describe(chosen['params'])}): CV accuracy {chosen['accuracy']:.4f}; "
        f"training it on all {len(train)} cases for {chosen['steps']} optimizer steps"
    )
    run.keeps_tuning = True
    return _final(model_config, train_config, run, tuning, train_file, test_file, False, quiet, threads)


def _stop(workers: list[Any]) -> None:
    """Interrupt the worker processes still running (their trials under way count for nothing) and wait for them."""
    for w in workers:
        if w.is_alive() and w.pid is not None:
            os.kill(w.pid, signal.SIGINT)
    for w in workers:
        w.join(timeout=30)
        if w.is_alive():
            w.terminate()
            w.join()


def _final(
    model_config: SequenceClassifierConfig,
    train_config: SequenceTrainConfig,
    run: RunDir,
    tuning: dict[str, Any],
    train_file: str | os.PathLike[str],
    test_file: str | os.PathLike[str],
    resume: bool,
    quiet: bool,
    threads: int | None,
) -> dict[str, Any]:
    """Train the chosen settings on the whole training file (no validation split), check its fit, test once.

    An attempt whose training accuracy misses the CV accuracy by more than :data:`FIT_SLACK` is trained
    again with the next seed (``tuning["final_attempts"]`` lists the ones set aside); the last of
    :data:`FIT_ATTEMPTS` is kept whatever its fit, with a warning.
    """
    chosen = tuning["chosen"]
    floor = chosen["accuracy"] - FIT_SLACK
    attempts: list[dict[str, Any]] = list(tuning.get("final_attempts", []))
    if resume:
        run = open_run(run.path, resume=True, quiet=quiet)
        resume_seed = int(load_checkpoint(run.checkpoint)["train_config"]["seed"])
        attempts = [a for a in attempts if a["seed"] < resume_seed]
    run.keeps_tuning = True
    data = load_sequence_data(
        train_file, test_file, valid_fraction=0.0, per_channel=train_config.normalize == "channel"
    )
    model_cfg, train_cfg = final_configs(model_config, train_config, chosen, len(data.train))
    log_path = run.path / TUNE_LOG
    while True:
        seed = train_config.seed + len(attempts)
        last = len(attempts) + 1 >= FIT_ATTEMPTS
        tuning = {**tuning, "final_attempts": attempts}
        _write_json(run.path / TUNE_JSON, tuning)
        try:
            metrics = train_sequence_classifier(
                model_cfg,
                replace(train_cfg, seed=seed),
                run.path,
                train_file=train_file,
                test_file=test_file,
                resume=resume,
                quiet=quiet,
                threads=1 if threads is None else threads,  # as the trials whose speed set its share of the budget
                tuning=tuning,
                run=run,
                data=data,
                fit_floor=0.0 if last else floor,
            )
        except PoorFit as e:
            attempts.append({"seed": seed, "train_accuracy": e.train_accuracy})
            _log(
                log_path,
                f"final model (seed {seed}): training accuracy {e.train_accuracy:.4f}, below the CV accuracy "
                f"{chosen['accuracy']:.4f} - {FIT_SLACK}: it did not learn what the folds learnt; training it again "
                f"with seed {seed + 1}",
                quiet,
            )
            resume = False
            continue
        break
    fit = metrics["train_accuracy"]
    if fit < floor:
        _log(
            log_path,
            f"warning: after {len(attempts) + 1} seeds the final model's training accuracy is {fit:.4f}, below the "
            f"CV accuracy {chosen['accuracy']:.4f}; it is kept, but expect a test accuracy below the CV accuracy",
            quiet,
        )
    length = {"steps": train_cfg.max_steps} if train_cfg.max_steps else {"epochs": train_cfg.epochs}
    result = {**metrics, "cv_accuracy": chosen["accuracy"], "chosen": {**chosen["params"], **length}}
    return {**result, "final_seed": train_config.seed + len(attempts), "final_fit_ok": fit >= floor}


def _log(path: Path, line: str, quiet: bool) -> None:
    """A line of ``tune.log``, and of the terminal unless ``quiet``."""
    with open(path, "a") as f:
        f.write(line + "\n")
    if not quiet:
        print(line, file=sys.stderr, flush=True)
