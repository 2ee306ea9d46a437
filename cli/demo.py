"""``rnnedge demo``: train briefly, export, stream digits, measure accuracy."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from rnnedge.errors import ConfigError
from rnnedge.runtime import load
from rnnedge.training.run_dir import CHECKPOINT_NAME, RunDir

from .common import DATA_HELP
from .infer import test_report
from .train import train_mnist_run

DEMO_DIR = Path("runs/demo")  # the demo's own folder: each run replaces the one before
DEMO_EXPORT = "mnist-lstm.onnx"  # the demo's file in its run folder: elsewhere, what marks a run as the demo's


@click.command()
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), help=DATA_HELP)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEMO_DIR, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--max-steps", type=click.IntRange(min=1), default=None)
@click.option("--digits", type=click.IntRange(min=1, max=20), default=4, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace a run in --out that an earlier demo did not make.")
def demo(data: Path | None, out: Path, epochs: int, max_steps: int | None, digits: int, overwrite: bool) -> None:
    """The whole pipeline: train the row-LSTM briefly, export, validate, stream digits, test accuracy.

    Run again, it replaces its own run (in runs/demo, or a folder holding its export); any other run in
    --out is refused unless --overwrite.
    """
    from rnnedge.data.mnist import load_mnist

    onnx_path = out / DEMO_EXPORT
    held = RunDir(out, quiet=True).holds_a_run()
    if held:
        if not (overwrite or onnx_path.exists() or out == DEMO_DIR):
            raise ConfigError(
                f"{out} already holds a training run ({', '.join(held)}) that the demo did not make (no "
                f"{DEMO_EXPORT} beside it); give the demo another --out, or --overwrite to replace that run"
            )
        click.echo(f"replacing the earlier run in {out}")
    budget = f"{epochs} epoch(s)" if max_steps is None else f"at most {max_steps} steps"
    click.echo(f"1/4 training the row-LSTM for {budget} into {out}")
    # Every other setting is the configuration's default (rnnedge.training.config).
    metrics = train_mnist_run("mnist-lstm", data=data, out=out, epochs=epochs, max_steps=max_steps, overwrite=True)
    click.echo(f"    PyTorch test accuracy {metrics['test_accuracy']:.4f}")
    from rnnedge.export.exporter import export_checkpoint

    click.echo(f"2/4 exporting and validating against PyTorch -> {onnx_path}")
    result = export_checkpoint(out / CHECKPOINT_NAME, onnx_path)
    click.echo(f"    {result.parity.checks} parity checks passed, largest difference {result.parity.worst:.2e}")

    click.echo("3/4 streaming test digits row by row (prediction and its probability as rows arrive)")
    model = load(onnx_path)
    splits = load_mnist(data)
    for i in range(digits):
        stream = model.stream()
        marks = []
        for row_index, row in enumerate(splits.test_images[i]):
            probs = stream.feed(row)
            if (row_index + 1) % 4 == 0:
                marks.append(f"{row_index + 1:>2}:{int(np.argmax(probs))}({probs.max():.2f})")
        click.echo(f"    digit {i} (label {splits.test_labels[i]}): " + " ".join(marks))
    click.echo("4/4 runtime accuracy on the full MNIST test set")
    report, _ = test_report(onnx_path, None, data, None, "cpu", False)
    click.echo(f"    test accuracy {report.accuracy:.4f} ({int(report.support.sum())} images, onnxruntime)")
