"""Training of the row-by-row MNIST classifiers (causal LSTM and bidirectional LSTM).

The loop itself (checkpoints, resume, metrics, Ctrl-C) is :mod:`rnnedge.training.loop`'s;
this module is the classifier's :class:`~rnnedge.training.loop.Task`: the data, one step,
validation and test. Its checkpoints carry the pixels' normalisation (``preprocessing``) and
the class names (``labels``), so export reads both from the checkpoint.

Deterministic given the seed: the shuffle of epoch ``e`` comes from ``seed`` and ``e``
alone, so a run resumed from a mid-epoch checkpoint replays exactly the batches the
uninterrupted run would have seen.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnedge.data.mnist import PIXEL_MEAN, PIXEL_STD, MnistSplits, load_mnist

from .checkpoint import build_model
from .classification import ClassificationTask
from .config import ClassifierTrainConfig, RowClassifierConfig
from .loop import budget_steps, run_training, torch_threads
from .models import RNN_CLASSIFIER, RowLSTMClassifier
from .run_dir import open_run

__all__ = [
    "MNIST_LABELS",
    "ClassifierTask",
    "ClassifierTrainConfig",
    "build_classifier",
    "evaluate_accuracy",
    "mnist_preprocessing",
    "preprocess_pixels",
    "train_classifier",
]


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
    """Rebuild the classifier a checkpoint describes, with its weights, in eval mode.

    Kept for callers written before the kind registry; new code calls
    :func:`rnnedge.training.kinds.build_from_checkpoint`.
    """
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


MNIST_LABELS = tuple(str(d) for d in range(10))


def mnist_preprocessing() -> dict[str, float]:
    """What a checkpoint records of the pixels' normalisation: ``x = (pixel * scale - mean) / std``."""
    return {"scale": 1 / 255, "mean": PIXEL_MEAN, "std": PIXEL_STD}


class ClassifierTask(ClassificationTask):
    """The row classifier on MNIST, for :func:`~rnnedge.training.loop.run_training`."""

    kind = RNN_CLASSIFIER.name

    def __init__(
        self, model_config: RowClassifierConfig, train_config: ClassifierTrainConfig, splits: MnistSplits
    ) -> None:
        super().__init__()
        self.name = "mnist-bilstm" if model_config.bidirectional else "mnist-lstm"
        self.model_config, self.train_config = model_config, train_config
        n = len(splits.train_images)
        self.check_batch_size(train_config.batch_size, n, "images")
        self.train_x, self.valid_x, self.test_x = (
            preprocess_pixels(a) for a in (splits.train_images, splits.valid_images, splits.test_images)
        )
        self.train_y, self.valid_y, self.test_y = (
            torch.from_numpy(a) for a in (splits.train_labels, splits.valid_labels, splits.test_labels)
        )
        torch.manual_seed(train_config.seed)
        self.model = RowLSTMClassifier(model_config)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=train_config.lr)
        self.steps_per_epoch = math.ceil(n / train_config.batch_size)
        self.total_steps = budget_steps(self.steps_per_epoch, train_config)

    def describe(self) -> str:
        return f"on {len(self.train_x)} images"

    def step(self, epoch: int, step_in_epoch: int, step: int) -> dict[str, str]:
        cfg = self.train_config
        idx = self.order[step_in_epoch * cfg.batch_size : (step_in_epoch + 1) * cfg.batch_size]
        step_rng = torch.Generator().manual_seed(cfg.seed * 100003 + 7919 * step + 1)
        x, y = random_shift(self.train_x[idx], cfg.shift, step_rng), self.train_y[idx]  # (b, 28, 28), (b,)
        for group in self.optimizer.param_groups:
            group["lr"] = _lr_at(cfg, step, self.total_steps)
        return self.learn(self.model(x), y)  # logits (b, 10)

    def validate(self, epoch: int) -> tuple[dict[str, float], dict[str, Any], str]:
        acc = evaluate_accuracy(self.model, self.valid_x, self.valid_y)
        line = f"epoch {epoch + 1}: train loss {self.loss_sum / max(self.seen, 1):.4f}, valid accuracy {acc:.4f}"
        return {"valid_accuracy": acc}, {"accuracy": acc}, line

    def test(self) -> tuple[dict[str, float], dict[str, Any], str]:
        acc = evaluate_accuracy(self.model, self.test_x, self.test_y)
        return {"test_accuracy": acc}, {"accuracy": acc}, f"test accuracy {acc:.4f} on {len(self.test_x)} images"

    def checkpoint_fields(self) -> dict[str, Any]:
        return {**self.running_fields(), "preprocessing": mnist_preprocessing(), "labels": list(MNIST_LABELS)}


def train_classifier(
    model_config: RowClassifierConfig,
    train_config: ClassifierTrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train on MNIST in the run folder ``out_dir``; return the final metrics (with test accuracy).

    ``resume`` continues the folder's run; ``overwrite`` replaces it; a folder that holds a run
    is refused without one of them. ``threads`` sets torch's intra-op threads for the run.
    """
    run = open_run(out_dir, resume=resume, overwrite=overwrite, quiet=quiet)
    with torch_threads(threads):
        task = ClassifierTask(model_config, train_config, load_mnist(data))
        return run_training(task, run, resume=resume, quiet=quiet)
