"""What a training run leaves on disk, shared by every trainer.

``RUN_DIR/checkpoint.pt`` (the latest complete state, written atomically),
``RUN_DIR/metrics.jsonl`` (one JSON object per logged event) and ``RUN_DIR/train.log``.
On ``--resume`` the metrics past the checkpoint are dropped, so a resumed run's log reads
as if it had never been interrupted.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["RunDir"]


class RunDir:
    """The files of one training run."""

    def __init__(self, path: str | os.PathLike[str], *, quiet: bool = False) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoint = self.path / "checkpoint.pt"
        self.metrics = self.path / "metrics.jsonl"
        self.log_file = self.path / "train.log"
        self.quiet = quiet

    def start_metrics(self, resume_step: int | None) -> None:
        """Truncate the metrics log, keeping records up to ``resume_step`` when resuming."""
        kept: list[str] = []
        if resume_step is not None and self.metrics.exists():
            for line in self.metrics.read_text().splitlines():
                try:
                    if json.loads(line).get("step", 0) <= resume_step:
                        kept.append(line)
                except ValueError:
                    break  # a line cut by a kill: everything after it is gone too
        self.metrics.write_text("".join(k + "\n" for k in kept))

    def record(self, event: str, **values: Any) -> None:
        """Append one metrics record (with a timestamp) to ``metrics.jsonl``."""
        with open(self.metrics, "a") as f:
            f.write(json.dumps({"event": event, "time": round(time.time(), 3), **values}) + "\n")

    def log(self, message: str) -> None:
        """Append a line to ``train.log`` and, unless quiet, print it on stderr."""
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
