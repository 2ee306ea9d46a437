"""``rnnedge train ...`` and ``rnnedge plot``: training runs (the train extra)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .common import DATA_HELP, RnnEdgeGroup, require_training_extra


@click.group(cls=RnnEdgeGroup)
def train() -> None:
    """Train a model (needs the 'train' extra)."""


def _classifier_options(func: Any) -> Any:
    defaults = {"epochs": 30, "batch_size": 128, "lr": 2e-3, "seed": 0, "checkpoint_every": 200}
    options = [
        click.option("--data", type=click.Path(file_okay=False, path_type=Path), help=DATA_HELP),
        click.option(
            "--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run folder."
        ),
        click.option("--epochs", type=click.IntRange(min=1), default=defaults["epochs"], show_default=True),
        click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after this many steps."),
        click.option("--batch-size", type=click.IntRange(min=1), default=defaults["batch_size"], show_default=True),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=defaults["lr"], show_default=True),
        click.option("--hidden-size", type=click.IntRange(min=1), default=128, show_default=True),
        click.option("--seed", type=click.IntRange(min=0), default=defaults["seed"], show_default=True),
        click.option(
            "--checkpoint-every",
            type=click.IntRange(min=1),
            default=defaults["checkpoint_every"],
            show_default=True,
            help="Steps between checkpoints.",
        ),
        click.option("--resume", is_flag=True, help="Continue from RUN_DIR/checkpoint.pt."),
        click.option("--quiet", is_flag=True, help="No progress output."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def train_classifier_run(bidirectional: bool, **kw: Any) -> dict[str, Any]:
    require_training_extra()
    from rnnedge.training.models import RowClassifierConfig
    from rnnedge.training.train_classifier import ClassifierTrainConfig, train_classifier

    model_cfg = RowClassifierConfig(hidden_size=kw["hidden_size"], bidirectional=bidirectional)
    train_cfg = ClassifierTrainConfig(
        epochs=kw["epochs"],
        batch_size=kw["batch_size"],
        lr=kw["lr"],
        seed=kw["seed"],
        max_steps=kw["max_steps"],
        checkpoint_every=kw["checkpoint_every"],
    )
    metrics: dict[str, Any] = train_classifier(
        model_cfg, train_cfg, kw["out"], data=kw["data"], resume=kw["resume"], quiet=kw["quiet"]
    )
    return metrics


@train.command("mnist-lstm")
@_classifier_options
def train_mnist_lstm(**kw: Any) -> None:
    """Row-by-row MNIST classifier: one LSTM layer, mean over time, linear, softmax."""
    metrics = train_classifier_run(False, **kw)
    click.echo(json.dumps(metrics))


@train.command("mnist-bilstm")
@_classifier_options
def train_mnist_bilstm(**kw: Any) -> None:
    """Bidirectional row classifier: LSTMs top-down and bottom-up, mean over time, linear, softmax."""
    metrics = train_classifier_run(True, **kw)
    click.echo(json.dumps(metrics))


@train.command("ptb")
@click.option(
    "--config",
    "preset",
    type=click.Choice(["small", "medium", "large"]),
    default="small",
    show_default=True,
    help="Reference configuration of Zaremba et al. (2014).",
)
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), help=DATA_HELP)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run folder.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs (default: the configuration's).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after this many steps.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--tie-weights", is_flag=True, help="Share embedding and output weights (Press & Wolf 2017).")
@click.option(
    "--dropout",
    type=click.FloatRange(min=0.0, max=1.0, max_open=True),
    default=None,
    help="Dropout probability (default: the configuration's; small has none).",
)
@click.option(
    "--checkpoint-every", type=click.IntRange(min=1), default=500, show_default=True, help="Steps between checkpoints."
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch intra-op threads (1 is often fastest on a small shared CPU).",
)
@click.option("--custom", is_flag=True, help="Accept ptb.*.txt files that are not the published corpus.")
@click.option("--resume", is_flag=True, help="Continue from RUN_DIR/checkpoint.pt.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def train_ptb(preset: str, **kw: Any) -> None:
    """Penn Treebank word language model (2-layer LSTM; --config small|medium|large); works under torchrun."""
    require_training_extra()
    from dataclasses import replace

    from rnnedge.training.train_lm import PRESETS, train_language_model

    chosen = PRESETS[preset]
    dropout = chosen.model.dropout if kw["dropout"] is None else kw["dropout"]
    model_cfg = replace(chosen.model, tie_weights=kw["tie_weights"], dropout=dropout)
    train_cfg = replace(
        chosen.train,
        epochs=kw["epochs"] or chosen.train.epochs,
        max_steps=kw["max_steps"],
        seed=kw["seed"],
        checkpoint_every=kw["checkpoint_every"],
    )
    metrics = train_language_model(
        model_cfg,
        train_cfg,
        kw["out"],
        data=kw["data"],
        resume=kw["resume"],
        quiet=kw["quiet"],
        custom_corpus=kw["custom"],
        threads=kw["threads"],
    )
    if metrics:
        click.echo(json.dumps(metrics))


@click.command()
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(file_okay=False, exists=True, path_type=Path))
def plot(run_dir: Path) -> None:
    """Redraw RUN_DIR/curves.png from the run's metrics (needs the 'plot' extra)."""
    from rnnedge.training.plots import plot_run

    click.echo(f"wrote {plot_run(run_dir)}")
