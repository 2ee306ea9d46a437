"""Speed measurements on the base install, on top of the runtime's public API: ``rnnedge bench MODEL`` uses them.

Everything here needs only numpy, onnxruntime and :mod:`rnnedge.runtime`. Contenders are
timed *interleaved* (every contender runs once per round, round after round) so that a noisy
or shared machine slows all of them alike and their ratios hold; each is reported as a median
with its interquartile range. Four measurements:

- :func:`step_workload`: per-step streaming at batch 1, a hand-written
  ``InferenceSession.run`` loop ("bare onnxruntime") against rnnedge's ``Model.step``
  and ``Stream.feed``;
- :func:`throughput_workload`: whole sequences in one call (PTB 20 × 35, MNIST 256 × 28);
- :func:`cold_start`: fresh interpreters timing import, load and the first result, and
  their peak resident memory;
- :func:`measure_limits`: the machine's float32 GEMM rate and memory read bandwidth, and
  from them the lower bound of a streaming step (its weights are read once per step).

Importing this package loads neither numpy nor onnxruntime: each name is imported from its
module on first use. That keeps ``python -m rnnedge.bench.cold_child`` cold (``-m`` imports the
package first) and ``rnnedge bench --help`` quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .child import BenchError
    from .cold import cold_start
    from .cost import GemmShape, flops_per_position, lstm_gemm_shapes, weights_per_step
    from .kernel_model import matmul_model
    from .limits import (
        bare_session_from_bytes,
        copy_bandwidth,
        gemm_gflops,
        measure_limits,
        measure_limits_in_subprocess,
        ort_gemm_gflops,
        read_bandwidth,
    )
    from .providers import PROVIDERS
    from .report import format_report, run_bench
    from .timing import BARE, Summary, calibrate, format_table, interleaved, summarize
    from .workloads import Workload, bare_session, run_workload, step_workload, throughput_workload

_MODULES = {
    "child": ["BenchError"],
    "cold": ["cold_start"],
    "cost": ["GemmShape", "flops_per_position", "lstm_gemm_shapes", "weights_per_step"],
    "limits": [
        "bare_session_from_bytes",
        "copy_bandwidth",
        "gemm_gflops",
        "measure_limits",
        "measure_limits_in_subprocess",
        "ort_gemm_gflops",
        "read_bandwidth",
    ],
    "kernel_model": ["matmul_model"],
    "providers": ["PROVIDERS"],
    "report": ["format_report", "run_bench"],
    "timing": ["BARE", "Summary", "calibrate", "format_table", "interleaved", "summarize"],
    "workloads": ["Workload", "bare_session", "run_workload", "step_workload", "throughput_workload"],
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "BARE",
    "PROVIDERS",
    "BenchError",
    "GemmShape",
    "Summary",
    "Workload",
    "bare_session",
    "bare_session_from_bytes",
    "calibrate",
    "cold_start",
    "copy_bandwidth",
    "flops_per_position",
    "format_report",
    "format_table",
    "gemm_gflops",
    "interleaved",
    "lstm_gemm_shapes",
    "matmul_model",
    "measure_limits",
    "measure_limits_in_subprocess",
    "ort_gemm_gflops",
    "read_bandwidth",
    "run_bench",
    "run_workload",
    "step_workload",
    "summarize",
    "throughput_workload",
    "weights_per_step",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
