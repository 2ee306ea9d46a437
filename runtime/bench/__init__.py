"""Speed measurements a user can run on the base install: ``rnnedge bench MODEL`` is a thin layer over this.

Everything here needs only numpy and onnxruntime. Contenders are timed *interleaved*
(every contender runs once per round, round after round) so that a noisy or shared
machine slows all of them alike and their ratios hold; each is reported as a median with
its interquartile range. Four measurements:

- :func:`step_workload`: per-step streaming at batch 1, a hand-written
  ``InferenceSession.run`` loop ("bare onnxruntime") against rnnedge's ``Model.step``
  and ``Stream.feed``;
- :func:`throughput_workload`: whole sequences in one call (PTB 20 × 35, MNIST 256 × 28);
- :func:`cold_start`: fresh interpreters timing import, load and the first result, and
  their peak resident memory;
- :func:`measure_limits`: the machine's float32 GEMM rate and memory read bandwidth, and
  from them the lower bound of a streaming step (its weights are read once per step).
"""

from __future__ import annotations

from .cold_start import cold_start
from .limits import (
    GemmShape,
    bare_session_from_bytes,
    copy_bandwidth,
    flops_per_position,
    gemm_gflops,
    lstm_gemm_shapes,
    matmul_model,
    measure_limits,
    measure_limits_in_subprocess,
    ort_gemm_gflops,
    read_bandwidth,
    weights_per_step,
)
from .report import format_report, run_bench
from .timing import Summary, calibrate, format_table, interleaved, summarize
from .workloads import BARE, Workload, bare_session, run_workload, step_workload, throughput_workload

__all__ = [
    "BARE",
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
