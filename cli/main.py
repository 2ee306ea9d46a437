"""The ``rnnedge`` command: a thin click layer over functions a program can call.

Each command group lives in its own module and is attached here. Runtime commands import no
torch; ``train``, ``export`` and ``demo`` load their modules only when invoked and name the
missing extra if torch or onnx is absent.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from rnnedge.errors import MissingExtraError

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


@cli.command()
@click.argument("model_paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0: any free port.")
@click.option("--max-batch", type=click.IntRange(min=1), default=64, show_default=True, help="Sessions per model call.")
@click.option("--batch-window-ms", type=click.FloatRange(min=0), default=0.5, show_default=True)
@click.option(
    "--half-batch-from",
    type=click.IntRange(min=0),
    default=32,
    show_default=True,
    help="From this many sessions of a model on, a step starts once half of them have a feed pending, "
    "so one half steps while the other is answered (0: always wait for every session).",
)
@click.option("--max-sessions", type=click.IntRange(min=1), default=1024, show_default=True)
@click.option("--max-message-bytes", type=click.IntRange(min=1024), default=65536, show_default=True)
@click.option("--idle-timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True)
@click.option("--max-feed-steps", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--max-generate-words", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--shutdown-timeout", type=click.FloatRange(min=0), default=10.0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="onnxruntime threads.")
@click.option("--provider", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.option("--token-key-file", type=click.File("rb"), default=None, help="Sign and check state tokens.")
@click.option(
    "--switch-interval-ms",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Set this process's Python thread switch interval (sys.setswitchinterval; Python's default: 5 ms).",
)
def serve(model_paths: tuple[Path, ...], token_key_file: Any, switch_interval_ms: float | None, **options: Any) -> None:
    """Serve models over WebSocket: live streams batched into one model call (needs the 'serve' extra)."""
    try:
        from rnnedge.serve import ServeConfig, print_ready, run
        from rnnedge.serve.server import raise_open_file_limit
    except ImportError as e:  # websockets or prometheus-client absent
        raise MissingExtraError(
            f"rnnedge serve needs {e.name or 'websockets and prometheus-client'}; install the serve extra: "
            "pip install 'rnnedge[serve]'"
        ) from None
    key = token_key_file.read().strip() if token_key_file is not None else None
    if switch_interval_ms is not None:  # this command owns its process: a library never changes it
        sys.setswitchinterval(switch_interval_ms / 1000)
    raise_open_file_limit(options["max_sessions"])  # a socket per session: the soft limit is often 1024
    run(list(model_paths), ServeConfig(token_key=key, **options), ready=print_ready)


def main() -> None:  # pragma: no cover - console entry point
    """Console entry point."""
    cli()


if __name__ == "__main__":  # `python -m rnnedge.cli.main`, e.g. under torchrun
    main()
