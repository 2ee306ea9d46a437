"""Measurements that need a fresh interpreter: run one of this package's modules with ``python -m``.

A cold start must begin before numpy is imported, and numpy's BLAS threads are fixed when
numpy is imported; so those measurements run as ``python -m rnnedge.bench.<module>`` in a
child process, which prints its result as one JSON line. This package's ``__init__`` imports
neither numpy nor onnxruntime, so the child's clocks start before either is loaded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rnnedge.errors import BenchError

__all__ = ["BenchError", "run_module"]


def _why(proc: subprocess.CompletedProcess[str]) -> str:
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        status = f"was killed by {name}"
    else:
        status = f"exited with status {proc.returncode}"
    tail = proc.stderr.strip().splitlines()[-1:] or ["(no error output)"]
    return f"{status}: {tail[0]}"


def run_module(
    module: str,
    args: Sequence[str],
    *,
    what: str,
    python: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Any:
    """``python -m module *args`` in a fresh interpreter; its last line of output, parsed as JSON.

    ``what`` names the measurement in the :class:`BenchError` raised when the child fails
    (an exception, a crash of onnxruntime, an interpreter that lacks rnnedge) or prints no JSON.
    """
    command = [python or sys.executable, "-m", module, *args]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=dict(env or os.environ), check=False)
    except OSError as e:
        raise BenchError(f"{what}: cannot start {command[0]}: {e.strerror or e}") from None
    if proc.returncode != 0:
        raise BenchError(f"{what}: the fresh interpreter {_why(proc)}")
    lines = proc.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise BenchError(f"{what}: the fresh interpreter printed no result (stdout {proc.stdout[-200:]!r})") from None
