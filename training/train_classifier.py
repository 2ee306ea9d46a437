"""Training loop for the row-by-row MNIST classifiers (causal LSTM and bidirectional LSTM).

Deterministic given the seed: the shuffle of epoch ``e`` comes from ``seed`` and ``e``
alone, so a run resumed from a mid-epoch checkpoint replays exactly the batches the
uninterrupted run would have seen.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnedge.data.mnist import PIXEL_MEAN, PIXEL_STD, load_mnist

from .checkpoint import build_model, check_resumable, load_checkpoint, save_checkpoint
from .config_checks import check_config, int_at_least, number_in, optional
from .models import RowClassifierConfig, RowLSTMClassifier
from .plots import plot_if_available
from .progress import progress_bar
from .run_dir import RunDir

__all__ = ["ClassifierTrainConfig", "build_classifier", "evaluate_accuracy", "preprocess_pixels", "train_classifier"]


@dataclass(frozen=True)
class ClassifierTrainConfig:
    """Optimisation settings; each field is a ``rnnedge train`` option of the same name."""

    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-3
    min_lr: float = 1e-5
    clip_norm: float = 1.0
    seed: int = 0
    max_steps: int | None = None
    checkpoint_every: int = 200
    shift: int = 2

    def __post_init__(self) -> None:
        check_config(
            self,
            {
                "epochs": int_at_least(1),
                "batch_size": int_at_least(1),
                "lr": number_in(0, low_open=True),
                "min_lr": number_in(0),
                "clip_norm": number_in(0, low_open=True),
                "seed": int_at_least(0),
                "max_steps": optional(int_at_least(1)),
                "checkpoint_every": int_at_least(1),
                "shift": int_at_least(0),
            },
        )


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image ``(B, H, W)`` by up to ``max_shift`` pixels, filling with background.

    The model is unchanged; this only regularises training (the row-LSTM overfits MNIST
    without it). Shifts come from ``generator`` so training stays reproducible.
    """
    if max_shift == 0:
        return images
    b, h, w = images.shape
    padded = torch.nn.functional.pad(
        images, (max_shift,) * 4, value=-PIXEL_MEAN / PIXEL_STD
    )  # a blank pixel, normalised
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, b), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (B, H, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (B, 1, W)
    return padded[torch.arange(b)[:, None, None], rows, cols]


def preprocess_pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` -> normalised float32 ``(N, 28, 28)``, as the metadata records it."""
    return torch.from_numpy(((images.astype(np.float32) / 255.0) - PIXEL_MEAN) / PIXEL_STD)


def build_classifier(ckpt: dict[str, Any]) -> RowLSTMClassifier:
    """Rebuild the classifier a checkpoint describes, with its weights, in eval mode."""
    return build_model(ckpt, RowClassifierConfig, RowLSTMClassifier)


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    """Fraction of ``x`` ``(N, T, F)`` classified as ``y`` ``(N,)``, in batches."""
    model.eval()
    correct = sum(int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum()) for i in range(0, len(x), batch))
    return correct / len(x)


def _lr_at(cfg: ClassifierTrainConfig, step: int, total: int) -> float:
    """Cosine decay from ``lr`` to ``min_lr`` over the whole run."""
    frac = min(step / max(total, 1), 1.0)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * frac))


def train_classifier(
    model_config: RowClassifierConfig,
    train_config: ClassifierTrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | None = None,
    resume: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train, checkpointing to ``out_dir/checkpoint.pt``; return the final metrics (with test accuracy)."""
    kind = "mnist-bilstm" if model_config.bidirectional else "mnist-lstm"
    run = RunDir(out_dir, quiet=quiet)
    splits = load_mnist(data)
    train_x, valid_x, test_x = (
        preprocess_pixels(a) for a in (splits.train_images, splits.valid_images, splits.test_images)
    )
    train_y, valid_y, test_y = (
        torch.from_numpy(a) for a in (splits.train_labels, splits.valid_labels, splits.test_labels)
    )

    torch.manual_seed(train_config.seed)
    model = RowLSTMClassifier(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=train_config.lr)
    steps_per_epoch = math.ceil(len(train_x) / train_config.batch_size)
    total_steps = steps_per_epoch * train_config.epochs
    if train_config.max_steps is not None:
        total_steps = min(total_steps, train_config.max_steps)
    epoch, step_in_epoch, step, metrics = 0, 0, 0, {}
    loss_sum, correct, seen = 0.0, 0, 0  # this epoch's training loss and accuracy so far
    earlier_seconds = 0.0

    if resume and run.checkpoint.exists():
        ckpt = load_checkpoint(run.checkpoint, kind)
        # Everything but the checkpoint cadence shapes the run (epochs and max_steps set the LR schedule).
        check_resumable(ckpt, run.checkpoint, asdict(model_config), asdict(train_config), {"checkpoint_every"})
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        epoch, step_in_epoch, step = (ckpt["progress"][k] for k in ("epoch", "step_in_epoch", "step"))
        earlier_seconds = float(ckpt["progress"].get("seconds", 0.0))
        # The epoch's running sums, so a resumed run logs the same training loss (older checkpoints lack them).
        running = ckpt["progress"].get("running", {})
        loss_sum, correct, seen = running.get("loss_sum", 0.0), running.get("correct", 0), running.get("seen", 0)
        metrics = dict(ckpt["metrics"])
        run.start_metrics(step)
        run.log(f"resumed {kind} from {run.checkpoint} at epoch {epoch + 1}, step {step}")
    else:
        if resume:
            run.log(f"no checkpoint at {run.checkpoint}: starting a new run")
        run.start_metrics(None)
        run.log(f"training {kind} {asdict(model_config)} with {asdict(train_config)} on {len(train_x)} images")

    def checkpoint(done: bool = False) -> None:
        save_checkpoint(
            run.checkpoint,
            {
                "kind": kind,
                "model": model.state_dict(),
                "config": asdict(model_config),
                "train_config": asdict(train_config),
                "optimizer": optimizer.state_dict(),
                "metrics": metrics,
                "progress": {
                    "epoch": epoch,
                    "step_in_epoch": step_in_epoch,
                    "step": step,
                    "done": done,
                    "seconds": earlier_seconds + time.time() - started,
                    "running": {"loss_sum": loss_sum, "correct": correct, "seen": seen},
                },
            },
        )

    started = time.time()  # training seconds accumulate across resumed sessions
    bar = progress_bar(total=total_steps, initial=step, desc=kind, quiet=quiet)
    while step < total_steps:
        order = torch.randperm(
            len(train_x), generator=torch.Generator().manual_seed(train_config.seed * 100003 + epoch)
        )
        model.train()
        if step_in_epoch == 0:
            loss_sum, correct, seen = 0.0, 0, 0
        while step_in_epoch < steps_per_epoch and step < total_steps:
            idx = order[step_in_epoch * train_config.batch_size : (step_in_epoch + 1) * train_config.batch_size]
            step_rng = torch.Generator().manual_seed(train_config.seed * 100003 + 7919 * step + 1)
            x, y = random_shift(train_x[idx], train_config.shift, step_rng), train_y[idx]
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(train_config, step, total_steps)
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), train_config.clip_norm)
            optimizer.step()
            step, step_in_epoch = step + 1, step_in_epoch + 1
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
            if step % 50 == 0:
                run.record("train", step=step, epoch=epoch + 1, loss=loss_sum / seen, accuracy=correct / seen)
            if step % train_config.checkpoint_every == 0:
                checkpoint()
        if step_in_epoch >= steps_per_epoch or step >= total_steps:
            valid_acc = evaluate_accuracy(model, valid_x, valid_y)
            metrics = {"valid_accuracy": valid_acc, "epoch": epoch + 1, "step": step}
            run.record("valid", step=step, epoch=epoch + 1, accuracy=valid_acc)
            run.log(f"epoch {epoch + 1}: train loss {loss_sum / max(seen, 1):.4f}, valid accuracy {valid_acc:.4f}")
            if step_in_epoch >= steps_per_epoch:
                epoch, step_in_epoch = epoch + 1, 0
            checkpoint()
    bar.close()
    test_acc = evaluate_accuracy(model, test_x, test_y)
    metrics = {**metrics, "test_accuracy": test_acc, "train_seconds": round(earlier_seconds + time.time() - started, 1)}
    run.record("test", step=step, accuracy=test_acc)
    run.log(f"test accuracy {test_acc:.4f} on {len(test_x)} images")
    checkpoint(done=True)
    plot_if_available(run.path)
    return metrics
