"""What a training run leaves on disk, shared by every trainer.

``RUN_DIR/checkpoint.pt`` (the latest complete state, written atomically),
``RUN_DIR/metrics.jsonl`` (one JSON object per logged event), ``RUN_DIR/train.log`` and,
with the plot extra, ``RUN_DIR/curves.png``; a run chosen by ``--tune`` adds ``tune.db``, ``tune.json`` and
``tune.log`` (:mod:`~rnnedge.training.tune`). On ``--resume`` the metrics past the checkpoint
are dropped, so a resumed run's log reads as if it had never been interrupted.

A folder that already holds a run is never trained into by accident: without ``--resume``
(continue it) or ``--overwrite`` (replace it) :func:`open_run` refuses it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from rnnedge.errors import CheckpointError, ConfigError

__all__ = [
    "CHECKPOINT_NAME",
    "LOG_NAME",
    "METRICS_NAME",
    "PLOT_NAME",
    "TUNE_DB",
    "TUNE_JSON",
    "TUNE_LOG",
    "RunDir",
    "open_run",
]

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
LOG_NAME = "train.log"
PLOT_NAME = "curves.png"
TUNE_DB = "tune.db"  # Optuna's study (SQLite)
TUNE_JSON = "tune.json"  # every trial's score and the chosen settings
TUNE_LOG = "tune.log"


class RunDir:
    """The files of one training run.

    ``writer`` is false on every process of a distributed job but the first: such a RunDir
    reads the folder (to resume) and writes nothing. ``keeps_tuning`` is set by ``--tune`` before its
    final training starts, so that the training's fresh start leaves the search's files.
    """

    def __init__(self, path: str | os.PathLike[str], *, quiet: bool = False, writer: bool = True) -> None:
        self.path = Path(path)
        self.checkpoint = self.path / CHECKPOINT_NAME
        self.metrics = self.path / METRICS_NAME
        self.log_file = self.path / LOG_NAME
        self.plot = self.path / PLOT_NAME
        self.quiet = quiet or not writer
        self.writer = writer
        self.tuning_files = tuple(self.path / n for n in (TUNE_DB, TUNE_JSON, TUNE_LOG))
        self.keeps_tuning = False

    def holds_a_run(self) -> list[str]:
        """The names of the run files already in the folder (empty for a new or unrelated folder)."""
        return [p.name for p in (self.checkpoint, self.metrics, self.log_file, *self.tuning_files) if p.exists()]

    def clear(self) -> None:
        """Remove an earlier run's files (``--overwrite``); other files in the folder are left alone."""
        if self.writer:
            tuning = () if self.keeps_tuning else self.tuning_files
            for p in (self.checkpoint, self.metrics, self.log_file, self.plot, *tuning):
                p.unlink(missing_ok=True)

    def start_metrics(self, resume_step: int | None) -> None:
        """Truncate the metrics log, keeping records up to ``resume_step`` when resuming.

        A ``test`` record is never kept: a resumed run measures the test set again when it ends
        (a finished run resumed with a larger budget tests the longer-trained model).
        """
        if not self.writer:
            return
        kept: list[str] = []
        if resume_step is not None and self.metrics.exists():
            for line in self.metrics.read_text().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    break  # a line cut by a kill: everything after it is gone too
                if record.get("step", 0) <= resume_step and record.get("event") != "test":
                    kept.append(line)
        self.metrics.write_text("".join(k + "\n" for k in kept))

    def record(self, event: str, **values: Any) -> None:
        """Append one metrics record (with a timestamp) to ``metrics.jsonl``."""
        if self.writer:
            with open(self.metrics, "a") as f:
                f.write(json.dumps({"event": event, "time": round(time.time(), 3), **values}) + "\n")

    def log(self, message: str) -> None:
        """Append a line to ``train.log`` and, unless quiet, print it on stderr."""
        if not self.writer:
            return
        with open(self.log_file, "a") as f:
            f.write(message + "\n")
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete record; a line cut short by a kill is skipped."""
        if not self.metrics.exists():
            return []
        records = []
        for line in self.metrics.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records


def open_run(
    path: str | os.PathLike[str],
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    writer: bool = True,
    tuning: bool = False,
) -> RunDir:
    """Check that a run may start in ``path`` and create the folder; nothing in it is changed yet.

    Refused, each with a message rather than a traceback: ``resume`` with ``overwrite``; a
    folder that cannot be created or written; ``resume`` where there is no checkpoint (a
    mistyped folder must not silently start a new run); and a folder that already holds a run
    when neither ``resume`` nor ``overwrite`` is given. Every process of a distributed job runs
    the same checks, so all refuse together; only the ``writer`` creates the folder. ``tuning``
    (``--tune``): a search's ``tune.db`` is a run to resume too.
    """
    run = RunDir(path, quiet=quiet, writer=writer)
    if resume and overwrite:
        raise ConfigError("--resume continues the run in the folder and --overwrite replaces it: give one of them")
    if run.path.exists() and not run.path.is_dir():
        raise ConfigError(f"cannot use {run.path} as the run folder: it is a file")
    if resume:
        if not run.checkpoint.is_file() and not (tuning and run.tuning_files[0].is_file()):
            held = CHECKPOINT_NAME + (f" or {TUNE_DB}" if tuning else "")
            where = "does not exist" if not run.path.exists() else f"holds no {held}"
            raise CheckpointError(
                f"cannot resume: {run.path} {where}; check the folder, or train without --resume to start a new run"
            )
    elif run.holds_a_run() and not overwrite:
        raise ConfigError(
            f"{run.path} already holds a training run ({', '.join(run.holds_a_run())}); pass --resume to continue "
            "it, or --overwrite to replace it"
        )
    if writer:
        try:
            run.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create the run folder {run.path}: {e.strerror or e}") from None
        if not os.access(run.path, os.W_OK | os.X_OK):
            raise ConfigError(f"cannot write in the run folder {run.path}: permission denied")
    return run
