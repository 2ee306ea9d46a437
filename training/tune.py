"""``rnnedge train classifier --tune MINUTES``: a sequence classifier's settings chosen on the training file alone.

Optuna (the ``tune`` extra) proposes settings with its TPE sampler; each candidate (a *trial*) trains
on every fold of :func:`~rnnedge.data.folds.cv_folds` with early stopping on the fold's held-out part
(the epoch of lowest validation loss), and scores the mean accuracy there, ties broken by the mean loss
(``score = accuracy - 0.01 * loss``). After each fold the trial reports its running mean, and
Optuna's median pruner drops a trial that is already worse than the median of the earlier ones at the
same fold. The defaults are the first trial, so the search can only choose something that
cross-validates at least as well. A trial whose remaining folds would not fit in the time left stops
after the fold that shows it; a trial cut short counts for nothing.

Then the final model trains on the whole training file with the best trial's settings, for the median
of its folds' best epochs; the test file is read once, by that training, for the reported number.

The run folder holds, beside the final run's files: ``tune.db`` (the study, SQLite: a Ctrl-C keeps every
finished trial, and ``--resume`` continues the search with what is left of the budget, or the final
training if it had started), ``tune.json`` (every trial's cross-validated score and the chosen
settings, rewritten after each trial) and ``tune.log``. The checkpoint carries the same summary
(``tuning``), and so does an exported file's metadata (``config.tuning``).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from rnnedge.data.atomic import atomic_output
from rnnedge.data.folds import Folds, cv_folds
from rnnedge.data.sequences import SequenceDataset, read_sequences
from rnnedge.errors import CheckpointError, ConfigError, MissingExtraError

from .config import SequenceClassifierConfig, SequenceTrainConfig
from .loop import TrainingInterrupted, torch_threads
from .run_dir import TUNE_DB, TUNE_JSON, TUNE_LOG, RunDir, open_run
from .train_sequences import SequenceData, SequenceTask, train_sequence_classifier

__all__ = [
    "PATIENCE",
    "SEARCHED",
    "TuningInterrupted",
    "fit_fold",
    "require_optuna",
    "search_space",
    "tune_sequence_classifier",
]

# The settings the search chooses (each unless given on the command line, which fixes it).
SEARCHED = ("cell", "bidirectional", "hidden_size", "num_layers", "head", "dropout", "noise", "lr")
STUDY_NAME = "rnnedge-tune"
LOSS_WEIGHT = 0.01  # score = accuracy - LOSS_WEIGHT * loss: the loss only breaks ties of accuracy
PATIENCE = 10  # each fold's early stopping, unless --patience is given
_MODEL_FIELDS = {f.name for f in fields(SequenceClassifierConfig)}


class TuningInterrupted(TrainingInterrupted):
    """The search stopped at a Ctrl-C; its finished trials are kept in ``tune.db`` and ``--resume`` continues it."""


class _OutOfTime(Exception):
    """The budget ran out during a trial (not the first): the trial counts for nothing."""


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


def search_space(trial: Any, fixed: Mapping[str, Any], causal: bool) -> dict[str, Any]:
    """The settings ``trial`` proposes for every name of :data:`SEARCHED`; ``fixed`` ones are not searched.

    ``causal`` keeps the model streamable (no bidirectional layer), for a user who streams.
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
    }
    return {name: fixed[name] if name in fixed else choose() for name, choose in choices.items()}


def _configs(
    model: SequenceClassifierConfig, train: SequenceTrainConfig, params: Mapping[str, Any]
) -> tuple[SequenceClassifierConfig, SequenceTrainConfig]:
    return (
        replace(model, **{k: v for k, v in params.items() if k in _MODEL_FIELDS}),
        replace(train, **{k: v for k, v in params.items() if k not in _MODEL_FIELDS}),
    )


