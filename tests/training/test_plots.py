"""Training curves from a real run's metrics log."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")

from rnnedge.errors import DataError
from rnnedge.training.plots import plot_run


def test_plot_of_a_run(tiny_checkpoint: Path) -> None:
    png = plot_run(tiny_checkpoint.parent)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_plot_without_metrics(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no train or validation metrics"):
        plot_run(tmp_path)
