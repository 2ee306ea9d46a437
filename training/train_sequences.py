"""Training of a sequence classifier on a user's files (``rnnedge train classifier``).

The data are labelled sequences of any length read by :func:`rnnedge.data.sequences.read_sequences`
(a UEA/UCR ``.ts`` file, an ``.npz``, or IDX images read row by row: the MNIST presets, ``rnnedge train
mnist-lstm``, are this trainer with :data:`~rnnedge.training.config.CLASSIFIER_PRESETS`' settings).
The training split's mean and std (:func:`~rnnedge.data.sequences.channel_stats`, over valid steps
only; per channel, or over all values with ``normalize="global"``) normalise every split; the
checkpoint carries them (``standardize``), the class names as the file writes them (``labels``)
and where the data came from (``data``), so export needs nothing else. Validation comes from a
``--valid`` file or a stratified ``valid_fraction`` of the training file.

Batches are padded to their longest sequence and packed (the model never sees the padding).
Deterministic given the seed, like every trainer: epoch ``e``'s shuffle depends on ``seed`` and
``e`` alone, so ``--resume`` replays exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnedge.data.sequences import SequenceDataset, channel_stats, read_sequences, split_validation
from rnnedge.errors import CheckpointError, ConfigError

from .checkpoint import load_checkpoint
from .classification import ClassificationTask
from .config import STEP_BUDGET, SequenceClassifierConfig, SequenceTrainConfig
from .loop import budget_steps, run_training, torch_threads
from .models import SEQUENCE_CLASSIFIER, SequenceClassifier
from .run_dir import RunDir, open_run

__all__ = [
    "PoorFit",
    "SequenceData",
    "SequenceTask",
    "as_tensors",
    "auto_batch_size",
    "batch_size_for",
    "evaluate",
    "load_sequence_data",
    "train_sequence_classifier",
]


class PoorFit(Exception):
    """The trained model fits its own training sequences worse than ``fit_floor`` asked (raised before any test).

    ``--tune``'s final training asks for the accuracy its cross-validation promised: a model left on a
    plateau at chance is caught here, before the test split is looked at, and trained again.
    """

    def __init__(self, train_accuracy: float, floor: float) -> None:
        super().__init__(f"training accuracy {train_accuracy:.4f} is below {floor:.4f}")
        self.train_accuracy, self.floor = train_accuracy, floor


class SequenceData:
    """The splits of one problem, normalised with the training split's channel statistics.

    ``test`` is ``None`` for a cross-validation fold (:mod:`~rnnedge.training.tune`), which never sees it.

    ``files`` records where each split came from (absolute paths; ``valid`` is ``None`` when it
    was held out of the training file), for the checkpoint.
    """

    def __init__(
        self,
        train: SequenceDataset,
        valid: SequenceDataset | None,
        test: SequenceDataset | None,
        files: dict[str, Any],
        *,
        per_channel: bool = True,
    ):
        self.stats = channel_stats(train, per_channel=per_channel)
        self.train = train.normalized(self.stats)
        self.valid = valid.normalized(self.stats) if valid is not None else None
        self.test = test.normalized(self.stats) if test is not None else None
        self.files = files

    @property
    def class_names(self) -> tuple[str, ...]:
        names: tuple[str, ...] = self.train.class_names
        return names


def load_sequence_data(
    train_file: str | os.PathLike[str],
    test_file: str | os.PathLike[str],
    valid_file: str | os.PathLike[str] | None = None,
    *,
    valid_fraction: float = 0.2,
    seed: int = 0,
    per_channel: bool = True,
) -> SequenceData:
    """Read the files (the test and validation files with the training file's class names) and split."""
    train = read_sequences(train_file)
    test = read_sequences(test_file, class_names=train.class_names)
    if test.num_channels != train.num_channels:
        raise ConfigError(
            f"test file {test_file} has {test.num_channels} channels per step, the training file {train_file} "
            f"has {train.num_channels}; both must describe the same problem"
        )
    valid: SequenceDataset | None
    if valid_file is not None:
        valid = read_sequences(valid_file, class_names=train.class_names)
        if valid.num_channels != train.num_channels:
            raise ConfigError(
                f"validation file {valid_file} has {valid.num_channels} channels per step, the training file "
                f"{train_file} has {train.num_channels}; both must describe the same problem"
            )
    elif valid_fraction > 0:
        train, valid = split_validation(train, valid_fraction, seed=seed)
    else:
        valid = None
    files = {
        "train": str(Path(train_file).resolve()),
        "valid": None if valid_file is None else str(Path(valid_file).resolve()),
        "test": str(Path(test_file).resolve()),
        "valid_fraction": None if valid_file is not None or valid is None else valid_fraction,
    }
    return SequenceData(train, valid, test, files, per_channel=per_channel)


def as_tensors(data: SequenceDataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x`` float32 ``(N, T, F)`` padded, ``lengths`` int64 ``(N,)`` and labels int64 ``(N,)``."""
    x, lengths = data.padded()  # (N, T, F), (N,)
    return torch.from_numpy(x), torch.from_numpy(lengths), torch.from_numpy(np.array(data.labels))


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor, batch: int = 256
) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of the padded sequences ``x`` ``(N, T, F)`` (``lengths`` ``(N,)``) as ``y``."""
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(x), batch):
        n = lengths[i : i + batch]
        logits = model(x[i : i + batch, : int(n.max())], n)  # (b, C)
        correct += int((logits.argmax(1) == y[i : i + batch]).sum())
        log_probs = torch.log_softmax(logits, dim=1)  # (b, C)
        loss -= float(log_probs.gather(1, y[i : i + batch, None]).sum())
    return correct / len(x), loss / len(x)


def auto_batch_size(n: int) -> int:
    """The default batch for ``n`` training sequences: about ten steps an epoch, 4 to 32 sequences, at most ``n``."""
    return min(n, max(4, min(32, n // 10)))


def batch_size_for(n: int, batch_size: int | None) -> int:
    """The batch a run of ``n`` training sequences takes: ``batch_size``, or :func:`auto_batch_size`'s if ``None``."""
    return auto_batch_size(n) if batch_size is None else batch_size


def random_shift(x: torch.Tensor, max_shift: int, fill: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Translate each sequence of ``x`` ``(B, T, F)`` by up to ``max_shift`` steps and channels.

    What moves in from outside reads ``fill`` ``(F,)`` (each channel's value for a raw zero: an
    image's background). The model is unchanged; this only regularises training. Shifts come from
    ``generator`` so training stays reproducible.
    """
    if max_shift == 0:
        return x
    b, t, f = x.shape
    padded = torch.nn.functional.pad(x, (max_shift,) * 4, value=float("nan"))  # (B, T+2s, F+2s)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, b), generator=generator)
    rows = (dy[:, None] + torch.arange(t))[:, :, None]  # (B, T, 1)
    cols = (dx[:, None] + torch.arange(f))[:, None, :]  # (B, 1, F)
    moved = padded[torch.arange(b)[:, None, None], rows, cols]
    return torch.where(torch.isnan(moved), fill, moved)


def _lr_at(cfg: SequenceTrainConfig, step: int, total: int) -> float:
    frac = min(step / max(total, 1), 1.0)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * frac))


class SequenceTask(ClassificationTask):
    """A sequence classifier on a user's files, for :func:`~rnnedge.training.loop.run_training`.

    A ``batch_size`` of ``None`` becomes :func:`auto_batch_size`'s (the checkpoint records the number).
    With ``patience`` and a validation split, the task keeps the weights of its best validation (the lowest
    cross-entropy: smoother than the accuracy of a small split), stops once ``patience`` epochs have not
    bettered it (never before a quarter of ``epochs``: some problems sit at chance for a while before they
    learn), and tests those weights. Those budgets stretch to :data:`~rnnedge.training.config.STEP_BUDGET`'s
    optimizer steps where an epoch has few (small data); an ``epochs`` of ``None`` becomes its number
    (the checkpoint records it).
    ``tuning`` (what ``--tune`` chose, and how) goes into the checkpoint as it is. With ``fit_floor``, the
    end of training measures the accuracy on the training sequences themselves (``train_accuracy``) and
    raises :class:`PoorFit`, before testing, when it is below the floor.
    """

    kind = SEQUENCE_CLASSIFIER.name

    def __init__(
        self,
        model_config: SequenceClassifierConfig,
        train_config: SequenceTrainConfig,
        data: SequenceData,
        name: str | None = None,
        tuning: dict[str, Any] | None = None,
        fit_floor: float | None = None,
    ) -> None:
        super().__init__()
        self.fit_floor = fit_floor
        self.name = name or f"classifier ({data.train.name})"
        if model_config.input_size != data.train.num_channels or model_config.num_classes != len(data.class_names):
            raise ConfigError(
                f"the model takes {model_config.input_size} channels and {model_config.num_classes} classes; the data "
                f"has {data.train.num_channels} channels and {len(data.class_names)} classes"
            )
        n = len(data.train)
        batch = batch_size_for(n, train_config.batch_size)
        self.check_batch_size(batch, n, "sequences")
        self.steps_per_epoch = math.ceil(n / batch)
        early_stopping = train_config.patience > 0 and data.valid is not None
        epochs = STEP_BUDGET.epochs(self.steps_per_epoch, train_config.epochs, early_stopping)
        train_config = replace(train_config, batch_size=batch, epochs=epochs)
        self.model_config, self.train_config, self.data, self.tuning = model_config, train_config, data, tuning
        self.train_x, self.train_len, self.train_y = as_tensors(data.train)
        if train_config.shift > 0 and bool((self.train_len != self.train_len[0]).any()):
            raise ConfigError(
                f"shift={train_config.shift} translates sequences of one length (images); the training sequences' "
                f"lengths are {int(self.train_len.min())}-{int(self.train_len.max())}: give shift=0"
            )
        if train_config.shift > 0 and train_config.normalize != "global":
            raise ConfigError(
                f"shift={train_config.shift} moves values across channels, which needs one normalisation for every "
                f"channel: give normalize='global' (--normalize global), or shift=0"
            )
        # What a raw zero becomes in each channel: what a shift moves in (an image's background).
        self.fill = torch.from_numpy(data.stats.apply(np.zeros((1, data.train.num_channels), np.float32))[0])
        self.tested = as_tensors(data.test) if data.test is not None else None
        self.valid = as_tensors(data.valid) if data.valid is not None else None
        # Chance: the accuracy of always answering the validation split's largest class.
        self.chance = float(np.bincount(self.valid[2].numpy()).max() / len(self.valid[2])) if self.valid else 1.0
        # The best validation so far: its epoch (1-based), accuracy, loss and weights; epochs since it.
        self.best: dict[str, Any] | None = None
        self.since_best = 0
        self.top = 0.0  # the best validation accuracy so far; at or below chance, the warm-up is longer
        self.validated = 0  # epochs validated so far
        torch.manual_seed(train_config.seed)
        self.model = SequenceClassifier(model_config)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay
        )
        self.total_steps = budget_steps(self.steps_per_epoch, train_config)

    def describe(self) -> str:
        valid = f"{len(self.valid[0])} validation" if self.valid is not None else "no validation"
        test = f"{len(self.tested[0])} test" if self.tested is not None else "no test"
        return (
            f"on {len(self.train_x)} sequences ({valid}, {test}) of {self.data.train.num_channels} "
            f"channels, lengths {int(self.train_len.min())}-{int(self.train_len.max())}, "
            f"{len(self.data.class_names)} classes"
        ) + self._dead_classes()

    def _dead_classes(self) -> str:
        """A warning line for classes the file declares but no training sequence has (outputs never learnt)."""
        counts = np.bincount(self.train_y.numpy(), minlength=len(self.data.class_names))
        dead = [name for name, count in zip(self.data.class_names, counts, strict=True) if count == 0]
        if not dead:
            return ""
        held_out = " (after the validation split)" if self.data.files.get("valid_fraction") else ""
        return (
            f"\nwarning: no training sequence{held_out} has class {', '.join(map(repr, dead))} of "
            f"{len(self.data.class_names)}; the model keeps an output for it that it never learns: remove the "
            "class from the file's class list (a .ts file's @classLabel, an .npz's class_names) or add sequences of it"
        )

    def step(self, epoch: int, step_in_epoch: int, step: int) -> dict[str, str]:
        cfg = self.train_config
        idx = self.order[step_in_epoch * cfg.batch_size : (step_in_epoch + 1) * cfg.batch_size]
        lengths, y = self.train_len[idx], self.train_y[idx]
        x = self.train_x[idx, : int(lengths.max())]  # (b, T_batch, F)
        for group in self.optimizer.param_groups:
            group["lr"] = _lr_at(cfg, step, self.total_steps)
        step_seed = cfg.seed * 100003 + 7919 * step + 1
        x = random_shift(x, cfg.shift, self.fill, torch.Generator().manual_seed(step_seed))
        torch.manual_seed(step_seed)  # dropout masks and noise: a function of the step
        if cfg.noise > 0:
            x = x + cfg.noise * torch.randn(x.shape)  # padding gets noise too: packing never reads it
        return self.learn(self.model(x, lengths), y)  # logits (b, C)

    def validate(self, epoch: int) -> tuple[dict[str, float], dict[str, Any], str]:
        line = f"epoch {epoch + 1}: train loss {self.loss_sum / max(self.seen, 1):.4f}"
        if self.valid is None:
            self.model.train()
            return {}, {}, line + " (no validation split)"
        acc, loss = evaluate(self.model, *self.valid)
        self.model.train()
        self.validated = epoch + 1
        self.top = max(self.top, acc)
        best = self.best
        if best is None or loss < best["loss"]:
            weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.best = {"epoch": epoch + 1, "accuracy": acc, "loss": loss, "model": weights}
            self.since_best = 0
        else:
            self.since_best += 1
        metrics = {"valid_accuracy": acc, "valid_loss": loss}
        return metrics, {"accuracy": acc, "loss": loss}, f"{line}, valid accuracy {acc:.4f}, loss {loss:.4f}"

    def warm(self) -> bool:
        """Whether early stopping may act: a slow start gets its warm-up, and one never above chance more."""
        epochs: int = self.train_config.epochs
        at_chance = self.top <= self.chance
        return self.validated >= max(epochs // 4, STEP_BUDGET.warmup_epochs(self.steps_per_epoch, at_chance))

    def stop_early(self) -> bool:
        cfg = self.train_config
        patience = STEP_BUDGET.patience(self.steps_per_epoch, cfg.patience)
        return cfg.patience > 0 and self.best is not None and self.warm() and self.since_best >= patience

    def keep_best(self) -> dict[str, float]:
        """With ``patience``, take back the best validation's weights; the metrics that describe them."""
        if self.train_config.patience == 0 or self.best is None:
            return {}
        self.model.load_state_dict(self.best["model"])
        return {
            "best_epoch": self.best["epoch"],
            "valid_accuracy": self.best["accuracy"],
            "valid_loss": self.best["loss"],
        }

    def test(self) -> tuple[dict[str, float], dict[str, Any], str]:
        kept = self.keep_best()
        chosen = f" (weights of epoch {kept['best_epoch']}, the best validation)" if kept else ""
        if self.fit_floor is not None:
            fit, _ = evaluate(self.model, self.train_x, self.train_len, self.train_y)
            if fit < self.fit_floor:
                raise PoorFit(fit, self.fit_floor)
            kept = {**kept, "train_accuracy": fit}
            chosen += f"; accuracy {fit:.4f} on the training sequences"
        if self.tested is None:
            return kept, {}, "no test split"
        acc, _ = evaluate(self.model, *self.tested)
        line = f"test accuracy {acc:.4f} on {len(self.tested[0])} sequences{chosen}"
        return {**kept, "test_accuracy": acc}, {"accuracy": acc}, line

    def checkpoint_fields(self) -> dict[str, Any]:
        return {
            **self.running_fields(),
            "standardize": self.data.stats.to_dict(),
            "labels": list(self.data.class_names),
            "data": dict(self.data.files),
            **({"best": {**self.best, "since": self.since_best, "top": self.top}} if self.best is not None else {}),
            **({"tuning": self.tuning} if self.tuning is not None else {}),
        }

    def restore(self, ckpt: dict[str, Any]) -> None:
        super().restore(ckpt)
        self.validated = int(ckpt["progress"].get("epoch", 0))
        best = ckpt.get("best")
        if isinstance(best, dict):
            self.best = {k: v for k, v in best.items() if k not in ("since", "top")}
            self.since_best = int(best.get("since", 0))
            self.top = float(best.get("top", self.best.get("accuracy", 0.0)))


def train_sequence_classifier(
    model_config: SequenceClassifierConfig,
    train_config: SequenceTrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    train_file: str | os.PathLike[str],
    test_file: str | os.PathLike[str],
    valid_file: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    threads: int | None = None,
    name: str | None = None,
    tuning: dict[str, Any] | None = None,
    run: RunDir | None = None,
    data: SequenceData | None = None,
    fit_floor: float | None = None,
) -> dict[str, Any]:
    """Train on the files in the run folder ``out_dir``; return the final metrics (with test accuracy).

    ``model_config``'s ``input_size`` and ``num_classes`` are replaced by the data's. The files are
    read (and every malformed one refused) before anything is written in the run folder. ``name``
    (a preset's, say) is what the log calls the run; ``tuning`` is what ``--tune`` chose, for the checkpoint,
    and ``run`` the folder ``--tune`` already opened (``out_dir`` is then that folder). ``data`` is the files
    already read (``--tune`` trains its final model again when it misses ``fit_floor``: see :class:`SequenceTask`).
    """
    if data is None:
        data = load_sequence_data(
            train_file,
            test_file,
            valid_file,
            valid_fraction=train_config.valid_fraction,
            seed=train_config.seed,
            per_channel=train_config.normalize == "channel",
        )
    model_config = replace(model_config, input_size=data.train.num_channels, num_classes=len(data.class_names))
    if run is None:
        run = open_run(out_dir, resume=resume, overwrite=overwrite, quiet=quiet)
    if resume:  # the settings are checked by the loop; the files are this kind's own
        ckpt = load_checkpoint(run.checkpoint)
        saved = ckpt.get("data") or {}
        differ = [
            f"{key} (checkpoint {saved.get(key)!r}, this run {value!r})"
            for key, value in data.files.items()
            if saved.get(key) != value
        ]
        if differ:
            raise CheckpointError(
                f"cannot resume {run.checkpoint}: it was trained on other data: {'; '.join(differ)}; give the run's "
                "own files, or train into a new folder"
            )
    with torch_threads(threads):
        task = SequenceTask(model_config, train_config, data, name, tuning, fit_floor)
        return run_training(task, run, resume=resume, quiet=quiet)