def fit_fold(
    model_config: SequenceClassifierConfig,
    train_config: SequenceTrainConfig,
    data: SequenceData,
    out_of_time: Callable[[], bool] = lambda: False,
) -> dict[str, float]:
    """Train on ``data.train``, validating on ``data.valid`` each epoch; the best epoch's numbers.

    The very steps :class:`SequenceTask` takes in a run (shuffle, noise, schedule, early stopping),
    without a run folder. Returns ``accuracy`` and ``loss`` at the epoch of lowest validation loss
    (the last epoch when ``patience`` is 0), that ``epoch`` (1-based), the ``epochs`` run and ``seconds``.
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
            task.step(epoch, s, step)
            step += 1
        last, _, _ = task.validate(epoch)
        epoch += 1
        if task.stop_early():
            break
        if out_of_time():
            raise _OutOfTime
    best = task.best if train_config.patience > 0 and task.best is not None else None
    return {
        "accuracy": float(best["accuracy"] if best else last["valid_accuracy"]),
        "loss": float(best["loss"] if best else last["valid_loss"]),
        "epoch": int(best["epoch"] if best else epoch),
        "epochs": epoch,
        "seconds": time.monotonic() - started,
    }


class _Search:
    """One session of the search: the study, its budget and the run folder's tune files."""

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
    ) -> None:
        self.study, self.run, self.train, self.folds = study, run, train, folds
        self.model_config, self.train_config = model_config, train_config
        self.budget = budget_seconds
        self.fixed, self.causal, self.quiet = dict(fixed), causal, quiet
        self.earlier = float(study.user_attrs.get("seconds", 0.0))
        self.started = time.monotonic()

    # -- time ------------------------------------------------------------------------------------
    def spent(self) -> float:
        return self.earlier + time.monotonic() - self.started

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

    # -- trials ----------------------------------------------------------------------------------
    def complete(self) -> list[Any]:
        optuna = require_optuna()
        return list(self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))

    def best(self) -> Any:
        done = self.complete()
        return max(done, key=lambda t: (t.value, -t.number)) if done else None

    def objective(self, trial: Any) -> float:
        optuna = require_optuna()
        params = search_space(trial, self.fixed, self.causal)
        trial.set_user_attr("params", params)  # every setting, the fixed ones too, pruned or not
        model_config, train_config = _configs(self.model_config, self.train_config, params)
        first = not self.complete()  # the first trial always finishes: a search must have a result

        def out_of_time() -> bool:
            return not first and self.left() <= 0

        self.log(f"trial {trial.number}: {_describe(params)} ...")
        results: list[dict[str, float]] = []
        per_channel = train_config.normalize == "channel"
        for k, (train_idx, valid_idx) in enumerate(self.folds.splits):
            fold = SequenceData(
                self.train.subset(train_idx), self.train.subset(valid_idx), None, {}, per_channel=per_channel
            )
            try:
                results.append(fit_fold(model_config, train_config, fold, out_of_time=out_of_time))
            except _OutOfTime:
                self.log(f"trial {trial.number}: stopped at fold {k + 1}: the budget ran out; it does not count")
                raise optuna.TrialPruned from None
            rest = statistics.fmean(r["seconds"] for r in results) * (len(self.folds.splits) - k - 1)
            if not first and rest > self.left():  # it would not finish: stop now rather than at the end
                self.log(
                    f"trial {trial.number}: stopped after fold {k + 1}: its other folds would take about "
                    f"{_clock(rest)}, more than the {_clock(max(self.left(), 0))} left; it does not count"
                )
                raise optuna.TrialPruned
            trial.report(statistics.fmean(r["accuracy"] for r in results), k)
            if trial.should_prune() and not first:
                self.log(
                    f"trial {trial.number}: pruned after fold {k + 1}: accuracy "
                    f"{statistics.fmean(r['accuracy'] for r in results):.4f}, below the median of earlier trials"
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
                f"(folds {', '.join(f'{x:.3f}' for x in a['fold_accuracy'])}; {a['epochs']} epochs)"
            )
        if best is not None:
            self.log(
                f"  best so far: trial {best.number}, CV accuracy {best.user_attrs['accuracy']:.4f}; "
                f"{_clock(max(self.budget - self.spent(), 0))} of the budget left"
            )
        self.write_summary()
        if self.left() <= 0:
            study.stop()

    def log(self, line: str, *, echo: bool = True) -> None:
        with open(self.run.path / TUNE_LOG, "a") as f:
            f.write(line + "\n")
        if echo and not self.quiet:
            print(line, file=sys.stderr, flush=True)

    def summary(self) -> dict[str, Any]:
        """What the search did and chose: ``tune.json``, the checkpoint's ``tuning``."""
        trials = []
        for t in self.study.get_trials(deepcopy=False):
            a = t.user_attrs
            trials.append(
                {
                    "number": t.number,
                    "state": t.state.name.lower(),
                    "params": a.get("params", dict(t.params)),
                    **({"score": t.value} if t.value is not None else {}),
                    **{k: a[k] for k in ("accuracy", "loss", "fold_accuracy", "epochs", "seconds") if k in a},
                }
            )
        best = self.best()
        return {
            "minutes": self.budget / 60,
            "seconds": round(self.spent(), 1),
            "folds": self.folds.describe(),
            "cases": len(self.train),
            "causal": self.causal,
            "fixed": self.fixed,
            "score": f"mean CV accuracy at each fold's best epoch - {LOSS_WEIGHT} x mean CV cross-entropy",
            "sampler": "optuna TPE, median pruner after each fold",
            "trials": trials,
            "chosen": None
            if best is None
            else {
                "trial": best.number,
                "params": best.user_attrs["params"],
                "epochs": best.user_attrs["epochs"],
                "accuracy": best.user_attrs["accuracy"],
                "loss": best.user_attrs["loss"],
            },
        }

    def write_summary(self) -> None:
        _write_json(self.run.path / TUNE_JSON, self.summary())


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
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    threads: int | None = None,
) -> dict[str, Any]:
    """Search for ``minutes`` (in all, over resumed sessions), then train the final model; its metrics.

    ``model_config`` and ``train_config`` hold what the search does not choose (``epochs`` and
    ``patience`` bound each fold's early stopping); ``fixed`` holds the :data:`SEARCHED` settings the
    user gave, kept as given. The metrics are the final run's, with ``tuning`` (:meth:`_Search.summary`).
    """
    optuna = require_optuna()
    fixed = dict(fixed or {})
    if causal and fixed.get("bidirectional"):
        raise ConfigError("--causal asks for a streamable model and --bidirectional for one that is not: give one")
    if not math.isfinite(minutes) or minutes <= 0:
        raise ConfigError(f"--tune takes the minutes the search may take, a number > 0; got {minutes}")
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
    storage = f"sqlite:///{(run.path / TUNE_DB).resolve()}"
    if resume:
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
        saved = study.user_attrs.get("settings", {})
        differ = sorted(k for k in settings if saved.get(k) != settings[k])
        if differ:
            raise CheckpointError(
                f"cannot resume the search in {run.path}: it was started with other {', '.join(differ)} "
                f"({'; '.join(f'{k}: {saved.get(k)!r}' for k in differ)}); give the run's own, or start a new folder"
            )
    else:
        run.clear()  # an earlier run's files, --overwrite given (its tune files too)
        study = optuna.create_study(
            study_name=STUDY_NAME,
            storage=storage,
            direction="maximize",
        )
        study.set_user_attr("settings", settings)
        defaults = {k: getattr(model_config if k in _MODEL_FIELDS else train_config, k) for k in SEARCHED}
        study.enqueue_trial(
            {k: v for k, v in defaults.items() if k not in fixed and not (causal and k == "bidirectional")}
        )
    seed = train_config.seed * 1000 + len(study.trials)  # a resumed session does not replay the first one's draws
    study.sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
    study.pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    search = _Search(
        study, run, train, cv, model_config, train_config, minutes * 60, fixed=fixed, causal=causal, quiet=quiet
    )
    search.log(
        f"{'resumed' if resume else 'tuning'} a classifier of {train.name} for {minutes:g} minutes: "
        f"{len(train)} cases, {cv.describe()}; searching {', '.join(k for k in SEARCHED if k not in fixed)}"
        + (" (causal models only)" if causal else "")
        + f"; {_clock(max(search.budget - search.spent(), 0))} left"
    )
    try:
        with torch_threads(threads):
            if not search.complete() or search.left() > 0:
                study.optimize(search.objective, callbacks=[search.after_trial], gc_after_trial=False)
    except KeyboardInterrupt:
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
    tuning = search.summary()
    search.write_summary()
    chosen = tuning["chosen"]
    search.log(
        f"chose trial {chosen['trial']} ({_describe(chosen['params'])}): CV accuracy {chosen['accuracy']:.4f}; "
        f"training it on all {len(train)} cases for {chosen['epochs']} epochs"
    )
    run.keeps_tuning = True
    return _final(model_config, train_config, run, tuning, train_file, test_file, False, quiet, threads)


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
    """Train the chosen settings on the whole training file (no validation split) and test once."""
    chosen = tuning["chosen"]
    model_cfg, train_cfg = _configs(model_config, train_config, chosen["params"])
    train_cfg = replace(train_cfg, epochs=int(chosen["epochs"]), patience=0, valid_fraction=0.0)
    if resume:
        run = open_run(run.path, resume=True, quiet=quiet)
    run.keeps_tuning = True
    metrics = train_sequence_classifier(
        model_cfg,
        train_cfg,
        run.path,
        train_file=train_file,
        test_file=test_file,
        resume=resume,
        quiet=quiet,
        threads=threads,
        tuning=tuning,
        run=run,
    )
    return {**metrics, "cv_accuracy": chosen["accuracy"], "chosen": {**chosen["params"], "epochs": chosen["epochs"]}}
