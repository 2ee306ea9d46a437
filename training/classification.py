"""What every classifier's training task shares: the epoch's order, one optimisation step, running sums.

:class:`ClassificationTask` implements the parts of :class:`~rnnedge.training.loop.Task` that do not
depend on the data (MNIST rows or a user's sequences); a task adds how it reads a batch, validates and
tests, and which checkpoint fields it carries.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rnnedge.errors import ConfigError

__all__ = ["ClassificationTask"]


class ClassificationTask:
    """Cross-entropy training of ``self.model`` with ``self.optimizer`` over ``self.train_x``, one process."""

    rank, world_size = 0, 1
    model: nn.Module
    optimizer: torch.optim.Optimizer
    train_config: Any  # has seed, batch_size, clip_norm
    train_x: torch.Tensor

    def __init__(self) -> None:
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0  # this epoch's training loss and accuracy so far
        self.order = torch.arange(0)

    @staticmethod
    def check_batch_size(batch_size: int, n: int, what: str) -> None:
        """An epoch is one pass over the ``n`` training ``what``: a batch cannot be larger."""
        if batch_size > n:
            raise ConfigError(
                f"batch_size={batch_size} is more than the {n} training {what}; "
                f"expected at most {n} (an epoch is one pass over them)"
            )

    def start_epoch(self, epoch: int, step_in_epoch: int) -> None:
        cfg = self.train_config
        self.order = torch.randperm(
            len(self.train_x), generator=torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
        )
        self.model.train()
        if step_in_epoch == 0:
            self.loss_sum, self.correct, self.seen = 0.0, 0, 0

    def learn(self, logits: torch.Tensor, y: torch.Tensor) -> dict[str, str]:
        """One optimisation step on a batch's ``logits`` (b, C) and labels ``y`` (b,); the progress bar's values."""
        loss = nn.functional.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.train_config.clip_norm)
        self.optimizer.step()
        self.loss_sum += loss.item() * len(y)
        self.correct += int((logits.argmax(1) == y).sum())
        self.seen += len(y)
        return {"loss": f"{self.loss_sum / self.seen:.4f}", "acc": f"{self.correct / self.seen:.4f}"}

    def train_record(self) -> dict[str, float]:
        return {"loss": self.loss_sum / max(self.seen, 1), "accuracy": self.correct / max(self.seen, 1)}

    def running_fields(self) -> dict[str, Any]:
        """The epoch's running sums, for the checkpoint (a resumed run then logs the same training loss)."""
        return {"running": {"loss_sum": self.loss_sum, "correct": self.correct, "seen": self.seen}}

    def restore(self, ckpt: dict[str, Any]) -> None:
        running = ckpt["progress"].get("running", {})  # older checkpoints lack them
        self.loss_sum = running.get("loss_sum", 0.0)
        self.correct, self.seen = running.get("correct", 0), running.get("seen", 0)

    def barrier(self) -> None:
        pass
