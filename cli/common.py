"""What every command module shares: the error-to-message group, the data option's help, the extra check."""

from __future__ import annotations

from typing import Any

import click

from rnnedge.errors import MissingExtraError, RnnEdgeError

__all__ = ["DATA_HELP", "RnnEdgeGroup", "require_training_extra"]

DATA_HELP = (
    "Folder holding mnist/ and ptb/, where a model's recorded data files are also looked for by name "
    "(default: $RNNEDGE_DATA, else the per-user cache)."
)


class RnnEdgeGroup(click.Group):
    """Turns rnnedge's typed errors into a one-line message and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RnnEdgeError as e:
            raise click.ClickException(f"{type(e).__name__}: {e}") from None


def require_training_extra() -> None:
    """Fail with the name of the extra to install when torch or onnx is missing."""
    missing = []
    for module in ("torch", "onnx"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingExtraError(
            f"this command needs {' and '.join(missing)}; install the training extra: "
            "pip install 'rnnedge[train]' (torch and onnx)"
        )
