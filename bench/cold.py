"""Cold start: fresh interpreters timing import, load and the first result, and their peak resident memory."""

from __future__ import annotations

import os
import time
from typing import Any

from .child import BenchError, run_module
from .timing import BARE, summarize

__all__ = ["cold_start"]

_PHASES = ("import_numpy_s", "import_onnxruntime_s", "import_rnnedge_s", "load_s", "first_result_s")
_MODES = {"rnnedge": "rnnedge", BARE: "bare"}  # report name -> the child's mode


def cold_start(
    path: str | os.PathLike[str],
    *,
    runs: int = 10,
    threads: int | None = None,
    steps: int = 100,
    provider: str = "cpu",
    python: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Cold start of rnnedge and of a bare onnxruntime program, each in ``runs`` fresh interpreters.

    Per mode (``"rnnedge"``, ``"bare onnxruntime"``) the median of every phase: importing
    numpy, then onnxruntime (reported apart: it is the same for both), then for rnnedge
    ``import rnnedge.runtime``; loading the model; the first result (a stream fed one row or
    one id); ``cold_s``, the sum of the last three (import of rnnedge, load, first result);
    ``process_s``, the whole process wall time seen from outside; and peak resident memory
    after the imports and after streaming ``steps`` more steps (Linux: ``VmHWM`` of the
    child's own image, since ``getrusage``'s ``ru_maxrss`` also carries the parent's peak
    across fork and exec; elsewhere ``ru_maxrss``). The runs alternate between the two modes.
    Each run is ``python -m rnnedge.bench.cold_child`` (see there) on ``provider`` (``"cpu"`` or
    ``"cuda"``); a child that fails raises :class:`BenchError` with its last line of error output.
    """
    raw: dict[str, list[dict[str, float]]] = {mode: [] for mode in _MODES}
    for _ in range(runs):
        for mode, child_mode in _MODES.items():
            args = [child_mode, str(path), str(threads or "default"), str(steps), provider]
            start = time.perf_counter()
            values = run_module("rnnedge.bench.cold_child", args, what=f"cold start of {mode}", python=python)
            wall = time.perf_counter() - start
            if values.pop("numpy_preloaded"):
                raise BenchError(
                    f"cold start of {mode}: the fresh interpreter had numpy or onnxruntime loaded before its clock "
                    "started (a sitecustomize or .pth file?), so its import times would be wrong"
                )
            values["process_s"] = wall
            values["cold_s"] = values["import_rnnedge_s"] + values["load_s"] + values["first_result_s"]
            raw[mode].append(values)
    result: dict[str, dict[str, Any]] = {}
    for mode, rows in raw.items():
        times = {k: summarize([r[k] for r in rows]).as_dict() for k in [*_PHASES, "cold_s", "process_s"]}
        memory = {
            k: summarize([r[k] for r in rows]).as_dict("_bytes")
            for k in ("max_rss_after_imports_bytes", "max_rss_bytes")
        }
        result[mode] = {**times, **memory}
    return result
