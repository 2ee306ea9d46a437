"""Training curves drawn from a run's ``metrics.jsonl`` (needs the ``plot`` extra: matplotlib)."""

from __future__ import annotations

import os
from pathlib import Path

from rnnedge.errors import DataError, MissingExtraError

from .run_dir import PLOT_NAME, RunDir

__all__ = ["PLOT_NAME", "plot_if_available", "plot_run"]
_METRICS = ("loss", "accuracy", "perplexity")


def plot_run(run_dir: str | os.PathLike[str]) -> Path:
    """Draw each logged metric against steps, train and validation side by side; return the PNG's path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError("plotting needs matplotlib: pip install 'rnnedge[plot]'") from None
    run = RunDir(run_dir, quiet=True)
    records = run.read_metrics()
    present = [m for m in _METRICS if any(m in r for r in records if r.get("event") in ("train", "valid"))]
    if not present:
        raise DataError(f"no train or validation metrics in {run.metrics}")
    fig, axes = plt.subplots(1, len(present), figsize=(5 * len(present), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], present, strict=True):
        for event, style in (("train", "-"), ("valid", "o-")):
            points = [(r["step"], r[metric]) for r in records if r.get("event") == event and metric in r]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, style, label=event, markersize=3)
        ax.set_xlabel("step")
        ax.set_ylabel(metric)
        if metric == "perplexity":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(run.path.name)
    fig.tight_layout()
    out = run.plot
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    return out


def plot_if_available(run_dir: str | os.PathLike[str]) -> Path | None:
    """Draw the run's curves when matplotlib is installed; a run without the plot extra just skips it.

    So does a run with nothing to draw yet (a few steps, no record logged): the curves are an
    aid, never a reason for a finished training run to fail.
    """
    try:
        return plot_run(run_dir)
    except (MissingExtraError, DataError):
        return None
