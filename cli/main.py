"""The ``rnnedge`` command: a thin click layer over functions a program can call.

Each command group lives in its own module and is attached here. Runtime commands import no
torch; ``train``, ``export`` and ``demo`` load their modules only when invoked and name the
missing extra if torch or onnx is absent.
"""

from __future__ import annotations

import click

from .bench import bench
from .common import RnnEdgeGroup
from .demo import demo
from .export import export
from .infer import classify, generate, info, next_word, perplexity
from .train import plot, train

__all__ = ["cli"]


@click.group(cls=RnnEdgeGroup)
@click.version_option(package_name="rnnedge")
def cli() -> None:
    """rnnedge: recurrent models trained in PyTorch, shipped as ONNX, streamed on the edge."""


for command in (train, export, plot, info, classify, demo, generate, perplexity, next_word, bench):
    cli.add_command(command)


def main() -> None:  # pragma: no cover - console entry point
    """Console entry point."""
    cli()


if __name__ == "__main__":  # `python -m rnnedge.cli.main`, e.g. under torchrun
    main()
