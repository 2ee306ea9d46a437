"""The one training loop every kind runs: epochs and steps, checkpoints, resume, metrics, Ctrl-C.

A kind's trainer is a :class:`Task`: it owns its data, network and optimizer and says how to
take one step, validate and test, and what else its checkpoint carries. :func:`run_training`
owns everything around that, identically for every kind:

* the checkpoint (``{"kind", "model", "config", "train_config", "optimizer", "metrics",
  "progress", ...the task's fields}``), written every ``checkpoint_every`` steps, after every
  validation, at the end, and at a Ctrl-C;
* resume: the settings must match the checkpoint's, except the budget (``epochs``,
  ``max_steps``, ``checkpoint_every``), so a finished run can be extended;
* validation after each epoch and at the end of the budget, and a validation that a Ctrl-C
  cut short runs again on ``--resume`` (the checkpoint's ``metrics`` are for an earlier step);
* early stopping: after a validation the task may say to stop (``stop_early``); the run then
  ends as at the end of its budget;
* Ctrl-C: the step under way finishes, a checkpoint is written and :class:`TrainingInterrupted`
  (a ``KeyboardInterrupt``) says that ``--resume`` continues. During validation and testing,
  which change nothing, it stops at once. A second Ctrl-C stops at once, without a checkpoint.

Deterministic: a run resumed from any checkpoint, interrupt or not, ends bit-identical to the
uninterrupted one (on one thread), because a checkpoint is only ever written between steps.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from types import FrameType
from typing import Any, Protocol

import torch
from torch import nn

from rnnedge.errors import CheckpointError

from .checkpoint import check_resumable, load_checkpoint, save_checkpoint
from .plots import plot_if_available
from .progress import progress_bar
from .run_dir import RunDir

__all__ = [
    "BUDGET_FIELDS",
    "RECORD_EVERY",
    "Interrupts",
    "Task",
    "TrainingInterrupted",
    "budget_steps",
    "run_training",
    "torch_threads",
]

# Training-config fields a resumed run may change: they set how long it runs, not what it does
# step by step (the classifier's cosine then spans the new total from the step it is at).
BUDGET_FIELDS = ("epochs", "max_steps", "checkpoint_every")
RECORD_EVERY = 50  # steps between "train" records in metrics.jsonl


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped at a Ctrl-C, after writing a checkpoint that ``--resume`` continues from."""

    def __init__(self, message: str, checkpoint: os.PathLike[str] | str, step: int) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint
        self.step = step


class Task(Protocol):
    """What one kind of training gives the loop. Attributes are set by the task's constructor."""

    name: str  # what logs call the run ("mnist-lstm", "ptb")
    kind: str  # the registered kind the checkpoint names (rnnedge.training.kinds)
    model_config: Any  # frozen dataclasses, stored with asdict
    train_config: Any
    steps_per_epoch: int
    total_steps: int
    rank: int  # this process's place in a distributed job (0 and 1 otherwise)
    world_size: int

    @property
    def model(self) -> nn.Module:
        """The network being trained."""

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """Its optimizer."""

    def describe(self) -> str:
        """What the run trains on, for the first log line ("on 55000 images")."""

    def start_epoch(self, epoch: int, step_in_epoch: int) -> None:
        """Prepare ``epoch`` from ``step_in_epoch`` (0: a fresh epoch, whose running sums start at zero)."""

    def step(self, epoch: int, step_in_epoch: int, step: int) -> dict[str, str] | None:
        """Take one optimisation step; return what the progress bar shows, if it changes."""

    def train_record(self) -> dict[str, float]:
        """The epoch's running training values for a ``train`` record."""

    def validate(self, epoch: int) -> tuple[dict[str, float], dict[str, Any], str]:
        """Metrics (``valid_*``), the ``valid`` record's values and the log line (first process only)."""

    def stop_early(self) -> bool:
        """Whether validation says to stop before the budget (early stopping); asked after each validation."""

    def test(self) -> tuple[dict[str, float], dict[str, Any], str]:
        """Metrics (``test_*``), the ``test`` record's values and the log line (first process only)."""

    def checkpoint_fields(self) -> dict[str, Any]:
        """The task's own checkpoint fields, ``"running"`` among them (collective in a distributed job)."""

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Take back what :meth:`checkpoint_fields` saved."""

    def barrier(self) -> None:
        """Wait for every process (nothing to wait for in a one-process job)."""


def budget_steps(steps_per_epoch: int, train_config: Any) -> int:
    """Steps the run takes: ``epochs`` of ``steps_per_epoch``, capped by ``max_steps``."""
    total: int = steps_per_epoch * train_config.epochs
    if train_config.max_steps is not None:
        total = min(total, train_config.max_steps)
    return total


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Set torch's intra-op threads for the block (``None``: leave them), restored even on error.

    On a small, shared CPU one thread is often several times faster than the default, whose
    threads spin-wait.
    """
    saved = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


class Interrupts:
    """Ctrl-C turned into a request honoured between steps (see the module docstring); a second one acts at once.

    Only the main thread receives signals, so elsewhere it is disabled and Ctrl-C keeps its default.
    ``insist=False`` makes a second one a request too: for a worker process, which hears the terminal's
    Ctrl-C and then its parent's.
    """

    def __init__(self, enabled: bool, *, insist: bool = True) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.insist = insist
        self.requested = False
        self.forced = False
        self.at_once = False
        self._previous: Any = None

    def __enter__(self) -> Interrupts:
        if self.enabled:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and self.insist:
            self.forced = True
            raise KeyboardInterrupt
        self.requested = True
        if self.at_once:
            raise KeyboardInterrupt

    def check(self) -> None:
        """Stop here if a Ctrl-C came since the last check."""
        if self.requested:
            raise KeyboardInterrupt

    @contextmanager
    def immediate(self) -> Iterator[None]:
        """A block that changes nothing the checkpoint holds (validation, test): a Ctrl-C stops it at once."""
        self.check()
        self.at_once = True
        try:
            yield
        finally:
            self.at_once = False


def run_training(task: Task, run: RunDir, *, resume: bool = False, quiet: bool = False) -> dict[str, Any]:
    """Train ``task`` in ``run`` (a folder :func:`~rnnedge.training.run_dir.open_run` accepted); return the metrics.

    The metrics are the last validation's (``valid_*``, ``epoch``, ``step``), the test's
    (``test_*``) and ``train_seconds`` (summed over resumed sessions); empty on every process
    of a distributed job but the first.
    """
    cfg = task.train_config
    lead = task.rank == 0
    epoch, step_in_epoch, step = 0, 0, 0
    metrics: dict[str, Any] = {}
    earlier_seconds = 0.0

    if resume:
        ckpt = load_checkpoint(run.checkpoint)
        if ckpt["kind"] != task.kind:
            raise CheckpointError(f"cannot resume {run.checkpoint}: it holds a {ckpt['kind']!r} model, not {task.name}")
        check_resumable(ckpt, run.checkpoint, asdict(task.model_config), asdict(cfg), BUDGET_FIELDS)
        progress = ckpt["progress"]
        if progress.get("world_size", 1) != task.world_size:
            raise CheckpointError(
                f"cannot resume {run.checkpoint}: it was written by {progress.get('world_size', 1)} processes, "
                f"this run has {task.world_size} (dropout RNG streams are per process)"
            )
        task.model.load_state_dict(ckpt["model"])
        task.optimizer.load_state_dict(ckpt["optimizer"])
        task.restore(ckpt)
        epoch, step_in_epoch, step = (progress[k] for k in ("epoch", "step_in_epoch", "step"))
        earlier_seconds = float(progress.get("seconds", 0.0))
        metrics = dict(ckpt["metrics"])
        run.start_metrics(step)
        run.log(f"resumed {task.name} from {run.checkpoint} at epoch {epoch + 1}, step {step} of {task.total_steps}")
    else:
        run.clear()
        run.start_metrics(None)
        run.log(f"training {task.name} {asdict(task.model_config)} with {asdict(cfg)} {task.describe()}")

    started = time.time()  # training seconds accumulate across resumed sessions

    def checkpoint(done: bool = False) -> None:
        fields = task.checkpoint_fields()  # every process takes part (it may gather across them)
        if not run.writer:
            return
        running = fields.pop("running", {})
        save_checkpoint(
            run.checkpoint,
            {
                "kind": task.kind,
                "model": task.model.state_dict(),
                "config": asdict(task.model_config),
                "train_config": asdict(cfg),
                "optimizer": task.optimizer.state_dict(),
                "metrics": metrics,
                "progress": {
                    "epoch": epoch,
                    "step_in_epoch": step_in_epoch,
                    "step": step,
                    "done": done,
                    "world_size": task.world_size,
                    "seconds": earlier_seconds + time.time() - started,
                    "running": running,
                },
                **fields,
            },
        )

    bar = progress_bar(
        total=task.total_steps, initial=min(step, task.total_steps), desc=task.name, quiet=quiet or not lead
    )
    interrupts = Interrupts(enabled=task.world_size == 1)
    try:
        with interrupts:
            while True:
                if step < task.total_steps and step_in_epoch < task.steps_per_epoch:
                    task.start_epoch(epoch, step_in_epoch)
                    while step_in_epoch < task.steps_per_epoch and step < task.total_steps:
                        postfix = task.step(epoch, step_in_epoch, step)
                        step, step_in_epoch = step + 1, step_in_epoch + 1
                        bar.update(1)
                        if postfix:
                            bar.set_postfix(**postfix)
                        if step % RECORD_EVERY == 0:
                            run.record("train", step=step, epoch=epoch + 1, **task.train_record())
                        if step % cfg.checkpoint_every == 0:
                            checkpoint()
                        interrupts.check()
                epoch_done = step_in_epoch >= task.steps_per_epoch
                # Validate at the end of each epoch and of the budget, unless the checkpoint already
                # holds this step's validation (a validation a Ctrl-C cut short is pending).
                if (epoch_done or step >= task.total_steps) and metrics.get("step") != step and lead:
                    with interrupts.immediate():
                        valid, record, line = task.validate(epoch)
                    metrics = {**valid, "epoch": epoch + 1, "step": step}
                    run.record("valid", step=step, epoch=epoch + 1, **record)
                    run.log(line)
                if epoch_done:
                    epoch, step_in_epoch = epoch + 1, 0
                checkpoint()
                task.barrier()
                interrupts.check()
                if step >= task.total_steps:
                    break
                if task.stop_early():
                    run.log(f"stopped early at epoch {epoch}: validation has not improved for its patience")
                    break
            bar.close()
            if lead:
                with interrupts.immediate():
                    test, record, line = task.test()
                metrics = {**metrics, **test, "train_seconds": round(earlier_seconds + time.time() - started, 1)}
                run.record("test", step=step, **record)
                run.log(line)
            checkpoint(done=True)
    except KeyboardInterrupt:
        bar.close()
        if interrupts.forced or not interrupts.enabled:
            raise
        checkpoint()
        message = (
            f"interrupted at step {step} of {task.total_steps}: checkpoint written to {run.checkpoint}; "
            "run the same command with --resume to continue"
        )
        run.log(message)
        raise TrainingInterrupted(message, run.checkpoint, step) from None
    if run.writer:
        plot_if_available(run.path)
    task.barrier()
    return metrics
